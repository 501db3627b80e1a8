# amaranth: UnusedElaboratable=no
"""SystolicArray in the Amaranth simulator: GEMMs bit-exact with the golden numerics in the
array's accumulation order, and cycle counts equal to the behavioural simulator's schedule."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lowbit.hdl.systolic import SystolicArray
from lowbit.sim.bench_systolic import GemmTiler, random_operands, ref_systolic, ref_systolic_state
from lowbit.sim.systolic import ArrayConfig


def rtl_gemm(array, A, B, p_valid=1.0, p_ready=1.0, seed=0, max_cycles=200_000):
    """Run ``A @ B`` through ``array`` in the Amaranth simulator with a reactive host.

    The host offers the next beat whenever it has one (with probability ``p_valid`` per cycle),
    builds WS psum lanes from the array's own previous K-fold results (its ofmap buffer; for
    the Kulisch PE the exact states of the result beats' ``state`` fields), and takes result
    beats with probability ``p_ready``. Returns ``(C, trace)``: the result codes and a dict of
    the cycles at which beats were accepted / results produced (cycle 0 = reset released);
    with pipelined PEs the GEMM must satisfy ``Schedule.readback_ok`` (the host does not wait
    for partial sums);
    Kulisch WS/IS: ``trace["state"]``, the last exact state of every output.
    """
    tl = GemmTiler(array, A, B)
    s = tl.sched
    rng = np.random.default_rng(seed)
    out = np.zeros((tl.M, tl.N), dtype=object)
    kst = array.kulisch and array.dataflow != "os"
    states = np.zeros((tl.M, tl.N), dtype=object)
    trace = {"accept": [], "result": [], "fold_accept": [], "fold_result": [], "state": states}
    per_fold = tl.results_per_fold()

    async def bench(ctx):
        f, k, results, sresults, cycle = 0, 0, [], [], 0
        nb = tl.beats_per_fold()
        while len(trace["fold_result"]) < s.folds:
            offer = f < s.folds and rng.random() < p_valid
            ctx.set(array.i.valid, offer)
            if offer:
                ctx.set(array.i.payload.as_value(), tl.beat(f, k, states if kst else out))
            ctx.set(array.o.ready, bool(rng.random() < p_ready))
            _, _, iv, ir, ov, orr, op = await ctx.tick().sample(
                array.i.valid, array.i.ready, array.o.valid, array.o.ready,
                array.o.payload.as_value())
            if iv and ir:
                trace["accept"].append(cycle)
                if k == 0:
                    trace["fold_accept"].append([])
                trace["fold_accept"][f].append(cycle)
                k += 1
                if k == nb:
                    f, k = f + 1, 0
            if ov and orr:
                trace["result"].append(cycle)
                acc, last = array.unpack_result(op)
                results.append(acc)
                if kst:
                    sresults.append(array.unpack_state(op))
                if array.dataflow != "os":
                    # the ofmap buffer takes every result beat as it comes: with pipelined PEs
                    # the next K-fold's first beats need the previous fold's first rows before
                    # its last rows are out (Schedule.readback_ok)
                    tl.place(len(trace["fold_result"]), results, out)
                    if kst:
                        tl.place(len(trace["fold_result"]), sresults, states)
                assert last == (len(results) == per_fold)
                if len(results) == per_fold:
                    tl.place(len(trace["fold_result"]), results, out)
                    if kst:
                        tl.place(len(trace["fold_result"]), sresults, states)
                    trace["fold_result"].append(trace["result"][-per_fold:])
                    results, sresults = [], []
            cycle += 1
            assert cycle < max_cycles
        ctx.set(array.i.valid, 0)

    sim = Simulator(array)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out, trace


def golden(array, A, B):
    return ref_systolic(array, A, B)


def check_schedule(array, trace, M, K, N):
    """Accept/result cycles equal the simulator's Schedule (full-rate host and sink)."""
    s = array.gemm_cycles(M, K, N)
    t0 = trace["accept"][0]
    P = s.fold_period
    for f, cyc in enumerate(trace["fold_accept"]):
        beats = (array.rows if array.dataflow != "os" else 0) + s.T
        assert [c - t0 for c in cyc] == [f * P + k for k in range(beats)]
    for f, cyc in enumerate(trace["fold_result"]):
        if array.dataflow != "os":
            want = [s.output_cycle(f, t) for t in range(s.T)]
        else:
            want = [s.output_cycle(f, i) for i in reversed(range(array.rows))]
        assert [c - t0 for c in cyc] == want
    assert trace["result"][-1] - t0 == s.latency
    assert trace["result"][-1] - t0 == s.compute_cycles + s.drain


