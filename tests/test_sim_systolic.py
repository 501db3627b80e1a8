"""Behavioural systolic-array simulator: agreement with SCALE-Sim v3, properties, memory, CLI.

The SCALE-Sim agreement is for one-cycle PEs (``ArrayConfig.pe_stages = 1``, the default):
SCALE-Sim has no PE latency, so its cycle counts cannot cover pipelined PEs
(``pe_stages > 1``, checked against closed forms and the RTL instead).

SCALE-Sim never runs here: its figures are constants measured on this machine with scalesim 3.0.0
(numpy 2.3.5, its own venv) by

    python benchmarks/scalesim_compare.py --json out.json

(small cases: lowbit.sim.topology.SCALESIM_SMALL_LAYERS on 8x8, 8x16 and 16x8 arrays, 64 KiB SRAMs, CALC bandwidth),
and figures of SCALE-Sim CLI runs made earlier on these machines (3.0.0, CALC bandwidth: the closed
forms below, and ResNet-18 on its own ``scale.cfg``).
"""

import json
import math

import numpy as np
import pytest

from lowbit.models.systolic import Schedule
from lowbit.sim.systolic import ArrayConfig, NullCostModel, schedule, simulate_gemm, simulate_topology
from lowbit.sim.topology import (
    SCALESIM_SMALL_LAYERS, conv_layer, gemm_layer, read_scalesim_cfg, read_topology, scalesim_file,
    write_scalesim_cfg, write_topology,
)

# ---------------------------------------------------------------------------------------------------
# SCALE-Sim 3.0.0 measurements (see module docstring for the command)

SMALL_LAYERS = SCALESIM_SMALL_LAYERS

# (rows, cols, dataflow) -> SCALE-Sim compute cycles of SMALL_LAYERS, in order
SCALESIM_COMPUTE_CYCLES = {
    (8, 8, "is"): [1819, 278, 2751, 18049, 12311, 863, 975],
    (8, 8, "os"): [1279, 221, 2943, 8049, 5687, 959, 1013],
    (8, 8, "ws"): [1735, 233, 2751, 8283, 5975, 687, 2391],
    (8, 16, "is"): [1259, 233, 1503, 11361, 7451, 495, 1039],
    (8, 16, "os"): [719, 134, 1727, 4224, 2987, 607, 601],
    (8, 16, "ws"): [979, 140, 1503, 4293, 3131, 375, 1735],
    (16, 8, "is"): [1359, 281, 1631, 13499, 8747, 559, 551],
    (16, 8, "os"): [863, 179, 1727, 4393, 2987, 607, 1117],
    (16, 8, "ws"): [1247, 219, 1631, 4679, 3275, 407, 2027],
}

# SCALE-Sim SRAM counts for the 8x16 runs: (ifmap reads, filter reads, ofmap writes) per layer
SCALESIM_SRAM_8x16 = {
    "os": [(4000, 7500, 1440), (391, 621, 225), (8192, 16384, 4864), (28812, 58800, 3736), (20736, 41472, 2736),
           (2048, 4096, 2432), (448, 6400, 268)],
    "ws": [(4000, 1500, 8400), (391, 207, 459), (8192, 2048, 16384), (28812, 2352, 59584), (20736, 2304, 41472),
           (2048, 512, 4096), (448, 6400, 800)],
    "is": [(2000, 4500, 8400), (391, 414, 459), (2048, 8192, 16384), (28812, 30576, 59584), (20736, 20736, 41472),
           (1024, 2048, 4096), (64, 6400, 800)],
}

# DRAM ifmap reads SCALE-Sim reports (distinct referenced ifmap words), same on every array
SCALESIM_DRAM_IFMAP = [2000, 391, 2048, 3072, 3136, 784, 64]


def _cfg(r, c, df, **kw):
    return ArrayConfig(r, c, df, ifmap_sram_kib=64, filter_sram_kib=64, ofmap_sram_kib=64, **kw)


