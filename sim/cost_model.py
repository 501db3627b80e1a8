"""Area and energy of a systolic array from synthesis of lowbit's own PE.

:class:`SynthCostModel` implements the :class:`lowbit.sim.systolic.CostModel` protocol, so
``simulate_topology(layers, cfg, cost_model=SynthCostModel())`` reports energy per layer and
the array's area next to the cycle counts (``lowbit simulate --cost``).

Model
-----
Array area (um^2)::

    area = rows * cols * A_PE  +  edge_bits * (DFF + MUX2) * 0.798
           +  sum over ifmap/filter/ofmap of sram_area_um2(KiB * 1024)

* ``A_PE`` = ``area_ge * 0.798 um^2`` (1 GE = one Nangate 45 nm NAND2_X1,
  :data:`lowbit.fpga.synth.GE_UM2`) of **one processing element as the systolic RTL builds it**
  (:class:`lowbit.hdl.systolic.SystolicArray`): the PE's combinational MAC step
  (:class:`~lowbit.hdl.int_mac.IntMacStep`, :class:`~lowbit.hdl.fp_mac.FpMacStep` or
  :class:`~lowbit.hdl.overq_pe.OverqStep`) plus the registers the array gives every PE, all
  behind the array's global enable: the array's own PE component
  (:class:`lowbit.hdl.systolic.SystolicPE`, which the array instantiates ``R x C`` times),
  synthesised alone through the generic flow (:func:`lowbit.fpga.synth.synth`, Yosys + ABC to
  a Nangate-45-like gate set, cached on disk). Per dataflow:

  - WS / IS: forward register of the streamed operand (+ its valid and fold-start bits), the
    stationary weight register (loaded on load beats), the partial-sum register with its
    valid/last bits and the hold multiplexer (``psum <- valid ? step : psum_in``). IS is the
    WS hardware with the operand formats swapped.
  - OS: forward registers of both operands (+ valid/start bits), the accumulator with its
    restart multiplexer, and the drain register of the output shift chain (and, for the
    OverQ PE, the previous-weight register).

  Plus the array's **edge registers**, which are not in any PE: the input skew (row ``i``
  delays its streamed operand, valid and fold-start bits by ``i`` registers), WS/IS: the
  partial-sum skew (column ``j``: ``j`` registers of psum + valid + last) and the output
  de-skew (``C - 1 - j`` accumulator registers), OS: the filter skew (``j`` registers); minus
  the registers a boundary PE does not have (last column: no forward register; OS: last row
  no filter forward, row 0 no drain register). :func:`edge_register_bits` counts them from
  the RTL's structure; each bit costs a flip-flop plus its enable multiplexer (DFF + MUX2 =
  8 GE, the array's registers all sit behind its global enable). Measured check, generic
  synthesis of the whole generated ``systolic`` unit vs this model
  (``benchmarks/cost_resnet18.py --check-array``; model/measured): INT8 WS 2x2 1.005, 4x4
  1.007, 8x8 1.010 (100,419 GE measured); INT8 OS 4x4 1.012; INT8 IS 4x2 1.013; E4M3/FP16
  WS 4x4 1.006; OverQ-4 WS 4x4 1.022, OS 4x4 1.004; E4M3 Kulisch (with the 4 read-outs) WS
  4x4 1.004, OS 4x4 1.030. The edges are 19 % of the PE area at
  8x8 and 22 % at 32x32 (INT8 WS, model). The fold controller (a counter) is not counted
  separately. ``edges=False`` leaves the edges out (the issue's "PEs + buffers").
* SRAM: :func:`lowbit.sim.energy.sram_area_um2` of each operand SRAM's full capacity
  (both halves of the double buffer), 6T cell of CACTI (146 F^2) with a capacity-dependent
  array efficiency; see the notes in :mod:`lowbit.sim.energy`.

Layer energy (pJ): the simulator reports counts per event class
(:data:`lowbit.sim.systolic.EVENT_CLASSES`) and this model multiplies each by a unit energy
(:meth:`SynthCostModel.unit_energy_pj`)::

    E = macs * E_MAC + sum_op sram_accesses_op * E_SRAM(op) + sum_op dram_words_op * E_DRAM

* ``E_MAC`` = :func:`lowbit.sim.energy.energy_per_op_pj` of the synthesised PE (gate-count
  model calibrated to Horowitz's 45 nm integer add/multiply energies; one PE clock with
  random operands, registers included).
* ``E_SRAM(op)`` = :func:`lowbit.sim.energy.sram_access_pj` of one half of that operand's
  SRAM (the double buffer's active half, ``KiB * 512`` bytes), for an access of one word
  (``8 * word_bytes`` bits; linear in the width, i.e. the R or C words the array reads per
  cycle are one wide access). Reads and writes cost the same (Horowitz gives reads).
  ``ofmap_word="acc"`` charges ofmap accesses (partial sums) at the PE's accumulator width
  instead of the simulator's word width.
* ``E_DRAM`` = :func:`lowbit.sim.energy.dram_access_pj` of one word (20 pJ/bit).
* ``pe_cycle`` and ``cycle`` events cost 0: no clock-tree, leakage or idle-PE energy is
  modelled (``E_MAC`` covers the active PE clock). This underestimates layers with low
  utilisation.

Scaling: ``node_scale`` multiplies logic and SRAM energies (1 at 45 nm), ``vdd`` rescales
them by ``(vdd / 0.9 V)^2``; DRAM energy is an interface figure and is not scaled.
``area_scale`` multiplies PE and SRAM areas (1 at 45 nm; e.g. ``(F / 45 nm)^2``).

PE names
--------
:attr:`ArrayConfig.pe <lowbit.sim.systolic.ArrayConfig>` names the PE in the forms of
:func:`lowbit.models.systolic.parse_pe` (``int8``, ``int8xint4_acc24_saturate``, ``e4m3_fp32``,
``e5m2_fp16_two_roundings``, ``e4m3_kulisch``, ``overq4``, ...), read into the
:class:`lowbit.models.systolic.PESpec` from which the PE is built, synthesised and simulated;
:func:`lowbit.models.systolic.pe_name` gives the name of a numerics object, so the PE used for
numerics (``gemm_numerics``) and the PE that is costed are the same.

Kulisch PE: the array carries the exact state (``width + 4`` bits) in the psum, accumulator,
skew, de-skew and drain registers, and rounds it once per column at the bottom edge
(:class:`lowbit.hdl.fp_mac.KulischRead`, combinational). Those ``cols`` read-out units are
synthesised too and added to the area; their energy (:func:`lowbit.sim.energy.energy_per_op_pj`
of one read-out) is charged once per ofmap SRAM write (each result word leaving the array
passes one read-out).
"""

