"""Lab 00, the variance walk: forward one batch through `depth` random layers, per-layer variance;
and beside it the rest of mean-field signal propagation (docs/signal-propagation.md).

Pure: WalkConfig in, WalkResult out. Layer 0 is the input; layer l's value is the pre-activation
z_l = phi(z_{l-1}) @ W_l + b_l (z_1 = x @ W_1 + b_1; no biases unless sigma_b2 > 0). Statistics
accumulate in float64 whatever the dtype: np.var on float16 data overflows long before the
activations do.

Beside the lab's batch, through the same weights (each from its own derived seed, so the lab's
series stay bit-identical): a random N(0, 1) top gradient backpropagated to every layer, a batch of
input pairs of correlation c0, and the input-output Jacobian at the batch's first input.
"""
from dataclasses import dataclass

import numpy as np

from initstudy.core import inits, lsuv, nn, resnet, seeds, theory

from initstudy.core.config import ConfigError, at_least, one_of, positive
from initstudy.core.diagnostics import pair_correlation  # noqa: F401 (walk's and residual's corr)

DTYPES = ("float64", "float32", "float16")
# config fields beyond lab 00's: results.json keeps them in its "signal" block, so that its "config"
# (and every key it had) stays as the lab's runs recorded it
SIGNAL_FIELDS = ("sigma_b2", "gain", "c0")
# the architecture (issue 26, studies/walk/residual.py): results.json keeps them in a "residual" block,
# written only where they differ from the plain MLP's, so an MLP walk's document is what it always was
ARCH_FIELDS = {"arch": "mlp", "branch": "", "branch_layers": 2, "norm": "none"}
ARCHS = resnet.ARCHS
NORMS = ("none", "batchnorm")
JACOBIAN_EXACT_MAX_WIDTH = 1024  # exact singular values up to here; above, the mean from random probes
JACOBIAN_PROBES = 64


@dataclass(frozen=True)
class WalkConfig:
    depth: int = 20
    width: int = 256
    batch: int = 64
    input_variance: float = 1.0
    activation: str = "linear"
    dtype: str = "float64"
    seed: int = 42
    sigma_b2: float = 0.0  # bias variance; 0: no biases (the lab's case)
    gain: float = 1.0  # multiplies the init's std: sigma_w^2 = n Var(W) = n sigma^2 gain^2
    c0: float = 0.5  # correlation of the input pairs
    arch: str = "mlp"  # mlp, or resnet: x_{l+1} = x_l + alpha B(x_l) (core/resnet.py)
    branch: str = ""  # resnet's branch scheme (core/resnet.BRANCHES); empty: none
    branch_layers: int = 2  # weight layers per branch, 1 or 2
    norm: str = "none"  # batchnorm: after each Linear (mlp), or in the branch (resnet)

    @property
    def scheme(self) -> str:
        return self.branch or "none"

    def validate(self):
        self.validate_arch()
        for name in ("depth", "width", "batch", "input_variance", "gain"):
            positive(name, getattr(self, name))
        at_least("seed", self.seed, 0)
        at_least("sigma_b2", self.sigma_b2, 0)
        if not -1 < self.c0 < 1:
            raise ConfigError(f"c0 must be in (-1, 1) (a correlation), got {self.c0!r}")
        one_of("activation", self.activation, tuple(nn.ACTIVATIONS))
        one_of("dtype", self.dtype, DTYPES)

    def validate_arch(self):
        resnet.check_arch(self.arch, self.branch, self.branch_layers)
        one_of("norm", self.norm, NORMS)
        if self.arch != "mlp" or self.norm != "none":
            if self.sigma_b2 > 0:
                raise ConfigError(f"sigma_b2 applies to arch=mlp norm=none (a resnet's or BN walk's biases start at 0); "
                                  f"got sigma_b2={self.sigma_b2}")

    def check_init(self, init: str):
        """What an init asks of the architecture (the job calls this before anything is recorded)."""
        resnet.check_init(init, self.arch, self.norm)

    def input_seed(self) -> int:
        return seeds.derive_seed(self.seed, "walk/input")

    def weight_seed(self, init: str) -> int:
        return seeds.derive_seed(self.seed, f"walk/weights/{init}")

    def bias_seed(self, init: str) -> int:
        return seeds.derive_seed(self.seed, f"walk/biases/{init}")

    def stream_seeds(self) -> dict:
        """The signal-propagation streams every init shares (manifest seeds)."""
        return {name: seeds.derive_seed(self.seed, f"walk/{name}") for name in ("pairs", "top_grad", "probes")}


