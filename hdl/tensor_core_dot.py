"""``TensorCoreDot``: one hardware step of a GPU matrix instruction, ``D = sum of L products + C``.

The hardware twin of :mod:`lowbit.models.tensor_core`: a :class:`TensorCoreDot` is built from
an :class:`~lowbit.models.tensor_core.Instruction` (``tensor_core.instruction(arch, name)``), the
same object the model runs, and computes per clock cycle what the instruction's hardware does in
one step: its ``L = instruction.L`` products (with their block scales) and the incoming ``C``,
giving ``D``.  An instruction with ``K > L`` runs ``K / L`` such steps, each feeding its ``D``
in as the next ``C`` (the model's :meth:`~lowbit.models.tensor_core.Instruction.dpa` does the
same; the co-simulation bench :mod:`lowbit.sim.bench_tensor_core` chains the steps that way).

The arithmetic of each family is defined in the docstring of :mod:`lowbit.models.tensor_core`
and in :mod:`lowbit.models.shared_exp` (every knob of the instruction's
:class:`~lowbit.models.shared_exp.SharedExpConfig` has the meaning given there).  Sources: Xie,
Wang, Yang, Yang, "MMA-Sim: Bit-Accurate Reference Model of Tensor Cores and Matrix Cores"
(arXiv:2511.10909, 2025), whose algorithm names are used; the project's notes on tensor cores
restate them instruction by instruction.  The structures:

``T-FDPA`` / ``ST-FDPA`` (every NVIDIA ``mma`` / ``wgmma`` / ``tcgen05.mma`` without groups)
    The ``L`` products (exact significand products, exponent sums ``e_a + e_b``, plus
    ``e_sa + e_sb`` of the block's E8M0 scales for ST-FDPA) and C form one fused sum: a
    maximum-exponent tree in which zero terms stand at ``e_zero`` (``config.zero_exp``); every
    term cut toward zero to the grid ``2^(e_max - F)`` by its alignment shifter; one
    two's-complement adder tree; one normalisation and rounding ``rho`` (RZ-FP32, RZ-E8M13 or
    RNE-FP16, the FP16 rounding with FP16's exponent range and subnormals).
    (:class:`lowbit.hdl.shared_exp_adder.Datapath` provides the operand unpacking, the
    alignment shifter and the rounding/packing.)
``GST-FDPA`` (``kind::mxf4``, ``kind::mxf4nvf4``)
    The FP4 products are placed on one fixed-point grid (no shifter per product: an E2M1
    product has five possible exponents) and summed exactly in groups of ``G = 16``; each group
    sum times its two scale significands (UE4M3: 4 x 4 bits; E8M0: 1) is one term whose
    alignment exponent is the sum of the two scale exponents; the group terms and C then go
    through the fused sum above with F = 35.  A group whose products are all zero (or whose
    scale is zero) is a zero term at ``e_zero``; a group whose products cancel is a live term.
``TR-FDPA`` / ``GTR-FDPA`` (AMD CDNA3)
    The products (GTR: the even- and the odd-indexed ones in two trees, ``config.interleave``)
    form fused sums without C (F = 24, toward zero); GTR moves its two sums to the grid of the
    larger maximum by floor (arithmetic right shift).  Then the two-stage add: ``E = max(e_dot,
    e_c)`` (C dropped when more than F + 1 binades below ``e_dot`` for GTR), the dot sum on the
    grid ``2^(E - F2 - 1)`` by floor, C on ``2^(E - F)`` by floor, an exact add, a normalisation
    that cuts by floor to F2 = 31 fraction bits, and a final FP32 nearest-even rounding.  A
    product of magnitude ``>= 2^128`` is an Inf (``product_overflow="inf"``).
``E-FDPA`` (AMD CDNA1, and the exact-sum reference :data:`REFERENCES`)
    The exact sum of the products and C rounded once to FP32 nearest even.  The products are
    summed exactly on a fixed-point grid (as GST's groups); the sum is normalised and added to C
    by a two-operand adder whose window (the wider operand plus three bits, the rest of the
    smaller operand jammed into a sticky bit) makes the one rounding exact.  (The model reaches
    the same result as a fused sum with F = 300.)
``CDNA2-FTZ`` (``_1k`` bf16)
    Not a fused sum: each product rounded to FP32 (nearest even), a tree of FP32 nearest-even
    adders (pairs, then the pair sums), then C added the same way; subnormal inputs read as +0,
    subnormal products, sums and C flushed to zero of their sign; IEEE signed zeros and NaN/Inf.

Every family: a NaN operand or scale, Inf x 0 or Inf - Inf give the instruction's NaN
(``instruction.nan_code``: NVIDIA ``0x7FFFFFFF`` / ``0x7FFF``, AMD ``0x7FC00000``); otherwise an
Inf term gives that Inf; a zero result of a fused sum is +0.

Pipelining.  ``pipeline_stages = p`` (0..4) puts registers at the first ``p`` cut points of the
family's list :data:`CUTS` (``latency == p``; one step per cycle at any depth).  For the fused
families the cuts are, in that order: after the alignment (before the adder tree), after the
adder tree, after the maximum exponent, after the products (before the maximum tree).
"""

import dataclasses
import operator

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.models import formats as _formats
from lowbit.models import shared_exp as _se
from lowbit.models import tensor_core as _tc
from lowbit.models.checks import check_choice, check_int

from .formats import unpack
from .manifest import describe_format, fmt_ref, golden, lanes
from .shared_exp_adder import EXP_SHAPE, NO_EXP, Datapath, balanced_tree, bit_length, max_tree
from .unit import Param, Unit, pipeline_param

__all__ = ["TensorCoreDot", "IntDot", "UNITS", "REFERENCES", "CUTS", "MAX_PIPELINE",
           "INT_DOT_MAX_PIPELINE", "resolve_instruction", "preset_names", "family"]

#: Most pipeline registers a unit takes (``pipeline_stages`` 0..4).
MAX_PIPELINE = 4

#: Cut points of each structure, in the order in which ``pipeline_stages`` enables them.
CUTS = {
    "fused": ("align", "sum", "emax", "terms"),
    "group": ("align", "sum", "emax", "terms"),
    "two_stage": ("align", "sum", "emax", "acc"),
    "exact": ("align", "sum", "terms", "norm"),
    "fp_tree": ("pair", "sum", "terms", "input"),
}

_STRUCTURE = {"T-FDPA": "fused", "ST-FDPA": "fused", "GST-FDPA": "group", "TR-FDPA": "two_stage",
              "GTR-FDPA": "two_stage", "E-FDPA": "exact", "CDNA2-FTZ": "fp_tree"}


def _reference(name, fmt, L, config):
    fmt = _formats.get(fmt)
    return _tc.Instruction(
        name=name, arch="Reference", instruction=name, vendor="lowbit", a_format=fmt,
        b_format=fmt, cd_format=_formats.fp32, K=L, block=None, scale_format=None,
        algorithm="E-FDPA", config=config, nan_code=_se.NAN32)


