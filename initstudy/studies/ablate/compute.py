"""Lab 01, the init ablation: train a deep MLP on a dataset (lab 01's synthetic set by default) under one init.

Pure: AblateConfig + init in, AblateResult out (arrays and numbers). The data and the batch order
come from `data_seed` and are the same for every init; the weights from a seed derived per init.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from initstudy.core import data, diagnostics, fastmlp, inits, lsuv, nn, optim, resnet, seeds
from initstudy.core import parametrization as P

from initstudy.core.config import at_least, one_of, positive, ConfigError

DTYPES = ("float32", "float64")
NORMS = ("none", "batchnorm")

# Flatline: the run ends stuck at random guessing: the last FLAT_WINDOW losses all lie within
# FLAT_BAND of ln(classes) and their least-squares slope is below FLAT_SLOPE per step (a fall of
# < 0.002 over the window). A run that sits on the plateau and then leaves it (Xavier, measured:
# 300-800 steps) is slow, not flat; its slope over the last 200 steps says how slow.
FLAT_WINDOW = 200
FLAT_BAND = 0.02
FLAT_SLOPE = 1e-5
# Stalled: a run neither diverged nor flat whose final loss (the mean of its last 10) is still within
# STALL_FRACTION of ln(classes), the loss of a uniform guess: it moved, but did not get away from chance.
# Trained: below (1 - STALL_FRACTION) ln(classes). Lab 01 at its 1000 steps: Xavier 0.662 against
# ln 2 = 0.693 (4.5 % below: stalled), Kaiming 0.0007 (trained).
STALL_FRACTION = 0.1


@dataclass(frozen=True)
class AblateConfig:
    depth: int = 12
    width: int = 256
    data: str = "synthetic"  # a name in data.DATASETS
    input_dim: int = 0  # input_dim, classes, n_train, n_val: 0 = the dataset's (synthetic: 256, 2, 1000, 200);
    classes: int = 0  # synthetic takes any, a real set's are fixed (stating them is allowed, changing them is not)
    activation: str = "relu"
    norm: str = "none"
    gain: float = 1.0
    lr: float = 1e-3
    momentum: float = 0.9
    batch: int = 64
    steps: int = 1000
    dtype: str = "float32"
    seed: int = 42
    data_seed: int = 42
    n_train: int = 0
    n_val: int = 0
    eval_every: int = 10
    diag_every: int = 10
    param: str = "sp"  # sp | ntk | mup: how init and lr scale with width (core/parametrization.py)
    base_width: int = 64  # the width at which mup equals sp (m = width / base_width)
    mup_readout: str = "scaled"  # mup's output init: scaled (Var 1/(fan_in m)) | zero (TP V Table 3's "or zero")
    optimizer: str = "sgd"  # sgd (momentum) | adam (b1 0.9, b2 0.999, eps 1e-8; momentum unused)
    arch: str = "mlp"  # mlp, or resnet: depth blocks x_{l+1} = x_l + alpha B(x_l) between input and readout (core/resnet.py)
    branch: str = ""  # resnet's branch scheme (resnet.BRANCHES); empty: none
    branch_layers: int = 2  # resnet: weight layers per branch, 1 or 2

    def __post_init__(self):  # the shape the dataset gives where none was asked for
        if self.data in data.DATASETS:
            for k, v in data.DATASETS[self.data].shape.items():
                if getattr(self, k) == 0:
                    object.__setattr__(self, k, v)

    def validate(self):
        src = data.source(self.data)
        for k in data.SHAPE_KEYS:
            if src.fixed and getattr(self, k) != src.shape[k]:
                raise ConfigError(f"{k}={getattr(self, k)} contradicts data={self.data}, whose {k} is "
                                  f"{src.shape[k]}; leave {k} at 0 (the dataset's)")
        for name in ("depth", "width", "input_dim", "batch", "steps", "n_train", "n_val", "eval_every",
                     "diag_every", "gain", "lr"):
            positive(name, getattr(self, name))
        at_least("classes", self.classes, 2)
        at_least("seed", self.seed, 0)
        at_least("data_seed", self.data_seed, 0)
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.batch > self.n_train:
            raise ConfigError(f"batch must be <= n_train ({self.n_train}), got {self.batch}")
        one_of("activation", self.activation, tuple(nn.ACTIVATIONS))
        one_of("norm", self.norm, NORMS)
        one_of("dtype", self.dtype, DTYPES)
        P.check(self.param, self.optimizer, self.depth, self.width, self.base_width, self.mup_readout)
        resnet.check_arch(self.arch, self.branch, self.branch_layers)
        if self.arch == "resnet" and self.param != "sp":
            raise ConfigError(f"param={self.param} scales the Linears of a plain MLP (core/parametrization.py); "
                              f"arch=resnet takes param=sp")

    @property
    def stages(self) -> int:
        """Rows of the per-layer diagnostics: the MLP's Linears, or the resnet's input layer, blocks and readout."""
        return self.depth + 2 if self.arch == "resnet" else self.depth

    def layers(self) -> list:
        """Each Linear's parametrization numbers (P.Layer): kind, init std factor, forward mult, lr factors."""
        dims = [self.input_dim] + [self.width] * (self.depth - 1) + [self.classes]
        return P.layers(self.param, self.optimizer, dims, self.base_width, self.mup_readout)

    def weight_seed(self, init: str) -> int:
        return seeds.derive_seed(self.seed, f"ablate/weights/{init}")

    def lsuv_seed(self) -> int:
        """The seed of the training batch a data-dependent init (lsuv) rescales the layers on."""
        return seeds.derive_seed(self.data_seed, "lsuv")

    def check_init(self, init: str):
        """What an init asks of the config beyond its name (grid points and the job call this)."""
        one_of("init", init, tuple(inits.INITS))
        if self.arch != "mlp":
            resnet.check_init(init, self.arch, self.norm)
        if inits.INITS[init].needs_data and self.norm != "none":
            raise ConfigError(f"init {init} rescales each layer to unit output variance itself; it takes norm=none, "
                              f"got norm={self.norm}")

    def stream_seeds(self) -> dict:
        """The seeds data.py derives from data_seed, recorded so a reader need not re-derive them
        ("data": the seed the set's generator got: mnist1d's is data_seed itself, digits has none)."""
        return {"data_seed": self.data_seed, "data": data.source(self.data).seed(self.data_seed),
                "batches": seeds.derive_seed(self.data_seed, "batches")}

    def shape(self) -> dict:
        return {k: getattr(self, k) for k in data.SHAPE_KEYS}


