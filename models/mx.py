"""OCP Microscaling (MX v1.0) block formats: quantise, dequantise, dot products.

An MX block is ``k`` (default 32) private elements sharing one E8M0 scale
``X = 2^(E - 127)``; element ``i`` has the value ``X * P_i`` (OCP Microscaling Formats (MX)
Specification v1.0, section 5).

Element types (:data:`ELEMENTS`)
--------------------------------
``"mxfp8_e4m3"``, ``"mxfp8_e5m2"`` (OFP8), ``"mxfp6_e2m3"``, ``"mxfp6_e3m2"``,
``"mxfp4_e2m1"`` (no Inf/NaN) and ``"mxint8"``.  Short names ``e4m3``, ``e5m2``,
``e2m3``, ``e3m2``, ``e2m1``, ``int8`` are accepted too.

MXINT8 element encoding: an 8-bit two's-complement integer ``v`` read as ``v * 2^-6``
(Q1.6; gfloat's ``format_info_ocp_int8``, Arm ``ct`` "strictly more like Q1.6").  Decoding
accepts every code, so 0x80 is -2.0 and 0x7F is 1 63/64.  Quantisation is symmetric: it
clamps to +-127/64 and never produces 0x80 (-2), as microsoft/microxcaling does (the spec
permits restricting the negative range, per Arm's ``ct`` comment).  ``emax_elem = 0``.

Quantisation (:func:`quantize`) -- the OCP MX v1.0 sample rule (Rouhani et al.,
arXiv:2310.10537, Algorithm 1)
------------------------------------------------------------------------------------
1. ``amax`` = largest finite ``|x|`` of the block.
2. ``shared_exp = floor(log2(amax)) - emax_elem`` (``emax_elem`` = exponent of the element
   format's largest normal: e4m3 8, e5m2 15, e2m3 2, e3m2 4, e2m1 2, int8 0), clamped to
   the E8M0 range ``[-127, 127]`` (below: -127 as in microxcaling/gfloat; above cannot
   happen for FP32 input and is clamped to 127 for wider input, the elements then
   saturate).  An all-zero block gets ``shared_exp = -127`` (code 0x00) and zero
   elements (gfloat, microxcaling).
3. ``P_i = x_i / 2^shared_exp`` rounded to the element format with ``rounding``
   (default round-to-nearest-even; see below) and clamped to +-(element max) ("normal numbers that
   exceed the representable range of the element format are clamped to the maximum
   representable value, preserving the sign", Algorithm 1).  Subnormal elements are
   kept, and FP32-subnormal inputs are not flushed (a documented departure from
   Algorithm 1's simplification).  The largest element can saturate: the FLOOR rule
   puts it in [2^emax, 2^(emax+1)) while the element max is below 2^(emax+1).

Element rounding (``rounding``, :func:`round_elements`): ``"nearest_even"`` (default;
what torchao's casts and gfloat's default ``TiesToEven`` do), ``"toward_zero"``,
``"nearest_away"`` (round half away from zero: microsoft/microxcaling's default
``round="nearest"``, ``sign * floor(|x| / ulp + 0.5)`` in ``mx/elemwise_ops.py``) and
``"stochastic"`` (``sr_bits`` random bits added below the element's LSB, then truncation,
with the random bits passed in or drawn from a ``numpy.random.Generator``: the contract
of :meth:`lowbit.models.formats.FloatFormat.encode`).  Every mode saturates to +-max.

Inf/NaN (``nonfinite``).  ``"element"`` (the default; lowbit's rule, following the text
that accompanies Algorithm 1, "Infs and NaNs are not clamped"): the scale is computed
from the finite elements.  A NaN element becomes the element format's NaN; an Inf
element becomes Inf in E5M2 and NaN in E4M3 (which has no Inf).  In a format without NaN
(FP6, FP4, INT8) a NaN or Inf element makes the whole block NaN: scale 0xFF, elements 0.
``"block"``: every block holding an Inf or NaN is NaN -- scale 0xFF, elements 0 -- as
Algorithm 1 gives when the block's ``max |V_i|`` is Inf/NaN, and as microxcaling does
(``mx/mx_ops.py``: a shared exponent above the scale range becomes a NaN scale).  A
scale of 0xFF decodes every element of its block to NaN.

Padding: the block axis is zero-padded to a multiple of ``k`` before blocking; zeros
never change a block's amax, and the padded elements are dropped from the returned
element array (which has the input's shape); the scale array has ``ceil(K / k)`` entries
on the axis.

Dot products (:func:`mx_dot`)
----------------------------
OCP MX v1.0 section 6 leaves the internal precision of a dot product implementation
defined and asks for an FP32 result.  ``datapath="exact"`` (default): the exact sum of
all products of all blocks (each block's products scaled by ``X_a * X_b``), rounded once
to FP32, nearest-even.  ``datapath=SharedExpConfig`` (with ``n`` dividing ``k``): the
chained shared-exponent adder of :mod:`lowbit.models.shared_exp`, one step per ``n``
elements, the block scales added to the term exponents; this is what
:class:`lowbit.hdl.mx_dot.MxDotUnit` computes (with ``n = k``).  A NaN scale or element
makes the result NaN.
"""