CASES = [
    # rows, cols, pe, dataflow, M, K, N
    (2, 2, "int", "ws", 3, 5, 3),
    (2, 3, "int", "os", 5, 4, 7),
    (3, 2, "int", "ws", 4, 7, 5),
    (3, 2, "int", "os", 7, 3, 5),
    (2, 3, "int", "is", 5, 7, 4),
    (3, 2, "fp", "is", 4, 5, 6),
    (2, 2, "fp", "ws", 3, 5, 3),
    (2, 3, "fp", "os", 5, 4, 4),
    (1, 1, "int", "ws", 2, 3, 2),
    (1, 1, "int", "os", 2, 3, 2),
    (1, 3, "fp", "ws", 2, 2, 4),
    (3, 1, "fp", "os", 4, 2, 2),
]


@pytest.mark.parametrize("R,C,pe,df,M,K,N", CASES)
def test_gemm_bit_exact_and_cycles(R, C, pe, df, M, K, N):
    array = SystolicArray(R, C, pe=pe, dataflow=df)
    rng = np.random.default_rng(R * 100 + C * 10 + M)
    A, B = random_operands(array.spec, M, K, N, rng, 0.02)
    got, trace = rtl_gemm(array, A, B)
    assert np.array_equal(array.spec.from_codes(got), golden(array, A, B))
    check_schedule(array, trace, M, K, N)


# -- accumulator options: every PE option of the catalogue entry, bit-exact ------------------

OPTIONS = [
    dict(pe="int", a_format="int8", b_format="uint8", acc_bits=14, overflow="saturate"),
    dict(pe="int", a_format="int4", b_format="int4", acc_bits=8, overflow="wrap"),
    dict(pe="fp", a_format="e5m2", b_format="e4m3", acc_format="fp16", mode="fused"),
    dict(pe="fp", acc_format="bf16", mode="two_roundings"),
    dict(pe="fp", acc_format="fp16", saturate=True, flush_subnormals=True),
    dict(pe="fp", a_format="e2m1", b_format="e3m2", acc_format="fp32", mode="two_roundings"),
    dict(pe="overq", bits=4, w_bits=4, acc_bits=20, cascade=1, precision=True),
    dict(pe="overq", bits=3, w_bits=5, acc_bits=18, cascade=0, precision=False,
         shift_at="operands"),
    dict(pe="overq", bits=4, w_bits=4, acc_bits=16, cascade=2, precision=False),
]


_IS_OPTIONS = [OPTIONS[0], OPTIONS[2]]


@pytest.mark.parametrize("df,opts", [(df, o) for df in ("ws", "os") for o in OPTIONS]
                         + [("is", o) for o in _IS_OPTIONS],
                         ids=lambda o: "-".join(map(str, o.values())) if isinstance(o, dict) else o)
def test_pe_options_bit_exact(opts, df):
    """Order-sensitive accumulators (saturating INT, FP16/BF16 with rounding at every step) show
    that the array accumulates in the golden order: k increasing, across K-folds too."""
    array = SystolicArray(2, 3, dataflow=df, **opts)
    rng = np.random.default_rng(7)
    M, K, N = 5, 7, 4
    A, B = random_operands(array.spec, M, K, N, rng, 0.03)
    got, trace = rtl_gemm(array, A, B)
    assert np.array_equal(array.spec.from_codes(got), golden(array, A, B))
    check_schedule(array, trace, M, K, N)


# -- irregular host and sink: bubbles and back-pressure change the timing, never the result --

@pytest.mark.parametrize("pe,df", [("int", "ws"), ("int", "os"), ("fp", "ws"), ("fp", "os"),
                                   ("overq", "ws"), ("overq", "os"), ("int", "is"), ("fp", "is")])
