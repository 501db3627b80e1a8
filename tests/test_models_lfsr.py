"""The LFSR golden model: pinned streams, maximal periods, primitive polynomials, bad input."""

import pytest

from lowbit.models import lfsr


def test_short_stream_is_pinned():
    # width 5, taps (5, 3) (XAPP052): worked by hand, stage k = bit k-1, feedback = s4 ^ s2:
    # 00001 -> 00010 -> 00100 -> 01001 (r = 001), -> 10010 -> 00101 -> 01011 (r = 011)
    assert list(lfsr.lfsr_stream(5, 1, 3, 6)) == [1, 3, 1, 7, 4, 3]
    # the stream the hardware tests use (same seed -> same bits in the RTL, test_cosim_training)
    assert list(lfsr.lfsr_stream(16, 0xACE1, 8, 8)) == [138, 134, 161, 164, 165, 145, 223, 192]


def test_draw_matches_stream_and_shift():
    s, out = 0xACE1, []
    for _ in range(5):
        r, s = lfsr.lfsr_draw(s, 16, 8)
        out.append(r)
    assert out == list(lfsr.lfsr_stream(16, 0xACE1, 8, 5))
    assert s == lfsr.lfsr_shift(0xACE1, 16, 40)


@pytest.mark.parametrize("width", range(3, 17))
def test_period_is_maximal_exhaustive(width):
    """Every non-zero state is visited once before the seed comes back: period 2^w - 1."""
    seen, s = set(), 1
    for _ in range(lfsr.lfsr_period(width)):
        assert s not in seen
        seen.add(s)
        s = lfsr.lfsr_shift(s, width)
    assert s == 1 and len(seen) == (1 << width) - 1


def _polymulmod(a, b, p, n):
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a >> n & 1:
            a ^= p
    return r


def _polypow(e, p, n):
    r, x = 1, 2
    while e:
        if e & 1:
            r = _polymulmod(r, x, p, n)
        x = _polymulmod(x, x, p, n)
        e >>= 1
    return r


def _prime_factors(m):
    f, d = set(), 2
    while d * d <= m:
        while m % d == 0:
            f.add(d)
            m //= d
        d += 1
    if m > 1:
        f.add(m)
    return f


@pytest.mark.parametrize("width", range(3, 33))
def test_feedback_polynomial_is_primitive(width):
    """Independent check of the tap table: p(x) = x^n + sum x^(n-k) ... is primitive iff the
    order of x modulo p is 2^n - 1 (Lidl & Niederreiter, Finite Fields, Thm 3.16).  The
    Fibonacci register with taps k has characteristic polynomial 1 + sum_k x^k reciprocal, whose
    primitivity equals that of its reciprocal x^n + sum_k x^(n-k)."""
    n = width
    p = 1 << n
    for k in lfsr.LFSR_TAPS[n]:
        p |= 1 << (n - k)
    order = (1 << n) - 1
    assert _polypow(order, p, n) == 1
    for q in _prime_factors(order):
        assert _polypow(order // q, p, n) != 1


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: lfsr.lfsr_stream(2, 1, 1, 1), ValueError,
     r"^lfsr_width must be an integer from 3 to 32, not 2$"),
    (lambda: lfsr.lfsr_stream(33, 1, 1, 1), ValueError,
     r"^lfsr_width must be an integer from 3 to 32, not 33$"),
    (lambda: lfsr.lfsr_stream(8, 0, 1, 1), ValueError,
     r"^seed must be an integer from 1 to 255, not 0$"),
    (lambda: lfsr.lfsr_stream(8, 1, 9, 1), ValueError,
     r"^sr_bits must be an integer from 1 to 8, not 9$"),
    (lambda: lfsr.lfsr_stream(8.0, 1, 1, 1), TypeError, r"^lfsr_width must be an integer, not 8.0$"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
