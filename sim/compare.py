"""FP-vs-INT datapath cost: synthesise a set of generated units and compare them with INT8.

This is the question lowbit exists to answer, measured on the circuits lowbit itself
generates (issue 7 section 3). Every unit of :data:`DEFAULT_UNITS` is generated from the
catalogue (:mod:`lowbit.hdl.catalog`), synthesised with :func:`lowbit.fpga.synth.synth`
(generic gate set, and an FPGA target when asked; results cached on disk) and reported
per multiply-accumulate:

* area in NAND2 equivalents (GE) and flip-flops; for block units (MX dot products) the
  whole unit divided by its k elements, since one such unit performs k MACs per clock;
* energy per MAC two ways (section 2 of the issue): (a) the gate-count model of
  :mod:`lowbit.sim.energy` (45 nm, 0.9 V, calibrated on Horowitz's integer add/multiply
  figures), and (b) gate-level toggles: the synthesised netlist simulated on uniform random
  operands (finite codes for FP formats; MX blocks with scales 2^-8..2^7; 256 streams x 248
  counted cycles, seed 0, zero delay) and priced at 1/2 C V^2 per transition
  (:mod:`lowbit.sim.toggle_energy`, whose docstring says where and why the two disagree);
  (b) is cached beside the synthesis result;
* with ``target`` = ``ice40`` or ``ecp5``: LUTs, carry cells, DSP blocks and nextpnr's Fmax;

each also as a ratio to the INT8 MAC with an INT32 accumulator.

The published anchor (van Baalen et al., "FP8 versus INT8 for efficient deep learning
inference", arXiv:2303.17951, abstract and secondary readings of its hardware section): FP8
MACs are "50-180% less efficient" than INT8;
E4M3 with an FP16 accumulator about +53% gates over INT8/INT32, with FP32 accumulation
about +183%, by counting 2-input gates (not synthesis). :func:`anchor_statement` says how
the measured ratios compare.
"""

import concurrent.futures
import dataclasses
import hashlib
import json

import numpy as np

from lowbit.hdl.catalog import get_unit
from lowbit.hdl.manifest import ports as _ports
from lowbit.hdl.manifest import to_verilog
from lowbit.models import formats as _formats
from lowbit.models import mx as _mx

from lowbit.fpga import cache as _cache
from lowbit.fpga import synth as _synth

from . import energy as _energy
from . import toggle_energy as _toggles

__all__ = ["CompareUnit", "DEFAULT_UNITS", "CompareRow", "compare", "synthesise", "rows_table",
           "anchor_statement", "plot", "generic_with_toggles", "toggle_stimulus"]

#: Published relative costs of FP8 E4M3 MACs against INT8 (van Baalen et al. 2023).
PUBLISHED = {"e4m3-fp16": 1.53, "e4m3-fp32": 2.83}


@dataclasses.dataclass(frozen=True)
class CompareUnit:
    """One unit of the comparison: a catalogue unit with parameters, and MACs per clock."""
    key: str
    label: str
    unit: str
    params: dict
    macs: int = 1


DEFAULT_UNITS = [
    CompareUnit("int8", "INT8 MAC, INT32 acc", "int-mac",
                {"a_format": "int8", "b_format": "int8", "acc_bits": 32}),
    CompareUnit("e4m3-fp16", "E4M3 MAC, FP16 acc (fused)", "fp-mac",
                {"a_format": "e4m3", "b_format": "e4m3", "acc_format": "fp16",
                 "mode": "fused"}),
    CompareUnit("e4m3-fp32", "E4M3 MAC, FP32 acc (fused)", "fp-mac",
                {"a_format": "e4m3", "b_format": "e4m3", "acc_format": "fp32",
                 "mode": "fused"}),
    CompareUnit("e4m3-kulisch", "E4M3 MAC, exact fixed-point acc", "fp-mac",
                {"a_format": "e4m3", "b_format": "e4m3", "acc_format": "fp32",
                 "mode": "kulisch"}),
    CompareUnit("e5m2-fp16", "E5M2 MAC, FP16 acc (fused)", "fp-mac",
                {"a_format": "e5m2", "b_format": "e5m2", "acc_format": "fp16",
                 "mode": "fused"}),
    CompareUnit("e5m2-fp32", "E5M2 MAC, FP32 acc (fused)", "fp-mac",
                {"a_format": "e5m2", "b_format": "e5m2", "acc_format": "fp32",
                 "mode": "fused"}),
    CompareUnit("e5m2-kulisch", "E5M2 MAC, exact fixed-point acc", "fp-mac",
                {"a_format": "e5m2", "b_format": "e5m2", "acc_format": "fp32",
                 "mode": "kulisch"}),
    CompareUnit("mxfp8", "MXFP8 E4M3 dot k={k}, per element", "mx-dot",
                {"elem": "mxfp8_e4m3", "k": 8}, macs=8),
    CompareUnit("mxint8", "MXINT8 dot k={k}, per element", "mx-dot",
                {"elem": "mxint8", "k": 8}, macs=8),
    CompareUnit("overq4", "OverQ PE, 4-bit, INT32 acc", "overq-pe",
                {"bits": 4, "w_bits": 4, "acc_bits": 32}),
    CompareUnit("int4", "INT4 PE, INT32 acc (OverQ baseline)", "int-pe",
                {"bits": 4, "w_bits": 4, "acc_bits": 32}),
]


