"""Area and energy of a systolic array from synthesis of lowbit's own PE (issue 7 section 2).

:class:`SynthCostModel` implements the :class:`lowbit.sim.systolic.CostModel` protocol, so
``simulate_topology(layers, cfg, cost_model=SynthCostModel())`` reports energy per layer and
the array's area next to the cycle counts (``lowbit simulate --cost``).

Model
-----
Array area (um^2)::

    area = rows * cols * A_PE  +  edge_bits * (DFF + MUX2) * 0.798
           +  sum over ifmap/filter/ofmap of sram_area_um2(KiB * 1024)

* ``A_PE`` = ``area_ge * 0.798 um^2`` (1 GE = one Nangate 45 nm NAND2_X1,
  :data:`lowbit.fpga.synth.GE_UM2`) of **one processing element as the systolic RTL builds it**
  (:class:`lowbit.hdl.systolic.SystolicArray`): the PE's combinational MAC step
  (:class:`~lowbit.hdl.int_mac.IntMacStep`, :class:`~lowbit.hdl.fp_mac.FpMacStep` or
  :class:`~lowbit.hdl.overq_pe.OverqStep`) plus the registers the array gives every PE, all
  behind the array's global enable, generated here as a small Amaranth component
  (:class:`SystolicPE`) and run through the generic synthesis flow
  (:func:`lowbit.fpga.synth.synth`, Yosys + ABC to a Nangate-45-like gate set, cached on
  disk). Per dataflow (as in ``hdl/systolic.py``'s ``elaborate``):

  - WS / IS: forward register of the streamed operand (+ its valid and fold-start bits), the
    stationary weight register (loaded on load beats), the partial-sum register with its
    valid/last bits and the hold multiplexer (``psum <- valid ? step : psum_in``). IS is the
    WS hardware with the operand formats swapped.
  - OS: forward registers of both operands (+ valid/start bits), the accumulator with its
    restart multiplexer, and the drain register of the output shift chain (and, for the
    OverQ PE, the previous-weight register).

  Plus the array's **edge registers**, which are not in any PE: the input skew (row ``i``
  delays its streamed operand, valid and fold-start bits by ``i`` registers), WS/IS: the
  partial-sum skew (column ``j``: ``j`` registers of psum + valid + last) and the output
  de-skew (``C - 1 - j`` accumulator registers), OS: the filter skew (``j`` registers); minus
  the registers a boundary PE does not have (last column: no forward register; OS: last row
  no filter forward, row 0 no drain register). :func:`edge_register_bits` counts them from
  the RTL's structure; each bit costs a flip-flop plus its enable multiplexer (DFF + MUX2 =
  8 GE, the array's registers all sit behind its global enable). Measured check, generic
  synthesis of the whole generated ``systolic`` unit vs this model
  (``benchmarks/cost_resnet18.py --check-array``; model/measured): INT8 WS 2x2 1.005, 4x4
  1.007, 8x8 1.010 (100,419 GE measured); INT8 OS 4x4 1.012; INT8 IS 4x2 1.013; E4M3/FP16
  WS 4x4 1.006; OverQ-4 WS 4x4 1.022, OS 4x4 1.004; E4M3 Kulisch (with the 4 read-outs) WS
  4x4 1.004, OS 4x4 1.030. The edges are 19 % of the PE area at
  8x8 and 22 % at 32x32 (INT8 WS, model). The fold controller (a counter) is not counted
  separately. ``edges=False`` leaves the edges out (the issue's "PEs + buffers").
* SRAM: :func:`lowbit.fpga.energy.sram_area_um2` of each operand SRAM's full capacity
  (both halves of the double buffer), 6T cell of CACTI (146 F^2) with a capacity-dependent
  array efficiency; see the notes in :mod:`lowbit.fpga.energy`.

Layer energy (pJ): the simulator reports counts per event class
(:data:`lowbit.sim.systolic.EVENT_CLASSES`) and this model multiplies each by a unit energy
(:meth:`SynthCostModel.unit_energy_pj`)::

    E = macs * E_MAC + sum_op sram_accesses_op * E_SRAM(op) + sum_op dram_words_op * E_DRAM

* ``E_MAC`` = :func:`lowbit.fpga.energy.energy_per_op_pj` of the synthesised PE (gate-count
  model calibrated to Horowitz's 45 nm integer add/multiply energies; one PE clock with
  random operands, registers included).
* ``E_SRAM(op)`` = :func:`lowbit.fpga.energy.sram_access_pj` of one half of that operand's
  SRAM (the double buffer's active half, ``KiB * 512`` bytes), for an access of one word
  (``8 * word_bytes`` bits; linear in the width, i.e. the R or C words the array reads per
  cycle are one wide access). Reads and writes cost the same (Horowitz gives reads).
  ``ofmap_word="acc"`` charges ofmap accesses (partial sums) at the PE's accumulator width
  instead of the simulator's word width.
* ``E_DRAM`` = :func:`lowbit.fpga.energy.dram_access_pj` of one word (20 pJ/bit).
* ``pe_cycle`` and ``cycle`` events cost 0: no clock-tree, leakage or idle-PE energy is
  modelled (``E_MAC`` covers the active PE clock). This underestimates layers with low
  utilisation.

Scaling: ``node_scale`` multiplies logic and SRAM energies (1 at 45 nm), ``vdd`` rescales
them by ``(vdd / 0.9 V)^2``; DRAM energy is an interface figure and is not scaled.
``area_scale`` multiplies PE and SRAM areas (1 at 45 nm; e.g. ``(F / 45 nm)^2``).

PE names
--------
:func:`parse_pe` reads :attr:`ArrayConfig.pe <lowbit.sim.systolic.ArrayConfig>`:

* integer: ``int8``, ``uint8``, ``int4``, ``int8xint4``, with ``_acc<N>`` (default 32) and
  ``_wrap``/``_saturate`` (default wrap); also :class:`~lowbit.sim.systolic.IntPE` names
  (``int8xint8_acc32_wrap``);
* floating point: ``<a>[x<b>]_<acc>[acc][_fused|_two_roundings]`` with ``<acc>`` one of
  ``fp32``, ``fp16``, ``bf16`` (``e4m3_fp32``, ``e5m2_fp16``, ``fp8_fp32acc`` where ``fp8``
  means ``e4m3``); also :class:`~lowbit.sim.systolic.FpMacPE` and
  :class:`~lowbit.sim.systolic.Fp32AccPE` names (``e4m3xe4m3_fp32_fused``,
  ``e4m3xe4m3_fp32acc``);
* Kulisch (exact fixed-point accumulator, read out once to ``<acc>``):
  ``<a>[x<b>]_kulisch[<width>][_<acc>][_t<terms>]`` or ``<a>[x<b>]_<acc>_kulisch[<width>]``
  (the :class:`~lowbit.sim.systolic.KulischPE` name, e.g. ``e4m3xe4m3_fp32_kulisch49``);
  default FP32 read-out and 4096 terms; a width fixes the register (``terms`` = the largest
  count of products that width sums exactly);
* OverQ: ``overq<b>[_w<n>][_acc<N>]`` (default ``w = b``, 32-bit accumulator).

:func:`pe_name` gives the name for a :class:`~lowbit.sim.systolic.PEDatapath` object, so the
PE used for numerics (``gemm_numerics``) and the PE that is costed are the same.

Kulisch PE: the array carries the exact state (``width + 4`` bits) in the psum, accumulator,
skew, de-skew and drain registers, and rounds it once per column at the bottom edge
(:class:`lowbit.hdl.fp_mac.KulischRead`, combinational). Those ``cols`` read-out units are
synthesised too and added to the area; their energy (:func:`lowbit.fpga.energy.energy_per_op_pj`
of one read-out) is charged once per ofmap SRAM write (each result word leaving the array
passes one read-out).
"""

