"""A lost tracking server (issue 24): `mlflow server` on loopback SIGKILLed while an ablate streams
into it. The command ends within 15 s with one line naming a spool folder; nothing computed is lost:
once the server is back, `initstudy sync SPOOL --to URI` records the run again, its series bit for bit,
and closes the copy the server kept RUNNING."""
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import REPO, Server, assert_refused, initstudy, mlflow_run_cmd
from initstudy.record import keys
from initstudy.studies.ablate import compute as ablate
from test_faults import KILL_CONFIG, wait_for_training
from test_server import ServerStore

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def series(client, run_id, key=keys.series("loss")):
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_a_lost_server_ends_in_seconds_and_sync_records_what_was_computed(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")  # this test's own client, on a loaded machine
    backend = f"sqlite:///{tmp_path / 'backend.db'}"
    srv = Server(tmp_path, backend)
    again = None
    try:
        store = ServerStore(tmp_path, srv.uri)
        env = store.env(INITSTUDY_SPOOL=str(tmp_path / "spool"))
        proc = subprocess.Popen(mlflow_run_cmd("ablate", **KILL_CONFIG), env=env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            run, seen = wait_for_training(store, proc)
            time.sleep(1)
            os.killpg(srv.proc.pid, signal.SIGKILL)
            t0 = time.time()
            _, err = proc.communicate(timeout=300)
            took = time.time() - t0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        lines = [l for l in err.splitlines() if "error" in l]
        assert took <= 15 and "Traceback" not in err and len(lines) == 1, (took, err[-3000:])
        assert f"tracking server {srv.uri} unreachable" in lines[0] and "initstudy sync" in lines[0], lines
        folder = re.search(r"kept in (\S+): ", lines[0]).group(1)
        assert folder.startswith(str(tmp_path / "spool"))
        again = Server(tmp_path, backend, port=srv.port)  # the same server, back
        assert store.client.get_run(run.info.run_id).info.status == "RUNNING"
        env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "30"  # the restarted server's first answers are slow on a loaded machine
        synced = initstudy("sync", folder, "--to", srv.uri, env=env)
        assert synced.returncode == 0 and "1 stale RUNNING runs closed" in synced.stdout, synced.stdout + synced.stderr
        old = store.client.get_run(run.info.run_id)
        new = store.client.get_run(old.data.tags["initstudy.moved_to"])
        assert old.info.status == new.info.status == "KILLED"
        assert new.data.params == old.data.params | new.data.params and new.data.params["init"] == "kaiming"
        got = series(store.client, new.info.run_id)
        assert len(got) > seen and len(got) >= len(series(store.client, old.info.run_id))  # more than reached the server
        config = ablate.AblateConfig(**{k: v for k, v in KILL_CONFIG.items() if k != "init"} | {"steps": len(got)})
        np.testing.assert_array_equal(got, ablate.train(config, "kaiming").losses)  # bit for bit
        assert_refused(initstudy("sync", folder, "--to", srv.uri, env=env), "recorded already")
    finally:
        for s in (srv, again):
            if s is not None:
                s.stop()
