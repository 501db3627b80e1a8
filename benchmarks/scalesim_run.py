"""Run SCALE-Sim v3 (PyPI ``scalesim`` 3.0.0) on one case and print its per-layer report as JSON.

This script is executed by the *SCALE-Sim* virtual environment (``.venv-scalesim``, numpy < 2.4), never
by lowbit's: SCALE-Sim is a benchmark/test-only oracle, not a dependency. ``scalesim_compare.py`` and
``bench_systolic.py`` call it as a subprocess and read the JSON from stdout.

Usage::

    .venv-scalesim/bin/python benchmarks/scalesim_run.py CFG TOPOLOGY LAYOUT {gemm|conv}

The run goes through SCALE-Sim's Python API with ``save_disk_space=True`` (its CLI ``-s`` flag is
ignored in 3.0.0 and would write hundreds of MB of traces). Reports go to a temporary folder that is
deleted afterwards. Wall time, CPU time and peak RSS of this process are included in the JSON.
"""

import argparse
import contextlib
import io
import json
import resource
import sys
import tempfile
import time


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cfg", metavar="CFG", help="SCALE-Sim .cfg file")
    ap.add_argument("topo", metavar="TOPOLOGY", help="SCALE-Sim topology CSV")
    ap.add_argument("layout", metavar="LAYOUT", help="SCALE-Sim layout CSV")
    ap.add_argument("kind", choices=("gemm", "conv"), help="topology kind")
    args = ap.parse_args(argv[1:])
    cfg, topo, layout, kind = args.cfg, args.topo, args.layout, args.kind
    from scalesim.scale_sim import scalesim

    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
        s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                     input_type_gemm=(kind == "gemm"))
        s.run_scale(top_path=out)
        layers = []
        for obj in s.runner.single_layer_sim_object_list:
            overall, compute, stall, util, mapping, cutil = obj.get_compute_report_items()
            det = obj.get_detail_report_items()
            layers.append({
                "total_cycles_incl_prefetch": int(overall),
                "compute_cycles": int(compute),
                "stall_cycles": int(stall),
                "overall_util_pct": float(util),
                "mapping_eff_pct": float(mapping),
                "compute_util_pct": float(cutil),
                "sram_ifmap_reads": int(det[2]),
                "sram_filter_reads": int(det[5]),
                "sram_ofmap_writes": int(det[8]),
                "dram_ifmap_reads": int(det[11]),
                "dram_filter_reads": int(det[14]),
                "dram_ofmap_writes": int(det[17]),
            })
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    json.dump({"layers": layers, "wall_s": wall, "cpu_s": cpu, "peak_rss_mib": rss_kib / 1024},
              sys.stdout)
    print()


if __name__ == "__main__":
    main(sys.argv)
