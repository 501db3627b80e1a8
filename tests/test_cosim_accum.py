"""The chunk-based and Kahan-compensated MACs (issue 17 section 1) under cocotb/Verilator,
bit-exact against :func:`lowbit.models.training.chunked_stream` /
:func:`lowbit.models.training.kahan_stream` through the ``ref_x`` / ``rtl_x`` twins of
:mod:`lowbit.sim.bench_accum`: a lane of directed cases (ties, swamping, overflow to Inf, Inf
and NaN operands, -0, cancellation, subnormals, chunk boundaries, ``last`` inside a chunk, idle
cycles, clear on an idle cycle) and a random sequence.

One configuration per unit, the one ``tests/test_cosim_manifest.py`` drives, and one lane, so
the suite builds each unit's Verilog once (the simulator build is cached by its text).  The
100,000-step runs are ``lowbit cosim chunked-mac --vectors 100000`` / ``lowbit cosim kahan-mac
--vectors 100000`` (too slow for the suite: the per-cycle golden model dominates).
"""

import numpy as np
import pytest

from lowbit.hdl import catalog
from lowbit.models import formats, mac
from lowbit.sim import bench_accum

pytestmark = pytest.mark.cosim

#: The suite's configurations (shared with tests/test_cosim_manifest.py).
CHUNKED = {"a_format": "e4m3", "b_format": "e5m2", "acc_format": "bf16", "chunk_length": 4,
           "pipeline_stages": 2}
KAHAN = {"a_format": "e4m3", "b_format": "e5m2", "acc_format": "fp16", "pipeline_stages": 1}

RANDOM_STEPS = 3_000


def _unit(name, params):
    comp, _ = catalog.get_unit(name).build(**params)
    return comp


def _code(fmt, x):
    return int(fmt.encode(np.array([x]))[0])


def test_chunked_directed(simulator):
    unit = _unit("chunked-mac", CHUNKED)
    valid, clear, last, a, b, ends = bench_accum.directed_accum_sequence(
        unit.a_format, unit.b_format, unit.chunk_length)
    want = bench_accum.ref_chunked_mac(unit, valid, clear, last, a, b)
    got = bench_accum.rtl_chunked_mac(unit, valid, clear, last, a, b, simulator)
    for k in want:
        assert np.array_equal(got[k], want[k]), k
    # independent checks of the model on the directed cases (values, not codes of the model)
    acc = formats.bf16
    out = want["acc"][:, 0]
    assert out[ends["ones_1000"]] == _code(acc, 1000.0)       # chunks of 4 stay exact
    ones = slice(ends["swamping"] + 1, ends["ones_1000"] + 1)
    plain = mac.mac_stream(valid[ones], clear[ones], a[ones], b[ones], kind="fp",
                           a_format=unit.a_format, b_format=unit.b_format, acc_format=acc)
    assert plain[-1, 0] == _code(acc, 256.0)                  # plain BF16 RNE stalls at 256
    assert out[ends["neg_zero"]] == 0x8000 and out[ends["x_minus_x"]] == 0
    assert out[ends["nan_operand"]] == acc.nan_code
    assert out[ends["inf_operand"]] == acc.inf_code
    assert out[ends["clear_idle"]] == 0 and want["partial"][ends["clear_idle"], 0] == 0
    assert acc.decode(out[ends["len_9"]]) == 4 * 1.5 + 4 * 0.125 + 1.5


def test_chunked_random(simulator):
    rep = bench_accum.cosim_chunked_mac(CHUNKED, vectors=RANDOM_STEPS, seed=11, sim=simulator,
                                        lanes=1)
    assert rep.ok and rep.vectors == RANDOM_STEPS, rep.format()


def test_kahan_directed(simulator):
    unit = _unit("kahan-mac", KAHAN)
    valid, clear, last, a, b, ends = bench_accum.directed_accum_sequence(
        unit.a_format, unit.b_format)
    want = bench_accum.ref_kahan_mac(unit, valid, clear, a, b)
    got = bench_accum.rtl_kahan_mac(unit, valid, clear, a, b, simulator)
    for k in want:
        assert np.array_equal(got[k], want[k]), k
    acc = formats.fp16
    s = want["acc"][:, 0]
    # 2048 + 600 * 1: plain FP16 RNE is swamped (2048), the compensated sum is exact
    assert s[ends["swamping"]] == _code(acc, 2648.0)
    sw = slice(ends["tie_bf16"] + 1, ends["swamping"] + 1)
    plain = mac.mac_stream(valid[sw], clear[sw], a[sw], b[sw], kind="fp",
                           a_format=unit.a_format, b_format=unit.b_format, acc_format=acc)
    assert plain[-1, 0] == _code(acc, 2048.0)
    assert s[ends["ones_1000"]] == _code(acc, 1000.0)
    # max * max overflows FP16: s = +Inf, then t - s = Inf - Inf poisons the sum
    ov = ends["overflow"]
    assert s[ov - 3] == acc.inf_code and s[ov] == acc.nan_code
    assert s[ends["neg_zero"]] == 0x8000 and s[ends["x_minus_x"]] == 0
    assert s[ends["nan_operand"]] == acc.nan_code


def test_kahan_random(simulator):
    rep = bench_accum.cosim_kahan_mac(KAHAN, vectors=RANDOM_STEPS, seed=12, sim=simulator,
                                      lanes=1)
    assert rep.ok and rep.vectors == RANDOM_STEPS, rep.format()
