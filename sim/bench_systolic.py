"""Co-simulation bench of the systolic array: whole GEMMs at the simulator's cycles.

The host side of a GEMM (:class:`GemmTiler`: the operand beats of each fold, where the result
beats go), the cycle-by-cycle drive of a GEMM at the schedule of
:class:`lowbit.models.systolic.Schedule` with what to expect every cycle (:func:`gemm_program`),
and the twins: :func:`ref_systolic` (the golden GEMM,
:func:`lowbit.models.systolic.gemm_numerics` with the array's PE) and :func:`cosim_gemm`, which
runs the array's Verilog under cocotb and checks ``i.ready``, ``o.valid``, every result code
and ``last`` on every cycle, and the first and last cycles against the schedule.
:func:`cosim_systolic` is the bench of ``lowbit cosim systolic``.
"""

import time

import numpy as np

from lowbit.hdl import catalog
from lowbit.models.systolic import gemm_numerics

from . import cosim

__all__ = ["GemmTiler", "gemm_program", "random_operands", "ref_systolic", "ref_systolic_state",
           "cosim_gemm", "cosim_systolic"]


def random_operands(spec, M, K, N, rng, specials=0.0):
    """Random ``(A, B)`` operand codes for a GEMM on an array of PE ``spec``
    (:class:`~lowbit.models.systolic.PESpec`): uniform codes; float NaN/Inf codes are replaced
    by 0 except in a fraction ``specials`` of the elements. OverQ: ``A`` lanes are
    ``code | meta << bits`` with metadata of the configuration, ``B`` signed weight values."""
    if spec.kind == "overq":
        cfg = spec.overq_config
        codes = rng.integers(0, 1 << spec.bits, (M, K))
        meta = rng.choice(np.asarray(cfg.meta_codes), (M, K))
        w = rng.integers(-(1 << (spec.w_bits - 1)), 1 << (spec.w_bits - 1), (K, N))
        return codes | (meta << spec.bits), w
    out = []
    for fmt, shape in ((spec.a_format, (M, K)), (spec.b_format, (K, N))):
        x = rng.integers(0, 1 << fmt.bits, shape)
        if spec.kind == "fp":
            bad = ~np.isfinite(fmt.decode(x)) & (rng.random(shape) >= specials)
            x[bad] = 0
        out.append(x)
    return tuple(out)


def ref_systolic(array, A, B):
    """The golden GEMM of ``array`` in its accumulation order:
    :func:`~lowbit.models.systolic.gemm_numerics` with the array's PE (INT/OverQ: signed
    values; FP: uint64 result codes)."""
    return np.asarray(gemm_numerics(np.asarray(A), np.asarray(B), array.rows, array.cols,
                                    array.dataflow, array.spec))


def ref_systolic_state(array, A, B):
    """Kulisch PE: the exact accumulator states of the GEMM (what the ``state`` fields of the
    result beats carry and the psum lanes take), packed as ``fixed mod 2^width | flags <<
    width`` (object array of ints)."""
    if not array.kulisch:
        raise ValueError("ref_systolic_state needs pe 'fp' with mode 'kulisch'")
    return np.asarray(gemm_numerics(np.asarray(A), np.asarray(B), array.rows, array.cols,
                                    array.dataflow, array.spec.datapath(output="state")),
                      dtype=object)


