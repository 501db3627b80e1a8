"""Largest systolic array that places and routes on each board's FPGA, with its Fmax.

For each device (ECP5 LFE5U-85F on the ULX3S 85F, iCE40 UP5K on the iCEBreaker) and each PE
(INT8 x INT8 -> INT32 wrapping; FP8 E4M3 x E4M3 -> FP32 fused RNE by default, ``--fp-acc`` to
change), this builds the whole board design (:class:`lowbit.fpga.gemm_top.GemmTop` behind the
board's UART: array + buffers + controller, :func:`lowbit.fpga.boards.build`, the YoWASP tools,
``nice -n 10``, nextpnr seed 1 with ``--timing-allow-fail`` so that a design slower than the
board clock still counts as placed and routed) for a bounded sequence of square sizes:

1. two estimation builds (``2 x 2`` and ``4 x 4``, multipliers in LUTs) give, for each device
   resource (logic cells, block RAM), a fit ``used(n) = a + b n^2``;
2. the largest ``n`` predicted to use at most 97 % of every resource is built; then ``n + 1``
   while that fits, or ``n - 1`` while it does not, until a fitting ``n`` with a failing
   ``n + 1`` is known, ``--max-builds`` builds were made or ``--budget`` minutes have passed;
3. if time remains, ``n x (n + 1)``.

Multipliers: DSP blocks when the array has at most one PE per block (``dsp="auto"``), else LUTs.
Every build's figures are appended to ``build/fpga_largest_array.jsonl`` as they come (so an
interrupted run keeps them); the table at the end marks each combination's largest fitting
size and whether the search was complete (``n + 1`` seen failing) or stopped by the budget.

Usage::

    nice -n 10 python benchmarks/fpga_largest_array.py [--device ice40|ecp5|all]
        [--pe int|fp|all] [--fp-acc fp32] [--int-stages S] [--fp-stages S]
        [--max-builds 6] [--budget 30] [--timeout 30] [--sizes RxC,...]

A build that exceeds ``--timeout`` minutes is stopped and recorded as "timed out" (neither
fitting nor failing); the search stops there.

Measured (2026-11-23, this 2-core machine, seed 1; "logic cells" is nextpnr's ICESTORM_LC or
TRELLIS_COMB; the next size up was built and failed with the count shown):

============  ============  =======  ======  ======  ===============  ========  ================
board         PE            largest  LUT4    DSP     logic cells      Fmax MHz  next size up
============  ============  =======  ======  ======  ===============  ========  ================
iCEBreaker    INT8->INT32   3x4      3,602   0       4,726/5,280      26.7      4x4: 5,738 LC
iCEBreaker    E4M3->FP32    2x2      4,302   0       4,902/5,280      5.6       3x3: 9,724 LC
ULX3S 85F     INT8->INT32   17x17    60,934  0       77,878/83,640    57.5      18x18: 87,059
ULX3S 85F     E4M3->FP32    8x8      54,769  64      73,549/83,640    16.3      9x9: 92,415
============  ============  =======  ======  ======  ===============  ========  ================

With pipelined PEs (2026-12-04, iCE40 only; ``--device ice40 --int-stages 2 --fp-stages 3
--max-builds 5 --budget 18 --timeout 10``; the ECP5 searches, builds of 8-70 minutes each, were
not re-run):

============  ================  =======  ======  ======  ===============  ========  ============
board         PE                largest  LUT4    FF      logic cells      Fmax MHz  next size up
============  ================  =======  ======  ======  ===============  ========  ============
iCEBreaker    INT8->INT32 S=2   3x4      3,540   2,443   5,104/5,280      30.2      4x4 fails
iCEBreaker    E4M3->FP32 S=3    1x1      1,915   577     2,286/5,280      10.7      2x2: 6,546 LC
============  ================  =======  ======  ======  ===============  ========  ============

On the UP5K the pipeline registers cost what the array cannot spare: the INT8 array keeps its
size (3x4) and gains 13 % Fmax; the FP8 array loses its 2x2 (4,902 LC with one-cycle PEs,
6,546 with S=3), its 1x1 runs at 10.7 MHz against 5.6 MHz for the one-cycle 2x2.

The ECP5 builds at 88-110 % of the device took 8-70 minutes each (17x17: Yosys 3 min, nextpnr
62 min; 8x8 FP: Yosys 25-41 min, nextpnr 31 min; 9x9 FP: Yosys 54 min), so use
``--timeout 120`` there. The FP8 arrays run below the board clock: ``--clock-div 3`` (iCE40)
and ``--clock-div 2`` (ECP5; the 8x8 build at 12.5 MHz met timing at 14.97 MHz).
"""

