"""The golden number formats, bit-exact against ml_dtypes / NumPy (oracles, never the model).

ml_dtypes casts every input through float32 (``floats.cc``, ``NPyCast``), so every input
fed to it here is float32, for which its cast is a single correct rounding.
"""

import fractions

import ml_dtypes
import numpy as np
import pytest

from lowbit.models import formats as F

# (our format, oracle dtype)
ORACLES = [
    (F.e4m3, ml_dtypes.float8_e4m3fn),
    (F.e5m2, ml_dtypes.float8_e5m2),
    (F.e4m3fnuz, ml_dtypes.float8_e4m3fnuz),
    (F.e5m2fnuz, ml_dtypes.float8_e5m2fnuz),
    (F.e2m3, ml_dtypes.float6_e2m3fn),
    (F.e3m2, ml_dtypes.float6_e3m2fn),
    (F.e2m1, ml_dtypes.float4_e2m1fn),
    (F.e8m0, ml_dtypes.float8_e8m0fnu),
    (F.bf16, ml_dtypes.bfloat16),
    (F.fp16, np.float16),
    (F.get("e4m3ieee"), ml_dtypes.float8_e4m3),   # IEEE-style E4M3, max 240
    (F.get("e3m4"), ml_dtypes.float8_e3m4),
    (F.get("e4m3fnuzb11"), ml_dtypes.float8_e4m3b11fnuz),
]
IDS = [f.name for f, _ in ORACLES]


def _f32(x):
    """float64 -> float32 (overflow to +-Inf is intended)."""
    with np.errstate(over="ignore"):
        return np.asarray(x).astype(np.float32)


def oracle_codes(fmt, dtype, x32):
    """Codes of float32 ``x32`` cast by the oracle."""
    with np.errstate(invalid="ignore", over="ignore"):
        y = x32.astype(dtype)
    codes = y.view(np.uint16 if fmt.bits > 8 else np.uint8)
    if fmt.bits < 8:
        codes = codes & ((1 << fmt.bits) - 1)
    if fmt is F.e8m0:
        # ml_dtypes (0.5.1-0.6.0) rounds float32 *subnormal* inputs in (2^-127, 1.5*2^-127)
        # up to 2^-126 (code 0x01), as if the subnormal pattern had a hidden 1; the nearest
        # value is 2^-127 (0x00).  In that region the oracle is replaced by the definition:
        # nearest in the linear domain, the tie 1.5*2^-127 rounding up.
        sub = (x32 > 0) & (x32 < np.float32(2.0 ** -126))
        codes = codes.copy()
        codes[sub] = (x32[sub] >= np.float32(1.5 * 2.0 ** -127)).astype(np.uint8)
    return codes


def oracle_decode(fmt, dtype, codes):
    with np.errstate(invalid="ignore"):
        return _oracle_decode(fmt, dtype, codes)


def _oracle_decode(fmt, dtype, codes):
    if fmt.bits > 8:
        return codes.astype(np.uint16).view(dtype).astype(np.float64)
    return codes.astype(np.uint8).view(dtype).astype(np.float64)


def assert_same_codes(fmt, x32, got, ref):
    """Bit-exact equality; NaN results only need to agree in NaN-ness and sign."""
    vg, vr = fmt.decode(got), fmt.decode(ref)
    nan = np.isnan(vr)
    assert np.array_equal(np.isnan(vg), nan), x32[np.isnan(vg) != nan][:8]
    bad = (got != ref) & ~nan
    assert not bad.any(), list(zip(x32[bad][:8], got[bad][:8], ref[bad][:8]))
    if fmt.signed and fmt.specials != "fnuz":
        assert np.array_equal(got[nan] >> (fmt.bits - 1), ref[nan] >> (fmt.bits - 1))


def interesting_inputs(fmt):
    """Every value, every midpoint and one float32 ulp either side, zeros, infs, overflow."""
    v = fmt.values()
    fin = np.unique(v[np.isfinite(v)])
    mids = (fin[:-1] + fin[1:]) / 2
    pts = np.concatenate([fin, mids]).astype(np.float32)
    assert np.array_equal(pts.astype(np.float64)[:len(fin)], fin)          # exact in float32
    ups = np.nextafter(pts, np.float32(np.inf))
    downs = np.nextafter(pts, np.float32(-np.inf))
    with np.errstate(over="ignore"):
        big = (fmt.max * np.array([1.0, 1.0625, 1.125, 1.25, 1.5, 2, 4, 1e3])).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, 3e38, -3e38, 1e-45, -1e-45], np.float32)
    x = np.concatenate([pts, ups, downs, big, -big, special])
    return x[np.isfinite(x) | np.isinf(x)]


