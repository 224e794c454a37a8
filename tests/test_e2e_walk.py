"""The user's command, for real: `mlflow run . -e walk --env-manager local` into a SQLite store."""
import json

import numpy as np
import pytest

from conftest import mlflow_run
from initstudy.core import inits
from initstudy.record import keys
from initstudy.studies.walk.compute import WalkConfig, run_walk


@pytest.fixture(scope="module")
def walk_all(tmp_path_factory):
    from conftest import Store

    store = Store(tmp_path_factory.mktemp("walk"))
    proc = mlflow_run(store, "walk")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return store


def test_parent_and_one_child_per_init(walk_all):
    runs = walk_all.runs()
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    assert {r.data.tags["initstudy.init"] for r in children} == set(inits.LAB_INITS)
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(r.data.tags["initstudy.experiment"] == "10-variance-walk" for r in runs)


def test_metrics_params_and_artifacts_read_back(walk_all):
    client = walk_all.client
    config = WalkConfig()
    for r in walk_all.runs("tags.`initstudy.role` = 'child'"):
        init = r.data.tags["initstudy.init"]
        expected = run_walk(config, init)
        for key, series in expected.series().items():  # the finite points, step = layer index
            hist = sorted(client.get_metric_history(r.info.run_id, keys.series(key)), key=lambda m: m.step)
            finite = np.flatnonzero(np.isfinite(series))
            assert [m.step for m in hist] == finite.tolist() and len(finite) >= 2, key
            np.testing.assert_array_equal([m.value for m in hist], series[finite])
        overflowed = not np.isfinite(expected.var[-1])
        assert ("final_layer_variance" not in r.data.metrics) == overflowed
        assert overflowed or r.data.metrics["final_layer_variance"] == expected.var[-1]
        p = r.data.params
        assert p["seed"] == "42" and p["weight_seed"] == str(config.weight_seed(init))
        assert p["input_seed"] == str(config.input_seed())
        for key in ("versions.numpy", "versions.mlflow", "versions.python", "hardware.cpu_governor",
                    "hardware.logical_cores", "blas.threads", "blas.library", "git.commit", "git.dirty"):
            assert p[key], key
        assert p["blas.threads"] == "1" and p["blas.threads_pinned"] == "1"
        assert walk_all.artifact_names(r.info.run_id) == ["manifest.json", "results.json", "signal",
                                                          "variance.png"]
        assert walk_all.artifact_names(r.info.run_id, "signal") == ["jacobian.png"]
        # beside the lab's series: signal propagation, with the keys jobs/walk.py builds
        from initstudy.studies.walk.job import PHASE_TAG

        for key, series in expected.signal.series().items():
            hist = sorted(client.get_metric_history(r.info.run_id, keys.series(key)), key=lambda m: m.step)
            finite = np.flatnonzero(np.isfinite(series))
            assert [m.step for m in hist] == finite.tolist(), key
            np.testing.assert_array_equal([m.value for m in hist], series[finite])
        for key, value in expected.signal.summary().items():
            assert (r.data.metrics.get(key) == value) if np.isfinite(value) else key not in r.data.metrics, key
        assert r.data.tags[PHASE_TAG] == expected.signal.scales["phase"]
        assert p["sigma_w2"] == repr(256 * inits.weight_variance(init, 256))  # the mean-field n Var(W)
        assert ("q_star" in r.data.metrics) == (init == "xavier")  # linear: q* only at sigma_w^2 = 1


def test_parent_artifacts_hold_all_inits(walk_all):
    parent = walk_all.runs("tags.`initstudy.role` = 'parent'")[0]
    doc = json.loads(walk_all.download(parent.info.run_id, "results.json").read_text())
    assert set(doc["inits"]) == set(inits.LAB_INITS) and len(doc["inits"]["xavier"]["layers"]) == 21
    mf = json.loads(walk_all.download(parent.info.run_id, "manifest.json").read_text())
    for key in ("experiment", "date", "seed", "versions", "hardware", "config", "results_summary"):
        assert key in mf
    assert mf["config"]["hidden_dim"] == 256 and mf["config"]["batch_size"] == 64
    assert set(mf["results_summary"]) == {f"{i}_final_layer_variance" for i in inits.LAB_INITS}
    assert mf["results_summary"]["xavier_final_layer_variance"] == doc["inits"]["xavier"]["layers"][-1]["var_empirical"]
    png = walk_all.download(parent.info.run_id, "variance.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_single_init_is_one_run(store):
    proc = mlflow_run(store, "walk", init="xavier", depth=4, dtype="float16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = store.runs()
    assert run.data.tags["initstudy.role"] == "single" and run.data.params["dtype"] == "float16"
    assert len(store.client.get_metric_history(run.info.run_id, keys.series("var"))) == 5