import argparse
import json
import math
import pathlib
import shutil
import sys
import time

from lowbit.cli.table import print_table
from lowbit.fpga import boards

BOARD = {"ice40": "icebreaker", "ecp5": "ulx3s-85f"}
LOGIC = {"ice40": "ICESTORM_LC", "ecp5": "TRELLIS_COMB"}
RAM = {"ice40": "ICESTORM_RAM", "ecp5": "DP16KD"}
FILL = 0.97
VERDICT = {True: "fits", False: "FAILS", None: "TIMED OUT (unknown)"}   # by row["fits"]


def _stages(pe, args):
    """The PE depth asked for ``pe`` ("int" or "fp")."""
    return args.fp_stages if pe == "fp" else args.int_stages


def one(device, pe, R, C, args, log, dsp="auto"):
    kw = {"acc_format": args.fp_acc} if pe == "fp" else {}
    S = _stages(pe, args)
    if S > 1:
        kw["pe_stages"] = S
    d = pathlib.Path(args.build_root) / f"{device}-{pe}-s{S}-{R}x{C}-{dsp}"
    t0 = time.monotonic()
    row = {"device": device, "board": BOARD[device], "pe": pe, "rows": R, "cols": C,
           "dsp_mode": dsp, "pe_stages": S, **({"acc_format": args.fp_acc} if pe == "fp" else
                                               {"acc": "int32 wrap"})}
    try:
        res = boards.build(BOARD[device], R, C, pe, build_dir=d, allow_timing_fail=True, dsp=dsp,
                           nice=10, timeout=args.timeout * 60, **kw)
        row.update(fits=True, **_figures(res))
    except boards.BuildError as e:
        res = getattr(e, "result", None)
        timed_out = "timed out" in str(e)
        row.update(fits=None if timed_out else False,
                   error=str(e).splitlines()[-1][:200] if str(e) else "")
        if res is not None:
            row.update(_figures(res))
    row["wall_s"] = round(time.monotonic() - t0, 1)
    if not args.keep:
        shutil.rmtree(d, ignore_errors=True)
    with open(log, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"  {device} {pe} {R}x{C} dsp={dsp}: {VERDICT[row['fits']]}"
          f", Fmax {row.get('fmax_mhz')} MHz, logic {row.get('util', {}).get(LOGIC[device])}, "
          f"{row['wall_s']:.0f} s", flush=True)
    return row


def _figures(res):
    return {"luts": res.luts, "flip_flops": res.flip_flops, "carry": res.carry, "bram": res.bram,
            "dsp": res.dsp, "dsp_used": res.params.get("dsp"), "fmax_mhz": res.fmax_mhz,
            "util": res.utilisation, "tool_s": round(res.seconds, 1)}


def predict(device, rows):
    """Largest n with every fitted resource at most FILL of the device."""
    (n1, r1), (n2, r2) = rows
    best = 64
    for res in (LOGIC[device], RAM[device]):
        u1 = r1["util"].get(res, [0, 1])
        u2 = r2["util"].get(res, [0, u1[1]])
        avail = max(u1[1], u2[1])
        b = (u2[0] - u1[0]) / (n2 * n2 - n1 * n1)
        a = u1[0] - b * n1 * n1
        if b > 0:
            best = min(best, int(math.floor(math.sqrt(max(0.0, FILL * avail - a) / b))))
    return max(1, best)


