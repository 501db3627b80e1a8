"""``lowbit compare``: the FP-vs-INT datapath cost report (see :mod:`lowbit.sim.compare`)."""

import json
import os
import sys
import time

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lowbit.sim import compare as cmp
from lowbit.sim import compare_tensor_cores as tcc
from lowbit.sim.compare import DEFAULT_UNITS

from .cmd_synth import ENERGY_VIEWS
from .errors import UsageError
from .output import STDOUT, check_output, write_text
from .table import print_table

__all__ = ["register"]


def register(sub):
    keys = ", ".join(u.key for u in DEFAULT_UNITS)
    p = sub.add_parser(
        "compare", help="FP-vs-INT datapath cost report (synthesis of generated units)",
        description="Generate and synthesise INT8, FP8 (E4M3/E5M2 with FP16, FP32 and exact "
                    "accumulators), MXFP8/MXINT8 and OverQ units; print area, flip-flops, logic "
                    "depth and energy per MAC ((a) gate-count model, (b) gate-level toggles) as "
                    "ratios to INT8, write a PNG plot, and compare with "
                    "the published 50-180% finding. Results are cached.")
    p.add_argument("--units", default=None, metavar="LIST",
                   help=f"comma-separated subset of: {keys} (default all)")
    p.add_argument("--target", choices=["generic", "ice40", "ecp5"], default="generic",
                   help="add FPGA place-and-route columns (LUTs, carry, DSP, Fmax)")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="PNG output path (default lowbit-compare.png, with --tensor-cores "
                        "lowbit-compare-tensor-cores.png; '' for none)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the results as JSON to FILE ('-': standard output, instead "
                        "of the table)")
    p.add_argument("--jobs", type=int, default=2, help="synthesis runs in parallel (1..16)")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    p.add_argument("--node-scale", type=float, default=1.0,
                   help="energy scale factor for another node (1 = 45 nm)")
    p.add_argument("--vdd", type=float, default=0.9, help="supply voltage in V (0.3..1.5)")
    p.add_argument("--freq", type=float, default=100.0, help="FPGA clock constraint in MHz")
    p.add_argument("--energy", choices=ENERGY_VIEWS, default="both",
                   help="energy per MAC from (a) the gate-count model (gates), (b) gate-level "
                        "toggles on uniform random operands (toggles: a few seconds per unit, "
                        "cached), or both (default); the same choices as `lowbit synth --energy`")
    p.add_argument("--mx-k", type=int, default=8,
                   help="block length of the MX dot units (default 8; the MX formats use 32, "
                        "which takes several CPU-minutes per unit to synthesise)")
    p.add_argument("--tensor-cores", action="store_true",
                   help="instead: the tensor-core report, each instruction family (Hopper FP8 "
                        "F=13 vs Blackwell FP8 F=25, MXFP8, MXFP4, NVFP4, CDNA3 FP8, exact sum) "
                        "beside an INT8 dot product of the same length L: area, flip-flops, "
                        "depth, energy per MAC, and the FP32-ulp error each adds on random and "
                        "real tensors (--families, --tc-pipeline, --datasets)")
    p.add_argument("--families", default=None, metavar="LIST",
                   help="with --tensor-cores: comma-separated subset of "
                        f"{', '.join(f.key for f in tcc.FAMILIES)} (default all)")
    p.add_argument("--tc-pipeline", type=int, default=tcc.DEFAULT_PIPELINE,
                   help=f"with --tensor-cores: pipeline registers of every unit, 0..2 (default "
                        f"{tcc.DEFAULT_PIPELINE})")
    p.add_argument("--datasets", default=None, metavar="LIST",
                   help=f"with --tensor-cores: error data sets among {', '.join(tcc.DATASETS)} "
                        f"(default all; h100 needs the repository's tests/data)")
    p.set_defaults(func=run)


def _list(option, value, known):
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise UsageError(f"{option} needs a comma-separated list of {', '.join(known)}, not "
                         f"{value!r}")
    for v in items:
        if v not in known:
            raise UsageError(f"{option} must be among {', '.join(known)}, not {v!r}")
    return items


