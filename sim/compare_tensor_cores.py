"""``lowbit compare --tensor-cores``: what each tensor-core instruction family costs, and what
its arithmetic adds to the error of a dot product (issue 15 section 4).

Two halves, one report:

Cost.  Every family of :data:`FAMILIES` is one step of its instruction in hardware
(:class:`lowbit.hdl.tensor_core_dot.TensorCoreDot`, catalogue unit ``tensor-core-dot``: L
products with their block scales plus C per clock, ``pipeline_stages`` registers) and is set
against an INT8 dot product *of the same length L* (:class:`lowbit.hdl.tensor_core_dot.IntDot`,
``int-dot``, INT32 ``c``, wrapping).  Both are synthesised, priced and cached by the machinery
of :mod:`lowbit.sim.compare` (:func:`lowbit.sim.compare.synthesise`: Yosys/ABC to the generic
gate set, :mod:`lowbit.fpga.cache`), so the figures are those ``lowbit compare`` reports for its
other units: area in NAND2 equivalents and flip-flops per MAC (the unit divided by its L MACs),
logic depth of the unit, and energy per MAC in both views, (a) the gate-count model of
:mod:`lowbit.sim.energy` and (b) gate-level toggles (:mod:`lowbit.sim.toggle_energy`) on the
stimulus of :func:`tensor_core_stimulus`; energy per MAC = energy of one step / L.

Error.  :func:`numerical_errors` runs the same float tensors (:func:`datasets`: Gaussian random
and a real one, the scikit-learn digits images against a least-squares classifier trained on
them) through each family's instruction, bit-exactly (:mod:`lowbit.models.tensor_core`:
:meth:`~lowbit.models.tensor_core.Instruction.gemm`, the instruction chained along K as the
libraries do, each step's D the next C, no FP32 promotion), after quantising them to the
instruction's inputs as a user would (:func:`quantise_operands`), and measures each output
against the exact dot product of those quantised inputs: max and mean of
``|D - exact| / ulp_fp32(exact)`` (:func:`ulp_errors`).  So the error is what the instruction's
arithmetic adds (alignment cut, normalisation rounding, chaining), not the quantisation.  The
INT8 row is the exact integer sum (INT32) converted to FP32 by nearest even.

Facts used: the instructions' algorithms and knobs (F, L, block formats) are those of
:mod:`lowbit.models.tensor_core` (Xie et al., "MMA-Sim", arXiv:2511.10909, 2025); MX block
quantisation per the OCP MX specification v1.0 (:mod:`lowbit.models.mx`); NVFP4 per NVIDIA's
recipe (:mod:`lowbit.models.nvfp4`).
"""

import dataclasses
import math
import pathlib

import numpy as np

from lowbit.hdl import tensor_core_dot as _tcd
from lowbit.models import formats as _formats
from lowbit.models import mx as _mx
from lowbit.models import nvfp4 as _nvfp4
from lowbit.models import tensor_core as _tc
from lowbit.models.checks import check_int

from . import compare as _compare

__all__ = ["FAMILIES", "Family", "families", "units", "compare_tensor_cores",
           "tensor_core_stimulus", "TC_STIMULUS", "datasets", "quantise_operands",
           "ulp_errors", "exact_dot", "DATASETS", "default_datasets", "H100_DATA",
           "numerical_errors", "cost_table", "error_table", "plot", "to_json",
           "DEFAULT_PIPELINE", "PROMOTED"]


@dataclasses.dataclass(frozen=True)
class Family:
    """One row of the report: ``key``, a short ``what`` and the instruction's preset name
    (:func:`lowbit.hdl.tensor_core_dot.resolve_instruction`)."""
    key: str
    what: str
    preset: str

    @property
    def instruction(self):
        return _tcd.resolve_instruction(self.preset)

    @property
    def label(self):
        ins = self.instruction
        F = "exact" if ins.algorithm == "E-FDPA" else f"F={ins.config.frac_bits}"
        return f"{self.what} ({ins.algorithm}, {F}, L={ins.L})"


