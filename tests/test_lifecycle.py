"""Faults leave nothing RUNNING (issue 24): a signal while a sweep opens its children, the `mlflow run`
launcher killed alone, one LocalCluster per sweep, a SIGKILLed sweep taken over by `resume` or closed by
`initstudy close`, a lost Dask scheduler. Real processes, a real SQLite store, real Dask; tiny grids."""
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from conftest import REPO, Store, assert_refused, initstudy, mlflow_run_cmd, session_processes
from test_sweep_dask import cluster  # noqa: F401 (a fixture: `dask scheduler` + two workers on 127.0.0.1)

SEEDS = ",".join(map(str, range(20)))
OPENING = ["--grid", f"seed={SEEDS};depth=1,2,3,4,5,6,7,8,9,10", "--set", "steps=2;width=8", "--workers", "1"]
SHORT = ["--inits", "kaiming,xavier", "--depths", "4", "--seeds", "0,1,2", "--steps", "300"]


def start(cmd, env):
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def sweep(env, args):
    return start([sys.executable, "-m", "initstudy", "sweep", *args], env)


def all_runs(client):
    return client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=5000)


def wait_until(proc, cond, timeout=120, every=0.1):
    deadline = time.time() + timeout
    while not cond():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(every)


def signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
        return proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_while_the_children_open_closes_every_run(store, sig, code, word):
    """200 children: the signal lands while they are being created (the first 20 exist). Before: 776
    of 1,000 left RUNNING after Ctrl-C; SIGTERM said 'tracking store refused the request', exit 1."""
    proc = sweep(store.env(), OPENING)
    wait_until(proc, lambda: len(store.runs()) >= 20, every=0.05)
    err = signal_group(proc, sig)
    runs = store.runs()
    assert proc.returncode == code and word in err and "Traceback" not in err and "refused" not in err, err[-3000:]
    assert 20 <= len(runs) < 201
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    assert {r.info.status for r in runs} <= {"KILLED", "FINISHED"}


def test_one_cluster_per_sweep_and_the_sweep_ends_with_its_launcher(tmp_path):
    """`mlflow run` (in Default: no experiment named) SIGTERMed alone, as a scheduler's stop of the
    launcher does. The sweep had one LocalCluster (2 worker processes for workers=2, not 4); it ends
    within seconds, its runs and the launcher's run in Default closed as KILLED, no process left."""
    store = Store(tmp_path)
    env = store.env()
    del env["MLFLOW_EXPERIMENT_ID"]
    proc = start(mlflow_run_cmd("sweep", inits="kaiming", depths=4, seeds="0,1", steps=200000, workers=2), env)
    try:
        wait_until(proc, lambda: len([r for r in all_runs(store.client) if r.data.tags.get("initstudy.role") == "child"
                                      and r.info.status == "RUNNING"]) == 2, every=0.5)
        time.sleep(2)  # training
        ours = [p for p in psutil.Process(proc.pid).children(recursive=True) if "initstudy" in " ".join(p.cmdline())]
        (sweep_proc,) = [p for p in ours if "sweep" in p.cmdline() and p.parent() not in ours]  # forked workers say sweep too
        workers = [p for p in sweep_proc.children() if "resource_tracker" not in " ".join(p.cmdline())]
        assert len(workers) == 2, [p.cmdline() for p in sweep_proc.children()]
        proc.send_signal(signal.SIGTERM)  # the launcher only
        proc.communicate(timeout=60)
        t0 = time.time()
        _, alive = psutil.wait_procs([sweep_proc, *workers], timeout=60)
        assert alive == [] and time.time() - t0 < 30
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert session_processes(proc.pid) == []
    status = {(store.client.get_experiment(r.info.experiment_id).name, r.data.tags.get("initstudy.role")): r.info.status
              for r in all_runs(store.client)}
    assert status == {("Default", None): "KILLED", ("10-init-matters-sweeps", "parent"): "KILLED",
                      ("10-init-matters-sweeps", "child"): "KILLED"}, status


