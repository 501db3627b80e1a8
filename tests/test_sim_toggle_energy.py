# amaranth: UnusedElaboratable=no
"""Data-dependent (toggle) energy, lowbit.sim.toggle_energy.

Hand-built netlists have energies computable by hand from the documented capacitances;
on a synthesised INT8 MAC the toggles of the accumulator outputs must equal those of the
golden model's accumulator sequence, and all-zero operands must cost exactly the clock.
"""

import numpy as np
import pytest

from lowbit.fpga import netlist_sim as ns
from lowbit.sim import toggle_energy as te

C = te.PIN_CAP_FF
U = te.C_UNIT_FF


def _inv_nand():
    """y = NAND2(INV(x0), x1); n = INV(x0) also drives output port n."""
    return {"ports": {"x": {"direction": "input", "bits": [2, 3]},
                      "y": {"direction": "output", "bits": [5]},
                      "n": {"direction": "output", "bits": [4]}},
            "cells": {"i": {"type": "INV", "connections": {"A": [2], "Y": [4]}},
                      "g": {"type": "NAND2", "connections": {"A": [4], "B": [3], "Y": [5]}}}}


def test_hand_computed_energy():
    # x0 alternates every cycle in every stream, x1 = 1: x0, n, y each switch once per cycle
    cycles, streams = 9, 70
    x = np.where(np.arange(cycles)[:, None] % 2 == 0, 2, 3).repeat(streams, axis=1)
    r = te.toggle_energy(_inv_nand(), stimulus={"x": x}, warmup=1, vdd=0.9)
    w = te.wire_cap_ff
    c_x0 = C["INV"]["A"] + float(w(1))                                     # input bit x0
    c_n = U * te.PARASITIC["INV"] + C["NAND2"]["A"] + te.PORT_LOAD_FF + float(w(2))
    c_y = U * te.PARASITIC["NAND2"] + te.PORT_LOAD_FF + float(w(1))
    per = 0.5 * 0.81 * 1e-3                                                 # pJ per fF transition
    assert r.ops == (cycles - 1) * streams
    assert r.breakdown["inputs"] == pytest.approx(c_x0 * per, rel=1e-12)
    assert r.breakdown["logic"] == pytest.approx((c_n + c_y) * per, rel=1e-12)
    assert r.breakdown["clock"] == 0 and r.breakdown["flip_flops"] == 0
    assert r.pj_per_op == pytest.approx((c_x0 + c_n + c_y) * per, rel=1e-12)
    assert r.toggle_rates["logic"] == 1.0 and r.toggle_rates["inputs"] == 0.5
    assert r.by_cell_type["INV"]["toggle_rate"] == 1.0
    # no reconvergence, so unit delay adds no glitches here
    assert te.toggle_energy(_inv_nand(), stimulus={"x": x}, warmup=1, delay="unit").pj_per_op == \
        pytest.approx(r.pj_per_op, rel=1e-12)
    # energy scales with Vdd^2 and node_scale exactly
    r2 = te.toggle_energy(_inv_nand(), stimulus={"x": x}, warmup=1, vdd=0.45, node_scale=3.0)
    assert r2.pj_per_op == pytest.approx(r.pj_per_op * 0.25 * 3.0, rel=1e-12)


def _regs(n):
    cells = {f"f{i}": {"type": "DFF", "connections": {"C": [2], "D": [3 + i], "Q": [100 + i]}}
             for i in range(n)}
    return {"ports": {"clk": {"direction": "input", "bits": [2]},
                      "d": {"direction": "input", "bits": [3 + i for i in range(n)]},
                      "q": {"direction": "output", "bits": [100 + i for i in range(n)]}},
            "cells": cells}


def test_clock_and_flip_flop_energy():
    cycles, streams = 12, 64
    d = np.zeros((cycles, streams), np.int64)
    r = te.toggle_energy(_regs(3), stimulus={"d": d}, warmup=2)
    clk = (C["DFF"]["C"] + float(te.wire_cap_ff(1)) + te.FF_CLOCK_INTERNAL_FF) * 0.81e-3
    assert r.pj_per_op == pytest.approx(3 * clk, rel=1e-12)              # quiet data: clock only
    assert r.breakdown["clock"] == pytest.approx(3 * clk, rel=1e-12)
    # bit 0 toggles every cycle: its D input and (a cycle later) its Q switch every cycle
    d[::2] = 1
    r = te.toggle_energy(_regs(3), stimulus={"d": d}, warmup=2)
    c_q = U * te.FF_Q_PARASITIC + te.PORT_LOAD_FF + float(te.wire_cap_ff(1))
    assert r.breakdown["flip_flops"] == pytest.approx(c_q * 0.405e-3, rel=1e-12)
    assert r.toggle_rates["flip_flops"] == pytest.approx(1 / 3)
    assert r.by_cell_type["DFF"]["clock_pj_per_op"] == pytest.approx(3 * clk, rel=1e-12)


