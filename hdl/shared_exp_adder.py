"""``SharedExpAdder``: the n-term shared-exponent adder / fused dot-product unit in Amaranth.

The hardware twin of :func:`lowbit.models.shared_exp.shared_exp_add` (the module docstring
there defines the arithmetic; every knob here has the same name and meaning).  Structure:

1. unpack the 2n operand codes (:func:`lowbit.hdl.formats.unpack`, integers as
   sign-magnitude), multiply the significands exactly, add the exponents (plus an
   optional step scale exponent); with ``align="product"`` a leading-zero count per
   product gives its exact exponent;
2. max-exponent tree over the live terms (and the FP32 accumulator when
   ``acc_in_max=True``);
3. per term an alignment right shifter with guard and sticky bits and the chosen cut
   (toward zero / floor / nearest-even / nearest-even without sticky), then negation;
4. a two's-complement adder tree of ``sum_bits`` bits (computed from the model's bound
   when not given; a narrower width wraps exactly like the model);
5. leading-zero count, normalisation, rounding to ``norm_frac_bits`` (nearest-even or
   toward zero) with FP32's exponent range, packing to an FP32 code; NaN/Inf handling.

6. with ``acc_in_max=False`` the accumulator stays out of steps 2-5; a separate two-operand
   floating-point adder adds it to the rounded sum and rounds once more, the same way
   (:meth:`Datapath._fp_add`, the twin of the model's ``add_round``).

Promotion into an FP32 accumulator every P terms is a software
loop around the unit (the model's ``promote_every``), not part of it.
"""

import operator

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.models import formats as _formats
from lowbit.models import shared_exp as _se
from lowbit.models.checks import check_int

from .formats import unpack
from .manifest import construct, describe_format, fmt_ref, golden, lanes, positive_zero
from .unit import Param, Unit, pipeline_param

__all__ = ["SharedExpAdder", "AccumulatingDot", "Datapath", "UNITS", "adder_config", "adder_params",
           "pack_terms"]

NAN32 = 0x7FC00000
INF32 = 0x7F800000
EXP_SHAPE = signed(16)     # every exponent of these datapaths fits in 16 signed bits
NO_EXP = -(1 << 14)        # sentinel exponent of a term that takes no part in a maximum


def _lzc_bitlen(m, x, name):
    """Bit length of unsigned ``x`` (0 for 0), as a priority encoder."""
    w = len(x)
    L = Signal(range(w + 1), name=name)
    expr = Const(0, range(w + 1))
    for i in range(w):
        expr = Mux(x[i], i + 1, expr)
    m.d.comb += L.eq(expr)
    return L


def _validate_format(name, fmt):
    fmt = _formats.get(fmt) if isinstance(fmt, str) else fmt
    if not isinstance(fmt, (_formats.FloatFormat, _formats.IntFormat)):
        raise TypeError(f"{name} must be a format, not {fmt!r}")
    if fmt.bits > 16:
        raise ValueError(f"{name} must have at most 16 bits, not {fmt.bits} ({fmt.name})")
    if isinstance(fmt, _formats.FloatFormat) and not fmt.signed:
        raise ValueError(f"{name} must be a signed format, not {fmt.name}")
    return fmt


def balanced_tree(m, values, shape, name, combine, *, final=None, named=True, cut=None):
    """Reduce ``values`` with ``combine(x, y)`` in a balanced tree of ``shape`` signals (nodes
    ``<name><level>_<j>``; an odd one out moves up a level unchanged).  Returns the root as
    the signal ``name`` = ``final(root)`` (default: the root itself), or with ``named=False``
    the root node as it is.  ``cut(level) -> level`` (optional) is applied after half of the
    levels (a pipeline register cut)."""
    level = list(values)
    levels = max(1, (len(level) - 1).bit_length())
    k = 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            x = Signal(shape, name=f"{name}{k}_{j}")
            m.d.comb += x.eq(combine(level[j], level[j + 1]))
            nxt.append(x)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        k += 1
        if cut is not None and k == levels // 2:
            level = cut(level)
    if not named:
        return level[0]
    out = Signal(shape, name=name)
    m.d.comb += out.eq(level[0] if final is None else final(level[0]))
    return out


def max_tree(m, values, name, final=None):
    """The maximum of the signed exponents ``values`` (compare-and-select nodes), as the
    ``EXP_SHAPE`` signal ``name`` = ``final(max)`` (default: the maximum itself)."""
    return balanced_tree(m, values, EXP_SHAPE, name, lambda x, y: Mux(x > y, x, y), final=final)


