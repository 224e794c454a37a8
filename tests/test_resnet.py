"""Residual networks (issue 26): core/resnet.py's backward against finite differences and a scalar chain
rule written out by hand; core/resnet_theory.py against its closed forms and Monte Carlo over weight draws;
BatchNorm's backward growth against Yang et al. 2019's pi / (pi - 1)."""
import math

import numpy as np
import pytest

from initstudy.core import inits, nn, resnet
from initstudy.core import resnet_theory as rt
from initstudy.studies.walk import residual
from initstudy.studies.walk.compute import WalkConfig

pytestmark = pytest.mark.fast
EPS = 1e-6
SCHEMES = [(b, m, norm) for b in resnet.BRANCHES for m in (1, 2) for norm in ("none", "batchnorm")
           if not (b == "fixup" and m == 1)]


def small_net(branch, m, norm, activation="tanh", seed=1):
    net = resnet.ResNet.build(np.random.default_rng(seed), depth=3, width=5, input_dim=4, classes=3, branch=branch,
                              branch_layers=m, activation=activation, norm=norm)
    rng = np.random.default_rng(seed + 1)
    for p, _ in net.params():  # off the zero init (W_2 = 0, alpha = 0), so every gradient is generic
        p += 0.3 * rng.standard_normal(p.shape)
    return net


@pytest.mark.parametrize("branch,m,norm", SCHEMES)
def test_backward_matches_finite_differences(branch, m, norm):
    net = small_net(branch, m, norm)
    rng = np.random.default_rng(0)
    x, r = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    loss = lambda: float(np.sum(net.forward(x) * r))  # noqa: E731
    net.forward(x)
    dx = net.backward(r)
    for p, g in net.params() + [(x, dx)]:
        g, num = g.copy(), np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + EPS
            up = loss()
            p[i] = old - EPS
            num[i] = (up - loss()) / (2 * EPS)
            p[i] = old
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("branch", ["none", "sqrt_depth", "zero"])
def test_width_one_matches_the_scalar_chain_rule(branch):
    """Width 1, one example: x_{l+1} = x_l + a w2 phi(w1 x_l), y = w_out x_L; d y / d(every weight) by hand."""
    net = resnet.ResNet.build(np.random.default_rng(3), depth=4, width=1, input_dim=1, classes=1, branch=branch,
                              activation="tanh")
    for p, _ in net.params():
        p += np.random.default_rng(4).uniform(0.2, 0.9, p.shape)  # biases too: h = w1 x + b1
    u = 0.7
    y = net.forward(np.array([[u]]))
    net.backward(np.ones((1, 1)))
    blocks = net.res_blocks
    lin = lambda l: (float(l.weight[0, 0]), float(l.bias[0]))  # noqa: E731
    alpha = lambda b: float(b.branch[-1].value[0]) if branch != "none" else 1.0  # noqa: E731
    w_in, b_in = lin(net.layers[0])
    xs = [w_in * u + b_in]
    for b in blocks:
        (w1, b1), (w2, b2) = lin(b.linears[0]), lin(b.linears[1])
        xs.append(xs[-1] + alpha(b) * (w2 * math.tanh(w1 * xs[-1] + b1) + b2))
    w_out, b_out = lin(net.layers[-1])
    assert y[0, 0] == pytest.approx(w_out * xs[-1] + b_out, rel=1e-14)
    g = w_out  # dy/dx_L
    for l in range(len(blocks) - 1, -1, -1):
        b = blocks[l]
        (w1, b1), (w2, b2) = lin(b.linears[0]), lin(b.linears[1])
        h, a = w1 * xs[l] + b1, alpha(b)
        dphi = 1 - math.tanh(h) ** 2
        assert b.linears[1].grad_weight[0, 0] == pytest.approx(g * a * math.tanh(h), rel=1e-12)
        assert b.linears[0].grad_weight[0, 0] == pytest.approx(g * a * w2 * dphi * xs[l], rel=1e-12)
        if branch == "zero":
            assert b.branch[-1].grad[0] == pytest.approx(g * (w2 * math.tanh(h) + b2), rel=1e-12)
        g *= 1 + a * w2 * dphi * w1
    assert net.layers[0].grad_weight[0, 0] == pytest.approx(g * u, rel=1e-12)


