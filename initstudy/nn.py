"""Layers with hand-written forward and backward, in numpy, micrograd-style.

Every layer keeps what its backward needs from the last forward (`x`, `out`) and the gradient of
its output from the last backward (`grad_out`), so the diagnostics can read both after a step. Shapes: x is (batch, features); a Linear weight
is (fan_in, fan_out), so y = x @ W + b.
"""
import numpy as np

from initstudy import inits


class Linear:
    def __init__(self, weight: np.ndarray, bias: np.ndarray | None = None):
        self.weight = weight
        self.bias = np.zeros(weight.shape[1], weight.dtype) if bias is None else bias
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)

    def forward(self, x):
        self.x = x
        self.out = x @ self.weight + self.bias
        return self.out

    def backward(self, dout):
        self.grad_out = dout
        self.grad_weight = self.x.T @ dout
        self.grad_bias = dout.sum(axis=0)
        return dout @ self.weight.T

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


# each activation class holds fn (phi), d1 (phi') and d2 (phi''): the theory and the walk read them here
ACTIVATIONS = {"linear": Identity, "relu": ReLU, "tanh": Tanh}


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


class MLP:
    """Linear -> [BatchNorm] -> activation, `depth` Linear layers, the last one giving logits."""

    def __init__(self, layers):
        self.layers = layers

    @classmethod
    def build(cls, rng, *, depth, width, input_dim, classes, activation="relu", norm="none",
              init="kaiming", gain=1.0, dtype=np.float64, last_layer_scale=1.0):
        dims = [input_dim] + [width] * (depth - 1) + [classes]
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == depth - 1
            w = inits.sample_weights(init, rng, fan_in, fan_out, gain) * (last_layer_scale if last else 1.0)
            layers.append(Linear(w.astype(dtype)))
            if not last:
                if norm == "batchnorm":
                    layers.append(BatchNorm1d(fan_out, dtype))
                layers.append(ACTIVATIONS[activation]())
        return cls(layers)

    @property
    def linears(self):
        return [l for l in self.layers if isinstance(l, Linear)]

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
    """SGD with momentum, PyTorch's form: v = mu*v + g; p -= lr*v."""

    def __init__(self, params, lr, momentum=0.0):
        self.lr, self.momentum = lr, momentum
        self.velocity = [np.zeros_like(p) for p, _ in params]

    def step(self, params):
        for v, (p, g) in zip(self.velocity, params):
            v *= self.momentum
            v += g
            p -= self.lr * v

    def update_of(self, params, p):
        """The last step's update of parameter p: lr * v."""
        i = next(i for i, (q, _) in enumerate(params) if q is p)
        return self.lr * self.velocity[i]


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
