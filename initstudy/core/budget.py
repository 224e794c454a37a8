"""Sizes the machine cannot hold, refused in one line before anything starts (issue 24: width=3e6,
depth=1e6, steps=1e12, block_size=1e5 each died in MemoryError with a FAILED run left behind).

The estimate is read off a config's fields, whatever the study: the largest arrays a run allocates are
its weights with their gradients and optimizer state (depth x width^2), the activations of a batch, and
the series it keeps (one float64 per step, a diagnostics row per diag_every). It is a lower bound:
a config it refuses cannot run; one it passes may still be slow. Bounds a user can raise:

    INITSTUDY_MAX_STEPS  (default 10^8)   steps of one run
    INITSTUDY_MAX_RUNS   (default 10,000) points of one sweep grid
    the memory: psutil's available memory, at most INITSTUDY_MEMORY_FRACTION of it (default 0.8)
"""
import os

from initstudy.core.config import ConfigError

COPIES = 4  # weights, gradients, momentum, a temporary of the update: each a full set of the weights


def bound(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {os.environ[name]!r}") from None


def estimate_bytes(config) -> int:
    """The memory a run of `config` holds at once, at least (bytes)."""
    get = lambda k, d=0: int(getattr(config, k, d) or d)  # noqa: E731
    item = 4 if getattr(config, "dtype", "float64") in ("float32", "float16") else 8
    width = max(get("width", 1), get("n_embd") * get("block_size"), get("input_dim"))
    layers = max(get("depth"), get("hidden_layers"), 1)
    weights = COPIES * layers * width * width * item
    activations = 2 * layers * get("batch", 1) * width * item
    steps = get("steps")
    series = 8 * 4 * steps + 8 * 7 * layers * (steps // max(get("diag_every", 1), 1) + 1) if steps else 0
    data = (get("n_train") + get("n_val")) * max(get("input_dim"), 1) * 8
    return weights + activations + series + data


def check(config, what: str = ""):
    """ConfigError (one line, with the number and the limit) for what cannot fit or is beyond a bound."""
    import psutil

    where = f"{what}: " if what else ""
    steps, max_steps = int(getattr(config, "steps", 0) or 0), bound("INITSTUDY_MAX_STEPS", 1e8)
    if steps > max_steps:
        raise ConfigError(f"{where}steps={steps:,} is beyond the bound of {max_steps:,.0f} steps per run; "
                          "raise INITSTUDY_MAX_STEPS to run it")
    need, fraction = estimate_bytes(config), bound("INITSTUDY_MEMORY_FRACTION", 0.8)
    have = psutil.virtual_memory().available * fraction
    if need > have:
        raise ConfigError(f"{where}needs at least {need / 2**30:,.1f} GiB of memory (weights, activations, series); "
                          f"this machine has {have / 2**30:,.1f} GiB available ({fraction:g} of its free memory, "
                          "INITSTUDY_MEMORY_FRACTION)")


def check_runs(n: int):
    limit = bound("INITSTUDY_MAX_RUNS", 10_000)
    if n > limit:
        raise ConfigError(f"the grid has {n:,} points, beyond the bound of {limit:,.0f} runs per sweep; "
                          "raise INITSTUDY_MAX_RUNS to run it")
