"""The walk's signal propagation (walk.Signal) against independent methods: the backward pass and the
Jacobian against finite differences of the forward map; measured against mean-field theory in a
1024-wide network within the finite-width tolerance; xi_c from the measured decay of the correlation."""
import math

import numpy as np
import pytest

from initstudy.core import inits, nn, seeds, theory

from initstudy.studies.walk import compute as walk
from initstudy.studies.walk.compute import WalkConfig, run_walk
from initstudy.studies.walk.record import walk_json, walk_series

WIDE = 1024
# tanh at the edge of chaos for sigma_b^2 = 0.05 (sigma_w^2 = 1.76), and deep in the chaotic phase
# (sigma_w^2 = 8, no biases: c* = 0, xi_c = 4.93), where pairs of correlation 0.3 decorrelate
CRITICAL = WalkConfig(width=WIDE, depth=8, activation="tanh", gain=math.sqrt(1.76), sigma_b2=0.05, c0=0.5)
CHAOTIC = WalkConfig(width=WIDE, depth=8, batch=128, activation="tanh", gain=math.sqrt(8.0), c0=0.3)


@pytest.fixture(scope="module")
def wide():
    return {"critical": run_walk(CRITICAL, "xavier"), "chaotic": run_walk(CHAOTIC, "xavier")}


def tolerance(kappa, layers, n):
    """3 standard deviations of the finite-width random walk of log-variances: kappa/n per layer
    (Hanin & Nica 2019; kappa = 2 for tanh near its linear regime, 5 for ReLU), as tests/test_walk.py."""
    return 3 * np.sqrt(kappa * np.asarray(layers) / n)


@pytest.mark.parametrize("name", ["critical", "chaotic"])
def test_grad_var_and_corr_against_theory_at_width_1024(wide, name):
    r = wide[name]
    s, L = r.signal, r.signal.grad_var.size - 1
    err = np.abs(np.log(s.grad_var / s.grad_var_theory))
    from_top = L - np.arange(L + 1) + 1  # the top gradient's own sample counts as one layer
    assert np.all(err < tolerance(2, from_top, WIDE)), err
    print(f"\n{name}: grad_var/theory {np.round(s.grad_var / s.grad_var_theory, 4)}; "
          f"corr - c-map {np.round(s.corr - s.corr_theory, 4)}")
    assert np.max(err) < 0.08  # measured: 0.048 (critical), 0.041 (chaotic)
    # correlation: a pair's estimate has s.d. (1 - c^2)/sqrt(n); the shared weights add a walk like the variance's
    dev = np.abs(s.corr - s.corr_theory)
    assert np.all(dev[1:] < (1 - s.corr_theory[1:] ** 2) * tolerance(2, np.arange(1, L + 1), WIDE) + 0.01), dev
    assert np.max(dev) < 0.03  # measured: 0.021 (critical), 0.0044 (chaotic)


@pytest.mark.parametrize("name", ["critical", "chaotic"])
def test_jacobian_moments_against_theory_at_width_1024(wide, name):
    """Mean squared singular value of dz_L/dz_0 at one input against prod_l chi(l). At one input the
    per-layer factor mean(phi'(z)^2) over n units has relative variance (E[phi'^4]/E[phi'^2]^2 - 1)/n,
    and the weights add 2/n: the tolerance is 3 s.d. of their sum over the layers (Monte Carlo moments)."""
    r = wide[name]
    s = r.signal
    assert s.jacobian_method == "exact" and s.jacobian_sv.size == WIDE
    assert s.jacobian_msv == pytest.approx(np.mean(s.jacobian_sv ** 2), rel=1e-12)
    assert s.jacobian_spread == pytest.approx(np.log10(s.jacobian_sv.max() / s.jacobian_sv.min()), rel=1e-12)
    z = np.random.default_rng(5).standard_normal(200_000)
    var = 2.0 / WIDE  # the first layer's weights; then per layer phi'^2's spread and the weights
    for q in r.var_theory[1:-1]:
        d1 = nn.Tanh.d1(np.sqrt(q) * z) ** 2
        var += (np.mean(d1**2) / np.mean(d1) ** 2 - 1 + 2) / WIDE
    err = abs(math.log(s.jacobian_msv / s.jacobian_msv_theory))
    print(f"\n{name}: Jacobian mean sigma^2 {s.jacobian_msv:.4g}, theory {s.jacobian_msv_theory:.4g}, "
          f"log ratio {err:.3f} (tolerance {3 * math.sqrt(var):.3f}), spread log10 {s.jacobian_spread:.3g}")
    assert err < 3 * math.sqrt(var)
    assert s.jacobian_msv_theory == pytest.approx(s.grad_var_theory[0], rel=1e-15)


