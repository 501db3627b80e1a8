"""Multi-term shared-exponent adders: the golden model of fused dot-product units.

A fused dot-product unit (a tensor core, an MX or block-floating-point dot unit) does not
add its products one at a time in floating point.  It finds the largest exponent of a
group of ``n`` terms, shifts every term right to that exponent, cuts it to a fixed grid
of ``frac_bits`` fraction bits below the maximum, adds the resulting integers, and only
then normalises and rounds once.  Every decision of that datapath is a knob of
:class:`SharedExpConfig`; :func:`shared_exp_add` is one adder step, :func:`shared_exp_dot`
chains steps along a long axis (with optional promotion into an FP32 accumulator), and
:func:`gemm` runs a whole matrix product through any datapath.

Definition of one adder step
----------------------------
Terms.  A term is the exact product ``a_i * b_i`` of two codes (or, with
``b_format=None``, the value ``a_i`` itself).  Operands are unpacked as in hardware:
``value = (-1)^s * sig * 2^(e - M)`` with the hidden bit explicit and subnormals at
``e = emin``.  An integer operand (``IntFormat``) with ``int_frac_bits = f`` has
``sig = |v|``, ``M = f`` and ``e = bits - 2 - f`` (the exponent of its largest
positive magnitude bit; MXINT8 uses f = 6, so e = 0).  A product has
``sig = sig_a * sig_b`` and LSB exponent ``(e_a - M_a) + (e_b - M_b)``; block scales
(MX, BFP) add their exponent to every term of the step.

Alignment exponent (``align``).
``"operand_sum"``: ``E_i = e_a + e_b`` (subnormal operands counted at emin), which is what
an adder of the two exponent fields gives without normalising the product; the product
then lies below ``2^(E_i + 2)``.  ``"product"``: ``E_i = floor(log2 |a_i b_i|)``, the exact
exponent of the product (hardware: a leading-zero count per product).  Zero terms never
take part in the maximum (a chosen, documented convention: a zero product's exponent
field is ignored).

Maximum exponent.  ``E_max = max_i E_i`` over non-zero terms, and also over the running
accumulator ``acc`` when ``acc_in_max`` (its exponent is its FP32 exponent field,
subnormals at -126).  If nothing is non-zero, every aligned value is 0.

Cut.  Each term (and the accumulator when ``acc_in_max``) is scaled to the grid
``2^(E_max - frac_bits)`` and cut to an integer (``cut``):
``"toward_zero"`` truncates the magnitude (sign-magnitude shifter);
``"floor"`` truncates the two's-complement value (sign-filling arithmetic right shift);
``"nearest_even"`` rounds to nearest, ties to even, with a sticky bit (exact RNE);
``"nearest_even_nosticky"`` uses only the guard bit: a term whose guard bit is 1 is
treated as a tie and rounded to even (the bits below the guard are ignored).

Integer sum.  The cut integers are added exactly; the sum is then reduced modulo
``2^sum_bits`` to a two's-complement ``sum_bits``-bit value (a narrower register wraps).
``sum_bits=None`` takes the width that can never overflow,
:meth:`SharedExpConfig.needed_sum_bits`.

Normalise and round.  The sum times ``2^(E_max - frac_bits)`` is rounded
(``norm_rounding``: ``"nearest_even"`` or ``"toward_zero"`` on the magnitude) to a float
with ``norm_frac_bits`` fraction bits and FP32's exponent range (emin = -126, gradual
underflow on the same grid as FP32's for 23 bits, ``2^(-126 - norm_frac_bits)`` in
general); with ``norm_frac_bits = 13`` this is the FP22 (E8M13) intermediate.  Finite
overflow gives +-Inf under nearest-even and +-max under toward-zero (IEEE 754).  The
result converts to FP32 exactly (``norm_frac_bits <= 23``).  A zero result is +0.

Accumulator outside the maximum (``acc_in_max=False``).  The terms are added as above
*without* the accumulator, giving ``s``; then ``acc + s`` is rounded once more with
``norm_rounding`` to the same intermediate format (a separate floating-point adder).

Specials.  A NaN operand or scale, Inf * 0, or Inf terms of both signs give NaN (FP32
code 0x7FC00000); otherwise an Inf term gives that Inf.  The accumulator's NaN/Inf take
part in the same way.

Long dot products (:func:`shared_exp_dot`, :func:`gemm`).  The reduction axis is cut into
steps of ``n`` terms (the last one zero-padded; zero terms change nothing).  The step
result is fed back as the next step's accumulator.  With ``promote_every = P`` (a
multiple of ``n``) the running partial sum is added into a separate FP32 accumulator
after every P terms (and after the last step), rounding with ``promote_rounding``, and
restarts from +0; with ``promote_every=None`` the result is the chained partial sum.

Presets (:data:`PRESETS`)
-------------------------
``"exact"`` is not an adder: the exact sum of all products, rounded once to FP32
(nearest-even).  ``"h100_fp8"`` models the Hopper FP8 tensor-core path as described by
published measurements; the source of each knob is given beside it in
:func:`_h100_fp8`.  With ``frac_bits`` wide enough to hold every term exactly,
``nearest_even`` normalisation to 23 bits and ``acc_in_max=True``, one step equals the
exact sum rounded once (tested).
"""

import dataclasses

import numpy as np

from . import formats as _formats
from .checks import check_choice, check_int

__all__ = [
    "SharedExpConfig", "PRESETS", "get_datapath", "CUTS", "ALIGNS", "NORM_ROUNDINGS",
    "operand_fields", "product_terms", "shared_exp_add", "shared_exp_dot", "exact_dot",
    "gemm", "round_fixed", "add_round", "fp32_codes",
]

CUTS = ("toward_zero", "floor", "nearest_even", "nearest_even_nosticky")
ALIGNS = ("operand_sum", "product")
NORM_ROUNDINGS = ("nearest_even", "toward_zero")

FP32_EMIN = -126
FP32_EMAX = 127
NAN32 = 0x7FC00000


