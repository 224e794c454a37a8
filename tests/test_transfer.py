"""Lab 30: the coordinate check (`-e coordcheck`) and learning-rate transfer (`-e transfer`).

The verdicts are recomputed here from the cells alone; the theory's claims on the coordinate check are
tested on the default config (adam, lr 0.01, widths 2^6..2^11); one tiny grid runs end to end through
`mlflow run` (a diverged cell included), is exported and reproduced cell by cell; bad input is one line,
exit 2, no run.
"""
import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, assert_refused, mlflow_run
from initstudy.core.config import ConfigError, parse
from initstudy.run import cli
from initstudy.studies.coordcheck import compute as C
from initstudy.studies.transfer import compute as T

COMMITTED = REPO / "projects" / "30-width-transfer"
HERE = {**os.environ, "PYTHONPATH": str(REPO)}  # a lab folder's script imports this checkout's initstudy


# --- the verdicts, by hand -------------------------------------------------------------------------

def _cell(p, w, lr, seed, loss):
    return {"param": p, "width": w, "log2_lr": lr, "seed": seed, "train_loss": loss, "diverged": loss is None}


@pytest.mark.fast
def test_optimum_shift_and_wider_is_better_on_a_hand_made_grid():
    g = {"param": ["sp", "mup"], "width": [64, 256], "log2_lr": [-8.0, -6.0, -4.0], "seed": [0, 1]}
    loss = {("sp", 64): [3, 2, 1, 2, 1, 2], ("sp", 256): [2, 1, 1.5, 2.5, None, 1],  # (seed 0 lrs, seed 1 lrs)
            ("mup", 64): [3, 2, 1, 3, 2, 1], ("mup", 256): [2, 1, 0.5, 2, 1, 0.5]}
    cells = [_cell(p, w, lr, s, v[3 * s + i]) for (p, w), v in loss.items() for s in (0, 1)
             for i, lr in enumerate(g["log2_lr"])]
    v = T.verdict(cells, g)
    # sp 64: means 2.5, 1.5, 1.5 -> first argmin -6; sp 256: 2.25, inf, 1.25 -> -4; seeds own: -4,-6 / -6,-4
    assert [r["log2_lr"] for r in v["optima"]["sp"]] == [-6.0, -4.0]
    assert v["optima"]["sp"][0]["per_seed"] == [-4.0, -6.0] and v["optima"]["sp"][0]["sd"] == 1.0
    assert v["shift_steps"] == {"sp": 1.0, "mup": 0.0} and v["grid_step"] == 2.0
    assert v["wider_is_better"]["sp"] == {"lrs_compared": [-8.0, -4.0], "lrs_wider_better": [-8.0, -4.0], "fraction": 1.0}
    assert v["wider_is_better"]["mup"]["fraction"] == 1.0 and v["diverged_cells"] == 1


