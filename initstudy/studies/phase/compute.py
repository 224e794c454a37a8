"""The trainability phase diagram (Schoenholz et al. 2017, "Deep Information Propagation"), one cell.

A cell is a random `activation` network of `depth` hidden layers of `width` at (sigma_w^2, sigma_b^2),
the mean-field init: W_ij ~ sigma_w^2 / n_in per entry (n Var(W) = sigma_w^2, every layer including
the input and readout ones), b_i ~ N(0, sigma_b^2). It is trained `steps` SGD steps on a dataset and
asked: does it train? Theory (S eq. 9): the correlation depth scale xi_c = -1 / ln chi_c(c*) bounds
the depth through which inputs stay distinguishable; the paper's experiments find networks trainable
while depth <= ~6 xi_c.

Pure: CellConfig + init in, CellResult out. The weights come from inits.sample_weights(init, ...)
with the gain that makes n Var(W) = sigma_w^2, so any (data-independent) init scheme plugs in; the
unit draws depend on (seed, depth) only, so the cells of one depth share them across sigma_w^2
(common random numbers: a row of the diagram differs by scale, not by draw).

Input scaling: each feature standardized with the training set's mean and standard deviation
(train statistics applied to train and test), so a first-layer pre-activation has q^1 = sigma_w^2
+ sigma_b^2, as the mean-field input of second moment 1 per feature.
"""
import hashlib
import math
from dataclasses import dataclass, field, fields

import numpy as np

from initstudy.core import cell, data, fastmlp, inits, nn, seeds, theory

from initstudy.core.config import ConfigError, apply_preset, at_least, check_preset, one_of, positive

DTYPES = ("float32", "float64")
INPUT_SCALING = "per-feature standardization with the training set's mean and std (train and test)"


@dataclass(frozen=True)
class CellTraining:
    """What every cell of one study shares: the network's width and activation, sigma_b^2, the data and
    the training. CellConfig adds the cell's place in the grid; PhaseConfig adds the grid."""
    width: int = 128
    activation: str = "tanh"
    sigma_b2: float = 0.05
    data: str = "mnist1d"
    data_seed: int = 42
    lr: float = 1e-3
    momentum: float = 0.9
    batch: int = 128
    steps: int = 1000
    dtype: str = "float32"

    def stream_seeds(self) -> dict:
        """The data's and the batch order's seeds: the same for every cell of a study."""
        return {"data_seed": self.data_seed, "data": data.source(self.data).seed(self.data_seed),
                "batches": seeds.derive_seed(self.data_seed, "batches")}


@dataclass(frozen=True)
class CellConfig(CellTraining):
    """One cell of the diagram; every field can be a grid axis (the sweep study `phase`)."""
    sigma_w2: float = 1.75
    depth: int = 10  # hidden layers of `width` (depth + 1 Linear layers with the readout)
    seed: int = 0

    def validate(self):
        data.source(self.data)  # one line listing the choices
        one_of("activation", self.activation, tuple(nn.ACTIVATIONS))
        one_of("dtype", self.dtype, DTYPES)
        for name in ("sigma_w2", "width", "batch", "steps", "lr"):
            positive(name, getattr(self, name))
        at_least("depth", self.depth, 1)
        at_least("sigma_b2", self.sigma_b2, 0)
        at_least("seed", self.seed, 0)
        at_least("data_seed", self.data_seed, 0)
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}")
        n_train = data.DATASETS[self.data].shape["n_train"]
        if self.batch > n_train:
            raise ConfigError(f"batch must be <= n_train ({n_train}), got {self.batch}")

    def weight_seed(self, init: str) -> int:
        """Per (seed, depth, init): the same unit draws for every sigma_w^2 of a depth."""
        return seeds.derive_seed(self.seed, f"phase/weights/depth={self.depth}/{init}")



