"""The golden number formats, bit-exact against ml_dtypes / NumPy (oracles, never the model).

ml_dtypes casts every input through float32 (``floats.cc``, ``NPyCast``), so every input
fed to it here is float32, for which its cast is a single correct rounding.
"""

import dataclasses
import fractions
import math

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


# -- integer formats of every width, exactly (oracle: Python integers and Fractions) ----------

def _int_oracle_code(fmt, q, saturate):
    """Code of the integer ``q`` (a Python int) in ``fmt``: clamped or wrapped modulo 2^bits."""
    if saturate:
        q = min(max(q, fmt.min), fmt.max)
    return q % (1 << fmt.bits)


def _int_oracle_value(fmt, code):
    return code - (1 << fmt.bits) if fmt.signed and code >> (fmt.bits - 1) else code


def _round_fraction(q, rounding, r=0, sr_bits=8):
    if rounding == "nearest_even":
        return round(q)                                   # Python rounds half to even
    if rounding == "toward_zero":
        return int(q)                                     # truncation
    return (math.floor(q * 2 ** sr_bits) + r) >> sr_bits  # floor((floor(x 2^N) + r) / 2^N)


def _limit_inputs(fmt, rng):
    """float64 values at and around both limits of ``fmt`` and far beyond, plus small ones."""
    vals = []
    for lim in (fmt.min, fmt.max, fmt.min - 1, fmt.max + 1, 0):
        for d in (-2, -1.5, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 1.5, 2):
            vals.append(float(lim) + d)                   # rounded to float64 where it must
            vals.append(float(lim + int(d)) + (d - int(d)))
        f = float(lim)
        vals += [f, np.nextafter(f, np.inf), np.nextafter(f, -np.inf),
                 np.nextafter(np.nextafter(f, np.inf), np.inf),
                 np.nextafter(np.nextafter(f, -np.inf), -np.inf)]
    for e in (fmt.bits - 2, fmt.bits - 1, fmt.bits, fmt.bits + 1):
        p = 2.0 ** e
        vals += [p, -p, np.nextafter(p, 0), -np.nextafter(p, 0), np.nextafter(p, np.inf),
                 -np.nextafter(p, np.inf), 1.5 * p, -1.5 * p]
    vals += [1e30, -1e30, 1.7e308, -1.7e308, 2.0 ** 64, -2.0 ** 64, 2.5, -2.5, 3.5, -0.0,
             2.0 ** 40 + 2.0 ** -12, -(2.0 ** 40 + 2.0 ** -12), 2.0 ** 51 + 0.5, -2.0 ** 51 - 0.5]
    span = float(fmt.max - fmt.min)
    vals += list(rng.uniform(fmt.min - span / 8, fmt.max + span / 8, 64))
    vals += list(rng.uniform(-8, 8, 32))
    return np.array(vals, np.float64)


INT_WIDTHS = [(b, s) for b in range(2, 65) for s in (True, False)]


@pytest.mark.parametrize("bits,signed", INT_WIDTHS,
                         ids=[f"{'' if s else 'u'}int{b}" for b, s in INT_WIDTHS])
