"""Co-simulation benches of the shared-exponent units: ``shared-exp-adder``, ``mx-dot`` and
``bfp-adder``.

Twins as in :mod:`lowbit.sim.bench_mac`: ``ref_x(unit, **stimulus)`` (golden model,
:func:`lowbit.models.shared_exp.shared_exp_add` with the unit's
:attr:`~lowbit.hdl.shared_exp_adder.SharedExpAdder.config`) and ``rtl_x(unit, **stimulus)``
(the unit's Verilog under cocotb), and the bench ``cosim_x(params, vectors, seed, sim)``.

Stimulus: :func:`random_terms` (half of the operands quantised from N(0,1) x 2^U(-4,4), the
rest uniform codes, NaN/Inf included); adder accumulators on the unit's result grid
(:func:`se_round`, what a chained unit feeds back), 20 % zeros. The block units run per-lane
block sequences, ``first`` about every 4 blocks, against the chained model (one
``shared_exp_add`` step per block); MX blocks are half random codes and half the quantiser's
output (:func:`lowbit.models.mx.quantize`), plus the directed cases of :func:`directed_blocks`.
"""

import time

import numpy as np

from lowbit.hdl import catalog
from lowbit.hdl.shared_exp_adder import pack_terms
from lowbit.models import formats as _formats
from lowbit.models import mx as _mx
from lowbit.models import shared_exp as _se

from . import cosim
from .bench_mac import rtl_result

__all__ = ["random_terms", "se_round", "directed_blocks", "ref_shared_exp_adder",
           "rtl_shared_exp_adder", "cosim_shared_exp_adder", "ref_blocks", "rtl_blocks",
           "cosim_mx_dot", "cosim_bfp_adder"]


def random_terms(rng, fmt, shape, realistic=0.5):
    """Random operand codes: a ``realistic`` share drawn by quantising N(0,1) values scaled
    by 2^U(-4,4), the rest uniformly random codes (NaN/Inf included)."""
    codes = rng.integers(0, 1 << fmt.bits, size=shape)
    if isinstance(fmt, _formats.FloatFormat):
        x = (rng.standard_normal(shape) * 2.0 ** rng.integers(-4, 5, shape)).astype(np.float32)
        q = fmt.encode(x, saturate=True).astype(np.int64)
        pick = rng.random(shape[:-1] + (1,)) < realistic
        codes = np.where(pick, q, codes)
    return codes


def se_round(acc, cfg):
    """Accumulator stimuli on the unit's result grid (what a chained unit feeds back)."""
    return _se.add_round(acc.astype(np.float64), np.zeros(acc.shape), cfg.norm_frac_bits,
                         cfg.norm_rounding).astype(np.float32)


def directed_blocks(fmt, k):
    """The directed MX cases: list of (a codes, b codes, a_scale, b_scale, name)."""
    z = np.zeros(k, dtype=np.int64)
    if isinstance(fmt, _formats.IntFormat):
        mx_, sub, one = 0x7F, 0x01, 0x40
        nan = inf = None
        neg = 0x80
    else:
        mx_ = fmt.max_code
        sub = 1
        one = fmt.encode(np.array([1.0])).astype(np.int64)[0]
        nan = fmt.nan_code
        inf = fmt.inf_code
        neg = 1 << (fmt.bits - 1)
    alt = np.where(np.arange(k) % 2 == 0, one, one | neg)
    cases = [
        (z + mx_, z + mx_, 127, 127, "every element at max"),
        (z + (mx_ | neg), z + mx_, 127, 127, "every element at -max"),
        (z + sub, z + sub, 127, 127, "all smallest subnormal"),
        (np.arange(k) % (1 << (fmt.bits - 1)), z + sub, 127, 127, "ramp x subnormal"),
        (alt, z + one, 127, 127, "exact cancellation"),
        (z, z, 127, 127, "all-zero block"),
        (z + one, z + one, 0xFF, 127, "NaN scale 0xFF"),
        (z + mx_, z + mx_, 0x00, 0x00, "scales 2^-127 x 2^-127"),
        (z + mx_, z + mx_, 0xFE, 0xFE, "scales 2^127 x 2^127 (overflow)"),
        (z + mx_, z + one, 0xFE, 0x00, "scales at both ends"),
    ]
    if nan is not None:
        a = z + one
        a[1 % k] = nan
        cases.append((a, z + one, 127, 127, "NaN element"))
    if inf is not None:
        a = z + one
        a[1 % k] = inf
        cases.append((a, z + one, 127, 127, "Inf element"))
        a = a.copy()
        a[2 % k] = inf | neg
        cases.append((a, z + one, 127, 127, "+Inf and -Inf elements"))
        b = z + one
        b[1 % k] = 0
        cases.append((np.where(np.arange(k) == 1 % k, inf, one), b, 127, 127, "Inf x 0"))
    return cases


