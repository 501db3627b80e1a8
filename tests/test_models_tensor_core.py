"""Matrix instructions (lowbit.models.tensor_core) against the shipped reference vectors.

``tests/data/tensor_cores``: 2,048 vectors for each of 35 NVIDIA/AMD instructions, computed
by MMA-Sim 2.1.1 (silicon-validated by its authors; provenance in the folder's README).
Every vector must match bit for bit; where the reference is a NaN any NaN matches.
"""

import dataclasses
import json
import pathlib

import numpy as np
import pytest

from lowbit.models import formats, gemm
from lowbit.models import shared_exp as se
from lowbit.models import tensor_core as tc

DATA = pathlib.Path(__file__).resolve().parent / "data" / "tensor_cores"
CASES = json.loads((DATA / "cases.json").read_text())
RNG = np.random.default_rng(15)


@pytest.fixture(scope="module")
def vectors():
    with np.load(DATA / "tensor_core_vectors_seed11.npz") as z:
        return {k: z[k] for k in z.files}


def same_bits(got, want, fmt):
    """Bit-exact, except that any NaN matches a NaN reference."""
    got = np.asarray(got)
    nan_want = np.isnan(fmt.decode(want))
    nan_got = np.isnan(fmt.decode(got))
    return np.where(nan_want, nan_got, got == want)


def run_case(name, v):
    cs = CASES[name]
    ins = tc.instruction(cs["arch"], cs["instruction"])
    kw = {}
    if cs["block"]:
        kw = dict(scale_a=v[name + "_sa"], scale_b=v[name + "_sb"])
    return ins, ins.dpa(v[name + "_a"], v[name + "_b"], v[name + "_c"], **kw)


@pytest.mark.parametrize("name", list(CASES))
def test_vectors_bit_exact(name, vectors):
    ins, d = run_case(name, vectors)
    want = vectors[name + "_d"]
    assert d.dtype == want.dtype and d.shape == want.shape
    ok = same_bits(d, want, ins.cd_format)
    assert ok.all(), f"{name}: {int((~ok).sum())} of {ok.size} differ, rows {np.nonzero(~ok)[0][:10]}"


def test_all_vectors_counted(vectors):
    total = sum(int(same_bits(run_case(n, vectors)[1], vectors[n + "_d"],
                              tc.instruction(c["arch"], c["instruction"]).cd_format).sum())
                for n, c in CASES.items())
    assert total == 71680 == 35 * 2048


def test_instruction_table_matches_cases_json():
    assert len(tc.instructions()) == len(CASES) == 35
    listed = set(tc.instructions())
    for name, cs in CASES.items():
        assert (cs["arch"], cs["instruction"]) in listed
        ins = tc.instruction(cs["arch"], cs["instruction"])
        assert ins.name == name
        assert (ins.a_format.name, ins.b_format.name, ins.cd_format.name, ins.K, ins.block) == \
            (cs["a_format"], cs["b_format"], cs["cd_format"], cs["K"], cs["block"])
        assert (ins.scale_format.name if ins.scale_format else None) == cs["scale_format"]
        assert ins.K % ins.L == 0 and ins.steps == ins.K // ins.L
        assert ins.describe()["config"]["n"] == ins.L


