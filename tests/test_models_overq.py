"""lowbit.models.overq: encoding against a scalar reference, exact decode, exact dot products."""

import numpy as np
import pytest

from lowbit.models import overq as oq
from lowbit.models.overq import OWN, PREC, RANGE, SHIFT, OverqConfig

CONFIGS = [OverqConfig(4, 0, False), OverqConfig(4, 1, False), OverqConfig(4, 0, True),
           OverqConfig(4, 2, True), OverqConfig(8, 1, True), OverqConfig(3, 3, False)]


def ref_encode_row(xs, cfg):
    """Scalar reference of one slice: Python ints, written independently of the model."""
    b, lo, hi = cfg.bits, cfg.qmin, cfg.qmax
    K = len(xs)
    Q = [int(np.rint(v)) for v in xs]
    P = [int(np.rint(v * 2 ** b)) for v in xs]

    def digits(v):
        c = (v - lo) % (1 << b) + lo
        return (v - c) // (1 << b), c

    vals, meta = [0] * K, [OWN] * K
    i = 0
    while i < K:
        if not lo <= Q[i] <= hi:
            j = None
            for d in range(cfg.cascade + 1):
                k = i + 1 + d
                if k >= K:
                    break
                if Q[k] == 0:
                    j = k
                    break
                if not lo <= Q[k] <= hi:
                    break
            if j is None:
                vals[i] = min(max(Q[i], lo), hi)
                i += 1
                continue
            a, c = digits(min(max(Q[i], cfg.range_min), cfg.range_max))
            vals[i], vals[i + 1], meta[i + 1] = c, a, RANGE
            for k in range(i + 2, j + 1):
                vals[k], meta[k] = Q[k - 1], SHIFT
            i = j + 1
            continue
        if cfg.precision and i + 1 < K and Q[i + 1] == 0:
            a, c = digits(P[i])
            if c != 0 and lo <= a <= hi:
                vals[i], vals[i + 1], meta[i + 1] = a, c, PREC
                i += 2
                continue
        vals[i] = Q[i]
        i += 1
    return vals, meta


def spiky(rng, shape, zeros=0.4, outliers=0.05, big=12.0):
    x = rng.standard_normal(shape)
    x[rng.random(shape) < zeros] = 0
    x *= np.where(rng.random(shape) < outliers, big, 1.0)
    return x


def test_config_validation():
    with pytest.raises(ValueError, match=r"^bits must be an integer from 2 to 16, not 1$"):
        OverqConfig(bits=1)
    with pytest.raises(ValueError, match=r"^cascade must be an integer from 0 to 16, not -1$"):
        OverqConfig(cascade=-1)
    with pytest.raises(TypeError, match=r"^precision must be True or False, not 'yes'$"):
        OverqConfig(precision="yes")
    assert OverqConfig(4, 0, False).meta_bits == 1
    assert OverqConfig(4, 1, False).meta_bits == 2
    assert OverqConfig(4, 0, True).meta_bits == 2
    c = OverqConfig(4)
    assert (c.range_min, c.range_max) == (-136, 119)
    assert c.frac_bits == 4 and OverqConfig(4, 1, False).frac_bits == 0


def test_hand_example():
    # b=4, cascade=1: 20 = 1*16 + 4 overwrites the zero two slots away; 3 moves one slot on.
    cfg = OverqConfig(4, 1, False)
    t = oq.encode(np.array([20.0, 3.0, 0.0, 5.0, -30.0, 0.0]), cfg, 1.0)
    assert cfg.fmt.decode(t.codes).tolist() == [4, 1, 3, 5, 2, -2]
    assert t.meta.tolist() == [OWN, RANGE, SHIFT, OWN, OWN, RANGE]
    assert t.decode().tolist() == [20, 3, 0, 5, -30, 0]
    assert (t.outliers, t.accommodated) == (2, 2)
    # precision: 2.75 next to a zero keeps 3 and a residue -0.25 = -4/16
    cfg = OverqConfig(4, 0, True)
    t = oq.encode(np.array([2.75, 0.1, 1.0]), cfg, 1.0)
    assert cfg.fmt.decode(t.codes).tolist() == [3, -4, 1]
    assert t.meta.tolist() == [OWN, PREC, OWN]
    assert t.decode().tolist() == [2.75, 0.0, 1.0]
    assert t.refined == 1


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"b{c.bits}c{c.cascade}p{int(c.precision)}")
def test_encode_matches_scalar_reference(cfg):
    rng = np.random.default_rng(cfg.bits * 100 + cfg.cascade * 10 + cfg.precision)
    s = 1.0 / 2 ** (cfg.bits - 3)
    x = spiky(rng, (300, 24)) * 2 ** (cfg.bits - 3)
    t = oq.encode(x * s, cfg, s)
    got_vals = cfg.fmt.decode(t.codes)
    n_out = n_acc = 0
    for r in range(x.shape[0]):
        vals, meta = ref_encode_row(x[r].tolist(), cfg)
        assert got_vals[r].tolist() == vals, r
        assert t.meta[r].tolist() == meta, r
        q = np.rint(x[r])
        n_out += int(((q < cfg.qmin) | (q > cfg.qmax)).sum())
        n_acc += meta.count(RANGE)
    assert (t.outliers, t.accommodated) == (n_out, n_acc)
    assert t.codes.dtype == np.uint8 and t.meta.dtype == np.uint8
    assert set(np.unique(t.meta).tolist()) <= set(cfg.meta_codes)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"b{c.bits}c{c.cascade}p{int(c.precision)}")
