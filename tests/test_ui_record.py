"""What `mlflow ui` is given, read through the REST endpoints the UI calls, on a real `mlflow server`
after real runs: the plain `mlflow run . -e ablate` lands in the lab's experiment, one that names
Default (`--experiment-name Default`) stays there, every experiment
and run carries a description, no metric series ends in NaN, every child of a parent has the same
summary keys, children carry their parent's source tags, the config params come first."""
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

import numpy as np
import pytest

from conftest import REPO, Server, mlflow_run_cmd
from initstudy.core import inits
from initstudy import studies
from initstudy.record import keys, tracking

SUMMARY = {  # a lab's summary keys: the same on every run, un-prefixed; a run holds those that apply
    studies.STUDIES["ablate"].experiment: {"initial_loss", "expected_initial_loss", "final_loss", "final_val_acc", "loss_slope_last200",
                  "steps_to_nan", "flatline_step"},
    studies.STUDIES["walk"].experiment: {"final_layer_variance", "q_star", "chi1", "c_star", "xi_q", "xi_c", "jacobian_msv", "jacobian_msv_theory",
                "jacobian_spread"},
    studies.STUDIES["diagnose"].experiment: {"initial_loss", "expected_initial_loss", "train_loss", "dev_loss", "final_loss", "steps_to_nan"},
}


