# amaranth: UnusedElaboratable=no
"""Design-space sweeps: a sweep file, its points, their measurement on Dask, one tidy table.

A sweep is written once, as a TOML file (:func:`load`) or the same structure as a Python dict
(:func:`from_dict`)::

    name = "int8-acc"
    targets = ["generic"]                     # generic, ice40, ecp5
    measures = ["area", "energy_gates", "error"]
    workload = "dot256-gauss"                 # for "error" (see WORKLOADS)
    seed = 0
    timeout = 600                             # seconds per point

    [[design]]                                # one block per unit (as many as wanted)
    unit = "int-mac"                          # a unit of lowbit.hdl.catalog
    params = { a_format = "int8", b_format = "int8" }   # fixed values
    constraints = ["acc_bits >= 16 or pipeline_stages == 0"]
    [design.axes]                             # the product of these lists
    acc_bits = [16, 24, 32]
    pipeline_stages = { from = 0, to = 3 }    # ranges: from..to inclusive, step or times
    [[design.zip]]                            # lists taken together, element by element
    a_format = ["int8", "int4"]
    b_format = ["int8", "int4"]

Parameter names are the catalogue's keyword names (``lowbit generate --list``, the manifest),
values as on the command line. The points of a design are the product of its axes and zip
groups, times the targets. A point is *skipped*, with the reason in the table, when one of its
constraints is false or when the generator refuses the combination (a catalogue ``TypeError``
or ``ValueError``, e.g. an accumulator too narrow for the product); a bad key or value in the
file is an error naming the file, the line and the key (:class:`SweepFileError`).

Measures (:data:`MEASURES`) and the table columns they fill (:data:`FIGURES`): synthesis with
:func:`lowbit.fpga.synth.synth` (generic: area, flip-flops, logic depth; FPGA: LUTs, carry,
DSP, Fmax), energy per MAC from the gate count (:func:`lowbit.sim.energy.energy_per_op_pj`) and
from gate-level toggles (:func:`lowbit.sim.compare.generic_with_toggles`, the stimulus of
``lowbit compare``), the numerical error on a named workload (:data:`WORKLOADS`,
:func:`workload_error`) and, for systolic arrays, the simulator's cycles, energy and area on a
topology (:func:`lowbit.sim.systolic.simulate_topology` with
:class:`lowbit.sim.cost_model.SynthCostModel`). Figures per MAC divide by the MACs the unit
does per clock (``k`` for block units, ``rows x cols`` for arrays, else 1), as
:mod:`lowbit.sim.compare` does.

Execution (:func:`run`): the points are expanded and checked on the client; a point already in
the output table (a previous run of the same file: *resume*) or in the point cache is not run
again; the rest run as Dask tasks (:mod:`distributed`), on a ``LocalCluster`` sized to the
machine (one single-threaded worker process per core) or on an existing cluster
(``scheduler=ADDRESS``). Each task measures its point in a child process of the worker, in its
own process group, so that a per-point timeout or a cancel (Ctrl-C on the client) kills the
whole group, Yosys and nextpnr included (:func:`run_task`). Results come back to the client,
which writes the table: ``points.jsonl`` (one JSON object per point, appended as each point
finishes, so that a killed run leaves a consistent prefix to resume from) and ``points.csv``
(written atomically at the end, Ctrl-C included). Failed and timed-out points are recorded
with their error and do not stop the sweep; a re-run computes them again.

Caches: synthesis results are cached where the synthesis runs, in the worker's
``$LOWBIT_CACHE`` (:mod:`lowbit.fpga.cache`; workers on other machines have their own unless
``LOWBIT_CACHE`` points at a shared folder, which is safe: entries are written atomically).
The client keeps every finished point (its table row) in its own cache, keyed by
:func:`point_id` (the unit, its parameters, the target, the measures and their settings, the
tool versions and a digest of lowbit's own source code), so a sweep re-run from the same client
(or another sweep sharing points) skips them whatever worker computed them. The client refuses
workers whose lowbit code or tool versions differ from its own (:func:`environment`).
"""

import ast
import csv
import dataclasses
import hashlib
import importlib.metadata
import io
import itertools
import json
import logging
import math
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib

import numpy as np

from lowbit.hdl import catalog
from lowbit.hdl.manifest import ports as _ports
from lowbit.hdl.manifest import to_verilog
from lowbit.models import mx as _mx

from lowbit.fpga import cache as _cache
from lowbit.fpga import synth as _synth

from . import bench_mac, bench_shared_exp
from . import compare as _compare
from . import energy as _energy
from . import topology as _topology
from .cost_model import SynthCostModel
from .systolic import ArrayConfig, simulate_topology

__all__ = ["MEASURES", "WORKLOADS", "FIGURES", "META", "PROVENANCE", "ERROR_UNITS",
           "SweepFileError", "Design", "SweepSpec", "Point", "SweepResult", "load", "from_dict",
           "expand", "point_id", "code_digest", "environment", "workload_error",
           "measure", "run_task", "run", "columns", "read_jsonl", "write_csv", "write_jsonl"]

#: Bump when the row layout or a measurement changes meaning: cached point rows then miss.
SWEEP_VERSION = "1"

#: measure -> what it adds to a row (the table columns are in :data:`FIGURES`).
MEASURES = {
    "area": "area in NAND2 equivalents, whole unit and per MAC (generic target)",
    "flip_flops": "flip-flops (generic and FPGA targets)",
    "depth": "logic depth in cells, unit delay (generic target)",
    "luts": "LUT4, carry cells and DSP blocks of the unit (ice40, ecp5)",
    "fmax": "nextpnr's achieved clock frequency in MHz (ice40, ecp5)",
    "energy_gates": "energy per MAC in pJ, (a) gate-count model, 45 nm, 0.9 V (generic target)",
    "energy_toggles": "energy per MAC in pJ, (b) gate-level toggles on random operands, 45 nm, "
                      "0.9 V (generic target)",
    "error": "relative RMS error of the workload's dot products (int-mac, fp-mac, mx-dot)",
    "cycles": "simulator cycles and utilisation of the topology (systolic)",
    "sim_energy": "simulator energy of the topology in uJ and array area in mm^2 (systolic)",
}

_GENERIC_MEASURES = {"area", "depth", "energy_gates", "energy_toggles"}
_FPGA_MEASURES = {"luts", "fmax"}
_SIM_MEASURES = {"cycles", "sim_energy"}

#: Units the ``error`` measure is defined for (the golden twins of their benches).
ERROR_UNITS = ("int-mac", "fp-mac", "mx-dot")

#: The table: identity and status, then the parameters (the union over the designs, in
#: catalogue order), then the figures, then provenance.
META = ("point", "design", "unit", "target", "status", "reason", "label")
FIGURES = ("latency", "macs_per_clock", "area_ge", "area_ge_per_mac", "flip_flops",
           "logic_depth", "luts", "carry", "dsp", "luts_per_mac", "fmax_mhz",
           "energy_gates_pj_per_mac", "energy_toggles_pj_per_mac", "error_rms_rel",
           "acc_error_rms_rel", "sim_cycles", "sim_utilisation", "sim_energy_uj", "sim_area_mm2")