import numpy as np

from . import formats as _formats
from . import shared_exp as _se
from .checks import check_choice, check_int

__all__ = ["ELEMENTS", "ROUNDINGS", "NONFINITE", "element_format", "int_frac_bits", "emax_elem",
           "round_elements", "quantize", "dequantize", "mx_dot", "SCALE"]

SCALE = _formats.e8m0

#: MX element type name -> element format name.
ELEMENTS = {
    "mxfp8_e4m3": "e4m3", "mxfp8_e5m2": "e5m2", "mxfp6_e2m3": "e2m3",
    "mxfp6_e3m2": "e3m2", "mxfp4_e2m1": "e2m1", "mxint8": "int8",
}
_SHORT = {v: k for k, v in ELEMENTS.items()}

#: Q1.6: MXINT8 elements are int8 * 2^-6.
MXINT8_FRAC_BITS = 6


def element_format(elem):
    """The element :class:`~lowbit.models.formats.Format` of an MX element type name."""
    if isinstance(elem, _formats.Format):
        name = elem.name
    else:
        name = str(elem).lower()
    name = ELEMENTS.get(name, name)
    if name not in _SHORT:
        raise ValueError(f"elem must be one of {', '.join(ELEMENTS)}, not {elem!r}")
    return _formats.get(name)


def int_frac_bits(fmt):
    """Fraction bits of the element (6 for MXINT8, 0 for float elements)."""
    return MXINT8_FRAC_BITS if isinstance(fmt, _formats.IntFormat) else 0


def emax_elem(fmt):
    """Exponent of the element format's largest normal number."""
    return 0 if isinstance(fmt, _formats.IntFormat) else fmt.emax


def _check_k(k):
    return check_int("k", k, 1, 4096)