import dataclasses
import math
import re

from amaranth.hdl import EnableInserter, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.models import formats
from lowbit.hdl.systolic import connect_acc

from . import energy as _energy
from . import synth as _synth

__all__ = ["PESpec", "parse_pe", "pe_name", "SystolicPE", "pe_verilog", "readout_verilog",
           "edge_register_bits",
           "REG_BIT_GE", "PECost", "SynthCostModel"]

OFMAP_WORDS = ("operand", "acc")


# ---------------------------------------------------------------------------------------
# PE names


@dataclasses.dataclass(frozen=True)
class PESpec:
    """A processing element as the systolic RTL supports it.

    ``kind`` is ``"int"``, ``"fp"`` or ``"overq"``; ``a``/``b`` are format names (ifmap,
    filter); int: ``acc_bits``, ``overflow``; fp: ``acc``, ``mode`` (``"fused"``,
    ``"two_roundings"``, ``"kulisch"``), ``terms`` (Kulisch: products summed exactly;
    canonical, the largest count for the register width); overq: ``bits``, ``w_bits``,
    ``acc_bits``.
    """
    kind: str
    a: str
    b: str
    acc_bits: int = 32
    overflow: str = "wrap"
    acc: str = ""
    mode: str = "fused"
    bits: int = 0
    w_bits: int = 0
    terms: int = 0

    @property
    def kulisch(self):
        return self.kind == "fp" and self.mode == "kulisch"

    @property
    def kulisch_width(self):
        """Width of the Kulisch fixed-point register (flags excluded)."""
        from lowbit.models.mac import kulisch_width
        return kulisch_width(self.a, self.b, self.terms)[0]

    @property
    def acc_width(self):
        """Accumulator (psum lane) width in bits; Kulisch: the packed state, width + 4."""
        if self.kulisch:
            return self.kulisch_width + 4
        return formats.get(self.acc).bits if self.kind == "fp" else self.acc_bits

    @property
    def key(self):
        """Canonical name (parses back to the same spec)."""
        if self.kind == "int":
            return f"{self.a}x{self.b}_acc{self.acc_bits}_{self.overflow}"
        if self.kulisch:
            return f"{self.a}x{self.b}_{self.acc}_kulisch{self.kulisch_width}"
        if self.kind == "fp":
            return f"{self.a}x{self.b}_{self.acc}_{self.mode}"
        return f"overq{self.bits}_w{self.w_bits}_acc{self.acc_bits}"