class Datapath:
    """Builds the combinational shared-exponent adder inside a module (used by the units).

    ``config`` is a :class:`~lowbit.models.shared_exp.SharedExpConfig` (``promote_every``
    is ignored).  Call :meth:`terms` then :meth:`reduce`.
    """

    def __init__(self, config, a_format, b_format, int_frac_bits=(0, 0)):
        self.cfg = config
        self.a_fmt = a_format
        self.b_fmt = b_format
        self.ifb = int_frac_bits
        self.t_bound = config.term_bound(a_format, b_format)
        self.sum_bits = config.sum_bits if config.sum_bits is not None else \
            config.needed_sum_bits(a_format, b_format)
        self.full_bits = config.needed_sum_bits(a_format, b_format)

    # -- operands ------------------------------------------------------------------------
    def _operand(self, m, fmt, code, frac, name):
        """sign, sig, e (signed), M, zero, nan, inf of one operand code."""
        if isinstance(fmt, _formats.IntFormat):
            v = code.as_signed()
            sign = Signal(name=f"{name}_s")
            sig = Signal(fmt.bits, name=f"{name}_sig")
            m.d.comb += [sign.eq(v < 0), sig.eq(Mux(v < 0, -v, v))]
            zero = Signal(name=f"{name}_z")
            m.d.comb += zero.eq(v == 0)
            e = Const(fmt.bits - 2 - frac, EXP_SHAPE)
            # value = |v| * 2^-frac = sig * 2^(e - M) with e = bits-2-frac, M = bits-2
            return sign, sig, e, fmt.bits - 2, zero, Const(0), Const(0)
        u = unpack(m, fmt, code, name=name)
        return u.sign, u.sig, u.exp, fmt.man_bits, u.is_zero, u.is_nan, u.is_inf

    def terms(self, m, a_codes, b_codes, scale=None, scale_nan=None):
        """Per-term signals: list of dicts (sign, sig, lsb_minus_align, E, live, nan, inf)."""
        out = []
        for i, ac in enumerate(a_codes):
            sa, ga, ea, Ma, za, na, ia = self._operand(m, self.a_fmt, ac, self.ifb[0], f"a{i}")
            if self.b_fmt is not None:
                sb, gb, eb, Mb, zb, nb, ib = self._operand(m, self.b_fmt, b_codes[i],
                                                          self.ifb[1], f"b{i}")
                sign = sa ^ sb
                sig = Signal(len(ga) + len(gb), name=f"p{i}")
                m.d.comb += sig.eq(ga * gb)
                nan = Signal(name=f"nan{i}")
                m.d.comb += nan.eq(na | nb | (ia & zb) | (ib & za))
                inf = Signal(name=f"inf{i}")
                m.d.comb += inf.eq((ia | ib) & ~nan)
                zero = Signal(name=f"zero{i}")
                m.d.comb += zero.eq((za | zb) & ~nan & ~inf)
                esum = Signal(EXP_SHAPE, name=f"esum{i}")
                m.d.comb += esum.eq(ea + eb)
                Msum = Ma + Mb
            else:
                sign, sig, nan, inf, zero = sa, ga, na, ia, za
                esum = Signal(EXP_SHAPE, name=f"esum{i}")
                m.d.comb += esum.eq(ea)
                Msum = Ma
            if scale is not None:
                es = Signal(EXP_SHAPE, name=f"es{i}")
                m.d.comb += es.eq(esum + scale)
                esum = es
            if scale_nan is not None:
                nan2 = Signal(name=f"nans{i}")
                m.d.comb += nan2.eq(nan | scale_nan)
                nan = nan2
            # value = sig * 2^(esum - Msum); E_i and c_i = E_i - lsb_i
            if self.cfg.align == "operand_sum":
                E = esum
                c = Const(Msum, EXP_SHAPE)
            else:
                L = _lzc_bitlen(m, sig, f"plen{i}")
                E = Signal(EXP_SHAPE, name=f"E{i}")
                m.d.comb += E.eq(esum - Msum + L - 1)
                c = Signal(EXP_SHAPE, name=f"c{i}")
                m.d.comb += c.eq(L - 1)
            live = Signal(name=f"live{i}")
            m.d.comb += live.eq(~zero & ~nan & ~inf)
            out.append(dict(sign=sign, sig=sig, E=E, c=c, c_min=(Msum if self.cfg.align ==
                                                                   "operand_sum" else 0),
                            live=live, nan=nan, inf=inf))
        return out

    def acc_term(self, m, acc_code):
        """The accumulator as one more term: a code of ``config.acc_format`` (FP32 or FP16)."""
        fmt = _formats.get(self.cfg.acc_format)
        u = unpack(m, fmt, acc_code, name="acc")
        live = Signal(name="acc_live")
        m.d.comb += live.eq(~u.is_zero & ~u.is_nan & ~u.is_inf)
        E = Signal(EXP_SHAPE, name="acc_E")
        m.d.comb += E.eq(u.exp)
        return dict(sign=u.sign, sig=u.sig, E=E, c=Const(fmt.man_bits, EXP_SHAPE),
                    c_min=fmt.man_bits, live=live, nan=u.is_nan, inf=u.is_inf)

    # -- the adder -----------------------------------------------------------------------
    def _align(self, m, t, Emax, i, frac_bits=None, cut=None, width=None):
        """Term ``t`` cut to the grid ``2^(Emax - frac_bits)`` as a signed ``width``-bit value
        (defaults: the config's ``frac_bits`` and ``cut``, :attr:`sum_bits`)."""
        F = self.cfg.frac_bits if frac_bits is None else frac_bits
        pad = max(0, F - t["c_min"])
        X = Cat(Const(0, pad), t["sig"]) if pad else t["sig"]
        Wx = len(X)
        # right shift s = (Emax - E) + c - F + pad >= 0
        s_full = Signal(EXP_SHAPE, name=f"sh{i}")
        m.d.comb += s_full.eq(Emax - t["E"] + t["c"] - F + pad)
        s = Signal(range(Wx + 2), name=f"shc{i}")
        m.d.comb += s.eq(Mux(s_full > Wx + 1, Wx + 1, s_full))
        Y = Signal(2 * Wx + 1, name=f"y{i}")
        m.d.comb += Y.eq(Cat(Const(0, Wx + 1), X) >> s)
        q = Y[Wx + 1:]
        rnd = Y[Wx]
        sticky = Y[:Wx].any()
        cut = self.cfg.cut if cut is None else cut
        if cut == "toward_zero":
            up = Const(0)
        elif cut == "floor":
            up = t["sign"] & (rnd | sticky)
        elif cut == "nearest_even":
            up = rnd & (sticky | q[0])
        else:
            up = rnd & q[0]
        W = self.sum_bits if width is None else width
        mag = Signal(max(len(q) + 1, 1), name=f"mag{i}")
        m.d.comb += mag.eq(q + up)
        v = Signal(signed(W), name=f"v{i}")
        m.d.comb += v.eq(Mux(t["live"], Mux(t["sign"], -mag, mag), 0))
        return v

    def reduce(self, m, terms, stage=None, acc_code=None):
        """Emax tree, align, add, normalise/round/pack.  Returns the FP32 code signal.

        ``stage(list_of_signals) -> list`` may insert pipeline registers between the
        alignment and the adder tree and between the adder tree and normalisation.
        ``acc_code`` (FP32 code; only with ``acc_in_max=False``, when the accumulator is not
        one of ``terms``) is added to the rounded sum by a separate rounding adder.
        """
        cfg = self.cfg
        F = cfg.frac_bits
        # max exponent tree
        Emax = max_tree(m, [Mux(t["live"], t["E"], NO_EXP) for t in terms], "emax",
                        final=lambda e: Mux(e == NO_EXP, 0, e))
        vals = [self._align(m, t, Emax, i) for i, t in enumerate(terms)]
        nan = Signal(name="any_nan")
        pinf = Signal(name="any_pinf")
        ninf = Signal(name="any_ninf")
        m.d.comb += [
            pinf.eq(Cat(*[t["inf"] & ~t["sign"] for t in terms]).any()),
            ninf.eq(Cat(*[t["inf"] & t["sign"] for t in terms]).any()),
        ]
        m.d.comb += nan.eq(Cat(*[t["nan"] for t in terms]).any() | (pinf & ninf))
        extra = [] if acc_code is None else [acc_code]
        if stage is not None:
            regs = stage(vals + [Emax, nan, pinf, ninf] + extra, "align")
            vals, (Emax, nan, pinf, ninf), extra = \
                regs[:len(vals)], regs[len(vals):len(vals) + 4], regs[len(vals) + 4:]
        # adder tree (wraps modulo 2^W)
        S = balanced_tree(m, vals, signed(self.sum_bits), "sum", operator.add, named=False)
        if stage is not None:
            S, Emax, nan, pinf, ninf, *extra = stage([S, Emax, nan, pinf, ninf] + extra, "sum")
        mcode, zero = self._round_pack(m, S, Emax - F, "n")
        if not extra:
            fin = Signal(32, name="result_fin")
            m.d.comb += fin.eq(Mux(zero, 0, mcode))
        else:
            # acc_in_max=False: the rounded term sum s, then a separate adder acc + s
            # rounded once more (model: add_round); an s that overflowed to Inf stays.
            s = Signal(32, name="tsum")
            m.d.comb += s.eq(Mux(zero, 0, mcode))
            acc = unpack(m, _formats.fp32, extra[0], name="sacc")
            r = self._fp_add(m, extra[0], s)
            fin = Signal(32, name="result_fin")
            m.d.comb += fin.eq(Mux(s[23:31] == 0xFF, s, r))
            pinf2, ninf2, nan2 = Signal(name="all_pinf"), Signal(name="all_ninf"), \
                Signal(name="all_nan")
            m.d.comb += [
                pinf2.eq(pinf | (acc.is_inf & ~acc.sign)),
                ninf2.eq(ninf | (acc.is_inf & acc.sign)),
            ]
            m.d.comb += nan2.eq(nan | acc.is_nan | (pinf2 & ninf2))
            nan, pinf, ninf = nan2, pinf2, ninf2
        o = Signal(32, name="result")
        m.d.comb += o.eq(Mux(nan, NAN32,
                         Mux(pinf, INF32,
                         Mux(ninf, INF32 | (1 << 31), fin))))
        return o

    def _round_pack(self, m, S, g, p, frac_bits=None, rounding=None):
        """Round the two's-complement ``S * 2^g`` to ``frac_bits`` fraction bits (default
        ``norm_frac_bits``) with ``rounding`` (default ``norm_rounding``) in the exponent range
        of ``acc_format`` (FP32 or FP16; model: ``round_fixed``); returns (code of
        ``acc_format``, S == 0)."""
        cfg = self.cfg
        nf = cfg.norm_frac_bits if frac_bits is None else frac_bits
        rounding = cfg.norm_rounding if rounding is None else rounding
        fmt = _formats.get(cfg.acc_format)
        emin, man, top = fmt.emin, fmt.man_bits, (1 << fmt.exp_bits) - 1
        W = len(S)
        neg = S[W - 1]
        mag = Signal(W, name=f"{p}mag")
        m.d.comb += mag.eq(Mux(neg, -S, S))
        L = _lzc_bitlen(m, mag, f"{p}len")
        lz = Signal(range(W + 1), name=f"{p}lz")
        m.d.comb += lz.eq(W - L)
        mn = Signal(W, name=f"{p}norm")
        m.d.comb += mn.eq(mag << lz)
        Er = Signal(EXP_SHAPE, name=f"{p}Er")
        m.d.comb += Er.eq(g + L - 1)
        P = nf + 1
        den_full = Signal(EXP_SHAPE, name=f"{p}den_full")
        m.d.comb += den_full.eq(emin - Er)
        den = Signal(range(P + 3), name=f"{p}den")
        m.d.comb += den.eq(Mux(den_full < 0, 0, Mux(den_full > P + 2, P + 2, den_full)))
        pad = max(0, P + 1 - W)           # make the word at least P + 1 bits
        Z = Cat(Const(0, P + 3 + pad), mn)
        Wz = len(Z)
        Y = Signal(Wz, name=f"{p}den_y")
        m.d.comb += Y.eq(Z >> den)
        kept = Y[Wz - P:]
        rnd = Y[Wz - P - 1]
        sticky = Y[:Wz - P - 1].any()
        if rounding == "nearest_even":
            up = rnd & (sticky | kept[0])
        else:
            up = Const(0)
        k2 = Signal(P + 1, name=f"{p}k2")
        m.d.comb += k2.eq(kept + up)
        e_eff = Signal(EXP_SHAPE, name=f"{p}eff")
        m.d.comb += e_eff.eq(Mux(Er < emin, emin, Er))
        full = Signal(signed(48), name=f"{p}pack")
        m.d.comb += full.eq(((e_eff + -emin) << man) + (k2 << (man - nf)))
        maxfin = ((top - 1) << man) | (((1 << nf) - 1) << (man - nf))
        over = full >= (top << man)
        magcode = Signal(fmt.bits - 1, name=f"{p}magcode")
        if rounding == "nearest_even":
            m.d.comb += magcode.eq(Mux(over, top << man, full[:fmt.bits - 1]))
        else:
            m.d.comb += magcode.eq(Mux(over, maxfin, full[:fmt.bits - 1]))
        code = Signal(fmt.bits, name=f"{p}code")
        m.d.comb += code.eq(Cat(magcode, neg))
        return code, mag == 0

    def _fp_add(self, m, x_code, y_code):
        """``x + y`` of two finite FP32 codes, rounded once like the model's ``add_round``.

        The operand with the larger exponent field keeps its 24-bit significand plus two
        guard bits and a sticky position; the other is shifted right by the exponent
        difference (at most 28) with the bits shifted out ORed into the sticky position.
        With a shift of at most 2 nothing is lost (the sum is exact); with a larger shift
        the result has at least the larger operand's exponent minus 1, so its rounding unit
        is at least twice the kept unit, and the jammed sum lies in the same open interval
        between two kept-unit points as the exact sum: both round alike (nearest-even and
        toward zero), so the result equals the exactly rounded sum.
        """
        ux = unpack(m, _formats.fp32, x_code, name="fx")
        uy = unpack(m, _formats.fp32, y_code, name="fy")
        swap = Signal(name="fa_swap")
        m.d.comb += swap.eq(uy.exp > ux.exp)
        eL, eS = Signal(EXP_SHAPE, name="fa_eL"), Signal(EXP_SHAPE, name="fa_eS")
        sL, sS = Signal(24, name="fa_sigL"), Signal(24, name="fa_sigS")
        nL, nS = Signal(name="fa_negL"), Signal(name="fa_negS")
        m.d.comb += [
            eL.eq(Mux(swap, uy.exp, ux.exp)), eS.eq(Mux(swap, ux.exp, uy.exp)),
            sL.eq(Mux(swap, uy.sig, ux.sig)), sS.eq(Mux(swap, ux.sig, uy.sig)),
            nL.eq(Mux(swap, uy.sign, ux.sign)), nS.eq(Mux(swap, ux.sign, uy.sign)),
        ]
        d = Signal(range(29), name="fa_d")
        diff = Signal(EXP_SHAPE, name="fa_diff")
        m.d.comb += [diff.eq(eL - eS), d.eq(Mux(diff > 28, 28, diff))]
        Z = Signal(54, name="fa_z")
        m.d.comb += Z.eq(Cat(Const(0, 30), sS) >> d)
        xs = Signal(27, name="fa_xs")
        m.d.comb += xs.eq(Cat(Z[:28].any(), Z[28:]))
        xl = Signal(27, name="fa_xl")
        m.d.comb += xl.eq(sL << 3)
        S = Signal(signed(29), name="fa_sum")
        m.d.comb += S.eq(Mux(nL, -xl, xl) + Mux(nS, -xs, xs))
        code, zero = self._round_pack(m, S, eL - 26, "fa_")
        r = Signal(32, name="fa_result")
        m.d.comb += r.eq(Mux(zero, 0, code))
        return r


    # Public names of the pieces, for the units that build their own reduction on them
    # (lowbit.hdl.tensor_core_dot).
    align_term = _align
    round_pack = _round_pack
    fp_add = _fp_add


