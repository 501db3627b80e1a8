# amaranth: UnusedElaboratable=no
"""hdl.formats.unpack against the golden decode, exhaustively, in Amaranth's simulator."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from lowbit.hdl.formats import layout, unpack
from lowbit.models import formats


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e4m3fnuz", "e5m2fnuz", "e2m3", "e3m2", "e2m1",
                                  "e8m0"])
def test_unpack_matches_decode(name):
    fmt = formats.get(name)
    m = Module()
    code = Signal(fmt.bits)
    u = unpack(m, fmt, code)
    codes = fmt.all_codes()
    ref = fmt.decode(codes)
    got = []

    async def bench(ctx):
        for c in codes.tolist():
            ctx.set(code, c)
            await ctx.delay(1e-9)
            got.append((ctx.get(u.sign), ctx.get(u.sig), ctx.get(u.exp), ctx.get(u.is_zero),
                        ctx.get(u.is_sub), ctx.get(u.is_inf), ctx.get(u.is_nan)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    sign, sig, exp, zero, sub, inf, nan = (np.array(v) for v in zip(*got))
    assert np.array_equal(nan == 1, np.isnan(ref))
    assert np.array_equal(inf == 1, np.isinf(ref))
    fin = ~np.isnan(ref) & ~np.isinf(ref)
    val = np.where(sign == 1, -1.0, 1.0) * np.ldexp(sig.astype(float), exp - fmt.man_bits)
    assert np.array_equal(val[fin], ref[fin])
    assert np.array_equal(np.signbit(val[fin]), np.signbit(ref[fin]))
    assert np.array_equal(zero[fin] == 1, ref[fin] == 0)
    assert np.array_equal(sub[fin] == 1, (ref[fin] != 0) & (np.abs(ref[fin]) < fmt.min_normal))


def test_layout_widths():
    assert layout(formats.e4m3).size == 8
    assert layout(formats.e8m0).size == 8
    assert layout(formats.e2m1).size == 4
    assert layout(formats.int8).width == 8 and layout(formats.int8).signed