_PE_FORMS = ("int8, uint8, int4, int8xint4 [_acc<N>] [_wrap|_saturate]; "
             "<fp>[x<fp>]_<fp32|fp16|bf16>[acc][_fused|_two_roundings] (e4m3_fp32, fp8_fp32acc); "
             "<fp>[x<fp>]_kulisch[<width>][_<acc>][_t<terms>]; overq<b>[_w<n>][_acc<N>]")

_INT_RE = re.compile(r"(u?int\d+)(?:x(u?int\d+))?(?:_acc(\d+))?(?:_(wrap|saturate))?")
_FP_RE = re.compile(r"([a-z][a-z0-9]*?)(?:x([a-z][a-z0-9]*?))?_(fp32|fp16|bf16)(acc)?"
                    r"(?:_(fused|two_roundings))?")
_OVERQ_RE = re.compile(r"overq(\d+)(?:_w(\d+))?(?:_acc(\d+))?")
_KUL_RE = re.compile(r"([a-z][a-z0-9]*?)(?:x([a-z][a-z0-9]*?))?_kulisch(\d*)(?:_(fp32|fp16|bf16))?"
                     r"(?:_t(\d+))?")
_KUL2_RE = re.compile(r"([a-z][a-z0-9]*?)(?:x([a-z][a-z0-9]*?))?_(fp32|fp16|bf16)_kulisch(\d*)"
                      r"(?:_t(\d+))?")


def _bad(name, why=""):
    return ValueError(f"pe must be one of the forms {_PE_FORMS}, not {name!r}{why}")


def _fmt(name, kind, pe_name):
    try:
        f = formats.get(name)
    except (ValueError, KeyError):
        raise _bad(pe_name, f" (unknown format {name!r})") from None
    if kind == "int" and type(f).__name__ != "IntFormat":
        raise _bad(pe_name, f" ({name!r} is not an integer format)")
    if kind == "fp" and (type(f).__name__ != "FloatFormat" or f.bits > 16):
        raise _bad(pe_name, f" ({name!r} is not a float format of at most 16 bits)")
    return f.name


