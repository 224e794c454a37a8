"""Learning-rate transfer across width (TP V, Figure 1; lab 30), one cell and the study's summary.

A cell is a 2-hidden-layer ReLU MLP of `width` under a parametrization (SP or muP) trained `steps`
steps of `optimizer` at lr = 2^log2_lr on MNIST-1D (batch 128, inputs standardized as the phase
study's). It records its final training loss on the whole training set, its test accuracy and whether
it diverged (a loss not finite during training or at the end: then train_loss is None).

The study is the grid param x width x log2_lr x seed; the summary asks TP V's question: the optimal
log2 lr per width (argmin over the grid of the seed-mean training loss; a diverged cell counts as
+inf), how many grid steps it moves from the narrowest width to the widest, and whether wider is
better at a fixed lr. Under muP the optimum should stay; under SP it shifts (TP V Figure 1: on
Transformers with Adam, SP's moves from ~2^-10 at width 128 to ~2^-16 at 8192).

A cell is an ablate run: the weights come from AblateConfig.weight_seed(init), the batch order from
data_seed, so the cells of one seed share their unit draws across lr and param (common random numbers).
"""
import math
from dataclasses import dataclass, field, fields

import numpy as np

from initstudy.core import cell, data, seeds
from initstudy.core import parametrization as P
from initstudy.studies.ablate import compute as ablate
from initstudy.studies.phase import compute as phase
from initstudy.core.config import ConfigError, apply_preset, at_least, check_preset, one_of
from initstudy.studies.phase.compute import parse_grid

EXPERIMENT = "30-width-transfer"  # the registry's (studies/__init__.py); named here for the documents
INPUT_SCALING = phase.INPUT_SCALING


@dataclass(frozen=True)
class TransferTraining:
    """What every cell of one study shares."""
    optimizer: str = "adam"
    base_width: int = 64
    mup_readout: str = "scaled"  # muP cells' output init: scaled (Var 1/(fan_in m)) | zero; SP cells keep theirs
    depth: int = 3  # Linear layers: 2 hidden of `width`
    activation: str = "relu"
    batch: int = 128
    steps: int = 500
    momentum: float = 0.9  # sgd only
    data: str = "mnist1d"
    data_seed: int = 42
    dtype: str = "float32"


@dataclass(frozen=True)
class CellConfig(TransferTraining):
    """One cell; every field can be a grid axis (the sweep study `transfer`)."""
    param: str = "mup"
    width: int = 64
    log2_lr: float = -8.0
    seed: int = 0

    def validate(self):
        self.ablate_config().validate()

    def ablate_config(self) -> ablate.AblateConfig:
        """The ablate run this cell is (eval/diag cadence aside)."""
        return ablate.AblateConfig(
            depth=self.depth, width=self.width, data=self.data, activation=self.activation, lr=2.0**self.log2_lr,
            momentum=self.momentum, batch=self.batch, steps=self.steps, dtype=self.dtype, seed=self.seed,
            data_seed=self.data_seed, param=self.param, base_width=self.base_width, optimizer=self.optimizer,
            mup_readout=self.mup_readout if self.param == "mup" else "scaled", eval_every=self.steps,
            diag_every=self.steps)

    def stream_seeds(self) -> dict:
        return {"data_seed": self.data_seed, "data": data.source(self.data).seed(self.data_seed),
                "batches": seeds.derive_seed(self.data_seed, "batches")}


@dataclass
class CellResult:
    init: str
    param: str
    width: int
    log2_lr: float
    seed: int
    weight_seed: int
    losses: np.ndarray  # (steps,) minibatch loss before update s; NaN after a divergence
    train_loss: float | None  # cross-entropy on the whole training set after training; None if diverged
    train_acc: float
    test_acc: float
    steps_to_nan: int | None
    diverged: bool
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"train_loss": self.train_loss, "train_acc": self.train_acc, "test_acc": self.test_acc,
                "steps_to_nan": self.steps_to_nan, "diverged": int(self.diverged)}


def train_cell(config: CellConfig, init: str = "lecun_normal", ds: data.Dataset | None = None) -> CellResult:
    """Train one cell in the fast core (bit-identical to nn.py's), evaluate on the whole sets."""
    c = config.ablate_config()
    ds = ds or phase.cached_dataset(config)
    core = ablate.make_core(c, init, ds)
    r = cell.train(core, ds, config.data_seed, config.batch, config.steps)
    diverged = r.steps_to_nan is not None or not math.isfinite(r.train_loss)
    return CellResult(init=init, param=config.param, width=config.width, log2_lr=config.log2_lr, seed=config.seed,
                      weight_seed=c.weight_seed(init), losses=r.losses, train_loss=None if diverged else r.train_loss,
                      train_acc=r.train_acc, test_acc=r.test_acc, steps_to_nan=r.steps_to_nan, diverged=diverged)


# --- the study: a grid of cells ------------------------------------------------------------------

PRESETS = {  # a preset sets these fields where they are left at their defaults
    "small": dict(lrs="-12:-4:2", widths="64,256", seeds="0", steps=150),
}
CELL_FIELDS = tuple(f.name for f in fields(TransferTraining))


