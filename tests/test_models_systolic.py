"""The golden model of the systolic array (lowbit.models.systolic): the schedule against a
register-transfer model of the array, and the numerics of every PE in the array's order."""

import math

import numpy as np
import pytest

from lowbit.models.systolic import (Fp32AccPE, FpMacPE, IntPE, KulischPE, OverqPE, PESpec, Schedule,
                                    gemm_numerics, parse_pe, pe_name, reference_numerics)


# ---------------------------------------------------------------------------------------------------
# the schedule against a register-transfer model of the array

def _rt_weight_stationary(a_stream, tile, R, C, L):
    """Cycle-by-cycle register model of one WS/IS fold.

    a_stream: (T, R) streamed operand (row t enters array row i at the left edge at L + t + i);
    tile: (R, C) stationary operand, preloaded from the top (last row first) in cycles 0..R-1.
    Returns psum outputs (T, C), {(i, j, t): mac cycle}, {t: cycle the de-skewed vector is produced}.
    """
    T = a_stream.shape[0]
    w = [[None] * C for _ in range(R)]
    areg = [[None] * C for _ in range(R)]  # (value, t) leaving PE (i, j) to the right
    preg = [[None] * C for _ in range(R)]  # (psum, t) leaving PE (i, j) downwards
    macs, bottom = {}, {}
    out = np.zeros((T, C), dtype=np.int64)
    c = 0
    while True:
        if c < R:  # preload: shift the weight rows down, inject tile row R-1-c at the top
            for i in range(R - 1, 0, -1):
                w[i] = w[i - 1]
            w[0] = list(tile[R - 1 - c])
        new_a = [[None] * C for _ in range(R)]
        new_p = [[None] * C for _ in range(R)]
        for i in range(R):
            for j in range(C):
                if j == 0:
                    t = c - L - i
                    a_in = (a_stream[t, i], t) if c >= L and 0 <= t < T else None
                else:
                    a_in = areg[i][j - 1]
                if a_in is None:
                    continue
                val, t = a_in
                p_in = 0 if i == 0 else preg[i - 1][j][0]
                if i > 0:
                    assert preg[i - 1][j][1] == t
                new_a[i][j] = a_in
                new_p[i][j] = (p_in + int(val) * int(w[i][j]), t)
                macs[(i, j, t)] = c
                if i == R - 1:
                    out[t, j] = new_p[i][j][0]
                    bottom[(t, j)] = c
        areg, preg = new_a, new_p
        c += 1
        if len(macs) == R * C * T:
            break
    # de-skew: column j delayed by C-1-j registers, then one output register
    produced = {}
    for t in range(T):
        cyc = {bottom[(t, j)] + (C - 1 - j) + 1 for j in range(C)}
        assert len(cyc) == 1
        produced[t] = cyc.pop()
    return out, macs, produced


def _rt_output_stationary(a, b, R, C):
    """Cycle-by-cycle register model of one OS fold: a (R, T) from the left, b (T, C) from the top."""
    T = a.shape[1]
    acc = np.zeros((R, C), dtype=np.int64)
    areg = [[None] * C for _ in range(R)]
    breg = [[None] * C for _ in range(R)]
    macs = {}
    c = 0
    while len(macs) < R * C * T:
        new_a = [[None] * C for _ in range(R)]
        new_b = [[None] * C for _ in range(R)]
        for i in range(R):
            for j in range(C):
                ta = c - i
                a_in = ((a[i, ta], ta) if 0 <= ta < T else None) if j == 0 else areg[i][j - 1]
                tb = c - j
                b_in = ((b[tb, j], tb) if 0 <= tb < T else None) if i == 0 else breg[i - 1][j]
                new_a[i][j], new_b[i][j] = a_in, b_in
                if a_in is not None:
                    assert b_in is not None and a_in[1] == b_in[1]
                    acc[i, j] += int(a_in[0]) * int(b_in[0])
                    macs[(i, j, a_in[1])] = c
                else:
                    assert b_in is None
        areg, breg = new_a, new_b
        c += 1
    return acc, macs


