"""Systolic GEMM array (Amaranth 0.5): ``SystolicArray``, weight- or output-stationary.

The array follows, cycle for cycle, the schedule that the behavioural simulator documents and
counts (:mod:`lowbit.sim.systolic`, module docstring "Timing model"; the mapping is SCALE-Sim
v3's, ``scalesim/compute/systolic_compute_{os,ws}.py``), so that its cycle counts are the
simulator's :class:`lowbit.sim.systolic.Schedule` figures and the co-simulation can check them.

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
Golden: :class:`lowbit.sim.systolic.KulischPE` (``kulisch_step`` / ``kulisch_read``).

Numerics: every output is one accumulation chain over ``k = 0 .. K-1`` in increasing order,
``acc <- step(acc, A[m, k], B[k, n])`` from the empty sum, with the PE's step function, which is
exactly :func:`lowbit.sim.systolic.gemm_numerics` with :class:`lowbit.sim.systolic.IntPE` /
:class:`lowbit.sim.systolic.FpMacPE` / :class:`lowbit.sim.systolic.KulischPE` (themselves
:func:`lowbit.models.mac.int_mac_step` / :func:`lowbit.models.mac.fp_mac_step` /
:func:`lowbit.models.mac.kulisch_step`). In WS the chain crosses K-folds through the ``psum``
lanes (the host's ofmap buffer).

Not (yet) supported: pipelined PEs and the shared-exponent PEs.
"""

import operator

import numpy as np
from amaranth.hdl import Cat, EnableInserter, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.models import formats
from lowbit.models import mac as model

from .catalog import Param, Unit

__all__ = ["SystolicArray", "GemmTiler", "gemm_program", "cosim_gemm", "UNITS", "PES",
           "DATAFLOWS", "MAX_DIM"]

PES = ("int", "fp", "overq")
DATAFLOWS = ("ws", "os", "is")
MAX_DIM = 64


def _dim(name, value):
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"{name} must be an integer from 1 to {MAX_DIM}, not {value!r}")
    v = operator.index(value)
    if not 1 <= v <= MAX_DIM:
        raise ValueError(f"{name} must be an integer from 1 to {MAX_DIM}, not {value!r}")
    return v


def connect_acc(m, step, acc_in):
    """Drive a PE step's accumulator input from ``acc_in``; return its accumulator output.

    INT/FP steps (``acc_in``/``acc_out``): the code. Kulisch steps (``fixed_in``/``flags_in``):
    ``acc_in`` and the result are the packed state ``Cat(fixed, flags)``. Not for the OverQ
    step. Shared by :class:`SystolicArray` and the cost model's single-PE build
    (``lowbit.fpga.cost_model``), so both wire a PE alike.
    """
    if hasattr(step, "fixed_in"):
        kw = len(step.fixed_in)
        m.d.comb += [step.fixed_in.eq(acc_in[:kw]), step.flags_in.eq(acc_in[kw:])]
        return Cat(step.fixed_out, step.flags_out)
    m.d.comb += step.acc_in.eq(acc_in)
    return step.acc_out