def parse_pe(name):
    """The :class:`PESpec` of a PE name (see the module docstring for the forms).

    Raises
    ------
    ValueError
        An unknown form or format; the message lists the accepted forms.
    """
    if not isinstance(name, str):
        raise _bad(name)
    s = name.strip().lower()
    m = _INT_RE.fullmatch(s)
    if m:
        a = _fmt(m[1], "int", name)
        b = _fmt(m[2] or m[1], "int", name)
        acc = int(m[3] or 32)
        if not 2 <= acc <= 64:
            raise _bad(name, f" (accumulator width must be 2..64, not {acc})")
        return PESpec("int", a, b, acc_bits=acc, overflow=m[4] or "wrap")
    m = _OVERQ_RE.fullmatch(s)
    if m:
        bits = int(m[1])
        w = int(m[2] or bits)
        acc = int(m[3] or 32)
        if not (2 <= bits <= 16 and 2 <= w <= 16 and 2 <= acc <= 64):
            raise _bad(name, " (OverQ: b and w 2..16, accumulator 2..64)")
        return PESpec("overq", f"int{bits}", f"int{w}", acc_bits=acc, bits=bits, w_bits=w)
    m = _KUL_RE.fullmatch(s)
    k = None if m else _KUL2_RE.fullmatch(s)
    if m or k:
        a_s, b_s, width, acc, terms = ((m[1], m[2], m[3], m[4], m[5]) if m else
                                       (k[1], k[2], k[4], k[3], k[5]))
        return _kulisch_spec(name, a_s, b_s, width, acc or "fp32", terms)
    m = _FP_RE.fullmatch(s)
    if m:
        a_name = "e4m3" if m[1] == "fp8" else m[1]
        b_name = "e4m3" if m[2] == "fp8" else (m[2] or a_name)
        a = _fmt(a_name, "fp", name)
        b = _fmt(b_name, "fp", name)
        return PESpec("fp", a, b, acc=m[3], mode=m[5] or "fused")
    raise _bad(name)


def _kulisch_spec(name, a_s, b_s, width, acc, terms):
    from lowbit.models.mac import kulisch_width
    a_name = "e4m3" if a_s == "fp8" else a_s
    b_name = "e4m3" if b_s == "fp8" else (b_s or a_name)
    a = _fmt(a_name, "fp", name)
    b = _fmt(b_name, "fp", name)
    base = kulisch_width(a, b, 1)[0]              # width for one product
    if width and terms:
        raise _bad(name, " (give the Kulisch width or the terms, not both)")
    if width:
        w = int(width)
        if not base <= w <= base + 32:
            raise _bad(name, f" (Kulisch width for {a}x{b} must be {base}..{base + 32}, not {w})")
    else:
        t = int(terms or 4096)
        if not 1 <= t <= 1 << 32:
            raise _bad(name, f" (terms must be 1..{1 << 32}, not {t})")
        w = kulisch_width(a, b, t)[0]
    return PESpec("fp", a, b, acc=acc, mode="kulisch", terms=1 << (w - base))


def pe_name(datapath):
    """PE name of a :class:`lowbit.sim.systolic.PEDatapath` object (IntPE, FpMacPE,
    Fp32AccPE), for :attr:`ArrayConfig.pe`; a string is checked and returned.

    FpMacPE/KulischPE with ``flush_subnormals`` or ``saturate`` has no PE name here (the cost
    model synthesises the default FP PE), so it raises ValueError.
    """
    if isinstance(datapath, str):
        parse_pe(datapath)
        return datapath
    cls = type(datapath).__name__
    if cls == "IntPE":
        return f"{datapath.a_format.name}x{datapath.b_format.name}_acc{datapath.acc_bits}_{datapath.overflow}"
    if cls == "FpMacPE":
        if datapath.flush_subnormals or datapath.saturate:
            raise ValueError("pe: FpMacPE with flush_subnormals or saturate has no cost-model PE name")
        return f"{datapath.a_format.name}x{datapath.b_format.name}_{datapath.acc_format.name}_{datapath.mode}"
    if cls == "KulischPE":
        if datapath.flush_subnormals or datapath.saturate:
            raise ValueError("pe: KulischPE with flush_subnormals or saturate has no cost-model PE name")
        return (f"{datapath.a_format.name}x{datapath.b_format.name}_{datapath.acc_format.name}"
                f"_kulisch{datapath.width}")
    if cls == "Fp32AccPE":
        # same sums as FpMacPE(..., "fp32", "fused") (checked in tests/test_systolic_sim.py)
        return f"{datapath.a_format.name}x{datapath.b_format.name}_fp32_fused"
    raise ValueError(f"pe must be an IntPE, FpMacPE, KulischPE, Fp32AccPE or a PE name, "
                     f"not {datapath!r}")


# ---------------------------------------------------------------------------------------
# one PE of the systolic array, for synthesis


