"""Co-simulation benches of the training accumulators: ``chunked-mac`` and ``kahan-mac``.

Golden twins (Glasgow's ``ref_x`` / ``rtl_x``, same arguments, same return type):
``ref_chunked_mac(unit, valid, clear, last, a, b)`` runs
:func:`lowbit.models.training.chunked_stream` with the unit's parameters,
``rtl_chunked_mac(unit, valid, clear, last, a, b, sim)`` the unit's generated Verilog under
cocotb (:func:`lowbit.sim.cosim.run_lanes`, one lane per stimulus column); likewise
``ref_kahan_mac`` / ``rtl_kahan_mac`` with :func:`lowbit.models.training.kahan_stream`
(no ``last``).  Both return ``{output port: array (cycles, lanes)}``.

Stimulus (:func:`random_accum_sequences`): per-lane sums of random length 1..``max_len``
(``clear`` on the first term; ~10 % idle cycles, so ``clear`` sometimes falls on an idle
cycle), half the lanes with uniformly random codes (NaN/Inf replaced by zero except in a
fraction ``specials`` of the terms: overflow, cancellation, specials), the other half with
operands rounded from N(mu, 1) draws at a random per-sum scale (long sums of like-signed
products, the swamping case chunking and compensation address).  ``chunked-mac`` also gets
``last`` on the final cycle of most sums and on ~2 % of the other cycles.
"""

import numpy as np

from lowbit.hdl import catalog
from lowbit.models import training as model

from . import cosim
from .bench_mac import random_mac_control, rtl_result

__all__ = ["random_accum_sequences", "ref_chunked_mac", "rtl_chunked_mac", "cosim_chunked_mac",
           "ref_kahan_mac", "rtl_kahan_mac", "cosim_kahan_mac"]


def random_accum_sequences(a_fmt, b_fmt, cycles, lanes, rng, max_len=300, specials=0.02):
    """Per-lane random streams ``(valid, clear, last, a, b)``, shape ``(cycles, lanes)`` (see
    the module docstring)."""
    valid, clear = random_mac_control(cycles, lanes, rng, max_len)
    a = rng.integers(0, 1 << a_fmt.bits, (cycles, lanes))
    b = rng.integers(0, 1 << b_fmt.bits, (cycles, lanes))
    for fmt, x in ((a_fmt, a), (b_fmt, b)):
        bad = ~np.isfinite(fmt.decode(x)) & (rng.random(x.shape) >= specials)
        x[bad] = 0
    # odd lanes: values like weights x activations, scaled per sum
    sums = np.cumsum(clear, axis=0)
    scale = 2.0 ** rng.integers(-6, 4, sums.max() + 2)
    mu = rng.choice([0.0, 0.5, 1.0], sums.max() + 2)
    for k in range(1, lanes, 2):
        s = sums[:, k]
        a[:, k] = a_fmt.encode((rng.standard_normal(cycles) + mu[s]) * scale[s])
        b[:, k] = b_fmt.encode(np.abs(rng.standard_normal(cycles)) * scale[s + 1])
    last = np.zeros((cycles, lanes), bool)
    last[:-1] |= clear[1:] & (rng.random((cycles - 1, lanes)) < 0.8)
    last |= rng.random((cycles, lanes)) < 0.02
    return valid, clear, last, a, b


def _inputs(valid, clear, a, b, last=None):
    d = {"a": a, "b": b, "valid": np.asarray(valid).astype(np.uint8),
         "clear": np.asarray(clear).astype(np.uint8)}
    if last is not None:
        d["last"] = np.asarray(last).astype(np.uint8)
    return d


def _build(name, params):
    unit = catalog.get_unit(name)
    component, resolved = unit.build(**(params or {}))
    return component, unit.typed(resolved)


def _flat(stimulus):
    return {k: np.asarray(v).ravel() for k, v in stimulus.items()}


def _codes(x):
    return np.asarray(x).astype(np.uint64)


# -- chunked-mac --------------------------------------------------------------------------------

