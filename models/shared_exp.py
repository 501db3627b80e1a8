"""Multi-term shared-exponent adders: the golden model of fused dot-product units.

A fused dot-product unit (a tensor core, an MX or block-floating-point dot unit) does not
add its products one at a time in floating point.  It finds the largest exponent of a
group of ``n`` terms, shifts every term right to that exponent, cuts it to a fixed grid
of ``frac_bits`` fraction bits below the maximum, adds the resulting integers, and only
then normalises and rounds once.  Every decision of that datapath is a knob of
:class:`SharedExpConfig`; :func:`shared_exp_add` is one adder step, :func:`shared_exp_dot`
chains steps along a long axis (with optional promotion into an FP32 accumulator), and
:func:`gemm` runs a whole matrix product through any datapath.  The matrix instructions
of NVIDIA and AMD GPUs (:mod:`lowbit.models.tensor_core`) are configurations of the same
knobs.

Definition of one adder step
----------------------------
Terms.  A term is the exact product ``a_i * b_i`` of two codes (or, with
``b_format=None``, the value ``a_i`` itself).  Operands are unpacked as in hardware:
``value = (-1)^s * sig * 2^(e - M)`` with the hidden bit explicit and subnormals at
``e = emin``.  An integer operand (``IntFormat``) with ``int_frac_bits = f`` has
``sig = |v|``, ``M = f`` and ``e = bits - 2 - f`` (the exponent of its largest
positive magnitude bit; MXINT8 uses f = 6, so e = 0).  A product has
``sig = sig_a * sig_b`` and LSB exponent ``(e_a - M_a) + (e_b - M_b)``.  Block scales
(MX, BFP, NVFP4) multiply every term of their block by the scale: its significand
multiplies ``sig``, its exponent is added to the LSB and to the alignment exponent (an
E8M0 scale has significand 1; a NaN scale makes the result NaN; a zero scale, possible
for UE4M3, makes its terms zero).  With ``ftz=True`` subnormal operands are read as +0.

Groups (``group = G > 1``).  The ``n`` products are first summed exactly in groups of
``G`` consecutive products; each group sum, multiplied by its block scales, is one term
whose alignment exponent is the sum of the scales' exponents (0 without scales): the
group sum is a fixed-point number, not normalised.  A group whose products are all zero
is a zero term (a group whose products cancel is not).  NVIDIA's GST-FDPA (``kind::mxf4``,
``kind::mxf4nvf4``) uses G = 16 (Xie et al., MMA-Sim, arXiv:2511.10909; the alignment
exponent was fixed against the shipped vectors, see :mod:`lowbit.models.tensor_core`).

Alignment exponent (``align``).
``"operand_sum"``: ``E_i = e_a + e_b`` (subnormal operands counted at emin), which is what
an adder of the two exponent fields gives without normalising the product; the product
then lies below ``2^(E_i + 2)``.  ``"product"``: ``E_i = floor(log2 |a_i b_i|)``, the exact
exponent of the product (hardware: a leading-zero count per product).

Maximum exponent.  ``E_max = max_i E_i`` over non-zero terms, and also over the running
accumulator ``acc`` when ``acc_in_max`` (its exponent is its exponent field in the
accumulator format ``acc_format``, subnormals at emin).  Zero terms (the accumulator
included) take part with the exponent ``zero_exp`` when it is an integer (NVIDIA's
``e_zero``, far below every real exponent, so that it matters only for terms below it);
with ``zero_exp=None`` they never take part.  If nothing takes part, every aligned value
is 0.

Cut.  Each term (and the accumulator when ``acc_in_max``) is scaled to the grid
``2^(E_max - frac_bits)`` and cut to an integer (``cut``):
``"toward_zero"`` truncates the magnitude (sign-magnitude shifter);
``"floor"`` truncates the two's-complement value (sign-filling arithmetic right shift);
``"nearest_even"`` rounds to nearest, ties to even, with a sticky bit (exact RNE);
``"nearest_even_nosticky"`` uses only the guard bit: a term whose guard bit is 1 is
treated as a tie and rounded to even (the bits below the guard are ignored).

Interleaved sums (``interleave = I > 1``, only with ``acc_in_max=False``).  The products
with index ``i mod I = j`` form I separate fused sums (each its own maximum and cut as
above); the I sums are then cut with ``acc_cut`` to the grid ``2^(E - frac_bits)`` of the
largest of their maxima ``E`` and added.  AMD CDNA3 FP8 (GTR-FDPA) uses I = 2.

Integer sum.  The cut integers are added exactly; the sum is then reduced modulo
``2^sum_bits`` to a two's-complement ``sum_bits``-bit value (a narrower register wraps).
``sum_bits=None`` takes the width that can never overflow,
:meth:`SharedExpConfig.needed_sum_bits`.

Normalise and round.  The sum times ``2^(E_max - frac_bits)`` is rounded
(``norm_rounding``: ``"nearest_even"`` or ``"toward_zero"`` on the magnitude) to a float
with ``norm_frac_bits`` fraction bits and the exponent range of ``acc_format`` (FP32:
emin = -126, emax = 127; FP16: -14, 15), with gradual underflow on the grid
``2^(emin - norm_frac_bits)``; with ``norm_frac_bits = 13`` and FP32 this is the FP22
(E8M13) intermediate.  Finite overflow gives +-Inf under nearest-even and +-max under
toward-zero (IEEE 754).  The result is exactly representable in ``acc_format``
(``norm_frac_bits`` <= its fraction bits).  A zero result is +0.

Accumulator outside the maximum (``acc_in_max=False``).  The products are added as above
*without* the accumulator, giving ``s``; the accumulator is then added by
``acc_add``:

``"round"``    ``acc + s`` (``s`` rounded as above) is rounded once more with
               ``norm_rounding`` to the same intermediate format (a separate
               floating-point adder).
``"aligned"``  AMD's two-stage sum (TR-FDPA / GTR-FDPA, MMA-Sim): ``s`` stays an exact
               integer on the grid ``2^(E_d - frac_bits)``, ``E_d`` the maximum product
               exponent (over the non-zero products, also when their sum cancels).
               ``E = max(E_d, e_acc)``; ``s`` is cut with ``acc_cut`` to
               ``acc_frac_bits + 1`` fraction bits below ``E`` and the accumulator to
               ``frac_bits``; with ``acc_drop`` an accumulator more than
               ``frac_bits + 1`` binades below ``E_d`` is dropped (treated as 0).  The
               exact sum is normalised and cut with ``acc_cut`` to ``acc_frac_bits``
               fraction bits, then rounded with ``norm_rounding`` to ``norm_frac_bits``.

``product_overflow="inf"`` turns a product of magnitude at least ``2^(emax + 1)`` of the
accumulator format into an Inf of its sign (AMD CDNA3); ``"keep"`` keeps it exact.

Floating-point tree (``adder="fp_tree"``, AMD CDNA2).  Not a fused sum: every product is
rounded to FP32 (nearest even), the ``n`` products are added in pairs, then pairs of
pairs, with FP32 nearest-even additions, and the accumulator is added last the same way;
with ``ftz`` every subnormal product, sum and incoming accumulator becomes a zero of its
sign.  IEEE 754 signed zeros and NaN/Inf rules apply.

Specials.  A NaN operand or scale, Inf * 0, or Inf terms of both signs give NaN (FP32
code 0x7FC00000); otherwise an Inf term gives that Inf.  The accumulator's NaN/Inf take
part in the same way.

Long dot products (:func:`shared_exp_dot`, :func:`gemm`).  The reduction axis is cut into
steps of ``n`` terms (the last one zero-padded; zero terms change nothing, except that
with an integer ``zero_exp`` they take part in the maximum like any zero term).  The step
result is fed back as the next step's accumulator.  With ``promote_every = P`` (a
multiple of ``n``) the running partial sum is added into a separate FP32 accumulator
after every P terms (and after the last step), rounding with ``promote_rounding``, and
restarts from +0; with ``promote_every=None`` the result is the chained partial sum.

Presets (:data:`PRESETS`)
-------------------------
``"exact"`` is not an adder: the exact sum of all products, rounded once to FP32
(nearest-even).  ``"h100_fp8"`` is the FP8 GEMM of an NVIDIA H100 as ``torch._scaled_mm``
runs it (cuBLASLt, default accumulation), ``"h100_fp8_fast_accum"`` the same with
``use_fast_accum=True``; the source of each knob is given in :func:`_h100_fp8`; both
reproduce 86,016 of 86,016 FP8 GEMM results measured on an H100
(``tests/data/h100/README.md``).  ``"h100_fp8_tc"`` is a deprecated alias of
``"h100_fp8_fast_accum"``.  With ``frac_bits`` wide enough to hold every term exactly,
``nearest_even`` normalisation to 23 bits and ``acc_in_max=True``, one step equals the
exact sum rounded once (tested).

GEMM epilogue (:func:`gemm`)
----------------------------
As cuBLASLt does for ``torch._scaled_mm`` (our H100 measurements,
``tests/data/h100/README.md``): ``alpha = fp32(scale_a * scale_b)`` (both scales first
read as FP32, the product rounded to nearest even) multiplies the final FP32 sum once
(nearest even); a ``bf16`` output is the nearest-even rounding of that FP32 result.
"""

