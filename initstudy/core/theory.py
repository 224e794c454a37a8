"""Mean-field signal propagation in a random MLP: q-map, c-map, chi_1, q*, c*, xi_q, xi_c, the phase.

Our convention: W_ij ~ (0, sigma_w^2 / n) with fan-in n, b_i ~ N(0, sigma_b^2); layer l's pre-activation
is z_l = phi(z_{l-1}) @ W_l + b_l and z_1 = x @ W_1 + b_1 (the input is not passed through phi). For
large n the pre-activations are Gaussian and (P = Poole et al. 2016, "Exponential expressivity in deep
neural networks through transient chaos"; S = Schoenholz et al. 2017, "Deep information propagation"):

    q-map (P eq. 3, S eq. 3)     q_l   = sigma_w^2 E[phi(u)^2] + sigma_b^2,          u ~ N(0, q_{l-1})
    c-map (P eq. 5, S eq. 4-5)   q12_l = sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2,   c_l = q12_l / q_l
                                 u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2), z1, z2 ~ N(0, 1)
    chi_1 (P eq. 7, S eq. 6)     chi_1 = sigma_w^2 E[phi'(u)^2] at q*  (= dc_l/dc_{l-1} at c = 1)
    xi_q  (S eq. 7)              xi_q = -1 / ln(chi_1 + sigma_w^2 E[phi''(u) phi(u)])  at q*
    xi_c  (S eq. 9)              xi_c = -1 / ln(sigma_w^2 E[phi'(u1) phi'(u2)])       at (q*, c*)
    backward (S eq. 12-13)       qt_l = qt_{l+1} sigma_w^2 E[phi'(u_l)^2],           u_l ~ N(0, q_l)

Phase: ordered chi_1 < 1, chaotic chi_1 > 1, critical chi_1 = 1. Gaussian expectations are closed
forms where they exist (linear; ReLU's arc-cosine kernel, Cho & Saul 2009) and Gauss-Hermite quadrature
otherwise: 1-D for the q-map, a tensor grid over (z1, z2) for the c-map; Gauss-Legendre on each side of
the kink for an activation whose phi' jumps at 0 (SELU). Non-zero-mean activations (SELU off its fixed
point, GELU, sigmoid, SiLU) need nothing more: q and q12 are uncentred second moments (E[phi^2],
E[phi(u1) phi(u2)]), as the walk measures them. The activations and their
derivatives (fn, d1 = phi', d2 = phi'') come from nn.ACTIVATIONS. A quantity that does not exist for a
setting (q* of a linear net that explodes, c* where every c is fixed, xi at criticality) is NaN here and
left out of depth_scales().
"""
import math

import numpy as np

from initstudy.core import nn

# Closed forms of the Gaussian expectations, u ~ N(0, q); for pairs (u1, u2) of correlation c.
#   phi2 = E[phi^2], dphi2 = E[phi'^2], phi_ddphi = E[phi phi''],
#   phi_phi = E[phi(u1) phi(u2)], dphi_dphi = E[phi'(u1) phi'(u2)]
# ReLU's phi'' is a delta at 0, where phi = 0: E[phi phi''] = 0. Its pair moments are the arc-cosine
# kernels of degree 1 and 0 (Cho & Saul 2009): theta = arccos c.
CLOSED_FORMS = {
    "linear": {
        "phi2": lambda q: q,
        "dphi2": lambda q: 1.0,
        "phi_ddphi": lambda q: 0.0,
        "phi_phi": lambda q, c: q * c,
        "dphi_dphi": lambda q, c: 1.0,
    },
    "relu": {
        "phi2": lambda q: q / 2,
        "dphi2": lambda q: 0.5,
        "phi_ddphi": lambda q: 0.0,
        "phi_phi": lambda q, c: q * (math.sqrt(max(1 - c * c, 0.0)) + (math.pi - math.acos(c)) * c) / (2 * math.pi),
        "dphi_dphi": lambda q, c: (math.pi - math.acos(c)) / (2 * math.pi),
    },
}
# the integrands, from the activation's fn, d1, d2
ONE_D = {"phi2": lambda a: lambda u: a.fn(u) ** 2, "dphi2": lambda a: lambda u: a.d1(u) ** 2,
         "phi_ddphi": lambda a: lambda u: a.fn(u) * a.d2(u)}
TWO_D = {"phi_phi": ("fn", "fn"), "dphi_dphi": ("d1", "d1")}

