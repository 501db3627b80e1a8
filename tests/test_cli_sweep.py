"""``lowbit sweep``: dry run, validation errors (one line each, exit 2), a run on a local Dask
cluster with its report, resume, a timed-out point (exit 3), and the shipped example sweep."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from lowbit.cli.main import main
from lowbit.sim import sweep

pytest.importorskip("distributed")

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fp8_int8_mx_sweep.toml"

SMALL = """\
name = "small"
measures = ["error"]
workload = "dot64-gauss"
seed = 4

[[design]]
unit = "int-mac"
params = { a_format = "int4", b_format = "int4" }
constraints = ["acc_bits > 8 or pipeline_stages == 0"]
[design.axes]
acc_bits = [8, 12]
pipeline_stages = [0, 1]
"""


@pytest.fixture
def small(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWBIT_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def lowbit(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "lowbit", *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout, r.stderr


def test_dry_run_lists_the_points(small, capsys):
    assert main(["sweep", str(small), "--dry-run", "-o", str(small.parent / "out")]) == 0
    out = capsys.readouterr().out
    ids = [p.id for p in sweep.expand(sweep.load(small))]
    assert out.splitlines() == [
        "small: 4 points (3 to measure)",
        "point             label                           target   would",
        "----------------  ------------------------------  -------  "
        "----------------------------------------------------------------",
        f"{ids[0]}  int-mac acc-bits=8 pipeline=0   generic  run",
        f"{ids[1]}  int-mac acc-bits=8 pipeline=1   generic  skip: constraint "
        f"'acc_bits > 8 or pipeline_stages == 0' is false",
        f"{ids[2]}  int-mac acc-bits=12 pipeline=0  generic  run",
        f"{ids[3]}  int-mac acc-bits=12 pipeline=1  generic  run",
        ""]


def test_bad_file_one_line_per_error_and_status_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('measures = ["area"]\ntargets = ["asic"]\n\n[[design]]\nunit = "int-mac"\n'
                    '[design.axes]\nacc_bits = []\n')
    assert main(["sweep", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"lowbit sweep: error: {path}:2: targets: must be among generic, ice40, ecp5, not 'asic'",
        f"lowbit sweep: error: {path}:7: design[0].axes.acc_bits: an axis needs at least one "
        f"value, not an empty list"]
    assert main(["sweep", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err == (f"lowbit sweep: error: FILE "
                                       f"{str(tmp_path / 'none.toml')!r} does not exist\n")


def test_bad_options_status_2(small, capsys):
    assert main(["sweep", str(small), "--workers", "0"]) == 2
    assert capsys.readouterr().err == ("lowbit sweep: error: --workers must be an integer from "
                                       "1 to 256, not 0\n")
    assert main(["sweep", str(small), "--plot", str(small.parent / "x.jpg")]) == 2
    assert capsys.readouterr().err == (f"lowbit sweep: error: --plot must be a .png path, not "
                                       f"{str(small.parent / 'x.jpg')!r}\n")
    (small.parent / "afile").write_text("")
    assert main(["sweep", str(small), "-o", str(small.parent / "afile")]) == 2
    assert capsys.readouterr().err == (f"lowbit sweep: error: -o "
                                       f"{str(small.parent / 'afile')!r} is a file, not a folder\n")


def test_run_on_a_local_cluster_report_resume_and_timeout(small):
    cwd = small.parent
    out = cwd / "out"
    rc, stdout, stderr = lowbit("sweep", small, "--workers", "1", "-o", out, "--report",
                                "--json", "summary.json", cwd=cwd)
    assert rc == 0, stderr
    summary = json.loads((cwd / "summary.json").read_text())
    assert summary["counts"] == {"points": 4, "computed": 3, "resumed": 0, "cached": 0,
                                 "skipped": 1, "ok": 3, "failed": 0, "timeout": 0}
    assert summary["workers"] == 1
    rows = sweep.read_jsonl(out / "points.jsonl")
    assert [r["status"] for r in rows] == ["ok", "skipped", "ok", "ok"]
    # acc 8 holds every int4 dot product of 64 terms here (no wrap): the same error as acc 12,
    # so the front (no area measured: none) is not drawn, and the 8-bit one is not dominated
    assert rows[0]["error_rms_rel"] == rows[2]["error_rms_rel"] == rows[3]["error_rms_rel"]
    assert rows[0]["acc_error_rms_rel"] == 0.0
    assert summary["fronts"] == {}
    assert "no Pareto view: the table has no measured point with two of its figures" in stdout
    assert f"small: 4 points: 3 measured (3 computed now, 0 resumed from the table, 0 from the " \
           f"cache), 1 skipped, 0 failed, 0 timed out;" in stdout
    assert stderr.count("] ok int-mac") == 3
    # again: everything comes from the table
    rc, stdout, _ = lowbit("sweep", small, "-o", out, cwd=cwd)
    assert rc == 0
    assert "3 measured (0 computed now, 3 resumed from the table, 0 from the cache)" in stdout
    # fresh, without caches, with a timeout no point can meet: status 3, errors in the table
    rc, stdout, stderr = lowbit("sweep", small, "--workers", "1", "-o", out, "--fresh",
                                "--no-cache", "--timeout", "0.05", cwd=cwd)
    assert rc == 3
    assert stderr.splitlines()[-1] == (f"lowbit sweep: error: 3 of 4 points failed or timed "
                                       f"out; their errors are in {out / 'points.csv'} (a re-run "
                                       f"tries them again)")
    rows = sweep.read_jsonl(out / "points.jsonl")
    assert [r["status"] for r in rows] == ["timeout", "skipped", "timeout", "timeout"]
    assert rows[0]["reason"] == "did not finish within 0.05 s (killed)"


def test_the_example_sweep_is_valid_and_has_62_points_to_measure():
    spec = sweep.load(EXAMPLE)
    points = sweep.expand(spec)
    assert (len(points), sum(not p.skip for p in points)) == (76, 62)
    assert spec.measures == ("area", "flip_flops", "depth", "energy_gates", "energy_toggles",
                             "error")
    assert {p.unit for p in points} == {"int-mac", "fp-mac", "mx-dot"}
    skips = sorted({p.skip.split(":")[0] for p in points if p.skip})
    assert skips == ["constraint \"mode == 'fused' or pipeline_stages == 0\" is false",
                     "refused by the generator"]
    refused = [p for p in points if p.skip.startswith("refused")]
    assert [(p.values["a_format"], p.values["pipeline_stages"]) for p in refused] == \
        [("e4m3", 12), ("e5m2", 12)]
    assert refused[0].skip == ("refused by the generator: pipeline_stages must be an integer "
                               "from 0 to 11, not 12")
