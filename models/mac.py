"""Golden model of the multiply-accumulate units: integer MAC, exact FP multiplier, FP MAC.

Every function is vectorised NumPy over code arrays (bit patterns, as
:meth:`lowbit.models.formats.Format.decode` takes them) and mirrors a hardware class of
:mod:`lowbit.hdl` with the same parameters: :func:`int_mac` / :class:`~lowbit.hdl.int_mac.IntMac`,
:func:`fp_mul` / :class:`~lowbit.hdl.fp_mul.FpMultiplier`, :func:`fp_mac` /
:class:`~lowbit.hdl.fp_mac.FpMac`.  The per-step functions :func:`int_mac_step`,
:func:`fp_mac_step` and :func:`kulisch_step` are the accumulation step the hardware performs
once per valid input; other code (the systolic array) applies them in its own order.

Integer MAC
-----------
``a`` and ``b`` are INTn or UINTn codes (n = 2..16, mixed signedness allowed).  The product is
exact (:func:`int_product_range` gives its range; it always fits in int64).  The accumulator is
a signed two's-complement integer of ``acc_bits`` bits (2..64, default 32), held as its value
(an int64 array).  Each step computes ``acc + a*b`` exactly and then either wraps it modulo
``2^acc_bits`` (``overflow="wrap"``, what a plain adder does) or clamps it to
``[-2^(acc_bits-1), 2^(acc_bits-1) - 1]`` (``overflow="saturate"``).  A new sum starts from 0.

FP multiplier
-------------
``a`` (format A) times ``b`` (format B) for signed float formats with a zero (e4m3, e5m2, the
fnuz variants, e2m3, e3m2, e2m1, user-defined ones, mixed).  The result is exact, in the
*product format* :func:`product_format` ``(A, B)``: an IEEE-style format with

* ``man_bits = A.man_bits + B.man_bits + 1``: the significand product of a ``(ma+1)``-bit and a
  ``(mb+1)``-bit integer has at most ``ma + mb + 2`` bits, i.e. a hidden bit and
  ``ma + mb + 1`` fraction bits once normalised;
* a bias and exponent width chosen so that every exponent from that of the smallest product
  (``min_subnormal(A) * min_subnormal(B) = 2^(emin_A - ma + emin_B - mb)``) to that of the
  largest (``max(A) * max(B)``) is a *normal* exponent.

Hence every product of two finite codes is a normal number (or zero) of the product format and
no rounding ever happens; ``tests/test_models_mac.py`` checks this for every code pair of the
format pairs the issue names, against exact rational arithmetic.  Specials (IEEE 754-2019 7.2,
OCP OFP8 rev 1.0): NaN in -> NaN out, ``Inf * 0 = NaN``, ``Inf * x = +-Inf``; every NaN result
is the product format's canonical NaN (positive, quiet).  The sign of a zero product is the XOR
of the signs (``+0 * -3 = -0``), also for FNUZ inputs, which have no -0 themselves.  With
``flush_subnormals=True`` subnormal inputs are replaced by a zero of the same sign first.

FP MAC
------
The exact product is accumulated into ``acc_format`` (fp32, fp16, bf16 or any IEEE-style float
format), rounding to nearest, ties to even, in one of three ``mode`` s:

``"fused"``         ``acc <- round(acc + a*b)``: one rounding per step, after the exact add (FMA).
``"two_roundings"`` ``acc <- round(acc + round(a*b))``: the product is first rounded to the
                    accumulator format (overflowing to Inf / saturating like any result), then
                    added and rounded again.
``"kulisch"``       an exact two's-complement fixed-point accumulator (Kulisch & Miranker) whose
                    LSB is the smallest product's LSB and whose width is
                    :func:`kulisch_width` ``(A, B, terms)``: enough for the largest product
                    magnitude plus sign plus ``ceil(log2(terms))`` guard bits, so ``terms``
                    products of any values are summed exactly.  Beyond ``terms`` products the
                    register wraps modulo ``2^width`` (as the hardware does).  The output is the
                    accumulator rounded once to ``acc_format`` when read.

Shared rules:

* Rounding is RNE; a result whose magnitude rounds (with unbounded exponent) above ``max``
  overflows to +-Inf, or to +-max with ``saturate=True``.  ``saturate`` clamps only results of
  finite operands: an Inf operand still gives Inf (it is not an overflow).
* NaN: any NaN operand, ``Inf * 0``, and ``Inf + -Inf`` (an Inf accumulator plus an Inf product
  of the other sign, or in Kulisch mode Inf products of both signs in one sum) give the
  accumulator format's canonical NaN (positive quiet NaN); NaN is sticky until ``clear``.
* Subnormal inputs, products and sums are exact (no flushing).  With ``flush_subnormals=True``:
  subnormal operands ``a``, ``b`` and a subnormal accumulator input are read as zero of the same
  sign, the rounded product of ``two_roundings`` and every result are rounded first and then, if
  the rounded value is subnormal, replaced by zero of the same sign ("flush after rounding").
* **Sign of a zero sum** (IEEE 754-2019 6.3, roundTiesToEven): when the exact sum ``x + y`` of two
  operands is zero it is ``+0`` unless both operands are ``-0`` (then ``-0``); ``x + (-x) = +0``.
  A non-zero exact result that rounds to zero (underflow) keeps its sign: ``-tiny -> -0``.
  A *new sum* (``clear``) starts from ``-0``, the additive identity that preserves every value
  including the sign of a zero first product (``-0 + p = p``); the empty accumulator after reset
  or a ``clear`` without a term reads ``+0``.  In Kulisch mode the exact sum of a sequence is
  zero with sign ``-`` exactly when every product since the new sum began was ``-0`` (what exact
  IEEE additions in any order give); any other exact zero reads ``+0``.

Double rounding: the model never rounds through an intermediate format.  Products are exact in
float64 (at most 48 significand bits, exponents far inside float64's range).  A sum of two
float64 values is computed as ``s = fl(x + y)`` plus its exact error ``e`` (Knuth's TwoSum, exact
in binary64 barring overflow) and turned into the *round-to-odd* float64 of ``x + y`` (truncate,
then set the last bit if inexact).  Rounding a round-to-odd value with at least ``p + 2``
significand bits to ``p`` bits with RNE gives the correctly rounded result (Boldo & Melquiond,
"Emulation of FMA and correctly rounded sums: proved algorithms using rounding to odd", IEEE
Trans. Computers 57(4), 2008, Theorem 1); here ``p <= 24 << 51``.  The final rounding is
:meth:`FloatFormat.encode`, which rounds a float64 exactly once.  The Kulisch read-out splits the
wide integer into two float64-exact halves and uses the same exact-sum routine.
"""

