"""kahan_step (the compensated SGD update of benchmarks/training_run.py) against NumPy float16.

NumPy's float16 addition computes in float32 and rounds to float16; float32's 24 bits are at
least 2 * 11 + 2, so that double rounding is innocuous for a sum of two float16 values
(Figueroa, "When is double rounding innocuous?", SIGNUM Newsletter 30(3), 1995): an
independent, correctly rounded oracle of each of the four Kahan additions.
"""

import numpy as np

from lowbit.models import formats, training

FP16 = formats.get("fp16")


def oracle(addends):
    s = np.full(addends.shape[1:], -0.0, dtype=np.float16)
    c = np.zeros(addends.shape[1:], dtype=np.float16)
    for p in addends:
        y = p - c
        t = s + y
        c = (t - s) - y
        s = t
    return s, c


def test_kahan_step_resumed_matches_float16_oracle():
    rng = np.random.default_rng(5)
    lanes, steps = 64, 300
    # one large value then small addends, half of them below half an ULP of the sum
    # (swamped by a plain FP16 sum), with both signs and some exact zeros
    p = rng.normal(0, 1e-3, (steps, lanes))
    p[0] = rng.normal(0, 4, lanes)
    p[rng.random((steps, lanes)) < 0.05] = 0.0
    p16 = p.astype(np.float16)
    s = np.full(lanes, 0x8000, dtype=np.int64)        # -0, as a new sum
    c = np.zeros(lanes, dtype=np.int64)
    for k in range(steps):
        s, c = training.kahan_step(s, c, p16[k].astype(np.float64), "fp16")
    want_s, want_c = oracle(p16)
    assert s.tolist() == want_s.view(np.uint16).astype(np.int64).tolist()
    assert c.tolist() == want_c.view(np.uint16).astype(np.int64).tolist()
    # the same step as the cycle model: kahan_stream of a * 1.0 (fp16 x e4m3, exact products;
    # e4m3 1.0 = 0b0_0111_000)
    a = FP16.encode(p16.astype(np.float64))
    one = np.full(a.shape, 0b0_0111_000)
    valid = np.ones(a.shape, dtype=bool)
    clear = np.zeros(a.shape, dtype=bool)
    clear[0] = True
    ss, cc = training.kahan_stream(valid, clear, a, one, a_format="fp16", b_format="e4m3",
                                   acc_format="fp16")
    assert ss[-1].tolist() == s.tolist() and cc[-1].tolist() == c.tolist()