@pytest.mark.parametrize("key", sorted(SCALESIM_COMPUTE_CYCLES))
def test_compute_cycles_equal_scalesim(key):
    r, c, df = key
    res = simulate_topology(SMALL_LAYERS, _cfg(r, c, df))
    assert [l.compute_cycles for l in res.layers] == SCALESIM_COMPUTE_CYCLES[key]
    assert [l.stall_cycles for l in res.layers] == [0] * len(SMALL_LAYERS)


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_sram_counts_equal_scalesim(df):
    res = simulate_topology(SMALL_LAYERS, _cfg(8, 16, df))
    for l, (ifm, fil, ofm) in zip(res.layers, SCALESIM_SRAM_8x16[df]):
        assert l.sram_read_ifmap == ifm
        assert l.sram_read_filter == fil
        if df == "os":
            # SCALE-Sim adds R + C per fold to its OS ofmap write count (bookkeeping slip)
            assert ofm == l.sram_write_ofmap + l.folds * (8 + 16)
        else:
            assert l.sram_write_ofmap == ofm
        assert l.dram_read_ifmap == SCALESIM_DRAM_IFMAP[res.layers.index(l)]


def test_mapping_efficiency_and_utilisation_equal_scalesim():
    # SCALE-Sim 3.0.0, 8x16 OS, gemm_40x50x30: mapping eff 93.75 %, overall util 65.19471488178026 %
    l = simulate_gemm(40, 50, 30, _cfg(8, 16, "os"))
    assert l.mapping_efficiency == pytest.approx(0.9375, abs=1e-15)
    assert 100 * l.scalesim_utilisation == pytest.approx(65.19471488178026, rel=1e-14)
    assert l.utilisation == l.macs / (128 * (l.compute_cycles + 1))
    # 16x8 IS, gemm_17x23x9: 50.911 % mapping efficiency, 9.784 % utilisation (SCALE-Sim, rounded)
    l = simulate_gemm(17, 23, 9, _cfg(16, 8, "is"))
    assert round(100 * l.mapping_efficiency, 3) == 50.911
    assert round(100 * l.scalesim_utilisation, 3) == 9.784


# SCALE-Sim 3.0.0 CLI/API runs, CALC bandwidth, and the closed form they matched
@pytest.mark.parametrize("n, arr, df, cycles", [
    (512, 32, "os", 146_943), (1024, 64, "os", 294_399), (2048, 128, "os", 589_311),
    (512, 32, "ws", 155_135), (512, 32, "is", 155_135),
])
def test_anchor_closed_forms(n, arr, df, cycles):
    cfg = ArrayConfig(arr, arr, df)
    l = simulate_gemm(n, n, n, cfg)
    assert l.compute_cycles == cycles
    s = schedule(n, n, n, cfg)
    assert s.compute_cycles == s.folds * s.fold_period - 1 == cycles


def test_anchor_512_traffic_and_utilisation():
    os_ = simulate_gemm(512, 512, 512, ArrayConfig(32, 32, "os"))
    assert (os_.sram_read_ifmap, os_.sram_read_filter) == (4_194_304, 4_194_304)
    assert os_.sram_write_ofmap + 256 * 64 == 278_528  # SCALE-Sim's count, with its R+C per fold
    assert os_.dram_read_ifmap == 4_194_304  # SCALE-Sim: 4,194,304 (ifmap does not fit, re-read per column fold)
    assert round(100 * os_.scalesim_utilisation, 2) == 89.20
    ws = simulate_gemm(512, 512, 512, ArrayConfig(32, 32, "ws"))
    assert (ws.sram_read_ifmap, ws.sram_read_filter, ws.sram_write_ofmap) == (4_194_304, 262_144, 4_194_304)
    assert (ws.dram_read_ifmap, ws.dram_read_filter) == (4_194_304, 262_144)
    assert round(100 * ws.scalesim_utilisation, 2) == 84.49


RESNET18 = scalesim_file("Resnet18.csv")   # SCALE-Sim's own file, shipped with lowbit


def test_resnet18_ws_32x32_equals_scalesim(tmp_path):
    # SCALE-Sim 3.0.0 on its scale.cfg (32x32 WS, CALC): 2,519,815 compute cycles, 0 stalls,
    # SRAM filter reads 11.68 M. (A published "1.438 G MACs, 55.7 %" uses floor for the ofmap size;
    # SCALE-Sim's ceil((H - F + S) / S) gives 1,471,181,568 MACs, 57.0 % utilisation.)
    layers = read_topology(RESNET18)
    assert len(layers) == 21
    res = simulate_topology(layers, ArrayConfig(32, 32, "ws"))
    assert res.total.compute_cycles == 2_519_815
    assert res.total.stall_cycles == 0
    assert round(res.total.sram_read_filter / 1e6, 2) == 11.68
    assert res.total.macs == 1_471_181_568
    assert round(100 * res.total.scalesim_utilisation, 1) == 57.0