import dataclasses
import re

from lowbit.fpga import synth as _synth
from lowbit.hdl.fp_mac import KulischRead
from lowbit.hdl.manifest import to_verilog
from lowbit.hdl.systolic import SystolicPE
from lowbit.models.checks import check_bool, check_choice, check_number
from lowbit.models.systolic import PESpec, parse_pe

from . import energy as _energy

__all__ = ["pe_verilog", "readout_verilog", "edge_register_bits", "REG_BIT_GE", "PECost",
           "SynthCostModel"]

OFMAP_WORDS = ("operand", "acc")


# ---------------------------------------------------------------------------------------
# one PE of the systolic array, for synthesis


def _top(prefix, text):
    return prefix + re.sub(r"[^a-z0-9_]", "_", text)


def readout_verilog(spec):
    """``(top, verilog)`` of the Kulisch column read-out (:class:`lowbit.hdl.fp_mac.KulischRead`)."""
    if not spec.kulisch:
        raise ValueError(f"spec must be a Kulisch PE, not {spec.key!r}")
    top = _top("lowbit_kread_", spec.key)
    return top, to_verilog(KulischRead(spec.a, spec.b, spec.acc, spec.terms,
                                       spec.flush_subnormals, spec.saturate), top)


def pe_verilog(spec, dataflow):
    """``(top, verilog)`` of :class:`lowbit.hdl.systolic.SystolicPE` for ``spec`` and
    ``dataflow``: one PE exactly as the array instantiates it."""
    top = _top("lowbit_pe_", f"{spec.key}_{dataflow}")
    return top, to_verilog(SystolicPE(spec, dataflow), top)


def _widths(spec, dataflow):
    """(streamed operand width, stationary/filter operand width, accumulator width)."""
    a, b = spec.a_lane_width, spec.b_lane_width
    if dataflow == "is":
        a, b = b, a
    return a, b, spec.acc_width


