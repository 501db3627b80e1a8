"""``lowbit compare``: ratios computed from the synthesis results it reports."""

import json

import pytest

from lowbit.cli.main import main
from lowbit.fpga import compare as cmp
from lowbit.fpga import energy


@pytest.mark.synth
def test_compare_small_subset(tmp_path, capsys):
    png, js = tmp_path / "c.png", tmp_path / "c.json"
    status = main(["compare", "--units", "int4,e4m3-fp16", "--plot", str(png), "--json", str(js)])
    out = capsys.readouterr().out
    assert status == 0
    data = json.loads(js.read_text())
    rows = {r["key"]: r for r in data["rows"]}
    assert list(rows) == ["int8", "int4", "e4m3-fp16"]          # INT8 reference added first
    ref = rows["int8"]["area_ge_per_mac"]
    for key, r in rows.items():
        assert r["area_ge_per_mac"] == pytest.approx(r["generic"]["area_ge"])
        assert r["energy_pj_per_mac"] == pytest.approx(energy.energy_per_op_pj(r["generic"]["area_ge"]))
        line = next(l for l in out.splitlines() if l.startswith(cmp._select([key])[-1].label))
        assert f"{r['area_ge_per_mac'] / ref:.2f}x" in line
    # a small INT4 PE is cheaper than INT8; an FP8 MAC with FP16 accumulation is dearer
    assert rows["int4"]["area_ge_per_mac"] < ref < rows["e4m3-fp16"]["area_ge_per_mac"]
    assert "published about +53%" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_bad_input(capsys):
    assert main(["compare", "--units", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowbit compare: error: units must be among int8, e4m3-fp16") and \
        err.count("\n") == 1
    assert main(["compare", "--plot", "x.pdf"]) == 2
    assert main(["compare", "--vdd", "9"]) == 2
