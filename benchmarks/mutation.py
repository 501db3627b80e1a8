"""Mutation testing of the golden models and the simulator's formulas with Cosmic Ray.

    python benchmarks/mutation.py --list                        # mutants per module and operator, no run
    python benchmarks/mutation.py --max-mutants 300             # the default modules, 300 sampled each
    python benchmarks/mutation.py --modules models/bfp.py --tests tests/test_models_bfp.py
    python benchmarks/mutation.py --modules "sim/systolic.py:_fits,_stalls" --max-mutants 50
    python benchmarks/mutation.py --rerun .mutation/report.json # only the survivors of former run(s)

Prints, per module and in total, the mutation score ``killed / run`` (a time-out counts as killed
and is also listed), and every surviving mutant as ``file:line operator`` with the original and the
mutated source line. ``--json`` writes the same as a report (default ``.mutation/report.json``).

Tool. Cosmic Ray 8.7.0 (PyPI ``cosmic-ray``): it mutates the module file **in place**, runs a test
command in a subprocess and restores the file, which suits this layout (``models/`` is installed
as ``lowbit.models`` through setuptools' package-dir mapping in an editable install, so the tests
import the mutated file without copying the tree). It lives in its own virtual environment
``.venv-mutation`` at the repository root (gitignored by ``.venv-*/``), created on demand, so its
dependencies never meet lowbit's. Its work files (configuration, session databases, backups,
report) are in ``.mutation/`` (gitignored). One session per module: ``cosmic-ray init`` lists the
mutants, this script marks the ones outside the selected definitions and outside the sample as
skipped (as Cosmic Ray's own ``cr-filter-*`` tools do), ``cosmic-ray exec`` runs the rest and
``cosmic-ray dump`` gives the results.

Tests. By default each module is tested with the fast test files of the modules that use it
(:data:`DEFAULT_TESTS`; never co-simulation), run as ``pytest -x -q -n 0``; ``--tests`` replaces
them for every module. The unmutated code must pass them first (the baseline, which also sets the
time-out: 3 x baseline + 10 s unless ``--timeout``).

Sources are restored always: Cosmic Ray restores each file after its test run (also on Ctrl-C);
in addition this script keeps a copy of every module it mutates in ``.mutation/backup`` and
writes it back on exit, on SIGINT/SIGTERM/SIGHUP, and at the start of the next run if a former
run was killed before it could (``kill -9``). Do not run other tests in the same working tree
while a run is in progress: they would see the mutant of the moment.

Sampling. ``--max-mutants N`` keeps at most N mutants of each module, drawn with ``--seed``
(default 14) from the mutants sorted by position and operator: the same source, seed and
Cosmic Ray version give the same sample.

Why not mutmut: mutmut 3 mutates a copy of the tree in ``mutants/`` and runs pytest inside its
own process, so it must share lowbit's virtual environment, and the copy is never imported: the
editable install maps ``lowbit.models`` to ``models/`` of the checkout (tried with mutmut 3.8.1).

Measured (issue 14; 2 loaded cores), on models/ and sim/ as of commit d28ab13 (before the merge
of main's tensor-core work; a fresh sample of the merged sources is not yet scored):
``--max-mutants 150`` (seed 14) on the four default modules, 600 of their 9,995 mutants
(sim/systolic.py: 1,278 in its formulas), about 100 min wall (its CPU time was not recorded: the
report was lost in a machine restart; a ``--rerun`` of 56 survivors took 23 min wall, 12 CPU-min).
First pass: 470/600 killed (78.3 %; shared_exp 107+0/150, mac 119+3/150, models/systolic 102+1/150,
sim/systolic 136+2/150, killed+time-outs). Every survivor was then judged: 91 were missing tests,
now added (``--rerun`` of the survivors kills them), 39 are equivalent (each with its reason in
``benchmarks/mutation_equivalent.md``): score 561/600 (93.5 %; shared_exp 123,
mac 141, models/systolic 148, sim/systolic 149 of 150), every non-equivalent mutant of the sample
killed (the last re-run: 31 survivors of shared_exp, 10 min wall, 7 CPU-min).
"""

import argparse
import ast
import collections
import json
import os
import pathlib
import random
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-mutation"
WORK = ROOT / ".mutation"
TOOL = "cosmic-ray==8.7.0"