def edge_register_bits(spec, rows, cols, dataflow):
    """Register bits of an ``rows x cols`` array outside ``rows * cols`` :class:`SystolicPE`
    (skew and de-skew registers, minus the boundary PEs' missing registers; see the module
    docstring). May be negative for a 1-wide array."""
    R, C = rows, cols
    aw, bw, W = _widths(spec, dataflow)
    tri_r, tri_c = R * (R - 1) // 2, C * (C - 1) // 2
    bits = tri_r * (aw + 2) - R * (aw + 2)            # input skew; last column: no a forward
    if dataflow == "os":
        bits += tri_c * bw - C * bw - C * W          # filter skew; last row: no b forward; row 0: no drain
    else:
        bits += tri_c * (W + 2) + tri_c * W          # psum skew (+ valid, last); output de-skew
        if spec.kind == "overq":
            bits += C * bw                           # w_prev registers above row 0
    return bits


#: Area of one register bit behind an enable, in GE: DFF + MUX2 of the generic cell set.
REG_BIT_GE = _synth.cell_ge("DFF") + _synth.cell_ge("MUX2")


# ---------------------------------------------------------------------------------------
# the cost model


@dataclasses.dataclass(frozen=True)
class PECost:
    """Cost of one PE: ``area_ge`` (NAND2 equivalents), ``area_um2`` (scaled), ``e_mac_pj``
    (energy of one MAC), ``source`` ("synth" or "given") and, when synthesised,
    ``flip_flops``, ``logic_depth`` and the Verilog module name ``top``. Kulisch PE:
    ``readout_ge`` / ``e_readout_pj`` of the column read-out unit (0 otherwise)."""
    spec: PESpec
    dataflow: str
    area_ge: float
    area_um2: float
    e_mac_pj: float
    source: str
    flip_flops: object = None
    logic_depth: object = None
    top: str = ""
    readout_ge: float = 0.0
    e_readout_pj: float = 0.0


