"""MX / BDR / BFP models against worked examples, ml_dtypes and the shared-exponent adder."""

import ml_dtypes
import numpy as np
import pytest

from lowbit.models import bdr, bfp, formats, mx
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