#: Bit length of an unsigned value as a priority encoder (public name of the helper).
bit_length = _lzc_bitlen


def adder_numerics(cfg, port, nan, nan_when):
    """The contract entries of a shared-exponent adder's result (:class:`SharedExpAdder`,
    :class:`AccumulatingDot`): NaN codes on ``port``, overflow, result grid, zero sign."""
    f32 = _formats.fp32
    nf = cfg.norm_frac_bits
    neg0 = 1 << (f32.bits - 1)
    maxfin = float(np.ldexp(2.0 - 2.0 ** -nf, f32.emax))
    return {
        "nan_outputs": {port: [f32.nan_code] if nan else []},
        "nan_when": nan_when,
        "overflow_rule": ("a finite sum beyond the grid's max rounds to +-Inf "
                          f"({f32.inf_code:#010x} / {f32.inf_code | neg0:#010x})"
                          if cfg.norm_rounding == "nearest_even" else
                          f"a finite sum beyond the grid's max gives +-{maxfin!r}"),
        "result_grid": (f"{nf} fraction bits in FP32's exponent range (gradual underflow on "
                        f"the grid 2^{f32.emin - nf}): the low {f32.man_bits - nf} mantissa "
                        "bits of every result code are 0"),
        "zero_sign": {
            "exact_zero": (f"+0 ({positive_zero(f32)}) whenever the sum being rounded is "
                           "exactly 0: cancellation, zero or -0 terms and accumulator, terms "
                           "cut to 0 on the alignment grid"),
            "underflow": f"a non-zero sum that rounds to zero keeps its sign (-0 = {neg0:#010x})",
        },
    }


