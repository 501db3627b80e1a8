# amaranth: UnusedElaboratable=no
"""Gate-level simulation of the generic flow's netlists (lowbit.fpga.netlist_sim).

The synthesised gates of real lowbit units run on random streams and must agree bit-exactly
with the golden models (this checks the simulator and synthesis together); hand-built
netlists check every cell's truth table, the flip-flop variants and the error paths
without Yosys.
"""

import numpy as np
import pytest

from lowbit.fpga import netlist_sim as ns
from lowbit.fpga import synth as fs
from lowbit.hdl.catalog import get_unit
from lowbit.hdl.manifest import to_verilog
from lowbit.models import formats
from lowbit.models import mac as model


def _netlist(unit, name, **params):
    component, _ = get_unit(unit).build(**params)
    _, net = fs.generic_netlist(to_verilog(component, name), name)
    return component, net


def _signed(x, bits):
    x = x.astype(np.int64)
    return np.where(x >= 1 << (bits - 1), x - (1 << bits), x)


# -- every gate, hand-built netlists (no Yosys) ------------------------------------------------

_TRUTH = {
    "INV": lambda a: 1 - a, "BUF": lambda a: a,
    "NAND2": lambda a, b: 1 - (a & b), "NOR2": lambda a, b: 1 - (a | b),
    "AND2": lambda a, b: a & b, "OR2": lambda a, b: a | b,
    "AOI21": lambda a, b, c: 1 - ((a & b) | c), "OAI21": lambda a, b, c: 1 - ((a | b) & c),
    "XOR2": lambda a, b: a ^ b, "XNOR2": lambda a, b: 1 - (a ^ b),
    "MUX2": lambda a, b, s: b if s else a,
}


def _gate_netlist():
    """Every combinational cell on inputs x[0..2], output y[i] for cell i (in _TRUTH order)."""
    cells = {}
    for i, (t, f) in enumerate(_TRUTH.items()):
        pins = fs.CELLS[t].inputs
        conn = {p: [2 + k] for k, p in enumerate(pins)}
        conn["Y"] = [10 + i]
        cells[f"g{i}"] = {"type": t, "connections": conn}
    return {"ports": {"x": {"direction": "input", "bits": [2, 3, 4]},
                      "y": {"direction": "output", "bits": [10 + i for i in range(len(_TRUTH))]}},
            "cells": cells}


def test_every_gate_truth_table():
    x = np.arange(8)[None, :].repeat(2, axis=0)          # 2 cycles, 8 streams (all inputs)
    res = ns.simulate(_gate_netlist(), {"x": x})
    y = res.outputs["y"][1]
    for i, (t, f) in enumerate(_TRUTH.items()):
        n = len(fs.CELLS[t].inputs)
        want = [f(*[(v >> k) & 1 for k in range(n)]) for v in range(8)]
        got = [int(y[s] >> np.uint64(i)) & 1 for s in range(8)]
        assert got == want, t


def _ff_netlist():
    """q0 = DFF(d0); q1 = DFFR(d1, rn); q2 = DFFS(d2, sn); y = q0 ^ q1 (a level behind)."""
    c = [2]
    return {"ports": {"clk": {"direction": "input", "bits": c},
                      "d": {"direction": "input", "bits": [3, 4, 5]},
                      "rn": {"direction": "input", "bits": [6]},
                      "sn": {"direction": "input", "bits": [7]},
                      "q": {"direction": "output", "bits": [10, 11, 12]},
                      "y": {"direction": "output", "bits": [13]}},
            "cells": {"f0": {"type": "DFF", "connections": {"C": c, "D": [3], "Q": [10]}},
                      "f1": {"type": "DFFR", "connections": {"C": c, "D": [4], "RN": [6], "Q": [11]}},
                      "f2": {"type": "DFFS", "connections": {"C": c, "D": [5], "SN": [7], "Q": [12]}},
                      "x": {"type": "XOR2", "connections": {"A": [10], "B": [11], "Y": [13]}}},
            "init": {"10": 1}}


