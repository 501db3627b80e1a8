"""The sr-quantise unit's generated Verilog under cocotb/Verilator, bit-exact against
:func:`lowbit.models.training.sr_quantise` (:mod:`lowbit.sim.bench_sr_quantise`).

* FP32 -> E4M3, stochastic, N = 8 from the 16-bit LFSR: every directed case (every target
  value, the ties and the ``k/2^N`` points between neighbours, the codes next to them,
  overflow, +-0, +-Inf, NaNs, input subnormals) and 100,000 random inputs, with reseeds through
  the ``seed_in``/``reseed`` ports (one long run, 16 lanes).
* BF16 -> E2M1 (FP4), stochastic, N = 8 from the ``rbits`` port: every BF16 code, twice, and
  the draws at the carry boundary (``r = 2^8 - t - 1`` and ``2^8 - t``) for inputs that are
  ties or ``k/2^kb`` points between neighbours, ``kb = 1..8`` (every N at this precision;
  every N of FP32 -> E4M3 and others is checked in Amaranth's simulator,
  ``tests/test_hdl_sr_quantiser.py``).
* The LFSR stream read back from the hardware without the model's quantiser: 15 lanes see
  inputs whose rounding goes up exactly when ``r >= 16 j``, so the number of lanes that
  round up is the top nibble of the draw; it equals the model's stream
  (:func:`lowbit.models.lfsr.lfsr_stream`, pinned for the first draws) across reseeds.

The other targets (E5M2, E3M2, E2M3) with >= 100,000 random FP32 inputs each are
``lowbit cosim sr-quantise --to <fmt> --vectors 100000`` (not in the suite: one simulator
build per configuration).
"""

import numpy as np
import pytest

from lowbit.hdl import catalog
from lowbit.models import formats
from lowbit.models import lfsr as lfsr_model
from lowbit.sim import bench_sr_quantise as bench

pytestmark = pytest.mark.cosim


def test_fp32_to_e4m3_lfsr_100k_directed_and_reseeds(simulator):
    rep = bench.cosim_sr_quantise({}, vectors=100_000, seed=17, sim=simulator, reseeds=4)
    assert rep.ok, rep.format()
    assert rep.vectors >= 100_000 + len(bench.directed_inputs("fp32", "e4m3", 8))


def test_bf16_to_e2m1_exhaustive(simulator):
    unit, _ = catalog.get_unit("sr-quantise").build(in_format="bf16", out_format="e2m1",
                                                    random_source="port")
    rng = np.random.default_rng(5)
    # the carry boundary r = 2^8 - t - 1 / 2^8 - t at ties and k/2^kb points, kb = 1..8
    bx, br = zip(*(bench.boundary_cases("bf16", "e2m1", 8, rng, 64, kb) for kb in range(1, 9)))
    bx, br = np.concatenate(bx), np.concatenate(br)
    n = 2 * (1 << 16) + len(bx)
    x = np.resize(np.concatenate([bx, np.tile(np.arange(1 << 16), 2)]), -(-n // 16) * 16)
    rbits = np.resize(np.concatenate([br, rng.integers(0, 256, 2 << 16)]), len(x))
    x, rbits = x.reshape(-1, 16), rbits.reshape(-1, 16)
    valid = rng.random(x.shape) < 0.9
    want = bench.ref_sr_quantise(unit, x, valid, rbits)
    got = bench.rtl_sr_quantise(unit, x, valid, rbits, sim=simulator)
    for k in ("q", "out_valid"):
        assert np.array_equal(got[k], want[k]), k


def test_lfsr_stream_read_back_from_the_rtl(simulator):
    """Same seed -> same stream in the RTL and the model, also after reseeding via seed_in
    (seed_in = 0 reloads the seed parameter)."""
    unit, _ = catalog.get_unit("sr-quantise").build()          # the unit of the 100k test
    fi, fo = formats.fp32, formats.get("e4m3")
    ulp = 2.0 ** -3                                            # e4m3 spacing in [1, 2)
    t = 256 - 16 * np.arange(16)                               # lane j: up iff r >= 16 j
    x_lane = fi.encode(1.0 + ulp * np.where(t == 256, 0, t) / 256).astype(np.int64)
    cycles = 400
    rng = np.random.default_rng(9)
    valid = np.repeat((rng.random(cycles) < 0.8)[:, None], 16, axis=1)
    reseed = np.zeros((cycles, 16), bool)
    seed_in = np.zeros((cycles, 16), np.int64)
    for cyc, s in ((150, 0x1234), (260, 0), (330, 0xBEEF)):
        reseed[cyc] = True
        seed_in[cyc] = s
    x = np.tile(x_lane, (cycles, 1))
    got = bench.rtl_sr_quantise(unit, x, valid, None, reseed, seed_in, sim=simulator)
    one = int(fo.encode(np.array([1.0]))[0])
    nibble = (got["q"][:, 1:] != one).sum(axis=1)              # lanes that rounded up
    draws = bench.lfsr_cycle_draws(16, 0xACE1, 8, valid[:, :1], reseed[:, :1], seed_in[:, :1])
    assert np.array_equal(nibble, draws[:, 0] >> 4)
    first = nibble[valid[:, 0]][:8]
    assert list(first) == [138 >> 4, 134 >> 4, 161 >> 4, 164 >> 4, 165 >> 4, 145 >> 4,
                           223 >> 4, 192 >> 4]                 # lfsr_stream(16, 0xACE1, 8, 8)
    assert list(lfsr_model.lfsr_stream(16, 0xACE1, 8, 8)) == [138, 134, 161, 164, 165, 145,
                                                              223, 192]
    after = nibble[151:][valid[151:, 0]][:4]
    assert list(after) == list(lfsr_model.lfsr_stream(16, 0x1234, 8, 4) >> 4)
