"""The accumulator datapaths compared by ``accumulation_error.py`` and ``training_run.py``.

Each :class:`Datapath` is a thin adapter over a cycle model of the golden model -- nothing here
defines numerics: :func:`lowbit.models.mac.mac_stream` (RNE and stochastic-rounding FP MAC,
Kulisch), :func:`lowbit.models.training.chunked_stream` and
:func:`lowbit.models.training.kahan_stream`.  :meth:`Datapath.run` sums operand codes of shape
``(K, lanes...)`` along the first axis, one new sum per lane, and returns the accumulator codes
after every step.  ``unit`` names the catalogue unit and parameters whose synthesis gives the
datapath's area and energy.

Random bits of stochastic rounding come from a :class:`numpy.random.Generator` seeded per
datapath and call (one draw of ``sr_bits`` bits per step and lane, the ``random_bits`` contract
of :func:`lowbit.models.mac.mac_stream`; the hardware's LFSR delivers the same kind of draw,
:mod:`lowbit.models.lfsr`).
"""

import dataclasses

import numpy as np

from lowbit.models import formats, mac, training

A_FORMAT = formats.get("e4m3")
B_FORMAT = formats.get("e5m2")


@dataclasses.dataclass
class Datapath:
    """One accumulator datapath (see the module docstring)."""
    name: str
    acc: str                      # accumulator format name
    kind: str                     # "rne", "sr", "chunk", "kahan", "kulisch"
    sr_bits: int = 0
    chunk: int = 0
    unit: tuple = ()              # (catalogue unit name, {param: value}) or ()
    seed: int = 0

    @property
    def acc_format(self):
        return formats.get(self.acc)

    def run(self, a, b, a_format=A_FORMAT, b_format=B_FORMAT, rng=None, terms=1 << 16):
        """Accumulator codes after each of the ``K = a.shape[0]`` steps (shape of ``a``).

        ``rng``: the Generator of the SR draws (default: one seeded with ``self.seed``)."""
        a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
        valid = np.ones(a.shape, dtype=bool)
        clear = np.zeros(a.shape, dtype=bool)
        clear[0] = True
        common = {"a_format": a_format, "b_format": b_format, "acc_format": self.acc}
        if self.kind == "rne":
            return mac.mac_stream(valid, clear, a, b, kind="fp", **common)
        if self.kind == "sr":
            rng = rng if rng is not None else np.random.default_rng(self.seed)
            r = rng.integers(0, 1 << self.sr_bits, size=a.shape, dtype=np.int64)
            return mac.mac_stream(valid, clear, a, b, kind="fp", rounding="stochastic",
                                  random_bits=r, sr_bits=self.sr_bits, **common)
        if self.kind == "kulisch":
            return mac.mac_stream(valid, clear, a, b, kind="fp", mode="kulisch", terms=terms,
                                  **common)
        if self.kind == "chunk":
            # the sum of the first K products is the outer register once K is a multiple of
            # the chunk length, and the inner register while K < CL (closing that first chunk
            # would add it to the outer -0 exactly); other K are not read (powers of two are
            # always one of the two)
            last = np.zeros(a.shape, dtype=bool)
            last[-1] = True
            outer, inner = training.chunked_stream(valid, clear, last, a, b,
                                                   chunk_length=self.chunk, **common)
            k = np.arange(1, a.shape[0] + 1).reshape((-1,) + (1,) * (a.ndim - 1))
            return np.where(k < self.chunk, inner, outer)
        if self.kind == "kahan":
            s, _ = training.kahan_stream(valid, clear, a, b, **common)
            return s
        raise ValueError(f"unknown datapath kind {self.kind!r}")


def _fp_mac_unit(acc, mode="fused", **extra):
    return ("fp-mac", {"a_format": "e4m3", "b_format": "e5m2", "acc_format": acc, "mode": mode,
                       **extra})


def _accum_unit(name, acc, **extra):
    """A unit of :mod:`lowbit.hdl.accumulators` (``chunked-mac`` / ``kahan-mac``) with the
    study's operand formats."""
    return (name, {"a_format": A_FORMAT.name, "b_format": B_FORMAT.name, "acc_format": acc,
                   **extra})


def study_datapaths():
    """The datapaths of the study (issue 17 section 2), in table order."""
    dps = []
    for acc in ("fp32", "fp16", "bf16"):
        dps.append(Datapath(f"{acc} RNE", acc, "rne", unit=_fp_mac_unit(acc)))
    for acc in ("fp32", "fp16", "bf16"):
        for n in (4, 8, 16):
            # the cost is the fused MAC with stochastic rounding and its internal 16-bit LFSR
            # (the numerics above draw the same kind of bits from NumPy: see the docstring)
            dps.append(Datapath(f"{acc} SR{n}", acc, "sr", sr_bits=n, seed=1000 + n,
                                unit=_fp_mac_unit(acc, rounding="stochastic", sr_bits=n)))
    for acc in ("fp16", "bf16"):
        for cl in (32, 64, 256):
            dps.append(Datapath(f"{acc} chunk{cl}", acc, "chunk", chunk=cl,
                                unit=_accum_unit("chunked-mac", acc, chunk_length=cl)))
    for acc in ("fp16", "bf16"):
        dps.append(Datapath(f"{acc} Kahan", acc, "kahan", unit=_accum_unit("kahan-mac", acc)))
    dps.append(Datapath("kulisch", "fp32", "kulisch",
                        unit=_fp_mac_unit("fp32", "kulisch", terms=1 << 16)))
    return dps
