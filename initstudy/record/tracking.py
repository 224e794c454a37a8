"""The only module that talks to MLflow: runs, nested runs, batched metrics, artifacts, datasets.

`import mlflow` costs seconds, so it happens here, after the input has been validated. Metrics are
always sent with log_batch (one call per ~1000 points), never point by point.
"""
import math
import os
import time

from initstudy.record import palette

PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_TAG = "initstudy.experiment"  # the lab a run belongs to, whatever MLflow experiment holds it
ROLE_TAG = "initstudy.role"  # parent | child | single
INIT_TAG = "initstudy.init"
OUTCOME_TAG = "initstudy.outcome"
NOTE_TAG = "mlflow.note.content"  # the description `mlflow ui` shows on an experiment or a run
KIND_TAG = "mlflow.experimentKind"  # 3.17's UI ignores it (its kind follows the workflowType toggle); set for later UIs
LAUNCHER_TAG = "initstudy.launcher_run"  # on a run recorded in the lab's experiment instead of `mlflow run`'s
MOVED_TAG = "initstudy.moved_to"  # on `mlflow run`'s own run in Default, deleted, pointing at the real one
SOURCE_TAGS = ("mlflow.source.", "mlflow.user", "mlflow.gitRepoURL", "mlflow.project.")  # provenance a child inherits
COLOR_TAG = "mlflow.runColor"  # the run's colour in `mlflow ui`'s charts and table (3.17 honours it)
VIEW_TAG = "mlflow.sharedViewState."  # + key: an experiment's shared chart view, opened by ?viewStateShareKey=key
UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default