def test_bubbles_and_backpressure(pe, df):
    kw = dict(acc_bits=16, overflow="saturate") if pe != "overq" else {}
    array = SystolicArray(3, 2, pe=pe, dataflow=df, **kw)
    rng = np.random.default_rng(11)
    M, K, N = 5, 7, 5
    A, B = random_operands(array.spec, M, K, N, rng, 0.02)
    got, trace = rtl_gemm(array, A, B, p_valid=0.6, p_ready=0.5, seed=3)
    assert np.array_equal(array.spec.from_codes(got), golden(array, A, B))
    s = array.gemm_cycles(M, K, N)
    assert trace["result"][-1] - trace["accept"][0] > s.latency


# -- cycle agreement sweep: every (R, C, dataflow) up to 4 x 4, several GEMM shapes ------------

def _sweep():
    rng = np.random.default_rng(2024)
    cases = []
    for R in range(1, 5):
        for C in range(1, 5):
            for df in ("ws", "os", "is"):
                M, K, N = (int(x) for x in rng.integers(1, 2 * max(R, C) + 2, 3))
                cases.append((R, C, df, M, K, N))
    return cases


@pytest.mark.parametrize("R,C,df,M,K,N", _sweep())
def test_cycles_equal_simulator_sweep(R, C, df, M, K, N):
    """Accept and result cycles of the RTL equal the behavioural simulator's schedule (and the
    GEMM is exact) for every array size 1..4 x 1..4 and every dataflow."""
    array = SystolicArray(R, C, pe="int", dataflow=df, a_format="int4", b_format="int4",
                          acc_bits=12)
    rng = np.random.default_rng(R * 7 + C)
    A, B = random_operands(array.spec, M, K, N, rng)
    got, trace = rtl_gemm(array, A, B)
    assert np.array_equal(array.spec.from_codes(got), golden(array, A, B))
    check_schedule(array, trace, M, K, N)
    # the simulator's layer result counts the same compute cycles
    from lowbit.sim.systolic import simulate_gemm
    res = simulate_gemm(M, K, N, ArrayConfig(rows=R, cols=C, dataflow=df))
    assert trace["result"][-1] - trace["accept"][0] == res.latency
    assert res.compute_cycles == array.gemm_cycles(M, K, N).compute_cycles


# -- Kulisch (exact fixed-point) accumulator ---------------------------------------------------

def fp_mac_kulisch(array, A, B):
    """Independent oracle: the golden FP MAC (:func:`lowbit.models.mac.fp_mac`, ``mode="kulisch"``)
    over all of K per output, one rounding at the end (no systolic order, no K-folds)."""
    from lowbit.models.mac import fp_mac
    pe = array.spec.datapath()
    return fp_mac(np.asarray(A)[:, None, :], np.asarray(B).T[None, :, :], pe.a_format,
                  pe.b_format, pe.acc_format, "kulisch", pe.flush_subnormals, pe.saturate,
                  pe.terms)


def check_kulisch(array, A, B, got, trace):
    want = golden(array, A, B)
    assert np.array_equal(array.spec.from_codes(got), want)
    assert np.array_equal(want, fp_mac_kulisch(array, A, B))
    if array.dataflow != "os":
        # the exact states the array handed back for the psum lanes, last K-fold: the whole sum
        assert np.array_equal(trace["state"], ref_systolic_state(array, A, B))


KULISCH_CASES = [
    # rows, cols, dataflow, M, K, N (M, K, N larger than the array: several folds, K-folds)
    (1, 1, "ws", 2, 3, 2),
    (2, 3, "ws", 5, 7, 4),
    (4, 4, "ws", 6, 9, 6),
    (3, 2, "is", 4, 7, 5),
    (1, 4, "is", 5, 3, 2),
    (2, 2, "os", 3, 5, 3),
    (4, 3, "os", 6, 4, 7),
    (1, 1, "os", 2, 3, 2),
]


