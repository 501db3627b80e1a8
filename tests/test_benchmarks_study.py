"""Smoke-size checks of the issue-17 study benchmarks against independent oracles: the exact
prefix sums against Fractions of the exact products, and each datapath adapter against the
golden model's one-shot function (fp_mac, chunked_mac, kahan_mac)."""

import os
import sys
from fractions import Fraction

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
import accum_datapaths as adp  # noqa: E402
import accumulation_error as ae  # noqa: E402

from lowbit.models import mac, training  # noqa: E402

KS = [16, 32, 64]


def _operands():
    a, b = ae.operands("wt x act", 4, max(KS), 3)
    return a, b


def test_exact_prefix_sums_against_fractions():
    a, b = _operands()
    pf = mac.product_format(adp.A_FORMAT, adp.B_FORMAT)
    p = pf.decode(mac.fp_mul(a, b, adp.A_FORMAT, adp.B_FORMAT))
    _, lsb = mac.kulisch_width(adp.A_FORMAT, adp.B_FORMAT, 1)
    got = ae.exact_prefix_sums(p, lsb, KS)
    want = [[sum((Fraction(float(v)) for v in p[i, :k]), Fraction(0)) for i in range(4)]
            for k in KS]
    assert got == want


def test_datapath_adapters_match_golden_functions():
    a, b = _operands()
    by_name = {d.name: d for d in adp.study_datapaths()}
    for k in KS:
        ak, bk = a[:, :k], b[:, :k]
        for acc in ("fp16", "bf16"):
            got = ae.run_datapath(by_name[f"{acc} RNE"], a, b, [k])[0]
            want = by_name[f"{acc} RNE"].acc_format.decode(
                mac.fp_mac(ak, bk, adp.A_FORMAT, adp.B_FORMAT, acc))
            assert got.tobytes() == want.tobytes()
            dp = by_name[f"{acc} chunk32"]
            want = dp.acc_format.decode(training.chunked_mac(ak, bk, adp.A_FORMAT, adp.B_FORMAT,
                                                             acc, 32))
            assert ae.run_datapath(dp, a, b, [k])[0].tobytes() == want.tobytes()
            dp = by_name[f"{acc} Kahan"]
            want = dp.acc_format.decode(training.kahan_mac(ak, bk, adp.A_FORMAT, adp.B_FORMAT,
                                                           acc))
            assert ae.run_datapath(dp, a, b, [k])[0].tobytes() == want.tobytes()
    # stochastic rounding: the adapter's draws are Generator(seed).integers(0, 2^N, (K, lanes))
    dp = by_name["fp16 SR8"]
    r = np.random.default_rng(dp.seed).integers(0, 256, size=(max(KS), 4), dtype=np.int64)
    want = dp.acc_format.decode(mac.fp_mac(a, b, adp.A_FORMAT, adp.B_FORMAT, "fp16",
                                           rounding="stochastic", random_bits=r.T, sr_bits=8))
    assert ae.run_datapath(dp, a, b, [max(KS)])[0].tobytes() == want.tobytes()
