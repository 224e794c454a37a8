"""Lab 01's figures: the inits' loss curves, one init's layer diagnostics.

Drawn from result objects or the results document; record/plots.py holds what every figure shares."""
import numpy as np

from initstudy.core import inits
from initstudy.record.plots import color, hist_panel, layer_colors, plt, save


LOSS_CEILING = 1e3  # the axis stops here; a blown-up loss (1e6 and up) would flatten every other curve


def loss_curves(results, path, title=""):
    """Training loss per step, log-y, one curve per init; losses above LOSS_CEILING drawn at the
    ceiling and labelled, the NaN step and the flatline marked."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for r in results:
        c = color(r.init)
        steps = np.arange(len(r.losses))
        ok = np.isfinite(r.losses)
        shown = np.minimum(r.losses[ok], LOSS_CEILING)
        ax.semilogy(steps[ok], shown, color=c, lw=1.2, label=f"{inits.INITS[r.init].label}: {r.outcome}")
        if ok.any() and r.losses[ok].max() > LOSS_CEILING:
            top = int(steps[ok][np.argmax(r.losses[ok])])
            ax.annotate(f"off scale: {r.losses[ok].max():.2g} at step {top}", (top, LOSS_CEILING), color=c,
                        fontsize=8, xytext=(8, -14), textcoords="offset points")
        if r.steps_to_nan is not None:
            y = min(r.losses[ok][-1], LOSS_CEILING) if ok.any() else LOSS_CEILING
            ax.plot([r.steps_to_nan], [y], "X", color=c, ms=10)
            ax.annotate(f"NaN at step {r.steps_to_nan}", (r.steps_to_nan, y), color=c, fontsize=8,
                        xytext=(8, -26), textcoords="offset points")
        if r.flatline_step is not None:
            y = r.losses[r.flatline_step]
            ax.plot([r.flatline_step], [y], "s", color=c, ms=7, mfc="none")
            ax.annotate(f"flatline from step {r.flatline_step}", (r.flatline_step, y), color=c, fontsize=8,
                        xytext=(6, 6), textcoords="offset points")
    level = results[0].expected_initial_loss
    ax.axhline(level, color="gray", ls=":", lw=1, label=f"ln(classes) = {level:.3f} (random guess)")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (log scale)")
    ax.set_title(title or "Init ablation", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    save(fig, path)


def training_diagnostics(r, path, title=""):
    """The notebook's views of one run: activation and gradient histograms per hidden layer at init
    and at the end, update:data ratio over time with the 1e-3 guide, and saturation over time."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    ud = r.diag["update_data"]
    colors = layer_colors(ud.shape[1])  # layer l has one color in every panel, one legend (top right)
    hist_panel(axes[0, 0], r.hist_act.get("init", []), "activation distribution at init", colors)
    hist_panel(axes[0, 1], r.hist_act.get("end", []), "activation distribution at the end", colors)
    hist_panel(axes[1, 0], r.hist_grad.get("init", []), "gradient distribution at init", colors)
    hist_panel(axes[1, 1], r.hist_grad.get("end", []), "gradient distribution at the end", colors)
    ax = axes[0, 2]
    ax.set_prop_cycle(color=colors)
    for i in range(ud.shape[1]):
        ax.plot(r.diag_steps, ud[:, i], lw=1, label=f"L{i + 1:02d}")
    ax.axhline(-3, color="k", lw=1.5, label="1e-3 guide")
    ax.legend(fontsize=6, ncol=3)
    ax.set_title("update:data ratio, log10(std(lr*update)/std(W))", fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax = axes[1, 2]
    ax.set_prop_cycle(color=colors)
    sat = r.diag["sat"][:, :-1]
    for i in range(sat.shape[1]):
        ax.plot(r.diag_steps, sat[:, i], lw=1)
    ax.set_title("saturation per hidden layer (dead units / flat tails: docs/activations.md)", fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    fig.suptitle(title or f"{r.init}: diagnostics", fontsize=11)
    save(fig, path, left=0.5, bottom=0.55, top=0.65, wspace=0.14, hspace=0.3)