PROVENANCE = ("workload", "seed", "topology", "tools", "lowbit_version", "code_digest",
              "synth_key", "synth_cached", "seconds", "worker")

#: Statuses of a row: measured, skipped before any work (constraint or generator refusal),
#: failed (the error is in ``reason``), timed out, cancelled (Ctrl-C; never written).
STATUSES = ("ok", "skipped", "failed", "timeout")

_TOP_KEYS = ("name", "description", "targets", "measures", "workload", "seed", "timeout",
             "freq_mhz", "topology", "design")
_DESIGN_KEYS = ("unit", "label", "params", "axes", "zip", "constraints")


# ---------------------------------------------------------------------------------------
# workloads of the error measure

@dataclasses.dataclass(frozen=True)
class Workload:
    """A named set of random dot products for the ``error`` measure.

    ``count`` dot products of ``length`` terms, ``x`` and ``y`` drawn i.i.d. N(0, 1) from
    ``numpy.random.default_rng(seed)`` (x first, both as ``(count, length)`` float64 arrays);
    with ``outliers`` > 0, that fraction of the x elements (drawn after y) is multiplied by
    ``outlier_scale``: the few large activation features that LLM.int8() reports (Dettmers et
    al., "LLM.int8(): 8-bit Matrix Multiplication for Transformers at Scale", NeurIPS 2022,
    section 3), which a per-tensor integer scale pays for and a block scale does not.
    """
    name: str
    count: int
    length: int
    outliers: float = 0.0
    outlier_scale: float = 1.0
    description: str = ""

    def draw(self, seed):
        """``(x, y)``, each ``(count, length)`` float64."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.count, self.length))
        y = rng.standard_normal((self.count, self.length))
        if self.outliers:
            x = np.where(rng.random(x.shape) < self.outliers, x * self.outlier_scale, x)
        return x, y


#: The workloads a sweep file can name (``workload = ...``).
WORKLOADS = {w.name: w for w in (
    Workload("dot256-gauss", 256, 256, description="256 dot products of 256 terms, x, y ~ N(0,1)"),
    Workload("dot256-outliers", 256, 256, 0.01, 32.0,
             description="as dot256-gauss, 1% of the x terms x32 (outlier features)"),
    Workload("dot64-gauss", 64, 64, description="64 dot products of 64 terms, x, y ~ N(0,1) "
                                                "(small: tests)"),
)}


def _rel_rms(y, ref):
    return float(math.sqrt(np.sum((y - ref) ** 2) / np.sum(ref ** 2)))


def workload_error(unit_name, component, workload, seed):
    """Numerical error of catalogue unit ``unit_name`` (built as ``component``) on ``workload``.

    The workload's dot products go through the unit's golden model (the ``ref_x`` twin of its
    co-simulation bench, so the unit's own parameters: formats, accumulator, rounding,
    overflow), one accumulation per dot product (a MAC: ``clear`` on the first term, the
    accumulator read after the last; an MX dot unit: one block per step, ``first`` on the first
    block). Operands are quantised first: integer formats with one symmetric per-tensor scale,
    ``absmax / max code``, round to nearest even, saturating; FP8 formats unscaled (N(0,1) lies
    well inside E4M3 and E5M2), round to nearest even, saturating; MX formats with
    :func:`lowbit.models.mx.quantize` (its shared E8M0 scale per block of ``k``).

    Returns ``(error, acc_error)``: the relative RMS error ``||d - d_ref|| / ||d_ref||`` of
    the unit's results ``d`` against ``d_ref`` = the float64 dot products of the unquantised
    inputs (quantisation and accumulation together), and against the exact dot products of the
    quantised operands (the accumulator's rounding and overflow alone; 0 for an exact
    accumulator). Deterministic in ``seed``.

    Raises
    ------
    ValueError
        ``unit_name`` not in :data:`ERROR_UNITS`, or an unknown workload.
    """
    if unit_name not in ERROR_UNITS:
        raise ValueError(f"the error measure is defined for units {', '.join(ERROR_UNITS)}, "
                         f"not {unit_name!r}")
    if workload not in WORKLOADS:
        raise ValueError(f"workload must be one of {', '.join(WORKLOADS)}, not {workload!r}")
    x, y = WORKLOADS[workload].draw(seed)
    n, length = x.shape
    ref = np.einsum("nl,nl->n", x, y)
    u = component
    if unit_name in ("int-mac", "fp-mac"):
        fa, fb = u.a_format, u.b_format
        if fa.kind == "int":
            sa, sb = np.abs(x).max() / fa.max, np.abs(y).max() / fb.max
        else:
            sa = sb = 1.0
        a = fa.encode(x / sa, saturate=True)
        b = fb.encode(y / sb, saturate=True)
        valid = np.ones((length, n), bool)
        clear = np.zeros((length, n), bool)
        clear[0] = True
        if unit_name == "int-mac":
            acc = bench_mac.ref_int_mac(u, valid, clear, a.T, b.T)["acc"][-1]
            got = acc.astype(np.float64) * sa * sb
        else:
            acc = bench_mac.ref_fp_mac(u, valid, clear, a.T, b.T)["acc"][-1]
            got = u.acc_format.decode(acc).astype(np.float64)
        exact = np.einsum("nl,nl->n", fa.decode(a), fb.decode(b)) * sa * sb
    else:                                       # mx-dot: blocks of k along the dot product
        k = u.config.n
        if length % k:
            raise ValueError(f"workload {workload!r} has dot products of {length} terms, not a "
                             f"multiple of the block length k = {k}")
        fa, fb = u.a_format, u.b_format
        ea, sa = _mx.quantize(x, fa.name, k)
        eb, sb = _mx.quantize(y, fb.name, k)
        c = length // k
        blocks_a = ea.reshape(n, c, k).transpose(1, 0, 2).astype(np.int64)
        blocks_b = eb.reshape(n, c, k).transpose(1, 0, 2).astype(np.int64)
        scale_a, scale_b = sa.T.astype(np.int64), sb.T.astype(np.int64)
        first = np.zeros((c, n), np.int64)
        first[0] = 1
        out = bench_shared_exp.ref_blocks(u, blocks_a, blocks_b, first, {},
                                          (scale_a - 127) + (scale_b - 127),
                                          (scale_a == 0xFF) | (scale_b == 0xFF))["o"][-1]
        got = out.astype(np.uint32).view(np.float32).astype(np.float64)
        exact = np.einsum("nl,nl->n", _mx.dequantize(ea, sa, fa.name, k),
                          _mx.dequantize(eb, sb, fb.name, k))
    return _rel_rms(got, ref), _rel_rms(got, exact)


# ---------------------------------------------------------------------------------------
# the sweep file

class SweepFileError(ValueError):
    """Bad keys or values in a sweep file: ``errors`` holds one line per problem, each
    ``FILE:LINE: key: message``; ``str()`` joins them with newlines."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def _split_key(key):
    """``a."b.c".d`` -> ``("a", "b.c", "d")`` (TOML dotted keys, bare or quoted)."""
    parts, cur, quote = [], "", None
    for ch in key.strip():
        if quote:
            if ch == quote:
                quote = None
            else:
                cur += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return tuple(parts)