import dataclasses
import math

import numpy as np

from . import formats
from .checks import check_choice, check_int
from .formats import FloatFormat, IntFormat

__all__ = [
    "INT_OVERFLOWS", "FP_MAC_MODES", "FP_MAC_ROUNDINGS", "max_sr_bits", "check_rounding",
    "check_int_operand", "check_acc_bits", "check_overflow", "int_product_range", "int_product_bits",
    "int_mul", "wrap_int", "saturate_sum", "int_mac_step", "int_mac", "int_dot",
    "check_float_operand", "check_acc_format", "check_mode", "check_terms",
    "product_format", "fp_mul", "round_sum", "fp_accumulate", "fp_mac_step",
    "kulisch_width", "KulischState", "kulisch_empty", "kulisch_new_sum", "kulisch_add",
    "kulisch_step", "kulisch_read", "fp_mac", "mac_stream",
]

#: Overflow policies of the integer accumulator.
INT_OVERFLOWS = ("wrap", "saturate")
#: Accumulation modes of the FP MAC.
FP_MAC_MODES = ("fused", "two_roundings", "kulisch")
#: Roundings of the FP MAC's accumulator (``"stochastic"``: Wang et al., NeurIPS 2018).
FP_MAC_ROUNDINGS = ("nearest_even", "stochastic")

_INT_MAX_OPERAND_BITS = 16
_ACC_BITS_RANGE = (2, 64)
_MAX_TERMS = 1 << 32


# ------------------------------------------------------------------------------------------
# parameter validation (shared with lowbit.hdl so that messages are identical)
# ------------------------------------------------------------------------------------------

def _lookup(fmt, message):
    """``formats.get(fmt)``; a name it refuses raises ``message`` instead (:class:`TypeError`
    for a value that is neither a str nor a Format, :class:`ValueError` otherwise)."""
    try:
        return formats.get(fmt)
    except TypeError:
        raise TypeError(message) from None
    except ValueError:
        raise ValueError(message) from None


def check_int_operand(fmt, name):
    """Return the :class:`IntFormat` named by ``fmt`` (INTn/UINTn, n = 2..16) or raise ValueError
    (TypeError if ``fmt`` is neither a str nor a Format)."""
    text = f"{name} must be an integer format int2..int16 or uint2..uint16, not {{!r}}"
    f = _lookup(fmt, text.format(fmt))
    if not isinstance(f, IntFormat) or not 2 <= f.bits <= _INT_MAX_OPERAND_BITS:
        raise ValueError(text.format(getattr(f, "name", fmt)))
    return f


def check_acc_bits(acc_bits):
    """Validate the integer accumulator width (2..64)."""
    return check_int("acc_bits", acc_bits, *_ACC_BITS_RANGE)


def check_overflow(overflow):
    return check_choice("overflow", overflow, INT_OVERFLOWS)


def check_float_operand(fmt, name):
    """Return the :class:`FloatFormat` named by ``fmt`` if it can be a multiplier operand.

    Operands are signed float formats with a zero (every format but E8M0) of at most 16 bits.
    """
    text = (f"{name} must be a signed float format of at most 16 bits (e4m3, e5m2, e4m3fnuz, "
            f"e5m2fnuz, e2m3, e3m2, e2m1, eXmY...), not {{!r}}")
    f = _lookup(fmt, text.format(fmt))
    if not isinstance(f, FloatFormat) or not f.signed or not f.subnormals or f.bits > 16:
        raise ValueError(text.format(getattr(f, "name", fmt)))
    return f


def check_acc_format(fmt):
    """Return the accumulator :class:`FloatFormat` (IEEE specials: fp32, fp16, bf16, ...)."""
    text = "acc_format must be an IEEE-style float format (fp32, fp16, bf16, eXmY), not {!r}"
    f = _lookup(fmt, text.format(fmt))
    if not isinstance(f, FloatFormat) or f.specials != "ieee" or not f.signed \
            or not f.subnormals:
        raise ValueError(text.format(getattr(f, "name", fmt)))
    return f


def check_mode(mode):
    return check_choice("mode", mode, FP_MAC_MODES)


def check_terms(terms):
    return check_int("terms", terms, 1, _MAX_TERMS)


