"""The residual network's training core, fast: resnet.ResNet (norm none) + cross-entropy + SGD, buffers made once.

Same float operations in the same order as the reference (resnet.Block / Scalar, nn.Linear, the activations,
nn.cross_entropy, nn.SGD), so losses and weights are bit-identical (tests/test_fastcore.py), as fastmlp is for
the MLP. What changes is only where results land and when:
- every op writes into a buffer of its own made once (`out=`); ReLU against an array of zeros (fastmlp's note);
- each parameter's SGD step runs right after its gradient (fastmlp.sgd_update), while it is in cache; a Linear's
  dx is taken with W before its step, as the reference's whole backward precedes its whole step;
- the gradient of a fixed alpha (sqrt_depth's 1/sqrt(L), which nothing reads) and the input layer's dx are not
  computed; weight grads share one scratch buffer (nothing reads them after the step).
The parameters are the reference model's own arrays, updated in place: evaluate is nn.evaluate on that model.
Measured, width 128, depth 100, batch 128, float32, one BLAS thread (steps per second, reference -> fast):
  load ~7 on the 2 cores, wall clock, 13-18 steps: sqrt_depth 4.5 -> 6.5 (x1.45), fixup 3.6 -> 4.9 (x1.39),
  zero 4.9 -> 5.8 (x1.19); under the heavy lock (load ~5), CPU time, 100 steps x 2: sqrt_depth 16.9 -> 18.9
  (x1.12), fixup 15.0 -> 14.7 (x0.98). The gain is small because the step is GEMM-bound: 6 GEMMs of
  128 x 128 x 128 per block (600 at depth 100, 55 us each on an idle core: a floor of ~30 steps/s), which
  both cores must do; what the fast core removes is allocation and a second pass over the parameters.
"""
import numpy as np

from initstudy.core import nn, resnet
from initstudy.core.fastmlp import act_backward, sgd_update


class Op:
    """One reference layer with buffers: forward(x) -> out, backward(d, need_dx) -> dx, its SGD step inside."""
    params = ()  # [(array, velocity, lr update buffer)], the reference layer's own arrays first


class Linear(Op):
    def __init__(self, layer: nn.Linear, core, rows):
        self.W, self.b = layer.weight, layer.bias
        self.out = np.empty((rows, self.W.shape[1]), self.W.dtype)
        self.dx = np.empty((rows, self.W.shape[0]), self.W.dtype)
        self.gW, self.gb = core.grad_buffers(self.W, self.b)
        self.vW, self.vb = np.zeros_like(self.W), np.zeros_like(self.b)
        self.core = core

    def forward(self, x):
        self.x = x
        np.matmul(x, self.W, out=self.out)
        self.out += self.b
        return self.out

    def backward(self, d, need_dx):
        np.matmul(self.x.T, d, out=self.gW)
        np.sum(d, axis=0, out=self.gb)
        if need_dx:
            np.matmul(d, self.W.T, out=self.dx)  # with W before its step
        mu, lr = self.core.mu, self.core.lr
        sgd_update(self.W, self.gW, self.vW, self.gW, mu, lr)  # the grad is dead after v += g: it takes lr v
        sgd_update(self.b, self.gb, self.vb, self.gb, mu, lr)
        return self.dx


class Scalar(Op):
    """resnet.Scalar: x + s or x * s; learnable (its step here) or fixed."""

    def __init__(self, layer: resnet.Scalar, core, rows, width):
        self.s, self.op, self.learn, self.core = layer.value, layer.op, layer.learn, core
        self.out = np.empty((rows, width), layer.value.dtype)
        self.dx = np.empty_like(self.out) if self.op == "mul" else None
        self.v, self.t = np.zeros_like(self.s), np.zeros_like(self.s)

    def forward(self, x):
        self.x = x
        (np.add if self.op == "add" else np.multiply)(x, self.s, out=self.out)
        return self.out

    def backward(self, d, need_dx):
        if self.op == "add":
            g = np.sum(d, dtype=d.dtype, keepdims=True).reshape(1) if self.learn else None
            dx = d
        else:
            if self.learn:
                np.multiply(d, self.x, out=self.dx)  # resnet.Scalar: sum(dout * x)
                g = np.sum(self.dx, dtype=d.dtype).reshape(1)
            np.multiply(d, self.s, out=self.dx)  # with s before its step
            dx = self.dx
        if self.learn:
            sgd_update(self.s, g, self.v, self.t, self.core.mu, self.core.lr)
        return dx