# ---------------------------------------------------------------------------------------------------
# properties

CASES = [(1, 1, 1), (5, 3, 2), (40, 50, 30), (129, 255, 67), (512, 512, 512), (3000, 17, 4097)]
ARRAYS = [(1, 1), (4, 4), (8, 16), (16, 8), (32, 32), (128, 128)]


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_properties(df):
    for M, K, N in CASES:
        for R, C in ARRAYS:
            cfg = ArrayConfig(R, C, df, ifmap_sram_kib=4, filter_sram_kib=4, ofmap_sram_kib=4)
            l = simulate_gemm(M, K, N, cfg)
            s = schedule(M, K, N, cfg)
            # MAC conservation: used PEs x stream length summed over folds
            r_used, c_used = s.used_per_fold()
            assert int((r_used * c_used).sum()) * s.T == l.macs == M * K * N
            assert 0 < l.utilisation <= 1 and 0 < l.mapping_efficiency <= 1
            assert l.compute_cycles >= math.ceil(l.macs / (R * C)) - 1
            # every operand word reaches the array at least once; outputs written at least once
            assert l.sram_read_ifmap >= M * K and l.sram_read_filter >= K * N
            assert l.sram_write_ofmap >= M * N
            assert l.dram_read_ifmap >= M * K and l.dram_read_filter >= K * N
            assert l.dram_write_ofmap >= M * N
            assert l.dram_read_ifmap <= l.sram_read_ifmap and l.dram_read_filter <= l.sram_read_filter
            assert l.sram_write_ofmap - l.sram_read_ofmap == M * N
            assert l.dram_write_ofmap - l.dram_read_ofmap == M * N


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_stalls_monotonic_in_bandwidth(df):
    prev = None
    for bw in (1, 2, 4, 8, 16, 64, 1e9):
        cfg = ArrayConfig(16, 16, df, ifmap_sram_kib=8, filter_sram_kib=8, ofmap_sram_kib=8, dram_bw=bw)
        l = simulate_gemm(300, 200, 100, cfg)
        calc = simulate_gemm(300, 200, 100, cfg.replace(dram_bw="CALC"))
        assert l.compute_cycles == calc.compute_cycles
        assert l.total_cycles == l.compute_cycles + l.stall_cycles
        if prev is not None:
            assert l.stall_cycles <= prev
        prev = l.stall_cycles
        # traffic lower bound: the DRAM words moved during the compute window need the time
        moved = (l.dram_read_ifmap + l.dram_read_filter + l.dram_read_ofmap + l.dram_write_ofmap)
        assert (l.total_cycles + l.prefetch_cycles + l.writeback_cycles + 1) * bw >= moved - 1e-6
    assert prev == 0
    assert simulate_gemm(300, 200, 100, ArrayConfig(16, 16, df, dram_bw=1)).stall_cycles > 0


def test_stall_example_by_hand():
    # WS, 4x4, M=10, K=8, N=4, all fits: 2 K-folds x 1 col fold, P = 4 + 10 + 3 + 3 = 20.
    # fold 0 reads ifmap 10x4 + filter 4x4 = 56 words (prefetch); fold 1 reads 56 words during fold 0
    # -> ceil(56 / 2) = 28 cycles -> 8 stall cycles; the final 10x4 outputs are written back after.
    cfg = ArrayConfig(4, 4, "ws", dram_bw=2)
    l = simulate_gemm(10, 8, 4, cfg)
    assert (l.fold_period, l.folds, l.compute_cycles) == (20, 2, 39)
    assert (l.prefetch_cycles, l.stall_cycles, l.writeback_cycles) == (28, 8, 20)


def test_large_gemm_is_cheap():
    l = simulate_gemm(4096, 4096, 4096, ArrayConfig(128, 128, "os", dram_bw=64))
    assert l.compute_cycles == 32 * 32 * (4096 + 254) - 1
    assert l.stall_cycles > 0


