"""Lab 00's figures: the variance walk (and its signal panels), the Jacobian's spectrum.

Drawn from result objects or the results document; record/plots.py holds what every figure shares."""
import numpy as np

from initstudy.core import inits
from initstudy.record.plots import color, plt, save


def variance_walk(results, path, title=""):
    """Semilog-y activation variance per layer: empirical solid, closed-form theory dashed;
    overflowed layers marked with an x at the last finite value. Results that carry a signal block
    (r.signal) get two more panels: the backward gradient variance and the pairs' correlation."""
    signals = [r for r in results if getattr(r, "signal", None) is not None]
    if not signals:  # lab 00's figure, as it always was
        fig, ax = plt.subplots(figsize=(7, 4.5))
        _forward_panel(ax, results, title)
        save(fig, path)
        return
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    _forward_panel(axes[0], results, "forward: activation variance")
    for r in signals:
        c, s = color(r.init), r.signal
        layers = np.arange(len(s.grad_var))
        axes[1].semilogy(layers, s.grad_var, "-o", ms=3, color=c, label=f"{r.init} measured")
        axes[1].semilogy(layers, s.grad_var_theory, "--", color=c, alpha=0.8, label=f"{r.init} theory")
        axes[2].plot(layers, s.corr, "-o", ms=3, color=c, label=f"{r.init} measured")
        axes[2].plot(layers, s.corr_theory, "--", color=c, alpha=0.8, label=f"{r.init} c-map")
    axes[1].set_title("backward: Var(dL/dz_l) from an N(0,1) top gradient", fontsize=10)
    axes[1].set_ylabel("gradient variance (log scale)")
    axes[2].set_title("correlation of input pairs", fontsize=10)
    axes[2].set_ylabel("mean correlation")
    for ax in axes[1:]:
        ax.set_xlabel("layer index (0 = input)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    fig.suptitle(title or "Variance walk", fontsize=11)
    save(fig, path, left=1.0, top=0.7, wspace=0.25)


def _forward_panel(ax, results, title):
    for r in results:
        layers = np.arange(len(r.var))
        ok = ~r.saturated
        c = color(r.init)
        ax.semilogy(layers[ok], r.var[ok], "-o", ms=3, color=c, label=f"{inits.INITS[r.init].label} measured")
        ax.semilogy(layers, r.var_theory, "--", color=c, alpha=0.8, label=f"{r.init} theory")
        if r.saturated.any():
            first = int(np.argmax(r.saturated))
            ax.axvline(first, color=c, ls=":", lw=1)
            ax.annotate(f"overflow at layer {first}", (first, ax.get_ylim()[1]), color=c, fontsize=8,
                        ha="right", va="top", rotation=90)
    ax.set_xlabel("layer index (0 = input)")
    ax.set_ylabel("activation variance (log scale)")
    ax.set_title(title or "Variance walk")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)


def jacobian_spectrum(results, path, title=""):
    """Histogram of the input-output Jacobian's singular values (log10), one per init, with the
    mean squared singular value measured and from theory in the legend."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        s = r.signal
        label = f"{r.init}: mean sigma^2 {s.jacobian_msv:.3g} (theory {s.jacobian_msv_theory:.3g})"
        sv = s.jacobian_sv[np.isfinite(s.jacobian_sv) & (s.jacobian_sv > 0)]
        if len(sv):
            ax.hist(np.log10(sv), bins=40, histtype="step", lw=1.5, color=color(r.init), label=label)
        else:
            ax.plot([], [], color=color(r.init), label=label + f" ({s.jacobian_method}: no spectrum)")
    ax.set_xlabel("log10 singular value of dz_L/dz_0")
    ax.set_ylabel("count")
    ax.set_title(title or "Input-output Jacobian", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)