def test_xi_c_from_the_measured_decay_of_the_correlation(wide):
    """Chaotic tanh (sigma_w^2 = 8, no biases): c* = 0, and |c_l - c*| ~ exp(-l / xi_c). The slope of
    log|c_l| over layers 2..8 of the 1024-wide net gives xi_c within 10 % of S eq. 9 (measured 5.1
    against 4.93; the c-map itself, iterated from 0.3, still bends: 4.99)."""
    s = wide["chaotic"].signal
    assert s.scales["c_star"] == 0.0 and s.scales["phase"] == "chaotic"
    l = np.arange(2, 9)
    slope = np.polyfit(l, np.log(np.abs(s.corr[l] - s.scales["c_star"])), 1)[0]
    print(f"\nxi_c measured {-1 / slope:.4g}, theory {s.scales['xi_c']:.4g}")
    assert -1 / slope == pytest.approx(s.scales["xi_c"], rel=0.10)


def test_relu_kaiming_gradients_hold_and_correlations_follow_the_arc_cosine_map():
    """ReLU with Kaiming is critical: chi_1 = 1 at every hidden layer, so the gradient variance holds
    at 1 (the input, which enters without ReLU, gets sigma_w^2 = 2); the correlation climbs along the
    arc-cosine c-map. Width 256 (Hanin & Nica kappa = 5)."""
    config = WalkConfig(depth=10, activation="relu", c0=0.2)
    s = run_walk(config, "kaiming").signal
    np.testing.assert_array_equal(s.grad_var_theory, [2.0] + [1.0] * 10)
    assert s.scales == {"q_star": 1.0, "chi1": 1.0, "c_star": 1.0, "phase": "critical"}
    err = np.abs(np.log(s.grad_var / s.grad_var_theory))
    assert np.all(err < tolerance(5, 11 - np.arange(11), 256)), err
    assert np.all(np.abs(s.corr - s.corr_theory)[1:] < tolerance(5, np.arange(1, 11), 256)), s.corr - s.corr_theory


def forward(config, init, x):
    """The walk's forward map, rebuilt independently from the recorded seeds (float64)."""
    rng = seeds.rng(config.weight_seed(init))
    brng = seeds.rng(config.bias_seed(init))
    phi = nn.ACTIVATIONS[config.activation].fn
    z = x
    for l in range(1, config.depth + 1):
        w = inits.sample_weights(init, rng, config.width, config.width, config.gain)
        b = brng.standard_normal(config.width) * math.sqrt(config.sigma_b2)
        z = (z if l == 1 else phi(z)) @ w + b
    return z


@pytest.mark.parametrize("activation", ["tanh", "linear", "selu", "gelu", "sigmoid", "silu"])
def test_backward_and_jacobian_against_finite_differences(activation):
    """A small net with biases: the Jacobian's singular values equal those of the central-difference
    Jacobian of the forward map at the first input; the input gradient of the top gradient's loss
    sum(g * z_L), pushed through that Jacobian, has the variance the walk records at layer 0."""
    config = WalkConfig(depth=3, width=12, batch=5, activation=activation, sigma_b2=0.1, gain=1.2)
    r = run_walk(config, "xavier")
    x = walk.input_batch(config)
    h = 1e-6
    J = np.array([(forward(config, "xavier", x[:1] + h * e) - forward(config, "xavier", x[:1] - h * e))[0] / (2 * h)
                  for e in np.eye(config.width)])
    # atol: the differences' round-off (~1e-16 / h) against the smallest singular values (silu: 6e-6)
    np.testing.assert_allclose(r.signal.jacobian_sv, np.linalg.svd(J, compute_uv=False), rtol=1e-6, atol=1e-9)
    top = seeds.rng(config.stream_seeds()["top_grad"]).standard_normal((config.batch, config.width))
    grads = []
    for b in range(config.batch):
        Jb = np.array([(forward(config, "xavier", x[b:b + 1] + h * e) - forward(config, "xavier", x[b:b + 1] - h * e))[0]
                       / (2 * h) for e in np.eye(config.width)])
        grads.append(Jb @ top[b])
    assert r.signal.grad_var[0] == pytest.approx(np.var(np.array(grads)), rel=1e-6)
    assert r.signal.grad_var[-1] == pytest.approx(np.var(top), rel=1e-15)


