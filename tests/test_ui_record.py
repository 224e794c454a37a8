"""What `mlflow ui` is given, read through the REST endpoints the UI calls, on a real `mlflow server`
after real runs: the plain `mlflow run . -e ablate` lands in the lab's experiment, one that names
Default (`--experiment-name Default`) stays there, every experiment
and run carries a description, no metric series ends in NaN, every child of a parent has the same
summary keys, children carry their parent's source tags, the config params come first."""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import REPO, Server, mlflow_run_cmd
from initstudy.core import inits
from initstudy import studies
from initstudy.record import keys, labs, manifest, palette, tracking

EXP = {name: study.experiment for name, study in studies.STUDIES.items()}  # each study's lab experiment

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
    run = lambda cmd, cwd=REPO, timeout=300: dict(args=cmd, cwd=cwd, timeout=timeout)  # noqa: E731
    # each command opens its own runs (phase's experiment is made once: tracking retries a lost race)
    commands = {
        # every preset of every entry point (phase's: "" and small), and a sweep's children; longest first
        "phase_small": run(mlflow_run_cmd("phase", preset="small", workers=1), timeout=600),
        "sweep": run(mlflow_run_cmd("sweep", inits="uniform,kaiming", depths="4", seeds="0", steps=20, workers=1),
                     timeout=600),
        "scaling": run(mlflow_run_cmd("scaling", max_width=256, draws=500, depth=6, fw_max_width=128, fw_depth=10,
                                      seeds=2)),
        "ablate": run(mlflow_run_cmd("ablate", steps=30)),
        # the user names Default: their choice wins (read on the launching `mlflow run`'s command line)
        "diagnose": run(mlflow_run_cmd("diagnose", steps=40, diag_every=10, samples=2)
                        + ["--experiment-name", "Default"]),
        "phase": run(mlflow_run_cmd("phase", sigma_w2s="1.5", depths="3", steps=20, width=16, workers=1), timeout=600),
        "walk": run([sys.executable, "-m", "initstudy", "walk", "--depth", "12"], cwd=root),
    }

    def go(item):
        name, kw = item
        return name, subprocess.run(kw["args"], env=env, cwd=kw["cwd"], capture_output=True, text=True,
                                    timeout=kw["timeout"])

    try:
        with ThreadPoolExecutor(2) as pool:  # two at a time: each is one process at one BLAS thread, 2 cores
            procs = dict(pool.map(go, commands.items()))
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
    (pointer,) = [r for r in api.runs(exps["Default"]["experiment_id"], "ALL")
                  if tags(r).get(tracking.MOVED_TAG) == parent["info"]["run_id"]]
    assert not metrics(pointer)
    assert tags(parent)[tracking.LAUNCHER_TAG] == pointer["info"]["run_id"]
    assert tags(parent)["mlflow.source.type"] == "PROJECT" and tags(parent)["mlflow.project.entryPoint"] == "ablate"
    # the command ends with the link to its run in this server's UI, on the training view
    link = (f"{srv.uri}/#/experiments/{parent['info']['experiment_id']}/runs/{parent['info']['run_id']}"
            "?workflowType=machine_learning")
    assert f"mlflow ui: {link}\n" in procs["ablate"].stdout
    assert "Traceback" not in procs["ablate"].stderr


def test_experiments_and_runs_carry_descriptions(served):
    _, api, _ = served
    exps = api.experiments()
    for name in (studies.STUDIES["walk"].experiment, studies.STUDIES["ablate"].experiment):
        exp_tags = {t["key"]: t["value"] for t in exps[name].get("tags", [])}
        eid = exps[name]["experiment_id"]
        assert exp_tags[tracking.NOTE_TAG] == labs.full_description(studies.view(name), eid, studies.description(name))
        assert len(exp_tags[tracking.NOTE_TAG]) > 300
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
            # per-init keys only in the parent's headline section (Finding/final_loss_kaiming)
            assert not {k for k in metrics(by_id[parent]) if any(i in k for i in inits.INITS)
                        and not k.startswith(keys.FINDING + "/")}
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


