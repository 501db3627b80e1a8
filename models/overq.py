"""OverQ-style outlier quantisation: encoding, exact decoding, the PE's dot product, baselines.

Idea (Zhao, Dotzel, Hu, Ivanov, De Sa, Zhang, "OverQ: Opportunistic Outlier Quantization for
Neural Network Accelerators", arXiv:1910.06909v2, abstract only): a value that overflows the b-bit grid (an *outlier*)
overwrites a neighbouring value that quantised to zero and uses its bits as extra range (*range
overwrite*); a non-outlier next to a zero may use them as extra precision (*precision
overwrite*); *cascading* lets an outlier reach a zero that is not its immediate neighbour.
Because the overwritten value was zero its product was zero, so the dot product only changes
by the better-represented value.  The paper's detailed encoding was not available; everything
below is our own design, chosen for a cheap weight-stationary (WS) processing element.

Design choices
--------------
Quantisation grid.  A value ``x`` with scale ``s`` quantises to ``Q = rint(x / s)`` (round to
nearest, ties to even).  The plain b-bit grid is the two's-complement range
``[-2^(b-1), 2^(b-1) - 1]`` (the :class:`~lowbit.models.formats.IntFormat` ``int<b>``); codes
are its b-bit patterns.  An *outlier* is a value whose ``Q`` lies outside that range.

Axis and neighbour order.  Values are encoded along one axis (the reduction axis of the dot
product, e.g. the input features of an activation vector); each 1-D slice along it is encoded
on its own and no chain crosses a slice.  The neighbour of slot ``k`` is slot ``k + 1`` only
(forward in reduction order).  In a WS array the reduction axis runs down a column, the
partial sum flows from row ``k`` to row ``k + 1``, and so the only extra wire a PE needs is the
stationary weight of the PE above it.  (Encoding "backward" is the same scheme on the reversed
axis.)

Signed-digit split (why the owner's PE is unchanged).  A widened integer ``V`` is split into
two b-bit *signed* digits ``V = a * 2^b + c`` with ``c = ((V + 2^(b-1)) mod 2^b) - 2^(b-1)`` and
``a = (V - c) / 2^b``, both in ``[-2^(b-1), 2^(b-1) - 1]``.  The owner keeps one digit in its
own slot as an ordinary b-bit value multiplied by its own weight; the overwritten slot holds the
other digit, which its PE multiplies by the *owner's* weight (the weight of the slot before)
with a fixed shift.  No slot is ever reinterpreted as unsigned, and the owner's PE does not know
that its value was widened.  This is cheaper than reconstructing the widened value before the
multiply (which needs a 2b-bit multiplier in every PE or an operand crossing between PEs in
the activation path).

* Range overwrite: ``V = Q`` (clamped to ``[-2^(b-1) (2^b + 1), (2^(b-1) - 1)(2^b + 1)]``, for
  b = 4 that is -136..119, 17 times the plain range).  The owner keeps ``c`` (the low digit),
  the overwritten slot holds ``a`` (high digit, shift ``+b``).
* Precision overwrite: ``V = P = rint(x * 2^b / s)`` (b extra fraction bits).  The owner keeps
  ``a`` (close to ``Q``), the overwritten slot holds ``c`` (the signed residue, shift ``-b``).
  Only used when ``a`` fits the plain range and ``c != 0``.

Cascade.  If an outlier's next slot is not zero, the scheme looks up to ``cascade`` slots further
for a zero (only across non-outliers): the values in between move one slot forward (the zero is
overwritten by the last of them), and the slot after the outlier becomes its extension.  A moved
value sits in the slot after its original one, so its PE multiplies it by the weight of the slot
before, exactly as an extension does (with shift 0).  The cascade depth is an encoder-only
parameter: the PE is the same for every depth.  Chains never overlap: the encoder walks each
slice from left to right, greedily.  Precision overwrite never cascades.

Metadata.  One state per slot (``meta``):

=====  ===========  ===================================  ============  =============================
code   name         slot holds                           weight        shift (accumulator LSBs)
=====  ===========  ===================================  ============  =============================
0      ``OWN``      its own value (or an owner's digit)  own           ``F``
1      ``RANGE``    high digit of the previous slot      previous      ``F + b``
2      ``SHIFT``    the previous slot's value (cascade)  previous      ``F``
3      ``PREC``     fraction digit of the previous slot  previous      ``F - b`` (= 0)
=====  ===========  ===================================  ============  =============================

``F`` = ``b`` when precision overwrite is enabled (the accumulator then counts in units of
``s_x s_w 2^-b``) and 0 otherwise.  Metadata bits per value: 1 when ``cascade == 0`` and
``precision`` is off (states OWN/RANGE), else 2.  With ``precision`` off the code 3 is reserved
and the PE contributes 0 for it; a link (codes 1..3) in slot 0 uses a previous weight of 0.
In a WS array the metadata travels with the code along the array row (every PE of the row
sees the same code and state), so each activation pipeline register grows by ``meta_bits``.
Not implemented, possible compaction: without precision overwrite, a chain is always
``OWN RANGE SHIFT* `` and an owner is never linked, so one "linked" bit per value suffices
(RANGE = the first linked slot after an unlinked one); the row edge would expand it.

Every other slot value is a plain b-bit code, so ``decode`` is exact: slot ``k`` contributes
``int(code_k) * 2^(shift_k - F)`` (in units of ``s``) to the value of position ``k - link_k``.

Dot product (the PE contract).  ``overq_pe`` / ``overq_dot``: ``sum_k int(code_k) *
w[k - link_k] * 2^shift_k`` with ``w[-1] = 0``, an exact integer in units of ``s_x s_w 2^-F``,
wrapped to ``acc_bits`` two's complement (the hardware accumulator wraps; nothing saturates).
It equals ``decode_int(...) @ w`` exactly (tested).

Baselines (same module).  ``plain`` b-bit quantisation with a range-preserving scale
(``max|x| / (2^(b-1) - 1)``, no value clips) and with an MSE-optimal clipping scale
(:func:`calibrate`, grid search).  :func:`report` gives, per tensor, the fraction of outliers
accommodated, MSE and SQNR of baseline, clipped and OverQ, and the metadata bits per value.
"""

