"""The wheel installs into a fresh virtual environment and works from there.

Builds the wheel from this checkout, installs it (with its dependencies) into a new
venv, imports lowbit.models / lowbit.hdl / lowbit.sim and runs ``lowbit --help``,
``lowbit --version``, ``python -m lowbit`` and ``lowbit formats``; checks that nothing but the
``lowbit`` package lands in site-packages (no generic top-level ``hdl`` or ``models``) and that
the shipped SCALE-Sim files are in the wheel.
"""

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_in_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                    str(ROOT)], check=True)
    (wheel,) = dist.glob("lowbit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"lowbit", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    for pkg in ("models", "hdl", "sim", "fpga", "cli"):
        assert f"lowbit/{pkg}/__init__.py" in names
    assert "lowbit/__init__.py" in names and "lowbit/__main__.py" in names
    assert "lowbit/sim/data/scalesim/Resnet18.csv" in names
    assert "lowbit/sim/data/scalesim/README.md" in names
    lic = [n for n in names if n.endswith("licenses/LICENSE")]      # license-files (PEP 639)
    assert len(lic) == 1 and b"MIT License" in zipfile.ZipFile(wheel).read(lic[0])

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, env=env)
    code = ("import lowbit, lowbit.models, lowbit.hdl, lowbit.sim, lowbit.fpga, lowbit.cli, sys;"
            "import lowbit.models.formats as f;"
            "from lowbit.sim.topology import read_topology, scalesim_file;"
            "assert f.get('e4m3').max == 448.0;"
            "assert len(read_topology(scalesim_file('Resnet18.csv'))) == 21;"
            "assert lowbit.__version__ == wheel_version, lowbit.__version__;"
            "print(lowbit.models.__file__)").replace("wheel_version", repr(wheel.name.split("-")[1]))
    out = subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True,
                         env=env, cwd=tmp_path).stdout
    assert str(venv) in out                              # imported from the venv, not the checkout
    site = pathlib.Path(out.strip()).parent.parent.parent
    assert not any((site / name).exists() for name in ("hdl", "models", "sim", "fpga", "cli"))
    r = subprocess.run([str(venv / "bin" / "lowbit"), "--help"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0 and "formats" in r.stdout
    r = subprocess.run([str(venv / "bin" / "lowbit"), "--version"], capture_output=True,
                       text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "lowbit " + wheel.name.split("-")[1]
    r = subprocess.run([str(py), "-m", "lowbit", "--version"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("lowbit ")
    r = subprocess.run([str(venv / "bin" / "lowbit"), "formats", "e4m3", "--value", "464"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and "0x7E" in r.stdout
