"""The engine harness's lifecycle against stand-in servers (no vLLM needed): it waits for health,
talks JSON, stops the whole process group, and turns an engine that dies or never becomes
healthy into an error that names its log file."""
import os
import sys
import textwrap
import time

import pytest

from studylib.serving.engine import EngineError, Server, free_port

FAKE = textwrap.dedent('''
    import json, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    port, delay, mode = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    print("fake engine starting", flush=True)
    if mode == "crash":
        sys.exit(3)
    time.sleep(delay)
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass
        def do_GET(self):
            self.send_response(200 if mode != "sick" else 503); self.end_headers()
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if mode == "die":
                import os; os._exit(9)
            out = {"choices": [{"index": i, "text": p[::-1][:body["max_tokens"]]}
                               for i, p in reversed(list(enumerate(body["prompt"])))]}
            data = json.dumps(out).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
            self.wfile.write(data)
    HTTPServer(("127.0.0.1", port), H).serve_forever()
''')


def _server(tmp_path, delay=0.5, mode="ok", timeout_s=20.0):
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE)
    port = free_port()
    return Server([sys.executable, str(script), str(port), str(delay), mode], port, tmp_path / "engine.log",
                  timeout_s=timeout_s)


def test_a_healthy_engine_answers_in_prompt_order_and_is_stopped(tmp_path):
    with _server(tmp_path) as s:
        assert s.healthy()
        out = s.complete(["abc", "hello"], max_tokens=3)
        assert [c["text"] for c in out] == ["cba", "oll"]
        proc = s.proc
    assert proc.poll() is not None                                    # stopped on leaving the block
    assert "fake engine starting" in (tmp_path / "engine.log").read_text()


def test_an_engine_that_exits_is_an_error_naming_its_log(tmp_path):
    with pytest.raises(EngineError, match=r"exited before it became healthy \(exit code 3\); log: .*engine.log"):
        _server(tmp_path, mode="crash").start()


def test_an_engine_never_healthy_is_stopped_and_named(tmp_path):
    s = _server(tmp_path, mode="sick", timeout_s=3.0)
    t0 = time.monotonic()
    with pytest.raises(EngineError, match="not healthy after 3 s and was stopped; log: "):
        s.start()
    assert s.proc.poll() is not None and time.monotonic() - t0 < 60


def test_an_engine_dying_mid_request_is_an_error_not_an_empty_answer(tmp_path):
    with _server(tmp_path, mode="die") as s:
        with pytest.raises(EngineError, match="log: "):
            s.complete(["abc"], max_tokens=2)



def test_a_client_library_failing_as_the_engine_dies_reads_as_its_death(tmp_path):
    """``guarded``: what a client (lm-eval's) raises while the engine is down becomes the engine's
    EngineError naming its log; a failure with the engine up stays what it was."""
    import urllib.request

    def client_call():   # a client library's own request, as lm-eval makes it
        with urllib.request.urlopen(urllib.request.Request(f"{s.url}/v1/completions", data=b'{"prompt": ["x"]}',
                                                           headers={"Content-Type": "application/json"}), timeout=5):
            pass

    with _server(tmp_path, mode="die") as s:
        with pytest.raises(EngineError, match=r"died during a request .*log: .*engine.log"):
            s.guarded(client_call)()
        with pytest.raises(EngineError, match="is not running"):
            s.guarded(lambda: None)()
    with _server(tmp_path) as s:
        with pytest.raises(ZeroDivisionError):
            s.guarded(lambda: 1 / 0)()
        assert s.guarded(lambda a, b=1: a + b)(2, b=3) == 5