def test_jacobian_above_the_exact_width_uses_probes(monkeypatch):
    """Above JACOBIAN_EXACT_MAX_WIDTH: no spectrum, the mean squared singular value from Gaussian
    probes, within their sampling error of the exact one."""
    config = WalkConfig(depth=4, width=64, activation="tanh", gain=1.3)
    exact = run_walk(config, "xavier").signal
    monkeypatch.setattr(walk, "JACOBIAN_EXACT_MAX_WIDTH", 32)
    probed = run_walk(config, "xavier").signal
    assert probed.jacobian_method == "probes" and probed.jacobian_sv.size == 0 and math.isnan(probed.jacobian_spread)
    # E|vJ|^2 = tr(J^T J); its relative s.d. over k probes is sqrt(2 sum s^4 / (sum s^2)^2 / k)
    sv2 = exact.jacobian_sv ** 2
    sd = math.sqrt(2 * np.sum(sv2**2) / np.sum(sv2) ** 2 / walk.JACOBIAN_PROBES)
    assert abs(probed.jacobian_msv / exact.jacobian_msv - 1) < 4 * sd
    assert "jacobian_spread" not in probed.summary()


def test_lab_series_unchanged_by_the_new_streams():
    """The pairs, the top gradient and the probes have their own seeds: the lab's forward series of a
    default walk do not depend on c0, and a config with biases or a gain changes them."""
    a, b = run_walk(WalkConfig(depth=4), "kaiming"), run_walk(WalkConfig(depth=4, c0=-0.7), "kaiming")
    for k in a.series():
        np.testing.assert_array_equal(a.series()[k], b.series()[k])
    assert not np.array_equal(a.signal.corr, b.signal.corr)
    assert run_walk(WalkConfig(depth=4, sigma_b2=0.1), "kaiming").var[-1] != a.var[-1]
    assert len(set(WalkConfig().stream_seeds().values()) | {WalkConfig().input_seed()}) == 4


def test_signal_block_round_trips_through_results_json():
    config = WalkConfig(depth=3, width=16, activation="tanh", sigma_b2=0.05)
    rs = [run_walk(config, i) for i in inits.LAB_INITS]
    doc = walk_json(vars(config), rs)
    assert set(doc["config"]) == {"depth", "width", "batch", "input_variance", "activation", "dtype", "seed"}
    assert doc["signal"]["config"] == {"sigma_b2": 0.05, "gain": 1.0, "c0": 0.5}
    series = walk_series(doc)
    for r in rs:
        for k, v in r.signal.series().items():
            np.testing.assert_array_equal(series[f"{r.init}/{k}"], v)
        assert doc["signal"]["inits"][r.init]["phase"] == r.signal.scales["phase"]


def measured_numbers(wide) -> list[str]:
    """The numbers docs/signal-propagation.md states for these two nets, as it prints them."""
    out = []
    for name in ("critical", "chaotic"):
        r = wide[name]
        s = r.signal
        worst = np.max(np.abs(np.log(s.grad_var / s.grad_var_theory)))
        out += [f"{math.exp(worst):.3f}", f"{np.max(np.abs(s.corr - s.corr_theory)):.2g}",
                f"{s.jacobian_msv:.4g} / {s.jacobian_msv_theory:.4g}", f"{s.jacobian_spread:.3g}",
                f"{abs(math.log(s.jacobian_msv / s.jacobian_msv_theory)):.3f}"]
    s = wide["chaotic"].signal
    l = np.arange(2, 9)
    for series in (s.corr, s.corr_theory):
        out.append(f"{-1 / np.polyfit(l, np.log(np.abs(series[l])), 1)[0]:.3g}")
    return out + [f"{s.scales['xi_c']:.3g}"]


def test_the_docs_state_the_measured_numbers(wide):
    from conftest import REPO

    text = (REPO / "docs" / "signal-propagation.md").read_text()
    missing = [x for x in measured_numbers(wide) if x not in text]
    assert not missing, (missing, measured_numbers(wide))