def _step(spec, dataflow):
    """(step component, streamed width, stationary width) as SystolicArray builds them."""
    if spec.kind == "overq":
        from lowbit.hdl.overq_pe import OverqStep
        s = OverqStep(spec.bits, spec.w_bits, spec.acc_bits, 1, True, "product")
        return s, spec.bits + s.meta_bits, spec.w_bits
    fa, fb = formats.get(spec.a), formats.get(spec.b)
    if dataflow == "is":                 # IS streams B's columns, A^T is stationary
        fa, fb = fb, fa
    if spec.kind == "int":
        from lowbit.hdl.int_mac import IntMacStep
        return IntMacStep(fa, fb, spec.acc_bits, spec.overflow), fa.bits, fb.bits
    if spec.kulisch:
        from lowbit.hdl.fp_mac import KulischStep
        return KulischStep(fa, fb, spec.terms, False), fa.bits, fb.bits
    from lowbit.hdl.fp_mac import FpMacStep
    return FpMacStep(fa, fb, formats.get(spec.acc), spec.mode, False, False), fa.bits, fb.bits


def _empty_sum(spec):
    if spec.kulisch:
        return 8 << spec.kulisch_width        # fixed 0, flag "every product so far -0"
    if spec.kind == "fp":
        return 1 << (spec.acc_width - 1)      # -0
    return 0


class SystolicPE(wiring.Component):
    """One processing element of :class:`lowbit.hdl.systolic.SystolicArray`, for costing.

    The PE's MAC step and the registers the array builds around it for one PE (see the
    module docstring), every register behind the ``run`` enable as in the array. Not a
    unit to build arrays from; its only use is synthesis (:meth:`SynthCostModel.pe_cost`).

    Parameters
    ----------
    spec : PESpec
    dataflow : {"ws", "os", "is"}

    Members
    -------
    run : In(1)                array enable (back-pressure).
    a, av, af : In             streamed operand from the left, its valid and fold-start bits.
    a_o, av_o, af_o : Out      the same, registered, to the right neighbour.
    WS/IS: w_i : In, load : In(1), w_o : Out   stationary weight chain (w_i also feeds the
        OverQ step's ``w_prev``); ps, pv, pl : In / ps_o, pv_o, pl_o : Out   partial sum
        from above (with valid, last) and the registered sum to the PE below.
    OS: b, b_o          filter operand from above / to below; copy : In(1), acc_up,
        drain_up : In   drain control and the accumulator/drain register of the PE above;
        acc_o, drain_o : Out.

    Latency: one cycle from every input to its registered output.
    """

    def __init__(self, spec, dataflow="ws"):
        if not isinstance(spec, PESpec):
            raise TypeError(f"spec must be a PESpec, not {spec!r}")
        if dataflow not in ("ws", "os", "is"):
            raise ValueError(f"dataflow must be one of ws, os, is, not {dataflow!r}")
        if dataflow == "is" and spec.kind == "overq":
            raise ValueError("dataflow 'is' is not available with an OverQ PE")
        self._spec, self._df = spec, dataflow
        self._step, aw, bw = _step(spec, dataflow)
        self._aw, self._bw, self._w = aw, bw, spec.acc_width
        ports = {"run": In(1), "a": In(aw), "av": In(1), "af": In(1),
                 "a_o": Out(aw), "av_o": Out(1), "af_o": Out(1)}
        W = self._w
        if dataflow == "os":
            ports.update({"b": In(bw), "b_o": Out(bw), "copy": In(1), "acc_up": In(W),
                          "drain_up": In(W), "acc_o": Out(W), "drain_o": Out(W)})
        else:
            ports.update({"w_i": In(bw), "load": In(1), "w_o": Out(bw), "ps": In(W), "pv": In(1),
                          "pl": In(1), "ps_o": Out(W), "pv_o": Out(1), "pl_o": Out(1)})
        super().__init__(ports)

    latency = 1

    def elaborate(self, platform):
        m = Module()
        core = Module()
        spec = self._spec
        s = self._step
        core.submodules.step = s
        overq = spec.kind == "overq"
        for src, dst in ((self.a, self.a_o), (self.av, self.av_o), (self.af, self.af_o)):
            r = Signal.like(dst)
            core.d.sync += r.eq(src)
            m.d.comb += dst.eq(r)
        if overq:
            core.d.comb += [s.code.eq(self.a[:spec.bits]), s.meta.eq(self.a[spec.bits:])]
        else:
            core.d.comb += s.a.eq(self.a)
        if self._df == "os":
            init = _empty_sum(spec)
            acc = Signal(self._w, init=init)
            rb = Signal(self._bw)
            core.d.sync += rb.eq(self.b)
            if overq:
                bp = Signal(self._bw)
                core.d.comb += [s.w.eq(self.b), s.w_prev.eq(Mux(self.af, 0, bp)),
                                s.psum_in.eq(Mux(self.af, 0, acc))]
                with core.If(self.av):
                    core.d.sync += [acc.eq(s.psum_out), bp.eq(self.b)]
            else:
                core.d.comb += s.b.eq(self.b)
                out = connect_acc(core, s, Mux(self.af, init, acc))
                with core.If(self.av):
                    core.d.sync += acc.eq(out)
            d = Signal(self._w)
            core.d.sync += d.eq(Mux(self.copy, self.acc_up, self.drain_up))
            m.d.comb += [self.b_o.eq(rb), self.acc_o.eq(acc), self.drain_o.eq(d)]
        else:
            w = Signal(self._bw)
            with core.If(self.load):
                core.d.sync += w.eq(self.w_i)
            if overq:
                core.d.comb += [s.w.eq(w), s.w_prev.eq(self.w_i), s.psum_in.eq(self.ps)]
                out = s.psum_out
            else:
                core.d.comb += s.b.eq(w)
                out = connect_acc(core, s, self.ps)
            rp, rv, rl = Signal(self._w), Signal(), Signal()
            core.d.sync += [rp.eq(Mux(self.av, out, self.ps)), rv.eq(self.pv), rl.eq(self.pl)]
            m.d.comb += [self.w_o.eq(w), self.ps_o.eq(rp), self.pv_o.eq(rv), self.pl_o.eq(rl)]
        m.submodules.core = EnableInserter({"sync": self.run})(core)
        return m


