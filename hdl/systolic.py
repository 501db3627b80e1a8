"""Systolic GEMM array (Amaranth 0.5): ``SystolicArray``, weight- or output-stationary.

The array follows, cycle for cycle, the schedule of the golden model
(:class:`lowbit.models.systolic.Schedule`, module docstring "Timing model"; the mapping is
SCALE-Sim v3's, ``scalesim/compute/systolic_compute_{os,ws}.py``), which the behavioural
simulator (:mod:`lowbit.sim.systolic`) counts, so that its cycle counts are the simulator's
figures and the co-simulation can check them.

The array is ``R x C`` instances of one :class:`SystolicPE`: the PE's combinational MAC step
and the registers the array gives every PE (operand forward registers, the stationary weight
or the accumulator, the partial-sum or drain register), all behind the array's enable. The
same component, synthesised alone, is what the cost model prices
(:mod:`lowbit.sim.cost_model`). The PE is described by a
:class:`lowbit.models.systolic.PESpec`, from which the golden numerics come too.

Processing elements (one combinational step per PE, from the MAC units of :mod:`lowbit.hdl`):

* ``pe="int"``: :class:`lowbit.hdl.int_mac.IntMacStep` (INTn/UINTn operands, exact product,
  signed ``acc_bits`` accumulator, wrap or saturate);
* ``pe="fp"``: :class:`lowbit.hdl.fp_mac.FpMacStep` (FP8/FP6/FP4... operands, exact product,
  ``acc_format`` accumulator rounded to nearest even, ``fused`` or ``two_roundings``, optional
  subnormal flush and saturation), or with ``mode="kulisch"``
  :class:`lowbit.hdl.fp_mac.KulischStep` (see "Kulisch accumulator" below);
* ``pe="overq"``: :class:`lowbit.hdl.overq_pe.OverqStep` (OverQ b-bit codes with metadata on the
  ``a`` lanes as ``code | meta << b``, signed ``w_bits`` weights, wrapping accumulator). Its
  ``w_prev`` (the weight of slot ``k - 1``, 0 for ``k = 0``) is, in WS, the weight of the PE
  above, and for PE row 0 a per-column register loaded by the ``wprev`` field of the load beats
  (``B[k0 - 1, :]``, 0 for the first K-fold); in OS, the weight of the PE's previous MAC
  (0 on the first MAC of a fold). Golden: :func:`lowbit.models.overq.overq_matmul`.

Dataflows (GEMM ``C[M, N] = A[M, K] @ B[K, N]``; ``R x C`` array; a *fold* is one tile):

``ws`` (weight-stationary)
    A fold is ``R`` preload beats (``load=1``; the weight tile ``B[k0:k0+R, n0:n0+C]`` enters
    the top edge one row per beat, **last tile row first**, every PE row shifting its weight
    down, so after ``R`` beats PE row ``i`` holds tile row ``i``), then ``T`` data beats
    (``load=0``): beat ``t`` carries ``A[m_t, k0:k0+R]`` on the ``a`` lanes (lane ``i`` feeds
    array row ``i`` through ``i`` skew registers and moves one PE right per cycle) and the
    partial sums to continue on the ``psum`` lanes (lane ``j`` enters the top of column ``j``
    through ``j`` skew registers; the previous K-fold's results, or the empty sum for the first
    K-fold: 0 for INT, ``-0`` for FP). Each PE does ``psum <- step(psum, a, w)`` and passes
    the sum down. Column ``j`` leaves the bottom ``j`` cycles after column 0 and is delayed by
    ``C - 1 - j`` de-skew registers, so result beat ``t`` holds the ``C`` sums of data beat
    ``t`` and appears ``R + C - 1`` cycles after that beat was accepted.
``os`` (output-stationary)
    A fold is ``T = K`` data beats: beat ``t`` carries ``A[m0:m0+R, t]`` on the ``a`` lanes
    (row ``i`` skewed by ``i``, moving right) and ``B[t, n0:n0+C]`` on the ``b`` lanes (column
    ``j`` skewed by ``j``, moving down); PE ``(i, j)`` does ``acc <- step(acc, a, b)``, the
    first beat of a fold restarting from the empty sum. ``R + C - 1`` cycles after the fold's
    last beat every accumulator is copied into its drain register (in the same cycle the next
    fold's first MAC may start) and the result rows leave as ``R`` result beats, array row
    ``R - 1`` first (in the copy cycle, straight from the accumulators) and row 0 last.

``is`` (input-stationary)
    The WS hardware with the operands' roles swapped (SCALE-Sim's IS mapping: ``Sr = K``,
    ``Sc = M``, ``T = N``): the preload beats carry tiles of ``A^T`` (the ifmap, stationary),
    the data beats stream the columns of ``B`` (``B[k0:k0+R, n]`` on the ``a`` lanes) and
    result beat ``t`` holds ``C[m0:m0+C, n_t]``. The multiplier's operands are swapped
    (``b * a``), which changes nothing: the product is exact and commutative. Not with the OverQ
    PE.

``last=1`` marks the last data beat of a fold. After accepting it the array lowers ``i.ready``
for ``R + C - 2`` cycles (the skew drain of the fold: the simulator's fold period
``P = preload + T + (R - 1) + (C - 1)``), which is what keeps the next fold's weights
(WS) or its accumulator restart (OS) from overtaking the data in flight. With a source that
always has the next beat and a sink that is always ready, fold ``f`` starts at cycle ``f * P``
(cycle 0: the first beat accepted), the last MAC is at ``folds * P - 1`` (the simulator's
``compute_cycles``) and the last result beat at ``compute_cycles + drain`` (``drain`` = 1 for
WS, ``R`` for OS: the simulator's ``latency``); :meth:`SystolicArray.gemm_cycles` returns
these figures. A beat that arrives later, or a sink that is not ready, stretches the schedule
without changing any result: result back-pressure stalls the whole array (one enable on every
register), and a missing input beat is a bubble that travels through the array.

Edge folds (``K``, ``N`` or ``M`` not multiples of the array size) keep the full-array timing;
the ``mask`` bit of an ``a`` lane marks the lane as data: a PE whose ``a`` lane is masked passes
its sum through unchanged (WS: the padded rows ``k >= K`` do not add ``+0`` to a ``-0`` sum;
OS: idle rows). Unused columns compute garbage that the host ignores.

Kulisch accumulator (``pe="fp", mode="kulisch"``): the accumulator is the exact fixed-point
state of :func:`lowbit.hdl.fp_mac.kulisch_add_into`: a signed ``width``-bit two's-complement
value whose LSB weighs ``2^lsb_exp`` (``kulisch_width(a_format, b_format, terms)``; e4m3 x e4m3,
4096 terms: 49 bits, ``2^-18``) and 4 flag bits (NaN seen, +Inf seen, -Inf seen, every product
so far -0), packed as ``fixed | flags << width`` (``width + 4`` bits); a new sum is ``fixed = 0``
with the -0 flag (:attr:`SystolicArray.empty_sum` ``= 8 << width``). Nothing is rounded while
accumulating; the state is rounded once (RNE, :func:`lowbit.hdl.fp_mac.kulisch_read_into`) to
``acc_format`` at the bottom edge, by one combinational read-out unit per column, in the same
cycle (the timing and every cycle count are those of the other PEs).

* WS/IS: the psum travelling down a column is the state itself. At the bottom the de-skew
  registers delay the state (not a rounded code), and the read-out follows them: result beats
  carry both ``acc`` (the rounded code) and ``state`` (the exact state). K-tiling: the host
  stores the ``state`` fields and returns them on the next K-fold's ``psum`` lanes (``width +
  4`` bits per column), so the partial result re-enters exactly and the whole K is rounded
  once: the result is the golden FP MAC in Kulisch mode over all of K
  (:func:`lowbit.models.mac.fp_mac`), whatever the tiling. (An FP32 psum would need a register
  covering FP32's whole range, ~280 bits, to re-enter exactly, and would round once per K-fold;
  the host keeps ``width + 4``-bit words instead.)
* OS: each PE keeps its state; at the drain copy the states move into the drain registers
  (``width + 4`` bits) and shift down to the bottom edge, where the column's read-out unit
  rounds them. The alternative, a read-out unit in every PE and ``acc_format``-wide drain
  registers, costs ``R x C`` read-outs instead of ``C``: one read-out (e4m3 x e4m3 -> fp32,
  49-bit register) is about 1050 gate equivalents (``lowbit.fpga.synth``, target generic),
  against about 170 for the 21 extra drain-register bits per PE. OS needs no K-tiling (a
  fold covers all of K).
* IS: the WS hardware, as above (the product and the register are symmetric in the operand
  formats).

Beyond ``terms`` products the register wraps modulo ``2^width`` (as the golden model does).
Golden: :class:`lowbit.models.systolic.KulischPE` (``kulisch_step`` / ``kulisch_read``).

Numerics: every output is one accumulation chain over ``k = 0 .. K-1`` in increasing order,
``acc <- step(acc, A[m, k], B[k, n])`` from the empty sum, with the PE's step function, which is
exactly :func:`lowbit.models.systolic.gemm_numerics` with the PE's
:meth:`~lowbit.models.systolic.PESpec.datapath`, :class:`~lowbit.models.systolic.IntPE` /
:class:`~lowbit.models.systolic.FpMacPE` / :class:`~lowbit.models.systolic.KulischPE` (themselves
:func:`lowbit.models.mac.int_mac_step` / :func:`lowbit.models.mac.fp_mac_step` /
:func:`lowbit.models.mac.kulisch_step`). In WS the chain crosses K-folds through the ``psum``
lanes (the host's ofmap buffer).

Verilog (:func:`lowbit.hdl.manifest.to_verilog`, and Amaranth board platforms): a two-level
hierarchical netlist, the PE converted once (module :attr:`SystolicPE.module_name`) and
instantiated C times in one row module (:class:`SystolicRow`, :attr:`SystolicRow.module_name`),
which the top instantiates R times; each skew or de-skew line is one shift register. The
elaboration and the Verilog grow with R + C (plus the O(R^2 + C^2) bits of the skew lines), not
with R x C: a 128 x 128 E4M3->FP32 array is written in 42 s at 1.3 GB peak with its lint
(``benchmarks/gen_scale.py``). In the Amaranth simulator (no platform) the rows and PEs are
ordinary submodules.

Pipelined PEs (``pe_stages = S``, 1 = the one-cycle PE; :func:`pe_cut_points` lists where the
``S - 1`` extra registers go in each PE: INT ``product``, ``lut`` (1..3); OverQ ``term``
(1..2); FP fused / two roundings ``product``, ``add``, ``norm``, ``lz``, ``round`` (1..6), the
registers of :class:`lowbit.hdl.fp_mac.FpMac` (product) and of :func:`lowbit.hdl.fp_round.round_pack`
(normalisation and rounding), no second pipelined multiplier; Kulisch ``term``, ``decode``,
``unpack`` (1..4), the operand side of the pipelined Kulisch MAC
(:func:`lowbit.hdl.fp_mac.kulisch_term_into`). The numbers do not change with ``S``; the
schedule is :class:`lowbit.models.systolic.Schedule` with ``pe_stages`` ("Pipelined PEs"):

* WS/IS (no loop: the partial sum moves down the column, the PE pipelines freely): the psum,
  its valid/last bits and the lane's mask bit travel through the PE's ``S`` registers with the
  datapath; the operands still move one PE right per cycle and the weights one row per load
  beat. The ``a`` lane of row ``i`` is skewed by ``i * S`` registers (instead of ``i``), the
  psum lanes by ``j`` as before, the de-skew by ``C - 1 - j``: result beat ``t`` appears
  ``R * S + C - 1`` cycles after data beat ``t``; ``i.ready`` is low for ``(R - 1) * S + C - 1``
  cycles after a fold's last beat (fold period ``L + T + (R - 1) * S + C - 1``, drain ``S``).
  A host that reads the partial sums back for the next K-fold needs them by the next fold's
  beat ``t``: true when ``T + R - 1 >= S`` (``Schedule.readback_ok``).
* OS (the accumulation ``acc <- step(acc, a, b)`` is a loop): the extra registers go on the
  operand side only, before the accumulator, whose add stays one cycle; the fold-start and
  valid bits travel with them, so every accumulator, and the drain copy, runs ``S - 1`` cycles
  later: same fold period, drain ``R + S - 1``. That is the pipelined Kulisch MAC's scheme
  (its loop is the ``width``-bit add alone; 1..4 stages). A floating-point fused / two-roundings
  OS PE takes only the product register (1..2): its loop is the whole rounding adder, which
  cannot be split without changing the numbers (interleaved accumulators would change the
  summation order) or the rate (a multi-cycle loop accepts a beat every ``S`` cycles); a deeper
  one is a ValueError naming ``pe_stages``, the PE and the allowed depths. Use WS/IS or
  ``mode="kulisch"`` for a deep FP PE.

Not (yet) supported: the shared-exponent PEs.
"""
import re

