"""`initstudy reproduce MANIFEST`: re-run a lab folder from its manifest and compare every series.

The manifest's config and seeds go back through the same pure functions the runs used
(walk.run_walk, ablate.train) with BLAS pinned to one thread and to the kernel the run recorded
(OpenBLAS's kernels round differently; where this machine picks another, the check runs in a
process of its own with the recorded one), and every series and number of the results document
beside the manifest (results.json or losses.json) is compared exactly, NaN equal to NaN. Any
difference is reported per series (max absolute and relative difference) and exits 1;
`--tolerance` accepts a relative difference for a run from another machine, and lists which
recorded versions, hardware or BLAS differ from this one.
"""
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from initstudy.studies.ablate import compute as ablate

from initstudy.core import data, inits

from initstudy.record import manifest, provenance, results

from initstudy.studies.phase import reproduce as phase_reproduce

from initstudy.studies.scaling import compute as scaling

from initstudy.studies.walk import compute as walk
from initstudy.core.config import ConfigError, _float, parse, to_dict
from initstudy.studies import STUDIES
from initstudy.publish.check import environment_differences, read_json, report  # noqa: F401 (the checks' names)

HELP = "re-run a lab folder's manifest.json and check its results bit for bit"

LABS = {STUDIES["walk"].experiment: (walk.WalkConfig, "results.json"),
        STUDIES["ablate"].experiment: (ablate.AblateConfig, "losses.json"),
        STUDIES["scaling"].experiment: (scaling.ScalingConfig, "results.json")}


def add_arguments(parser):
    parser.add_argument("manifest", help="a lab folder's manifest.json (its results file lies beside it)")
    parser.add_argument("--tolerance", default=None, metavar="REL",
                        help="accept a max relative difference up to REL (runs from another machine)")
    parser.add_argument("--cells", default="all", help="20-trainability only: 'all' or SIGMA_W2:DEPTH[:SEED],... "
                        "(a full re-run costs what the study cost)")


def main(args):
    code = run(args.manifest, args.tolerance, args.cells)
    if code:
        raise SystemExit(code)


def cli(argv=None, prog="initstudy reproduce") -> int:
    """The folder scripts' entry: same arguments, one line on bad input (exit 2)."""
    from initstudy.run.cli import run_tool

    return run_tool(prog, __doc__.split("\n\n")[0], add_arguments, lambda a: run(a.manifest, a.tolerance, a.cells), argv)


def load(path) -> tuple[dict, object, dict]:
    """(manifest, config, recorded results document); every problem is one ConfigError line."""
    try:
        mf = manifest.read(path)
    except manifest.ManifestError as e:
        raise ConfigError(str(e)) from None
    if mf["experiment"] not in LABS:
        raise ConfigError(f"manifest experiment must be one of {', '.join(LABS)}; got {mf['experiment']!r}")
    cls, name = LABS[mf["experiment"]]
    config = parse(cls, manifest.config_from_lab(mf["config"]))
    unknown = [i for i in mf["config"].get("inits", []) if i not in inits.INITS]
    if unknown:
        raise ConfigError(f"manifest config lists unknown inits {', '.join(unknown)}; allowed: {', '.join(inits.INITS)}")
    expected = expected_seeds(config, mf["config"].get("inits", []), mf["seeds"])
    wrong = [k for k in expected if mf["seeds"].get(k) != expected[k]]
    if wrong:
        raise ConfigError(f"manifest seeds {', '.join(wrong)} do not match those derived from seed {config.seed}"
                          f"{' / data_seed ' + str(config.data_seed) if hasattr(config, 'data_seed') else ''}")
    doc_path = Path(path).with_name(name)
    doc = read_json(doc_path)
    block = "dot" if cls is scaling.ScalingConfig else "inits"
    if not isinstance(doc, dict) or not isinstance(doc.get(block), dict):
        raise ConfigError(f"{doc_path} has no '{block}' block")
    return mf, config, doc


def expected_seeds(config, names, recorded=()) -> dict:
    if isinstance(config, scaling.ScalingConfig):
        return config.stream_seeds()
    if isinstance(config, walk.WalkConfig):
        base = {"input": config.input_seed()}
        if "pairs" in recorded:  # a walk recorded with its signal-propagation streams (older ones have none)
            base.update(config.stream_seeds())
            if config.sigma_b2 > 0:
                base.update({f"biases/{i}": config.bias_seed(i) for i in names})
    else:
        base = config.stream_seeds()
        if any(inits.INITS[i].needs_data for i in names if i in inits.INITS):  # lsuv's training batch
            base["lsuv_batch"] = config.lsuv_seed()
    return {**base, **{f"weights/{i}": config.weight_seed(i) for i in names}}


