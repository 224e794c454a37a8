"""A run's description (`mlflow.note.content`): one line on what happened, then how to read the run.

Pure: results in, markdown text out. MLflow 3.17 keeps a chart layout on the server only for the
experiment's shared views, not for a run's page, so the description points at the PNG that overlays
measured and theory.
"""
import numpy as np

from initstudy.record import keys


def _g(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def ablate_line(r) -> str:
    """e.g. 'uniform: diverged at step 2, loss 1.1e+06 → 7.6e+33 → NaN'."""
    if r.steps_to_nan is not None:
        finite = [_g(v) for v in r.losses[: r.steps_to_nan]]
        path = " → ".join(finite[:3] + (["…"] if len(finite) > 3 else []) + ["NaN"])
        return f"{r.init}: diverged at step {r.steps_to_nan}, loss {path}"
    what = f"flatlined from step {r.flatline_step}" if r.outcome == "flatlined" else "trained"
    return (f"{r.init}: {what}, loss {_g(r.initial_loss)} → {_g(r.final_loss)} (ln classes = "
            f"{_g(r.expected_initial_loss)}), val acc {_g(r.final_val_acc)}")


def ablate(group, child: bool) -> str:
    lines = [ablate_line(r) for r in group]
    how = (f"Read: *Model metrics* opens on `{keys.SERIES['loss']}` and the validation curves; the lowercase "
           f"sections are the per-layer statistics (`<stat>/Lnn` over training, `{keys.profile('<stat>', 'init')}"
           f"|end` across depth). loss_curves.png overlays the inits"
           + ("; diagnostics.png shows this init's layers." if child else "; each child holds one init."))
    return "  \n".join(lines) + "\n\n" + how


def walk_line(r) -> str:
    sat = np.flatnonzero(r.saturated)
    last = len(r.var) - 1
    if len(sat):
        before = r.var[sat[0] - 1]
        return f"{r.init}: overflows at layer {sat[0]} (variance {_g(before)} at layer {sat[0] - 1}; theory {_g(r.var_theory[sat[0] - 1])})"
    return (f"{r.init}: variance {_g(r.var[0])} at the input → {_g(r.var[-1])} at layer {last} "
            f"(theory {_g(r.var_theory[-1])})")


def walk(group, child: bool) -> str:
    how = (f"Read: `{keys.SERIES['var']}` (measured) and `{keys.SERIES['var_theory']}` (closed form), step = layer "
           "index; use a log scale. variance.png overlays measured and theory for "
           + ("this init." if child else "every init; each child holds one."))
    return "  \n".join(walk_line(r) for r in group) + "\n\n" + how


def diagnose(r, config) -> str:
    if r.steps_to_nan is not None:
        head = f"{r.init}: diverged at step {r.steps_to_nan}"
    else:
        head = (f"{r.init} x gain {config.gain:.3g}, norm {config.norm}: initial loss {_g(r.initial_loss)} (uniform "
                f"guess {_g(r.expected_initial_loss)}) → train {_g(r.train_loss)}, dev {_g(r.dev_loss)} after "
                f"{config.steps} steps")
    how = (f"Read: `{keys.SERIES['loss']}` first, then the per-layer statistics (`<stat>/Lnn`, L00 the embedding); "
           "activations.png, gradients.png, saturation_map.png and update_ratio.png are the notebook's plots.")
    return head + "\n\n" + how


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


def phase(group, child: bool) -> str:
    how = (f"Read: `{keys.SERIES['loss']}` is the minibatch loss every step; the un-prefixed metrics are the cell's "
           "summary (train_acc on the whole training set, test_acc, final_train_loss) and its theory "
           "(chi1, xi_c, six_xi_c). The parent's phase.png places this cell in the diagram.")
    return "  \n".join(phase_line(r) for r in group) + "\n\n" + how