#: The families of issue 15 section 4, in report order.
FAMILIES = (
    Family("hopper-fp8", "Hopper FP8 wgmma", "Hopper:m64n8k32.f32.e4m3.e4m3"),
    Family("blackwell-fp8", "Blackwell FP8 tcgen05",
           "Blackwell:m64n8k32.kind::f8f6f4.f32.e4m3.e4m3"),
    Family("blackwell-mxf8", "Blackwell MXFP8",
           "Blackwell:m128n8k32.kind::mxf8f6f4.block32.f32.e4m3.e4m3.ue8m0"),
    Family("blackwell-mxf4", "Blackwell MXFP4",
           "Blackwell:m128n8k64.kind::mxf4.block32.f32.e2m1.e2m1.ue8m0"),
    Family("blackwell-nvf4", "Blackwell NVFP4",
           "Blackwell:m128n8k64.kind::mxf4nvf4.block16.f32.e2m1.e2m1.ue4m3"),
    Family("cdna3-fp8", "CDNA3 FP8 mfma", "CDNA3:f32_16x16x32_fp8_fp8"),
    Family("exact-fp8", "exact sum E4M3, RNE to FP32", "Reference:exact_e4m3_f32"),
)

#: Pipeline registers of every unit of the cost table (``TensorCoreDot``: after the alignment
#: and after the adder tree for the fused families; ``IntDot``: after the products and after
#: the adder tree), so that the flip-flop column measures what each datapath keeps between
#: stages.  ``--tc-pipeline 0`` gives the combinational units.
DEFAULT_PIPELINE = 2


def families(keys=None):
    """The :class:`Family` entries named by ``keys`` (``None``: all), in report order."""
    known = {f.key: f for f in FAMILIES}
    if keys is None:
        return list(FAMILIES)
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    if not keys:
        raise ValueError(f"families must name at least one of {', '.join(known)} (None for "
                         f"all), not an empty list")
    for k in keys:
        if k not in known:
            raise ValueError(f"families must be among {', '.join(known)}, not {k!r}")
    return [f for f in FAMILIES if f.key in keys]


def _int_key(L):
    return f"int8-k{L}"


def units(chosen, pipeline_stages=DEFAULT_PIPELINE):
    """:class:`lowbit.sim.compare.CompareUnit` list of the families ``chosen`` plus one INT8
    dot product per distinct L (first), each with ``macs = L``."""
    # every unit of the table at the same depth: at most what the shallower one (IntDot) takes
    pipeline_stages = check_int("pipeline_stages", pipeline_stages, 0,
                                min(_tcd.INT_DOT_MAX_PIPELINE, _tcd.MAX_PIPELINE))
    out, seen = [], set()
    for fam in chosen:
        L = fam.instruction.L
        if L not in seen:
            seen.add(L)
            out.append(_compare.CompareUnit(
                _int_key(L), f"INT8 dot, L={L}, INT32 c", "int-dot",
                {"a_format": "int8", "b_format": "int8", "k": L, "acc_bits": 32,
                 "pipeline_stages": pipeline_stages}, macs=L))
    for fam in chosen:
        out.append(_compare.CompareUnit(
            fam.key, fam.label, "tensor-core-dot",
            {"instruction": fam.preset, "pipeline_stages": pipeline_stages},
            macs=fam.instruction.L))
    return out


# ---------------------------------------------------------------------------------------------
# (b) stimulus

_LANES, _CYCLES, _CHAIN = 256, 72, 16

#: What the (b) column of the tensor-core units simulates (part of the cache key).
TC_STIMULUS = (f"{_LANES} streams x {_CYCLES} cycles, first 8 not counted, seed 0; element "
               f"codes uniform over the finite codes of the instruction's formats; E8M0 scales "
               f"119..134 (2^-8..2^7), UE4M3 scales 0x28..0x47 (0.25..3.75); c = the previous "
               f"cycle's d of the same stream (golden model), +0 every {_CHAIN} cycles; INT8: "
               f"uniform codes, c the previous o; zero delay, 45 nm, 0.9 V; version 1")


def _pack(codes, width):
    """``(cycles, lanes, n)`` codes -> ``(cycles, lanes)`` packed ports (element i at bit
    ``i * width``), int64 when they fit in 62 bits, Python ints otherwise."""
    n = codes.shape[-1]
    if n * width <= 62:
        out = np.zeros(codes.shape[:2], np.int64)
        for i in range(n):
            out |= codes[..., i].astype(np.int64) << (width * i)
        return out
    out = np.zeros(codes.shape[:2], dtype=object)
    for i in range(n):
        out = out + (codes[..., i].astype(object) << (width * i))
    return out


def _finite_codes(fmt, shape, rng):
    codes = rng.integers(0, 1 << fmt.bits, shape)
    for _ in range(100):
        bad = ~np.isfinite(np.asarray(fmt.decode(codes), dtype=np.float64))
        if not bad.any():
            return codes
        codes[bad] = rng.integers(0, 1 << fmt.bits, int(bad.sum()))
    raise RuntimeError(f"no finite codes drawn for {fmt.name}")


