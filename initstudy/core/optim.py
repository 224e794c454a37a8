"""Optimizers with a learning rate per parameter (a parametrization's multipliers), in place, pure numpy.

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
"""
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


# elements per block of adam_step: its passes over 4 blocks of 128 KB (float32) stay in L2
CHUNK = 1 << 15


def adam_step(p, g, n, u, t: int, lr: float, buf):
    """One Adam step of parameter p with grad g, scaled moments n = m / (1 - b1) and u = v / (1 - b2)
    (updated in place), step t >= 1; buf: scratch of p's shape, not aliasing g, holds the update afterwards.
    Elementwise, so done in blocks of rows that stay in cache. 10 passes over memory where Algorithm 1
    written out takes 13 (two of them divisions). Measured (CPU time, a loaded machine): one 1024 x 1024
    float32 step 7.0 -> 4.4 ms; bench section 8's widest Adam cell 14.56 -> 12.37 ms a step, 0.631 -> 0.666
    of the GEMM bound (docs/benchmarks.md)."""
    rows = max(1, CHUNK // max(1, p[0].size)) if p.ndim > 1 else p.shape[0]
    for a in range(0, p.shape[0], rows):
        s = slice(a, a + rows)
        _adam_block(p[s], g[s], n[s], u[s], t, lr, buf[s])


def _adam_block(p, g, n, u, t, lr, buf):
    n *= BETA1  # m_t = b1 m + (1 - b1) g, divided by (1 - b1): n_t = b1 n + g
    n += g
    u *= BETA2  # v_t = b2 v + (1 - b2) g^2, divided by (1 - b2): u_t = b2 u + g^2
    np.multiply(g, g, out=buf)
    u += buf
    adam_direction(n, u, t, lr, buf)
    p -= buf


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
