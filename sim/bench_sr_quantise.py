"""Co-simulation bench of the stochastic-rounding quantiser ``sr-quantise``.

Twins with the same arguments (Glasgow's ``ref_x`` / ``rtl_x``):
``ref_sr_quantise(unit, x, valid, rbits=None, reseed=None, seed_in=None)`` computes the
outputs from :func:`lowbit.models.training.sr_quantise` with the random bits of the unit's
source (the ``rbits`` stimulus, or the LFSR's draws replayed by :func:`lfsr_cycle_draws`,
reseeds included); ``rtl_sr_quantise(unit, ..., sim=None)`` runs the unit's Verilog under cocotb
(:func:`lowbit.sim.cosim.run_lanes`, one lane per stimulus column, every lane with its own
LFSR).  Both return ``{"q": codes, "out_valid": 0/1}`` as ``(cycles, lanes)`` uint64 arrays.

Stimulus (:func:`random_inputs`): a quarter of the codes uniform over every bit pattern (most
of them overflow or underflow the target), the rest with an exponent drawn around the target's
range (from below its smallest subnormal to above its largest binade) and a uniform mantissa;
then the directed cases of :func:`directed_inputs` (every target value exactly, the midpoint of
every pair of neighbours (the ties of RNE) and the points ``k / 2^N`` of the way between them
for the ``N`` of the unit, just above and below them, the largest finite values and the
overflow boundary, +-0, +-Inf, NaNs, input subnormals).  About 90 % of the cycles are valid.
"""

import numpy as np

from lowbit.hdl import catalog
from lowbit.models import lfsr as lfsr_model
from lowbit.models import training as model

from . import cosim
from .bench_mac import rtl_result

__all__ = ["lfsr_cycle_draws", "boundary_cases", "directed_inputs", "random_inputs",
           "ref_sr_quantise", "rtl_sr_quantise", "cosim_sr_quantise"]


def lfsr_cycle_draws(width, seed, sr_bits, valid, reseed=None, seed_in=None):
    """The draw the LFSR of a unit shows on every cycle, for per-lane control ``(cycles,
    lanes)``: the ``i``-th valid cycle since reset (or since the last ``reseed``) sees draw
    ``i`` of :func:`lowbit.models.lfsr.lfsr_stream` ``(width, s, sr_bits, ...)``, ``s`` the
    reset seed or the ``seed_in`` of that reseed (0 meaning ``seed``).  A reseed cycle still
    shows the old stream's draw (the register loads at the clock edge)."""
    valid = np.asarray(valid, dtype=bool)
    if valid.ndim == 1:
        valid = valid[:, None]
    cycles, n = valid.shape
    reseed = (np.zeros_like(valid) if reseed is None
              else np.asarray(reseed, bool).reshape(valid.shape))
    seed_in = (np.zeros(valid.shape, np.int64) if seed_in is None
               else np.asarray(seed_in, np.int64).reshape(valid.shape))
    streams = {}

    def stream(s, count):
        if s not in streams or len(streams[s]) < count:
            streams[s] = lfsr_model.lfsr_stream(width, s, sr_bits, max(count, 2 * len(
                streams.get(s, ()))))
        return streams[s]

    out = np.zeros(valid.shape, np.int64)
    for k in range(n):
        starts = [0] + [int(t) + 1 for t in np.flatnonzero(reseed[:, k])]
        seeds = [seed] + [int(seed_in[t, k]) or seed for t in np.flatnonzero(reseed[:, k])]
        for j, t0 in enumerate(starts):
            t1 = starts[j + 1] if j + 1 < len(starts) else cycles
            if t0 >= t1:
                continue
            v = valid[t0:t1, k]
            index = np.cumsum(v) - v
            out[t0:t1, k] = stream(seeds[j], int(index[-1]) + 1)[index]
    return out


