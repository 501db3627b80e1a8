"""Every benchmark script starts from a clone: ``python benchmarks/X.py --help`` exits 0 and
prints its usage (issue 13: benchmarks ship their inputs and run from a fresh clone; a script
that reads ``../shared/`` or a missing module at import time fails here).
"""

import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
#: Modules the scripts import (no command line of their own).
LIBRARIES = {"accum_datapaths.py", "scalesim_common.py"}
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name not in LIBRARIES)


def test_the_list_is_not_empty():
    assert len(SCRIPTS) >= 20 and "tensor_core_synth.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script, tmp_path):
    r = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True,
                       text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("usage: ")
    assert r.stderr == ""
    assert list(tmp_path.iterdir()) == []          # --help writes nothing
