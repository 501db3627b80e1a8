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
``leading_zeros_tree(m, v, name)``
    the same count as ``leading_zeros`` from a balanced tree (depth ``log2(len(v))`` 2:1
    muxes instead of a ``len(v)``-deep priority chain), for pipelined datapaths.
``Cuts``
    optional pipeline registers at named points of a datapath: ``round_pack(..., cut=Cuts(...),
    tree_lz=True)`` can register its state after the leading-zero count (point ``"lz"``),
    after the normalising shift (``"norm"``) and after the rounding increment (``"round"``); ``Cuts.carry`` holds the caller's signals that
    travel alongside (delayed by the same number of cycles).
"""

from amaranth.hdl import Cat, Const, Mux, Signal, Value, signed

__all__ = ["leading_zeros", "leading_zeros_tree", "round_pack", "Cuts", "EXP_SHAPE"]

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


def _lzc_tree(x):
    """(x == 0, leading zeros of x modulo len(x)) for len(x) a power of two >= 2."""
    if len(x) == 2:
        return ~x[1] & ~x[0], ~x[1]
    h = len(x) // 2
    zh, ch = _lzc_tree(x[h:])
    zl, cl = _lzc_tree(x[:h])
    return zh & zl, Mux(zh, Cat(cl, Const(1, 1)), Cat(ch, Const(0, 1)))


def _lzc_combine(blocks):
    """Combine per-block (zero, count) pairs (LSB block first) as :func:`_lzc_tree` does."""
    while len(blocks) > 1:
        nxt = []
        for k in range(0, len(blocks), 2):
            (zl, cl), (zh, ch) = blocks[k], blocks[k + 1]
            nxt.append((zh & zl, Mux(zh, Cat(cl, Const(1, 1)), Cat(ch, Const(0, 1)))))
        blocks = nxt
    return blocks[0]


def leading_zeros_tree(m, v, name, cut=None, carry=None, also=None):
    """Add a balanced leading-zero counter to ``m``: the number of leading zeros of ``v``
    (``len(v)`` when ``v`` is 0), as a Signal of ``range(len(v) + 1)``.

    With ``cut`` (a :class:`Cuts`), the per-8-bit-block counts may be registered (point
    ``"lz1"``) together with the Values of the dict ``carry``, which is updated in place.
    With ``also`` (a Value as wide as ``v``), its count is made alongside (same register
    point) and the pair ``(count of v, count of also)`` is returned.
    """
    w = len(v)
    k = max(1, (w - 1).bit_length())
    vs = [v] if also is None else [v, also]
    assert all(len(x) == w for x in vs)
    vs = [Cat(Const(0, (1 << k) - w), x) if (1 << k) > w else x for x in vs]  # zeros below
    if cut is not None and k > 3:
        sigs = dict(carry)
        for j, x in enumerate(vs):
            for i in range(0, 1 << k, 8):
                sigs[f"z{j}_{i}"], sigs[f"n{j}_{i}"] = _lzc_tree(x[i:i + 8])
        d = cut("lz1", sigs)
        carry.update({key: d[key] for key in carry})
        res = [_lzc_combine([(d[f"z{j}_{i}"], d[f"n{j}_{i}"]) for i in range(0, 1 << k, 8)])
               for j in range(len(vs))]
    else:
        res = [_lzc_tree(x) for x in vs]
    outs = []
    for j, (zero, count) in enumerate(res):
        out = Signal(range(w + 1), name=name if j == 0 else f"{name}_also")
        m.d.comb += out.eq(Mux(zero, w, count))
        outs.append(out)
    return outs[0] if also is None else tuple(outs)


class Cuts:
    """Pipeline registers at named points of a datapath (see :func:`round_pack`).

    ``cuts(point, sigs)`` returns ``sigs`` (a dict of Values) unchanged when ``point`` is not
    in ``points``; otherwise registers them (and every Value of the ``carry`` dict, in place)
    in the ``sync`` domain and returns the registered copies.  ``count`` is the number of
    register stages placed so far.
    """

    def __init__(self, m, points, name):
        self.m, self.points, self.name = m, frozenset(points), name
        self.carry = {}
        self.count = 0

    def __call__(self, point, sigs):
        if point not in self.points:
            return sigs
        self.count += 1
        self.carry = self._reg(point, self.carry, "c")
        return self._reg(point, sigs, "s")

    def _reg(self, point, sigs, tag):
        out = {}
        for k, v in sigs.items():
            if isinstance(v, int):
                out[k] = v
                continue
            v = Value.cast(v)
            r = Signal(v.shape(), name=f"{self.name}_{point}_{tag}_{k}")
            self.m.d.sync += r.eq(v)
            out[k] = r
        return out


def round_pack(m, fmt, sign, mag, lsb_exp, sticky, *, saturate, flush, finite, name, cut=None,
               tree_lz=False, random=None):
    """Round ``mag * 2^lsb_exp`` (plus sticky) to ``fmt``; returns the code signal.

    ``random`` (a Value of ``N`` bits, default none: RNE) selects stochastic rounding as
    :meth:`lowbit.models.formats.FloatFormat.encode` defines it: the ``N`` bits below the
    result's LSB plus ``random``, carried into the LSB, the rest truncated
    (``floor((floor(|x|/ulp * 2^N) + r) / 2^N)``).  The caller guarantees that those ``N``
    bits of ``mag`` are exact (no jamming above them); ``sticky`` is ignored.  Not with ``cut``.

    ``saturate`` (Python bool) clamps overflow to +-max when the Value ``finite`` is 1.
    ``cut`` (a :class:`Cuts`, default none) may register the state at the points ``"lz1"``
    (inside the tree leading-zero count, after its 8-bit blocks; ``tree_lz`` only), ``"lz"``
    (after the leading-zero count), ``"norm1"`` (between the two steps of the normalising
    left shift, by a multiple of 8 and by 0..7), ``"norm"`` (after the normalising shift), ``"rnd"``
    (after the guard/sticky logic, before the rounding increment) and ``"round"``
    (after the rounding increment, before the overflow check and packing);
    ``tree_lz`` uses :func:`leading_zeros_tree`.  The defaults build the same circuit as
    before these options existed.
    """
    M, E = fmt.man_bits, fmt.exp_bits
    pt = M + 1
    n = len(mag)
    S = 0 if random is None else len(random)
    assert random is None or cut is None
    if n < pt + 2 + S:
        pad = pt + 2 + S - n
        mag = Cat(Const(0, pad), mag)
        lsb_exp = lsb_exp - pad
        n += pad
    # Pipelined use with a constant lsb_exp whose result never needs a right shift (the
    # normalised MSB can always move up to bit n-1): the bits below the guard bit are
    # non-zero iff the trailing-zero count tz of mag is below n-pt-1-left (left <= lz shifts
    # out no 1), so the sticky bit comes from tz, counted alongside lz, and only the top
    # pt+1 bits of the normalising shift are used (Yosys removes the rest).
    use_tz = (cut is not None and tree_lz and isinstance(lsb_exp, int)
              and lsb_exp + n - 1 - fmt.emin >= 0 and n - pt - 1 > 0)
    tz = None
    if tree_lz and cut is not None:
        carry = {"mag": mag, "sign": sign, "sticky": sticky, "finite": finite,
                 "lsb_exp": lsb_exp}
        rev = Cat(*[mag[i] for i in reversed(range(n))]) if use_tz else None
        lz = leading_zeros_tree(m, mag, f"{name}_lz", cut, carry, also=rev)
        if use_tz:
            lz, tz = lz
        mag, sign, sticky, finite, lsb_exp = (carry[k] for k in ("mag", "sign", "sticky",
                                                                 "finite", "lsb_exp"))
    else:
        lz = (leading_zeros_tree if tree_lz else leading_zeros)(m, mag, f"{name}_lz")
    if cut is not None:
        d = cut("lz", {"mag": mag, "lz": lz, "sign": sign, "sticky": sticky, "finite": finite,
                       "lsb_exp": lsb_exp, **({"tz": tz} if use_tz else {})})
        mag, lz, sign, sticky, finite, lsb_exp = (d[k] for k in ("mag", "lz", "sign", "sticky",
                                                                 "finite", "lsb_exp"))
        tz = d.get("tz")
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
    tzrest = {}
    if use_tz:
        r = Signal(name=f"{name}_tzrest")
        m.d.comb += r.eq(tz + left < n - pt - 1)
        tzrest = {"rest": r}
    if cut is None or len(left) <= 3:
        # (statement order kept as it was before the pipelining options: same Verilog text)
        m.d.comb += [shifted_l.eq((mag << left)[:n]), shifted_r.eq(mag >> right)]
        lost_r = Signal(name=f"{name}_lost")
        m.d.comb += lost_r.eq((shifted_r << right)[:n] != mag)
        N = Signal(n, name=f"{name}_norm")
        m.d.comb += N.eq(Mux(right != 0, shifted_r, shifted_l))
        e_top = Signal(EXP_SHAPE, name=f"{name}_etop")
        m.d.comb += e_top.eq(top - left + right)
    else:
        # the left shift in two steps (multiples of 8, then 0..7) with point "norm1" between
        lost_r = Signal(name=f"{name}_lost")
        e_top = Signal(EXP_SHAPE, name=f"{name}_etop")
        m.d.comb += [shifted_r.eq(mag >> right), lost_r.eq((shifted_r << right)[:n] != mag),
                     e_top.eq(top - left + right)]
        coarse = Signal(n, name=f"{name}_shl8")
        m.d.comb += coarse.eq((mag << Cat(Const(0, 3), left[3:]))[:n])
        d = cut("norm1", {"coarse": coarse, "fine": left[:3], "shr": shifted_r, "lost": lost_r,
                          "rnz": right != 0, "e_top": e_top, "sign": sign, "sticky": sticky,
                          "finite": finite, **tzrest})
        coarse, fine, shifted_r, lost_r, rnz, e_top, sign, sticky, finite = (
            d[k] for k in ("coarse", "fine", "shr", "lost", "rnz", "e_top", "sign", "sticky",
                           "finite"))
        tzrest = {k: d[k] for k in tzrest}
        m.d.comb += shifted_l.eq((coarse << fine)[:n])
        N = Signal(n, name=f"{name}_norm")
        m.d.comb += N.eq(Mux(rnz, shifted_r, shifted_l))
    if cut is not None:
        d = cut("norm", {"N": N, "e_top": e_top, "lost": lost_r, "sign": sign, "sticky": sticky,
                         "finite": finite, **tzrest})
        N, e_top, lost_r, sign, sticky, finite = (d[k] for k in ("N", "e_top", "lost", "sign",
                                                                 "sticky", "finite"))
        tzrest = {k: d[k] for k in tzrest}
    normal = N[n - 1]
    kept = N[n - pt:n]
    guard = N[n - pt - 1]
    st = Signal(name=f"{name}_sticky")
    if use_tz:
        rest = tzrest["rest"]
    else:
        rest = (N[:n - pt - 1] != 0) if n - pt - 1 > 0 else Const(0, 1)
    m.d.comb += st.eq(sticky | rest | lost_r)
    field = Signal(EXP_SHAPE, name=f"{name}_field")
    m.d.comb += field.eq(Mux(normal, e_top + fmt.bias, 0))
    over_pre = normal & (e_top > fmt.emax)
    packed = Cat(kept[:M], field[:E])
    rnd = guard & (st | kept[0])
    if cut is not None:
        d = cut("rnd", {"packed": packed, "rnd": rnd, "over_pre": over_pre, "sign": sign,
                        "finite": finite})
        packed, rnd, over_pre, sign, finite = (d[k] for k in ("packed", "rnd", "over_pre",
                                                              "sign", "finite"))
    if random is not None:
        # stochastic: the carry out of the N bits below the LSB plus the random bits
        frac = N[n - pt - S:n - pt]
        rnd = (frac + random)[S]
    rounded = Signal(M + E + 1, name=f"{name}_rounded")
    m.d.comb += rounded.eq(packed + rnd)
    if cut is not None:
        d = cut("round", {"rounded": rounded, "over_pre": over_pre, "sign": sign,
                          "finite": finite})
        rounded, over_pre, sign, finite = (d[k] for k in ("rounded", "over_pre", "sign",
                                                          "finite"))
    over = Signal(name=f"{name}_over")
    if cut is None:
        m.d.comb += over.eq(over_pre | (rounded >= fmt.inf_code))
    else:
        # the same test as bit logic (inf_code is the all-ones exponent over M zero bits),
        # so that an FPGA flow does not spend a carry chain on the comparison
        m.d.comb += over.eq(over_pre | rounded[M + E] | (rounded[M:M + E] == (1 << E) - 1))
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