@dataclass
class CellResult:
    init: str
    sigma_w2: float
    depth: int
    seed: int
    weight_seed: int
    losses: np.ndarray  # (steps,) minibatch loss before update s; NaN after a divergence
    final_train_loss: float  # cross-entropy on the whole training set after training (NaN if diverged)
    train_acc: float  # on the whole training set
    test_acc: float
    steps_to_nan: int | None
    chi1: float | None  # theory at (sigma_w^2, sigma_b^2): None where it does not exist
    xi_c: float | None
    six_xi_c: float | None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"final_train_loss": self.final_train_loss, "train_acc": self.train_acc, "test_acc": self.test_acc,
                "steps_to_nan": self.steps_to_nan, "chi1": self.chi1, "xi_c": self.xi_c, "six_xi_c": self.six_xi_c}


def loss_digest(losses: np.ndarray) -> str:
    """sha256 of the loss series as float64 bytes: equal digests, equal series, bit for bit."""
    return hashlib.sha256(np.ascontiguousarray(losses, dtype=np.float64).tobytes()).hexdigest()


def check_init(init: str):
    one_of("init", init, tuple(inits.INITS))
    if inits.INITS[init].needs_data:  # rescaled on a batch (lsuv): no mean-field sigma_w^2 to set
        raise ConfigError(f"init={init} depends on the data; the phase diagram needs a mean-field init "
                          f"(n Var(W) = sigma_w^2): one of {', '.join(i for i, x in inits.INITS.items() if not x.needs_data)}")


def theory_of(config: CellConfig) -> dict:
    """chi1, xi_c and 6 xi_c at (sigma_w^2, sigma_b^2) (S eqs. 5, 9); None where undefined
    (xi_c diverges at chi1 = 1: no depth bound)."""
    d = theory.depth_scales(config.activation, config.sigma_w2, config.sigma_b2)
    xi = d.get("xi_c")
    return {"chi1": d.get("chi1"), "xi_c": xi, "six_xi_c": None if xi is None else 6 * xi}


def gain_for(init: str, fan_in: int, fan_out: int, sigma_w2: float) -> float:
    """The gain with fan_in * Var(W) = sigma_w^2 under the scheme `init` (fan_out: Glorot's depend on it)."""
    return math.sqrt(sigma_w2 / (fan_in * inits.weight_variance(init, fan_in, fan_out=fan_out)))


def build_model(config: CellConfig, init: str, input_dim: int, classes: int) -> nn.MLP:
    """depth hidden Linear+activation blocks and a Linear readout; W via sample_weights, b ~ N(0, sigma_b^2)."""
    rng = seeds.rng(config.weight_seed(init))
    dims = [input_dim] + [config.width] * config.depth + [classes]
    dtype, act = np.dtype(config.dtype), nn.ACTIVATIONS[config.activation]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        w = inits.sample_weights(init, rng, n_in, n_out, gain_for(init, n_in, n_out, config.sigma_w2))
        b = rng.standard_normal(n_out) * math.sqrt(config.sigma_b2)
        layers.append(nn.Linear(w.astype(dtype), b.astype(dtype)))
        if i < config.depth:
            layers.append(act())
    return nn.MLP(layers)


def dataset(config: CellTraining) -> data.Dataset:
    """The set, each feature standardized with the training set's statistics (INPUT_SCALING)."""
    src = data.source(config.data)
    xtr, ytr, xte, yte = src.arrays(config.data_seed, src.shape)
    mean, std = xtr.mean(axis=0), xtr.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant feature stays 0
    scale = lambda x: ((x - mean) / std).astype(config.dtype)  # noqa: E731
    return data.Dataset(scale(xtr), ytr.astype(np.int64), scale(xte), yte.astype(np.int64))


_datasets = {}  # (data, data_seed, dtype) -> Dataset: a worker builds each set once, not once per cell


def cached_dataset(config: CellTraining) -> data.Dataset:
    key = (config.data, config.data_seed, config.dtype)
    if key not in _datasets:
        _datasets[key] = dataset(config)
    return _datasets[key]


