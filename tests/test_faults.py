"""Faults for real: a signal to a training `mlflow run`, four runs at once into one fresh store."""
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import REPO, mlflow_run_cmd, session_processes
from initstudy.studies.ablate import compute as ablate
from initstudy.record import keys, provenance

KILL_CONFIG = dict(init="kaiming", depth=4, width=64, input_dim=64, steps=200000, eval_every=1000, diag_every=1000)


def wait_for_training(store, proc, timeout=90):
    """The run, once training has begun streaming losses into it; (run, points recorded so far)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        runs = store.runs("tags.`mlflow.runName` = 'ablate-kaiming'")
        if runs:
            seen = len(store.client.get_metric_history(runs[0].info.run_id, keys.series("loss")))
            if seen:
                return runs[0], seen
        time.sleep(0.5)
    raise AssertionError("training never started")


@pytest.mark.parametrize("sig,via", [(signal.SIGTERM, "mlflow run"), (signal.SIGINT, "python -m initstudy")])
def test_signal_mid_training_flushes_and_closes(store, sig, via):
    """The signal goes to the process group, as a terminal's Ctrl-C or a scheduler's stop does.
    SIGINT goes to the bare command (what MLproject runs) to spare a second `mlflow run` start."""
    if via == "mlflow run":
        cmd = mlflow_run_cmd("ablate", **KILL_CONFIG)
    else:
        cmd = [sys.executable, "-m", "initstudy", "ablate"] + [a for k, v in KILL_CONFIG.items() for a in (f"--{k}", str(v))]
    proc = subprocess.Popen(cmd, env=store.env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        run, seen = wait_for_training(store, proc)
        time.sleep(1)  # more steps computed than recorded
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0, err[-3000:]
    run = store.client.get_run(run.info.run_id)
    assert run.info.status == "KILLED", run.info.status  # the README: "runs closed as KILLED"
    hist = sorted(store.client.get_metric_history(run.info.run_id, keys.series("loss")), key=lambda m: m.step)
    assert len(hist) >= max(seen, 100), (len(hist), seen, err[-3000:])  # what was computed is there...
    assert len(hist) < KILL_CONFIG["steps"]  # ...and the run really was cut short
    assert [m.step for m in hist] == list(range(len(hist)))
    # the flushed points are the oracle's first steps, bit for bit
    config = ablate.AblateConfig(**{k: v for k, v in KILL_CONFIG.items() if k != "init"} | {"steps": len(hist)})
    with provenance.pin_blas_threads():
        provenance.warm_up_blas()
        oracle = ablate.train(config, "kaiming")
    np.testing.assert_array_equal([m.value for m in hist], oracle.losses)
    # nothing of ours is left running: no run, and no worker (training or figures) of the session
    assert store.runs("attributes.status = 'RUNNING'") == []
    assert session_processes(proc.pid) == []


def test_four_concurrent_runs_into_one_fresh_store(store):
    """4 `mlflow run` processes into a fresh SQLite store (experiment pre-created): 0 errors, every point back."""
    steps = 60
    cmd = mlflow_run_cmd("ablate", init="kaiming", depth=3, width=32, input_dim=32, steps=steps)
    procs = [subprocess.Popen(cmd + ["-P", f"seed={s}"], env=store.env(), cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e[-3000:] for p, (_, e) in zip(procs, outs) if p.returncode]
    assert not any("Traceback" in e or "locked" in e for _, e in outs)
    runs = store.runs()
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1", "2", "3"]
    for r in runs:
        hist = store.client.get_metric_history(r.info.run_id, keys.series("loss"))
        assert sorted(m.step for m in hist) == list(range(steps))
        val = store.client.get_metric_history(r.info.run_id, keys.series("val_loss"))
        assert len(val) == len({m.step for m in val}) == steps // 10 + 1


def test_one_dataset_logged_by_many_runs_at_once(store):
    """MLflow's log_inputs looks a dataset up, then inserts it, so runs logging the same dataset at the
    same moment race for its unique key (CI: 1 of 4 concurrent `mlflow run`s failed on it). Every run
    gets the dataset, and all share the one row."""
    from initstudy.record import tracking

    tracker, x = tracking.Tracker(store.uri), np.arange(12.0).reshape(4, 3)
    n = 8
    for r in range(6):  # a fresh dataset name each round: each round is a new race
        runs = [store.client.create_run(store.experiment_id).info.run_id for _ in range(n)]
        barrier = threading.Barrier(n)

        def log(rid, name=f"set{r}"):
            barrier.wait()
            return tracker.log_dataset(rid, name, x)

        with ThreadPoolExecutor(n) as ex:
            digests = list(ex.map(log, runs))
        assert len(set(digests)) == 1
        for rid in runs:
            got = [(d.dataset.name, d.dataset.digest) for d in store.client.get_run(rid).inputs.dataset_inputs]
            assert got == [(f"set{r}", digests[0])]


def tree_digest(folder):
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_kill_during_export_force_leaves_the_folder_whole(store, tmp_path):
    """SIGKILL `export_run.py --force` the moment its new folder appears beside the old one (it is
    writing or renaming): the lab folder is still there, whole. The same runs give the same bytes,
    so whether the kill came before or after the swap the folder must equal the first export."""
    from conftest import initstudy

    walk = initstudy("walk", "--depth", 3, "--width", 16, env=store.env())
    assert walk.returncode == 0, walk.stderr[-2000:]
    (parent,) = store.runs("tags.`initstudy.role` = 'parent'")
    out = tmp_path / "out"
    cmd = [sys.executable, str(REPO / "scripts" / "export_run.py"), "--run-id", parent.info.run_id, "--out", str(out)]
    first = subprocess.run(cmd, env=store.env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    target = out / "10-variance-walk"
    before = tree_digest(target)
    caught = 0
    for _ in range(3):
        proc = subprocess.Popen(cmd + ["--force"], env=store.env(), cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        while proc.poll() is None:  # busy-poll: the window is a few milliseconds
            if any(n.startswith(".10-variance-walk.") for n in os.listdir(out)):
                proc.kill()
                caught += 1
                break
        proc.wait()
        assert tree_digest(target) == before
        if caught:
            break
    assert caught, "never caught the export between writing and renaming"
    assert proc.returncode == -signal.SIGKILL


def test_sigterm_mid_sweep_keeps_finished_children_and_kills_the_rest(store):
    """A sweep stopped by SIGTERM (to its process group) once some children are done: exit 143,
    the finished children stay FINISHED with their records, the others and the parent end KILLED,
    and no worker outlives it. uniform's children diverge at once; kaiming's would train for minutes."""
    cmd = [sys.executable, "-m", "initstudy", "sweep", "--inits", "uniform,kaiming", "--depths", "12",
           "--seeds", "0,1", "--workers", "2", "--steps", "200000"]
    proc = subprocess.Popen(cmd, env=store.env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while len(store.runs("attributes.status = 'FINISHED'")) < 2:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.5)
        time.sleep(1)  # kaiming's children are training now
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err and "terminated" in err, err[-3000:]
    status = {(r.data.tags.get("initstudy.role"), r.data.tags.get("initstudy.init")): r.info.status
              for r in store.runs()}
    children = {k: v for k, v in status.items() if k[0] == "child"}
    assert len(store.runs("tags.`initstudy.role` = 'child'")) == 4
    assert {s for (_, init), s in children.items() if init == "uniform"} == {"FINISHED"}
    assert {s for (_, init), s in children.items() if init == "kaiming"} == {"KILLED"}
    assert status[("parent", None)] == "KILLED"
    for r in store.runs("tags.`initstudy.init` = 'uniform'"):
        assert r.data.tags["initstudy.outcome"] == "diverged" and "losses.json" in store.artifact_names(r.info.run_id)
    assert session_processes(proc.pid) == []