class SynthCostModel:
    """Area and energy of a systolic array from synthesis of its PE (module docstring).

    Parameters
    ----------
    node_scale : float
        Energy factor for logic and SRAM (> 0; 1 = 45 nm).
    vdd : float
        Supply voltage, 0.3..1.5 V; logic and SRAM energies scale by ``(vdd / 0.9)^2``.
    area_scale : float
        Area factor for PEs and SRAM (> 0; 1 = 45 nm).
    ofmap_word : {"operand", "acc"}
        Width of an ofmap SRAM/DRAM access: the simulator's word (``8 * word_bytes`` bits)
        or the PE's accumulator width (partial sums).
    pe_area_ge : float, optional
        Use this PE area (GE) instead of synthesising (e.g. a figure from a previous run).
    edges : bool
        Count the array's edge registers (:func:`edge_register_bits`) in the area.
    use_cache : bool
        Use the synthesis cache.

    The PE cost is computed once per (PE, dataflow) and kept.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it).
    """

    name = "synth45"

    def __init__(self, node_scale=1.0, vdd=0.9, area_scale=1.0, ofmap_word="operand",
                 pe_area_ge=None, edges=True, use_cache=True):
        self.node_scale = check_number("node_scale", node_scale, positive=True)
        self.vdd = check_number("vdd", vdd, 0.3, 1.5)
        self.area_scale = check_number("area_scale", area_scale, positive=True)
        self.ofmap_word = check_choice("ofmap_word", ofmap_word, OFMAP_WORDS)
        self.pe_area_ge = (None if pe_area_ge is None
                           else check_number("pe_area_ge", pe_area_ge, positive=True))
        self.edges = check_bool("edges", edges)
        self.use_cache = check_bool("use_cache", use_cache)
        self._pe = {}

    @property
    def v2(self):
        """``(vdd / 0.9 V)^2``."""
        return (self.vdd / 0.9) ** 2

    def pe_cost(self, cfg):
        """:class:`PECost` of the PE named by ``cfg.pe`` in ``cfg.dataflow``."""
        spec = parse_pe(cfg.pe)
        key = (spec, cfg.dataflow)
        if key not in self._pe:
            flip_flops = depth = None
            top = ""
            if self.pe_area_ge is not None:
                ge, source = self.pe_area_ge, "given"
            else:
                top, text = pe_verilog(spec, cfg.dataflow)
                r = _synth.synth(text, top, "generic", use_cache=self.use_cache)
                ge, source = r.area_ge, "synth"
                flip_flops, depth = r.flip_flops, r.logic_depth
            e = _energy.energy_per_op_pj(ge, node_scale=self.node_scale, vdd=self.vdd)
            rd = e_rd = 0.0
            if spec.kulisch:
                rtop, rtext = readout_verilog(spec)
                rd = _synth.synth(rtext, rtop, "generic", use_cache=self.use_cache).area_ge
                e_rd = _energy.energy_per_op_pj(rd, node_scale=self.node_scale, vdd=self.vdd)
            self._pe[key] = PECost(spec, cfg.dataflow, ge, ge * _synth.GE_UM2 * self.area_scale, e,
                                   source, flip_flops, depth, top, rd, e_rd)
        return self._pe[key]

    def _word_bits(self, cfg, operand):
        if operand == "ofmap" and self.ofmap_word == "acc":
            return parse_pe(cfg.pe).acc_width
        return 8 * cfg.word_bytes

    def sram_access_pj(self, cfg, operand):
        """Energy of one word access to the active half of ``operand``'s SRAM."""
        kib = getattr(cfg, f"{operand}_sram_kib")
        return (_energy.sram_access_pj(kib * 512, bits=self._word_bits(cfg, operand),
                                       node_scale=self.node_scale) * self.v2)

    def dram_access_pj(self, cfg, operand):
        """Energy of one DRAM word of ``operand``."""
        return _energy.dram_access_pj(bits=self._word_bits(cfg, operand))

    def unit_energy_pj(self, cfg):
        """pJ per count of every simulator event class (``mac``, ``sram_read_ifmap``, ...)."""
        u = {"mac": self.pe_cost(cfg).e_mac_pj, "pe_cycle": 0.0, "cycle": 0.0}
        for op in ("ifmap", "filter", "ofmap"):
            u[f"sram_read_{op}"] = self.sram_access_pj(cfg, op)
            u[f"dram_read_{op}"] = self.dram_access_pj(cfg, op)
        # Kulisch: every result word leaving the array passes its column's read-out once
        u["sram_write_ofmap"] = u["sram_read_ofmap"] + self.pe_cost(cfg).e_readout_pj
        u["dram_write_ofmap"] = u["dram_read_ofmap"]
        return u

    def energy_pj(self, event, count, cfg):
        """``count`` events of class ``event`` in pJ (None for an event class it does not know)."""
        u = self.unit_energy_pj(cfg).get(event)
        return None if u is None else float(count) * u

    def area_breakdown_um2(self, cfg):
        """``{"n_pe", "pe", "pes", "edge_bits", "edges", "readout", "sram_ifmap", "sram_filter",
        "sram_ofmap", "sram", "total"}`` in um^2 (``n_pe``, ``edge_bits`` counts; ``readout``:
        the Kulisch PE's ``cols`` column read-out units, else 0)."""
        pc = self.pe_cost(cfg)
        n = cfg.rows * cfg.cols
        eb = edge_register_bits(pc.spec, cfg.rows, cfg.cols, cfg.dataflow) if self.edges else 0
        out = {"n_pe": n, "pe": pc.area_um2, "pes": n * pc.area_um2, "edge_bits": eb,
               "edges": eb * REG_BIT_GE * _synth.GE_UM2 * self.area_scale,
               "readout": cfg.cols * pc.readout_ge * _synth.GE_UM2 * self.area_scale}
        for op in ("ifmap", "filter", "ofmap"):
            out[f"sram_{op}"] = _energy.sram_area_um2(getattr(cfg, f"{op}_sram_kib") * 1024,
                                                      node_scale_area=self.area_scale)
        out["sram"] = out["sram_ifmap"] + out["sram_filter"] + out["sram_ofmap"]
        out["total"] = out["pes"] + out["edges"] + out["readout"] + out["sram"]
        return out

    def area_um2(self, cfg):
        """Array area in um^2: PEs + edge registers (+ Kulisch read-outs) + the three SRAMs."""
        return self.area_breakdown_um2(cfg)["total"]

    def describe(self, cfg):
        """JSON-ready summary: PE, unit energies, area breakdown, scaling options."""
        pc = self.pe_cost(cfg)
        return {"model": self.name, "pe": pc.spec.key, "pe_source": pc.source,
                "pe_area_ge": pc.area_ge, "pe_area_um2": pc.area_um2, "pe_flip_flops": pc.flip_flops,
                "pe_logic_depth": pc.logic_depth, "e_mac_pj": pc.e_mac_pj,
                "readout_area_ge": pc.readout_ge, "e_readout_pj": pc.e_readout_pj,
                "unit_energy_pj": self.unit_energy_pj(cfg),
                "area_um2": self.area_breakdown_um2(cfg), "node_scale": self.node_scale,
                "vdd": self.vdd, "area_scale": self.area_scale, "ofmap_word": self.ofmap_word,
                "edges": self.edges}
