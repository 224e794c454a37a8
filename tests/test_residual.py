"""The residual study (issue 26, lab 40): its cells, its claims, the command end to end through `mlflow run`,
export to a folder and reproduce bit for bit; the committed projects/40-residual pinned."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, Store, assert_refused, mlflow_run_cmd
from initstudy.core import nn
from initstudy.core.config import ConfigError
from initstudy.studies.residual import compute as residual

FOLDER = REPO / "projects" / "40-residual"
SCRIPT_ENV = {**os.environ, "PYTHONPATH": str(REPO)}  # a folder script imports this checkout's initstudy
TINY = dict(models="none,zero,fixup,mlp", depths="2", seeds="0", lrs="0.01,0.05", steps="5", width="8", batch="16")


def cell(model, depth, seed, lr, train, test=0.1, diverged=False):
    return {"model": model, "depth": depth, "seed": seed, "lr": lr, "train_acc": train, "test_acc": test,
            "diverged": diverged}


@pytest.mark.fast
def test_best_lr_and_claims_by_hand():
    cells = [cell("zero", 100, s, lr, acc) for s, lr, acc in [(0, 0.01, 0.5), (1, 0.01, 0.7), (0, 0.05, 0.9),
                                                              (1, 0.05, 0.2)]]  # means 0.6 vs 0.55: 0.01
    cells += [cell("none", 100, s, lr, 0.1, diverged=True) for s in (0, 1) for lr in (0.01, 0.05)]  # tie: the smaller
    cells += [cell("zero", 10, s, 0.05, 0.8) for s in (0, 1)] + [cell("none", 10, s, 0.05, 0.35) for s in (0, 1)]
    assert residual.best_lrs(cells) == {"zero": {100: 0.01, 10: 0.05}, "none": {100: 0.01, 10: 0.05}}
    c = residual.claims(cells, [10, 100])
    assert c["train_at_deepest"] == ["zero"]
    assert c["fail_from_depth"] == {"zero": None, "none": 100}
    assert c["table"]["zero"]["100"] == {"lr": 0.01, "train_acc": 0.6, "test_acc": 0.1, "diverged": 0, "seeds": 2}
    assert c["table"]["none"]["100"]["diverged"] == 2


@pytest.mark.fast
def test_zero_and_fixup_start_as_their_input_layer():
    """At init a zero/Fixup resnet is the readout of x_0 (every branch outputs 0); Fixup's readout is 0, so
    its first loss is ln(classes) exactly."""
    x = np.random.default_rng(0).standard_normal((16, 40))
    for model in ("zero", "fixup"):
        c = residual.CellConfig(model=model, depth=5, width=32, dtype="float64")
        net = residual.build_model(c, "kaiming", 40, 10)
        logits = net.forward(x)
        np.testing.assert_array_equal(net.res_blocks[-1].out, net.layers[0].out)
        if model == "fixup":
            assert nn.cross_entropy(logits, np.zeros(16, int))[0] == pytest.approx(math.log(10), abs=1e-15)


@pytest.mark.fast
def test_mlp_has_as_many_weight_layers():
    c = residual.CellConfig(model="mlp_bn", depth=3, width=16)
    net = residual.build_model(c, "kaiming", 40, 10)
    assert len(net.linears) == 8 and sum(isinstance(l, nn.BatchNorm1d) for l in net.layers) == 7
    r = residual.build_model(residual.CellConfig(model="sqrt_depth", depth=3, width=16), "kaiming", 40, 10)
    assert len(r.linears) + sum(len(b.linears) for b in r.res_blocks) == 8


@pytest.mark.fast
def test_the_done_line_when_no_cell_finished():
    """No cell finished: the done line says so, and the command goes on to name the failed cells (JobFailed)."""
    from initstudy.studies.residual import job

    doc = {"claims": residual.claims([cell("zero", 10, 0, 0.01, 0.9)], [10])}
    assert job.headline(doc) == "train at depth 10: zero" and job.headline({"claims": None}) == "no cell finished"


@pytest.mark.fast
@pytest.mark.parametrize("field,value,words", [("models", "none,resnet", "models"), ("depths", "0,10", "depth"),
                                               ("lrs", "0.01,0.01", "distinct"), ("init", "lsuv", "lsuv")])
def test_refused_in_process(field, value, words):
    with pytest.raises(ConfigError, match=words):
        residual.ResidualConfig(**{field: value}).validate()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One tiny study through `mlflow run . -e residual` (4 models x 2 lrs at depth 2, 5 steps), exported by the
    registry's export (scripts/export_run.py --run-id PARENT)."""
    store = Store(tmp_path_factory.mktemp("residual"))
    proc = subprocess.run(mlflow_run_cmd("residual", **TINY), env=store.env(), cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent = store.runs("tags.`initstudy.role` = 'parent'")[0]
    out = store.root / "projects"
    exp = subprocess.run([sys.executable, "scripts/export_run.py", "--run-id", parent.info.run_id, "--out", str(out)],
                         env={**store.env(), "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True,
                         timeout=300)  # a script's sys.path holds scripts/, not this checkout
    assert exp.returncode == 0, exp.stderr[-3000:]
    return store, parent, out / "40-residual"


def test_parent_children_and_document(study):
    store, parent, folder = study
    children = store.runs(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 8 and all(r.info.status == "FINISHED" for r in children)
    doc = json.loads(store.download(parent.info.run_id, "residual.json").read_text())
    assert len(doc["cells"]) == 8
    for c in doc["cells"]:
        assert {"arch", "branch", "norm", "depth", "seed", "lr", "train_acc", "test_acc", "diverged"} <= set(c)
        assert (c["arch"], c["branch"]) == (("mlp", None) if c["model"] == "mlp" else ("resnet", c["model"]))
        child = next(r for r in children if r.info.run_id == c["run_id"])
        assert child.data.metrics["train_acc"] == c["train_acc"]  # the cell's numbers are its run's, exact
    assert {"residual.png", "manifest.json"} <= set(store.artifact_names(parent.info.run_id))
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "manifest.json", "residual.json", "residual.png",
                                                         "residual.py"]


def test_reproduce_bit_for_bit_and_tamper(study):
    _, _, folder = study
    doc = json.loads((folder / "residual.json").read_text())
    label = next(c["label"] for c in doc["cells"] if c["model"] == "fixup")
    run = lambda *a: subprocess.run([sys.executable, str(folder / "residual.py"), *a], cwd=REPO,  # noqa: E731
                                    capture_output=True, text=True, timeout=600, env=SCRIPT_ENV)
    ok = run("--cells", label)
    assert ok.returncode == 0 and "reproduced bit for bit: 1 cell of 8" in ok.stdout, ok.stdout + ok.stderr
    labels = ",".join(c["label"] for c in doc["cells"][:2])  # the registry's command, two cells
    both = subprocess.run([sys.executable, "-m", "initstudy", "reproduce", str(folder / "manifest.json"), "--cells",
                           labels], cwd=REPO, capture_output=True, text=True, timeout=600, env=SCRIPT_ENV)
    assert both.returncode == 0 and "reproduced bit for bit: 2 cells of 8" in both.stdout, both.stdout + both.stderr
    for c in doc["cells"]:
        if c["label"] == label:
            c["test_acc"] = c["test_acc"] + 1e-9
    (folder / "residual.json").write_text(json.dumps(doc))
    bad = run("--cells", label)
    assert bad.returncode == 1 and "test_acc recorded" in bad.stdout, bad.stdout + bad.stderr
    assert_refused(run("--cells", "no such cell"), "cells must be")


@pytest.mark.parametrize("args,words", [(["--models", "mlp,bogus"], "models"), (["--depths", "0"], "depth"),
                                        (["--init", "lsuv"], "lsuv")])
def test_refused_on_the_command_line(tmp_path, args, words):
    store = Store(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "initstudy", "residual", *args], env=store.env(), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert_refused(proc, words)
    assert store.runs() == []


@pytest.mark.fast
def test_committed_folder_readme_and_claims():
    """projects/40-residual: the README is its numbers rendered (byte for byte); the claims as measured."""
    from initstudy.publish import readme

    doc = json.loads((FOLDER / "residual.json").read_text())
    mf = json.loads((FOLDER / "manifest.json").read_text())
    assert readme.render("residual", doc, mf) == (FOLDER / "README.md").read_text()
    c = doc["claims"]
    assert c["train_at_deepest"] == ["sqrt_depth", "zero", "fixup"]
    assert c["fail_from_depth"] == {"mlp": 50, "mlp_bn": 50, "none": 10, "sqrt_depth": None, "zero": None,
                                    "fixup": None}
    assert all(x["diverged"] for x in doc["cells"] if x["model"] == "none")  # every cell, every lr
    t = c["table"]
    assert [round(t[m]["100"]["test_acc"], 3) for m in ("sqrt_depth", "zero", "fixup")] == [0.599, 0.552, 0.487]
    assert [round(t[m]["10"]["test_acc"], 3) for m in ("sqrt_depth", "zero", "fixup")] == [0.587, 0.605, 0.621]
    assert [round(t[m]["10"]["test_acc"], 3) for m in ("mlp", "mlp_bn")] == [0.451, 0.436]
    assert [round(t[m]["100"]["train_acc"], 3) for m in ("sqrt_depth", "zero", "fixup")] == [0.942, 0.702, 0.536]
    assert {m: [t[m][d]["lr"] for d in ("10", "50", "100")] for m in ("sqrt_depth", "zero", "fixup")} == {
        "sqrt_depth": [0.01, 0.01, 0.01], "zero": [0.03, 0.01, 0.01], "fixup": [0.03, 0.03, 0.01]}
    lrs = (0.003, 0.01, 0.03)
    everywhere = [f"model={m} d{d} s{s} lr={lr}" for m, d in [("mlp_bn", 100), ("none", 10), ("none", 50), ("none", 100)]
                  for s in (0, 1) for lr in lrs]  # the MLP + BN at depth 100 and none at every depth, every lr
    too_fast = ["model=mlp d100 s1 lr=0.03", "model=sqrt_depth d50 s1 lr=0.03"] + [  # the largest lr, deep
        f"model={m} d100 s{s} lr=0.03" for m in ("zero", "fixup") for s in (0, 1)]
    assert sorted(x["label"] for x in doc["cells"] if x["diverged"]) == sorted(everywhere + too_fast)
    assert (doc["config"]["width"], doc["config"]["steps"], doc["grid"]["lr"]) == (128, 500, list(lrs))
    assert round(doc["timing"]["wall_seconds"]) == 775
    assert len(doc["cells"]) == 108 and all({"arch", "branch", "norm", "depth", "seed", "lr", "train_acc", "test_acc",
                                            "diverged"} <= set(x) for x in doc["cells"])


@pytest.mark.fast
def test_readme_and_docs_state_the_committed_numbers():
    """README.md's and docs/residual.md's sentences on the grid carry projects/40-residual's numbers."""
    t = json.loads((FOLDER / "residual.json").read_text())["claims"]["table"]
    said = [f"{t[m]['100']['test_acc']:.3f}" for m in ("sqrt_depth", "zero", "fixup")]
    said += [f"{t[m]['10']['test_acc']:.3f}" for m in ("sqrt_depth", "zero", "fixup", "mlp", "mlp_bn")]
    docs = (REPO / "docs" / "residual.md").read_text()
    assert all(x in docs for x in said) and "775 s wall" in docs and "500 steps" in docs, said
    top = (REPO / "README.md").read_text()
    assert all(x in top for x in said[:3]) and "500 steps" in top


def test_committed_cell_reproduces():
    """One committed cell (depth 10, Fixup) re-trained from the folder: bit for bit."""
    label = "model=fixup d10 s0 lr=0.01"
    proc = subprocess.run([sys.executable, str(FOLDER / "residual.py"), "--cells", label], cwd=REPO,
                          capture_output=True, text=True, timeout=900, env=SCRIPT_ENV)
    assert proc.returncode == 0 and "reproduced bit for bit: 1 cell of 108" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.fast
def test_registry_export_writes_the_committed_folder(tmp_path):
    """The registry's Lab (what scripts/export_run.py writes from the parent's residual.json and manifest) gives
    the committed projects/40-residual byte for byte: document, manifest, README, figure and script."""
    from initstudy import studies
    from initstudy.publish import export, readme
    from initstudy.record import manifest, results

    lab = export.lab("40-residual")
    assert studies.with_lab()["40-residual"].name == "residual" and lab.runs == "parent"
    doc = json.loads((FOLDER / "residual.json").read_text())
    mf = export.public_store(manifest.read(FOLDER / "manifest.json"))
    studies.load(lab.draw)(doc, tmp_path / lab.plot)
    files = {lab.results: results.dumps(doc), "manifest.json": manifest.dumps(mf),
             "README.md": readme.render("residual", doc, mf),
             lab.script: export.script(lab)}
    for name, text in files.items():
        assert text.encode() == (FOLDER / name).read_bytes(), name
    assert (tmp_path / lab.plot).read_bytes() == (FOLDER / "residual.png").read_bytes()


WALK_REFUSALS = [(["--arch", "convnet"], "arch"), (["--arch", "resnet", "--branch", "half"], "branch"),
                 (["--branch", "zero"], "arch=resnet"), (["--depth", "0"], "depth"),
                 (["--arch", "resnet", "--branch_layers", "3"], "branch_layers"),
                 (["--arch", "resnet", "--branch", "fixup", "--branch_layers", "1"], "undefined at m = 1"),
                 (["--arch", "resnet", "--init", "lsuv"], "lsuv")]


def test_walk_refusals_record_nothing(tmp_path):
    """Bad resnet input to the walk: one line, exit 2, no run in the store."""
    store = Store(tmp_path)
    for args, words in WALK_REFUSALS:
        proc = subprocess.run([sys.executable, "-m", "initstudy", "walk", *args], env=store.env(), cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, (args, proc.stderr)
        assert_refused(proc, words)
    assert store.runs() == []


def test_walk_records_resnet_and_batchnorm_keys(tmp_path):
    """A resnet walk records q per block under the MLP walk's keys (step = block) and q_ratio(_theory); a BN MLP
    walk records grad_growth_per_layer and its theory pi / (pi - 1)."""
    store = Store(tmp_path)
    for args in (["--arch", "resnet", "--branch", "sqrt_depth", "--depth", "6"],
                 ["--norm", "batchnorm", "--depth", "8", "--batch", "64"]):
        proc = subprocess.run([sys.executable, "-m", "initstudy", "walk", "--init", "kaiming", "--activation", "relu",
                               "--width", "32", *args], env=store.env(), cwd=REPO, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    resnet_run, bn_run = sorted(store.runs(), key=lambda r: r.info.start_time)
    var = store.client.get_metric_history(resnet_run.info.run_id, "Variance/var")
    theory = store.client.get_metric_history(resnet_run.info.run_id, "Variance/var_theory")
    assert sorted(m.step for m in var) == sorted(m.step for m in theory) == list(range(7))
    m = resnet_run.data.metrics
    assert m["q_ratio_theory"] == pytest.approx((1 + 2 / 6) ** 6) and 0.5 < m["q_ratio"] / m["q_ratio_theory"] < 2
    assert bn_run.data.metrics["grad_growth_per_layer_theory"] == pytest.approx(math.pi / (math.pi - 1))
    assert "grad_growth_per_layer" in bn_run.data.metrics
    doc = json.loads(store.download(resnet_run.info.run_id, "results.json").read_text())
    assert doc["residual"] == {"arch": "resnet", "branch": "sqrt_depth", "branch_layers": 2, "norm": "none"}
    assert "arch" not in doc["config"]
