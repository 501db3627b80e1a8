"""Old against new Verilog of the pinned (and some pipelined) systolic arrays, cycle for cycle.

A change of a pinned generator (tests/test_hdl_catalog.py) must show that the new circuit
behaves as the old one did.  For each pinned ``systolic`` configuration this script
converts the array with the code of git revision ``--old`` (checked out into a temporary
worktree) and with the working tree, puts both in one Verilog wrapper, drives both with
the same uniformly random value on every input port on every cycle (``i.valid``,
``o.ready`` and the payload: back-pressure, invalid beats, random ``load``/``last`` bits;
and a random extra reset on about one cycle in 500) and compares every output on every
cycle under Verilator (``lowbit.sim.cosim.run_stream``).  It prints one line per
configuration and exits with status 1 on any difference.

    python benchmarks/verilog_equivalence.py [--old REV] [--cycles N] [--seed S]
"""
import argparse
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

# converts one configuration with the lowbit source tree at argv[1] (not the installed one)
CHILD = r"""
import importlib.util, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
spec = importlib.util.spec_from_file_location(
    "lowbit", root / "lowbit" / "__init__.py",
    submodule_search_locations=[str(root / "lowbit"), str(root)])
mod = importlib.util.module_from_spec(spec)
sys.modules["lowbit"] = mod
spec.loader.exec_module(mod)
from lowbit.hdl import catalog, manifest
import lowbit.hdl.systolic as s
assert pathlib.Path(s.__file__).resolve().is_relative_to(root.resolve()), s.__file__
c, _ = catalog.get_unit("systolic").build(**json.loads(sys.argv[2]))
sys.stdout.write(manifest.to_verilog(c, sys.argv[3]))
"""


def convert(root, params, top):
    r = subprocess.run([sys.executable, "-c", CHILD, str(root), json.dumps(params), top],
                       capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return r.stdout


#: Pipelined arrays (no pins: their Verilog came with issue 16), compared too.
PIPELINED = [{"rows": 3, "cols": 2, "pe": "e4m3_fp32", "pe_stages": 4},
             {"rows": 2, "cols": 3, "pe": "int8", "pe_stages": 3, "dataflow": "is"},
             {"rows": 3, "cols": 3, "pe": "e4m3_kulisch", "dataflow": "os", "pe_stages": 3},
             {"rows": 2, "cols": 2, "pe": "overq4", "pe_stages": 2}]


def pinned():
    spec = importlib.util.spec_from_file_location("pins", ROOT / "tests" / "test_hdl_catalog.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [p for u, p, _ in mod.PINS if u == "systolic"] + PIPELINED


def wrapper(gold, gate):
    """One module ``eq`` driving modules ``gold`` and ``gate`` from the same inputs
    (``xrst``: an extra reset), with both designs' outputs as ``g_<port>`` / ``x_<port>``."""
    from lowbit.hdl.manifest import module_names, verilog_ports
    shared = set(module_names(gold)) & set(module_names(gate))
    for name in shared:                      # the same PE module in both: defined once
        a, b = (_module_text(t, name) for t in (gold, gate))
        if a != b:
            raise SystemExit(f"module {name} differs between the two texts")
        gold = gold.replace(a, "")
    ports = verilog_ports(gate, "gate")
    if sorted(ports) != sorted(verilog_ports(gold, "gold")):
        raise SystemExit("the two tops have different ports")
    decl = ["input clk", "input rst", "input xrst"]
    conn = [".clk(clk)", ".rst(rst | xrst)"]
    outs = []
    for name, d, w in ports:
        if name in ("clk", "rst"):
            continue
        rng = "" if w == 1 else f"[{w - 1}:0] "
        if d == "input":
            decl.append(f"input {rng}{name}")
            conn.append(f".{name}({name})")
        else:
            decl += [f"output {rng}g_{name}", f"output {rng}x_{name}"]
            outs.append(name)
    top = (f"module eq({', '.join(decl)});\n"
           f"  gold g({', '.join(conn + [f'.{o}(g_{o})' for o in outs])});\n"
           f"  gate x({', '.join(conn + [f'.{o}(x_{o})' for o in outs])});\n"
           "endmodule\n")
    return top + gold + gate, [(n, w) for n, d, w in ports if d == "input" and
                               n not in ("clk", "rst")], outs


def _module_text(text, name):
    start = re.search(rf"^module {re.escape(name)}\s*\(", text, re.MULTILINE).start()
    return text[start:text.index("endmodule", start) + len("endmodule")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", default="HEAD", help="git revision of the old generator")
    ap.add_argument("--cycles", type=int, default=20000, help="random cycles per design")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    import numpy as np
    from lowbit.sim import cosim
    rng = np.random.default_rng(args.seed)
    bad = 0
    with tempfile.TemporaryDirectory(prefix="lowbit-old-") as tmp:
        old = pathlib.Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old),
                        args.old], check=True)
        try:
            for params in pinned():
                text, ins, outs = wrapper(convert(old, params, "gold"),
                                          convert(ROOT, params, "gate"))
                inputs = {}
                for name, w in ins:
                    words = [int.from_bytes(rng.bytes((w + 7) // 8), "little") % (1 << w)
                             for _ in range(args.cycles)]
                    inputs[name] = np.array(words, dtype=object if w > 63 else np.uint64)
                inputs["xrst"] = (rng.random(args.cycles) < 0.002).astype(np.uint64)
                res = cosim.run_stream(text, inputs, [f"{p}_{o}" for o in outs for p in "gx"],
                                       toplevel="eq", sim="verilator")
                diff = [o for o in outs if not np.array_equal(np.asarray(res[f"g_{o}"]),
                                                              np.asarray(res[f"x_{o}"]))]
                bad += bool(diff)
                print(f"{json.dumps(params):70s} {args.cycles} cycles, {len(outs)} outputs: "
                      + (f"DIFFER in {diff}" if diff else "equal on every cycle"), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