@dataclass
class WalkResult:
    init: str
    weight_seed: int
    sigma2: float  # the init's weight variance at this width
    var: np.ndarray  # empirical variance per layer, inf/nan once overflowed
    var_pred: np.ndarray  # one-step: n sigma^2 E[phi(z_{l-1})^2], measured on the previous layer
    var_theory: np.ndarray  # closed form from the input alone
    saturated: np.ndarray  # bool: the layer holds a non-finite value (overflow)
    signal: "Signal" = None
    lsuv: "lsuv.Report | None" = None  # init lsuv: its per-layer scales on the input batch (seed: input_seed)
    mean: np.ndarray = None  # mean of z_l over the batch and the units (recorded in the signal block)

    def series(self) -> dict:
        return {"var": self.var, "var_pred": self.var_pred, "var_theory": self.var_theory,
                "saturated": self.saturated.astype(float)}


@dataclass
class Signal:
    """Signal propagation beside the walk: per layer 0..depth, and the run's summary."""
    sigma_w2: float  # n Var(W): the mean-field sigma_w^2
    bias_seed: int | None  # None without biases
    mean: np.ndarray  # mean of z_l over the batch and the units (SELU's self-normalizing claim: mean and var)
    grad_var: np.ndarray  # Var(dL/dz_l) from an N(0, 1) top gradient
    grad_var_theory: np.ndarray  # S eq. 12-13 along the layers' q_l
    corr: np.ndarray  # mean correlation of the input pairs at layer l
    corr_theory: np.ndarray  # the c-map iterated from c0 along q_l
    scales: dict  # theory.depth_scales: q_star, chi1, c_star, xi_q, xi_c (those that exist), phase
    jacobian_method: str  # "exact" (singular values) or "probes" (the mean only, above JACOBIAN_EXACT_MAX_WIDTH)
    jacobian_sv: np.ndarray  # singular values of dz_L/dz_0 at the first input (empty for "probes")
    jacobian_msv: float  # mean squared singular value
    jacobian_msv_theory: float  # prod_l chi(l)
    jacobian_spread: float  # log10(max / min singular value); NaN for "probes"
    extra: dict = None  # resnet: q_ratio(_theory); BN MLP: grad_growth_per_layer(_theory) (walk/residual.py)

    def series(self) -> dict:
        return {"grad_var": self.grad_var, "grad_var_theory": self.grad_var_theory, "corr": self.corr,
                "corr_theory": self.corr_theory, "mean": self.mean}

    def summary(self) -> dict:
        """The run's numbers: the depth scales that exist, and the Jacobian's moments."""
        out = {k: v for k, v in self.scales.items() if k != "phase"}
        out.update(jacobian_msv=self.jacobian_msv, jacobian_msv_theory=self.jacobian_msv_theory)
        if np.isfinite(self.jacobian_spread):
            out["jacobian_spread"] = self.jacobian_spread
        return {**out, **(self.extra or {})}


def input_batch(config: WalkConfig) -> np.ndarray:
    """The batch every init sees: (batch, width), N(0, input_variance), in the run's dtype."""
    x = seeds.rng(config.input_seed()).standard_normal((config.batch, config.width))
    return (x * np.sqrt(config.input_variance)).astype(config.dtype)


