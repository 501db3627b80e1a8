"""Co-simulation benches of the OverQ PE and its plain baseline: ``overq-pe`` and ``int-pe``.

Twins as in :mod:`lowbit.sim.bench_mac`: ``ref_x(unit, **vectors)`` (golden cycle model,
:func:`lowbit.models.overq.overq_pe_stream` / :func:`~lowbit.models.overq.int_pe_stream`) and
``rtl_x(unit, **vectors)`` (the unit's Verilog under cocotb, one lane per column), and the
bench ``cosim_x(params, vectors, seed, sim)``; the accumulator is compared every cycle.

Stimulus (:func:`overq_vectors`): exhaustive when ``bits <= 4`` and ``w_bits <= 4`` (lane
``l`` holds one (code, meta) pair and walks the weights through a de Bruijn sequence,
:func:`de_bruijn_pairs`, so that every (code, meta, w, w_prev) occurs once), then random
cycles with random ``first`` (1/8) and ``valid`` (7/8) per lane.
"""

import time

import numpy as np

from lowbit.hdl import catalog
from lowbit.models import overq as model

from . import cosim
from .bench_mac import rtl_result

__all__ = ["de_bruijn_pairs", "overq_vectors", "ref_overq_pe", "rtl_overq_pe", "cosim_overq_pe",
           "ref_int_pe", "rtl_int_pe", "cosim_int_pe"]


def de_bruijn_pairs(n):
    """A cyclic de Bruijn sequence B(n, 2) plus its first symbol: ``n*n + 1`` symbols in which
    every ordered pair ``(a, b)`` of ``0..n-1`` occurs exactly once as consecutive symbols."""
    a = [0] * (2 * n)
    seq = []

    def db(t, p):                 # the standard Lyndon-word construction
        if t > 2:
            if 2 % p == 0:
                seq.extend(a[1:p + 1])
        else:
            a[t] = a[t - p]
            db(t + 1, p)
            for j in range(a[t - p] + 1, n):
                a[t] = j
                db(t + 1, t)

    db(1, 1)
    return seq + seq[:1]


def overq_vectors(config, w_bits, seed=0, random_cycles=256, lanes=64, exhaustive=None):
    """Per-lane input sequences ``{port: (cycles, lanes)}`` for :class:`~lowbit.hdl.overq_pe.OverqPe`.

    Exhaustive part (default when ``bits <= 4 and w_bits <= 4``): lane ``l`` holds one
    (code, meta) pair (``2^bits * 2^meta_bits`` lanes, so 64 for b = 4 with 2 meta bits) and
    walks the weights through a de Bruijn sequence, so every (code, meta, w, w_prev) occurs
    once, with ``first`` on the first cycle.  Then ``random_cycles`` random cycles with random
    ``first`` (1/8) and ``valid`` (7/8) per lane.
    """
    cfg = config
    rng = np.random.default_rng(seed)
    if exhaustive is None:
        exhaustive = cfg.bits <= 4 and w_bits <= 4
    parts = []
    if exhaustive:
        combos = (1 << cfg.bits) << cfg.meta_bits
        if combos % lanes:
            raise ValueError(f"lanes must divide {combos} for the exhaustive vectors")
        nw = 1 << w_bits
        seq = np.array(de_bruijn_pairs(nw)) - (nw >> 1)
        for block in range(combos // lanes):
            idx = block * lanes + np.arange(lanes)
            cyc = len(seq)
            first = np.zeros((cyc, lanes), np.uint8)
            first[0] = 1
            parts.append({
                "code": np.broadcast_to(idx >> cfg.meta_bits, (cyc, lanes)),
                "meta": np.broadcast_to(idx & ((1 << cfg.meta_bits) - 1), (cyc, lanes)),
                "w": np.broadcast_to(seq[:, None], (cyc, lanes)),
                "first": first, "valid": np.ones((cyc, lanes), np.uint8)})
    if random_cycles:
        shape = (random_cycles, lanes)
        parts.append({
            "code": rng.integers(0, 1 << cfg.bits, shape),
            "meta": rng.integers(0, 1 << cfg.meta_bits, shape),
            "w": rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), shape),
            "first": (rng.random(shape) < 1 / 8).astype(np.uint8),
            "valid": (rng.random(shape) < 7 / 8).astype(np.uint8)})
    return {k: np.concatenate([np.asarray(p[k], dtype=np.int64) for p in parts])
            for k in ("code", "meta", "w", "first", "valid")}


