"""models.mac against independent oracles.

Oracles: operand values come from ml_dtypes / NumPy (not from lowbit's decode); exact
products and sums are Python ``fractions.Fraction``; rounding to the accumulator format picks,
among the ml_dtypes/NumPy cast of the float64 value and its two neighbouring codes, the one
nearest to the exact rational value (ties to the even code), so a double rounding through
float64 cannot leak into the oracle.
"""

import math
import zlib
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from lowbit.models import formats, mac

ML = {
    "e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2,
    "e4m3fnuz": ml_dtypes.float8_e4m3fnuz, "e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
    "e2m3": ml_dtypes.float6_e2m3fn, "e3m2": ml_dtypes.float6_e3m2fn,
    "e2m1": ml_dtypes.float4_e2m1fn,
    "fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16,
}
UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32}


def oracle_values(name, codes):
    """float64 values of codes, decoded by ml_dtypes / NumPy."""
    fmt = formats.get(name)
    codes = np.asarray(codes)
    with np.errstate(invalid="ignore"):                 # signalling-NaN patterns
        if fmt.bits in (4, 6):     # ml_dtypes stores sub-byte formats one per byte
            return codes.astype(np.uint8).view(ML[name]).astype(np.float64)
        return codes.astype(UINT[fmt.bits]).view(ML[name]).astype(np.float64)


def frac(v):
    return Fraction(float(v))


def oracle_round(name, value, sign_if_zero, saturate=False, flush=False):
    """Code of the RNE rounding of the exact rational ``value`` to accumulator format ``name``.

    ``value`` is a Fraction, or a float +-inf / nan.  ``sign_if_zero`` is the IEEE sign of an
    exact zero.
    """
    fmt = formats.get(name)
    sbit = 1 << (fmt.bits - 1)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return (sbit if value < 0 else 0) | fmt.inf_code
    if value == 0:
        return sbit if sign_if_zero else 0
    neg = value < 0
    mag = abs(value)
    with np.errstate(over="ignore"):
        cast = np.array([float(mag)]).astype(ML[name])
    m0 = int(cast.view(UINT[fmt.bits])[0]) & (sbit - 1)
    if m0 > fmt.inf_code:
        m0 = fmt.inf_code
    best = None
    for m in (m0 - 1, m0, m0 + 1):
        if not 0 <= m <= fmt.inf_code:
            continue
        if m == fmt.inf_code:
            v = Fraction(2) ** (fmt.emax + 1)
        else:
            v = frac(np.array([m], dtype=UINT[fmt.bits]).view(ML[name]).astype(np.float64)[0])
        key = (abs(v - mag), m & 1)
        if best is None or key < best[0]:
            best = (key, m)
    m = best[1]
    if saturate and m == fmt.inf_code:
        m = fmt.max_code
    if flush and 0 < m < (1 << fmt.man_bits):
        m = 0
    return (sbit if neg else 0) | m


def as_exact(x):
    return x if (math.isnan(x) or math.isinf(x)) else frac(x)


def add_exact(x, y):
    """Exact IEEE sum of Fractions/inf/nan, plus the sign of an exact zero result."""
    if isinstance(x, float) or isinstance(y, float):
        return float(x) + float(y)
    return x + y


def flush_val(v, name):
    fmt = formats.get(name)
    if v != 0 and abs(v) < fmt.min_normal and np.isfinite(v):
        return math.copysign(0.0, v)
    return v


def check_codes(got, want, fmt):
    got = np.asarray(got).astype(np.int64)
    for i, (g, w) in enumerate(zip(got.tolist(), want)):
        if w == "nan":
            assert g == fmt.nan_code, (i, hex(g))
        else:
            assert g == w, (i, hex(g), hex(w))


# ------------------------------------------------------------------------------------------
# exact products
# ------------------------------------------------------------------------------------------

PAIRS = [("e4m3", "e4m3"), ("e5m2", "e5m2"), ("e4m3", "e5m2"), ("e5m2", "e4m3"),
         ("e2m1", "e2m1"), ("e3m2", "e2m3"), ("e4m3fnuz", "e5m2fnuz"), ("e2m3", "e4m3")]


@pytest.mark.parametrize("an,bn", PAIRS)
def test_every_product_is_exact(an, bn):
    a, b = formats.get(an), formats.get(bn)
    A, B = np.meshgrid(a.all_codes(), b.all_codes(), indexing="ij")
    A, B = A.ravel(), B.ravel()
    pf = mac.product_format(a, b)
    p = mac.fp_mul(A, B, a, b)
    assert p.dtype == pf.code_dtype
    got = pf.decode(p)
    x, y = oracle_values(an, A), oracle_values(bn, B)
    with np.errstate(invalid="ignore"):
        want = x * y
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert (p[nan] == pf.nan_code).all()
    fin = ~nan
    # exact rational check: the decoded product code equals the product of the rationals
    for xv, yv, gv in zip(x[fin].tolist(), y[fin].tolist(), got[fin].tolist()):
        if math.isinf(xv) or math.isinf(yv):
            assert gv == xv * yv
        else:
            assert Fraction(gv) == Fraction(xv) * Fraction(yv)
    assert np.array_equal(np.signbit(got[fin]), np.signbit(want[fin]))
    # every non-zero finite product is a normal number of the product format
    nz = fin & (got != 0) & np.isfinite(got)
    assert (np.abs(got[nz]) >= pf.min_normal).all() and (np.abs(got[nz]) <= pf.max).all()


