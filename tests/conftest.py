"""Shared test helpers: a real SQLite MLflow store on disk, a real `mlflow server`, the real command line,
and the processes a command left behind."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent


class Store:
    """A fresh SQLite tracking store with its experiment created up front (as a sweep's parent
    does), artifacts under the same temporary folder."""

    def __init__(self, root: Path, name="tests"):
        from mlflow.tracking import MlflowClient

        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.client = MlflowClient(self.uri)
        self.experiment_id = self.client.create_experiment(name, artifact_location=(root / "artifacts").as_uri())

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(MLFLOW_TRACKING_URI=self.uri, MLFLOW_EXPERIMENT_ID=self.experiment_id, **extra)
        return env

    def runs(self, filter_string=""):
        return self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=1000)

    def artifact_names(self, run_id, path=None):
        return sorted(Path(a.path).name for a in self.client.list_artifacts(run_id, path))

    def download(self, run_id, path) -> Path:
        from mlflow.artifacts import download_artifacts

        return Path(download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(self.root / "dl" / run_id),
                                       tracking_uri=self.uri))


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path)


@pytest.fixture(scope="module")
def one_blas_thread():
    """What the entry points do before computing: BLAS pinned to one thread, warmed up in float64.
    A module that compares bits with a run uses it: `pytestmark = pytest.mark.usefixtures(...)`."""
    from initstudy.record import provenance

    with provenance.pin_blas_threads():
        provenance.warm_up_blas()
        yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`mlflow server` bound to loopback on a free port, one worker, stopped by its PID (its process group)."""

    def __init__(self, root: Path, backend: str, port: int | None = None):
        self.port = port or free_port()  # a port: the same server started again
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = open(root / "server.log", "w")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend, "--serve-artifacts",
             "--artifacts-destination", (root / "served-artifacts").as_uri(), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise AssertionError("mlflow server did not start: " + (root / "server.log").read_text()[-3000:])
            time.sleep(0.3)
        self.start_seconds = time.perf_counter() - t0

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(4)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def session_processes(sid, grace=5.0):
    """pids still alive in session sid after a grace period (a stopping worker gets a moment)."""
    def alive():
        out = []
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p.pid)
            except (OSError, psutil.Error):
                pass
        return out
    deadline = time.time() + grace
    while alive() and time.time() < deadline:
        time.sleep(0.2)
    return alive()


def mlflow_run_cmd(entry: str, **params) -> list:
    """The user's command: `mlflow run . -e ENTRY -P k=v ... --env-manager local`."""
    cmd = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", entry, "--env-manager", "local"]
    for k, v in params.items():
        cmd += ["-P", f"{k}={v}"]
    return cmd


def mlflow_run(store: Store, entry: str, timeout=600, cwd=REPO, **params) -> subprocess.CompletedProcess:
    return subprocess.run(mlflow_run_cmd(entry, **params), env=store.env(), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def initstudy(*args, env=None, cwd=REPO, timeout=300) -> subprocess.CompletedProcess:
    """`python -m initstudy ARGS` as a user would type it."""
    return subprocess.run([sys.executable, "-m", "initstudy", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def assert_refused(proc: subprocess.CompletedProcess, *words):
    """One clear line on stderr naming what is wrong, non-zero exit, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = [l for l in err.splitlines() if "error" in l.lower()]
    assert len(lines) >= 1, err
    for w in words:
        assert w in err, (w, err)
