"""Export: finished MLflow runs -> the committed lab folders (projects/<experiment>/), one per study with a lab.

A lab folder is rebuilt from one complete set of runs (its study's Lab says which: a parent with a
child per init or one single run per init with the same config; one run; one parent run): the
results document and manifest read back from the runs' artifacts, the plot re-drawn from that
document, the README written from its numbers, and a short script that re-runs the manifest and
compares. The same runs always give the same bytes. Nothing here names a study: the registry does.

Everything is checked before anything is written; a folder is written beside its target and
renamed into place, so an interrupted export leaves the old folder (or none), never half of one.
"""
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from initstudy import studies
from initstudy.core import inits
from initstudy.core.config import ConfigError
from initstudy.publish import readme
from initstudy.record import manifest, results, tracking

HELP = "write the lab folders (projects/<experiment>/) from finished MLflow runs"


def lab(experiment: str):
    """The study's Lab of `experiment` (a key of studies.with_lab())."""
    return studies.with_lab()[experiment].part("lab")


def whole(experiment: str) -> bool:
    """One run (or one parent) is the whole study: the folder is that run's."""
    return lab(experiment).runs in ("run", "parent")

SCRIPT_DOC = '''Re-run {doc} from the manifest.json beside this file and compare every series with
{results} bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python {script}                   # this machine: bit for bit
    python {script} --tolerance 1e-6  # another machine: relative tolerance, lists what differs
'''
SCRIPT = '''"""{doc}"""
import sys
from pathlib import Path

from initstudy.publish import reproduce

if __name__ == "__main__":
    sys.exit(reproduce.cli([str(Path(__file__).with_name("manifest.json")), *sys.argv[1:]], prog="{script}"))
'''


def script(lab_) -> str:
    """The folder's script: its docstring (the Lab's usage, else SCRIPT_DOC) over the one body every lab's shares."""
    doc = (lab_.usage or SCRIPT_DOC).format(doc=lab_.script_doc, results=lab_.results, script=lab_.script)
    return SCRIPT.format(doc=doc, script=lab_.script)


def add_arguments(parser):
    parser.add_argument("--run-id", "--run_id", dest="run_ids", action="append", default=[], metavar="ID",
                        help="a parent run, or one run per init (repeat); default: the newest complete set per lab")
    parser.add_argument("--out", default="projects",
                        help="folder that receives <experiment>/ (default projects; a relative path must stay "
                             "inside ./projects)")
    parser.add_argument("--force", action="store_true", help="replace an existing folder (atomically)")
    parser.add_argument("--allow-unfinished", "--allow_unfinished", dest="allow_unfinished", action="store_true",
                        help="accept runs that are not FINISHED")
    parser.add_argument("--tracking-uri", "--tracking_uri", dest="tracking_uri", default=None)


def main(args):
    uri = tracking.resolve_uri(args.tracking_uri)
    missing = tracking.missing_local_store(uri)
    if missing is not None:
        raise ConfigError(f"tracking store {tracking.redact_uri(uri)} does not exist (no {missing}); "
                          "give --tracking-uri or set MLFLOW_TRACKING_URI")
    root = out_root(args.out)
    writable(root, args.out)
    tracker = tracking.Tracker(uri)
    sets = find_sets(tracker, args.run_ids) if args.run_ids else newest_sets(tracker, args.allow_unfinished)
    for s in sets:
        check_set(s, args.allow_unfinished)
    targets = {s.experiment: root / s.experiment for s in sets}
    for t in targets.values():
        if t.exists() and not args.force:
            raise ConfigError(f"{t} exists; pass --force to replace it")
    with tempfile.TemporaryDirectory() as tmp:
        folders = {s.experiment: build_folder(tracker, s, Path(tmp)) for s in sets}
    for experiment, files in folders.items():
        try:
            write_atomic(targets[experiment], files)
        except OSError as e:  # the checks above passed, the disk said no (full, a race): nothing half-written
            raise ConfigError(f"--out {args.out}: cannot write {targets[experiment]} ({e.strerror})") from None
        print(f"export_run: wrote {targets[experiment]} from run(s) {', '.join(sets_ids(sets, experiment))}")


# --- where the folders go

def out_root(out: str) -> Path:
    """An absolute --out is taken as given; a relative one must resolve inside ./projects."""
    path = Path(out)
    if path.is_absolute():
        return path
    projects = (Path.cwd() / "projects").resolve()
    resolved = (Path.cwd() / path).resolve()
    if resolved != projects and projects not in resolved.parents:
        raise ConfigError(f"--out {out} resolves to {resolved}, outside {projects}; "
                          "give a path inside projects/ or an absolute path")
    return resolved