@pytest.mark.parametrize("R,C,df,M,K,N", KULISCH_CASES)
def test_kulisch_gemm_bit_exact_and_cycles(R, C, df, M, K, N):
    """FP8 PE with the Kulisch accumulator: the state travels down the columns (WS/IS) and across
    K-folds exactly, or stays in the PE (OS), and is rounded once at the bottom edge; results
    equal gemm_numerics (KulischPE) and the golden FP MAC over all of K, on the schedule."""
    array = SystolicArray(R, C, pe="fp", dataflow=df, mode="kulisch")
    assert array.kulisch_width == (49, -18)          # e4m3 x e4m3, 4096 terms: 37 + 12 bits
    rng = np.random.default_rng(R * 100 + C * 10 + M)
    A, B = random_operands(array.spec, M, K, N, rng, 0.02)
    got, trace = rtl_gemm(array, A, B)
    check_kulisch(array, A, B, got, trace)
    check_schedule(array, trace, M, K, N)


KULISCH_OPTIONS = [
    dict(a_format="e5m2", b_format="e4m3", acc_format="fp16", saturate=True,
         flush_subnormals=True),
    dict(a_format="e2m1", b_format="e3m2", acc_format="bf16"),
    # a register for 2 terms summing 7: wraps modulo 2^width exactly as the model does
    dict(acc_format="fp32", terms=2),
]


@pytest.mark.parametrize("df,opts", [(df, o) for df in ("ws", "os", "is")
                                     for o in KULISCH_OPTIONS],
                         ids=lambda o: "-".join(map(str, o.values())) if isinstance(o, dict) else o)
def test_kulisch_options_bit_exact(df, opts):
    array = SystolicArray(2, 3, pe="fp", dataflow=df, mode="kulisch", **opts)
    rng = np.random.default_rng(5)
    M, K, N = 5, 7, 4
    A, B = random_operands(array.spec, M, K, N, rng, 0.03)
    if opts.get("terms") == 2:
        mx = int(array.a_format.encode(array.a_format.max))
        A[0], B[:, 0] = mx, mx                  # C[0, 0] = 7 * max^2: beyond the register
    got, trace = rtl_gemm(array, A, B)
    check_kulisch(array, A, B, got, trace)
    check_schedule(array, trace, M, K, N)
    if opts.get("terms") == 2:
        wide = SystolicArray(2, 3, pe="fp", dataflow=df, mode="kulisch", terms=K)
        assert not np.array_equal(golden(wide, A, B), golden(array, A, B))   # it did wrap


@pytest.mark.parametrize("df", ["ws", "os", "is"])
def test_kulisch_specials_across_k_folds(df):
    """NaN, +-Inf and the sign of an exact zero live in the four flag bits, which cross the
    K-folds with the fixed-point value: rows of -0 products only give -0, Inf of both signs in
    one sum NaN, x + (-x) +0."""
    array = SystolicArray(2, 2, pe="fp", dataflow=df, mode="kulisch", a_format="e5m2",
                          b_format="e5m2")
    e = array.a_format
    z, nz, one, m_one, inf, m_inf, nan = (int(e.encode(v)) for v in (
        0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan))
    M, K, N = 6, 5, 3
    A = np.full((M, K), z)
    A[0] = nz                                   # -0 * +1 five times: -0
    A[1] = [one, m_one, z, nz, z]               # 1 - 1 + 0: +0
    A[2, 3] = inf                               # +Inf in the second K-fold only
    A[3, 0], A[3, 4] = inf, m_inf               # Inf - Inf across K-folds: NaN
    A[4, 2] = nan
    A[5] = [one, nz, nz, nz, m_one]
    B = np.full((K, N), one)
    B[:, 2] = m_one                              # column 2: products of the other sign
    got, trace = rtl_gemm(array, A, B)
    check_kulisch(array, A, B, got, trace)
    from lowbit.models import formats
    r = formats.get("fp32").decode(np.asarray(got, dtype=np.uint64))
    assert np.signbit(r[0, 0]) and r[0, 0] == 0 and not np.signbit(r[0, 2]) and r[0, 2] == 0
    assert r[1, 0] == 0 and not np.signbit(r[1, 0])
    assert r[2, 0] == np.inf and r[2, 2] == -np.inf
    assert np.isnan(r[3]).all() and np.isnan(r[4]).all()
    assert r[5, 0] == 0 and not np.signbit(r[5, 0])


