"""The golden model of a systolic GEMM array: its cycle schedule and its numerics.

This module is what the RTL array (:class:`lowbit.hdl.systolic.SystolicArray`), the behavioural
performance simulator (:mod:`lowbit.sim.systolic`), the board top level
(:mod:`lowbit.fpga.gemm_top`) and the cost model (:mod:`lowbit.sim.cost_model`) share: the
:class:`Schedule` of a GEMM on an ``R x C`` array, the processing element's configuration
(:class:`PESpec`, one object from which the hardware PE, its numerics and its cost are all
built) and :func:`gemm_numerics`, the GEMM in the array's accumulation order.

Timing model: an explicit schedule an RTL array follows
-------------------------------------------------------
The GEMM is mapped onto the array as SCALE-Sim v3 maps it (``scalesim/topology_utils.py``,
``calc_spatio_temporal_params``; ``compute/systolic_compute_{os,ws,is}.py``): a spatial-row extent
``Sr``, a spatial-column extent ``Sc`` and a temporal extent ``T``:

=========  ======================  ===================  ================  ==========================
dataflow   stationary in the PEs   Sr (array rows)      Sc (array cols)   T (streamed per fold)
=========  ======================  ===================  ================  ==========================
``os``     ofmap (accumulators)    M (ofmap pixels)     N (filters)       K (ifmap from the left,
                                                                          filter from the top)
``ws``     filter (weights)        K (window)           N (filters)       M (ifmap rows from the left)
``is``     ifmap                   K (window)           M (ofmap pixels)  N (filter cols from the left)
=========  ======================  ===================  ================  ==========================

The operand tiles are cut into ``row_folds = ceil(Sr / R)`` by ``col_folds = ceil(Sc / C)`` folds,
run one after the other, **column fold outer, row fold inner** (fold index ``f = fc * row_folds +
fr``), never overlapped except for the output drain. An edge fold uses only part of the array but
keeps the full-array timing (the idle PEs see no valid data). Within a fold, cycles are numbered from
0 at the fold start; ``L`` is the preload length (``R`` for WS/IS, 0 for OS):

1. **Preload** (WS/IS only), cycles ``0 .. R-1``: the stationary ``R x C`` tile enters from the top
   edge one row per cycle, last tile row first (SCALE-Sim flips the tile), shifting down, so after
   ``R`` cycles PE row ``i`` holds tile row ``i``. OS has no preload: accumulators restart on the
   first operand of the fold (a "first" flag travels with the data).
2. **Skewed stream**, element ``t`` (``0 .. T-1``) of the streamed operand enters array row ``i`` at
   the left edge at cycle ``L + t + i`` and moves one PE right per cycle (input skew: row ``i``
   delayed by ``i`` registers). In OS the filter element ``t`` of column ``j`` enters the top edge
   at cycle ``t + j`` and moves one PE down per cycle.
3. **MAC**: PE ``(i, j)`` does its ``t``-th multiply-accumulate at cycle ``L + t + i + j``
   (:meth:`Schedule.mac_cycle`). In WS/IS the partial sum moves down one PE per cycle (row 0 adds to
   the psum-in of the column top, which is the previous K-fold's partial sum read back from the
   ofmap buffer, or 0 for the first K-fold); in OS it stays in PE ``(i, j)``. The last MAC of the
   fold is in PE ``(R-1, C-1)`` at cycle ``P - 1``, with the **fold period**

   ``P = L + T + (R - 1) + (C - 1)``  i.e. OS: ``K + R + C - 2``;  WS: ``M + 2R + C - 2``;
   IS: ``N + 2R + C - 2``.

4. **Output** (de-skew / drain): WS/IS: the sum for stream element ``t`` leaves the bottom of
   column ``j`` at cycle ``L + t + R - 1 + j``; de-skew registers delay column ``j`` by
   ``C - 1 - j`` so that output vector ``t`` (one value per column) appears at cycle
   ``L + t + R + C - 1`` (:meth:`Schedule.output_cycle`); the last one at ``P``, i.e. in the
   first cycle of the next fold. OS: at cycle ``P`` every accumulator is copied into its PE's drain
   register (the next fold starts accumulating in the same cycle); the drain registers of each
   column shift out of the bottom edge, array row ``R-1`` at cycle ``P``, row ``i`` at
   ``P + R - 1 - i``, overlapped with the next fold (``R <= P`` always).

Fold ``f`` starts at ``f * P`` (the performance simulator, :mod:`lowbit.sim.systolic`, adds the
stall cycles of a finite DRAM bandwidth before a fold). Hence, with cycle 0 the cycle the first
operand is accepted:

* ``compute_cycles = folds * P - 1``: the cycle of the last MAC. This is exactly what SCALE-Sim
  reports as "compute cycles" without stalls (its memory model returns the index of the last
  demand-matrix line, whose length per fold is ``P``).
* ``latency = compute_cycles + drain`` with ``drain = 1`` (WS/IS) or ``R`` (OS): the cycle in which
  the last result vector is produced.

Pipelined PEs (``pe_stages = S > 1``; lowbit's extension, SCALE-Sim has no PE latency, so its
figures are those of ``S = 1`` only). A PE then takes ``S`` cycles from its operands to its
result; the operands still move one PE per cycle.

* WS/IS (no loop: the partial sum moves down the column): the psum stays ``S`` cycles in each PE,
  so the streamed operand of array row ``i`` is skewed by ``i * S`` (not ``i``) to meet it. PE
  ``(i, j)`` takes its ``t``-th operands at ``L + t + i * S + j``, the sum leaves the bottom of
  column ``j`` at ``L + t + R * S + j`` and output vector ``t`` appears at
  ``L + t + R * S + C - 1``. The fold period is ``P = L + T + (R - 1) * S + (C - 1)`` (the next
  fold's preload may start once PE ``(R-1, C-1)`` has taken its last weight operand) and
  ``drain = S``.
* OS (the accumulation is a loop): the ``S - 1`` extra registers sit on the operand side, before
  the accumulator, whose add stays one cycle; every accumulator update, and hence the drain
  copy, comes ``S - 1`` cycles later. ``P`` is unchanged, ``drain = R + S - 1``.

``S = 1`` gives every formula above.

K-fold read-back (WS/IS): output vector ``t`` of fold ``f`` appears at ``(f+1)*P + t + S - T``,
while the next K-fold's data beat ``t`` (which carries it back on the psum lanes) is due at
``(f+1)*P + L + t``. The schedule
holds without a host stall when ``T + L - 1 >= S`` (:attr:`Schedule.readback_ok`; always true
for ``S = 1``, and for any realistic GEMM: WS ``M + R - 1 >= S``); otherwise a host with an
ofmap buffer must wait for the partial sums (bubbles, which the RTL tolerates) and the
schedule's cycle counts are a lower bound.


Numerics
--------
Under this schedule every output is one accumulation chain over ``k = 0 .. K-1`` in increasing
order, in every dataflow (OS: inside one PE; WS/IS: down a column, continued across K-folds through
the psum-in of the column top). :func:`gemm_numerics` applies a PE step function ``acc <- step(acc,
a, b)`` in that order, vectorised over the outputs: :class:`IntPE` and :class:`FpMacPE` wrap the
golden model's :func:`lowbit.models.mac.int_mac_step` and :func:`lowbit.models.mac.fp_mac_step`;
:class:`KulischPE` the exact fixed-point accumulator (:func:`lowbit.models.mac.kulisch_step`, its
state carried across WS/IS K-folds and rounded once by :func:`lowbit.models.mac.kulisch_read`);
:class:`OverqPE` the OverQ PE (:func:`lowbit.models.overq.overq_step`, the weight of the previous
slot carried in the state); :class:`Fp32AccPE` is a float64-to-float32 shortcut. Any object with
the :class:`PEDatapath` methods plugs in.

Processing elements
-------------------
A :class:`PESpec` names one PE as the array builds it: ``kind`` (``"int"``, ``"fp"``,
``"overq"``), the operand formats and the accumulator (see the class). The same object gives the
golden step (:meth:`PESpec.datapath`), the hardware PE (:class:`lowbit.hdl.systolic.SystolicPE`)
and the PE name of the cost model and the simulator (:attr:`PESpec.key`, :func:`parse_pe`).
"""

