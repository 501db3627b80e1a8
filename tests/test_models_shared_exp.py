"""Shared-exponent adder model: exactness property, presets, gemm paths, against Fraction oracles."""

import dataclasses
import math
import pathlib
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from lowbit.models import formats, gemm, jit
from lowbit.models import shared_exp as se
from lowbit.models.shared_exp import SharedExpConfig

RNG = np.random.default_rng(1234)


def finite_codes(fmt, shape, rng=RNG):
    c = rng.integers(0, 1 << fmt.bits, size=shape)
    v = fmt.decode(c.astype(fmt.code_dtype))
    return np.where(np.isfinite(v), c, 0).astype(fmt.code_dtype)


def rne32(q):
    """Oracle: exact rational -> FP32 (nearest even), +0 for zero."""
    if q == 0:
        return 0.0
    s = -1 if q < 0 else 1
    q = abs(q)
    e = math.floor(math.log2(q))
    while Fraction(2) ** e > q:
        e -= 1
    while Fraction(2) ** (e + 1) <= q:
        e += 1
    e = max(e, -126)
    ulp = Fraction(2) ** (e - 23)
    n = q / ulp
    fl = math.floor(n)
    rem = n - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
        fl += 1
    return s * float(fl * ulp)


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e2m1", "e3m2"])
def test_exact_dot_matches_fraction_oracle(name):
    fmt = formats.get(name)
    a = finite_codes(fmt, (40, 33))
    b = finite_codes(fmt, (40, 33))
    got = se.exact_dot(a, b, name, name)
    va, vb = fmt.decode(a), fmt.decode(b)
    for i in range(40):
        ref = rne32(sum(Fraction(x) * Fraction(y) for x, y in zip(va[i], vb[i])))
        assert np.float32(ref).view(np.uint32) == got[i].view(np.uint32)


@pytest.mark.parametrize("cut", se.CUTS)
@pytest.mark.parametrize("align", se.ALIGNS)
def test_wide_alignment_equals_exact_sum_rounded_once(cut, align):
    # products of e5m2 span 2^-32..2^32 and the FP32 accumulator its whole range: 400
    # fraction bits hold every term exactly, so every cut is exact.
    cfg = SharedExpConfig(n=16, align=align, acc_in_max=True, frac_bits=400, cut=cut,
                          norm_frac_bits=23, norm_rounding="nearest_even")
    fmt = formats.e5m2
    a = finite_codes(fmt, (60, 16))
    b = finite_codes(fmt, (60, 16))
    acc = (RNG.standard_normal(60) * 2.0 ** RNG.integers(-30, 30, 60)).astype(np.float32)
    acc[:5] = 0
    got = se.shared_exp_add(a, b, "e5m2", "e5m2", cfg, acc=acc)
    va, vb = fmt.decode(a), fmt.decode(b)
    for i in range(60):
        ex = Fraction(float(acc[i])) + sum(Fraction(x) * Fraction(y) for x, y in zip(va[i], vb[i]))
        assert np.float32(rne32(ex)).view(np.uint32) == got[i].view(np.uint32)


def test_narrow_adder_differs_from_exact_and_truncates():
    # 1 + 2^-10 products: with frac_bits=4 the small one is cut away entirely
    cfg = SharedExpConfig(n=2, frac_bits=4, cut="toward_zero")
    e4 = formats.e4m3
    a = e4.encode(np.array([[1.0, 2.0 ** -5]], np.float32))
    b = e4.encode(np.array([[1.0, 2.0 ** -5]], np.float32))
    assert se.shared_exp_add(a, b, "e4m3", "e4m3", cfg)[0] == 1.0
    exact = se.SharedExpConfig(n=2, frac_bits=40)
    assert se.shared_exp_add(a, b, "e4m3", "e4m3", exact)[0] == 1.0 + 2.0 ** -10


def test_cut_modes_on_negative_term():
    e4 = formats.e4m3
    fmt_vals = {"toward_zero": -4, "floor": -5, "nearest_even": -5, "nearest_even_nosticky": -4}
    # term 2: +1.0 so that E_max = 0 (sum = value + 4)
    a = e4.encode(np.array([[-1.25, 1.0]], np.float32))
    b = e4.encode(np.array([[0.9375, 1.0]], np.float32))      # -1.25*0.9375 = -1.171875
    for cut in se.CUTS:
        cfg = SharedExpConfig(n=2, frac_bits=2, cut=cut)
        got = se.shared_exp_add(a, b, "e4m3", "e4m3", cfg)[0]
        # -1.171875*4 = -4.6875: tz -4, floor -5, rne -5, guard-only (guard 1, q=4 even) -4
        assert got == (fmt_vals[cut] + 4) / 4, cut


def test_sum_bits_wraps():
    cfg = SharedExpConfig(n=2, frac_bits=3, sum_bits=5, norm_frac_bits=23)
    e4 = formats.e4m3
    a = e4.encode(np.array([[1.5, 1.5]], np.float32))
    b = e4.encode(np.array([[1.0, 1.0]], np.float32))
    # 3.0 on a grid of 1/8 is 24, which wraps in 5 bits to -8 -> -1.0
    assert se.shared_exp_add(a, b, "e4m3", "e4m3", cfg)[0] == -1.0
    # frac 3 + product bound 2 + bitlen(2 terms + acc) 2 + sign 1
    assert cfg.needed_sum_bits(e4, e4) == 8


def test_h100_accumulator_truncates_to_fp22():
    # SageAttention2 experiment: A = B = 0, D with more than 13 mantissa bits -> low 10 bits
    # of the FP32 mantissa zeroed
    cfg = se.PRESETS["h100_fp8_fast_accum"]
    z = np.zeros((1, 32), np.uint8)
    d = np.array([1.0 + 2.0 ** -13 + 2.0 ** -20], np.float32)
    got = se.shared_exp_add(z, z, "e4m3", "e4m3", cfg, acc=d)
    assert got.view(np.uint32)[0] == d.view(np.uint32)[0] & ~np.uint32(0x3FF)
    d13 = np.array([1.0 + 2.0 ** -13], np.float32)
    assert se.shared_exp_add(z, z, "e4m3", "e4m3", cfg, acc=d13)[0] == d13[0]


def test_presets_documented():
    h = se.PRESETS["h100_fp8"]
    assert (h.n, h.frac_bits, h.cut, h.norm_frac_bits, h.norm_rounding, h.promote_every) == \
        (32, 13, "toward_zero", 13, "toward_zero", 128)
    fast = se.PRESETS["h100_fp8_fast_accum"]
    assert fast.promote_every is None and dataclasses.replace(fast, promote_every=128,
                                                               name="h100_fp8") == h
    assert se.get_datapath("h100_fp8_tc") is fast          # the old name, an alias
    assert se.get_datapath("exact") == "exact"
    with pytest.raises(ValueError, match=r"^datapath must be 'exact', one of h100_fp8, "):
        se.get_datapath("h200")


