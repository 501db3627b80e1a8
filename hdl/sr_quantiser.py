"""Stochastic-rounding quantiser (Amaranth 0.5): :class:`SrQuantiser`, catalogue unit
``sr-quantise``.

One FP32 or BF16 code in per cycle, one code of an 8-bit-or-narrower float format out
(FP8 E4M3 / E5M2, FP6 E3M2 / E2M3, FP4 E2M1, the FNUZ variants), rounded once from the exact
input value, stochastically or to nearest-even: the unit a training accelerator puts before
storing activations or gradients (issue 17 section 1; Wang et al., "Training Deep Neural
Networks with 8-bit Floating Point Numbers", NeurIPS 2018, section 3.2).

Numeric contract (golden model :func:`lowbit.models.training.sr_quantise`, the same keyword
arguments): ``q = out_format.encode(in_format.decode(x), rounding, saturate, random_bits=r,
sr_bits=N)`` with

* stochastic rounding as :meth:`lowbit.models.formats.FloatFormat.encode` defines it: the
  magnitude is cut ``N`` bits below the result's LSB, the draw ``r`` (``N`` bits) is added
  there and the sum truncated, ``q = floor((floor(|x|/ulp * 2^N) + r) / 2^N)``;
  ``"nearest_even"`` is RNE (no random bits used);
* overflow (after rounding) and Inf inputs as the target's convention: ``ieee`` (E5M2) +-Inf,
  ``fn`` (OCP E4M3, no Inf) +-NaN ``S.1111.111``, ``fnuz`` NaN ``0x80``, ``finite`` (OCP MX FP6
  and FP4, neither Inf nor NaN) +-max; with ``saturate`` overflow and +-Inf give +-max;
* a NaN input gives the target's canonical NaN (``out_format.nan_code``: E4M3 ``0x7F``, E5M2
  ``0x7E``, fnuz ``0x80``); a target without NaN (FP6, FP4) gives ``+max`` (OCP MX v1.0 section
  5.3 leaves the conversion of NaN implementation-defined; lowbit's choice, in the model);
* subnormal inputs are exact, subnormal results are kept (never flushed), -0 gives -0 (fnuz:
  +0), the sign of a non-zero input is kept even when it rounds to zero.

Datapath: :func:`lowbit.hdl.formats.unpack` of the input (the significand with its hidden bit,
exact), then :func:`lowbit.hdl.fp_round.round_pack` (the normalisation, the stochastic or RNE
increment and the packing the FP MAC uses; the input bits are exact, so no sticky bit), a NaN
mux, and the output register.  Latency 1 cycle, one conversion per cycle.

Random bits (``rounding="stochastic"``): from an internal LFSR (:mod:`lowbit.hdl.lfsr`:
``lfsr_width`` 3..32 with the Xilinx XAPP052 maximal-length taps, period ``2^width - 1``
shifts, ``N`` shifts per draw, reset seed ``seed``; ports ``seed_in``/``reseed``), advanced
once per valid input, its draw ``i`` used by the ``i``-th valid input since reset or reseed
(:func:`lowbit.models.lfsr.lfsr_stream`), or from the input port ``rbits`` sampled with ``x``.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.models import training as model
from lowbit.models.checks import check_bool, check_choice

from .formats import unpack
from .fp_round import round_pack
from .lfsr import check_random_source, random_ports, random_source_into, sr_contract, sr_params
from .manifest import describe_format, fmt_ref, golden, lanes, positive_zero
from .unit import Param, Unit

__all__ = ["SrQuantiser", "UNITS", "max_sr_bits"]


def max_sr_bits(in_format):
    """The largest number N of random bits the quantiser takes for ``in_format`` codes: the
    source significand's width ``man_bits + 1`` (fp32 24, bf16 8).

    The draw is added to the N bits of the input just below the target's LSB.  For a result in
    the target's normal range at most ``in.man_bits - out.man_bits`` of them can be non-zero;
    for a subnormal or zero result the whole source significand can lie below the LSB, and
    ``N = man_bits + 1`` covers it whenever the input's leading bit is the first bit below the
    LSB (the largest inputs that may round to zero or to the smallest subnormal).  More bits
    than the source significand has would only refine the rounding of inputs below
    ``2^-(man_bits + 1)`` ulp, so the unit refuses them (issue 17: "N larger than the source
    can use" is an error).
    """
    return model.check_quant_input(in_format).man_bits + 1


class SrQuantiser(wiring.Component):
    """FP32/BF16 -> FP8/FP6/FP4 quantiser with stochastic or RNE rounding (see the module
    docstring for the numerics).

    Parameters
    ----------
    in_format : FloatFormat or str
        ``fp32`` or ``bf16``.
    out_format : FloatFormat or str
        A signed float format of at most 8 bits with subnormals: e4m3, e5m2, e4m3fnuz,
        e5m2fnuz, e3m2, e2m3, e2m1 (or eXmY).
    rounding : str
        ``"stochastic"`` (default) or ``"nearest_even"``.
    saturate : bool
        Overflow and +-Inf give +-max.
    sr_bits : int
        Stochastic rounding: N, 1..:func:`max_sr_bits` (fp32 24, bf16 8) and, with the LFSR,
        at most ``lfsr_width``.
    random_source : str
        ``"lfsr"`` (internal register, ports ``seed_in``/``reseed``) or ``"port"`` (``rbits``).
    lfsr_width, seed : int
        The LFSR's width (3..32) and reset seed (1..2^width - 1).

    Members
    -------
    x : In(in_format.bits)
        Input code.
    valid : In(1)
        ``x`` is valid this cycle (draws random bits from the LFSR).
    q : Out(out_format.bits)
        The quantised code of the ``x`` of the previous cycle.
    out_valid : Out(1)
        ``valid`` delayed by one cycle.
    rbits : In(sr_bits)
        ``random_source="port"``: the draw for this cycle's ``x``.
    seed_in : In(lfsr_width), reseed : In(1)
        ``random_source="lfsr"``: ``reseed`` loads ``seed_in`` (0 loads ``seed``); the next
        valid input uses the first draw of the new stream.  With ``valid`` in the same cycle
        that input still uses the old stream's draw.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it and the range).
    """

    latency = 1

    def __init__(self, in_format="fp32", out_format="e4m3", rounding="stochastic",
                 saturate=False, sr_bits=8, random_source="lfsr", lfsr_width=16, seed=0xACE1):
        self._in = model.check_quant_input(in_format)
        self._out = model.check_quant_output(out_format)
        self._rounding = check_choice("rounding", rounding, model.QUANT_ROUNDINGS)
        self._sat = check_bool("saturate", saturate)
        hi = max_sr_bits(self._in)
        if (self._rounding == "stochastic" and isinstance(sr_bits, int)
                and not isinstance(sr_bits, bool) and not 1 <= sr_bits <= hi):
            raise ValueError(f"sr_bits must be an integer from 1 to {hi} (the bits of the "
                             f"{self._in.name} significand), not {sr_bits!r}")
        self._sr = check_random_source(self._rounding == "stochastic", sr_bits, hi, random_source,
                                       lfsr_width, seed)
        super().__init__({"x": In(self._in.bits), "valid": In(1), "q": Out(self._out.bits),
                          "out_valid": Out(1), **random_ports(self._sr)})

    in_format = property(lambda self: self._in)
    out_format = property(lambda self: self._out)
    rounding = property(lambda self: self._rounding)
    saturate = property(lambda self: self._sat)
    sr_bits = property(lambda self: self._sr.sr_bits)
    random_source = property(lambda self: self._sr.random_source)
    lfsr_width = property(lambda self: self._sr.lfsr_width)
    seed = property(lambda self: self._sr.seed)

    @property
    def port_docs(self):
        return {
            "x": f"input, {self._in.name} code",
            "valid": "x valid this cycle" + (" (advances the LFSR)" if self._lfsr() else ""),
            "q": f"{self._out.name} code of the x of the previous cycle",
            "out_valid": "valid delayed by 1 cycle",
            **sr_contract(self._sr)["ports"],
        }

    def _lfsr(self):
        return self._sr.enabled and self._sr.random_source == "lfsr"

    def _nan_fill(self):
        return self._out.nan_code if self._out.has_nan else self._out.max_code

    def contract(self):
        fo = self._out
        neg = 1 << (fo.bits - 1)
        sat_or_finite = self._sat or fo.specials == "finite"
        if sat_or_finite:
            over = "+-max"
        elif fo.has_inf:
            over = "+-Inf"
        elif fo.specials == "fn":
            over = "+-NaN (S.1..1.1..1, no Inf)"
        else:
            over = f"NaN {fo.nan_code:#x}"
        nan_out = [self._nan_fill()] if fo.has_nan else []
        if fo.specials == "fn" and not self._sat:
            nan_out.append(fo.nan_code | neg)
        c = {
            "operation": f"q = {fo.name}(x), one rounding from the exact {self._in.name} value",
            "in_format": self._in.name, "out_format": fo.name,
            "rounding": "RNE" if not self._sr.enabled else (
                f"stochastic: the {self._sr.sr_bits} bits below the {fo.name} LSB plus the "
                f"draw r ({self._sr.sr_bits} bits), truncated: q = floor((floor(|x|/ulp * "
                f"2^{self._sr.sr_bits}) + r) / 2^{self._sr.sr_bits})"),
            "overflow": over + " (after rounding)",
            "specials": (f"Inf in -> {'+-max' if sat_or_finite else over}; NaN in -> "
                         + (f"{fo.nan_code:#x} (canonical NaN)" if fo.has_nan else
                            f"+max {fo.max_code:#x} ({fo.name} has no NaN)")),
            "subnormals": "exact (inputs and results, never flushed)",
            "zero_sign": ("-0 in -> +0 (fnuz has no -0)" if fo.specials == "fnuz" else
                          "kept: -0 -> -0, a negative input rounding to zero -> -0"),
            "latency_cycles": 1,
            "formats": {"in": describe_format(self._in), "out": describe_format(fo)},
            "packing": {"x": lanes("in", 1, self._in.bits), "q": lanes("out", 1, fo.bits)},
            "nan_outputs": {"q": nan_out},
            "timing": "q and out_valid show the result and valid of the previous cycle",
            "reset": {
                "signal": "rst", "synchronous": True, "active": "high",
                "clears": "q (the +0 code) and out_valid"
                          + ("; the LFSR reloads its state after seed" if self._lfsr() else ""),
                "outputs_after_reset": {"q": positive_zero(fo), "out_valid": 0},
                "idle_inputs": {"x": 0, "valid": 0,
                                **({"reseed": 0} if self._lfsr() else {})}},
            "golden_model": golden(
                "lowbit.models.training.sr_quantise",
                "the q codes (the q port, 1 cycle later; out_valid = valid)"
                + ("; random_bits: the draws of the stochastic_rounding entry"
                   if self._sr.enabled else ""),
                in_format=fmt_ref("in"), out_format=fmt_ref("out"), rounding=self._rounding,
                saturate=self._sat,
                **({"sr_bits": self._sr.sr_bits} if self._sr.enabled else {})),
        }
        if self._sr.enabled:
            c["stochastic_rounding"] = sr_contract(self._sr)["contract"]
        return c

    def elaborate(self, platform):
        m = Module()
        fi, fo = self._in, self._out
        u = unpack(m, fi, self.x, "in")
        rnd = random_source_into(m, self._sr, self.valid, self) if self._sr.enabled else None
        # Inf goes through round_pack as a huge finite value (exponent emax_in + 1 lies above
        # every target's emax): it overflows exactly as encode() treats Inf
        code = round_pack(m, fo, u.sign, u.sig, u.exp - fi.man_bits, 0, saturate=self._sat,
                          flush=False, finite=1, name="q", random=rnd)
        out = Signal(fo.bits, name="q_next")
        m.d.comb += out.eq(Mux(u.is_nan, self._nan_fill(), code))
        m.d.sync += [self.q.eq(out), self.out_valid.eq(self.valid)]
        return m


_OUT_HELP = ("output format: a signed float format of at most 8 bits (e4m3, e5m2, e3m2, e2m3, "
             "e2m1, e4m3fnuz, e5m2fnuz, eXmY)")

UNITS = [
    Unit("sr-quantise", SrQuantiser, (
        Param("in_format", "--from", "format", "fp32", "input format: fp32 or bf16"),
        Param("out_format", "--to", "format", "e4m3", _OUT_HELP),
        Param("rounding", "--rounding", "choice", "stochastic", "stochastic or RNE",
              choices=model.QUANT_ROUNDINGS),
        Param("saturate", "--saturate", "bool", False, "overflow and Inf to +-max"),
        *sr_params(when=("rounding", ("stochastic",))),
    ), "quantiser fp32/bf16 -> fp8/fp6/fp4 with stochastic rounding (LFSR or port) or RNE, "
       "one conversion per cycle"),
]
