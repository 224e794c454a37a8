"""What the variance walk records: its experiment's description, a run's, results.json (and its series read
back), a sweep child's row."""
import numpy as np

from initstudy.record import keys, labs, results
from initstudy.record.notes import g as _g, held
from initstudy.record.results import from_json, jsonable, lsuv_block
from initstudy.studies import STUDIES

ASKS = (
    "**Lab 00, the variance walk.** Does the activation variance stay put, explode or vanish as a batch "
    "goes forward through `depth` random layers under each init (uniform, Xavier, Kaiming), and does the "
    "mean-field q-map predict it? Each command is a parent run (`walk`) with one child per init; a child's "
    f"`{keys.SERIES['var']}` is the measured per-layer variance with step = layer index, `{keys.SERIES['var_theory']}` the "
    f"closed form from the input alone, `{keys.SERIES['var_pred']}` the one-step prediction from the previous "
    "layer; `final_layer_variance` is the last layer's. variance.png overlays measured and theory on a "
    "log scale.")
VIEW = labs.View(  # the shared chart view: headline curves first, in log y
    "Lab 00, the variance walk: does the activation variance of a deep random network stay put, explode or "
    "vanish under each init, as theory predicts?",
    (((keys.SERIES["var"], keys.SERIES["var_theory"]), True), ((keys.SERIES["var_pred"], keys.SERIES["var"]), True),
     ((keys.SERIES["var_theory"],), True)), labs.SIGNAL)  # var_theory named, so MLflow draws no linear chart of its own
SWEEP_MEDIAN = "final_layer_variance"  # its sweeps' view: sweep.png's first panel


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


# --- the results document

def walk_json(config: dict, results) -> dict:
    """results.json of lab 00: per init, per layer. Lab 00's keys hold what they always held; the
    signal-propagation quantities (walk.Signal) and their config fields go in a "signal" block beside."""
    from initstudy.studies.walk.compute import ARCH_FIELDS, SIGNAL_FIELDS

    out = {"experiment": STUDIES["walk"].experiment, "config": {
        k: v for k, v in config.items() if k not in SIGNAL_FIELDS and k not in ARCH_FIELDS}, "inits": {}}
    if any(config.get(k, v) != v for k, v in ARCH_FIELDS.items()):  # a resnet or BN walk (issue 26)
        out["residual"] = {k: config.get(k, v) for k, v in ARCH_FIELDS.items()}
    for r in results:
        var, pred, theory = jsonable(r.var), jsonable(r.var_pred), jsonable(r.var_theory)
        out["inits"][r.init] = {
            "weight_seed": r.weight_seed,
            "sigma_w2": r.sigma2,
            "layers": [
                {"layer_idx": l, "var_empirical": var[l], "var_theoretical_prediction": pred[l],
                 "var_closed_form": theory[l], "saturated": bool(r.saturated[l])}
                for l in range(len(var))
            ],
            **lsuv_block(r),
        }
    signals = {r.init: r.signal for r in results if getattr(r, "signal", None) is not None}
    if signals:
        out["signal"] = {"config": {k: config[k] for k in SIGNAL_FIELDS if k in config},
                         "inits": {init: signal_json(s) for init, s in signals.items()}}
    return out


def signal_json(s) -> dict:
    series = {k: jsonable(v) for k, v in s.series().items()}
    return {
        "sigma_w2": s.sigma_w2,
        "bias_seed": s.bias_seed,
        "phase": s.scales["phase"],
        "summary": {k: jsonable([v])[0] for k, v in s.summary().items()},
        "jacobian": {"method": s.jacobian_method, "singular_values": jsonable(s.jacobian_sv)},
        "layers": [{"layer_idx": l, **{k: v[l] for k, v in series.items()}} for l in range(len(s.corr))],
    }


SIGNAL_SERIES = ("grad_var", "grad_var_theory", "corr", "corr_theory", "mean")
SIGNAL_SERIES_LATER = ("mean",)  # added after the block: a document recorded before it has none


def signal_series(doc: dict) -> dict:
    """{'<init>/<series>': array} of the "signal" block (empty for a document without one)."""
    out = {}
    for init, block in doc.get("signal", {}).get("inits", {}).items():
        for key in SIGNAL_SERIES:
            if key in SIGNAL_SERIES_LATER and key not in block["layers"][0]:
                continue
            out[f"{init}/{key}"] = from_json([l[key] for l in block["layers"]])
        out[f"{init}/jacobian_sv"] = from_json(block["jacobian"]["singular_values"])
    return out


WALK_SERIES = {"var_empirical": "var", "var_theoretical_prediction": "var_pred", "var_closed_form": "var_theory",
               "saturated": "saturated"}


def walk_series(doc: dict) -> dict:
    """{'<init>/<series>': array} from a results.json document (its signal block too), for comparison."""
    out = {}
    for init, block in doc["inits"].items():
        for key, name in WALK_SERIES.items():
            out[f"{init}/{name}"] = from_json([float(l[key]) if l[key] is not None else None for l in block["layers"]])
    return {**out, **signal_series(doc)}
