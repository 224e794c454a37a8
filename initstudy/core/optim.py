"""Optimizers with a learning rate per parameter (a parametrization's multipliers), in place, numpy + numba.

SGD with momentum is nn.SGD's (PyTorch's form v = mu v + g; p -= lr v). Adam is Kingma & Ba 2015,
"Adam: A Method for Stochastic Optimization", Algorithm 1, bias-corrected:

    m_t = b1 m_{t-1} + (1 - b1) g          v_t = b2 v_{t-1} + (1 - b2) g^2
    mhat = m_t / (1 - b1^t)                vhat = v_t / (1 - b2^t)
    p_t = p_{t-1} - lr mhat / (sqrt(vhat) + eps)

with the paper's defaults b1 0.9, b2 0.999, eps 1e-8. The moments are kept scaled, n = m / (1 - b1) and
u = v / (1 - b2), so each needs one multiply less, and every constant goes into one scalar step size
(step_size): the same update in real arithmetic, three elementwise passes fewer. adam_step is the one
kernel both training cores (nn.py's reference through Adam, fastmlp's fast path) call, so their bits
agree by construction; the order of its float operations is fixed here and nowhere else.

Why numba: numpy cannot fuse, and Adam's update was the step's largest non-GEMM cost. One compiled pass
with numpy's roundings gives the same bits; measured (CPU time, quiet machine) per 1024 x 1024 step
float32 2.2 -> 0.9 ms, float64 5.8 -> 2.0 ms (10 numpy passes blocked in L2 -> 1); bench section 8's
widest transfer cell: GEMM bound / step 0.71 -> 0.87 with Adam (docs/benchmarks.md).
"""
import functools
import math

import numpy as np

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def step_size(t: int, lr: float):
    """(alpha, eps') with lr mhat / (sqrt(vhat) + eps) = alpha n / (sqrt(u) + eps') exactly (real arithmetic)
    for the scaled moments n = m / (1 - b1), u = v / (1 - b2) that adam_step keeps:
    mhat = (1 - b1) n / (1 - b1^t), sqrt(vhat) = sqrt(u) sqrt((1 - b2) / (1 - b2^t)); both bias corrections
    and both (1 - b) factors folded into one scalar step size (the paper's Section 2 "efficiency" remark)."""
    c = math.sqrt((1 - BETA2) / (1 - BETA2**t))  # sqrt(vhat) = c sqrt(u)
    return lr * (1 - BETA1) / ((1 - BETA1**t) * c), EPS / c


def adam_direction(n, u, t: int, lr: float, out):
    """out = lr mhat / (sqrt(vhat) + eps) (Algorithm 1's last line without the subtraction), from the
    scaled moments n, u (see step_size)."""
    alpha, eps = step_size(t, lr)
    np.sqrt(u, out=out)
    out += eps
    np.divide(n, out, out=out)
    out *= alpha
    return out


def adam_step(p, g, n, u, t: int, lr: float, buf):
    """One Adam step of parameter p with grad g, scaled moments n = m / (1 - b1) and u = v / (1 - b2)
    (updated in place), step t >= 1; buf: scratch of p's shape, not aliasing g, holds the update afterwards.
    One compiled pass per element (_adam_pass) where numpy took 10 (Algorithm 1 written out: 13)."""
    if any(a.dtype != p.dtype or a.shape != p.shape for a in (g, n, u, buf)):
        raise ValueError(f"adam_step: p, g, n, u, buf must share one dtype and shape, got p {p.dtype} {p.shape}")
    alpha, eps = step_size(t, lr)
    f = p.dtype.type  # the constants rounded to p's dtype first, as numpy rounds a Python float operand (NEP 50)
    flat = [a.ravel() for a in (p, g, n, u, buf)]  # views, or copies where an array is not C-contiguous
    _kernel()(*flat, f(BETA1), f(BETA2), f(alpha), f(eps))
    for a, c in zip((p, n, u, buf), (flat[0], flat[2], flat[3], flat[4])):
        if not a.flags.c_contiguous:
            a[...] = c.reshape(a.shape)


def _adam_pass(p, g, n, u, buf, b1, b2, alpha, eps):
    """adam_step's update of element i, in the order (and the rounding after every operation) of the numpy
    passes it replaced: bits equal to them (tests/test_optim.py keeps those passes as the oracle). Compiled
    without fastmath, so no reassociation and no fused multiply-add."""
    for i in range(p.size):
        gi = g[i]
        ni = n[i] * b1 + gi  # m_t = b1 m + (1 - b1) g, divided by (1 - b1): n_t = b1 n + g
        ui = u[i] * b2 + gi * gi  # v_t = b2 v + (1 - b2) g^2, divided by (1 - b2): u_t = b2 u + g^2
        d = ni / (np.sqrt(ui) + eps) * alpha  # lr mhat / (sqrt(vhat) + eps), see step_size
        n[i], u[i], p[i], buf[i] = ni, ui, p[i] - d, d


# numpy's IEEE division (inf, nan; never ZeroDivisionError), which also lets LLVM vectorize the loop
# (measured: 1M float32 elements 2.4 -> 1.0 ms)
JIT = dict(error_model="numpy")


@functools.cache
def _kernel():
    """_adam_pass compiled by numba on first use (paid only by runs that use Adam); the machine code is cached
    on disk, next to this file or, where that is read-only, in numba's user cache dir."""
    import numba

    try:
        return numba.njit(cache=True, **JIT)(_adam_pass)
    except RuntimeError:  # numba's "no locator available": no writable cache dir at all, compile per process
        return numba.njit(**JIT)(_adam_pass)


class Adam:
    """The reference optimizer over nn.py's params: [(p, g)], lrs one per parameter."""

    def __init__(self, params, lrs):
        self.lrs = list(lrs)
        self.n = [np.zeros_like(p) for p, _ in params]  # m / (1 - b1)
        self.u = [np.zeros_like(p) for p, _ in params]  # v / (1 - b2)
        self.t = 0

    def step(self, params):
        self.t += 1
        for (p, g), n, u, lr in zip(params, self.n, self.u, self.lrs):
            adam_step(p, g, n, u, self.t, lr, np.empty_like(p))

    def update_of(self, params, p):
        """The last step's update of parameter p (what it subtracted)."""
        i = next(i for i, (q, _) in enumerate(params) if q is p)
        return adam_direction(self.n[i], self.u[i], self.t, self.lrs[i], np.empty_like(p))