@pytest.mark.parametrize("df", ["ws", "is"])
@pytest.mark.parametrize("R, C", [(3, 4), (4, 2)])
def test_schedule_matches_register_model_ws_is(df, R, C):
    rng = np.random.default_rng(1)
    M, K, N = 5, 7, 6
    A = rng.integers(-8, 8, (M, K))
    B = rng.integers(-8, 8, (K, N))
    s = Schedule(M, K, N, R, C, df)
    P = s.fold_period
    assert s.preload == R
    out = np.zeros((M, N), dtype=np.int64)
    for f in range(s.folds):
        tile = s.fold_tile(f)
        (k0, k1), (m0, m1), (n0, n1) = tile["K"], tile["M"], tile["N"]
        if df == "ws":  # stationary filter[K-slice, N-slice]; stream ifmap rows
            stat = np.zeros((R, C), dtype=np.int64)
            stat[:k1 - k0, :n1 - n0] = B[k0:k1, n0:n1]
            stream = np.zeros((s.T, R), dtype=np.int64)
            stream[:, :k1 - k0] = A[:, k0:k1]
        else:  # stationary ifmap^T[K-slice, M-slice]; stream filter columns
            stat = np.zeros((R, C), dtype=np.int64)
            stat[:k1 - k0, :m1 - m0] = A[m0:m1, k0:k1].T
            stream = np.zeros((s.T, R), dtype=np.int64)
            stream[:, :k1 - k0] = B[k0:k1, :].T
        psum, macs, produced = _rt_weight_stationary(stream, stat, R, C, s.preload)
        for (i, j, t), cyc in macs.items():
            assert f * P + cyc == s.mac_cycle(f, i, j, t)
        for t, cyc in produced.items():
            assert f * P + cyc == s.output_cycle(f, t)
        assert max(macs.values()) == P - 1
        if df == "ws":
            out[:, n0:n1] += psum[:, :n1 - n0]
        else:
            out[m0:m1, :] += psum[:, :m1 - m0].T
    np.testing.assert_array_equal(out, A @ B)
    assert s.mac_cycle(s.folds - 1, R - 1, C - 1, s.T - 1) == s.compute_cycles
    assert s.output_cycle(s.folds - 1, s.T - 1) == s.latency == s.compute_cycles + 1


@pytest.mark.parametrize("R, C", [(3, 4), (4, 2)])
def test_schedule_matches_register_model_os(R, C):
    rng = np.random.default_rng(2)
    M, K, N = 7, 5, 6
    A = rng.integers(-8, 8, (M, K))
    B = rng.integers(-8, 8, (K, N))
    s = Schedule(M, K, N, R, C, "os")
    P = s.fold_period
    out = np.zeros((M, N), dtype=np.int64)
    for f in range(s.folds):
        tile = s.fold_tile(f)
        (m0, m1), (n0, n1) = tile["M"], tile["N"]
        a = np.zeros((R, K), dtype=np.int64)
        a[:m1 - m0] = A[m0:m1]
        b = np.zeros((K, C), dtype=np.int64)
        b[:, :n1 - n0] = B[:, n0:n1]
        acc, macs = _rt_output_stationary(a, b, R, C)
        for (i, j, t), cyc in macs.items():
            assert f * P + cyc == s.mac_cycle(f, i, j, t)
        assert max(macs.values()) == P - 1
        out[m0:m1, n0:n1] = acc[:m1 - m0, :n1 - n0]
        # drain: row i leaves at (f+1)P + R-1-i, after its accumulator's last MAC, before the next
        # fold's drain
        for i in range(R):
            assert s.output_cycle(f, i) > f * P + max(macs[(i, j, K - 1)] for j in range(C))
            assert s.output_cycle(f, i) < (f + 2) * P
    np.testing.assert_array_equal(out, A @ B)
    assert s.output_cycle(s.folds - 1, 0) == s.latency == s.compute_cycles + R


def test_fold_order_and_tiles():
    s = Schedule(40, 50, 30, 8, 16, "ws")  # Sr = K = 50 -> 7 row folds, Sc = N = 30 -> 2 col folds
    assert (s.row_folds, s.col_folds, s.folds) == (7, 2, 14)
    assert s.fold_coords(0) == (0, 0) and s.fold_coords(6) == (0, 6) and s.fold_coords(7) == (1, 0)
    assert s.fold_tile(13) == {"M": (0, 40), "K": (48, 50), "N": (16, 30), "rows_used": 2, "cols_used": 14}
    assert s.phases() == {"preload": 8, "stream": 40, "row_skew": 7, "col_skew": 15, "period": 70, "drain": 1}


# ---------------------------------------------------------------------------------------------------
# numerics

def test_int8_numerics_exact():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (37, 300), dtype=np.uint8)  # int8 bit patterns
    b = rng.integers(0, 256, (300, 23), dtype=np.uint8)
    got = gemm_numerics(a, b, 8, 8, "ws", IntPE("int8", "int8", acc_bits=32))
    want = a.view(np.int8).astype(np.int64) @ b.view(np.int8).astype(np.int64)
    np.testing.assert_array_equal(got, want)


def test_int8_numerics_wraps_like_a_register():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (6, 40), dtype=np.uint8)
    b = rng.integers(0, 256, (40, 5), dtype=np.uint8)
    pe = IntPE(acc_bits=16)
    got = gemm_numerics(a, b, 4, 4, "os", pe)
    exact = a.view(np.int8).astype(np.int64) @ b.view(np.int8).astype(np.int64)
    np.testing.assert_array_equal(got, ((exact + 2**15) % 2**16) - 2**15)
    np.testing.assert_array_equal(got, reference_numerics(a, b, pe))
    assert np.any(got != exact)  # the case does overflow 16 bits