def _depth_change(text):
    """Net count of ``[``/``{`` minus ``]``/``}`` in ``text`` outside strings and comments."""
    depth, quote = 0, None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth


def key_lines(text):
    """``{key path: line}`` (1-based) of every table header and key of the TOML ``text``.

    tomllib gives positions only for syntax errors; this light scanner recovers them for
    the validation messages. A path is a tuple of keys and array indexes, as the parsed data
    is indexed: ``[[design]]`` ... ``[design.axes]`` ... ``acc_bits = [...]`` gives
    ``("design", 0, "axes", "acc_bits")``. Keys inside inline tables and multi-line arrays
    map to the line of their outer key.
    """
    lines, counters, table, depth, ml = {}, {}, (), 0, None
    for no, line in enumerate(text.splitlines(), 1):
        if ml:                                   # inside a multi-line string
            if ml in line:
                ml = None
            continue
        if depth > 0:                            # inside a multi-line array or table
            depth += _depth_change(line)
            continue
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.match(r"^\[\[(.+?)\]\]", s) or re.match(r"^\[(.+?)\]", s)
        if m:
            parts = _split_key(m.group(1))
            path = ()
            array = s.startswith("[[")
            for i, p in enumerate(parts):
                path += (p,)
                last = i == len(parts) - 1
                if array and last:
                    counters[path] = counters.get(path, 0) + 1
                if path in counters:
                    path += (counters[path] - 1,)
            table = path
            lines.setdefault(path, no)
            continue
        m = re.match(r"^((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"
                     r"\"[^\"]*\"|'[^']*'))*)\s*=(.*)$", s)
        if not m:
            continue
        path = table + _split_key(m.group(1))
        for i in range(len(table) + 1, len(path) + 1):
            lines.setdefault(path[:i], no)
        value = m.group(2)
        if value.lstrip().startswith(('"""', "'''")):
            q = value.lstrip()[:3]
            if value.count(q) == 1:
                ml = q
        else:
            depth = max(0, _depth_change(value))
    return lines


def _dotted(path):
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class _Errors:
    def __init__(self, source, text):
        self.source = source
        self.lines = key_lines(text) if text is not None else {}
        self.items = []

    def line(self, path):
        for i in range(len(path), 0, -1):
            if tuple(path[:i]) in self.lines:
                return self.lines[tuple(path[:i])]
        return None

    def add(self, path, message):
        no = self.line(path)
        where = f"{self.source}:{no}" if no is not None else self.source
        self.items.append((no or 0, f"{where}: {_dotted(path) or '(top level)'}: {message}"))

    def raise_if_any(self):
        if self.items:                           # in file order
            raise SweepFileError([m for _, m in sorted(self.items, key=lambda t: t[0])])


@dataclasses.dataclass(frozen=True)
class Design:
    """One ``[[design]]`` block: a unit, fixed ``params``, product ``axes`` (``((name,
    values), ...)``), ``zips`` (groups of axes taken together) and ``constraints``
    (expression strings over the parameter names and ``target``)."""
    index: int
    unit: str
    label: str
    params: dict
    axes: tuple
    zips: tuple
    constraints: tuple


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A validated sweep description (see the module docstring for the meaning of each)."""
    name: str
    designs: tuple
    targets: tuple = ("generic",)
    measures: tuple = ("area",)
    workload: str = "dot256-gauss"
    seed: int = 0
    timeout: float = 1800.0
    freq_mhz: float = 100.0
    topology: str = ""
    description: str = ""
    source: str = "<dict>"

    def settings(self):
        """What besides a point's unit, parameters and target decides its row."""
        out = {"measures": sorted(self.measures)}
        if "error" in self.measures:
            out["workload"] = self.workload
            out["workload_spec"] = dataclasses.asdict(WORKLOADS[self.workload])
            out["seed"] = self.seed
        if set(self.measures) & _FPGA_MEASURES:
            out["freq_mhz"] = self.freq_mhz
        if set(self.measures) & _SIM_MEASURES:
            out["topology"] = self.topology
            out["topology_sha256"] = hashlib.sha256(
                pathlib.Path(self.topology).read_bytes()).hexdigest()
        return out


_ALLOWED_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
                  ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In,
                  ast.NotIn, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.Add, ast.Sub,
                  ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Tuple, ast.List)


def _check_constraint(expr, names):
    """``None`` if ``expr`` is a constraint over ``names``, else the problem."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        return f"not an expression ({e.msg}): {expr!r}"
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            return (f"{type(node).__name__} is not allowed in a constraint (comparisons, "
                    f"and/or/not, + - * / // %, in, names, numbers and strings): {expr!r}")
        if isinstance(node, ast.Name) and node.id not in names:
            return f"unknown name {node.id!r} in {expr!r}; names: {', '.join(sorted(names))}"
    return None


def _eval(node, env):
    """Evaluate a checked constraint tree (see :data:`_ALLOWED_NODES`)."""
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_eval(e, env) for e in node.elts)
    if isinstance(node, ast.BoolOp):
        vals = (_eval(v, env) for v in node.values)
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        return (not v) if isinstance(node.op, ast.Not) else -v
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, env), _eval(node.right, env)
        ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
               ast.Div: lambda: a / b, ast.FloorDiv: lambda: a // b, ast.Mod: lambda: a % b}
        return ops[type(node.op)]()
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, env)
            ok = {ast.Eq: lambda: left == right, ast.NotEq: lambda: left != right,
                  ast.Lt: lambda: left < right, ast.LtE: lambda: left <= right,
                  ast.Gt: lambda: left > right, ast.GtE: lambda: left >= right,
                  ast.In: lambda: left in right, ast.NotIn: lambda: left not in right}[type(op)]()
            if not ok:
                return False
            left = right
        return True
    raise ValueError(f"unexpected node {type(node).__name__}")


def _scalar(v):
    return isinstance(v, (str, int, float, bool)) and not (isinstance(v, float) and not
                                                          math.isfinite(v))


def _axis_values(value, path, errors):
    """The list of an axis: a non-empty list of scalars, or a range table."""
    if isinstance(value, list):
        if not value:
            errors.add(path, "an axis needs at least one value, not an empty list")
            return None
        bad = [v for v in value if not _scalar(v)]
        if bad:
            errors.add(path, f"axis values must be strings, integers, numbers or booleans, "
                             f"not {bad[0]!r}")
            return None
        return list(value)
    if isinstance(value, dict):
        keys = set(value)
        unknown = keys - {"from", "to", "step", "times"}
        if unknown:
            errors.add(path + (sorted(unknown)[0],), "unknown range key; a range is "
                       "{ from = A, to = B } with step = S (default 1) or times = F")
            return None
        for k in ("from", "to"):
            if k not in value:
                errors.add(path, f"a range needs 'from' and 'to' (integers), missing {k!r}")
                return None
        for k in ("from", "to", "step", "times"):
            if k in value and (isinstance(value[k], bool) or not isinstance(value[k], int)):
                errors.add(path + (k,), f"must be an integer, not {value[k]!r}")
                return None
        if "step" in value and "times" in value:
            errors.add(path, "a range takes step or times, not both")
            return None
        lo, hi = value["from"], value["to"]
        if hi < lo:
            errors.add(path + ("to",), f"must be >= from ({lo}), not {hi}")
            return None
        if "times" in value:
            f = value["times"]
            if f < 2:
                errors.add(path + ("times",), f"must be an integer >= 2, not {f}")
                return None
            if lo < 1:
                errors.add(path + ("from",), f"must be >= 1 with times, not {lo}")
                return None
            out, v = [], lo
            while v <= hi:
                out.append(v)
                v *= f
            return out
        step = value.get("step", 1)
        if step < 1:
            errors.add(path + ("step",), f"must be an integer >= 1, not {step}")
            return None
        return list(range(lo, hi + 1, step))
    errors.add(path, f"an axis is a list of values or a range table {{ from = A, to = B }}, "
                     f"not {value!r}")
    return None


def _check_value(unit, name, value, path, errors):
    """A value of parameter ``name``: the catalogue's conversion decides its type."""
    p = {q.name: q for q in unit.params}[name]
    try:
        p.convert(value)
    except (TypeError, ValueError) as e:
        errors.add(path, str(e))
        return False
    return True