def tensor_core_stimulus(cu, ports, rng=None):
    """The (b) operand streams (:data:`TC_STIMULUS`) of compare unit ``cu`` (a unit of
    :func:`units`) with input ``ports`` ``[(name, width)]``: port -> ``(cycles, lanes)``."""
    rng = rng if rng is not None else np.random.default_rng(0)
    widths = dict(ports)
    shape = (_CYCLES, _LANES)
    stim = {"rst": np.zeros(shape, np.int64)} if "rst" in widths else {}
    restart = (np.arange(_CYCLES) % _CHAIN) == 0
    if cu.unit == "int-dot":
        k, W = cu.params["k"], cu.params["acc_bits"]
        fa = _formats.get(cu.params["a_format"])
        fb = _formats.get(cu.params["b_format"])
        a = rng.integers(0, 1 << fa.bits, shape + (k,))
        b = rng.integers(0, 1 << fb.bits, shape + (k,))
        va = np.asarray(fa.decode(a), dtype=np.int64)
        vb = np.asarray(fb.decode(b), dtype=np.int64)
        c = np.zeros(shape, np.int64)
        acc = np.zeros(_LANES, np.int64)
        for t in range(_CYCLES):
            if restart[t]:
                acc[:] = 0
            c[t] = acc & ((1 << W) - 1)
            acc = (acc + (va[t] * vb[t]).sum(axis=-1) + (1 << (W - 1))) % (1 << W) - (1 << (W - 1))
        stim.update(a=_pack(a, fa.bits), b=_pack(b, fb.bits), c=c)
        return stim
    ins = _tcd.resolve_instruction(cu.params["instruction"])
    step = dataclasses.replace(ins, K=ins.L)           # one hardware step (TensorCoreDot)
    L = ins.L
    a = _finite_codes(ins.a_format, shape + (L,), rng)
    b = _finite_codes(ins.b_format, shape + (L,), rng)
    for port, fmt, codes in (("a", ins.a_format, a), ("b", ins.b_format, b)):
        if widths[port] != L * fmt.bits:
            raise ValueError(f"port {port} of {cu.key} is {widths[port]} bits, not "
                             f"L * {fmt.bits}")
        stim[port] = _pack(codes, fmt.bits)
    scales = {}
    if ins.block is not None:
        nb = L // ins.block
        for port in ("scale_a", "scale_b"):
            if ins.scale_format is _tc.UE4M3:
                s = rng.integers(0x28, 0x48, shape + (nb,))
            else:
                s = rng.integers(119, 135, shape + (nb,))
            scales[port] = s
            stim[port] = _pack(s, 8)
    cbits = ins.cd_format.bits
    c = np.zeros(shape, np.int64)
    prev = np.zeros(_LANES, np.int64)
    for t in range(_CYCLES):
        if restart[t]:
            prev[:] = 0
        c[t] = prev
        kw = {} if not scales else {"scale_a": scales["scale_a"][t],
                                    "scale_b": scales["scale_b"][t]}
        prev = np.asarray(step.dpa(a[t], b[t], prev.astype(np.uint32 if cbits == 32
                                                           else np.uint16), **kw),
                          dtype=np.int64)
    stim["c"] = c
    return stim


def compare_tensor_cores(keys=None, *, pipeline_stages=DEFAULT_PIPELINE, use_cache=True,
                         jobs=2, progress=None, node_scale=1.0, vdd=0.9, toggles=True):
    """Synthesise and price the families ``keys`` (``None``: all) and their INT8 baselines.

    Returns ``{key: CompareRow}`` (:class:`lowbit.sim.compare.CompareRow`, per MAC figures),
    the INT8 dot products under ``"int8-k<L>"``.
    """
    chosen = families(keys)
    cus = units(chosen, pipeline_stages)
    rows = _compare.synthesise(cus, None, use_cache=use_cache, jobs=jobs, progress=progress,
                               node_scale=node_scale, vdd=vdd, toggles=toggles,
                               stimulus=(tensor_core_stimulus, TC_STIMULUS),
                               top_prefix="lowbit_tc_")
    return {r.unit.key: r for r in rows}


# ---------------------------------------------------------------------------------------------
# numerical error

def _digits():
    # scikit-learn ships the digits data inside the package (nothing is downloaded); it is in
    # the test extra, so it is imported only here
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    return x / 16.0, y


