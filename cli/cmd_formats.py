"""``lowbit formats``: the table of number formats, or one value through every rounding mode."""

import numpy as np

from lowbit.models import formats

from .output import check_output, write_json
from .table import print_table

__all__ = ["register", "format_table", "value_report", "value_entries", "format_dict"]


def register(sub):
    p = sub.add_parser(
        "formats", help="table of the number formats; encode/decode one value",
        description="Without arguments: print every named format (bits, exponent/mantissa, bias, "
                    "max, min normal, min subnormal, Inf/NaN convention). With a format name and "
                    "--value: show how the value encodes and decodes under every rounding mode.")
    p.add_argument("format", nargs="?", help="format name (e4m3, e5m2, int8, e3m4fn, ...)")
    p.add_argument("--value", type=float, help="value to encode (needs a format)")
    p.add_argument("--sr-bits", type=int, default=8,
                   help="random bits for stochastic rounding (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the stochastic rounding draw")
    p.add_argument("--json", metavar="FILE",
                   help="write the table (and the value report) as JSON to FILE ('-': standard "
                        "output, instead of the tables)")
    p.set_defaults(func=run)


def _fmt_num(v):
    v = float(v)
    if v == 0 or (1e-3 <= abs(v) < 1e7 and v == round(v, 6)):
        return f"{v:g}"
    return f"{v:.6g}"


def format_table(names=None):
    """Rows (list of tuples of str) of the format table, header first."""
    rows = [("name", "bits", "kind", "exp", "man", "bias", "max", "min normal", "min subnormal",
             "Inf/NaN")]
    for name in names or formats.names():
        f = formats.get(name)
        if f.kind == "int":
            rows.append((f.name, str(f.bits), "signed int" if f.signed else "unsigned int", "-", "-",
                         "-", str(f.max), "-", "-", f.nan_convention))
        else:
            rows.append((f.name, str(f.bits), "float" if f.signed else "float (unsigned)",
                         str(f.exp_bits), str(f.man_bits), str(f.bias), _fmt_num(f.max),
                         _fmt_num(f.min_normal), _fmt_num(f.min_subnormal), f.nan_convention))
    return rows


def value_entries(fmt, value, sr_bits=8, seed=0):
    """How ``value`` encodes under every rounding mode and saturation setting: a list of
    ``{"rounding", "saturate", "sr_bits", "seed", "code", "decoded", "error"}`` (``sr_bits`` and
    ``seed`` for stochastic rounding only; ``error`` = decoded - value, None when either is not
    finite)."""
    out = []
    x = np.array([value], np.float64)
    for rounding in formats.ROUNDINGS:
        for sat in (False, True):
            kw = {}
            if rounding == "stochastic":
                kw = dict(random_bits=np.random.default_rng(seed), sr_bits=sr_bits)
            code = int(fmt.encode(x, rounding=rounding, saturate=sat, **kw)[0])
            dec = fmt.decode(np.array([code], fmt.code_dtype))[0]
            dec = int(dec) if fmt.kind == "int" else float(dec)
            err = (float(dec) - value if np.isfinite(dec) and np.isfinite(value) else None)
            out.append({"rounding": rounding, "saturate": sat,
                        **({"sr_bits": sr_bits, "seed": seed} if kw else {}),
                        "code": code, "decoded": dec, "error": err})
    return out


def value_report(fmt, value, sr_bits=8, seed=0):
    """Rows (header first) of :func:`value_entries` as text."""
    rows = [("rounding", "saturate", "code (hex)", "code (bin)", "decoded", "error")]
    width = (fmt.bits + 3) // 4
    for e in value_entries(fmt, value, sr_bits, seed):
        dec = e["decoded"]
        rows.append((e["rounding"] + (f" (N={e['sr_bits']}, seed {e['seed']})"
                                      if "sr_bits" in e else ""), str(e["saturate"]),
                     f"0x{e['code']:0{width}X}", f"{e['code']:0{fmt.bits}b}",
                     str(dec) if isinstance(dec, int) else                 # exact integers
                     _fmt_num(dec) if np.isfinite(dec) else str(dec),
                     "-" if e["error"] is None else _fmt_num(e["error"])))
    return rows


def format_dict(fmt):
    """JSON-ready description of one format (``lowbit formats --json``)."""
    d = {"name": fmt.name, "bits": fmt.bits, "kind": fmt.kind, "signed": bool(fmt.signed),
         "max": float(fmt.max) if fmt.kind != "int" else int(fmt.max),
         "min": float(fmt.min) if fmt.kind != "int" else int(fmt.min),
         "has_inf": bool(fmt.has_inf), "has_nan": bool(fmt.has_nan),
         "convention": fmt.nan_convention}
    if fmt.kind != "int":
        d.update(exp_bits=fmt.exp_bits, man_bits=fmt.man_bits, bias=fmt.bias,
                 specials=fmt.specials, min_normal=float(fmt.min_normal),
                 min_subnormal=float(fmt.min_subnormal))
    return d


def run(args):
    if args.value is not None and args.format is None:
        raise ValueError("--value needs a format name, e.g. lowbit formats e4m3 --value 300")
    if args.json:
        check_output("--json", args.json)
    if args.format is None:
        if args.json:
            write_json(args.json, {"formats": [format_dict(formats.get(n))
                                               for n in formats.names()]})
        if args.json != "-":
            print_table(format_table(), "lowbit number formats")
        return 0
    fmt = formats.get(args.format)
    doc = {"format": format_dict(fmt)}
    report = None
    if args.value is not None:
        if fmt.kind == "int" and not np.isfinite(args.value):
            raise ValueError(f"--value must be finite for integer format {fmt.name}")
        if not fmt.has_nan and np.isnan(args.value):
            raise ValueError(f"--value NaN cannot be encoded: format {fmt.name} has no NaN")
        if not 1 <= args.sr_bits <= 32:
            raise ValueError(f"--sr-bits must be from 1 to 32, not {args.sr_bits}")
        report = value_report(fmt, args.value, args.sr_bits, args.seed)
        doc["value"] = args.value
        doc["encodings"] = value_entries(fmt, args.value, args.sr_bits, args.seed)
    if args.json:
        write_json(args.json, doc)
    if args.json != "-":
        print_table(format_table([fmt]))
        if report is not None:
            print_table(report, f"{args.value!r} in {fmt.name}")
    return 0
