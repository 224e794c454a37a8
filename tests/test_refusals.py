"""The table of refusals: bad input through the real command line (`mlflow run`, the command it runs,
scripts/export_run.py). Each gets one line saying what is wrong and what is allowed, a non-zero exit,
no traceback, and existing runs and folders are left as they were. docs/troubleshooting.md
lists the same table.

All commands run at once in a module fixture (three at a time): most of their cost is Python and
MLflow starting up.
"""
import hashlib
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO, Store, assert_refused, free_port, mlflow_run_cmd
from initstudy.core import inits

EXPORT = [sys.executable, str(REPO / "scripts" / "export_run.py")]
INITSTUDY = [sys.executable, "-m", "initstudy"]


def tree_digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def clone_set(store, children: dict, edit) -> list:
    """Three FINISHED single runs holding the children's artifacts, manifest.json passed through edit(init, text)."""
    ids = []
    for init, child in children.items():
        src = store.download(child.info.run_id, "manifest.json").parent
        rid = store.client.create_run(store.experiment_id, tags={
            "initstudy.experiment": "10-variance-walk", "initstudy.role": "single", "initstudy.init": init}).info.run_id
        folder = store.root / "clones" / rid
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(edit(init, (src / "manifest.json").read_text()))
        (folder / "results.json").write_bytes(store.download(child.info.run_id, "results.json").read_bytes())
        store.client.log_artifacts(rid, str(folder))
        store.client.set_terminated(rid, "FINISHED")
        ids.append(rid)
    return ids


def _mixed(init, text):
    mf = json.loads(text)
    if init == "xavier":
        mf["config"]["depth"] = 4
    return json.dumps(mf)


def _incomplete(init, text):
    mf = json.loads(text)
    if init == "kaiming":
        del mf["seeds"]
    return json.dumps(mf)


