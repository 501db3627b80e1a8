"""Compare lowbit's behavioural systolic simulator with SCALE-Sim v3 (PyPI ``scalesim`` 3.0.0).

Runs the same layers through both simulators (SCALE-Sim in its own venv, see ``scalesim_common``)
and prints, per layer: compute cycles, overall utilisation, mapping efficiency, SRAM reads/writes
and DRAM traffic of both, and whether they agree.

    python benchmarks/scalesim_compare.py              # small cases: 3 arrays x 3 dataflows x 7 layers (~10 s)
    python benchmarks/scalesim_compare.py --large      # + transformer GEMMs, a ResNet-18 conv4 layer (~5 CPU-min)
    python benchmarks/scalesim_compare.py --resnet18   # + full ResNet-18 on 32x32 WS (~10 CPU-min, 5.5 GB)
    python benchmarks/scalesim_compare.py --json out.json

Without ``--resnet18`` the ResNet-18 total is compared with the figure measured earlier on this
machine (2,519,815 compute cycles).

Only one-cycle PEs (``ArrayConfig.pe_stages = 1``): SCALE-Sim has no PE latency, so lowbit's
pipelined-PE schedules (``pe_stages > 1``) have no SCALE-Sim counterpart.

What agrees and what cannot (all SCALE-Sim facts read from its 3.0.0 source):

* compute cycles, stall cycles (CALC bandwidth: 0), overall utilisation (lowbit's
  ``scalesim_utilisation``; lowbit's ``utilisation`` divides by the cycles spanned, one more than
  SCALE-Sim's count, which is the index of the last cycle), mapping efficiency, SRAM
  ifmap and filter reads: equal by construction of the schedule (lowbit.sim.systolic docstring).
* OS ofmap SRAM writes: SCALE-Sim adds ``R + C`` per fold (``create_ofmap_demand_mat`` adds the
  padded tile's ``shape[0] + shape[1]`` to its write count); lowbit counts ``M * N``.
* DRAM traffic: SCALE-Sim simulates its read buffers line by line; lowbit uses a reuse model
  (operand read once if the revisited working set fits in half of its SRAM). WS/IS psums: SCALE-Sim
  writes every K-fold's partial sums to DRAM (DRAM ofmap writes = SRAM ofmap writes) and never reads
  them back; lowbit keeps them on chip when they fit in half of the ofmap SRAM.
* SCALE-Sim's "compute util" column averages per-fold utilisations computed with a fold length that,
  for WS and IS, is ``C - 1`` cycles longer than the fold period it simulates; not reproduced.
"""

import argparse
import json
import sys
import time

from rich.console import Console
from rich.table import Table

from lowbit.sim.systolic import ArrayConfig, simulate_topology
from lowbit.sim.topology import SCALESIM_SMALL_LAYERS, conv_layer, gemm_layer, read_topology

from scalesim_common import RESNET18, RESNET18_LAYOUT, SCALE_CFG, run_scalesim

# measured here: scalesim 3.0.0, numpy 2.3.5, upstream scale.cfg (32x32 WS, CALC),
# topologies/conv_nets/Resnet18.csv: 2,519,815 compute cycles, 0 stalls.
RESNET18_SCALESIM_COMPUTE_CYCLES = 2_519_815

SMALL_LAYERS = SCALESIM_SMALL_LAYERS
SMALL_ARRAYS = [(8, 8), (8, 16), (16, 8)]

LARGE_CASES = [  # (label, layers, rows, cols, dataflows)
    ("bert_qkv", [gemm_layer("gemm_128x768x768", 128, 768, 768)], 32, 32, ("os", "ws", "is")),
    ("bert_qkv_16x64", [gemm_layer("gemm_128x768x768", 128, 768, 768)], 16, 64, ("os", "ws", "is")),
    ("resnet18_conv4_2a", [conv_layer("Conv4_2a", 14, 14, 3, 3, 256, 256, 1)], 32, 32, ("os", "ws", "is")),
    ("bert_ffn_down", [gemm_layer("gemm_512x3072x768", 512, 3072, 768)], 128, 128, ("ws",)),
]

FIELDS = [  # (ours, scalesim)
    ("compute_cycles", "compute_cycles"),
    ("stall_cycles", "stall_cycles"),
    ("sram_read_ifmap", "sram_ifmap_reads"),
    ("sram_read_filter", "sram_filter_reads"),
    ("sram_write_ofmap", "sram_ofmap_writes"),
    ("dram_read_ifmap", "dram_ifmap_reads"),
    ("dram_read_filter", "dram_filter_reads"),
    ("dram_write_ofmap", "dram_ofmap_writes"),
]


def compare(label, layers, cfg, rows_out, kind=None, topology=None, layout=None):
    ours_t0 = time.perf_counter()
    ours = simulate_topology(layers, cfg)
    ours_t = time.perf_counter() - ours_t0
    ss = run_scalesim(layers, cfg, kind=kind, topology=topology, layout=layout)
    for lo, ls in zip(ours.layers, ss["layers"]):
        row = {"case": label, "array": f"{cfg.rows}x{cfg.cols}", "dataflow": cfg.dataflow, "layer": lo.name,
               "M": lo.M, "K": lo.K, "N": lo.N,
               "util_pct": (100 * lo.scalesim_utilisation, ls["overall_util_pct"]),
               "mapping_eff_pct": (100 * lo.mapping_efficiency, ls["mapping_eff_pct"])}
        for fo, fs in FIELDS:
            row[fo] = (getattr(lo, fo), ls[fs])
        rows_out.append(row)
    return ours_t, ss["wall_s"], ss["peak_rss_mib"]


