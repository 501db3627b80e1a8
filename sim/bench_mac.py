"""Co-simulation benches of the MAC units: ``int-mac``, ``fp-mul`` and ``fp-mac``.

Each unit has a golden twin and a hardware twin with the same arguments (Glasgow's
``ref_x`` / ``rtl_x``): ``ref_<unit>(unit, **stimulus)`` computes the outputs from the golden
model (:mod:`lowbit.models.mac`) with the unit's parameters, ``rtl_<unit>(unit, **stimulus)``
runs the unit's generated Verilog under cocotb (:func:`lowbit.sim.cosim.run_lanes`, one
lane per stimulus column); both return ``{output port: array}`` in the same representation.
``cosim_<unit>(params, vectors, seed, sim)`` is the bench: it builds the unit from catalogue
parameters (as ``lowbit cosim`` takes them), draws the stimulus and returns the
:class:`~lowbit.sim.cosim.CosimReport`.

Stimulus: per-lane accumulation sequences (:func:`random_mac_control`): about 90 % of the cycles
valid, ``clear`` starting a new sum after a random run (so it sometimes falls on an idle
cycle); INT codes uniform; FP codes uniform with NaN/Inf codes replaced by zero except in a
fraction ``specials`` of the terms (:func:`random_fp_sequences`). ``fp-mul``: every code pair
when ``vectors`` covers them (exhaustive), else uniform random pairs.
"""

import numpy as np

from lowbit.hdl import catalog, lfsr
from lowbit.models import mac as model

from . import cosim

__all__ = ["random_mac_control", "random_int_sequences", "random_fp_sequences",
           "ref_int_mac", "rtl_int_mac", "cosim_int_mac", "ref_fp_mul", "rtl_fp_mul",
           "cosim_fp_mul", "ref_fp_mac", "rtl_fp_mac", "cosim_fp_mac", "rtl_result"]


def random_mac_control(cycles, lanes, rng, max_len):
    """Per-lane random ``valid``/``clear`` streams for MAC co-simulation.

    ~90 % of cycles are valid; each lane starts a new sum (``clear``) after a random run of
    1..``max_len`` cycles, so ``clear`` sometimes falls on an idle cycle.
    """
    valid = rng.random((cycles, lanes)) < 0.9
    clear = np.zeros((cycles, lanes), bool)
    for k in range(lanes):
        t = 0
        while t < cycles:
            clear[t, k] = True
            t += int(rng.integers(1, max_len + 1))
    return valid, clear


def random_int_sequences(a_fmt, b_fmt, cycles, lanes, rng):
    """Per-lane random streams (valid, clear, a codes, b codes) for INT MAC co-simulation."""
    valid, clear = random_mac_control(cycles, lanes, rng, 64)
    a = rng.integers(0, 1 << a_fmt.bits, (cycles, lanes))
    b = rng.integers(0, 1 << b_fmt.bits, (cycles, lanes))
    return valid, clear, a, b


def random_fp_sequences(a_fmt, b_fmt, cycles, lanes, rng, specials=0.02):
    """Per-lane random streams (valid, clear, a, b) for FP MAC co-simulation.

    Each lane runs accumulation sequences of random length 1..16 (``clear`` on the first term),
    with ~10 % idle cycles and rare ``clear`` without ``valid``.  Codes are random, with NaN/Inf
    patterns replaced by zero except in a fraction ``specials`` of the terms.
    """
    valid, clear = random_mac_control(cycles, lanes, rng, 16)
    a = rng.integers(0, 1 << a_fmt.bits, (cycles, lanes))
    b = rng.integers(0, 1 << b_fmt.bits, (cycles, lanes))
    for fmt, x in ((a_fmt, a), (b_fmt, b)):
        bad = ~np.isfinite(fmt.decode(x)) & (rng.random(x.shape) >= specials)
        x[bad] = 0
    return valid, clear, a, b


def _build(name, params):
    unit = catalog.get_unit(name)
    component, resolved = unit.build(**(params or {}))
    return component, unit.typed(resolved)


def _mac_inputs(valid, clear, a, b):
    return {"a": a, "b": b, "valid": np.asarray(valid).astype(np.uint8),
            "clear": np.asarray(clear).astype(np.uint8)}


def _flat(stimulus):
    return {k: np.asarray(v).ravel() for k, v in stimulus.items()}