def _corrupt(init, text):
    return text[: len(text) // 2] if init == "uniform" else text


def cases(store, world) -> dict:
    """name -> (argv, env, cwd, words that must appear)."""
    env, out = store.env(), str(world["out"])
    dead = f"http://127.0.0.1:{free_port()}"
    ex = lambda *a: EXPORT + [*map(str, a)]  # noqa: E731
    return {
        # through `mlflow run`: every MLproject parameter arrives as a string and is checked by us
        "unknown init": (mlflow_run_cmd("ablate", init="he"), env, ["init", "uniform, xavier, kaiming"]),
        "empty sweep list": (mlflow_run_cmd("sweep", inits=","), env, ["axis init", "no value"]),
        # the command MLproject runs, directly (`mlflow run` start-up costs ~8 s of CPU per case)
        "unknown dtype": (INITSTUDY + ["walk", "--dtype", "int8"], env, ["dtype", "float64, float32, float16"]),
        "unknown activation": (INITSTUDY + ["ablate", "--activation", "swish"], env,
                               ["activation", "linear, relu, tanh, selu, gelu, sigmoid, silu"]),
        "unknown walk activation": (INITSTUDY + ["walk", "--activation", "elu"], env,
                                    ["activation", "linear, relu, tanh, selu, gelu, sigmoid, silu"]),
        "sweep unknown activation": (INITSTUDY + ["sweep", "--study", "walk", "--grid", "activation=selu,swish"], env,
                                     ["activation", "linear, relu, tanh, selu, gelu, sigmoid, silu", "swish"]),
        "unknown diagnose network": (INITSTUDY + ["diagnose", "--network", "softplus"], env,
                                     ["network", "linear, relu, tanh, selu, gelu, sigmoid, silu"]),
        "unknown norm": (INITSTUDY + ["ablate", "--norm", "layernorm"], env, ["norm", "none, batchnorm"]),
        "depth out of range": (INITSTUDY + ["ablate", "--depth", "0"], env, ["depth", "> 0"]),
        "non-numeric width": (INITSTUDY + ["ablate", "--width", "wide"], env, ["width", "integer"]),
        "negative lr": (INITSTUDY + ["ablate", "--lr", "-0.1"], env, ["lr", "> 0"]),
        "momentum >= 1": (INITSTUDY + ["ablate", "--momentum", "1.5"], env, ["momentum", "[0, 1)"]),
        "bad sweep depth": (INITSTUDY + ["sweep", "--depths", "6,x"], env, ["depth", "integer"]),
        "non-numeric lr": (INITSTUDY + ["ablate", "--lr", "fast"], env, ["lr", "number"]),
        "nan momentum": (INITSTUDY + ["ablate", "--momentum", "nan"], env, ["momentum", "finite"]),
        "batch above n_train": (INITSTUDY + ["ablate", "--batch", "5000"], env, ["batch", "n_train"]),
        "unknown data": (INITSTUDY + ["ablate", "--data", "mnist"], env, ["data", "synthetic, mnist1d, digits"]),
        "shape against the data": (INITSTUDY + ["ablate", "--data", "mnist1d", "--input_dim", "256"], env,
                                   ["input_dim=256 contradicts data=mnist1d", "40"]),
        "sweep workers 0": (INITSTUDY + ["sweep", "--workers", "0"], env, ["workers", "1..64"]),
        "sweep unknown study": (INITSTUDY + ["sweep", "--study", "train"], env, ["study", "ablate, walk"]),
        "sweep unknown init": (INITSTUDY + ["sweep", "--inits", "xavier,lecun"], env, ["init", "kaiming"]),
        "sweep empty seeds": (INITSTUDY + ["sweep", "--seeds", ","], env, ["axis seed", "no value"]),
        "sweep steps with walk": (INITSTUDY + ["sweep", "--study", "walk", "--steps", "10"], env,
                                  ["'steps' is not a parameter of study=walk"]),
        "unknown parameter": (INITSTUDY + ["walk", "--bogus", "1"], env, ["unrecognized", "bogus"]),
        "negative sigma_b2": (INITSTUDY + ["walk", "--sigma_b2", "-0.1"], env, ["sigma_b2", ">= 0"]),
        "c0 outside (-1, 1)": (INITSTUDY + ["walk", "--c0", "1"], env, ["c0", "(-1, 1)"]),
        "non-finite gain": (INITSTUDY + ["walk", "--gain", "nan"], env, ["gain", "finite"]),
        "scaling width out of range": (INITSTUDY + ["scaling", "--max_width", "8192"], env,
                                       ["max_width", "power of 2 in 2..4096"]),
        # scripts/export_run.py
        "unknown run id": (ex("--run-id", "0" * 32, "--out", out), env, ["unknown run id"]),
        "unfinished run": (ex(*[a for r in world["unfinished"] for a in ("--run-id", r)], "--out", out), env,
                           ["RUNNING", "not FINISHED", "--allow-unfinished"]),
        "mixed configs": (ex(*[a for r in world["mixed"] for a in ("--run-id", r)], "--out", out, "--force"), env,
                          ["differ in config", "depth"]),
        "existing output": (ex("--run-id", world["parent"], "--out", out), env, ["exists", "--force"]),
        "escaping output path": (ex("--run-id", world["parent"], "--out", "../../escape"), env,
                                 ["outside", "projects"]),
        "corrupt manifest": (ex(*[a for r in world["corrupt"] for a in ("--run-id", r)], "--out", out, "--force"),
                             env, ["manifest", "not valid JSON"]),
        "incomplete manifest": (ex(*[a for r in world["incomplete"] for a in ("--run-id", r)], "--out", out,
                                   "--force"), env, ["missing keys", "seeds"]),
        "unreachable server (export)": (ex("--tracking-uri", dead, "--run-id", world["parent"], "--out", out), env,
                                        ["unreachable", "MLFLOW_TRACKING_URI"]),
        "unreachable server (walk)": (INITSTUDY + ["walk", "--depth", "2"], {**env, "MLFLOW_TRACKING_URI": dead},
                                      ["unreachable", "MLFLOW_TRACKING_URI"]),
        "silent server (walk)": (INITSTUDY + ["walk", "--depth", "2"],
                                 {**env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{world['silent_port']}"},
                                 ["unreachable", "timed out"]),
    }


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    root = tmp_path_factory.mktemp("refusals")
    store = Store(root)
    walk = subprocess.run(INITSTUDY + ["walk", "--depth", "3", "--width", "16"], env=store.env(), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert walk.returncode == 0, walk.stderr[-2000:]
    (parent,) = store.runs("tags.`initstudy.role` = 'parent'")
    children = {r.data.tags["initstudy.init"]: r for r in store.runs("tags.`initstudy.role` = 'child'")}
    world = {"parent": parent.info.run_id, "out": root / "out"}
    first = subprocess.run(EXPORT + ["--run-id", parent.info.run_id, "--out", str(world["out"])], env=store.env(),
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    world["unfinished"] = [store.client.create_run(store.experiment_id, tags={
        "initstudy.experiment": "10-variance-walk", "initstudy.role": "single", "initstudy.init": i}).info.run_id
        for i in inits.LAB_INITS]
    world["mixed"] = clone_set(store, children, _mixed)
    world["incomplete"] = clone_set(store, children, _incomplete)
    world["corrupt"] = clone_set(store, children, _corrupt)
    before_runs = {r.info.run_id: (r.info.status, r.data.metrics, r.data.params) for r in store.runs()}
    before_out = tree_digest(world["out"])
    escape = (REPO / "../../escape").resolve()  # where the refused `--out ../../escape` (cwd REPO) points
    assert not escape.exists(), f"{escape} exists before the test: remove it"
    silent = socket.socket()  # accepts connections (the kernel's backlog), never answers: a wrong URI's hang
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    world["silent_port"] = silent.getsockname()[1]
    table = cases(store, world)

    def go(item):
        name, (argv, env, words) = item
        t0 = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        return name, (proc, words, time.perf_counter() - t0)

    timed = {n: table.pop(n) for n in list(table) if n.startswith(("unreachable", "silent"))}
    with ThreadPoolExecutor(3) as pool:
        done = dict(pool.map(go, table.items()))
    # after the rest (no CPU-bound neighbours), their latency is measured, each one's own wall time: the two
    # refused connections together (~5 s each), then the silent server alone (2 timeouts + backoff: 15 s is tight)
    unreachable = {n: timed.pop(n) for n in list(timed) if n.startswith("unreachable")}
    with ThreadPoolExecutor(len(unreachable)) as pool:
        done.update(pool.map(go, unreachable.items()))
    done.update(map(go, timed.items()))
    silent.close()
    return {"store": store, "world": world, "done": done, "before_runs": before_runs, "before_out": before_out,
            "root": root, "escape": escape}


NAMES = ["unknown init", "unknown activation", "unknown walk activation", "sweep unknown activation",
         "unknown diagnose network", "unknown norm", "unknown dtype", "depth out of range",
         "non-numeric width", "negative lr", "momentum >= 1", "empty sweep list", "bad sweep depth",
         "non-numeric lr", "nan momentum", "batch above n_train", "unknown data", "shape against the data",
         "sweep workers 0", "sweep unknown study",
         "sweep unknown init", "sweep empty seeds", "sweep steps with walk", "unknown parameter",
         "negative sigma_b2", "c0 outside (-1, 1)", "non-finite gain", "scaling width out of range",
         "unknown run id",
         "unfinished run", "mixed configs", "existing output", "escaping output path", "corrupt manifest",
         "incomplete manifest", "unreachable server (export)", "unreachable server (walk)",
         "silent server (walk)"]


@pytest.mark.parametrize("name", NAMES)
def test_refused_with_one_line(refused, name):
    proc, words, seconds = refused["done"][name]
    assert_refused(proc, *words)
    ours = [l for l in proc.stderr.splitlines() if l.startswith(("initstudy", "export_run"))]
    assert len(ours) == 1, proc.stderr  # one line of ours (mlflow run adds its own log lines around it)
    if name.startswith(("unreachable", "silent")):
        print(f"\n{name}: refused after {seconds:.1f} s")
        assert seconds < 15, seconds


def test_existing_data_untouched(refused):
    store = refused["store"]
    assert tree_digest(refused["world"]["out"]) == refused["before_out"]
    # `--out ../../escape`, run in REPO, resolves two levels up: nothing may appear there
    assert not refused["escape"].exists(), refused["escape"]
    now = {r.info.run_id: (r.info.status, r.data.metrics, r.data.params) for r in store.runs()}
    for rid, before in refused["before_runs"].items():
        assert now[rid] == before, rid
    # the only new runs are the ones `mlflow run` opened before our check refused: closed, never RUNNING
    new = [rid for rid in now if rid not in refused["before_runs"]]
    assert len(new) == sum(1 for n in NAMES if refused["done"][n][0].args[2:4] == ["mlflow", "run"])
    assert {now[rid][0] for rid in new} == {"FAILED"}


def test_all_names_covered(refused):
    assert set(NAMES) == set(refused["done"]) and len(NAMES) >= 20
