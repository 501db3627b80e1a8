"""Bit layouts and field decoders built from :mod:`lowbit.models.formats` objects.

Nothing here types a width: every layout is derived from the format object the golden
model uses, so the hardware and the model cannot disagree on where a field lies.

``layout(fmt)``
    a :class:`amaranth.lib.data.StructLayout` ``{mantissa, exponent, sign}`` (LSB first)
    for a :class:`~lowbit.models.formats.FloatFormat`, or a plain signed/unsigned
    shape for an :class:`~lowbit.models.formats.IntFormat`.

``Unpacked`` / ``unpack(m, fmt, code)``
    combinational classification of a float code into sign, significand with the hidden
    bit made explicit, an unbiased exponent, and the flags zero / subnormal / inf / nan.
    The value of a finite code is ``(-1)^sign * sig * 2^(exp - man_bits)``; subnormals
    get ``exp = emin`` and a hidden bit of 0, exactly as in the model's decode.
"""

from amaranth.hdl import Cat, Const, Mux, Signal, signed, unsigned
from amaranth.lib import data

from lowbit.models.formats import FloatFormat, IntFormat

__all__ = ["layout", "unpack", "Unpacked", "exp_range", "exp_shape"]


def layout(fmt):
    """Struct layout (floats) or shape (integers) of one code of ``fmt``."""
    if isinstance(fmt, IntFormat):
        return signed(fmt.bits) if fmt.signed else unsigned(fmt.bits)
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"fmt must be a FloatFormat or IntFormat, not {fmt!r}")
    fields = {}
    if fmt.man_bits:
        fields["mantissa"] = unsigned(fmt.man_bits)
    fields["exponent"] = unsigned(fmt.exp_bits)
    if fmt.signed:
        fields["sign"] = unsigned(1)
    return data.StructLayout(fields)


def exp_range(fmt):
    """(smallest, largest) unbiased exponent of a finite non-zero value of ``fmt``."""
    return fmt.emin, fmt.emax


def exp_shape(fmt, extra=0):
    """A signed shape that holds every unbiased exponent of ``fmt`` (plus ``extra`` bits)."""
    lo, hi = exp_range(fmt)
    return signed(max(abs(lo), abs(hi) + 1).bit_length() + 1 + extra)


class Unpacked:
    """Signals describing one unpacked float code (see :func:`unpack`).

    Members
    -------
    sign : Signal(1)
    sig : Signal(man_bits + 1)   significand with explicit hidden bit
    exp : Signal(signed)         unbiased exponent (subnormals: emin)
    is_zero, is_sub, is_inf, is_nan : Signal(1)
    """

    def __init__(self, fmt, name):
        self.fmt = fmt
        self.sign = Signal(name=f"{name}_sign")
        self.sig = Signal(fmt.man_bits + 1, name=f"{name}_sig")
        self.exp = Signal(exp_shape(fmt), name=f"{name}_exp")
        self.is_zero = Signal(name=f"{name}_is_zero")
        self.is_sub = Signal(name=f"{name}_is_sub")
        self.is_inf = Signal(name=f"{name}_is_inf")
        self.is_nan = Signal(name=f"{name}_is_nan")


def unpack(m, fmt, code, name="x"):
    """Add combinational logic to module ``m`` that unpacks ``code`` (a ``fmt`` code).

    Returns an :class:`Unpacked`. Follows the format's special-value convention exactly
    (``ieee``, ``fn``, ``fnuz``, ``finite``; unsigned and zero-less formats such as E8M0).
    """
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"unpack() needs a FloatFormat, not {fmt!r}")
    u = Unpacked(fmt, name)
    view = data.View(layout(fmt), code)
    M, E = fmt.man_bits, fmt.exp_bits
    man = view.mantissa if M else Const(0, 1)
    exp_field = view.exponent
    sign = view.sign if fmt.signed else Const(0, 1)
    exp_top = exp_field == (1 << E) - 1
    exp_zero = exp_field == 0
    man_zero = man == 0
    m.d.comb += u.sign.eq(sign)
    if fmt.subnormals:
        m.d.comb += [
            u.is_sub.eq(exp_zero & ~man_zero),
            u.is_zero.eq(exp_zero & man_zero),
            u.sig.eq(_with_hidden(man, ~exp_zero, M)),
            u.exp.eq(Mux(exp_zero, fmt.emin, exp_field - fmt.bias)),
        ]
    else:
        m.d.comb += [
            u.is_sub.eq(0),
            u.is_zero.eq(0),
            u.sig.eq(_with_hidden(man, Const(1, 1), M)),
            u.exp.eq(exp_field - fmt.bias),
        ]
    if fmt.specials == "ieee":
        m.d.comb += [u.is_inf.eq(exp_top & man_zero), u.is_nan.eq(exp_top & ~man_zero)]
    elif fmt.specials == "fn":
        all_ones = exp_top & (man == (1 << M) - 1) if M else exp_top
        m.d.comb += [u.is_inf.eq(0), u.is_nan.eq(all_ones)]
    elif fmt.specials == "fnuz":
        nan = sign & exp_zero & man_zero
        m.d.comb += [u.is_inf.eq(0), u.is_nan.eq(nan)]
        # the -0 pattern is NaN, not zero
        m.d.comb += u.is_zero.eq(~sign & exp_zero & man_zero)
    else:
        m.d.comb += [u.is_inf.eq(0), u.is_nan.eq(0)]
    return u


def _with_hidden(man, hidden, man_bits):
    """``{hidden, man}``: the significand with its hidden bit."""
    if man_bits == 0:
        return hidden
    return Cat(man, hidden)