def test_ops_counting():
    x = np.zeros((5, 10), np.int64)
    r = te.toggle_energy(_inv_nand(), stimulus={"x": x}, warmup=1, ops=7)
    assert r.ops == 7
    mask = np.zeros((5, 10), bool)
    mask[0] = True                      # not counted (warm-up cycle)
    mask[3, :4] = True
    assert te.toggle_energy(_inv_nand(), stimulus={"x": x}, warmup=1, ops=mask).ops == 4


def test_wire_load():
    assert float(te.wire_cap_ff(0)) == 0.0
    assert float(te.wire_cap_ff(1)) == pytest.approx(0.1774 * 1.7460)
    assert float(te.wire_cap_ff(10)) == pytest.approx(0.1774 * (25.4842 + 27.0320) / 2)
    assert float(te.wire_cap_ff(13)) == pytest.approx(0.1774 * (27.0320 + 2 * 5.0613))


def test_dot_streams_layout():
    rng = np.random.default_rng(0)
    blocks = [{"a": rng.integers(0, 256, (5, 4)), "b": rng.integers(0, 256, (5, 4))},
              {"a": rng.integers(0, 256, (3, 7)), "b": rng.integers(0, 256, (3, 7))}]
    s = te.dot_streams(blocks, lanes=6, cycles=40, rng=rng)
    assert set(s) == {"a", "b", "valid", "clear"} and s["a"].shape == (40, 6)
    assert s["valid"].all()
    for lane in range(6):
        starts = list(np.flatnonzero(s["clear"][:, lane])) + [40]
        assert starts[0] == 0
        for t0, t1 in zip(starts, starts[1:]):
            seg_a, seg_b = s["a"][t0:t1, lane], s["b"][t0:t1, lane]
            # every segment is (a prefix of, at the end) one dot product of one block
            assert any(np.array_equal(blk["a"][i, :t1 - t0], seg_a)
                       and np.array_equal(blk["b"][i, :t1 - t0], seg_b)
                       and (t1 - t0 == blk["a"].shape[1] or t1 == 40)
                       for blk in blocks for i in range(blk["a"].shape[0]))
    p = te.dot_streams(blocks[:1], lanes=2, cycles=8, start="first")
    assert "first" in p and "clear" not in p


def test_errors():
    x = np.zeros((4, 2), np.int64)
    with pytest.raises(ValueError, match=r"^vdd must be a number from 0\.3 to 1\.5, not 2\.0$"):
        te.toggle_energy(_inv_nand(), stimulus={"x": x}, vdd=2.0)
    with pytest.raises(ValueError, match=r"^node_scale must be a positive finite number, not 0$"):
        te.toggle_energy(_inv_nand(), stimulus={"x": x}, node_scale=0)
    with pytest.raises(ValueError, match=r"^warmup must be an integer from 0 to 3, not 4$"):
        te.toggle_energy(_inv_nand(), stimulus={"x": x}, warmup=4)
    x = np.zeros((8, 2), np.int64)
    with pytest.raises(ValueError, match=r"^ops must be > 0"):
        te.toggle_energy(_inv_nand(), stimulus={"x": x}, ops=0)
    with pytest.raises(TypeError, match=r"^design must be Verilog text, an Amaranth component"):
        te.toggle_energy(3.5, stimulus={"x": x})
    with pytest.raises(ValueError, match=r"^top must name the Verilog module, not None$"):
        te.toggle_energy("module m(); endmodule", stimulus={"x": x})
    with pytest.raises(ValueError, match=r"^delay must be one of zero, unit, not 'sdf'$"):
        te.toggle_energy(_inv_nand(), stimulus={"x": x}, delay="sdf")
    with pytest.raises(ValueError, match=r"^lanes must be an integer from 1 to 65536, not 0$"):
        te.dot_streams([{"a": x}], lanes=0, cycles=3)


