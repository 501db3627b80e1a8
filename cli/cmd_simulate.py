"""``lowbit simulate``: cycles, utilisation and memory traffic of GEMMs / networks on a systolic array.

Examples::

    lowbit simulate --gemm 512 512 512 --rows 32 --cols 32 --dataflow os
    lowbit simulate --topology Resnet18.csv --config scale.cfg --csv out.csv --json out.json
    lowbit simulate --gemm 128 768 768 --dataflow ws --dram-bw 16 --schedule
    lowbit simulate --topology Resnet18.csv --pe e4m3_fp32 --cost --json out.json

``--cost`` adds energy per layer and in total and the array area from
:class:`lowbit.sim.cost_model.SynthCostModel` (the configured PE synthesised with Yosys, once,
cached; Horowitz-calibrated 45 nm energies; SRAM area model of :mod:`lowbit.sim.energy`).

Settings come from the defaults (32 x 32, WS, 64 KiB SRAMs, CALC bandwidth), then the SCALE-Sim
``--config`` file, then the explicit options: an option that overrides a value of the config file
says so on stderr (``note: --rows 16 overrides the config's ArrayHeight 32``). ``--json`` and
``--csv`` take ``-`` for standard output (then no table is printed). The CSV has one row per
layer; the total is in the table and the JSON.
"""

import argparse
import csv
import io
import sys

from lowbit.models.systolic import parse_pe
from lowbit.sim.cost_model import SynthCostModel
from lowbit.sim.systolic import ArrayConfig, schedule, simulate_topology
from lowbit.sim.topology import gemm_layer, read_scalesim_cfg, read_topology

from .errors import UsageError
from .output import check_output, write_json, write_text
from .table import print_table

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
    p.add_argument("--pe-stages", type=_int("--pe-stages"), metavar="S",
                   help="PE latency in cycles, 1..16 (default 1, the one-cycle PE SCALE-Sim models; "
                        "S > 1: pipelined PEs, see lowbit.models.systolic.Schedule)")
    p.add_argument("--pe", help="processing element, a PE name (lowbit.models.systolic.parse_pe; "
                                "default int8): int8, uint8, int8xint4_acc24, e4m3_fp32, e5m2_fp16, "
                                "e4m3_bf16_two_roundings, e4m3_kulisch, overq4, ...; carried into "
                                "the report, and with --cost the PE that is costed")
    cost = p.add_argument_group("cost (area and energy, 45 nm by default)")
    cost.add_argument("--cost", action="store_true",
                      help="report energy (per layer, total) and array area (PEs + SRAM) from the "
                           "synthesis-calibrated cost model; synthesises the --pe PE once (cached)")
    cost.add_argument("--node-scale", type=_num("--node-scale"), metavar="F",
                      help="energy factor for logic and SRAM vs 45 nm (default 1)")
    cost.add_argument("--vdd", type=_num("--vdd"), metavar="V",
                      help="supply voltage 0.3..1.5 V; energies scale by (V/0.9)^2 (default 0.9)")
    cost.add_argument("--area-scale", type=_num("--area-scale"), metavar="F",
                      help="area factor for PEs and SRAM vs 45 nm (default 1)")
    cost.add_argument("--ofmap-word", choices=("operand", "acc"),
                      help="width of an ofmap access: the word (default) or the PE accumulator")
    cost.add_argument("--pe-area-ge", type=_num("--pe-area-ge"), metavar="GE",
                      help="use this PE area (NAND2 equivalents) instead of synthesising the PE")
    p.add_argument("--csv", metavar="FILE", help="write per-layer results as CSV, one row per "
                                                 "layer ('-': standard output)")
    p.add_argument("--json", metavar="FILE", help="write per-layer results and the total as JSON "
                                                  "('-': standard output)")
    p.add_argument("--schedule", action="store_true", help="also print the fold schedule of each layer")
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    p.set_defaults(func=run)
    return p


def _int(flag):
    def conv(s):
        try:
            return int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, not {s!r}") from None
    return conv


def _num(flag):
    def conv(s):
        try:
            return float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, not {s!r}") from None
    return conv


_CFG_NAMES = {"rows": ("--rows", "ArrayHeight"), "cols": ("--cols", "ArrayWidth"),
              "dataflow": ("--dataflow", "Dataflow"),
              "ifmap_sram_kib": ("--ifmap-sram", "IfmapSramSzkB"),
              "filter_sram_kib": ("--filter-sram", "FilterSramSzkB"),
              "ofmap_sram_kib": ("--ofmap-sram", "OfmapSramSzkB"),
              "dram_bw": ("--dram-bw", "InterfaceBandwidth/Bandwidth")}


def _config(args):
    kw = {}
    if args.config:
        kw = read_scalesim_cfg(args.config)
        kw["name"] = kw.pop("run_name")
    over = {"rows": args.rows, "cols": args.cols, "dataflow": args.dataflow, "ifmap_sram_kib": args.ifmap_sram,
            "filter_sram_kib": args.filter_sram, "ofmap_sram_kib": args.ofmap_sram,
            "word_bytes": args.word_bytes, "pe": args.pe, "pe_stages": args.pe_stages}
    over = {k: v for k, v in over.items() if v is not None}
    if args.dram_bw is not None:
        over["dram_bw"] = args.dram_bw
    for k, v in over.items():
        if args.config and k in _CFG_NAMES and str(kw.get(k)) != str(v):
            flag, name = _CFG_NAMES[k]
            print(f"note: {flag} {v} overrides the config's {name} {kw.get(k)}", file=sys.stderr)
    over.pop("dram_bw", None)
    kw.update(over)
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