def test_flip_flops_with_async_reset_and_set():
    rng = np.random.default_rng(3)
    cycles, streams = 40, 100
    d = rng.integers(0, 8, (cycles, streams))
    rn = (rng.random((cycles, streams)) < 0.8).astype(np.uint8)
    sn = (rng.random((cycles, streams)) < 0.8).astype(np.uint8)
    res = ns.simulate(_ff_netlist(), {"d": d, "rn": rn, "sn": sn}, count_toggles=True)
    q = np.zeros((3, streams), np.int64)
    q[0] = 1                                           # init attribute of q0
    for t in range(cycles):
        q[1] &= rn[t]                                  # asynchronous: visible in this cycle
        q[2] |= 1 - sn[t]
        got = res.outputs["q"][t].astype(np.int64)
        assert np.array_equal(got, q[0] | q[1] << 1 | q[2] << 2), t
        assert np.array_equal(res.outputs["y"][t].astype(np.int64), q[0] ^ q[1]), t
        q = np.stack([(d[t] >> k) & 1 for k in range(3)])
        q[1] &= rn[t]
        q[2] |= 1 - sn[t]


def test_toggle_counts_and_rate():
    # a 1-bit input that alternates every cycle in half of the streams
    x = np.zeros((10, 128), np.int64)
    x[1::2, :64] = 7
    res = ns.simulate(_gate_netlist(), {"x": x}, count_toggles=True)
    net = res.netlist
    # 9 counted cycles (1..9), 64 toggling streams, every input bit switches every cycle
    assert [int(res.toggles[r]) for r in net.inputs["x"]] == [9 * 64] * 3
    cells = res.cell_toggles()
    assert cells["g0"] == 9 * 64 and cells["g1"] == 9 * 64          # INV, BUF follow x[0]
    assert cells["g8"] == 0                                          # XOR2 of equal bits
    assert res.counted_cycles == 9 and res.streams == 128


def test_pack_unpack_roundtrip():
    rng = np.random.default_rng(0)
    v = rng.integers(-2 ** 20, 2 ** 20, (5, 200))
    p = ns.pack_streams(v, 21)
    assert p.shape == (5, 21, 4)
    assert np.array_equal(_signed(ns.unpack_streams(p, 200), 21), v)


def test_errors():
    with pytest.raises(ValueError, match=r"^stimulus port must be one of x, not 'z'$"):
        ns.simulate(_gate_netlist(), {"z": np.zeros((1, 1), int)})
    with pytest.raises(ValueError, match=r"^warmup must be in 0\.\.2, not 3$"):
        ns.simulate(_gate_netlist(), {"x": np.zeros((2, 1), int)}, warmup=3)
    with pytest.raises(ValueError, match=r"^outputs must be among y, not 'q'$"):
        ns.simulate(_gate_netlist(), {"x": np.zeros((2, 1), int)}, outputs=["q"])
    loop = {"ports": {"y": {"direction": "output", "bits": [2]}},
            "cells": {"a": {"type": "INV", "connections": {"A": [3], "Y": [2]}},
                      "b": {"type": "INV", "connections": {"A": [2], "Y": [3]}}}}
    with pytest.raises(ValueError, match=r"^combinational loop in the netlist$"):
        ns.Netlist(loop)
    bad = _gate_netlist()
    bad["cells"]["g0"]["type"] = "NAND3"
    with pytest.raises(ValueError, match=r"^cell 'g0' has type 'NAND3', which is not in the generic"):
        ns.Netlist(bad)
    clk_logic = _ff_netlist()
    clk_logic["cells"]["x"]["connections"]["A"] = [2]
    with pytest.raises(ValueError, match=r"^the clock 'clk' must drive only flip-flop clock pins$"):
        ns.Netlist(clk_logic)


# -- real units, synthesised ------------------------------------------------------------------

