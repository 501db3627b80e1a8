"""Command-line options built from a catalogue unit's :class:`~lowbit.hdl.catalog.Param` list.

Shared by the subcommands that take ``<unit> [unit options]`` (``lowbit cosim``, ``generate``,
``synth``). The subcommand's own parser takes the unit name and the rest of the command line
(``argparse.REMAINDER``); once the unit is known, :func:`unit_parser` builds a second parser with
the subcommand's options plus one option per unit parameter, so that ``lowbit cosim UNIT -h``
lists the unit's own parameters::

    def register(subparsers):
        p = subparsers.add_parser("cosim", ...)
        p.add_argument("unit")
        p.add_argument("options", nargs=argparse.REMAINDER)
        p.set_defaults(func=run)

    def run(args):
        unit = catalog.get_unit(args.unit)
        opts = unit_parser(unit, "lowbit cosim", _add_common).parse_args(args.options)
        component, resolved = unit.build(**unit_values(opts, unit))

Parse errors raise :class:`lowbit.cli.errors.UsageError` (one line on stderr, exit status 2);
``-h`` prints the help and exits 0. Parameter values are checked by ``Param.convert`` and the
component (``ValueError``, also exit status 2).
"""

import argparse
import shlex

from .errors import UsageError

__all__ = ["UnitParser", "add_unit_options", "unit_parser", "unit_values", "typed_params",
           "command_line"]


class UnitParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors raise :class:`~lowbit.cli.errors.UsageError`."""

    def error(self, message):
        raise UsageError(message)


def _dest(param):
    return f"param_{param.name}"


def _metavar(param):
    if param.choices:
        return "{" + ",".join(map(str, param.choices)) + "}"
    return {"int": "N", "bool": "BOOL", "format": "FORMAT"}.get(param.kind, "VALUE")


def add_unit_options(parser, unit):
    """Add one option per parameter of ``unit`` (in a group titled after the unit).

    Each option stores the raw string in ``param_<name>`` (``None`` when not given); a
    ``bool`` parameter given without a value means true (``--saturate``).
    """
    group = parser.add_argument_group(f"parameters of {unit.name}")
    for param in unit.params:
        kw = {"dest": _dest(param), "default": None, "metavar": _metavar(param),
              "help": f"{param.help} (default {param.default})"}
        if param.kind == "bool":
            kw.update(nargs="?", const="true")
        group.add_argument(param.flag, **kw)
    return group


def unit_parser(unit, prog, add_common=None, description=None):
    """A :class:`UnitParser` for ``prog`` (e.g. ``"lowbit cosim"``) and ``unit``.

    ``add_common(parser)`` adds the subcommand's own options first.
    """
    parser = UnitParser(prog=f"{prog} {unit.name}",
                        description=description or f"{unit.name}: {unit.description}")
    if add_common is not None:
        add_common(parser)
    add_unit_options(parser, unit)
    return parser


def unit_values(opts, unit):
    """``{param name: raw value}`` for the unit parameters given on the command line."""
    return {p.name: getattr(opts, _dest(p)) for p in unit.params
            if getattr(opts, _dest(p), None) is not None}


def typed_params(unit, resolved):
    """``resolved`` (from ``Unit.build``) as recorded in manifests and reports
    (:meth:`lowbit.hdl.unit.Unit.typed`)."""
    return unit.typed(resolved)


def command_line(prog, unit, resolved, extra=()):
    """A shell command that reproduces a run: ``prog unit --flag value ... extra``.

    Only parameters that differ from their defaults are written.
    """
    parts = prog.split() + [unit.name]
    for p in unit.params:
        if p.name not in resolved:
            continue
        value = resolved[p.name]
        if str(value) == str(p.default) or (p.kind == "bool" and
                                            p.convert(value) == p.convert(p.default)):
            continue
        if p.kind == "bool":
            value = "true" if p.convert(value) else "false"
        parts += [p.flag, str(value)]
    parts += [str(x) for x in extra]
    return " ".join(shlex.quote(x) for x in parts)
