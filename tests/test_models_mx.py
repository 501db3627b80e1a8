"""MX / BDR / BFP models against worked examples, ml_dtypes and the shared-exponent adder."""

import ml_dtypes
import numpy as np
import pytest

from lowbit.models import bdr, bfp, formats, mx, nvfp4
from lowbit.models import shared_exp as se

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("elem, block, shared, deq", [
    ("e4m3", [500, 1, -3, 0.25], 0, [448, 1, -3, 0.25]),
    ("e4m3", [0.3, 0.01, -0.2], -10, [0.3125, 0.009765625, -0.203125]),
    ("e2m1", [7, 5, 2.5, 0.25], 0, [6, 4, 2, 0]),
    ("e3m2", [100, 3, 0.5], 2, [96, 3, 0.5]),
    ("e2m3", [7.9, 3, 0.1], 0, [7.5, 3, 0.125]),
    ("int8", [3.0, 0.01], 1, [3.0, 0.0]),
])
def test_worked_examples(elem, block, shared, deq):
    # the shared scale of OCP MX v1.0 section 6.3 (arXiv:2310.10537 Algorithm 1): floor(log2(amax)) - emax_elem
    e, s = mx.quantize(np.array(block, np.float32), elem)
    assert int(s[0]) - 127 == shared
    assert mx.dequantize(e, s, elem).tolist() == deq


@pytest.mark.parametrize("elem, dtype", [("e4m3", ml_dtypes.float8_e4m3fn),
                                         ("e5m2", ml_dtypes.float8_e5m2),
                                         ("e2m3", ml_dtypes.float6_e2m3fn),
                                         ("e3m2", ml_dtypes.float6_e3m2fn),
                                         ("e2m1", ml_dtypes.float4_e2m1fn)])
def test_quantize_matches_ml_dtypes_cast(elem, dtype):
    x = (RNG.standard_normal((200, 64)) * 2.0 ** RNG.integers(-20, 20, (200, 1))).astype(np.float32)
    e, s = mx.quantize(x, elem, k=32)
    fmt = formats.get(elem)
    xb = x.reshape(200, 2, 32).astype(np.float64)
    amax = np.abs(xb).max(-1)
    ref_shared = np.floor(np.log2(amax)).astype(int) - fmt.emax
    assert np.array_equal(s.astype(int) - 127, ref_shared)
    y = np.clip(xb / 2.0 ** ref_shared[..., None], -fmt.max, fmt.max)      # saturate first
    ref = y.astype(np.float32).astype(dtype).astype(np.float64).reshape(200, 64)
    assert np.array_equal(fmt.decode(e), ref)


def test_mxint8_symmetric_and_minus_two():
    e, s = mx.quantize(np.array([-1.999, 1.99, 0.5], np.float32), "mxint8")
    assert s[0] == 127 and e.tolist() == [0x81, 0x7F, 0x20]          # -127/64, 127/64, 32/64
    assert mx.dequantize(np.array([0x80, 0x7F], np.uint8), np.array([127], np.uint8),
                         "mxint8").tolist() == [-2.0, 1.984375]


def test_specials_zero_block_and_padding():
    e, s = mx.quantize(np.zeros(40, np.float32), "e4m3")
    assert s.tolist() == [0, 0] and not e.any() and e.shape == (40,)
    x = np.array([1.0, np.nan, np.inf, -np.inf], np.float32)
    e, s = mx.quantize(x, "e5m2")
    d = mx.dequantize(e, s, "e5m2")
    assert d[0] == 1.0 and np.isnan(d[1]) and d[2] == np.inf and d[3] == -np.inf
    e, s = mx.quantize(x, "e4m3")
    assert np.isnan(mx.dequantize(e, s, "e4m3")[1:]).all()
    e, s = mx.quantize(x, "e2m1")
    assert s[0] == 0xFF and np.isnan(mx.dequantize(e, s, "e2m1")).all()
    assert mx.quantize(np.array([2.0 ** -140], np.float32), "e4m3")[1][0] == 0     # clamp -127


