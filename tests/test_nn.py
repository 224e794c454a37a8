"""Every backward against central finite differences in float64 (the independent oracle)."""
import math
import numpy as np
import pytest

from initstudy.core import nn

pytestmark = pytest.mark.fast

EPS = 1e-6


def numeric_grad(f, x):
    """Central differences of the scalar f() with respect to every entry of x (in place)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + EPS
        up = f()
        x[i] = old - EPS
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * EPS)
    return g


def check_layer(layer, x, params=()):
    """Loss = sum(out * r) for a fixed random r, so dLoss/dout = r."""
    r = np.random.default_rng(1).standard_normal(layer.forward(x).shape)

    def loss():
        return float(np.sum(layer.forward(x) * r))

    layer.forward(x)
    dx = layer.backward(r)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    for name, grad_name in params:
        layer.forward(x)
        layer.backward(r)
        analytic = getattr(layer, grad_name).copy()
        np.testing.assert_allclose(analytic, numeric_grad(loss, getattr(layer, name)), rtol=1e-6, atol=1e-8)


def test_linear():
    rng = np.random.default_rng(0)
    layer = nn.Linear(rng.standard_normal((5, 4)), rng.standard_normal(4))
    check_layer(layer, rng.standard_normal((3, 5)), [("weight", "grad_weight"), ("bias", "grad_bias")])


def test_relu():
    x = np.random.default_rng(0).standard_normal((4, 6))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink, where the derivative is undefined
    check_layer(nn.ReLU(), x)


def test_tanh():
    check_layer(nn.Tanh(), np.random.default_rng(0).standard_normal((4, 6)) * 2)


def test_identity():
    check_layer(nn.Identity(), np.random.default_rng(0).standard_normal((3, 3)))


def test_batchnorm_train_mode():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(5)
    bn.gamma[:] = rng.standard_normal(5)
    bn.beta[:] = rng.standard_normal(5)
    check_layer(bn, rng.standard_normal((8, 5)) * 3 + 1, [("gamma", "grad_gamma"), ("beta", "grad_beta")])


def test_batchnorm_eval_mode_normalises_with_independently_computed_statistics():
    """Eval mode's oracle is not the layer's own running_mean/var: the running statistics are
    recomputed here from the batches by the documented rule (momentum 0.1, unbiased variance), and
    the eval output must be gamma (x - mean) / sqrt(var + eps) + beta with those, row by row."""
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(4)
    bn.gamma[:] = rng.standard_normal(4)
    bn.beta[:] = rng.standard_normal(4)
    mean, var = np.zeros(4), np.ones(4)  # PyTorch's initial running statistics
    for _ in range(5):
        x = rng.standard_normal((16, 4)) * 2 + 3
        bn.forward(x)
        mu = x.sum(0) / 16
        mean = 0.9 * mean + 0.1 * mu
        var = 0.9 * var + 0.1 * ((x - mu) ** 2).sum(0) / 15
    bn.training = False
    probe = rng.standard_normal((6, 4)) * 2 + 3
    expect = bn.gamma * (probe - mean) / np.sqrt(var + 1e-5) + bn.beta
    np.testing.assert_allclose(bn.forward(probe), expect, rtol=1e-12)
    np.testing.assert_allclose(bn.forward(probe[2:3]), expect[2:3], rtol=1e-12)  # no batch statistics used
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12)  # and eval mode left them as they were
    check_layer(bn, probe, [("gamma", "grad_gamma"), ("beta", "grad_beta")])


def test_batchnorm_one_update_at_momentum_0_1_is_pytorchs():
    """running = (1 - m) running + m batch_stat, m = 0.1, with the unbiased batch variance (n - 1).
    At m = 0.5 the swapped convention (m running + (1 - m) batch) would give the same numbers; at 0.1
    it does not, and neither does the biased variance (n = 8: a factor 8/7)."""
    x = np.array([[1.0, -2.0], [3.0, 0.0], [2.0, 4.0], [0.0, 1.0], [5.0, -1.0], [1.0, 2.0], [2.0, 0.0], [2.0, 4.0]])
    bn = nn.BatchNorm1d(2, momentum=0.1)
    bn.running_mean[:] = [10.0, -10.0]
    bn.running_var[:] = [4.0, 0.5]
    bn.forward(x)
    # by hand: column means 2 and 1; sums of squared deviations 16 and 34 over n - 1 = 7
    np.testing.assert_allclose(bn.running_mean, [0.9 * 10 + 0.1 * 2, 0.9 * -10 + 0.1 * 1], rtol=1e-15)
    np.testing.assert_allclose(bn.running_var, [0.9 * 4 + 0.1 * 16 / 7, 0.9 * 0.5 + 0.1 * 34 / 7], rtol=1e-15)


def test_batchnorm_running_variance_tracks_the_variance_not_the_mean():
    """The notebook's class moves running_var toward the batch mean: a bug not to copy."""
    bn = nn.BatchNorm1d(3, momentum=0.5)
    x = np.random.default_rng(0).standard_normal((64, 3)) * 4 + 10  # mean 10, variance 16
    for _ in range(30):
        bn.forward(x)
    np.testing.assert_allclose(bn.running_mean, x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var, x.var(0, ddof=1), rtol=1e-6)


