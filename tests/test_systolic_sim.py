"""Behavioural systolic-array simulator: agreement with SCALE-Sim v3, the schedule, properties, numerics, CLI.

SCALE-Sim never runs here: its figures are constants measured on this machine with scalesim 3.0.0
(numpy 2.3.5, its own venv) by

    python benchmarks/scalesim_compare.py --json out.json

(small cases: SMALL_LAYERS of that script on 8x8, 8x16 and 16x8 arrays, 64 KiB SRAMs, CALC bandwidth),
and the figures of anchors.md section 1.3/1.4 (SCALE-Sim CLI runs made earlier on this machine).
"""

import json
import math

import numpy as np
import pytest

from lowbit.sim.systolic import (
    ArrayConfig, Fp32AccPE, FpMacPE, IntPE, KulischPE, NullCostModel, Schedule, gemm_numerics,
    reference_numerics,
    schedule, simulate_gemm, simulate_topology,
)
from lowbit.sim.topology import (
    conv_layer, gemm_layer, read_scalesim_cfg, read_topology, write_scalesim_cfg, write_topology,
)

# ---------------------------------------------------------------------------------------------------
# SCALE-Sim 3.0.0 measurements (see module docstring for the command)

SMALL_LAYERS = [
    gemm_layer("gemm_40x50x30", 40, 50, 30),
    gemm_layer("gemm_17x23x9", 17, 23, 9),
    gemm_layer("attn_64x32x64", 64, 32, 64),
    conv_layer("conv1_like", 32, 32, 7, 7, 3, 16, 2),
    conv_layer("conv2_like", 14, 14, 3, 3, 16, 16, 1),
    conv_layer("short_like", 14, 14, 1, 1, 16, 32, 2),
    conv_layer("fc_like", 1, 1, 1, 1, 64, 100, 1),
]

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


# anchors.md 1.3: SCALE-Sim 3.0.0 CLI/API runs, CALC bandwidth, and the closed form they matched
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