def writable(root: Path, out: str):
    """--out must be a folder this process can write in, or one it can create: checked before any run is
    read (a file, a path under a file, a read-only filesystem, an immutable folder: one line)."""
    p = root
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise ConfigError(f"--out {out}: {p} is a file, not a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: cannot write in {p} (read-only filesystem, immutable folder or no permission)")


def write_atomic(target: Path, files: dict):
    """Write files into a fresh folder beside target, then rename it into place (replacing target)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        os.chmod(tmp, 0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, old / target.name)
            os.rename(tmp, target)
            shutil.rmtree(old)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --- which runs

@dataclass
class RunSet:
    experiment: str
    parent: object  # the parent run, or None for a set of single runs
    runs: dict  # init -> run


def sets_ids(sets, experiment):
    s = next(s for s in sets if s.experiment == experiment)
    return [s.parent.info.run_id] if s.parent else [r.info.run_id for r in s.runs.values()]


def _tag(run, key):
    return run.data.tags.get(key)


def _children(tracker, parent) -> list:
    return tracker.search(f"tags.`{tracking.PARENT_TAG}` = '{parent.info.run_id}'")


def _complete(runs: dict) -> bool:
    return all(i in runs for i in inits.LAB_INITS)


def complete_sets(tracker, experiment: str, allow_unfinished: bool) -> list:
    """Every complete set of a lab, newest first: a parent whose children cover every init, or
    single runs (the newest per init) with identical params apart from init and weight seed."""
    runs = tracker.search(f"tags.`{tracking.EXPERIMENT_TAG}` = '{experiment}'")
    ok = [r for r in runs if allow_unfinished or r.info.status == "FINISHED"]
    candidates = []  # (start time of its newest run, set)
    by_parent = {}
    for r in ok:
        if _tag(r, tracking.PARENT_TAG):
            by_parent.setdefault(_tag(r, tracking.PARENT_TAG), {}).setdefault(_tag(r, tracking.INIT_TAG), r)
    for r in ok:
        if _tag(r, tracking.ROLE_TAG) == "parent" and _complete(by_parent.get(r.info.run_id, {})):
            candidates.append((r.info.start_time, RunSet(experiment, r, by_parent[r.info.run_id])))
    singles = {}
    for r in ok:  # newest first, so setdefault keeps the newest per init
        if _tag(r, tracking.ROLE_TAG) == "single":
            singles.setdefault(_config_key(r), {}).setdefault(_tag(r, tracking.INIT_TAG), r)
    for group in singles.values():
        if _complete(group):
            candidates.append((max(r.info.start_time for r in group.values()),
                               RunSet(experiment, None, {i: group[i] for i in inits.LAB_INITS})))
    return [c[1] for c in sorted(candidates, key=lambda c: c[0], reverse=True)]


PER_INIT_PARAMS = ("init", "weight_seed", "sigma_w2", "weight_variance", "bias_seed")
PER_INIT_SEEDS = ("weights/", "biases/")  # manifest seeds that differ between the inits of one set


def _config_key(run) -> tuple:
    """The run's config params (provenance params have dotted names; init and weights excluded)."""
    return tuple(sorted((k, v) for k, v in run.data.params.items() if "." not in k
                        and k not in PER_INIT_PARAMS))


def _params(s: RunSet) -> dict:
    return (s.parent or next(iter(s.runs.values()))).data.params


def newest_sets(tracker, allow_unfinished: bool) -> list:
    """Per lab, the newest complete set (where its Lab prefers some, e.g. the linear walk, the newest of those)."""
    out = []
    for experiment in studies.with_lab():
        if whole(experiment):
            runs = [r for r in tracker.search(f"tags.`{tracking.EXPERIMENT_TAG}` = '{experiment}'")
                    if (allow_unfinished or r.info.status == "FINISHED")
                    and (lab(experiment).runs == "run" or _tag(r, tracking.ROLE_TAG) == "parent")]
            out += [RunSet(experiment, None, {experiment: runs[0]})] if runs else []
            continue
        sets = complete_sets(tracker, experiment, allow_unfinished)
        if lab(experiment).prefer:
            sets = [s for s in sets if lab(experiment).prefer(_params(s))] or sets
        if sets:
            out.append(sets[0])
    if not out:
        raise ConfigError(f"no complete {' or '.join(studies.with_lab())} set of {'' if allow_unfinished else 'FINISHED '}"
                          f"runs in {tracking.redact_uri(tracker.uri)}; run `mlflow run . -e walk --env-manager local` first")
    return out


def companion(tracker, s: RunSet):
    """The newest finished set the README quotes beside this one (lab 00's linear walk: the ReLU walk of
    the same shape and seed), or None."""
    quotes = lab(s.experiment).companion
    if quotes is None:
        return None
    p = _params(s)
    return next((other for other in complete_sets(tracker, s.experiment, False) if quotes(p, _params(other))), None)



