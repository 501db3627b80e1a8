# amaranth: UnusedElaboratable=no
"""SharedExpAdder / MxDotUnit / BfpAdder in Amaranth's simulator against the golden model."""

import dataclasses
import pathlib

import numpy as np
import pytest
from amaranth.sim import Simulator

from lowbit.hdl.bfp_adder import BfpAdder
from lowbit.hdl.catalog import get_unit
from lowbit.hdl.manifest import manifest, ports
from lowbit.hdl.mx_dot import MxDotUnit
from lowbit.hdl.shared_exp_adder import SharedExpAdder, pack_terms
from lowbit.models import formats, mx
from lowbit.sim.bench_shared_exp import directed_blocks, random_terms
from lowbit.models import shared_exp as se

RNG = np.random.default_rng(99)


def run_adder(dut, A, B, acc):
    fa, fb = dut.a_format, dut.b_format
    pa = pack_terms(A, fa.bits)
    pb = pack_terms(B, fb.bits) if fb is not None else None
    got = []

    async def tb(ctx):
        for i in range(len(A)):
            ctx.set(dut.a, int(pa[i]))
            if pb is not None:
                ctx.set(dut.b, int(pb[i]))
            ctx.set(dut.acc, int(acc[i].view(np.uint32)))
            await ctx.delay(1e-9)
            got.append(ctx.get(dut.o))

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    return np.array(got, dtype=np.uint32)


@pytest.mark.parametrize("fa, fb, kw", [
    ("e4m3", "e4m3", dict(frac_bits=13, cut="floor", norm_frac_bits=13, norm_rounding="toward_zero")),
    ("e5m2", "e5m2", dict(frac_bits=20, cut="nearest_even", align="product")),
    ("e2m1", "e3m2", dict(frac_bits=6, cut="nearest_even_nosticky", sum_bits=9)),
    ("e2m3", "e4m3", dict(frac_bits=8, cut="toward_zero", norm_frac_bits=10)),
    # the accumulator outside the maximum: a separate rounding adder after the sum
    ("e4m3", "e4m3", dict(frac_bits=13, cut="floor", norm_frac_bits=13,
                          norm_rounding="toward_zero", acc_in_max=False)),
    ("e5m2", "e5m2", dict(frac_bits=20, cut="nearest_even", acc_in_max=False)),
])
def test_adder_matches_model(fa, fb, kw):
    dut = SharedExpAdder(fa, fb, n=4, pipeline_stages=0, **kw)
    fa, fb = formats.get(fa), formats.get(fb)
    V = 300
    A = random_terms(RNG, fa, (V, 4))
    B = random_terms(RNG, fb, (V, 4))
    acc = (RNG.standard_normal(V) * 2.0 ** RNG.integers(-20, 20, V)).astype(np.float32)
    acc[:30] = 0
    acc[30:35] = [np.inf, -np.inf, np.nan, 2.0 ** -130, -(2.0 ** 127)]
    want = se.fp32_codes(se.shared_exp_add(A.astype(fa.code_dtype), B.astype(fb.code_dtype),
                                           fa, fb, dut.config, acc=acc.astype(np.float64)))
    assert np.array_equal(run_adder(dut, A, B, acc), want)


def run_seq(dut, A, B, scales, first):
    fa, fb = dut.a_format, dut.b_format
    pa, pb = pack_terms(A, fa.bits), pack_terms(B, fb.bits)
    N = len(A)
    samples = []

    async def drive(ctx):
        for i in range(N):
            ctx.set(dut.a, int(pa[i]))
            ctx.set(dut.b, int(pb[i]))
            for name, v in scales.items():
                ctx.set(getattr(dut, name), int(v[i]))
            ctx.set(dut.valid, 1)
            ctx.set(dut.first, int(first[i]))
            await ctx.tick()
        ctx.set(dut.valid, 0)

    async def mon(ctx):
        for _ in range(N + dut.latency):
            await ctx.tick()
            samples.append(ctx.get(dut.o))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(drive)
    sim.add_testbench(mon)
    sim.run()
    return np.array(samples[dut.latency - 1:dut.latency - 1 + N], dtype=np.uint32)