def max_sr_bits(acc_format):
    """The largest number N of stochastic-rounding bits an accumulator in ``acc_format`` uses.

    The model rounds the round-to-odd float64 of the exact sum (53 significand bits, the last
    one sticky).  Stochastic rounding with N bits truncates the magnitude ``N`` bits below the
    result's LSB, i.e. at ``p + N`` significant bits (``p = man_bits + 1``); that truncation of
    the round-to-odd value equals the truncation of the exact sum while ``p + N <= 52`` (the
    sticky bit lies below the cut).  The hardware keeps the same ``N`` bits below the LSB plus
    a sticky bit.  Capped at 32, the limit of :meth:`FloatFormat.encode`:
    fp32 -> 28, fp16 -> 32, bf16 -> 32.
    """
    f = check_acc_format(acc_format)
    return min(32, 52 - (f.man_bits + 1))


def check_rounding(rounding, random_bits, sr_bits, acc_format, shape):
    """Checked ``(rounding, random_bits, sr_bits)`` of an FP accumulation step.

    ``rounding`` is one of :data:`FP_MAC_ROUNDINGS`.  ``"stochastic"`` needs ``random_bits``:
    integer values ``0 .. 2^sr_bits - 1`` broadcasting to ``shape`` (one draw per step;
    :func:`lowbit.models.formats.draw_random_bits` is the one contract), and ``sr_bits`` in
    ``1 .. max_sr_bits(acc_format)``; ``"nearest_even"`` refuses ``random_bits``.
    """
    check_choice("rounding", rounding, FP_MAC_ROUNDINGS)
    if rounding == "nearest_even":
        if random_bits is not None:
            raise ValueError("random_bits is only used with rounding='stochastic', not with "
                             "rounding='nearest_even'")
        return rounding, None, check_int("sr_bits", sr_bits, 1, 32)
    sr_bits = check_int("sr_bits", sr_bits, 1, max_sr_bits(acc_format))
    return rounding, formats.draw_random_bits(shape, random_bits, sr_bits), sr_bits


# ------------------------------------------------------------------------------------------
# integer MAC
# ------------------------------------------------------------------------------------------

def int_product_range(a_format, b_format):
    """(min, max) of the exact product of an ``a_format`` and a ``b_format`` value."""
    a = check_int_operand(a_format, "a_format")
    b = check_int_operand(b_format, "b_format")
    corners = [x * y for x in (a.min, a.max) for y in (b.min, b.max)]
    return min(corners), max(corners)


def int_product_bits(a_format, b_format):
    """Width of the smallest two's-complement integer that holds every product."""
    lo, hi = int_product_range(a_format, b_format)
    return max(hi.bit_length(), (-lo - 1).bit_length()) + 1


def int_mul(a_code, b_code, a_format, b_format):
    """Exact products (int64 values) of integer codes."""
    a = check_int_operand(a_format, "a_format")
    b = check_int_operand(b_format, "b_format")
    return a.decode(a_code).astype(np.int64) * b.decode(b_code).astype(np.int64)


def wrap_int(v, bits):
    """``v`` (int64 array) reduced modulo ``2^bits`` to the signed range
    ``-2^(bits-1) .. 2^(bits-1) - 1`` (``bits`` = 1..64), exactly.

    The low ``bits`` bits are moved to the top of a uint64 (modular, so exact) and shifted
    back arithmetically: the sign extension of the ``bits``-bit two's-complement pattern.
    """
    v = np.asarray(v, dtype=np.int64)
    s = 64 - bits
    if s == 0:
        return v
    flat = v.reshape(-1)
    out = (flat.view(np.uint64) << np.uint64(s)).view(np.int64) >> np.int64(s)
    return out.reshape(v.shape)


def saturate_sum(acc, p, bits):
    """``acc + p`` clamped to ``-2^(bits-1) .. 2^(bits-1) - 1`` exactly (int64 arrays, ``acc``
    inside that range, ``|p| <= 2^32``; ``bits`` = 2..64).

    Below 64 bits the sum fits in int64 (``|acc + p| < 2^62 + 2^32``).  At 64 bits it may not:
    the int64 sum wraps (modulo 2^64, which NumPy's integer addition is) and an overflow is
    recognised as a wrapped sum whose sign differs from two operands of equal sign.
    """
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    with np.errstate(over="ignore"):
        s = acc + p
    if bits < 64:
        return np.clip(s, lo, hi)
    ovf = ((acc >= 0) == (p >= 0)) & ((s >= 0) != (acc >= 0))
    return np.where(ovf, np.where(acc >= 0, np.int64(hi), np.int64(lo)), s)


def int_mac_step(acc, a_code, b_code, a_format, b_format, acc_bits=32, overflow="wrap"):
    """One accumulation step: ``acc + a*b`` wrapped or saturated to ``acc_bits`` bits.

    Exact for every ``acc_bits`` up to 64: products of operands of at most 16 bits lie within
    ``+-2^32``, so the int64 sum is exact below 64 bits, and at 64 bits int64 addition is the
    64-bit register's own modular addition (overflow is detected from the signs).

    Parameters
    ----------
    acc : array of int
        Accumulator values (signed, already within the ``acc_bits`` range).
    a_code, b_code : array of int
        Operand codes (bit patterns) of ``a_format`` / ``b_format``.
    acc_bits : int
        Accumulator width, 2..64.
    overflow : str
        ``"wrap"`` (modulo ``2^acc_bits``) or ``"saturate"`` (clamp).

    Returns
    -------
    numpy.ndarray of int64
        The new accumulator values.
    """
    acc_bits = check_acc_bits(acc_bits)
    check_overflow(overflow)
    p = int_mul(a_code, b_code, a_format, b_format)
    acc = np.asarray(acc).astype(np.int64)
    acc, p = np.broadcast_arrays(acc, p)
    if overflow == "saturate":
        return np.asarray(saturate_sum(acc, p, acc_bits), dtype=np.int64)
    with np.errstate(over="ignore"):
        s = acc + p                                  # modulo 2^64 at worst
    return wrap_int(s, acc_bits)


