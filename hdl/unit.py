"""What a hardware unit of the catalogue is: :class:`Unit` and its :class:`Param` list.

A unit is a name (as typed on the command line), a factory (the
:class:`amaranth.lib.wiring.Component` subclass) and the list of its parameters, so that one
description drives the CLI options, the manifest and the parameter validation (which itself
happens in the component's ``__init__``). Each hardware module lists its units in a
module-level ``UNITS`` list; :mod:`lowbit.hdl.catalog` collects them.
"""

import dataclasses

from lowbit.models import formats

__all__ = ["Param", "Unit", "pipeline_param"]


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
    when : tuple
        ``(other parameter, allowed values)``: the parameter applies only when the other
        parameter takes one of those values (``("mode", ("kulisch",))``). Given otherwise, it
        is refused; not given, it is left out of the manifest.
    """
    name: str
    flag: str
    kind: str
    default: object
    help: str
    choices: tuple = ()
    when: tuple = ()

    def convert(self, value):
        """Turn a command-line/JSON value into the component's keyword value."""
        if self.kind == "format":
            if self.choices and value not in self.choices:
                raise ValueError(f"{self.flag} must be one of {', '.join(self.choices)}, not {value!r}")
            return formats.get(value)
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ValueError(f"{self.flag} must be an integer, not {value!r}")
            try:
                return int(value)
            except ValueError:
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
    """A generatable hardware unit.

    ``presets`` maps a preset name (the ``preset`` parameter, ``--preset``) to the parameter
    values it sets; a preset and an explicit value of one of its parameters conflict.
    """
    name: str
    factory: object
    params: tuple
    description: str
    presets: dict = dataclasses.field(default_factory=dict)

    def defaults(self):
        return {p.name: p.default for p in self.params}

    def applies(self, param, resolved):
        """Whether ``param`` (a :class:`Param`) applies given the ``resolved`` values."""
        if not param.when:
            return True
        other, allowed = param.when
        return resolved[other] in allowed

    def resolve(self, **values):
        """The factory's keyword arguments for raw (CLI/JSON) values; missing ones take the
        defaults (or the preset's values). Nothing is built (the component's ``__init__``
        checks the values).

        Returns ``(kwargs, resolved)``: ``kwargs`` for :attr:`factory` (formats as format
        objects, ints, bools), ``resolved`` the raw value of every parameter that applies
        (format names, ints, ...), as recorded in the manifest.

        Raises
        ------
        ValueError
            An unknown parameter, a parameter that does not apply (see :attr:`Param.when`),
            an unknown preset or a value that conflicts with the preset.
        """
        known = {p.name: p for p in self.params}
        for key in values:
            if key not in known:
                raise ValueError(f"unit {self.name!r} has no parameter {key!r}; "
                                 f"it has {', '.join(known)}")
        resolved = {p.name: values.get(p.name, p.default) for p in self.params}
        preset = resolved.get("preset") or ""
        if preset:
            if preset not in self.presets:
                raise ValueError(f"--preset must be one of {', '.join(self.presets)}, "
                                 f"not {preset!r}")
            for k, v in self.presets[preset].items():
                p = known[k]
                if k in values and p.convert(values[k]) != p.convert(v):
                    raise ValueError(f"{p.flag} {values[k]} conflicts with --preset {preset}, "
                                     f"which sets {p.flag} {v}")
                resolved[k] = v
        for name in values:
            p = known[name]
            if not self.applies(p, resolved):
                other, allowed = p.when
                o = known[other]
                raise ValueError(f"{p.flag} applies only with {o.flag} "
                                 f"{' or '.join(map(str, allowed))}, not {o.flag} "
                                 f"{resolved[other]}")
        kwargs = {name: known[name].convert(v) for name, v in resolved.items()
                  if name != "preset"}      # a preset is the catalogue's, not the component's
        applicable = {k: v for k, v in resolved.items()
                      if self.applies(known[k], resolved) and not (k == "preset" and not v)}
        return kwargs, applicable

    def typed(self, resolved):
        """``resolved`` (from :meth:`resolve`) with ``int``/``bool`` values converted from their
        CLI strings, as recorded in manifests and reports; formats and choices stay names."""
        kinds = {p.name: p for p in self.params}
        return {k: (kinds[k].convert(v) if k in kinds and kinds[k].kind in ("int", "bool")
                    else v) for k, v in resolved.items()}

    def build(self, **values):
        """Build the component from raw (CLI/JSON) values; missing ones take defaults.

        Returns ``(component, resolved)`` (see :meth:`resolve`).
        """
        kwargs, resolved = self.resolve(**values)
        return self.factory(**kwargs), resolved


def pipeline_param(maximum, base_latency, default=0, stages=""):
    """The ``--pipeline`` parameter (``pipeline_stages``), the same meaning for every unit:
    register stages added beyond the unit's least latency, so ``latency = base_latency +
    pipeline``. ``stages`` says where they go (one line of help)."""
    where = f"; {stages}" if stages else ""
    return Param("pipeline_stages", "--pipeline", "int", default,
                 f"extra register stages, 0..{maximum} (latency = {base_latency} + pipeline"
                 f"{where})")