# ---------------------------------------------------------------------------------------------------
# outputs and the cost-model hook

class _UnitCost:
    name = "unit"

    def __init__(self):
        self.calls = []

    def energy_pj(self, event, count, cfg):
        self.calls.append(event)
        return {"mac": 1.0, "sram_read_ifmap": 10.0}.get(event, 0.0) * count

    def area_um2(self, cfg):
        return 100.0 * cfg.rows * cfg.cols


def test_cost_model_hook_and_outputs(tmp_path):
    cm = _UnitCost()
    layers = [gemm_layer("a", 40, 50, 30), ("b", 17, 23, 9)]
    res = simulate_topology(layers, _cfg(8, 16, "ws"), cost_model=cm)
    a, b = res.layers
    assert a.energy_pj == a.macs + 10 * a.sram_read_ifmap
    assert res.total.energy_pj == a.energy_pj + b.energy_pj
    assert res.area_um2 == 100.0 * 128 and res.cost_model == "unit"
    assert set(cm.calls) >= {"mac", "pe_cycle", "cycle", "dram_write_ofmap"}
    assert res.total.compute_cycles == a.compute_cycles + b.compute_cycles
    assert res.total.macs == 40 * 50 * 30 + 17 * 23 * 9
    null = simulate_topology(layers, _cfg(8, 16, "ws"), cost_model=NullCostModel())
    assert null.total.energy_pj is None and null.area_um2 is None
    d = json.loads(res.to_json(tmp_path / "r.json"))
    assert d["total"]["compute_cycles"] == res.total.compute_cycles
    assert json.loads((tmp_path / "r.json").read_text()) == d
    lines = res.to_csv(tmp_path / "r.csv").splitlines()
    assert lines[0].startswith("name,M,K,N,macs") and lines[1].startswith("a,40,50,30,60000,ws")
    assert len(lines) == 3 and lines[2].startswith("b,17,23,9,")   # one row per layer, no total
    rows = res.rows()
    assert len(rows) == 4 and rows[0][0] == "layer" and rows[-1][0] == "total"
    assert rows[-1][5] == f"{res.total.compute_cycles:,}"


# ---------------------------------------------------------------------------------------------------
# topology and config files

def test_topology_round_trip_and_conv_mapping(tmp_path):
    p = tmp_path / "t.csv"
    write_topology(p, SMALL_LAYERS[3:], kind="conv")
    assert all(line.endswith(",") for line in p.read_text().splitlines())
    back = read_topology(p)
    assert [l.gemm for l in back] == [l.gemm for l in SMALL_LAYERS[3:]]
    c1 = back[0]  # 32x32, 7x7, stride 2: ofmap ceil((32 - 7 + 2) / 2) = 14
    assert (c1.ofmap_h, c1.M, c1.K, c1.N) == (14, 196, 147, 16)
    g = tmp_path / "g.csv"
    write_topology(g, SMALL_LAYERS[:3])
    assert g.read_text().splitlines()[1] == "gemm_40x50x30, 40, 30, 50,"  # name, M, N, K
    assert [l.gemm for l in read_topology(g)] == [(40, 50, 30), (17, 23, 9), (64, 32, 64)]


def test_topology_depthwise_and_errors(tmp_path):
    p = tmp_path / "dw.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                 "DP1,8,8,3,3,4,1,1,\n")
    layers = read_topology(p)
    assert [l.name for l in layers] == [f"DP1Channel_{i}" for i in range(4)]
    assert all(l.gemm == (36, 9, 1) for l in layers)
    p.write_text("Layer, M, N, K,\ng, 4, 5, 6\n")
    with pytest.raises(ValueError, match=r"g.csv|dw.csv"):
        read_topology(p)
    with pytest.raises(ValueError, match=r":2: row must end with a trailing comma"):
        read_topology(p)
    p.write_text("Layer, M, N, K,\ng, 4, x, 6,\n")
    with pytest.raises(ValueError, match=r":2: N must be an integer, not 'x'"):
        read_topology(p)
    p.write_text("Layer name, a, b, c, d, e, f, g,\nc,4,4,5,3,1,1,1,\n")
    with pytest.raises(ValueError, match=r"filter_h must be <= ifmap_h \(4\), not 5"):
        read_topology(p)


