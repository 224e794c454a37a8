"""Residual networks with hand-written forward and backward, in numpy (nn.py's layers inside).

    x_0 = input @ W_in + b_in;  x_{l+1} = x_l + alpha_l B_l(x_l), l = 0..L-1;  logits = x_L @ W_out + b_out

The branch B has m = branch_layers weight layers, its last one linear (no activation after it):
    m = 2:  B(x) = phi([BN](x @ W_1 + b_1)) @ W_2 + b_2          (Yang & Schoenholz 2017's "full" resnet)
    m = 1:  B(x) = phi([BN](x)) @ W + b                          (the same with W_1 dropped)
Branch schemes (alpha_l and the init of the branch):
    none        alpha = 1
    sqrt_depth  alpha = 1 / sqrt(L)                               (Hanin & Rolnick 2018: sum alpha^2 finite)
    zero        alpha a learnable scalar per block, 0 at init     (SkipInit, De & Smith 2020; ReZero without norm)
    fixup       Zhang et al. 2019, Algorithm (Fixup) and the authors' FixupBasicBlock: W_2 = 0 and the readout
                W_out = 0, b_out = 0; W_1 drawn by the init and scaled by L^(-1/(2m-2)); a scalar bias before
                each Linear and activation (bias1a, bias1b, bias2a), a scalar multiplier (scale, 1) and bias
                (bias2b) at the branch's end, and one scalar bias before the readout (bias2). m = 1 is refused:
                L^(-1/(2m-2)) is undefined there.
Every Linear keeps nn.Linear's zero-initialised bias vector (Fixup's scalar biases come on top of it).
Shapes as in nn.py: x (batch, features), W (fan_in, fan_out), y = x @ W + b.
"""
import math

import numpy as np

from initstudy.core import inits, nn
from initstudy.core.config import ConfigError, one_of

ARCHS = ("mlp", "resnet")
BRANCHES = ("none", "sqrt_depth", "zero", "fixup")
BRANCH_LAYERS = (1, 2)


def check_arch(arch: str, branch: str, branch_layers: int):
    """One ConfigError line for an architecture that has no meaning (walk's, ablate's and sweeps' arch=, branch=)."""
    one_of("arch", arch, ARCHS)
    if arch == "mlp" and branch:
        raise ConfigError(f"branch applies to arch=resnet (arch=mlp has no residual branch); got branch={branch}")
    if arch == "resnet" and branch:
        one_of("branch", branch, BRANCHES)
    if branch_layers not in BRANCH_LAYERS:
        raise ConfigError(f"branch_layers must be 1 or 2, got {branch_layers!r}")
    if branch == "fixup" and branch_layers == 1:
        raise ConfigError("branch=fixup needs branch_layers=2: Fixup scales the branch's inner weights by "
                          "L^(-1/(2m-2)), undefined at m = 1")


def check_init(init: str, arch: str, norm: str):
    """A data-dependent init (lsuv) rescales a plain stack layer by layer: refused on a resnet or under BN."""
    if init in inits.INITS and inits.INITS[init].needs_data and (arch != "mlp" or norm != "none"):
        raise ConfigError(f"init {init} rescales a plain stack layer by layer (Mishkin & Matas Alg. 1); it takes "
                          f"arch=mlp norm=none, got arch={arch} norm={norm} (a residual block's output "
                          f"is x + alpha B(x), BN rescales by itself)")


class Scalar:
    """One scalar s, added (x + s) or multiplied (x * s); learnable or fixed (then it has no params)."""

    def __init__(self, value, op, learn, dtype):
        self.value = np.full(1, value, dtype)
        self.grad = np.zeros_like(self.value)
        self.op, self.learn = op, learn

    def forward(self, x):
        self.x = x
        self.out = x + self.value if self.op == "add" else x * self.value
        return self.out

    def backward(self, dout):
        self.grad_out = dout
        if self.op == "add":
            self.grad = np.sum(dout, dtype=dout.dtype, keepdims=True).reshape(1)
            return dout
        self.grad = np.sum(dout * self.x, dtype=dout.dtype).reshape(1)
        return dout * self.value

    def params(self):
        return [(self.value, self.grad)] if self.learn else []


