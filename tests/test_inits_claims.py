"""Each paper's claim about an init, measured through the walk (docs/inits.md states the numbers):
Saxe et al. 2013 (orthogonal keeps norms), Pennington et al. 2017 (dynamical isometry), Glorot & Bengio
2010 (standard vs normalized init, backward). LSUV's claims: tests/test_lsuv.py."""
import math
from pathlib import Path

import numpy as np
import pytest

from initstudy.core import inits, seeds

from initstudy.studies.scaling import compute as scaling
from initstudy.studies.walk.compute import WalkConfig, input_batch, run_walk

pytestmark = [pytest.mark.fast, pytest.mark.usefixtures("one_blas_thread")]
SEEDS = (42, 1, 2)
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()  # its inits table states these numbers


def per_input_log_norm2(config, init):
    """log(|z_l|^2 / |z_{l-1}|^2) per input and layer (depth, batch), an independent float64 forward of the
    walk's linear net from its documented draws (input batch; layer l's W the l-th draw of its weight seed)."""
    rng = seeds.rng(config.weight_seed(init))
    z, out = input_batch(config), []
    for _ in range(config.depth):
        nxt = z @ inits.sample_weights(init, rng, config.width, config.width, config.gain)
        out.append(np.log(np.sum(nxt**2, 1) / np.sum(z**2, 1)))
        z = nxt
    return np.array(out), z


def test_orthogonal_linear_walk_keeps_each_norm_gaussian_drifts_as_finite_width_predicts():
    """Orthogonal: every input's norm per layer to 1e-12 relative (float64), and the walk's own variance
    is that forward's. Gaussian N(0, 1/n) (lecun_normal): log |z_L|^2/|x|^2 per input is a sum of L terms
    log(chi^2_n / n), s.d. sqrt(kappa L / n), kappa = 2 (scaling.KAPPA_THEORY, the walk's finite-width test);
    measured over 3 seeds x 64 inputs at L = 20, n = 256: predicted 0.395."""
    drift = []
    for seed in SEEDS:
        config = WalkConfig(depth=20, width=256, seed=seed)
        logs, z = per_input_log_norm2(config, "orthogonal")
        assert np.max(np.abs(logs)) < 2e-15  # |log r^2| = 2 |log r|: the claim's 1e-12 relative per layer, and the README's 1e-15
        assert run_walk(config, "orthogonal", signal=False).var[-1] == pytest.approx(np.var(z), rel=1e-12)
        g, _ = per_input_log_norm2(config, "lecun_normal")
        drift.append(g.sum(0))
    sd, predicted = np.std(np.concatenate(drift)), math.sqrt(scaling.KAPPA_THEORY["linear"] * 20 / 256)
    assert 0.8 * predicted < sd < 1.2 * predicted, (sd, predicted)  # s.e. of an s.d. from 192: ~5 %
    assert f"drifts with s.d. {sd:.3f} (theory √(2L/n) = {predicted:.3f})" in README


# Pennington et al. 2017: tanh at criticality (sigma_w^2 = 1, sigma_b^2 = 0: chi_1 = 1, q* -> 0) from a small
# input variance q0 = 0.01 (the q* -> 0 end of the critical line, where D_l ~ I). Measured log10(max/min) of
# the Jacobian's singular values (docs/inits.md): orthogonal 0.10-0.11, 0.32-0.35, 0.50-0.53 at depths 10, 50, 100;
# Gaussian N(0, 1/n) 16.7-19.6 (float64's floor: min/max ~ 1e-17), and its 5-95 % percentile width 7.5, 16.0.
ISOMETRY = {10: 0.2, 50: 0.5, 100: 0.8}  # orthogonal's bound on log10(max/min) per depth


@pytest.mark.parametrize("depth", sorted(ISOMETRY))
def test_dynamical_isometry_orthogonal_vs_gaussian_tanh_at_criticality(depth):
    for seed in SEEDS[:2]:
        config = WalkConfig(activation="tanh", depth=depth, seed=seed, input_variance=0.01)
        o, g = (run_walk(config, i) for i in ("orthogonal", "lecun_normal"))
        assert o.signal.scales["phase"] == g.signal.scales["phase"] == "critical"
        assert o.signal.sigma_w2 == g.signal.sigma_w2 == 1.0  # the same sigma_w^2
        so, sg = o.signal.jacobian_sv, g.signal.jacobian_sv
        assert o.signal.jacobian_spread < ISOMETRY[depth] and np.all(np.abs(np.log10(so)) < ISOMETRY[depth])
        assert g.signal.jacobian_spread > 10  # orders of magnitude (at depth 10 already past float64's 1e-16)
        if seed == 42:  # the README's row states the command's seed
            assert f"{o.signal.jacobian_spread:.2f}" in README.split("Pennington")[1].split("\n")[0], o.signal.jacobian_spread
        width = np.log10(np.percentile(sg, 95) / np.percentile(sg, 5))
        assert width > (5 if depth == 10 else 12), width  # the bulk spreads with depth, not only its edge


def test_glorot_standard_init_gradients_fall_normalized_stay():
    """tanh, depth 20, width 256: the back-propagated Var(dL/dz_l) per layer (the walk's backward panel).
    Standard U[+-1/sqrt(n)] (sigma_w^2 = 1/3): each layer down multiplies it by <= 1/3 E[phi'^2] (measured
    0.22-0.35), 10^-9.8 over 20 layers. Normalized U[+-sqrt(6/(n_in+n_out))] (sigma_w^2 = 1): 0.45-1.0 per
    layer, >= 0.88 in the top 10 (where q is small and tanh ~ linear), 10^-1.5 over all 20 (seed 42). Both within
    0.1 decade of the backward theory (S eq. 12-13) at the input."""
    per_layer_std = []
    for seed in SEEDS:
        config = WalkConfig(activation="tanh", depth=20, seed=seed)
        std, norm = (run_walk(config, i).signal for i in ("standard_uniform", "xavier_uniform"))
        r_std, r_norm = std.grad_var[:-1] / std.grad_var[1:], norm.grad_var[:-1] / norm.grad_var[1:]
        per_layer_std += list(r_std)
        if seed == 42:  # the README's row: the command's seed, input against top
            total = [np.log10(s.grad_var[0] / s.grad_var[-1]) for s in (std, norm)]
            assert f"(10^{total[0]:.1f} in all), flat under normalized (10^{total[1]:.1f})" in README, total
        assert np.all(r_std < 0.4) and np.log10(std.grad_var[0] / std.grad_var[-1]) < -9
        assert np.all(r_norm > 0.4) and np.all(r_norm[10:] > 0.8) and np.log10(norm.grad_var[0] / norm.grad_var[-1]) > -2
        for s in (std, norm):
            assert abs(np.log10(s.grad_var[0] / s.grad_var_theory[0])) < 0.1
    assert f"×{min(per_layer_std):.2f}–{max(per_layer_std):.2f} per layer under standard" in README
