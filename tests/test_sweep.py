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
from initstudy.studies.ablate import compute as ablate
from initstudy.record import keys, provenance

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
    # each child records the kernel of the worker that computed it
    assert {r.data.params["blas.architecture"] for r in children} == {provenance.blas()["architecture"]}
    # short names from the axes that vary (the UI cuts names at ~16-20 characters)
    names = sorted(r.info.run_name for r in children)
    assert "kaiming d8 s1" in names and len(set(names)) == 8 and max(map(len, names)) <= 16, names
    # no param twice under two names (issue 13): the user's -P values, the count, provenance
    assert not any(k.startswith("sweep.") for k in parent.data.params), parent.data.params
    assert "LocalCluster of 2 worker processes on 127.0.0.1" in proc.stderr
    # stderr is a pipe here: no bar redrawn in place, no per-run lines
    assert "\r" not in proc.stderr and "runs done" not in proc.stderr


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
    # timing for the benchmark: compute measured inside the workers, the writer's CPU, the cluster's start
    assert 0 < doc["recording_cpu_seconds"] and 0 < doc["compute_cpu_seconds"] and 0 < doc["compute_seconds"] == pytest.approx(
        sum(r["compute_seconds"] for r in rows)) and doc["threads"] == 2 and doc["cluster_start_seconds"] > 0


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