#: The H100 operands shipped with the repository (``tests/data/h100/README.md``): FP8 codes
#: uniform over the finite E4M3 codes, the widest dynamic range a dot product of E4M3 sees.
H100_DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "h100" / \
    "h100_fp8_gemm.npz"

#: Data sets of :func:`datasets`.
DATASETS = ("random", "digits", "h100")


def default_datasets():
    """:data:`DATASETS` without ``h100`` when the repository's test data is not there (an
    installed package without the clone)."""
    return tuple(n for n in DATASETS if n != "h100" or H100_DATA.is_file())


def datasets(names=None, seed=0):
    """The float tensors of the error table: ``{name: (A [M, K], B [K, N], description)}``
    (``names``: a subset of :data:`DATASETS`; ``None``: :func:`default_datasets`).

    ``random``: A 64 x 1024 and B 1024 x 16 of independent N(0, 1) values (``seed``).
    ``digits``: the 1797 scikit-learn digits images (8 x 8 pixels / 16, K = 64) against the
    64 x 10 weights of a least-squares linear classifier fitted on them (one-hot targets,
    ``numpy.linalg.lstsq``): a real activation and weight tensor (17,970 dot products).
    ``h100``: the E4M3 x E4M3, K = 1024 operands of the measured H100 GEMMs shipped in
    ``tests/data/h100`` (A 64 x 1024, B 1024 x 64, decoded to their exact values).
    """
    names = default_datasets() if names is None else tuple(names)
    out = {}
    for name in names:
        if name == "random":
            rng = np.random.default_rng(seed)
            out[name] = (rng.standard_normal((64, 1024)), rng.standard_normal((1024, 16)),
                         f"N(0,1) random, 64x1024 @ 1024x16, seed {seed}")
        elif name == "digits":
            x, y = _digits()
            w = np.linalg.lstsq(x, np.eye(10)[y], rcond=None)[0]
            out[name] = (x, w, "scikit-learn digits (1797x64) @ least-squares classifier "
                               "weights (64x10)")
        elif name == "h100":
            if not H100_DATA.is_file():
                raise ValueError(f"datasets: h100 needs {H100_DATA} (a clone of the "
                                 f"repository), which is missing")
            with np.load(H100_DATA) as z:
                a, b = z["e4m3xe4m3_K1024_A"], z["e4m3xe4m3_K1024_B"]
            e4m3 = _formats.get("e4m3")
            out[name] = (np.asarray(e4m3.decode(a), dtype=np.float64),
                         np.asarray(e4m3.decode(b), dtype=np.float64),
                         "H100 operands of tests/data/h100 (E4M3 codes uniform over the finite "
                         "codes), 64x1024 @ 1024x64")
        else:
            raise ValueError(f"datasets must be among {', '.join(DATASETS)}, not {name!r}")
    return out


def _pow2_scale(x, fmt):
    """Per-tensor power-of-two scale that brings ``max|x|`` to at most ``fmt.max``."""
    amax = float(np.max(np.abs(x)))
    return 1.0 if amax == 0 else 2.0 ** math.floor(math.log2(float(fmt.max) / amax))


def quantise_operands(ins, a, b):
    """``a`` (M x K) and ``b`` (K x N) floats as inputs of instruction ``ins``.

    No block scales: per-tensor power-of-two scale, nearest even, saturating
    (``fmt.encode``).  E8M0 blocks: :func:`lowbit.models.mx.quantize` along K (blocks of
    ``ins.block``).  UE4M3 blocks: :func:`lowbit.models.nvfp4.quantize` along K (the FP32
    tensor scale stays outside the instruction).  Returns ``(codes_a, codes_b, scale_a,
    scale_b, values_a, values_b)``: the codes as :meth:`Instruction.gemm` takes them and the
    exact float64 values they stand for (block scales applied, tensor scales not).
    """
    if ins.block is None:
        ca = ins.a_format.encode(a * _pow2_scale(a, ins.a_format), saturate=True)
        cb = ins.b_format.encode(b * _pow2_scale(b, ins.b_format), saturate=True)
        va = np.asarray(ins.a_format.decode(ca), dtype=np.float64)
        vb = np.asarray(ins.b_format.decode(cb), dtype=np.float64)
        return ca, cb, None, None, va, vb
    if ins.scale_format is _tc.UE4M3:
        ca, sa, _ = _nvfp4.quantize(a, axis=1)
        cb, sb, _ = _nvfp4.quantize(b, axis=0)
        return (ca, cb, sa, sb, _nvfp4.dequantize(ca, sa, 1.0, axis=1),
                _nvfp4.dequantize(cb, sb, 1.0, axis=0))
    if ins.a_format is not ins.b_format:
        raise ValueError(f"{ins.name}: MX operands of two formats are not supported here")
    elem, k = ins.a_format.name, ins.block
    ca, sa = _mx.quantize(a, elem, k, axis=1)
    cb, sb = _mx.quantize(b, elem, k, axis=0)
    return (ca, cb, sa, sb, _mx.dequantize(ca, sa, elem, k, axis=1),
            _mx.dequantize(cb, sb, elem, k, axis=0))


