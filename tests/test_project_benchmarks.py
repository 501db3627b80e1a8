"""Every benchmark script starts from a clone: ``python benchmarks/X.py --help`` exits 0 and
prints its usage (issue 13: benchmarks ship their inputs and run from a fresh clone; a script
that reads ``../shared/`` or a missing module at import time fails here).
"""

import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
#: The scripts: every file with a ``__main__`` entry (the others are modules the scripts import).
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py")
                 if 'if __name__ == "__main__":' in p.read_text())


def test_the_list_is_not_empty():
    assert len(SCRIPTS) >= 20 and "tensor_core_synth.py" in SCRIPTS
    assert "accum_datapaths.py" not in SCRIPTS and "scalesim_common.py" not in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script, tmp_path):
    r = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True,
                       text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("usage: ")
    assert r.stderr == ""
    assert list(tmp_path.iterdir()) == []          # --help writes nothing
