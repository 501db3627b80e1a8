"""An independent bench that drives one unit of each catalogue kind from its manifest alone.

For each configuration ``lowbit generate`` writes ``<name>.v`` and ``<name>.json`` into a
temporary folder; the bench then reads only those two files. From the manifest it takes the
module and port names and widths, the latency, the packing of every data port (lanes, lane
width, the payload fields and offsets of the systolic array's streams), the formats (rebuilt
from their full descriptions with ``lowbit.models.formats.FloatFormat`` / ``IntFormat``, not
from lowbit's catalogue), the state after ``rst``, the NaN codes, the array's empty sum, beat
order and fold period, and the golden-model function with its arguments (resolved by name).
It drives the Verilog with :func:`lowbit.sim.cosim.run_stream` (one simulator build per unit,
a few thousand cycles each) and compares every output bit-exactly with the golden model; every
NaN the hardware produces must be one of the manifest's NaN codes.

The catalogue is used only to spell the command line (parameter name -> option flag).
"""

import importlib
import json

import numpy as np
import pytest

from lowbit.cli.main import main
from lowbit.hdl import catalog
from lowbit.models import formats
from lowbit.sim import cosim

pytestmark = pytest.mark.cosim

#: One configuration per catalogue unit kind (fp-mac twice: rounded and Kulisch).  The
#: chunked-mac and kahan-mac ones are those of tests/test_cosim_accum.py (one shared build).
CONFIGS = [
    ("int-mac", {"a_format": "int8", "b_format": "uint8", "acc_bits": 20,
                 "overflow": "saturate", "pipeline_stages": 1}),
    ("fp-mul", {"a_format": "e5m2", "b_format": "e4m3"}),
    ("fp-mac", {"a_format": "e4m3", "b_format": "e5m2", "acc_format": "fp16",
                "mode": "two_roundings", "pipeline_stages": 1}),
    ("fp-mac", {"mode": "kulisch", "terms": 256, "acc_format": "bf16", "pipeline_stages": 2}),
    ("chunked-mac", {"a_format": "e4m3", "b_format": "e5m2", "acc_format": "bf16",
                     "chunk_length": 4, "pipeline_stages": 2}),
    ("kahan-mac", {"a_format": "e4m3", "b_format": "e5m2", "acc_format": "fp16",
                   "pipeline_stages": 1}),
    ("shared-exp-adder", {"n": 8, "norm_frac_bits": 13, "norm_rounding": "toward_zero",
                          "cut": "floor", "frac_bits": 13}),
    ("mx-dot", {"k": 8, "elem": "mxfp8_e5m2"}),
    ("bfp-adder", {"n": 4, "exp_bits": 6}),
    ("overq-pe", {}),
    ("int-pe", {"bits": 8, "w_bits": 8, "acc_bits": 24}),
    ("systolic", {"rows": 2, "cols": 3, "pe": "int8xint4_acc20_saturate"}),
    ("sr-quantise", {"in_format": "bf16", "out_format": "e4m3", "sr_bits": 5, "lfsr_width": 12,
                     "seed": 1234}),
    # tensor-core-dot: block scales in UE4M3 lanes (bit 7 ignored), tf32 in FP32 lanes (low 13
    # bits ignored), the IEEE-adder tree; their reset claims are checked here (too deep for
    # the Python simulator of tests/test_hdl_manifest.py)
    ("tensor-core-dot", {"instruction": "blackwell_tcgen05_nvf4_f32", "pipeline_stages": 4}),
    ("tensor-core-dot", {"instruction": "CDNA3:f32_16x16x8_xf32", "pipeline_stages": 1}),
    ("tensor-core-dot", {"instruction": "CDNA1:f32_16x16x16f16", "pipeline_stages": 4}),
    ("int-dot", {"a_format": "int8", "b_format": "uint8", "k": 6, "acc_bits": 16,
                 "pipeline_stages": 2}),
]

CYCLES = 2000


# -- reading the manifest ----------------------------------------------------------------------

