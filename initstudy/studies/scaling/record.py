"""What lab 02 records: its experiment's description and results.json (and its series read back)."""
import numpy as np

from initstudy.record import keys, labs
from initstudy.record.results import from_json, jsonable
from initstudy.studies import STUDIES

ASKS = (
    "**Lab 02, why 1/sqrt(n).** Why is a weight scaled by 1/sqrt(fan-in)? One run per command holds the "
    "answer measured: `var_scale_1`, `var_scale_1_over_n`, `var_scale_1_over_sqrt_n` are Var(x.w) of one "
    "dot product with step = log2 of the width, each beside its `_theory` n k^2; `depth_var_*` the "
    "variance after L layers for sigma = c/sqrt(n) (step = L) against c^2L and the ReLU/tanh q-maps; "
    "`log_ratio_sd_n*` the finite-width spread of log(var_L / q_L) against sqrt(kappa L / n). "
    "scaling.png draws all three on log axes, theory dashed.")
VIEW = labs.View(  # the shared chart view: each scale's variance against its theory, in log y
    "Lab 02, why 1/sqrt(n): only a weight scale of 1/sqrt(fan-in) keeps a dot product's variance at 1 at "
    "every width.",
    tuple(((keys.finding(f"var_scale_{k}"), keys.finding(f"var_scale_{k}_theory")), True)
          for k in ("1", "1_over_n", "1_over_sqrt_n")), ("Model metrics",), rows="")


# --- the results document

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
