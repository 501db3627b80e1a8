"""S2FP8: shifted-and-squeezed FP8 tensors (Cambier, Bhiwandiwalla, Gong, Nekuii, Elibol, Tang,
"Shifted and Squeezed 8-bit Floating Point format for Low-Precision Training of Deep Neural
Networks", ICLR 2020, arXiv:2001.05674).

A tensor ``X`` is stored as E5M2 codes of ``Y`` plus two per-tensor float statistics, the
*squeeze* ``alpha`` and the *shift* ``beta``, chosen so that in log space the tensor's mean
magnitude maps to 1 (exponent 0) and its largest magnitude to 2^15 (the top binade of E5M2,
whose largest finite value is 1.75 * 2^15 = 57344):

    mu    = mean(log2 |X_i|)      over the non-zero finite elements
    m     = max (log2 |X_i|)
    alpha = 15 / (m - mu)         (alpha = 1 when m == mu: every magnitude is the same)
    beta  = -alpha * mu
    Y_i   = sign(X_i) * 2^beta * |X_i|^alpha,   i.e. log2|Y_i| = alpha * log2|X_i| + beta
    codes = E5M2(Y)               (rounding of :meth:`lowbit.models.formats.FloatFormat.encode`)
    X_hat_i = sign(Y_i) * 2^((log2|Yq_i| - beta) / alpha)      (zero stays zero)

(The transformation as summarised in ``/work/shared/docs/formats.md`` section 6 from the
paper's abstract and a third-party implementation; the paper's own equations were not opened.
Two choices are lowbit's and stated here: the statistics are taken over the non-zero finite
elements -- ``log2 0`` is undefined -- and zeros are stored as zero; the statistics are
recomputed for every tensor, not learned.)

Numerics: ``alpha`` and ``beta`` are float64; ``Y`` is evaluated in float64 as
``exp2(alpha * log2|X| + beta)`` and rounded once to E5M2 (round to nearest even by default,
or stochastic with ``random_bits`` / ``sr_bits``; saturating, so a ``Y`` just above 57344 from
the float64 evaluation gives the largest finite code).  ``log2`` and ``exp2`` are NumPy's; they
are exact on powers of two (the test's hand-computed cases), otherwise within an ULP of float64,
far below E5M2's resolution, but the rare ``Y`` within float64 rounding of an E5M2 rounding
boundary may round either way on another platform.  Dequantisation is float64.
"""

import dataclasses

import numpy as np

from . import formats

__all__ = ["S2FP8_FORMAT", "S2FP8_TOP_EXPONENT", "S2fp8Tensor", "s2fp8_stats", "s2fp8_quantize",
           "s2fp8_dequantize"]

#: The 8-bit format of S2FP8 (1 sign, 5 exponent, 2 mantissa bits).
S2FP8_FORMAT = formats.get("e5m2")
#: log2 of the magnitude the tensor's largest element is mapped to (Cambier et al.: 15).
S2FP8_TOP_EXPONENT = 15


@dataclasses.dataclass(frozen=True)
class S2fp8Tensor:
    """An S2FP8 tensor: E5M2 ``codes`` and its statistics ``alpha`` (squeeze), ``beta`` (shift)."""
    codes: np.ndarray
    alpha: float
    beta: float


def s2fp8_stats(x):
    """``(alpha, beta)`` of the float array ``x`` (see the module docstring).

    A tensor without a non-zero finite element gives ``(1.0, 0.0)`` (nothing to scale).

    Raises
    ------
    TypeError
        ``x`` is not a float array.
    """
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"x must be a float array, not {x.dtype}")
    a = np.abs(x[np.isfinite(x) & (x != 0)]).astype(np.float64)
    if a.size == 0:
        return 1.0, 0.0
    lg = np.log2(a)
    mu = float(lg.mean())
    m = float(lg.max())
    alpha = S2FP8_TOP_EXPONENT / (m - mu) if m > mu else 1.0
    return alpha, -alpha * mu


def s2fp8_quantize(x, rounding="nearest_even", random_bits=None, sr_bits=8):
    """Quantise the float tensor ``x`` to S2FP8 (statistics from ``x`` itself).

    ``rounding``, ``random_bits``, ``sr_bits`` are those of
    :meth:`lowbit.models.formats.FloatFormat.encode` for the E5M2 rounding of ``Y``.
    NaN and +-Inf are kept as NaN / +-Inf codes.
    """
    x = np.asarray(x)
    alpha, beta = s2fp8_stats(x)
    xf = x.astype(np.float64)
    nz = np.isfinite(xf) & (xf != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.exp2(alpha * np.log2(np.where(nz, np.abs(xf), 1.0)) + beta)
    y = np.where(nz, np.copysign(mag, xf), xf)
    finite = np.isfinite(y)
    kw = {} if rounding == "nearest_even" else {"random_bits": random_bits, "sr_bits": sr_bits}
    codes = S2FP8_FORMAT.encode(np.where(finite, y, 0.0), rounding=rounding, saturate=True, **kw)
    special = S2FP8_FORMAT.encode(np.where(finite, 0.0, y))       # NaN / Inf codes
    return S2fp8Tensor(np.where(finite, codes, special).astype(S2FP8_FORMAT.code_dtype),
                       alpha, beta)


def s2fp8_dequantize(t):
    """float64 values ``X_hat`` of an :class:`S2fp8Tensor` (see the module docstring)."""
    if not isinstance(t, S2fp8Tensor):
        raise TypeError(f"t must be an S2fp8Tensor, not {type(t).__name__}")
    y = S2FP8_FORMAT.decode(t.codes)
    nz = np.isfinite(y) & (y != 0)
    with np.errstate(divide="ignore"):
        mag = np.exp2((np.log2(np.where(nz, np.abs(y), 1.0)) - t.beta) / t.alpha)
    return np.where(nz, np.copysign(mag, y), y)