def _to_last(name, x, axis):
    """``x`` as an array with the block axis ``axis`` moved last (checked against ``x``)."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{name} must be an array of at least one dimension (the block axis), "
                         f"not a scalar")
    return np.moveaxis(x, check_int("axis", axis, -x.ndim, x.ndim - 1), -1)


def _blocks(x, k, axis):
    x = _to_last("x", x, axis)
    K = x.shape[-1]
    x = _se.pad_last(x, k)
    return x.reshape(x.shape[:-1] + (x.shape[-1] // k, k)), K


#: Element roundings of :func:`quantize` (and :mod:`lowbit.models.nvfp4`).
ROUNDINGS = ("nearest_even", "toward_zero", "nearest_away", "stochastic")
#: Treatments of blocks holding Inf/NaN (module docstring).
NONFINITE = ("element", "block")


def round_elements(fmt, y, rounding="nearest_even", random_bits=None, sr_bits=8):
    """Codes of the finite values ``y`` in the element format ``fmt``, saturating to
    +-max (OCP MX v1.0 / arXiv:2310.10537 Algorithm 1: normal numbers beyond the element
    range are clamped).

    ``rounding``: ``"nearest_even"`` (IEEE roundTiesToEven), ``"toward_zero"``,
    ``"nearest_away"`` (round half away from zero: microsoft/microxcaling's
    ``round="nearest"``, ``sign * floor(|x| / ulp + 0.5) * ulp``) or ``"stochastic"``
    (``random_bits`` as in :meth:`lowbit.models.formats.FloatFormat.encode`, already in
    ``y``'s shape).  MXINT8 (``int8``) rounds ``y * 2^6`` to an integer and clamps to
    +-127 (stochastic rounding of the two's-complement value, as ``formats`` does).
    """
    if isinstance(fmt, _formats.IntFormat):
        lim = (1 << (fmt.bits - 1)) - 1
        f = np.ldexp(y, MXINT8_FRAC_BITS)
        if rounding == "nearest_even":
            q = np.rint(f)
        elif rounding == "toward_zero":
            q = np.trunc(f)
        elif rounding == "nearest_away":
            q = np.copysign(np.floor(np.abs(f) + 0.5), f)
        else:
            q = fmt.decode(fmt.encode(np.clip(f, -lim - 1, lim + 1), rounding="stochastic",
                                      saturate=True, random_bits=random_bits,
                                      sr_bits=sr_bits)).astype(np.float64)
        return fmt.to_codes(np.clip(q, -lim, lim).astype(np.int64)).astype(np.int64)
    if rounding != "nearest_away":
        return fmt.encode(y, rounding=rounding, saturate=True, random_bits=random_bits,
                          sr_bits=sr_bits).astype(np.int64)
    # ties away from zero: the two neighbours of |y| in the format, by value
    a = np.abs(y)
    lo = fmt.encode(a, rounding="toward_zero", saturate=True).astype(np.int64)
    hi = np.minimum(lo + 1, fmt.max_code)
    vlo, vhi = fmt.decode(lo), fmt.decode(hi)
    up = (hi != lo) & (a - vlo >= vhi - a)
    mag = np.where(up, hi, lo)
    sign = np.signbit(y).astype(np.int64) << (fmt.bits - 1)
    return mag | sign


def quantize(x, elem="mxfp8_e4m3", k=32, axis=-1, rounding="nearest_even", *,
             random_bits=None, sr_bits=8, nonfinite="element"):
    """Quantise ``x`` to MX blocks along ``axis`` (see the module docstring).

    Parameters
    ----------
    x : array_like of float32/float64
    elem : str
        Element type (:data:`ELEMENTS`).
    k : int
        Block length, 1..4096 (OCP: 32).
    axis : int
        The block axis.
    rounding : str
        Element rounding (:data:`ROUNDINGS`, :func:`round_elements`): ``"nearest_even"``
        (default), ``"toward_zero"``, ``"nearest_away"`` (microxcaling's ``"nearest"``)
        or ``"stochastic"``.
    random_bits : array of int or numpy.random.Generator
        Stochastic rounding only: ``sr_bits`` random bits per element of ``x`` (an integer
        array broadcastable to ``x.shape``, or a Generator from which
        ``integers(0, 2**sr_bits, size=x.shape)`` is drawn), the contract of
        :meth:`lowbit.models.formats.FloatFormat.encode`.
    sr_bits : int
        Stochastic rounding only: random bits added below the element's LSB (1..32).
    nonfinite : str
        Blocks holding Inf/NaN: ``"element"`` (default) or ``"block"`` (module docstring).

    Returns
    -------
    (elements, scales)
        ``elements``: codes of the element format, the shape of ``x``; ``scales``: E8M0
        codes (uint8), the shape of ``x`` with ``ceil(K / k)`` on ``axis``.

    Raises
    ------
    TypeError, ValueError
        A bad parameter (the message names it).
    """
    fmt = element_format(elem)
    k = _check_k(k)
    check_choice("rounding", rounding, ROUNDINGS)
    check_choice("nonfinite", nonfinite, NONFINITE)
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise ValueError(f"x must be a float array, not an array of {x.dtype}")
    rb = None
    if rounding == "stochastic":
        rb, _ = _blocks(_formats.draw_random_bits(x.shape, random_bits, sr_bits), k, axis)
    xb, K = _blocks(x.astype(np.float64), k, axis)
    finite = np.isfinite(xb)
    a = np.where(finite, np.abs(xb), 0.0)
    amax = a.max(axis=-1)
    _, e = np.frexp(amax)
    shared = np.where(amax > 0, e - 1 - emax_elem(fmt), -127)
    shared = np.clip(shared, -127, 127).astype(np.int64)
    y = np.ldexp(np.where(finite, xb, 0.0), (-shared)[..., None].astype(np.int32))
    codes = round_elements(fmt, y, rounding, rb, sr_bits)
    scales = (shared + 127).astype(np.uint8)
    bad = ~finite
    if bad.any():
        if fmt.has_nan and nonfinite == "element":
            nan = np.isnan(xb)
            inf = np.isinf(xb)
            sign = np.signbit(xb).astype(np.int64) << (fmt.bits - 1)
            inf_code = (fmt.inf_code if fmt.has_inf else fmt.nan_code) | sign
            codes = np.where(nan, fmt.nan_code, np.where(inf, inf_code, codes))
        else:
            blk = bad.any(axis=-1)
            scales = np.where(blk, 0xFF, scales).astype(np.uint8)
            codes = np.where(blk[..., None], 0, codes)
    codes = codes.reshape(codes.shape[:-2] + (-1,))[..., :K].astype(fmt.code_dtype)
    return np.moveaxis(codes, -1, axis), np.moveaxis(scales, -1, axis)


def dequantize(elements, scales, elem="mxfp8_e4m3", k=32, axis=-1):
    """Exact values (float64) of MX blocks: ``X * P_i``; a NaN scale gives NaN elements.

    ``elements`` has K entries on ``axis`` and ``scales`` ``ceil(K / k)``.
    """
    fmt = element_format(elem)
    k = _check_k(k)
    el = _to_last("elements", elements, axis)
    sc = _to_last("scales", scales, axis)
    K = el.shape[-1]
    nb = -(-K // k)
    if sc.shape[-1] != nb:
        raise ValueError(f"scales must have ceil(K/k) = {nb} entries on the block axis, "
                         f"not {sc.shape[-1]}")
    v = fmt.decode(el).astype(np.float64)
    if isinstance(fmt, _formats.IntFormat):
        v = np.ldexp(v, -MXINT8_FRAC_BITS)
    s = np.repeat(SCALE.check_codes(sc).astype(np.int64), k, axis=-1)[..., :K]
    out = np.ldexp(v, (s - 127).astype(np.int32))
    out = np.where(s == 0xFF, np.nan, out)
    return np.moveaxis(out, -1, axis)


def mx_dot(a_elements, a_scales, b_elements, b_scales, elem="mxfp8_e4m3", b_elem=None, k=32,
           axis=-1, datapath="exact"):
    """MX dot products along ``axis`` (OCP MX v1.0 section 6.2), returning float32.

    ``a``/``b`` broadcast against each other; ``elem``/``b_elem`` name the element types
    (``b_elem`` defaults to ``elem``).  ``datapath`` is ``"exact"`` or a
    :class:`~lowbit.models.shared_exp.SharedExpConfig` / preset name whose ``n`` divides
    ``k`` (see the module docstring).
    """
    fa = element_format(elem)
    fb = element_format(b_elem if b_elem is not None else elem)
    k = _check_k(k)
    a = _to_last("a_elements", a_elements, axis)
    b = _to_last("b_elements", b_elements, axis)
    sa = _to_last("a_scales", a_scales, axis)
    sb = _to_last("b_scales", b_scales, axis)
    K = a.shape[-1]
    if b.shape[-1] != K:
        raise ValueError(f"a and b must have the same length on the block axis, "
                         f"not {K} and {b.shape[-1]}")
    nb = -(-K // k)
    for name, s in (("a_scales", sa), ("b_scales", sb)):
        if s.shape[-1] != nb:
            raise ValueError(f"{name} must have ceil(K/k) = {nb} entries on the block axis, "
                             f"not {s.shape[-1]}")
    sa = SCALE.check_codes(sa).astype(np.int64)
    sb = SCALE.check_codes(sb).astype(np.int64)
    scale_exp = (sa - 127) + (sb - 127)
    scale_nan = (sa == 0xFF) | (sb == 0xFF)
    ifb = (int_frac_bits(fa), int_frac_bits(fb))
    a = _se.pad_last(a, k)
    b = _se.pad_last(b, k)
    cfg = _se.get_datapath(datapath)
    if cfg == "exact":
        out = _se.exact_dot(a, b, fa, fb, axis=-1, int_frac_bits=ifb, scale_exp=scale_exp, k=k)
    else:
        if k % cfg.n:
            raise ValueError(f"datapath n={cfg.n} must divide k={k}")
        rep = k // cfg.n
        out = _se.shared_exp_dot(a, b, fa, fb, cfg, axis=-1, int_frac_bits=ifb,
                                 scale_exp=np.repeat(scale_exp, rep, axis=-1))
    nan = scale_nan.any(axis=-1)
    shape = np.broadcast_shapes(out.shape, nan.shape)
    return np.where(np.broadcast_to(nan, shape), np.float32(np.nan), out).astype(np.float32)
