"""coord.png: mup's plot_coord_data for SP and muP side by side, drawn from coord.csv's rows."""
import numpy as np

from initstudy.record.plots import plt, save


def coord(rows: list, doc: dict, path):
    """A row of panels per param, a panel per t: log2 l1 (seed mean, band min-max) against log2 width, a line per layer."""
    params = list(dict.fromkeys(r["param"] for r in rows))
    ts = sorted({r["t"] for r in rows})
    mods, widths = doc["modules"], doc["widths"]
    fig, axes = plt.subplots(len(params), len(ts), figsize=(2.5 * len(ts), 2.4 * len(params)), sharey=True,
                             sharex=True, squeeze=False)
    colors = plt.cm.plasma(np.linspace(0.1, 0.8, len(mods)))
    slopes = {(s["param"], s["module"], s["t"]): s["slope"] for s in doc["verdict"]["slopes"]}
    for i, p in enumerate(params):
        for j, t in enumerate(ts):
            ax = axes[i][j]
            for m, col in zip(mods, colors):
                per = [[r["l1"] for r in rows if (r["param"], r["module"], r["t"], r["width"]) == (p, m, t, w)]
                       for w in widths]
                if not any(map(any, per)):  # muP's zero readout at t = 1: l1 exactly 0, no point on a log axis
                    ax.plot([], [], "o-", color=col, ms=3, lw=1.3, label=f"{m} (exactly 0)")
                    continue
                y = np.log2([np.mean(v) for v in per])
                ax.plot(np.log2(widths), y, "o-", color=col, ms=3, lw=1.3,
                        label=f"{m} ({slopes[(p, m, t)]:+.2f})")
                ax.fill_between(np.log2(widths), np.log2([min(v) for v in per]), np.log2([max(v) for v in per]),
                                color=col, alpha=0.2, lw=0)
            ax.set_title(f"{'μP' if p == 'mup' else p.upper()}, t={t}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, loc="upper left", title="slope", title_fontsize=6)
            if i == len(params) - 1:
                ax.set_xlabel("log2 width", fontsize=8)
        axes[i][0].set_ylabel("log2 l1 = log2 mean|x|", fontsize=8)
    c = doc["config"]
    fig.suptitle(f"Coordinate check: {c['depth'] - 1}-hidden-layer {c['activation']} MLP, {c['optimizer']} lr "
                 f"{c['lr']:g}, t=1 at init; {len(set(r['seed'] for r in rows))} seeds (band min-max)", fontsize=9)
    save(fig, path, left=0.6, right=0.15, top=0.5, bottom=0.5, wspace=0.08, hspace=0.3)
