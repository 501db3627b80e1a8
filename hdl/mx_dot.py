"""``MxDotUnit``: OCP MX block dot product with an FP32 accumulator, in Amaranth.

Two blocks of ``k`` elements (MXFP8 e4m3/e5m2, MXFP6 e2m3/e3m2, MXFP4 e2m1 or MXINT8) and
their two E8M0 scales per cycle; the ``k`` exact element products, scaled by
``2^(X_a + X_b)``, and the FP32 accumulator go through one shared-exponent adder
(:class:`lowbit.hdl.shared_exp_adder.Datapath`, knobs as in
:class:`lowbit.models.shared_exp.SharedExpConfig` with ``n = k``; by default
``acc_in_max=True``, with ``acc_in_max=False`` a separate rounding adder adds the block sum).
Golden model: :func:`lowbit.models.mx.mx_dot` with ``datapath=unit.config`` (one adder
step per block), or step by step :func:`lowbit.models.shared_exp.shared_exp_add` with
``scale_exp`` (tested bit-exactly in co-simulation).

A scale of 0xFF (NaN) makes the block's result NaN; MXINT8 elements are Q1.6 two's
complement (0x80 = -2 accepted).  OCP MX v1.0 section 6 leaves the internal precision
implementation-defined: the default ``frac_bits=26`` keeps 26 fraction bits below the
largest exponent (FP32's 23 plus guard bits), cut toward zero, and the result is rounded
to FP32 nearest-even.
"""

from amaranth.hdl import Signal, signed
from amaranth.lib.wiring import In

from lowbit.models import formats as _formats
from lowbit.models import mx as _mx
from lowbit.models.checks import check_int
from lowbit.models import shared_exp as _se

from .shared_exp_adder import (AccumulatingDot, adder_config, adder_params, adder_presets,
                               check_adder_knobs, preset_param)
from .unit import Param, Unit

__all__ = ["MxDotUnit", "UNITS"]


class MxDotUnit(AccumulatingDot):
    """MX block dot product accumulating into FP32 (see the module docstring).

    Parameters
    ----------
    elem : str
        Element type of a (``mxfp8_e4m3``, ``mxfp8_e5m2``, ``mxfp6_e2m3``, ``mxfp6_e3m2``,
        ``mxfp4_e2m1``, ``mxint8`` or the short names).
    b_elem : str or None
        Element type of b (default: ``elem``).
    k : int
        Block length, 1..64 (OCP: 32).
    align, frac_bits, cut, sum_bits, norm_frac_bits, norm_rounding, acc_in_max :
        Shared-exponent adder knobs (:class:`~lowbit.models.shared_exp.SharedExpConfig`).
    pipeline_stages : int
        0 or 1 input register stages before the one-cycle accumulator loop.

    Members
    -------
    a, b : In(k * element bits)
        Element codes, element i in bits [i*w, (i+1)*w).
    a_scale, b_scale : In(8)
        E8M0 scale codes (0xFF = NaN).
    valid : In(1)
        Add this block.
    first : In(1)
        Start a new dot product (the accumulator restarts from +0 for this block).
    o : Out(32)
        FP32 code of the accumulator, ``latency = pipeline_stages + 1`` cycles after the
        block's inputs.
    """

    def __init__(self, elem="mxfp8_e4m3", b_elem=None, k=32, align="operand_sum", frac_bits=26,
                 cut="toward_zero", sum_bits=None, norm_frac_bits=23,
                 norm_rounding="nearest_even", pipeline_stages=1, acc_in_max=True):
        a_fmt = _mx.element_format(elem)
        b_fmt = _mx.element_format(b_elem if b_elem not in (None, "") else elem)
        check_int("k", k, 1, 64)
        check_int("frac_bits", frac_bits, 0, 64)
        cfg = adder_config(k, align, frac_bits, cut, sum_bits, norm_frac_bits, norm_rounding,
                           acc_in_max)
        check_adder_knobs(frac_bits, sum_bits, a_fmt, b_fmt, cfg)
        ifb = (_mx.int_frac_bits(a_fmt), _mx.int_frac_bits(b_fmt))
        self._setup(a_fmt, b_fmt, k, cfg, ifb, pipeline_stages,
                    {"a_scale": In(8), "b_scale": In(8)})
        w_a, w_b = a_fmt.bits, b_fmt.bits
        sc = _mx.SCALE
        self.port_docs = {
            "a": f"{k} {a_fmt.name} element codes, element i in bits [i*{w_a}, (i+1)*{w_a})",
            "b": f"{k} {b_fmt.name} element codes, element i in bits [i*{w_b}, (i+1)*{w_b})",
            "a_scale": f"E8M0 scale of the a block (2^(code-{sc.bias}); {sc.nan_code:#x} = NaN)",
            "b_scale": f"E8M0 scale of the b block (2^(code-{sc.bias}); {sc.nan_code:#x} = NaN)",
            "valid": "add this pair of blocks into the accumulator",
            "first": "restart the accumulator from +0 with this pair of blocks",
            "o": f"FP32 code of the accumulator (NaN {_formats.fp32.nan_code:#010x})",
        }

    def _scale(self, m, sig):
        scale = Signal(signed(16), name="scale_exp")
        m.d.comb += scale.eq(sig["a_scale"] + sig["b_scale"] - 254)
        nan = Signal(name="scale_nan")
        m.d.comb += nan.eq((sig["a_scale"] == 0xFF) | (sig["b_scale"] == 0xFF))
        return scale, nan

    def contract(self):
        sc = _mx.SCALE
        c = self._contract("o = sum over blocks of X_a * X_b * sum_i P_a,i * P_b,i (FP32)",
                           "lowbit.models.mx.mx_dot(datapath=unit.config)",
                           {"a_scale": ("scale", sc), "b_scale": ("scale", sc)},
                           f"(a_scale - {sc.bias}) + (b_scale - {sc.bias}); the block's result is "
                           f"NaN if a_scale or b_scale is {sc.nan_code:#x}", True,
                           f"a scale {sc.nan_code:#x}, a NaN element, Inf * 0, or Inf terms of "
                           "both signs; sticky in the accumulator until first")
        c["elements"] = [self._a_fmt.name, self._b_fmt.name]
        ints = [f for f in (self._a_fmt, self._b_fmt) if isinstance(f, _formats.IntFormat)]
        if ints:
            f, q = ints[0], _mx.int_frac_bits(ints[0])
            c["mxint8"] = (f"Q1.{q} two's complement ({f.name} * 2^-{q}); "
                           f"{1 << (f.bits - 1):#x} = {f.min / 2 ** q} accepted on input")
        c["whole_dot_product"] = ("lowbit.models.mx.mx_dot(a, a_scales, b, b_scales, elem, b_elem, "
                                  f"k={self._cfg.n}, datapath=SharedExpConfig(**config)) over "
                                  "the blocks since first")
        return c


UNITS = [
    Unit("mx-dot", MxDotUnit, (
        Param("elem", "--a", "choice", "mxfp8_e4m3", "element type of a", tuple(_mx.ELEMENTS)),
        Param("b_elem", "--b", "str", "", "element type of b (default: --a)"),
        Param("k", "--k", "int", 32, "block length (1..64)"),
        preset_param(),
    ) + adder_params(26, "fraction bits kept below the max exponent (0..64)"),
        "OCP MX block dot product (k elements x 2 + 2 E8M0 scales) accumulating into FP32",
        presets=adder_presets("k")),
]
