# amaranth: UnusedElaboratable=no
"""SRAM area model, the systolic cost model (lowbit.sim.cost_model) and `lowbit simulate --cost`.

The formula tests give the PE area explicitly (``pe_area_ge``) and need no Yosys; the tests
that synthesise the PE are marked ``synth`` (int8 and e4m3/fp16 PEs, a few seconds each cold).
"""

import csv
import io
import json
import math

import pytest

from lowbit.cli.main import main
from lowbit.sim import energy
from lowbit.fpga import synth as synth_mod
from lowbit.hdl.systolic import SystolicPE
from lowbit.models.systolic import FpMacPE, IntPE, KulischPE, parse_pe
from lowbit.sim.cost_model import REG_BIT_GE, SynthCostModel, edge_register_bits, pe_verilog
from lowbit.sim.systolic import EVENT_CLASSES, ArrayConfig, simulate_gemm, simulate_topology

KIB = 1024
CELL = 146 * 0.045 ** 2          # CACTI 6T cell at 45 nm, um^2


# ---------------------------------------------------------------------------------------
# SRAM area and access energy


def test_sram_cell_and_periphery_constants():
    assert energy.SRAM_CELL_UM2_45NM == pytest.approx(0.29565, abs=1e-12)
    # K from CACTI's 81.7717 % efficiency of a 32 KB bank: (1/0.817717 - 1) * 512
    assert energy.K_PERIPH == pytest.approx((1 / 0.817717 - 1) * 512, rel=1e-12)
    assert energy.K_PERIPH == pytest.approx(114.1335, abs=1e-4)


@pytest.mark.parametrize("kib, eff", [(1, 0.44228), (8, 0.69164), (32, 0.817717), (64, 0.817717),
                                      (1024, 0.817717)])
def test_sram_efficiency_pinned(kib, eff):
    assert energy.sram_efficiency(kib * KIB) == pytest.approx(eff, abs=1e-5)


def test_sram_area_hand_computed():
    # 32 KiB: one bank, 262144 bits / 81.7717 %
    assert energy.sram_area_um2(32 * KIB) == pytest.approx(262144 * CELL / 0.817717, rel=1e-9)
    # 8 KiB: 65536 bits + K * 256 cells of periphery
    assert energy.sram_area_um2(8 * KIB) == pytest.approx(CELL * (65536 + energy.K_PERIPH * 256), rel=1e-12)
    # 64 KiB = two 32 KiB banks; 100 KiB = four banks of 25 KiB
    assert energy.sram_area_um2(64 * KIB) == pytest.approx(2 * energy.sram_area_um2(32 * KIB), rel=1e-12)
    b = 25 * KIB * 8
    assert energy.sram_area_um2(100 * KIB) == pytest.approx(4 * CELL * (b + energy.K_PERIPH * math.sqrt(b)),
                                                            rel=1e-12)
    assert energy.sram_banks(100 * KIB) == 4 and energy.sram_banks(1) == 1
    # documented figures: 64 KiB = 0.18956 mm^2; 2.892 um^2 per byte from 32 KiB up
    assert energy.sram_area_um2(64 * KIB) / 1e6 == pytest.approx(0.18956, abs=1e-5)
    assert energy.sram_area_um2_per_byte(1024 * KIB) == pytest.approx(2.892, abs=1e-3)
    assert energy.sram_area_um2(64 * KIB, node_scale_area=0.5) == pytest.approx(
        0.5 * energy.sram_area_um2(64 * KIB), rel=1e-12)
    assert energy.sram_area_um2(8 * KIB, cell_um2=1.0) == pytest.approx(65536 + energy.K_PERIPH * 256)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_sram_area_bad_capacity(bad):
    with pytest.raises(ValueError, match=r"^capacity_bytes must be a positive finite number, not "):
        energy.sram_area_um2(bad)


@pytest.mark.parametrize("bad", [True, "8", None])
def test_sram_area_capacity_of_the_wrong_type(bad):
    with pytest.raises(TypeError, match=rf"^capacity_bytes must be a number, not {bad!r}$"):
        energy.sram_area_um2(bad)


def test_sram_area_bad_scale():
    with pytest.raises(ValueError, match=r"^node_scale_area must be a positive finite number, not 0$"):
        energy.sram_area_um2(1024, node_scale_area=0)
    with pytest.raises(ValueError, match=r"^cell_um2 must be a positive finite number, not -1$"):
        energy.sram_area_um2(1024, cell_um2=-1)