def test_product_format_shape():
    pf = mac.product_format("e4m3", "e4m3")
    # 4x4-bit significands -> 8-bit product: 7 fraction bits; exponents 2^-18 .. 2^17
    assert (pf.man_bits, pf.emin) == (7, -18) and pf.emax >= 17 and pf.exp_bits == 6
    pf = mac.product_format("e5m2", "e5m2")
    assert (pf.man_bits, pf.emin) == (5, -32) and pf.emax >= 31 and pf.exp_bits == 7
    assert mac.kulisch_width("e4m3", "e4m3", 1) == (37, -18)
    assert mac.kulisch_width("e4m3", "e4m3", 4096) == (49, -18)


def test_fp_mul_specials_and_flush():
    e4, e5 = formats.e4m3, formats.e5m2
    pf = mac.product_format(e5, e5)
    inf, ninf, zero, nzero, one = 0x7C, 0xFC, 0x00, 0x80, 0x3C
    p = mac.fp_mul([inf, inf, ninf, zero, nzero, 0x7E, one], [zero, one, one, 0xBC, one, one, nzero],
                   e5, e5)
    v = pf.decode(p)
    assert np.isnan(v[0]) and v[1] == np.inf and v[2] == -np.inf
    assert v[3] == 0 and np.signbit(v[3]) and v[4] == 0 and np.signbit(v[4])
    assert p[5] == pf.nan_code and v[6] == 0 and np.signbit(v[6])
    # flush: the smallest subnormal e4m3 (2^-9) reads as zero, sign kept
    p = mac.fp_mul([0x01, 0x81], [0x38, 0x38], e4, e4, flush_subnormals=True)
    assert list(p) == [0, 1 << (mac.product_format(e4, e4).bits - 1)]
    # fnuz: +0 * -1 is -0 in the product format (sign XOR)
    pf = mac.product_format("e4m3fnuz", "e4m3fnuz")
    p = mac.fp_mul([0x00], [0xC0], "e4m3fnuz", "e4m3fnuz")
    assert p[0] == 1 << (pf.bits - 1)


# ------------------------------------------------------------------------------------------
# FP MAC steps against the rational oracle
# ------------------------------------------------------------------------------------------

def random_acc_codes(rng, acc, n, scale_exp):
    """Accumulator codes: a third random bit patterns, the rest values near 2^scale_exp."""
    codes = rng.integers(0, 1 << acc.bits, n)
    near = rng.standard_normal(n) * np.exp2(rng.integers(scale_exp - 12, scale_exp + 6, n))
    k = rng.random(n) < 2 / 3
    codes[k] = acc.encode(near[k])
    # sprinkle specials and zeros
    sp = rng.integers(0, 40, n)
    sbit = 1 << (acc.bits - 1)
    codes[sp == 0] = 0
    codes[sp == 1] = sbit
    codes[sp == 2] = acc.inf_code
    codes[sp == 3] = acc.inf_code | sbit
    codes[sp == 4] = acc.nan_code
    codes[sp == 5] = rng.integers(1, 1 << acc.man_bits, (sp == 5).sum())     # subnormals
    codes[sp == 6] = acc.max_code
    return codes.astype(np.int64)


def oracle_step(an, bn, accn, acc_code, a_code, b_code, mode, saturate, flush):
    acc_fmt = formats.get(accn)
    av = oracle_values(an, [a_code])[0]
    bv = oracle_values(bn, [b_code])[0]
    cv = oracle_values(accn, [acc_code])[0]
    if flush:
        av, bv, cv = flush_val(av, an), flush_val(bv, bn), flush_val(cv, accn)
    if math.isnan(av) or math.isnan(bv) or math.isnan(cv):
        return "nan"
    if (math.isinf(av) and bv == 0) or (math.isinf(bv) and av == 0):
        return "nan"
    if math.isinf(av) or math.isinf(bv):
        p = math.copysign(math.inf, av) * math.copysign(1.0, bv)
        psign = p < 0
    else:
        p = Fraction(av) * Fraction(bv)
        psign = (math.copysign(1, av) * math.copysign(1, bv)) < 0
    if mode == "two_roundings" and not isinstance(p, float):
        r = oracle_round(accn, p, psign, saturate, flush)
        pv = oracle_values(accn, [r])[0]
        psign = math.copysign(1, pv) < 0
        p = as_exact(pv)
    c = as_exact(cv)
    s = add_exact(c, p)
    zero_sign = (math.copysign(1, cv) < 0) and psign
    finite = not (isinstance(c, float) or isinstance(p, float))
    return oracle_round(accn, s, zero_sign, saturate and finite, flush)