def test_init_of_each_scheme():
    """zero: alpha 0; fixup: W_2 = 0, readout 0, W_1 scaled by L^(-1/2) (m = 2), scalar biases 0, multiplier 1."""
    kw = dict(depth=16, width=64, input_dim=8, classes=3, activation="relu", init="kaiming")
    ref = resnet.ResNet.build(np.random.default_rng(5), branch="none", **kw)
    fix = resnet.ResNet.build(np.random.default_rng(5), branch="fixup", **kw)
    zero = resnet.ResNet.build(np.random.default_rng(5), branch="zero", **kw)
    sq = resnet.ResNet.build(np.random.default_rng(5), branch="sqrt_depth", **kw)
    for r, f, z, s in zip(ref.res_blocks, fix.res_blocks, zero.res_blocks, sq.res_blocks):
        np.testing.assert_array_equal(f.linears[0].weight, r.linears[0].weight * 16 ** -0.5)
        assert not f.linears[1].weight.any()
        assert [float(l.value[0]) for l in f.branch if isinstance(l, resnet.Scalar)] == [0, 0, 0, 1, 0]
        assert z.branch[-1].value[0] == 0 and z.branch[-1].params()
        assert s.branch[-1].value[0] == 0.25 and not s.branch[-1].params()  # fixed 1/sqrt(L)
    assert not fix.layers[-1].weight.any() and not fix.layers[-1].bias.any()


# --- theory

@pytest.mark.parametrize("activation,sw2", [("linear", 1.0), ("relu", 2.0), ("relu", 1.3)])
@pytest.mark.parametrize("m", [1, 2])
def test_recursion_matches_its_closed_form(activation, sw2, m):
    for branch in ("none", "sqrt_depth"):
        for depth in (10, 50, 100):
            q = rt.q_series(activation, branch, depth, 1.0, sw2, m)
            assert q[-1] == pytest.approx(rt.growth_closed_form(activation, branch, depth, sw2, m), rel=1e-12)
            qt = rt.grad_series(activation, branch, q, sw2, m)
            assert qt[0] == pytest.approx(q[-1], rel=1e-12)  # linear and ReLU: chi_B = E[B^2] / q


def test_relu_he_numbers():
    """Unscaled ReLU + He: q x 3 per block (m = 2), exponential; 1/sqrt(L): (1 + 2/L)^L, bounded by e^2."""
    assert rt.growth_closed_form("relu", "none", 50, 2.0) == pytest.approx(3.0**50, rel=1e-12)
    for depth in (10, 50, 100, 1000, 10**6):
        g = rt.growth_closed_form("relu", "sqrt_depth", depth, 2.0)
        assert g == pytest.approx((1 + 2 / depth) ** depth) and g < math.e**2
    assert rt.growth_closed_form("relu", "sqrt_depth", 50, 2.0) == pytest.approx(7.1067, abs=1e-4)
    assert rt.growth_closed_form("relu", "sqrt_depth", 100, 2.0) == pytest.approx(7.2446, abs=1e-4)
    for branch in ("zero", "fixup"):
        assert rt.q_series("relu", branch, 100, 1.0, 2.0)[-1] == 1.0


def ratios(branch, depth, seeds, width=128, batch=32, activation="relu", init="kaiming", norm="none"):
    """q_L / q_0 of x_0..x_L for weight draws `seeds` (forward only)."""
    out = []
    x = np.random.default_rng(99).standard_normal((batch, width))
    for s in seeds:
        net = resnet.ResNet.build(np.random.default_rng(s), depth=depth, width=width, input_dim=width, classes=2,
                                  branch=branch, activation=activation, norm=norm, init=init)
        xs = residual.stream(net, x)
        out.append(np.var(xs[-1]) / np.var(xs[0]))
    return np.array(out)


