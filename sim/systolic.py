"""Behavioural cycle-level simulator of a systolic GEMM array (OS / WS / IS dataflows).

The simulator counts cycles and memory accesses of ``ofmap[M, N] = ifmap[M, K] @ filter[K, N]`` on an
``rows x cols`` array **analytically** (closed forms over the few distinct fold shapes, plus
NumPy arrays of one entry per fold for the bandwidth-stall model), so a 4096^3 GEMM on a 128 x 128
array takes microseconds and memory does not grow with the layer. Optional numerics
(:func:`lowbit.models.systolic.gemm_numerics`) run the layer's data through a processing-element step function in the
array's accumulation order.

Timing model
------------
The schedule of a GEMM on the array (mapping, folds, preload, skew, fold period ``P``,
``compute_cycles``, ``latency``) is the golden model's :class:`lowbit.models.systolic.Schedule`,
which the RTL array follows cycle for cycle; its docstring gives the phases. This module adds
what the RTL does not decide: the memory system and its stalls.

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
:func:`lowbit.models.systolic.gemm_numerics` runs a layer's data through a PE datapath in the
array's accumulation order.
"""

import csv
import dataclasses
import io
import json
import math
from typing import Protocol, runtime_checkable

import numpy as np
from rich.progress import Progress

from lowbit.models.checks import check_choice, check_int, check_number
from lowbit.models.systolic import DATAFLOWS, MAX_GEMM, MAX_PE_STAGES, Schedule

from .topology import Layer, read_scalesim_cfg

__all__ = [
    "EVENT_CLASSES", "ArrayConfig", "schedule", "LayerResult", "SimResult",
    "simulate_gemm", "simulate_layer", "simulate_topology", "CostModel", "NullCostModel",
]

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
    pe_stages : int
        PE latency in cycles, 1..:data:`lowbit.models.systolic.MAX_PE_STAGES` (default 1, the
        one-cycle PE SCALE-Sim models: SCALE-Sim has no PE latency, so its agreement holds for
        1 only). ``S > 1`` is a pipelined PE (:class:`lowbit.models.systolic.Schedule`, "Pipelined
        PEs"): WS/IS fold period ``L + T + (R-1)*S + C - 1`` and drain ``S``; OS drain
        ``R + S - 1``.
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
    pe_stages: int = 1

    def __post_init__(self):
        object.__setattr__(self, "rows", check_int("rows", self.rows, 1, _MAX_DIM))
        object.__setattr__(self, "cols", check_int("cols", self.cols, 1, _MAX_DIM))
        check_choice("dataflow", self.dataflow, DATAFLOWS)
        for n in ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib"):
            check_number(n, getattr(self, n), positive=True)   # the value is kept as given
        if isinstance(self.dram_bw, str):
            if self.dram_bw.upper() != "CALC":
                raise ValueError(f"dram_bw must be a positive number of words/cycle or 'CALC', not {self.dram_bw!r}")
            object.__setattr__(self, "dram_bw", "CALC")
        else:
            try:
                check_number("dram_bw", self.dram_bw, positive=True)
            except (TypeError, ValueError):
                raise ValueError(f"dram_bw must be a positive number of words/cycle or 'CALC', "
                                 f"not {self.dram_bw!r}") from None
        object.__setattr__(self, "word_bytes", check_int("word_bytes", self.word_bytes, 1, 64))
        object.__setattr__(self, "pe_stages",
                           check_int("pe_stages", self.pe_stages, 1, MAX_PE_STAGES))
        if not isinstance(self.pe, str):
            raise TypeError(f"pe must be a PE name (a string), not {self.pe!r}")
        if not self.pe:
            raise ValueError(f"pe must be a non-empty PE name, not {self.pe!r}")

    @classmethod
    def from_scalesim_cfg(cls, path, **overrides):
        """Build from a SCALE-Sim ``.cfg`` file; keyword arguments override its values."""
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


def schedule(M, K, N, cfg):
    """The :class:`Schedule` of the GEMM ``(M, K, N)`` on ``cfg`` (an :class:`ArrayConfig`)."""
    return Schedule(M, K, N, cfg.rows, cfg.cols, cfg.dataflow, cfg.pe_stages)


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
        """CSV text, one row per layer (the total is in :meth:`as_dict` and :meth:`rows`), and
        write it to ``path`` when given."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(_FIELDS)
        for l in self.layers:
            w.writerow([getattr(l, k) for k in _FIELDS])
        if path is not None:
            with open(path, "w", newline="") as f:
                f.write(buf.getvalue())
        return buf.getvalue()

    def title(self):
        c = self.config
        return f"{c.rows}x{c.cols} {c.dataflow.upper()} array, DRAM bw {c.dram_bw}, PE {c.pe}"

    def rows(self):
        """The main per-layer figures and the total as text rows, header first (for
        :func:`lowbit.cli.table.print_table`)."""
        cols = [("layer", "name"), ("M", "M"), ("K", "K"), ("N", "N"), ("folds", "folds"),
                ("compute cyc", "compute_cycles"), ("stall cyc", "stall_cycles"), ("util %", "utilisation"),
                ("map eff %", "mapping_efficiency"), ("SRAM rd ifmap", "sram_read_ifmap"),
                ("SRAM rd filter", "sram_read_filter"), ("SRAM wr ofmap", "sram_write_ofmap"),
                ("DRAM rd", None), ("DRAM wr", "dram_write_ofmap")]
        if self.total.energy_pj is not None:
            cols.append(("energy uJ", "energy_pj"))
        out = [[head for head, _ in cols]]
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
                elif l is self.total and key in ("M", "K", "N"):
                    row.append("")                      # no shape for the total
                elif isinstance(v, int):
                    row.append(f"{v:,}")
                else:
                    row.append(str(v))
            out.append(row)
        return out


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
    ifmap_words = s.M * s.K if ifmap_words is None else check_int("ifmap_words", ifmap_words, 1, MAX_GEMM ** 2)
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
    if not isinstance(cfg, ArrayConfig):
        raise TypeError(f"cfg must be an ArrayConfig, not {type(cfg).__name__}")
    try:
        items = list(layers)
    except TypeError:
        raise TypeError(f"layers must be an iterable of Layer or (name, M, K, N) tuples, not "
                        f"{type(layers).__name__}") from None
    if not items:
        raise ValueError("layers must contain at least one layer")
    for i, item in enumerate(items):
        if isinstance(item, tuple):
            if len(item) != 4:
                raise ValueError(f"layers[{i}] must be a Layer or a (name, M, K, N) tuple, not a "
                                 f"tuple of {len(item)}: {item!r}")
        elif not isinstance(item, Layer):
            raise TypeError(f"layers[{i}] must be a Layer or a (name, M, K, N) tuple, not "
                            f"{type(item).__name__}")
    results = []

    def run(item):
        if isinstance(item, tuple):
            name, M, K, N = item
            return simulate_gemm(M, K, N, cfg, name=name, cost_model=cost_model)
        return simulate_layer(item, cfg, cost_model=cost_model)

    if progress:
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
