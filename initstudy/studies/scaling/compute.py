"""Lab 02, why 1/sqrt(n): the variance of a dot product, its compounding over depth, and the
finite-width spread around the mean-field prediction.

Pure: ScalingConfig in, ScalingResult out (docs/signal-propagation.md, "The 1/sqrt(n) study").

1. One dot product y = x . w, x ~ N(0, I_n), w = k z, z ~ N(0, I_n): E[y] = 0 and
   Var(y) = sum_i Var(x_i w_i) = n k^2 (the variance is quadratic in the scale k). So k = 1 gives n,
   the lab's k = 1/n gives 1/n, and only k = 1/sqrt(n) gives 1 at every width. Each width draws
   `draws` fresh (x, w) pairs per scale; the sample variance has relative s.d. sqrt((2 + 6/n)/draws)
   (x_i w_i has kurtosis 9).
2. Depth: sigma = c/sqrt(n) per weight is sigma_w^2 = c^2; after L layers the variance is c^{2L}
   (linear), c^2 (c^2/2)^{L-1} (ReLU) and the tanh q-map (theory.closed_form). The walk itself
   (walk.run_walk, Xavier with gain c) measures it.
3. Finite width: the mean-field q_L is exact only as n -> infinity. For one input through a
   Kaiming-ReLU net, log(var_L / q_L) is close to Gaussian with variance kappa L / n, kappa = 5
   (Hanin & Nica 2019; a linear net has kappa = 2: log chi^2_n / n per layer). Over `seeds` walks
   per width we measure its spread and fit kappa.
"""
import math
from dataclasses import dataclass

import numpy as np


from initstudy.core import seeds
from initstudy.core.config import ConfigError, at_least, positive
from initstudy.studies.walk.compute import WalkConfig, run_walk

MAX_WIDTH = 4096
SCALES = {  # key -> (label, k(n))
    "1": ("1", lambda n: 1.0),
    "1_over_n": ("1/n", lambda n: 1.0 / n),
    "1_over_sqrt_n": ("1/sqrt(n)", lambda n: 1.0 / math.sqrt(n)),
}
DEPTH_CS = {"0.5": 0.5, "1": 1.0, "sqrt2": math.sqrt(2.0), "2": 2.0}  # sigma = c / sqrt(n)
DEPTH_ACTIVATIONS = ("linear", "relu", "tanh")
KAPPA_THEORY = {"relu": 5.0, "linear": 2.0}  # Hanin & Nica 2019: Var log(var_L / q_L) ~ kappa L / n
FINITE_ACTIVATION = "relu"
DOT_CHUNK = 1 << 22  # numbers per chunk of draws: bounded memory at n = 4096


def _power_of_two(name, value, lo, hi):
    if not (lo <= value <= hi and value & (value - 1) == 0):
        raise ConfigError(f"{name} must be a power of 2 in {lo}..{hi}, got {value!r}")


@dataclass(frozen=True)
class ScalingConfig:
    min_width: int = 2  # one dot product: widths min_width..max_width, powers of 2
    max_width: int = 4096
    draws: int = 10000  # dot products per width and scale
    depth: int = 20  # depth compounding
    depth_width: int = 256
    depth_batch: int = 64
    fw_min_width: int = 64  # finite width: widths fw_min_width..fw_max_width
    fw_max_width: int = 1024
    fw_depth: int = 50
    seeds: int = 8  # walks per width for the finite-width spread
    seed: int = 42

    def validate(self):
        _power_of_two("min_width", self.min_width, 2, MAX_WIDTH)
        _power_of_two("max_width", self.max_width, 2, MAX_WIDTH)
        _power_of_two("fw_min_width", self.fw_min_width, 2, MAX_WIDTH)
        _power_of_two("fw_max_width", self.fw_max_width, 2, MAX_WIDTH)
        if self.min_width > self.max_width or self.fw_min_width > self.fw_max_width:
            raise ConfigError(f"widths out of order: min_width {self.min_width} > max_width {self.max_width}"
                              if self.min_width > self.max_width else
                              f"widths out of order: fw_min_width {self.fw_min_width} > fw_max_width {self.fw_max_width}")
        at_least("draws", self.draws, 2)
        at_least("seeds", self.seeds, 2)
        for name in ("depth", "depth_width", "depth_batch", "fw_depth"):
            positive(name, getattr(self, name))
        if self.fw_depth > 200 or self.depth > 200:
            raise ConfigError(f"depth and fw_depth must be <= 200, got {self.depth}, {self.fw_depth}")
        at_least("seed", self.seed, 0)

    def widths(self) -> list[int]:
        return [1 << e for e in range(self.min_width.bit_length() - 1, self.max_width.bit_length())]

    def fw_widths(self) -> list[int]:
        return [1 << e for e in range(self.fw_min_width.bit_length() - 1, self.fw_max_width.bit_length())]

    def dot_seed(self, scale: str) -> int:
        return seeds.derive_seed(self.seed, f"scaling/dot/{scale}")

    def depth_seed(self, activation: str, c: str) -> int:
        return seeds.derive_seed(self.seed, f"scaling/depth/{activation}/{c}")

    def finite_seed(self, n: int, s: int) -> int:
        return seeds.derive_seed(self.seed, f"scaling/finite/{n}/{s}")

    def stream_seeds(self) -> dict:
        """Every stream's seed, by name (the manifest's seeds)."""
        out = {f"dot/{k}": self.dot_seed(k) for k in SCALES}
        out.update({f"depth/{a}/{c}": self.depth_seed(a, c) for a in DEPTH_ACTIVATIONS for c in DEPTH_CS})
        out.update({f"finite/{n}/{s}": self.finite_seed(n, s) for n in self.fw_widths() for s in range(self.seeds)})
        return out