def int_mac(a_codes, b_codes, a_format, b_format, acc_bits=32, overflow="wrap", partials=False):
    """Accumulate ``sum_k a[..., k] * b[..., k]`` along the last axis, step by step from 0.

    Returns the final accumulator values (int64, shape ``a_codes.shape[:-1]``), or with
    ``partials=True`` every partial sum (same shape as the inputs).
    """
    a_codes, b_codes = np.broadcast_arrays(np.asarray(a_codes), np.asarray(b_codes))
    acc = np.zeros(a_codes.shape[:-1], dtype=np.int64)
    out = np.empty(a_codes.shape, dtype=np.int64)
    for k in range(a_codes.shape[-1]):
        acc = int_mac_step(acc, a_codes[..., k], b_codes[..., k], a_format, b_format,
                           acc_bits, overflow)
        out[..., k] = acc
    return out if partials else acc


def int_dot(a_codes, b_codes, c, a_format, b_format, acc_bits=32):
    """``c + sum_k a[..., k] * b[..., k]`` modulo ``2^acc_bits`` (two's complement), the
    golden model of ``lowbit.hdl.tensor_core_dot.IntDot`` (one step of its ``k`` products).

    Exact: every product of operands of at most 16 bits lies within ``+-2^32`` and NumPy's
    int64 addition is modular, so the wrapped result does not depend on the order of the sum.

    Parameters
    ----------
    a_codes, b_codes : array of int, shape ``[..., k]``
        Operand codes of ``a_format`` / ``b_format``.
    c : array of int, shape ``[...]``
        Incoming sums (signed values within the ``acc_bits`` range).
    acc_bits : int
        Width of c and the result, 2..64.

    Returns
    -------
    numpy.ndarray of int64
        The wrapped sums, shape ``[...]``.
    """
    acc_bits = check_acc_bits(acc_bits)
    p = int_mul(a_codes, b_codes, a_format, b_format)
    with np.errstate(over="ignore"):
        s = p.sum(axis=-1, dtype=np.int64) + np.asarray(c).astype(np.int64)
    return wrap_int(s, acc_bits)


# ------------------------------------------------------------------------------------------
# exact FP multiplier
# ------------------------------------------------------------------------------------------

_PRODUCT_FORMATS = {}


def _max_product_exponent(a, b):
    """Exponent of the MSB of max(A) * max(B), in integer arithmetic (the float64 product of
    two large maxima can overflow): ``max = (2^M + max_man) * 2^(emax - M)``."""
    sig = ((1 << a.man_bits) + a.max_man) * ((1 << b.man_bits) + b.max_man)
    return sig.bit_length() - 1 + (a.emax - a.man_bits) + (b.emax - b.man_bits)


def product_format(a_format, b_format):
    """The IEEE-style format that holds every product of ``a_format`` x ``b_format`` exactly.

    See the module docstring.  Its name is ``"p_<A>x<B>"``; every finite non-zero product is
    a normal number of it, so its subnormal range (exponent field 0) only ever holds zeros.

    Raises
    ------
    ValueError
        If an operand format is not a signed float format of at most 16 bits, or the product
        format would need more than 8 exponent or 23 mantissa bits.
    """
    a = check_float_operand(a_format, "a_format")
    b = check_float_operand(b_format, "b_format")
    key = (a, b)
    if key in _PRODUCT_FORMATS:
        return _PRODUCT_FORMATS[key]
    man = a.man_bits + b.man_bits + 1
    lo = (a.emin - a.man_bits) + (b.emin - b.man_bits)   # MSB exponent of the smallest product
    hi = _max_product_exponent(a, b)
    need = hi - lo + 1                                   # normal exponents needed
    exp_bits = 2
    while (1 << exp_bits) - 2 < need:
        exp_bits += 1
    if exp_bits > 8 or man > 23:
        raise ValueError(f"the exact product of {a.name} x {b.name} needs {exp_bits} exponent and "
                         f"{man} mantissa bits; product formats are limited to 8 and 23")
    lo_bias, hi_bias = formats.bias_range(exp_bits, man, "ieee", True)
    if not lo_bias <= 1 - lo <= hi_bias:
        raise ValueError(f"the exact products of {a.name} x {b.name} (magnitudes 2^{lo} to "
                         f"2^{hi + 1}) are not all float64 numbers")
    fmt = FloatFormat(f"p_{a.name}x{b.name}", exp_bits, man, 1 - lo, "ieee")
    assert fmt.emin == lo and fmt.emax >= hi
    _PRODUCT_FORMATS[key] = fmt
    return fmt


def _flush(values, fmt):
    """Replace subnormal values of ``fmt`` (float64 array) by zeros of the same sign."""
    sub = (values != 0) & (np.abs(values) < fmt.min_normal)
    return np.where(sub, np.copysign(0.0, values), values)


