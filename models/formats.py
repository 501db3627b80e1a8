"""Number formats: the single, bit-exact definition of every format lowbit knows.

Every other part of lowbit (the MAC and MX models, the Amaranth generators, the
co-simulation benches, the cost reports) builds on the objects defined here, so a
width or a bias is written down exactly once.

Two kinds of format exist:

:class:`FloatFormat`
    sign (optional), ``exp_bits`` exponent bits with a ``bias`` and ``man_bits``
    mantissa (fraction) bits, plus a special-value convention:

    ``"ieee"``   all-ones exponent: mantissa 0 is +-Inf, anything else NaN (IEEE 754;
                 OCP E5M2, FP16, BF16, FP32).
    ``"fn"``     no Inf; the single mantissa pattern all-ones with exponent all-ones is
                 NaN, every other pattern is finite (OCP E4M3: S.1111.111 is NaN, max
                 S.1111.110 = 448).  For an unsigned format with no mantissa (E8M0)
                 this makes 0xFF the NaN.
    ``"fnuz"``   no Inf, no negative zero: the pattern 1.000...0 (the would-be -0) is the
                 only NaN and every other pattern is finite (Graphcore/AMD FNUZ;
                 ``float8_e4m3fnuz`` max 240).
    ``"finite"`` no Inf and no NaN at all: every pattern is a number (OCP MX FP6 E2M3 /
                 E3M2 and FP4 E2M1).

    A format with ``subnormals=False`` has no zero and no subnormals: exponent field 0
    is an ordinary binade (E8M0: 0x00 = 2^-127).

:class:`IntFormat`
    two's-complement signed or unsigned integers of 2..64 bits.

Sources: OCP 8-bit Floating Point Specification (OFP8) rev 1.0 and Micikevicius et
al., "FP8 Formats for Deep Learning", arXiv:2209.05433, Table 1 (E4M3/E5M2); OCP
Microscaling Formats (MX) v1.0 section 5 (E2M3, E3M2, E2M1, E8M0); the ml_dtypes
README (FNUZ variants); IEEE 754-2019 (FP16, FP32) and the bfloat16 definition (8
exponent bits, 7 fraction bits, FP32's bias).

Encoding (float -> code)
------------------------
``fmt.encode(x, rounding="nearest_even", saturate=False, random_bits=None, sr_bits=8)``
rounds a float32/float64 array once, exactly (float32 inputs are widened to float64
without loss; the rounding is computed on the exact value, never through an
intermediate format):

``"nearest_even"``  round to nearest, ties to even (IEEE roundTiesToEven).
``"toward_zero"``   truncate the magnitude (IEEE roundTowardZero).
``"stochastic"``    the scheme the hardware uses: the magnitude is cut to ``sr_bits``
                    (= N) bits below the target's least significant bit (bits further down
                    are dropped), N uniform random bits ``r`` are added at those positions
                    and the result is truncated: ``q = floor((floor(|x|/ulp * 2^N) + r) /
                    2^N)``.  For ``|x|/ulp = i + f`` with ``f`` a multiple of ``2^-N`` the
                    probability of rounding up is exactly ``f``.  ``random_bits`` is either
                    an integer array (values in ``0 .. 2^N - 1``, one per element) or a
                    :class:`numpy.random.Generator` from which they are drawn.

Rounding happens in the unbounded exponent range first; a result larger than
``max`` overflows.  Under ``"toward_zero"`` finite overflow gives +-max, as IEEE 754
section 7.4 says for roundTowardZero.  Otherwise overflow with ``saturate=False``
follows the format's convention:
Inf for ``"ieee"``, NaN for ``"fn"``/``"fnuz"``, and +-max for ``"finite"`` formats
(they have neither; this matches ml_dtypes and the MX specification's clamping).
With ``saturate=True`` finite overflow *and* +-Inf become +-max.  NaN in gives NaN
out (a format without NaN raises ``ValueError``).  Negative inputs of an unsigned
float format (E8M0), and zero for a format without zero, give NaN; non-zero values
that round to zero in a format without zero give its smallest value.  FNUZ formats
encode every zero result as +0.

Integer formats round the same way to an integer (stochastic rounding on the two's
complement value: ``floor((floor(x * 2^N) + r) / 2^N)``).  Overflow with
``saturate=False`` wraps modulo 2^bits, as two's-complement hardware does; with
``saturate=True`` it clamps.  NaN and (without saturation) Inf raise ``ValueError``.

Decoding (code -> value)
------------------------
``fmt.decode(codes)`` takes an integer array of bit patterns (values in
``0 .. 2^bits - 1``) and returns float64 values, exactly (NaN for NaN patterns).
:class:`IntFormat` returns int64 (uint64 for ``uint64``) so that 64-bit values stay
exact.
"""