def generate(tmp_path, unit, params):
    """``lowbit generate`` into ``tmp_path``; returns (Verilog text, manifest dict) read back."""
    flags = {p.name: p.flag for p in catalog.get_unit(unit).params}
    argv = ["generate", unit, "-o", str(tmp_path)]
    for k, v in params.items():
        argv += [flags[k], str(v)]
    assert main(argv) == 0
    name = unit.replace("-", "_")
    return (tmp_path / f"{name}.v").read_text(), json.loads((tmp_path / f"{name}.json").read_text())


def rebuild(desc):
    if desc["kind"] == "int":
        return formats.IntFormat(desc["name"], desc["bits"], desc["signed"])
    return formats.FloatFormat(desc["name"], desc["exp_bits"], desc["man_bits"], desc["bias"],
                               desc["specials"], desc["signed"], desc["subnormals"])


def _resolve(dotted):
    mod, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(mod), name)


def _decode(value, fmts):
    if isinstance(value, dict) and set(value) == {"format"}:
        return rebuild(fmts[value["format"]])
    if isinstance(value, dict) and set(value) == {"construct", "arguments"}:
        return _resolve(value["construct"])(**{k: _decode(v, fmts)
                                               for k, v in value["arguments"].items()})
    return value


def golden(man):
    """The golden-model function and its keyword arguments, from the manifest."""
    c = man["contract"]
    g = c["golden_model"]
    return _resolve(g["function"]), {k: _decode(v, c["formats"]) for k, v in g["arguments"].items()}


def port(man, name):
    return next(p for p in man["ports"] if p["name"] == name)


def pack(values, lane_bits):
    """Rows of lane values (V, n) -> one int per row, lane i at bits [i*w, (i+1)*w)."""
    values = np.asarray(values, dtype=object)
    mask = (1 << lane_bits) - 1
    out = np.zeros(values.shape[0], dtype=object)
    for i in range(values.shape[1]):
        out = out + ((values[:, i] & mask) << (i * lane_bits))
    return out


def signed(u, bits):
    u = np.asarray([int(x) for x in np.asarray(u).reshape(-1)], dtype=object)
    half = 1 << (bits - 1)
    return np.array([(x ^ half) - half for x in u], dtype=object)


def drive(text, man, inputs, outputs, simulator, latency=None):
    return cosim.run_stream(text, inputs, outputs, sim=simulator, toplevel=man["module"],
                            latency=man["latency_cycles"] if latency is None else latency)


def result_codes(values, man, port_name):
    """FP32 codes of the golden model's float32 results (NaN: the manifest's code)."""
    nan = man["contract"]["nan_outputs"][port_name]
    v = np.asarray(values, dtype=np.float32)
    return np.where(np.isnan(v), nan[0] if nan else 0, v.view(np.uint32)).astype(np.uint64)


def check_nans(got, man, port_name, role):
    """Every NaN the hardware produced is one of the manifest's NaN codes."""
    fmt = rebuild(man["contract"]["formats"][role])
    got = np.asarray(got).astype(np.uint64)
    nan = got[np.isnan(fmt.decode(got.astype(fmt.code_dtype)))]
    assert set(nan.tolist()) <= set(man["contract"]["nan_outputs"][port_name])


def random_codes(rng, desc, shape):
    return rng.integers(0, 1 << desc["bits"], shape)


def control(rng, cycles, run=16):
    valid = (rng.random(cycles) < 0.9).astype(np.uint8)
    restart = np.zeros(cycles, np.uint8)
    t = 0
    while t < cycles:
        restart[t] = 1
        t += int(rng.integers(1, run + 1))
    return valid, restart


# -- the benches, by unit kind ----------------------------------------------------------------

def bench_mac(text, man, simulator, rng):
    """int-mac / fp-mac: valid/clear streams (golden: mac_stream)."""
    c = man["contract"]
    pk = c["packing"]
    valid, clear = control(rng, CYCLES)
    a = random_codes(rng, c["formats"][pk["a"]["format"]], CYCLES)
    b = random_codes(rng, c["formats"][pk["b"]["format"]], CYCLES)
    fn, args = golden(man)
    want = np.asarray(fn(valid[:, None].astype(bool), clear[:, None].astype(bool), a[:, None],
                         b[:, None], **args))[:, 0]
    got = drive(text, man, {"a": a, "b": b, "valid": valid, "clear": clear},
                ["acc", "acc_valid"], simulator)
    acc = got["acc"]
    if pk["acc"]["signed"]:
        acc = signed(acc, pk["acc"]["lane_bits"])
    else:
        check_nans(acc, man, "acc", pk["acc"]["format"])
    assert [int(x) for x in acc] == [int(x) for x in want]
    assert np.array_equal(got["acc_valid"].astype(np.uint8), valid)


