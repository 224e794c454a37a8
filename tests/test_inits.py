"""Every init's variance against the formula torch.nn.init documents (written here, not read from
inits.py) and against Monte Carlo; orthogonal's Haar property; `all` is still the lab's three."""
import math

import numpy as np
import pytest

from initstudy.core import inits
from initstudy.core.config import ConfigError
from initstudy.run.runs import init_names

pytestmark = [pytest.mark.fast, pytest.mark.usefixtures("one_blas_thread")]  # the QRs on one thread: CI's 2 cores are shared


# torch.nn.init's documented formulas, in torch's terms (a weight of shape (out, in): fan_in = in, fan_out = out)
#   xavier_uniform_: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))
#   xavier_normal_:  N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))
#   kaiming_uniform_(a=0, mode='fan_in', nonlinearity='leaky_relu'): U(-b, b), b = gain * sqrt(3 / fan_in),
#                    gain = calculate_gain('leaky_relu', 0) = sqrt(2 / (1 + 0^2)) = sqrt(2)
#   kaiming_normal_: std = gain / sqrt(fan_in)
#   nn.Linear's default, kaiming_uniform_(a=sqrt(5)): gain = sqrt(2 / (1 + 5)), b = gain * sqrt(3 / fan_in) = 1/sqrt(fan_in)
#   orthogonal_: a (semi-)orthogonal matrix (Saxe et al. 2013), times gain
# and Var U(-a, a) = a^2 / 3. The docs' example shape torch.empty(3, 5): out 3, in 5.
def _u(a):
    return a * a / 3


TORCH_DOC = {
    "xavier_uniform": lambda fi, fo: _u(math.sqrt(6 / (fi + fo))),
    "xavier_avg": lambda fi, fo: math.sqrt(2 / (fi + fo)) ** 2,
    "kaiming_uniform": lambda fi, fo: _u(math.sqrt(2) * math.sqrt(3 / fi)),
    "kaiming": lambda fi, fo: (math.sqrt(2) / math.sqrt(fi)) ** 2,
    "standard_uniform": lambda fi, fo: _u(math.sqrt(2 / 6) * math.sqrt(3 / fi)),
    "orthogonal": lambda fi, fo: 1 / max(fi, fo),  # (semi-)orthonormal: |W|_F^2 = min(fi, fo) over fi*fo entries
    "lsuv": lambda fi, fo: 1 / max(fi, fo),  # its orthogonal start (the batch rescales it, test_lsuv.py)
    # not torch's: LeCun 1998 / the lab's, and the truncated one (Var corrected back to 1/fan_in)
    "xavier": lambda fi, fo: 1 / fi, "lecun_normal": lambda fi, fo: 1 / fi, "truncated_normal": lambda fi, fo: 1 / fi,
    "uniform": lambda fi, fo: 1 / 12,
}


def test_every_scheme_has_a_documented_variance_here():
    assert set(TORCH_DOC) == set(inits.INITS)


def test_torch_doc_example_numbers():
    """The docs' 3 x 5 example (in 5, out 3) and a 256-wide layer, in numbers: a = sqrt(6/8) = 0.8660."""
    assert math.sqrt(3 * inits.weight_variance("xavier_uniform", 5, fan_out=3)) == pytest.approx(0.8660254, rel=1e-7)
    assert math.sqrt(3 * inits.weight_variance("kaiming_uniform", 256)) == pytest.approx(math.sqrt(6 / 256), rel=1e-12)
    assert math.sqrt(3 * inits.weight_variance("standard_uniform", 256)) == pytest.approx(1 / 16, rel=1e-12)


@pytest.mark.parametrize("name", list(inits.INITS))
@pytest.mark.parametrize("fan_in,fan_out", [(256, 256), (30, 70), (300, 10)])
def test_declared_variance_is_torchs(name, fan_in, fan_out):
    expected = TORCH_DOC[name](fan_in, fan_out)
    assert inits.weight_variance(name, fan_in, fan_out=fan_out) == pytest.approx(expected, rel=1e-12)
    assert inits.weight_variance(name, fan_in, 5 / 3, fan_out) == pytest.approx(expected * 25 / 9, rel=1e-12)


