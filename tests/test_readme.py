"""readme.py's arithmetic on synthetic results documents whose answers are known by construction.

Every expected string below is worked out by hand from how the document was built (the formulas in
the comments), not read from readme.py; the committed lab READMEs are then checked to be what
readme.py writes from their own committed results.
"""
import json
import math

import numpy as np

from conftest import REPO
from initstudy.publish import readme
from initstudy.studies.ablate import readme as ablate_readme
from initstudy.studies.walk import readme as walk_readme

N, B, D = 256, 64, 20
LN2 = math.log(2)
# Var of log(factor) at layer l: 2 (1 + l B/n) / (n B) = 2 (1 + l/4) / 16384; summed over l = 1..20:
# 2 (20 + 210/4) / 16384 = 145/16384. Its root is the spread after 20 layers; per layer, over 20.
TOTAL_SD = math.sqrt(145 / 16384)  # 0.0940750 -> "±9.41%"
PER_LAYER_SD = math.sqrt(145 / 16384 / 20)  # 0.0210358 -> "0.021"


def walk_layers(var, pred, q):
    return [{"layer_idx": l, "var_empirical": var[l], "var_theoretical_prediction": pred[l], "var_closed_form": q[l],
             "saturated": False} for l in range(len(var))]


def manifest(experiment, summary):
    return {"experiment": experiment, "results_summary": summary, "git": {"commit": "0123456789abcdef", "dirty": False}, "date": "2026-01-01",
            "mlflow": {"experiment_id": "1", "tracking_uri": "sqlite:///x.db", "parent_run_id": "p",
                       "run_ids": {"uniform": "u", "xavier": "x", "kaiming": "k"}}}


def synthetic_walk():
    """Linear walk, width 256, batch 64, 20 layers, input variance exactly 1. Per layer l the log of the
    measured factor is log(n sigma2) + d_l:
    - xavier: d_l = c + (-1)^l 0.02, 20 c = 0.47 TOTAL_SD: std of log(factor) 0.02, final variance
      exp(0.47 TOTAL_SD) = 1.04516 (4.52 % from 1, 0.47 s.d.), factor exp(c) = 1.00221;
    - kaiming: d_l = log(1.01): factor 2.02, final 2.02^20 = 1.279e6 against 2^20 = 1.049e6, ratio
      1.01^20 = 1.2202 = 2.1 s.d. (log 1.2202 = 0.19881);
    - uniform: d_l = log(0.98): factor 256/12 0.98 = 20.91, ratio 0.98^20 = 0.6676 = 4.3 s.d.
    One-step predictions: measured / predicted - 1 at most 3 % (xavier), 4.2 % (kaiming), 1 % (uniform)."""
    c = 0.47 * TOTAL_SD / D
    d = {"xavier": [c + (-1) ** l * 0.02 for l in range(1, D + 1)], "kaiming": [math.log(1.01)] * D,
         "uniform": [math.log(0.98)] * D}
    s2 = {"uniform": 1 / 12, "xavier": 1 / 256, "kaiming": 2 / 256}
    worst = {"uniform": 0.01, "xavier": 0.03, "kaiming": 0.042}
    doc = {"experiment": "10-variance-walk", "inits": {},
           "config": {"width": N, "batch": B, "depth": D, "activation": "linear", "input_variance": 1.0,
                      "dtype": "float64"}}
    for init in ("uniform", "xavier", "kaiming"):
        g = N * s2[init]
        var = [1.0] + [g**l * math.exp(sum(d[init][:l])) for l in range(1, D + 1)]
        err = [0.0] + [worst[init] if l == 7 else worst[init] / 2 for l in range(1, D + 1)]
        pred = [1.0] + [var[l] / (1 + err[l]) for l in range(1, D + 1)]
        doc["inits"][init] = {"weight_seed": 1, "sigma_w2": s2[init],
                              "layers": walk_layers(var, pred, [g**l for l in range(D + 1)])}
    mf = manifest("10-variance-walk", {f"{i}_final_layer_variance": doc["inits"][i]["layers"][-1]["var_empirical"] for i in doc["inits"]})
    return doc, mf


def synthetic_relu_walk():
    """The ReLU companion: variance from layer 1 to 20 multiplied by 10.8 (uniform), 0.52 (xavier),
    1.01 (kaiming) per layer; layer 1 = n sigma2 (the input is not passed through ReLU)."""
    doc, _ = synthetic_walk()
    doc["config"]["activation"] = "relu"
    for init, g in (("uniform", 10.8), ("xavier", 0.52), ("kaiming", 1.01)):
        first = N * doc["inits"][init]["sigma_w2"]
        var = [1.0] + [first * g ** (l - 1) for l in range(1, D + 1)]
        doc["inits"][init]["layers"] = walk_layers(var, var, var)
    return doc


