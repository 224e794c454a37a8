"""Data: the classification sets by name (DATASETS), the minibatch stream, and the names corpus (diagnose).

Synthetic set (lab 01): i.i.d. N(0, 1) features; the label is 1 when the sum of the first 10
features is >= 0 (linearly separable). With more than 2 classes the sum is cut at the quantiles
of its N(0, 10) distribution, so the classes stay equally likely.

MNIST-1D (Greydanus & Kobak): built here by the PyPI package `mnist1d`, make_dataset(get_dataset_args())
with the package's arguments, except `seed` = our data_seed (42 by default, the package's own default:
the paper's set). Never its get_dataset, which downloads. Its train/test split is kept: val = its test.

digits: scikit-learn's bundled 8x8 digits (the 1797 images load_digits returns, read from the file it
reads, without importing scikit-learn, which takes seconds). Pixels / 16 -> [0, 1]. Fixed split, no seed: the first
1347 in file order train, the last 450 (25 %, train_test_split's default fraction) val.
"""
import hashlib
import importlib.metadata
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from initstudy.core import seeds
from initstudy.core.config import ConfigError

SIGNAL_FEATURES = 10


@dataclass
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def synthetic(data_seed: int, n_train=1000, n_val=200, dim=256, classes=2, dtype="float32") -> Dataset:
    rng = seeds.rng(seeds.derive_seed(data_seed, "data"))
    x = rng.standard_normal((n_train + n_val, dim))
    s = x[:, :min(SIGNAL_FEATURES, dim)].sum(axis=1) / np.sqrt(min(SIGNAL_FEATURES, dim))
    cuts = [statistics.NormalDist().inv_cdf(k / classes) for k in range(1, classes)]
    y = np.searchsorted(cuts, s, side="right")  # classes=2: cut at 0, label 1 iff sum >= 0
    x = x.astype(dtype)
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


# --- the sets by name: a new dataset is one entry of DATASETS -----------------------------------------

SHAPE_KEYS = ("n_train", "n_val", "input_dim", "classes")


@dataclass(frozen=True)
class Source:
    about: str  # one line: what it is (docs, refusals)
    shape: dict  # SHAPE_KEYS -> the set's size; fixed=False: only defaults, the generator takes any
    fixed: bool
    arrays: Callable  # (data_seed, shape) -> (x_train, y_train, x_val, y_val)
    generator: Callable  # (data_seed, shape) -> identity and generator arguments, for the manifest
    seed: Callable  # data_seed -> the seed its generator gets (None: the set does not depend on data_seed)


def _synthetic_arrays(data_seed, shape):
    ds = synthetic(data_seed, shape["n_train"], shape["n_val"], shape["input_dim"], shape["classes"], "float64")
    return ds.x_train, ds.y_train, ds.x_val, ds.y_val


def _synthetic_generator(data_seed, shape):
    return {"generator": "initstudy.data.synthetic", "args": {"data_seed": data_seed, **shape}}


def mnist1d_args(data_seed: int) -> dict:
    """The package's get_dataset_args, seed = data_seed; url dropped (get_dataset's download, unused)."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.pop("url")
    return {**args, "seed": int(data_seed)}


def mnist1d_arrays(data_seed, shape=None):
    """make_dataset(get_dataset_args()) with seed = data_seed. It seeds numpy's and Python's global
    random state (set_seed); both are put back as they were."""
    import random

    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    saved = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(ObjectView(mnist1d_args(data_seed)))
    finally:
        np.random.set_state(saved[0]), random.setstate(saved[1])
    return d["x"], d["y"], d["x_test"], d["y_test"]


def _mnist1d_generator(data_seed, shape):
    return {"generator": "mnist1d.data.make_dataset(get_dataset_args()), seed = data_seed",
            "package": "mnist1d", "version": importlib.metadata.version("mnist1d"), "args": mnist1d_args(data_seed),
            "split": "the package's: first 80 % train, last 20 % test (= val here)"}


DIGITS_FILE = "datasets/data/digits.csv.gz"  # inside the installed scikit-learn: what load_digits reads
DIGITS_TRAIN = 1347


def _sklearn_folder():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise ConfigError("data=digits needs scikit-learn (pip install scikit-learn)")
    return Path(spec.origin).parent


def digits_arrays(data_seed=None, shape=None):
    """load_digits's 1797 images (64 pixels 0..16, last column the label), pixels / 16; the first
    1347 train, the last 450 val, in the file's order."""
    table = np.loadtxt(_sklearn_folder() / DIGITS_FILE, delimiter=",")
    x, y = table[:, :-1] / 16.0, table[:, -1].astype(np.int64)
    return x[:DIGITS_TRAIN], y[:DIGITS_TRAIN], x[DIGITS_TRAIN:], y[DIGITS_TRAIN:]


def _digits_generator(data_seed, shape):
    return {"generator": "sklearn.datasets.load_digits (its bundled " + DIGITS_FILE + "), pixels / 16",
            "package": "scikit-learn", "version": importlib.metadata.version("scikit-learn"),
            "split": f"fixed, file order: first {DIGITS_TRAIN} train, last {1797 - DIGITS_TRAIN} val; data_seed unused"}


DATASETS = {
    "synthetic": Source("lab 01's N(0, 1) features, label from the sum of the first 10",
                        dict(n_train=1000, n_val=200, input_dim=256, classes=2), False,
                        _synthetic_arrays, _synthetic_generator, lambda s: seeds.derive_seed(s, "data")),
    "mnist1d": Source("MNIST-1D (Greydanus & Kobak), generated locally by the mnist1d package",
                      dict(n_train=4000, n_val=1000, input_dim=40, classes=10), True,
                      mnist1d_arrays, _mnist1d_generator, int),
    "digits": Source("scikit-learn's bundled 8x8 digits", dict(n_train=1347, n_val=450, input_dim=64, classes=10),
                     True, digits_arrays, _digits_generator, lambda s: None),
}


