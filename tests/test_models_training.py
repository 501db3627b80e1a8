"""Golden models of the training datapaths against independent oracles.

* stochastic rounding (FP MAC step, quantiser): exact rational arithmetic (``fractions``)
  implementing ``q = floor((floor(|x|/ulp * 2^N) + r) / 2^N) * ulp`` from scratch;
* RNE quantiser: ml_dtypes casts;
* chunked and Kahan accumulation: NumPy float16 / ml_dtypes bfloat16 scalar arithmetic (each
  operation computed in float32 and rounded once more, which is correctly rounded since
  24 >= 2p + 2 for p = 11 and 8: Figueroa, "When is double rounding innocuous?", SIGNUM 1995),
  with operands whose products are exact in the accumulator format.
"""

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from lowbit.models import formats, lfsr, mac, training


def _sr_oracle(x, fmt, r, n):
    """Code of the stochastic rounding of the exact rational ``x`` into ``fmt`` (IEEE style)."""
    if x == 0:
        return None
    mag = abs(x)
    e = max(math.floor(math.log2(mag)), fmt.emin)
    while Fraction(2) ** e > mag and e > fmt.emin:          # log2 of a Fraction can be off by 1
        e -= 1
    while Fraction(2) ** (e + 1) <= mag:
        e += 1
    ulp = Fraction(2) ** (e - fmt.man_bits)
    q = ((math.floor(mag / ulp * 2 ** n) + r) >> n) * ulp
    v = float(q) if x > 0 else -float(q)
    if abs(q) > Fraction(fmt.max):
        v = math.copysign(math.inf, v)
    return int(fmt.encode(np.array(v)))


@pytest.mark.parametrize("acc, n", [("fp32", 4), ("fp32", 16), ("fp16", 8), ("bf16", 8),
                                    ("bf16", 16)])
def test_sr_mac_step_against_fractions(acc, n):
    fmt = formats.get(acc)
    rng = np.random.default_rng(17)
    a = rng.integers(0, 256, 400)
    b = rng.integers(0, 256, 400)
    a = np.where((a & 0x7F) == 0x7F, 0x38, a)            # no NaN operands here
    b = np.where((b & 0x7F) == 0x7C, 0x3C, b)            # no e5m2 Inf/NaN (exponent 11111)
    b = np.where((b & 0x7C) == 0x7C, 0x3C, b)
    accv = formats.get(acc).encode(rng.normal(0, 4, 400).astype(np.float32))
    r = rng.integers(0, 1 << n, 400)
    got = mac.fp_mac_step(accv, a, b, "e4m3", "e5m2", acc, rounding="stochastic",
                          random_bits=r, sr_bits=n)
    av, bv, cv = formats.e4m3.decode(a), formats.e5m2.decode(b), fmt.decode(accv)
    for i in range(400):
        x = Fraction(cv[i]) + Fraction(av[i]) * Fraction(bv[i])
        want = _sr_oracle(x, fmt, int(r[i]), n)
        if want is None:
            continue                                     # exact zero: sign rules, tested below
        assert int(got[i]) == want, (i, x)


def test_sr_mac_rne_unchanged_and_zero_bits_truncate():
    """r = 0 everywhere is truncation toward zero; r = 2^N - 1 with N large rounds up
    whenever inexact; rounding='nearest_even' is the old model bit for bit."""
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 0x7F, (2, 64, 32))
    rne = mac.fp_mac(a, b, "e4m3", "e4m3", "bf16")
    assert np.array_equal(rne, mac.fp_mac(a, b, "e4m3", "e4m3", "bf16",
                                          rounding="nearest_even"))
    tz = mac.fp_mac(a, b, "e4m3", "e4m3", "bf16", rounding="stochastic",
                    random_bits=np.zeros_like(a), sr_bits=8)
    # an independent truncating sum: products of positive e4m3 codes are positive
    x = formats.e4m3.decode(a) * formats.e4m3.decode(b)
    acc = np.zeros(64)
    for k in range(32):
        # exact in float64: both terms are multiples of 2^-18 (the smallest product LSB) and
        # below 2^23, so the sum has at most 41 significant bits
        acc = formats.bf16.decode(formats.bf16.encode(acc + x[:, k], rounding="toward_zero"))
    assert np.array_equal(formats.bf16.decode(tz), acc)


