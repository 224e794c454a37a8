"""Variance predictions for a random MLP (mean-field signal propagation).

Layer l's pre-activation z_l = phi(z_{l-1}) @ W_l with W_ij ~ (0, sigma_w^2), fan-in n, and
z_1 = x @ W_1 (the input is not passed through phi). Then, for large n (Poole et al. 2016):

    q_1 = n sigma_w^2 E[x^2]
    q_l = n sigma_w^2 E_{z ~ N(0, q_{l-1})}[phi(z)^2]

The Gaussian expectation is exact for linear (q) and ReLU (q/2), Gauss-Hermite for the rest.
"""
import numpy as np

from initstudy import nn

EXACT_SECOND_MOMENT = {
    "linear": lambda q: q,
    "relu": lambda q: q / 2,
}
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(128)


def gaussian_second_moment(activation: str, q: float) -> float:
    """E[phi(z)^2] for z ~ N(0, q)."""
    if activation in EXACT_SECOND_MOMENT:
        return float(EXACT_SECOND_MOMENT[activation](q))
    if not np.isfinite(q):
        return float("nan")
    # E[f(z)] = 1/sqrt(pi) * sum_i w_i f(sqrt(2q) x_i)
    phi = nn.ACTIVATIONS[activation].fn
    return float(np.sum(_GH_WEIGHTS * phi(np.sqrt(2 * q) * _GH_NODES) ** 2) / np.sqrt(np.pi))


def closed_form(activation: str, n_sigma2: float, depth: int, input_second_moment: float) -> np.ndarray:
    """q_0..q_depth from the input alone; n_sigma2 = fan_in * sigma_w^2 (the same at every layer)."""
    q = np.empty(depth + 1)
    q[0] = input_second_moment
    with np.errstate(over="ignore"):
        if depth >= 1:
            q[1] = n_sigma2 * input_second_moment
        for l in range(2, depth + 1):
            q[l] = n_sigma2 * gaussian_second_moment(activation, q[l - 1])
    return q


def growth_per_layer(activation: str, n_sigma2: float) -> float:
    """The per-layer variance factor where it is constant (linear, ReLU); tanh has none."""
    if activation not in EXACT_SECOND_MOMENT:
        return float("nan")
    return n_sigma2 * EXACT_SECOND_MOMENT[activation](1.0)