import dataclasses
import re

import numpy as np

__all__ = [
    "Format", "FloatFormat", "IntFormat", "ROUNDINGS", "SPECIALS",
    "get", "names", "float_format", "int_format",
    "int4", "int8", "uint8", "int16", "int32",
    "e4m3", "e5m2", "e4m3fnuz", "e5m2fnuz", "e2m3", "e3m2", "e2m1", "e8m0",
    "bf16", "fp16", "fp32",
]

#: The rounding modes every ``encode`` accepts.
ROUNDINGS = ("nearest_even", "toward_zero", "stochastic")

#: The special-value conventions of :class:`FloatFormat`.
SPECIALS = ("ieee", "fn", "fnuz", "finite")

_MAX_SR_BITS = 32


def _code_dtype(bits):
    for width, dtype in ((8, np.uint8), (16, np.uint16), (32, np.uint32), (64, np.uint64)):
        if bits <= width:
            return np.dtype(dtype)
    raise AssertionError(bits)


def _check_rounding(rounding):
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, not {rounding!r}")


def _random_bits(random_bits, sr_bits, shape):
    """Validate/draw the random bits of stochastic rounding; returns an int64 array."""
    if isinstance(sr_bits, bool) or not isinstance(sr_bits, (int, np.integer)) \
            or not 1 <= sr_bits <= _MAX_SR_BITS:
        raise ValueError(f"sr_bits must be an integer from 1 to {_MAX_SR_BITS}, not {sr_bits!r}")
    if random_bits is None:
        raise ValueError("random_bits must be given for stochastic rounding: an integer array of "
                         f"values 0..2**sr_bits-1 or a numpy.random.Generator")
    if isinstance(random_bits, np.random.Generator):
        return random_bits.integers(0, 1 << sr_bits, size=shape, dtype=np.int64)
    r = np.asarray(random_bits)
    if r.dtype.kind not in "iu":
        raise ValueError(f"random_bits must be an integer array, not an array of {r.dtype}")
    r = np.broadcast_to(r, shape).astype(np.int64)
    if r.size and (r.min() < 0 or r.max() >= (1 << sr_bits)):
        raise ValueError(f"random_bits must lie in 0..{(1 << sr_bits) - 1} for sr_bits={sr_bits}")
    return r


class Format:
    """Common base of :class:`FloatFormat` and :class:`IntFormat`."""

    name: str

    @property
    def code_dtype(self):
        """Smallest unsigned NumPy dtype that holds one code."""
        return _code_dtype(self.bits)

    def check_codes(self, codes):
        """``codes`` as an integer array of this format's bit patterns (``0 .. 2**bits - 1``),
        else :class:`ValueError` naming the format."""
        codes = np.asarray(codes)
        if codes.dtype.kind not in "iu":
            raise ValueError(f"codes for {self.name} must be an integer array of bit patterns, "
                             f"not an array of {codes.dtype}")
        if codes.size and (codes.dtype.kind == "i" or codes.dtype.itemsize * 8 > self.bits):
            lo, hi = codes.min(), codes.max()
            if lo < 0 or hi >= (1 << self.bits):
                raise ValueError(f"codes for {self.name} must lie in 0..{(1 << self.bits) - 1} "
                                 f"({self.bits}-bit patterns), got values in {lo}..{hi}")
        return codes

    def all_codes(self):
        """Every code of the format, in increasing order (formats of at most 16 bits)."""
        if self.bits > 16:
            raise ValueError(f"all_codes() is for formats of at most 16 bits, {self.name} has {self.bits}")
        return np.arange(1 << self.bits, dtype=self.code_dtype)

    def __str__(self):
        return self.name


