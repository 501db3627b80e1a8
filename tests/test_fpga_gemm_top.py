# amaranth: UnusedElaboratable=no
"""The UART GEMM top level (lowbit.fpga.gemm_top) driven by the host driver (lowbit.fpga.host)
through a simulated serial link bridged to its UART pins (Amaranth simulator), bit-exact with
the golden GEMM (lowbit.models.systolic.gemm_numerics), run cycles equal to the simulator's
schedule. Small arrays and a fast UART (4-5 clock cycles per bit) keep this to a few seconds
per GEMM."""

import importlib.util
import re

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from lowbit.fpga.gemm_top import MAGIC, GemmTop
from lowbit.fpga.host import GemmDevice, ProtocolError, SimSerial
from lowbit.fpga.uart import UartRx, UartTx
from lowbit.models.systolic import FpMacPE, IntPE, Schedule, gemm_numerics
from lowbit.sim.bench_systolic import random_operands


async def stream_put(ctx, s, payload):
    ctx.set(s.valid, 1)
    ctx.set(s.payload, payload)
    await ctx.tick().until(s.ready)
    ctx.set(s.valid, 0)


# -- UART -----------------------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [4, 7])
def test_uart_loopback(divisor):
    """UartTx -> UartRx: every byte value in back-to-back frames arrives intact, and the
    first frame (0x00: start bit + 8 zero bits) is low for exactly 9 * divisor cycles."""
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    data = list(range(256))
    got, errors, low = [], [], []

    async def send(ctx):
        for b in data:
            await stream_put(ctx, tx.i, b)

    async def recv(ctx):
        ctx.set(rx.o.ready, 1)
        while len(got) < len(data):
            await ctx.tick()
            if ctx.get(rx.o.valid):
                got.append(ctx.get(rx.o.payload))
            if ctx.get(rx.error):
                errors.append(1)

    async def line(ctx):
        n = 0
        while True:
            await ctx.tick()
            if not ctx.get(tx.tx):
                n += 1
            elif n:
                low.append(n)
                return

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_testbench(recv)
    sim.add_testbench(line, background=True)
    sim.run()
    assert got == data
    assert not errors
    assert low == [9 * divisor]


def test_uart_framing_error():
    """A frame whose stop bit is low is dropped and flagged on ``error``."""
    D = 4
    rx = UartRx(D)
    got, errors = [], []

    async def bench(ctx):
        for bits in ([0] + [1, 0] * 4 + [0], [1] * 20, [0] + [1, 0] * 4 + [1], [1] * 3 * D):
            for v in bits:
                ctx.set(rx.rx, v)
                for _ in range(D):
                    await ctx.tick()
                    if ctx.get(rx.o.valid):
                        got.append(ctx.get(rx.o.payload))
                        ctx.set(rx.o.ready, 1)
                    if ctx.get(rx.error):
                        errors.append(len(got))

    sim = Simulator(rx)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [0x55]
    assert errors == [0]


@pytest.mark.parametrize("cls", [UartRx, UartTx])
@pytest.mark.parametrize("bad, error", [(3, ValueError), (0, ValueError), (1 << 21, ValueError),
                                        (4.0, TypeError), (True, TypeError)])
def test_uart_divisor_range(cls, bad, error):
    want = (fr"^divisor must be an integer from 4 to 1048576, not {bad!r}$" if error is ValueError
            else fr"^divisor must be an integer, not {bad!r}$")
    with pytest.raises(error, match=want):
        cls(bad)


# -- GEMM through the UART top ------------------------------------------------------------------

def _device(**kw):
    top = GemmTop(**kw)
    return top, GemmDevice(SimSerial(top))


