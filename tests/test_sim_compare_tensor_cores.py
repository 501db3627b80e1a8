# amaranth: UnusedElaboratable=no
"""``lowbit compare --tensor-cores``: the error figures against an exact-rational oracle
(``fractions.Fraction`` over values decoded by ml_dtypes), the (b) stimulus against the golden
model, and the cost table and CLI on synthesis results put in by hand (the suite never
synthesises the 32/64-lane units: CI starts with an empty cache and each takes minutes)."""

import dataclasses
import json
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from lowbit.cli.main import main
from lowbit.fpga.synth import SynthResult
from lowbit.sim import compare as cmp
from lowbit.sim import compare_tensor_cores as tcc
from lowbit.sim import energy

# oracle decoders (ml_dtypes, independent of lowbit.models.formats)
_DECODE = {"e4m3": ml_dtypes.float8_e4m3fn, "e4m3fnuz": ml_dtypes.float8_e4m3fnuz}


def _oracle_values(codes, fmt_name):
    codes = np.asarray(codes).astype(np.uint8)
    if fmt_name == "e2m1":                               # 4-bit codes, one per byte
        return np.array([_e2m1(int(c)) for c in codes.ravel()]).reshape(codes.shape)
    return codes.view(_DECODE[fmt_name]).astype(np.float64)


def _e2m1(c):
    # OCP MX v1.0 table of E2M1: sign, 2 exponent bits (bias 1), 1 mantissa bit
    s, e, m = c >> 3, (c >> 1) & 3, c & 1
    v = m * 0.5 if e == 0 else (1 + m * 0.5) * 2.0 ** (e - 1)
    return -v if s else v


def _oracle_scales(codes, ins, axis):
    codes = np.asarray(codes).astype(np.int64)
    if ins.scale_format.name == "e8m0":
        v = np.ldexp(1.0, (codes - 127).astype(np.int32))
    else:                                                # UE4M3: E4M3 code without sign
        v = (codes & 0x7F).astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    return np.repeat(v, ins.block, axis=axis)


def _oracle_errors(ins, ca, cb, sa, sb, d_bits):
    va = _oracle_values(ca, ins.a_format.name)
    vb = _oracle_values(cb, ins.b_format.name)
    if ins.block is not None:
        va = va * _oracle_scales(sa, ins, 1)
        vb = vb * _oracle_scales(sb, ins, 0)
    M, K = va.shape
    N = vb.shape[1]
    out = np.empty((M, N))
    for m in range(M):
        for n in range(N):
            exact = sum((Fraction(float(va[m, k])) * Fraction(float(vb[k, n]))
                         for k in range(K)), Fraction(0))
            d = Fraction(float(np.uint32(d_bits[m, n]).view(np.float32)))
            e = -126
            if exact != 0:
                e = max(-126, abs(exact.numerator).bit_length()
                        - abs(exact.denominator).bit_length())
                if Fraction(2) ** e > abs(exact):        # bit lengths overshoot by one
                    e -= 1
            out[m, n] = float(abs(d - exact) / Fraction(2) ** (e - 23))
    return va, vb, out


@pytest.mark.parametrize("key", ["hopper-fp8", "blackwell-mxf8", "blackwell-nvf4",
                                 "cdna3-fp8"])
def test_errors_against_fraction_oracle(key):
    """Quantised values, per-output ulp errors and their max/mean match the exact rationals;
    the data has a wide dynamic range so that the cut and the rounding show."""
    rng = np.random.default_rng(5)
    ins = tcc.families([key])[0].instruction
    a = rng.standard_normal((3, 256)) * np.exp2(rng.integers(-6, 7, (3, 256)))
    b = rng.standard_normal((256, 4)) * np.exp2(rng.integers(-6, 7, (256, 4)))
    ca, cb, sa, sb, va, vb = tcc.quantise_operands(ins, a, b)
    d = ins.gemm(ca, cb, scale_a=sa, scale_b=sb)
    ova, ovb, want = _oracle_errors(ins, ca, cb, sa, sb, d)
    np.testing.assert_array_equal(va, ova)
    np.testing.assert_array_equal(vb, ovb)
    got = tcc.ulp_errors(np.asarray(d, np.uint32).view(np.float32), tcc.exact_dot(va, vb))
    # float64 of the exact sum: at most 2^-29 FP32 ulps off, then one float64 division
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=2.0 ** -28)
    if ins.a_format.bits == 8:   # FP8: the cut adds error here (FP4: the sums are exact in FP32)
        assert want.max() > 0
    errs = tcc.numerical_errors([key], {"t": (a, b, "test")})
    e = errs[key]["t"]
    assert e["max"] == pytest.approx(want.max(), rel=1e-12, abs=2.0 ** -28)
    assert e["mean"] == pytest.approx(want.mean(), rel=1e-12, abs=2.0 ** -28)
    assert e["outputs"] == 12 and e["K"] == 256
    if key == tcc.PROMOTED[0]:          # the cuBLAS form: FP32 promotion every 128 elements
        d = ins.gemm(ca, cb, promote_every=128)
        want = _oracle_errors(ins, ca, cb, sa, sb, d)[2]
        e = errs[tcc.PROMOTED[1]]["t"]
        assert e["max"] == pytest.approx(want.max(), rel=1e-12, abs=2.0 ** -28)
        assert e["mean"] == pytest.approx(want.mean(), rel=1e-12, abs=2.0 ** -28)
        assert set(errs) == {"int8", key, tcc.PROMOTED[1]}