def adder_config(n, align, frac_bits, cut, sum_bits, norm_frac_bits, norm_rounding, acc_in_max=True):
    """The :class:`~lowbit.models.shared_exp.SharedExpConfig` of the catalogue's knobs
    (``sum_bits`` 0 or None: the computed width that never wraps)."""
    return _se.SharedExpConfig(n=n, align=align, acc_in_max=acc_in_max, frac_bits=frac_bits,
                               cut=cut,
                               sum_bits=None if sum_bits in (None, 0) else sum_bits,
                               norm_frac_bits=norm_frac_bits, norm_rounding=norm_rounding)


def _registers(m, latency_cuts):
    """A ``stage`` callback registering signals at the named cuts."""
    def stage(sigs, where):
        if where not in latency_cuts:
            return sigs
        out = []
        for j, s in enumerate(sigs):
            r = Signal.like(s, name=f"r_{where}_{j}") if isinstance(s, Signal) else \
                Signal(s.shape(), name=f"r_{where}_{j}")
            m.d.sync += r.eq(s)
            out.append(r)
        return out
    return stage


_CUTS_ORDER = ("input", "align", "sum")


class _AdderParams:
    """The public parameters of the units built on :class:`Datapath`."""

    @property
    def config(self):
        """The :class:`~lowbit.models.shared_exp.SharedExpConfig` of the adder."""
        return self._cfg

    a_format = property(lambda self: self._a_fmt)
    #: ``None`` when the terms are the ``a`` values themselves (SharedExpAdder only).
    b_format = property(lambda self: self._b_fmt)
    #: Fraction bits of integer operands (the model's ``int_frac_bits``; ``(a, b)`` for the
    #: block units).
    int_frac_bits = property(lambda self: self._ifb)
    pipeline_stages = property(lambda self: self._stages)


