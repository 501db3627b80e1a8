"""Matrix instructions of NVIDIA tensor cores and AMD matrix cores, bit for bit: D = A.B + C.

``instruction(arch, instruction)`` returns an :class:`Instruction` for one PTX / AMDGPU
matrix instruction (``arch`` and ``instruction`` spelled as in
``tests/data/tensor_cores/cases.json``: ``instruction("Hopper", "m64n8k32.f32.e4m3.e4m3")``);
:func:`instructions` lists the supported ones.  :meth:`Instruction.dpa` computes one output
element per row, ``d = sum_k a[k] * b[k] + c`` over the instruction's K (block-scaled
instructions: ``sum_k a[k] b[k] sa[k // block] sb[k // block] + c``), from the natural
element codes and returns the bit patterns of D; :meth:`Instruction.gemm` chains the
instruction along any K as the libraries do, with an optional FP32 promotion every N
elements (the H100 preset ``lowbit.models.shared_exp.PRESETS["h100_fp8"]`` is the Hopper
FP8 instruction chained with N = 128).

One model, a handful of knobs
-----------------------------
Every instruction is a :class:`lowbit.models.shared_exp.SharedExpConfig` (the same
configuration object the hardware adder is built from) run by
:func:`lowbit.models.shared_exp.step`; an instruction whose K exceeds L (the products the
hardware sums in one step) runs K / L steps, each feeding its result in as the next
step's C.  The algorithms, with the knob values that express them (source: Xie, Wang,
Yang, Yang, "MMA-Sim: Bit-Accurate Reference Model of Tensor Cores and Matrix Cores",
arXiv:2511.10909, 2025, whose names T-FDPA etc. are used here, as summarised in the
project's notes on tensor cores; validated on the GPUs by its authors; the Hopper FP8
path also by our H100 measurements, ``tests/data/h100/README.md``):

T-FDPA (every NVIDIA tensor core).  The L products and C form one fused sum: maximum of
the exponents ``e_a + e_b`` (C's exponent; zero terms at ``e_zero``), every term cut
toward zero to ``2^(e_max - F)``, exact sum, one rounding ``rho``; a zero result is +0.
Knobs: ``n = L``, ``align="operand_sum"``, ``acc_in_max=True``, ``frac_bits = F``,
``cut="toward_zero"``, ``zero_exp = e_zero``; ``rho`` = RZ-FP32 (``norm_frac_bits=23``,
``"toward_zero"``), RZ-E8M13 (13, ``"toward_zero"``) or RNE-FP16 (10, ``"nearest_even"``,
``acc_format="fp16"``).

=====================================================  ====  ======  ===========  ======
instructions                                           F     L       rho          e_zero
=====================================================  ====  ======  ===========  ======
Volta ``mma`` fp16                                     23    4       RZ-FP32 /    -131 /
                                                                     RNE-FP16     -19
Turing, Ampere ``mma`` fp16/bf16/tf32                  24    8 / 4   RZ-FP32 /    -132 /
                                                             (tf32)  RNE-FP16     -20
Ada ``mma`` FP8 k32                                    13    16      RZ-E8M13 /   -132 /
                                                                     RNE-FP16     -20
Hopper ``wgmma`` FP8 k32                               13    32      RZ-E8M13 /   -133 /
                                                                     RNE-FP16     -21
Hopper ``wgmma`` fp16/bf16/tf32                        25    16 / 8  RZ-FP32      -133
Blackwell ``tcgen05.mma`` kind::f16 / f8f6f4,          25    16 /    RZ-FP32      -133
RTX Blackwell ``mma`` kind::f8f6f4                           32
=====================================================  ====  ======  ===========  ======

ST-FDPA (``kind::mxf8f6f4``, block 32, E8M0 scales).  T-FDPA with F = 25, L = 32, RZ-FP32,
e_zero -133, the products multiplied by their block scales (exponents added).

GST-FDPA (``kind::mxf4`` block 32 E8M0, ``kind::mxf4nvf4`` block 16 UE4M3).  The 64 FP4
products are summed exactly in groups of G = 16 (``group=16``); each group sum times its
scales is one term whose alignment exponent is the sum of the two scales' exponents;
the four group terms and C are aligned with F = 35, cut toward zero, rounded RZ-FP32;
``n = 64``, e_zero -139.  (That a group term aligns by its scales' exponents, its sum not
normalised, is how we read MMA-Sim's description; it is the reading that reproduces the
shipped vectors: aligning by the normalised exponent of the group term fails about 2%
of them.)

TR-FDPA (AMD CDNA3 fp16/bf16/xf32; L = 8, xf32 4).  The products alone form a fused sum
(F = 24, cut toward zero); that sum and C meet at ``E = max(e_dot, e_c)`` (``e_dot`` the
products' maximum exponent): the sum is cut by floor to F2 + 1 = 32 fraction bits below
E, C to F = 24, the exact sum normalised, cut by floor to F2 = 31 fraction bits, and
rounded to FP32 nearest-even; a product beyond FP32's range is an Inf.  Knobs:
``acc_in_max=False``, ``acc_add="aligned"``, ``acc_cut="floor"``, ``acc_frac_bits=31``,
``product_overflow="inf"``.  GTR-FDPA (CDNA3 FP8, FNUZ formats, L = 16): the same with
the even- and odd-indexed products in two fused sums (``interleave=2``) combined by floor
on the grid of the larger maximum, and C dropped when more than F + 1 binades below the
products' maximum (``acc_drop=True``).

CDNA2 ``_1k`` bf16 (FTZ).  ``adder="fp_tree"``, ``ftz=True``, ``n = 4``: FP32 products,
pairwise FP32 nearest-even additions within groups of 4, each group then added to C,
subnormal inputs read as +0 and subnormal products and sums flushed to signed zero.

CDNA1 fp16 (E-FDPA, L = 4).  The exact sum of the L products and C rounded once to FP32
nearest even: a fused sum with ``frac_bits=300`` (wide enough to hold every fp16 product
and FP32 C exactly).

Inputs and outputs
------------------
Element codes are the formats' natural bit patterns: uint8 for FP8 (OCP E4M3/E5M2, AMD
E4M3FNUZ/E5M2FNUZ), FP6 (0..63) and FP4 E2M1 (0..15); uint16 for fp16/bf16; uint32 for tf32
(an FP32 bit pattern: its low 13 bits are cleared, i.e. the value is truncated, MMA-Sim).
C and D are FP32 (uint32) or FP16 (uint16) bit patterns.  Block scales are E8M0 codes or
UE4M3 codes (an E4M3 code read with its sign bit forced to 0; NaN 0x7F, zero 0x00).
NaN results: NVIDIA's canonical NaN (FP32 0x7FFFFFFF, FP16 0x7FFF, MMA-Sim); AMD results
0x7FC00000 (a choice: the IEEE default NaN; the vectors only say "a NaN").  Operand NaN,
Inf * 0 or Inf - Inf give NaN; a single signed Inf gives that Inf.

The shipped reference vectors (``tests/data/tensor_cores``, 2,048 per instruction, from
MMA-Sim 2.1.1) are matched bit for bit by the tests (NaN: any NaN where the reference is
NaN); this module is written from the descriptions above, not from MMA-Sim's code.
"""

