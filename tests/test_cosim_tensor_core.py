"""Co-simulation (cocotb + Verilator) of ``tensor-core-dot`` against the shipped tensor-core
vectors and the model, and ``lowbit cosim tensor-core-dot --preset ...``.

The vectors (``tests/data/tensor_cores/``, README there: MMA-Sim 2.1.1, Xie et al.,
arXiv:2511.10909, validated on the GPUs) are compared as the model tests compare them: equal
bit patterns, or both NaN.  Random vectors are compared with the model bit for bit (the unit
gives the model's NaN code).

Cost budget: the Verilator build dominates (one lane of a 32-product unit takes 42-52 s to
build on a loaded 2-core machine, a 4-product one 9-14 s; simulating 2,048 cycles about 4 s;
measured 2026-12-03), and CI starts from an empty cache.  The suite therefore runs the small
instructions of each family on the shipped vectors (Volta fp16 T-FDPA, pipelined to depth 2,
and CDNA3 xf32 TR-FDPA with tf32 inputs) and the block-scaled families on reduced-L versions
of the Blackwell instructions (the same generator code, checked against the same model):
MXFP8 ST-FDPA with L = block = 8 and NVFP4 GST-FDPA with L = 16 (one group, one UE4M3 scale
pair).  Every full-size preset, at every pipeline depth, runs in
``benchmarks/tensor_core_cosim.py``.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from lowbit.cli.main import main
from lowbit.hdl.shared_exp_adder import pack_terms
from lowbit.hdl.tensor_core_dot import TensorCoreDot
from lowbit.models import tensor_core as tc
from lowbit.sim import bench_tensor_core as bt
from lowbit.sim import cosim

pytestmark = pytest.mark.cosim

DATA = Path(__file__).parent / "data" / "tensor_cores"


@pytest.fixture(scope="module")
def vectors():
    cases = json.loads((DATA / "cases.json").read_text())
    with np.load(DATA / "tensor_core_vectors_seed11.npz") as z:
        return cases, {k: z[k] for k in z.files}


def _shipped(vectors, case):
    cases, z = vectors
    cs = cases[case]
    sa = z[f"{case}_sa"] if cs["block"] else None
    sb = z[f"{case}_sb"] if cs["block"] else None
    return (f"{cs['arch']}:{cs['instruction']}", z[f"{case}_a"], z[f"{case}_b"], z[f"{case}_c"],
            sa, sb, z[f"{case}_d"])


def test_volta_fp16_pipelined_on_the_predicted_cycle(vectors, simulator):
    """T-FDPA fp16 (L = K = 4), two pipeline registers: every shipped vector's D appears
    exactly ``latency`` = 2 cycles after its inputs, and on no other cycle."""
    name, a, b, c, _, _, d = _shipped(vectors, "volta_mma_f16_f32")
    unit = TensorCoreDot(name, pipeline_stages=2)
    assert unit.latency == 2 and unit.cuts == ("align", "sum")
    wa, wb = unit.element_bits
    # one lane, one vector per cycle (2-D inputs: the result keeps the extra cycles)
    col = {"a": pack_terms(a, wa), "b": pack_terms(b, wb), "c": c.astype(np.uint64)}
    got = cosim.run_lanes(unit, {k: np.asarray(v).reshape(-1, 1) for k, v in col.items()},
                          ["d"], lanes=1, latency=0, extra_cycles=2,
                          sim=simulator)["d"].reshape(-1)
    n = len(d)
    fmt = unit.instruction.cd_format
    assert bt.same_bits(got[2:2 + n], d, fmt).all()
    assert (got[:2] == 0).all()                       # the registers reset to +0
    # one cycle early or late is wrong for almost every vector
    assert bt.same_bits(got[1:1 + n], d, fmt).mean() < 0.05
    assert bt.same_bits(got[3:3 + n - 1], d[:-1], fmt).mean() < 0.05
    assert (got[2:2 + n] == unit.instruction.dpa(a, b, c)).all()


def test_cdna3_xf32_tf32_low_bits_ignored(vectors, simulator):
    """TR-FDPA (AMD CDNA3 xf32, L = 4, K = 8: two steps chained through C) on the shipped
    vectors, with random low 13 bits added to every tf32 input: the unit reads bits 13..31
    of each FP32 pattern (the truncation to TF32, as the model's ``>> 13``)."""
    name, a, b, c, _, _, d = _shipped(vectors, "cdna3_mfma_xf32_f32")
    unit = TensorCoreDot(name)
    rng = np.random.default_rng(5)
    a2 = a | rng.integers(0, 1 << 13, a.shape).astype(np.uint32)
    b2 = b | rng.integers(0, 1 << 13, b.shape).astype(np.uint32)
    assert (a2 != a).mean() > 0.99
    got = bt.rtl_tensor_core_dot(unit, a2, b2, c, sim=simulator)
    assert bt.same_bits(got["d"], d, unit.instruction.cd_format).all()
    assert (got["d"] == unit.instruction.dpa(a2, b2, c)).all()


def _reduced(arch, instr, L):
    """The instruction with L = K = ``L`` products (and the block no longer than L): the
    same algorithm and knobs on fewer products, so that a suite build stays cheap."""
    ins = tc.instruction(arch, instr)
    return dataclasses.replace(ins, K=L, block=min(ins.block, L),
                               config=dataclasses.replace(ins.config, n=L))


def test_st_fdpa_mxfp8_reduced(simulator):
    """ST-FDPA (Blackwell ``kind::mxf8f6f4`` e4m3, E8M0 scales) with L = block = 8: 2,048
    random steps (half of them uniform over the code space, NaN/Inf, NaN scale 0xFF included) bit-exact vs the
    model."""
    ins = _reduced("Blackwell", "m128n8k32.kind::mxf8f6f4.block32.f32.e4m3.e4m3.ue8m0", 8)
    unit = TensorCoreDot(ins)
    a, b, c, sa, sb = bt.random_operands(ins, 2048, np.random.default_rng(21))
    sa[:8], sb[8:16] = 0xFF, 0x00                     # a NaN scale, the smallest scale
    want = ins.dpa(a, b, c, sa, sb)
    got = bt.rtl_tensor_core_dot(unit, a, b, c, sa, sb, sim=simulator)["d"]
    assert (got == want).all()
    assert (want[:8] == ins.nan_code).all()


def test_gst_fdpa_nvfp4_reduced_ue4m3_bit7(simulator):
    """GST-FDPA (Blackwell ``kind::mxf4nvf4``, E2M1, UE4M3 scales per 16) with L = 16: one
    group and its scale pair, 2,048 random steps bit-exact vs the model; bit 7 of every
    UE4M3 scale code set at random changes nothing (the code is read with its sign bit forced
    to 0, as the model reads it)."""
    ins = _reduced("Blackwell", "m128n8k64.kind::mxf4nvf4.block16.f32.e2m1.e2m1.ue4m3", 16)
    unit = TensorCoreDot(ins)
    assert unit.scales_per_step == 1
    rng = np.random.default_rng(22)
    a, b, c, sa, sb = bt.random_operands(ins, 2048, rng)
    want = ins.dpa(a, b, c, sa, sb)
    sa7 = sa | (rng.integers(0, 2, sa.shape) << 7).astype(np.uint8)
    sb7 = sb | (rng.integers(0, 2, sb.shape) << 7).astype(np.uint8)
    assert (ins.dpa(a, b, c, sa7, sb7) == want).all()
    got = bt.rtl_tensor_core_dot(unit, a, b, c, sa7, sb7, sim=simulator)["d"]
    assert (got == want).all()


def test_cli_cosim_preset(capsys, simulator):
    """``lowbit cosim tensor-core-dot --preset ARCH:INSTRUCTION``: the same build as the
    pipelined Volta test, random vectors, exit 0 and the count in the report."""
    argv = ["cosim", "tensor-core-dot", "--preset", "Volta:m8n8k4.f32.f16.f16.f32",
            "--pipeline", "2", "--vectors", "512", "--seed", "3", "--sim", simulator,
            "--json", "-"]
    assert main(argv) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["vectors"] == 512 and rep["mismatches"] == 0
    assert rep["params"] == {"instruction": "Volta:m8n8k4.f32.f16.f16.f32",
                             "pipeline_stages": 2}


@pytest.mark.parametrize("cmd", ["cosim", "generate"])
def test_cli_unknown_preset_one_line_exit_2(cmd, capsys, tmp_path):
    argv = [cmd, "tensor-core-dot", "--preset", "Hopper:m64n8k99.f32.e4m3.e4m3"]
    argv += ["--vectors", "1"] if cmd == "cosim" else ["-o", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"lowbit {cmd}: error: instruction (--preset)")
    assert "'Hopper:m64n8k32.f32.e4m3.e4m3'" in err and "'Ada Lovelace:" in err
    assert "not 'Hopper:m64n8k99.f32.e4m3.e4m3'" in err
