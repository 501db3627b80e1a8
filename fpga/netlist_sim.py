"""Gate-level, cycle-based, bit-parallel simulation of the generic flow's mapped netlists.

The generic synthesis flow (:mod:`lowbit.fpga.synth`) maps a design onto the 14-cell gate set
of :data:`lowbit.fpga.synth.CELLS`; :func:`lowbit.fpga.synth.generic_netlist` returns that
mapped netlist (Yosys JSON conventions). This module runs it: NumPy, many independent
stimulus streams at once, one clock cycle at a time. It serves two purposes: checking the
synthesised gates against the golden models bit-exactly (``tests/test_netlist_sim.py``), and
counting the output transitions of every net for the data-dependent energy view
(:mod:`lowbit.sim.toggle_energy`).

Representation
--------------
Every net is one row of a ``uint64`` array of shape ``(nets, words)``; bit ``j`` of word ``w``
is the value of the net in stream ``64 * w + j`` (64 streams per word, the last word padded
and masked out of every count). Rows 0 and 1 are the constants 0 and 1 (``"x"``/``"z"`` bits
and undriven nets read as 0); then come the primary inputs, the flip-flop outputs, and the
combinational cells' outputs ordered by level.

Levelisation: a combinational cell's level is 1 + the largest level of its input nets
(primary inputs, constants and flip-flop outputs have level 0), found by a topological sort
that rejects combinational loops. Cells of one level and one type are evaluated together
with one vectorised expression (their outputs are consecutive rows), so a settle costs about
(logic depth x cell types per level) NumPy operations, whatever the number of streams.

Cycle semantics (one call of :func:`simulate` with ``cycles`` rows of stimulus)::

    for t in range(cycles):
        primary inputs <- stimulus[t]
        settle the combinational logic (zero delay)
        DFFR/DFFS with their asynchronous reset/set active: Q forced, settle again
        outputs[t] <- output ports        (values *before* the clock edge of cycle t)
        count toggles: settled nets of cycle t against those of cycle t-1 (t >= warmup)
        rising clock edge: Q <- D  (DFFR: 0 while RN = 0; DFFS: 1 while SN = 0)

so a registered output with latency 1 shows at ``outputs[t + 1]`` what the golden cycle
models (e.g. :func:`lowbit.models.mac.mac_stream`) report as "after the rising edge of cycle
t". Flip-flops start at their ``init`` value (the Verilog initial value, which Amaranth sets
to the reset value) or 0. All flip-flop clock pins must be driven by one primary input, the
clock; it is not part of the stimulus and must not feed logic.

By default the simulation has zero delay and sees at most one transition per net per cycle:
hazards and glitches (several transitions of a net within one cycle, caused by unequal path
delays) are not modelled, so toggle counts are a lower bound on real switching activity.
``delay="unit"`` gives every cell one unit of delay and evaluates all cells in lock-step from
the previous step's values until nothing changes (at most ``depth`` steps per cycle), so
that every intermediate transition is counted: the classic unit-delay estimate of glitching
(e.g. Najm, "A survey of power estimation techniques in VLSI circuits", IEEE Trans. VLSI
Systems 2(4), 1994). Real delays differ per cell and load, so it is an estimate, neither a
bound nor a measurement (see :mod:`lowbit.sim.toggle_energy`).
"""

import dataclasses

import numpy as np

from . import synth as _synth

__all__ = ["Netlist", "SimResult", "simulate", "pack_streams", "unpack_streams"]