def test_access_energies_match_horowitz_rows():
    """The access energies the cost model uses reproduce the published rows (Horowitz, ISSCC 2014)."""
    assert energy.sram_access_pj(8 * KIB, 64) == pytest.approx(10.0)
    assert energy.sram_access_pj(32 * KIB, 64) == pytest.approx(20.0)
    assert energy.sram_access_pj(1024 * KIB, 64) == pytest.approx(100.0)
    assert energy.sram_access_pj(8 * KIB, 32) == pytest.approx(5.0)      # "32b SRAM read (8 KB) 5 pJ"
    assert energy.dram_access_pj(32) == pytest.approx(640.0)             # "32b DRAM read 640 pJ"
    # between points: log-log, 16 KiB is the geometric mean of 10 and 20 pJ
    assert energy.sram_access_pj(16 * KIB, 64) == pytest.approx(math.sqrt(200.0))


# ---------------------------------------------------------------------------------------
# the cost model's formulas (PE area given, no synthesis)


def _cfg(**kw):
    return ArrayConfig(**{"rows": 16, "cols": 8, "dataflow": "ws", "pe": "int8", **kw})


def test_area_is_pes_plus_edges_plus_srams():
    cfg = _cfg(ifmap_sram_kib=8, filter_sram_kib=32, ofmap_sram_kib=100)
    m = SynthCostModel(pe_area_ge=1000)
    sram = CELL * ((65536 + energy.K_PERIPH * 256) + 262144 / 0.817717)
    b = 25 * KIB * 8
    sram += 4 * CELL * (b + energy.K_PERIPH * math.sqrt(b))
    # 16x8 WS int8: a skew 120 x (8+2) - last column's a forward 16 x 10, psum skew 28 x (32+2),
    # de-skew 28 x 32 = 2888 bits of DFF + MUX2 (8 GE)
    edges = 2888 * 8 * 0.798
    want = 16 * 8 * 1000 * 0.798 + edges + sram
    assert m.area_um2(cfg) == pytest.approx(want, rel=1e-12)
    br = m.area_breakdown_um2(cfg)
    assert br["n_pe"] == 128 and br["pe"] == pytest.approx(798.0) and br["pes"] == pytest.approx(102144.0)
    assert br["edge_bits"] == 2888 and br["edges"] == pytest.approx(edges, rel=1e-12)
    assert br["total"] == pytest.approx(want, rel=1e-12)
    m2 = SynthCostModel(pe_area_ge=1000, area_scale=0.25)
    assert m2.area_um2(cfg) == pytest.approx(0.25 * want, rel=1e-12)
    m3 = SynthCostModel(pe_area_ge=1000, edges=False)
    assert m3.area_um2(cfg) == pytest.approx(16 * 8 * 1000 * 0.798 + sram, rel=1e-12)


@pytest.mark.parametrize("pe, r, c, df, bits", [
    ("int8", 16, 8, "ws", 120 * 10 - 16 * 10 + 28 * 34 + 28 * 32),
    ("int8", 16, 8, "os", 120 * 10 - 16 * 10 + 28 * 8 - 8 * 8 - 8 * 32),   # b skew, last row, row 0 drain
    ("int8xint4", 16, 8, "is", 120 * 6 - 16 * 6 + 28 * 34 + 28 * 32),      # IS streams the int4 operand
    ("e4m3_fp16", 4, 4, "ws", 6 * 10 - 4 * 10 + 6 * 18 + 6 * 16),
    ("overq4", 4, 4, "ws", 6 * 8 - 4 * 8 + 6 * 34 + 6 * 32 + 4 * 4),      # 4-bit code + 2 meta; w_prev row
    ("e4m3_kulisch", 4, 4, "ws", 6 * 10 - 4 * 10 + 6 * 55 + 6 * 53),        # 49-bit state + 4 flags
    ("int8", 1, 1, "ws", -10),
])
def test_edge_register_bits(pe, r, c, df, bits):
    assert edge_register_bits(parse_pe(pe), r, c, df) == bits
    assert REG_BIT_GE == pytest.approx(8.0)


