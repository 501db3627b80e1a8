"""The accumulator datapaths compared by ``accumulation_error.py`` and ``training_run.py``.

Each :class:`Datapath` is a thin adapter over the golden model (:mod:`lowbit.models.mac` and,
for the training units, the chunked / Kahan / stochastic-rounding models) with one interface:
``init(shape)`` gives the state of a new sum, ``step(state, p_code)`` adds exact product codes
(of :func:`lowbit.models.mac.product_format`), ``value(state)`` reads the result as float64.
Nothing here defines numerics: every rounding is the model's.  ``unit`` names the catalogue
unit and parameters whose synthesis gives the datapath's area and energy.

Random bits of stochastic rounding come from a :class:`numpy.random.Generator` seeded per
datapath (one draw of ``sr_bits`` bits per step and lane, the contract of
:func:`lowbit.models.formats.draw_random_bits`; the hardware draws the same kind of value from
its LFSR).
"""

import dataclasses

import numpy as np

from lowbit.models import formats, mac

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

    def init(self, shape, a_format=A_FORMAT, b_format=B_FORMAT):
        f = self.acc_format
        negzero = 1 << (f.bits - 1)               # a new sum starts from -0 (models.mac)
        if self.kind in ("rne", "sr"):
            st = {"acc": np.full(shape, negzero, dtype=np.int64)}
            if self.kind == "sr":
                st["rng"] = np.random.default_rng(self.seed)
            return st
        if self.kind == "kulisch":
            return {"state": mac.kulisch_new_sum(shape),
                    "wl": mac.kulisch_width(a_format, b_format, 1 << 16)}
        return _training_init(self, shape, a_format, b_format)

    def step(self, st, p_code, p_format):
        if self.kind == "rne":
            st["acc"] = mac.fp_accumulate(st["acc"], p_code, p_format, self.acc).astype(np.int64)
        elif self.kind == "sr":
            r = st["rng"].integers(0, 1 << self.sr_bits, size=np.shape(p_code), dtype=np.int64)
            st["acc"] = mac.fp_accumulate(st["acc"], p_code, p_format, self.acc,
                                          rounding="stochastic", random_bits=r,
                                          sr_bits=self.sr_bits).astype(np.int64)
        elif self.kind == "kulisch":
            width, lsb = st["wl"]
            st["state"] = mac.kulisch_add(st["state"], p_code, p_format, width, lsb)
        else:
            _training_step(self, st, p_code, p_format)
        return st

    def value(self, st):
        if self.kind in ("rne", "sr"):
            return self.acc_format.decode(st["acc"])
        if self.kind == "kulisch":
            return self.acc_format.decode(mac.kulisch_read(st["state"], self.acc, st["wl"][1]))
        return _training_value(self, st)


def _training_init(dp, shape, a_format, b_format):
    raise NotImplementedError(f"{dp.kind} accumulation needs the issue-17 training models")


def _training_step(dp, st, p_code, p_format):
    raise NotImplementedError(f"{dp.kind} accumulation needs the issue-17 training models")


def _training_value(dp, st):
    raise NotImplementedError(f"{dp.kind} accumulation needs the issue-17 training models")


def _fp_mac_unit(acc, mode="fused", **extra):
    return ("fp-mac", {"a_format": "e4m3", "b_format": "e5m2", "acc_format": acc, "mode": mode,
                       **extra})


def study_datapaths():
    """The datapaths of the study (issue 17 section 2), in table order."""
    dps = []
    for acc in ("fp32", "fp16", "bf16"):
        dps.append(Datapath(f"{acc} RNE", acc, "rne", unit=_fp_mac_unit(acc)))
    for acc in ("fp32", "fp16", "bf16"):
        for n in (4, 8, 16):
            dps.append(Datapath(f"{acc} SR{n}", acc, "sr", sr_bits=n, seed=1000 + n, unit=()))
    dps.append(Datapath("kulisch", "fp32", "kulisch",
                        unit=_fp_mac_unit("fp32", "kulisch", terms=1 << 16)))
    return dps
