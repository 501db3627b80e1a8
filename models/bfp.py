"""Block floating point / dynamic fixed point (DFP): integer mantissas with a shared exponent.

A block of ``k`` values (``k=None``: the whole axis, i.e. one exponent per tensor slice
as in Das et al.'s DFP) shares an integer exponent ``e``; element ``i`` is
``m_i * 2^e`` with ``m_i`` a signed INT8 or INT16 mantissa.

Quantisation (:func:`quantize`): ``e = floor(log2(amax)) - (bits - 2)`` so that the
block maximum lands in ``[2^(bits-2), 2^(bits-1))``; ``m_i = round(x_i / 2^e)``
(nearest-even, or stochastic with a generator) clamped to the symmetric range
``+-(2^(bits-1) - 1)``.  All-zero blocks get ``e = 0``.  NaN/Inf inputs raise
``ValueError`` (integer mantissas cannot hold them).  Padding as in :mod:`.mx`.

Dot product (:func:`bfp_dot`), the DFP overflow strategy
-------------------------------------------------------
Confirmed (Das et al., "Mixed Precision Training of CNNs using Integer Operations",
ICLR 2018, abstract): INT16 operands, products accumulated into INT32, "methods to
handle overflow of the INT32 accumulator".  Not confirmed (the paper body was not read):
the method.  Chosen here and made a parameter: at most
``chunk`` products are added in an INT32 register (two's complement; ``overflow``
``"wrap"`` like VPDPWSSD, or ``"saturate"`` after every product like VPDPWSSDS, adding
in index order), then the INT32 partial sum is converted to FP32 times
``2^(e_a + e_b)`` with one rounding (nearest-even) and added into an FP32 accumulator
(nearest-even).  The default ``chunk`` is the largest number of products that can never
overflow INT32: ``floor((2^31 - 1) / (2^(bits_a - 1) * 2^(bits_b - 1)))`` (2^17 - 1 for INT8,
1 for INT16 (full-range operands; symmetric INT16 fits 2)).  Chunks never straddle
blocks.  With ``overflow="wrap"`` this equals the shared-exponent adder
``SharedExpConfig(n=chunk, acc_in_max=False, frac_bits=bits_a + bits_b - 4,
sum_bits=32)`` on the integer operands (tested).
"""

import numpy as np

from . import shared_exp as _se

__all__ = ["quantize", "dequantize", "bfp_dot", "default_chunk", "bfp_config"]

_MANT = {"int8": 8, "int16": 16}


def _bits(mant):
    key = getattr(mant, "name", mant)
    if key not in _MANT:
        raise ValueError(f"mantissa must be one of int8, int16, not {mant!r}")
    return _MANT[key]