def test_int_every_width_encode_decode_exact(bits, signed):
    fmt = F.int_format(bits, signed)
    assert (fmt.min, fmt.max) == ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed
                                  else (0, (1 << bits) - 1))
    rng = np.random.default_rng(bits * 2 + signed)
    x = _limit_inputs(fmt, rng)
    qs = [fractions.Fraction(v) for v in x.tolist()]
    sr = 32
    r = rng.integers(0, 1 << sr, x.size, dtype=np.int64)
    r[:8] = [0, 1, (1 << sr) - 1, (1 << sr) - 2, 1 << (sr - 1), (1 << sr) - (1 << 20) - 1,
             (1 << sr) - (1 << 20), 12345]
    for rounding in F.ROUNDINGS:
        kw = dict(random_bits=r, sr_bits=sr) if rounding == "stochastic" else {}
        ints = [_round_fraction(q, rounding, int(ri), sr) for q, ri in zip(qs, r.tolist())]
        for saturate in (False, True):
            got = fmt.encode(x, rounding=rounding, saturate=saturate, **kw)
            assert got.dtype == fmt.code_dtype and got.shape == x.shape
            want = [_int_oracle_code(fmt, q, saturate) for q in ints]
            assert got.tolist() == want, (rounding, saturate)
            dec = fmt.decode(got)
            assert dec.dtype == fmt.value_dtype
            assert dec.tolist() == [_int_oracle_value(fmt, c) for c in want]
    # float32 input: the same values where float32 holds them
    x32 = x[np.abs(x) < 3e38].astype(np.float32)
    want = [_int_oracle_code(fmt, round(fractions.Fraction(float(v))), True) for v in x32]
    assert fmt.encode(x32, saturate=True).tolist() == want
    # +-Inf saturates to the limits
    assert fmt.encode(np.array([np.inf, -np.inf]), saturate=True).tolist() == \
        [fmt.max % (1 << bits), fmt.min % (1 << bits)]


@pytest.mark.parametrize("bits,signed", INT_WIDTHS,
                         ids=[f"{'' if s else 'u'}int{b}" for b, s in INT_WIDTHS])
def test_int_every_width_decode_and_integer_inputs(bits, signed):
    fmt = F.int_format(bits, signed)
    top = (1 << bits) - 1
    rng = np.random.default_rng(bits)
    codes = sorted({0, 1, 2, top, top - 1, top >> 1, (top >> 1) + 1, (top >> 1) - 1,
                    *(int(c) for c in rng.integers(0, top, 20, dtype=np.uint64, endpoint=True))})
    want = [_int_oracle_value(fmt, c) for c in codes]
    for dtype in (np.uint64, np.int64, fmt.code_dtype):
        if dtype is np.int64 and top >= 1 << 63:
            continue
        assert fmt.decode(np.array(codes, dtype)).tolist() == want
    assert fmt.decode(np.array(codes, np.uint64).reshape(-1, 1)).tolist() == [[w] for w in want]
    assert fmt.decode(np.uint64(codes[-1])).shape == ()
    # every decoded value encodes back to its code, from float64 where exact, from ints always
    v = np.array(want, dtype=fmt.value_dtype)
    assert fmt.encode(v).tolist() == codes
    assert fmt.encode(v, saturate=True).tolist() == codes
    exact = [w for w in want if abs(w) <= 1 << 53]
    assert fmt.encode(np.array(exact, np.float64)).tolist() == [w % (1 << bits) for w in exact]
    assert fmt.to_codes(v).tolist() == codes
    # integer inputs beyond the limits: wrapped or clamped, exactly
    ints = [fmt.min - 1, fmt.max + 1, fmt.min - 2, fmt.max + 2, -(1 << 63), (1 << 63) - 1, 0, -1]
    for dtype, lo, hi in ((np.int64, -(1 << 63), (1 << 63) - 1), (np.uint64, 0, (1 << 64) - 1)):
        xs = [i for i in ints + [(1 << 64) - 1, 1 << 63] if lo <= i <= hi]
        for sat in (False, True):
            got = fmt.encode(np.array(xs, dtype), saturate=sat, rounding="toward_zero")
            assert got.tolist() == [_int_oracle_code(fmt, i, sat) for i in xs]