# --- re-run

def rerun(config, names) -> tuple[dict, dict]:
    """(results document, results_summary) recomputed, BLAS pinned to one thread as in the runs."""
    cfg = to_dict(config)
    with provenance.pin_blas_threads():
        if isinstance(config, scaling.ScalingConfig):
            doc = results.scaling_json(cfg, scaling.run_scaling(config))
            return doc, doc["summary"]
        if isinstance(config, walk.WalkConfig):
            rs = [walk.run_walk(config, i) for i in names]
            summary = {f"{r.init}_final_layer_variance": results.jsonable([r.var[-1]])[0] for r in rs}
            return results.walk_json(cfg, rs), summary
        from initstudy.studies.ablate.job import ablate_summary

        provenance.warm_up_blas()
        ds = ablate.dataset(config)
        rs = [ablate.train(config, i, ds) for i in names]
        return results.ablate_json(cfg, rs), ablate_summary(rs)


def data_differences(mf: dict, config) -> list[str]:
    """The dataset rebuilt from the config against the manifest's data block (ablate runs since the
    data option; older manifests have none): its sha256, and where it differs, the generator's version."""
    block = mf.get("data")
    if not isinstance(block, dict) or "sha256" not in block:
        return []
    ds = ablate.dataset(config)
    if data.sha256(ds) == block["sha256"]:
        return []
    now = data.identity(config.data, config.data_seed, config.shape(), ds)
    versions = "" if block.get("version") == now.get("version") else \
        f" (generator {block.get('package')} {block.get('version')} recorded, {now.get('version')} here)"
    return [f"data: {config.data} rebuilt here differs from the recorded set (sha256 {now['sha256'][:12]} "
            f"vs {block['sha256'][:12]}){versions}"]


# --- compare

SERIES_KEYS = ("layers", "loss", "val")


def scalars(doc: dict, summary: dict) -> dict:
    """Every number or label outside the series: per init, and the manifest's results_summary."""
    out = {}
    for init, block in doc.get("inits", {}).items():
        for k, v in block.items():
            if k in SERIES_KEYS:
                continue
            if isinstance(v, dict):
                out.update({f"{init}/{k}/{kk}": vv for kk, vv in v.items()})
            else:
                out[f"{init}/{k}"] = v
    out.update({f"results_summary/{k}": v for k, v in summary.items()})
    for init, block in doc.get("signal", {}).get("inits", {}).items():
        for k, v in block.items():
            if k == "layers":
                continue
            if isinstance(v, dict):
                out.update({f"{init}/signal/{k}/{kk}": vv for kk, vv in v.items() if kk != "singular_values"})
            else:
                out[f"{init}/signal/{k}"] = v
    return out


def series_of(doc: dict) -> dict:
    try:
        if doc.get("experiment") == STUDIES["scaling"].experiment:
            return results.scaling_series(doc)
        return results.walk_series(doc) if "layers" in next(iter(doc["inits"].values()), {}) else results.ablate_series(doc)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"the recorded results document is malformed ({type(e).__name__}: {e})") from None


def diff(recorded: np.ndarray, now: np.ndarray) -> tuple[bool, float, float, str]:
    """(bit-identical, max abs diff, max rel diff, note) with NaN equal to NaN."""
    if recorded.shape != now.shape:
        return False, math.inf, math.inf, f"length {len(recorded)} recorded, {len(now)} now"
    if np.array_equal(recorded, now, equal_nan=True):
        return True, 0.0, 0.0, ""
    nan_r, nan_n = np.isnan(recorded), np.isnan(now)
    if not np.array_equal(nan_r, nan_n):
        first = int(np.argmax(nan_r != nan_n))
        return False, math.inf, math.inf, f"NaN at different positions (first at index {first})"
    ok = ~nan_r
    a = np.abs(recorded[ok] - now[ok])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(a == 0, 0.0, a / np.maximum(np.abs(recorded[ok]), np.abs(now[ok])))
    return False, float(a.max()), float(rel.max()), ""