def test_unit_energies_hand_computed():
    cfg = _cfg()                                  # 64 KiB SRAMs: active half 32 KiB, 8-bit words
    u = SynthCostModel(pe_area_ge=1000).unit_energy_pj(cfg)
    assert u["mac"] == pytest.approx(0.4507)      # 0.4507 fJ/GE * 1000 GE
    assert u["pe_cycle"] == 0 and u["cycle"] == 0
    for op in ("ifmap", "filter", "ofmap"):
        assert u[f"sram_read_{op}"] == pytest.approx(20.0 * 8 / 64)      # 32 KB: 20 pJ / 64 bit
        assert u[f"dram_read_{op}"] == pytest.approx(160.0)              # 20 pJ/bit
    assert u["sram_write_ofmap"] == u["sram_read_ofmap"] and u["dram_write_ofmap"] == 160.0
    # scaling: logic and SRAM by node_scale * (vdd/0.9)^2, DRAM unscaled
    v = SynthCostModel(pe_area_ge=1000, node_scale=2, vdd=0.45).unit_energy_pj(cfg)
    assert v["mac"] == pytest.approx(0.4507 * 2 * 0.25)
    assert v["sram_read_ifmap"] == pytest.approx(2.5 * 2 * 0.25)
    assert v["dram_read_ifmap"] == pytest.approx(160.0)
    # ofmap accesses at the accumulator width (32 bits)
    w = SynthCostModel(pe_area_ge=1000, ofmap_word="acc").unit_energy_pj(cfg)
    assert w["sram_read_ofmap"] == pytest.approx(10.0) and w["dram_write_ofmap"] == pytest.approx(640.0)
    assert w["sram_read_ifmap"] == pytest.approx(2.5)
    # 16 KiB filter SRAM: active half 8 KiB, 10 pJ / 64 bit; word_bytes 2: 16-bit words
    x = SynthCostModel(pe_area_ge=1000).unit_energy_pj(_cfg(filter_sram_kib=16, word_bytes=2))
    assert x["sram_read_filter"] == pytest.approx(10.0 * 16 / 64)
    assert x["dram_read_filter"] == pytest.approx(320.0)


@pytest.mark.parametrize("df", ["ws", "os", "is"])
def test_layer_energy_is_counts_times_unit_energies(df):
    cfg = _cfg(dataflow=df, ifmap_sram_kib=16, filter_sram_kib=64, ofmap_sram_kib=8)
    m = SynthCostModel(pe_area_ge=1234.5)
    r = simulate_gemm(100, 70, 50, cfg, cost_model=m)
    # hand unit energies: active halves 8 KiB (10 pJ/64b), 32 KiB (20), 4 KiB (log-log below 8 KiB)
    e4k = 10.0 * (0.5) ** (math.log(2) / math.log(4))
    unit = {"mac": 0.4507 * 1.2345, "sram_read_ifmap": 10 / 8, "sram_read_filter": 20 / 8,
            "sram_read_ofmap": e4k / 8, "sram_write_ofmap": e4k / 8}
    want = {"mac": r.macs * unit["mac"], "pe_cycle": 0.0, "cycle": 0.0}
    for k in ("sram_read_ifmap", "sram_read_filter", "sram_read_ofmap", "sram_write_ofmap"):
        want[k] = getattr(r, k) * unit[k]
    for k in ("dram_read_ifmap", "dram_read_filter", "dram_read_ofmap", "dram_write_ofmap"):
        want[k] = getattr(r, k) * 160.0
    assert set(r.energy_breakdown_pj) == set(EVENT_CLASSES)
    for k in EVENT_CLASSES:
        assert r.energy_breakdown_pj[k] == pytest.approx(want[k], rel=1e-12), k
    assert r.energy_pj == pytest.approx(sum(want.values()), rel=1e-12)
    assert r.macs == 100 * 70 * 50 and r.energy_breakdown_pj["mac"] > 0


def test_topology_total_and_area():
    cfg = _cfg()
    m = SynthCostModel(pe_area_ge=900)
    res = simulate_topology([("a", 64, 27, 16), ("b", 196, 144, 32)], cfg, cost_model=m)
    assert res.cost_model == "synth45"
    assert res.area_um2 == pytest.approx(m.area_um2(cfg))
    assert res.total.energy_pj == pytest.approx(sum(l.energy_pj for l in res.layers), rel=1e-12)
    for k in EVENT_CLASSES:
        assert res.total.energy_breakdown_pj[k] == pytest.approx(
            sum(l.energy_breakdown_pj[k] for l in res.layers), rel=1e-12)


def test_unknown_event_is_none():
    assert SynthCostModel(pe_area_ge=1).energy_pj("leakage", 5, _cfg()) is None