CONFIGS = [("e4m3", "e4m3", "fp32"), ("e5m2", "e5m2", "fp16"), ("e4m3", "e5m2", "bf16"),
           ("e5m2", "e4m3", "fp32"), ("e2m1", "e2m1", "fp16"), ("e3m2", "e2m3", "bf16"),
           ("e5m2", "e5m2", "bf16"), ("e4m3", "e4m3", "fp16")]


@pytest.mark.parametrize("mode", ["fused", "two_roundings"])
@pytest.mark.parametrize("an,bn,accn", CONFIGS)
@pytest.mark.parametrize("saturate,flush", [(False, False), (True, True)])
def test_fp_mac_step_vs_oracle(an, bn, accn, mode, saturate, flush):
    rng = np.random.default_rng(zlib.crc32(f"{an}{bn}{accn}{mode}{saturate}".encode()))
    a, b, acc = formats.get(an), formats.get(bn), formats.get(accn)
    n = 1500
    A = rng.integers(0, 1 << a.bits, n)
    B = rng.integers(0, 1 << b.bits, n)
    pexp = (a.emax + b.emin) // 2 if rng.random() < 0.5 else a.emin + b.emin
    C = random_acc_codes(rng, acc, n, pexp)
    got = mac.fp_mac_step(C, A, B, a, b, acc, mode, flush, saturate)
    assert got.dtype == acc.code_dtype
    want = [oracle_step(an, bn, accn, c, x, y, mode, saturate, flush)
            for c, x, y in zip(C.tolist(), A.tolist(), B.tolist())]
    check_codes(got, want, acc)


def test_round_sum_ties_and_double_rounding_hazard():
    """Sums whose float64 rounding lands on an fp32 midpoint must still round correctly."""
    f32 = formats.fp32
    one = 1.0
    half_ulp = 2.0 ** -24
    # exact 1 + 2^-24 + 2^-80: float64 rounds to the midpoint 1 + 2^-24, the exact value is above
    x = np.array([one + half_ulp, one + half_ulp, one + half_ulp])
    y = np.array([2.0 ** -80, -2.0 ** -80, 0.0])
    got = mac.round_sum(x, y, f32)
    assert list(got) == [0x3F800001, 0x3F800000, 0x3F800000]
    # zero signs
    z = mac.round_sum([0.0, -0.0, -0.0, 1.5, -1e-60], [-0.0, -0.0, 0.0, -1.5, 0.0], f32)
    assert list(z) == [0, 0x80000000, 0, 0, 0x80000000]


# ------------------------------------------------------------------------------------------
# sequences: fused / two_roundings / Kulisch against the oracle
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("an,bn,accn", [("e4m3", "e4m3", "fp32"), ("e5m2", "e5m2", "fp16"),
                                        ("e4m3", "e5m2", "bf16"), ("e2m1", "e2m1", "bf16")])
@pytest.mark.parametrize("saturate", [False, True])
def test_kulisch_sequences_vs_oracle(an, bn, accn, saturate):
    rng = np.random.default_rng(7)
    a, b, acc = formats.get(an), formats.get(bn), formats.get(accn)
    n, k = 400, 12
    A = rng.integers(0, 1 << a.bits, (n, k))
    B = rng.integers(0, 1 << b.bits, (n, k))
    # keep most sequences free of specials so that the rounding is exercised
    clean = rng.random(n) < 0.8
    for fmt, M in ((a, A), (b, B)):
        vals = fmt.decode(M)
        bad = ~np.isfinite(vals) & clean[:, None]
        M[bad] = 0
    got = mac.fp_mac(A, B, a, b, acc, "kulisch", saturate=saturate, terms=16, partials=True)
    for i in range(n):
        exact = Fraction(0)
        nan = pinf = ninf = False
        allneg0 = True
        for j in range(k):
            x = oracle_values(an, [A[i, j]])[0]
            y = oracle_values(bn, [B[i, j]])[0]
            if math.isnan(x) or math.isnan(y) or (math.isinf(x) and y == 0) or \
                    (math.isinf(y) and x == 0):
                nan = True
            elif math.isinf(x) or math.isinf(y):
                if (x < 0) != (y < 0):
                    ninf = True
                else:
                    pinf = True
            else:
                exact += Fraction(x) * Fraction(y)
                if not ((x * y == 0) and (math.copysign(1, x) * math.copysign(1, y) < 0)):
                    allneg0 = False
            if nan or (pinf and ninf):
                want = "nan"
            elif pinf or ninf:
                want = oracle_round(accn, math.inf if pinf else -math.inf, False)
            else:
                want = oracle_round(accn, exact, allneg0, saturate)
            check_codes(got[i, j:j + 1], [want], acc)