def source(name: str) -> Source:
    if name not in DATASETS:
        raise ConfigError(f"data must be one of {', '.join(DATASETS)}; got {name!r}")
    return DATASETS[name]


def load(name: str, data_seed: int, shape: dict, dtype="float32") -> Dataset:
    """The set `name` (shape: SHAPE_KEYS -> size, as the config resolved it), features in dtype."""
    # cast after the split (synthetic casts before: the same bits, a cast is element by element)
    xtr, ytr, xv, yv = source(name).arrays(data_seed, shape)
    return Dataset(xtr.astype(dtype), ytr.astype(np.int64), xv.astype(dtype), yv.astype(np.int64))


def label(name: str, data_seed: int) -> str:
    """The name the dataset is logged under in MLflow (synthetic: as before, synthetic-<data_seed>)."""
    return name if source(name).seed(data_seed) is None else f"{name}-{data_seed}"


def sha256(ds: Dataset) -> str:
    """Of the arrays as trained on (train then val, features then labels): what a re-run checks first."""
    h = hashlib.sha256()
    for a in (ds.x_train, ds.y_train, ds.x_val, ds.y_val):
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def identity(name: str, data_seed: int, shape: dict, ds: Dataset) -> dict:
    """The manifest's data block: name, shape, generator and its arguments, the arrays' sha256."""
    src = source(name)
    return {"name": name, "about": src.about, **shape, **src.generator(data_seed, shape),
            "seed": src.seed(data_seed), "sha256": sha256(ds)}


def batch_stream(data_seed: int, n: int, batch: int):
    """Minibatch indices, drawn with replacement; the same sequence for every init."""
    rng = seeds.rng(seeds.derive_seed(data_seed, "batches"))
    while True:
        yield rng.integers(0, n, size=batch)


# --- the names corpus (the diagnose study) ---------------------------------------------------------

CENSUS_FILES = ("dist.male.first", "dist.female.first")  # inside the installed `names` package
END = "."  # start/end token: index 0, never part of a word
MIN_WORDS = 10  # so that dev and test hold a word each
# words_file's value for the census lists: not empty, because `mlflow run` logs an empty string
# parameter as "''" and the run could then not record the value it used
BUILTIN_CORPUS = "builtin:names"


def census_names() -> list[str]:
    """The US-census first names shipped with the PyPI package `names` (first column of each list),
    lower-cased, letters only, de-duplicated, sorted."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("names")
    if spec is None or spec.origin is None:
        raise ConfigError("the default corpus needs the package `names` (pip install names==0.3.0), "
                          "or give words_file")
    folder = Path(spec.origin).parent
    words = set()
    for name in CENSUS_FILES:
        for line in (folder / name).read_text().splitlines():
            word = line.split()[0].lower() if line.strip() else ""
            if word.isascii() and word.isalpha():
                words.add(word)
    return sorted(words)


def read_words(path: str) -> list[str]:
    """One word per line, as written (blank lines skipped); a clear ConfigError for a file that is
    missing, unreadable, empty or holds the end token."""
    from pathlib import Path

    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"words_file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"words_file {path!r} cannot be read as text: {getattr(e, 'strerror', None) or e}") from None
    words = [w.strip() for w in text.splitlines() if w.strip()]
    if not words:
        raise ConfigError(f"words_file {path!r} holds no words (one word per line expected)")
    if len(words) < MIN_WORDS:
        raise ConfigError(f"words_file {path!r} holds {len(words)} words; the 80/10/10 split needs at least {MIN_WORDS}")
    for i, w in enumerate(words, start=1):
        if END in w or any(c.isspace() for c in w):
            raise ConfigError(f"words_file {path!r} word {i} ({w[:20]!r}) has a space or {END!r}, "
                              f"the start/end token; one word per line, no {END!r}")
    return words


def names_corpus(words_file: str = BUILTIN_CORPUS) -> list[str]:
    return census_names() if words_file in ("", BUILTIN_CORPUS) else read_words(words_file)


@dataclass
class CharData:
    """Next-character examples: X (n, block_size) context indices, Y (n,) the next index."""
    itos: list  # index -> character; itos[0] is END
    x_train: np.ndarray
    y_train: np.ndarray
    x_dev: np.ndarray
    y_dev: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_words: tuple  # words in train, dev, test

    @property
    def vocab(self) -> int:
        return len(self.itos)


def char_examples(words, stoi, block_size):
    """makemore's build_dataset: each word plus END, every prefix's last block_size characters
    (padded with END) -> the next character."""
    xs, ys = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + END:
            ix = stoi[ch]
            xs.append(context)
            ys.append(ix)
            context = context[1:] + [ix]
    return np.array(xs, np.int64).reshape(-1, block_size), np.array(ys, np.int64)


def char_splits(words, block_size: int, split_seed: int) -> CharData:
    """Shuffle the words with split_seed, cut 80/10/10 into train/dev/test (as the notebook does),
    vocabulary from the whole corpus."""
    chars = sorted(set("".join(words)))
    itos = [END] + chars
    stoi = {c: i for i, c in enumerate(itos)}
    order = seeds.rng(split_seed).permutation(len(words))
    shuffled = [words[i] for i in order]
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    parts = [shuffled[:n1], shuffled[n1:n2], shuffled[n2:]]
    (xtr, ytr), (xdv, ydv), (xte, yte) = (char_examples(p, stoi, block_size) for p in parts)
    return CharData(itos, xtr, ytr, xdv, ydv, xte, yte, tuple(len(p) for p in parts))