def test_int_limits_directed():
    """The cases of issue 14 (float64 near 2^53..2^64)."""
    i64, u64, i56 = F.get("int64"), F.get("uint64"), F.get("int56")
    assert i64.encode(np.array([1e30, -1e30]), saturate=True).tolist() == [(1 << 63) - 1, 1 << 63]
    assert u64.encode(np.array([1e30, -1e30]), saturate=True).tolist() == [(1 << 64) - 1, 0]
    assert i56.encode(np.array([4e16]), saturate=True).tolist() == [(1 << 55) - 1]
    assert i56.decode(i56.encode(np.array([4e16]), saturate=True)).tolist() == [(1 << 55) - 1]
    assert F.get("int63").decode(np.array([0, 1, (1 << 62) - 1, 1 << 62, (1 << 63) - 1])) \
        .tolist() == [0, 1, (1 << 62) - 1, -(1 << 62), -1]
    # 2^63 is the first float64 above int64's max; 2^63 - 1024 the last below
    assert i64.encode(np.array([2.0 ** 63, 2.0 ** 63 - 1024]), saturate=True).tolist() == \
        [(1 << 63) - 1, (1 << 63) - 1024]
    assert i64.encode(np.array([2.0 ** 63, 2.0 ** 64 + 2 ** 12])).tolist() == [1 << 63, 1 << 12]
    assert u64.encode(np.array([2.0 ** 64 - 2048, -2048.0])).tolist() == \
        [(1 << 64) - 2048, (1 << 64) - 2048]
    # stochastic: x = 2^40 + 2^-12 with N = 32 rounds up iff r >= 2^32 - 2^20 (floor(x 2^32) + r
    # is not a float64 for |x| >= 2^21: it must not be formed in float64)
    x = np.full(4, 2.0 ** 40 + 2.0 ** -12)
    r = np.array([(1 << 32) - (1 << 20) - 1, (1 << 32) - (1 << 20), 0, (1 << 32) - 1])
    for fmt in (i64, F.get("int48"), u64):
        got = fmt.decode(fmt.encode(x, rounding="stochastic", random_bits=r, sr_bits=32))
        assert got.tolist() == [1 << 40, (1 << 40) + 1, 1 << 40, (1 << 40) + 1]
        got = fmt.decode(fmt.encode(-x, rounding="stochastic", random_bits=r, sr_bits=32))
        if fmt.signed:   # -x = -(2^40 + 1) + (1 - 2^-12): up iff r >= 2^20
            assert got.tolist() == [-(1 << 40), -(1 << 40), -(1 << 40) - 1, -(1 << 40)]


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


# -- bad arguments: every public function names the parameter (TypeError for a wrong type) ---

Z3 = np.zeros(3)
STOCH = dict(rounding="stochastic")