@pytest.mark.parametrize("acc_bits", [20, 53, 62, 63, 64])
def test_int_pe_wide_accumulators_exact(acc_bits):
    """IntPE takes 2..64 bits like the hardware; its uint64 matmul (wrap) and its step loop
    (saturate) agree with Python integers; steps at the limits wrap/clamp exactly."""
    rng = np.random.default_rng(acc_bits)
    a = rng.integers(0, 1 << 16, (5, 200), dtype=np.uint64).astype(np.uint16)
    b = rng.integers(0, 1 << 16, (200, 3), dtype=np.uint64).astype(np.uint16)
    av = [[v - (1 << 16) if v >= 1 << 15 else v for v in row] for row in a.tolist()]
    bv = [[v - (1 << 16) if v >= 1 << 15 else v for v in row] for row in b.tolist()]
    half = 1 << (acc_bits - 1)
    exact = [[sum(av[m][k] * bv[k][n] for k in range(200)) for n in range(3)] for m in range(5)]
    for overflow in ("wrap", "saturate"):
        pe = IntPE("int16", "int16", acc_bits=acc_bits, overflow=overflow)
        got = gemm_numerics(a, b, 4, 4, "ws", pe)
        np.testing.assert_array_equal(got, reference_numerics(a, b, pe))
        if overflow == "wrap":
            assert got.tolist() == [[(v + half) % (2 * half) - half for v in r] for r in exact]
        elif acc_bits > 40:
            assert got.tolist() == exact            # no partial sum reaches 2^39
        lo, hi = -half, half - 1
        acc = np.array([hi, hi - 1, lo, lo + 1], np.int64)
        step = pe.step(acc, np.array([1, 1, 1, 1]), np.array([2, 1, 0xFFFE, 0xFFFF]))
        want = [hi + 2, hi, lo - 2, lo] if overflow == "wrap" else [hi, hi, lo, lo]
        assert step.tolist() == [(v - lo) % (2 * half) + lo for v in want]
    assert PESpec("int", "int16", "int16", acc_bits=acc_bits).datapath().acc_bits == acc_bits

def test_int8_saturating_accumulator_follows_k_order():
    rng = np.random.default_rng(6)
    a = rng.integers(0, 256, (5, 30), dtype=np.uint8)
    b = rng.integers(0, 256, (30, 4), dtype=np.uint8)
    pe = IntPE(acc_bits=12, overflow="saturate")
    got = gemm_numerics(a, b, 4, 4, "ws", pe)
    av, bv = a.view(np.int8).astype(np.int64), b.view(np.int8).astype(np.int64)
    want = np.zeros((5, 4), dtype=np.int64)
    for m in range(5):
        for n in range(4):
            acc = 0
            for k in range(30):  # clamp to [-2048, 2047] after every MAC, k ascending
                acc = min(2047, max(-2048, acc + int(av[m, k]) * int(bv[k, n])))
            want[m, n] = acc
    np.testing.assert_array_equal(got, want)
    assert np.any(np.abs(want) == 2048) or np.any(want == 2047)


def test_fp32_accumulate_order_matches_float32_oracle():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(5)
    K = 64
    # e4m3 (OCP, "fn") codes excluding NaN (0x7f, 0xff)
    codes = np.array([c for c in range(256) if c & 0x7F != 0x7F], dtype=np.uint8)
    a = rng.choice(codes, (9, K))
    b = rng.choice(codes, (K, 7))
    got = gemm_numerics(a, b, 4, 4, "ws", Fp32AccPE("e4m3", "e4m3"))
    av = a.view(ml_dtypes.float8_e4m3fn).astype(np.float32)  # independent decode
    bv = b.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    want = np.zeros((9, 7), dtype=np.float32)
    rev = np.zeros((9, 7), dtype=np.float32)
    for m in range(9):
        for n in range(7):
            acc = np.float32(-0.0)
            for k in range(K):  # products of e4m3 values are exact in float32; one rounding per add
                acc = np.float32(acc + av[m, k] * bv[k, n])
            want[m, n] = acc
            acc = np.float32(0)
            for k in reversed(range(K)):
                acc = np.float32(acc + av[m, k] * bv[k, n])
            rev[m, n] = acc
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert np.any(rev != want)  # the order matters for an FP accumulator: this case shows it
    np.testing.assert_array_equal(gemm_numerics(a, b, 4, 4, "os", Fp32AccPE(), block_rows=2)
                                  .view(np.uint32), want.view(np.uint32))
    # the golden-model FP MAC (fused, FP32 accumulator) gives the same bits in the same order
    golden = gemm_numerics(a, b, 4, 4, "ws", FpMacPE("e4m3", "e4m3", "fp32", "fused"))
    np.testing.assert_array_equal(golden.astype(np.uint32), want.view(np.uint32))


def test_golden_fp_mac_two_roundings_fp16_matches_scalar_reference():
    rng = np.random.default_rng(7)
    codes = np.array([c for c in range(256) if c & 0x7F != 0x7F], dtype=np.uint8)
    a = rng.choice(codes, (4, 20))
    b = rng.choice(codes, (20, 3))
    pe = FpMacPE("e4m3", "e4m3", "fp16", "two_roundings", saturate=True)
    got = gemm_numerics(a, b, 2, 2, "os", pe)
    np.testing.assert_array_equal(got, reference_numerics(a, b, pe))


