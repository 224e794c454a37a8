"""The lab folders' README.md: a study's numbers, written out by its Jinja2 template (lab 00 Block C, lab 01 Block D).

studies/<study>/readme.py:numbers(doc, manifest) -> dict computes every number and verdict the prose
states (pure: tests pin them); studies/<study>/readme.md.j2 holds the prose. Exact values print with
repr (`|exact`: they equal the runs' metrics bit for bit); prose rounds to 4 significant digits
(`|g`). Where the lab's expectation and the measurement disagree, the text says so. In a template, a
line ending in `{# -#}` continues on the next one (Jinja drops the newline and the indent).
"""
import functools
import importlib
import math
from pathlib import Path

import jinja2
import numpy as np

from initstudy.core import inits, theory

from initstudy.record import results
from initstudy.studies.ablate.compute import FLAT_BAND


def g(x, digits=4) -> str:
    """Prose: `digits` significant digits; n/a for a missing or non-finite number."""
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def exact(x) -> str:
    """A metric as recorded: repr, so it equals the run's value bit for bit; None is JSON's null."""
    return "null" if x is None else repr(x)


_g, _exact = g, exact


def _defined(f):
    """A filter that names the missing number (StrictUndefined's error) instead of failing inside f."""
    def filter(x, *args):
        return str(x) if isinstance(x, jinja2.Undefined) else f(x, *args)  # str() raises for StrictUndefined
    return filter


@functools.cache
def _templates(folder: str) -> jinja2.Environment:
    """The study's folder first, then this one (readme_macros.md.j2: what every README says alike)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([folder, str(Path(__file__).parent)]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.filters.update({k: _defined(f) for k, f in dict(g=g, exact=exact, fmt=format, label=label).items()})
    return env


def study_readme(name: str):
    """The module holding a study's numbers(); its readme.md.j2 sits beside it."""
    return importlib.import_module(f"initstudy.studies.{name}.readme")


def render(name: str, doc: dict, manifest: dict, **extra) -> str:
    """The README.md of study `name` from its results document and manifest (`extra`: what its
    numbers() takes besides, e.g. walk's ReLU companion)."""
    module = study_readme(name)
    numbers = module.numbers(doc, manifest, **extra)
    template = _templates(str(Path(module.__file__).parent)).get_template("readme.md.j2")
    return template.render(numbers, manifest=manifest)


def label(init: str) -> str:
    """An init's name as the tables print it (e.g. 'xavier N(0, 1/n)')."""
    return inits.INITS[init].label if init in inits.INITS else init


_label = label


def _runs(mf: dict) -> str:
    m = mf["mlflow"]
    ids = ", ".join(f"{i} `{r}`" for i, r in m["run_ids"].items())
    parent = f"parent run `{m['parent_run_id']}`, " if m.get("parent_run_id") else ""
    store = f" in `{m['tracking_uri']}`" if m.get("tracking_uri") else ", a local store"
    return (f"MLflow: experiment {mf['experiment']} (id {m['experiment_id']}{store}); {parent}runs {ids}. "
            f"git {mf['git']['commit'][:12]} (dirty: {mf['git']['dirty']}), {mf['date']}.")


# --- lab 00

def walk_spread(depth: int, n: int, batch: int) -> tuple[float, float]:
    """Finite width and batch: layer l multiplies the variance by an average over n*batch squared
    entries whose relative std is about sqrt(2 (1 + l batch/n) / (n batch)) (the batch's Gram matrix
    widens by batch/n per random layer). Returns (RMS per-layer std of the log factor, std of the
    log of the variance after `depth` layers)."""
    terms = [2 * (1 + l * batch / n) / (n * batch) for l in range(1, depth + 1)]
    return math.sqrt(sum(terms) / depth), math.sqrt(sum(terms))


