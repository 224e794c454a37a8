"""SP / NTK / muP (TP V Table 3) and Adam (Kingma & Ba Algorithm 1) in the training cores.

Oracles: the table typed out here row by row; one step computed by hand (forward, backward and the
update written out below with plain numpy) at two widths; Adam's update from the paper's algorithm
line by line and its closed form under a constant gradient; the nn.py reference against the fast core
bit for bit; Monte Carlo for the init variances.
"""
import math
from dataclasses import replace

import numpy as np
import pytest

from initstudy.core import data, fastmlp, nn, optim
from initstudy.studies.ablate import compute as ablate
from initstudy.core import parametrization as P
from initstudy.studies.ablate.compute import AblateConfig
from initstudy.core.config import ConfigError

pytestmark = [pytest.mark.fast, pytest.mark.usefixtures("one_blas_thread")]

# Table 3 (m = width / base_width), typed from the paper, independent of parametrization.py:
# kind -> (init Var factor on 1/fan_in, SGD lr factor, Adam lr factor) for muP; SP is all ones.
MUP = {"input": lambda m: (1, m, 1), "hidden": lambda m: (1, 1, 1 / m), "output": lambda m: (1 / m, 1 / m, 1 / m)}
BIAS = lambda m: (m, 1)  # noqa: E731  biases: the input column (SGD eta m, Adam eta)


@pytest.mark.parametrize("width,base", [(64, 64), (256, 64), (1024, 64), (96, 32)])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_layers_follow_table_3(width, base, optimizer):
    m = width / base
    dims = [40, width, width, width, 10]
    col = 1 if optimizer == "sgd" else 2
    for param in ("sp", "mup"):
        ls = P.layers(param, optimizer, dims, base)
        assert [l.kind for l in ls] == ["input", "hidden", "hidden", "output"]
        for l in ls:
            want = MUP[l.kind](m) if param == "mup" else (1, 1, 1)
            bias = BIAS(m)[col - 1] if param == "mup" else 1
            assert l.init_std == pytest.approx(math.sqrt(want[0]), rel=1e-15)
            assert l.lr_weight == pytest.approx(want[col], rel=1e-15)
            assert l.lr_bias == pytest.approx(bias, rel=1e-15)
            assert l.forward_mult == 1
    for l, fan_in in zip(P.layers("ntk", optimizer, dims, base), dims):  # N(0,1)-scale weights, 1/sqrt(fan_in) out
        assert l.init_std == pytest.approx(math.sqrt(fan_in)) and l.forward_mult == pytest.approx(fan_in**-0.5)
        assert l.lr_weight == l.lr_bias == 1


def test_mup_at_base_width_is_sp_bit_for_bit():
    runs = [ablate.train(AblateConfig(depth=3, width=64, steps=30, param=p, optimizer=o, lr=1e-3), "kaiming")
            for o in ("sgd", "adam") for p in ("sp", "mup")]
    for sp, mup in (runs[:2], runs[2:]):
        assert np.array_equal(sp.losses, mup.losses)
    assert not np.array_equal(runs[0].losses, runs[2].losses)  # adam is not sgd


def test_output_init_variance_monte_carlo():
    """muP's readout Var = the init's / m (Table 3: 1/(fan_in m)); SP's the init's; at widths 64 and 512."""
    for width in (64, 512):
        for param in ("sp", "mup"):
            c = AblateConfig(depth=3, width=width, input_dim=32, classes=200, param=param)
            w = ablate.build_model(c, "xavier").linears[-1].weight.astype(float)
            m = width / 64 if param == "mup" else 1
            n = w.size  # Var's sampling sd: sqrt(2/n) relative
            assert np.var(w) * width * m == pytest.approx(1.0, abs=4 * math.sqrt(2 / n))


