"""Lab 00's README numbers: per init the measured and predicted factor per layer, how far the last layer is
from the closed form in standard deviations of the finite-width spread, and the ReLU walk's factors
(prose: readme.md.j2 beside this file)."""
import math

import numpy as np

from initstudy.core import theory
from initstudy.studies.walk.record import walk_series


def walk_spread(depth: int, n: int, batch: int) -> tuple[float, float]:
    """Finite width and batch: layer l multiplies the variance by an average over n*batch squared
    entries whose relative std is about sqrt(2 (1 + l batch/n) / (n batch)) (the batch's Gram matrix
    widens by batch/n per random layer). Returns (RMS per-layer std of the log factor, std of the
    log of the variance after `depth` layers)."""
    terms = [2 * (1 + l * batch / n) / (n * batch) for l in range(1, depth + 1)]
    return math.sqrt(sum(terms) / depth), math.sqrt(sum(terms))


def numbers(doc: dict, mf: dict, relu_doc: dict | None = None, relu_runs=()) -> dict:
    """relu_doc, relu_runs: the walk with ReLU between the layers exported beside this one, if any."""
    c = doc["config"]
    per_layer_std, total_std = walk_spread(c["depth"], c["width"], c["batch"])
    series = walk_series(doc)
    m = {init: per_init(c, series, init, block["sigma_w2"], total_std) for init, block in doc["inits"].items()}
    xv = m.get("xavier")
    return {
        "config": c, "inits": m, "per_layer_std": per_layer_std, "spread_percent": 100 * total_std,
        "xavier": None if xv is None else {  # its last layer against 1, in the finite-width spread
            "dev_percent": 100 * (xv["final"] - 1), "var0": xv["var0"],
            "sds": abs(math.log(xv["final"])) / total_std},
        "two_to_depth": 2.0 ** c["depth"],
        "worst_one_step_percent": max(x["one_step_percent"] for x in m.values()),
        "relu": None if relu_doc is None else relu_measured(relu_doc, relu_runs),
    }


def per_init(c: dict, series: dict, init: str, sigma_w2: float, total_std: float) -> dict:
    """One init's walk: factor per layer measured (geometric mean over the layers that did not overflow) and
    from theory, the largest one-step deviation, where it overflowed, and the last layer against the
    closed form; with ReLU between the layers, theory's factor and last layer."""
    n, depth = c["width"], c["depth"]
    var, pred, q, sat = (series[f"{init}/{k}"] for k in ("var", "var_pred", "var_theory", "saturated"))
    ok = np.flatnonzero(sat == 0)
    last = int(ok[-1])
    n_sigma2 = n * sigma_w2
    g = (var[last] / var[0]) ** (1 / last) if last > 0 else float("nan")
    one_step = float(np.max(np.abs(var[ok[1:]] / pred[ok[1:]] - 1))) if last > 0 else float("nan")
    ratio = var[depth] / q[depth]
    return dict(n_sigma2=n_sigma2, sigma2=n_sigma2 / n, g=g, g_theory=theory.growth_per_layer(c["activation"], n_sigma2),
                what="explodes" if g > 1.05 else "collapses" if g < 0.95 else "holds",
                one_step_percent=100 * one_step, sat=int(np.argmax(sat)) if sat.any() else None,
                log_std=float(np.std(np.diff(np.log(var[ok])) - math.log(n_sigma2))),
                var0=var[0], final=var[depth], closed_form=q[depth], ratio=ratio, ratio_sds=abs(math.log(ratio)) / total_std,
                relu_g=theory.growth_per_layer("relu", n_sigma2),
                relu_final=theory.closed_form("relu", n_sigma2, depth, c["input_variance"])[-1])


def relu_measured(relu_doc: dict, relu_runs) -> dict:
    """The ReLU walk's factor per layer from layer 1 (the first ReLU) to its last, and its last layer."""
    rs, rd = walk_series(relu_doc), relu_doc["config"]["depth"]
    var = {i: rs[f"{i}/var"] for i in relu_doc["inits"]}
    return {"runs": list(relu_runs), "depth": rd,
            "inits": {i: {"g": (v[rd] / v[1]) ** (1 / (rd - 1)), "final": v[rd]} for i, v in var.items()}}