@dataclasses.dataclass(frozen=True)
class SharedExpConfig:
    """Every knob of a multi-term shared-exponent adder (see the module docstring).

    Parameters
    ----------
    n : int
        Terms per adder step, 1..4096.
    align : str
        ``"operand_sum"`` (E_i = e_a + e_b, subnormals at emin) or ``"product"``
        (E_i = exact exponent of the product).
    acc_in_max : bool
        Whether the running accumulator takes part in the maximum exponent (and is
        aligned and cut like a term) or is added afterwards by a separate rounding add.
    frac_bits : int
        Fraction bits kept below the maximum exponent after alignment, 0..512.
    cut : str
        ``"toward_zero"``, ``"floor"``, ``"nearest_even"`` or ``"nearest_even_nosticky"``.
    sum_bits : int or None
        Width of the two's-complement integer sum (wraps); ``None`` = never overflows.
    norm_frac_bits : int
        Fraction bits of the normalised result, 1..23 (13 = FP22, 23 = FP32).
    norm_rounding : str
        ``"nearest_even"`` or ``"toward_zero"``.
    promote_every : int or None
        Terms after which a long dot product hands its partial sum to an FP32
        accumulator (a multiple of ``n``); ``None`` = never.
    promote_rounding : str
        Rounding of that FP32 add: ``"nearest_even"`` or ``"toward_zero"``.
    name : str
        Label used in reports.

    Raises
    ------
    ValueError
        Naming the parameter and the allowed range.
    """
    n: int = 32
    align: str = "operand_sum"
    acc_in_max: bool = True
    frac_bits: int = 24
    cut: str = "toward_zero"
    sum_bits: object = None
    norm_frac_bits: int = 23
    norm_rounding: str = "nearest_even"
    promote_every: object = None
    promote_rounding: str = "nearest_even"
    name: str = "custom"

    def __post_init__(self):
        check_int("n", self.n, 1, 4096)
        check_choice("align", self.align, ALIGNS)
        if not isinstance(self.acc_in_max, (bool, np.bool_)):
            raise ValueError(f"acc_in_max must be True or False, not {self.acc_in_max!r}")
        check_int("frac_bits", self.frac_bits, 0, 512)
        check_choice("cut", self.cut, CUTS)
        if self.sum_bits is not None:
            check_int("sum_bits", self.sum_bits, 2, 1024)
        check_int("norm_frac_bits", self.norm_frac_bits, 1, 23)
        check_choice("norm_rounding", self.norm_rounding, NORM_ROUNDINGS)
        if self.promote_every is not None:
            check_int("promote_every", self.promote_every, 1)
            if self.promote_every % self.n:
                raise ValueError(f"promote_every must be a multiple of n={self.n}, "
                                 f"not {self.promote_every!r}")
        check_choice("promote_rounding", self.promote_rounding, NORM_ROUNDINGS)

    def term_bound(self, a_format, b_format=None, int_frac_bits=(0, 0)):
        """t such that every aligned term and the accumulator satisfy |x| <= 2^(frac_bits + t)."""
        if self.align == "product":
            return 1
        t = _operand_top(a_format)
        if b_format is not None:
            t += _operand_top(b_format)
        return max(t, 1)

    def needed_sum_bits(self, a_format, b_format=None):
        """Width of a two's-complement sum that cannot overflow for these operand formats."""
        terms = self.n + (1 if self.acc_in_max else 0)
        return self.frac_bits + self.term_bound(a_format, b_format) + terms.bit_length() + 1

    def describe(self):
        """The knobs as a plain dict (for manifests and reports)."""
        return dataclasses.asdict(self)


def _operand_top(fmt):
    """t_op with |value| < 2^(e + t_op) for every finite code (floats 1, integers 2)."""
    return 2 if isinstance(fmt, _formats.IntFormat) else 1


def _h100_fp8():
    """The NVIDIA Hopper FP8 tensor-core path (wgmma/mma f32.e4m3.e4m3.f32), as published.

    Sources:

    * n = 32: DeepSeek-V3 technical report (arXiv:2412.19437) section 3.5.2 speaks of
      the accumulation of 32 FP8 x FP8 products per step (one k=32 MMA; "at least 34-bit
      precision is required" for an exact FP32 result of 32 products).
    * frac_bits = 13, cut = "floor": DeepSeek-V3 section 3.5.2 ("fixed-point accumulation,
      aligning the mantissa products by right-shifting based on the maximum exponent
      before addition ... only uses the highest 14 bits of each mantissa product after
      sign-fill right shifting, and truncates bits exceeding this range"): sign-fill
      right shifting is a two's-complement arithmetic shift, i.e. floor.  14 bits =
      1 integer + 13 fraction bits at the maximum exponent (chosen reading; it is also
      the only one under which the accumulator keeps the 13 fraction bits below).
    * norm_frac_bits = 13, norm_rounding = "toward_zero": SageAttention2
      (arXiv:2411.10958), quoted in thu-ml/SageAttention issue #287: the accumulator of
      mma(f32.f8.f8.f32) is FP22 (1 sign, 8 exponent, 13 mantissa bits); with A = B = 0
      a D with more than 13 mantissa bits comes back with its 10 low bits zeroed
      (truncated).
    * acc_in_max = True: Fasi, Higham, Mikaitis, Pranesh, "Numerical behavior of NVIDIA
      tensor cores" (PeerJ CS 2021): the accumulator is aligned together with the
      products in the block FMA (measured on V100/T4/A100); assumed for Hopper FP8, in
      line with Khattak & Mikaitis, arXiv:2512.07004 (V100..B200 models).  Chosen.
    * align = "operand_sum": chosen (the cheap hardware reading; the sources do not
      distinguish it from "product" in what we could read).
    * sum_bits = None: wide enough (no wrap reported).
    * promote_every = 128, promote_rounding = "nearest_even": DeepSeek-V3 section 3.3.2 /
      DeepGEMM: partial results are promoted to FP32 registers on CUDA cores every
      N_C = 128 elements of K (4 WGMMAs), an FP32 add (round to nearest even); this is
      the kernel's choice, not the tensor core's ("h100_fp8_tc" omits it).
    """
    return SharedExpConfig(n=32, align="operand_sum", acc_in_max=True, frac_bits=13,
                           cut="floor", sum_bits=None, norm_frac_bits=13,
                           norm_rounding="toward_zero", promote_every=128,
                           promote_rounding="nearest_even", name="h100_fp8")


#: Named datapaths for :func:`gemm` (besides ``"exact"``).
PRESETS = {
    "h100_fp8": _h100_fp8(),
    "h100_fp8_tc": dataclasses.replace(_h100_fp8(), promote_every=None, name="h100_fp8_tc"),
}


