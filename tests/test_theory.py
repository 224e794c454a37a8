import math
from pathlib import Path

import numpy as np
import pytest

from initstudy.core import nn, theory

pytestmark = pytest.mark.fast


@pytest.mark.parametrize("q", [0.01, 1.0, 7.5])
def test_gauss_hermite_matches_exact_forms(q, monkeypatch):
    """A second method: quadrature reproduces the closed forms for linear (q) and ReLU (q/2)."""
    exact = {k: f["phi2"](q) for k, f in theory.CLOSED_FORMS.items()}
    monkeypatch.setattr(theory, "CLOSED_FORMS", {})
    assert theory.gaussian_second_moment("linear", q) == pytest.approx(exact["linear"], rel=1e-10)
    # ReLU has a kink at 0, so quadrature converges slowly: 128 nodes give ~1e-3
    assert theory.gaussian_second_moment("relu", q) == pytest.approx(exact["relu"], rel=5e-3)


def test_tanh_second_moment_against_monte_carlo():
    z = np.random.default_rng(0).standard_normal(2_000_000)
    for q in (0.1, 1.0, 4.0):
        mc = np.mean(np.tanh(np.sqrt(q) * z) ** 2)
        se = np.std(np.tanh(np.sqrt(q) * z) ** 2) / np.sqrt(z.size)
        assert abs(theory.gaussian_second_moment("tanh", q) - mc) < 5 * se


def test_linear_closed_form_is_geometric():
    q = theory.closed_form("linear", 2.0, 20, 1.0)
    np.testing.assert_allclose(q, 2.0 ** np.arange(21), rtol=1e-12)
    assert theory.growth_per_layer("linear", 2.0) == 2.0  # Kaiming doubles per layer in a linear net
    assert theory.growth_per_layer("relu", 2.0) == 1.0  # ... and holds under ReLU, its design case


def test_tanh_closed_form_against_a_wide_simulation():
    """Mean-field theory is exact as width -> infinity: a 4096-wide tanh net, batch 256, tracks it."""
    rng = np.random.default_rng(3)
    n, depth, gain2 = 4096, 8, 2.0
    q = theory.closed_form("tanh", gain2, depth, 1.0)
    z = rng.standard_normal((256, n))
    for l in range(1, depth + 1):
        h = z if l == 1 else np.tanh(z)
        z = h @ (rng.standard_normal((n, n)) * np.sqrt(gain2 / n))
        assert np.var(z) == pytest.approx(q[l], rel=0.03), l


# --- signal propagation: every quantity against an independent method

N_MC = 1_000_000


@pytest.fixture(scope="module")
def gauss_pairs():
    rng = np.random.default_rng(2016)
    return rng.standard_normal(N_MC), rng.standard_normal(N_MC)


def mc(values):
    """(mean, standard error) of a Monte Carlo sample."""
    return float(np.mean(values)), float(np.std(values) / math.sqrt(values.size))


@pytest.mark.parametrize("activation", list(nn.ACTIVATIONS))
@pytest.mark.parametrize("q,c", [(0.3, 0.2), (1.0, 0.6), (2.5, -0.4), (1.4, 0.95)])
def test_every_gaussian_moment_against_monte_carlo(gauss_pairs, activation, q, c):
    """Closed forms (linear, ReLU's arc-cosine kernels) and Gauss-Hermite (tanh, 1-D and the c z1 +
    sqrt(1-c^2) z2 tensor grid) against 10^6 samples, within 5 standard errors."""
    z1, z2 = gauss_pairs
    a = nn.ACTIVATIONS[activation]
    u1, u2 = math.sqrt(q) * z1, math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    samples = {"phi2": a.fn(u1) ** 2, "dphi2": a.d1(u1) ** 2, "phi_ddphi": a.fn(u1) * a.d2(u1),
               "phi_phi": a.fn(u1) * a.fn(u2), "dphi_dphi": a.d1(u1) * a.d1(u2)}
    for what, x in samples.items():
        mean, se = mc(x)
        got = theory.expect(activation, what, q, c if what in theory.TWO_D else None)
        assert abs(got - mean) <= 5 * se + 1e-12, (what, got, mean, se)


def test_relu_closed_forms_exact():
    """ReLU: chi_1 = sigma_w^2 / 2 at any q; the arc-cosine c-map fixes c = 1 and maps 0 to 1/pi."""
    for sw2 in (0.5, 2.0, 3.7):
        for q in (0.1, 1.0, 9.0):
            assert theory.chi1("relu", q, sw2) == sw2 / 2
    assert theory.c_map("relu", 1.0, 1.0, 2.0) == pytest.approx(1.0, abs=1e-15)
    assert theory.c_map("relu", 0.0, 1.0, 2.0) == pytest.approx(1 / math.pi, rel=1e-15)
    assert theory.c_map("linear", 0.3, 1.0, 1.0) == pytest.approx(0.3, rel=1e-15)


