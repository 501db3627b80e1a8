"""``lowbit fpga``: board builds of the UART GEMM top level, and GEMMs run through it.

``lowbit fpga build --board ulx3s-85f|icebreaker --rows R --cols C --pe int8|fp8 ...`` builds
:class:`lowbit.fpga.gemm_top.GemmTop` for the board with amaranth-boards and the YoWASP tools
(:mod:`lowbit.fpga.boards`) into a build folder (``build/fpga/...`` by default; never
committed) and prints the utilisation and Fmax.

``lowbit fpga run --port /dev/ttyUSB0 --m M --k K --n N`` runs a random GEMM on a board over
its serial port (needs pyserial) with :class:`lowbit.fpga.host.GemmDevice` and checks it against
the golden GEMM; ``--sim`` runs the same on the top level in Amaranth's simulator instead.
"""

import json
import sys
import time

import numpy as np

from lowbit.fpga import boards
from lowbit.fpga.gemm_top import GemmTop
from lowbit.fpga.host import GemmDevice, SimSerial
from lowbit.sim.bench_systolic import random_operands

from .errors import UsageError
from .table import print_table

__all__ = ["register"]

_PES = {"int8": "int", "int": "int", "fp8": "fp", "fp": "fp"}


def _array_options(p):
    p.add_argument("--rows", type=int, default=4, help="array rows R (default 4)")
    p.add_argument("--cols", type=int, default=4, help="array columns C (default 4)")
    p.add_argument("--pe", default="int8", choices=sorted(_PES),
                   help="int8: INT MAC PEs (INT8 x INT8, 32-bit accumulator by default); "
                        "fp8: FP MAC PEs (E4M3 x E4M3 -> FP32 by default)")
    p.add_argument("--a", dest="a_format", default=None,
                   help="streamed operand format, at most 8 bits (default int8 / e4m3)")
    p.add_argument("--b", dest="b_format", default=None,
                   help="weight format, at most 8 bits (default int8 / e4m3)")
    p.add_argument("--acc", dest="acc_format", default=None,
                   help="fp8: accumulator format (fp32, fp16, bf16; default fp32)")
    p.add_argument("--acc-bits", type=int, default=None,
                   help="int8: accumulator width (2..64, default 32)")
    p.add_argument("--depth", type=int, default=None,
                   help="buffer rows (largest M of one run; default 512 ULX3S, 256 iCEBreaker, "
                        "16 with --sim)")


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
    b.add_argument("--json", metavar="FILE", help="also write the figures as JSON ('-': stdout)")
    b.set_defaults(func=_build)
    r = sub.add_parser("run", help="run a random GEMM on a board (--port) or on the simulated "
                                   "top level (--sim) and check it against the golden GEMM")
    where = r.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial device of the board (needs pyserial)")
    where.add_argument("--sim", action="store_true",
                       help="simulate the top level (Amaranth), UART at 4 cycles per bit")
    _array_options(r)
    r.add_argument("--baud", type=int, default=115200, help="--port: baud rate (default 115200)")
    r.add_argument("--m", type=int, default=8, help="GEMM M (default 8)")
    r.add_argument("--k", type=int, default=8, help="GEMM K (default 8)")
    r.add_argument("--n", type=int, default=8, help="GEMM N (default 8)")
    r.add_argument("--seed", type=int, default=0, help="operand seed (default 0)")
    r.set_defaults(func=_run)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _array_params(args):
    pe = _PES[args.pe]
    kw = {}
    for name in ("a_format", "b_format"):
        if getattr(args, name):
            kw[name] = getattr(args, name)
    if pe == "int":
        if args.acc_format:
            raise UsageError("--acc is for --pe fp8 (int8 takes --acc-bits)")
        if args.acc_bits is not None:
            kw["acc_bits"] = args.acc_bits
    else:
        if args.acc_bits is not None:
            raise UsageError("--acc-bits is for --pe int8 (fp8 takes --acc)")
        if args.acc_format:
            kw["acc_format"] = args.acc_format
    return pe, kw


def _build(args):
    pe, kw = _array_params(args)
    build_dir = args.build_dir or f"build/fpga/{args.board}-{args.rows}x{args.cols}-{args.pe}"

    def started():
        print(f"building {args.rows}x{args.cols} {args.pe} for {args.board} in {build_dir} "
              f"(Yosys + nextpnr, YoWASP; this takes minutes)...", file=sys.stderr)
    failed = None
    try:
        res = boards.build(args.board, args.rows, args.cols, pe, build_dir=build_dir,
                           depth=args.depth, baud=args.baud, seed=args.seed,
                           allow_timing_fail=args.allow_timing_fail, dsp=args.dsp,
                           nice=args.nice, clock_div=args.clock_div, on_start=started, **kw)
    except boards.BuildError as e:
        res = getattr(e, "result", None)
        failed = e
        if res is None:
            print(f"lowbit fpga build: {e}", file=sys.stderr)
            return 1
    if args.json == "-":
        print(json.dumps(res.to_dict(), indent=2))
    else:
        print_table([("quantity", "value")] + res.rows(), align="ll")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res.to_dict(), f, indent=2)
                f.write("\n")
    if failed is not None:
        msg = str(failed)
        if res.fmax_mhz is not None and not res.timing_met:
            need = -(-res.clock_mhz * res.params.get("clock_div", 1) // res.fmax_mhz)
            msg = (f"timing not met: Fmax {res.fmax_mhz:.2f} MHz < design clock "
                   f"{res.clock_mhz:g} MHz; no bitstream written (--clock-div {int(need)} "
                   f"would run it at a clock it meets; --allow-timing-fail writes it anyway, "
                   f"but the design would not run reliably)")
        print(f"lowbit fpga build: {msg}", file=sys.stderr)
        return 1
    return 0


def _run(args):
    pe, kw = _array_params(args)
    for name in ("m", "k", "n"):
        v = getattr(args, name)
        if not 1 <= v <= 4096:
            raise ValueError(f"--{name} must be in 1..4096, not {v}")
    if args.sim:
        top = GemmTop(args.rows, args.cols, pe, depth=args.depth or 16, divisor=4, **kw)
        link = SimSerial(top)
    else:
        link = args.port
    try:
        dev = GemmDevice(link, baud=args.baud)
    except RuntimeError as e:          # pyserial missing
        raise UsageError(str(e)) from None
    rng = np.random.default_rng(args.seed)
    A, B = random_operands(dev.spec, args.m, args.k, args.n, rng, specials=0.01)
    t0 = time.perf_counter()
    got = dev.gemm(A, B)
    dt = time.perf_counter() - t0
    want = dev.golden(A, B)
    bad = int(np.sum(got != want))
    cycles = sum(c for _, _, c in dev.runs)
    print(f"device: {' '.join(f'{k}={v}' for k, v in dev.params.items())}")
    print(f"GEMM M={args.m} K={args.k} N={args.n}: {len(dev.runs)} runs, {cycles} array cycles "
          f"(device-measured), {dt:.1f} s wall" + (f", {link.cycles} simulated clock cycles"
                                                     if args.sim else ""))
    print(f"bit-exact with the golden GEMM: {'yes' if bad == 0 else f'NO ({bad} outputs differ)'}")
    return 0 if bad == 0 else 1