def bench_accum(text, man, simulator, rng):
    """chunked-mac / kahan-mac: valid/clear (and last, when the unit has that port) streams;
    the golden model returns one array per accumulator output port, in packing order."""
    c = man["contract"]
    pk = c["packing"]
    valid, clear = control(rng, CYCLES, run=12)
    a = random_codes(rng, c["formats"][pk["a"]["format"]], CYCLES)
    b = random_codes(rng, c["formats"][pk["b"]["format"]], CYCLES)
    inputs = {"a": a, "b": b, "valid": valid, "clear": clear}
    ins = {p["name"] for p in man["ports"] if p["direction"] == "input"}
    ctl = [valid[:, None].astype(bool), clear[:, None].astype(bool)]
    if "last" in ins:
        inputs["last"] = (rng.random(CYCLES) < 0.1).astype(np.uint8)
        ctl.append(inputs["last"][:, None].astype(bool))
    outs = [p for p in pk if p not in ("a", "b")]
    fn, args = golden(man)
    want = fn(*ctl, a[:, None], b[:, None], **args)
    got = drive(text, man, inputs, outs + ["acc_valid"], simulator)
    for name, w in zip(outs, want):
        check_nans(got[name], man, name, pk[name]["format"])
        assert [int(x) for x in got[name]] == [int(x) for x in np.asarray(w)[:, 0]], name
    assert np.array_equal(got["acc_valid"].astype(np.uint8), valid)


def bench_fp_mul(text, man, simulator, rng):
    c = man["contract"]
    pk = c["packing"]
    a = random_codes(rng, c["formats"][pk["a"]["format"]], CYCLES)
    b = random_codes(rng, c["formats"][pk["b"]["format"]], CYCLES)
    fn, args = golden(man)
    want = np.asarray(fn(a, b, **args)).astype(np.uint64)
    got = drive(text, man, {"a": a, "b": b, "valid": np.ones(CYCLES, np.uint8)},
                ["p", "out_valid"], simulator)
    check_nans(got["p"], man, "p", pk["p"]["format"])
    assert np.array_equal(got["p"], want) and (got["out_valid"] == 1).all()


def bench_shared_exp(text, man, simulator, rng):
    c = man["contract"]
    pk = c["packing"]
    n = pk["a"]["lanes"]
    A = random_codes(rng, c["formats"][pk["a"]["format"]], (CYCLES, n))
    B = random_codes(rng, c["formats"][pk["b"]["format"]], (CYCLES, n))
    acc_codes = rng.integers(0, 1 << 32, CYCLES, dtype=np.uint64)
    acc_codes[rng.random(CYCLES) < 0.3] = 0
    acc = rebuild(c["formats"][pk["acc"]["format"]]).decode(acc_codes.astype(np.uint32))
    fn, args = golden(man)
    want = result_codes(fn(A, B, acc=acc, **args), man, "o")
    got = drive(text, man, {"a": pack(A, pk["a"]["lane_bits"]), "b": pack(B, pk["b"]["lane_bits"]),
                            "acc": acc_codes}, ["o"], simulator)
    check_nans(got["o"], man, "o", pk["o"]["format"])
    assert np.array_equal(got["o"], want)


