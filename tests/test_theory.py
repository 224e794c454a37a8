import numpy as np
import pytest

from initstudy import theory


@pytest.mark.parametrize("q", [0.01, 1.0, 7.5])
def test_gauss_hermite_matches_exact_forms(q, monkeypatch):
    """A second method: quadrature reproduces the closed forms for linear (q) and ReLU (q/2)."""
    exact = {k: f(q) for k, f in theory.EXACT_SECOND_MOMENT.items()}
    monkeypatch.setattr(theory, "EXACT_SECOND_MOMENT", {})
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
