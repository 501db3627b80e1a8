"""``lowbit fpga``: board builds of the UART GEMM top level, and GEMMs run through it.

``lowbit fpga build --board ulx3s-85f|icebreaker --rows R --cols C --pe int8|e4m3_fp32 ...``
builds :class:`lowbit.fpga.gemm_top.GemmTop` for the board with amaranth-boards and the YoWASP
tools (:mod:`lowbit.fpga.boards`) into a build folder (``build/fpga/...`` by default; never
committed) and prints the utilisation and Fmax.

``lowbit fpga run --port /dev/ttyUSB0 --gemm M K N`` runs a random GEMM on a board over its
serial port (needs pyserial) with :class:`lowbit.fpga.host.GemmDevice` and checks it against
the golden GEMM; ``--simulated`` runs the same on the top level in Amaranth's simulator instead.

``--pe`` takes the PE names of ``lowbit simulate`` and ``lowbit generate systolic``
(:func:`lowbit.models.systolic.parse_pe`), INT and FP MAC PEs with operands of at most 8 bits.
"""

import sys
import time

import numpy as np

from lowbit.fpga import boards
from lowbit.fpga.gemm_top import GemmTop
from lowbit.fpga.host import GemmDevice, SimSerial
from lowbit.sim.bench_systolic import random_operands

from .errors import ToolFailure, UsageError
from .output import check_folder, check_output, write_json
from .table import print_table

__all__ = ["register"]


def _array_options(p):
    p.add_argument("--rows", type=int, default=4, help="array rows R (default 4)")
    p.add_argument("--cols", type=int, default=4, help="array columns C (default 4)")
    p.add_argument("--pe", default="int8",
                   help="processing element, a PE name (lowbit.models.systolic.parse_pe): int8 "
                        "(INT8 x INT8, 32-bit wrapping accumulator; default), int8_acc24_saturate, "
                        "e4m3_fp32, e5m2xe4m3_fp16_two_roundings, ... (operands of at most 8 "
                        "bits)")
    p.add_argument("--pe-stages", type=int, default=1, metavar="S",
                   help="pipelined PEs: PE depth in cycles (default 1; int 1..3, fp fused / "
                        "two_roundings 1..6; lowbit.hdl.systolic.pe_cut_points)")
    p.add_argument("--depth", type=int, default=None,
                   help="buffer rows (largest M of one run; default 512 ULX3S, 256 iCEBreaker, "
                        "16 with --simulated)")


def register(subparsers):
    p = subparsers.add_parser("fpga", help="board builds of the UART GEMM top level; run GEMMs "
                                           "on a board or its simulation")
    sub = p.add_subparsers(dest="fpga_command", metavar="ACTION")
    b = sub.add_parser("build", help="build the bitstream for a board, print utilisation and "
                                     "Fmax")
    b.add_argument("--board", required=True, choices=("ulx3s-85f", "icebreaker"),
                   help="ULX3S 85F (ECP5 LFE5U-85F, 25 MHz) or iCEBreaker (iCE40 UP5K, 12 MHz)")
    _array_options(b)
    b.add_argument("--baud", type=int, default=115200, help="UART baud rate (default 115200)")
    b.add_argument("--seed", type=int, default=1, help="nextpnr seed (default 1)")
    b.add_argument("--build-dir", default=None,
                   help="build folder (default build/fpga/BOARD-RxC-PE)")
    b.add_argument("--allow-timing-fail", action="store_true",
                   help="write the bitstream even if Fmax is below the design clock")
    b.add_argument("--clock-div", type=int, default=1,
                   help="run the design at the board clock divided by this (1..64, default 1)")
    b.add_argument("--dsp", default="auto", choices=("auto", "on", "off"),
                   help="multipliers in DSP blocks or LUTs (auto: DSPs if one per PE fits)")
    b.add_argument("--nice", type=int, default=10, help="niceness of the tools (default 10)")
    b.add_argument("--json", metavar="FILE", help="also write the figures as JSON ('-': stdout, "
                                                  "instead of the table)")
    b.set_defaults(func=_build)
    r = sub.add_parser("run", help="run a random GEMM on a board (--port) or on the simulated "
                                   "top level (--simulated) and check it against the golden GEMM")
    where = r.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial device of the board (needs pyserial)")
    where.add_argument("--simulated", action="store_true",
                       help="run the top level in Amaranth's simulator, UART at 4 cycles per bit")
    _array_options(r)
    r.add_argument("--baud", type=int, default=115200, help="--port: baud rate (default 115200)")
    r.add_argument("--gemm", nargs=3, type=int, default=[8, 8, 8], metavar=("M", "K", "N"),
                   help="GEMM C[M,N] = A[M,K] @ B[K,N] (default 8 8 8; each 1..4096)")
    r.add_argument("--seed", type=int, default=0, help="operand seed (default 0)")
    r.add_argument("--json", metavar="FILE", help="also write the result as JSON ('-': stdout)")
    r.set_defaults(func=_run)

    def no_action(args):
        p.print_usage()
        raise UsageError("missing action: build or run")
    p.set_defaults(func=no_action)