#: Combinational cells: type -> (input pins in order, NumPy expression on uint64 words).
_OPS = {
    "INV": (("A",), lambda a: ~a),
    "BUF": (("A",), lambda a: a),
    "NAND2": (("A", "B"), lambda a, b: ~(a & b)),
    "NOR2": (("A", "B"), lambda a, b: ~(a | b)),
    "AND2": (("A", "B"), lambda a, b: a & b),
    "OR2": (("A", "B"), lambda a, b: a | b),
    "AOI21": (("A", "B", "C"), lambda a, b, c: ~((a & b) | c)),
    "OAI21": (("A", "B", "C"), lambda a, b, c: ~((a | b) & c)),
    "XOR2": (("A", "B"), lambda a, b: a ^ b),
    "XNOR2": (("A", "B"), lambda a, b: ~(a ^ b)),
    "MUX2": (("A", "B", "S"), lambda a, b, s: (a & ~s) | (b & s)),
}
#: Flip-flops: type -> asynchronous control pin (None: plain DFF).
_FFS = {"DFF": None, "DFFR": "RN", "DFFS": "SN"}

# the simulator must cover the whole gate set of the flow
assert set(_OPS) | set(_FFS) == set(_synth.CELLS), "netlist_sim out of step with synth.CELLS"

_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