def _check_gemm(top, dev, A, B, golden_pe):
    got = dev.gemm(A, B)
    want = np.asarray(gemm_numerics(A, B, top.rows, top.cols, "ws", golden_pe))
    assert got.dtype.kind == want.dtype.kind
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, dev.golden(A, B))
    R, C = top.rows, top.cols
    M, K = A.shape
    N = B.shape[1]
    m_blocks = -(-M // top.depth)
    assert len(dev.runs) == -(-N // C) * m_blocks * -(-K // R)
    for M_run, kv, cycles in dev.runs:
        # one fold: the simulator's schedule (first beat accepted = cycle 0, last result)
        S = top.array.pe_stages
        assert cycles == Schedule(M_run, kv, C, R, C, "ws", S).latency == top.run_cycles(M_run,
                                                                                        kv)
        assert cycles == R + M_run + R * S + C - 2          # 2R + M + C - 2 for S = 1


def test_gemm_int8_saturating():
    """INT8 x INT8 on 3x4, 16-bit saturating accumulator (the result depends on the order of
    the chain, which crosses K-folds through the result buffer); M > depth (two M blocks),
    K and N not multiples of the array size."""
    top, dev = _device(rows=3, cols=4, pe="int", depth=4, divisor=4, acc_bits=16,
                       overflow="saturate")
    assert dev.params == {"rows": 3, "cols": 4, "depth": 4, "dataflow": "ws", "pe": "int",
                          "a_format": "int8", "b_format": "int8", "acc_bits": 16,
                          "overflow": "saturate"}
    rng = np.random.default_rng(7)
    M, K, N = 6, 8, 5
    A = rng.integers(0, 256, (M, K))
    B = rng.integers(0, 256, (K, N))
    A[0, :] = 0x7F                       # a row that saturates at +32767 then comes back down
    B[:4, 0] = 0x7F
    B[4:, 0] = 0x80
    _check_gemm(top, dev, A, B, IntPE("int8", "int8", 16, "saturate"))
    assert dev.gemm(A, B)[0, 0] != (A[0].astype(np.int64) - 256 * (A[0] > 127)) @ \
        (B[:, 0] - 256 * (B[:, 0] > 127))     # saturation did happen (the case is meaningful)


def test_gemm_int8_wrap():
    """INT8 on 4x4 with the default 32-bit wrapping accumulator: extreme codes."""
    top, dev = _device(rows=4, cols=4, pe="int", depth=8, divisor=5)
    rng = np.random.default_rng(3)
    M, K, N = 5, 6, 5
    A = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF], (M, K))
    B = rng.integers(0, 256, (K, N))
    _check_gemm(top, dev, A, B, IntPE())


def test_gemm_fp8_e4m3_fp32():
    """FP8 E4M3 x E4M3 -> FP32 (fused RNE) on 3x2: random codes with NaN, subnormals, zeros of
    both signs; a column of -0 products checks that padded lanes (K = 7 on 3 rows) leave the
    -0 empty sum alone (the lane mask)."""
    top, dev = _device(rows=3, cols=2, pe="fp", depth=8, divisor=4)
    rng = np.random.default_rng(11)
    M, K, N = 5, 7, 3
    A, B = random_operands(top.array.spec, M, K, N, rng, specials=0.05)
    A[0, :] = 0x80                       # -0
    B[:, 0] = 0x01                       # +min subnormal: row 0 x column 0 is a chain of -0
    A[1, :3] = 0x01
    _check_gemm(top, dev, A, B, FpMacPE("e4m3", "e4m3", "fp32", "fused"))
    got = dev.gemm(A, B)
    assert int(got[0, 0]) == 0x80000000   # -0 survived the padded fold


def test_gemm_fp8_e5m2_fp16_two_roundings():
    """E5M2 x E4M3 -> FP16 with two roundings and saturation on 2x2 (2-byte result codes)."""
    top, dev = _device(rows=2, cols=2, pe="fp", depth=4, divisor=4, a_format="e5m2",
                       b_format="e4m3", acc_format="fp16", mode="two_roundings", saturate=True)
    rng = np.random.default_rng(5)
    A, B = random_operands(top.array.spec, 5, 5, 3, rng, specials=0.0)
    _check_gemm(top, dev, A, B, FpMacPE("e5m2", "e4m3", "fp16", "two_roundings", False, True))