class GemmTiler:
    """Host side of a GEMM on a :class:`~lowbit.hdl.systolic.SystolicArray`: operand beats per
    fold, result placement.

    Follows the fold order of :class:`lowbit.models.systolic.Schedule` (column fold outer, row
    fold inner) and its tiles (:meth:`~lowbit.models.systolic.Schedule.fold_tile`). Used by the
    test benches (Amaranth simulator and cocotb).

    Parameters
    ----------
    array : SystolicArray
    a_codes : array (M, K), b_codes : array (K, N)
        Operand codes (bit patterns of the array's ``a_format`` / ``b_format``).
    """

    def __init__(self, array, a_codes, b_codes):
        self.array = array
        self.A = np.asarray(a_codes)
        self.B = np.asarray(b_codes)
        if self.A.ndim != 2 or self.B.ndim != 2 or self.A.shape[1] != self.B.shape[0]:
            raise ValueError(f"a_codes must be (M, K) and b_codes (K, N) with equal K, not "
                             f"{self.A.shape} and {self.B.shape}")
        M, K = self.A.shape
        N = self.B.shape[1]
        self.M, self.K, self.N = M, K, N
        self.sched = array.gemm_cycles(M, K, N)
        # WS streams A's rows against B tiles; IS streams B's columns against A^T tiles
        self._is = array.dataflow == "is"
        self._S, self._W = (self.B.T, self.A.T) if self._is else (self.A, self.B)
        self._col = "M" if self._is else "N"
        #: length of the streamed operand per fold (M for WS, N for IS, K for OS)
        self.T = self.sched.T

    def beats_per_fold(self):
        """Operand beats per fold (WS: ``R + M``; OS: ``K``)."""
        return self.K if self.array.dataflow == "os" else self.array.rows + self.T

    def beat(self, f, k, out=None):
        """Beat ``k`` of fold ``f``, packed; WS psum lanes read from ``out`` (the results so far:
        the host's ofmap buffer, ``(M, N)``) when the fold continues a previous K-fold. For the
        Kulisch PE ``out`` holds the exact states (the result beats' ``state`` fields, see
        :meth:`~lowbit.hdl.systolic.SystolicArray.unpack_state`), not the rounded codes."""
        arr, R, C = self.array, self.array.rows, self.array.cols
        tile = self.sched.fold_tile(f)
        if arr.dataflow != "os":
            (k0, k1), (n0, n1) = tile["K"], tile[self._col]
            S, Wt = self._S, self._W
            if k < R:
                w = np.zeros(C, dtype=np.int64)
                r = R - 1 - k
                if r < k1 - k0:
                    w[:n1 - n0] = Wt[k0 + r, n0:n1]
                wprev = None
                if arr.pe == "overq":
                    wprev = np.zeros(C, dtype=np.int64)
                    if k0:
                        wprev[:n1 - n0] = Wt[k0 - 1, n0:n1]
                return arr.pack_operand(b=w, load=1, wprev=wprev)
            t = k - R
            a = np.zeros(R, dtype=np.int64)
            a[:k1 - k0] = S[t, k0:k1]
            ps = [arr.empty_sum] * C
            if k0 > 0:
                ps[:n1 - n0] = list(out[n0:n1, t] if self._is else out[t, n0:n1])
            return arr.pack_operand(a=a, mask=[int(i < k1 - k0) for i in range(R)], psum=ps,
                                    last=t == self.T - 1)
        (m0, m1), (n0, n1) = tile["M"], tile["N"]
        a = np.zeros(R, dtype=np.int64)
        a[:m1 - m0] = self.A[m0:m1, k]
        b = np.zeros(C, dtype=np.int64)
        b[:n1 - n0] = self.B[k, n0:n1]
        return arr.pack_operand(a=a, mask=[int(i < m1 - m0) for i in range(R)], b=b,
                                last=k == self.K - 1)

    def results_per_fold(self):
        """Result beats per fold (WS: ``M``; IS: ``N``; OS: ``R``)."""
        return self.array.rows if self.array.dataflow == "os" else self.T

    def place(self, f, results, out):
        """Write fold ``f``'s result beats (lists of ``C`` codes, in arrival order) into ``out``.

        WS/IS: ``out`` receives the (partial) sums over the fold's K range (WS: beat ``t`` is
        row ``t`` of ``out``, columns of the fold's N range; IS: beat ``t`` is column ``t``,
        rows of the fold's M range); OS: the final sums of its M x N tile (array row ``R - 1``
        arrives first).
        """
        tile = self.sched.fold_tile(f)
        if self.array.dataflow != "os":
            (n0, n1) = tile[self._col]
            for t, acc in enumerate(results):
                if self._is:
                    out[n0:n1, t] = acc[:n1 - n0]
                else:
                    out[t, n0:n1] = acc[:n1 - n0]
        else:
            (m0, m1), (n0, n1) = tile["M"], tile["N"]
            R = self.array.rows
            for r, acc in enumerate(results):
                i = R - 1 - r
                if i < m1 - m0:
                    out[m0 + i, n0:n1] = acc[:n1 - n0]


