"""Per-layer training diagnostics (the makemore notebook's), from a model after one step.

One entry per statistic in STATS; ablate and diagnose log the same keys, `<stat>/L<nn>`
(record/keys.py:layer), with L01 the first Linear block. Everything is computed in float64.
"""
import numpy as np

# stat -> what it measures; add a statistic here and in layer_stats, the loggers pick it up
STATS = {
    "act_mean": "mean of the block's output (activation; logits for the last block)",
    "act_std": "std of the block's output",
    "sat": "saturation, each activation's own (nn.py, docs/activations.md): ReLU/GELU/SiLU dead units, tanh/sigmoid/SELU flat tails",
    "grad_mean": "mean of dLoss/d(block output)",
    "grad_std": "std of dLoss/d(block output)",
    "grad_data": "std(dW) / std(W)",
    "update_data": "log10(std(lr * update) / std(W))",
}


def _std(a):
    return float(np.std(a, dtype=np.float64))


def grad_data(weight, grad) -> float:
    return _std(grad) / _std(weight)


def update_data(weight, optimizer, params) -> float:
    """log10 of the last step's update size relative to the weight (nan without an optimizer)."""
    if optimizer is None:
        return float("nan")
    return float(np.log10(_std(optimizer.update_of(params, weight)) / _std(weight)))


def layer_stats(model, optimizer=None) -> dict:
    """{stat: array over blocks}; update_data needs the optimizer after its step (else nan)."""
    params = model.params()
    out = {k: [] for k in STATS}
    with np.errstate(all="ignore"):
        for linear, last, act in model.blocks:
            y = last.out
            out["act_mean"].append(float(np.mean(y, dtype=np.float64)))
            out["act_std"].append(_std(y))
            out["sat"].append(act.saturation(y))
            out["grad_mean"].append(float(np.mean(last.grad_out, dtype=np.float64)))
            out["grad_std"].append(_std(last.grad_out))
            out["grad_data"].append(grad_data(linear.weight, linear.grad_weight))
            out["update_data"].append(update_data(linear.weight, optimizer, params))
    return {k: np.array(v) for k, v in out.items()}


def histograms(arrays, bins=50) -> list:
    """[(counts, edges)] per array, finite values only (a diverged layer has none)."""
    out = []
    for a in arrays:
        a = np.asarray(a, np.float64).ravel()
        a = a[np.isfinite(a)]
        counts, edges = np.histogram(a, bins=bins) if a.size else (np.zeros(bins), np.linspace(-1, 1, bins + 1))
        out.append((counts.astype(float), edges))
    return out


def pair_correlation(zp: np.ndarray) -> float:
    """Mean over pairs of <z_a, z_b> / (|z_a| |z_b|) (uncentred, as the c-map's q12 / q)."""
    a, b = zp.astype(np.float64)
    with np.errstate(all="ignore"):
        return float(np.mean(np.sum(a * b, 1) / np.sqrt(np.sum(a * a, 1) * np.sum(b * b, 1))))
