"""The coordinate check (microsoft/mup's get_coord_data / plot_coord_data; TP V section 7 and its README).

For each width, seed and parametrization (SP, muP) a 2-hidden-layer MLP takes `steps` forward passes
of one fixed batch (mup's fix_data), an update between them: t = 1 is at init, before any update.
At every t the size of each layer's output, l1 = mean |x| (mup's FDICT['l1']), is recorded for the
hidden blocks (post-activation) and the logits. The verdict is the slope of log2 l1 against log2
width per (param, module, t), over seeds (mean and sd).

What theory predicts (TP V, Table 3 and its desiderata; mup README, "Coord Check"):
- muP: every hidden layer's slope 0 at every t; the logits' -1/2 at t = 1 (the output init Var
  1/(fan_in m) shrinks them as 1/sqrt(width), the README's stated exception) and 0 from t = 2; with
  mup_readout=zero the logits are exactly 0 at t = 1 (at every width) and flat from t = 2;
- SP with Adam: from t = 2 the update of the readout adds Theta(width) to the logits (each of the
  width coordinates moves by ~lr, all aligned): slope ~1 (hidden layers grow too, less).
Pure: CoordConfig in, rows and slopes out.
"""
import math
from dataclasses import dataclass

import numpy as np

from initstudy.core import data
from initstudy.core import parametrization as P
from initstudy.studies.ablate import compute as ablate
from initstudy.studies.phase import compute as phase
from initstudy.core.config import ConfigError, at_least, one_of, positive
from initstudy.studies.phase.compute import parse_grid

EXPERIMENT = "30-width-coordcheck"  # the registry's (studies/__init__.py); named here for the documents
PARAMS = ("sp", "mup")  # the two the check compares (NTK: `ablate -P param=ntk`)
FLAT = 0.25  # |slope| below this: flat (a slope of 0.25 is 2^1.25 = 2.4x over 2^6..2^11)
GROWS = 0.5  # slope above this: growing (x 5.7 over the 5 doublings)


@dataclass(frozen=True)
class CoordConfig:
    widths: str = "64,128,256,512,1024,2048"
    steps: int = 5  # t = 1..steps (steps - 1 updates)
    seeds: str = "0,1,2"
    optimizer: str = "adam"
    lr: float = 0.01  # larger than one trains with, as mup's README advises
    base_width: int = 64
    mup_readout: str = "scaled"  # muP's output init: scaled (Var 1/(fan_in m)) | zero; SP keeps its own
    depth: int = 3  # Linear layers: 2 hidden
    activation: str = "relu"
    init: str = "lecun_normal"  # Var 1/fan_in, Table 3's
    momentum: float = 0.9  # sgd only
    batch: int = 128
    data: str = "mnist1d"
    data_seed: int = 42
    dtype: str = "float32"

    def validate(self):
        ws = self.width_list()
        at_least("steps", self.steps, 1)
        positive("lr", self.lr)
        at_least("seed", self.seed_list()[0], 0)
        one_of("optimizer", self.optimizer, P.OPTIMIZERS)
        ablate.AblateConfig().check_init(self.init)
        if len(ws) < 2:
            raise ConfigError(f"widths needs two widths or more for a slope; got {self.widths!r}")
        for p in PARAMS:
            for w in (ws[0], ws[-1]):
                self.run_config(p, w, 0)  # every shared field, validated as ablate validates it

    def width_list(self) -> list[int]:
        return parse_grid("widths", self.widths, int)

    def seed_list(self) -> list[int]:
        return parse_grid("seeds", self.seeds, int)

    def run_config(self, param: str, width: int, seed: int) -> ablate.AblateConfig:
        c = ablate.AblateConfig(depth=self.depth, width=width, data=self.data, activation=self.activation,
                                lr=self.lr, momentum=self.momentum, batch=self.batch, steps=self.steps,
                                dtype=self.dtype, seed=seed, data_seed=self.data_seed, param=param,
                                base_width=self.base_width, optimizer=self.optimizer,
                                mup_readout=self.mup_readout if param == "mup" else "scaled")
        c.validate()
        return c


def modules(depth: int) -> list[str]:
    return [f"hidden{i + 1}" for i in range(depth - 1)] + ["logits"]


