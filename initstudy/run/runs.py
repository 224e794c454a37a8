"""The entry points end to end: validated config -> numerics -> artifacts -> MLflow.

One module per entry point (`initstudy.studies.<entry>.job`), each with HELP, add_arguments(parser) and
main(args); this package holds what they share.

One top-level run per command (the run `mlflow run` opened, or a new one); with init=all it is a
parent with one nested child per init. Runs are opened before the computation so that a failure or
a kill still closes them with a status; metrics go in a handful of batched calls per run.
"""
import contextlib
import dataclasses
import datetime
import json
import signal
import sys
import tempfile
from pathlib import Path

from initstudy.core import budget, inits

from initstudy import studies
from initstudy.record import keys, provenance, tracking
from initstudy.run import signals
from initstudy.core.config import one_of, parse


class Interrupted(Exception):
    """SIGTERM arrived: unwind, close the runs as KILLED, exit non-zero."""


class JobFailed(Exception):
    """The job ran but part of it failed (e.g. a sweep worker died): one line, exit 1."""


class TrackingLost(JobFailed):
    """The tracking server went away mid-run; what was computed is in a spool folder: one line, exit 1."""


def _on_sigterm(signum, frame):
    raise Interrupted(f"signal {signum}")


class RunSet(dict):
    """{'top': run id, name: run id}, plus what the job computed so far (flushed if it is
    interrupted) and the runs it already closed itself."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.partial = []  # (run id, key, value, step): metrics not yet recorded; mutated in place only
        self.closed = {}  # run id -> status, for runs the job ended itself
        self.before_flush = []  # callables run on interrupt before the flush (e.g. drain workers' queues)

    def on_step(self, name: str, key: str = keys.SERIES["loss"]):
        """A callback for a training loop: on_step(step, value) buffers one point for run `name`."""
        rid, buf = self[name], self.partial
        return lambda step, value: buf.append((rid, key, value, step))

    def log_partial(self, tracker, tags: dict | None = None):
        """Record the buffered points, one log call per run; they leave the buffer once recorded."""
        n, by_run = len(self.partial), {}
        for rid, key, value, step in self.partial[:n]:
            by_run.setdefault(rid, []).append((key, value, step))
        for rid, metrics in by_run.items():
            tracker.log(rid, metrics=metrics, tags=tags)
        del self.partial[:n]

    def flush_partial(self, tracker):
        """On interrupt: what the workers already sent, then every buffered point, tagged partial."""
        for drain in self.before_flush:
            try:
                drain()
            except Exception:  # a broken worker pipe must not keep the rest from being recorded
                pass
        self.log_partial(tracker, tags={"initstudy.partial": "true"})


LSUV_TAG = "initstudy.lsuv"  # "converged", or "failed: <the one line naming the layer>"


def lsuv_record(report) -> tuple[dict, list, dict]:
    """(params, metrics, tags) of a data-dependent init's rescaling (lsuv.Report; None: none of these):
    the batch's seed, whether it converged, the per-layer scales as a param (JSON) and a series (step = layer)."""
    if report is None:
        return {}, [], {}
    params = {"lsuv_batch_seed": report.batch_seed, "lsuv_converged": report.converged,
              "lsuv_scales": json.dumps(report.scales())}
    metrics = [(keys.series("lsuv_scale"), v, l) for l, v in enumerate(report.scales(), start=1)]
    return params, metrics, {LSUV_TAG: "converged" if report.converged else f"failed: {report.failure()}"}


def lsuv_manifest(group) -> dict:
    """The manifest's "lsuv" block {init: batch seed, tolerance, per-layer scales...}, for the results that have one."""
    block = {r.init: r.lsuv.as_dict() for r in group if getattr(r, "lsuv", None) is not None}
    return {"lsuv": block} if block else {}


def warn_lsuv(entry: str, results) -> None:
    """The one line a run whose LSUV did not converge prints (it still ends FINISHED, tagged)."""
    for r in results:
        report = getattr(r, "lsuv", None)
        if report is not None and not report.converged:
            print(f"{entry}: warning: init {r.init}: {report.failure()}; recorded as is (tag {LSUV_TAG})",
                  file=sys.stderr)


