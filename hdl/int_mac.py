"""Integer multiply-accumulate (Amaranth 0.5): ``IntMacStep`` (combinational) and ``IntMac``.

Numeric contract: :func:`lowbit.models.mac.int_mac_step` / ``mac_stream(kind="int")``.  ``a``
and ``b`` are INTn/UINTn (n = 2..16, mixed signedness), the product is exact
(:func:`lowbit.models.mac.int_product_bits` bits), the signed ``acc_bits``-bit accumulator wraps
modulo ``2^acc_bits`` or saturates.  A new sum starts from 0.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.models import formats
from lowbit.models import mac as model

from .formats import layout
from .fp_mul import check_pipeline
from .manifest import describe_format, fmt_ref, golden, lanes, positive_zero
from .unit import Param, Unit, pipeline_param

__all__ = ["IntMacStep", "IntMac", "UNITS", "int_accumulate_into", "lut_multiply_into"]

#: Largest ``pipeline_stages`` of :class:`IntMac`.
MAX_PIPELINE = 3


def int_accumulate_into(m, acc_bits, overflow, acc_in, p, name="iacc"):
    """Logic for ``acc_in + p`` wrapped/saturated to ``acc_bits``; returns the signal."""
    s = Signal(signed(max(acc_bits, len(p)) + 2), name=f"{name}_sum")
    m.d.comb += s.eq(acc_in + p)
    out = Signal(signed(acc_bits), name=f"{name}_out")
    if overflow == "saturate":
        lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
        m.d.comb += out.eq(Mux(s > hi, hi, Mux(s < lo, lo, s)))
    else:
        m.d.comb += out.eq(s[:acc_bits])
    return out


def lut_multiply_into(m, a, b, pbits, cuts=(), name="lmul"):
    """Logic for the exact product ``a * b`` as a tree of partial products; returns (p, regs).

    ``a`` and ``b`` are signed or unsigned Values; ``p`` is a ``pbits``-bit Value holding the
    product modulo ``2^pbits`` (exact when the product fits ``pbits`` signed bits; read it
    with ``.as_signed()``).  No ``$mul`` cell is made, so an FPGA flow maps it to LUTs and
    carry chains instead of a DSP block.

    Every term is computed modulo ``2^pbits``: one partial product per bit of ``b``
    (``b_i ? a : 0`` at weight ``2^i``; for a signed ``b`` the top one is
    ``b_top ? ~a : 0`` plus ``b_top`` at weight ``2^(m-1)``, i.e. ``-a`` without a negation
    chain: the ``+ b_top`` enters its first adder as a carry-in).  Terms are summed pairwise,
    level by level; the ``d`` low bits of the lower-weight term bypass the adder, so each
    adder is one carry chain of ``pbits - shift`` bits.  A register is placed after each tree
    level whose number (1 = the first sums) is in ``cuts``; ``regs`` is the number of registers
    on the path (the caller delays its other signals by as many cycles).
    """
    n = len(b)
    a_ext = Signal(pbits, name=f"{name}_a")
    m.d.comb += a_ext.eq(a)                       # sign- or zero-extended, as a's shape says
    terms = []                                    # (value, shift, carry-in or None)
    for i in range(n):
        w = pbits - i
        if w <= 0:
            continue
        t = Signal(w, name=f"{name}_pp{i}")
        if i == n - 1 and b.shape().signed:
            m.d.comb += t.eq(Mux(b[i], ~a_ext[:w], 0))
            terms.append((t, i, b[i]))
        else:
            m.d.comb += t.eq(Mux(b[i], a_ext[:w], 0))
            terms.append((t, i, None))

    def add(x, y):          # x: the lower shift, no carry-in; y: maybe a carry-in
        (xv, xs, xc), (yv, ys, yc) = x, y
        assert xc is None and ys >= xs
        d = ys - xs
        hw = pbits - ys
        cin = yc if yc is not None else Const(0, 1)
        hi = (Cat(Const(1, 1), xv[d:]) + Cat(cin, yv))[1:hw + 1]
        return Cat(xv[:d], hi), xs, None

    level, regs = 0, 0
    while len(terms) > 1:
        level += 1
        nxt = [add(terms[k], terms[k + 1]) for k in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        if level in cuts:
            regd = []
            for k, (v, sh, c) in enumerate(nxt):
                r = Signal(len(v), name=f"{name}_l{level}_{k}")
                m.d.sync += r.eq(v)
                if c is not None:
                    rc = Signal(name=f"{name}_l{level}_{k}_c")
                    m.d.sync += rc.eq(c)
                    c = rc
                regd.append((r, sh, c))
            nxt, regs = regd, regs + 1
        terms = nxt
    v, sh, c = terms[0]
    p = Signal(pbits, name=f"{name}_p")
    m.d.comb += p.eq((Cat(Const(0, sh), v) + (c if c is not None else 0))[:pbits])
    return p, regs


class _Params:
    def _validate(self, a_format, b_format, acc_bits, overflow):
        self._a = model.check_int_operand(a_format, "a_format")
        self._b = model.check_int_operand(b_format, "b_format")
        self._acc_bits = model.check_acc_bits(acc_bits)
        self._overflow = model.check_overflow(overflow)
        self._pbits = model.int_product_bits(self._a, self._b)

    a_format = property(lambda self: self._a)
    b_format = property(lambda self: self._b)
    acc_bits = property(lambda self: self._acc_bits)
    overflow = property(lambda self: self._overflow)
    product_bits = property(lambda self: self._pbits)


class IntMacStep(_Params, wiring.Component):
    """Combinational ``acc_out = acc_in + a*b`` (wrap or saturate); parameters as :class:`IntMac`."""

    is_sequential = False
    latency = 0

    def __init__(self, a_format="int8", b_format="int8", acc_bits=32, overflow="wrap"):
        self._validate(a_format, b_format, acc_bits, overflow)
        super().__init__({"acc_in": In(signed(self._acc_bits)), "a": In(layout(self._a)),
                          "b": In(layout(self._b)), "acc_out": Out(signed(self._acc_bits))})

    def elaborate(self, platform):
        m = Module()
        p = Signal(signed(self._pbits), attrs={"keep": 1})  # keep: see note below
        m.d.comb += p.eq(self.a * self.b)
        m.d.comb += self.acc_out.eq(int_accumulate_into(m, self._acc_bits, self._overflow,
                                                        self.acc_in, p))
        return m


# Note on ``keep``: without it Yosys' ``alumacc`` fuses ``acc + a*b`` into one $macc cell
# evaluated at the full accumulator width, which synthesises a 32-bit-wide multiplier
# array (e.g. 627 vs 341 GE for a 4x4 product into 32 bits, measured by the OverQ work).
# Keeping the product wire makes Yosys build an n x m multiplier and a separate adder,
# which is the circuit a designer means.


class IntMac(_Params, wiring.Component):
    """Integer multiply-accumulate unit.

    Parameters
    ----------
    a_format, b_format : IntFormat or str
        ``int2``..``int16`` or ``uint2``..``uint16`` (mixed signedness allowed).
    acc_bits : int
        Signed accumulator width, 2..64 (default 32).
    overflow : str
        ``"wrap"`` (two's complement) or ``"saturate"`` (clamp to the accumulator range).
    pipeline_stages : int
        0..3: 1 registers the product, 2 also the operands; ``latency = 1 + pipeline_stages``.
        0..2 multiply with one ``a * b`` (an FPGA flow maps it to a DSP block, e.g. one ECP5
        MULT18X18D).  3 builds the product from partial products in LUTs and carry chains
        (:func:`lut_multiply_into`) with a register in the middle of the adder tree, so that
        no path crosses an unregistered DSP: Yosys does not pack fabric registers into the
        ECP5 DSP's internal registers, and its combinational delay (3.93 ns in nextpnr-ecp5,
        speed grade 6) plus the routing into and out of the DSP tile bounds a
        register-DSP-register path near 146 MHz (benchmarks/ecp5_timing.py).  Every depth
        accepts one term per cycle.

    Members
    -------
    a, b : In(signed/unsigned bits)
        Operands.
    valid : In(1)
        Accumulate ``a*b`` this cycle.
    clear : In(1)
        Start a new sum (with ``valid``: ``acc = a*b``; without: ``acc = 0``).
    acc : Out(signed(acc_bits))
        Accumulator after the input of ``latency`` cycles ago.
    acc_valid : Out(1)
        ``valid`` delayed by ``latency`` cycles.

    Raises
    ------
    ValueError
        A parameter out of range.
    """

    def __init__(self, a_format="int8", b_format="int8", acc_bits=32, overflow="wrap",
                 pipeline_stages=0):
        self._validate(a_format, b_format, acc_bits, overflow)
        self._stages = check_pipeline(pipeline_stages, MAX_PIPELINE)
        super().__init__({"a": In(layout(self._a)), "b": In(layout(self._b)), "valid": In(1),
                          "clear": In(1), "acc": Out(signed(self._acc_bits)),
                          "acc_valid": Out(1)})

    pipeline_stages = property(lambda self: self._stages)

    @property
    def latency(self):
        return 1 + self._stages

    @property
    def port_docs(self):
        L = self.latency
        return {
            "a": f"operand a, {self._a.name}", "b": f"operand b, {self._b.name}",
            "valid": "accumulate a*b this cycle",
            "clear": "start a new sum (with valid: acc = a*b; without: acc = 0)",
            "acc": f"signed {self._acc_bits}-bit accumulator after the input of {L} cycle(s) "
                   "earlier",
            "acc_valid": f"valid delayed by {L} cycle(s)",
        }

    def contract(self):
        acc_f = formats.int_format(self._acc_bits)
        prod_f = formats.int_format(self._pbits)
        zero = positive_zero(acc_f)
        L = self.latency
        return {
            "operation": "acc <- acc + a*b",
            "a_format": self._a.name, "b_format": self._b.name,
            "product_bits": self._pbits, "product": "exact",
            "acc_bits": self._acc_bits, "acc_signed": True,
            "overflow": self._overflow, "rounding": "none (integers)",
            "latency_cycles": L,
            "formats": {"a": describe_format(self._a), "b": describe_format(self._b),
                        "product": describe_format(prod_f), "acc": describe_format(acc_f)},
            "packing": {"a": lanes("a", 1, self._a.bits, self._a.signed),
                        "b": lanes("b", 1, self._b.bits, self._b.signed),
                        "acc": lanes("acc", 1, self._acc_bits, True)},
            "overflow_rule": (f"every step: acc + a*b modulo 2^{self._acc_bits} (two's "
                              "complement)" if self._overflow == "wrap" else
                              f"every step: acc + a*b clamped to [{acc_f.min}, {acc_f.max}]; "
                              "not sticky (later terms move a clamped sum back)"),
            "timing": (f"per rising edge: valid -> acc <= (clear ? {zero} : acc) + a*b; clear "
                       f"without valid -> acc <= {zero}; else acc holds. The acc port shows the "
                       f"accumulator after the input of {L} cycle(s) earlier; acc_valid is valid "
                       f"delayed by {L}"),
            "nan_outputs": {},
            "reset": {
                "signal": "rst", "synchronous": True, "active": "high",
                "clears": "every register to its init value: the accumulator, acc_valid and "
                          "the pipeline registers (operands, product, valid, clear) to 0; the "
                          "inputs of the cycle with rst high and the terms still in the "
                          "pipeline are dropped",
                "outputs_after_reset": {"acc": zero, "acc_valid": 0},
                "idle_inputs": {"valid": 0, "clear": 0},
                "accumulator_after_reset": f"{zero}, the empty sum (as after clear without "
                                           "valid)"},
            "golden_model": golden(
                "lowbit.models.mac.mac_stream",
                "the accumulator value after each input cycle (signed; the acc port carries it "
                f"in two's complement {L} cycle(s) later); acc_valid = valid",
                kind="int", a_format=fmt_ref("a"), b_format=fmt_ref("b"),
                acc_bits=self._acc_bits, overflow=self._overflow),
        }

    def elaborate(self, platform):
        m = Module()
        a, b, v, c = self.a, self.b, self.valid, self.clear
        if self._stages == 2:
            ra, rb, rv, rc = Signal.like(a), Signal.like(b), Signal(), Signal()
            m.d.sync += [ra.eq(a), rb.eq(b), rv.eq(v), rc.eq(c)]
            a, b, v, c = ra, rb, rv, rc
        p = Signal(signed(self._pbits), attrs={"keep": 1})  # keep: see note below
        if self._stages >= 3:
            # a register after each of the first two adder-tree levels (padded with plain
            # delay registers when the tree has fewer levels), then the product register
            q, regs = lut_multiply_into(m, a, b, self._pbits, cuts=(1, 2))
            for _ in range(2 - regs):
                rq = Signal(self._pbits)
                m.d.sync += rq.eq(q)
                q = rq
            for _ in range(2):
                rv, rc = Signal(), Signal()
                m.d.sync += [rv.eq(v), rc.eq(c)]
                v, c = rv, rc
            rv, rc = Signal(), Signal()
            m.d.sync += [p.eq(q.as_signed()), rv.eq(v), rc.eq(c)]
            v, c = rv, rc
        elif self._stages >= 1:
            rv, rc = Signal(), Signal()
            m.d.sync += [p.eq(a * b), rv.eq(v), rc.eq(c)]
            v, c = rv, rc
        else:
            m.d.comb += p.eq(a * b)
        acc = Signal(signed(self._acc_bits))
        start = Mux(c, 0, acc)
        new = int_accumulate_into(m, self._acc_bits, self._overflow, start, p)
        with m.If(v):
            m.d.sync += acc.eq(new)
        with m.Elif(c):
            m.d.sync += acc.eq(0)
        vout = Signal()
        m.d.sync += vout.eq(v)
        m.d.comb += [self.acc.eq(acc), self.acc_valid.eq(vout)]
        return m


UNITS = [
    Unit("int-mac", IntMac, (
        Param("a_format", "--a", "format", "int8", "operand a: int2..int16 or uint2..uint16"),
        Param("b_format", "--b", "format", "int8", "operand b: int2..int16 or uint2..uint16"),
        Param("acc_bits", "--acc-bits", "int", 32, "signed accumulator width (2..64)"),
        Param("overflow", "--overflow", "choice", "wrap", "accumulator overflow policy",
              choices=model.INT_OVERFLOWS),
        pipeline_param(MAX_PIPELINE, 1, stages="3: LUT multiplier, no DSP"),
    ), "integer multiply-accumulate, INTn/UINTn operands, signed wrap/saturate accumulator"),
]