from amaranth.back import verilog
from amaranth.hdl import (Cat, ClockSignal, EnableInserter, Instance, Module, Mux, ResetSignal,
                          Signal, Value, signed)
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.models import formats
from lowbit.models import mac as model
from lowbit.models.checks import check_choice, check_int
from lowbit.models.systolic import DATAFLOWS as _SCHEDULE_DATAFLOWS
from lowbit.models.systolic import PE_KINDS, PESpec, Schedule, parse_pe

from .fp_mac import (FpMacStep, KulischStep, accumulate_into, kulisch_accumulate_into,
                     kulisch_read_into, kulisch_term_into, mac_numerics)
from .fp_mul import multiply_into
from .fp_round import Cuts
from .int_mac import IntMacStep, int_accumulate_into, lut_multiply_into
from .manifest import (VerilogModules, construct, describe_format, fmt_ref, golden,
                       layout_packing, verilog_ports)
from .overq_pe import OverqStep, overq_contract
from .unit import Param, Unit

__all__ = ["SystolicPE", "SystolicRow", "SystolicArray", "pe_spec", "connect_acc", "pe_cut_points",
           "check_pe_stages", "UNITS", "PES", "DATAFLOWS", "MAX_DIM"]

PES = PE_KINDS
#: Dataflows in the order the catalogue offers them.
DATAFLOWS = ("ws", "os", "is")
assert set(DATAFLOWS) == set(_SCHEDULE_DATAFLOWS)
#: Largest array side: a TPU v2/v3 core's matrix unit is 128 x 128 (Jouppi et al., "A Domain-Specific Supercomputer for Training Deep Neural Networks",
#: CACM 63(7), 2020), the size the hierarchical netlist (one PE module) is built for.
MAX_DIM = 128


def connect_acc(m, step, acc_in):
    """Drive a PE step's accumulator input from ``acc_in``; return its accumulator output.

    INT/FP steps (``acc_in``/``acc_out``): the code. Kulisch steps (``fixed_in``/``flags_in``):
    ``acc_in`` and the result are the packed state ``Cat(fixed, flags)``. Not for the OverQ
    step.
    """
    if hasattr(step, "fixed_in"):
        kw = len(step.fixed_in)
        m.d.comb += [step.fixed_in.eq(acc_in[:kw]), step.flags_in.eq(acc_in[kw:])]
        return Cat(step.fixed_out, step.flags_out)
    m.d.comb += step.acc_in.eq(acc_in)
    return step.acc_out


def _pe_step(spec, dataflow):
    """The combinational MAC step of ``spec`` with the operands as ``dataflow`` streams them
    (IS streams B's columns: the multiplier's operands are swapped, which changes nothing, the
    product being exact and commutative)."""
    if spec.kind == "overq":
        return OverqStep(spec.bits, spec.w_bits, spec.acc_bits, spec.cascade, spec.precision,
                         spec.shift_at)
    sa, sb = (spec.b, spec.a) if dataflow == "is" else (spec.a, spec.b)
    if spec.kind == "int":
        return IntMacStep(sa, sb, spec.acc_bits, spec.overflow)
    if spec.kulisch:
        return KulischStep(sa, sb, spec.terms, spec.flush_subnormals)
    return FpMacStep(sa, sb, spec.acc, spec.mode, spec.flush_subnormals, spec.saturate)


#: Pipeline register points of a PE, in the order ``pe_stages`` adds them (``pe_stages = S``
#: uses the first ``S - 1``; the PE's output register, the psum register (WS/IS) or the
#: accumulator (OS), is always there). Every point lies in the product/term datapath of
#: :mod:`lowbit.hdl.int_mac`, :mod:`lowbit.hdl.fp_mac` and :mod:`lowbit.hdl.overq_pe`:
#:
#: * INT: ``product`` (the exact ``a * w``, :class:`~lowbit.hdl.int_mac.IntMac`'s stage 1),
#:   ``lut`` (the product from LUTs with a register after the first adder-tree level, no DSP
#:   block: :class:`~lowbit.hdl.int_mac.IntMac`'s stage 3 scheme);
#: * OverQ: ``term`` (the shifted ``code * w`` term of :class:`~lowbit.hdl.overq_pe.OverqStep`);
#: * FP fused / two roundings: ``product`` (the exact product code, :class:`~lowbit.hdl.
#:   fp_mac.FpMac`'s stage 1), then in the adder (:func:`~lowbit.hdl.fp_mac.accumulate_into`)
#:   ``add`` (after the aligned add), ``norm`` (after the normalising shift), ``lz`` (after the
#:   leading-zero count) and ``round`` (after the rounding increment);
#: * Kulisch: the pipelined Kulisch MAC's operand-side points (:data:`lowbit.hdl.fp_mac.
#:   KULISCH_CUTS`): ``term`` (the aligned term), ``decode`` (the significand product),
#:   ``unpack`` (the operand decode).
#:
#: In OS the accumulation is a loop (``acc <- step(acc, a, b)``): only the points before the
#: accumulator add can be used, so the FP fused / two-roundings PE takes ``product`` only (its
#: rounding adder stays in the one-cycle loop), INT both, OverQ ``term``, Kulisch all three
#: (its loop is the ``width``-bit add alone, as in the pipelined Kulisch MAC).
_CUT_POINTS = {"int": ("product", "lut"), "overq": ("term",),
               "fp": ("product", "add", "norm", "lz", "round"),
               "kulisch": ("term", "decode", "unpack")}
_OS_CUT_POINTS = {"fp": ("product",)}


def _cut_kind(spec):
    return "kulisch" if spec.kulisch else spec.kind


def pe_cut_points(spec, dataflow):
    """The pipeline register points a ``spec`` PE offers in ``dataflow`` (see the table above);
    ``pe_stages`` may be ``1 .. 1 + len(pe_cut_points(spec, dataflow))``."""
    k = _cut_kind(spec)
    if dataflow == "os":
        return _OS_CUT_POINTS.get(k, _CUT_POINTS[k])
    return _CUT_POINTS[k]


def check_pe_stages(pe_stages, spec, dataflow):
    """Validate the PE depth ``pe_stages`` (cycles from a PE's operands to its result) for
    ``spec`` in ``dataflow``; return it as an int.

    Raises
    ------
    TypeError
        Not an integer.
    ValueError
        Outside ``1 .. 1 + len(pe_cut_points(spec, dataflow))``; the message names the PE,
        the dataflow and the allowed depths (and, for an OS FP PE, why: the loop).
    """
    hi = 1 + len(pe_cut_points(spec, dataflow))
    if isinstance(pe_stages, bool) or not isinstance(pe_stages, int):
        raise TypeError(f"pe_stages must be an integer, not {pe_stages!r}")
    if not 1 <= pe_stages <= hi:
        why = ""
        if dataflow == "os" and spec.kind == "fp" and not spec.kulisch:
            why = (" (os accumulates in a one-cycle loop: only the product register can be "
                   "added before it; use dataflow ws or is for a deeper fp PE, or mode kulisch)")
        raise ValueError(f"pe_stages for pe {spec.key!r} with dataflow {dataflow!r} must be "
                         f"1..{hi}, not {pe_stages!r}{why}")
    return pe_stages


