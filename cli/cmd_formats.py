"""``lowbit formats``: the table of number formats, or one value through every rounding mode."""

import numpy as np

from lowbit.models import formats

from .table import print_table

__all__ = ["register", "format_table", "value_report"]


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


def value_report(fmt, value, sr_bits=8, seed=0):
    """Rows of how ``value`` encodes under every rounding mode and saturation setting."""
    rows = [("rounding", "saturate", "code (hex)", "code (bin)", "decoded", "error")]
    x = np.array([value], np.float64)
    width = (fmt.bits + 3) // 4
    for rounding in formats.ROUNDINGS:
        for sat in (False, True):
            kw = {}
            if rounding == "stochastic":
                kw = dict(random_bits=np.random.default_rng(seed), sr_bits=sr_bits)
            code = fmt.encode(x, rounding=rounding, saturate=sat, **kw)
            dec = fmt.decode(code)[0]
            err = "-" if not np.isfinite(dec) or not np.isfinite(value) else _fmt_num(float(dec) - value)
            rows.append((rounding + (f" (N={sr_bits}, seed {seed})" if kw else ""), str(sat),
                         f"0x{int(code[0]):0{width}X}", f"{int(code[0]):0{fmt.bits}b}",
                         _fmt_num(dec) if np.isfinite(dec) else str(dec), err))
    return rows


def _print_rows(rows, title=None):
    print_table(rows, title)


def run(args):
    if args.value is not None and args.format is None:
        raise ValueError("--value needs a format name, e.g. lowbit formats e4m3 --value 300")
    if args.format is None:
        _print_rows(format_table(), "lowbit number formats")
        return 0
    fmt = formats.get(args.format)
    _print_rows(format_table([fmt]))
    if args.value is not None:
        if fmt.kind == "int" and not np.isfinite(args.value):
            raise ValueError(f"--value must be finite for integer format {fmt.name}")
        if not fmt.has_nan and np.isnan(args.value):
            raise ValueError(f"--value NaN cannot be encoded: format {fmt.name} has no NaN")
        if not 1 <= args.sr_bits <= 32:
            raise ValueError(f"--sr-bits must be from 1 to 32, not {args.sr_bits}")
        _print_rows(value_report(fmt, args.value, args.sr_bits, args.seed),
                    f"{args.value!r} in {fmt.name}")
    return 0
