"""``lowbit sweep FILE``: a design-space sweep on Dask and its Pareto report
(:mod:`lowbit.sim.sweep`, :mod:`lowbit.sim.pareto`).

Examples::

    lowbit sweep examples/fp8_int8_mx_sweep.toml --report
    lowbit sweep sweep.toml --dry-run                   # the points, nothing run
    lowbit sweep sweep.toml --scheduler tcp://10.0.0.5:8786 -o results/
"""

import os
import pathlib
import sys

from rich.console import Console
from rich.live import Live
from rich.text import Text

from lowbit.sim import pareto, sweep

from .errors import ToolFailure, UsageError
from .output import STDOUT, check_folder, check_output, write_json
from .table import print_table

__all__ = ["register", "run"]


def register(sub):
    p = sub.add_parser(
        "sweep", help="design-space sweep of catalogue units on Dask, tidy table, Pareto report",
        description="Expand the sweep FILE (TOML: designs, parameter axes, targets, measures, "
                    "constraints), measure every point as a Dask task (a LocalCluster of one "
                    "worker per core, or --scheduler), and write one table (points.csv, "
                    "points.jsonl) to -o DIR. Finished points are not measured again: a re-run "
                    "resumes, and points in the cache are read from it. Exit status 3 when a "
                    "point failed or timed out (its error is in the table).")
    p.add_argument("file", metavar="FILE", help="the sweep file (TOML)")
    p.add_argument("-o", "--out", metavar="DIR", default=None,
                   help="output folder (default: ./<sweep name>-sweep)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run on an existing Dask cluster (tcp://HOST:PORT); results come "
                            "back here and the table is written here")
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help=f"worker processes of the local cluster, 1..256 (default: the "
                            f"cores, {sweep.default_workers()} here)")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds per point before it is killed (default: the file's timeout, "
                        "else 1800)")
    p.add_argument("--fresh", action="store_true",
                   help="do not resume from the previous table in DIR (cached points are "
                        "still read from the cache)")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the point and synthesis caches")
    p.add_argument("--dry-run", action="store_true",
                   help="validate and expand: print the points and what would run, run nothing")
    p.add_argument("--report", action="store_true",
                   help="after the sweep, print the Pareto fronts (area vs error, energy vs "
                        "error, Fmax vs area) and draw them to --plot")
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="PNG of the fronts (default DIR/pareto.png; implies --report)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="summary as JSON (counts, table paths, fronts) to FILE ('-': standard "
                        "output, instead of the text report)")
    p.set_defaults(func=run)


def _spec(path):
    if not os.path.isfile(path):
        raise UsageError(f"FILE {path!r} does not exist")
    try:
        return sweep.load(path)
    except sweep.SweepFileError as e:
        for line in e.errors[:-1]:
            print(f"lowbit sweep: error: {line}", file=sys.stderr)
        raise UsageError(e.errors[-1]) from None


def _dry_run(spec, out, report):
    points = sweep.expand(spec)
    previous = {r["point"]: r for r in sweep.read_jsonl(pathlib.Path(out) / "points.jsonl")}
    rows = [["point", "label", "target", "would"]]
    for p in points:
        if p.skip:
            would = f"skip: {p.skip}"
        elif previous.get(p.id, {}).get("status") == "ok":
            would = "resume (in the table)"
        else:
            would = "run"
        rows.append([p.id, p.label, p.target, would])
    print_table(rows, f"{spec.name}: {len(points)} points ({sum(not p.skip for p in points)} "
                      f"to measure)", align="llll", file=report)
    return 0