@pytest.mark.parametrize("arch, instr, knobs", [
    # the parameters of the project's notes on MMA-Sim (arXiv:2511.10909), per algorithm
    ("Volta", "m8n8k4.f32.f16.f16.f32", dict(frac_bits=23, n=4, norm_frac_bits=23,
                                             norm_rounding="toward_zero", zero_exp=-131)),
    ("Volta", "m8n8k4.f16.f16.f16.f16", dict(frac_bits=23, norm_frac_bits=10, acc_format="fp16",
                                             norm_rounding="nearest_even", zero_exp=-19)),
    ("Ampere", "m16n8k8.f32.tf32.tf32.f32", dict(frac_bits=24, n=4, zero_exp=-132)),
    ("Ada Lovelace", "m16n8k32.f32.e4m3.e4m3.f32", dict(frac_bits=13, n=16, norm_frac_bits=13)),
    ("Hopper", "m64n8k32.f32.e4m3.e4m3", dict(frac_bits=13, n=32, norm_frac_bits=13,
                                              cut="toward_zero", zero_exp=-133)),
    ("Hopper", "m64n8k16.f32.bf16.bf16", dict(frac_bits=25, n=16)),
    ("Blackwell", "m128n8k64.kind::mxf4nvf4.block16.f32.e2m1.e2m1.ue4m3",
     dict(frac_bits=35, n=64, group=16, zero_exp=-139)),
    ("CDNA3", "f32_16x16x32_fp8_fp8", dict(frac_bits=24, acc_frac_bits=31, n=16, interleave=2,
                                           acc_in_max=False, acc_add="aligned", acc_cut="floor",
                                           acc_drop=True)),
    ("CDNA3", "f32_16x16x8_xf32", dict(n=4, acc_drop=False, product_overflow="inf")),
    ("CDNA2", "f32_16x16x16bf16_1k", dict(adder="fp_tree", ftz=True, n=4)),
    ("CDNA1", "f32_16x16x16f16", dict(n=4, norm_rounding="nearest_even", acc_in_max=True)),
])
def test_documented_knobs(arch, instr, knobs):
    cfg = tc.instruction(arch, instr).config
    for k, v in knobs.items():
        assert getattr(cfg, k) == v, k


def test_lookup_spellings_and_errors():
    h = tc.instruction("Hopper", "m64n8k32.f32.e4m3.e4m3")
    assert tc.instruction("hopper", "hopper_wgmma_e4m3_f32") is h
    assert tc.instruction("Ada Lovelace", "m16n8k32.f32.e4m3.e4m3.f32").arch == "Ada Lovelace"
    with pytest.raises(ValueError, match=r"^arch must be one of Volta, Turing, .*not 'Kepler'$"):
        tc.instruction("Kepler", "x")
    with pytest.raises(ValueError, match=r"^instruction must be one of m64n8k32.f32.e4m3.e4m3, "):
        tc.instruction("Hopper", "m64n8k32.f32.e4m3.e4m2")
    with pytest.raises(TypeError, match=r"^instruction must be a string, not 3$"):
        tc.instruction("Hopper", 3)


def test_dpa_argument_checks():
    h = tc.instruction("Hopper", "m64n8k32.f32.e4m3.e4m3")
    z = np.zeros((2, 32), np.uint8)
    with pytest.raises(ValueError, match=r"^a must have K=32 elements on its last axis"):
        h.dpa(z[:, :16], z, None)
    with pytest.raises(ValueError, match=r"has no block scales"):
        h.dpa(z, z, None, scale_a=np.zeros((2, 1), np.uint8))
    mx = tc.instruction("Blackwell", "m128n8k32.kind::mxf8f6f4.block32.f32.e4m3.e4m3.ue8m0")
    with pytest.raises(ValueError, match=r"^scale_a must be given: .* takes e8m0 block scales"):
        mx.dpa(z, z, None)
    with pytest.raises(ValueError, match=r"^scale_b must have 1 block scales on its last axis"):
        mx.dpa(z, z, None, scale_a=np.zeros((2, 1), np.uint8), scale_b=np.zeros((2, 2), np.uint8))
    t = tc.instruction("Hopper", "m64n8k8.f32.tf32.tf32")
    with pytest.raises(ValueError, match=r"^a must be an integer array of FP32 bit patterns"):
        t.dpa(np.zeros((1, 8)), np.zeros((1, 8), np.uint32), None)