def parse_lrs(raw: str) -> list[float]:
    """log2 learning rates: "a:b" (integers a..b), "a:b:step" or a comma list; strictly increasing."""
    text = str(raw).strip()
    if ":" in text and text.count(":") == 1:
        text += ":1"
    return parse_grid("lrs", text, float)


@dataclass(frozen=True)
class TransferConfig(TransferTraining):
    """The `transfer` entry point: the grid (params x widths x lrs x seeds) and what every cell shares."""
    preset: str = ""
    params: str = "sp,mup"
    widths: str = "64,128,256,512,1024"
    lrs: str = "-14:-2"  # log2 lr
    seeds: str = "0,1,2"
    init: str = "lecun_normal"  # N(0, 1/fan_in): Table 3's init Var

    def __post_init__(self):
        apply_preset(self, PRESETS)

    def validate(self):
        check_preset(self.preset, PRESETS)
        g = self.grid()
        for p in g["param"]:
            one_of("param", p, P.PARAMS)
        if g["seed"][0] < 0:
            raise ConfigError(f"seeds must be >= 0; got {self.seeds!r}")
        at_least("widths", g["width"][0], 1)
        ablate.AblateConfig().check_init(self.init)
        for p in g["param"]:
            for w in (g["width"][0], g["width"][-1]):
                self.cell(p, w, g["log2_lr"][0], g["seed"][0])  # every shared field, as a cell validates it

    def grid(self) -> dict:
        params = [p.strip() for p in str(self.params).split(",") if p.strip()]
        if not params or len(set(params)) != len(params):
            raise ConfigError(f"params must list sp, ntk or mup, each once; got {self.params!r}")
        return {"param": params, "width": parse_grid("widths", self.widths, int),
                "log2_lr": parse_lrs(self.lrs), "seed": parse_grid("seeds", self.seeds, int)}

    def shared(self) -> dict:
        return {k: getattr(self, k) for k in CELL_FIELDS}

    def cell(self, param: str, width: int, log2_lr: float, seed: int) -> CellConfig:
        c = CellConfig(param=param, width=width, log2_lr=log2_lr, seed=seed, **self.shared())
        c.validate()
        return c


def curve(cells: list, param: str, width: int, lrs: list) -> list:
    """Seed-mean training loss per log2 lr (inf where a seed diverged or the cell is missing)."""
    out = []
    for lr in lrs:
        mine = [c for c in cells if c["param"] == param and c["width"] == width and c["log2_lr"] == lr]
        vals = [math.inf if c["train_loss"] is None else c["train_loss"] for c in mine]
        out.append(float(np.mean(vals)) if vals else math.inf)
    return out


def optimum(losses: list, lrs: list) -> float | None:
    """The log2 lr of the least loss (None if none is finite)."""
    if not any(math.isfinite(x) for x in losses):
        return None
    return lrs[int(np.argmin(losses))]


def optima(cells: list, grid: dict) -> dict:
    """{param: [{width, log2_lr (seed-mean curve), per_seed [..], sd, loss}]}."""
    lrs, out = grid["log2_lr"], {}
    for p in grid["param"]:
        rows = []
        for w in grid["width"]:
            mean = curve(cells, p, w, lrs)
            per_seed = [optimum(curve([c for c in cells if c["seed"] == s], p, w, lrs), lrs) for s in grid["seed"]]
            found = [x for x in per_seed if x is not None]
            best = optimum(mean, lrs)
            rows.append({"width": w, "log2_lr": best, "per_seed": per_seed,
                         "sd": float(np.std(found)) if found else None,
                         "loss": None if best is None else min(mean)})
        out[p] = rows
    return out


def shift(rows: list, step: float) -> float | None:
    """Grid steps the optimum moves from the narrowest width to the widest (negative: to smaller lr)."""
    a, b = rows[0]["log2_lr"], rows[-1]["log2_lr"]
    return None if a is None or b is None else (b - a) / step


def wider_is_better(cells: list, grid: dict, param: str) -> dict:
    """At each lr where no cell of param diverged: does the seed-mean loss fall with every doubling?"""
    lrs, ws = grid["log2_lr"], grid["width"]
    curves = [curve(cells, param, w, lrs) for w in ws]
    ok = [lr for i, lr in enumerate(lrs) if all(math.isfinite(c[i]) for c in curves)]
    better = [lr for i, lr in enumerate(lrs) if lr in ok and all(a[i] > b[i] for a, b in zip(curves, curves[1:]))]
    return {"lrs_compared": ok, "lrs_wider_better": better,
            "fraction": len(better) / len(ok) if ok else None}


def verdict(cells: list, grid: dict) -> dict:
    lrs = grid["log2_lr"]
    step = lrs[1] - lrs[0] if len(lrs) > 1 else 1.0
    best = optima(cells, grid)
    return {"optima": best, "grid_step": step,
            "shift_steps": {p: shift(rows, step) for p, rows in best.items()},
            "wider_is_better": {p: wider_is_better(cells, grid, p) for p in grid["param"]},
            "cells": len(cells), "diverged_cells": sum(bool(c["diverged"]) for c in cells)}
