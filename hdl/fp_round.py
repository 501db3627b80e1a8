"""Combinational building blocks shared by the FP multiplier and MACs (Amaranth 0.5).

``leading_zeros(m, v)``
    priority encoder: number of leading zero bits of ``v`` (``len(v)`` for 0).
``round_pack(m, fmt, sign, mag, lsb_exp, sticky, ...)``
    the value ``(-1)^sign * (mag + sticky*epsilon) * 2^lsb_exp`` rounded to nearest, ties to
    even, into a code of the IEEE-style format ``fmt``: normalisation (LZC and left shift, or a
    right shift with sticky into the subnormal range), RNE on the packed exponent|mantissa
    (a mantissa carry increments the exponent; the largest subnormal rounds up to the smallest
    normal), overflow to Inf or, with ``saturate``, to +-max, and optional flush of subnormal
    results to zero of the same sign.  ``sticky`` means "something non-zero below bit 0"; the
    caller guarantees (by the jamming argument in :mod:`lowbit.hdl.fp_mac`) that this does not
    change the rounding.  Specials are the caller's business.
"""

from amaranth.hdl import Cat, Const, Mux, Signal, signed

__all__ = ["leading_zeros", "round_pack", "EXP_SHAPE"]

#: Signed width used for every internal exponent (fp32 subnormals, windows: |e| < 600).
EXP_SHAPE = signed(12)


def leading_zeros(m, v, name):
    """Add a priority encoder to ``m``: the number of leading zeros of ``v``."""
    w = len(v)
    out = Signal(range(w + 1), name=name)
    m.d.comb += out.eq(w)
    for i in range(w):                      # the highest set bit wins (last assignment)
        with m.If(v[i]):
            m.d.comb += out.eq(w - 1 - i)
    return out


def round_pack(m, fmt, sign, mag, lsb_exp, sticky, *, saturate, flush, finite, name):
    """Round ``mag * 2^lsb_exp`` (plus sticky) to ``fmt``; returns the code signal.

    ``saturate`` (Python bool) clamps overflow to +-max when the Value ``finite`` is 1.
    """
    M, E = fmt.man_bits, fmt.exp_bits
    pt = M + 1
    n = len(mag)
    if n < pt + 2:
        pad = pt + 2 - n
        mag = Cat(Const(0, pad), mag)
        lsb_exp = lsb_exp - pad
        n += pad
    lz = leading_zeros(m, mag, f"{name}_lz")
    top = Signal(EXP_SHAPE, name=f"{name}_top")          # exponent of bit n-1 before shifting
    room = Signal(EXP_SHAPE, name=f"{name}_room")
    m.d.comb += [top.eq(lsb_exp + (n - 1)), room.eq(top - fmt.emin)]
    left = Signal(range(n + 1), name=f"{name}_left")
    right = Signal(range(n + 2), name=f"{name}_right")
    with m.If(room < 0):
        m.d.comb += right.eq(Mux(-room > n + 1, n + 1, -room))
    with m.Elif(lz < room):
        m.d.comb += left.eq(lz)
    with m.Else():
        m.d.comb += left.eq(room)
    shifted_l = Signal(n, name=f"{name}_shl")
    shifted_r = Signal(n, name=f"{name}_shr")
    m.d.comb += [shifted_l.eq((mag << left)[:n]), shifted_r.eq(mag >> right)]
    lost_r = Signal(name=f"{name}_lost")
    m.d.comb += lost_r.eq((shifted_r << right)[:n] != mag)
    N = Signal(n, name=f"{name}_norm")
    m.d.comb += N.eq(Mux(right != 0, shifted_r, shifted_l))
    e_top = Signal(EXP_SHAPE, name=f"{name}_etop")
    m.d.comb += e_top.eq(top - left + right)
    normal = N[n - 1]
    kept = N[n - pt:n]
    guard = N[n - pt - 1]
    st = Signal(name=f"{name}_sticky")
    rest = (N[:n - pt - 1] != 0) if n - pt - 1 > 0 else Const(0, 1)
    m.d.comb += st.eq(sticky | rest | lost_r)
    field = Signal(EXP_SHAPE, name=f"{name}_field")
    m.d.comb += field.eq(Mux(normal, e_top + fmt.bias, 0))
    over_pre = normal & (e_top > fmt.emax)
    packed = Cat(kept[:M], field[:E])
    rnd = guard & (st | kept[0])
    rounded = Signal(M + E + 1, name=f"{name}_rounded")
    m.d.comb += rounded.eq(packed + rnd)
    over = Signal(name=f"{name}_over")
    m.d.comb += over.eq(over_pre | (rounded >= fmt.inf_code))
    mcode = Signal(M + E, name=f"{name}_mag")
    with m.If(over):
        if saturate:
            m.d.comb += mcode.eq(Mux(finite, fmt.max_code, fmt.inf_code))
        else:
            m.d.comb += mcode.eq(fmt.inf_code)
    with m.Else():
        m.d.comb += mcode.eq(rounded[:M + E])
    code = Signal(fmt.bits, name=f"{name}_code")
    if flush:
        m.d.comb += code.eq(Cat(Mux(mcode < (1 << M), 0, mcode), sign))
    else:
        m.d.comb += code.eq(Cat(mcode, sign))
    return code
