"""``lowbit compare``: ratios computed from the synthesis results it reports."""

import json

import numpy as np
import pytest

from lowbit.cli.main import main
from lowbit.sim import compare as cmp
from lowbit.fpga import synth
from lowbit.sim import energy, toggle_energy
from lowbit.hdl.catalog import get_unit
from lowbit.hdl.manifest import ports, to_verilog
from lowbit.models import formats, mx


def _direct_toggles(cu):
    """(b) of compare unit ``cu`` computed here from its netlist, per MAC."""
    component, _ = get_unit(cu.unit).build(**cu.params)
    name = "lowbit_" + cu.key.replace("-", "_")
    _, net = synth.generic_netlist(to_verilog(component, name), name)
    ins = [(p["name"], p["width"]) for p in ports(component) if p["direction"] == "input"]
    r = toggle_energy.toggle_energy(net, stimulus=cmp.toggle_stimulus(cu, ins), warmup=8)
    return r.pj_per_op / cu.macs


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
    ref_b = rows["int8"]["energy_toggles_pj_per_mac"]
    for key, r in rows.items():
        assert r["area_ge_per_mac"] == pytest.approx(r["generic"]["area_ge"])
        assert r["energy_pj_per_mac"] == pytest.approx(energy.energy_per_op_pj(r["generic"]["area_ge"]))
        cu = cmp._select([key])[-1]
        # (b): the same figure as simulating the unit's netlist here (and cached alike)
        assert r["energy_toggles_pj_per_mac"] == pytest.approx(_direct_toggles(cu), rel=1e-12)
        line = next(l for l in out.splitlines() if l.startswith(cu.label))
        assert f"{r['area_ge_per_mac'] / ref:.2f}x" in line
        assert f"{r['energy_toggles_pj_per_mac']:.3f}  " in line
        assert f"{r['energy_toggles_pj_per_mac'] / ref_b:.2f}x" in line
    # a small INT4 PE is cheaper than INT8; an FP8 MAC with FP16 accumulation is dearer
    assert rows["int4"]["area_ge_per_mac"] < ref < rows["e4m3-fp16"]["area_ge_per_mac"]
    assert "published about +53%" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_toggle_stimulus_mx_blocks():
    """MX dot units get finite element codes in every packed lane and scales 2^-8..2^7."""
    cu = cmp._select(["mxfp8"], mx_k=8)[-1]
    component, _ = get_unit(cu.unit).build(**cu.params)
    ins = [(p["name"], p["width"]) for p in ports(component) if p["direction"] == "input"]
    stim = cmp.toggle_stimulus(cu, ins)
    e4m3 = formats.get("e4m3")
    assert mx.element_format("mxfp8_e4m3") == e4m3
    for port in ("a", "b"):
        v = stim[port]
        assert v.shape == (256, 256)
        codes = np.array([[(int(x) >> (8 * i)) & 0xFF for i in range(8)] for x in v.ravel()])
        assert int(max(int(x) for x in v.ravel())).bit_length() <= 64
        assert np.isfinite(e4m3.decode(codes)).all()
        assert len(np.unique(codes)) > 200            # spread over the finite codes
    for port in ("a_scale", "b_scale"):
        assert stim[port].min() == 119 and stim[port].max() == 134
    assert (stim["valid"] == 1).all()


def test_compare_bad_input(capsys):
    assert main(["compare", "--units", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowbit compare: error: units must be among int8, e4m3-fp16") and \
        err.count("\n") == 1
    assert main(["compare", "--plot", "x.pdf"]) == 2
    assert main(["compare", "--vdd", "9"]) == 2