@dataclasses.dataclass(frozen=True, eq=True, repr=False)
class FloatFormat(Format):
    """A binary floating-point format.

    Parameters
    ----------
    name : str
        Name used in manifests and on the command line.
    exp_bits : int
        Exponent field width, 1..8.
    man_bits : int
        Mantissa (fraction) field width, 0..23.
    bias : int
        Exponent bias: a normal value is ``2^(field - bias) * (1 + man/2^man_bits)``.
    specials : str
        ``"ieee"``, ``"fn"``, ``"fnuz"`` or ``"finite"`` (see the module docstring).
    signed : bool
        Whether a sign bit is present (E8M0 has none).
    subnormals : bool
        ``False`` for formats whose exponent field 0 is an ordinary binade, with neither
        zero nor subnormals (E8M0).

    Raises
    ------
    ValueError
        If a parameter is out of range or the combination has no meaning.
    """
    name: str
    exp_bits: int
    man_bits: int
    bias: int
    specials: str = "ieee"
    signed: bool = True
    subnormals: bool = True

    def __post_init__(self):
        for field in ("exp_bits", "man_bits", "bias"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"{field} must be an integer, not {v!r}")
        if not 1 <= self.exp_bits <= 8:
            raise ValueError(f"exp_bits must be from 1 to 8, not {self.exp_bits!r}")
        if not 0 <= self.man_bits <= 23:
            raise ValueError(f"man_bits must be from 0 to 23, not {self.man_bits!r}")
        if self.specials not in SPECIALS:
            raise ValueError(f"specials must be one of {', '.join(SPECIALS)}, not {self.specials!r}")
        if self.specials == "ieee" and self.man_bits == 0:
            raise ValueError("specials 'ieee' needs man_bits >= 1 to encode NaN; use 'fn' or 'finite'")
        if self.specials == "fnuz" and not self.signed:
            raise ValueError("specials 'fnuz' needs a sign bit (its NaN is the negative-zero pattern)")
        if self.specials == "ieee" and self.exp_bits == 1:
            raise ValueError("specials 'ieee' needs exp_bits >= 2 (one exponent value is reserved)")
        if self.specials == "fn" and self.exp_bits == 1 and self.man_bits == 0:
            raise ValueError("specials 'fn' with exp_bits=1 and man_bits=0 leaves no finite non-zero value")
        object.__setattr__(self, "_tables", {})

    def __repr__(self):
        return (f"FloatFormat({self.name!r}, exp_bits={self.exp_bits}, man_bits={self.man_bits}, "
                f"bias={self.bias}, specials={self.specials!r}"
                + ("" if self.signed else ", signed=False")
                + ("" if self.subnormals else ", subnormals=False") + ")")

    def __hash__(self):
        return hash((self.name, self.exp_bits, self.man_bits, self.bias, self.specials,
                     self.signed, self.subnormals))

    def __eq__(self, other):
        return isinstance(other, FloatFormat) and (
            (self.name, self.exp_bits, self.man_bits, self.bias, self.specials, self.signed,
             self.subnormals) ==
            (other.name, other.exp_bits, other.man_bits, other.bias, other.specials, other.signed,
             other.subnormals))

    # -- layout ---------------------------------------------------------------------------

    kind = "float"

    @property
    def bits(self):
        """Total width of a code."""
        return int(self.signed) + self.exp_bits + self.man_bits

    @property
    def sign_bit(self):
        """Bit position of the sign (``None`` for unsigned formats)."""
        return self.bits - 1 if self.signed else None

    @property
    def has_inf(self):
        return self.specials == "ieee"

    @property
    def has_nan(self):
        return self.specials != "finite"

    @property
    def has_zero(self):
        return self.subnormals

    @property
    def has_negative_zero(self):
        return self.signed and self.subnormals and self.specials != "fnuz"

    @property
    def emin(self):
        """Exponent of the smallest normal binade (also the subnormals' exponent)."""
        return (1 if self.subnormals else 0) - self.bias

    @property
    def max_field(self):
        """Largest exponent field value that encodes finite numbers."""
        top = (1 << self.exp_bits) - 1
        if self.specials == "ieee":
            return top - 1
        if self.specials == "fn" and self.man_bits == 0:
            return top - 1
        return top

    @property
    def max_man(self):
        """Largest mantissa field at :attr:`max_field`."""
        full = (1 << self.man_bits) - 1
        if self.specials == "fn" and self.man_bits > 0:
            return full - 1
        return full

    @property
    def emax(self):
        """Exponent of the largest finite binade."""
        return self.max_field - self.bias

    @property
    def max(self):
        """Largest finite value."""
        return float(np.ldexp(1.0 + self.max_man / (1 << self.man_bits), self.emax))

    @property
    def min_normal(self):
        """Smallest positive normal value."""
        return float(np.ldexp(1.0, self.emin))

    @property
    def min_subnormal(self):
        """Smallest positive value (the smallest normal if there are no subnormals)."""
        if self.subnormals and self.man_bits > 0:
            return float(np.ldexp(1.0, self.emin - self.man_bits))
        return self.min_normal

    @property
    def min(self):
        """Most negative finite value (the smallest value for unsigned formats)."""
        return -self.max if self.signed else self.min_subnormal

    @property
    def nan_code(self):
        """Canonical (quiet, positive) NaN pattern, or ``None``."""
        if self.specials == "ieee":
            return (((1 << self.exp_bits) - 1) << self.man_bits) | (1 << (self.man_bits - 1))
        if self.specials == "fn":
            return (1 << (self.exp_bits + self.man_bits)) - 1
        if self.specials == "fnuz":
            return 1 << (self.bits - 1)
        return None

    @property
    def inf_code(self):
        """Pattern of +Inf, or ``None``."""
        if self.specials == "ieee":
            return ((1 << self.exp_bits) - 1) << self.man_bits
        return None

    @property
    def max_code(self):
        """Pattern of the largest finite value."""
        return (self.max_field << self.man_bits) | self.max_man

    @property
    def nan_convention(self):
        """Human-readable Inf/NaN convention (for tables)."""
        if self.specials == "ieee":
            text = "IEEE: +-Inf, NaN = exp all ones"
        elif self.specials == "fn":
            text = f"fn: no Inf, NaN = 0x{self.nan_code:X}"
            if self.signed:
                text += f"/0x{self.nan_code | (1 << (self.bits - 1)):X}"
        elif self.specials == "fnuz":
            text = f"fnuz: no Inf, no -0, NaN = 0x{self.nan_code:X}"
        else:
            text = "finite: no Inf, no NaN"
        return text + ("" if self.subnormals else ", no zero")

    # -- decoding -------------------------------------------------------------------------

    def _fields(self, codes):
        codes = codes.astype(np.int64)
        man = codes & ((1 << self.man_bits) - 1)
        exp = (codes >> self.man_bits) & ((1 << self.exp_bits) - 1)
        if self.signed:
            sign = (codes >> (self.bits - 1)) & 1
        else:
            sign = np.zeros_like(codes)
        return sign, exp, man

    def _decode_arith(self, codes):
        sign, exp, man = self._fields(codes)
        M = self.man_bits
        if self.subnormals:
            normal = exp > 0
            sig = np.where(normal, man + (1 << M), man).astype(np.float64)
            e = np.where(normal, exp - self.bias, self.emin) - M
        else:
            sig = (man + (1 << M)).astype(np.float64)
            e = exp - self.bias - M
        val = np.ldexp(sig, e.astype(np.int32))
        val = np.where(sign == 1, -val, val)
        if self.specials == "ieee":
            top = exp == (1 << self.exp_bits) - 1
            val = np.where(top & (man == 0), np.where(sign == 1, -np.inf, np.inf), val)
            val = np.where(top & (man != 0), np.nan, val)
        elif self.specials == "fn":
            val = np.where((exp == (1 << self.exp_bits) - 1) & (man == (1 << M) - 1), np.nan, val)
        elif self.specials == "fnuz":
            val = np.where((sign == 1) & (exp == 0) & (man == 0), np.nan, val)
        return val

    def _decode_table(self):
        t = self._tables.get("decode")
        if t is None:
            t = self._decode_arith(np.arange(1 << self.bits, dtype=np.int64))
            t.setflags(write=False)
            self._tables["decode"] = t
        return t

    def decode(self, codes):
        """Decode bit patterns to float64 values, exactly (NaN patterns give NaN).

        Raises
        ------
        ValueError
            If ``codes`` is not an integer array or holds values outside ``0..2^bits-1``.
        """
        codes = self.check_codes(codes)
        if self.bits <= 16:
            return self._decode_table()[codes]
        if self.bits == 32 and self == fp32_format():
            with np.errstate(invalid="ignore"):                 # signalling NaNs
                return codes.astype(np.uint32).view(np.float32).astype(np.float64)
        return self._decode_arith(codes)

    def values(self):
        """Decoded value of every code (formats of at most 16 bits)."""
        return self.decode(self.all_codes())

    # -- encoding -------------------------------------------------------------------------

    def encode(self, x, rounding="nearest_even", saturate=False, random_bits=None, sr_bits=8):
        """Round ``x`` to this format and return the codes (see the module docstring).

        Parameters
        ----------
        x : array_like of float32 or float64
            Values to encode.
        rounding : str
            ``"nearest_even"``, ``"toward_zero"`` or ``"stochastic"``.
        saturate : bool
            Clamp finite overflow and +-Inf to +-max instead of the format's Inf/NaN.
        random_bits : array of int or numpy.random.Generator, optional
            Stochastic rounding only: ``sr_bits`` random bits per element.
        sr_bits : int
            Stochastic rounding only: number N of random bits added below the LSB (1..32).

        Returns
        -------
        numpy.ndarray
            Codes as the smallest unsigned integer dtype that holds ``bits`` bits.

        Raises
        ------
        ValueError
            Unknown rounding, bad random bits, non-float input, or NaN for a format without NaN.
        """
        _check_rounding(rounding)
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise ValueError(f"x must be a float32 or float64 array, not an array of {x.dtype}")
        with np.errstate(invalid="ignore", over="ignore"):
            return self._encode(x, rounding, bool(saturate), random_bits, sr_bits)

    def _encode(self, x, rounding, saturate, random_bits, sr_bits):
        if (x.dtype == np.float32 and rounding != "stochastic" and self.man_bits <= 6
                and self.bits <= 16):
            if self.has_nan or not np.isnan(x).any():
                return self._encode_table(x, rounding, saturate)
        r = _random_bits(random_bits, sr_bits, x.shape) if rounding == "stochastic" else None
        return self._encode_general(x.astype(np.float64), rounding, saturate, r, sr_bits)

    def _encode_general(self, x, rounding, saturate, r, sr_bits):
        M = self.man_bits
        sign = np.signbit(x)
        nan = np.isnan(x)
        if nan.any() and not self.has_nan:
            raise ValueError(f"format {self.name} has no NaN encoding; NaN inputs cannot be encoded")
        inf = np.isinf(x)
        a = np.where(nan | inf, 0.0, np.abs(x))
        _, e = np.frexp(a)
        eeff = np.maximum(e - 1, self.emin)
        shift = (eeff - M).astype(np.int32)
        s = np.ldexp(a, -shift)                      # |x| / ulp, exact
        if rounding == "nearest_even":
            n = np.rint(s)
        elif rounding == "toward_zero":
            n = np.floor(s)
        else:
            t = np.floor(np.ldexp(s, sr_bits)).astype(np.int64)
            n = ((t + r) >> sr_bits).astype(np.float64)
        mag = np.ldexp(n, shift)                     # rounded magnitude, exact
        overflow = mag > self.max
        mag = np.minimum(mag, self.max)              # overflow is patched in below
        # magnitude -> fields
        _, me = np.frexp(mag)
        is_normal = mag >= self.min_normal
        field = np.where(is_normal, me - 1 + self.bias, 0)
        man = np.where(is_normal,
                       np.ldexp(mag, (M - (me - 1)).astype(np.int32)) - (1 << M),
                       np.ldexp(np.where(is_normal, 0.0, mag), M - self.emin))
        code = (field.astype(np.int64) << M) | man.astype(np.int64)
        if not self.subnormals:
            # no zero: non-zero underflow gives the smallest value; exact zero is NaN below
            code = np.where(mag == 0, 0, code)
        sat = saturate or self.specials == "finite"
        # IEEE 754-2019 section 7.4: roundTowardZero carries finite overflow to +-max.
        over_to_max = overflow if (sat or rounding == "toward_zero") else np.zeros_like(overflow)
        special = (overflow | inf) & ~over_to_max
        code = np.where(over_to_max, self.max_code, code)
        code = np.where(special, self.max_code if sat else
                        (self.inf_code if self.has_inf else self.nan_code), code)
        if self.signed:
            negative = sign
            if self.specials == "fnuz":
                negative = sign & ~((code == 0) & ~nan)      # no negative zero
            code = code | (negative.astype(np.int64) << (self.bits - 1))
        if self.has_nan:
            nan_code = self.nan_code
            if self.signed and self.specials != "fnuz":
                nan_pat = np.where(sign, nan_code | (1 << (self.bits - 1)), nan_code)
            else:
                nan_pat = nan_code
            bad = nan
            if not self.signed:
                bad = bad | sign                             # negative (or -0) input
            if not self.subnormals:
                bad = bad | (a == 0) & ~inf                  # zero has no encoding
            code = np.where(bad, nan_pat, code)
        return code.astype(self.code_dtype)

    def _encode_table(self, x, rounding, saturate):
        """Table-driven encode of float32 input (formats with man_bits <= 6).

        The result depends only on the top 16 bits of the float32 pattern and on whether
        any of the low 16 bits is set (they all lie below the rounding position, so they
        act as a sticky bit), hence one lookup in a 2^17-entry table built with the
        general path.
        """
        key = ("enc", rounding, saturate)
        table = self._tables.get(key)
        if table is None:
            hi = np.arange(1 << 16, dtype=np.uint32) << 16
            probe = np.empty(1 << 17, dtype=np.uint32)
            probe[0::2] = hi
            probe[1::2] = hi | 1
            with np.errstate(invalid="ignore"):               # signalling-NaN patterns
                vals = probe.view(np.float32).astype(np.float64)
            if not self.has_nan:
                vals = np.where(np.isnan(vals), 0.0, vals)   # never looked up (checked before)
            table = self._encode_general(vals, rounding, saturate, None, 0)
            table.setflags(write=False)
            self._tables[key] = table
        u = np.ascontiguousarray(x).view(np.uint32)
        idx = u >> 16
        idx <<= 1
        low = u & np.uint32(0xFFFF)
        low += np.uint32(0xFFFF)
        low >>= 16
        idx |= low
        return table[idx]


