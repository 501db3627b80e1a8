"""``lowbit sweep`` on Dask: scaling with 1, 2 and 4 workers, a loopback "second machine" cluster
(``--scheduler``), resume after a kill, and Ctrl-C.

Usage::

    python benchmarks/sweep_scaling.py [--workers 1,2,4] [--skip-scaling] [--skip-cluster]
                                       [--skip-kill]

1. Scaling: the sweep ``benchmarks/sweep_scaling.toml`` (10 INT8/E4M3 MAC points, generic
   synthesis, area, gate-count energy, error) run by ``lowbit sweep --workers N`` for each N,
   each run in a new empty cache (``LOWBIT_CACHE``) so that every point is synthesised again.
   Wall time of the whole command (cluster start-up included) and the speed-up over 1 worker.
2. Loopback cluster: ``dask scheduler`` and two ``dask worker tcp://127.0.0.1:PORT`` processes
   started as separate processes, each worker with its own cache folder (two "machines" that
   share no file system), then ``lowbit sweep --scheduler tcp://127.0.0.1:PORT`` from a client
   with a third cache folder: the rows come back to the client, which writes the table; a
   second run finds them in the table (resume), a third (``--fresh``) in the client's point
   cache, and the workers' synthesis caches hold what each worker synthesised.
3. Resume after a kill: the sweep on a LocalCluster of 2 workers, SIGKILL to its whole process
   group once 4 points are in ``points.jsonl``; no point process may survive it; the second run
   resumes: it computes only the points the first did not finish.
4. Ctrl-C: SIGINT to the process group (what a terminal sends) after 2 points: exit status 130,
   ``points.csv`` holds exactly the finished rows of ``points.jsonl``, and no point process is
   left.

Expectation on a 2-core machine: 2 workers about 1.8x faster than 1 (each point is a Yosys run
in its own process; the client and the scheduler cost little); 4 workers no faster than 2 (the
same 2 cores, 4 Yosys processes sharing them), a little slower if anything from the extra
worker start-up. Measured figures (this machine, shared with other users) are printed as
ratios in the same run.

Measured 2026-12-03 on this 2-core machine, shared (load average about 4.7 from other users):
1 worker 40.6 s, 2 workers 24.3 s (1.67x), 4 workers 32.7 s (1.24x): 2 as expected, 4 slower
than 2 (4 Yosys processes and 4 worker start-ups on 2 busy cores). Loopback cluster: first run
49.4 s (10 computed, 5 per worker process), second 2.5 s (10 resumed), --fresh 2.6 s (10 from
the client's cache). Kill after 4 rows: 0 point processes left, the re-run resumed 4 and
computed 6. Ctrl-C after 2 rows: exit 130 in 3.2 s, points.csv = points.jsonl (2 rows), 0
point processes left. Total 3 min 48 s.
"""

import argparse
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

from lowbit.cli.table import print_table
from lowbit.sim import sweep

ROOT = pathlib.Path(__file__).resolve().parent.parent
SWEEP = ROOT / "benchmarks" / "sweep_scaling.toml"
BIN = pathlib.Path(sys.executable).parent


def lowbit(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "lowbit", "sweep", *map(str, args)], env=env,
                          capture_output=True, text=True, **kw)


def env_with(cache):
    return {**os.environ, "LOWBIT_CACHE": str(cache)}


def point_processes():
    """PIDs of live point processes (the children of :func:`lowbit.sim.sweep.run_task`)."""
    out = []
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"sweep._child_main()" in cmd and b"-c" in cmd:
            out.append(int(d.name))
    return out


def summary(path):
    return json.loads(pathlib.Path(path).read_text())