def test_numerics_validation():
    with pytest.raises(ValueError, match=r"^a_codes must be \(M, K\) and b_codes \(K, N\) with equal K"):
        gemm_numerics(np.zeros((2, 3), np.uint8), np.zeros((4, 2), np.uint8), 32, 32, "ws")
    with pytest.raises(ValueError, match=r"^a_format must be an integer format"):
        IntPE("e4m3")
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer from 2 to 64, not 65$"):
        IntPE(acc_bits=65)
    with pytest.raises(ValueError, match=r"^overflow must be one of wrap, saturate, not 'clip'$"):
        IntPE(overflow="clip")
    with pytest.raises(TypeError, match=r"^rows must be an integer, not 4\.0$"):
        gemm_numerics(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), 4.0, 4, "ws")
    with pytest.raises(ValueError, match=r"^dataflow must be one of os, ws, is, not 'xs'$"):
        gemm_numerics(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), 4, 4, "xs")
    with pytest.raises(TypeError, match=r"^pe must implement the PEDatapath protocol, not 'int8'$"):
        gemm_numerics(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), 4, 4, "ws", "int8")
    with pytest.raises(ValueError, match=r"^mode must be 'fused' or 'two_roundings' \(KulischPE for "
                                         r"'kulisch'\), not 'kulisch'$"):
        FpMacPE(mode="kulisch")
    with pytest.raises(ValueError, match=r"^output must be 'code' or 'state', not 'value'$"):
        KulischPE(output="value")
    with pytest.raises(ValueError, match=r"^terms must be an integer from 1 to 4294967296, not 0$"):
        KulischPE(terms=0)
    with pytest.raises(ValueError, match=r"^acc_format must be an IEEE-style float format"):
        KulischPE(acc_format="e4m3")


def test_kulisch_numerics_exact_sum_rounded_once():
    """KulischPE: the exact sum of the products rounded once to FP32. Oracle: ml_dtypes decode,
    exact float64 products, ``math.fsum`` (the exact sum: a multiple of 2^-18 below 2^30 has at
    most 48 significant bits, so float64 holds it) and one float64 -> float32 rounding (RNE)."""
    import math
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(9)
    K = 64
    codes = np.array([c for c in range(256) if c & 0x7F != 0x7F], dtype=np.uint8)
    a = rng.choice(codes, (9, K))
    b = rng.choice(codes, (K, 7))
    a[0] = 0x80                                   # -0 products only: -0
    b[:, 6] = 0                                   # +0 * x: +0
    pe = KulischPE("e4m3", "e4m3", "fp32")
    assert (pe.width, pe.lsb_exp) == (49, -18)
    got = gemm_numerics(a, b, 4, 4, "ws", pe)
    av = a.view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    bv = b.view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    want = np.zeros((9, 7), dtype=np.float32)
    for m in range(9):
        for n in range(7):
            p = av[m] * bv[:, n]
            want[m, n] = np.float32(math.fsum(p))
            if want[m, n] == 0:                   # an exact zero: -0 iff every product is -0
                want[m, n] = -0.0 if np.all((p == 0) & np.signbit(p)) else 0.0
    assert np.signbit(want[0, 6]) and want[0, 6] == 0 and not np.signbit(want[0, 0])
    np.testing.assert_array_equal(got.astype(np.uint32), want.view(np.uint32))
    # order-independent (exact), scalar reference, and the golden FP MAC over the whole row
    np.testing.assert_array_equal(gemm_numerics(a[:, ::-1], b[::-1], 2, 2, "os", pe),
                                  got)
    np.testing.assert_array_equal(reference_numerics(a[:3, :9], b[:9, :3], pe),
                                  gemm_numerics(a[:3, :9], b[:9, :3], 32, 32, "ws", pe))
    from lowbit.models.mac import fp_mac
    np.testing.assert_array_equal(fp_mac(a[:, None, :], b.T[None], "e4m3", "e4m3", "fp32", "kulisch"),
                                  got)
    # an FP32 accumulator rounding every step differs somewhere: this case shows it
    fused = gemm_numerics(a, b, 32, 32, "ws", FpMacPE("e4m3", "e4m3", "fp32", "fused"))
    assert np.any(fused != got)


def test_kulisch_state_output_packs_fixed_and_flags():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 1 << 5, (4, 6))           # e5m2 codes, Inf/NaN included
    a[0, 0] = 0x7C                                # +Inf
    a[1, 0] = 0x7D                                # NaN
    b = rng.integers(0, 1 << 5, (6, 3))
    b[0] = 0x3C                                   # +1
    pe = KulischPE("e5m2", "e5m2", "bf16", terms=8)
    ps = KulischPE("e5m2", "e5m2", "bf16", terms=8, output="state")
    st = gemm_numerics(a, b, 32, 32, "ws", ps)
    assert st.dtype == object and all(0 <= int(v) < 1 << (ps.width + 4) for v in st.flat)
    flags = np.vectorize(lambda v: int(v) >> ps.width)(st)
    assert (flags[0] & 2).all() and (flags[1] & 1).all()      # +Inf seen; NaN seen
    state = ps.unpack(st)
    np.testing.assert_array_equal(pe.result(state), gemm_numerics(a, b, 32, 32, "ws", pe))
    np.testing.assert_array_equal(ps.pack(state), st)
    assert all(-(1 << (ps.width - 1)) <= int(v) < 1 << (ps.width - 1) for v in state.fixed.flat)


