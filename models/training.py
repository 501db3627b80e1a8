"""Golden models of the training datapaths: SR quantiser, chunk-based and Kahan accumulation.

Each function is vectorised NumPy over code arrays and mirrors a hardware class of
:mod:`lowbit.hdl.training` (``sr_quantise`` / ``SrQuantiser``, ``chunked_mac`` / ``ChunkedMac``,
``kahan_mac`` / ``KahanMac``); the ``*_stream`` functions are their cycle models (one column per
independent unit, as :func:`lowbit.models.mac.mac_stream`).  Stochastic rounding in the FP MAC
itself is :func:`lowbit.models.mac.fp_mac` with ``rounding="stochastic"``; the random bits of
every unit come from :mod:`lowbit.models.lfsr` (or an input port) and are used exactly as
:meth:`lowbit.models.formats.FloatFormat.encode` ``(..., rounding="stochastic", sr_bits=N)``
uses them.

SR quantiser
------------
``sr_quantise(codes, in_format, out_format, ...)``: an FP32 or BF16 code is rounded once, from
its exact value, to an 8-bit-or-narrower float format (e4m3, e5m2, the FNUZ variants, e2m3,
e3m2, e2m1): ``out_format.encode(in_format.decode(codes), rounding, saturate, random_bits,
sr_bits)``.  Stochastic rounding (Gupta et al., "Deep Learning with Limited Numerical
Precision", ICML 2015; Wang et al., NeurIPS 2018) adds the N random bits below the target's LSB
and truncates; ``"nearest_even"`` is RNE.  Overflow follows the target's convention (Inf /
NaN / +-max, or +-max with ``saturate``).  NaN input gives the target's NaN; a target without
NaN (FP6, FP4: OCP MX v1.0 section 5.3 leaves the conversion implementation-defined) gives
``+max``.  Latency of the hardware: 1 cycle.

Chunk-based accumulation (Wang et al., NeurIPS 2018, section 3.1)
---------------------------------------------------------------
``chunked_mac``: the exact products ``a*b`` (:func:`lowbit.models.mac.fp_mul`) are summed in an
*inner* register of ``acc_format`` (fused: one RNE rounding per step) for ``chunk_length``
(CL) products; then the chunk sum is added (one RNE rounding) to an *outer* register of
``acc_format`` and the inner register starts a new chunk.  The last chunk of a sum may be
shorter (``last`` closes it).  Both registers start a new sum from ``-0`` (the identity that
keeps the sign of zero; :mod:`lowbit.models.mac`).  The output is the outer register.  IEEE
specials as :func:`lowbit.models.mac.round_sum` (NaN sticky within a sum, overflow to Inf or
+-max with ``saturate``).  ``chunk_length`` is 1..:data:`MAX_CHUNK_LENGTH` (the hardware's
chunk counter has 16 bits).

Kahan-compensated accumulation (Kahan, "Further remarks on reducing truncation errors",
CACM 8(1), 1965)
-----------------------------------------------------------------------------------------
``kahan_mac``: a sum ``s`` and a compensation ``c``, both ``acc_format`` codes, and per exact
product ``p``, each operation rounded to ``acc_format`` with RNE::

    y = p - c;  t = s + y;  c = (t - s) - y;  s = t

(``x - y`` is ``x + (-y)``, IEEE 754-2019 5.4.1; ``p - c`` is one rounding of the exact
product).  A new sum starts from ``s = -0, c = +0``; the output is ``s``.  IEEE arithmetic
throughout, nothing special-cased: once ``s`` is infinite, ``t - s`` is NaN and the next step
gives NaN (an overflow of a compensated sum poisons it), exactly what the four adders do.
"""

import numpy as np

from . import formats
from .checks import check_bool, check_choice, check_int
from .formats import FloatFormat
from .mac import check_acc_format, fp_mul, product_format, round_sum

__all__ = ["QUANT_ROUNDINGS", "MAX_CHUNK_LENGTH", "check_quant_input", "check_quant_output",
           "check_chunk_length", "sr_quantise", "chunked_mac", "chunked_stream", "kahan_mac",
           "kahan_stream", "kahan_step"]

#: Roundings of the quantiser.
QUANT_ROUNDINGS = ("stochastic", "nearest_even")
#: Largest chunk length: the chunk counter of :class:`lowbit.hdl.training.ChunkedMac` has 16 bits.
MAX_CHUNK_LENGTH = 1 << 16


def check_quant_input(fmt):
    """The quantiser's input format: fp32 or bf16."""
    text = "in_format must be fp32 or bf16, not {!r}"
    try:
        f = formats.get(fmt)
    except (TypeError, ValueError):
        raise (TypeError if not isinstance(fmt, str) else ValueError)(text.format(fmt)) from None
    if f not in (formats.fp32, formats.bf16):
        raise ValueError(text.format(f.name))
    return f


