"""Issue 17 section 2: relative error of long FP8 dot products per accumulator datapath, beside
the datapath's area and energy per MAC.

    python benchmarks/accumulation_error.py [--trials T] [--kmax-log2 16] [--out DIR] [--no-synth]

Operands (A in E4M3, B in E5M2, both rounded to nearest-even from float64 draws), two
distributions, ``T`` independent dot products each (default 128):

* ``act x grad``: A = |N(0, 1)| (post-ReLU activations), B = N(0, 2^-10) (back-propagated
  gradients, E5M2 as in Micikevicius et al. 2022): zero-mean products, so the exact sum grows like
  sqrt(K) and the relative error includes cancellation.
* ``wt x act``: A = N(0.05, 0.1) (weights with a positive mean), B = |N(0, 1)| (activations):
  positive-mean products, so the sum grows like K and a narrow accumulator is swamped (small
  addends fall below half an ULP of the running sum) -- the case chunking and Kahan address.

For every datapath the ``T`` sums are run once to ``K = 2^kmax`` and read after ``K = 2^4, 2^5,
..., 2^kmax`` products (prefixes of the same sequences, so the points of one curve are
correlated).  The reference is the exact sum: the products are exact (``fp_mul``) and integer
multiples of 2^-25 (the LSB of the smallest E4M3 x E5M2 product), summed in int64 halves; the
error ``|acc - S| / |S|`` is evaluated with Fractions.  Printed: mean and 99th percentile per
datapath and K (the 99th percentile of T = 128 samples is the second-largest: a rough tail
estimate), and area (NAND2 gate equivalents, generic Yosys flow) and energy per MAC (the
calibrated model of :mod:`lowbit.sim.energy`) of the datapath's catalogue unit, synthesised
through the lowbit synthesis cache.  Writes ``accumulation_error.png`` and ``.csv`` to ``--out``.
"""

import argparse
import csv
import os
import sys
import time
from fractions import Fraction

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import accum_datapaths as adp  # noqa: E402  (sibling module of the benchmark scripts)

from lowbit.cli.table import print_table  # noqa: E402
from lowbit.models import mac  # noqa: E402

DISTRIBUTIONS = ("act x grad", "wt x act")


def operands(dist, trials, kmax, seed):
    """``(a_codes, b_codes)`` of shape ``(trials, kmax)`` for distribution ``dist``."""
    rng = np.random.default_rng(seed)
    shape = (trials, kmax)
    if dist == "act x grad":
        a = np.abs(rng.standard_normal(shape))
        b = rng.normal(0.0, 2.0 ** -10, shape)
    elif dist == "wt x act":
        a = rng.normal(0.05, 0.1, shape)
        b = np.abs(rng.standard_normal(shape))
    else:
        raise ValueError(f"dist must be one of {', '.join(DISTRIBUTIONS)}, not {dist!r}")
    return adp.A_FORMAT.encode(a), adp.B_FORMAT.encode(b)


def exact_prefix_sums(p_values, lsb_exp, ks):
    """Exact ``sum(p[:, :k])`` for each ``k`` in ``ks`` as Fractions, shape ``(len(ks), T)``.

    Every product is an integer multiple of ``2^lsb_exp`` below 2^51 of it: split into 26-bit
    halves, each half's running sum fits in int64 for ``K <= 2^16``."""
    q = np.ldexp(p_values, -lsb_exp)
    assert np.all(q == np.rint(q)) and np.all(np.abs(q) < 2.0 ** 51)
    q = q.astype(np.int64)
    hi = np.cumsum(q >> 26, axis=1)
    lo = np.cumsum(q & ((1 << 26) - 1), axis=1)
    scale = Fraction(2) ** lsb_exp
    return [[(int(hi[i, k - 1]) * (1 << 26) + int(lo[i, k - 1])) * scale
             for i in range(q.shape[0])] for k in ks]


def run_datapath(dp, a_codes, b_codes, ks):
    """Values of ``dp``'s accumulator after each ``k`` in ``ks``: array ``(len(ks), lanes)``.

    ``a_codes``, ``b_codes``: ``(lanes, K)``."""
    out = dp.run(a_codes.T, b_codes.T)
    return dp.acc_format.decode(out[np.array(ks) - 1])


def rel_errors(values, exact):
    """``|v - S| / |S|`` per entry (float), exact in the difference."""
    err = np.empty(values.shape)
    for j, row in enumerate(exact):
        for i, s in enumerate(row):
            v = values[j, i]
            if not np.isfinite(v):
                err[j, i] = np.inf
            elif s == 0:
                err[j, i] = 0.0 if v == 0 else np.inf
            else:
                err[j, i] = float(abs(Fraction(float(v)) - s) / abs(s))
    return err