# An unreachable server must fail within seconds, not after MLflow's minutes of retries. Measured,
# under load: refused connection ~5 s in all; a host that accepts but never answers, 2 x timeout +
# backoff + start-up (timeout 5: 17.8 s, hence 3). A user's own values win.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")  # an int: MLflow reads it so
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
# With tqdm installed MLflow draws a progress bar per artifact download on stderr: export's output is
# one line per folder, and an error one line (tests/test_export.py)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class Tracker:
    def __init__(self, tracking_uri: str | None = None):
        import mlflow
        from mlflow.tracking import MlflowClient

        from initstudy.record import spool

        self.uri = _credentials_to_env(tracking_uri or mlflow.get_tracking_uri())
        with _store_lock(self.uri):  # a new SQLite store's tables are created by one process at a time
            self.client = MlflowClient(self.uri)
        self.journal = spool.Journal()  # what the open runs were sent: spooled if the server is lost
        self.down = None  # the error that found the tracking server unreachable, once it has
        self._names = {}  # experiment id -> name (the spool names experiments, not ids)

    def experiment_id(self, lab: str, describe=None) -> str:
        """The experiment the user named (MLFLOW_EXPERIMENT_ID, else MLFLOW_EXPERIMENT_NAME), else the lab's."""
        if os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        return self._experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or lab, describe)

    def _experiment(self, name: str, describe=None) -> str:
        """The id of experiment `name`, created on first use (a lab's with its description: describe(name),
        None for one that is no lab's). Race-safe: processes creating it at once all but one fail the
        store's unique name; they look it up again."""
        from mlflow.exceptions import MlflowException

        from initstudy.core.config import ConfigError

        face = describe(name) if describe else None
        for attempt in range(3):
            exp = self.client.get_experiment_by_name(name)
            if exp is not None:
                if exp.lifecycle_stage == "deleted":
                    raise ConfigError(f"experiment {name!r} (id {exp.experiment_id}) is deleted in this store; restore "
                                      f"it (mlflow experiments restore --experiment-id {exp.experiment_id}) or name "
                                      "another with MLFLOW_EXPERIMENT_NAME")
                self._describe(exp.experiment_id, face, exp.tags)
                return exp.experiment_id
            try:
                experiment_id = self.client.create_experiment(
                    name, tags={KIND_TAG: "custom_model_development"} if face else {})
                self._describe(experiment_id, face, {})
                return experiment_id
            except MlflowException as e:
                if attempt == 2 or not (_duplicate_key(e) or e.error_code == "RESOURCE_ALREADY_EXISTS"):
                    raise

    def _describe(self, experiment_id: str, face, present: dict):
        """A lab's experiment (face: labs.Face, None for one of no lab): its description (its links need the
        id, so set after creating it; one someone edited in the UI is kept), its kind, and its shared chart
        view (ours: rewritten)."""
        from initstudy.record import labs

        if face:
            tags = {NOTE_TAG: labs.full_description(face.view, experiment_id, face.text),
                    KIND_TAG: "custom_model_development"}
            for k, v in tags.items():
                if k not in present:
                    self.client.set_experiment_tag(experiment_id, k, v)
            self.share_view(experiment_id, face.view)

    def share_view(self, experiment_id: str, view):
        """A lab's chart view (labs.View: log y, headline first, per-layer sections folded) as the
        experiment's shared view, opened by view_link(); nothing for None (an experiment of no lab)."""
        import json

        from initstudy.record import labs

        if view is not None:
            self.client.set_experiment_tag(experiment_id, VIEW_TAG + labs.VIEW_KEY, json.dumps(view.state()))

    def start_run(self, name: str, lab: str, parent: str | None = None, tags: dict | None = None,
                  describe=None, params: dict | None = None) -> str:
        """A run to record into: a child of `parent` when given; else the run `mlflow run` opened
        (MLFLOW_RUN_ID), or a new one in the lab's experiment when `mlflow run` opened its run in
        Default without the user naming it (see launcher_in_default), or when the params `mlflow run`
        logged there are not what runs (`params`, resolved: a preset changed a default); else a new
        run. An experiment created on the way gets its description and view, describe(name) (a labs.Face);
        the experiment recorded in gets the lab's view. A run of one init is drawn in its colour
        (palette.py), a parent in grey."""
        face = describe(lab) if describe else None
        view = face.view if face else None
        tags = {k: str(v) for k, v in (tags or {}).items()}
        color = palette.init_color(tags.get(INIT_TAG, "")) if tags.get(ROLE_TAG) != "parent" else palette.PARENT
        tags = {**({COLOR_TAG: color} if color else {}), **tags}
        if parent is None and os.environ.get("MLFLOW_RUN_ID"):
            run_id = os.environ["MLFLOW_RUN_ID"]
            stale = self.stale_params(run_id, params or {})
            if self.launcher_in_default(run_id):
                return self.adopt(self._move_launcher(run_id, name, view, tags, stale, self._experiment(lab, describe)))
            experiment_id = self.client.get_run(run_id).info.experiment_id
            if stale:
                return self.adopt(self._move_launcher(run_id, name, view, tags, stale, experiment_id))
            self.adopt(run_id)
            self.log(run_id, tags={"mlflow.runName": name, **tags})
            self.share_view(experiment_id, view)
            return run_id
        if parent is not None:  # a child carries its parent's source, git and user tags
            top = self.client.get_run(parent)
            tags = {**{k: v for k, v in top.data.tags.items() if k.startswith(SOURCE_TAGS)}, **tags, PARENT_TAG: parent}
            experiment_id = top.info.experiment_id
        else:  # what MLflow's fluent API would add: source, git, and the user (the OS's: MLflow's
            # would be the tracking server's login, from a URI's user:password@, which we never record)
            import getpass

            from mlflow.tracking.context.registry import resolve_tags

            tags = {**resolve_tags(), "mlflow.user": getpass.getuser(), **tags}
            experiment_id = self.experiment_id(lab, describe)
            self.share_view(experiment_id, view)
        run_id = self._send(self.client.create_run, experiment_id, run_name=name, tags=tags).info.run_id
        self.journal.start(run_id, self._name(experiment_id), name, tags, parent=parent)
        return run_id

    def adopt(self, run_id: str) -> str:
        """An existing run (the launcher's, a resumed parent) into the journal, with its tags and params."""
        run = self.client.get_run(run_id)
        self.journal.start(run_id, self._name(run.info.experiment_id), run.info.run_name, run.data.tags,
                           run.data.params, run.data.tags.get(PARENT_TAG), run.info.start_time)
        return run_id

    def _name(self, experiment_id: str) -> str:
        if experiment_id not in self._names:
            self._names[experiment_id] = self.client.get_experiment(experiment_id).name
        return self._names[experiment_id]

    def _send(self, call, *args, **kwargs):
        """A request to the store. The first that finds the server unreachable marks it down and is raised;
        a write after that goes to the journal only (no more waiting on a lost server)."""
        if self.down is not None:
            return None
        try:
            return call(*args, **kwargs)
        except Exception as e:
            if unreachable(e):
                self.down = e
            raise

    def stale_params(self, run_id: str, params: dict) -> set:
        """The params run_id holds with another value than `params` (what runs): `mlflow run` logs
        MLproject's defaults before a preset is resolved. "1" and "1.0" say the same."""
        present = self.client.get_run(run_id).data.params
        return {k for k, v in params.items() if k in present and not _same(present[k], v)}

    def launcher_in_default(self, run_id: str) -> bool:
        """`mlflow run` opened run_id in Default because the user named no experiment. `mlflow run`
        sets MLFLOW_EXPERIMENT_ID for us either way, so the user's choice is read where they made it:
        MLFLOW_EXPERIMENT_NAME/_ID in the launching `mlflow run` process's environment, or
        --experiment-name/-id on its command line."""
        if os.environ.get("MLFLOW_EXPERIMENT_NAME"):
            return False
        exp = self.client.get_experiment(self.client.get_run(run_id).info.experiment_id)
        if exp.name != "Default":
            return False
        launcher = _mlflow_run_process()
        if launcher is None:  # not started by `mlflow run` as we know it: record where it put us
            return False
        argv, env = launcher
        chose = any(a.startswith(("--experiment-name", "--experiment-id")) for a in argv)
        return not chose and not env.get("MLFLOW_EXPERIMENT_NAME") and not env.get("MLFLOW_EXPERIMENT_ID")

    def _move_launcher(self, run_id: str, name: str, view, tags: dict, stale: set, experiment_id: str) -> str:
        """A new run in experiment_id with the launcher run's params (but the `stale` ones, which the
        job logs as they ran) and tags (source, git, user, project). The launcher run stays as a
        pointer: tagged with the new run's id, its description links there (relative: any host and
        port). It cannot be deleted: `mlflow run` marks its run terminated after we exit whatever we
        did (3.17 passes the status name to RunStatus.is_terminated, which expects a number), and the
        store refuses that on a deleted run (exit 1, traceback; measured)."""
        from mlflow.entities import Param, RunTag

        launcher = self.client.get_run(run_id)
        kept = {k: v for k, v in launcher.data.tags.items() if k not in ("mlflow.runName", NOTE_TAG, COLOR_TAG)}
        new = self.client.create_run(experiment_id, run_name=name,
                                     tags={**kept, **tags, LAUNCHER_TAG: run_id}).info.run_id
        self.client.log_batch(new, params=[Param(k, v) for k, v in launcher.data.params.items() if k not in stale])
        self.share_view(experiment_id, view)
        where = self.client.get_experiment(experiment_id).name
        why = ("This run is the one `mlflow run` opened in Default; it holds nothing else." if not stale else
               f"`mlflow run` opened this run and logged MLproject's defaults of {', '.join(sorted(stale))} before "
               "the preset was resolved; the run that ran holds the values it ran with.")
        self.client.log_batch(run_id, tags=[
            RunTag(MOVED_TAG, new), RunTag("mlflow.runName", f"{name} -> {where}"),
            RunTag(NOTE_TAG, f"Recorded in experiment **{where}** as run `{new}`: [open it]({self.ui_link(new, True)}). "
                             + why)])
        return new

    def ui_link(self, run_id: str, relative: bool = False) -> str:
        """The run's page in `mlflow ui` (this server's address for an http(s) store), on the training
        view; relative (`#/experiments/...`), for a description the UI itself shows."""
        run = self.client.get_run(run_id)
        return f"{self._base(relative)}#/experiments/{run.info.experiment_id}/runs/{run_id}?workflowType=machine_learning"

    def links(self, run_id: str) -> str:
        """What a command prints last: the run's page, then its experiment's runs as charts."""
        eid = self.client.get_run(run_id).info.experiment_id
        return f"{self.ui_link(run_id)}\n  charts: {self.view_link(eid)}"

    def view_link(self, experiment_id: str, relative: bool = False) -> str:
        """The experiment's runs as charts in the lab's shared view (share_view)."""
        from initstudy.record import labs

        return f"{self._base(relative)}{labs.view_path(experiment_id)}"

    def _base(self, relative: bool) -> str:
        if relative:
            return ""
        return (self.uri.rstrip("/") if self.uri.startswith(("http://", "https://")) else UI) + "/"

    def log(self, run_id: str, params: dict | None = None, metrics=(), tags: dict | None = None):
        """params/tags: {key: value}; metrics: iterable of (key, value, step).

        A param the run already has is left as it is: `mlflow run -P gain=1` logs "1" before we
        start, MLflow refuses a changed value ("1.0"), and both say the same (the parsed config is
        in manifest.json)."""
        from mlflow.entities import Metric, Param, RunTag

        if tags and NOTE_TAG in tags and self.down is None:
            tags = {**tags, NOTE_TAG: self._with_view(run_id, str(tags[NOTE_TAG]))}
        now = int(time.time() * 1000)
        # only finite points: the UI drops a series whose last value is NaN (and clamps inf), and a
        # value that does not apply (None) is left out rather than logged as NaN
        metrics = [(k, float(v), s) for k, v, s in metrics if v is not None and math.isfinite(v)]
        self.journal.log(run_id, params, [(k, v, s, now) for k, v, s in metrics], tags)
        if self.down is not None:
            return
        if params:
            present = self._send(self.client.get_run, run_id).data.params
            params = {k: v for k, v in params.items() if k not in present}
        self._send(self.client.log_batch,
            run_id,
            metrics=[Metric(k, v, now, int(s)) for k, v, s in metrics],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def _with_view(self, run_id: str, text: str) -> str:
        """A run's description ends with the link to its experiment's chart view, where it has ours."""
        from initstudy.record import labs

        eid = self.client.get_run(run_id).info.experiment_id
        if VIEW_TAG + labs.VIEW_KEY not in self.client.get_experiment(eid).tags:
            return text
        return f"{text}\n\n[All runs of this experiment as charts (log scale)]({labs.view_path(eid)})"

    def log_artifacts(self, run_id: str, folder):
        self.journal.artifacts(run_id, folder)
        self._send(self.client.log_artifacts, run_id, str(folder))

    def log_dataset(self, run_id: str, name: str, features, targets=None, context: str = "training"):
        """Record a numpy dataset with MLflow's dataset API, so its digest is on the run."""
        import mlflow.data
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.exceptions import MlflowException

        ds = mlflow.data.from_numpy(features, targets=targets, name=name, source=_dataset_source())
        entity = DatasetInput(ds._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)])
        # MLflow looks the dataset up, then inserts it: runs logging the same dataset at the same
        # moment both insert and all but one fail the store's unique key (and roll back). Tried
        # again, the call finds the winner's row and links to it.
        for attempt in range(3):
            try:
                self.client.log_inputs(run_id, datasets=[entity])
                return ds.digest
            except MlflowException as e:
                if attempt == 2 or not _duplicate_key(e):
                    raise

    def replay(self, run: dict, files=None) -> str:
        """A spooled run (record/spool.py) recorded as a new run: its experiment by name, name, start time,
        tags, params, every metric point with its own timestamp, the artifacts in `files`; ended FINISHED
        if it was complete, else KILLED. Its id."""
        from mlflow.entities import Metric, Param

        name = run["tags"].get("mlflow.runName", run["name"])
        rid = self.client.create_run(self._experiment(run["experiment"]), run_name=name, start_time=run["start_time"],
                                     tags=run["tags"]).info.run_id
        self.client.log_batch(rid, params=[Param(k, str(v)) for k, v in run["params"].items()])
        for i in range(0, len(run["metrics"]), 1000):  # MLflow's limit per batch
            self.client.log_batch(rid, metrics=[Metric(k, float(v), int(t), int(s))
                                                for k, v, s, t in run["metrics"][i:i + 1000]])
        if files is not None:
            self.client.log_artifacts(rid, str(files))
        self.client.set_terminated(rid, status="FINISHED" if run["status"] == "FINISHED" else "KILLED")
        return rid

    def reopen(self, run_id: str):
        """A closed run set RUNNING again (a sweep resumed into its parent)."""
        self.client.update_run(run_id, status="RUNNING")
        self.adopt(run_id)

    def end(self, run_id: str, status: str = "FINISHED"):
        self.journal.end(run_id, status, closed=False)
        if self.down is None:
            self._send(self.client.set_terminated, run_id, status=status)
            self.journal.end(run_id, status, closed=True)

    def spool(self):
        """The open runs' journal written to a spool folder (the server is lost); its path."""
        from initstudy.record import spool

        return self.journal.write(redact_uri(self.uri), spool.default_root())

    def close_launcher(self, ours):
        """A killed command's `mlflow run` run, when it is not one of ours (it stayed in Default) and is
        still RUNNING: its launcher, killed with us, cannot close it (a live one overwrites it FAILED)."""
        rid = os.environ.get("MLFLOW_RUN_ID")
        if rid and rid not in ours and self.down is None and self.client.get_run(rid).info.status == "RUNNING":
            self.end(rid, "KILLED")

    # reading back (export)
    def get_run(self, run_id: str):
        """The run, or None if this store has no run with that id."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id)
        except MlflowException as e:
            if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise

    def search(self, filter_string: str) -> list:
        """Runs matching the filter in every active experiment, newest first."""
        ids = [e.experiment_id for e in self.client.search_experiments()]
        runs, token = [], None
        while ids:
            page = self.client.search_runs(ids, filter_string, max_results=1000, page_token=token,
                                           order_by=["attributes.start_time DESC"])
            runs += list(page)
            token = page.token
            if not token:
                break
        return runs

    def download(self, run_id: str, path: str, dst):
        """One artifact of a run copied into the folder dst; returns its local path."""
        from pathlib import Path

        from mlflow.artifacts import download_artifacts

        return Path(download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst), tracking_uri=self.uri))


def _same(recorded: str, value) -> bool:
    """A param as MLflow holds it says the same as `value`: equal as text, or as numbers ("1", 1.0); `mlflow
    run` logs an empty default shell-quoted, "''"."""
    if recorded == str(value) or (recorded == "''" and str(value) == ""):
        return True
    try:
        return float(recorded) == float(value)
    except (TypeError, ValueError):
        return False


def _store_lock(uri: str):
    """An exclusive file lock beside a SQLite store (.NAME.lock) while MLflow opens it: opening a new store
    creates its tables (an Alembic migration), and processes doing it at once die in it (3 of 4, measured).
    A no-op for other stores."""
    import contextlib
    import fcntl
    from pathlib import Path
    from urllib.parse import unquote

    path = unquote(uri[len("sqlite:///"):].split("?", 1)[0]) if uri.startswith("sqlite:///") else ":memory:"
    if path == ":memory:" or not Path(path).parent.is_dir():
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def held():
        with open(Path(path).parent / f".{Path(path).name}.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    return held()


def _dataset_source():
    """The code that made a dataset, as MLflow records it by default minus the user and the script's
    absolute path (a home folder): source type and git commit only."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.tracking.context.registry import resolve_tags

    kept = {k: v for k, v in resolve_tags().items() if k in ("mlflow.source.type", "mlflow.source.git.commit")}
    return CodeDatasetSource({**kept, "mlflow.source.name": "python -m initstudy"})


