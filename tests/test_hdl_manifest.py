# amaranth: UnusedElaboratable=no
"""The manifest's numeric contract is complete and cannot drift from the hardware.

* :func:`lowbit.hdl.manifest.describe_format` describes every format fully: the description
  rebuilds the format, and every number, NaN/Inf/zero code and the value formula agree with the
  model's ``decode`` over all codes.
* Each unit's contract: its formats are the component's own (rebuilt from the description), its
  golden-model call decodes to the component's configuration objects, its packing covers the
  ports, its Verilog port order is the module header's.
* Each claim is checked against the golden model and an Amaranth simulation of the unit: the
  NaN codes the unit produces (exactly the declared set, or none), what ``rst`` clears and what
  the outputs read after it, the sign of zero results (including the Kulisch rule), the
  ``two_roundings`` intermediate product (saturated / flushed), the non-sticky Kulisch overflow.
"""

import importlib
import json
import re

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module, Value, ValueCastable
from amaranth.sim import Simulator

from lowbit.hdl import catalog, manifest
from lowbit.hdl.bfp_adder import BfpAdder
from lowbit.hdl.fp_mac import FpMac
from lowbit.hdl.fp_mul import FpMultiplier
from lowbit.hdl.mx_dot import MxDotUnit
from lowbit.hdl.shared_exp_adder import SharedExpAdder, pack_terms
from lowbit.hdl.systolic import SystolicArray
from lowbit.models import formats, mac, mx
from lowbit.models import shared_exp as se
from lowbit.models.overq import OverqConfig
from lowbit.models.shared_exp import SharedExpConfig
from lowbit.models.systolic import PESpec
from lowbit.sim.bench_mac import random_fp_sequences

# -- helpers ----------------------------------------------------------------------------------


def rebuild(desc):
    """The format object from its manifest description alone."""
    if desc["kind"] == "int":
        return formats.IntFormat(desc["name"], desc["bits"], desc["signed"])
    return formats.FloatFormat(desc["name"], desc["exp_bits"], desc["man_bits"], desc["bias"],
                               desc["specials"], desc["signed"], desc["subnormals"])


def decode_args(value, fmts):
    """A golden-model argument from the manifest: format references and constructed objects."""
    if isinstance(value, dict) and set(value) == {"format"}:
        return rebuild(fmts[value["format"]])
    if isinstance(value, dict) and set(value) == {"construct", "arguments"}:
        mod, _, name = value["construct"].rpartition(".")
        cls = getattr(importlib.import_module(mod), name)
        return cls(**{k: decode_args(v, fmts) for k, v in value["arguments"].items()})
    if isinstance(value, dict):
        return {k: decode_args(v, fmts) for k, v in value.items()}
    return value


def nan_codes(desc):
    return {c for lo, hi in desc["nan_code_ranges"] for c in range(lo, hi + 1)}


def _port(dut, name):
    obj = dut
    for part in name.split("__"):
        obj = getattr(obj, part)
    return Value.cast(obj) if isinstance(obj, ValueCastable) else obj


def simulate(dut, cycles, outputs):
    """Drive ``cycles`` (one ``{port: value}`` per cycle; the key ``"rst"`` drives the reset)
    and return, per cycle, the outputs after that cycle's rising edge with the *next* cycle's
    inputs applied (for registered outputs: the state after the edge)."""
    m = Module()
    m.domains.sync = cd = ClockDomain("sync")
    m.submodules.dut = dut
    res = []

    def apply(ctx, inputs):
        ctx.set(cd.rst, inputs.get("rst", 0))
        for k, v in inputs.items():
            if k != "rst":
                ctx.set(_port(dut, k), int(v))

    async def bench(ctx):
        apply(ctx, cycles[0])
        for i in range(len(cycles)):
            await ctx.tick()
            if i + 1 < len(cycles):
                apply(ctx, cycles[i + 1])
            await ctx.delay(1e-9)
            res.append({o: ctx.get(_port(dut, o)) for o in outputs})

    sim = Simulator(m)
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    return res


def simulate_comb(dut, vectors, outputs):
    res = []

    async def bench(ctx):
        for vec in vectors:
            for k, v in vec.items():
                ctx.set(_port(dut, k), int(v))
            await ctx.delay(1e-9)
            res.append({o: ctx.get(_port(dut, o)) for o in outputs})

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return res


def mac_hw(dut, seq, *more):
    """``acc`` of an FpMac after each (valid, clear, a, b) of ``seq`` (Amaranth); with ``more``
    sequences (each starting a new sum), one list per sequence from one simulation."""
    L = dut.latency
    seqs = (seq,) + more
    flat = [x for sq in seqs for x in sq]
    cycles = [{"valid": v, "clear": c, "a": a, "b": b} for v, c, a, b in flat]
    cycles += [{"valid": 0, "clear": 0, "a": 0, "b": 0}] * L
    got = [g["acc"] for g in simulate(dut, cycles, ["acc"])[L - 1:L - 1 + len(flat)]]
    out, i = [], 0
    for sq in seqs:
        out.append(got[i:i + len(sq)])
        i += len(sq)
    return out[0] if not more else out