def hand_step(x, y, Ws, lrs_w, lrs_b, optimizer):
    """One step of a bias-zero ReLU MLP written out: forward, softmax cross-entropy, backward, update.
    Returns the new weights and biases."""
    hs, a = [x], x
    for W in Ws[:-1]:
        a = np.maximum(a @ W, 0)
        hs.append(a)
    z = a @ Ws[-1]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d = p.copy()
    d[np.arange(len(y)), y] -= 1
    d /= len(y)  # dL/dz of the mean cross-entropy
    gW, gb = [None] * len(Ws), [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        gW[i], gb[i] = hs[i].T @ d, d.sum(0)
        d = (d @ Ws[i].T) * (hs[i] > 0)
    # first step: SGD with momentum has v = g; Adam has mhat = g, vhat = g^2
    upd = (lambda g: g) if optimizer == "sgd" else (lambda g: g / (np.abs(g) + optim.EPS))
    return ([W - lr * upd(g) for W, g, lr in zip(Ws, gW, lrs_w)],
            [-lr * upd(g) for g, lr in zip(gb, lrs_b)])


def one_step(c: AblateConfig):
    """The real fast core after one step on the first batch: (core, weights before it, dataset, batch indices)."""
    ds = ablate.dataset(c)
    core = ablate.make_core(c, "kaiming", ds)
    before = [w.copy() for w in core.W]
    idx = next(data.batch_stream(c.data_seed, c.n_train, c.batch))
    _, dlogits = core.loss(ds.x_train, ds.y_train, idx)
    core.backward_update(dlogits)
    return core, before, ds, idx


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_step_by_hand_at_two_widths(optimizer):
    """After one step of the real core, each layer's W and b equal the hand step with eta times the
    table's factor: input eta (m for SGD), hidden eta (1/m for Adam), output eta/m (m = 1 and 4)."""
    lr = 0.01
    for width in (64, 256):
        m = width / 64
        c = AblateConfig(depth=3, width=width, input_dim=8, classes=3, n_train=16, batch=16, steps=1, lr=lr,
                         dtype="float64", param="mup", optimizer=optimizer, momentum=0.9)
        core, Ws, ds, idx = one_step(c)
        if optimizer == "sgd":
            lw, lb = [lr * m, lr, lr / m], [lr * m] * 3
        else:
            lw, lb = [lr, lr / m, lr / m], [lr] * 3
        W1, b1 = hand_step(ds.x_train[idx], ds.y_train[idx], Ws, lw, lb, optimizer)
        for got, want in zip(core.W + core.b, W1 + b1):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_adam_matches_algorithm_1_line_by_line():
    """Kingma & Ba 2015, Algorithm 1 with its defaults, float64, five steps of changing gradients."""
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((7, 5))
    grads = [rng.standard_normal((7, 5)) * 10.0**k for k in range(-3, 2)]
    a, b1, b2, eps = 0.003, 0.9, 0.999, 1e-8
    theta, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, 1):  # the paper's loop
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mhat = m / (1 - b1**t)
        vhat = v / (1 - b2**t)
        theta = theta - a * mhat / (np.sqrt(vhat) + eps)
    p = p0.copy()
    opt = optim.Adam([(p, None)], [a])
    for g in grads:
        opt.step([(p, g)])
    np.testing.assert_allclose(p, theta, rtol=1e-14, atol=1e-16)
    assert (optim.BETA1, optim.BETA2, optim.EPS) == (b1, b2, eps)


def test_adam_constant_gradient_closed_form():
    """With g constant, mhat = g and vhat = g^2 exactly (the bias correction): every step moves
    p by -lr g / (|g| + eps), t steps by t times that (float64; 1e-12 relative)."""
    g = np.array([[1e-6, -2.0], [3e3, -4e-9]])
    p, steps, lr = np.zeros_like(g), 50, 1e-3
    opt = optim.Adam([(p, g)], [lr])
    for _ in range(steps):
        opt.step([(p, g)])
    np.testing.assert_allclose(p, -steps * lr * g / (np.abs(g) + 1e-8), rtol=1e-12)


def reference_run(config, init, steps):
    """nn.py's model and the optimizer the reference core uses, stepped plainly."""
    model = ablate.build_model(config, init)
    core = ablate.ReferenceCore(model, config.lr, config.momentum, ablate.param_lrs(config, model), config.optimizer)
    ds = ablate.dataset(config)
    batches = data.batch_stream(config.data_seed, config.n_train, config.batch)
    losses, stats = [], []
    for _ in range(steps):
        loss, dlogits = core.loss(ds.x_train, ds.y_train, next(batches))
        losses.append(loss)
        core.backward_update(dlogits)
        stats.append(core.stats())
    return losses, stats, model