def _mlflow_run_process():
    """(argv, environ) of the nearest ancestor process that is `mlflow run`, or None."""
    import psutil

    proc = launcher_process()
    try:
        return (proc.cmdline(), proc.environ()) if proc is not None else None
    except (psutil.Error, OSError):
        return None


def launcher_process():
    """The nearest ancestor process that is `mlflow run` (a psutil.Process), or None."""
    import psutil

    try:
        proc = psutil.Process().parent()
        while proc is not None:
            argv = proc.cmdline()
            names = [os.path.basename(a) for a in argv[:4]]
            if "run" in argv[1:4] and ("mlflow" in names or "mlflow" in argv[1:3]):
                return proc
            proc = proc.parent()
    except (psutil.Error, OSError):
        pass
    return None


def unreachable(e: BaseException) -> bool:
    """The tracking server did not answer (refused, timed out, unresolvable), as MLflow reports it."""
    from mlflow.exceptions import MlflowException

    text = str(e.message if isinstance(e, MlflowException) else e)
    return isinstance(e, MlflowException) and ("Max retries exceeded" in text or "failed with exception" in text)


def _duplicate_key(e: BaseException) -> bool:
    """A store's unique-key violation (SQLite, PostgreSQL, MySQL wording; also through a server)."""
    text = str(e).lower()
    return any(w in text for w in ("unique constraint failed", "duplicate key value", "duplicate entry"))


