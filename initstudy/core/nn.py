"""Layers with hand-written forward and backward, in numpy, micrograd-style.

Every layer keeps what its backward needs from the last forward (`x`, `out`) and the gradient of
its output from the last backward (`grad_out`), so the diagnostics can read both after a step. Shapes: x is (batch, features); a Linear weight
is (fan_in, fan_out), so y = x @ W + b.
"""
import math

import numpy as np

from initstudy.core import inits


class Linear:
    """y = (x @ W) * mult + b; mult None (SP's bits) or a float (NTK's 1/sqrt(fan_in), core/parametrization.py)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None = None, mult: float | None = None):
        self.weight, self.mult = weight, mult
        self.bias = np.zeros(weight.shape[1], weight.dtype) if bias is None else bias
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)

    def forward(self, x):
        self.x = x
        self.out = x @ self.weight + self.bias if self.mult is None else (x @ self.weight) * self.mult + self.bias
        return self.out

    def backward(self, dout):
        self.grad_out = dout
        d = dout if self.mult is None else dout * self.mult  # dLoss/d(x @ W)
        self.grad_weight = self.x.T @ d
        self.grad_bias = dout.sum(axis=0)
        return d @ self.weight.T

    def params(self):
        return [(self.weight, self.grad_weight), (self.bias, self.grad_bias)]


class Identity:
    """The `linear` network: no nonlinearity between layers."""

    @staticmethod
    def fn(x):
        return x

    @staticmethod
    def d1(x):  # phi'
        return np.ones_like(x)

    @staticmethod
    def d2(x):  # phi''
        return np.zeros_like(x)

    @staticmethod
    def saturation(out):
        return 0.0

    def forward(self, x):
        self.out = x
        return x

    def backward(self, dout):
        self.grad_out = dout
        return dout

    def params(self):
        return []


class ReLU:
    @staticmethod
    def fn(x):
        return np.maximum(x, 0)

    @staticmethod
    def d1(x):  # phi' (the step; 0 at the kink)
        return (x > 0).astype(np.asarray(x).dtype)

    @staticmethod
    def d2(x):  # phi'' = delta(x), which only ever multiplies phi(0) = 0 in the theory: zero
        return np.zeros_like(x)

    def forward(self, x):
        self.out = np.maximum(x, 0)
        return self.out

    def backward(self, dout):
        self.grad_out = dout
        return dout * (self.out > 0)

    def params(self):
        return []

    @staticmethod
    def saturation(out):
        """Fraction of units dead over the batch: zero for every example."""
        return float(np.mean(np.all(out <= 0, axis=0)))


class Tanh:
    fn = staticmethod(np.tanh)

    @staticmethod
    def d1(x):  # phi' = 1 - tanh^2
        return 1 - np.tanh(x) ** 2

    @staticmethod
    def d2(x):  # phi'' = -2 tanh (1 - tanh^2)
        t = np.tanh(x)
        return -2 * t * (1 - t**2)
    SATURATED = 0.97  # |t| above this passes almost no gradient: 1 - t^2 < 0.06

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        self.grad_out = dout
        return dout * (1 - self.out**2)

    def params(self):
        return []

    @staticmethod
    def saturation(out):
        """Fraction of activations in tanh's flat tails."""
        return float(np.mean(np.abs(out) > Tanh.SATURATED))


class Pointwise:
    """An activation out = fn(x) whose backward is dout * phi'(x): keeps x from the forward."""

    def forward(self, x):
        self.x = x
        self.out = self.fn(x)
        return self.out

    def backward(self, dout):
        self.grad_out = dout
        return dout * self.d1(self.x)

    def params(self):
        return []


def _std_normal_pdf(x):  # phi(x) = exp(-x^2/2) / sqrt(2 pi)
    return np.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))


def _scipy(name, x):
    """scipy.special's ufunc `name` (erfc: GELU's exact Phi; expit) at x, in x's dtype: it has no float16
    loop and would hand float16 back as float64. Imported on first use: the lab's activations (and a
    refused command line) never pay its ~0.3 s import."""
    from scipy import special

    return getattr(special, name)(x).astype(np.result_type(x), copy=False)