def _build(args):
    depth = f"-s{args.pe_stages}" if args.pe_stages != 1 else ""
    build_dir = (args.build_dir
                 or f"build/fpga/{args.board}-{args.rows}x{args.cols}-{args.pe}{depth}")
    check_folder("--build-dir", build_dir)
    if args.json:
        check_output("--json", args.json)

    def started():
        print(f"building {args.rows}x{args.cols} {args.pe} for {args.board} in {build_dir} "
              f"(Yosys + nextpnr, YoWASP; this takes minutes)...", file=sys.stderr)
    failed = None
    try:
        res = boards.build(args.board, args.rows, args.cols, args.pe, build_dir=build_dir,
                           depth=args.depth, baud=args.baud, seed=args.seed,
                           allow_timing_fail=args.allow_timing_fail, dsp=args.dsp,
                           nice=args.nice, clock_div=args.clock_div, on_start=started,
                           pe_stages=args.pe_stages)
    except boards.BuildError as e:
        res = getattr(e, "result", None)
        failed = e
        if res is None:
            raise ToolFailure(str(e)) from None
    if args.json:
        write_json(args.json, res.to_dict())
    if args.json != "-":
        print_table([("quantity", "value")] + res.rows(), align="ll")
    if failed is not None:
        if res.fmax_mhz is not None and not res.timing_met:
            need = -(-res.clock_mhz * res.params.get("clock_div", 1) // res.fmax_mhz)
            print(f"lowbit fpga build: timing not met: Fmax {res.fmax_mhz:.2f} MHz < design "
                  f"clock {res.clock_mhz:g} MHz; no bitstream written (--clock-div {int(need)} "
                  f"would run it at a clock it meets; --allow-timing-fail writes it anyway, but "
                  f"the design would not run reliably)", file=sys.stderr)
            return 1
        if getattr(failed, "overfull", None):
            print(f"lowbit fpga build: {failed} (fewer --rows/--cols fit)", file=sys.stderr)
            return 1
        first, _, rest = str(failed).partition("\n")
        raise ToolFailure(first + (" " + rest.strip().splitlines()[0] if rest.strip() else ""))
    return 0


def _run(args):
    for name, v in zip("MKN", args.gemm):
        if not 1 <= v <= 4096:
            raise ValueError(f"--gemm {name} must be an integer from 1 to 4096, not {v}")
    if args.json:
        check_output("--json", args.json)
    if args.simulated:
        top = GemmTop(args.rows, args.cols, args.pe, depth=args.depth or 16, divisor=4,
                      pe_stages=args.pe_stages)
        link = SimSerial(top)
    else:
        link = args.port
    try:
        dev = GemmDevice(link, baud=args.baud)
    except RuntimeError as e:          # pyserial missing
        raise UsageError(str(e)) from None
    M, K, N = args.gemm
    rng = np.random.default_rng(args.seed)
    A, B = random_operands(dev.spec, M, K, N, rng, specials=0.01)
    t0 = time.perf_counter()
    got = dev.gemm(A, B)
    dt = time.perf_counter() - t0
    want = dev.golden(A, B)
    bad = int(np.sum(got != want))
    cycles = sum(c for _, _, c in dev.runs)
    doc = {"device": dev.params, "gemm": [M, K, N], "runs": len(dev.runs),
           "array_cycles": cycles, "seconds": dt, "outputs_differing": bad,
           "bit_exact": bad == 0, "simulated_clock_cycles": link.cycles if args.simulated else None}
    if args.json:
        write_json(args.json, doc)
    if args.json != "-":
        print(f"device: {' '.join(f'{k}={v}' for k, v in dev.params.items())}")
        print(f"GEMM M={M} K={K} N={N}: {len(dev.runs)} runs, {cycles} array cycles "
              f"(device-measured), {dt:.1f} s wall" + (f", {link.cycles} simulated clock cycles"
                                                         if args.simulated else ""))
        print(f"bit-exact with the golden GEMM: {'yes' if bad == 0 else f'NO ({bad} outputs differ)'}")
    return 0 if bad == 0 else 1