def fp_mul(a_code, b_code, a_format, b_format, flush_subnormals=False):
    """Exact products of float codes, as codes of :func:`product_format` ``(a_format, b_format)``.

    Parameters
    ----------
    a_code, b_code : array of int
        Operand codes (broadcast together).
    a_format, b_format : str or FloatFormat
        Signed float formats with a zero, at most 16 bits each.
    flush_subnormals : bool
        Read subnormal operands as zeros of the same sign.

    Returns
    -------
    numpy.ndarray
        Product codes (never rounded: see the module docstring).
    """
    a = check_float_operand(a_format, "a_format")
    b = check_float_operand(b_format, "b_format")
    pf = product_format(a, b)
    x = a.decode(a_code)
    y = b.decode(b_code)
    if flush_subnormals:
        x = _flush(x, a)
        y = _flush(y, b)
    with np.errstate(invalid="ignore"):
        p = x * y                                        # exact: see product_format
    nan = np.isnan(p)
    code = pf.encode(np.where(nan, 0.0, p))
    return np.where(nan, pf.nan_code, code).astype(pf.code_dtype)


# ------------------------------------------------------------------------------------------
# correctly rounded sums
# ------------------------------------------------------------------------------------------

def _round_to_odd_sum(x, y):
    """float64 round-to-odd of ``x + y`` for finite float64 ``x``, ``y`` (no overflow).

    ``s = fl(x + y)`` and its exact error ``e`` (TwoSum, Knuth TAOCP vol. 2, 4.2.2); if ``e``
    is non-zero the exact sum lies strictly between ``s`` and its neighbour in the direction of
    ``e``: truncate toward zero and force the last significand bit to 1.
    """
    s = x + y
    bb = s - x
    e = (x - (s - bb)) + (y - bb)
    inexact = (e != 0) & np.isfinite(s)
    if not inexact.any():
        return s
    mag = np.abs(s).view(np.int64)
    toward_zero = np.where(np.signbit(e) == np.signbit(s), mag, mag - 1)
    odd = (toward_zero | 1).view(np.float64)
    return np.where(inexact, np.copysign(odd, s), s)


def _finish(value, fmt, saturate, flush_subnormals, finite_operands, rounding="nearest_even",
            random_bits=None, sr_bits=8):
    """Round float64 ``value`` (already round-to-odd where inexact) to ``fmt`` codes.

    NaN gives the canonical NaN; finite overflow gives Inf, or +-max with ``saturate``;
    ``finite_operands`` marks results whose operands were finite (only those saturate).
    ``rounding="stochastic"`` rounds with ``random_bits`` / ``sr_bits`` as
    :meth:`FloatFormat.encode` does (exact on the round-to-odd value while
    ``sr_bits <= max_sr_bits(fmt)``: see :func:`max_sr_bits`).
    """
    nan = np.isnan(value)
    v = np.where(nan, 0.0, value)
    if rounding == "stochastic":
        code = fmt.encode(v, rounding="stochastic", random_bits=random_bits,
                          sr_bits=sr_bits).astype(np.int64)
    else:
        code = fmt.encode(v).astype(np.int64)
    sign_bit = 1 << (fmt.bits - 1)
    mag = code & (sign_bit - 1)
    if saturate:
        over = finite_operands & (mag == fmt.inf_code)
        code = np.where(over, (code & sign_bit) | fmt.max_code, code)
    if flush_subnormals:
        sub = (mag != 0) & (mag < (1 << fmt.man_bits))
        code = np.where(sub, code & sign_bit, code)
    code = np.where(nan, fmt.nan_code, code)
    return code.astype(fmt.code_dtype)


def round_sum(x, y, fmt, saturate=False, flush_subnormals=False, rounding="nearest_even",
              random_bits=None, sr_bits=8):
    """Codes of ``round(x + y)`` in ``fmt`` (one rounding) for float64 arrays ``x``, ``y``.

    ``x`` and ``y`` must be exactly the values meant (every value of formats up to fp32 and
    every exact product is).  IEEE rules for specials and the sign of zero (see the module
    docstring); ``saturate`` clamps overflow of finite operands to +-max.  ``rounding`` is
    ``"nearest_even"`` or ``"stochastic"`` (then ``random_bits``, ``sr_bits``: see
    :func:`check_rounding`).
    """
    fmt = check_acc_format(fmt)
    rounding, random_bits, sr_bits = check_rounding(rounding, random_bits, sr_bits, fmt,
                                                    np.broadcast_shapes(np.shape(x), np.shape(y)))
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    with np.errstate(invalid="ignore"):
        s = np.where(finite, _round_to_odd_sum(np.where(finite, x, 0.0),
                                               np.where(finite, y, 0.0)), x + y)
    return _finish(s, fmt, saturate, flush_subnormals, finite, rounding, random_bits, sr_bits)


def fp_accumulate(acc_code, p_code, p_format, acc_format="fp32", mode="fused",
                  flush_subnormals=False, saturate=False, rounding="nearest_even",
                  random_bits=None, sr_bits=8):
    """One accumulation step from an exact product code: ``acc + p`` (``fused``/``two_roundings``).

    ``p_format`` is the product format of the operands (:func:`product_format`); ``p_code``
    codes are exact products as :func:`fp_mul` returns them.  With ``rounding="stochastic"``
    every rounding of the step is stochastic with the *same* draw ``random_bits`` (one draw
    of ``sr_bits`` bits per step, see :func:`check_rounding`): in ``"two_roundings"`` mode the
    product rounding and the sum rounding both use it.
    """
    acc_f = check_acc_format(acc_format)
    check_mode(mode)
    shape = np.broadcast_shapes(np.shape(acc_code), np.shape(p_code))
    rounding, random_bits, sr_bits = check_rounding(rounding, random_bits, sr_bits, acc_f, shape)
    if mode == "kulisch":
        raise ValueError("mode 'kulisch' keeps a fixed-point state, not an accumulator code: "
                         "use kulisch_step() and kulisch_read()")
    acc = acc_f.decode(acc_code)
    p = p_format.decode(p_code)
    if flush_subnormals:
        acc = _flush(acc, acc_f)
    if mode == "two_roundings":
        # the product rounded to the accumulator format, exactly like any result
        r = None if random_bits is None else np.broadcast_to(random_bits, np.shape(p))
        pr = _finish(p, acc_f, saturate, flush_subnormals, np.isfinite(p), rounding, r, sr_bits)
        p = acc_f.decode(pr)
    return round_sum(acc, p, acc_f, saturate, flush_subnormals, rounding, random_bits, sr_bits)