#: Modules mutated by default; ``path:def1,def2`` restricts a module to those definitions
#: (``Class.method`` or a top-level name). sim/systolic.py: its cycle and memory formulas.
DEFAULT_MODULES = [
    "models/shared_exp.py",
    "models/mac.py",
    "models/systolic.py",
    "sim/systolic.py:ArrayConfig.sram_words,_fits,_memory_counts,_fold_traffic,_stalls,simulate_gemm,"
    "_sum_results",
]

#: The fast test files that exercise each module (its own and its users').
DEFAULT_TESTS = {
    "models/shared_exp.py": ["tests/test_models_shared_exp.py", "tests/test_models_bfp.py",
                             "tests/test_models_mx.py"],
    "models/bfp.py": ["tests/test_models_bfp.py", "tests/test_models_mx.py"],
    "models/mx.py": ["tests/test_models_mx.py"],
    "models/mac.py": ["tests/test_models_mac.py", "tests/test_models_systolic.py"],
    "models/systolic.py": ["tests/test_models_systolic.py", "tests/test_sim_systolic.py"],
    "sim/systolic.py": ["tests/test_sim_systolic.py"],
}

# A helper run by the tool's Python: mark every pending work item whose job id is not in the
# given list as skipped, the way Cosmic Ray's cr-filter-operators does.
_FILTER = """
import json, sys
from cosmic_ray.work_db import use_db, WorkDB
from cosmic_ray.work_item import WorkResult, WorkerOutcome
args = json.load(sys.stdin)
keep = set(args["keep"])
with use_db(args["session"], WorkDB.Mode.open) as db:
    for item in list(db.pending_work_items):
        if item.job_id not in keep:
            db.set_result(item.job_id, WorkResult(output=args["why"].get(item.job_id, "not sampled"),
                                                  worker_outcome=WorkerOutcome.SKIPPED))
"""


def tool_python():
    """The Python of ``.venv-mutation`` with Cosmic Ray (created on first use)."""
    py = VENV / "bin" / "python"
    if not (VENV / "bin" / "cosmic-ray").exists():
        print(f"creating {VENV} with {TOOL} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", TOOL], check=True)
    return str(py)


def cosmic_ray(*args, **kw):
    return subprocess.run([str(VENV / "bin" / "cosmic-ray"), *map(str, args)], cwd=ROOT, **kw)


# ------------------------------------------------------------------------------------------------
# sources: backup and restore


class Sources:
    """Byte copies of the mutated modules, written back on exit and by the next run if needed."""

    def __init__(self, paths):
        self.paths = [ROOT / p for p in paths]
        self.dir = WORK / "backup"

    def _copy(self, p):
        return self.dir / str(p.relative_to(ROOT)).replace("/", "__")

    def recover(self):
        """Write back the copies a former, killed run left (its marker file is still there)."""
        marker = self.dir / "IN_PROGRESS"
        if not marker.exists():
            return
        for line in marker.read_text().splitlines():
            p = ROOT / line
            c = self._copy(p)
            if c.exists() and p.read_bytes() != c.read_bytes():
                p.write_bytes(c.read_bytes())
                print(f"restored {line} from a former run's backup", file=sys.stderr)
        marker.unlink()

    def save(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        for p in self.paths:
            self._copy(p).write_bytes(p.read_bytes())
        (self.dir / "IN_PROGRESS").write_text("".join(f"{p.relative_to(ROOT)}\n" for p in self.paths))

    def restore(self):
        changed = []
        for p in self.paths:
            c = self._copy(p)
            if c.exists() and p.read_bytes() != c.read_bytes():
                p.write_bytes(c.read_bytes())
                changed.append(str(p.relative_to(ROOT)))
        marker = self.dir / "IN_PROGRESS"
        if marker.exists():
            marker.unlink()
        return changed


# ------------------------------------------------------------------------------------------------
# selection


def parse_module(spec):
    """``path[:def1,def2]`` -> (path, [definition names] or None)."""
    path, _, defs = spec.partition(":")
    if not (ROOT / path).is_file():
        raise SystemExit(f"mutation.py: error: --modules: no file {path!r} in {ROOT}")
    return path, ([d.strip() for d in defs.split(",") if d.strip()] or None)


def definition_lines(path, names):
    """Line ranges (first, last) of the named definitions (``f``, ``Class``, ``Class.method``)."""
    tree = ast.parse((ROOT / path).read_text())
    found = {}

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = prefix + child.name
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                found[q] = (first, child.end_lineno)
                if isinstance(child, ast.ClassDef):
                    walk(child, q + ".")

    walk(tree, "")
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"mutation.py: error: --modules: {path} has no definition {', '.join(missing)}")
    return [found[n] for n in names]


