"""8N1 UART receiver and transmitter (Amaranth 0.5) with a parameterised baud divisor.

Line format (the common asynchronous serial frame, e.g. TIA-232 / 16550 "8N1"): the idle line
is high; a frame is one start bit (low), 8 data bits least significant first, one stop bit
(high). Every bit lasts ``divisor`` clock cycles (``divisor = f_clk / baud``, rounded).

``UartRx`` synchronises ``rx`` with two flip-flops, waits ``divisor // 2`` cycles after the
falling edge of the start bit to reach its middle (a start bit that is no longer low there is
a glitch and is ignored), then samples each data bit and the stop bit ``divisor`` cycles apart.
A byte whose stop bit is low is dropped and ``error`` pulses for one cycle. A received byte is
held in ``o`` until taken; a byte that arrives while the previous one is still held replaces
it (overrun: ``error`` pulses too). ``UartTx`` sends one byte per ``i`` beat.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from lowbit.models.checks import check_int

__all__ = ["UartRx", "UartTx", "MIN_DIVISOR", "MAX_DIVISOR", "check_divisor"]

#: Smallest divisor: the receiver samples in the middle of a bit, after a 2-FF synchroniser
#: (2 cycles of delay); with 4 cycles per bit the sample point stays inside the bit.
MIN_DIVISOR = 4
MAX_DIVISOR = 1 << 20


def check_divisor(divisor):
    """``divisor`` (clock cycles per bit) as an int in ``MIN_DIVISOR..MAX_DIVISOR``."""
    return check_int("divisor", divisor, MIN_DIVISOR, MAX_DIVISOR)


class UartRx(wiring.Component):
    """UART receiver, 8N1, ``divisor`` clock cycles per bit.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, 4..2**20 (``round(f_clk / baud)``).

    Members
    -------
    rx : In(1)
        Serial input (asynchronous; idle high).
    o : Out(stream.Signature(8))
        Received bytes; ``valid`` stays high until ``ready``.
    error : Out(1)
        One-cycle pulse: framing error (low stop bit; byte dropped) or overrun (a byte
        replaced the one still held in ``o``).

    Latency: a byte is valid ``2 + divisor // 2 + 9 * divisor`` cycles (give or take one) after
    the falling edge of its start bit, in the middle of the stop bit.
    """

    def __init__(self, divisor):
        self._divisor = check_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)),
                          "error": Out(1)})

    divisor = property(lambda self: self._divisor)

    @property
    def latency(self):
        """Cycles from the start bit's falling edge to ``o.valid`` (middle of the stop bit)."""
        return 2 + self._divisor // 2 + 9 * self._divisor

    def elaborate(self, platform):
        m = Module()
        D = self._divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        cnt = Signal(range(D))
        bit = Signal(range(8))
        sr = Signal(8)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.sync += self.error.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += cnt.eq(D // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Elif(rx):
                    m.next = "IDLE"                      # glitch, not a start bit
                with m.Else():
                    m.d.sync += [cnt.eq(D - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Else():
                    m.d.sync += [sr.eq(Cat(sr[1:], rx)), cnt.eq(D - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Else():
                    with m.If(rx):
                        m.d.sync += [self.o.payload.eq(sr), self.o.valid.eq(1),
                                     self.error.eq(self.o.valid & ~self.o.ready)]
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                    # a low stop bit may be a break or a start bit: wait for the line to be idle
                    m.next = "WAIT_IDLE"
            with m.State("WAIT_IDLE"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """UART transmitter, 8N1, ``divisor`` clock cycles per bit.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, 4..2**20.

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send; one beat is taken when the transmitter is idle.
    tx : Out(1)
        Serial output (idle high), driven straight from a flip-flop.

    Latency: the start bit begins the cycle after the beat is taken; a frame lasts
    ``10 * divisor`` cycles, after which the next beat can be taken (back-to-back frames).
    """

    def __init__(self, divisor):
        self._divisor = check_divisor(divisor)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    divisor = property(lambda self: self._divisor)

    @property
    def latency(self):
        """Cycles from taking a beat to the first edge (start bit) on ``tx``."""
        return 1

    def elaborate(self, platform):
        m = Module()
        D = self._divisor
        sr = Signal(10, init=0x3FF)        # bits still to send, LSB first; idle: all ones
        left = Signal(range(11))
        cnt = Signal(range(D))
        m.d.comb += [self.tx.eq(sr[0]), self.i.ready.eq(left == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [sr.eq(Cat(0, self.i.payload, 1)), left.eq(10), cnt.eq(D - 1)]
        with m.Elif(left != 0):
            with m.If(cnt != 0):
                m.d.sync += cnt.eq(cnt - 1)
            with m.Else():
                m.d.sync += [sr.eq(Cat(sr[1:], 1)), left.eq(left - 1), cnt.eq(D - 1)]
        return m
