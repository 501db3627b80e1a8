"""Generation at scale: time, peak RSS and Verilog size of a systolic array's Verilog, flat
(every PE its own module: the Verilog backend uniquifies the PE submodules, main before the
hierarchical netlist) against hierarchical (:func:`lowbit.hdl.manifest.to_verilog`: since
issue 16 one PE module instantiated C times in one row module, instantiated R times; before,
the PE instantiated R x C times in the top), and the whole ``lowbit generate``.

Each conversion runs in its own process (peak RSS = the larger of that process's own
``ru_maxrss`` and its children's: Verilator's lint).

    python benchmarks/gen_scale.py [--pe e4m3_fp32] [--sizes 16,64,128] [--flat-sizes 16]
        [--generate-sizes 128]

Targets (issue 16, section 3): 128 x 128 FP8 in at most 60 s and 2 GB; the Verilog grows by a
few lines per PE. The script prints the figures and their ratios to the targets.

Measured 2026-12-03 on the shared 2-core machine (loaded by other jobs), e4m3_fp32, WS:

    size     netlist        time     peak RSS   Verilog   modules  lines/PE
    16x16    flat          120.9 s    (*)        5.5 MB     770      892
    16x16    hierarchical    4.6 s     84 MiB    0.6 MB       5       99
    32x32    hierarchical   24.5 s    208 MiB    2.3 MB       5       95
    64x64    hierarchical   71.7 s    718 MiB    9.1 MB       5       95
    64x64    flat (issue 16: 8.5 min, 6.6 GB, 78 MB; not re-run)
    128x128  hierarchical  935 s     2.7 GiB    37.1 MB       5       94   (**)

After the row hierarchy (issue 16, 2026-12-04: R instances of one row module of C PEs, the
skew lines one shift register each, ``lowbit generate`` linting module by module), same
machine, quiet, ``--sizes 16,64,128 --flat-sizes "" --generate-sizes 16,64,128``
("generate": the whole ``lowbit generate`` with the Verilator lint and the files; before it,
the 128 x 128 lint alone, of the whole design, ran out its 10 minutes at 14 GB):

    size     netlist        time     peak RSS   Verilog   modules  lines/PE
    16x16    hierarchical    1.1 s    146 MiB    0.1 MB       6     20.1
    64x64    hierarchical    8.1 s    426 MiB    0.5 MB       6      4.4
    128x128  hierarchical   30.6 s   1363 MiB    1.2 MB       6      2.1
    16x16    generate        1.5 s    146 MiB    0.1 MB       6     20.1
    64x64    generate        8.7 s    417 MiB    0.5 MB       6      4.4
    128x128  generate       32.2 s   1258 MiB    1.2 MB       6      2.1

The 128 x 128 target is met: 0.54 x the 60 s and 0.61 x the 2 GiB budget for the whole
``lowbit generate``. (Six modules: top, PE, row and the Amaranth submodules of top and PE.)

(*) not measured separately (the first version of this script read RUSAGE_CHILDREN).
(**) ``/usr/bin/time -v`` of one ``to_verilog(SystolicArray(128, 128, "e4m3_fp32"))`` while a
cocotb build ran beside it. The 128 x 128 target (60 s, 2 GB) was NOT met then: after the PE
was defined once, the time was Amaranth's netlist construction of the array top
(``build_netlist`` about 60 %, ``Fragment.get`` 20 % in a cProfile of a 24 x 24 array).
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
elif mode == "generate":  # the whole `lowbit generate` (conversion, Verilator lint, files)
    import os, tempfile
    from lowbit.cli.main import main
    out = tempfile.mkdtemp()
    assert main(["generate", "systolic", "--rows", str(n), "--cols", str(n), "--pe", pe,
                 "-o", out]) == 0
    text = open(os.path.join(out, "systolic.v")).read()
else:
    text = to_verilog(array, "top")
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # MiB (Linux: KiB)
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"seconds": time.monotonic() - t0, "bytes": len(text),
                  "peak_rss_mib": max(rss, kids), "lines": text.count("\n"),
                  "modules": len([1 for l in text.splitlines() if l.startswith("module ")])}))
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
    ap.add_argument("--generate-sizes", default="128",
                    help="sizes also run through the whole `lowbit generate` (with the lint)")
    a = ap.parse_args()
    rows = []
    plan = [(int(n), "flat") for n in a.flat_sizes.split(",") if n] + \
           [(int(n), "hierarchical") for n in a.sizes.split(",") if n] + \
           [(int(n), "generate") for n in a.generate_sizes.split(",") if n]
    for n, mode in plan:
        d = measure(n, a.pe, mode)
        rows.append(d)
        lines_per_pe = d["lines"] / (n * n)
        print(f"{a.pe} {n:>3}x{n:<3} {mode:<12} {d['seconds']:8.1f} s  peak RSS "
              f"{d['peak_rss_mib']:7.0f} MiB  {d['bytes'] / 1e6:7.1f} MB  {d['modules']:5d} "
              f"modules  {lines_per_pe:6.1f} lines/PE", flush=True)
    for d in rows:
        if d["n"] == 128 and d["mode"] in ("hierarchical", "generate"):
            print(f"128x128 {d['mode']} target: time {d['seconds'] / 60:.2f} x the 60 s "
                  f"budget, peak RSS {d['peak_rss_mib'] / 2048:.2f} x the 2 GiB budget")
    flat = {d["n"]: d for d in rows if d["mode"] == "flat"}
    for d in rows:
        if d["mode"] == "hierarchical" and d["n"] in flat:
            f = flat[d["n"]]
            print(f"{d['n']}x{d['n']}: hierarchical / flat: time {d['seconds'] / f['seconds']:.2f}, "
                  f"Verilog size {d['bytes'] / f['bytes']:.3f}")


if __name__ == "__main__":
    main()
