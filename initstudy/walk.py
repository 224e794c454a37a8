"""Lab 00, the variance walk: forward one batch through `depth` random layers, per-layer variance.

Pure: WalkConfig in, WalkResult out. Layer 0 is the input; layer l's value is the pre-activation
z_l = phi(z_{l-1}) @ W_l (z_1 = x @ W_1). Statistics accumulate in float64 whatever the dtype:
np.var on float16 data overflows long before the activations do.
"""
from dataclasses import dataclass

import numpy as np

from initstudy import inits, labs, nn, seeds, theory
from initstudy.config import at_least, one_of, positive

DTYPES = ("float64", "float32", "float16")
EXPERIMENT = labs.WALK  # the MLflow experiment and the manifest's "experiment"


@dataclass(frozen=True)
class WalkConfig:
    depth: int = 20
    width: int = 256
    batch: int = 64
    input_variance: float = 1.0
    activation: str = "linear"
    dtype: str = "float64"
    seed: int = 42

    def validate(self):
        for name in ("depth", "width", "batch", "input_variance"):
            positive(name, getattr(self, name))
        at_least("seed", self.seed, 0)
        one_of("activation", self.activation, tuple(nn.ACTIVATIONS))
        one_of("dtype", self.dtype, DTYPES)

    def input_seed(self) -> int:
        return seeds.derive_seed(self.seed, "walk/input")

    def weight_seed(self, init: str) -> int:
        return seeds.derive_seed(self.seed, f"walk/weights/{init}")


@dataclass
class WalkResult:
    init: str
    weight_seed: int
    sigma2: float  # the init's weight variance at this width
    var: np.ndarray  # empirical variance per layer, inf/nan once overflowed
    var_pred: np.ndarray  # one-step: n sigma^2 E[phi(z_{l-1})^2], measured on the previous layer
    var_theory: np.ndarray  # closed form from the input alone
    saturated: np.ndarray  # bool: the layer holds a non-finite value (overflow)

    def series(self) -> dict:
        return {"var": self.var, "var_pred": self.var_pred, "var_theory": self.var_theory,
                "saturated": self.saturated.astype(float)}


def input_batch(config: WalkConfig) -> np.ndarray:
    """The batch every init sees: (batch, width), N(0, input_variance), in the run's dtype."""
    x = seeds.rng(config.input_seed()).standard_normal((config.batch, config.width))
    return (x * np.sqrt(config.input_variance)).astype(config.dtype)


def run_walk(config: WalkConfig, init: str) -> WalkResult:
    one_of("init", init, tuple(inits.INITS))
    n, depth = config.width, config.depth
    sigma2 = inits.weight_variance(init, n)
    phi = nn.ACTIVATIONS[config.activation].fn
    rng = seeds.rng(config.weight_seed(init))

    var = np.empty(depth + 1)
    pred = np.empty(depth + 1)
    saturated = np.zeros(depth + 1, bool)
    z = input_batch(config)
    var[0] = pred[0] = config.input_variance  # pred[0]: the nominal input variance
    var[0] = np.var(z, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        for l in range(1, depth + 1):
            w = inits.sample_weights(init, rng, n, n).astype(config.dtype)
            h = z if l == 1 else phi(z)
            pred[l] = n * sigma2 * np.mean(np.square(h, dtype=np.float64))
            z = h @ w
            saturated[l] = saturated[l - 1] or not np.all(np.isfinite(z))
            var[l] = np.var(z, dtype=np.float64) if not saturated[l] else np.inf
    q = theory.closed_form(config.activation, n * sigma2, depth, config.input_variance)
    return WalkResult(init, config.weight_seed(init), sigma2, var, pred, q, saturated)
