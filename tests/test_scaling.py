"""Lab 02, why 1/sqrt(n): the measured variances against n k^2 within their sampling error, the depth
walks against c^{2L} and the q-maps, the finite-width spread; the run -> export -> reproduce round trip
on a real store; the committed folder's README is the one its numbers write."""
import json
import math

import numpy as np
import pytest

from conftest import REPO
from initstudy.publish import export, readme, reproduce
from initstudy.studies.scaling import compute as scaling
from initstudy.core import seeds
from initstudy.core.config import ConfigError, parse
from initstudy.studies import STUDIES
from initstudy.studies.scaling.compute import ScalingConfig
from initstudy.studies.scaling.record import scaling_series

SMALL = dict(max_width=1024, draws=4000, depth=8, depth_width=64, depth_batch=32, fw_min_width=32, fw_max_width=64,
             fw_depth=12, seeds=6)


@pytest.fixture(scope="module")
def small():
    config = ScalingConfig(**SMALL)
    return config, scaling.run_scaling(config)


def test_dot_product_variance_is_n_k2_within_sampling_error(small):
    """Every width 2..1024 and scale: |Var - n k^2| < 4 standard errors, the standard error being
    n k^2 sqrt((2 + 6/n) / draws); and that standard error is the spread of the estimate itself
    (32 repeats at n = 8, scale 1/sqrt(n))."""
    config, r = small
    assert list(r.widths) == [2 ** e for e in range(1, 11)]
    for k, (_, scale) in scaling.SCALES.items():
        np.testing.assert_allclose(r.dot_theory[k], [n * scale(n) ** 2 for n in r.widths], rtol=1e-15)
        z = (r.dot_var[k] - r.dot_theory[k]) / r.dot_se[k]
        assert np.all(np.abs(z) < 4), (k, z)
    np.testing.assert_allclose(r.dot_theory["1_over_sqrt_n"], 1.0, rtol=1e-15)
    rng = seeds.rng(7)
    repeats = [scaling.dot_variance(8, 1 / math.sqrt(8), 2000, rng) for _ in range(32)]
    assert np.std(repeats, ddof=1) == pytest.approx(math.sqrt((2 + 6 / 8) / 2000), rel=0.35)


def test_depth_compounding_against_c_2L_and_the_q_maps(small):
    """The walk's theory is c^{2L} (linear) and c^2 (c^2/2)^{L-1} (ReLU) exactly; measured within the
    finite-width tolerance 3 sqrt(kappa L / n) (kappa 2 linear and tanh, 5 ReLU; tests/test_walk.py)."""
    config, r = small
    L = np.arange(config.depth + 1)
    for name, c in scaling.DEPTH_CS.items():
        np.testing.assert_allclose(r.depth_theory[("linear", name)], c ** (2 * L), rtol=1e-12)
        relu = np.concatenate([[1.0], c**2 * (c**2 / 2) ** (L[1:] - 1)])
        np.testing.assert_allclose(r.depth_theory[("relu", name)], relu, rtol=1e-12)
        for act, kappa in (("linear", 2), ("relu", 5), ("tanh", 2)):
            err = np.abs(np.log(r.depth_var[(act, name)][1:] / r.depth_theory[(act, name)][1:]))
            assert np.all(err < 3 * np.sqrt(kappa * L[1:] / config.depth_width)), (act, name, err)


def test_finite_width_spread_and_kappa(small):
    """log(var_0/q_0) = 0 by construction; the spread grows with L/n; kappa is fitted by least squares
    (checked against a direct recomputation) and lies within a factor 2 of Hanin & Nica's 5 at 6 seeds."""
    config, r = small
    assert r.fw_log_ratio.shape == (2, config.seeds, config.fw_depth + 1)
    np.testing.assert_array_equal(r.fw_log_ratio[:, :, 0], 0.0)
    assert np.all(r.fw_sd[:, -1] > r.fw_sd[:, 1])
    x = np.arange(config.fw_depth + 1)[None, :] / r.fw_widths[:, None]
    sd = np.std(r.fw_log_ratio, axis=1, ddof=1)
    assert r.kappa_fit == pytest.approx(np.sum(sd**2 * x) / np.sum(x**2), rel=1e-12)
    assert 2.5 < r.kappa_fit < 10 and r.kappa_theory == 5.0


@pytest.mark.parametrize("raw,words", [
    ({"max_width": "8192"}, ["max_width", "power of 2", "2..4096"]),
    ({"min_width": "1"}, ["min_width", "power of 2"]),
    ({"fw_min_width": "100"}, ["fw_min_width", "power of 2"]),
    ({"min_width": "64", "max_width": "32"}, ["out of order"]),
    ({"seeds": "1"}, ["seeds", ">= 2"]),
])
def test_bad_widths_are_one_line(raw, words):
    with pytest.raises(ConfigError) as e:
        parse(ScalingConfig, raw)
    assert all(w in str(e.value) for w in words) and "\n" not in str(e.value)