def readout_verilog(spec):
    """``(top, verilog)`` of the Kulisch column read-out (:class:`lowbit.hdl.fp_mac.KulischRead`)."""
    from lowbit.hdl.fp_mac import KulischRead
    from lowbit.hdl.manifest import to_verilog
    if not spec.kulisch:
        raise ValueError(f"spec must be a Kulisch PE, not {spec.key!r}")
    top = "lowbit_kread_" + re.sub(r"[^a-z0-9_]", "_", spec.key)
    return top, to_verilog(KulischRead(spec.a, spec.b, spec.acc, spec.terms, False, False), top)


def pe_verilog(spec, dataflow):
    """``(top, verilog)`` of :class:`SystolicPE` for ``spec`` and ``dataflow``."""
    from lowbit.hdl.manifest import to_verilog
    top = "lowbit_pe_" + re.sub(r"[^a-z0-9_]", "_", f"{spec.key}_{dataflow}")
    return top, to_verilog(SystolicPE(spec, dataflow), top)


def _widths(spec, dataflow):
    """(streamed operand width, stationary/filter operand width, accumulator width)."""
    if spec.kind == "overq":
        from lowbit.models.overq import OverqConfig
        return spec.bits + OverqConfig(spec.bits, 1, True).meta_bits, spec.w_bits, spec.acc_bits
    a, b = formats.get(spec.a).bits, formats.get(spec.b).bits
    if dataflow == "is":
        a, b = b, a
    return a, b, spec.acc_width


def edge_register_bits(spec, rows, cols, dataflow):
    """Register bits of an ``rows x cols`` array outside ``rows * cols`` :class:`SystolicPE`
    (skew and de-skew registers, minus the boundary PEs' missing registers; see the module
    docstring). May be negative for a 1-wide array."""
    R, C = rows, cols
    aw, bw, W = _widths(spec, dataflow)
    tri_r, tri_c = R * (R - 1) // 2, C * (C - 1) // 2
    bits = tri_r * (aw + 2) - R * (aw + 2)            # input skew; last column: no a forward
    if dataflow == "os":
        bits += tri_c * bw - C * bw - C * W          # filter skew; last row: no b forward; row 0: no drain
    else:
        bits += tri_c * (W + 2) + tri_c * W          # psum skew (+ valid, last); output de-skew
        if spec.kind == "overq":
            bits += C * bw                           # w_prev registers above row 0
    return bits


