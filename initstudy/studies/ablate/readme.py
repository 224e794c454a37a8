"""Lab 01's README numbers: how each init ended, when uniform failed, how long Xavier sat on the ln(classes)
plateau, and mean-field theory's factors for twice the depth (prose: readme.md.j2 beside this file)."""
import math

import numpy as np

from initstudy.core import data, inits, theory
from initstudy.record import results
from initstudy.studies.ablate.compute import FLAT_BAND, STALL_FRACTION

PLATEAU_WINDOW = 50  # steps: the running mean that smooths the batch noise (±0.01 at ln 2)


def leaves(losses: np.ndarray, level: float, margin: float) -> int | None:
    """The step at which the PLATEAU_WINDOW-step running mean of the loss first falls more than
    `margin` below `level` (the window's last step), or None if it never does."""
    w = PLATEAU_WINDOW
    if len(losses) < w or not np.all(np.isfinite(losses)):
        return None
    below = np.flatnonzero(np.convolve(losses, np.ones(w) / w, "valid") < level - margin)
    return int(below[0]) + w - 1 if len(below) else None


def numbers(doc: dict, mf: dict) -> dict:
    c, b = doc["config"], doc["inits"]
    s = {i: blk["summary"] for i, blk in b.items()}
    level = next(iter(s.values()))["expected_initial_loss"]  # ln(classes): a random guess
    name = c.get("data", "synthetic")  # runs from before the data option trained on the synthetic set
    return {
        "config": c, "inits": b, "summary": s, "level": level, "synthetic": name == "synthetic",
        "data_about": None if name == "synthetic" else data.source(name).about,
        "uniform_finite": ([float(v) for v in results.from_json(b["uniform"]["loss"]) if np.isfinite(v)]
                           if "uniform" in b else None),  # its losses before the NaN
        "versus": versus(s, c) if "xavier" in b and "kaiming" in b else None,
        "xavier": xavier(b["xavier"], level) if "xavier" in b else None,
        "deeper": deeper(c, b),
        "kaiming_bumpy": "kaiming" in b and s["kaiming"]["initial_loss"] > level + FLAT_BAND,
        "plateau_window": PLATEAU_WINDOW, "flat_band": FLAT_BAND,
    }


def versus(s: dict, c: dict) -> dict:
    """Xavier's final loss over Kaiming's, and whether Kaiming memorised the synthetic set: near-zero training
    loss with validation accuracy not far above chance."""
    fx, fk = s["xavier"]["final_loss"], s["kaiming"]["final_loss"]
    return {"ratio": fx / fk if fx and fk else None,
            "memorised": (fk is not None and fk < 0.05 and s["kaiming"]["final_val_acc"] < 0.7
                          and c.get("data", "synthetic") == "synthetic")}


def xavier(blk: dict, level: float) -> dict:
    """Is Xavier training: its slope over the last 200 steps (×199 intervals: the fall over them), and the
    steps at which its running mean leaves the plateau by 0.005 and by FLAT_BAND."""
    sl = blk["summary"]["loss_slope_last200"]
    lx = results.from_json(blk["loss"])
    return {"slope": sl, "fall": None if sl is None else sl * 199,
            "training": sl is not None and sl < 0 and blk["outcome"] == "trained",
            "stalled": sl is not None and sl < 0 and blk["outcome"] == "stalled", "stall_fraction": STALL_FRACTION,
            "leaves": leaves(lx, level, 0.005), "leaves_band": leaves(lx, level, FLAT_BAND)}


def deeper(c: dict, b: dict) -> dict:
    """Mean-field theory for twice the depth: per init the factor per hidden layer n·σ_W²·E[φ(z)²]/Var(z), and
    that factor to the power `depth` (the layers added)."""
    width, more = c["width"], c["depth"]
    g = {i: theory.growth_per_layer(c["activation"], width * inits.weight_variance(i, width, c["gain"])) for i in b}
    return {"per_layer": g, "added": {i: v ** more for i, v in g.items()},
            "uniform": g.get("uniform", math.nan) ** more, "xavier": g.get("xavier", math.nan) ** more}
