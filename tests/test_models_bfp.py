"""Block floating point (models/bfp.py): the default INT32 chunk and its no-overflow promise.

Oracle: Python integers (the exact sum of the integer products and the INT32 range)."""

import numpy as np
import pytest

from lowbit.models import bfp

INT32_MAX = 2 ** 31 - 1


@pytest.mark.parametrize("bits_a, bits_b", [(8, 8), (8, 16), (16, 8), (16, 16)])
def test_default_chunk_is_the_largest_that_cannot_overflow(bits_a, bits_b):
    worst = 2 ** (bits_a - 1) * 2 ** (bits_b - 1)          # (-2^(a-1)) * (-2^(b-1))
    c = bfp.default_chunk(bits_a, bits_b)
    assert c * worst <= INT32_MAX < (c + 1) * worst


def test_default_chunk_documented_values():
    # models/bfp.py docstring: 2^17 - 1 for INT8, 1 for INT16 (symmetric INT16 would fit 2)
    assert bfp.default_chunk(8, 8) == 2 ** 17 - 1
    assert bfp.default_chunk(16, 16) == 1
    assert 2 * 32767 ** 2 <= INT32_MAX < 3 * 32767 ** 2


def test_default_chunk_sums_worst_case_products_exactly():
    # two chunks of 2^17 - 1 products (-128) * (-128) = 2^14: each chunk is 2^31 - 2^14, the
    # largest multiple of 2^14 in INT32, and the sum 2^32 - 2^15 is exact in FP32
    K = 2 * (2 ** 17 - 1)
    m = np.full((1, K), -128)
    e = np.zeros((1, 1), int)
    got = bfp.bfp_dot(m, e, m, e, "int8")
    assert got[0] == np.float32(K * 2 ** 14) == 2 ** 32 - 2 ** 15
    # INT16: one product per chunk, where two would wrap
    m = np.full((1, 4), -32768)
    e = np.zeros((1, 1), int)
    assert bfp.bfp_dot(m, e, m, e, "int16")[0] == 2 ** 32
    wrapped = ((2 * 2 ** 30 + 2 ** 31) % 2 ** 32) - 2 ** 31
    assert bfp.bfp_dot(m, e, m, e, "int16", chunk=2)[0] == 2 * wrapped


def test_saturating_chunk_clamps_after_every_product():
    # 3 x 32767^2 saturates at 2^31 - 1 after the third product; two products -32768 * 32767
    # then bring it down to 65535 (exact in FP32). Oracle: a Python-int clamp after each product
    a = [32767, 32767, 32767, -32768, -32768]
    b = [32767] * 5
    S = 0
    for x, y in zip(a, b):
        S = min(max(S + x * y, -2 ** 31), 2 ** 31 - 1)
    assert S == 65535
    e = np.zeros((1, 1), int)
    got = bfp.bfp_dot(np.array([a]), e, np.array([b]), e, "int16", chunk=5, overflow="saturate")
    assert got[0] == S
    # and the low end: clamped at -2^31, then two 32767^2 bring it to -131070
    a2 = [-32768, -32768, -32768, 32767, 32767]
    S = 0
    for x in a2:
        S = min(max(S + x * 32767, -2 ** 31), 2 ** 31 - 1)
    got = bfp.bfp_dot(np.array([a2]), e, np.array([[32767] * 5]), e, "int16", chunk=5, overflow="saturate")
    assert got[0] == S == -2 ** 31 + 2 * 32767 ** 2 == -131070
