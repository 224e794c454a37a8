"""Data: lab 01's synthetic set, and the minibatch stream.

Synthetic set (lab 01): i.i.d. N(0, 1) features; the label is 1 when the sum of the first 10
features is >= 0 (linearly separable). With more than 2 classes the sum is cut at the quantiles
of its N(0, 10) distribution, so the classes stay equally likely.
"""
import statistics
from dataclasses import dataclass

import numpy as np

from initstudy import seeds

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