@dataclass
class AblateResult:
    init: str
    weight_seed: int
    losses: np.ndarray  # (steps,) loss before update s; nan after divergence stops training
    val_steps: np.ndarray  # steps at which val was measured (s: after s updates)
    val_loss: np.ndarray
    val_acc: np.ndarray
    diag_steps: np.ndarray
    diag: dict  # stat -> (len(diag_steps), depth)
    hist_act: dict  # "init" | "end" -> [(counts, edges)] per hidden block
    hist_grad: dict
    steps_to_nan: int | None
    flatline_step: int | None
    outcome: str  # trained | stalled | diverged | flatlined
    initial_loss: float
    expected_initial_loss: float  # ln(classes): the loss of a uniform prediction
    final_loss: float
    final_val_acc: float
    loss_slope_last200: float
    extra: dict = field(default_factory=dict)
    lsuv: object = None  # lsuv.Report of init lsuv (its batch: lsuv_seed()), else None

    def summary(self) -> dict:
        return {
            "initial_loss": self.initial_loss,
            "expected_initial_loss": self.expected_initial_loss,
            "final_loss": self.final_loss,
            "final_val_acc": self.final_val_acc,
            "loss_slope_last200": self.loss_slope_last200,
            "steps_to_nan": self.steps_to_nan,
            "flatline_step": self.flatline_step,
        }


def slope(y: np.ndarray) -> float:
    """Least-squares slope of y against its index (per step)."""
    if len(y) < 2 or not np.all(np.isfinite(y)):
        return float("nan")
    x = np.arange(len(y), dtype=float)
    x -= x.mean()
    return float(np.dot(x, y - y.mean()) / np.dot(x, x))


def _flat(window: np.ndarray, level: float) -> bool:
    return bool(np.all(np.abs(window - level) < FLAT_BAND)) and abs(slope(window)) < FLAT_SLOPE


def flatline_start(losses: np.ndarray, level: float) -> int | None:
    """Where the flat stretch that ends the run began (None if the run does not end flat)."""
    n, w = len(losses), FLAT_WINDOW
    if n < w or not _flat(losses[n - w:], level):
        return None
    s = n - w
    while s > 0 and _flat(losses[s - 1:s - 1 + w], level):
        s -= 1
    return s


