"""Area and energy of ResNet-18 on a 32 x 32 systolic array with INT8 vs FP8 PEs.

    python benchmarks/cost_resnet18.py [--dataflow ws] [--pes int8,e4m3_fp16,e4m3_fp32]
                                       [--topology Resnet18.csv] [--config scale.cfg]
                                       [--ofmap-word operand|acc]
    python benchmarks/cost_resnet18.py --check-array     # model vs synthesised arrays (minutes cold)

The network is SCALE-Sim's ResNet-18 topology (Resnet18.csv, shipped in lowbit/sim/data/scalesim; 21 conv/FC
layers) on the array of SCALE-Sim's example ``scale.cfg`` (32 x 32, 64 KiB ifmap/filter/ofmap
SRAMs, CALC bandwidth), simulated by :func:`lowbit.sim.systolic.simulate_topology` with the
cost model :class:`lowbit.sim.cost_model.SynthCostModel` (each PE synthesised once, generic
flow, cached; 45 nm, 0.9 V). Prints, per PE: PE area, array area (PEs + SRAM), energy per
layer sum split into MAC / SRAM / DRAM, and ratios to INT8. The same per-PE figure is what
``lowbit simulate --topology ... --pe PE --cost`` prints.

``--check-array`` checks the PE + edge-register area model against generic synthesis of the
whole generated ``systolic`` unit (:data:`CHECKS`: small arrays; 8x8 takes about 1.5 CPU-min
cold, cached afterwards).
"""

import argparse
import pathlib
import sys
import time

from lowbit.cli.table import print_table
from lowbit.fpga import synth
from lowbit.hdl.catalog import get_unit
from lowbit.hdl.manifest import to_verilog
from lowbit.sim.cost_model import REG_BIT_GE, SynthCostModel
from lowbit.sim.systolic import ArrayConfig, simulate_topology
from lowbit.sim.topology import read_topology, scalesim_file

RESNET18, SCALE_CFG = scalesim_file("Resnet18.csv"), scalesim_file("scale.cfg")


#: (PE name, rows, cols, dataflow) compared by --check-array.
CHECKS = [
    ("int8", 2, 2, "ws"), ("int8", 4, 4, "ws"), ("int8", 8, 8, "ws"), ("int8", 4, 4, "os"),
    ("int8", 4, 2, "is"), ("e4m3_fp16", 4, 4, "ws"), ("overq4", 4, 4, "ws"),
    ("overq4", 4, 4, "os"), ("e4m3_kulisch", 4, 4, "ws"), ("e4m3_kulisch", 4, 4, "os"),
]


