"""One seed in, every random stream derived from it by name.

A stream's seed is a plain integer recorded with the run, so a re-run needs only the number,
not this derivation.
"""
import zlib

import numpy as np


def derive_seed(base: int, name: str) -> int:
    """The 63-bit seed of the stream `name` under the base seed (stable across processes)."""
    ss = np.random.SeedSequence(entropy=int(base), spawn_key=(zlib.crc32(name.encode()),))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(int(seed))