def mac_model(dut, seq):
    c = dut.contract()
    args = decode_args(c["golden_model"]["arguments"], c["formats"])
    v, cl, a, b = (np.array([[s[i]] for s in seq]) for i in range(4))
    fn = getattr(importlib.import_module("lowbit.models.mac"), "mac_stream")
    return [int(x) for x in fn(v.astype(bool), cl.astype(bool), a, b, **args)[:, 0]]


def code(fmt, x):
    return int(formats.get(fmt).encode(np.array([x], dtype=np.float64))[0])


# -- describe_format --------------------------------------------------------------------------

FORMAT_NAMES = formats.names() + ["e3m4", "e4m3ieee", "e5m2finite", "e4m3fnuzb11", "e2m2fn",
                                  "e3m0fn", "uint5", "int12", "e5m10"]


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_describe_format(name):
    fmt = formats.get(name)
    desc = json.loads(json.dumps(manifest.describe_format(fmt)))      # survives JSON exactly
    assert rebuild(desc) == fmt
    assert desc["bits"] == fmt.bits and desc["signed"] == fmt.signed
    if isinstance(fmt, formats.IntFormat):
        assert (desc["min"], desc["max"]) == (fmt.min, fmt.max)
        assert not desc["has_nan"] and not desc["nan_code_ranges"] and desc["inf_codes"] is None
        return
    assert desc["exp_bits"] + desc["man_bits"] + int(desc["signed"]) == desc["bits"]
    hi, lo = desc["fields"]["exponent"]
    assert (hi - lo + 1, lo) == (fmt.exp_bits, fmt.man_bits)
    if fmt.bits > 16:           # fp32: the range boundaries
        for lo_, hi_ in desc["nan_code_ranges"]:
            v = fmt.decode(np.array([lo_ - 1, lo_, hi_], dtype=np.uint32))
            assert np.isinf(v[0]) and np.isnan(v[1:]).all()
        return
    codes = fmt.all_codes()
    vals = fmt.decode(codes)
    assert nan_codes(desc) == set(codes[np.isnan(vals)].tolist())
    assert desc["has_nan"] == bool(np.isnan(vals).any())
    infs = set(codes[np.isinf(vals)].tolist())
    if desc["inf_codes"] is None:
        assert not infs and not desc["has_inf"]
    else:
        assert infs == set(desc["inf_codes"].values())
        assert fmt.decode(np.array([desc["inf_codes"]["-inf"]]))[0] == -np.inf
    fin = vals[np.isfinite(vals)]
    assert desc["max"] == fin.max() == vals[desc["max_code"]]
    assert desc["min"] == fin.min()
    assert desc["min_subnormal"] == fin[fin > 0].min()
    assert desc["min_normal"] == 2.0 ** desc["emin"]
    if desc["has_nan"]:
        assert np.isnan(vals[desc["canonical_nan"]])
    else:
        assert desc["canonical_nan"] is None
    for sign, c in desc["zero_codes"].items():
        assert vals[c] == 0 and np.signbit(vals[c]) == (sign == "-0")
    assert len(desc["zero_codes"]) == int((vals == 0).sum())
    # the value formula, evaluated for every finite code (16-bit formats: every 61st, and the
    # lowest and highest 256)
    sample = codes if fmt.bits <= 8 else np.unique(np.r_[codes[:256], codes[::61], codes[-256:]])
    rules = [r.split(":", 1)[-1] for r in desc["value"].split("; ")]
    rules = [re.sub(r"\s*\((zero|no zero)[^)]*\)$", "", r.split(" for ")[0]).strip()
             for r in rules]
    for c in sample[np.isfinite(vals[sample])]:
        c = int(c)
        s = (c >> (fmt.bits - 1)) & 1 if fmt.signed else 0
        e = (c >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
        m = c & ((1 << fmt.man_bits) - 1)
        expr = rules[0] if (len(rules) == 1 or e > 0) else rules[1]
        got = eval(expr.replace("^", "**"), {"s": s, "e": e, "m": m})
        assert got == vals[c], (c, expr)


# -- the contracts of the catalogue units -------------------------------------------------------

#: (unit, parameters) whose contracts are checked statically; small enough to convert quickly.
UNITS = [
    ("int-mac", {}), ("int-mac", {"a_format": "uint8", "b_format": "int4", "pipeline_stages": 2}),
    ("fp-mul", {}), ("fp-mul", {"a_format": "e2m1", "b_format": "e3m2"}),
    ("fp-mac", {}), ("fp-mac", {"mode": "kulisch", "terms": 256, "acc_format": "fp16"}),
    ("fp-mac", {"mode": "two_roundings", "a_format": "e5m2", "acc_format": "bf16"}),
    ("chunked-mac", {}), ("chunked-mac", {"acc_format": "bf16", "chunk_length": 1,
                                          "saturate": True, "a_format": "e2m1"}),
    ("kahan-mac", {}), ("kahan-mac", {"acc_format": "bf16", "saturate": True,
                                      "pipeline_stages": 2}),
    ("shared-exp-adder", {"n": 4}), ("shared-exp-adder", {"n": 4, "a_format": "int8",
                                                          "b_format": "int8"}),
    ("mx-dot", {"k": 4}), ("mx-dot", {"elem": "mxint8", "k": 4}), ("bfp-adder", {"n": 4}),
    ("overq-pe", {}), ("int-pe", {}),
    ("systolic", {"rows": 2, "cols": 2}), ("systolic", {"rows": 2, "cols": 3,
                                                        "pe": "e5m2xe4m3_fp16", "dataflow": "is"}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "e4m3_kulisch"}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "overq4", "dataflow": "os"}),
    ("sr-quantise", {}), ("sr-quantise", {"in_format": "bf16", "out_format": "e2m1",
                                          "random_source": "port"}),
    ("sr-quantise", {"out_format": "e4m3fnuz", "rounding": "nearest_even", "saturate": True}),
    ("tensor-core-dot", {}), ("tensor-core-dot", {"instruction": "CDNA3:f32_16x16x8_xf32",
                                                  "pipeline_stages": 2}),
    ("tensor-core-dot", {"instruction": "blackwell_tcgen05_nvf4_f32", "pipeline_stages": 1}),
    ("tensor-core-dot", {"instruction": "blackwell_tcgen05_mxf8_e4m3_f32"}),
    ("tensor-core-dot", {"instruction": "CDNA1:f32_16x16x16f16", "pipeline_stages": 4}),
    ("int-dot", {}), ("int-dot", {"a_format": "uint8", "b_format": "int4", "k": 5,
                                  "acc_bits": 12, "pipeline_stages": 2}),
]