@pytest.mark.parametrize("kw, msg", [
    ({"node_scale": 0}, r"^node_scale must be a positive finite number, not 0$"),
    ({"node_scale": float("nan")}, r"^node_scale must be a positive finite number, not nan$"),
    ({"vdd": 2.0}, r"^vdd must be a number from 0\.3 to 1\.5, not 2\.0$"),
    ({"area_scale": -1}, r"^area_scale must be a positive finite number, not -1$"),
    ({"ofmap_word": "psum"}, r"^ofmap_word must be one of operand, acc, not 'psum'$"),
    ({"pe_area_ge": 0}, r"^pe_area_ge must be a positive finite number, not 0$"),
])
def test_cost_model_bad_values(kw, msg):
    with pytest.raises(ValueError, match=msg):
        SynthCostModel(**kw)


def test_bad_pe_in_config():
    with pytest.raises(ValueError, match=r"^pe must be one of the forms .*, not 'foo'$"):
        SynthCostModel(pe_area_ge=1).area_um2(_cfg(pe="foo"))


def test_systolic_pe_bad_values():
    with pytest.raises(ValueError, match=r"^dataflow must be one of ws, os, is, not 'xs'$"):
        SystolicPE(parse_pe("int8"), "xs")
    with pytest.raises(ValueError, match=r"^dataflow 'is' is not available with an OverQ PE$"):
        SystolicPE(parse_pe("overq4"), "is")
    with pytest.raises(TypeError, match=r"^spec must be a PESpec, not 'int8'$"):
        SystolicPE("int8")


# ---------------------------------------------------------------------------------------
# CLI (PE area given: no synthesis)


def test_cli_cost_output(tmp_path, capsys):
    j, c = tmp_path / "o.json", tmp_path / "o.csv"
    rc = main(["simulate", "--gemm", "64", "48", "40", "--rows", "16", "--cols", "8", "--cost",
               "--pe-area-ge", "1000", "--json", str(j), "--csv", str(c)])
    out = capsys.readouterr().out
    assert rc == 0
    cfg = _cfg()
    m = SynthCostModel(pe_area_ge=1000)
    r = simulate_gemm(64, 48, 40, cfg, cost_model=m)
    area = m.area_um2(cfg)
    # 128 * 798 um^2 + 2888 edge bits * 8 GE * 0.798 um^2 + 3 * 189559 um^2
    assert area / 1e6 == pytest.approx(0.68926, abs=1e-5)
    assert (f"array area {area / 1e6:.4f} mm^2 = 128 PEs 0.1021 mm^2 + edge registers 0.0184 mm^2 "
            f"(2888 bits) + SRAM 0.5687 mm^2") in out
    assert f"energy total {r.energy_pj / 1e6:.3f} uJ" in out
    assert "E_MAC 0.451 pJ" in out and "energy uJ" in out
    d = json.loads(j.read_text())
    assert d["area_mm2"] == pytest.approx(area / 1e6, rel=1e-12)
    assert d["area_um2"] == pytest.approx(area, rel=1e-12)
    assert d["total"]["energy_pj"] == pytest.approx(r.energy_pj, rel=1e-12)
    assert d["layers"][0]["energy_breakdown_pj"]["mac"] == pytest.approx(r.macs * 0.4507, rel=1e-12)
    assert d["cost"]["pe"] == "int8xint8_acc32_wrap" and d["cost"]["pe_source"] == "given"
    rows = list(csv.DictReader(io.StringIO(c.read_text())))
    assert [x["name"] for x in rows] == ["gemm"]           # one row per layer; the total is in the JSON
    assert float(rows[0]["energy_pj"]) == pytest.approx(r.energy_pj, rel=1e-12)
    assert float(rows[0]["area_mm2"]) == pytest.approx(area / 1e6, rel=1e-12)
    assert float(rows[0]["energy_mac_pj"]) + float(rows[0]["energy_sram_pj"]) + float(
        rows[0]["energy_dram_pj"]) == pytest.approx(r.energy_pj, rel=1e-12)


def test_cli_without_cost_has_no_energy(capsys):
    assert main(["simulate", "--gemm", "8", "8", "8"]) == 0
    out = capsys.readouterr().out
    assert "energy uJ" not in out and "array area" not in out


