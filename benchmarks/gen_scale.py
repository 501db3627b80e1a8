"""Generation at scale: time, peak RSS and Verilog size of a systolic array's Verilog, flat
(every PE its own module: the Verilog backend uniquifies the PE submodules, main before the
hierarchical netlist) against hierarchical (one PE module instantiated R x C times:
:func:`lowbit.hdl.manifest.to_verilog`).

Each conversion runs in its own process (peak RSS = that process's own ``ru_maxrss``).

    python benchmarks/gen_scale.py [--pe e4m3_fp32] [--sizes 16,64,128] [--flat-sizes 16]

Targets (issue 16, section 3): 128 x 128 FP8 in at most 60 s and 2 GB; the Verilog grows by a
few lines per PE. The script prints the figures and their ratios to the targets.
"""
import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
from amaranth.back import verilog
from lowbit.hdl.manifest import to_verilog
from lowbit.hdl.systolic import SystolicArray
n, pe, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
t0 = time.monotonic()
array = SystolicArray(n, n, pe, dataflow="ws")
if mode == "flat":      # platform None: the PEs are submodules, flattened and uniquified
    text = verilog.convert(array, name="top", emit_src=False, strip_internal_attrs=True)
else:
    text = to_verilog(array, "top")
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # MiB (Linux: KiB)
print(json.dumps({"seconds": time.monotonic() - t0, "bytes": len(text), "peak_rss_mib": rss,
                  "lines": text.count("\n"), "modules": text.count("\nmodule ")}))
"""


def measure(n, pe, mode):
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", CHILD, str(n), pe, mode], capture_output=True,
                       text=True, check=True)
    wall = time.monotonic() - t0
    d = json.loads(r.stdout.strip().splitlines()[-1])
    d.update(n=n, mode=mode, wall=wall)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pe", default="e4m3_fp32")
    ap.add_argument("--sizes", default="16,64,128")
    ap.add_argument("--flat-sizes", default="16")
    a = ap.parse_args()
    rows = []
    plan = [(int(n), "flat") for n in a.flat_sizes.split(",") if n] + \
           [(int(n), "hierarchical") for n in a.sizes.split(",") if n]
    for n, mode in plan:
        d = measure(n, a.pe, mode)
        rows.append(d)
        lines_per_pe = d["lines"] / (n * n)
        print(f"{a.pe} {n:>3}x{n:<3} {mode:<12} {d['seconds']:8.1f} s  peak RSS "
              f"{d['peak_rss_mib']:7.0f} MiB  {d['bytes'] / 1e6:7.1f} MB  {d['modules']:5d} "
              f"modules  {lines_per_pe:6.1f} lines/PE", flush=True)
    for d in rows:
        if d["n"] == 128 and d["mode"] == "hierarchical":
            print(f"128x128 target: time {d['seconds'] / 60:.2f} x the 60 s budget, "
                  f"peak RSS {d['peak_rss_mib'] / 2048:.2f} x the 2 GiB budget")
    flat = {d["n"]: d for d in rows if d["mode"] == "flat"}
    for d in rows:
        if d["mode"] == "hierarchical" and d["n"] in flat:
            f = flat[d["n"]]
            print(f"{d['n']}x{d['n']}: hierarchical / flat: time {d['seconds'] / f['seconds']:.2f}, "
                  f"Verilog size {d['bytes'] / f['bytes']:.3f}")


if __name__ == "__main__":
    main()