import dataclasses
import operator

import numpy as np

from . import formats
from .checks import check_bool, check_choice, check_int

__all__ = [
    "OWN", "RANGE", "SHIFT", "PREC", "META_NAMES",
    "OverqConfig", "OverqTensor", "SHIFT_AT", "MAX_ACC_BITS", "min_acc_bits", "check_pe",
    "plain_scale", "calibrate", "plain_encode", "plain_decode",
    "encode", "decode", "decode_int", "terms",
    "overq_step", "overq_pe", "overq_dot", "overq_pe_stream", "overq_matmul",
    "int_pe", "int_pe_stream", "int_matmul", "wrap",
    "sqnr_db", "report",
]

OWN, RANGE, SHIFT, PREC = 0, 1, 2, 3
META_NAMES = {OWN: "own", RANGE: "range", SHIFT: "shift", PREC: "precision"}

MAX_BITS = 16
MAX_CASCADE = 16


#: Where an OverQ PE applies its shifts: after a b x w multiplier ("product", least logic), or to
#: the operands before a (b + F) x (w + b) multiplier ("operands": no mux between multiplier and
#: accumulator, so an FPGA DSP block can absorb the whole multiply-accumulate).
SHIFT_AT = ("product", "operands")
#: Widest PE accumulator.
MAX_ACC_BITS = 64


def min_acc_bits(bits, w_bits, top_shift):
    """Narrowest accumulator of a PE whose largest term is a signed ``bits`` x ``w_bits``
    product shifted left by ``top_shift``: ``bits + w_bits + top_shift``
    (-2^(b-1) * -2^(w-1) = 2^(b+w-2) needs b + w signed bits)."""
    return bits + w_bits + top_shift


