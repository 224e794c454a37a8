"""The width-transfer README's numbers: the optimum log2 lr per width and param with its seed spread, the
shift against TP V Figure 1's, wider-is-better, divergences, cost (prose: readme.md.j2 beside this file)."""
import math

from initstudy.studies.transfer import compute as T

PAPER = {"sp_from": -10, "sp_to": -16, "width_from": 128, "width_to": 8192}  # TP V Figure 1 (Transformer, Adam), read off the plot
NAMES = {"sp": "SP", "ntk": "NTK", "mup": "μP"}


def _g(x, fmt="g") -> str:
    return "n/a" if x is None else format(x, fmt)


def numbers(doc: dict, mf: dict) -> dict:
    """Everything the README states, from transfer.json and the manifest."""
    g, v, c, t = doc["grid"], doc["verdict"], doc["config"], doc["timing"]
    widths, lrs = g["width"], g["log2_lr"]
    doublings = math.log2(widths[-1] / widths[0])
    params = []
    for p in g["param"]:
        rows = v["optima"][p]
        s, wb = v["shift_steps"][p], v["wider_is_better"][p]
        params.append({
            "name": NAMES.get(p, p), "key": p, "shift": s, "shift_text": "n/a" if s is None else f"{s:+g}", "shift_lr": None if s is None else s * v["grid_step"],
            "per_doubling": None if s is None or not doublings else s * v["grid_step"] / doublings,
            "optima": [f"{_g(r['log2_lr'])} ({_g(r['sd'], '.2g')})" for r in rows],
            "losses": [_g(r["loss"], ".3f") for r in rows], "per_seed": [r["per_seed"] for r in rows],
            "wider": wb, "wider_at": ", ".join(f"2^{x:g}" for x in wb["lrs_wider_better"]) or "none",
            "fraction": _g(wb["fraction"], ".2f"),
            "diverged": sum(1 for x in doc["cells"] if x["param"] == p and x["diverged"])})
    for p, key in zip(params, g["param"]):  # the widest stretch of widths, up to the widest, on one optimum
        opt = [r["log2_lr"] for r in v["optima"][key]]
        i = len(opt) - 1
        while i and opt[i - 1] == opt[-1]:
            i -= 1
        p["stays_from"], p["stays_at"] = widths[i], opt[-1]
    sub = refined(doc)
    for p in params:
        p["vertex"] = [_g(x, ".2f") for x in sub[p["key"]][:2]]
        p["vertex_shift"] = _g(sub[p["key"]][2], "+.2f")
    default = T.TransferConfig()
    smaller = {k: c[k] for k in ("widths", "lrs", "seeds", "params", "steps") if c[k] != getattr(default, k)}
    paper_per_doubling = (PAPER["sp_to"] - PAPER["sp_from"]) / math.log2(PAPER["width_to"] / PAPER["width_from"])
    return {"c": c, "g": g, "params": params, "widths": widths, "lrs": f"2^{lrs[0]:g} … 2^{lrs[-1]:g}",
            "n_lrs": len(lrs), "step": v["grid_step"], "doublings": doublings, "cells": v["cells"],
            "diverged": v["diverged_cells"], "paper": PAPER, "paper_per_doubling": paper_per_doubling,
            "t": t, "cpu_percent": 100 * t["compute_cpu_seconds"] / max(t["compute_seconds"], 1e-9),
            "floor_ratio": t["wall_seconds"] / max(t["compute_seconds"] / t["threads"], 1e-9),
            "example": _example(doc), "smaller": smaller, "default_widths": default.widths,
            "command": " ".join(f"-P {k}={v}" for k, v in smaller.items())}


def vertex(losses: list, lrs: list) -> float | None:
    """The optimum between grid points: the vertex of the parabola through the argmin and its two neighbours
    (log2 lr, seed-mean loss); the argmin itself at the grid's edge or where a neighbour diverged."""
    if not any(math.isfinite(x) for x in losses):
        return None
    i = min(range(len(losses)), key=losses.__getitem__)
    if i in (0, len(losses) - 1) or not (math.isfinite(losses[i - 1]) and math.isfinite(losses[i + 1])):
        return lrs[i]
    a, b, c = losses[i - 1], losses[i], losses[i + 1]
    return lrs[i] + 0.5 * (lrs[i + 1] - lrs[i]) * (a - c) / (a - 2 * b + c)


def refined(doc) -> dict:
    """{param: (vertex at the narrowest width, at the widest, their difference in log2 lr)}."""
    g, out = doc["grid"], {}
    for p in g["param"]:
        a, b = (vertex(T.curve(doc["cells"], p, w, g["log2_lr"]), g["log2_lr"]) for w in (g["width"][0], g["width"][-1]))
        out[p] = (a, b, None if a is None or b is None else b - a)
    return out


def _example(doc) -> str:
    """A --cells value naming two real cells (the widest μP optimum and the narrowest SP one)."""
    v = doc["verdict"]["optima"]
    out = []
    for p, i in (("mup", -1), ("sp", 0)):
        if p in v and v[p][i]["log2_lr"] is not None:
            out.append(f"{p}:{v[p][i]['width']}:{v[p][i]['log2_lr']:g}")
    return ",".join(out) or "all"