@dataclass
class ScalingResult:
    widths: np.ndarray
    dot_var: dict  # scale -> measured Var(x . w) per width
    dot_theory: dict  # scale -> n k^2
    dot_se: dict  # scale -> the sample variance's standard error per width (from theory)
    depth_var: dict  # (activation, c) -> measured variance per layer 0..depth
    depth_theory: dict  # (activation, c) -> q_l
    fw_widths: np.ndarray
    fw_log_ratio: np.ndarray  # (widths, seeds, fw_depth + 1): log((var_l / var_0) / (q_l / q_0))
    fw_sd: np.ndarray  # (widths, fw_depth + 1): its standard deviation over seeds
    kappa_fit: float  # least squares of sd^2 = kappa L / n through the origin
    kappa_theory: float

    def summary(self) -> dict:
        """The headline numbers (manifest results_summary, the run's step-0 metrics)."""
        out = {}
        for k in SCALES:
            z = (self.dot_var[k] - self.dot_theory[k]) / self.dot_se[k]
            out[f"max_abs_z_scale_{k}"] = float(np.max(np.abs(z)))
        out.update(kappa_fit=self.kappa_fit, kappa_theory=self.kappa_theory)
        return out


def dot_variance(n: int, k: float, draws: int, rng) -> float:
    """Sample variance of x . (k z) over `draws` fresh pairs, x, z ~ N(0, I_n), drawn in chunks."""
    chunk = max(1, DOT_CHUNK // n)
    ys = []
    for start in range(0, draws, chunk):
        m = min(chunk, draws - start)
        x = rng.standard_normal((m, n))
        w = rng.standard_normal((m, n)) * k
        ys.append(np.einsum("ij,ij->i", x, w))
    return float(np.var(np.concatenate(ys), ddof=1))


def run_scaling(config: ScalingConfig) -> ScalingResult:
    widths = config.widths()
    dot_var, dot_theory, dot_se = {}, {}, {}
    for key, (_, k) in SCALES.items():
        rng = seeds.rng(config.dot_seed(key))
        dot_var[key] = np.array([dot_variance(n, k(n), config.draws, rng) for n in widths])
        dot_theory[key] = np.array([n * k(n) ** 2 for n in widths])
        dot_se[key] = dot_theory[key] * np.sqrt((2 + 6 / np.array(widths)) / config.draws)

    depth_var, depth_theory = {}, {}
    for act in DEPTH_ACTIVATIONS:
        for name, c in DEPTH_CS.items():
            wc = WalkConfig(depth=config.depth, width=config.depth_width, batch=config.depth_batch, activation=act,
                            gain=c, seed=config.depth_seed(act, name))
            r = run_walk(wc, "xavier", signal=False)  # Xavier x gain c: sigma = c / sqrt(n)
            depth_var[(act, name)], depth_theory[(act, name)] = r.var, r.var_theory

    fw = config.fw_widths()
    log_ratio = np.empty((len(fw), config.seeds, config.fw_depth + 1))
    for i, n in enumerate(fw):
        for s in range(config.seeds):
            wc = WalkConfig(depth=config.fw_depth, width=n, batch=1, activation=FINITE_ACTIVATION, gain=math.sqrt(2.0),
                            seed=config.finite_seed(n, s))
            r = run_walk(wc, "xavier", signal=False)  # Kaiming-ReLU: sigma_w^2 = 2, the critical ReLU net
            log_ratio[i, s] = np.log(r.var / r.var[0]) - np.log(r.var_theory / r.var_theory[0])
    sd = np.std(log_ratio, axis=1, ddof=1)
    x = np.arange(config.fw_depth + 1)[None, :] / np.array(fw)[:, None]  # L / n
    kappa_fit = float(np.sum(sd**2 * x) / np.sum(x * x))
    return ScalingResult(np.array(widths), dot_var, dot_theory, dot_se, depth_var, depth_theory, np.array(fw),
                         log_ratio, sd, kappa_fit, KAPPA_THEORY[FINITE_ACTIVATION])


def title(cfg: dict) -> str:
    """The figure's title (the run draws it; export re-draws it from results.json: same bytes)."""
    return (f"Why 1/sqrt(n): widths {cfg['min_width']}..{cfg['max_width']}, depth {cfg['depth']} x {cfg['depth_width']}, "
            f"finite width {cfg['fw_min_width']}..{cfg['fw_max_width']} x {cfg['seeds']} seeds")


def depth_key(activation: str, c: str) -> str:
    return f"{activation}_c{c}"
