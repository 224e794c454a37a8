"""The activations beyond the lab's three at the entry points, and SELU's paper claim measured.

Numerics of each activation (forward, phi', phi'', backward) are in test_nn.py, their Gaussian moments
and depth scales in test_theory.py, the fast training core in test_fastcore.py, refusals in
test_refusals.py. Here: the sweep's activation axis, and Klambauer et al. 2017's self-normalizing
fixed point in the walk (docs/activations.md states these numbers)."""
from pathlib import Path

import numpy as np
import pytest

from initstudy.run import grid

from initstudy.core import nn, theory

from initstudy.studies.scaling import compute as scaling
from initstudy.core.config import ConfigError
from initstudy.studies.walk.compute import WalkConfig, run_walk

pytestmark = [pytest.mark.fast, pytest.mark.usefixtures("one_blas_thread")]  # as the walk job runs (and ~40x faster on a busy machine)

NEW = ("selu", "gelu", "sigmoid", "silu")
CLAIM_SEEDS = (42, 0, 1, 2, 3)  # 42: the command's default seed, whose numbers the docs state
CLAIM = dict(depth=50, width=256)  # the walk, init lecun_normal N(0, 1/fan_in)


def test_activation_is_a_sweep_axis_for_walk_and_ablate():
    for study in ("walk", "ablate"):
        g = grid.build(study, grid="activation=" + ",".join(NEW) + ";init=lecun_normal")
        assert g.axes["activation"] == list(NEW)
        assert [p.config.activation for p in g.points][:: len(g.points) // len(NEW)] == list(NEW)  # the first axis varies slowest
    with pytest.raises(ConfigError, match="activation must be one of linear, relu, tanh, selu, gelu, sigmoid, silu"):
        grid.build("walk", grid="activation=selu,swish")


def self_normalizing(r) -> bool:
    """Klambauer et al.'s claim at every layer: |mean| <= 0.1 and variance in [0.8, 1.25]."""
    return bool(np.all(np.abs(r.mean) <= 0.1) and np.all((r.var >= 0.8) & (r.var <= 1.25)))


@pytest.fixture(scope="module")
def claim_walks():
    """(selu, relu) walks at depth 50, width 256, init lecun_normal, per seed (lab 00's series alone)."""
    return {s: tuple(run_walk(WalkConfig(activation=a, seed=s, **CLAIM), "lecun_normal", signal=False) for a in ("selu", "relu"))
            for s in CLAIM_SEEDS}


def test_selu_with_lecun_normal_self_normalizes_and_relu_halves_beside_it(claim_walks):
    """SELU (N(0, 1/n) weights: sum w = 0, sum w^2 = 1 in expectation) keeps mean 0 and variance 1 at
    every one of 50 layers, for every seed: measured max |mean| 0.030, variance in [0.917, 1.110] over
    seeds 42, 0-3. Theory: q* = 1 at sigma_w^2 = 1 (the paper's fixed point), so the q-map stays at 1.
    ReLU under the same weights halves the variance per layer (sigma_w^2 E[relu(u)^2] / q = 1/2)."""
    assert theory.growth_per_layer("relu", 1.0) == 0.5
    worst_mean, var_range, relu_rates = 0.0, [np.inf, -np.inf], []
    for s, (selu, relu) in claim_walks.items():
        assert self_normalizing(selu), (s, selu.mean, selu.var)
        np.testing.assert_allclose(selu.var_theory, 1.0, rtol=1e-12)  # the q-map at its fixed point
        worst_mean = max(worst_mean, float(np.max(np.abs(selu.mean))))
        var_range = [min(var_range[0], selu.var.min()), max(var_range[1], selu.var.max())]
        # ReLU: the per-layer factor, geometric mean over layers 2..50, is 1/2; each layer's within sampling noise
        ratio = relu.var[2:] / relu.var[1:-1]
        rate = float(np.exp(np.mean(np.log(ratio))))
        relu_rates.append(rate)
        assert abs(rate - 0.5) < 0.03 and np.all((ratio > 0.25) & (ratio < 0.9)), (s, rate)
        np.testing.assert_allclose(relu.var_theory[1:], 0.5 ** np.arange(50), rtol=1e-15)
        # 2^-49 = 1.8e-15 beside the measured one: finite width spreads log(var_L / q_L) with variance
        # kappa L / n (Hanin & Nica 2019, the scaling study's oracle); 3 s.d. of it
        spread = np.sqrt(scaling.KAPPA_THEORY["relu"] * 49 / CLAIM["width"])
        assert abs(np.log(relu.var[-1] / relu.var_theory[-1])) < 3 * spread, s
        assert not self_normalizing(relu)
    print(f"\nSELU, depth 50, width 256, lecun_normal, seeds {list(CLAIM_SEEDS)}: max |mean| {worst_mean:.3f}, "
          f"variance in [{var_range[0]:.3f}, {var_range[1]:.3f}]; ReLU per-layer factor {np.round(relu_rates, 4)}")
    # the numbers docs/activations.md states: seed 42 (the command's), then all seeds
    doc = (Path(__file__).resolve().parent.parent / "docs" / "activations.md").read_text()
    s42 = claim_walks[42][0]
    assert (f"seed 42, max |mean| {np.max(np.abs(s42.mean)):.3f}, variance in [{s42.var.min():.3f}, "
            f"{s42.var.max():.3f}]") in doc
    assert f"max |mean| {worst_mean:.3f} and variance in [{var_range[0]:.3f}, {var_range[1]:.3f}]" in doc
    assert f"factor {min(relu_rates):.3f}–{max(relu_rates):.3f}" in doc
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()  # its table's SELU row
    assert (f"\\|mean\\| ≤ {worst_mean:.3f}, variance in [{var_range[0]:.3f}, {var_range[1]:.3f}] at every layer over "
            f"{len(CLAIM_SEEDS)} seeds; ReLU beside it ×{min(relu_rates):.3f}–{max(relu_rates):.3f} per layer") in readme


def test_the_claim_fails_off_the_fixed_point():
    """The same check on SELU with kaiming N(0, 2/n) (sigma_w^2 = 2: its q-map grows like q, no fixed
    point) fails: the variance leaves [0.8, 1.25] within a few layers."""
    r = run_walk(WalkConfig(activation="selu", seed=0, **CLAIM), "kaiming", signal=False)
    assert not self_normalizing(r) and r.var[2] > 1.25 and r.var[-1] > 10  # out from layer 2 on (the docs)
    assert np.isnan(theory.q_star("selu", 2.0))