class SharedExpAdder(_AdderParams, wiring.Component):
    """n-term shared-exponent adder: ``o = acc + sum_i a_i * b_i`` (see the module docstring).

    Parameters
    ----------
    a_format, b_format : Format
        Operand formats (at most 16 bits; floats signed). ``b_format=None``: the terms are
        the ``a`` values themselves (no ``b`` port).
    n : int
        Number of terms, 1..64.
    align, frac_bits, cut, sum_bits, norm_frac_bits, norm_rounding :
        As in :class:`lowbit.models.shared_exp.SharedExpConfig` (``sum_bits`` 0 or None:
        the computed width that cannot overflow).
    int_frac_bits : int
        Fraction bits of integer operands (6 for MXINT8 elements).
    pipeline_stages : int
        0..3 registers, placed in this order: on the inputs, after alignment, after the
        adder tree.  ``latency == pipeline_stages``.
    acc_in_max : bool
        True: the accumulator is one more term of the adder (in the maximum exponent).
        False: it is added to the rounded sum by a separate rounding adder.

    Members
    -------
    a : In(n * a_bits)
        Term i's a code in bits [i*a_bits, (i+1)*a_bits).
    b : In(n * b_bits)
        Term i's b code (absent when ``b_format`` is None).
    acc : In(32)
        FP32 code of the running accumulator (see ``acc_in_max``).
    o : Out(32)
        FP32 code of the result: rounded to ``norm_frac_bits`` fraction bits; NaN =
        0x7FC00000; zero results are +0.

    Raises
    ------
    ValueError
        A parameter out of range (messages as in the model's config).
    """

    def __init__(self, a_format="e4m3", b_format="e4m3", n=32, align="operand_sum",
                 frac_bits=24, cut="toward_zero", sum_bits=None, norm_frac_bits=23,
                 norm_rounding="nearest_even", int_frac_bits=0, pipeline_stages=1,
                 acc_in_max=True):
        a_fmt = _validate_format("a_format", a_format)
        b_fmt = _validate_format("b_format", b_format) if b_format is not None else None
        check_int("n", n, 1, 64)
        check_int("pipeline_stages", pipeline_stages, 0, 3)
        check_int("frac_bits", frac_bits, 0, 64)
        self._cfg = adder_config(n, align, frac_bits, cut, sum_bits, norm_frac_bits, norm_rounding,
                                 acc_in_max)
        check_adder_knobs(frac_bits, sum_bits, a_fmt, b_fmt, self._cfg)
        self._a_fmt, self._b_fmt = a_fmt, b_fmt
        self._ifb = int(int_frac_bits)
        self._stages = pipeline_stages
        ports = {"a": In(n * a_fmt.bits)}
        if b_fmt is not None:
            ports["b"] = In(n * b_fmt.bits)
        ports["acc"] = In(32)
        ports["o"] = Out(32)
        super().__init__(ports)
        self.port_docs = {
            "a": f"{n} {a_fmt.name} codes, term i in bits [i*{a_fmt.bits}, (i+1)*{a_fmt.bits})",
            "acc": "FP32 code of the running accumulator, " + (
                "aligned with the terms" if self._cfg.acc_in_max else
                "added to the rounded sum by a separate rounding adder"),
            "o": f"FP32 code of acc + sum of the terms ({self._cfg.norm_frac_bits} fraction "
                 f"bits, {self._cfg.norm_rounding}); NaN {_formats.fp32.nan_code:#010x}",
        }
        if b_fmt is not None:
            self.port_docs["b"] = (f"{n} {b_fmt.name} codes, term i in bits "
                                   f"[i*{b_fmt.bits}, (i+1)*{b_fmt.bits})")

    @property
    def latency(self):
        return self._stages

    @property
    def is_sequential(self):
        return self._stages > 0

    def contract(self):
        cfg, fa, fb = self._cfg, self._a_fmt, self._b_fmt
        dp = Datapath(cfg, fa, fb, (self._ifb, self._ifb))
        f32 = _formats.fp32
        n = cfg.n
        c = {
            "function": "o = acc + sum_i a_i * b_i (shared-exponent adder)" if fb
                        else "o = acc + sum_i a_i",
            "model": "lowbit.models.shared_exp.shared_exp_add",
            "config": cfg.describe(),
            "sum_bits": dp.sum_bits,
            "nan": f"NaN operand, Inf*0 or +Inf+-Inf -> {f32.nan_code:#010x}",
            "overflow": "Inf (nearest_even) or max (toward_zero)",
            "zero": "+0",
            "latency_cycles": self._stages,
            "formats": {"a": describe_format(fa), **({"b": describe_format(fb)} if fb else {}),
                        "acc": describe_format(f32), "result": describe_format(f32)},
            "packing": {"a": lanes("a", n, fa.bits, isinstance(fa, _formats.IntFormat)),
                        **({"b": lanes("b", n, fb.bits, isinstance(fb, _formats.IntFormat))}
                           if fb else {}),
                        "acc": lanes("acc", 1, 32), "o": lanes("result", 1, 32)},
            "int_frac_bits": self._ifb,
            "timing": (f"o is the result for the inputs of {self._stages} cycle(s) earlier"
                       if self._stages else "combinational: o follows the inputs"),
            "reset": ({"signal": "rst", "synchronous": True, "active": "high",
                       "clears": f"the {self._stages} pipeline register stage(s) "
                                 f"({', '.join(_CUTS_ORDER[:self._stages])}) to 0",
                       "outputs_after_reset": {"o": positive_zero(f32)},
                       "idle_inputs": {"a": 0, **({"b": 0} if fb else {}), "acc": 0}}
                      if self._stages else None),
            "golden_model": golden(
                "lowbit.models.shared_exp.shared_exp_add",
                "float32 values: o carries their FP32 codes (NaN: nan_outputs), the a/b terms "
                "as (V, n) codes, acc as the float32 values of the acc codes",
                a_format=fmt_ref("a"), b_format=fmt_ref("b") if fb else None,
                config=construct("lowbit.models.shared_exp.SharedExpConfig", **cfg.describe()),
                int_frac_bits=self._ifb),
        }
        c.update(adder_numerics(cfg, "o", True, "a NaN operand or acc, Inf * 0, or Inf terms "
                                                "(or acc) of both signs"))
        return c

    def elaborate(self, platform):
        m = Module()
        n = self._cfg.n
        cuts = _CUTS_ORDER[:self._stages]
        stage = _registers(m, cuts)
        a, b, acc = self.a, getattr(self, "b", None), self.acc
        if "input" in cuts:
            regs = stage([a, acc] + ([b] if b is not None else []), "input")
            a, acc = regs[0], regs[1]
            if b is not None:
                b = regs[2]
        wa = self._a_fmt.bits
        a_codes = [a[i * wa:(i + 1) * wa] for i in range(n)]
        b_codes = None
        if b is not None:
            wb = self._b_fmt.bits
            b_codes = [b[i * wb:(i + 1) * wb] for i in range(n)]
        dp = Datapath(self._cfg, self._a_fmt, self._b_fmt, (self._ifb, self._ifb))
        terms = dp.terms(m, a_codes, b_codes)
        if self._cfg.acc_in_max:
            terms.append(dp.acc_term(m, acc))
            o = dp.reduce(m, terms, stage)
        else:
            o = dp.reduce(m, terms, stage, acc_code=acc)
        m.d.comb += self.o.eq(o)
        return m