@pytest.mark.parametrize("df", ["ws", "os"])
def test_kulisch_bubbles_and_backpressure(df):
    array = SystolicArray(3, 2, pe="fp", dataflow=df, mode="kulisch", acc_format="fp16")
    rng = np.random.default_rng(13)
    M, K, N = 5, 7, 5
    A, B = random_operands(array.spec, M, K, N, rng, 0.02)
    got, trace = rtl_gemm(array, A, B, p_valid=0.6, p_ready=0.5, seed=4)
    check_kulisch(array, A, B, got, trace)
    s = array.gemm_cycles(M, K, N)
    assert trace["result"][-1] - trace["accept"][0] > s.latency


# -- parameters and catalogue ------------------------------------------------------------------

@pytest.mark.parametrize("kw,msg", [
    (dict(rows=0), r"^rows must be an integer from 1 to 128, not 0$"),
    (dict(cols=129), r"^cols must be an integer from 1 to 128, not 129$"),
    (dict(rows=2.5), r"^rows must be an integer, not 2\.5$"),
    (dict(pe="mx"), r"^pe must be one of the forms int8, .*, not 'mx'$"),
    (dict(pe="int8", acc_bits=20), r"^pe 'int8xint8_acc32_wrap' names the whole PE; acc_bits "
                                   r"cannot be given beside it"),
    (dict(pe="overq", acc_bits=8), r"^acc_bits must be an integer from 16 to 64, not 8$"),
    (dict(pe="overq", shift_at="x"), r"^shift_at must be one of product, operands, not 'x'$"),
    (dict(dataflow="xs"), r"^dataflow must be one of ws, os, is, not 'xs'$"),
    (dict(pe="overq", dataflow="is"),
     r"^dataflow 'is' is not available with pe 'overq' \(its metadata travels with the "
     r"streamed activations\)$"),
    (dict(pe="fp", mode="exact"),
     r"^mode must be one of fused, two_roundings, kulisch, not 'exact'$"),
    (dict(pe="fp", mode="kulisch", terms=0),
     r"^terms must be an integer from 1 to 4294967296, not 0$"),
    (dict(pe="int", a_format="e4m3"),
     r"^a_format must be an integer format int2\.\.int16 or uint2\.\.uint16, not 'e4m3'$"),
    (dict(pe="int", acc_bits=1), r"^acc_bits must be an integer from 2 to 64, not 1$"),
    (dict(pe="fp", acc_format="e4m3"), r"^acc_format must be an IEEE-style float format"),
])
def test_bad_parameters(kw, msg):
    error = TypeError if "must be an integer, not" in msg else ValueError
    with pytest.raises(error, match=msg):
        SystolicArray(**kw)


@pytest.mark.parametrize("df", ["ws", "os"])
def test_generate_cli(tmp_path, df):
    import json
    import re

    from lowbit.cli.main import main
    assert main(["generate", "systolic", "--rows", "2", "--cols", "3", "--pe", "int8_acc20",
                 "--dataflow", df, "-o", str(tmp_path)]) == 0
    text = (tmp_path / "systolic.v").read_text()
    man = json.loads((tmp_path / "systolic.json").read_text())
    assert man["parameters"]["dataflow"] == df and man["contract"]["dataflow"] == df
    assert man["latency_cycles"] == 4
    assert man["latency_formula"]["gemm_latency"].endswith(
        ("+ 1" if df == "ws" else "+ R") + " (cycle of the last result beat)")
    ports = {p["name"]: p for p in man["ports"]}
    assert set(ports) == {"clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid",
                          "o__ready", "o__payload"}
    assert all(p["meaning"] for p in man["ports"])
    array = SystolicArray(2, 3, pe="int", dataflow=df, acc_bits=20)
    assert ports["i__payload"]["width"] == array.operand_layout.size
    assert ports["o__payload"]["width"] == array.result_layout.size == 3 * 20 + 1
    m = re.search(r"input\s+(?:wire\s+)?\[(\d+):0\]\s+i__payload;", text)
    assert m and int(m.group(1)) + 1 == array.operand_layout.size