class _Progress:
    """done / cached / failed / running and the ETA: a live line on a terminal, one line per
    finished point otherwise."""

    def __init__(self, console):
        self.console = console
        self.live = None
        self.text = ""

    def __call__(self, c, eta, row):
        eta_s = "-" if eta is None else f"{int(eta // 60)}:{int(eta % 60):02d}"
        self.text = (f"{c['done']}/{c['todo']} done, {c['cached'] + c['resumed']} cached or "
                     f"resumed, {c['skipped']} skipped, {c['failed']} failed, "
                     f"{c['running']} running, ETA {eta_s}")
        if self.console.is_terminal:
            if self.live is None:
                self.live = Live(Text(self.text), console=self.console, transient=True,
                                 refresh_per_second=4)
                self.live.start()
            self.live.update(Text(self.text))
            if row is not None and row["status"] != "ok":
                self.console.print(f"{row['status']}: {row['label']}: {row.get('reason', '')}")
        elif row is not None:
            tail = "" if row["status"] == "ok" else f": {row.get('reason', '')}"
            print(f"[{c['done']}/{c['todo']}] {row['status']} {row['label']} "
                  f"({row.get('seconds', 0):.1f} s){tail}; {self.text}", file=sys.stderr,
                  flush=True)

    def stop(self):
        if self.live is not None:
            self.live.stop()


def run(args):
    spec = _spec(args.file)
    out = args.out or f"{spec.name}-sweep"
    check_folder("-o", out)
    if args.workers is not None and not 1 <= args.workers <= 256:
        raise UsageError(f"--workers must be an integer from 1 to 256, not {args.workers}")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be a number of seconds > 0, not {args.timeout:g}")
    want_report = args.report or args.plot is not None
    plot = args.plot or str(pathlib.Path(out) / "pareto.png")
    if want_report:
        check_output("--plot", plot, stdout=False, suffix=".png", create_parents=True)
    if args.json is not None:
        check_output("--json", args.json)
    report = sys.stderr if args.json == STDOUT else sys.stdout
    if args.dry_run:
        return _dry_run(spec, out, report)
    progress = _Progress(Console(stderr=True))
    try:
        result = sweep.run(spec, out, scheduler=args.scheduler, workers=args.workers,
                           resume=not args.fresh, use_cache=not args.no_cache,
                           timeout=args.timeout, progress=progress)
    except KeyboardInterrupt:
        progress.stop()
        print(f"lowbit sweep: interrupted; finished points are in "
              f"{os.path.abspath(os.path.join(out, 'points.csv'))} (a re-run resumes)",
              file=sys.stderr)
        raise
    finally:
        progress.stop()
    c = result.counts
    print(f"{spec.name}: {c['points']} points: {c['ok']} measured ({c['computed']} computed now, "
          f"{c['resumed']} resumed from the table, {c['cached']} from the cache), "
          f"{c['skipped']} skipped, {c['failed']} failed, {c['timeout']} timed out; "
          f"{result.seconds:.1f} s" + (f" on {result.workers} workers" if result.workers else ""),
          file=report)
    print(f"table: {os.path.abspath(result.csv_path)} (and points.jsonl)", file=report)
    summary = {"name": spec.name, "counts": c, "seconds": result.seconds,
               "workers": result.workers, "csv": os.path.abspath(result.csv_path),
               "jsonl": os.path.abspath(result.jsonl_path), "fronts": {}}
    if want_report or args.json is not None:
        for f, cand, on in pareto.fronts(result.rows):
            summary["fronts"][f.key] = {"title": f.title, "x": f.x, "y": f.y,
                                        "points": [result.rows[i]["point"] for i in on],
                                        "candidates": len(cand)}
            if want_report:
                print(file=report)
                print_table(pareto.front_rows(result.rows, f, on),
                            f"Pareto front, {f.title}: {len(on)} of {len(cand)} points",
                            file=report)
    if want_report:
        if pareto.fronts(result.rows):
            pareto.plot(result.rows, plot, title=f"lowbit sweep {spec.name}: "
                                                 f"{c['ok']} measured points")
            summary["plot"] = os.path.abspath(plot)
            print(f"plot: {os.path.abspath(plot)}", file=report)
        else:
            print("no Pareto view: the table has no measured point with two of its figures",
                  file=report)
    if args.json is not None:
        write_json(args.json, summary)
    bad = c["failed"] + c["timeout"]
    if bad:
        raise ToolFailure(f"{bad} of {c['points']} points failed or timed out; their errors are "
                          f"in {os.path.abspath(result.csv_path)} (a re-run tries them again)")
    return 0
