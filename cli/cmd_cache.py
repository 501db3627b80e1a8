"""``lowbit cache info|clear [KIND ...]``: where lowbit's caches live and what they hold.

The caches (:mod:`lowbit.fpga.cache`) live under ``$LOWBIT_CACHE``, else ``~/.cache/lowbit``:
``synth/`` holds synthesis and place-and-route results and netlists (also the toggle-energy
results of ``lowbit compare``), ``cosim/`` the simulator builds of ``lowbit cosim``. Each entry
is keyed by a sha256 of everything that determines it (inputs and tool versions), so a stale
entry is never used; ``clear`` only frees disk space.
"""

from lowbit.fpga import cache

from .errors import UsageError
from .output import check_output, write_json
from .table import print_table

__all__ = ["register", "run"]


def register(subparsers):
    p = subparsers.add_parser(
        "cache", help="show or clear the result caches (synthesis, simulator builds)",
        description="Show where lowbit's caches are and what they hold, or clear them. "
                    "Location: $LOWBIT_CACHE, else ~/.cache/lowbit; one folder per kind "
                    f"({', '.join(cache.KINDS)}).")
    p.add_argument("action", choices=("info", "clear"),
                   help="info: path, entries and size of each kind; clear: delete them")
    p.add_argument("kinds", nargs="*", metavar="KIND",
                   help=f"which caches ({', '.join(cache.KINDS)}; default all)")
    p.add_argument("--json", metavar="FILE",
                   help="info: write the figures as JSON to FILE ('-': standard output)")
    p.set_defaults(func=run)


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def run(args):
    for kind in args.kinds:
        if kind not in cache.KINDS:
            raise UsageError(f"KIND must be one of {', '.join(cache.KINDS)}, not {kind!r}")
    kinds = args.kinds or None
    if args.action == "clear":
        if args.json is not None:
            raise UsageError("--json goes with `lowbit cache info`, not `clear`")
        for kind, n in cache.clear(kinds).items():
            print(f"{kind}: removed {n} entries from {cache.cache_dir(kind)}")
        return 0
    if args.json is not None:
        check_output("--json", args.json)
    info = cache.usage(kinds)
    if args.json is not None:
        write_json(args.json, {"root": str(cache.cache_root()), "kinds": info})
        if args.json == "-":
            return 0
    print_table([["kind", "entries", "size", "path"]]
                + [[k, str(v["entries"]), _size(v["bytes"]), v["path"]] for k, v in info.items()],
                f"lowbit caches under {cache.cache_root()} ($LOWBIT_CACHE, else ~/.cache/lowbit)")
    return 0