def _pipelined_step(m, spec, dataflow, stages, a, w, w_prev, acc_in, carry):
    """A PE step ``acc_in (+) a * w`` with ``stages - 1`` registers at the first points of
    :func:`pe_cut_points` (``m``'s sync domain). ``carry`` (a dict of Values) is delayed
    alongside; returns ``(result, carry)``: the new accumulator (same numbers as the one-cycle
    step, :meth:`lowbit.models.systolic.PESpec.datapath`) and the delayed ``carry``.

    ``acc_in`` is a function of the delayed carry (WS/IS: the carried psum; OS: the
    accumulator restart mux, evaluated after the registers, in the loop)."""
    cut = Cuts(m, pe_cut_points(spec, dataflow)[:stages - 1], "pp")
    cut.carry = dict(carry)
    sa, sb = (spec.b, spec.a) if dataflow == "is" else (spec.a, spec.b)
    k = _cut_kind(spec)
    if k == "int":
        pbits = model.int_product_bits(sa, sb)
        p = Signal(signed(pbits), name="pp_prod",
                   attrs={"keep": 1})      # keep: one multiplier and one adder, see int_mac.py
        xa, xw = (a.as_signed() if sa.signed else a), (w.as_signed() if sb.signed else w)
        if "lut" in cut.points:
            # IntMac's pipeline_stages=3 scheme: the product from LUTs and carry chains with a
            # register after the first adder-tree level (no path through an unregistered DSP
            # block, which bounds a register-DSP-register path near 146 MHz on the ECP5,
            # lowbit.hdl.int_mac.IntMac); padded with a delay register when the tree has none
            q, regs = lut_multiply_into(m, xa, xw, pbits, cuts=(1,), name="pp_lmul")
            if regs == 0:
                q = cut("lut", {"q": q})["q"]
            else:
                cut("lut", {})                # delays the carried signals alongside
            m.d.comb += p.eq(q.as_signed())
        else:
            m.d.comb += p.eq(xa * xw)
        p = cut("product", {"p": p})["p"]
        # the psum lanes are raw bits: the accumulator is signed two's complement
        return int_accumulate_into(m, spec.acc_bits, spec.overflow,
                                   acc_in(cut.carry).as_signed(), p), cut.carry
    if k == "overq":
        # the OverQ term alone: the step with psum_in = 0 (the sum wraps modulo 2^acc_bits, so
        # adding the wrapped term later gives the same psum)
        st = OverqStep(spec.bits, spec.w_bits, spec.acc_bits, spec.cascade, spec.precision,
                       spec.shift_at)
        m.submodules.term = st
        m.d.comb += [st.code.eq(a[:spec.bits]), st.meta.eq(a[spec.bits:]), st.w.eq(w),
                     st.w_prev.eq(w_prev), st.psum_in.eq(0)]
        t = cut("term", {"t": st.psum_out})["t"]
        out = Signal(signed(spec.acc_bits), name="pp_psum")
        m.d.comb += out.eq(acc_in(cut.carry).as_signed() + t.as_signed())
        return out, cut.carry
    if k == "fp":
        pf = model.product_format(sa, sb)
        p = multiply_into(m, sa, sb, a, w, spec.flush_subnormals)
        p = cut("product", {"p": p})["p"]
        out = accumulate_into(m, spec.acc, pf, acc_in(cut.carry), p, spec.mode,
                              spec.flush_subnormals, spec.saturate, name="pp_acc", cut=cut)
        return out, cut.carry
    kw, _ = spec.kulisch_register
    t = kulisch_term_into(m, sa, sb, a, w, spec.flush_subnormals, kw, cut, name="pp_kt")
    t = cut("term", t)
    st = acc_in(cut.carry)
    fixed, flags = kulisch_accumulate_into(m, kw, st[:kw], st[kw:], t, name="pp_ka")
    return Cat(fixed, flags), cut.carry


def pe_spec(pe, **params):
    """The :class:`~lowbit.models.systolic.PESpec` of :class:`SystolicArray`'s ``pe`` argument:
    a PE name or a PESpec alone (every other parameter None), or a PE kind (``int``, ``fp``,
    ``overq``) with the parameters (None: the default of :class:`SystolicArray`).

    Raises
    ------
    TypeError, ValueError
        An unknown PE, a parameter beside a PE name, a parameter out of range.
    """
    given = {k: v for k, v in params.items() if v is not None}
    if isinstance(pe, PESpec) or (isinstance(pe, str) and pe not in PES):
        spec = pe if isinstance(pe, PESpec) else parse_pe(pe)
        if given:
            raise ValueError(f"pe {spec.key!r} names the whole PE; {next(iter(given))} cannot "
                             f"be given beside it (use a PE kind int, fp or overq with "
                             f"parameters, or a PE name alone)")
        return spec
    check_choice("pe", pe, PES)
    d = given
    return PESpec(pe, d.get("a_format"), d.get("b_format"), acc_bits=d.get("acc_bits", 32),
                  overflow=d.get("overflow", "wrap"), acc=d.get("acc_format", "fp32"),
                  mode=d.get("mode", "fused"), bits=d.get("bits", 4), w_bits=d.get("w_bits", 4),
                  terms=d.get("terms", 4096), flush_subnormals=d.get("flush_subnormals", False),
                  saturate=d.get("saturate", False), cascade=d.get("cascade", 1),
                  precision=d.get("precision", True), shift_at=d.get("shift_at", "product"))


def _pe_lanes(spec, dataflow, pe_stages):
    """Validate a PE's ``spec``, ``dataflow`` and depth; return ``(pe_stages, a_width,
    b_width, acc_width)``: the streamed and stationary lane widths (IS swaps the operands)
    and the partial-sum width."""
    if not isinstance(spec, PESpec):
        raise TypeError(f"spec must be a PESpec, not {spec!r}")
    check_choice("dataflow", dataflow, DATAFLOWS)
    if dataflow == "is" and spec.kind == "overq":
        raise ValueError("dataflow 'is' is not available with an OverQ PE")
    stages = check_pe_stages(pe_stages, spec, dataflow)
    aw, bw = spec.a_lane_width, spec.b_lane_width
    if dataflow == "is":
        aw, bw = bw, aw
    return stages, aw, bw, spec.acc_width


def _pe_module_name(spec, dataflow, stages):
    """``lowbit_pe_<pe key>_<dataflow>[_s<S>]``: one Verilog module name per PE configuration,
    dataflow and depth."""
    depth = f"_s{stages}" if stages > 1 else ""
    return re.sub(r"\W", "_", f"lowbit_pe_{spec.key}_{dataflow}{depth}")


