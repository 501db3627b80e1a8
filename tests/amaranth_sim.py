"""Amaranth-simulator drivers shared by the hdl unit tests (not a test module)."""

import numpy as np
from amaranth.sim import Simulator


def run_comb(dut, inputs, outputs):
    n = len(next(iter(inputs.values())))
    res = {o: [] for o in outputs}

    async def bench(ctx):
        for i in range(n):
            for k, v in inputs.items():
                ctx.set(getattr(dut, k), int(v[i]))
            await ctx.delay(1e-9)
            for o in outputs:
                res[o].append(ctx.get(getattr(dut, o)))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return {k: np.array(v) for k, v in res.items()}


def run_seq(dut, inputs, outputs, latency):
    """Drive one input set per cycle; return the outputs seen ``latency`` cycles later."""
    n = len(next(iter(inputs.values())))
    res = {o: [] for o in outputs}

    async def bench(ctx):
        for i in range(n + latency):
            for k, v in inputs.items():
                ctx.set(getattr(dut, k), int(v[i]) if i < n else 0)
            await ctx.tick()
            if i + 1 >= latency:
                for o in outputs:
                    res[o].append(ctx.get(getattr(dut, o)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return {k: np.array(v[:n]) for k, v in res.items()}
