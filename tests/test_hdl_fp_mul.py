# amaranth: UnusedElaboratable=no
"""FpMulCore / FpMultiplier against models.mac.fp_mul in Amaranth's simulator (bit-exact, at
the documented latency)."""

import numpy as np
import pytest

from amaranth_sim import run_comb, run_seq

from lowbit.hdl.fp_mul import FpMulCore, FpMultiplier
from lowbit.models import formats, mac

@pytest.mark.parametrize("an,bn,exhaustive", [("e2m1", "e2m1", True), ("e3m2", "e2m3", True),
                                              ("e4m3", "e5m2", False), ("e5m2fnuz", "e4m3fnuz", False)])
@pytest.mark.parametrize("flush", [False, True])
def test_fp_mul_core(an, bn, exhaustive, flush):
    a, b = formats.get(an), formats.get(bn)
    if exhaustive:
        A, B = np.meshgrid(a.all_codes(), b.all_codes(), indexing="ij")
        A, B = A.ravel(), B.ravel()
    else:
        rng = np.random.default_rng(5)
        A, B = rng.integers(0, 256, 1500), rng.integers(0, 256, 1500)
    got = run_comb(FpMulCore(a, b, flush), {"a": A, "b": B}, ["p"])["p"]
    assert np.array_equal(got, mac.fp_mul(A, B, a, b, flush))


@pytest.mark.parametrize("stages", [0, 1])
def test_fp_multiplier_latency(stages):
    rng = np.random.default_rng(stages)
    A, B = rng.integers(0, 256, 300), rng.integers(0, 256, 300)
    valid = rng.random(300) < 0.7
    dut = FpMultiplier("e4m3", "e4m3", pipeline_stages=stages)
    assert dut.latency == 1 + stages
    got = run_seq(dut, {"a": A, "b": B, "valid": valid}, ["p", "out_valid"], dut.latency)
    assert np.array_equal(got["p"], mac.fp_mul(A, B, "e4m3", "e4m3"))
    assert np.array_equal(got["out_valid"], valid)


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^pipeline_stages must be an integer from 0 to 1, not 2$"):
        FpMultiplier(pipeline_stages=2)
    with pytest.raises(ValueError, match=r"^a_format must be a signed float format of at most 16 "
                                         r"bits"):
        FpMultiplier(a_format="int8")