def get_datapath(datapath):
    """``"exact"``, a preset name or a :class:`SharedExpConfig` -> ``"exact"`` or a config."""
    if isinstance(datapath, SharedExpConfig):
        return datapath
    if datapath == "exact":
        return "exact"
    if isinstance(datapath, str) and datapath in PRESETS:
        return PRESETS[datapath]
    raise ValueError(f"datapath must be 'exact', one of {', '.join(PRESETS)} or a "
                     f"SharedExpConfig, not {datapath!r}")


# ---------------------------------------------------------------------------------------
# Operand and term fields

class Fields:
    """Sign-magnitude fields of operands or terms (arrays of one shape).

    ``value = (-1)^neg * sig * 2^lsb``; ``ealign`` is the alignment exponent, ``zero``,
    ``nan``, ``pinf``, ``ninf`` the classification.
    """
    __slots__ = ("neg", "sig", "lsb", "ealign", "zero", "nan", "pinf", "ninf", "e")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def map(self, f):
        return Fields(**{k: (None if getattr(self, k) is None else f(getattr(self, k)))
                         for k in self.__slots__})


def _table_fields(fmt, int_frac_bits):
    """Per-code field tables of a format of at most 16 bits."""
    codes = np.arange(1 << fmt.bits, dtype=np.int64)
    return _fields_arith(fmt, codes, int_frac_bits)


def _fields_arith(fmt, codes, int_frac_bits):
    codes = np.asarray(codes, dtype=np.int64)
    if isinstance(fmt, _formats.IntFormat):
        v = fmt.decode(codes).astype(np.int64)
        f = int_frac_bits
        e = np.full(v.shape, fmt.bits - 2 - f, dtype=np.int64)
        false = np.zeros(v.shape, bool)
        return Fields(neg=v < 0, sig=np.abs(v), lsb=np.full(v.shape, -f, dtype=np.int64), e=e,
                      ealign=e, zero=v == 0, nan=false, pinf=false, ninf=false.copy())
    M = fmt.man_bits
    man = codes & ((1 << M) - 1)
    field = (codes >> M) & ((1 << fmt.exp_bits) - 1)
    neg = ((codes >> (fmt.bits - 1)) & 1).astype(bool) if fmt.signed else np.zeros(codes.shape, bool)
    if fmt.subnormals:
        normal = field > 0
        sig = np.where(normal, man | (1 << M), man)
        e = np.where(normal, field - fmt.bias, fmt.emin)
    else:
        sig = man | (1 << M)
        e = field - fmt.bias
    val = fmt.decode(codes.astype(fmt.code_dtype))
    nan = np.isnan(val)
    inf = np.isinf(val)
    zero = val == 0
    sig = np.where(nan | inf | zero, 0, sig).astype(np.int64)
    return Fields(neg=neg, sig=sig, lsb=(e - M).astype(np.int64), e=e.astype(np.int64),
                  ealign=e.astype(np.int64), zero=zero, nan=nan, pinf=inf & ~neg, ninf=inf & neg)


_TABLES = {}


def operand_fields(fmt, codes, int_frac_bits=0):
    """Unpack ``codes`` of ``fmt`` into :class:`Fields` (table lookup for <= 16-bit formats)."""
    fmt = _formats.get(fmt)
    codes = fmt.check_codes(codes)
    if fmt.bits <= 16:
        key = (fmt, int_frac_bits)
        tab = _TABLES.get(key)
        if tab is None:
            tab = _TABLES[key] = _table_fields(fmt, int_frac_bits)
        idx = codes.astype(np.intp)
        return tab.map(lambda t: t[idx])
    return _fields_arith(fmt, codes, int_frac_bits)


def _bitlen(x):
    """Bit length of non-negative integers (int64 or object arrays)."""
    x = np.asarray(x)
    if x.dtype == object:
        return np.frompyfunc(int.bit_length, 1, 1)(x).astype(np.int64)
    x = x.astype(np.int64)
    _, e = np.frexp(x.astype(np.float64))
    e = e.astype(np.int64)
    # float64 rounding may have carried into the next power of two
    too_big = (e > 0) & ((x >> np.clip(e - 1, 0, 63)) == 0)
    return e - too_big


def product_terms(a, b, align):
    """:class:`Fields` of the exact products of two operand field sets (broadcasting)."""
    neg = a.neg ^ b.neg
    sig = a.sig * b.sig
    lsb = a.lsb + b.lsb
    nan = a.nan | b.nan | ((a.pinf | a.ninf) & b.zero) | ((b.pinf | b.ninf) & a.zero)
    inf = (a.pinf | a.ninf | b.pinf | b.ninf) & ~nan
    zero = (a.zero | b.zero) & ~nan & ~inf
    if align == "operand_sum":
        ealign = a.ealign + b.ealign
    else:
        ealign = lsb + _bitlen(sig) - 1
    return Fields(neg=neg, sig=sig, lsb=lsb, ealign=ealign, zero=zero, nan=nan,
                  pinf=inf & ~neg, ninf=inf & neg)


def value_terms(a, align):
    """:class:`Fields` of plain values (the terms are the operands themselves)."""
    if align == "operand_sum":
        ealign = a.ealign
    else:
        ealign = a.lsb + _bitlen(a.sig) - 1
    return Fields(neg=a.neg, sig=a.sig, lsb=a.lsb, ealign=ealign, zero=a.zero, nan=a.nan,
                  pinf=a.pinf, ninf=a.ninf)


def float_fields(x):
    """:class:`Fields` of float64 values that are exactly representable in FP32.

    ``ealign`` is the FP32 exponent field's exponent (subnormals at -126).
    """
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    inf = np.isinf(x)
    a = np.where(nan | inf, 0.0, np.abs(x))
    m, e = np.frexp(a)
    sig = np.ldexp(m, 24).astype(np.int64)
    lsb = (e - 24).astype(np.int64)
    zero = a == 0
    neg = np.signbit(x) & ~nan
    ealign = np.maximum(e - 1, FP32_EMIN).astype(np.int64)
    return Fields(neg=neg, sig=sig, lsb=np.where(zero, 0, lsb), ealign=ealign, zero=zero,
                  nan=nan, pinf=inf & ~neg, ninf=inf & neg, e=ealign)


