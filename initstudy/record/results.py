"""The JSON forms of results (results.json, losses.json) and the series they hold.

JSON has no inf or nan: a non-finite number is written as null, and the `saturated` flag (walk)
or `steps_to_nan` (ablate) says why. Floats are written with repr, so they read back bit for bit.
"""
import json
import math

import numpy as np

from initstudy.studies import STUDIES



def jsonable(values) -> list:
    return [None if v is None or not math.isfinite(v) else float(v) for v in np.asarray(values, float).tolist()]


def from_json(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, allow_nan=False) + "\n"


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
            **_lsuv_block(r),
        }
    signals = {r.init: r.signal for r in results if getattr(r, "signal", None) is not None}
    if signals:
        out["signal"] = {"config": {k: config[k] for k in SIGNAL_FIELDS if k in config},
                         "inits": {init: signal_json(s) for init, s in signals.items()}}
    return out


def _lsuv_block(r) -> dict:
    """A data-dependent init's record ({"lsuv": ...}; reproduce compares it like every scalar), else nothing."""
    report = getattr(r, "lsuv", None)
    return {} if report is None else {"lsuv": report.as_dict()}


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


def scaling_json(config: dict, r) -> dict:
    """results.json of lab 02 (scaling.ScalingResult): the dot products per width and scale, the
    depth walks per activation and c, the finite-width log-ratios per width and seed."""
    from initstudy.studies.scaling import compute as scaling

    return {
        "experiment": STUDIES["scaling"].experiment,
        "config": config,
        "dot": {"widths": [int(n) for n in r.widths], "draws": config.get("draws"), "scales": {
            k: {"k": label, "var": jsonable(r.dot_var[k]), "theory": jsonable(r.dot_theory[k]),
                "se": jsonable(r.dot_se[k])} for k, (label, _) in scaling.SCALES.items()}},
        "depth": {scaling.depth_key(a, c): {"activation": a, "c": scaling.DEPTH_CS[c], "var": jsonable(r.depth_var[(a, c)]),
                                            "theory": jsonable(r.depth_theory[(a, c)])} for a, c in r.depth_var},
        "finite_width": {"activation": scaling.FINITE_ACTIVATION, "widths": [int(n) for n in r.fw_widths],
                         "sd": [jsonable(row) for row in r.fw_sd],
                         "log_ratio": [[jsonable(s) for s in w] for w in r.fw_log_ratio]},
        "summary": {k: jsonable([v])[0] for k, v in r.summary().items()},
    }


def scaling_series(doc: dict) -> dict:
    """{'<part>/<name>/<series>': array} from a lab 02 results.json, for comparison and plots."""
    out = {}
    for k, b in doc["dot"]["scales"].items():
        out.update({f"dot/{k}/{s}": from_json(b[s]) for s in ("var", "theory", "se")})
    out["dot/widths"] = np.array(doc["dot"]["widths"], float)
    for k, b in doc["depth"].items():
        out.update({f"depth/{k}/{s}": from_json(b[s]) for s in ("var", "theory")})
    fw = doc["finite_width"]
    for i, n in enumerate(fw["widths"]):
        out[f"finite/{n}/sd"] = from_json(fw["sd"][i])
        out.update({f"finite/{n}/{s}/log_ratio": from_json(v) for s, v in enumerate(fw["log_ratio"][i])})
    return out


def ablate_json(config: dict, results) -> dict:
    """losses.json of lab 01: every step's loss, the val points and the outcome per init."""
    out = {"experiment": STUDIES["ablate"].experiment, "config": config, "inits": {}}
    for r in results:
        out["inits"][r.init] = {
            "weight_seed": r.weight_seed,
            "outcome": r.outcome,
            "steps_to_nan": r.steps_to_nan,
            "flatline_step": r.flatline_step,
            "loss": jsonable(r.losses),
            "val": {"step": [int(s) for s in r.val_steps], "loss": jsonable(r.val_loss), "acc": jsonable(r.val_acc)},
            "summary": {k: v if v is None or isinstance(v, int) else jsonable([v])[0] for k, v in r.summary().items()},
            **_lsuv_block(r),
        }
    return out


def ablate_series(doc: dict) -> dict:
    """{'<init>/<series>': array} from a losses.json document, for comparison."""
    out = {}
    for init, block in doc["inits"].items():
        out[f"{init}/loss"] = from_json(block["loss"])
        out[f"{init}/val_step"] = np.array(block["val"]["step"], float)
        out[f"{init}/val_loss"] = from_json(block["val"]["loss"])
        out[f"{init}/val_acc"] = from_json(block["val"]["acc"])
    return out
