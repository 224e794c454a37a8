"""`mlflow run . -e ablate --env-manager local` for real, read back from the SQLite store."""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import REPO, Store, mlflow_run
from initstudy.core import diagnostics, inits
from initstudy.record import keys, provenance
from initstudy.studies.ablate.compute import AblateConfig, train

STEPS = 60
RESNET = dict(arch="resnet", branch="fixup", depth=3, width=32, steps=20, diag_every=5)
RUNS = {  # each test's `mlflow run . -e ablate`
    "single": dict(init="kaiming", steps=STEPS),
    "all": dict(steps=30),
    "typed": dict(init="xavier", steps=5, depth=3, gain=1, lr="1e-3"),
    "resnet": dict(init="kaiming", **RESNET),
}


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The four runs, two at a time (each one process at one BLAS thread; 2 cores), each into its own fresh
    store: name -> (store, the finished `mlflow run`)."""
    stores = {name: Store(tmp_path_factory.mktemp(name)) for name in RUNS}
    with ThreadPoolExecutor(2) as pool:
        procs = pool.map(lambda name: mlflow_run(stores[name], "ablate", **RUNS[name]), RUNS)
        return {name: (stores[name], proc) for name, proc in zip(RUNS, procs)}


def test_single_init_run_records_every_step_diagnostics_and_artifacts(ran):
    store, proc = ran["single"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = store.runs()
    rid, client = run.info.run_id, store.client
    assert run.info.status == "FINISHED"
    assert run.data.tags["initstudy.experiment"] == "10-init-matters"
    assert run.data.tags["initstudy.outcome"] == "trained"

    loss = sorted(client.get_metric_history(rid, keys.series("loss")), key=lambda m: m.step)
    assert [m.step for m in loss] == list(range(STEPS))
    with provenance.pin_blas_threads():
        provenance.warm_up_blas()
        expected = train(AblateConfig(steps=STEPS), "kaiming")
    np.testing.assert_array_equal([m.value for m in loss], expected.losses)  # the run is the computation

    assert [m.step for m in sorted(client.get_metric_history(rid, keys.series("val_loss")), key=lambda m: m.step)] == [
        0, 10, 20, 30, 40, 50, 60]
    for stat in diagnostics.STATS:
        for layer in (1, 12):
            hist = client.get_metric_history(rid, keys.layer(stat, layer))
            assert sorted(m.step for m in hist) == [0, 10, 20, 30, 40, 50], (stat, layer)
        for when, row in zip(keys.PROFILES, (expected.diag[stat][0], expected.diag[stat][-1])):  # depth profiles
            prof = sorted(client.get_metric_history(rid, keys.profile(stat, when)), key=lambda m: m.step)
            finite = np.flatnonzero(np.isfinite(row))
            assert [m.step for m in prof] == (finite + 1).tolist(), (stat, when)
            np.testing.assert_array_equal([m.value for m in prof], row[finite])
    m = run.data.metrics
    for key in ("initial_loss", "expected_initial_loss", "final_loss", "final_val_acc", "loss_slope_last200"):
        assert key in m, key
    for key in ("steps_to_nan", "flatline_step"):  # do not apply to a run that trained: not logged, not NaN
        assert key not in m, key
    assert m["expected_initial_loss"] == np.log(2) and m["final_loss"] == expected.final_loss
    assert m["initial_loss"] == expected.initial_loss

    p = run.data.params
    assert p["weight_seed"] == str(AblateConfig().weight_seed("kaiming")) and p["data_seed"] == "42"
    assert p["blas.threads"] == "1" and p["hardware.cpu_governor"] and p["git.commit"]
    (ds,) = run.inputs.dataset_inputs
    assert ds.dataset.digest == p["dataset_digest"] and ds.tags[0].value == "training"

    assert store.artifact_names(rid) == ["diagnostics.json", "diagnostics.png", "loss_curves.png", "losses.json",
                                         "manifest.json"]
    # every block's statistics in diagnostics.json; the charts only the first, middle and last block's
    table = json.loads(store.download(rid, "diagnostics.json").read_text())
    assert table["steps"] == expected.diag_steps.tolist()
    for stat in diagnostics.STATS:
        np.testing.assert_array_equal(np.array(table["stats"][stat], float), expected.diag[stat])
    assert {k.split("/")[1] for k in m if k.startswith("act_std/L")} == {"L01", "L06", "L12"}
    doc = json.loads(store.download(rid, "losses.json").read_text())
    assert len(doc["inits"]["kaiming"]["loss"]) == STEPS and doc["inits"]["kaiming"]["outcome"] == "trained"


def test_all_inits_parent_and_children_uniform_diverges(ran):
    store, proc = ran["all"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = store.runs()
    parent = [r for r in runs if r.data.tags["initstudy.role"] == "parent"]
    children = {r.data.tags["initstudy.init"]: r for r in runs if r.data.tags["initstudy.role"] == "child"}
    assert len(parent) == 1 and set(children) == {"uniform", "xavier", "kaiming"}
    u = children["uniform"]
    assert u.info.status == "FINISHED" and u.data.tags["initstudy.outcome"] == "diverged"
    nan_step = int(u.data.metrics["steps_to_nan"])
    hist = store.client.get_metric_history(u.info.run_id, keys.series("loss"))
    assert [m.step for m in sorted(hist, key=lambda m: m.step)] == list(range(nan_step))  # the finite points
    assert all(np.isfinite(m.value) for m in hist)
    assert "final_loss" not in u.data.metrics and "final_loss_uniform" not in u.data.metrics  # no blow-up mean
    for c in children.values():  # one key per summary: every child the same keys, no per-init ones
        assert not any(k.endswith(tuple(inits.INITS)) or k.startswith(tuple(inits.INITS)) for k in c.data.metrics)
    mf = json.loads(store.download(parent[0].info.run_id, "manifest.json").read_text())
    rs = mf["results_summary"]
    assert rs["steps_to_nan_uniform"] == nan_step and rs["steps_to_nan_kaiming"] is None
    assert rs["final_loss_kaiming"] == children["kaiming"].data.metrics["final_loss"] and rs["final_loss_uniform"] is None
    assert set(mf["seeds"]) >= {"data_seed", "weights/uniform", "weights/xavier", "weights/kaiming"}
    assert store.artifact_names(parent[0].info.run_id) == ["loss_curves.png", "losses.json", "manifest.json"]


def test_params_typed_differently_from_our_parse_are_kept(ran):
    """`-P gain=1 -P lr=1e-3`: mlflow run logs "1" and "1e-3" first; recording must not clash."""
    store, proc = ran["typed"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = store.runs()
    assert run.data.params["gain"] == "1" and run.data.params["lr"] == "1e-3"
    assert run.data.params["weight_seed"] and run.info.status == "FINISHED"


def test_arch_resnet_trains_a_fixup_resnet_and_lsuv_is_refused(ran):
    """`mlflow run . -e ablate -P arch=resnet -P branch=fixup`: the run is core/resnet.py's network (its losses are
    ablate.train's of that config), its params say so, its per-layer keys cover input layer, blocks and readout.
    lsuv on a resnet: one line, exit 2, nothing recorded."""
    store, proc = ran["resnet"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = store.runs()
    p, m = run.data.params, run.data.metrics
    assert (p["arch"], p["branch"], p["branch_layers"], p["depth"]) == ("resnet", "fixup", "2", "3")
    assert not any(k.startswith("param.") for k in p)  # the MLP's per-Linear multipliers do not apply
    with provenance.pin_blas_threads():
        provenance.warm_up_blas()
        expected = train(AblateConfig(**RESNET), "kaiming")
    loss = sorted(store.client.get_metric_history(run.info.run_id, keys.series("loss")), key=lambda x: x.step)
    np.testing.assert_array_equal([x.value for x in loss], expected.losses)
    assert {k.split("/")[1] for k in m if k.startswith("act_std/L")} == {"L01", "L03", "L05"}  # of 3 + 2 stages
    before = len(store.runs())
    proc = subprocess.run([sys.executable, "-m", "initstudy", "ablate", "--arch", "resnet", "--init", "lsuv"],
                          env=store.env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "lsuv" in proc.stderr, proc.stderr
    assert len(store.runs()) == before