def check_pe(bits, w_bits, acc_bits, cascade, precision, shift_at):
    """Validate the parameters of an OverQ processing element; return ``(config, w_bits,
    acc_bits, shift_at)`` with ``config`` the :class:`OverqConfig`.

    ``acc_bits`` must hold the largest term, the RANGE shift ``F + b`` of a b x w product:
    ``min_acc_bits(b, w, F + b)`` .. :data:`MAX_ACC_BITS`.
    """
    config = OverqConfig(bits, cascade, precision)
    shift_at = check_choice("shift_at", shift_at, SHIFT_AT)
    w_bits = check_int("w_bits", w_bits, 2, MAX_BITS)
    lo = min_acc_bits(config.bits, w_bits, config.frac_bits + config.bits)
    acc_bits = check_int("acc_bits", acc_bits, lo, MAX_ACC_BITS)
    return config, w_bits, acc_bits, shift_at


@dataclasses.dataclass(frozen=True)
class OverqConfig:
    """Parameters of the OverQ encoding (shared by the model and :class:`~lowbit.hdl.overq_pe.OverqPe`).

    Parameters
    ----------
    bits : int
        Code width b, 2..16 (the values are ``int<b>`` two's-complement codes).
    cascade : int
        How many non-zero values a range overwrite may displace to reach a zero, 0..16.
        0 = only the immediate neighbour.
    precision : bool
        Whether precision overwrite is used (adds b fraction bits to the accumulator).

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """
    bits: int = 4
    cascade: int = 1
    precision: bool = True

    def __post_init__(self):
        object.__setattr__(self, "bits", check_int("bits", self.bits, 2, MAX_BITS))
        object.__setattr__(self, "cascade", check_int("cascade", self.cascade, 0, MAX_CASCADE))
        object.__setattr__(self, "precision", check_bool("precision", self.precision))

    @property
    def fmt(self):
        """The plain b-bit code format (``int<b>``)."""
        return formats.int_format(self.bits)

    @property
    def qmin(self):
        return -(1 << (self.bits - 1))

    @property
    def qmax(self):
        return (1 << (self.bits - 1)) - 1

    @property
    def frac_bits(self):
        """F: accumulator fraction bits (b with precision overwrite, else 0)."""
        return self.bits if self.precision else 0

    @property
    def meta_bits(self):
        """Metadata bits per value: 1 for range-only without cascade, else 2."""
        return 1 if (self.cascade == 0 and not self.precision) else 2

    @property
    def meta_codes(self):
        """The metadata codes this configuration produces."""
        codes = [OWN, RANGE]
        if self.cascade:
            codes.append(SHIFT)
        if self.precision:
            codes.append(PREC)
        return tuple(codes)

    @property
    def range_min(self):
        """Smallest value a range overwrite holds: ``qmin * (2^b + 1)``."""
        return self.qmin * ((1 << self.bits) + 1)

    @property
    def range_max(self):
        """Largest value a range overwrite holds: ``qmax * (2^b + 1)``."""
        return self.qmax * ((1 << self.bits) + 1)

    def shift(self, meta):
        """Accumulator shift of each metadata code (reserved codes: -1)."""
        b, f = self.bits, self.frac_bits
        table = np.array([f, f + b, f, (f - b) if self.precision else -1], dtype=np.int64)
        return table[np.asarray(meta, dtype=np.int64)]

    def describe(self):
        return (f"OverQ b={self.bits} cascade={self.cascade} "
                f"precision={'on' if self.precision else 'off'} ({self.meta_bits} meta bit/value)")


def _as_config(config):
    if isinstance(config, OverqConfig):
        return config
    raise ValueError(f"config must be an OverqConfig, not {config!r}")


def _split(v, bits):
    """Signed-digit split ``v = a * 2^b + c`` with a, c in the signed b-bit range."""
    half = 1 << (bits - 1)
    c = ((v + half) & ((1 << bits) - 1)) - half
    a = (v - c) >> bits
    return a, c


def wrap(values, acc_bits):
    """Two's-complement wrap of int64 values to ``acc_bits`` bits (None: no wrap)."""
    v = np.asarray(values, dtype=np.int64)
    if acc_bits is None:
        return v
    acc_bits = check_int("acc_bits", acc_bits, 2, 64)
    if acc_bits == 64:
        return v
    m = np.int64(1) << np.int64(acc_bits)
    h = np.int64(1) << np.int64(acc_bits - 1)
    return ((v + h) & (m - 1)) - h


# -- scales and the plain baselines -----------------------------------------------------------

