"""lowbit's on-disk caches: where they live, and the store of synthesis results.

Location (one policy for every cache of lowbit): the folder :func:`cache_root`, which is
``$LOWBIT_CACHE`` if that environment variable is set, else ``~/.cache/lowbit``. Each kind of
result has its own subfolder (:func:`cache_dir`): ``synth/`` holds synthesis results and
netlists (this module), ``cosim/`` the simulator builds of the co-simulation harness
(:mod:`lowbit.sim.cosim`, which keeps its own folder-per-build format but the same root).

Synthesis results: an entry is one JSON file named after the sha256 key of everything that
determines the result (Verilog text, top module, target, flow options, tool versions; see
:func:`lowbit.fpga.synth.cache_key`). The file holds ``{"key": ..., "result": {...}}``.

Concurrency: an entry is written to a uniquely named temporary file in the same directory,
flushed and fsync'ed, then moved into place with :func:`os.replace`, which is atomic on
POSIX file systems. Two processes that synthesise the same design at once therefore both
write a complete file and the last rename wins; a reader never sees a partial file.

Corruption: an entry that cannot be parsed, lacks fields, or whose stored key differs from
its name is deleted and reported as a miss, so that the caller recomputes it.
"""

import json
import os
import pathlib
import shutil
import tempfile

__all__ = ["KINDS", "cache_root", "cache_dir", "usage", "clear", "load", "store"]

#: The kinds of cached result, one subfolder each.
KINDS = ("synth", "cosim")


def cache_root():
    """The folder of every lowbit cache: ``$LOWBIT_CACHE`` or ``~/.cache/lowbit``."""
    root = os.environ.get("LOWBIT_CACHE")
    return pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "lowbit"


def cache_dir(kind="synth"):
    """The folder of one kind of cached result (:data:`KINDS`; created on first store)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return cache_root() / kind


def _kinds(kinds):
    if kinds is None:
        return KINDS
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = tuple(kinds)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {k!r}")
    return kinds


def usage(kinds=None):
    """What the caches hold: ``{kind: {"path", "entries", "bytes"}}`` for ``kinds`` (default all).

    An entry is one top-level item of the kind's folder (a result file of ``synth/``, a
    simulator build folder of ``cosim/``); ``bytes`` counts every file below it. A missing
    folder is an empty cache.
    """
    out = {}
    for kind in _kinds(kinds):
        folder = cache_dir(kind)
        entries = size = 0
        if folder.is_dir():
            for item in folder.iterdir():
                entries += 1
                files = [item] if not item.is_dir() else [f for f in item.rglob("*")
                                                           if f.is_file() and not f.is_symlink()]
                for f in files:
                    try:
                        size += f.stat().st_size
                    except FileNotFoundError:       # removed by a concurrent run
                        pass
        out[kind] = {"path": str(folder), "entries": entries, "bytes": size}
    return out


def clear(kinds=None):
    """Delete the cached results of ``kinds`` (default all); return ``{kind: entries removed}``.

    Only the kinds' own folders under :func:`cache_root` are removed, never the root itself
    (``$LOWBIT_CACHE`` may point at a folder that holds other things too).
    """
    removed = {}
    for kind, info in usage(kinds).items():
        folder = cache_dir(kind)
        if folder.is_dir():
            shutil.rmtree(folder)
        removed[kind] = info["entries"]
    return removed


def _path(key, directory=None):
    if not (isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
        raise ValueError(f"cache key must be a 64-digit lowercase sha256 hex string, not {key!r}")
    return pathlib.Path(directory or cache_dir()) / f"{key}.json"


def load(key, required=(), directory=None):
    """Return the cached result dict for ``key``, or ``None`` on a miss.

    ``required`` lists the fields a valid result must have. A corrupt entry (bad JSON,
    wrong structure, a missing required field, or a stored key that does not match) is
    deleted and ``None`` is returned.
    """
    path = _path(key, directory)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        entry = json.loads(text)
        ok = (isinstance(entry, dict) and entry.get("key") == key
              and isinstance(entry.get("result"), dict)
              and all(f in entry["result"] for f in required))
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return None
    return entry["result"]


def store(key, result, directory=None):
    """Atomically write ``result`` (a JSON-serialisable dict) under ``key``; return the path."""
    path = _path(key, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"key": key, "result": result}, indent=1, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
