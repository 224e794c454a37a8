"""The makemore study (lab 03): activations, gradients and BatchNorm in a character-level MLP.

Pure: DiagnoseConfig + init + words in, DiagnoseResult out. The model is the notebook's
"pytorchified" one: embedding C (vocab, n_embd), then `hidden_layers` x Linear(width) [+ BatchNorm]
+ tanh, then Linear(vocab) [+ BatchNorm]; plain SGD, lr stepped down once.

Init, as the notebook does it: C ~ N(0, 1); Linear weights from the init registry (xavier =
N(0, 1/fan_in), the notebook's randn / sqrt(fan_in)) times `gain` (5/3 for tanh); biases 0. The
output layer is made "less confident": its weight (no norm) or its BatchNorm's gamma (norm) times
`last_layer_scale`, so the first logits are near 0 and the first loss near ln(vocab).
"""
import math
from dataclasses import dataclass, field

import numpy as np

from initstudy.core import data, diagnostics, inits, nn, seeds

from initstudy.core.config import ConfigError, at_least, one_of, positive

NORMS = ("none", "batchnorm")
# every activation: the makemore statistics are each activation's own (its saturation rule, nn.py);
# only the saturation map (|h| > 0.99) is the notebook's tanh picture
NETWORKS = nn.ACTIVATIONS
SAT_MAP = 0.99  # the notebook's saturation image: |h| > 0.99
MAX_NAME = 50  # a sampled name stops here if END never comes (an untrained model)


@dataclass(frozen=True)
class DiagnoseConfig:
    n_embd: int = 10
    block_size: int = 3
    width: int = 100
    hidden_layers: int = 5
    network: str = "tanh"
    norm: str = "none"
    gain: float = 5 / 3
    last_layer_scale: float = 0.1
    bn_momentum: float = 0.1
    lr: float = 0.1
    lr_decay_step: int = 100_000  # from this step on, lr * lr_decay (the notebook: 0.1, then 0.01)
    lr_decay: float = 0.1
    batch: int = 32
    steps: int = 3000
    diag_every: int = 20
    samples: int = 20
    seed: int = 42
    data_seed: int = 42
    words_file: str = data.BUILTIN_CORPUS  # the US-census first names of the `names` package, or a path

    def validate(self):
        for name in ("n_embd", "block_size", "width", "hidden_layers", "gain", "last_layer_scale", "lr",
                     "lr_decay", "batch", "steps", "diag_every"):
            positive(name, getattr(self, name))
        for name in ("lr_decay_step", "samples", "seed", "data_seed"):
            at_least(name, getattr(self, name), 0)
        if not 0 < self.bn_momentum <= 1:
            raise ConfigError(f"bn_momentum must be in (0, 1], got {self.bn_momentum!r}")
        one_of("network", self.network, tuple(NETWORKS))
        one_of("norm", self.norm, NORMS)

    def weight_seed(self, init: str) -> int:
        return seeds.derive_seed(self.seed, f"diagnose/weights/{init}")

    def stream_seeds(self) -> dict:
        return {"data_seed": self.data_seed, "split": self.split_seed(),
                "batches": seeds.derive_seed(self.seed, "diagnose/batches"),
                "samples": seeds.derive_seed(self.seed, "diagnose/samples")}

    def split_seed(self) -> int:
        return seeds.derive_seed(self.data_seed, "diagnose/split")

    def lr_at(self, step: int) -> float:
        return self.lr if step < self.lr_decay_step else self.lr * self.lr_decay


@dataclass
class DiagnoseResult:
    init: str
    weight_seed: int
    vocab: int
    losses: np.ndarray  # (steps,) minibatch loss before update s; nan after a divergence
    diag_steps: np.ndarray
    diag: dict  # stat -> (len(diag_steps), hidden_layers + 1): per Linear block, the last is the output
    emb_diag: dict  # grad_data, update_data of the embedding C at diag_steps
    hist_act: dict  # "init" | "end" -> [(counts, edges)] per hidden block output
    hist_grad: dict
    sat_map: dict  # "init" | "end" -> (batch, width) bool: |h| > SAT_MAP in the first hidden layer
    initial_loss: float
    expected_initial_loss: float  # -ln(1/vocab): the loss of a uniform prediction
    train_loss: float  # full split, BatchNorm in eval mode (running statistics)
    dev_loss: float
    samples: list  # names drawn from the trained model
    steps_to_nan: int | None
    model: nn.MLP = field(repr=False)
    dataset: data.CharData = field(repr=False)

    def summary(self) -> dict:
        return {
            "initial_loss": self.initial_loss,
            "expected_initial_loss": self.expected_initial_loss,
            "train_loss": self.train_loss,
            "dev_loss": self.dev_loss,
            "final_loss": float(np.mean(self.losses[~np.isnan(self.losses)][-100:])) if self.steps_to_nan is None
            else float("nan"),
            "steps_to_nan": self.steps_to_nan,
        }