#: Reference datapaths that are not a GPU instruction: the exact sum of L products and C
#: rounded once to FP32 nearest even (E-FDPA, as CDNA1's: ``frac_bits=300`` in the model
#: holds every term of these formats exactly), the reference of ``lowbit compare
#: --tensor-cores``.  Preset names ``Reference:<name>`` or ``<name>``.
REFERENCES = {
    name: _reference(name, fmt, L, _se.SharedExpConfig(
        n=L, align="operand_sum", acc_in_max=True, frac_bits=300, cut="toward_zero",
        norm_frac_bits=23, norm_rounding="nearest_even", name=name))
    for name, fmt, L in (("exact_e4m3_f32", "e4m3", 32), ("exact_e5m2_f32", "e5m2", 32),
                         ("exact_e2m1_f32", "e2m1", 64))
}


def preset_names():
    """Every name :func:`resolve_instruction` takes, as ``ARCH:INSTRUCTION`` (canonical)."""
    names = [f"{arch}:{instr}" for arch, instr in _tc.instructions()]
    return names + [f"Reference:{n}" for n in REFERENCES]


def _short_names():
    return [_tc.instruction(a, i).name for a, i in _tc.instructions()] + list(REFERENCES)


def resolve_instruction(value):
    """The :class:`~lowbit.models.tensor_core.Instruction` named by ``value``:
    ``"ARCH:INSTRUCTION"`` as in ``cases.json`` (``"Hopper:m64n8k32.f32.e4m3.e4m3"``; the
    architecture in any letter case), a short name (``"hopper_wgmma_e4m3_f32"``), a
    :data:`REFERENCES` name, or an ``Instruction`` (returned as it is).

    Raises
    ------
    TypeError
        Neither a string nor an ``Instruction``.
    ValueError
        An unknown name (the message lists the short names).
    """
    if isinstance(value, _tc.Instruction):
        return value
    if not isinstance(value, str):
        raise TypeError(f"instruction must be an Instruction or a preset name, not {value!r}")
    v = value.strip()
    if ":" in v:
        arch, instr = v.split(":", 1)
        if arch.strip().lower() == "reference" and instr.strip() in REFERENCES:
            return REFERENCES[instr.strip()]
        try:
            return _tc.instruction(arch, instr)
        except ValueError:
            pass
    elif v in REFERENCES:
        return REFERENCES[v]
    else:
        for arch, instr in _tc.instructions():
            ins = _tc.instruction(arch, instr)
            if ins.name == v:
                return ins
    raise ValueError(f"instruction (--preset) must be one of "
                     f"{', '.join(repr(n) for n in preset_names())} (ARCH:INSTRUCTION as in "
                     f"lowbit.models.tensor_core.instructions()) or a short name "
                     f"({', '.join(_short_names())}), not {value!r}")


def family(instruction):
    """The structure (a key of :data:`CUTS`) of an instruction's algorithm."""
    return _STRUCTURE[instruction.algorithm]


class _Pipe:
    """Registers signals at the enabled cut points (the others pass them through)."""

    def __init__(self, m, cuts):
        self._m, self._cuts = m, frozenset(cuts)

    def __call__(self, where, sigs):
        if where not in self._cuts:
            return list(sigs)
        out = []
        for j, s in enumerate(sigs):
            if isinstance(s, Const):
                out.append(s)
                continue
            r = Signal(s.shape(), name=f"r_{where}_{j}")
            self._m.d.sync += r.eq(s)
            out.append(r)
        return out


def _add_tree(m, values, width, name, pipe=None, where=None):
    """Two's-complement sum of ``values`` in ``width`` bits (balanced tree); with ``pipe`` a
    register cut after half of its levels."""
    cut = None if pipe is None else (lambda level: pipe(where, level))
    return balanced_tree(m, values, signed(width), name, operator.add, cut=cut)


def _term_flags(m, t, i, name="t"):
    """The zero flag of a term dict (not live, not NaN, not Inf)."""
    z = Signal(name=f"{name}zero{i}")
    m.d.comb += z.eq(~t["live"] & ~t["nan"] & ~t["inf"])
    t["zero"] = z
    return t


def _specials(m, terms, name="s"):
    """(nan, pinf, ninf) over the terms (Inf of both signs is NaN)."""
    pinf, ninf, nan = Signal(name=f"{name}_pinf"), Signal(name=f"{name}_ninf"), \
        Signal(name=f"{name}_nan")
    m.d.comb += [
        pinf.eq(Cat(*[t["inf"] & ~t["sign"] for t in terms]).any()),
        ninf.eq(Cat(*[t["inf"] & t["sign"] for t in terms]).any()),
    ]
    m.d.comb += nan.eq(Cat(*[t["nan"] for t in terms]).any() | (pinf & ninf))
    return nan, pinf, ninf


def _fixed_point(m, t, e_lo, width, i, name="x"):
    """A product term placed on the fixed grid of the lowest exponent sum ``e_lo``: signed
    ``sig << (E - e_lo)`` (0 when the term is not live)."""
    sh = Signal(range(max(2, width)), name=f"{name}sh{i}")
    m.d.comb += sh.eq(t["E"] - e_lo)
    mag = Signal(width, name=f"{name}mag{i}")
    m.d.comb += mag.eq(t["sig"] << sh)
    v = Signal(signed(width + 1), name=f"{name}{i}")
    m.d.comb += v.eq(Mux(t["live"], Mux(t["sign"], -mag, mag), 0))
    return v