@pytest.mark.parametrize("mode", ["fused", "two_roundings"])
def test_fp_mac_sequence_is_repeated_step(mode):
    rng = np.random.default_rng(3)
    A = rng.integers(0, 256, (300, 9))
    B = rng.integers(0, 256, (300, 9))
    got = mac.fp_mac(A, B, "e4m3", "e5m2", "fp16", mode, partials=True)
    acc = np.full(300, 0x8000)                   # a new sum starts from -0
    for j in range(9):
        acc = mac.fp_mac_step(acc, A[:, j], B[:, j], "e4m3", "e5m2", "fp16", mode)
        assert np.array_equal(got[:, j], acc)


def test_directed_sequences():
    e4, e5, f32, f16 = formats.e4m3, formats.e5m2, formats.fp32, formats.fp16
    enc = e4.encode
    # cancellation to exact zero: 2*1 - 1*2 -> +0 in every mode; -0 only from all -0 terms
    A = np.array([[enc(2.0), enc(-1.0)], [enc(-0.0), enc(0.0)], [enc(-0.0), enc(-0.0)]])
    B = np.array([[enc(1.0), enc(2.0)], [enc(1.0), enc(1.0)], [enc(1.0), enc(1.0)]])
    for mode in mac.FP_MAC_MODES:
        r = mac.fp_mac(A, B, e4, e4, f32, mode)
        assert list(r) == [0, 0, 0x80000000]        # x - x = +0, -0 + +0 = +0, -0 + -0 = -0
    # overflow to Inf / saturate in fp16: 448*448 = 200704 > 65504
    A = np.array([[enc(448.0)]])
    for mode in mac.FP_MAC_MODES:
        assert mac.fp_mac(A, A, e4, e4, f16, mode)[0] == f16.inf_code
        assert mac.fp_mac(A, A, e4, e4, f16, mode, saturate=True)[0] == f16.max_code
    # Inf - Inf = NaN, NaN propagates, Inf * 0 = NaN
    A = np.array([[0x7C, 0xFC], [0x7F, 0x3C], [0x7C, 0x3C]])
    B = np.array([[0x3C, 0x3C], [0x3C, 0x3C], [0x00, 0x3C]])
    for mode in mac.FP_MAC_MODES:
        r = mac.fp_mac(A, B, e5, e5, f32, mode)
        assert (r == f32.nan_code).all()
    # runs of subnormals accumulate exactly: 100 x 2^-9 * 2^-9 = 100 * 2^-18 in fp32
    A = np.full((1, 100), 0x01)
    for mode in mac.FP_MAC_MODES:
        r = mac.fp_mac(A, A, e4, e4, f32, mode, terms=128)
        assert f32.decode(r)[0] == 100 * 2.0 ** -18
        assert mac.fp_mac(A, A, e4, e4, f32, mode, flush_subnormals=True, terms=128)[0] == 0
    # alternating huge and tiny terms: fused loses the tiny ones in fp16, Kulisch keeps them
    A = np.array([[enc(448.0), enc(2.0 ** -9), enc(-448.0), enc(2.0 ** -9)]])
    B = np.array([[enc(128.0), enc(2.0 ** -6), enc(128.0), enc(2.0 ** -6)]])
    r_fused = f32.decode(mac.fp_mac(A, B, e4, e4, f32, "fused"))[0]
    r_k = f32.decode(mac.fp_mac(A, B, e4, e4, f32, "kulisch"))[0]
    assert r_k == 2 * 2.0 ** -15
    assert r_fused == 2.0 ** -15


def test_mac_stream_valid_and_clear():
    e4 = formats.e4m3
    one, two = int(e4.encode(1.0)), int(e4.encode(2.0))
    valid = np.array([1, 1, 0, 1, 0, 1, 1], bool)[:, None]
    clear = np.array([1, 0, 0, 1, 1, 0, 1], bool)[:, None]
    a = np.array([one, two, 0, two, 0, one, two])[:, None]
    out = mac.mac_stream(valid, clear, a, a, kind="fp", a_format=e4, b_format=e4,
                         acc_format="fp32")
    assert list(formats.fp32.decode(out[:, 0])) == [1, 5, 5, 4, 0, 1, 4]
    out = mac.mac_stream(valid, clear, a, a, kind="fp", a_format=e4, b_format=e4,
                         acc_format="fp32", mode="kulisch")
    assert list(formats.fp32.decode(out[:, 0])) == [1, 5, 5, 4, 0, 1, 4]
    ia = np.array([1, 2, 0, 2, 0, 1, 2])[:, None]
    out = mac.mac_stream(valid, clear, ia, ia, kind="int", a_format="int8", b_format="int8")
    assert list(out[:, 0]) == [1, 5, 5, 4, 0, 1, 4]


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(kind="fp", acc_fromat="fp16"), TypeError,
     r"^mac_stream\(kind='fp'\) takes the parameters a_format, b_format, acc_format, mode, "
     r"flush_subnormals, saturate, terms, rounding, random_bits, sr_bits, not 'acc_fromat'$"),
    (dict(kind="int", acc_format="fp16"), TypeError,
     r"^mac_stream\(kind='int'\) takes the parameters a_format, b_format, acc_bits, overflow, "
     r"not 'acc_format'$"),
    (dict(kind="float"), ValueError, r"^kind must be one of int, fp, not 'float'$"),
])
def test_mac_stream_refuses_unknown_parameters(kw, exc, msg):
    one = np.ones((2, 1), bool)
    with pytest.raises(exc, match=msg):
        mac.mac_stream(one, one, one.astype(int), one.astype(int), a_format="int8",
                       b_format="int8", **kw)


