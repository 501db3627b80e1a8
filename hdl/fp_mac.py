"""Floating-point multiply-accumulate units (Amaranth 0.5).

Numeric contract: exactly :mod:`lowbit.models.mac` (``fp_mac_step``, ``kulisch_step``,
``kulisch_read``, ``mac_stream``): the exact product of ``a`` and ``b`` is accumulated into
``acc_format`` with RNE, in mode ``fused`` (one rounding after the exact add),
``two_roundings`` (product rounded to ``acc_format`` first) or ``kulisch`` (exact fixed-point
register of :func:`lowbit.models.mac.kulisch_width` bits, rounded once on read-out).  IEEE/OCP
specials, exact subnormals unless ``flush_subnormals``, overflow to Inf or ``saturate``; the
sign of an exact zero sum is ``+0`` unless both operands are ``-0``.

Reusable combinational steps (the systolic array's PEs instantiate these):

:class:`FpMacStep`      ``acc_out = round(acc_in + a*b)`` (fused / two_roundings).
:class:`KulischStep`    ``(fixed, flags)_out = (fixed, flags)_in + a*b`` exactly.
:class:`KulischRead`    ``acc = round(fixed * 2^lsb)`` with the specials in ``flags``.

Adder datapath (fused / two_roundings): both significands are extended to ``P = max(p_acc,
p_prod)`` bits and the one with the larger nominal exponent (``hi``) is placed at the top of a
``W = P + 3``-bit window; the other is shifted right by the exponent difference, and every bit
shifted out is OR-ed ("jammed") into bit 0.  Bits are lost only when the difference is at least
4; then either ``hi`` is normal, so the result has its MSB at window bit ``W-2`` or above and its
rounding LSB at bit ``P + 2 - p_acc >= 2``, or ``hi`` is a subnormal accumulator, whose rounding
grid is fixed at bit ``W - p_acc >= 3``.  In both cases the exact and the jammed values lie in one
open interval between consecutive even integers, which contains no rounding boundary of a grid of
spacing >= 4, so the jam does not change the RNE result.  A leading-zero count normalises the
(signed) sum, which :func:`lowbit.hdl.fp_round.round_pack` rounds.
"""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.models.checks import check_choice

from lowbit.models import mac as model

from .formats import unpack
from .fp_mul import check_pipeline, multiply_into
from .fp_round import EXP_SHAPE, Cuts, round_pack
from .int_mac import lut_multiply_into
from .lfsr import check_random_source, random_ports, random_source_into, sr_contract, sr_params
from .manifest import describe_format, fmt_ref, golden, lanes, positive_zero
from .unit import Param, Unit, pipeline_param

__all__ = ["FpMacStep", "KulischStep", "KulischRead", "FpMac", "UNITS", "mac_numerics",
           "accumulate_into", "kulisch_add_into", "kulisch_read_into",
           "kulisch_term_into", "kulisch_accumulate_into", "kulisch_read_pipelined_into",
           "KULISCH_CUTS"]


def _operand(m, fmt, code, flush, name):
    u = unpack(m, fmt, code, name)
    zero = Signal(name=f"{name}_z")
    m.d.comb += zero.eq(u.is_zero | (u.is_sub if flush else 0))
    sig = Signal(fmt.man_bits + 1, name=f"{name}_s")
    m.d.comb += sig.eq(Mux(zero | u.is_nan | u.is_inf, 0, u.sig))
    return u, zero, sig