@dataclasses.dataclass(frozen=True, repr=False)
class IntFormat(Format):
    """A two's-complement (``signed=True``) or unsigned integer format of 2..64 bits.

    Raises
    ------
    ValueError
        If ``bits`` is not an integer from 2 to 64.
    """
    name: str
    bits: int
    signed: bool = True

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)) \
                or not 2 <= self.bits <= 64:
            raise ValueError(f"bits must be an integer from 2 to 64, not {self.bits!r}")

    def __repr__(self):
        return f"IntFormat({self.name!r}, bits={self.bits}, signed={self.signed})"

    kind = "int"
    has_inf = False
    has_nan = False
    exp_bits = 0
    bias = 0

    @property
    def man_bits(self):
        """Magnitude bits (bits - 1 for signed formats)."""
        return self.bits - 1 if self.signed else self.bits

    @property
    def max(self):
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def min(self):
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def min_normal(self):
        return 1

    @property
    def min_subnormal(self):
        return 1

    @property
    def nan_convention(self):
        return "two's complement" if self.signed else "unsigned"

    @property
    def value_dtype(self):
        return np.dtype(np.uint64) if (self.bits == 64 and not self.signed) else np.dtype(np.int64)

    def decode(self, codes):
        """Decode bit patterns to int64 values (uint64 for 64-bit unsigned), exactly."""
        codes = self.check_codes(codes)
        if not self.signed:
            return codes.astype(self.value_dtype)
        u = codes.astype(np.uint64)
        if self.bits == 64:
            return u.view(np.int64)
        v = u.astype(np.int64)
        return np.where(v >= (1 << (self.bits - 1)), v - (1 << self.bits), v)

    def to_codes(self, values):
        """Bit patterns of integer ``values`` (wrapping modulo 2^bits)."""
        v = np.asarray(values)
        if v.dtype.kind not in "iu":
            raise ValueError(f"values must be an integer array, not an array of {v.dtype}")
        mask = np.uint64((1 << self.bits) - 1) if self.bits < 64 else np.uint64(0xFFFF_FFFF_FFFF_FFFF)
        return (v.astype(np.int64).view(np.uint64) & mask).astype(self.code_dtype) \
            if v.dtype.kind == "i" else (v.astype(np.uint64) & mask).astype(self.code_dtype)

    def encode(self, x, rounding="nearest_even", saturate=False, random_bits=None, sr_bits=8):
        """Round ``x`` to an integer and return the codes (see the module docstring)."""
        _check_rounding(rounding)
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise ValueError(f"x must be a float32 or float64 array, not an array of {x.dtype}")
        x = x.astype(np.float64)
        if np.isnan(x).any():
            raise ValueError(f"format {self.name} has no NaN encoding; NaN inputs cannot be encoded")
        inf = np.isinf(x)
        if inf.any() and not saturate:
            raise ValueError(f"format {self.name} has no Inf encoding; use saturate=True to clamp")
        if rounding == "nearest_even":
            n = np.rint(x)
        elif rounding == "toward_zero":
            n = np.trunc(x)
        else:
            r = _random_bits(random_bits, sr_bits, x.shape)
            big = np.abs(x) >= 2.0 ** 52                        # already integers
            t = np.floor(np.ldexp(np.where(big | inf, 0.0, x), sr_bits))
            n = np.where(big | inf, x, np.floor((t + r) / float(1 << sr_bits)))
        if saturate:
            n = np.clip(n, self.min, self.max)
        # two's-complement wrap modulo 2^bits, exact for any float64 integer
        w = np.fmod(n, 2.0 ** self.bits)
        if self.bits == 64:
            w = np.where(w >= 2.0 ** 63, w - 2.0 ** 64, w)
            w = np.where(w < -2.0 ** 63, w + 2.0 ** 64, w)
        mask = np.uint64((1 << self.bits) - 1)
        codes = w.astype(np.int64).view(np.uint64) & mask
        return codes.astype(self.code_dtype)