def test_generate_cli_bad_rows(capsys):
    from lowbit.cli.main import main
    assert main(["generate", "systolic", "--rows", "199", "-o", "/tmp/unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lowbit generate: error: rows must be an integer from 1 to 128, not 199"]


@pytest.mark.parametrize("df", ["ws", "os"])
def test_generate_cli_kulisch(tmp_path, df):
    """``lowbit generate systolic --pe e4m3_kulisch_fp16_t256``: Verilog plus a manifest whose ports
    and contract give the state layout (WS: the psum lanes and the result beats' state field)."""
    import json

    from lowbit.cli.main import main
    assert main(["generate", "systolic", "--rows", "3", "--cols", "2", "--pe",
                 "e4m3_kulisch_fp16_t256", "--dataflow", df, "-o", str(tmp_path)]) == 0
    man = json.loads((tmp_path / "systolic.json").read_text())
    assert (tmp_path / "systolic.v").read_text().count("module systolic") == 1
    array = SystolicArray(3, 2, pe="fp", dataflow=df, mode="kulisch", terms=256,
                          acc_format="fp16")
    width, lsb = array.kulisch_width
    assert (width, lsb) == (37 + 8, -18) and array.psum_width == width + 4
    k = man["contract"]["kulisch"]
    assert (k["width"], k["lsb_exponent"], k["state_bits"], k["exact_terms"]) == (45, -18, 49, 256)
    assert k["empty_sum"] == array.empty_sum == 8 << 45
    assert man["parameters"]["pe"] == "e4m3_kulisch_fp16_t256"
    assert man["contract"]["mode"] == "kulisch" and man["contract"]["acc_format"] == "fp16"
    assert man["contract"]["numerics"].endswith("KulischPE")
    ports = {p["name"]: p for p in man["ports"]}
    assert ports["i__payload"]["width"] == array.operand_layout.size
    assert ports["o__payload"]["width"] == array.result_layout.size
    if df == "ws":
        assert array.result_layout.size == 2 * 16 + 2 * 49 + 1
        assert array.operand_layout.size == 3 * 8 + 3 + 2 * 8 + 2 * 49 + 2
        assert "Kulisch state (49 bits" in ports["i__payload"]["meaning"]
        assert "state: 2 x Kulisch state" in ports["o__payload"]["meaning"]
    else:
        assert array.result_layout.size == 2 * 16 + 1


@pytest.mark.parametrize("pe,df", [("int8", "ws"), ("e4m3_fp32", "os"), ("e4m3_kulisch", "is")])
def test_verilog_is_hierarchical(pe, df):
    """to_verilog emits one PE module, instantiated C times in one row module, which the top
    instantiates R times (not one copy per PE); the modules' ports are the SystolicPE's and
    the SystolicRow's; the Amaranth simulator path (platform None) stays flat."""
    import re

    from lowbit.hdl.manifest import module_names, to_verilog, verilog_ports
    from lowbit.hdl.systolic import SystolicPE, SystolicRow
    R, C = 3, 4
    array = SystolicArray(R, C, pe=pe, dataflow=df)
    proto = SystolicPE(array.spec, df)
    row = SystolicRow(array.spec, df, C)
    name, rname = proto.module_name, row.module_name
    assert rname == f"{name}_row{C}"
    text = to_verilog(array, "top")
    names = module_names(text)
    assert names.count(name) == 1 and names.count(rname) == 1
    # the modules besides the three are their own submodules (\\<module>.core, ...)
    assert {n for n in names if not n.startswith("\\")} == {"top", name, rname}
    assert not any(n.startswith(("\\top.pe_", "\\top.row_")) for n in names)  # no copies
    assert len(re.findall(rf"^\s*{name}\s+\\?pe_0_\d+\b", text, re.MULTILINE)) == C
    assert len(re.findall(rf"^\s*{rname}\s+\\?row_\d+\b", text, re.MULTILINE)) == R
    pe_ports = {p for p, _, _ in verilog_ports(text, name)}
    assert pe_ports == set(proto.signature.members) | {"clk", "rst"}
    row_ports = {p: w for p, _, w in verilog_ports(text, rname)}
    assert set(row_ports) == set(row.signature.members) | {"clk", "rst"}
    assert row_ports["a"] == proto.a_width
    assert row_ports["b" if df == "os" else "w_i"] == C * proto.b_width
    to_verilog(proto, "unused")                   # the prototype is elaborated (no warning)