def test_cross_entropy_value_and_gradient():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 4)) * 3
    y = rng.integers(0, 4, 6)
    loss, dlogits = nn.cross_entropy(logits, y)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(6), y])), rel=1e-12)
    np.testing.assert_allclose(dlogits, numeric_grad(lambda: nn.cross_entropy(logits, y)[0], logits), rtol=1e-6, atol=1e-9)


def test_cross_entropy_is_stable_for_huge_logits():
    loss, d = nn.cross_entropy(np.array([[1e6, 0.0], [0.0, -1e6]]), np.array([1, 1]))
    assert loss == pytest.approx((1e6 + 1e6) / 2) and np.all(np.isfinite(d))
    assert nn.cross_entropy(np.zeros((4, 27)), np.arange(4))[0] == pytest.approx(np.log(27))


def test_mlp_end_to_end_gradient():
    """Chain rule through the whole stack (Linear, BatchNorm, Tanh) with the loss on top."""
    rng = np.random.default_rng(0)
    model = nn.MLP.build(rng, depth=3, width=5, input_dim=4, classes=3, activation="tanh", norm="batchnorm",
                         init="xavier", gain=5 / 3)
    x, y = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)

    def loss():
        return nn.cross_entropy(model.forward(x), y)[0]

    _, d = nn.cross_entropy(model.forward(x), y)
    model.backward(d)
    for p, g in model.params():
        np.testing.assert_allclose(g, numeric_grad(loss, p), rtol=1e-5, atol=1e-8)


def test_relu_mlp_without_norm_float64_gradient():
    """The fast core's own configuration (ReLU, no norm, float64): the nn.py reference and the fast
    core's kept grads, both against central differences of the loss."""
    from initstudy.core import fastmlp

    rng = np.random.default_rng(3)
    model = nn.MLP.build(rng, depth=4, width=7, input_dim=5, classes=3, activation="relu", init="kaiming")
    for lin in model.linears:
        lin.bias[:] = rng.standard_normal(lin.bias.shape) * 0.1
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)

    def loss():
        return nn.cross_entropy(model.forward(x), y)[0]

    model.forward(x)
    assert min(np.min(np.abs(l.out)) for l in model.linears[:-1]) > 100 * EPS  # no unit near ReLU's kink
    _, d = nn.cross_entropy(model.forward(x), y)
    model.backward(d)
    numeric = [numeric_grad(loss, p) for p, _ in model.params()]
    for (p, g), n in zip(model.params(), numeric):
        assert p.dtype == np.float64
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-9)
    core = fastmlp.FastMLP(model, lr=0.0, momentum=0.0, batch=6)  # lr 0: the weights stay where numeric was taken
    dl = core.loss(x, y, np.arange(6))[1]
    core.backward_update(dl, keep_grads=True)
    for (_, g), n in zip(core.params(), numeric):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-9)


