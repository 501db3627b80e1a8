"""NVFP4: NVIDIA's 4-bit tensor format (E2M1 elements, UE4M3 block scales, an FP32 tensor scale).

An NVFP4 tensor is E2M1 elements (OCP MX v1.0 FP4: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their
negatives), one UE4M3 scale per 16 consecutive elements (an E4M3 code with its sign bit
0; :data:`lowbit.models.tensor_core.UE4M3`) and one FP32 scale per tensor; element ``i``
of block ``b`` is ``x_i = P_i * S_b * s``.  Sources: NVIDIA, "Pretraining Large Language
Models with NVFP4" (arXiv:2509.25149, section 2 and appendix: the format and the
quantisation recipe of Transformer Engine's ``NVFP4BlockScaling``), NVIDIA's NVFP4
introduction (developer blog "Introducing NVFP4 for efficient and accurate low-precision
inference"); the block of 16 with UE4M3 scales is also what the Blackwell
``tcgen05.mma kind::mxf4nvf4.block16 ... ue4m3`` instruction consumes
(:mod:`lowbit.models.tensor_core`), the tensor scale being applied outside it.

Quantisation (:func:`quantize`), NVIDIA's two-level recipe, every step in FP32
------------------------------------------------------------------------------
1. ``amax`` = largest finite ``|x|`` of the tensor (or ``global_amax`` when given, e.g.
   from calibration).  Tensor decode scale ``s = fp32(amax / (6 * 448))`` (6: E2M1's
   largest value, 448: E4M3's), encode scale ``s_enc = fp32((6 * 448) / amax)``; an
   all-zero tensor uses ``s = s_enc = 1``.
2. Per block of 16: ``amax_b`` = largest finite ``|x|`` of the block; the block decode
   scale ``amax_b / 6`` is stored relative to the tensor scale as a UE4M3 code,
   ``S_b = e4m3(fp32(fp32(amax_b / 6) * s_enc))``, rounded to nearest even and saturated
   at 448.
3. Elements: ``P_i = e2m1(fp32(x_i * fp32(s_enc / fp32(S_b))))`` -- the block encode scale
   ``s_enc / S_b`` is the reciprocal of the effective decode scale ``S_b * s`` --
   rounded with ``rounding`` (default nearest even; ``"stochastic"`` is the recipe's
   rounding for gradients, with the random-bits contract of
   :meth:`lowbit.models.formats.FloatFormat.encode`) and saturated at +-6.  A block whose
   scale code is 0 (``amax_b`` 0, or too small for UE4M3) has zero elements.

Dequantisation (:func:`dequantize`): ``P_i * S_b * s``, exactly (float64).

Inf/NaN (a choice, as ``nonfinite="block"`` of :mod:`lowbit.models.mx`: E2M1 has neither):
``amax`` and ``amax_b`` are taken over the finite values, and a block holding an Inf or
NaN gets the UE4M3 NaN scale 0x7F (its elements 0), which dequantises to NaN.
"""

import numpy as np

from . import formats as _formats
from . import mx as _mx
from . import shared_exp as _se
from . import tensor_core as _tc
from .checks import check_choice, check_number

__all__ = ["BLOCK", "ELEMENT", "SCALE", "quantize", "dequantize"]

#: Elements per block scale.
BLOCK = 16
#: The element format (E2M1).
ELEMENT = _formats.e2m1
#: The block-scale format: unsigned E4M3 (NaN 0x7F, max 0x7E = 448), the one format object
#: the tensor-core model uses too.
SCALE = _tc.UE4M3

_F32 = np.float32
_E2M1_MAX = 6.0
_E4M3_MAX = 448.0