def _param_name(unit, key, path, errors):
    names = [p.name for p in unit.params]
    if key in names:
        return True
    flags = {p.flag.lstrip("-"): p.name for p in unit.params}
    hint = f" (the option --{key} is the parameter {flags[key]!r})" if key in flags else ""
    errors.add(path, f"unit {unit.name!r} has no parameter {key!r}{hint}; it has "
                     f"{', '.join(names)}")
    return False


def _design(i, d, errors):
    path = ("design", i)
    if not isinstance(d, dict):
        errors.add(path, f"a design is a table with unit, params, axes, zip, constraints, "
                         f"not {d!r}")
        return None
    for key in d:
        if key not in _DESIGN_KEYS:
            errors.add(path + (key,), f"unknown key; a design takes {', '.join(_DESIGN_KEYS)}")
    if "unit" not in d:
        errors.add(path, f"missing key 'unit' (one of {', '.join(catalog.units())})")
        return None
    if not isinstance(d["unit"], str) or d["unit"] not in catalog.units():
        errors.add(path + ("unit",), f"must be one of {', '.join(catalog.units())}, "
                                     f"not {d['unit']!r}")
        return None
    unit = catalog.get_unit(d["unit"])
    label = d.get("label", "")
    if not isinstance(label, str):
        errors.add(path + ("label",), f"must be a string, not {label!r}")
    seen = {}
    params = {}
    raw_params = d.get("params", {})
    if not isinstance(raw_params, dict):
        errors.add(path + ("params",), f"must be a table of parameter = value, not "
                                       f"{raw_params!r}")
        raw_params = {}
    for key, value in raw_params.items():
        kp = path + ("params", key)
        if not _param_name(unit, key, kp, errors):
            continue
        if not _scalar(value):
            errors.add(kp, f"must be a string, integer, number or boolean, not {value!r}; "
                           f"lists go under axes")
            continue
        if _check_value(unit, key, value, kp, errors):
            params[key] = value
            seen[key] = "params"

    def axis_group(table, where):
        group = []
        for key, value in table.items():
            kp = where + (key,)
            if not _param_name(unit, key, kp, errors):
                continue
            if key in seen:
                errors.add(kp, f"parameter {key!r} is given twice (also in {seen[key]})")
                continue
            values = _axis_values(value, kp, errors)
            if values is None:
                continue
            if all([_check_value(unit, key, v, kp, errors) for v in values]):
                group.append((key, tuple(values)))
                seen[key] = _dotted(where)
        return group

    axes = d.get("axes", {})
    if not isinstance(axes, dict):
        errors.add(path + ("axes",), f"must be a table of parameter = list or range, not "
                                     f"{axes!r}")
        axes = {}
    product = axis_group(axes, path + ("axes",))
    zips = []
    zip_tables = d.get("zip", [])
    if isinstance(zip_tables, dict):
        zip_tables = [zip_tables]
    if not isinstance(zip_tables, list):
        errors.add(path + ("zip",), f"must be a table (or [[design.zip]] tables) of parameter "
                                    f"= list, not {zip_tables!r}")
        zip_tables = []
    for j, zt in enumerate(zip_tables):
        zp = path + ("zip", j)
        if not isinstance(zt, dict) or not zt:
            errors.add(zp, f"must be a non-empty table of parameter = list, not {zt!r}")
            continue
        group = axis_group(zt, zp)
        lengths = {k: len(v) for k, v in group}
        if len(set(lengths.values())) > 1:
            errors.add(zp, "zipped lists must have equal lengths, not " +
                       ", ".join(f"{k}: {n}" for k, n in lengths.items()))
            continue
        if group:
            zips.append(tuple(group))
    constraints = d.get("constraints", [])
    if isinstance(constraints, str):
        constraints = [constraints]
    if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
        errors.add(path + ("constraints",), f"must be a list of expression strings, not "
                                            f"{constraints!r}")
        constraints = []
    names = {p.name for p in unit.params} | {"target"}
    for c in constraints:
        problem = _check_constraint(c, names)
        if problem:
            errors.add(path + ("constraints",), problem)
    return Design(i, unit.name, label, params, tuple(product), tuple(zips), tuple(constraints))