def _move(x, axis):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension")
    try:
        axis = operator.index(axis)
        xm = np.moveaxis(x, axis, -1)
    except (TypeError, np.exceptions.AxisError):
        raise ValueError(f"axis must be an integer from {-x.ndim} to {x.ndim - 1}, not {axis!r}") from None
    return xm, axis


def _reduce_axes(ndim, channel_axis):
    """Axes reduced when computing a scale (all but the channel axis)."""
    if channel_axis is None:
        return tuple(range(ndim))
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)) \
            or not -ndim <= channel_axis < ndim:
        raise ValueError(f"channel_axis must be None or an integer from {-ndim} to {ndim - 1}, "
                         f"not {channel_axis!r}")
    ch = operator.index(channel_axis) % ndim
    return tuple(a for a in range(ndim) if a != ch)


def plain_scale(x, bits, channel_axis=None):
    """Range-preserving scale ``max|x| / (2^(b-1) - 1)`` (per tensor or per channel).

    Returns an array broadcastable against ``x`` (keepdims); an all-zero tensor/channel gets 1.
    """
    bits = check_int("bits", bits, 2, MAX_BITS)
    x = np.asarray(x, dtype=np.float64)
    amax = np.max(np.abs(x), axis=_reduce_axes(x.ndim, channel_axis), keepdims=True)
    qmax = (1 << (bits - 1)) - 1
    return np.where(amax > 0, amax / qmax, 1.0)


def plain_encode(x, bits, scale):
    """Plain b-bit quantisation: ``clip(rint(x / scale), -2^(b-1), 2^(b-1) - 1)`` as b-bit codes."""
    fmt = formats.int_format(check_int("bits", bits, 2, MAX_BITS))
    x = np.asarray(x, dtype=np.float64)
    return fmt.encode(x / np.asarray(scale, dtype=np.float64), saturate=True)


def plain_decode(codes, bits, scale):
    """Value of plain b-bit codes: ``int(code) * scale``."""
    fmt = formats.int_format(check_int("bits", bits, 2, MAX_BITS))
    return fmt.decode(codes).astype(np.float64) * np.asarray(scale, dtype=np.float64)


# -- OverQ encoding ----------------------------------------------------------------------------

@dataclasses.dataclass
class OverqTensor:
    """An OverQ-encoded tensor.

    Members
    -------
    codes : uint array
        b-bit code patterns, same shape as the input.
    meta : uint8 array
        Metadata state of each slot (``OWN``, ``RANGE``, ``SHIFT``, ``PREC``).
    scale : float64 array
        Scale, broadcastable against ``codes`` (per tensor or per channel).
    axis : int
        The encoding axis (chains run along it, towards higher indices).
    config : OverqConfig
    outliers, accommodated, saturated, refined : int
        Counts: values outside the plain grid; outliers given a range overwrite; of those,
        clamped to the range-overwrite limits; values given a precision overwrite.
    """
    codes: np.ndarray
    meta: np.ndarray
    scale: np.ndarray
    axis: int
    config: OverqConfig
    outliers: int = 0
    accommodated: int = 0
    saturated: int = 0
    refined: int = 0

    def decode(self):
        return decode(self)

    def decode_int(self):
        return decode_int(self.codes, self.meta, self.config, self.axis)


