"""Behavioural cycle-level simulator of a systolic GEMM array (OS / WS / IS dataflows).

The simulator counts cycles and memory accesses of ``ofmap[M, N] = ifmap[M, K] @ filter[K, N]`` on an
``rows x cols`` array **analytically** (closed forms over the few distinct fold shapes, plus
NumPy arrays of one entry per fold for the bandwidth-stall model), so a 4096^3 GEMM on a 128 x 128
array takes microseconds and memory does not grow with the layer. Optional numerics
(:func:`gemm_numerics`) run the layer's data through a processing-element step function in the
array's accumulation order.

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

Fold ``f`` starts at ``f * P`` (plus the stall cycles inserted before it, see below). Hence, with
cycle 0 the cycle the first operand is accepted:

* ``compute_cycles = folds * P - 1``: the cycle of the last MAC. This is exactly what SCALE-Sim
  reports as "compute cycles" without stalls (its memory model returns the index of the last
  demand-matrix line, whose length per fold is ``P``).
* ``latency = compute_cycles + drain`` with ``drain = 1`` (WS/IS) or ``R`` (OS): the cycle in which
  the last result vector is produced.

Memory accounting (words)
-------------------------
SRAM reads/writes are what the array consumes/produces, counted as SCALE-Sim counts them, plus the
partial-sum reads that accumulation across K-folds needs in WS/IS (SCALE-Sim does not count them):

====  ============================  ============================  ==============================
df    ifmap SRAM reads              filter SRAM reads             ofmap SRAM writes / reads
====  ============================  ============================  ==============================
os    M*K * col_folds               K*N * row_folds               M*N / 0
ws    M*K * col_folds               K*N                           M*N*row_folds / M*N*(row_folds-1)
is    M*K                           K*N * col_folds               M*N*row_folds / M*N*(row_folds-1)
====  ============================  ============================  ==============================

(SCALE-Sim 3.0.0 adds ``R + C`` to its OS ofmap write count for every fold: a bookkeeping slip in
``create_ofmap_demand_mat`` that counts the padded tile's ``shape[0] + shape[1]``; not copied.)

DRAM traffic is lowbit's own model (SCALE-Sim's depends on its line-by-line buffer simulation):
each operand SRAM is double-buffered, half of it (SCALE-Sim's ``active_buf_frac = 0.5``) holding the
working set. The ifmap in DRAM has ``ifmap_words`` distinct words (for a conv layer the ifmap
words its windows reference, :attr:`lowbit.sim.topology.Layer.ifmap_words`, as SCALE-Sim counts
them; ``M * K`` for a GEMM), the filter ``K * N``. An operand that the
fold loop revisits (OS: the whole ifmap across column folds and the
filter column block across row folds; WS: the ifmap across column folds; IS: the filter across
column folds) is read from DRAM once if it fits in that half, else once per revisit. Partial sums
(WS/IS) of one column block stay on chip if they fit in half of the ofmap SRAM, else every K-fold
writes them out and reads them back. Finite bandwidth (``dram_bw`` words/cycle, shared by reads
and writes): the reads of fold ``f`` and the writes of fold ``f - 1`` are transferred during fold
``f - 1``; a fold waits ``max(0, ceil(traffic / dram_bw) - P)`` stall cycles. The reads of fold 0
(``prefetch_cycles``) and the writes of the last fold (``writeback_cycles``) are outside the compute
window. ``dram_bw="CALC"`` (SCALE-Sim's default): bandwidth sized so that nothing stalls.

Numerics
--------
Under this schedule every output is one accumulation chain over ``k = 0 .. K-1`` in increasing
order, in every dataflow (OS: inside one PE; WS/IS: down a column, continued across K-folds through
the psum-in of the column top). :func:`gemm_numerics` applies a PE step function ``acc <- step(acc,
a, b)`` in that order, vectorised over the outputs: :class:`IntPE` and :class:`FpMacPE` wrap the
golden model's :func:`lowbit.models.mac.int_mac_step` and :func:`lowbit.models.mac.fp_mac_step`;
:class:`KulischPE` the exact fixed-point accumulator (:func:`lowbit.models.mac.kulisch_step`, its
state carried across WS/IS K-folds and rounded once by :func:`lowbit.models.mac.kulisch_read`);
:class:`Fp32AccPE` is a float64-to-float32 shortcut. Any object with the :class:`PEDatapath`
methods plugs in (e.g. an OverQ PE step).
"""