def _expit(x):  # sigma(x) = 1 / (1 + e^-x), no overflow for x << 0
    return _scipy("expit", x)


class SELU(Pointwise):
    """Klambauer et al. 2017, "Self-Normalizing Neural Networks", eq. 2: lambda x (x > 0),
    lambda alpha (e^x - 1) (x <= 0). The constants are the paper's eq. 14 (printed there to 20
    digits), the solution of mean 0 -> 0, variance 1 -> 1 under weights with sum w = 0, sum w^2 = 1."""
    LAMBDA = 1.0507009873554804934193349852946
    ALPHA = 1.6732632423543772848170429916717
    KINKED = True  # phi' jumps at 0 (lambda alpha -> lambda): the theory's quadrature splits there
    FLOOR_FRACTION = 0.94  # out below 0.94 of its floor -lambda alpha: slope lambda alpha e^x < 6 % of its largest

    @staticmethod
    def fn(x):  # expm1 of min(x, 0): the branch np.where does not take must not overflow
        return SELU.LAMBDA * np.where(x > 0, x, SELU.ALPHA * np.expm1(np.minimum(x, 0)))

    @staticmethod
    def d1(x):
        return SELU.LAMBDA * np.where(x > 0, 1, SELU.ALPHA * np.exp(np.minimum(x, 0)))

    @staticmethod
    def d2(x):  # 0 for x > 0; the jump of phi' at 0 is a delta times phi(0) = 0 in the theory: dropped, as ReLU's
        return SELU.LAMBDA * np.where(x > 0, 0, SELU.ALPHA * np.exp(np.minimum(x, 0)))

    @staticmethod
    def saturation(out):
        """Fraction of activations in the flat negative tail, out < -0.94 lambda alpha."""
        return float(np.mean(out < -SELU.FLOOR_FRACTION * SELU.LAMBDA * SELU.ALPHA))


class GELU(Pointwise):
    """Hendrycks & Gimpel 2016, "Gaussian Error Linear Units", the exact form x Phi(x), Phi the standard
    normal CDF = (1 + erf(x / sqrt 2)) / 2, computed as erfc(-x / sqrt 2) / 2 (the same function; no
    cancellation in the left tail). Not the tanh approximation."""
    DEAD = 0.01  # |out| below this for a whole batch: the left tail (x < ~-2.7), slope < 0.03

    @staticmethod
    def cdf(x):
        return 0.5 * _scipy("erfc", x * (-1 / math.sqrt(2)))

    @staticmethod
    def fn(x):
        return x * GELU.cdf(x)

    @staticmethod
    def d1(x):  # Phi + x phi
        return GELU.cdf(x) + x * _std_normal_pdf(x)

    @staticmethod
    def d2(x):  # 2 phi + x phi' = (2 - x^2) phi
        return (2 - x * x) * _std_normal_pdf(x)

    @staticmethod
    def saturation(out):
        """Fraction of units dead over the batch (as ReLU's): -DEAD < out <= 0 for every example."""
        return float(np.mean(np.all((out <= 0) & (out > -GELU.DEAD), axis=0)))


class Sigmoid(Pointwise):
    """The logistic sigma(x) = 1 / (1 + e^-x) (scipy's expit: no overflow for x << 0)."""
    fn = staticmethod(_expit)

    @staticmethod
    def d1(x):  # sigma (1 - sigma)
        s = _expit(x)
        return s * (1 - s)

    @staticmethod
    def d2(x):  # sigma (1 - sigma) (1 - 2 sigma)
        s = _expit(x)
        return s * (1 - s) * (1 - 2 * s)

    @staticmethod
    def saturation(out):
        """Fraction in the flat tails: sigma = (1 + tanh(x/2)) / 2, so tanh's rule |2 sigma - 1| > 0.97
        (slope below 6 % of its largest, 1/4)."""
        return float(np.mean(np.abs(2 * out - 1) > Tanh.SATURATED))