STATED_LOG10_GROWTH = {("none", 50): (23.45, 0.46), ("sqrt_depth", 50): (0.82, 0.03), ("zero", 50): (0.0, 0.0),
                       ("fixup", 50): (0.0, 0.0), ("none", 100): (46.98, 0.66), ("sqrt_depth", 100): (0.83, 0.02),
                       ("zero", 100): (0.0, 0.0), ("fixup", 100): (0.0, 0.0)}


@pytest.mark.parametrize("depth", [50, 100])
@pytest.mark.parametrize("branch", resnet.BRANCHES)
def test_growth_within_the_finite_width_spread(branch, depth):
    """The claim: log q_L/q_0 of 6 weight draws (width 128) brackets the recursion's within 3 s.d. of the
    draws; none explodes (> 1e20), the others stay O(1) (< 10)."""
    r = ratios(branch, depth, range(6))
    theory = rt.q_series("relu", branch, depth, 1.0, 2.0)[-1]
    logs = np.log(r)
    stated = STATED_LOG10_GROWTH[branch, depth]  # docs/residual.md's table: mean and s.d. of log10 q_L/q_0
    assert (round(float(np.mean(np.log10(r))), 2), round(float(np.std(np.log10(r))), 2)) == stated
    assert abs(np.mean(logs) - np.log(theory)) <= max(3 * np.std(logs), 1e-12), (r, theory)
    assert (np.min(r) > 1e20) if branch == "none" else (np.max(r) < 10)


def test_batchnorm_branch_variance_grows_linearly():
    """BN in a ReLU branch (He): q_{l+1} = q_l + alpha^2, linear in L (De & Smith 2020)."""
    q = rt.q_series("relu", "none", 100, 2.0, 2.0, 2, "batchnorm")
    np.testing.assert_allclose(q, 2.0 + np.arange(101))
    r = ratios("none", 100, range(3), norm="batchnorm") * 2.0  # q_0 = sigma^2 = 2
    assert np.all(np.abs(r - q[-1]) < 0.1 * q[-1]), r


def test_walk_resnet_series_against_theory():
    """The walk's per-block series: q and the gradient against their recursions (sqrt_depth, ReLU, L = 20)."""
    c = WalkConfig(depth=20, width=128, batch=32, activation="relu", arch="resnet", branch="sqrt_depth")
    c.validate()
    from initstudy.studies.walk.compute import run_walk

    r = run_walk(c, "kaiming")
    assert len(r.var) == len(r.var_theory) == len(r.signal.grad_var) == 21
    np.testing.assert_allclose(r.var / r.var[0], r.var_theory / r.var_theory[0], rtol=0.15)
    np.testing.assert_allclose(r.signal.grad_var / r.signal.grad_var[-1], r.signal.grad_var_theory, rtol=0.15)
    assert r.signal.jacobian_msv == pytest.approx(r.signal.jacobian_msv_theory, rel=0.15)
    np.testing.assert_allclose(r.signal.corr[1:], r.signal.corr_theory[1:], atol=0.05)


def test_batchnorm_mlp_gradient_growth():
    """Yang et al. 2019: pi / (pi - 1) per layer going backward (ReLU, BN, train mode); within 5 % at width
    and batch 256, depth 30 (the 1024 x 1024 x 50 claim: docs/residual.md)."""
    c = WalkConfig(depth=30, width=256, batch=256, activation="relu", norm="batchnorm")
    c.validate()
    from initstudy.studies.walk.compute import run_walk

    s = run_walk(c, "kaiming").signal.summary()
    assert s["grad_growth_per_layer_theory"] == pytest.approx(math.pi / (math.pi - 1))
    assert abs(s["grad_growth_per_layer"] / s["grad_growth_per_layer_theory"] - 1) < 0.05, s
    assert round(s["grad_growth_per_layer"], 4) == 1.4556  # docs/residual.md