def ref_chunked_mac(unit, valid, clear, last, a, b):
    """Golden outputs of :class:`~lowbit.hdl.accumulators.ChunkedMac` ``unit`` for per-lane
    streams ``(cycles, lanes)``: ``acc`` (outer) and ``partial`` (inner) codes after each
    cycle, and ``acc_valid``."""
    outer, inner = model.chunked_stream(valid, clear, last, a, b, a_format=unit.a_format,
                                        b_format=unit.b_format, acc_format=unit.acc_format,
                                        chunk_length=unit.chunk_length, saturate=unit.saturate)
    return {"acc": _codes(outer), "partial": _codes(inner), "acc_valid": _codes(valid)}


def rtl_chunked_mac(unit, valid, clear, last, a, b, sim=None):
    """The same outputs from ``unit``'s Verilog (one lane per column)."""
    got = cosim.run_lanes(unit, _inputs(valid, clear, a, b, last), ["acc", "partial", "acc_valid"],
                          lanes=np.shape(a)[1], sim=sim)
    return rtl_result(got, **{k: _codes(got[k]) for k in ("acc", "partial", "acc_valid")})


def cosim_chunked_mac(params=None, vectors=None, seed=None, sim=None, *, lanes=16):
    """``lowbit cosim chunked-mac``: ``vectors`` (default 100,000) random MAC steps."""
    unit, typed = _build("chunked-mac", params)
    rng = np.random.default_rng(seed)
    cycles = max(1, -(-(vectors or 100_000) // lanes))
    max_len = min(4 * unit.chunk_length + 3, 1000)
    valid, clear, last, a, b = random_accum_sequences(unit.a_format, unit.b_format, cycles,
                                                      lanes, rng, max_len)
    want = ref_chunked_mac(unit, valid, clear, last, a, b)
    got = rtl_chunked_mac(unit, valid, clear, last, a, b, sim)
    return cosim.CosimReport.compare(
        "chunked-mac", typed, got.simulator, seed, _flat(_inputs(valid, clear, a, b, last)),
        {k: v.ravel() for k, v in want.items()}, {k: v.ravel() for k, v in got.items()})


# -- kahan-mac ----------------------------------------------------------------------------------

def ref_kahan_mac(unit, valid, clear, a, b):
    """Golden outputs of :class:`~lowbit.hdl.accumulators.KahanMac` ``unit`` for per-lane
    streams: ``acc`` (s) and ``comp`` (c) codes after each cycle, and ``acc_valid``."""
    s, c = model.kahan_stream(valid, clear, a, b, a_format=unit.a_format,
                              b_format=unit.b_format, acc_format=unit.acc_format,
                              saturate=unit.saturate)
    return {"acc": _codes(s), "comp": _codes(c), "acc_valid": _codes(valid)}


def rtl_kahan_mac(unit, valid, clear, a, b, sim=None):
    """The same outputs from ``unit``'s Verilog (one lane per column)."""
    got = cosim.run_lanes(unit, _inputs(valid, clear, a, b), ["acc", "comp", "acc_valid"],
                          lanes=np.shape(a)[1], sim=sim)
    return rtl_result(got, **{k: _codes(got[k]) for k in ("acc", "comp", "acc_valid")})


def cosim_kahan_mac(params=None, vectors=None, seed=None, sim=None, *, lanes=16):
    """``lowbit cosim kahan-mac``: ``vectors`` (default 100,000) random MAC steps."""
    unit, typed = _build("kahan-mac", params)
    rng = np.random.default_rng(seed)
    cycles = max(1, -(-(vectors or 100_000) // lanes))
    valid, clear, _, a, b = random_accum_sequences(unit.a_format, unit.b_format, cycles, lanes,
                                                   rng)
    want = ref_kahan_mac(unit, valid, clear, a, b)
    got = rtl_kahan_mac(unit, valid, clear, a, b, sim)
    return cosim.CosimReport.compare(
        "kahan-mac", typed, got.simulator, seed, _flat(_inputs(valid, clear, a, b)),
        {k: v.ravel() for k, v in want.items()}, {k: v.ravel() for k, v in got.items()})
