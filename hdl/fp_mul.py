"""Exact floating-point multiplier (Amaranth 0.5): ``FpMulCore`` (combinational) and ``FpMultiplier``.

Numeric contract (the golden model is :func:`lowbit.models.mac.fp_mul`): the product of an
``a_format`` and a ``b_format`` code is returned exactly, never rounded, as a code of
:func:`lowbit.models.mac.product_format` ``(a_format, b_format)`` (IEEE-style, ``ma + mb + 1``
mantissa bits, every product normal).  NaN operand or ``Inf * 0`` -> canonical NaN; ``Inf * x``
-> +-Inf; zero sign = XOR of the operand signs; subnormal operands are exact unless
``flush_subnormals`` (then read as zeros of the same sign).

Datapath: unpack both codes (:func:`lowbit.hdl.formats.unpack`), multiply the significands
(hidden bits explicit), add the exponents, normalise with a leading-zero count over the
``ma + mb + 2``-bit significand product (only subnormal operands need a shift), pack.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.models import mac as model
from lowbit.models.checks import check_int

from .formats import unpack
from .fp_round import EXP_SHAPE, leading_zeros
from .manifest import describe_format, fmt_ref, golden, lanes, positive_zero
from .unit import Param, Unit, pipeline_param

__all__ = ["FpMulCore", "FpMultiplier", "UNITS", "check_pipeline", "multiply_into"]


def check_pipeline(pipeline_stages, hi):
    """Validate ``pipeline_stages`` (0..hi)."""
    return check_int("pipeline_stages", pipeline_stages, 0, hi)


def multiply_into(m, a_fmt, b_fmt, a, b, flush, name="mul"):
    """Add the exact-product logic to ``m``; returns the product-format code signal."""
    pf = model.product_format(a_fmt, b_fmt)
    ua = unpack(m, a_fmt, a, f"{name}_a")
    ub = unpack(m, b_fmt, b, f"{name}_b")
    za = ua.is_zero | (ua.is_sub if flush else 0)
    zb = ub.is_zero | (ub.is_sub if flush else 0)
    w = a_fmt.man_bits + b_fmt.man_bits + 2
    sig = Signal(w, name=f"{name}_sig")
    m.d.comb += sig.eq(ua.sig * ub.sig)
    lz = leading_zeros(m, sig, f"{name}_lz")
    e = Signal(EXP_SHAPE, name=f"{name}_e")
    m.d.comb += e.eq(ua.exp + ub.exp + 1 - lz)
    norm = Signal(w, name=f"{name}_norm")
    m.d.comb += norm.eq((sig << lz)[:w])
    sign = ua.sign ^ ub.sign
    nan = ua.is_nan | ub.is_nan | (ua.is_inf & zb) | (ub.is_inf & za)
    inf = ua.is_inf | ub.is_inf
    zero = za | zb
    p = Signal(pf.bits, name=f"{name}_p")
    field = Signal(EXP_SHAPE, name=f"{name}_field")
    m.d.comb += field.eq(e + pf.bias)
    with m.If(nan):
        m.d.comb += p.eq(pf.nan_code)
    with m.Elif(inf):
        m.d.comb += p.eq(Cat(Const(pf.inf_code, pf.bits - 1), sign))
    with m.Elif(zero):
        m.d.comb += p.eq(sign << (pf.bits - 1))
    with m.Else():
        m.d.comb += p.eq(Cat(norm[:w - 1], field[:pf.exp_bits], sign))
    return p


class FpMulCore(wiring.Component):
    """Combinational exact multiplier: ``p = a * b`` (see the module docstring).

    Parameters
    ----------
    a_format, b_format : FloatFormat or str
        Signed float formats with a zero, at most 16 bits.
    flush_subnormals : bool

    Members
    -------
    a : In(a_format.bits), b : In(b_format.bits)
        Operand codes.
    p : Out(product_format.bits)
        Exact product code.
    """

    is_sequential = False

    def __init__(self, a_format="e4m3", b_format="e4m3", flush_subnormals=False):
        self._a = model.check_float_operand(a_format, "a_format")
        self._b = model.check_float_operand(b_format, "b_format")
        self._pf = model.product_format(self._a, self._b)
        self._flush = bool(flush_subnormals)
        super().__init__({"a": In(self._a.bits), "b": In(self._b.bits), "p": Out(self._pf.bits)})

    a_format = property(lambda self: self._a)
    b_format = property(lambda self: self._b)
    flush_subnormals = property(lambda self: self._flush)
    product_format = property(lambda self: self._pf)
    latency = 0

    def elaborate(self, platform):
        m = Module()
        p = multiply_into(m, self._a, self._b, self.a, self.b, self._flush)
        m.d.comb += self.p.eq(p)
        return m


class FpMultiplier(wiring.Component):
    """Pipelined exact FP multiplier.

    Parameters
    ----------
    a_format, b_format : FloatFormat or str
        Operand formats (signed float formats with a zero, at most 16 bits; mixed allowed).
    flush_subnormals : bool
        Read subnormal operands as zeros of the same sign.
    pipeline_stages : int
        0 or 1: 1 adds an input register before the multiplier.  The output is always
        registered, so ``latency = 1 + pipeline_stages`` cycles.

    Members
    -------
    a, b : In(bits)
        Operand codes.
    valid : In(1)
        The operands are valid this cycle.
    p : Out(product_format.bits)
        Exact product (``product_format`` code) of the operands of ``latency`` cycles ago.
    out_valid : Out(1)
        ``valid`` delayed by ``latency`` cycles.

    Raises
    ------
    ValueError
        Bad format or ``pipeline_stages`` outside 0..1.
    """

    def __init__(self, a_format="e4m3", b_format="e4m3", flush_subnormals=False,
                 pipeline_stages=0):
        self._a = model.check_float_operand(a_format, "a_format")
        self._b = model.check_float_operand(b_format, "b_format")
        self._stages = check_pipeline(pipeline_stages, 1)
        self._pf = model.product_format(self._a, self._b)
        self._flush = bool(flush_subnormals)
        super().__init__({"a": In(self._a.bits), "b": In(self._b.bits), "valid": In(1),
                          "p": Out(self._pf.bits), "out_valid": Out(1)})

    a_format = property(lambda self: self._a)
    b_format = property(lambda self: self._b)
    flush_subnormals = property(lambda self: self._flush)
    pipeline_stages = property(lambda self: self._stages)
    product_format = property(lambda self: self._pf)

    @property
    def latency(self):
        return 1 + self._stages

    @property
    def port_docs(self):
        return {
            "a": f"operand a, {self._a.name} code",
            "b": f"operand b, {self._b.name} code",
            "valid": "operands valid this cycle",
            "p": f"exact product a*b of {self.latency} cycle(s) earlier, code of the product "
                 f"format {self._pf!r}",
            "out_valid": f"valid delayed by {self.latency} cycle(s)",
        }

    def contract(self):
        pf = self._pf
        L = self.latency
        neg0 = 1 << (pf.bits - 1)
        inf = self._a.has_inf or self._b.has_inf
        nan = inf or self._a.has_nan or self._b.has_nan
        return {
            "operation": "p = a * b, exact (never rounded)",
            "a_format": self._a.name, "b_format": self._b.name,
            "product_format": {"exp_bits": pf.exp_bits, "man_bits": pf.man_bits, "bias": pf.bias,
                               "specials": pf.specials, "every_product_normal": True},
            "rounding": "none (exact)",
            "specials": "NaN operand or Inf*0 -> canonical NaN; Inf*x -> +-Inf; "
                        "zero sign = XOR of signs",
            "subnormals": "flushed to zero (sign kept)" if self._flush else "exact",
            "latency_cycles": L,
            "formats": {"a": describe_format(self._a), "b": describe_format(self._b),
                        "product": describe_format(pf)},
            "packing": {"a": lanes("a", 1, self._a.bits), "b": lanes("b", 1, self._b.bits),
                        "p": lanes("product", 1, pf.bits)},
            "product_rule": (f"every finite non-zero product is a normal number of the product "
                             f"format ({pf.man_bits} = {self._a.man_bits} + {self._b.man_bits} "
                             "+ 1 fraction bits, exponent range from the smallest to the "
                             "largest product): exact"),
            "nan_outputs": {"p": [pf.nan_code] if nan else []},
            "nan_when": "a NaN operand, or Inf * 0" if nan else
                        "never: neither operand format has NaN or Inf",
            "inf_outputs": {"p": [pf.inf_code, pf.inf_code | neg0] if inf else []},
            "zero_sign": {
                "product": f"a zero product (a zero operand"
                           + (", or a subnormal one read as zero" if self._flush else "")
                           + f") has the sign XOR of the operand signs: +0 = {positive_zero(pf)},"
                             f" -0 = {neg0:#x}; also for fnuz operands, whose only zero is +0"},
            "timing": f"p and out_valid show the product and valid of {L} cycle(s) earlier",
            "reset": {
                "signal": "rst", "synchronous": True, "active": "high",
                "clears": "every register to 0: p (the +0 code), out_valid"
                          + (" and the input registers" if self._stages else "")
                          + "; the inputs of the cycle with rst high are dropped",
                "outputs_after_reset": {"p": positive_zero(pf), "out_valid": 0},
                "idle_inputs": {"a": 0, "b": 0, "valid": 0}},
            "golden_model": golden(
                "lowbit.models.mac.fp_mul",
                f"the product codes (the p port, {L} cycle(s) later; out_valid = valid)",
                a_format=fmt_ref("a"), b_format=fmt_ref("b"), flush_subnormals=self._flush),
        }

    def elaborate(self, platform):
        m = Module()
        a, b, v = self.a, self.b, self.valid
        if self._stages >= 1:
            ra, rb, rv = Signal.like(a), Signal.like(b), Signal()
            m.d.sync += [ra.eq(a), rb.eq(b), rv.eq(v)]
            a, b, v = ra, rb, rv
        p = multiply_into(m, self._a, self._b, a, b, self._flush)
        m.d.sync += [self.p.eq(p), self.out_valid.eq(v)]
        return m


_FMT_HELP = "signed float format of at most 16 bits (e4m3, e5m2, e4m3fnuz, e2m1, eXmY...)"

UNITS = [
    Unit("fp-mul", FpMultiplier, (
        Param("a_format", "--a", "format", "e4m3", "format of operand a: " + _FMT_HELP),
        Param("b_format", "--b", "format", "e4m3", "format of operand b: " + _FMT_HELP),
        Param("flush_subnormals", "--flush-subnormals", "bool", False,
              "read subnormal operands as zero"),
        pipeline_param(1, 1),
    ), "exact FP multiplier into the product format (mixed formats allowed)"),
]
