"""What the width-transfer study records beside its numbers: its experiment's description, a cell's, a cell's row."""
from initstudy.record import keys, results
from initstudy.record.notes import g as _g
from initstudy.studies.phase import compute as phase

ASKS = (
    "**Lab 30, learning-rate transfer across width** (Yang et al. 2022, Tensor Programs V, Figure 1). Does "
    "the best learning rate of a narrow MLP stay best on a wide one? Under muP it should; under SP it "
    "shifts. Each command is a parent run (`transfer`) with one child per cell (param, width, log2 lr, "
    "seed) of a 2-hidden-layer ReLU MLP on MNIST-1D. A child holds `Training/loss` every step and its "
    "summary: `train_loss` (whole training set; absent where it diverged), `train_acc`, `test_acc`, "
    "`diverged`. The parent holds transfer.png (training loss against log2 lr, a curve per width, SP and "
    "muP side by side, each optimum marked), transfer.json (every cell), `optimum_log2_lr_<param>` with "
    "step = the width's index, `shift_steps_<param>` and `wider_better_fraction_<param>`.")


def note(group, child: bool, artifacts=None) -> str:
    """A cell's description: what it was and how it ended."""
    lines = [f"{r.param}, width {r.width}, lr 2^{r.log2_lr:g}, seed {r.seed}: "
             + (f"diverged{'' if r.steps_to_nan is None else f' at step {r.steps_to_nan}'}" if r.diverged else
                f"training loss {_g(r.train_loss)} (whole set), test acc {_g(r.test_acc)}") for r in group]
    how = (f"Read: `{keys.SERIES['loss']}` is the minibatch loss every step; train_loss (absent where the cell "
           "diverged), train_acc and test_acc are on the whole sets after training. The parent's transfer.png "
           "places this cell on its width's curve.")
    return "  \n".join(lines) + "\n\n" + how


def sweep_row(r) -> dict:
    """A cell's numbers as transfer.json and a resumed sweep read them (floats exact; train_loss None where it
    diverged), its weight seed and the loss series' sha256."""
    return {**{k: results.jsonable([v])[0] if isinstance(v, float) else v for k, v in r.summary().items()},
            "diverged": r.diverged, "weight_seed": r.weight_seed, "last_loss": results.jsonable([r.losses[-1]])[0],
            "loss_sha256": phase.loss_digest(r.losses)}