def test_ulp_errors_edges():
    """ulp at binade edges, zero and subnormals (FP32 spacing from IEEE 754 binary32)."""
    d = np.array([1.0 + 2.0 ** -23, 1.0, 2.0 ** -149, 0.0, 3.0 * 2.0 ** -149, 2.0 ** -126])
    x = np.array([1.0, 1.0 - 2.0 ** -25, 0.0, 2.0 ** -150, 2.0 ** -149, 2.0 ** -126 * 1.5])
    np.testing.assert_array_equal(tcc.ulp_errors(d, x), [1.0, 0.5, 1.0, 0.5, 2.0, 2.0 ** 22])


def test_int8_row_is_exact_integer_sum():
    """INT8: the integer sum (exact) rounded once to FP32: zero below 2^24, the RNE error of
    binary32 above (oracle: Python integers)."""
    a = np.full((1, 1024), 1.0)
    b = np.full((1024, 2), 1.0)
    b[0, 1] = -1.0 / 127                                 # sum 127*127*1023 - 127 = 16,499,656
    e = tcc.numerical_errors(["exact-fp8"], {"t": (a, b, "")})["int8"]["t"]
    s = [127 * 127 * 1024, 127 * 127 * 1023 - 127]
    want = [abs(int(np.float32(v)) - v) / 2 ** (v.bit_length() - 24) for v in s]
    assert e["max"] == max(want) and e["mean"] == sum(want) / 2


@pytest.mark.parametrize("key", ["cdna3-fp8", "blackwell-nvf4"])
def test_stimulus_is_a_chain_of_golden_steps(key):
    """(b) stimulus: finite element codes, scales in their ranges, c = the previous d."""
    fam = tcc.families([key])[0]
    ins = fam.instruction
    cu = tcc.units([fam])[-1]
    L, w = ins.L, ins.a_format.bits
    ports = [("a", L * w), ("b", L * w), ("c", 32), ("rst", 1)]
    nb = 0 if ins.block is None else L // ins.block
    if nb:
        ports += [("scale_a", 8 * nb), ("scale_b", 8 * nb)]
    stim = tcc.tensor_core_stimulus(cu, ports)

    def unpack(v, width, n):
        return np.array([[(int(x) >> (width * i)) & ((1 << width) - 1) for i in range(n)]
                         for x in v])

    step = dataclasses.replace(ins, K=L)
    for t in (0, 5, 15, 16, 40):
        a, b = unpack(stim["a"][t], w, L), unpack(stim["b"][t], w, L)
        assert np.isfinite(ins.a_format.decode(a).astype(np.float64)).all()
        kw = {}
        if nb:
            kw = {p: unpack(stim[p][t], 8, nb) for p in ("scale_a", "scale_b")}
            assert all(((0x28 <= s) & (s < 0x48)).all() for s in kw.values())
        d = step.dpa(a, b, stim["c"][t].astype(np.uint32), **kw)
        if (t + 1) % 16:
            np.testing.assert_array_equal(stim["c"][t + 1], d)
        else:
            assert (stim["c"][t + 1] == 0).all()
    assert (stim["rst"] == 0).all()