def test_run_export_reproduce_round_trip(store, tmp_path, monkeypatch, capsys):
    """A small study recorded on a real store: its metrics are the results' numbers at step log2 n;
    the exported folder holds the run's results.json and scaling.png byte for byte and reproduces
    bit for bit; a changed number is found and named."""
    from initstudy.studies.scaling import job

    config = ScalingConfig(max_width=64, draws=500, depth=4, depth_width=16, depth_batch=8, fw_min_width=16,
                           fw_max_width=32, fw_depth=6, seeds=3)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", store.experiment_id)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    out = job.run(config, store.uri)
    rid = out["run_ids"]["top"]
    run = store.client.get_run(rid)
    assert run.data.tags["initstudy.experiment"] == STUDIES["scaling"].experiment and run.info.status == "FINISHED"
    hist = sorted(store.client.get_metric_history(rid, job.dot_key("1_over_sqrt_n")), key=lambda m: m.step)
    assert [m.step for m in hist] == list(range(1, 7))
    assert [m.value for m in hist] == out["doc"]["dot"]["scales"]["1_over_sqrt_n"]["var"]
    assert run.data.metrics["kappa_fit"] == out["doc"]["summary"]["kappa_fit"]
    assert store.artifact_names(rid) == ["manifest.json", "results.json", "scaling.png"]

    monkeypatch.chdir(tmp_path)
    assert export.run_cli(["--run-id", rid, "--out", str(tmp_path / "p"), "--tracking-uri", store.uri]) == 0
    folder = tmp_path / "p" / STUDIES["scaling"].experiment
    assert {p.name for p in folder.iterdir()} == {"why_sqrt_n.py", "results.json", "scaling.png", "manifest.json",
                                                 "README.md"}
    for name in ("results.json", "scaling.png"):
        assert store.download(rid, name).read_bytes() == (folder / name).read_bytes()
    readme_text = (folder / "README.md").read_text()
    assert f"`kappa_fit`: {run.data.metrics['kappa_fit']!r}" in readme_text
    capsys.readouterr()
    assert reproduce.cli([str(folder / "manifest.json")]) == 0
    assert capsys.readouterr().out.startswith("reproduced bit for bit: ")
    doc = json.loads((folder / "results.json").read_text())
    doc["dot"]["scales"]["1"]["var"][3] *= 1 + 1e-12
    (folder / "results.json").write_text(json.dumps(doc))
    assert reproduce.cli([str(folder / "manifest.json")]) == 1
    assert "dot/1/var: max abs diff" in capsys.readouterr().out


COMMITTED = REPO / "projects" / STUDIES["scaling"].experiment


@pytest.mark.skipif(not COMMITTED.exists(), reason="projects/02-why-sqrt-n not exported yet")
def test_committed_readme_is_written_from_its_numbers():
    """Every number in the committed README comes from its results.json and manifest (the reproduce
    test pins those bit for bit); the answer to the lab's why is stated from them."""
    doc = json.loads((COMMITTED / "results.json").read_text())
    mf = json.loads((COMMITTED / "manifest.json").read_text())
    assert (COMMITTED / "README.md").read_text() == readme.render("scaling", doc, mf)
    s = scaling_series(doc)
    i = doc["dot"]["widths"].index(512)
    assert s["dot/1_over_sqrt_n/var"][i] == pytest.approx(1, rel=0.05)
    assert s["dot/1_over_n/var"][i] == pytest.approx(1 / 512, rel=0.05)
    # and docs/signal-propagation.md states them as printed here
    sm, fw = doc["summary"], doc["finite_width"]
    stated = [f"{sm[f'max_abs_z_scale_{k}']:.3g}" for k in scaling.SCALES]
    stated += [f"{s['dot/1/var'][i]:.4g}", f"{s['dot/1_over_n/var'][i]:.4g}", f"{s['dot/1_over_sqrt_n/var'][i]:.4g}"]
    stated += [f"**{sm['kappa_fit']:.3g}**", ", ".join(f"{sd[-1]:.2f}" for sd in fw["sd"])]
    stated += [f"{s[f'depth/{k}/var'][-1]:{f}}" for k, f in (("linear_c1", ".4g"), ("linear_c2", ".3g"),
                                                            ("relu_csqrt2", ".3g"), ("tanh_c1", ".3g"))]
    stated.append(f"{s['depth/tanh_c1/theory'][-1]:.3g}")
    text = (REPO / "docs" / "signal-propagation.md").read_text()
    assert all(x in text for x in stated), [x for x in stated if x not in text]