class SystolicPE(wiring.Component):
    """One processing element of :class:`SystolicArray`: the MAC step and the PE's registers.

    Parameters
    ----------
    spec : lowbit.models.systolic.PESpec
        The PE (kind, formats, accumulator).
    dataflow : {"ws", "os", "is"}
        How the array uses it (IS is the WS PE with the operand formats swapped).

    Members
    -------
    en : In(1)
        Enable of every register (the array's back-pressure).
    a, av, af : In(a_width), In(1), In(1)
        Streamed operand from the left (OverQ: ``code | meta << bits``), its valid bit and its
        fold-start bit.
    a_o, av_o, af_o : Out
        The same, registered, to the right neighbour.
    w_i, load, w_o : In(b_width), In(1), Out(b_width)
        WS/IS: the stationary operand from above, loaded into the PE's weight register on
        ``load``; ``w_o`` is that register (to the PE below).
    wp : In(b_width)
        WS/IS with the OverQ PE: the weight of the slot before (the stationary weight of the PE
        above; for row 0, the array's ``wprev`` register).
    ps, pv, pl : In(acc_width), In(1), In(1)
        WS/IS: partial sum from above, with its valid and last-of-fold bits.
    ps_o, pv_o, pl_o : Out
        WS/IS: ``ps_o <- av ? step(ps, a, w) : ps``; ``pv``/``pl`` registered.
    b, b_o : In(b_width), Out(b_width)
        OS: filter operand from above and, registered, to the PE below.
    copy, acc_up, drain_up : In(1), In(acc_width), In(acc_width)
        OS: drain control; the accumulator and the drain register of the PE above.
    acc_o, drain_o : Out(acc_width)
        OS: the accumulator (``acc <- step(af ? empty : acc, a, b)`` when ``av``) and the
        drain register (``drain <- copy ? acc_up : drain_up``).

    Parameters (continued)
    ----------------------
    pe_stages : int
        The PE's depth ``S``: cycles from its operands to its result, 1 (default: the one-cycle
        PE) up to ``1 + len(pe_cut_points(spec, dataflow))``; the ``S - 1`` extra registers sit
        at the first points of :func:`pe_cut_points`. WS/IS: ``ps_o`` is ``S`` cycles after
        ``a``/``ps`` (``ps``, ``pv``, ``pl`` and ``av`` are delayed alongside the datapath);
        OS: the accumulator takes a beat's term ``S - 1`` cycles after ``a``/``b`` (``av``,
        ``af`` delayed alongside), its add staying one cycle. The forwarded operands
        (``a_o``, ``w_o``, ``b_o``) stay one cycle.

    Latency: one cycle from every input to its registered output (the psum / accumulator: ``S``).
    Numerics: the step of ``spec`` (:meth:`lowbit.models.systolic.PESpec.datapath`), whatever
    ``S``.

    Raises
    ------
    TypeError
        ``spec`` is not a :class:`~lowbit.models.systolic.PESpec`; ``pe_stages`` not an int.
    ValueError
        An unknown dataflow, IS with the OverQ PE, a depth the PE cannot take.
    """

    def __init__(self, spec, dataflow="ws", pe_stages=1):
        self._stages, aw, bw, W = _pe_lanes(spec, dataflow, pe_stages)
        self._spec, self._df = spec, dataflow
        self._aw, self._bw, self._w = aw, bw, W
        ports = {"en": In(1), "a": In(aw), "av": In(1), "af": In(1),
                 "a_o": Out(aw), "av_o": Out(1), "af_o": Out(1)}
        if dataflow == "os":
            ports.update({"b": In(bw), "b_o": Out(bw), "copy": In(1), "acc_up": In(W),
                          "drain_up": In(W), "acc_o": Out(W), "drain_o": Out(W)})
        else:
            ports.update({"w_i": In(bw), "load": In(1), "w_o": Out(bw)})
            if spec.kind == "overq":
                ports["wp"] = In(bw)
            ports.update({"ps": In(W), "pv": In(1), "pl": In(1), "ps_o": Out(W), "pv_o": Out(1),
                          "pl_o": Out(1)})
        super().__init__(ports)

    spec = property(lambda self: self._spec)
    dataflow = property(lambda self: self._df)
    #: Bits of the streamed operand lane.
    a_width = property(lambda self: self._aw)
    #: Bits of the stationary (WS/IS) or filter (OS) operand lane.
    b_width = property(lambda self: self._bw)
    #: Bits of the partial sum / accumulator (Kulisch: the packed state).
    acc_width = property(lambda self: self._w)
    #: The PE depth ``S`` (cycles from the operands to the psum / accumulator).
    pe_stages = property(lambda self: self._stages)
    #: Cycles from the operands to the result (``ps_o``; OS: the accumulator): ``pe_stages``.
    latency = property(lambda self: self._stages)

    @property
    def module_name(self):
        """Verilog module name of this PE when the array instantiates it (one name per PE
        configuration, dataflow and depth: ``lowbit_pe_<pe key>_<dataflow>``, with ``_s<S>``
        appended for ``S > 1``)."""
        return _pe_module_name(self._spec, self._df, self._stages)

    def elaborate(self, platform):
        if self._stages > 1:
            return self._elaborate_pipelined()
        m = Module()
        core = Module()
        spec = self._spec
        s = _pe_step(spec, self._df)
        core.submodules.step = s
        overq = spec.kind == "overq"
        for src, dst in ((self.a, self.a_o), (self.av, self.av_o), (self.af, self.af_o)):
            r = Signal.like(dst, name=f"r_{dst.name}")
            core.d.sync += r.eq(src)
            m.d.comb += dst.eq(r)
        if overq:
            core.d.comb += [s.code.eq(self.a[:spec.bits]), s.meta.eq(self.a[spec.bits:])]
        else:
            core.d.comb += s.a.eq(self.a)
        if self._df == "os":
            init = spec.empty_sum
            acc = Signal(self._w, init=init, name="acc")
            rb = Signal(self._bw, name="r_b")
            core.d.sync += rb.eq(self.b)
            if overq:
                # w_prev: the weight of this PE's previous MAC (0 on a fold's first)
                bp = Signal(self._bw, name="bprev")
                core.d.comb += [s.w.eq(self.b), s.w_prev.eq(Mux(self.af, 0, bp)),
                                s.psum_in.eq(Mux(self.af, 0, acc))]
                with core.If(self.av):
                    core.d.sync += [acc.eq(s.psum_out), bp.eq(self.b)]
            else:
                core.d.comb += s.b.eq(self.b)
                out = connect_acc(core, s, Mux(self.af, init, acc))
                with core.If(self.av):
                    core.d.sync += acc.eq(out)
            d = Signal(self._w, name="drain")
            core.d.sync += d.eq(Mux(self.copy, self.acc_up, self.drain_up))
            m.d.comb += [self.b_o.eq(rb), self.acc_o.eq(acc), self.drain_o.eq(d)]
        else:
            w = Signal(self._bw, name="w")
            with core.If(self.load):
                core.d.sync += w.eq(self.w_i)
            if overq:
                core.d.comb += [s.w.eq(w), s.w_prev.eq(self.wp), s.psum_in.eq(self.ps)]
                out = s.psum_out
            else:
                core.d.comb += s.b.eq(w)
                out = connect_acc(core, s, self.ps)
            rp, rv, rl = Signal(self._w, name="psum"), Signal(name="pv"), Signal(name="pl")
            core.d.sync += [rp.eq(Mux(self.av, out, self.ps)), rv.eq(self.pv), rl.eq(self.pl)]
            m.d.comb += [self.w_o.eq(w), self.ps_o.eq(rp), self.pv_o.eq(rv), self.pl_o.eq(rl)]
        m.submodules.core = EnableInserter({"sync": self.en})(core)
        return m

    def _elaborate_pipelined(self):
        """``pe_stages > 1``: the step of :func:`_pipelined_step`, registers behind ``en``."""
        m = Module()
        core = Module()
        spec, S = self._spec, self._stages
        overq = spec.kind == "overq"
        for src, dst in ((self.a, self.a_o), (self.av, self.av_o), (self.af, self.af_o)):
            r = Signal.like(dst, name=f"r_{dst.name}")
            core.d.sync += r.eq(src)
            m.d.comb += dst.eq(r)
        if self._df == "os":
            init = spec.empty_sum
            acc = Signal(self._w, init=init, name="acc")
            rb = Signal(self._bw, name="r_b")
            core.d.sync += rb.eq(self.b)
            wp = 0
            if overq:
                # w_prev: the weight of this PE's previous MAC (0 on a fold's first); an
                # operand-side register, updated as the operands arrive
                bp = Signal(self._bw, name="bprev")
                wp = Mux(self.af, 0, bp)
                with core.If(self.av):
                    core.d.sync += bp.eq(self.b)
            empty = 0 if overq else init
            out, c = _pipelined_step(core, spec, "os", S, self.a, self.b, wp,
                                     lambda c: Mux(c["af"], empty, acc),
                                     {"av": self.av, "af": self.af})
            with core.If(c["av"]):
                core.d.sync += acc.eq(out)
            d = Signal(self._w, name="drain")
            core.d.sync += d.eq(Mux(self.copy, self.acc_up, self.drain_up))
            m.d.comb += [self.b_o.eq(rb), self.acc_o.eq(acc), self.drain_o.eq(d)]
        else:
            w = Signal(self._bw, name="w")
            with core.If(self.load):
                core.d.sync += w.eq(self.w_i)
            out, c = _pipelined_step(core, spec, self._df, S, self.a, w,
                                     self.wp if overq else 0, lambda c: c["ps"],
                                     {"ps": self.ps, "av": self.av, "pv": self.pv,
                                      "pl": self.pl})
            rp, rv, rl = Signal(self._w, name="psum"), Signal(name="pv"), Signal(name="pl")
            core.d.sync += [rp.eq(Mux(c["av"], out, c["ps"])), rv.eq(c["pv"]), rl.eq(c["pl"])]
            m.d.comb += [self.w_o.eq(w), self.ps_o.eq(rp), self.pv_o.eq(rv), self.pl_o.eq(rl)]
        m.submodules.core = EnableInserter({"sync": self.en})(core)
        return m


class _InstancePorts:
    """The port signals of one instantiated module (``Instance``), named like the component's
    members (array-shaped members as views of one signal)."""

    def __init__(self, signature, prefix):
        for name, member in signature.members.items():
            if isinstance(member.shape, data.Layout):
                # a plain signal seen through a view: a signal of a layout would make the
                # Verilog backend declare a wire per element (R x C of them in the array)
                sig = Signal(member.shape.size, name=f"{prefix}_{name}")
                setattr(self, name, data.View(member.shape, sig))
            else:
                setattr(self, name, Signal(member.shape, name=f"{prefix}_{name}"))


def _instance(m, name, component, prefix, ports_of):
    """Add ``Instance(name)`` with the ports of ``component`` (the module converted from it,
    with ``clk``/``rst`` where it has them) to ``m`` as submodule ``prefix``; returns its
    :class:`_InstancePorts`."""
    ports = _InstancePorts(component.signature, prefix)
    conns = {("i_" if member.flow == In else "o_") + p: Value.cast(getattr(ports, p))
             for p, member in component.signature.members.items()}
    if "clk" in ports_of:
        conns["i_clk"] = ClockSignal("sync")
    if "rst" in ports_of:
        conns["i_rst"] = ResetSignal("sync")
    m.submodules[prefix] = Instance(name, **conns)
    return ports


def _convert_once(platform, component, name):
    """Convert ``component`` to Verilog module ``name`` and add it (and the modules it
    instantiates) to ``platform``'s files; return the names of its clock/reset ports."""
    mods = VerilogModules()
    text = verilog.convert(component, name=name, platform=mods, emit_src=False,
                           strip_internal_attrs=True)
    for f, t in mods.extra_files.items():
        platform.add_file(f, t)
    platform.add_file(f"{name}.v", text)
    return {p for p, _, _ in verilog_ports(text, name) if p in ("clk", "rst")}


def _place(m, make, names, platform, placed=None):
    """Add one component per name of ``names`` to ``m`` (submodules of those names); return
    the list of objects with their ports, in order.

    With ``platform=None`` (the Amaranth simulator) each is ``make()``, a submodule. With a
    platform that takes files (``add_file``), ``make()`` is converted to Verilog once, added
    as ``<module_name>.v`` (with the modules it instantiates), and instantiated once per name.
    Same registers, same logic, same cycle behaviour.  ``placed(k)`` is called after the
    first ``k`` instances (progress).
    """
    if platform is None or not hasattr(platform, "add_file"):
        out = []
        for name in names:
            out.append(make())
            m.submodules[name] = out[-1]
        return out
    proto = make()
    harness = _convert_once(platform, proto, proto.module_name)
    out = []
    for name in names:
        out.append(_instance(m, proto.module_name, proto, name, harness))
        if placed is not None:
            placed(len(out))
    return out


