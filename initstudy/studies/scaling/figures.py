"""Lab 02's figure: Var(x.w) per width and scale, the depth walks, the finite-width spread.

Drawn from result objects or the results document; record/plots.py holds what every figure shares."""
import numpy as np

from initstudy.record.plots import layer_colors, plt, save


SCALE_COLORS = {"1": "tab:red", "1_over_n": "tab:blue", "1_over_sqrt_n": "tab:green"}
C_COLORS = {"0.5": "tab:blue", "1": "tab:green", "sqrt2": "tab:orange", "2": "tab:red"}


def scaling(doc, path, title=""):
    """Four panels from a lab 02 results.json: Var(x . w) against n per scale (log-log), the linear
    walk against c^{2L}, the ReLU and tanh walks against their q-maps, and the finite-width spread of
    log(var_L / q_L) against L/n beside sqrt(kappa L/n). Measured solid, theory dashed."""
    fig, grid = plt.subplots(2, 2, figsize=(10, 8.6))  # 1100 px: read at its size in a 1000 px viewer
    axes = grid.flat
    ax = axes[0]
    n = np.array(doc["dot"]["widths"], float)
    for k, b in doc["dot"]["scales"].items():
        var, th, se = (np.array(b[s], float) for s in ("var", "theory", "se"))
        ax.errorbar(n, var, yerr=2 * se, fmt="o-", ms=3, color=SCALE_COLORS.get(k), label=f"k = {b['k']} measured")
        ax.plot(n, th, "--", color=SCALE_COLORS.get(k), label=f"n k^2 = {'n' if k == '1' else '1/n' if k == '1_over_n' else '1'}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("n (width of the dot product)")
    ax.set_ylabel("Var(x . w), w = k z")
    ax.set_title(f"one dot product, {doc['dot']['draws']} draws per point (±2 s.e.)", fontsize=10)
    for ax, acts, what in ((axes[1], ("linear",), "linear: c^(2L)"), (axes[2], ("relu", "tanh"), "ReLU (o) and tanh (s): q-maps")):
        for key, b in doc["depth"].items():
            if b["activation"] not in acts:
                continue
            cname = key.rsplit("_c", 1)[1]
            var, th = np.array(b["var"], float), np.array(b["theory"], float)
            layers = np.arange(len(var))
            marker = "s" if b["activation"] == "tanh" else "o"
            ax.semilogy(layers, var, "-" + marker, ms=3, color=C_COLORS.get(cname),
                        label=f"{b['activation']} c = {b['c']:.3g}")
            ax.semilogy(layers, th, "--", color=C_COLORS.get(cname), alpha=0.8)
        ax.set_xlabel("layer L")
        ax.set_ylabel("activation variance (log scale)")
        ax.set_title(f"sigma = c/sqrt(n): {what}", fontsize=10)
        ax.legend(fontsize=8, ncol=2)
    ax = axes[3]
    fw = doc["finite_width"]
    depth = len(fw["sd"][0]) - 1
    colors = layer_colors(len(fw["widths"]))
    for i, w in enumerate(fw["widths"]):
        x = np.arange(1, depth + 1) / w
        ax.plot(x, np.array(fw["sd"][i], float)[1:], "-", color=colors[i], lw=1.2, label=f"n = {w}")
    xs = np.geomspace(1 / fw["widths"][-1], depth / fw["widths"][0], 50)
    s = doc["summary"]
    ax.plot(xs, np.sqrt(s["kappa_theory"] * xs), "k--", label=f"sqrt(kappa L/n), kappa = {s['kappa_theory']:g} (theory)")
    ax.plot(xs, np.sqrt(s["kappa_fit"] * xs), "k:", label=f"kappa = {s['kappa_fit']:.3g} (fit)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("L / n")
    ax.set_ylabel(f"s.d. over {len(fw['log_ratio'][0])} seeds of log(var_L / q_L)")
    ax.set_title(f"finite width: {fw['activation']}, Kaiming", fontsize=10)
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[3].legend(fontsize=8)
    fig.suptitle(title or "Why 1/sqrt(n)", fontsize=11)
    save(fig, path, left=0.8, top=0.65, wspace=0.3, hspace=0.35)