@pytest.mark.parametrize("param,optimizer,width,activation", [
    ("mup", "adam", 128, "relu"), ("mup", "sgd", 256, "tanh"), ("ntk", "sgd", 96, "relu"),
    ("ntk", "adam", 64, "gelu"), ("sp", "adam", 128, "relu")])
def test_fast_core_equals_reference_bit_for_bit(param, optimizer, width, activation):
    c = AblateConfig(depth=4, width=width, input_dim=24, steps=12, lr=3e-3, param=param, optimizer=optimizer,
                     activation=activation, base_width=32)
    ref_losses, ref_stats, model = reference_run(c, "kaiming", c.steps)
    ds = ablate.dataset(c)
    fast = ablate.make_core(c, "kaiming", ds)
    assert isinstance(fast, fastmlp.FastMLP)
    from initstudy.core import diagnostics
    batches = data.batch_stream(c.data_seed, c.n_train, c.batch)
    for s in range(c.steps):
        loss, dlogits = fast.loss(ds.x_train, ds.y_train, next(batches))
        assert loss.tobytes() == ref_losses[s].tobytes()
        fast.backward_update(dlogits)
        got = diagnostics.layer_stats(fast, fast)
        for k, v in ref_stats[s].items():
            assert np.array_equal(v, got[k], equal_nan=True), (s, k)
    for a, b in zip(fast.W + fast.b, [l.weight for l in model.linears] + [l.bias for l in model.linears]):
        assert a.tobytes() == b.tobytes()


def test_batchnorm_reference_takes_param_and_adam():
    r = ablate.train(AblateConfig(depth=3, width=128, steps=20, norm="batchnorm", param="mup", optimizer="adam"),
                     "kaiming")
    assert r.outcome == "trained" and np.isfinite(r.final_loss)


def test_ntk_function_at_init_equals_sp():
    """NTK stores W sqrt(fan_in) and multiplies by 1/sqrt(fan_in): the same function at init (to rounding)."""
    ds = ablate.dataset(AblateConfig(dtype="float64", depth=4, width=128))
    outs = [ablate.build_model(AblateConfig(dtype="float64", depth=4, width=128, param=p), "xavier").forward(ds.x_val)
            for p in ("sp", "ntk")]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("raw,msg", [
    (dict(param="mu"), "param must be one of sp, ntk, mup"),
    (dict(optimizer="rmsprop"), "optimizer must be one of sgd, adam"),
    (dict(param="mup", width=32), "needs width >= base_width (64)"),
    (dict(param="mup", depth=1), "needs a hidden layer"),
    (dict(base_width="0"), "base_width must be >= 1"),
    (dict(param="mup", mup_readout="ones"), "mup_readout must be one of scaled, zero"),
    (dict(param="sp", mup_readout="zero"), "mup_readout=zero is muP's output init"),
    (dict(param="ntk", mup_readout="zero"), "param=ntk keeps its own"),
])
def test_refusals(raw, msg):
    from initstudy.core.config import parse
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        parse(AblateConfig, raw)


def test_multipliers_as_params():
    ps = P.as_params(P.layers("mup", "adam", [40, 256, 256, 10], 64))
    assert ps == {"param.kind": "input,hidden,output", "param.init_std": "1,1,0.5", "param.forward_mult": "1,1,1",
                  "param.lr_weight": "1,0.25,0.25", "param.lr_bias": "1,1,1"}


def test_mup_zero_readout_is_exactly_zero_and_the_other_draws_stay():
    """TP V Table 3, output weights "or zero": the readout is +0.0 everywhere, so the logits are exactly 0 at
    init; the hidden layers' draws are those of the scaled readout (the readout is still drawn, then dropped)."""
    for width in (64, 256):
        c = AblateConfig(depth=3, width=width, input_dim=8, classes=3, n_train=16, batch=16, param="mup",
                         mup_readout="zero", dtype="float32")
        zero, scaled = (ablate.build_model(c, "kaiming"), ablate.build_model(replace(c, mup_readout="scaled"), "kaiming"))
        w = zero.linears[-1].weight
        assert np.all(w == 0) and not np.signbit(w).any() and np.any(scaled.linears[-1].weight != 0)
        for a, b in zip(zero.linears[:-1], scaled.linears[:-1]):
            assert np.array_equal(a.weight, b.weight)
        ds = ablate.dataset(c)
        core = ablate.make_core(c, "kaiming", ds)
        loss, _ = core.loss(ds.x_train, ds.y_train, np.arange(16))
        assert np.all(core.h[-1] == 0) and float(loss) == pytest.approx(math.log(3), rel=1e-6)
    assert P.as_params(c.layers())["param.init_std"] == "1,1,0"