def fp_mac_step(acc_code, a_code, b_code, a_format, b_format, acc_format="fp32", mode="fused",
                flush_subnormals=False, saturate=False, rounding="nearest_even", random_bits=None,
                sr_bits=8):
    """One FP MAC step: the new accumulator codes ``round(acc + a*b)``.

    Parameters
    ----------
    acc_code : array of int
        Accumulator codes of ``acc_format`` (a new sum starts from ``-0``: its code is
        ``1 << (acc_format.bits - 1)``).
    a_code, b_code : array of int
        Operand codes.
    a_format, b_format, acc_format : str or FloatFormat
    mode : str
        ``"fused"`` or ``"two_roundings"`` (``"kulisch"`` has a fixed-point state: see
        :func:`kulisch_step`).
    flush_subnormals, saturate : bool
        See the module docstring.
    rounding : str
        ``"nearest_even"`` (default) or ``"stochastic"``.
    random_bits : array of int, optional
        Stochastic rounding only: one draw of ``sr_bits`` bits per element (see
        :func:`check_rounding`; :func:`lowbit.models.lfsr.lfsr_stream` gives the hardware's).
    sr_bits : int
        Stochastic rounding only: N, 1..:func:`max_sr_bits` ``(acc_format)``.

    Returns
    -------
    numpy.ndarray
        New accumulator codes (``acc_format.code_dtype``).
    """
    pf = product_format(a_format, b_format)
    p = fp_mul(a_code, b_code, a_format, b_format, flush_subnormals)
    return fp_accumulate(acc_code, p, pf, acc_format, mode, flush_subnormals, saturate,
                         rounding, random_bits, sr_bits)


# ------------------------------------------------------------------------------------------
# Kulisch accumulator
# ------------------------------------------------------------------------------------------

#: Flag bits of the Kulisch state.
K_NAN, K_PINF, K_NINF, K_NEGZERO = 1, 2, 4, 8


def kulisch_width(a_format, b_format, terms=4096):
    """``(width, lsb_exp)`` of the exact fixed-point accumulator for ``terms`` products.

    ``lsb_exp`` is the exponent of the smallest product's LSB,
    ``(emin_A - ma) + (emin_B - mb)``; ``width`` is the number of magnitude bits of the
    largest product relative to that LSB, plus a sign bit, plus ``ceil(log2(terms))`` guard
    bits.  (For e4m3 x e4m3: 36 + 1 = 37 bits before guard bits, the "INT37" of van Baalen et
    al., arXiv:2303.17951.)
    """
    a = check_float_operand(a_format, "a_format")
    b = check_float_operand(b_format, "b_format")
    terms = check_terms(terms)
    lsb = (a.emin - a.man_bits) + (b.emin - b.man_bits)
    top = _max_product_exponent(a, b)                    # MSB exponent of the largest product
    mag_bits = top - lsb + 1
    return mag_bits + 1 + (terms - 1).bit_length(), lsb


@dataclasses.dataclass
class KulischState:
    """State of Kulisch accumulators: ``fixed`` (object array of Python ints, the signed
    two's-complement register value) and ``flags`` (int64 array of ``K_NAN | K_PINF | K_NINF |
    K_NEGZERO``: NaN seen, +Inf seen, -Inf seen, every product so far was -0)."""
    fixed: np.ndarray
    flags: np.ndarray

    def copy(self):
        return KulischState(self.fixed.copy(), self.flags.copy())


def kulisch_empty(shape=()):
    """The empty accumulator (reads ``+0``): after reset or a ``clear`` without a term."""
    fixed = np.empty(shape, dtype=object)
    fixed[...] = 0
    return KulischState(fixed, np.zeros(shape, dtype=np.int64))


def kulisch_new_sum(shape=()):
    """The state a new sum starts from: value 0 with the ``-0`` flag (the identity ``-0``)."""
    s = kulisch_empty(shape)
    s.flags[...] = K_NEGZERO
    return s


def _wrap_obj(v, width):
    half = 1 << (width - 1)
    return ((v + half) & ((1 << width) - 1)) - half


