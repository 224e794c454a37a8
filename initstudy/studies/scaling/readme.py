"""Lab 02's README numbers: the dot-product variances per width and scale, their distance from n·k² in
standard errors, the depth table, and the finite-width κ (prose: readme.md.j2 beside this file)."""
import math

import numpy as np


def numbers(doc: dict, mf: dict) -> dict:
    c, dot, s = doc["config"], doc["dot"], doc["summary"]
    widths = dot["widths"]
    sc = {k: {q: np.array(b[q], float) for q in ("var", "theory", "se")} for k, b in dot["scales"].items()}
    z = {k: (v["var"] - v["theory"]) / v["se"] for k, v in sc.items()}  # distance from n·k², in standard errors
    lab_n = 512 if 512 in widths else widths[len(widths) // 2]
    n, depth = c["depth_width"], c["depth"]
    return {
        "config": c, "summary": s, "draws": dot["draws"],
        "var": {w: {k: v["var"][i] for k, v in sc.items()} for i, w in enumerate(widths)},  # [width][scale]
        "lab_n": lab_n, "lab_1_over_n": 1 / lab_n, "points": len(sc) * len(widths),
        "beyond_3se": int(sum(np.sum(np.abs(v) > 3) for v in z.values())),
        "max_abs_z": {dot["scales"][k]["k"]: float(np.max(np.abs(v))) for k, v in z.items()},
        "depth_rows": [(b["activation"], b["c"], b["var"][-1], b["theory"][-1]) for b in doc["depth"].values()],
        "c2_growth": 4.0 ** depth,  # c = 2: a factor c² = 4 per layer
        "lab_c": 1 / math.sqrt(n), "lab_factor": 1 / n, "lab_total": float(n) ** -depth,  # the lab's k = 1/n
        "sd_rel_se_percent": 100 / math.sqrt(2 * (c["seeds"] - 1)),  # of a s.d. over `seeds` draws
        "log_drift": math.sqrt(s["kappa_theory"] * c["fw_depth"] / c["fw_min_width"]),  # √(κ·L/n) at the narrowest
    }