@pytest.mark.synth
def test_int8_mac_gates_match_model():
    from lowbit.sim.bench_mac import random_int_sequences
    _, net = _netlist("int-mac", "ns_int8_mac")
    f = formats.get("int8")
    valid, clear, a, b = random_int_sequences(f, f, 300, 192, np.random.default_rng(1))
    res = ns.simulate(net, {"a": a, "b": b, "valid": valid.astype(np.uint8),
                            "clear": clear.astype(np.uint8)})
    want = model.mac_stream(valid, clear, a, b, kind="int", a_format=f, b_format=f, acc_bits=32)
    assert np.array_equal(_signed(res.outputs["acc"], 32)[1:], want[:-1])
    assert np.array_equal(res.outputs["acc_valid"][1:], valid[:-1])


@pytest.mark.synth
@pytest.mark.parametrize("acc, mode", [("fp32", "fused"), ("fp16", "fused"), ("fp32", "kulisch")])
def test_fp8_mac_gates_match_model(acc, mode):
    from lowbit.sim.bench_mac import random_fp_sequences as random_sequences
    _, net = _netlist("fp-mac", "ns_e4m3_mac", acc_format=acc, mode=mode)
    f = formats.get("e4m3")
    valid, clear, a, b = random_sequences(f, f, 200, 192, np.random.default_rng(2))
    res = ns.simulate(net, {"a": a, "b": b, "valid": valid.astype(np.uint8),
                            "clear": clear.astype(np.uint8)})
    want = model.mac_stream(valid, clear, a, b, kind="fp", a_format=f, b_format=f,
                            acc_format=formats.get(acc), mode=mode)
    assert np.array_equal(res.outputs["acc"][1:], want[:-1].astype(np.uint64))


@pytest.mark.synth
def test_fp8_multiplier_gates_exhaustive():
    _, net = _netlist("fp-mul", "ns_e4m3_mul")
    f = formats.get("e4m3")
    A, B = np.meshgrid(f.all_codes(), f.all_codes(), indexing="ij")
    A, B = A.ravel()[None, :].repeat(2, 0), B.ravel()[None, :].repeat(2, 0)
    res = ns.simulate(net, {"a": A, "b": B, "valid": np.ones_like(A)})
    want = model.fp_mul(A[0], B[0], f, f)
    assert np.array_equal(res.outputs["p"][1], want.astype(np.uint64))
    assert res.outputs["out_valid"][1].all() and not res.outputs["out_valid"][0].any()


@pytest.mark.synth
def test_overq_pe_gates_match_model():
    from lowbit.sim.bench_overq import overq_vectors, ref_overq_pe
    component, net = _netlist("overq-pe", "ns_overq4")
    vec = overq_vectors(component.config, component.w_bits, seed=4, random_cycles=200, lanes=64)
    res = ns.simulate(net, vec)
    want = ref_overq_pe(component, **vec)["acc"]
    assert np.array_equal(_signed(res.outputs["acc"], component.acc_bits)[1:], want[:-1])


@pytest.mark.synth
def test_generic_netlist_cache(tmp_path, monkeypatch):
    from lowbit.fpga import cache
    monkeypatch.setenv("LOWBIT_CACHE", str(tmp_path))
    v = "module inv4(input [3:0] x, output [3:0] y); assign y = ~x; endmodule\n"
    r1, n1 = fs.generic_netlist(v, "inv4")
    r2, n2 = fs.generic_netlist(v, "inv4")
    assert not r1.from_cache and r2.from_cache and n1 == n2
    assert r1.cells == {"INV": 4}
    # a result cached without its netlist (older flow) is synthesised again
    (cache.cache_dir() / f"{fs.netlist_key(r1.key)}.json").unlink()
    r3, n3 = fs.generic_netlist(v, "inv4")
    assert n3 == n1 and (cache.cache_dir() / f"{fs.netlist_key(r1.key)}.json").exists()
    x = np.arange(16)[None, :]
    assert np.array_equal(ns.simulate(n3, {"x": x}).outputs["y"][0], 15 - np.arange(16))