import csv
import dataclasses
import io
import json
import math
import operator
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "DATAFLOWS", "EVENT_CLASSES", "ArrayConfig", "Schedule", "schedule", "LayerResult", "SimResult",
    "simulate_gemm", "simulate_layer", "simulate_topology", "CostModel", "NullCostModel",
    "PEDatapath", "IntPE", "FpMacPE", "KulischPE", "Fp32AccPE", "gemm_numerics",
    "reference_numerics",
]

DATAFLOWS = ("os", "ws", "is")

#: Event classes the simulator reports to a :class:`CostModel` (count unit in brackets):
#: ``mac`` [MAC operations], ``pe_cycle`` [rows*cols*total cycles, busy or idle],
#: ``cycle`` [total cycles], ``sram_read_<op>`` / ``sram_write_ofmap`` / ``dram_read_<op>`` /
#: ``dram_write_ofmap`` [words].
EVENT_CLASSES = (
    "mac", "pe_cycle", "cycle",
    "sram_read_ifmap", "sram_read_filter", "sram_read_ofmap", "sram_write_ofmap",
    "dram_read_ifmap", "dram_read_filter", "dram_read_ofmap", "dram_write_ofmap",
)

_MAX_DIM = 1 << 20  # array rows/cols
_MAX_GEMM = 1 << 40  # M, K, N


def _check_int(name, value, lo, hi):
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {value!r}") from None
    if isinstance(value, bool) or not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
    return v


def _check_pos_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, not {value!r}")
    return value


# ---------------------------------------------------------------------------------------------------
# configuration