import dataclasses
import re
from typing import Protocol, runtime_checkable

import numpy as np

from . import formats, mac, overq
from .checks import check_choice, check_int

__all__ = [
    "DATAFLOWS", "PE_KINDS", "MAX_GEMM", "MAX_PE_STAGES", "Schedule",
    "PEDatapath", "IntPE", "FpMacPE", "KulischPE", "OverqPE", "Fp32AccPE",
    "PESpec", "parse_pe", "pe_name", "gemm_numerics", "reference_numerics",
]

#: Dataflows of the schedule: output-, weight- and input-stationary.
DATAFLOWS = ("os", "ws", "is")
#: Kinds of processing element.
PE_KINDS = ("int", "fp", "overq")

_MAX_DIM = 1 << 20  # array rows/cols of a schedule
#: Largest M, K or N of a GEMM.
MAX_GEMM = 1 << 40
#: Largest PE latency of a schedule (the deepest hardware PE, the FP fused/two-roundings PE of
#: :mod:`lowbit.hdl.systolic`, has 6 stages; the schedule takes a few more for what-if studies).
MAX_PE_STAGES = 16


# ---------------------------------------------------------------------------------------------------
# the schedule


def _mapping(M, K, N, dataflow):
    """(Sr, Sc, T) as SCALE-Sim's ``calc_spatio_temporal_params``."""
    if dataflow == "os":
        return M, N, K
    if dataflow == "ws":
        return K, N, M
    return K, M, N


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The cycle schedule of one GEMM on one array (see the module docstring for the phases).

    Attributes
    ----------
    M, K, N, rows, cols, dataflow
        The problem and the array.
    Sr, Sc, T : int
        Spatial-row, spatial-column and temporal extents of the mapping.
    row_folds, col_folds, folds : int
        ``ceil(Sr/R)``, ``ceil(Sc/C)`` and their product.
    preload : int
        Cycles of stationary-operand preload per fold (``R`` for WS/IS, 0 for OS).
    fold_period : int
        ``P = preload + T + (R-1) + (C-1)``: cycles per fold.
    drain : int
        Cycles from the last MAC to the last result vector (1 for WS/IS, ``R`` for OS).
    compute_cycles : int
        ``folds * P - 1``: cycle of the last MAC with the first operand accepted at cycle 0
        (SCALE-Sim's "compute cycles" with no stalls).
    latency : int
        ``compute_cycles + drain``: cycle of the last result vector (no stalls).
    pe_stages : int
        PE latency ``S`` in cycles, 1..:data:`MAX_PE_STAGES` (default 1, the one-cycle PE that
        SCALE-Sim models); see "Pipelined PEs" in the module docstring. Which depths a given
        PE can take is the hardware's business (:class:`lowbit.hdl.systolic.SystolicPE`).
    """
    M: int
    K: int
    N: int
    rows: int
    cols: int
    dataflow: str
    pe_stages: int = 1

    def __post_init__(self):
        for n in ("M", "K", "N"):
            object.__setattr__(self, n, check_int(n, getattr(self, n), 1, MAX_GEMM))
        for n in ("rows", "cols"):
            object.__setattr__(self, n, check_int(n, getattr(self, n), 1, _MAX_DIM))
        check_choice("dataflow", self.dataflow, DATAFLOWS)
        object.__setattr__(self, "pe_stages",
                           check_int("pe_stages", self.pe_stages, 1, MAX_PE_STAGES))

    @property
    def readback_ok(self):
        """WS/IS: the previous K-fold's partial sums are out before the next K-fold's beats need
        them (``T + L - 1 >= S``; see "K-fold read-back"); OS: always True."""
        return self.dataflow == "os" or self.T + self.preload - 1 >= self.pe_stages

    @property
    def skew_drain(self):
        """Cycles between a fold's last operand beat and the next fold's first:
        ``P - L - T = (R - 1) * s + C - 1`` (``s`` = :attr:`row_step`)."""
        return (self.rows - 1) * self.row_step + self.cols - 1

    @property
    def row_step(self):
        """Cycles a partial sum spends in each PE on its way down a column: ``S`` for WS/IS,
        1 for OS (the operands move one PE per cycle; the sums stay put)."""
        return 1 if self.dataflow == "os" else self.pe_stages

    @property
    def Sr(self):
        return _mapping(self.M, self.K, self.N, self.dataflow)[0]

    @property
    def Sc(self):
        return _mapping(self.M, self.K, self.N, self.dataflow)[1]

    @property
    def T(self):
        return _mapping(self.M, self.K, self.N, self.dataflow)[2]

    @property
    def row_folds(self):
        return -(-self.Sr // self.rows)

    @property
    def col_folds(self):
        return -(-self.Sc // self.cols)

    @property
    def folds(self):
        return self.row_folds * self.col_folds

    @property
    def preload(self):
        return 0 if self.dataflow == "os" else self.rows

    @property
    def fold_period(self):
        return self.preload + self.T + self.skew_drain

    @property
    def drain(self):
        return self.rows + self.pe_stages - 1 if self.dataflow == "os" else self.pe_stages

    @property
    def compute_cycles(self):
        return self.folds * self.fold_period - 1

    @property
    def latency(self):
        return self.compute_cycles + self.drain

    def fold_coords(self, f):
        """``(fc, fr)``: column fold and row fold of fold ``f`` (column fold outer)."""
        f = check_int("f", f, 0, self.folds - 1)
        return divmod(f, self.row_folds)

    def fold_tile(self, f):
        """Index ranges of fold ``f``: ``{"M": (lo, hi), "K": (lo, hi), "N": (lo, hi)}`` (hi exclusive)
        and the used array extent ``"rows_used"``, ``"cols_used"``."""
        fc, fr = self.fold_coords(f)
        r0, r1 = fr * self.rows, min((fr + 1) * self.rows, self.Sr)
        c0, c1 = fc * self.cols, min((fc + 1) * self.cols, self.Sc)
        full = {"M": (0, self.M), "K": (0, self.K), "N": (0, self.N)}
        sr, sc = {"os": ("M", "N"), "ws": ("K", "N"), "is": ("K", "M")}[self.dataflow]
        full[sr] = (r0, r1)
        full[sc] = (c0, c1)
        full["rows_used"] = r1 - r0
        full["cols_used"] = c1 - c0
        return full

    def fold_start(self, f):
        """First cycle of fold ``f`` (no stalls)."""
        f = check_int("f", f, 0, self.folds - 1)
        return f * self.fold_period

    def mac_cycle(self, f, i, j, t):
        """Cycle in which PE ``(i, j)`` takes the operands of the ``t``-th MAC of fold ``f``:
        ``f*P + L + t + i*s + j`` (``s`` = :attr:`row_step`; with ``S = 1`` also the cycle of
        the accumulation)."""
        f = check_int("f", f, 0, self.folds - 1)
        i = check_int("i", i, 0, self.rows - 1)
        j = check_int("j", j, 0, self.cols - 1)
        t = check_int("t", t, 0, self.T - 1)
        return f * self.fold_period + self.preload + t + i * self.row_step + j

    def output_cycle(self, f, t_or_row):
        """Cycle in which a result vector of fold ``f`` is produced at the output port.

        WS/IS: ``t_or_row`` is the stream element ``t``; the vector is produced at
        ``f*P + L + t + R*S + C - 1``. OS: ``t_or_row`` is the array row ``i``, drained at
        ``(f+1)*P + S - 1 + R - 1 - i``.
        """
        f = check_int("f", f, 0, self.folds - 1)
        P = self.fold_period
        if self.dataflow == "os":
            i = check_int("row", t_or_row, 0, self.rows - 1)
            return (f + 1) * P + self.pe_stages - 1 + self.rows - 1 - i
        t = check_int("t", t_or_row, 0, self.T - 1)
        return f * P + self.preload + t + self.rows * self.pe_stages + self.cols - 1

    def phases(self):
        """Per-fold phase lengths: ``preload, stream (T), row_skew (R-1), col_skew (C-1), period, drain``."""
        return {"preload": self.preload, "stream": self.T,
                "row_skew": (self.rows - 1) * self.row_step,
                "col_skew": self.cols - 1, "period": self.fold_period, "drain": self.drain}

    # --- fold-shape accounting (vectorised) -------------------------------------------------
    def used_per_fold(self):
        """``(rows_used, cols_used)`` arrays, one entry per fold in execution order."""
        r = np.full(self.row_folds, self.rows, dtype=np.int64)
        r[-1] = self.Sr - self.rows * (self.row_folds - 1)
        c = np.full(self.col_folds, self.cols, dtype=np.int64)
        c[-1] = self.Sc - self.cols * (self.col_folds - 1)
        return np.tile(r, self.col_folds), np.repeat(c, self.row_folds)



# ---------------------------------------------------------------------------------------------------
# numerics


@runtime_checkable
class PEDatapath(Protocol):
    """A processing element's arithmetic, vectorised over NumPy arrays.

    ``init(shape)`` returns the accumulator a new sum starts from, ``decode_a``/``decode_b`` turn
    operand codes into what ``step`` takes (values, or the codes themselves), ``step(acc, a, b)``
    is one MAC (the PE's accumulator after it) and ``result(acc)`` what the array outputs. All
    arrays broadcast elementwise. An optional ``order_independent = True`` attribute together
    with a ``matmul(a_codes, b_codes)`` method lets :func:`gemm_numerics` skip the K loop.
    """
    name: str

    def init(self, shape): ...

    def decode_a(self, codes): ...

    def decode_b(self, codes): ...

    def step(self, acc, a, b): ...

    def result(self, acc): ...


class IntPE:
    """Integer MAC PE: the golden model's :func:`lowbit.models.mac.int_mac_step`.

    Parameters
    ----------
    a_format, b_format : str or IntFormat
        Operand formats (``lowbit.models.formats``); codes are their bit patterns.
    acc_bits : int
        Accumulator width, 2..64 (:func:`lowbit.models.mac.check_acc_bits`, as the hardware).
    overflow : {"wrap", "saturate"}
        ``"wrap"``: modulo ``2**acc_bits`` (a plain register); modular addition is associative,
        so the result does not depend on the order and :func:`gemm_numerics` uses one integer
        matmul (``order_independent``). ``"saturate"``: clamp after every step (order matters).
        Both are exact for every width (see :func:`lowbit.models.mac.int_mac_step`).
    """

    def __init__(self, a_format="int8", b_format="int8", acc_bits=32, overflow="wrap"):
        self.a_format = mac.check_int_operand(a_format, "a_format")
        self.b_format = mac.check_int_operand(b_format, "b_format")
        self.acc_bits = mac.check_acc_bits(acc_bits)
        self.overflow = mac.check_overflow(overflow)
        self.order_independent = overflow == "wrap"
        self.name = f"{self.a_format.name}x{self.b_format.name}_acc{self.acc_bits}_{overflow}"

    def init(self, shape):
        return np.zeros(shape, dtype=np.int64)

    def decode_a(self, codes):
        return np.asarray(codes)

    def decode_b(self, codes):
        return np.asarray(codes)

    def step(self, acc, a, b):
        return mac.int_mac_step(acc, a, b, self.a_format, self.b_format, self.acc_bits,
                                self.overflow)

    def result(self, acc):
        return acc

    def matmul(self, a_codes, b_codes):
        """The wrap-around result in one integer matmul (only for ``overflow="wrap"``).

        Exact for every ``acc_bits`` and any K: the matmul runs on uint64, whose arithmetic is
        modulo 2^64 (C unsigned arithmetic; signed int64 overflow would be undefined), and
        2^acc_bits divides 2^64, so the low ``acc_bits`` bits of the result are those of the
        exact sum; :func:`lowbit.models.mac.wrap_int` sign-extends them.
        """
        a = np.asarray(self.a_format.decode(a_codes), dtype=np.int64).view(np.uint64)
        b = np.asarray(self.b_format.decode(b_codes), dtype=np.int64).view(np.uint64)
        return mac.wrap_int((a @ b).view(np.int64), self.acc_bits)


class FpMacPE:
    """Floating-point MAC PE: the golden model's :func:`lowbit.models.mac.fp_mac_step`.

    The accumulator is held as ``acc_format`` codes and starts from ``-0`` (the golden model's
    empty sum); ``step`` is ``fp_mac_step(acc, a, b, a_format, b_format, acc_format, mode,
    flush_subnormals, saturate)``; ``result`` returns the accumulator codes (bit patterns, as the
    RTL outputs them; decode with ``acc_format.decode``).

    Parameters
    ----------
    a_format, b_format : str or FloatFormat
    acc_format : str or FloatFormat
        Default ``"fp32"``.
    mode : {"fused", "two_roundings"}
        See :mod:`lowbit.models.mac` (``"kulisch"`` keeps a fixed-point state and is not a
        per-step code accumulator: :class:`KulischPE`).
    flush_subnormals, saturate : bool
    """

    order_independent = False

    def __init__(self, a_format="e4m3", b_format="e4m3", acc_format="fp32", mode="fused",
                 flush_subnormals=False, saturate=False):
        self.a_format = mac.check_float_operand(a_format, "a_format")
        self.b_format = mac.check_float_operand(b_format, "b_format")
        self.acc_format = mac.check_acc_format(acc_format)
        if mode not in ("fused", "two_roundings"):
            raise ValueError(f"mode must be 'fused' or 'two_roundings' (KulischPE for 'kulisch'), "
                             f"not {mode!r}")
        self.mode, self.flush_subnormals, self.saturate = mode, bool(flush_subnormals), bool(saturate)
        self.name = f"{self.a_format.name}x{self.b_format.name}_{self.acc_format.name}_{mode}"

    def init(self, shape):
        return np.full(shape, 1 << (self.acc_format.bits - 1), dtype=self.acc_format.code_dtype)

    def decode_a(self, codes):
        return np.asarray(codes)

    def decode_b(self, codes):
        return np.asarray(codes)

    def step(self, acc, a, b):
        return mac.fp_mac_step(acc, a, b, self.a_format, self.b_format, self.acc_format,
                               self.mode, self.flush_subnormals, self.saturate)

    def result(self, acc):
        return acc


class KulischPE:
    """Floating-point MAC PE with a Kulisch (exact fixed-point) accumulator.

    The golden model's ``mode="kulisch"`` (:func:`lowbit.models.mac.kulisch_step` /
    :func:`lowbit.models.mac.kulisch_read`): the accumulator is a
    :class:`lowbit.models.mac.KulischState`, a signed ``width``-bit two's-complement register
    whose LSB weighs ``2^lsb_exp`` (``(width, lsb_exp) = kulisch_width(a_format, b_format,
    terms)``) plus four flag bits (NaN seen, +Inf seen, -Inf seen, every product so far was
    -0). A new sum starts from ``kulisch_new_sum`` (0 with the -0 flag); ``step`` adds the
    exact product (wrapping modulo ``2^width`` beyond ``terms`` products, as the register
    does); ``result`` rounds the state **once** (RNE) to ``acc_format`` codes, or with
    ``output="state"`` returns the state packed as the systolic array's psum lanes carry it:
    the Python int ``(fixed mod 2^width) | flags << width``.

    The exact sum is associative (modular integer addition, OR/AND of flags), so the result
    does not depend on the accumulation order; :func:`gemm_numerics` still follows the
    array's order. Over a whole chain it equals :func:`lowbit.models.mac.fp_mac` with
    ``mode="kulisch"`` (one rounding at the end).

    Parameters
    ----------
    a_format, b_format : str or FloatFormat
    acc_format : str or FloatFormat
        Read-out format (default ``"fp32"``).
    terms : int
        Products summed exactly (sizes the register), 1..2**32 (default 4096).
    flush_subnormals, saturate : bool
        Subnormal operands read as zero and subnormal read-outs flushed; overflow of the
        read-out to +-max instead of +-Inf.
    output : {"code", "state"}
        What ``result`` returns.
    """

    order_independent = False

    def __init__(self, a_format="e4m3", b_format="e4m3", acc_format="fp32", terms=4096,
                 flush_subnormals=False, saturate=False, output="code"):
        self.a_format = mac.check_float_operand(a_format, "a_format")
        self.b_format = mac.check_float_operand(b_format, "b_format")
        self.acc_format = mac.check_acc_format(acc_format)
        self.terms = mac.check_terms(terms)
        if output not in ("code", "state"):
            raise ValueError(f"output must be 'code' or 'state', not {output!r}")
        self.flush_subnormals, self.saturate, self.output = (bool(flush_subnormals),
                                                             bool(saturate), output)
        self.width, self.lsb_exp = mac.kulisch_width(self.a_format, self.b_format, self.terms)
        self.name = (f"{self.a_format.name}x{self.b_format.name}_{self.acc_format.name}_kulisch"
                     f"{self.width}")

    def init(self, shape):
        return mac.kulisch_new_sum(shape)

    def decode_a(self, codes):
        return np.asarray(codes)

    def decode_b(self, codes):
        return np.asarray(codes)

    def step(self, acc, a, b):
        return mac.kulisch_step(acc, a, b, self.a_format, self.b_format, self.terms,
                                self.flush_subnormals)

    def result(self, acc):
        if self.output == "state":
            return self.pack(acc)
        return mac.kulisch_read(acc, self.acc_format, self.lsb_exp, self.saturate,
                                self.flush_subnormals)

    def pack(self, state):
        """``KulischState`` -> object array of ``(fixed mod 2^width) | flags << width``."""
        fixed = np.asarray(state.fixed, dtype=object)
        flags = np.asarray(state.flags).astype(object)
        return (fixed & ((1 << self.width) - 1)) | (flags << self.width)

    def unpack(self, packed):
        """Inverse of :meth:`pack`."""
        p = np.asarray(packed, dtype=object)
        w = self.width
        raw = p & ((1 << w) - 1)
        fixed = np.asarray(raw - ((raw >> (w - 1)) << w), dtype=object)
        return mac.KulischState(fixed, np.asarray(p >> w, dtype=object).astype(np.int64) & 15)


class Fp32AccPE:
    """Floating-point MAC placeholder: exact product, FP32 accumulator.

    ``step(acc, a, b) = float32(float64(acc) + float64(a) * float64(b))``: the product of two
    operands of at most 26 significand bits is exact in float64; the sum is rounded to float64 and
    then to float32 (round to nearest even both times). For FP8/FP6/FP4/BF16 operands and an FP32
    accumulator the float64 sum is exact whenever the exponents of ``acc`` and the product are less
    than 29 binades apart, so the result is then the singly rounded ``fp32(acc + a*b)``.

    This was the stand-in for the FP8 MAC step of the golden model (issue 3); :class:`FpMacPE`
    now plugs :func:`lowbit.models.mac.fp_mac_step` in through the same :class:`PEDatapath`
    interface and is the one to use for bit-exact work. This class stays as a fast float path
    (values, not codes) and as a cross-check: for FP8 operands with ``mode="fused"`` and an FP32
    accumulator both give the same sums, which the tests check.

    Parameters
    ----------
    a_format, b_format : str or FloatFormat
        Operand formats; codes are their bit patterns (decoded with the golden model).
    """

    order_independent = False

    def __init__(self, a_format="e4m3", b_format="e4m3"):
        self.a_format = formats.get(a_format)
        self.b_format = formats.get(b_format)
        for n, f in (("a_format", self.a_format), ("b_format", self.b_format)):
            if not isinstance(f, formats.FloatFormat) or f.man_bits > 25:
                raise ValueError(f"{n} must be a float format with at most 25 mantissa bits, not {f!r}")
        self.name = f"{self.a_format.name}x{self.b_format.name}_fp32acc"

    def init(self, shape):
        return np.full(shape, -0.0, dtype=np.float32)  # the empty sum is -0 (-0 + x == x for every x)

    def decode_a(self, codes):
        return np.asarray(self.a_format.decode(codes), dtype=np.float64)

    def decode_b(self, codes):
        return np.asarray(self.b_format.decode(codes), dtype=np.float64)

    def step(self, acc, a, b):
        with np.errstate(over="ignore", invalid="ignore"):
            return (acc.astype(np.float64) + a * b).astype(np.float32)

    def result(self, acc):
        return acc


@dataclasses.dataclass
class OverqState:
    """Accumulator state of :class:`OverqPE`: the partial sum ``psum`` (signed ``acc_bits``
    values, int64) and ``w_prev``, the weight of the previous slot of the chain (0 before the
    first), which the next step's linked terms multiply."""
    psum: np.ndarray
    w_prev: np.ndarray


class OverqPE:
    """OverQ PE: the golden model's :func:`lowbit.models.overq.overq_step` along the chain.

    Operand ``a`` is the lane word of the array, ``code | meta << bits`` (the b-bit code and its
    metadata); ``b`` is the signed weight *value* (``w_bits`` two's complement). A new sum
    starts from ``psum = 0`` with the previous weight 0 (``w[-1] = 0``); ``step`` adds the term
    of slot ``k`` using the weight of slot ``k - 1`` for linked metadata and remembers the
    weight of slot ``k``; ``result`` is ``psum``. The accumulator wraps modulo
    ``2^acc_bits``, so the sum does not depend on the order: :func:`gemm_numerics` uses
    :func:`lowbit.models.overq.overq_matmul` (``order_independent``), the same values.

    Parameters
    ----------
    bits, w_bits, acc_bits, cascade, precision, shift_at
        As :func:`lowbit.models.overq.check_pe` (``shift_at`` changes the hardware, not the
        numbers).
    """

    order_independent = True

    def __init__(self, bits=4, w_bits=4, acc_bits=32, cascade=1, precision=True,
                 shift_at="product"):
        self.config, self.w_bits, self.acc_bits, self.shift_at = overq.check_pe(
            bits, w_bits, acc_bits, cascade, precision, shift_at)
        self.bits = self.config.bits
        self.name = f"overq{self.bits}_w{self.w_bits}_acc{self.acc_bits}"

    def init(self, shape):
        return OverqState(np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64))

    def decode_a(self, codes):
        return np.asarray(codes, dtype=np.int64)

    def decode_b(self, codes):
        return np.asarray(codes, dtype=np.int64)

    def step(self, acc, a, b):
        mask = (1 << self.bits) - 1
        psum = overq.overq_step(a & mask, a >> self.bits, b, acc.w_prev, acc.psum, self.config,
                                self.w_bits, self.acc_bits)
        return OverqState(psum, np.broadcast_to(b, np.shape(psum)).copy())

    def result(self, acc):
        return acc.psum

    def matmul(self, a_codes, b_codes):
        """The whole GEMM: :func:`lowbit.models.overq.overq_matmul`."""
        a = np.asarray(a_codes, dtype=np.int64)
        return overq.overq_matmul(a & ((1 << self.bits) - 1), a >> self.bits,
                                  np.asarray(b_codes, dtype=np.int64), self.config, self.w_bits,
                                  self.acc_bits)