# ---------------------------------------------------------------------------------------
# PE names


@pytest.mark.parametrize("name, spec", [
    ("int8", PESpec("int", "int8", "int8", acc_bits=32, overflow="wrap")),
    ("INT8", PESpec("int", "int8", "int8")),
    ("int8xint4_acc24_saturate", PESpec("int", "int8", "int4", acc_bits=24, overflow="saturate")),
    ("uint8", PESpec("int", "uint8", "uint8")),
    ("int8xint8_acc32_wrap", PESpec("int", "int8", "int8")),
    ("e4m3_fp32", PESpec("fp", "e4m3", "e4m3", acc="fp32", mode="fused")),
    ("fp8_fp32acc", PESpec("fp", "e4m3", "e4m3", acc="fp32")),
    ("e5m2xe4m3_fp16_two_roundings", PESpec("fp", "e5m2", "e4m3", acc="fp16", mode="two_roundings")),
    ("e4m3xe4m3_fp32acc", PESpec("fp", "e4m3", "e4m3", acc="fp32")),
    ("e2m1_bf16", PESpec("fp", "e2m1", "e2m1", acc="bf16")),
    ("overq4", PESpec("overq", "int4", "int4", acc_bits=32, bits=4, w_bits=4)),
    ("e4m3_kulisch", PESpec("fp", "e4m3", "e4m3", acc="fp32", mode="kulisch", terms=4096)),
    ("e4m3xe4m3_fp32_kulisch49", PESpec("fp", "e4m3", "e4m3", acc="fp32", mode="kulisch", terms=4096)),
    # 1000 terms need the same register as 1024: the canonical terms is the register's capacity
    ("e5m2_kulisch_fp16_t1000", PESpec("fp", "e5m2", "e5m2", acc="fp16", mode="kulisch", terms=1024)),
    ("e4m3_kulisch37", PESpec("fp", "e4m3", "e4m3", acc="fp32", mode="kulisch", terms=1)),
    ("overq4_w8_acc24", PESpec("overq", "int4", "int8", acc_bits=24, bits=4, w_bits=8)),
])
def test_parse_pe(name, spec):
    assert parse_pe(name) == spec
    assert parse_pe(spec.key) == spec


@pytest.mark.parametrize("bad, why", [
    ("foo", ""), ("int8_fp32", " ('int8' is not a float format of at most 16 bits)"),
    ("e4m3_kulisch99", " (Kulisch width for e4m3xe4m3 must be 37..69, not 99)"),
    ("e4m3_kulisch49_t4096", " (give the Kulisch width or the terms, not both)"),
    ("int8_acc80", " (accumulator width must be 2..64, not 80)"),
    ("int3x", ""), ("e4m3xint8_fp32", " ('int8' is not a float format of at most 16 bits)"),
    ("fp32xfp32_fp32", " ('fp32' is not a float format of at most 16 bits)"),
    ("overq1", " (OverQ: b and w 2..16, accumulator 2..64)"),
])
def test_parse_pe_bad(bad, why):
    with pytest.raises(ValueError, match=r"^pe must be one of the forms int8, uint8, .*, not "
                                         + repr(bad) + __import__("re").escape(why) + "$"):
        parse_pe(bad)


def test_pe_name_of_datapaths():
    assert parse_pe(pe_name(IntPE())) == parse_pe("int8")
    assert parse_pe(pe_name(IntPE("int4", "int8", 20, "saturate"))) == PESpec(
        "int", "int4", "int8", acc_bits=20, overflow="saturate")
    assert parse_pe(pe_name(FpMacPE("e5m2", "e5m2", "fp16", "two_roundings"))) == PESpec(
        "fp", "e5m2", "e5m2", acc="fp16", mode="two_roundings")
    assert parse_pe(pe_name(Fp32AccPE())) == parse_pe("e4m3_fp32")
    assert pe_name(KulischPE()) == "e4m3xe4m3_fp32_kulisch49"
    assert parse_pe(pe_name(KulischPE("e5m2", "e4m3", "bf16", terms=100))) == PESpec(
        "fp", "e5m2", "e4m3", acc="bf16", mode="kulisch", terms=128)
    assert parse_pe("e4m3_kulisch").acc_width == 49 + 4       # van Baalen's INT37 + 12 guard bits
    assert pe_name("int8") == "int8"
    assert pe_name(FpMacPE(saturate=True)) == "e4m3xe4m3_fp32_fused_sat"
    assert parse_pe(pe_name(FpMacPE(flush_subnormals=True, saturate=True))) == PESpec(
        "fp", "e4m3", "e4m3", acc="fp32", flush_subnormals=True, saturate=True)
    assert pe_name(OverqPE(4, 4, 16, cascade=2, precision=False, shift_at="operands")) == \
        "overq4_w4_acc16_c2_noprec_operands"
    assert parse_pe("overq4_w4_acc16_c2_noprec_operands") == PESpec(
        "overq", acc_bits=16, bits=4, w_bits=4, cascade=2, precision=False, shift_at="operands")
    with pytest.raises(TypeError, match=r"^pe must be an IntPE, FpMacPE, KulischPE, OverqPE, "
                                        r"Fp32AccPE, a PESpec or a PE name, not 3$"):
        pe_name(3)