def expected_formats(unit, comp):
    """The component's own format objects, by the contract's role names."""
    if unit == "int-mac":
        return {"a": comp.a_format, "b": comp.b_format,
                "product": formats.int_format(comp.product_bits),
                "acc": formats.int_format(comp.acc_bits)}
    if unit == "fp-mul":
        return {"a": comp.a_format, "b": comp.b_format, "product": comp.product_format}
    if unit == "sr-quantise":
        return {"in": comp.in_format, "out": comp.out_format}
    if unit in ("fp-mac", "chunked-mac", "kahan-mac"):
        return {"a": comp.a_format, "b": comp.b_format, "product": comp.product_format,
                "acc": comp.acc_format}
    if unit in ("shared-exp-adder", "mx-dot", "bfp-adder"):
        out = {"a": comp.a_format, "b": comp.b_format, "acc": formats.fp32,
               "result": formats.fp32}
        if unit == "mx-dot":
            out["scale"] = mx.SCALE
        if unit == "bfp-adder":
            out["exponent"] = formats.int_format(comp.exp_bits)
        return out
    if unit in ("overq-pe", "int-pe"):
        out = {"code": formats.int_format(comp.bits), "weight": formats.int_format(comp.w_bits),
               "acc": formats.int_format(comp.acc_bits)}
        if unit == "overq-pe":
            out["meta"] = formats.int_format(comp.meta_bits, signed=False)
        return out
    if unit == "tensor-core-dot":
        ins = comp.instruction
        out = {"a": ins.a_format, "b": ins.b_format, "cd": ins.cd_format}
        if ins.block is not None:
            out["scale"] = ins.scale_format
        return out
    if unit == "int-dot":
        return {"a": comp.a_format, "b": comp.b_format, "acc": formats.int_format(comp.acc_bits)}
    spec = comp.spec
    return {"a": spec.a, "b": spec.b,
            "acc": spec.acc if spec.kind == "fp" else formats.int_format(spec.acc_bits)}


def expected_model_objects(unit, comp):
    """What the golden-model call's constructed arguments must equal."""
    if unit in ("shared-exp-adder", "mx-dot", "bfp-adder"):
        return {"config": comp.config}
    if unit == "overq-pe":
        return {"config": comp.config}
    if unit == "systolic":
        return {"pe": comp.spec}
    return {}