class Activation(Op):
    def __init__(self, act, core, rows, width, dtype):
        self.act, self.zero = act, core.zero
        self.out = np.empty((rows, width), dtype)
        self.dx = np.empty_like(self.out)
        self.tmp = np.empty(self.out.shape, bool if act is nn.ReLU else dtype)
        self.zeros = np.zeros_like(self.out)

    def forward(self, x):
        self.x = x
        if self.act is nn.ReLU:
            np.maximum(x, self.zeros, out=self.out)
        elif self.act is nn.Tanh:
            np.tanh(x, out=self.out)
        elif self.act is nn.Identity:
            self.out = x
        else:
            self.out = self.act.fn(x)  # nn.Pointwise
        return self.out

    def backward(self, d, need_dx):
        return act_backward(self.act, d, self.out, self.x, self.tmp, self.dx, self.zero)


class Block(Op):
    """x + B(x): the branch's ops, then the sum; backward dout + the branch's dx."""

    def __init__(self, ops, rows, width, dtype):
        self.ops = ops
        self.out, self.dx = np.empty((rows, width), dtype), np.empty((rows, width), dtype)

    def forward(self, x):
        y = x
        for op in self.ops:
            y = op.forward(y)
        return np.add(x, y, out=self.out)

    def backward(self, d, need_dx):
        e = d
        for op in reversed(self.ops):
            e = op.backward(e, True)
        return np.add(d, e, out=self.dx)


class FastResNet:
    def __init__(self, model: resnet.ResNet, lr: float, momentum: float, batch: int):
        if any(isinstance(l, nn.BatchNorm1d) for b in model.res_blocks for l in b.layers):
            raise ValueError("FastResNet covers norm=none; use the nn.py reference for batchnorm")
        self.model = model
        dtype = model.layers[0].weight.dtype
        # the reference's Python scalars, cast once as numpy casts them per call (weak scalars, NEP 50)
        self.mu, self.lr, self.zero = dtype.type(momentum), dtype.type(lr), dtype.type(0)
        self._scratch = {}  # shape -> one grad buffer shared by every Linear of that shape
        self.x = np.empty((batch, model.layers[0].weight.shape[0]), dtype)
        width = model.layers[0].weight.shape[1]
        self.ops = [self._op(layer, batch, width, dtype) for layer in model.layers]

    def grad_buffers(self, W, b):
        """A Linear's grad buffers (W's, b's), shared with every Linear of its shapes: read only within its step."""
        return tuple(self._scratch.setdefault(a.shape, np.empty_like(a)) for a in (W, b))

    def _op(self, layer, rows, width, dtype):
        if isinstance(layer, resnet.Block):
            return Block([self._op(l, rows, width, dtype) for l in layer.layers], rows, width, dtype)
        if isinstance(layer, nn.Linear):
            if layer.mult is not None:
                raise ValueError("FastResNet covers Linear without a forward multiplier (SP)")
            return Linear(layer, self, rows)
        if isinstance(layer, resnet.Scalar):
            return Scalar(layer, self, rows, width)
        return Activation(type(layer), self, rows, width, dtype)

    def loss(self, x_all, y_all, idx):
        """Forward on the batch x_all[idx]: (loss, dlogits), as nn.cross_entropy gives them."""
        x = np.take(x_all, idx, axis=0, out=self.x)
        for op in self.ops:
            x = op.forward(x)
        return nn.cross_entropy(x, y_all[idx])

    def backward_update(self, dlogits, keep_grads=True):
        """Backward from dlogits, each parameter's SGD step right after its gradient (grads are never kept)."""
        d = dlogits
        for i in range(len(self.ops) - 1, -1, -1):
            d = self.ops[i].backward(d, i > 0)

    def evaluate(self, x, y):
        """(loss, accuracy) by nn.evaluate on the reference model, whose arrays this core updates in place."""
        return nn.evaluate(self.model, x, y)