def l1(x) -> float:
    """mup's l1: x.abs().mean(), here in float64."""
    return float(np.mean(np.abs(x), dtype=np.float64))


def record(config: CoordConfig, param: str, width: int, seed: int, ds) -> list[dict]:
    """mup's rows for one model: (width, module, t, l1, param, optimizer, lr, seed)."""
    c = config.run_config(param, width, seed)
    core = ablate.make_core(c, config.init, ds)
    idx = next(data.batch_stream(config.data_seed, len(ds.x_train), config.batch))  # the fixed batch
    rows, names = [], modules(config.depth)
    with np.errstate(all="ignore"):
        for t in range(1, config.steps + 1):
            _, dlogits = core.loss(ds.x_train, ds.y_train, idx)
            rows += [{"width": width, "module": m, "t": t, "l1": l1(h), "param": param, "optimizer": config.optimizer,
                      "lr": config.lr, "seed": seed} for m, h in zip(names, core.h)]
            if t < config.steps:
                core.backward_update(dlogits, keep_grads=False)
    return rows


def run(config: CoordConfig) -> list[dict]:
    ds = phase.cached_dataset(config)
    return [r for p in PARAMS for s in config.seed_list() for w in config.width_list()
            for r in record(config, p, w, s, ds)]


def slope(widths, values) -> float:
    """Least-squares slope of log2 l1 against log2 width (nan where an l1 is not finite and positive)."""
    y = np.asarray(values, float)
    if not np.all(np.isfinite(y) & (y > 0)):
        return float("nan")
    return float(np.polyfit(np.log2(widths), np.log2(y), 1)[0])


def slopes(rows: list[dict]) -> list[dict]:
    """Per (param, module, t): the slope per seed, its mean and sd over seeds."""
    out = []
    keys = dict.fromkeys((r["param"], r["module"], r["t"]) for r in rows)
    for p, m, t in keys:
        mine = [r for r in rows if (r["param"], r["module"], r["t"]) == (p, m, t)]
        per_seed = []
        for s in dict.fromkeys(r["seed"] for r in mine):
            pts = sorted((r["width"], r["l1"]) for r in mine if r["seed"] == s)
            per_seed.append(slope([w for w, _ in pts], [v for _, v in pts]))
        zero = all(r["l1"] == 0 for r in mine)  # every l1 exactly 0 (muP's zero readout at init): no slope
        out.append({"param": p, "module": m, "t": t, "slope": None if zero else float(np.mean(per_seed)),
                    "slope_sd": None if zero else float(np.std(per_seed)), "seeds": len(per_seed), "zero": zero})
    return out


def predicted(param: str, module: str, t: int, optimizer: str, mup_readout: str = "scaled") -> str:
    """What theory says of a slope: 'flat', 'shrinks' (-1/2) or 'grows'; '' where the check makes no claim;
    'zero': muP's zero readout gives logits exactly 0 at init, at every width (no slope)."""
    if param == "mup":
        if module == "logits" and t == 1:
            return "zero" if mup_readout == "zero" else "shrinks"
        return "flat"
    if module == "logits":
        return "flat" if t == 1 else "grows" if optimizer == "adam" else ""
    return "flat" if t == 1 else ""


def holds(s: dict, claim: str) -> bool | None:
    """Does the measured slope (its seed mean) agree with the claim? None where no claim."""
    if claim == "zero":
        return s["zero"]
    x = s["slope"]
    if not claim or not math.isfinite(x):
        return None if not claim else False
    return {"flat": abs(x) < FLAT, "shrinks": abs(x + 0.5) < FLAT, "grows": x > GROWS}[claim]


def verdict(rows: list[dict], optimizer: str, mup_readout: str = "scaled") -> dict:
    """Every slope with its claim and whether it holds; `agrees`: every claim holds."""
    table = [{**s, "predicted": (c := predicted(s["param"], s["module"], s["t"], optimizer, mup_readout)),
              "holds": holds(s, c)} for s in slopes(rows)]
    claims = [s["holds"] for s in table if s["holds"] is not None]
    return {"slopes": table, "claims": len(claims), "claims_held": sum(claims), "agrees": all(claims)}