@pytest.mark.parametrize("fmt,dtype", ORACLES, ids=IDS)
def test_decode_every_code(fmt, dtype):
    codes = fmt.all_codes()
    got = fmt.decode(codes)
    ref = oracle_decode(fmt, dtype, codes)
    assert got.dtype == np.float64
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    fin = ~np.isnan(ref)
    assert np.array_equal(got[fin], ref[fin])
    assert np.array_equal(np.signbit(got[fin]), np.signbit(ref[fin]))


@pytest.mark.parametrize("fmt,dtype", ORACLES, ids=IDS)
def test_encode_values_midpoints_neighbours(fmt, dtype):
    x = interesting_inputs(fmt)
    assert_same_codes(fmt, x, fmt.encode(x), oracle_codes(fmt, dtype, x))


@pytest.mark.parametrize("fmt,dtype", ORACLES, ids=IDS)
def test_encode_random_float32_all_exponents(fmt, dtype):
    rng = np.random.default_rng(2024)
    bits = rng.integers(0, 1 << 32, size=1_000_000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    if not fmt.has_nan:
        x = x[~np.isnan(x)]
    got = fmt.encode(x)
    assert got.dtype == fmt.code_dtype
    ref = oracle_codes(fmt, dtype, x)
    assert_same_codes(fmt, x, got, ref)
    # the general (float64) path agrees with the table-driven float32 path
    if fmt.man_bits <= 6:
        with np.errstate(invalid="ignore"):
            x64 = x.astype(np.float64)
        assert np.array_equal(fmt.encode(x64), got)


@pytest.mark.parametrize("fmt,dtype", ORACLES, ids=IDS)
def test_saturate_is_clamp_then_cast(fmt, dtype):
    x = interesting_inputs(fmt)
    rng = np.random.default_rng(7)
    x = np.concatenate([x, _f32(rng.standard_normal(100_000) * fmt.max * 2)])
    clamped = np.clip(x, np.float32(-fmt.max), np.float32(fmt.max)).astype(np.float32)
    assert_same_codes(fmt, x, fmt.encode(x, saturate=True), oracle_codes(fmt, dtype, clamped))


def test_fp32_from_float64_against_numpy():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 1 << 63, size=300_000, dtype=np.int64).view(np.float64)
    x = bits[np.isfinite(bits)]
    x = np.concatenate([x, [0.0, -0.0, np.inf, -np.inf, 3.4028235677973366e38, 3.4028235677973362e38,
                            1.401298464324817e-45 / 2, 1.401298464324817e-45 * 0.50001]])
    with np.errstate(over="ignore"):
        ref = x.astype(np.float32).view(np.uint32)
    assert np.array_equal(F.fp32.encode(x), ref)
    codes = rng.integers(0, 1 << 32, size=100_000, dtype=np.uint64).astype(np.uint32)
    got = F.fp32.decode(codes)
    with np.errstate(invalid="ignore"):
        ref = codes.view(np.float32).astype(np.float64)
    assert np.array_equal(got, ref, equal_nan=True)


# -- directed vectors: OCP OFP8 rev 1.0 (ties, saturation, NaN), OCP MX v1.0 section 5 ------

@pytest.mark.parametrize("name,x,sat,code", [
    ("e4m3", 464.0, False, 0x7E), ("e4m3", 464.0001, False, 0x7F), ("e4m3", 480.0, False, 0x7F),
    ("e4m3", np.inf, False, 0x7F), ("e4m3", -np.inf, False, 0xFF), ("e4m3", 2.0 ** -10, False, 0x00),
    ("e4m3", 2.0 ** -10 * 1.0001, False, 0x01), ("e4m3", 0.0029296875, False, 0x02),
    ("e4m3", 464.0001, True, 0x7E), ("e4m3", -1e30, True, 0xFE),
    ("e5m2", 61439.0, False, 0x7B), ("e5m2", 61440.0, False, 0x7C), ("e5m2", 2.0 ** -17, False, 0x00),
    ("e5m2", 61440.0, True, 0x7B), ("e5m2", np.inf, True, 0x7B),
    ("e4m3fnuz", -0.0, False, 0x00), ("e4m3fnuz", 248.0, False, 0x80), ("e4m3fnuz", 247.9, False, 0x7F),
    ("e8m0", 3.0, False, 0x81), ("e8m0", 0.75, False, 0x7F), ("e8m0", 0.0, False, 0xFF),
    ("e2m1", 0.25, False, 0x0), ("e2m1", 0.75, False, 0x2), ("e2m1", 1.25, False, 0x2),
    ("e2m1", 1.75, False, 0x4), ("e2m1", 2.5, False, 0x4), ("e2m1", 3.5, False, 0x6),
    ("e2m1", 5.0, False, 0x6), ("e2m1", 7.0, False, 0x7),
])
def test_directed_encode(name, x, sat, code):
    assert int(F.get(name).encode(np.array([x]), saturate=sat)[0]) == code