def bench_blocks(text, man, simulator, rng):
    """mx-dot / bfp-adder: one block per valid cycle into the FP32 accumulator, ``first``
    restarting from +0; from the reset state (the manifest's outputs_after_reset)."""
    c = man["contract"]
    pk = c["packing"]
    n = pk["a"]["lanes"]
    scale_ports = [p for p in ("a_scale", "b_scale", "a_exp", "b_exp") if p in pk]
    V = CYCLES // 2
    A = random_codes(rng, c["formats"][pk["a"]["format"]], (V, n))
    B = random_codes(rng, c["formats"][pk["b"]["format"]], (V, n))
    valid, first = control(rng, V, run=4)
    scales = {}
    for p in scale_ports:
        d = c["formats"][pk[p]["format"]]
        if d["kind"] == "float":           # E8M0 scales: mostly near 2^0, some extremes / NaN
            near = d["bias"] + rng.integers(-8, 9, V)
            scales[p] = np.where(rng.random(V) < 0.9, near, rng.integers(0, 1 << d["bits"], V))
        else:                              # signed block exponents
            scales[p] = np.where(rng.random(V) < 0.8, rng.integers(-4, 5, V),
                                 rng.integers(d["min"], d["max"] + 1, V))
    if "a_scale" in scales:
        sd = rebuild(c["formats"][pk["a_scale"]["format"]])
        scale_exp = (scales["a_scale"] - sd.bias) + (scales["b_scale"] - sd.bias)
        scale_nan = np.isnan(sd.decode(scales["a_scale"])) | np.isnan(sd.decode(scales["b_scale"]))
    else:
        scale_exp = scales["a_exp"] + scales["b_exp"]
        scale_nan = np.zeros(V, bool)
    fn, args = golden(man)
    acc_f = rebuild(c["formats"]["acc"])
    o = c["reset"]["outputs_after_reset"]["o"]
    want = np.zeros(V, np.uint64)
    for t in range(V):
        if valid[t]:
            acc = 0.0 if first[t] else float(acc_f.decode(np.array([o], np.uint32))[0])
            r = fn(A[t:t + 1], B[t:t + 1], acc=np.array([acc]), scale_exp=scale_exp[t:t + 1],
                   **args)
            r = np.where(scale_nan[t:t + 1], np.float32(np.nan), r)
            o = int(result_codes(r, man, "o")[0])
        want[t] = o
    inputs = {"a": pack(A, pk["a"]["lane_bits"]), "b": pack(B, pk["b"]["lane_bits"]),
              "valid": valid, "first": first}
    for p in scale_ports:
        inputs[p] = scales[p] & ((1 << pk[p]["lane_bits"]) - 1)
    got = drive(text, man, inputs, ["o"], simulator)
    check_nans(got["o"], man, "o", pk["o"]["format"])
    assert np.array_equal(got["o"], want)


def bench_pe(text, man, simulator, rng):
    """overq-pe / int-pe: per-cycle slots with first/valid (golden: *_pe_stream)."""
    c = man["contract"]
    pk = c["packing"]
    valid = (rng.random(CYCLES) < 7 / 8).astype(np.uint8)
    first = (rng.random(CYCLES) < 1 / 8).astype(np.uint8)
    code = random_codes(rng, c["formats"][pk["code"]["format"]], CYCLES)
    wd = c["formats"][pk["w"]["format"]]
    w = rng.integers(wd["min"], wd["max"] + 1, CYCLES)
    fn, args = golden(man)
    inputs = {"code": code, "w": w, "first": first, "valid": valid}
    if "meta" in pk:
        meta = rng.choice(list(c["meta_codes"].values()), CYCLES)
        inputs["meta"] = meta
        want = fn(code, meta, w, first=first, valid=valid, **args)
    else:
        want = fn(code, w, first=first, valid=valid, **args)
    got = drive(text, man, inputs, ["acc"], simulator)
    assert [int(x) for x in signed(got["acc"], pk["acc"]["lane_bits"])] == \
        [int(x) for x in want]


