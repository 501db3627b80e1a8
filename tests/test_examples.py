"""Every script in ``examples/`` runs as a user would run it, and prints the right numbers.

Each script runs in a subprocess of this interpreter from a scratch folder; its output is
checked against an oracle that does not go through the code it demonstrates (ml_dtypes for the
formats, SCALE-Sim's measured cycle count, an exact Fraction sum, the published FP8/INT8 area
range, the co-simulation report) and the test fails when a new example has no check here.
"""

import fractions
import json
import pathlib
import re
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run(name, *args, cwd):
    r = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


CHECKED = {"fp8_formats.py", "systolic_sizing.py", "mx_dot.py", "fp_vs_int_area.py",
           "generate_and_cosim.py"}


def test_every_example_is_checked():
    assert {p.name for p in EXAMPLES.glob("*.py")} == CHECKED


def test_fp8_formats(tmp_path):
    out = run("fp8_formats.py", cwd=tmp_path)
    oracle = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2}
    lines = re.findall(r"^(e4m3|e5m2) (\S+) (\S+) -> 0x([0-9A-F]{2}) -> (\S+)$", out, re.M)
    assert len(lines) == 2 * 5 * 4
    for name, value, rounding, code, decoded in lines:
        if rounding != "nearest_even":
            continue
        want = np.array([float(value)]).astype(oracle[name]).view(np.uint8)[0]
        assert int(code, 16) == want, (name, value)
    # E4M3 has no Inf: 500 overflows to NaN (0x7F) unless saturated to 448 (0x7E)
    assert "e4m3 500 nearest_even -> 0x7F -> nan" in out
    assert "e4m3 500 nearest_even+sat -> 0x7E -> 448" in out


def test_systolic_sizing(tmp_path):
    out = run("systolic_sizing.py", cwd=tmp_path)
    # SCALE-Sim 3.0.0 on its own scale.cfg (32x32 WS) and ResNet-18: 2,519,815 compute cycles
    assert "32x32: 2519815 compute cycles, utilisation 57.0%" in out
    cycles = [int(c) for c in re.findall(r"(\d+) compute cycles", out)]
    assert len(cycles) == 3 and cycles[0] > cycles[1] > cycles[2]


def test_mx_dot(tmp_path):
    out = run("mx_dot.py", cwd=tmp_path)
    got = dict(re.findall(r"^(.+?):\s+(\S+)$", out, re.M))
    # the exact MX dot product is the exact sum of the decoded products, rounded once to FP32
    from lowbit.models import mx
    rng = np.random.default_rng(0)
    x = rng.standard_normal(128)
    y = rng.standard_normal(128) * 10.0
    xq = mx.dequantize(*mx.quantize(x, "mxfp8_e4m3", 32), "mxfp8_e4m3", 32)
    yq = mx.dequantize(*mx.quantize(y, "mxfp8_e4m3", 32), "mxfp8_e4m3", 32)
    exact = sum(fractions.Fraction(float(a)) * fractions.Fraction(float(b)) for a, b in zip(xq, yq))
    assert float(got["mx exact"]) == float(np.float32(float(exact)))
    assert float(got["fp64 of the inputs"]) == float(x @ y)
    assert float(got["mx h100_fp8"]) != float(got["mx exact"])     # truncated alignment shows


@pytest.mark.synth
def test_fp_vs_int_area(tmp_path):
    out = run("fp_vs_int_area.py", cwd=tmp_path)
    ge = dict(re.findall(r"^(int8|e4m3-fp32): (\d+) GE", out, re.M))
    ratio = float(re.search(r"area: ([\d.]+)x", out).group(1))
    assert ratio == pytest.approx(int(ge["e4m3-fp32"]) / int(ge["int8"]), abs=0.006)
    assert 1.5 <= ratio <= 2.8        # van Baalen et al. 2023: FP8 MACs +50% to +180% over INT8


@pytest.mark.cosim
def test_generate_and_cosim(tmp_path):
    out = run("generate_and_cosim.py", tmp_path / "out", cwd=tmp_path)
    man = json.loads((tmp_path / "out" / "fp_mac.json").read_text())
    assert man["latency_cycles"] == 2 and man["parameters"]["b_format"] == "e5m2"
    assert (tmp_path / "out" / "fp_mac.v").read_text().count("module fp_mac(") == 1
    assert re.search(r"vectors checked: 2000\n\s+mismatches:\s+0\n", out)
    assert out.rstrip().endswith("result: PASS")
