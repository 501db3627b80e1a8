# amaranth: UnusedElaboratable=no
"""FpMac, its combinational steps (FpMacStep, KulischStep, KulischRead) and every depth of the
pipelined Kulisch datapath against models.mac in Amaranth's simulator (bit-exact, results
checked at the documented latency)."""

import numpy as np
import pytest

from amaranth_sim import run_comb, run_seq

from lowbit.hdl.fp_mac import KULISCH_CUTS, FpMac, FpMacStep, KulischRead, KulischStep
from lowbit.models import formats, mac
from lowbit.sim.bench_mac import random_fp_sequences

STEP_CONFIGS = [("e4m3", "e4m3", "fp32", "fused", False, False),
                ("e5m2", "e5m2", "fp16", "fused", True, True),
                ("e4m3", "e5m2", "bf16", "two_roundings", False, False),
                ("e5m2", "e5m2", "fp16", "two_roundings", False, True),
                ("e2m1", "e2m1", "fp16", "fused", True, False)]


@pytest.mark.parametrize("an,bn,accn,mode,flush,sat", STEP_CONFIGS)
def test_fp_mac_step(an, bn, accn, mode, flush, sat):
    rng = np.random.default_rng(11)
    a, b, acc = formats.get(an), formats.get(bn), formats.get(accn)
    n = 400
    A = rng.integers(0, 1 << a.bits, n)
    B = rng.integers(0, 1 << b.bits, n)
    C = acc.encode(rng.standard_normal(n) * np.exp2(rng.integers(-30, 20, n))).astype(np.int64)
    C[:40] = rng.integers(0, 1 << acc.bits, 40)                 # any pattern, specials included
    C[40:60] = rng.integers(0, 1 << acc.man_bits, 20)          # subnormals
    got = run_comb(FpMacStep(a, b, acc, mode, flush, sat), {"acc_in": C, "a": A, "b": B},
                   ["acc_out"])["acc_out"]
    want = mac.fp_mac_step(C, A, B, a, b, acc, mode, flush, sat)
    assert np.array_equal(got, want)


def test_kulisch_step_and_read():
    rng = np.random.default_rng(12)
    a, b = formats.e4m3, formats.e5m2
    step = KulischStep(a, b, terms=64)
    read = KulischRead(a, b, "bf16", terms=64)
    w = step.kulisch_width
    n = 300
    st = mac.kulisch_new_sum(n)
    st.fixed[:] = [int(v) for v in rng.integers(-(1 << 40), 1 << 40, n)]
    st.flags[:] = rng.integers(0, 16, n) * (rng.random(n) < 0.2)
    A, B = rng.integers(0, 256, n), rng.integers(0, 256, n)
    got = run_comb(step, {"fixed_in": st.fixed, "flags_in": st.flags, "a": A, "b": B},
                   ["fixed_out", "flags_out"])
    new = mac.kulisch_step(st, A, B, a, b, terms=64)
    fixed = np.where(got["fixed_out"] >= 1 << (w - 1), got["fixed_out"] - (1 << w),
                     got["fixed_out"])
    assert [int(x) for x in fixed] == [int(x) for x in new.fixed]
    assert np.array_equal(got["flags_out"], new.flags)
    _, lsb = mac.kulisch_width(a, b, 64)
    got = run_comb(read, {"fixed": new.fixed, "flags": new.flags}, ["acc"])["acc"]
    assert np.array_equal(got, mac.kulisch_read(new, "bf16", lsb))


@pytest.mark.parametrize("an,bn,accn,mode,stages,flush,sat", [
    ("e4m3", "e4m3", "fp32", "fused", 0, False, False),
    ("e5m2", "e4m3", "fp16", "two_roundings", 1, False, True),
    ("e5m2", "e5m2", "bf16", "fused", 2, True, False),
    ("e4m3", "e4m3", "fp32", "kulisch", 0, False, False),
    ("e5m2", "e5m2", "fp16", "kulisch", 3, False, True),
    ("e3m2", "e2m3", "bf16", "kulisch", 1, True, False),
])
def test_fp_mac_sequences(an, bn, accn, mode, stages, flush, sat):
    rng = np.random.default_rng(stages)
    a, b = formats.get(an), formats.get(bn)
    valid, clear, A, B = random_fp_sequences(a, b, 300, 1, rng, specials=0.03)
    dut = FpMac(a, b, accn, mode, flush, sat, terms=64, pipeline_stages=stages)
    assert dut.latency == 1 + stages
    want = mac.mac_stream(valid, clear, A, B, kind="fp", a_format=a, b_format=b, acc_format=accn,
                          mode=mode, flush_subnormals=flush, saturate=sat, terms=64)[:, 0]
    got = run_seq(dut, {"a": A[:, 0], "b": B[:, 0], "valid": valid[:, 0], "clear": clear[:, 0]},
                  ["acc", "acc_valid"], dut.latency)
    assert np.array_equal(got["acc"], want)
    assert np.array_equal(got["acc_valid"], valid[:, 0])


