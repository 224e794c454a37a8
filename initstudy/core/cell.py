"""One grid cell's training loop, shared by the phase and transfer studies: a fast core trained on the
batch stream of data_seed until its steps end or its minibatch loss stops being finite, then evaluated on
the whole training and test sets. Pure: a core and a dataset in, numbers out."""
from dataclasses import dataclass

import numpy as np

from initstudy.core import data


@dataclass
class Trained:
    losses: np.ndarray  # (steps,) minibatch loss before update s; NaN after a stop
    steps_to_nan: int | None  # the first step whose loss was not finite (no update made there), or None
    train_loss: float  # cross-entropy on the whole training set after training (may be inf or NaN)
    train_acc: float
    test_acc: float


def train(core, ds: data.Dataset, data_seed: int, batch: int, steps: int) -> Trained:
    """core: a fastmlp.FastMLP (loss, backward_update, evaluate); its grads are not kept (nobody reads them)."""
    batches = data.batch_stream(data_seed, len(ds.x_train), batch)
    losses = np.full(steps, np.nan)
    steps_to_nan = None
    with np.errstate(all="ignore"):  # overflow is an outcome, recorded
        for s in range(steps):
            loss, dlogits = core.loss(ds.x_train, ds.y_train, next(batches))
            losses[s] = loss
            if not np.isfinite(loss):
                steps_to_nan = s
                break
            core.backward_update(dlogits, keep_grads=False)
        train_loss, train_acc = core.evaluate(ds.x_train, ds.y_train)
        _, test_acc = core.evaluate(ds.x_val, ds.y_val)
    return Trained(losses, steps_to_nan, train_loss, train_acc, test_acc)
