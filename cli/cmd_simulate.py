"""``lowbit simulate``: cycles, utilisation and memory traffic of GEMMs / networks on a systolic array.

Examples::

    lowbit simulate --gemm 512 512 512 --rows 32 --cols 32 --dataflow os
    lowbit simulate --topology Resnet18.csv --config scale.cfg --csv out.csv --json out.json
    lowbit simulate --gemm 128 768 768 --dataflow ws --dram-bw 16 --schedule

Settings come from the defaults (32 x 32, WS, 64 KiB SRAMs, CALC bandwidth), then the SCALE-Sim
``--config`` file, then the explicit options.
"""

import os
import sys

__all__ = ["register", "run"]


def register(subparsers):
    p = subparsers.add_parser(
        "simulate", help="cycle-level systolic-array simulation of a GEMM or a SCALE-Sim topology",
        description="Simulate a GEMM or a SCALE-Sim topology (conv or GEMM rows) on a systolic array: "
                    "compute and stall cycles, utilisation, mapping efficiency, SRAM and DRAM traffic.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--gemm", nargs=3, metavar=("M", "K", "N"),
                     help="one GEMM ofmap[M,N] = ifmap[M,K] @ filter[K,N]")
    src.add_argument("--topology", metavar="FILE", help="SCALE-Sim topology CSV (rows end with a comma)")
    p.add_argument("--topology-kind", choices=("conv", "gemm"),
                   help="row format of --topology (default: GEMM if the header's 2nd field is M)")
    p.add_argument("--config", metavar="FILE.cfg", help="SCALE-Sim configuration file")
    p.add_argument("--rows", type=_int("--rows"), help="array rows R (default 32)")
    p.add_argument("--cols", type=_int("--cols"), help="array columns C (default 32)")
    p.add_argument("--dataflow", choices=("os", "ws", "is"), help="dataflow (default ws)")
    p.add_argument("--ifmap-sram", type=_num("--ifmap-sram"), metavar="KIB", help="ifmap SRAM KiB (default 64)")
    p.add_argument("--filter-sram", type=_num("--filter-sram"), metavar="KIB", help="filter SRAM KiB (default 64)")
    p.add_argument("--ofmap-sram", type=_num("--ofmap-sram"), metavar="KIB", help="ofmap SRAM KiB (default 64)")
    p.add_argument("--dram-bw", metavar="WORDS|CALC", help="DRAM words/cycle, or CALC for no stalls (default)")
    p.add_argument("--word-bytes", type=_int("--word-bytes"), help="bytes per word (default 1, as SCALE-Sim)")
    p.add_argument("--pe", help="PE datapath name carried into the report (default int8)")
    p.add_argument("--csv", metavar="FILE", help="write per-layer results as CSV")
    p.add_argument("--json", metavar="FILE", help="write per-layer results as JSON")
    p.add_argument("--schedule", action="store_true", help="also print the fold schedule of each layer")
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    p.set_defaults(func=run)
    return p


def _int(flag):
    def conv(s):
        try:
            return int(s)
        except ValueError:
            import argparse
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, not {s!r}") from None
    return conv


def _num(flag):
    def conv(s):
        try:
            return float(s)
        except ValueError:
            import argparse
            raise argparse.ArgumentTypeError(f"{flag} must be a number, not {s!r}") from None
    return conv


def _config(args):
    from lowbit.sim.systolic import ArrayConfig
    from lowbit.sim.topology import read_scalesim_cfg
    kw = {}
    if args.config:
        if not os.path.isfile(args.config):
            raise ValueError(f"--config file {args.config!r} does not exist")
        kw = read_scalesim_cfg(args.config)
        kw["name"] = kw.pop("run_name")
    over = {"rows": args.rows, "cols": args.cols, "dataflow": args.dataflow, "ifmap_sram_kib": args.ifmap_sram,
            "filter_sram_kib": args.filter_sram, "ofmap_sram_kib": args.ofmap_sram,
            "word_bytes": args.word_bytes, "pe": args.pe}
    kw.update({k: v for k, v in over.items() if v is not None})
    if args.dram_bw is not None:
        if args.dram_bw.upper() == "CALC":
            kw["dram_bw"] = "CALC"
        else:
            try:
                kw["dram_bw"] = float(args.dram_bw)
            except ValueError:
                raise ValueError(f"--dram-bw must be a positive number of words/cycle or CALC, "
                                 f"not {args.dram_bw!r}") from None
    return ArrayConfig(**kw)


def run(args):
    from rich.console import Console
    from lowbit.sim.systolic import schedule, simulate_topology
    from lowbit.sim.topology import gemm_layer, read_topology

    cfg = _config(args)
    if args.gemm:
        vals = []
        for name, v in zip("MKN", args.gemm):
            try:
                vals.append(int(v))
            except ValueError:
                raise ValueError(f"--gemm {name} must be an integer >= 1, not {v!r}") from None
        layers = [gemm_layer("gemm", *vals)]
    else:
        if not os.path.isfile(args.topology):
            raise ValueError(f"--topology file {args.topology!r} does not exist")
        layers = read_topology(args.topology, kind=args.topology_kind)
        if not layers:
            raise ValueError(f"--topology file {args.topology!r} has no layers")
    res = simulate_topology(layers, cfg, progress=len(layers) > 1 and sys.stderr.isatty())
    # rich assumes 80 columns when stdout is not a terminal; the table needs about 160
    con = Console() if sys.stdout.isatty() else Console(width=200)
    if not args.quiet:
        con.print(res.table())
    if args.schedule:
        for l in layers:
            s = schedule(*l.gemm, cfg)
            ph = s.phases()
            con.print(f"{l.name}: Sr={s.Sr} Sc={s.Sc} T={s.T}; {s.row_folds} x {s.col_folds} folds of "
                      f"P = {ph['preload']} preload + {ph['stream']} stream + {ph['row_skew']} row skew + "
                      f"{ph['col_skew']} col skew = {ph['period']} cycles; compute_cycles = {s.compute_cycles}, "
                      f"latency = {s.latency} (drain {ph['drain']})")
    if args.csv:
        res.to_csv(args.csv)
    if args.json:
        res.to_json(args.json)
    return 0
