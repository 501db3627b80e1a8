"""The catalogue of hardware units that ``lowbit generate / cosim / synth / compare`` know.

Each hardware module lists its units in a module-level ``UNITS`` list of
:class:`~lowbit.hdl.unit.Unit`; this module collects them, in the order
``lowbit generate --list`` shows them. The co-simulation bench of each unit is in
:mod:`lowbit.sim.benches`, its cost in :mod:`lowbit.sim.compare`.
"""

from . import (accumulators, bfp_adder, fp_mac, fp_mul, int_mac, mx_dot, overq_pe,
               shared_exp_adder, sr_quantiser, systolic, tensor_core_dot)
from .unit import Param, Unit

__all__ = ["Param", "Unit", "units", "get_unit"]

# Hardware modules that define units, in the order ``lowbit generate --list`` shows them.
_MODULES = (int_mac, fp_mul, fp_mac, accumulators, shared_exp_adder, mx_dot, bfp_adder, overq_pe,
            systolic, sr_quantiser, tensor_core_dot)


def units():
    """Return ``{name: Unit}`` for every unit of every hardware module."""
    return {unit.name: unit for module in _MODULES for unit in module.UNITS}


def get_unit(name):
    """Return the :class:`Unit` called ``name`` or raise ``ValueError`` listing the known ones."""
    all_units = units()
    if name not in all_units:
        raise ValueError(f"unknown unit {name!r}; known units: {', '.join(all_units) or '(none)'}")
    return all_units[name]