@pytest.mark.parametrize("unit, params", UNITS, ids=[f"{u}-{i}" for i, (u, _) in enumerate(UNITS)])
def test_contract_is_complete(unit, params):
    comp, resolved = catalog.get_unit(unit).build(**params)
    name = unit.replace("-", "_")
    text = manifest.to_verilog(comp, name)
    man = json.loads(json.dumps(manifest.manifest(comp, unit, resolved, name, text)))
    c = man["contract"]
    # formats: the component's own objects, rebuilt from the descriptions alone
    assert {role: rebuild(d) for role, d in c["formats"].items()} == expected_formats(unit, comp)
    # the golden-model call: the function exists, its arguments decode to the unit's objects
    g = c["golden_model"]
    mod, _, fn = g["function"].rpartition(".")
    assert callable(getattr(importlib.import_module(mod), fn)) and g["returns"]
    args = decode_args(g["arguments"], c["formats"])
    for key, obj in expected_model_objects(unit, comp).items():
        assert args[key] == obj
    # packing: every packed port's lanes fill its width
    widths = {p["name"]: p["width"] for p in man["ports"]}
    for port, pk in c["packing"].items():
        if "fields" in pk:
            assert pk["width"] == widths[port]
            assert sum(f["width"] for f in pk["fields"]) == pk["width"]
            for f in pk["fields"]:
                assert f["lanes"] * f["lane_bits"] == f["width"]
                assert "format" not in f or f["format"] in c["formats"]
        else:
            assert pk["lanes"] * pk["lane_bits"] == widths[port]
            assert pk["format"] in c["formats"]
            bits = c["formats"][pk["format"]]["bits"]
            if "value_bits" in pk:       # a code in part of a wider lane (tf32, UE4M3 scales)
                assert pk["value_bits"] == bits and pk["ignored"]
                assert pk["value_offset"] + bits <= pk["lane_bits"]
            else:
                assert pk["lane_bits"] == bits
    # NaN codes: declared per output port, each a NaN of that port's format
    for port, codes in c["nan_outputs"].items():
        fmt_role = (c["packing"][port]["format"] if port in c["packing"] else "acc")
        assert set(codes) <= nan_codes(c["formats"][fmt_role])
    # reset: the outputs it names are output ports, the idle inputs input ports
    if c.get("reset"):
        outs = {p["name"] for p in man["ports"] if p["direction"] == "output"}
        ins = {p["name"] for p in man["ports"] if p["direction"] == "input"}
        assert set(c["reset"]["outputs_after_reset"]) <= outs
        assert set(c["reset"]["idle_inputs"]) <= ins
    # the Verilog port order: the module header's list, the same ports as the list
    header = re.search(rf"^module {name}\((.*?)\);", text, re.MULTILINE).group(1)
    assert man["verilog_port_order"] == [p.strip() for p in header.split(",")]
    assert sorted(man["verilog_port_order"]) == sorted(widths)
    assert manifest.verilog_port_order(text) == man["verilog_port_order"]


def test_verilog_port_order_ansi_and_errors():
    assert manifest.verilog_port_order("module m(input clk, output [3:0] q, input\n d);\n"
                                       "endmodule") == ["clk", "q", "d"]
    assert manifest.verilog_port_order("module m;\nendmodule\n") == []
    with pytest.raises(ValueError, match="top must be one of the design's modules"):
        manifest.verilog_port_order("module m(a);\ninput a;\nendmodule\n", "n")
    with pytest.raises(ValueError, match="no module"):
        manifest.verilog_port_order("wire x;")


# -- rst: what it clears, what the outputs read after it -------------------------------------------

RESET_UNITS = [
    ("int-mac", {}), ("int-mac", {"pipeline_stages": 3}), ("fp-mul", {"pipeline_stages": 1}),
    ("fp-mac", {"pipeline_stages": 2}), ("fp-mac", {"mode": "kulisch", "terms": 64}),
    ("chunked-mac", {"chunk_length": 3, "pipeline_stages": 1}), ("kahan-mac", {}),
    ("fp-mac", {"mode": "kulisch", "terms": 64, "pipeline_stages": 5}),
    ("shared-exp-adder", {"n": 4, "pipeline_stages": 2}), ("mx-dot", {"k": 2}),
    ("bfp-adder", {"n": 2, "pipeline_stages": 0}), ("overq-pe", {}), ("int-pe", {}),
    ("systolic", {"rows": 2, "cols": 2}), ("systolic", {"rows": 2, "cols": 2, "pe": "e4m3_fp32",
                                                        "dataflow": "os"}),
    # the group (NVFP4) and fp_tree (CDNA1) structures are too deep for Amaranth 0.5's Python
    # simulator ("IndentationError: too many levels of indentation" in the code it
    # generates): their reset claim is checked in Verilog by tests/test_cosim_manifest.py
    ("tensor-core-dot", {"pipeline_stages": 4}),
    ("tensor-core-dot", {"instruction": "CDNA3:f32_16x16x32_fp8_fp8", "pipeline_stages": 4}),
    ("tensor-core-dot", {"instruction": "Reference:exact_e4m3_f32", "pipeline_stages": 4}),
    ("int-dot", {"k": 4, "pipeline_stages": 2}),
]


@pytest.mark.parametrize("unit, params", RESET_UNITS,
                         ids=[f"{u}-{i}" for i, (u, _) in enumerate(RESET_UNITS)])
def test_reset_claim(unit, params):
    """Random inputs on every port, then one cycle with rst high (random inputs, dropped), then
    the contract's idle inputs: every cycle after the reset edge the outputs read exactly
    ``outputs_after_reset``."""
    comp, _ = catalog.get_unit(unit).build(**params)
    r = comp.contract()["reset"]
    ins = [p for p in manifest.ports(comp) if p["direction"] == "input"
           and p["name"] not in ("clk", "rst")]
    rng = np.random.default_rng(7)

    def rand():
        return {p["name"]: int.from_bytes(rng.bytes((p["width"] + 7) // 8), "little")
                & ((1 << p["width"]) - 1) for p in ins}
    cycles = [rand() for _ in range(12)] + [{**rand(), "rst": 1}]
    cycles += [dict(r["idle_inputs"])] * (comp.latency + 4)
    got = simulate(comp, cycles, list(r["outputs_after_reset"]))
    for row in got[12:]:
        assert row == r["outputs_after_reset"]
    # the random part did change the outputs (the check above is not vacuous)
    assert any(row != r["outputs_after_reset"] for row in got[:12])


# -- NaN codes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("an, bn, flush", [("e4m3", "e4m3", False), ("e5m2", "e4m3", True),
                                           ("e2m1", "e3m2", False), ("e4m3fnuz", "e5m2", False)])