def _cell(pair, pct=False):
    a, b = pair
    if pct:
        return f"{a:.2f}" if abs(a - b) < 1e-9 else f"[red]{a:.2f} / {b:.2f}[/red]"
    return f"{a:,}" if a == b else f"[yellow]{a:,} / {b:,}[/yellow]"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--large", action="store_true", help="add transformer GEMMs and a ResNet-18 layer")
    ap.add_argument("--resnet18", action="store_true", help="run the full ResNet-18 in SCALE-Sim (~10 CPU-min)")
    ap.add_argument("--json", help="write all figures to this JSON file")
    args = ap.parse_args(argv)

    rows, timing = [], []
    cases = [(f"small {r}x{c}", SMALL_LAYERS, r, c, df) for (r, c) in SMALL_ARRAYS for df in ("os", "ws", "is")]
    if args.large:
        cases += [(lab, ls, r, c, df) for lab, ls, r, c, dfs in LARGE_CASES for df in dfs]
    for label, layers, r, c, df in cases:
        cfg = ArrayConfig(r, c, df, ifmap_sram_kib=64, filter_sram_kib=64, ofmap_sram_kib=64)
        t_ours, t_ss, rss = compare(label, layers, cfg, rows)
        timing.append({"case": label, "array": f"{r}x{c}", "dataflow": df, "ours_s": t_ours,
                       "scalesim_s": t_ss, "scalesim_rss_mib": rss})
        print(f"{label:>22} {r}x{c} {df}: lowbit {t_ours * 1e3:.2f} ms, SCALE-Sim {t_ss:.2f} s", file=sys.stderr)

    resnet_cfg = ArrayConfig.from_scalesim_cfg(SCALE_CFG)
    resnet = read_topology(RESNET18)
    res18 = simulate_topology(resnet, resnet_cfg)
    resnet_ss = None
    if args.resnet18:
        t_ours, t_ss, rss = compare("resnet18", resnet, resnet_cfg, rows, kind="conv",
                                    topology=RESNET18, layout=RESNET18_LAYOUT)
        resnet_ss = sum(r["compute_cycles"][1] for r in rows if r["case"] == "resnet18")
        timing.append({"case": "resnet18", "array": "32x32", "dataflow": "ws", "ours_s": t_ours,
                       "scalesim_s": t_ss, "scalesim_rss_mib": rss})

    con = Console(width=250)  # the table is wide; let it wrap in the terminal rather than truncate cells
    t = Table(title="lowbit vs SCALE-Sim 3.0.0 (CALC bandwidth, 64 KiB SRAMs); 'a / b' = lowbit / SCALE-Sim where they differ")
    for h in ("case", "array", "df", "layer", "M", "K", "N", "compute cyc", "util %", "map eff %",
              "SRAM rd if", "SRAM rd fi", "SRAM wr of", "DRAM rd if", "DRAM rd fi", "DRAM wr of"):
        t.add_column(h, justify="left" if h in ("case", "layer", "df", "array") else "right")
    for r in rows:
        t.add_row(r["case"], r["array"], r["dataflow"], r["layer"], str(r["M"]), str(r["K"]), str(r["N"]),
                  _cell(r["compute_cycles"]), _cell(r["util_pct"], True), _cell(r["mapping_eff_pct"], True),
                  _cell(r["sram_read_ifmap"]), _cell(r["sram_read_filter"]), _cell(r["sram_write_ofmap"]),
                  _cell(r["dram_read_ifmap"]), _cell(r["dram_read_filter"]), _cell(r["dram_write_ofmap"]))
    con.print(t)

    n = len(rows)
    eq = {f: sum(r[f][0] == r[f][1] for r in rows) for f, _ in FIELDS}
    eq_util = sum(abs(r["util_pct"][0] - r["util_pct"][1]) < 1e-9 for r in rows)
    eq_map = sum(abs(r["mapping_eff_pct"][0] - r["mapping_eff_pct"][1]) < 1e-9 for r in rows)
    con.print(f"layers compared: {n}; equal compute cycles: {eq['compute_cycles']}/{n}, stall cycles: "
              f"{eq['stall_cycles']}/{n}, utilisation: {eq_util}/{n}, mapping efficiency: {eq_map}/{n}, "
              f"SRAM ifmap reads: {eq['sram_read_ifmap']}/{n}, SRAM filter reads: {eq['sram_read_filter']}/{n}, "
              f"SRAM ofmap writes: {eq['sram_write_ofmap']}/{n}")
    os_rows = [r for r in rows if r["dataflow"] == "os"]
    slip = sum(r["sram_write_ofmap"][1] - r["sram_write_ofmap"][0] for r in os_rows)
    con.print(f"OS ofmap SRAM writes: SCALE-Sim exceeds M*N by {slip:,} words in total over {len(os_rows)} OS "
              f"layers = (R + C) per fold (its bookkeeping slip), e.g. 512^3 on 32x32: 278,528 vs 262,144.")
    con.print(f"ResNet-18 (SCALE-Sim's scale.cfg: 32x32 WS, CALC): lowbit {res18.total.compute_cycles:,} compute cycles "
              f"vs SCALE-Sim {resnet_ss if resnet_ss is not None else RESNET18_SCALESIM_COMPUTE_CYCLES:,} "
              f"({'measured now' if resnet_ss is not None else 'measured earlier on these machines'}).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "timing": timing,
                       "resnet18": {"lowbit": res18.total.compute_cycles,
                                    "scalesim": resnet_ss or RESNET18_SCALESIM_COMPUTE_CYCLES}}, f, indent=1)
    return 0 if eq["compute_cycles"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