@pytest.mark.parametrize("kw, msg", [
    (dict(n=0), r"^n must be an integer from 1 to 4096, not 0$"),
    (dict(align="max"), r"^align must be one of operand_sum, product, not 'max'$"),
    (dict(cut="up"), r"^cut must be one of toward_zero, floor, nearest_even, nearest_even_nosticky, not 'up'$"),
    (dict(norm_frac_bits=24), r"^norm_frac_bits must be an integer from 1 to 23, not 24$"),
    (dict(n=32, promote_every=100), r"^promote_every must be a multiple of n=32, not 100$"),
    (dict(sum_bits=1), r"^sum_bits must be an integer from 2 to 1024, not 1$"),
])
def test_config_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        SharedExpConfig(**kw)


CONFIGS = [
    "h100_fp8", "h100_fp8_fast_accum",
    SharedExpConfig(n=16, align="product", frac_bits=20, cut="nearest_even"),
    SharedExpConfig(n=8, align="operand_sum", acc_in_max=False, frac_bits=10,
                    cut="nearest_even_nosticky", norm_frac_bits=10, norm_rounding="toward_zero"),
    SharedExpConfig(n=32, frac_bits=12, cut="floor", sum_bits=16, promote_every=64),
]


NO_NUMBA = "numba is not installed (pip install lowbit[fast])"
needs_numba = pytest.mark.skipif(not jit.available(), reason=NO_NUMBA)


@pytest.fixture(params=["numpy", "jit"])
def engine(request):
    """Run a test with the fast paths' NumPy passes and again with the compiled kernel
    (models/jit.py; numba is in the test extra, so CI runs both)."""
    if request.param == "jit" and not jit.available():
        pytest.skip(NO_NUMBA)
    old = jit.set_enabled(request.param == "jit")
    yield request.param
    jit.set_enabled(old)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c if isinstance(c, str) else c.cut)
@pytest.mark.parametrize("fa, fb", [("e4m3", "e4m3"), ("e5m2", "e4m3"), ("e2m1", "e3m2")])
def test_gemm_fast_path_equals_integer_model(cfg, fa, fb, engine):
    A = finite_codes(formats.get(fa), (6, 100))
    B = finite_codes(formats.get(fb), (100, 5))
    got = gemm(A, B, fa, fb, cfg)
    ref = se.shared_exp_dot(A[:, None, :], B.T[None, :, :], fa, fb, cfg)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("fa, fb", [("e4m3", "e4m3"), ("e6m1", "e4m3"), ("e7m0fn", "e7m0fn")])
def test_gemm_fast_path_zero_and_tiny_steps(fa, fb, engine):
    # steps whose every product is zero (the grid scale has no live term: this crashed with
    # a division by zero) or tiny: with wide exponent ranges a product of the smallest
    # codes lies below "sentinel + largest exponent", which the int8/int16 sentinel of zero
    # operands must not swallow (it did for E6M1 and E7M0: such steps came out 0)
    f, g = formats.get(fa), formats.get(fb)
    A = np.zeros((4, 64), f.code_dtype)
    A[1] = 1                                        # the smallest positive code
    A[2, ::2] = 1
    A[3] = finite_codes(f, (64,))
    B = np.zeros((64, 3), g.code_dtype)
    B[:, 1] = 1
    B[:, 2] = finite_codes(g, (64,))
    for dp in ("h100_fp8", "h100_fp8_fast_accum"):
        got = gemm(A, B, fa, fb, dp)
        ref = se.shared_exp_dot(A[:, None, :], B.T[None, :, :], fa, fb, dp)
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), dp
        assert got[0, 0] == 0 and not np.signbit(got[0, 0])
        zero = gemm(np.zeros_like(A), B, fa, fb, dp)        # a tile without a live term
        assert not zero.any() and not np.signbit(zero).any()
    assert got[1, 1] > 0


@needs_numba
def test_jit_grid_sum_is_the_numpy_passes():
    # the kernel against the passes it replaces, on every cut, both dtypes, both signs of
    # ties and a tile wider than a vector register
    rng = np.random.default_rng(7)
    for dt in (np.float32, np.float64):
        va = (rng.integers(-15, 16, (32, 5)) * 2.0 ** rng.integers(-4, 4, (32, 5))).astype(dt)
        vb = (rng.integers(-15, 16, (32, 37)) * 2.0 ** rng.integers(-4, 4, (32, 37))).astype(dt)
        inv = (2.0 ** rng.integers(-6, 3, (5, 37))).astype(dt)
        for cut in jit.CUTS:
            want = np.add.reduce(se._cut_float(va[:, :, None] * vb[:, None, :] * inv, cut),
                                 axis=0)
            got = jit.grid_sum(va, vb, inv, cut)
            assert got.dtype == dt and np.array_equal(got, want), (dt, cut)
    with pytest.raises(TypeError, match="^flag must be a bool, not int$"):
        jit.set_enabled(1)


@pytest.mark.parametrize("fa, fb", [("e4m3", "e4m3"), ("e5m2", "e4m3"), ("e5m2", "e5m2"),
                                    ("e7m0fn", "e6m1"), ("e7m0fn", "e7m0fn")])