def check_quant_output(fmt):
    """The quantiser's output format: a signed float format of at most 8 bits with a zero."""
    text = ("out_format must be a signed float format of at most 8 bits (e4m3, e5m2, e4m3fnuz, "
            "e5m2fnuz, e2m3, e3m2, e2m1, eXmY), not {!r}")
    try:
        f = formats.get(fmt)
    except (TypeError, ValueError):
        raise (TypeError if not isinstance(fmt, str) else ValueError)(text.format(fmt)) from None
    if not isinstance(f, FloatFormat) or not f.signed or not f.subnormals or f.bits > 8:
        raise ValueError(text.format(f.name))
    return f


def check_chunk_length(chunk_length):
    """``chunk_length`` as an int in 1..MAX_CHUNK_LENGTH."""
    return check_int("chunk_length", chunk_length, 1, MAX_CHUNK_LENGTH)


def sr_quantise(codes, in_format="fp32", out_format="e4m3", rounding="stochastic",
                random_bits=None, sr_bits=8, saturate=False):
    """Quantise ``in_format`` codes to ``out_format`` codes (see the module docstring).

    Parameters
    ----------
    codes : array of int
        fp32 or bf16 bit patterns.
    rounding : str
        ``"stochastic"`` or ``"nearest_even"``.
    random_bits : array of int or numpy.random.Generator
        Stochastic only: one draw of ``sr_bits`` bits per element
        (:func:`lowbit.models.formats.draw_random_bits`).
    sr_bits : int
        N, 1..32.
    saturate : bool
        Clamp overflow and Inf to +-max.
    """
    fin = check_quant_input(in_format)
    fout = check_quant_output(out_format)
    check_choice("rounding", rounding, QUANT_ROUNDINGS)
    saturate = check_bool("saturate", saturate)
    x = fin.decode(fin.check_codes(codes))
    nan = np.isnan(x)
    v = np.where(nan, 0.0, x)
    if rounding == "stochastic":
        q = fout.encode(v, rounding="stochastic", saturate=saturate, random_bits=random_bits,
                        sr_bits=sr_bits)
    else:
        if random_bits is not None:
            raise ValueError("random_bits is only used with rounding='stochastic', not with "
                             "rounding='nearest_even'")
        check_int("sr_bits", sr_bits, 1, 32)
        q = fout.encode(v, saturate=saturate)
    fill = fout.nan_code if fout.has_nan else fout.max_code
    return np.where(nan, fill, q).astype(fout.code_dtype)


def _negzero(fmt):
    return 1 << (fmt.bits - 1)


def _neg(code, fmt):
    """Codes of ``-x`` (sign flip; NaN codes are only read as NaN, whatever their sign)."""
    return np.asarray(code).astype(np.int64) ^ _negzero(fmt)


def chunked_stream(valid, clear, last, a, b, *, a_format, b_format, acc_format="fp16",
                   chunk_length=64, saturate=False):
    """Cycle model of :class:`ChunkedMac`: ``(outer, inner)`` codes after each input cycle.

    Arrays of shape ``(cycles, ...)``.  On a valid cycle ``t``: a new sum (``clear[t]``) resets
    the outer register to ``-0`` and the chunk; the product is added to the inner register
    (``-0`` at the start of a chunk); when the chunk has ``chunk_length`` products or
    ``last[t]`` is set, the inner sum is added to the outer register and the next valid cycle
    starts a new chunk.  A cycle without ``valid`` holds the state (``clear`` alone empties
    both registers to ``+0``).  Reset state: ``+0`` in both, an empty chunk.
    """
    acc_f = check_acc_format(acc_format)
    cl = check_chunk_length(chunk_length)
    saturate = check_bool("saturate", saturate)
    pf = product_format(a_format, b_format)
    valid, clear, last = (np.asarray(v, dtype=bool) for v in (valid, clear, last))
    a, b = np.asarray(a), np.asarray(b)
    shape = valid.shape[1:]
    nz = _negzero(acc_f)
    inner = np.zeros(shape, dtype=np.int64)
    outer = np.zeros(shape, dtype=np.int64)
    count = np.zeros(shape, dtype=np.int64)
    out_o = np.empty(valid.shape, dtype=acc_f.code_dtype)
    out_i = np.empty(valid.shape, dtype=acc_f.code_dtype)
    for t in range(valid.shape[0]):
        p = pf.decode(fp_mul(a[t], b[t], a_format, b_format))
        cnt0 = np.where(clear[t], 0, count)
        i0 = np.where(cnt0 == 0, nz, inner)
        o0 = np.where(clear[t], nz, outer)
        i1 = round_sum(acc_f.decode(i0), p, acc_f, saturate).astype(np.int64)
        close = last[t] | (cnt0 + 1 == cl)
        o1 = np.where(close, round_sum(acc_f.decode(o0), acc_f.decode(i1), acc_f, saturate),
                      o0).astype(np.int64)
        v = valid[t]
        inner = np.where(v, i1, np.where(clear[t], 0, inner))
        outer = np.where(v, o1, np.where(clear[t], 0, outer))
        count = np.where(v, np.where(close, 0, cnt0 + 1), np.where(clear[t], 0, count))
        out_o[t], out_i[t] = outer, inner
    return out_o, out_i


