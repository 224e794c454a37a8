"""transfer.png: TP V Figure 1 for our MLP, drawn from transfer.json (the parent's and the export's figure)."""
import math

import numpy as np

from initstudy.record.plots import plt, save

PARAM_TITLES = {"sp": "SP (standard)", "ntk": "NTK", "mup": "μP (maximal update)"}


def _band(cells, param, width, lrs):
    """Per log2 lr: (mean, lo, hi) of the seeds' training losses; nan where any seed diverged."""
    out = []
    for lr in lrs:
        vals = [c["train_loss"] for c in cells if c["param"] == param and c["width"] == width and c["log2_lr"] == lr]
        ok = vals and all(v is not None for v in vals)
        out.append((np.mean(vals), min(vals), max(vals)) if ok else (math.nan,) * 3)
    return np.array(out).reshape(len(lrs), 3)


def transfer(doc: dict, path):
    """Training loss against log2 lr, one curve per width (a band over seeds), a panel per param, the
    optimum of each width marked (the argmin of its seed-mean curve)."""
    g, cells, v = doc["grid"], doc["cells"], doc["verdict"]
    lrs, widths = g["log2_lr"], g["width"]
    fig, axes = plt.subplots(1, len(g["param"]), figsize=(5.2 * len(g["param"]), 4.2), sharey=True, squeeze=False)
    colors = plt.cm.viridis(np.linspace(0.05, 0.9, len(widths)))
    finite = [c["train_loss"] for c in cells if c["train_loss"] is not None]
    for ax, p in zip(axes[0], g["param"]):
        for w, col, best in zip(widths, colors, v["optima"][p]):
            b = _band(cells, p, w, lrs)
            ax.plot(lrs, b[:, 0], "-", color=col, lw=1.6, label=f"width {w}")
            ax.fill_between(lrs, b[:, 1], b[:, 2], color=col, alpha=0.2, lw=0)
            if best["log2_lr"] is not None:
                ax.plot([best["log2_lr"]], [best["loss"]], "*", color=col, ms=12, mec="k", mew=0.6)
        s = v["shift_steps"][p]
        ax.set_title(f"{PARAM_TITLES.get(p, p)}: optimum moves {'n/a' if s is None else f'{s:+g}'} grid steps",
                     fontsize=10)
        ax.set_xlabel("log2 learning rate")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    if finite:
        axes[0][0].set_ylim(min(finite) * 0.9, min(max(finite), 10 * np.log(10)) * 1.1)
    axes[0][0].set_ylabel("training loss (whole set, after training)")
    axes[0][-1].legend(fontsize=8, loc="upper right")
    c = doc["config"]
    fig.suptitle(f"Learning-rate transfer: {c['depth'] - 1}-hidden-layer {c['activation']} MLP on {c['data']}, "
                 f"{c['optimizer']}, {c['steps']} steps, batch {c['batch']}; band: min-max over "
                 f"{len(g['seed'])} seeds; *: each width's optimum", fontsize=9)
    save(fig, path, left=0.8, right=0.2, top=0.55, bottom=0.6, wspace=0.08)
