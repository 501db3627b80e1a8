"""lowbit generate: Verilog + manifest + Verilator waiver files, --list, one-line errors with exit
status 2."""

import json
import re

import pytest

from lowbit.cli.main import main


def _verilog_ports(text, module):
    body = text[text.index(f"module {module}"):]
    body = body[:body.index("endmodule")]
    ports = {}
    for direction, width, name in re.findall(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?"
                                             r"(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        ports[name] = (direction, int(width) + 1 if width else 1)
    return ports


@pytest.mark.parametrize("argv,module,latency", [
    (["fp-mac", "--a", "e4m3", "--b", "e5m2", "--acc", "fp16", "--mode", "kulisch",
      "--pipeline", "2", "--terms", "256"], "fp_mac", 3),
    (["fp-mul", "--a", "e2m1", "--b", "e2m1"], "fp_mul", 1),
    (["int-mac", "--a", "int8", "--b", "uint8", "--acc-bits", "24", "--overflow", "saturate",
      "--pipeline", "1", "--name", "my_mac"], "my_mac", 2),
])
def test_generate_writes_verilog_and_manifest(tmp_path, capsys, argv, module, latency):
    assert main(["generate", *argv, "-o", str(tmp_path)]) == 0
    text = (tmp_path / f"{module}.v").read_text()
    man = json.loads((tmp_path / f"{module}.json").read_text())
    assert man["module"] == module and man["latency_cycles"] == latency
    assert man["contract"]["latency_cycles"] == latency
    vports = _verilog_ports(text, module)
    assert {p["name"]: (p["direction"], p["width"]) for p in man["ports"]} == vports
    assert all(p["meaning"] for p in man["ports"])
    assert man["tools"]["amaranth"]
    # the Verilog's own port order (the module header), which is not the list's
    header = re.search(rf"^module {module}\((.*?)\);", text, re.M).group(1)
    assert man["verilog_port_order"] == [p.strip() for p in header.split(",")]
    assert sorted(man["verilog_port_order"]) == sorted(vports)
    assert man["verilog_port_order"] != [p["name"] for p in man["ports"]]
    # every format in full, the Verilator waiver file beside the Verilog, counted
    assert all({"bits", "exp_bits", "man_bits", "bias", "specials", "nan_code_ranges"}
               <= set(d) for d in man["contract"]["formats"].values())
    vlt = (tmp_path / f"{module}.vlt").read_text()
    assert vlt.startswith("`verilator_config\n")
    lint = man["lint"]
    assert lint["measured"] and lint["waiver_file"] == f"{module}.vlt" and lint["waived"]
    assert {f"lint_off -rule {w['rule']} -file \"{module}.v\"" for w in lint["waived"]} <= \
        {line.split(" -match")[0] for line in vlt.splitlines()}
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {tmp_path / module}.v, ") and f"{module}.vlt" in out
    assert f"{sum(w['count'] for w in lint['waived'])} warning(s)" in out


def test_manifest_parameters_typed(tmp_path):
    assert main(["generate", "fp-mac", "--saturate", "--mode", "kulisch", "--terms", "64",
                 "-o", str(tmp_path)]) == 0
    man = json.loads((tmp_path / "fp_mac.json").read_text())
    assert man["parameters"]["saturate"] is True and man["parameters"]["terms"] == 64
    assert man["contract"]["overflow"].startswith("+-max")


def test_list(capsys):
    assert main(["generate", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("int-mac", "fp-mul", "fp-mac"):
        assert re.search(rf"^{name}: ", out, re.M)
    assert "--acc-bits" in out and "{fused,two_roundings,kulisch}" in out
    assert main(["generate", "--list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in data["fp-mac"]["parameters"]][:3] == ["a_format", "b_format",
                                                                      "acc_format"]


@pytest.mark.parametrize("argv,message", [
    (["fp-mac", "--acc", "e4m3"], "acc_format must be an IEEE-style float format"),
    (["fp-mac", "--pipeline", "9"], "pipeline_stages must be an integer from 0 to 2, not 9"),
    (["nope"], "unknown unit 'nope'"),
    (["int-mac", "--a", "int32"], "a_format must be an integer format int2..int16"),
    (["fp-mac", "--mode", "exact"], "--mode must be one of fused, two_roundings, kulisch"),
    (["fp-mul", "--name", "1bad"], "--name must be a Verilog identifier"),
])
def test_errors_one_line_exit_2(tmp_path, capsys, argv, message):
    assert main(["generate", *argv, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("lowbit generate: error:")


def test_missing_output_dir(capsys):
    assert main(["generate", "fp-mac"]) == 2
    assert "-o/--out" in capsys.readouterr().err