def test_scalesim_cfg_round_trip(tmp_path):
    cfg = ArrayConfig(16, 8, "is", ifmap_sram_kib=32, filter_sram_kib=128, ofmap_sram_kib=16, dram_bw=10)
    p = tmp_path / "a.cfg"
    write_scalesim_cfg(p, cfg, run_name="x")
    kw = read_scalesim_cfg(p)
    assert kw == {"run_name": "x", "rows": 16, "cols": 8, "ifmap_sram_kib": 32, "filter_sram_kib": 128,
                  "ofmap_sram_kib": 16, "dataflow": "is", "word_bytes": 1, "dram_bw": 10.0}
    back = ArrayConfig.from_scalesim_cfg(p, rows=4)
    assert (back.rows, back.cols, back.dataflow, back.dram_bw, back.name) == (4, 8, "is", 10.0, "x")
    write_scalesim_cfg(p, cfg.replace(dram_bw="CALC"))
    assert read_scalesim_cfg(p)["dram_bw"] == "CALC"


@pytest.mark.parametrize("kw, msg", [
    ({"rows": 0}, r"^rows must be an integer from 1 to 1048576, not 0$"),
    ({"cols": -3}, r"^cols must be an integer from 1 to 1048576, not -3$"),
    ({"dataflow": "rs"}, r"^dataflow must be one of os, ws, is, not 'rs'$"),
    ({"dram_bw": 0}, r"^dram_bw must be a positive number of words/cycle or 'CALC', not 0$"),
    ({"dram_bw": "fast"}, r"^dram_bw must be a positive number of words/cycle or 'CALC', not 'fast'$"),
    ({"ifmap_sram_kib": 0}, r"^ifmap_sram_kib must be a positive finite number, not 0$"),
    ({"word_bytes": 0}, r"^word_bytes must be an integer from 1 to 64, not 0$"),
])
def test_config_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        ArrayConfig(**kw)


@pytest.mark.parametrize("kw, msg", [
    ({"rows": 2.5}, r"^rows must be an integer, not 2\.5$"),
    ({"rows": True}, r"^rows must be an integer, not True$"),
    ({"ifmap_sram_kib": "64"}, r"^ifmap_sram_kib must be a number, not '64'$"),
    ({"pe": 8}, r"^pe must be a PE name \(a string\), not 8$"),
])
def test_config_type_errors(kw, msg):
    with pytest.raises(TypeError, match=msg):
        ArrayConfig(**kw)


def test_gemm_validation():
    with pytest.raises(ValueError, match=r"^K must be an integer from 1 to 1099511627776, not 0$"):
        simulate_gemm(4, 0, 4, ArrayConfig())
    with pytest.raises(TypeError, match=r"^cfg must be an ArrayConfig, not 'ws'$"):
        simulate_gemm(4, 4, 4, "ws")
    with pytest.raises(ValueError, match=r"^f must be an integer from 0 to 3, not 4$"):
        Schedule(8, 8, 8, 4, 4, "os").fold_start(4)


# ---------------------------------------------------------------------------------------------------
# CLI

def test_cli_gemm_json_csv(tmp_path, capsys):
    from lowbit.cli.main import main
    j, c = tmp_path / "o.json", tmp_path / "o.csv"
    assert main(["simulate", "--gemm", "512", "512", "512", "--rows", "32", "--cols", "32", "--dataflow", "os",
                 "--json", str(j), "--csv", str(c), "--schedule"]) == 0
    out = capsys.readouterr().out
    assert "P = 0 preload + 512 stream + 31 row skew + 31 col skew = 574 cycles" in out
    assert json.loads(j.read_text())["total"]["compute_cycles"] == 146_943
    assert c.read_text().splitlines()[1].split(",")[10] == "146943"


