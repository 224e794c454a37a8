"""The walk of a residual network (arch=resnet) and of a BatchNorm MLP (arch=mlp norm=batchnorm).

Pure: WalkConfig + init in, a WalkResult whose series are per block (step = block; 0 = x_0), so the
walk's keys `Variance/var`, `Variance/var_theory`, `Variance/grad_var`, ... hold the same quantities:
    resnet   x_0 = input @ W_in, x_{l+1} = x_l + alpha_l B_l(x_l) (core/resnet.py); var[l] = Var(x_l),
             var_theory: core/resnet_theory.q_series; the gradient from an N(0, 1) top gradient at x_L;
             the input pairs' correlation against the residual c-map; the Jacobian dx_L/dx_0.
    BN MLP   z_l = phi(BN(z_{l-1})) @ W_l (z_1 = input @ W_1), train-mode batch statistics; var[l] =
             Var(z_l); the gradient from an N(0, 1) top gradient at z_L, its per-layer growth
             Var(g_l) / Var(g_{l+1}) against Yang et al. 2019's pi / (pi - 1) (ReLU).
"""
import math

import numpy as np

from initstudy.core import inits, nn, resnet, seeds, theory
from initstudy.core.diagnostics import pair_correlation
from initstudy.core import resnet_theory as rt