# ---------------------------------------------------------------------------------------
# index checks of the schedule, the PE specification's own values (not spec == spec, which a
# bug made in both sides passes), the Kulisch state packing and the OverQ step path

def test_schedule_index_checks():
    s = Schedule(8, 8, 8, 4, 3, "ws")           # Sr = K = 8: 2 row folds; Sc = N = 8: 3 col folds
    assert s.folds == 6 and s.T == 8
    last = s.mac_cycle(5, 3, 2, 7)
    assert last == s.compute_cycles == 5 * s.fold_period + 4 + 7 + 3 + 2
    assert s.output_cycle(5, 7) == s.latency
    for args, msg in [((6, 0, 0, 0), "f must be an integer from 0 to 5, not 6"),
                      ((-1, 0, 0, 0), "f must be an integer from 0 to 5, not -1"),
                      ((0, 4, 0, 0), "i must be an integer from 0 to 3, not 4"),
                      ((0, 0, 3, 0), "j must be an integer from 0 to 2, not 3"),
                      ((0, 0, 0, 8), "t must be an integer from 0 to 7, not 8")]:
        with pytest.raises(ValueError, match="^" + msg + "$"):
            s.mac_cycle(*args)
    for fn in (s.fold_coords, s.fold_start, s.fold_tile):
        with pytest.raises(ValueError, match=r"^f must be an integer from 0 to 5, not 6$"):
            fn(6)
    with pytest.raises(ValueError, match=r"^t must be an integer from 0 to 7, not 8$"):
        s.output_cycle(0, 8)
    with pytest.raises(ValueError, match=r"^f must be an integer from 0 to 5, not 6$"):
        s.output_cycle(6, 0)
    o = Schedule(8, 8, 8, 4, 3, "os")
    assert o.output_cycle(o.folds - 1, 0) == o.latency
    with pytest.raises(ValueError, match=r"^row must be an integer from 0 to 3, not 4$"):
        o.output_cycle(0, 4)


def test_pespec_values_and_neutral_fields():
    from lowbit.models import formats
    s = PESpec("fp", "e5m2", "e4m3", acc="fp16", mode="two_roundings")
    assert (s.a_format, s.b_format, s.acc_format) == (formats.e5m2, formats.e4m3, formats.fp16)
    assert s.key == "e5m2xe4m3_fp16_two_roundings" and s.result_width == s.acc_width == 16
    assert PESpec("fp").acc_format == formats.fp32 and PESpec("fp").a_format == formats.e4m3
    i = PESpec("int", "int4", "uint8", acc_bits=20)
    assert (i.a_format, i.b_format, i.acc_format) == (formats.int4, formats.uint8, None)
    assert (i.a_lane_width, i.b_lane_width, i.result_width) == (4, 8, 20)
    # the fields that do not apply take their neutral values, so equal PEs compare equal
    neutral = dict(acc=None, mode="fused", terms=0, flush_subnormals=False, saturate=False, bits=0,
                   w_bits=0, cascade=1, precision=True, shift_at="product")
    assert {k: getattr(i, k) for k in neutral} == neutral
    assert PESpec("int", flush_subnormals=True, saturate=True, acc="fp16", cascade=3) == PESpec("int")
    o = PESpec("overq")
    assert (o.flush_subnormals, o.saturate, o.acc, o.terms, o.overflow, o.mode) == \
        (False, False, None, 0, "wrap", "fused")
    assert (o.precision, o.cascade, o.a_format, o.b_format) == (True, 1, formats.int4, formats.int4)
    f = PESpec("fp", overflow="saturate", bits=7, precision=False)
    assert (f.overflow, f.bits, f.precision, f.terms, f.acc_bits) == ("wrap", 0, True, 0, 0)
    k = PESpec("fp", mode="kulisch", terms=2 ** 32)
    assert k.terms == 2 ** 32 and k.kulisch
    with pytest.raises(ValueError, match=r"^terms must be an integer from 1 to 4294967296, not 4294967297$"):
        PESpec("fp", mode="kulisch", terms=2 ** 32 + 1)
    assert parse_pe("e4m3_kulisch_t4294967296").terms == 2 ** 32