def test_cli_topology_with_config(tmp_path, capsys):
    from lowbit.cli.main import main
    topo = RESNET18
    cfgp = scalesim_file("scale.cfg")                 # SCALE-Sim's default: 32x32 WS
    j = tmp_path / "o.json"
    assert main(["simulate", "--topology", str(topo), "--config", str(cfgp), "--json", str(j), "--quiet"]) == 0
    d = json.loads(j.read_text())
    assert d["total"]["compute_cycles"] == 2_519_815 and len(d["layers"]) == 21
    assert main(["simulate", "--topology", str(topo), "--config", str(cfgp), "--dataflow", "os",
                 "--json", str(j), "--quiet"]) == 0
    assert json.loads(j.read_text())["config"]["dataflow"] == "os"


@pytest.mark.parametrize("argv, msg", [
    (["--gemm", "0", "4", "4"], "lowbit simulate: error: M must be an integer >= 1, not 0"),
    (["--gemm", "4", "4", "4", "--rows", "0"], "lowbit simulate: error: rows must be an integer from 1 to 1048576, not 0"),
    (["--gemm", "4", "4", "4", "--dram-bw", "x"],
     "lowbit simulate: error: --dram-bw must be a positive number of words/cycle or CALC, not 'x'"),
    (["--topology", "/nonexistent.csv"], "lowbit simulate: error: topology file '/nonexistent.csv' does not exist"),
])
def test_cli_errors(argv, msg, capsys):
    from lowbit.cli.main import main
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err
    assert err.strip() == msg


# ---------------------------------------------------------------------------------------------------
# memory model at its boundaries (module docstring: "read from DRAM once if it fits in that half")

def _kib(words, word_bytes=1):
    """SRAM size in KiB that holds exactly ``words`` words."""
    return words * word_bytes / 1024


BIG = 64  # KiB: a working set of these tests always fits


# (dataflow, M, K, N, SRAM that holds the working set, its size, the counts when it fits /
# does not fit); 4x4 array. Working sets: OS ifmap M*K, OS filter column block K*min(N, C),
# WS ifmap M*K, WS psums M*min(N, C), IS filter K*N, IS psums min(M, C)*N.
FIT_CASES = [
    # OS 16x32x8: row folds 4, column folds 2
    ("os", 16, 32, 8, "ifmap", 16 * 32, {"dram_read_ifmap": 512}, {"dram_read_ifmap": 512 * 2}),
    ("os", 16, 32, 8, "filter", 32 * 4, {"dram_read_filter": 256}, {"dram_read_filter": 256 * 4}),
    # WS 16x8x12: row (K) folds 2, column folds 3
    ("ws", 16, 8, 12, "ifmap", 16 * 8, {"dram_read_ifmap": 128}, {"dram_read_ifmap": 128 * 3}),
    ("ws", 16, 8, 12, "ofmap", 16 * 4, {"dram_read_ofmap": 0, "dram_write_ofmap": 192},
     {"dram_read_ofmap": 192, "dram_write_ofmap": 192 * 2}),
    # IS 12x8x16: row (K) folds 2, column (M) folds 3
    ("is", 12, 8, 16, "filter", 8 * 16, {"dram_read_filter": 128}, {"dram_read_filter": 128 * 3}),
    ("is", 12, 8, 16, "ofmap", 4 * 16, {"dram_read_ofmap": 0, "dram_write_ofmap": 192},
     {"dram_read_ofmap": 192, "dram_write_ofmap": 192 * 2}),
]


@pytest.mark.parametrize("word_bytes", [1, 2])
@pytest.mark.parametrize("case", FIT_CASES, ids=lambda c: f"{c[0]}-{c[4]}")
def test_sram_fit_boundary(case, word_bytes):
    df, M, K, N, sram, ws, fit, nofit = case
    sizes = {"ifmap_sram_kib": BIG, "filter_sram_kib": BIG, "ofmap_sram_kib": BIG}
    for words, want in ((2 * ws, fit), (2 * ws + 1, fit), (2 * ws - 1, nofit), (2 * ws - 2, nofit)):
        cfg = ArrayConfig(4, 4, df, word_bytes=word_bytes, **{**sizes, f"{sram}_sram_kib": _kib(words, word_bytes)})
        assert cfg.sram_words(sram) == words
        l = simulate_gemm(M, K, N, cfg)
        assert {k: getattr(l, k) for k in want} == want, (words, cfg)
        # the other operands are unaffected
        ref = simulate_gemm(M, K, N, ArrayConfig(4, 4, df, word_bytes=word_bytes, **sizes))
        for k in ("dram_read_ifmap", "dram_read_filter", "dram_read_ofmap", "dram_write_ofmap"):
            if k not in want:
                assert getattr(l, k) == getattr(ref, k)


