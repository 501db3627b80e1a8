# amaranth: UnusedElaboratable=no
"""Co-simulation (cocotb, generated Verilog) of SystolicArray GEMMs.

Each case drives the generated array cycle by cycle with the operand beats of a tiled GEMM
(M, K, N larger than the array; :func:`lowbit.hdl.systolic.gemm_program`) at the cycles the
behavioural simulator's schedule (:class:`lowbit.sim.systolic.Schedule`) gives them, with the
result sink always ready, and checks every cycle (:func:`lowbit.hdl.systolic.cosim_gemm`):

* ``i.ready`` equals the schedule's pattern: high in every cycle except the ``R + C - 2``
  skew-drain cycles after each fold's last beat, so every offered beat is accepted in the cycle
  the simulator says, and a source that always had the next beat could not have been faster or
  slower: the RTL's schedule is the simulator's;
* ``o.valid`` is high exactly in the cycles of the schedule's result beats
  (:meth:`~lowbit.sim.systolic.Schedule.output_cycle`), so the number of cycles from the first
  operand accepted (cycle 0) to the last result produced equals ``Schedule.latency``
  (``compute_cycles + drain``);
* every result beat is bit-exact: OS tiles and the final WS K-fold against
  :func:`lowbit.sim.systolic.gemm_numerics` with the array's PE (the golden GEMM in the array's
  accumulation order), each intermediate WS K-fold against the golden partial sum over
  ``k < k1``. The WS psum lanes of a K-fold carry the golden partial sums of the previous
  K-folds (the bench is open loop); since the RTL's own partial sums of those folds are checked
  equal to them, this is the closed-loop result too (the Amaranth-simulator tests in
  test_hdl_systolic.py feed the RTL's own partial sums back).
"""

import numpy as np
import pytest

from lowbit.hdl.systolic import SystolicArray
from lowbit.models.mac import fp_mac
from lowbit.sim.bench_systolic import cosim_gemm, random_operands, ref_systolic

pytestmark = pytest.mark.cosim


import os

# Four more builds run only with LOWBIT_COSIM_FULL=1 (CI test-time budget): the default set
# still has 4x4, 8x8 and non-square arrays, both dataflows, INT8 and FP8 PEs (and an OverQ PE).
_full = pytest.mark.skipif(not os.environ.get("LOWBIT_COSIM_FULL"),
                           reason="large build; set LOWBIT_COSIM_FULL=1")

CASES = [
    # rows, cols, pe, dataflow, M, K, N
    pytest.param(4, 4, "int", "ws", 9, 11, 7, id="int8-4x4-ws"),
    pytest.param(8, 8, "int", "os", 19, 12, 10, id="int8-8x8-os"),
    pytest.param(3, 5, "int", "ws", 7, 8, 11, id="int8-3x5-ws"),
    pytest.param(5, 3, "int", "os", 11, 6, 7, id="int8-5x3-os"),
    pytest.param(4, 4, "fp", "ws", 6, 9, 6, id="fp8-4x4-ws"),
    pytest.param(3, 2, "fp", "os", 7, 5, 5, id="fp8-3x2-os"),
    pytest.param(4, 4, "overq", "ws", 6, 10, 7, id="overq4-4x4-ws"),
    # same Verilog as int8-4x4-ws (IS is the WS hardware; equal operand formats): no extra build
    pytest.param(4, 4, "int", "is", 10, 9, 7, id="int8-4x4-is"),
    pytest.param(8, 8, "int", "ws", 12, 19, 10, id="int8-8x8-ws", marks=_full),
    pytest.param(4, 4, "fp", "os", 6, 9, 6, id="fp8-4x4-os", marks=_full),
    pytest.param(2, 3, "fp", "ws", 4, 5, 7, id="fp8-2x3-ws", marks=_full),
    pytest.param(4, 4, "int", "os", 9, 11, 7, id="int8-4x4-os", marks=_full),
]


@pytest.mark.parametrize("R,C,pe,df,M,K,N", CASES)
def test_gemm_cosim(R, C, pe, df, M, K, N, simulator):
    sim = simulator
    array = SystolicArray(R, C, pe=pe, dataflow=df)
    rep = cosim_gemm(array, M, K, N, seed=R * 31 + C + M, sim=sim)
    assert rep.ok, rep.format()
    s = array.gemm_cycles(M, K, N)
    assert s.folds > 1
    assert rep.cycles["first_accept"] == 0
    assert rep.cycles["last_result"] == s.latency == s.compute_cycles + s.drain
    assert rep.vectors == s.latency + 1