_FMT_CHOICES = ("e4m3", "e5m2", "e2m3", "e3m2", "e2m1", "int8", "fp16", "bf16")


def adder_params(frac_bits, frac_help, align=True,
                 pipeline=pipeline_param(1, 1, 1, "input registers before the one-cycle "
                                         "accumulator")):
    """The catalog parameters of the shared-exponent adder knobs, shared by the units built
    on :class:`Datapath` (``frac_bits``: the unit's default)."""
    return ((Param("align", "--align", "choice", "operand_sum", "exponent each term aligns by",
                   _se.ALIGNS),) if align else ()) + (
        Param("frac_bits", "--frac-bits", "int", frac_bits, frac_help),
        Param("cut", "--cut", "choice", "toward_zero", "how a term is cut to the grid", _se.CUTS),
        Param("sum_bits", "--sum-bits", "int", 0, "integer sum width (0: computed, never wraps; "
              "else frac_bits + 2 .. 1024, two's complement, wraps below the computed width)"),
        Param("norm_frac_bits", "--norm-frac-bits", "int", 23,
              "fraction bits of the normalised result, 1..23 (13 = FP22)"),
        Param("norm_rounding", "--norm-rounding", "choice", "nearest_even",
              "rounding of the normalised result", _se.NORM_ROUNDINGS),
        Param("acc_in_max", "--acc-in-max", "bool", True,
              "accumulator in the max exponent (false: separate rounding adder)"),
        pipeline,
    )