import dataclasses

import numpy as np

from . import formats as _formats
from . import jit as _jit
from .checks import check_bool, check_choice, check_int, check_number

__all__ = [
    "SharedExpConfig", "PRESETS", "ALIASES", "get_datapath", "CUTS", "ALIGNS",
    "NORM_ROUNDINGS", "ACC_FORMATS", "ACC_ADDS", "ADDERS", "OUT_FORMATS",
    "Fields", "operand_fields", "product_terms", "value_terms", "scale_terms",
    "flush_subnormals", "float_fields",
    "shared_exp_add", "shared_exp_dot", "exact_dot", "step", "chain", "fused_dot_fast",
    "gemm", "epilogue",
    "round_fixed", "add_round", "fp32_codes", "pad_last",
]

CUTS = ("toward_zero", "floor", "nearest_even", "nearest_even_nosticky")
ALIGNS = ("operand_sum", "product")
NORM_ROUNDINGS = ("nearest_even", "toward_zero")
#: Accumulator formats: (emin, emax, fraction bits).
ACC_FORMATS = {"fp32": (-126, 127, 23), "fp16": (-14, 15, 10)}
ACC_ADDS = ("round", "aligned")
ADDERS = ("fused", "fp_tree")
PRODUCT_OVERFLOWS = ("keep", "inf")
#: Output formats of :func:`gemm`.
OUT_FORMATS = ("fp32", "bf16")

FP32_EMIN = -126
FP32_EMAX = 127
NAN32 = 0x7FC00000
_NEG = -(10 ** 6)          # exponent sentinel: takes no part in a maximum


@dataclasses.dataclass(frozen=True)
class SharedExpConfig:
    """Every knob of a multi-term shared-exponent adder (see the module docstring).

    The first ten knobs are those of the hardware adder
    (:class:`lowbit.hdl.shared_exp_adder.SharedExpAdder`); the others, with defaults that
    keep the hardware's behaviour, describe the matrix instructions of
    :mod:`lowbit.models.tensor_core`.

    Parameters
    ----------
    n : int
        Products per adder step, 1..4096.
    align : str
        ``"operand_sum"`` (E_i = e_a + e_b, subnormals at emin) or ``"product"``
        (E_i = exact exponent of the product).
    acc_in_max : bool
        Whether the running accumulator takes part in the maximum exponent (and is
        aligned and cut like a term) or is added afterwards (``acc_add``).
    frac_bits : int
        Fraction bits kept below the maximum exponent after alignment, 0..512.
    cut : str
        ``"toward_zero"``, ``"floor"``, ``"nearest_even"`` or ``"nearest_even_nosticky"``.
    sum_bits : int or None
        Width of the two's-complement integer sum (wraps); ``None`` = never overflows.
    norm_frac_bits : int
        Fraction bits of the normalised result, 1..23 (13 = FP22, 23 = FP32), at most the
        fraction bits of ``acc_format``.
    norm_rounding : str
        ``"nearest_even"`` or ``"toward_zero"``.
    promote_every : int or None
        Terms after which a long dot product hands its partial sum to an FP32
        accumulator (a multiple of ``n``); ``None`` = never.
    promote_rounding : str
        Rounding of that FP32 add: ``"nearest_even"`` or ``"toward_zero"``.
    zero_exp : int or None
        Alignment exponent of zero terms (-4096..4096); ``None``: zero terms stay out of
        the maximum.
    acc_format : str
        ``"fp32"`` or ``"fp16"``: format of the accumulator and exponent range of the
        normalised result.
    group : int
        Products summed exactly per group before alignment (divides ``n``); 1 = none.
    interleave : int
        Interleaved product sums (divides ``n``; > 1 needs ``acc_in_max=False``).
    acc_add : str
        ``"round"`` or ``"aligned"``: how the accumulator is added when
        ``acc_in_max=False``.
    acc_cut : str
        Cut of the ``"aligned"`` accumulator add and of the interleaved sums (one of
        :data:`CUTS`).
    acc_frac_bits : int
        ``"aligned"``: fraction bits of the aligned sum before the final rounding
        (norm_frac_bits..52).
    acc_drop : bool
        ``"aligned"``: drop an accumulator more than ``frac_bits + 1`` binades below the
        product maximum.
    product_overflow : str
        ``"keep"`` or ``"inf"`` (a product beyond the accumulator format's range is Inf).
    adder : str
        ``"fused"`` (the shared-exponent adder) or ``"fp_tree"`` (pairwise FP32 adds).
    ftz : bool
        Read subnormal operands as +0 (and, for ``"fp_tree"``, flush subnormal products,
        sums and the incoming accumulator to zero).
    name : str
        Label used in reports.

    Raises
    ------
    TypeError, ValueError
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
    zero_exp: object = None
    acc_format: str = "fp32"
    group: int = 1
    interleave: int = 1
    acc_add: str = "round"
    acc_cut: str = "floor"
    acc_frac_bits: int = 31
    acc_drop: bool = False
    product_overflow: str = "keep"
    adder: str = "fused"
    ftz: bool = False
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
        check_choice("acc_format", self.acc_format, tuple(ACC_FORMATS))
        check_int("norm_frac_bits", self.norm_frac_bits, 1, ACC_FORMATS[self.acc_format][2])
        check_choice("norm_rounding", self.norm_rounding, NORM_ROUNDINGS)
        if self.promote_every is not None:
            check_int("promote_every", self.promote_every, 1)
            if self.promote_every % self.n:
                raise ValueError(f"promote_every must be a multiple of n={self.n}, "
                                 f"not {self.promote_every!r}")
        check_choice("promote_rounding", self.promote_rounding, NORM_ROUNDINGS)
        if self.zero_exp is not None:
            check_int("zero_exp", self.zero_exp, -4096, 4096)
        for knob in ("group", "interleave"):
            v = check_int(knob, getattr(self, knob), 1, self.n)
            if self.n % v:
                raise ValueError(f"{knob} must divide n={self.n}, not {v!r}")
        check_choice("acc_add", self.acc_add, ACC_ADDS)
        check_choice("acc_cut", self.acc_cut, CUTS)
        check_int("acc_frac_bits", self.acc_frac_bits, self.norm_frac_bits, 52)
        check_bool("acc_drop", self.acc_drop)
        check_choice("product_overflow", self.product_overflow, PRODUCT_OVERFLOWS)
        check_choice("adder", self.adder, ADDERS)
        check_bool("ftz", self.ftz)
        if self.interleave > 1 and self.acc_in_max:
            raise ValueError(f"interleave={self.interleave} needs acc_in_max=False")
        if self.interleave > 1 and self.group > 1:
            raise ValueError("interleave and group cannot both be above 1")
        if self.adder == "fp_tree" and (self.acc_format, self.norm_frac_bits,
                                        self.norm_rounding) != ("fp32", 23, "nearest_even"):
            raise ValueError("adder='fp_tree' adds in FP32 with nearest even: it needs "
                             "acc_format='fp32', norm_frac_bits=23, norm_rounding='nearest_even'")

    @property
    def emin(self):
        """Exponent of the smallest normal number of ``acc_format``."""
        return ACC_FORMATS[self.acc_format][0]

    @property
    def emax(self):
        """Exponent of the largest binade of ``acc_format``."""
        return ACC_FORMATS[self.acc_format][1]

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
    """The FP8 GEMM of an NVIDIA H100 under ``torch._scaled_mm`` (cuBLASLt, default
    accumulation): the Hopper ``wgmma ... k32`` FP8 instruction chained along K, its
    partial sum promoted into FP32 every 128 elements.

    Sources:

    * n = 32, align = "operand_sum", acc_in_max = True, frac_bits = 13, norm_frac_bits =
      13, norm_rounding = "toward_zero": the Hopper FP8 T-FDPA of Xie et al., "MMA-Sim"
      (arXiv:2511.10909; F = 13, L = 32, RZ-E8M13; validated on the GPU by its authors),
      and our H100 measurements (``tests/data/h100/README.md``: blocks of 32, alignment
      exponent E(a) + E(b), the incoming accumulator in the maximum, the sum rounded
      toward zero to 14 significant bits).  The FP22 accumulator agrees with SageAttention2
      (arXiv:2411.10958; thu-ml/SageAttention issue #287).
    * cut = "toward_zero": measured.  The terms are cut to the grid 2^(e_max - 13) by
      truncating the magnitude (sign-magnitude), not by flooring a two's-complement value
      as a reading of DeepSeek-V3 section 3.5.2 ("sign-fill right shifting") suggested:
      "floor" reproduces 188 of the 86,016 H100 results, "toward_zero" all 86,016 (and
      the MMA-Sim T-FDPA definition truncates toward zero).
    * zero_exp = -133: MMA-Sim's e_zero of the Hopper FP8 instruction.  It cannot change
      an FP8 result (every FP8 product exponent and every FP32 accumulator exponent is
      at least -126), so the hardware adder, which has no such knob, computes the same.
    * sum_bits = None: wide enough (no wrap).
    * promote_every = 128, promote_rounding = "nearest_even": measured (every 128
      elements of K cuBLAS adds the partial sum into an FP32 register, nearest even, and
      restarts from zero), as DeepSeek-V3 section 3.3.2 / DeepGEMM describe (N_C = 128).
      This is the kernel's choice, not the tensor core's: ``"h100_fp8_fast_accum"``
      (``use_fast_accum=True``) omits it, as the README of the H100 measurements states
      (those runs are held out: the shipped data is of the default accumulation only).
    """
    return SharedExpConfig(n=32, align="operand_sum", acc_in_max=True, frac_bits=13,
                           cut="toward_zero", sum_bits=None, norm_frac_bits=13,
                           norm_rounding="toward_zero", promote_every=128,
                           promote_rounding="nearest_even", zero_exp=-133, name="h100_fp8")


#: Named datapaths for :func:`gemm` (besides ``"exact"``).
PRESETS = {
    "h100_fp8": _h100_fp8(),
    "h100_fp8_fast_accum": dataclasses.replace(_h100_fp8(), promote_every=None,
                                               name="h100_fp8_fast_accum"),
}

#: Old preset names, kept as aliases: ``"h100_fp8_tc"`` (before issue 15) is the
#: instruction chain without promotion, i.e. ``"h100_fp8_fast_accum"``.
ALIASES = {"h100_fp8_tc": "h100_fp8_fast_accum"}


def get_datapath(datapath):
    """``"exact"``, a preset name (or alias) or a :class:`SharedExpConfig` -> ``"exact"``
    or a config."""
    if isinstance(datapath, SharedExpConfig):
        return datapath
    if datapath == "exact":
        return "exact"
    if isinstance(datapath, str):
        key = ALIASES.get(datapath, datapath)
        if key in PRESETS:
            return PRESETS[key]
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


def operand_fields(fmt, codes, int_frac_bits=0, ftz=False):
    """Unpack ``codes`` of ``fmt`` into :class:`Fields` (table lookup for <= 16-bit formats);
    with ``ftz`` subnormals read as +0."""
    fmt = _formats.get(fmt)
    codes = fmt.check_codes(codes)
    if fmt.bits <= 16:
        key = (fmt, int_frac_bits)
        tab = _TABLES.get(key)
        if tab is None:
            tab = _TABLES[key] = _table_fields(fmt, int_frac_bits)
        idx = codes.astype(np.intp)
        f = tab.map(lambda t: t[idx])
    else:
        f = _fields_arith(fmt, codes, int_frac_bits)
    return flush_subnormals(f, fmt) if ftz else f


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


def float_fields(x, emin=FP32_EMIN):
    """:class:`Fields` of float64 values that are exactly representable in FP32.

    ``ealign`` is the exponent field's exponent with subnormals at ``emin`` (FP32: -126;
    FP16 accumulators: -14).
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
    ealign = np.maximum(e - 1, emin).astype(np.int64)
    return Fields(neg=neg, sig=sig, lsb=np.where(zero, 0, lsb), ealign=ealign, zero=zero,
                  nan=nan, pinf=inf & ~neg, ninf=inf & neg, e=ealign)