def kulisch_add(state, p_code, p_format, width, lsb_exp):
    """Add exact product codes ``p_code`` (of ``p_format``) into ``state``; returns a new state."""
    code = np.asarray(p_code).astype(np.int64)
    P = p_format.man_bits
    sign = (code >> (p_format.bits - 1)) & 1
    field = (code >> P) & ((1 << p_format.exp_bits) - 1)
    man = code & ((1 << P) - 1)
    top = field == (1 << p_format.exp_bits) - 1
    is_nan = top & (man != 0)
    is_inf = top & (man == 0)
    is_zero = (field == 0) & (man == 0)
    finite_nz = ~top & ~is_zero
    # every non-zero finite product is normal in the product format (see product_format) and an
    # integer multiple of 2^lsb_exp, so a negative shift only drops zero bits
    shift = np.where(finite_nz, field - p_format.bias - P - lsb_exp, 0)
    sig = np.where(finite_nz, man | (1 << P), 0)
    right = np.maximum(-shift, 0)
    assert ((sig & ((1 << right) - 1)) == 0).all()
    term = (sig >> right).astype(object) << np.maximum(shift, 0).astype(object)
    term = np.where(sign == 1, -term, term)
    fixed = _wrap_obj(state.fixed + term, width)
    flags = state.flags.copy()
    flags |= np.where(is_nan, K_NAN, 0)
    flags |= np.where(is_inf & (sign == 0), K_PINF, 0)
    flags |= np.where(is_inf & (sign == 1), K_NINF, 0)
    negzero = is_zero & (sign == 1)
    flags = np.where(negzero, flags, flags & ~K_NEGZERO)
    return KulischState(np.asarray(fixed, dtype=object), flags.astype(np.int64))


def kulisch_step(state, a_code, b_code, a_format, b_format, terms=4096, flush_subnormals=False):
    """One Kulisch MAC step: the state after adding the exact products ``a*b``."""
    width, lsb = kulisch_width(a_format, b_format, terms)
    pf = product_format(a_format, b_format)
    p = fp_mul(a_code, b_code, a_format, b_format, flush_subnormals)
    return kulisch_add(state, p, pf, width, lsb)


def _odd_scalar(v):
    n = abs(v)
    shift = max(n.bit_length() - 53, 0)
    t = n >> shift
    if (t << shift) != n:
        t |= 1                                        # round to odd
    return math.ldexp(-t if v < 0 else t, shift)


_odd_ufunc = np.frompyfunc(_odd_scalar, 1, 1)


def _int_to_odd_float(fixed, lsb_exp):
    """Round-to-odd float64 of ``fixed * 2^lsb_exp`` for an object array of Python ints."""
    fixed = np.asarray(fixed, dtype=object)
    hi = fixed >> 32
    if fixed.size and max(abs(int(np.max(hi))), abs(int(np.min(hi)))) < (1 << 52):
        # two float64-exact halves and one exact-sum rounding (fast path)
        x = np.ldexp(np.asarray(hi).astype(np.float64), lsb_exp + 32)
        y = np.ldexp(np.asarray(fixed & 0xFFFFFFFF).astype(np.float64), lsb_exp)
        return _round_to_odd_sum(x, y)
    return np.ldexp(np.asarray(_odd_ufunc(fixed), dtype=np.float64), lsb_exp)


def kulisch_read(state, acc_format="fp32", lsb_exp=0, saturate=False, flush_subnormals=False):
    """Round a Kulisch state once to ``acc_format`` codes (RNE; see the module docstring)."""
    acc_f = check_acc_format(acc_format)
    fixed = np.asarray(state.fixed, dtype=object)
    flags = np.asarray(state.flags)
    s = _int_to_odd_float(fixed, lsb_exp)
    zero = np.asarray(fixed == 0, dtype=bool)
    s = np.where(zero, np.where(flags & K_NEGZERO, -0.0, 0.0), s)
    nan = (flags & K_NAN).astype(bool) | ((flags & K_PINF).astype(bool) & (flags & K_NINF).astype(bool))
    s = np.where(flags & K_PINF, np.inf, s)
    s = np.where(flags & K_NINF, -np.inf, s)
    s = np.where(nan, np.nan, s)
    finite = (flags & (K_NAN | K_PINF | K_NINF)) == 0
    return _finish(s, acc_f, saturate, flush_subnormals, finite)


# ------------------------------------------------------------------------------------------
# sequences and cycle streams
# ------------------------------------------------------------------------------------------

def fp_mac(a_codes, b_codes, a_format, b_format, acc_format="fp32", mode="fused",
           flush_subnormals=False, saturate=False, terms=4096, partials=False,
           rounding="nearest_even", random_bits=None, sr_bits=8):
    """Accumulate ``sum_k a[..., k] * b[..., k]`` along the last axis as :class:`FpMac` does.

    The sum starts as a new sum (from ``-0``; see the module docstring).  Returns the final
    accumulator codes (shape ``a_codes.shape[:-1]``) or, with ``partials=True``, the
    accumulator code after every step (same shape as the inputs).  ``rounding="stochastic"``
    takes ``random_bits`` of the inputs' shape (step ``k`` uses ``random_bits[..., k]``).
    """
    a_codes, b_codes = np.broadcast_arrays(np.asarray(a_codes), np.asarray(b_codes))
    shape = a_codes.shape[-1:] + a_codes.shape[:-1]
    extra = {}
    if rounding != "nearest_even" or random_bits is not None or sr_bits != 8:
        rb = None if random_bits is None else np.moveaxis(
            np.broadcast_to(np.asarray(random_bits), a_codes.shape), -1, 0)
        extra = {"rounding": rounding, "random_bits": rb, "sr_bits": sr_bits}
    valid = np.ones(shape, dtype=bool)
    clear = np.zeros(shape, dtype=bool)
    clear[0] = True
    out = mac_stream(valid, clear, np.moveaxis(a_codes, -1, 0), np.moveaxis(b_codes, -1, 0),
                     kind="fp", a_format=a_format, b_format=b_format, acc_format=acc_format,
                     mode=mode, flush_subnormals=flush_subnormals, saturate=saturate, terms=terms,
                     **extra)
    out = np.moveaxis(out, 0, -1)
    return out if partials else out[..., -1]