#: The knobs of :class:`~lowbit.models.shared_exp.SharedExpConfig` that a unit's parameters set.
_PRESET_KNOBS = ("align", "frac_bits", "cut", "sum_bits", "norm_frac_bits", "norm_rounding",
                 "acc_in_max")


def adder_presets(n_param, align=True):
    """``{preset name: {parameter: value}}`` of the datapath presets of
    :data:`lowbit.models.shared_exp.PRESETS` (the names ``shared_exp.gemm(datapath=...)``,
    ``mx_dot`` and ``lowbit compare`` take), for a
    unit whose block length parameter is ``n_param`` (``"n"`` or ``"k"``)."""
    out = {}
    for name, cfg in _se.PRESETS.items():
        d = {n_param: cfg.n}
        for knob in _PRESET_KNOBS:
            if knob == "align" and not align:
                continue
            v = getattr(cfg, knob)
            d[knob] = 0 if (knob == "sum_bits" and v is None) else v
        out[name] = d
    return out


def preset_param():
    """The ``--preset`` parameter of the shared-exponent units."""
    return Param("preset", "--preset", "choice", "", "a datapath preset of "
                 "lowbit.models.shared_exp.PRESETS, as gemm(datapath=...) names it (sets --k "
                 "and the adder knobs; --pipeline stays yours): " + ", ".join(_se.PRESETS),
                 ("",) + tuple(_se.PRESETS))


def check_adder_knobs(frac_bits, sum_bits, a_format, b_format, cfg):
    """Hardware ranges of the adder knobs: ``frac_bits`` 0..64; ``sum_bits`` (if given) from
    ``frac_bits + 2`` (the narrowest two's-complement register that holds +-1.0 on the grid) to
    1024 (the model's limit). A register narrower than
    :meth:`~lowbit.models.shared_exp.SharedExpConfig.needed_sum_bits` wraps as two's complement,
    in the model and the hardware alike (the DFP strategy's INT32 register for INT16 blocks is
    one such width); a wider one never wraps."""
    check_int("frac_bits", frac_bits, 0, 64)
    if sum_bits not in (None, 0):
        lo = cfg.frac_bits + 2
        need = cfg.needed_sum_bits(a_format, b_format)
        if not isinstance(sum_bits, bool) and isinstance(sum_bits, int) \
                and not lo <= sum_bits <= 1024:
            raise ValueError(f"sum_bits must be 0 (the computed width, {need}) or an integer "
                             f"from {lo} (frac_bits + 2: +-1.0 on the grid) to 1024, not "
                             f"{sum_bits!r}")


UNITS = [
    Unit("shared-exp-adder", SharedExpAdder, (
        Param("a_format", "--a", "format", "e4m3", "format of the a operands", _FMT_CHOICES),
        Param("b_format", "--b", "format", "e4m3", "format of the b operands", _FMT_CHOICES),
        Param("n", "--k", "int", 32, "terms per step, the block length (1..64)"),
        preset_param(),
    ) + adder_params(24, "fraction bits kept below the max exponent (0..64)",
                     pipeline=pipeline_param(3, 0, 1, "registers at the input, after the "
                                             "alignment, after the adder tree")),
        "k-term shared-exponent adder / fused dot product with an FP32 accumulator input",
        presets=adder_presets("n")),
]