BAD_CALLS = [
    # get / float_format / int_format / the format classes
    (lambda: F.get("e9m9x"), ValueError,
     r"unknown format 'e9m9x'; known formats: int4, int8, .*\(and intN, uintN, "
     r"eXmY\[fn\|fnuz\|finite\]\[bBIAS\]\)"),
    (lambda: F.get(3), TypeError, r"format name must be a str or a Format, not 3"),
    (lambda: F.get("e9m2"), ValueError, r"exp_bits must be an integer from 1 to 8, not 9"),
    (lambda: F.get("int65"), ValueError, r"bits must be an integer from 2 to 64, not 65"),
    (lambda: F.get("e4m3b1000000"), ValueError,
     r"bias must be an integer from -1009 to 1072, not 1000000"),
    (lambda: F.float_format(2.5, 3), TypeError, r"exp_bits must be an integer, not 2\.5"),
    (lambda: F.float_format(0, 3), ValueError, r"exp_bits must be an integer from 1 to 8, not 0"),
    (lambda: F.float_format(4, 3.0), TypeError, r"man_bits must be an integer, not 3\.0"),
    (lambda: F.float_format(4, -1), ValueError,
     r"man_bits must be an integer from 0 to 23, not -1"),
    (lambda: F.float_format(4, 3, 7.0), TypeError, r"bias must be an integer, not 7\.0"),
    (lambda: F.float_format(4, 3, 10 ** 6, "fn"), ValueError,
     r"bias must be an integer from -1008 to 1072, not 1000000"),
    (lambda: F.float_format(4, 3, -1009, "fn"), ValueError,
     r"bias must be an integer from -1008 to 1072, not -1009"),
    (lambda: F.float_format(4, 3, specials="x"), ValueError,
     r"specials must be one of ieee, fn, fnuz, finite, not 'x'"),
    (lambda: F.float_format(4, 3, specials=None), TypeError,
     r"specials must be one of ieee, fn, fnuz, finite, not None"),
    (lambda: F.float_format(4, 3, signed="yes"), TypeError,
     r"signed must be True or False, not 'yes'"),
    (lambda: F.float_format(4, 3, subnormals=0), TypeError,
     r"subnormals must be True or False, not 0"),
    (lambda: F.float_format(4, 3, name=5), TypeError, r"name must be a str, not 5"),
    (lambda: F.float_format(4, 0), ValueError,
     r"specials 'ieee' needs man_bits >= 1 to encode NaN; use 'fn' or 'finite'"),
    (lambda: F.FloatFormat("x", np.float64(4), 3, 7), TypeError,
     r"exp_bits must be an integer, not np\.float64\(4\.0\)"),
    (lambda: F.int_format(65), ValueError, r"bits must be an integer from 2 to 64, not 65"),
    (lambda: F.int_format(1), ValueError, r"bits must be an integer from 2 to 64, not 1"),
    (lambda: F.int_format(8.0), TypeError, r"bits must be an integer, not 8\.0"),
    (lambda: F.int_format(True), TypeError, r"bits must be an integer, not True"),
    (lambda: F.int_format(8, signed=1), TypeError, r"signed must be True or False, not 1"),
    (lambda: F.IntFormat(8, 8), TypeError, r"name must be a str, not 8"),
    (lambda: F.bias_range(4, 3, "fn", subnormals="no"), TypeError,
     r"subnormals must be True or False, not 'no'"),
    # encode
    (lambda: F.e4m3.encode(Z3, rounding="nearest"), ValueError,
     r"rounding must be one of nearest_even, toward_zero, stochastic, not 'nearest'"),
    (lambda: F.int8.encode(Z3, rounding=None), TypeError,
     r"rounding must be one of nearest_even, toward_zero, stochastic, not None"),
    (lambda: F.e4m3.encode(Z3, saturate="yes"), TypeError,
     r"saturate must be True or False, not 'yes'"),
    (lambda: F.int8.encode(Z3, saturate=1), TypeError, r"saturate must be True or False, not 1"),
    (lambda: F.e4m3.encode(np.array(["a"])), TypeError,
     r"x must be a float16, float32, float64 or integer array, not an array of <U1"),
    (lambda: F.int8.encode(np.array([True])), TypeError,
     r"x must be a float16, float32, float64 or integer array, not an array of bool"),
    (lambda: F.e5m2.encode(np.ones(2, np.complex128)), TypeError,
     r"x must be a float16, float32, float64 or integer array, not an array of complex128"),
    (lambda: F.e2m1.encode(np.array([np.nan], np.float32)), ValueError,
     r"x must not be NaN: format e2m1 has no NaN encoding"),
    (lambda: F.int8.encode(np.array([1.0, np.nan])), ValueError,
     r"x must not be NaN: format int8 has no NaN encoding"),
    (lambda: F.int8.encode(np.array([np.inf])), ValueError,
     r"x must be finite for format int8 \(it has no Inf encoding\); use saturate=True to clamp "
     r"\+-Inf"),
    (lambda: F.fp32.encode(np.array([2 ** 60 + 1])), ValueError,
     r"x must hold integers that float64 represents exactly \(any of at most 53 significant "
     r"bits\), not 1152921504606846977"),
    (lambda: F.e4m3.encode(Z3, **STOCH), ValueError,
     r"random_bits must be given for stochastic rounding: an integer array of values "
     r"0\.\.2\*\*sr_bits-1 or a numpy\.random\.Generator"),
    (lambda: F.e4m3.encode(Z3, **STOCH, random_bits=np.array([0, 8, 1]), sr_bits=3), ValueError,
     r"random_bits must lie in 0\.\.7 for sr_bits=3, got values in 0\.\.8"),
    (lambda: F.int8.encode(Z3, **STOCH, random_bits=np.zeros(2, int)), ValueError,
     r"random_bits must have the shape of x, \(3,\), or broadcast to it, not shape \(2,\)"),
    (lambda: F.e4m3.encode(np.zeros((2, 3)), **STOCH, random_bits=np.zeros((3, 1), int)),
     ValueError, r"random_bits must have the shape of x, \(2, 3\), or broadcast to it, "
                 r"not shape \(3, 1\)"),
    (lambda: F.e4m3.encode(Z3, **STOCH, random_bits=np.zeros(3)), TypeError,
     r"random_bits must be an integer array or a numpy\.random\.Generator, not an array of "
     r"float64"),
    (lambda: F.e4m3.encode(Z3, **STOCH, random_bits="abc"), TypeError,
     r"random_bits must be an integer array or a numpy\.random\.Generator, not 'abc'"),
    (lambda: F.e4m3.encode(Z3, random_bits=np.zeros(3, int)), ValueError,
     r"random_bits is only used with rounding='stochastic', not with rounding='nearest_even'"),
    (lambda: F.int8.encode(Z3, rounding="toward_zero", random_bits=np.random.default_rng(0)),
     ValueError,
     r"random_bits is only used with rounding='stochastic', not with rounding='toward_zero'"),
    (lambda: F.e4m3.encode(Z3, sr_bits=4), ValueError,
     r"sr_bits is only used with rounding='stochastic', not with rounding='nearest_even'"),
    (lambda: F.e4m3.encode(Z3, **STOCH, random_bits=np.zeros(3, int), sr_bits=40), ValueError,
     r"sr_bits must be an integer from 1 to 32, not 40"),
    (lambda: F.int8.encode(Z3, **STOCH, random_bits=np.zeros(3, int), sr_bits=8.0), TypeError,
     r"sr_bits must be an integer, not 8\.0"),
    # decode, to_codes, all_codes
    (lambda: F.e4m3.decode(np.zeros(3, np.float16)), TypeError,
     r"codes for e4m3 must be an integer array of bit patterns, not an array of float16"),
    (lambda: F.int8.decode([0.5]), TypeError,
     r"codes for int8 must be an integer array of bit patterns, not an array of float64"),
    (lambda: F.e2m1.decode(np.array([0, 16])), ValueError,
     r"codes for e2m1 must lie in 0\.\.15 \(4-bit patterns\), got values in 0\.\.16"),
    (lambda: F.get("int63").decode(np.array([-1, 0])), ValueError,
     r"codes for int63 must lie in 0\.\.9223372036854775807 \(63-bit patterns\), "
     r"got values in -1\.\.0"),
    (lambda: F.int8.to_codes(np.array([1.5])), TypeError,
     r"values must be an integer array, not an array of float64"),
    (lambda: F.fp32.all_codes(), ValueError, r"all_codes\(\) is for formats of at most 16 bits, "
                                             r"fp32 has 32"),
]


