"""Data: lab 01's synthetic set, the minibatch stream, and the names corpus (diagnose).

Synthetic set (lab 01): i.i.d. N(0, 1) features; the label is 1 when the sum of the first 10
features is >= 0 (linearly separable). With more than 2 classes the sum is cut at the quantiles
of its N(0, 10) distribution, so the classes stay equally likely.
"""
import statistics
from dataclasses import dataclass

import numpy as np

from initstudy import seeds
from initstudy.config import ConfigError

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