def test_walk_readme_arithmetic():
    doc, mf = synthetic_walk()
    np.testing.assert_allclose(walk_readme.walk_spread(D, N, B), (PER_LAYER_SD, TOTAL_SD), rtol=1e-14)
    text = readme.render("walk", doc, mf)
    assert "| xavier N(0, 1/n) | 1 | 1 | 1.002 | 1.045 | 1 | 1.045 | 3% |" in text
    assert "| kaiming N(0, 2/n) | 2 | 2 | 2.02 | 1.279e+06 | 1.049e+06 | 1.22 | 4.2% |" in text
    assert "| uniform[-0.5, 0.5] | 21.33 | 21.33 | 20.91 |" in text and "| 0.6676 | 1% |" in text
    assert "Measured: 1.045 at layer 20, 4.52% from 1 (the input batch itself has variance 1, not 1)" in text
    assert "0.021 on average over the layers; measured, the std of log(factor) is 0.02." in text
    assert "expected spread is ±9.41%, and the measured 4.52% is 0.47 standard deviations of it" in text
    assert "worst 4.2%" in text
    assert ("measured/closed form is uniform[-0.5, 0.5] 0.6676, xavier N(0, 1/n) 1.045, kaiming N(0, 2/n) 1.22 "
            "(in standard deviations of the finite-width spread above: 4.3, 0.47, 2.1)") in text
    assert "reaches 1.279e+06 at layer 20 (2^20 = 1.049e+06)" in text
    # ReLU theory: n sigma2 / 2 per layer; layer 20 = n sigma2 (n sigma2 / 2)^19 = 256/12 (128/12)^19, 0.5^19, 2
    assert round(256 / 12 * (128 / 12) ** 19 / 1e20, 3) == 7.271 and round(0.5**19 * 1e6, 3) == 1.907
    assert ("uniform[-0.5, 0.5] ×10.67 per layer (7.271e+20 at layer 20), xavier N(0, 1/n) ×0.5 per layer "
            "(1.907e-06 at layer 20), kaiming N(0, 2/n) ×1 per layer (2 at layer 20)") in text
    assert "No ReLU walk was exported with this one" in text


def test_walk_readme_relu_companion():
    doc, mf = synthetic_walk()
    text = readme.render("walk", doc, mf, relu_doc=synthetic_relu_walk(), relu_runs=["r1"])
    # per-layer factor (var_20 / var_1)^(1/19), finals var_1 g^19: 21.33 10.8^19 = 9.207e20, 0.52^19, 2 1.01^19
    assert round(256 / 12 * 10.8**19 / 1e20, 3) == 9.207 and round(2 * 1.01**19, 3) == 2.416
    assert ("Measured with ReLU (walk run `r1`, same shape and seed): uniform[-0.5, 0.5] ×10.8 per layer (final "
            "9.207e+20), xavier N(0, 1/n) ×0.52 per layer (final 4.018e-06), kaiming N(0, 2/n) ×1.01 per layer (final "
            "2.416); per-layer factor from layer 1 to 20.") in text
    assert round(0.52**19 * 1e6, 3) == 4.018


def synthetic_ablate():
    """Lab 01's shape. Xavier's losses: ln 2, then 0.012 lower from step 556 and 0.03 lower again from
    924. The 50-step running mean is h (e - start + 1) / 50 below after a step of h: 0.012 x 21 / 50 =
    0.00504 > 0.005 first at e = 556 + 20 = 576; 0.012 + 0.03 x 14 / 50 = 0.0204 > 0.02 first at
    e = 924 + 13 = 937. Finals: Xavier 0.662, Kaiming 0.662 / 964 (964 times lower); Xavier's slope
    -1e-4 per step, -0.0199 over the 200 steps' 199 intervals."""
    steps = 1000
    lx = np.full(steps, LN2)
    lx[556:] -= 0.012
    lx[924:] -= 0.03
    lu = [1.0e6, 7.5e33] + [None] * (steps - 2)
    lk = np.linspace(1.18, 0.0007, steps)

    def block(outcome, nan, loss, summary):
        return {"weight_seed": 1, "outcome": outcome, "steps_to_nan": nan, "flatline_step": None,
                "loss": [None if v is None else float(v) for v in loss],
                "val": {"step": [0], "loss": [0.7], "acc": [0.5]},
                "summary": {"initial_loss": loss[0], "expected_initial_loss": LN2, "final_val_acc": 0.6,
                            "steps_to_nan": nan, "flatline_step": None, **summary}}
    doc = {"experiment": "10-init-matters", "inits": {
        "uniform": block("diverged", 2, lu, {"final_loss": 7.5e33, "loss_slope_last200": None}),
        "xavier": block("trained", None, lx, {"final_loss": 0.662, "loss_slope_last200": -1e-4}),
        "kaiming": block("trained", None, lk, {"final_loss": 0.662 / 964, "loss_slope_last200": -2e-6})},
        "config": {"depth": 12, "width": 256, "input_dim": 256, "classes": 2, "activation": "relu", "norm": "none",
                   "gain": 1.0, "lr": 1e-3, "momentum": 0.9, "batch": 64, "steps": steps, "dtype": "float32",
                   "data_seed": 42, "n_train": 1000, "n_val": 200, "eval_every": 10}}
    doc["inits"]["kaiming"]["summary"]["final_val_acc"] = 0.55
    return doc, manifest("10-init-matters", {"steps_to_nan_uniform": 2})


