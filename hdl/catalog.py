"""The catalogue of hardware units that ``lowbit generate / cosim / synth / compare`` know.

Each hardware module lists its units in a module-level ``UNITS`` list of :class:`Unit`
and is named in :data:`_MODULES`. A unit is a name (as typed on the command line), a
factory (the :class:`amaranth.lib.wiring.Component` subclass) and the list of its
parameters, so that one description drives the CLI options, the manifest and the
parameter validation (which itself happens in the component's ``__init__``).
"""

import dataclasses
import importlib

__all__ = ["Param", "Unit", "units", "get_unit"]

# Hardware modules that define units, in the order ``lowbit generate --list`` shows them.
_MODULES = [
    "int_mac", "fp_mul", "fp_mac",
    "shared_exp_adder", "mx_dot", "bfp_adder",
    "overq_pe",
    "systolic",
]


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a hardware unit.

    Parameters
    ----------
    name : str
        Keyword argument of the component's ``__init__`` (``a_format``).
    flag : str
        Command-line option (``--a``).
    kind : str
        ``"format"`` (a format name, passed to the component as the format object),
        ``"int"``, ``"choice"``, ``"bool"`` or ``"str"``.
    default :
        Default value (a format *name* for ``"format"``).
    help : str
        One line for ``--help`` and ``lowbit generate --list``.
    choices : tuple
        Allowed values for ``"choice"`` and ``"format"`` (empty: any).
    """
    name: str
    flag: str
    kind: str
    default: object
    help: str
    choices: tuple = ()

    def convert(self, value):
        """Turn a command-line/JSON value into the component's keyword value."""
        if self.kind == "format":
            from lowbit.models import formats
            if self.choices and value not in self.choices:
                raise ValueError(f"{self.flag} must be one of {', '.join(self.choices)}, not {value!r}")
            return formats.get(value)
        if self.kind == "int":
            try:
                return int(value)
            except (TypeError, ValueError):
                raise ValueError(f"{self.flag} must be an integer, not {value!r}") from None
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{self.flag} must be true or false, not {value!r}")
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.flag} must be one of {', '.join(map(str, self.choices))}, "
                                 f"not {value!r}")
            return value
        return value


@dataclasses.dataclass(frozen=True)
class Unit:
    """A generatable hardware unit."""
    name: str
    factory: object
    params: tuple
    description: str
    #: Optional co-simulation hook used by ``lowbit cosim``:
    #: ``cosim(component, resolved_params, vectors, seed, sim) -> lowbit.sim.cosim.CosimReport``.
    cosim: object = None

    def defaults(self):
        return {p.name: p.default for p in self.params}

    def build(self, **values):
        """Build the component from raw (CLI/JSON) values; missing ones take defaults.

        Returns ``(component, resolved)`` where ``resolved`` holds the raw value of every
        parameter (format names, ints, ...), as recorded in the manifest.
        """
        known = {p.name: p for p in self.params}
        for key in values:
            if key not in known:
                raise ValueError(f"unit {self.name!r} has no parameter {key!r}; "
                                 f"it has {', '.join(known)}")
        resolved = {p.name: values.get(p.name, p.default) for p in self.params}
        kwargs = {name: known[name].convert(v) for name, v in resolved.items()}
        return self.factory(**kwargs), resolved


def units():
    """Return ``{name: Unit}`` for every unit of every hardware module that exists."""
    found = {}
    for mod in _MODULES:
        try:
            module = importlib.import_module(f"lowbit.hdl.{mod}")
        except ModuleNotFoundError as e:
            if e.name == f"lowbit.hdl.{mod}":
                continue
            raise
        for unit in getattr(module, "UNITS", []):
            found[unit.name] = unit
    return found


def get_unit(name):
    """Return the :class:`Unit` called ``name`` or raise ``ValueError`` listing the known ones."""
    all_units = units()
    if name not in all_units:
        raise ValueError(f"unknown unit {name!r}; known units: {', '.join(all_units) or '(none)'}")
    return all_units[name]