@pytest.mark.parametrize("elem", list(mx.ELEMENTS))
def test_mx_dot_exact_vs_dequantized_and_adder(elem):
    x = RNG.standard_normal((50, 96)).astype(np.float32)
    y = RNG.standard_normal((50, 96)).astype(np.float32)
    ea, sa = mx.quantize(x, elem)
    eb, sb = mx.quantize(y, elem)
    d = mx.mx_dot(ea, sa, eb, sb, elem)
    # products of dequantised values summed in float64 are exact here (small span)
    ref = (mx.dequantize(ea, sa, elem) * mx.dequantize(eb, sb, elem)).sum(-1).astype(np.float32)
    assert np.array_equal(d, ref)
    wide = se.SharedExpConfig(n=32, frac_bits=300)
    # one rounding per block: equals exact per block then RNE adds, check against chain model
    got = mx.mx_dot(ea, sa, eb, sb, elem, datapath=wide)
    blocks = [mx.mx_dot(ea[:, i*32:(i+1)*32], sa[:, i:i+1], eb[:, i*32:(i+1)*32], sb[:, i:i+1], elem)
              for i in range(3)]
    acc = np.zeros(50)
    for b in blocks:
        acc = se.add_round(acc, b.astype(np.float64))
    assert np.array_equal(got, acc.astype(np.float32))


def test_mx_dot_nan_scale():
    e = np.zeros((1, 32), np.uint8)
    assert np.isnan(mx.mx_dot(e, np.array([[0xFF]], np.uint8), e, np.array([[127]], np.uint8), "e4m3"))[0]


def test_mx_errors():
    with pytest.raises(ValueError, match=r"^elem must be one of mxfp8_e4m3, "):
        mx.quantize(np.zeros(4, np.float32), "fp8")
    with pytest.raises(ValueError, match=r"^k must be an integer from 1 to 4096, not 0$"):
        mx.quantize(np.zeros(4, np.float32), "e4m3", k=0)


@pytest.mark.parametrize("name, m", [("mx9", 7), ("mx6", 4), ("mx4", 2)])
def test_bdr_quantize(name, m):
    x = RNG.standard_normal((30, 48)).astype(np.float32)
    q = bdr.quantize(x, name)
    y = bdr.dequantize(q, name)
    assert q.mag.max() < (1 << m) and q.micro.max() <= 1
    xb = np.abs(x.reshape(30, 3, 8, 2)).astype(np.float64)
    E = np.floor(np.log2(xb.max(axis=(-1, -2))))
    assert np.array_equal(q.shared.astype(int) - 127, E.astype(int))
    Es = np.floor(np.log2(xb.max(-1)))
    D = np.minimum(E[..., None] - Es, 1)
    lsb = E[..., None] - D + 1 - m
    Mref = np.minimum(np.rint(xb / 2.0 ** lsb[..., None]), (1 << m) - 1)
    assert np.array_equal(np.abs(y).reshape(30, 3, 8, 2), Mref * 2.0 ** lsb[..., None])
    # MX9: two more mantissa bits than e4m3 at the block max
    if name == "mx9":
        assert np.abs(y - x).max() <= 2.0 ** (E.max() - 6)


def test_bdr_nan_block():
    q = bdr.quantize(np.array([1.0, np.nan] + [0.0] * 14, np.float32), "mx6")
    assert q.shared[0] == 0xFF and np.isnan(bdr.dequantize(q, "mx6")).all()