@pytest.mark.synth
def test_int8_mac_toggles_match_model_and_quiet_data_costs_the_clock():
    from lowbit.fpga import synth as fs
    from lowbit.hdl.catalog import get_unit
    from lowbit.sim.bench_mac import random_int_sequences
    from lowbit.hdl.manifest import to_verilog
    from lowbit.models import formats
    from lowbit.models import mac as model

    comp, _ = get_unit("int-mac").build()
    _, netd = fs.generic_netlist(to_verilog(comp, "ns_int8_mac"), "ns_int8_mac")
    net = ns.Netlist(netd)
    f = formats.get("int8")
    valid, clear, a, b = random_int_sequences(f, f, 120, 100, np.random.default_rng(5))
    res = ns.simulate(net, {"a": a, "b": b, "valid": valid.astype(np.uint8),
                            "clear": clear.astype(np.uint8)}, count_toggles=True, warmup=2)
    # the acc port shows the model's accumulator one cycle late: its bits toggle as it does
    acc = model.mac_stream(valid, clear, a, b, kind="int", a_format=f, b_format=f,
                           acc_bits=32).astype(np.int64) & 0xFFFF_FFFF
    seen = np.vstack([np.zeros((1, 100), np.int64), acc[:-1]])          # acc port, cycles 0..
    flips = np.bitwise_count((seen[2:] ^ seen[1:-1]).astype(np.uint64))
    per_bit = [int(res.toggles[r]) for r in net.outputs["acc"]]
    assert sum(per_bit) == int(flips.sum())
    for k, r in enumerate(net.outputs["acc"]):
        assert per_bit[k] == int((((seen[2:] ^ seen[1:-1]) >> k) & 1).sum())
    # constant zero operands, always valid, never cleared: after the first cycle nothing
    # switches but the clock
    z = np.zeros((10, 64), np.int64)
    e = te.toggle_energy(net, stimulus={"a": z, "b": z, "valid": z + 1, "clear": z}, warmup=2)
    clk = sum(te.clock_cap_per_ff_ff(t) for t in net.ff_types) * 0.81e-3
    assert e.pj_per_op == pytest.approx(clk, rel=1e-12)
    assert e.breakdown["logic"] == 0 and e.flip_flops == net.n_ff == 33


def test_random_stimulus():
    from lowbit.models import formats
    e5m2 = formats.get("e5m2")
    ports = [("clk", 1), ("rst", 1), ("a", 8), ("b", 8), ("valid", 1), ("clear", 1), ("wide", 100)]
    s = te.random_stimulus(ports, lanes=70, cycles=130, formats={"a": e5m2}, dot_length=64,
                           rng=np.random.default_rng(1))
    assert set(s) == {"rst", "a", "b", "valid", "clear", "wide"}
    assert not s["rst"].any() and s["valid"].all()
    assert np.array_equal(np.flatnonzero(s["clear"][:, 5]), [0, 64, 128])
    assert np.isfinite(e5m2.decode(s["a"])).all() and len(np.unique(s["a"])) == 256 - 8  # 2 Inf, 6 NaN
    assert len(np.unique(s["b"])) == 256
    w = s["wide"]
    assert w.dtype == object and max(int(x) for x in w.ravel()) < 1 << 100
    assert max(int(x) for x in w.ravel()) >= 1 << 99
    # wide ports pack bit-exactly (checked 50 bits at a time)
    p = ns.pack_streams(w, 100)
    assert p.shape == (130, 100, 2)
    for lo in (0, 50):
        got = ns.unpack_streams(p[:, lo:lo + 50], 70)
        want = np.array([[(int(x) >> lo) & ((1 << 50) - 1) for x in row] for row in w], np.uint64)
        assert np.array_equal(got, want)


@pytest.mark.synth
def test_cli_synth_energy_toggles(capsys):
    import json

    from lowbit.cli.main import main
    from lowbit.fpga import synth as fs
    from lowbit.hdl import manifest
    from lowbit.hdl.catalog import get_unit
    from lowbit.models import formats

    assert main(["synth", "fp-mac", "--acc", "fp16", "--energy", "toggles", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    comp, _ = get_unit("fp-mac").build(acc_format="fp16")
    text = manifest.to_verilog(comp, "fp_mac")
    _, netd = fs.generic_netlist(text, "fp_mac")
    ports = [(p["name"], p["width"]) for p in manifest.ports(comp) if p["direction"] == "input"]
    e4m3 = formats.get("e4m3")
    stim = te.random_stimulus(ports, 256, 256, formats={"a": e4m3, "b": e4m3})
    want = te.toggle_energy(netd, stimulus=stim, warmup=8)
    assert doc["energy_toggles_45nm"]["pj_per_op"] == round(want.pj_per_op, 4)
    assert doc["energy_toggles_45nm"]["ops"] == 256 * 248
