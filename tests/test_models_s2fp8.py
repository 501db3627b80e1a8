"""S2FP8 (Cambier et al., ICLR 2020) against hand-computed statistics, codes and values."""

import math

import ml_dtypes
import numpy as np
import pytest

from lowbit.models import s2fp8


def test_powers_of_two_exact():
    # log2|x| of the non-zeros = 0, 2, 4, 2: mu = 2, m = 4, alpha = 15 / (4 - 2) = 7.5,
    # beta = -7.5 * 2 = -15; log2|Y| = 7.5 * log2|x| - 15 = -15, 0, 15, 0
    x = np.array([1.0, 4.0, 16.0, 0.0, -4.0])
    assert s2fp8.s2fp8_stats(x) == (7.5, -15.0)
    t = s2fp8.s2fp8_quantize(x)
    # E5M2 (bias 15): 2^-15 = subnormal 0.10 x 2^-14 -> 0b0_00000_10; 2^0 -> 0b0_01111_00;
    # 2^15 -> 0b0_11110_00; -2^0 -> 0b1_01111_00
    assert t.codes.tolist() == [0b0_00000_10, 0b0_01111_00, 0b0_11110_00, 0, 0b1_01111_00]
    assert (t.alpha, t.beta) == (7.5, -15.0)
    # back: 2^((log2|Y| + 15) / 7.5) = 2^0, 2^2, 2^4
    assert s2fp8.s2fp8_dequantize(t).tolist() == [1.0, 4.0, 16.0, 0.0, -4.0]


def test_codes_match_ml_dtypes_e5m2():
    # independent oracle for the final rounding: Y values that are exact powers of two
    x = np.array([1.0, 2.0, 8.0, 0.5])
    # logs 0, 1, 3, -1: mu = 3/4, m = 3, alpha = 15 / 2.25 = 20/3, beta = -5
    alpha, beta = s2fp8.s2fp8_stats(x)
    assert alpha == 15 / 2.25 and beta == -alpha * 0.75
    t = s2fp8.s2fp8_quantize(x)
    y = np.exp2(alpha * np.log2(x) + beta)
    assert t.codes.tolist() == y.astype(ml_dtypes.float8_e5m2).view(np.uint8).tolist()


def test_rounding_of_a_non_power_of_two():
    # logs 0, 0, 0, 0, 1: mu = 0.2, m = 1, alpha = 15 / 0.8 = 18.75, beta = -3.75
    x = np.array([1.0, 1.0, -1.0, 1.0, 2.0])
    assert s2fp8.s2fp8_stats(x) == (18.75, -3.75)
    # |Y| of 1 = 2^-3.75 = 0.0743254...; E5M2 binade 2^-4, ULP 2^-6: 2^-3.75 / 2^-6 = 2^2.25 =
    # 4.7568 -> 5 (nearest), i.e. 1.25 * 2^-4 = 0b0_01011_01; 2 -> 2^15 = 0b0_11110_00
    t = s2fp8.s2fp8_quantize(x)
    assert t.codes.tolist() == [0x2D, 0x2D, 0xAD, 0x2D, 0x78]
    # stochastic, 8 bits: floor(4.7568 * 256) = 1217 = 4 * 256 + 193, so r <= 62 rounds down
    # to 4 * 2^-6 = 2^-4 (0b0_01011_00) and r >= 63 up
    r = np.array([62, 63, 0, 255, 0])
    ts = s2fp8.s2fp8_quantize(x, rounding="stochastic", random_bits=r, sr_bits=8)
    assert ts.codes.tolist() == [0x2C, 0x2D, 0xAC, 0x2D, 0x78]
    # dequantised 1.25 * 2^-4: 2^((log2(1.25) - 4 + 3.75) / 18.75); log2/exp2 are libm's, so
    # the comparison with the hand formula allows one float64 ULP
    want = 2 ** ((math.log2(1.25) - 0.25) / 18.75)
    got = s2fp8.s2fp8_dequantize(t)
    assert abs(got[0] - want) <= math.ulp(want) and got[2] == -got[0]
    assert got[4] == 2.0


def test_degenerate_and_specials():
    # one magnitude: m == mu -> alpha = 1, beta = -log2(4) = -2, Y = +-1
    t = s2fp8.s2fp8_quantize(np.array([4.0, -4.0, 0.0]))
    assert (t.alpha, t.beta) == (1.0, -2.0)
    assert t.codes.tolist() == [0x3C, 0xBC, 0x00]
    assert s2fp8.s2fp8_dequantize(t).tolist() == [4.0, -4.0, 0.0]
    assert s2fp8.s2fp8_stats(np.zeros(3)) == (1.0, 0.0)
    # NaN / Inf do not enter the statistics and keep their codes
    t = s2fp8.s2fp8_quantize(np.array([1.0, 4.0, np.inf, -np.inf, np.nan, 16.0]))
    assert (t.alpha, t.beta) == (7.5, -15.0)
    assert t.codes.tolist()[:4] == [0x02, 0x3C, 0x7C, 0xFC]
    assert t.codes[4] in (0x7E, 0xFE) and t.codes[5] == 0x78


def test_bad_input():
    with pytest.raises(TypeError, match="x must be a float array, not int64"):
        s2fp8.s2fp8_stats(np.array([1, 2]))
    with pytest.raises(TypeError, match="t must be an S2fp8Tensor, not ndarray"):
        s2fp8.s2fp8_dequantize(np.zeros(2))
