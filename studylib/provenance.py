"""Where and when a measurement was taken: attached to every row written to data/."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import subprocess
import uuid
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROVENANCE_COLUMNS = [
    "run_id", "timestamp_utc", "host", "cpu", "gpu_name", "gpu_uuid", "driver", "cuda",
    "torch_version", "transformers_version", "git_commit", "git_dirty", "profile", "params",
]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def git_commit() -> str:
    """HEAD of this checkout; a copy of the tree without .git (the GPU machine) names its
    commit in STUDY_GIT_COMMIT."""
    return os.environ.get("STUDY_GIT_COMMIT") or _git("rev-parse", "HEAD") or "uncommitted"


def cpu_name() -> str:
    """The CPU's model name and the widest vector ISA PyTorch dispatches to on it, e.g.
    "AMD EPYC (AVX512)": bf16 products are computed by different kernels (and round
    differently) on AVX2 and AVX-512 machines, so a row says which one produced it."""
    model = _cpuinfo("model name") or platform.processor() or platform.machine()
    isa = cpu_isa()
    return f"{model} ({isa})" if isa else model


def cpu_isa() -> str:
    """The widest vector ISA PyTorch dispatches to on this CPU ('AVX512', 'AVX2', ...)."""
    import torch

    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        return ""


def _cpuinfo(field: str) -> str:
    """The first ``field`` of /proc/cpuinfo ('' where there is none: not Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_flags() -> set[str]:
    return set(_cpuinfo("flags").split())


def native_bf16() -> bool:
    """This CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX); without it oneDNN converts to
    fp32 first and a bf16 model runs slower than an fp32 one (measured 2026-12-02 on an AVX2-only
    EPYC: 1536x8960 at 16 rows, bf16 20.9 ms vs fp32 9.0 ms)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


@lru_cache(maxsize=1)
def _static() -> dict:
    import torch

    gpu_name = gpu_uuid = driver = cuda = ""
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu_name = props.name
        gpu_uuid = str(getattr(props, "uuid", ""))
        cuda = torch.version.cuda or ""
        try:
            driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            driver = ""
    try:
        import transformers
        tv = transformers.__version__
    except ImportError:
        tv = ""
    return {
        "host": socket.gethostname(), "cpu": cpu_name(),
        "gpu_name": gpu_name, "gpu_uuid": gpu_uuid, "driver": driver, "cuda": cuda,
        "torch_version": torch.__version__, "transformers_version": tv,
        "git_commit": git_commit(),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def weights_digest(model) -> str:
    """sha256 (first 16 hex digits) of a model's weights: every state-dict entry's name, dtype, shape
    and bytes, in name order. A unit's provenance carries it, so units of one variant measured on two
    fits of it (a conversion fitted again after its cache was lost) are told apart
    (``results.validate_data``). A tensor subclass (a quantized weight) is hashed through the plain
    tensors it is made of. ~1 GB/s on one core: seconds for a 1.5B model, once per variant."""
    import hashlib

    import torch

    h = hashlib.sha256()

    def feed(t) -> None:
        if type(t) not in (torch.Tensor, torch.nn.Parameter) and hasattr(t, "__tensor_flatten__"):
            for name in t.__tensor_flatten__()[0]:
                feed(getattr(t, name))
            return
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))

    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        feed(t)
    return h.hexdigest()[:16]


def new_run_id() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


@lru_cache(maxsize=1)
def process_run_id() -> str:
    """One run id per process (a phase run), unless STUDY_RUN_ID names the run."""
    return os.environ.get("STUDY_RUN_ID") or new_run_id()


def collect(profile: str, params: dict, run_id: str | None = None) -> dict:
    """Provenance of the current process for one unit of work."""
    return {
        "run_id": run_id or process_run_id(),
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **_static(), "profile": profile, "params": relative_paths(json.dumps(params, sort_keys=True, default=str)),
    }


def relative_paths(text: str) -> str:
    """Absolute paths of this checkout (and of ../shared beside it) written relative to the
    repository root, so that committed provenance names no machine's directories."""
    for base, rel in ((REPO, "."), (REPO.parent, "..")):
        text = text.replace(str(base) + "/", rel + "/").replace(f'"{base}"', f'"{rel}"')
    return text