# ---------------------------------------------------------------------------------------------------
# the processing element's configuration


_BOOL_FIELDS = ("flush_subnormals", "saturate")


@dataclasses.dataclass(frozen=True)
class PESpec:
    """One processing element of a systolic array: what the RTL builds and what it computes.

    Parameters
    ----------
    kind : {"int", "fp", "overq"}
        Integer MAC (:func:`lowbit.models.mac.int_mac_step`), floating-point MAC
        (:func:`lowbit.models.mac.fp_mac_step`, or the Kulisch accumulator with
        ``mode="kulisch"``) or the OverQ PE (:func:`lowbit.models.overq.overq_step`).
    a, b : str or Format
        Operand formats of A (the streamed ifmap) and B (the weights / filter); stored as
        :class:`~lowbit.models.formats.Format` objects. INT: ``int2..int16`` / ``uint2..uint16``
        (default ``int8``); FP: signed float formats of at most 16 bits (default ``e4m3``);
        OverQ: ``int<bits>`` and ``int<w_bits>`` (set from those, any value given is ignored).
    acc_bits : int
        INT: signed accumulator width, 2..64; OverQ: ``min_acc_bits``..64 (wraps).
    overflow : {"wrap", "saturate"}
        INT: accumulator overflow, every step.
    acc : str or FloatFormat
        FP: accumulator format (default ``fp32``; Kulisch: the read-out format).
    mode : {"fused", "two_roundings", "kulisch"}
        FP: one RNE rounding per step, product rounded then sum rounded, or exact fixed-point
        accumulation rounded once (:func:`lowbit.models.mac.kulisch_read`).
    terms : int
        FP Kulisch: products summed exactly (sizes the register), 1..2**32 (default 4096; 0 for
        the other PEs).
    flush_subnormals, saturate : bool
        FP: subnormal operands/results read as zero; overflow to +-max instead of +-Inf.
    bits, w_bits, cascade, precision, shift_at
        OverQ: as :func:`lowbit.models.overq.check_pe`.

    Fields that do not apply to ``kind`` are set to their neutral values (``acc=None`` for INT,
    ``terms=0`` unless Kulisch, ...), so that two specs of the same PE compare equal.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it).
    """
    kind: str
    a: object = None
    b: object = None
    acc_bits: int = 32
    overflow: str = "wrap"
    acc: object = None
    mode: str = "fused"
    bits: int = 4
    w_bits: int = 4
    terms: int = None
    flush_subnormals: bool = False
    saturate: bool = False
    cascade: int = 1
    precision: bool = True
    shift_at: str = "product"

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)   # noqa: E731 (frozen dataclass)
        check_choice("pe", self.kind, PE_KINDS)
        neutral = {"overflow": "wrap", "acc": None, "mode": "fused", "bits": 0, "w_bits": 0,
                   "terms": 0, "flush_subnormals": False, "saturate": False, "cascade": 1,
                   "precision": True, "shift_at": "product"}
        keep = {"int": ("overflow",),
                "fp": ("acc", "mode", "terms", "flush_subnormals", "saturate"),
                "overq": ("bits", "w_bits", "cascade", "precision", "shift_at")}[self.kind]
        if self.kind == "int":
            put("a", mac.check_int_operand("int8" if self.a is None else self.a, "a_format"))
            put("b", mac.check_int_operand("int8" if self.b is None else self.b, "b_format"))
            put("acc_bits", mac.check_acc_bits(self.acc_bits))
            put("overflow", mac.check_overflow(self.overflow))
        elif self.kind == "fp":
            put("a", mac.check_float_operand("e4m3" if self.a is None else self.a, "a_format"))
            put("b", mac.check_float_operand("e4m3" if self.b is None else self.b, "b_format"))
            put("acc", mac.check_acc_format("fp32" if self.acc is None else self.acc))
            put("mode", mac.check_mode(self.mode))
            if self.mode == "kulisch":
                put("terms", mac.check_terms(4096 if self.terms is None else self.terms))
            else:
                keep = tuple(k for k in keep if k != "terms")
            for k in _BOOL_FIELDS:
                put(k, bool(getattr(self, k)))
            put("acc_bits", 0)
        else:
            cfg, w_bits, acc_bits, shift_at = overq.check_pe(
                self.bits, self.w_bits, self.acc_bits, self.cascade, self.precision,
                self.shift_at)
            put("bits", cfg.bits)
            put("w_bits", w_bits)
            put("acc_bits", acc_bits)
            put("cascade", cfg.cascade)
            put("precision", cfg.precision)
            put("shift_at", shift_at)
            put("a", formats.int_format(cfg.bits))
            put("b", formats.int_format(w_bits))
        for k, v in neutral.items():
            if k not in keep:
                put(k, v)

    # -- what the PE is ---------------------------------------------------------------------
    @property
    def a_format(self):
        """Format of A (the streamed ifmap operand)."""
        return self.a

    @property
    def b_format(self):
        """Format of B (the weights / filter operand)."""
        return self.b

    @property
    def acc_format(self):
        """FP: the accumulator (Kulisch: read-out) format; ``None`` otherwise."""
        return self.acc

    @property
    def kulisch(self):
        """True for the FP PE with the Kulisch (exact fixed-point) accumulator."""
        return self.kind == "fp" and self.mode == "kulisch"

    @property
    def kulisch_register(self):
        """``(width, lsb_exp)`` of the Kulisch register (:func:`lowbit.models.mac.kulisch_width`);
        ``None`` for other PEs."""
        return mac.kulisch_width(self.a, self.b, self.terms) if self.kulisch else None

    @property
    def kulisch_width(self):
        """Width of the Kulisch fixed-point register (flags excluded); ``None`` for other PEs."""
        return self.kulisch_register[0] if self.kulisch else None

    @property
    def overq_config(self):
        """OverQ: the :class:`~lowbit.models.overq.OverqConfig`; ``None`` otherwise."""
        return overq.OverqConfig(self.bits, self.cascade, self.precision) \
            if self.kind == "overq" else None

    @property
    def a_lane_width(self):
        """Bits of one A element on an array lane: the code, OverQ: ``code | meta << bits``."""
        if self.kind == "overq":
            return self.bits + self.overq_config.meta_bits
        return self.a.bits

    @property
    def b_lane_width(self):
        """Bits of one B element on an array lane (OverQ: the signed weight)."""
        return self.b.bits

    @property
    def result_width(self):
        """Bits of a result code: the accumulator format (FP, Kulisch read-out included) or
        the integer accumulator."""
        return self.acc.bits if self.kind == "fp" else self.acc_bits

    @property
    def acc_width(self):
        """Bits of the partial sum that travels between PEs (the psum lanes): the result code,
        or for the Kulisch PE the packed exact state ``fixed | flags << width`` (``width + 4``)."""
        return self.kulisch_width + 4 if self.kulisch else self.result_width

    @property
    def empty_sum(self):
        """The partial sum a new sum starts from, as a psum-lane value: INT/OverQ 0, FP ``-0``
        (the golden model's identity), Kulisch ``fixed = 0`` with the -0 flag
        (``K_NEGZERO << width``)."""
        if self.kulisch:
            return mac.K_NEGZERO << self.kulisch_width
        if self.kind == "fp":
            return 1 << (self.acc.bits - 1)
        return 0

    @property
    def key(self):
        """Canonical PE name (:func:`parse_pe` reads it back to an equal spec; Kulisch: the
        register width stands for ``terms``, read back as the largest count it sums exactly)."""
        if self.kind == "int":
            return f"{self.a.name}x{self.b.name}_acc{self.acc_bits}_{self.overflow}"
        if self.kind == "fp":
            tail = ("_ftz" if self.flush_subnormals else "") + ("_sat" if self.saturate else "")
            if self.kulisch:
                return f"{self.a.name}x{self.b.name}_{self.acc.name}_kulisch{self.kulisch_width}{tail}"
            return f"{self.a.name}x{self.b.name}_{self.acc.name}_{self.mode}{tail}"
        return (f"overq{self.bits}_w{self.w_bits}_acc{self.acc_bits}"
                + (f"_c{self.cascade}" if self.cascade != 1 else "")
                + ("" if self.precision else "_noprec")
                + ("_operands" if self.shift_at == "operands" else ""))

    # -- its numerics -------------------------------------------------------------------------
    def datapath(self, output="code"):
        """The golden step of this PE (a :class:`PEDatapath`): :class:`IntPE`, :class:`FpMacPE`,
        :class:`KulischPE` (``output="state"``: results are the packed exact states the psum
        lanes carry) or :class:`OverqPE`."""
        if self.kind == "int":
            return IntPE(self.a, self.b, self.acc_bits, self.overflow)
        if self.kulisch:
            return KulischPE(self.a, self.b, self.acc, self.terms, self.flush_subnormals,
                             self.saturate, output=output)
        if self.kind == "fp":
            return FpMacPE(self.a, self.b, self.acc, self.mode, self.flush_subnormals,
                           self.saturate)
        return OverqPE(self.bits, self.w_bits, self.acc_bits, self.cascade, self.precision,
                       self.shift_at)

    def from_codes(self, codes):
        """Unsigned result codes (as the RTL outputs them) -> the representation of
        :func:`gemm_numerics` with :meth:`datapath`: INT/OverQ signed int64 values, FP uint64
        accumulator codes."""
        codes = np.asarray(codes, dtype=object)
        if self.kind == "fp":
            return codes.astype(np.uint64)
        w = self.result_width
        return np.vectorize(lambda v: int(v) - (1 << w) if int(v) >> (w - 1) else int(v),
                            otypes=[np.int64])(codes)


