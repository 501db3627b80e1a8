"""Argument checks shared by every layer of lowbit (one wording, one convention).

Amaranth's convention (``amaranth/lib/memory.py``, ``lib/wiring.py``): a value of the wrong
*type* raises :class:`TypeError`, a value of the right type outside the allowed range raises
:class:`ValueError`, and the message names the parameter, says what is allowed and echoes the
bad value::

    check_int("acc_bits", 70, 2, 64)
    ValueError: acc_bits must be an integer from 2 to 64, not 70
    check_int("acc_bits", 2.5, 2, 64)
    TypeError: acc_bits must be an integer, not 2.5

``bool`` is not accepted where an integer is meant (``True`` is an ``int`` to Python, never a
width). NumPy integer and floating scalars are accepted like their Python counterparts.
"""

import math
import numbers
import operator

import numpy as np

__all__ = ["check_int", "check_number", "check_choice", "check_bool", "int_range_text"]


def int_range_text(lo=None, hi=None):
    """``"from lo to hi"``, ``">= lo"``, ``"<= hi"`` or ``""``: the range part of a message."""
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return ""


def _is_integer(value):
    return (not isinstance(value, (bool, np.bool_))
            and isinstance(value, (numbers.Integral, np.integer)))


def check_int(name, value, lo=None, hi=None):
    """``value`` as a Python ``int`` in ``lo..hi`` (either bound may be ``None``).

    Raises
    ------
    TypeError
        ``value`` is not an integer (``bool`` included).
    ValueError
        ``value`` is outside ``lo..hi``.
    """
    if not _is_integer(value):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    v = operator.index(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must be an integer {int_range_text(lo, hi)}, not {value!r}")
    return v


def check_number(name, value, lo=None, hi=None, *, positive=False):
    """``value`` as a finite Python ``float``; with ``positive`` it must be > 0, with ``lo`` /
    ``hi`` inside ``lo..hi``.

    Raises
    ------
    TypeError
        ``value`` is not a real number (``bool`` included).
    ValueError
        ``value`` is not finite, not positive (``positive=True``) or outside ``lo..hi``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating,
                                                                       np.integer)):
        raise TypeError(f"{name} must be a number, not {value!r}")
    v = float(value)
    if positive and not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, not {value!r}")
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must be a number {int_range_text(lo, hi)}, not {value!r}")
    return v


def check_choice(name, value, choices):
    """``value`` if it is one of ``choices`` (strings), else :class:`ValueError` listing them
    (:class:`TypeError` if it is not a string while every choice is)."""
    if all(isinstance(c, str) for c in choices) and not isinstance(value, str):
        raise TypeError(f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")
    return value


def check_bool(name, value):
    """``value`` as a Python ``bool``; anything but ``True``/``False`` (NumPy bools included)
    raises :class:`TypeError` (a truthy string such as ``"no"`` is not a switch)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return bool(value)