def _value_equal(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    return a == b


def run(path, tolerance=None, cells="all") -> int:
    tol = None
    if tolerance is not None:
        tol = _float("tolerance", tolerance)
        if tol < 0:
            raise ConfigError(f"tolerance must be >= 0, got {tolerance!r}")
    trainability = _experiment_of(path) == STUDIES["phase"].experiment
    if trainability:  # checked before any re-run: a bad manifest or cell list is one line
        mf, _, doc = phase_reproduce.load(path)
        phase_reproduce.choose(doc["cells"], cells)
    else:
        mf, config, doc = load(path)
    note = None
    pin = provenance.kernel_pin(mf["blas"] if isinstance(mf["blas"], dict) else {})
    if pin is not None:
        code, note = rerun_pinned(path, tolerance, pin, ["--cells", str(cells)] if trainability else [])
        if code is not None:
            return code
    if trainability:
        code = phase_reproduce.run(path, tol, cells)
        if note:
            print(note)
        return code
    names = list(mf["config"].get("inits", []))
    now_doc, now_summary = rerun(config, names)
    legacy = "signal" not in doc and now_doc.pop("signal", None) is not None  # a walk from before the block
    rec_series, now_series = series_of(doc), series_of(now_doc)
    later = sorted(k for k in now_series if k not in rec_series and k.rsplit("/", 1)[-1] in results.SIGNAL_SERIES_LATER)
    for k in later:  # a walk recorded before these series: they are new, not a difference
        del now_series[k]
    rec_scalars, now_scalars = scalars(doc, mf["results_summary"]), scalars(now_doc, now_summary)

    bad, near = data_differences(mf, config), []  # lines for series/values that differ beyond / within the tolerance
    for key in sorted(set(rec_series) | set(now_series)):
        if key not in rec_series or key not in now_series:
            bad.append(f"{key}: {'missing from the recorded results' if key not in rec_series else 'not recomputed'}")
            continue
        same, ab, rel, note = diff(rec_series[key], now_series[key])
        if same:
            continue
        line = f"{key}: {note}" if note else f"{key}: max abs diff {ab:.3g}, max rel diff {rel:.3g}"
        (near if tol is not None and not note and rel <= tol else bad).append(line)
    for key in sorted(set(rec_scalars) | set(now_scalars)):
        a, b = rec_scalars.get(key, "<missing>"), now_scalars.get(key, "<missing>")
        if _value_equal(a, b):
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        rel = abs(a - b) / max(abs(a), abs(b)) if numeric and math.isfinite(a - b) else math.inf
        line = f"{key}: recorded {a!r}, now {b!r}" + (f" (rel diff {rel:.3g})" if numeric else "")
        (near if tol is not None and rel <= tol else bad).append(line)

    n = f"{len(rec_series)} series and {len(rec_scalars)} values of {', '.join(names) or 'the study'}"
    report(mf, path, n, f"{len(bad)} of {len(rec_series) + len(rec_scalars)} series/values differ", bad, near, tol)
    if legacy:
        print("(recorded before the walk's signal-propagation block: lab 00's series and values compared)")
    elif later:
        print(f"(recorded before the walk's {', '.join(sorted({k.rsplit('/', 1)[-1] for k in later}))} series: "
              "the others compared)")
    if note:
        print(note)
    return 1 if bad else 0


def _experiment_of(path) -> str | None:
    try:
        return manifest.read(path).get("experiment")
    except manifest.ManifestError as e:
        raise ConfigError(str(e)) from None


def rerun_pinned(path, tolerance, pin: dict, extra=()) -> tuple[int | None, str]:
    """The whole check again in a process whose BLAS runs the recorded kernel (OpenBLAS chooses it
    when it loads, so not in this process): (its exit code, a note). The code is None where that
    kernel cannot run on this CPU; the caller then compares under this machine's own kernel."""
    kernel, here = pin[provenance.KERNEL_ENV], provenance.blas()["architecture"]
    cmd = [sys.executable, "-m", "initstudy", "reproduce", str(path)]
    cmd += ([] if tolerance is None else ["--tolerance", str(tolerance)]) + list(extra)
    proc = subprocess.run(cmd, env={**os.environ, **pin}, capture_output=True, text=True)
    if proc.returncode < 0:  # SIGILL: this CPU lacks the kernel's instructions
        return None, (f"BLAS kernel: the recorded {kernel} does not run on this CPU "
                      f"({signal.Signals(-proc.returncode).name}); compared under this machine's {here}")
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode in (0, 1):
        print(f"BLAS kernel: the recorded {kernel}, pinned with {provenance.KERNEL_ENV} (this machine's own: {here})")
    return proc.returncode, ""
