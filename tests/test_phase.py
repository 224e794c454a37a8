"""The trainability phase diagram (issue 15): the verdict logic on a hand-made grid, the mean-field init
against its definition (Monte Carlo), the small preset end to end through `mlflow run` (children,
phase.json, phase.png, agreement) with its export reproduced, the committed study reproduced on two
cells, and bad input refused with one line."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, assert_refused, mlflow_run, mlflow_run_cmd
from initstudy.run import cli
from initstudy.studies.phase import compute as phase
from initstudy.core import theory
from initstudy.studies.phase import verdict as T
from initstudy.core.config import ConfigError, parse

COMMITTED = REPO / "projects" / "20-trainability"


# --- the verdict on a hand-made grid -----------------------------------------------------------------

def cell(s, d, acc, bound, seed=0):
    return {"sigma_w2": s, "depth": d, "seed": seed, "train_acc": acc, "six_xi_c": bound}


SW, DEPTHS = [1.0, 1.75, 3.0], [10, 20, 40, 80]
# bounds 6 xi_c: 25 (ordered), none (critical: xi_c diverges), 50 (chaotic)
GRID = [cell(1.0, 10, 0.50, 25.0), cell(1.0, 20, 0.40, 25.0), cell(1.0, 40, 0.10, 25.0),
        cell(1.0, 80, 0.31, 25.0),  # trained 220 % past 25, its neighbour 40 past it too: far from the boundary
        cell(1.75, 10, 0.60, None), cell(1.75, 20, 0.55, None), cell(1.75, 40, 0.50, None), cell(1.75, 80, 0.31, None),
        cell(3.0, 10, 0.45, 50.0), cell(3.0, 20, 0.35, 50.0), cell(3.0, 40, 0.2999, 50.0),  # 40 < 50: a near miss
        cell(3.0, 80, 0.10, 50.0)]


def test_trained_rule_is_fixed_at_three_times_chance():
    assert T.TRAINED_ACC == 0.3
    assert T.trained(0.3) and not T.trained(0.2999) and not T.trained(float("nan")) and not T.trained(None)
    assert T.predicted(25, 25.0) and not T.predicted(26, 25.0) and T.predicted(10**6, None)


def test_agreement_disagreements_and_their_distance_on_a_hand_made_grid():
    assert T.agreement(GRID) == 10 / 12
    assert T.agreement([]) is None  # every cell failed: no fraction (phase.json stays valid JSON)
    bad = T.disagreements(GRID, DEPTHS)
    assert [(c["sigma_w2"], c["depth"]) for c in bad] == [(1.0, 80), (3.0, 40)]
    far, near = bad
    assert near["near_boundary"] and near["distance"] == pytest.approx(-0.2)  # 40 vs 50: within 20 %
    assert not far["near_boundary"] and far["distance"] == pytest.approx(2.2)  # 80 vs 25
    assert T.near_boundary(cell(3.0, 80, 0.5, 50.0), DEPTHS)  # 60 % past 50, but its neighbour 40 lies below it
    # a grid neighbour across the boundary makes a cell near even when far in percent
    assert T.near_boundary(cell(1.0, 40, 0.5, 25.0), DEPTHS)  # 20 <= 25 <= 40
    assert not T.near_boundary(cell(1.0, 80, 0.5, 25.0), DEPTHS)  # 40 and 80 both past 25, 220 % away


def test_deepest_trained_depth_peaks_at_criticality_on_a_hand_made_grid():
    assert T.deepest_trained(GRID, SW) == [80, 80, 20]
    assert T.nearest_critical(SW, 1.76) == [1.75, 3.0]
    assert T.peak_near_critical(SW, [20, 80, 80], 1.76)
    assert not T.peak_near_critical(SW, [80, 20, 20], 1.76)
    two_seeds = [cell(1.0, 10, 0.5, 25.0, 0), cell(1.0, 10, 0.1, 25.0, 1), cell(1.0, 20, 0.1, 25.0, 0),
                 cell(1.0, 20, 0.1, 25.0, 1)]
    assert T.deepest_trained(two_seeds, [1.0]) == [10]  # half of the seeds trained: counts
    v = T.verdict(GRID, SW, DEPTHS, 1.76)
    assert v["agreement"] == 10 / 12 and not v["all_disagreeing_near_boundary"] and v["trained_cells"] == 9
    assert v["deepest_trained_depth"] == [80, 80, 20] and v["peak_near_critical"]


# --- the numerics against their definitions --------------------------------------------------------

@pytest.mark.parametrize("init", ["xavier", "kaiming", "uniform", "xavier_avg", "orthogonal"])
def test_the_mean_field_init_has_n_var_w_sigma_w2_and_biases_sigma_b2(init):
    """Monte Carlo: every layer's n Var(W) = sigma_w^2 and Var(b) = sigma_b^2, whatever the unit scheme."""
    c = phase.CellConfig(sigma_w2=2.5, sigma_b2=0.05, depth=3, width=1024, dtype="float64")
    model = phase.build_model(c, init, input_dim=512, classes=1024)
    for lin in model.linears:
        n, w = lin.weight.shape[0], lin.weight
        se = math.sqrt(2 / w.size) if init != "uniform" else math.sqrt(0.8 / w.size)  # kurtosis 3 vs 1.8
        assert n * w.var() == pytest.approx(2.5, rel=5 * se)
    b = np.concatenate([lin.bias for lin in model.linears])
    assert b.var() == pytest.approx(0.05, rel=5 * math.sqrt(2 / b.size))