def encode(x, config, scale, axis=-1):
    """Encode ``x`` with OverQ along ``axis`` (see the module docstring for the scheme).

    Parameters
    ----------
    x : float array
    config : OverqConfig
    scale : float or float array
        Quantisation step, broadcastable against ``x`` (per tensor or per channel of an axis
        other than ``axis``); must be positive and finite.
    axis : int
        Axis along which neighbours are taken.

    Returns
    -------
    OverqTensor
        Rounding is to nearest, ties to even, at ``scale`` (and at ``scale / 2^b`` for the
        precision digits); outliers with no reachable zero, and range overwrites beyond
        ``range_min..range_max``, saturate.
    """
    cfg = _as_config(config)
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("x must be finite (no NaN or Inf)")
    xm, axis = _move(x, axis)
    s = np.asarray(scale, dtype=np.float64)
    try:
        s_full = np.broadcast_to(s, x.shape)
    except ValueError:
        raise ValueError(f"scale of shape {s.shape} does not broadcast against x of shape "
                         f"{x.shape}") from None
    if not (np.isfinite(s_full).all() and (s_full > 0).all()):
        raise ValueError("scale must be positive and finite")
    sm = np.moveaxis(s_full, axis, -1)
    shape = xm.shape
    K = shape[-1]
    xr = xm.reshape(-1, K)
    sr = sm.reshape(-1, K)
    R = xr.shape[0]
    b = cfg.bits
    q = np.rint(xr / sr).astype(np.int64) if K else np.zeros((R, 0), np.int64)
    fine = np.rint(np.ldexp(xr / sr, b)).astype(np.int64)
    is_out = (q < cfg.qmin) | (q > cfg.qmax)
    is_zero = q == 0
    qc = np.clip(q, cfg.qmin, cfg.qmax)

    out = np.zeros((R, K), dtype=np.int64)
    meta = np.zeros((R, K), dtype=np.uint8)
    busy = np.full(R, -1, dtype=np.int64)      # last slot taken by an earlier chain
    rows = np.arange(R)
    n_acc = n_sat = n_ref = 0
    for i in range(K):
        free = busy < i
        out_i = free & is_out[:, i]
        # -- range overwrite: the first zero within cascade + 1 slots, across non-outliers
        found = np.full(R, -1, dtype=np.int64)
        ok = out_i.copy()
        for d in range(cfg.cascade + 1):
            j = i + 1 + d
            if j >= K:
                break
            hit = ok & (found < 0) & is_zero[:, j]
            found[hit] = d
            ok &= ~is_out[:, j] & ~hit
        got = found >= 0
        v = np.clip(q[:, i], cfg.range_min, cfg.range_max)
        a, c = _split(v, b)
        n_acc += int(got.sum())
        n_sat += int((got & (v != q[:, i])).sum())
        r = rows[got]
        if r.size:
            out[r, i] = c[r]
            meta[r, i] = OWN
            out[r, i + 1] = a[r]
            meta[r, i + 1] = RANGE
            for d in range(1, cfg.cascade + 1):
                rd = r[found[r] >= d]
                if not rd.size:
                    break
                out[rd, i + 1 + d] = qc[rd, i + d]
                meta[rd, i + 1 + d] = SHIFT
            busy[r] = i + 1 + found[r]
        # -- outliers with no zero in reach: clip
        r = rows[out_i & ~got]
        out[r, i] = qc[r, i]
        busy[r] = i
        # -- precision overwrite of a non-outlier followed by a zero
        plain = free & ~is_out[:, i]
        if cfg.precision and i + 1 < K:
            a, c = _split(fine[:, i], b)
            ref = plain & is_zero[:, i + 1] & (c != 0) & (a >= cfg.qmin) & (a <= cfg.qmax)
            r = rows[ref]
            out[r, i] = a[r]
            out[r, i + 1] = c[r]
            meta[r, i + 1] = PREC
            busy[r] = i + 1
            n_ref += int(r.size)
            plain &= ~ref
        r = rows[plain]
        out[r, i] = qc[r, i]
        busy[r] = i

    codes = cfg.fmt.to_codes(out).reshape(shape)
    return OverqTensor(
        codes=np.moveaxis(codes, -1, axis), meta=np.moveaxis(meta.reshape(shape), -1, axis),
        scale=s, axis=axis, config=cfg, outliers=int(is_out.sum()), accommodated=n_acc,
        saturated=n_sat, refined=n_ref)


def _check_meta(meta, cfg, shape):
    meta = np.asarray(meta)
    if meta.shape != shape:
        raise ValueError(f"meta must have the shape of codes {shape}, not {meta.shape}")
    if meta.dtype.kind not in "iu" or (meta.size and (meta.min() < 0 or meta.max() >= (1 << cfg.meta_bits))):
        raise ValueError(f"meta must hold integers from 0 to {(1 << cfg.meta_bits) - 1} "
                         f"({cfg.meta_bits} metadata bit(s) for {cfg.describe()})")
    return meta.astype(np.int64)