def test_fp_mul_nan_inf_and_zero_sign_exhaustive(an, bn, flush):
    """Every code pair: the product's NaN and Inf codes are exactly the declared ones, and a
    zero product's sign is the XOR of the operand signs (model; the Amaranth unit on the
    specials)."""
    unit = FpMultiplier(an, bn, flush_subnormals=flush)
    c = unit.contract()
    a_f, b_f = unit.a_format, unit.b_format
    A, B = (x.ravel() for x in np.meshgrid(a_f.all_codes(), b_f.all_codes(), indexing="ij"))
    args = decode_args(c["golden_model"]["arguments"], c["formats"])
    p = mac.fp_mul(A, B, **args).astype(np.int64)
    pf = rebuild(c["formats"]["product"])
    v = pf.decode(p)
    assert set(p[np.isnan(v)].tolist()) == set(c["nan_outputs"]["p"])
    assert set(p[np.isinf(v)].tolist()) == set(c["inf_outputs"]["p"])
    zero = v == 0
    sa = np.signbit(a_f.decode(A))
    sb = np.signbit(b_f.decode(B))
    assert np.array_equal(np.signbit(v[zero]), (sa ^ sb)[zero])
    zc = c["formats"]["product"]["zero_codes"]
    assert set(p[zero].tolist()) <= {zc["+0"], zc["-0"]}
    # the hardware on every special and zero pair
    pick = np.flatnonzero(~np.isfinite(v) | zero)[::7]
    got = simulate(unit, [{"a": A[i], "b": B[i], "valid": 1} for i in pick] +
                   [{"a": 0, "b": 0, "valid": 0}] * unit.latency, ["p"])
    assert [g["p"] for g in got[unit.latency - 1:][:len(pick)]] == p[pick].tolist()


@pytest.mark.parametrize("an, bn, accn, mode, sat", [
    ("e4m3", "e4m3", "fp32", "fused", False), ("e5m2", "e5m2", "fp16", "two_roundings", False),
    ("e5m2finite", "e5m2finite", "fp16", "two_roundings", False),
    ("e5m2finite", "e5m2finite", "fp16", "two_roundings", True),
    ("e5m2finite", "e5m2finite", "fp16", "fused", False), ("e2m1", "e2m1", "fp16", "fused", False),
    ("e4m3", "e5m2", "bf16", "kulisch", False), ("e3m2", "e2m3", "fp16", "kulisch", True),
])
def test_fp_mac_nan_codes(an, bn, accn, mode, sat):
    """The NaN codes the MAC produces are exactly the declared set: random sequences with
    specials plus products at +-max (overflowing the accumulator), golden model; a directed
    NaN sequence through the Amaranth unit when NaN is declared."""
    unit = FpMac(an, bn, accn, mode, saturate=sat, terms=64)
    c = unit.contract()
    a_f, b_f, acc_f = unit.a_format, unit.b_format, unit.acc_format
    rng = np.random.default_rng(3)
    valid, clear, A, B = random_fp_sequences(a_f, b_f, 400, 32, rng, specials=0.05)
    big = rng.random(A.shape) < 0.3                    # +-max operands: overflow the acc
    A = np.where(big, a_f.max_code | (rng.integers(0, 2, A.shape) << (a_f.bits - 1)), A)
    B = np.where(big, b_f.max_code | (rng.integers(0, 2, B.shape) << (b_f.bits - 1)), B)
    args = decode_args(c["golden_model"]["arguments"], c["formats"])
    acc = mac.mac_stream(valid, clear, A, B, **args).astype(np.int64)
    got = set(acc[np.isnan(acc_f.decode(acc))].tolist())
    assert got == set(c["nan_outputs"]["acc"])
    if c["nan_outputs"]["acc"]:
        mx_a, mx_b = a_f.max_code, b_f.max_code
        neg = 1 << (a_f.bits - 1)
        seq = [(1, 1, mx_a, mx_b), (1, 0, mx_a | neg, mx_b)]
        if a_f.has_nan:
            seq = [(1, 1, a_f.nan_code, mx_b)]
        elif a_f.has_inf:
            seq = [(1, 1, a_f.inf_code, 0)]
        hw = mac_hw(unit, seq)
        assert hw == mac_model(unit, seq) and hw[-1] == c["nan_outputs"]["acc"][0]


