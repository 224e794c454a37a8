"""What the trainability study records beside its numbers: its experiment's description, a cell's, a cell's row."""
from initstudy.record import keys, labs, results
from initstudy.record.notes import g as _g
from initstudy.studies.phase import compute as phase

ASKS = (
    "**The trainability phase diagram** (Schoenholz et al. 2017). Which (sigma_w^2, depth) of a random tanh "
    "network trains on MNIST-1D, against mean-field theory's bound depth <= 6 xi_c? Each command is a parent "
    "run (`phase`) with one child per cell (sigma_w^2, depth, seed). A child holds `Training/loss` every step and "
    "its summary: `train_acc` (whole training set), `test_acc`, `final_train_loss`, `steps_to_nan` where it "
    "diverged, and the theory `chi1`, `xi_c`, `six_xi_c`. The parent holds phase.png (train accuracy over the "
    "grid, the critical sigma_w^2 and the xi_c, 6 xi_c curves), phase.json (the grid), `critical_sigma_w2`, "
    "`agreement` (fraction of cells where trained, train_acc >= 0.3, equals depth <= 6 xi_c) and "
    "`deepest_trained_depth` with step = the sigma_w^2 index in the grid.")
VIEW = labs.View(  # the shared chart view
    "The trainability phase diagram: which weight variance and depth of a random tanh network train on "
    "MNIST-1D, against mean-field theory's bound?",
    (((keys.finding("train_acc"),), False), ((keys.SERIES["loss"],), True)))


def phase_line(r) -> str:
    """e.g. 'sigma_w2=1.75, depth 40, seed 0: trained (train acc 0.62), test acc 0.55; 6 xi_c = 2.56e+03: agrees'."""
    from initstudy.studies.phase import verdict as T

    did = T.trained(r.train_acc)
    what = f"diverged at step {r.steps_to_nan}" if r.steps_to_nan is not None else "trained" if did else "did not train"
    bound = "no bound (xi_c diverges)" if r.six_xi_c is None else f"6 xi_c = {_g(r.six_xi_c)}"
    said = T.predicted(r.depth, r.six_xi_c)
    return (f"sigma_w2={r.sigma_w2:g}, depth {r.depth}, seed {r.seed}: {what} (train acc {_g(r.train_acc)}, "
            f"rule >= {T.TRAINED_ACC:g}), test acc {_g(r.test_acc)}; chi1 {_g(r.chi1)}, {bound}: theory says "
            f"{'trainable' if said else 'untrainable'}, {'agrees' if did == said else 'DISAGREES'}")


def note(group, child: bool, artifacts=None) -> str:
    """A cell's description (it holds no artifact of its own: artifacts is not read)."""
    from initstudy.studies.phase import verdict as T

    how = (f"Read: `{keys.finding('train_acc')}` first (trained: >= {T.TRAINED_ACC:g}); `{keys.SERIES['loss']}` is "
           "the minibatch loss every step; the un-prefixed metrics are the cell's summary (train_acc on the whole training set, test_acc, final_train_loss) and its theory "
           "(chi1, xi_c, six_xi_c). The parent's phase.png places this cell in the diagram.")
    return "  \n".join(phase_line(r) for r in group) + "\n\n" + how


def sweep_row(r) -> dict:
    """A cell's numbers as phase.json and a resumed sweep read them (exact: floats as repr): its summary,
    weight seed and the loss series' sha256 (the series itself is the child's Training/loss)."""
    return {**{k: results.jsonable([v])[0] if isinstance(v, float) else v for k, v in r.summary().items()},
            "weight_seed": r.weight_seed, "last_loss": results.jsonable([r.losses[-1]])[0],
            "loss_sha256": phase.loss_digest(r.losses)}
