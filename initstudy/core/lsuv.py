"""LSUV, layer-sequential unit-variance init (Mishkin & Matas 2015, "All you need is a good init", Algorithm 1).

Orthogonal weights first (inits "lsuv" draws them), then for each layer L in order:
    while |Var(B_L) - 1| >= Tol_var and T_i < T_max:  forward the batch;  W_L <- W_L / sqrt(Var(B_L))
B_L is the layer's output, here its pre-activation z_L = phi(z_{L-1}) @ W_L + b_L (z_1 = x @ W_1 + b_1, as
in the walk), and Var is over every element of the batch's z_L. Without a bias one rescaling lands on
Var = 1 up to rounding; a bias makes the map affine, hence the loop.

Pure: weights (+ biases), the activation and a batch in; the scaled weights and a Report out, in float64.
A layer whose variance is 0 (every unit feeding it dead on the batch) or not finite cannot be scaled: the
report names it and the layers from it on keep their orthogonal draw; nothing divides by zero or loops.
"""
from dataclasses import dataclass, field

import numpy as np

TOL_VAR = 0.1  # the paper's Tol_var
T_MAX = 10  # the paper's T_max


@dataclass
class LayerReport:
    layer: int  # 1-based, the first Linear is 1
    scale: float  # the product of the rescalings: W_L = scale * W_L(orthogonal)
    iterations: int  # rescalings done
    variance: float  # Var(z_L) on the batch after them (before, for a layer that failed)
    converged: bool  # |variance - 1| < tol
    reason: str = ""  # why not: "output variance 0 ...", "... not finite ...", "T_max=10 reached ...", "not reached"

    @property
    def fatal(self) -> bool:
        """Variance 0 or not finite: no rescaling can fix it, so the layers after it are not tried."""
        return not self.converged and not self.reason.startswith("T_max")


@dataclass
class Report:
    batch_seed: int | None = None  # the seed the batch was drawn with (walk: its input seed)
    layers: list = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return all(r.converged for r in self.layers)

    @property
    def stopped(self) -> bool:
        return any(r.fatal for r in self.layers)

    def failure(self) -> str | None:
        """One line naming the first layer that did not converge, or None."""
        bad = next((r for r in self.layers if not r.converged), None)
        return None if bad is None else f"LSUV did not converge at layer {bad.layer}: {bad.reason}"

    def scales(self) -> list:
        return [r.scale for r in self.layers]

    def as_dict(self) -> dict:
        """What the run records (results document, manifest): the batch's seed and each layer's numbers
        (a variance that is not finite as None: JSON has no NaN)."""
        return {"batch_seed": self.batch_seed, "tol_var": TOL_VAR, "t_max": T_MAX, "converged": self.converged,
                "failure": self.failure(), "scales": self.scales(),
                "iterations": [r.iterations for r in self.layers],
                "variances": [r.variance if np.isfinite(r.variance) else None for r in self.layers]}


def _var(h, w, b):
    z = h @ w if b is None else h @ w + b
    with np.errstate(all="ignore"):
        return z, float(np.var(z))


def scale_layer(h: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, layer: int = 1,
                tol: float = TOL_VAR, t_max: int = T_MAX) -> tuple[np.ndarray, np.ndarray, LayerReport]:
    """(scaled W, the layer's output z on the batch, report) for one layer whose input on the batch is h."""
    h = np.asarray(h, np.float64)
    w = np.asarray(w, np.float64)
    b = None if b is None else np.asarray(b, np.float64)
    z, v = _var(h, w, b)
    scale, t = 1.0, 0
    while not abs(v - 1) < tol:  # NaN is not within tol either
        if not np.isfinite(v):
            return w, z, LayerReport(layer, scale, t, v, False, "output variance not finite on the batch")
        if v <= 0:
            dead = " (every unit feeding it is zero on the batch: dead ReLUs)" if not np.any(h) else ""
            return w, z, LayerReport(layer, scale, t, v, False, f"output variance 0{dead}")
        if t == t_max:
            return w, z, LayerReport(layer, scale, t, v, False, f"T_max={t_max} reached at variance {v:.4g}")
        s = 1 / np.sqrt(v)
        w, scale, t = w * s, float(scale * s), t + 1
        z, v = _var(h, w, b)
    return w, z, LayerReport(layer, scale, t, v, True)


def next_layer(report: Report, h, w, b=None, tol: float = TOL_VAR, t_max: int = T_MAX):
    """The next layer of a forward pass: (its scaled float64 W, its output z on the batch), its line added
    to `report`. After a fatal layer nothing is tried: W as drawn, z None, reason "not reached"."""
    l = len(report.layers) + 1
    if report.stopped:
        report.layers.append(LayerReport(l, 1.0, 0, float("nan"), False, "not reached"))
        return np.asarray(w, np.float64), None
    w, z, rep = scale_layer(h, w, b, l, tol, t_max)
    report.layers.append(rep)
    return w, z


def lsuv(weights: list, biases: list, phi, x: np.ndarray, batch_seed: int | None = None, tol: float = TOL_VAR,
         t_max: int = T_MAX) -> tuple[list, Report]:
    """Every layer in order (z_1 = x W_1 + b_1, z_L = phi(z_{L-1}) W_L + b_L): (scaled float64 weights, report)."""
    out, report, z = [], Report(batch_seed), None
    for l, (w, b) in enumerate(zip(weights, biases), start=1):
        h = x if l == 1 else (None if z is None else phi(z))
        w, z = next_layer(report, h, w, b, tol, t_max)
        out.append(w)
    return out, report