_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(128)
# the tensor grid: z1, z2 = sqrt(2) x_i, sqrt(2) x_j with weights w_i w_j / pi
_GH_X1, _GH_X2 = np.meshgrid(_GH_NODES, _GH_NODES, indexing="ij")
_GH_W2 = np.outer(_GH_WEIGHTS, _GH_WEIGHTS) / np.pi
# activations whose phi' jumps at 0 (class attribute KINKED, e.g. SELU): Gauss-Hermite converges slowly
# across the jump (SELU's E[phi'^2] off by 0.7 % at 128 nodes), so integrate each smooth side apart,
# Gauss-Legendre on z in [0, SPLIT_Z] (phi(12) ~ 1e-32: the tail beyond is below double precision)
SPLIT_Z = 12.0
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(128)
_HALF_Z = (_GL_NODES + 1) * (SPLIT_Z / 2)  # nodes on [0, SPLIT_Z]
_HALF_W = _GL_WEIGHTS * (SPLIT_Z / 2) * np.exp(-_HALF_Z**2 / 2) / np.sqrt(2 * np.pi)  # times the N(0, 1) density
CRITICAL_RTOL = 1e-9  # |chi_1 - 1| below this is critical (Kaiming-ReLU and Xavier-linear give exactly 1)


def expect(activation: str, what: str, q: float, c: float | None = None) -> float:
    """A Gaussian expectation named in CLOSED_FORMS (u ~ N(0, q); pairs of correlation c)."""
    closed = CLOSED_FORMS.get(activation, {})
    if what in closed:
        return float(closed[what](q) if c is None else closed[what](q, c))
    if not np.isfinite(q):
        return float("nan")
    a = nn.ACTIVATIONS[activation]
    if getattr(a, "KINKED", False):
        return _split_expect(a, what, q, c)
    if what in ONE_D:  # E[f(u)] = 1/sqrt(pi) sum_i w_i f(sqrt(2q) x_i)
        return float(np.sum(_GH_WEIGHTS * ONE_D[what](a)(np.sqrt(2 * q) * _GH_NODES)) / np.sqrt(np.pi))
    f, g = (getattr(a, name) for name in TWO_D[what])
    s = np.sqrt(2 * q)
    u1 = s * _GH_X1
    u2 = s * (c * _GH_X1 + np.sqrt(max(1 - c * c, 0.0)) * _GH_X2)
    return float(np.sum(_GH_W2 * f(u1) * g(u2)))


def _split_expect(a, what: str, q: float, c: float | None) -> float:
    """expect() for an activation with a kink at 0: u = sqrt(q) z, each side of z = 0 on its own; in
    the c-map's pairs, z2's side of u2's kink (z2 = -c z1 / sqrt(1 - c^2)) too, for each z1 node."""
    s = np.sqrt(q)
    z1 = np.concatenate([_HALF_Z, -_HALF_Z])
    w1 = np.concatenate([_HALF_W, _HALF_W])
    if what in ONE_D:
        return float(np.sum(w1 * ONE_D[what](a)(s * z1)))
    f, g = (getattr(a, name) for name in TWO_D[what])
    r = np.sqrt(max(1 - c * c, 0.0))
    if r == 0:
        return float(np.sum(w1 * f(s * z1) * g(s * c * z1)))
    t = np.clip(-c * z1 / r, -SPLIT_Z, SPLIT_Z)[:, None]  # the kink of u2 in z2, per z1 (no mass beyond Z)
    half = (_GL_NODES + 1) / 2  # Legendre on [0, 1]
    up, down = SPLIT_Z - t, t + SPLIT_Z  # the widths of [t, Z] and [-Z, t]
    z2 = np.concatenate([t + up * half, t - down * half], axis=1)
    w2 = np.concatenate([up * _GL_WEIGHTS / 2, down * _GL_WEIGHTS / 2], axis=1) * np.exp(-z2**2 / 2) / np.sqrt(2 * np.pi)
    inner = np.sum(w2 * g(s * (c * z1[:, None] + r * z2)), axis=1)
    return float(np.sum(w1 * f(s * z1) * inner))


def gaussian_second_moment(activation: str, q: float) -> float:
    """E[phi(u)^2] for u ~ N(0, q)."""
    return expect(activation, "phi2", q)


# --- the maps

def q_map(activation: str, q: float, sw2: float, sb2: float = 0.0) -> float:
    """P eq. 3: the variance of the next layer's pre-activations."""
    return sw2 * gaussian_second_moment(activation, q) + sb2


