# amaranth: UnusedElaboratable=no
"""The sr-quantise unit (:class:`lowbit.hdl.sr_quantiser.SrQuantiser`) in Amaranth's simulator:
the stochastic rounding's carry boundary at every N (ties included) bit-exact against
:func:`lowbit.models.training.sr_quantise`, with an independent check of the boundary itself,
and the parameter checks with their pinned messages.  The co-simulation of the generated
Verilog (random inputs, exhaustive BF16, LFSR streams and reseeding) is in
``tests/test_cosim_sr_quantise.py``.
"""

import numpy as np
import pytest

from amaranth_sim import run_seq
from lowbit.cli.main import main
from lowbit.hdl import catalog
from lowbit.hdl.sr_quantiser import SrQuantiser, max_sr_bits
from lowbit.models import formats
from lowbit.models import training as model
from lowbit.sim import bench_sr_quantise as bench


@pytest.mark.parametrize("src, dst, ns", [
    ("fp32", "e4m3", range(1, 25)),
    ("bf16", "e2m1", range(1, 9)),
    ("fp32", "e5m2", (1, 8, 21)),
    ("bf16", "e3m2", (1, 5, 8)),
    ("fp32", "e2m3", (2, 13, 24)),
])
def test_carry_boundary_at_every_n(src, dst, ns):
    """Every N the unit takes for the pair: RTL == model at ``r = 2^N - t - 1`` and
    ``r = 2^N - t``, and the model rounds the first down and the second up (one code apart in
    magnitude, or the overflow code)."""
    fi, fo = formats.get(src), formats.get(dst)
    rng = np.random.default_rng(len(src) * 100 + len(dst))
    xs, rs, want = [], [], []
    for n in ns:
        x, r = bench.boundary_cases(fi, fo, n, rng)
        q = model.sr_quantise(x, fi, fo, random_bits=r, sr_bits=n).astype(np.int64)
        mag = q & ((1 << (fo.bits - 1)) - 1)
        down, up = mag[0::2], mag[1::2]
        top = (down == fo.max_code) & (~np.isfinite(fo.decode(q[1::2])) | (up == fo.max_code))
        assert ((up == down + 1) | top).all(), n   # finite formats saturate at max
        unit = SrQuantiser(fi, fo, sr_bits=n, random_source="port")
        got = run_seq(unit, {"x": x, "valid": np.ones_like(x), "rbits": r}, ["q"], 1)["q"]
        assert np.array_equal(got, q), (n, x[got != q][:4], got[got != q][:4], q[got != q][:4])
        xs.append(x)
    assert sum(len(x) for x in xs) > 20 * len(ns)


def test_round_to_nearest_even_ties_directed():
    """RNE mode, fp32 -> e4m3: every tie between neighbours and its two neighbours in fp32,
    RTL == model == ml_dtypes (the independent oracle; saturated first, since ml_dtypes'
    float8_e4m3fn overflows to NaN where lowbit's e4m3 does too)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    fi, fo = formats.fp32, formats.get("e4m3")
    v = np.unique(np.abs(fo.decode(fo.all_codes())))
    v = v[np.isfinite(v)]
    mid = (v[:-1] + v[1:]) / 2
    x = np.concatenate([mid, -mid, v]).astype(np.float32)
    codes = x.view(np.uint32).astype(np.int64)
    codes = np.concatenate([codes, codes + 1, codes - 1])
    codes = codes[(codes & 0x7FFFFFFF) < 0x7F800000]
    want = model.sr_quantise(codes, fi, fo, rounding="nearest_even")
    oracle = codes.astype(np.uint32).view(np.float32).astype(ml_dtypes.float8_e4m3fn)
    assert np.array_equal(want, oracle.view(np.uint8))
    unit = SrQuantiser(fi, fo, rounding="nearest_even")
    got = run_seq(unit, {"x": codes, "valid": np.ones_like(codes)}, ["q"], 1)["q"]
    assert np.array_equal(got, want)


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"in_format": "fp16"}, ValueError, r"^in_format must be fp32 or bf16, not 'fp16'$"),
    ({"out_format": "int8"}, ValueError, r"^out_format must be a signed float format of at most "
                                         r"8 bits .*, not 'int8'$"),
    ({"out_format": 3}, TypeError, r"^out_format must be a signed float format"),
    ({"rounding": "toward_zero"}, ValueError, r"^rounding must be one of stochastic, "
                                              r"nearest_even, not 'toward_zero'$"),
    ({"sr_bits": 25}, ValueError, r"^sr_bits must be an integer from 1 to 24 \(the bits of the "
                                  r"fp32 significand\), not 25$"),
    ({"in_format": "bf16", "sr_bits": 9, "random_source": "port"}, ValueError,
     r"^sr_bits must be an integer from 1 to 8 \(the bits of the bf16 significand\), not 9$"),
    ({"sr_bits": 0}, ValueError, r"^sr_bits must be an integer from 1 to 24 \(the bits of the "
                                 r"fp32 significand\), not 0$"),
    ({"lfsr_width": 2}, ValueError, r"^lfsr_width must be an integer from 3 to 32, not 2$"),
    ({"lfsr_width": 33}, ValueError, r"^lfsr_width must be an integer from 3 to 32, not 33$"),
    ({"sr_bits": 12, "lfsr_width": 10, "seed": 1}, ValueError,
     r"^sr_bits must be an integer from 1 to 10 \(lfsr_width\) with random_source='lfsr', "
     r"not 12$"),
    ({"seed": 0}, ValueError, r"^seed must be an integer from 1 to 65535, not 0$"),
    ({"random_source": "noise"}, ValueError, r"^random_source must be one of lfsr, port"),
    ({"saturate": 1}, TypeError, r"^saturate must be"),
])
def test_bad_parameters(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        SrQuantiser(**kwargs)


def test_max_sr_bits_and_ports():
    assert max_sr_bits("fp32") == 24 and max_sr_bits("bf16") == 8
    u = SrQuantiser("bf16", "e2m1", sr_bits=8)
    assert set(u.signature.members) == {"x", "valid", "q", "out_valid", "seed_in", "reseed"}
    assert (u.latency, len(u.x), len(u.q), len(u.seed_in)) == (1, 16, 4, 16)
    p = SrQuantiser("fp32", "e5m2", sr_bits=20, random_source="port")
    assert set(p.signature.members) == {"x", "valid", "q", "out_valid", "rbits"}
    assert len(p.rbits) == 20
    n = SrQuantiser(rounding="nearest_even")
    assert set(n.signature.members) == {"x", "valid", "q", "out_valid"}


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["generate", "sr-quantise", "--sr-bits", "30", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lowbit generate: error: sr_bits must be an integer from 1 to 24 (the bits "
                   "of the fp32 significand), not 30"]
    assert main(["generate", "sr-quantise", "--lfsr-width", "40", "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "lowbit generate: error: lfsr_width must be an integer from 3 to 32, not 40"]


def test_catalogue_entry_builds_the_unit():
    unit = catalog.get_unit("sr-quantise")
    comp, resolved = unit.build(in_format="bf16", out_format="e2m1", sr_bits="6",
                                random_source="port")
    assert isinstance(comp, SrQuantiser)
    assert (comp.in_format, comp.out_format, comp.sr_bits) == (formats.bf16,
                                                              formats.get("e2m1"), 6)
    assert unit.typed(resolved)["sr_bits"] == 6
    _, rne = unit.build(rounding="nearest_even")
    assert "sr_bits" not in rne