def test_unit_delay_counts_glitches():
    # y = x XOR (x delayed by two inverters): zero delay, y is constant 0; unit delay, a change
    # of x makes y pulse (two transitions) before it settles
    net = {"ports": {"x": {"direction": "input", "bits": [2]},
                     "y": {"direction": "output", "bits": [5]}},
           "cells": {"i1": {"type": "INV", "connections": {"A": [2], "Y": [3]}},
                     "i2": {"type": "INV", "connections": {"A": [3], "Y": [4]}},
                     "x": {"type": "XOR2", "connections": {"A": [2], "B": [4], "Y": [5]}}}}
    x = (np.arange(11)[:, None] % 2).repeat(3, axis=1)
    z = ns.simulate(net, {"x": x}, count_toggles=True)
    u = ns.simulate(net, {"x": x}, count_toggles=True, delay="unit")
    assert np.array_equal(z.outputs["y"], u.outputs["y"]) and not z.outputs["y"].any()
    assert z.cell_toggles() == {"i1": 30, "i2": 30, "x": 0}
    assert u.cell_toggles() == {"i1": 30, "i2": 30, "x": 60}
    with pytest.raises(ValueError, match=r"^delay must be 'zero' or 'unit', not 'real'$"):
        ns.simulate(net, {"x": x}, delay="real")


@pytest.mark.synth
def test_unit_delay_same_outputs_and_more_toggles_on_a_mac():
    from lowbit.sim.bench_mac import random_int_sequences
    _, net = _netlist("int-mac", "ns_int8_mac")
    f = formats.get("int8")
    valid, clear, a, b = random_int_sequences(f, f, 40, 64, np.random.default_rng(6))
    stim = {"a": a, "b": b, "valid": valid.astype(np.uint8), "clear": clear.astype(np.uint8)}
    z = ns.simulate(net, stim, count_toggles=True)
    u = ns.simulate(net, stim, count_toggles=True, delay="unit")
    assert np.array_equal(z.outputs["acc"], u.outputs["acc"])
    # per net: at least the zero-delay count, and the same parity (glitches come in pairs)
    assert (u.toggles >= z.toggles).all() and ((u.toggles - z.toggles) % 2 == 0).all()
    assert u.toggles.sum() > z.toggles.sum()


_ASYNC = """
module arst(input clk, input ar, input as_n, input en, input [3:0] d,
            output reg [3:0] q, output reg [3:0] r, output reg [3:0] e);
  always @(posedge clk or posedge ar) if (ar) q <= 4'b0101; else q <= d;
  always @(posedge clk or negedge as_n) if (!as_n) r <= 4'b1111; else if (en) r <= d;
  always @(posedge clk) if (en) e <= d ^ q;
endmodule
"""


@pytest.mark.synth
def test_async_reset_set_and_enable_through_synthesis():
    res, net = fs.generic_netlist(_ASYNC, "arst")
    assert {"DFF", "DFFR", "DFFS"} <= set(res.cells)          # every flip-flop variant mapped
    rng = np.random.default_rng(7)
    shape = (60, 130)
    ar = (rng.random(shape) < 0.15).astype(np.int64)
    as_n = (rng.random(shape) > 0.15).astype(np.int64)
    en = (rng.random(shape) < 0.6).astype(np.int64)
    d = rng.integers(0, 16, shape)
    out = ns.simulate(net, {"ar": ar, "as_n": as_n, "en": en, "d": d}).outputs
    q = r = e = np.zeros(shape[1], np.int64)
    for t in range(shape[0]):
        q = np.where(ar[t] == 1, 5, q)                   # asynchronous: visible at once
        r = np.where(as_n[t] == 0, 15, r)
        for name, want in (("q", q), ("r", r), ("e", e)):
            assert np.array_equal(out[name][t].astype(np.int64), want), (name, t)
        q, r, e = (np.where(ar[t] == 1, 5, d[t]),
                   np.where(as_n[t] == 0, 15, np.where(en[t] == 1, d[t], r)),
                   np.where(en[t] == 1, d[t] ^ q, e))
