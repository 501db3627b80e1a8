"""A bank of units driven by shared inputs, for co-simulation (one Verilog build, many configs).

``Bank({"name": component, ...})`` exposes the union of the units' input ports (each as wide as
its widest use; narrower unit ports take the low bits) and every unit output as
``<name>__<port>``, delayed so that all outputs appear at the bank's ``latency`` (the largest
unit latency).  Used by the co-simulation tests and benchmarks to check several configurations
of :mod:`lowbit.hdl.fp_mul` / :mod:`lowbit.hdl.fp_mac` / :mod:`lowbit.hdl.int_mac` against the
golden model in one simulator build: the same codes are simply read in each unit's formats.
"""

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Bank"]


class Bank(wiring.Component):
    """See the module docstring.  ``units`` maps a Verilog-safe name to a component."""

    def __init__(self, units):
        self._units = dict(units)
        ins, outs = {}, {}
        for name, unit in self._units.items():
            for path, member in unit.signature.members.flatten():
                port = "__".join(map(str, path))
                width = Shape.cast(member.shape).width
                if member.flow == wiring.In:
                    ins[port] = max(ins.get(port, 0), width)
                else:
                    outs[f"{name}__{port}"] = width
        self._latency = max(getattr(u, "latency", 0) for u in self._units.values())
        super().__init__({**{k: In(w) for k, w in ins.items()},
                          **{k: Out(w) for k, w in outs.items()}})

    @property
    def latency(self):
        return self._latency

    def elaborate(self, platform):
        m = Module()
        for name, unit in self._units.items():
            m.submodules[name] = unit
            extra = self._latency - getattr(unit, "latency", 0)
            for path, member in unit.signature.members.flatten():
                port = "__".join(map(str, path))
                sig = getattr(unit, port)
                if member.flow == wiring.In:
                    m.d.comb += sig.eq(getattr(self, port)[:len(sig)])
                    continue
                src = sig
                for k in range(extra):
                    r = Signal(len(sig), name=f"{name}_{port}_d{k}")
                    m.d.sync += r.eq(src)
                    src = r
                m.d.comb += getattr(self, f"{name}__{port}").eq(src)
        return m
