"""Energy model (a): calibration of fJ per gate equivalent on Horowitz's 45 nm integer
operations, and the resulting energy per operation of every catalogue unit.

    python benchmarks/synth_energy.py [--node-scale S] [--vdd V]

Prints the calibration table (our generic-flow area vs Horowitz's area, the fitted model's
energy vs Horowitz's energy) and, per unit (default parameters), area, flip-flops and
energy per clock (= per MAC for the one-MAC-per-cycle units).
"""

import argparse
import sys

from lowbit.cli.table import print_table
from lowbit.fpga import synth as fs
from lowbit.sim import energy
from lowbit.hdl import catalog, manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--node-scale", type=float, default=1.0)
    ap.add_argument("--vdd", type=float, default=0.9)
    args = ap.parse_args(argv)
    cal = energy.calibrate()
    print_table(cal.table(), title=f"Calibration (45 nm, 0.9 V): e_GE = {cal.e_ge_fj:.4f} fJ/GE/op "
                                   f"(module constant {energy.E_GE_FJ_45NM})")
    rows = [["unit", "area GE", "FF", "E/op pJ"]]
    try:
        units = catalog.units()
    except ImportError as e:   # a hardware module that is being edited
        print(f"catalogue not importable: {e}", file=sys.stderr)
        units = {}
    for name, unit in units.items():
        comp, _ = unit.build()
        top = name.replace("-", "_")
        r = fs.synth(manifest.to_verilog(comp, top), top, "generic")
        rows.append([name, f"{r.area_ge:.1f}", r.flip_flops,
                     f"{energy.energy_per_op_pj(r, args.node_scale, args.vdd):.3f}"])
    print_table(rows, title=f"Units, default parameters (node scale {args.node_scale}, vdd {args.vdd} V)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
