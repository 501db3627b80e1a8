"""Speed of lowbit's behavioural systolic simulator, alone and against SCALE-Sim v3 on the same layers.

    python benchmarks/bench_systolic.py                 # 4096^3 on 128x128 + 3 layers through both (~2 CPU-min)
    python benchmarks/bench_systolic.py --no-scalesim   # lowbit only (< 1 s)
    python benchmarks/bench_systolic.py --resnet18      # also ResNet-18 through SCALE-Sim (~10 CPU-min, 5.5 GB)

Targets (issue 6 section 3): a 4096 x 4096 x 4096 GEMM on a 128 x 128 array in under one second
without numerics; at least 1000x faster than SCALE-Sim at equal cycle counts.

lowbit's time is the best of several runs of ``simulate_gemm``/``simulate_topology`` in this process and
its peak memory the ``tracemalloc`` peak of one run (Python and NumPy allocations). SCALE-Sim's are the
wall time of its API run (``save_disk_space=True``, no traces) and the peak RSS of its process, both
measured by ``scalesim_run.py`` inside SCALE-Sim's own virtual environment.
"""

import argparse
import sys
import time
import tracemalloc

from rich.console import Console
from rich.table import Table

from lowbit.sim.systolic import ArrayConfig, simulate_gemm, simulate_topology
from lowbit.sim.topology import conv_layer, gemm_layer, read_topology

# measured earlier on these machines: SCALE-Sim 3.0.0, ResNet-18 on 32x32 WS:
# 604 s user + 12 s sys CPU, 5.46 GB peak RSS; 2048^3 on 128x128 OS: 699 s CPU, 5.09 GB.
ANCHOR_RESNET18 = {"cpu_s": 616.0, "rss_mib": 5.46 * 1024, "compute_cycles": 2_519_815}
ANCHOR_2048 = {"cpu_s": 699.0, "rss_mib": 5.09 * 1024, "compute_cycles": 589_311}

CASES = [  # (label, layers, rows, cols, dataflow)
    ("gemm 512^3", [gemm_layer("gemm_512", 512, 512, 512)], 32, 32, "os"),
    ("bert qkv 128x768x768", [gemm_layer("qkv", 128, 768, 768)], 32, 32, "ws"),
    ("resnet18 conv4_2a", [conv_layer("Conv4_2a", 14, 14, 3, 3, 256, 256, 1)], 32, 32, "is"),
]


def measure(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, best, peak


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-scalesim", action="store_true", help="do not run SCALE-Sim")
    ap.add_argument("--resnet18", action="store_true", help="run ResNet-18 through SCALE-Sim too")
    args = ap.parse_args(argv)
    con = Console(width=200)

    t = Table(title="lowbit: 4096 x 4096 x 4096 GEMM on a 128 x 128 array (no numerics)")
    for h in ("dataflow", "DRAM bw", "compute cycles", "stall cycles", "wall (ms)", "peak mem (KiB)"):
        t.add_column(h, justify="right")
    worst = 0.0
    for df in ("os", "ws", "is"):
        for bw in ("CALC", 64):
            cfg = ArrayConfig(128, 128, df, ifmap_sram_kib=1024, filter_sram_kib=1024, ofmap_sram_kib=1024, dram_bw=bw)
            r, wall, peak = measure(lambda: simulate_gemm(4096, 4096, 4096, cfg))
            worst = max(worst, wall)
            t.add_row(df, str(bw), f"{r.compute_cycles:,}", f"{r.stall_cycles:,}", f"{wall * 1e3:.3f}",
                      f"{peak / 1024:.1f}")
    con.print(t)
    con.print(f"slowest 4096^3 run: {worst * 1e3:.3f} ms (target < 1000 ms): "
              f"{'MET' if worst < 1.0 else 'NOT MET'}")

    from scalesim_common import RESNET18, RESNET18_LAYOUT, SCALE_CFG
    res_cfg = ArrayConfig.from_scalesim_cfg(SCALE_CFG)
    res_layers = read_topology(RESNET18)
    r18, r18_wall, r18_peak = measure(lambda: simulate_topology(res_layers, res_cfg))
    r2048, w2048, p2048 = measure(lambda: simulate_gemm(2048, 2048, 2048, ArrayConfig(128, 128, "os")))

    t = Table(title="Same layers through both simulators (CALC bandwidth)")
    for h in ("case", "array", "df", "lowbit cycles", "SCALE-Sim cycles", "equal", "lowbit wall (ms)",
              "SCALE-Sim wall (s)", "speed-up", "lowbit peak (KiB)", "SCALE-Sim peak RSS (MiB)"):
        t.add_column(h, justify="left" if h in ("case", "array", "df") else "right")
    speedups = []
    if not args.no_scalesim:
        from scalesim_common import run_scalesim
        runs = list(CASES)
        if args.resnet18:
            runs.append(("resnet18 (21 layers)", None, 32, 32, "ws"))
        for label, layers, R, C, df in runs:
            if layers is None:
                cfg, ls = res_cfg, res_layers
                ss = run_scalesim(ls, cfg, kind="conv", topology=RESNET18,
                                  layout=RESNET18_LAYOUT)
            else:
                cfg, ls = ArrayConfig(R, C, df), layers
                ss = run_scalesim(ls, cfg)
            ours, wall, peak = measure(lambda: simulate_topology(ls, cfg))
            ss_cycles = sum(l["compute_cycles"] for l in ss["layers"])
            sp = ss["wall_s"] / wall
            speedups.append(sp)
            t.add_row(label, f"{R}x{C}", df, f"{ours.total.compute_cycles:,}", f"{ss_cycles:,}",
                      "yes" if ss_cycles == ours.total.compute_cycles else "NO", f"{wall * 1e3:.3f}",
                      f"{ss['wall_s']:.1f}", f"{sp:,.0f}x", f"{peak / 1024:.1f}", f"{ss['peak_rss_mib']:.0f}")
    # figures measured earlier with SCALE-Sim 3.0.0 on these machines; CPU time, not wall
    for label, ours, wall, peak, anc, R, df in (
            ("resnet18 (SCALE-Sim, measured earlier)", r18.total.compute_cycles, r18_wall, r18_peak, ANCHOR_RESNET18, 32, "ws"),
            ("gemm 2048^3 (SCALE-Sim, measured earlier)", r2048.compute_cycles, w2048, p2048, ANCHOR_2048, 128, "os")):
        if label.startswith("resnet18") and args.resnet18 and not args.no_scalesim:
            continue
        t.add_row(label, f"{R}x{R}", df, f"{ours:,}", f"{anc['compute_cycles']:,}",
                  "yes" if ours == anc["compute_cycles"] else "NO", f"{wall * 1e3:.3f}",
                  f"{anc['cpu_s']:.0f} (CPU)", f"{anc['cpu_s'] / wall:,.0f}x", f"{peak / 1024:.1f}",
                  f"{anc['rss_mib']:.0f}")
    con.print(t)
    if speedups:
        con.print(f"smallest measured speed-up: {min(speedups):,.0f}x (target >= 1000x): "
                  f"{'MET' if min(speedups) >= 1000 else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