def ref_overq_pe(unit, code, meta, w, first, valid):
    """Golden ``acc`` after every cycle of :class:`~lowbit.hdl.overq_pe.OverqPe` ``unit`` for
    per-lane sequences ``(cycles, lanes)``."""
    out = np.empty(code.shape, np.int64)
    for k in range(code.shape[1]):
        out[:, k] = model.overq_pe_stream(code[:, k], meta[:, k], w[:, k], unit.config,
                                          first=first[:, k], valid=valid[:, k],
                                          w_bits=unit.w_bits, acc_bits=unit.acc_bits)
    return {"acc": out}


def ref_int_pe(unit, code, w, first, valid):
    """Golden ``acc`` after every cycle of :class:`~lowbit.hdl.overq_pe.IntPe` ``unit``."""
    out = np.empty(code.shape, np.int64)
    for k in range(code.shape[1]):
        out[:, k] = model.int_pe_stream(code[:, k], w[:, k], first=first[:, k],
                                        valid=valid[:, k], bits=unit.bits, w_bits=unit.w_bits,
                                        acc_bits=unit.acc_bits)
    return {"acc": out}


def _rtl(unit, vec, sim):
    got = cosim.run_lanes(unit, vec, ["acc"], lanes=vec["code"].shape[1], sim=sim)
    return rtl_result(got, acc=cosim.to_signed(got["acc"], unit.acc_bits))


def rtl_overq_pe(unit, code, meta, w, first, valid, sim=None):
    """The same from ``unit``'s Verilog."""
    return _rtl(unit, {"code": code, "meta": meta, "w": w, "first": first, "valid": valid}, sim)


def rtl_int_pe(unit, code, w, first, valid, sim=None):
    """The same from ``unit``'s Verilog."""
    return _rtl(unit, {"code": code, "w": w, "first": first, "valid": valid}, sim)


def _report(name, typed, vec, want, got, seed, t0, notes):
    flat = {k: v.reshape(-1) for k, v in vec.items()}
    return cosim.CosimReport.compare(name, typed, got.simulator, seed, flat,
                                     {"acc": want["acc"].reshape(-1)},
                                     {"acc": got["acc"].reshape(-1)},
                                     seconds=time.perf_counter() - t0, notes=notes)


def cosim_overq_pe(params=None, vectors=None, seed=None, sim=None, *, lanes=64):
    """``lowbit cosim overq-pe``: the exhaustive part (small widths) and ``vectors`` (default
    16,384) random cycles."""
    t0 = time.perf_counter()
    spec = catalog.get_unit("overq-pe")
    unit, resolved = spec.build(**(params or {}))
    seed = 0 if seed is None else seed
    cfg = unit.config
    exhaustive = cfg.bits <= 4 and unit.w_bits <= 4
    if exhaustive:
        lanes = min(lanes, (1 << cfg.bits) << cfg.meta_bits)
    random_cycles = max(1, -(-(vectors or 16384) // lanes))
    vec = overq_vectors(cfg, unit.w_bits, seed, random_cycles, lanes, exhaustive)
    want = ref_overq_pe(unit, **vec)
    got = rtl_overq_pe(unit, **vec, sim=sim)
    notes = [f"{want['acc'].size} cycles ({lanes} lanes x {want['acc'].shape[0]}), acc compared "
             f"every cycle"]
    if exhaustive:
        notes.append(f"exhaustive: every (code, meta, w, w_prev) of {2 ** unit.bits} codes x "
                     f"{2 ** unit.meta_bits} meta x {2 ** unit.w_bits}^2 weight pairs, "
                     "then random cycles with random first/valid")
    return _report("overq-pe", spec.typed(resolved), vec, want, got, seed, t0, notes)


def cosim_int_pe(params=None, vectors=None, seed=None, sim=None, *, lanes=64):
    """``lowbit cosim int-pe``: ``vectors`` (default 16,384) random cycles."""
    t0 = time.perf_counter()
    spec = catalog.get_unit("int-pe")
    unit, resolved = spec.build(**(params or {}))
    seed = 0 if seed is None else seed
    random_cycles = max(1, -(-(vectors or 16384) // lanes))
    vec = overq_vectors(model.OverqConfig(unit.bits, 0, False), unit.w_bits, seed,
                        random_cycles, lanes, exhaustive=False)
    del vec["meta"]
    want = ref_int_pe(unit, **vec)
    got = rtl_int_pe(unit, **vec, sim=sim)
    notes = [f"{want['acc'].size} cycles ({lanes} lanes x {want['acc'].shape[0]}), acc compared "
             f"every cycle"]
    return _report("int-pe", spec.typed(resolved), vec, want, got, seed, t0, notes)