def _fake_synthesise(chosen, target=None, **kw):
    """CompareRows from made-up synthesis results: area 1000 GE x L for INT8, 1500 x L for the
    tensor cores, flip-flops 10 x L, depth 40 / 80; (b) 0.5 pJ per MAC for INT8, 0.75 else."""
    assert kw["stimulus"][1] == tcc.TC_STIMULUS and kw["top_prefix"] == "lowbit_tc_"
    rows = []
    for cu in chosen:
        intd = cu.unit == "int-dot"
        g = SynthResult(top="x", target="generic", cells={}, flip_flops=10 * cu.macs,
                        area_ge=(1000 if intd else 1500) * cu.macs,
                        logic_depth=40 if intd else 80, key=cu.key)
        row = cmp.CompareRow(cu, g, None, energy.energy_per_op_pj(g) / cu.macs)
        if kw["toggles"]:
            row.toggle_pj = 0.5 if intd else 0.75
        rows.append(row)
    return rows


def test_cost_table_and_cli(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tcc._compare, "synthesise", _fake_synthesise)
    fams = tcc.families(["hopper-fp8", "blackwell-nvf4"])
    cus = tcc.units(fams, pipeline_stages=1)
    assert [(u.key, u.unit, u.macs) for u in cus] == [
        ("int8-k32", "int-dot", 32), ("int8-k64", "int-dot", 64),
        ("hopper-fp8", "tensor-core-dot", 32), ("blackwell-nvf4", "tensor-core-dot", 64)]
    assert cus[1].params == {"a_format": "int8", "b_format": "int8", "k": 64, "acc_bits": 32,
                             "pipeline_stages": 1}
    assert cus[2].params == {"instruction": "Hopper:m64n8k32.f32.e4m3.e4m3",
                             "pipeline_stages": 1}
    png, js = tmp_path / "t.png", tmp_path / "t.json"
    assert main(["compare", "--tensor-cores", "--families", "hopper-fp8,blackwell-nvf4",
                 "--datasets", "digits", "--plot", str(png), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    table = tcc.cost_table({r.unit.key: r for r in _fake_synthesise(
        tcc.units(fams), stimulus=(None, tcc.TC_STIMULUS), top_prefix="lowbit_tc_",
        toggles=True)}, ["hopper-fp8", "blackwell-nvf4"])
    assert [r[0] for r in table[1:]] == ["INT8 dot, L=32, INT32 c", "INT8 dot, L=64, INT32 c",
                                         "Hopper FP8 wgmma (T-FDPA, F=13, L=32)",
                                         "Blackwell NVFP4 (GST-FDPA, F=35, L=64)"]
    e15 = energy.energy_per_op_pj(1500.0)
    # per MAC: 1500 GE = 1.50x INT8; 10 FF = 1.00x; depth 80 = 2.00x; (a); (b) 0.750 = 1.50x
    assert table[3][1:] == ["1500", "1.50x", "10.0", "1.00x", "80", "2.00x", f"{e15:.3f}",
                            "1.50x", "0.750", "1.50x"]
    line = next(s for s in out.splitlines() if s.startswith("Hopper FP8 wgmma (T-FDPA, F=13"))
    assert "1500" in line and "2.00x" in line and "0.750" in line
    data = json.loads(js.read_text())
    assert set(data["rows"]) == {"int8-k32", "int8-k64", "hopper-fp8", "blackwell-nvf4"}
    assert data["rows"]["blackwell-nvf4"]["area_ge_per_mac"] == 1500
    errs = data["errors"]
    assert set(errs) == {"int8", "hopper-fp8", "hopper-fp8-promote128", "blackwell-nvf4"}
    assert "  same + FP32 promotion every 128 (cuBLAS)" in out
    assert errs["hopper-fp8"]["digits"]["outputs"] == 1797 * 10
    want = tcc.numerical_errors(["hopper-fp8"], tcc.datasets(["digits"]))["hopper-fp8"]
    assert errs["hopper-fp8"]["digits"] == want["digits"]
    assert f"{want['digits']['max']:.3f}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, msg", [
    (["--tensor-cores", "--units", "int8"], "--tensor-cores takes neither --units"),
    (["--tensor-cores", "--families", "volta"], "--families must be among hopper-fp8"),
    (["--tensor-cores", "--datasets", "mnist"], "--datasets must be among random, digits"),
    (["--tensor-cores", "--tc-pipeline", "3"], "--tc-pipeline must be an integer from 0 to 2"),
    (["--families", "hopper-fp8"], "--families and --datasets need --tensor-cores"),
])
def test_cli_bad_input(argv, msg, capsys):
    assert main(["compare", "--plot", ""] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lowbit compare: error: {msg}") and err.count("\n") == 1


def test_families_bad_input():
    with pytest.raises(ValueError, match=r"^families must be among hopper-fp8, .*not 'x'$"):
        tcc.families(["x"])
    with pytest.raises(ValueError, match=r"^pipeline_stages must be"):
        tcc.units(tcc.families(), pipeline_stages=3)