def test_shared_exp_and_mx_nan_codes_and_zero_sign():
    """Shared-exponent adder (combinational) and MX unit: every NaN case gives the declared
    code; an exact zero is +0 (cancellation, -0 terms and accumulator); a non-zero sum that
    rounds to zero keeps its sign. Amaranth unit and golden model."""
    unit = SharedExpAdder("e5m2", "e5m2", n=2, pipeline_stages=0)
    c = unit.contract()
    f, f32 = unit.a_format, formats.fp32
    one, neg = code(f, 1.0), 1 << (f.bits - 1)
    nan32 = c["nan_outputs"]["o"]
    zc = c["formats"]["result"]["zero_codes"]
    cases = [  # (a terms, b terms, acc code, expected o)
        ([f.nan_code, one], [one, one], 0, nan32[0]),
        ([f.inf_code, one], [0, one], 0, nan32[0]),                       # Inf * 0
        ([f.inf_code, f.inf_code | neg], [one, one], 0, nan32[0]),        # +Inf + -Inf
        ([one, one], [one, one], 0x7F800001, nan32[0]),                   # NaN acc payloads
        ([one, one], [one, one], 0xFFFFFFFF, nan32[0]),
        ([f.inf_code | neg, one], [one, one], f32.inf_code, nan32[0]),    # acc +Inf, term -Inf
        ([one, one | neg], [one, one], 0, zc["+0"]),                      # cancellation
        ([neg, neg], [one, one], zc["-0"], zc["+0"]),                     # -0 everywhere
    ]
    tiny = SharedExpAdder("bf16", "bf16", n=2, pipeline_stages=0)
    b16 = tiny.a_format
    tiny_cases = [([1 | (1 << 15), 0], [1, 0], 0, zc["-0"])]              # -2^-266 -> -0
    for dut, cs, fa in ((unit, cases, f), (tiny, tiny_cases, b16)):
        ins = [{"a": pack_terms(np.array([a]), fa.bits)[0],
                "b": pack_terms(np.array([b]), fa.bits)[0], "acc": acc} for a, b, acc, _ in cs]
        got = [g["o"] for g in simulate_comb(dut, ins, ["o"])]
        assert got == [e for *_, e in cs]
        cc = dut.contract()
        args = decode_args(cc["golden_model"]["arguments"], cc["formats"])
        accv = np.array([acc for *_, acc, _ in cs], dtype=np.uint32).view(np.float32)
        with np.errstate(invalid="ignore"):             # signalling-NaN payloads
            accv = accv.astype(np.float64)
        ref = se.shared_exp_add(np.array([a for a, *_ in cs]), np.array([b for _, b, *_ in cs]),
                                acc=accv, **args)
        ref_codes = np.where(np.isnan(ref), nan32[0], ref.view(np.uint32))
        assert ref_codes.tolist() == got

    mxu = MxDotUnit("mxfp8_e4m3", k=2, pipeline_stages=0)
    cm = mxu.contract()
    sc = rebuild(cm["formats"]["scale"])
    e4 = mxu.a_format
    one4 = code(e4, 1.0)
    blocks = [  # (a, b, a_scale, b_scale, first, expected o after the block)
        ([one4, one4], [one4, one4], sc.nan_code, 127, 1, cm["nan_outputs"]["o"][0]),
        ([e4.nan_code, one4], [one4, one4], 127, 127, 1, cm["nan_outputs"]["o"][0]),
        ([one4, one4 | 0x80], [one4, one4], 127, 127, 1, zc["+0"]),
        ([one4 | 0x80, 0], [1, 0], 0, 0, 1, zc["-0"]),                    # 2^-254 * -2^-6 * 2^-9
    ]
    got = simulate(mxu, [{"a": pack_terms(np.array([a]), 8)[0],
                          "b": pack_terms(np.array([b]), 8)[0],
                          "a_scale": s1, "b_scale": s2, "first": fi, "valid": 1}
                         for a, b, s1, s2, fi, _ in blocks], ["o"])
    assert [g["o"] for g in got] == [e for *_, e in blocks]


def test_bfp_never_nan_and_inf_stays():
    """BFP: no NaN (declared none) even when the accumulator overflows to +Inf and a later block
    would overflow to -Inf: +Inf stays until first. Golden model (both accumulator datapaths,
    random extreme blocks) and the Amaranth unit."""
    for acc_in_max in (True, False):
        unit = BfpAdder("int8", n=2, pipeline_stages=0, acc_in_max=acc_in_max)
        c = unit.contract()
        assert c["nan_outputs"]["o"] == []
        args = decode_args(c["golden_model"]["arguments"], c["formats"])
        rng = np.random.default_rng(5)
        lim = 1 << (unit.exp_bits - 1)
        acc = np.zeros(64)
        for _ in range(200):
            A = rng.integers(0, 256, (64, 2))
            B = rng.integers(0, 256, (64, 2))
            e = rng.choice([lim - 1, -lim, 0, lim - 2], (64,)) + rng.choice([lim - 1, 0], (64,))
            acc = se.shared_exp_add(A, B, scale_exp=e, acc=acc, **args).astype(np.float64)
            assert not np.isnan(acc).any()
        assert np.isinf(acc).any()
        mx8, mn8 = 0x7F, 0x80
        blocks = [([mx8, mx8], [mx8, mx8], lim - 1, lim - 1, 1),         # -> +Inf
                  ([mn8, mn8], [mx8, mx8], lim - 1, lim - 1, 0),         # a -Inf block: stays
                  ([1, 0], [1, 0], 0, 0, 1)]                            # first: restarts
        got = simulate(unit, [{"a": pack_terms(np.array([a]), 8)[0],
                               "b": pack_terms(np.array([b]), 8)[0],
                               "a_exp": ea & (2 * lim - 1), "b_exp": eb & (2 * lim - 1),
                               "first": fi, "valid": 1} for a, b, ea, eb, fi in blocks], ["o"])
        inf = c["formats"]["result"]["inf_codes"]["+inf"]
        assert [g["o"] for g in got] == [inf, inf, code("fp32", 1.0)]