# -- the named formats -----------------------------------------------------------------------

def float_format(exp_bits, man_bits, bias=None, specials="ieee", *, name=None, signed=True,
                 subnormals=True):
    """A user-defined float format; ``bias`` defaults to the IEEE bias ``2^(exp_bits-1) - 1``."""
    if bias is None:
        if isinstance(exp_bits, (int, np.integer)) and not isinstance(exp_bits, bool) \
                and 1 <= exp_bits <= 8:
            bias = (1 << (exp_bits - 1)) - 1
        else:
            bias = 0  # exp_bits is rejected below with its own message
    if name is None:
        name = f"e{exp_bits}m{man_bits}" + ("" if specials == "ieee" else specials) \
            + ("" if bias == (1 << (max(1, exp_bits) - 1)) - 1 else f"b{bias}")
    return FloatFormat(name, exp_bits, man_bits, bias, specials, signed, subnormals)


def int_format(bits, signed=True):
    """A user-defined integer format of 2..64 bits."""
    return IntFormat(f"{'' if signed else 'u'}int{bits}", bits, signed)


# Integer formats.
int4 = IntFormat("int4", 4)
int8 = IntFormat("int8", 8)
uint8 = IntFormat("uint8", 8, signed=False)
int16 = IntFormat("int16", 16)
int32 = IntFormat("int32", 32)