def c_map(activation: str, c: float, q: float, sw2: float, sb2: float = 0.0) -> float:
    """P eq. 5: the correlation of two inputs one layer up, both of variance q (q12 over the next q)."""
    return (sw2 * expect(activation, "phi_phi", q, c) + sb2) / q_map(activation, q, sw2, sb2)


def chi1(activation: str, q: float, sw2: float) -> float:
    """P eq. 7: sigma_w^2 E[phi'(u)^2], u ~ N(0, q); the slope of the c-map at c = 1 when q = q*."""
    return sw2 * expect(activation, "dphi2", q)


def chi_c(activation: str, c: float, q: float, sw2: float) -> float:
    """S eq. 9's argument: sigma_w^2 E[phi'(u1) phi'(u2)], the slope of the c-map at c (q = q*)."""
    return sw2 * expect(activation, "dphi_dphi", q, c)


def closed_form(activation: str, n_sigma2: float, depth: int, input_second_moment: float,
                sb2: float = 0.0) -> np.ndarray:
    """q_0..q_depth from the input alone; n_sigma2 = sigma_w^2 = fan_in * Var(W) (the same at every layer)."""
    q = np.empty(depth + 1)
    q[0] = input_second_moment
    with np.errstate(over="ignore"):
        if depth >= 1:
            q[1] = n_sigma2 * input_second_moment + sb2
        for l in range(2, depth + 1):
            q[l] = n_sigma2 * gaussian_second_moment(activation, q[l - 1]) + sb2
    return q


def growth_per_layer(activation: str, n_sigma2: float) -> float:
    """The per-layer variance factor where it is constant (linear, ReLU); tanh has none."""
    if activation not in CLOSED_FORMS:
        return float("nan")
    return n_sigma2 * CLOSED_FORMS[activation]["phi2"](1.0)


def corr_series(activation: str, c0: float, q: np.ndarray, sw2: float, sb2: float = 0.0) -> np.ndarray:
    """c_0..c_L of two inputs of correlation c0, along the layers' own q_l (closed_form): layer 1 is
    linear in the input, c_1 = (sw2 c0 q0 + sb2) / q_1; then the c-map at each q_{l-1}."""
    c = np.full(len(q), np.nan)
    c[0] = c0
    if len(q) > 1:
        c[1] = (sw2 * c0 * q[0] + sb2) / q[1]
    for l in range(2, len(q)):
        if not (np.isfinite(q[l]) and q[l] > 0):
            break
        c[l] = (sw2 * expect(activation, "phi_phi", q[l - 1], min(c[l - 1], 1.0)) + sb2) / q[l]
    return c


def chi_per_layer(activation: str, q: np.ndarray, sw2: float) -> np.ndarray:
    """sigma_w^2 E[phi'(u_l)^2] at each layer's own q_l, l = 0..L-1; layer 0 is the input, which enters
    z_1 without phi (phi' = 1), so its factor is sigma_w^2."""
    out = np.array([sw2] + [chi1(activation, ql, sw2) for ql in q[1:-1]])
    return out[: max(len(q) - 1, 0)]


def grad_var_series(activation: str, q: np.ndarray, sw2: float, top: float = 1.0) -> np.ndarray:
    """S eq. 12-13: the variance of dL/dz_l for l = 0..L from a top gradient of variance `top`:
    qt_l = qt_{l+1} chi(l). qt_0 / top is also E[mean squared singular value of dz_L/dz_0]."""
    chi = chi_per_layer(activation, q, sw2)
    out = np.empty(len(q))
    out[-1] = top
    with np.errstate(over="ignore", invalid="ignore"):
        for l in range(len(q) - 2, -1, -1):
            out[l] = out[l + 1] * chi[l]
    return out


# --- fixed points, depth scales, phase