@pytest.mark.parametrize("name,code,value", [
    ("e4m3", 0x7E, 448.0), ("e4m3", 0x80, -0.0), ("e4m3", 0x08, 2.0 ** -6), ("e4m3", 0x01, 2.0 ** -9),
    ("e5m2", 0x7B, 57344.0), ("e5m2", 0x7C, np.inf), ("e4m3fnuz", 0x7F, 240.0),
    ("e8m0", 0x7F, 1.0), ("e8m0", 0x00, 2.0 ** -127), ("e8m0", 0xFE, 2.0 ** 127),
])
def test_directed_decode(name, code, value):
    got = F.get(name).decode(np.array([code], np.uint8))[0]
    assert got == value and np.signbit(got) == np.signbit(value)


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e4m3fnuz", "e8m0"])
def test_nan_in_nan_out(name):
    fmt = F.get(name)
    for x in (np.float32(np.nan), np.float64(np.nan), -np.float32(np.nan)):
        for sat in (False, True):
            assert np.isnan(fmt.decode(fmt.encode(np.array([x]), saturate=sat)))[0]


def test_named_format_properties():
    assert (F.e4m3.bits, F.e4m3.exp_bits, F.e4m3.man_bits, F.e4m3.bias) == (8, 4, 3, 7)
    assert (F.e4m3.max, F.e4m3.min_normal, F.e4m3.min_subnormal) == (448.0, 2.0 ** -6, 2.0 ** -9)
    assert not F.e4m3.has_inf and F.e4m3.has_nan
    assert F.e5m2.has_inf and F.e5m2.max == 57344.0
    assert F.e4m3fnuz.max == 240.0 and F.e4m3fnuz.bias == 8
    assert (F.e2m3.max, F.e3m2.max, F.e2m1.max) == (7.5, 28.0, 6.0)
    assert not F.e2m1.has_nan and not F.e2m1.has_inf
    assert F.e8m0.bits == 8 and F.e8m0.max == 2.0 ** 127 and F.e8m0.min_subnormal == 2.0 ** -127
    assert F.bf16.bits == 16 and F.fp16.max == 65504.0 and F.fp32.bits == 32
    assert (F.int4.min, F.int4.max, F.uint8.max, F.int32.min) == (-8, 7, 255, -(1 << 31))
    for n in ["int4", "int8", "uint8", "int16", "int32", "e4m3", "e5m2", "e4m3fnuz", "e5m2fnuz",
              "e2m3", "e3m2", "e2m1", "e8m0", "bf16", "fp16", "fp32"]:
        assert F.get(n).name == n
    assert F.get(F.e4m3) is F.e4m3


# -- user-defined formats -------------------------------------------------------------------

@pytest.mark.parametrize("exp_bits,man_bits,specials", [
    (1, 0, "finite"), (1, 5, "fnuz"), (3, 0, "fn"), (5, 1, "ieee"), (8, 23, "ieee"), (6, 9, "fn"),
    (2, 2, "finite"), (7, 4, "fnuz"),
])
def test_user_float_roundtrip_and_rounding(exp_bits, man_bits, specials):
    """Every code decodes to a value that encodes back to it; random values round to nearest."""
    fmt = F.float_format(exp_bits, man_bits, specials=specials)
    assert fmt.bits == 1 + exp_bits + man_bits
    rng = np.random.default_rng(exp_bits * 100 + man_bits)
    if fmt.bits <= 16:
        codes = fmt.all_codes()
    else:
        codes = rng.integers(0, 1 << fmt.bits, 50_000, dtype=np.uint64).astype(fmt.code_dtype)
    v = fmt.decode(codes)
    ok = ~np.isnan(v)
    back = fmt.encode(v[ok])
    # +-0 are distinct codes; FNUZ has only +0
    assert np.array_equal(fmt.decode(back), v[ok])
    # random values: the result is a representable value nearest to x, ties to even mantissa
    vals = np.unique(v[np.isfinite(v)])
    x = rng.uniform(-fmt.max * 1.2, fmt.max * 1.2, 20_000)
    if fmt.max < 1e300:
        x = np.concatenate([x, rng.uniform(-fmt.min_normal * 4, fmt.min_normal * 4, 20_000)])
    r = fmt.decode(fmt.encode(x, saturate=True))
    i = np.clip(np.searchsorted(vals, x), 1, len(vals) - 1)
    lo, hi = vals[i - 1], vals[i]
    best = np.minimum(np.abs(x - lo), np.abs(x - hi))
    assert np.all((np.abs(r - x) <= best) | (np.abs(x) > fmt.max))