def bench_systolic(text, man, simulator, rng):
    """Weight-stationary GEMM of two K-folds (the second continues the first's sums through the
    psum lanes) and one column fold, beats offered at the manifest's fold period; i__ready,
    o__valid, every result lane and last checked every cycle."""
    c = man["contract"]
    assert c["dataflow"] == "ws"
    R, C = c["rows"], c["cols"]
    fin = {f["name"]: f for f in c["packing"]["i__payload"]["fields"]}
    fout = {f["name"]: f for f in c["packing"]["o__payload"]["fields"]}
    M, K, N = 500, 2 * R, C
    A = random_codes(rng, c["formats"][fin["a"]["format"]], (M, K))
    B = random_codes(rng, c["formats"][fin["b"]["format"]], (K, N))
    fn, args = golden(man)
    part = np.asarray(fn(A[:, :R], B[:R, :], **args))        # first K-fold's sums
    full = np.asarray(fn(A, B, **args))
    P = eval(c["protocol"]["fold_period"].split("=")[1], {"R": R, "C": C, "T": M})
    L = man["latency_cycles"]

    def beat(**fields):
        word = 0
        for name, vals in fields.items():
            f = fin[name]
            vals = np.atleast_1d(vals)
            for i, v in enumerate(vals):
                word |= (int(v) & ((1 << f["lane_bits"]) - 1)) << (f["offset"] + i * f["lane_bits"])
        return word

    n = 2 * P + L + 2
    valid = np.zeros(n, np.uint8)
    payload = np.zeros(n, dtype=object)
    e_valid = np.zeros(n, np.uint8)
    e_acc = {}
    e_last = {}
    for f in range(2):
        k0 = f * R
        t0 = f * P
        for k in range(R):                                   # the tile's last row first
            valid[t0 + k] = 1
            payload[t0 + k] = beat(b=B[k0 + R - 1 - k], load=1)
        for t in range(M):
            psum = [c["empty_sum"]] * C if f == 0 else part[t]
            cyc = t0 + R + t
            valid[cyc] = 1
            payload[cyc] = beat(a=A[t, k0:k0 + R], mask=[1] * R, psum=psum, last=int(t == M - 1))
            e_valid[cyc + L] = 1
            e_acc[cyc + L] = part[t] if f == 0 else full[t]
            e_last[cyc + L] = int(t == M - 1)
    got = drive(text, man, {"i__valid": valid, "i__payload": payload,
                            "o__ready": np.ones(n, np.uint8)},
                ["i__ready", "o__valid", "o__payload"], simulator, latency=0)
    assert (got["i__ready"][valid == 1] == 1).all()
    assert np.array_equal(got["o__valid"].astype(np.uint8), e_valid)
    acc = fout["acc"]
    for cyc, want in e_acc.items():
        word = int(got["o__payload"][cyc])
        lanes = [(word >> (acc["offset"] + j * acc["lane_bits"])) & ((1 << acc["lane_bits"]) - 1)
                 for j in range(C)]
        if acc["signed"]:
            lanes = list(signed(lanes, acc["lane_bits"]))
        assert lanes == [int(x) for x in want], cyc
        assert (word >> fout["last"]["offset"]) & 1 == e_last[cyc]


def manifest_lfsr(sr, valid):
    """The draw each cycle sees, from the manifest's LFSR description alone: ``width`` bits,
    the XOR of the tapped stages (stage k = bit k-1) shifted in at bit 0, ``sr_bits`` shifts
    per draw, r = the low ``sr_bits`` bits of the new state; the register starts one draw
    after the seed and advances on every valid input."""
    lf = sr["lfsr"]
    w, n = lf["width"], sr["sr_bits"]

    def advance(s):
        for _ in range(n):
            f = 0
            for k in lf["taps"]:
                f ^= (s >> (k - 1)) & 1
            s = ((s << 1) | f) & ((1 << w) - 1)
        return s

    s, out = advance(lf["seed_after_reset"]), []
    for v in valid:
        out.append(s & ((1 << n) - 1))
        if v:
            s = advance(s)
    return np.array(out, dtype=np.int64)


def bench_quantiser(text, man, simulator, rng):
    """sr-quantise: random input codes, the LFSR's stream rebuilt from the manifest."""
    c = man["contract"]
    pk = c["packing"]
    valid = (rng.random(CYCLES) < 0.9).astype(np.uint8)
    x = random_codes(rng, c["formats"][pk["x"]["format"]], CYCLES)
    fn, args = golden(man)
    r = manifest_lfsr(c["stochastic_rounding"], valid)
    want = np.asarray(fn(x, random_bits=r, **args)).astype(np.uint64)
    got = drive(text, man, {"x": x, "valid": valid}, ["q", "out_valid"], simulator)
    check_nans(got["q"], man, "q", pk["q"]["format"])
    assert [int(v) for v in got["q"]] == [int(v) for v in want]
    assert np.array_equal(got["out_valid"].astype(np.uint8), valid)