def scaling(tmp, counts):
    rows = [["workers", "wall s", "sweep s", "points", "speed-up vs 1"]]
    base = None
    for n in counts:
        cache, out = tmp / f"cache-{n}", tmp / f"out-{n}"
        t0 = time.monotonic()
        r = lowbit([SWEEP, "--workers", n, "-o", out, "--json", tmp / f"s{n}.json"],
                   env_with(cache))
        wall = time.monotonic() - t0
        if r.returncode != 0:
            sys.exit(f"lowbit sweep --workers {n} failed ({r.returncode}): {r.stderr}")
        s = summary(tmp / f"s{n}.json")
        assert s["counts"]["computed"] == s["counts"]["points"], s["counts"]
        base = base or wall
        rows.append([n, f"{wall:.1f}", f"{s['seconds']:.1f}", s["counts"]["computed"],
                     f"{base / wall:.2f}x"])
    print_table(rows, f"Scaling: {SWEEP.name}, every point synthesised (empty cache per run), "
                      f"{os.cpu_count()} cores")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster(tmp):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []
    try:
        procs.append(subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1",
                                       "--port", str(port), "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for k in (1, 2):                             # two "machines": own caches
            procs.append(subprocess.Popen(
                [BIN / "dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                 "--no-dashboard", "--name", f"machine-{k}"],
                env=env_with(tmp / f"worker-{k}-cache"), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        client_env = env_with(tmp / "client-cache")
        out = tmp / "cluster-out"
        lines = []
        for what, extra in (("first run", []), ("second run", []), ("--fresh", ["--fresh"])):
            t0 = time.monotonic()
            r = lowbit([SWEEP, "--scheduler", address, "-o", out, "--json", tmp / "c.json",
                        *extra], client_env, timeout=900)
            wall = time.monotonic() - t0
            if r.returncode != 0:
                sys.exit(f"lowbit sweep --scheduler failed ({r.returncode}): {r.stderr}")
            c = summary(tmp / "c.json")["counts"]
            lines.append([what, f"{wall:.1f}", c["computed"], c["resumed"], c["cached"],
                          c["ok"]])
        rows = sweep.read_jsonl(out / "points.jsonl")
        per_worker = {}
        for row in rows:
            per_worker[row.get("worker", "?")] = per_worker.get(row.get("worker", "?"), 0) + 1
        print_table([["run", "wall s", "computed", "resumed", "from client cache", "ok"]] + lines,
                    f"Loopback cluster: dask scheduler {address} + 2 dask worker processes "
                    f"(own caches); client writes {out / 'points.csv'}")
        synth_entries = {k: len(list((tmp / f"worker-{k}-cache" / "synth").glob("*.json")))
                         for k in (1, 2)}
        client_entries = len(list((tmp / "client-cache" / "synth").glob("*.json")))
        print(f"points measured per worker process (host:pid): {per_worker}")
        print(f"cache entries: worker 1 {synth_entries[1]}, worker 2 {synth_entries[2]} "
              f"(synthesis results, netlists), client {client_entries} (point rows only)\n")
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGINT)
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_rows(path, n, proc, limit=900):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if proc.poll() is not None:
            sys.exit(f"the sweep ended ({proc.returncode}) before {n} rows")
        rows = [r for r in sweep.read_jsonl(path) if r.get("status") == "ok"]
        if len(rows) >= n:
            return rows
        time.sleep(0.2)
    sys.exit(f"no {n} rows within {limit} s")


def kill_and_resume(tmp):
    cache, out = tmp / "kill-cache", tmp / "kill-out"
    env = env_with(cache)
    proc = subprocess.Popen([sys.executable, "-m", "lowbit", "sweep", SWEEP, "--workers", "2",
                             "-o", out], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    done = wait_rows(out / "points.jsonl", 4, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.5)                                 # the point processes' watchdogs: 0.25 s
    left = point_processes()
    done = [r for r in sweep.read_jsonl(out / "points.jsonl") if r.get("status") == "ok"]
    t0 = time.monotonic()
    r = lowbit([SWEEP, "--workers", "2", "-o", out, "--json", tmp / "k.json"], env)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"the resumed sweep failed ({r.returncode}): {r.stderr}")
    c = summary(tmp / "k.json")["counts"]
    print_table([["finished before the kill", "point processes left", "resumed", "computed",
                  "from cache", "ok", "wall s"],
                 [len(done), len(left), c["resumed"], c["computed"], c["cached"], c["ok"],
                  f"{wall:.1f}"]],
                "Resume after SIGKILL of the sweep's process group")
    assert not left, f"point processes survived the kill: {left}"
    assert c["resumed"] == len(done) and c["computed"] == c["points"] - len(done), c


def interrupt(tmp):
    cache, out = tmp / "int-cache", tmp / "int-out"
    proc = subprocess.Popen([sys.executable, "-m", "lowbit", "sweep", SWEEP, "--workers", "2",
                             "-o", out], env=env_with(cache), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_rows(out / "points.jsonl", 2, proc)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)              # Ctrl-C in a terminal: the whole group
    _, err = proc.communicate(timeout=120)
    stop = time.monotonic() - t0
    time.sleep(1)
    left = point_processes()
    journal = [r["point"] for r in sweep.read_jsonl(out / "points.jsonl")]
    import csv
    with open(out / "points.csv") as f:
        table = [r["point"] for r in csv.DictReader(f)]
    print_table([["exit status", "stopped after s", "rows in points.jsonl", "rows in points.csv",
                  "same points", "point processes left"],
                 [proc.returncode, f"{stop:.1f}", len(journal), len(table),
                  "yes" if sorted(journal) == sorted(table) else "NO", len(left)]],
                "Ctrl-C (SIGINT to the process group)")
    print("last stderr line:", err.strip().splitlines()[-1] if err.strip() else "")
    assert proc.returncode == 130 and sorted(journal) == sorted(table) and not left


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2,4", help="worker counts of the scaling table")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--skip-cluster", action="store_true")
    ap.add_argument("--skip-kill", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lowbit-sweep-bench-") as d:
        tmp = pathlib.Path(d)
        if not args.skip_scaling:
            scaling(tmp, [int(n) for n in args.workers.split(",")])
        if not args.skip_cluster:
            cluster(tmp)
        if not args.skip_kill:
            kill_and_resume(tmp)
            interrupt(tmp)


if __name__ == "__main__":
    main()
