"""The training core, fast: nn.py's MLP (norm none) + cross-entropy + SGD with every array preallocated.

Same float operations in the same order as nn.Linear / ReLU / Tanh / Identity / the Pointwise
activations, nn.cross_entropy and nn.SGD, so losses, diagnostics and weights are bit-identical to the
reference (tests/test_fastcore.py). ReLU and Tanh (the lab's) have in-place paths; every other
activation goes through its own fn and d1, the pre-activation kept in a buffer for the backward.
What changes is only where results land and when:
- matmuls, bias adds and activations write into buffers made once (`out=`), activations in place;
- ReLU is np.maximum against an array of zeros, not the scalar 0: same bits (-0.0 and NaN included),
  ~3x faster (numpy's array-array loop is vectorized, its array-scalar one is not; measured);
- the input layer's dx (which nothing reads) is not computed;
- values read only where they are made (lr * v, dLoss/d(pre-activation), masks, and the weight grads
  of a step whose diagnostics nobody reads) share one buffer across layers: the step's working set
  shrinks from 4 to 2 weight-sized arrays per layer (W, v), and the scratch stays in cache;
- a layer's momentum update runs right after its backward (its W was last read there), while the
  gradient is still in cache, instead of a second pass over all parameters.
The object also serves as model and optimizer for diagnostics.layer_stats (params, blocks, update_of).
"""
from types import SimpleNamespace

import numpy as np

from initstudy.core import nn, optim


def scratch(like):
    """Buffers shaped as the arrays in `like`, all views of one array per dtype (for values no later
    layer reads; measured: the float32 step ~7 % faster than with one buffer per layer)."""
    flat = {}
    for a in like:
        flat[a.dtype] = max(flat.get(a.dtype, 0), a.size)
    flat = {dt: np.empty(n, dt) for dt, n in flat.items()}
    return [flat[a.dtype][:a.size].reshape(a.shape) for a in like]


def sgd_update(p, g, v, t, mu, lr):
    """nn.SGD's step of one parameter, mu and lr numpy scalars of p's dtype: v = mu v + g; t = lr v; p -= t."""
    v *= mu
    v += g
    np.multiply(v, lr, out=t)  # the reference's `lr * v`, then p -= it
    p -= t


def act_backward(act, g, out, pre, tmp, dst, zero):
    """dLoss/d(pre-activation) into dst from g = dLoss/d(out), as nn.py's activation backward computes it;
    pre: the pre-activation (read by Pointwise only), tmp: scratch of out's shape (bool for ReLU)."""
    if act is nn.ReLU:  # dout * (out > 0)
        np.greater(out, zero, out=tmp)
        return np.multiply(g, tmp, out=dst)
    if act is nn.Tanh:  # dout * (1 - out**2)
        np.multiply(out, out, out=tmp)
        np.subtract(1, tmp, out=tmp)
        return np.multiply(g, tmp, out=dst)
    if issubclass(act, nn.Pointwise):  # dout * phi'(x)
        return np.multiply(g, act.d1(pre), out=dst)
    return g  # Identity