def exact_dot(va, vb):
    """``va @ vb`` with every output the exact sum of its products rounded once to float64
    (:func:`math.fsum`).  The products of the supported formats (at most 8-bit significands
    times power-of-two or 4-bit scales) are exact in float64."""
    M, K = va.shape
    N = vb.shape[1]
    prods = va[:, None, :] * vb.T[None, :, :]           # M x N x K, exact
    return np.array([math.fsum(p) for p in prods.reshape(M * N, K)]).reshape(M, N)


def ulp_errors(d, exact):
    """``|d - exact| / ulp(exact)`` elementwise, with ``ulp`` the spacing of FP32 at
    ``exact``: ``2^(max(floor(log2|exact|), -126) - 23)`` (``2^-149`` at 0).  ``d`` and
    ``exact`` are float64 (``d`` an FP32 value)."""
    d = np.asarray(d, dtype=np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    _, ex = np.frexp(exact)                              # |exact| = m 2^ex, m in [0.5, 1)
    e = np.where(exact == 0, -126, np.maximum(ex - 1, -126))
    return np.abs(d - exact) / np.ldexp(1.0, (e - 23).astype(np.int32))


def _fp32_values(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32).astype(np.float64)


def _int8_errors(a, b):
    fmt = _formats.get("int8")
    sa, sb = 127.0 / np.max(np.abs(a)), 127.0 / np.max(np.abs(b))
    ia = np.asarray(fmt.decode(fmt.encode(a * sa, saturate=True)), dtype=np.int64)
    ib = np.asarray(fmt.decode(fmt.encode(b * sb, saturate=True)), dtype=np.int64)
    s = ia @ ib                                           # exact in int64 (and in INT32 here)
    if np.abs(s).max() >= 2 ** 31:
        raise ValueError("INT8 dot product overflows INT32")
    return ulp_errors(s.astype(np.float32).astype(np.float64), s.astype(np.float64))


#: Error-only row: the Hopper FP8 instruction as cuBLAS runs it, its partial sum added into an
#: FP32 register (nearest even) every 128 elements of K (``tests/data/h100/README.md``, measured
#: on an H100): (family key, row key, promote_every).
PROMOTED = ("hopper-fp8", "hopper-fp8-promote128", 128)


def numerical_errors(keys=None, data=None):
    """Max and mean FP32-ulp error of each family (and INT8) on each data set; with
    ``hopper-fp8`` also the row :data:`PROMOTED` (FP32 promotion every 128, as cuBLAS).

    ``data``: :func:`datasets` output (default both).  Returns ``{key: {dataset: {"max",
    "mean", "exact_fraction", "outputs", "K"}}}`` with ``key`` a family key or ``"int8"``.
    """
    data = datasets() if data is None else data
    out = {"int8": {}}
    for name, (a, b, _) in data.items():
        err = _int8_errors(a, b)
        out["int8"][name] = _summary(err, a.shape[1])
    for fam in families(keys):
        ins = fam.instruction
        runs = [(fam.key, None)]
        if fam.key == PROMOTED[0]:
            runs.append((PROMOTED[1], PROMOTED[2]))
        for key, _ in runs:
            out[key] = {}
        for name, (a, b, _) in data.items():
            ca, cb, sa, sb, va, vb = quantise_operands(ins, a, b)
            exact = exact_dot(va, vb)
            for key, every in runs:
                d = _fp32_values(ins.gemm(ca, cb, scale_a=sa, scale_b=sb,
                                          promote_every=every))
                out[key][name] = _summary(ulp_errors(d, exact), a.shape[1])
    return out


def _summary(err, K):
    return {"max": float(err.max()), "mean": float(err.mean()),
            "exact_fraction": float((err == 0).mean()), "outputs": int(err.size), "K": int(K)}


# ---------------------------------------------------------------------------------------------
# report

def _ratio(v, ref):
    return "-" if v is None or not ref else f"{v / ref:.2f}x"


def _baseline(rows, key):
    return rows[_int_key(rows[key].unit.macs)]


def cost_table(rows, keys=None, *, gates=True):
    """Header + lines of the cost table (strings): each family beside the INT8 dot product
    of its length (ratios), the INT8 rows first."""
    fams = [f.key for f in families(keys)]
    toggles = all(r.toggle_pj is not None for r in rows.values())
    head = ["unit", "GE/MAC", "vs INT8", "FF/MAC", "vs INT8", "depth", "vs INT8"]
    if gates:
        head += ["pJ/MAC (a)", "vs INT8"]
    if toggles:
        head += ["pJ/MAC (b)", "vs INT8"]
    out = [head]
    order = [k for k in rows if k.startswith("int8-k")] + fams
    for key in order:
        r = rows[key]
        ref = _baseline(rows, key)
        line = [r.unit.label, f"{r.area_ge:.0f}", _ratio(r.area_ge, ref.area_ge),
                f"{r.flip_flops:.1f}", _ratio(r.flip_flops, ref.flip_flops),
                str(r.generic.logic_depth), _ratio(r.generic.logic_depth, ref.generic.logic_depth)]
        if gates:
            line += [f"{r.energy_pj:.3f}", _ratio(r.energy_pj, ref.energy_pj)]
        if toggles:
            line += [f"{r.toggle_pj:.3f}", _ratio(r.toggle_pj, ref.toggle_pj)]
        out.append(line)
    return out


def error_table(errors, data, keys=None):
    """Header + lines of the error table: max / mean FP32 ulps per data set."""
    head = ["unit"]
    for name in data:
        head += [f"{name} max ulp", f"{name} mean ulp", f"{name} exact"]
    out = [head]
    labels = {"int8": "INT8 dot, INT32, RNE to FP32"}
    labels.update({f.key: f.label for f in families(keys)})
    labels[PROMOTED[1]] = f"  same + FP32 promotion every {PROMOTED[2]} (cuBLAS)"
    order = ["int8"]
    for f in families(keys):
        order += [f.key] + ([PROMOTED[1]] if f.key == PROMOTED[0] else [])
    for key in order:
        line = [labels[key]]
        for name in data:
            e = errors[key][name]
            line += [f"{e['max']:.3f}", f"{e['mean']:.4f}", f"{e['exact_fraction'] * 100:.2f}%"]
        out.append(line)
    return out


def plot(rows, errors, data, path, keys=None):
    """PNG: left, area and energy per MAC of each family relative to the INT8 dot product of
    its length; right, mean and max FP32-ulp error per data set (log scale)."""
    # matplotlib is imported here: only the PNG needs it, and it is slow to import
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # (after choosing the Agg backend)
    fams = families(keys)
    labels = [f.label for f in fams]
    y = np.arange(len(fams))
    toggles = all(r.toggle_pj is not None for r in rows.values())
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 0.55 * len(fams) + 3.2), sharey=True)
    bars = [("area (GE) per MAC", lambda r: r.area_ge),
            ("energy per MAC (a) gate-count model", lambda r: r.energy_pj)]
    if toggles:
        bars.append(("energy per MAC (b) gate-level toggles", lambda r: r.toggle_pj))
    h = 0.8 / len(bars)
    for j, (what, get) in enumerate(bars):
        v = [get(rows[f.key]) / get(_baseline(rows, f.key)) for f in fams]
        ax.barh(y + (j - (len(bars) - 1) / 2) * h, v, height=h, label=what)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("relative to an INT8 dot product of the same length L (INT32 c)")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize=8, ncol=2)
    h2 = 0.8 / (2 * len(data))
    j = 0
    for name in data:
        for stat in ("mean", "max"):
            v = [max(errors[f.key][name][stat], 1e-6) for f in fams]
            ax2.barh(y + (j - (2 * len(data) - 1) / 2) * h2, v, height=h2,
                     label=f"{name}: {stat}")
            j += 1
    ax2.set_xscale("log")
    ax2.axvline(0.5, color="grey", linewidth=0.8, linestyle="--")
    ax2.set_xlabel("error vs the exact dot product, ulps of FP32 (log; 1e-6 = exact)")
    ax2.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def to_json(rows, errors, data):
    """The report as a JSON-able dict."""
    return {"rows": {k: r.to_dict() for k, r in rows.items()}, "errors": errors,
            "datasets": {k: v[2] for k, v in data.items()}, "stimulus": TC_STIMULUS}
