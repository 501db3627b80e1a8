"""Energy per MAC two ways: (a) gate-count model and (b) gate-level toggles, random vs real tensors.

    python benchmarks/energy_views.py [--lanes 256] [--cycles 256] [--seed 0] [--json FILE]

For each unit (INT8 MAC with INT32 accumulator; FP8 E4M3 and E5M2 MACs with FP16, FP32 and
exact fixed-point (Kulisch) accumulators; the OverQ PE at 4 bits and its plain INT4 PE
baseline), synthesised with the generic flow (Nangate-45-like gates, results cached):

* (a) ``lowbit.sim.energy.energy_per_op_pj``: area in gate equivalents x e_GE, calibrated
  to Horowitz's 45 nm integer add/multiply energies (random operands);
* (b) ``lowbit.sim.toggle_energy.toggle_energy``: the mapped netlist simulated at gate
  level, every output transition charged 1/2 C Vdd^2 with Nangate 45 nm pin capacitances,
  estimated internal capacitances and the library's wire-load model, plus clock energy per
  flip-flop per cycle; on two kinds of operand streams, ``--lanes`` independent streams of
  ``--cycles`` cycles each (the first 8 not counted), back-to-back dot products with
  ``clear``/``first`` on every first term:

  - random: uniform random codes (FP8: uniform over the finite codes; OverQ: uniform
    code, metadata and weight), dot products of length 64;
  - real: the OverQ issue's digits MLP (64-64-32-10, scikit-learn, trained here as in
    ``benchmarks/overq_digits.py``), test-set layer inputs and the layer weights of all
    three layers (dot products of length 64, 64 and 32, drawn in proportion to the layer's
    MACs). INT8: symmetric per-tensor activation scale and per-output-channel weight scale
    (max -> 127). FP8: the same scales mapping the maximum to the format's max, RNE. OverQ
    PE: activations OverQ-encoded (b = 4, cascade 1, precision overwrite; the catalogue's
    defaults) at the OverQ-MSE scale, weights int4 per channel at the MSE clipping scale, as
    the benchmark's OverQ rows; INT4 PE: plain int4 codes at the MSE clipping scales.

The random streams are also run with unit delay (``delay="unit"``, every transition on
the way to the settled value counted) to bracket glitching. Both views at 45 nm, 0.9 V.
Then the ratios to the INT8 MAC in each view, the breakdown of
(b), and (b) on (a)'s calibration circuits against Horowitz's figures (the scale between
the two views). Where and why the views disagree: see ``lowbit.sim.toggle_energy``.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from lowbit.cli.table import print_table
from lowbit.fpga import netlist_sim, synth as fs
from lowbit.sim import energy, toggle_energy as te
from lowbit.hdl.catalog import get_unit
from lowbit.hdl.manifest import to_verilog
from lowbit.models import formats
from lowbit.models import overq as oq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from overq_digits import float_acts, quantise_weights, train  # noqa: E402


def _mac(a, acc, mode):
    return {"a_format": a, "b_format": a, "acc_format": acc, "mode": mode}


#: (key, label, catalogue unit, parameters, operand kind)
UNITS = [
    ("int8", "INT8 MAC, INT32 acc", "int-mac",
     {"a_format": "int8", "b_format": "int8", "acc_bits": 32}, "int8"),
    ("e4m3-fp16", "E4M3 MAC, FP16 acc", "fp-mac", _mac("e4m3", "fp16", "fused"), "e4m3"),
    ("e4m3-fp32", "E4M3 MAC, FP32 acc", "fp-mac", _mac("e4m3", "fp32", "fused"), "e4m3"),
    ("e4m3-kulisch", "E4M3 MAC, exact acc", "fp-mac", _mac("e4m3", "fp32", "kulisch"), "e4m3"),
    ("e5m2-fp16", "E5M2 MAC, FP16 acc", "fp-mac", _mac("e5m2", "fp16", "fused"), "e5m2"),
    ("e5m2-fp32", "E5M2 MAC, FP32 acc", "fp-mac", _mac("e5m2", "fp32", "fused"), "e5m2"),
    ("e5m2-kulisch", "E5M2 MAC, exact acc", "fp-mac", _mac("e5m2", "fp32", "kulisch"), "e5m2"),
    ("overq4", "OverQ PE 4-bit, INT32 acc", "overq-pe", {"bits": 4, "w_bits": 4, "acc_bits": 32},
     "overq4"),
    ("int4", "INT4 PE, INT32 acc", "int-pe", {"bits": 4, "w_bits": 4, "acc_bits": 32}, "int4"),
]

WARMUP = 8


def _finite_random(fmt, shape, rng):
    codes = rng.integers(0, 1 << fmt.bits, shape)
    while True:
        bad = ~np.isfinite(fmt.decode(codes))
        if not bad.any():
            return codes
        codes[bad] = rng.integers(0, 1 << fmt.bits, int(bad.sum()))


def random_blocks(kind, rng, n=512, k=64):
    if kind in ("overq4", "int4"):
        blk = {"code": rng.integers(0, 16, (n, k))}
        if kind == "overq4":
            blk["meta"] = rng.integers(0, 4, (n, k))
        blk["w"] = rng.integers(-8, 8, (n, k))
        return [blk]
    fmt = formats.get(kind)
    return [{"a": _finite_random(fmt, (n, k), rng), "b": _finite_random(fmt, (n, k), rng)}]


class RealTensors:
    """Layer inputs and weights of the digits MLP, quantised per operand kind."""

    def __init__(self, seed, images=64):
        layers, Xtr, Xte, _, _ = train(seed)
        self.layers = layers
        self.train_acts, _ = float_acts(layers, Xtr)
        test_acts, _ = float_acts(layers, Xte)
        self.acts = [a[:images] for a in test_acts]
        self.zero_fraction = {}

    def _pairs(self, A, Wt):
        """All (image, output) dot products: activations rows x weight columns."""
        m, n = A.shape[0], Wt.shape[0]
        return np.repeat(A, n, axis=0), np.tile(Wt, (m, 1))

    def blocks(self, kind):
        out = []
        zeros = []
        for i, (W, _) in enumerate(self.layers):
            A = self.acts[i]
            if kind in ("int8", "e4m3", "e5m2"):
                fmt = formats.get(kind)
                top = fmt.max
                sa = max(np.abs(A).max(), 1e-12) / top
                sw = np.maximum(np.abs(W).max(axis=0, keepdims=True), 1e-12) / top
                ac = fmt.encode(A / sa, saturate=True).astype(np.int64)
                wc = fmt.encode(W / sw, saturate=True).astype(np.int64)
                a, b = self._pairs(ac, wc.T)
                out.append({"a": a, "b": b})
                zeros.append((np.count_nonzero(fmt.decode(a) == 0),
                              np.count_nonzero(fmt.decode(b) == 0), a.size))
            elif kind == "overq4":
                cfg = oq.OverqConfig(4, 1, True)
                s = oq.calibrate(self.train_acts[i], 4, "overq", cfg, axis=1)
                t = oq.encode(A, cfg, s, axis=1)
                wc, _ = quantise_weights(W, 4, "mse")
                wv = formats.int_format(4).decode(wc).astype(np.int64)
                code, w = self._pairs(np.asarray(t.codes, np.int64), wv.T)
                meta, _ = self._pairs(np.asarray(t.meta, np.int64), wv.T)
                out.append({"code": code, "meta": meta, "w": w})
                zeros.append((np.count_nonzero(code == 0), np.count_nonzero(w == 0), code.size))
            else:  # int4
                s = oq.calibrate(self.train_acts[i], 4, "mse", axis=1)
                codes = oq.plain_encode(A, 4, s).astype(np.int64)
                wc, _ = quantise_weights(W, 4, "mse")
                wv = formats.int_format(4).decode(wc).astype(np.int64)
                code, w = self._pairs(codes, wv.T)
                out.append({"code": code, "w": w})
                zeros.append((np.count_nonzero(code == 0), np.count_nonzero(w == 0), code.size))
        za = sum(z[0] for z in zeros) / sum(z[2] for z in zeros)
        zb = sum(z[1] for z in zeros) / sum(z[2] for z in zeros)
        self.zero_fraction[kind] = (za, zb)
        return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, default=256, help="parallel streams (default 256)")
    ap.add_argument("--cycles", type=int, default=256, help="cycles per stream (default 256)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--units", nargs="*", help="subset of unit keys")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    ap.add_argument("--no-unit-delay", action="store_true",
                    help="skip the unit-delay (glitch) runs on the random streams")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    units = [u for u in UNITS if not args.units or u[0] in args.units or u[0] == "int8"]
    real = RealTensors(args.seed)
    rows = []
    for key, label, unit, params, kind in units:
        comp, _ = get_unit(unit).build(**params)
        name = "lowbit_" + key.replace("-", "_")
        result, netd = fs.generic_netlist(to_verilog(comp, name), name)
        net = netlist_sim.Netlist(netd)
        start = "clear" if unit in ("int-mac", "fp-mac") else "first"
        e_a = energy.energy_per_op_pj(result)
        views = {}
        for view, blocks in (("random", random_blocks(kind, np.random.default_rng(args.seed))),
                             ("real", real.blocks(kind))):
            stim = te.dot_streams(blocks, args.lanes, args.cycles, start=start,
                                  rng=np.random.default_rng(args.seed + 1))
            views[view] = te.toggle_energy(net, stimulus=stim, warmup=WARMUP)
            if view == "random" and not args.no_unit_delay:
                views["unit"] = te.toggle_energy(net, stimulus=stim, warmup=WARMUP, delay="unit")
        rows.append(dict(key=key, label=label, area_ge=result.area_ge, flip_flops=result.flip_flops,
                         depth=result.logic_depth, a=e_a, b_random=views["random"], b_real=views["real"],
                         b_unit=views.get("unit"), zeros=real.zero_fraction[kind]))
        print(f"  {label}: (a) {e_a:.3f}  (b) random {views['random'].pj_per_op:.3f}  "
              f"real {views['real'].pj_per_op:.3f} pJ/MAC  ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr)

    ref = rows[0]
    table = [["unit", "GE", "FF", "depth", "(a) pJ", "x INT8", "(b) rnd pJ", "x INT8", "(b) real pJ",
              "x INT8", "real/rnd", "(b)/(a) rnd"]]
    for r in rows:
        table.append([r["label"], f"{r['area_ge']:.0f}", str(r["flip_flops"]), str(r["depth"]),
                      f"{r['a']:.3f}", f"{r['a'] / ref['a']:.2f}",
                      f"{r['b_random'].pj_per_op:.3f}",
                      f"{r['b_random'].pj_per_op / ref['b_random'].pj_per_op:.2f}",
                      f"{r['b_real'].pj_per_op:.3f}",
                      f"{r['b_real'].pj_per_op / ref['b_real'].pj_per_op:.2f}",
                      f"{r['b_real'].pj_per_op / r['b_random'].pj_per_op:.2f}",
                      f"{r['b_random'].pj_per_op / r['a']:.2f}"])
    print_table(table, title=f"Energy per MAC, 45 nm, 0.9 V: (a) gate-count model, (b) gate-level "
                             f"toggles, zero delay ({args.lanes} streams x {args.cycles - WARMUP} "
                             f"counted cycles)")
    if rows[0]["b_unit"] is not None:
        uref = rows[0]["b_unit"]
        ut = [["unit", "depth", "(b) zero-delay pJ", "x INT8", "(b) unit-delay pJ", "x INT8",
               "unit/zero", "logic toggles/net/cyc zero", "unit"]]
        for r in rows:
            z, u = r["b_random"], r["b_unit"]
            ut.append([r["label"], str(r["depth"]), f"{z.pj_per_op:.3f}",
                       f"{z.pj_per_op / ref['b_random'].pj_per_op:.2f}", f"{u.pj_per_op:.3f}",
                       f"{u.pj_per_op / uref.pj_per_op:.2f}", f"{u.pj_per_op / z.pj_per_op:.2f}",
                       f"{z.toggle_rates['logic']:.3f}", f"{u.toggle_rates['logic']:.3f}"])
        print_table(ut, title="Glitching, random streams: zero delay (no glitches) vs transport "
                              "unit delay (every cell 1 unit, no inertial filtering: overstates "
                              "glitches in deep logic); the truth lies in between")
    brk = [["unit", "stream", "logic", "flip-flops", "clock", "inputs", "toggle/net/cyc logic",
            "FF", "zero operands a/b"]]
    for r in rows:
        for view in ("random", "real"):
            e = r[f"b_{view}"]
            z = f"{100 * r['zeros'][0]:.0f}% / {100 * r['zeros'][1]:.0f}%" if view == "real" else "-"
            brk.append([r["label"], view] + [f"{e.breakdown[k]:.3f}" for k in
                                             ("logic", "flip_flops", "clock", "inputs")]
                       + [f"{e.toggle_rates['logic']:.3f}", f"{e.toggle_rates['flip_flops']:.3f}", z])
    print_table(brk, title="(b) breakdown, pJ per MAC, and activity")

    cal = [["circuit", "GE", "depth", "Horowitz pJ", "(a) pJ", "(b) random pJ", "(b) / Horowitz",
            "(b) unit-delay pJ", "/ Horowitz"]]
    rng = np.random.default_rng(args.seed)
    for name, text in energy.CALIBRATION_OPS.items():
        w = int(name[3:])
        res, netd = fs.generic_netlist(text, name)
        stim = {"a": rng.integers(0, 1 << w, (args.cycles, args.lanes), dtype=np.int64),
                "b": rng.integers(0, 1 << w, (args.cycles, args.lanes), dtype=np.int64)}
        e = te.toggle_energy(netd, stimulus=stim, warmup=1)
        h = energy.HOROWITZ_45NM[name][0]
        line = [name, f"{res.area_ge:.0f}", str(res.logic_depth), f"{h:g}",
                f"{energy.energy_per_op_pj(res):.3f}", f"{e.pj_per_op:.3f}", f"{e.pj_per_op / h:.2f}"]
        if args.no_unit_delay:
            line += ["-", "-"]
        else:
            u = te.toggle_energy(netd, stimulus=stim, warmup=1, delay="unit")
            line += [f"{u.pj_per_op:.3f}", f"{u.pj_per_op / h:.2f}"]
        cal.append(line)
    print_table(cal, title="(b) on the calibration circuits of (a) (combinational, fresh random "
                           "operands every cycle) against Horowitz 45 nm")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        doc = [{"key": r["key"], "label": r["label"], "area_ge": r["area_ge"],
                "flip_flops": r["flip_flops"], "a_pj_per_mac": r["a"],
                "b_random": r["b_random"].to_dict(), "b_real": r["b_real"].to_dict(),
                "b_random_unit_delay": r["b_unit"].to_dict() if r["b_unit"] else None,
                "real_zero_fraction_a_b": r["zeros"]} for r in rows]
        with open(args.json, "w") as f:
            json.dump({"lanes": args.lanes, "cycles": args.cycles, "warmup": WARMUP,
                       "seed": args.seed, "units": doc}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