#: Area of one register bit behind an enable, in GE: DFF + MUX2 of the generic cell set.
REG_BIT_GE = _synth.cell_ge("DFF") + _synth.cell_ge("MUX2")


# ---------------------------------------------------------------------------------------
# the cost model


@dataclasses.dataclass(frozen=True)
class PECost:
    """Cost of one PE: ``area_ge`` (NAND2 equivalents), ``area_um2`` (scaled), ``e_mac_pj``
    (energy of one MAC), ``source`` ("synth" or "given") and, when synthesised,
    ``flip_flops``, ``logic_depth`` and the Verilog module name ``top``. Kulisch PE:
    ``readout_ge`` / ``e_readout_pj`` of the column read-out unit (0 otherwise)."""
    spec: PESpec
    dataflow: str
    area_ge: float
    area_um2: float
    e_mac_pj: float
    source: str
    flip_flops: object = None
    logic_depth: object = None
    top: str = ""
    readout_ge: float = 0.0
    e_readout_pj: float = 0.0


def _pos(name, v, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not v > 0:
        raise ValueError(f"{name} must be a positive finite number, not {v!r}")
    if lo is not None and not lo <= v <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, not {v!r}")
    return float(v)


class SynthCostModel:
    """Area and energy of a systolic array from synthesis of its PE (module docstring).

    Parameters
    ----------
    node_scale : float
        Energy factor for logic and SRAM (> 0; 1 = 45 nm).
    vdd : float
        Supply voltage, 0.3..1.5 V; logic and SRAM energies scale by ``(vdd / 0.9)^2``.
    area_scale : float
        Area factor for PEs and SRAM (> 0; 1 = 45 nm).
    ofmap_word : {"operand", "acc"}
        Width of an ofmap SRAM/DRAM access: the simulator's word (``8 * word_bytes`` bits)
        or the PE's accumulator width (partial sums).
    pe_area_ge : float, optional
        Use this PE area (GE) instead of synthesising (e.g. a figure from a previous run).
    edges : bool
        Count the array's edge registers (:func:`edge_register_bits`) in the area.
    use_cache : bool
        Use the synthesis cache.

    The PE cost is computed once per (PE, dataflow) and kept. Bad values raise ValueError
    naming the parameter.
    """

    name = "synth45"

    def __init__(self, node_scale=1.0, vdd=0.9, area_scale=1.0, ofmap_word="operand",
                 pe_area_ge=None, edges=True, use_cache=True):
        self.node_scale = _pos("node_scale", node_scale)
        self.vdd = _pos("vdd", vdd, 0.3, 1.5)
        self.area_scale = _pos("area_scale", area_scale)
        if ofmap_word not in OFMAP_WORDS:
            raise ValueError(f"ofmap_word must be one of {', '.join(OFMAP_WORDS)}, not {ofmap_word!r}")
        self.ofmap_word = ofmap_word
        self.pe_area_ge = None if pe_area_ge is None else _pos("pe_area_ge", pe_area_ge)
        self.edges = bool(edges)
        self.use_cache = bool(use_cache)
        self._pe = {}

    @property
    def v2(self):
        """``(vdd / 0.9 V)^2``."""
        return (self.vdd / 0.9) ** 2

    def pe_cost(self, cfg):
        """:class:`PECost` of the PE named by ``cfg.pe`` in ``cfg.dataflow``."""
        spec = parse_pe(cfg.pe)
        key = (spec, cfg.dataflow)
        if key not in self._pe:
            flip_flops = depth = None
            top = ""
            if self.pe_area_ge is not None:
                ge, source = self.pe_area_ge, "given"
            else:
                top, text = pe_verilog(spec, cfg.dataflow)
                r = _synth.synth(text, top, "generic", use_cache=self.use_cache)
                ge, source = r.area_ge, "synth"
                flip_flops, depth = r.flip_flops, r.logic_depth
            e = _energy.energy_per_op_pj(ge, node_scale=self.node_scale, vdd=self.vdd)
            rd = e_rd = 0.0
            if spec.kulisch:
                rtop, rtext = readout_verilog(spec)
                rd = _synth.synth(rtext, rtop, "generic", use_cache=self.use_cache).area_ge
                e_rd = _energy.energy_per_op_pj(rd, node_scale=self.node_scale, vdd=self.vdd)
            self._pe[key] = PECost(spec, cfg.dataflow, ge, ge * _synth.GE_UM2 * self.area_scale, e,
                                   source, flip_flops, depth, top, rd, e_rd)
        return self._pe[key]

    def _word_bits(self, cfg, operand):
        if operand == "ofmap" and self.ofmap_word == "acc":
            return parse_pe(cfg.pe).acc_width
        return 8 * cfg.word_bytes

    def sram_access_pj(self, cfg, operand):
        """Energy of one word access to the active half of ``operand``'s SRAM."""
        kib = getattr(cfg, f"{operand}_sram_kib")
        return (_energy.sram_access_pj(kib * 512, bits=self._word_bits(cfg, operand),
                                       node_scale=self.node_scale) * self.v2)

    def dram_access_pj(self, cfg, operand):
        """Energy of one DRAM word of ``operand``."""
        return _energy.dram_access_pj(bits=self._word_bits(cfg, operand))

    def unit_energy_pj(self, cfg):
        """pJ per count of every simulator event class (``mac``, ``sram_read_ifmap``, ...)."""
        u = {"mac": self.pe_cost(cfg).e_mac_pj, "pe_cycle": 0.0, "cycle": 0.0}
        for op in ("ifmap", "filter", "ofmap"):
            u[f"sram_read_{op}"] = self.sram_access_pj(cfg, op)
            u[f"dram_read_{op}"] = self.dram_access_pj(cfg, op)
        # Kulisch: every result word leaving the array passes its column's read-out once
        u["sram_write_ofmap"] = u["sram_read_ofmap"] + self.pe_cost(cfg).e_readout_pj
        u["dram_write_ofmap"] = u["dram_read_ofmap"]
        return u

    def energy_pj(self, event, count, cfg):
        """``count`` events of class ``event`` in pJ (None for an event class it does not know)."""
        u = self.unit_energy_pj(cfg).get(event)
        return None if u is None else float(count) * u

    def area_breakdown_um2(self, cfg):
        """``{"n_pe", "pe", "pes", "edge_bits", "edges", "readout", "sram_ifmap", "sram_filter",
        "sram_ofmap", "sram", "total"}`` in um^2 (``n_pe``, ``edge_bits`` counts; ``readout``:
        the Kulisch PE's ``cols`` column read-out units, else 0)."""
        pc = self.pe_cost(cfg)
        n = cfg.rows * cfg.cols
        eb = edge_register_bits(pc.spec, cfg.rows, cfg.cols, cfg.dataflow) if self.edges else 0
        out = {"n_pe": n, "pe": pc.area_um2, "pes": n * pc.area_um2, "edge_bits": eb,
               "edges": eb * REG_BIT_GE * _synth.GE_UM2 * self.area_scale,
               "readout": cfg.cols * pc.readout_ge * _synth.GE_UM2 * self.area_scale}
        for op in ("ifmap", "filter", "ofmap"):
            out[f"sram_{op}"] = _energy.sram_area_um2(getattr(cfg, f"{op}_sram_kib") * 1024,
                                                      node_scale_area=self.area_scale)
        out["sram"] = out["sram_ifmap"] + out["sram_filter"] + out["sram_ofmap"]
        out["total"] = out["pes"] + out["edges"] + out["readout"] + out["sram"]
        return out

    def area_um2(self, cfg):
        """Array area in um^2: PEs + edge registers (+ Kulisch read-outs) + the three SRAMs."""
        return self.area_breakdown_um2(cfg)["total"]

    def describe(self, cfg):
        """JSON-ready summary: PE, unit energies, area breakdown, scaling options."""
        pc = self.pe_cost(cfg)
        return {"model": self.name, "pe": pc.spec.key, "pe_source": pc.source,
                "pe_area_ge": pc.area_ge, "pe_area_um2": pc.area_um2, "pe_flip_flops": pc.flip_flops,
                "pe_logic_depth": pc.logic_depth, "e_mac_pj": pc.e_mac_pj,
                "readout_area_ge": pc.readout_ge, "e_readout_pj": pc.e_readout_pj,
                "unit_energy_pj": self.unit_energy_pj(cfg),
                "area_um2": self.area_breakdown_um2(cfg), "node_scale": self.node_scale,
                "vdd": self.vdd, "area_scale": self.area_scale, "ofmap_word": self.ofmap_word,
                "edges": self.edges}