def test_layer_stats_by_hand_on_a_tiny_model():
    """x (2x2) -> Linear W1 (2x3) -> ReLU -> Linear W2 (3x2), biases 0, dlogits D given. By hand:
    z1 = [[3, 1, -1], [2, -4, -3]], h1 = [[3, 1, 0], [2, 0, 0]] (unit 3 dead: sat 1/3), logits
    [[3, 1], [2, 0]]; dh1 = D W2^T = [[1, -1, 0], [0, 2, 2]], dW1 = [[1, -1, 0], [2, -2, 0]],
    dW2 = [[3, 1], [1, -1], [0, 0]]."""
    from initstudy.core import diagnostics

    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    w1 = np.array([[1.0, -1.0, -1.0], [1.0, 1.0, 0.0]])
    w2 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    d = np.array([[1.0, -1.0], [0.0, 2.0]])
    model = nn.MLP([nn.Linear(w1.copy()), nn.ReLU(), nn.Linear(w2.copy())])
    model.forward(x)
    model.backward(d)
    s = diagnostics.layer_stats(model)
    np.testing.assert_allclose(s["act_mean"], [1.0, 1.5], rtol=1e-15)
    np.testing.assert_allclose(s["act_std"], [np.sqrt(4 / 3), np.sqrt(1.25)], rtol=1e-15)
    np.testing.assert_array_equal(s["sat"], [1 / 3, 0.0])
    np.testing.assert_allclose(s["grad_mean"], [2 / 3, 0.5], rtol=1e-15)
    np.testing.assert_allclose(s["grad_std"], [np.sqrt(11) / 3, np.sqrt(1.25)], rtol=1e-15)
    # std(dW1) = sqrt(5/3), std(W1) = sqrt(29)/6; std(dW2) = sqrt(14)/3, std(W2) = sqrt(2)/3
    np.testing.assert_allclose(s["grad_data"], [np.sqrt(5 / 3) * 6 / np.sqrt(29), np.sqrt(7)], rtol=1e-14)
    assert np.all(np.isnan(s["update_data"]))  # no optimizer, no update
    opt = nn.SGD(model.params(), lr=0.1, momentum=0.9)
    opt.step(model.params())  # first step: v = g, update 0.1 g, W <- W - 0.1 g
    s = diagnostics.layer_stats(model, opt)
    g1, g2 = np.array([[1.0, -1.0, 0.0], [2.0, -2.0, 0.0]]), np.array([[3.0, 1.0], [1.0, -1.0], [0.0, 0.0]])
    expect = [np.log10(0.1 * np.sqrt(5 / 3) / np.std(w1 - 0.1 * g1)), np.log10(0.1 * np.sqrt(14) / 3 / np.std(w2 - 0.1 * g2))]
    np.testing.assert_allclose(s["update_data"], expect, rtol=1e-13)


def test_sgd_momentum_is_pytorch_form():
    p, g = np.array([1.0]), np.array([0.5])
    opt = nn.SGD([(p, g)], lr=0.1, momentum=0.9)
    opt.step([(p, g)])  # v = 0.5
    opt.step([(p, g)])  # v = 0.9*0.5 + 0.5 = 0.95
    assert p[0] == pytest.approx(1.0 - 0.1 * 0.5 - 0.1 * 0.95)


# --- the activations beyond the lab's three: forward against an independent scalar formula (math),
# phi' and phi'' against central differences of fn and d1, backward against the layer check above

SQRT2 = math.sqrt(2)
SCALAR = {  # the textbook formulas, one float at a time with the standard library
    "selu": lambda x: nn.SELU.LAMBDA * (x if x > 0 else nn.SELU.ALPHA * (math.exp(x) - 1)),
    "gelu": lambda x: x * 0.5 * (1 + math.erf(x / SQRT2)),
    "sigmoid": lambda x: 1 / (1 + math.exp(-x)),
    "silu": lambda x: x / (1 + math.exp(-x)),
}
# away from SELU's kink at 0, where phi' jumps from lambda alpha to lambda
GRID = np.concatenate([np.linspace(-6, -0.05, 60), np.linspace(0.05, 6, 60)])


