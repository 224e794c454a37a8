"""The trainability README's numbers: theory's 6 ξ_c per σ_w², the measured diagram, and every cell where
the two disagree with its distance to the bound (prose: readme.md.j2 beside this file)."""
from initstudy.studies.phase import verdict as T


def numbers(doc: dict, mf: dict) -> dict:
    c, v, g, cells = doc["config"], doc["verdict"], doc["grid"], doc["cells"]
    sw, depths = g["sigma_w2"], g["depth"]
    first = {s: next(x for x in cells if x["sigma_w2"] == s) for s in sw}  # theory is the same in every cell of a σ_w²
    bound = {s: next((x["six_xi_c"] for x in cells if x["sigma_w2"] == s), None) for s in sw}
    bad = [dict(x, distance_percent=None if x["distance"] is None else abs(100 * x["distance"]))
           for x in v["disagreeing"]]
    past, short = [x for x in bad if x["trained"]], [x for x in bad if not x["trained"]]
    t = doc["timing"]
    return {
        "config": c, "verdict": v, "sigma_w2": sw, "depths": depths, "seeds": len(g["seed"]), "cells": len(cells),
        "chi1": [first[s]["chi1"] for s in sw], "six_xi_c": [bound[s] for s in sw],
        "table": measured_table(cells, sw, depths, bound),
        "disagreeing": bad, "far": [x for x in bad if not x["near_boundary"]], "past": past, "short": short,
        "past_acc": (min(x["train_acc"] for x in past), max(x["train_acc"] for x in past)) if past else None,
        "peak_depth": max(v["deepest_trained_depth"]),
        "peak": [s for s, d in zip(sw, v["deepest_trained_depth"]) if d == max(v["deepest_trained_depth"])],
        "timing": t, "cpu_percent": 100 * t["compute_cpu_seconds"] / t["compute_seconds"],
        "trained_acc": T.TRAINED_ACC, "near_percent": 100 * T.NEAR_FRACTION,
    }


def measured_table(cells: list, sw: list, depths: list, bound: dict) -> dict:
    """{depth: per σ_w², (mean train acc over seeds, whether trained ≠ theory's prediction) or None if no cell}.
    A (σ_w², depth) trained if at least half its seeds did."""
    by = {}
    for x in cells:
        by.setdefault((x["sigma_w2"], x["depth"]), []).append(x)

    def cell(s, d):
        xs = by.get((s, d))
        if not xs:
            return None
        ok = 2 * sum(T.trained(x["train_acc"]) for x in xs) >= len(xs)
        return sum(x["train_acc"] for x in xs) / len(xs), ok != T.predicted(d, bound[s])
    return {d: [cell(s, d) for s in sw] for d in depths}