def test_systolic_ws_psum_nan_code():
    """FP array, WS: a NaN code of any payload on a psum lane comes out as the declared
    canonical NaN (1x1 array, Amaranth)."""
    arr = SystolicArray(1, 1, pe="fp", dataflow="ws", acc_format="fp16")
    c = arr.contract()
    nan = c["nan_outputs"]["o__payload.acc"]
    one = code("e4m3", 1.0)
    beats = [arr.pack_operand(b=[one], load=1),
             arr.pack_operand(a=[one], mask=[1], psum=[0x7C01], last=1),
             arr.pack_operand(b=[one], load=1),
             arr.pack_operand(a=[one], mask=[1], psum=[0xFFFF], last=1)]
    cycles = []
    for bt in beats:
        cycles.append({"i__valid": 1, "i__payload": bt, "o__ready": 1})
        cycles += [{"i__valid": 0, "i__payload": 0, "o__ready": 1}] * (arr.rows + arr.cols)
    got = simulate(arr, cycles, ["o__valid", "o__payload"])
    res = [arr.unpack_result(g["o__payload"])[0][0] for g in got if g["o__valid"]]
    assert res == nan * 2


# -- zero signs, the two_roundings product, the Kulisch overflow ----------------------------------

E4 = {"+1": 0x38, "-1": 0xB8, "+0": 0x00, "-0": 0x80}


@pytest.mark.parametrize("mode, stages", [("fused", 0), ("two_roundings", 1), ("kulisch", 0),
                                          ("kulisch", 2)])
def test_fp_mac_zero_sign(mode, stages):
    """Directed sequences for the declared zero-sign rules (new sum from -0, exact zero +0
    unless both -0, Kulisch: -0 only if every product since clear was -0, empty accumulator
    +0, underflow keeps its sign), model and Amaranth unit."""
    unit = FpMac("e4m3", "e4m3", "fp32", mode, pipeline_stages=stages)
    c = unit.contract()
    zc = c["formats"]["acc"]["zero_codes"]
    P, N = zc["+0"], zc["-0"]
    zs = c["zero_sign"]                     # the rules checked below, with the codes they name
    assert f"{N:#x}" in zs["exact_zero"] and f"({P})" in zs["empty"]
    assert ("every product since the new sum began" in zs["exact_zero"]) == (mode == "kulisch")
    assert "keeps its sign" in zs["underflow"]
    one = code("fp32", 1.0)
    cases = [
        ([(1, 1, E4["-0"], E4["+1"])], N),                                  # new sum: -0 kept
        ([(1, 1, E4["-0"], E4["+1"]), (1, 0, E4["+0"], E4["-1"])], N),     # -0 + -0
        ([(1, 1, E4["-0"], E4["+1"]), (1, 0, E4["+0"], E4["+1"])], P),     # -0 + +0
        ([(1, 1, E4["+1"], E4["+1"]), (1, 0, E4["-1"], E4["+1"])], P),     # x + (-x)
        ([(1, 1, E4["+1"], E4["+1"]), (1, 0, E4["-1"], E4["+1"]),
          (1, 0, E4["-0"], E4["+1"])], P),                                  # not all -0
        ([(1, 1, E4["-0"], E4["+1"]), (0, 1, 0, 0)], P),                    # clear alone: +0
        ([(1, 1, E4["+1"], E4["+1"]), (0, 0, 0, 0)], one),                  # idle: holds
    ]
    hw = mac_hw(unit, *[seq for seq, _ in cases])
    for (seq, want), got in zip(cases, hw):
        assert got[-1] == mac_model(unit, seq)[-1] == want, (seq, want)
    # underflow keeps the sign: e5m2 x e5m2 into fp16, -2^-14 * 2^-14 = -2^-28 rounds to -0
    tiny = FpMac("e5m2", "e5m2", "fp16", mode, pipeline_stages=stages)
    seq = [(1, 1, 0x84, 0x04)]
    assert mac_hw(tiny, seq) == mac_model(tiny, seq) == \
        [tiny.contract()["formats"]["acc"]["zero_codes"]["-0"]]