KULISCH_CASES = [
    # rows, cols, dataflow, M, K, N: one Verilator build (~the cost of the fp8-4x4-ws case)
    pytest.param(4, 4, "ws", 9, 11, 7, id="fp8-kulisch-4x4-ws"),
]


@pytest.mark.parametrize("R,C,df,M,K,N", KULISCH_CASES)
def test_gemm_cosim_kulisch(R, C, df, M, K, N, simulator):
    """FP8 (E4M3) PE with the Kulisch accumulator: every result beat's rounded codes and exact
    states bit-exact (each K-fold's states against the golden exact partial sums, which the
    psum lanes of the next K-fold carry back in), final codes equal the golden FP MAC in Kulisch
    mode over all of K, last result on the schedule's cycle."""
    array = SystolicArray(R, C, pe="fp", dataflow=df, mode="kulisch")
    rep = cosim_gemm(array, M, K, N, seed=R * 31 + C + M, sim=simulator)
    assert rep.ok, rep.format()
    s = array.gemm_cycles(M, K, N)
    assert s.folds > 1 and s.row_folds > 1           # K-folds: the state crosses the psum lanes
    assert rep.cycles["first_accept"] == 0
    assert rep.cycles["last_result"] == s.latency == s.compute_cycles + s.drain
    assert rep.vectors == s.latency + 1
    # the golden the bench checked is the single-rounding FP MAC over all of K
    A, B = random_operands(array.spec, M, K, N, np.random.default_rng(R * 31 + C + M), 0.01)
    np.testing.assert_array_equal(
        ref_systolic(array, A, B),
        fp_mac(A[:, None, :], B.T[None], "e4m3", "e4m3", "fp32", "kulisch"))


PIPE_CASES = [
    # rows, cols, pe, dataflow, pe_stages, M, K, N: pipelined PEs (two Verilator builds by
    # default, ~50 CPU-s cold together; a 3 x 3 array saves only ~10 % of that). The deepest FP
    # PE (6 stages: product, aligned add, normalising shift, leading-zero count and rounding
    # increment registered) and the INT PE with its product register; Kulisch, OS and IS only
    # with LOWBIT_COSIM_FULL=1 (test_hdl_systolic_pipelined.py covers every PE kind, dataflow
    # and depth in the Amaranth simulator).
    pytest.param(4, 4, "int8", "ws", 2, 9, 11, 7, id="int8-4x4-ws-s2"),
    pytest.param(4, 4, "e4m3_fp32", "ws", 6, 6, 9, 7, id="fp8-4x4-ws-s6"),
    pytest.param(3, 4, "e4m3_kulisch", "ws", 4, 7, 8, 9, id="fp8-kulisch-3x4-ws-s4",
                 marks=_full),
    pytest.param(4, 3, "int8", "os", 2, 9, 7, 8, id="int8-4x3-os-s2", marks=_full),
    pytest.param(3, 3, "e4m3_fp32", "is", 3, 7, 8, 9, id="fp8-3x3-is-s3", marks=_full),
]


@pytest.mark.parametrize("R,C,pe,df,S,M,K,N", PIPE_CASES)
def test_gemm_cosim_pipelined(R, C, pe, df, S, M, K, N, simulator):
    """Pipelined PEs under Verilator: every result beat bit-exact with the golden GEMM (and the
    golden partial sums of the intermediate K-folds), ``i.ready`` and ``o.valid`` on the cycles
    of the schedule with PE latency ``S``, the last result on ``Schedule.latency``, which is
    later than the one-cycle PE's by what the pipeline adds (WS/IS: ``(R - 1) * (S - 1)`` per
    fold and ``S - 1`` of drain; OS: ``S - 1`` of drain)."""
    array = SystolicArray(R, C, pe=pe, dataflow=df, pe_stages=S)
    rep = cosim_gemm(array, M, K, N, seed=R * 31 + C + M + S, sim=simulator)
    assert rep.ok, rep.format()
    s = array.gemm_cycles(M, K, N)
    s1 = SystolicArray(R, C, pe=pe, dataflow=df).gemm_cycles(M, K, N)
    assert s.folds > 1 and s.readback_ok
    assert rep.cycles["first_accept"] == 0
    assert rep.cycles["last_result"] == s.latency == s.compute_cycles + s.drain
    extra = (S - 1) if df == "os" else s.folds * (R - 1) * (S - 1) + S - 1
    assert s.latency == s1.latency + extra
    assert rep.vectors == s.latency + 1