# ---- issue 23: every record tells the truth -----------------------------------------------------

def all_runs(api) -> list:
    return [r for e in api.experiments().values() for r in api.runs(e["experiment_id"])]


def params(run) -> dict:
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}


def manifest_of(srv, run) -> dict | None:
    """The run's manifest.json as the UI's artifact proxy serves it (None: the run has none)."""
    url = (f"{srv.uri}/get-artifact?path=manifest.json&run_uuid={run['info']['run_id']}")
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError:
        return None


def config_class(config: dict):
    """The config dataclass the manifest's config comes from: the one whose fields hold its keys, fewest
    others (a walk of an MLP leaves the resnet fields out of its document)."""
    from dataclasses import fields

    from initstudy.studies import STUDIES
    from initstudy.studies.diagnose.compute import DiagnoseConfig
    from initstudy.studies.phase.compute import PhaseConfig
    from initstudy.studies.scaling.compute import ScalingConfig

    classes = [s.sweep_part("config") for s in STUDIES.values() if s.sweep] + [DiagnoseConfig, PhaseConfig, ScalingConfig]
    fit = [c for c in classes if set(config) <= {f.name for f in fields(c)}]
    assert fit, sorted(config)
    return min(fit, key=lambda c: len(fields(c)))


def test_recorded_params_rebuild_what_ran(served):
    """Every run of every entry point and preset: each config param it holds says what ran (manifest.json's
    config, in our field names), field by field (a default resolved at run time, "0" = the dataset's:
    `data.<field>` holds the value)."""
    srv, api, _ = served
    checked = set()
    for run in all_runs(api):
        mf = manifest_of(srv, run)
        if mf is None:
            continue
        ran, held = manifest.config_from_lab(mf["config"]), params(run)  # our field names (width, not hidden_dim)
        cls = config_class(ran)
        for k, v in ran.items():
            recorded = held[k]
            assert tracking._same(recorded, v) or (recorded == "0" and tracking._same(held[f"data.{k}"], v)), \
                (run["info"]["run_name"], k, recorded, v)
        checked.add((cls.__name__, held.get("preset", "").strip("'")))  # mlflow run logs an empty one as ''
    # (phase cells hold no manifest: test_phase checks their width and steps against the preset)
    assert {("AblateConfig", ""), ("WalkConfig", ""), ("DiagnoseConfig", ""), ("ScalingConfig", ""),
            ("PhaseConfig", ""), ("PhaseConfig", "small")} <= checked, checked


def test_phase_preset_params_are_what_ran(served):
    """`-P preset=small`: the parent says width 64, lr 0.01, 300 steps, the small grid, as its cells and
    phase.png; `mlflow run`'s own run (MLproject's defaults) is left in Default as a relative pointer."""
    srv, api, procs = served
    exps = api.experiments()
    parents = [r for r in api.runs(exps[EXP["phase"]]["experiment_id"]) if tags(r)[tracking.ROLE_TAG] == "parent"]
    (small,) = [r for r in parents if params(r).get("preset") == "small"]
    p = params(small)
    assert (p["width"], p["lr"], p["steps"], p["sigma_w2s"], p["depths"]) == ("64", "0.01", "300", "1.0,1.75,4.0",
                                                                               "2,10,40"), p
    pointers = {tags(r)[tracking.MOVED_TAG]: r for r in api.runs(exps["Default"]["experiment_id"], "ALL")
                if tracking.MOVED_TAG in tags(r)}
    note = tags(pointers[small["info"]["run_id"]])[tracking.NOTE_TAG]
    assert f"](#/experiments/{small['info']['experiment_id']}/runs/{small['info']['run_id']}?" in note, note
    assert "http" not in note and "width" in note
    for pointer in pointers.values():  # every pointer's link is relative: it works on any host and port
        assert "](#/experiments/" in tags(pointer)[tracking.NOTE_TAG] and "http" not in tags(pointer)[tracking.NOTE_TAG]
    # a cell is named short, drawn in phase.png's colour of its train accuracy, and opens on its train_acc
    cells = [r for r in api.runs(exps[EXP["phase"]]["experiment_id"])
             if tags(r).get("mlflow.parentRunId") == small["info"]["run_id"]]
    assert sorted(r["info"]["run_name"] for r in cells) == sorted(f"σ²{s} d{d}" for s in ("1", "1.75", "4")
                                                                   for d in (2, 10, 40))
    for c in cells:
        assert min(metrics(c)) == keys.finding("train_acc") and metrics(c)["train_acc"] == metrics(c)[keys.finding("train_acc")]
        assert tags(c)[tracking.COLOR_TAG] == palette.cmap_color(metrics(c)["train_acc"])
    assert "runs_failed" not in metrics(small) and metrics(small)[keys.finding("agreement")] == metrics(small)["agreement"]