def flush_subnormals(f, fmt):
    """Operand :class:`Fields` with every subnormal read as +0 (``ftz``)."""
    if isinstance(fmt, _formats.IntFormat) or not fmt.subnormals:
        return f
    sub = ~(f.zero | f.nan | f.pinf | f.ninf) & (f.sig < (1 << fmt.man_bits))
    if not sub.any():
        return f
    g = f.map(lambda x: x)
    g.zero = f.zero | sub
    g.neg = f.neg & ~sub
    g.sig = np.where(sub, 0, f.sig)
    return g


def scale_terms(t, s):
    """Terms ``t`` multiplied by block scales ``s`` (:class:`Fields` broadcasting against
    ``t``): significands multiplied, the scale's LSB exponent added to the LSB and its
    exponent to the alignment exponent; a NaN scale makes the term NaN, a zero scale a
    zero term (NaN for an Inf term)."""
    live_s = ~(s.zero | s.nan)
    sig = t.sig * np.where(live_s, s.sig, 1)
    nan = t.nan | s.nan | ((t.pinf | t.ninf) & s.zero)
    inf = (t.pinf | t.ninf) & ~nan
    zero = (t.zero | s.zero) & ~nan & ~inf
    return Fields(neg=t.neg, sig=np.where(zero, 0, sig), lsb=t.lsb + np.where(live_s, s.lsb, 0),
                  ealign=t.ealign + np.where(live_s, s.ealign, 0), zero=zero, nan=nan,
                  pinf=inf & ~t.neg, ninf=inf & t.neg)


def _exp_scale(scale_exp, shape):
    """Scale :class:`Fields` of plain exponents (MX/BFP ``scale_exp``): significand 1."""
    e = np.broadcast_to(np.asarray(scale_exp, dtype=np.int64), shape)
    false = np.zeros(shape, bool)
    return Fields(neg=false, sig=np.ones(shape, np.int64), lsb=e, ealign=e, zero=false,
                  nan=false, pinf=false, ninf=false, e=e)


# ---------------------------------------------------------------------------------------
# Rounding helpers

