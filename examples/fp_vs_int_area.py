"""FP8 against INT8: synthesise both MACs with Yosys and compare their area.

Run: ``python examples/fp_vs_int_area.py``. Generates an INT8 x INT8 MAC with a 32-bit
accumulator and an E4M3 x E4M3 MAC with an FP32 accumulator (fused), synthesises each to
NAND2-equivalent gates with Yosys/ABC (from PyPI; cached, so a second run takes a second) and
prints the area ratio beside the published finding (FP8 MACs +50% to +180% over INT8; van
Baalen et al., "FP8 versus INT8 for efficient deep learning inference", 2023).
"""

from lowbit.fpga import synth
from lowbit.hdl import catalog, manifest

UNITS = {"int8": ("int-mac", {}), "e4m3-fp32": ("fp-mac", {"acc_format": "fp32"})}


def main():
    area = {}
    for key, (name, params) in UNITS.items():
        component, _ = catalog.get_unit(name).build(**params)
        top = "ex_" + key.replace("-", "_")
        result = synth.synth(manifest.to_verilog(component, top), top, "generic")
        area[key] = result.area_ge
        print(f"{key}: {result.area_ge:.0f} GE, {result.flip_flops} flip-flops")
    print(f"e4m3-fp32 / int8 area: {area['e4m3-fp32'] / area['int8']:.2f}x "
          f"(published: 1.5x to 2.8x)")


if __name__ == "__main__":
    main()
