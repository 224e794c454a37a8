import json

import numpy as np
import pytest

from initstudy import inits, nn, results, seeds
from initstudy.walk import WalkConfig, input_batch, run_walk


def forward_again(config, init):
    """An independent float64 forward of the same draw, keeping each layer's input h."""
    rng = seeds.rng(config.weight_seed(init))
    phi = nn.ACTIVATIONS[config.activation].fn
    z = input_batch(config).astype(float)
    hs, zs = [], [z]
    for l in range(1, config.depth + 1):
        w = inits.sample_weights(init, rng, config.width, config.width)
        h = z if l == 1 else phi(z)
        z = h @ w
        hs.append(h)
        zs.append(z)
    return hs, zs


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh"])
@pytest.mark.parametrize("init", list(inits.INITS))
def test_one_step_prediction_within_its_sampling_error(activation, init):
    """Given layer l's input h, z = h @ W has columns z_j ~ N(0, s2 G), G = h h^T, independent over j.
    So mean(z^2) has mean s2 tr(G)/B (the one-step prediction) and s.d. s2 sqrt(2 tr(G^2)/n)/B.
    For i.i.d. h that s.d. is ~1.2 % at width 256, batch 64; ReLU's correlated h make it larger."""
    config = WalkConfig(activation=activation, seed=7)
    r = run_walk(config, init, signal=False)  # lab 00's series only (the signal block: test_walk_signal.py)
    s2, n, B = r.sigma2, config.width, config.batch
    hs, zs = forward_again(config, init)
    for l, h in enumerate(hs, start=1):
        g = h @ h.T
        sd = s2 * np.sqrt(2 * np.sum(g * g) / n) / B
        assert r.var_pred[l] == pytest.approx(s2 * np.trace(g) / B, rel=1e-9)
        assert abs(r.var[l] - r.var_pred[l]) < 5 * sd, (l, r.var[l], r.var_pred[l], sd)
        assert r.var[l] == pytest.approx(np.var(zs[l]), rel=1e-9)


@pytest.mark.parametrize("activation,kappa", [("linear", 2), ("tanh", 2), ("relu", 5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_within_finite_width_tolerance(activation, kappa, seed):
    """log(var_l / q_l) is a random walk with per-layer variance ~kappa/n (kappa = 2 for a linear
    net, ~5 for ReLU: Hanin & Nica 2019), so the tolerance grows like sqrt(l/n); 3 s.d. allowed."""
    config = WalkConfig(activation=activation, seed=seed)
    for init in inits.INITS:
        r = run_walk(config, init, signal=False)
        l = np.arange(1, config.depth + 1)
        err = np.abs(np.log(r.var[1:] / r.var_theory[1:]))
        assert np.all(err < 3 * np.sqrt(kappa * l / config.width)), (init, err)


def test_growth_factors_are_the_theorys_not_the_labs_sentence():
    """Uniform grows ~21x per layer (256/12), Xavier holds 1, Kaiming doubles (it does not hold at 2)."""
    config = WalkConfig()
    for init, factor in [("uniform", 256 / 12), ("xavier", 1.0), ("kaiming", 2.0)]:
        r = run_walk(config, init, signal=False)
        measured = (r.var[-1] / r.var[0]) ** (1 / config.depth)
        assert measured == pytest.approx(factor, rel=0.03)


def test_same_seed_is_bit_identical_and_inits_share_the_input():
    config = WalkConfig()
    a = results.dumps(results.walk_json({}, [run_walk(config, i) for i in inits.INITS]))
    b = results.dumps(results.walk_json({}, [run_walk(config, i) for i in inits.INITS]))
    assert a == b
    seeds_ = {config.weight_seed(i) for i in inits.INITS}
    assert len(seeds_) == 3 and config.input_seed() not in seeds_
    doc = json.loads(a)
    var0 = {doc["inits"][i]["layers"][0]["var_empirical"] for i in inits.INITS}
    assert len(var0) == 1  # the same input batch for all three
    assert run_walk(WalkConfig(seed=43), "xavier").var[-1] != run_walk(config, "xavier").var[-1]


def test_float16_uniform_overflows_at_layer_7_and_finishes():
    r = run_walk(WalkConfig(dtype="float16"), "uniform")
    assert len(r.var) == 21
    first = int(np.argmax(r.saturated))
    assert first == 7  # max|z| ~ 4 sd = 4 * (256/12)^(l/2) passes float16's 65504 at l = 7
    assert r.saturated[first:].all() and not r.saturated[:first].any()
    assert not np.isfinite(r.var[first:]).any() and np.isfinite(r.var[:first]).all()
    assert np.all(np.isfinite(run_walk(WalkConfig(dtype="float32"), "uniform").var))


def test_float16_statistics_accumulate_in_float64():
    """np.var of float16 data in float16 overflows from layer 1; ours must not."""
    r = run_walk(WalkConfig(dtype="float16"), "uniform")
    assert np.isfinite(r.var[1]) and r.var[1] > 10