def rtl_result(got, **outputs):
    """``outputs`` as a :class:`~lowbit.sim.cosim.StreamResult` carrying the run facts of
    ``got`` (simulator, cycles, build and simulation seconds): what an ``rtl_x`` returns."""
    out = cosim.StreamResult(outputs)
    for attr in ("cycles", "simulator", "build_seconds", "sim_seconds", "build_dir"):
        setattr(out, attr, getattr(got, attr))
    return out


# -- int-mac ------------------------------------------------------------------------------------

def ref_int_mac(unit, valid, clear, a, b):
    """Golden outputs of :class:`~lowbit.hdl.int_mac.IntMac` ``unit`` for per-lane streams
    ``(cycles, lanes)``: ``acc`` (signed) after each cycle and ``acc_valid``."""
    acc = model.mac_stream(valid, clear, a, b, kind="int", a_format=unit.a_format,
                           b_format=unit.b_format, acc_bits=unit.acc_bits, overflow=unit.overflow)
    return {"acc": np.asarray(acc, dtype=np.int64), "acc_valid": np.asarray(valid).astype(np.uint64)}


def rtl_int_mac(unit, valid, clear, a, b, sim=None):
    """The same outputs from ``unit``'s Verilog (one lane per column)."""
    got = cosim.run_lanes(unit, _mac_inputs(valid, clear, a, b), ["acc", "acc_valid"],
                          lanes=np.shape(a)[1], sim=sim)
    return rtl_result(got, acc=cosim.to_signed(got["acc"], unit.acc_bits),
                      acc_valid=np.asarray(got["acc_valid"]).astype(np.uint64))


