"""Shared helpers for the SCALE-Sim comparison scripts: its virtual environment and one run.

SCALE-Sim v3 (PyPI ``scalesim`` 3.0.0) is a benchmark oracle only, never a lowbit dependency. It
crashes with numpy >= 2.4 (``int(max(ofmap_serviced_cycles))`` in
``double_buffered_scratchpad_mem.py``), so it lives in its own virtual environment
``.venv-scalesim`` at the repository root (gitignored by ``.venv-*/``), created on demand with
``pip install scalesim==3.0.0 "numpy<2.4"``. Set ``SCALESIM_PYTHON`` to use another interpreter.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

from lowbit.sim.topology import scalesim_file, write_scalesim_cfg, write_topology

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-scalesim"
RUNNER = pathlib.Path(__file__).resolve().parent / "scalesim_run.py"
#: SCALE-Sim's ResNet-18 topology, its scale.cfg and layout, shipped with lowbit
#: (lowbit/sim/data/scalesim, with their README and licence).
RESNET18 = scalesim_file("Resnet18.csv")
RESNET18_LAYOUT = scalesim_file("layout_resnet18.csv")
SCALE_CFG = scalesim_file("scale.cfg")

# SCALE-Sim 3.0.0 opens a layout file even for GEMMs; with custom layouts disabled its content
# is not used, so one generic layout row suffices (format of SCALE-Sim's layouts/*.csv).
_LAYOUT = ("Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, Filter Height Intraline "
           "Factor, Filter Width Intraline Factor, Channel Intraline Factor, Num Filter Intraline Factor, IFMAP "
           "Height Intraline Order, IFMAP Width Intraline Order, Channel Intraline Order, IFMAP Height Interline "
           "Order, IFMAP Width Interline Order, Channel Interline Order, Num Filter Intraline Order, Channel "
           "Intraline Order, Filter Height Intraline Order, Filter Width Intraline Order, Num Filter Interline "
           "Order, Channel Interline Order, Filter Height Interline Order, Filter Width Interline Order,\n"
           "L, 1, 1, 1, 1, 1, 1,     0, 1, 2,     4, 5, 3,     3, 2, 1, 0,     4, 5, 6, 7,\n")


def scalesim_python(create=True):
    """Path of the Python that has scalesim 3.0.0 (creating ``.venv-scalesim`` if asked)."""
    env = os.environ.get("SCALESIM_PYTHON")
    if env:
        return env
    py = VENV / "bin" / "python"
    if not py.exists():
        if not create:
            return None
        print(f"creating {VENV} with scalesim==3.0.0 and numpy<2.4 ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "scalesim==3.0.0", "numpy<2.4"], check=True)
    return str(py)


def run_scalesim(layers, cfg, kind=None, topology=None, layout=None, timeout=7200):
    """Run SCALE-Sim on ``layers`` with ``cfg`` (an ArrayConfig); return its JSON report dict.

    The topology and config are written in SCALE-Sim's formats by lowbit's own writers (or an
    existing ``topology`` file is used as is, with ``layout``).
    """
    py = scalesim_python()
    with tempfile.TemporaryDirectory() as d:
        cfg_path = os.path.join(d, "run.cfg")
        write_scalesim_cfg(cfg_path, cfg, run_name="cmp")
        if topology is None:
            topology = os.path.join(d, "topo.csv")
            write_topology(topology, layers, kind=kind)
        if kind is None:
            kind = "gemm" if all(l.kind == "gemm" for l in layers) else "conv"
        if layout is None:
            layout = os.path.join(d, "layout.csv")
            with open(layout, "w") as f:
                f.write(_LAYOUT)
        out = subprocess.run([py, str(RUNNER), cfg_path, str(topology), str(layout), kind],
                             check=True, capture_output=True, text=True, timeout=timeout, cwd=d)
    return json.loads(out.stdout.strip().splitlines()[-1])