# OCP OFP8 (arXiv:2209.05433 Table 1): E4M3 bias 7, no Inf, NaN S.1111.111, max
# S.1111.110 = 1.75 * 2^8 = 448; E5M2 bias 15, IEEE specials, max S.11110.11 = 57344.
e4m3 = FloatFormat("e4m3", 4, 3, 7, "fn")
e5m2 = FloatFormat("e5m2", 5, 2, 15, "ieee")
# FNUZ (ml_dtypes README): bias one larger, NaN = 0x80, no -0, no Inf; E4M3FNUZ max
# 0x7F = 1.875 * 2^7 = 240, E5M2FNUZ max 0x7F = 1.75 * 2^15 = 57344.
e4m3fnuz = FloatFormat("e4m3fnuz", 4, 3, 8, "fnuz")
e5m2fnuz = FloatFormat("e5m2fnuz", 5, 2, 16, "fnuz")
# OCP MX v1.0 sub-byte elements: no Inf, no NaN. E2M3 max 0b0_11_111 = 1.875 * 2^2 = 7.5,
# E3M2 max 0b0_111_11 = 1.75 * 2^4 = 28, E2M1 max 0b0_11_1 = 1.5 * 2^2 = 6.
e2m3 = FloatFormat("e2m3", 2, 3, 1, "finite")
e3m2 = FloatFormat("e3m2", 3, 2, 3, "finite")
e2m1 = FloatFormat("e2m1", 2, 1, 1, "finite")
# OCP MX v1.0 scale: unsigned, bias 127, 2^(E-127) for E = 0..254 (0x00 = 2^-127),
# 0xFF = NaN, no zero, no Inf.
e8m0 = FloatFormat("e8m0", 8, 0, 127, "fn", signed=False, subnormals=False)
# Accumulator formats.
bf16 = FloatFormat("bf16", 8, 7, 127, "ieee")
fp16 = FloatFormat("fp16", 5, 10, 15, "ieee")
fp32 = FloatFormat("fp32", 8, 23, 127, "ieee")