def accumulate_into(m, acc_fmt, pf, acc_code, p_code, mode, flush, saturate, name="acc",
                    random=None, cut=None):
    """Logic for ``round(acc + p)`` (``p`` a product-format code); returns the new acc code.

    ``cut`` (a :class:`~lowbit.hdl.fp_round.Cuts`, not with ``random``) may register the
    state after the aligned add (point ``"add"``: magnitude, sign, exponent and the specials)
    and inside the rounding (:func:`~lowbit.hdl.fp_round.round_pack`'s points, with the tree
    leading-zero count); the result is then ``cut.count`` cycles after the inputs (the
    caller's ``cut.carry`` signals are delayed alongside). Same numbers with or without.

    ``random`` (an ``N``-bit Value, default none) makes every rounding stochastic with those
    bits (:func:`lowbit.models.mac.fp_accumulate` with ``rounding="stochastic"``): the window
    grows by ``N`` bits so that the ``N`` bits below the result's LSB are exact (the jamming
    argument of the module docstring then holds at the cut ``N`` bits below the LSB: the cut
    lies at window bit >= 2, and an exact value and its jammed twin lie in one open interval
    between consecutive integers of a grid of spacing >= 4 whose floor they share)."""
    S = 0 if random is None else len(random)
    ux, zx, sigx = _operand(m, acc_fmt, acc_code, flush, f"{name}_x")
    up = unpack(m, pf, p_code, f"{name}_p")
    if mode == "two_roundings":
        r = round_pack(m, acc_fmt, up.sign, up.sig, up.exp - pf.man_bits, 0, saturate=saturate,
                       flush=flush, finite=1, name=f"{name}_pr", random=random)
        rp = Signal(acc_fmt.bits, name=f"{name}_prc")
        with m.If(up.is_nan):
            m.d.comb += rp.eq(acc_fmt.nan_code)
        with m.Elif(up.is_inf):
            m.d.comb += rp.eq(Cat(Const(acc_fmt.inf_code, acc_fmt.bits - 1), up.sign))
        with m.Elif(up.is_zero):
            m.d.comb += rp.eq(up.sign << (acc_fmt.bits - 1))
        with m.Else():
            m.d.comb += rp.eq(r)
        uy, zy, sigy = _operand(m, acc_fmt, rp, flush, f"{name}_y")
    else:
        uy = up
        zy = Signal(name=f"{name}_y_z")
        m.d.comb += zy.eq(up.is_zero)
        sigy = Signal(len(up.sig), name=f"{name}_y_s")
        m.d.comb += sigy.eq(Mux(up.is_zero | up.is_nan | up.is_inf, 0, up.sig))
    px, py = len(sigx), len(sigy)
    P = max(px, py)
    W = P + 3 + S
    xe = Cat(Const(0, P - px + 3 + S), sigx) if P - px + 3 + S else sigx
    ye = Cat(Const(0, P - py + 3 + S), sigy)
    x_big = Signal(name=f"{name}_xbig")
    m.d.comb += x_big.eq(~zx & (zy | (ux.exp >= uy.exp)))
    e_hi = Signal(EXP_SHAPE, name=f"{name}_ehi")
    d = Signal(EXP_SHAPE, name=f"{name}_d")
    m.d.comb += [e_hi.eq(Mux(x_big, ux.exp, uy.exp)),
                 d.eq(Mux(x_big, ux.exp - uy.exp, uy.exp - ux.exp))]
    dc = Signal(range(W + 2), name=f"{name}_dc")
    with m.If(d < 0):
        m.d.comb += dc.eq(0)
    with m.Elif(d > W + 1):
        m.d.comb += dc.eq(W + 1)
    with m.Else():
        m.d.comb += dc.eq(d)
    H = Signal(W, name=f"{name}_H")
    L0 = Signal(W, name=f"{name}_L0")
    L = Signal(W, name=f"{name}_L")
    m.d.comb += [H.eq(Mux(x_big, xe, ye)), L0.eq(Mux(x_big, ye, xe)), L.eq(L0 >> dc)]
    lost = Signal(name=f"{name}_lost")
    m.d.comb += lost.eq((L << dc)[:W] != L0)
    Lj = Signal(W, name=f"{name}_Lj")
    m.d.comb += Lj.eq(L | lost)
    s_hi = Mux(x_big, ux.sign, uy.sign)
    s_lo = Mux(x_big, uy.sign, ux.sign)
    T = Signal(signed(W + 2), name=f"{name}_T")
    m.d.comb += T.eq(Mux(s_hi != s_lo, H - Lj, H + Lj))
    neg = T < 0
    mag = Signal(W + 1, name=f"{name}_mag")
    m.d.comb += mag.eq(Mux(neg, -T, T))
    sign = Signal(name=f"{name}_sign")
    m.d.comb += sign.eq(Mux(T == 0, zx & zy & ux.sign & uy.sign, s_hi ^ neg))
    nan = ux.is_nan | uy.is_nan | (ux.is_inf & uy.is_inf & (ux.sign != uy.sign))
    inf = ux.is_inf | uy.is_inf
    inf_sign = Mux(ux.is_inf, ux.sign, uy.sign)
    if cut is None:
        code = round_pack(m, acc_fmt, sign, mag, e_hi - (W - 1), 0, saturate=saturate,
                          flush=flush, finite=1, name=f"{name}_r", random=random)
    else:
        assert random is None
        lsb = Signal(EXP_SHAPE, name=f"{name}_lsb")
        m.d.comb += lsb.eq(e_hi - (W - 1))
        d = cut("add", {"mag": mag, "sign": sign, "lsb": lsb, "nan": nan, "inf": inf,
                        "inf_sign": inf_sign})
        keys = ("_acc_nan", "_acc_inf", "_acc_isign")
        cut.carry.update(zip(keys, (d["nan"], d["inf"], d["inf_sign"])))
        code = round_pack(m, acc_fmt, d["sign"], d["mag"], d["lsb"], 0, saturate=saturate,
                          flush=flush, finite=1, name=f"{name}_r", cut=cut, tree_lz=True)
        nan, inf, inf_sign = (cut.carry.pop(k) for k in keys)
    out = Signal(acc_fmt.bits, name=f"{name}_out")
    with m.If(nan):
        m.d.comb += out.eq(acc_fmt.nan_code)
    with m.Elif(inf):
        m.d.comb += out.eq(Cat(Const(acc_fmt.inf_code, acc_fmt.bits - 1), inf_sign))
    with m.Else():
        m.d.comb += out.eq(code)
    return out


# Kulisch flag bits (as in the model)
_NAN, _PINF, _NINF, _NEGZ = 0, 1, 2, 3


def kulisch_add_into(m, pf, width, lsb, fixed_in, flags_in, p_code, name="k"):
    """Logic for adding the exact product ``p_code`` to the Kulisch state; returns (fixed, flags)."""
    up = unpack(m, pf, p_code, f"{name}_p")
    P = pf.man_bits
    fin = ~up.is_zero & ~up.is_nan & ~up.is_inf
    max_sh = pf.emax - lsb
    sh = Signal(range(max_sh + 1), name=f"{name}_sh")
    m.d.comb += sh.eq(Mux(fin, up.exp - lsb, 0))
    full = Signal(P + 1 + max_sh, name=f"{name}_full")
    m.d.comb += full.eq(Mux(fin, up.sig, 0) << sh)
    term = Signal(width, name=f"{name}_term")
    m.d.comb += term.eq(full[P:])
    fixed = Signal(signed(width), name=f"{name}_fixed")
    m.d.comb += fixed.eq(Mux(up.sign, fixed_in - term, fixed_in + term))
    flags = Signal(4, name=f"{name}_flags")
    m.d.comb += [
        flags[_NAN].eq(flags_in[_NAN] | up.is_nan),
        flags[_PINF].eq(flags_in[_PINF] | (up.is_inf & ~up.sign)),
        flags[_NINF].eq(flags_in[_NINF] | (up.is_inf & up.sign)),
        flags[_NEGZ].eq(flags_in[_NEGZ] & up.is_zero & up.sign),
    ]
    return fixed, flags


