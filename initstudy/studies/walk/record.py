"""What the variance walk records beside its numbers: its experiment's description, a run's, a sweep child's row."""
import numpy as np

from initstudy.record import keys, results
from initstudy.record.notes import g as _g, held

ASKS = (
    "**Lab 00, the variance walk.** Does the activation variance stay put, explode or vanish as a batch "
    "goes forward through `depth` random layers under each init (uniform, Xavier, Kaiming), and does the "
    "mean-field q-map predict it? Each command is a parent run (`walk`) with one child per init; a child's "
    f"`{keys.SERIES['var']}` is the measured per-layer variance with step = layer index, `{keys.SERIES['var_theory']}` the "
    f"closed form from the input alone, `{keys.SERIES['var_pred']}` the one-step prediction from the previous "
    "layer; `final_layer_variance` is the last layer's. variance.png overlays measured and theory on a "
    "log scale.")


def walk_line(r) -> str:
    sat = np.flatnonzero(r.saturated)
    last = len(r.var) - 1
    if len(sat):
        before = r.var[sat[0] - 1]
        return f"{r.init}: overflows at layer {sat[0]} (variance {_g(before)} at layer {sat[0] - 1}; theory {_g(r.var_theory[sat[0] - 1])})"
    return (f"{r.init}: variance {_g(r.var[0])} at the input → {_g(r.var[-1])} at layer {last} "
            f"(theory {_g(r.var_theory[-1])})")


def note(group, child: bool, artifacts=None) -> str:
    """artifacts: the names a sweep's child holds (None: the run's own figures are there)."""
    how = (f"Read: `{keys.SERIES['var']}` (measured) and `{keys.SERIES['var_theory']}` (closed form), step = layer "
           "index; use a log scale. " + (held(artifacts) if artifacts is not None else "variance.png overlays "
           "measured and theory for " + ("this init." if child else
                                         f"every init; each child holds one; `{keys.FINDING}` holds each init's "
                                         "growth per layer and final variance.")))
    return "  \n".join(walk_line(r) for r in group) + "\n\n" + how


def sweep_row(r) -> dict:
    sat = np.flatnonzero(r.saturated)
    return {"final_layer_variance": results.jsonable([r.var[-1]])[0],
            "saturated_from_layer": int(sat[0]) if len(sat) else None}


def lab_summary(group) -> dict:
    """The manifest's results_summary: <init>_final_layer_variance (the lab's keys, one per init)."""
    return {f"{r.init}_final_layer_variance": results.jsonable([r.var[-1]])[0] for r in group}