def test_user_int_formats():
    for bits in (2, 3, 7, 12, 33, 53):
        for signed in (True, False):
            fmt = F.int_format(bits, signed)
            rng = np.random.default_rng(bits)
            x = rng.uniform(fmt.min - 3, fmt.max + 3, 10_000)
            x = np.concatenate([x, [fmt.min, fmt.max, 0.5, 1.5, 2.5, -0.5, -1.5]])
            got = fmt.decode(fmt.encode(x, saturate=True))
            assert np.array_equal(got, np.clip(np.rint(x), fmt.min, fmt.max).astype(np.int64))
            wrapped = fmt.decode(fmt.encode(x))
            n = [int(v) for v in np.rint(x)]
            span = 1 << bits
            ref = [((v - fmt.min) % span) + fmt.min for v in n]
            assert wrapped.tolist() == ref
            tz = fmt.decode(fmt.encode(x, rounding="toward_zero", saturate=True))
            assert np.array_equal(tz, np.clip(np.trunc(x), fmt.min, fmt.max).astype(np.int64))


def test_int64_exact():
    fmt = F.get("int64")
    codes = np.array([0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1], np.uint64)
    assert fmt.decode(codes).tolist() == [0, 1, (1 << 63) - 1, -(1 << 63), -1]
    assert F.get("uint64").decode(codes).tolist() == [0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]
    assert fmt.encode(np.array([-1.0, 2.0 ** 62, -2.0 ** 63])).tolist() == \
        [(1 << 64) - 1, 1 << 62, 1 << 63]


# -- toward zero and stochastic rounding against their definitions ---------------------------

@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e2m1", "e3m2", "e4m3fnuz", "bf16", "fp16"])
def test_toward_zero_definition(name):
    fmt = F.get(name)
    vals = fmt.values()
    pos = np.unique(vals[np.isfinite(vals) & (vals >= 0)])
    rng = np.random.default_rng(11)
    x = np.concatenate([interesting_inputs(fmt),
                        _f32(rng.standard_normal(200_000) * fmt.max / 3)])
    x = x[np.isfinite(x)]
    got = fmt.decode(fmt.encode(x, rounding="toward_zero"))
    # largest representable magnitude <= |x| (IEEE 7.4: overflow goes to max)
    i = np.searchsorted(pos, np.abs(x.astype(np.float64)), side="right") - 1
    ref = np.copysign(pos[i], x)
    if not fmt.has_negative_zero:
        ref = np.where(ref == 0, 0.0, ref)
    assert np.array_equal(got, ref)
    assert np.array_equal(np.signbit(got), np.signbit(ref))


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e2m1", "bf16", "int8"])
@pytest.mark.parametrize("sr_bits", [1, 3, 8])
def test_stochastic_exact_probability(name, sr_bits):
    """Over every random-bit value, the number of round-ups is exactly floor(f * 2^N)."""
    fmt = F.get(name)
    R = 1 << sr_bits
    if fmt.kind == "int":
        base = np.array([0.0, 1.0, 5.0, -3.0, 100.0, -128.0])
        ulp = np.ones_like(base)
    else:
        base = np.array([1.0, 1.5, -1.25, fmt.min_subnormal * 3, -fmt.min_subnormal, fmt.max / 2,
                         fmt.min_normal])
        base = base[fmt.decode(fmt.encode(base)) == base]          # representable ones only
        assert len(base) >= 4
        ulp = np.array([np.ldexp(1.0, max(int(np.floor(np.log2(abs(b)))), fmt.emin) - fmt.man_bits)
                        for b in base])
    fracs = np.array([0, 1, 3, 7, 127, 255]) / 256.0
    for b, u in zip(base, ulp):
        grid = fmt.decode(fmt.encode(np.array([b])))[0]
        assert grid == b                                # the bases are representable
        for f in fracs:
            x = np.full(R, b + np.copysign(f * u, b) if fmt.kind != "int" else b + f * u)
            got = fmt.decode(fmt.encode(x, rounding="stochastic", random_bits=np.arange(R),
                                        sr_bits=sr_bits))
            if fmt.kind == "int":
                ups = int(np.sum(got > b))
            else:
                ups = int(np.sum(np.abs(got) > abs(b)))
            expected = int(np.floor(f * R))
            assert ups == expected, (b, f, ups, expected)
            assert np.all((got == b) | (np.abs(got - b) == u)) or fmt.kind == "int"


