"""Mean-field signal propagation in a random residual network (core/resnet.py), forward and backward.

Yang & Schoenholz 2017 ("Mean Field Residual Networks: On the Edge of Chaos", YS), their full residual
network (section 3, eq. for p^l and the gradient's dagger-chi): with the stream x_l of second moment q_l
and a branch whose weights W_k have sigma_k^2 = fan_in Var(W_k), the branch output is uncorrelated
with x_l at init (W_m is independent of x_l, zero mean), so second moments add:

    forward    q_{l+1}  = q_l + alpha_l^2 E[B(x_l)^2]
               m = 2:   E[B^2] = sigma_2^2 E[phi(u)^2],  u ~ N(0, sigma_1^2 q_l)
               m = 1:   E[B^2] = sigma^2   E[phi(u)^2],  u ~ N(0, q_l)
               BN in the branch standardises u:          u ~ N(0, 1) in both
    backward   qt_l     = qt_{l+1} (1 + alpha_l^2 chi_B(q_l))     (gradient independence, YS eq. for chi)
               m = 2:   chi_B = sigma_2^2 sigma_1^2 E[phi'(u)^2];   m = 1: sigma^2 E[phi'(u)^2]
               BN:      chi_B = sigma_2^2 E[phi'(u)^2] / v_l, BN dividing by the std of its input over the
                        batch: v_l (m = 1), sigma_1^2 v_l (m = 2), v_l the stream's variance over the batch.
                        v_l < q_l where phi has a mean (ReLU): E[phi] W_2 is the same for every example, an
                        offset per unit that q counts and BN's batch statistics do not:
                        v_{l+1} = v_l + alpha_l^2 sigma_2^2 Var[phi(u)], u ~ N(0, 1). (Measured: with q_l in
                        place of v_l, ReLU's qt_0 / qt_L at L = 50 came out 2.5x below the network's.)
                        BN's projections over the batch are left out (O(1/batch) inside a branch; the plain
                        BN MLP is another matter: BN_RELU_GRAD_GROWTH below).
    Jacobian   E[mean squared singular value of dx_L/dx_0] = prod_l (1 + alpha_l^2 chi_B(q_l)) = qt_0 / qt_L.

Closed forms (He sigma^2 = 2 for ReLU, sigma^2 = 1 for linear, no BN):
    linear  m = 2: q_{l+1} = q_l (1 + alpha^2 s1 s2)      m = 1: q_l (1 + alpha^2 s)       (chi_B the same)
    ReLU    m = 2: q_{l+1} = q_l (1 + alpha^2 s1 s2 / 2)  m = 1: q_l (1 + alpha^2 s / 2)   (chi_B the same)
so unscaled ReLU + He multiplies q by 3 per block (m = 2): q_L / q_0 = 3^L, exponential in L; with
alpha = 1/sqrt(L) it is (1 + 2/L)^L < e^2 for every L (bounded; Hanin & Rolnick 2018: sum alpha^2 < inf).
zero and fixup have a zero branch at init (alpha = 0; W_2 = 0): q_L = q_0 and qt_0 = qt_L exactly.
With BN (ReLU, He): q_{l+1} = q_l + alpha^2 s2 / 2: linear growth in L (De & Smith 2020, SkipInit section 3).

The plain MLP with BatchNorm after each Linear (ReLU): Yang et al. 2019 ("A Mean Field Theory of Batch
Normalization", Theorem 3.10 / Cor. 3.12): at large width and batch the gradient's squared norm grows
going backward by pi / (pi - 1) per layer, whatever sigma_w^2 (BN removes the weights' scale).
"""
import math

import numpy as np

from initstudy.core import nn, theory

BN_RELU_GRAD_GROWTH = math.pi / (math.pi - 1)  # Yang et al. 2019 for ReLU: 1.4669...


def branch_second_moment(activation: str, q: float, sw2: float, m: int, norm: str) -> float:
    """E[B(x)^2] of a branch at alpha = 1 whose input has second moment q (sw2 = sigma^2 of every W_k)."""
    var_u = 1.0 if norm == "batchnorm" else (sw2 * q if m == 2 else q)
    return sw2 * theory.expect(activation, "phi2", var_u)