def lane_codes(rng, pk, desc, shape):
    """Random lane values of a packed port: codes of its format, at ``value_offset`` inside a
    wider lane with random ignored bits where the manifest says so; mostly finite codes with
    some of every kind (NaN, Inf, zeros) for floats."""
    bits = desc["bits"]
    codes = rng.integers(0, 1 << bits, shape)
    if desc["kind"] == "float" and bits > 4:       # bias towards small exponents: sums that
        e_mask = ((1 << desc["exp_bits"]) - 1) << desc["man_bits"]   # do not all overflow
        mid = (desc["bias"] + rng.integers(-3, 4, shape)) << desc["man_bits"]
        tame = rng.random(shape) < 0.9
        codes = np.where(tame, (codes & ~e_mask) | (mid & e_mask), codes)
    if "value_bits" in pk:
        off = pk["value_offset"]
        noise = rng.integers(0, 1 << pk["lane_bits"], shape)
        keep = ((1 << bits) - 1) << off
        codes = (codes << off) | (noise & ~keep & ((1 << pk["lane_bits"]) - 1))
    return codes


def bench_dot(text, man, simulator, rng):
    """tensor-core-dot / int-dot: one dot product per cycle, c from the port's format; the
    first ``latency`` cycles after reset read ``outputs_after_reset``."""
    c = man["contract"]
    pk = c["packing"]
    out = "d" if "d" in pk else "o"
    V = CYCLES // 2
    data = {}
    for p, q in pk.items():
        if p == out:
            continue
        desc = c["formats"][q["format"]]
        v = lane_codes(rng, q, desc, (V, q["lanes"]))
        data[p] = v[:, 0] if q["lanes"] == 1 else v
    fn, args = golden(man)
    lat = man["latency_cycles"]
    if out == "d":
        scales = {k: data[k] for k in ("scale_a", "scale_b") if k in data}
        want = np.asarray(fn(data["a"], data["b"], data["c"], **scales, **args)).astype(np.uint64)
    else:
        cbits = pk["c"]["lane_bits"]
        data["c"] = signed(data["c"], cbits).astype(np.int64)
        want = np.asarray(fn(data["a"], data["b"], data["c"], **args)).astype(np.int64)
    inputs = {p: (pack(v, pk[p]["lane_bits"]) if v.ndim == 2 else
                  np.asarray(v).astype(np.int64) & ((1 << pk[p]["lane_bits"]) - 1))
              for p, v in data.items()}
    got = cosim.run_stream(text, inputs, [out], sim=simulator, toplevel=man["module"],
                           latency=0, extra_cycles=lat)[out]
    got = np.asarray([int(x) for x in got], dtype=object)
    if lat:
        assert [int(x) for x in got[:lat]] == [c["reset"]["outputs_after_reset"][out]] * lat
    got = got[lat:lat + V]
    if out == "d":
        check_nans(got.astype(np.uint64), man, "d", "cd")
        assert np.array_equal(got.astype(np.uint64), want)
    else:
        assert [int(x) for x in signed(got, pk["o"]["lane_bits"])] == [int(x) for x in want]


BENCHES = {"int-mac": bench_mac, "fp-mac": bench_mac, "fp-mul": bench_fp_mul,
           "chunked-mac": bench_accum, "kahan-mac": bench_accum,
           "shared-exp-adder": bench_shared_exp, "mx-dot": bench_blocks,
           "bfp-adder": bench_blocks, "overq-pe": bench_pe, "int-pe": bench_pe,
           "systolic": bench_systolic, "sr-quantise": bench_quantiser,
           "tensor-core-dot": bench_dot, "int-dot": bench_dot}


def test_every_kind_is_covered():
    assert {u for u, _ in CONFIGS} == set(catalog.units()) == set(BENCHES)


@pytest.mark.parametrize("unit, params", CONFIGS,
                         ids=[f"{u}-{i}" for i, (u, _) in enumerate(CONFIGS)])
def test_drive_from_manifest(unit, params, tmp_path, simulator):
    text, man = generate(tmp_path, unit, params)
    assert man["unit"] == unit and man["module"] in text
    BENCHES[unit](text, man, simulator, np.random.default_rng(len(text)))