def test_relu_arc_cosine_kernel_against_gauss_hermite(monkeypatch):
    """A third method for the arc-cosine kernel: the tensor-grid quadrature (slow to converge on
    ReLU's kink: 1e-3)."""
    exact = [theory.expect("relu", "phi_phi", 1.3, c) for c in (-0.5, 0.0, 0.7)]
    monkeypatch.setattr(theory, "CLOSED_FORMS", {})
    quad = [theory.expect("relu", "phi_phi", 1.3, c) for c in (-0.5, 0.0, 0.7)]
    np.testing.assert_allclose(quad, exact, rtol=2e-3, atol=1e-3)


SETTINGS = [("tanh", 1.5, 0.05), ("tanh", 1.76, 0.05), ("tanh", 2.5, 0.05), ("tanh", 3.0, 0.0),
            ("tanh", 0.8, 0.3), ("relu", 1.5, 0.1), ("relu", 1.9, 0.4), ("linear", 0.6, 0.2),
            # SELU at its own fixed point (chaotic: chi_1 = 1.0716) and with biases; the rest ordered
            ("selu", 1.0, 0.0), ("selu", 1.5, 0.1), ("gelu", 1.5, 0.1), ("silu", 1.5, 0.1), ("sigmoid", 16.0, 0.05)]


@pytest.mark.parametrize("activation,sw2,sb2", SETTINGS)
def test_q_star_is_the_fixed_point_and_chi1_the_c_map_slope(gauss_pairs, activation, sw2, sb2):
    """q* solves q = q_map(q) (checked by Monte Carlo of the q-map there); chi_1 equals the slope of
    the c-map at c = 1 by finite differences (P eq. 7); chi_1 + sigma_w^2 E[phi'' phi] (S eq. 7) equals
    the slope of the q-map at q*."""
    z1, _ = gauss_pairs
    phi = nn.ACTIVATIONS[activation].fn
    qs = theory.q_star(activation, sw2, sb2)
    assert qs > 0
    assert theory.q_map(activation, qs, sw2, sb2) == pytest.approx(qs, rel=1e-12)
    mean, se = mc(sw2 * phi(math.sqrt(qs) * z1) ** 2 + sb2)
    assert abs(mean - qs) < 5 * se
    chi = theory.chi1(activation, qs, sw2)
    h = 1e-6
    slope_c = (3 - 4 * theory.c_map(activation, 1 - h, qs, sw2, sb2) + theory.c_map(activation, 1 - 2 * h, qs, sw2, sb2)) / (2 * h)
    # a kink in phi' (ReLU, SELU) puts a (1 - c)^{3/2} term in the c-map at 1: the difference converges as sqrt(h)
    kinked = activation == "relu" or getattr(nn.ACTIVATIONS[activation], "KINKED", False)
    assert slope_c == pytest.approx(chi, rel=2e-3 if kinked else 1e-6)
    h = 1e-5 * qs
    slope_q = (theory.q_map(activation, qs + h, sw2, sb2) - theory.q_map(activation, qs - h, sw2, sb2)) / (2 * h)
    assert slope_q == pytest.approx(chi + sw2 * theory.expect(activation, "phi_ddphi", qs), rel=1e-6)


@pytest.mark.parametrize("activation,sw2,sb2", SETTINGS)
def test_c_star_and_depth_scales(activation, sw2, sb2):
    """c* is a stable fixed point of the c-map; xi_c's argument (S eq. 9) is the c-map's slope there by
    finite differences, and c_l - c* decays like exp(-l / xi_c) when iterated at q*."""
    d = theory.depth_scales(activation, sw2, sb2)
    qs, cs = d["q_star"], d["c_star"]
    assert theory.c_map(activation, cs, qs, sw2, sb2) == pytest.approx(cs, abs=1e-12)
    assert d["phase"] == ("chaotic" if d["chi1"] > 1 else "ordered")
    assert (cs < 1) == (d["chi1"] > 1)
    if cs < 1:
        h = 1e-6
        fd = (theory.c_map(activation, cs + h, qs, sw2, sb2) - theory.c_map(activation, cs - h, qs, sw2, sb2)) / (2 * h)
        assert fd == pytest.approx(theory.chi_c(activation, cs, qs, sw2), rel=1e-6)
    # iterate the map itself from 1e-8 below c* (linear regime) and read the decay rate off two steps
    c, devs = cs - 1e-8, []
    for _ in range(6):
        c = theory.c_map(activation, c, qs, sw2, sb2)
        devs.append(abs(c - cs))
    assert -1 / math.log(devs[5] / devs[4]) == pytest.approx(d["xi_c"], rel=1e-3)


