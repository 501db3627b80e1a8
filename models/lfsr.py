"""Golden model of the LFSR random source of the stochastic-rounding units.

A Fibonacci linear-feedback shift register of ``width`` bits (3..32) with the maximal-length
taps of Xilinx XAPP052 ("Efficient Shift Registers, LFSR Counters, and Long Pseudo-Random
Sequence Generators", P. Alfke, 1996, Table 3: taps for n = 3..168).  XAPP052 numbers the
stages 1..n and uses XNOR feedback (lock-up state all ones); lowbit uses the same tap sets
with XOR feedback, whose lock-up state is all zeros (the two sequences are bitwise
complements of each other, so the period is the same).

State and step
--------------
The state ``s`` is an integer ``0 < s < 2^width``; stage ``k`` (XAPP052 numbering, 1..n) is bit
``k - 1``.  One *shift* computes the feedback ``f = XOR of the tapped stages`` and makes the
state ``((s << 1) | f) mod 2^width``.  With maximal-length taps every non-zero seed runs
through all ``2^width - 1`` non-zero states before it repeats: the *period* (in shifts) is
``2^width - 1`` (:func:`lfsr_period`).  ``tests/test_models_lfsr.py`` checks the period
exhaustively for widths up to 16 and, for every width, that the feedback polynomial is
primitive over GF(2) (an independent check of the table).

Random bits for stochastic rounding
-----------------------------------
A draw of ``N = sr_bits`` random bits (``N <= width``) shifts the register ``N`` times (the
hardware unrolls the ``N`` shifts into one XOR network per clock cycle, a "leap-forward"
LFSR) and takes the low ``N`` bits of the new state: the ``N`` fresh feedback bits, the newest
in bit 0.  Consecutive draws therefore share no bits.  The value ``r`` (0..2^N - 1) is the
``random_bits`` argument of :meth:`lowbit.models.formats.FloatFormat.encode` with
``rounding="stochastic", sr_bits=N`` (one definition of how ``r`` is used:
:func:`lowbit.models.formats.draw_random_bits`).  One draw is made per accepted input (per
``valid`` cycle) of a unit, never on idle cycles.  The same ``(width, seed, sr_bits)`` gives
the same stream in this model and in the RTL (:class:`lowbit.hdl.lfsr.Lfsr`).
"""

import numpy as np

from .checks import check_int

__all__ = ["LFSR_TAPS", "LFSR_WIDTHS", "check_lfsr_width", "check_seed", "lfsr_tap_mask",
           "lfsr_period", "lfsr_shift", "lfsr_draw", "lfsr_stream"]

#: Maximal-length taps (stage numbers, 1 = least significant bit) per width: Xilinx XAPP052
#: (Alfke 1996) Table 3, n = 3..32.
LFSR_TAPS = {
    3: (3, 2), 4: (4, 3), 5: (5, 3), 6: (6, 5), 7: (7, 6), 8: (8, 6, 5, 4), 9: (9, 5),
    10: (10, 7), 11: (11, 9), 12: (12, 6, 4, 1), 13: (13, 4, 3, 1), 14: (14, 5, 3, 1),
    15: (15, 14), 16: (16, 15, 13, 4), 17: (17, 14), 18: (18, 11), 19: (19, 6, 2, 1),
    20: (20, 17), 21: (21, 19), 22: (22, 21), 23: (23, 18), 24: (24, 23, 22, 17),
    25: (25, 22), 26: (26, 6, 2, 1), 27: (27, 5, 2, 1), 28: (28, 25), 29: (29, 27),
    30: (30, 6, 4, 1), 31: (31, 28), 32: (32, 22, 2, 1),
}
#: The register widths an LFSR can take.
LFSR_WIDTHS = (min(LFSR_TAPS), max(LFSR_TAPS))


def check_lfsr_width(width):
    """``width`` as an int in 3..32 (the widths of :data:`LFSR_TAPS`)."""
    return check_int("lfsr_width", width, *LFSR_WIDTHS)


def check_seed(seed, width):
    """``seed`` as an int in ``1 .. 2^width - 1`` (0 is the lock-up state)."""
    width = check_lfsr_width(width)
    return check_int("seed", seed, 1, (1 << width) - 1)


def lfsr_tap_mask(width):
    """The taps of ``width`` as a bit mask (stage ``k`` is bit ``k - 1``)."""
    width = check_lfsr_width(width)
    mask = 0
    for k in LFSR_TAPS[width]:
        mask |= 1 << (k - 1)
    return mask


def lfsr_period(width):
    """The period in shifts, ``2^width - 1`` (maximal-length taps, any non-zero seed)."""
    return (1 << check_lfsr_width(width)) - 1


def lfsr_shift(state, width, shifts=1):
    """The state after ``shifts`` single shifts of a ``width``-bit register in ``state``."""
    width = check_lfsr_width(width)
    state = check_seed(state, width)
    shifts = check_int("shifts", shifts, 0)
    taps, mask = lfsr_tap_mask(width), (1 << width) - 1
    for _ in range(shifts):
        state = ((state << 1) | ((state & taps).bit_count() & 1)) & mask
    return state


def _check_sr_bits(sr_bits, width):
    return check_int("sr_bits", sr_bits, 1, width)


def lfsr_draw(state, width, sr_bits):
    """One draw: ``(r, new_state)`` with ``r`` the low ``sr_bits`` bits after ``sr_bits`` shifts.

    Raises
    ------
    ValueError
        ``sr_bits`` outside 1..``width`` (a draw cannot take more fresh bits than the register
        has stages), ``width`` outside 3..32, ``state`` outside 1..2^width - 1.
    """
    width = check_lfsr_width(width)
    sr_bits = _check_sr_bits(sr_bits, width)
    state = lfsr_shift(state, width, sr_bits)
    return state & ((1 << sr_bits) - 1), state


def lfsr_stream(width, seed, sr_bits, count):
    """``count`` consecutive draws of ``sr_bits`` bits from a register seeded with ``seed``.

    Returns
    -------
    numpy.ndarray of int64, shape ``(count,)``
        The values ``r`` (0..2^sr_bits - 1), in the order the unit consumes them.
    """
    width = check_lfsr_width(width)
    seed = check_seed(seed, width)
    sr_bits = _check_sr_bits(sr_bits, width)
    count = check_int("count", count, 0)
    taps, mask, low = lfsr_tap_mask(width), (1 << width) - 1, (1 << sr_bits) - 1
    out = np.empty(count, dtype=np.int64)
    s = seed
    for i in range(count):
        for _ in range(sr_bits):
            s = ((s << 1) | ((s & taps).bit_count() & 1)) & mask
        out[i] = s & low
    return out