def kulisch_read_into(m, acc_fmt, width, lsb, fixed, flags, saturate, flush, name="kr"):
    """Logic rounding the Kulisch state once to ``acc_fmt``; returns the code signal."""
    neg = fixed[width - 1]
    mag = Signal(width, name=f"{name}_mag")
    m.d.comb += mag.eq(Mux(neg, -fixed.as_signed(), fixed))
    sign = Signal(name=f"{name}_sign")
    m.d.comb += sign.eq(Mux(mag == 0, flags[_NEGZ], neg))
    finite = ~(flags[_NAN] | flags[_PINF] | flags[_NINF])
    code = round_pack(m, acc_fmt, sign, mag, lsb, 0, saturate=saturate, flush=flush,
                      finite=finite, name=f"{name}_r")
    return _kulisch_special_out(m, acc_fmt, flags, code, name)


def _kulisch_special_out(m, acc_fmt, flags, code, name):
    """The read-out code: NaN if the NaN flag is set or both infinities were added, the
    signed infinity if one was, else the rounded ``code``."""
    out = Signal(acc_fmt.bits, name=f"{name}_out")
    with m.If(flags[_NAN] | (flags[_PINF] & flags[_NINF])):
        m.d.comb += out.eq(acc_fmt.nan_code)
    with m.Elif(flags[_PINF] | flags[_NINF]):
        m.d.comb += out.eq(Cat(Const(acc_fmt.inf_code, acc_fmt.bits - 1), flags[_NINF]))
    with m.Else():
        m.d.comb += out.eq(code)
    return out


# -- pipelined Kulisch datapath ---------------------------------------------------------------
#
# Used by FpMac(mode="kulisch", pipeline_stages >= 1).  The product is never packed into a
# product-format code: the operands are decoded and the exact product is aligned directly,
#
#     a * b = (sig_a * sig_b) * 2^((e_a - emin_a) + (e_b - emin_b)) * 2^lsb,
#
# with lsb = (emin_a - ma) + (emin_b - mb) the LSB weight of the register
# (lowbit.models.mac.kulisch_width) and e the unpacked exponent (emin for subnormals), so
# the term is the significand product shifted left by a small non-negative amount.  The
# accumulator loop is then only a width-bit add (a subtraction is ~term + 1, the +1 a
# carry-in), and the read-out (magnitude, leading-zero count, normalising shift, RNE)
# runs after the register, in as many stages as KULISCH_CUTS allows.

#: Register cut points of the pipelined Kulisch MAC, in the order ``pipeline_stages`` adds
#: them (``pipeline_stages = k`` uses the first ``k``).  Operand side: ``unpack`` after the
#: operand decode (significands, shift amount, specials), ``decode`` after the significand
#: product, ``term`` the aligned term before the accumulator.  Read-out: ``mag`` after the
#: magnitude (negation), ``lz1`` inside the leading-zero count (after its 8-bit blocks),
#: ``lz`` after it, ``norm1`` between the two steps
#: of the normalising shift, ``norm`` after it, ``rnd`` after the guard/sticky bits,
#: ``round`` after the rounding increment,
#: ``out`` the result code.
KULISCH_CUTS = ("term", "out", "decode", "mag", "norm", "unpack", "lz", "round", "norm1",
                "lz1", "rnd")


def kulisch_term_into(m, a_fmt, b_fmt, a, b, flush, width, cut=None, name="kt"):
    """Logic decoding ``a * b`` into the aligned Kulisch term (no product code).

    Returns a dict of Values: ``term`` (unsigned ``width`` bits: |a*b| / 2^lsb modulo
    2^width, 0 unless the product is finite and non-zero), ``sign``, ``nan`` (NaN operand or
    Inf * 0), ``inf`` (an Inf operand, not NaN) and ``zero`` (a zero operand, not NaN; with
    ``flush`` subnormal operands count as zeros).  ``cut`` (a :class:`~lowbit.hdl.fp_round.Cuts`)
    may register after the operand decode (point ``"unpack"``) and after the significand
    product (``"decode"``), before the alignment shift.  The significand product is built
    from LUTs (:func:`~lowbit.hdl.int_mac.lut_multiply_into`), not a ``$mul`` (which an FPGA
    flow would put in a slow unregistered DSP block).
    """
    cut = cut if cut is not None else (lambda point, sigs: sigs)
    ua = unpack(m, a_fmt, a, f"{name}_a")
    ub = unpack(m, b_fmt, b, f"{name}_b")
    za = ua.is_zero | (ua.is_sub if flush else 0)
    zb = ub.is_zero | (ub.is_sub if flush else 0)
    nan = Signal(name=f"{name}_nan")
    inf = Signal(name=f"{name}_inf")
    zero = Signal(name=f"{name}_zero")
    fin = Signal(name=f"{name}_fin")
    m.d.comb += [nan.eq(ua.is_nan | ub.is_nan | (ua.is_inf & zb) | (ub.is_inf & za)),
                 inf.eq((ua.is_inf | ub.is_inf) & ~nan),
                 zero.eq((za | zb) & ~nan),
                 fin.eq(~(za | zb | ua.is_nan | ub.is_nan | ua.is_inf | ub.is_inf))]
    da, db = a_fmt.emax - a_fmt.emin, b_fmt.emax - b_fmt.emin
    sh = Signal(range(da + db + 1), name=f"{name}_sh")
    m.d.comb += sh.eq((ua.exp - a_fmt.emin)[:len(Signal(range(da + 1)))]
                      + (ub.exp - b_fmt.emin)[:len(Signal(range(db + 1)))])
    d = cut("unpack", {"sa": ua.sig, "sb": ub.sig, "sh": sh, "sign": ua.sign ^ ub.sign,
                       "nan": nan, "inf": inf, "zero": zero, "fin": fin})
    sbits = len(ua.sig) + len(ub.sig)
    sig, _ = lut_multiply_into(m, d["sa"], d["sb"], sbits, name=f"{name}_m")
    d = cut("decode", {"sig": sig, "sh": d["sh"], "sign": d["sign"], "nan": d["nan"],
                       "inf": d["inf"], "zero": d["zero"], "fin": d["fin"]})
    full = Signal(sbits + da + db, name=f"{name}_full")
    m.d.comb += full.eq(Mux(d["fin"], d["sig"], 0) << d["sh"])
    term = Signal(width, name=f"{name}_term")
    m.d.comb += term.eq(full)
    return {"term": term, "sign": d["sign"], "nan": d["nan"], "inf": d["inf"], "zero": d["zero"]}