@dataclasses.dataclass
class CompareRow:
    unit: CompareUnit
    generic: object                 # SynthResult
    fpga: object = None             # SynthResult or None
    energy_pj: float = None         # per MAC, (a) gate-count model
    toggle_pj: float = None         # per MAC, (b) gate-level toggles (None if not asked)
    toggles: dict = None            # (b) details per operation (unit cycle with valid)

    @property
    def area_ge(self):
        return self.generic.area_ge / self.unit.macs

    @property
    def flip_flops(self):
        return self.generic.flip_flops / self.unit.macs

    def per_mac(self, value):
        return None if value is None else value / self.unit.macs

    def to_dict(self):
        d = {"key": self.unit.key, "label": self.unit.label, "unit": self.unit.unit,
             "params": self.unit.params, "macs_per_clock": self.unit.macs,
             "area_ge_per_mac": self.area_ge, "flip_flops_per_mac": self.flip_flops,
             "logic_depth": self.generic.logic_depth, "energy_pj_per_mac": self.energy_pj,
             "energy_toggles_pj_per_mac": self.toggle_pj, "toggles": self.toggles,
             "generic": self.generic.to_dict()}
        if self.fpga is not None:
            d["fpga"] = self.fpga.to_dict()
            d["luts_per_mac"] = self.per_mac(self.fpga.luts)
            d["fmax_mhz"] = self.fpga.fmax_mhz
        return d


#: Default MX block length of the comparison. The OCP MX formats use k = 32, but a k = 32
#: dot unit takes many CPU-minutes in Yosys/ABC (measured here: > 3 CPU-min each for
#: MXFP8 and MXINT8), which breaks the report's time budget; k = 8 synthesises in well under
#: a minute. Per-element figures at k = 8 amortise the shared parts (scale add, max
#: exponent, normalise/round, accumulator) over 8 elements instead of 32, so they
#: *overstate* the k = 32 per-element cost; ``--mx-k 32`` measures the real thing.
DEFAULT_MX_K = 8


def _select(keys, mx_k=DEFAULT_MX_K):
    mx_k = int(mx_k)
    if not 1 <= mx_k <= 64:
        raise ValueError(f"mx_k must be from 1 to 64, not {mx_k!r}")
    known = {}
    for u in DEFAULT_UNITS:
        if u.unit == "mx-dot":
            u = dataclasses.replace(u, label=u.label.format(k=mx_k), params={**u.params, "k": mx_k},
                                    macs=mx_k)
        known[u.key] = u
    if keys is None:
        return list(known.values())
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    if not keys:
        raise ValueError(f"units must name at least one of {', '.join(known)} (None for all), "
                         f"not an empty list")
    out = []
    for k in keys:
        if k not in known:
            raise ValueError(f"units must be among {', '.join(known)}, not {k!r}")
        out.append(known[k])
    if "int8" not in [u.key for u in out]:
        out.insert(0, known["int8"])           # the reference of every ratio
    return out