# -- PE names -------------------------------------------------------------------------------------

_PE_FORMS = ("int8, uint8, int4, int8xint4 [_acc<N>] [_wrap|_saturate]; "
             "<fp>[x<fp>]_<fp32|fp16|bf16>[acc][_fused|_two_roundings][_ftz][_sat] "
             "(e4m3_fp32, fp8_fp32acc); <fp>[x<fp>]_kulisch[<width>][_<acc>][_t<terms>][_ftz][_sat]; "
             "overq<b>[_w<n>][_acc<N>][_c<cascade>][_noprec][_operands]")

_FLAGS = r"(?:_(ftz))?(?:_(sat))?"
_INT_RE = re.compile(r"(u?int\d+)(?:x(u?int\d+))?(?:_acc(\d+))?(?:_(wrap|saturate))?")
_FP_RE = re.compile(r"([a-z][a-z0-9]*?)(?:x([a-z][a-z0-9]*?))?_(fp32|fp16|bf16)(acc)?"
                    r"(?:_(fused|two_roundings))?" + _FLAGS)
_OVERQ_RE = re.compile(r"overq(\d+)(?:_w(\d+))?(?:_acc(\d+))?(?:_c(\d+))?(?:_(noprec))?"
                       r"(?:_(operands))?")
_KUL_RE = re.compile(r"([a-z][a-z0-9]*?)(?:x([a-z][a-z0-9]*?))?_kulisch(\d*)(?:_(fp32|fp16|bf16))?"
                     r"(?:_t(\d+))?" + _FLAGS)