@pytest.mark.parametrize("call, msg", [
    (lambda: mac.fp_mac_step(0, 1, 1, "e4m3", "e4m3", "fp32", rounding="stochastic",
                             random_bits=0, sr_bits=29),
     r"^sr_bits must be an integer from 1 to 28, not 29$"),
    (lambda: mac.fp_mac_step(0, 1, 1, "e4m3", "e4m3", "fp32", rounding="stochastic",
                             random_bits=16, sr_bits=4),
     r"^random_bits must lie in 0..15 for sr_bits=4, got values in 16..16$"),
    (lambda: mac.fp_mac_step(0, 1, 1, "e4m3", "e4m3", "fp32", random_bits=1),
     r"^random_bits is only used with rounding='stochastic', not with rounding='nearest_even'$"),
    (lambda: mac.fp_mac_step(0, 1, 1, "e4m3", "e4m3", "fp32", rounding="up"),
     r"^rounding must be one of nearest_even, stochastic, not 'up'$"),
    (lambda: training.chunked_mac([1], [1], "e4m3", "e4m3", chunk_length=0),
     r"^chunk_length must be an integer from 1 to 65536, not 0$"),
    (lambda: training.chunked_mac([1], [1], "e4m3", "e4m3", chunk_length=65537),
     r"^chunk_length must be an integer from 1 to 65536, not 65537$"),
    (lambda: training.sr_quantise([1], "fp16", "e4m3", random_bits=0),
     r"^in_format must be fp32 or bf16, not 'fp16'$"),
    (lambda: training.sr_quantise([1], "fp32", "fp16", random_bits=0),
     r"^out_format must be a signed float format of at most 8 bits"),
])
def test_bad_input(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


def test_max_sr_bits():
    assert [mac.max_sr_bits(f) for f in ("fp32", "fp16", "bf16")] == [28, 32, 32]


@pytest.mark.parametrize("out", ["e4m3", "e5m2", "e2m3", "e3m2", "e2m1"])
def test_quantise_rne_against_ml_dtypes(out):
    rng = np.random.default_rng(5)
    x = (rng.normal(0, 1, 20000) * 2.0 ** rng.integers(-12, 12, 20000)).astype(np.float32)
    dt = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2,
          "e2m3": ml_dtypes.float6_e2m3fn, "e3m2": ml_dtypes.float6_e3m2fn,
          "e2m1": ml_dtypes.float4_e2m1fn}[out]
    fmt = formats.get(out)
    x = np.clip(x, -fmt.max, fmt.max)                     # ml_dtypes overflow conventions differ
    got = training.sr_quantise(x.view(np.uint32), "fp32", out, rounding="nearest_even")
    want = formats.get(out).encode(x.astype(dt).astype(np.float64))
    assert np.array_equal(got, want)


@pytest.mark.parametrize("inp, out, n", [("fp32", "e4m3", 8), ("bf16", "e5m2", 4),
                                         ("fp32", "e2m1", 16), ("bf16", "e3m2", 8)])
def test_quantise_sr_against_fractions(inp, out, n):
    fin, fout = formats.get(inp), formats.get(out)
    rng = np.random.default_rng(9)
    codes = fin.encode(rng.normal(0, 1, 3000) * 2.0 ** rng.integers(-10, 4, 3000))
    r = lfsr.lfsr_stream(16, 0xACE1, n, 3000)
    got = training.sr_quantise(codes, inp, out, random_bits=r, sr_bits=n, saturate=True)
    vals = fin.decode(codes)
    for i in range(3000):
        x = Fraction(vals[i])
        if x == 0:
            continue
        mag = abs(x)
        e = fout.emin
        while Fraction(2) ** (e + 1) <= mag:
            e += 1
        ulp = Fraction(2) ** (e - fout.man_bits)
        q = min(((math.floor(mag / ulp * 2 ** n) + int(r[i])) >> n) * ulp, Fraction(fout.max))
        want = int(fout.encode(np.array(float(q) if x > 0 else -float(q))))
        assert int(got[i]) == want