@pytest.mark.fast
@pytest.mark.parametrize("raw,words", [
    ({"params": "sp,mu"}, "param must be one of sp, ntk, mup"), ({"optimizer": "sgdm"}, "optimizer must be one of"),
    ({"widths": "32,64"}, "needs width >= base_width (64)"), ({"lrs": ""}, "lrs lists no value"),
    ({"lrs": "a:b"}, "lrs must be a comma list of numbers"), ({"widths": "64,96.5"}, "widths must be a comma list of integers"),
    ({"depth": "1"}, "needs a hidden layer"), ({"lrs": "-2:-8"}, "lrs lists no value"), ({"preset": "big"}, "small"),
])
def test_bad_grids_are_refused_in_the_config(raw, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse(T.TransferConfig, raw)


@pytest.mark.parametrize("entry,argv,words", [
    ("transfer", ["--params", "sp,xp"], "param must be one of"), ("transfer", ["--optimizer", "lion"], "optimizer"),
    ("transfer", ["--widths", "16,64"], "width >= base_width"), ("transfer", ["--lrs=-4:x"], "lrs must be"),
    ("transfer", ["--widths", "64,1e3"], "integers"), ("transfer", ["--depth", "1"], "hidden layer"),
    ("coordcheck", ["--optimizer", "adagrad"], "optimizer"), ("coordcheck", ["--widths", "32,64"], "base_width"),
    ("coordcheck", ["--widths", "64,12.5"], "integers"), ("coordcheck", ["--depth", "1"], "hidden layer"),
    ("transfer", ["--mup_readout", "ones"], "mup_readout must be one of scaled, zero"),
    ("ablate", ["--param", "sp", "--mup_readout", "zero"], "mup_readout=zero is muP's output init"),
])
def test_refused_through_the_command_line_with_one_line(entry, argv, words, capsys):
    """The command `mlflow run -e ENTRY` runs, in this process: exit 2, one line, before any run."""
    assert cli.main([entry, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"initstudy {entry}: error:") and words in err, err


def test_a_bad_grid_through_mlflow_run_opens_no_run(store):
    proc = mlflow_run(store, "transfer", params="sp,mu", timeout=300)
    assert_refused(proc, "param must be one of")
    assert not [r for r in store.runs() if r.data.tags.get("initstudy.role") in ("parent", "child")]


# --- the coordinate check: what theory predicts ----------------------------------------------------

@pytest.fixture(scope="module")
def coord():
    from initstudy.record import provenance

    config = C.CoordConfig()  # the entry point's defaults: adam, lr 0.01, widths 2^6..2^11, 3 seeds, t = 1..5
    with provenance.pin_blas_threads():
        rows = C.run(config)
    return rows, C.verdict(rows, config.optimizer)


def test_coordcheck_mup_flat_sp_logits_grow_from_t2_with_adam(coord):
    """TP V / mup's README: under muP no coordinate grows or shrinks with width (the logits at init shrink as
    1/sqrt(width), slope -1/2); under SP with Adam the logits blow up from the first update."""
    rows, v = coord
    s = {(x["param"], x["module"], x["t"]): x for x in v["slopes"]}
    for (p, m, t), x in s.items():
        if p == "mup":
            want = -0.5 if (m, t) == ("logits", 1) else 0.0
            assert abs(x["slope"] - want) < C.FLAT, (p, m, t, x["slope"])
    assert all(s[("sp", "logits", t)]["slope"] > C.GROWS for t in range(2, 6))
    assert abs(s[("sp", "logits", 1)]["slope"]) < C.FLAT  # SP's readout Var 1/fan_in: O(1) logits at init
    assert v["agrees"] and v["claims"] == v["claims_held"] == 22
    # the slope is the least-squares fit of log2 l1 on log2 width, recomputed here for one seed
    pts = sorted((r["width"], r["l1"]) for r in rows if (r["param"], r["module"], r["t"], r["seed"]) == ("sp", "logits", 2, 0))
    x, y = np.log2([w for w, _ in pts]), np.log2([l for _, l in pts])
    assert C.slope([w for w, _ in pts], [l for _, l in pts]) == pytest.approx(
        np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2), rel=1e-12)


def test_coordcheck_numbers_in_docs(coord):
    """docs/width.md states the measured slopes of the default check; they are these."""
    _, v = coord
    s = {(x["param"], x["module"], x["t"]): x for x in v["slopes"]}
    text = " ".join((REPO / "docs" / "width.md").read_text().split())
    for key in (("sp", "logits", 2), ("sp", "logits", 5), ("sp", "hidden2", 2), ("mup", "logits", 1),
                ("mup", "hidden2", 5), ("mup", "logits", 5)):
        x = s[key]
        assert f"{key[0]} {key[1]} t={key[2]}: {x['slope']:+.2f} ± {x['slope_sd']:.2f}" in text, key


def test_coordcheck_with_sgd_mup_logits_still_shrink_at_t2():
    """docs/width.md's stated disagreement: SGD at lr 0.1, muP's logits at t = 2 between -1/2 and 0."""
    from initstudy.record import provenance

    config = C.CoordConfig(optimizer="sgd", lr=0.1)
    with provenance.pin_blas_threads():
        v = C.verdict(C.run(config), "sgd")
    x = next(s for s in v["slopes"] if (s["param"], s["module"], s["t"]) == ("mup", "logits", 2))
    assert -0.5 + C.FLAT / 2 < x["slope"] < -C.FLAT and not x["holds"] and not v["agrees"]
    text = " ".join((REPO / "docs" / "width.md").read_text().split())
    assert f"slope {x['slope']:.2f} ± {x['slope_sd']:.2f} at t = 2" in text


# --- end to end ------------------------------------------------------------------------------------

def test_coordcheck_end_to_end_through_mlflow_run(store):
    proc = mlflow_run(store, "coordcheck", widths="64,128,256", seeds="0,1", steps=3, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [r for r in store.runs() if r.data.tags.get("initstudy.role") == "single"]
    assert set(store.artifact_names(run.info.run_id)) == {"coord.csv", "coord.json", "coord.png", "manifest.json"}
    rows = list(csv.DictReader(store.download(run.info.run_id, "coord.csv").open()))
    assert list(rows[0]) == ["width", "module", "t", "l1", "param", "optimizer", "lr", "seed"]
    assert len(rows) == 2 * 2 * 3 * 3 * 3 and {r["module"] for r in rows} == {"hidden1", "hidden2", "logits"}
    doc = json.loads(store.download(run.info.run_id, "coord.json").read_text())
    hist = store.client.get_metric_history(run.info.run_id, "slope_mup_logits")
    assert [(m.step, m.value) for m in sorted(hist, key=lambda m: m.step)] == \
        [(x["t"], x["slope"]) for x in doc["verdict"]["slopes"] if (x["param"], x["module"]) == ("mup", "logits")]


def test_transfer_end_to_end_exported_and_reproduced(store, tmp_path):
    proc = mlflow_run(store, "transfer", widths="64,128", lrs="-6,3", seeds="0", steps=30, optimizer="sgd",
                      timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = store.runs()
    (parent,) = [r for r in runs if r.data.tags.get("initstudy.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 8 and all(r.info.status == "FINISHED" for r in children + [parent])
    doc = json.loads(store.download(parent.info.run_id, "transfer.json").read_text())
    need = {"param", "optimizer", "width", "log2_lr", "seed", "train_loss", "test_acc", "diverged"}
    assert len(doc["cells"]) == 8 and all(need <= set(c) and c["optimizer"] == "sgd" for c in doc["cells"])
    for c in doc["cells"]:  # lr 2^3 with SGD can diverge: a null train_loss, no train_loss metric on its child
        m = next(r for r in children if r.info.run_id == c["run_id"]).data.metrics
        assert (c["train_loss"] is None) == c["diverged"] and not (c["diverged"] and c["log2_lr"] != 3.0)
        assert m.get("train_loss") == c["train_loss"] and m["test_acc"] == c["test_acc"]
    diverged = sum(c["diverged"] for c in doc["cells"])
    assert diverged >= 1 and parent.data.metrics["diverged_cells"] == diverged
    assert doc["verdict"] == json.loads(json.dumps(T.verdict(doc["cells"], doc["grid"])))
    assert parent.data.metrics["shift_steps_sp"] == doc["verdict"]["shift_steps"]["sp"]

    out = tmp_path / "projects"
    exp = subprocess.run([sys.executable, str(REPO / "scripts" / "export_run.py"), "--run-id", parent.info.run_id,
                          "--out", str(out)], env={**store.env(), "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert exp.returncode == 0, exp.stderr[-2000:]
    folder = out / "30-width-transfer"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "manifest.json", "transfer.json", "transfer.png",
                                                        "transfer.py"]
    ok = subprocess.run([sys.executable, "transfer.py", "--cells", "mup:128:-6,sp:64:3"], cwd=folder, env=HERE,
                        capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0 and ok.stdout.startswith("reproduced bit for bit: 2 of 8 cells"), ok.stdout + ok.stderr
    recorded = json.loads((folder / "transfer.json").read_text())
    c = next(c for c in recorded["cells"] if (c["param"], c["width"], c["log2_lr"]) == ("mup", 128, -6.0))
    c["test_acc"] += 1e-3
    (folder / "transfer.json").write_text(json.dumps(recorded))
    bad = subprocess.run([sys.executable, "transfer.py", "--cells", "mup:128:-6"], cwd=folder, env=HERE,
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1 and "NOT reproduced: 1 values differ" in bad.stdout and "test_acc" in bad.stdout


# --- the committed lab folder ------------------------------------------------------------------------

@pytest.mark.skipif(not COMMITTED.exists(), reason="projects/30-width-transfer not exported yet")
def test_the_committed_readme_and_verdict_are_what_the_cells_give():
    from initstudy.publish import readme

    doc, mf = (json.loads((COMMITTED / f).read_text()) for f in ("transfer.json", "manifest.json"))
    assert readme.render("transfer", doc, mf) == (COMMITTED / "README.md").read_text()
    assert json.loads(json.dumps(T.verdict(doc["cells"], doc["grid"]))) == doc["verdict"]
    assert all((c["train_loss"] is None) == c["diverged"] for c in doc["cells"])
    v = doc["verdict"]
    text = " ".join((REPO / "docs" / "width.md").read_text().split())
    for p in doc["grid"]["param"]:
        opt = ", ".join(f"{x['log2_lr']:g}" for x in v["optima"][p])
        assert f"{p}: {opt}" in text, (p, opt)
        assert f"{p} shift {v['shift_steps'][p]:+g} grid steps" in text
    from initstudy.studies.transfer import readme as R

    sub = R.refined(doc)
    wb = v["wider_is_better"]
    g = doc["grid"]
    w64 = T.curve(doc["cells"], "mup", g["width"][0], g["log2_lr"])
    i, j = g["log2_lr"].index(-7.0), g["log2_lr"].index(-6.0)
    for said in (f"SP's optimum moves {sub['sp'][2]:+.2f} in log2 lr", f"μP's {sub['mup'][2]:+.2f}",
                 f"{len(wb['mup']['lrs_wider_better'])} of {len(wb['mup']['lrs_compared'])} learning rates under μP",
                 f"at {len(wb['sp']['lrs_wider_better'])} of {len(wb['sp']['lrs_compared'])} under SP",
                 f"differs by {w64[j] - w64[i]:.3f} ({w64[i]:.3f} against {w64[j]:.3f})", f"{v['cells']} cells"):
        assert said in text, said
    top = " ".join((REPO / "README.md").read_text().split())
    assert f"SP's optimum moves {v['shift_steps']['sp']:+g} grid steps, μP's {v['shift_steps']['mup']:+g}" in top


@pytest.mark.skipif(not COMMITTED.exists(), reason="projects/30-width-transfer not exported yet")
def test_the_committed_study_reproduces_two_cells_bit_for_bit():
    doc = json.loads((COMMITTED / "transfer.json").read_text())
    n = len(doc["cells"])
    proc = subprocess.run([sys.executable, "transfer.py", "--cells", "mup:128:-8:0,sp:64:-6:0"], cwd=COMMITTED,
                          env=HERE, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.startswith(f"reproduced bit for bit: 2 of {n} cells"), proc.stdout


def test_lrs_parse_as_the_issue_writes_them():
    assert T.parse_lrs("-14:-2") == [float(x) for x in range(-14, -1)]
    assert T.parse_lrs("-12:-4:2") == [-12.0, -10.0, -8.0, -6.0, -4.0] and T.parse_lrs("-6,3") == [-6.0, 3.0]
    assert math.isclose(2.0 ** T.CellConfig(log2_lr=-8).log2_lr, 1 / 256)