def _list_of(data, key, allowed, errors, default):
    value = data.get(key, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        errors.add((key,), f"must be a non-empty list of {', '.join(allowed)}, not {value!r}")
        return tuple(default)
    out, bad = [], False
    for v in value:
        if v not in allowed:
            errors.add((key,), f"must be among {', '.join(allowed)}, not {v!r}")
            bad = True
        elif v not in out:
            out.append(v)
    return None if bad else tuple(out)


def from_dict(data, text=None, source="<dict>"):
    """Validate a sweep description (the parsed TOML, or the same as a Python dict) and return
    a :class:`SweepSpec`. ``text`` (the file's text) lets the errors name lines; ``source``
    names the file in them.

    Raises
    ------
    SweepFileError
        One line per bad key or value: ``FILE:LINE: key: message``.
    """
    errors = _Errors(source, text)
    if not isinstance(data, dict):
        errors.add((), f"a sweep is a table, not {data!r}")
        errors.raise_if_any()
    for key in data:
        if key not in _TOP_KEYS:
            errors.add((key,), f"unknown key; a sweep takes {', '.join(_TOP_KEYS)}")
    stem = pathlib.Path(source).stem if source != "<dict>" else "sweep"
    name = data.get("name", stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        errors.add(("name",), f"must be a name of letters, digits and _ . + -, not {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        errors.add(("description",), f"must be a string, not {description!r}")
    targets = _list_of(data, "targets", _synth.TARGETS, errors, ["generic"])
    measures = _list_of(data, "measures", tuple(MEASURES), errors, ["area"])
    workload = data.get("workload", "dot256-gauss")
    if workload not in WORKLOADS:
        errors.add(("workload",), f"must be one of {', '.join(WORKLOADS)}, not {workload!r}")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        errors.add(("seed",), f"must be an integer >= 0, not {seed!r}")
    timeout = data.get("timeout", 1800)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        errors.add(("timeout",), f"must be a number of seconds > 0, not {timeout!r}")
        timeout = 1800
    freq = data.get("freq_mhz", 100.0)
    if isinstance(freq, bool) or not isinstance(freq, (int, float)) or not 1 <= freq <= 1000:
        errors.add(("freq_mhz",), f"must be a number from 1 to 1000, not {freq!r}")
        freq = 100.0
    checked = targets is not None and measures is not None   # (else: said already)
    targets = targets or ("generic",)
    measures = measures or ("area",)
    fpga = [t for t in targets if t != "generic"]
    for m in measures if checked else ():
        if m in _FPGA_MEASURES and not fpga:
            errors.add(("measures",), f"measure {m!r} needs an FPGA target (ice40, ecp5) in "
                                      f"targets")
        if m in _GENERIC_MEASURES and "generic" not in targets:
            errors.add(("measures",), f"measure {m!r} needs the generic target in targets")
    topology = data.get("topology", "")
    if set(measures) & _SIM_MEASURES:
        if not isinstance(topology, str) or not topology:
            errors.add(("topology",) if "topology" in data else ("measures",),
                       "measures cycles and sim_energy need topology = a SCALE-Sim topology "
                       "CSV (a path relative to the sweep file, or a shipped name such as "
                       "'Resnet18.csv')")
        else:
            topology = _find_topology(topology, source, errors)
    elif "topology" in data:
        errors.add(("topology",), "topology is used only by the measures cycles and sim_energy")
    designs = data.get("design")
    out = []
    if not isinstance(designs, list) or not designs:
        errors.add(("design",) if "design" in data else (),
                   "a sweep needs at least one [[design]] table (unit, params, axes, zip, "
                   "constraints)")
    else:
        for i, d in enumerate(designs):
            design = _design(i, d, errors)
            if design is None:
                continue
            if "error" in measures and design.unit not in ERROR_UNITS:
                errors.add(("design", i, "unit"), f"measure 'error' is defined for units "
                           f"{', '.join(ERROR_UNITS)}, not {design.unit!r}")
            if set(measures) & _SIM_MEASURES and design.unit != "systolic":
                errors.add(("design", i, "unit"), f"measures cycles and sim_energy are defined "
                           f"for unit 'systolic', not {design.unit!r}")
            out.append(design)
    errors.raise_if_any()
    return SweepSpec(name, tuple(out), targets, measures, workload, seed, float(timeout),
                     float(freq), topology, description, source)


def _find_topology(name, source, errors):
    base = pathlib.Path(source).parent if source != "<dict>" else pathlib.Path.cwd()
    path = base / name
    if path.is_file():
        return str(path.resolve())
    try:
        return str(_topology.scalesim_file(name))
    except (ValueError, FileNotFoundError):
        errors.add(("topology",), f"no file {str(path)!r} and no shipped topology {name!r}")
        return ""


def load(path):
    """Read and validate the TOML sweep file ``path``; return a :class:`SweepSpec`.

    Raises
    ------
    SweepFileError
        A TOML syntax error (with its line) or bad keys and values (one line each).
    FileNotFoundError
        No such file.
    """
    path = str(path)
    text = pathlib.Path(path).read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        where = f"{path}:{m.group(1)}" if m else path
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise SweepFileError([f"{where}: TOML syntax error: {msg}"]) from None
    return from_dict(data, text, path)


# ---------------------------------------------------------------------------------------
# the points

@dataclasses.dataclass(frozen=True)
class Point:
    """One point: a catalogue ``unit`` with ``values`` (as in the file, for building it),
    ``params`` (every parameter that applies, typed as in the manifest), a ``target``, and
    ``skip`` (the reason when it is not measured). ``id``: :func:`point_id`."""
    design: int
    unit: str
    values: dict
    params: dict
    target: str
    skip: str
    id: str
    label: str


_DIGEST = None


def code_digest():
    """sha256 (16 hex digits) of lowbit's own Python sources (every .py file of
    ``lowbit.models``, ``hdl``, ``fpga``, ``sim``): part of :func:`point_id`, so that a row
    measured by other code is never taken for this code's."""
    global _DIGEST
    if _DIGEST is None:
        h = hashlib.sha256()
        for pkg in ("lowbit.models", "lowbit.hdl", "lowbit.fpga", "lowbit.sim"):
            for folder in sys.modules[pkg].__path__:
                for f in sorted(pathlib.Path(folder).glob("*.py")):
                    h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        _DIGEST = h.hexdigest()[:16]
    return _DIGEST


def _lowbit_version():
    try:
        return importlib.metadata.version("lowbit")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def point_id(unit, params, target, settings, tools=None):
    """The identity of a point's row: sha256 (first 16 hex digits) over
    :data:`SWEEP_VERSION`, the unit, its typed parameters, the target, the sweep
    ``settings`` (:meth:`SweepSpec.settings`), the tool versions of the target and
    :func:`code_digest`."""
    tools = _synth.tool_versions(target) if tools is None else tools
    blob = json.dumps([SWEEP_VERSION, unit, params, target, settings, tools, code_digest()],
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _label(unit, params, varying):
    flags = {p.name: p.flag.lstrip("-") for p in catalog.get_unit(unit).params}
    parts = [unit] + [f"{flags.get(k, k)}={params[k]}" for k in varying if k in params]
    return " ".join(parts)


def expand(spec):
    """Every point of ``spec`` (a :class:`SweepSpec`), in file order: designs, then the
    product of each design's axes and zip groups (the first axis varying slowest), then the
    targets. A point that a constraint rules out or that the generator refuses has ``skip``
    set to the reason; the others are built once here (cheap: no Verilog) so that the
    refusal is known before any task runs."""
    settings = spec.settings()
    tools = {t: _synth.tool_versions(t) for t in spec.targets}
    raw = []
    for d in spec.designs:
        unit = catalog.get_unit(d.unit)
        groups = [((name,), [(v,) for v in values]) for name, values in d.axes]
        groups += [(tuple(n for n, _ in z), list(zip(*[v for _, v in z]))) for z in d.zips]
        trees = [ast.parse(c, mode="eval") for c in d.constraints]
        for combo in itertools.product(*[vals for _, vals in groups]):
            values = dict(d.params)
            for (names, _), vals in zip(groups, combo):
                values.update(zip(names, vals))
            for target in spec.targets:
                skip, typed = "", {}
                try:
                    kwargs, resolved = unit.resolve(**values)
                    typed = unit.typed(resolved)
                except (TypeError, ValueError) as e:
                    skip = f"refused by the generator: {e}"
                if not skip:
                    env = dict(typed, target=target)
                    for c, tree in zip(d.constraints, trees):
                        try:
                            ok = _eval(tree, env)
                        except Exception as e:          # a comparison of None, a / 0, ...
                            skip = f"constraint {c!r} cannot be evaluated: {e}"
                            break
                        if not ok:
                            skip = f"constraint {c!r} is false"
                            break
                if not skip:
                    try:
                        unit.factory(**kwargs)       # the component's own checks
                    except (TypeError, ValueError) as e:
                        skip = f"refused by the generator: {e}"
                raw.append((d, values, typed or {k: v for k, v in values.items()}, target, skip))
    varying = {}
    for d, _, typed, _, _ in raw:
        varying.setdefault(d.unit, {})
        for k, v in typed.items():
            varying[d.unit].setdefault(k, set()).add(json.dumps(v, default=str))
    out = []
    for d, values, typed, target, skip in raw:
        keys = [k for k, vs in varying[d.unit].items() if len(vs) > 1]
        pid = point_id(d.unit, typed, target, settings, tools[target])
        label = d.label or _label(d.unit, typed, keys)
        if len(spec.targets) > 1:
            label += f" [{target}]"
        out.append(Point(d.index, d.unit, values, typed, target, skip, pid, label))
    return out


# ---------------------------------------------------------------------------------------
# measuring one point (in the task's child process)

def _macs_per_clock(unit_name, component, params):
    if unit_name in ("mx-dot", "shared-exp-adder", "bfp-adder"):
        return int(component.config.n)
    if unit_name == "systolic":
        return int(params["rows"]) * int(params["cols"])
    return 1


def measure(task):
    """Measure one point: ``task`` is a dict with ``unit``, ``values``, ``target``,
    ``measures``, ``workload``, ``seed``, ``freq_mhz``, ``topology``, ``use_cache``. Returns
    the figures (a dict of :data:`FIGURES` and provenance columns). Runs in the worker's child
    process (:func:`run_task`); callable directly for one point in this process.

    Raises
    ------
    TypeError, ValueError
        The unit refuses the values; :class:`lowbit.fpga.synth.SynthError` a tool failed.
    """
    unit = catalog.get_unit(task["unit"])
    kwargs, resolved = unit.resolve(**task["values"])
    typed = unit.typed(resolved)
    component = unit.factory(**kwargs)
    measures = set(task["measures"])
    target = task["target"]
    use_cache = task.get("use_cache", True)
    macs = _macs_per_clock(unit.name, component, typed)
    out = {"latency": getattr(component, "latency", None), "macs_per_clock": macs,
           "tools": _synth.tool_versions(target)}
    generic_synth = target == "generic" and measures & (_GENERIC_MEASURES | {"flip_flops"})
    fpga_synth = target != "generic" and measures & (_FPGA_MEASURES | {"flip_flops"})
    if generic_synth or fpga_synth:
        top = "lowbit_" + unit.name.replace("-", "_")
        text = to_verilog(component, top)
        if generic_synth:
            if "energy_toggles" in measures:
                in_ports = [(p["name"], p["width"]) for p in _ports(component)
                            if p["direction"] == "input"]
                cu = _compare.CompareUnit(unit.name, unit.name, unit.name, typed, macs)
                g, t = _compare.generic_with_toggles(cu, top, text, in_ports, use_cache)
                out["energy_toggles_pj_per_mac"] = t["pj_per_op"] / macs
            else:
                g = _synth.synth(text, top, "generic", use_cache=use_cache)
            if "area" in measures:
                out["area_ge"] = g.area_ge
                out["area_ge_per_mac"] = g.area_ge / macs
            if "flip_flops" in measures:
                out["flip_flops"] = g.flip_flops
            if "depth" in measures:
                out["logic_depth"] = g.logic_depth
            if "energy_gates" in measures:
                out["energy_gates_pj_per_mac"] = _energy.energy_per_op_pj(g) / macs
        else:
            g = _synth.synth(text, top, target, use_cache=use_cache,
                             freq_mhz=task.get("freq_mhz", 100.0))
            if "flip_flops" in measures:
                out["flip_flops"] = g.flip_flops
            if "luts" in measures:
                out.update(luts=g.luts, carry=g.carry, dsp=g.dsp, luts_per_mac=g.luts / macs)
            if "fmax" in measures:
                out["fmax_mhz"] = g.fmax_mhz
        out["synth_key"] = g.key
        out["synth_cached"] = g.from_cache
    if "error" in measures:
        out["error_rms_rel"], out["acc_error_rms_rel"] = workload_error(
            unit.name, component, task["workload"], task["seed"])
    if measures & _SIM_MEASURES:
        cfg = ArrayConfig(rows=typed["rows"], cols=typed["cols"], dataflow=typed["dataflow"],
                          pe=typed["pe"])
        model = SynthCostModel(use_cache=use_cache)
        res = simulate_topology(_topology.read_topology(task["topology"]), cfg, model)
        if "cycles" in measures:
            out["sim_cycles"] = res.total.total_cycles
            out["sim_utilisation"] = res.total.utilisation
        if "sim_energy" in measures:
            out["sim_energy_uj"] = res.total.energy_pj / 1e6
            out["sim_area_mm2"] = model.area_um2(cfg) / 1e6
    return out


def _child_main():
    """The child process of :func:`run_task` (after :data:`_CHILD` has set up its watchdog): a
    task (JSON) on standard input, the figures (one JSON line) on standard output; anything
    else the tools print goes to stderr."""
    result = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    task = json.loads(sys.stdin.read())
    try:
        row = {"status": "ok", **measure(task)}
    except Exception as e:                       # recorded in the table, the sweep goes on
        msg = f"{type(e).__name__}: {e}".strip()
        row = {"status": "failed", "reason": msg if len(msg) < 2000 else msg[:2000] + " ..."}
    result.write(json.dumps(row, default=_json_default) + "\n")
    result.flush()


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


#: The point process (``python -c _CHILD WORKER_PID``): before the slow imports, a watchdog
#: that kills the process group (the tools too) as soon as the worker that started it is gone,
#: and the same on SIGTERM; then :func:`_child_main`.
_CHILD = """\
import os, signal, sys, threading, time
parent = int(sys.argv[1])
def watch():
    while True:
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)
        time.sleep(0.25)
threading.Thread(target=watch, daemon=True).start()
signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))
from lowbit.sim import sweep
sweep._child_main()
"""
_POLL_S = 0.5


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def run_task(task, timeout, cancel=None):
    """Measure one point on a Dask worker (or anywhere): :func:`measure` in a child process
    that leads its own process group, so that Yosys/nextpnr (its children) die with it.

    The child is killed (the whole group, SIGKILL) when it runs longer than ``timeout``
    seconds (row status ``timeout``) or when the :class:`distributed.Event` named ``cancel``
    is set (status ``cancelled``: the client was interrupted); it also kills itself when the
    worker process dies. Returns the row's figures and status; never raises for a failure of
    the point (status ``failed`` with the error in ``reason``).
    """
    t0 = time.monotonic()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    event = None
    if cancel:
        # distributed is imported here: it is slow to import and only Dask tasks need it
        import distributed
        try:
            distributed.get_worker()
            event = distributed.Event(cancel)
        except ValueError:                       # not on a Dask worker: no cancel event
            event = None
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(os.getpid())], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    data = json.dumps(task, default=_json_default)
    status = None
    try:
        while True:
            try:
                # wake at the limit itself, not at the next poll tick, so that a point is
                # killed when its time is up whatever the poll interval
                left = timeout - (time.monotonic() - t0)
                out, err = proc.communicate(data, timeout=max(0.001, min(_POLL_S, left)))
                break
            except subprocess.TimeoutExpired:
                data = None
                if time.monotonic() - t0 >= timeout:
                    _kill_group(proc)
                    status = ("timeout", f"did not finish within {timeout:g} s (killed)")
                    break
                if event is not None and event.is_set():
                    _kill_group(proc)
                    status = ("cancelled", "cancelled")
                    break
    except BaseException:
        _kill_group(proc)
        raise
    seconds = round(time.monotonic() - t0, 3)
    if status is None and seconds > timeout:
        # finished inside the last poll interval but after its limit: the limit holds
        # whatever the poll granularity (a timeout below _POLL_S is a timeout, not a pass)
        status = ("timeout", f"did not finish within {timeout:g} s")
    if status is not None:
        return {"status": status[0], "reason": status[1], "seconds": seconds, "worker": worker}
    lines = [l for l in out.splitlines() if l.strip()]
    try:
        row = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = " | ".join(err.strip().splitlines()[-5:])
        row = {"status": "failed", "reason": f"the point's process exited with status "
                                             f"{proc.returncode} without a result: {tail}"}
    row.update(seconds=seconds, worker=worker)
    return row


# ---------------------------------------------------------------------------------------
# the table

def columns(spec):
    """The table's columns for ``spec``: :data:`META`, every parameter of its designs'
    units (catalogue order, first design first), :data:`FIGURES`, :data:`PROVENANCE`."""
    params = []
    for d in spec.designs:
        for p in catalog.get_unit(d.unit).params:
            if p.name not in params:
                params.append(p.name)
    return list(META) + params + list(FIGURES) + list(PROVENANCE)


def _atomic_write(path, text):
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, dict):
        return ";".join(f"{k}={x}" for k, x in sorted(v.items()))
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def write_csv(path, rows, cols):
    """Write ``rows`` (dicts) as CSV with columns ``cols`` (empty cell: not measured or not
    applicable; ``tools`` as ``name=version;...``), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in cols])
    _atomic_write(path, buf.getvalue())


def write_jsonl(path, rows):
    """Write ``rows`` as JSON Lines (one object per point, every column), atomically."""
    _atomic_write(path, "".join(json.dumps(_finite(r), sort_keys=False) + "\n" for r in rows))


def _finite(row):
    return {k: ("nan" if isinstance(v, float) and math.isnan(v) else
                ("inf" if v > 0 else "-inf") if isinstance(v, float) and math.isinf(v) else v)
            for k, v in row.items()}


def read_jsonl(path):
    """The rows of a JSON Lines table; a line that does not parse (the last line of a run
    killed mid-write) is ignored. A missing file has no rows."""
    out = []
    try:
        text = pathlib.Path(path).read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "point" in row:
            out.append(row)
    return out


class _Journal:
    """``points.jsonl`` while the sweep runs: every finished row appended in one write."""

    def __init__(self, path, rows):
        write_jsonl(path, rows)
        self.f = open(path, "a")

    def add(self, row):
        self.f.write(json.dumps(_finite(row)) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self):
        self.f.close()


# ---------------------------------------------------------------------------------------
# running a sweep

def environment(targets=("generic",)):
    """What must match between the client and every worker: lowbit's version and code digest,
    the Python version and the tool versions of ``targets``."""
    return {"lowbit": _lowbit_version(), "code_digest": code_digest(),
            "python": ".".join(map(str, sys.version_info[:2])),
            "tools": {t: _synth.tool_versions(t) for t in targets}}


@dataclasses.dataclass
class SweepResult:
    """What :func:`run` did: ``rows`` (every point, expansion order), ``counts`` (``points,
    computed, resumed, cached, skipped, ok, failed, timeout, cancelled``), the table paths,
    the wall time, the number of worker threads used and whether it was interrupted."""
    spec: SweepSpec
    rows: list
    counts: dict
    csv_path: str
    jsonl_path: str
    seconds: float
    workers: int = 0
    interrupted: bool = False


def _base_row(p, spec):
    row = {"point": p.id, "design": p.design, "unit": p.unit, "target": p.target,
           "status": "skipped" if p.skip else None, "reason": p.skip, "label": p.label,
           **p.params}
    if "error" in spec.measures:
        row.update(workload=spec.workload, seed=spec.seed)
    if set(spec.measures) & _SIM_MEASURES:
        row["topology"] = pathlib.Path(spec.topology).name
    row.update(lowbit_version=_lowbit_version(), code_digest=code_digest())
    return row


def _point_cache_key(pid):
    return hashlib.sha256(f"sweep-point:{pid}".encode()).hexdigest()


def _task(p, spec, use_cache):
    return {"unit": p.unit, "values": p.values, "target": p.target,
            "measures": list(spec.measures), "workload": spec.workload, "seed": spec.seed,
            "freq_mhz": spec.freq_mhz, "topology": spec.topology, "use_cache": use_cache}


def default_workers():
    """Worker processes of the default LocalCluster: the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run(spec, out_dir, *, client=None, scheduler=None, workers=None, resume=True,
        use_cache=True, timeout=None, progress=None):
    """Run the sweep ``spec`` and write its table to ``out_dir`` (``points.csv``,
    ``points.jsonl``; see the module docstring).

    Parameters
    ----------
    client : distributed.Client, optional
        Run the tasks there (the caller owns it).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:port``) to connect to.
    workers : int, optional
        Worker processes of the LocalCluster started otherwise (default: the cores,
        :func:`default_workers`); one thread each.
    resume : bool
        Take the rows of finished points (``ok``, ``skipped``) from a previous
        ``points.jsonl`` of ``out_dir`` instead of measuring them again.
    use_cache : bool
        Read and write the point cache and the synthesis caches.
    timeout : float, optional
        Seconds per point (default ``spec.timeout``).
    progress : callable, optional
        ``progress(counts, eta_s, row)`` after every change (``row`` the finished row or
        None); ``counts`` has ``total, done, cached, resumed, skipped, failed, running``.

    Returns a :class:`SweepResult`. On KeyboardInterrupt the running points are cancelled
    (their processes killed), the table is written with the finished points and the
    exception propagates.

    Raises
    ------
    ValueError
        Bad ``workers`` or ``timeout``; workers whose environment differs from the client's.
    """
    t_start = time.monotonic()
    timeout = spec.timeout if timeout is None else timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0, not {timeout!r}")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
            raise ValueError(f"workers must be an integer from 1 to 256, not {workers!r}")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, jsonl_path = out / "points.csv", out / "points.jsonl"
    cols = columns(spec)
    points = expand(spec)
    previous = {}
    if resume:
        for r in read_jsonl(jsonl_path):
            if r.get("status") in ("ok", "skipped"):
                previous[r["point"]] = r
    rows = {}
    counts = dict(points=len(points), computed=0, resumed=0, cached=0, skipped=0, ok=0,
                  failed=0, timeout=0)
    todo = []
    for p in points:
        if p.skip:
            rows[p.id] = _base_row(p, spec)
            counts["skipped"] += 1
        elif p.id in previous and previous[p.id].get("status") == "ok":
            rows[p.id] = previous[p.id]
            counts["resumed"] += 1
        else:
            hit = _cache.load(_point_cache_key(p.id), ("status", "point")) if use_cache else None
            if hit is not None:
                rows[p.id] = hit
                counts["cached"] += 1
            else:
                todo.append(p)
    journal = _Journal(jsonl_path, [rows[p.id] for p in points if p.id in rows])
    state = {"done": 0, "failed": 0, "running": 0, "t0": time.monotonic(), "busy": 0.0}

    def report(row=None):
        if progress is None:
            return
        done = state["done"]
        eta = None
        if done and todo:
            eta = (time.monotonic() - state["t0"]) / done * (len(todo) - done)
        progress({"total": len(points), "done": done, "cached": counts["cached"],
                  "resumed": counts["resumed"], "skipped": counts["skipped"],
                  "failed": state["failed"], "running": state["running"],
                  "todo": len(todo)}, eta, row)

    interrupted = False
    nthreads = 0
    own = []
    try:
        report()
        if todo:
            client, nthreads, own = _connect(client, scheduler, workers, spec.targets)
            state["t0"] = time.monotonic()
            cancel = f"lowbit-sweep-cancel-{os.getpid()}-{time.time_ns()}"
            try:
                _drive(client, todo, spec, use_cache, timeout, cancel, rows, counts, state,
                       journal, report, nthreads)
            except KeyboardInterrupt:
                interrupted = True
                _cancel(client, cancel, state.get("futures", []))
                raise
    finally:
        journal.close()
        for thing in reversed(own):
            try:
                thing.close()
            except Exception:                    # closing a broken cluster: nothing to keep
                pass
        ordered = [rows[p.id] for p in points if p.id in rows]
        write_jsonl(jsonl_path, ordered)
        write_csv(csv_path, ordered, cols)
    for status in ("ok", "failed", "timeout"):
        counts[status] = sum(r.get("status") == status for r in ordered)
    return SweepResult(spec, ordered, counts, str(csv_path), str(jsonl_path),
                       time.monotonic() - t_start, nthreads, interrupted)


def _connect(client, scheduler, workers, targets):
    """``(client, threads, things to close)``: the given client, a client of ``scheduler``, or
    a new LocalCluster; checks that every worker runs the client's lowbit and tools."""
    # distributed is imported here: it takes seconds to import and only a run needs it
    import distributed
    own = []
    if client is None:
        if scheduler:
            try:
                client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as e:
                raise ValueError(f"scheduler {scheduler!r} cannot be reached: {e}") from None
            own.append(client)
        else:
            # The worker processes ignore SIGINT (inherited through their spawn, and then left
            # alone by Python and asyncio): Ctrl-C in a terminal goes to the whole process
            # group, and the client, not each worker, is the one to stop the sweep cleanly.
            main = threading.current_thread() is threading.main_thread()
            old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
            try:
                cluster = distributed.LocalCluster(
                    n_workers=workers or default_workers(), threads_per_worker=1,
                    processes=True, dashboard_address=":0", silence_logs=logging.ERROR)
            finally:
                if main:
                    signal.signal(signal.SIGINT, old)
            own.append(cluster)
            client = distributed.Client(cluster)
            own.insert(0, client)
    try:
        if scheduler:                            # workers may still be joining
            try:
                client.wait_for_workers(workers or 1, timeout=60)
            except TimeoutError:
                raise ValueError(f"no Dask worker joined the scheduler {scheduler!r} within "
                                 f"60 s (start them with: dask worker {scheduler})") from None
        infos = client.run(environment, targets)
    except Exception:
        for thing in reversed(own):
            thing.close()
        raise
    mine = environment(targets)
    for address, theirs in infos.items():
        if theirs != mine:
            diff = [k for k in mine if mine[k] != theirs.get(k)]
            for thing in own:
                thing.close()
            raise ValueError(f"worker {address} runs a different {', '.join(diff)} than this "
                             f"client ({theirs[diff[0]]!r}, here {mine[diff[0]]!r}): install the "
                             f"same lowbit on every worker")
    nthreads = sum(client.nthreads().values())
    return client, nthreads, own


def _drive(client, todo, spec, use_cache, timeout, cancel, rows, counts, state, journal,
           report, nthreads):
    import distributed  # (see _connect)
    by_key = {}
    futures = []
    for p in todo:
        f = client.submit(run_task, _task(p, spec, use_cache), timeout, cancel,
                          key=f"lowbit-point-{p.id}-{cancel[-12:]}", pure=False)
        by_key[f.key] = p
        futures.append(f)
    state["futures"] = futures
    state["running"] = min(len(futures), nthreads)
    report()
    for f in distributed.as_completed(futures):
        p = by_key[f.key]
        try:
            fig = f.result()
        except Exception as e:                  # the task itself died (worker lost, ...)
            fig = {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
        row = _base_row(p, spec)
        row.update({k: v for k, v in fig.items()})
        status = row["status"]
        if status == "cancelled":                  # interrupted: not a result
            continue
        rows[p.id] = row
        journal.add(row)
        counts["computed"] += 1
        state["done"] += 1
        if status != "ok":
            state["failed"] += 1
        elif use_cache:
            _cache.store(_point_cache_key(p.id), row)
        left = len(futures) - state["done"]
        state["running"] = min(left, nthreads)
        report(row)


def _cancel(client, name, futures):
    """Ctrl-C: tell the running tasks to kill their processes, drop the queued ones."""
    import distributed  # (see _connect)
    try:
        distributed.Event(name, client=client).set()
        client.cancel(futures)
        time.sleep(3 * _POLL_S)                    # the tasks see the event and kill
    except Exception:                              # the cluster is going down anyway
        pass
