"""Every figure, drawn from result objects. Agg backend: no screen needed, same bytes each time."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from initstudy import inits  # noqa: E402

COLORS = {"uniform": "tab:red", "xavier": "tab:blue", "kaiming": "tab:green"}
PNG_META = {"Software": None}  # no version stamp: the bytes depend only on the data


def _color(init):
    return COLORS.get(init, None)


def _save(fig, path):
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata=PNG_META)
    plt.close(fig)


def variance_walk(results, path, title=""):
    """Semilog-y activation variance per layer: empirical solid, closed-form theory dashed;
    overflowed layers marked with an x at the last finite value."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        layers = np.arange(len(r.var))
        ok = ~r.saturated
        c = _color(r.init)
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
    _save(fig, path)