def test_stochastic_with_generator_is_unbiased_and_reproducible():
    x = np.full(200_000, 1.0 + 0.3 * 0.125, np.float64)      # 30% of the way to the next e4m3
    a = F.e4m3.encode(x, rounding="stochastic", random_bits=np.random.default_rng(5), sr_bits=16)
    b = F.e4m3.encode(x, rounding="stochastic", random_bits=np.random.default_rng(5), sr_bits=16)
    assert np.array_equal(a, b)
    frac_up = float(np.mean(F.e4m3.decode(a) > 1.0))
    # binomial standard deviation sqrt(.3*.7/2e5) ~ 0.001; 6 sigma
    assert abs(frac_up - 0.3) < 0.006


def test_exact_rational_midpoints_fp16():
    """A few float64 inputs whose correct rounding needs more than float32 precision."""
    one = fractions.Fraction(1)
    ulp = fractions.Fraction(1, 1024)
    x = float(one + ulp / 2 + fractions.Fraction(1, 2 ** 40))     # just above the tie
    assert F.fp16.decode(F.fp16.encode(np.array([x])))[0] == float(one + ulp)
    x = float(one + ulp / 2)                                       # the tie: to even (1.0)
    assert F.fp16.decode(F.fp16.encode(np.array([x])))[0] == 1.0


# -- bad arguments ---------------------------------------------------------------------------

def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^unknown format 'e9m9x'; known formats: int4, int8"):
        F.get("e9m9x")
    with pytest.raises(ValueError, match=r"^exp_bits must be from 1 to 8, not 0$"):
        F.float_format(0, 3)
    with pytest.raises(ValueError, match=r"^exp_bits must be from 1 to 8, not 9$"):
        F.get("e9m2")
    with pytest.raises(ValueError, match=r"^man_bits must be from 0 to 23, not -1$"):
        F.float_format(4, -1)
    with pytest.raises(ValueError, match=r"^bits must be an integer from 2 to 64, not 65$"):
        F.int_format(65)
    with pytest.raises(ValueError, match=r"^rounding must be one of nearest_even, toward_zero, "
                                         r"stochastic, not 'nearest'$"):
        F.e4m3.encode(np.zeros(3), rounding="nearest")
    with pytest.raises(ValueError, match=r"^codes for e4m3 must be an integer array of bit "
                                         r"patterns, not an array of float16$"):
        F.e4m3.decode(np.zeros(3, np.float16))
    with pytest.raises(ValueError, match=r"^codes for e2m1 must lie in 0\.\.15 \(4-bit patterns\), "
                                         r"got values in 0\.\.16$"):
        F.e2m1.decode(np.array([0, 16]))
    with pytest.raises(ValueError, match=r"^format e2m1 has no NaN encoding"):
        F.e2m1.encode(np.array([np.nan], np.float32))
    with pytest.raises(ValueError, match=r"^random_bits must be given for stochastic rounding"):
        F.e4m3.encode(np.zeros(3), rounding="stochastic")
    with pytest.raises(ValueError, match=r"^random_bits must lie in 0\.\.7 for sr_bits=3$"):
        F.e4m3.encode(np.zeros(3), rounding="stochastic", random_bits=np.array([0, 8, 1]), sr_bits=3)
    with pytest.raises(ValueError, match=r"^sr_bits must be an integer from 1 to 32, not 40$"):
        F.e4m3.encode(np.zeros(3), rounding="stochastic", random_bits=np.zeros(3, int), sr_bits=40)
    with pytest.raises(ValueError, match=r"^specials must be one of ieee, fn, fnuz, finite, not 'x'$"):
        F.float_format(4, 3, specials="x")
    with pytest.raises(ValueError, match=r"^x must be a float32 or float64 array"):
        F.e4m3.encode(np.array(["a"]))