class SiLU(Pointwise):
    """x sigma(x): named SiLU by Hendrycks & Gimpel 2016 and Elfwing et al. 2018; Ramachandran et al.
    2017's swish with beta = 1. (x sigma(1.702 x) is H&G's approximation of GELU, a different function.)"""
    DEAD = 0.01  # |out| below this for a whole batch: the left tail (x < ~-6.5), slope < 0.01

    @staticmethod
    def fn(x):
        return x * _expit(x)

    @staticmethod
    def d1(x):  # sigma (1 + x (1 - sigma))
        s = _expit(x)
        return s * (1 + x * (1 - s))

    @staticmethod
    def d2(x):  # sigma (1 - sigma) (2 + x (1 - 2 sigma))
        s = _expit(x)
        return s * (1 - s) * (2 + x * (1 - 2 * s))

    @staticmethod
    def saturation(out):
        """Fraction of units dead over the batch (as ReLU's): -DEAD < out <= 0 for every example."""
        return float(np.mean(np.all((out <= 0) & (out > -SiLU.DEAD), axis=0)))


# each activation class holds fn (phi), d1 (phi') and d2 (phi'') and its saturation: the theory, the
# walk, the training cores and the diagnostics read them here. Adding an activation is one entry.
ACTIVATIONS = {"linear": Identity, "relu": ReLU, "tanh": Tanh, "selu": SELU, "gelu": GELU, "sigmoid": Sigmoid,
               "silu": SiLU}


class BatchNorm1d:
    """Batch normalisation over the batch axis (Ioffe & Szegedy 2015).

    Train mode normalises with the batch mean and biased batch variance, as PyTorch does, and moves
    the running mean toward the batch mean and the running variance toward the (unbiased) batch
    variance. Eval mode normalises with the running statistics.
    """

    def __init__(self, dim, dtype=np.float64, eps=1e-5, momentum=0.1):
        self.eps, self.momentum, self.training = eps, momentum, True
        self.gamma = np.ones(dim, dtype)
        self.beta = np.zeros(dim, dtype)
        self.running_mean = np.zeros(dim, dtype)
        self.running_var = np.ones(dim, dtype)
        self.grad_gamma = np.zeros_like(self.gamma)
        self.grad_beta = np.zeros_like(self.beta)

    def forward(self, x):
        if self.training:
            mean = x.mean(axis=0)
            var = x.var(axis=0)
            n = x.shape[0]
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * mean
            self.running_var = (1 - m) * self.running_var + m * var * (n / max(n - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        self.inv_std = 1.0 / np.sqrt(var + self.eps)
        self.x_hat = (x - mean) * self.inv_std
        self.out = self.gamma * self.x_hat + self.beta
        return self.out

    def backward(self, dout):
        self.grad_out = dout
        self.grad_gamma = (dout * self.x_hat).sum(axis=0)
        self.grad_beta = dout.sum(axis=0)
        dx_hat = dout * self.gamma
        if not self.training:
            return dx_hat * self.inv_std
        # d/dx of (x - mean(x)) / sqrt(var(x) + eps), per feature, over the batch axis
        return self.inv_std * (dx_hat - dx_hat.mean(axis=0) - self.x_hat * (dx_hat * self.x_hat).mean(axis=0))

    def params(self):
        return [(self.gamma, self.grad_gamma), (self.beta, self.grad_beta)]


class Sequential:
    """Layers run in order: forward through them, backward in reverse, their params, BatchNorm's mode (nested
    Sequentials too: a residual block's branch, core/resnet.py)."""

    def __init__(self, layers):
        self.layers = layers

    @property
    def linears(self):
        return [l for l in self.layers if isinstance(l, Linear)]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def params(self):
        return [pg for layer in self.layers for pg in layer.params()]

    def train(self, mode=True):
        for layer in self.layers:
            if isinstance(layer, BatchNorm1d):
                layer.training = mode
            elif isinstance(layer, Sequential):
                layer.train(mode)


class MLP(Sequential):
    """Linear -> [BatchNorm] -> activation, `depth` Linear layers, the last one giving logits."""

    @classmethod
    def build(cls, rng, *, depth, width, input_dim, classes, activation="relu", norm="none",
              init="kaiming", gain=1.0, dtype=np.float64, last_layer_scale=1.0, scales=None, mults=None):
        """scales, mults: per Linear, a factor on its draw (float64, before the cast) and its forward
        multiplier (a parametrization's, core/parametrization.py); None: neither (SP's bits)."""
        dims = [input_dim] + [width] * (depth - 1) + [classes]
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == depth - 1
            w = inits.sample_weights(init, rng, fan_in, fan_out, gain) * (last_layer_scale if last else 1.0)
            if scales is not None:  # drawn even at scale 0 (muP's zero readout): the other layers' draws stay
                w = w * scales[i] if scales[i] else np.zeros_like(w)  # +0.0, not -0.0 * a negative draw
            layers.append(Linear(w.astype(dtype), mult=None if mults is None else mults[i]))
            if not last:
                if norm == "batchnorm":
                    layers.append(BatchNorm1d(fan_out, dtype))
                layers.append(ACTIVATIONS[activation]())
        return cls(layers)

    @property
    def blocks(self):
        """(linear, block output layer, activation class) per Linear: the block is the Linear and
        what follows it up to the next Linear; the last block's output is the logits."""
        starts = [i for i, l in enumerate(self.layers) if isinstance(l, Linear)] + [len(self.layers)]
        out = []
        for a, b in zip(starts[:-1], starts[1:]):
            act = next((type(l) for l in self.layers[a:b] if type(l) in ACTIVATIONS.values()), Identity)
            out.append((self.layers[a], self.layers[b - 1], act))
        return out

    def hidden(self):
        """(outputs, output gradients) of the hidden blocks, from the last forward and backward."""
        blocks = self.blocks[:-1]
        return [last.out for _, last, _ in blocks], [last.grad_out for _, last, _ in blocks]


def cross_entropy(logits, targets):
    """Mean cross-entropy of integer targets, and its gradient w.r.t. the logits.

    log_softmax(z) = z - max(z) - log(sum(exp(z - max(z)))): stable for any finite logits.
    """
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), targets].mean()
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), targets] -= 1
    return loss, dlogits / n