class Netlist:
    """A mapped netlist, parsed and levelised for :func:`simulate`.

    Parameters
    ----------
    netlist : dict
        The mapped top module as returned by :func:`lowbit.fpga.synth.generic_netlist`
        (``ports``, ``cells``, optional ``init``), or a full Yosys JSON document with one
        module (``{"modules": {...}}``; the module named ``top``).
    top : str, optional
        Module to take from a full Yosys JSON document.

    Attributes
    ----------
    inputs, outputs : dict
        Port name -> array of row indices, least significant bit first (the clock excluded
        from ``inputs``).
    clock : str or None
        Name of the clock input (None for a purely combinational netlist).
    n_nets : int
        Number of rows (nets, constants included).
    cells : list of (name, type, output row)
        Every cell, combinational and flip-flop.
    ff_q, ff_d : ndarray
        Rows of the flip-flops' Q and D.
    loads : list of list of (type, pin)
        For every row, the cell input pins it drives (clock pins excluded).
    driver : list of str
        For every row, what drives it: ``"const"``, ``"input"``, ``"ff"`` or a cell type.
    port_loads : ndarray
        For every row, how many output-port bits it drives.
    depth : int
        Number of combinational levels.

    Raises
    ------
    ValueError
        A cell type outside the flow's gate set, a combinational loop, a net with two
        drivers, or flip-flops clocked by anything but one primary input.
    """

    def __init__(self, netlist, top=None):
        if "modules" in netlist:
            mods = netlist["modules"]
            if top is None:
                if len(mods) != 1:
                    raise ValueError(f"top must name one of the modules {', '.join(mods)}, not None")
                top = next(iter(mods))
            netlist = _synth.netlist_module(netlist, top)
        ports, cells = netlist["ports"], netlist["cells"]
        init = {int(k): int(v) for k, v in netlist.get("init", {}).items()}
        for name, c in cells.items():
            if c["type"] not in _OPS and c["type"] not in _FFS:
                raise ValueError(f"cell {name!r} has type {c['type']!r}, which is not in the "
                                 f"generic gate set ({', '.join(_synth.CELLS)})")

        # the clock: the one net on every flip-flop's C pin
        clock_bits = {tuple(c["connections"]["C"]) for c in cells.values() if c["type"] in _FFS}
        clock = None
        if clock_bits:
            if len(clock_bits) != 1 or not isinstance(next(iter(clock_bits))[0], int):
                raise ValueError("flip-flops must all be clocked by one primary input")
            cbit = next(iter(clock_bits))[0]
            for pname, p in ports.items():
                if p["direction"] == "input" and p["bits"] == [cbit]:
                    clock = pname
            if clock is None:
                raise ValueError("flip-flops must all be clocked by one primary input")

        index = {}                   # Yosys bit -> row
        self.driver = ["const", "const"]
        rows = 2

        def new_row(bit, kind):
            nonlocal rows
            if bit in index:
                raise ValueError(f"net {bit} has more than one driver")
            index[bit] = rows
            self.driver.append(kind)
            rows += 1

        in_ports = [(n, p) for n, p in ports.items() if p["direction"] == "input" and n != clock]
        for n, p in in_ports:
            for b in p["bits"]:
                if isinstance(b, int) and b not in index:
                    new_row(b, "input")
        if clock is not None:
            new_row(ports[clock]["bits"][0], "clock")
        ffs = [(n, c) for n, c in cells.items() if c["type"] in _FFS]
        for n, c in ffs:
            new_row(c["connections"]["Q"][0], "ff")

        # levelise the combinational cells (Kahn); sources: rows known so far
        comb = [(n, c) for n, c in cells.items() if c["type"] in _OPS]
        out_bit = {}
        for n, c in comb:
            y = c["connections"]["Y"][0]
            if not isinstance(y, int):
                raise ValueError(f"cell {n!r} drives a constant")
            if y in index or y in out_bit:
                raise ValueError(f"net {y} has more than one driver")
            out_bit[y] = n
        level = {}
        by_name = dict(comb)
        waiting = {}                 # bit -> cells waiting for it
        missing = {}
        ready = []
        for n, c in comb:
            ins = [b for p in _OPS[c["type"]][0] for b in c["connections"][p]]
            pend = {b for b in ins if isinstance(b, int) and b in out_bit}
            missing[n] = len(pend)
            for b in pend:
                waiting.setdefault(b, []).append(n)
            if not pend:
                ready.append(n)
        bit_level = {}
        order = []
        while ready:
            n = ready.pop()
            c = by_name[n]
            ins = [b for p in _OPS[c["type"]][0] for b in c["connections"][p]]
            lv = 1 + max((bit_level.get(b, 0) for b in ins if isinstance(b, int)), default=0)
            level[n] = lv
            y = c["connections"]["Y"][0]
            bit_level[y] = lv
            order.append(n)
            for m in waiting.get(y, ()):
                missing[m] -= 1
                if missing[m] == 0:
                    ready.append(m)
        if len(order) != len(comb):
            raise ValueError("combinational loop in the netlist")
        order.sort(key=lambda n: (level[n], by_name[n]["type"], n))
        for n in order:
            new_row(by_name[n]["connections"]["Y"][0], by_name[n]["type"])
        self.n_nets = rows
        self.depth = max(level.values(), default=0)

        def row(bit):
            if isinstance(bit, int):
                return index.get(bit, 0)          # undriven: reads as 0
            return 1 if bit == "1" else 0        # "0", "x", "z"

        self.clock = clock
        self.inputs = {n: np.array([row(b) for b in p["bits"]], dtype=np.intp) for n, p in in_ports}
        self.outputs = {n: np.array([row(b) for b in p["bits"]], dtype=np.intp)
                        for n, p in ports.items() if p["direction"] == "output"}

        # groups of (type, start row, end row, input rows per pin)
        self._groups = []
        i = 0
        while i < len(order):
            t, lv = by_name[order[i]]["type"], level[order[i]]
            j = i
            while j < len(order) and by_name[order[j]]["type"] == t and level[order[j]] == lv:
                j += 1
            pins = _OPS[t][0]
            ins = tuple(np.array([row(by_name[n]["connections"][p][0]) for n in order[i:j]],
                                 dtype=np.intp) for p in pins)
            start = index[by_name[order[i]]["connections"]["Y"][0]]
            self._groups.append((t, start, start + (j - i), ins))
            i = j
        # the same cells grouped by type only, for the unit-delay mode (all levels at once)
        self._by_type = []
        for t in sorted({g[0] for g in self._groups}):
            gs = [g for g in self._groups if g[0] == t]
            outs = np.concatenate([np.arange(s, e, dtype=np.intp) for _, s, e, _ in gs])
            ins = tuple(np.concatenate([g[3][k] for g in gs]) for k in range(len(_OPS[t][0])))
            self._by_type.append((t, outs, ins))
        self.comb_rows = np.zeros(rows, dtype=bool)
        for _, s, e, _ in self._groups:
            self.comb_rows[s:e] = True

        self.ff_q = np.array([index[c["connections"]["Q"][0]] for _, c in ffs], dtype=np.intp)
        self.ff_d = np.array([row(c["connections"]["D"][0]) for _, c in ffs], dtype=np.intp)
        self.ff_types = [c["type"] for _, c in ffs]
        self.ff_init = np.array([init.get(c["connections"]["Q"][0], 0) for _, c in ffs], dtype=np.uint8)
        self._async = []
        for kind, pin in (("DFFR", "RN"), ("DFFS", "SN")):
            sel = [k for k, (_, c) in enumerate(ffs) if c["type"] == kind]
            if sel:
                ctl = np.array([row(ffs[k][1]["connections"][pin][0]) for k in sel], dtype=np.intp)
                self._async.append((kind, np.array(sel, dtype=np.intp), ctl))

        # loads and the cell list
        self.loads = [[] for _ in range(rows)]
        self.cells = []
        for n, c in cells.items():
            t = c["type"]
            pins = _OPS[t][0] if t in _OPS else ("D",) + ((_FFS[t],) if _FFS[t] else ())
            for p in pins:
                self.loads[row(c["connections"][p][0])].append((t, p))
            out = c["connections"]["Y" if t in _OPS else "Q"][0]
            self.cells.append((n, t, index[out]))
        self.port_loads = np.zeros(rows, dtype=np.int64)
        for idx in self.outputs.values():
            np.add.at(self.port_loads, idx, 1)
        for r in (0, 1):
            self.loads[r] = []           # constants never switch
            self.port_loads[r] = 0
        if clock is not None and (self.loads[index[cbit]] or self.port_loads[index[cbit]]):
            raise ValueError(f"the clock {clock!r} must drive only flip-flop clock pins")

    @property
    def n_ff(self):
        return len(self.ff_q)

    def settle(self, V):
        """Evaluate every combinational group in level order on the state array ``V``."""
        for t, s, e, ins in self._groups:
            V[s:e] = _OPS[t][1](*(V[i] for i in ins))

    def settle_unit_delay(self, V, counts=None, mask=None):
        """Settle with one unit of delay per cell, counting every transition (glitches too).

        Each step evaluates every combinational cell from the values of the previous step
        (all cells at once); the loop ends when nothing changes (at most ``depth`` steps). The
        settled values equal those of :meth:`settle`. With ``counts``, the transitions of
        each cell output in the streams of ``mask`` are added to ``counts[row]``.
        """
        for _ in range(self.depth + 1):
            new = [_OPS[t][1](*(V[i] for i in ins)) for t, _, ins in self._by_type]
            changed = False
            for (t, outs, _), val in zip(self._by_type, new):
                diff = val ^ V[outs]
                if diff.any():
                    changed = True
                    if counts is not None:
                        counts[outs] += np.bitwise_count(diff & mask).sum(axis=1, dtype=np.int64)
                    V[outs] = val
            if not changed:
                return
        raise AssertionError("unit-delay settle did not converge")   # acyclic: cannot happen

    def apply_async(self, V):
        """Force flip-flops whose asynchronous reset/set is active; True if a Q changed."""
        changed = False
        for kind, sel, ctl in self._async:
            q = self.ff_q[sel]
            old = V[q]
            new = old & V[ctl] if kind == "DFFR" else old | ~V[ctl]
            if not np.array_equal(old, new):
                V[q] = new
                changed = True
        return changed

    def clock_edge(self, V):
        """Rising clock edge: every Q takes its D (asynchronous controls applied)."""
        if not len(self.ff_q):
            return
        d = V[self.ff_d]
        for kind, sel, ctl in self._async:
            d[sel] = d[sel] & V[ctl] if kind == "DFFR" else d[sel] | ~V[ctl]
        V[self.ff_q] = d


