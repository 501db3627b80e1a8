# amaranth: UnusedElaboratable=no
"""ChunkedMac and KahanMac (lowbit.hdl.accumulators): parameter checks, and configurations the
co-simulation tests do not build (saturate, CL = 1, fp32, pipeline depths 1 and 2) against
lowbit.models.training in Amaranth's simulator, bit-exact at the documented latency."""

import numpy as np
import pytest

from amaranth_sim import run_seq

from lowbit.cli.main import main
from lowbit.hdl.accumulators import ChunkedMac, KahanMac
from lowbit.models import training
from lowbit.sim import bench_accum


def test_chunk_length_range():
    with pytest.raises(ValueError, match=r"^chunk_length must be an integer from 1 to 65536, "
                                         r"not 0$"):
        ChunkedMac(chunk_length=0)
    with pytest.raises(ValueError, match=r"^chunk_length must be an integer from 1 to 65536, "
                                         r"not 65537$"):
        ChunkedMac(chunk_length=65537)
    with pytest.raises(TypeError, match=r"^chunk_length must be an integer, not '4'$"):
        ChunkedMac(chunk_length="4")
    assert [ChunkedMac(chunk_length=n).counter_bits for n in (1, 2, 64, 65, 65536)] == \
        [1, 1, 6, 7, 16]


@pytest.mark.parametrize("cls", [ChunkedMac, KahanMac])
def test_parameter_checks(cls):
    with pytest.raises(ValueError, match=r"^pipeline_stages must be an integer from 0 to 2, "
                                         r"not 3$"):
        cls(pipeline_stages=3)
    with pytest.raises(ValueError, match=r"^acc_format must be an IEEE-style float format"):
        cls(acc_format="e4m3")
    with pytest.raises(ValueError, match=r"^a_format must be a signed float format"):
        cls(a_format="int8")
    with pytest.raises(TypeError, match=r"^saturate must be True or False, not 1$"):
        cls(saturate=1)


def test_cli_chunk_length_error(capsys, tmp_path):
    assert main(["generate", "chunked-mac", "--chunk", "0", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "chunk_length must be an integer from 1 to 65536, not 0" in err[0]


def _stimulus(unit, cycles, seed, max_len):
    rng = np.random.default_rng(seed)
    v, c, l, a, b = bench_accum.random_accum_sequences(unit.a_format, unit.b_format, cycles, 1,
                                                       rng, max_len, specials=0.05)
    return v, c, l, a, b


def _run(unit, inputs, outputs):
    flat = {k: np.asarray(x)[:, 0].astype(np.int64) for k, x in inputs.items()}
    return run_seq(unit, flat, outputs, unit.latency)


@pytest.mark.parametrize("params", [
    {"acc_format": "fp16", "chunk_length": 1, "saturate": True},
    {"acc_format": "fp32", "chunk_length": 3, "pipeline_stages": 1, "a_format": "e5m2"},
])
def test_chunked_mac_amaranth(params):
    unit = ChunkedMac(**params)
    v, c, l, a, b = _stimulus(unit, 160, 5, 4 * unit.chunk_length + 2)
    got = _run(unit, {"valid": v, "clear": c, "last": l, "a": a, "b": b}, ["acc", "partial"])
    outer, inner = training.chunked_stream(v, c, l, a, b, a_format=unit.a_format,
                                           b_format=unit.b_format, acc_format=unit.acc_format,
                                           chunk_length=unit.chunk_length,
                                           saturate=unit.saturate)
    assert np.array_equal(got["acc"], outer[:, 0].astype(np.int64))
    assert np.array_equal(got["partial"], inner[:, 0].astype(np.int64))


@pytest.mark.parametrize("params", [
    {"acc_format": "fp16", "saturate": True},
    {"acc_format": "fp32", "a_format": "e5m2", "b_format": "e4m3", "pipeline_stages": 2},
])
def test_kahan_mac_amaranth(params):
    unit = KahanMac(**params)
    v, c, _, a, b = _stimulus(unit, 160, 6, 40)
    got = _run(unit, {"valid": v, "clear": c, "a": a, "b": b}, ["acc", "comp"])
    s, comp = training.kahan_stream(v, c, a, b, a_format=unit.a_format, b_format=unit.b_format,
                                    acc_format=unit.acc_format, saturate=unit.saturate)
    assert np.array_equal(got["acc"], s[:, 0].astype(np.int64))
    assert np.array_equal(got["comp"], comp[:, 0].astype(np.int64))


def test_saturated_kahan_directed():
    """The directed lane with saturate: max * max products clamp to +-max (no Inf, no NaN from
    Inf - Inf), checked against the model and by value."""
    unit = KahanMac(acc_format="fp16", saturate=True)
    v, c, l, a, b, ends = bench_accum.directed_accum_sequence(unit.a_format, unit.b_format)
    sl = slice(ends["ones_1000"] + 1, ends["cancel"] + 1)      # overflow .. cancellation
    v, c, a, b = v[sl], c[sl], a[sl], b[sl]
    got = _run(unit, {"valid": v, "clear": c, "a": a, "b": b}, ["acc", "comp"])
    s, comp = training.kahan_stream(v, c, a, b, a_format=unit.a_format, b_format=unit.b_format,
                                    acc_format="fp16", saturate=True)
    assert np.array_equal(got["acc"], s[:, 0].astype(np.int64))
    assert np.array_equal(got["comp"], comp[:, 0].astype(np.int64))
    assert got["acc"][0] == 0x7BFF                           # 65504, fp16 max