def test_closed_form_depth_scales_and_what_does_not_exist():
    """Linear: every xi is -1/ln(sigma_w^2); ReLU: -1/ln(sigma_w^2 / 2). Quantities that do not exist
    are left out: q* of an exploding linear net, c* where every c is fixed, xi at criticality."""
    d = theory.depth_scales("linear", 0.5, 0.1)
    assert d["q_star"] == pytest.approx(0.2) and d["c_star"] == 1.0
    assert d["xi_q"] == d["xi_c"] == pytest.approx(-1 / math.log(0.5))
    assert theory.depth_scales("relu", 1.5, 0.1)["xi_c"] == pytest.approx(-1 / math.log(0.75))
    assert theory.depth_scales("linear", 2.0) == {"chi1": 2.0, "phase": "chaotic"}  # Kaiming in the lab's walk
    assert theory.depth_scales("linear", 1.0) == {"q_star": 1.0, "chi1": 1.0, "phase": "critical"}  # Xavier
    assert theory.depth_scales("relu", 2.0) == {"q_star": 1.0, "chi1": 1.0, "c_star": 1.0, "phase": "critical"}
    assert theory.depth_scales("tanh", 0.8)["q_star"] == 0.0 and "c_star" not in theory.depth_scales("tanh", 0.8)


TANH_CRITICAL = theory.critical_sw2("tanh", 0.05)


@pytest.mark.parametrize("sw2", [TANH_CRITICAL], ids=lambda v: f"tanh_sb2_0.05_critical_sw2={v:.6f}")
def test_tanh_critical_sigma_w2_at_sigma_b2_005(gauss_pairs, sw2):
    """Schoenholz et al. 2017 (fig. 1, text) put the tanh transition at sigma_b^2 = 0.05 near
    sigma_w^2 = 1.76. Ours, and chi_1 = 1 there by Monte Carlo at our q* (10^6 samples)."""
    print(f"\ncritical sigma_w^2 for tanh at sigma_b^2 = 0.05: {sw2!r}")
    assert sw2 == pytest.approx(1.76, abs=0.01)
    qs = theory.q_star("tanh", sw2, 0.05)
    z1, _ = gauss_pairs
    mean, se = mc(sw2 * (1 - np.tanh(math.sqrt(qs) * z1) ** 2) ** 2)
    assert abs(mean - 1) < 5 * se
    assert theory.chi1("tanh", qs, sw2) == pytest.approx(1, abs=1e-12)
    assert theory.depth_scales("tanh", sw2 * 0.999, 0.05)["phase"] == "ordered"
    assert theory.depth_scales("tanh", sw2 * 1.001, 0.05)["phase"] == "chaotic"
    assert theory.critical_sw2("relu", 0.3) == 2.0 and theory.critical_sw2("linear") == 1.0
    doc = (Path(__file__).resolve().parent.parent / "docs" / "signal-propagation.md").read_text()
    assert repr(sw2) in doc and f"q\\* = {qs:.4f}" in doc  # the numbers the docs state


def test_backward_and_correlation_series_closed_forms():
    """Linear net: grad variance grows by sigma_w^2 per layer down; the correlation is c0 at every
    layer without biases; ReLU: the correlation follows the arc-cosine map from c0."""
    q = theory.closed_form("linear", 2.0, 5, 1.0)
    np.testing.assert_allclose(theory.grad_var_series("linear", q, 2.0), 2.0 ** np.arange(5, -1, -1), rtol=1e-15)
    np.testing.assert_allclose(theory.corr_series("linear", 0.5, q, 2.0), 0.5, rtol=1e-15)
    q = theory.closed_form("relu", 2.0, 3, 1.0)
    c = theory.corr_series("relu", 0.5, q, 2.0)
    th = math.acos(0.5)
    assert c[2] == pytest.approx((math.sqrt(0.75) + (math.pi - th) * 0.5) / math.pi, rel=1e-14)


# --- the activations beyond the lab's three (docs/activations.md)