def build_model(config: DiagnoseConfig, init: str, vocab: int) -> nn.MLP:
    rng = seeds.rng(config.weight_seed(init))
    embedding = nn.Embedding(rng.standard_normal((vocab, config.n_embd)))
    dims = [config.block_size * config.n_embd] + [config.width] * config.hidden_layers + [vocab]
    batchnorm = config.norm == "batchnorm"
    layers = [embedding]
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        last = i == len(dims) - 2
        # the notebook scales every Linear that a BatchNorm or tanh follows by the gain; the bare
        # output Linear gets last_layer_scale instead
        w = inits.sample_weights(init, rng, fan_in, fan_out, config.gain if (batchnorm or not last) else 1.0)
        layers.append(nn.Linear(w if batchnorm or not last else w * config.last_layer_scale))
        if batchnorm:
            bn = nn.BatchNorm1d(fan_out, momentum=config.bn_momentum)
            if last:
                bn.gamma *= config.last_layer_scale
            layers.append(bn)
        if not last:
            layers.append(NETWORKS[config.network]())
    return nn.MLP(layers)


def split(config: DiagnoseConfig, words) -> data.CharData:
    return data.char_splits(words, config.block_size, config.split_seed())


def sample_names(model, itos, block_size: int, n: int, seed: int) -> list[str]:
    """n names from the model, the notebook's way: start from END x block_size, draw the next
    character from softmax(logits), stop at END (kept, as the notebook prints it)."""
    rng = seeds.rng(seed)
    model.train(False)
    out = []
    with np.errstate(all="ignore"):
        for _ in range(n):
            context, chars = [0] * block_size, []
            while len(chars) < MAX_NAME:
                logits = model.forward(np.array([context]))[0]
                p = np.exp(logits - logits.max())
                cdf = np.cumsum(p)
                ix = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(itos) - 1)
                chars.append(itos[ix])
                if ix == 0:
                    break
                context = context[1:] + [ix]
            out.append("".join(chars))
    model.train(True)
    return out


def _sat_map(model):
    return np.abs(model.blocks[0][1].out) > SAT_MAP


def train(config: DiagnoseConfig, init: str, words, on_step=None) -> DiagnoseResult:
    """on_step(step), if given, is told each step done (a progress bar); it sees no number."""
    one_of("init", init, tuple(inits.INITS))
    ds = split(config, words)
    model = build_model(config, init, ds.vocab)
    embedding = model.layers[0]
    opt = nn.SGD(model.params(), config.lr, 0.0)
    batch_rng = seeds.rng(config.stream_seeds()["batches"])
    losses = np.full(config.steps, np.nan)
    diag_steps, diag = [], {k: [] for k in diagnostics.STATS}
    emb_diag = {"grad_data": [], "update_data": []}
    hist_act, hist_grad, sat_map = {}, {}, {}
    steps_to_nan = None
    with np.errstate(all="ignore"):  # a blow-up is recorded (steps_to_nan), not warned about
        for s in range(config.steps):
            opt.lr = config.lr_at(s)
            idx = batch_rng.integers(0, len(ds.y_train), size=config.batch)
            loss, dlogits = nn.cross_entropy(model.forward(ds.x_train[idx]), ds.y_train[idx])
            losses[s] = loss
            if on_step is not None:
                on_step(s)
            if not np.isfinite(loss):
                steps_to_nan = s
                break
            model.backward(dlogits)
            params = model.params()
            opt.step(params)
            if s == 0:  # what the notebook plots "at init": the first batch through the initial weights
                acts, grads = model.hidden()
                hist_act["init"], hist_grad["init"] = diagnostics.histograms(acts), diagnostics.histograms(grads)
                sat_map["init"] = _sat_map(model)
            if s % config.diag_every == 0 or s == config.steps - 1:
                diag_steps.append(s)
                for k, v in diagnostics.layer_stats(model, opt).items():
                    diag[k].append(v)
                emb_diag["grad_data"].append(diagnostics.grad_data(embedding.weight, embedding.grad_weight))
                emb_diag["update_data"].append(diagnostics.update_data(embedding.weight, opt, params))
        acts, grads = model.hidden()
        hist_act["end"], hist_grad["end"] = diagnostics.histograms(acts), diagnostics.histograms(grads)
        sat_map["end"] = _sat_map(model)
    n_blocks = config.hidden_layers + 1
    return DiagnoseResult(
        init=init, weight_seed=config.weight_seed(init), vocab=ds.vocab, losses=losses,
        diag_steps=np.array(diag_steps, int),
        diag={k: np.array(v, float).reshape(len(diag_steps), n_blocks) for k, v in diag.items()},
        emb_diag={k: np.array(v, float) for k, v in emb_diag.items()},
        hist_act=hist_act, hist_grad=hist_grad, sat_map=sat_map,
        initial_loss=float(losses[0]), expected_initial_loss=-math.log(1 / ds.vocab),
        train_loss=nn.evaluate(model, ds.x_train, ds.y_train)[0], dev_loss=nn.evaluate(model, ds.x_dev, ds.y_dev)[0],
        samples=sample_names(model, ds.itos, config.block_size, config.samples, config.stream_seeds()["samples"]),
        steps_to_nan=steps_to_nan, model=model, dataset=ds,
    )