def test_selu_constants_are_the_papers():
    """Klambauer et al. 2017 eq. 14, and what they are: with weights of sum 0 and sum of squares 1 (our
    sigma_w^2 = 1), u ~ N(0, 1) -> E[selu(u)] = 0 and E[selu(u)^2] = 1 (their eqs. 4-5 at the fixed point)."""
    assert nn.SELU.LAMBDA == 1.0507009873554805 and nn.SELU.ALPHA == 1.6732632423543772
    # the two half-line integrals in closed form: E[u; u > 0] = 1/sqrt(2 pi), E[u^2; u > 0] = 1/2,
    # E[e^{tu}; u < 0] = e^{t^2/2} Phi(-t)
    lam, al = nn.SELU.LAMBDA, nn.SELU.ALPHA
    phi_m1 = 0.5 * math.erfc(1 / SQRT2)  # Phi(-1)
    mean = lam * (1 / math.sqrt(2 * math.pi) + al * (math.exp(0.5) * phi_m1 - 0.5))
    second = lam**2 * (0.5 + al**2 * (math.exp(2) * 0.5 * math.erfc(2 / SQRT2) - 2 * math.exp(0.5) * phi_m1 + 0.5))
    assert abs(mean) < 1e-15 and abs(second - 1) < 1e-15


@pytest.mark.parametrize("name", list(SCALAR))
def test_activation_forward_and_derivatives(name):
    a = nn.ACTIVATIONS[name]
    # atol: 1 + erf(x / sqrt 2) cancels in the left tail (~1e-16 absolute); ours uses erfc there
    np.testing.assert_allclose(a.fn(GRID), [SCALAR[name](x) for x in GRID], rtol=1e-14, atol=1e-15)
    if name == "gelu":  # ... and keeps its relative accuracy there: libm's erfc, a second implementation
        np.testing.assert_allclose(a.fn(GRID), [x * 0.5 * math.erfc(-x / SQRT2) for x in GRID], rtol=1e-14)
    h = 1e-5
    np.testing.assert_allclose(a.d1(GRID), (a.fn(GRID + h) - a.fn(GRID - h)) / (2 * h), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.d2(GRID), (a.d1(GRID + h) - a.d1(GRID - h)) / (2 * h), rtol=1e-7, atol=1e-9)
    x = np.random.default_rng(0).standard_normal((4, 6)) * 2
    x[np.abs(x) < 1e-3] = 0.5
    check_layer(a(), x)
    # no overflow warning and the run's dtype kept (the walk's float16 too), in the far tails as well
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is right there
        for dt, top in ((np.float16, 50.0), (np.float32, 1e4), (np.float64, 1e4)):
            far = np.array([-top, -3.0, 0.5, top], dt)
            assert a.fn(far).dtype == a.d1(far).dtype == a.d2(far).dtype == dt and np.all(np.isfinite(a.fn(far)))


def test_activation_saturation():
    """Each saturation counts what its docstring says, on outputs built to have a known answer."""
    x = np.array([[-4.0, 0.3, -8.0], [-3.5, -0.2, -9.0]])  # column 2 dead for both GELU and SiLU; column 0 for GELU only
    assert nn.GELU.saturation(nn.GELU.fn(x)) == pytest.approx(2 / 3)
    assert nn.SiLU.saturation(nn.SiLU.fn(x)) == pytest.approx(1 / 3)
    assert nn.SELU.saturation(nn.SELU.fn(x)) == pytest.approx(4 / 6)  # x < ln 0.06 = -2.81
    assert nn.Sigmoid.saturation(nn.Sigmoid.fn(x)) == pytest.approx(2 / 6)  # |x| > 2 atanh(0.97) = 4.19


def test_gelu_silu_minimum_and_dead_tail_where_the_docs_say():
    """docs/activations.md: minima at x = -0.75 (GELU), -1.28 (SiLU); the dead-unit rule -0.01 < out
    switches on below x = -2.7 (GELU), -6.5 (SiLU)."""
    for a, x_min, x_dead in ((nn.GELU, -0.75, -2.7), (nn.SiLU, -1.28, -6.5)):
        assert a.d1(x_min - 0.01) < 0 < a.d1(x_min + 0.01)
        assert a.fn(x_dead + 0.1) < -a.DEAD < a.fn(x_dead)  # the tail rises back to 0 as x falls