def test_mup_zero_readout_first_sgd_step_by_hand():
    """At init the logits are 0: softmax p = 1/C, dL/dz = (1/C - onehot(y)) / B. The readout is 0, so nothing
    reaches the hidden layers: the first SGD step moves the readout alone, W3 = -(eta/m) h2^T dz (Table 3's
    output lr) and b3 = -(eta m) sum_batch dz (the bias column's eta m); the rest keeps its init. Widths 64, 256."""
    lr, C, B = 0.05, 3, 16
    for width in (64, 256):
        m = width / 64
        c = AblateConfig(depth=3, width=width, input_dim=8, classes=C, n_train=B, batch=B, steps=1, lr=lr,
                         dtype="float64", param="mup", mup_readout="zero", optimizer="sgd", momentum=0.9)
        core, W0, ds, idx = one_step(c)
        h2 = np.maximum(np.maximum(ds.x_train[idx] @ W0[0], 0) @ W0[1], 0)  # biases 0 at init
        dz = np.full((B, C), 1 / C)
        dz[np.arange(B), ds.y_train[idx]] -= 1
        dz /= B
        np.testing.assert_allclose(core.W[2], -(lr / m) * h2.T @ dz, rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(core.b[2], -(lr * m) * dz.sum(0), rtol=1e-12, atol=1e-16)
        for i in (0, 1):
            assert np.array_equal(core.W[i], W0[i]) and np.all(core.b[i] == 0)
        assert np.any(core.W[2] != 0)


def test_mup_readout_reaches_the_mup_cells_only():
    """transfer and coordcheck: mup_readout=zero is the muP cells'; an SP cell of the same grid keeps its readout."""
    from initstudy.studies.coordcheck import compute as CC
    from initstudy.studies.transfer import compute as T

    tc = T.TransferConfig(widths="64,128", lrs="-8:-7", seeds="0", mup_readout="zero")
    tc.validate()
    assert tc.cell("mup", 128, -8.0, 0).ablate_config().layers()[-1].init_std == 0
    assert tc.cell("sp", 128, -8.0, 0).ablate_config().layers()[-1].init_std == 1
    cc = CC.CoordConfig(widths="64,128", mup_readout="zero")
    cc.validate()
    assert [cc.run_config(p, 128, 0).mup_readout for p in ("sp", "mup")] == ["scaled", "zero"]


def test_coordcheck_with_mup_zero_readout(tmp_path):
    """muP's zero readout in the coordinate check: logits exactly 0 at t = 1 at every width (the claim 'zero',
    no slope: log2 0), every other muP slope flat; coord.json, the metrics and coord.png take the zero rows."""
    from initstudy.record import results
    from initstudy.studies.coordcheck import compute as CC, job, plots

    config = CC.CoordConfig(widths="64,128,256,512", seeds="0", steps=3, mup_readout="zero")
    config.validate()
    rows = CC.run(config)
    doc = job.document(config, rows)
    v = {(s["param"], s["module"], s["t"]): s for s in doc["verdict"]["slopes"]}
    assert all(r["l1"] == 0 for r in rows if (r["param"], r["module"], r["t"]) == ("mup", "logits", 1))
    assert v[("mup", "logits", 1)]["predicted"] == "zero" and v[("mup", "logits", 1)]["holds"] is True
    assert all(s["holds"] for k, s in v.items() if k[0] == "mup")
    assert doc["verdict"]["agrees"] and ("slope_mup_logits", v[("mup", "logits", 2)]["slope"], 2) in job.metrics(doc["verdict"])
    assert not [m for m in job.metrics(doc["verdict"]) if not math.isfinite(m[1])]
    assert '"predicted": "zero"' in results.dumps(doc)
    plots.coord(rows, doc, tmp_path / "coord.png")
    assert (tmp_path / "coord.png").stat().st_size > 10_000
