"""What a run needs to be repeated: versions, hardware, BLAS, git. Read once, recorded everywhere.

Everything here is read from the machine; nothing is copied from the environment wholesale (no
environment variables, no credentials).
"""
import functools
import glob
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

PACKAGES = ("numpy", "scipy", "mlflow", "matplotlib", "psutil", "initstudy")  # scipy: gelu/sigmoid/silu bits (special.erfc, expit)
BLAS_THREADS = 1  # the lab asks for one thread; it also makes BLAS results repeatable


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def governor() -> str:
    """The CPU frequency governor(s), or 'unavailable' (containers and VMs often hide it)."""
    found = set()
    for path in glob.glob("/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"):
        try:
            found.add(Path(path).read_text().strip())
        except OSError:
            pass
    return ",".join(sorted(found)) or "unavailable"


def hardware() -> dict:
    import psutil

    freq = psutil.cpu_freq()
    return {
        "cpu_model": _cpu_model(),
        "machine": platform.machine(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "cpu_max_mhz": round(freq.max, 1) if freq and freq.max else "unavailable",
        "ram_total_gb": round(psutil.virtual_memory().total / 2**30, 2),
        "platform": platform.platform(),
        "cpu_governor": governor(),
    }


def blas() -> dict:
    """The BLAS numpy calls, read through threadpoolctl (it loads no new library)."""
    from threadpoolctl import threadpool_info

    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not libs:
        return {"library": "unknown", "version": "unknown", "architecture": "unknown", "threads": "unknown"}
    lib = libs[0]
    return {
        "library": lib.get("internal_api", "unknown"),
        "version": lib.get("version") or "unknown",
        "architecture": lib.get("architecture") or "unknown",
        "threads": lib.get("num_threads"),
    }


# OpenBLAS picks its kernels for the CPU it finds (threadpoolctl's "architecture": Haswell,
# SkylakeX, ...), and kernels differ in how they block and fuse a dot product: the same float32
# run gives other last bits under another (measured: the lab-01 reference, recorded under Haswell,
# differs in 8 of its 12 series under SkylakeX: tests/test_reproduce.py). This variable, read when the library loads, names the
# kernel to use instead; an unknown name is ignored (OpenBLAS detects the CPU as usual).
KERNEL_ENV = "OPENBLAS_CORETYPE"


def kernel_pin(recorded: dict) -> dict | None:
    """{KERNEL_ENV: kernel} for a process that must run the BLAS kernel a run recorded, or None when
    this one already does, or a pin cannot help (not OpenBLAS, nothing recorded, already pinned)."""
    now, kernel = blas(), recorded.get("architecture")
    if (recorded.get("library") != "openblas" or now["library"] != "openblas" or kernel in (None, "unknown")
            or kernel == now["architecture"] or KERNEL_ENV in os.environ):
        return None
    return {KERNEL_ENV: kernel}


def pin_blas_threads(n: int = BLAS_THREADS):
    """Pin BLAS to n threads for this process; returns the controller (keep it alive)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def warm_up_blas():
    """One float64 GEMM of the training shape before any float32 one.

    Measured: when a process's first BLAS call is a 64x256 @ 256x256 float32 GEMM, OpenBLAS runs
    float32 GEMMs at ~1/3.5 of its rate for the rest of the process; a float64 GEMM first avoids it.
    """
    a = np.ones((64, 256))
    a @ np.ones((256, 256))


def _git(*args) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git() -> dict:
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": "unknown", "dirty": "unknown"}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def collect() -> dict:
    """The provenance block of a run and its manifest."""
    return {"versions": versions(), "hardware": hardware(), "blas": blas(), "git": git()}


def flatten(d: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': '1'}: nested records as MLflow params."""
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value if isinstance(value, str) else str(value)
    return out