def chunked_mac(a_codes, b_codes, a_format, b_format, acc_format="fp16", chunk_length=64,
                saturate=False):
    """``sum_k a[..., k] * b[..., k]`` along the last axis by chunk-based accumulation.

    Returns the outer register after the last product (the last chunk closed), codes of
    ``acc_format``, shape ``a_codes.shape[:-1]``.
    """
    a_codes, b_codes = np.broadcast_arrays(np.asarray(a_codes), np.asarray(b_codes))
    n = a_codes.shape[-1]
    shape = (n,) + a_codes.shape[:-1]
    clear = np.zeros(shape, dtype=bool)
    last = np.zeros(shape, dtype=bool)
    if n:
        clear[0] = True
        last[-1] = True
    outer, _ = chunked_stream(np.ones(shape, dtype=bool), clear, last,
                              np.moveaxis(a_codes, -1, 0), np.moveaxis(b_codes, -1, 0),
                              a_format=a_format, b_format=b_format, acc_format=acc_format,
                              chunk_length=chunk_length, saturate=saturate)
    return outer[-1] if n else np.zeros(a_codes.shape[:-1], dtype=check_acc_format(
        acc_format).code_dtype)


def kahan_step(s_code, c_code, p, acc_format="fp16", saturate=False):
    """One Kahan step (module docstring): ``(s, c)`` codes after adding the exact value ``p``.

    ``s_code``, ``c_code`` are ``acc_format`` codes of the sum and the compensation; ``p`` is a
    float64 array of exact addends (an exact product, or any value float64 holds exactly, e.g.
    an FP32 weight update in a compensated SGD step).  Four RNE roundings to ``acc_format``.
    """
    acc_f = check_acc_format(acc_format)
    dec = acc_f.decode
    y = round_sum(p, dec(_neg(c_code, acc_f)), acc_f, saturate)
    t = round_sum(dec(s_code), dec(y), acc_f, saturate)
    d = round_sum(dec(t), dec(_neg(s_code, acc_f)), acc_f, saturate)
    c = round_sum(dec(d), dec(_neg(y, acc_f)), acc_f, saturate)
    return t.astype(np.int64), c.astype(np.int64)


def kahan_stream(valid, clear, a, b, *, a_format, b_format, acc_format="fp16", saturate=False):
    """Cycle model of :class:`KahanMac`: ``(s, c)`` codes after each input cycle.

    On a valid cycle the step of the module docstring is applied to ``(s, c)`` (``(-0, +0)``
    when ``clear[t]`` starts a new sum); else ``clear`` alone empties both to ``+0``, and
    nothing holds.  Reset state ``(+0, +0)``.
    """
    acc_f = check_acc_format(acc_format)
    saturate = check_bool("saturate", saturate)
    pf = product_format(a_format, b_format)
    valid, clear = np.asarray(valid, dtype=bool), np.asarray(clear, dtype=bool)
    a, b = np.asarray(a), np.asarray(b)
    shape = valid.shape[1:]
    s = np.zeros(shape, dtype=np.int64)
    c = np.zeros(shape, dtype=np.int64)
    out_s = np.empty(valid.shape, dtype=acc_f.code_dtype)
    out_c = np.empty(valid.shape, dtype=acc_f.code_dtype)
    for t in range(valid.shape[0]):
        p = pf.decode(fp_mul(a[t], b[t], a_format, b_format))
        s0 = np.where(clear[t], _negzero(acc_f), s)
        c0 = np.where(clear[t], 0, c)
        tt, c1 = kahan_step(s0, c0, p, acc_f, saturate)
        v = valid[t]
        s = np.where(v, tt, np.where(clear[t], 0, s)).astype(np.int64)
        c = np.where(v, c1, np.where(clear[t], 0, c)).astype(np.int64)
        out_s[t], out_c[t] = s, c
    return out_s, out_c


def kahan_mac(a_codes, b_codes, a_format, b_format, acc_format="fp16", saturate=False):
    """``sum_k a[..., k] * b[..., k]`` along the last axis with Kahan compensation.

    Returns ``s`` after the last step (``acc_format`` codes, shape ``a_codes.shape[:-1]``).
    """
    a_codes, b_codes = np.broadcast_arrays(np.asarray(a_codes), np.asarray(b_codes))
    n = a_codes.shape[-1]
    shape = (n,) + a_codes.shape[:-1]
    if not n:
        return np.zeros(a_codes.shape[:-1], dtype=check_acc_format(acc_format).code_dtype)
    clear = np.zeros(shape, dtype=bool)
    clear[0] = True
    s, _ = kahan_stream(np.ones(shape, dtype=bool), clear, np.moveaxis(a_codes, -1, 0),
                        np.moveaxis(b_codes, -1, 0), a_format=a_format, b_format=b_format,
                        acc_format=acc_format, saturate=saturate)
    return s[-1]