class SystolicRow(wiring.Component):
    """One row of ``cols`` :class:`SystolicPE` of a :class:`SystolicArray`: the module its
    Verilog defines once and instantiates ``R`` times (a two-level hierarchical netlist, so
    that the array's Verilog and its elaboration grow with ``R + C``, not ``R x C``).

    The streamed operand enters PE 0 (``a``, ``av``, ``af``) and moves right; every other port
    is one lane per column, as an array of ``cols`` (the PE's port of the same name, see
    :class:`SystolicPE`): WS/IS ``w_i``/``w_o``, ``wp`` (OverQ), ``ps``/``pv``/``pl`` in from
    the row above and ``ps_o``/``pv_o``/``pl_o`` out to the row below, ``load`` shared; OS
    ``b``/``b_o``, ``acc_up``/``drain_up`` in and ``acc_o``/``drain_o`` out, ``copy`` shared;
    ``en`` (every register's enable) shared. Latency and numerics: the PE's.
    """

    def __init__(self, spec, dataflow, cols, pe_stages=1):
        self._stages, aw, bw, W = _pe_lanes(spec, dataflow, pe_stages)    # the PE's widths
        self._cols = check_int("cols", cols, 1, MAX_DIM)
        self._spec, self._df = spec, dataflow

        def lanes(w):
            return data.ArrayLayout(w, cols)
        ports = {"en": In(1), "a": In(aw), "av": In(1), "af": In(1)}
        if dataflow == "os":
            ports.update({"b": In(lanes(bw)), "b_o": Out(lanes(bw)), "copy": In(1),
                          "acc_up": In(lanes(W)), "drain_up": In(lanes(W)),
                          "acc_o": Out(lanes(W)), "drain_o": Out(lanes(W))})
        else:
            ports.update({"w_i": In(lanes(bw)), "load": In(1), "w_o": Out(lanes(bw))})
            if spec.kind == "overq":
                ports["wp"] = In(lanes(bw))
            ports.update({"ps": In(lanes(W)), "pv": In(lanes(1)), "pl": In(lanes(1)),
                          "ps_o": Out(lanes(W)), "pv_o": Out(lanes(1)), "pl_o": Out(lanes(1))})
        super().__init__(ports)

    cols = property(lambda self: self._cols)
    spec = property(lambda self: self._spec)
    dataflow = property(lambda self: self._df)
    pe_stages = property(lambda self: self._stages)

    @property
    def module_name(self):
        """Verilog module name: the PE's (:attr:`SystolicPE.module_name`) with ``_row<cols>``
        appended."""
        return f"{_pe_module_name(self._spec, self._df, self._stages)}_row{self._cols}"

    def elaborate(self, platform):
        m = Module()
        C = self._cols
        # (named pe_0_<j>, as when the array placed R x C PEs itself)
        pes = _place(m, lambda: SystolicPE(self._spec, self._df, self._stages),
                     [f"pe_0_{j}" for j in range(C)], platform)
        a, av, af = self.a, self.av, self.af
        for j in range(C):
            pe = pes[j]
            m.d.comb += [pe.en.eq(self.en), pe.a.eq(a), pe.av.eq(av), pe.af.eq(af)]
            a, av, af = pe.a_o, pe.av_o, pe.af_o
            if self._df == "os":
                m.d.comb += [pe.b.eq(self.b[j]), pe.copy.eq(self.copy),
                             pe.acc_up.eq(self.acc_up[j]), pe.drain_up.eq(self.drain_up[j]),
                             self.b_o[j].eq(pe.b_o), self.acc_o[j].eq(pe.acc_o),
                             self.drain_o[j].eq(pe.drain_o)]
            else:
                m.d.comb += [pe.w_i.eq(self.w_i[j]), pe.load.eq(self.load),
                             self.w_o[j].eq(pe.w_o), pe.ps.eq(self.ps[j]), pe.pv.eq(self.pv[j]),
                             pe.pl.eq(self.pl[j]), self.ps_o[j].eq(pe.ps_o),
                             self.pv_o[j].eq(pe.pv_o), self.pl_o[j].eq(pe.pl_o)]
                if self._spec.kind == "overq":
                    m.d.comb += pe.wp.eq(self.wp[j])
        return m