class Block(nn.Sequential):
    """x + B(x), B the sequence of layers `branch` (alpha and Fixup's scalars are layers of it)."""

    def __init__(self, branch, activation):
        super().__init__(branch)
        self.act = activation

    @property
    def branch(self):
        return self.layers

    def forward(self, x):
        self.x = x
        self.out = x + super().forward(x)
        return self.out

    def backward(self, dout):
        self.grad_out = dout
        return dout + super().backward(dout)


def branch_alpha(branch: str, depth: int) -> float:
    """alpha at init: 1 (none, fixup: its multiplier starts at 1), 1/sqrt(L), 0 (zero)."""
    return {"none": 1.0, "sqrt_depth": 1 / math.sqrt(depth), "zero": 0.0, "fixup": 1.0}[branch]


def fixup_scale(depth: int, m: int) -> float:
    """Fixup's factor on the branch's inner weights: L^(-1/(2m-2)) (Algorithm, step 2)."""
    return depth ** (-1 / (2 * m - 2))


def make_block(rng, *, branch, depth, width, m, activation, norm, init, gain, dtype) -> Block:
    """One block's branch layers, W_1 drawn before W_2 (one stream per network, in layer order)."""
    act = nn.ACTIVATIONS[activation]
    fix = branch == "fixup"
    layers = []
    if m == 2:
        w1 = inits.sample_weights(init, rng, width, width, gain) * (fixup_scale(depth, m) if fix else 1.0)
        layers += [Scalar(0.0, "add", True, dtype)] if fix else []  # bias1a
        layers += [nn.Linear(w1.astype(dtype))]
        layers += [Scalar(0.0, "add", True, dtype)] if fix else []  # bias1b
    if norm == "batchnorm":
        layers.append(nn.BatchNorm1d(width, dtype))
    layers.append(act())
    w2 = inits.sample_weights(init, rng, width, width, gain)
    layers += [Scalar(0.0, "add", True, dtype)] if fix else []  # bias2a
    layers.append(nn.Linear((w2 * 0.0 if fix else w2).astype(dtype)))  # W_2 drawn either way: the stream stays aligned
    if fix:
        layers += [Scalar(1.0, "mul", True, dtype), Scalar(0.0, "add", True, dtype)]  # scale, bias2b
    elif branch != "none":
        layers.append(Scalar(branch_alpha(branch, depth), "mul", branch == "zero", dtype))
    return Block(layers, act)


class ResNet(nn.Sequential):
    """input Linear, `depth` Blocks, [Fixup's bias2], readout Linear."""

    @classmethod
    def build(cls, rng, *, depth, width, input_dim, classes, branch="none", branch_layers=2, activation="relu",
              norm="none", init="kaiming", gain=1.0, dtype=np.float64):
        w_in = inits.sample_weights(init, rng, input_dim, width, gain)
        layers = [nn.Linear(w_in.astype(dtype))]
        for _ in range(depth):
            layers.append(make_block(rng, branch=branch, depth=depth, width=width, m=branch_layers,
                                     activation=activation, norm=norm, init=init, gain=gain, dtype=dtype))
        w_out = inits.sample_weights(init, rng, width, classes, gain)
        if branch == "fixup":
            layers.append(Scalar(0.0, "add", True, dtype))  # bias2, before the readout
            w_out = w_out * 0.0
        layers.append(nn.Linear(w_out.astype(dtype)))
        return cls(layers)

    @property
    def res_blocks(self):
        return [l for l in self.layers if isinstance(l, Block)]

    @property
    def blocks(self):
        """(linear, output layer, activation) per stage for diagnostics.layer_stats: the input Linear, each
        residual Block (its first Linear's weight; output: the stream x_{l+1}), the readout."""
        first, *_, last = self.linears
        out = [(first, first, nn.Identity)]
        out += [(b.linears[0], b, b.act) for b in self.res_blocks]
        return out + [(last, last, nn.Identity)]

    def hidden(self):
        """(stream x_0..x_L, its gradients) from the last forward and backward."""
        stages = [self.layers[0]] + self.res_blocks
        return [s.out for s in stages], [s.grad_out for s in stages]