# ------------------------------------------------------------------------------------------
# integer MAC
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("an,bn", [("int8", "int8"), ("uint8", "uint8"), ("int8", "uint8"),
                                   ("uint4", "int16"), ("int2", "uint2"), ("int16", "int16")])
@pytest.mark.parametrize("acc_bits,overflow", [(32, "wrap"), (20, "wrap"), (20, "saturate"),
                                               (64, "wrap"), (64, "saturate"), (2, "saturate")])
def test_int_mac_vs_python(an, bn, acc_bits, overflow):
    rng = np.random.default_rng(acc_bits)
    a, b = formats.get(an), formats.get(bn)
    n, k = 200, 40
    A = rng.integers(0, 1 << a.bits, (n, k))
    B = rng.integers(0, 1 << b.bits, (n, k))
    start = rng.integers(-(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1, n, dtype=np.int64,
                         endpoint=True)
    av, bv = A.tolist(), B.tolist()

    def val(code, fmt):
        return code - (1 << fmt.bits) if fmt.signed and code >= 1 << (fmt.bits - 1) else code

    acc = start
    for j in range(k):
        acc = mac.int_mac_step(acc, A[:, j], B[:, j], a, b, acc_bits, overflow)
    for i in range(n):
        s = int(start[i])
        for j in range(k):
            s += val(av[i][j], a) * val(bv[i][j], b)
            if overflow == "wrap":
                s = (s + (1 << (acc_bits - 1))) % (1 << acc_bits) - (1 << (acc_bits - 1))
            else:
                s = min(max(s, -(1 << (acc_bits - 1))), (1 << (acc_bits - 1)) - 1)
        assert int(acc[i]) == s


def test_int_product_bits():
    assert mac.int_product_bits("int8", "int8") == 16      # -128 * -128 = 16384 needs 16 bits
    assert mac.int_product_bits("uint8", "uint8") == 17
    assert mac.int_product_bits("int8", "uint8") == 16
    assert mac.int_product_range("int8", "uint8") == (-128 * 255, 127 * 255)


def test_errors():
    with pytest.raises(ValueError, match=r"^a_format must be an integer format int2\.\.int16 or "
                                         r"uint2\.\.uint16, not 'int17'$"):
        mac.int_mac_step(0, 0, 0, "int17", "int8")
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer from 2 to 64, not 65$"):
        mac.int_mac_step(0, 0, 0, "int8", "int8", acc_bits=65)
    with pytest.raises(ValueError, match=r"^overflow must be one of wrap, saturate, not 'clip'$"):
        mac.int_mac_step(0, 0, 0, "int8", "int8", overflow="clip")
    with pytest.raises(ValueError, match=r"^b_format must be a signed float format of at most 16 "
                                         r"bits .*not 'e8m0'$"):
        mac.fp_mul(0, 0, "e4m3", "e8m0")
    with pytest.raises(ValueError, match=r"^acc_format must be an IEEE-style float format "
                                         r"\(fp32, fp16, bf16, eXmY\), not 'e4m3'$"):
        mac.fp_mac_step(0, 0, 0, "e4m3", "e4m3", "e4m3")
    with pytest.raises(ValueError, match=r"^mode must be one of fused, two_roundings, kulisch, "
                                         r"not 'exact'$"):
        mac.fp_mac_step(0, 0, 0, "e4m3", "e4m3", "fp32", "exact")
    with pytest.raises(ValueError, match=r"^terms must be an integer from 1 to 4294967296, not 0$"):
        mac.kulisch_width("e4m3", "e4m3", 0)
    with pytest.raises(ValueError, match=r"^the exact product of bf16 x bf16 needs 10 "):
        mac.product_format("bf16", "bf16")


# ------------------------------------------------------------------------------------------
# mutation-testing siblings (benchmarks/mutation.py): boundaries no test above reached


@pytest.mark.parametrize("an,bn", [("e3m1", "e3m1"), ("e2m1", "e3m4"), ("e4m3", "e3m6")])
def test_product_format_top_exponent_exactly_used(an, bn):
    # pairs whose largest product needs the product format's top exponent (emax): still exact
    a, b = formats.get(an), formats.get(bn)
    pf = mac.product_format(a, b)
    assert pf.emax == math.floor(math.log2(a.max * b.max))
    A, B = np.meshgrid(a.all_codes(), b.all_codes(), indexing="ij")
    x, y = a.decode(A.ravel()), b.decode(B.ravel())
    got = pf.decode(mac.fp_mul(A.ravel(), B.ravel(), a, b))
    fin = np.isfinite(x) & np.isfinite(y)
    for xv, yv, gv in zip(x[fin].tolist(), y[fin].tolist(), got[fin].tolist()):
        assert Fraction(gv) == Fraction(xv) * Fraction(yv)


def test_int_mac_step_saturates_at_64_bits():
    # acc_bits=64: the sum can leave int64; saturation clamps to [-2^63, 2^63 - 1] (Python ints)
    hi, lo = 2 ** 63 - 1, -2 ** 63
    i8 = formats.int8
    acc = np.array([hi - 100, lo + 100, hi - 100, lo + 100, hi, lo, 5], dtype=np.int64)
    a = i8.to_codes(np.array([127, 127, -128, -128, 1, -1, -128]))
    b = i8.to_codes(np.array([127, -128, -127, 127, 0, 1, 127]))
    got = mac.int_mac_step(acc, a, b, i8, i8, 64, "saturate")
    want = [min(max(int(s) + int(x) * int(y), lo), hi)
            for s, x, y in zip(acc, i8.decode(a), i8.decode(b))]
    assert got.tolist() == want
    assert want == [hi, lo, hi, lo, hi, lo, 5 - 128 * 127]


def _rne32(q):
    """Exact rational (normal FP32 range) -> nearest FP32, ties to even."""
    e = math.floor(math.log2(q))
    while Fraction(2) ** e > q:
        e -= 1
    while Fraction(2) ** (e + 1) <= q:
        e += 1
    ulp = Fraction(2) ** (e - 23)
    k = math.floor(q / ulp)
    r = q / ulp - k
    k += r > Fraction(1, 2) or (r == Fraction(1, 2) and k % 2 == 1)
    return float(k * ulp)


def test_kulisch_read_of_wide_registers():
    # registers beyond 2^84 (e.g. bf16 products) leave the two-halves fast path: a value just
    # above a tie with its sticky bit far below 53 bits must still round up
    K = 100
    cases = [2 ** K + 2 ** (K - 24) + 2 ** 33, 2 ** K + 2 ** (K - 24), 2 ** K + 2 ** (K - 24) - 1,
             3 * 2 ** 120 + 1, (2 ** 24 - 1) * 2 ** 90 + 2 ** 65, 2 ** 83 + 2 ** 59 + 1]
    fixed = np.array(cases + [-c for c in cases], dtype=object)
    st = mac.KulischState(fixed, np.zeros(fixed.shape, dtype=np.int64))
    got = formats.fp32.decode(mac.kulisch_read(st, "fp32", lsb_exp=-K))
    want = [_rne32(Fraction(c, 2 ** K)) for c in cases]
    assert got.tolist() == want + [-w for w in want]
    assert want[0] == 1 + 2 ** -23 and want[1] == 1.0


def test_int_operand_check_of_unknown_names():
    msg = r"^a_format must be an integer format int2\.\.int16 or uint2\.\.uint16, not "
    with pytest.raises(ValueError, match=msg + r"'int99x'$"):
        mac.check_int_operand("int99x", "a_format")
    with pytest.raises(ValueError, match=msg + r"'e4m3'$"):
        mac.check_int_operand("e4m3", "a_format")


def test_product_format_limits_8_exponent_and_23_mantissa_bits():
    # at the limits: 23 mantissa bits (13 + 9 + 1) and 8 exponent bits are allowed and exact
    for an, bn, man in (("e2m13", "e2m9", 23), ("fp16", "e3m12", 23), ("e7m3", "e6m3", 7)):
        a, b = formats.get(an), formats.get(bn)
        pf = mac.product_format(a, b)
        assert pf.man_bits == man and pf.exp_bits <= 8
        x = np.array([a.max, -a.min_subnormal, a.min_normal])
        y = np.array([b.max, b.max, -b.min_subnormal])
        got = pf.decode(mac.fp_mul(a.encode(x), b.encode(y), a, b))
        assert [Fraction(g) for g in got] == [Fraction(p) * Fraction(q) for p, q in zip(x, y)]
    # just beyond: 9 exponent bits
    for an, bn, e, m in (("bf16", "e4m3", 9, 11), ("e7m3", "e7m3", 9, 7)):
        with pytest.raises(ValueError, match=rf"^the exact product of {an} x {bn} needs {e} exponent and "
                                             rf"{m} mantissa bits; product formats are limited to 8 and 23$"):
            mac.product_format(an, bn)


def test_acc_format_check_of_unknown_names():
    with pytest.raises(ValueError, match=r"^acc_format must be an IEEE-style float format \(fp32, fp16, "
                                         r"bf16, eXmY\), not 'fp99x'$"):
        mac.check_acc_format("fp99x")


def test_float_operand_check_of_unknown_names():
    with pytest.raises(ValueError, match=r"^b_format must be a signed float format of at most 16 bits "
                                         r"\(e4m3, .*\), not 'e4m3x'$"):
        mac.check_float_operand("e4m3x", "b_format")


def test_int_mac_defaults():
    # documented defaults: acc_bits=32 wrapping, final values only (partials=False)
    i8 = formats.int8
    one = i8.to_codes(np.array([1]))
    assert mac.int_mac_step(np.array([2 ** 31 - 1]), one, one, i8, i8).tolist() == [-2 ** 31]
    a = i8.to_codes(np.array([[1, 2, 3], [4, 5, 6]]))
    got = mac.int_mac(a, a, i8, i8)
    assert got.shape == (2,) and got.tolist() == [14, 77]


def test_round_sum_double_rounding_hazard_negative():
    # the mirror of test_round_sum_ties_and_double_rounding_hazard: the round-to-odd step must
    # truncate toward zero for negative sums too
    f32 = formats.fp32
    x = -np.array([1.0 + 2.0 ** -24] * 3)
    y = np.array([-2.0 ** -80, 2.0 ** -80, 0.0])
    assert list(mac.round_sum(x, y, f32)) == [0xBF800001, 0xBF800000, 0xBF800000]


def test_fp_accumulate_and_mac_stream_defaults():
    # documented defaults: no flushing of subnormals, no saturation (overflow gives Inf)
    f16, e5 = formats.fp16, formats.e5m2
    pf = mac.product_format(e5, e5)
    tiny = mac.fp_mul(e5.encode(np.float32(2.0 ** -16)), e5.encode(np.float32(1.0)), e5, e5)
    assert f16.decode(mac.fp_accumulate(np.uint16(0), tiny, pf, "fp16")) == 2.0 ** -16   # subnormal in fp16
    big = mac.fp_mul(e5.encode(np.float32(256.0)), e5.encode(np.float32(256.0)), e5, e5)
    assert f16.decode(mac.fp_accumulate(f16.encode(np.float32(65504.0)), big, pf, "fp16")) == np.inf
    c = e5.encode(np.full((2, 1), 256.0, np.float32))
    out = mac.mac_stream(np.ones((2, 1), bool), np.zeros((2, 1), bool), c, c, kind="fp",
                         a_format=e5, b_format=e5, acc_format="fp16")
    assert f16.decode(out[:, 0]).tolist() == [np.inf, np.inf]               # 2^16 > fp16 max


# the accumulator at and around both limits, for widths up to 64 (oracle: Python integers)

BOUNDARY_WIDTHS = [2, 3, 8, 16, 31, 32, 33, 53, 54, 55, 62, 63, 64]
PAIRS_INT = [(1, 1), (1, -1), (5, 1), (-5, 1), (-128, -128), (127, -128), (-128, 127), (0, 77)]


def _py_step(acc, p, acc_bits, overflow):
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    s = acc + p
    if overflow == "saturate":
        return min(max(s, lo), hi)
    return (s - lo) % (1 << acc_bits) + lo


@pytest.mark.parametrize("acc_bits", BOUNDARY_WIDTHS)
@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_int_mac_step_at_the_limits(acc_bits, overflow):
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    starts = sorted({v for v in (lo, lo + 1, lo + 4, lo + 5, lo + 16383, -1, 0, 1, hi - 16384,
                                 hi - 5, hi - 4, hi - 1, hi) if lo <= v <= hi})
    acc = [s for s in starts for _ in PAIRS_INT]
    av = [a for _ in starts for a, _ in PAIRS_INT]
    bv = [b for _ in starts for _, b in PAIRS_INT]
    i8 = formats.int8
    got = mac.int_mac_step(np.array(acc, np.int64), i8.to_codes(np.array(av)),
                           i8.to_codes(np.array(bv)), "int8", "int8", acc_bits, overflow)
    assert got.dtype == np.int64
    assert got.tolist() == [_py_step(s, a * b, acc_bits, overflow) for s, a, b in zip(acc, av, bv)]


@pytest.mark.parametrize("acc_bits", [8, 16, 32, 53, 63, 64])
def test_int_mac_wrap_and_saturate_directed(acc_bits):
    """Issue 14: a sum landing exactly on 2^(acc_bits-1) wraps to -2^(acc_bits-1); one below
    -2^(acc_bits-1) wraps to the maximum; saturation stops exactly at +-max."""
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    one, minus_one, five = 1, 0xFF, 5

    def step(acc, a, b, overflow):
        return int(mac.int_mac_step([acc], [a], [b], "int8", "int8", acc_bits, overflow)[0])

    assert step(hi, one, one, "wrap") == lo                  # hi + 1 = 2^(acc_bits-1) -> -2^..
    assert step(hi, 127, one, "wrap") == lo + 126
    assert step(lo, one, minus_one, "wrap") == hi            # -2^(acc_bits-1) - 1 -> max
    assert step(lo, 0x80, one, "wrap") == hi - 127           # lo - 128
    assert step(hi - 5, five, one, "saturate") == hi         # exactly +max
    assert step(hi - 4, five, one, "saturate") == hi         # max + 1 -> max
    assert step(lo + 5, five, minus_one, "saturate") == lo   # exactly -2^(acc_bits-1)
    assert step(lo + 4, five, minus_one, "saturate") == lo
    assert step(lo, one, one, "saturate") == lo + 1
    if acc_bits == 8:
        assert mac.int_mac_step([127], [1], [1], "int8", "int8", acc_bits=8,
                                overflow="wrap").tolist() == [-128]


@pytest.mark.parametrize("acc_bits", [62, 63, 64])
@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_int_mac_and_stream_wide_accumulators(acc_bits, overflow):
    """int_mac / mac_stream at 62..64 bits (acc_bits=63 used to raise OverflowError)."""
    rng = np.random.default_rng(acc_bits)
    a = rng.integers(0, 1 << 16, (7, 50))
    b = rng.integers(0, 1 << 16, (7, 50))
    i16 = formats.int16
    av, bv = i16.decode(a).tolist(), i16.decode(b).tolist()
    want = []
    for i in range(7):
        s, row = 0, []
        for k in range(50):
            s = _py_step(s, av[i][k] * bv[i][k], acc_bits, overflow)
            row.append(s)
        want.append(row)
    got = mac.int_mac(a, b, "int16", "int16", acc_bits=acc_bits, overflow=overflow, partials=True)
    assert got.tolist() == want
    valid = np.ones((50, 7), bool)
    clear = np.zeros((50, 7), bool)
    out = mac.mac_stream(valid, clear, a.T, b.T, kind="int", a_format="int16", b_format="int16",
                         acc_bits=acc_bits, overflow=overflow)
    assert out.T.tolist() == want


def test_wrap_int_every_width():
    vals = [-(1 << 63), -(1 << 63) + 1, -(1 << 40) - 3, -1, 0, 1, (1 << 40) + 3, (1 << 63) - 1]
    for bits in range(1, 65):
        half = 1 << (bits - 1)
        want = [(v + half) % (1 << bits) - half for v in vals]
        assert mac.wrap_int(np.array(vals, np.int64), bits).tolist() == want
    assert mac.wrap_int(np.int64(128), 8).shape == ()


def test_product_format_refuses_products_beyond_float64():
    """Operands at the ends of their bias range have products float64 cannot hold: refused
    (the largest product exponent is computed in integers; max(A) * max(B) overflows)."""
    tiny = formats.float_format(2, 1, 1074, "finite")
    with pytest.raises(ValueError, match=r"^the exact products of e2m1finiteb1074 x "
                                         r"e2m1finiteb1074 \(magnitudes 2\^-2148 to 2\^-2140\) "
                                         r"are not all float64 numbers$"):
        mac.product_format(tiny, tiny)
    huge = formats.float_format(2, 1, -1020, "finite")
    with pytest.raises(ValueError, match=r"^the exact products of e2m1finiteb-1020 x "
                                         r"e2m1finiteb-1020 \(magnitudes 2\^2040 to 2\^2048\) "
                                         r"are not all float64 numbers$"):
        mac.product_format(huge, huge)
    # inside float64 the product format holds every product exactly
    f = formats.float_format(2, 1, 500, "finite")
    pf = mac.product_format(f, f)
    A, B = np.meshgrid(f.all_codes(), f.all_codes(), indexing="ij")
    got = pf.decode(mac.fp_mul(A.ravel(), B.ravel(), f, f))
    x = [Fraction(v) for v in f.decode(A.ravel()).tolist()]
    y = [Fraction(v) for v in f.decode(B.ravel()).tolist()]
    assert [Fraction(g) for g in got.tolist()] == [p * q for p, q in zip(x, y)]


def test_operand_checks_type_errors():
    with pytest.raises(TypeError, match=r"^a_format must be an integer format int2\.\.int16 or "
                                        r"uint2\.\.uint16, not 8$"):
        mac.int_mac_step(0, 0, 0, 8, "int8")
    with pytest.raises(TypeError, match=r"^b_format must be a signed float format of at most 16 "
                                        r"bits .*not None$"):
        mac.fp_mul(0, 0, "e4m3", None)
    with pytest.raises(TypeError, match=r"^acc_format must be an IEEE-style float format "
                                        r"\(fp32, fp16, bf16, eXmY\), not 32$"):
        mac.fp_mac_step(0, 0, 0, "e4m3", "e4m3", 32)
    with pytest.raises(TypeError, match=r"^acc_bits must be an integer, not 32\.0$"):
        mac.int_mac_step(0, 0, 0, "int8", "int8", acc_bits=32.0)
