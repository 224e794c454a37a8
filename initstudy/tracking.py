"""The only module that talks to MLflow: runs, nested runs, batched metrics, artifacts, datasets.

`import mlflow` costs seconds, so it happens here, after the input has been validated. Metrics are
always sent with log_batch (one call per ~1000 points), never point by point.
"""
import os
import time

PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_TAG = "initstudy.experiment"  # the lab a run belongs to, whatever MLflow experiment holds it
ROLE_TAG = "initstudy.role"  # parent | child | single
INIT_TAG = "initstudy.init"
OUTCOME_TAG = "initstudy.outcome"

# An unreachable server must fail within seconds, not after MLflow's minutes of retries. Measured,
# under load: refused connection ~5 s in all; a host that accepts but never answers, 2 x timeout +
# backoff + start-up (timeout 5: 17.8 s, hence 3). A user's own values win.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")  # an int: MLflow reads it so
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
# MLflow draws a tqdm bar per artifact download/upload once tqdm is installed (it is: our progress bars):
# noise on stderr, where a command's refusal must be its one line.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class Tracker:
    def __init__(self, tracking_uri: str | None = None):
        import mlflow
        from mlflow.tracking import MlflowClient

        self.uri = _credentials_to_env(tracking_uri or mlflow.get_tracking_uri())
        self.client = MlflowClient(self.uri)

    def experiment_id(self) -> str:
        """The experiment `mlflow run` chose (env), else MLFLOW_EXPERIMENT_NAME, else Default."""
        if os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
        if name:
            exp = self.client.get_experiment_by_name(name)
            return exp.experiment_id if exp else self.client.create_experiment(name)
        exp = self.client.get_experiment_by_name("Default")
        return exp.experiment_id if exp else "0"

    def start_run(self, name: str, parent: str | None = None, tags: dict | None = None) -> str:
        """A run to record into: the one `mlflow run` opened (MLFLOW_RUN_ID) for a top-level run,
        else a new one; a child when `parent` is given."""
        tags = {k: str(v) for k, v in (tags or {}).items()}
        if parent is None and os.environ.get("MLFLOW_RUN_ID"):
            run_id = os.environ["MLFLOW_RUN_ID"]
            self.log(run_id, tags={"mlflow.runName": name, **tags})
            return run_id
        if parent is not None:
            tags[PARENT_TAG] = parent
            experiment_id = self.client.get_run(parent).info.experiment_id
        else:
            experiment_id = self.experiment_id()
        return self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id

    def log(self, run_id: str, params: dict | None = None, metrics=(), tags: dict | None = None):
        """params/tags: {key: value}; metrics: iterable of (key, value, step).

        A param the run already has is left as it is: `mlflow run -P gain=1` logs "1" before we
        start, MLflow refuses a changed value ("1.0"), and both say the same (the parsed config is
        in manifest.json)."""
        from mlflow.entities import Metric, Param, RunTag

        if params:
            present = self.client.get_run(run_id).data.params
            params = {k: v for k, v in params.items() if k not in present}
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, int(s)) for k, v, s in metrics],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def log_artifacts(self, run_id: str, folder):
        self.client.log_artifacts(run_id, str(folder))

    def log_dataset(self, run_id: str, name: str, features, targets=None, context: str = "training"):
        """Record a numpy dataset with MLflow's dataset API, so its digest is on the run."""
        import mlflow.data
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.exceptions import MlflowException

        ds = mlflow.data.from_numpy(features, targets=targets, name=name)
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

    def reopen(self, run_id: str):
        """A closed run set RUNNING again (a sweep resumed into its parent)."""
        self.client.update_run(run_id, status="RUNNING")

    def end(self, run_id: str, status: str = "FINISHED"):
        self.client.set_terminated(run_id, status=status)

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
    if isinstance(e, MlflowException) and ("Max retries exceeded" in text or "failed with exception" in text):
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
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(parts.username or ""))
    os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(parts.password or ""))
    return redact_uri(uri)