def _round_q(S, g, frac_bits, rounding, emin=FP32_EMIN):
    """Round the integer ``S * 2^g`` to ``frac_bits`` fraction bits (exponents >= emin).

    Returns ``(neg, q, t)``: the rounded magnitude is ``q * 2^t`` (q an integer below
    ``2^(frac_bits + 2)``, int64 unless ``S`` is an object array).  ``rounding``:
    ``"nearest_even"``, ``"toward_zero"`` or ``"floor"`` (toward minus infinity).
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
    t = np.maximum(Er, emin) - frac_bits
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
    elif rounding == "floor":
        q = q + (neg & (rem != 0)).astype(np.int64)
    q = q << ls
    return neg, q, np.asarray(t, dtype=np.int64)


def round_fixed(S, g, frac_bits, rounding, emin=FP32_EMIN, emax=FP32_EMAX):
    """Round ``S * 2^g`` to ``frac_bits`` fraction bits in the exponent range
    ``emin..emax`` (default FP32's).

    ``S`` is an integer array (int64 or object), ``g`` an integer array or scalar.
    Returns float64 values (exactly representable in FP32).  Overflow: +-Inf for
    nearest-even, +-max for toward-zero, +max / -Inf for floor.  Zero gives +0.
    """
    neg, q, t = _round_q(S, g, frac_bits, rounding, emin)
    # q < 2^(frac_bits + 2) and t >= emin - frac_bits: exact in float64 for frac_bits <= 52
    val = np.ldexp(np.asarray(q).astype(np.float64), t.astype(np.int32))
    fmax = (2.0 - 2.0 ** -frac_bits) * 2.0 ** emax
    over = val > fmax
    if rounding == "nearest_even":
        val = np.where(over, np.inf, val)
    elif rounding == "toward_zero":
        val = np.where(over, fmax, val)
    else:
        val = np.where(over, np.where(neg, np.inf, fmax), val)
    return np.where(neg, -val, val)


def add_round(x, y, frac_bits=23, rounding="nearest_even", emin=FP32_EMIN, emax=FP32_EMAX):
    """``x + y`` (FP32-representable float64 arrays), exactly, rounded once to
    ``frac_bits`` fraction bits (exponent range ``emin..emax``, default FP32's).  NaN/Inf
    follow IEEE 754, every NaN result is the canonical +NaN (FP32 code 0x7FC00000); an exact
    zero sum gives +0."""
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
    out = round_fixed(S, base, frac_bits, rounding, emin, emax)
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


def _live(t):
    return ~(t.zero | t.nan | t.pinf | t.ninf)


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
    return np.where(_live(t), v, 0)


def _recut(S, rs, cut):
    """Signed integers ``S`` moved ``rs >= 0`` bits right (to a coarser grid) with ``cut``."""
    S = np.asarray(S)
    neg = S < 0
    mag = np.where(neg, -S, S)
    if S.dtype == object:
        rs = np.asarray(rs).astype(object)
    else:
        rs = np.minimum(rs, 62)                  # |S| < 2^61: a longer shift changes nothing
    return _cut(mag, neg, rs, cut)


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


def _max_exp(t, zero_exp):
    """Maximum alignment exponent over the last axis (zero terms at ``zero_exp``); _NEG if
    no term takes part."""
    e = np.where(_live(t), t.ealign, _NEG)
    if zero_exp is not None:
        e = np.where(t.zero, zero_exp, e)
    return e.max(axis=-1, initial=_NEG)


def _term_width(t):
    """(significand bits, bits above the alignment exponent) of the live terms: the data
    bounds that decide between int64 and Python-integer arithmetic."""
    live = _live(t)
    if not live.any():
        return 1, 1
    sig = np.where(live, t.sig, 0)
    sb = int(sig.max()).bit_length()
    top = np.where(live, t.lsb + _bitlen(sig) - t.ealign, _NEG).max()
    return max(sb, 1), max(int(top), 1)


def _group_terms(t, G, scale):
    """Exact sums of ``G`` consecutive products, times their block scales (the scale of the
    group's first product): :class:`Fields` of ``n / G`` group terms (module docstring)."""
    shape = t.sig.shape[:-1] + (t.sig.shape[-1] // G, G)
    tg = t.map(lambda x: x.reshape(shape))
    live = _live(tg)
    lo = np.where(live, tg.lsb, -_NEG).min(axis=-1, keepdims=True)
    lo = np.where(lo == -_NEG, 0, lo)
    sh = np.where(live, tg.lsb - lo, 0)
    sb, _ = _term_width(t)
    sig = tg.sig
    if int(sh.max(initial=0)) + sb + G.bit_length() + 1 > 62:
        sig, sh = sig.astype(object), sh.astype(object)
    v = np.where(live, sig << sh, 0)
    S = np.where(tg.neg, -v, v).sum(axis=-1)
    zero = ~live.any(axis=-1)
    out = Fields(neg=S < 0, sig=np.where(S < 0, -S, S), lsb=lo[..., 0],
                 ealign=np.zeros(zero.shape, np.int64), zero=zero, nan=tg.nan.any(axis=-1),
                 pinf=tg.pinf.any(axis=-1), ninf=tg.ninf.any(axis=-1))
    out.nan = out.nan | (out.pinf & out.ninf)
    out.pinf, out.ninf = out.pinf & ~out.nan, out.ninf & ~out.nan
    out.zero = out.zero & ~(out.nan | out.pinf | out.ninf)
    if scale is not None:
        out = scale_terms(out, scale.map(lambda x: np.broadcast_to(x, t.sig.shape)
                                         .reshape(shape)[..., 0]))
    return out


def _overflow_inf(t, emax):
    """Products of magnitude >= 2^(emax + 1) become Inf of their sign."""
    live = _live(t)
    big = live & (t.lsb + _bitlen(np.where(live, t.sig, 0)) - 1 > emax)
    if not big.any():
        return t
    t = t.map(lambda x: x)
    t.pinf = t.pinf | (big & ~t.neg)
    t.ninf = t.ninf | (big & t.neg)
    t.sig = np.where(big, 0, t.sig)
    return t


def _fused_sum(t, E, F, cut, extra=None):
    """Sum of the cuts of the terms ``t`` (and of ``extra``, one more term per row) on the
    grid 2^(E - F).  Returns int64 or object integers."""
    sb, top = _term_width(t)
    n_terms = t.sig.shape[-1] + (1 if extra is not None else 0)
    if extra is not None:
        sb2, top2 = _term_width(extra.map(lambda x: x[..., None]))
        sb, top = max(sb, sb2), max(top, top2)
    obj = F + top + max(n_terms, 1).bit_length() + 1 > 62 or sb + 2 > 62
    cap = sb + 2
    S = _align(t, E[..., None], F, cut, obj, cap).sum(axis=-1)
    if extra is not None:
        S = S + _align(extra, E, F, cut, obj, cap)
    return S


def step(t, acc, cfg, scale=None):
    """One adder step over the last axis of the term :class:`Fields` ``t``.

    Parameters
    ----------
    t : Fields
        The ``cfg.n`` products of each row (:func:`product_terms`), last axis ``n``.
    acc : array of float
        The incoming accumulator (values exactly representable in ``cfg.acc_format``).
    cfg : SharedExpConfig
    scale : Fields, optional
        Block scales, one per product (broadcasting against ``t``; see
        :func:`scale_terms`).

    Returns
    -------
    numpy.ndarray of float64
        The step result, exactly representable in ``cfg.acc_format`` (NaN, +-Inf).
    """
    acc = np.broadcast_to(np.asarray(acc, dtype=np.float64), t.sig.shape[:-1])
    if cfg.adder == "fp_tree":
        return _tree_step(t, acc, cfg, scale)
    if cfg.group > 1:
        t = _group_terms(t, cfg.group, scale)
    elif scale is not None:
        t = scale_terms(t, scale)
    if cfg.product_overflow == "inf":
        t = _overflow_inf(t, cfg.emax)
    acc_f = float_fields(acc, cfg.emin)
    F = cfg.frac_bits
    if cfg.acc_in_max:
        E = _max_exp(t, cfg.zero_exp)
        ea = np.where(_live(acc_f), acc_f.ealign, _NEG)
        if cfg.zero_exp is not None:
            ea = np.where(acc_f.zero, cfg.zero_exp, ea)
        E = np.maximum(E, ea)
        E = np.where(E == _NEG, 0, E)
        S = _fused_sum(t, E, F, cfg.cut, acc_f)
    elif cfg.interleave == 1:
        E = _max_exp(t, cfg.zero_exp)
        S = _fused_sum(t, np.where(E == _NEG, 0, E), F, cfg.cut)
    else:
        I = cfg.interleave
        parts = [t.map(lambda x, j=j: x[..., j::I]) for j in range(I)]
        Es = [_max_exp(p, cfg.zero_exp) for p in parts]
        Ss = [_fused_sum(p, np.where(e == _NEG, 0, e), F, cfg.cut) for p, e in zip(parts, Es)]
        E = np.max(np.stack(Es), axis=0)
        S = 0
        for e, s in zip(Es, Ss):
            S = S + np.where(e == _NEG, 0, _recut(s, np.where(e == _NEG, 0, E - e), cfg.acc_cut))
    Ez = np.where(E == _NEG, 0, E)
    if cfg.sum_bits is not None:
        w = cfg.sum_bits
        if np.asarray(S).dtype == object:
            S = ((S + (1 << (w - 1))) % (1 << w)) - (1 << (w - 1))
        elif w < 63:
            S = ((S + (1 << (w - 1))) & ((1 << w) - 1)) - (1 << (w - 1))
    nf, nr, emin, emax = cfg.norm_frac_bits, cfg.norm_rounding, cfg.emin, cfg.emax
    if cfg.acc_in_max:
        out = round_fixed(S, Ez - F, nf, nr, emin, emax)
    elif cfg.acc_add == "round":
        out = round_fixed(S, Ez - F, nf, nr, emin, emax)
        fin = np.isfinite(out)
        summed = add_round(np.where(fin, acc, 0.0), np.where(fin, out, 0.0), nf, nr, emin, emax)
        out = np.where(fin, summed, out)
    else:
        out = _aligned_add(S, E, acc_f, cfg)
    nan, pinf, ninf = _specials(t, acc_f)
    return np.where(nan, np.nan, np.where(pinf, np.inf, np.where(ninf, -np.inf, out)))


def _acc_dropped(acc_f, alive):
    """The accumulator's fields with the dropped (not ``alive``) finite ones made zero."""
    f = acc_f.map(lambda x: x)
    f.zero = acc_f.zero | (~alive & _live(acc_f))
    return f


def _aligned_add(S, Ed, acc_f, cfg):
    """AMD's two-stage accumulator add (``acc_add="aligned"``, module docstring)."""
    F, F2 = cfg.frac_bits, cfg.acc_frac_bits
    has_dot = Ed != _NEG
    alive = _live(acc_f)
    if cfg.acc_drop:
        alive = alive & ~(has_dot & (acc_f.ealign < Ed - (F + 1)))
    E = np.maximum(Ed, np.where(alive, acc_f.ealign, _NEG))
    E = np.where(E == _NEG, 0, E)
    Edz = np.where(has_dot, Ed, E)
    # the dot sum, on the grid 2^(Ed - F), moves to the grid 2^(E - F2 - 1); the
    # accumulator is cut to the grid 2^(E - F); both then sit on the finer of the two
    S = np.where(has_dot, S, 0)
    d = (E - (F2 + 1)) - (Edz - F)
    lo = np.minimum(E - (F2 + 1), E - F)
    sd, sc = E - (F2 + 1) - lo, E - F - lo
    mags = np.abs(S)
    need = int(mags.max(initial=0)).bit_length() + int(np.maximum(-d, 0).max(initial=0)) \
        + int(np.maximum(sd, sc).max(initial=0)) + 2
    obj = np.asarray(S).dtype == object or need > 62 or F + int(sc.max(initial=0)) + 3 > 62
    if obj:
        S = np.asarray(S).astype(object)
        left = np.maximum(-d, 0).astype(object)
        Dv = np.where(d >= 0, _recut(S, np.maximum(d, 0), cfg.acc_cut), S * (1 << left))
        Cv = _align(_acc_dropped(acc_f, alive), E, F, cfg.acc_cut, True, 28)
        T = Dv * (1 << sd.astype(object)) + Cv * (1 << sc.astype(object))
    else:
        Dv = np.where(d >= 0, _recut(S, np.maximum(d, 0), cfg.acc_cut), S << np.maximum(-d, 0))
        Cv = _align(_acc_dropped(acc_f, alive), E, F, cfg.acc_cut, False, 28)
        T = (Dv << sd) + (Cv << sc)
    neg, q, t = _round_q(T, lo, F2, cfg.acc_cut, cfg.emin)
    q = np.where(neg, -q, q)
    return round_fixed(q, t, cfg.norm_frac_bits, cfg.norm_rounding, cfg.emin, cfg.emax)


def _tree_step(t, acc, cfg, scale):
    """``adder="fp_tree"``: FP32 products, a pairwise tree of FP32 nearest-even additions,
    then the accumulator (IEEE 754 arithmetic; ``ftz`` flushes subnormal results)."""
    if scale is not None:
        t = scale_terms(t, scale)
    live = _live(t)
    mag = np.ldexp(np.where(live, t.sig, 0).astype(np.float64),
                   np.where(live, t.lsb, 0).astype(np.int32))
    v = np.where(t.neg, -mag, mag)
    v = np.where(t.nan, np.nan, np.where(t.pinf, np.inf, np.where(t.ninf, -np.inf, v)))
    tiny = np.float64(2.0 ** FP32_EMIN)

    def fp32(x):
        # float64 -> float32 is one nearest-even rounding; a float64 sum of two FP32
        # values rounded to FP32 is the correctly rounded FP32 sum (Figueroa 1995:
        # 53 >= 2 * 24 + 2 bits make the double rounding innocuous)
        with np.errstate(over="ignore", invalid="ignore"):
            y = x.astype(np.float32).astype(np.float64)
        if cfg.ftz:
            y = np.where((y != 0) & (np.abs(y) < tiny), np.copysign(0.0, y), y)
        return y

    v = fp32(v)
    while v.shape[-1] > 1:
        odd = v.shape[-1] % 2
        with np.errstate(invalid="ignore"):
            s = fp32(v[..., 0:v.shape[-1] - odd:2] + v[..., 1::2][..., :v.shape[-1] // 2])
        v = np.concatenate([s, v[..., -1:]], axis=-1) if odd else s
    a = fp32(acc)
    with np.errstate(invalid="ignore"):
        return fp32(a + v[..., 0])


def _operands(fmt, codes, int_frac_bits, cfg):
    """Operand fields, with subnormals read as +0 when ``cfg.ftz``."""
    return operand_fields(fmt, codes, int_frac_bits, cfg.ftz)


def _terms(a_codes, b_codes, a_format, b_format, cfg, int_frac_bits):
    a_fmt = _formats.get(a_format)
    fa = _operands(a_fmt, a_codes, int_frac_bits[0], cfg)
    if b_format is None:
        t = value_terms(fa, cfg.align)
    else:
        b_fmt = _formats.get(b_format)
        fb = _operands(b_fmt, b_codes, int_frac_bits[1], cfg)
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
        Running accumulator, values of shape ``(...)`` exactly representable in
        ``config.acc_format`` (default +0).
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
    scale = None
    if scale_exp is not None:
        scale = _exp_scale(np.asarray(scale_exp, dtype=np.int64)[..., None], t.sig.shape)
    acc = np.zeros(t.sig.shape[:-1]) if acc is None else np.asarray(acc, dtype=np.float64)
    return step(t, acc, cfg, scale).astype(np.float32)


def chain(get_terms, nsteps, cfg, shape, acc=None):
    """Chain adder steps (module docstring, "Long dot products").

    ``get_terms(i)`` returns the term :class:`Fields` of step ``i`` and its scale
    :class:`Fields` (or ``None``).  ``acc`` (float64 of ``shape``, default +0) is the
    initial accumulator: the first step's with ``promote_every=None``, else the initial
    value of the FP32 accumulator that the partial sums are promoted into.  Returns
    float64 values.
    """
    zeros = np.zeros(shape, dtype=np.float64)
    acc = zeros if acc is None else np.broadcast_to(np.asarray(acc, dtype=np.float64), shape)
    per = None if cfg.promote_every is None else cfg.promote_every // cfg.n
    part = acc if per is None else zeros
    total = acc
    pending = False
    for i in range(nsteps):
        t, scale = get_terms(i)
        part = step(t, part, cfg, scale)
        pending = True
        if per is not None and (i + 1) % per == 0:
            total = add_round(total, part, 23, cfg.promote_rounding)
            part = zeros
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
                   scale_exp=None, acc=None):
    """Dot products along ``axis`` through a chained shared-exponent adder.

    The axis is cut into steps of ``config.n`` terms (the last zero-padded: padding codes
    are 0 = +0).  ``scale_exp`` (optional, shape of the operands with ``axis`` of length
    K / n) adds an exponent to every term of a step.  ``acc`` (optional, the broadcast
    shape without ``axis``) is the initial accumulator (see :func:`chain`).  Returns
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
    fa = _operands(a_fmt, a, ifb[0], cfg)
    fb = _operands(b_fmt, b, ifb[1], cfg) if b is not None else None
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
        scale = None if sc is None else _exp_scale(sc[..., i][..., None], t.sig.shape)
        return t, scale

    return chain(get_terms, nsteps, cfg, shape, acc).astype(np.float32)

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
    # keepdims: the object-integer path needs arrays (a 0-d sum would be a Python int)
    S = v.sum(axis=-1, keepdims=True)
    out = round_fixed(S, qmin, 23, "nearest_even")[..., 0]
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



def epilogue(acc, scale_a=1.0, scale_b=1.0, out_format="fp32", codes=False):
    """The GEMM epilogue of cuBLASLt under ``torch._scaled_mm`` (module docstring).

    ``alpha = fp32(fp32(scale_a) * fp32(scale_b))`` (nearest even) multiplies the FP32
    results ``acc`` once (nearest even); ``out_format="bf16"`` then rounds to bfloat16
    (nearest even).  Returns float32 values, or with ``codes=True`` the bit patterns
    (uint32 for ``"fp32"``, uint16 for ``"bf16"``).  Source: our H100 measurements
    (``tests/data/h100/README.md``).
    """
    check_number("scale_a", scale_a)
    check_number("scale_b", scale_b)
    check_choice("out_format", out_format, OUT_FORMATS)
    check_bool("codes", codes)
    y = np.asarray(acc, dtype=np.float32)
    sa, sb = np.float32(scale_a), np.float32(scale_b)
    with np.errstate(over="ignore", invalid="ignore"):
        # both products are exact in float64 (24 x 24 bits); one rounding to FP32 each
        alpha = np.float32(np.float64(sa) * np.float64(sb))
        if alpha != 1:
            y = (y.astype(np.float64) * np.float64(alpha)).astype(np.float32)
    if out_format == "bf16":
        c = _formats.bf16.encode(y)
        return c if codes else _formats.bf16.decode(c).astype(np.float32)
    return y.view(np.uint32).copy() if codes else y


def gemm(a_codes, b_codes, a_format, b_format, datapath="exact", *, scale_a=1.0, scale_b=1.0,
         out_format="fp32", codes=False, int_frac_bits=0, row_block=None):
    """Matrix product of code matrices through a datapath, as ``torch._scaled_mm`` sets it up.

    Parameters
    ----------
    a_codes : array of int, shape (M, K)
    b_codes : array of int, shape (K, N)
    a_format, b_format : str or Format
        Formats of the codes (by name).
    datapath : str or SharedExpConfig
        ``"exact"`` (exact sum of all K products rounded once to FP32, nearest-even), a
        preset name -- ``"h100_fp8"`` (H100, default accumulation: FP32 promotion every
        128), ``"h100_fp8_fast_accum"`` (``use_fast_accum=True``: no promotion);
        ``"h100_fp8_tc"`` is an old alias of the latter -- or a :class:`SharedExpConfig`:
        each output is :func:`shared_exp_dot` of its row and column.
    scale_a, scale_b : float
        Per-tensor scales (read as FP32); the epilogue multiplies the FP32 sum by
        ``fp32(scale_a * scale_b)`` once (:func:`epilogue`).
    out_format : str
        ``"fp32"`` or ``"bf16"`` (nearest-even rounding of the FP32 result).
    codes : bool
        Return bit patterns (uint32 for fp32, uint16 for bf16) instead of float32 values
        (the bf16 results are returned as their exact float32 values by default).
    int_frac_bits : int or (int, int)
        Fraction bits of integer operands.
    row_block : int, optional
        Rows per chunk of the integer path (memory/speed trade-off).

    Returns
    -------
    numpy.ndarray, shape (M, N)
        float32 values, or uint32/uint16 codes with ``codes=True``.

    Notes
    -----
    ``"exact"`` runs float64 BLAS products on exponent bands of the operands, chosen so
    that every partial sum is an exactly representable float64 (so the BLAS order of
    summation does not matter), then adds the band results exactly as integers and
    rounds once.  A configured datapath with operands of at most 8 bits runs in float64
    arithmetic wherever that is exact (:func:`_gemm_fast`); otherwise the adder chain
    runs step by step, vectorised over all M x N outputs.
    """
    cfg = get_datapath(datapath)
    check_number("scale_a", scale_a)
    check_number("scale_b", scale_b)
    check_choice("out_format", out_format, OUT_FORMATS)
    check_bool("codes", codes)
    ifb = _frac_pair(int_frac_bits)
    a_fmt = _formats.get(a_format)
    b_fmt = _formats.get(b_format)
    A = np.asarray(a_codes)
    B = np.asarray(b_codes)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"a_codes and b_codes must be M x K and K x N, not {A.shape} and {B.shape}")
    if cfg == "exact":
        out = _gemm_exact(A, B, a_fmt, b_fmt, ifb)
    else:
        out = _gemm_fast(A, B, a_fmt, b_fmt, cfg, ifb)
        if out is None:
            out = _gemm_steps(A, B, a_fmt, b_fmt, cfg, ifb, row_block)
    return epilogue(out, scale_a, scale_b, out_format, codes)


def _gemm_steps(A, B, a_fmt, b_fmt, cfg, ifb, row_block):
    """The configured datapath through :func:`chain`, vectorised over row blocks."""
    M, K = A.shape
    N = B.shape[1]
    if row_block is None:
        row_block = max(1, (1 << 21) // max(1, N * cfg.n))
    out = np.empty((M, N), dtype=np.float32)
    fa_all = _operands(a_fmt, pad_last(A, cfg.n), ifb[0], cfg)
    fb_all = _operands(b_fmt, pad_last(B.T, cfg.n), ifb[1], cfg)
    n = cfg.n
    nsteps = fa_all.sig.shape[-1] // n
    fb3 = fb_all.map(lambda x: x[None, :, :])
    for r0 in range(0, M, row_block):
        fa3 = fa_all.map(lambda x: x[r0:r0 + row_block, None, :])

        def get_terms(i, fa3=fa3):
            sl = (Ellipsis, slice(i * n, (i + 1) * n))
            return product_terms(fa3.map(lambda x: x[sl]), fb3.map(lambda x: x[sl]),
                                 cfg.align), None

        rows = fa3.sig.shape[0]
        out[r0:r0 + rows] = chain(get_terms, nsteps, cfg, (rows, N)).astype(np.float32)
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
        # one band pair: the float64 sum is exact, its cast to FP32 the one rounding (a
        # negative sum that underflows gives -0); an exact zero (also -0 * x) gives +0
        res = parts[0]
        res = np.where(res == 0, 0.0, res)
    else:
        # add the (exact) band results exactly and round once; round_fixed gives +0 for an
        # exact zero and keeps the sign of a non-zero sum that underflows (-0), as exact_dot
        P = np.stack(parts, axis=-1)
        res = _exact_sum(_float64_fields(P))
    out = res.astype(np.float32)
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


# ---------------------------------------------------------------------------------------
# Float fast paths: the same arithmetic in exact floating point, for operands of <= 8 bits

_CODE_TABLES = {}
_ZERO_E = -64              # int8 exponent sentinel of zero operands (two of them: -128)
_ZERO_E16 = -16384         # int16 sentinel: below every live sum (two of them: -32768)


def _code_table(fmt, int_frac_bits):
    """Per code of a format of at most 8 bits: exact value (float64), alignment exponent
    (int16, zeros and specials at ``_ZERO_E16``) and whether the code is NaN/Inf."""
    key = (fmt, int_frac_bits)
    tab = _CODE_TABLES.get(key)
    if tab is None:
        f = operand_fields(fmt, fmt.all_codes(), int_frac_bits)
        special = f.nan | f.pinf | f.ninf
        live = ~(f.zero | special)
        v = np.ldexp(np.where(live, f.sig, 0).astype(np.float64), f.lsb.astype(np.int32))
        v = np.where(f.neg, -v, v)
        e = np.where(live, f.ealign, _ZERO_E16).astype(np.int16)
        tab = (v, e, special, (int(f.ealign[live].min()), int(f.ealign[live].max())))
        _CODE_TABLES[key] = tab
    return tab


def _fast_kind(cfg, a_fmt, b_fmt, ifb):
    """The float dtype in which the fast paths compute ``cfg`` exactly, or None.

    Conditions: operands of at most 8 bits (their products have at most 16 significant
    bits and exponents in -64..64); a fused adder on single products, the accumulator in
    the maximum or added by the rounding adder; no flushing; ``zero_exp`` (if any) below
    every exponent that a non-zero product or accumulator can have, so that it cannot
    change a maximum.  float32 holds every cut term and the integer sum exactly when
    they need at most 24 bits (cuts other than floor: a product below float32's range is
    cut to 0 whatever its rounding), float64 when they need at most 53.
    """
    if a_fmt.bits > 8 or b_fmt.bits > 8:
        return None
    if (cfg.adder, cfg.group, cfg.interleave, cfg.acc_add, cfg.ftz) != \
            ("fused", 1, 1, "round", False):
        return None
    if cfg.product_overflow == "inf" and cfg.acc_format != "fp32":
        return None
    (_, _, _, ra), (_, _, _, rb) = _code_table(a_fmt, ifb[0]), _code_table(b_fmt, ifb[1])
    if cfg.zero_exp is not None and cfg.zero_exp >= min(ra[0] + rb[0], cfg.emin):
        return None
    tb = cfg.term_bound(a_fmt, b_fmt)
    bits = cfg.frac_bits + tb + (cfg.n + 1).bit_length()
    if bits <= 24 and cfg.cut != "floor":
        return np.float32
    if bits + 1 <= 53:
        return np.float64
    return None


def _exp_tables(ea_t, eb_t, ra, rb):
    """The operands' exponent tables in the narrowest integer type that keeps the
    sentinel of zero operands apart: int8 (sentinel ``_ZERO_E``) when every sum with a
    zero operand lies below every live sum and all fit, else int16 (``_ZERO_E16``).
    Returns ``(ea, eb, dtype, none_below, ptab)``: exponent sums at or below
    ``none_below`` have a zero operand; ``ptab`` maps int8 sums to ``2^sum`` (None for
    int16)."""
    if _ZERO_E + max(ra[1], rb[1]) < ra[0] + rb[0] and max(ra[1], rb[1]) <= 63:
        zs, edt = _ZERO_E, np.int8
    else:
        zs, edt = _ZERO_E16, np.int16
    ea = np.where(ea_t == _ZERO_E16, zs, ea_t).astype(edt)
    eb = np.where(eb_t == _ZERO_E16, zs, eb_t).astype(edt)
    none_below = zs + max(ra[1], rb[1])
    ptab = _pow2_table(none_below, ra[1] + rb[1]) if edt == np.int8 else None
    return ea, eb, edt, none_below, ptab


def _round_float(v, frac_bits, rounding, emin=FP32_EMIN, emax=FP32_EMAX, tiny=True, over=True,
                 plus_zero=True):
    """:func:`round_fixed` of exact, finite float64 values (bit operations on the float64
    pattern where the result is normal, an integer rounding on the subnormal grid below
    ``2^emin``).  ``tiny=False`` / ``over=False`` promise that no value lies below
    ``2^emin`` / that no result can exceed the format's range.  Zero results are +0
    (``plus_zero=False``: a -0 may stay, for callers that add +0 at the end)."""
    v = np.asarray(v, dtype=np.float64)
    u = v.view(np.uint64)
    sh = 52 - frac_bits
    low = np.uint64((1 << sh) - 1)
    if rounding == "toward_zero":
        r = u & ~low
    else:
        r = (u + np.uint64((1 << (sh - 1)) - 1) + ((u >> np.uint64(sh)) & np.uint64(1))) & ~low
    out = r.view(np.float64)
    if tiny:
        small = np.abs(v) < 2.0 ** emin
        if small.any():
            q = v * 2.0 ** (frac_bits - emin)
            q = np.trunc(q) if rounding == "toward_zero" else np.rint(q)
            out = np.where(small, q * 2.0 ** (emin - frac_bits), out)
    if over:
        fmax = (2.0 - 2.0 ** -frac_bits) * 2.0 ** emax
        big = np.abs(out) > fmax
        if big.any():
            out = np.where(big, np.copysign(fmax if rounding == "toward_zero" else np.inf, v),
                           out)
    return out + 0.0 if plus_zero else out


def _promote(total, part, rounding):
    """The FP32 promotion add (nearest even: one float64 addition rounded to FP32 is the
    correctly rounded FP32 sum, 53 >= 2 * 24 + 2; Figueroa 1995)."""
    if rounding == "nearest_even":
        with np.errstate(over="ignore", invalid="ignore"):
            return (total + part).astype(np.float32).astype(np.float64)
    return add_round(total, part, 23, rounding)


_EXP_BITS = np.uint64(0x7FF0000000000000)


def _max_pow(E, table, none_below):
    """``2^E`` (float64) of the maximum exponent sums ``E`` (int8 via ``table``, int16
    directly); 0 where no product is live."""
    if table is not None:
        return np.take(table, E.view(np.uint8))
    E = E.astype(np.int32)
    return np.where(E <= none_below, 0.0, np.ldexp(1.0, np.maximum(E, -1000)))


def _pow_of(m):
    """``2^floor(log2 m)`` of non-negative finite floats (0 for 0), as float64."""
    m = np.asarray(m, dtype=np.float64)
    return (m.view(np.uint64) & _EXP_BITS).view(np.float64)


def _pow2_table(lo, hi):
    """float64 ``2^e`` for int8 exponent sums (indexed by their uint8 bit pattern); the
    sentinel sums of zero operands (at or below ``lo``) map to 0."""
    e = np.arange(256)
    e = np.where(e >= 128, e - 256, e)
    return np.where(e > lo, np.ldexp(1.0, np.clip(e, -1000, hi)), 0.0)


def _fast_step(t, P, part, cfg, dt, tb, acc_floor):
    """One adder step in exact float arithmetic (:func:`_fast_kind`).

    ``t``: the products, shape ``(n, ...)``, dtype ``dt`` (overwritten), or a function
    ``(inv, f32) -> S`` that sums the products cut on the grid ``inv = 2^(F - E)`` itself
    (:func:`lowbit.models.jit.grid_sum`; ``f32``: whether float32 holds the scaled
    products, else float64 is needed); ``P``: ``2^E`` of
    the products' maximum alignment exponent (float64, 0 where no product is live);
    ``part``: the incoming accumulator (float64, finite).  ``acc_floor``: whether the
    accumulator's exponent must be clamped to ``cfg.emin`` (its subnormals); without it
    the float64 exponent of a subnormal accumulator is used, which gives the same result
    when every product exponent is at least ``emin`` (the accumulator then either loses
    the maximum or is the only live term, exact on either grid).  Returns float64.
    """
    F = cfg.frac_bits
    special = ~np.isfinite(part)
    if special.any():
        # an Inf/NaN accumulator (an earlier overflow) stays: the products are finite here
        out = _fast_step(t, P, np.where(special, 0.0, part), cfg, dt, tb, acc_floor)
        return np.where(special, part, out)
    if cfg.acc_in_max:
        a2 = (part.view(np.uint64) & _EXP_BITS).view(np.float64)     # 2^exponent(|part|)
        if acc_floor:
            a2 = np.where(part == 0, 0.0, np.maximum(a2, 2.0 ** cfg.emin))
        P = np.maximum(P, a2)
    lo = float(P.min())
    if lo == 0:
        P = np.where(P == 0, 1.0, P)                   # no live term: every cut gives 0
        lo = float(P.min())
    hi = float(P.max())
    inv = 2.0 ** F / P                                 # the grid scale 2^(F - E), exact
    f32 = dt == np.float32 and 2.0 ** F / hi >= 2.0 ** -126 and 2.0 ** F / lo <= 2.0 ** 120
    if callable(t):
        S = t(inv, f32).astype(np.float64, copy=False)
    elif f32:
        t *= inv.astype(np.float32)
        S = np.add.reduce(_cut_float(t, cfg.cut, out=t), axis=0).astype(np.float64)
    else:
        S = np.add.reduce(_cut_float(t.astype(np.float64) * inv, cfg.cut), axis=0)
    if cfg.acc_in_max:
        S += _cut_float(part * inv, cfg.cut)
    if cfg.sum_bits is not None and cfg.sum_bits < 53:
        w = float(2 ** cfg.sum_bits)
        S = np.mod(S + w / 2, w) - w / 2
    v = S * (P * 2.0 ** -F)
    # |S| >= 1 when non-zero and |S| < 2^(F + tb + bitlen(n + 1)): range checks from P
    out = _round_float(v, cfg.norm_frac_bits, cfg.norm_rounding, cfg.emin, cfg.emax,
                       tiny=lo * 2.0 ** -F < 2.0 ** cfg.emin,
                       over=hi * 2.0 ** (tb + (cfg.n + 1).bit_length()) > 2.0 ** cfg.emax,
                       plus_zero=False)
    if not cfg.acc_in_max:
        fin = np.isfinite(out)
        summed = add_round(np.where(fin, part, 0.0), np.where(fin, out, 0.0),
                           cfg.norm_frac_bits, cfg.norm_rounding, cfg.emin, cfg.emax)
        out = np.where(fin, summed, out)
    return out


def _cut_float(x, cut, out=None):
    """The cut of :func:`_cut` on exact float values (integers result, exact)."""
    if cut == "toward_zero":
        return np.trunc(x, out=out)
    if cut == "floor":
        return np.floor(x, out=out)
    if cut == "nearest_even":
        return np.rint(x, out=out)
    y = np.trunc(np.abs(x) * 2.0)              # magnitude with its guard bit
    q = np.floor(y * 0.5)
    guard = y - 2.0 * q
    m = q + guard * np.mod(q, 2.0)
    r = np.copysign(m, x) * (x != 0)
    if out is not None:
        out[...] = r
        return out
    return r


def _gemm_fast(A, B, a_fmt, b_fmt, cfg, ifb):
    """The configured-datapath gemm in exact float arithmetic (:func:`_fast_kind`).

    Per step of ``n`` products and a block of rows: the maximum exponent of every output
    from an integer tensor of exponent sums, the products as a float tensor (exact),
    scaled to the grid, cut (trunc/floor/rint) and summed over the step (exact integers),
    normalised by :func:`_round_float`.  Returns float32 (M x N), or None when
    :func:`_fast_kind` says no or an operand is NaN/Inf (then the integer path runs); the
    paths are compared in the tests.
    """
    dt = _fast_kind(cfg, a_fmt, b_fmt, ifb)
    if dt is None:
        return None
    va_t, ea_t, spa, ra = _code_table(a_fmt, ifb[0])
    vb_t, eb_t, spb, rb = _code_table(b_fmt, ifb[1])
    A = np.asarray(A).astype(np.intp)
    B = np.asarray(B).astype(np.intp)
    if spa[A].any() or spb[B].any():
        return None
    ea_t, eb_t, edt, none_below, ptab = _exp_tables(ea_t, eb_t, ra, rb)
    acc_floor = ra[0] + rb[0] < cfg.emin
    tb = cfg.term_bound(a_fmt, b_fmt)
    M, K = A.shape
    N = B.shape[1]
    n = cfg.n
    Ap = pad_last(A, n)                            # M x Kp
    BpT = pad_last(B.T, n)                         # N x Kp
    nsteps = Ap.shape[1] // n
    VA = va_t[Ap].astype(dt).T.copy()              # Kp x M
    VB = vb_t[BpT].astype(dt).T.copy()             # Kp x N
    EA = ea_t[Ap].T.copy()
    EB = eb_t[BpT].T.copy()
    per = None if cfg.promote_every is None else cfg.promote_every // n
    out = np.empty((M, N), np.float32)
    R = max(1, min(M, (1 << 19) // max(1, n * N)))    # a tensor of about 2 MB
    # the compiled grid sum (models/jit.py) replaces the product tensor and its passes
    use_jit = _jit.enabled() and cfg.align == "operand_sum" and cfg.cut in _jit.CUTS
    T = None if use_jit else np.empty((n, R, N), dt)
    TE = np.empty((n, R, N), edt)
    wide = {}                                      # float64 copies for steps that need them

    def grid(i, r0, r1):
        ks = slice(i * n, (i + 1) * n)

        def s(inv, f32):
            if f32 or dt == np.float64:
                va, vb = VA, VB
            else:
                if not wide:
                    wide.update(a=VA.astype(np.float64), b=VB.astype(np.float64))
                va, vb = wide["a"], wide["b"]
            return _jit.grid_sum(va[ks, r0:r1], vb[ks], inv.astype(va.dtype), cfg.cut)
        return s
    for r0 in range(0, M, R):
        r1 = min(M, r0 + R)
        rows = r1 - r0
        t = None if use_jit else T[:, :rows]
        te = TE[:, :rows]
        part = np.zeros((rows, N))
        total = np.zeros((rows, N))
        pending = False
        for i in range(nsteps):
            ks = slice(i * n, (i + 1) * n)
            if use_jit:
                t = grid(i, r0, r1)
            else:
                # einsum's outer-product loop is faster than a broadcasting multiply here
                np.einsum("kr,kn->krn", VA[ks, r0:r1], VB[ks], out=t)
            if cfg.align == "operand_sum":
                np.add(EA[ks, r0:r1, None], EB[ks, None, :], out=te)
                P = _max_pow(np.maximum.reduce(te, axis=0), ptab, none_below)
            else:
                P = _pow_of(np.maximum.reduce(np.abs(t), axis=0))
            part = _fast_step(t, P, part, cfg, dt, tb, acc_floor)
            pending = True
            if per is not None and (i + 1) % per == 0:
                total = _promote(total, part, cfg.promote_rounding)
                part = np.zeros((rows, N))
                pending = False
        if per is None:
            res = part + 0.0                           # a zero result is +0
        else:
            res = _promote(total, part, cfg.promote_rounding) if pending else total
        out[r0:r1] = res
    return out


def fused_dot_fast(a_codes, b_codes, a_format, b_format, config, acc=None, int_frac_bits=0):
    """Chained adder steps over the last axis of ``a_codes`` / ``b_codes`` (shape
    ``(V, K)``, K a multiple of ``config.n``) in exact float arithmetic, for the
    configurations :func:`_fast_kind` accepts; ``acc`` (V,), finite and exactly
    representable in ``config.acc_format``, is the first step's accumulator
    (``promote_every`` is ignored).  Rows with a NaN/Inf operand run through
    :func:`shared_exp_dot`.  Returns float64 (V,), or None when the configuration or the
    inputs do not qualify.
    """
    cfg = get_datapath(config)
    ifb = _frac_pair(int_frac_bits)
    a_fmt, b_fmt = _formats.get(a_format), _formats.get(b_format)
    dt = _fast_kind(cfg, a_fmt, b_fmt, ifb)
    if dt is None:
        return None
    a = np.asarray(a_codes)
    b = np.asarray(b_codes)
    if a.ndim != 2 or a.shape != b.shape or a.shape[1] % cfg.n:
        return None
    V, K = a.shape
    acc = np.zeros(V) if acc is None else np.asarray(acc, dtype=np.float64)
    if not np.isfinite(acc).all():
        return None
    va_t, ea_t, spa, ra = _code_table(a_fmt, ifb[0])
    vb_t, eb_t, spb, rb = _code_table(b_fmt, ifb[1])
    a_fmt.check_codes(a)
    b_fmt.check_codes(b)
    ea_t, eb_t, edt, none_below, ptab = _exp_tables(ea_t, eb_t, ra, rb)
    acc_floor = ra[0] + rb[0] < cfg.emin
    tb = cfg.term_bound(a_fmt, b_fmt)
    va_t, vb_t = va_t.astype(dt), vb_t.astype(dt)
    n = cfg.n
    out = np.empty(V)
    bad = np.zeros(V, bool)
    chunk = 1 << 13
    for v0 in range(0, V, chunk):
        v1 = min(V, v0 + chunk)
        aT = a[v0:v1].T.astype(np.intp, order="C")      # K x rows
        bT = b[v0:v1].T.astype(np.intp, order="C")
        bad[v0:v1] = (spa[aT] | spb[bT]).any(axis=0)
        part = acc[v0:v1]
        for i in range(K // n):
            ks = slice(i * n, (i + 1) * n)
            t = va_t[aT[ks]]
            t *= vb_t[bT[ks]]
            if cfg.align == "operand_sum":
                te = ea_t[aT[ks]]
                te += eb_t[bT[ks]]
                P = _max_pow(np.maximum.reduce(te, axis=0), ptab, none_below)
            else:
                P = _pow_of(np.maximum.reduce(np.abs(t), axis=0))
            part = _fast_step(t, P, part, cfg, dt, tb, acc_floor)
        out[v0:v1] = part + 0.0                        # a zero result is +0
    if bad.any():
        idx = np.nonzero(bad)[0]
        one = dataclasses.replace(cfg, promote_every=None)
        out[idx] = shared_exp_dot(a[idx], b[idx], a_fmt, b_fmt, one, int_frac_bits=ifb,
                                  acc=acc[idx]).astype(np.float64)
    return out