def _bisect(f, lo, hi, iters=200):
    """The root of f in [lo, hi] with f(lo) > 0 > f(hi), to the last bit."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def q_star(activation: str, sw2: float, sb2: float = 0.0, q0: float = 1.0) -> float:
    """The fixed point of the q-map that the layers reach from q0, NaN if the variance grows without
    bound. Linear and ReLU (q-map q -> g q + sb2, g = sw2 E[phi^2]/q): sb2 / (1 - g) for g < 1 (0 without
    biases); q0 itself for g = 1 without biases (every q is fixed); none for g > 1. Otherwise the root
    of q_map(q) - q by bisection on [0, hi], hi the first of 1, 2, 4, ... where the map is at or below
    the diagonal (none: q grows without bound, e.g. GELU/SiLU/SELU at large sigma_w^2, whose q-maps
    grow like sigma_w^2 q / 2). Without biases and the map below the diagonal near 0 (sigma_w^2
    phi'(0)^2 <= 1): 0 if it is still below at q0 (tanh always, a concave map; GELU and SiLU, whose
    q_map(q) / q rises from phi'(0)^2 = 1/4 to 1/2, for sigma_w^2 small enough), none if above there
    (q0 past their unstable fixed point: q grows without bound)."""
    if activation in CLOSED_FORMS:
        g = sw2 * CLOSED_FORMS[activation]["phi2"](1.0)
        if g < 1:
            return sb2 / (1 - g)
        return float(q0) if g == 1 and sb2 == 0 else float("nan")
    f = lambda q: q_map(activation, q, sw2, sb2) - q  # noqa: E731
    if sb2 == 0 and f(1e-12) <= 0:
        return 0.0 if f(q0) <= 0 else float("nan")
    hi = 1.0
    while f(hi) > 0:
        hi *= 2
        if hi > 1e300:
            return float("nan")
    return _bisect(f, 0.0, hi)


def c_star(activation: str, sw2: float, sb2: float, q: float) -> float:
    """The stable fixed point of the c-map at q = q* (> 0): 1 in the ordered phase; in the chaotic
    phase the root of c_map(c) - c in [0, 1) (c_map(0) >= 0 for sb2 >= 0 and odd phi or ReLU); at
    criticality 1 if the map still pulls towards it, NaN if the c-map is the identity (linear, no
    biases: every c is fixed)."""
    if not (np.isfinite(q) and q > 0):
        return float("nan")
    slope = chi1(activation, q, sw2)
    f = lambda c: c_map(activation, c, q, sw2, sb2) - c  # noqa: E731
    if abs(slope - 1) <= CRITICAL_RTOL:
        return 1.0 if f(0.0) > 1e-12 else float("nan")
    if slope < 1:
        return 1.0
    if f(0.0) <= 0:
        return 0.0
    hi = 1 - 1e-9
    return _bisect(f, 0.0, hi) if f(hi) < 0 else float("nan")


def phase(chi: float) -> str:
    if not np.isfinite(chi):
        return "undefined"
    if abs(chi - 1) <= CRITICAL_RTOL:
        return "critical"
    return "ordered" if chi < 1 else "chaotic"


def _xi(slope: float) -> float:
    """-1/ln(slope) for a contracting map (0 < slope < 1); NaN otherwise (no exponential depth scale)."""
    return -1 / math.log(slope) if np.isfinite(slope) and 0 < slope < 1 else float("nan")


def depth_scales(activation: str, sw2: float, sb2: float = 0.0, q0: float = 1.0) -> dict:
    """{q_star, chi1, c_star, xi_q, xi_c}: the ones that exist (finite), plus 'phase'. chi1 of linear
    and ReLU does not depend on q, so it exists without q*; tanh's is taken at q*."""
    qs = q_star(activation, sw2, sb2, q0)
    ch = chi1(activation, qs if np.isfinite(qs) else 1.0, sw2) if activation in CLOSED_FORMS else (
        chi1(activation, qs, sw2) if np.isfinite(qs) else float("nan"))
    out = {"q_star": qs, "chi1": ch}
    if np.isfinite(qs):
        out["xi_q"] = _xi(ch + sw2 * expect(activation, "phi_ddphi", qs))  # S eq. 7
        cs = c_star(activation, sw2, sb2, qs)
        out["c_star"] = cs
        if np.isfinite(cs):
            out["xi_c"] = _xi(chi_c(activation, cs, qs, sw2))  # S eq. 9
    return {**{k: float(v) for k, v in out.items() if np.isfinite(v)}, "phase": phase(ch)}


def critical_sw2(activation: str, sb2: float = 0.0) -> float:
    """The sigma_w^2 where chi_1(q*) = 1 (the order-to-chaos transition at this sigma_b^2). Closed
    form where E[phi'^2] does not depend on q (1 / E[phi'^2]); otherwise bisection in sigma_w^2,
    chi_1(q*(sigma_w^2)) growing with sigma_w^2."""
    if activation in CLOSED_FORMS:
        return 1.0 / CLOSED_FORMS[activation]["dphi2"](1.0)
    f = lambda sw2: 1 - chi1(activation, q_star(activation, sw2, sb2), sw2)  # noqa: E731
    lo, hi = 1e-3, 1.0
    while f(hi) > 0:
        hi *= 2
    return _bisect(f, lo, hi, iters=80)