@pytest.mark.parametrize("name", list(inits.INITS))
@pytest.mark.parametrize("fan_in,fan_out", [(256, 4096), (30, 2**20 // 30), (4096, 256)])
def test_samples_have_the_documented_variance(name, fan_in, fan_out):
    # ~2^20 draws: the sample variance's relative s.e. is ~sqrt(2/N) (uniform: sqrt(0.8/N)), <= 0.0016;
    # 1 % is > 6 s.e., and a variance 2 % off fails (orthogonal's |W|_F^2 is exact)
    w = inits.sample_weights(name, np.random.default_rng(0), fan_in, fan_out, gain=1.3)
    assert w.shape == (fan_in, fan_out) and w.dtype == np.float64
    assert np.mean(w * w) == pytest.approx(TORCH_DOC[name](fan_in, fan_out) * 1.3**2, rel=0.01)
    assert abs(np.mean(w)) < 5 * np.sqrt(np.var(w) / w.size)


@pytest.mark.parametrize("name,bound", [("uniform", lambda fi, fo: 0.5), ("xavier_uniform", lambda fi, fo: math.sqrt(6 / (fi + fo))),
                                        ("kaiming_uniform", lambda fi, fo: math.sqrt(6 / fi)),
                                        ("standard_uniform", lambda fi, fo: 1 / math.sqrt(fi))])
def test_uniform_bounds(name, bound):
    w = inits.sample_weights(name, np.random.default_rng(1), 200, 300)
    b = bound(200, 300)
    assert w.min() >= -b and w.max() <= b and w.max() > 0.99 * b and w.min() < -0.99 * b


def test_truncated_normal_cut_at_2_sigma_and_its_constant():
    """The closed form against Monte Carlo and Keras' constant 0.87962566103423978 (the s.d. of N(0,1) on [-2, 2])."""
    assert math.sqrt(inits.truncated_unit_variance()) == pytest.approx(0.87962566103423978, rel=1e-15)
    x = np.random.default_rng(2).standard_normal(2**21)
    assert np.var(x[np.abs(x) <= 2]) == pytest.approx(inits.truncated_unit_variance(), rel=0.005)
    w = inits.sample_weights("truncated_normal", np.random.default_rng(3), 256, 4096)
    sigma = math.sqrt(1 / 256) / 0.87962566103423978  # the underlying normal's s.d.
    assert np.max(np.abs(w)) <= 2 * sigma and np.max(np.abs(w)) > 1.99 * sigma


@pytest.mark.parametrize("fan_in,fan_out", [(64, 64), (40, 100), (100, 40)])
def test_orthogonal_is_semi_orthogonal_with_gain(fan_in, fan_out):
    w = inits.sample_weights("orthogonal", np.random.default_rng(4), fan_in, fan_out, gain=1.7)
    small = min(fan_in, fan_out)
    gram = w.T @ w if fan_in >= fan_out else w @ w.T  # orthonormal columns (fan_in >= fan_out) or rows
    np.testing.assert_allclose(gram, 1.7**2 * np.eye(small), atol=1e-12)


def test_orthogonal_is_haar():
    """For Q Haar on O(n): E[tr Q] = 0, E[(tr Q)^2] = 1, E[Q_11] = 0, E[Q_11^2] = 1/n (Diaconis & Shahshahani
    1994). Plain QR without the sign correction has Q_11 = -|.| always (LAPACK's Householder), so E[Q_11] != 0."""
    n, draws = 6, 4000
    rng = np.random.default_rng(5)
    qs = np.stack([inits.sample_weights("orthogonal", rng, n, n) for _ in range(draws)])
    tr, q11 = np.trace(qs, axis1=1, axis2=2), qs[:, 0, 0]
    se = 1 / math.sqrt(draws)
    assert abs(tr.mean()) < 5 * se and abs(np.mean(tr**2) - 1) < 5 * math.sqrt(2) * se
    assert abs(q11.mean()) < 5 * se / math.sqrt(n) and np.mean(q11**2) == pytest.approx(1 / n, rel=0.1)
    raw = np.stack([np.linalg.qr(rng.standard_normal((n, n)))[0] for _ in range(400)])  # the oracle has power
    assert abs(raw[:, 0, 0].mean()) > 10 * se / math.sqrt(n)


def test_mean_field_sigma_w2_of_each_scheme():
    """What walk/theory read: sigma_w^2 = fan_in Var(W); 1 for every fan-in-or-average-normalised scheme on a
    square layer, 2 for He's, 1/3 for the standard init (Glorot's eq. 1: why its gradients fall)."""
    sw2 = {name: 256 * inits.weight_variance(name, 256) for name in inits.INITS}
    assert sw2 == pytest.approx({"uniform": 256 / 12, "xavier": 1, "kaiming": 2, "orthogonal": 1, "lsuv": 1,
                                 "xavier_avg": 1, "xavier_uniform": 1, "kaiming_uniform": 2, "lecun_normal": 1,
                                 "truncated_normal": 1, "standard_uniform": 1 / 3}, rel=1e-12)
    assert 100 * inits.weight_variance("xavier_avg", 100, fan_out=300) == pytest.approx(0.5)  # depends on fan_out


def test_all_is_still_the_labs_three_and_unknown_names_are_listed():
    assert init_names("all") == ["uniform", "xavier", "kaiming"] == list(inits.LAB_INITS)
    assert init_names("orthogonal") == ["orthogonal"]
    with pytest.raises(ConfigError) as e:
        init_names("glorot")
    assert "\n" not in str(e.value) and all(n in str(e.value) for n in ("all", *inits.INITS))


def test_lab_draws_unchanged():
    """The registry's growth does not move a lab draw: xavier N(0,1)/16 at width 256, bit for bit."""
    rng = np.random.default_rng(9)
    ref = np.random.default_rng(9).standard_normal((256, 256)) * np.sqrt(1.0 / 256 / 1.0)
    np.testing.assert_array_equal(inits.sample_weights("xavier", rng, 256, 256), ref)


def test_sweep_grid_takes_any_scheme_and_checks_what_it_needs():
    from initstudy.run import grid

    g = grid.build("walk", grid="init=orthogonal,lsuv,xavier_avg;depth=3;seed=0", fixed="width=8")
    assert [p.init for p in g.points] == ["orthogonal", "lsuv", "xavier_avg"]
    with pytest.raises(ConfigError, match="norm=none"):
        grid.build("ablate", grid="init=orthogonal,lsuv", fixed="norm=batchnorm")
    with pytest.raises(ConfigError, match="standard_uniform"):  # the refusal lists the schemes
        grid.build("walk", grid="init=glorot")


@pytest.mark.parametrize("name", [n for n in inits.INITS if n not in inits.LAB_INITS])
def test_every_entry_point_takes_each_new_scheme(name):
    """walk (theory's sigma_w^2 from the registry), ablate's model (both cores), diagnose's model: tiny sizes."""
    from initstudy.studies.ablate import compute as ablate
    from initstudy.studies.diagnose import compute as diagnose
    from initstudy.studies.walk.compute import WalkConfig, run_walk

    r = run_walk(WalkConfig(depth=3, width=16, batch=8, activation="tanh"), name)
    assert r.signal.sigma_w2 == pytest.approx(16 * TORCH_DOC[name](16, 16), rel=1e-12) and np.isfinite(r.var).all()
    a = ablate.train(ablate.AblateConfig(depth=3, width=16, steps=3, n_train=64, n_val=16, batch=16), name)
    assert np.isfinite(a.losses).all()
    if not inits.INITS[name].needs_data:
        model = diagnose.build_model(diagnose.DiagnoseConfig(), name, 27)
        assert len(model.linears) >= 2


def test_init_takes_a_comma_list():
    assert init_names("orthogonal, lecun_normal,orthogonal") == ["orthogonal", "lecun_normal"]
    with pytest.raises(ConfigError, match="'lecun'"):
        init_names("orthogonal,lecun")