def test_two_roundings_intermediate_product():
    """two_roundings saturates and flushes the rounded product before the add: e5m2 max^2 into
    fp16 with saturate gives max - max = +0 (fused: -max); a product rounded to an fp16
    subnormal is flushed with flush_subnormals (fused keeps it). Model and Amaranth unit."""
    mx_, neg = 0x7B, 0x80
    seq = [(1, 1, mx_, mx_), (1, 0, mx_ | neg, mx_)]
    fmax = code("fp16", 65504.0)
    for mode, want in (("two_roundings", [fmax, 0]), ("fused", [fmax, fmax | 0x8000])):
        unit = FpMac("e5m2", "e5m2", "fp16", mode, saturate=True)
        assert "saturates" in unit.contract().get("intermediate_product", "saturates")
        assert mac_hw(unit, seq) == mac_model(unit, seq) == want
    unit = FpMac("e5m2", "e5m2", "fp16", "two_roundings", saturate=False)
    assert mac_hw(unit, seq) == mac_model(unit, seq) == \
        [code("fp16", np.inf), unit.contract()["nan_outputs"]["acc"][0]]
    # e4m3 2^-6 x e5m2 2^-8 = 2^-14 (fp16 min normal), then 2^-6 x 2^-14 = 2^-20 (subnormal)
    seq = [(1, 1, 0x08, 0x1C), (1, 0, 0x08, 0x04)]
    for mode, flush, want in (("two_roundings", True, 0x0400), ("fused", True, 0x0410),
                              ("two_roundings", False, 0x0410)):
        unit = FpMac("e4m3", "e5m2", "fp16", mode, flush_subnormals=flush)
        if mode == "two_roundings":
            assert ("flushed" in unit.contract()["intermediate_product"]) == flush
        assert mac_hw(unit, seq)[-1] == mac_model(unit, seq)[-1] == want


@pytest.mark.parametrize("stages", [0, 2])
def test_kulisch_overflow_not_sticky(stages):
    """terms=1: two max products overflow the register, which wraps (the read is the wrapped
    value) and a third, negative one brings it back: the read is exact again. The expected
    values come from the contract's width and LSB; model and Amaranth unit."""
    unit = FpMac("e4m3", "e4m3", "fp32", "kulisch", terms=1, pipeline_stages=stages)
    k = unit.contract()["kulisch"]
    w, lsb = k["width"], k["lsb_exponent"]
    mx_ = formats.e4m3.max_code
    P = int(formats.e4m3.max ** 2 * 2.0 ** -lsb)                 # one product in LSBs
    wrapped = ((2 * P + (1 << (w - 1))) % (1 << w)) - (1 << (w - 1))
    assert wrapped != 2 * P                                      # it did overflow
    want = [code("fp32", P * 2.0 ** lsb), code("fp32", wrapped * 2.0 ** lsb),
            code("fp32", P * 2.0 ** lsb)]
    seq = [(1, 1, mx_, mx_), (1, 0, mx_, mx_), (1, 0, mx_ | 0x80, mx_)]
    assert mac_hw(unit, seq) == mac_model(unit, seq) == want


def test_shared_exp_result_grid():
    """norm_frac_bits = 13: the low 10 mantissa bits of every result code are 0 (model, random
    terms and accumulators)."""
    unit = SharedExpAdder("e4m3", "e4m3", n=8, norm_frac_bits=13, norm_rounding="toward_zero")
    c = unit.contract()
    assert "low 10 mantissa bits" in c["result_grid"]
    args = decode_args(c["golden_model"]["arguments"], c["formats"])
    rng = np.random.default_rng(2)
    A, B = rng.integers(0, 256, (5000, 8)), rng.integers(0, 256, (5000, 8))
    acc = rng.integers(0, 1 << 32, 5000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    with np.errstate(invalid="ignore"):                 # signalling-NaN payloads
        acc = acc.astype(np.float64)
    o = se.shared_exp_add(A, B, acc=acc, **args)
    codes = np.where(np.isnan(o), c["nan_outputs"]["o"][0], o.view(np.uint32))
    assert ((codes & 0x3FF) == 0).all()


@pytest.mark.parametrize("rounding", ["nearest_even", "toward_zero"])
def test_shared_exp_overflow_rule(rounding):
    """A sum beyond the grid's max gives the overflow_rule's value: +-Inf, or the grid's max
    (norm_frac_bits = 13) for toward_zero. Model and the Amaranth unit."""
    unit = SharedExpAdder("bf16", "bf16", n=2, norm_frac_bits=13, norm_rounding=rounding,
                          pipeline_stages=0)
    c = unit.contract()
    rule = c["overflow_rule"]
    bmax = formats.bf16.max_code
    if rounding == "nearest_even":
        want = c["formats"]["result"]["inf_codes"]
        want = [want["+inf"], want["-inf"]]
    else:
        top = float(re.search(r"\+-(\S+)$", rule).group(1))
        want = [code("fp32", top), code("fp32", -top)]
    A = np.array([[bmax, bmax], [bmax | 0x8000, bmax | 0x8000]])
    B = np.array([[bmax, bmax], [bmax, bmax]])
    args = decode_args(c["golden_model"]["arguments"], c["formats"])
    ref = se.shared_exp_add(A, B, acc=np.zeros(2), **args)
    assert ref.view(np.uint32).tolist() == want
    got = simulate_comb(unit, [{"a": pack_terms(A[i:i + 1], 16)[0],
                                "b": pack_terms(B[i:i + 1], 16)[0], "acc": 0} for i in range(2)],
                        ["o"])
    assert [g["o"] for g in got] == want