def kulisch_accumulate_into(m, width, fixed_in, flags_in, t, name="ka"):
    """Logic for one exact Kulisch step from a decoded term ``t`` (see :func:`kulisch_term_into`);
    returns (fixed, flags) as :func:`kulisch_add_into` does for a product code.

    ``fixed = fixed_in + (sign ? ~term + 1 : term)`` modulo ``2^width``: one ``width``-bit add
    whose carry-in is the sign (a single carry chain on an FPGA).  If ``t`` has a key ``"x"``
    (``term ^ (sign ? all ones : 0)``, e.g. computed before a pipeline register), it is used
    in place of ``term``.
    """
    s = t["sign"]
    if "x" in t:
        x = t["x"]
    else:
        x = Signal(width, name=f"{name}_x")
        m.d.comb += x.eq(t["term"] ^ Mux(s, (1 << width) - 1, 0))
    fixed = Signal(signed(width), name=f"{name}_fixed")
    m.d.comb += fixed.eq((Cat(Const(1, 1), fixed_in[:width]) + Cat(s, x))[1:width + 1])
    flags = Signal(4, name=f"{name}_flags")
    m.d.comb += [
        flags[_NAN].eq(flags_in[_NAN] | t["nan"]),
        flags[_PINF].eq(flags_in[_PINF] | (t["inf"] & ~s)),
        flags[_NINF].eq(flags_in[_NINF] | (t["inf"] & s)),
        flags[_NEGZ].eq(flags_in[_NEGZ] & t["zero"] & s),
    ]
    return fixed, flags


def kulisch_read_pipelined_into(m, acc_fmt, width, lsb, fixed, flags, saturate, flush, cut,
                                name="krp"):
    """:func:`kulisch_read_into` with optional registers: ``cut`` (a
    :class:`~lowbit.hdl.fp_round.Cuts`) may register after the magnitude (point ``"mag"``),
    the leading-zero count (``"lz"``), the normalising shift (``"norm"``) and on the result
    (``"out"``).  Returns the code signal, ``cut.count`` cycles after ``fixed``/``flags``
    (the caller's ``cut.carry`` signals are delayed alongside)."""
    neg = fixed[width - 1]
    mag = Signal(width, name=f"{name}_mag")
    m.d.comb += mag.eq(Mux(neg, -fixed.as_signed(), fixed))
    sign = Signal(name=f"{name}_sign")
    m.d.comb += sign.eq(Mux(fixed == 0, flags[_NEGZ], neg))
    d = cut("mag", {"mag": mag, "sign": sign, "flags": flags})
    fl = Signal(4, name=f"{name}_fl")
    m.d.comb += fl.eq(d["flags"])
    cut.carry["_krp_flags"] = fl
    finite = ~(fl[_NAN] | fl[_PINF] | fl[_NINF])
    code = round_pack(m, acc_fmt, d["sign"], d["mag"], lsb, 0, saturate=saturate, flush=flush,
                      finite=finite, name=f"{name}_r", cut=cut, tree_lz=True)
    fl = cut.carry.pop("_krp_flags")
    out = _kulisch_special_out(m, acc_fmt, fl, code, name)
    return cut("out", {"out": out})["out"]