def init_names(choice: str) -> list[str]:
    """`all` is the lab's three (inits.LAB_INITS: committed projects depend on it), else registered schemes,
    one or a comma list ("orthogonal,lecun_normal": a parent with a child each, their figures side by side)."""
    if str(choice).strip() == "all":
        return list(inits.LAB_INITS)
    names = [n.strip() for n in str(choice).split(",") if n.strip()] or [choice]
    for n in names:
        one_of("init", n, ("all", *inits.INITS) if len(names) == 1 else tuple(inits.INITS))
    return list(dict.fromkeys(names))


@contextlib.contextmanager
def run_set(tracker, experiment: str, kind: str, names: list[str], tags: dict | None = None,
            child_tags: dict | None = None, record_in: str | None = None, top: str | None = None, child_name=None,
            params: dict | None = None):
    """Open the top-level run and (for several names, or whenever child_tags {name: tags} is given)
    one child per name; yield a RunSet {'top', name: id}. Close each with FINISHED, FAILED on error,
    KILLED on Ctrl-C or SIGTERM (after flushing the points computed so far). The runs record into
    the MLflow experiment `record_in` (default: the lab's, `experiment`) unless the user named one.
    `top`: an existing run to continue instead (a resumed sweep's parent, set RUNNING again);
    child_name(name): the run name of a child (default "<kind>-<name>"); params: what the top run will log
    as it ran (a launcher run `mlflow run` filled with other values is left as a pointer, Tracker.start_run).
    A lost tracking server: the open runs go to a spool folder as KILLED (record/spool.py), TrackingLost names it."""
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    base = {tracking.EXPERIMENT_TAG: experiment, **(tags or {})}
    single = len(names) == 1 and child_tags is None
    ids, status = RunSet(), "FINISHED"
    try:  # opened inside the try: a signal at any moment closes every run opened so far
        with signals.held():  # a signal raised inside MLflow's session breaks the request, not the loop
            ids["top"] = _open_top(tracker, experiment, kind, names, base, single, record_in, top, params)
        for name in names:
            with signals.held():
                extra = (child_tags or {}).get(name, {tracking.INIT_TAG: name})
                ids[name] = ids["top"] if single else tracker.start_run(
                    child_name(name) if child_name else f"{kind}-{name}", record_in or experiment, parent=ids["top"],
                    tags={**base, tracking.ROLE_TAG: "child", **extra})
        yield ids
    except (KeyboardInterrupt, Interrupted):
        status = "KILLED"
        # a second signal while we flush and close must not leave runs RUNNING
        signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ids.flush_partial(tracker)
        raise
    except BaseException as e:
        status = "FAILED"
        if tracking.unreachable(e):  # the server is lost: what was computed goes to a spool folder
            tracker.down, status = tracker.down or e, "KILLED"
            ids.flush_partial(tracker)
        raise
    finally:
        with signals.held():  # every run is closed before a late signal is acted on
            for rid in dict.fromkeys(ids.values()):
                if rid not in ids.closed:
                    tracker.end(rid, status)
            if status == "KILLED":
                tracker.close_launcher(set(ids.values()))
        signal.signal(signal.SIGTERM, old_term)
        if tracker.down is not None and ids.get("top"):  # no run opened: nothing computed, the error says it all
            _spooled(tracker)


def _spooled(tracker):
    """The open runs written to a spool folder; the one line says where and how to record them."""
    folder = tracker.spool()
    lost = tracking.describe_error(tracker.down).split("; start it")[0]
    raise TrackingLost(f"{lost}; what was computed is kept in {folder}: record it "
                       f"once the server is back with `initstudy sync {folder} --to {tracking.redact_uri(tracker.uri)}`"
                       ) from None


def _open_top(tracker, experiment, kind, names, base, single, record_in, top, params):
    """The top run, tagged with this process as its owner (host, PID, start): a new one, or `top`
    reopened (a resumed sweep's parent)."""
    owner = signals.owner_tags()
    if top is not None:
        tracker.reopen(top)
        tracker.log(top, tags=owner)
        return top
    return tracker.start_run(f"{kind}-{names[0]}" if single else kind, record_in or experiment, tags={
        **base, tracking.ROLE_TAG: "single" if single else "parent", **({tracking.INIT_TAG: names[0]} if single else {}),
        **owner}, describe=studies.face, params=params)