# ---------------------------------------------------------------------------------------
# Rounding helpers

def round_fixed(S, g, frac_bits, rounding):
    """Round ``S * 2^g`` to ``frac_bits`` fraction bits in FP32's exponent range.

    ``S`` is an integer array (int64 or object), ``g`` an integer array or scalar.
    Returns float64 values (exactly representable in FP32).  Overflow: +-Inf for
    nearest-even, +-max for toward-zero.  Zero gives +0.
    """
    S = np.asarray(S)
    obj = S.dtype == object
    g = np.broadcast_to(np.asarray(g, dtype=np.int64), S.shape)
    neg = S < 0
    mag = np.where(neg, -S, S)
    if not obj:
        mag = mag.astype(np.int64)
    L = _bitlen(mag)
    Er = g + L - 1
    t = np.maximum(Er, FP32_EMIN) - frac_bits
    sh = t - g
    rs = np.maximum(sh, 0)
    ls = np.maximum(-sh, 0)
    if not obj:
        rs = np.minimum(rs, 62)                      # mag < 2^61: a shift >= L+1 gives 0 anyway
    else:
        rs = rs.astype(object)
        ls = ls.astype(object)
    q = mag >> rs
    rem = mag - (q << rs)
    if rounding == "nearest_even":
        half = np.where(rs > 0, (np.ones_like(mag) << np.maximum(rs - 1, 0)), 0)
        if obj:
            half = np.where(rs > 0, half, 0).astype(object)
        up = (rs > 0) & ((rem > half) | ((rem == half) & ((q & 1) == 1)))
        q = q + up.astype(np.int64)
    q = q << ls
    q = np.asarray(q).astype(np.float64)            # < 2^(frac_bits + 2): exact
    val = np.ldexp(q, t.astype(np.int32))
    fmax = (2.0 - 2.0 ** -frac_bits) * 2.0 ** FP32_EMAX
    over = val > fmax
    val = np.where(over, np.inf if rounding == "nearest_even" else fmax, val)
    return np.where(neg, -val, val)