def middle(depth: int) -> slice:
    """The layers whose growth factors are averaged: the middle half, away from the input and the top."""
    return slice(depth // 4, max(3 * depth // 4, depth // 4 + 1))


def build(config, init: str) -> resnet.ResNet:
    return resnet.ResNet.build(seeds.rng(config.weight_seed(init)), depth=config.depth, width=config.width,
                               input_dim=config.width, classes=2, branch=config.scheme,
                               branch_layers=config.branch_layers, activation=config.activation,
                               norm=config.norm, init=init, gain=config.gain, dtype=np.dtype(config.dtype))


def stream(net: resnet.ResNet, x) -> list:
    """x_0..x_L of input batch x (forward up to the last block; the readout is not needed)."""
    xs = [net.layers[0].forward(x)]
    for b in net.res_blocks:
        xs.append(b.forward(xs[-1]))
    return xs


def corr_theory(config, sw2: float, q: np.ndarray) -> np.ndarray:
    """The residual c-map (YS): q12_{l+1} = q12_l + alpha^2 sigma^2 E[phi(u1) phi(u2)], (u1, u2) of variance
    sigma^2 q_l (m = 2; q_l at m = 1) and correlation c_l = q12_l / q_l. NaN with BN (batch statistics)."""
    c = np.full(len(q), np.nan)
    if config.norm != "none":
        return c
    a = rt.alphas(config.scheme, config.depth)
    c[0], q12 = config.c0, config.c0 * q[0]
    for l in range(config.depth):
        if not (np.isfinite(q[l]) and q[l] > 0):
            break
        var_u = sw2 * q[l] if config.branch_layers == 2 else q[l]
        q12 += a[l] ** 2 * sw2 * theory.expect(config.activation, "phi_phi", var_u, min(c[l], 1.0)) if a[l] else 0.0
        c[l + 1] = q12 / q[l + 1]
    return c


def jacobian(config, net: resnet.ResNet) -> tuple:
    """(singular values, mean squared singular value, log10 max/min, method) of dx_L/dx_0 at the first input
    (row vectors: J = prod_l (I + alpha_l J_B,l)), in float64, exact (SVD) up to width 1024. BN couples the
    examples of a batch, so there is no per-input Jacobian: method "none"."""
    n = config.width
    if config.norm != "none" or n > 1024:
        return np.array([]), float("nan"), float("nan"), "none"
    m = np.eye(n)
    for b in net.res_blocks:
        d = m
        for layer in b.branch:  # the branch's layers at the first input, linearised
            if isinstance(layer, nn.Linear):
                d = d @ layer.weight.astype(np.float64)
            elif isinstance(layer, resnet.Scalar):
                d = d * float(layer.value[0]) if layer.op == "mul" else d
            else:  # the activation: phi' at its input
                d = d * b.act.d1(layer_input(b, layer)[0].astype(np.float64))
        m = m + d
    if not np.all(np.isfinite(m)):
        return np.full(n, np.nan), float("nan"), float("nan"), "exact"
    sv = np.linalg.svd(m, compute_uv=False)
    with np.errstate(divide="ignore"):
        return sv, float(np.mean(sv**2)), float(np.log10(sv[0] / sv[-1])), "exact"


def layer_input(block: resnet.Block, layer):
    """The input a branch layer saw in the last forward (the previous layer's output, or the block's x)."""
    i = block.branch.index(layer)
    return block.branch[i - 1].out if i else block.x


def run_resnet(config, init: str, x, zp, top):
    """(var, pred, var_theory, saturated, mean, grad_var, grad_theory, corr, corr_theory, jacobian, extra)."""
    net = build(config, init)
    sw2 = config.width * inits.weight_variance(init, config.width, config.gain)
    m, act, norm = config.branch_layers, config.activation, config.norm
    a = rt.alphas(config.scheme, config.depth)
    with np.errstate(over="ignore", invalid="ignore"):
        xs = stream(net, x)
        var = np.array([np.var(v, dtype=np.float64) for v in xs])
        mean = np.array([np.mean(v, dtype=np.float64) for v in xs])
        pred = np.concatenate([[sw2 * config.input_variance], [
            var[l] + (a[l] ** 2 * rt.branch_second_moment(act, var[l], sw2, m, norm) if a[l] else 0.0)
            for l in range(config.depth)]])
        corr = np.full(config.depth + 1, np.nan)
        if zp is not None and norm == "none":  # BN's statistics would mix the pairs' batch with the lab's
            corr = np.array([pair_correlation(np.stack([u, v])) for u, v in zip(stream(net, zp[0]), stream(net, zp[1]))])
        g, grad_var = top, np.empty(config.depth + 1)
        grad_var[-1] = np.var(g, dtype=np.float64)
        stream(net, x)  # the lab batch's forward again: the pairs' overwrote what the backward reads
        for l, b in zip(range(config.depth - 1, -1, -1), reversed(net.res_blocks)):
            g = b.backward(g)
            grad_var[l] = np.var(g, dtype=np.float64)
        jac = jacobian(config, net)
    q = rt.q_series(act, config.scheme, config.depth, sw2 * config.input_variance, sw2, m, norm)
    gt = rt.grad_series(act, config.scheme, q, sw2, m, norm, top=1.0)
    saturated = np.logical_or.accumulate(~np.isfinite(var))
    extra = {"q_ratio": float(var[-1] / var[0]), "q_ratio_theory": float(q[-1] / q[0])}
    return var, pred, q, saturated, mean, grad_var, gt, corr, corr_theory(config, sw2, q), jac, extra


def bn_layers(config, init: str) -> list:
    """depth x (Linear, then BN and the activation before the next Linear): z_l = Linear_l's output."""
    rng, n, dt = seeds.rng(config.weight_seed(init)), config.width, np.dtype(config.dtype)
    act = nn.ACTIVATIONS[config.activation]
    layers = []
    for l in range(config.depth):
        if l:
            layers += [nn.BatchNorm1d(n, dt), act()]
        layers.append(nn.Linear(inits.sample_weights(init, rng, n, n, config.gain).astype(dt)))
    return layers


def run_bn_mlp(config, init: str, x, top):
    """The BN MLP's walk: as run_resnet's tuple (no pairs, no per-input Jacobian)."""
    layers = bn_layers(config, init)
    linears = [l for l in layers if isinstance(l, nn.Linear)]
    sw2 = config.width * inits.weight_variance(init, config.width, config.gain)
    with np.errstate(over="ignore", invalid="ignore"):
        h = x
        for layer in layers:
            h = layer.forward(h)
        zs = [x] + [l.out for l in linears]
        var = np.array([np.var(z, dtype=np.float64) for z in zs])
        mean = np.array([np.mean(z, dtype=np.float64) for z in zs])
        pred = np.array([config.input_variance] + [sw2 * np.mean(np.square(l.x, dtype=np.float64)) for l in linears])
        g = top
        for layer in reversed(layers):
            g = layer.backward(g)
        grad_var = np.array([np.var(g, dtype=np.float64)] + [np.var(l.grad_out, dtype=np.float64) for l in linears])
    phi2 = theory.expect(config.activation, "phi2", 1.0)  # BN's output is N(0, 1) per unit (gamma 1, beta 0)
    q = np.array([config.input_variance, sw2 * config.input_variance] + [sw2 * phi2] * (config.depth - 1))
    ratios = grad_var[:-1] / grad_var[1:]  # growth going backward, layer l+1 -> l
    mid = ratios[middle(config.depth)]
    growth = float(np.exp(np.mean(np.log(mid))))
    rate = rt.BN_RELU_GRAD_GROWTH if config.activation == "relu" else float("nan")
    gt = grad_var[-1] * rate ** np.arange(config.depth, -1, -1.0)
    saturated = np.logical_or.accumulate(~np.isfinite(var))
    corr = np.full(config.depth + 1, np.nan)
    extra = {"grad_growth_per_layer": growth, "grad_growth_per_layer_theory": rate}
    none = (np.array([]), float("nan"), float("nan"), "none")
    return var, pred, q, saturated, mean, grad_var, gt, corr, corr, none, extra