def test_broadcasting_and_c_default():
    h = tc.instruction("Hopper", "m64n8k32.f32.e4m3.e4m3")
    a = RNG.integers(0, 0x7F, (5, 32)).astype(np.uint8)
    b = RNG.integers(0, 0x7F, (32,)).astype(np.uint8)
    d = h.dpa(a, b, None)
    assert d.shape == (5,) and d.dtype == np.uint32
    assert np.array_equal(d, h.dpa(a, np.broadcast_to(b, (5, 32)), np.zeros(5, np.uint32)))
    # the integer path (16-bit operands; block scales) broadcasts b's leading axes as well
    bf = tc.instruction("Hopper", "m64n8k16.f32.bf16.bf16")
    fin = np.nonzero(np.isfinite(formats.bf16.decode(np.arange(1 << 16))))[0]
    a = RNG.choice(fin, (5, 16)).astype(np.uint16)
    b = RNG.choice(fin, (2, 1, 16)).astype(np.uint16)
    d = bf.dpa(a, b, None)
    assert d.shape == (2, 5)
    assert np.array_equal(d, bf.dpa(np.broadcast_to(a, (2, 5, 16)),
                                    np.broadcast_to(b, (2, 5, 16)), np.zeros((2, 5), np.uint32)))
    mx = tc.instruction("Blackwell", "m128n8k32.kind::mxf8f6f4.block32.f32.e4m3.e4m3.ue8m0")
    a = RNG.integers(0, 0x7F, (5, 32)).astype(np.uint8)
    b = RNG.integers(0, 0x7F, (2, 1, 32)).astype(np.uint8)
    sa = RNG.integers(120, 134, (5, 1)).astype(np.uint8)
    sb = RNG.integers(120, 134, (2, 1, 1)).astype(np.uint8)
    d = mx.dpa(a, b, None, sa, sb)
    assert d.shape == (2, 5)
    full = [np.broadcast_to(x, (2, 5) + x.shape[-1:]) for x in (a, b, sa, sb)]
    assert np.array_equal(d, mx.dpa(full[0], full[1], np.zeros((2, 5), np.uint32), *full[2:]))


def test_tf32_low_bits_are_truncated():
    t = tc.instruction("Ampere", "m16n8k8.f32.tf32.tf32.f32")
    x = np.float32(1.0 + 2.0 ** -10 + 2.0 ** -12).view(np.uint32)   # bit 11 is below tf32
    a = np.zeros((1, 8), np.uint32)
    a[0, 0] = x
    b = np.zeros((1, 8), np.uint32)
    b[0, 0] = np.float32(1.0).view(np.uint32)
    d = t.dpa(a, b, np.zeros(1, np.uint32))
    assert d.view(np.float32)[0] == np.float32(1.0 + 2.0 ** -10)


def test_zero_results_and_nan_codes():
    h = tc.instruction("Hopper", "m64n8k32.f32.e4m3.e4m3")
    one, mone = formats.e4m3.encode(np.array([1.0, -1.0], np.float32))
    a = np.zeros((2, 32), np.uint8)
    b = np.zeros((2, 32), np.uint8)
    a[:, :2] = [one, mone]
    b[:, :2] = one
    a[1, 5] = 0x7F                                            # NaN
    d = h.dpa(a, b, np.array([0x80000000, 0], np.uint32))     # C = -0
    assert d[0] == 0 and d[1] == 0x7FFFFFFF                  # +0 (never -0); canonical NaN
    f16 = tc.instruction("Hopper", "m64n8k32.f16.e4m3.e4m3")
    assert f16.dpa(a[1:], b[1:], np.zeros(1, np.uint16))[0] == 0x7FFF


def test_gst_group_exponent_is_the_scale_exponent():
    # a group term aligns by its scales' exponents (here 0 + 0), its exact sum (0.25) not
    # normalised: the grid is 2^(0 - 35), so a C of -2^-36 (half a unit) is cut away
    # while -2^-34 (two units) survives (and RZ then lands just below 0.25); aligning by
    # the group sum's own exponent (-2) would keep both
    ins = tc.instruction("Blackwell", "m128n8k64.kind::mxf4.block32.f32.e2m1.e2m1.ue8m0")
    half = formats.e2m1.encode(np.array([0.5], np.float32))[0]
    a = np.zeros((2, 64), np.uint8)
    a[:, 0] = half
    s = np.full((2, 2), 127, np.uint8)                        # 2^0
    c = np.array([-(2.0 ** -36), -(2.0 ** -34)], np.float32).view(np.uint32)
    d = ins.dpa(a, a, c, scale_a=s, scale_b=s).view(np.float32)
    assert d[0] == np.float32(0.25)
    assert d[1] == np.nextafter(np.float32(0.25), np.float32(0))