def test_decode_properties(cfg):
    """Every value decodes to its rounded, clamped or refined value, exactly."""
    rng = np.random.default_rng(7)
    s = 0.25
    x = spiky(rng, (200, 32), big=40.0) * s * 2 ** (cfg.bits - 3)
    t = oq.encode(x, cfg, s)
    y = t.decode()
    Q = np.rint(x / s)
    P = np.rint(x / s * 2 ** cfg.bits) / 2 ** cfg.bits
    is_out = (Q < cfg.qmin) | (Q > cfg.qmax)
    owner_of = np.zeros(x.shape, int)               # meta of the slot after each position
    owner_of[:, :-1] = t.meta[:, 1:]
    rng_ovw = owner_of == RANGE
    refined = owner_of == PREC
    np.testing.assert_array_equal(y[rng_ovw], np.clip(Q, cfg.range_min, cfg.range_max)[rng_ovw] * s)
    np.testing.assert_array_equal(y[refined], P[refined] * s)
    np.testing.assert_array_equal(y[is_out & ~rng_ovw], np.clip(Q, cfg.qmin, cfg.qmax)[is_out & ~rng_ovw] * s)
    plain = ~is_out & ~refined
    np.testing.assert_array_equal(y[plain], Q[plain] * s)
    assert not (rng_ovw & ~is_out).any() and not (refined & is_out).any()
    assert int(rng_ovw.sum()) == t.accommodated and int(refined.sum()) == t.refined
    # decode is exactly decode_int * s / 2^F
    np.testing.assert_array_equal(y, t.decode_int() * s / 2 ** cfg.frac_bits)


def test_cascade_accommodates_more():
    rng = np.random.default_rng(3)
    x = spiky(rng, (500, 32), zeros=0.3, outliers=0.08)
    fracs = [oq.encode(x, OverqConfig(4, c, False), 0.3).accommodated for c in range(4)]
    assert fracs == sorted(fracs) and fracs[-1] > fracs[0]
    q = np.rint(x / 0.3)                             # int4 grid is -8..7: -8 is no outlier
    assert oq.encode(x, OverqConfig(4, 0, False), 0.3).outliers == int(((q > 7) | (q < -8)).sum())


def test_axis_and_per_channel_scale():
    rng = np.random.default_rng(5)
    x = spiky(rng, (16, 40, 3))
    cfg = OverqConfig(4, 2, True)
    s = oq.calibrate(x, 4, "mse", channel_axis=2)
    assert s.shape == (1, 1, 3)
    t = oq.encode(x, cfg, s, axis=1)
    t2 = oq.encode(np.moveaxis(x, 1, -1), cfg, np.moveaxis(s, 1, -1), axis=-1)
    np.testing.assert_array_equal(t.codes, np.moveaxis(t2.codes, -1, 1))
    np.testing.assert_array_equal(t.meta, np.moveaxis(t2.meta, -1, 1))
    np.testing.assert_array_equal(t.decode(), np.moveaxis(t2.decode(), -1, 1))


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"b{c.bits}c{c.cascade}p{int(c.precision)}")
def test_dot_is_exact(cfg):
    """overq_dot == decode_int @ w in exact integers; matmul and the cycle stream agree."""
    rng = np.random.default_rng(11)
    x = spiky(rng, (64, 20))
    t = oq.encode(x, cfg, oq.calibrate(x, cfg.bits, "mse"))
    W = rng.integers(-8, 8, size=(20, 6))
    ref = np.array([[sum(int(v) * int(W[k, n]) for k, v in enumerate(row)) for n in range(6)]
                    for row in t.decode_int()])
    np.testing.assert_array_equal(oq.overq_matmul(t.codes, t.meta, W, cfg), ref)
    for n in range(6):
        np.testing.assert_array_equal(oq.overq_dot(t.codes, t.meta, W[:, n], cfg, acc_bits=None),
                                      ref[:, n])
    # the dequantised dot product equals the float dot product of the decoded tensor
    np.testing.assert_allclose(ref * t.scale / 2 ** cfg.frac_bits, t.decode() @ W, rtol=0, atol=1e-9)
    # cycle stream: one vector after another, `first` on each vector's first slot
    codes, meta = t.codes[:8].reshape(-1), t.meta[:8].reshape(-1)
    w = np.tile(W[:, 0], 8)
    first = np.tile(np.arange(20) == 0, 8)
    acc = oq.overq_pe_stream(codes, meta, w, cfg, first=first, acc_bits=32)
    np.testing.assert_array_equal(acc[19::20], ref[:8, 0])