def compare(units=None, target=None, *, use_cache=True, jobs=2, progress=None, node_scale=1.0,
            vdd=0.9, freq_mhz=100.0, mx_k=DEFAULT_MX_K, toggles=True):
    """Generate and synthesise ``units`` (keys of :data:`DEFAULT_UNITS`; ``None``: all).

    ``target`` adds an FPGA column set (``"ice40"`` or ``"ecp5"``). ``progress`` is called
    as ``progress(label, done, total)`` after each synthesis run. ``toggles`` adds the
    data-dependent energy (b) (:func:`toggle_stimulus`; a few seconds per unit, cached).
    Returns a list of :class:`CompareRow`, INT8 first.
    """
    if target not in (None, "generic", "ice40", "ecp5"):
        raise ValueError(f"target must be one of generic, ice40, ecp5, not {target!r}")
    if target == "generic":
        target = None
    jobs = int(jobs)
    if not 1 <= jobs <= 16:
        raise ValueError(f"jobs must be from 1 to 16, not {jobs!r}")
    chosen = _select(units, mx_k)
    return synthesise(chosen, target, use_cache=use_cache, jobs=jobs, progress=progress,
                      node_scale=node_scale, vdd=vdd, freq_mhz=freq_mhz, toggles=toggles)


def synthesise(chosen, target=None, *, use_cache=True, jobs=2, progress=None, node_scale=1.0,
               vdd=0.9, freq_mhz=100.0, toggles=True, stimulus=None, top_prefix="lowbit_"):
    """Generate, synthesise and price the :class:`CompareUnit` list ``chosen`` (in its order).

    The body of :func:`compare`, shared with :mod:`lowbit.sim.compare_tensor_cores`.
    ``target`` is ``None`` or ``"ice40"``/``"ecp5"`` (validated by the caller); ``stimulus``
    is ``None`` (:func:`toggle_stimulus` and :data:`TOGGLE_STIMULUS`) or a pair
    ``(function(cu, ports) -> stimulus dict, description)`` whose description enters the (b)
    cache key; each unit's Verilog module is ``top_prefix + key`` (``-`` read as ``_``).
    Returns a list of :class:`CompareRow` in the order of ``chosen``.
    """
    sources, in_ports = [], {}
    for cu in chosen:                         # Amaranth elaboration stays in this thread
        component, _ = get_unit(cu.unit).build(**cu.params)
        name = top_prefix + cu.key.replace("-", "_")
        sources.append((cu, name, to_verilog(component, name)))
        in_ports[cu.key] = [(p["name"], p["width"]) for p in _ports(component)
                            if p["direction"] == "input"]
    tasks = [(cu, name, text, "generic") for cu, name, text in sources]
    if target:
        tasks += [(cu, name, text, target) for cu, name, text in sources]
    results, toggled = {}, {}
    stim_text = TOGGLE_STIMULUS if stimulus is None else stimulus[1]

    def run(cu, name, text, tgt):
        if tgt == "generic" and toggles:
            g, toggled[cu.key] = generic_with_toggles(cu, name, text, in_ports[cu.key],
                                                       use_cache, stimulus=stimulus)
            return g
        return _synth.synth(text, name, tgt, use_cache=use_cache, freq_mhz=freq_mhz)

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run, cu, name, text, tgt): (cu, tgt)
                   for cu, name, text, tgt in tasks}
        for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            cu, tgt = futures[fut]
            results[(cu.key, tgt)] = fut.result()
            if progress:
                progress(f"{cu.label} [{tgt}]", done, len(tasks))
    rows = []
    for cu, _, _ in sources:
        g = results[(cu.key, "generic")]
        e = _energy.energy_per_op_pj(g, node_scale=node_scale, vdd=vdd) / cu.macs
        row = CompareRow(cu, g, results.get((cu.key, target)) if target else None, e)
        if toggles:
            t = toggled[cu.key]
            scale = node_scale * (vdd / 0.9) ** 2          # (b) is 1/2 C V^2: exact in V^2
            row.toggle_pj = t["pj_per_op"] * scale / cu.macs
            row.toggles = {"pj_per_op": t["pj_per_op"] * scale,
                           "breakdown_pj": {k: v * scale for k, v in t["breakdown"].items()},
                           "toggle_rates": t["toggle_rates"], "stimulus": stim_text}
        rows.append(row)
    return rows


#: What the (b) column simulates (the cache key includes it and :data:`TOGGLE_VERSION`).
TOGGLE_STIMULUS = ("uniform random operand codes (finite for FP formats; MX element codes "
                   "finite, scales 2^-8..2^7), valid every cycle, clear/first every 64 cycles; "
                   "256 streams x 256 cycles, first 8 not counted, seed 0; zero delay, 45 nm, "
                   "0.9 V")
