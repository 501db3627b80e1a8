"""Host side of :class:`lowbit.fpga.gemm_top.GemmTop`: a GEMM driver over a serial link.

:class:`GemmDevice` speaks the byte protocol of :mod:`lowbit.fpga.gemm_top` over any object
with ``read(n) -> bytes`` and ``write(bytes)`` (a pyserial ``Serial``, or :class:`SimSerial`,
which bridges the bytes to the UART pins of the same top level running in Amaranth's
simulator). pyserial is optional: it is imported only when a device path is given.

``GemmDevice.gemm(A, B)`` runs a GEMM of any ``M, K, N`` by tiling it over the array:
for every column tile ``n0`` (``C`` wide) and row block ``m0`` (``depth`` rows), the K-folds
``k0 = 0, R, 2R, ...`` each load the weight tile ``B[k0:k0+R, n0:n0+C]`` (zero-padded) and the
activations ``A[m0:m0+depth, k0:k0+R]``, and run with ``kv = min(R, K - k0)`` data lanes, the
first K-fold from the empty sum and the others continuing the sums in the device's result
buffer; then the block's results are read back. Every output is thus one accumulation chain over
``k = 0..K-1`` in increasing order, which is the order of
:func:`lowbit.models.systolic.gemm_numerics`.
"""

import collections
import os

import numpy as np
from amaranth.sim import Simulator

from lowbit.models.systolic import PESpec, gemm_numerics

from .gemm_top import (ERR_ARG, ERR_OPCODE, MAGIC, OP_INFO, OP_LOAD_A, OP_LOAD_W, OP_READ_C,
                       OP_RUN, STATUS_OK)

__all__ = ["GemmDevice", "SimSerial", "ProtocolError", "open_serial"]


class ProtocolError(IOError):
    """The device answered with an error status, too few bytes, or something unexpected."""


def open_serial(path, baud=115200, timeout=5.0):
    """Open ``path`` with pyserial (imported here, so that it stays an optional dependency)."""
    try:
        import serial  # pyserial is optional: only a real board's serial port needs it
    except ImportError:
        raise RuntimeError(f"opening the serial device {path!r} needs pyserial, which is not "
                           f"installed: pip install pyserial") from None
    return serial.Serial(str(path), baudrate=baud, timeout=timeout)