def pair_batch(config: WalkConfig) -> np.ndarray:
    """(2, batch, width): `batch` input pairs x_a, x_b = c0 x_a + sqrt(1 - c0^2) x', N(0, input_variance)."""
    za, zb = seeds.rng(config.stream_seeds()["pairs"]).standard_normal((2, config.batch, config.width))
    pairs = np.stack([za, config.c0 * za + np.sqrt(1 - config.c0**2) * zb])
    return (pairs * np.sqrt(config.input_variance)).astype(config.dtype)


def run_walk(config: WalkConfig, init: str, signal: bool = True) -> WalkResult:
    """The walk of one init; signal=False computes lab 00's series alone (no pairs, backward or
    Jacobian: the 1/sqrt(n) study walks hundreds of nets)."""
    one_of("init", init, tuple(inits.INITS))
    if config.arch != "mlp" or config.norm != "none":
        return run_architecture(config, init)
    n, depth, sb2 = config.width, config.depth, config.sigma_b2
    sigma2 = inits.weight_variance(init, n, config.gain)
    act = nn.ACTIVATIONS[config.activation]
    phi = act.fn
    rng = seeds.rng(config.weight_seed(init))
    bias_rng = seeds.rng(config.bias_seed(init)) if sb2 > 0 else None

    var = np.empty(depth + 1)
    mean = np.empty(depth + 1)
    pred = np.empty(depth + 1)
    corr = np.empty(depth + 1)
    saturated = np.zeros(depth + 1, bool)
    z = input_batch(config)
    zp = pair_batch(config) if signal else None
    var[0] = pred[0] = config.input_variance  # pred[0]: the nominal input variance
    var[0] = np.var(z, dtype=np.float64)
    mean[0] = np.mean(z, dtype=np.float64)
    corr[0] = pair_correlation(zp) if signal else np.nan
    ws, zs = [], [z]  # kept for the backward pass and the Jacobian
    report = lsuv.Report(config.input_seed()) if inits.INITS[init].needs_data else None  # LSUV on the walk's own input batch
    with np.errstate(over="ignore", invalid="ignore"):
        for l in range(1, depth + 1):
            w = inits.sample_weights(init, rng, n, n, config.gain)
            b = None if bias_rng is None else (bias_rng.standard_normal(n) * np.sqrt(sb2)).astype(config.dtype)
            h = z if l == 1 else phi(z)
            s2 = sigma2
            if report is not None:  # Mishkin & Matas Alg. 1 on this layer, given the layers below as scaled
                w, _ = lsuv.next_layer(report, h, w, b)
                s2 = sigma2 * report.layers[-1].scale ** 2
            w = w.astype(config.dtype)
            pred[l] = n * s2 * np.mean(np.square(h, dtype=np.float64)) + sb2
            z = h @ w if b is None else h @ w + b
            saturated[l] = saturated[l - 1] or not np.all(np.isfinite(z))
            var[l] = np.var(z, dtype=np.float64) if not saturated[l] else np.inf
            mean[l] = np.mean(z, dtype=np.float64)
            if signal:
                hp = zp if l == 1 else phi(zp)
                zp = hp @ w if b is None else hp @ w + b
                corr[l] = pair_correlation(zp)
                ws.append(w)
                zs.append(z)
    q = theory.closed_form(config.activation, n * sigma2, depth, config.input_variance, sb2)
    if signal:
        sig = propagate(config, act, n * sigma2, q, ws, zs, corr, None if bias_rng is None else config.bias_seed(init),
                        mean)
    return WalkResult(init, config.weight_seed(init), sigma2, var, pred, q, saturated, sig if signal else None, report,
                      mean)


