# amaranth: UnusedElaboratable=no
"""Pipelined PEs (``pe_stages``) of SystolicArray in the Amaranth simulator: every PE kind, every
dataflow and depth it offers, bit-exact with the golden GEMM (the same numbers as the one-cycle
PE) and accepted / produced on the cycles of the schedule with the PE latency
(:class:`lowbit.models.systolic.Schedule` with ``pe_stages``)."""

import numpy as np
import pytest

from lowbit.hdl.systolic import SystolicArray, SystolicPE, pe_cut_points
from lowbit.models.systolic import parse_pe
from lowbit.sim.bench_systolic import random_operands
from test_hdl_systolic import check_kulisch, check_schedule, golden, rtl_gemm

# (PE name, dataflow, depth): every PE kind and dataflow, the deepest depth each offers and a
# middle one; rounding accumulators (fp16, bf16 two roundings, saturating INT) show the order.
CASES = [
    ("int8_acc16_saturate", "ws", 3), ("int8_acc16_saturate", "is", 2),
    ("int8_acc16_saturate", "os", 3), ("uint8xint4_acc24", "ws", 3),
    ("e4m3_fp16", "ws", 6), ("e4m3_fp16", "is", 4), ("e4m3_fp16", "os", 2),
    ("e5m2xe4m3_bf16_two_roundings", "ws", 3),
    ("e4m3_kulisch", "ws", 4), ("e4m3_kulisch", "is", 2), ("e4m3_kulisch", "os", 4),
    ("overq4", "ws", 2), ("overq4", "os", 2),
]


def _cases():
    return [pytest.param(n, df, S, id=f"{n}-{df}-s{S}") for n, df, S in CASES]


@pytest.mark.parametrize("name,df,S", _cases())
def test_pipelined_gemm_bit_exact_and_cycles(name, df, S):
    """R x C = 3 x 2 with M, K, N larger than the array (K-folds cross the psum lanes in WS/IS):
    the results are the golden GEMM's, the accept / result cycles the schedule's with
    ``pe_stages = S``, and the depth is the deepest the PE takes (or 2)."""
    spec = parse_pe(name)
    array = SystolicArray(3, 2, spec, dataflow=df, pe_stages=S)
    assert array.pe_stages == S and array.latency == (
        3 + 2 - 1 + S - 1 if df == "os" else 3 * S + 2 - 1)
    M, K, N = 5, 7, 4
    rng = np.random.default_rng(S * 13 + len(name))
    A, B = random_operands(array.spec, M, K, N, rng, 0.03)
    assert array.gemm_cycles(M, K, N).readback_ok
    got, trace = rtl_gemm(array, A, B)
    if array.kulisch:
        check_kulisch(array, A, B, got, trace)
    else:
        assert np.array_equal(array.spec.from_codes(got), golden(array, A, B))
    check_schedule(array, trace, M, K, N)


@pytest.mark.parametrize("name,df", [("int8", "os"), ("e4m3_kulisch", "is")])
def test_pipelined_bubbles_and_backpressure(name, df):
    """A source with bubbles and a sink that stalls the whole array: the results stay exact with
    the pipeline registers behind the array's enable."""
    array = SystolicArray(3, 2, parse_pe(name), dataflow=df,
                          pe_stages=1 + len(pe_cut_points(parse_pe(name), df)))
    M, K, N = 6, 7, 5
    A, B = random_operands(array.spec, M, K, N, np.random.default_rng(5), 0.02)
    got, trace = rtl_gemm(array, A, B, p_valid=0.7, p_ready=0.6, seed=4)
    assert np.array_equal(array.spec.from_codes(got), golden(array, A, B))
    assert trace["result"][-1] - trace["accept"][0] > array.gemm_cycles(M, K, N).latency


@pytest.mark.parametrize("kw,err,msg", [
    (dict(pe="int8", pe_stages=4), ValueError,
     r"^pe_stages for pe 'int8xint8_acc32_wrap' with dataflow 'ws' must be 1\.\.3, not 4$"),
    (dict(pe="e4m3_fp32", pe_stages=0), ValueError,
     r"^pe_stages for pe 'e4m3xe4m3_fp32_fused' with dataflow 'ws' must be 1\.\.6, not 0$"),
    (dict(pe="e4m3_fp32", dataflow="os", pe_stages=3), ValueError,
     r"^pe_stages for pe 'e4m3xe4m3_fp32_fused' with dataflow 'os' must be 1\.\.2, not 3 \(os "
     r"accumulates in a one-cycle loop: only the product register can be added before it; use "
     r"dataflow ws or is for a deeper fp PE, or mode kulisch\)$"),
    (dict(pe="e4m3_kulisch", dataflow="os", pe_stages=5), ValueError,
     r"^pe_stages for pe 'e4m3xe4m3_fp32_kulisch49' with dataflow 'os' must be 1\.\.4, "
     r"not 5$"),
    (dict(pe="overq4", pe_stages=2.0), TypeError, r"^pe_stages must be an integer, not 2\.0$"),
    (dict(pe="int8", pe_stages=True), TypeError, r"^pe_stages must be an integer, not True$"),
])
def test_bad_pe_stages(kw, err, msg):
    with pytest.raises(err, match=msg):
        SystolicArray(2, 2, **kw)
    with pytest.raises(err, match=msg):
        SystolicPE(parse_pe(kw["pe"]), kw.get("dataflow", "ws"), kw["pe_stages"])


def test_generate_cli_pe_stages(tmp_path, capsys):
    """``lowbit generate systolic --pe-stages``: the manifest gives the depth and the pipelined
    schedule; a depth the PE cannot take is one line on stderr, exit 2."""
    import json
    import re

    from lowbit.cli.main import main
    assert main(["generate", "systolic", "--rows", "2", "--cols", "3", "--pe", "int8",
                 "--pe-stages", "2", "-o", str(tmp_path)]) == 0
    man = json.loads((tmp_path / "systolic.json").read_text())
    assert man["parameters"]["pe_stages"] == 2
    assert man["latency_cycles"] == 2 * 2 + 3 - 1
    f = man["latency_formula"]
    assert f["S"] == 2 and f["fold_period"] == "P = R + T + (R - 1) * S + (C - 1)"
    assert f["gemm_latency"].endswith("+ S (cycle of the last result beat)")
    assert man["contract"]["protocol"]["pe_stages"] == 2
    # still hierarchical: one PE module, named with its depth, instantiated C times in the
    # row module, which the top instantiates R times
    from lowbit.hdl.manifest import module_names
    text = (tmp_path / "systolic.v").read_text()
    name = SystolicPE(parse_pe("int8"), "ws", 2).module_name
    assert name == SystolicPE(parse_pe("int8"), "ws").module_name + "_s2"
    assert module_names(text).count(name) == 1
    assert len(re.findall(rf"^\s*{name}\s+\\?pe_0_\d+\b", text, re.MULTILINE)) == 3
    assert len(re.findall(rf"^\s*{name}_row3\s+\\?row_\d+\b", text, re.MULTILINE)) == 2
    capsys.readouterr()
    assert main(["generate", "systolic", "--pe", "e4m3_fp32", "--dataflow", "os",
                 "--pe-stages", "4", "-o", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "lowbit generate: error: pe_stages for pe 'e4m3xe4m3_fp32_fused' with dataflow 'os' "
        "must be 1..2, not 4")
