"""Init schemes: name -> weight variance sigma_w^2(fan_in) and a sampler.

Adding a scheme is one entry in INITS; the entry points, the theory and the plots pick it up.
Weights are drawn in float64 and cast, so every dtype of a run sees the same draw.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

UNIFORM_A = 0.5  # the lab's U[-0.5, 0.5]: variance a^2/3 = 1/12, whatever the fan-in


@dataclass(frozen=True)
class Init:
    name: str
    label: str  # the lab's wording, for plots and manifests
    variance: Callable[[int], float]  # sigma_w^2 as a function of fan-in
    draw: Callable[[np.random.Generator, tuple], np.ndarray]  # unit-scale draw, shape (fan_in, fan_out)
    unit_variance: float  # variance of one `draw` element


def _normal(rng, shape):
    return rng.standard_normal(shape)


def _uniform(rng, shape):
    return rng.uniform(-UNIFORM_A, UNIFORM_A, shape)


INITS = {
    i.name: i
    for i in [
        Init("uniform", "uniform[-0.5, 0.5]", lambda n: UNIFORM_A**2 / 3, _uniform, UNIFORM_A**2 / 3),
        Init("xavier", "xavier N(0, 1/n)", lambda n: 1.0 / n, _normal, 1.0),
        Init("kaiming", "kaiming N(0, 2/n)", lambda n: 2.0 / n, _normal, 1.0),
    ]
}


def weight_variance(name: str, fan_in: int, gain: float = 1.0) -> float:
    """sigma_w^2 of the scheme, with `gain` multiplying the standard deviation."""
    return INITS[name].variance(fan_in) * gain**2


def sample_weights(name: str, rng: np.random.Generator, fan_in: int, fan_out: int, gain: float = 1.0) -> np.ndarray:
    """A (fan_in, fan_out) float64 weight matrix with variance weight_variance(name, fan_in, gain)."""
    init = INITS[name]
    scale = np.sqrt(init.variance(fan_in) / init.unit_variance) * gain
    return init.draw(rng, (fan_in, fan_out)) * scale