#: The keyword parameters of :func:`mac_stream` per kind.
_STREAM_PARAMS = {"int": ("a_format", "b_format", "acc_bits", "overflow"),
                  "fp": ("a_format", "b_format", "acc_format", "mode", "flush_subnormals",
                         "saturate", "terms", "rounding", "random_bits", "sr_bits")}


def mac_stream(valid, clear, a, b, *, kind, **params):
    """Cycle model of :class:`IntMac` / :class:`FpMac`: the accumulator after each input cycle.

    Inputs are arrays of shape ``(cycles, ...)`` (one column per independent unit).  For cycle
    ``t``: if ``valid[t]`` the accumulator becomes ``step(new_sum if clear[t] else acc, a[t],
    b[t])``; else if ``clear[t]`` it becomes the empty accumulator (``0`` / ``+0``); else it
    holds.  The initial (reset) accumulator is empty.  Returns the accumulator output (int64
    values for ``kind="int"``, ``acc_format`` codes for ``kind="fp"``) after each cycle; the
    hardware shows entry ``t`` on ``acc`` ``latency`` cycles later with ``acc_valid =
    valid[t]``.

    ``params``: ``a_format``, ``b_format`` and ``acc_bits``, ``overflow`` (int) or
    ``acc_format``, ``mode``, ``flush_subnormals``, ``saturate``, ``terms``, ``rounding``,
    ``random_bits``, ``sr_bits`` (fp; stochastic rounding is not offered in ``"kulisch"``
    mode, whose register is exact).  ``random_bits`` has the shape ``(cycles, ...)``: entry
    ``t`` is the draw used by cycle ``t`` (ignored when ``valid[t]`` is false; the LFSR of the
    hardware advances on valid cycles only, see :mod:`lowbit.models.lfsr`).
    """
    check_choice("kind", kind, ("int", "fp"))
    known = _STREAM_PARAMS[kind]
    for key in params:
        if key not in known:
            raise TypeError(f"mac_stream(kind={kind!r}) takes the parameters "
                            f"{', '.join(known)}, not {key!r}")
    for key in ("a_format", "b_format"):
        if key not in params:
            raise TypeError(f"mac_stream needs {key}")
    valid = np.asarray(valid, dtype=bool)
    clear = np.asarray(clear, dtype=bool)
    a = np.asarray(a)
    b = np.asarray(b)
    shape = valid.shape[1:]
    if kind == "int":
        acc_bits = params.get("acc_bits", 32)
        overflow = params.get("overflow", "wrap")
        acc = np.zeros(shape, dtype=np.int64)
        out = np.empty(valid.shape, dtype=np.int64)
        for t in range(valid.shape[0]):
            start = np.where(clear[t], 0, acc)
            new = int_mac_step(start, a[t], b[t], params["a_format"], params["b_format"],
                               acc_bits, overflow)
            acc = np.where(valid[t], new, np.where(clear[t], 0, acc))
            out[t] = acc
        return out
    acc_f = check_acc_format(params.get("acc_format", "fp32"))
    mode = check_mode(params.get("mode", "fused"))
    flush = bool(params.get("flush_subnormals", False))
    sat = bool(params.get("saturate", False))
    a_fmt, b_fmt = params["a_format"], params["b_format"]
    out = np.empty(valid.shape, dtype=acc_f.code_dtype)
    rounding = check_choice("rounding", params.get("rounding", "nearest_even"), FP_MAC_ROUNDINGS)
    sr_bits = params.get("sr_bits", 8)
    rnd = params.get("random_bits")
    if rounding == "stochastic" and mode == "kulisch":
        raise ValueError("rounding='stochastic' is for modes 'fused' and 'two_roundings', not "
                         "'kulisch' (its register is exact)")
    if rounding == "stochastic":
        rounding, rnd, sr_bits = check_rounding(rounding, rnd, sr_bits, acc_f, valid.shape)
    else:
        check_rounding(rounding, rnd, sr_bits, acc_f, valid.shape)
    if mode == "kulisch":
        width, lsb = kulisch_width(a_fmt, b_fmt, params.get("terms", 4096))
        pf = product_format(a_fmt, b_fmt)
        st = kulisch_empty(shape)
        for t in range(valid.shape[0]):
            start = KulischState(np.where(clear[t], 0, st.fixed).astype(object),
                                 np.where(clear[t], K_NEGZERO, st.flags))
            p = fp_mul(a[t], b[t], a_fmt, b_fmt, flush)
            new = kulisch_add(start, p, pf, width, lsb)
            st = KulischState(
                np.where(valid[t], new.fixed, np.where(clear[t], 0, st.fixed)).astype(object),
                np.where(valid[t], new.flags, np.where(clear[t], 0, st.flags)))
            out[t] = kulisch_read(st, acc_f, lsb, sat, flush)
        return out
    negzero = 1 << (acc_f.bits - 1)
    acc = np.zeros(shape, dtype=np.int64)
    for t in range(valid.shape[0]):
        start = np.where(clear[t], negzero, acc)
        new = fp_mac_step(start, a[t], b[t], a_fmt, b_fmt, acc_f, mode, flush, sat, rounding,
                          None if rnd is None else rnd[t], sr_bits)
        acc = np.where(valid[t], new, np.where(clear[t], 0, acc)).astype(np.int64)
        out[t] = acc
    return out
