"""Every figure, drawn from result objects. Agg backend: no screen needed, same bytes each time."""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from initstudy.core import inits  # noqa: E402
from initstudy.record import palette  # noqa: E402

PNG_META = {"Software": None}  # no version stamp: the bytes depend only on the data


def _color(init):
    return palette.init_color(init)


def _save(fig, path, left=0.8, bottom=0.6, right=0.15, top=0.4, wspace=0.2, hspace=0.2):
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


def variance_walk(results, path, title=""):
    """Semilog-y activation variance per layer: empirical solid, closed-form theory dashed;
    overflowed layers marked with an x at the last finite value. Results that carry a signal block
    (r.signal) get two more panels: the backward gradient variance and the pairs' correlation."""
    signals = [r for r in results if getattr(r, "signal", None) is not None]
    if not signals:  # lab 00's figure, as it always was
        fig, ax = plt.subplots(figsize=(7, 4.5))
        _forward_panel(ax, results, title)
        _save(fig, path)
        return
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    _forward_panel(axes[0], results, "forward: activation variance")
    for r in signals:
        c, s = _color(r.init), r.signal
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
    _save(fig, path, left=1.0, top=0.7, wspace=0.25)


def _forward_panel(ax, results, title):
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


def jacobian_spectrum(results, path, title=""):
    """Histogram of the input-output Jacobian's singular values (log10), one per init, with the
    mean squared singular value measured and from theory in the legend."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        s = r.signal
        label = f"{r.init}: mean sigma^2 {s.jacobian_msv:.3g} (theory {s.jacobian_msv_theory:.3g})"
        sv = s.jacobian_sv[np.isfinite(s.jacobian_sv) & (s.jacobian_sv > 0)]
        if len(sv):
            ax.hist(np.log10(sv), bins=40, histtype="step", lw=1.5, color=_color(r.init), label=label)
        else:
            ax.plot([], [], color=_color(r.init), label=label + f" ({s.jacobian_method}: no spectrum)")
    ax.set_xlabel("log10 singular value of dz_L/dz_0")
    ax.set_ylabel("count")
    ax.set_title(title or "Input-output Jacobian", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


LOSS_CEILING = 1e3  # the axis stops here; a blown-up loss (1e6 and up) would flatten every other curve


def loss_curves(results, path, title=""):
    """Training loss per step, log-y, one curve per init; losses above LOSS_CEILING drawn at the
    ceiling and labelled, the NaN step and the flatline marked."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for r in results:
        c = _color(r.init)
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
    _save(fig, path)


def _layer_colors(n):
    return plt.cm.viridis(np.linspace(0, 0.9, max(n, 1)))


def _hist_panel(ax, hists, title, colors=None):
    ax.set_prop_cycle(color=_layer_colors(len(hists)) if colors is None else colors[:max(len(hists), 1)])
    for i, (counts, edges) in enumerate(hists, start=1):
        centers = (edges[:-1] + edges[1:]) / 2
        total = counts.sum()
        ax.plot(centers, counts / total if total else counts, lw=1, label=f"L{i:02d}")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)


def training_diagnostics(r, path, title=""):
    """The notebook's views of one run: activation and gradient histograms per hidden layer at init
    and at the end, update:data ratio over time with the 1e-3 guide, and saturation over time."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    ud = r.diag["update_data"]
    colors = _layer_colors(ud.shape[1])  # layer l has one color in every panel, one legend (top right)
    _hist_panel(axes[0, 0], r.hist_act.get("init", []), "activation distribution at init", colors)
    _hist_panel(axes[0, 1], r.hist_act.get("end", []), "activation distribution at the end", colors)
    _hist_panel(axes[1, 0], r.hist_grad.get("init", []), "gradient distribution at init", colors)
    _hist_panel(axes[1, 1], r.hist_grad.get("end", []), "gradient distribution at the end", colors)
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
    _save(fig, path, left=0.5, bottom=0.55, top=0.65, wspace=0.14, hspace=0.3)


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
            c = _color(line) or f"C{n % 10}"
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
    _save(fig, path, left=0.95, top=0.75, wspace=0.4)


# --- diagnose (lab 03): the makemore notebook's figures ---------------------------------------------

def diagnose_histograms(r, path, kind="act", title=""):
    """Per hidden layer, the distribution of the tanh outputs (kind 'act') or of the gradients
    reaching them ('grad'), at init and at the end, with the notebook's mean/std per layer."""
    hists = r.hist_act if kind == "act" else r.hist_grad
    what = "activation" if kind == "act" else "gradient"
    text_h = 0.15 * 2 * (r.diag["act_std"].shape[1] - 1) if len(r.diag_steps) else 0  # 7-pt lines below
    fig, axes = plt.subplots(1, 2, figsize=(14, 4 + text_h))
    for ax, when in zip(axes, ("init", "end")):
        _hist_panel(ax, hists.get(when, []), f"{what} distribution at {'init (step 0)' if when == 'init' else 'the end'}")
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
    _save(fig, path, left=0.6, bottom=0.45 + text_h, top=0.65, wspace=0.12)


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
    _save(fig, path, left=0.65, bottom=0.55, top=0.65, wspace=0.12)


def update_ratio(r, path, title=""):
    """log10(update std / weight std) per weight over time, with the notebook's -3 guide line."""
    fig, ax = plt.subplots(figsize=(12, 4))
    ud = r.diag["update_data"]
    ax.set_prop_cycle(color=_layer_colors(ud.shape[1] + 1))
    ax.plot(r.diag_steps, r.emb_diag["update_data"], lw=1, color="tab:red", label="C (embedding)")
    for i in range(ud.shape[1]):
        ax.plot(r.diag_steps, ud[:, i], lw=1, label=f"W L{i + 1:02d}" + (" (output)" if i == ud.shape[1] - 1 else ""))
    ax.axhline(-3, color="k", lw=1.5, label="1e-3 guide")
    ax.set_xlabel("step")
    ax.set_ylabel("log10(std(lr * grad) / std(W))")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=4)
    ax.set_title(title or "update:data ratio over time", fontsize=10)
    _save(fig, path, bottom=0.58)


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
    _save(fig, path, left=1.0)


# --- lab 02: why 1/sqrt(n) ---------------------------------------------------------------------------

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
    colors = _layer_colors(len(fw["widths"]))
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
    _save(fig, path, left=0.8, top=0.65, wspace=0.3, hspace=0.35)


# --- the trainability phase diagram (20-trainability) ----------------------------------------------

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
    _save(fig, path, left=0.8, right=0.3, top=0.6)