def test_gemm_pipelined_pes():
    """The board top level with pipelined PEs (FP8 E4M3 -> FP32, 6 stages): same results, run
    cycles of the pipelined schedule, depth in the descriptor; a depth the PE cannot take."""
    top, dev = _device(rows=2, cols=2, pe="e4m3_fp32", depth=4, divisor=4, pe_stages=6)
    assert dev.params["pe_stages"] == 6 and top.array.pe_stages == 6
    rng = np.random.default_rng(12)
    A, B = random_operands(top.array.spec, 3, 3, 3, rng, specials=0.05)
    _check_gemm(top, dev, A, B, FpMacPE("e4m3", "e4m3", "fp32", "fused"))
    with pytest.raises(ValueError, match=r"^pe_stages for pe 'int8xint8_acc32_wrap' with "
                                         r"dataflow 'ws' must be 1\.\.3, not 4$"):
        GemmTop(rows=2, cols=2, pe="int8", pe_stages=4)


# -- protocol -----------------------------------------------------------------------------------

def test_protocol_errors_and_info():
    """Unknown opcode -> 0xE0; out-of-range arguments -> 0xE1 and the command is ignored; the
    device keeps working afterwards."""
    top = GemmTop(rows=2, cols=2, pe="int", depth=4, divisor=4)
    ser = SimSerial(top, timeout_cycles=2000)
    dev = GemmDevice(ser)
    assert top.descriptor.startswith(MAGIC + " rows=2 cols=2 depth=4")
    ser.write(b"Z")
    assert ser.read(2) == b"\xe0"
    for cmd in (b"A\x04\x00",            # M = 5 > depth
                b"R\x00\x00\x00\x00",    # kv = 0
                b"R\x00\x00\x03\x00",    # kv = 3 > R
                b"R\x00\x00\x01\x02",    # unknown flag bit
                b"C\xff\xff"):           # M = 65536
        ser.write(cmd)
        assert ser.read(2) == b"\xe1", cmd
    with pytest.raises(ProtocolError, match=r"^run: device answered 0xe1 \(argument out of "
                                            r"range\)$"):
        dev._write(b"R\x00\x00\x00\x00")
        dev._status("run")
    A = np.array([[1, 2], [3, 0xFF]])
    B = np.array([[1, 0], [0xFE, 1]])
    np.testing.assert_array_equal(dev.gemm(A, B), [[-3, 2], [5, -1]])
    with pytest.raises(ProtocolError, match=r"^timeout: the device sent 0 of 1 expected bytes$"):
        dev._read(1)


def test_host_argument_checks():
    top = GemmTop(rows=2, cols=2, pe="int", depth=4, divisor=4)
    dev = GemmDevice(SimSerial(top))
    with pytest.raises(ValueError, match=r"^a_codes must be \(M, K\) and b_codes \(K, N\) with "
                                         r"equal K >= 1, not \(2, 3\) and \(2, 2\)$"):
        dev.gemm(np.zeros((2, 3), int), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match=r"^b_codes must be int8 codes in 0\.\.255$"):
        dev.gemm(np.zeros((2, 2), int), np.full((2, 2), 256))
    with pytest.raises(ValueError, match=r"^M must be in 1\.\.4 \(the device's buffer depth\), "
                                         r"not 5$"):
        dev.run(5, 1, False)
    with pytest.raises(TypeError, match=r"^port must be a device path or an object with read"):
        GemmDevice(object())


@pytest.mark.skipif(importlib.util.find_spec("serial") is not None, reason="pyserial installed")
def test_device_path_needs_pyserial():
    with pytest.raises(RuntimeError, match=r"needs pyserial, which is not installed: "
                                           r"pip install pyserial$"):
        GemmDevice("/dev/ttyUSB0")