def resolve_uri(uri: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else MLflow's default (sqlite:///mlflow.db in cwd)."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"


def missing_local_store(uri: str) -> str | None:
    """The path of a local store (sqlite file, file: folder, bare path) that does not exist, else None.
    Checked before MLflow sees the URI: MLflow would create an empty store there."""
    from pathlib import Path
    from urllib.parse import unquote, urlsplit

    if uri.startswith("sqlite:///"):
        path = unquote(uri[len("sqlite:///"):].split("?", 1)[0])
        return None if path == ":memory:" or Path(path).is_file() else path
    parts = urlsplit(uri)
    if parts.scheme == "file" or not parts.scheme:
        path = unquote(parts.path) if parts.scheme else uri
        return None if Path(path).is_dir() else path
    return None


def redact_uri(uri: str) -> str:
    """The tracking URI without user:password@ (safe to record)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=host))


def describe_error(e: BaseException) -> str | None:
    """One line for an error from the tracking store (unreachable server, bad URI, store refused),
    or None if `e` is not one. Credentials in a URI are never shown."""
    import sys

    if "mlflow" not in sys.modules:  # nothing tracking-related has run
        return None
    from mlflow.exceptions import MlflowException

    uri = redact_uri(os.environ.get("MLFLOW_TRACKING_URI", "") or "(default)")
    text = str(e.message if isinstance(e, MlflowException) else e)
    if unreachable(e):
        why = ("cannot resolve the host" if "resolve" in text or "NameResolution" in text else
               "timed out" if "timed out" in text.lower() or "Timeout" in text else "connection refused"
               if "refused" in text.lower() else "cannot connect")
        return f"tracking server {uri} unreachable ({why}); start it or set MLFLOW_TRACKING_URI to a running one"
    if isinstance(e, MlflowException) or type(e).__module__.startswith(("sqlalchemy", "requests", "urllib3")):
        first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        for secret in _credentials(os.environ.get("MLFLOW_TRACKING_URI", "")):
            first = first.replace(secret, "***")
        return f"tracking store {uri} refused the request: {first[:300]}"
    return None


def _credentials(uri: str) -> list:
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    return [s for s in (parts.password, parts.username) if s]


def _credentials_to_env(uri: str) -> str:
    """user:password@ of an http(s) URI moved to MLFLOW_TRACKING_USERNAME/PASSWORD (MLflow's basic
    auth), so the URI MLflow holds, prints ("View run at ...") and we record carries none."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or (parts.username is None and parts.password is None):
        return uri
    import sys

    print("initstudy: warning: the tracking URI carries a user name and password, which MLflow prints with it "
          "(`mlflow run`'s 'View run ... at' lines have shown them); set MLFLOW_TRACKING_USERNAME and "
          "MLFLOW_TRACKING_PASSWORD instead (docs/team-server.md)", file=sys.stderr, flush=True)
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(parts.username or ""))
    os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(parts.password or ""))
    return redact_uri(uri)
