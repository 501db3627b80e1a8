"""Generic cocotb stream test bench used by :func:`lowbit.sim.cosim.run_stream`.

Runs inside the simulator process. Reads ``meta.json`` and ``in.npz`` from the folder named by
``$LOWBIT_COSIM_RUN``, drives the inputs one value per cycle, samples the outputs once per cycle
and writes ``out.npz`` there. Input values are stored as ``uint64[cycles]`` for ports up to 64 bits
and ``uint8[cycles, nbytes]`` (little-endian) for wider ports; outputs are stored the same way.

Timing (see :mod:`lowbit.sim.cosim`): with a clock, ``rst`` high for ``reset_cycles`` rising
edges, then per cycle: falling edge -> write inputs -> ReadOnly -> sample. Without a clock: write
inputs -> 1 ns -> sample.
"""

import json
import logging
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, Timer

log = logging.getLogger("lowbit.sim.tb_stream")

CLOCK_PERIOD_NS = 10


def _per_cycle(stored):
    """Stored input column -> list of Python ints, one per cycle."""
    if stored.ndim == 1:
        return stored.astype(np.uint64).tolist()
    return [int.from_bytes(row.tobytes(), "little") for row in stored]


class _Recorder:
    """Samples one output port per cycle."""

    def __init__(self, handle, name, width):
        self.name, self.width = name, width
        self.values = []
        raw = getattr(handle, "_handle", None)
        # Fast path: the binary string straight from the GPI handle, skipping LogicArray.
        self._binstr = getattr(raw, "get_signal_val_binstr", None)
        self._handle = handle

    def sample(self, cycle):
        if self._binstr is not None:
            text = self._binstr()
            try:
                self.values.append(int(text, 2))
                return
            except ValueError:
                raise AssertionError(f"output {self.name} is {text} (X/Z) at cycle {cycle}") from None
        value = self._handle.value
        if not value.is_resolvable:
            raise AssertionError(f"output {self.name} is {value} (X/Z) at cycle {cycle}")
        self.values.append(int(value))

    def stored(self):
        if self.width <= 64:
            return np.array(self.values, dtype=np.uint64)
        nbytes = (self.width + 7) // 8
        buf = b"".join(v.to_bytes(nbytes, "little") for v in self.values)
        return np.frombuffer(buf, np.uint8).reshape(len(self.values), nbytes)


@cocotb.test()
async def stream(dut):
    """Drive the per-cycle inputs and record the outputs (see the module docstring)."""
    run = Path(os.environ["LOWBIT_COSIM_RUN"])
    meta = json.loads((run / "meta.json").read_text())
    cycles = meta["cycles"]
    with np.load(run / "in.npz") as data:
        drivers = [(getattr(dut, name), _per_cycle(data[name])) for name in meta["inputs"]]
    for name, vals in ((n, v) for n, v in zip(meta["inputs"], (d[1] for d in drivers))):
        if len(vals) != cycles:
            raise AssertionError(f"input {name}: {len(vals)} values for {cycles} cycles")
    idle = [getattr(dut, name) for name in meta["idle_inputs"]]
    recorders = [_Recorder(getattr(dut, name), name, width)
                 for name, width in meta["outputs"].items()]

    for handle in idle:
        handle.value = 0
    for handle, _ in drivers:
        handle.value = 0

    if meta["clocked"]:
        clk = dut.clk
        rst = dut.rst if meta["has_rst"] else None
        Clock(clk, CLOCK_PERIOD_NS, unit="ns").start(start_high=False)
        if rst is not None:
            rst.value = 1
        rising = RisingEdge(clk)
        for _ in range(meta["reset_cycles"]):
            await rising
        falling, readonly = FallingEdge(clk), ReadOnly()
        for i in range(cycles):
            await falling
            if i == 0 and rst is not None:
                rst.value = 0
            for handle, vals in drivers:
                handle.value = vals[i]
            await readonly
            for rec in recorders:
                rec.sample(i)
    else:
        settle = Timer(1, unit="ns")
        for i in range(cycles):
            for handle, vals in drivers:
                handle.value = vals[i]
            await settle
            for rec in recorders:
                rec.sample(i)

    tmp = run / "out.tmp.npz"
    np.savez(tmp, **{rec.name: rec.stored() for rec in recorders})
    os.replace(tmp, run / "out.npz")
