"""Where the CLI's reports go: output paths checked before the work, ``-`` for standard output.

Every option that names an output file (``--json``, ``--csv``, ``--plot``, ``-o``,
``--build-dir``, ``--keep``) goes through :func:`check_output` (files) or :func:`check_folder`
(folders) before the command does any work, so that a path that cannot be written is one line on
stderr and exit status 2 at once, not a traceback after minutes of synthesis. ``-`` means
standard output wherever a file is written (:func:`write_text`).
"""

import contextlib
import json
import math
import os
import sys

from .errors import UsageError

__all__ = ["STDOUT", "check_output", "check_folder", "write_text", "write_json", "open_text"]

#: The path that means standard output.
STDOUT = "-"


def _parent_problem(path):
    parent = os.path.dirname(os.path.abspath(path)) or "."
    probe = parent
    while not os.path.exists(probe):
        nxt = os.path.dirname(probe)
        if nxt == probe:
            break
        probe = nxt
    if not os.path.isdir(probe):
        return f"{probe!r} is a file, not a folder"
    if probe != parent:
        return None if os.access(probe, os.W_OK) else f"folder {probe!r} is not writable"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"folder {parent!r} is not writable"
    return None


def check_output(flag, path, *, stdout=True, suffix=None, create_parents=False):
    """Check that ``path`` (the value of option ``flag``) can be written as a file.

    ``-`` is standard output when ``stdout`` is true. ``suffix`` (e.g. ``".png"``) is required
    when given. Missing parent folders are an error unless ``create_parents``.

    Raises
    ------
    UsageError
        The path is a folder, lies under a file, in a missing or unwritable folder, or lacks
        the suffix.
    """
    if path == STDOUT:
        if not stdout:
            raise UsageError(f"{flag} needs a file path ('-' for standard output is not "
                             f"possible here)")
        return path
    if not path:
        raise UsageError(f"{flag} needs a file path, not an empty string")
    if suffix and not path.lower().endswith(suffix):
        raise UsageError(f"{flag} must be a {suffix} path, not {path!r}")
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a folder, not a file")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path!r} is not writable")
    parent = os.path.dirname(os.path.abspath(path))
    if not create_parents and not os.path.isdir(parent):
        problem = _parent_problem(path)
        raise UsageError(f"{flag} {path!r}: " + (problem or f"folder {parent!r} does not exist"))
    problem = _parent_problem(path)
    if problem:
        raise UsageError(f"{flag} {path!r}: {problem}")
    return path


def check_folder(flag, path):
    """Check that ``path`` is a folder that exists and is writable, or can be created.

    Raises
    ------
    UsageError
        The path is a file, lies under a file, or cannot be created or written.
    """
    if not path:
        raise UsageError(f"{flag} needs a folder path, not an empty string")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise UsageError(f"{flag} {path!r} is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {path!r} is not writable")
        return path
    problem = _parent_problem(os.path.join(path, "x"))
    if problem:
        raise UsageError(f"{flag} {path!r}: {problem}")
    return path


@contextlib.contextmanager
def open_text(path):
    """A text stream for ``path``: standard output for ``-``, else the file (written whole)."""
    if path == STDOUT:
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", newline="") as f:
        yield f


def write_text(path, text):
    """Write ``text`` to ``path`` (``-``: standard output)."""
    with open_text(path) as f:
        f.write(text)


def _finite(obj):
    """``obj`` with every non-finite float as the string ``"inf"``, ``"-inf"`` or ``"nan"``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path, obj):
    """Write ``obj`` as indented JSON (and a newline) to ``path`` (``-``: standard output).

    Strict JSON, readable by any parser: JSON has no Infinity or NaN, so a non-finite number is
    written as the string ``"inf"``, ``"-inf"`` or ``"nan"``.
    """
    write_text(path, json.dumps(_finite(obj), indent=2, allow_nan=False) + "\n")