@pytest.mark.parametrize("bits, chunk", [(8, 16), (16, 8), (16, 2)])
def test_bfp_dot_equals_shared_exp_adder(bits, chunk):
    lim = (1 << (bits - 1)) - 1
    m1 = RNG.integers(-lim, lim + 1, (300, 32))
    m2 = RNG.integers(-lim, lim + 1, (300, 32))
    e1 = RNG.integers(-20, 20, (300, 2))
    e2 = RNG.integers(-20, 20, (300, 2))
    name = f"int{bits}"
    d = bfp.bfp_dot(m1, e1, m2, e2, name, k=16, chunk=chunk)
    fmt = formats.get(name)
    ref = se.shared_exp_dot(fmt.to_codes(m1), fmt.to_codes(m2), name, name,
                            bfp.bfp_config(bits, bits, chunk),
                            scale_exp=np.repeat(e1 + e2, 16 // chunk, axis=-1))
    assert np.array_equal(d.view(np.uint32), ref.view(np.uint32))


def test_bfp_saturate_vs_wrap():
    m = np.full((1, 4), 32767)
    e = np.zeros((1, 1), int)
    wrap = bfp.bfp_dot(m, e, m, e, "int16", chunk=4)
    sat = bfp.bfp_dot(m, e, m, e, "int16", chunk=4, overflow="saturate")
    assert sat[0] == np.float32(2 ** 31 - 1)
    assert wrap[0] == np.float32(((4 * 32767 ** 2 + 2 ** 31) % 2 ** 32) - 2 ** 31)
    assert bfp.default_chunk(8, 8) == (2 ** 31 - 1) // 2 ** 14


def test_bfp_quantize():
    x = np.array([[3.0, -0.5, 0.25, 1.0]])
    m, e = bfp.quantize(x, "int8")
    assert e.tolist() == [[-5]] and m.tolist() == [[96, -16, 8, 32]]
    assert np.array_equal(bfp.dequantize(m, e), x)


# ---------------------------------------------------------------------------------------
# Element rounding modes and Inf/NaN blocks (issue 15)

def _away_reference(y, fmt):
    """microxcaling's round="nearest": sign * floor(|y| / ulp + 0.5) * ulp with the private
    exponent floor(log2 |y|) clipped at the smallest normal exponent, then clamped."""
    a = np.abs(y)
    e = np.floor(np.log2(np.where(a > 0, a, 1.0)))
    e = np.maximum(e, fmt.emin)
    ulp = 2.0 ** (e - fmt.man_bits)
    q = np.floor(a / ulp + 0.5) * ulp
    return np.copysign(np.minimum(q, fmt.max), y)


@pytest.mark.parametrize("elem", ["e4m3", "e5m2", "e2m3", "e3m2", "e2m1"])
def test_nearest_away_matches_microxcaling_rule(elem):
    fmt = formats.get(elem)
    x = (RNG.standard_normal((40, 64)) * 2.0 ** RNG.integers(-8, 8, (40, 1))).astype(np.float32)
    # exact ties: midpoints between neighbouring element values
    v = fmt.decode(fmt.all_codes())
    v = np.unique(np.abs(v[np.isfinite(v)]))
    x[0, :len(v) - 1 if len(v) <= 65 else 64] = ((v[:-1] + v[1:]) / 2)[:64]
    e, s = mx.quantize(x, elem, rounding="nearest_away")
    xb = x.reshape(40, 2, 32).astype(np.float64)
    y = xb / 2.0 ** (s.astype(int) - 127)[..., None]
    ref = _away_reference(y, fmt).reshape(40, 64) * np.repeat(2.0 ** (s.astype(int) - 127), 32, -1)
    assert np.array_equal(mx.dequantize(e, s, elem), ref)


def test_nearest_away_worked_examples():
    # OCP-style E2M1 block [7, 5, 2.5, 0.25]: nearest-even gives 6, 4, 2, 0; ties away 6, 6, 3, 0.5
    x = np.array([7, 5, 2.5, 0.25], np.float32)
    e, s = mx.quantize(x, "e2m1", rounding="nearest_away")
    assert mx.dequantize(e, s, "e2m1").tolist() == [6, 6, 3, 0.5]
    # MXINT8, scale 2: 1/64 and -1/64 are +-0.5 units of 2^-6: ties away -> +-1 unit
    x = np.array([3.0, 1 / 64, -1 / 64], np.float32)
    e, s = mx.quantize(x, "mxint8", rounding="nearest_away")
    assert mx.dequantize(e, s, "mxint8").tolist() == [3.0, 1 / 32, -1 / 32]
    e, s = mx.quantize(x, "mxint8")
    assert mx.dequantize(e, s, "mxint8").tolist() == [3.0, 0.0, 0.0]


@pytest.mark.parametrize("elem", ["e4m3", "e2m1", "mxint8"])
def test_stochastic_rounding_contract(elem):
    x = RNG.standard_normal((10, 64)).astype(np.float32)
    bits = RNG.integers(0, 256, x.shape)
    e, s = mx.quantize(x, elem, rounding="stochastic", random_bits=bits)
    fmt = mx.element_format(elem)
    # the random bits are those of formats.encode, element by element
    scale = np.repeat(2.0 ** (s.astype(int) - 127), 32, -1)
    y = x.astype(np.float64) / scale
    if elem == "mxint8":
        want = fmt.encode(y * 64, rounding="stochastic", saturate=True, random_bits=bits)
        want = fmt.to_codes(np.clip(fmt.decode(want), -127, 127))
    else:
        want = fmt.encode(y, rounding="stochastic", saturate=True, random_bits=bits)
    assert np.array_equal(e, want)
    # zero bits truncate; a Generator draws integers(0, 2**sr_bits, size=x.shape)
    z, _ = mx.quantize(x, elem, rounding="stochastic", random_bits=np.zeros(x.shape, int))
    if elem != "mxint8":
        assert np.array_equal(z, mx.quantize(x, elem, rounding="toward_zero")[0])
    g1 = mx.quantize(x, elem, rounding="stochastic", random_bits=np.random.default_rng(5))[0]
    g2 = mx.quantize(x, elem, rounding="stochastic",
                     random_bits=np.random.default_rng(5).integers(0, 256, size=x.shape))[0]
    assert np.array_equal(g1, g2)


def test_stochastic_rounding_is_unbiased_in_expectation():
    # 1 + 2^-5 in E4M3 (ulp 2^-3): rounds up with probability 1/4 over all 8-bit draws
    x = np.full((256, 32), 1.0 + 2.0 ** -5, np.float32)
    x[:, 0] = 1.5                                            # sets the scale to 2^0
    bits = np.repeat(np.arange(256)[:, None], 32, axis=1)
    e, s = mx.quantize(x, "e4m3", rounding="stochastic", random_bits=bits)
    d = mx.dequantize(e, s, "e4m3")[:, 1]
    assert np.count_nonzero(d == 1.125) == 64 and np.count_nonzero(d == 1.0) == 192


def test_nonfinite_element_and_block():
    x = np.array([1.0, np.nan, np.inf, -np.inf] + [0.5] * 28 + [2.0] * 32, np.float32)
    e, s = mx.quantize(x, "e5m2")                         # default: per element
    d = mx.dequantize(e, s, "e5m2")
    assert d[0] == 1.0 and np.isnan(d[1]) and d[2] == np.inf and d[3] == -np.inf
    assert s[0] == 127 - 15                                  # from the finite amax 1.0
    e, s = mx.quantize(x, "e5m2", nonfinite="block")      # OCP Algorithm 1 / microxcaling
    assert s.tolist() == [0xFF, 127 + 1 - 15] and not e[:32].any()
    d = mx.dequantize(e, s, "e5m2")
    assert np.isnan(d[:32]).all() and (d[32:] == 2.0).all()


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(rounding="even"), ValueError,
     r"^rounding must be one of nearest_even, toward_zero, nearest_away, stochastic, not 'even'$"),
    (dict(nonfinite="nan"), ValueError, r"^nonfinite must be one of element, block, not 'nan'$"),
    (dict(rounding="stochastic"), ValueError, r"^random_bits must be given for stochastic"),
    (dict(rounding="stochastic", random_bits=np.full(4, 256)), ValueError,
     r"^random_bits must lie in 0..255 for sr_bits=8, got values in 256..256$"),
    (dict(rounding="stochastic", random_bits=0, sr_bits=0), ValueError,
     r"^sr_bits must be an integer from 1 to 32, not 0$"),
])
def test_quantize_option_checks(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        mx.quantize(np.zeros(4, np.float32), "e4m3", **kw)


# ---------------------------------------------------------------------------------------
# NVFP4 (models/nvfp4.py)

def _nvfp4_reference(x):
    """NVIDIA's recipe (arXiv:2509.25149) in float32 with ml_dtypes' E4M3 / E2M1 casts
    (nearest even), blocks of 16 along the last axis."""
    f32 = np.float32
    x = x.astype(f32)
    amax = f32(np.abs(x).max())
    s_dec, s_enc = f32(amax / f32(2688)), f32(f32(2688) / amax)
    xb = x.reshape(x.shape[:-1] + (-1, 16))
    sb = (np.abs(xb).max(-1) / f32(6)).astype(f32) * s_enc
    s8 = np.minimum(sb, f32(448)).astype(ml_dtypes.float8_e4m3fn)
    sval = s8.astype(f32)
    enc = np.where(sval > 0, s_enc / np.where(sval > 0, sval, f32(1)), f32(0)).astype(f32)
    y = np.clip((xb * enc[..., None]).astype(f32), -6, 6)
    q = y.astype(ml_dtypes.float4_e2m1fn)
    return (q.view(np.uint8).reshape(x.shape) & 0xF, s8.view(np.uint8), s_dec)


def test_nvfp4_recipe_bit_exact():
    x = (RNG.standard_normal((30, 128)) * 2.0 ** RNG.integers(-6, 6, (30, 8)).repeat(16, -1)) \
        .astype(np.float32)
    e, s, t = nvfp4.quantize(x)
    re, rs, rt = _nvfp4_reference(x)
    assert t == rt and t.dtype == np.float32
    assert np.array_equal(s, rs) and np.array_equal(e, re)
    d = nvfp4.dequantize(e, s, t)
    want = formats.e2m1.decode(e) * np.repeat(nvfp4.SCALE.decode(s), 16, -1) * np.float64(t)
    assert np.array_equal(d, want)
    # the tensor's amax lands on 6 * 448 * s: the largest block uses the whole range
    assert np.abs(d).max() <= np.abs(x).max() * 1.25


def test_nvfp4_layout_specials_and_options():
    x = RNG.standard_normal((3, 40)).astype(np.float32)          # padded to 48 per row
    e, s, t = nvfp4.quantize(x, axis=-1)
    assert e.shape == (3, 40) and s.shape == (3, 3) and e.max() <= 15
    eT, sT, tT = nvfp4.quantize(x.T, axis=0)
    assert np.array_equal(eT, e.T) and np.array_equal(sT, s.T) and tT == t
    z = nvfp4.quantize(np.zeros((2, 16), np.float32))
    assert not z[0].any() and not z[1].any() and z[2] == 1
    y = x.copy()
    y[1, 17] = np.inf
    e, s, t = nvfp4.quantize(y)
    assert s[1, 1] == 0x7F and np.isnan(nvfp4.dequantize(e, s, t)[1, 16:32]).all()
    assert np.isfinite(nvfp4.dequantize(e, s, t)[1, :16]).all()
    g = nvfp4.quantize(x, global_amax=8.0)[2]
    assert g == np.float32(np.float32(8.0) / np.float32(2688))
    sr = nvfp4.quantize(x, rounding="stochastic", random_bits=np.zeros(x.shape, int))[0]
    assert np.array_equal(sr, nvfp4.quantize(x, rounding="toward_zero")[0])


def test_nvfp4_three_dimensional_on_every_axis():
    # a (3, 4, 48) tensor blocked along each axis in turn equals the ml_dtypes recipe on the
    # same data moved to the last axis (tensor scale from the whole tensor either way), and
    # dequantize puts the values back on that axis; stochastic bits follow their elements
    x = (RNG.standard_normal((3, 4, 48)) * 2.0 ** RNG.integers(-4, 4, (3, 4, 48))) \
        .astype(np.float32)
    for axis in (0, 1, 2, -1, -2):
        xs = np.moveaxis(x, axis, -1)
        K = xs.shape[-1]
        pad = np.zeros(xs.shape[:-1] + (-K % 16,), np.float32)
        re, rs, rt = _nvfp4_reference(np.concatenate([xs, pad], axis=-1))
        e, s, t = nvfp4.quantize(x, axis=axis)
        assert e.shape == x.shape and t == rt
        assert np.array_equal(np.moveaxis(e, axis, -1), re[..., :K])
        assert np.array_equal(np.moveaxis(s, axis, -1), rs)
        d = nvfp4.dequantize(e, s, t, axis=axis)
        want = formats.e2m1.decode(re[..., :K]) * \
            np.repeat(nvfp4.SCALE.decode(rs), 16, -1)[..., :K] * np.float64(t)
        assert d.shape == x.shape and np.array_equal(np.moveaxis(d, axis, -1), want)
        bits = RNG.integers(0, 256, x.shape)
        sr = nvfp4.quantize(x, axis=axis, rounding="stochastic", random_bits=bits)[0]
        sr_last = nvfp4.quantize(xs, rounding="stochastic",
                                 random_bits=np.moveaxis(bits, axis, -1))[0]
        assert np.array_equal(np.moveaxis(sr, axis, -1), sr_last)
    # more than 256 blocks (block counts beyond CPython's small-integer cache)
    big = RNG.standard_normal((2, 16 * 300)).astype(np.float32)
    e, s, t = nvfp4.quantize(big)
    assert s.shape == (2, 300) and nvfp4.dequantize(e, s, t).shape == big.shape


def test_nvfp4_through_the_blackwell_instruction():
    # NVFP4 data times NVFP4 data on tcgen05.mma kind::mxf4nvf4.block16 (ue4m3), the tensor
    # scales applied outside: close to the float64 product of the dequantised tensors
    from lowbit.models import tensor_core as tc
    ins = tc.instruction("Blackwell", "m128n8k64.kind::mxf4nvf4.block16.f32.e2m1.e2m1.ue4m3")
    a = RNG.standard_normal((4, 128)).astype(np.float32)
    b = RNG.standard_normal((3, 128)).astype(np.float32)
    ea, sa, ta = nvfp4.quantize(a)
    eb, sb, tb = nvfp4.quantize(b)
    d = ins.gemm(ea, eb.T, scale_a=sa, scale_b=sb.T).view(np.float32).astype(np.float64)
    ref = nvfp4.dequantize(ea, sa, 1.0) @ nvfp4.dequantize(eb, sb, 1.0).T
    assert np.allclose(d, ref, rtol=2 ** -20, atol=2 ** -20 * np.abs(ref).max())
    assert np.allclose(d * np.float64(ta) * np.float64(tb),
                       nvfp4.dequantize(ea, sa, ta) @ nvfp4.dequantize(eb, sb, tb).T, rtol=1e-6)