def evaluate(model, x, y) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on (x, y), BatchNorm in eval mode (running statistics)."""
    model.train(False)
    with np.errstate(all="ignore"):
        logits = model.forward(x)
        loss, _ = cross_entropy(logits, y)
    model.train(True)
    return float(loss), float(np.mean(np.argmax(logits, axis=1) == y))


class SGD:
    """SGD with momentum, PyTorch's form: v = mu*v + g; p -= lr*v. lrs: one lr per parameter (a
    parametrization's), else lr for all."""

    def __init__(self, params, lr, momentum=0.0, lrs=None):
        self.lr, self.momentum = lr, momentum
        self.lrs = [lr] * len(params) if lrs is None else list(lrs)
        self.velocity = [np.zeros_like(p) for p, _ in params]

    def step(self, params):
        for v, (p, g), lr in zip(self.velocity, params, self.lrs):
            v *= self.momentum
            v += g
            p -= lr * v

    def update_of(self, params, p):
        """The last step's update of parameter p: lr * v."""
        i = next(i for i, (q, _) in enumerate(params) if q is p)
        return self.lrs[i] * self.velocity[i]


class Embedding:
    """Lookup table C (vocab, dim): integer contexts (batch, block) -> C[idx] flattened to
    (batch, block * dim), the concatenated character embeddings of makemore."""

    def __init__(self, weight: np.ndarray):
        self.weight = weight
        self.grad_weight = np.zeros_like(weight)

    def forward(self, idx):
        self.idx = idx
        self.out = self.weight[idx].reshape(idx.shape[0], -1)
        return self.out

    def backward(self, dout):
        self.grad_out = dout
        # a character used twice in a batch gets both gradients: add.at accumulates repeats, += would not
        self.grad_weight = np.zeros_like(self.weight)
        np.add.at(self.grad_weight, self.idx, dout.reshape(*self.idx.shape, -1))
        return None  # integer inputs have no gradient

    def params(self):
        return [(self.weight, self.grad_weight)]