def test_ablate_readme_arithmetic():
    doc, mf = synthetic_ablate()
    text = readme.render("ablate", doc, mf)
    assert "first falls 0.005 below 0.6931 at step 576 and 0.02 below at step 937" in text
    assert "the running mean leaves it by 0.005 only at step 576" in text
    assert "Xavier 0.662, Kaiming 0.0006867, 964 times lower for Kaiming" in text
    assert "-0.0001 per step, i.e. -0.0199 over those steps, against a loss of 0.662: it is training, slowly." in text
    assert "Its loss is not finite first at step 2" in text and "1e+06, 7.5e+33 against ln 2 = 0.6931" in text
    # mean field, ReLU: n sigma2 / 2 per layer = 256/12/2, 1/2, 1; to the 12th power for 12 more layers
    assert round((128 / 12) ** 12 / 1e12, 2) == 2.17 and round(0.5**12 * 1e4, 2) == 2.44
    assert "uniform[-0.5, 0.5] ×10.67, xavier N(0, 1/n) ×0.5, kaiming N(0, 2/n) ×1." in text
    assert "uniform[-0.5, 0.5] ×2.17e+12, xavier N(0, 1/n) ×0.000244, kaiming N(0, 2/n) ×1." in text
    assert "- Uniform: ×2.17e+12 more blow-up" in text and "shrinks by another ×0.000244" in text
    assert "measured NaN at step 2, as expected" in text
    assert "it starts above random guessing (initial loss 1.18)" in text


def test_ablate_readme_names_the_dataset_a_run_trained_on():
    """A run of `ablate -P data=mnist1d` is described as MNIST-1D, not as lab 01's synthetic set."""
    doc, mf = synthetic_ablate()
    doc = json.loads(json.dumps(doc))
    doc["config"].update(data="mnist1d", n_train=4000, n_val=1000, input_dim=40, classes=10)
    text = readme.render("ablate", doc, mf)
    assert "mnist1d: MNIST-1D (Greydanus & Kobak), generated locally by the mnist1d package (4000 train / 1000 val, " \
           "40 features, 10 classes)" in text
    assert "N(0, 1), label = sign" not in text and "10-feature rule" not in text


def test_readme_plateau_window_is_50_steps():
    """leaves(): the window's last step, for a step down at a known place (the synthetic Xavier above)."""
    doc, _ = synthetic_ablate()
    lx = np.array(doc["inits"]["xavier"]["loss"])
    assert ablate_readme.PLATEAU_WINDOW == 50
    assert ablate_readme.leaves(lx, LN2, 0.005) == 576 and ablate_readme.leaves(lx, LN2, 0.02) == 937
    assert ablate_readme.leaves(np.full(1000, LN2), LN2, 0.005) is None


def test_committed_ablate_readme_is_what_readme_py_writes_from_its_results():
    """projects/10-init-matters/README.md: every number in it (964x, steps 576 and 937, the 24-layer
    predictions) is the ablate README rendered from the committed losses.json and manifest.json, byte for byte."""
    folder = REPO / "projects" / "10-init-matters"
    doc, mf = (json.loads((folder / f).read_text()) for f in ("losses.json", "manifest.json"))
    assert readme.render("ablate", doc, mf) == (folder / "README.md").read_text()


def test_committed_walk_readme_is_what_readme_py_writes_from_its_results():
    """projects/10-variance-walk/README.md (±9.41 %, 0.47 s.d., the factors) from the committed
    results.json; the ReLU paragraph quotes a run not committed here, so its measured line is compared
    as text only (test_export exports one for real)."""
    folder = REPO / "projects" / "10-variance-walk"
    doc, mf = (json.loads((folder / f).read_text()) for f in ("results.json", "manifest.json"))
    committed = (folder / "README.md").read_text()
    relu_line = next(l for l in committed.splitlines() if l.startswith("Measured with ReLU"))
    ours = readme.render("walk", doc, mf).replace(next(l for l in readme.render("walk", doc, mf).splitlines()
                                             if l.startswith("No ReLU walk was exported")), relu_line)
    assert ours == committed