def find_sets(tracker, run_ids: list) -> list:
    """The sets named by --run-id: a parent stands for its children; other runs count one per init."""
    parents, members = {}, {}
    for rid in dict.fromkeys(run_ids):
        run = tracker.get_run(rid)
        if run is None:
            raise ConfigError(f"unknown run id {rid} in {tracking.redact_uri(tracker.uri)}")
        experiment = _tag(run, tracking.EXPERIMENT_TAG)
        if experiment not in studies.with_lab():
            raise ConfigError(f"run {rid} is not a {' or '.join(studies.with_lab())} run (tag {tracking.EXPERIMENT_TAG} "
                              f"is {experiment!r})")
        if lab(experiment).runs == "parent" and _tag(run, tracking.ROLE_TAG) != "parent":
            raise ConfigError(f"run {rid} is one cell of a {experiment} study; give its parent run "
                              f"({_tag(run, tracking.PARENT_TAG)})")
        if whole(experiment):
            if experiment in members:
                raise ConfigError(f"two {experiment} runs given: {members[experiment][0].info.run_id}, {rid}")
            members[experiment] = [run]
        elif _tag(run, tracking.ROLE_TAG) == "parent":
            if experiment in parents:
                raise ConfigError(f"two {experiment} parent runs given: {parents[experiment].info.run_id}, {rid}")
            parents[experiment] = run
        else:
            members.setdefault(experiment, []).append(run)
    sets = [RunSet(e, None, {e: members[e][0]}) for e in studies.with_lab() if whole(e) and e in members]
    for experiment in studies.with_lab():
        if whole(experiment):
            continue
        if experiment in parents and experiment in members:
            raise ConfigError(f"{experiment}: give either a parent run or one run per init, not both")
        parent = parents.get(experiment)
        runs = _children(tracker, parent) if parent else members.get(experiment)
        if not runs:
            continue
        by_init = {}
        for r in runs:
            init = _tag(r, tracking.INIT_TAG)
            if init in by_init:
                raise ConfigError(f"{experiment}: two runs for init {init}: {by_init[init].info.run_id}, "
                                  f"{r.info.run_id}")
            by_init[init] = r
        missing = [i for i in inits.LAB_INITS if i not in by_init]
        if missing:
            raise ConfigError(f"{experiment}: the set has no run for init {', '.join(missing)} "
                              f"(a lab folder needs {', '.join(inits.LAB_INITS)})")
        sets.append(RunSet(experiment, parent, {i: by_init[i] for i in inits.LAB_INITS}))
    return sets


def check_set(s: RunSet, allow_unfinished: bool):
    if allow_unfinished:
        return
    for label, run in ([("parent", s.parent)] if s.parent else []) + list(s.runs.items()):
        if run.info.status != "FINISHED":
            raise ConfigError(f"run {run.info.run_id} ({s.experiment} {label}) is {run.info.status}, not FINISHED; "
                              "pass --allow-unfinished to export it anyway")


# --- what goes in the folder

def _artifact(tracker, run, name: str, tmp: Path) -> Path:
    try:
        return tracker.download(run.info.run_id, name, tmp / run.info.run_id)
    except Exception as e:  # MLflow raises several kinds for a missing artifact
        if tracking.describe_error(e) is None and not isinstance(e, OSError):
            raise
        raise ConfigError(f"run {run.info.run_id} has no readable artifact {name}") from None


def _read_manifest(tracker, run, tmp) -> dict:
    path = _artifact(tracker, run, "manifest.json", tmp)
    try:
        mf = manifest.read(path)
        if mf["experiment"] in studies.with_lab() and lab(mf["experiment"]).runs == "inits":
            manifest.need_inits(mf)
        return mf
    except manifest.ManifestError as e:
        raise ConfigError(f"run {run.info.run_id}: {str(e).replace(str(path), 'manifest.json')}") from None


def _read_doc(tracker, run, name, tmp) -> dict:
    path = _artifact(tracker, run, name, tmp)
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"run {run.info.run_id}: {name} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inits"), dict):
        raise ConfigError(f"run {run.info.run_id}: {name} has no 'inits' block")
    return doc


def _same_config(experiment, manifests: dict):
    """Runs of one set must agree on config (but init) and on every seed but the per-init ones (weights, biases)."""
    def key(m):
        return ({k: v for k, v in m["config"].items() if k != "inits"},
                {k: v for k, v in m["seeds"].items() if not k.startswith(PER_INIT_SEEDS)})

    (first_init, first), *rest = manifests.items()
    for init, m in rest:
        for part, a, b in zip(("config", "seeds"), key(first), key(m)):
            diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            if diff:
                shown = ", ".join(f"{k} ({a.get(k)!r} in {first_init}, {b.get(k)!r} in {init})" for k in diff)
                raise ConfigError(f"{experiment}: the runs differ in {part} other than init: {shown}")