def phi_mean(activation: str) -> float:
    """E[phi(u)], u ~ N(0, 1): closed for linear (0) and ReLU (1/sqrt(2 pi)); else 128-node Gauss-Hermite."""
    if activation in ("linear", "relu"):
        return 0.0 if activation == "linear" else 1 / math.sqrt(2 * math.pi)
    x, w = np.polynomial.hermite_e.hermegauss(128)
    return float(np.sum(w * nn.ACTIVATIONS[activation].fn(x)) / math.sqrt(2 * math.pi))


def branch_batch_variance(activation: str, sw2: float) -> float:
    """What a BN branch adds to the stream's variance over the batch: sigma^2 Var[phi(u)], u ~ N(0, 1)."""
    return sw2 * (theory.expect(activation, "phi2", 1.0) - phi_mean(activation) ** 2)


def branch_chi(activation: str, q: float, sw2: float, m: int, norm: str, v: float | None = None) -> float:
    """chi_B: the branch Jacobian's mean squared singular value at alpha = 1 (v: the stream's variance
    over the batch, which BN divides by)."""
    if norm == "batchnorm":
        return sw2 * theory.expect(activation, "dphi2", 1.0) / v
    return sw2 ** m * theory.expect(activation, "dphi2", sw2 * q if m == 2 else q)


def alphas(branch: str, depth: int) -> np.ndarray:
    """The alpha_l the theory sees at init: 0 for zero and fixup (their branches output 0)."""
    a = {"none": 1.0, "sqrt_depth": 1 / math.sqrt(depth), "zero": 0.0, "fixup": 0.0}[branch]
    return np.full(depth, a)


def q_series(activation: str, branch: str, depth: int, q0: float, sw2: float, m: int = 2,
             norm: str = "none") -> np.ndarray:
    """q_0..q_L of the stream (q_0: the second moment of x_0)."""
    q = np.empty(depth + 1)
    q[0] = q0
    with np.errstate(over="ignore", invalid="ignore"):
        for l, a in enumerate(alphas(branch, depth)):
            q[l + 1] = q[l] + (a * a * branch_second_moment(activation, q[l], sw2, m, norm) if a else 0.0)
    return q


def batch_variance_series(activation: str, branch: str, q0: float, depth: int, sw2: float) -> np.ndarray:
    """v_0..v_L of a BN branch's stream: its variance over the batch (v_0 = q_0: x_0 has no offset)."""
    add = np.cumsum(np.concatenate([[0.0], alphas(branch, depth) ** 2 * branch_batch_variance(activation, sw2)]))
    return q0 + add


def grad_series(activation: str, branch: str, q: np.ndarray, sw2: float, m: int = 2, norm: str = "none",
                top: float = 1.0) -> np.ndarray:
    """qt_0..qt_L: the second moment of dLoss/dx_l from a top gradient of second moment `top` at x_L."""
    depth = len(q) - 1
    a = alphas(branch, depth)
    v = batch_variance_series(activation, branch, q[0], depth, sw2) if norm == "batchnorm" else q
    out = np.empty(len(q))
    out[-1] = top
    with np.errstate(over="ignore", invalid="ignore"):
        for l in range(depth - 1, -1, -1):
            chi = branch_chi(activation, q[l], sw2, m, norm, v[l]) if a[l] else 0.0
            out[l] = out[l + 1] * (1 + a[l] ** 2 * chi)
    return out


def growth_closed_form(activation: str, branch: str, depth: int, sw2: float, m: int = 2) -> float:
    """q_L / q_0 in closed form (linear, ReLU; no BN): prod (1 + alpha^2 k), k = s^m (linear), s^m / 2 (ReLU)."""
    k = sw2 ** m * (1.0 if activation == "linear" else 0.5 if activation == "relu" else float("nan"))
    a2 = alphas(branch, depth)[0] ** 2
    return (1 + a2 * k) ** depth