TOGGLE_VERSION = 1
_LANES, _CYCLES, _WARMUP = 256, 256, 8


def toggle_stimulus(cu, ports, rng=None):
    """The (b) operand streams of compare unit ``cu`` with input ``ports`` [(name, width)]:
    :func:`lowbit.sim.toggle_energy.random_stimulus` with the unit's operand formats; for MX
    dot units every element of the packed ``a``/``b`` ports is a finite code of the element
    format and the E8M0 scales are drawn from 119..134 (2^-8..2^7), so that blocks neither
    overflow nor vanish as random scale codes would make them do."""
    rng = rng if rng is not None else np.random.default_rng(0)
    fmts = {}
    for port in ("a", "b"):
        name = cu.params.get(f"{port}_format")
        if name is not None and hasattr(_formats.get(name), "exp_bits"):
            fmts[port] = _formats.get(name)
    stim = _toggles.random_stimulus(ports, _LANES, _CYCLES, formats=fmts, rng=rng)
    if cu.unit == "mx-dot":
        elem = _mx.element_format(cu.params["elem"])
        k, eb = cu.params["k"], elem.bits
        for port in ("a", "b"):
            codes = _toggles.random_stimulus([("e", eb)], _LANES, _CYCLES * k, rng=rng,
                                             formats={"e": elem}
                                             if hasattr(elem, "exp_bits") else None)["e"]
            codes = codes.reshape(_CYCLES, k, _LANES)
            packed = np.zeros((_CYCLES, _LANES), dtype=object)
            for i in range(k):
                packed = packed + (codes[:, i, :].astype(object) << (eb * i))
            stim[port] = packed if k * eb > 62 else packed.astype(np.int64)
        for port in ("a_scale", "b_scale"):
            stim[port] = rng.integers(119, 135, (_CYCLES, _LANES))
    return stim


def _toggle_key(generic_key, cu, stimulus_text=TOGGLE_STIMULUS):
    spec = json.dumps([TOGGLE_VERSION, generic_key, cu.unit, cu.params, stimulus_text],
                      sort_keys=True)
    return hashlib.sha256(f"toggles:{spec}".encode()).hexdigest()


def generic_with_toggles(cu, name, text, ports, use_cache, stimulus=None):
    """Generic synthesis of ``text`` (top module ``name``) plus (b) per unit operation at 45 nm,
    0.9 V (cached): ``(SynthResult, {"pj_per_op", "breakdown", "toggle_rates"})``. ``cu`` is the
    :class:`CompareUnit` (its ``unit`` and complete ``params`` choose the stimulus, see
    :func:`toggle_stimulus`), ``ports`` its input ports ``[(name, width)]``; ``stimulus``, if
    given, a pair ``(function(cu, ports) -> stimulus dict, description)`` used instead of
    :func:`toggle_stimulus` (the description is part of the cache key). Also used by
    :mod:`lowbit.sim.sweep`."""
    make, text_of = (toggle_stimulus, TOGGLE_STIMULUS) if stimulus is None else stimulus
    g, net = _synth.generic_netlist(text, name, use_cache=use_cache)
    key = _toggle_key(g.key, cu, text_of)
    hit = _cache.load(key, ("pj_per_op", "breakdown", "toggle_rates")) if use_cache else None
    if hit is not None:
        return g, hit
    r = _toggles.toggle_energy(net, stimulus=make(cu, ports), warmup=_WARMUP)
    out = {"pj_per_op": r.pj_per_op, "breakdown": dict(r.breakdown),
           "toggle_rates": dict(r.toggle_rates)}
    if use_cache:
        _cache.store(key, out)
    return g, out


def _ratio(v, ref):
    if v is None or ref in (None, 0):
        return "-"
    return f"{v / ref:.2f}x"