def _build(name, params):
    unit = catalog.get_unit(name)
    component, resolved = unit.build(**(params or {}))
    return component, unit.typed(resolved)


# -- shared-exp-adder ------------------------------------------------------------------------

def ref_shared_exp_adder(unit, a, b, acc):
    """Golden ``o`` (FP32 codes) of :class:`~lowbit.hdl.shared_exp_adder.SharedExpAdder`
    ``unit`` for term codes ``a``, ``b`` (``(V, n)``; ``b`` None without a ``b`` port) and FP32
    accumulators ``acc`` (float32, ``(V,)``)."""
    fa, fb = unit.a_format, unit.b_format
    o = _se.fp32_codes(_se.shared_exp_add(
        a.astype(fa.code_dtype), None if b is None else b.astype(fb.code_dtype), fa, fb,
        unit.config, acc=acc.astype(np.float64), int_frac_bits=unit.int_frac_bits))
    return {"o": o.astype(np.uint64)}


def rtl_shared_exp_adder(unit, a, b, acc, sim=None, lanes=32):
    """The same from ``unit``'s Verilog."""
    inputs = {"a": pack_terms(a, unit.a_format.bits),
              "acc": acc.view(np.uint32).astype(np.uint64)}
    if b is not None:
        inputs["b"] = pack_terms(b, unit.b_format.bits)
    got = cosim.run_lanes(unit, inputs, ["o"], lanes=lanes, sim=sim)
    return rtl_result(got, o=got["o"])


def cosim_shared_exp_adder(params=None, vectors=None, seed=None, sim=None, *, lanes=32):
    """``lowbit cosim shared-exp-adder``: ``vectors`` (default 10,000) random steps of ``n``
    terms and an accumulator."""
    t0 = time.perf_counter()
    unit, typed = _build("shared-exp-adder", params)
    rng = np.random.default_rng(seed)
    V = int(vectors or 10000)
    cfg, fa, fb = unit.config, unit.a_format, unit.b_format
    A = random_terms(rng, fa, (V, cfg.n))
    B = random_terms(rng, fb, (V, cfg.n)) if fb is not None else None
    acc = (rng.standard_normal(V) * 2.0 ** rng.integers(-30, 30, V)).astype(np.float32)
    acc = se_round(acc, cfg)
    acc[rng.random(V) < 0.2] = 0
    want = ref_shared_exp_adder(unit, A, B, acc)
    got = rtl_shared_exp_adder(unit, A, B, acc, sim, lanes)
    return cosim.CosimReport.compare(
        "shared-exp-adder", typed, got.simulator, seed,
        {"acc": acc.view(np.uint32).astype(np.uint64)}, want, got,
        seconds=time.perf_counter() - t0,
        notes=[f"{V} random steps of {cfg.n} terms + accumulator, {lanes} lanes"])


# -- block sequences (mx-dot, bfp-adder) -------------------------------------------------------

def ref_blocks(unit, A, B, first, scales, scale_exp, scale_nan=None):
    """Golden ``o`` of an :class:`~lowbit.hdl.shared_exp_adder.AccumulatingDot` ``unit`` for
    per-lane block sequences: ``A``, ``B`` element codes ``(cycles, lanes, n)``, ``first``
    ``(cycles, lanes)``, the scale ports' values ``scales`` (ignored here; the model takes
    ``scale_exp``, the block's exponent, and ``scale_nan``). One ``shared_exp_add`` step per
    block, restarting from +0 on ``first``."""
    cfg, fa, fb = unit.config, unit.a_format, unit.b_format
    C, L, n = A.shape
    want = np.zeros((C, L), dtype=np.uint32)
    acc = np.zeros(L)
    for c in range(C):
        acc = np.where(first[c] == 1, 0.0, acc)
        r = _se.shared_exp_add(A[c].astype(fa.code_dtype), B[c].astype(fb.code_dtype), fa, fb,
                               cfg, acc=acc, scale_exp=scale_exp[c],
                               int_frac_bits=unit.int_frac_bits).astype(np.float64)
        if scale_nan is not None:
            r = np.where(scale_nan[c], np.nan, r)
        acc = r
        want[c] = _se.fp32_codes(r)
    return {"o": want.astype(np.uint64)}


def rtl_blocks(unit, A, B, first, scales, scale_exp=None, scale_nan=None, sim=None):
    """The same from ``unit``'s Verilog: ``scales`` maps the scale ports (``a_scale``/``b_scale``
    or ``a_exp``/``b_exp``) to their ``(cycles, lanes)`` values; one lane per column."""
    C, L, n = A.shape
    inputs = {"a": pack_terms(A.reshape(C * L, n), unit.a_format.bits).reshape(C, L),
              "b": pack_terms(B.reshape(C * L, n), unit.b_format.bits).reshape(C, L),
              "valid": np.ones((C, L), dtype=np.uint64), "first": first.astype(np.uint64)}
    inputs.update(scales)
    got = cosim.run_lanes(unit, inputs, ["o"], lanes=L, sim=sim)
    return rtl_result(got, o=np.asarray(got["o"])[:C])


