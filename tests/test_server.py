"""A team's tracking server, for real: `mlflow server` on 127.0.0.1 (SQLite backend, then PostgreSQL),
artifacts through its --serve-artifacts proxy, and the user's commands pointed at it by
MLFLOW_TRACKING_URI alone: walk, ablate, sweep, export, reproduce."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, Server, Store, free_port, initstudy, mlflow_run
from initstudy.record import keys
from initstudy.studies.walk.compute import WalkConfig, run_walk

EXPORT = [sys.executable, str(REPO / "scripts" / "export_run.py")]


class ServerStore(Store):
    """Store's helpers, against the server: the experiment's artifacts go through the server's proxy."""

    def __init__(self, root: Path, uri: str, name="tests"):
        from mlflow.tracking import MlflowClient

        self.root, self.uri = root, uri
        self.client = MlflowClient(uri)
        self.experiment_id = self.client.create_experiment(name)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    srv = Server(root, f"sqlite:///{root / 'backend.db'}")
    yield srv, ServerStore(root, srv.uri)
    srv.stop()
    assert srv.proc.returncode is not None


def timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


def test_everything_through_the_server(server, tmp_path):
    srv, store = server
    assert srv.proc.poll() is None and srv.start_seconds < 90
    with ThreadPoolExecutor(3) as pool:  # three users at once into the one server (each timed on its own)
        walk = pool.submit(timed, mlflow_run, store, "walk", depth=4, width=32)
        ablate = pool.submit(timed, initstudy, "ablate", "--init", "kaiming", "--depth", 3, "--width", 32,
                             "--input_dim", 32, "--steps", 40, env=store.env())  # what MLproject runs
        sweep = pool.submit(timed, initstudy, "sweep", "--study", "walk", "--inits", "xavier,kaiming", "--depths",
                            "3,5", "--seeds", 0, "--workers", 2, env=store.env())  # via `mlflow run`: test_sweep.py
        (walk, t_walk), (ablate, t_ablate), (sweep, t_sweep) = walk.result(), ablate.result(), sweep.result()
    assert walk.returncode == 0, walk.stderr[-3000:]
    assert ablate.returncode == 0, ablate.stderr[-3000:]
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    print(f"\nserver e2e: start {srv.start_seconds:.1f} s, walk {t_walk:.1f} s, ablate {t_ablate:.1f} s, "
          f"sweep {t_sweep:.1f} s")

    runs = store.runs()
    assert len(runs) == (1 + 3) + 1 + (1 + 4) and {r.info.status for r in runs} == {"FINISHED"}
    # artifacts went through the proxy: the run's artifact URI is the server's, the bytes are under its destination
    # a parent is named by what differs from the defaults
    (walk_parent,) = store.runs("tags.`initstudy.role` = 'parent' and tags.`mlflow.runName` = 'walk depth 4 width 32'")
    assert walk_parent.info.artifact_uri.startswith("mlflow-artifacts:")
    assert list((store.root / "served-artifacts").rglob("manifest.json"))
    # the sweep's walk children are the numerics run alone
    for r in store.runs("tags.`initstudy.sweep` = 'walk' and tags.`initstudy.role` = 'child'"):
        config = WalkConfig(depth=int(r.data.tags["initstudy.depth"]), seed=0)
        hist = sorted(store.client.get_metric_history(r.info.run_id, keys.series("var")), key=lambda m: m.step)
        var = run_walk(config, r.data.tags["initstudy.init"]).var
        np.testing.assert_array_equal([m.value for m in hist], var[np.isfinite(var)])  # the finite points

    # export the walk set from the server, then reproduce the folder bit for bit
    out = tmp_path / "out"
    exp, t_export = timed(subprocess.run, EXPORT + ["--run-id", walk_parent.info.run_id, "--out", str(out)],
                          env=store.env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert exp.returncode == 0, exp.stderr[-3000:]
    folder = out / "10-variance-walk"
    mf = json.loads((folder / "manifest.json").read_text())
    assert mf["mlflow"]["tracking_uri"] == srv.uri
    rep, t_rep = timed(initstudy, "reproduce", folder / "manifest.json", env=store.env())
    assert rep.returncode == 0, rep.stdout[-2000:] + rep.stderr[-2000:]
    print(f"server e2e: export {t_export:.1f} s, reproduce {t_rep:.1f} s")


def test_credentials_in_the_uri_are_never_recorded(server, tmp_path):
    """user:password@ in MLFLOW_TRACKING_URI reaches the server but no param, tag, manifest or export;
    nor does any other environment variable."""
    srv, store = server
    secret_uri = f"http://alice:s3cret-pw@127.0.0.1:{srv.port}"
    env = {**store.env(), "MLFLOW_TRACKING_URI": secret_uri, "INITSTUDY_CANARY": "canary-7f3a"}
    proc = initstudy("walk", "--depth", 3, "--width", 16, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "s3cret" not in proc.stdout + proc.stderr
    (parent,) = [r for r in store.runs("tags.`initstudy.role` = 'parent'") if r.data.params.get("depth") == "3"]
    family = [parent] + store.runs(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    for r in family:
        blob = json.dumps([r.data.params, r.data.tags])
        assert "s3cret" not in blob and "alice" not in blob and "canary-7f3a" not in blob
        mf = store.download(r.info.run_id, "manifest.json").read_text()
        assert "s3cret" not in mf and "alice" not in mf and "canary-7f3a" not in mf
        assert json.loads(mf)["mlflow"]["tracking_uri"] == srv.uri
    out = tmp_path / "out"
    exp = subprocess.run(EXPORT + ["--run-id", parent.info.run_id, "--out", str(out)], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert exp.returncode == 0, exp.stderr[-2000:]
    for f in (out / "10-variance-walk").iterdir():
        data = f.read_bytes()
        assert b"s3cret" not in data and b"alice" not in data and b"canary-7f3a" not in data, f.name


# ---- PostgreSQL backend ----

def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster in a temporary folder, listening on 127.0.0.1 only."""
    pgbin = _pg_bin()
    if pgbin is None:
        pytest.skip("PostgreSQL is not installed (Debian package 'postgresql'; .ci/run installs it where apt works)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed (pip install -e '.[test]' installs psycopg2-binary)")
    as_user = []
    root = Path(tempfile.mkdtemp(prefix="initstudy-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        os.chmod(root, 0o755)
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    run = lambda *cmd: subprocess.run(as_user + [*map(str, cmd)], capture_output=True, text=True, timeout=120)  # noqa
    p = run(pgbin / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
    assert p.returncode == 0, p.stderr
    p = run(pgbin / "pg_ctl", "-D", data, "-l", root / "pg.log", "-w", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    assert p.returncode == 0, p.stderr + (root / "pg.log").read_text()
    try:
        p = run(pgbin / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "mlflow")
        assert p.returncode == 0, p.stderr
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
    finally:
        run(pgbin / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_backend(postgres, tmp_path):
    import psycopg2

    # SQLAlchemy's default driver for postgresql:// is psycopg 3; name psycopg2 (what `.[test]` installs)
    srv = Server(tmp_path, postgres.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        store = ServerStore(tmp_path, srv.uri)
        walk, t_walk = timed(initstudy, "walk", "--depth", 4, "--width", 32, env=store.env())
        assert walk.returncode == 0, walk.stderr[-3000:]
        print(f"\npostgres server: start {srv.start_seconds:.1f} s, walk {t_walk:.1f} s")
        runs = store.runs()
        assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
        for r in store.runs("tags.`initstudy.role` = 'child'"):
            hist = sorted(store.client.get_metric_history(r.info.run_id, keys.series("var")), key=lambda m: m.step)
            np.testing.assert_array_equal([m.value for m in hist],
                                          run_walk(WalkConfig(depth=4, width=32), r.data.tags["initstudy.init"]).var)
        # and the rows really are in PostgreSQL
        with psycopg2.connect(postgres) as conn, conn.cursor() as cur:
            cur.execute("select count(*) from runs where experiment_id = %s", (int(store.experiment_id),))
            assert cur.fetchone()[0] == 4
            cur.execute("select count(*) from metrics where key = %s", (keys.series("var"),))
            assert cur.fetchone()[0] == 3 * 5
    finally:
        srv.stop()
