"""`initstudy reproduce MANIFEST`: re-run a lab folder from its manifest and compare every series.

The manifest's config and seeds go back through the same pure functions the runs used (its study's
Lab in the registry: rerun, e.g. walk.run_walk, ablate.train; a study may bring its own check, as the
trainability study's cell by cell) with BLAS pinned to one thread and to the kernel the run recorded
(OpenBLAS's kernels round differently; where this machine picks another, the check runs in a
process of its own with the recorded one), and every series and number of the results document
beside the manifest (the Lab's results file) is compared exactly, NaN equal to NaN. Any
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


from initstudy import studies
from initstudy.core import budget, data, inits
from initstudy.core.config import ConfigError, _float, parse
from initstudy.publish.check import diff, environment_differences, read_json, report  # noqa: F401 (the checks' names)
from initstudy.record import manifest, provenance

HELP = "re-run a lab folder's manifest.json and check its results bit for bit"


def add_arguments(parser):
    parser.add_argument("manifest", help="a lab folder's manifest.json (its results file lies beside it)")
    parser.add_argument("--tolerance", default=None, metavar="REL",
                        help="accept a max relative difference up to REL (runs from another machine)")
    parser.add_argument("--cells", default="all", help="a study reproduced cell by cell: 'all' or its cells, comma-separated "
                        "(20-trainability: SIGMA_W2:DEPTH[:SEED]; 40-residual: residual.json's labels; "
                        "a full re-run costs what the study cost)")  # read by a Lab's own check


def main(args):
    code = run(args.manifest, args.tolerance, args.cells)
    if code:
        raise SystemExit(code)


def cli(argv=None, prog="initstudy reproduce") -> int:
    """The folder scripts' entry: same arguments, one line on bad input (exit 2)."""
    from initstudy.run.cli import run_tool

    return run_tool(prog, __doc__.split("\n\n")[0], add_arguments, lambda a: run(a.manifest, a.tolerance, a.cells), argv)


def lab_of(mf: dict):
    """The Lab of the manifest's experiment, or one ConfigError line."""
    labs = studies.with_lab()
    if mf["experiment"] not in labs:
        raise ConfigError(f"manifest experiment must be one of {', '.join(labs)}; got {mf['experiment']!r}")
    return labs[mf["experiment"]].part("lab")


def _lab_of_config(config):
    return next(s.part("lab") for s in studies.with_lab().values() if s.part("lab").config is type(config))


def read(path) -> tuple[dict, object]:
    """(manifest, its Lab); every problem is one ConfigError line."""
    try:
        mf = manifest.read(path)
        lab = lab_of(mf)
        if lab.runs == "inits":
            manifest.need_inits(mf)
    except manifest.ManifestError as e:
        raise ConfigError(str(e)) from None
    return mf, lab


def load(path) -> tuple[dict, object, dict]:
    """(manifest, config, recorded results document); every problem is one ConfigError line."""
    mf, lab = read(path)
    config = parse(lab.config, manifest.config_from_lab(mf["config"]))
    budget.check(config, str(path))  # a tampered size: refused before it is re-run
    unknown = [i for i in mf["config"].get("inits", []) if i not in inits.INITS]
    if unknown:
        raise ConfigError(f"manifest config lists unknown inits {', '.join(unknown)}; allowed: {', '.join(inits.INITS)}")
    expected = lab.seeds(config, mf["config"].get("inits", []), mf["seeds"])
    wrong = [k for k in expected if mf["seeds"].get(k) != expected[k]]
    if wrong:
        raise ConfigError(f"manifest seeds {', '.join(wrong)} do not match those derived from seed {config.seed}"
                          f"{' / data_seed ' + str(config.data_seed) if hasattr(config, 'data_seed') else ''}")
    doc_path = Path(path).with_name(lab.results)
    doc = read_json(doc_path)
    if not isinstance(doc, dict) or not isinstance(doc.get(lab.block), dict):
        raise ConfigError(f"{doc_path} has no '{lab.block}' block")
    return mf, config, doc


def expected_seeds(config, names, recorded=()) -> dict:
    return _lab_of_config(config).seeds(config, names, recorded)


