"""Co-simulation benches of the training accumulators: ``chunked-mac`` and ``kahan-mac``.

Golden twins (Glasgow's ``ref_x`` / ``rtl_x``, same arguments, same return type):
``ref_chunked_mac(unit, valid, clear, last, a, b)`` runs
:func:`lowbit.models.training.chunked_stream` with the unit's parameters,
``rtl_chunked_mac(unit, valid, clear, last, a, b, sim)`` the unit's generated Verilog under
cocotb (:func:`lowbit.sim.cosim.run_lanes`, one lane per stimulus column); likewise
``ref_kahan_mac`` / ``rtl_kahan_mac`` with :func:`lowbit.models.training.kahan_stream`
(no ``last``).  Both return ``{output port: array (cycles, lanes)}``.  With one lane the
hardware twin drives the unit's own Verilog (the module ``lowbit generate`` writes, named
after the unit), so that its simulator build is shared with any other run of that Verilog.

Stimulus (:func:`random_accum_sequences`): per-lane sums of random length 1..``max_len``
(``clear`` on the first term; ~10 % idle cycles, so ``clear`` sometimes falls on an idle
cycle), half the lanes with uniformly random codes (NaN/Inf replaced by zero except in a
fraction ``specials`` of the terms: overflow, cancellation, specials), the other half with
operands rounded from N(mu, 1) draws at a random per-sum scale (long sums of like-signed
products, the swamping case chunking and compensation address).  ``chunked-mac`` also gets
``last`` on the final cycle of most sums and on ~2 % of the other cycles.
"""

import numpy as np

from lowbit.hdl import catalog, manifest
from lowbit.models import training as model

from . import cosim
from .bench_mac import random_mac_control, rtl_result

__all__ = ["random_accum_sequences", "directed_accum_sequence", "ref_chunked_mac",
           "rtl_chunked_mac", "cosim_chunked_mac", "ref_kahan_mac", "rtl_kahan_mac", "cosim_kahan_mac"]


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


def _run(unit, name, inputs, outputs, sim):
    """Per-lane stimulus ``(cycles, lanes)`` through ``unit``'s Verilog; outputs as
    :func:`lowbit.sim.cosim.run_lanes` returns them."""
    lanes = np.shape(inputs["a"])[1]
    if lanes > 1:
        return cosim.run_lanes(unit, inputs, outputs, lanes=lanes, sim=sim)
    top = name.replace("-", "_")
    got = cosim.run_stream(manifest.to_verilog(unit, top), {k: np.asarray(v)[:, 0]
                                                           for k, v in inputs.items()},
                           outputs, latency=unit.latency, sim=sim, toplevel=top)
    return rtl_result(got, **{k: np.asarray(got[k]).reshape(-1, 1) for k in outputs})


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
    got = _run(unit, "chunked-mac", _inputs(valid, clear, a, b, last),
               ["acc", "partial", "acc_valid"], sim)
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
    got = _run(unit, "kahan-mac", _inputs(valid, clear, a, b), ["acc", "comp", "acc_valid"],
               sim)
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


# -- directed cases -----------------------------------------------------------------------------

def directed_accum_sequence(a_fmt, b_fmt, chunk_length=4):
    """One lane of directed sums, ``(valid, clear, last, a, b, ends)``: arrays ``(cycles, 1)``
    and ``{case: index of the cycle whose registers hold that sum's result}``.

    Cases (each a new sum started by ``clear``, ``last`` on its final product): ties of the
    RNE rounding (2048 + 1, + 3, + 1 in FP16; 2048 + 8 in BF16), swamping (2048 then 600
    products 1 * 1), a long sum of 1000 products 1 * 1, overflow to Inf (max * max products,
    then one of the other sign: Inf - Inf), an Inf operand, a NaN operand, ``-0`` products (a
    sum of ``-0`` only, then ``x + (-x)``), exact cancellation of a big term, subnormal
    products below and at half the FP16 subnormal step, sums of ``chunk_length - 1`` ..
    ``2 * chunk_length + 1`` products, ``last`` inside a chunk, idle cycles inside a chunk,
    ``clear`` on an idle cycle and a sum continued after it without ``clear``.
    """
    A, B = a_fmt.encode, b_fmt.encode
    one_a, one_b = int(A(np.array([1.0]))[0]), int(B(np.array([1.0]))[0])
    cycles = []                                   # (valid, clear, last, a, b)
    ends = {}

    def add_sum(name, terms, idle_at=(), last_at=None):
        n = len(terms)
        for i, (x, y) in enumerate(terms):
            if i in idle_at:
                cycles.append((0, 0, 0, one_a, one_b))
            last = (i == n - 1) if last_at is None else (i in last_at)
            cycles.append((1, int(i == 0), int(last), x, y))
        ends[name] = len(cycles) - 1

    def vals(pairs):
        return [(int(A(np.array([x]))[0]), int(B(np.array([y]))[0])) for x, y in pairs]

    add_sum("tie_fp16", vals([(256, 8), (1, 1), (3, 1), (1, 1), (0.5, 1)]))
    add_sum("tie_bf16", vals([(256, 8), (8, 1), (8, 1), (24, 1), (4, 2)]))
    add_sum("swamping", vals([(256, 8)] + [(1, 1)] * 600))
    add_sum("ones_1000", vals([(1, 1)] * 1000))
    big = (a_fmt.max, b_fmt.max)
    add_sum("overflow", vals([big, big, (-a_fmt.max, b_fmt.max), (1, 1)]))
    if b_fmt.has_inf:
        add_sum("inf_operand", vals([(1, 1)]) + [(one_a, b_fmt.inf_code)] + vals([(2, 1)]))
    nan_a = a_fmt.nan_code if a_fmt.has_nan else one_a
    add_sum("nan_operand", vals([(1, 1)]) + [(nan_a, one_b)] + vals([(1, 1)]))
    add_sum("neg_zero", vals([(-0.0, 1), (0.0, -1), (-0.0, 2)]))
    add_sum("x_minus_x", vals([(2, 1), (-2, 1)]))
    add_sum("cancel", vals([(448 if a_fmt.max >= 448 else a_fmt.max, 8), (1, 0.0078125),
                            (-(448 if a_fmt.max >= 448 else a_fmt.max), 8)]))
    tiny = (a_fmt.min_subnormal, b_fmt.min_subnormal)
    add_sum("subnormal", vals([tiny, tiny, tiny, (a_fmt.min_subnormal * 3, b_fmt.min_subnormal)]))
    cl = chunk_length
    for n in sorted({max(1, cl - 1), cl, cl + 1, 2 * cl, 2 * cl + 1}):
        add_sum(f"len_{n}", vals([(1.5, 1), (1, 0.125)] * n)[:n])
    add_sum("last_inside", vals([(1, 1)] * (2 * cl + 3)), last_at={1, 2 * cl + 2})
    add_sum("idle_inside", vals([(3, 1)] * (cl + 2)), idle_at={1, cl})
    cycles.append((0, 1, 0, one_a, one_b))        # clear on an idle cycle: both registers +0
    ends["clear_idle"] = len(cycles) - 1
    for i in range(cl + 1):                       # continued without clear
        cycles.append((1, 0, int(i == cl), one_a, one_b))
    ends["after_clear_idle"] = len(cycles) - 1
    arr = np.array(cycles, dtype=np.int64)
    valid, clear, last = (arr[:, k:k + 1].astype(bool) for k in range(3))
    return valid, clear, last, arr[:, 3:4], arr[:, 4:5], ends