def outcome_of(losses, steps_to_nan, level) -> tuple[str, int | None]:
    """(outcome, flatline step): diverged (a NaN), flatlined (ends flat on ln classes), stalled (ends
    within STALL_FRACTION of ln classes) or trained."""
    if steps_to_nan is not None:
        return "diverged", None
    flat = flatline_start(losses, level)
    if flat is not None:
        return "flatlined", flat
    return ("stalled" if np.mean(losses[-10:]) > (1 - STALL_FRACTION) * level else "trained"), None


def build_model(config: AblateConfig, init: str) -> nn.MLP | resnet.ResNet:
    if config.arch == "resnet":
        return resnet.ResNet.build(seeds.rng(config.weight_seed(init)), depth=config.depth, width=config.width,
                                   input_dim=config.input_dim, classes=config.classes, branch=config.branch or "none",
                                   branch_layers=config.branch_layers, activation=config.activation, norm=config.norm,
                                   init=init, gain=config.gain, dtype=np.dtype(config.dtype))
    ls = config.layers()
    sp = config.param == "sp"  # SP draws and runs as before the parametrizations (no factor, no mult)
    return nn.MLP.build(seeds.rng(config.weight_seed(init)), depth=config.depth, width=config.width,
                        input_dim=config.input_dim, classes=config.classes, activation=config.activation,
                        norm=config.norm, init=init, gain=config.gain, dtype=np.dtype(config.dtype),
                        scales=None if sp else [l.init_std for l in ls],
                        mults=None if sp else [None if l.forward_mult == 1 else l.forward_mult for l in ls])


def layer_lrs(config: AblateConfig) -> list[tuple[float, float]]:
    """Per Linear, (lr of W, lr of b): lr times the parametrization's factors (x 1.0 is exact: SP's bits)."""
    return [(config.lr * l.lr_weight, config.lr * l.lr_bias) for l in config.layers()]


def param_lrs(config: AblateConfig, model: nn.MLP) -> list[float]:
    """One lr per entry of model.params(): a Linear's W and b, then a BatchNorm's gamma and beta at its
    block's bias lr (vector-like parameters, Table 3's "all biases" column)."""
    per, out, i = layer_lrs(config), [], -1
    for layer in model.layers:
        if isinstance(layer, nn.Linear):
            i += 1
            out += list(per[i])
        elif isinstance(layer, nn.BatchNorm1d):
            out += [per[i][1]] * 2
    return out


def dataset(config: AblateConfig) -> data.Dataset:
    return data.load(config.data, config.data_seed, config.shape(), config.dtype)


class ReferenceCore:
    """The straightforward nn.py loop (any norm) behind the interface fastmlp.FastMLP has."""

    def __init__(self, model: nn.MLP, lr: float, momentum: float, lrs=None, optimizer: str = "sgd"):
        """lrs: one per entry of model.params() (param_lrs), default lr for all."""
        self.model = model
        self.opt = (optim.Adam(model.params(), lrs or [lr] * len(model.params())) if optimizer == "adam"
                    else nn.SGD(model.params(), lr, momentum, lrs))

    def loss(self, x_all, y_all, idx):
        return nn.cross_entropy(self.model.forward(x_all[idx]), y_all[idx])

    def backward_update(self, dlogits, keep_grads=True):  # nn.py's grads always stay
        self.model.backward(dlogits)
        self.opt.step(self.model.params())

    def evaluate(self, x, y):
        return nn.evaluate(self.model, x, y)

    def stats(self):
        return diagnostics.layer_stats(self.model, self.opt)

    def hidden(self):
        return self.model.hidden()


def lsuv_batch(config: AblateConfig, ds: data.Dataset) -> np.ndarray:
    """`batch` training inputs drawn without replacement with lsuv_seed()."""
    idx = seeds.rng(config.lsuv_seed()).choice(config.n_train, config.batch, replace=False)
    return ds.x_train[np.sort(idx)]


def apply_lsuv(config: AblateConfig, model: nn.MLP, ds: data.Dataset) -> lsuv.Report:
    """Rescale the model's Linears in place (Mishkin & Matas Alg. 1 on lsuv_batch, in float64, cast back)."""
    linears = model.linears
    act = nn.ACTIVATIONS[config.activation].fn
    ws, report = lsuv.lsuv([l.weight for l in linears], [l.bias for l in linears], act, lsuv_batch(config, ds),
                           config.lsuv_seed())
    for l, w in zip(linears, ws):
        l.weight = w.astype(l.weight.dtype)
    return report