class Api:
    """The UI's calls: /ajax-api/2.0/mlflow/... (GET with a query, POST with JSON)."""

    def __init__(self, uri):
        self.base = f"{uri}/ajax-api/2.0/mlflow"

    def get(self, path, **query):
        url = f"{self.base}/{path}?{urllib.parse.urlencode(query, doseq=True)}"
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path, body):
        req = urllib.request.Request(f"{self.base}/{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def experiments(self) -> dict:
        out = self.post("experiments/search", {"max_results": 1000, "view_type": "ALL"})
        return {e["name"]: e for e in out.get("experiments", [])}

    def runs(self, experiment_id, view_type="ACTIVE_ONLY") -> list:
        return self.post("runs/search", {"experiment_ids": [experiment_id], "max_results": 1000,
                                         "run_view_type": view_type}).get("runs", [])

    def history(self, run_id, key) -> list:
        return sorted(self.get("metrics/get-history", run_id=run_id, metric_key=key)["metrics"], key=lambda m: m["step"])


def tags(run) -> dict:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def metrics(run) -> dict:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A fresh server; the user's plain commands into it, naming no experiment."""
    root = tmp_path_factory.mktemp("ui")
    srv = Server(root, f"sqlite:///{root / 'backend.db'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=srv.uri, PYTHONPATH=str(REPO))
    try:
        procs = {
            "ablate": subprocess.run(mlflow_run_cmd("ablate", steps=30), env=env, cwd=REPO, capture_output=True,
                                     text=True, timeout=300),
            "walk": subprocess.run([sys.executable, "-m", "initstudy", "walk", "--depth", "12"], env=env, cwd=root,
                                   capture_output=True, text=True, timeout=300),
            # the user names Default: their choice wins (read on the launching `mlflow run`'s command line)
            "diagnose": subprocess.run(mlflow_run_cmd("diagnose", steps=40, diag_every=10, samples=2)
                                       + ["--experiment-name", "Default"], env=env, cwd=REPO, capture_output=True,
                                       text=True, timeout=300),
        }
        for name, p in procs.items():
            assert p.returncode == 0, (name, p.stderr[-3000:])
        yield srv, Api(srv.uri), procs
    finally:
        srv.stop()


def test_plain_mlflow_run_lands_in_the_lab_experiment(served):
    srv, api, procs = served
    exps = api.experiments()
    lab = api.runs(exps[studies.STUDIES["ablate"].experiment]["experiment_id"])
    (parent,) = [r for r in lab if tags(r)[tracking.ROLE_TAG] == "parent"]
    assert len(lab) == 4 and parent["info"]["status"] == "FINISHED"
    # `mlflow run` opened its run in Default: it stays there as a pointer to the real run, nothing else
    (pointer,) = [r for r in api.runs(exps["Default"]["experiment_id"], "ALL") if tracking.MOVED_TAG in tags(r)]
    assert tags(pointer)[tracking.MOVED_TAG] == parent["info"]["run_id"] and not metrics(pointer)
    assert tags(parent)[tracking.LAUNCHER_TAG] == pointer["info"]["run_id"]
    assert tags(parent)["mlflow.source.type"] == "PROJECT" and tags(parent)["mlflow.project.entryPoint"] == "ablate"
    # the command ends with the link to its run in this server's UI, on the training view
    link = (f"{srv.uri}/#/experiments/{parent['info']['experiment_id']}/runs/{parent['info']['run_id']}"
            "?workflowType=machine_learning")
    assert f"mlflow ui: {link}" in procs["ablate"].stdout
    assert "Traceback" not in procs["ablate"].stderr


def test_experiments_and_runs_carry_descriptions(served):
    _, api, _ = served
    exps = api.experiments()
    for name in (studies.STUDIES["walk"].experiment, studies.STUDIES["ablate"].experiment):
        exp_tags = {t["key"]: t["value"] for t in exps[name].get("tags", [])}
        assert exp_tags[tracking.NOTE_TAG] == studies.description(name) and len(exp_tags[tracking.NOTE_TAG]) > 300
        for run in api.runs(exps[name]["experiment_id"]):
            assert tags(run).get(tracking.NOTE_TAG, "").strip(), (name, run["info"]["run_name"])
    uniform = next(r for r in api.runs(exps[studies.STUDIES["ablate"].experiment]["experiment_id"]) if tags(r).get(tracking.INIT_TAG) == "uniform")
    nan_step = int(metrics(uniform)["steps_to_nan"])
    assert tags(uniform)[tracking.NOTE_TAG].startswith(f"uniform: diverged at step {nan_step}, loss ")


def test_no_series_ends_in_nan_and_summaries_share_keys(served):
    _, api, _ = served
    exps = api.experiments()
    for name, where in ((studies.STUDIES["walk"].experiment, studies.STUDIES["walk"].experiment), (studies.STUDIES["ablate"].experiment, studies.STUDIES["ablate"].experiment), (studies.STUDIES["diagnose"].experiment, "Default")):
        runs = [r for r in api.runs(exps[where]["experiment_id"]) if tags(r).get(tracking.EXPERIMENT_TAG) == name]
        by_id = {r["info"]["run_id"]: r for r in runs}
        for run in runs:
            m = metrics(run)
            assert all(np.isfinite(v) for v in m.values()), (name, m)
            for key in m:  # the UI drops a chart whose last value is NaN: every point is finite
                assert all(np.isfinite(p["value"]) for p in api.history(run["info"]["run_id"], key)), (name, key)
        children = {}
        for run in runs:
            parent = tags(run).get("mlflow.parentRunId")
            if parent:
                children.setdefault(parent, []).append(run)
        for parent, kids in children.items():
            assert len(kids) == len(inits.LAB_INITS)
            for kid in kids:  # the same summary keys, none named for an init; the parent's source tags
                summary = {k for k in metrics(kid) if "/" not in k}
                assert summary <= SUMMARY[name] and summary, (name, summary)
                assert not any(i in k for i in inits.INITS for k in metrics(kid))
                ptags = tags(by_id[parent])
                for k in ("mlflow.source.name", "mlflow.source.git.commit", "mlflow.user"):
                    assert tags(kid)[k] == ptags[k], k
            assert not {k for k in metrics(by_id[parent]) if any(i in k for i in inits.INITS)}
    # the diverged run: its loss up to the last finite step, no final_loss; a trained run: no steps_to_nan
    ab = {tags(r).get(tracking.INIT_TAG): r for r in api.runs(exps[studies.STUDIES["ablate"].experiment]["experiment_id"])}
    u, k = metrics(ab["uniform"]), metrics(ab["kaiming"])
    assert [p["step"] for p in api.history(ab["uniform"]["info"]["run_id"], keys.series("loss"))] == list(range(int(u["steps_to_nan"])))
    assert "final_loss" not in u and "steps_to_nan" not in k and k["final_loss"] > 0
    # diagnose: vocab is a param; the user named Default, so it is `mlflow run`'s own run there, described
    assert studies.STUDIES["diagnose"].experiment not in exps
    (d,) = [r for r in api.runs(exps["Default"]["experiment_id"]) if tracking.MOVED_TAG not in tags(r)]
    assert tracking.LAUNCHER_TAG not in tags(d) and tags(d)["mlflow.source.type"] == "PROJECT"
    assert tags(d)[tracking.NOTE_TAG].startswith("xavier x gain 1.67, norm none: initial loss ")
    assert "vocab" not in metrics(d) and {p["key"]: p["value"] for p in d["data"]["params"]}["vocab"] == "27"


def test_config_params_come_before_provenance(served):
    """`mlflow ui` lists a run's params in the order the server returns them: the config first."""
    _, api, _ = served
    exps = api.experiments()
    for name, first in ((studies.STUDIES["walk"].experiment, "depth"), (studies.STUDIES["ablate"].experiment, "depth"), ("Default", "init")):
        for run in api.runs(exps[name]["experiment_id"]):
            if tracking.MOVED_TAG in tags(run):  # the pointer holds `mlflow run`'s params only
                continue
            order = [p["key"] for p in api.get("runs/get", run_id=run["info"]["run_id"])["run"]["data"]["params"]]
            provenance = [i for i, k in enumerate(order) if k.split(".")[0] in ("versions", "hardware", "blas", "git")]
            assert provenance and order.index(first) < min(provenance), (name, order)
            assert provenance == list(range(min(provenance), len(order))), (name, order)  # nothing after them