RESNET18_ROWS = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
Conv1,224,224,7,7,3,64,2,
Conv2_1a,56,56,3,3,64,64,1,
Conv2_1b,56,56,3,3,64,64,1,
Conv2_2a,56,56,3,3,64,64,1,
Conv2_2b,56,56,3,3,64,64,1,
Conv3_1a,56,56,3,3,64,128,2,
Conv3_1b,28,28,3,3,128,128,1,
Conv3_s,56,56,1,1,64,128,2,
Conv3_2a,28,28,3,3,128,128,1,
Conv3_2b,28,28,3,3,128,128,1,
Conv4_1a,28,28,3,3,128,256,2,
Conv4_1b,14,14,3,3,256,256,1,
Conv4_s,28,28,1,1,128,256,2,
Conv4_2a,14,14,3,3,256,256,1,
Conv4_2b,14,14,3,3,256,256,1,
Conv5_1a,14,14,3,3,256,512,2,
Conv5_1b,7,7,3,3,512,512,1,
Conv5_s,14,14,1,1,256,512,2,
Conv5_2a,7,7,3,3,512,512,1,
Conv5_2b,7,7,3,3,512,512,1,
FC,1,1,1,1,512,1000,1,"""  # SCALE-Sim topologies/conv_nets/Resnet18.csv (commit 1d62b68, MIT)


def test_resnet18_ws_32x32_equals_scalesim(tmp_path):
    # anchors.md 1.4: SCALE-Sim 3.0.0 on its scale.cfg (32x32 WS, CALC): 2,519,815 compute cycles, 0 stalls,
    # SRAM filter reads 11.68 M. (anchors.md's "1.438 G MACs, 55.7 %" uses floor for the ofmap size;
    # SCALE-Sim's ceil((H - F + S) / S) gives 1,471,181,568 MACs, 57.0 % utilisation.)
    topo = tmp_path / "Resnet18.csv"
    topo.write_text(RESNET18_ROWS)
    layers = read_topology(topo)
    assert len(layers) == 21
    res = simulate_topology(layers, ArrayConfig(32, 32, "ws"))
    assert res.total.compute_cycles == 2_519_815
    assert res.total.stall_cycles == 0
    assert round(res.total.sram_read_filter / 1e6, 2) == 11.68
    assert res.total.macs == 1_471_181_568
    assert round(100 * res.total.scalesim_utilisation, 1) == 57.0


# ---------------------------------------------------------------------------------------------------
# the schedule against a register-transfer model of the array

def _rt_weight_stationary(a_stream, tile, R, C, L):
    """Cycle-by-cycle register model of one WS/IS fold.

    a_stream: (T, R) streamed operand (row t enters array row i at the left edge at L + t + i);
    tile: (R, C) stationary operand, preloaded from the top (last row first) in cycles 0..R-1.
    Returns psum outputs (T, C), {(i, j, t): mac cycle}, {t: cycle the de-skewed vector is produced}.
    """
    T = a_stream.shape[0]
    w = [[None] * C for _ in range(R)]
    areg = [[None] * C for _ in range(R)]  # (value, t) leaving PE (i, j) to the right
    preg = [[None] * C for _ in range(R)]  # (psum, t) leaving PE (i, j) downwards
    macs, bottom = {}, {}
    out = np.zeros((T, C), dtype=np.int64)
    c = 0
    while True:
        if c < R:  # preload: shift the weight rows down, inject tile row R-1-c at the top
            for i in range(R - 1, 0, -1):
                w[i] = w[i - 1]
            w[0] = list(tile[R - 1 - c])
        new_a = [[None] * C for _ in range(R)]
        new_p = [[None] * C for _ in range(R)]
        for i in range(R):
            for j in range(C):
                if j == 0:
                    t = c - L - i
                    a_in = (a_stream[t, i], t) if c >= L and 0 <= t < T else None
                else:
                    a_in = areg[i][j - 1]
                if a_in is None:
                    continue
                val, t = a_in
                p_in = 0 if i == 0 else preg[i - 1][j][0]
                if i > 0:
                    assert preg[i - 1][j][1] == t
                new_a[i][j] = a_in
                new_p[i][j] = (p_in + int(val) * int(w[i][j]), t)
                macs[(i, j, t)] = c
                if i == R - 1:
                    out[t, j] = new_p[i][j][0]
                    bottom[(t, j)] = c
        areg, preg = new_a, new_p
        c += 1
        if len(macs) == R * C * T:
            break
    # de-skew: column j delayed by C-1-j registers, then one output register
    produced = {}
    for t in range(T):
        cyc = {bottom[(t, j)] + (C - 1 - j) + 1 for j in range(C)}
        assert len(cyc) == 1
        produced[t] = cyc.pop()
    return out, macs, produced


def _rt_output_stationary(a, b, R, C):
    """Cycle-by-cycle register model of one OS fold: a (R, T) from the left, b (T, C) from the top."""
    T = a.shape[1]
    acc = np.zeros((R, C), dtype=np.int64)
    areg = [[None] * C for _ in range(R)]
    breg = [[None] * C for _ in range(R)]
    macs = {}
    c = 0
    while len(macs) < R * C * T:
        new_a = [[None] * C for _ in range(R)]
        new_b = [[None] * C for _ in range(R)]
        for i in range(R):
            for j in range(C):
                ta = c - i
                a_in = ((a[i, ta], ta) if 0 <= ta < T else None) if j == 0 else areg[i][j - 1]
                tb = c - j
                b_in = ((b[tb, j], tb) if 0 <= tb < T else None) if i == 0 else breg[i - 1][j]
                new_a[i][j], new_b[i][j] = a_in, b_in
                if a_in is not None:
                    assert b_in is not None and a_in[1] == b_in[1]
                    acc[i, j] += int(a_in[0]) * int(b_in[0])
                    macs[(i, j, a_in[1])] = c
                else:
                    assert b_in is None
        areg, breg = new_a, new_b
        c += 1
    return acc, macs


@pytest.mark.parametrize("df", ["ws", "is"])
@pytest.mark.parametrize("R, C", [(3, 4), (4, 2)])
def test_schedule_matches_register_model_ws_is(df, R, C):
    rng = np.random.default_rng(1)
    M, K, N = 5, 7, 6
    A = rng.integers(-8, 8, (M, K))
    B = rng.integers(-8, 8, (K, N))
    s = Schedule(M, K, N, R, C, df)
    P = s.fold_period
    assert s.preload == R
    out = np.zeros((M, N), dtype=np.int64)
    for f in range(s.folds):
        tile = s.fold_tile(f)
        (k0, k1), (m0, m1), (n0, n1) = tile["K"], tile["M"], tile["N"]
        if df == "ws":  # stationary filter[K-slice, N-slice]; stream ifmap rows
            stat = np.zeros((R, C), dtype=np.int64)
            stat[:k1 - k0, :n1 - n0] = B[k0:k1, n0:n1]
            stream = np.zeros((s.T, R), dtype=np.int64)
            stream[:, :k1 - k0] = A[:, k0:k1]
        else:  # stationary ifmap^T[K-slice, M-slice]; stream filter columns
            stat = np.zeros((R, C), dtype=np.int64)
            stat[:k1 - k0, :m1 - m0] = A[m0:m1, k0:k1].T
            stream = np.zeros((s.T, R), dtype=np.int64)
            stream[:, :k1 - k0] = B[k0:k1, :].T
        psum, macs, produced = _rt_weight_stationary(stream, stat, R, C, s.preload)
        for (i, j, t), cyc in macs.items():
            assert f * P + cyc == s.mac_cycle(f, i, j, t)
        for t, cyc in produced.items():
            assert f * P + cyc == s.output_cycle(f, t)
        assert max(macs.values()) == P - 1
        if df == "ws":
            out[:, n0:n1] += psum[:, :n1 - n0]
        else:
            out[m0:m1, :] += psum[:, :m1 - m0].T
    np.testing.assert_array_equal(out, A @ B)
    assert s.mac_cycle(s.folds - 1, R - 1, C - 1, s.T - 1) == s.compute_cycles
    assert s.output_cycle(s.folds - 1, s.T - 1) == s.latency == s.compute_cycles + 1


@pytest.mark.parametrize("R, C", [(3, 4), (4, 2)])
def test_schedule_matches_register_model_os(R, C):
    rng = np.random.default_rng(2)
    M, K, N = 7, 5, 6
    A = rng.integers(-8, 8, (M, K))
    B = rng.integers(-8, 8, (K, N))
    s = Schedule(M, K, N, R, C, "os")
    P = s.fold_period
    out = np.zeros((M, N), dtype=np.int64)
    for f in range(s.folds):
        tile = s.fold_tile(f)
        (m0, m1), (n0, n1) = tile["M"], tile["N"]
        a = np.zeros((R, K), dtype=np.int64)
        a[:m1 - m0] = A[m0:m1]
        b = np.zeros((K, C), dtype=np.int64)
        b[:, :n1 - n0] = B[:, n0:n1]
        acc, macs = _rt_output_stationary(a, b, R, C)
        for (i, j, t), cyc in macs.items():
            assert f * P + cyc == s.mac_cycle(f, i, j, t)
        assert max(macs.values()) == P - 1
        out[m0:m1, n0:n1] = acc[:m1 - m0, :n1 - n0]
        # drain: row i leaves at (f+1)P + R-1-i, after its accumulator's last MAC, before the next
        # fold's drain
        for i in range(R):
            assert s.output_cycle(f, i) > f * P + max(macs[(i, j, K - 1)] for j in range(C))
            assert s.output_cycle(f, i) < (f + 2) * P
    np.testing.assert_array_equal(out, A @ B)
    assert s.output_cycle(s.folds - 1, 0) == s.latency == s.compute_cycles + R


def test_fold_order_and_tiles():
    s = Schedule(40, 50, 30, 8, 16, "ws")  # Sr = K = 50 -> 7 row folds, Sc = N = 30 -> 2 col folds
    assert (s.row_folds, s.col_folds, s.folds) == (7, 2, 14)
    assert s.fold_coords(0) == (0, 0) and s.fold_coords(6) == (0, 6) and s.fold_coords(7) == (1, 0)
    assert s.fold_tile(13) == {"M": (0, 40), "K": (48, 50), "N": (16, 30), "rows_used": 2, "cols_used": 14}
    assert s.phases() == {"preload": 8, "stream": 40, "row_skew": 7, "col_skew": 15, "period": 70, "drain": 1}


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
    assert lines[-1].startswith("total,")
    assert res.table().row_count == 3


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
    ({"rows": 0}, r"^rows must be an integer in 1\.\.1048576, not 0$"),
    ({"cols": -3}, r"^cols must be an integer in 1\.\.1048576, not -3$"),
    ({"dataflow": "rs"}, r"^dataflow must be one of os, ws, is, not 'rs'$"),
    ({"dram_bw": 0}, r"^dram_bw must be a positive number of words/cycle or 'CALC', not 0$"),
    ({"dram_bw": "fast"}, r"^dram_bw must be a positive number of words/cycle or 'CALC', not 'fast'$"),
    ({"ifmap_sram_kib": 0}, r"^ifmap_sram_kib must be a positive finite number, not 0$"),
    ({"word_bytes": 0}, r"^word_bytes must be an integer in 1\.\.64, not 0$"),
])
def test_config_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        ArrayConfig(**kw)


def test_gemm_validation():
    with pytest.raises(ValueError, match=r"^K must be an integer in 1\.\.1099511627776, not 0$"):
        simulate_gemm(4, 0, 4, ArrayConfig())
    with pytest.raises(ValueError, match=r"^f must be an integer in 0\.\.3, not 4$"):
        Schedule(8, 8, 8, 4, 4, "os").fold_start(4)


# ---------------------------------------------------------------------------------------------------
# numerics

def test_int8_numerics_exact():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (37, 300), dtype=np.uint8)  # int8 bit patterns
    b = rng.integers(0, 256, (300, 23), dtype=np.uint8)
    got = gemm_numerics(a, b, ArrayConfig(8, 8, "ws"), pe=IntPE("int8", "int8", acc_bits=32))
    want = a.view(np.int8).astype(np.int64) @ b.view(np.int8).astype(np.int64)
    np.testing.assert_array_equal(got, want)


def test_int8_numerics_wraps_like_a_register():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (6, 40), dtype=np.uint8)
    b = rng.integers(0, 256, (40, 5), dtype=np.uint8)
    pe = IntPE(acc_bits=16)
    got = gemm_numerics(a, b, ArrayConfig(4, 4, "os"), pe=pe)
    exact = a.view(np.int8).astype(np.int64) @ b.view(np.int8).astype(np.int64)
    np.testing.assert_array_equal(got, ((exact + 2**15) % 2**16) - 2**15)
    np.testing.assert_array_equal(got, reference_numerics(a, b, pe))
    assert np.any(got != exact)  # the case does overflow 16 bits


def test_int8_saturating_accumulator_follows_k_order():
    rng = np.random.default_rng(6)
    a = rng.integers(0, 256, (5, 30), dtype=np.uint8)
    b = rng.integers(0, 256, (30, 4), dtype=np.uint8)
    pe = IntPE(acc_bits=12, overflow="saturate")
    got = gemm_numerics(a, b, ArrayConfig(4, 4, "ws"), pe=pe)
    av, bv = a.view(np.int8).astype(np.int64), b.view(np.int8).astype(np.int64)
    want = np.zeros((5, 4), dtype=np.int64)
    for m in range(5):
        for n in range(4):
            acc = 0
            for k in range(30):  # clamp to [-2048, 2047] after every MAC, k ascending
                acc = min(2047, max(-2048, acc + int(av[m, k]) * int(bv[k, n])))
            want[m, n] = acc
    np.testing.assert_array_equal(got, want)
    assert np.any(np.abs(want) == 2048) or np.any(want == 2047)


def test_fp32_accumulate_order_matches_float32_oracle():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(5)
    K = 64
    # e4m3 (OCP, "fn") codes excluding NaN (0x7f, 0xff)
    codes = np.array([c for c in range(256) if c & 0x7F != 0x7F], dtype=np.uint8)
    a = rng.choice(codes, (9, K))
    b = rng.choice(codes, (K, 7))
    got = gemm_numerics(a, b, ArrayConfig(4, 4, "ws"), pe=Fp32AccPE("e4m3", "e4m3"))
    av = a.view(ml_dtypes.float8_e4m3fn).astype(np.float32)  # independent decode
    bv = b.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    want = np.zeros((9, 7), dtype=np.float32)
    rev = np.zeros((9, 7), dtype=np.float32)
    for m in range(9):
        for n in range(7):
            acc = np.float32(-0.0)
            for k in range(K):  # products of e4m3 values are exact in float32; one rounding per add
                acc = np.float32(acc + av[m, k] * bv[k, n])
            want[m, n] = acc
            acc = np.float32(0)
            for k in reversed(range(K)):
                acc = np.float32(acc + av[m, k] * bv[k, n])
            rev[m, n] = acc
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert np.any(rev != want)  # the order matters for an FP accumulator: this case shows it
    np.testing.assert_array_equal(gemm_numerics(a, b, ArrayConfig(4, 4, "os"), pe=Fp32AccPE(), block_rows=2)
                                  .view(np.uint32), want.view(np.uint32))
    # the golden-model FP MAC (fused, FP32 accumulator) gives the same bits in the same order
    golden = gemm_numerics(a, b, ArrayConfig(4, 4, "ws"), pe=FpMacPE("e4m3", "e4m3", "fp32", "fused"))
    np.testing.assert_array_equal(golden.astype(np.uint32), want.view(np.uint32))


def test_golden_fp_mac_two_roundings_fp16_matches_scalar_reference():
    rng = np.random.default_rng(7)
    codes = np.array([c for c in range(256) if c & 0x7F != 0x7F], dtype=np.uint8)
    a = rng.choice(codes, (4, 20))
    b = rng.choice(codes, (20, 3))
    pe = FpMacPE("e4m3", "e4m3", "fp16", "two_roundings", saturate=True)
    got = gemm_numerics(a, b, ArrayConfig(2, 2, "os"), pe=pe)
    np.testing.assert_array_equal(got, reference_numerics(a, b, pe))


def test_numerics_validation():
    with pytest.raises(ValueError, match=r"^a_codes must be \(M, K\) and b_codes \(K, N\) with equal K"):
        gemm_numerics(np.zeros((2, 3), np.uint8), np.zeros((4, 2), np.uint8), ArrayConfig())
    with pytest.raises(ValueError, match=r"^a_format must be an integer format"):
        IntPE("e4m3")
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer in 2\.\.63, not 64$"):
        IntPE(acc_bits=64)
    with pytest.raises(ValueError, match=r"^overflow must be 'wrap' or 'saturate', not 'clip'$"):
        IntPE(overflow="clip")
    with pytest.raises(ValueError, match=r"^mode must be 'fused' or 'two_roundings' \(KulischPE for "
                                         r"'kulisch'\), not 'kulisch'$"):
        FpMacPE(mode="kulisch")
    with pytest.raises(ValueError, match=r"^output must be 'code' or 'state', not 'value'$"):
        KulischPE(output="value")
    with pytest.raises(ValueError, match=r"^terms must be an integer from 1 to 4294967296, not 0$"):
        KulischPE(terms=0)
    with pytest.raises(ValueError, match=r"^acc_format must be an IEEE-style float format"):
        KulischPE(acc_format="e4m3")


def test_kulisch_numerics_exact_sum_rounded_once():
    """KulischPE: the exact sum of the products rounded once to FP32. Oracle: ml_dtypes decode,
    exact float64 products, ``math.fsum`` (the exact sum: a multiple of 2^-18 below 2^30 has at
    most 48 significant bits, so float64 holds it) and one float64 -> float32 rounding (RNE)."""
    import math
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(9)
    K = 64
    codes = np.array([c for c in range(256) if c & 0x7F != 0x7F], dtype=np.uint8)
    a = rng.choice(codes, (9, K))
    b = rng.choice(codes, (K, 7))
    a[0] = 0x80                                   # -0 products only: -0
    b[:, 6] = 0                                   # +0 * x: +0
    pe = KulischPE("e4m3", "e4m3", "fp32")
    assert (pe.width, pe.lsb_exp) == (49, -18)
    got = gemm_numerics(a, b, ArrayConfig(4, 4, "ws"), pe=pe)
    av = a.view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    bv = b.view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    want = np.zeros((9, 7), dtype=np.float32)
    for m in range(9):
        for n in range(7):
            p = av[m] * bv[:, n]
            want[m, n] = np.float32(math.fsum(p))
            if want[m, n] == 0:                   # an exact zero: -0 iff every product is -0
                want[m, n] = -0.0 if np.all((p == 0) & np.signbit(p)) else 0.0
    assert np.signbit(want[0, 6]) and want[0, 6] == 0 and not np.signbit(want[0, 0])
    np.testing.assert_array_equal(got.astype(np.uint32), want.view(np.uint32))
    # order-independent (exact), scalar reference, and the golden FP MAC over the whole row
    np.testing.assert_array_equal(gemm_numerics(a[:, ::-1], b[::-1], ArrayConfig(2, 2, "os"), pe=pe),
                                  got)
    np.testing.assert_array_equal(reference_numerics(a[:3, :9], b[:9, :3], pe),
                                  gemm_numerics(a[:3, :9], b[:9, :3], ArrayConfig(), pe=pe))
    from lowbit.models.mac import fp_mac
    np.testing.assert_array_equal(fp_mac(a[:, None, :], b.T[None], "e4m3", "e4m3", "fp32", "kulisch"),
                                  got)
    # an FP32 accumulator rounding every step differs somewhere: this case shows it
    fused = gemm_numerics(a, b, ArrayConfig(), pe=FpMacPE("e4m3", "e4m3", "fp32", "fused"))
    assert np.any(fused != got)


def test_kulisch_state_output_packs_fixed_and_flags():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 1 << 5, (4, 6))           # e5m2 codes, Inf/NaN included
    a[0, 0] = 0x7C                                # +Inf
    a[1, 0] = 0x7D                                # NaN
    b = rng.integers(0, 1 << 5, (6, 3))
    b[0] = 0x3C                                   # +1
    pe = KulischPE("e5m2", "e5m2", "bf16", terms=8)
    ps = KulischPE("e5m2", "e5m2", "bf16", terms=8, output="state")
    st = gemm_numerics(a, b, ArrayConfig(), pe=ps)
    assert st.dtype == object and all(0 <= int(v) < 1 << (ps.width + 4) for v in st.flat)
    flags = np.vectorize(lambda v: int(v) >> ps.width)(st)
    assert (flags[0] & 2).all() and (flags[1] & 1).all()      # +Inf seen; NaN seen
    state = ps.unpack(st)
    np.testing.assert_array_equal(pe.result(state), gemm_numerics(a, b, ArrayConfig(), pe=pe))
    np.testing.assert_array_equal(ps.pack(state), st)
    assert all(-(1 << (ps.width - 1)) <= int(v) < 1 << (ps.width - 1) for v in state.fixed.flat)


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
    topo = tmp_path / "Resnet18.csv"
    topo.write_text(RESNET18_ROWS)
    cfgp = tmp_path / "scale.cfg"
    write_scalesim_cfg(cfgp, ArrayConfig(32, 32, "ws"))
    j = tmp_path / "o.json"
    assert main(["simulate", "--topology", str(topo), "--config", str(cfgp), "--json", str(j), "--quiet"]) == 0
    d = json.loads(j.read_text())
    assert d["total"]["compute_cycles"] == 2_519_815 and len(d["layers"]) == 21
    assert main(["simulate", "--topology", str(topo), "--config", str(cfgp), "--dataflow", "os",
                 "--json", str(j), "--quiet"]) == 0
    assert json.loads(j.read_text())["config"]["dataflow"] == "os"


@pytest.mark.parametrize("argv, msg", [
    (["--gemm", "0", "4", "4"], "lowbit simulate: error: M must be an integer >= 1, not 0"),
    (["--gemm", "4", "4", "4", "--rows", "0"], "lowbit simulate: error: rows must be an integer in 1..1048576, not 0"),
    (["--gemm", "4", "4", "4", "--dram-bw", "x"],
     "lowbit simulate: error: --dram-bw must be a positive number of words/cycle or CALC, not 'x'"),
    (["--topology", "/nonexistent.csv"], "lowbit simulate: error: --topology file '/nonexistent.csv' does not exist"),
])
def test_cli_errors(argv, msg, capsys):
    from lowbit.cli.main import main
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err
    assert err.strip() == msg