def unit_cost(dp, use_synth):
    """``(area_ge, energy_pj)`` of the datapath's unit, or ``None`` (no unit / no synthesis)."""
    if not dp.unit or not use_synth:
        return None
    from lowbit.fpga import synth as fs
    from lowbit.hdl import catalog, manifest
    from lowbit.sim import energy
    name, params = dp.unit
    comp, _ = catalog.get_unit(name).build(**{k: str(v) if not isinstance(v, bool) else v
                                              for k, v in params.items()})
    top = name.replace("-", "_")
    r = fs.synth(manifest.to_verilog(comp, top), top, "generic")
    return r.area_ge, energy.energy_per_op_pj(r)


def plot(ks, stats, path):
    # matplotlib is a dependency but only this figure needs it
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(DISTRIBUTIONS), figsize=(14, 6), sharey=True)
    names = list(dict.fromkeys(n for (_, n) in stats))
    cmap = plt.get_cmap("tab20")
    for ax, dist in zip(axes, DISTRIBUTIONS):
        for i, name in enumerate(names):
            mean, p99 = stats[(dist, name)]
            c = cmap(i % 20)
            floor = 1e-18                     # exact results plotted at the floor
            ax.loglog(ks, np.maximum(mean, floor), "-o", color=c, ms=3, label=name)
            ax.loglog(ks, np.maximum(p99, floor), "--", color=c, lw=0.8)
        ax.set_title(f"{dist}: E4M3 x E5M2 products (solid mean, dashed p99)")
        ax.set_xlabel("K (products summed)")
        ax.set_xscale("log", base=2)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("relative error |acc - exact| / |exact|")
    axes[-1].legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=128, help="dot products per distribution")
    ap.add_argument("--kmax-log2", type=int, default=16, help="longest K = 2^this (4..16)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--out", default=".", help="folder for the PNG and CSV")
    ap.add_argument("--no-synth", action="store_true", help="skip the area/energy columns")
    ap.add_argument("--only", default="", help="comma-separated datapath names (default: all)")
    args = ap.parse_args(argv)
    if not 4 <= args.kmax_log2 <= 16:
        print("error: --kmax-log2 must be 4..16", file=sys.stderr)
        return 2
    ks = [1 << e for e in range(4, args.kmax_log2 + 1)]
    kmax = ks[-1]
    pf = mac.product_format(adp.A_FORMAT, adp.B_FORMAT)
    _, lsb = mac.kulisch_width(adp.A_FORMAT, adp.B_FORMAT, 1)
    # both distributions side by side in one lane array (the per-step cost is per call)
    a_all, b_all, exact = [], [], []
    for j, dist in enumerate(DISTRIBUTIONS):
        a, b = operands(dist, args.trials, kmax, args.seed + j)
        p = mac.fp_mul(a, b, adp.A_FORMAT, adp.B_FORMAT)
        a_all.append(a)
        b_all.append(b)
        exact.append(exact_prefix_sums(pf.decode(p), lsb, ks))
    a_all = np.concatenate(a_all, axis=0)
    b_all = np.concatenate(b_all, axis=0)
    dps = adp.study_datapaths()
    if args.only:
        want = [s.strip() for s in args.only.split(",")]
        dps = [d for d in dps if d.name in want]
    stats, rows_csv, costs = {}, [], {}
    for dp in dps:
        t0 = time.time()
        vals = run_datapath(dp, a_all, b_all, ks)
        for j, dist in enumerate(DISTRIBUTIONS):
            sl = slice(j * args.trials, (j + 1) * args.trials)
            err = rel_errors(vals[:, sl], exact[j])
            mean = err.mean(axis=1)
            p99 = np.percentile(err, 99, axis=1, method="higher")
            stats[(dist, dp.name)] = (mean, p99)
            for k, m, q in zip(ks, mean, p99):
                rows_csv.append([dist, dp.name, k, f"{m:.6e}", f"{q:.6e}"])
        costs[dp.name] = unit_cost(dp, not args.no_synth)
        print(f"{dp.name}: {time.time() - t0:.1f} s", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "accumulation_error.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["distribution", "datapath", "K", "mean_rel_err", "p99_rel_err"])
        w.writerows(rows_csv)
    show = [k for k in (16, 256, 4096) if k < kmax] + [kmax]
    for dist in DISTRIBUTIONS:
        head = ["datapath"] + [f"K={k} mean / p99" for k in show] + ["area GE", "E/MAC pJ"]
        rows = [head]
        for dp in dps:
            mean, p99 = stats[(dist, dp.name)]
            cells = [f"{mean[ks.index(k)]:.2e} / {p99[ks.index(k)]:.2e}" for k in show]
            c = costs[dp.name]
            cells += [f"{c[0]:.0f}", f"{c[1]:.3f}"] if c else ["-", "-"]
            rows.append([dp.name] + cells)
        print_table(rows, title=f"{dist}: relative error vs exact sum, {args.trials} trials")
    plot(ks, stats, os.path.join(args.out, "accumulation_error.png"))
    print(f"wrote {os.path.join(args.out, 'accumulation_error.png')} and .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
