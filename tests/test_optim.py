"""optim.adam_step's fused kernel (numba) against the numpy passes it replaced, bit for bit.

Oracle: the numpy implementation as it stood before the kernel (optim.py at da37ff0), kept here only: every
operation a numpy ufunc rounding to the array's dtype, Python-float constants rounded to it first (NEP 50).
Compared as raw bits (so -0.0, inf and NaN count), p, n, u and buf, float32 and float64, over many
shapes, steps, learning rates and gradients from zero and subnormal to overflowing.
"""
import math

import numpy as np
import pytest

from initstudy.core import optim

pytestmark = pytest.mark.fast

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def oracle_step(p, g, n, u, t, lr, buf):
    """optim.adam_step at da37ff0: 10 numpy passes in blocks of rows (blocking does not change any bit)."""
    c = math.sqrt((1 - BETA2) / (1 - BETA2**t))
    alpha, eps = lr * (1 - BETA1) / ((1 - BETA1**t) * c), EPS / c
    rows = max(1, (1 << 15) // max(1, p[0].size)) if p.ndim > 1 else p.shape[0]
    for a in range(0, p.shape[0], rows):
        s = slice(a, a + rows)
        P, G, N, U, B = p[s], g[s], n[s], u[s], buf[s]
        N *= BETA1
        N += G
        U *= BETA2
        np.multiply(G, G, out=B)
        U += B
        np.sqrt(U, out=B)
        B += eps
        np.divide(N, B, out=B)
        B *= alpha
        P -= B


def bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def grads(rng, shape, dtype, step):
    """Gaussian gradients over many decades, with exact zeros, -0.0, subnormals and, every 7th step, values
    whose square (float32: the value itself, later) overflows."""
    big = 20 if dtype == np.float32 else 160
    g = rng.standard_normal(shape) * 10.0 ** rng.uniform(-big, big / 4, shape)
    flat = g.reshape(-1)
    k = flat.size
    flat[rng.integers(0, k, max(1, k // 10))] = 0.0
    flat[rng.integers(0, k, max(1, k // 20))] = -0.0
    flat[rng.integers(0, k, max(1, k // 20))] = np.finfo(dtype).smallest_subnormal * 3
    if step % 7 == 6:
        flat[rng.integers(0, k, max(1, k // 10))] = np.finfo(dtype).max / 2
    return g.astype(dtype)


SHAPES = [(1,), (7,), (1024,), (3, 5), (1, 64), (64, 1), (33, 130), (300, 129)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_kernel_equals_the_numpy_passes_bit_for_bit(dtype, shape):
    rng = np.random.default_rng([len(shape), *shape])
    for lr in (2.0**-14, 2.0**-6, 0.3, 3.0):
        p0 = (rng.standard_normal(shape) * rng.choice([1e-3, 1.0, 1e3])).astype(dtype)
        ours, ref = [[p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.empty_like(p0)] for _ in range(2)]
        with np.errstate(all="ignore"):  # overflow is part of what is checked
            for t in [*range(1, 16), 100, 10**4, 10**7]:
                g = grads(rng, shape, dtype, t)
                optim.adam_step(ours[0], g, ours[1], ours[2], t, lr, ours[3])
                oracle_step(ref[0], g, ref[1], ref[2], t, lr, ref[3])
                for a, b, name in zip(ours, ref, "pnub"):
                    assert a.dtype == dtype and np.array_equal(bits(a), bits(b)), (name, t, lr)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_arrays_not_c_contiguous_are_updated_in_place_with_the_same_bits(dtype):
    """An F-ordered weight (np.linalg.qr's Q) with C-ordered moments, and strided views: the kernel runs on
    C copies and writes back; the bits are the oracle's."""
    rng = np.random.default_rng(1)
    base = [rng.standard_normal((40, 60)).astype(dtype) for _ in range(4)]
    base[2] = np.abs(base[2])  # u >= 0
    cases = [lambda a: np.asfortranarray(a), lambda a: a[:, ::3], lambda a: a[5, ::2], lambda a: a.T]
    for view in cases:
        ours = [view(a.copy()) for a in base]
        ref = [a.copy() for a in ours]
        g = view(rng.standard_normal((40, 60)).astype(dtype))
        for t in (1, 2, 3):
            optim.adam_step(ours[0], g, ours[1], ours[2], t, 0.01, ours[3])
            oracle_step(ref[0], g, ref[1], ref[2], t, 0.01, ref[3])
        for a, b in zip(ours, ref):
            assert np.array_equal(bits(np.ascontiguousarray(a)), bits(np.ascontiguousarray(b)))
        assert not np.array_equal(ours[0], view(base[0]))  # p moved, in place


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buf_is_the_update_that_adam_direction_gives(dtype):
    """Adam.update_of recomputes the update with adam_direction from n and u: the same bits as buf."""
    rng = np.random.default_rng(2)
    p, g = (rng.standard_normal((50, 70)).astype(dtype) for _ in range(2))
    n, u, buf = np.zeros_like(p), np.zeros_like(p), np.empty_like(p)
    for t in range(1, 6):
        optim.adam_step(p, g * t, n, u, t, 2.0**-8, buf)
    assert np.array_equal(bits(optim.adam_direction(n, u, 5, 2.0**-8, np.empty_like(p))), bits(buf))
    assert np.any(buf != 0)


def test_no_fused_multiply_add_in_the_compiled_kernel():
    """FMA would round n b1 + g once where numpy rounds twice. The random tests catch it on a machine with
    FMA; this reads the machine code, compiled as optim compiles it (numba shows none of cached code)."""
    import numba
    kernel = numba.njit(**optim.JIT)(optim._adam_pass)
    for dtype in (np.float32, np.float64):
        a = np.ones(8, dtype)
        kernel(a, a.copy(), a.copy(), a.copy(), a.copy(), *map(dtype, (0.9, 0.999, 0.1, 1e-8)))
    asm = kernel.inspect_asm()
    assert len(asm) == 2 and all("vsqrt" in s and "vdiv" in s and "fmadd" not in s for s in asm.values())


def test_mismatched_arrays_are_refused():
    p = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="one dtype and shape"):
        optim.adam_step(p, np.zeros((3, 4)), np.zeros_like(p), np.zeros_like(p), 1, 0.1, np.empty_like(p))
    with pytest.raises(ValueError, match="one dtype and shape"):
        optim.adam_step(p, np.zeros(12, np.float32), np.zeros_like(p), np.zeros_like(p), 1, 0.1, np.empty_like(p))
