"""What every figure shares (Agg backend: no screen needed, same bytes each time; fixed margins; an init's color),
and the sweep's summary figure. Each study draws its own in studies/<study>/figures.py."""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from initstudy.record import palette  # noqa: E402

PNG_META = {"Software": None}  # no version stamp: the bytes depend only on the data


def color(init):
    return palette.init_color(init)


def save(fig, path, left=0.8, bottom=0.6, right=0.15, top=0.4, wspace=0.2, hspace=0.2):
    """Write the PNG with fixed margins in inches (room for our tick labels, axis labels and titles).
    Set, not measured at save time: tight_layout or bbox_inches="tight" lays the text out a second
    time (measured: diagnostics.png 1.0 s with them, 0.6 s without; it is drawn after a run's last step)."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=wspace, hspace=hspace)
    fig.savefig(path, dpi=110, metadata=PNG_META)
    plt.close(fig)


def warm_up():
    """A small figure of the kinds a run draws (log axis, legend, annotation), drawn into memory.
    A process's first figure loads fonts and fills matplotlib's caches (measured: the first
    loss_curves 0.18 s, the next ones 0.11 s), and a run draws its figures after its last step,
    on its critical path; this runs while the run trains."""
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.semilogy([0, 1, 2], [1, 10, 100], lw=1, label="a")
    ax.annotate("a", (1, 10), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_title("a", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=8)
    fig.savefig(io.BytesIO(), format="png", dpi=110)
    plt.close(fig)


def layer_colors(n):
    return plt.cm.viridis(np.linspace(0, 0.9, max(n, 1)))


def hist_panel(ax, hists, title, colors=None):
    ax.set_prop_cycle(color=layer_colors(len(hists)) if colors is None else colors[:max(len(hists), 1)])
    for i, (counts, edges) in enumerate(hists, start=1):
        centers = (edges[:-1] + edges[1:]) / 2
        total = counts.sum()
        ax.plot(centers, counts / total if total else counts, lw=1, label=f"L{i:02d}")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)


AXIS_LABELS = {"depth": "depth (Linear layers)", "width": "width (units per hidden layer)"}


def sweep_axes(axes: dict):
    """(x axis, line axes) of a sweep's plot: x the first numeric axis that varies (seed aside: its
    spread is the band), one line per combination of the other varying axes; x None if none varies."""
    varying = [k for k, v in axes.items() if len(v) > 1 and k != "seed"]
    numeric = [k for k in varying if all(isinstance(v, (int, float)) for v in axes[k])]
    x = numeric[0] if numeric else None
    return x, [k for k in varying if k != x]


def sweep_lines(rows, lines) -> dict:
    """{line label (e.g. "kaiming gain=0.5", or "all runs"): its rows}, in the grid's order."""
    out = {}
    for r in rows:
        label = " ".join(str(r[k]) if k == "init" else f"{k}={r[k]:g}" if isinstance(r[k], float) else f"{k}={r[k]}"
                         for k in lines) or "all runs"
        out.setdefault(label, []).append(r)
    return out


def sweep_summary(rows, path, axes: dict, panels, title=""):
    """A panel per summary that has data (ablate: final loss of the runs that trained, steps to NaN of
    those that diverged; walk: final-layer variance): one line per combination of the varying axes
    against the first numeric one, the median over seeds, the band their min..max, each seed a dot."""
    ok = [r for r in rows if r["status"] == "FINISHED"]
    x, lines = sweep_axes(axes)

    def points(members, key):
        return [(r[x] if x else 0, r[key]) for r in members if r.get(key) is not None
                and (key != "final_loss" or r.get("steps_to_nan") is None)]

    shown = [p for p in panels if any(points(ok, p[0]))] or list(panels[:1])
    fig, axs = plt.subplots(1, len(shown), figsize=(6.5 * len(shown), 4.8), squeeze=False)
    groups = sweep_lines(ok, lines)
    for ax, (key, label, log) in zip(axs[0], shown):
        for n, (line, members) in enumerate(groups.items()):
            pts = points(members, key)
            if not pts:
                continue
            xs = sorted({v for v, _ in pts})
            by = [np.array([v for x2, v in pts if x2 == xv], float) for xv in xs]
            c = color(line) or f"C{n % 10}"
            seeds = max(map(len, by))
            ax.plot(xs, [np.median(v) for v in by], "-o", color=c, ms=4,
                    label=f"{line} (median of {seeds} seed{'s' * (seeds > 1)})")
            ax.fill_between(xs, [v.min() for v in by], [v.max() for v in by], color=c, alpha=0.2)
            ax.plot([v for v, _ in pts], [v for _, v in pts], ".", color=c, ms=3, alpha=0.6)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(label)
        if x:
            ax.set_xlabel(AXIS_LABELS.get(x, x))
            ax.set_xticks(axes[x])
        else:
            ax.set_xticks([])
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:  # every run failed: the panel says so instead of staying blank
            ax.text(0.5, 0.5, f"all {len(rows)} runs failed", transform=ax.transAxes, ha="center", color="gray")
    failed = len(rows) - len(ok)
    fig.suptitle((title or "Sweep") + (f"\n({failed} runs failed, not shown)" if failed else ""), fontsize=10)
    save(fig, path, left=0.95, top=0.75, wspace=0.4)
