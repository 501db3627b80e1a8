"""BDR shared micro-exponent formats MX9, MX6, MX4 (Rouhani et al., ISCA 2023).

Block Data Representations (Rouhani et al., arXiv:2302.08007, section 3) use two
levels of scaling: a first-level block of ``k1 = 16`` elements shares an 8-bit exponent,
each second-level sub-block of ``k2 = 2`` elements has a ``d2 = 1``-bit micro-exponent,
and every element is a sign and an ``m``-bit magnitude (paper Table II: MX9 m = 7, MX6
m = 4, MX4 m = 2; 9, 6 and 4 bits per element on average).  These are *not* the OCP MX
formats.

Value (AMD Quark's kernel comment, consistent with the paper) ::

    v = (-1)^s * 2^(E - 127) * 2^(-D) * 2^(1 - m) * M

``E`` (8 bits) is the FP32 exponent field of the block's largest magnitude, ``D`` in
{0, .., 2^d2 - 1} = min(E - (largest FP32 exponent field in the sub-block),
2^d2 - 1), and ``M`` the m-bit magnitude (fixed point 1.xxx with the leading bit
explicit, so M < 2^m).

Quantisation (:func:`quantize`): ``M = round(|x| / 2^(E - 127 - D + 1 - m))`` with
round-to-nearest-even (Quark ``rounding_mode 2``), clamped to 2^m - 1 (the block
maximum can round up past it).  Following Quark: FP32-subnormal inputs are flushed to
zero; a block holding NaN or Inf gets ``E = 0xFF`` (the whole block decodes to NaN); an
all-zero block gets ``E = 0`` and zero magnitudes.  The block axis is zero-padded to a
multiple of 16 (padding dropped from the returned arrays).
"""

import collections

import numpy as np

from . import shared_exp as _se

__all__ = ["BDR_FORMATS", "BdrFormat", "BdrBlocks", "quantize", "dequantize"]

BdrFormat = collections.namedtuple("BdrFormat", "name m k1 d1 k2 d2")

#: Rouhani et al. 2023, Table II.
BDR_FORMATS = {
    "mx9": BdrFormat("mx9", 7, 16, 8, 2, 1),
    "mx6": BdrFormat("mx6", 4, 16, 8, 2, 1),
    "mx4": BdrFormat("mx4", 2, 16, 8, 2, 1),
}

#: Quantised data: ``shared`` (uint8, one per 16-block), ``micro`` (uint8, one per
#: sub-block), ``sign`` (uint8 0/1) and ``mag`` (uint8, < 2^m) per element.
BdrBlocks = collections.namedtuple("BdrBlocks", "shared micro sign mag")


def _fmt(fmt):
    if isinstance(fmt, BdrFormat):
        return fmt
    key = str(fmt).lower()
    if key not in BDR_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(BDR_FORMATS)}, not {fmt!r}")
    return BDR_FORMATS[key]


def _exp_field(a):
    """FP32 exponent field of non-negative finite float64 values that are FP32 values."""
    _, e = np.frexp(a)
    return np.where(a >= 2.0 ** -126, e - 1 + 127, 0).astype(np.int64)


def quantize(x, fmt="mx9", axis=-1):
    """Quantise FP32 values ``x`` to a BDR format along ``axis``; returns :class:`BdrBlocks`.

    ``shared`` has ``ceil(K/16)`` and ``micro`` ``ceil(K/16) * 8`` entries on ``axis``;
    ``sign``/``mag`` have K.
    """
    f = _fmt(fmt)
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise ValueError(f"x must be a float array, not an array of {x.dtype}")
    x = np.moveaxis(x.astype(np.float32).astype(np.float64), axis, -1)
    K = x.shape[-1]
    xp = _se.pad_last(x, f.k1)
    xb = xp.reshape(xp.shape[:-1] + (-1, f.k1 // f.k2, f.k2))
    bad = ~np.isfinite(xb)
    a = np.where(bad, 0.0, np.abs(xb))
    a = np.where(a < 2.0 ** -126, 0.0, a)                      # flush FP32 subnormals
    ef = _exp_field(a)
    E = ef.max(axis=(-1, -2))
    Es = ef.max(axis=-1)
    D = np.minimum(E[..., None] - Es, (1 << f.d2) - 1)
    lsb = (E[..., None] - 127 - D + 1 - f.m)[..., None]
    M = np.rint(np.ldexp(a, (-lsb).astype(np.int32)))
    M = np.minimum(M, (1 << f.m) - 1).astype(np.int64)
    nanblk = bad.any(axis=(-1, -2))
    E = np.where(nanblk, 0xFF, E)
    M = np.where(nanblk[..., None, None], 0, M)
    D = np.where(nanblk[..., None], 0, D)
    sign = (np.signbit(xb) & ~bad & (M > 0)).astype(np.uint8)
    sign = np.where(nanblk[..., None, None], 0, sign)
    lead = xb.shape[:-3]
    mag = M.reshape(lead + (-1,))[..., :K]
    sign = sign.reshape(lead + (-1,))[..., :K]
    micro = D.reshape(lead + (-1,))
    return BdrBlocks(np.moveaxis(E.astype(np.uint8), -1, axis),
                     np.moveaxis(micro.astype(np.uint8), -1, axis),
                     np.moveaxis(sign.astype(np.uint8), -1, axis),
                     np.moveaxis(mag.astype(np.uint8), -1, axis))


def dequantize(blocks, fmt="mx9", axis=-1):
    """Exact float64 values of :class:`BdrBlocks` (NaN for blocks with ``E = 0xFF``)."""
    f = _fmt(fmt)
    E = np.moveaxis(np.asarray(blocks.shared, dtype=np.int64), axis, -1)
    D = np.moveaxis(np.asarray(blocks.micro, dtype=np.int64), axis, -1)
    s = np.moveaxis(np.asarray(blocks.sign, dtype=np.int64), axis, -1)
    M = np.moveaxis(np.asarray(blocks.mag, dtype=np.int64), axis, -1)
    K = M.shape[-1]
    Ee = np.repeat(E, f.k1, axis=-1)[..., :K]
    De = np.repeat(D, f.k2, axis=-1)[..., :K]
    v = np.ldexp(M.astype(np.float64), (Ee - 127 - De + 1 - f.m).astype(np.int32))
    v = np.where(s == 1, -v, v)
    v = np.where(Ee == 0xFF, np.nan, v)
    return np.moveaxis(v, -1, axis)
