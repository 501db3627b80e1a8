# amaranth: UnusedElaboratable=no
"""Co-simulation (cocotb, generated Verilog) of the multipliers and MACs against models.mac.

Two simulator builds cover everything (a :class:`~lowbit.sim.bank.Bank` feeds the same codes
to several configurations, lane-wrapped by :func:`lowbit.sim.cosim.run_lanes`):

* multipliers, exhaustive: every (a, b) code pair for e4m3 x e4m3, e5m2 x e5m2, e4m3 x e5m2,
  e5m2 x e4m3, e2m1 x e2m1, e3m2 x e2m3 (FpMultiplier) and INT8 x INT8 signed, unsigned and
  mixed (IntMac with ``clear`` on every term, so ``acc`` is the product; with the DSP-style
  ``a*b`` and with the LUT multiplier of ``pipeline_stages=3``);
* MACs: >= 100,000 random accumulation sequences per configuration plus the directed sequences
  of issue 3 (cancellation to exact zero and its sign, overflow to Inf / saturation, NaN and Inf,
  runs of subnormals, alternating huge and tiny terms), bit-exact at the documented latency.
"""

import os

import numpy as np
import pytest

from lowbit.hdl.fp_mac import FpMac
from lowbit.hdl.fp_mul import FpMultiplier
from lowbit.hdl.int_mac import IntMac
from lowbit.sim.bank import Bank
from lowbit.models import formats, mac

pytestmark = pytest.mark.cosim

cosim = pytest.importorskip("lowbit.sim.cosim")



MUL_PAIRS = [("e4m3", "e4m3"), ("e5m2", "e5m2"), ("e4m3", "e5m2"), ("e5m2", "e4m3"),
             ("e2m1", "e2m1"), ("e3m2", "e2m3")]
INT_PAIRS = [("int8", "int8"), ("uint8", "uint8"), ("int8", "uint8"), ("uint8", "int8")]


def mul_bank():
    units = {f"m_{a}_{b}": FpMultiplier(a, b) for a, b in MUL_PAIRS}
    units.update({f"i_{a}_{b}": IntMac(a, b, 32) for a, b in INT_PAIRS})
    # the LUT partial-product multiplier of IntMac(pipeline_stages=3), exhaustively
    units.update({f"l_{a}_{b}": IntMac(a, b, 32, pipeline_stages=3) for a, b in INT_PAIRS})
    return Bank(units)


def test_multipliers_exhaustive(simulator):
    sim = simulator
    A, B = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    A, B = A.ravel(), B.ravel()
    ones = np.ones_like(A)
    outs = [f"m_{a}_{b}__p" for a, b in MUL_PAIRS] + [f"{k}_{a}_{b}__acc" for a, b in INT_PAIRS
                                                     for k in "il"]
    got = cosim.run_lanes(mul_bank, {"a": A, "b": B, "valid": ones, "clear": ones}, outs,
                          lanes=32, sim=sim)
    for a, b in MUL_PAIRS:
        fa, fb = formats.get(a), formats.get(b)
        # the bank reads the low bits: every pair of the narrower formats is covered too
        x, y = A & ((1 << fa.bits) - 1), B & ((1 << fb.bits) - 1)
        want = mac.fp_mul(x, y, fa, fb)
        assert np.array_equal(got[f"m_{a}_{b}__p"], want), (a, b)
    for a, b in INT_PAIRS:
        want = mac.int_mul(A, B, a, b)
        for k in "il":
            assert np.array_equal(cosim.to_signed(got[f"{k}_{a}_{b}__acc"], 32), want), (k, a, b)


# MAC configurations checked in one build (all operands are 8-bit codes)
MAC_CONFIGS = {
    "f_e4e4_fp32_fused": dict(a_format="e4m3", b_format="e4m3", acc_format="fp32", mode="fused"),
    "f_e5e5_fp16_two_sat": dict(a_format="e5m2", b_format="e5m2", acc_format="fp16",
                                mode="two_roundings", saturate=True, pipeline_stages=1),
    "f_e4e5_bf16_kulisch": dict(a_format="e4m3", b_format="e5m2", acc_format="bf16",
                                mode="kulisch", terms=16),
    "f_e5e4_fp32_kulisch_flush": dict(a_format="e5m2", b_format="e4m3", acc_format="fp32",
                                      mode="kulisch", terms=16, flush_subnormals=True,
                                      pipeline_stages=3),
    "f_e5e5_bf16_fused_flush": dict(a_format="e5m2", b_format="e5m2", acc_format="bf16",
                                    mode="fused", flush_subnormals=True, pipeline_stages=2),
    # the pipelined Kulisch datapath: the deepest (ECP5 150 MHz) configuration with the
    # default 4096-term register, and an intermediate depth (the Amaranth-simulator tests
    # cover every depth)
    "f_e4e4_fp32_kulisch_p11": dict(a_format="e4m3", b_format="e4m3", acc_format="fp32",
                                    mode="kulisch", pipeline_stages=11),
    "f_e5e5_fp16_kulisch_sat_p5": dict(a_format="e5m2", b_format="e5m2", acc_format="fp16",
                                       mode="kulisch", terms=16, saturate=True,
                                       pipeline_stages=5),
}
INT_MAC_CONFIGS = {
    "i_u8s8_18_sat": dict(a_format="uint8", b_format="int8", acc_bits=18, overflow="saturate",
                          pipeline_stages=2),
    # LUT multiplier (pipeline_stages=3)
    "i_s8s8_32_p3": dict(a_format="int8", b_format="int8", acc_bits=32, pipeline_stages=3),
}