def gemm_program(array, A, B):
    """Cycle-by-cycle drive of a whole GEMM at the simulator's schedule, and what to expect.

    Operand beats are offered exactly in the cycles of the behavioural simulator's schedule
    (fold ``f`` beat ``k`` at ``f * P + k``); the sink is always ready. WS psum lanes of a
    K-fold carry the golden partial sums of the previous K-folds (open loop; the array's own
    partial sums of those folds are checked equal to them). Kulisch PE: the psum lanes carry the
    golden exact states, and the result beats' ``state`` fields are checked equal to them too.

    Returns
    -------
    inputs : dict
        Per-cycle ``i__valid``, ``i__payload``, ``o__ready`` for
        :func:`lowbit.sim.cosim.run_stream` (``latency=0``), ``Schedule.latency + 1`` cycles.
    expect : dict
        ``ready`` and ``ovalid`` (per-cycle expected ``i.ready`` / ``o.valid``: ready is low
        exactly in the ``R + C - 2`` skew-drain cycles after each fold's last beat),
        ``acc`` (cycles x C expected codes, -1 where not checked: unused columns / rows and
        cycles without a result), ``last`` (cycles), ``schedule``, ``golden`` (the GEMM in the
        golden representation); Kulisch PE in WS/IS: ``state`` (cycles x C expected packed exact
        states, -1 where not checked).
    """
    tl = GemmTiler(array, A, B)
    s = tl.sched
    R, C, w = array.rows, array.cols, array.acc_width
    cache, scache = {}, {}
    kul = array.kulisch

    def partial(k1):            # golden sums over k < k1, as unsigned codes
        if k1 not in cache:
            g = np.asarray(ref_systolic(array, tl.A[:, :k1], tl.B[:k1, :]))
            cache[k1] = (g, np.vectorize(lambda v: int(v) & ((1 << w) - 1), otypes=[object])(g))
        return cache[k1][1]

    def pstate(k1):             # Kulisch: exact golden states over k < k1, packed
        if k1 not in scache:
            scache[k1] = ref_systolic_state(array, tl.A[:, :k1], tl.B[:k1, :])
        return scache[k1]

    n = s.latency + 1
    valid = np.zeros(n, dtype=np.uint8)
    payload = np.zeros(n, dtype=object)
    ready = np.ones(n, dtype=np.uint8)
    ovalid = np.zeros(n, dtype=np.uint8)
    acc = np.full((n, C), -1, dtype=object)
    state = np.full((n, C), -1, dtype=object)
    last = np.zeros(n, dtype=np.uint8)
    P = s.fold_period
    ws = array.dataflow != "os"
    final = partial(tl.K)
    for f in range(s.folds):
        tile = s.fold_tile(f)
        (n0, n1) = tile["M" if array.dataflow == "is" else "N"]
        prev = None
        if ws:
            (k0, k1) = tile["K"]
            prev = (pstate(k0) if kul else partial(k0)) if k0 else None
        beats = tl.beats_per_fold()
        for k in range(beats):
            valid[f * P + k] = 1
            payload[f * P + k] = tl.beat(f, k, prev)
        end = f * P + beats - 1
        ready[end + 1:end + 1 + s.skew_drain] = 0
        if ws:
            ref = partial(k1)
            for t in range(tl.T):
                c = s.output_cycle(f, t)
                ovalid[c], last[c] = 1, t == tl.T - 1
                acc[c, :n1 - n0] = ref[n0:n1, t] if array.dataflow == "is" else ref[t, n0:n1]
                if kul:
                    st = pstate(k1)
                    state[c, :n1 - n0] = st[n0:n1, t] if array.dataflow == "is" else st[t, n0:n1]
        else:
            (m0, m1) = tile["M"]
            for i in range(R):
                c = s.output_cycle(f, i)
                ovalid[c], last[c] = 1, i == 0
                if i < m1 - m0:
                    acc[c, :n1 - n0] = final[m0 + i, n0:n1]
    inputs = {"i__valid": valid, "i__payload": payload, "o__ready": np.ones(n, dtype=np.uint8)}
    exp = {"ready": ready, "ovalid": ovalid, "acc": acc, "last": last, "schedule": s,
           "golden": cache[tl.K][0]}
    if kul and ws:
        exp["state"] = state
    return inputs, exp