def test_quantise_specials():
    f32 = np.array([np.nan, np.inf, -np.inf, 1e30, -0.0], dtype=np.float32).view(np.uint32)
    e4 = training.sr_quantise(f32, "fp32", "e4m3", random_bits=0)
    assert list(e4) == [0x7F, 0x7F, 0xFF, 0x7F, 0x80]          # fn: overflow and Inf -> NaN
    e4s = training.sr_quantise(f32, "fp32", "e4m3", random_bits=0, saturate=True)
    assert list(e4s) == [0x7F, 0x7E, 0xFE, 0x7E, 0x80]
    e2 = training.sr_quantise(f32, "fp32", "e2m1", random_bits=0)
    assert list(e2) == [0x7, 0x7, 0xF, 0x7, 0x8]                # no NaN: +max; Inf clamps


def _products(rng, shape):
    """e4m3 codes with |value| < 256 (products exact in fp16: 7 significand bits, 2^-18..2^16)
    and exact in bf16 (7 fraction bits)."""
    a = rng.integers(0, 0x70, shape) | (rng.integers(0, 2, shape) << 7)
    b = rng.integers(0, 0x70, shape) | (rng.integers(0, 2, shape) << 7)
    return a, b


@pytest.mark.parametrize("acc, dt", [("fp16", np.float16), ("bf16", ml_dtypes.bfloat16)])
@pytest.mark.parametrize("cl", [1, 7, 32])
def test_chunked_against_float_arithmetic(acc, dt, cl):
    rng = np.random.default_rng(cl)
    a, b = _products(rng, (8, 100))
    got = training.chunked_mac(a, b, "e4m3", "e4m3", acc, cl)
    p = (formats.e4m3.decode(a) * formats.e4m3.decode(b)).astype(dt)
    fmt = formats.get(acc)
    for row in range(8):
        outer = dt(-0.0)
        for k0 in range(0, 100, cl):
            inner = dt(-0.0)
            for k in range(k0, min(k0 + cl, 100)):
                inner = dt(inner + p[row, k])
            outer = dt(outer + inner)
        assert int(got[row]) == int(fmt.encode(np.float64(outer)))


@pytest.mark.parametrize("acc, dt", [("fp16", np.float16), ("bf16", ml_dtypes.bfloat16)])
def test_kahan_against_float_arithmetic(acc, dt):
    rng = np.random.default_rng(1)
    a, b = _products(rng, (8, 200))
    s_got = training.kahan_mac(a, b, "e4m3", "e4m3", acc)
    p = (formats.e4m3.decode(a) * formats.e4m3.decode(b)).astype(dt)
    fmt = formats.get(acc)
    with np.errstate(invalid="ignore", over="ignore"):
        for row in range(8):
            s, c = dt(-0.0), dt(0.0)
            for k in range(200):
                y = dt(p[row, k] - c)
                t = dt(s + y)
                c = dt(dt(t - s) - y)
                s = t
            want = fmt.encode(np.float64(s)) if not np.isnan(np.float64(s)) else fmt.nan_code
            assert int(s_got[row]) == int(want)


def test_kahan_and_chunks_beat_swamping():
    """4096 * 2^-11 + 1 in fp16 (exact: 3): the plain sum reaches 1 after 2048 terms and then
    stays there (each 2^-11 is half an ULP of 1, a tie to even), so it ends at 2; chunked
    (CL = 64: chunk sums 2^-5, exact) and Kahan sums give 3 exactly."""
    one, tiny = 0x38, 0x08                             # e4m3 1.0 and 2^-6 (field 1, man 0)
    a = np.array([tiny] * 4096 + [one])
    b = np.array([0x10] * 4096 + [one])                # e4m3 2^-5: tiny * 2^-5 = 2^-11
    assert formats.e4m3.decode(np.array([0x08, 0x10])).tolist() == [2.0 ** -6, 2.0 ** -5]
    plain = mac.fp_mac(a, b, "e4m3", "e4m3", "fp16")
    assert formats.fp16.decode(plain) == 2.0
    assert formats.fp16.decode(training.chunked_mac(a, b, "e4m3", "e4m3", "fp16", 64)) == 3.0
    assert formats.fp16.decode(training.kahan_mac(a, b, "e4m3", "e4m3", "fp16")) == 3.0
