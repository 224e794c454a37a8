"""Init schemes: name -> weight variance Var(W)(fan_in, fan_out) and a sampler.

Adding a scheme is one entry in INITS; the entry points, the theory and the plots pick it up.
Weights are drawn in float64 and cast, so every dtype of a run sees the same draw. Shapes are ours,
(fan_in, fan_out) (y = x @ W); torch's are (out, in), the transpose (docs/inits.md).
`init=all` means the lab's three (LAB_INITS), whatever else is registered: projects/ depend on it.
"""
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

UNIFORM_A = 0.5  # the lab's U[-0.5, 0.5]: variance a^2/3 = 1/12, whatever the fan-in
TRUNC_AT = 2.0  # truncated_normal cuts the unit normal at +-2 sigma (TF/Keras' truncated VarianceScaling)
LAB_INITS = ("uniform", "xavier", "kaiming")  # what init=all runs (lab 00/01)


def truncated_unit_variance(beta: float = TRUNC_AT) -> float:
    """Var of N(0, 1) truncated to [-beta, beta]: 1 - 2 beta phi(beta) / (2 Phi(beta) - 1) (the
    truncated-normal closed form; beta = 2: 0.7737413, sqrt = 0.8796257, Keras' 0.87962566103423978)."""
    pdf = math.exp(-beta * beta / 2) / math.sqrt(2 * math.pi)
    return 1 - 2 * beta * pdf / math.erf(beta / math.sqrt(2))


@dataclass(frozen=True)
class Init:
    name: str
    label: str  # the lab's wording, for plots and manifests (n = fan_in, m = fan_out)
    variance: Callable[[int, int], float]  # Var(W) as a function of (fan_in, fan_out), gain 1
    draw: Callable[[np.random.Generator, tuple], np.ndarray]  # unit-scale draw, shape (fan_in, fan_out)
    unit_variance: Callable[[int, int], float]  # Var of one `draw` element
    needs_data: bool = False  # data-dependent (lsuv): rescaled on a batch after the draw (initstudy/core/lsuv.py)


def _normal(rng, shape):
    return rng.standard_normal(shape)


def _uniform(rng, shape):
    return rng.uniform(-UNIFORM_A, UNIFORM_A, shape)


def _unit_uniform(rng, shape):  # U[-1, 1]: variance 1/3
    return rng.uniform(-1.0, 1.0, shape)


def _truncated(rng, shape):
    """N(0, 1) restricted to [-TRUNC_AT, TRUNC_AT]: values outside are redrawn (as torch.nn.init.trunc_normal_)."""
    x = rng.standard_normal(shape)
    out = np.abs(x) > TRUNC_AT
    while out.any():
        x[out] = rng.standard_normal(int(out.sum()))
        out = np.abs(x) > TRUNC_AT
    return x


def _orthogonal(rng, shape):
    """A Haar (semi-)orthogonal matrix, as torch.nn.init.orthogonal_ makes it for torch's (out, in)
    weight, transposed to ours: QR of an (out, in) Gaussian (of its transpose when out < in), Q's
    columns multiplied by sign(diag R) (Mezzadri 2007: without it Q is not Haar). The result has
    orthonormal columns when fan_in >= fan_out, orthonormal rows otherwise: Var = 1/max(fan_in, fan_out)."""
    fan_in, fan_out = shape
    a = rng.standard_normal((fan_out, fan_in))  # torch's (rows, cols) = (out, in)
    tall = fan_out >= fan_in
    q, r = np.linalg.qr(a if tall else a.T)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    return (q if tall else q.T).T


def _fixed(v):
    return lambda fan_in, fan_out: v


def _orth_var(fan_in, fan_out):
    return 1.0 / max(fan_in, fan_out)


INITS = {
    i.name: i
    for i in [
        # the lab's three (bit-identical draws to before the registry grew)
        Init("uniform", "uniform[-0.5, 0.5]", _fixed(UNIFORM_A**2 / 3), _uniform, _fixed(UNIFORM_A**2 / 3)),
        Init("xavier", "xavier N(0, 1/n)", lambda fi, fo: 1.0 / fi, _normal, _fixed(1.0)),
        Init("kaiming", "kaiming N(0, 2/n)", lambda fi, fo: 2.0 / fi, _normal, _fixed(1.0)),
        # Saxe et al. 2013; torch.nn.init.orthogonal_
        Init("orthogonal", "orthogonal (Haar)", _orth_var, _orthogonal, _orth_var),
        # Mishkin & Matas 2015: orthogonal, then each layer rescaled to unit output variance on a batch
        Init("lsuv", "LSUV (orthogonal, unit variance)", _orth_var, _orthogonal, _orth_var, needs_data=True),
        # Glorot & Bengio 2010 eq. 12 (normalized init), Gaussian and uniform: torch's xavier_normal_/_uniform_
        Init("xavier_avg", "Glorot N(0, 2/(n+m))", lambda fi, fo: 2.0 / (fi + fo), _normal, _fixed(1.0)),
        Init("xavier_uniform", "Glorot U, Var 2/(n+m)", lambda fi, fo: 2.0 / (fi + fo),
             _unit_uniform, _fixed(1 / 3)),
        # He et al. 2015, torch's kaiming_uniform_(a=0): U[+-sqrt(6/n_in)]
        Init("kaiming_uniform", "He U[+-sqrt(6/n)]", lambda fi, fo: 2.0 / fi, _unit_uniform, _fixed(1 / 3)),
        # LeCun et al. 1998: the lab's "xavier" draw under its usual name
        Init("lecun_normal", "LeCun N(0, 1/n)", lambda fi, fo: 1.0 / fi, _normal, _fixed(1.0)),
        # N(0, 1/n_in) cut at +-2 sigma, rescaled so Var is still 1/n_in (Keras' lecun_normal)
        Init("truncated_normal", "truncated N, Var 1/n", lambda fi, fo: 1.0 / fi, _truncated,
             _fixed(truncated_unit_variance())),
        # Glorot & Bengio 2010 eq. 1, the "standard" init U[+-1/sqrt(n)] (torch's nn.Linear default)
        Init("standard_uniform", "standard U[+-1/sqrt(n)]", lambda fi, fo: 1.0 / (3 * fi), _unit_uniform, _fixed(1 / 3)),
    ]
}


def weight_variance(name: str, fan_in: int, gain: float = 1.0, fan_out: int | None = None) -> float:
    """Var(W) of the scheme, with `gain` multiplying the standard deviation (fan_out: fan_in if not given,
    the walk's square layers). The mean-field sigma_w^2 is fan_in * this."""
    return INITS[name].variance(fan_in, fan_in if fan_out is None else fan_out) * gain**2


def sample_weights(name: str, rng: np.random.Generator, fan_in: int, fan_out: int, gain: float = 1.0) -> np.ndarray:
    """A (fan_in, fan_out) float64 weight matrix with variance weight_variance(name, fan_in, gain, fan_out).
    For a data-dependent scheme (INITS[name].needs_data: lsuv) this is its start only: the caller rescales
    it on a batch (lsuv.lsuv / lsuv.next_layer, as walk and ablate do) or refuses the scheme (diagnose)."""
    init = INITS[name]
    scale = np.sqrt(init.variance(fan_in, fan_out) / init.unit_variance(fan_in, fan_out)) * gain
    return init.draw(rng, (fan_in, fan_out)) * scale
