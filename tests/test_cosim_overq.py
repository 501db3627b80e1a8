# amaranth: UnusedElaboratable=no
"""cocotb co-simulation of the generated OverQ / plain PE Verilog against lowbit.models.overq.

b = 4: every (code, metadata, weight, previous weight) combination, then random cycles with
random ``first``/``valid``; b = 8: random cycles.  The accumulator is compared on every cycle.
"""

import pytest

from lowbit.sim.bench_overq import cosim_int_pe, cosim_overq_pe

pytestmark = pytest.mark.cosim


@pytest.mark.parametrize("params,vectors,lanes", [
    ({"bits": 4, "w_bits": 4, "acc_bits": 16, "cascade": 1, "precision": True}, 2048, 64),
    ({"bits": 4, "w_bits": 4, "acc_bits": 12, "cascade": 0, "precision": False}, 1024, 32),
    ({"bits": 4, "w_bits": 4, "acc_bits": 16, "cascade": 1, "precision": True,
      "shift_at": "operands"}, 1024, 64),
    ({"bits": 8, "w_bits": 8, "acc_bits": 32, "cascade": 2, "precision": True}, 8192, 32),
], ids=["b4-c1-prec-exhaustive", "b4-c0-1meta-exhaustive", "b4-operands-exhaustive", "b8-random"])
def test_overq_pe_cosim(params, vectors, lanes, simulator):
    rep = cosim_overq_pe(params, vectors, 5, simulator, lanes=lanes)
    assert rep.ok, rep.format()
    assert rep.vectors >= vectors


def test_int_pe_cosim(simulator):
    rep = cosim_int_pe({"bits": 4, "w_bits": 4, "acc_bits": 10}, 4096, 6, simulator)
    assert rep.ok, rep.format()