def add_round(x, y, frac_bits=23, rounding="nearest_even"):
    """``x + y`` (FP32-representable float64 arrays), exactly, rounded once to
    ``frac_bits`` fraction bits (FP32 exponent range).  NaN/Inf follow IEEE 754, every
    NaN result is the canonical +NaN (FP32 code 0x7FC00000); an exact zero sum gives +0."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x, y = np.broadcast_arrays(x, y)
    fx, fy = float_fields(x), float_fields(y)
    # make fx the one with the larger LSB-exponent-plus-width (the "big" operand)
    tx = np.where(fx.zero, -10 ** 6, fx.lsb + 24)
    ty = np.where(fy.zero, -10 ** 6, fy.lsb + 24)
    swap = ty > tx
    bsig = np.where(swap, fy.sig, fx.sig)
    blsb = np.where(swap, fy.lsb, fx.lsb)
    bneg = np.where(swap, fy.neg, fx.neg)
    bzero = np.where(swap, fy.zero, fx.zero)
    ssig = np.where(swap, fx.sig, fy.sig)
    slsb = np.where(swap, fx.lsb, fy.lsb)
    sneg = np.where(swap, fx.neg, fy.neg)
    szero = np.where(swap, fx.zero, fy.zero)
    # a small operand entirely below 2^(blsb - 2) only acts as a sticky bit: replace it by
    # 2^(blsb - 26) of the same sign (same rounding, see the module notes)
    far = ~szero & ~bzero & (slsb + 24 <= blsb - 2)
    ssig = np.where(far, 1, ssig)
    slsb = np.where(far, blsb - 26, slsb)
    base = np.where(bzero, slsb, np.where(szero, blsb, np.minimum(blsb, slsb)))
    bv = np.where(bzero, 0, bsig << np.clip(blsb - base, 0, 62))
    sv = np.where(szero, 0, ssig << np.clip(slsb - base, 0, 62))
    S = np.where(bneg, -bv, bv) + np.where(sneg, -sv, sv)
    out = round_fixed(S, base, frac_bits, rounding)
    with np.errstate(invalid="ignore"):
        special = np.isnan(x) | np.isnan(y) | np.isinf(x) | np.isinf(y)
        s = x + y                      # Inf + -Inf: the machine's default NaN (negative on x86)
        out = np.where(special, np.where(np.isnan(s), np.nan, s), out)   # canonical +NaN
    return out


def fp32_codes(values):
    """FP32 bit patterns of float64 values that are FP32-representable (NaN -> 0x7FC00000)."""
    v = np.asarray(values, dtype=np.float64)
    c = v.astype(np.float32).view(np.uint32)
    return np.where(np.isnan(v), np.uint32(NAN32), c).astype(np.uint32)


# ---------------------------------------------------------------------------------------
# The adder step

def _cut(mag, neg, rs, cut):
    """Cut ``mag >> rs`` (non-negative magnitudes) to an integer; returns the signed value."""
    q = mag >> rs
    rem = mag - (q << rs)
    if cut == "toward_zero":
        m = q
    elif cut == "floor":
        m = q + (neg & (rem != 0)).astype(np.int64)
    else:
        one = np.ones_like(mag)
        half = np.where(rs > 0, one << np.maximum(rs - 1, 0), 0)
        if mag.dtype == object:
            half = half.astype(object)
        if cut == "nearest_even":
            up = (rs > 0) & ((rem > half) | ((rem == half) & ((q & 1) == 1)))
        else:  # guard bit only, ties to even
            up = (rs > 0) & ((rem >= half) & ((q & 1) == 1))
        m = q + up.astype(np.int64)
    return np.where(neg, -m, m)


def _align(t, E, F, cut, obj, cap):
    """Signed integers of the terms ``t`` on the grid 2^(E - F)."""
    g = E - F
    r = g - t.lsb
    rs = np.clip(r, 0, cap)
    ls = np.maximum(-r, 0)
    sig = t.sig
    if obj:
        sig = sig.astype(object)
        rs = rs.astype(object)
        ls = ls.astype(object)
    mag = sig << ls
    v = _cut(mag, t.neg, rs, cut)
    return np.where(t.zero | t.nan | t.pinf | t.ninf, 0, v)


def _specials(t, acc_f, axis=-1):
    nan = t.nan.any(axis=axis)
    pinf = t.pinf.any(axis=axis)
    ninf = t.ninf.any(axis=axis)
    if acc_f is not None:
        nan = nan | acc_f.nan
        pinf = pinf | acc_f.pinf
        ninf = ninf | acc_f.ninf
    nan = nan | (pinf & ninf)
    return nan, pinf & ~nan, ninf & ~nan


def _step(t, acc, cfg, t_bound, sig_bits):
    """One adder step over the last axis of the term fields ``t``; ``acc`` float64 or None."""
    F = cfg.frac_bits
    n_terms = t.sig.shape[-1] + (1 if (acc is not None and cfg.acc_in_max) else 0)
    width = F + t_bound + max(n_terms, 1).bit_length() + 1
    obj = width > 62 or sig_bits + 2 > 62
    cap = max(sig_bits, 25) + 2
    acc_f = float_fields(acc) if acc is not None else None
    live = ~(t.zero | t.nan | t.pinf | t.ninf)
    NEG = -(10 ** 6)
    E = np.where(live, t.ealign, NEG).max(axis=-1)
    if acc_f is not None and cfg.acc_in_max:
        alive = ~(acc_f.zero | acc_f.nan | acc_f.pinf | acc_f.ninf)
        E = np.maximum(E, np.where(alive, acc_f.ealign, NEG))
    E = np.where(E == NEG, 0, E)
    v = _align(t, E[..., None], F, cfg.cut, obj, cap)
    S = v.sum(axis=-1)
    if acc_f is not None and cfg.acc_in_max:
        S = S + _align(acc_f, E, F, cfg.cut, obj, cap)
    if cfg.sum_bits is not None and cfg.sum_bits < width:
        w = cfg.sum_bits
        if obj:
            S = ((S + (1 << (w - 1))) % (1 << w)) - (1 << (w - 1))
        else:
            S = ((S + (1 << (w - 1))) & ((1 << w) - 1)) - (1 << (w - 1))
    out = round_fixed(S, E - F, cfg.norm_frac_bits, cfg.norm_rounding)
    if acc is not None and not cfg.acc_in_max:
        fin = np.isfinite(out)
        summed = add_round(np.where(fin, acc, 0.0), np.where(fin, out, 0.0),
                           cfg.norm_frac_bits, cfg.norm_rounding)
        out = np.where(fin, summed, out)
    nan, pinf, ninf = _specials(t, acc_f)
    out = np.where(nan, np.nan, np.where(pinf, np.inf, np.where(ninf, -np.inf, out)))
    return out


def _sig_bits(a_fmt, b_fmt):
    def sb(f):
        return f.bits if isinstance(f, _formats.IntFormat) else f.man_bits + 1
    return sb(a_fmt) + (sb(b_fmt) if b_fmt is not None else 0)


def _terms(a_codes, b_codes, a_format, b_format, cfg, int_frac_bits):
    a_fmt = _formats.get(a_format)
    fa = operand_fields(a_fmt, a_codes, int_frac_bits[0])
    if b_format is None:
        t = value_terms(fa, cfg.align)
    else:
        b_fmt = _formats.get(b_format)
        fb = operand_fields(b_fmt, b_codes, int_frac_bits[1])
        t = product_terms(fa, fb, cfg.align)
    return t


def _frac_pair(int_frac_bits):
    if isinstance(int_frac_bits, (tuple, list)):
        return tuple(int(x) for x in int_frac_bits)
    return (int(int_frac_bits), int(int_frac_bits))


def shared_exp_add(a_codes, b_codes, a_format, b_format, config, acc=None, scale_exp=None,
                   int_frac_bits=0):
    """One adder step: ``acc + sum_i a_i * b_i`` over the last axis (length ``config.n``).

    Parameters
    ----------
    a_codes, b_codes : array of int
        Codes, shape ``(..., n)``; ``b_codes``/``b_format`` may be ``None`` (plain values).
    a_format, b_format : str or Format
    config : SharedExpConfig or str
        A config or preset name.
    acc : array of float, optional
        Running accumulator, FP32-representable values of shape ``(...)``.
    scale_exp : array of int, optional
        Exponent added to every term of a step (MX/BFP block scales), shape ``(...)``.
    int_frac_bits : int or (int, int)
        Fraction bits of integer operands (MXINT8: 6).

    Returns
    -------
    numpy.ndarray of float32
        The step results (see the module docstring for the exact definition).
    """
    cfg = get_datapath(config)
    if cfg == "exact":
        raise ValueError("shared_exp_add needs a SharedExpConfig or preset, not 'exact'")
    ifb = _frac_pair(int_frac_bits)
    a_codes = np.asarray(a_codes)
    if a_codes.shape[-1:] != (cfg.n,):
        raise ValueError(f"a_codes must have n={cfg.n} terms on its last axis, "
                         f"not shape {a_codes.shape}")
    t = _terms(a_codes, b_codes, a_format, b_format, cfg, ifb)
    if scale_exp is not None:
        s = np.asarray(scale_exp, dtype=np.int64)[..., None]
        t.lsb = t.lsb + s
        t.ealign = t.ealign + s
    a_fmt = _formats.get(a_format)
    b_fmt = _formats.get(b_format) if b_format is not None else None
    tb = cfg.term_bound(a_fmt, b_fmt)
    if acc is not None:
        acc = np.broadcast_to(np.asarray(acc, dtype=np.float64), t.sig.shape[:-1])
    out = _step(t, acc, cfg, tb, _sig_bits(a_fmt, b_fmt))
    return out.astype(np.float32)


def _chain(get_terms, nsteps, cfg, tb, sig_bits, shape):
    """Chain adder steps; ``get_terms(i)`` returns the Fields of step i."""
    part = np.zeros(shape, dtype=np.float64)
    total = np.zeros(shape, dtype=np.float64)
    pending = False
    per = None if cfg.promote_every is None else cfg.promote_every // cfg.n
    for i in range(nsteps):
        t = get_terms(i)
        part = _step(t, part, cfg, tb, sig_bits)
        pending = True
        if per is not None and (i + 1) % per == 0:
            total = add_round(total, part, 23, cfg.promote_rounding)
            part = np.zeros(shape, dtype=np.float64)
            pending = False
    if per is None:
        return part
    if pending:
        total = add_round(total, part, 23, cfg.promote_rounding)
    return total


def pad_last(x, k, fill=0):
    """``x`` padded with ``fill`` along its last axis to a multiple of ``k`` (blocks of ``k``)."""
    K = x.shape[-1]
    pad = (-K) % k
    if pad:
        widths = [(0, 0)] * (x.ndim - 1) + [(0, pad)]
        x = np.pad(x, widths, constant_values=fill)
    return x


def shared_exp_dot(a_codes, b_codes, a_format, b_format, config, axis=-1, int_frac_bits=0,
                   scale_exp=None):
    """Dot products along ``axis`` through a chained shared-exponent adder.

    The axis is cut into steps of ``config.n`` terms (the last zero-padded: padding codes
    are 0 = +0, which change nothing).  ``scale_exp`` (optional, shape of the operands
    with ``axis`` of length K / n) adds an exponent to every term of a step.  Returns
    float32 of the broadcast shape without ``axis``.
    """
    cfg = get_datapath(config)
    if cfg == "exact":
        return exact_dot(a_codes, b_codes, a_format, b_format, axis=axis,
                         int_frac_bits=int_frac_bits, scale_exp=scale_exp, k=None)
    ifb = _frac_pair(int_frac_bits)
    a_fmt = _formats.get(a_format)
    b_fmt = _formats.get(b_format) if b_format is not None else None
    a = np.moveaxis(np.asarray(a_codes), axis, -1)
    b = np.moveaxis(np.asarray(b_codes), axis, -1) if b_codes is not None else None
    n = cfg.n
    a = pad_last(a, n)
    if b is not None:
        b = pad_last(b, n)
    fa = operand_fields(a_fmt, a, ifb[0])
    fb = operand_fields(b_fmt, b, ifb[1]) if b is not None else None
    sc = None
    if scale_exp is not None:
        sc = np.moveaxis(np.asarray(scale_exp, dtype=np.int64), axis, -1)
    shape = np.broadcast_shapes(a.shape, b.shape if b is not None else a.shape)[:-1]
    nsteps = a.shape[-1] // n

    def get_terms(i):
        sl = (Ellipsis, slice(i * n, (i + 1) * n))
        pa = fa.map(lambda x: x[sl])
        t = product_terms(pa, fb.map(lambda x: x[sl]), cfg.align) if fb is not None \
            else value_terms(pa, cfg.align)
        if sc is not None:
            s = sc[..., i][..., None]
            t.lsb = t.lsb + s
            t.ealign = t.ealign + s
        return t

    out = _chain(get_terms, nsteps, cfg, cfg.term_bound(a_fmt, b_fmt),
                 _sig_bits(a_fmt, b_fmt), shape)
    return out.astype(np.float32)


def exact_dot(a_codes, b_codes, a_format, b_format, axis=-1, int_frac_bits=0, scale_exp=None,
              k=None):
    """Exact sum of the products along ``axis``, rounded once to FP32 (nearest even).

    ``scale_exp`` (with ``k`` the block length) adds ``scale_exp[..., j]`` to the exponent
    of the products of block j.  Computed with exact integer arithmetic (int64, or
    Python integers when the exponent span needs more).  NaN/Inf as in the module
    docstring; an exact zero gives +0.
    """
    ifb = _frac_pair(int_frac_bits)
    a_fmt = _formats.get(a_format)
    b_fmt = _formats.get(b_format) if b_format is not None else None
    a = np.moveaxis(np.asarray(a_codes), axis, -1)
    fa = operand_fields(a_fmt, a, ifb[0])
    if b_codes is not None:
        b = np.moveaxis(np.asarray(b_codes), axis, -1)
        t = product_terms(fa, operand_fields(b_fmt, b, ifb[1]), "operand_sum")
    else:
        t = value_terms(fa, "operand_sum")
    if scale_exp is not None:
        sc = np.moveaxis(np.asarray(scale_exp, dtype=np.int64), axis, -1)
        K = t.sig.shape[-1]
        sc = np.repeat(sc, k, axis=-1)[..., :K]
        t.lsb = t.lsb + sc
    return _exact_sum(t).astype(np.float32)


def _exact_sum(t):
    live = ~(t.zero | t.nan | t.pinf | t.ninf)
    big = 10 ** 6
    qmin = np.where(live, t.lsb, big).min(axis=-1, keepdims=True)
    qmin = np.where(qmin == big, 0, qmin)
    sh = np.where(live, t.lsb - qmin, 0)
    K = t.sig.shape[-1]
    need = (int(sh.max()) if sh.size else 0) + int(t.sig.max(initial=1)).bit_length() \
        + max(K, 1).bit_length() + 1
    sig = t.sig
    if need > 62:
        sig = sig.astype(object)
        sh = sh.astype(object)
    v = np.where(live, sig << sh, 0)
    v = np.where(t.neg, -v, v)
    S = v.sum(axis=-1)
    out = round_fixed(S, qmin[..., 0], 23, "nearest_even")
    nan, pinf, ninf = _specials(t, None)
    return np.where(nan, np.nan, np.where(pinf, np.inf, np.where(ninf, -np.inf, out)))


# ---------------------------------------------------------------------------------------
# GEMM

def _bands(fmt, K, int_frac_bits):
    """Split a format's finite non-zero values into bands of "top" exponents (|v| < 2^top)
    such that within a band ``max(top) - min(lsb) <= (53 - bitlen(K)) // 2``: a K-term
    sum of products of two bands is then an exact float64 whatever the summation order."""
    codes = fmt.all_codes() if fmt.bits <= 16 else None
    if codes is None:
        raise ValueError(f"gemm supports formats of at most 16 bits, not {fmt.name}")
    f = operand_fields(fmt, codes, int_frac_bits)
    live = ~(f.zero | f.nan | f.pinf | f.ninf)
    if not live.any():
        return [(-10 ** 6, 10 ** 6)]
    top = (f.lsb + _bitlen(f.sig))[live]
    lsb = f.lsb[live]
    h = (53 - max(K, 1).bit_length()) // 2
    order = np.argsort(top, kind="stable")
    top, lsb = top[order], lsb[order]
    bands = []
    start = 0
    lo = int(lsb[0])
    for i in range(len(top)):
        lo_i = min(lo, int(lsb[i]))
        if int(top[i]) - lo_i > h and top[i] != top[start]:
            bands.append(int(top[i]))
            start = i
            lo = int(lsb[i])
        else:
            lo = lo_i
    edges = [-10 ** 6] + bands + [10 ** 6]
    return list(zip(edges[:-1], edges[1:]))


def gemm(a_codes, b_codes, a_format, b_format, datapath="exact", int_frac_bits=0,
         row_block=None):
    """Matrix product of code matrices through a datapath; returns float32 (M x N).

    Parameters
    ----------
    a_codes : array of int, shape (M, K)
    b_codes : array of int, shape (K, N)
    a_format, b_format : str or Format
        Formats of the codes (by name).
    datapath : str or SharedExpConfig
        ``"exact"`` (exact sum of all K products rounded once to FP32, nearest-even), a
        preset name (``"h100_fp8"``, ``"h100_fp8_tc"``) or a :class:`SharedExpConfig`:
        each output is :func:`shared_exp_dot` of its row and column.
    int_frac_bits : int or (int, int)
        Fraction bits of integer operands.

    Notes
    -----
    ``"exact"`` runs float64 BLAS products on exponent bands of the operands, chosen so
    that every partial sum is an exactly representable float64 (so the BLAS order of
    summation does not matter), then adds the band results exactly as integers and
    rounds once.  A configured datapath runs the adder chain step by step, vectorised
    over all M x N outputs.
    """
    cfg = get_datapath(datapath)
    ifb = _frac_pair(int_frac_bits)
    a_fmt = _formats.get(a_format)
    b_fmt = _formats.get(b_format)
    A = np.asarray(a_codes)
    B = np.asarray(b_codes)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"a_codes and b_codes must be M x K and K x N, not {A.shape} and {B.shape}")
    if cfg == "exact":
        return _gemm_exact(A, B, a_fmt, b_fmt, ifb)
    M, K = A.shape
    N = B.shape[1]
    fast = _gemm_fast(A, B, a_fmt, b_fmt, cfg, ifb)
    if fast is not None:
        return fast
    if row_block is None:
        row_block = max(1, (1 << 21) // max(1, N * cfg.n))
    out = np.empty((M, N), dtype=np.float32)
    fa_all = operand_fields(a_fmt, pad_last(A, cfg.n), ifb[0])
    fb_all = operand_fields(b_fmt, pad_last(B.T, cfg.n), ifb[1])
    tb = cfg.term_bound(a_fmt, b_fmt)
    sb = _sig_bits(a_fmt, b_fmt)
    n = cfg.n
    nsteps = fa_all.sig.shape[-1] // n
    fb3 = fb_all.map(lambda x: x[None, :, :])
    for r0 in range(0, M, row_block):
        fa3 = fa_all.map(lambda x: x[r0:r0 + row_block, None, :])

        def get_terms(i, fa3=fa3):
            sl = (Ellipsis, slice(i * n, (i + 1) * n))
            return product_terms(fa3.map(lambda x: x[sl]), fb3.map(lambda x: x[sl]), cfg.align)

        rows = fa3.sig.shape[0]
        out[r0:r0 + rows] = _chain(get_terms, nsteps, cfg, tb, sb, (rows, N)).astype(np.float32)
    return out


def _gemm_exact(A, B, a_fmt, b_fmt, ifb):
    M, K = A.shape
    N = B.shape[1]
    fa = operand_fields(a_fmt, A, ifb[0])
    fb = operand_fields(b_fmt, B, ifb[1])

    def values(f):
        live = ~(f.zero | f.nan | f.pinf | f.ninf)
        v = np.ldexp(np.where(live, f.sig, 0).astype(np.float64), f.lsb.astype(np.int32))
        return np.where(f.neg, -v, v), live, f.lsb + _bitlen(f.sig)

    va, la, ta = values(fa)
    vb, lb, tb = values(fb)
    bands_a = _bands(a_fmt, K, ifb[0])
    bands_b = _bands(b_fmt, K, ifb[1])
    parts = []
    for (a0, a1) in bands_a:
        ma = la & (ta >= a0) & (ta < a1)
        if not ma.any():
            continue
        Aa = np.where(ma, va, 0.0)
        for (b0, b1) in bands_b:
            mb = lb & (tb >= b0) & (tb < b1)
            if not mb.any():
                continue
            parts.append(Aa @ np.where(mb, vb, 0.0))
    if not parts:
        res = np.zeros((M, N))
    elif len(parts) == 1:
        res = parts[0]
    else:
        # add the (exact) band results exactly and round once
        P = np.stack(parts, axis=-1)
        f = _float64_fields(P)
        res = _exact_sum(f)
    res = np.where(res == 0, 0.0, res)
    out = res.astype(np.float32) if len(parts) <= 1 else res.astype(np.float32)
    # specials
    if (fa.nan | fa.pinf | fa.ninf).any() or (fb.nan | fb.pinf | fb.ninf).any():
        def ind(x):
            return x.astype(np.float64)
        pos_a, neg_a = ind(la & ~fa.neg), ind(la & fa.neg)
        pos_b, neg_b = ind(lb & ~fb.neg), ind(lb & fb.neg)
        nan = ind(fa.nan).sum(1)[:, None] + ind(fb.nan).sum(0)[None, :] \
            + ind(fa.pinf | fa.ninf) @ ind(fb.zero) + ind(fa.zero) @ ind(fb.pinf | fb.ninf)
        pinf = ind(fa.pinf) @ (pos_b + ind(fb.pinf)) + ind(fa.ninf) @ (neg_b + ind(fb.ninf)) \
            + pos_a @ ind(fb.pinf) + neg_a @ ind(fb.ninf)
        ninf = ind(fa.pinf) @ (neg_b + ind(fb.ninf)) + ind(fa.ninf) @ (pos_b + ind(fb.pinf)) \
            + pos_a @ ind(fb.ninf) + neg_a @ ind(fb.pinf)
        isnan = (nan > 0) | ((pinf > 0) & (ninf > 0))
        out = np.where(isnan, np.float32(np.nan), np.where(pinf > 0, np.float32(np.inf),
                       np.where(ninf > 0, np.float32(-np.inf), out)))
    return out.astype(np.float32)


def _float64_fields(x):
    """Exact sign/integer/exponent fields of finite float64 values (53-bit significands)."""
    a = np.abs(x)
    m, e = np.frexp(a)
    sig = np.ldexp(m, 53).astype(np.int64)
    zero = a == 0
    false = np.zeros(x.shape, bool)
    return Fields(neg=x < 0, sig=sig, lsb=np.where(zero, 0, e - 53).astype(np.int64),
                  ealign=e.astype(np.int64), zero=zero, nan=false, pinf=false, ninf=false)


_PAIR_TABLES = {}


def _pair_table(a_fmt, b_fmt, cfg, ifb):
    """Per code pair: product value (float64, exact), alignment exponent (int16; zero
    products get a sentinel below every real exponent) and whether it is special."""
    key = (a_fmt, b_fmt, cfg.align, ifb)
    tab = _PAIR_TABLES.get(key)
    if tab is None:
        ca = a_fmt.all_codes().astype(np.int64)[:, None]
        cb = b_fmt.all_codes().astype(np.int64)[None, :]
        t = product_terms(operand_fields(a_fmt, ca, ifb[0]), operand_fields(b_fmt, cb, ifb[1]),
                          cfg.align)
        special = t.nan | t.pinf | t.ninf
        live = ~(t.zero | special)
        v = np.ldexp(np.where(live, t.sig, 0).astype(np.float64), t.lsb.astype(np.int32))
        v = np.where(t.neg, -v, v)
        e = np.where(live, t.ealign, -30000).astype(np.int16)
        tab = (v.ravel(), e.ravel(), special.ravel())
        _PAIR_TABLES[key] = tab
    return tab


def _gemm_fast(A, B, a_fmt, b_fmt, cfg, ifb):
    """The configured-datapath gemm in float64 arithmetic, when that is exact.

    Every product is an exact float64; ``x * 2^(frac_bits - E_max)`` is exact; floor /
    trunc / rint of it is exactly the cut of the integer model; and the integer sum is
    exact while it needs at most 53 bits.  Returns None when a condition fails (then the
    integer path runs); the two paths are compared in the tests.
    """
    if a_fmt.bits > 8 or b_fmt.bits > 8:
        return None
    tb = cfg.term_bound(a_fmt, b_fmt)
    F = cfg.frac_bits
    n = cfg.n
    width = F + tb + (n + 1).bit_length() + 1
    if width > 53 or F > 200:
        return None
    val, eal, special = _pair_table(a_fmt, b_fmt, cfg, ifb)
    A = A.astype(np.int64)
    B = B.astype(np.int64)
    bb = b_fmt.bits
    # special products need a NaN/Inf operand: fall back if any is present
    for fmt, X, fb in ((a_fmt, A, ifb[0]), (b_fmt, B, ifb[1])):
        f = operand_fields(fmt, fmt.all_codes(), fb)
        if (f.nan | f.pinf | f.ninf)[X].any():
            return None
    M, K = A.shape
    N = B.shape[1]
    Ap = pad_last(A, n)
    Bp = pad_last(B.T, n)
    nsteps = Ap.shape[1] // n
    # operand values (exact float64) and, for "operand_sum", operand exponents with a
    # sentinel for zeros so that a product with a zero operand never wins the maximum
    fa = operand_fields(a_fmt, Ap, ifb[0])
    fb = operand_fields(b_fmt, Bp, ifb[1])

    def opval(f):
        v = np.ldexp(f.sig.astype(np.float64), f.lsb.astype(np.int32))
        return np.where(f.neg, -v, v)

    va, vb = opval(fa), opval(fb)
    if cfg.align == "operand_sum":
        ea = np.where(fa.zero, -15000, fa.ealign).astype(np.int16)
        eb = np.where(fb.zero, -15000, fb.ealign).astype(np.int16)
    else:
        A16 = (Ap << bb).astype(np.uint16)
        B16 = Bp.astype(np.uint16)
    part = np.zeros((M, N))
    total = np.zeros((M, N))
    per = None if cfg.promote_every is None else cfg.promote_every // n
    pending = False
    NEG = -30000
    for i in range(nsteps):
        sl = slice(i * n, (i + 1) * n)
        p = va[:, None, sl] * vb[None, :, sl]
        if cfg.align == "operand_sum":
            E = (ea[:, None, sl] + eb[None, :, sl]).max(axis=-1).astype(np.int64)
        else:
            E = eal[A16[:, None, sl] | B16[None, :, sl]].max(axis=-1).astype(np.int64)
        E = np.where(E < -10000, NEG, E)
        if cfg.acc_in_max:
            af = float_fields(part)
            E = np.maximum(E, np.where(af.zero, NEG, af.ealign))
        E = np.where(E == NEG, 0, E)
        scale = np.ldexp(1.0, (F - E).astype(np.int32))
        x = p * scale[..., None]
        v = _cut_float(x, cfg.cut)
        S = v.sum(axis=-1)
        if cfg.acc_in_max:
            S = S + _cut_float(part * scale, cfg.cut)
        if cfg.sum_bits is not None and cfg.sum_bits < width:
            w = float(2 ** cfg.sum_bits)
            S = np.mod(S + w / 2, w) - w / 2
        out = round_fixed(S.astype(np.int64), E - F, cfg.norm_frac_bits, cfg.norm_rounding)
        if not cfg.acc_in_max:
            fin = np.isfinite(out)
            summed = add_round(np.where(fin, part, 0.0), np.where(fin, out, 0.0),
                               cfg.norm_frac_bits, cfg.norm_rounding)
            out = np.where(fin, summed, out)
        part = out
        pending = True
        if per is not None and (i + 1) % per == 0:
            total = add_round(total, part, 23, cfg.promote_rounding)
            part = np.zeros((M, N))
            pending = False
    if per is None:
        return part.astype(np.float32)
    if pending:
        total = add_round(total, part, 23, cfg.promote_rounding)
    return total.astype(np.float32)


def _cut_float(x, cut):
    """The cut of :func:`_cut` on exact float64 values (integers result, exact)."""
    if cut == "toward_zero":
        return np.trunc(x)
    if cut == "floor":
        return np.floor(x)
    if cut == "nearest_even":
        return np.rint(x)
    y = np.trunc(np.abs(x) * 2.0)              # magnitude with its guard bit
    q = np.floor(y * 0.5)
    guard = y - 2.0 * q
    m = q + guard * np.mod(q, 2.0)
    return np.copysign(m, x) * (x != 0)
