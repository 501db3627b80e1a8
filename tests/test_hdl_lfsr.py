# amaranth: UnusedElaboratable=no
"""The stochastic-rounding FP MAC's parameters: one clear error per bad value, and the LFSR
register's stream pinned against the golden model in Amaranth's simulator."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from lowbit.hdl import lfsr as hlfsr
from lowbit.hdl.fp_mac import FpMac
from lowbit.models import lfsr


@pytest.mark.parametrize("kw, msg", [
    (dict(lfsr_width=2), r"^lfsr_width must be an integer from 3 to 32, not 2$"),
    (dict(lfsr_width=40), r"^lfsr_width must be an integer from 3 to 32, not 40$"),
    (dict(sr_bits=29), r"^sr_bits must be an integer from 1 to 28, not 29$"),
    (dict(sr_bits=12, lfsr_width=8, seed=1),
     r"^sr_bits must be an integer from 1 to 8 \(lfsr_width\) with random_source='lfsr', not 12$"),
    (dict(seed=0), r"^seed must be an integer from 1 to 65535, not 0$"),
    (dict(random_source="trng"), r"^random_source must be one of lfsr, port, not 'trng'$"),
    (dict(mode="kulisch"), r"^rounding='stochastic' is for modes 'fused' and 'two_roundings'"),
])
def test_bad_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        FpMac(rounding="stochastic", **kw)


def test_lfsr_register_stream_is_pinned():
    """Same seed -> same bits: the register's draws equal lfsr_stream(16, 0xACE1, 8, n)."""
    m = Module()
    adv = Signal()
    r = hlfsr.lfsr_into(m, 16, 0xACE1, 8, adv)
    got = []

    async def bench(ctx):
        for i in range(12):
            ctx.set(adv, i % 3 != 2)                 # idle cycles do not advance
            if i % 3 != 2:
                got.append(ctx.get(r))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == list(lfsr.lfsr_stream(16, 0xACE1, 8, 8))
    assert got == [138, 134, 161, 164, 165, 145, 223, 192]
