# amaranth: UnusedElaboratable=no
"""SystolicArray in the Amaranth simulator: GEMMs bit-exact with the golden numerics in the
array's accumulation order, and cycle counts equal to the behavioural simulator's schedule."""

import json

import numpy as np
import pytest
from amaranth.sim import Simulator

from lowbit.hdl.systolic import GemmTiler, SystolicArray
from lowbit.models import formats
from lowbit.sim.systolic import ArrayConfig, gemm_numerics


def random_codes(fmt, shape, rng, specials=0.0):
    """Random codes of ``fmt``; float NaN/Inf codes replaced by 0 except a fraction ``specials``."""
    x = rng.integers(0, 1 << fmt.bits, shape)
    if isinstance(fmt, formats.FloatFormat):
        bad = ~np.isfinite(fmt.decode(x)) & (rng.random(shape) >= specials)
        x[bad] = 0
    return x


def rtl_gemm(array, A, B, p_valid=1.0, p_ready=1.0, seed=0, max_cycles=200_000):
    """Run ``A @ B`` through ``array`` in the Amaranth simulator with a reactive host.

    The host offers the next beat whenever it has one (with probability ``p_valid`` per cycle),
    builds WS psum lanes from the array's own previous K-fold results (its ofmap buffer), and
    takes result beats with probability ``p_ready``. Returns ``(C, trace)``: the result codes
    and a dict of the cycles at which beats were accepted / results produced (cycle 0 = reset
    released).
    """
    tl = GemmTiler(array, A, B)
    s = tl.sched
    rng = np.random.default_rng(seed)
    out = np.zeros((tl.M, tl.N), dtype=object)
    trace = {"accept": [], "result": [], "fold_accept": [], "fold_result": []}
    per_fold = tl.results_per_fold()

    async def bench(ctx):
        f, k, results, cycle = 0, 0, [], 0
        nb = tl.beats_per_fold()
        while len(trace["fold_result"]) < s.folds:
            offer = f < s.folds and rng.random() < p_valid
            ctx.set(array.i.valid, offer)
            if offer:
                ctx.set(array.i.payload.as_value(), tl.beat(f, k, out))
            ctx.set(array.o.ready, bool(rng.random() < p_ready))
            _, _, iv, ir, ov, orr, op = await ctx.tick().sample(
                array.i.valid, array.i.ready, array.o.valid, array.o.ready,
                array.o.payload.as_value())
            if iv and ir:
                trace["accept"].append(cycle)
                if k == 0:
                    trace["fold_accept"].append([])
                trace["fold_accept"][f].append(cycle)
                k += 1
                if k == nb:
                    f, k = f + 1, 0
            if ov and orr:
                trace["result"].append(cycle)
                acc, last = array.unpack_result(op)
                results.append(acc)
                assert last == (len(results) == per_fold)
                if len(results) == per_fold:
                    tl.place(len(trace["fold_result"]), results, out)
                    trace["fold_result"].append(trace["result"][-per_fold:])
                    results = []
            cycle += 1
            assert cycle < max_cycles
        ctx.set(array.i.valid, 0)

    sim = Simulator(array)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out, trace


def golden(array, A, B):
    cfg = ArrayConfig(rows=array.rows, cols=array.cols, dataflow=array.dataflow)
    return np.asarray(gemm_numerics(A, B, cfg, pe=array.golden_pe()))


def as_codes(array, C):
    """RTL result codes -> the golden model's representation (INT: signed values)."""
    C = np.asarray(C, dtype=object)
    if array.pe == "int":
        w = array.acc_width
        return np.vectorize(lambda v: v - (1 << w) if v >> (w - 1) else v, otypes=[np.int64])(C)
    return C.astype(np.uint64)


def check_schedule(array, trace, M, K, N):
    """Accept/result cycles equal the simulator's Schedule (full-rate host and sink)."""
    s = array.gemm_cycles(M, K, N)
    t0 = trace["accept"][0]
    P = s.fold_period
    for f, cyc in enumerate(trace["fold_accept"]):
        beats = (array.rows if array.dataflow == "ws" else 0) + s.T
        assert [c - t0 for c in cyc] == [f * P + k for k in range(beats)]
    for f, cyc in enumerate(trace["fold_result"]):
        if array.dataflow == "ws":
            want = [s.output_cycle(f, t) for t in range(s.T)]
        else:
            want = [s.output_cycle(f, i) for i in reversed(range(array.rows))]
        assert [c - t0 for c in cyc] == want
    assert trace["result"][-1] - t0 == s.latency
    assert trace["result"][-1] - t0 == s.compute_cycles + s.drain


CASES = [
    # rows, cols, pe, dataflow, M, K, N
    (2, 2, "int", "ws", 3, 5, 3),
    (2, 3, "int", "os", 5, 4, 7),
    (3, 2, "int", "ws", 4, 7, 5),
    (3, 2, "int", "os", 7, 3, 5),
    (2, 2, "fp", "ws", 3, 5, 3),
    (2, 3, "fp", "os", 5, 4, 4),
    (1, 1, "int", "ws", 2, 3, 2),
    (1, 1, "int", "os", 2, 3, 2),
    (1, 3, "fp", "ws", 2, 2, 4),
    (3, 1, "fp", "os", 4, 2, 2),
]


@pytest.mark.parametrize("R,C,pe,df,M,K,N", CASES)
def test_gemm_bit_exact_and_cycles(R, C, pe, df, M, K, N):
    array = SystolicArray(R, C, pe=pe, dataflow=df)
    rng = np.random.default_rng(R * 100 + C * 10 + M)
    A = random_codes(array.a_format, (M, K), rng, 0.02)
    B = random_codes(array.b_format, (K, N), rng, 0.02)
    got, trace = rtl_gemm(array, A, B)
    assert np.array_equal(as_codes(array, got), golden(array, A, B))
    check_schedule(array, trace, M, K, N)