def walk(doc: dict, mf: dict, relu_doc: dict | None = None, relu_runs=()) -> str:
    c = doc["config"]
    n, batch, depth, act, q0 = c["width"], c["batch"], c["depth"], c["activation"], c["input_variance"]
    series = results.walk_series(doc)
    rows, m = [], {}
    for init, block in doc["inits"].items():
        var, pred, q, sat = (series[f"{init}/{k}"] for k in ("var", "var_pred", "var_theory", "saturated"))
        ok = np.flatnonzero(sat == 0)
        last = int(ok[-1])
        n_sigma2 = n * block["sigma_w2"]
        g_theory = theory.growth_per_layer(act, n_sigma2)
        g_meas = (var[last] / var[0]) ** (1 / last) if last > 0 else float("nan")
        one_step = float(np.max(np.abs(var[ok[1:]] / pred[ok[1:]] - 1))) if last > 0 else float("nan")
        log_ratio = np.diff(np.log(var[ok])) - math.log(n_sigma2)
        m[init] = dict(var=var, q=q, last=last, g=g_meas, g_theory=g_theory, one_step=one_step, n_sigma2=n_sigma2,
                       sat=int(np.argmax(sat)) if sat.any() else None, log_std=float(np.std(log_ratio)),
                       final=mf["results_summary"].get(f"{init}_final_layer_variance"))
        rows.append(f"| {_label(init)} | {_g(n_sigma2)} | {_g(g_theory)} | {_g(g_meas)} | {_g(var[depth])} | "
                    f"{_g(q[depth])} | {_g(var[depth] / q[depth])} | {_g(100 * one_step, 3)}% |")
    per_layer_std, total_std = walk_spread(depth, n, batch)
    out = [
        f"# 10-variance-walk: activation variance through {depth} random {act} layers",
        "",
        f"A batch of {batch} inputs, each {n}-dim N(0, {q0:g}), goes through {depth} layers of width {n} "
        f"({'no activation' if act == 'linear' else act + ' between layers'}, no norm, {c['dtype']}), "
        "once per init; each init's weights come from their own seed, every init sees the same batch. "
        "At each layer we record the empirical variance of the pre-activations, the one-step prediction "
        "n·σ_W²·E[φ(z_{l-1})²] (the lab's `var_theoretical_prediction`, from the measured previous layer) "
        "and the closed form from the input alone (`var_closed_form`). "
        f"`variance.png`: measured (solid) and closed form (dashed), log scale. {_runs(mf)}",
        "",
        "| init | n·σ_W² | theory factor per layer | measured factor per layer | final variance | closed form | "
        "measured / closed form | max one-step deviation |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "Measured factor per layer: (Var(layer L) / Var(input))^(1/L), the geometric mean over the layers "
        "that did not overflow. Exact final-layer variances (`results_summary`, equal to the runs' metrics):",
        "",
        *[f"- `{k}`: {_exact(v)}" for k, v in mf["results_summary"].items()],
        "",
        "## What the curves do",
        "",
    ]
    for init, x in m.items():
        what = "explodes" if x["g"] > 1.05 else "collapses" if x["g"] < 0.95 else "holds"
        sat = (f" It overflows {c['dtype']} at layer {x['sat']} (marked `saturated` from there)."
               if x["sat"] is not None else f" No layer overflows in {c['dtype']}.")
        out.append(f"- **{_label(init)}** {what}: ×{_g(x['g'])} per layer measured, ×{_g(x['g_theory'])} from "
                   f"Var(y) = n_in·σ_W²·Var(x) = {n}·{_g(x['n_sigma2'] / n)}"
                   f"{'' if act == 'linear' else ' times the ' + act + ' second-moment factor'}; final variance "
                   f"{_g(x['var'][depth])} against {_g(x['q'][depth])} predicted.{sat}")
    xv = m.get("xavier")
    out += ["", "## Why Xavier is not exactly 1", ""]
    if xv is not None:
        dev = xv["var"][depth] - 1
        out.append(
            f"Measured: {_g(xv['var'][depth])} at layer {depth}, {_g(100 * dev, 3)}% from 1 (the input batch "
            f"itself has variance {_g(xv['var'][0])}, not {q0:g}). The formula is an expectation over weights and "
            f"an infinite batch. Here each layer's factor is an average over only n·B = {n}·{batch} = {n * batch} "
            f"squared entries of one weight draw, so it is a random number around n·σ_W² with relative std about "
            f"√(2(1 + l·B/n)/(n·B)) (the B×B Gram matrix of the batch spreads a little more at every layer): "
            f"{_g(per_layer_std, 3)} on average over the layers; measured, the std of log(factor) is "
            f"{_g(xv['log_std'], 3)}. The errors multiply, so the log-variance does a random walk: after {depth} "
            f"layers its expected spread is ±{_g(100 * total_std, 3)}%, and the measured {_g(100 * dev, 3)}% is "
            f"{_g(abs(math.log(xv['var'][depth])) / total_std, 2)} standard deviations of it. A wider layer or a bigger batch shrinks "
            "it; nothing is pulling the variance back to 1, so a deeper walk drifts further.")
    out += ["", "## With ReLU between the layers", ""]
    relu = {i: theory.growth_per_layer("relu", x["n_sigma2"]) for i, x in m.items()}
    out.append(
        "ReLU zeroes half of a symmetric pre-activation, so E[ReLU(z)²] = Var(z)/2 and the factor per layer "
        "becomes n·σ_W²/2: " + ", ".join(
            f"{_label(i)} ×{_g(g)} per layer ({_g(theory.closed_form('relu', m[i]['n_sigma2'], depth, q0)[-1])} "
            f"at layer {depth})" for i, g in relu.items()) +
        ". Prediction: Xavier halves at every layer (it collapses towards 0), Kaiming holds at the value of "
        "the first layer, 2 (it was designed for ReLU: its ×2 cancels ReLU's ½; this is the lab's \"near 2.0\"), "
        "uniform still explodes, by half the factor.")
    if relu_doc is not None:
        rs = results.walk_series(relu_doc)
        rd = relu_doc["config"]["depth"]
        meas = ", ".join(f"{_label(i)} ×{_g((rs[f'{i}/var'][rd] / rs[f'{i}/var'][1]) ** (1 / (rd - 1)))} per layer "
                         f"(final {_g(rs[f'{i}/var'][rd])})" for i in relu_doc["inits"])
        out.append(f"\nMeasured with ReLU (walk run {', '.join(f'`{r}`' for r in relu_runs)}, same shape and seed): "
                   f"{meas}; per-layer factor from layer 1 to {rd}.")
    else:
        out.append("\nNo ReLU walk was exported with this one; `mlflow run . -e walk -P activation=relu "
                   "--env-manager local` runs it.")
    out += ["", "## Where the lab's expectations differ from what we measured", ""]
    k = m.get("kaiming")
    if k is not None and act == "linear":
        out.append(f"- The lab's stop condition says Kaiming should hold \"near 2.0\". In a linear walk it does not: "
                   f"it multiplies the variance by n·σ_W² = {_g(k['n_sigma2'])} at every layer, so it reaches "
                   f"{_g(k['var'][depth])} at layer {depth} (2^{depth} = {_g(2.0 ** depth)}). It holds only with "
                   "ReLU, its design case (above).")
    u = m.get("uniform")
    if u is not None:
        out.append(f"- Uniform: the lab's ≈21× per layer is 256/12 = {_g(u['g_theory'])}; measured ×{_g(u['g'])}. "
                   + ("The lab's overflow \"at layer 7-ish\" is a float16 effect; "
                      f"in {c['dtype']} nothing overflows." if u["sat"] is None else
                      f"It overflows at layer {u['sat']} in {c['dtype']}."))
    worst = max(x["one_step"] for x in m.values())
    far = {i: x["var"][depth] / x["q"][depth] for i, x in m.items()}
    out.append(f"- \"Empirical should track theoretical to within ~10%\": true layer by layer (one-step prediction, "
               f"worst {_g(100 * worst, 3)}%). Against the closed form from the input the errors compound: at layer "
               f"{depth} measured/closed form is " + ", ".join(f"{_label(i)} {_g(r)}" for i, r in far.items()) +
               " (in standard deviations of the finite-width spread above: " +
               ", ".join(f"{_g(abs(math.log(r)) / total_std, 2)}" for r in far.values()) + ").")
    out += ["", "## Reproduce", "",
            "`python walk.py` (or `initstudy reproduce manifest.json`) re-runs the walk from `manifest.json` and "
            "checks every series in `results.json` bit for bit.", ""]
    return "\n".join(out)


# --- lab 01

from initstudy.studies.ablate.readme import PLATEAU_WINDOW, leaves  # noqa: E402 (tests and docs name them here)


def ablate(doc: dict, mf: dict) -> str:
    return render("ablate", doc, mf)


# --- lab 02

def scaling(doc: dict, mf: dict) -> str:
    """projects/02-why-sqrt-n/README.md: the lab's "why", answered from the measured numbers."""
    return render("scaling", doc, mf)


# --- 20-trainability

def trainability(doc: dict, mf: dict) -> str:
    """projects/20-trainability/README.md: what mean-field theory predicted, where the measured diagram
    agrees with it and where (and by how much) it does not; every number from phase.json."""
    return render("phase", doc, mf)