_KUL2_RE = re.compile(r"([a-z][a-z0-9]*?)(?:x([a-z][a-z0-9]*?))?_(fp32|fp16|bf16)_kulisch(\d*)"
                      r"(?:_t(\d+))?" + _FLAGS)


def _bad(name, why=""):
    return ValueError(f"pe must be one of the forms {_PE_FORMS}, not {name!r}{why}")


def _fmt(name, kind, pe_name):
    try:
        f = formats.get(name)
    except ValueError:
        raise _bad(pe_name, f" (unknown format {name!r})") from None
    if kind == "int" and not isinstance(f, formats.IntFormat):
        raise _bad(pe_name, f" ({name!r} is not an integer format)")
    if kind == "fp" and (not isinstance(f, formats.FloatFormat) or f.bits > 16):
        raise _bad(pe_name, f" ({name!r} is not a float format of at most 16 bits)")
    return f.name


def _spec(name, **kw):
    try:
        return PESpec(**kw)
    except (TypeError, ValueError) as e:
        raise _bad(name, f" ({e})") from None


def parse_pe(name):
    """The :class:`PESpec` of a PE name (the forms are in the error message and
    :attr:`PESpec.key`); ``fp8`` means ``e4m3``.

    Raises
    ------
    TypeError
        ``name`` is not a string.
    ValueError
        An unknown form or format; the message lists the accepted forms.
    """
    if not isinstance(name, str):
        raise TypeError(f"pe must be a PE name (a string), not {name!r}")
    s = name.strip().lower()
    m = _INT_RE.fullmatch(s)
    if m:
        a = _fmt(m[1], "int", name)
        b = _fmt(m[2] or m[1], "int", name)
        acc = int(m[3] or 32)
        if not 2 <= acc <= 64:
            raise _bad(name, f" (accumulator width must be 2..64, not {acc})")
        return _spec(name, kind="int", a=a, b=b, acc_bits=acc, overflow=m[4] or "wrap")
    m = _OVERQ_RE.fullmatch(s)
    if m:
        bits = int(m[1])
        w = int(m[2] or bits)
        acc = int(m[3] or 32)
        if not (2 <= bits <= 16 and 2 <= w <= 16 and 2 <= acc <= 64):
            raise _bad(name, " (OverQ: b and w 2..16, accumulator 2..64)")
        return _spec(name, kind="overq", acc_bits=acc, bits=bits, w_bits=w,
                     cascade=int(m[4] or 1), precision=not m[5],
                     shift_at="operands" if m[6] else "product")
    m = _KUL_RE.fullmatch(s)
    k = None if m else _KUL2_RE.fullmatch(s)
    if m or k:
        a_s, b_s, width, acc, terms, ftz, sat = ((m[1], m[2], m[3], m[4], m[5], m[6], m[7]) if m
                                                 else (k[1], k[2], k[4], k[3], k[5], k[6], k[7]))
        return _kulisch_spec(name, a_s, b_s, width, acc or "fp32", terms, bool(ftz), bool(sat))
    m = _FP_RE.fullmatch(s)
    if m:
        a_name = "e4m3" if m[1] == "fp8" else m[1]
        b_name = "e4m3" if m[2] == "fp8" else (m[2] or a_name)
        a = _fmt(a_name, "fp", name)
        b = _fmt(b_name, "fp", name)
        return _spec(name, kind="fp", a=a, b=b, acc=m[3], mode=m[5] or "fused",
                     flush_subnormals=bool(m[6]), saturate=bool(m[7]))
    raise _bad(name)