@pytest.mark.fast
def test_outcome_rule_on_lab_01s_three_runs():
    """Lab 01's committed runs (projects/10-init-matters, 1000 steps): uniform diverged, Kaiming trained, and
    Xavier (0.693 -> 0.662, on the ln 2 line) stalled near chance, not trained."""
    import math

    from initstudy.studies.ablate.compute import STALL_FRACTION, outcome_of

    doc = json.loads((REPO / "projects" / "10-init-matters" / "losses.json").read_text())
    got = {}
    for init, b in doc["inits"].items():
        losses = np.array([np.nan if v is None else v for v in b["loss"]], float)
        got[init] = outcome_of(losses, b["steps_to_nan"], math.log(2))[0]
        assert b["outcome"] == got[init], init  # the committed record says the same
    assert got == {"uniform": "diverged", "xavier": "stalled", "kaiming": "trained"}
    x = doc["inits"]["xavier"]["loss"]
    assert (1 - STALL_FRACTION) * math.log(2) < np.mean(x[-10:]) < math.log(2)  # what makes it stalled


def test_sweep_children_describe_what_they_hold(served):
    """A sweep child's description names only artifacts it has (losses.json, manifest.json), no figure."""
    import re

    srv, api, _ = served
    exps = api.experiments()
    children = [r for r in api.runs(exps[studies.sweep_experiment(EXP["ablate"])]["experiment_id"])
                if tags(r)[tracking.ROLE_TAG] == "child"]
    assert len(children) == 2
    for c in children:
        held = {f["path"] for f in api.get("artifacts/list", run_id=c["info"]["run_id"]).get("files", [])}
        named = set(re.findall(r"[\w]+\.(?:png|json)", tags(c)[tracking.NOTE_TAG]))
        assert named and named - {"sweep.png"} <= held, (named, held)


def test_diverged_run_says_so_first_and_logs_nothing_that_does_not_apply(served):
    _, api, _ = served
    exps = api.experiments()
    runs = api.runs(exps[EXP["ablate"]]["experiment_id"])
    (u,) = [r for r in runs if tags(r).get(tracking.INIT_TAG) == "uniform"]
    m = metrics(u)
    assert "final_val_acc" not in m and "final_loss" not in m  # docs/ui.md: values that do not apply are not logged
    assert min(m) == keys.finding("steps_to_nan") and m[keys.finding("steps_to_nan")] == m["steps_to_nan"]
    (parent,) = [r for r in runs if tags(r)[tracking.ROLE_TAG] == "parent"]
    pm = metrics(parent)
    assert pm[keys.finding("steps_to_nan_uniform")] == m["steps_to_nan"] and keys.finding("final_val_acc_uniform") not in pm
    assert parent["info"]["run_name"] == "ablate steps 30"  # named by what differs from the defaults