def quantize(x, mantissa="int8", k=None, axis=-1, rounding="nearest_even", rng=None):
    """Quantise ``x`` to BFP blocks; returns ``(mantissas int64, exponents int64)``."""
    bits = _bits(mantissa)
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise ValueError(f"x must be a float array, not an array of {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError("x must be finite: BFP integer mantissas hold no NaN or Inf")
    xm = np.moveaxis(x.astype(np.float64), axis, -1)
    K = xm.shape[-1]
    k = K if k is None else int(k)
    if k < 1:
        raise ValueError(f"k must be a positive integer or None, not {k!r}")
    xp = _se.pad_last(xm, k)
    xb = xp.reshape(xp.shape[:-1] + (-1, k))
    amax = np.abs(xb).max(axis=-1)
    _, e = np.frexp(amax)
    exp = np.where(amax > 0, e - 1 - (bits - 2), 0).astype(np.int64)
    y = np.ldexp(xb, (-exp)[..., None].astype(np.int32))
    if rounding == "nearest_even":
        m = np.rint(y)
    elif rounding == "stochastic":
        if not isinstance(rng, np.random.Generator):
            raise ValueError("rng must be a numpy.random.Generator for stochastic rounding")
        m = np.floor(y + rng.random(y.shape))
    else:
        raise ValueError(f"rounding must be nearest_even or stochastic, not {rounding!r}")
    lim = (1 << (bits - 1)) - 1
    m = np.clip(m, -lim, lim).astype(np.int64)
    m = m.reshape(m.shape[:-2] + (-1,))[..., :K]
    return np.moveaxis(m, -1, axis), np.moveaxis(exp, -1, axis)


def dequantize(mantissas, exponents, k=None, axis=-1):
    """Exact float64 values ``m_i * 2^e``."""
    m = np.moveaxis(np.asarray(mantissas, dtype=np.int64), axis, -1)
    e = np.moveaxis(np.asarray(exponents, dtype=np.int64), axis, -1)
    K = m.shape[-1]
    k = K if k is None else int(k)
    ee = np.repeat(e, k, axis=-1)[..., :K]
    return np.moveaxis(np.ldexp(m.astype(np.float64), ee.astype(np.int32)), -1, axis)


def default_chunk(bits_a, bits_b):
    """Largest number of full-range products that cannot overflow INT32."""
    return max(1, ((1 << 31) - 1) // ((1 << (bits_a - 1)) * (1 << (bits_b - 1))))


def bfp_config(bits_a, bits_b, chunk):
    """The shared-exponent adder that equals :func:`bfp_dot` with ``overflow="wrap"``."""
    return _se.SharedExpConfig(n=chunk, align="operand_sum", acc_in_max=False,
                               frac_bits=bits_a + bits_b - 4, cut="toward_zero", sum_bits=32,
                               norm_frac_bits=23, norm_rounding="nearest_even", name="bfp")


def bfp_dot(a_mant, a_exp, b_mant, b_exp, a_mantissa="int8", b_mantissa=None, k=None,
            axis=-1, chunk=None, overflow="wrap"):
    """BFP dot products along ``axis`` with the DFP INT32-chunk strategy; float32 result.

    ``a_exp``/``b_exp`` hold one exponent per block of ``k`` (``None``: one per axis).
    """
    ba = _bits(a_mantissa)
    bb = _bits(b_mantissa if b_mantissa is not None else a_mantissa)
    if overflow not in ("wrap", "saturate"):
        raise ValueError(f"overflow must be wrap or saturate, not {overflow!r}")
    a = np.moveaxis(np.asarray(a_mant, dtype=np.int64), axis, -1)
    b = np.moveaxis(np.asarray(b_mant, dtype=np.int64), axis, -1)
    ea = np.moveaxis(np.asarray(a_exp, dtype=np.int64), axis, -1)
    eb = np.moveaxis(np.asarray(b_exp, dtype=np.int64), axis, -1)
    K = a.shape[-1]
    k = K if k is None else int(k)
    chunk = default_chunk(ba, bb) if chunk is None else int(chunk)
    if chunk < 1:
        raise ValueError(f"chunk must be a positive integer, not {chunk!r}")
    step = min(chunk, k)
    if k % step:
        raise ValueError(f"chunk={chunk} must divide the block length k={k} (or exceed it)")
    a, b = _se.pad_last(a, k), _se.pad_last(b, k)
    e = np.repeat(ea + eb, k // step, axis=-1)                     # exponent per chunk
    p = a * b
    shape = np.broadcast_shapes(a.shape, b.shape)[:-1]
    acc = np.zeros(shape)
    nst = p.shape[-1] // step
    for i in range(nst):
        pc = p[..., i * step:(i + 1) * step]
        if overflow == "wrap":
            S = pc.sum(axis=-1)
            S = ((S + (1 << 31)) & ((1 << 32) - 1)) - (1 << 31)
        else:
            S = np.zeros(pc.shape[:-1], dtype=np.int64)
            for j in range(step):
                S = np.clip(S + pc[..., j], -(1 << 31), (1 << 31) - 1)
        part = _se.round_fixed(S, e[..., i], 23, "nearest_even")
        acc = _se.add_round(acc, part, 23, "nearest_even")
    return acc.astype(np.float32)