def terms(codes, meta, config):
    """Per-slot reconstruction: ``(value, link, shift)`` arrays.

    ``value`` is the signed b-bit value of the code, ``link`` is 1 when the slot is
    multiplied by the previous slot's weight, ``shift`` is the accumulator shift (reserved
    metadata codes give ``value`` 0, ``link`` 0, ``shift`` 0).
    """
    cfg = _as_config(config)
    codes = cfg.fmt.check_codes(codes)
    meta = _check_meta(meta, cfg, codes.shape)
    value = cfg.fmt.decode(codes).astype(np.int64)
    shift = cfg.shift(meta)
    reserved = shift < 0
    value = np.where(reserved, 0, value)
    shift = np.where(reserved, 0, shift)
    link = ((meta != OWN) & ~reserved).astype(np.int64)
    return value, link, shift


def decode_int(codes, meta, config, axis=-1):
    """Exact values in units of ``scale * 2^-F``, as int64 (same shape as ``codes``).

    Slot ``k`` adds ``value_k * 2^shift_k`` to position ``k - link_k``; a link out of slot 0
    adds nothing (the hardware multiplies it by a weight of 0).
    """
    cfg = _as_config(config)
    value, link, shift = terms(codes, meta, cfg)
    vm, axis = _move(value, axis)
    lm = np.moveaxis(link, axis, -1)
    shm = np.moveaxis(shift, axis, -1)
    contrib = vm.astype(np.int64) << shm
    own = np.where(lm == 0, contrib, 0)
    nxt = np.where(lm == 1, contrib, 0)
    res = own.copy()
    res[..., :-1] += nxt[..., 1:]
    return np.moveaxis(res, -1, axis)


def decode(t):
    """Dequantised values of an :class:`OverqTensor` (exact: ``decode_int * scale / 2^F``)."""
    if not isinstance(t, OverqTensor):
        raise ValueError(f"t must be an OverqTensor, not {t!r}")
    return np.ldexp(decode_int(t.codes, t.meta, t.config, t.axis).astype(np.float64),
                    -t.config.frac_bits) * t.scale


# -- the PE: step, dot product, cycle stream ----------------------------------------------------

def _weights(w, w_bits):
    w_bits = check_int("w_bits", w_bits, 2, MAX_BITS)
    w = np.asarray(w)
    if w.dtype.kind not in "iu":
        raise ValueError(f"w must be an integer array of signed weight values, not {w.dtype}")
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    if w.size and (w.min() < lo or w.max() > hi):
        raise ValueError(f"w must hold values from {lo} to {hi} (w_bits={w_bits})")
    return w.astype(np.int64)


def overq_step(code, meta, w, w_prev, psum, config, w_bits=4, acc_bits=32):
    """One WS processing-element step (combinational), elementwise over arrays.

    ``psum_out = wrap(psum + value(code) * (w if meta == OWN else w_prev) * 2^shift(meta))``
    with ``w``, ``w_prev`` signed ``w_bits`` values, ``psum`` a signed ``acc_bits`` value.
    """
    cfg = _as_config(config)
    value, link, shift = terms(code, meta, cfg)
    w = _weights(w, w_bits)
    w_prev = _weights(w_prev, w_bits)
    wsel = np.where(link == 1, w_prev, w)
    return wrap(np.asarray(psum, dtype=np.int64) + ((value * wsel) << shift), acc_bits)


def overq_pe(codes, meta, w, config, w_bits=4, acc_bits=32):
    """OverQ dot product along the last axis, exact integer (units ``s_x s_w 2^-F``).

    ``sum_k value_k * w[k - link_k] * 2^shift_k`` with ``w[-1] = 0``, wrapped to ``acc_bits``
    two's complement.  ``codes``/``meta`` have shape ``(..., K)``; ``w`` has shape ``(K,)`` or
    broadcasts against ``codes``.  This is what :class:`~lowbit.hdl.overq_pe.OverqPe` returns
    after streaming one vector (``first`` on its first element).
    """
    cfg = _as_config(config)
    value, link, shift = terms(codes, meta, cfg)
    w = np.broadcast_to(_weights(w, w_bits), value.shape)
    w_prev = np.zeros_like(w)
    w_prev[..., 1:] = w[..., :-1]
    wsel = np.where(link == 1, w_prev, w)
    return wrap(((value * wsel) << shift).sum(axis=-1), acc_bits)


overq_dot = overq_pe