class SystolicArray(wiring.Component):
    """``rows x cols`` systolic GEMM array with skew/de-skew registers and stream ports.

    Parameters
    ----------
    rows, cols : int
        Array height ``R`` and width ``C``, 1..64.
    pe : str
        ``"int"`` (:class:`~lowbit.hdl.int_mac.IntMacStep`), ``"fp"``
        (:class:`~lowbit.hdl.fp_mac.FpMacStep`) or ``"overq"``
        (:class:`~lowbit.hdl.overq_pe.OverqStep`).
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
    bits, w_bits, cascade, precision, shift_at :
        OverQ PE: as :class:`~lowbit.hdl.overq_pe.OverqStep` (``acc_bits`` too; it wraps).

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

    Latency: :attr:`latency` ``= R + C - 1`` cycles from a WS/IS data beat to its result beat, or
    from an OS fold's last beat to its first result beat; whole GEMMs:
    :meth:`gemm_cycles`.

    Raises
    ------
    ValueError
        A parameter out of range (the message names it and the allowed values).
    """

    def __init__(self, rows=4, cols=4, pe="int", dataflow="ws", a_format=None, b_format=None,
                 acc_bits=32, overflow="wrap", acc_format="fp32", mode="fused",
                 flush_subnormals=False, saturate=False, bits=4, w_bits=4, cascade=1,
                 precision=True, shift_at="product", terms=4096):
        self._rows = _dim("rows", rows)
        self._cols = _dim("cols", cols)
        if pe not in PES:
            raise ValueError(f"pe must be one of {', '.join(PES)}, not {pe!r}")
        if dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, not {dataflow!r}")
        if dataflow == "is" and pe == "overq":
            raise ValueError("dataflow 'is' is not available with pe 'overq' (its metadata "
                             "travels with the streamed activations)")
        self._pe, self._dataflow = pe, dataflow
        self._mode = None
        self._ps_w = None
        if pe == "int":
            self._a = model.check_int_operand("int8" if a_format is None else a_format, "a_format")
            self._b = model.check_int_operand("int8" if b_format is None else b_format, "b_format")
            self._acc_bits = model.check_acc_bits(acc_bits)
            self._overflow = model.check_overflow(overflow)
            self._acc_w = self._acc_bits
            self._init = 0
            a_w, b_w = self._a.bits, self._b.bits
        elif pe == "overq":
            from .overq_pe import _Params as _OverqParams
            q = _OverqParams()
            q._setup(bits, w_bits, acc_bits, cascade, precision, shift_at)   # validates
            self._q = q
            self._acc_bits = self._acc_w = q.acc_bits
            self._overflow = "wrap"
            self._init = 0
            self._a = q.config.fmt
            self._b = formats.int_format(q.w_bits)
            a_w, b_w = q.bits + q.meta_bits, q.w_bits
        else:
            self._a = model.check_float_operand("e4m3" if a_format is None else a_format,
                                                "a_format")
            self._b = model.check_float_operand("e4m3" if b_format is None else b_format,
                                                "b_format")
            self._acc = model.check_acc_format(acc_format)
            self._mode = model.check_mode(mode)
            self._flush, self._sat = bool(flush_subnormals), bool(saturate)
            self._acc_w = self._acc.bits
            self._init = 1 << (self._acc.bits - 1)       # -0: the golden model's empty sum
            if self._mode == "kulisch":
                self._terms = model.check_terms(terms)
                self._kw, self._klsb = model.kulisch_width(self._a, self._b, self._terms)
                # the state: fixed (signed kw bits) | flags << kw; a new sum is 0 with the -0 flag
                self._ps_w = self._kw + 4
                self._init = model.K_NEGZERO << self._kw
            a_w, b_w = self._a.bits, self._b.bits
        if self._ps_w is None:
            self._ps_w = self._acc_w                      # psum lanes = result codes
        # streamed (a lanes) and stationary (b lanes) operand formats: IS streams B's columns
        self._sa, self._sb = (self._b, self._a) if dataflow == "is" else (self._a, self._b)
        if dataflow == "is":
            a_w, b_w = b_w, a_w
        self._a_w, self._b_w = a_w, b_w
        R, C = self._rows, self._cols
        fields = {"a": data.ArrayLayout(a_w, R), "mask": R, "b": data.ArrayLayout(b_w, C)}
        if dataflow != "os":
            fields["psum"] = data.ArrayLayout(self._ps_w, C)
            if pe == "overq":
                fields["wprev"] = data.ArrayLayout(b_w, C)
            fields["load"] = 1
        fields["last"] = 1
        self._in_layout = data.StructLayout(fields)
        out_fields = {"acc": data.ArrayLayout(self._acc_w, C)}
        if self.kulisch and dataflow != "os":
            out_fields["state"] = data.ArrayLayout(self._ps_w, C)
        out_fields["last"] = 1
        self._out_layout = data.StructLayout(out_fields)
        super().__init__({"i": In(stream.Signature(self._in_layout)),
                          "o": Out(stream.Signature(self._out_layout))})

    # -- parameters --------------------------------------------------------------------------
    rows = property(lambda self: self._rows)
    cols = property(lambda self: self._cols)
    pe = property(lambda self: self._pe)
    dataflow = property(lambda self: self._dataflow)
    a_format = property(lambda self: self._a)
    b_format = property(lambda self: self._b)
    acc_width = property(lambda self: self._acc_w)
    psum_width = property(lambda self: self._ps_w)
    mode = property(lambda self: self._mode)
    operand_layout = property(lambda self: self._in_layout)
    result_layout = property(lambda self: self._out_layout)

    @property
    def kulisch(self):
        """True for the FP PE with the Kulisch (exact fixed-point) accumulator."""
        return self._mode == "kulisch"

    @property
    def kulisch_width(self):
        """``(width, lsb_exp)`` of the Kulisch register (``None`` for other PEs)."""
        return (self._kw, self._klsb) if self.kulisch else None

    @property
    def empty_sum(self):
        """psum-lane value of the empty sum (INT: 0; FP: ``-0``; Kulisch: the packed new-sum
        state, ``fixed = 0`` with the -0 flag: ``8 << width``)."""
        return self._init

    @property
    def latency(self):
        """``R + C - 1``: data beat to result beat (WS); fold's last beat to first result (OS)."""
        return self._rows + self._cols - 1

    @property
    def latency_formula(self):
        R, C = self._rows, self._cols
        pre = "0" if self._dataflow == "os" else "R"
        drain = "R" if self._dataflow == "os" else "1"
        return {
            "fold_period": f"P = {pre} + T + (R - 1) + (C - 1)",
            "T": {"ws": "M (ws: streamed ifmap rows)", "os": "K (os)",
                  "is": "N (is: streamed filter columns)"}[self._dataflow],
            "folds": {"ws": "ceil(K/R) * ceil(N/C)", "os": "ceil(M/R) * ceil(N/C)",
                      "is": "ceil(K/R) * ceil(M/C)"}[self._dataflow],
            "compute_cycles": "folds * P - 1 (cycle of the last MAC, first beat accepted at 0)",
            "gemm_latency": f"folds * P - 1 + {drain} (cycle of the last result beat)",
            "beat_to_result": f"R + C - 1 = {R + C - 1}",
            "R": R, "C": C,
            "simulator": "lowbit.sim.systolic.Schedule(M, K, N, R, C, dataflow)",
        }

    def gemm_cycles(self, M, K, N):
        """The simulator's :class:`~lowbit.sim.systolic.Schedule` of a GEMM on this array.

        Its ``compute_cycles`` (cycle of the last MAC) and ``latency`` (cycle of the last result
        beat), counted from 0 = the cycle the first operand beat is accepted, are the RTL's with
        a source that always has the next beat ready and a sink that is always ready.
        """
        from lowbit.sim.systolic import Schedule
        return Schedule(M, K, N, self._rows, self._cols, self._dataflow)

    def golden_pe(self):
        """The :class:`lowbit.sim.systolic.PEDatapath` of this array's PE (golden numerics);
        ``None`` for the OverQ PE (see :meth:`golden_gemm`)."""
        from lowbit.sim.systolic import FpMacPE, IntPE, KulischPE
        if self._pe == "overq":
            return None
        if self._pe == "int":
            return IntPE(self._a, self._b, self._acc_bits, self._overflow)
        if self.kulisch:
            return KulischPE(self._a, self._b, self._acc, self._terms, self._flush, self._sat)
        return FpMacPE(self._a, self._b, self._acc, self._mode, self._flush, self._sat)

    def golden_state(self, A, B):
        """Kulisch PE: the exact accumulator states of the GEMM (what the ``state`` fields of the
        result beats carry and the psum lanes take), packed as ``fixed mod 2^width | flags <<
        width`` (object array of ints): :func:`lowbit.sim.systolic.gemm_numerics` with
        ``KulischPE(..., output="state")``."""
        if not self.kulisch:
            raise ValueError("golden_state needs pe 'fp' with mode 'kulisch'")
        from lowbit.sim.systolic import ArrayConfig, KulischPE, gemm_numerics
        pe = KulischPE(self._a, self._b, self._acc, self._terms, self._flush, self._sat,
                       output="state")
        cfg = ArrayConfig(rows=self._rows, cols=self._cols, dataflow=self._dataflow)
        return np.asarray(gemm_numerics(np.asarray(A), np.asarray(B), cfg, pe=pe), dtype=object)

    def golden_gemm(self, A, B):
        """The golden GEMM in this array's accumulation order (result representation of
        :meth:`to_golden`): :func:`lowbit.sim.systolic.gemm_numerics` with :meth:`golden_pe`, or
        for the OverQ PE :func:`lowbit.models.overq.overq_matmul` (``A`` lanes are
        ``code | meta << bits``, ``B`` signed weight values; the accumulator wraps, so the sum
        does not depend on the order)."""
        A, B = np.asarray(A), np.asarray(B)
        if self._pe == "overq":
            from lowbit.models.overq import overq_matmul
            q = self._q
            A = A.astype(np.int64)
            return overq_matmul(A & ((1 << q.bits) - 1), A >> q.bits, B.astype(np.int64),
                                q.config, q.w_bits, q.acc_bits)
        from lowbit.sim.systolic import ArrayConfig, gemm_numerics
        cfg = ArrayConfig(rows=self._rows, cols=self._cols, dataflow=self._dataflow)
        return np.asarray(gemm_numerics(A, B, cfg, pe=self.golden_pe()))

    # -- documentation -----------------------------------------------------------------------
    def _field_doc(self, layout):
        parts = []
        for name, field in layout:
            parts.append(f"{name}[{field.offset + field.width - 1}:{field.offset}]")
        return ", ".join(parts)

    @property
    def port_docs(self):
        R, C = self._rows, self._cols
        acc = (f"{self._acc.name} code" if self._pe == "fp"
               else f"signed {self._acc_bits}-bit two's complement")
        psum = acc
        if self.kulisch:
            kw = self._kw
            psum = (f"Kulisch state ({kw + 4} bits: fixed[{kw - 1}:0] signed two's complement, "
                    f"LSB weight 2^{self._klsb}; flags[{kw + 3}:{kw}]: bit {kw} NaN seen, "
                    f"{kw + 1} +Inf seen, {kw + 2} -Inf seen, {kw + 3} every product so far -0; "
                    f"empty sum {self._init:#x})")
        aw, bw = self._a_w, self._b_w
        what = (f"OverQ {self._q.bits}-bit code | {self._q.meta_bits}-bit metadata << "
                f"{self._q.bits}" if self._pe == "overq" else f"{self._sa.name} code")
        fields = (f"a: {R} x ({what}) (lane i at bits [i*{aw}+:{aw}]) "
                  f"for array row i; mask: {R} bits, 1 = lane carries data; b: {C} x "
                  f"{self._sb.name} codes for column j ("
                  + ("filter row" if self._dataflow == "os" else "stationary row of a load beat")
                  + ")")
        if self._dataflow != "os":
            fields += f"; psum: {C} x {psum} entering the column tops"
            if self._pe == "overq":
                fields += ("; wprev: load beats: the weight row above the tile (B[k0-1, :], 0 for "
                           "the first K-fold), the OverQ w_prev of PE row 0")
            fields += "; load: weight-row beat"
        fields += "; last: last data beat of a fold"
        return {
            "i__valid": "operand beat valid",
            "i__ready": "array accepts the operand beat (low for R+C-2 cycles after a last beat)",
            "i__payload": f"operand beat, {self._in_layout.size} bits: "
                          f"{self._field_doc(self._in_layout)}; {fields}",
            "o__valid": "result beat valid",
            "o__ready": "sink accepts the result beat (low stalls the whole array)",
            "o__payload": f"result beat, {self._out_layout.size} bits: "
                          f"{self._field_doc(self._out_layout)}; acc: {C} x {acc} (column j at "
                          f"bits [j*{self._acc_w}+:{self._acc_w}]"
                          + ("; the Kulisch state rounded once (RNE) at the bottom edge"
                             if self.kulisch else "") + ")"
                          + (f"; state: {C} x {psum}, the exact partial sum (store it for the "
                             f"psum lanes of the next K-fold)"
                             if self.kulisch and self._dataflow != "os" else "")
                          + "; last: last result of a fold",
        }

    def contract(self):
        R, C = self._rows, self._cols
        c = {
            "operation": "C[M,N] = A[M,K] @ B[K,N], tiled in folds",
            "rows": R, "cols": C, "dataflow": self._dataflow, "pe": self._pe,
            "a_format": self._a.name, "b_format": self._b.name,
            "accumulation_order": "one chain per output over k = 0..K-1 increasing, from the "
                                  "empty sum (int 0, fp -0, kulisch 0 with the -0 flag); ws "
                                  "continues across K-folds via psum",
            "numerics": "lowbit.sim.systolic.gemm_numerics with "
                        + ("IntPE" if self._pe == "int" else
                           "KulischPE" if self.kulisch else "FpMacPE"),
            "schedule": "lowbit.sim.systolic Schedule (fold period, folds, compute_cycles, "
                        "latency)",
            "latency_cycles": self.latency,
            "latency_formula": self.latency_formula,
        }
        if self._pe == "int":
            c.update(acc_bits=self._acc_bits, overflow=self._overflow, product="exact",
                     rounding="none (integers)")
        elif self._pe == "overq":
            q = self._q
            c["pe_contract"] = q._contract("OverqStep")
            c.update(acc_bits=q.acc_bits, overflow="wrap",
                     numerics="lowbit.models.overq.overq_matmul (w_prev of slot k is B[k-1], "
                              "0 for k = 0)", a_format=f"overq int{q.bits} + meta",
                     b_format=f"int{q.w_bits}")
        elif self.kulisch:
            ws = self._dataflow != "os"
            c.update(acc_format=self._acc.name, mode=self._mode, product="exact",
                     rounding="none while accumulating (exact fixed-point sum); RNE once to "
                              "acc_format at the bottom edge of each column",
                     subnormals="flushed" if self._flush else "exact",
                     overflow="read-out: +-max (finite operands)" if self._sat
                     else "read-out: +-Inf",
                     kulisch={"width": self._kw, "lsb_exponent": self._klsb,
                              "state_bits": self._ps_w, "exact_terms": self._terms,
                              "beyond_terms": "wraps modulo 2^width",
                              "flags": "bit width+0 NaN, +1 +Inf, +2 -Inf, +3 all products -0",
                              "empty_sum": self._init,
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
            c.update(acc_format=self._acc.name, mode=self._mode, product="exact",
                     rounding="RNE once per step" if self._mode == "fused"
                     else "product RNE to acc format, then add and RNE",
                     subnormals="flushed" if self._flush else "exact",
                     overflow="+-max (finite operands)" if self._sat else "+-Inf")
        return c

    # -- packing helpers (test benches, cocotb) -----------------------------------------------
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
        w = self._acc_w
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

    def to_golden(self, codes):
        """Unsigned result codes -> :func:`~lowbit.sim.systolic.gemm_numerics`'s representation
        (INT: signed int64 values; FP: uint64 accumulator codes)."""
        codes = np.asarray(codes, dtype=object)
        if self._pe != "fp":
            w = self._acc_w
            return np.vectorize(lambda v: int(v) - (1 << w) if int(v) >> (w - 1) else int(v),
                                otypes=[np.int64])(codes)
        return codes.astype(np.uint64)

    def random_operands(self, M, K, N, rng, specials=0.0):
        """Random ``(A, B)`` operand codes; float NaN/Inf codes are replaced by 0 except in a
        fraction ``specials`` of the elements."""
        if self._pe == "overq":
            q = self._q
            codes = rng.integers(0, 1 << q.bits, (M, K))
            meta = rng.choice(np.asarray(q.config.meta_codes), (M, K))
            w = rng.integers(-(1 << (q.w_bits - 1)), 1 << (q.w_bits - 1), (K, N))
            return codes | (meta << q.bits), w
        out = []
        for fmt, shape in ((self._a, (M, K)), (self._b, (K, N))):
            x = rng.integers(0, 1 << fmt.bits, shape)
            if self._pe == "fp":
                bad = ~np.isfinite(fmt.decode(x)) & (rng.random(shape) >= specials)
                x[bad] = 0
            out.append(x)
        return tuple(out)

    # -- hardware ------------------------------------------------------------------------------
    def _step(self):
        if self._pe == "overq":
            from .overq_pe import OverqStep
            q = self._q
            return OverqStep(q.bits, q.w_bits, q.acc_bits, q.config.cascade, q.config.precision,
                             q.shift_at)
        # the product is exact and commutative, so IS may swap the multiplier's operands
        if self._pe == "int":
            from .int_mac import IntMacStep
            return IntMacStep(self._sa, self._sb, self._acc_bits, self._overflow)
        if self.kulisch:
            from .fp_mac import KulischStep
            return KulischStep(self._sa, self._sb, self._terms, self._flush)
        from .fp_mac import FpMacStep
        return FpMacStep(self._sa, self._sb, self._acc, self._mode, self._flush, self._sat)

    def _read(self, m, state, name):
        """Kulisch read-out (combinational): the packed state rounded once to ``acc_format``."""
        from .fp_mac import kulisch_read_into
        kw = self._kw
        return kulisch_read_into(m, self._acc, kw, self._klsb, state[:kw], state[kw:],
                                 self._sat, self._flush, name=name)

    def elaborate(self, platform):
        m = Module()
        core = Module()
        R, C, W = self._rows, self._cols, self._ps_w
        ws = self._dataflow != "os"          # IS is the WS hardware
        G = R + C - 2

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
            for k in range(n):
                r = Signal.like(sig, name=f"{name}_d{k}")
                core.d.sync += r.eq(sig)
                sig = r
            return sig

        # left edge: a lanes skewed by i (value, valid, first)
        ah = [[None] * C for _ in range(R)]
        for i in range(R):
            a_i = Signal(self._a_w, name=f"a_in{i}")
            v_i = Signal(name=f"av_in{i}")
            f_i = Signal(name=f"af_in{i}")
            m.d.comb += [a_i.eq(p.a[i]), v_i.eq(beat & p.mask[i]), f_i.eq(beat & fresh)]
            ah[i][0] = (delay(a_i, i, f"ska{i}"), delay(v_i, i, f"skv{i}"),
                        delay(f_i, i, f"skf{i}"))

        steps = {}
        for i in range(R):
            for j in range(C):
                s = self._step()
                core.submodules[f"pe_{i}_{j}"] = s
                steps[i, j] = s
                a, av, af = ah[i][j]
                if self._pe == "overq":
                    core.d.comb += [s.code.eq(a[:self._q.bits]), s.meta.eq(a[self._q.bits:])]
                else:
                    core.d.comb += s.a.eq(a)
                if j + 1 < C:
                    ra = Signal(self._a_w, name=f"a_{i}_{j}")
                    rv = Signal(name=f"av_{i}_{j}")
                    rf = Signal(name=f"af_{i}_{j}")
                    core.d.sync += [ra.eq(a), rv.eq(av), rf.eq(af)]
                    ah[i][j + 1] = (ra, rv, rf)

        out_acc = [None] * C
        if ws:
            # stationary weights, shifted down on load beats (last tile row first)
            w = [[Signal(self._b_w, name=f"w_{i}_{j}") for j in range(C)] for i in range(R)]
            overq = self._pe == "overq"
            if overq:
                wtop = [Signal(self._b_w, name=f"wprev_{j}") for j in range(C)]
            for j in range(C):
                with core.If(load):
                    core.d.sync += w[0][j].eq(p.b[j])
                    for i in range(1, R):
                        core.d.sync += w[i][j].eq(w[i - 1][j])
                    if overq:
                        core.d.sync += wtop[j].eq(p.wprev[j])
            for j in range(C):
                ps = Signal(W, name=f"ps_in{j}")
                pv = Signal(name=f"pv_in{j}")
                pl = Signal(name=f"pl_in{j}")
                m.d.comb += [ps.eq(p.psum[j]), pv.eq(beat), pl.eq(beat & p.last)]
                ps = delay(ps, j, f"skp{j}")
                pv = delay(pv, j, f"skpv{j}")
                pl = delay(pl, j, f"skpl{j}")
                for i in range(R):
                    s = steps[i, j]
                    av = ah[i][j][1]
                    if overq:
                        core.d.comb += [s.w.eq(w[i][j]), s.psum_in.eq(ps),
                                        s.w_prev.eq(w[i - 1][j] if i else wtop[j])]
                        s_out = s.psum_out
                    else:
                        core.d.comb += s.b.eq(w[i][j])
                        s_out = connect_acc(core, s, ps)
                    rp = Signal(W, name=f"psum_{i}_{j}")
                    rv = Signal(name=f"pv_{i}_{j}")
                    rl = Signal(name=f"pl_{i}_{j}")
                    core.d.sync += [rp.eq(Mux(av, s_out, ps)), rv.eq(pv), rl.eq(pl)]
                    ps, pv, pl = rp, rv, rl
                out_acc[j] = delay(ps, C - 1 - j, f"dsk{j}")
                if self.kulisch:
                    # the exact state leaves (for the next K-fold) and is rounded once here,
                    # after the de-skew registers: they hold only the state, one read-out unit
                    # per column
                    m.d.comb += self.o.payload.state[j].eq(out_acc[j])
                    out_acc[j] = self._read(m, out_acc[j], f"kr{j}")
                if j == C - 1:
                    o_valid, o_last = pv, pl
            m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.last.eq(o_last)]
        else:
            copy = Signal()
            core.d.comb += copy.eq(due)
            accs = [[Signal(W, init=self._init, name=f"acc_{i}_{j}") for j in range(C)]
                    for i in range(R)]
            for j in range(C):
                b_j = Signal(self._b_w, name=f"b_in{j}")
                m.d.comb += b_j.eq(p.b[j])
                b = delay(b_j, j, f"skb{j}")
                for i in range(R):
                    s = steps[i, j]
                    _, av, af = ah[i][j]
                    acc = accs[i][j]
                    if self._pe == "overq":
                        # w_prev: the weight of this PE's previous MAC (0 on a fold's first)
                        bp = Signal(self._b_w, name=f"bprev_{i}_{j}")
                        core.d.comb += [s.w.eq(b), s.w_prev.eq(Mux(af, 0, bp)),
                                        s.psum_in.eq(Mux(af, 0, acc))]
                        with core.If(av):
                            core.d.sync += [acc.eq(s.psum_out), bp.eq(b)]
                    else:
                        core.d.comb += s.b.eq(b)
                        s_out = connect_acc(core, s, Mux(af, self._init, acc))
                        with core.If(av):
                            core.d.sync += acc.eq(s_out)
                    if i + 1 < R:
                        rb = Signal(self._b_w, name=f"b_{i}_{j}")
                        core.d.sync += rb.eq(b)
                        b = rb
                # drain registers: d[i] holds row i-1 after the copy, then shifts down
                d = [None] + [Signal(W, name=f"drain_{i}_{j}") for i in range(1, R)]
                for i in range(1, R):
                    if i == 1:
                        with core.If(copy):
                            core.d.sync += d[i].eq(accs[0][j])
                    else:
                        core.d.sync += d[i].eq(Mux(copy, accs[i - 1][j], d[i - 1]))
                out_acc[j] = Mux(copy, accs[R - 1][j], d[R - 1]) if R > 1 else accs[0][j]
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


class GemmTiler:
    """Host side of a GEMM on a :class:`SystolicArray`: operand beats per fold, result placement.

    Follows the fold order of :class:`lowbit.sim.systolic.Schedule` (column fold outer, row fold
    inner) and its tiles (:meth:`~lowbit.sim.systolic.Schedule.fold_tile`). Used by the test
    benches (Amaranth simulator and cocotb).

    Parameters
    ----------
    array : SystolicArray
    a_codes : array (M, K), b_codes : array (K, N)
        Operand codes (bit patterns of the array's ``a_format`` / ``b_format``).
    """

    def __init__(self, array, a_codes, b_codes):
        self.array = array
        self.A = np.asarray(a_codes)
        self.B = np.asarray(b_codes)
        if self.A.ndim != 2 or self.B.ndim != 2 or self.A.shape[1] != self.B.shape[0]:
            raise ValueError(f"a_codes must be (M, K) and b_codes (K, N) with equal K, not "
                             f"{self.A.shape} and {self.B.shape}")
        M, K = self.A.shape
        N = self.B.shape[1]
        self.M, self.K, self.N = M, K, N
        self.sched = array.gemm_cycles(M, K, N)
        # WS streams A's rows against B tiles; IS streams B's columns against A^T tiles
        self._is = array.dataflow == "is"
        self._S, self._W = (self.B.T, self.A.T) if self._is else (self.A, self.B)
        self._col = "M" if self._is else "N"
        #: length of the streamed operand per fold (M for WS, N for IS, K for OS)
        self.T = self.sched.T

    def beats_per_fold(self):
        """Operand beats per fold (WS: ``R + M``; OS: ``K``)."""
        return self.K if self.array.dataflow == "os" else self.array.rows + self.T

    def beat(self, f, k, out=None):
        """Beat ``k`` of fold ``f``, packed; WS psum lanes read from ``out`` (the results so far:
        the host's ofmap buffer, ``(M, N)``) when the fold continues a previous K-fold. For the
        Kulisch PE ``out`` holds the exact states (the result beats' ``state`` fields, see
        :meth:`SystolicArray.unpack_state`), not the rounded codes."""
        arr, R, C = self.array, self.array.rows, self.array.cols
        tile = self.sched.fold_tile(f)
        if arr.dataflow != "os":
            (k0, k1), (n0, n1) = tile["K"], tile[self._col]
            S, Wt = self._S, self._W
            if k < R:
                w = np.zeros(C, dtype=np.int64)
                r = R - 1 - k
                if r < k1 - k0:
                    w[:n1 - n0] = Wt[k0 + r, n0:n1]
                wprev = None
                if arr.pe == "overq":
                    wprev = np.zeros(C, dtype=np.int64)
                    if k0:
                        wprev[:n1 - n0] = Wt[k0 - 1, n0:n1]
                return arr.pack_operand(b=w, load=1, wprev=wprev)
            t = k - R
            a = np.zeros(R, dtype=np.int64)
            a[:k1 - k0] = S[t, k0:k1]
            ps = [arr.empty_sum] * C
            if k0 > 0:
                ps[:n1 - n0] = list(out[n0:n1, t] if self._is else out[t, n0:n1])
            return arr.pack_operand(a=a, mask=[int(i < k1 - k0) for i in range(R)], psum=ps,
                                    last=t == self.T - 1)
        (m0, m1), (n0, n1) = tile["M"], tile["N"]
        a = np.zeros(R, dtype=np.int64)
        a[:m1 - m0] = self.A[m0:m1, k]
        b = np.zeros(C, dtype=np.int64)
        b[:n1 - n0] = self.B[k, n0:n1]
        return arr.pack_operand(a=a, mask=[int(i < m1 - m0) for i in range(R)], b=b,
                                last=k == self.K - 1)

    def results_per_fold(self):
        """Result beats per fold (WS: ``M``; IS: ``N``; OS: ``R``)."""
        return self.array.rows if self.array.dataflow == "os" else self.T

    def place(self, f, results, out):
        """Write fold ``f``'s result beats (lists of ``C`` codes, in arrival order) into ``out``.

        WS/IS: ``out`` receives the (partial) sums over the fold's K range (WS: beat ``t`` is
        row ``t`` of ``out``, columns of the fold's N range; IS: beat ``t`` is column ``t``,
        rows of the fold's M range); OS: the final sums of its M x N tile (array row ``R - 1``
        arrives first).
        """
        tile = self.sched.fold_tile(f)
        if self.array.dataflow != "os":
            (n0, n1) = tile[self._col]
            for t, acc in enumerate(results):
                if self._is:
                    out[n0:n1, t] = acc[:n1 - n0]
                else:
                    out[t, n0:n1] = acc[:n1 - n0]
        else:
            (m0, m1), (n0, n1) = tile["M"], tile["N"]
            R = self.array.rows
            for r, acc in enumerate(results):
                i = R - 1 - r
                if i < m1 - m0:
                    out[m0 + i, n0:n1] = acc[:n1 - n0]


def gemm_program(array, A, B):
    """Cycle-by-cycle drive of a whole GEMM at the simulator's schedule, and what to expect.

    Operand beats are offered exactly in the cycles of the behavioural simulator's schedule
    (fold ``f`` beat ``k`` at ``f * P + k``); the sink is always ready. WS psum lanes of a
    K-fold carry the golden partial sums of the previous K-folds (open loop; the array's own
    partial sums of those folds are checked equal to them). Kulisch PE: the psum lanes carry the
    golden exact states, and the result beats' ``state`` fields are checked equal to them too.

    Returns
    -------
    inputs : dict
        Per-cycle ``i__valid``, ``i__payload``, ``o__ready`` for
        :func:`lowbit.sim.cosim.run_stream` (``latency=0``), ``Schedule.latency + 1`` cycles.
    expect : dict
        ``ready`` and ``ovalid`` (per-cycle expected ``i.ready`` / ``o.valid``: ready is low
        exactly in the ``R + C - 2`` skew-drain cycles after each fold's last beat),
        ``acc`` (cycles x C expected codes, -1 where not checked: unused columns / rows and
        cycles without a result), ``last`` (cycles), ``schedule``, ``golden`` (the GEMM in the
        golden representation); Kulisch PE in WS/IS: ``state`` (cycles x C expected packed exact
        states, -1 where not checked).
    """
    tl = GemmTiler(array, A, B)
    s = tl.sched
    R, C, w = array.rows, array.cols, array.acc_width
    cache, scache = {}, {}
    kul = array.kulisch

    def partial(k1):            # golden sums over k < k1, as unsigned codes
        if k1 not in cache:
            g = np.asarray(array.golden_gemm(tl.A[:, :k1], tl.B[:k1, :]))
            cache[k1] = (g, np.vectorize(lambda v: int(v) & ((1 << w) - 1), otypes=[object])(g))
        return cache[k1][1]

    def pstate(k1):             # Kulisch: exact golden states over k < k1, packed
        if k1 not in scache:
            scache[k1] = array.golden_state(tl.A[:, :k1], tl.B[:k1, :])
        return scache[k1]

    n = s.latency + 1
    valid = np.zeros(n, dtype=np.uint8)
    payload = np.zeros(n, dtype=object)
    ready = np.ones(n, dtype=np.uint8)
    ovalid = np.zeros(n, dtype=np.uint8)
    acc = np.full((n, C), -1, dtype=object)
    state = np.full((n, C), -1, dtype=object)
    last = np.zeros(n, dtype=np.uint8)
    P = s.fold_period
    ws = array.dataflow != "os"
    final = partial(tl.K)
    for f in range(s.folds):
        tile = s.fold_tile(f)
        (n0, n1) = tile["M" if array.dataflow == "is" else "N"]
        prev = None
        if ws:
            (k0, k1) = tile["K"]
            prev = (pstate(k0) if kul else partial(k0)) if k0 else None
        beats = tl.beats_per_fold()
        for k in range(beats):
            valid[f * P + k] = 1
            payload[f * P + k] = tl.beat(f, k, prev)
        end = f * P + beats - 1
        ready[end + 1:end + R + C - 1] = 0
        if ws:
            ref = partial(k1)
            for t in range(tl.T):
                c = s.output_cycle(f, t)
                ovalid[c], last[c] = 1, t == tl.T - 1
                acc[c, :n1 - n0] = ref[n0:n1, t] if array.dataflow == "is" else ref[t, n0:n1]
                if kul:
                    st = pstate(k1)
                    state[c, :n1 - n0] = st[n0:n1, t] if array.dataflow == "is" else st[t, n0:n1]
        else:
            (m0, m1) = tile["M"]
            for i in range(R):
                c = s.output_cycle(f, i)
                ovalid[c], last[c] = 1, i == 0
                if i < m1 - m0:
                    acc[c, :n1 - n0] = final[m0 + i, n0:n1]
    inputs = {"i__valid": valid, "i__payload": payload, "o__ready": np.ones(n, dtype=np.uint8)}
    exp = {"ready": ready, "ovalid": ovalid, "acc": acc, "last": last, "schedule": s,
           "golden": cache[tl.K][0]}
    if kul and ws:
        exp["state"] = state
    return inputs, exp


def cosim_gemm(array, M, K, N, seed=0, sim=None, specials=0.01, unit="systolic", params=None):
    """Co-simulate a random ``(M, K, N)`` GEMM through ``array``'s Verilog under cocotb.

    Drives :func:`gemm_program` with :func:`lowbit.sim.cosim.run_stream` and compares, for every
    cycle, ``i.ready``, ``o.valid``, the result codes and ``last`` with the simulator's schedule
    and the golden numerics (one vector per cycle). The report's notes give the cycle figures:
    first operand accepted at cycle 0, last result at the simulator's ``Schedule.latency``.

    Returns
    -------
    lowbit.sim.cosim.CosimReport
        ``report.cycles`` holds ``{"first_accept", "last_result", "schedule_latency",
        "compute_cycles", "fold_period", "folds"}`` measured on the RTL / from the simulator.
    """
    import time

    from lowbit.sim import cosim
    rng = np.random.default_rng(seed)
    A, B = array.random_operands(M, K, N, rng, specials)
    inputs, exp = gemm_program(array, A, B)
    t0 = time.perf_counter()
    got = cosim.run_stream(array, inputs, ["i__ready", "o__valid", "o__payload"], latency=0,
                           sim=sim)
    n = len(inputs["i__valid"])
    g_ready = np.asarray(got["i__ready"]).astype(np.uint8)
    g_valid = np.asarray(got["o__valid"]).astype(np.uint8)
    g_acc = np.zeros((n, array.cols), dtype=object)
    g_last = np.zeros(n, dtype=np.uint8)
    for c in range(n):
        a, l = array.unpack_result(got["o__payload"][c])
        g_acc[c] = a
        g_last[c] = l if g_valid[c] else 0
    e_acc = np.where(exp["acc"] == -1, g_acc, exp["acc"])
    e_last = exp["last"]
    want = {"i_ready": exp["ready"], "o_valid": exp["ovalid"], "acc": e_acc, "last": e_last}
    have = {"i_ready": g_ready, "o_valid": g_valid, "acc": g_acc, "last": g_last}
    if "state" in exp:
        g_state = np.zeros((n, array.cols), dtype=object)
        for c in range(n):
            g_state[c] = array.unpack_state(got["o__payload"][c])
        want["state"] = np.where(exp["state"] == -1, g_state, exp["state"])
        have["state"] = g_state
    s = exp["schedule"]
    accepted = np.flatnonzero(inputs["i__valid"] & g_ready)
    produced = np.flatnonzero(g_valid)
    first = int(accepted[0]) if len(accepted) else -1
    last = int(produced[-1]) if len(produced) else -1
    params = dict(params or {"rows": array.rows, "cols": array.cols, "pe": array.pe,
                             "dataflow": array.dataflow,
                             **({"mode": array.mode} if array.mode else {})})
    report = cosim.CosimReport.compare(
        unit, params, got.simulator, seed,
        {"cycle": np.arange(n), "i_valid": inputs["i__valid"]},
        want, have,
        seconds=time.perf_counter() - t0,
        notes=[f"GEMM M={M} K={K} N={N} on {array.rows}x{array.cols} {array.dataflow}: "
               f"{s.folds} folds, fold period {s.fold_period}",
               f"cycles: first operand accepted at {first}, last result at {last}; "
               f"simulator Schedule.latency {s.latency} (compute_cycles {s.compute_cycles} "
               f"+ drain {s.drain})"])
    if last - first != s.latency or first != 0:
        report.mismatches += 1
        report.notes.append("CYCLE COUNT DIFFERS from the simulator")
    report.cycles = {"first_accept": first, "last_result": last, "schedule_latency": s.latency,
                     "compute_cycles": s.compute_cycles, "fold_period": s.fold_period,
                     "folds": s.folds}
    return report


def _cosim(component, params, vectors, seed, sim):
    """``lowbit cosim systolic``: one tiled GEMM of about ``vectors`` MACs (default ~4 folds)."""
    R, C = component.rows, component.cols
    M, K, N = 2 * R + 1, 2 * R + 3, 2 * C + 1
    if vectors:
        scale = max(1.0, (vectors / (M * K * N)) ** (1 / 3))
        M, K, N = (int(round(x * scale)) for x in (M, K, N))
    return cosim_gemm(component, M, K, N, seed=seed if seed is not None else 0, sim=sim,
                      params=params)


def _auto(fmt):
    return None if fmt in ("", "auto", None) else fmt


_FMT = ("operand format (int PE: int8, uint8, int4...; fp PE: e4m3, e5m2, e2m1...); "
        "auto: int8 (int PE) or e4m3 (fp PE); ignored by the overq PE")

UNITS = [
    Unit("systolic", lambda rows, cols, pe, dataflow, a_format, b_format, **kw: SystolicArray(
        rows, cols, pe, dataflow, _auto(a_format), _auto(b_format), **kw), (
        Param("rows", "--rows", "int", 4, f"array rows R (1..{MAX_DIM})"),
        Param("cols", "--cols", "int", 4, f"array columns C (1..{MAX_DIM})"),
        Param("pe", "--pe", "choice", "int", "processing element: int (IntMacStep), fp "
              "(FpMacStep) or overq (OverqStep)", choices=PES),
        Param("dataflow", "--dataflow", "choice", "ws",
              "weight-, output- or input-stationary (is: the ws hardware, operands swapped)",
              choices=DATAFLOWS),
        Param("a_format", "--a", "str", "auto", "streamed operand " + _FMT),
        Param("b_format", "--b", "str", "auto", "weight/filter " + _FMT),
        Param("acc_bits", "--acc-bits", "int", 32, "int PE: signed accumulator width (2..64)"),
        Param("overflow", "--overflow", "choice", "wrap", "int PE: accumulator overflow",
              choices=model.INT_OVERFLOWS),
        Param("acc_format", "--acc", "str", "fp32", "fp PE: accumulator format (fp32, fp16, bf16)"),
        Param("mode", "--mode", "choice", "fused", "fp PE: rounding scheme (kulisch: exact "
              "fixed-point accumulator, rounded once at the bottom edge)",
              choices=model.FP_MAC_MODES),
        Param("terms", "--terms", "int", 4096, "fp PE, kulisch: products summed exactly (sizes "
              "the register; beyond it wraps)"),
        Param("flush_subnormals", "--flush-subnormals", "bool", False,
              "fp PE: flush subnormal inputs and results to zero"),
        Param("saturate", "--saturate", "bool", False, "fp PE: overflow to +-max instead of +-Inf"),
        Param("bits", "--bits", "int", 4, "overq PE: code width b (2..16)"),
        Param("w_bits", "--w-bits", "int", 4, "overq PE: signed weight width"),
        Param("cascade", "--cascade", "int", 1, "overq PE: range-overwrite cascade depth (0..16)"),
        Param("precision", "--precision", "bool", True, "overq PE: precision overwrite"),
        Param("shift_at", "--shift-at", "choice", "product", "overq PE: where the shifts are",
              choices=("product", "operands")),
    ), "R x C systolic GEMM array (int, fp (fused, two roundings, Kulisch) or OverQ PEs), "
       "weight-, output- or input-stationary, skew/de-skew registers, valid/ready streams; "
       "cycle schedule of lowbit.sim.systolic",
        cosim=_cosim),
]