def boundary_cases(in_format, out_format, n, rng, count=24, k_bits=None):
    """Inputs ``x`` (``in_format`` codes) and draws ``r`` at the carry boundary of SR with
    ``n`` bits:
    for each ``x``, ``r = 2^n - t - 1`` (must round down) and ``r = 2^n - t`` (must round up),
    ``t`` the ``n`` bits of ``|x|/ulp`` below the target's LSB, computed here in float64 (exact:
    a power-of-two scaling and a floor).  Half of the ``x`` are ties (``t = 2^(n-1)``), the
    others ``t`` uniform, on target values drawn over the whole range (subnormals, the largest
    binade, where rounding up overflows).  ``k_bits`` (default ``n``): the ``x`` are
    ``k / 2^k_bits`` of the way between neighbours (ties at that resolution).

    Returns ``(x, r)``, 1-D, the down case of each ``x`` first.
    """
    fi, fo = model.check_quant_input(in_format), model.check_quant_output(out_format)
    kb = n if k_bits is None else k_bits
    vals = fo.decode(fo.all_codes())
    vals = np.unique(np.abs(vals[np.isfinite(vals)]))
    ulp = np.ldexp(1.0, np.maximum(np.frexp(np.maximum(vals, fo.min_normal))[1] - 1,
                                   fo.emin) - fo.man_bits)
    pick = rng.integers(0, len(vals), count)
    pick[:3] = [0, 1, len(vals) - 1]               # zero, smallest subnormal, max
    k = rng.integers(1, 1 << kb, count)
    k[: count // 2] = 1 << (kb - 1)                # ties
    x = vals[pick] + ulp[pick] * k / (1 << kb)
    x = x * np.where(rng.random(count) < 0.5, -1, 1)
    codes = fi.encode(x, rounding="toward_zero").astype(np.int64)   # below 2^-p_in: truncated
    a = np.abs(fi.decode(codes))
    u = np.ldexp(1.0, np.maximum(np.frexp(np.maximum(a, fo.min_normal))[1] - 1,
                                 fo.emin) - fo.man_bits)
    t = np.floor(np.ldexp(a / u, n)).astype(np.int64) % (1 << n)
    keep = t > 0
    codes, t = codes[keep], t[keep]
    x = np.repeat(codes, 2)
    r = np.stack([(1 << n) - t - 1, (1 << n) - t], axis=1).ravel()
    return x, r


def directed_inputs(in_format, out_format, sr_bits):
    """Directed input codes (1-D, unique) for a quantiser ``in_format -> out_format`` with
    ``sr_bits`` random bits (see the module docstring)."""
    fi, fo = model.check_quant_input(in_format), model.check_quant_output(out_format)
    v = fo.decode(fo.all_codes())
    v = np.unique(np.abs(v[np.isfinite(v)]))              # 0, the subnormals, the normals
    nxt = np.append(v[1:], 2 * v[-1] - v[-2])             # one step above max: the overflow
    lo, hi = v[:, None], nxt[:, None]
    steps = 1 << min(sr_bits, 6)
    frac = np.arange(steps + 1) / steps                   # k / 2^N (at most 64 of them)
    pts = lo + (hi - lo) * frac                           # ties at frac = 1/2
    vals = np.concatenate([pts.ravel(), v * 0.75, v * 1.5, [fo.max * 2, fo.max * 4,
                                                              fo.min_subnormal / 4]])
    vals = vals[np.isfinite(vals) & (vals <= np.finfo(np.float32).max)]
    codes = fi.encode(vals, rounding="toward_zero").astype(np.int64)
    near = np.concatenate([codes, codes + 1, np.maximum(codes - 1, 0)])  # just above/below
    sign = np.int64(1) << (fi.bits - 1)
    exp_mask = ((1 << fi.exp_bits) - 1) << fi.man_bits
    specials = [0, exp_mask, exp_mask | 1, exp_mask | (1 << (fi.man_bits - 1)),
                exp_mask | ((1 << fi.man_bits) - 1), 1, 2, (1 << fi.man_bits) - 1,
                1 << fi.man_bits]                          # 0, Inf, NaNs, subnormals, min normal
    both = np.concatenate([near, specials])
    both = both[(both >= 0) & (both < sign)]
    return np.unique(np.concatenate([both, both | sign]))


def random_inputs(in_format, out_format, count, rng):
    """``count`` random input codes (see the module docstring)."""
    fi, fo = model.check_quant_input(in_format), model.check_quant_output(out_format)
    codes = rng.integers(0, 1 << fi.bits, count, dtype=np.int64)
    near = rng.random(count) >= 0.25
    lo = fo.emin - fo.man_bits - 4 + fi.bias              # biased input exponents
    hi = fo.emax + 3 + fi.bias
    e = rng.integers(lo, hi + 1, count, dtype=np.int64)
    man = rng.integers(0, 1 << fi.man_bits, count, dtype=np.int64)
    sign = rng.integers(0, 2, count, dtype=np.int64)
    mid = (sign << (fi.bits - 1)) | (e << fi.man_bits) | man
    return np.where(near, mid, codes)


def _draws(unit, valid, rbits, reseed, seed_in):
    if unit.random_source == "port":
        return np.asarray(rbits, np.int64)
    return lfsr_cycle_draws(unit.lfsr_width, unit.seed, unit.sr_bits, valid, reseed, seed_in)


def ref_sr_quantise(unit, x, valid, rbits=None, reseed=None, seed_in=None):
    """Golden outputs of :class:`~lowbit.hdl.sr_quantiser.SrQuantiser` ``unit`` for per-lane
    streams ``(cycles, lanes)``: ``q`` (the code of each cycle's ``x``; on an idle cycle the
    register still loads it) and ``out_valid``."""
    x = np.asarray(x, np.int64)
    extra = {}
    if unit.rounding == "stochastic":
        extra = {"random_bits": _draws(unit, valid, rbits, reseed, seed_in),
                 "sr_bits": unit.sr_bits}
    q = model.sr_quantise(x, unit.in_format, unit.out_format, unit.rounding,
                          saturate=unit.saturate, **extra)
    return {"q": np.asarray(q).astype(np.uint64),
            "out_valid": np.asarray(valid).astype(np.uint64)}


def _inputs(unit, x, valid, rbits, reseed, seed_in):
    inputs = {"x": np.asarray(x, np.int64), "valid": np.asarray(valid).astype(np.uint8)}
    if unit.rounding == "stochastic":
        if unit.random_source == "port":
            inputs["rbits"] = np.asarray(rbits, np.int64)
        elif reseed is not None:
            inputs["reseed"] = np.asarray(reseed).astype(np.uint8)
            inputs["seed_in"] = np.asarray(seed_in, np.int64)
    return inputs


def rtl_sr_quantise(unit, x, valid, rbits=None, reseed=None, seed_in=None, sim=None):
    """The same outputs from ``unit``'s Verilog (one lane per column)."""
    got = cosim.run_lanes(unit, _inputs(unit, x, valid, rbits, reseed, seed_in),
                          ["q", "out_valid"], lanes=np.shape(x)[1], sim=sim)
    return rtl_result(got, q=np.asarray(got["q"]).astype(np.uint64),
                      out_valid=np.asarray(got["out_valid"]).astype(np.uint64))


def cosim_sr_quantise(params=None, vectors=None, seed=None, sim=None, *, lanes=16,
                      reseeds=0):
    """``lowbit cosim sr-quantise``: every directed input, then ``vectors`` (default 100,000)
    random inputs, over ``lanes`` parallel copies (~10 % idle cycles).  ``rbits`` uniform
    (port source); with the LFSR, ``reseeds`` reseed pulses per lane at random cycles with a
    random ``seed_in`` (0, which loads the ``seed`` parameter, one time in four)."""
    unit = catalog.get_unit("sr-quantise")
    component, resolved = unit.build(**(params or {}))
    typed = unit.typed(resolved)
    u = component
    rng = np.random.default_rng(seed)
    x = np.concatenate([directed_inputs(u.in_format, u.out_format, u.sr_bits),
                        random_inputs(u.in_format, u.out_format,
                                      100_000 if vectors is None else vectors, rng)])
    cycles = -(-len(x) // lanes)
    x = np.resize(x, cycles * lanes).reshape(cycles, lanes)
    valid = rng.random((cycles, lanes)) < 0.9
    rbits = reseed = seed_in = None
    if u.rounding == "stochastic" and u.random_source == "port":
        rbits = rng.integers(0, 1 << u.sr_bits, (cycles, lanes))
    elif u.rounding == "stochastic" and reseeds:
        reseed = np.zeros((cycles, lanes), bool)
        for k in range(lanes):
            reseed[rng.integers(0, cycles, reseeds), k] = True
        seed_in = rng.integers(1, 1 << u.lfsr_width, (cycles, lanes))
        seed_in[rng.random((cycles, lanes)) < 0.25] = 0
        seed_in[~reseed] = 0
    want = ref_sr_quantise(u, x, valid, rbits, reseed, seed_in)
    got = rtl_sr_quantise(u, x, valid, rbits, reseed, seed_in, sim)
    inputs = _inputs(u, x, valid, rbits, reseed, seed_in)
    return cosim.CosimReport.compare(
        "sr-quantise", typed, got.simulator, seed, {k: v.ravel() for k, v in inputs.items()},
        {k: v.ravel() for k, v in want.items()}, {k: v.ravel() for k, v in got.items()})