def rows_table(rows, *, gates=True):
    """Header + rows of the report table (strings).

    The (b) toggle columns appear when every row has them; ``gates=False`` leaves out the (a)
    gate-count energy columns (``lowbit compare --energy toggles``).
    """
    ref = rows[0]
    fpga = any(r.fpga is not None for r in rows)
    toggles = all(r.toggle_pj is not None for r in rows)
    head = ["unit", "GE/MAC", "vs INT8", "FF/MAC", "vs INT8", "depth"]
    if gates:
        head += ["pJ/MAC (a)", "vs INT8"]
    if toggles:
        head += ["pJ/MAC (b)", "vs INT8"]
    if fpga:
        head += ["LUT/MAC", "vs INT8", "carry", "DSP", "Fmax MHz", "vs INT8"]
    out = [head]
    for r in rows:
        line = [r.unit.label, f"{r.area_ge:.0f}", _ratio(r.area_ge, ref.area_ge),
                f"{r.flip_flops:.1f}", _ratio(r.flip_flops, ref.flip_flops),
                str(r.generic.logic_depth)]
        if gates:
            line += [f"{r.energy_pj:.3f}", _ratio(r.energy_pj, ref.energy_pj)]
        if toggles:
            line += [f"{r.toggle_pj:.3f}", _ratio(r.toggle_pj, ref.toggle_pj)]
        if fpga:
            f, rf = r.fpga, ref.fpga
            line += [f"{r.per_mac(f.luts):.1f}", _ratio(r.per_mac(f.luts), rf.luts),
                     str(f.carry), str(f.dsp),
                     "-" if f.fmax_mhz is None else f"{f.fmax_mhz:.0f}",
                     _ratio(f.fmax_mhz, rf.fmax_mhz)]
        out.append(line)
    return out


def anchor_statement(rows):
    """Sentences comparing the measured E4M3 ratios with the published 50-180% finding."""
    by = {r.unit.key: r for r in rows}
    if "int8" not in by:
        return ""
    ref = by["int8"].area_ge
    parts = []
    for key, what in (("e4m3-fp16", "E4M3 with an FP16 accumulator"),
                      ("e4m3-fp32", "E4M3 with an FP32 accumulator")):
        if key in by:
            measured = by[key].area_ge / ref
            parts.append(f"{what}: {measured:.2f}x the INT8/INT32 MAC's area "
                         f"({(measured - 1) * 100:+.0f}%), published about "
                         f"{(PUBLISHED[key] - 1) * 100:+.0f}% (van Baalen et al. 2023, gate counts).")
    fp = [r.area_ge / ref for k, r in by.items() if k.startswith(("e4m3", "e5m2"))]
    if fp:
        lo, hi = min(fp), max(fp)
        inside = all(1.5 <= x <= 2.8 for x in fp)
        parts.append(f"All FP8 MACs measured here: {(lo - 1) * 100:+.0f}% to {(hi - 1) * 100:+.0f}% "
                     f"over INT8 in area; the published range is +50% to +180% "
                     f"({'all inside it' if inside else 'not all inside it'}). Differences in "
                     f"method: synthesis with ABC to a Nangate-45-like gate set (area-weighted, "
                     f"flip-flops included) here, 2-input gate counting there; and our FP MACs "
                     f"handle subnormals, NaN/Inf and round exactly per IEEE.")
    return "\n".join(parts)


def plot(rows, path):
    """Write a PNG bar chart of area and energy per MAC relative to INT8."""
    # matplotlib is imported here: only the PNG needs it, and it is slow to import
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # (after choosing the Agg backend)
    ref = rows[0]
    labels = [r.unit.label for r in rows]
    area = [r.area_ge / ref.area_ge for r in rows]
    energy = [r.energy_pj / ref.energy_pj for r in rows]
    toggles = all(r.toggle_pj is not None for r in rows)
    fig, ax = plt.subplots(figsize=(10, (0.6 if toggles else 0.45) * len(rows) + 1.8))
    y = range(len(rows))
    h = 0.27 if toggles else 0.4
    ax.barh([i - h for i in y] if toggles else [i + 0.2 for i in y], area, height=h,
            label="area (GE) per MAC")
    ax.barh([i for i in y] if toggles else [i - 0.2 for i in y], energy, height=h,
            label="energy per MAC, (a) gate-count model")
    if toggles:
        ax.barh([i + h for i in y], [r.toggle_pj / ref.toggle_pj for r in rows], height=h,
                label="energy per MAC, (b) gate-level toggles, random operands, zero delay")
    ax.axvspan(1.5, 2.8, color="grey", alpha=0.15,
               label="published FP8 vs INT8: +50..180% (van Baalen et al. 2023)")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("relative to INT8 MAC with INT32 accumulator (synthesised, generic gates)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def to_json(rows, target=None):
    return json.dumps({"target": target, "rows": [r.to_dict() for r in rows],
                       "anchor": anchor_statement(rows)}, indent=2)