import dataclasses

import numpy as np

from . import formats as _formats
from . import shared_exp as _se
from .checks import check_int

__all__ = ["Instruction", "instruction", "instructions", "step_dpa", "TF32", "UE4M3", "ARCHS"]

#: TF32 (NVIDIA's TensorFloat-32: FP32's exponent, 10 fraction bits), as a 19-bit format;
#: its operands arrive as FP32 bit patterns (:meth:`Instruction.dpa`).
TF32 = _formats.FloatFormat("tf32", 8, 10, 127, "ieee")
#: UE4M3 block scale of NVFP4: E4M3 without a sign bit (NaN 0x7F, max 0x7E = 448).
UE4M3 = _formats.FloatFormat("ue4m3", 4, 3, 7, "fn", signed=False)

_FORMATS = {"tf32": TF32, "ue4m3": UE4M3}

#: Result rounding ``rho`` -> (norm_frac_bits, norm_rounding, acc_format).
_RHO = {"RZ-FP32": (23, "toward_zero", "fp32"), "RZ-E8M13": (13, "toward_zero", "fp32"),
        "RNE-FP16": (10, "nearest_even", "fp16"), "RNE-FP32": (23, "nearest_even", "fp32")}

_NAN = {("NVIDIA", "fp32"): 0x7FFFFFFF, ("NVIDIA", "fp16"): 0x7FFF, ("AMD", "fp32"): 0x7FC00000}


def _fmt(name):
    return _FORMATS.get(name) or _formats.get(name)


def _t_fdpa(F, L, rho, e_zero, name):
    nf, nr, accf = _RHO[rho]
    return _se.SharedExpConfig(n=L, align="operand_sum", acc_in_max=True, frac_bits=F,
                               cut="toward_zero", norm_frac_bits=nf, norm_rounding=nr,
                               zero_exp=e_zero, acc_format=accf, name=name)


