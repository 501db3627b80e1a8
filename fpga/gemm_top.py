"""A weight-stationary :class:`~lowbit.hdl.systolic.SystolicArray` behind a UART command interface.

:class:`GemmTop` is the whole FPGA design except the pad buffers (those are added by
:mod:`lowbit.fpga.boards`): two UART ports (:mod:`lowbit.fpga.uart`), three on-chip buffers
(Amaranth ``lib.memory`` memories, which Yosys maps to block RAM), a byte-protocol command
decoder, and a run controller that streams the buffers through the array's valid/ready ports.
The host side is :class:`lowbit.fpga.host.GemmDevice`.

Buffers
-------
``W``  ``R`` rows of ``C`` weight codes: one weight tile ``B[k0:k0+R, n0:n0+C]`` (row ``r`` =
       tile row ``r``).
``A``  ``depth`` rows of ``R`` activation codes: row ``t`` = ``A[m0+t, k0:k0+R]``.
``Cb`` ``depth`` rows of ``C`` accumulator codes: results, and the partial sums a run may
       continue (K-folds chained on chip).

Byte protocol
-------------
Strictly request/response: the host sends one command (opcode byte, arguments, payload) and
reads the whole response before sending the next. Multi-byte integers are little-endian.
Every response starts with a status byte: ``0x00`` OK, ``0xE0`` unknown opcode, ``0xE1``
argument out of range (the command is then ignored; the payload bytes a rejected ``A``
command would have carried must not be sent, which the host driver guarantees by checking
the arguments itself first).

======  ==========================================  ============================================
opcode  host sends after the opcode                 device answers
======  ==========================================  ============================================
``I``   (nothing)                                   ``00``, length ``L`` (1 byte), ``L`` ASCII
        (0x49, info)                                bytes: ``lowbit-gemm/1`` and ``key=value``
                                                    words (rows, cols, depth, dataflow, pe, the
                                                    array's format parameters)
``W``   ``R * C`` bytes: tile rows 0..R-1, each     ``00`` after the last byte
(0x57)  ``C`` codes (columns 0..C-1), one byte per
        code (low bits used)
``A``   ``M - 1`` (2 bytes), then ``M * R`` bytes:  ``00`` after the last byte; ``E1`` if
(0x41)  rows 0..M-1 of ``R`` codes (lanes 0..R-1)   ``M > depth``
``R``   ``M - 1`` (2 bytes), ``kv`` (1 byte: lanes  ``00`` then the cycle count (4 bytes): from
(0x52)  0..kv-1 carry data, 1..R), flags (1 byte;   the first beat the array accepted (cycle 0)
        bit 0: continue the sums in ``Cb``, else    to its last result beat (the simulator's
        start from the empty sum; others 0)         ``Schedule(M, kv, C, R, C, "ws").latency``
                                                    for one fold); ``E1`` if an argument is out
                                                    of range
``C``   ``M - 1`` (2 bytes)                         ``00``, then rows 0..M-1 of ``Cb``: ``C``
(0x43)                                              codes each, ``ceil(acc_width / 8)`` bytes
                                                    per code (little-endian, zero-extended)
======  ==========================================  ============================================

A run (``R``) is one weight-stationary fold of the array (module docstring of
:mod:`lowbit.hdl.systolic`): ``R`` load beats from ``W`` (last tile row first), then ``M``
data beats, beat ``t`` carrying ``A`` row ``t``, lane mask ``i < kv`` and, as the column-top
partial sums, ``Cb`` row ``t`` (flag bit 0) or the empty sum (INT 0, FP ``-0``); result beat
``t`` is written to ``Cb`` row ``t``. The beats come from the buffers' synchronous read ports
through a one-beat output register, one beat per cycle, so the measured cycle count is the
simulator's schedule. Numerics: the array's, i.e. :func:`lowbit.models.systolic.gemm_numerics`
with its PE (the host chains K-folds through ``Cb``, in increasing ``k``).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lowbit.hdl.systolic import MAX_DIM, SystolicArray, pe_spec
from lowbit.models.checks import check_choice, check_int
from lowbit.models.systolic import Schedule

from .uart import UartRx, UartTx, check_divisor

__all__ = ["GemmTop", "OP_INFO", "OP_LOAD_W", "OP_LOAD_A", "OP_RUN", "OP_READ_C", "STATUS_OK",
           "ERR_OPCODE", "ERR_ARG", "MAGIC", "MAX_DEPTH", "PES"]

OP_INFO, OP_LOAD_W, OP_LOAD_A, OP_RUN, OP_READ_C = (ord(c) for c in "IWARC")
STATUS_OK, ERR_OPCODE, ERR_ARG = 0x00, 0xE0, 0xE1
MAGIC = "lowbit-gemm/1"
MAX_DEPTH = 1 << 16
PES = ("int", "fp")


class GemmTop(wiring.Component):
    """UART-controlled GEMM engine: ``SystolicArray`` (WS) + buffers + command decoder.

    Parameters
    ----------
    rows, cols : int
        Array size ``R x C`` (1..128 each, :class:`~lowbit.hdl.systolic.SystolicArray`).
    pe : str or PESpec
        A PE name of an INT or FP MAC PE (``int8``, ``e4m3_fp32``, ``e5m2xe4m3_fp16_two_roundings``,
        ...; :func:`lowbit.models.systolic.parse_pe`), or the kind ``"int"`` / ``"fp"`` with
        ``array_params``.
    depth : int
        Rows of the ``A`` and ``Cb`` buffers (largest ``M`` of one run), 1..65536.
    divisor : int
        UART clock cycles per bit (``round(f_clk / baud)``), 4..2**20.
    pe_stages : int
        Depth of the array's pipelined PEs (default 1; :class:`~lowbit.hdl.systolic.SystolicArray`:
        INT 1..3, FP fused / two roundings 1..6). The ``I`` descriptor reports it when above 1.
    **array_params
        Passed to :class:`~lowbit.hdl.systolic.SystolicArray` (``a_format``, ``b_format``,
        ``acc_bits``, ``overflow``, ``acc_format``, ``mode``, ``flush_subnormals``,
        ``saturate``). Operand formats must be at most 8 bits wide (one byte per code).

    Members
    -------
    rx : In(1)
        UART receive line (host -> device), idle high.
    tx : Out(1)
        UART transmit line (device -> host), idle high.
    busy : Out(1)
        A command is being executed (for an LED).

    Numerics: those of the array (rounding, overflow: see its ``contract()``). Latency of a
    run: the simulator's schedule, reported by the device (see the module docstring).

    Raises
    ------
    ValueError
        A parameter out of range (the message names it and the allowed values).
    """

    def __init__(self, rows=4, cols=4, pe="int", depth=256, divisor=217, pe_stages=1,
                 **array_params):
        self._depth = check_int("depth", depth, 1, MAX_DEPTH)
        self._divisor = check_divisor(divisor)
        if "dataflow" in array_params:
            raise ValueError("dataflow is fixed to 'ws' in GemmTop")
        spec = pe_spec(pe, **array_params)
        check_choice("pe", spec.kind, PES)
        for name, fmt in (("a_format", spec.a_format), ("b_format", spec.b_format)):
            if fmt.bits > 8:
                raise ValueError(f"{name} must be at most 8 bits wide (one byte per code), "
                                 f"not {fmt.name!r}")
        check_int("rows", rows, 1, MAX_DIM)          # before the array is built
        check_int("cols", cols, 1, MAX_DIM)
        self._array = SystolicArray(rows, cols, spec, "ws", pe_stages=pe_stages)
        arr = self._array
        pe = spec.kind
        self._params = {"rows": arr.rows, "cols": arr.cols, "depth": self._depth,
                        "dataflow": "ws", "pe": pe, "a_format": arr.a_format.name,
                        "b_format": arr.b_format.name}
        con = arr.contract()
        if pe == "int":
            self._params.update(acc_bits=con["acc_bits"], overflow=con["overflow"])
        else:
            self._params.update(acc_format=con["acc_format"], mode=con["mode"],
                                flush_subnormals=int(arr.spec.flush_subnormals),
                                saturate=int(arr.spec.saturate))
        if arr.pe_stages > 1:       # (one-cycle PEs: the descriptor as before pipelined PEs)
            self._params["pe_stages"] = arr.pe_stages
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    rows = property(lambda self: self._array.rows)
    cols = property(lambda self: self._array.cols)
    depth = property(lambda self: self._depth)
    divisor = property(lambda self: self._divisor)
    array = property(lambda self: self._array)

    @property
    def acc_bytes(self):
        """Bytes per accumulator code in ``C`` responses."""
        return (self._array.acc_width + 7) // 8

    @property
    def params(self):
        """The configuration the ``I`` command reports (SystolicArray keyword arguments plus
        ``depth``)."""
        return dict(self._params)

    @property
    def descriptor(self):
        """The ASCII text of the ``I`` response."""
        return " ".join([MAGIC] + [f"{k}={v}" for k, v in self._params.items()])

    @property
    def latency(self):
        """Cycles of one run of ``M`` rows with ``kv`` lanes: see :meth:`run_cycles`; the array's
        beat-to-result latency is ``R + C - 1``."""
        return self._array.latency

    def run_cycles(self, M, kv=None):
        """Cycle count the device reports for a run of ``M`` rows: the simulator's
        ``Schedule(M, kv, C, R, C, "ws", pe_stages).latency`` (one fold) = ``2R + M + C - 2``
        with one-cycle PEs, ``R + M + R * S + C - 2`` with ``pe_stages = S``."""
        R, C = self.rows, self.cols
        return Schedule(M, kv or R, C, R, C, "ws", self._array.pe_stages).latency

    @property
    def port_docs(self):
        return {"clk": "clock", "rst": "synchronous reset, active high",
                "rx": f"UART receive (8N1, {self._divisor} clock cycles per bit), idle high",
                "tx": f"UART transmit (8N1, {self._divisor} clock cycles per bit), idle high",
                "busy": "a command is executing"}

    def contract(self):
        c = {"operation": "C = A @ B tiles over a UART byte protocol (lowbit.fpga.gemm_top)",
             "protocol": MAGIC, "depth": self._depth, "uart_divisor": self._divisor,
             "run_cycles": "Schedule(M, kv, C, R, C, 'ws').latency = 2R + M + C - 2",
             "array": self._array.contract()}
        return c

    def elaborate(self, platform):
        m = Module()
        arr = self._array
        R, C, D = arr.rows, arr.cols, self._depth
        aw, bw, accw = arr.a_lane_width, arr.b_lane_width, arr.acc_width
        accB = self.acc_bytes

        m.submodules.uart_rx = urx = UartRx(self._divisor)
        m.submodules.uart_tx = utx = UartTx(self._divisor)
        m.submodules.array = arr
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        rxb, txb = urx.o, utx.i

        m.submodules.buf_w = mem_w = Memory(shape=unsigned(C * bw), depth=R, init=[])
        m.submodules.buf_a = mem_a = Memory(shape=unsigned(R * aw), depth=D, init=[])
        m.submodules.buf_c = mem_c = Memory(shape=unsigned(C * accw), depth=D, init=[])
        w_wr, w_rd = mem_w.write_port(), mem_w.read_port()
        a_wr, a_rd = mem_a.write_port(), mem_a.read_port()
        c_wr, c_rd = mem_c.write_port(), mem_c.read_port()
        for p in (w_rd, a_rd, c_rd):
            m.d.comb += p.en.eq(0)

        SRW = max(8 * R, 8 * C, 8 * C * accB)
        sr = Signal(SRW)                      # row assembly (load) / row serialiser (read)
        op = Signal(8)
        args = Signal(32)
        argn = Signal(range(5))
        nargs = Signal(range(5))
        n_rows = Signal(17)                   # M of the current command
        row = Signal(16)
        bcnt = Signal(range(max(R, C, C * accB) + 1))
        kv = Signal(range(R + 1))
        accf = Signal()
        resp = Signal(40)                     # status (+ cycle count), LSB first
        resp_n = Signal(range(6))
        desc = [STATUS_OK, len(self.descriptor)] + list(self.descriptor.encode("ascii"))
        if len(self.descriptor) > 255:
            raise ValueError("descriptor longer than 255 bytes")
        rom = Array(Const(b, 8) for b in desc)
        idx = Signal(range(len(desc)))

        # run controller state
        bi = Signal(18)                       # next beat to read from the buffers
        ov = Signal()                         # output register holds a beat
        is_load = Signal()
        is_last = Signal()
        wr_row = Signal(16)
        counting = Signal()
        cycles = Signal(32)

        mlen = Signal(16)                     # M - 1 argument
        m.d.comb += mlen.eq(Mux(op == OP_RUN, args[:16], args[16:]))

        def respond(status, extra=None):
            if extra is None:
                return [resp_n.eq(1), resp.eq(status)]
            return [resp_n.eq(5), resp.eq(Cat(Const(status, 8), extra))]

        # array operand beat: buffers' read data + registered beat flags
        p = arr.i.payload
        empty = Cat(*[Const(arr.empty_sum, accw) for _ in range(C)])
        m.d.comb += [
            arr.i.valid.eq(ov),
            p.a.eq(a_rd.data),
            p.b.eq(w_rd.data),
            p.mask.eq(Cat(*[Const(i, range(R + 1)) < kv for i in range(R)])),
            p.psum.eq(Mux(accf, c_rd.data, empty)),
            p.load.eq(is_load),
            p.last.eq(is_last),
            arr.o.ready.eq(1),
            c_wr.data.eq(arr.o.payload.acc),
        ]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += rxb.ready.eq(1)
                with m.If(rxb.valid):
                    m.d.sync += [op.eq(rxb.payload), argn.eq(0), row.eq(0), bcnt.eq(0)]
                    with m.Switch(rxb.payload):
                        with m.Case(OP_INFO):
                            m.d.sync += idx.eq(0)
                            m.next = "INFO"
                        with m.Case(OP_LOAD_W):
                            m.d.sync += n_rows.eq(R)
                            m.next = "LOAD"
                        with m.Case(OP_LOAD_A, OP_READ_C):
                            m.d.sync += nargs.eq(2)
                            m.next = "ARGS"
                        with m.Case(OP_RUN):
                            m.d.sync += nargs.eq(4)
                            m.next = "ARGS"
                        with m.Default():
                            m.d.sync += respond(ERR_OPCODE)
                            m.next = "RESP"
            with m.State("ARGS"):
                m.d.comb += rxb.ready.eq(1)
                with m.If(rxb.valid):
                    m.d.sync += [args.eq(Cat(args[8:], rxb.payload)), argn.eq(argn + 1)]
                    with m.If(argn + 1 == nargs):
                        m.next = "CHECK"
            with m.State("CHECK"):
                m.d.sync += n_rows.eq(mlen + 1)
                bad_m = mlen >= D
                with m.If(op == OP_RUN):
                    k = args[16:24]
                    with m.If(bad_m | (k == 0) | (k > R) | (args[24:] > 1)):
                        m.d.sync += respond(ERR_ARG)
                        m.next = "RESP"
                    with m.Else():
                        m.d.sync += [kv.eq(k), accf.eq(args[24]), bi.eq(0), ov.eq(0),
                                     wr_row.eq(0), counting.eq(0), cycles.eq(0)]
                        m.next = "RUN"
                with m.Elif(bad_m):
                    m.d.sync += respond(ERR_ARG)
                    m.next = "RESP"
                with m.Elif(op == OP_LOAD_A):
                    m.next = "LOAD"
                with m.Else():
                    m.d.sync += respond(STATUS_OK)
                    m.next = "C_STATUS"
            with m.State("LOAD"):
                m.d.comb += rxb.ready.eq(1)
                nbytes = Mux(op == OP_LOAD_W, C, R)
                with m.If(rxb.valid):
                    m.d.sync += [sr.eq(Cat(sr[8:], rxb.payload)), bcnt.eq(bcnt + 1)]
                    with m.If(bcnt + 1 == nbytes):
                        m.next = "LWRITE"
            with m.State("LWRITE"):
                def codes(n, w):                 # n bytes at the top of sr -> n w-bit codes
                    base = SRW - 8 * n
                    return Cat(*[sr[base + 8 * j: base + 8 * j + w] for j in range(n)])
                with m.If(op == OP_LOAD_W):
                    m.d.comb += [w_wr.en.eq(1), w_wr.addr.eq(row), w_wr.data.eq(codes(C, bw))]
                with m.Else():
                    m.d.comb += [a_wr.en.eq(1), a_wr.addr.eq(row), a_wr.data.eq(codes(R, aw))]
                m.d.sync += [row.eq(row + 1), bcnt.eq(0)]
                with m.If(row + 1 == n_rows):
                    m.d.sync += respond(STATUS_OK)
                    m.next = "RESP"
                with m.Else():
                    m.next = "LOAD"
            with m.State("RESP"):
                m.d.comb += [txb.valid.eq(1), txb.payload.eq(resp[:8])]
                with m.If(txb.ready):
                    m.d.sync += [resp.eq(resp >> 8), resp_n.eq(resp_n - 1)]
                    with m.If(resp_n == 1):
                        m.next = "IDLE"
            with m.State("INFO"):
                m.d.comb += [txb.valid.eq(1), txb.payload.eq(rom[idx])]
                with m.If(txb.ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == len(desc) - 1):
                        m.next = "IDLE"
            with m.State("RUN"):
                total = R + n_rows
                more = bi < total
                adv = ~ov | arr.i.ready
                with m.If(adv):
                    m.d.comb += [w_rd.en.eq(1), a_rd.en.eq(1), c_rd.en.eq(1),
                                 w_rd.addr.eq(R - 1 - bi), a_rd.addr.eq(bi - R),
                                 c_rd.addr.eq(bi - R)]
                    m.d.sync += [ov.eq(more), is_load.eq(bi < R), is_last.eq(bi + 1 == total)]
                    with m.If(more):
                        m.d.sync += bi.eq(bi + 1)
                # cycle 0 = the first beat the array accepts
                with m.If(arr.i.valid & arr.i.ready & ~counting):
                    m.d.sync += [counting.eq(1), cycles.eq(1)]
                with m.Elif(counting):
                    m.d.sync += cycles.eq(cycles + 1)
                with m.If(arr.o.valid):
                    m.d.comb += [c_wr.en.eq(1), c_wr.addr.eq(wr_row)]
                    m.d.sync += wr_row.eq(wr_row + 1)
                    with m.If(arr.o.payload.last):
                        m.d.sync += respond(STATUS_OK, cycles)
                        m.next = "RESP"
            with m.State("C_STATUS"):
                m.d.comb += [txb.valid.eq(1), txb.payload.eq(STATUS_OK)]
                with m.If(txb.ready):
                    m.next = "C_RD"
            with m.State("C_RD"):
                m.d.comb += [c_rd.en.eq(1), c_rd.addr.eq(row)]
                m.next = "C_LD"
            with m.State("C_LD"):
                pad = 8 * accB - accw
                m.d.sync += [sr.eq(Cat(*[Cat(c_rd.data[j * accw:(j + 1) * accw], Const(0, pad))
                                         for j in range(C)])), bcnt.eq(0)]
                m.next = "C_SEND"
            with m.State("C_SEND"):
                m.d.comb += [txb.valid.eq(1), txb.payload.eq(sr[:8])]
                with m.If(txb.ready):
                    m.d.sync += [sr.eq(sr >> 8), bcnt.eq(bcnt + 1)]
                    with m.If(bcnt + 1 == C * accB):
                        m.d.sync += row.eq(row + 1)
                        with m.If(row + 1 == n_rows):
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "C_RD"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
