"""The LFSR random source of the stochastic-rounding units (Amaranth 0.5).

Hardware twin of :mod:`lowbit.models.lfsr`: a ``width``-bit Fibonacci register with the
XAPP052 maximal-length taps (:data:`lowbit.models.lfsr.LFSR_TAPS`), XOR feedback, period
``2^width - 1``.  Each advance performs ``sr_bits`` shifts at once (the unrolled XOR network
of a leap-forward LFSR) and the draw ``r`` is the low ``sr_bits`` bits of the new state, so
the unit sees exactly :func:`lowbit.models.lfsr.lfsr_stream` ``(width, seed, sr_bits, n)``,
one value per advance.  The register resets (``rst``) to ``seed``; a ``reseed`` pulse loads
the ``seed_in`` port (0, the lock-up state, loads the ``seed`` parameter instead).
"""

import dataclasses

import numpy as np
from amaranth.hdl import Cat, Mux, Signal
from amaranth.lib.wiring import In

from lowbit.models import lfsr as model
from lowbit.models.checks import check_choice, check_int

from .unit import Param

__all__ = ["RANDOM_SOURCES", "SrConfig", "lfsr_into", "check_random_source", "random_ports",
           "sr_contract", "sr_params", "lfsr_draws", "random_source_into"]

#: Where the random bits of a stochastic-rounding unit come from.
RANDOM_SOURCES = ("lfsr", "port")


def lfsr_into(m, width, seed, sr_bits, advance, seed_in=None, reseed=None, name="lfsr"):
    """Add the register to ``m``; returns the current draw ``r`` (``sr_bits`` bits, combinational
    from the register: the value the next ``advance`` consumes).

    The register holds the state *after* the draw that ``r`` shows: at reset it is the state
    after ``sr_bits`` shifts of ``seed``, and each cycle with ``advance`` moves it on by one
    draw.  ``seed_in``/``reseed`` (optional Values) reload it (the state after ``sr_bits``
    shifts of ``seed_in``; 0 loads ``seed``).
    """
    width = model.check_lfsr_width(width)
    seed = model.check_seed(seed, width)
    sr_bits = check_int("sr_bits", sr_bits, 1, width)
    taps = [k - 1 for k in model.LFSR_TAPS[width]]

    def leap(v):                       # sr_bits shifts as one XOR network
        bits = [v[i] for i in range(width)]
        for _ in range(sr_bits):
            f = bits[taps[0]]
            for t in taps[1:]:
                f = f ^ bits[t]
            bits = [f] + bits[:-1]
        return Cat(*bits)

    state = Signal(width, init=model.lfsr_shift(seed, width, sr_bits), name=f"{name}_state")
    with m.If(advance):
        m.d.sync += state.eq(leap(state))
    if reseed is not None:
        loaded = Signal(width, name=f"{name}_seed")
        m.d.comb += loaded.eq(Mux(seed_in == 0, seed, seed_in))
        with m.If(reseed):
            m.d.sync += state.eq(leap(loaded))
    r = Signal(sr_bits, name=f"{name}_r")
    m.d.comb += r.eq(state[:sr_bits])
    return r


@dataclasses.dataclass(frozen=True)
class SrConfig:
    """The checked stochastic-rounding parameters of a unit (``enabled`` False: RNE, the other
    fields are the defaults and unused)."""
    enabled: bool
    sr_bits: int
    random_source: str
    lfsr_width: int
    seed: int


def check_random_source(enabled, sr_bits, max_bits, random_source, lfsr_width, seed):
    """Validate the stochastic-rounding parameters of a unit; returns an :class:`SrConfig`.

    ``sr_bits`` must lie in 1..``max_bits`` (what the datapath can use) and, with the LFSR
    source, in 1..``lfsr_width`` (a draw takes that many fresh bits).
    """
    check_choice("random_source", random_source, RANDOM_SOURCES)
    lfsr_width = model.check_lfsr_width(lfsr_width)
    seed = model.check_seed(seed, lfsr_width)
    sr_bits = check_int("sr_bits", sr_bits, 1, max_bits)
    if enabled and random_source == "lfsr" and sr_bits > lfsr_width:
        raise ValueError(f"sr_bits must be an integer from 1 to {lfsr_width} (lfsr_width) with "
                         f"random_source='lfsr', not {sr_bits}")
    return SrConfig(bool(enabled), sr_bits, random_source, lfsr_width, seed)