@pytest.mark.parametrize("df", ["os", "ws"])
def test_ifmap_fit_uses_the_distinct_ifmap_words(df):
    # a conv layer's ifmap has fewer distinct words (here 100) than its im2col matrix (16 x 32)
    M, K, N = 16, 32, 8
    for words, per in ((200, 1), (199, 2)):
        cfg = ArrayConfig(4, 4, df, ifmap_sram_kib=_kib(words), filter_sram_kib=BIG, ofmap_sram_kib=BIG)
        l = simulate_gemm(M, K, N, cfg, ifmap_words=100)
        assert l.dram_read_ifmap == 100 * per
        assert l.sram_read_ifmap == M * K * 2          # the SRAM streams the im2col matrix


def _all_traffic(l):
    return l.dram_read_ifmap + l.dram_read_filter + l.dram_read_ofmap + l.dram_write_ofmap


@pytest.mark.parametrize("kib", [BIG, 0.1, 0.01])
@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_stall_model_moves_exactly_the_dram_traffic(df, kib):
    # with a bandwidth of 1/1000 word per cycle every fold's transfer outlasts its period, so
    # prefetch + every window + writeback = 1000 x the words the per-fold model moves; they
    # must be the DRAM totals of the closed forms (fits and does-not-fit paths alike)
    for (M, K, N) in ((9, 10, 11), (16, 32, 8), (30, 5, 21)):
        cfg = ArrayConfig(4, 4, df, ifmap_sram_kib=kib, filter_sram_kib=kib, ofmap_sram_kib=kib, dram_bw=0.001)
        l = simulate_gemm(M, K, N, cfg)
        cycles = l.prefetch_cycles + l.stall_cycles + (l.folds - 1) * l.fold_period + l.writeback_cycles
        assert cycles == 1000 * _all_traffic(l), (M, K, N)


@pytest.mark.parametrize("df, gemm_, bw, want", [
    # WS 10x8x4 (see test_stall_example_by_hand): fold 0 reads 56 words, fold 1 reads 56 during
    # fold 0 (P = 20), 40 outputs written after: ceil(56 / 2.4) = 24 -> 4 stalls, ceil(40 / 2.4) = 17
    ("ws", (10, 8, 4), 2.4, (24, 4, 17)),
    # OS 8x6x4: P = 6 + 4 + 4 - 2 = 12; fold 0 reads ifmap 4x6 + filter 6x4 = 48, fold 1 reads the
    # next ifmap tile (24) while fold 0's 16 outputs drain: ceil(40 / 3) = 14 -> 2 stalls
    ("os", (8, 6, 4), 3, (16, 2, 6)),
    # IS 4x8x6: P = 6 + 8 + 4 - 2 = 16; each fold reads ifmap 4x4 + filter 4x6 = 40 words,
    # ceil(40 / 2.2) = 19 -> 3 stalls, the 24 outputs ceil(24 / 2.2) = 11
    ("is", (4, 8, 6), 2.2, (19, 3, 11)),
])
def test_stalls_are_a_ceiling(df, gemm_, bw, want):
    l = simulate_gemm(*gemm_, ArrayConfig(4, 4, df, dram_bw=bw))
    assert l.folds == 2
    assert (l.prefetch_cycles, l.stall_cycles, l.writeback_cycles) == want
    assert l.total_cycles == l.compute_cycles + want[1]
    assert l.latency == schedule(*gemm_, ArrayConfig(4, 4, df)).latency + want[1]


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_stall_model_does_not_depend_on_its_chunking(df, monkeypatch):
    import lowbit.sim.systolic as ss
    cases = [(37, 29, 23), (64, 64, 64)]
    cfg = ArrayConfig(4, 4, df, ifmap_sram_kib=0.5, filter_sram_kib=0.5, ofmap_sram_kib=0.5, dram_bw=1.5)
    ref = [simulate_gemm(*c, cfg) for c in cases]
    assert all(r.folds > 7 for r in ref)
    for chunk in (1, 2, 3, 7):
        monkeypatch.setattr(ss, "_CHUNK", chunk)
        for c, r in zip(cases, ref):
            l = simulate_gemm(*c, cfg)
            assert (l.stall_cycles, l.prefetch_cycles, l.writeback_cycles) == \
                (r.stall_cycles, r.prefetch_cycles, r.writeback_cycles)