def mlflow_block(tracker, ids: dict) -> dict:
    run = tracker.client.get_run(ids["top"])
    return {
        "tracking_uri": tracking.redact_uri(tracker.uri),
        "experiment_id": run.info.experiment_id,
        "parent_run_id": ids["top"] if len(ids) > 2 else None,
        "run_ids": {k: v for k, v in ids.items() if k != "top"},
    }


def common_params(config: dict, prov: dict, **run_params) -> dict:
    """The config and the run's own params (seeds, init, ...), then the provenance ones: `mlflow ui`
    (3.17) lists a run's params in the order they were logged (measured), so the config leads."""
    return {**config, **run_params, **provenance_params(prov)}


def provenance_params(prov: dict) -> dict:
    return {**provenance.flatten({k: prov[k] for k in ("versions", "hardware", "blas", "git")}),
            "blas.threads_pinned": provenance.BLAS_THREADS}


def groups(ids: dict, out: dict):
    """(run id, results it holds): the parent holds every init, a child or single run its own."""
    for key, rid in ids.items():
        if key != "top":
            yield rid, [out[key]]
        elif len(out) > 1:
            yield rid, list(out.values())


def record(tracker, rid, params: dict, metrics: list, artifacts: dict, tags: dict | None = None):
    """One batched log call for params, metrics and tags; artifacts written by `artifacts[name](path)`."""
    tracker.log(rid, params=params, metrics=metrics, tags=tags)
    with tempfile.TemporaryDirectory() as tmp:
        for name, write in artifacts.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)  # "signal/jacobian.png": a folder
            write(Path(tmp) / name)
        tracker.log_artifacts(rid, tmp)


def write_text(text):
    return lambda path: path.write_text(text)


def today() -> str:
    return datetime.date.today().isoformat()


def summary_metrics(summary: dict) -> list:
    """A run's summary numbers as step-0 metrics, under the same keys on every run of a lab; None
    (does not apply) is left out, strings are tags, not metrics (Tracker.log drops non-finite values)."""
    return [(k, v, 0) for k, v in summary.items() if v is not None and not isinstance(v, str)]


def layer_series(diag_steps, diag: dict, layers=None) -> list:
    """The per-layer statistics over training: `<stat>/Lnn`, step = training step (L01 the first block);
    `layers`: only those blocks (None: every one)."""
    return [(keys.layer(stat, l), v, step) for stat, table in diag.items()
            for row, step in zip(table, diag_steps) for l, v in enumerate(row, start=1) if layers is None or l in layers]


def depth_profiles(diag: dict) -> list:
    """Each statistic across depth in one chart, at the first and the last diagnostics row:
    `<stat>/by_layer_init|end`, step = layer index."""
    return [(keys.profile(stat, when), v, l) for stat, table in diag.items() if len(table)
            for when, row in zip(keys.PROFILES, (table[0], table[-1])) for l, v in enumerate(row, start=1)]


def finish(tracker, ids: dict, notes: dict):
    """Each run's description ({run id: text}); returns the top run's link in `mlflow ui` and, on a
    second line, its experiment's chart view's."""
    for rid, text in notes.items():
        tracker.log(rid, tags={tracking.NOTE_TAG: text})
    return tracker.links(ids["top"])


def add_common_arguments(parser, config_cls, init: bool = True):
    """--init (unless the study has none), --tracking-uri and one --<field> per config field (all
    strings, validated later)."""
    if init:
        parser.add_argument("--init", default="all", help="all (the lab's uniform, xavier, kaiming), one init scheme, or a comma list")
    parser.add_argument("--tracking-uri", "--tracking_uri", dest="tracking_uri", default=None)
    for f in dataclasses.fields(config_cls):
        flags = dict.fromkeys([f"--{f.name}", f"--{f.name.replace('_', '-')}"])
        parser.add_argument(*flags, dest=f.name, default=None, metavar="VALUE", help=f"default {f.default!r}")


def parsed_config(config_cls, args):
    """config_cls from the command line's values (an option left out keeps the field's default)."""
    return parse(config_cls, {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)
                              if getattr(args, f.name) is not None})


def config_from_args(config_cls, args):
    """The validated config; init is checked here too, so nothing starts on bad input."""
    if hasattr(args, "init"):
        init_names(args.init)
    config = parsed_config(config_cls, args)
    budget.check(config)  # a size the machine cannot hold: one line, no run opened
    return config