def test_inputs_are_standardized_so_the_first_layer_has_q_sigma_w2_plus_sigma_b2():
    c = phase.CellConfig(sigma_w2=2.0, depth=1, width=4096, dtype="float64")
    ds = phase.dataset(c)
    assert np.allclose(ds.x_train.mean(axis=0), 0, atol=1e-12) and np.allclose(ds.x_train.std(axis=0), 1)
    model = phase.build_model(c, "xavier", ds.x_train.shape[1], 10)
    pre = ds.x_train[:64] @ model.linears[0].weight + model.linears[0].bias
    assert pre.var() == pytest.approx(2.0 + 0.05, rel=0.05)  # q^1 = sigma_w^2 * 1 + sigma_b^2 (S eq. 3)
    assert phase.theory_of(c)["chi1"] == theory.depth_scales("tanh", 2.0, 0.05)["chi1"] > 1


def test_data_dependent_inits_and_bad_grids_are_refused_in_the_config():
    for raw, words in [({"sigma_w2s": ""}, "lists no value"), ({"depths": "20,10"}, "strictly increasing"),
                       ({"sigma_w2s": "1.5,1.5"}, "strictly increasing"), ({"sigma_w2s": "0,1"}, "> 0"),
                       ({"sigma_w2s": "-1:2:0.5"}, "> 0"), ({"depths": "0,10"}, ">= 1"),
                       ({"data": "cifar"}, "mnist1d"), ({"activation": "swish"}, "tanh"),
                       ({"preset": "huge"}, "small")]:
        with pytest.raises(ConfigError, match=words):
            parse(phase.PhaseConfig, raw)
    with pytest.raises(ConfigError, match="depends on the data"):
        phase.check_init("lsuv")  # rescaled on a batch: no sigma_w^2 to set