class GemmDevice:
    """Driver of a :class:`~lowbit.fpga.gemm_top.GemmTop` reached over a byte link.

    Parameters
    ----------
    port : str, os.PathLike or object
        A serial device path (opened with pyserial, which must then be installed) or any
        object with ``read(n) -> bytes`` (may return fewer bytes on timeout) and
        ``write(data)``.
    baud : int
        Baud rate when ``port`` is a path (the bitstream's: 115200 by default).
    timeout : float
        pyserial read timeout in seconds when ``port`` is a path.

    Attributes
    ----------
    params : dict
        The device's configuration from its ``I`` response (SystolicArray keyword arguments
        plus ``depth``).
    spec : lowbit.models.systolic.PESpec
        The device's processing element (formats, accumulator, golden numerics).
    runs : list of (M, kv, cycles)
        Every run of the last :meth:`gemm` and the cycle count the device measured.
    """

    def __init__(self, port, *, baud=115200, timeout=5.0):
        if isinstance(port, (str, os.PathLike)):
            port = open_serial(port, baud, timeout)
        elif not (callable(getattr(port, "read", None)) and callable(getattr(port, "write", None))):
            raise TypeError(f"port must be a device path or an object with read() and write(), "
                            f"not {port!r}")
        self.port = port
        self.params = self.info()
        p = self.params
        self.spec = PESpec(p["pe"], p.get("a_format"), p.get("b_format"),
                           acc_bits=p.get("acc_bits", 32), overflow=p.get("overflow", "wrap"),
                           acc=p.get("acc_format"), mode=p.get("mode", "fused"),
                           flush_subnormals=bool(p.get("flush_subnormals", 0)),
                           saturate=bool(p.get("saturate", 0)))
        self.rows, self.cols = p["rows"], p["cols"]
        self.dataflow = p.get("dataflow", "ws")
        self.depth = p["depth"]
        self.acc_bytes = (self.spec.result_width + 7) // 8
        self.runs = []

    # -- link --------------------------------------------------------------------------------
    def _read(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.port.read(n - len(buf))
            if not chunk:
                raise ProtocolError(f"timeout: the device sent {len(buf)} of {n} expected bytes")
            buf += chunk
        return bytes(buf)

    def _status(self, what):
        s = self._read(1)[0]
        if s != STATUS_OK:
            reason = {ERR_OPCODE: "unknown opcode", ERR_ARG: "argument out of range"}.get(
                s, "unexpected byte")
            raise ProtocolError(f"{what}: device answered 0x{s:02x} ({reason})")

    def _write(self, data):
        self.port.write(bytes(data))

    # -- commands ------------------------------------------------------------------------------
    def info(self):
        """Send ``I``; return the device's configuration as a dict (ints where numeric)."""
        self._write([OP_INFO])
        self._status("info")
        text = self._read(self._read(1)[0]).decode("ascii")
        words = text.split()
        if not words or words[0] != MAGIC:
            raise ProtocolError(f"not a {MAGIC} device: {text!r}")
        out = {}
        for w in words[1:]:
            k, _, v = w.partition("=")
            out[k] = int(v) if v.lstrip("-").isdigit() else v
        return out

    def _check_m(self, M):
        if not 1 <= M <= self.depth:
            raise ValueError(f"M must be in 1..{self.depth} (the device's buffer depth), not {M}")

    def load_weights(self, tile):
        """``W``: an ``R x C`` tile of weight codes."""
        tile = np.asarray(tile, dtype=np.int64)
        if tile.shape != (self.rows, self.cols):
            raise ValueError(f"tile must be {self.rows} x {self.cols}, not {tile.shape}")
        self._write(bytes([OP_LOAD_W]) + (tile & 0xFF).astype(np.uint8).tobytes())
        self._status("load weights")

    def load_activations(self, rows):
        """``A``: ``M x R`` activation codes (``M <= depth``)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 2 or rows.shape[1] != self.rows:
            raise ValueError(f"rows must be M x {self.rows}, not {rows.shape}")
        M = rows.shape[0]
        self._check_m(M)
        self._write(bytes([OP_LOAD_A]) + (M - 1).to_bytes(2, "little")
                    + (rows & 0xFF).astype(np.uint8).tobytes())
        self._status("load activations")

    def run(self, M, kv, accumulate):
        """``R``: one fold of ``M`` rows with ``kv`` data lanes; returns the device's cycle
        count (first beat accepted to last result)."""
        self._check_m(M)
        if not 1 <= kv <= self.rows:
            raise ValueError(f"kv must be in 1..{self.rows}, not {kv}")
        self._write(bytes([OP_RUN]) + (M - 1).to_bytes(2, "little")
                    + bytes([kv, int(bool(accumulate))]))
        self._status("run")
        return int.from_bytes(self._read(4), "little")

    def read_results(self, M):
        """``C``: the first ``M`` rows of the result buffer as unsigned codes, shape ``(M, C)``."""
        self._check_m(M)
        self._write(bytes([OP_READ_C]) + (M - 1).to_bytes(2, "little"))
        self._status("read results")
        raw = self._read(M * self.cols * self.acc_bytes)
        out = np.zeros((M, self.cols), dtype=object)
        B = self.acc_bytes
        for i in range(M):
            for j in range(self.cols):
                o = (i * self.cols + j) * B
                out[i, j] = int.from_bytes(raw[o:o + B], "little")
        return out

    # -- GEMM ------------------------------------------------------------------------------------
    def gemm_codes(self, a_codes, b_codes):
        """``C = A @ B`` on the device; unsigned accumulator codes, shape ``(M, N)``.

        Raises
        ------
        ValueError
            Shapes that do not match, or codes outside ``0 .. 2**bits - 1`` of the formats.
        """
        A = np.asarray(a_codes, dtype=np.int64)
        B = np.asarray(b_codes, dtype=np.int64)
        if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0] or A.size == 0 or B.size == 0:
            raise ValueError(f"a_codes must be (M, K) and b_codes (K, N) with equal K >= 1, not "
                             f"{A.shape} and {B.shape}")
        for name, X, fmt in (("a_codes", A, self.spec.a_format),
                             ("b_codes", B, self.spec.b_format)):
            if X.min() < 0 or X.max() >= 1 << fmt.bits:
                raise ValueError(f"{name} must be {fmt.name} codes in 0..{(1 << fmt.bits) - 1}")
        R, C, depth = self.rows, self.cols, self.depth
        M, K = A.shape
        N = B.shape[1]
        out = np.zeros((M, N), dtype=object)
        self.runs = []
        for n0 in range(0, N, C):
            nt = min(C, N - n0)
            for m0 in range(0, M, depth):
                mt = min(depth, M - m0)
                for k0 in range(0, K, R):
                    kt = min(R, K - k0)
                    w = np.zeros((R, C), dtype=np.int64)
                    w[:kt, :nt] = B[k0:k0 + kt, n0:n0 + nt]
                    a = np.zeros((mt, R), dtype=np.int64)
                    a[:, :kt] = A[m0:m0 + mt, k0:k0 + kt]
                    self.load_weights(w)
                    self.load_activations(a)
                    self.runs.append((mt, kt, self.run(mt, kt, accumulate=k0 > 0)))
                out[m0:m0 + mt, n0:n0 + nt] = self.read_results(mt)[:, :nt]
        return out

    def gemm(self, a_codes, b_codes):
        """``C = A @ B`` on the device in :func:`lowbit.models.systolic.gemm_numerics`'s
        representation (INT PE: signed int64 values; FP PE: uint64 accumulator codes)."""
        return self.spec.from_codes(self.gemm_codes(a_codes, b_codes))

    def golden(self, a_codes, b_codes):
        """The golden GEMM of the device's configuration (same representation as :meth:`gemm`)."""
        return gemm_numerics(np.asarray(a_codes), np.asarray(b_codes), self.rows, self.cols,
                             self.dataflow, self.spec)


class SimSerial:
    """A serial-port stand-in that runs a :class:`~lowbit.fpga.gemm_top.GemmTop` in Amaranth's
    simulator and bridges bytes to and from its UART pins.

    ``write(data)`` queues bytes, which a simulation process shifts into ``top.rx`` as 8N1
    frames (``top.divisor`` cycles per bit, back to back); another process decodes the frames
    on ``top.tx``. ``read(n)`` advances the simulation until ``n`` bytes have arrived or
    ``timeout_cycles`` clock cycles have passed without them, and returns what it has (like
    pyserial on a timeout).

    Parameters
    ----------
    top : GemmTop
        The design (its ``rx``, ``tx`` and ``divisor``).
    timeout_cycles : int
        Simulated clock cycles a ``read`` waits at most.
    vcd : str, optional
        Write a waveform there (for debugging only; slow).
    """

    PERIOD = 1e-6       # notional clock period (s): 1 MHz; the simulator has no real time

    def __init__(self, top, timeout_cycles=200_000, vcd=None):
        self.top = top
        self.timeout_cycles = int(timeout_cycles)
        self._out = collections.deque()
        self._in = bytearray()
        self.framing_errors = 0
        self.cycles = 0
        self.sim = Simulator(top)
        self.sim.add_clock(self.PERIOD)
        self.sim.add_testbench(self._drive, background=True)
        self.sim.add_testbench(self._watch, background=True)
        self._vcd = None
        if vcd:
            self._vcd = self.sim.write_vcd(vcd)
            self._vcd.__enter__()

    def close(self):
        if self._vcd is not None:
            self._vcd.__exit__(None, None, None)
            self._vcd = None

    async def _drive(self, ctx):
        T = self.top.divisor * self.PERIOD
        ctx.set(self.top.rx, 1)
        while True:
            if not self._out:
                await ctx.delay(10 * T)
                continue
            b = self._out.popleft()
            for v in [0] + [(b >> i) & 1 for i in range(8)] + [1]:
                ctx.set(self.top.rx, v)
                await ctx.delay(T)

    async def _watch(self, ctx):
        T = self.top.divisor * self.PERIOD
        while True:
            await ctx.negedge(self.top.tx)
            await ctx.delay(1.5 * T)
            b = 0
            for i in range(8):
                b |= ctx.get(self.top.tx) << i
                await ctx.delay(T)
            if ctx.get(self.top.tx):
                self._in.append(b)
            else:
                self.framing_errors += 1
            await ctx.delay(0.25 * T)     # leave the stop bit before looking for a start bit

    def write(self, data):
        self._out.extend(bytes(data))
        return len(data)

    def flush(self):
        pass

    def read(self, n):
        step = 10 * self.top.divisor
        waited = 0
        while len(self._in) < n and waited < self.timeout_cycles:
            k = min(step, self.timeout_cycles - waited)
            self.cycles += k
            waited += k
            self.sim.run_until(self.cycles * self.PERIOD)
        out = bytes(self._in[:n])
        del self._in[:n]
        return out