def overq_matmul(codes, meta, w, config, w_bits=4, acc_bits=None):
    """``(M, K)`` OverQ activations times ``(K, N)`` plain weights: ``(M, N)`` exact int64.

    Each output is :func:`overq_pe` of one activation row and one weight column.
    """
    cfg = _as_config(config)
    value, link, shift = terms(codes, meta, cfg)
    if value.ndim != 2:
        raise ValueError(f"codes must be a 2-D (M, K) array, not of shape {value.shape}")
    w = _weights(w, w_bits)
    if w.ndim != 2 or w.shape[0] != value.shape[1]:
        raise ValueError(f"w must be a ({value.shape[1]}, N) array, not of shape {w.shape}")
    contrib = value << shift
    w_prev = np.zeros_like(w)
    w_prev[1:] = w[:-1]
    own = np.where(link == 0, contrib, 0)
    lnk = np.where(link == 1, contrib, 0)
    return wrap(own @ w + lnk @ w_prev, acc_bits)


def _stream_inputs(n, first, valid):
    first = np.zeros(n, bool) if first is None else np.asarray(first).astype(bool)
    valid = np.ones(n, bool) if valid is None else np.asarray(valid).astype(bool)
    return first, valid


def overq_pe_stream(codes, meta, w, config, first=None, valid=None, w_bits=4, acc_bits=32):
    """Cycle model of :class:`~lowbit.hdl.overq_pe.OverqPe`: the ``acc`` output after each cycle.

    Inputs are 1-D per-cycle arrays.  On a cycle with ``valid``: ``acc <= (0 if first else
    acc) + term(code, meta, w, 0 if first else w_reg)`` and ``w_reg <= w``; without ``valid``
    both registers hold.  Both reset to 0.  Element ``i`` of the result is ``acc`` after the
    rising edge of cycle ``i`` (latency 1).
    """
    cfg = _as_config(config)
    value, link, shift = terms(codes, meta, cfg)
    w = _weights(w, w_bits)
    n = value.shape[0]
    first, valid = _stream_inputs(n, first, valid)
    acc, w_reg = 0, 0
    out = np.empty(n, dtype=np.int64)
    mask = (1 << acc_bits) - 1
    half = 1 << (acc_bits - 1)
    for i in range(n):
        if valid[i]:
            base, wp = (0, 0) if first[i] else (acc, w_reg)
            wsel = int(wp) if link[i] else int(w[i])
            acc = ((base + ((int(value[i]) * wsel) << int(shift[i])) + half) & mask) - half
            w_reg = int(w[i])
        out[i] = acc
    return out


def int_pe(codes, w, bits=4, w_bits=4, acc_bits=32):
    """Plain b-bit dot product along the last axis (the baseline PE), wrapped to ``acc_bits``."""
    fmt = formats.int_format(check_int("bits", bits, 2, MAX_BITS))
    value = fmt.decode(fmt.check_codes(codes)).astype(np.int64)
    w = np.broadcast_to(_weights(w, w_bits), value.shape)
    return wrap((value * w).sum(axis=-1), acc_bits)


def int_matmul(codes, w, bits=4, w_bits=4, acc_bits=None):
    """``(M, K)`` plain b-bit codes times ``(K, N)`` weights, exact int64."""
    fmt = formats.int_format(check_int("bits", bits, 2, MAX_BITS))
    value = fmt.decode(fmt.check_codes(codes)).astype(np.int64)
    return wrap(value @ _weights(w, w_bits), acc_bits)


def int_pe_stream(codes, w, first=None, valid=None, bits=4, w_bits=4, acc_bits=32):
    """Cycle model of :class:`~lowbit.hdl.overq_pe.IntPe` (as :func:`overq_pe_stream`)."""
    fmt = formats.int_format(check_int("bits", bits, 2, MAX_BITS))
    value = fmt.decode(fmt.check_codes(codes)).astype(np.int64)
    w = _weights(w, w_bits)
    n = value.shape[0]
    first, valid = _stream_inputs(n, first, valid)
    acc = 0
    out = np.empty(n, dtype=np.int64)
    mask = (1 << acc_bits) - 1
    half = 1 << (acc_bits - 1)
    for i in range(n):
        if valid[i]:
            acc = (((0 if first[i] else acc) + int(value[i]) * int(w[i]) + half) & mask) - half
        out[i] = acc
    return out