def test_signals_are_answered_as_before_once_no_engine_is_live(tmp_path):
    """The stop-the-engines handler lives only while an engine does: a process (a test run) that
    started and stopped one still dies of a SIGTERM."""
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with _server(tmp_path) as s:
        if before is signal.SIG_DFL:      # installed while the engine lives
            assert signal.getsignal(signal.SIGTERM) is not before
        assert s.guarded(lambda: 1)() == 1
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_harness_killed_by_sigterm_stops_its_engine(tmp_path):
    """The engine has its own process group; a SIGTERM to the harness still stops it."""
    import os
    import signal
    import subprocess

    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE)
    harness = tmp_path / "harness.py"
    harness.write_text(textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from studylib.serving.engine import Server, free_port
        port = free_port()
        s = Server([sys.executable, {str(script)!r}, str(port), "0.2", "ok"], port, Path({str(tmp_path / "e.log")!r}),
                   timeout_s=20).start()
        print(s.proc.pid, flush=True)
        time.sleep(120)
    """))
    h = subprocess.Popen([sys.executable, str(harness)], stdout=subprocess.PIPE, text=True)
    engine_pid = int(h.stdout.readline())
    os.kill(engine_pid, 0)                                  # the engine runs
    h.send_signal(signal.SIGTERM)
    assert h.wait(30) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(engine_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    pytest.fail("the engine outlived its harness")

def test_what_a_standard_checkpoint_cannot_express_is_refused_by_name():
    from studylib.quality.transforms import variant
    from studylib.serving.export import NotExportable, check_exportable

    check_exportable("sparsegpt30", variant("sparsegpt30"))                 # weights only: fine
    check_exportable("dense", variant("dense"))
    check_exportable("sparsegpt30_literal_moe4_top1", variant("sparsegpt30_literal_moe4_top1"))   # top-1: exact
    for v, why in (("teal_a25", "activation thresholds"), ("literal_moe4_top2", "only top-1"),
                   ("eq25_p0_cf1", "capacity factor"), ("oracle_moe4_top1", "oracle"), ("streaming_a25", "cache policy"),
                   ("cmoe_a25", "representative neurons")):
        with pytest.raises(NotExportable, match=why):
            check_exportable(v, variant(v))


def test_quantized_weights_export_for_quality_only_and_only_as_the_sweep_evaluates_them():
    from studylib.quality.transforms import variant
    from studylib.serving.export import NotExportable, check_exportable

    deq, lib = {"quality": {"quant_eval": "dequantized"}}, {"quality": {"quant_eval": "library"}}
    check_exportable("int8_quanto", variant("int8_quanto"), "quality", deq)
    with pytest.raises(NotExportable, match="no weight-only int8 kernel"):        # its speed would be dense's
        check_exportable("int8_quanto", variant("int8_quanto"))
    with pytest.raises(NotExportable, match="quant_eval: library"):             # ours would not evaluate those weights
        check_exportable("int8_quanto", variant("int8_quanto"), "quality", lib)
    with pytest.raises(ValueError, match="purpose"):
        check_exportable("dense", variant("dense"), "latency")


@pytest.mark.slow
def test_an_exported_int8_variant_holds_the_weights_the_sweep_evaluates(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    from studylib.config import load_profile
    from studylib.quality.transforms import variant
    from studylib.quality.units import build_variant, declared_profile, evaluation_kernels
    from studylib.serving import export as E

    monkeypatch.setattr(E, "CACHE", tmp_path)
    prof = declared_profile(load_profile("embedded", {"quality": {"quant_eval": "dequantized", "declared": {
        "tasks": ["probe_facts"], "counts": {"probe_facts": 2}, "variants": ["dense", "int8_quanto"]}}}))
    where = E.export(prof, "int8_quanto", purpose="quality")
    ours, _, _ = build_variant(prof, "int8_quanto", variant("int8_quanto"))
    assert evaluation_kernels(ours, prof)["quant_kernel"].startswith("dequantized")
    theirs = AutoModelForCausalLM.from_pretrained(where, dtype=ours.dtype)
    ids = torch.randint(100, 5000, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, theirs(ids).logits)


@pytest.mark.slow
def test_an_exported_pruned_variant_loads_with_transformers_and_equals_ours(data_dir, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    from studylib.config import load_profile
    from studylib.quality.transforms import variant
    from studylib.quality.units import build_variant, declared_profile
    from studylib.serving import export as E

    monkeypatch.setattr(E, "CACHE", tmp_path)
    prof = declared_profile(load_profile("embedded", {"quality": {"declared": {
        "tasks": ["probe_facts"], "counts": {"probe_facts": 2}, "variants": ["dense", "sparsegpt30"]}}}))
    where = E.export(prof, "sparsegpt30")
    assert where.is_relative_to(tmp_path) and (where / "study_export.json").exists()
    ours, _, _ = build_variant(prof, "sparsegpt30", variant("sparsegpt30"))
    theirs = AutoModelForCausalLM.from_pretrained(where, dtype=ours.dtype)
    ids = torch.randint(100, 5000, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, theirs(ids).logits)
    assert E.export(prof, "sparsegpt30") == where                          # built once per recipe


def test_an_exported_literal_moe_checkpoint_loads_as_qwen2_moe_and_equals_our_conversion(tmp_path):
    import torch
    from transformers import AutoConfig
    from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeForCausalLM

    from studylib.models import load_model
    from studylib.quality.taskdata import calibration_ids
    from studylib.quality.transforms.moe_literal import moe_literal
    from studylib.serving.moe_checkpoint import ARCHITECTURE, StudyMoeForCausalLM, write_literal

    model, tok = load_model("smollm2-135m")
    model.model.layers = model.model.layers[:3]
    model.config.num_hidden_layers = 3
    moe_literal(model, calibration_ids(tok, 1024), experts=4, top_k=1)
    info = write_literal(model, tok, tmp_path)
    assert info["experts"] == 4 and info["expert_width"] * 4 == model.config.intermediate_size
    theirs = StudyMoeForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert isinstance(theirs, Qwen2MoeForCausalLM)
    cfg = AutoConfig.from_pretrained(tmp_path)       # a plain qwen2_moe config an engine parses, naming our class
    assert cfg.model_type == "qwen2_moe" and cfg.architectures == [ARCHITECTURE]
    ids = torch.randint(100, 5000, (2, 30), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, exported = model(ids).logits, theirs(ids).logits
    assert torch.equal(ours.argmax(-1), exported.argmax(-1))
    torch.testing.assert_close(exported, ours, rtol=0, atol=1e-3)      # fp32; the experts sum in another order


def test_an_engine_gets_the_environment_its_checkpoint_asks_for(tmp_path):
    """An exporter's ``engine_env.json`` reaches the engine's process (not built from, not started here),
    on top of the core binding; a checkpoint without one gets the binding alone."""
    import json

    from studylib.serving.engine import ENGINE_ENV_FILE, vllm_server

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    plain, asking = tmp_path / "plain", tmp_path / "asking"
    plain.mkdir()
    asking.mkdir()
    (asking / ENGINE_ENV_FILE).write_text(json.dumps({"VLLM_CPU_INT4_W4A8": "0"}))
    a = vllm_server(asking, tmp_path / "a.log", venv=venv)
    b = vllm_server(plain, tmp_path / "b.log", venv=venv)
    assert a.env["VLLM_CPU_INT4_W4A8"] == "0" and a.env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    assert b.env.get("VLLM_CPU_INT4_W4A8") == os.environ.get("VLLM_CPU_INT4_W4A8")