def load_items(session):
    out = cosmic_ray("dump", session, check=True, capture_output=True, text=True).stdout
    items = []
    for line in out.splitlines():
        item, result = json.loads(line)
        m = item["mutations"][0]
        items.append({"job_id": item["job_id"], "module": m["module_path"], "operator": m["operator_name"],
                      "occurrence": m["occurrence"], "line": m["start_pos"][0], "col": m["start_pos"][1],
                      "end": m["end_pos"], "definition": m.get("definition_name"), "result": result})
    items.sort(key=lambda d: (d["line"], d["col"], d["operator"], d["occurrence"]))
    return items


def select(items, ranges, max_mutants, seed, operators, exclude, rerun):
    """(kept items, {job_id: why skipped})."""
    why = {}
    pool = []
    for it in items:
        key = (it["module"], it["operator"], it["occurrence"], it["line"], it["col"])
        if ranges is not None and not any(a <= it["line"] <= b for a, b in ranges):
            why[it["job_id"]] = "outside the selected definitions"
        elif operators and not re.search(operators, it["operator"]):
            why[it["job_id"]] = "operator not selected"
        elif exclude and re.search(exclude, it["operator"]):
            why[it["job_id"]] = "operator excluded"
        elif rerun is not None and key not in rerun:
            why[it["job_id"]] = "not a survivor of the former run"
        else:
            pool.append(it)
    if max_mutants is not None and len(pool) > max_mutants:
        keep = random.Random(seed).sample(pool, max_mutants)
        ids = {it["job_id"] for it in keep}
        for it in pool:
            if it["job_id"] not in ids:
                why[it["job_id"]] = "not sampled"
        pool = sorted(keep, key=lambda d: (d["line"], d["col"], d["operator"], d["occurrence"]))
    return pool, why


# ------------------------------------------------------------------------------------------------
# running


def test_command(tests):
    py = ROOT / ".venv" / "bin" / "python"
    py = py if py.exists() else pathlib.Path(sys.executable)
    return " ".join([shlex.quote(str(py)), "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider",
                     *map(shlex.quote, tests)])


def baseline(cmd):
    t0 = time.monotonic()
    r = subprocess.run(shlex.split(cmd), cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    dt = time.monotonic() - t0
    if r.returncode != 0:
        tail = "\n".join(r.stdout.splitlines()[-15:])
        raise SystemExit(f"mutation.py: the tests fail on the unmutated code:\n{cmd}\n{tail}")
    return dt


def write_config(path, module, cmd, timeout):
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {float(timeout)}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(cmd)}\n"
        "\n[cosmic-ray.distributor]\nname = \"local\"\n")


def progress(session, total, label, stop):
    """Print the count of finished mutants now and then (read-only look at the session DB)."""
    t0 = time.monotonic()
    last = -1
    while not stop.wait(30):
        try:
            with sqlite3.connect(f"file:{session}?mode=ro", uri=True, timeout=5) as db:
                done = db.execute("SELECT COUNT(*) FROM work_results "
                                  "WHERE upper(worker_outcome) != 'SKIPPED'").fetchone()[0]
        except sqlite3.Error:
            continue
        if done != last:
            el = time.monotonic() - t0
            eta = el / done * (total - done) if done else float("nan")
            print(f"  {label}: {done}/{total} mutants, {el / 60:.1f} min, ~{eta / 60:.0f} min left",
                  file=sys.stderr, flush=True)
            last = done


def run_module(path, ranges, tests, args, rerun):
    name = path.replace("/", "__")
    session = WORK / f"{name}.sqlite"
    config = WORK / f"{name}.toml"
    cmd = test_command(tests)
    if args.resume and session.exists():
        items = load_items(session)
    else:
        write_config(config, path, cmd, 1.0)
        cosmic_ray("init", "--force", config, session, check=True)
        items = load_items(session)
    pending = [it for it in items if it["result"] is None]
    kept, why = select(pending, ranges, args.max_mutants, args.seed, args.operators,
                       args.exclude_operators, rerun)
    if args.list:
        return items, kept
    skip = {it["job_id"]: why[it["job_id"]] for it in pending if it["job_id"] in why}
    if skip:
        subprocess.run([tool_python(), "-c", _FILTER], input=json.dumps(
            {"session": str(session), "keep": [it["job_id"] for it in kept], "why": skip}),
            text=True, check=True, cwd=ROOT)
    base = baseline(cmd)
    timeout = args.timeout if args.timeout else 3 * base + 10
    write_config(config, path, cmd, timeout)
    print(f"{path}: {len(items)} mutants, {len(kept)} to run; tests {' '.join(tests)} "
          f"(baseline {base:.1f} s, time-out {timeout:.0f} s)", file=sys.stderr, flush=True)
    stop = threading.Event()
    th = threading.Thread(target=progress, args=(session, len(kept), path, stop), daemon=True)
    th.start()
    # same process group: a Ctrl-C reaches Cosmic Ray too, which restores the file it mutated
    proc = subprocess.Popen([str(VENV / "bin" / "cosmic-ray"), "exec", str(config), str(session)], cwd=ROOT)
    try:
        proc.wait()
    except BaseException:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    finally:
        stop.set()
    if proc.returncode != 0:
        raise SystemExit(f"mutation.py: cosmic-ray exec exited with {proc.returncode}")
    return load_items(session), kept