def fp32_format():
    return fp32


_NAMED = {f.name: f for f in (int4, int8, uint8, int16, int32, e4m3, e5m2, e4m3fnuz, e5m2fnuz,
                              e2m3, e3m2, e2m1, e8m0, bf16, fp16, fp32)}
_ALIASES = {"e4m3fn": "e4m3", "fp8_e4m3": "e4m3", "fp8_e5m2": "e5m2", "bfloat16": "bf16",
            "float16": "fp16", "float32": "fp32", "e2m3fn": "e2m3", "e3m2fn": "e3m2",
            "e2m1fn": "e2m1", "e8m0fnu": "e8m0", "mxint8": "int8"}


def names():
    """Names of the built-in formats, in table order."""
    return list(_NAMED)


_INT_RE = re.compile(r"^(u?)int(\d+)$")
_FLOAT_RE = re.compile(r"^e(\d+)m(\d+)(ieee|fn|fnuz|finite)?(?:b(-?\d+))?$")


def get(name):
    """Return the format called ``name``.

    Besides the built-in names (:func:`names`), ``intN``/``uintN`` (N = 2..64) give
    integer formats and ``eXmY[fn|fnuz|finite][bBIAS]`` user-defined float formats
    (IEEE conventions and bias ``2^(X-1) - 1`` unless stated; built-in names win, so
    ``e4m3`` is OCP E4M3 while ``e4m3ieee`` is the IEEE-style variant with max 240).
    A :class:`Format` passed in is returned unchanged.

    Raises
    ------
    ValueError
        If the name is unknown or its parameters are out of range.
    """
    if isinstance(name, Format):
        return name
    if not isinstance(name, str):
        raise ValueError(f"format must be a format name or a Format, not {name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in _NAMED:
        return _NAMED[key]
    m = _INT_RE.match(key)
    if m:
        return int_format(int(m.group(2)), signed=not m.group(1))
    m = _FLOAT_RE.match(key)
    if m:
        exp_bits, man_bits = int(m.group(1)), int(m.group(2))
        specials = m.group(3) or "ieee"
        bias = int(m.group(4)) if m.group(4) is not None else None
        fmt = float_format(exp_bits, man_bits, bias, specials)
        return dataclasses.replace(fmt, name=key)
    raise ValueError(f"unknown format {name!r}; known formats: {', '.join(_NAMED)} "
                     f"(and intN, uintN, eXmY[fn|fnuz|finite][bBIAS])")