def test_colours_headlines_and_the_shared_view(served):
    """Each init's run in its PNG colour, parents grey; a parent's Finding section; the lab's shared view
    (log-y charts first, per-layer sections folded) linked from descriptions and the command's last line."""
    srv, api, procs = served
    exps = api.experiments()
    walk = api.runs(exps[EXP["walk"]]["experiment_id"])
    for r in walk:
        t = tags(r)
        want = palette.PARENT if t[tracking.ROLE_TAG] == "parent" else palette.INIT_COLORS[t[tracking.INIT_TAG]]
        assert t[tracking.COLOR_TAG] == want
        if t[tracking.ROLE_TAG] == "parent":
            m = metrics(r)
            assert {keys.finding(f"growth_per_layer_{i}") for i in inits.LAB_INITS} <= set(m)
            for i in inits.LAB_INITS:  # measured against theory (linear, width 256: uniform x21.3, kaiming x2, xavier x1)
                measured, theory = m[keys.finding(f"growth_per_layer_{i}")], m[keys.finding(f"growth_per_layer_theory_{i}")]
                assert abs(measured / theory - 1) < 0.1, (i, measured, theory)
            assert m[keys.finding("growth_per_layer_theory_uniform")] > 20 and abs(m[keys.finding("growth_per_layer_theory_xavier")] - 1) < 1e-9
    for name in (EXP["walk"], EXP["ablate"], EXP["phase"], EXP["scaling"]):
        eid = exps[name]["experiment_id"]
        exp_tags = {t["key"]: t["value"] for t in exps[name].get("tags", [])}
        view = json.loads(exp_tags[tracking.VIEW_TAG + labs.VIEW_KEY])
        assert view == studies.view(name).state()
        assert view["compareRunCharts"][0]["metricKey"] == studies.view(name).charts[0][0][0]
        path = labs.view_path(eid)
        assert f"]({path})" in exp_tags[tracking.NOTE_TAG]
        for run in api.runs(eid):
            assert f"]({path})" in tags(run)[tracking.NOTE_TAG], (name, run["info"]["run_name"])
    assert any(c["scaleType"] == "log" and set(c["selectedMetricKeys"]) == {keys.series("var"), keys.series("var_theory")}
               for c in studies.view(EXP["walk"]).state()["compareRunCharts"])
    folded = {s["name"] for s in studies.view(EXP["ablate"]).state()["compareRunSections"] if not s["display"]}
    assert {"act_mean", "grad_std", "update_data"} <= folded
    ours = [l for l in procs["ablate"].stdout.splitlines() if l.startswith(("ablate:", "  "))]  # not mlflow run's
    assert ours[-1] == f"  charts: {srv.uri}/{labs.view_path(exps[EXP['ablate']]['experiment_id'])}", ours
    # the scaling run: its headline first, the theory exact (no 0.9999999999999998 sawtooth)
    (sc,) = api.runs(exps[EXP["scaling"]]["experiment_id"])
    assert min(metrics(sc)).startswith(keys.FINDING + "/")
    for key in ("var_scale_1_over_sqrt_n_theory", keys.finding("var_scale_1_over_sqrt_n_theory")):
        assert {p["value"] for p in api.history(sc["info"]["run_id"], key)} == {1.0}


@pytest.mark.fast
def test_readme_stays_short_and_lists_every_lab_experiment():
    """The README is for a newcomer: at most 12,000 characters, and its `mlflow ui` section names every
    lab's experiment (the registry's), so none is found only by accident."""
    text = (REPO / "README.md").read_text()
    assert len(text) <= 12_000, len(text)
    section = text[text.index("## Looking at runs in `mlflow ui`"):]
    shipped = [s for s in studies.STUDIES.values() if str(s.job).startswith("initstudy.")]  # not a test's toy
    assert len(shipped) >= 8, [s.name for s in shipped]
    for study in shipped:
        assert f"`{study.experiment}`" in section, study.experiment