def run_tensor_cores(args):
    """``lowbit compare --tensor-cores`` (:mod:`lowbit.sim.compare_tensor_cores`)."""
    if args.units is not None or args.target != "generic" or args.mx_k != 8:
        raise UsageError("--tensor-cores takes neither --units, --target nor --mx-k "
                         "(use --families)")
    if not 0 <= args.tc_pipeline <= 2:
        raise UsageError(f"--tc-pipeline must be an integer from 0 to 2, not {args.tc_pipeline}")
    fams = None if args.families is None else _list(
        "--families", args.families, [f.key for f in tcc.FAMILIES])
    names = tcc.default_datasets() if args.datasets is None else _list(
        "--datasets", args.datasets, list(tcc.DATASETS))
    start = time.perf_counter()
    data = tcc.datasets(names)

    def progress(label, done, total):
        print(f"[{done}/{total}] synthesised {label}", file=sys.stderr, flush=True)

    rows = tcc.compare_tensor_cores(fams, pipeline_stages=args.tc_pipeline,
                                    use_cache=not args.no_cache, jobs=args.jobs,
                                    progress=progress, node_scale=args.node_scale,
                                    vdd=args.vdd, toggles=args.energy != "gates")
    print("computing the errors (bit-exact models)", file=sys.stderr, flush=True)
    errors = tcc.numerical_errors(fams, data)
    elapsed = time.perf_counter() - start
    report = sys.stderr if args.json == STDOUT else sys.stdout
    views = {"gates": "(a) gate-count model",
             "toggles": "(b) gate-level toggles (" + tcc.TC_STIMULUS + ")"}
    shown = [views[v] for v in ("gates", "toggles") if args.energy in (v, "both")]
    print_table(tcc.cost_table(rows, fams, gates=args.energy != "toggles"),
                f"Tensor-core step per MAC (one step = L MACs), {args.tc_pipeline} pipeline "
                f"stages, synthesised with Yosys (generic); ratios to the INT8 dot product of "
                f"the same L; energy at 45 nm x {args.node_scale:g}, {args.vdd:g} V: "
                + "; ".join(shown), file=report)
    print_table(tcc.error_table(errors, data, fams),
                "Error against the exact dot product of the quantised inputs, in ulps of FP32 "
                "(bit-exact models, the instruction chained along K, no FP32 promotion unless "
                "stated); "
                + "; ".join(f"{k}: {v[2]}" for k, v in data.items()), file=report)
    cached = sum(r.generic.from_cache for r in rows.values())
    print(f"\n{len(rows)} units, {cached} generic results from the cache, {elapsed:.1f} s",
          file=report)
    if args.plot:
        tcc.plot(rows, errors, data, args.plot, fams)
        print(f"plot: {os.path.abspath(args.plot)}", file=report)
    if args.json is not None:
        write_text(args.json, json.dumps(tcc.to_json(rows, errors, data), indent=2) + "\n")
        if args.json != STDOUT:
            print(f"json: {os.path.abspath(args.json)}", file=report)
    return 0


def run(args):
    if args.node_scale <= 0:
        raise ValueError(f"--node-scale must be > 0, not {args.node_scale}")
    if not 0.3 <= args.vdd <= 1.5:
        raise ValueError(f"--vdd must be in 0.3..1.5, not {args.vdd}")
    if not 1 <= args.jobs <= 16:
        raise UsageError(f"--jobs must be an integer from 1 to 16, not {args.jobs}")
    if args.plot is None:
        args.plot = "lowbit-compare-tensor-cores.png" if args.tensor_cores else \
            "lowbit-compare.png"
    if args.plot:
        check_output("--plot", args.plot, stdout=False, suffix=".png")
    if args.json is not None:
        check_output("--json", args.json)
    if args.tensor_cores:
        return run_tensor_cores(args)
    if args.families is not None or args.datasets is not None:
        raise UsageError("--families and --datasets need --tensor-cores")
    units = None
    if args.units is not None:
        units = [u.strip() for u in args.units.split(",")]
        if not all(units):
            raise UsageError(f"--units needs a comma-separated list of unit keys "
                             f"({', '.join(u.key for u in DEFAULT_UNITS)}), not {args.units!r}")
    start = time.perf_counter()
    tty = sys.stderr.isatty()
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  disable=not tty, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task("generating Verilog", total=None)

        def progress(label, done, total):
            if tty:
                bar.update(task, total=total, completed=done, description=f"synthesised {label}")
            else:
                print(f"[{done}/{total}] synthesised {label}", file=sys.stderr, flush=True)

        rows = cmp.compare(units, args.target, use_cache=not args.no_cache, jobs=args.jobs,
                           progress=progress, node_scale=args.node_scale, vdd=args.vdd,
                           freq_mhz=args.freq, mx_k=args.mx_k, toggles=args.energy != "gates")
    elapsed = time.perf_counter() - start
    # with --json - the JSON is standard output and the report goes to stderr
    report = sys.stderr if args.json == STDOUT else sys.stdout
    target = "" if args.target == "generic" else f" + {args.target}"
    views = {"gates": "(a) gate-count model",
             "toggles": "(b) gate-level toggles, uniform random operands, zero delay (no glitches)"}
    shown = [views[v] for v in ("gates", "toggles") if args.energy in (v, "both")]
    print_table(cmp.rows_table(rows, gates=args.energy != "toggles"),
                f"Cost per multiply-accumulate, synthesised with Yosys (generic{target}); "
                f"energy at 45 nm x {args.node_scale:g}, {args.vdd:g} V: " + "; ".join(shown),
                file=report)
    print(cmp.anchor_statement(rows), file=report)
    cached = sum(r.generic.from_cache for r in rows)
    print(f"\n{len(rows)} units, {cached} generic results from the cache, {elapsed:.1f} s",
          file=report)
    if args.plot:
        cmp.plot(rows, args.plot)
        print(f"plot: {os.path.abspath(args.plot)}", file=report)
    if args.json is not None:
        write_text(args.json, cmp.to_json(rows, args.target) + "\n")
        if args.json != STDOUT:
            print(f"json: {os.path.abspath(args.json)}", file=report)
    return 0