# ------------------------------------------------------------------------------------------------
# report


def classify(result):
    if result is None:
        return "pending"
    if result["worker_outcome"] == "skipped":
        return "skipped"
    if result["worker_outcome"] == "no-test":
        return "no-test"
    if result["worker_outcome"] != "normal" or result["test_outcome"] == "incompetent":
        return "incompetent"
    if result["test_outcome"] == "killed":
        return "timeout" if (result.get("output") or "").strip() == "timeout" else "killed"
    return "survived"


def diff_lines(diff):
    old = [l[1:].strip() for l in (diff or "").splitlines() if l.startswith("-") and not l.startswith("---")]
    new = [l[1:].strip() for l in (diff or "").splitlines() if l.startswith("+") and not l.startswith("+++")]
    return " / ".join(old), " / ".join(new)


def report(per_module):
    rows = []
    total = collections.Counter()
    survivors = []
    for path, items in per_module.items():
        c = collections.Counter(classify(it["result"]) for it in items)
        total.update(c)
        run = c["killed"] + c["timeout"] + c["survived"]
        rows.append((path, len(items), run, c["killed"], c["timeout"], c["survived"], c["incompetent"]))
        for it in items:
            if classify(it["result"]) == "survived":
                old, new = diff_lines(it["result"].get("diff"))
                survivors.append({"module": it["module"], "line": it["line"], "col": it["col"],
                                  "operator": it["operator"], "occurrence": it["occurrence"],
                                  "definition": it["definition"], "old": old, "new": new})
    print()
    print(f"{'module':<24} {'mutants':>8} {'run':>6} {'killed':>7} {'timeout':>8} {'survived':>9} "
          f"{'incompetent':>12} {'score':>8}")
    run_all = total["killed"] + total["timeout"] + total["survived"]
    for path, n, run, k, t, s, inc in rows + [("total", sum(r[1] for r in rows), run_all, total["killed"],
                                                 total["timeout"], total["survived"], total["incompetent"])]:
        score = f"{100 * (k + t) / run:.1f}%" if run else "-"
        print(f"{path:<24} {n:>8} {run:>6} {k:>7} {t:>8} {s:>9} {inc:>12} {score:>8}")
    print(f"\nmutation score: {total['killed'] + total['timeout']}/{run_all} killed "
          f"({total['timeout']} by time-out), {total['survived']} survived, "
          f"{total['incompetent']} incompetent (not counted)")
    if survivors:
        print("\nsurvivors:")
        for s in survivors:
            print(f"  {s['module']}:{s['line']} [{s['definition']}] {s['operator']}\n"
                  f"      - {s['old']}\n      + {s['new']}")
    timeouts = [it for items in per_module.values() for it in items if classify(it["result"]) == "timeout"]
    if timeouts:
        print("\ntime-outs (counted as killed):")
        for it in timeouts:
            print(f"  {it['module']}:{it['line']} {it['operator']}")
    return {"total": dict(total), "score": [total["killed"] + total["timeout"], run_all],
            "modules": {r[0]: dict(zip(("mutants", "run", "killed", "timeout", "survived", "incompetent"), r[1:]))
                        for r in rows},
            "survivors": survivors,
            "timeouts": [{"module": it["module"], "line": it["line"], "operator": it["operator"]} for it in timeouts]}


# ------------------------------------------------------------------------------------------------