def chain(dut, A, B, scale_exp, scale_nan, first):
    acc = np.zeros(1)
    out = []
    for i in range(len(A)):
        acc = np.zeros(1) if first[i] else acc
        r = se.shared_exp_add(A[i:i + 1].astype(dut.a_format.code_dtype),
                              B[i:i + 1].astype(dut.b_format.code_dtype), dut.a_format, dut.b_format,
                              dut.config, acc=acc, scale_exp=scale_exp[i:i + 1],
                              int_frac_bits=dut.int_frac_bits).astype(np.float64)
        acc = np.array([np.nan]) if scale_nan[i] else r
        out.append(se.fp32_codes(acc)[0])
    return np.array(out, dtype=np.uint32)


@pytest.mark.parametrize("elem", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8"])
def test_mx_dot_unit_matches_model(elem):
    dut = MxDotUnit(elem, k=4, pipeline_stages=1)
    fmt = mx.element_format(elem)
    N = 120
    A = random_terms(RNG, fmt, (N, 4))
    B = random_terms(RNG, fmt, (N, 4))
    sa = RNG.integers(118, 137, N)
    sb = RNG.integers(118, 137, N)
    sa[::17] = RNG.integers(0, 256, len(sa[::17]))
    for j, (a, b, s1, s2, _) in enumerate(directed_blocks(fmt, 4)):
        A[j], B[j], sa[j], sb[j] = a, b, s1, s2
    first = (RNG.random(N) < 0.3).astype(int)
    first[0] = 1
    want = chain(dut, A, B, (sa - 127) + (sb - 127), (sa == 255) | (sb == 255), first)
    got = run_seq(dut, A, B, {"a_scale": sa, "b_scale": sb}, first)
    assert np.array_equal(got, want)


def test_mx_dot_unit_equals_mx_dot_model():
    # one adder step per block, chained from +0: the model's mx_dot with datapath=config
    dut = MxDotUnit("mxfp8_e4m3", k=4, pipeline_stages=0)
    x = RNG.standard_normal((1, 24)).astype(np.float32)
    y = RNG.standard_normal((1, 24)).astype(np.float32)
    ea, sa = mx.quantize(x, "e4m3", k=4)
    eb, sb = mx.quantize(y, "e4m3", k=4)
    want = mx.mx_dot(ea, sa, eb, sb, "e4m3", k=4, datapath=dut.config)
    first = np.zeros(6, int)
    first[0] = 1
    got = run_seq(dut, ea.reshape(6, 4).astype(np.int64), eb.reshape(6, 4).astype(np.int64),
                  {"a_scale": sa[0], "b_scale": sb[0]}, first)
    assert got[-1] == want.view(np.uint32)[0]


@pytest.mark.parametrize("mant", ["int8", "int16"])
def test_bfp_adder_matches_model(mant):
    dut = BfpAdder(mant, n=4, pipeline_stages=0)
    fmt = formats.get(mant)
    N = 120
    A = RNG.integers(0, 1 << fmt.bits, (N, 4))
    B = RNG.integers(0, 1 << fmt.bits, (N, 4))
    ea = RNG.integers(-128, 128, N)
    eb = RNG.integers(-128, 128, N)
    ea[::2] = RNG.integers(-3, 4, len(ea[::2]))
    eb[::2] = RNG.integers(-3, 4, len(eb[::2]))
    first = (RNG.random(N) < 0.3).astype(int)
    first[0] = 1
    want = chain(dut, A, B, ea + eb, np.zeros(N, bool), first)
    got = run_seq(dut, A, B, {"a_exp": ea, "b_exp": eb}, first)
    assert np.array_equal(got, want)


def _near_pairs(n, rng):
    """FP32 accumulators and bf16 terms chosen to stress a two-operand adder: exponent
    differences 0..40 either way, near-cancellation, subnormals, zeros, both signs."""
    acc = rng.integers(0, 0x7F800000, n, dtype=np.int64).astype(np.uint32).view(np.float32)
    acc = acc * np.where(rng.random(n) < 0.5, -1, 1).astype(np.float32)
    shift = rng.integers(-40, 41, n).astype(np.float64)
    t = (acc.astype(np.float64) * 2.0 ** shift * (1 + rng.standard_normal(n) * 2.0 ** -6))
    t = np.where(rng.random(n) < 0.3, -acc.astype(np.float64) * (1 + rng.integers(-4, 5, n)
                                                                * 2.0 ** -8), t)
    codes = formats.bf16.encode(np.clip(t, -3e38, 3e38)).astype(np.int64)
    acc[:8] = [0.0, -0.0, 2.0 ** -149, -(2.0 ** -149), 2.0 ** -126, 3e38, -3e38, 1.0]
    codes[:8] = [0x0001, 0x8001, 0x0001, 0x0000, 0x8080, 0x7F7F, 0x7F7F, 0xBF80]
    return acc, codes


@pytest.mark.parametrize("nf, rounding", [(23, "nearest_even"), (13, "toward_zero"),
                                          (10, "nearest_even")])
def test_separate_rounding_adder_matches_model(nf, rounding):
    # n = 1 bf16 value per step, kept exactly (frac_bits 8 >= bf16's 7): the step is
    # acc + round(t), so this drives the two-operand adder (Datapath._fp_add) directly.
    dut = SharedExpAdder("bf16", None, n=1, frac_bits=8, norm_frac_bits=nf,
                         norm_rounding=rounding, acc_in_max=False, pipeline_stages=0)
    acc, codes = _near_pairs(1500, np.random.default_rng(nf))
    acc = se.add_round(acc.astype(np.float64), np.zeros(len(acc)), nf, rounding).astype(np.float32)
    want = se.fp32_codes(se.shared_exp_add(codes[:, None].astype(np.uint16), None, "bf16", None,
                                           dut.config, acc=acc.astype(np.float64)))
    got = run_adder(dut, codes[:, None], None, acc)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("mant", ["int8", "int16"])
def test_bfp_adder_builds_the_dfp_strategy(mant):
    # acc_in_max=False, sum_bits=32, exact frac_bits: the block's INT32 partial sum, one
    # rounding to FP32, one FP32 add: models.bfp.bfp_dot with chunk = n, overflow="wrap"
    from lowbit.models import bfp
    fmt = formats.get(mant)
    n = 8
    dut = BfpAdder(mant, n=n, sum_bits=32, acc_in_max=False, pipeline_stages=1)
    assert dataclasses.replace(dut.config, name="bfp") == bfp.bfp_config(fmt.bits, fmt.bits, n)
    blocks = 40
    lo, hi = -(1 << (fmt.bits - 1)), 1 << (fmt.bits - 1)
    A = RNG.integers(lo, hi, (blocks, n))
    B = RNG.integers(lo, hi, (blocks, n))
    A[:4], B[:4] = lo, lo                              # INT16: the INT32 sum wraps
    ea = RNG.integers(-6, 7, blocks)
    eb = RNG.integers(-6, 7, blocks)
    want = bfp.bfp_dot(A.reshape(-1), ea, B.reshape(-1), eb, mant, k=n, chunk=n)
    first = np.zeros(blocks, int)
    first[0] = 1
    mask = (1 << fmt.bits) - 1
    got = run_seq(dut, A & mask, B & mask, {"a_exp": ea & 0xFF, "b_exp": eb & 0xFF}, first)
    assert got[-1] == np.float32(want).view(np.uint32)


@pytest.mark.parametrize("factory, kw, msg", [
    (SharedExpAdder, dict(n=0), r"^n must be an integer from 1 to 64, not 0$"),
    (SharedExpAdder, dict(pipeline_stages=4), r"^pipeline_stages must be an integer from 0 to 3, not 4$"),
    (SharedExpAdder, dict(cut="up"), r"^cut must be one of toward_zero, floor, nearest_even, "),
    (SharedExpAdder, dict(acc_in_max=1), r"^acc_in_max must be True or False, not 1$"),
    (SharedExpAdder, dict(a_format="fp32"), r"^a_format must have at most 16 bits, not 32 \(fp32\)$"),
    (SharedExpAdder, dict(frac_bits=65), r"^frac_bits must be an integer from 0 to 64, not 65$"),
    (MxDotUnit, dict(k=65), r"^k must be an integer from 1 to 64, not 65$"),
    (MxDotUnit, dict(elem="fp8"), r"^elem must be one of mxfp8_e4m3, "),
    (MxDotUnit, dict(pipeline_stages=2), r"^pipeline_stages must be an integer from 0 to 1, not 2$"),
    (BfpAdder, dict(mantissa="int4"), r"^mantissa must be one of int8, int16, not 'int4'$"),
    (BfpAdder, dict(exp_bits=1), r"^exp_bits must be an integer from 2 to 10, not 1$"),
])
def test_parameter_validation(factory, kw, msg):
    with pytest.raises(ValueError, match=msg):
        factory(**kw)


@pytest.mark.parametrize("name", ["shared-exp-adder", "mx-dot", "bfp-adder"])
def test_catalogue_and_manifest(name):
    unit = get_unit(name)
    comp, params = unit.build()
    docs = comp.port_docs
    for p in ports(comp):
        if p["name"] not in ("clk", "rst"):
            assert docs.get(p["name"]), p["name"]
    man = manifest(comp, name, params, name.replace("-", "_"))
    assert man["latency_cycles"] == comp.latency
    assert man["contract"]["config"]["n"] == comp.config.n


#: The hardware setting of the H100 FP8 preset (lowbit.models.shared_exp.PRESETS["h100_fp8"]):
#: the terms are cut toward zero (sign-magnitude), as measured on an H100.
H100_KNOBS = dict(align="operand_sum", frac_bits=13, cut="toward_zero", norm_frac_bits=13,
                  norm_rounding="toward_zero")


@pytest.fixture(scope="module")
def h100_adders():
    return {}


def _h100_adder(cache, fa, fb):
    if (fa, fb) not in cache:
        cache[(fa, fb)] = SharedExpAdder(fa, fb, n=32, pipeline_stages=0, **H100_KNOBS)
    return cache[(fa, fb)]


@pytest.mark.parametrize("fa, fb", [("e4m3", "e4m3"), ("e5m2", "e4m3")])
def test_h100_setting_matches_the_preset(fa, fb, h100_adders):
    # the 32-term adder in its toward-zero mode is one step of the model's H100 preset
    # (the preset's zero_exp = -133 cannot change an FP8 step: every product and FP32
    # accumulator exponent is at least -126)
    dut = _h100_adder(h100_adders, fa, fb)
    cfg = se.PRESETS["h100_fp8_fast_accum"]
    assert dataclasses.replace(dut.config, name="x") == dataclasses.replace(
        cfg, zero_exp=None, promote_every=None, name="x")
    fa, fb = formats.get(fa), formats.get(fb)
    V = 64
    A = random_terms(RNG, fa, (V, 32))
    B = random_terms(RNG, fb, (V, 32))
    acc = (RNG.standard_normal(V) * 2.0 ** RNG.integers(-20, 20, V)).astype(np.float32)
    acc[:10] = 0
    acc[10:14] = [2.0 ** -130, -(2.0 ** -127), np.inf, np.nan]
    want = se.fp32_codes(se.shared_exp_add(A.astype(fa.code_dtype), B.astype(fb.code_dtype),
                                           fa, fb, cfg, acc=acc.astype(np.float64)))
    assert np.array_equal(run_adder(dut, A, B, acc), want)


def test_h100_setting_reproduces_measured_h100_results(h100_adders):
    # chained over K = 128 (four steps, then the one FP32 promotion: +0 + D = D), the
    # hardware adder reproduces FP8 GEMM results measured on an H100 (tests/data/h100)
    path = pathlib.Path(__file__).resolve().parent / "data" / "h100" / "h100_fp8_gemm.npz"
    with np.load(path) as z:
        A, B, C = z["e4m3xe4m3_K128_A"], z["e4m3xe4m3_K128_B"], z["e4m3xe4m3_K128_C"]
    dut = _h100_adder(h100_adders, "e4m3", "e4m3")
    rows = [(i, j) for i in range(4) for j in range(6)]
    a = np.array([A[i] for i, _ in rows], dtype=np.int64)
    b = np.array([B[:, j] for _, j in rows], dtype=np.int64)
    acc = np.zeros(len(rows), np.float32)
    for s in range(4):
        acc = run_adder(dut, a[:, 32 * s:32 * (s + 1)], b[:, 32 * s:32 * (s + 1)], acc) \
            .view(np.float32)
    assert np.array_equal(acc.view(np.uint32), np.array([C[i, j] for i, j in rows]).view(np.uint32))