@pytest.mark.parametrize("kw, msg", [
    (dict(pe="overq"), r"^pe must be one of int, fp, not 'overq'$"),
    (dict(depth=0), r"^depth must be an integer from 1 to 65536, not 0$"),
    (dict(divisor=2), r"^divisor must be an integer from 4 to 1048576, not 2$"),
    (dict(a_format="int12"), r"^a_format must be at most 8 bits wide \(one byte per code\), "
                             r"not 'int12'$"),
    (dict(rows=0), r"^rows must be an integer from 1 to 128, not 0$"),
    (dict(dataflow="os"), r"^dataflow is fixed to 'ws' in GemmTop$"),
])
def test_top_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        GemmTop(**kw)


# -- board builds -------------------------------------------------------------------------------

_TIM = """Info: Device utilisation:
Info: 	         ICESTORM_LC:  1448/ 5280    27%
Info: 	        ICESTORM_RAM:     5/   30    16%
Info: 	               SB_IO:     4/   39    10%
Info: 	        ICESTORM_DSP:     0/    8     0%
Info: Max frequency for clock 'clk12_0__io': 30.10 MHz (PASS at 12.00 MHz)
Info: Device utilisation:
Info: 	         ICESTORM_LC:  1450/ 5280    27%
Info: 	        ICESTORM_RAM:     5/   30    16%
Info: Max frequency for clock 'clk12_0__io': 32.81 MHz (PASS at 12.00 MHz)
"""


def test_nextpnr_log_parsing():
    from lowbit.fpga.boards import _fmax, _utilisation
    assert _fmax(_TIM) == 32.81                      # the last (post-route) figure
    assert _utilisation(_TIM) == {"ICESTORM_LC": [1450, 5280], "ICESTORM_RAM": [5, 30]}
    assert _fmax("no timing") is None


def test_build_parameters():
    from lowbit.fpga import boards
    with pytest.raises(ValueError, match=r"^board must be one of ulx3s-85f, icebreaker, not 'x'$"):
        boards.build("x", 2, 2, "int", build_dir="unused")
    with pytest.raises(ValueError, match=r"^baud must be an integer from 300 to 3000000 \(design "
                                         r"clock 12 MHz / 4\), not 5$"):
        boards.build("icebreaker", 2, 2, "int", build_dir="unused", baud=5)
    with pytest.raises(ValueError, match=r"^baud must be an integer from 300 to 1500000 \(design "
                                         r"clock 6 MHz / 4\), not 2000000$"):
        boards.build("icebreaker", 2, 2, "int", build_dir="unused", baud=2_000_000, clock_div=2)
    with pytest.raises(ValueError, match=r"^clock_div must be an integer from 1 to 64, not 0$"):
        boards.build("icebreaker", 2, 2, "int", build_dir="unused", clock_div=0)
    with pytest.raises(ValueError, match=r"^dsp must be one of auto, on, off, not 'x'$"):
        boards.build("icebreaker", 2, 2, "int", build_dir="unused", dsp="x")