@pytest.mark.parametrize("call,error,message", BAD_CALLS,
                         ids=[str(i) for i in range(len(BAD_CALLS))])
def test_bad_arguments(call, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        call()


def test_good_arguments_still_pass():
    """Values the checks must not refuse: NumPy integers and bools, the default sr_bits given
    explicitly, a scalar of random bits broadcast, random bits of any integer dtype."""
    fmt = F.float_format(np.int64(4), np.uint8(3), np.int16(7), "fn", signed=np.True_)
    assert fmt == dataclasses.replace(F.e4m3, name="e4m3fn")
    assert type(fmt.exp_bits) is int and fmt.signed is True
    assert F.e4m3.encode(np.array([1.0]), saturate=np.True_, sr_bits=8).tolist() == [0x38]
    got = F.int8.encode(np.array([0.5, 1.5]), rounding="stochastic", random_bits=np.uint8(128),
                        sr_bits=8)
    assert got.tolist() == [1, 2]
    assert F.get("E4M3 ") is F.e4m3 and F.get("fp8_e5m2") is F.e5m2
    assert F.get("e5m2b16") == F.float_format(5, 2, 16)


# -- the bias range: every value a float64, exactly (oracle: Fractions from the bit fields) ----

def exact_value(fmt, code):
    """Exact value of ``code`` from the format's definition: a Fraction, or +-inf / nan."""
    M, E = fmt.man_bits, fmt.exp_bits
    sign = (code >> (E + M)) & 1 if fmt.signed else 0
    field, man = (code >> M) & ((1 << E) - 1), code & ((1 << M) - 1)
    top = (1 << E) - 1
    if fmt.specials == "ieee" and field == top:
        return math.nan if man else (-math.inf if sign else math.inf)
    if fmt.specials == "fn" and field == top and man == (1 << M) - 1:
        return math.nan
    if fmt.specials == "fnuz" and code == 1 << (fmt.bits - 1):
        return math.nan
    if fmt.subnormals and field == 0:
        v = fractions.Fraction(man, 1 << M) * fractions.Fraction(2) ** (1 - fmt.bias)
    else:
        v = (1 + fractions.Fraction(man, 1 << M)) * fractions.Fraction(2) ** (field - fmt.bias)
    return -v if sign else v


def _f64(q):
    """float64 of Fraction ``q`` if it is exactly one, else None."""
    try:
        f = float(q)
    except OverflowError:
        return None
    return f if fractions.Fraction(f) == q else None


BIAS_SHAPES = [  # exp_bits, man_bits, specials, signed, subnormals
    (4, 3, "fn", True, True), (5, 2, "ieee", True, True), (2, 1, "finite", True, True),
    (8, 0, "fn", False, False), (3, 4, "fnuz", True, True), (4, 0, "fn", True, True),
    (1, 6, "finite", True, True), (8, 7, "ieee", True, True), (5, 10, "ieee", True, True),
    (8, 23, "ieee", True, True), (6, 9, "fn", True, False),
]


def _bias_fmt(shape, bias):
    e, m, sp, signed, sub = shape
    return F.float_format(e, m, bias, sp, signed=signed, subnormals=sub)


@pytest.mark.parametrize("shape", BIAS_SHAPES, ids=[f"e{s[0]}m{s[1]}{s[2]}" for s in BIAS_SHAPES])
def test_bias_range_ends_are_exact_and_one_beyond_is_refused(shape):
    e, m, sp, signed, sub = shape
    lo, hi = F.bias_range(e, m, sp, sub)
    rng = np.random.default_rng(e * 100 + m)
    for bias in (lo, hi):
        fmt = _bias_fmt(shape, bias)
        # max: the largest finite value, exact, finite; at lo it is in the top float64 binade
        q_max = exact_value(fmt, fmt.max_code)
        assert fractions.Fraction(fmt.max) == q_max and math.isfinite(fmt.max)
        q_first = exact_value(fmt, (1 << m) if sub else 0)        # 2^emin
        lsb = q_first / 2 ** m                                     # LSB of the lowest binade
        assert fractions.Fraction(fmt.min_normal) == q_first
        assert fractions.Fraction(fmt.min_subnormal) == (lsb if sub and m else q_first)
        if bias == lo:
            assert 2 ** 1023 <= q_max < 2 ** 1024
        else:
            assert lsb == fractions.Fraction(1, 2 ** 1074)         # float64's smallest subnormal
        # decode: every code (random ones and both ends above 8 bits) exactly
        if fmt.bits <= 8:
            codes = fmt.all_codes()
        else:
            codes = np.concatenate([rng.integers(0, 1 << fmt.bits, 4000, dtype=np.uint64),
                                    np.arange(0, 300), fmt.max_code - np.arange(0, 300)])
            codes = codes.astype(fmt.code_dtype)
        got = fmt.decode(codes)
        for c, v in zip(codes.tolist(), got.tolist()):
            q = exact_value(fmt, c)
            if isinstance(q, float):
                assert (math.isnan(q) and math.isnan(v)) or q == v, (hex(c), v)
            else:
                assert fractions.Fraction(v) == q, (hex(c), v, q)
                assert math.copysign(1, v) == (-1 if fmt.signed and c >> (fmt.bits - 1) else 1)
        # encode: every finite value back to its code; midpoints of neighbours to the even one
        _check_encode_neighbours(fmt, codes, rng)
    # one beyond either end is refused, naming the range
    for bias in (lo - 1, hi + 1):
        with pytest.raises(ValueError, match=rf"^bias must be an integer from {lo} to {hi}, "
                                             rf"not {bias}$"):
            _bias_fmt(shape, bias)
    # and so is the name
    name = f"e{e}m{m}{'' if sp == 'ieee' else sp}b{hi + 1}"
    if signed and sub:
        with pytest.raises(ValueError, match=rf"^bias must be an integer from {lo} to {hi}, "
                                             rf"not {hi + 1}$"):
            F.get(name)


def _check_encode_neighbours(fmt, codes, rng):
    """For positive finite codes c: v(c) encodes to c; the midpoint of v(c) and the next value
    (where float64 holds it) to the one with the even integer significand, the float64
    neighbours of the midpoint to the nearer one.  Above max the next value is max + ULP, the
    overflow; negative inputs give the same codes with the sign bit (FNUZ: no -0)."""
    sbit = 1 << (fmt.bits - 1) if fmt.signed else 0
    pos = sorted({int(c) for c in codes if not (int(c) & sbit)
                  and not isinstance(exact_value(fmt, int(c)), float)})
    if len(pos) > 3000:
        pos = sorted(set(rng.choice(pos, 3000, replace=False).tolist()) | {fmt.max_code, 0, 1})
    top_ulp = fractions.Fraction(2) ** (fmt.emax - fmt.man_bits)
    xs, want = [], []
    for c in pos:
        q = exact_value(fmt, c)
        xs.append(float(q))
        want.append(c)
        if c == fmt.max_code:
            q_next, c_next = q + top_ulp, _overflow_code(fmt)
        else:
            q_next, c_next = exact_value(fmt, c + 1), c + 1
        mid = _f64((q + q_next) / 2)
        if mid is None:
            continue
        # the significand of v(c) in units of its ULP is even iff the code is, except without
        # mantissa bits: then it is 1 (odd) for every non-zero value and the tie goes up
        up = (c % 2 == 1) if fmt.man_bits else q != 0
        xs += [mid, float(np.nextafter(mid, np.inf)), float(np.nextafter(mid, -np.inf))]
        want += [c_next if up else c, c_next, c]
    x = np.array(xs)
    got = fmt.encode(x).tolist()
    bad = [(xv, hex(g), hex(w)) for xv, g, w in zip(xs, got, want) if g != w]
    assert not bad, bad[:5]
    if fmt.signed:
        wneg = [0 if (fmt.specials == "fnuz" and w == 0) else w | sbit for w in want]
        assert fmt.encode(-x).tolist() == wneg


def _overflow_code(fmt):
    """Code of a positive overflow under round-to-nearest without saturation."""
    if fmt.specials == "ieee":
        return fmt.inf_code
    if fmt.specials == "finite":
        return fmt.max_code
    return fmt.nan_code


def test_bias_range_documented_values():
    """The table in the FloatFormat docstring, and the issue's e4m3 cases."""
    assert F.bias_range(4, 3, "fn") == (-1008, 1072)
    assert F.bias_range(5, 2) == (-993, 1073)
    assert F.bias_range(4, 3, "fnuz") == (-1008, 1072)
    assert F.bias_range(5, 2, "fnuz") == (-992, 1073)
    assert (F.bias_range(2, 3, "finite"), F.bias_range(3, 2, "finite"),
            F.bias_range(2, 1, "finite")) == ((-1020, 1072), (-1016, 1073), (-1020, 1074))
    assert F.bias_range(8, 0, "fn", subnormals=False) == (-769, 1074)
    assert (F.bias_range(8, 7), F.bias_range(5, 10), F.bias_range(8, 23)) == \
        ((-769, 1068), (-993, 1065), (-769, 1052))
    for f in (F.e4m3, F.e5m2, F.e4m3fnuz, F.e5m2fnuz, F.e2m3, F.e3m2, F.e2m1, F.e8m0, F.bf16,
              F.fp16, F.fp32):
        lo, hi = F.bias_range(f.exp_bits, f.man_bits, f.specials, f.subnormals)
        assert f"{lo} .. {hi}" in F.FloatFormat.__doc__
    # e4m3 with bias -1000 is inside the range: max 1.75 * 2^1015, exact
    f = F.float_format(4, 3, -1000, "fn")
    assert fractions.Fraction(f.max) == fractions.Fraction(7, 4) * 2 ** 1015
    assert f.encode(np.array([f.max, 1.7e308])).tolist() == [0x7E, 0x7F]


# -- the float32 table path: every class of bit patterns that can round differently -----------

def _pattern_classes(top_bits, low_set, rng, n_random=0):
    """float32 patterns: every value of the top ``top_bits`` bits combined with each of the low
    bit patterns in ``low_set``, and ``n_random`` more times with random low bits (drawn anew
    for every pattern)."""
    low = 32 - top_bits
    top = np.arange(1 << top_bits, dtype=np.uint32) << np.uint32(low)
    parts = [top | np.uint32(v) for v in low_set]
    for _ in range(n_random):
        parts.append(top | rng.integers(0, 1 << low, top.size, dtype=np.uint32))
    return np.concatenate(parts).view(np.float32)


@pytest.mark.parametrize("fmt,dtype", ORACLES, ids=IDS)
def test_encode_float32_pattern_classes(fmt, dtype):
    """All 2^19 values of the sign, the exponent and the top 10 mantissa bits (every bit a
    format of <= 7 significand bits rounds at, its round bit and three bits below), each with
    the low 13 bits 0, 1, 0x1000, 0x1FFF and random: against ml_dtypes, plain and saturating."""
    rng = np.random.default_rng(19)
    x = _pattern_classes(19, (0, 1, 0x1000, 0x1FFF), rng, n_random=1)
    if not fmt.has_nan:
        x = x[~np.isnan(x)]
    assert_same_codes(fmt, x, fmt.encode(x), oracle_codes(fmt, dtype, x))
    with np.errstate(invalid="ignore"):
        clamped = np.clip(x, np.float32(-fmt.max), np.float32(fmt.max)).astype(np.float32)
    assert_same_codes(fmt, x, fmt.encode(x, saturate=True), oracle_codes(fmt, dtype, clamped))


TABLE_FORMATS = [  # around the bias where the key position s drops below 15 (no table)
    F.float_format(4, 3, 126, "fn"), F.float_format(4, 3, 129, "fn"),
    F.float_format(4, 3, 130, "fn"), F.float_format(4, 3, 131, "fn"),
    F.float_format(5, 2, 131), F.float_format(2, 1, 132, "finite"),
    F.float_format(8, 0, 132, "fn", signed=False, subnormals=False),
    F.float_format(8, 0, 133, "fn", signed=False, subnormals=False),
    F.float_format(3, 4, -120, "fnuz"), F.float_format(1, 6, 0, "finite"),
    F.float_format(6, 6, 100, "fn", subnormals=False),
]


@pytest.mark.parametrize("fmt", TABLE_FORMATS, ids=[f.name for f in TABLE_FORMATS])
def test_float32_table_path_matches_float64_path(fmt):
    """The float32 table (FloatFormat._table_shift) against the float64 path for user formats
    whose smallest ULP moves the table key down to bit 15 and past it, every rounding."""
    rng = np.random.default_rng(17)
    x = _pattern_classes(17, (0, 1, 0x4000, 0x7FFF), rng)
    if not fmt.has_nan:
        x = x[~np.isnan(x)]
    with np.errstate(invalid="ignore"):
        x64 = x.astype(np.float64)
    for rounding, sat in (("nearest_even", False), ("nearest_even", True), ("toward_zero", False)):
        assert np.array_equal(fmt.encode(x, rounding, sat), fmt.encode(x64, rounding, sat)), \
            (rounding, sat)
    shift = fmt._table_shift()
    assert (shift is None) == (fmt.bias > 133 - fmt.man_bits - (0 if fmt.subnormals else 1))
