import numpy as np
import pytest

from initstudy import inits


@pytest.mark.parametrize("name,fan_in,expected", [
    ("uniform", 256, 1 / 12), ("uniform", 30, 1 / 12),  # a^2/3, blind to fan-in: why it breaks
    ("xavier", 256, 1 / 256), ("kaiming", 256, 2 / 256), ("kaiming", 30, 2 / 30),
])
def test_declared_variance(name, fan_in, expected):
    assert inits.weight_variance(name, fan_in) == pytest.approx(expected, rel=1e-12)
    assert inits.weight_variance(name, fan_in, gain=5 / 3) == pytest.approx(expected * 25 / 9, rel=1e-12)


@pytest.mark.parametrize("name", list(inits.INITS))
def test_samples_have_the_declared_variance(name):
    # 256*4096 draws: the sample variance's relative s.e. is ~sqrt(2/N) ~ 0.0014; 1 % is > 7 s.e.
    w = inits.sample_weights(name, np.random.default_rng(0), 256, 4096, gain=1.3)
    assert w.shape == (256, 4096)
    assert np.var(w) == pytest.approx(inits.weight_variance(name, 256, 1.3), rel=0.01)
    assert abs(np.mean(w)) < 5 * np.sqrt(np.var(w) / w.size)


def test_uniform_bounds_are_the_labs():
    w = inits.sample_weights("uniform", np.random.default_rng(1), 256, 256)
    assert w.min() >= -0.5 and w.max() <= 0.5 and w.max() > 0.49