class AccumulatingDot(_AdderParams, wiring.Component):
    """Base of :class:`~lowbit.hdl.mx_dot.MxDotUnit` and :class:`~lowbit.hdl.bfp_adder.BfpAdder`:
    a shared-exponent adder over one block per cycle whose FP32 accumulator is a register.

    On a cycle with ``valid`` the block (after ``pipeline_stages`` input registers) is
    added: ``acc <= adder(block, first ? +0 : acc)``; otherwise ``acc`` holds.  ``o`` is the
    accumulator register, so ``latency = pipeline_stages + 1``.  The accumulator loop
    (max with the accumulator's exponent, alignment, adder tree, normalisation) is one
    cycle: a design choice that keeps one block per cycle with the accumulator inside the
    maximum.  Subclasses provide ``_scale_ports``, ``_scale(m, regs)`` and the formats.
    """

    def _setup(self, a_fmt, b_fmt, n, cfg, ifb, pipeline_stages, scale_ports):
        check_int("pipeline_stages", pipeline_stages, 0, 1)
        self._a_fmt, self._b_fmt, self._cfg, self._ifb = a_fmt, b_fmt, cfg, ifb
        self._stages = pipeline_stages
        ports = {"a": In(n * a_fmt.bits), "b": In(n * b_fmt.bits)}
        ports.update(scale_ports)
        ports.update({"valid": In(1), "first": In(1), "o": Out(32)})
        wiring.Component.__init__(self, ports)

    @property
    def latency(self):
        return self._stages + 1

    is_sequential = True

    def elaborate(self, platform):
        m = Module()
        n = self._cfg.n
        names = [name for name, _ in self.signature.members.items()
                 if name not in ("o",)]
        sig = {name: getattr(self, name) for name in names}
        if self._stages:
            for name in names:
                r = Signal.like(sig[name], name=f"r_{name}")
                m.d.sync += r.eq(sig[name])
                sig[name] = r
        wa, wb = self._a_fmt.bits, self._b_fmt.bits
        a_codes = [sig["a"][i * wa:(i + 1) * wa] for i in range(n)]
        b_codes = [sig["b"][i * wb:(i + 1) * wb] for i in range(n)]
        scale, scale_nan = self._scale(m, sig)
        dp = Datapath(self._cfg, self._a_fmt, self._b_fmt, self._ifb)
        terms = dp.terms(m, a_codes, b_codes, scale=scale, scale_nan=scale_nan)
        acc = Signal(32, name="acc")
        acc_in = Signal(32, name="acc_in")
        m.d.comb += acc_in.eq(Mux(sig["first"], 0, acc))
        if self._cfg.acc_in_max:
            terms.append(dp.acc_term(m, acc_in))
            res = dp.reduce(m, terms)
        else:
            res = dp.reduce(m, terms, acc_code=acc_in)
        with m.If(sig["valid"]):
            m.d.sync += acc.eq(res)
        m.d.comb += self.o.eq(acc)
        return m

    def _contract(self, function, model, scale_formats, scale_rule, nan, nan_when):
        """The contract of the block unit: ``scale_formats`` ``{port: (role, format)}`` of the
        scale/exponent ports, ``scale_rule`` the golden model's ``scale_exp`` (and NaN) in terms
        of them, ``nan``/``nan_when`` whether and when the unit produces NaN."""
        cfg, fa, fb = self._cfg, self._a_fmt, self._b_fmt
        dp = Datapath(cfg, fa, fb, self._ifb)
        f32 = _formats.fp32
        zero = positive_zero(f32)
        n, L = cfg.n, self.latency
        c = {
            "function": function,
            "model": model,
            "config": cfg.describe(),
            "sum_bits": dp.sum_bits,
            "accumulator": "FP32 register, " + (
                "in the max exponent" if cfg.acc_in_max else
                "added to the block's rounded sum by a separate rounding adder") +
                ", one block per valid cycle; first=1 restarts from +0",
            "nan": (f"NaN element or scale, Inf*0, +Inf+-Inf -> {f32.nan_code:#010x} (sticky in "
                    "acc)") if nan else "never (integer elements, no NaN scale)",
            "overflow": "Inf (nearest_even) or max (toward_zero)",
            "latency_cycles": L,
            "formats": {"a": describe_format(fa), "b": describe_format(fb),
                        **{role: describe_format(f) for role, f in scale_formats.values()},
                        "acc": describe_format(f32), "result": describe_format(f32)},
            "packing": {"a": lanes("a", n, fa.bits, isinstance(fa, _formats.IntFormat)),
                        "b": lanes("b", n, fb.bits, isinstance(fb, _formats.IntFormat)),
                        **{port: lanes(role, 1, f.bits, isinstance(f, _formats.IntFormat))
                           for port, (role, f) in scale_formats.items()},
                        "o": lanes("result", 1, 32)},
            "int_frac_bits": list(self._ifb),
            "timing": (f"per rising edge with valid: acc <= adder(block, first ? +0 : acc); "
                       f"without valid acc holds (first is ignored). o is the accumulator: it "
                       f"includes a block {L} cycle(s) after the block's inputs"),
            "reset": {
                "signal": "rst", "synchronous": True, "active": "high",
                "clears": "every register to 0: the accumulator (+0)"
                          + (" and the input registers" if self._stages else "")
                          + "; the inputs of the cycle with rst high and the block in the input "
                            "register are dropped",
                "outputs_after_reset": {"o": zero},
                "idle_inputs": {"valid": 0},
                "accumulator_after_reset": f"+0 (code {zero})"},
            "golden_model": golden(
                "lowbit.models.shared_exp.shared_exp_add",
                "one call per valid block, acc = +0 if first else the previous result, "
                f"scale_exp = {scale_rule}; float32 values whose FP32 codes o shows {L} cycle(s) "
                "after the block (NaN: nan_outputs)",
                a_format=fmt_ref("a"), b_format=fmt_ref("b"),
                config=construct("lowbit.models.shared_exp.SharedExpConfig", **cfg.describe()),
                int_frac_bits=list(self._ifb)),
        }
        c.update(adder_numerics(cfg, "o", nan, nan_when))
        return c


def pack_terms(codes, bits):
    """Rows of ``codes`` (V x n) -> one Python int per row, term i in bits [i*bits, ...): the
    layout of the ``a`` / ``b`` ports."""
    codes = np.asarray(codes, dtype=object)
    out = np.zeros(codes.shape[0], dtype=object)
    for i in range(codes.shape[1]):
        out = out + (codes[:, i].astype(object) << (i * bits))
    return out


