"""Lab 03's figures: the makemore notebook's histograms, saturation map, update:data ratios and loss.

Drawn from result objects or the results document; record/plots.py holds what every figure shares."""
import numpy as np

from initstudy.record.plots import hist_panel, layer_colors, plt, save


def diagnose_histograms(r, path, kind="act", title=""):
    """Per hidden layer, the distribution of the tanh outputs (kind 'act') or of the gradients
    reaching them ('grad'), at init and at the end, with the notebook's mean/std per layer."""
    hists = r.hist_act if kind == "act" else r.hist_grad
    what = "activation" if kind == "act" else "gradient"
    text_h = 0.15 * 2 * (r.diag["act_std"].shape[1] - 1) if len(r.diag_steps) else 0  # 7-pt lines below
    fig, axes = plt.subplots(1, 2, figsize=(14, 4 + text_h))
    for ax, when in zip(axes, ("init", "end")):
        hist_panel(ax, hists.get(when, []), f"{what} distribution at {'init (step 0)' if when == 'init' else 'the end'}")
        ax.legend(fontsize=7)
    stats = ("act_mean", "act_std", "sat") if kind == "act" else ("grad_mean", "grad_std")
    if len(r.diag_steps):
        lines = []
        for when, row in (("init", 0), ("end", -1)):
            for l in range(r.diag["act_std"].shape[1] - 1):
                vals = ", ".join(f"{s} {r.diag[s][row, l]:+.3g}" for s in stats)
                lines.append(f"{when} L{l + 1:02d}: {vals}")
        fig.text(0.01, (text_h + 0.05) / (4 + text_h), "\n".join(lines), fontsize=7, family="monospace", va="top")
    fig.suptitle(title or f"{what} histograms per hidden layer", fontsize=11)
    save(fig, path, left=0.6, bottom=0.45 + text_h, top=0.65, wspace=0.12)


def saturation_map(r, path, title=""):
    """The notebook's image: white where |h| > 0.99 in the first hidden layer, rows the examples of
    a batch, columns the neurons; a column all white is a neuron that learns nothing from it."""
    maps = [(when, r.sat_map[when]) for when in ("init", "end") if when in r.sat_map]
    fig, axes = plt.subplots(1, max(len(maps), 1), figsize=(14, 3.2), squeeze=False)
    for ax, (when, m) in zip(axes[0], maps):
        ax.imshow(m, cmap="gray", interpolation="nearest", vmin=0, vmax=1, aspect="auto")
        ax.set_title(f"{when}: {100 * m.mean():.1f}% of |h| > 0.99, {int(m.all(axis=0).sum())} dead columns",
                     fontsize=9)
        ax.set_xlabel("neuron", fontsize=8)
        ax.set_ylabel("example in batch", fontsize=8)
    fig.suptitle(title or "saturation map, first hidden layer", fontsize=11)
    save(fig, path, left=0.65, bottom=0.55, top=0.65, wspace=0.12)


def update_ratio(r, path, title=""):
    """log10(update std / weight std) per weight over time, with the notebook's -3 guide line."""
    fig, ax = plt.subplots(figsize=(12, 4))
    ud = r.diag["update_data"]
    ax.set_prop_cycle(color=layer_colors(ud.shape[1] + 1))
    ax.plot(r.diag_steps, r.emb_diag["update_data"], lw=1, color="tab:red", label="C (embedding)")
    for i in range(ud.shape[1]):
        ax.plot(r.diag_steps, ud[:, i], lw=1, label=f"W L{i + 1:02d}" + (" (output)" if i == ud.shape[1] - 1 else ""))
    ax.axhline(-3, color="k", lw=1.5, label="1e-3 guide")
    ax.set_xlabel("step")
    ax.set_ylabel("log10(std(lr * grad) / std(W))")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=4)
    ax.set_title(title or "update:data ratio over time", fontsize=10)
    save(fig, path, bottom=0.58)


def diagnose_loss(r, path, title=""):
    """Minibatch loss per step (log10, as the notebook plots it), its 100-step mean, the uniform
    prediction's -ln(1/vocab), and the final train/dev loss (BatchNorm in eval mode)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ok = np.isfinite(r.losses)
    steps = np.arange(len(r.losses))
    ax.plot(steps[ok], r.losses[ok], lw=0.5, alpha=0.4, color="tab:blue", label="minibatch loss")
    if ok.sum() >= 100:
        ax.plot(steps[ok][99:], np.convolve(r.losses[ok], np.ones(100) / 100, "valid"), color="tab:blue",
                label="100-step mean")
    ax.axhline(r.expected_initial_loss, color="gray", ls=":", label=f"-ln(1/{r.vocab}) = {r.expected_initial_loss:.4f}")
    ax.axhline(r.train_loss, color="tab:green", ls="--", lw=1, label=f"train loss {r.train_loss:.4f}")
    ax.axhline(r.dev_loss, color="tab:red", ls="--", lw=1, label=f"dev loss {r.dev_loss:.4f}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"initial loss {r.initial_loss:.4f}", fontsize=10)
    save(fig, path, left=1.0)
