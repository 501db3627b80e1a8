"""``BfpAdder``: block-floating-point dot product (integer mantissas, shared exponents).

Per cycle two blocks of ``n`` signed integer mantissas (INT8 or INT16) with one signed
exponent each; the ``n`` exact integer products, at exponent ``e_a + e_b``, and the FP32
accumulator go through one shared-exponent adder (:class:`Datapath` with integer
operands).  The default ``frac_bits = bits_a + bits_b - 4`` keeps every product exact
relative to the block exponent, so the integer products are summed exactly (the sum
width is computed, e.g. 22 bits for 16 INT8 pairs, within INT32) and only the
accumulator add rounds (FP32, nearest-even), unless the accumulator's exponent
dominates, in which case the products are cut toward zero on the accumulator's grid.

Golden model: :func:`lowbit.models.shared_exp.shared_exp_add` / ``shared_exp_dot`` with
``scale_exp = e_a + e_b`` and ``unit.config``.  The default is the "accumulator in the
maximum" datapath.  ``acc_in_max=False, sum_bits=32`` (exact ``frac_bits``) builds the DFP
strategy of :func:`lowbit.models.bfp.bfp_dot` with ``chunk = n`` and ``overflow="wrap"``:
the block's products summed in an INT32 register, converted to FP32 with one rounding,
then added into the FP32 accumulator with another (see :func:`lowbit.models.bfp.bfp_config`).
"""

from amaranth.hdl import Signal, signed
from amaranth.lib.wiring import In

from lowbit.models import formats as _formats
from lowbit.models import shared_exp as _se
from lowbit.models.checks import check_choice, check_int

from .shared_exp_adder import AccumulatingDot, adder_config, adder_params, check_adder_knobs
from .unit import Param, Unit

__all__ = ["BfpAdder", "UNITS"]


def _mantissa(name, value):
    check_choice(name, getattr(value, "name", value), ("int8", "int16"))
    return _formats.get(getattr(value, "name", value))


class BfpAdder(AccumulatingDot):
    """BFP block dot product accumulating into FP32 (see the module docstring).

    Parameters
    ----------
    mantissa, b_mantissa : str
        ``"int8"`` or ``"int16"``: the mantissas of the a and of the b blocks (``b_mantissa``
        None: as ``mantissa``).
    n : int
        Block length, 1..64.
    exp_bits : int
        Width of the signed block exponents, 2..10.
    frac_bits : int or None
        Fraction bits below the maximum exponent (None: ``2 * bits - 4``, exact products).
    cut, sum_bits, norm_frac_bits, norm_rounding, acc_in_max :
        Shared-exponent adder knobs.
    pipeline_stages : int
        0 or 1 input register stages.

    Members
    -------
    a, b : In(n * bits)
        Mantissas (two's complement), element i in bits [i*bits, (i+1)*bits).
    a_exp, b_exp : In(signed(exp_bits))
        Block exponents: element value = mantissa * 2^exp.
    valid, first : In(1)
        Add this block / restart the accumulator from +0.
    o : Out(32)
        FP32 code of the accumulator, ``latency = pipeline_stages + 1``.
    """

    def __init__(self, mantissa="int8", n=16, exp_bits=8, frac_bits=None, cut="toward_zero",
                 sum_bits=None, norm_frac_bits=23, norm_rounding="nearest_even",
                 pipeline_stages=1, acc_in_max=True, b_mantissa=None):
        fmt = _mantissa("mantissa", mantissa)
        fmt_b = fmt if b_mantissa in (None, "") else _mantissa("b_mantissa", b_mantissa)
        name = fmt.name
        check_int("n", n, 1, 64)
        self._exp_bits = check_int("exp_bits", exp_bits, 2, 10)
        if frac_bits in (None, -1):
            frac_bits = fmt.bits + fmt_b.bits - 4
        check_int("frac_bits", frac_bits, 0, 64)
        cfg = adder_config(n, "operand_sum", frac_bits, cut, sum_bits, norm_frac_bits,
                           norm_rounding, acc_in_max)
        check_adder_knobs(frac_bits, sum_bits, fmt, fmt_b, cfg)
        self._setup(fmt, fmt_b, n, cfg, (0, 0), pipeline_stages,
                    {"a_exp": In(signed(exp_bits)), "b_exp": In(signed(exp_bits))})
        w = fmt.bits
        self.port_docs = {
            "a": f"{n} {name} mantissas, element i in bits [i*{w}, (i+1)*{w})",
            "b": f"{n} {fmt_b.name} mantissas, element i in bits [i*{fmt_b.bits}, "
                 f"(i+1)*{fmt_b.bits})",
            "a_exp": f"signed {exp_bits}-bit exponent of the a block",
            "b_exp": f"signed {exp_bits}-bit exponent of the b block",
            "valid": "add this pair of blocks into the accumulator",
            "first": "restart the accumulator from +0 with this pair of blocks",
            "o": "FP32 code of the accumulator (never NaN: integer mantissas; an overflow "
                 "gives +-Inf, which stays until first)",
        }

    #: Width of the signed block exponents.
    exp_bits = property(lambda self: self._exp_bits)

    def _scale(self, m, sig):
        scale = Signal(signed(16), name="scale_exp")
        m.d.comb += scale.eq(sig["a_exp"].as_signed() + sig["b_exp"].as_signed())
        return scale, None

    def contract(self):
        e = _formats.int_format(self._exp_bits)
        c = self._contract("o = sum over blocks of 2^(e_a + e_b) * sum_i m_a,i * m_b,i (FP32)",
                           "lowbit.models.shared_exp.shared_exp_dot(scale_exp=e_a+e_b)",
                           {"a_exp": ("exponent", e), "b_exp": ("exponent", e)},
                           f"a_exp + b_exp (signed {e.bits}-bit values)", False,
                           "never: integer mantissas have no NaN or Inf and the block exponents "
                           "no NaN; an accumulator that overflowed to +-Inf stays that Inf "
                           "until first (a block sum alone is never Inf of the other sign)")
        c["mantissa"] = self._a_fmt.name
        c["b_mantissa"] = self._b_fmt.name
        c["int_sum"] = "exact (computed width) unless sum_bits narrows it (wraps)"
        return c


UNITS = [
    Unit("bfp-adder", BfpAdder, (
        Param("mantissa", "--a", "choice", "int8", "mantissa type of a", ("int8", "int16")),
        Param("b_mantissa", "--b", "str", "", "mantissa type of b (int8, int16; default: --a)"),
        Param("n", "--k", "int", 16, "block length (1..64)"),
        Param("exp_bits", "--exp-bits", "int", 8, "width of the signed block exponents"),
    ) + adder_params(-1, "fraction bits (-1: 2*bits-4, exact)", align=False),
        "block floating point dot product (INT8/INT16 mantissas, shared exponents) into FP32"),
]