def _cosim_mac(name, sequences, ref, rtl, params, vectors, seed, sim, lanes, built=None):
    """The MAC bench: ``vectors`` random MAC steps as per-lane sequences, ref vs rtl
    (``built``: the ``(unit, typed)`` pair of :func:`_build`, when the caller has it)."""
    unit, typed = built or _build(name, params)
    rng = np.random.default_rng(seed)
    cycles = max(1, -(-(vectors or 100_000) // lanes))
    valid, clear, a, b = sequences(unit.a_format, unit.b_format, cycles, lanes, rng)
    want = ref(unit, valid, clear, a, b)
    got = rtl(unit, valid, clear, a, b, sim)
    return cosim.CosimReport.compare(
        name, typed, got.simulator, seed, _flat(_mac_inputs(valid, clear, a, b)),
        {k: v.ravel() for k, v in want.items()}, {k: v.ravel() for k, v in got.items()})


def cosim_int_mac(params=None, vectors=None, seed=None, sim=None, *, lanes=64):
    """``lowbit cosim int-mac``: ``vectors`` (default 100,000) random MAC steps."""
    return _cosim_mac("int-mac", random_int_sequences, ref_int_mac, rtl_int_mac, params, vectors,
                      seed, sim, lanes)


# -- fp-mul -------------------------------------------------------------------------------------

def ref_fp_mul(unit, a, b):
    """Golden product codes of :class:`~lowbit.hdl.fp_mul.FpMultiplier` ``unit`` for vectors
    ``a``, ``b`` (1-D, one pair per vector; ``valid`` always 1)."""
    p = model.fp_mul(a, b, unit.a_format, unit.b_format, unit.flush_subnormals)
    return {"p": np.asarray(p).astype(np.uint64), "out_valid": np.ones(len(a), np.uint64)}


def rtl_fp_mul(unit, a, b, sim=None, lanes=256):
    """The same outputs from ``unit``'s Verilog."""
    got = cosim.run_lanes(unit, {"a": a, "b": b, "valid": np.ones_like(a)}, ["p", "out_valid"],
                          lanes=lanes, sim=sim)
    return rtl_result(got, p=got["p"], out_valid=got["out_valid"])


def cosim_fp_mul(params=None, vectors=None, seed=None, sim=None, *, lanes=256):
    """``lowbit cosim fp-mul``: every code pair (if ``vectors`` is None or covers them) or
    ``vectors`` random pairs."""
    unit, typed = _build("fp-mul", params)
    a_f, b_f = unit.a_format, unit.b_format
    if vectors is None or vectors >= 1 << (a_f.bits + b_f.bits):
        A, B = np.meshgrid(a_f.all_codes(), b_f.all_codes(), indexing="ij")
        A, B, seed = A.ravel(), B.ravel(), None
    else:
        rng = np.random.default_rng(seed)
        A = rng.integers(0, 1 << a_f.bits, vectors)
        B = rng.integers(0, 1 << b_f.bits, vectors)
    want = ref_fp_mul(unit, A, B)
    got = rtl_fp_mul(unit, A, B, sim, lanes)
    return cosim.CosimReport.compare("fp-mul", typed, got.simulator, seed, {"a": A, "b": B},
                                     want, got)


# -- fp-mac -------------------------------------------------------------------------------------

def fp_mac_random_bits(unit, valid, rand=None):
    """The random bits the stochastic-rounding ``unit`` uses per cycle: the ``rbits`` stimulus
    (``random_source="port"``) or its LFSR's draws (:func:`lowbit.hdl.lfsr.lfsr_draws`)."""
    if unit.random_source == "port":
        return np.asarray(rand)
    return lfsr.lfsr_draws(unit_sr(unit), valid)


def unit_sr(unit):
    """The :class:`~lowbit.hdl.lfsr.SrConfig` of a unit, from its public properties."""
    return lfsr.SrConfig(True, unit.sr_bits, unit.random_source, unit.lfsr_width, unit.seed)


def ref_fp_mac(unit, valid, clear, a, b, rand=None):
    """Golden outputs of :class:`~lowbit.hdl.fp_mac.FpMac` ``unit`` for per-lane streams:
    ``acc`` codes after each cycle and ``acc_valid`` (``rbits``: the ``rbits`` port's stimulus
    of a unit with ``random_source="port"``)."""
    extra = {}
    if unit.rounding == "stochastic":
        extra = {"rounding": "stochastic", "sr_bits": unit.sr_bits,
                 "random_bits": fp_mac_random_bits(unit, valid, rand)}
    acc = model.mac_stream(valid, clear, a, b, kind="fp", a_format=unit.a_format,
                           b_format=unit.b_format, acc_format=unit.acc_format, mode=unit.mode,
                           flush_subnormals=unit.flush_subnormals, saturate=unit.saturate,
                           terms=unit.terms, **extra)
    return {"acc": np.asarray(acc).astype(np.uint64),
            "acc_valid": np.asarray(valid).astype(np.uint64)}


def rtl_fp_mac(unit, valid, clear, a, b, sim=None, rand=None):
    """The same outputs from ``unit``'s Verilog (one lane per column)."""
    inputs = _mac_inputs(valid, clear, a, b)
    if unit.rounding == "stochastic" and unit.random_source == "port":
        inputs["rbits"] = rand
    got = cosim.run_lanes(unit, inputs, ["acc", "acc_valid"], lanes=np.shape(a)[1], sim=sim)
    return rtl_result(got, acc=np.asarray(got["acc"]).astype(np.uint64),
                      acc_valid=np.asarray(got["acc_valid"]).astype(np.uint64))


def cosim_fp_mac(params=None, vectors=None, seed=None, sim=None, *, lanes=16):
    """``lowbit cosim fp-mac``: ``vectors`` (default 100,000) random MAC steps.  A unit with
    stochastic rounding from the ``rbits`` port gets uniform random bits on it; with the LFSR
    the golden model replays the LFSR's stream (``seed_in``/``reseed`` held at 0)."""
    unit, typed = _build("fp-mac", params)
    if unit.rounding != "stochastic":
        return _cosim_mac("fp-mac", random_fp_sequences, ref_fp_mac, rtl_fp_mac, params,
                          vectors, seed, sim, lanes, built=(unit, typed))
    rng = np.random.default_rng(seed)
    cycles = max(1, -(-(vectors or 100_000) // lanes))
    valid, clear, a, b = random_fp_sequences(unit.a_format, unit.b_format, cycles, lanes, rng)
    rand = rng.integers(0, 1 << unit.sr_bits, (cycles, lanes))
    want = ref_fp_mac(unit, valid, clear, a, b, rand)
    got = rtl_fp_mac(unit, valid, clear, a, b, sim, rand)
    inputs = _mac_inputs(valid, clear, a, b)
    if unit.random_source == "port":
        inputs["rbits"] = rand
    return cosim.CosimReport.compare(
        "fp-mac", typed, got.simulator, seed, _flat(inputs),
        {k: v.ravel() for k, v in want.items()}, {k: v.ravel() for k, v in got.items()})
