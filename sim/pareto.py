"""Pareto fronts of a sweep table (:mod:`lowbit.sim.sweep`) and their plot.

A point *dominates* another when it is at least as good in every objective and strictly better
in one (objectives minimised, or maximised for Fmax); the front is the set of points that no
other point dominates (Deb, "Multi-Objective Optimization using Evolutionary Algorithms",
Wiley 2001, section 2.4). Points with equal objectives do not dominate each other, so both stay
on the front.

:data:`FRONTS` are the report's three views (issue 18): area vs error, energy vs error (the
(b) toggle view when the table has it, else the (a) gate-count view) and Fmax vs area (FPGA
rows: LUTs per MAC; a sweep without FPGA rows shows logic depth, the generic flow's unit-delay
stand-in for the critical path, against area instead, and says so on the axis).
"""

import dataclasses
import math

import numpy as np

__all__ = ["Front", "FRONTS", "dominated", "front_indices", "fronts", "front_rows", "plot"]


@dataclasses.dataclass(frozen=True)
class Front:
    """One view: column ``x`` against column ``y``, each minimised (``"min"``) or maximised
    (``"max"``); ``title`` and axis labels for the plot; ``log_y`` for the error axis."""
    key: str
    title: str
    x: str
    x_label: str
    x_sense: str
    y: str
    y_label: str
    y_sense: str
    log_y: bool = False


_ERROR = ("error_rms_rel", "relative RMS error of the workload's dot products")

#: The views of the report, in plot order; :func:`fronts` keeps those the table can fill.
FRONTS = (
    Front("area-error", "area vs error", "area_ge_per_mac", "area per MAC (NAND2 eq., generic)",
          "min", *_ERROR, "min", True),
    Front("energy-error", "energy (b) vs error", "energy_toggles_pj_per_mac",
          "energy per MAC, pJ ((b) gate-level toggles, 45 nm)", "min", *_ERROR, "min", True),
    Front("energy-error", "energy (a) vs error", "energy_gates_pj_per_mac",
          "energy per MAC, pJ ((a) gate-count model, 45 nm)", "min", *_ERROR, "min", True),
    Front("fmax-area", "Fmax vs area", "luts_per_mac", "LUT4 per MAC (FPGA)", "min",
          "fmax_mhz", "Fmax, MHz (nextpnr)", "max"),
    Front("fmax-area", "logic depth vs area (no FPGA rows: unit-delay stand-in for Fmax)",
          "area_ge_per_mac", "area per MAC (NAND2 eq., generic)", "min", "logic_depth",
          "logic depth, cells (lower: higher Fmax)", "min"),
)


def _number(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))


def dominated(values, senses):
    """For ``values`` (``(n, m)``: n points, m objectives) and ``senses`` (m of
    ``"min"``/``"max"``), a boolean array: True where another point dominates the point."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(senses):
        raise ValueError(f"values must be (points, {len(senses)}) for {len(senses)} senses, "
                         f"not shape {v.shape}")
    for s in senses:
        if s not in ("min", "max"):
            raise ValueError(f"each sense must be 'min' or 'max', not {s!r}")
    v = v * np.array([1.0 if s == "min" else -1.0 for s in senses])   # all minimised
    le = (v[:, None, :] <= v[None, :, :]).all(axis=2)    # [j, i]: j no worse than i everywhere
    lt = (v[:, None, :] < v[None, :, :]).any(axis=2)     # [j, i]: j better somewhere
    return (le & lt).any(axis=0)


def front_indices(rows, front):
    """``(candidates, on_front)``: indices into ``rows`` of the ``ok`` rows that have both of
    ``front``'s figures, and of those the non-dominated ones, ordered by x then y."""
    cand = [i for i, r in enumerate(rows) if r.get("status") == "ok"
            and _number(r.get(front.x)) and _number(r.get(front.y))]
    if not cand:
        return [], []
    dom = dominated([[rows[i][front.x], rows[i][front.y]] for i in cand],
                    (front.x_sense, front.y_sense))
    on = [i for i, d in zip(cand, dom) if not d]
    on.sort(key=lambda i: (rows[i][front.x], rows[i][front.y]))
    return cand, on


def fronts(rows):
    """The views of :data:`FRONTS` that ``rows`` can fill (at least one point), one per
    ``key`` (the first that can): ``[(Front, candidates, on_front)]``."""
    out, keys = [], set()
    for f in FRONTS:
        if f.key in keys:
            continue
        cand, on = front_indices(rows, f)
        if cand:
            out.append((f, cand, on))
            keys.add(f.key)
    return out


def _fmt(v):
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def front_rows(rows, front, on):
    """Header + one text row per front point: label, x, y, and the other headline figures."""
    extra = [c for c in ("area_ge_per_mac", "energy_gates_pj_per_mac",
                         "energy_toggles_pj_per_mac", "error_rms_rel", "fmax_mhz", "latency")
             if c not in (front.x, front.y) and any(rows[i].get(c) is not None for i in on)]
    out = [["point", front.x, front.y] + extra]
    for i in on:
        r = rows[i]
        out.append([r.get("label", r.get("point"))] + [_fmt(r.get(c))
                                                        for c in [front.x, front.y] + extra])
    return out


def plot(rows, path, title=""):
    """Write a PNG with one panel per view of :func:`fronts`: every point, the dominated ones
    faded, the front drawn as a step line and its points labelled. Returns ``path``."""
    # matplotlib is imported here: only the PNG needs it, and it is slow to import
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # (after choosing the Agg backend)
    views = fronts(rows)
    if not views:
        raise ValueError("the table has no measured points with two figures of a Pareto view "
                         "(area, energy, Fmax or depth against error or area)")
    n = len(views)
    fig, axes = plt.subplots(1, n, figsize=(7.5 * n, 6.2), squeeze=False)
    units = sorted({rows[i]["unit"] for _, cand, _ in views for i in cand})
    colours = {u: plt.get_cmap("tab10")(k % 10) for k, u in enumerate(units)}
    for ax, (f, cand, on) in zip(axes[0], views):
        onset = set(on)
        for u in units:
            xs = [rows[i][f.x] for i in cand if rows[i]["unit"] == u and i not in onset]
            ys = [rows[i][f.y] for i in cand if rows[i]["unit"] == u and i not in onset]
            ax.scatter(xs, ys, s=22, color=colours[u], alpha=0.22, edgecolors="none",
                       label=f"{u} (dominated)" if xs else None)
            xs = [rows[i][f.x] for i in on if rows[i]["unit"] == u]
            ys = [rows[i][f.y] for i in on if rows[i]["unit"] == u]
            ax.scatter(xs, ys, s=46, color=colours[u], edgecolors="black", linewidths=0.7,
                       zorder=3, label=f"{u} (on the front)" if xs else None)
        fx = [rows[i][f.x] for i in on]
        fy = [rows[i][f.y] for i in on]
        ax.step(fx, fy, where="post", color="black", linewidth=1.0, zorder=2,
                label="Pareto front")
        for k, i in enumerate(on):                 # alternate above/below: close neighbours
            ax.annotate(rows[i].get("label", rows[i]["point"]), (rows[i][f.x], rows[i][f.y]),
                        textcoords="offset points", xytext=(6, 5 if k % 2 == 0 else -11),
                        fontsize=6.5)
        if f.log_y and all(rows[i][f.y] > 0 for i in cand):
            ax.set_yscale("log")
        ax.set_xlabel(f.x_label)
        ax.set_ylabel(f.y_label)
        ax.set_title(f"{f.title}: {len(on)} of {len(cand)} points on the front", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