def _tr_fdpa(L, name, interleave=1, acc_drop=False):
    return _se.SharedExpConfig(n=L, align="operand_sum", acc_in_max=False, frac_bits=24,
                               cut="toward_zero", norm_frac_bits=23,
                               norm_rounding="nearest_even", acc_add="aligned",
                               acc_cut="floor", acc_frac_bits=31, interleave=interleave,
                               acc_drop=acc_drop, product_overflow="inf", name=name)


def _gst_fdpa(name):
    return dataclasses.replace(_t_fdpa(35, 64, "RZ-FP32", -139, name), group=16)


def _cdna2_ftz(name):
    return _se.SharedExpConfig(n=4, adder="fp_tree", ftz=True, name=name)


def _e_fdpa(L, name):
    return _se.SharedExpConfig(n=L, align="operand_sum", acc_in_max=True, frac_bits=300,
                               cut="toward_zero", norm_frac_bits=23,
                               norm_rounding="nearest_even", name=name)


# (name, arch, instruction, a, b, c/d, K, block, scale format, algorithm, config factory)
_TABLE = [
    ("volta_mma_f16_f32", "Volta", "m8n8k4.f32.f16.f16.f32", "fp16", "fp16", "fp32", 4,
     None, None, "T-FDPA", lambda n: _t_fdpa(23, 4, "RZ-FP32", -131, n)),
    ("volta_mma_f16_f16", "Volta", "m8n8k4.f16.f16.f16.f16", "fp16", "fp16", "fp16", 4,
     None, None, "T-FDPA", lambda n: _t_fdpa(23, 4, "RNE-FP16", -19, n)),
    ("turing_mma_f16_f32", "Turing", "m16n8k8.f32.f16.f16.f32", "fp16", "fp16", "fp32", 8,
     None, None, "T-FDPA", lambda n: _t_fdpa(24, 8, "RZ-FP32", -132, n)),
    ("ampere_mma_f16_f32", "Ampere", "m16n8k16.f32.f16.f16.f32", "fp16", "fp16", "fp32", 16,
     None, None, "T-FDPA", lambda n: _t_fdpa(24, 8, "RZ-FP32", -132, n)),
    ("ampere_mma_f16_f16", "Ampere", "m16n8k16.f16.f16.f16.f16", "fp16", "fp16", "fp16", 16,
     None, None, "T-FDPA", lambda n: _t_fdpa(24, 8, "RNE-FP16", -20, n)),
    ("ampere_mma_bf16_f32", "Ampere", "m16n8k16.f32.bf16.bf16.f32", "bf16", "bf16", "fp32", 16,
     None, None, "T-FDPA", lambda n: _t_fdpa(24, 8, "RZ-FP32", -132, n)),
    ("ampere_mma_tf32_f32", "Ampere", "m16n8k8.f32.tf32.tf32.f32", "tf32", "tf32", "fp32", 8,
     None, None, "T-FDPA", lambda n: _t_fdpa(24, 4, "RZ-FP32", -132, n)),
    ("ada_mma_e4m3_f32", "Ada Lovelace", "m16n8k32.f32.e4m3.e4m3.f32", "e4m3", "e4m3", "fp32",
     32, None, None, "T-FDPA", lambda n: _t_fdpa(13, 16, "RZ-E8M13", -132, n)),
    ("ada_mma_e5m2xe4m3_f32", "Ada Lovelace", "m16n8k32.f32.e5m2.e4m3.f32", "e5m2", "e4m3",
     "fp32", 32, None, None, "T-FDPA", lambda n: _t_fdpa(13, 16, "RZ-E8M13", -132, n)),
    ("ada_mma_e4m3_f16", "Ada Lovelace", "m16n8k32.f16.e4m3.e4m3.f16", "e4m3", "e4m3", "fp16",
     32, None, None, "T-FDPA", lambda n: _t_fdpa(13, 16, "RNE-FP16", -20, n)),
    ("hopper_wgmma_e4m3_f32", "Hopper", "m64n8k32.f32.e4m3.e4m3", "e4m3", "e4m3", "fp32", 32,
     None, None, "T-FDPA", lambda n: _t_fdpa(13, 32, "RZ-E8M13", -133, n)),
    ("hopper_wgmma_e5m2_f32", "Hopper", "m64n8k32.f32.e5m2.e5m2", "e5m2", "e5m2", "fp32", 32,
     None, None, "T-FDPA", lambda n: _t_fdpa(13, 32, "RZ-E8M13", -133, n)),
    ("hopper_wgmma_e4m3xe5m2_f32", "Hopper", "m64n8k32.f32.e4m3.e5m2", "e4m3", "e5m2", "fp32",
     32, None, None, "T-FDPA", lambda n: _t_fdpa(13, 32, "RZ-E8M13", -133, n)),
    ("hopper_wgmma_e4m3_f16", "Hopper", "m64n8k32.f16.e4m3.e4m3", "e4m3", "e4m3", "fp16", 32,
     None, None, "T-FDPA", lambda n: _t_fdpa(13, 32, "RNE-FP16", -21, n)),
    ("hopper_wgmma_bf16_f32", "Hopper", "m64n8k16.f32.bf16.bf16", "bf16", "bf16", "fp32", 16,
     None, None, "T-FDPA", lambda n: _t_fdpa(25, 16, "RZ-FP32", -133, n)),
    ("hopper_wgmma_f16_f32", "Hopper", "m64n8k16.f32.f16.f16", "fp16", "fp16", "fp32", 16,
     None, None, "T-FDPA", lambda n: _t_fdpa(25, 16, "RZ-FP32", -133, n)),
    ("hopper_wgmma_tf32_f32", "Hopper", "m64n8k8.f32.tf32.tf32", "tf32", "tf32", "fp32", 8,
     None, None, "T-FDPA", lambda n: _t_fdpa(25, 8, "RZ-FP32", -133, n)),
    ("blackwell_tcgen05_e4m3_f32", "Blackwell", "m64n8k32.kind::f8f6f4.f32.e4m3.e4m3", "e4m3",
     "e4m3", "fp32", 32, None, None, "T-FDPA", lambda n: _t_fdpa(25, 32, "RZ-FP32", -133, n)),
    ("blackwell_tcgen05_e5m2xe2m1_f32", "Blackwell", "m64n8k32.kind::f8f6f4.f32.e5m2.e2m1",
     "e5m2", "e2m1", "fp32", 32, None, None, "T-FDPA",
     lambda n: _t_fdpa(25, 32, "RZ-FP32", -133, n)),
    ("blackwell_tcgen05_e2m1_f32", "Blackwell", "m64n8k32.kind::f8f6f4.f32.e2m1.e2m1", "e2m1",
     "e2m1", "fp32", 32, None, None, "T-FDPA", lambda n: _t_fdpa(25, 32, "RZ-FP32", -133, n)),
    ("blackwell_tcgen05_e3m2xe2m3_f32", "Blackwell", "m64n8k32.kind::f8f6f4.f32.e3m2.e2m3",
     "e3m2", "e2m3", "fp32", 32, None, None, "T-FDPA",
     lambda n: _t_fdpa(25, 32, "RZ-FP32", -133, n)),
    ("blackwell_tcgen05_bf16_f32", "Blackwell", "m64n8k16.kind::f16.f32.bf16.bf16", "bf16",
     "bf16", "fp32", 16, None, None, "T-FDPA", lambda n: _t_fdpa(25, 16, "RZ-FP32", -133, n)),
    ("blackwell_tcgen05_mxf8_e4m3_f32", "Blackwell",
     "m128n8k32.kind::mxf8f6f4.block32.f32.e4m3.e4m3.ue8m0", "e4m3", "e4m3", "fp32", 32, 32,
     "e8m0", "ST-FDPA", lambda n: _t_fdpa(25, 32, "RZ-FP32", -133, n)),
    ("blackwell_tcgen05_mxf6_e2m3xe3m2_f32", "Blackwell",
     "m128n8k32.kind::mxf8f6f4.block32.f32.e2m3.e3m2.ue8m0", "e2m3", "e3m2", "fp32", 32, 32,
     "e8m0", "ST-FDPA", lambda n: _t_fdpa(25, 32, "RZ-FP32", -133, n)),
    ("blackwell_tcgen05_mxf4_f32", "Blackwell",
     "m128n8k64.kind::mxf4.block32.f32.e2m1.e2m1.ue8m0", "e2m1", "e2m1", "fp32", 64, 32,
     "e8m0", "GST-FDPA", _gst_fdpa),
    ("blackwell_tcgen05_nvf4_f32", "Blackwell",
     "m128n8k64.kind::mxf4nvf4.block16.f32.e2m1.e2m1.ue4m3", "e2m1", "e2m1", "fp32", 64, 16,
     "ue4m3", "GST-FDPA", _gst_fdpa),
    ("rtx_blackwell_mma_e2m1xe4m3_f32", "RTX Blackwell",
     "m16n8k32.kind::f8f6f4.f32.e2m1.e4m3.f32", "e2m1", "e4m3", "fp32", 32, None, None,
     "T-FDPA", lambda n: _t_fdpa(25, 32, "RZ-FP32", -133, n)),
    ("rtx_blackwell_mma_mxf8_e5m2_f32", "RTX Blackwell",
     "m16n8k32.kind::mxf8f6f4.block32.f32.e5m2.e5m2.f32.ue8m0", "e5m2", "e5m2", "fp32", 32, 32,
     "e8m0", "ST-FDPA", lambda n: _t_fdpa(25, 32, "RZ-FP32", -133, n)),
    ("cdna3_mfma_fp8_f32", "CDNA3", "f32_16x16x32_fp8_fp8", "e4m3fnuz", "e4m3fnuz", "fp32", 32,
     None, None, "GTR-FDPA", lambda n: _tr_fdpa(16, n, interleave=2, acc_drop=True)),
    ("cdna3_mfma_bf8xfp8_f32", "CDNA3", "f32_16x16x32_bf8_fp8", "e5m2fnuz", "e4m3fnuz", "fp32",
     32, None, None, "GTR-FDPA", lambda n: _tr_fdpa(16, n, interleave=2, acc_drop=True)),
    ("cdna3_mfma_f16_f32", "CDNA3", "f32_16x16x16_f16", "fp16", "fp16", "fp32", 16, None, None,
     "TR-FDPA", lambda n: _tr_fdpa(8, n)),
    ("cdna3_mfma_bf16_f32", "CDNA3", "f32_16x16x16_bf16", "bf16", "bf16", "fp32", 16, None,
     None, "TR-FDPA", lambda n: _tr_fdpa(8, n)),
    ("cdna3_mfma_xf32_f32", "CDNA3", "f32_16x16x8_xf32", "tf32", "tf32", "fp32", 8, None, None,
     "TR-FDPA", lambda n: _tr_fdpa(4, n)),
    ("cdna2_mfma_bf16_1k_f32", "CDNA2", "f32_16x16x16bf16_1k", "bf16", "bf16", "fp32", 16,
     None, None, "CDNA2-FTZ", _cdna2_ftz),
    ("cdna1_mfma_f16_f32", "CDNA1", "f32_16x16x16f16", "fp16", "fp16", "fp32", 16, None, None,
     "E-FDPA", lambda n: _e_fdpa(4, n)),
]