def cosim_gemm(array, M, K, N, seed=0, sim=None, specials=0.01, unit="systolic", params=None):
    """Co-simulate a random ``(M, K, N)`` GEMM through ``array``'s Verilog under cocotb.

    Drives :func:`gemm_program` with :func:`lowbit.sim.cosim.run_stream` and compares, for every
    cycle, ``i.ready``, ``o.valid``, the result codes and ``last`` with the simulator's schedule
    and the golden numerics (one vector per cycle). The report's notes give the cycle figures:
    first operand accepted at cycle 0, last result at the simulator's ``Schedule.latency``.

    Returns
    -------
    lowbit.sim.cosim.CosimReport
        ``report.cycles`` holds ``{"first_accept", "last_result", "schedule_latency",
        "compute_cycles", "fold_period", "folds"}`` measured on the RTL / from the simulator.
    """
    rng = np.random.default_rng(seed)
    A, B = random_operands(array.spec, M, K, N, rng, specials)
    inputs, exp = gemm_program(array, A, B)
    t0 = time.perf_counter()
    got = cosim.run_stream(array, inputs, ["i__ready", "o__valid", "o__payload"], latency=0,
                           sim=sim)
    n = len(inputs["i__valid"])
    g_ready = np.asarray(got["i__ready"]).astype(np.uint8)
    g_valid = np.asarray(got["o__valid"]).astype(np.uint8)
    g_acc = np.zeros((n, array.cols), dtype=object)
    g_last = np.zeros(n, dtype=np.uint8)
    for c in range(n):
        a, l = array.unpack_result(got["o__payload"][c])
        g_acc[c] = a
        g_last[c] = l if g_valid[c] else 0
    e_acc = np.where(exp["acc"] == -1, g_acc, exp["acc"])
    e_last = exp["last"]
    want = {"i_ready": exp["ready"], "o_valid": exp["ovalid"], "acc": e_acc, "last": e_last}
    have = {"i_ready": g_ready, "o_valid": g_valid, "acc": g_acc, "last": g_last}
    if "state" in exp:
        g_state = np.zeros((n, array.cols), dtype=object)
        for c in range(n):
            g_state[c] = array.unpack_state(got["o__payload"][c])
        want["state"] = np.where(exp["state"] == -1, g_state, exp["state"])
        have["state"] = g_state
    s = exp["schedule"]
    accepted = np.flatnonzero(inputs["i__valid"] & g_ready)
    produced = np.flatnonzero(g_valid)
    first = int(accepted[0]) if len(accepted) else -1
    last = int(produced[-1]) if len(produced) else -1
    params = dict(params or {"rows": array.rows, "cols": array.cols, "pe": array.pe,
                             "dataflow": array.dataflow,
                             **({"mode": array.mode} if array.mode else {})})
    report = cosim.CosimReport.compare(
        unit, params, got.simulator, seed,
        {"cycle": np.arange(n), "i_valid": inputs["i__valid"]},
        want, have,
        seconds=time.perf_counter() - t0,
        notes=[f"GEMM M={M} K={K} N={N} on {array.rows}x{array.cols} {array.dataflow}: "
               f"{s.folds} folds, fold period {s.fold_period}",
               f"cycles: first operand accepted at {first}, last result at {last}; "
               f"simulator Schedule.latency {s.latency} (compute_cycles {s.compute_cycles} "
               f"+ drain {s.drain})"])
    if last - first != s.latency or first != 0:
        report.mismatches += 1
        report.notes.append("CYCLE COUNT DIFFERS from the simulator")
    report.cycles = {"first_accept": first, "last_result": last, "schedule_latency": s.latency,
                     "compute_cycles": s.compute_cycles, "fold_period": s.fold_period,
                     "folds": s.folds}
    return report


def cosim_systolic(params=None, vectors=None, seed=None, sim=None):
    """``lowbit cosim systolic``: one tiled GEMM of about ``vectors`` multiply-accumulates
    (M*K*N; default ``(2R+1) x (2R+3) x (2C+1)``, about four folds of the array in each
    dimension); a smaller ``vectors`` shrinks the GEMM down to 1 x 1 x 1."""
    unit = catalog.get_unit("systolic")
    array, resolved = unit.build(**(params or {}))
    R, C = array.rows, array.cols
    M, K, N = 2 * R + 1, 2 * R + 3, 2 * C + 1
    if vectors:
        scale = (vectors / (M * K * N)) ** (1 / 3)
        M, K, N = (max(1, int(round(x * scale))) for x in (M, K, N))
    return cosim_gemm(array, M, K, N, seed=seed if seed is not None else 0, sim=sim,
                      params=unit.typed(resolved))