def test_gemm_chains_the_instruction():
    # a 3 x 96 x 4 GEMM of the Ada FP8 instruction (K = 32, L = 16): each output is the
    # chain of the instruction over the three K-chunks, C of one chunk = D of the last
    ins = tc.instruction("Ada Lovelace", "m16n8k32.f32.e4m3.e4m3.f32")
    fin = np.nonzero(np.isfinite(formats.e4m3.decode(np.arange(256))))[0]
    A = RNG.choice(fin, (3, 96)).astype(np.uint8)
    B = RNG.choice(fin, (96, 4)).astype(np.uint8)
    c = (RNG.standard_normal((3, 4)).astype(np.float32)).view(np.uint32)
    got = ins.gemm(A, B, c)
    want = c.copy()
    for j in range(3):
        sl = slice(32 * j, 32 * (j + 1))
        want = ins.dpa(A[:, None, sl], B[sl].T[None, :, :], want)
    assert np.array_equal(got, want)
    # the same through shared_exp.gemm when C is +0
    want0 = np.zeros((3, 4), np.uint32)
    for j in range(3):
        sl = slice(32 * j, 32 * (j + 1))
        want0 = ins.dpa(A[:, None, sl], B[sl].T[None, :, :], want0)
    assert np.array_equal(ins.gemm(A, B), want0)


def test_gemm_block_scaled_and_promotion():
    ins = tc.instruction("Blackwell", "m128n8k64.kind::mxf4nvf4.block16.f32.e2m1.e2m1.ue4m3")
    A = RNG.integers(0, 16, (2, 128)).astype(np.uint8)
    B = RNG.integers(0, 16, (128, 3)).astype(np.uint8)
    sa = RNG.integers(0x08, 0x7E, (2, 8)).astype(np.uint8)
    sb = RNG.integers(0x08, 0x7E, (8, 3)).astype(np.uint8)
    got = ins.gemm(A, B, scale_a=sa, scale_b=sb)
    part = np.zeros((2, 3), np.uint32)
    for j in range(2):
        sl, ss = slice(64 * j, 64 * (j + 1)), slice(4 * j, 4 * (j + 1))
        part = ins.dpa(A[:, None, sl], B[sl].T[None, :, :], part,
                       scale_a=sa[:, None, ss], scale_b=sb[ss].T[None, :, :])
    assert np.array_equal(got, part)
    # promotion every 64: each instruction's D (from +0) added into FP32 with RNE
    pro = ins.gemm(A, B, scale_a=sa, scale_b=sb, promote_every=64)
    total = np.zeros((2, 3))
    for j in range(2):
        sl, ss = slice(64 * j, 64 * (j + 1)), slice(4 * j, 4 * (j + 1))
        dj = ins.dpa(A[:, None, sl], B[sl].T[None, :, :], None,
                     scale_a=sa[:, None, ss], scale_b=sb[ss].T[None, :, :])
        total = se.add_round(total, dj.view(np.float32).astype(np.float64))
    assert np.array_equal(pro, total.astype(np.float32).view(np.uint32))
    with pytest.raises(ValueError, match=r"^promote_every must be a multiple of K=64, not 96$"):
        ins.gemm(A, B, scale_a=sa, scale_b=sb, promote_every=96)


def test_h100_preset_is_the_hopper_instruction_with_promotion():
    h = tc.instruction("Hopper", "m64n8k32.f32.e4m3.e4m3")
    assert dataclasses.replace(h.config, promote_every=128, name="h100_fp8") == \
        se.PRESETS["h100_fp8"]
    fin = np.nonzero(np.isfinite(formats.e4m3.decode(np.arange(256))))[0]
    A = RNG.choice(fin, (4, 320)).astype(np.uint8)
    B = RNG.choice(fin, (320, 5)).astype(np.uint8)
    want = gemm(A, B, "e4m3", "e4m3", "h100_fp8").view(np.uint32)
    assert np.array_equal(h.gemm(A, B, promote_every=128), want)
    # and through the generic chain (a C given: no shared_exp.gemm shortcut)
    assert np.array_equal(h.gemm(A, B, np.zeros((4, 5), np.uint32), promote_every=128), want)
    fast = gemm(A, B, "e4m3", "e4m3", "h100_fp8_fast_accum").view(np.uint32)
    assert np.array_equal(h.gemm(A, B), fast)


