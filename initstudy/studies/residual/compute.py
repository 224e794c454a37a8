"""The residual study (issue 26, lab 40): which networks train at depth without normalization.

A cell is one network on MNIST-1D (each feature standardized with the training set's statistics, as the
phase study's cells), trained `steps` SGD steps with momentum, then evaluated on the whole sets:
    model = mlp         a plain MLP, Linear -> activation, with 2 depth + 2 Linear layers: as many weight
                        layers as a resnet of `depth` two-layer blocks with its input and readout layers
            mlp_bn      the same with BatchNorm after each hidden Linear (lab 03's)
            none, sqrt_depth, zero, fixup   a resnet of `depth` blocks (core/resnet.py), that branch scheme
The init (kaiming by default: ReLU's) draws every weight; a scheme rescales as core/resnet.py says.
Pure: CellConfig + init in, CellResult out; the loop is core/cell.py's (phase's and transfer's). Trained in the
fast cores (core/fastresnet.py, core/fastmlp.py), bit-identical to nn.py's reference (tests/test_fastcore.py);
mlp_bn on the reference (no fast BatchNorm).
"""
import hashlib
from dataclasses import dataclass

import numpy as np

from initstudy.core import cell, data, fastmlp, fastresnet, inits, nn, resnet, seeds
from initstudy.core.config import ConfigError, at_least, one_of, positive
from initstudy.studies.ablate.compute import ReferenceCore
from initstudy.studies.phase.compute import cached_dataset

MODELS = ("mlp", "mlp_bn") + resnet.BRANCHES
DTYPES = ("float32", "float64")


def arch_of(model: str) -> dict:
    """residual.json's architecture fields of a model name: arch, branch (None for the MLP), norm."""
    if model.startswith("mlp"):
        return {"arch": "mlp", "branch": None, "norm": "batchnorm" if model == "mlp_bn" else "none"}
    return {"arch": "resnet", "branch": model, "norm": "none"}


@dataclass(frozen=True)
class CellConfig:
    """One cell; every field can be a sweep axis (model x depth x seed x lr: the study's grid)."""
    model: str = "sqrt_depth"
    depth: int = 10  # residual blocks (an MLP: 2 depth + 2 Linear layers)
    seed: int = 0
    lr: float = 0.01
    width: int = 128
    activation: str = "relu"
    data: str = "mnist1d"
    data_seed: int = 42
    momentum: float = 0.9
    batch: int = 128
    steps: int = 1000
    dtype: str = "float32"

    def validate(self):
        one_of("model", self.model, MODELS)
        data.source(self.data)
        one_of("activation", self.activation, tuple(nn.ACTIVATIONS))
        one_of("dtype", self.dtype, DTYPES)
        for name in ("depth", "width", "batch", "steps", "lr"):
            positive(name, getattr(self, name))
        at_least("seed", self.seed, 0)
        at_least("data_seed", self.data_seed, 0)
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}")

    def weight_seed(self, init: str) -> int:
        return seeds.derive_seed(self.seed, f"residual/weights/{self.model}/depth={self.depth}/{init}")

    def stream_seeds(self) -> dict:
        return {"data_seed": self.data_seed, "data": data.source(self.data).seed(self.data_seed),
                "batches": seeds.derive_seed(self.data_seed, "batches")}


def check_init(init: str):
    one_of("init", init, tuple(inits.INITS))
    if inits.INITS[init].needs_data:
        raise ConfigError(f"init {init} rescales a plain stack layer by layer (Mishkin & Matas Alg. 1); a residual "
                          f"block's output is x + alpha B(x): use a data-independent init")


def build_model(config: CellConfig, init: str, input_dim: int, classes: int):
    rng = seeds.rng(config.weight_seed(init))
    kw = dict(width=config.width, input_dim=input_dim, classes=classes, activation=config.activation, init=init,
              dtype=np.dtype(config.dtype))
    if config.model.startswith("mlp"):
        return nn.MLP.build(rng, depth=2 * config.depth + 2, norm=arch_of(config.model)["norm"], **kw)
    return resnet.ResNet.build(rng, depth=config.depth, branch=config.model, **kw)


def make_core(config: CellConfig, model):
    """The model's training core: fast (resnet, mlp) or nn.py's reference (mlp_bn); all give the same bits."""
    if isinstance(model, resnet.ResNet):
        return fastresnet.FastResNet(model, config.lr, config.momentum, config.batch)
    if config.model == "mlp":
        return fastmlp.FastMLP(model, config.lr, config.momentum, config.batch)
    return ReferenceCore(model, config.lr, config.momentum)


@dataclass
class CellResult:
    init: str
    weight_seed: int
    losses: np.ndarray  # (steps,) minibatch loss before update s; NaN after a divergence
    train_acc: float  # whole training set, after training (BN: running statistics)
    test_acc: float
    steps_to_nan: int | None

    @property
    def diverged(self) -> bool:
        return self.steps_to_nan is not None

    def summary(self) -> dict:
        return {"train_acc": self.train_acc, "test_acc": self.test_acc, "steps_to_nan": self.steps_to_nan}