def train_cell(config: CellConfig, init: str = "xavier", ds: data.Dataset | None = None) -> CellResult:
    """Train one cell with the fast float core (bit-identical to nn.py's), evaluate on the whole sets."""
    check_init(init)
    ds = ds or cached_dataset(config)
    core = fastmlp.FastMLP(build_model(config, init, ds.x_train.shape[1], int(ds.y_train.max()) + 1),
                           config.lr, config.momentum, config.batch)
    r = cell.train(core, ds, config.data_seed, config.batch, config.steps)
    trained = r.steps_to_nan is None and np.isfinite(r.train_loss)
    return CellResult(init=init, sigma_w2=config.sigma_w2, depth=config.depth, seed=config.seed,
                      weight_seed=config.weight_seed(init), losses=r.losses,
                      final_train_loss=r.train_loss if trained else float("nan"), train_acc=r.train_acc,
                      test_acc=r.test_acc, steps_to_nan=r.steps_to_nan, **theory_of(config))


# --- the study: a grid of cells ------------------------------------------------------------------

PRESETS = {  # a preset sets these fields where they are left at their defaults
    "small": dict(sigma_w2s="1.0,1.75,4.0", depths="2,10,40", width=64, steps=300, lr=0.01),
}
CELL_FIELDS = tuple(f.name for f in fields(CellTraining))


def parse_grid(name: str, raw: str, kind) -> list:
    """"a,b,c" or (sigma_w2s) "start:stop:step", stop included; non-empty, strictly increasing."""
    text = str(raw).strip()
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0:
                raise ConfigError(f"{name} step must be > 0, got {step!r}")
            n = int(math.floor((stop - start) / step + 1e-9)) + 1
            values = [float(f"{start + i * step:.12g}") for i in range(max(n, 0))]
        else:
            values = [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{name} must be a comma list of {'numbers' if kind is float else 'integers'}"
                          f"{' or start:stop:step' if kind is float else ''}; got {raw!r}") from None
    if not values:
        raise ConfigError(f"{name} lists no value; got {raw!r}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ConfigError(f"{name} must be strictly increasing; got {raw!r}")
    return values


@dataclass(frozen=True)
class PhaseConfig(CellTraining):
    """The `phase` entry point: the grid (sigma_w2s x depths x seeds) and what every cell shares."""
    preset: str = ""  # "" (the study below) or a name in PRESETS
    sigma_w2s: str = "1.0:4.0:0.25"
    depths: str = "10,20,30,40,60,80,100"
    seeds: str = "0"
    init: str = "xavier"  # N(0, 1/n) unit draws, scaled to n Var(W) = sigma_w^2

    def __post_init__(self):
        apply_preset(self, PRESETS)

    def validate(self):
        check_preset(self.preset, PRESETS)
        sw = parse_grid("sigma_w2s", self.sigma_w2s, float)
        if sw[0] <= 0:
            raise ConfigError(f"sigma_w2s must be > 0; got {sw[0]!r} in {self.sigma_w2s!r}")
        if parse_grid("depths", self.depths, int)[0] < 1:
            raise ConfigError(f"depths must be >= 1; got {self.depths!r}")
        if parse_grid("seeds", self.seeds, int)[0] < 0:
            raise ConfigError(f"seeds must be >= 0; got {self.seeds!r}")
        check_init(self.init)
        self.cell(sw[0], 1, 0)  # every shared field, validated as a cell validates it

    def grid(self) -> dict:
        return {"sigma_w2": parse_grid("sigma_w2s", self.sigma_w2s, float),
                "depth": parse_grid("depths", self.depths, int), "seed": parse_grid("seeds", self.seeds, int)}

    def shared(self) -> dict:
        return {k: getattr(self, k) for k in CELL_FIELDS}

    def cell(self, sigma_w2: float, depth: int, seed: int) -> CellConfig:
        c = CellConfig(sigma_w2=sigma_w2, depth=depth, seed=seed, **self.shared())
        c.validate()
        return c


def theory_curve(config: PhaseConfig, points: int = 241) -> dict:
    """xi_c over a fine sigma_w^2 grid spanning the study's, for the figure (None where undefined)."""
    sw = config.grid()["sigma_w2"]
    lo, hi = sw[0], sw[-1]
    xs = [lo + (hi - lo) * i / (points - 1) for i in range(points)] if hi > lo else [lo]
    xis = [theory.depth_scales(config.activation, s, config.sigma_b2).get("xi_c") for s in xs]
    return {"sigma_w2": xs, "xi_c": xis}