def prepare(config: AblateConfig, init: str, ds: data.Dataset | None = None):
    """(core, lsuv report or None): the model drawn (and, for a data-dependent init, rescaled on a batch of
    ds), in the fast core where it applies (norm none), else the nn.py reference; both give the same bits."""
    config.check_init(init)
    model = build_model(config, init)
    report = apply_lsuv(config, model, ds or dataset(config)) if inits.INITS[init].needs_data else None
    if config.arch == "resnet":  # the reference: its per-layer diagnostics read the model (fastresnet has none)
        return ReferenceCore(model, config.lr, config.momentum, optimizer=config.optimizer), report
    if config.norm == "none":
        return fastmlp.FastMLP(model, config.lr, config.momentum, config.batch, layer_lrs(config),
                               config.optimizer), report
    return ReferenceCore(model, config.lr, config.momentum, param_lrs(config, model), config.optimizer), report


def make_core(config: AblateConfig, init: str, ds: data.Dataset | None = None):
    return prepare(config, init, ds)[0]


def train(config: AblateConfig, init: str, ds: data.Dataset | None = None, on_step=None, on_diag=None) -> AblateResult:
    """on_step(step, loss), if given, sees each loss as it is computed (so a killed run can flush it);
    on_diag(step, {stat: per-layer array}) each diagnostics row."""
    ds = ds or dataset(config)
    core, report = prepare(config, init, ds)
    result = run_core(config, init, ds, core, on_step, on_diag)
    result.lsuv = report
    return result


def run_core(config: AblateConfig, init: str, ds: data.Dataset, core, on_step=None, on_diag=None) -> AblateResult:
    batches = data.batch_stream(config.data_seed, config.n_train, config.batch)
    stats = getattr(core, "stats", None) or (lambda: diagnostics.layer_stats(core, core))
    steps = config.steps
    losses = np.full(steps, np.nan)
    val_steps, val_loss, val_acc, diag_steps = [], [], [], []
    diag = {k: [] for k in diagnostics.STATS}
    hist_act, hist_grad = {}, {}
    steps_to_nan = None
    updates = 0
    with np.errstate(all="ignore"):  # overflow is an outcome here, recorded, not a warning
        for s in range(steps):
            if s % config.eval_every == 0:
                vl, va = core.evaluate(ds.x_val, ds.y_val)
                val_steps.append(s), val_loss.append(vl), val_acc.append(va)
            loss, dlogits = core.loss(ds.x_train, ds.y_train, next(batches))
            losses[s] = loss
            if on_step is not None:
                on_step(s, loss)
            if not np.isfinite(loss):
                steps_to_nan = s
                break
            core.backward_update(dlogits, keep_grads=s % config.diag_every == 0)  # stats() reads them
            updates += 1
            if s == 0:
                acts, grads = core.hidden()
                hist_act["init"], hist_grad["init"] = diagnostics.histograms(acts), diagnostics.histograms(grads)
            if s % config.diag_every == 0:
                diag_steps.append(s)
                row = stats()
                for k, v in row.items():
                    diag[k].append(v)
                if on_diag is not None:
                    on_diag(s, row)
        acts, grads = core.hidden()
        hist_act["end"], hist_grad["end"] = diagnostics.histograms(acts), diagnostics.histograms(grads)
        if val_steps[-1] != updates:
            vl, va = core.evaluate(ds.x_val, ds.y_val)
            val_steps.append(updates), val_loss.append(vl), val_acc.append(va)

    level = math.log(config.classes)
    outcome, flat = outcome_of(losses, steps_to_nan, level)
    done = losses[:steps_to_nan] if steps_to_nan is not None else losses
    return AblateResult(
        init=init, weight_seed=config.weight_seed(init), losses=losses,
        val_steps=np.array(val_steps), val_loss=np.array(val_loss), val_acc=np.array(val_acc),
        diag_steps=np.array(diag_steps, int),
        diag={k: np.array(v).reshape(len(diag_steps), config.stages) for k, v in diag.items()},
        hist_act=hist_act, hist_grad=hist_grad, steps_to_nan=steps_to_nan, flatline_step=flat, outcome=outcome,
        initial_loss=float(losses[0]), expected_initial_loss=level,
        final_loss=float(np.mean(done[-10:])) if len(done) and steps_to_nan is None else float("nan"),  # not a blow-up's mean
        final_val_acc=float(val_acc[-1]) if steps_to_nan is None else float("nan"),  # a blown-up net's guess
        loss_slope_last200=slope(losses[-200:]) if steps_to_nan is None else float("nan"),
    )