# --- re-run

def rerun(config, names) -> tuple[dict, dict]:
    """(results document, results_summary) recomputed, BLAS pinned to one thread as in the runs."""
    with provenance.pin_blas_threads():
        return _lab_of_config(config).rerun(config, names)


def data_differences(mf: dict, config) -> list[str]:
    """The dataset rebuilt from the config against the manifest's data block (ablate runs since the
    data option; older manifests have none): its sha256, and where it differs, the generator's version."""
    block, dataset = mf.get("data"), _lab_of_config(config).dataset
    if not isinstance(block, dict) or "sha256" not in block or dataset is None:
        return []
    ds = dataset(config)
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
    """{name: array} of a results document, by its experiment's Lab."""
    try:
        return lab_of(doc).series(doc)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"the recorded results document is malformed ({type(e).__name__}: {e})") from None


def _value_equal(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    return a == b


def tolerance_of(tolerance) -> float | None:
    if tolerance is None:
        return None
    tol = _float("tolerance", tolerance)
    if tol < 0:
        raise ConfigError(f"tolerance must be >= 0, got {tolerance!r}")
    return tol


def run(path, tolerance=None, cells="all") -> int:
    tol = tolerance_of(tolerance)
    mf, lab = read(path)
    own = studies.load(lab.check) if lab.check else None
    if own:  # the study's own check; a bad manifest or cell list is one line before any re-run
        mf = own.prepare(path, cells)
    else:
        mf, config, doc = load(path)
    why = None
    pin = provenance.kernel_pin(mf["blas"] if isinstance(mf["blas"], dict) else {})
    if pin is not None:
        code, why = rerun_pinned(path, tolerance, pin, ["--cells", str(cells)])
        if code is not None:
            return code
    code = own.run(path, tol, cells) if own else compare(path, mf, config, doc, lab, tol)
    if why:
        print(why)
    return code


def compare(path, mf: dict, config, doc: dict, lab, tol: float | None) -> int:
    """Re-run the manifest and compare every series and value with the recorded document; print the verdict."""
    names = list(mf["config"].get("inits", []))
    now_doc, now_summary = rerun(config, names)
    rec_series = series_of(doc)
    now_doc, now_series, note = lab.align(doc, now_doc) if lab.align else (now_doc, series_of(now_doc), None)
    rec_scalars, now_scalars = scalars(doc, mf["results_summary"]), scalars(now_doc, now_summary)
    bad, near = data_differences(mf, config), []  # lines for series/values that differ beyond / within the tolerance
    for key in sorted(set(rec_series) | set(now_series)):
        if key not in rec_series or key not in now_series:
            bad.append(f"{key}: {'missing from the recorded results' if key not in rec_series else 'not recomputed'}")
            continue
        same, ab, rel, why = diff(rec_series[key], now_series[key])
        if same:
            continue
        line = f"{key}: {why}" if why else f"{key}: max abs diff {ab:.3g}, max rel diff {rel:.3g}"
        (near if tol is not None and not why and rel <= tol else bad).append(line)
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
    if note:
        print(note)
    return 1 if bad else 0


def rerun_pinned(path, tolerance, pin: dict, extra=()) -> tuple[int | None, str]:
    """The whole check again in a process whose BLAS runs the recorded kernel (OpenBLAS chooses it
    when it loads, so not in this process): (its exit code, a note). The code is None where that
    kernel cannot run on this CPU; the caller then compares under this machine's own kernel."""
    kernel, here = pin[provenance.KERNEL_ENV], provenance.blas()["architecture"]
    probe = subprocess.run([sys.executable, "-c", "from initstudy.record import provenance; "
                            "print(provenance.blas()['architecture'])"], env={**os.environ, **pin},
                           capture_output=True, text=True)
    used = probe.stdout.strip() if probe.returncode == 0 else None
    if used is not None and used.lower() != kernel.lower():  # OpenBLAS ignores a name it does not know
        return None, (f"BLAS kernel: the recorded {kernel} cannot be pinned here ({provenance.KERNEL_ENV}={kernel} "
                      f"left OpenBLAS on {used}); compared under this machine's {here}")
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