def mac_numerics(a, b, acc, mode, flush, saturate, terms, port):
    """The contract entries of an FP MAC step (:class:`FpMac`, the systolic FP PEs): the NaN
    codes it produces on ``port`` and when, the sign of zero results, the intermediate product
    of ``two_roundings``, and the Kulisch register (every number from the model's objects)."""
    neg0 = 1 << (acc.bits - 1)
    zero = positive_zero(acc)
    operand_specials = a.has_nan or b.has_nan or a.has_inf or b.has_inf
    # two_roundings without saturate: a product that rounds to +-Inf can meet the other Inf
    big = acc.encode(np.array([a.max * b.max]))[0]
    product_overflow = mode == "two_roundings" and not saturate and int(big) == acc.inf_code
    nan = operand_specials or product_overflow
    when = []
    if operand_specials:
        when.append("a NaN operand, Inf * 0, or Inf terms of both signs")
    if product_overflow:
        when.append("a product rounded to +Inf and one rounded to -Inf (or an overflowed "
                    "accumulator of the other sign)")
    out = {
        "nan_outputs": {port: [acc.nan_code] if nan else []},
        "nan_when": "; ".join(when) + "; sticky until a new sum" if nan else
                    "never: the operand formats have no NaN or Inf"
                    + ("" if mode != "two_roundings" else
                       " and no product rounds to Inf in " + acc.name),
    }
    if mode == "kulisch":
        width, lsb = model.kulisch_width(a, b, terms)
        out["zero_sign"] = {
            "exact_zero": (f"-0 ({neg0:#x}) only if every product since the new sum began "
                           f"(clear) was -0; any other exact zero sum reads +0 ({zero})"),
            "new_sum": "clear with valid: the register restarts from 0 with the every-product-"
                       "was--0 flag set",
            "empty": f"+0 ({zero}) after rst or clear without valid",
            "underflow": "a non-zero exact sum that rounds"
                         + (" or is flushed" if flush else "") + " to zero keeps its sign",
        }
        out["kulisch"] = {
            "width": width, "lsb_exponent": lsb, "exact_terms": terms,
            "register": f"signed {width}-bit two's complement, LSB weight 2^{lsb}",
            "beyond_terms": f"wraps modulo 2^{width}",
            "overflow": (f"not sticky: there is no overflow flag; a sum beyond the register "
                         f"wraps modulo 2^{width}, reads as the wrapped value, and later terms "
                         "can bring it back into range, after which it reads exactly again"),
            "flags": "NaN seen, +Inf seen, -Inf seen (sticky until a new sum), every product "
                     "-0 so far",
            "read_out": f"RNE once to {acc.name}"
                        + (", overflow of finite sums to +-max" if saturate else
                           ", overflow to +-Inf")
                        + (", subnormal results flushed to zero of their sign" if flush else ""),
        }
        return out
    out["zero_sign"] = {
        "exact_zero": (f"an exact zero sum acc + a*b is +0 ({zero}) unless both are -0 "
                       f"(then -0, {neg0:#x}); x + (-x) = +0"),
        "new_sum": f"clear with valid starts from -0 ({neg0:#x}), the identity, so the first "
                   "term (a -0 product included) is kept exactly",
        "empty": f"+0 ({zero}) after rst or clear without valid",
        "underflow": "a non-zero result that rounds" + (" or is flushed" if flush else "")
                     + " to zero keeps its sign",
    }
    if mode == "two_roundings":
        out["intermediate_product"] = (
            f"the exact product is first rounded (RNE) to {acc.name} like any result: it "
            + ("saturates to +-max (finite operands)" if saturate else "overflows to +-Inf")
            + (" and a subnormal rounded product is flushed to zero of its sign" if flush
               else "")
            + "; acc plus that value is then rounded again")
    return out


class _Params:
    def _validate(self, a_format, b_format, acc_format, mode, flush_subnormals, saturate, terms):
        self._a = model.check_float_operand(a_format, "a_format")
        self._b = model.check_float_operand(b_format, "b_format")
        self._acc = model.check_acc_format(acc_format)
        self._mode = model.check_mode(mode)
        self._flush = bool(flush_subnormals)
        self._sat = bool(saturate)
        self._terms = model.check_terms(terms)
        self._pf = model.product_format(self._a, self._b)
        self._kwidth, self._klsb = model.kulisch_width(self._a, self._b, self._terms)

    a_format = property(lambda self: self._a)
    b_format = property(lambda self: self._b)
    acc_format = property(lambda self: self._acc)
    mode = property(lambda self: self._mode)
    flush_subnormals = property(lambda self: self._flush)
    saturate = property(lambda self: self._sat)
    terms = property(lambda self: self._terms)
    product_format = property(lambda self: self._pf)

    @property
    def kulisch_width(self):
        """Width of the Kulisch register (``mode="kulisch"``), from the model."""
        return self._kwidth


class FpMacStep(_Params, wiring.Component):
    """Combinational FP MAC step ``acc_out = round(acc_in + a*b)`` (fused / two_roundings).

    A new sum is ``acc_in = -0`` (code ``1 << (bits-1)``).  Parameters as :class:`FpMac`.

    Members
    -------
    acc_in : In(acc_format.bits), a : In(a.bits), b : In(b.bits)
    acc_out : Out(acc_format.bits)
    """

    is_sequential = False
    latency = 0

    def __init__(self, a_format="e4m3", b_format="e4m3", acc_format="fp32", mode="fused",
                 flush_subnormals=False, saturate=False):
        self._validate(a_format, b_format, acc_format, mode, flush_subnormals, saturate, 4096)
        if self._mode == "kulisch":
            raise ValueError("FpMacStep does mode fused or two_roundings; "
                             "use KulischStep/KulischRead for mode kulisch")
        super().__init__({"acc_in": In(self._acc.bits), "a": In(self._a.bits),
                          "b": In(self._b.bits), "acc_out": Out(self._acc.bits)})

    def elaborate(self, platform):
        m = Module()
        p = multiply_into(m, self._a, self._b, self.a, self.b, self._flush)
        m.d.comb += self.acc_out.eq(accumulate_into(m, self._acc, self._pf, self.acc_in, p,
                                                    self._mode, self._flush, self._sat))
        return m


