"""The phase diagram's verdicts, pure: which cells trained, which the theory says should, and where they disagree.

A cell is a dict with sigma_w2, depth, seed, train_acc and six_xi_c (None: xi_c diverges, no bound).
- trained: final training accuracy >= TRAINED_ACC, three times chance on 10 classes. Fixed by the
  issue before any measurement, never tuned to the data.
- predicted: depth <= 6 xi_c (Schoenholz et al. 2017, their trainability experiments on MNIST and CIFAR-10).
- a disagreeing cell is "near the boundary" when the boundary 6 xi_c lies between its depth and a
  neighbouring grid depth (one grid step from it), or within NEAR_FRACTION of 6 xi_c.
"""
import math

TRAINED_ACC = 0.3
NEAR_FRACTION = 0.2


def trained(train_acc) -> bool:
    return train_acc is not None and math.isfinite(train_acc) and train_acc >= TRAINED_ACC


def predicted(depth: int, six_xi_c) -> bool:
    return six_xi_c is None or not math.isfinite(six_xi_c) or depth <= six_xi_c


def agree(cell: dict) -> bool:
    return trained(cell["train_acc"]) == predicted(cell["depth"], cell["six_xi_c"])


def agreement(cells: list) -> float | None:
    """The fraction of cells where trained == predicted (None without cells: every one failed)."""
    return sum(agree(c) for c in cells) / len(cells) if cells else None


def boundary_distance(cell: dict) -> float | None:
    """(depth - 6 xi_c) / 6 xi_c: how far past (> 0) or short of (< 0) the bound; None without one."""
    b = cell["six_xi_c"]
    return None if b is None or not math.isfinite(b) else (cell["depth"] - b) / b


def near_boundary(cell: dict, depths: list) -> bool:
    """6 xi_c within NEAR_FRACTION of the depth, or between the depth and a neighbouring grid depth."""
    b = cell["six_xi_c"]
    if b is None or not math.isfinite(b):
        return False
    if abs(cell["depth"] - b) <= NEAR_FRACTION * b:
        return True
    grid = sorted(depths)
    i = grid.index(cell["depth"])
    neighbours = grid[max(i - 1, 0):i + 2]
    return any(min(d, cell["depth"]) <= b <= max(d, cell["depth"]) for d in neighbours if d != cell["depth"])


def disagreements(cells: list, depths: list) -> list:
    """The cells where trained != predicted, each with its distance to 6 xi_c and whether it is near it."""
    return [{**c, "trained": trained(c["train_acc"]), "predicted": predicted(c["depth"], c["six_xi_c"]),
             "distance": boundary_distance(c), "near_boundary": near_boundary(c, depths)}
            for c in cells if not agree(c)]


def deepest_trained(cells: list, sigma_w2s: list) -> list:
    """Per sigma_w^2 (grid order): the deepest depth where at least half the seeds trained; 0 if none."""
    out = []
    for s in sigma_w2s:
        by_depth = {}
        for c in cells:
            if c["sigma_w2"] == s:
                by_depth.setdefault(c["depth"], []).append(trained(c["train_acc"]))
        ok = [d for d, t in by_depth.items() if 2 * sum(t) >= len(t)]
        out.append(max(ok, default=0))
    return out


def nearest_critical(sigma_w2s: list, critical: float) -> list:
    """The grid points bracketing the critical sigma_w^2 (the one nearest, if it lies outside the grid)."""
    grid = sorted(sigma_w2s)
    below = [s for s in grid if s <= critical]
    above = [s for s in grid if s >= critical]
    return sorted({*(below[-1:]), *(above[:1])})


def peak_near_critical(sigma_w2s: list, deepest: list, critical: float) -> bool:
    """Is the deepest trained depth largest at a grid point nearest the critical sigma_w^2?"""
    top = max(deepest)
    return top > 0 and any(d == top for s, d in zip(sigma_w2s, deepest) if s in nearest_critical(sigma_w2s, critical))


def verdict(cells: list, sigma_w2s: list, depths: list, critical: float) -> dict:
    """Everything the parent records and the README states."""
    deepest = deepest_trained(cells, sigma_w2s)
    bad = disagreements(cells, depths)
    return {"cells": len(cells), "trained_cells": sum(trained(c["train_acc"]) for c in cells),
            "agreement": agreement(cells), "disagreeing": bad,
            "all_disagreeing_near_boundary": all(c["near_boundary"] for c in bad),
            "deepest_trained_depth": deepest, "critical_sigma_w2": critical,
            "nearest_critical": nearest_critical(sigma_w2s, critical),
            "peak_near_critical": peak_near_critical(sigma_w2s, deepest, critical)}