FAST_CASES = [n for n, c in CASES.items() if c["block"] is None
              and c["a_format"] not in ("fp16", "bf16", "tf32") and not n.startswith("cdna")]


@pytest.mark.parametrize("name", FAST_CASES)
def test_integer_model_on_the_vectors(name, vectors):
    # .dpa takes the exact float path for 8-bit operands; the integer model of
    # shared_exp (the step-by-step definition) must give the same bits on the vectors
    cs = CASES[name]
    ins = tc.instruction(cs["arch"], cs["instruction"])
    fmt = ins.cd_format
    c = vectors[name + "_c"]
    acc = c.view(np.float32).astype(np.float64) if fmt.bits == 32 else fmt.decode(c)
    cfg = dataclasses.replace(ins.config, promote_every=None)
    got = se.shared_exp_dot(vectors[name + "_a"], vectors[name + "_b"], ins.a_format,
                            ins.b_format, cfg, acc=acc).astype(np.float64)
    nan = np.isnan(got)
    bits = got.astype(np.float32).view(np.uint32) if fmt.bits == 32 else \
        fmt.encode(np.where(nan, 0, got)).astype(np.uint16)
    ok = same_bits(np.where(nan, ins.nan_code, bits).astype(fmt.code_dtype),
                   vectors[name + "_d"], fmt)
    assert ok.all(), f"{name}: {int((~ok).sum())} differ"


@pytest.mark.parametrize("instr", [("Ada Lovelace", "m16n8k32.f16.e4m3.e4m3.f16"),
                                   ("Blackwell", "m64n8k32.kind::f8f6f4.f32.e5m2.e2m1"),
                                   ("Hopper", "m64n8k32.f32.e5m2.e5m2")])
def test_gemm_fast_path_on_instruction_configs(instr):
    ins = tc.instruction(*instr)
    fa, fb = ins.a_format, ins.b_format
    fin_a = np.nonzero(np.isfinite(fa.decode(fa.all_codes())))[0]
    fin_b = np.nonzero(np.isfinite(fb.decode(fb.all_codes())))[0]
    A = RNG.choice(fin_a, (5, 96)).astype(np.uint8)
    B = RNG.choice(fin_b, (96, 4)).astype(np.uint8)
    cfg = ins.config
    fast = se.gemm(A, B, fa, fb, cfg)
    ref = se.shared_exp_dot(A[:, None, :], B.T[None, :, :], fa, fb, cfg)
    assert np.array_equal(fast.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("instr", [("Hopper", "m64n8k8.f32.tf32.tf32"),
                                   ("Ampere", "m16n8k16.f16.f16.f16.f16"),
                                   ("CDNA3", "f32_16x16x16_bf16"),
                                   ("CDNA2", "f32_16x16x16bf16_1k")])
def test_gemm_other_formats_chain_like_dpa(instr, vectors):
    # operands from the shipped vectors (NaN/Inf included in rows >= 1024): the GEMM of
    # two instruction-lengths equals .dpa chained twice
    ins = tc.instruction(*instr)
    name = ins.name
    a, b = vectors[name + "_a"], vectors[name + "_b"]
    K = ins.K
    A = np.concatenate([a[1020:1026], a[1026:1032]], axis=1)         # 6 x 2K
    B = np.concatenate([b[1040:1044], b[1044:1048]], axis=1).T       # 2K x 4
    got = ins.gemm(A, B)
    want = ins.dpa(A[:, None, :K], B[:K].T[None, :, :], None)
    want = ins.dpa(A[:, None, K:], B[K:].T[None, :, :], want)
    assert got.shape == (6, 4) and np.array_equal(
        same_bits(got, want, ins.cd_format), np.ones((6, 4), bool))