class KulischStep(_Params, wiring.Component):
    """Combinational exact step of the Kulisch accumulator: ``state_out = state_in + a*b``.

    ``fixed`` is the signed ``kulisch_width``-bit register (LSB weight ``2^lsb_exp``, wraps);
    ``flags`` bits: 0 NaN seen, 1 +Inf seen, 2 -Inf seen, 3 every product so far was -0.  A new
    sum starts from ``fixed = 0, flags = 0b1000``.
    """

    is_sequential = False
    latency = 0

    def __init__(self, a_format="e4m3", b_format="e4m3", terms=4096, flush_subnormals=False):
        self._validate(a_format, b_format, "fp32", "kulisch", flush_subnormals, False, terms)
        w = self._kwidth
        super().__init__({"fixed_in": In(signed(w)), "flags_in": In(4), "a": In(self._a.bits),
                          "b": In(self._b.bits), "fixed_out": Out(signed(w)), "flags_out": Out(4)})

    def elaborate(self, platform):
        m = Module()
        p = multiply_into(m, self._a, self._b, self.a, self.b, self._flush)
        fixed, flags = kulisch_add_into(m, self._pf, self._kwidth, self._klsb, self.fixed_in,
                                        self.flags_in, p)
        m.d.comb += [self.fixed_out.eq(fixed), self.flags_out.eq(flags)]
        return m