class SystolicArray(wiring.Component):
    """``rows x cols`` systolic GEMM array with skew/de-skew registers and stream ports.

    Parameters
    ----------
    rows, cols : int
        Array height ``R`` and width ``C``, 1..128 (:data:`MAX_DIM`).
    pe : str or PESpec
        A PE name (:func:`lowbit.models.systolic.parse_pe`: ``int8``, ``e4m3_fp32``,
        ``e5m2_fp16_two_roundings_sat``, ``e4m3_kulisch``, ``overq4``, ...) or a
        :class:`~lowbit.models.systolic.PESpec`, alone; or a PE kind, ``"int"``
        (:class:`~lowbit.hdl.int_mac.IntMacStep`), ``"fp"`` (:class:`~lowbit.hdl.fp_mac.FpMacStep`)
        or ``"overq"`` (:class:`~lowbit.hdl.overq_pe.OverqStep`), with the parameters below
        (each defaults as stated when not given).
    dataflow : str
        ``"ws"`` (weight-stationary), ``"os"`` (output-stationary) or ``"is"``
        (input-stationary: the WS hardware with the operands' roles swapped, see the module
        docstring; not with the OverQ PE).
    a_format, b_format : str or Format, optional
        Operand formats (``a``: the streamed ifmap, ``b``: the weights). Default ``int8``
        (INT PE) or ``e4m3`` (FP PE). INT: ``int2..int16``/``uint2..uint16``; FP: signed float
        formats of at most 16 bits.
    acc_bits : int
        INT PE: signed accumulator width, 2..64 (default 32).
    overflow : str
        INT PE: ``"wrap"`` or ``"saturate"`` (every step).
    acc_format : str or FloatFormat
        FP PE: accumulator format (``fp32``, ``fp16``, ``bf16``...; default ``fp32``).
    mode : str
        FP PE: ``"fused"`` (one RNE rounding per step), ``"two_roundings"`` or ``"kulisch"``
        (exact fixed-point accumulator rounded once at the bottom edge; every dataflow; see the
        module docstring).
    flush_subnormals, saturate : bool
        FP PE: flush subnormal operands/results; overflow to +-max instead of +-Inf (Kulisch:
        of the read-out).
    terms : int
        FP PE, Kulisch: products summed exactly, 1..2**32 (sizes the register, default 4096);
        beyond it the register wraps.
    pe_stages : int
        PE depth ``S`` in cycles (default 1): INT 1..3, OverQ 1..2, FP fused / two roundings 1..6
        (OS 1..2), Kulisch 1..4 (module docstring, "Pipelined PEs"; :func:`pe_cut_points`).
    bits, w_bits, cascade, precision, shift_at :
        OverQ PE: as :class:`~lowbit.hdl.overq_pe.OverqStep` (``acc_bits`` too; it wraps).

    The PE parameters make a :class:`lowbit.models.systolic.PESpec` (:attr:`spec`), which
    validates them.

    Members
    -------
    i : In(stream.Signature(operand_layout))
        Operand beats. Payload fields: ``a`` (``R`` streamed codes: ``a_format``, IS
        ``b_format``, OverQ ``code | meta << bits``), ``mask`` (``R`` bits, 1 = lane ``i``
        carries data), ``b`` (``C`` codes: WS/IS stationary row of a load beat, OS filter row),
        ``psum`` (WS/IS: ``C`` accumulator codes entering the column tops; Kulisch: ``C``
        packed exact states, :attr:`psum_width` bits each), ``wprev`` (WS with
        the OverQ PE: the weight row above the tile), ``load`` (WS/IS: the beat is a stationary
        row), ``last`` (last data beat of a fold).
    o : Out(stream.Signature(result_layout))
        Result beats: ``acc`` (``C`` accumulator codes; INT/OverQ: two's complement; Kulisch:
        the state rounded once), ``state`` (Kulisch, WS/IS only: the ``C`` exact states, for
        the psum lanes of the next K-fold) and ``last`` (last result beat of a fold).
        WS/IS: one beat per data beat; OS: ``R`` beats per fold, array row ``R - 1`` first.

    Latency: :attr:`latency` ``= R + C - 1`` cycles (one-cycle PEs) from a WS/IS data beat to its
    result beat, or from an OS fold's last beat to its first result beat (pipelined: WS/IS
    ``R * S + C - 1``, OS ``R + C + S - 2``); whole GEMMs: :meth:`gemm_cycles`.

    Raises
    ------
    TypeError
        A parameter of the wrong type (the message names it).
    ValueError
        A parameter out of range (the message names it and the allowed values).
    """

    def __init__(self, rows=4, cols=4, pe="int", dataflow="ws", a_format=None, b_format=None,
                 acc_bits=None, overflow=None, acc_format=None, mode=None,
                 flush_subnormals=None, saturate=None, bits=None, w_bits=None, cascade=None,
                 precision=None, shift_at=None, terms=None, pe_stages=1):
        self._rows = check_int("rows", rows, 1, MAX_DIM)
        self._cols = check_int("cols", cols, 1, MAX_DIM)
        spec = pe_spec(pe, a_format=a_format, b_format=b_format, acc_bits=acc_bits,
                       overflow=overflow, acc_format=acc_format, mode=mode,
                       flush_subnormals=flush_subnormals, saturate=saturate, bits=bits,
                       w_bits=w_bits, cascade=cascade, precision=precision, shift_at=shift_at,
                       terms=terms)
        check_choice("dataflow", dataflow, DATAFLOWS)
        if dataflow == "is" and spec.kind == "overq":
            raise ValueError("dataflow 'is' is not available with pe 'overq' (its metadata "
                             "travels with the streamed activations)")
        self._dataflow = dataflow
        self._spec = spec
        self._stages = check_pe_stages(pe_stages, spec, dataflow)
        a_w, b_w = spec.a_lane_width, spec.b_lane_width
        # streamed (a lanes) and stationary (b lanes) operand formats: IS streams B's columns
        self._sa, self._sb = (spec.b, spec.a) if dataflow == "is" else (spec.a, spec.b)
        if dataflow == "is":
            a_w, b_w = b_w, a_w
        self._a_w, self._b_w = a_w, b_w
        self._ps_w = spec.acc_width
        R, C = self._rows, self._cols
        fields = {"a": data.ArrayLayout(a_w, R), "mask": R, "b": data.ArrayLayout(b_w, C)}
        if dataflow != "os":
            fields["psum"] = data.ArrayLayout(self._ps_w, C)
            if spec.kind == "overq":
                fields["wprev"] = data.ArrayLayout(b_w, C)
            fields["load"] = 1
        fields["last"] = 1
        self._in_layout = data.StructLayout(fields)
        out_fields = {"acc": data.ArrayLayout(spec.result_width, C)}
        if self.kulisch and dataflow != "os":
            out_fields["state"] = data.ArrayLayout(self._ps_w, C)
        out_fields["last"] = 1
        self._out_layout = data.StructLayout(out_fields)
        super().__init__({"i": In(stream.Signature(self._in_layout)),
                          "o": Out(stream.Signature(self._out_layout))})

    # -- parameters --------------------------------------------------------------------------
    rows = property(lambda self: self._rows)
    cols = property(lambda self: self._cols)
    pe = property(lambda self: self._spec.kind)
    dataflow = property(lambda self: self._dataflow)
    #: The PE (:class:`lowbit.models.systolic.PESpec`): formats, accumulator, numerics.
    spec = property(lambda self: self._spec)
    a_format = property(lambda self: self._spec.a)
    b_format = property(lambda self: self._spec.b)
    acc_width = property(lambda self: self._spec.result_width)
    psum_width = property(lambda self: self._ps_w)
    #: Bits of one ``a`` lane (streamed operand; IS: a ``b_format`` code).
    a_lane_width = property(lambda self: self._a_w)
    #: Bits of one ``b`` lane (stationary / filter operand).
    b_lane_width = property(lambda self: self._b_w)
    #: PE depth ``S`` (cycles from a PE's operands to its result; 1: the one-cycle PE).
    pe_stages = property(lambda self: self._stages)
    operand_layout = property(lambda self: self._in_layout)
    result_layout = property(lambda self: self._out_layout)

    @property
    def mode(self):
        """FP PE: ``"fused"``, ``"two_roundings"`` or ``"kulisch"``; ``None`` for other PEs."""
        return self._spec.mode if self._spec.kind == "fp" else None

    @property
    def kulisch(self):
        """True for the FP PE with the Kulisch (exact fixed-point) accumulator."""
        return self._spec.kulisch

    @property
    def kulisch_width(self):
        """``(width, lsb_exp)`` of the Kulisch register (``None`` for other PEs)."""
        return self._spec.kulisch_register

    @property
    def empty_sum(self):
        """psum-lane value of the empty sum (INT: 0; FP: ``-0``; Kulisch: the packed new-sum
        state, ``fixed = 0`` with the -0 flag: ``8 << width``)."""
        return self._spec.empty_sum

    @property
    def latency(self):
        """``R * S + C - 1`` cycles from a WS/IS data beat to its result beat; ``R + C - 1 +
        (S - 1)`` from an OS fold's last beat to its first result beat (``S`` =
        :attr:`pe_stages`; 1: ``R + C - 1`` for both)."""
        S = self._stages
        if self._dataflow == "os":
            return self._rows + self._cols - 1 + S - 1
        return self._rows * S + self._cols - 1

    @property
    def _gap(self):
        """Cycles ``i.ready`` is low after a fold's last beat: ``P - L - T``."""
        R, C = self._rows, self._cols
        return R + C - 2 if self._dataflow == "os" else (R - 1) * self._stages + C - 1

    @property
    def _gap_formula(self):
        return ("R + C - 2" if self._dataflow == "os" or self._stages == 1
                else "(R - 1) * S + C - 1")

    @property
    def latency_formula(self):
        R, C = self._rows, self._cols
        S = self._stages
        pre = "0" if self._dataflow == "os" else "R"
        os_ = self._dataflow == "os"
        # S = 1 (the one-cycle PE): the formulas as before pipelined PEs existed
        drain = ("R" if S == 1 else "R + S - 1") if os_ else ("1" if S == 1 else "S")
        return {
            "fold_period": f"P = {pre} + T + (R - 1)" + ("" if os_ or S == 1 else " * S")
                           + " + (C - 1)",
            "T": {"ws": "M (ws: streamed ifmap rows)", "os": "K (os)",
                  "is": "N (is: streamed filter columns)"}[self._dataflow],
            "folds": {"ws": "ceil(K/R) * ceil(N/C)", "os": "ceil(M/R) * ceil(N/C)",
                      "is": "ceil(K/R) * ceil(M/C)"}[self._dataflow],
            "compute_cycles": "folds * P - 1 (cycle of the last MAC, first beat accepted at 0)",
            "gemm_latency": f"folds * P - 1 + {drain} (cycle of the last result beat)",
            "beat_to_result": (f"R + C - 1 = {self.latency}" if S == 1 else
                               f"R + C - 1 + S - 1 = {self.latency}" if os_ else
                               f"R * S + C - 1 = {self.latency}"),
            "R": R, "C": C, "S": S,
            "simulator": "lowbit.models.systolic.Schedule(M, K, N, R, C, dataflow, pe_stages)",
        }

    def gemm_cycles(self, M, K, N):
        """The :class:`~lowbit.models.systolic.Schedule` of a GEMM on this array.

        Its ``compute_cycles`` (cycle of the last MAC) and ``latency`` (cycle of the last result
        beat), counted from 0 = the cycle the first operand beat is accepted, are the RTL's with
        a source that always has the next beat ready and a sink that is always ready.
        """
        return Schedule(M, K, N, self._rows, self._cols, self._dataflow, self._stages)

    # -- documentation -----------------------------------------------------------------------
    def _field_doc(self, layout):
        parts = []
        for name, field in layout:
            parts.append(f"{name}[{field.offset + field.width - 1}:{field.offset}]")
        return ", ".join(parts)

    @property
    def port_docs(self):
        R, C = self._rows, self._cols
        spec = self._spec
        acc = (f"{spec.acc.name} code" if spec.kind == "fp"
               else f"signed {spec.acc_bits}-bit two's complement")
        psum = acc
        if self.kulisch:
            kw, klsb = spec.kulisch_register
            psum = (f"Kulisch state ({kw + 4} bits: fixed[{kw - 1}:0] signed two's complement, "
                    f"LSB weight 2^{klsb}; flags[{kw + 3}:{kw}]: bit {kw} NaN seen, "
                    f"{kw + 1} +Inf seen, {kw + 2} -Inf seen, {kw + 3} every product so far -0; "
                    f"empty sum {spec.empty_sum:#x})")
        aw = self._a_w
        if spec.kind == "overq":
            what = (f"OverQ {spec.bits}-bit code | {spec.overq_config.meta_bits}-bit metadata << "
                    f"{spec.bits}")
        else:
            what = f"{self._sa.name} code"
        fields = (f"a: {R} x ({what}) (lane i at bits [i*{aw}+:{aw}]) "
                  f"for array row i; mask: {R} bits, 1 = lane carries data; b: {C} x "
                  f"{self._sb.name} codes for column j ("
                  + ("filter row" if self._dataflow == "os" else "stationary row of a load beat")
                  + ")")
        if self._dataflow != "os":
            fields += f"; psum: {C} x {psum} entering the column tops"
            if spec.kind == "overq":
                fields += ("; wprev: load beats: the weight row above the tile (B[k0-1, :], 0 for "
                           "the first K-fold), the OverQ w_prev of PE row 0")
            fields += "; load: weight-row beat"
        fields += "; last: last data beat of a fold"
        accw = spec.result_width
        return {
            "i__valid": "operand beat valid",
            "i__ready": ("array accepts the operand beat (low for R+C-2 cycles after a last "
                         "beat)" if self._gap == R + C - 2 else
                         f"array accepts the operand beat (low for {self._gap_formula} = "
                         f"{self._gap} cycles after a last beat)"),
            "i__payload": f"operand beat, {self._in_layout.size} bits: "
                          f"{self._field_doc(self._in_layout)}; {fields}",
            "o__valid": "result beat valid",
            "o__ready": "sink accepts the result beat (low stalls the whole array)",
            "o__payload": f"result beat, {self._out_layout.size} bits: "
                          f"{self._field_doc(self._out_layout)}; acc: {C} x {acc} (column j at "
                          f"bits [j*{accw}+:{accw}]"
                          + ("; the Kulisch state rounded once (RNE) at the bottom edge"
                             if self.kulisch else "") + ")"
                          + (f"; state: {C} x {psum}, the exact partial sum (store it for the "
                             f"psum lanes of the next K-fold)"
                             if self.kulisch and self._dataflow != "os" else "")
                          + "; last: last result of a fold",
        }

    def contract(self):
        R, C = self._rows, self._cols
        spec = self._spec
        c = {
            "operation": "C[M,N] = A[M,K] @ B[K,N], tiled in folds",
            "rows": R, "cols": C, "dataflow": self._dataflow, "pe": spec.kind,
            "a_format": spec.a.name, "b_format": spec.b.name,
            "accumulation_order": "one chain per output over k = 0..K-1 increasing, from the "
                                  "empty sum (int 0, fp -0, kulisch 0 with the -0 flag); ws "
                                  "continues across K-folds via psum",
            "numerics": "lowbit.models.systolic.gemm_numerics with "
                        + ("IntPE" if spec.kind == "int" else
                           "KulischPE" if self.kulisch else "FpMacPE"),
            "schedule": "lowbit.models.systolic.Schedule (fold period, folds, compute_cycles, "
                        "latency)",
            "latency_cycles": self.latency,
            "latency_formula": self.latency_formula,
        }
        if spec.kind == "int":
            c.update(acc_bits=spec.acc_bits, overflow=spec.overflow, product="exact",
                     rounding="none (integers)")
        elif spec.kind == "overq":
            c["pe_contract"] = overq_contract("OverqStep", spec.overq_config, spec.w_bits,
                                              spec.acc_bits, spec.shift_at)
            c.update(acc_bits=spec.acc_bits, overflow="wrap",
                     numerics="lowbit.models.overq.overq_matmul (w_prev of slot k is B[k-1], "
                              "0 for k = 0)", a_format=f"overq int{spec.bits} + meta",
                     b_format=f"int{spec.w_bits}")
        elif self.kulisch:
            ws = self._dataflow != "os"
            kw, klsb = spec.kulisch_register
            c.update(acc_format=spec.acc.name, mode=spec.mode, product="exact",
                     rounding="none while accumulating (exact fixed-point sum); RNE once to "
                              "acc_format at the bottom edge of each column",
                     subnormals="flushed" if spec.flush_subnormals else "exact",
                     overflow="read-out: +-max (finite operands)" if spec.saturate
                     else "read-out: +-Inf",
                     kulisch={"width": kw, "lsb_exponent": klsb,
                              "state_bits": self._ps_w, "exact_terms": spec.terms,
                              "beyond_terms": "wraps modulo 2^width",
                              "flags": ", ".join(
                                  f"bit {kw + (flag.bit_length() - 1)} {what}" for flag, what in
                                  ((model.K_NAN, "NaN seen"), (model.K_PINF, "+Inf seen"),
                                   (model.K_NINF, "-Inf seen"),
                                   (model.K_NEGZERO, "every product so far -0"))),
                              "empty_sum": spec.empty_sum,
                              "k_folds": ("the exact state leaves on the result beats' state "
                                          "field and re-enters on the psum lanes: one rounding "
                                          "over all K") if ws else
                                         "none needed (os: a fold covers all of K)",
                              "where": ("the state travels down the columns; read-out units: "
                                        "one per column, after the de-skew registers")
                                       if ws else
                                       ("each PE keeps the state; on drain the state shifts "
                                        "down the drain registers and one read-out unit per "
                                        "column rounds it at the bottom edge")})
        else:
            c.update(acc_format=spec.acc.name, mode=spec.mode, product="exact",
                     rounding="RNE once per step" if spec.mode == "fused"
                     else "product RNE to acc format, then add and RNE",
                     subnormals="flushed" if spec.flush_subnormals else "exact",
                     overflow="+-max (finite operands)" if spec.saturate else "+-Inf")
        c.update(self._contract_io())
        return c

    def _contract_io(self):
        """The contract entries that describe the ports' contents and the PE's numbers."""
        R, C = self._rows, self._cols
        spec = self._spec
        ws = self._dataflow != "os"
        overq = spec.kind == "overq"
        acc_f = spec.acc if spec.kind == "fp" else formats.int_format(spec.acc_bits)
        signed = spec.kind != "fp"
        # the a lanes stream A (IS: B's columns), the b lanes carry B (IS: A^T)
        sa, sb = ("b", "a") if self._dataflow == "is" else ("a", "b")
        a_lane = {"format": sa, "signed": False}
        if overq:
            a_lane = {"format": "a", "signed": False,
                      "meaning": f"code | meta << {spec.bits} (meta: {spec.overq_config.meta_bits}"
                                 f" bits, codes {list(spec.overq_config.meta_codes)})"}
        state = (f"packed Kulisch state: fixed (signed, bits [0, {spec.kulisch_width})) | flags "
                 f"<< {spec.kulisch_width}" if self.kulisch else None)
        psum = {"format": "acc", "signed": signed} if not self.kulisch else {"meaning": state}
        roles_in = {"a": a_lane,
                    "mask": {"lanes": R, "lane_bits": 1, "order": "bit i: lane i",
                             "meaning": "1 = lane i carries data; a masked lane's PEs pass "
                                        "the partial sum through unchanged"},
                    "b": {"format": "b" if overq else sb, "signed": overq},
                    "psum": psum,
                    "wprev": {"format": "b", "signed": True,
                              "meaning": "load beats: the weight row above the tile (B[k0-1, :],"
                                         " 0 for the first K-fold), PE row 0's w_prev"},
                    "load": "1: a stationary-row beat (ws/is)", "last": "last data beat of a fold"}
        roles_out = {"acc": {"format": "acc", "signed": signed},
                     "state": {"meaning": state}, "last": "last result beat of a fold"}
        fmts = {"a": describe_format(spec.a), "b": describe_format(spec.b),
                "acc": describe_format(acc_f)}
        empty = spec.empty_sum
        P = self.latency_formula["fold_period"]
        if ws:
            order = (f"a fold is {R} load beats (load=1; b = one row of the stationary tile, "
                     "the tile's last row first; " + ("wprev = the weight row above the tile; "
                                                      if overq else "")
                     + "the other fields 0) then T data beats (load=0; a = lane i: row i of the "
                     "tile's K range, mask = 1 for the lanes inside K, psum = the previous "
                     f"K-fold's results, or the empty sum {empty:#x} for the first K-fold, "
                     "last = 1 on the fold's last data beat)")
            results = (f"one result beat per data beat, {self.latency} cycles after it (acc: "
                       "the sums of the beat's row" + ("; state: the exact states for the "
                                                       "next K-fold's psum lanes"
                                                       if self.kulisch else "") + ")")
        else:
            order = ("a fold is K data beats: a = lane i: A[m0 + i, k], b = lane j: "
                     "B[k, n0 + j], mask = 1 for the rows inside M, last = 1 on the fold's last "
                     "beat; each PE restarts from the empty sum on a fold's first beat")
            results = (f"{R} result beats per fold, array row {R - 1} first, the first "
                       f"{self.latency} cycles after the fold's last beat")
        c = {
            "formats": fmts,
            "packing": {"i__payload": layout_packing(self._in_layout, roles_in),
                        "o__payload": layout_packing(self._out_layout, roles_out)},
            "empty_sum": empty,
            "protocol": {
                "beats": order, "results": results,
                "ready": f"i__ready is low for {self._gap_formula} = {self._gap} cycles after a "
                         "last beat is accepted, and while o__valid is high and o__ready low "
                         "(the whole array stalls)",
                "fold_period": P, "schedule": "lowbit.models.systolic.Schedule(M, K, N, R, C, "
                                              "dataflow, pe_stages): beat k of fold f accepted "
                                              "at f * P + k",
                "pe_stages": self._stages},
            "reset": {"signal": "rst", "synchronous": True, "active": "high",
                      "clears": "every register to its init value: operand, psum, drain and "
                                "weight registers 0, "
                                + ("OS accumulators the empty sum, " if not ws else "")
                                + "the fold control idle (no fold pending)",
                      "outputs_after_reset": {"i__ready": 1, "o__valid": 0},
                      "idle_inputs": {"i__valid": 0, "o__ready": 1}},
        }
        pe = {"kind": spec.kind, "a": fmt_ref("a"), "b": fmt_ref("b")}
        if spec.kind == "int":
            pe.update(acc_bits=spec.acc_bits, overflow=spec.overflow)
            c["nan_outputs"] = {"o__payload.acc": []}
        elif overq:
            pe.update(acc_bits=spec.acc_bits, bits=spec.bits, w_bits=spec.w_bits,
                      cascade=spec.cascade, precision=spec.precision, shift_at=spec.shift_at)
            c["nan_outputs"] = {"o__payload.acc": []}
        else:
            pe.update(acc=fmt_ref("acc"), mode=spec.mode, flush_subnormals=spec.flush_subnormals,
                      saturate=spec.saturate, **({"terms": spec.terms} if self.kulisch else {}))
            num = mac_numerics(spec.a, spec.b, spec.acc, spec.mode, spec.flush_subnormals,
                               spec.saturate, spec.terms, "o__payload.acc")
            num.pop("kulisch", None)
            if ws:      # the psum lanes are inputs: any NaN code entering gives the canonical NaN
                num["nan_outputs"] = {"o__payload.acc": [spec.acc.nan_code]}
                num["nan_when"] = "a NaN psum lane, or " + num["nan_when"]
            c.update(num)
        c["golden_model"] = golden(
            "lowbit.models.systolic.gemm_numerics",
            "the (M, N) GEMM in the array's accumulation order: "
            + ("signed values (acc lanes in two's complement)" if signed else
               "acc_format result codes"),
            rows=R, cols=C, dataflow=self._dataflow,
            pe=construct("lowbit.models.systolic.PESpec", **pe))
        return c

    # -- packing of the port payloads ----------------------------------------------------------
    def pack_operand(self, a=None, mask=None, b=None, psum=None, load=0, last=0, wprev=None):
        """The ``i.payload`` bits of one beat as a Python int (missing fields are 0)."""
        L = self._in_layout
        word = 0

        def put(name, values, width):
            nonlocal word
            off = L[name].offset
            for k, v in enumerate(values):
                word |= (int(v) & ((1 << width) - 1)) << (off + k * width)
        if a is not None:
            put("a", a, self._a_w)
        if mask is not None:
            put("mask", mask, 1)
        if b is not None:
            put("b", b, self._b_w)
        if wprev is not None:
            put("wprev", wprev, self._b_w)
        if psum is not None:
            put("psum", psum, self._ps_w)
        if load:
            word |= 1 << L["load"].offset
        if last:
            word |= 1 << L["last"].offset
        return word

    def unpack_result(self, word):
        """``(acc codes as a list of C unsigned ints, last)`` of an ``o.payload`` value."""
        word = int(word)
        L = self._out_layout
        w = self._spec.result_width
        off = L["acc"].offset
        acc = [(word >> (off + j * w)) & ((1 << w) - 1) for j in range(self._cols)]
        return acc, (word >> L["last"].offset) & 1

    def unpack_state(self, word):
        """Kulisch PE, WS/IS: the ``C`` packed exact states of an ``o.payload`` value (what the
        host stores for the psum lanes of the next K-fold)."""
        if "state" not in dict(iter(self._out_layout)):
            raise ValueError("unpack_state needs pe 'fp' with mode 'kulisch' and dataflow ws or is")
        word = int(word)
        w = self._ps_w
        off = self._out_layout["state"].offset
        return [(word >> (off + j * w)) & ((1 << w) - 1) for j in range(self._cols)]

    # -- hardware ------------------------------------------------------------------------------
    def _read(self, m, state, name):
        """Kulisch read-out (combinational): the packed state rounded once to ``acc_format``."""
        spec = self._spec
        kw, klsb = spec.kulisch_register
        return kulisch_read_into(m, spec.acc, kw, klsb, state[:kw], state[kw:], spec.saturate,
                                 spec.flush_subnormals, name=name)

    def elaborate(self, platform):
        m = Module()
        core = Module()
        R, C, W = self._rows, self._cols, self._ps_w
        ws = self._dataflow != "os"          # IS is the WS hardware
        G = self._gap
        S = self._stages
        overq = self._spec.kind == "overq"

        # back-pressure: one enable on every register of the array
        run = Signal()
        m.d.comb += run.eq(~self.o.valid | self.o.ready)

        # fold control: after a last beat, R+C-2 cycles without accepting (skew drain)
        pend = Signal()
        cnt = Signal(range(G + 1))
        due = Signal()
        core.d.comb += due.eq(pend & (cnt == 0))
        m.d.comb += self.i.ready.eq(run & (~pend | (cnt == 0)))
        p = self.i.payload
        take = Signal()
        m.d.comb += take.eq(self.i.valid & self.i.ready)
        beat = Signal()
        load = Signal()
        if ws:
            m.d.comb += [beat.eq(take & ~p.load), load.eq(take & p.load)]
        else:
            m.d.comb += beat.eq(take)
        with core.If(beat & p.last):
            core.d.sync += [pend.eq(1), cnt.eq(G)]
        with core.Elif(due):
            core.d.sync += pend.eq(0)
        with core.Elif(pend):
            core.d.sync += cnt.eq(cnt - 1)
        fresh = Signal(init=1)          # next data beat starts a fold (OS restart)
        with core.If(beat):
            core.d.sync += fresh.eq(p.last)

        def delay(sig, n, name):
            # n registers in a row, as one shift register of n * width bits (one signal per
            # lane, not one per register: the skew lines hold O(R^2 + C^2) registers)
            if n == 0:
                return sig
            w = len(sig)
            r = Signal(n * w, name=f"{name}_sr")
            core.d.sync += r.eq(sig if n == 1 else Cat(sig, r[:(n - 1) * w]))
            return r[(n - 1) * w:]

        # the PEs: R rows of C (one SystolicRow module, one SystolicPE module), every register
        # behind ``run``
        report = getattr(platform, "report_progress", None)
        rows = _place(m, lambda: SystolicRow(self._spec, self._dataflow, C, self._stages),
                      [f"row_{i}" for i in range(R)], platform,
                      None if report is None else lambda k: report("PEs", k * C, R * C))
        for row in rows:
            m.d.comb += row.en.eq(run)

        # left edge: a lanes skewed by i (value, valid, first), then PE to PE to the right
        for i in range(R):
            a_i = Signal(self._a_w, name=f"a_in{i}")
            v_i = Signal(name=f"av_in{i}")
            f_i = Signal(name=f"af_in{i}")
            m.d.comb += [a_i.eq(p.a[i]), v_i.eq(beat & p.mask[i]), f_i.eq(beat & fresh)]
            # WS/IS: the psum stays S cycles in each PE, so lane i is skewed by i * S to meet it
            sk = i if not ws else i * S
            m.d.comb += [rows[i].a.eq(delay(a_i, sk, f"ska{i}")),
                         rows[i].av.eq(delay(v_i, sk, f"skv{i}")),
                         rows[i].af.eq(delay(f_i, sk, f"skf{i}"))]

        out_acc = [None] * C
        bottom = rows[R - 1]
        if ws:
            # stationary weights, shifted down on load beats (last tile row first)
            for i in range(R):
                m.d.comb += [rows[i].w_i.eq(p.b if i == 0 else rows[i - 1].w_o),
                             rows[i].load.eq(load)]
                if i > 0:
                    m.d.comb += rows[i].ps.eq(rows[i - 1].ps_o)
                    m.d.comb += [rows[i].pv.eq(rows[i - 1].pv_o), rows[i].pl.eq(rows[i - 1].pl_o)]
            if overq:
                # PE row 0's w_prev: the weight row above the tile, loaded on load beats
                wtop = Signal.like(p.wprev, name="wprev")
                with core.If(load):
                    core.d.sync += wtop.eq(p.wprev)
                for i in range(R):
                    m.d.comb += rows[i].wp.eq(wtop if i == 0 else rows[i - 1].w_o)
            for j in range(C):
                # psum lane j enters the top of column j through j skew registers
                ps = Signal(W, name=f"ps_in{j}")
                pv = Signal(name=f"pv_in{j}")
                pl = Signal(name=f"pl_in{j}")
                m.d.comb += [ps.eq(p.psum[j]), pv.eq(beat), pl.eq(beat & p.last)]
                m.d.comb += [rows[0].ps[j].eq(delay(ps, j, f"skp{j}")),
                             rows[0].pv[j].eq(delay(pv, j, f"skpv{j}")),
                             rows[0].pl[j].eq(delay(pl, j, f"skpl{j}"))]
                out_acc[j] = delay(bottom.ps_o[j], C - 1 - j, f"dsk{j}")
                if self.kulisch:
                    # the exact state leaves (for the next K-fold) and is rounded once here,
                    # after the de-skew registers: they hold only the state, one read-out unit
                    # per column
                    m.d.comb += self.o.payload.state[j].eq(out_acc[j])
                    out_acc[j] = self._read(m, out_acc[j], f"kr{j}")
            m.d.comb += [self.o.valid.eq(bottom.pv_o[C - 1]),
                         self.o.payload.last.eq(bottom.pl_o[C - 1])]
        else:
            # the accumulators take a beat's term S - 1 cycles after its operands: the drain
            # copy waits as long (the next fold's first accumulation comes as late)
            copy = Signal()
            core.d.comb += copy.eq(delay(due, S - 1, "copy"))
            for j in range(C):
                b_j = Signal(self._b_w, name=f"b_in{j}")
                m.d.comb += b_j.eq(p.b[j])
                m.d.comb += rows[0].b[j].eq(delay(b_j, j, f"skb{j}"))
            for i in range(R):
                m.d.comb += rows[i].copy.eq(copy)
                # drain registers: row i's holds row i-1's accumulator after the copy, then
                # shifts down; row 1's holds (no drain register above it), row 0's is unused
                if i == 0:
                    m.d.comb += [rows[i].acc_up.eq(0), rows[i].drain_up.eq(0)]
                else:
                    m.d.comb += [rows[i].b.eq(rows[i - 1].b_o),
                                 rows[i].acc_up.eq(rows[i - 1].acc_o),
                                 rows[i].drain_up.eq(rows[i].drain_o if i == 1
                                                     else rows[i - 1].drain_o)]
            for j in range(C):
                out_acc[j] = (Mux(copy, bottom.acc_o[j], bottom.drain_o[j]) if R > 1
                              else bottom.acc_o[j])
                if self.kulisch:
                    # the drain registers shift the exact state; one read-out unit per column
                    # rounds it at the bottom edge (cheaper than one per PE, see the docstring)
                    st = Signal(W, name=f"kstate{j}")
                    m.d.comb += st.eq(out_acc[j])
                    out_acc[j] = self._read(m, st, f"kr{j}")
            left = Signal(range(R))
            with core.If(copy):
                core.d.sync += left.eq(R - 1)
            with core.Elif(left != 0):
                core.d.sync += left.eq(left - 1)
            m.d.comb += [self.o.valid.eq(copy | (left != 0)),
                         self.o.payload.last.eq(Mux(copy, int(R == 1), left == 1))]
        for j in range(C):
            m.d.comb += self.o.payload.acc[j].eq(out_acc[j])
        m.submodules.core = EnableInserter({"sync": run})(core)
        return m