def loss_digest(losses: np.ndarray) -> str:
    """sha256 of the loss series as float64 bytes: equal digests, equal series, bit for bit."""
    return hashlib.sha256(np.ascontiguousarray(losses, dtype=np.float64).tobytes()).hexdigest()


def train_cell(config: CellConfig, init: str = "kaiming", ds: data.Dataset | None = None) -> CellResult:
    check_init(init)
    ds = ds or cached_dataset(config)
    core = make_core(config, build_model(config, init, ds.x_train.shape[1], int(ds.y_train.max()) + 1))
    r = cell.train(core, ds, config.data_seed, config.batch, config.steps)
    return CellResult(init, config.weight_seed(init), r.losses, r.train_acc, r.test_acc, r.steps_to_nan)


# --- the study: a grid of cells ------------------------------------------------------------------

TRAINED_ACC = 0.3  # a cell "trains" at train accuracy >= 0.3 (MNIST-1D's 10 classes: chance 0.1), phase's rule
SHARED = ("width", "activation", "data", "data_seed", "momentum", "batch", "steps", "dtype")


def parse_list(name: str, raw: str, kind) -> list:
    try:
        values = [kind(x.strip()) for x in str(raw).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{name} must be a comma list of {kind.__name__}s; got {raw!r}") from None
    if not values or len(set(values)) != len(values):
        raise ConfigError(f"{name} must list distinct values; got {raw!r}")
    return values


@dataclass(frozen=True)
class ResidualConfig:
    """The `residual` entry point: models x depths x seeds x lrs, the shared fields of every cell. The default
    is issue 26's grid at width 128, 1000 steps (batch 64; depth 200 left out for the 2 shared cores' budget:
    docs/residual.md)."""
    models: str = ",".join(MODELS)
    depths: str = "10,50,100"
    seeds: str = "0,1"
    lrs: str = "0.003,0.01,0.03"
    init: str = "kaiming"
    width: int = 128
    activation: str = "relu"
    data: str = "mnist1d"
    data_seed: int = 42
    momentum: float = 0.9
    batch: int = 64
    steps: int = 1000
    dtype: str = "float32"

    def validate(self):
        for m in parse_list("models", self.models, str):
            one_of("models", m, MODELS)
        for d in parse_list("depths", self.depths, int):
            positive("depth", d)
        for s in parse_list("seeds", self.seeds, int):
            at_least("seed", s, 0)
        for lr in parse_list("lrs", self.lrs, float):
            positive("lr", lr)
        check_init(self.init)
        self.cell(MODELS[0], 1, 0, 0.01).validate()

    def grid(self) -> dict:
        return {"model": parse_list("models", self.models, str), "depth": parse_list("depths", self.depths, int),
                "seed": parse_list("seeds", self.seeds, int), "lr": parse_list("lrs", self.lrs, float)}

    def shared(self) -> dict:
        return {k: getattr(self, k) for k in SHARED}

    def cell(self, model, depth, seed, lr) -> CellConfig:
        return CellConfig(model=model, depth=depth, seed=seed, lr=lr, **self.shared())

    def stream_seeds(self) -> dict:
        return self.cell(MODELS[0], 1, 0, 0.01).stream_seeds()


def best_lrs(cells: list) -> dict:
    """{model: {depth: lr}}: the lr of the set with the best mean train accuracy over seeds (ties: the smaller)."""
    out = {}
    for c in cells:
        out.setdefault(c["model"], {}).setdefault(c["depth"], {}).setdefault(c["lr"], []).append(c["train_acc"])
    return {m: {d: min(by_lr, key=lambda lr: (-float(np.mean(by_lr[lr])), lr)) for d, by_lr in per.items()}
            for m, per in out.items()}


def claims(cells: list, depths: list) -> dict:
    """What the grid says, at each model's best lr: mean train/test accuracy per (model, depth); which models
    train (mean train acc >= TRAINED_ACC) at the deepest depth without normalization; where each fails."""
    best = best_lrs(cells)
    table = {}
    for m, per in best.items():
        for d, lr in per.items():
            at = [c for c in cells if c["model"] == m and c["depth"] == d and c["lr"] == lr]
            table.setdefault(m, {})[d] = {"lr": lr, "train_acc": float(np.mean([c["train_acc"] for c in at])),
                                          "test_acc": float(np.mean([c["test_acc"] for c in at])),
                                          "diverged": sum(c["diverged"] for c in at), "seeds": len(at)}
    deep, shallow = max(depths), min(depths)
    unnormalized = [m for m in table if m != "mlp_bn"]
    return {"table": {m: {str(d): v for d, v in sorted(t.items())} for m, t in table.items()},
            "deepest": deep, "shallowest": shallow,
            "train_at_deepest": [m for m in unnormalized if table[m].get(deep, {}).get("train_acc", 0) >= TRAINED_ACC],
            "fail_from_depth": {m: min((d for d, v in t.items() if v["train_acc"] < TRAINED_ACC), default=None)
                                for m, t in table.items()}}
