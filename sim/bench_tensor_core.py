"""Co-simulation bench of ``tensor-core-dot`` (:class:`lowbit.hdl.tensor_core_dot.TensorCoreDot`).

Twins as in :mod:`lowbit.sim.bench_mac`: ``ref_tensor_core_dot(unit, a, b, c, sa, sb)`` is the
golden model, the unit's own :class:`~lowbit.models.tensor_core.Instruction` (``.dpa`` over the
instruction's K, which chains ``K / L`` steps through C); ``rtl_tensor_core_dot`` runs the
unit's Verilog under cocotb, one pass of all vectors per step of ``L`` products, feeding the
D that the hardware produced back in as the next step's C (the chaining the model does).

Stimulus (:func:`random_operands`): half of the rows hold values quantised from
N(0,1) x 2^U(-4,4) (saturating), the others uniformly random codes of the whole code space (so
NaN, Inf, subnormals and zeros appear); tf32 elements are FP32 patterns with the low 13 bits
zero (the instruction's input layout, ``tests/data/tensor_cores/README.md``). C: FP32 / FP16
values ``m * 2^e`` (``m`` uniform in (-2, 2), ``e`` in [-20, 20]), 15 % zeros, 2 % any code.
Block scales: E8M0 codes 117..136 (2^-10 .. 2^9) with 1 % any code (NaN 0xFF included);
UE4M3 codes 0x00..0x7F (0x7F is NaN, 0 a zero scale).
"""

import time

import numpy as np

from lowbit.hdl import catalog
from lowbit.hdl.shared_exp_adder import pack_terms
from lowbit.models import formats as _formats
from lowbit.models import tensor_core as _tc

from . import cosim
from .bench_mac import rtl_result
from .bench_shared_exp import random_terms

__all__ = ["random_operands", "ref_tensor_core_dot", "rtl_tensor_core_dot",
           "cosim_tensor_core_dot", "same_bits", "LANES", "VECTORS"]


#: Default number of unit instances side by side in one co-simulation.  The Verilator build
#: dominates a run (a Hopper FP8 unit, 32 products: about 46 s to build one lane, 4.5 s to
#: simulate 2,048 cycles on a loaded 2-core machine, measured for issue 15) and grows with the
#: lanes, while the simulation is per cycle; one lane keeps the build cheap.
LANES = 1

#: Default number of dot products of ``lowbit cosim tensor-core-dot``.
VECTORS = 2048


def same_bits(got, want, fmt):
    """Element-wise: equal bit patterns, or both NaN (``fmt`` the D format)."""
    got, want = np.asarray(got), np.asarray(want)
    nan_w = np.isnan(fmt.decode(want.astype(fmt.code_dtype)))
    nan_g = np.isnan(fmt.decode(got.astype(fmt.code_dtype)))
    return np.where(nan_w, nan_g, got == want)


def _elements(rng, fmt, V, K):
    if fmt is _tc.TF32:
        f19 = _formats.FloatFormat("tf32_19", 8, 10, 127, "ieee")
        return random_terms(rng, f19, (V, K)).astype(np.uint32) << 13
    return random_terms(rng, fmt, (V, K)).astype(fmt.code_dtype)


def random_operands(ins, V, rng):
    """``(a, b, c, scale_a, scale_b)`` for ``V`` random dot products of instruction ``ins``
    (over its K; the scales None without block scaling)."""
    K = ins.K
    a = _elements(rng, ins.a_format, V, K)
    b = _elements(rng, ins.b_format, V, K)
    cf = ins.cd_format
    cv = rng.uniform(-2, 2, V) * 2.0 ** rng.integers(-20, 21, V)
    cv[rng.random(V) < 0.15] = 0.0
    c = cf.encode(cv.astype(np.float32), saturate=True).astype(cf.code_dtype)
    anyc = rng.random(V) < 0.02
    c[anyc] = rng.integers(0, 1 << cf.bits, int(anyc.sum())).astype(cf.code_dtype)
    sa = sb = None
    if ins.block is not None:
        nb = K // ins.block
        if ins.scale_format is _tc.UE4M3:
            sa, sb = (rng.integers(0, 0x80, (V, nb)).astype(np.uint8) for _ in range(2))
        else:
            def e8m0():
                s = rng.integers(117, 137, (V, nb))
                anys = rng.random((V, nb)) < 0.01
                s[anys] = rng.integers(0, 256, int(anys.sum()))
                return s.astype(np.uint8)
            sa, sb = e8m0(), e8m0()
    return a, b, c, sa, sb