def test_selu_closed_forms_against_the_split_quadrature(monkeypatch):
    """SELU's 1-D moments in closed form (E[e^{tu}; u < 0] = e^{t^2 q / 2} Phi(-t sqrt q)) against the
    Gauss-Legendre rule on each side of its kink, to 1e-12; at q = 1 its fixed point E[phi^2] = 1 and
    chi_1 = lambda^2 (1/2 + alpha^2 e^2 Phi(-2)) = 1.0716 (> 1: the self-normalizing point is chaotic)."""
    lam, al = nn.SELU.LAMBDA, nn.SELU.ALPHA
    Phi = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    for q in (0.2, 1.0, 3.0):
        s = math.sqrt(q)
        phi2 = lam**2 * (q / 2 + al**2 * (math.exp(2 * q) * Phi(-2 * s) - 2 * math.exp(q / 2) * Phi(-s) + 0.5))
        dphi2 = lam**2 * (0.5 + al**2 * math.exp(2 * q) * Phi(-2 * s))
        # E[phi phi''] = lam^2 al^2 E[(e^u - 1) e^u; u < 0]
        phi_ddphi = lam**2 * al**2 * (math.exp(2 * q) * Phi(-2 * s) - math.exp(q / 2) * Phi(-s))
        assert theory.expect("selu", "phi2", q) == pytest.approx(phi2, rel=1e-12)
        assert theory.expect("selu", "dphi2", q) == pytest.approx(dphi2, rel=1e-12)
        assert theory.expect("selu", "phi_ddphi", q) == pytest.approx(phi_ddphi, rel=1e-12)
        # the pair rule at c -> 1 meets the 1-D moments (continuity across the kink's z2 split)
        assert theory.expect("selu", "dphi_dphi", q, 1 - 1e-12) == pytest.approx(dphi2, rel=1e-9)
    assert theory.q_star("selu", 1.0) == pytest.approx(1.0, abs=1e-12)
    d = theory.depth_scales("selu", 1.0)
    chi = d["chi1"]
    assert d["phase"] == "chaotic" and abs(d["c_star"]) < 1e-12  # E[selu] = 0 at q* = 1: c_map(0) = 0
    assert chi == pytest.approx(1.0715749924558, rel=1e-12)
    doc = (Path(__file__).resolve().parent.parent / "docs" / "activations.md").read_text()
    assert f"= {chi:.4f}: the" in doc and f"χ₁⁵⁰ = {chi**50:.1f}" in doc
    # why the split: Gauss-Hermite across the jump of phi' misses E[phi'^2] by 0.7 % (the docs' number)
    exact = theory.expect("selu", "dphi2", 1.0)
    monkeypatch.setattr(nn.SELU, "KINKED", False)
    assert 0.0065 < 1 - theory.expect("selu", "dphi2", 1.0) / exact < 0.0075


def test_split_quadrature_reproduces_relus_arc_cosine_kernels(monkeypatch):
    """The kink rule (each side of z1 = 0, and of u2's kink in z2) against an exact 2-D closed form:
    ReLU's arc-cosine kernels, to 1e-12 (Gauss-Hermite across the kink: 1e-3)."""
    exact = {(c, w): theory.expect("relu", w, 1.3, c) for c in (-0.9, -0.3, 0.0, 0.5, 0.97)
             for w in ("phi_phi", "dphi_dphi")}
    monkeypatch.setattr(theory, "CLOSED_FORMS", {})
    monkeypatch.setattr(nn.ReLU, "KINKED", True, raising=False)
    for (c, w), v in exact.items():
        assert theory.expect("relu", w, 1.3, c) == pytest.approx(v, rel=1e-12, abs=1e-14), (c, w)


@pytest.mark.parametrize("activation", ["gelu", "silu"])
def test_gelu_silu_q_star_from_where_the_walk_starts(activation):
    """Without biases GELU/SiLU q-maps lie below the diagonal near 0 (phi'(0)^2 = 1/4) and rise to slope
    sigma_w^2 / 2: q* is 0 when the map is still below at q0, none (q explodes) when above; iterating
    the map from q0 agrees."""
    if activation == "gelu":  # Kaiming shrinks it, slowly (the docs' number)
        assert round(theory.q_map("gelu", 1.0, 2.0), 2) == 0.85
    for sw2 in (1.0, 2.0, 3.0, 3.9):
        q, below = 1.0, theory.q_map(activation, 1.0, sw2) < 1.0
        for _ in range(200):
            q = theory.q_map(activation, q, sw2)
        qs = theory.q_star(activation, sw2)
        if below:
            assert qs == 0.0 and q < 1e-6, (sw2, q)
        else:
            assert math.isnan(qs) and q > 1e6, (sw2, q)