# every depth of the pipelined Kulisch datapath (1..11), over formats with subnormals, fnuz
# specials, flush and saturation, each bit-exact at latency 1 + pipeline_stages
KULISCH_DEPTH_CONFIGS = [
    ("e4m3", "e4m3", "fp32", False, False), ("e5m2", "e5m2", "fp16", False, True),
    ("e3m2", "e2m3", "bf16", True, False), ("e4m3fnuz", "e5m2", "fp16", False, False),
]


@pytest.mark.parametrize("stages", range(1, len(KULISCH_CUTS) + 1))
def test_kulisch_pipeline_depths(stages):
    an, bn, accn, flush, sat = KULISCH_DEPTH_CONFIGS[stages % len(KULISCH_DEPTH_CONFIGS)]
    rng = np.random.default_rng(100 + stages)
    a, b = formats.get(an), formats.get(bn)
    valid, clear, A, B = random_fp_sequences(a, b, 300, 1, rng, specials=0.03)
    dut = FpMac(a, b, accn, "kulisch", flush, sat, terms=64, pipeline_stages=stages)
    assert dut.latency == 1 + stages == dut.contract()["latency_cycles"]
    want = mac.mac_stream(valid, clear, A, B, kind="fp", a_format=a, b_format=b, acc_format=accn,
                          mode="kulisch", flush_subnormals=flush, saturate=sat, terms=64)[:, 0]
    got = run_seq(dut, {"a": A[:, 0], "b": B[:, 0], "valid": valid[:, 0], "clear": clear[:, 0]},
                  ["acc", "acc_valid"], dut.latency)
    assert np.array_equal(got["acc"], want)
    assert np.array_equal(got["acc_valid"], valid[:, 0])


def test_kulisch_pipelined_e4m3_exhaustive_products():
    """Every e4m3 x e4m3 code pair as a one-term sum through the deepest pipeline (the aligned
    term of kulisch_term_into against the model's product-code path), default 4096 terms."""
    A, B = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    A, B = A.ravel()[::7], B.ravel()[::7]             # a stride that still meets every a and b
    n = len(A)
    ones = np.ones(n, bool)
    dut = FpMac("e4m3", "e4m3", "fp32", "kulisch", pipeline_stages=len(KULISCH_CUTS))
    want = mac.mac_stream(ones[:, None], ones[:, None], A[:, None], B[:, None], kind="fp",
                          a_format="e4m3", b_format="e4m3", acc_format="fp32",
                          mode="kulisch")[:, 0]
    got = run_seq(dut, {"a": A, "b": B, "valid": ones, "clear": ones}, ["acc"], dut.latency)
    assert np.array_equal(got["acc"], want)


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^pipeline_stages must be an integer from 0 to 2, not 3$"):
        FpMac(pipeline_stages=3)
    FpMac(mode="kulisch", pipeline_stages=11)
    with pytest.raises(ValueError, match=r"^pipeline_stages must be an integer from 0 to 11, "
                                         r"not 12$"):
        FpMac(mode="kulisch", pipeline_stages=12)
    with pytest.raises(ValueError, match=r"^acc_format must be an IEEE-style float format "
                                         r"\(fp32, fp16, bf16, eXmY\), not 'e4m3'$"):
        FpMac(acc_format="e4m3")
    with pytest.raises(ValueError, match=r"^mode must be one of fused, two_roundings, kulisch, "
                                         r"not 'exact'$"):
        FpMac(mode="exact")
    with pytest.raises(ValueError, match=r"^terms must be an integer from 1 to 4294967296, "
                                         r"not -1$"):
        FpMac(mode="kulisch", terms=-1)
    with pytest.raises(ValueError, match=r"^FpMacStep does mode fused or two_roundings"):
        FpMacStep(mode="kulisch")


def test_contract_and_ports():
    from lowbit.hdl.manifest import ports
    dut = FpMac("e4m3", "e5m2", "bf16", "kulisch", terms=256, pipeline_stages=1)
    c = dut.contract()
    assert c["kulisch"]["width"] == mac.kulisch_width("e4m3", "e5m2", 256)[0]
    assert c["latency_cycles"] == 2
    names = {p["name"]: p for p in ports(dut)}
    assert set(names) == {"clk", "rst", "a", "b", "valid", "clear", "acc", "acc_valid"}
    assert names["acc"]["width"] == 16 and all(p["meaning"] for p in names.values())
