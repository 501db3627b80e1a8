"""Stochastic rounding in the FP MAC: the generated Verilog under cocotb/Verilator, bit-exact
against :func:`lowbit.models.mac.mac_stream` with ``rounding="stochastic"``.

The random bits come from the ``rand`` port (uniform stimulus) or from the unit's LFSR, whose
stream the golden model replays (:func:`lowbit.models.lfsr.lfsr_stream`, same seed -> same
bits).  One long run (100,000 steps) and short runs for the other configurations.
"""

import pytest

from lowbit.sim import bench_mac

pytestmark = pytest.mark.cosim


def test_sr_fp_mac_lfsr_100k(simulator):
    """bf16 accumulator, N = 8 from the 16-bit LFSR, fused: 100,000 random MAC steps."""
    rep = bench_mac.cosim_fp_mac({"acc_format": "bf16", "rounding": "stochastic",
                                  "sr_bits": 8, "a_format": "e4m3", "b_format": "e5m2"},
                                 vectors=100_000, seed=17, sim=simulator)
    assert rep.ok, rep.format()


@pytest.mark.parametrize("params", [
    {"acc_format": "fp16", "rounding": "stochastic", "sr_bits": 4, "random_source": "port",
     "mode": "two_roundings"},
    {"acc_format": "fp32", "rounding": "stochastic", "sr_bits": 16, "random_source": "port",
     "pipeline_stages": 2},
    {"acc_format": "fp16", "rounding": "stochastic", "sr_bits": 12, "lfsr_width": 12,
     "seed": 1, "saturate": True, "pipeline_stages": 1},
])
def test_sr_fp_mac_short(params, simulator):
    rep = bench_mac.cosim_fp_mac(params, vectors=8_000, seed=3, sim=simulator)
    assert rep.ok, rep.format()