def quantize(x, axis=-1, rounding="nearest_even", *, random_bits=None, sr_bits=8,
             global_amax=None):
    """Quantise ``x`` to NVFP4 along ``axis`` (blocks of 16; see the module docstring).

    Parameters
    ----------
    x : array_like of float32/float64
        Read as FP32 (nearest even), as the recipe runs in FP32.
    axis : int
        The block axis (zero-padded to a multiple of 16; the padding is dropped).
    rounding : str
        Element rounding: ``"nearest_even"`` (default), ``"toward_zero"``,
        ``"nearest_away"`` or ``"stochastic"`` (:func:`lowbit.models.mx.round_elements`).
    random_bits, sr_bits
        Stochastic rounding only, as in :func:`lowbit.models.mx.quantize`.
    global_amax : float, optional
        The tensor amax to derive the tensor scale from (default: that of ``x``).

    Returns
    -------
    (elements, scales, tensor_scale)
        ``elements``: E2M1 codes (uint8 0..15), the shape of ``x``; ``scales``: UE4M3
        codes (uint8), ``ceil(K / 16)`` on ``axis``; ``tensor_scale``: the FP32 decode
        scale ``s`` (a numpy.float32).
    """
    check_choice("rounding", rounding, _mx.ROUNDINGS)
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise ValueError(f"x must be a float array, not an array of {x.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        x32 = x.astype(_F32)
    rb = None
    if rounding == "stochastic":
        rb = np.moveaxis(_formats.draw_random_bits(x.shape, random_bits, sr_bits), axis, -1)
        rb = _se.pad_last(rb, BLOCK).reshape(rb.shape[:-1] + (-1, BLOCK))
    xs = np.moveaxis(x32, axis, -1)
    K = xs.shape[-1]
    xb = _se.pad_last(xs, BLOCK)
    xb = xb.reshape(xb.shape[:-1] + (xb.shape[-1] // BLOCK, BLOCK))
    finite = np.isfinite(xb)
    a = np.where(finite, np.abs(xb), _F32(0))
    if global_amax is None:
        amax = _F32(a.max()) if a.size else _F32(0)
    else:
        amax = _F32(check_number("global_amax", global_amax, lo=0.0))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if amax > 0:
            s_dec = _F32(amax / _F32(_E2M1_MAX * _E4M3_MAX))
            s_enc = _F32(_F32(_E2M1_MAX * _E4M3_MAX) / amax)
        else:
            s_dec = s_enc = _F32(1.0)
        amax_b = a.max(axis=-1)
        sb = (amax_b / _F32(_E2M1_MAX)).astype(_F32) * s_enc
        scodes = _formats.e4m3.encode(sb.astype(_F32), saturate=True).astype(np.int64) & 0x7F
        sval = SCALE.decode(scodes).astype(_F32)
        live = sval > 0
        enc = np.where(live, s_enc / np.where(live, sval, _F32(1)), _F32(0)).astype(_F32)
        y = (np.where(finite, xb, _F32(0)) * enc[..., None]).astype(_F32)
    codes = _mx.round_elements(ELEMENT, y.astype(np.float64), rounding, rb, sr_bits)
    codes = np.where(live[..., None], codes, 0)
    bad = (~finite).any(axis=-1)
    scodes = np.where(bad, SCALE.nan_code, scodes)
    codes = np.where(bad[..., None], 0, codes)
    codes = codes.reshape(codes.shape[:-2] + (-1,))[..., :K].astype(np.uint8)
    return (np.moveaxis(codes, -1, axis), np.moveaxis(scodes.astype(np.uint8), -1, axis),
            s_dec)


def dequantize(elements, scales, tensor_scale, axis=-1):
    """Exact values (float64) of NVFP4 data: ``P_i * S_b * s``; a NaN scale (0x7F) gives
    NaN elements.  ``elements`` has K entries on ``axis``, ``scales`` ``ceil(K / 16)``."""
    el = np.moveaxis(ELEMENT.check_codes(np.asarray(elements)), axis, -1)
    sc = np.moveaxis(SCALE.check_codes(np.asarray(scales)), axis, -1)
    K = el.shape[-1]
    nb = -(-K // BLOCK)
    if sc.shape[-1] != nb:
        raise ValueError(f"scales must have ceil(K/16) = {nb} entries on the block axis, "
                         f"not {sc.shape[-1]}")
    s = np.float64(check_number("tensor_scale", tensor_scale))
    v = ELEMENT.decode(el) * np.repeat(SCALE.decode(sc), BLOCK, axis=-1)[..., :K] * s
    return np.moveaxis(v, -1, axis)