@pytest.mark.parametrize("argv,words", [
    (["--data", "cifar"], ("data must be one of", "mnist1d")),
    (["--sigma_w2s", ""], ("sigma_w2s", "no value")),
    (["--depths", "40,20"], ("depths", "increasing")),
    (["--sigma_w2s", "0,1"], ("sigma_w2s", "> 0")),
    (["--depths", "0,2"], ("depths", ">= 1")),
    (["--seeds", "1,0"], ("seeds", "increasing")),
])
def test_refused_through_the_command_line_with_one_line(argv, words, capsys):
    """The command `mlflow run -e phase` runs, in this process: exit 2, one line, no traceback, before any run."""
    assert cli.main(["phase", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("initstudy phase: error:") and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


# --- end to end -------------------------------------------------------------------------------------

def test_small_preset_end_to_end_through_mlflow_run_exported_and_reproduced(store, tmp_path):
    proc = mlflow_run(store, "phase", preset="small", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mlflow ui: http" in proc.stdout and "agreement" in proc.stdout
    runs = store.runs()
    (parent,) = [r for r in runs if r.data.tags.get("initstudy.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 9 and all(r.info.status == "FINISHED" for r in children + [parent])
    assert {r.data.params["width"] for r in children} == {"64"} and {r.data.params["steps"] for r in children} == {"300"}
    assert set(store.artifact_names(parent.info.run_id)) >= {"phase.json", "phase.png", "manifest.json"}
    doc = json.loads(store.download(parent.info.run_id, "phase.json").read_text())
    assert len(doc["cells"]) == 9 and doc["grid"] == {"sigma_w2": [1.0, 1.75, 4.0], "depth": [2, 10, 40], "seed": [0]}
    by_id = {r.info.run_id: r for r in children}
    for c in doc["cells"]:  # phase.json holds what each child recorded
        m = by_id[c["run_id"]].data.metrics
        assert m["train_acc"] == c["train_acc"] and m["six_xi_c"] == c["six_xi_c"]
        assert m["chi1"] == theory.depth_scales("tanh", c["sigma_w2"], 0.05)["chi1"]
    assert parent.data.metrics["agreement"] == T.agreement(doc["cells"]) == doc["verdict"]["agreement"]
    assert parent.data.metrics["critical_sigma_w2"] == theory.critical_sw2("tanh", 0.05)
    deepest = store.client.get_metric_history(parent.info.run_id, "deepest_trained_depth")
    assert [(m.step, m.value) for m in sorted(deepest, key=lambda m: m.step)] == \
        list(enumerate(map(float, T.deepest_trained(doc["cells"], [1.0, 1.75, 4.0]))))
    assert len(store.client.get_metric_history(children[0].info.run_id, "Training/loss")) == 300
    note = "mlflow.note.content"  # the descriptions `mlflow ui` shows: each cell's verdict, the parent's summary
    assert all(r.data.tags[note].startswith(f"sigma_w2={r.data.params['sigma_w2'].rstrip('0').rstrip('.')}")
               and ("agrees" in r.data.tags[note] or "DISAGREES" in r.data.tags[note]) for r in children)
    assert f"agreement with depth <= 6 xi_c: {doc['verdict']['agreement']:.3f}" in parent.data.tags[note]
    assert store.download(parent.info.run_id, "phase.png").read_bytes()[:4] == b"\x89PNG"
    mf = json.loads(store.download(parent.info.run_id, "manifest.json").read_text())
    ds = phase.dataset(phase.CellConfig(width=64))  # the standardized set the cells trained on
    assert mf["data"]["sha256"] == phase.data.sha256(ds) and mf["data"]["name"] == "mnist1d"
    assert [i.dataset.digest for i in store.client.get_run(parent.info.run_id).inputs.dataset_inputs] == \
        [mf["data"]["dataset_digest"]]

    out = tmp_path / "projects"
    exp = subprocess.run([sys.executable, str(REPO / "scripts" / "export_run.py"), "--run-id", parent.info.run_id,
                          "--out", str(out)], env=store.env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert exp.returncode == 0, exp.stderr[-2000:]
    folder = out / "20-trainability"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "manifest.json", "phase.json", "phase.png",
                                                        "trainability.py"]
    assert f"**Agreement: {doc['verdict']['agreement']:.3f}**" in (folder / "README.md").read_text()
    ok = subprocess.run([sys.executable, "trainability.py", "--cells", "4:40"], cwd=folder, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("reproduced bit for bit: 1 of 9 cells"), ok.stdout + ok.stderr
    recorded = json.loads((folder / "phase.json").read_text())
    recorded["cells"][-1]["train_acc"] += 1e-3  # the 4:40 cell
    (folder / "phase.json").write_text(json.dumps(recorded))
    bad = subprocess.run([sys.executable, "trainability.py", "--cells", "4:40"], cwd=folder, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1 and "NOT reproduced: 1 values differ" in bad.stdout and "train_acc" in bad.stdout


def test_a_bad_grid_through_mlflow_run_is_one_line_and_opens_no_cell(store):
    proc = subprocess.run(mlflow_run_cmd("phase", depths="20,10"), env=store.env(), cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert_refused(proc, "depths must be strictly increasing")
    assert not [r for r in store.runs() if r.data.tags.get("initstudy.role") == "child"]


@pytest.mark.skipif(not COMMITTED.exists(), reason="projects/20-trainability not exported yet")
def test_the_committed_study_reproduces_two_cells_bit_for_bit():
    """Two shallow cells of the default study (a full re-run costs the study's ~20 min)."""
    proc = subprocess.run([sys.executable, "trainability.py", "--cells", "1.75:10,4:10"], cwd=COMMITTED,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("reproduced bit for bit: 2 of 91 cells"), proc.stdout


@pytest.mark.skipif(not COMMITTED.exists(), reason="projects/20-trainability not exported yet")
def test_the_committed_readme_and_verdict_are_what_the_cells_give():
    """Every number of projects/20-trainability/README.md is the phase README rendered from the committed phase.json and
    manifest.json, and the verdict in them is recomputed here from the cells alone (agreement 0.912, ...)."""
    from initstudy.publish import readme

    doc, mf = (json.loads((COMMITTED / f).read_text()) for f in ("phase.json", "manifest.json"))
    assert readme.render("phase", doc, mf) == (COMMITTED / "README.md").read_text()
    g = doc["grid"]
    v = T.verdict(doc["cells"], g["sigma_w2"], g["depth"], theory.critical_sw2("tanh", 0.05))
    assert json.loads(json.dumps(v)) == doc["verdict"]
    for c in doc["cells"]:  # the theory columns are theory.py's at each cell's sigma_w^2
        assert c["six_xi_c"] == 6 * theory.depth_scales("tanh", c["sigma_w2"], 0.05)["xi_c"]
    assert mf["results_summary"]["agreement"] == v["agreement"]
    text = (REPO / "docs" / "trainability.md").read_text()  # the doc's restatement of them
    t = doc["timing"]
    for said in (f"agreement {v['agreement']:.3f}", f"{len(v['disagreeing'])} disagreeing cells",
                 f"{v['cells'] - len(v['disagreeing'])} of {v['cells']} cells", f"{v['trained_cells']} cells trained",
                 ", ".join(map(str, v["deepest_trained_depth"])), f"{t['wall_seconds']:.0f} s",
                 f"{t['compute_seconds']:.0f} s of wall", f"{t['compute_cpu_seconds']:.0f} s of CPU",
                 f"{t['wall_seconds'] / (t['compute_seconds'] / t['threads']):.3f}"):
        assert said in " ".join(text.split()), said
    top = " ".join((REPO / "README.md").read_text().split())  # the newcomer's README: its study paragraph
    assert f"agreement {v['agreement']:.3f} over {v['cells']} cells" in top and f"σ_w² = {v['critical_sigma_w2']:.4g}" in top


def test_reproduce_cell_choice():
    from initstudy.studies.phase import reproduce as phase_reproduce

    cells = [dict(c, label=f"c{i}") for i, c in enumerate(GRID)]
    assert phase_reproduce.choose(cells, "all") == cells
    assert [c["label"] for c in phase_reproduce.choose(cells, "1.75:10,3:80:0,1.75:10")] == ["c4", "c11"]
    for spec, words in [("1.75:11", "no cell sigma_w2=1.75, depth=11"), ("1.75", "SIGMA_W2:DEPTH"),
                        ("a:b", "SIGMA_W2:DEPTH"), (",", "lists no cell")]:
        with pytest.raises(ConfigError, match=words):
            phase_reproduce.choose(cells, spec)