# -- calibration and the per-tensor report ------------------------------------------------------

#: Clipping ratios searched by :func:`calibrate` (fractions of the range-preserving scale).
CLIP_GRID = np.linspace(0.04, 1.0, 49)


def sqnr_db(x, xq):
    """Signal-to-quantisation-noise ratio ``10 log10(sum x^2 / sum (x - xq)^2)`` in dB."""
    x = np.asarray(x, dtype=np.float64)
    err = float(np.sum((x - np.asarray(xq, dtype=np.float64)) ** 2))
    sig = float(np.sum(x ** 2))
    if err == 0:
        return float("inf")
    return 10 * np.log10(sig / err) if sig > 0 else float("-inf")


def calibrate(x, bits, method="mse", config=None, axis=-1, channel_axis=None, grid=None):
    """Choose a scale for ``x``.

    ``method``: ``"max"`` (range-preserving, :func:`plain_scale`), ``"mse"`` (the clipping
    scale minimising the plain b-bit MSE) or ``"overq"`` (the scale minimising the OverQ MSE
    of ``config`` along ``axis``).  Candidates are ``ratio * plain_scale`` for the ratios in
    ``grid`` (default :data:`CLIP_GRID`); per channel when ``channel_axis`` is given.
    """
    if method not in ("max", "mse", "overq"):
        raise ValueError(f"method must be one of max, mse, overq, not {method!r}")
    x = np.asarray(x, dtype=np.float64)
    base = plain_scale(x, bits, channel_axis)
    if method == "max":
        return base
    grid = CLIP_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    red = _reduce_axes(x.ndim, channel_axis)
    best = np.full(base.shape, np.inf)
    best_s = base.copy()
    for ratio in grid:
        s = base * ratio
        if method == "mse":
            xq = plain_decode(plain_encode(x, bits, s), bits, s)
        else:
            if config is None or config.bits != bits:
                raise ValueError("method 'overq' needs config with config.bits == bits")
            xq = decode(encode(x, config, s, axis))
        mse = np.mean((x - xq) ** 2, axis=red, keepdims=True)
        better = mse < best
        best = np.where(better, mse, best)
        best_s = np.where(better, s, best_s)
    return best_s


def report(x, config, axis=-1, channel_axis=None, scales=None):
    """Per-tensor quantisation report of baseline, clipped and OverQ.

    Returns a dict: ``outliers`` (values outside the plain grid at the OverQ scale),
    ``accommodated`` (fraction of them given a range overwrite), ``refined`` (fraction of all
    values given a precision overwrite), ``meta_bits_per_value``, and ``mse``/``sqnr_db``
    dicts keyed ``baseline`` (range-preserving scale), ``clipped`` (MSE-optimal clipping) and
    ``overq``.  ``scales`` may give the three scales; otherwise they are calibrated on ``x``.
    """
    cfg = _as_config(config)
    x = np.asarray(x, dtype=np.float64)
    if scales is None:
        scales = {"baseline": calibrate(x, cfg.bits, "max", channel_axis=channel_axis),
                  "clipped": calibrate(x, cfg.bits, "mse", channel_axis=channel_axis),
                  "overq": calibrate(x, cfg.bits, "overq", cfg, axis, channel_axis)}
    xq = {k: plain_decode(plain_encode(x, cfg.bits, scales[k]), cfg.bits, scales[k])
          for k in ("baseline", "clipped")}
    t = encode(x, cfg, scales["overq"], axis)
    xq["overq"] = decode(t)
    return {
        "config": cfg.describe(),
        "values": int(x.size),
        "outliers": t.outliers,
        "accommodated": (t.accommodated / t.outliers) if t.outliers else 1.0,
        "saturated": t.saturated,
        "refined": t.refined / x.size if x.size else 0.0,
        "meta_bits_per_value": cfg.meta_bits,
        "mse": {k: float(np.mean((x - v) ** 2)) for k, v in xq.items()},
        "sqnr_db": {k: sqnr_db(x, v) for k, v in xq.items()},
        "scales": scales,
    }
