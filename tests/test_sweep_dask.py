"""The sweep on Dask, for real: a running cluster (`dask scheduler` + two `dask worker` on 127.0.0.1)
with a worker SIGKILLed mid-task, a task that kills its worker every time, an unreachable scheduler,
a bad grid, and a sweep stopped then resumed. Every child is checked bit for bit against the same
config trained alone in this process."""
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psutil
import pytest

from conftest import REPO, Store, assert_refused, free_port, initstudy, mlflow_run, mlflow_run_cmd, session_processes
from initstudy.studies.ablate import compute as ablate
from initstudy.record import keys, provenance

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def history(store, run_id, key=keys.series("loss")):
    return [m.value for m in sorted(store.client.get_metric_history(run_id, key), key=lambda m: m.step)]


def oracle(init, **config):
    return ablate.train(ablate.AblateConfig(**config), init).losses.astype(float)


def children(store, parent_id=None, status=None):
    runs = store.runs("tags.`initstudy.role` = 'child'")
    return [r for r in runs if (parent_id is None or r.data.tags["mlflow.parentRunId"] == parent_id)
            and (status is None or r.info.status == status)]


@pytest.fixture
def cluster(tmp_path):
    """`dask scheduler` and two `dask worker --nthreads 1` on 127.0.0.1, free ports; stopped by PID."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1",
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2"}
    dask = [sys.executable, "-m", "dask"]
    log = open(tmp_path / "dask.log", "w")
    procs = [subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port", str(port),
                                      "--dashboard-address", "127.0.0.1:0"], env=env, stdout=log, stderr=log)]
    address = f"tcp://127.0.0.1:{port}"
    for _ in range(2):
        procs.append(subprocess.Popen(dask + ["worker", address, "--nthreads", "1", "--nworkers", "1", "--host",
                                              "127.0.0.1", "--dashboard-address", "127.0.0.1:0"],
                                      env=env, stdout=log, stderr=log))
    try:
        yield address, procs
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


def test_real_cluster_survives_a_worker_sigkilled_mid_task(store, cluster):
    """Each worker is a nanny (`dask worker`) and its worker process; the busiest worker process is
    SIGKILLed while it trains: its task runs again elsewhere, every child FINISHED and bit-identical."""
    address, procs = cluster
    grid = dict(inits="kaiming", depths="6", seeds="0,1,2,3", steps=300)
    proc = subprocess.Popen(mlflow_run_cmd("sweep", scheduler=address, **grid), env=store.env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not children(store, status="FINISHED"):
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.2)
        workers = [c for p in procs[1:] for c in psutil.Process(p.pid).children()
                   if "resource_tracker" not in " ".join(c.cmdline())]  # the nannies' worker processes
        assert len(workers) == 2
        for w in workers:
            w.cpu_percent()
        time.sleep(0.5)
        load = {w.pid: w.cpu_percent() for w in workers}
        busy = max(workers, key=lambda w: load[w.pid])
        pending = len(children(store)) - len(children(store, status="FINISHED"))
        busy.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert pending >= 1 and load[busy.pid] > 20, (pending, load)  # it was training when it died
    assert f"the Dask cluster at {address}" in err
    (parent,) = store.runs("tags.`initstudy.role` = 'parent'")
    kids = children(store, parent.info.run_id)
    assert parent.info.status == "FINISHED" and sorted(r.info.status for r in kids) == ["FINISHED"] * 4
    for r in kids:
        seed = int(r.data.tags["initstudy.seed"])
        np.testing.assert_array_equal(history(store, r.info.run_id), oracle("kaiming", depth=6, seed=seed, steps=300))


def test_a_task_that_kills_its_worker_fails_after_bounded_tries(store):
    """seed=1 SIGKILLs its worker every time (INITSTUDY_FAULT_KILL_WORKER): tried 1 + allowed-failures
    (2) times, then FAILED; the other children FINISHED; exit 1 with the count."""
    env = store.env(INITSTUDY_FAULT_KILL_WORKER="seed=1")
    proc = subprocess.run(mlflow_run_cmd("sweep", inits="kaiming", depths="3", seeds="0,1,2", steps=30), env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 of 3 sweep runs failed: s1 (its worker died 3 times" in proc.stderr, proc.stderr[-3000:]
    kids = {r.data.tags["initstudy.seed"]: r for r in children(store)}
    assert {s: r.info.status for s, r in kids.items()} == {"0": "FINISHED", "1": "FAILED", "2": "FINISHED"}
    assert "died 3 times" in kids["1"].data.tags["initstudy.error"]
    (parent,) = store.runs("tags.`initstudy.role` = 'parent'")
    assert parent.info.status == "FAILED" and parent.data.metrics["runs_failed"] == 1
    rows = json.loads(store.download(parent.info.run_id, "sweep.json").read_text())["runs"]
    assert [r["status"] for r in rows] == ["FINISHED", "FAILED", "FINISHED"]


def test_unreachable_scheduler_one_line_no_run(store):
    t0 = time.time()
    proc = initstudy("sweep", "--scheduler", f"tcp://127.0.0.1:{free_port()}", "--inits", "kaiming", "--depths", 3,
                     "--seeds", 0, "--steps", 10, env=store.env())
    assert time.time() - t0 < 15
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert [l for l in proc.stderr.splitlines() if "error" in l] == [
        l for l in proc.stderr.splitlines() if "unreachable" in l] != []
    assert store.runs() == []


def test_bad_grid_refused_before_anything_starts(store):
    cases = ((["--grid", "depth=4;gain=1,0"], ("gain must be > 0",)),
             (["--grid", "batch=64,600;n_train=500,1000"], ("grid point", "batch must be <= n_train (500)")),
             (["--grid", "init=kaiming;foo=1"], ("'foo' is not a parameter of study=ablate",)),
             (["--set", "steps=200", "--steps", "100"], ("steps is given twice",)),
             (["--study", "trainability"], ("study must be one of",)),  # "phase" is a study since issue 15
             (["--tls-ca-file", "ca.pem"], ("apply to a scheduler=tls://",)),
             (["--scheduler", "tls://127.0.0.1:8786", "--tls-ca-file", "nowhere.pem"], ("tls_ca_file", "file")),
             (["--scheduler", "127.0.0.1"], ("scheduler must be tcp://HOST:PORT",)))
    with ThreadPoolExecutor(2) as pool:  # two at a time: each is a Python start-up and one line
        procs = list(pool.map(lambda args: initstudy("sweep", *args, env=store.env()), [a for a, _ in cases]))
    for proc, (_, words) in zip(procs, cases):
        assert_refused(proc, *words)
        assert proc.returncode == 2
    assert store.runs() == []


def test_any_parameter_as_an_axis(store):
    """gain as an axis, activation fixed: each child's config and bits are its point's."""
    proc = mlflow_run(store, "sweep", grid="init=kaiming;gain=0.5,2;depth=3;seed=7", set="steps=40;activation=tanh")
    assert proc.returncode == 0, proc.stderr[-3000:]
    kids = {r.info.run_name: r for r in children(store)}
    assert sorted(kids) == ["gain=0.5", "gain=2"]
    for name, gain in (("gain=0.5", 0.5), ("gain=2", 2.0)):
        assert kids[name].data.params["activation"] == "tanh" and float(kids[name].data.params["gain"]) == gain
        np.testing.assert_array_equal(history(store, kids[name].info.run_id),
                                      oracle("kaiming", gain=gain, depth=3, seed=7, steps=40, activation="tanh"))


def listen_addresses(pids) -> set:
    out = set()
    for pid in pids:
        try:
            out |= {c.laddr.ip for c in psutil.Process(pid).net_connections() if c.status == psutil.CONN_LISTEN}
        except psutil.Error:  # gone meanwhile
            pass
    return out


RESUME = dict(inits="kaiming,xavier", depths="4", seeds="0,1,2", steps=300)


def test_sigterm_then_resume_equals_an_uninterrupted_sweep(store, tmp_path):
    """SIGTERM a sweep once two children are done; resume it: the FINISHED children are kept, the
    rest run again as new children, and the final set equals an uninterrupted sweep's child by child."""
    cmd = [sys.executable, "-m", "initstudy", "sweep"] + [a for k, v in RESUME.items() for a in (f"--{k}", str(v))]
    proc = subprocess.Popen(cmd, env=store.env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while len(children(store, status="FINISHED")) < 2:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.1)
        listening = listen_addresses(session_processes(proc.pid, grace=0))
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # an uninterrupted sweep of the same grid, in its own experiment, meanwhile: compared at the end
    other_store = Store(tmp_path / "ref")
    ref = subprocess.Popen(mlflow_run_cmd("sweep", **RESUME), env=other_store.env(), cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        resume_and_compare(store, proc, err, listening, cmd, other_store, ref)
    finally:
        if ref.poll() is None:
            os.killpg(ref.pid, signal.SIGKILL)
            ref.wait()


def resume_and_compare(store, proc, err, listening, cmd, other_store, ref):
    assert proc.returncode == 143 and "Traceback" not in err, err[-3000:]
    assert listening == {"127.0.0.1"}  # the LocalCluster's scheduler, workers, nannies: local only
    assert session_processes(proc.pid) == []  # the LocalCluster's processes are gone too
    (parent,) = store.runs("tags.`initstudy.role` = 'parent'")
    assert parent.info.status == "KILLED"
    first = {r.info.run_id: r.info.status for r in children(store)}
    done = [rid for rid, s in first.items() if s == "FINISHED"]
    assert len(first) == 6 and 2 <= len(done) < 6 and set(first.values()) <= {"FINISHED", "KILLED"}, first
    # a different grid is refused, in one line
    other = initstudy("sweep", *cmd[4:-2], "--seeds", "0,1", "--resume", parent.info.run_id, env=store.env())
    assert_refused(other, "differ from the sweep's")
    resumed = mlflow_run(store, "sweep", resume=parent.info.run_id, **RESUME)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    parent = store.client.get_run(parent.info.run_id)
    assert parent.info.status == "FINISHED"
    now = {r.info.run_id: r for r in children(store, parent.info.run_id)}
    assert {rid: now[rid].info.status for rid in first} == first  # the old children stay as they ended
    final = {r.info.run_name: r for r in now.values() if r.info.status == "FINISHED"}
    assert len(final) == 6 and set(done) <= {r.info.run_id for r in final.values()}
    doc = json.loads(store.download(parent.info.run_id, "sweep.json").read_text())
    assert sorted(r["run_id"] for r in doc["runs"]) == sorted(r.info.run_id for r in final.values())
    # the uninterrupted sweep: the same children, bit for bit
    _, ref_err = ref.communicate(timeout=600)
    assert ref.returncode == 0, ref_err[-3000:]
    ref_children = {r.info.run_name: r for r in children(other_store)}
    assert sorted(ref_children) == sorted(final)
    for name, r in final.items():
        assert history(store, r.info.run_id) == history(other_store, ref_children[name].info.run_id), name