class TensorCoreDot(wiring.Component):
    """One step of a GPU matrix instruction: ``d = sum_{i<L} a_i b_i (scales) + c``.

    Parameters
    ----------
    instruction : Instruction or str
        An :class:`~lowbit.models.tensor_core.Instruction`, or its name (see
        :func:`resolve_instruction`: ``"Hopper:m64n8k32.f32.e4m3.e4m3"``,
        ``"hopper_wgmma_e4m3_f32"``, ``"exact_e4m3_f32"``).  The catalogue's ``--preset``.
    pipeline_stages : int
        0..4 register stages at the first cut points of :data:`CUTS` for the instruction's
        structure; ``latency == pipeline_stages``.

    Members
    -------
    a, b : In(L * w)
        Element codes, element i in bits ``[i*w, (i+1)*w)``; ``w`` is the format's width, 32
        for tf32 (an FP32 bit pattern whose low 13 bits are ignored: the truncation to TF32).
    scale_a, scale_b : In(L / block * 8)
        Block-scale codes (E8M0, or UE4M3 in the low 7 bits, bit 7 ignored), block j in bits
        ``[8j, 8j + 8)``; only for block-scaled instructions.
    c : In(32 or 16)
        Bit pattern of C (FP32, or FP16 for ``.f16`` instructions).
    d : Out(32 or 16)
        Bit pattern of D, ``latency`` cycles after the inputs.

    Numerics: the instruction's (module docstring); golden model
    ``dataclasses.replace(instruction, K=instruction.L).dpa(a, b, c, scale_a, scale_b)``.

    Raises
    ------
    TypeError, ValueError
        An unknown instruction or a pipeline depth outside 0..4 (the message names the
        parameter and the allowed values).
    """

    def __init__(self, instruction="Hopper:m64n8k32.f32.e4m3.e4m3", pipeline_stages=0):
        ins = resolve_instruction(instruction)
        check_int("pipeline_stages", pipeline_stages, 0, MAX_PIPELINE)
        check_choice("instruction.algorithm", ins.algorithm, tuple(_STRUCTURE))
        cfg = ins.config
        if ins.K % cfg.n:
            raise ValueError(f"instruction K={ins.K} must be a multiple of its L={cfg.n}")
        self._ins = ins
        self._stages = pipeline_stages
        self._family = family(ins)
        L = cfg.n
        self._wa = 32 if ins.a_format is _tc.TF32 else ins.a_format.bits
        self._wb = 32 if ins.b_format is _tc.TF32 else ins.b_format.bits
        cw = ins.cd_format.bits
        ports = {"a": In(L * self._wa), "b": In(L * self._wb)}
        self._nscale = 0
        if ins.block is not None:
            self._nscale = max(1, L // ins.block)
            ports["scale_a"] = In(8 * self._nscale)
            ports["scale_b"] = In(8 * self._nscale)
        ports["c"] = In(cw)
        ports["d"] = Out(cw)
        super().__init__(ports)
        fa, fb, fcd = ins.a_format.name, ins.b_format.name, ins.cd_format.name
        self.port_docs = {
            "a": f"{L} {fa} codes, element i in bits [i*{self._wa}, (i+1)*{self._wa})" +
                 (" (FP32 patterns, low 13 bits ignored)" if self._wa == 32 else ""),
            "b": f"{L} {fb} codes, element i in bits [i*{self._wb}, (i+1)*{self._wb})" +
                 (" (FP32 patterns, low 13 bits ignored)" if self._wb == 32 else ""),
            "c": f"{fcd} bit pattern of C",
            "d": f"{fcd} bit pattern of D = sum of the {L} products + C "
                 f"({ins.algorithm}); NaN {ins.nan_code:#x}",
        }
        if self._nscale:
            sf = ins.scale_format.name
            for p in ("scale_a", "scale_b"):
                self.port_docs[p] = (f"{self._nscale} {sf} block scales (one per {ins.block} "
                                     f"elements), scale j in bits [8j, 8j+8)" +
                                     (", bit 7 ignored" if sf == "ue4m3" else ""))

    # -- public read-only parameters ------------------------------------------------------

    @property
    def instruction(self):
        """The :class:`~lowbit.models.tensor_core.Instruction` (the model's object)."""
        return self._ins

    @property
    def config(self):
        """The instruction's :class:`~lowbit.models.shared_exp.SharedExpConfig`."""
        return self._ins.config

    @property
    def step_instruction(self):
        """The instruction with ``K = L``: the golden model of one step of this unit."""
        return dataclasses.replace(self._ins, K=self._ins.config.n)

    @property
    def structure(self):
        """The family's structure, a key of :data:`CUTS`."""
        return self._family

    @property
    def L(self):
        return self._ins.config.n

    @property
    def element_bits(self):
        """Port bits per element of a and b (32 for tf32)."""
        return self._wa, self._wb

    @property
    def scales_per_step(self):
        """Block scales per operand and step (0 without block scaling)."""
        return self._nscale

    @property
    def pipeline_stages(self):
        return self._stages

    @property
    def cuts(self):
        """The cut points that hold registers."""
        return CUTS[self._family][:self._stages]

    @property
    def latency(self):
        return self._stages

    @property
    def is_sequential(self):
        return self._stages > 0

    def contract(self):
        ins = self._ins
        fmts = {"a": ins.a_format, "b": ins.b_format, "cd": ins.cd_format}
        if self._nscale:
            fmts["scale"] = ins.scale_format
        packing = {}
        for port, w in (("a", self._wa), ("b", self._wb)):
            pk = lanes(port, self.L, w)
            if w == 32:                      # tf32 in an FP32 bit pattern
                pk.update(value_offset=13, value_bits=19,
                          ignored="the low 13 bits of each lane (the truncation to tf32); the "
                                  "golden model takes the whole FP32 pattern")
            packing[port] = pk
        if self._nscale:
            for port in ("scale_a", "scale_b"):
                pk = lanes("scale", self._nscale, 8)
                if ins.scale_format.bits == 7:         # UE4M3: bit 7 (the E4M3 sign) ignored
                    pk.update(value_offset=0, value_bits=7, ignored="bit 7 of each lane")
                packing[port] = pk
        packing["c"] = lanes("cd", 1, ins.cd_format.bits)
        packing["d"] = lanes("cd", 1, ins.cd_format.bits)
        zero = ("+0: a zero D is +0 whatever the signs of the products and of C"
                if self._family != "fp_tree" else
                "IEEE 754 signed zero: an exact zero sum is +0, or -0 if every addend is -0")
        return {
            "function": "d = sum_{i<L} a_i * b_i" + (" * scale_a[i/block] * scale_b[i/block]"
                                                     if self._nscale else "") + " + c",
            "model": "lowbit.models.tensor_core.instruction(arch, instruction) with K = L "
                     "(one step; K/L steps chained through c)",
            "instruction": ins.describe(),
            "structure": self._family,
            "pipeline_cuts": list(self.cuts),
            "nan": f"{ins.nan_code:#x}",
            "zero": "+0" if self._family != "fp_tree" else "IEEE signed zero",
            "latency_cycles": self._stages,
            "formats": {role: describe_format(f) for role, f in fmts.items()},
            "packing": packing,
            "nan_outputs": {"d": [ins.nan_code]},
            "zero_sign": zero,
            "overflow_rule": "a finite sum beyond the D format's range gives the signed Inf "
                             "(rounding as the instruction's; module docstring)",
            "timing": (f"d is the result for the inputs of {self._stages} cycle(s) earlier"
                       if self._stages else "combinational: d follows the inputs"),
            "reset": ({"signal": "rst", "synchronous": True, "active": "high",
                       "clears": f"the {self._stages} pipeline register stage(s) "
                                 f"({', '.join(self.cuts)}) to 0",
                       "outputs_after_reset": {"d": 0},
                       "idle_inputs": {p: 0 for p in packing if p != "d"}}
                      if self._stages else None),
            "golden_model": golden(
                "lowbit.models.tensor_core.step_dpa",
                f"the D codes (the d port, {self._stages} cycle(s) later) of one step: a and b "
                "as (V, L) arrays of lane codes, c as (V,) codes, scale_a/scale_b as (V, "
                "scales) lane codes where the instruction has block scales",
                arch=ins.arch, name=ins.name),
        }

    # -- hardware ---------------------------------------------------------------------------

    def _codes(self, sig, w, fmt, n):
        if fmt is _tc.TF32:
            return [sig[i * w + 13:(i + 1) * w] for i in range(n)]
        return [sig[i * w:(i + 1) * w] for i in range(n)]

    def _scale_fields(self, m, code, j, which):
        """sig, exp, zero, nan of one block-scale code."""
        fmt = self._ins.scale_format
        if fmt is _tc.UE4M3:
            code = code[:7]                          # the sign bit is forced to 0
        u = unpack(m, fmt, code, name=f"{which}{j}")
        return u.sig, u.exp, u.is_zero, u.is_nan, fmt.man_bits

    def elaborate(self, platform):
        m = Module()
        pipe = _Pipe(m, self.cuts)
        ins, L = self._ins, self.L
        ins_ports = [self.a, self.b, self.c]
        if self._nscale:
            ins_ports += [self.scale_a, self.scale_b]
        regs = pipe("input", ins_ports)
        a, b, c = regs[:3]
        sa = sb = None
        if self._nscale:
            sa, sb = regs[3:5]
        a_codes = self._codes(a, self._wa, ins.a_format, L)
        b_codes = self._codes(b, self._wb, ins.b_format, L)
        build = {"fused": self._fused, "group": self._group, "two_stage": self._two_stage,
                 "exact": self._exact, "fp_tree": self._fp_tree}[self._family]
        d = build(m, pipe, a_codes, b_codes, c, sa, sb)
        m.d.comb += self.d.eq(d)
        return m

    def _out_codes(self):
        fmt = self._ins.cd_format
        inf = ((1 << fmt.exp_bits) - 1) << fmt.man_bits
        return self._ins.nan_code, inf, inf | (1 << (fmt.bits - 1))

    def _finish(self, m, code, zero, nan, pinf, ninf):
        nanc, pinfc, ninfc = self._out_codes()
        w = self._ins.cd_format.bits
        o = Signal(w, name="result")
        m.d.comb += o.eq(Mux(nan, nanc, Mux(pinf, pinfc, Mux(ninf, ninfc,
                                                               Mux(zero, 0, code)))))
        return o

    def _register_terms(self, pipe, where, terms, keys=("sign", "sig", "E", "live", "nan",
                                                         "inf", "zero")):
        flat = [t[k] for t in terms for k in keys]
        regs = pipe(where, flat)
        out = []
        for i, t in enumerate(terms):
            u = dict(t)
            for j, k in enumerate(keys):
                u[k] = regs[i * len(keys) + j]
            out.append(u)
        return out

    def _fused_reduce(self, m, pipe, dp, terms, W):
        """Max (zero terms at ``zero_exp``), align, add, round: the fused sum of ``terms``."""
        cfg = self._ins.config
        F = cfg.frac_bits
        terms = [_term_flags(m, t, i) for i, t in enumerate(terms)]
        terms = self._register_terms(pipe, "terms", terms)
        ze = NO_EXP if cfg.zero_exp is None else cfg.zero_exp
        Emax = max_tree(m, [Mux(t["live"], t["E"], Mux(t["zero"], ze, NO_EXP)) for t in terms],
                         "emax")
        Ez = Signal(EXP_SHAPE, name="emax_z")
        m.d.comb += Ez.eq(Mux(Emax == NO_EXP, 0, Emax))
        nan, pinf, ninf = _specials(m, terms)
        flat = pipe("emax", [Ez, nan, pinf, ninf] + [t[k] for t in terms
                                                      for k in ("sign", "sig", "E", "live")])
        Ez, nan, pinf, ninf = flat[:4]
        for i, t in enumerate(terms):
            t.update(zip(("sign", "sig", "E", "live"), flat[4 + 4 * i:8 + 4 * i]))
        vals = [dp.align_term(m, t, Ez, i, width=W) for i, t in enumerate(terms)]
        regs = pipe("align", vals + [Ez, nan, pinf, ninf])
        vals, (Ez, nan, pinf, ninf) = regs[:len(vals)], regs[len(vals):]
        S = _add_tree(m, vals, W, "sum")
        S, Ez, nan, pinf, ninf = pipe("sum", [S, Ez, nan, pinf, ninf])
        code, zero = dp.round_pack(m, S, Ez - F, "n")
        return self._finish(m, code, zero, nan, pinf, ninf)

    # -- T-FDPA / ST-FDPA ----------------------------------------------------------------------

    def _fused(self, m, pipe, a_codes, b_codes, c, sa, sb):
        ins = self._ins
        cfg = ins.config
        dp = Datapath(cfg, ins.a_format, ins.b_format)
        scale = scale_nan = None
        if sa is not None:
            # ST-FDPA: one block per step (block = L); the scales' exponents join the
            # products' (an E8M0 scale's significand is 1)
            ga, ea, za, na, _ = self._scale_fields(m, sa[:8], 0, "sa")
            gb, eb, zb, nb, _ = self._scale_fields(m, sb[:8], 0, "sb")
            scale = Signal(EXP_SHAPE, name="scale_exp")
            m.d.comb += scale.eq(ea + eb)
            scale_nan = Signal(name="scale_nan")
            m.d.comb += scale_nan.eq(na | nb)
        terms = dp.terms(m, a_codes, b_codes, scale=scale, scale_nan=scale_nan)
        terms.append(dp.acc_term(m, c))
        return self._fused_reduce(m, pipe, dp, terms, dp.full_bits)

    # -- GST-FDPA ------------------------------------------------------------------------------

    def _group(self, m, pipe, a_codes, b_codes, c, sa, sb):
        ins = self._ins
        cfg = ins.config
        L, G = cfg.n, cfg.group
        fa, fb = ins.a_format, ins.b_format
        dp = Datapath(cfg, fa, fb)
        prods = dp.terms(m, a_codes, b_codes)
        e_lo = fa.emin + fb.emin
        span = fa.emax + fb.emax - e_lo
        Msum = fa.man_bits + fb.man_bits
        sigw = (fa.man_bits + 1) + (fb.man_bits + 1)
        xw = sigw + span                         # a product on the fixed grid 2^(e_lo - Msum)
        gw = xw + (G - 1).bit_length() + 1      # signed group sum
        # scale pairs: significand product, exponent sum, zero, NaN
        pairs = []
        for j in range(self._nscale):
            ga, ea, za, na, Ms = self._scale_fields(m, sa[8 * j:8 * j + 8], j, "sa")
            gb, eb, zb, nb, _ = self._scale_fields(m, sb[8 * j:8 * j + 8], j, "sb")
            sig = Signal(len(ga) + len(gb), name=f"ssig{j}")
            m.d.comb += sig.eq(ga * gb)
            e = Signal(EXP_SHAPE, name=f"sexp{j}")
            m.d.comb += e.eq(ea + eb)
            pairs.append((sig, e, za | zb, na | nb, 2 * Ms))
        groups = []
        for g in range(L // G):
            members = prods[g * G:(g + 1) * G]
            xs = [_fixed_point(m, t, e_lo, xw, g * G + k) for k, t in enumerate(members)]
            S = _add_tree(m, xs, gw, f"gsum{g}_")
            glive = Cat(*[t["live"] for t in members]).any()
            gnan = Cat(*[t["nan"] for t in members]).any()
            gpinf = Cat(*[t["inf"] & ~t["sign"] for t in members]).any()
            gninf = Cat(*[t["inf"] & t["sign"] for t in members]).any()
            ssig, sexp, szero, snan, cs = pairs[(g * G) // ins.block]
            neg = S[gw - 1]
            absS = Signal(gw, name=f"gabs{g}")
            m.d.comb += absS.eq(Mux(neg, -S, S))
            mag = Signal(gw + len(ssig), name=f"gmag{g}")
            m.d.comb += mag.eq(absS * ssig)
            # specials as the model's scale_terms: NaN scale or element, Inf x zero scale,
            # Inf of both signs inside the group
            nan = Signal(name=f"gnan{g}")
            m.d.comb += nan.eq(gnan | snan | (gpinf & gninf) | ((gpinf | gninf) & szero))
            inf = Signal(name=f"ginf{g}")
            m.d.comb += inf.eq((gpinf | gninf) & ~nan)
            live = Signal(name=f"glive{g}")
            m.d.comb += live.eq(glive & ~szero & ~snan & ~inf & ~nan)
            sign = Signal(name=f"gsign{g}")
            m.d.comb += sign.eq(Mux(inf, gninf, neg))
            # value = mag * 2^(e_lo - Msum + sexp - cs): alignment exponent sexp, so the
            # distance E - lsb is the constant cs + Msum - e_lo
            cconst = cs + Msum - e_lo
            groups.append(dict(sign=sign, sig=mag, E=sexp, c=Const(cconst, EXP_SHAPE),
                               c_min=cconst, live=live, nan=nan, inf=inf))
        groups.append(dp.acc_term(m, c))
        F = cfg.frac_bits
        top = max(len(t["sig"]) - t["c_min"] for t in groups)
        W = F + max(top, 1) + len(groups).bit_length() + 1
        return self._fused_reduce(m, pipe, dp, groups, W)

    # -- TR-FDPA / GTR-FDPA ------------------------------------------------------------------

    def _two_stage(self, m, pipe, a_codes, b_codes, c, sa, sb):
        ins = self._ins
        cfg = ins.config
        fa, fb = ins.a_format, ins.b_format
        dp = Datapath(cfg, fa, fb)
        F, F2, I = cfg.frac_bits, cfg.acc_frac_bits, cfg.interleave
        prods = dp.terms(m, a_codes, b_codes)
        acc = dp.acc_term(m, c)
        if cfg.product_overflow == "inf":
            # a product of magnitude >= 2^(emax + 1) is an Inf of its sign
            for i, t in enumerate(prods):
                top = Signal(EXP_SHAPE, name=f"ptop{i}")
                m.d.comb += top.eq(t["E"] - t["c"] + bit_length(m, t["sig"], f"plen{i}") - 1)
                big = Signal(name=f"pbig{i}")
                m.d.comb += big.eq(t["live"] & (top > cfg.emax))
                live, inf = Signal(name=f"plive{i}"), Signal(name=f"pinf{i}")
                m.d.comb += [live.eq(t["live"] & ~big), inf.eq(t["inf"] | big)]
                t["live"], t["inf"] = live, inf
        nan, pinf, ninf = _specials(m, prods + [acc])
        n_j = cfg.n // I
        W1 = F + cfg.term_bound(fa, fb) + n_j.bit_length() + 1
        parts = []
        for j in range(I):
            ts = prods[j::I]
            ej = max_tree(m, [Mux(t["live"], t["E"], NO_EXP) for t in ts], f"emax{j}_")
            has = Signal(name=f"has{j}")
            m.d.comb += has.eq(Cat(*[t["live"] for t in ts]).any())
            parts.append((ts, ej, has))
        flat = [nan, pinf, ninf] + [acc[k] for k in ("sign", "sig", "E", "live")]
        for ts, ej, has in parts:
            flat += [ej, has] + [t[k] for t in ts for k in ("sign", "sig", "E", "live")]
        flat = pipe("emax", flat)
        nan, pinf, ninf = flat[:3]
        acc = dict(acc, **dict(zip(("sign", "sig", "E", "live"), flat[3:7])))
        pos = 7
        new_parts = []
        for ts, _, _ in parts:
            ej, has = flat[pos:pos + 2]
            pos += 2
            nts = []
            for t in ts:
                nts.append(dict(t, **dict(zip(("sign", "sig", "E", "live"), flat[pos:pos + 4]))))
                pos += 4
            new_parts.append((nts, ej, has))
        sums = []
        for j, (ts, ej, has) in enumerate(new_parts):
            ejz = Signal(EXP_SHAPE, name=f"emaxz{j}")
            m.d.comb += ejz.eq(Mux(has, ej, 0))
            vals = [dp.align_term(m, t, ejz, f"{j}_{i}", frac_bits=F, cut=cfg.cut, width=W1)
                    for i, t in enumerate(ts)]
            sums.append((vals, ejz, has))
        flat = [nan, pinf, ninf] + [acc[k] for k in ("sign", "sig", "E", "live")]
        for vals, ejz, has in sums:
            flat += [ejz, has] + vals
        flat = pipe("align", flat)
        nan, pinf, ninf = flat[:3]
        acc = dict(acc, **dict(zip(("sign", "sig", "E", "live"), flat[3:7])))
        pos = 7
        parts = []
        for j, (vals, _, _) in enumerate(sums):
            ejz, has = flat[pos:pos + 2]
            vs = flat[pos + 2:pos + 2 + len(vals)]
            pos += 2 + len(vals)
            parts.append((_add_tree(m, vs, W1, f"psum{j}_"), ejz, has))
        # the dot result: one sum (TR) or the interleaved sums moved to the grid of the larger
        # maximum by floor (arithmetic shift, acc_cut) and added (GTR)
        Ws = W1 + 1
        if I == 1:
            S0, Ed, has_dot = parts[0]
            S = Signal(signed(Ws), name="dsum")
            m.d.comb += S.eq(S0)
        else:
            Ed = max_tree(m, [Mux(h, e, NO_EXP) for _, e, h in parts], "edot")
            has_dot = Signal(name="has_dot")
            m.d.comb += has_dot.eq(Cat(*[h for _, _, h in parts]).any())
            shifted = []
            for j, (Sj, ej, h) in enumerate(parts):
                d = Signal(EXP_SHAPE, name=f"dsh{j}")
                m.d.comb += d.eq(Ed - ej)
                dc = Signal(range(W1 + 1), name=f"dshc{j}")
                m.d.comb += dc.eq(Mux(d > W1, W1, d))
                r = Signal(signed(Ws), name=f"drec{j}")
                m.d.comb += r.eq(Mux(h, Sj >> dc, 0))
                shifted.append(r)
            S = _add_tree(m, shifted, Ws, "dsum")
            Ed2 = Signal(EXP_SHAPE, name="edot_z")
            m.d.comb += Ed2.eq(Mux(has_dot, Ed, 0))
            Ed = Ed2
        S, Ed, has_dot, nan, pinf, ninf, *accv = pipe(
            "sum", [S, Ed, has_dot, nan, pinf, ninf] + [acc[k] for k in ("sign", "sig", "E",
                                                                          "live")])
        acc = dict(acc, **dict(zip(("sign", "sig", "E", "live"), accv)))
        # the two-stage add with C (model: lowbit.models.shared_exp._aligned_add)
        alive = Signal(name="acc_alive")
        if cfg.acc_drop:
            m.d.comb += alive.eq(acc["live"] & ~(has_dot & (acc["E"] < Ed - (F + 1))))
        else:
            m.d.comb += alive.eq(acc["live"])
        E = Signal(EXP_SHAPE, name="e2")
        m.d.comb += E.eq(Mux(has_dot, Mux(alive & (acc["E"] > Ed), acc["E"], Ed),
                             Mux(alive, acc["E"], 0)))
        k = Signal(EXP_SHAPE, name="k2")
        m.d.comb += k.eq(E - Ed)                 # >= 0 when there is a dot sum
        up = F2 + 1 - F                           # the dot's grid 2^(Ed - F) -> 2^(E - F2 - 1)
        Wx = Ws + up
        kc = Signal(range(Wx + 1), name="k2c")
        m.d.comb += kc.eq(Mux(k > Wx, Wx, k))
        X = Signal(signed(Wx), name="dwide")
        m.d.comb += X.eq(Mux(has_dot, S, 0) << up)
        Dv = Signal(signed(Wx), name="dv")
        m.d.comb += Dv.eq(X >> kc)               # floor (arithmetic shift)
        Wc = 24 + 3
        cterm = dict(acc, live=alive)
        Cv = dp.align_term(m, cterm, E, "_c", frac_bits=F, cut=cfg.acc_cut, width=Wc)
        WT = max(Wx, Wc + up) + 1
        T = Signal(signed(WT), name="tsum")
        m.d.comb += T.eq(Dv + (Cv << up))
        lo = Signal(EXP_SHAPE, name="tlo")
        m.d.comb += lo.eq(E - (F2 + 1))
        T, lo, nan, pinf, ninf = pipe("acc", [T, lo, nan, pinf, ninf])
        # normalise, cut by floor to F2 fraction bits (exponents >= emin), then round
        neg = T[WT - 1]
        mag = Signal(WT, name="tmag")
        m.d.comb += mag.eq(Mux(neg, -T, T))
        Lb = bit_length(m, mag, "tlen")
        Er = Signal(EXP_SHAPE, name="ter")
        m.d.comb += Er.eq(lo + Lb - 1)
        t = Signal(EXP_SHAPE, name="tt")
        m.d.comb += t.eq(Mux(Er < cfg.emin, cfg.emin, Er) - F2)
        sh = Signal(EXP_SHAPE, name="tsh")
        m.d.comb += sh.eq(t - lo)
        rs = Signal(range(WT + 1), name="trs")
        m.d.comb += rs.eq(Mux(sh < 0, 0, Mux(sh > WT, WT, sh)))
        ls = Signal(range(F2 + 2), name="tls")
        m.d.comb += ls.eq(Mux(sh < 0, Mux(-sh > F2 + 1, F2 + 1, -sh), 0))
        Y = Signal(2 * WT, name="ty")
        m.d.comb += Y.eq(Cat(Const(0, WT), mag) >> rs)
        q = Y[WT:]
        sticky = Y[:WT].any()
        qf = Signal(F2 + 3, name="tq")
        m.d.comb += qf.eq((q + (neg & sticky)) << ls)
        Sq = Signal(signed(F2 + 5), name="tqs")
        m.d.comb += Sq.eq(Mux(neg, -qf, qf))
        code, zero = dp.round_pack(m, Sq, t, "r", frac_bits=cfg.norm_frac_bits,
                                   rounding=cfg.norm_rounding)
        return self._finish(m, code, zero, nan, pinf, ninf)

    # -- E-FDPA --------------------------------------------------------------------------------

    def _exact(self, m, pipe, a_codes, b_codes, c, sa, sb):
        ins = self._ins
        cfg = ins.config
        fa, fb = ins.a_format, ins.b_format
        dp = Datapath(cfg, fa, fb)
        prods = dp.terms(m, a_codes, b_codes)
        acc = dp.acc_term(m, c)
        nan, pinf, ninf = _specials(m, prods + [acc])
        e_lo = fa.emin + fb.emin
        Msum = fa.man_bits + fb.man_bits
        q0 = e_lo - Msum                          # exponent of the fixed grid's LSB
        xw = (fa.man_bits + 1) + (fb.man_bits + 1) + fa.emax + fb.emax - e_lo
        flat = [nan, pinf, ninf] + [acc[k] for k in ("sign", "sig", "E", "live")] + \
            [t[k] for t in prods for k in ("sign", "sig", "E", "live")]
        flat = pipe("terms", flat)
        nan, pinf, ninf = flat[:3]
        acc = dict(acc, **dict(zip(("sign", "sig", "E", "live"), flat[3:7])))
        prods = [dict(t, **dict(zip(("sign", "sig", "E", "live"), flat[7 + 4 * i:11 + 4 * i])))
                 for i, t in enumerate(prods)]
        xs = [_fixed_point(m, t, e_lo, xw, i) for i, t in enumerate(prods)]
        WP = xw + len(xs).bit_length() + 1
        xs, (nan, pinf, ninf), accv = (lambda r: (r[:len(xs)], r[len(xs):len(xs) + 3],
                                                  r[len(xs) + 3:]))(
            pipe("align", xs + [nan, pinf, ninf] + [acc[k] for k in ("sign", "sig", "E",
                                                                      "live")]))
        acc = dict(acc, **dict(zip(("sign", "sig", "E", "live"), accv)))
        P = _add_tree(m, xs, WP, "psum")
        P, nan, pinf, ninf, *accv = pipe("sum", [P, nan, pinf, ninf] +
                                         [acc[k] for k in ("sign", "sig", "E", "live")])
        acc = dict(acc, **dict(zip(("sign", "sig", "E", "live"), accv)))
        # normalise the exact product sum: magnitude with its MSB at the top of WP bits
        pneg = P[WP - 1]
        pmag = Signal(WP, name="pmag")
        m.d.comb += pmag.eq(Mux(pneg, -P, P))
        LP = bit_length(m, pmag, "plen")
        lz = Signal(range(WP + 1), name="plz")
        m.d.comb += lz.eq(WP - LP)
        pn = Signal(WP, name="pnorm")
        m.d.comb += pn.eq(pmag << lz)
        eP = Signal(EXP_SHAPE, name="pexp")
        m.d.comb += eP.eq(q0 + LP - 1)
        pz = Signal(name="pzero")
        m.d.comb += pz.eq(pmag == 0)
        pn, eP, pz, pneg, nan, pinf, ninf, *accv = pipe(
            "norm", [pn, eP, pz, pneg, nan, pinf, ninf] + [acc[k] for k in ("sign", "sig", "E",
                                                                            "live")])
        acc = dict(acc, **dict(zip(("sign", "sig", "E", "live"), accv)))
        # one correctly rounded add of C and P: both left-aligned in a window of
        # max(WP, 24) + 3 bits under the larger top exponent R, the smaller shifted right with
        # the bits shifted out jammed into the window's LSB
        Wwin = max(WP, 24) + 3
        R = Signal(EXP_SHAPE, name="rtop")
        cl = acc["live"]
        m.d.comb += R.eq(Mux(pz, acc["E"], Mux(cl & (acc["E"] > eP), acc["E"], eP)))

        def place(sig, width, top_e, live, name):
            dsh = Signal(EXP_SHAPE, name=f"{name}_d")
            m.d.comb += dsh.eq(R - top_e)
            dc = Signal(range(Wwin + 2), name=f"{name}_dc")
            m.d.comb += dc.eq(Mux(dsh > Wwin + 1, Wwin + 1, dsh))
            Z = Signal(2 * Wwin + 1, name=f"{name}_z")
            m.d.comb += Z.eq(Cat(Const(0, Wwin + 1), sig << (Wwin - width)) >> dc)
            v = Signal(Wwin, name=f"{name}_w")
            m.d.comb += v.eq(Mux(live, Z[Wwin + 1:] | Z[:Wwin + 1].any(), 0))
            return v

        vP = place(pn, WP, eP, ~pz, "wp")
        vC = place(acc["sig"], 24, acc["E"], cl, "wc")
        T = Signal(signed(Wwin + 2), name="wsum")
        m.d.comb += T.eq(Mux(pneg, -vP, vP) + Mux(acc["sign"], -vC, vC))
        code, zero = dp.round_pack(m, T, R - Wwin + 1, "e")
        return self._finish(m, code, zero, nan, pinf, ninf)

    # -- CDNA2 FTZ tree ------------------------------------------------------------------------

    def _fp_tree(self, m, pipe, a_codes, b_codes, c, sa, sb):
        ins = self._ins
        cfg = ins.config
        fa, fb = ins.a_format, ins.b_format
        dp = Datapath(cfg, fa, fb)
        nanc = ins.nan_code

        def operand(code, fmt, name):
            u = unpack(m, fmt, code, name=name)
            # FTZ: a subnormal input reads as +0 (Xie et al., MMA-Sim: CDNA2 _1k)
            zero = Signal(name=f"{name}_z")
            sign = Signal(name=f"{name}_s")
            m.d.comb += [zero.eq(u.is_zero | u.is_sub), sign.eq(u.sign & ~u.is_sub)]
            return sign, u.sig, u.exp, zero, u.is_nan, u.is_inf

        def ftz(code, name):
            o = Signal(32, name=name)
            m.d.comb += o.eq(Mux(code[23:31] == 0, Cat(Const(0, 31), code[31]), code))
            return o

        def ieee_add(x, y, name):
            """x + y of FP32 codes (no subnormal inputs), nearest even, IEEE specials and
            signed zeros, then the result's subnormals flushed."""
            ex, ey = x[23:31], y[23:31]
            nx = (ex == 0xFF) & (x[:23] != 0)
            ny = (ey == 0xFF) & (y[:23] != 0)
            ix = (ex == 0xFF) & (x[:23] == 0)
            iy = (ey == 0xFF) & (y[:23] == 0)
            zx, zy = x[:31] == 0, y[:31] == 0
            r = dp.fp_add(m, x, y)
            nan = nx | ny | (ix & iy & (x[31] != y[31]))
            o = Signal(32, name=name)
            m.d.comb += o.eq(Mux(nan, nanc, Mux(ix, x, Mux(iy, y, Mux(
                zx & zy, Cat(Const(0, 31), x[31] & y[31]), r)))))
            return ftz(o, name + "_f")

        prods = []
        for i, (ac, bc) in enumerate(zip(a_codes, b_codes)):
            s1, g1, e1, z1, n1, i1 = operand(ac, fa, f"a{i}")
            s2, g2, e2, z2, n2, i2 = operand(bc, fb, f"b{i}")
            sign = Signal(name=f"ps{i}")
            m.d.comb += sign.eq(s1 ^ s2)
            sig = Signal(len(g1) + len(g2), name=f"pg{i}")
            m.d.comb += sig.eq(Mux(z1 | z2, 0, g1 * g2))
            esum = Signal(EXP_SHAPE, name=f"pe{i}")
            m.d.comb += esum.eq(e1 + e2)
            nan = Signal(name=f"pn{i}")
            m.d.comb += nan.eq(n1 | n2 | (i1 & z2) | (i2 & z1))
            inf = Signal(name=f"pi{i}")
            m.d.comb += inf.eq((i1 | i2) & ~nan)
            prods.append((sign, sig, esum, nan, inf))
        flat = pipe("terms", [x for p in prods for x in p] + [c])
        c = flat.pop()
        prods = [flat[5 * i:5 * i + 5] for i in range(len(prods))]
        Msum = fa.man_bits + fb.man_bits
        codes = []
        for i, (sign, sig, esum, nan, inf) in enumerate(prods):
            # the product rounded to FP32 (nearest even; exact except for range)
            S = Signal(signed(len(sig) + 1), name=f"pv{i}")
            m.d.comb += S.eq(Mux(sign, -sig, sig))
            code, zero = dp.round_pack(m, S, esum - Msum, f"p{i}_", frac_bits=23,
                                       rounding="nearest_even")
            o = Signal(32, name=f"pc{i}")
            m.d.comb += o.eq(Mux(nan, nanc, Mux(inf, Cat(Const(0x7F800000, 31), sign),
                                                Mux(zero, Cat(Const(0, 31), sign), code))))
            codes.append(ftz(o, f"pf{i}"))
        level = codes
        k = 0
        where = ("pair", "sum")
        while len(level) > 1:
            nxt = []
            for j in range(0, len(level) - 1, 2):
                nxt.append(ieee_add(level[j], level[j + 1], f"add{k}_{j}"))
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
            level = pipe(where[min(k, 1)], level + [c])
            c = level.pop()
            k += 1
        s = level[0]
        cu = unpack(m, _formats.fp32, c, name="cin")
        cz = Signal(32, name="cftz")
        m.d.comb += cz.eq(Mux(cu.is_sub, Cat(Const(0, 31), c[31]), c))
        return ieee_add(cz, s, "dadd")


#: Deepest :class:`IntDot`: registers after the products and after the adder tree.
INT_DOT_MAX_PIPELINE = 2


class IntDot(wiring.Component):
    """INT dot product of length ``k``: ``o = c + sum_{i<k} a_i b_i`` (two's complement,
    ``acc_bits`` wide, wrapping), the integer baseline of ``lowbit compare --tensor-cores``.

    Parameters
    ----------
    a_format, b_format : IntFormat
        Operand formats (2..16 bits).
    k : int
        Products per step, 1..128.
    acc_bits : int
        Width of c and o, 8..64 (the sum wraps modulo ``2^acc_bits``).
    pipeline_stages : int
        0..2 registers: after the products, after the adder tree.  ``latency ==
        pipeline_stages``.

    Members
    -------
    a, b : In(k * bits)
        Operand codes, element i in bits ``[i*bits, (i+1)*bits)``.
    c : In(acc_bits)
        Incoming sum (two's complement).
    o : Out(acc_bits)
        ``c + sum a_i b_i`` modulo ``2^acc_bits``.
    """

    def __init__(self, a_format="int8", b_format="int8", k=32, acc_bits=32, pipeline_stages=0):
        fmts = []
        for name, f in (("a_format", a_format), ("b_format", b_format)):
            f = _formats.get(f) if isinstance(f, str) else f
            if not isinstance(f, _formats.IntFormat):
                raise TypeError(f"{name} must be an integer format, not {f!r}")
            check_int(f"{name} bits", f.bits, 2, 16)
            fmts.append(f)
        self._a_fmt, self._b_fmt = fmts
        self._k = check_int("k", k, 1, 128)
        self._acc = check_int("acc_bits", acc_bits, 8, 64)
        self._stages = check_int("pipeline_stages", pipeline_stages, 0, INT_DOT_MAX_PIPELINE)
        super().__init__({"a": In(k * self._a_fmt.bits), "b": In(k * self._b_fmt.bits),
                          "c": In(acc_bits), "o": Out(acc_bits)})
        self.port_docs = {
            "a": f"{k} {self._a_fmt.name} codes, element i in bits [i*{self._a_fmt.bits}, ...)",
            "b": f"{k} {self._b_fmt.name} codes, element i in bits [i*{self._b_fmt.bits}, ...)",
            "c": f"incoming sum, {acc_bits}-bit two's complement",
            "o": f"c + sum of the {k} products, modulo 2^{acc_bits}",
        }

    a_format = property(lambda self: self._a_fmt)
    b_format = property(lambda self: self._b_fmt)
    k = property(lambda self: self._k)
    acc_bits = property(lambda self: self._acc)
    pipeline_stages = property(lambda self: self._stages)

    @property
    def latency(self):
        return self._stages

    @property
    def is_sequential(self):
        return self._stages > 0

    def contract(self):
        acc = _formats.int_format(self._acc)
        return {"function": "o = c + sum_i a_i * b_i (mod 2^acc_bits)",
                "model": "numpy integer dot product", "overflow": "wraps",
                "latency_cycles": self._stages,
                "formats": {"a": describe_format(self._a_fmt), "b": describe_format(self._b_fmt),
                            "acc": describe_format(acc)},
                "packing": {"a": lanes("a", self._k, self._a_fmt.bits, self._a_fmt.signed),
                            "b": lanes("b", self._k, self._b_fmt.bits, self._b_fmt.signed),
                            "c": lanes("acc", 1, self._acc, True),
                            "o": lanes("acc", 1, self._acc, True)},
                "nan_outputs": {},
                "overflow_rule": f"modulo 2^{self._acc} (two's complement wrap), no rounding",
                "timing": (f"o is the result for the inputs of {self._stages} cycle(s) earlier"
                           if self._stages else "combinational: o follows the inputs"),
                "reset": ({"signal": "rst", "synchronous": True, "active": "high",
                           "clears": f"the {self._stages} pipeline register stage(s) to 0",
                           "outputs_after_reset": {"o": 0},
                           "idle_inputs": {"a": 0, "b": 0, "c": 0}}
                          if self._stages else None),
                "golden_model": golden(
                    "lowbit.models.mac.int_dot",
                    f"the signed sums (the o port's two's-complement value, {self._stages} "
                    "cycle(s) later): a and b as (V, k) lane codes, c as (V,) signed values",
                    a_format=fmt_ref("a"), b_format=fmt_ref("b"), acc_bits=self._acc)}

    def elaborate(self, platform):
        m = Module()
        wa, wb, W = self._a_fmt.bits, self._b_fmt.bits, self._acc
        sa = self._a_fmt.signed
        sb = self._b_fmt.signed

        def elem(x, w, i, s):
            v = x[i * w:(i + 1) * w]
            return v.as_signed() if s else v

        prods = []
        for i in range(self._k):
            p = Signal(signed(wa + wb + 1), name=f"p{i}")
            m.d.comb += p.eq(elem(self.a, wa, i, sa) * elem(self.b, wb, i, sb))
            prods.append(p)
        c = self.c.as_signed()
        if self._stages >= 1:
            regs = []
            for i, p in enumerate(prods + [c]):
                r = Signal(p.shape(), name=f"r_p{i}")
                m.d.sync += r.eq(p)
                regs.append(r)
            prods, c = regs[:-1], regs[-1]
        S = _add_tree(m, prods + [c], W, "sum")
        if self._stages >= INT_DOT_MAX_PIPELINE:
            r = Signal(signed(W), name="r_sum")
            m.d.sync += r.eq(S)
            S = r
        m.d.comb += self.o.eq(S)
        return m


UNITS = [
    Unit("tensor-core-dot", TensorCoreDot, (
        Param("instruction", "--preset", "str", "Hopper:m64n8k32.f32.e4m3.e4m3",
              "the matrix instruction, ARCH:INSTRUCTION as in "
              "lowbit.models.tensor_core.instructions() (quote names with spaces) or its short "
              "name (hopper_wgmma_e4m3_f32), or Reference:exact_e4m3_f32"),
        pipeline_param(MAX_PIPELINE, 0, 0, "at the structure's cut points, "
                       "lowbit.hdl.tensor_core_dot.CUTS"),
    ), "one step of a GPU matrix instruction: L products (block scales) + C -> D, bit-exact"),
    Unit("int-dot", IntDot, (
        Param("a_format", "--a", "format", "int8", "format of the a operands",
              ("int8", "int4", "uint8", "int16")),
        Param("b_format", "--b", "format", "int8", "format of the b operands",
              ("int8", "int4", "uint8", "int16")),
        Param("k", "--k", "int", 32, "products per step (1..128)"),
        Param("acc_bits", "--acc-bits", "int", 32, "width of c and o (8..64, wraps)"),
        pipeline_param(INT_DOT_MAX_PIPELINE, 0, 0, "after the products, after the adder tree"),
    ), "integer dot product of k products + c, wrapping (baseline of compare --tensor-cores)"),
]