@pytest.mark.parametrize("kib", [BIG, 0.1])
@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_stall_model_scales_conv_ifmap_tiles(df, kib):
    # a conv layer's ifmap (128 distinct words) is a quarter of its im2col matrix (16 x 32):
    # the per-fold ifmap tiles are scaled by 1/4; with 1/1024 word per cycle every window is an
    # exact multiple, and all of them add up to 1024 x the DRAM totals
    M, K, N = 16, 32, 8
    cfg = ArrayConfig(4, 4, df, ifmap_sram_kib=kib, filter_sram_kib=kib, ofmap_sram_kib=kib, dram_bw=1 / 1024)
    l = simulate_gemm(M, K, N, cfg, ifmap_words=128)
    cycles = l.prefetch_cycles + l.stall_cycles + (l.folds - 1) * l.fold_period + l.writeback_cycles
    assert cycles == 1024 * _all_traffic(l)
    assert l.dram_read_ifmap in (128, 128 * 2)


def test_topology_total_weights():
    # total: MAC-weighted utilisation over the back-to-back span (each layer spans
    # total_cycles + 1), fold-weighted mapping efficiency, no GEMM shape
    cfg = _cfg(8, 16, "ws", dram_bw=3)
    res = simulate_topology([("a", 40, 50, 30), ("b", 17, 23, 9), ("c", 5, 300, 7)], cfg)
    ls, t = res.layers, res.total
    macs = sum(l.macs for l in ls)
    span = sum(l.total_cycles + 1 for l in ls)
    assert t.utilisation == macs / (8 * 16 * span)
    assert t.mapping_efficiency == pytest.approx(sum(l.mapping_efficiency * l.folds for l in ls)
                                                 / sum(l.folds for l in ls), rel=1e-15)
    assert 0 < t.mapping_efficiency < 1 and t.mapping_efficiency != sum(l.mapping_efficiency for l in ls) / 3
    assert t.scalesim_utilisation == macs / (8 * 16 * sum(l.total_cycles for l in ls))
    assert (t.M, t.K, t.N, t.fold_period, t.name) == (0, 0, 0, 0, "total")
    for k in ("stall_cycles", "total_cycles", "prefetch_cycles", "writeback_cycles", "latency",
              "dram_read_ifmap", "sram_write_ofmap", "folds"):
        assert getattr(t, k) == sum(getattr(l, k) for l in ls)


def test_pe_stages_in_simulator_and_cli(tmp_path, capsys):
    """ArrayConfig(pe_stages) gives the simulator the pipelined schedule (SCALE-Sim has no PE
    latency: its agreement tests use 1); ``lowbit simulate --pe-stages`` sets it and a bad one is
    one line on stderr, exit 2."""
    from lowbit.cli.main import main
    from lowbit.models.systolic import Schedule
    from lowbit.sim.systolic import simulate_gemm
    cfg = ArrayConfig(rows=8, cols=4, dataflow="ws", pe_stages=3)
    r = simulate_gemm(64, 40, 12, cfg)
    s = Schedule(64, 40, 12, 8, 4, "ws", pe_stages=3)
    assert (r.compute_cycles, r.latency) == (s.compute_cycles, s.latency)
    assert s.fold_period == 8 + 64 + 7 * 3 + 3
    assert r.latency > simulate_gemm(64, 40, 12, cfg.replace(pe_stages=1)).latency
    assert main(["simulate", "--gemm", "64", "40", "12", "--rows", "8", "--cols", "4",
                 "--pe-stages", "3", "--json", str(tmp_path / "r.json"), "--quiet"]) == 0
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["config"]["pe_stages"] == 3 and d["total"]["latency"] == s.latency
    capsys.readouterr()
    assert main(["simulate", "--gemm", "8", "8", "8", "--pe-stages", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lowbit simulate: error: pe_stages must be an integer from 1 to 16, not 0"]