class KulischRead(_Params, wiring.Component):
    """Combinational read-out: the Kulisch state rounded once (RNE) to ``acc_format``."""

    is_sequential = False
    latency = 0

    def __init__(self, a_format="e4m3", b_format="e4m3", acc_format="fp32", terms=4096,
                 flush_subnormals=False, saturate=False):
        self._validate(a_format, b_format, acc_format, "kulisch", flush_subnormals, saturate, terms)
        w = self._kwidth
        super().__init__({"fixed": In(signed(w)), "flags": In(4), "acc": Out(self._acc.bits)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.acc.eq(kulisch_read_into(m, self._acc, self._kwidth, self._klsb,
                                                  self.fixed, self.flags, self._sat, self._flush))
        return m


class FpMac(_Params, wiring.Component):
    """Floating-point multiply-accumulate unit (see the module docstring for the numerics).

    Parameters
    ----------
    a_format, b_format : FloatFormat or str
        Operand formats: signed float formats with a zero, at most 16 bits (e4m3, e5m2, fnuz,
        e2m3, e3m2, e2m1, user-defined); mixed allowed.
    acc_format : FloatFormat or str
        IEEE-style accumulator format: fp32, fp16, bf16 (or eXmY).
    mode : str
        ``"fused"``, ``"two_roundings"`` or ``"kulisch"``.
    rounding : str
        ``"nearest_even"`` (default) or ``"stochastic"`` (fused / two_roundings): every rounding
        of a step adds the step's ``sr_bits`` random bits below the accumulator's LSB and
        truncates (:func:`lowbit.models.mac.fp_accumulate`; two_roundings uses the same draw
        for the product and the sum rounding).
    sr_bits : int
        Stochastic rounding: N, 1..:func:`lowbit.models.mac.max_sr_bits` (fp32 28, fp16 and
        bf16 32) and at most ``lfsr_width``.  The adder window grows by N bits.
    random_source : str
        ``"lfsr"`` (default: an internal :mod:`lowbit.hdl.lfsr` register advanced on every
        valid step at the accumulator stage, ports ``seed_in``/``reseed``) or ``"port"``
        (input ``rbits``, sampled with ``a``/``b``).
    lfsr_width, seed : int
        The LFSR's width (3..32, XAPP052 taps) and reset seed (1..2^width - 1).
    flush_subnormals : bool
        Subnormal operands/accumulator read as zero; subnormal results flushed after rounding.
    saturate : bool
        Overflow of finite operands gives +-max instead of +-Inf.
    terms : int
        Kulisch mode: number of products the fixed-point register sums exactly (sizes it).
    pipeline_stages : int
        fused / two_roundings 0..2: 1 registers the exact product before the accumulator
        adder, 2 also registers the operands.  kulisch 0..11: 0 is the one-cycle datapath
        (multiplier, product-code unpack and alignment, add, read-out in one path); 1..11
        use the pipelined datapath (:func:`kulisch_term_into`,
        :func:`kulisch_accumulate_into`, :func:`kulisch_read_pipelined_into`): the loop is
        only the ``kulisch_width``-bit add, and ``k`` stages place registers at the first
        ``k`` points of :data:`KULISCH_CUTS` (1: the aligned term; 2: also the result;
        3..11: the decode and read-out steps).  11 meets 150 MHz on ECP5 (nextpnr-ecp5,
        speed grade 6; ``benchmarks/ecp5_timing.py``).  The accumulator loop is always one
        cycle, so a term can be accepted every cycle.  ``latency = 1 + pipeline_stages``.

    Members
    -------
    a, b : In(bits)
        Operand codes.
    valid : In(1)
        Accumulate ``a*b`` this cycle.
    clear : In(1)
        Start a new sum: with ``valid`` the accumulator becomes ``-0 + a*b``; without it, the
        empty accumulator (``+0``).
    acc : Out(acc_format.bits)
        Accumulator (``acc_format`` code) after the input of ``latency`` cycles ago.
    acc_valid : Out(1)
        ``valid`` delayed by ``latency`` cycles.

    Raises
    ------
    ValueError
        A parameter out of range (message names it and the allowed values).
    """

    def __init__(self, a_format="e4m3", b_format="e4m3", acc_format="fp32", mode="fused",
                 flush_subnormals=False, saturate=False, terms=4096, pipeline_stages=0,
                 rounding="nearest_even", sr_bits=8, random_source="lfsr", lfsr_width=16,
                 seed=0xACE1):
        self._validate(a_format, b_format, acc_format, mode, flush_subnormals, saturate, terms)
        self._rounding = check_choice("rounding", rounding, model.FP_MAC_ROUNDINGS)
        if self._rounding == "stochastic" and self._mode == "kulisch":
            raise ValueError("rounding='stochastic' is for modes 'fused' and 'two_roundings', "
                             "not 'kulisch' (its register is exact)")
        self._sr = check_random_source(self._rounding == "stochastic", sr_bits,
                                       model.max_sr_bits(self._acc), random_source, lfsr_width,
                                       seed)
        self._stages = check_pipeline(pipeline_stages,
                                      len(KULISCH_CUTS) if self._mode == "kulisch" else 2)
        super().__init__({"a": In(self._a.bits), "b": In(self._b.bits), "valid": In(1),
                          "clear": In(1), "acc": Out(self._acc.bits), "acc_valid": Out(1),
                          **random_ports(self._sr)})

    rounding = property(lambda self: self._rounding)
    sr_bits = property(lambda self: self._sr.sr_bits)
    random_source = property(lambda self: self._sr.random_source)
    lfsr_width = property(lambda self: self._sr.lfsr_width)
    seed = property(lambda self: self._sr.seed)

    @property
    def latency(self):
        return 1 + self._stages

    @property
    def pipeline_stages(self):
        return self._stages

    @property
    def port_docs(self):
        L = self.latency
        return {
            "a": f"operand a, {self._a.name} code",
            "b": f"operand b, {self._b.name} code",
            "valid": "accumulate a*b this cycle",
            "clear": "start a new sum (with valid: acc = -0 + a*b; without: acc = +0)",
            "acc": f"accumulator, {self._acc.name} code, after the input of {L} cycle(s) earlier",
            "acc_valid": f"valid delayed by {L} cycle(s)",
            **sr_contract(self._sr)["ports"],
        }

    def contract(self):
        L = self.latency
        acc = self._acc
        zero = positive_zero(acc)
        c = {
            "operation": "acc <- acc + a*b",
            "a_format": self._a.name, "b_format": self._b.name, "acc_format": acc.name,
            "mode": self._mode,
            "product": "exact, product format "
                       f"e{self._pf.exp_bits}m{self._pf.man_bits} bias {self._pf.bias}",
            "rounding": {"fused": "RNE once per step after the exact add",
                         "two_roundings": "product RNE to acc format, then add and RNE",
                         "kulisch": "exact fixed-point sum, RNE once on read-out"}[self._mode],
            "overflow": "+-max (finite operands)" if self._sat else "+-Inf",
            "specials": "NaN operand, Inf*0, Inf-Inf -> canonical NaN (sticky until clear); "
                        "Inf operands -> Inf",
            "subnormals": "flushed (inputs read as zero, results flushed after rounding)"
                          if self._flush else "exact",
            "latency_cycles": L,
            "formats": {"a": describe_format(self._a), "b": describe_format(self._b),
                        "product": describe_format(self._pf), "acc": describe_format(acc)},
            "packing": {"a": lanes("a", 1, self._a.bits), "b": lanes("b", 1, self._b.bits),
                        "acc": lanes("acc", 1, acc.bits)},
            "timing": (f"per rising edge: valid -> acc <= (clear ? new sum : acc) + a*b; clear "
                       f"without valid -> acc <= {zero} (+0, the empty accumulator); else acc "
                       f"holds. The acc port shows the accumulator after the input of {L} "
                       f"cycle(s) earlier; acc_valid is valid delayed by {L}"),
            "reset": {
                "signal": "rst", "synchronous": True, "active": "high",
                "clears": ("every register to 0: the accumulator "
                           + ("(Kulisch register and flags)" if self._mode == "kulisch" else "")
                           + ", acc_valid and the pipeline registers; the inputs of the cycle "
                             "with rst high and the terms still in the pipeline are dropped"),
                "outputs_after_reset": {"acc": zero, "acc_valid": 0},
                "idle_inputs": {"valid": 0, "clear": 0},
                "accumulator_after_reset": f"+0 (code {zero}), the empty accumulator, as after "
                                           "clear without valid"},
            "golden_model": golden(
                "lowbit.models.mac.mac_stream",
                f"the acc codes after each input cycle (the acc port, {L} cycle(s) later); "
                "acc_valid = valid",
                kind="fp", a_format=fmt_ref("a"), b_format=fmt_ref("b"),
                acc_format=fmt_ref("acc"), mode=self._mode, flush_subnormals=self._flush,
                saturate=self._sat, terms=self._terms,
                **({"rounding": "stochastic", "sr_bits": self._sr.sr_bits}
                   if self._sr.enabled else {})),
        }
        if self._sr.enabled:
            c["rounding"] = ("stochastic: each rounding of the step adds the step's "
                             f"{self._sr.sr_bits} random bits below the {acc.name} LSB and "
                             "truncates" + (" (the product rounding and the sum rounding use "
                                            "the same draw)" if self._mode == "two_roundings"
                                            else ""))
            c["stochastic_rounding"] = sr_contract(self._sr)["contract"]
        c.update(mac_numerics(self._a, self._b, acc, self._mode, self._flush, self._sat,
                              self._terms, port="acc"))
        if self._mode == "kulisch":
            c["kulisch"].update(exact_terms=self._terms)
        return c

    def elaborate(self, platform):
        if self._mode == "kulisch" and self._stages >= 1:
            return self._elaborate_kulisch_pipelined()
        m = Module()
        a, b, v, c = self.a, self.b, self.valid, self.clear
        port = self._sr.enabled and self._sr.random_source == "port"
        rnd = self.rbits if port else None
        if self._stages >= 2:
            ra, rb, rv, rc = Signal.like(a), Signal.like(b), Signal(), Signal()
            m.d.sync += [ra.eq(a), rb.eq(b), rv.eq(v), rc.eq(c)]
            a, b, v, c = ra, rb, rv, rc
            if port:
                rr = Signal.like(rnd)
                m.d.sync += rr.eq(rnd)
                rnd = rr
        p = multiply_into(m, self._a, self._b, a, b, self._flush)
        if self._stages >= 1:
            rp, rv, rc = Signal.like(p), Signal(), Signal()
            m.d.sync += [rp.eq(p), rv.eq(v), rc.eq(c)]
            p, v, c = rp, rv, rc
            if port:
                rr = Signal.like(rnd)
                m.d.sync += rr.eq(rnd)
                rnd = rr
        if self._sr.enabled and not port:
            rnd = random_source_into(m, self._sr, v, self)
        vout = Signal()
        m.d.sync += vout.eq(v)
        if self._mode != "kulisch":
            acc = Signal(self._acc.bits)
            start = Mux(c, 1 << (self._acc.bits - 1), acc)
            new = accumulate_into(m, self._acc, self._pf, start, p, self._mode, self._flush,
                                  self._sat, random=rnd)
            with m.If(v):
                m.d.sync += acc.eq(new)
            with m.Elif(c):
                m.d.sync += acc.eq(0)
            m.d.comb += [self.acc.eq(acc), self.acc_valid.eq(vout)]
            return m
        w = self._kwidth
        fixed = Signal(signed(w))
        flags = Signal(4)
        f_start = Signal(signed(w))
        g_start = Signal(4)
        m.d.comb += [f_start.eq(Mux(c, 0, fixed)), g_start.eq(Mux(c, 1 << _NEGZ, flags))]
        nf, ng = kulisch_add_into(m, self._pf, w, self._klsb, f_start, g_start, p)
        with m.If(v):
            m.d.sync += [fixed.eq(nf), flags.eq(ng)]
        with m.Elif(c):
            m.d.sync += [fixed.eq(0), flags.eq(0)]
        out = kulisch_read_into(m, self._acc, w, self._klsb, fixed, flags, self._sat, self._flush)
        m.d.comb += [self.acc.eq(out), self.acc_valid.eq(vout)]
        return m

    def _elaborate_kulisch_pipelined(self):
        m = Module()
        w = self._kwidth
        cut = Cuts(m, KULISCH_CUTS[:self._stages], "kp")
        cut.carry = {"v": self.valid, "c": self.clear}
        t = kulisch_term_into(m, self._a, self._b, self.a, self.b, self._flush, w, cut)
        # an idle cycle's term is made a zero with no flags (x = 0, sign = 0, nan = inf =
        # zero = 0), so that a clear without a term leaves the empty state (fixed 0, flags 0)
        # through the same adder and the register needs only an enable (valid | clear)
        v = cut.carry["v"]
        x = Signal(w)
        m.d.comb += x.eq(Mux(v, t.pop("term") ^ Mux(t["sign"], (1 << w) - 1, 0), 0))
        t = cut("term", {**{k: t[k] & v for k in ("sign", "nan", "inf", "zero")}, "x": x})
        v, c = cut.carry["v"], cut.carry["c"]
        fixed = Signal(signed(w))
        flags = Signal(4)
        f_start = Signal(signed(w))
        g_start = Signal(4)
        m.d.comb += [f_start.eq(Mux(c, 0, fixed)), g_start.eq(Mux(c, 1 << _NEGZ, flags))]
        nf, ng = kulisch_accumulate_into(m, w, f_start, g_start, t)
        with m.If(v | c):
            m.d.sync += [fixed.eq(nf), flags.eq(ng)]
        vout = Signal()
        m.d.sync += vout.eq(v)
        cut.carry = {"v": vout}
        out = kulisch_read_pipelined_into(m, self._acc, w, self._klsb, fixed, flags, self._sat,
                                          self._flush, cut)
        assert cut.count == self._stages
        m.d.comb += [self.acc.eq(out), self.acc_valid.eq(cut.carry["v"])]
        return m


_FMT_HELP = "signed float format of at most 16 bits (e4m3, e5m2, e4m3fnuz, e2m1, eXmY...)"

UNITS = [
    Unit("fp-mac", FpMac, (
        Param("a_format", "--a", "format", "e4m3", "format of operand a: " + _FMT_HELP),
        Param("b_format", "--b", "format", "e4m3", "format of operand b: " + _FMT_HELP),
        Param("acc_format", "--acc", "format", "fp32", "accumulator format (fp32, fp16, bf16)"),
        Param("mode", "--mode", "choice", "fused", "rounding scheme",
              choices=model.FP_MAC_MODES),
        Param("flush_subnormals", "--flush-subnormals", "bool", False,
              "flush subnormal inputs and results to zero"),
        Param("saturate", "--saturate", "bool", False, "overflow to +-max instead of +-Inf"),
        Param("terms", "--terms", "int", 4096, "kulisch: products summed exactly (sizes the "
              "register), 1..2**32", when=("mode", ("kulisch",))),
        pipeline_param(f"2, kulisch 0..{len(KULISCH_CUTS)}", 1),
        Param("rounding", "--rounding", "choice", "nearest_even",
              "fused/two_roundings: RNE or stochastic rounding", choices=model.FP_MAC_ROUNDINGS),
        *sr_params(when=("rounding", ("stochastic",))),
    ), "FP multiply-accumulate: exact product into fp32/fp16/bf16, fused, two roundings or "
       "Kulisch"),
]
