"""Co-simulation of ``tensor-core-dot`` beyond the suite: shipped vectors of every preset at any
pipeline depth, >= 100,000 random dot products per family and the exhaustive FP4 x FP4
products, each bit-exact (Verilator, cocotb), with counts and build / simulation times.

    python benchmarks/tensor_core_cosim.py shipped [--pipeline P ...] [--case CASE ...]
    python benchmarks/tensor_core_cosim.py random [--vectors N] [--case CASE ...] [--lanes N]
    python benchmarks/tensor_core_cosim.py fp4 [--pipeline P]

``shipped``: the 2,048 vectors of each case of ``tests/data/tensor_cores/`` (default: all 35),
compared as the model tests compare them (equal bits or both NaN), and with the model (equal
bits).  ``random``: ``--vectors`` (default 100,000) dot products of the instruction's K from
:func:`lowbit.sim.bench_tensor_core.random_operands` per case (default: one instruction of
each family) against the model.  ``fp4``: every one of the 256 E2M1 x E2M1 code pairs at every
one of the 64 positions of the Blackwell ``kind::mxf4nvf4`` (NVFP4, UE4M3 scales) and
``kind::mxf4`` (MXFP4, E8M0) steps and of the ``kind::f8f6f4`` e2m1 x e2m1 T-FDPA step (the
other products random, random scales and C), against the model.

Builds are cached (``$LOWBIT_CACHE/cosim``); the first run of a unit pays its build.  Exit
status 1 on any mismatch.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lowbit.hdl.tensor_core_dot import TensorCoreDot
from lowbit.sim import bench_tensor_core as bt

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "tensor_cores"

#: One instruction per family (the algorithm names of lowbit.models.tensor_core).
FAMILIES = {
    "T-FDPA": "hopper_wgmma_e4m3_f32",
    "ST-FDPA": "blackwell_tcgen05_mxf8_e4m3_f32",
    "GST-FDPA": "blackwell_tcgen05_nvf4_f32",
    "GTR-FDPA": "cdna3_mfma_fp8_f32",
    "TR-FDPA": "cdna3_mfma_f16_f32",
    "E-FDPA": "cdna1_mfma_f16_f32",
    "CDNA2-FTZ": "cdna2_mfma_bf16_1k_f32",
}

FP4_CASES = ("blackwell_tcgen05_nvf4_f32", "blackwell_tcgen05_mxf4_f32",
             "blackwell_tcgen05_e2m1_f32")


def _cases():
    return json.loads((DATA / "cases.json").read_text())


def _unit(case, pipeline):
    cs = _cases()[case]
    return TensorCoreDot(f"{cs['arch']}:{cs['instruction']}", pipeline_stages=pipeline)


def _line(kind, case, pipeline, ok, total, got, t0):
    print(f"{kind:8s} {case:40s} p{pipeline} {ok:>7d}/{total:<7d} "
          f"build {got.build_seconds:6.1f} s  sim {got.sim_seconds:6.1f} s  "
          f"total {time.perf_counter() - t0:6.1f} s", flush=True)
    return ok == total


def shipped(cases, pipelines, lanes):
    good = True
    with np.load(DATA / "tensor_core_vectors_seed11.npz") as z:
        for case in cases:
            for p in pipelines:
                t0 = time.perf_counter()
                unit = _unit(case, p)
                ins = unit.instruction
                a, b, c = z[f"{case}_a"], z[f"{case}_b"], z[f"{case}_c"]
                sa = z[f"{case}_sa"] if ins.block else None
                sb = z[f"{case}_sb"] if ins.block else None
                got = bt.rtl_tensor_core_dot(unit, a, b, c, sa, sb, lanes=lanes)
                ok = bt.same_bits(got["d"], z[f"{case}_d"], ins.cd_format) & \
                    (got["d"] == ins.dpa(a, b, c, sa, sb))
                good &= _line("shipped", case, p, int(ok.sum()), ok.size, got, t0)
    return good


def random_vectors(cases, vectors, pipeline, lanes, seed):
    good = True
    for case in cases:
        t0 = time.perf_counter()
        unit = _unit(case, pipeline)
        ins = unit.instruction
        a, b, c, sa, sb = bt.random_operands(ins, vectors, np.random.default_rng(seed))
        want = ins.dpa(a, b, c, sa, sb)
        got = bt.rtl_tensor_core_dot(unit, a, b, c, sa, sb, lanes=lanes)
        ok = got["d"] == want
        good &= _line("random", case, pipeline, int(ok.sum()), ok.size, got, t0)
    return good


def fp4(pipeline, lanes, seed):
    good = True
    pa, pb = np.divmod(np.arange(256), 16)          # every E2M1 x E2M1 code pair
    for case in FP4_CASES:
        t0 = time.perf_counter()
        unit = _unit(case, pipeline)
        ins = unit.instruction
        rng = np.random.default_rng(seed)
        V = 256 * ins.K
        a, b, c, sa, sb = bt.random_operands(ins, V, rng)
        pos = np.repeat(np.arange(ins.K), 256)
        a[np.arange(V), pos] = np.tile(pa, ins.K)
        b[np.arange(V), pos] = np.tile(pb, ins.K)
        want = ins.dpa(a, b, c, sa, sb)
        got = bt.rtl_tensor_core_dot(unit, a, b, c, sa, sb, lanes=lanes)
        ok = got["d"] == want
        good &= _line("fp4", case, pipeline, int(ok.sum()), ok.size, got, t0)
    return good


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("shipped", "random", "fp4"))
    ap.add_argument("--case", action="append", help="case name of cases.json (repeatable)")
    ap.add_argument("--pipeline", type=int, action="append",
                    help="pipeline depth(s), 0..4 (default 0)")
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--lanes", type=int, default=bt.LANES)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    pipelines = args.pipeline or [0]
    if args.what == "shipped":
        ok = shipped(args.case or list(_cases()), pipelines, args.lanes)
    elif args.what == "random":
        ok = all(random_vectors(args.case or list(FAMILIES.values()), args.vectors, p, args.lanes,
                        args.seed) for p in pipelines)
    else:
        ok = all(fp4(p, args.lanes, args.seed) for p in pipelines)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
