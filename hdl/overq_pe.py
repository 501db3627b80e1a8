"""OverQ processing element and the plain b-bit PE baseline (Amaranth 0.5).

The encoding and its design choices are documented in :mod:`lowbit.models.overq`; this
module implements its PE contract bit-exactly:

``term = value(code) * (w if meta == OWN else w_prev) << shift(meta)``

with ``value`` the signed b-bit code, ``shift`` = ``F`` (OWN, SHIFT), ``F + b`` (RANGE),
``F - b = 0`` (PREC; reserved, term 0, when precision overwrite is off) and ``F = b`` with
precision overwrite, else 0.  Hardware cost over a plain PE: a 2:1 weight mux (own weight or
the weight of the PE above, a stationary wire in a weight-stationary array), a 3:1 mux of
fixed shifts of the product and a wider accumulator adder input; the multiplier stays b x w
bits.  The cascade depth is an encoder-only choice (the PE is the same for every depth); it
only decides, with ``precision``, how many metadata bits the PE takes (1 or 2).

Units
-----
:class:`OverqStep` / :class:`IntPeStep`
    Combinational ``psum_out = psum_in + term`` for a weight-stationary systolic array: the
    psum enters from the PE above and leaves to the PE below; ``w_prev`` is the stationary
    weight of the PE above (0 for the top row).
:class:`OverqPe` / :class:`IntPe` (``overq-pe`` / ``int-pe`` in the catalogue)
    Standalone streaming MAC: one (code, metadata, weight) per cycle, ``first`` starts a new
    dot product; the previous cycle's weight is kept in a register (it is the "weight of the
    slot before").  Latency 1.  The plain :class:`IntPe` has the same accumulator, ports and
    timing so that synthesis isolates the OverQ overhead.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.models import formats
from lowbit.models import overq as model
from lowbit.models.checks import check_int
from lowbit.models.overq import OWN, PREC, RANGE, SHIFT, OverqConfig

from .manifest import construct, describe_format, golden, lanes, positive_zero
from .unit import Param, Unit

__all__ = ["OverqStep", "OverqPe", "IntPeStep", "IntPe", "UNITS", "overq_contract"]

MAX_ACC_BITS = model.MAX_ACC_BITS
SHIFT_AT = model.SHIFT_AT

# Yosys ``keep`` on the product wire: without it Yosys's ``alumacc`` fuses ``psum + a * w`` into
# one ``$macc`` cell that is mapped as a multiplier at the accumulator's full width (measured
# with lowbit.fpga.synth generic: 4x4-bit product + 32-bit accumulate 627 NAND2 eq. fused,
# 341 kept; 8x8: 1157 vs 768).  Both PEs carry it so that the area ratio compares like with like.
_KEEP = {"keep": 1}


class _Params:
    """Validation shared by the OverQ units (:func:`lowbit.models.overq.check_pe`)."""

    def _setup(self, bits, w_bits, acc_bits, cascade, precision, shift_at):
        self._config, self._w_bits, self._acc_bits, self._shift_at = model.check_pe(
            bits, w_bits, acc_bits, cascade, precision, shift_at)

    @property
    def config(self):
        return self._config

    @property
    def bits(self):
        return self._config.bits

    @property
    def w_bits(self):
        return self._w_bits

    @property
    def acc_bits(self):
        return self._acc_bits

    @property
    def meta_bits(self):
        return self._config.meta_bits

    @property
    def shift_at(self):
        return self._shift_at

    def _contract(self, kind):
        return overq_contract(kind, self._config, self._w_bits, self._acc_bits, self._shift_at)


def overq_contract(kind, config, w_bits, acc_bits, shift_at):
    """The numeric contract (manifest) of an OverQ PE called ``kind``."""
    cfg = config
    return {
        "kind": kind,
        "code_format": cfg.fmt.name,
        "weight_format": f"int{w_bits}",
        "accumulator": f"int{acc_bits}, two's complement, wraps on overflow",
        "accumulator_lsb": f"s_x * s_w * 2^-{cfg.frac_bits}",
        "cascade": cfg.cascade,
        "precision_overwrite": cfg.precision,
        "meta_bits": cfg.meta_bits,
        "meta_codes": {model.META_NAMES[c]: c for c in cfg.meta_codes},
        "term": "value(code) * (w if meta == own else w_prev) << shift(meta)",
        "shifts": {"own": cfg.frac_bits, "range": cfg.frac_bits + cfg.bits,
                   "shift": cfg.frac_bits,
                   "precision": 0 if cfg.precision else "reserved (term 0)"},
        "shift_at": shift_at,
        "rounding": "none (exact integer arithmetic)",
        "golden_model": "lowbit.models.overq.overq_step / overq_pe / overq_pe_stream",
    }


def _stream_contract(fmts, packing, registers, golden_model):
    """The contract entries shared by the streaming PEs (:class:`OverqPe`, :class:`IntPe`)."""
    acc = fmts["acc"]
    zero = positive_zero(acc)
    return {
        "formats": {role: describe_format(f) for role, f in fmts.items()},
        "packing": packing,
        "overflow_rule": f"every step: modulo 2^{acc.bits} (two's complement wrap), no rounding",
        "nan_outputs": {},
        "reset": {"signal": "rst", "synchronous": True, "active": "high",
                  "clears": f"{registers} to 0; the inputs of the cycle with rst high are "
                            "dropped",
                  "outputs_after_reset": {"acc": zero}, "idle_inputs": {"valid": 0},
                  "accumulator_after_reset": f"{zero}"},
        "golden_model": golden_model,
    }


def _term(m, cfg, w_bits, code, meta, w, w_prev, shift_at="product", name="t"):
    """Add the reconstruction + multiply to ``m``; return the signed, shifted term."""
    b, f = cfg.bits, cfg.frac_bits
    link = Signal(name=f"{name}_link")
    wsel = Signal(signed(w_bits), name=f"{name}_wsel")
    m.d.comb += [link.eq(meta != OWN), wsel.eq(Mux(link, w_prev, w))]
    reserved = (meta == PREC) if (cfg.meta_bits == 2 and not cfg.precision) else Const(0)
    if shift_at == "operands":
        # (code << F, or code for PREC, 0 when reserved) x (w_sel << b for RANGE, else w_sel)
        a = Signal(signed(b + f), name=f"{name}_a")
        bw = Signal(signed(w_bits + b), name=f"{name}_b")
        term = Signal(signed(b + f + w_bits + b), name=f"{name}_term", attrs=_KEEP)
        is_prec = (meta == PREC) if (cfg.meta_bits == 2 and cfg.precision) else Const(0)
        m.d.comb += [
            a.eq(Mux(reserved, 0, Mux(is_prec, code.as_signed(), code.as_signed() << f))),
            bw.eq(Mux(meta == RANGE, wsel << b, wsel)),
            term.eq(a * bw),
        ]
        return term
    prod = Signal(signed(b + w_bits), name=f"{name}_prod", attrs=_KEEP)
    term = Signal(signed(b + w_bits + f + b), name=f"{name}_term")
    m.d.comb += prod.eq(code.as_signed() * wsel)
    with m.Switch(meta):
        with m.Case(RANGE):
            m.d.comb += term.eq(prod << (f + b))
        if cfg.precision:
            with m.Case(PREC):
                m.d.comb += term.eq(prod)
        with m.Case(*((OWN, SHIFT) if cfg.meta_bits == 2 else (OWN,))):
            m.d.comb += term.eq(prod << f)
        with m.Default():                    # reserved: PREC with precision overwrite off
            m.d.comb += term.eq(0)
    return term


class OverqStep(wiring.Component, _Params):
    """Combinational OverQ PE step for a weight-stationary systolic array.

    ``psum_out = wrap(psum_in + value(code) * (w if meta == OWN else w_prev) << shift(meta))``
    exactly as :func:`lowbit.models.overq.overq_step`.

    Parameters
    ----------
    bits : int
        Code width b, 2..16 (``int<b>`` codes).
    w_bits : int
        Weight width, 2..16 (signed).
    acc_bits : int
        Partial-sum width, from ``bits + w_bits + F + bits`` (the widest term) to 64.
    cascade : int
        Encoder cascade depth 0..16 (only decides the metadata width, with ``precision``).
    precision : bool
        Precision overwrite supported (``F = bits`` accumulator fraction bits).
    shift_at : {"product", "operands"}
        Micro-architecture only (same numbers): shift the b x w product through a 3:1 mux
        (``"product"``), or shift the operands before a (b + F) x (w + b) multiplier so that the
        product feeds the accumulator directly (``"operands"``, for FPGA DSP blocks).

    Members
    -------
    code : In(bits)            b-bit code (two's complement pattern).
    meta : In(meta_bits)       metadata state (0 own, 1 range, 2 shift, 3 precision).
    w : In(signed(w_bits))     this PE's stationary weight.
    w_prev : In(signed(w_bits)) the weight of the PE above (previous slot), 0 for the top row.
    psum_in : In(signed(acc_bits))
    psum_out : Out(signed(acc_bits))   wraps modulo 2^acc_bits.

    Latency 0 (combinational).  No rounding; overflow wraps.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    is_sequential = False

    def __init__(self, bits=4, w_bits=4, acc_bits=32, cascade=1, precision=True,
                 shift_at="product"):
        self._setup(bits, w_bits, acc_bits, cascade, precision, shift_at)
        super().__init__({
            "code": In(self.bits),
            "meta": In(self.meta_bits),
            "w": In(signed(self.w_bits)),
            "w_prev": In(signed(self.w_bits)),
            "psum_in": In(signed(self.acc_bits)),
            "psum_out": Out(signed(self.acc_bits)),
        })

    latency = 0

    def contract(self):
        return self._contract("OverQ WS PE step (combinational)")

    @property
    def port_docs(self):
        return {
            "code": f"int{self.bits} activation code (two's-complement pattern); an owner's digit, "
                    "a range/precision digit of the slot above, or a value moved by the cascade",
            "meta": f"{self.meta_bits}-bit OverQ state: 0 own, 1 range (x w_prev << F+b), "
                    "2 shift (x w_prev << F), 3 precision (x w_prev)",
            "w": f"int{self.w_bits} stationary weight of this PE",
            "w_prev": f"int{self.w_bits} stationary weight of the PE above (0 for the top row)",
            "psum_in": f"int{self.acc_bits} partial sum from the PE above (LSB = s_x s_w 2^-F)",
            "psum_out": f"int{self.acc_bits} partial sum to the PE below, wraps on overflow",
        }

    def elaborate(self, platform):
        m = Module()
        term = _term(m, self.config, self.w_bits, self.code, self.meta, self.w, self.w_prev,
                     self.shift_at)
        m.d.comb += self.psum_out.eq(self.psum_in + term)
        return m


class OverqPe(wiring.Component, _Params):
    """Standalone OverQ PE: a streaming multiply-accumulate over OverQ codes.

    On each rising edge with ``valid``: ``acc <= (0 if first else acc) + term`` where the
    term is that of :class:`OverqStep` with ``w_prev`` = the weight of the previous valid
    cycle (0 when ``first``), and that weight register takes ``w``.  Without ``valid`` both
    registers hold; reset clears both.  Golden model:
    :func:`lowbit.models.overq.overq_pe_stream` (cycle by cycle) and
    :func:`lowbit.models.overq.overq_pe` (one vector streamed with ``first`` on slot 0).

    Parameters
    ----------
    bits, w_bits, acc_bits, cascade, precision, shift_at
        As for :class:`OverqStep`.

    Members
    -------
    code : In(bits)
    meta : In(meta_bits)
    w : In(signed(w_bits))     weight of this slot.
    first : In(1)              this slot starts a new dot product.
    valid : In(1)              the inputs of this cycle are a slot.
    acc : Out(signed(acc_bits)) the accumulator (registered), wraps modulo 2^acc_bits.

    Latency 1: ``acc`` includes a slot's term one cycle after the slot is presented.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, bits=4, w_bits=4, acc_bits=32, cascade=1, precision=True,
                 shift_at="product"):
        self._setup(bits, w_bits, acc_bits, cascade, precision, shift_at)
        super().__init__({
            "code": In(self.bits),
            "meta": In(self.meta_bits),
            "w": In(signed(self.w_bits)),
            "first": In(1),
            "valid": In(1),
            "acc": Out(signed(self.acc_bits)),
        })

    latency = 1

    def contract(self):
        c = self._contract("OverQ PE (streaming MAC)")
        c["timing"] = ("per valid cycle: acc <= (first ? 0 : acc) + term(code, meta, w, "
                       "first ? 0 : previous valid w); latency 1")
        cfg = self.config
        c.update(_stream_contract(
            {"code": cfg.fmt, "meta": formats.int_format(cfg.meta_bits, signed=False),
             "weight": formats.int_format(self.w_bits),
             "acc": formats.int_format(self.acc_bits)},
            {"code": lanes("code", 1, cfg.bits), "meta": lanes("meta", 1, cfg.meta_bits),
             "w": lanes("weight", 1, self.w_bits, True),
             "acc": lanes("acc", 1, self.acc_bits, True)},
            "the accumulator and the previous-weight register",
            golden("lowbit.models.overq.overq_pe_stream",
                   "acc after each cycle (signed values; the acc port carries them in two's "
                   "complement one cycle later)",
                   config=construct("lowbit.models.overq.OverqConfig", bits=cfg.bits,
                                    cascade=cfg.cascade, precision=cfg.precision),
                   w_bits=self.w_bits, acc_bits=self.acc_bits)))
        c["meta_port"] = (f"{cfg.meta_bits}-bit state per slot, codes "
                          + ", ".join(f"{v} {k}" for k, v in c["meta_codes"].items()))
        return c

    @property
    def port_docs(self):
        return {
            "code": f"int{self.bits} activation code of this slot (two's-complement pattern)",
            "meta": f"{self.meta_bits}-bit OverQ state of this slot: 0 own, 1 range, 2 shift, "
                    "3 precision (see contract)",
            "w": f"int{self.w_bits} weight of this slot",
            "first": "1: this slot starts a new dot product (accumulator and previous weight read as 0)",
            "valid": "1: the inputs of this cycle are a slot; 0: registers hold",
            "acc": f"int{self.acc_bits} accumulator, LSB = s_x s_w 2^-{self.config.frac_bits}, "
                   "wraps on overflow; updated one cycle after each valid slot",
        }

    def elaborate(self, platform):
        m = Module()
        m.submodules.step = step = OverqStep(self.bits, self.w_bits, self.acc_bits,
                                             self.config.cascade, self.config.precision,
                                             self.shift_at)
        w_reg = Signal(signed(self.w_bits))
        m.d.comb += [
            step.code.eq(self.code),
            step.meta.eq(self.meta),
            step.w.eq(self.w),
            step.w_prev.eq(Mux(self.first, 0, w_reg)),
            step.psum_in.eq(Mux(self.first, 0, self.acc)),
        ]
        with m.If(self.valid):
            m.d.sync += [self.acc.eq(step.psum_out), w_reg.eq(self.w)]
        return m


class _IntParams:
    def _setup(self, bits, w_bits, acc_bits):
        self._bits = check_int("bits", bits, 2, model.MAX_BITS)
        self._w_bits = check_int("w_bits", w_bits, 2, model.MAX_BITS)
        self._acc_bits = check_int("acc_bits", acc_bits,
                                   model.min_acc_bits(self._bits, self._w_bits, 0), MAX_ACC_BITS)

    bits = property(lambda self: self._bits)
    w_bits = property(lambda self: self._w_bits)
    acc_bits = property(lambda self: self._acc_bits)

    def _contract(self, kind):
        return {
            "kind": kind,
            "code_format": f"int{self._bits}",
            "weight_format": f"int{self._w_bits}",
            "accumulator": f"int{self._acc_bits}, two's complement, wraps on overflow",
            "term": "value(code) * w",
            "rounding": "none (exact integer arithmetic)",
            "golden_model": "lowbit.models.overq.int_pe / int_pe_stream",
        }


class IntPeStep(wiring.Component, _IntParams):
    """Combinational plain b-bit PE step: ``psum_out = wrap(psum_in + value(code) * w)``.

    Parameters
    ----------
    bits : int
        Code width, 2..16.
    w_bits : int
        Weight width, 2..16.
    acc_bits : int
        Partial-sum width, ``bits + w_bits``..64.

    Members
    -------
    code : In(bits), w : In(signed(w_bits)), psum_in : In(signed(acc_bits)),
    psum_out : Out(signed(acc_bits))

    Latency 0; no rounding; overflow wraps.
    """

    is_sequential = False
    latency = 0

    def __init__(self, bits=4, w_bits=4, acc_bits=32):
        self._setup(bits, w_bits, acc_bits)
        super().__init__({
            "code": In(self.bits),
            "w": In(signed(self.w_bits)),
            "psum_in": In(signed(self.acc_bits)),
            "psum_out": Out(signed(self.acc_bits)),
        })

    def contract(self):
        return self._contract("plain integer WS PE step (combinational)")

    @property
    def port_docs(self):
        return {"code": f"int{self.bits} activation code", "w": f"int{self.w_bits} weight",
                "psum_in": f"int{self.acc_bits} partial sum in",
                "psum_out": f"int{self.acc_bits} partial sum out, wraps"}

    def elaborate(self, platform):
        m = Module()
        prod = Signal(signed(self.bits + self.w_bits), attrs=_KEEP)
        m.d.comb += [prod.eq(self.code.as_signed() * self.w),
                     self.psum_out.eq(self.psum_in + prod)]
        return m


class IntPe(wiring.Component, _IntParams):
    """Plain b-bit streaming PE with the same accumulator, ports and timing as :class:`OverqPe`.

    On each rising edge with ``valid``: ``acc <= (0 if first else acc) + value(code) * w``.
    Golden model: :func:`lowbit.models.overq.int_pe_stream`.  Latency 1; overflow wraps.

    Parameters
    ----------
    bits, w_bits, acc_bits
        As for :class:`IntPeStep`.

    Members
    -------
    code : In(bits), w : In(signed(w_bits)), first : In(1), valid : In(1),
    acc : Out(signed(acc_bits))
    """

    latency = 1

    def __init__(self, bits=4, w_bits=4, acc_bits=32):
        self._setup(bits, w_bits, acc_bits)
        super().__init__({
            "code": In(self.bits),
            "w": In(signed(self.w_bits)),
            "first": In(1),
            "valid": In(1),
            "acc": Out(signed(self.acc_bits)),
        })

    def contract(self):
        c = self._contract("plain integer PE (streaming MAC)")
        c["timing"] = "per valid cycle: acc <= (first ? 0 : acc) + value(code) * w; latency 1"
        c.update(_stream_contract(
            {"code": formats.int_format(self.bits), "weight": formats.int_format(self.w_bits),
             "acc": formats.int_format(self.acc_bits)},
            {"code": lanes("code", 1, self.bits), "w": lanes("weight", 1, self.w_bits, True),
             "acc": lanes("acc", 1, self.acc_bits, True)},
            "the accumulator",
            golden("lowbit.models.overq.int_pe_stream",
                   "acc after each cycle (signed values; the acc port carries them in two's "
                   "complement one cycle later)",
                   bits=self.bits, w_bits=self.w_bits, acc_bits=self.acc_bits)))
        return c

    @property
    def port_docs(self):
        return {"code": f"int{self.bits} activation code", "w": f"int{self.w_bits} weight",
                "first": "1: this element starts a new dot product",
                "valid": "1: the inputs of this cycle are an element; 0: accumulator holds",
                "acc": f"int{self.acc_bits} accumulator, wraps; updated one cycle after each "
                       "valid element"}

    def elaborate(self, platform):
        m = Module()
        m.submodules.step = step = IntPeStep(self.bits, self.w_bits, self.acc_bits)
        m.d.comb += [step.code.eq(self.code), step.w.eq(self.w),
                     step.psum_in.eq(Mux(self.first, 0, self.acc))]
        with m.If(self.valid):
            m.d.sync += self.acc.eq(step.psum_out)
        return m


# -- catalogue ------------------------------------------------------------------------------

_COMMON = (
    Param("bits", "--bits", "int", 4, "activation code width b (int<b>), 2..16"),
    Param("w_bits", "--w-bits", "int", 4, "weight width (signed), 2..16"),
    Param("acc_bits", "--acc-bits", "int", 32, "accumulator width (two's complement, wraps), up to 64"),
)
_OVERQ = _COMMON + (
    Param("cascade", "--cascade", "int", 1, "encoder cascade depth 0..16 (0 and no precision: 1 meta bit)"),
    Param("precision", "--precision", "bool", True, "support precision overwrite (F = b fraction bits)"),
    Param("shift_at", "--shift-at", "choice", "product",
          "apply the OverQ shifts to the product (least logic) or to the operands (DSP-friendly)",
          SHIFT_AT),
)


UNITS = [
    Unit("overq-pe", OverqPe, _OVERQ,
         "OverQ outlier PE: b-bit codes + metadata, range/precision overwrite, streaming MAC"),
    Unit("int-pe", IntPe, _COMMON,
         "plain b-bit integer PE with the OverQ PE's accumulator (area baseline)"),
]