def build_folder(tracker, s: RunSet, tmp: Path) -> dict:
    """{file name: bytes} of the lab folder."""
    lab_ = lab(s.experiment)
    if whole(s.experiment):
        run, mf, doc = _study_run(tracker, s, lab_, tmp)
        extra = ()
    else:
        mf, doc = _set_documents(tracker, s, lab_, tmp)
        other = companion(tracker, s)
        extra = (read_doc(tracker, other, lab_.results, tmp), sets_ids([other], s.experiment)) if other else ()
    with tempfile.TemporaryDirectory() as d:
        png = Path(d) / lab_.plot
        studies.load(lab_.draw)(doc, png)
        image = png.read_bytes()
    return {
        lab_.script: script(lab_).encode(),
        lab_.results: results.dumps(doc).encode(),
        lab_.plot: image,
        "manifest.json": manifest.dumps(mf).encode(),
        "README.md": readme.render(studies.with_lab()[s.experiment].name, doc, mf, *extra).encode(),
    }


def _set_documents(tracker, s: RunSet, lab_, tmp: Path) -> tuple:
    """(manifest as a reader sees it, results document) of a set of runs per init: the parent's, or the
    single runs' merged; every init's run must agree on the config and seeds."""
    manifests = {i: _read_manifest(tracker, r, tmp) for i, r in s.runs.items()}
    _same_config(s.experiment, manifests)
    if s.parent:
        mf = _read_manifest(tracker, s.parent, tmp)
        _same_config(s.experiment, {"parent": mf, **manifests})
    else:
        mf = merge_manifests(manifests, s)
    mf = public_store(mf)
    doc = read_doc(tracker, s, lab_.results, tmp)
    missing = [i for i in inits.LAB_INITS if i not in doc["inits"] or i not in mf["config"]["inits"]]
    if missing:
        raise ConfigError(f"{s.experiment}: the runs' {lab_.results}/manifest.json hold no {', '.join(missing)}")
    return mf, doc


def public_store(mf: dict) -> dict:
    """The manifest as a reader sees it: a tracking server named as the user gave it (without
    credentials), a local store (a path on the machine that ran it) left out; the run ids stay."""
    m = dict(mf["mlflow"])
    uri = m.pop("tracking_uri", None)
    if uri and uri.startswith(("http://", "https://")):
        m["tracking_uri"] = tracking.redact_uri(uri)
    return {**mf, "mlflow": m}


def _study_run(tracker, s: RunSet, lab_, tmp: Path) -> tuple:
    """(run, manifest as a reader sees it, results document) of a study that is one run (or one parent)."""
    (run,) = s.runs.values()
    mf = public_store(_read_manifest(tracker, run, tmp))
    path = _artifact(tracker, run, lab_.results, tmp)
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"run {run.info.run_id}: {lab_.results} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("experiment") != s.experiment or not doc.get(lab_.block):
        raise ConfigError(f"run {run.info.run_id}: {lab_.results} is not a {s.experiment} results document")
    return run, mf, doc


def read_doc(tracker, s: RunSet, name: str, tmp) -> dict:
    """The set's results document: the parent's, or the single runs' merged in init order."""
    if s.parent:
        return _read_doc(tracker, s.parent, name, tmp)
    docs = {i: _read_doc(tracker, r, name, tmp) for i, r in s.runs.items()}
    out = {**docs[next(iter(docs))], "inits": {i: d["inits"][i] for i, d in docs.items() if i in d["inits"]}}
    if "signal" in out:  # the walk's signal block: per init too
        out["signal"] = {**out["signal"], "inits": {i: d["signal"]["inits"][i] for i, d in docs.items()
                                                    if i in d.get("signal", {}).get("inits", {})}}
    return out


def merge_manifests(manifests: dict, s: RunSet) -> dict:
    """One manifest for a set of single runs: the first init's provenance, every init's seeds and summary."""
    first = manifests[next(iter(manifests))]
    out = json.loads(json.dumps(first))
    out["date"] = max(m["date"] for m in manifests.values())
    out["config"]["inits"] = list(manifests)
    out["seeds"] = {**{k: v for k, v in first["seeds"].items() if not k.startswith(PER_INIT_SEEDS)},
                    **{k: v for i, m in manifests.items() for k, v in m["seeds"].items()
                       if k in (f"weights/{i}", f"biases/{i}")}}
    out["results_summary"] = {k: v for m in manifests.values() for k, v in m["results_summary"].items()}
    out["mlflow"] = {**first["mlflow"], "parent_run_id": None,
                     "run_ids": {i: r.info.run_id for i, r in s.runs.items()}}
    return out


def run_cli(argv=None, prog="export_run") -> int:
    """scripts/export_run.py: one line on bad input (exit 2), like the initstudy command."""
    from initstudy.run.cli import run_tool

    return run_tool(prog, __doc__.split("\n\n")[0], add_arguments, main, argv)
