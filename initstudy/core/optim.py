"""Optimizers with a learning rate per parameter (a parametrization's multipliers), in place, pure numpy.

SGD with momentum is nn.SGD's (PyTorch's form v = mu v + g; p -= lr v). Adam is Kingma & Ba 2015,
"Adam: A Method for Stochastic Optimization", Algorithm 1, bias-corrected:

    m_t = b1 m_{t-1} + (1 - b1) g          v_t = b2 v_{t-1} + (1 - b2) g^2
    mhat = m_t / (1 - b1^t)                vhat = v_t / (1 - b2^t)
    p_t = p_{t-1} - lr mhat / (sqrt(vhat) + eps)

with the paper's defaults b1 0.9, b2 0.999, eps 1e-8. adam_step is the one kernel both training cores
(nn.py's reference through Adam, fastmlp's fast path) call, so their bits agree by construction; the
order of its float operations is fixed here and nowhere else.
"""
import numpy as np

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def adam_direction(m, v, t: int, lr: float, out):
    """out = lr * mhat / (sqrt(vhat) + eps) (Algorithm 1's last line without the subtraction)."""
    np.divide(v, 1 - BETA2**t, out=out)  # vhat
    np.sqrt(out, out=out)
    out += EPS
    np.divide(m, out, out=out)  # m / (sqrt(vhat) + eps)
    out *= lr / (1 - BETA1**t)  # lr mhat / (...): the bias correction of m folded into the step size
    return out


CHUNK = 1 << 14  # elements per block of adam_step: 12 passes over 128 KB stay in L2 (float32)


def adam_step(p, g, m, v, t: int, lr: float, buf):
    """One Adam step of parameter p with grad g, moments m and v (updated in place), step t >= 1;
    buf: scratch of p's shape, not aliasing g, holds the update afterwards. Elementwise, so done in
    blocks of rows that stay in cache: the same bits as one pass, ~2x faster at width 1024 (measured)."""
    rows = max(1, CHUNK // max(1, p[0].size)) if p.ndim > 1 else p.shape[0]
    for a in range(0, p.shape[0], rows):
        s = slice(a, a + rows)
        _adam_block(p[s], g[s], m[s], v[s], t, lr, buf[s])


def _adam_block(p, g, m, v, t, lr, buf):
    m *= BETA1
    np.multiply(g, 1 - BETA1, out=buf)
    m += buf
    v *= BETA2
    np.multiply(g, g, out=buf)
    buf *= 1 - BETA2
    v += buf
    adam_direction(m, v, t, lr, buf)
    p -= buf


class Adam:
    """The reference optimizer over nn.py's params: [(p, g)], lrs one per parameter."""

    def __init__(self, params, lrs):
        self.lrs = list(lrs)
        self.m = [np.zeros_like(p) for p, _ in params]
        self.v = [np.zeros_like(p) for p, _ in params]
        self.t = 0

    def step(self, params):
        self.t += 1
        for (p, g), m, v, lr in zip(params, self.m, self.v, self.lrs):
            adam_step(p, g, m, v, self.t, lr, np.empty_like(p))

    def update_of(self, params, p):
        """The last step's update of parameter p (what it subtracted)."""
        i = next(i for i, (q, _) in enumerate(params) if q is p)
        return adam_direction(self.m[i], self.v[i], self.t, self.lrs[i], np.empty_like(p))