def pack_streams(values, bits, streams_padded=None):
    """Pack ``values`` of shape ``(cycles, streams)`` (integers, two's complement for negative
    ones; an object array of Python integers for ports wider than 64 bits) into
    ``(cycles, bits, words)`` uint64, bit ``i`` of stream ``s`` at bit ``s % 64`` of
    word ``s // 64``."""
    v = np.asarray(values)
    if v.ndim != 2:
        raise ValueError(f"stimulus arrays must have shape (cycles, streams), not {v.shape}")
    cycles, streams = v.shape
    padded = streams_padded or -(-streams // 64) * 64
    if v.dtype == object:                      # Python integers: ports wider than 64 bits
        parts = []
        for lo in range(0, bits, 32):
            w = min(32, bits - lo)
            chunk = np.asarray((v >> lo) & ((1 << w) - 1), dtype=np.int64)
            parts.append(pack_streams(chunk, w, padded))
        return np.concatenate(parts, axis=1)
    if v.dtype.kind not in "iub":
        raise ValueError(f"stimulus arrays must hold integers, not {v.dtype}")
    u = v.astype(np.int64).view(np.uint64) if v.dtype.kind == "i" else v.astype(np.uint64)
    shifts = np.arange(bits, dtype=np.uint64)
    b = ((u[:, None, :] >> shifts[None, :, None]) & np.uint64(1)).astype(np.uint8)
    if padded > streams:
        b = np.concatenate([b, np.zeros((cycles, bits, padded - streams), np.uint8)], axis=2)
    packed = np.packbits(b, axis=2, bitorder="little")
    return packed.view("<u8").reshape(cycles, bits, padded // 64)


def unpack_streams(packed, streams):
    """Inverse of :func:`pack_streams`: ``(cycles, bits, words)`` -> ``(cycles, streams)``
    uint64 (at most 64 bits)."""
    cycles, bits, words = packed.shape
    if bits > 64:
        raise ValueError(f"ports wider than 64 bits cannot be unpacked, not {bits}")
    b = np.unpackbits(np.ascontiguousarray(packed).view(np.uint8).reshape(cycles, bits, words * 8),
                      axis=2, bitorder="little")[:, :, :streams].astype(np.uint64)
    weights = np.left_shift(np.uint64(1), np.arange(bits, dtype=np.uint64))
    return (b * weights[None, :, None]).sum(axis=1, dtype=np.uint64)


@dataclasses.dataclass
class SimResult:
    """Result of :func:`simulate`.

    Attributes
    ----------
    outputs : dict
        Output port -> ``(cycles, streams)`` uint64: the value of the port in cycle ``t``
        before the clock edge (see the module docstring).
    toggles : ndarray or None
        Per row of the :class:`Netlist`: output transitions counted over all streams and the
        counted cycles (``warmup`` .. ``cycles - 1``), each cycle's settled value against the
        previous one. None unless ``count_toggles``.
    counted_cycles : int
        Cycles whose toggles were counted.
    streams : int
    netlist : Netlist
    """
    outputs: dict
    toggles: object
    counted_cycles: int
    streams: int
    netlist: Netlist

    def cell_toggles(self):
        """``{cell name: transitions of its output}`` (needs ``count_toggles``)."""
        if self.toggles is None:
            raise ValueError("count_toggles must be True to report toggles, not False")
        return {n: int(self.toggles[r]) for n, _, r in self.netlist.cells}

    def toggle_rate(self, rows=None):
        """Mean transitions per net per cycle per stream over ``rows`` (default: all nets
        driven by a cell)."""
        if self.toggles is None:
            raise ValueError("count_toggles must be True to report toggles, not False")
        if rows is None:
            rows = np.array([r for _, _, r in self.netlist.cells], dtype=np.intp)
        n = len(rows) * self.counted_cycles * self.streams
        return float(self.toggles[rows].sum()) / n if n else 0.0


def simulate(netlist, stimulus, *, outputs=None, count_toggles=False, warmup=1, delay="zero"):
    """Run ``netlist`` cycle by cycle on many independent streams.

    Parameters
    ----------
    netlist : Netlist or dict
        A :class:`Netlist` or the dict of :func:`lowbit.fpga.synth.generic_netlist`.
    stimulus : dict
        Input port name -> integer array of shape ``(cycles, streams)`` (port bit patterns;
        negative values are taken as two's complement). Every array has the same shape;
        inputs left out (e.g. ``rst``) are held at 0. The clock is implicit.
    outputs : list of str, optional
        Output ports to record (default: all).
    count_toggles : bool
        Count the transitions of every net (:attr:`SimResult.toggles`).
    warmup : int
        First cycle whose transitions are counted (0..cycles; cycle 0 compares against the
        all-zero state before the first settle, so the default 1 skips it).
    delay : {"zero", "unit"}
        ``"zero"``: every net switches at most once per cycle (no glitches). ``"unit"``: every
        cell has one unit of delay, and every transition of a cell output on the way to the
        settled value is counted (glitches under the unit-delay assumption; primary inputs and
        flip-flop outputs switch at the start of the cycle). Outputs are the same.

    Returns
    -------
    SimResult

    Raises
    ------
    ValueError
        Unknown port names, mismatched shapes, ``warmup`` or ``delay`` out of range.
    """
    if delay not in ("zero", "unit"):
        raise ValueError(f"delay must be 'zero' or 'unit', not {delay!r}")
    net = netlist if isinstance(netlist, Netlist) else Netlist(netlist)
    if not stimulus:
        raise ValueError("stimulus must give at least one input port, not an empty dict")
    shapes = set()
    for name, arr in stimulus.items():
        if name not in net.inputs:
            raise ValueError(f"stimulus port must be one of {', '.join(net.inputs) or '(none)'}, "
                             f"not {name!r}")
        shapes.add(np.shape(arr))
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"stimulus arrays must all have one shape (cycles, streams), "
                         f"not {sorted(shapes)}")
    n_cycles, streams = next(iter(shapes))
    if streams < 1 or n_cycles < 1:
        raise ValueError(f"stimulus must have at least one cycle and one stream, "
                         f"not {(n_cycles, streams)}")
    outputs = list(net.outputs) if outputs is None else list(outputs)
    for o in outputs:
        if o not in net.outputs:
            raise ValueError(f"outputs must be among {', '.join(net.outputs)}, not {o!r}")
    warmup = int(warmup)
    if not 0 <= warmup <= n_cycles:
        raise ValueError(f"warmup must be in 0..{n_cycles}, not {warmup!r}")
    words = -(-streams // 64)
    packed_in = {n: pack_streams(a, len(net.inputs[n])) for n, a in stimulus.items()}
    V = np.zeros((net.n_nets, words), dtype=np.uint64)
    V[1] = _ONES
    V[net.ff_q] = np.where(net.ff_init[:, None] == 1, _ONES, np.uint64(0))
    mask = np.full(words, _ONES, dtype=np.uint64)
    if streams % 64:
        mask[-1] = np.uint64((1 << (streams % 64)) - 1)
    out_rows = {o: net.outputs[o] for o in outputs}
    rec = {o: np.empty((n_cycles, len(r), words), dtype=np.uint64) for o, r in out_rows.items()}
    toggles = np.zeros(net.n_nets, dtype=np.int64) if count_toggles else None
    prev = V.copy() if count_toggles else None
    for t in range(n_cycles):
        for n, p in packed_in.items():
            V[net.inputs[n]] = p[t]
        counting = count_toggles and t >= warmup

        def settle():
            if delay == "unit":
                net.settle_unit_delay(V, toggles if counting else None, mask)
            else:
                net.settle(V)
        settle()
        for _ in range(8):
            if not net._async or not net.apply_async(V):
                break
            settle()
        for o, r in out_rows.items():
            rec[o][t] = V[r]
        if count_toggles:
            if counting:
                cyc = np.bitwise_count((V ^ prev) & mask).sum(axis=1, dtype=np.int64)
                if delay == "unit":          # cell outputs were counted step by step
                    cyc[net.comb_rows] = 0
                toggles += cyc
            prev[...] = V
        net.clock_edge(V)
    outs = {o: unpack_streams(p, streams) for o, p in rec.items()}
    return SimResult(outs, toggles, n_cycles - warmup if count_toggles else 0, streams, net)