def test_empty_sum_is_each_pe_identity():
    from lowbit.models import formats, mac
    assert PESpec("int").empty_sum == 0 and PESpec("overq").empty_sum == 0
    bf = PESpec("fp", acc="bf16")
    z = formats.bf16.decode(np.array(bf.empty_sum, dtype=formats.bf16.code_dtype))
    assert z == 0 and np.signbit(z)                               # -0
    k = PESpec("fp", mode="kulisch")
    dp = k.datapath(output="state")
    st = dp.unpack(np.array([k.empty_sum], dtype=object))
    new = mac.kulisch_new_sum((1,))
    assert list(st.fixed) == list(new.fixed) == [0] and list(st.flags) == list(new.flags)
    assert k.empty_sum == int(dp.pack(new)[0])


def test_kulisch_pack_unpack_negative_values():
    from lowbit.models import mac
    ps = KulischPE("e4m3", "e4m3", "fp32", output="state")
    w = ps.width
    fixed = np.array([-(1 << (w - 1)), -1, 0, 1, (1 << (w - 1)) - 1, -12345, 1 << (w - 2)], dtype=object)
    flags = np.array([0, 15, 8, 1, 2, 4, 3], dtype=np.int64)
    packed = ps.pack(mac.KulischState(fixed, flags))
    assert int(packed[1]) == ((1 << w) - 1) | (15 << w)           # two's complement in w bits
    assert int(packed[0]) == 1 << (w - 1)
    back = ps.unpack(packed)
    assert list(back.fixed) == list(fixed) and list(back.flags) == list(flags)


def test_overq_step_chain_equals_matmul():
    # gemm_numerics uses OverqPE.matmul (order independent); the per-step path (what the array
    # does, and reference_numerics) must give the same sums, lane words with metadata included
    from lowbit.models import overq
    rng = np.random.default_rng(11)
    assert pe_name(OverqPE()) == "overq4_w4_acc32" and OverqPE().config == PESpec("overq").overq_config
    for pe in (OverqPE(), OverqPE(4, 4, 16, cascade=2, precision=False), OverqPE(3, 5, 18)):
        cfg = pe.config
        x = rng.standard_normal((5, 12)) * np.where(rng.random((5, 12)) < 0.2, 6.0, 1.0)
        t = overq.encode(x, cfg, 0.25)
        assert (t.meta != 0).any()
        a = t.codes.astype(np.int64) | (t.meta.astype(np.int64) << pe.bits)
        b = rng.integers(-(1 << (pe.w_bits - 1)), 1 << (pe.w_bits - 1), (12, 4))
        got = gemm_numerics(a, b, 4, 4, "ws", pe)
        want = overq.overq_matmul(t.codes, t.meta, b, cfg, pe.w_bits, pe.acc_bits)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(reference_numerics(a, b, pe), want)


def test_fp32acc_pe_rejects_non_float_formats():
    with pytest.raises(ValueError, match=r"^a_format must be a float format with at most 25 mantissa bits"):
        Fp32AccPE("int8")
    with pytest.raises(ValueError, match=r"^b_format must be a float format with at most 25 mantissa bits"):
        Fp32AccPE("e4m3", "int4")


def test_pespec_datapath_of_each_kind():
    i = PESpec("int", "int4", "int8", acc_bits=20, overflow="saturate").datapath()
    assert isinstance(i, IntPE) and (i.a_format.name, i.b_format.name, i.acc_bits, i.overflow) == \
        ("int4", "int8", 20, "saturate")
    f = PESpec("fp", "e5m2", "e4m3", acc="fp16", mode="two_roundings", saturate=True).datapath()
    assert isinstance(f, FpMacPE) and (f.a_format.name, f.b_format.name, f.acc_format.name, f.mode,
                                       f.saturate) == ("e5m2", "e4m3", "fp16", "two_roundings", True)
    k = PESpec("fp", mode="kulisch", terms=100).datapath(output="state")
    assert isinstance(k, KulischPE) and (k.terms, k.output) == (100, "state")
    o = PESpec("overq", bits=3, w_bits=5, acc_bits=18).datapath()
    assert isinstance(o, OverqPE) and (o.bits, o.w_bits, o.acc_bits) == (3, 5, 18)


def test_gemm_numerics_shape_checks():
    a = np.zeros((2, 3), dtype=np.uint8)
    msg = r"^a_codes must be \(M, K\) and b_codes \(K, N\) with equal K, not "
    for A, B in ((a, np.zeros(3, np.uint8)), (a[0], np.zeros((3, 2), np.uint8)),
                 (a, np.zeros((4, 2), np.uint8)), (a, np.zeros((3, 2, 1), np.uint8))):
        with pytest.raises(ValueError, match=msg):
            gemm_numerics(A, B, 2, 2, "ws")


def test_parse_pe_fp8_alias_on_either_operand():
    from lowbit.models import formats
    assert (parse_pe("e5m2xfp8_fp32").a, parse_pe("e5m2xfp8_fp32").b) == (formats.e5m2, formats.e4m3)
    assert (parse_pe("fp8xe5m2_fp16").a, parse_pe("fp8xe5m2_fp16").b) == (formats.e4m3, formats.e5m2)
    assert parse_pe("fp8xe5m2_fp16").acc == formats.fp16