def search(device, pe, args, log):
    t_end = time.monotonic() + args.budget * 60
    tried = {}
    builds = 0

    def build(n, m=None, dsp="auto"):
        nonlocal builds
        builds += 1
        r = one(device, pe, n, m or n, args, log, dsp)
        if dsp == "auto":
            tried[(n, m or n)] = r
        return r

    def time_left():
        return time.monotonic() < t_end and builds < args.max_builds

    est = [(2, build(2, dsp="off")), (4, build(4, dsp="off"))]
    dsps = boards.BOARDS[BOARD[device]].dsps
    for n, r in est:
        if n * n > dsps:          # "auto" would build the same design (LUT multipliers)
            tried[(n, n)] = r
        elif r["fits"]:           # fits with LUT multipliers: fits with DSPs too
            tried[(n, n)] = dict(r, fits=True)
    if not est[1][1]["fits"]:
        n = 3
    else:
        n = max(2, predict(device, est))
    print(f"  {device} {pe}: predicted largest square n = {n}", flush=True)
    fit = max((k[0] for k, r in tried.items() if r["fits"] and k[0] == k[1]), default=0)
    fail = min((k[0] for k, r in tried.items() if not r["fits"] and k[0] == k[1]), default=65)
    timed_out = None
    while fit + 1 < fail and time_left():
        n = min(max(n, fit + 1), fail - 1)
        r = tried.get((n, n)) or build(n)
        if r["fits"] is None:         # a timeout says nothing about fitting: stop here
            timed_out = n
            break
        if r["fits"]:
            fit = max(fit, n)
            n += 1
        else:
            fail = min(fail, n)
            n -= 1
    complete = fit + 1 >= fail
    if complete and fit and time_left() and (fit, fit + 1) not in tried:
        build(fit, fit + 1)
    best = max((r for r in tried.values() if r["fits"]),
               key=lambda r: (r["rows"] * r["cols"], r["fmax_mhz"] or 0), default=None)
    return {"device": device, "pe": pe, "best": best, "complete": complete,
            "largest_failing_square": None if fail == 65 else fail, "timed_out": timed_out,
            "builds": builds, "tried": list(tried.values())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("ice40", "ecp5", "all"), default="all")
    ap.add_argument("--pe", choices=("int", "fp", "all"), default="all")
    ap.add_argument("--fp-acc", default="fp32", help="FP PE accumulator (default fp32)")
    ap.add_argument("--int-stages", type=int, default=1,
                    help="depth of the pipelined INT PEs (default 1: one-cycle PEs)")
    ap.add_argument("--fp-stages", type=int, default=1,
                    help="depth of the pipelined FP PEs (default 1: one-cycle PEs)")
    ap.add_argument("--max-builds", type=int, default=6, help="builds per combination")
    ap.add_argument("--budget", type=float, default=30, help="minutes per combination")
    ap.add_argument("--timeout", type=float, default=30, help="minutes per build")
    ap.add_argument("--build-root", default="build/fpga-largest")
    ap.add_argument("--log", default="build/fpga_largest_array.jsonl")
    ap.add_argument("--keep", action="store_true", help="keep the build folders")
    ap.add_argument("--sizes", default="",
                    help="build exactly these arrays instead of searching, e.g. 16x16,12x12 "
                         "(DSP multipliers when they fit, else LUTs)")
    args = ap.parse_args(argv)
    pathlib.Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    devices = ["ice40", "ecp5"] if args.device == "all" else [args.device]
    pes = ["int", "fp"] if args.pe == "all" else [args.pe]
    out, sized = [], []
    for dev in devices:
        for pe in pes:
            print(f"{dev} {pe}:", flush=True)
            if args.sizes:
                for size in args.sizes.split(","):
                    R, C = (int(x) for x in size.lower().split("x"))
                    sized.append((dev, pe, one(dev, pe, R, C, args, args.log)))
                continue
            out.append(search(dev, pe, args, args.log))
    print()
    if args.sizes:
        print_table([("device", "PE", "RxC", "result", "LUT4", "DSP", "logic cells", "Fmax MHz"),
                     *[(BOARD[dev], _pe_name(pe, args), f"{r['rows']}x{r['cols']}",
                        VERDICT[r["fits"]], r.get("luts", "-"), r.get("dsp", "-"),
                        _cells(dev, r), _mhz(r)) for dev, pe, r in sized]])
        return 0
    hdr = ("device", "PE", "largest RxC", "LUT4", "FF", "carry", "BRAM", "DSP", "logic cells",
           "Fmax MHz", "search")
    lines = [hdr]
    for s in out:
        b = s["best"]
        pe = _pe_name(s["pe"], args)
        if b is None:
            lines.append((s["device"], pe, "none", *["-"] * 7, f"{s['builds']} builds"))
            continue
        lines.append((BOARD[s["device"]], pe, f"{b['rows']}x{b['cols']}", b["luts"],
                      b["flip_flops"], b["carry"], b["bram"], b["dsp"], _cells(s["device"], b),
                      _mhz(b),
                      ("complete" if s["complete"] else "budget") + f", {s['builds']} builds"
                      + (f", {s['timed_out']}^2 timed out" if s.get("timed_out") else "")
                      + (f", {s['largest_failing_square']}^2 fails"
                         if s["largest_failing_square"] else "")))
    print_table(lines)
    return 0


def _pe_name(pe, args):
    S = _stages(pe, args)
    return ("INT8->INT32" if pe == "int" else f"E4M3->{args.fp_acc.upper()}") + \
        (f" S={S}" if S > 1 else "")


def _cells(device, row):
    """``used/available (pct)`` of the device's logic cells from nextpnr, or "-"."""
    u = row.get("util", {}).get(LOGIC[device])
    return f"{u[0]}/{u[1]} ({100 * u[0] / u[1]:.0f}%)" if u else "-"


def _mhz(row):
    return f"{row['fmax_mhz']:.1f}" if row.get("fmax_mhz") else "-"


if __name__ == "__main__":
    sys.exit(main())