def _kulisch_spec(name, a_s, b_s, width, acc, terms, ftz, sat):
    a_name = "e4m3" if a_s == "fp8" else a_s
    b_name = "e4m3" if b_s == "fp8" else (b_s or a_name)
    a = _fmt(a_name, "fp", name)
    b = _fmt(b_name, "fp", name)
    try:
        base = mac.kulisch_width(a, b, 1)[0]          # width for one product
    except (TypeError, ValueError) as e:
        raise _bad(name, f" ({e})") from None
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
        w = mac.kulisch_width(a, b, t)[0]
    return _spec(name, kind="fp", a=a, b=b, acc=acc, mode="kulisch", terms=1 << (w - base),
                 flush_subnormals=ftz, saturate=sat)


def pe_name(datapath):
    """PE name (:attr:`PESpec.key` form) of a :class:`PEDatapath` object (:class:`IntPE`,
    :class:`FpMacPE`, :class:`KulischPE`, :class:`OverqPE`, :class:`Fp32AccPE`) or of a
    :class:`PESpec`; a string is checked and returned.

    Raises
    ------
    TypeError
        Anything else.
    """
    if isinstance(datapath, str):
        parse_pe(datapath)
        return datapath
    if isinstance(datapath, PESpec):
        return datapath.key
    if isinstance(datapath, IntPE):
        spec = PESpec("int", datapath.a_format, datapath.b_format, datapath.acc_bits,
                      datapath.overflow)
    elif isinstance(datapath, KulischPE):
        spec = PESpec("fp", datapath.a_format, datapath.b_format, acc=datapath.acc_format,
                      mode="kulisch", terms=datapath.terms,
                      flush_subnormals=datapath.flush_subnormals, saturate=datapath.saturate)
    elif isinstance(datapath, FpMacPE):
        spec = PESpec("fp", datapath.a_format, datapath.b_format, acc=datapath.acc_format,
                      mode=datapath.mode, flush_subnormals=datapath.flush_subnormals,
                      saturate=datapath.saturate)
    elif isinstance(datapath, OverqPE):
        c = datapath.config
        spec = PESpec("overq", acc_bits=datapath.acc_bits, bits=c.bits, w_bits=datapath.w_bits,
                      cascade=c.cascade, precision=c.precision, shift_at=datapath.shift_at)
    elif isinstance(datapath, Fp32AccPE):
        # same sums as FpMacPE(..., "fp32", "fused") (checked in the tests)
        spec = PESpec("fp", datapath.a_format, datapath.b_format, acc="fp32")
    else:
        raise TypeError(f"pe must be an IntPE, FpMacPE, KulischPE, OverqPE, Fp32AccPE, a PESpec "
                        f"or a PE name, not {datapath!r}")
    return spec.key