@pytest.mark.parametrize("args, msg", [
    (["--vdd", "0.8"], "--vdd needs --cost"),
    (["--cost", "--vdd", "2"], "--vdd must be a number from 0.3 to 1.5, not 2.0"),
    (["--cost", "--node-scale", "0"], "--node-scale must be a positive finite number, not 0.0"),
    (["--cost", "--area-scale", "-2"], "--area-scale must be a positive finite number, not -2.0"),
    (["--cost", "--pe-area-ge", "0"], "--pe-area-ge must be a positive finite number, not 0.0"),
    (["--cost", "--pe", "int8_fp32"], "--pe must be one of the forms"),
    (["--cost", "--node-scale", "x"], "argument --node-scale: --node-scale must be a number, not 'x'"),
    (["--cost", "--ofmap-word", "psum"], "argument --ofmap-word: invalid choice: 'psum'"),
])
def test_cli_bad_cost_values(args, msg, capsys):
    with pytest.raises(SystemExit) if "argument" in msg else _noraise():
        rc = main(["simulate", "--gemm", "8", "8", "8", *args])
        assert rc == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


class _noraise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------------------------------
# synthesis of the PE


@pytest.mark.synth
@pytest.mark.parametrize("pe, df, ffs", [
    ("int8", "ws", 8 + 2 + 8 + 32 + 2),          # a fwd + valid/first, weight, psum + valid/last
    ("int8", "os", 8 + 2 + 8 + 32 + 32),         # a fwd + valid/first, b fwd, acc, drain
    ("e4m3_fp16", "ws", 8 + 2 + 8 + 16 + 2),
])
def test_synthesised_pe(pe, df, ffs):
    cfg = _cfg(pe=pe, dataflow=df)
    m = SynthCostModel()
    pc = m.pe_cost(cfg)
    top, text = pe_verilog(parse_pe(pe), df)
    r = synth_mod.synth(text, top, "generic")
    assert pc.source == "synth" and pc.top == top
    assert pc.area_ge == r.area_ge and pc.flip_flops == r.flip_flops == ffs
    assert pc.area_um2 == pytest.approx(r.area_ge * 0.798, rel=1e-12)
    assert pc.e_mac_pj == pytest.approx(0.4507 * r.area_ge / 1000, rel=1e-12)
    eb = edge_register_bits(parse_pe(pe), 16, 8, df)
    assert m.area_um2(cfg) == pytest.approx(128 * r.area_ge * 0.798 + eb * 8 * 0.798
                                            + 3 * energy.sram_area_um2(64 * KIB), rel=1e-12)
    assert m.pe_cost(cfg) is pc                   # kept per (PE, dataflow)


@pytest.mark.synth
def test_synthesised_kulisch_pe():
    """Kulisch PE: the state (49 + 4 bits) in the psum register, one read-out per column."""
    from lowbit.sim.cost_model import readout_verilog
    cfg = _cfg(pe="e4m3_kulisch", dataflow="ws")
    m = SynthCostModel()
    pc = m.pe_cost(cfg)
    spec = parse_pe("e4m3_kulisch")
    r = synth_mod.synth(*reversed(pe_verilog(spec, "ws")), "generic")
    rd = synth_mod.synth(*reversed(readout_verilog(spec)), "generic")
    assert pc.flip_flops == r.flip_flops == 8 + 2 + 8 + 53 + 2 and rd.flip_flops == 0
    assert pc.area_ge == r.area_ge and pc.readout_ge == rd.area_ge
    eb = 120 * 10 - 16 * 10 + 28 * 55 + 28 * 53
    want = (128 * r.area_ge * 0.798 + eb * 8 * 0.798 + 8 * rd.area_ge * 0.798
            + 3 * energy.sram_area_um2(64 * KIB))
    assert m.area_um2(cfg) == pytest.approx(want, rel=1e-12)
    u = m.unit_energy_pj(cfg)
    assert u["mac"] == pytest.approx(0.4507 * r.area_ge / 1000, rel=1e-12)
    assert u["sram_write_ofmap"] == pytest.approx(2.5 + 0.4507 * rd.area_ge / 1000, rel=1e-12)
    assert u["sram_read_ofmap"] == pytest.approx(2.5)


@pytest.mark.synth
def test_cli_cost_synthesised(capsys):
    assert main(["simulate", "--gemm", "32", "32", "32", "--cost"]) == 0
    out = capsys.readouterr().out
    top, text = pe_verilog(parse_pe("int8"), "ws")
    ge = synth_mod.synth(text, top, "generic").area_ge
    assert f"PE int8xint8_acc32_wrap (ws) {ge:.1f} GE = {ge * 0.798:.1f} um^2, 52 FF" in out
    eb = edge_register_bits(parse_pe("int8"), 32, 32, "ws")
    want = 1024 * ge * 0.798 + eb * 8 * 0.798 + 3 * energy.sram_area_um2(64 * KIB)
    assert f"array area {want / 1e6:.4f} mm^2" in out
