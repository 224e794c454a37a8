"""Every backward against central finite differences in float64 (the independent oracle)."""
import numpy as np
import pytest

from initstudy import nn

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


def test_batchnorm_eval_mode_uses_running_statistics():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(4)
    x = rng.standard_normal((16, 4)) * 2 + 3
    bn.forward(x)
    bn.training = False
    check_layer(bn, rng.standard_normal((6, 4)))
    expect = (x[:2] - bn.running_mean) / np.sqrt(bn.running_var + bn.eps)
    np.testing.assert_allclose(bn.forward(x[:2]), expect)


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


def test_sgd_momentum_is_pytorch_form():
    p, g = np.array([1.0]), np.array([0.5])
    opt = nn.SGD([(p, g)], lr=0.1, momentum=0.9)
    opt.step([(p, g)])  # v = 0.5
    opt.step([(p, g)])  # v = 0.9*0.5 + 0.5 = 0.95
    assert p[0] == pytest.approx(1.0 - 0.1 * 0.5 - 0.1 * 0.95)