def main(argv=None):
    head, _, rest = __doc__.partition("\n\n")
    ap = argparse.ArgumentParser(description=head, epilog=rest,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modules", nargs="+", metavar="PATH[:DEFS]",
                    help="files to mutate, relative to the repository; ':f,Class.m' keeps only those "
                         f"definitions (default: {' '.join(DEFAULT_MODULES)}; with --rerun: the "
                         "modules of the report's survivors)")
    ap.add_argument("--tests", nargs="+", metavar="TEST_FILE",
                    help="test files run against every mutant (default: per module, DEFAULT_TESTS)")
    ap.add_argument("--max-mutants", type=int, metavar="N",
                    help="run at most N mutants of each module, a deterministic sample (default: all)")
    ap.add_argument("--seed", type=int, default=14, help="seed of the sample (default 14)")
    ap.add_argument("--timeout", type=float, help="seconds per test run (default 3 x baseline + 10)")
    ap.add_argument("--operators", metavar="REGEX", help="only Cosmic Ray operators matching REGEX")
    ap.add_argument("--exclude-operators", metavar="REGEX", help="leave out operators matching REGEX")
    ap.add_argument("--rerun", nargs="+", metavar="REPORT_JSON",
                    help="run only the survivors listed in former reports (and print their score after it)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the sessions in .mutation/ (after a Ctrl-C) instead of starting anew")
    ap.add_argument("--list", action="store_true", help="count the mutants per module and operator, run nothing")
    ap.add_argument("--json", default=str(WORK / "report.json"), help="report file (default .mutation/report.json)")
    args = ap.parse_args(argv)
    if args.max_mutants is not None and args.max_mutants < 1:
        ap.error(f"--max-mutants must be a positive integer, not {args.max_mutants}")

    rerun = prev = None
    if args.rerun:
        reps = [json.loads(pathlib.Path(r).read_text()) for r in args.rerun]
        prev = {"score": [sum(r["score"][0] for r in reps), sum(r["score"][1] for r in reps)],
                "survivors": [s for r in reps for s in r["survivors"]],
                "command": " + ".join(str(r.get("command")) for r in reps)}
        rerun = {(s["module"], s["operator"], s["occurrence"], s["line"], s["col"]) for s in prev["survivors"]}
        if args.modules is None:
            args.modules = sorted({s["module"] for s in prev["survivors"]})
    modules = [parse_module(m) for m in (args.modules or DEFAULT_MODULES)]
    for path, _ in modules:
        tests = args.tests or DEFAULT_TESTS.get(path)
        if not tests:
            ap.error(f"no default tests for {path}: give --tests")
        for t in tests:
            if not (ROOT / t).is_file():
                ap.error(f"--tests: no file {t!r}")

    tool_python()
    WORK.mkdir(exist_ok=True)
    sources = Sources([p for p, _ in modules])
    sources.recover()
    sources.save()

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    per_module = {}
    t0 = time.monotonic()
    try:
        for path, defs in modules:
            ranges = definition_lines(path, defs) if defs else None
            tests = args.tests or DEFAULT_TESTS[path]
            items, kept = run_module(path, ranges, tests, args, rerun)
            if args.list:
                ops = collections.Counter(re.sub(r"_[A-Za-z]+_[A-Za-z]+$", "_*", it["operator"]) for it in kept)
                print(f"{path}: {len(items)} mutants, {len(kept)} selected")
                for op, n in ops.most_common():
                    print(f"  {n:6d}  {op}")
                continue
            per_module[path] = items
    except KeyboardInterrupt:
        print("\ninterrupted: restoring the sources (continue with --resume)", file=sys.stderr)
        raise SystemExit(130)
    finally:
        changed = sources.restore()
        if changed:
            print(f"restored {', '.join(changed)}", file=sys.stderr)
    if args.list:
        return 0
    out = report(per_module)
    if prev is not None:
        # the former run's score with its survivors replaced by this run's outcome
        killed = prev["score"][0] + out["score"][0]
        total = prev["score"][1]
        out["after_rerun"] = {"score": [killed, total], "survivors": out["survivors"],
                              "former_reports": args.rerun, "former_command": prev.get("command")}
        print(f"\nscore of the former run ({prev.get('command')}) after this re-run of its "
              f"{out['score'][1]} survivors: {killed}/{total} killed ({100 * killed / total:.1f}%), "
              f"{total - killed} survived")
    out["command"] = " ".join(["python", "benchmarks/mutation.py", *(argv if argv is not None else sys.argv[1:])])
    t = os.times()
    out["wall_minutes"] = round((time.monotonic() - t0) / 60, 1)
    out["cpu_minutes"] = round((t.user + t.system + t.children_user + t.children_system) / 60, 1)
    pathlib.Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwall time {out['wall_minutes']} min, CPU {out['cpu_minutes']} min; report {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
