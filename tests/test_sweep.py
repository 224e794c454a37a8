"""The sweep for real: `mlflow run . -e sweep` into a SQLite store, a worker killed mid-sweep, and a
child's numbers against the same config trained alone (in this process and as its own run).
The walk study (-P study=walk) runs in tests/test_server.py, against a tracking server."""
import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, Store, initstudy, mlflow_run
from initstudy import ablate, keys, provenance

GRID = dict(inits="uniform,kaiming", depths="3,8", seeds="0,1", workers=2, steps=60)


def loss_history(store, run_id, key=keys.series("loss")):
    return [m.value for m in sorted(store.client.get_metric_history(run_id, key), key=lambda m: m.step)]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("sweep"))
    proc = mlflow_run(store, "sweep", **GRID)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return store, proc


def test_parent_and_one_child_per_grid_point(swept):
    store, proc = swept
    (parent,) = store.runs("tags.`initstudy.role` = 'parent'")
    children = store.runs("tags.`initstudy.role` = 'child'")
    assert len(children) == 8 and all(r.info.status == "FINISHED" for r in children + [parent])
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    points = {(r.data.tags["initstudy.init"], r.data.tags["initstudy.depth"], r.data.tags["initstudy.seed"])
              for r in children}
    assert points == {(i, d, s) for i in ("uniform", "kaiming") for d in ("3", "8") for s in ("0", "1")}
    assert {r.data.params["steps"] for r in children} == {"60"}
    assert all(r.data.params["blas.threads"] == "1" for r in children)
    # progress on stderr, every step counted, ending at total/total
    counts = [int(m) for m in re.findall(r"sweep: (\d+)/8 runs done", proc.stderr)]
    assert counts == list(range(1, 9)) and "ETA" in proc.stderr


def test_summary_artifacts(swept):
    store, _ = swept
    (parent,) = store.runs("tags.`initstudy.role` = 'parent'")
    doc = json.loads(store.download(parent.info.run_id, "sweep.json").read_text())
    rows = doc["runs"]
    assert len(rows) == 8 and {r["status"] for r in rows} == {"FINISHED"}
    children = {r.info.run_id: r for r in store.runs("tags.`initstudy.role` = 'child'")}
    for row in rows:
        child = children[row["run_id"]]
        assert child.data.tags["initstudy.outcome"] == row["outcome"]
        if row["steps_to_nan"] is None:
            assert row["final_loss"] == child.data.metrics["final_loss"]
        else:
            assert child.data.metrics["steps_to_nan"] == row["steps_to_nan"]
    # both panels of the plot have data: a run that trained and one that hit NaN
    assert {r["steps_to_nan"] is None for r in rows} == {True, False}
    png = store.download(parent.info.run_id, "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert parent.data.metrics["runs_failed"] == 0


def test_child_is_bit_identical_to_the_config_alone(swept):
    store, _ = swept
    (child,) = store.runs("tags.`initstudy.init` = 'kaiming' and tags.`initstudy.depth` = '8' "
                          "and tags.`initstudy.seed` = '1'")
    config = ablate.AblateConfig(depth=8, seed=1, steps=60)
    with provenance.pin_blas_threads():
        provenance.warm_up_blas()
        oracle = ablate.train(config, "kaiming")
    got = loss_history(store, child.info.run_id)
    np.testing.assert_array_equal(np.array(got), oracle.losses.astype(float))
    # and the same config as its own `ablate` run in the same store
    alone = initstudy("ablate", "--init", "kaiming", "--depth", 8, "--seed", 1, "--steps", 60, env=store.env())
    assert alone.returncode == 0, alone.stderr[-2000:]
    (single,) = store.runs("tags.`initstudy.role` = 'single'")
    assert loss_history(store, single.info.run_id) == got
    assert loss_history(store, single.info.run_id, keys.series("val_acc")) == loss_history(store, child.info.run_id, keys.series("val_acc"))


def test_dead_worker_fails_its_child_only(store):
    """SIGKILL one worker mid-sweep: its child FAILED, every other child FINISHED, exit 1, count reported."""
    cmd = [sys.executable, "-m", "initstudy", "sweep", "--inits", "xavier", "--depths", "4", "--seeds", "0,1,2,3",
           "--steps", "400", "--workers", "2"]
    proc = subprocess.Popen(cmd, env=store.env(), cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = ""
    deadline = time.time() + 60
    while "pids" not in line and time.time() < deadline:
        line = proc.stderr.readline()
    pids = [int(p) for p in re.findall(r"\d+", line.split("pids", 1)[1])]
    time.sleep(1.0)  # both workers hold a task by now
    import os

    os.kill(pids[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    err = line + err
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert re.search(r"error: 1 of 4 sweep runs failed: .*worker process \d+ died", err), err
    children = store.runs("tags.`initstudy.role` = 'child'")
    assert sorted(r.info.status for r in children) == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    (failed,) = [r for r in children if r.info.status == "FAILED"]
    assert "died" in failed.data.tags["initstudy.error"]
    (parent,) = store.runs("tags.`initstudy.role` = 'parent'")
    assert parent.info.status == "FAILED" and parent.data.metrics["runs_failed"] == 1
