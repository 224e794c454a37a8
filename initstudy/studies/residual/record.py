"""What the residual study records beside its numbers: its experiment's description, a cell's, a cell's row."""
from initstudy.record import keys, results
from initstudy.record.notes import g as _g
from initstudy.studies.residual import compute as residual

ASKS = (
    "**Residual networks at depth** (issue 26, lab 40). Which networks train at depth 10-100 on MNIST-1D "
    "without normalization: a resnet whose branches are unscaled (`none`), scaled by 1/sqrt(L) (`sqrt_depth`), "
    "gated by a scalar starting at 0 (`zero`, SkipInit) or Fixup-initialised (`fixup`), against a plain MLP with "
    "and without BatchNorm of as many weight layers? Each command is a parent run (`residual`) with one child per "
    "cell (model, depth, seed, lr). A child holds `Training/loss` every step and `train_acc`, `test_acc` (whole "
    "sets) and `steps_to_nan` where it diverged. The parent holds residual.json (every cell, each model's best "
    "lr, the claims) and residual.png (accuracy against depth, a line per model, a band over seeds).")


def line(r, config) -> str:
    what = f"diverged at step {r.steps_to_nan}" if r.diverged else "trained" if r.train_acc >= residual.TRAINED_ACC \
        else "did not train"
    return (f"{config.model}, depth {config.depth}, seed {config.seed}, lr {config.lr:g}: {what} (train acc "
            f"{_g(r.train_acc)}, test acc {_g(r.test_acc)})")


def note(group, child: bool, artifacts=None) -> str:
    how = (f"Read: `{keys.SERIES['loss']}` is the minibatch loss every step; train_acc and test_acc are on the whole "
           "sets after training. The parent's residual.png places this cell among the others.")
    return "  \n".join(f"{r.init}: train acc {_g(r.train_acc)}, test acc {_g(r.test_acc)}" for r in group) + "\n\n" + how


def sweep_row(r) -> dict:
    """A cell's numbers as residual.json reads them (exact: floats as repr)."""
    return {"train_acc": r.train_acc, "test_acc": r.test_acc, "steps_to_nan": r.steps_to_nan, "diverged": r.diverged,
            "weight_seed": r.weight_seed, "last_loss": results.jsonable([r.losses[-1]])[0],
            "loss_sha256": residual.loss_digest(r.losses)}