def test_pespec_flags_are_bools():
    s = PESpec("fp", flush_subnormals=1, saturate=np.True_)
    assert s.flush_subnormals is True and s.saturate is True
    assert PESpec("fp", saturate=0).saturate is False


def test_gemm_numerics_smallest_array_and_row_blocks():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (7, 9), dtype=np.uint8)
    b = rng.integers(0, 256, (9, 4), dtype=np.uint8)
    pe = IntPE("int8", "int8", 12, "saturate")                # order-dependent: the K loop runs
    want = reference_numerics(a, b, pe)
    for rows, cols, block_rows in ((1, 1, 1), (1, 3, 2), (4, 4, 1024)):
        np.testing.assert_array_equal(gemm_numerics(a, b, rows, cols, "ws", pe, block_rows=block_rows), want)


def test_from_codes_and_acc_width():
    s = PESpec("int", acc_bits=12)
    codes = np.array([0, 1, 2 ** 11 - 1, 2 ** 11, 2 ** 12 - 1, 2 ** 10, 2 ** 11 + 5], dtype=np.uint64)
    assert s.from_codes(codes).tolist() == [0, 1, 2047, -2048, -1, 1024, -2043]
    o = PESpec("overq", acc_bits=16)
    assert o.from_codes(np.array([0x8000, 0x7FFF, 0x4000])).tolist() == [-32768, 32767, 16384]
    f = PESpec("fp", acc="fp16")
    out = f.from_codes(np.array([0x8000, 0x3C00]))
    assert out.dtype == np.uint64 and out.tolist() == [0x8000, 0x3C00]
    # the psum lanes of a Kulisch PE carry the register and 4 flag bits
    for name, width in (("e4m3_kulisch37", 37), ("e4m3_kulisch", 49), ("e5m2_kulisch_t1000", None)):
        k = parse_pe(name)
        assert k.acc_width == k.kulisch_width + 4 and k.result_width == 32
        if width:
            assert k.kulisch_width == width
    with pytest.raises(ValueError, match=r"\(terms must be 1\.\.4294967296, not 4294967297\)$"):
        parse_pe("e4m3_kulisch_t4294967297")


# -- pipelined PEs (pe_stages) ---------------------------------------------------------------

@pytest.mark.parametrize("df", ["ws", "is", "os"])
@pytest.mark.parametrize("R,C,S", [(3, 4, 1), (3, 4, 2), (4, 2, 5), (1, 3, 3)])
def test_schedule_pe_stages_closed_forms(df, R, C, S):
    """The pipelined schedule's figures, written out independently: WS/IS fold period
    ``L + T + (R - 1) * S + C - 1`` and drain ``S``; OS the one-cycle fold period and drain
    ``R + S - 1``; S = 1 the one-cycle schedule (SCALE-Sim's)."""
    M, K, N = 9, 11, 7
    s = Schedule(M, K, N, R, C, df, pe_stages=S)
    one = Schedule(M, K, N, R, C, df)
    T = {"ws": M, "is": N, "os": K}[df]
    L = 0 if df == "os" else R
    if df == "os":
        assert s.fold_period == one.fold_period == T + R + C - 2
        assert s.drain == R + S - 1
        assert s.mac_cycle(1, R - 1, C - 1, T - 1) == one.mac_cycle(1, R - 1, C - 1, T - 1)
        assert s.output_cycle(0, 0) == one.output_cycle(0, 0) + S - 1
    else:
        assert s.fold_period == L + T + (R - 1) * S + C - 1
        assert s.drain == S
        assert s.mac_cycle(1, R - 1, C - 1, T - 1) == s.fold_period * 2 - 1
        assert s.output_cycle(0, T - 1) == L + T - 1 + R * S + C - 1
    assert s.compute_cycles == s.folds * s.fold_period - 1
    assert s.latency == s.compute_cycles + s.drain
    assert s.skew_drain == s.fold_period - L - T
    if S == 1:
        assert (s.fold_period, s.drain, s.latency) == (one.fold_period, one.drain, one.latency)
        assert one.drain == (R if df == "os" else 1)


def test_schedule_readback():
    """WS/IS K-folds: the previous fold's partial sums must be out before the next fold's beats
    carry them back (``T + L - 1 >= S``); OS has no read-back."""
    assert Schedule(2, 9, 4, 2, 2, "ws", pe_stages=3).readback_ok          # 2 + 2 - 1 = 3
    assert not Schedule(1, 9, 4, 2, 2, "ws", pe_stages=3).readback_ok      # 1 + 2 - 1 = 2
    assert Schedule(1, 9, 4, 2, 2, "os", pe_stages=5).readback_ok
    assert all(Schedule(1, 9, 1, R, 2, df).readback_ok for R in (1, 3) for df in ("ws", "is"))


@pytest.mark.parametrize("bad,err", [(0, ValueError), (17, ValueError), (2.0, TypeError)])
def test_schedule_bad_pe_stages(bad, err):
    with pytest.raises(err, match=r"^pe_stages must be an integer"):
        Schedule(4, 4, 4, 2, 2, "ws", pe_stages=bad)