@pytest.mark.parametrize("dp", ["h100_fp8", "h100_fp8_fast_accum"])
@needs_numba
def test_gemm_engines_agree_on_large_gemms(fa, fb, dp):
    # the two engines of the fast path, bit for bit, on normal data over six decades and on
    # codes uniform over the finite codes, K = 1024 (8 promotions); a row and a column of
    # the tiniest codes make the float32 grid leave float32's range for E7M0 x E7M0
    # (products of 2^-124: the float64 copies run)
    rng = np.random.default_rng(11)
    f, g = formats.get(fa), formats.get(fb)
    x = rng.standard_normal((40, 1024)) * 10.0 ** rng.integers(-3, 3, (40, 1))
    A = f.encode(x.astype(np.float32), saturate=True)
    A[1] = finite_codes(f, (1024,), rng)
    A[2] = 1                                       # the smallest positive code
    B = finite_codes(g, (1024, 24), rng)
    B[:, :12] = g.encode(rng.standard_normal((1024, 12)).astype(np.float32), saturate=True)
    B[:, 23] = 1
    old = jit.set_enabled(True)
    try:
        fast = gemm(A, B, fa, fb, dp)
        jit.set_enabled(False)
        ref = gemm(A, B, fa, fb, dp)
    finally:
        jit.set_enabled(old)
    assert np.array_equal(fast.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("fa, fb", [("e4m3", "e4m3"), ("e5m2", "e5m2"), ("int8", "int8")])
def test_gemm_exact_equals_exact_dot(fa, fb):
    A = finite_codes(formats.get(fa), (7, 300))
    B = finite_codes(formats.get(fb), (300, 6))
    got = gemm(A, B, fa, fb, "exact")
    ref = se.exact_dot(A[:, None, :], B.T[None, :, :], fa, fb)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


def test_gemm_specials():
    e5 = formats.e5m2
    A = e5.encode(np.array([[np.inf, 1.0], [np.inf, 0.0], [1.0, 2.0]], np.float32))
    B = e5.encode(np.array([[1.0, 0.0, -1.0], [1.0, 1.0, 1.0]], np.float32))
    for dp in ("exact", "h100_fp8"):
        got = gemm(A, B, "e5m2", "e5m2", dp)
        ref = se.shared_exp_dot(A[:, None, :], B.T[None, :, :], "e5m2", "e5m2",
                                dp if dp != "exact" else "h100_fp8")
        assert got[0, 0] == np.inf and np.isnan(got[0, 1]) and got[0, 2] == -np.inf
        assert np.array_equal(np.isnan(got), np.isnan(ref))
        assert got[2, 0] == 3.0


def test_add_round_far_operands():
    x = np.array([1.0, 1.0, 2.0 ** 100, -1.0, 0.0], np.float64)
    y = np.array([2.0 ** -60, -(2.0 ** -60), 3.0, 1.0, 0.0], np.float64)
    got = se.add_round(x, y, 23, "toward_zero")
    assert got[0] == 1.0
    assert got[1] == np.float32(1.0 - 2.0 ** -24)
    assert got[2] == 2.0 ** 100 and got[3] == 0.0 and not np.signbit(got[3])
    assert se.add_round(x, y)[1] == 1.0


# ---------------------------------------------------------------------------------------
# Exact Fraction oracles of the documented algorithm (module docstring of shared_exp), written
# from the text alone: no model helper is used, values come from Format.decode.

FP32_EMIN = -126


def flog2(q):
    """floor(log2(q)) of a positive Fraction, exactly."""
    q = Fraction(q)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** e > q:
        e -= 1
    assert Fraction(2) ** e <= q < Fraction(2) ** (e + 1)
    return e


def fmax_of(frac_bits):
    return (2 - Fraction(1, 2 ** frac_bits)) * Fraction(2) ** 127


def round_oracle(q, frac_bits, rounding):
    """Exact rational -> ``frac_bits`` fraction bits, FP32 exponent range (gradual underflow at
    2^(-126 - frac_bits)); overflow +-Inf (nearest even) or +-max (toward zero); 0 -> +0, a
    non-zero value that rounds to zero keeps its sign."""
    q = Fraction(q)
    if q == 0:
        return 0.0
    m = abs(q)
    ulp = Fraction(2) ** (max(flog2(m), FP32_EMIN) - frac_bits)
    k = math.floor(m / ulp)
    r = m / ulp - k
    if rounding == "nearest_even" and (r > Fraction(1, 2) or (r == Fraction(1, 2) and k % 2 == 1)):
        k += 1
    elif rounding not in ("nearest_even", "toward_zero"):
        raise AssertionError(rounding)
    v = k * ulp
    if v > fmax_of(frac_bits):
        out = math.inf if rounding == "nearest_even" else float(fmax_of(frac_bits))
    else:
        out = float(v)
        assert Fraction(out) == v
    return -out if q < 0 else out


def cut_oracle(x, cut):
    """A term x (Fraction, in units of the grid) cut to an integer as the docstring says."""
    if cut == "toward_zero":
        return math.trunc(x)
    if cut == "floor":
        return math.floor(x)
    m = abs(x)
    k = math.floor(m)
    if cut == "nearest_even":
        r = m - k
        up = r > Fraction(1, 2) or (r == Fraction(1, 2) and k % 2 == 1)
    else:                                  # guard bit only: guard 1 = tie, to even
        guard = math.floor(2 * m) - 2 * k
        up = guard == 1 and k % 2 == 1
    k += up
    return -k if x < 0 else k


def operand_exponent(v, fmt):
    """Exponent of a non-zero float operand, subnormals counted at emin (from min_normal)."""
    return max(flog2(abs(Fraction(v))), flog2(Fraction(fmt.min_normal)))


def step_oracle(va, vb, fa, fb, cfg, acc=None, scale=0):
    """One adder step on finite operand values ``va``, ``vb`` (floats) by the docstring."""
    terms, exps = [], []
    for x, y in zip(va, vb):
        p = Fraction(x) * Fraction(y) * Fraction(2) ** scale
        if p == 0:
            continue                       # zero terms never take part in the maximum
        terms.append(p)
        if cfg.align == "product":
            exps.append(flog2(abs(p)))
        else:
            exps.append(operand_exponent(x, fa) + operand_exponent(y, fb) + scale)
    A = Fraction(0) if acc is None else Fraction(float(acc))
    if cfg.acc_in_max and A != 0:
        exps.append(max(flog2(abs(A)), FP32_EMIN))
        terms.append(A)
    E = max(exps) if exps else 0
    grid = Fraction(2) ** (E - cfg.frac_bits)
    S = sum(cut_oracle(t / grid, cfg.cut) for t in terms)
    if cfg.sum_bits is not None:
        w = cfg.sum_bits
        S = (S + 2 ** (w - 1)) % 2 ** w - 2 ** (w - 1)
    out = round_oracle(S * grid, cfg.norm_frac_bits, cfg.norm_rounding)
    if acc is not None and not cfg.acc_in_max and math.isfinite(out):
        out = round_oracle(A + Fraction(out), cfg.norm_frac_bits, cfg.norm_rounding)
    return out


def bits32(x):
    return int(np.float32(x).view(np.uint32))


def random_fp32(rng, size):
    """FP32 values over the whole range: normals of every exponent, subnormals, zeros, +-max."""
    e = rng.integers(-150, 128, size)
    v = rng.integers(1, 1 << 24, size) * np.ldexp(1.0, e - 23)
    v = np.where(rng.random(size) < 0.5, -v, v).astype(np.float32).astype(np.float64)
    v[rng.random(size) < 0.05] = 0.0
    return np.where(np.isinf(v), np.float32(3.4028234663852886e38), v)


# --- specials: NaN / Inf rules of every entry point ---------------------------------------

def _e5(values):
    return formats.e5m2.encode(np.array(values, np.float32))


SPECIAL_CASES = [  # (a values, b values, acc, expected)  expected: "nan", +inf, -inf
    ([np.inf, -np.inf], [1.0, 1.0], None, "nan"),         # +Inf and -Inf terms in one step
    ([np.inf, 2.0], [-1.0, np.inf], None, "nan"),         # signs from the products
    ([np.inf, 1.0], [0.0, 1.0], None, "nan"),             # Inf * 0
    ([0.0, 1.0], [-np.inf, 1.0], None, "nan"),            # 0 * -Inf
    ([np.nan, 1.0], [1.0, 1.0], None, "nan"),             # NaN operand
    ([1.0, 1.0], [np.nan, 0.0], None, "nan"),
    ([np.inf, np.inf], [1.0, 2.0], None, math.inf),       # Inf terms of one sign
    ([-np.inf, 3.0], [1.0, 2.0], None, -math.inf),
    ([1.0, 2.0], [1.0, 1.0], np.nan, "nan"),              # NaN accumulator
    ([1.0, 2.0], [1.0, 1.0], -np.inf, -math.inf),         # Inf accumulator + finite terms
    ([np.inf, 2.0], [1.0, 1.0], -np.inf, "nan"),          # Inf accumulator + opposite Inf term
    ([np.inf, 2.0], [-1.0, 1.0], np.inf, "nan"),
    ([np.inf, 2.0], [1.0, 1.0], np.inf, math.inf),
]


def _check_special(got, expected):
    got = np.float32(got)
    if expected == "nan":
        assert bits32(got) == se.NAN32
    else:
        assert got == expected


@pytest.mark.parametrize("acc_in_max", [True, False])
@pytest.mark.parametrize("case", SPECIAL_CASES)
def test_specials_shared_exp_add(case, acc_in_max):
    va, vb, acc, expected = case
    cfg = SharedExpConfig(n=2, frac_bits=8, acc_in_max=acc_in_max)
    got = se.shared_exp_add(_e5([va]), _e5([vb]), "e5m2", "e5m2", cfg,
                            acc=None if acc is None else np.array([acc]))
    _check_special(got[0], expected)


@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize("case", [c for c in SPECIAL_CASES if c[2] is None])
def test_specials_shared_exp_dot_and_exact_dot(case, n):
    # n=1: every term in its own step, the special reaches the next step through the
    # accumulator; n=2: in one step; n=4: one zero-padded step; behind a finite prefix
    va, vb, _, expected = case
    a = _e5([[1.5, 0.5] + va + [0.25]])
    b = _e5([[2.0, -1.0] + vb + [4.0]])
    for cfg in (SharedExpConfig(n=n, frac_bits=8),
                SharedExpConfig(n=n, frac_bits=8, acc_in_max=False, promote_every=n)):
        _check_special(se.shared_exp_dot(a, b, "e5m2", "e5m2", cfg)[0], expected)
    _check_special(se.exact_dot(a, b, "e5m2", "e5m2")[0], expected)
    _check_special(gemm(a, b.T, "e5m2", "e5m2", "exact")[0, 0], expected)
    _check_special(gemm(a, b.T, "e5m2", "e5m2", SharedExpConfig(n=n, frac_bits=8))[0, 0], expected)


def test_opposite_infinities_in_different_steps_and_promotions():
    # +Inf in the first promoted block, -Inf in the second: the FP32 promotion add sees
    # Inf + -Inf (IEEE: NaN)
    a = _e5([[np.inf, 1.0, -np.inf, 1.0]])
    b = _e5([[1.0, 1.0, 1.0, 1.0]])
    cfg = SharedExpConfig(n=2, frac_bits=8, promote_every=2)
    assert bits32(se.shared_exp_dot(a, b, "e5m2", "e5m2", cfg)[0]) == se.NAN32
    assert bits32(se.shared_exp_dot(a, b, "e5m2", "e5m2", "exact")[0]) == se.NAN32


# --- the accumulator inside the maximum --------------------------------------------------

@pytest.mark.parametrize("acc, cut, want", [
    (2.0 ** -130, "toward_zero", 0.0),       # FP32 subnormal: exponent field -126, grid 2^-128
    (2.0 ** -130, "nearest_even", 0.0),      # 1/4 of the grid step
    (-(2.0 ** -130), "floor", -(2.0 ** -128)),
    (2.0 ** -129, "nearest_even", 0.0),      # exactly half: tie to even 0
    (3 * 2.0 ** -129, "nearest_even", 2.0 ** -127),   # 1.5 -> 2
    (3 * 2.0 ** -129, "nearest_even_nosticky", 2.0 ** -127),
    (5 * 2.0 ** -130, "nearest_even_nosticky", 2.0 ** -128),  # 1.25: guard 0
    (2.0 ** -128, "toward_zero", 2.0 ** -128),
    (2.0 ** -126, "toward_zero", 2.0 ** -126),   # min normal
    (2.0 ** -149, "toward_zero", 0.0),           # min subnormal
])
def test_subnormal_accumulator_in_max_is_cut_on_the_emin_grid(acc, cut, want):
    cfg = SharedExpConfig(n=1, frac_bits=2, cut=cut)
    got = se.shared_exp_add([0], [0], "e4m3", "e4m3", cfg, acc=acc)
    assert got.shape == () and bits32(got) == bits32(want)
    assert got == step_oracle([0.0], [0.0], formats.e4m3, formats.e4m3, cfg, acc=acc)


# --- round_fixed and add_round against the oracle -----------------------------------------

ROUNDINGS = ("nearest_even", "toward_zero")


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("frac_bits", [1, 2, 13, 23])
def test_round_fixed_matches_fraction_oracle(frac_bits, rounding):
    rng = np.random.default_rng(frac_bits)
    # magnitudes of 1..40 bits, exponents from deep underflow to overflow
    L = rng.integers(1, 41, 3000)
    S = rng.integers(0, 1 << 40, 3000) >> (40 - L)
    S = np.where(rng.random(3000) < 0.5, -S, S)
    g = rng.integers(-200, 140, 3000)
    # ties, just below / above a tie, at and around the overflow threshold and min subnormal
    F = frac_bits
    special_S, special_g = [], []
    for k in (0, 1, 2, 5):
        base = (1 << (F + 1 + k))
        for d in (-1, 0, 1):
            for top in (base - (1 << k), base + (1 << (k - 1)) if k else base):
                special_S += [top + d, -(top + d)]
                special_g += [128 - (F + 1 + k), 128 - (F + 1 + k)]      # around 2^128
                special_S += [(1 << k) * 3 + d, -((1 << k) * 3 + d)]
                special_g += [-126 - F - k - 1] * 2                        # around min subnormal
    special_S += [0, 1, -1, (1 << 61) - 1, 1 << 61]
    special_g += [0, -200, -200, 60, 70]
    S = np.concatenate([S, special_S]).astype(np.int64)
    g = np.concatenate([g, special_g]).astype(np.int64)
    got = se.round_fixed(S, g, frac_bits, rounding)
    want = [round_oracle(Fraction(int(s)) * Fraction(2) ** int(e), frac_bits, rounding)
            for s, e in zip(S, g)]
    assert [bits32(x) for x in got] == [bits32(x) for x in want]
    # the same through Python integers (object arrays), wider than int64
    Sb = np.array([int(s) << 70 for s in S[:400]], dtype=object)
    got = se.round_fixed(Sb, g[:400] - 70, frac_bits, rounding)
    assert [bits32(x) for x in got] == [bits32(x) for x in want[:400]]


@pytest.mark.parametrize("frac_bits", [1, 13, 23])
def test_round_fixed_overflow_toward_zero_gives_max(frac_bits):
    fmax = float(fmax_of(frac_bits))
    top = (1 << (frac_bits + 1)) - 1                    # all-ones significand: max
    S = np.array([top, top * 2 + 1, 1, 1 << 200, -top * 2 - 1, -(1 << 200)], dtype=object)
    g = np.array([127 - frac_bits, 126 - frac_bits, 128, 0, 126 - frac_bits, 0])
    tz = se.round_fixed(S, g, frac_bits, "toward_zero")
    ne = se.round_fixed(S, g, frac_bits, "nearest_even")
    assert tz.tolist() == [fmax, fmax, fmax, fmax, -fmax, -fmax]
    assert ne.tolist() == [fmax, math.inf, math.inf, math.inf, -math.inf, -math.inf]


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("frac_bits", [1, 2, 13, 23])
def test_add_round_matches_fraction_oracle(frac_bits, rounding):
    rng = np.random.default_rng(100 + frac_bits)
    x = random_fp32(rng, 3000)
    # y: random, then near x's exponent, then far below it (sticky only), then -x (exact 0)
    y = random_fp32(rng, 3000)
    near = x * np.ldexp(1.0, rng.integers(-30, 3, 3000))
    y[1000:2000] = np.where(rng.random(1000) < 0.5, -near[1000:2000], near[1000:2000])
    y[2000:2100] = -x[2000:2100]
    y = y.astype(np.float32).astype(np.float64)
    y = np.where(np.isinf(y), 0.0, y)
    got = se.add_round(x, y, frac_bits, rounding)
    want = [round_oracle(Fraction(float(a)) + Fraction(float(b)), frac_bits, rounding)
            for a, b in zip(x, y)]
    assert [bits32(v) for v in got] == [bits32(v) for v in want]


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("frac_bits", [1, 2, 13, 23])
def test_add_round_tiny_operand_against_power_of_two(frac_bits, rounding):
    # a power of two minus (or plus) a tiny operand at every distance: the result is just
    # below the binade boundary, where the rounding grid is twice as fine; the "far" shortcut
    # of add_round (a sticky bit) must give the same as the exact sum
    xs, ys = [], []
    for e in (-126, -100, -3, 0, 1, 20, 127):
        for d in range(1, 40):
            for sig in (1, 3, (1 << 24) - 1):
                t = sig * 2.0 ** (e - d - 23)
                if t < 2.0 ** -149 or float(np.float32(t)) != t:
                    continue
                for sx, sy in ((1, -1), (1, 1), (-1, 1), (-1, -1)):
                    xs.append(sx * 2.0 ** e)
                    ys.append(sy * t)
    x = np.array(xs)
    y = np.array(ys)
    assert np.array_equal(x.astype(np.float32), x) and np.array_equal(y.astype(np.float32), y)
    for a, b in ((x, y), (y, x)):
        got = se.add_round(a, b, frac_bits, rounding)
        want = [round_oracle(Fraction(float(p)) + Fraction(float(q)), frac_bits, rounding)
                for p, q in zip(a, b)]
        assert [bits32(v) for v in got] == [bits32(v) for v in want]
    # the worked cases: 1 - 2^-60 is 1 (nearest even) or the largest value below 1 (toward zero)
    assert se.add_round(1.0, -(2.0 ** -60), frac_bits, "nearest_even") == 1.0
    assert se.add_round(1.0, -(2.0 ** -60), frac_bits, "toward_zero") == 1.0 - 2.0 ** -(frac_bits + 1)


@pytest.mark.parametrize("frac_bits", [1, 13, 23])
def test_add_round_overflow_and_specials(frac_bits):
    fmax = float(fmax_of(frac_bits))
    m32 = float(np.finfo(np.float32).max)
    x = np.array([m32, -m32, m32, fmax, np.inf, np.inf, np.nan, -np.inf, 0.0, -0.0, -0.0, 1.0])
    y = np.array([m32, -m32, -m32, 2.0 ** (126 - frac_bits), -np.inf, 1.0, 1.0, -1.0, -0.0, -0.0, 0.0, -1.0])
    tz = se.add_round(x, y, frac_bits, "toward_zero")
    ne = se.add_round(x, y, frac_bits, "nearest_even")
    assert tz[:4].tolist() == [fmax, -fmax, 0.0, fmax]
    assert ne[:2].tolist() == [math.inf, -math.inf] and ne[2] == 0.0
    assert ne[3] == math.inf                  # max + half an ulp: a tie, to even = up
    for r in (tz, ne):
        assert bits32(r[4]) == bits32(r[6]) == se.NAN32           # canonical NaN, also Inf - Inf
        assert r[5] == math.inf and r[7] == -math.inf
        assert [bits32(v) for v in r[8:]] == [0, 0, 0, 0]       # exact zero sums are +0


# --- the whole step (both alignments) against the oracle ----------------------------------

STEP_FORMATS = [("e4m3", "e4m3"), ("e5m2", "e4m3"), ("e2m1", "e3m2"), ("e5m2", "e5m2")]


@pytest.mark.parametrize("acc_in_max", [True, False])
@pytest.mark.parametrize("align", se.ALIGNS)
@pytest.mark.parametrize("cut", se.CUTS)
def test_step_matches_fraction_oracle(cut, align, acc_in_max):
    rng = np.random.default_rng(hash((cut, align, acc_in_max)) % 2 ** 32)
    for fa_name, fb_name in STEP_FORMATS:
        fa, fb = formats.get(fa_name), formats.get(fb_name)
        for frac_bits, sum_bits, nfb, nr in ((0, None, 23, "nearest_even"), (2, None, 4, "toward_zero"),
                                             (5, 8, 13, "nearest_even"), (12, None, 1, "toward_zero"),
                                             (3, None, 2, "nearest_even"),
                                             (70, 72, 23, "nearest_even")):    # Python-int path, wraps
            n = int(rng.integers(1, 6))
            cfg = SharedExpConfig(n=n, align=align, acc_in_max=acc_in_max, frac_bits=frac_bits,
                                  cut=cut, sum_bits=sum_bits, norm_frac_bits=nfb, norm_rounding=nr)
            rows = 24
            a = finite_codes(fa, (rows, n), rng)
            b = finite_codes(fb, (rows, n), rng)
            acc = random_fp32(rng, rows) * np.ldexp(1.0, -rng.integers(0, 100, rows))
            acc = acc.astype(np.float32).astype(np.float64)
            scale = rng.integers(-150, 110, rows) * (rng.random(rows) < 0.3)
            got = se.shared_exp_add(a, b, fa_name, fb_name, cfg, acc=acc, scale_exp=scale)
            va, vb = fa.decode(a), fb.decode(b)
            for i in range(rows):
                want = step_oracle(va[i], vb[i], fa, fb, cfg, acc=acc[i], scale=int(scale[i]))
                assert bits32(got[i]) == bits32(want), (fa_name, fb_name, cfg, i)
            got = se.shared_exp_add(a, b, fa_name, fb_name, cfg)        # no accumulator
            for i in range(rows):
                assert bits32(got[i]) == bits32(step_oracle(va[i], vb[i], fa, fb, cfg))


@pytest.mark.parametrize("align", se.ALIGNS)
def test_dot_chain_matches_fraction_oracle(align):
    # the chained steps and the FP32 promotion, step by step through the oracle
    rng = np.random.default_rng(7)
    fa = fb = formats.e4m3
    cfg = SharedExpConfig(n=4, align=align, frac_bits=6, cut="floor", norm_frac_bits=10,
                          norm_rounding="toward_zero", promote_every=8, promote_rounding="toward_zero")
    a = finite_codes(fa, (30, 22), rng)
    b = finite_codes(fb, (30, 22), rng)
    got = se.shared_exp_dot(a, b, "e4m3", "e4m3", cfg)
    va, vb = fa.decode(a), fb.decode(b)
    for i in range(30):
        x = list(va[i]) + [0.0, 0.0]
        y = list(vb[i]) + [0.0, 0.0]
        part, total = 0.0, 0.0
        for s in range(6):
            part = step_oracle(x[4 * s:4 * s + 4], y[4 * s:4 * s + 4], fa, fb, cfg, acc=part)
            if s % 2 == 1 or s == 5:
                total = round_oracle(Fraction(total) + Fraction(part), 23, "toward_zero")
                part = 0.0
        assert bits32(got[i]) == bits32(total)


# --- the integer sum register at its width --------------------------------------------------

@pytest.mark.parametrize("sign, cut", [(1, "nearest_even"), (-1, "floor")])
def test_sum_register_one_bit_narrow_wraps_exactly_at_the_top(sign, cut):
    # 1.875^2 = 3.515625 cuts to +-4 = 2^(frac_bits + 2) (rounded up to the term bound): four of
    # them sum to +-16 = 2^(sum_bits - 1) with sum_bits = needed - 1 = 5. +16 wraps to -16; -16 is
    # the most negative 5-bit value and stays. Every path (one step, the chain, gemm's float64
    # fast path and its integer path) must agree with the oracle.
    e4 = formats.e4m3
    wide = SharedExpConfig(n=4, frac_bits=0, cut=cut)
    assert wide.needed_sum_bits(e4, e4) == 6
    cfg = dataclasses.replace(wide, sum_bits=5)
    a = e4.encode(np.full((1, 4), sign * 1.875, np.float32))
    b = e4.encode(np.full((1, 4), 1.875, np.float32))
    want = step_oracle(e4.decode(a)[0], e4.decode(b)[0], e4, e4, cfg)
    assert want == -16.0
    assert se.shared_exp_add(a, b, "e4m3", "e4m3", cfg)[0] == want
    assert se.shared_exp_dot(a, b, "e4m3", "e4m3", cfg)[0] == want
    assert gemm(a, b.T, "e4m3", "e4m3", cfg)[0, 0] == want
    assert se.shared_exp_add(a, b, "e4m3", "e4m3", wide)[0] == sign * 16.0


@pytest.mark.parametrize("a_fmt, tb", [("e4m3", 2), ("e2m1", 2), ("int8", 4)])
@pytest.mark.parametrize("acc_in_max", [True, False])
def test_needed_sum_bits_counts_the_accumulator_and_cannot_overflow(a_fmt, tb, acc_in_max):
    fmt = formats.get(a_fmt)
    for n in (1, 2, 3, 4, 7, 8, 31, 32):
        for F in (0, 5, 13):
            cfg = SharedExpConfig(n=n, frac_bits=F, acc_in_max=acc_in_max)
            terms = n + acc_in_max
            w = cfg.needed_sum_bits(fmt, fmt)
            # documented bound |x| <= 2^(F + t) per term; the sum of `terms` of them fits in w bits
            assert cfg.term_bound(fmt, fmt) == tb
            assert terms * 2 ** (F + tb) <= 2 ** (w - 1) - 1
            assert w == F + tb + terms.bit_length() + 1


def test_gemm_exact_band_parts_small_and_cancelling():
    # "exact" gemm splits e5m2 into exponent bands (|v| < 2^9 and above) and adds the band
    # products exactly: rows whose large products cancel leave a small (< 1) band part that
    # decides the result; compare with the Fraction oracle
    e5 = formats.e5m2
    rng = np.random.default_rng(21)
    K, M, N = 12, 40, 5
    small = e5.decode(np.arange(1, 0x5C)).astype(np.float64)           # 2^-16 .. < 512
    small = small[np.isfinite(small) & (small < 1)]
    big = np.array([1024.0, 2048.0, 4096.0, 16384.0, 57344.0])
    av = np.zeros((M, K))
    for m in range(M):
        x = rng.choice(big, K // 4) * rng.choice([-1, 1], K // 4)
        av[m, :K // 4], av[m, K // 4:K // 2] = x, -x                    # big terms cancel
        av[m, K // 2:] = rng.choice(small, K - K // 2) * rng.choice([-1, 1], K - K // 2)
    bv = np.ones((K, N))
    bv[K // 2:] = rng.choice(small, (K - K // 2, N)) * rng.choice([-1, 1], (K - K // 2, N))
    A = e5.encode(av.astype(np.float32))
    B = e5.encode(bv.astype(np.float32))
    assert np.array_equal(e5.decode(A), av) and np.array_equal(e5.decode(B), bv)
    got = gemm(A, B, "e5m2", "e5m2", "exact")
    for m in range(M):
        for n in range(N):
            want = rne32(sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(av[m], bv[:, n])))
            assert bits32(got[m, n]) == bits32(want), (m, n)


def test_gemm_integer_path_of_a_wide_matrix():
    # N * n > 2^21: the integer path's row blocks hold a single row (never zero rows)
    e4 = formats.e4m3
    cfg = SharedExpConfig(n=32, frac_bits=50)                  # 59-bit sum: not the float64 path
    A = finite_codes(e4, (2, 32))
    B = finite_codes(e4, (32, 65537))
    got = gemm(A, B, "e4m3", "e4m3", cfg)
    ref = se.shared_exp_dot(A[:, None, :], B.T[None, :, :], "e4m3", "e4m3", cfg)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))
    va, vb = e4.decode(A), e4.decode(B)
    for n in (0, 1, 65536):
        assert got[1, n] == step_oracle(va[1], vb[:, n], e4, e4, cfg)


def value_oracle(va, fmt, cfg, acc=None):
    """One step on plain values (b_format=None): the terms are the operands themselves."""
    return step_oracle(va, [1.0] * len(va), fmt, _ONE, cfg, acc=acc)


class _One:
    """A stand-in 'format' whose exponent of 1.0 is 0: operand_sum exponents of a_i * 1 are a_i's."""
    min_normal = 1.0


_ONE = _One()


@pytest.mark.parametrize("align", se.ALIGNS)
@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e2m1", "bf16"])
def test_plain_value_step_matches_oracle(name, align):
    rng = np.random.default_rng(31)
    fmt = formats.get(name)
    for cut in se.CUTS:
        cfg = SharedExpConfig(n=6, align=align, frac_bits=3, cut=cut, norm_frac_bits=7)
        a = finite_codes(fmt, (30, 6), rng)
        acc = (random_fp32(rng, 30) * 2.0 ** -100).astype(np.float32).astype(np.float64)
        got = se.shared_exp_add(a, None, name, None, cfg, acc=acc)
        va = fmt.decode(a).astype(np.float64)
        for i in range(30):
            assert bits32(got[i]) == bits32(value_oracle(va[i], fmt, cfg, acc=acc[i])), (cut, i)


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_gemm_exact_16_bit_formats_with_subnormals(name):
    # bf16's subnormals reach 2^-133: the lowest exponent band must start below every one
    fmt = formats.get(name)
    rng = np.random.default_rng(41)
    def moderate(shape):                  # normal values whose products and sums stay finite
        v = rng.standard_normal(shape) * 2.0 ** rng.integers(-10, 10, shape)
        return fmt.encode(v.astype(np.float32)).astype(np.int64)

    A = moderate((6, 20))
    B = moderate((20, 4))
    A[:, :10] = rng.integers(1, 1 << fmt.man_bits, (6, 10)) | (rng.integers(0, 2, (6, 10)) << 15)   # subnormals
    B[:10, :] = rng.integers(1, 1 << fmt.man_bits, (10, 4))
    B[:10, 0] = int(fmt.encode(np.float32(1.0)))
    A[0, 10:] = 0                                              # row 0: subnormal terms only
    got = gemm(A, B, name, name, "exact")
    va, vb = fmt.decode(A).astype(np.float64), fmt.decode(B).astype(np.float64)
    for m in range(6):
        for n in range(4):
            want = rne32(sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(va[m], vb[:, n])))
            assert bits32(got[m, n]) == bits32(want), (m, n)   # also the sign of an underflow
    assert got[0, 0] != 0


def test_gemm_exact_negative_underflow_keeps_its_sign():
    # -2^-133 * 2^-133 + 1 * 1 - 1 * 1 = -2^-266: rounds to -0 in FP32 (IEEE 754: the sign of
    # a non-zero result that rounds to zero is kept); bf16 spans 15 bands, so 1 and 2^-133
    # are in different ones (gemm used to give +0 here: the exact-zero rule was applied after
    # the band sum)
    A = np.array([[0x8001, 0x3F80, 0xBF80]], dtype=np.uint16)
    B = np.array([[0x0001], [0x3F80], [0x3F80]], dtype=np.uint16)
    assert bits32(se.exact_dot(A, B.T, "bf16", "bf16")[0]) == bits32(-0.0)
    assert bits32(gemm(A, B, "bf16", "bf16", "exact")[0, 0]) == bits32(-0.0)


def test_gemm_exact_zero_signs_single_and_several_bands():
    # the sign of a zero result, with one band pair (float64 sum cast once) and several (exact
    # integer sum of the band parts): an exact zero is +0 (also from -0 operands), a non-zero
    # sum that underflows keeps its sign. Oracle: exact Fractions rounded by rne32 (signed)
    t, one, z, n = 0x0001, 0x3F80, 0x0000, 0x8000    # bf16 2^-133, 1.0, +0; | n negates
    cases = [([t | n], [t], 0x80000000),                        # one band: -2^-266 -> -0
             ([t], [t], 0),
             ([t | n, t], [t, t], 0),                           # exact zero, one band
             ([z | n, z | n], [t, one], 0),                     # -0 * x terms only
             ([z | n, one | n, one], [one, one, one], 0),
             ([t | n, one, one | n], [t, one, one], 0x80000000),  # several bands: -0
             ([t, one | n, one], [t, one, one], 0),
             ([t | n, t, one, one | n], [t, t, one, one], 0),   # exact zero, several bands
             ([one | n, t | n], [one, t], 0xBF800000)]          # -1 - 2^-266 -> -1
    bf = formats.bf16
    for a, b, code in cases:
        A = np.array([a], dtype=np.uint16)
        B = np.array(b, dtype=np.uint16)[:, None]
        want = rne32(sum(Fraction(float(x)) * Fraction(float(y))
                         for x, y in zip(bf.decode(A[0]).tolist(), bf.decode(B[:, 0]).tolist())))
        assert bits32(want) == code, (a, b)
        assert bits32(gemm(A, B, "bf16", "bf16", "exact")[0, 0]) == code, (a, b)
        assert bits32(se.exact_dot(A[0], B[:, 0], "bf16", "bf16")) == code, (a, b)


def test_gemm_exact_tie_decided_below_float64():
    # 1 + 2^-24 + 2^-60: a tie of FP32 (1 + half an ULP) broken by a part 36 bits lower; in
    # one float64 sum the 2^-60 is lost (1 + 2^-24 needs 25 bits, 2^-60 lies beyond 53) and
    # the tie goes to even (1.0); the band parts keep it: exactly rounded, 1 + 2^-23
    bf = formats.bf16
    A = bf.encode(np.array([[1.0, 2.0 ** -12, 2.0 ** -30]], np.float32))
    B = bf.encode(np.array([[1.0], [2.0 ** -12], [2.0 ** -30]], np.float32))
    want = rne32(Fraction(1) + Fraction(1, 2 ** 24) + Fraction(1, 2 ** 60))
    assert want == 1 + 2.0 ** -23
    assert bits32(gemm(A, B, "bf16", "bf16", "exact")[0, 0]) == bits32(want)
    assert bits32(se.exact_dot(A, B.T, "bf16", "bf16")[0]) == bits32(want)


def test_step_int16_times_fp16_far_terms():
    # int16 x fp16 products carry 27 significant bits: a term far below the maximum (shift
    # beyond 25 bits) is cut to its sticky contribution only (Fraction oracle)
    i16, f16 = formats.int16, formats.fp16
    a = i16.to_codes(np.array([[32767, -32767, 3, -5]] * 4 + [[32767, 32767, -32767, 1]] * 2))
    vb = np.array([[2.0 ** 15, 2.0 ** 15, 2.0 ** -14, 2.0 ** -14],
                   [2.0 ** 15, 2047 * 2.0 ** -20, 2047 * 2.0 ** -21, 0.0],   # 26-bit terms, 46 below
                   [-2.0 ** 15, -2047 * 2.0 ** -20, 2047 * 2.0 ** -22, 2.0 ** -24],
                   [-2.0 ** 15, 1.5 * 2.0 ** 14, 2.0 ** -24, -3 * 2.0 ** -24],
                   [1023 * 2.0 ** 5, 2.0 ** 15, 2.0 ** -24, 2.0 ** -24],
                   [2.0 ** 15, -2.0 ** 15, 1023 * 2.0 ** -24, 2.0 ** -24]])
    b = f16.encode(vb.astype(np.float32))
    for cut in se.CUTS:
        cfg = SharedExpConfig(n=4, frac_bits=4, cut=cut, norm_frac_bits=23)
        got = se.shared_exp_add(a, b, "int16", "fp16", cfg)
        for i in range(6):
            want = step_oracle(i16.decode(a[i]).astype(np.float64), f16.decode(b[i]).astype(np.float64),
                               i16, f16, cfg)
            assert bits32(got[i]) == bits32(want), (cut, i)


def test_gemm_exact_operands_far_below_one():
    # formats of extreme bias: operands near 2^-1000 and 2^+1000 whose products are moderate;
    # the lowest exponent band must reach every operand (Fraction oracle)
    tiny = formats.FloatFormat("e2m1_b1000", 2, 1, 1000, "finite")
    huge = formats.FloatFormat("e2m1_bm1000", 2, 1, -1000, "finite")
    A = np.arange(8, dtype=np.uint8)[None, :].repeat(2, 0)     # the positive codes
    A[1] = A[1][::-1]
    B = np.arange(8, dtype=np.uint8)[:, None].repeat(3, 1)
    B[:, 1] = B[::-1, 1]
    B[:, 2] = (B[:, 2] * 3) % 8
    got = gemm(A, B, tiny, huge, "exact")
    va = [[Fraction(float(v)) for v in r] for r in tiny.decode(A).tolist()]
    vb = [[Fraction(float(v)) for v in r] for r in huge.decode(B.T).tolist()]
    for m in range(2):
        for n in range(3):
            want = rne32(sum(x * y for x, y in zip(va[m], vb[n])))
            assert bits32(got[m, n]) == bits32(want), (m, n)
    assert got[0, 0] != 0


def test_plain_values_and_accumulator_all_at_the_term_bound_wrap():
    # plain values (b_format=None, term bound 2^(F+1)) and the accumulator in the maximum:
    # three e4m3 1.875 and acc = 1.875 are each cut (nearest, F = 0) to 2 = 2^(F+1); their sum
    # 8 needs needed_sum_bits = 0 + 1 + bitlen(4) + 1 = 5 bits; a 4-bit sum register wraps it
    # to -8 (two's complement), a 5-bit one keeps 8
    e4 = formats.e4m3
    a = e4.encode(np.full((1, 3), 1.875, np.float32))
    cfg = SharedExpConfig(n=3, frac_bits=0, cut="nearest_even", acc_in_max=True)
    assert cfg.needed_sum_bits(e4) == 5
    for bits, want in ((5, 8.0), (4, -8.0)):
        c = dataclasses.replace(cfg, sum_bits=bits)
        got = se.shared_exp_add(a, None, "e4m3", None, c, acc=np.array([1.875]))
        assert bits32(got[0]) == bits32(want), bits


# The H100 measurements (tests/data/h100, provenance in its README)

H100 = pathlib.Path(__file__).resolve().parent / "data" / "h100" / "h100_fp8_gemm.npz"
H100_PAIRS = [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e4m3")]
H100_KS = [16, 32, 64, 128, 256, 1024, 4096]


@pytest.fixture(scope="module")
def h100():
    with np.load(H100) as z:
        return {k: z[k] for k in z.files}


def _h100_matches(data, datapath):
    ok = total = 0
    for pa, pb in H100_PAIRS:
        for K in H100_KS:
            key = f"{pa}x{pb}_K{K}"
            got = gemm(data[key + "_A"], data[key + "_B"], pa, pb, datapath)
            want = data[key + "_C"]
            same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
            ok += int(same.sum())
            total += same.size
    return ok, total


def test_h100_measurements_bit_exact(h100):
    # 86,016 FP8 GEMM results of torch._scaled_mm on an H100 (default accumulation)
    assert _h100_matches(h100, "h100_fp8") == (86016, 86016)


def test_h100_floor_cut_is_refuted(h100):
    # the old preset (cut="floor", two's-complement truncation) matched 188 of them
    old = dataclasses.replace(se.PRESETS["h100_fp8"], cut="floor")
    ok, total = _h100_matches(h100, old)
    assert total == 86016 and ok < 1000


def test_h100_integer_path_on_measurements(h100):
    # the step-by-step integer model agrees with the fast path (and the GPU) on K = 256
    key = "e5m2xe4m3_K256"
    A, B = h100[key + "_A"][:8], h100[key + "_B"][:, :8]
    ref = se.shared_exp_dot(A[:, None, :], B.T[None, :, :], "e5m2", "e4m3", "h100_fp8")
    assert np.array_equal(ref.view(np.uint32), h100[key + "_C"][:8, :8].view(np.uint32))


def test_gemm_epilogue_scales_and_bf16():
    fin = np.nonzero(np.isfinite(formats.e4m3.decode(np.arange(256))))[0]
    A = RNG.choice(fin, (6, 96)).astype(np.uint8)
    B = RNG.choice(fin, (96, 7)).astype(np.uint8)
    base = gemm(A, B, "e4m3", "e4m3", "h100_fp8")
    sa, sb = 0.1, 3.0
    # IEEE single-precision multiplications are correctly rounded: alpha = fp32(sa * sb)
    alpha = np.float32(sa) * np.float32(sb)
    want = base * alpha
    got = gemm(A, B, "e4m3", "e4m3", "h100_fp8", scale_a=sa, scale_b=sb)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    codes = gemm(A, B, "e4m3", "e4m3", "h100_fp8", scale_a=sa, scale_b=sb, codes=True)
    assert codes.dtype == np.uint32 and np.array_equal(codes, want.view(np.uint32))
    bf = gemm(A, B, "e4m3", "e4m3", "h100_fp8", scale_a=sa, scale_b=sb, out_format="bf16")
    want_bf = want.astype(ml_dtypes.bfloat16)
    assert bf.dtype == np.float32 and np.array_equal(bf, want_bf.astype(np.float32))
    bfc = gemm(A, B, "e4m3", "e4m3", "h100_fp8", scale_a=sa, scale_b=sb, out_format="bf16",
               codes=True)
    assert bfc.dtype == np.uint16 and np.array_equal(bfc, want_bf.view(np.uint16))
    # the epilogue applies to every datapath
    ex = gemm(A, B, "e4m3", "e4m3", "exact", scale_a=2.0)
    assert np.array_equal(ex, gemm(A, B, "e4m3", "e4m3", "exact") * np.float32(2.0))


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(out_format="fp16"), ValueError, r"^out_format must be one of fp32, bf16, not 'fp16'$"),
    (dict(scale_a="1"), TypeError, r"^scale_a must be a number, not '1'$"),
    (dict(scale_b=float("nan")), ValueError, r"^scale_b must be a finite number, not nan$"),
    (dict(codes=1), TypeError, r"^codes must be True or False, not 1$"),
])
def test_gemm_argument_checks(kw, exc, msg):
    A = np.zeros((2, 32), np.uint8)
    with pytest.raises(exc, match=msg):
        gemm(A, A.T, "e4m3", "e4m3", "h100_fp8", **kw)


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(zero_exp=5000), ValueError, r"^zero_exp must be an integer from -4096 to 4096, not 5000$"),
    (dict(acc_format="bf16"), ValueError, r"^acc_format must be one of fp32, fp16, not 'bf16'$"),
    (dict(acc_format="fp16"), ValueError, r"^norm_frac_bits must be an integer from 1 to 10, not 23$"),
    (dict(n=32, group=5), ValueError, r"^group must divide n=32, not 5$"),
    (dict(interleave=2), ValueError, r"^interleave=2 needs acc_in_max=False$"),
    (dict(acc_add="sum"), ValueError, r"^acc_add must be one of round, aligned, not 'sum'$"),
    (dict(acc_frac_bits=60), ValueError, r"^acc_frac_bits must be an integer from 23 to 52, not 60$"),
    (dict(acc_drop=1), TypeError, r"^acc_drop must be True or False, not 1$"),
    (dict(adder="tree"), ValueError, r"^adder must be one of fused, fp_tree, not 'tree'$"),
    (dict(adder="fp_tree", norm_frac_bits=13), ValueError, r"^adder='fp_tree' adds in FP32"),
    (dict(product_overflow="nan"), ValueError, r"^product_overflow must be one of keep, inf, "),
])
def test_new_knob_validation(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        SharedExpConfig(**kw)


def test_defaults_keep_the_hardware_knobs():
    # the knobs added for the tensor-core instructions default to today's adder
    cfg = SharedExpConfig()
    assert (cfg.zero_exp, cfg.acc_format, cfg.group, cfg.interleave, cfg.acc_add, cfg.adder,
            cfg.ftz, cfg.product_overflow) == (None, "fp32", 1, 1, "round", "fused", False, "keep")


def test_zero_exp_moves_the_grid():
    # e_zero takes part in the maximum: two bf16 products of 2^-140 with one zero term
    # and e_zero = -133 sit on the grid 2^(-133 - 4) and are cut away; without e_zero they
    # are their own maximum and kept exactly
    bf = formats.bf16
    x = bf.encode(np.array([[2.0 ** -70, 2.0 ** -70, 0.0]], np.float32))
    cfg = SharedExpConfig(n=3, frac_bits=4, norm_frac_bits=23, norm_rounding="toward_zero")
    z = dataclasses.replace(cfg, zero_exp=-133)
    assert se.shared_exp_add(x, x, "bf16", "bf16", cfg)[0] == np.float32(2.0 ** -139)
    assert se.shared_exp_add(x, x, "bf16", "bf16", z)[0] == 0.0