def test_a_sigkilled_sweep_is_taken_over_by_resume(store):
    """SIGKILL leaves the parent RUNNING. From another host it cannot be checked: resume refuses and
    names `initstudy close`. Here its owner is gone: resume takes it over, closes the stale copies."""
    proc = sweep(store.env(), SHORT)
    wait_until(proc, lambda: len(store.runs("attributes.status = 'FINISHED'")) >= 2)
    signal_group(proc, signal.SIGKILL)
    (parent,) = store.runs("tags.`initstudy.role` = 'parent'")
    pid = parent.info.run_id
    stale = [r.info.run_id for r in store.runs("attributes.status = 'RUNNING'") if r.info.run_id != pid]
    assert parent.info.status == "RUNNING" and stale and parent.data.tags["initstudy.owner.pid"] == str(proc.pid)
    host = parent.data.tags["initstudy.owner.host"]
    store.client.set_tag(pid, "initstudy.owner.host", "elsewhere")
    refused = initstudy("sweep", *SHORT, "--resume", pid, env=store.env())
    assert_refused(refused, f"initstudy close {pid}", "elsewhere")
    store.client.set_tag(pid, "initstudy.owner.host", host)
    resumed = initstudy("sweep", *SHORT, "--resume", pid, env=store.env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"pid {proc.pid} on {host}, which is gone; taking it over ({len(stale) + 1} stale runs" in resumed.stderr
    assert store.runs("attributes.status = 'RUNNING'") == []
    assert {store.client.get_run(r).info.status for r in stale} == {"KILLED"}
    assert store.client.get_run(pid).info.status == "FINISHED"
    assert len(store.runs("tags.`initstudy.role` = 'child' and attributes.status = 'FINISHED'")) == 6


def test_close_refuses_a_live_owner_and_closes_a_gone_one(store):
    """`initstudy close`: a run whose owner still runs here is refused; one owned elsewhere (or by a
    gone process) is closed as KILLED with its RUNNING children; a closed one has nothing to close."""
    from initstudy.run import signals

    live = store.client.create_run(store.experiment_id, tags=signals.owner_tags()).info.run_id
    gone = store.client.create_run(store.experiment_id, tags={**signals.owner_tags(), "initstudy.owner.host": "gone"})
    kids = [store.client.create_run(store.experiment_id, tags={"mlflow.parentRunId": gone.info.run_id}).info.run_id
            for _ in range(2)]
    store.client.set_terminated(kids[0], "FINISHED")
    # four commands on four different runs at once (each one's start-up is most of its cost), then the repeat
    with ThreadPoolExecutor(4) as pool:
        refused_live, out, bad_id, no_run = pool.map(lambda r: initstudy("close", r, env=store.env()),
                                                     [live, gone.info.run_id, "abc", "0" * 32])
    assert_refused(refused_live, "still computing", f"pid {os.getpid()}")
    assert out.returncode == 0 and "2 runs closed as KILLED" in out.stdout, out.stdout + out.stderr
    assert [store.client.get_run(r).info.status for r in (gone.info.run_id, *kids)] == ["KILLED", "FINISHED", "KILLED"]
    again = initstudy("close", gone.info.run_id, env=store.env())
    assert again.returncode == 0 and "nothing to close" in again.stdout
    assert_refused(bad_id, "32 hex digits")
    assert_refused(no_run, "no run")
    assert store.client.get_run(live).info.status == "RUNNING"


LOST = ["--grid", "init=uniform,kaiming;seed=0,1,2", "--set", "depth=12;width=64;steps=1500"]  # uniform diverges at once


def test_a_lost_scheduler_gives_one_line_and_resumes_elsewhere(store, cluster):  # noqa: F811
    """SIGKILL of `dask scheduler` mid-sweep: one line naming it, the finished children kept, the others
    FAILED; resume continues on a new scheduler (a LocalCluster). Before: a 96-line traceback."""
    address, procs = cluster
    proc = sweep(store.env(), [*LOST, "--scheduler", address])
    wait_until(proc, lambda: len(store.runs("attributes.status = 'FINISHED'")) >= 2)
    procs[0].kill()
    _, err = proc.communicate(timeout=120)
    (parent,) = store.runs("tags.`initstudy.role` = 'parent'")
    assert proc.returncode == 1 and "Traceback" not in err, err[-3000:]
    lines = [l for l in err.splitlines() if "error" in l]
    assert len(lines) == 1 and f"Dask scheduler {address} lost" in lines[0]
    assert f"finished runs kept; continue with resume={parent.info.run_id}" in lines[0]
    status = sorted(r.info.status for r in store.runs("tags.`initstudy.role` = 'child'"))
    assert status.count("FINISHED") >= 2 and set(status) <= {"FINISHED", "FAILED"} and parent.info.status == "FAILED"
    resumed = initstudy("sweep", *LOST, "--resume", parent.info.run_id, env=store.env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert store.client.get_run(parent.info.run_id).info.status == "FINISHED"
    assert len(store.runs("tags.`initstudy.role` = 'child' and attributes.status = 'FINISHED'")) == 6


def test_four_commands_on_a_brand_new_store(tmp_path):
    """4 commands at once on a SQLite store that does not exist yet: MLflow's table creation runs under our
    file lock, one process at a time (before: 3 of 4 died in its migration). Through `mlflow run` the
    launcher opens the store before our code does: docs (README, docs/team-server.md) say to create it first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'new.db'}"
    procs = [start([sys.executable, "-m", "initstudy", "walk", "--init", "kaiming", "--depth", "2", "--width", "8",
                    "--seed", str(s)], env) for s in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e[-2000:] for _, e in outs]
    from mlflow.tracking import MlflowClient

    runs = all_runs(MlflowClient(env["MLFLOW_TRACKING_URI"]))
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1", "2", "3"]