def propagate(config, act, sw2, q, ws, zs, corr, bias_seed, mean) -> Signal:
    """Backward variance, the Jacobian and the theory beside them, from the forward pass's weights
    and pre-activations."""
    depth = config.depth
    streams = config.stream_seeds()
    grad_var = np.empty(depth + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        g = seeds.rng(streams["top_grad"]).standard_normal(zs[-1].shape).astype(config.dtype)
        grad_var[depth] = np.var(g, dtype=np.float64)
        for l in range(depth, 0, -1):  # dL/dz_{l-1} = (dL/dz_l W_l^T) phi'(z_{l-1}); z_0 = x enters without phi
            g = g @ ws[l - 1].T
            if l > 1:
                g = g * act.d1(zs[l - 1])
            grad_var[l - 1] = np.var(g, dtype=np.float64)
        sv, msv, spread, method = jacobian(config, act, ws, zs, streams["probes"])
    grad_theory = theory.grad_var_series(config.activation, q, sw2)
    return Signal(
        sigma_w2=sw2, bias_seed=bias_seed, mean=mean, grad_var=grad_var, grad_var_theory=grad_theory, corr=corr,
        corr_theory=theory.corr_series(config.activation, config.c0, q, sw2, config.sigma_b2),
        scales=theory.depth_scales(config.activation, sw2, config.sigma_b2, config.input_variance),
        jacobian_method=method, jacobian_sv=sv, jacobian_msv=msv, jacobian_msv_theory=float(grad_theory[0]),
        jacobian_spread=spread)


def jacobian(config, act, ws, zs, probe_seed):
    """(singular values, mean squared singular value, log10 max/min, method) of J = dz_L/dz_0 at the
    first input (row-vector convention: dz_L = dz_0 J, J = W_1 D_1 W_2 ... D_{L-1} W_L with
    D_l = diag(phi'(z_l))), in float64. Exact by SVD up to JACOBIAN_EXACT_MAX_WIDTH; above it the
    n x n products cost too much, and the mean squared singular value tr(J^T J)/n is estimated from
    JACOBIAN_PROBES Gaussian probes v (E|v J|^2 = tr(J^T J)); the spectrum is not computed."""
    n = config.width
    exact = n <= JACOBIAN_EXACT_MAX_WIDTH
    m = np.eye(n) if exact else seeds.rng(probe_seed).standard_normal((JACOBIAN_PROBES, n))
    for l, w in enumerate(ws, start=1):
        if l > 1:
            m = m * act.d1(zs[l - 1][0].astype(np.float64))
        m = m @ w.astype(np.float64)
    if not exact:
        return np.array([]), float(np.sum(m * m) / (JACOBIAN_PROBES * n)), float("nan"), "probes"
    if not np.all(np.isfinite(m)):
        return np.full(n, np.nan), float("nan"), float("nan"), "exact"
    sv = np.linalg.svd(m, compute_uv=False)
    with np.errstate(divide="ignore"):
        spread = float(np.log10(sv[0] / sv[-1]))
    return sv, float(np.mean(sv**2)), spread, "exact"


def run_architecture(config: WalkConfig, init: str) -> WalkResult:
    """The walk of a resnet or a BN MLP (studies/walk/residual.py), per block, with its signal block."""
    from initstudy.studies.walk import residual

    config.check_init(init)
    x = input_batch(config)
    top_shape = (config.batch, config.width)
    top = seeds.rng(config.stream_seeds()["top_grad"]).standard_normal(top_shape).astype(config.dtype)
    if config.arch == "resnet":
        out = residual.run_resnet(config, init, x, pair_batch(config), top)
    else:
        out = residual.run_bn_mlp(config, init, x, top)
    var, pred, q, saturated, mean, grad_var, gt, corr, ct, (sv, msv, spread, method), extra = out
    sigma2 = inits.weight_variance(init, config.width, config.gain)
    sig = Signal(sigma_w2=config.width * sigma2, bias_seed=None, mean=mean, grad_var=grad_var, grad_var_theory=gt,
                 corr=corr, corr_theory=ct, scales={"phase": "undefined"}, jacobian_method=method, jacobian_sv=sv,
                 jacobian_msv=msv, jacobian_msv_theory=float(gt[0] / gt[-1]) if method != "none" else float("nan"),
                 jacobian_spread=spread, extra=extra)
    return WalkResult(init, config.weight_seed(init), sigma2, var, pred, q, saturated, sig, None, mean)