class FastMLP:
    def __init__(self, model: nn.MLP, lr: float, momentum: float, batch: int, lrs=None, optimizer: str = "sgd"):
        """lrs: per Linear, (lr of W, lr of b) (a parametrization's; default lr for all); optimizer sgd
        (momentum, nn.SGD's) or adam (core/optim.py's kernel, momentum unused)."""
        if any(isinstance(l, nn.BatchNorm1d) for l in model.layers):
            raise ValueError("FastMLP covers norm=none; use the nn.py reference for batchnorm")
        self.lr, self.momentum, self.optimizer = lr, momentum, optimizer
        linears = model.linears
        self.lrs = [(lr, lr)] * len(linears) if lrs is None else [tuple(p) for p in lrs]
        self.mults = [l.mult for l in linears]  # None, or NTK's 1/sqrt(fan_in) on x @ W
        self.t = 0  # Adam's step count
        self.acts = [act for _, _, act in model.blocks]  # activation class per block; Identity for logits
        self.W = [np.array(l.weight, order="C") for l in linears]
        self.b = [np.array(l.bias, order="C") for l in linears]
        self.gW, self.gb = [np.zeros_like(w) for w in self.W], [np.zeros_like(b) for b in self.b]
        self._gW, self._gb = scratch(self.W), scratch(self.b)  # a step's grads when nobody reads them after it
        self.vW, self.vb = [np.zeros_like(w) for w in self.W], [np.zeros_like(b) for b in self.b]
        self.tW, self.tb = scratch(self.W), scratch(self.b)  # lr * v
        dtype = self.W[0].dtype
        # the reference's Python scalars, cast once as numpy casts them per call (weak scalars, NEP 50)
        self._mu, self._zero = dtype.type(momentum), dtype.type(0)
        self._lrs = [(dtype.type(a), dtype.type(b)) for a, b in self.lrs]
        if optimizer == "adam":  # Adam's second moments (optim's u); vW, vb above hold its first (n)
            self.sW, self.sb = [np.zeros_like(w) for w in self.W], [np.zeros_like(b) for b in self.b]
        self.x = np.empty((batch, self.W[0].shape[0]), dtype)
        self._zeros = {}  # shape -> zeros, the other operand of ReLU's np.maximum
        self.h, self.z = self._outputs(batch)  # block outputs (post-activation; logits last), pre-activations
        self.g = [np.zeros_like(h) for h in self.h]  # dLoss/d(block output); g[-1] is dlogits
        self.gpre = scratch(self.h[:-1])  # dLoss/d(pre-activation), hidden blocks
        self.dm = scratch(self.h)  # dLoss/d(x @ W) where a forward multiplier scales it
        self.tmp = scratch([np.empty(h.shape, bool if a is nn.ReLU else dtype) for h, a in zip(self.h[:-1], self.acts)])
        self._eval = {}  # rows -> output buffers for evaluation batches

    def _outputs(self, rows):
        """(block outputs, pre-activations): the latter only where the backward needs x (Pointwise)."""
        outs = [np.empty((rows, w.shape[1]), w.dtype) for w in self.W]
        for h in outs:
            self._zeros.setdefault(h.shape, np.zeros_like(h))
        pres = [np.empty_like(h) if issubclass(a, nn.Pointwise) else None for h, a in zip(outs, self.acts)]
        return outs, pres

    def forward(self, x, outs, pres):
        for W, b, h, z, act, mult in zip(self.W, self.b, outs, pres, self.acts, self.mults):
            if z is not None:  # nn.Pointwise: out = fn(x @ W + b), x kept
                np.matmul(x, W, out=z)
                if mult is not None:
                    z *= mult
                z += b
                np.copyto(h, act.fn(z))
                x = h
                continue
            np.matmul(x, W, out=h)
            if mult is not None:
                h *= mult
            h += b
            if act is nn.ReLU:
                np.maximum(h, self._zeros[h.shape], out=h)
            elif act is nn.Tanh:
                np.tanh(h, out=h)
            x = h
        return x

    def loss(self, x_all, y_all, idx):
        """Forward on the batch x_all[idx]: (loss, dlogits), as nn.cross_entropy gives them."""
        np.take(x_all, idx, axis=0, out=self.x)
        return nn.cross_entropy(self.forward(self.x, self.h, self.z), y_all[idx])

    def backward_update(self, dlogits, keep_grads=True):
        """Backward from dlogits, each layer's step right after its grads (SGD: v = mu v + g; p -= lr v;
        Adam: optim.adam_step). keep_grads=False: the weight and bias grads go to one scratch buffer, so
        params() does not hold this step's grads (for steps whose diagnostics nobody reads; measured: the
        float32 step ~5 % faster)."""
        self.g[-1] = d = dlogits
        self.t += 1
        gW, gb = (self.gW, self.gb) if keep_grads else (self._gW, self._gb)
        for i in range(len(self.W) - 1, -1, -1):
            dm = d if self.mults[i] is None else np.multiply(d, self.mults[i], out=self.dm[i])  # nn.Linear's d
            np.matmul((self.h[i - 1] if i else self.x).T, dm, out=gW[i])
            np.sum(d, axis=0, out=gb[i])
            if i:
                np.matmul(dm, self.W[i].T, out=self.g[i - 1])  # with W before its update
            self._update(i, gW[i], gb[i], keep_grads)
            if i:
                d = self._act_backward(i - 1)

    def _update(self, i, gw, gb, keep_grads):
        if self.optimizer == "adam":  # the reference's kernel itself, the update left in tW/tb
            lw, lb = self.lrs[i]
            optim.adam_step(self.W[i], gw, self.vW[i], self.sW[i], self.t, lw, self.tW[i])
            optim.adam_step(self.b[i], gb, self.vb[i], self.sb[i], self.t, lb, self.tb[i])
            return
        mu, (lw, lb) = self._mu, self._lrs[i]
        tw, tb = (self.tW[i], self.tb[i]) if keep_grads else (gw, gb)  # a grad not kept is dead after v += g
        sgd_update(self.W[i], gw, self.vW[i], tw, mu, lw)
        sgd_update(self.b[i], gb, self.vb[i], tb, mu, lb)

    def _act_backward(self, j):
        return act_backward(self.acts[j], self.g[j], self.h[j], self.z[j], self.tmp[j], self.gpre[j], self._zero)

    def evaluate(self, x, y):
        """(loss, accuracy) on (x, y), in buffers of its own: the training outputs stay as they are."""
        outs = self._eval.get(len(x)) or self._eval.setdefault(len(x), self._outputs(len(x)))
        logits = self.forward(x, *outs)
        loss, _ = nn.cross_entropy(logits, y)
        return float(loss), float(np.mean(np.argmax(logits, axis=1) == y))

    # what diagnostics.layer_stats reads: model.params(), model.blocks, optimizer.update_of
    def params(self):
        return [pg for i in range(len(self.W)) for pg in ((self.W[i], self.gW[i]), (self.b[i], self.gb[i]))]

    @property
    def blocks(self):
        out = []
        for i, act in enumerate(self.acts):
            layer = SimpleNamespace(weight=self.W[i], grad_weight=self.gW[i], out=self.h[i], grad_out=self.g[i])
            out.append((layer, layer, act))
        return out

    def update_of(self, params, p):
        """The last step's update of parameter p: lr * v (SGD), lr mhat / (sqrt(vhat) + eps) (Adam)."""
        n = len(self.W)
        lrs = [w for w, _ in self.lrs] + [b for _, b in self.lrs]
        for j, (q, v) in enumerate(zip(self.W + self.b, self.vW + self.vb)):
            if q is p:
                if self.optimizer == "adam":
                    return optim.adam_direction(v, (self.sW + self.sb)[j], self.t, lrs[j], np.empty_like(p))
                return lrs[j] * v
        raise KeyError(f"not a parameter of this model ({n} layers)")

    def hidden(self):
        """(block outputs, their gradients) of the hidden blocks, for the histograms."""
        return self.h[:-1], self.g[:-1]
