"""Training accumulators (issue 17 section 1): chunk-based and Kahan-compensated FP MACs.

Hardware twins of :mod:`lowbit.models.training` (``chunked_stream`` / :class:`ChunkedMac`,
``kahan_stream`` / :class:`KahanMac`; the one-shot sums ``chunked_mac`` / ``kahan_mac``).
Both take one product per cycle: the exact product of two float operand codes
(:func:`lowbit.hdl.fp_mul.multiply_into`, the product format of
:func:`lowbit.models.mac.product_format`) is added into an FP16 / BF16 (or any IEEE-style
``acc_format``) register with the fused adder of the FP MAC
(:func:`lowbit.hdl.fp_mac.accumulate_into`: exact add, one RNE rounding, IEEE specials, exact
subnormals, overflow to Inf or to +-max with ``saturate``).  Every rounding is round to
nearest even; the sign of an exact zero sum is ``+0`` unless both addends are ``-0``.

Chunk-based accumulation (Wang et al., "Training Deep Neural Networks with 8-bit Floating
Point Numbers", NeurIPS 2018, section 3.1): products are summed in an *inner* (chunk) register
for ``chunk_length`` (CL) products, then the chunk sum is added into the *outer* register and
the next product starts a new chunk from ``-0``.  Per valid cycle: ``inner' = round(inner +
a*b)`` and, when the chunk closes (CL products, or ``last``), ``outer' = round(outer +
inner')`` -- two adders in series in one cycle, so one MAC per cycle.  As in the model, both
registers have ``acc_format``.

Kahan-compensated accumulation (Kahan, "Further remarks on reducing truncation errors", CACM
8(1), 1965): a sum ``s`` and a compensation ``c``, per exact product ``p``::

    y = p - c;  t = s + y;  c' = (t - s) - y;  s' = t

four fused adders, each rounded RNE to ``acc_format``, in exactly the order of
:func:`lowbit.models.training.kahan_step` (``x - y`` is ``x + (-y)``, the sign bit flipped).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.models import mac as mac_model
from lowbit.models import training as model
from lowbit.models.checks import check_bool

from .fp_mac import accumulate_into, mac_numerics
from .fp_mul import check_pipeline, multiply_into
from .manifest import describe_format, fmt_ref, golden, lanes, positive_zero
from .unit import Param, Unit, pipeline_param

__all__ = ["ChunkedMac", "KahanMac", "UNITS", "MAX_PIPELINE"]

#: Largest ``pipeline_stages``: 1 registers the exact product, 2 also the operands (as
#: :class:`lowbit.hdl.fp_mac.FpMac`).
MAX_PIPELINE = 2


class _AccumMac(wiring.Component):
    """Parameters, latency and input pipeline of :class:`ChunkedMac` and :class:`KahanMac`."""

    def _validate(self, a_format, b_format, acc_format, saturate, pipeline_stages):
        self._a = mac_model.check_float_operand(a_format, "a_format")
        self._b = mac_model.check_float_operand(b_format, "b_format")
        self._acc = mac_model.check_acc_format(acc_format)
        self._sat = check_bool("saturate", saturate)
        self._stages = check_pipeline(pipeline_stages, MAX_PIPELINE)
        self._pf = mac_model.product_format(self._a, self._b)

    a_format = property(lambda self: self._a)
    b_format = property(lambda self: self._b)
    acc_format = property(lambda self: self._acc)
    saturate = property(lambda self: self._sat)
    product_format = property(lambda self: self._pf)
    pipeline_stages = property(lambda self: self._stages)

    @property
    def latency(self):
        """Cycles from an input to the registers showing it: ``1 + pipeline_stages``."""
        return 1 + self._stages

    def _product(self, m, controls):
        """The exact product code and the ``controls`` signals, delayed by the pipeline."""
        a, b = self.a, self.b
        if self._stages >= 2:
            ra, rb = Signal.like(a), Signal.like(b)
            rc = [Signal.like(s) for s in controls]
            m.d.sync += [ra.eq(a), rb.eq(b)] + [r.eq(s) for r, s in zip(rc, controls)]
            a, b, controls = ra, rb, rc
        p = multiply_into(m, self._a, self._b, a, b, False)
        if self._stages >= 1:
            rp = Signal.like(p)
            rc = [Signal.like(s) for s in controls]
            m.d.sync += [rp.eq(p)] + [r.eq(s) for r, s in zip(rc, controls)]
            p, controls = rp, rc
        return p, controls

    def _negzero(self):
        return 1 << (self._acc.bits - 1)

    def _common_contract(self, golden_model, outputs, timing, registers):
        L = self.latency
        acc = self._acc
        zero = positive_zero(acc)
        c = {
            "a_format": self._a.name, "b_format": self._b.name, "acc_format": acc.name,
            "product": "exact, product format "
                       f"e{self._pf.exp_bits}m{self._pf.man_bits} bias {self._pf.bias}",
            "overflow": "+-max (finite operands)" if self._sat else "+-Inf",
            "specials": "IEEE arithmetic in every adder: NaN operand, Inf*0, Inf-Inf -> "
                        "canonical NaN; Inf operands -> Inf",
            "subnormals": "exact",
            "latency_cycles": L,
            "formats": {"a": describe_format(self._a), "b": describe_format(self._b),
                        "product": describe_format(self._pf), "acc": describe_format(acc)},
            "packing": {"a": lanes("a", 1, self._a.bits), "b": lanes("b", 1, self._b.bits),
                        **{p: lanes("acc", 1, acc.bits) for p in outputs}},
            "timing": timing,
            "reset": {
                "signal": "rst", "synchronous": True, "active": "high",
                "clears": f"every register to 0 ({registers}, acc_valid and the pipeline "
                          "registers); the inputs of the cycle with rst high and the terms "
                          "still in the pipeline are dropped",
                "outputs_after_reset": {**{p: zero for p in outputs}, "acc_valid": 0},
                "idle_inputs": {"valid": 0, "clear": 0},
                "accumulator_after_reset": f"+0 (code {zero}) in every register, as after "
                                           "clear without valid"},
            "golden_model": golden_model,
        }
        numerics = mac_numerics(self._a, self._b, acc, "fused", False, self._sat, 1,
                                port="acc")
        specials = (self._a.has_nan or self._b.has_nan or self._a.has_inf or self._b.has_inf)
        # without saturate, finite operands can still overflow one register to +Inf and the
        # other to -Inf (or Kahan's t - s = Inf - Inf), which gives NaN
        can_nan = specials or not self._sat
        c["nan_outputs"] = {p: [acc.nan_code] if can_nan else [] for p in outputs}
        c["nan_when"] = ("a NaN operand, Inf * 0, Inf - Inf in any adder (an overflowed "
                         "register meeting an infinity of the other sign); sticky until a new "
                         "sum" if can_nan else "never: no NaN/Inf operands and saturate")
        c["zero_sign"] = numerics["zero_sign"]
        return c


class ChunkedMac(_AccumMac):
    """Chunk-based FP multiply-accumulate (Wang et al. 2018; see the module docstring).

    Golden model: :func:`lowbit.models.training.chunked_stream` (the ``acc`` and ``partial``
    ports are its ``(outer, inner)`` codes, ``latency`` cycles later).

    Parameters
    ----------
    a_format, b_format : FloatFormat or str
        Operand formats: signed float formats with a zero, at most 16 bits (FP8 e4m3 / e5m2,
        FP6, FP4, ...).
    acc_format : FloatFormat or str
        Format of both the chunk (inner) and the outer register: fp16, bf16 (fp32, eXmY).
    chunk_length : int
        CL, products per chunk: 1..:data:`lowbit.models.training.MAX_CHUNK_LENGTH` (65536,
        what a 16-bit chunk counter counts).  The counter has ``max(1, ceil(log2 CL))`` bits.
    saturate : bool
        Overflow of finite values gives +-max instead of +-Inf (in both registers).
    pipeline_stages : int
        0..2: 1 registers the exact product before the adders, 2 also the operands.

    Numerics: exact products; the inner register adds one product per valid cycle with one
    RNE rounding; when the chunk has CL products or ``last`` is set, the rounded chunk sum is
    added to the outer register with one more RNE rounding, and the next valid cycle starts a
    new chunk from ``-0``.  Latency ``1 + pipeline_stages`` cycles; one MAC per cycle.  The
    loop: the inner adder (inner -> inner) and, in series after it, the outer adder (inner ->
    outer): two fused adders per cycle against one in :class:`lowbit.hdl.fp_mac.FpMac`.
    Measured (``lowbit synth chunked-mac --acc X``, generic Yosys flow, e4m3 x e5m2, CL 64,
    pipeline 0): bf16 2413.7 GE, 39 FF, logic depth 154 cells, 1.088 pJ/MAC; fp16 2750.0 GE,
    39 FF, depth 158, 1.239 pJ (fp-mac with the same operands: bf16 1258.3 GE / 17 FF / depth
    84 / 0.567 pJ, fp16 1495.3 GE / 17 FF / depth 90 / 0.674 pJ).  With ``--pipeline 1``
    (bf16): 2557.0 GE, 55 FF, depth 135 (fp-mac 1377.7 GE, 32 FF, depth 69), and on ECP5
    (``--target ecp5 --freq 50``) 740 LUT4, 155 carry cells, Fmax 13.9 MHz (fp-mac 28.8 MHz).

    Members
    -------
    a, b : In(bits)
        Operand codes.
    valid : In(1)
        Accumulate ``a*b`` this cycle.
    clear : In(1)
        Start a new sum: with ``valid`` the outer register restarts from ``-0`` and a new chunk
        begins; without it both registers are emptied to ``+0``.
    last : In(1)
        With ``valid``: this product closes the chunk (the end of a sum), whatever its count.
    acc : Out(acc_format.bits)
        The outer register (the sum of the closed chunks).
    partial : Out(acc_format.bits)
        The inner (chunk) register.
    acc_valid : Out(1)
        ``valid`` delayed by ``latency`` cycles.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it and the range).
    """

    def __init__(self, a_format="e4m3", b_format="e5m2", acc_format="fp16", chunk_length=64,
                 saturate=False, pipeline_stages=0):
        self._validate(a_format, b_format, acc_format, saturate, pipeline_stages)
        self._cl = model.check_chunk_length(chunk_length)
        super().__init__({"a": In(self._a.bits), "b": In(self._b.bits), "valid": In(1),
                          "clear": In(1), "last": In(1), "acc": Out(self._acc.bits),
                          "partial": Out(self._acc.bits), "acc_valid": Out(1)})

    chunk_length = property(lambda self: self._cl)

    @property
    def counter_bits(self):
        """Width of the chunk counter (it counts 0..CL-1)."""
        return max(1, (self._cl - 1).bit_length())

    @property
    def port_docs(self):
        L = self.latency
        acc = self._acc.name
        return {
            "a": f"operand a, {self._a.name} code",
            "b": f"operand b, {self._b.name} code",
            "valid": "accumulate a*b this cycle",
            "clear": "start a new sum (with valid: outer = -0, new chunk; without: both "
                     "registers +0)",
            "last": f"with valid: close the chunk after this product (else after "
                    f"{self._cl} products)",
            "acc": f"outer register (sum of the closed chunks), {acc} code, after the input "
                   f"of {L} cycle(s) earlier",
            "partial": f"inner (chunk) register, {acc} code, after the input of {L} cycle(s) "
                       "earlier",
            "acc_valid": f"valid delayed by {L} cycle(s)",
        }

    def contract(self):
        L = self.latency
        zero = positive_zero(self._acc)
        c = {"operation": f"partial <- partial + a*b; every {self._cl} products (or on last) "
                          "acc <- acc + partial and partial restarts"}
        c.update(self._common_contract(
            golden("lowbit.models.training.chunked_stream",
                   f"(outer, inner) codes after each input cycle: the acc and partial ports, "
                   f"{L} cycle(s) later; acc_valid = valid",
                   a_format=fmt_ref("a"), b_format=fmt_ref("b"), acc_format=fmt_ref("acc"),
                   chunk_length=self._cl, saturate=self._sat),
            ("acc", "partial"),
            f"per rising edge: valid -> partial <= (new chunk ? -0 : partial) + a*b and, if the "
            f"chunk closes ({self._cl} products or last), acc <= (clear ? -0 : acc) + partial "
            f"(the new partial); clear without valid -> acc, partial <= {zero} (+0) and a new "
            f"chunk; else everything holds. The ports show the registers after the input of "
            f"{L} cycle(s) earlier; acc_valid is valid delayed by {L}",
            "outer and chunk registers, chunk counter"))
        c["rounding"] = "RNE once per product (chunk register) and once per chunk (outer)"
        c["chunk"] = {"length": self._cl, "counter_bits": self.counter_bits,
                      "register_format": self._acc.name,
                      "source": "Wang et al., NeurIPS 2018, section 3.1"}
        return c

    def elaborate(self, platform):
        m = Module()
        p, (v, clr, last) = self._product(m, [self.valid, self.clear, self.last])
        acc, pf, sat = self._acc, self._pf, self._sat
        inner = Signal(acc.bits)
        outer = Signal(acc.bits)
        count = Signal(self.counter_bits)
        cnt0 = Signal(self.counter_bits)
        m.d.comb += cnt0.eq(Mux(clr, 0, count))
        i0 = Signal(acc.bits)
        o0 = Signal(acc.bits)
        m.d.comb += [i0.eq(Mux(cnt0 == 0, self._negzero(), inner)),
                     o0.eq(Mux(clr, self._negzero(), outer))]
        i1 = accumulate_into(m, acc, pf, i0, p, "fused", False, sat, name="inner")
        o_sum = accumulate_into(m, acc, acc, o0, i1, "fused", False, sat, name="outer")
        close = Signal()
        m.d.comb += close.eq(last | (cnt0 == self._cl - 1))
        with m.If(v):
            m.d.sync += [inner.eq(i1), outer.eq(Mux(close, o_sum, o0)),
                         count.eq(Mux(close, 0, cnt0 + 1))]
        with m.Elif(clr):
            m.d.sync += [inner.eq(0), outer.eq(0), count.eq(0)]
        vout = Signal()
        m.d.sync += vout.eq(v)
        m.d.comb += [self.acc.eq(outer), self.partial.eq(inner), self.acc_valid.eq(vout)]
        return m


class KahanMac(_AccumMac):
    """Kahan-compensated FP multiply-accumulate (see the module docstring).

    Golden model: :func:`lowbit.models.training.kahan_stream` (the ``acc`` and ``comp`` ports
    are its ``(s, c)`` codes, ``latency`` cycles later); one step is
    :func:`lowbit.models.training.kahan_step`.

    Parameters
    ----------
    a_format, b_format : FloatFormat or str
        Operand formats, as :class:`ChunkedMac`.
    acc_format : FloatFormat or str
        Format of the sum and the compensation: fp16, bf16 (fp32, eXmY).
    saturate : bool
        Overflow of finite values gives +-max instead of +-Inf (in every adder).
    pipeline_stages : int
        0..2: 1 registers the exact product before the adders, 2 also the operands.

    Numerics: per valid cycle, with the exact product ``p``, ``y = RNE(p - c)``, ``t = RNE(s +
    y)``, ``c' = RNE(RNE(t - s) - y)``, ``s' = t`` -- four fused adders with one RNE rounding
    each; no special case (once ``s`` is infinite, ``t - s`` is NaN and the next step gives
    NaN, as in the model).  Latency ``1 + pipeline_stages`` cycles, one MAC per cycle.

    What the loop costs: the compensated loop runs through four fused adders in series
    (``c -> y -> t -> t - s -> c'``) in one cycle, against one in
    :class:`lowbit.hdl.fp_mac.FpMac` (``acc -> acc + p -> acc``); the ``s`` register's loop is
    three adders (``s -> t`` and ``s -> t - s -> c'``).  The adders cannot be pipelined without
    giving up one MAC per cycle for one sum (the next step needs ``s'`` and ``c'``), so the
    clock period is about four adder delays.  Measured (``lowbit synth kahan-mac --acc X``,
    generic Yosys flow, e4m3 x e5m2, pipeline 0; against ``lowbit synth fp-mac --a e4m3 --b
    e5m2 --acc X``): bf16 3988.3 GE, 33 FF, logic depth 277 cells, 1.798 pJ/MAC (fp-mac 1258.3
    GE, 17 FF, depth 84, 0.567 pJ); fp16 4432.0 GE, 33 FF, depth 286, 1.998 pJ (fp-mac 1495.3
    GE, 17 FF, depth 90, 0.674 pJ): 3.0-3.2x the area and energy, 3.2-3.3x the depth.  With
    the product registered (``--pipeline 1``), which leaves the loop as the longest path:
    bf16 4113.7 GE, 48 FF, depth 256 (fp-mac 1377.7 GE, 32 FF, depth 69: 3.7x), and on ECP5
    (``--target ecp5 --freq 50``, nextpnr-ecp5 seed 1) 1953 LUT4, 296 carry cells, Fmax 6.8 MHz
    against fp-mac's 349 LUT4, 77 carry cells, 28.8 MHz (4.2x the period).

    Members
    -------
    a, b : In(bits)
        Operand codes.
    valid : In(1)
        Accumulate ``a*b`` this cycle.
    clear : In(1)
        Start a new sum: with ``valid`` from ``s = -0, c = +0``; without it both registers are
        emptied to ``+0``.
    acc : Out(acc_format.bits)
        The sum ``s``.
    comp : Out(acc_format.bits)
        The compensation ``c``.
    acc_valid : Out(1)
        ``valid`` delayed by ``latency`` cycles.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it and the range).
    """

    def __init__(self, a_format="e4m3", b_format="e5m2", acc_format="fp16", saturate=False,
                 pipeline_stages=0):
        self._validate(a_format, b_format, acc_format, saturate, pipeline_stages)
        super().__init__({"a": In(self._a.bits), "b": In(self._b.bits), "valid": In(1),
                          "clear": In(1), "acc": Out(self._acc.bits),
                          "comp": Out(self._acc.bits), "acc_valid": Out(1)})

    @property
    def port_docs(self):
        L = self.latency
        acc = self._acc.name
        return {
            "a": f"operand a, {self._a.name} code",
            "b": f"operand b, {self._b.name} code",
            "valid": "accumulate a*b this cycle",
            "clear": "start a new sum (with valid: s = -0, c = +0; without: both +0)",
            "acc": f"sum s, {acc} code, after the input of {L} cycle(s) earlier",
            "comp": f"compensation c, {acc} code, after the input of {L} cycle(s) earlier",
            "acc_valid": f"valid delayed by {L} cycle(s)",
        }

    def contract(self):
        L = self.latency
        zero = positive_zero(self._acc)
        c = {"operation": "y = a*b - comp; t = acc + y; comp <- (t - acc) - y; acc <- t"}
        c.update(self._common_contract(
            golden("lowbit.models.training.kahan_stream",
                   f"(s, c) codes after each input cycle: the acc and comp ports, {L} "
                   "cycle(s) later; acc_valid = valid",
                   a_format=fmt_ref("a"), b_format=fmt_ref("b"), acc_format=fmt_ref("acc"),
                   saturate=self._sat),
            ("acc", "comp"),
            f"per rising edge: valid -> (acc, comp) <= Kahan step of (clear ? (-0, +0) : (acc, "
            f"comp)) with a*b; clear without valid -> acc, comp <= {zero} (+0); else both "
            f"hold. The ports show the registers after the input of {L} cycle(s) earlier; "
            f"acc_valid is valid delayed by {L}",
            "sum and compensation registers"))
        c["rounding"] = ("RNE in each of the four adders, in the order of "
                         "lowbit.models.training.kahan_step")
        c["kahan"] = {"source": "Kahan, CACM 8(1), 1965",
                      "loop": "four fused adders in series per cycle (c -> y -> t -> t-s -> c)"}
        return c

    def elaborate(self, platform):
        m = Module()
        p, (v, clr) = self._product(m, [self.valid, self.clear])
        acc, pf, sat = self._acc, self._pf, self._sat
        nz = self._negzero()
        s = Signal(acc.bits)
        c = Signal(acc.bits)
        s0 = Signal(acc.bits)
        neg_s0 = Signal(acc.bits)
        neg_c0 = Signal(acc.bits)
        m.d.comb += [s0.eq(Mux(clr, nz, s)), neg_s0.eq(s0 ^ nz),
                     neg_c0.eq(Mux(clr, 0, c) ^ nz)]
        y = accumulate_into(m, acc, pf, neg_c0, p, "fused", False, sat, name="ky")
        t = accumulate_into(m, acc, acc, s0, y, "fused", False, sat, name="kt")
        d = accumulate_into(m, acc, acc, t, neg_s0, "fused", False, sat, name="kd")
        neg_y = Signal(acc.bits)
        m.d.comb += neg_y.eq(y ^ nz)
        c1 = accumulate_into(m, acc, acc, d, neg_y, "fused", False, sat, name="kc")
        with m.If(v):
            m.d.sync += [s.eq(t), c.eq(c1)]
        with m.Elif(clr):
            m.d.sync += [s.eq(0), c.eq(0)]
        vout = Signal()
        m.d.sync += vout.eq(v)
        m.d.comb += [self.acc.eq(s), self.comp.eq(c), self.acc_valid.eq(vout)]
        return m


_FMT_HELP = "signed float format of at most 16 bits (e4m3, e5m2, e4m3fnuz, e2m1, eXmY...)"


def _common_params(acc_help):
    return (
        Param("a_format", "--a", "format", "e4m3", "format of operand a: " + _FMT_HELP),
        Param("b_format", "--b", "format", "e5m2", "format of operand b: " + _FMT_HELP),
        Param("acc_format", "--acc", "format", "fp16", acc_help),
    )


_TAIL = (
    Param("saturate", "--saturate", "bool", False, "overflow to +-max instead of +-Inf"),
    pipeline_param(MAX_PIPELINE, 1, stages="1: product register, 2: also the operands"),
)

UNITS = [
    Unit("chunked-mac", ChunkedMac, (
        *_common_params("chunk and outer register format (fp16, bf16, fp32)"),
        Param("chunk_length", "--chunk", "int", 64,
              f"products per chunk (CL), 1..{model.MAX_CHUNK_LENGTH}"),
        *_TAIL,
    ), "chunk-based FP MAC (Wang et al. 2018): CL products in a chunk register, chunk sums "
       "in an outer register"),
    Unit("kahan-mac", KahanMac, (
        *_common_params("sum and compensation format (fp16, bf16, fp32)"),
        *_TAIL,
    ), "Kahan-compensated FP MAC: sum and compensation registers, four RNE adders per step"),
]