@dataclasses.dataclass(frozen=True)
class ArrayConfig:
    """A systolic array and its memory system.

    Parameters
    ----------
    rows, cols : int
        Array height R (PE rows) and width C (PE columns), 1..2**20.
    dataflow : {"os", "ws", "is"}
        Output-, weight- or input-stationary.
    ifmap_sram_kib, filter_sram_kib, ofmap_sram_kib : float
        SRAM sizes in KiB (1024 bytes), each double-buffered (half active).
    dram_bw : float or "CALC"
        DRAM bandwidth in words per cycle shared by all operands, or ``"CALC"``: sized so that the
        array never stalls (SCALE-Sim's ``InterfaceBandwidth: CALC``).
    word_bytes : int
        Bytes per SRAM/DRAM word (SCALE-Sim hard-codes 1); capacity in words = KiB * 1024 / word_bytes.
    pe : str
        Name of the PE datapath (``"int8"``, ``"fp8_fp32acc"``, ...), carried into reports and the
        cost model; it does not change the timing.
    name : str
        Free label (run name).

    Raises
    ------
    ValueError
        A parameter out of range; the message names it and the allowed range.
    """
    rows: int = 32
    cols: int = 32
    dataflow: str = "ws"
    ifmap_sram_kib: float = 64
    filter_sram_kib: float = 64
    ofmap_sram_kib: float = 64
    dram_bw: object = "CALC"
    word_bytes: int = 1
    pe: str = "int8"
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "rows", _check_int("rows", self.rows, 1, _MAX_DIM))
        object.__setattr__(self, "cols", _check_int("cols", self.cols, 1, _MAX_DIM))
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of os, ws, is, not {self.dataflow!r}")
        for n in ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib"):
            _check_pos_number(n, getattr(self, n))
        if isinstance(self.dram_bw, str):
            if self.dram_bw.upper() != "CALC":
                raise ValueError(f"dram_bw must be a positive number of words/cycle or 'CALC', not {self.dram_bw!r}")
            object.__setattr__(self, "dram_bw", "CALC")
        else:
            try:
                _check_pos_number("dram_bw", self.dram_bw)
            except ValueError:
                raise ValueError(f"dram_bw must be a positive number of words/cycle or 'CALC', "
                                 f"not {self.dram_bw!r}") from None
        object.__setattr__(self, "word_bytes", _check_int("word_bytes", self.word_bytes, 1, 64))
        if not isinstance(self.pe, str) or not self.pe:
            raise ValueError(f"pe must be a non-empty string, not {self.pe!r}")

    @classmethod
    def from_scalesim_cfg(cls, path, **overrides):
        """Build from a SCALE-Sim ``.cfg`` file; keyword arguments override its values."""
        from .topology import read_scalesim_cfg
        kw = read_scalesim_cfg(path)
        run_name = kw.pop("run_name")
        kw.setdefault("name", run_name)
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)

    def replace(self, **kw):
        return dataclasses.replace(self, **kw)

    def sram_words(self, operand):
        """Capacity in words of the ``"ifmap"``, ``"filter"`` or ``"ofmap"`` SRAM."""
        kib = {"ifmap": self.ifmap_sram_kib, "filter": self.filter_sram_kib, "ofmap": self.ofmap_sram_kib}[operand]
        return int(kib * 1024) // self.word_bytes

    def as_dict(self):
        return dataclasses.asdict(self)


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
    """
    M: int
    K: int
    N: int
    rows: int
    cols: int
    dataflow: str

    def __post_init__(self):
        for n in ("M", "K", "N"):
            object.__setattr__(self, n, _check_int(n, getattr(self, n), 1, _MAX_GEMM))
        for n in ("rows", "cols"):
            object.__setattr__(self, n, _check_int(n, getattr(self, n), 1, _MAX_DIM))
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of os, ws, is, not {self.dataflow!r}")

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
        return self.preload + self.T + self.rows + self.cols - 2

    @property
    def drain(self):
        return self.rows if self.dataflow == "os" else 1

    @property
    def compute_cycles(self):
        return self.folds * self.fold_period - 1

    @property
    def latency(self):
        return self.compute_cycles + self.drain

    def fold_coords(self, f):
        """``(fc, fr)``: column fold and row fold of fold ``f`` (column fold outer)."""
        f = _check_int("f", f, 0, self.folds - 1)
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
        f = _check_int("f", f, 0, self.folds - 1)
        return f * self.fold_period

    def mac_cycle(self, f, i, j, t):
        """Cycle in which PE ``(i, j)`` does the ``t``-th MAC of fold ``f``: ``f*P + L + t + i + j``."""
        f = _check_int("f", f, 0, self.folds - 1)
        i = _check_int("i", i, 0, self.rows - 1)
        j = _check_int("j", j, 0, self.cols - 1)
        t = _check_int("t", t, 0, self.T - 1)
        return f * self.fold_period + self.preload + t + i + j

    def output_cycle(self, f, t_or_row):
        """Cycle in which a result vector of fold ``f`` is produced at the output port.

        WS/IS: ``t_or_row`` is the stream element ``t``; the vector is produced at
        ``f*P + L + t + R + C - 1``. OS: ``t_or_row`` is the array row ``i``, drained at
        ``(f+1)*P + R - 1 - i``.
        """
        f = _check_int("f", f, 0, self.folds - 1)
        P = self.fold_period
        if self.dataflow == "os":
            i = _check_int("row", t_or_row, 0, self.rows - 1)
            return (f + 1) * P + self.rows - 1 - i
        t = _check_int("t", t_or_row, 0, self.T - 1)
        return f * P + self.preload + t + self.rows + self.cols - 1

    def phases(self):
        """Per-fold phase lengths: ``preload, stream (T), row_skew (R-1), col_skew (C-1), period, drain``."""
        return {"preload": self.preload, "stream": self.T, "row_skew": self.rows - 1,
                "col_skew": self.cols - 1, "period": self.fold_period, "drain": self.drain}

    # --- fold-shape accounting (vectorised) -------------------------------------------------
    def used_per_fold(self):
        """``(rows_used, cols_used)`` arrays, one entry per fold in execution order."""
        r = np.full(self.row_folds, self.rows, dtype=np.int64)
        r[-1] = self.Sr - self.rows * (self.row_folds - 1)
        c = np.full(self.col_folds, self.cols, dtype=np.int64)
        c[-1] = self.Sc - self.cols * (self.col_folds - 1)
        return np.tile(r, self.col_folds), np.repeat(c, self.row_folds)


def schedule(M, K, N, cfg):
    """The :class:`Schedule` of the GEMM ``(M, K, N)`` on ``cfg`` (an :class:`ArrayConfig`)."""
    return Schedule(M, K, N, cfg.rows, cfg.cols, cfg.dataflow)


# ---------------------------------------------------------------------------------------------------
# cost-model hook


@runtime_checkable
class CostModel(Protocol):
    """What the simulator asks a cost model (the calibrated one comes from the cost issue).

    ``energy_pj(event, count, cfg)`` is called once per layer and event class in
    :data:`EVENT_CLASSES` with the count of that event; it returns picojoules or ``None``
    (unknown). ``area_um2(cfg)`` returns the array's area in square micrometres or ``None``.
    """
    name: str

    def energy_pj(self, event: str, count: float, cfg: ArrayConfig): ...

    def area_um2(self, cfg: ArrayConfig): ...


class NullCostModel:
    """The cost model that knows nothing: every energy and the area are ``None``."""
    name = "null"

    def energy_pj(self, event, count, cfg):
        return None

    def area_um2(self, cfg):
        return None


# ---------------------------------------------------------------------------------------------------
# results


_FIELDS = (
    "name", "M", "K", "N", "macs", "dataflow", "rows", "cols", "folds", "fold_period",
    "compute_cycles", "stall_cycles", "total_cycles", "prefetch_cycles", "writeback_cycles", "latency",
    "utilisation", "scalesim_utilisation", "mapping_efficiency",
    "sram_read_ifmap", "sram_read_filter", "sram_read_ofmap", "sram_write_ofmap",
    "dram_read_ifmap", "dram_read_filter", "dram_read_ofmap", "dram_write_ofmap",
    "energy_pj",
)


@dataclasses.dataclass
class LayerResult:
    """Counts for one layer (or the total of a run, with ``name == "total"``).

    ``total_cycles = compute_cycles + stall_cycles`` is, like SCALE-Sim's count, the index of the
    cycle of the last MAC (first operand at cycle 0), so the computation spans ``total_cycles + 1``
    cycles: ``utilisation = macs / (rows * cols * (total_cycles + 1))`` (at most 1: a PE does one MAC
    per cycle). ``scalesim_utilisation = macs / (rows * cols * total_cycles)`` is SCALE-Sim's "overall
    utilisation", reproduced exactly (it exceeds 1 on a 1 x 1 array; ``inf`` when total_cycles is 0).
    ``mapping_efficiency`` = mean over folds of the used fraction of the PEs (SCALE-Sim's definition). Memory counts are in words.
    ``energy_pj`` is the sum over event classes (``None`` when the cost model does not know one);
    ``energy_breakdown_pj`` gives them per class.
    """
    name: str
    M: int
    K: int
    N: int
    macs: int
    dataflow: str
    rows: int
    cols: int
    folds: int
    fold_period: int
    compute_cycles: int
    stall_cycles: int
    total_cycles: int
    prefetch_cycles: int
    writeback_cycles: int
    latency: int
    utilisation: float
    scalesim_utilisation: float
    mapping_efficiency: float
    sram_read_ifmap: int
    sram_read_filter: int
    sram_read_ofmap: int
    sram_write_ofmap: int
    dram_read_ifmap: int
    dram_read_filter: int
    dram_read_ofmap: int
    dram_write_ofmap: int
    energy_pj: object = None
    energy_breakdown_pj: dict = dataclasses.field(default_factory=dict)

    def events(self):
        """Counts per :data:`EVENT_CLASSES` entry."""
        ev = {"mac": self.macs, "pe_cycle": self.rows * self.cols * self.total_cycles,
              "cycle": self.total_cycles}
        for k in EVENT_CLASSES[3:]:
            ev[k] = getattr(self, k)
        return ev

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class SimResult:
    """Per-layer results, their total, the configuration and the array area (``None`` if unknown)."""
    config: ArrayConfig
    layers: list
    total: LayerResult
    cost_model: str = "null"
    area_um2: object = None

    def as_dict(self):
        return {"config": self.config.as_dict(), "cost_model": self.cost_model, "area_um2": self.area_um2,
                "layers": [l.as_dict() for l in self.layers], "total": self.total.as_dict()}

    def to_json(self, path=None):
        """JSON text (and write it to ``path`` when given)."""
        text = json.dumps(self.as_dict(), indent=2)
        if path is not None:
            with open(path, "w") as f:
                f.write(text + "\n")
        return text

    def to_csv(self, path=None):
        """CSV text, one row per layer plus a ``total`` row (and write it to ``path`` when given)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(_FIELDS)
        for l in self.layers + [self.total]:
            w.writerow([getattr(l, k) for k in _FIELDS])
        if path is not None:
            with open(path, "w", newline="") as f:
                f.write(buf.getvalue())
        return buf.getvalue()

    def table(self, title=None):
        """A ``rich.table.Table`` with the main per-layer figures."""
        from rich.table import Table
        c = self.config
        t = Table(title=title or f"{c.rows}x{c.cols} {c.dataflow.upper()} array, DRAM bw {c.dram_bw}, PE {c.pe}")
        cols = [("layer", "name"), ("M", "M"), ("K", "K"), ("N", "N"), ("folds", "folds"),
                ("compute cyc", "compute_cycles"), ("stall cyc", "stall_cycles"), ("util %", "utilisation"),
                ("map eff %", "mapping_efficiency"), ("SRAM rd ifmap", "sram_read_ifmap"),
                ("SRAM rd filter", "sram_read_filter"), ("SRAM wr ofmap", "sram_write_ofmap"),
                ("DRAM rd", None), ("DRAM wr", "dram_write_ofmap")]
        if self.total.energy_pj is not None:
            cols.append(("energy uJ", "energy_pj"))
        for head, _ in cols:
            t.add_column(head, justify="left" if head == "layer" else "right")
        for l in self.layers + [self.total]:
            row = []
            for head, key in cols:
                if key is None:
                    v = l.dram_read_ifmap + l.dram_read_filter + l.dram_read_ofmap
                else:
                    v = getattr(l, key)
                if key in ("utilisation", "mapping_efficiency"):
                    row.append(f"{100 * v:.2f}")
                elif key == "energy_pj":
                    row.append("-" if v is None else f"{v / 1e6:.3f}")
                elif isinstance(v, int):
                    row.append(f"{v:,}")
                else:
                    row.append(str(v))
            t.add_row(*row, style="bold" if l is self.total else None)
        return t


# ---------------------------------------------------------------------------------------------------
# simulation


def _fits(s, cfg, ifmap_words):
    """Which revisited working sets fit in half of their SRAM (see the module docstring)."""
    M, K, N = s.M, s.K, s.N
    half = {op: cfg.sram_words(op) // 2 for op in ("ifmap", "filter", "ofmap")}
    if s.dataflow == "os":
        return {"ifmap": ifmap_words <= half["ifmap"], "filter": K * min(N, cfg.cols) <= half["filter"],
                "psum": True}
    if s.dataflow == "ws":
        return {"ifmap": ifmap_words <= half["ifmap"], "filter": True,
                "psum": M * min(N, cfg.cols) <= half["ofmap"]}
    return {"ifmap": True, "filter": K * N <= half["filter"],
            "psum": min(M, cfg.cols) * N <= half["ofmap"]}


def _memory_counts(s, cfg, ifmap_words):
    """SRAM and DRAM totals in words (closed forms)."""
    M, K, N, df = s.M, s.K, s.N, s.dataflow
    rf, cf = s.row_folds, s.col_folds
    sram = {"sram_read_ifmap": M * K * (cf if df in ("os", "ws") else 1),
            "sram_read_filter": K * N * (rf if df == "os" else cf if df == "is" else 1),
            "sram_write_ofmap": M * N * (1 if df == "os" else rf),
            "sram_read_ofmap": 0 if df == "os" else M * N * (rf - 1)}
    fits = _fits(s, cfg, ifmap_words)
    if df == "os":
        dram = {"dram_read_ifmap": ifmap_words * (1 if fits["ifmap"] else cf),
                "dram_read_filter": K * N * (1 if fits["filter"] else rf),
                "dram_read_ofmap": 0, "dram_write_ofmap": M * N}
    else:
        revisit = cf if df == "ws" else 1
        dram = {"dram_read_ifmap": ifmap_words * (1 if fits["ifmap"] else revisit),
                "dram_read_filter": K * N * (1 if fits["filter"] else (cf if df == "is" else 1)),
                "dram_read_ofmap": 0 if fits["psum"] else M * N * (rf - 1),
                "dram_write_ofmap": M * N * (1 if fits["psum"] else rf)}
    return sram, dram


def _fold_traffic(s, cfg, ifmap_words, f0, f1):
    """DRAM words read for, and written by, folds ``f0 .. f1-1`` (one array entry per fold).

    ifmap tiles are parts of the im2col matrix (M x K); their DRAM words are scaled by
    ``ifmap_words / (M * K)`` (a conv layer's ifmap is smaller than its im2col matrix)."""
    M, K, N, df = s.M, s.K, s.N, s.dataflow
    rf = s.row_folds
    f = np.arange(f0, f1, dtype=np.int64)
    fc, fr = np.divmod(f, rf)
    r_used = np.minimum(s.rows, s.Sr - fr * s.rows)
    c_used = np.minimum(s.cols, s.Sc - fc * s.cols)
    fits = _fits(s, cfg, ifmap_words)
    zero = np.zeros_like(f)
    x = ifmap_words / (M * K)
    if df == "os":
        # ifmap tile r_used x K, revisited for every column fold; filter block K x c_used,
        # revisited for every row fold of its column fold; outputs r_used x c_used.
        rd = np.where((fc == 0) | (not fits["ifmap"]), r_used * K * x, 0)
        rd = rd + np.where((fr == 0) | (not fits["filter"]), K * c_used, 0)
        wr = r_used * c_used
        return rd, wr
    if df == "ws":
        # ifmap K-slice M x r_used revisited per column fold; filter tile once; psums M x c_used.
        rd = np.where((fc == 0) | (not fits["ifmap"]), M * r_used * x, 0) + r_used * c_used
        out = M * c_used
    else:
        # ifmap tile once; filter K-slice r_used x N revisited per column fold; psums c_used x N.
        rd = r_used * c_used * x + np.where((fc == 0) | (not fits["filter"]), r_used * N, 0)
        out = c_used * N
    if fits["psum"]:
        wr = np.where(fr == rf - 1, out, zero)
    else:
        rd = rd + np.where(fr > 0, out, zero)
        wr = out
    return rd, wr


_CHUNK = 1 << 20  # folds per vectorised chunk of the stall model


def _stalls(s, cfg, ifmap_words):
    """(stall, prefetch, writeback) cycles for a finite DRAM bandwidth (module docstring)."""
    bw = float(cfg.dram_bw)
    P = s.fold_period
    F = s.folds
    stall = 0
    prev_wr = None
    first_rd = last_wr = 0
    for f0 in range(0, F, _CHUNK):
        rd, wr = _fold_traffic(s, cfg, ifmap_words, f0, min(F, f0 + _CHUNK))
        if f0 == 0:
            first_rd = float(rd[0])
            window = rd[1:] + wr[:-1]
        else:
            window = rd + np.concatenate(([prev_wr], wr[:-1]))
        if window.size:
            stall += int(np.maximum(0, np.ceil(window / bw).astype(np.int64) - P).sum())
        prev_wr = wr[-1]
        last_wr = int(wr[-1])
    return stall, int(math.ceil(first_rd / bw)), int(math.ceil(last_wr / bw))


def simulate_gemm(M, K, N, cfg, name="gemm", cost_model=None, ifmap_words=None):
    """Simulate one GEMM ``ofmap[M, N] = ifmap[M, K] @ filter[K, N]``.

    Parameters
    ----------
    M, K, N : int
        1..2**40.
    cfg : ArrayConfig
    name : str
        Layer name in the report.
    cost_model : CostModel, optional
        Called once per event class; default :class:`NullCostModel`.
    ifmap_words : int, optional
        Distinct ifmap words in DRAM (a conv layer's :attr:`~lowbit.sim.topology.Layer.ifmap_words`;
        default ``M * K``).
        Only the DRAM model uses it: the SRAM streams the im2col matrix.

    Returns
    -------
    LayerResult
    """
    if not isinstance(cfg, ArrayConfig):
        raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
    s = schedule(M, K, N, cfg)
    ifmap_words = s.M * s.K if ifmap_words is None else _check_int("ifmap_words", ifmap_words, 1, _MAX_GEMM ** 2)
    sram, dram = _memory_counts(s, cfg, ifmap_words)
    P = s.fold_period
    if cfg.dram_bw == "CALC":
        stall = prefetch = writeback = 0
    else:
        stall, prefetch, writeback = _stalls(s, cfg, ifmap_words)
    total = s.compute_cycles + stall
    macs = M * K * N
    res = LayerResult(
        name=name, M=s.M, K=s.K, N=s.N, macs=macs, dataflow=cfg.dataflow, rows=cfg.rows, cols=cfg.cols,
        folds=s.folds, fold_period=P, compute_cycles=s.compute_cycles, stall_cycles=stall,
        total_cycles=total, prefetch_cycles=prefetch, writeback_cycles=writeback,
        latency=s.latency + stall,
        utilisation=macs / (cfg.rows * cfg.cols * (total + 1)),
        scalesim_utilisation=macs / (cfg.rows * cfg.cols * total) if total else math.inf,
        mapping_efficiency=(s.Sr * s.Sc) / (s.folds * cfg.rows * cfg.cols),
        **sram, **dram)
    _attach_energy(res, cfg, cost_model or NullCostModel())
    return res


def _attach_energy(res, cfg, cost_model):
    breakdown = {ev: cost_model.energy_pj(ev, n, cfg) for ev, n in res.events().items()}
    res.energy_breakdown_pj = breakdown
    vals = list(breakdown.values())
    res.energy_pj = None if any(v is None for v in vals) else float(sum(vals))


def simulate_layer(layer, cfg, cost_model=None):
    """Simulate one :class:`lowbit.sim.topology.Layer` (its GEMM view)."""
    M, K, N = layer.gemm
    return simulate_gemm(M, K, N, cfg, name=layer.name, cost_model=cost_model,
                         ifmap_words=layer.ifmap_words)


def simulate_topology(layers, cfg, cost_model=None, progress=False):
    """Simulate a list of layers (or ``(name, M, K, N)`` tuples) one after the other.

    Parameters
    ----------
    layers : iterable of Layer or (name, M, K, N)
    cfg : ArrayConfig
    cost_model : CostModel, optional
    progress : bool
        Show a rich progress bar.

    Returns
    -------
    SimResult
        ``total`` sums cycles and counts over layers (layers run back to back, no overlap);
        its utilisation is MAC-weighted, its mapping efficiency fold-weighted.
    """
    cost_model = cost_model or NullCostModel()
    if not isinstance(cost_model, CostModel):
        raise TypeError(f"cost_model must implement energy_pj() and area_um2(), not {cost_model!r}")
    items = list(layers)
    if not items:
        raise ValueError("layers must contain at least one layer")
    results = []

    def run(item):
        if isinstance(item, tuple):
            name, M, K, N = item
            return simulate_gemm(M, K, N, cfg, name=name, cost_model=cost_model)
        return simulate_layer(item, cfg, cost_model=cost_model)

    if progress:
        from rich.progress import Progress
        with Progress(transient=True) as bar:
            task = bar.add_task("simulating", total=len(items))
            for item in items:
                results.append(run(item))
                bar.advance(task)
    else:
        results = [run(item) for item in items]
    total = _sum_results(results, cfg, cost_model)
    return SimResult(config=cfg, layers=results, total=total, cost_model=cost_model.name,
                     area_um2=cost_model.area_um2(cfg))


def _sum_results(results, cfg, cost_model):
    s = {k: sum(getattr(r, k) for r in results) for k in (
        "macs", "folds", "compute_cycles", "stall_cycles", "total_cycles", "prefetch_cycles",
        "writeback_cycles", "latency", *EVENT_CLASSES[3:])}
    mapping = sum(r.mapping_efficiency * r.folds for r in results) / s["folds"]
    # layers run back to back: each spans total_cycles + 1 cycles
    span = s["total_cycles"] + len(results)
    tot = LayerResult(name="total", M=0, K=0, N=0, dataflow=cfg.dataflow, rows=cfg.rows, cols=cfg.cols,
                      fold_period=0, utilisation=s["macs"] / (cfg.rows * cfg.cols * span),
                      scalesim_utilisation=(s["macs"] / (cfg.rows * cfg.cols * s["total_cycles"])
                                            if s["total_cycles"] else math.inf),
                      mapping_efficiency=mapping, **s)
    _attach_energy(tot, cfg, cost_model)
    return tot


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
        Accumulator width, 2..63.
    overflow : {"wrap", "saturate"}
        ``"wrap"``: modulo ``2**acc_bits`` (a plain register); modular addition is associative,
        so the result does not depend on the order and :func:`gemm_numerics` uses one integer
        matmul (``order_independent``). ``"saturate"``: clamp after every step (order matters).
    """

    def __init__(self, a_format="int8", b_format="int8", acc_bits=32, overflow="wrap"):
        from lowbit.models import formats
        self.a_format = formats.get(a_format) if isinstance(a_format, str) else a_format
        self.b_format = formats.get(b_format) if isinstance(b_format, str) else b_format
        for n, f in (("a_format", self.a_format), ("b_format", self.b_format)):
            if type(f).__name__ != "IntFormat":
                raise ValueError(f"{n} must be an integer format, not {f!r}")
        self.acc_bits = _check_int("acc_bits", acc_bits, 2, 63)
        if overflow not in ("wrap", "saturate"):
            raise ValueError(f"overflow must be 'wrap' or 'saturate', not {overflow!r}")
        self.overflow = overflow
        self.order_independent = overflow == "wrap"
        self.name = f"{self.a_format.name}x{self.b_format.name}_acc{self.acc_bits}_{overflow}"

    def init(self, shape):
        return np.zeros(shape, dtype=np.int64)

    def decode_a(self, codes):
        return np.asarray(codes)

    def decode_b(self, codes):
        return np.asarray(codes)

    def step(self, acc, a, b):
        from lowbit.models.mac import int_mac_step
        return int_mac_step(acc, a, b, self.a_format, self.b_format, self.acc_bits, self.overflow)

    def result(self, acc):
        return acc

    def matmul(self, a_codes, b_codes):
        """The wrap-around result in one integer matmul (only for ``overflow="wrap"``)."""
        a = np.asarray(self.a_format.decode(a_codes), dtype=np.int64)
        b = np.asarray(self.b_format.decode(b_codes), dtype=np.int64)
        m = np.int64(1) << np.int64(self.acc_bits)
        h = np.int64(1) << np.int64(self.acc_bits - 1)
        return ((a @ b + h) & (m - 1)) - h


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
        from lowbit.models import formats
        from lowbit.models.mac import check_acc_format
        self.a_format = formats.get(a_format) if isinstance(a_format, str) else a_format
        self.b_format = formats.get(b_format) if isinstance(b_format, str) else b_format
        self.acc_format = check_acc_format(acc_format)
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
        from lowbit.models.mac import fp_mac_step
        return fp_mac_step(acc, a, b, self.a_format, self.b_format, self.acc_format, self.mode,
                           self.flush_subnormals, self.saturate)

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
        from lowbit.models import mac
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
        from lowbit.models.mac import kulisch_new_sum
        return kulisch_new_sum(shape)

    def decode_a(self, codes):
        return np.asarray(codes)

    def decode_b(self, codes):
        return np.asarray(codes)

    def step(self, acc, a, b):
        from lowbit.models.mac import kulisch_step
        return kulisch_step(acc, a, b, self.a_format, self.b_format, self.terms,
                            self.flush_subnormals)

    def result(self, acc):
        if self.output == "state":
            return self.pack(acc)
        from lowbit.models.mac import kulisch_read
        return kulisch_read(acc, self.acc_format, self.lsb_exp, self.saturate,
                            self.flush_subnormals)

    def pack(self, state):
        """``KulischState`` -> object array of ``(fixed mod 2^width) | flags << width``."""
        fixed = np.asarray(state.fixed, dtype=object)
        flags = np.asarray(state.flags).astype(object)
        return (fixed & ((1 << self.width) - 1)) | (flags << self.width)

    def unpack(self, packed):
        """Inverse of :meth:`pack`."""
        from lowbit.models.mac import KulischState
        p = np.asarray(packed, dtype=object)
        w = self.width
        raw = p & ((1 << w) - 1)
        fixed = np.asarray(raw - ((raw >> (w - 1)) << w), dtype=object)
        return KulischState(fixed, np.asarray(p >> w, dtype=object).astype(np.int64) & 15)


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
        from lowbit.models import formats
        self.a_format = formats.get(a_format) if isinstance(a_format, str) else a_format
        self.b_format = formats.get(b_format) if isinstance(b_format, str) else b_format
        for n, f in (("a_format", self.a_format), ("b_format", self.b_format)):
            if type(f).__name__ != "FloatFormat" or f.man_bits > 25:
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


def gemm_numerics(a_codes, b_codes, cfg, pe=None, block_rows=1024):
    """Run a GEMM's data through a PE datapath in the array's accumulation order.

    In all three dataflows of this simulator's schedule every output ``(m, n)`` is accumulated by
    one chain in increasing ``k``: OS accumulates ``k = 0 .. K-1`` in one PE; WS/IS accumulate
    the ``R`` values of a K-fold down a column starting from the psum of the previous K-fold (read
    back from the ofmap buffer), K-folds in increasing order. So::

        acc = pe.init(); for k in 0..K-1: acc = pe.step(acc, a[m, k], b[k, n]); out = pe.result(acc)

    vectorised over ``(m, n)`` (``block_rows`` rows of ``M`` at a time, so memory stays
    ``O(block_rows * N)``). A PE with ``order_independent = True`` and a ``matmul`` method (the
    integer PE with wrap-around) is computed with one integer matmul instead, same result.

    Parameters
    ----------
    a_codes : array (M, K)
        ifmap operand codes (bit patterns of ``pe``'s ``a`` format).
    b_codes : array (K, N)
        filter operand codes.
    cfg : ArrayConfig
        Checked for consistency; the order above holds for every dataflow and array size.
    pe : PEDatapath, optional
        Default ``IntPE()`` (INT8 x INT8, 32-bit wrapping accumulator). :class:`FpMacPE` for the
        golden FP MAC (FP8 operands, FP32/FP16/BF16 accumulator), :class:`KulischPE` for its
        exact fixed-point accumulator.

    Returns
    -------
    ndarray (M, N)
    """
    if not isinstance(cfg, ArrayConfig):
        raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
    pe = pe or IntPE()
    if not isinstance(pe, PEDatapath):
        raise TypeError(f"pe must implement the PEDatapath protocol, not {pe!r}")
    a_codes, b_codes = np.asarray(a_codes), np.asarray(b_codes)
    if a_codes.ndim != 2 or b_codes.ndim != 2 or a_codes.shape[1] != b_codes.shape[0]:
        raise ValueError(f"a_codes must be (M, K) and b_codes (K, N) with equal K, not "
                         f"{a_codes.shape} and {b_codes.shape}")
    block_rows = _check_int("block_rows", block_rows, 1, 1 << 30)
    a = pe.decode_a(a_codes)
    b = pe.decode_b(b_codes)
    M, K = a.shape
    N = b.shape[1]
    if getattr(pe, "order_independent", False) and hasattr(pe, "matmul"):
        return pe.result(pe.matmul(a_codes, b_codes))
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