def random_ports(sr):
    """The extra ports of a unit with stochastic rounding (none without)."""
    if not sr.enabled:
        return {}
    if sr.random_source == "port":
        return {"rbits": In(sr.sr_bits)}
    return {"seed_in": In(sr.lfsr_width), "reseed": In(1)}


def sr_contract(sr):
    """``{"ports": port docs, "contract": manifest entry}`` of the random source."""
    if not sr.enabled:
        return {"ports": {}, "contract": {}}
    if sr.random_source == "port":
        return {"ports": {"rbits": f"{sr.sr_bits} random bits for the rounding of this input"},
                "contract": {"sr_bits": sr.sr_bits, "source": "port rbits, one draw per valid "
                             "input, used as random_bits of the golden model"}}
    return {"ports": {"seed_in": f"LFSR seed ({sr.lfsr_width} bits; 0 loads {sr.seed})",
                      "reseed": "load seed_in into the LFSR this cycle"},
            "contract": {
                "sr_bits": sr.sr_bits, "source": "internal LFSR",
                "lfsr": {"width": sr.lfsr_width, "taps": list(model.LFSR_TAPS[sr.lfsr_width]),
                         "taps_source": "Xilinx XAPP052 Table 3 (XOR feedback)",
                         "seed_after_reset": sr.seed, "period_shifts": (1 << sr.lfsr_width) - 1,
                         "draw": f"{sr.sr_bits} shifts per valid input, r = low {sr.sr_bits} "
                                 "bits of the new state"},
                "random_bits": f"lowbit.models.lfsr.lfsr_stream({sr.lfsr_width}, "
                               f"{sr.seed}, {sr.sr_bits}, n): draw i for the i-th valid input "
                               "since reset (or reseed)"}}


def sr_params(when):
    """The catalogue :class:`~lowbit.hdl.unit.Param` entries of the random source."""
    return (
        Param("sr_bits", "--sr-bits", "int", 8, "stochastic rounding: random bits N",
              when=when),
        Param("random_source", "--random-source", "choice", "lfsr",
              "stochastic rounding: internal LFSR or input port rbits",
              choices=RANDOM_SOURCES, when=when),
        Param("lfsr_width", "--lfsr-width", "int", 16, "LFSR width, 3..32 (XAPP052 taps)",
              when=when),
        Param("seed", "--lfsr-seed", "int", 0xACE1, "LFSR seed after reset, 1..2**width-1",
              when=when),
    )


def lfsr_draws(sr, valid):
    """Golden random bits of a unit with the LFSR source for ``valid`` (cycles, lanes): entry
    ``t`` is the draw the ``t``-th cycle uses (each lane draws on its own valid cycles)."""
    valid = np.asarray(valid, dtype=bool)
    n = int(valid.sum(axis=0).max()) if valid.size else 0
    draws = model.lfsr_stream(sr.lfsr_width, sr.seed, sr.sr_bits, n + 1)
    index = np.cumsum(valid, axis=0) - valid
    return draws[index]


def random_source_into(m, sr, advance, component):
    """The random bits of a unit with stochastic rounding ``sr`` (an :class:`SrConfig`): the
    ``rbits`` port of ``component``, or an LFSR advanced by ``advance`` and reloaded by its
    ``seed_in``/``reseed`` ports."""
    if sr.random_source == "port":
        return component.rbits
    return lfsr_into(m, sr.lfsr_width, sr.seed, sr.sr_bits, advance, component.seed_in,
                     component.reseed)
