"""Shared-exponent adder model: exactness property, presets, gemm paths, against Fraction oracles."""

import dataclasses
import math
import pathlib
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from lowbit.models import formats, gemm
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


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c if isinstance(c, str) else c.cut)
@pytest.mark.parametrize("fa, fb", [("e4m3", "e4m3"), ("e5m2", "e4m3"), ("e2m1", "e3m2")])
def test_gemm_fast_path_equals_integer_model(cfg, fa, fb):
    A = finite_codes(formats.get(fa), (6, 100))
    B = finite_codes(formats.get(fb), (100, 5))
    got = gemm(A, B, fa, fb, cfg)
    ref = se.shared_exp_dot(A[:, None, :], B.T[None, :, :], fa, fb, cfg)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


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