# ---------------------------------------------------------------------------------------------------
# the GEMM in the array's order


def gemm_numerics(a_codes, b_codes, rows, cols, dataflow, pe=None, block_rows=1024):
    """Run a GEMM's data through a PE datapath in the array's accumulation order.

    In all three dataflows of the schedule every output ``(m, n)`` is accumulated by one chain
    in increasing ``k``: OS accumulates ``k = 0 .. K-1`` in one PE; WS/IS accumulate the ``R``
    values of a K-fold down a column starting from the psum of the previous K-fold (read back
    from the ofmap buffer), K-folds in increasing order. So::

        acc = pe.init(); for k in 0..K-1: acc = pe.step(acc, a[m, k], b[k, n]); out = pe.result(acc)

    vectorised over ``(m, n)`` (``block_rows`` rows of ``M`` at a time, so memory stays
    ``O(block_rows * N)``). A PE with ``order_independent = True`` and a ``matmul`` method (the
    integer PE with wrap-around, the OverQ PE) is computed with one integer matmul instead, same
    result.

    Parameters
    ----------
    a_codes : array (M, K)
        ifmap operand codes (bit patterns of ``pe``'s ``a`` format).
    b_codes : array (K, N)
        filter operand codes.
    rows, cols : int
        The array, 1..2**20 (the order above holds for every size).
    dataflow : {"os", "ws", "is"}
    pe : PEDatapath or PESpec, optional
        Default ``IntPE()`` (INT8 x INT8, 32-bit wrapping accumulator). A :class:`PESpec`
        stands for its :meth:`PESpec.datapath`.

    Returns
    -------
    ndarray (M, N)
    """
    check_int("rows", rows, 1, _MAX_DIM)
    check_int("cols", cols, 1, _MAX_DIM)
    check_choice("dataflow", dataflow, DATAFLOWS)
    pe = pe or IntPE()
    if isinstance(pe, PESpec):
        pe = pe.datapath()
    if not isinstance(pe, PEDatapath):
        raise TypeError(f"pe must implement the PEDatapath protocol, not {pe!r}")
    a_codes, b_codes = np.asarray(a_codes), np.asarray(b_codes)
    if a_codes.ndim != 2 or b_codes.ndim != 2 or a_codes.shape[1] != b_codes.shape[0]:
        raise ValueError(f"a_codes must be (M, K) and b_codes (K, N) with equal K, not "
                         f"{a_codes.shape} and {b_codes.shape}")
    block_rows = check_int("block_rows", block_rows, 1, 1 << 30)
    a = pe.decode_a(a_codes)
    b = pe.decode_b(b_codes)
    M, K = a.shape
    N = b.shape[1]
    if getattr(pe, "order_independent", False) and hasattr(pe, "matmul"):
        return np.asarray(pe.matmul(a_codes, b_codes))
    out = []
    for m0 in range(0, M, block_rows):
        ab = a[m0:m0 + block_rows]
        acc = pe.init((ab.shape[0], N))
        for k in range(K):
            acc = pe.step(acc, ab[:, k:k + 1], b[k:k + 1, :])
        out.append(pe.result(acc))
    return np.concatenate(out, axis=0) if out else pe.result(pe.init((0, N)))


def reference_numerics(a_codes, b_codes, pe):
    """Scalar reference of :func:`gemm_numerics` (pure Python loops; for tests on small shapes)."""
    a = pe.decode_a(np.asarray(a_codes))
    b = pe.decode_b(np.asarray(b_codes))
    M, K = a.shape
    N = b.shape[1]
    out = np.array(pe.result(pe.init((M, N))))      # dtype template (Kulisch: state -> codes)
    for m in range(M):
        for n in range(N):
            acc = pe.init(())
            for k in range(K):
                acc = pe.step(acc, a[m, k], b[k, n])
            out[m, n] = pe.result(acc)
    return out
