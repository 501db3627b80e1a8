# amaranth: UnusedElaboratable=no
"""IntMac, IntMacStep and the LUT partial-product multiplier against models.mac in Amaranth's
simulator (bit-exact, at the documented latency)."""

import numpy as np
import pytest

from amaranth_sim import run_comb, run_seq
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.hdl.formats import layout
from lowbit.hdl.int_mac import IntMac, IntMacStep, lut_multiply_into
from lowbit.models import formats, mac
from lowbit.sim.bench_mac import random_int_sequences

@pytest.mark.parametrize("an,bn", [("int8", "int8"), ("uint8", "int8"), ("int8", "uint8"),
                                   ("uint8", "uint8"), ("int2", "int2"), ("uint3", "int16"),
                                   ("int16", "int16"), ("int5", "uint2")])
def test_lut_multiply(an, bn):
    a, b = formats.get(an), formats.get(bn)
    rng = np.random.default_rng(7)
    if a.bits + b.bits <= 12:                         # exhaustive up to 4096 pairs
        A, B = np.meshgrid(np.arange(1 << a.bits), np.arange(1 << b.bits), indexing="ij")
        A, B = A.ravel(), B.ravel()
    else:
        A, B = rng.integers(0, 1 << a.bits, 800), rng.integers(0, 1 << b.bits, 800)
        A[:4], B[:4] = [0, 1 << (a.bits - 1), (1 << a.bits) - 1, 0], \
            [1 << (b.bits - 1), 1 << (b.bits - 1), (1 << b.bits) - 1, 0]
    pbits = mac.int_product_bits(a, b)

    class Mul(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(layout(a)), "b": In(layout(b)), "p": Out(pbits)})

        def elaborate(self, platform):
            m = Module()
            p, regs = lut_multiply_into(m, self.a, self.b, pbits)
            assert regs == 0
            m.d.comb += self.p.eq(p)
            return m
    got = run_comb(Mul(), {"a": a.decode(A), "b": b.decode(B)}, ["p"])["p"]
    got = np.where(got >= 1 << (pbits - 1), got - (1 << pbits), got)
    assert np.array_equal(got, mac.int_mul(A, B, a, b))


@pytest.mark.parametrize("an,bn,acc_bits,overflow,stages", [
    ("int8", "int8", 32, "wrap", 0), ("uint8", "uint8", 18, "wrap", 1),
    ("int8", "uint8", 20, "saturate", 2), ("uint4", "int16", 24, "saturate", 0),
    ("int8", "int8", 32, "wrap", 3), ("uint8", "int8", 18, "saturate", 3),
    ("int2", "uint3", 8, "wrap", 3),
])
def test_int_mac_sequences(an, bn, acc_bits, overflow, stages):
    rng = np.random.default_rng(acc_bits)
    a, b = formats.get(an), formats.get(bn)
    valid, clear, A, B = random_int_sequences(a, b, 400, 1, rng)
    dut = IntMac(a, b, acc_bits, overflow, stages)
    assert dut.latency == 1 + stages == dut.contract()["latency_cycles"]
    want = mac.mac_stream(valid, clear, A, B, kind="int", a_format=a, b_format=b,
                          acc_bits=acc_bits, overflow=overflow)[:, 0]
    got = run_seq(dut, {"a": a.decode(A[:, 0]), "b": b.decode(B[:, 0]), "valid": valid[:, 0],
                        "clear": clear[:, 0]}, ["acc", "acc_valid"], dut.latency)
    assert np.array_equal(got["acc"], want)
    assert np.array_equal(got["acc_valid"], valid[:, 0])


def test_int_mac_step():
    rng = np.random.default_rng(1)
    a, b = formats.int8, formats.int8
    A, B = rng.integers(0, 256, 500), rng.integers(0, 256, 500)
    C = rng.integers(-(1 << 15), 1 << 15, 500)
    for overflow in ("wrap", "saturate"):
        got = run_comb(IntMacStep(a, b, 16, overflow),
                       {"acc_in": C, "a": a.decode(A), "b": b.decode(B)}, ["acc_out"])["acc_out"]
        assert np.array_equal(got, mac.int_mac_step(C, A, B, a, b, 16, overflow))


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^pipeline_stages must be an integer from 0 to 3, not 4$"):
        IntMac(pipeline_stages=4)
    with pytest.raises(ValueError, match=r"^pipeline_stages must be an integer from 0 to 3, "
                                         r"not -1$"):
        IntMac(pipeline_stages=-1)
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer from 2 to 64, not 1$"):
        IntMac(acc_bits=1)
    with pytest.raises(ValueError, match=r"^b_format must be an integer format int2\.\.int16 or "
                                         r"uint2\.\.uint16, not 'e4m3'$"):
        IntMac(b_format="e4m3")
    with pytest.raises(ValueError, match=r"^overflow must be one of wrap, saturate, not 'clamp'$"):
        IntMac(overflow="clamp")


def test_int_mac_ports():
    from lowbit.hdl.manifest import ports
    dut = IntMac("int8", "uint8", 24)
    names = {p["name"]: p for p in ports(dut)}
    assert names["acc"]["signed"] and names["acc"]["width"] == 24
