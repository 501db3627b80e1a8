"""How big an array for ResNet-18? Cycles and utilisation of three weight-stationary arrays.

Run: ``python examples/systolic_sizing.py``. Uses the SCALE-Sim ResNet-18 topology that ships
with lowbit (:func:`lowbit.sim.topology.scalesim_file`) and SCALE-Sim's own configuration
(``scale.cfg``: 32x32, WS) with the array size overridden; prints compute cycles, the
MAC-weighted utilisation and the DRAM reads per layer stack.
"""

from lowbit.sim import systolic, topology


def main():
    layers = topology.read_topology(topology.scalesim_file("Resnet18.csv"))
    for size in (16, 32, 64):
        cfg = systolic.ArrayConfig.from_scalesim_cfg(topology.scalesim_file("scale.cfg"),
                                                     rows=size, cols=size)
        total = systolic.simulate_topology(layers, cfg).total
        dram = total.dram_read_ifmap + total.dram_read_filter + total.dram_read_ofmap
        print(f"{size}x{size}: {total.compute_cycles} compute cycles, utilisation "
              f"{100 * total.utilisation:.1f}%, DRAM reads {dram} words")


if __name__ == "__main__":
    main()