_COST_OPTS = (("node_scale", "--node-scale"), ("vdd", "--vdd"), ("area_scale", "--area-scale"),
              ("ofmap_word", "--ofmap-word"), ("pe_area_ge", "--pe-area-ge"))


def _cost_model(args):
    """The SynthCostModel asked for by --cost and its options (None without --cost)."""
    given = [flag for attr, flag in _COST_OPTS if getattr(args, attr, None) is not None]
    if not args.cost:
        if given:
            raise ValueError(f"{given[0]} needs --cost")
        return None
    kw = {attr: getattr(args, attr) for attr, _ in _COST_OPTS if getattr(args, attr) is not None}
    try:
        return SynthCostModel(**kw)
    except (TypeError, ValueError) as e:
        msg = str(e)
        for attr, flag in _COST_OPTS:
            if msg.startswith(attr + " "):
                raise ValueError(flag + msg[len(attr):]) from None
        raise


def _cost_lines(res, model, cfg):
    d = model.describe(cfg)
    a = d["area_um2"]
    e = res.total.energy_breakdown_pj
    tot = res.total.energy_pj or 0.0
    mac = e.get("mac", 0.0)
    sram = sum(v for k, v in e.items() if k.startswith("sram"))
    dram = sum(v for k, v in e.items() if k.startswith("dram"))

    def pct(x):
        return f"{100 * x / tot:.1f}%" if tot else "-"
    ff = "" if d["pe_flip_flops"] is None else f", {d['pe_flip_flops']} FF"
    return [
        f"cost model {d['model']} (45 nm x node-scale {d['node_scale']:g}, {d['vdd']:g} V, "
        f"area x {d['area_scale']:g}): PE {d['pe']} ({cfg.dataflow}) {d['pe_area_ge']:.1f} GE = "
        f"{d['pe_area_um2']:.1f} um^2{ff}, E_MAC {d['e_mac_pj']:.3f} pJ",
        f"array area {a['total'] / 1e6:.4f} mm^2 = {a['n_pe']} PEs {a['pes'] / 1e6:.4f} mm^2 + edge "
        f"registers {a['edges'] / 1e6:.4f} mm^2 ({a['edge_bits']} bits) + SRAM "
        f"{a['sram'] / 1e6:.4f} mm^2 (ifmap {a['sram_ifmap'] / 1e6:.4f}, "
        f"filter {a['sram_filter'] / 1e6:.4f}, "
        f"ofmap {a['sram_ofmap'] / 1e6:.4f})",
        f"energy total {tot / 1e6:.3f} uJ: MAC {mac / 1e6:.3f} uJ ({pct(mac)}), SRAM {sram / 1e6:.3f} uJ "
        f"({pct(sram)}), DRAM {dram / 1e6:.3f} uJ ({pct(dram)})",
    ]


def _cost_csv(res, area_um2):
    """The simulator's CSV with energy per event group and the array area appended."""
    rows = list(csv.reader(io.StringIO(res.to_csv())))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(rows[0] + ["energy_mac_pj", "energy_sram_pj", "energy_dram_pj", "area_mm2"])
    for row, l in zip(rows[1:], res.layers):
        e = l.energy_breakdown_pj
        w.writerow(row + [e.get("mac"), sum(v for k, v in e.items() if k.startswith("sram")),
                          sum(v for k, v in e.items() if k.startswith("dram")), area_um2 / 1e6])
    return buf.getvalue()


def run(args):
    if args.topology_kind and not args.topology:
        raise UsageError("--topology-kind applies to --topology files, not to --gemm")
    for flag, path in (("--json", args.json), ("--csv", args.csv)):
        if path:
            check_output(flag, path)
    if args.json == "-" and args.csv == "-":
        raise UsageError("--json and --csv cannot both be standard output")
    cfg = _config(args)
    try:
        parse_pe(cfg.pe)              # a bad --pe fails here, with or without --cost
    except ValueError as e:
        raise ValueError(f"--{e}") from None
    model = _cost_model(args)
    if args.gemm:
        vals = []
        for name, v in zip("MKN", args.gemm):
            try:
                vals.append(int(v))
            except ValueError:
                raise ValueError(f"--gemm {name} must be an integer >= 1, not {v!r}") from None
        layers = [gemm_layer("gemm", *vals)]
    else:
        layers = read_topology(args.topology, kind=args.topology_kind)
        if not layers:
            raise ValueError(f"--topology file {args.topology!r} has no layers")
    if model is not None:
        model.pe_cost(cfg)            # synthesise (or read the cache) before the progress bar
    res = simulate_topology(layers, cfg, cost_model=model,
                            progress=len(layers) > 1 and sys.stderr.isatty())
    to_stdout = "-" in (args.json, args.csv)
    if not args.quiet and not to_stdout:
        print_table(res.rows(), res.title())
        if model is not None:
            for line in _cost_lines(res, model, cfg):
                print(line)
    if args.schedule and not to_stdout:
        for l in layers:
            s = schedule(*l.gemm, cfg)
            ph = s.phases()
            print(f"{l.name}: Sr={s.Sr} Sc={s.Sc} T={s.T}; {s.row_folds} x {s.col_folds} folds of "
                  f"P = {ph['preload']} preload + {ph['stream']} stream + {ph['row_skew']} row skew + "
                  f"{ph['col_skew']} col skew = {ph['period']} cycles; compute_cycles = {s.compute_cycles}, "
                  f"latency = {s.latency} (drain {ph['drain']})")
    if args.csv:
        write_text(args.csv, res.to_csv() if model is None else _cost_csv(res, res.area_um2))
    if args.json:
        d = res.as_dict()
        if model is not None:
            d["area_mm2"] = res.area_um2 / 1e6
            d["cost"] = model.describe(cfg)
        write_json(args.json, d)
    return 0