def check_array():
    """Synthesise whole arrays and compare with rows*cols*PE + edge registers."""
    rows = [["PE", "array", "df", "measured GE", "PEs GE", "edge bits", "edges GE", "read-out GE",
             "model GE", "model/measured", "measured FF"]]
    for pe, r, c, df in CHECKS:
        comp, _ = get_unit("systolic").build(rows=r, cols=c, dataflow=df, pe=pe)
        top = f"sa_{pe}_{r}x{c}_{df}"
        t0 = time.perf_counter()
        res = synth.synth(to_verilog(comp, top), top, "generic")
        cfg = ArrayConfig(rows=r, cols=c, dataflow=df, pe=pe)
        model = SynthCostModel()
        br = model.area_breakdown_um2(cfg)
        pes, edges = br["pes"] / 0.798, br["edge_bits"] * REG_BIT_GE
        rd = br["readout"] / 0.798
        tot = pes + edges + rd
        rows.append([pe, f"{r}x{c}", df, f"{res.area_ge:.0f}", f"{pes:.0f}", str(br["edge_bits"]),
                     f"{edges:.0f}", f"{rd:.0f}", f"{tot:.0f}", f"{tot / res.area_ge:.3f}",
                     str(res.flip_flops)])
        print(f"{top}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print_table(rows, title="Array area: model (rows*cols*PE + edge registers) vs generic synthesis "
                            "of the generated systolic unit")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topology", default=str(RESNET18))
    ap.add_argument("--config", default=str(SCALE_CFG))
    ap.add_argument("--dataflow", choices=("ws", "os", "is"), default="ws")
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--cols", type=int, default=32)
    ap.add_argument("--pes", default="int8,e4m3_fp16,e4m3_fp32,e4m3_kulisch,e5m2_fp32",
                    help="comma-separated PE names (lowbit.sim.cost_model.parse_pe)")
    ap.add_argument("--ofmap-word", choices=("operand", "acc"), default="operand",
                    help="ofmap (partial-sum) access width: the 1-byte word or the PE accumulator")
    ap.add_argument("--check-array", action="store_true",
                    help="compare the area model with synthesis of whole small arrays and exit")
    args = ap.parse_args(argv)
    if args.check_array:
        return check_array()
    for p in (args.topology, args.config):
        if not pathlib.Path(p).is_file():
            print(f"cost_resnet18: error: {p} does not exist", file=sys.stderr)
            return 2
    layers = read_topology(args.topology)
    base = ArrayConfig.from_scalesim_cfg(args.config, rows=args.rows, cols=args.cols,
                                         dataflow=args.dataflow, dram_bw="CALC")
    head = ["PE", "PE GE", "PE FF", "E_MAC pJ", "area mm2", "PEs mm2", "edges mm2", "SRAM mm2", "energy uJ",
            "MAC uJ", "SRAM uJ", "DRAM uJ", "pJ/MAC all", "area vs INT8", "energy vs INT8",
            "MAC energy vs INT8"]
    rows = [head]
    ref = None
    cycles = macs = None
    for pe in [p.strip() for p in args.pes.split(",") if p.strip()]:
        cfg = base.replace(pe=pe)
        model = SynthCostModel(ofmap_word=args.ofmap_word)
        t0 = time.perf_counter()
        pc = model.pe_cost(cfg)
        t_syn = time.perf_counter() - t0
        res = simulate_topology(layers, cfg, cost_model=model)
        e = res.total.energy_breakdown_pj
        mac = e["mac"]
        sram = sum(v for k, v in e.items() if k.startswith("sram"))
        dram = sum(v for k, v in e.items() if k.startswith("dram"))
        tot = res.total.energy_pj
        area = res.area_um2
        br = model.area_breakdown_um2(cfg)
        if ref is None:
            ref = (area, tot, mac)
        cycles, macs = res.total.total_cycles, res.total.macs
        rows.append([pc.spec.key, f"{pc.area_ge:.0f}", str(pc.flip_flops), f"{pc.e_mac_pj:.3f}",
                     f"{area / 1e6:.3f}", f"{br['pes'] / 1e6:.3f}",
                     f"{(br['edges'] + br['readout']) / 1e6:.3f}", f"{br['sram'] / 1e6:.3f}",
                     f"{tot / 1e6:.1f}", f"{mac / 1e6:.1f}", f"{sram / 1e6:.1f}", f"{dram / 1e6:.1f}",
                     f"{tot / res.total.macs:.2f}", f"{area / ref[0]:.2f}x", f"{tot / ref[1]:.2f}x",
                     f"{mac / ref[2]:.2f}x"])
        print(f"{pc.spec.key}: PE synthesis {t_syn:.1f} s ({'cache' if t_syn < 1 else 'Yosys'})",
              file=sys.stderr)
    print_table(rows, title=(f"ResNet-18 ({len(layers)} layers, {macs:,} MACs, {cycles:,} cycles) on "
                             f"{args.rows}x{args.cols} {args.dataflow.upper()}, SRAM "
                             f"{base.ifmap_sram_kib:g}/{base.filter_sram_kib:g}/{base.ofmap_sram_kib:g} KiB, "
                             f"45 nm 0.9 V, ofmap accesses at {args.ofmap_word} width"))
    print("Energy: MACs x E_MAC (gate-count model of the synthesised PE, Horowitz-calibrated) + SRAM "
          "words x Horowitz per-access energy (log-log in capacity, linear in width) + DRAM words x "
          "20 pJ/bit. Area: PEs (generic synthesis, 1 GE = 0.798 um^2) + edge registers (skew/de-skew, "
          "8 GE/bit; Kulisch: + column read-outs) + SRAM (CACTI 146 F^2 cell, capacity-dependent "
          "array efficiency). Fold control, clock tree and leakage are not included.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