def _cosim_blocks(name, unit, typed, A, B, first, scales, scale_exp, scale_nan, sim, seed, t0,
                  notes):
    want = ref_blocks(unit, A, B, first, scales, scale_exp, scale_nan)
    got = rtl_blocks(unit, A, B, first, scales, sim=sim)
    C, L, n = A.shape
    flat = {"a": A.reshape(C * L, n), "b": B.reshape(C * L, n), "first": first.reshape(-1),
            **{k: np.asarray(v).reshape(-1) for k, v in scales.items()}}
    return cosim.CosimReport.compare(
        name, typed, got.simulator, seed, flat, {"o": want["o"].reshape(-1)},
        {"o": np.asarray(got["o"]).reshape(-1)}, seconds=time.perf_counter() - t0, notes=notes)


def cosim_mx_dot(params=None, vectors=None, seed=None, sim=None, *, lanes=32):
    """``lowbit cosim mx-dot``: directed cases, then random block sequences (per-lane
    accumulation, ``first`` about every 4 blocks) against the chained model; ``vectors``
    (default 10,000) blocks."""
    t0 = time.perf_counter()
    unit, typed = _build("mx-dot", params)
    rng = np.random.default_rng(seed)
    fa, fb = unit.a_format, unit.b_format
    k = unit.config.n
    V = int(vectors or 10000)
    C = -(-V // lanes)
    A = random_terms(rng, fa, (C, lanes, k))
    B = random_terms(rng, fb, (C, lanes, k))
    # realistic blocks from the quantiser for about half of them
    x = rng.standard_normal((C, lanes, k)) * 2.0 ** rng.integers(-20, 20, (C, lanes, 1))
    y = rng.standard_normal((C, lanes, k)) * 2.0 ** rng.integers(-20, 20, (C, lanes, 1))
    qa, sa = _mx.quantize(x.astype(np.float32), fa.name)
    qb, sb = _mx.quantize(y.astype(np.float32), fb.name)
    real = rng.random((C, lanes, 1)) < 0.5
    A = np.where(real, qa.astype(np.int64), A)
    B = np.where(real, qb.astype(np.int64), B)
    SA = np.where(real[..., 0], sa[..., 0], rng.integers(0, 256, (C, lanes)))
    SB = np.where(real[..., 0], sb[..., 0], rng.integers(0, 256, (C, lanes)))
    first = (rng.random((C, lanes)) < 0.25).astype(np.int64)
    first[0] = 1
    cases = directed_blocks(fa, k) if fa == fb else []
    for j, (a, b, s1, s2, _) in enumerate(cases):
        c, l = divmod(j, lanes)
        A[c, l], B[c, l], SA[c, l], SB[c, l] = a, b, s1, s2
        first[c, l] = 1
    scale_exp = (SA - 127) + (SB - 127)
    nan = (SA == 0xFF) | (SB == 0xFF)
    return _cosim_blocks("mx-dot", unit, typed, A, B, first,
                         {"a_scale": SA.astype(np.uint64), "b_scale": SB.astype(np.uint64)},
                         scale_exp, nan, sim, seed, t0,
                         [f"{C * lanes} blocks of k={k} ({len(cases)} directed: "
                          + "; ".join(c[4] for c in cases) + f"), {lanes} lanes"])


def cosim_bfp_adder(params=None, vectors=None, seed=None, sim=None, *, lanes=32):
    """``lowbit cosim bfp-adder``: random mantissa blocks and exponents, per-lane sequences;
    ``vectors`` (default 10,000) blocks."""
    t0 = time.perf_counter()
    unit, typed = _build("bfp-adder", params)
    rng = np.random.default_rng(seed)
    fmt = unit.a_format
    n = unit.config.n
    V = int(vectors or 10000)
    C = -(-V // lanes)
    A = rng.integers(0, 1 << fmt.bits, (C, lanes, n))
    B = rng.integers(0, 1 << fmt.bits, (C, lanes, n))
    w = unit.exp_bits
    lim = 1 << (w - 1)
    EA = rng.integers(-lim, lim, (C, lanes))
    EB = rng.integers(-lim, lim, (C, lanes))
    near = rng.random((C, lanes)) < 0.7                      # mostly similar exponents
    EA = np.where(near, rng.integers(-4, 5, (C, lanes)), EA)
    EB = np.where(near, rng.integers(-4, 5, (C, lanes)), EB)
    first = (rng.random((C, lanes)) < 0.25).astype(np.int64)
    first[0] = 1
    return _cosim_blocks("bfp-adder", unit, typed, A, B, first,
                         {"a_exp": EA & ((1 << w) - 1), "b_exp": EB & ((1 << w) - 1)},
                         EA + EB, None, sim, seed, t0,
                         [f"{C * lanes} blocks of n={n}, {lanes} lanes"])