def ref_tensor_core_dot(unit, a, b, c, scale_a=None, scale_b=None):
    """Golden ``d`` (bit patterns) of ``unit`` for ``V`` dot products over the instruction's
    K: the model's ``instruction.dpa``."""
    return {"d": unit.instruction.dpa(a, b, c, scale_a, scale_b)}


def rtl_tensor_core_dot(unit, a, b, c, scale_a=None, scale_b=None, sim=None, lanes=LANES):
    """The same from ``unit``'s Verilog: ``K / L`` passes, each step's D the next one's C."""
    ins, L = unit.instruction, unit.L
    wa, wb = unit.element_bits
    ns = unit.scales_per_step
    d = np.asarray(c).astype(np.uint64)
    total = None
    for s in range(ins.K // L):
        sl = slice(s * L, (s + 1) * L)
        inputs = {"a": pack_terms(a[:, sl], wa), "b": pack_terms(b[:, sl], wb), "c": d}
        if ns:
            bsl = slice(s * ns, (s + 1) * ns)
            inputs["scale_a"] = pack_terms(scale_a[:, bsl], 8)
            inputs["scale_b"] = pack_terms(scale_b[:, bsl], 8)
        got = cosim.run_lanes(unit, inputs, ["d"], lanes=lanes, sim=sim)
        d = np.asarray(got["d"], dtype=np.uint64)
        if total is None:
            total = got
        else:                       # the run facts of all passes together
            total.cycles += got.cycles
            total.build_seconds += got.build_seconds
            total.sim_seconds += got.sim_seconds
    return rtl_result(total, d=d.astype(ins.cd_format.code_dtype))


def cosim_tensor_core_dot(params=None, vectors=None, seed=None, sim=None, *, lanes=LANES):
    """``lowbit cosim tensor-core-dot``: random dot products of the instruction's K against
    the model, bit for bit (the D codes equal, NaN included: the unit gives the model's NaN
    code).

    ``vectors`` counts unit operations as everywhere in :mod:`lowbit.sim.benches`: steps of
    ``L`` products (plus C); the bench checks ``ceil(vectors / (K / L))`` whole dot products of
    the instruction's K, each ``K / L`` steps chained through C (default :data:`VECTORS` dot
    products).  Stimulus: :func:`random_operands`.
    """
    t0 = time.perf_counter()
    unit_def = catalog.get_unit("tensor-core-dot")
    unit, resolved = unit_def.build(**(params or {}))
    typed = unit_def.typed(resolved)
    ins = unit.instruction
    steps = ins.K // unit.L
    V = VECTORS if vectors is None else -(-int(vectors) // steps)
    rng = np.random.default_rng(seed)
    a, b, c, sa, sb = random_operands(ins, V, rng)
    want = ref_tensor_core_dot(unit, a, b, c, sa, sb)
    got = rtl_tensor_core_dot(unit, a, b, c, sa, sb, sim, lanes)
    inputs = {"c": np.asarray(c).astype(np.uint64)}
    if sa is not None:
        inputs["scale_a0"] = sa[:, 0].astype(np.uint64)
        inputs["scale_b0"] = sb[:, 0].astype(np.uint64)
    return cosim.CosimReport.compare(
        "tensor-core-dot", typed, got.simulator, seed, inputs,
        {"d": want["d"].astype(np.uint64)}, {"d": got["d"].astype(np.uint64)},
        seconds=time.perf_counter() - t0,
        notes=[f"{ins.arch}:{ins.instruction} ({ins.algorithm}): {V} random dot products of "
               f"K={ins.K} ({steps} step(s) of L={unit.L} each, {V * steps} unit operations), "
               f"{lanes} lane(s), pipeline {unit.pipeline_stages}; build "
               f"{got.build_seconds:.1f} s, simulation {got.sim_seconds:.1f} s"])