_VENDOR = {"Volta": "NVIDIA", "Turing": "NVIDIA", "Ampere": "NVIDIA", "Ada Lovelace": "NVIDIA",
           "Hopper": "NVIDIA", "Blackwell": "NVIDIA", "RTX Blackwell": "NVIDIA",
           "CDNA1": "AMD", "CDNA2": "AMD", "CDNA3": "AMD"}

#: The architectures, as spelled in ``cases.json``.
ARCHS = tuple(_VENDOR)


@dataclasses.dataclass(frozen=True)
class Instruction:
    """One matrix instruction: ``D = A.B + C`` for one output element per row.

    Attributes
    ----------
    name : str
        Short name (the key of ``cases.json``), e.g. ``"hopper_wgmma_e4m3_f32"``.
    arch, instruction : str
        As spelled in ``cases.json`` (PTX / AMDGPU names).
    vendor : str
        ``"NVIDIA"`` or ``"AMD"``.
    a_format, b_format : Format
        Element formats (``TF32`` for tf32 operands, given as FP32 bit patterns).
    cd_format : Format
        Format of C and D (``fp32`` or ``fp16``).
    K : int
        Products per instruction and output element.
    block : int or None
        Block length of the block scales (``None``: no scales).
    scale_format : Format or None
        ``e8m0`` or :data:`UE4M3`.
    algorithm : str
        ``"T-FDPA"``, ``"ST-FDPA"``, ``"GST-FDPA"``, ``"TR-FDPA"``, ``"GTR-FDPA"``,
        ``"CDNA2-FTZ"`` or ``"E-FDPA"`` (module docstring).
    config : SharedExpConfig
        The knobs (``config.n`` = L, products per hardware step).
    nan_code : int
        Bit pattern of a NaN result.
    """
    name: str
    arch: str
    instruction: str
    vendor: str
    a_format: _formats.Format
    b_format: _formats.Format
    cd_format: _formats.Format
    K: int
    block: object
    scale_format: object
    algorithm: str
    config: _se.SharedExpConfig
    nan_code: int

    @property
    def L(self):
        """Products the hardware sums in one step (``config.n``)."""
        return self.config.n

    @property
    def steps(self):
        """Hardware steps per instruction (K / L)."""
        return self.K // self.config.n

    def describe(self):
        """Plain-dict summary (formats by name, the config's knobs)."""
        return {"name": self.name, "arch": self.arch, "instruction": self.instruction,
                "vendor": self.vendor, "a_format": self.a_format.name,
                "b_format": self.b_format.name, "cd_format": self.cd_format.name,
                "K": self.K, "L": self.L, "block": self.block,
                "scale_format": None if self.scale_format is None else self.scale_format.name,
                "algorithm": self.algorithm, "config": self.config.describe()}

    # -- operands -------------------------------------------------------------------------

    @staticmethod
    def _tf32_codes(codes, which):
        """TF32 codes of FP32 bit patterns: the low 13 bits are dropped (truncation)."""
        codes = np.asarray(codes)
        if codes.dtype.kind not in "iu":
            raise ValueError(f"{which} must be an integer array of FP32 bit patterns (tf32), "
                             f"not an array of {codes.dtype}")
        _formats.fp32.check_codes(codes)
        return codes.astype(np.int64) >> 13

    def _operand(self, fmt, codes, which):
        if fmt is TF32:
            codes = self._tf32_codes(codes, which)
        return _se.operand_fields(fmt, codes, 0, self.config.ftz)

    def _scales(self, codes, which, nblocks):
        if codes is None:
            raise ValueError(f"{which} must be given: {self.name} takes {self.scale_format.name} "
                             f"block scales, one per {self.block} elements")
        codes = np.asarray(codes)
        if codes.shape[-1:] != (nblocks,):
            raise ValueError(f"{which} must have {nblocks} block scales on its last axis, "
                             f"not shape {codes.shape}")
        if self.scale_format is UE4M3:
            _formats.e4m3.check_codes(codes)
            codes = codes.astype(np.int64) & 0x7F          # the sign bit is forced to 0
        return _se.operand_fields(self.scale_format, codes)

    def _c_values(self, c, shape):
        fmt = self.cd_format
        if c is None:
            return np.zeros(shape)
        c = fmt.check_codes(np.asarray(c))
        if fmt is _formats.fp32:
            # a signalling-NaN pattern of C raises "invalid value" in the cast (it stays NaN)
            with np.errstate(invalid="ignore"):
                v = c.astype(np.uint32).view(np.float32).astype(np.float64)
        else:
            v = fmt.decode(c)
        return v

    def _d_codes(self, v):
        fmt = self.cd_format
        nan = np.isnan(v)
        if fmt is _formats.fp32:
            d = v.astype(np.float32).view(np.uint32)
        else:
            d = fmt.encode(np.where(nan, 0.0, v)).astype(np.uint16)
        return np.where(nan, fmt.code_dtype.type(self.nan_code), d).astype(fmt.code_dtype)

    # -- the instruction ------------------------------------------------------------------

    def dpa(self, a, b, c, scale_a=None, scale_b=None):
        """``D = sum_k a[k] * b[k] (* block scales) + C`` along the last axis.

        Parameters
        ----------
        a, b : array of int, shape ``[..., K]``
            Element codes (uint8 FP8/FP6/FP4, uint16 fp16/bf16, uint32 tf32 as FP32 bit
            patterns); the leading axes broadcast.
        c : array of int, shape ``[...]``
            Bit patterns of C (uint32 for fp32, uint16 for fp16), or ``None`` for +0.
        scale_a, scale_b : array of int, shape ``[..., K / block]``
            Block-scale codes (E8M0 or UE4M3), for block-scaled instructions only.

        Returns
        -------
        numpy.ndarray
            Bit patterns of D (uint32 or uint16), the broadcast leading shape.
        """
        K = self.K
        a, b = np.asarray(a), np.asarray(b)
        for which, x in (("a", a), ("b", b)):
            if x.shape[-1:] != (K,):
                raise ValueError(f"{which} must have K={K} elements on its last axis, "
                                 f"not shape {x.shape}")
        cfg = dataclasses.replace(self.config, promote_every=None)
        if self.block is None:
            if scale_a is not None or scale_b is not None:
                raise ValueError(f"{self.name} has no block scales; scale_a and scale_b must "
                                 "be None")
            shape = np.broadcast_shapes(a.shape[:-1], b.shape[:-1],
                                        () if c is None else np.shape(c))
            acc = np.broadcast_to(self._c_values(c, shape), shape)
            if self.a_format.bits <= 8 and self.b_format.bits <= 8 and np.isfinite(acc).all():
                # the same arithmetic in exact floats (lowbit.models.shared_exp), when the
                # configuration allows it; rows with NaN/Inf operands take the integer path
                V = int(np.prod(shape))
                aa = np.broadcast_to(a, shape + (K,)).reshape(V, K)
                bb = np.broadcast_to(b, shape + (K,)).reshape(V, K)
                with np.errstate(over="ignore", invalid="ignore"):
                    out = _se.fused_dot_fast(aa, bb, self.a_format, self.b_format, cfg,
                                             acc.reshape(V))
                if out is not None:
                    return self._d_codes(out.reshape(shape))
        fa = self._operand(self.a_format, a, "a")
        fb = self._operand(self.b_format, b, "b")
        sc = None
        if self.block is not None:
            nb = K // self.block
            sa = self._scales(scale_a, "scale_a", nb)
            sb = self._scales(scale_b, "scale_b", nb)
            sc = _se.product_terms(sa, sb, "operand_sum")
            sc = sc.map(lambda x: np.repeat(x, self.block, axis=-1))
        shape = np.broadcast_shapes(fa.sig.shape[:-1], fb.sig.shape[:-1],
                                    () if c is None else np.shape(c),
                                    () if sc is None else sc.sig.shape[:-1])
        acc = np.broadcast_to(self._c_values(c, shape), shape)
        L = self.config.n

        def get_terms(i):
            sl = (Ellipsis, slice(i * L, (i + 1) * L))
            t = _se.product_terms(fa.map(lambda x: x[sl]), fb.map(lambda x: x[sl]),
                                  self.config.align)
            return t, (None if sc is None else sc.map(lambda x: x[sl]))

        with np.errstate(over="ignore", invalid="ignore"):
            out = _se.chain(get_terms, self.steps, cfg, shape, acc)
        return self._d_codes(out)

    def gemm(self, a, b, c=None, *, scale_a=None, scale_b=None, promote_every=None):
        """A matrix product over any K, chaining the instruction along K.

        ``a`` (M x K'), ``b`` (K' x N) element codes with K' a multiple of K; block scales
        ``scale_a`` (M x K'/block), ``scale_b`` (K'/block x N).  The instruction's steps are
        chained, each feeding its D in as the next C.  With ``promote_every = P`` (a
        multiple of K; FP32 results only) the running D is added into an FP32 register
        every P elements of K (nearest even) and the chain restarts from +0, as cuBLAS and
        DeepGEMM do for Hopper FP8 (P = 128); the FP32 register starts at ``c``.  Without
        it ``c`` (bit patterns, M x N; default +0) is the first C.  Returns the bit
        patterns of the result (M x N).
        """
        A, B = np.asarray(a), np.asarray(b)
        if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
            raise ValueError(f"a and b must be M x K and K x N, not {A.shape} and {B.shape}")
        M, Kp = A.shape
        N = B.shape[1]
        if Kp % self.K:
            raise ValueError(f"K of a and b must be a multiple of the instruction's K={self.K}, "
                             f"not {Kp}")
        cfg = dataclasses.replace(self.config, promote_every=None)
        if promote_every is not None:
            check_int("promote_every", promote_every, self.K)
            if promote_every % self.K:
                raise ValueError(f"promote_every must be a multiple of K={self.K}, not "
                                 f"{promote_every!r}")
            if self.cd_format is not _formats.fp32:
                raise ValueError(f"promote_every needs an FP32 result; {self.name} returns "
                                 f"{self.cd_format.name}")
            cfg = dataclasses.replace(cfg, promote_every=promote_every)
        if self.block is None:
            if scale_a is not None or scale_b is not None:
                raise ValueError(f"{self.name} has no block scales; scale_a and scale_b must "
                                 "be None")
            if c is None:
                # the plain chain: lowbit.models.shared_exp.gemm (its float fast path when
                # that is exact), then D's bit patterns
                ca, cb = A, B
                if self.a_format is TF32:
                    ca = self._tf32_codes(A, "a")
                if self.b_format is TF32:
                    cb = self._tf32_codes(B, "b")
                with np.errstate(over="ignore", invalid="ignore"):
                    out = _se.gemm(ca, cb, self.a_format, self.b_format, cfg)
                return self._d_codes(out.astype(np.float64))
        acc = np.broadcast_to(self._c_values(c, (M, N)), (M, N))
        fa = self._operand(self.a_format, A, "a")
        fb = self._operand(self.b_format, B.T, "b")
        sa = sb = None
        if self.block is not None:
            nb = Kp // self.block
            sa = self._scales(scale_a, "scale_a", nb).map(
                lambda x: np.repeat(x, self.block, axis=-1))
            sb = self._scales(None if scale_b is None else np.asarray(scale_b).T, "scale_b",
                              nb).map(lambda x: np.repeat(x, self.block, axis=-1))
        L = cfg.n
        rows = max(1, (1 << 20) // max(1, N * L))
        out = np.empty((M, N))
        for r0 in range(0, M, rows):
            r1 = min(M, r0 + rows)

            def get_terms(i, r0=r0, r1=r1):
                sl = (slice(r0, r1), None, slice(i * L, (i + 1) * L))
                slb = (None, slice(None), slice(i * L, (i + 1) * L))
                t = _se.product_terms(fa.map(lambda x: x[sl]), fb.map(lambda x: x[slb]),
                                      cfg.align)
                if sa is None:
                    return t, None
                return t, _se.product_terms(sa.map(lambda x: x[sl]), sb.map(lambda x: x[slb]),
                                            "operand_sum")

            with np.errstate(over="ignore", invalid="ignore"):
                out[r0:r1] = _se.chain(get_terms, Kp // L, cfg, (r1 - r0, N), acc[r0:r1])
        return self._d_codes(out)


def _build():
    table = {}
    for (name, arch, instr, fa, fb, fcd, K, block, sfmt, algo, make) in _TABLE:
        vendor = _VENDOR[arch]
        table[(arch, instr)] = Instruction(
            name=name, arch=arch, instruction=instr, vendor=vendor, a_format=_fmt(fa),
            b_format=_fmt(fb), cd_format=_fmt(fcd), K=K, block=block,
            scale_format=None if sfmt is None else _fmt(sfmt), algorithm=algo,
            config=make(name), nan_code=_NAN[(vendor, fcd)])
    return table


_INSTRUCTIONS = _build()


def instructions():
    """The supported ``(arch, instruction)`` pairs, in table order."""
    return list(_INSTRUCTIONS)


def instruction(arch, instruction):
    """The :class:`Instruction` of ``arch`` (e.g. ``"Hopper"``, ``"CDNA3"``) and
    ``instruction`` (e.g. ``"m64n8k32.f32.e4m3.e4m3"``), spelled as in ``cases.json``;
    ``arch`` may also be given in another letter case, and ``instruction`` may be the
    short name (``"hopper_wgmma_e4m3_f32"``).

    Raises
    ------
    TypeError
        A name that is not a string.
    ValueError
        An unknown architecture or instruction (the message lists the known ones).
    """
    for what, v in (("arch", arch), ("instruction", instruction)):
        if not isinstance(v, str):
            raise TypeError(f"{what} must be a string, not {v!r}")
    match = [a for a in ARCHS if a.lower() == arch.strip().lower()]
    if not match:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")
    arch = match[0]
    key = (arch, instruction.strip())
    if key in _INSTRUCTIONS:
        return _INSTRUCTIONS[key]
    for ins in _INSTRUCTIONS.values():
        if ins.arch == arch and ins.name == instruction.strip():
            return ins
    known = [i for a, i in _INSTRUCTIONS if a == arch]
    raise ValueError(f"instruction must be one of {', '.join(known)} for {arch}, "
                     f"not {instruction!r}")


def step_dpa(a, b, c, scale_a=None, scale_b=None, *, arch, name):
    """One hardware step of an instruction: ``D = sum_{i<L} a[i] * b[i] (* block scales) + C``
    over the ``L`` products the instruction sums at once (``K = L``; an instruction of ``K``
    products is ``K / L`` such steps, each step's D the next one's C).

    The golden model of one cycle of ``lowbit.hdl.tensor_core_dot.TensorCoreDot``, named in
    its manifest: ``arch`` and ``name`` select the instruction as in :func:`instruction`; the
    operands are as in :meth:`Instruction.dpa` with ``L`` elements (and ``L / block`` scales,
    at least one) on the last axis.

    Returns
    -------
    numpy.ndarray
        Bit patterns of D (uint32 or uint16).
    """
    ins = instruction(arch, name)
    return dataclasses.replace(ins, K=ins.L).dpa(a, b, c, scale_a, scale_b)