def _catalog_array(rows, cols, pe, dataflow, pe_stages=1):
    """The catalogue's builder: ``pe`` is a PE name only (the one ``--pe`` vocabulary of the
    CLI); the PE kinds with separate parameters are for the Python API."""
    return SystolicArray(rows, cols, parse_pe(pe), dataflow=dataflow, pe_stages=pe_stages)


UNITS = [
    Unit("systolic", _catalog_array, (
        Param("rows", "--rows", "int", 4, f"array rows R (1..{MAX_DIM})"),
        Param("cols", "--cols", "int", 4, f"array columns C (1..{MAX_DIM})"),
        Param("pe", "--pe", "str", "int8", "processing element, a PE name: int8, uint8xint4_acc24_"
              "saturate, e4m3_fp32, e5m2xe4m3_fp16_two_roundings_ftz_sat, e4m3_kulisch, "
              "e4m3_bf16_kulisch_t1024, overq4, overq8_w8_acc32_c2_noprec_operands, ... "
              "(lowbit.models.systolic.parse_pe)"),
        Param("dataflow", "--dataflow", "choice", "ws",
              "weight-, output- or input-stationary (is: the ws hardware, operands swapped)",
              choices=DATAFLOWS),
        Param("pe_stages", "--pe-stages", "int", 1,
              "PE depth S in cycles (pipelined PEs): int 1..3, overq 1..2, fp fused/two_roundings "
              "1..6 (os: 1..2, the accumulation loop), kulisch 1..4 (lowbit.hdl.systolic."
              "pe_cut_points)"),
    ), "R x C systolic GEMM array of one PE (int, fp fused / two roundings / Kulisch, or OverQ), "
       "weight-, output- or input-stationary, skew/de-skew registers, valid/ready streams; "
       "cycle schedule of lowbit.models.systolic"),
]
