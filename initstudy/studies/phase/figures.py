"""The trainability phase diagram.

Drawn from result objects or the results document; record/plots.py holds what every figure shares."""
import numpy as np

from initstudy.record import palette
from initstudy.record.plots import plt, save


def _edges(values) -> np.ndarray:
    """Cell edges halfway between grid values (a non-uniform axis drawn as it is)."""
    v = np.asarray(values, float)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def phase_diagram(doc: dict, path, trained_acc: float = 0.3):
    """Training accuracy over (sigma_w^2, depth), mean over seeds; the critical sigma_w^2 (chi_1 = 1),
    xi_c and 6 xi_c (the bound of Schoenholz et al.'s trainability experiments) overlaid; trained cells marked."""
    sw, depths = doc["grid"]["sigma_w2"], doc["grid"]["depth"]
    acc = np.full((len(depths), len(sw)), np.nan)
    for i, d in enumerate(depths):
        for j, s in enumerate(sw):
            vals = [c["train_acc"] for c in doc["cells"] if c["depth"] == d and c["sigma_w2"] == s
                    and c.get("train_acc") is not None]
            if vals:
                acc[i, j] = np.mean(vals)
    fig, ax = plt.subplots(figsize=(8, 5.2))
    mesh = ax.pcolormesh(_edges(sw), _edges(depths), np.ma.masked_invalid(acc), cmap=palette.PHASE_CMAP, vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax, label="final training accuracy (whole training set)")
    done = [(s, d) for i, d in enumerate(depths) for j, s in enumerate(sw) if np.isfinite(acc[i, j])
            and acc[i, j] >= trained_acc]
    if done:
        ax.plot(*zip(*done), "o", ms=3, mfc="white", mec="black", mew=0.4, ls="none",
                label=f"trained (train acc ≥ {trained_acc:g})")
    curve = doc["theory_curve"]
    xs = np.array(curve["sigma_w2"], float)
    xi = np.array([np.nan if v is None else v for v in curve["xi_c"]], float)
    ax.plot(xs, xi, "--", color="white", lw=1.2, label="ξ_c")
    ax.plot(xs, 6 * xi, "-", color="red", lw=1.8, label="6 ξ_c (trainable below)")
    crit = doc["critical_sigma_w2"]
    ax.axvline(crit, color="orange", lw=1.2, ls=":", label=f"critical σ_w² = {crit:.4g} (χ₁ = 1)")
    e = _edges(depths)
    ax.set_ylim(e[0], e[-1])
    ax.set_xlim(_edges(sw)[0], _edges(sw)[-1])
    ax.set_xlabel("σ_w²")
    ax.set_ylabel("depth (hidden layers)")
    c = doc["config"]
    ax.set_title(f"Trainability: {c['activation']} width {c['width']}, σ_b² = {c['sigma_b2']:g}, {c['data']}\n"
                 f"{c['steps']} steps of SGD (lr {c['lr']:g}, momentum {c['momentum']:g}, batch {c['batch']})",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.8)
    save(fig, path, left=0.8, right=0.3, top=0.6)