@pytest.mark.parametrize("d", [2, 3, 5])
def test_divided_clock(d):
    """``sync`` = board clock / d: its rising edges are exactly d board cycles apart, the clock is
    high for d // 2 board cycles of each period, and ``sync`` leaves reset after 2**por_bits of
    its own cycles (a counter in ``sync`` counts from then on)."""
    from amaranth.hdl import ClockDomain, Signal
    from lowbit.fpga.boards import DividedClock
    m = Module()
    m.domains.board = ClockDomain("board", reset_less=True)
    m.domains.sync = ClockDomain("sync")
    m.submodules.div = div = DividedClock(d, por_bits=2)
    n = Signal(16)
    m.d.sync += n.eq(n + 1)
    trace = []

    async def bench(ctx):
        for _ in range(40 * d):
            await ctx.tick("board")
            trace.append((ctx.get(div.clk), ctx.get(n)))
    sim = Simulator(m)
    sim.add_clock(1e-6, domain="board")
    sim.add_testbench(bench)
    sim.run()
    clk = [c for c, _ in trace]
    rises = [i for i in range(1, len(clk)) if clk[i] and not clk[i - 1]]
    assert len(rises) >= 30 and all(b - a == d for a, b in zip(rises, rises[1:]))
    period = clk[rises[3]:rises[4]]
    assert period == [1] * (d // 2) + [0] * (d - d // 2)
    counts = [cnt for _, cnt in trace]
    # n is held at 0 through the 2**2 = 4 sync edges of power-on reset, then counts sync edges
    # (a rise at the first sample, from the initial 0, is an edge too)
    edges = len(rises) + clk[0]
    assert counts[-1] == edges - 4
    first = counts.index(1)
    assert sum(1 for r in rises if r <= first) + clk[0] == 5


def test_divided_clock_parameters():
    from lowbit.fpga.boards import DividedClock
    with pytest.raises(ValueError, match=r"^d must be an integer from 2 to 64, not 1$"):
        DividedClock(1)
    with pytest.raises(ValueError, match=r"^por_bits must be an integer from 0 to 24, not -1$"):
        DividedClock(2, por_bits=-1)


@pytest.mark.synth
def test_icebreaker_bitstream(tmp_path):
    """A 2x2 INT8 array for the iCEBreaker (about 20-30 s of Yosys + nextpnr + icepack):
    a bitstream is written, the four multipliers are in SB_MAC16 blocks, the buffers in block
    RAM, and timing is met at the board's 12 MHz."""
    from lowbit.fpga import boards
    r = boards.build("icebreaker", 2, 2, "int", build_dir=tmp_path, depth=256)
    bit = tmp_path / "lowbit_gemm.bin"
    assert r.bitstream == str(bit) and bit.stat().st_size > 100_000   # UP5K image: ~104 kB
    assert r.dsp == 4 and r.utilisation["ICESTORM_DSP"] == [4, 8]
    assert r.bram >= 3
    assert r.timing_met and r.fmax_mhz > 12
    assert r.params["divisor"] == 104


@pytest.mark.synth
def test_icebreaker_divided_clock(tmp_path):
    """A 1x1 INT8 array at 12 MHz / 3 (about 20 s): nextpnr receives the divided clock's 4 MHz
    as a constraint on its net (a constraint on a net that synthesis renamed would be ignored
    with a warning, and the divided clock checked against nextpnr's default instead), the UART
    divisor follows the design clock, and timing is met at 4 MHz."""
    from lowbit.fpga import boards
    r = boards.build("icebreaker", 1, 1, "int", build_dir=tmp_path, clock_div=3)
    tim = (tmp_path / "lowbit_gemm.tim").read_text()
    assert "constraining clock net 'clock_div.clk' to 4.00 MHz" in tim
    assert "does not exist in design" not in tim
    assert re.search(r"Max frequency for clock\s+'clk_\$glb_clk': [0-9.]+ MHz \(PASS at 4\.00 MHz\)",
                     tim)
    assert r.clock_mhz == 4 and r.params["clock_div"] == 3 and r.params["divisor"] == 35
    assert r.timing_met and r.bitstream


def test_build_script_timeout_kills_the_tools(tmp_path):
    """A build script that outlives its timeout is stopped with everything it started (the
    tools run as grandchildren: sh -> nice -> yowasp), not left running."""
    import os
    import time

    from lowbit.fpga import boards
    pidfile = tmp_path / "pid"
    script = f"sh -c 'echo $$ > {pidfile}; exec sleep 30' & wait"
    t0 = time.monotonic()
    with pytest.raises(boards.BuildError, match=r"^build did not finish within 1 s \(timed out"):
        boards._run_script(["sh", "-c", script], tmp_path, dict(os.environ), 1)
    assert time.monotonic() - t0 < 10
    pid = int(pidfile.read_text())
    for _ in range(50):                 # reaped by init; gone (or a zombie) once killed
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"grandchild {pid} still running")
    out = boards._run_script(["sh", "-c", "echo hi; exit 3"], tmp_path, dict(os.environ), 10)
    assert out.returncode == 3 and out.stdout == "hi\n"