def test_step_exhaustive_b4():
    """overq_step over every code, meta, weight and previous weight against Python ints."""
    for cfg in (OverqConfig(4, 1, True), OverqConfig(4, 1, False), OverqConfig(4, 0, False)):
        c, m, w, wp = np.meshgrid(np.arange(16), np.arange(1 << cfg.meta_bits), np.arange(-8, 8),
                                  np.arange(-8, 8), indexing="ij")
        psum = np.full(c.shape, 1000)
        got = oq.overq_step(c, m, w, wp, psum, cfg, w_bits=4, acc_bits=16)
        F = 4 if cfg.precision else 0
        for ci, mi, wi, wpi, g in zip(c.ravel()[::7], m.ravel()[::7], w.ravel()[::7],
                                      wp.ravel()[::7], got.ravel()[::7]):
            v = ci - 16 if ci >= 8 else ci
            if mi == OWN:
                e = v * wi << F
            elif mi == RANGE:
                e = v * wpi << (F + 4)
            elif mi == SHIFT:
                e = v * wpi << F
            else:
                e = v * wpi if cfg.precision else 0
            assert g == 1000 + e


def test_wrap_and_int_pe():
    assert oq.wrap(np.array([127, 128, -129, 300]), 8).tolist() == [127, -128, 127, 44]
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, 50)
    w = rng.integers(-128, 128, 50)
    vals = np.where(codes >= 128, codes - 256, codes)
    assert int(oq.int_pe(codes, w, bits=8, w_bits=8, acc_bits=None)) == int(vals @ w)
    assert int(oq.int_pe(codes, w, bits=8, w_bits=8, acc_bits=12)) == \
        int(oq.wrap(np.array([vals @ w]), 12)[0])
    acc = oq.int_pe_stream(codes, w, first=np.arange(50) % 10 == 0, bits=8, w_bits=8, acc_bits=20)
    np.testing.assert_array_equal(acc[9::10], (vals * w).reshape(5, 10).sum(1))


def test_report_and_baselines():
    rng = np.random.default_rng(9)
    x = spiky(rng, (400, 64))
    r = oq.report(x, OverqConfig(4, 2, True))
    assert set(r["sqnr_db"]) == {"baseline", "clipped", "overq"}
    assert r["sqnr_db"]["clipped"] >= r["sqnr_db"]["baseline"]
    assert r["sqnr_db"]["overq"] > r["sqnr_db"]["clipped"]
    assert 0 < r["accommodated"] <= 1 and r["meta_bits_per_value"] == 2
    # range-preserving scale never clips
    s = oq.plain_scale(x, 4)
    q = oq.formats.int4.decode(oq.plain_encode(x, 4, s))
    assert np.abs(q).max() == 7 and np.all(np.abs(x / s - q) <= 0.5 + 1e-12)


def test_errors():
    cfg = OverqConfig(4, 0, False)
    with pytest.raises(ValueError, match=r"^meta must hold integers from 0 to 1 "):
        oq.decode_int(np.zeros(4, np.uint8), np.full(4, 2), cfg)
    with pytest.raises(ValueError, match=r"^codes for int4 must lie in 0\.\.15"):
        oq.decode_int(np.full(4, 16), np.zeros(4, int), cfg)
    with pytest.raises(ValueError, match=r"^w must hold values from -8 to 7 \(w_bits=4\)$"):
        oq.overq_dot(np.zeros(4, np.uint8), np.zeros(4, np.uint8), np.full(4, 8), cfg)
    with pytest.raises(ValueError, match=r"^scale must be positive and finite$"):
        oq.encode(np.zeros(4), cfg, 0.0)
    with pytest.raises(ValueError, match=r"^config must be an OverqConfig"):
        oq.encode(np.zeros(4), 4, 1.0)
    with pytest.raises(ValueError, match=r"^method must be one of max, mse, overq, not 'p99'$"):
        oq.calibrate(np.zeros(4), 4, "p99")
    with pytest.raises(ValueError, match=r"^axis must be an integer from -1 to 0, not 3$"):
        oq.encode(np.zeros(4), cfg, 1.0, axis=3)