def mac_bank():
    units = {k: FpMac(**v) for k, v in MAC_CONFIGS.items()}
    units.update({k: IntMac(**v) for k, v in INT_MAC_CONFIGS.items()})
    return Bank(units)


def _special(codes):
    """Codes that are NaN/Inf in e4m3 or e5m2."""
    return ~np.isfinite(formats.e4m3.decode(codes)) | ~np.isfinite(formats.e5m2.decode(codes))


def directed_sequences():
    """Issue 3's directed sequences as (a, b) code lists (each one a new sum)."""
    seqs = [
        [(0x48, 0x38), (0xC8, 0x38)],                          # x - x = +0
        [(0x80, 0x38), (0x80, 0x38), (0x80, 0x38)],            # -0 + -0 + -0 = -0
        [(0x80, 0x38), (0x00, 0x38)],                          # -0 + +0 = +0
        [(0x38, 0x38), (0x80, 0x38)],                          # 1 + -0
        [(0x01, 0x81), (0x01, 0x01)],                          # -tiny + tiny = +0
        [(0x7B, 0x7B)] * 6,                                    # overflow (fp16) / saturation
        [(0xFB, 0x7B)] * 6,                                    # negative overflow
        [(0x7C, 0x38), (0xFC, 0x38)],                          # Inf - Inf = NaN (e5m2)
        [(0x7C, 0x00), (0x38, 0x38)],                          # Inf * 0 = NaN
        [(0x7F, 0x38), (0x38, 0x38)],                          # NaN propagates
        [(0x38, 0x38), (0x7C, 0x38), (0x38, 0x38)],            # Inf absorbs
        [(k, j) for k in range(1, 8) for j in (1, 2, 3)][:16],  # runs of subnormals
        [(0x81, 0x01)] * 16,                                   # negative subnormal run
        [(0x7B, 0x7B), (0x01, 0x01), (0xFB, 0x7B), (0x01, 0x01)],   # huge, tiny, -huge, tiny
        [(0x01, 0x01), (0x7B, 0x7B), (0x01, 0x01), (0xFB, 0x7B)],
        [(0x77, 0x70), (0x08, 0x08), (0xF7, 0x70)],            # cancellation after a tiny term
    ]
    return seqs


def make_streams(rng, cycles, lanes, special_rate=0.005):
    valid = rng.random((cycles, lanes)) < 0.92
    clear = np.zeros((cycles, lanes), bool)
    a = rng.integers(0, 256, (cycles, lanes))
    b = rng.integers(0, 256, (cycles, lanes))
    # biased exponents: half of the terms drawn near 1.0 so that sums cancel and round
    near = rng.random((cycles, lanes)) < 0.5
    a[near] = (a[near] & 0x87) | 0x30
    b[near] = (b[near] & 0x87) | 0x38
    for x in (a, b):
        bad = _special(x) & (rng.random(x.shape) >= special_rate)
        x[bad] = x[bad] & 0x0F                        # finite, small
    lengths = rng.integers(1, 7, (cycles, lanes))      # sequences of 1..6 terms
    for k in range(lanes):
        t = 0
        while t < cycles:
            clear[t, k] = True
            t += int(lengths[t, k])
    # a rare clear without a valid term
    lone = (rng.random((cycles, lanes)) < 0.003)
    clear |= lone
    valid &= ~lone
    # directed sequences at the start of the first lanes
    t0 = 0
    for i, seq in enumerate(directed_sequences()):
        lane = i % lanes
        t = t0 + (i // lanes) * 20
        for j, (x, y) in enumerate(seq):
            a[t + j, lane], b[t + j, lane] = x, y
            valid[t + j, lane] = True
            clear[t + j, lane] = j == 0
        clear[t + len(seq), lane] = True
        valid[t + len(seq), lane] = True
    return valid, clear, a, b


def test_macs_random_and_directed(simulator):
    sim = simulator
    rng = np.random.default_rng(2026)
    lanes = int(os.environ.get("LOWBIT_COSIM_MAC_LANES", 32))
    sequences = int(os.environ.get("LOWBIT_COSIM_MAC_SEQUENCES", 100_000))
    cycles = int(sequences * 3.9 / lanes) + 40      # 1..6 terms (mean 3.5) and ~8 % idle cycles
    valid, clear, a, b = make_streams(rng, cycles, lanes)
    n_seq = int((clear & valid).sum())
    assert n_seq >= sequences
    outs = [f"{k}__acc" for k in MAC_CONFIGS] + [f"{k}__acc" for k in INT_MAC_CONFIGS] + \
        [f"{k}__acc_valid" for k in MAC_CONFIGS]
    got = cosim.run_lanes(mac_bank, {"a": a, "b": b, "valid": valid.astype(np.uint8),
                                     "clear": clear.astype(np.uint8)}, outs, lanes=lanes, sim=sim)
    for k, cfg in MAC_CONFIGS.items():
        params = {p: v for p, v in cfg.items() if p != "pipeline_stages"}
        want = mac.mac_stream(valid, clear, a, b, kind="fp", **params)
        g = np.asarray(got[f"{k}__acc"]).astype(np.int64)
        bad = np.argwhere(g != want)
        assert len(bad) == 0, (k, len(bad), bad[:3].tolist())
        assert np.array_equal(np.asarray(got[f"{k}__acc_valid"]), valid), k
    for k, cfg in INT_MAC_CONFIGS.items():
        params = {p: v for p, v in cfg.items() if p != "pipeline_stages"}
        want = mac.mac_stream(valid, clear, a, b, kind="int", **params)
        g = cosim.to_signed(np.asarray(got[f"{k}__acc"]), cfg["acc_bits"])
        assert np.array_equal(g, want), k
