# amaranth: UnusedElaboratable=no
"""hdl.overq_pe against lowbit.models.overq in Amaranth's simulator (bit-exact)."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from lowbit.hdl import catalog, manifest
from lowbit.hdl.overq_pe import IntPe, IntPeStep, OverqPe, OverqStep
from lowbit.models import overq as oq
from lowbit.models.overq import OverqConfig
from lowbit.sim.bench_overq import de_bruijn_pairs, overq_vectors


def _sv(v, bits):
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def test_validation():
    with pytest.raises(ValueError, match=r"^bits must be an integer from 2 to 16, not 17$"):
        OverqPe(bits=17)
    with pytest.raises(ValueError, match=r"^w_bits must be an integer from 2 to 16, not 1$"):
        OverqStep(w_bits=1)
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer from 16 to 64, not 15$"):
        OverqPe(bits=4, w_bits=4, acc_bits=15)
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer from 12 to 64, not 11$"):
        OverqPe(bits=4, w_bits=4, acc_bits=11, precision=False)
    with pytest.raises(ValueError, match=r"^cascade must be an integer from 0 to 16, not 17$"):
        OverqPe(cascade=17)
    with pytest.raises(TypeError, match=r"^precision must be True or False, not 2$"):
        OverqPe(precision=2)
    with pytest.raises(ValueError, match=r"^shift_at must be one of product, operands, not 'mux'$"):
        OverqStep(shift_at="mux")
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer from 8 to 64, not 7$"):
        IntPe(acc_bits=7)
    assert OverqPe(cascade=0, precision=False).meta.shape().width == 1
    assert OverqPe().meta.shape().width == 2


@pytest.mark.parametrize("shift_at", ["product", "operands"])
@pytest.mark.parametrize("kw", [dict(cascade=1, precision=True), dict(cascade=1, precision=False),
                                dict(cascade=0, precision=False)])
def test_step_matches_model(kw, shift_at):
    """Every (code, meta, w) for b = 4 with random w_prev and psum, combinationally."""
    dut = OverqStep(bits=4, w_bits=4, acc_bits=18, shift_at=shift_at, **kw)
    cfg = dut.config
    rng = np.random.default_rng(1)
    c, m, w = (a.ravel() for a in np.meshgrid(np.arange(16), np.arange(1 << cfg.meta_bits),
                                              np.arange(-8, 8), indexing="ij"))
    wp = rng.integers(-8, 8, c.size)
    ps = rng.integers(-(1 << 17), 1 << 17, c.size)
    exp = oq.overq_step(c, m, w, wp, ps, cfg, w_bits=4, acc_bits=18)
    got = []

    async def bench(ctx):
        for args in zip(c.tolist(), m.tolist(), w.tolist(), wp.tolist(), ps.tolist()):
            for port, v in zip((dut.code, dut.meta, dut.w, dut.w_prev, dut.psum_in), args):
                ctx.set(port, v)
            await ctx.delay(1e-9)
            got.append(ctx.get(dut.psum_out))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(np.array(got), exp)


@pytest.mark.parametrize("bits,kw", [(4, dict(cascade=2, precision=True)), (8, dict(cascade=1, precision=True)),
                                     (4, dict(cascade=0, precision=False)),
                                     (8, dict(cascade=1, precision=True, shift_at="operands")),
                                     (4, dict(cascade=1, precision=False, shift_at="operands"))])
def test_pe_stream_matches_model(bits, kw):
    dut = OverqPe(bits=bits, w_bits=bits, acc_bits=2 * bits + 3 * bits, **kw)   # small: wraps happen
    cfg = dut.config
    vec = overq_vectors(cfg, bits, seed=3, random_cycles=300, lanes=1, exhaustive=False)
    vec = {k: v[:, 0] for k, v in vec.items()}
    exp = oq.overq_pe_stream(vec["code"], vec["meta"], vec["w"], cfg, first=vec["first"],
                             valid=vec["valid"], w_bits=bits, acc_bits=dut.acc_bits)
    got = []

    async def bench(ctx):
        for i in range(len(exp)):
            for k in ("code", "meta", "w", "first", "valid"):
                ctx.set(getattr(dut, k), int(vec[k][i]))
            await ctx.tick()
            got.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(np.array(got), exp)


def test_int_pe_stream_matches_model():
    dut = IntPe(bits=4, w_bits=4, acc_bits=10)
    rng = np.random.default_rng(4)
    n = 300
    code, w = rng.integers(0, 16, n), rng.integers(-8, 8, n)
    first, valid = rng.random(n) < 0.1, rng.random(n) < 0.9
    exp = oq.int_pe_stream(code, w, first=first, valid=valid, bits=4, w_bits=4, acc_bits=10)
    got = []

    async def bench(ctx):
        for i in range(n):
            ctx.set(dut.code, int(code[i]))
            ctx.set(dut.w, int(w[i]))
            ctx.set(dut.first, int(first[i]))
            ctx.set(dut.valid, int(valid[i]))
            await ctx.tick()
            got.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(np.array(got), exp)


@pytest.mark.parametrize("cfg", [OverqConfig(4, 2, True), OverqConfig(4, 1, False)])
def test_weight_stationary_column(cfg):
    """A WS column of K steps (psum down the column, w_prev = weight of the PE above) computes
    overq_dot of real encoded vectors, and the same column of plain steps computes int_pe."""
    K, w_bits, acc_bits = 12, 4, 24
    rng = np.random.default_rng(8)
    x = rng.standard_normal((40, K))
    x[rng.random(x.shape) < 0.4] = 0
    x *= np.where(rng.random(x.shape) < 0.1, 10, 1)
    t = oq.encode(x, cfg, oq.calibrate(x, cfg.bits, "mse"))
    w = rng.integers(-8, 8, K)
    exp = oq.overq_dot(t.codes, t.meta, w, cfg, w_bits=w_bits, acc_bits=acc_bits)
    pcodes = oq.plain_encode(x, 4, 0.5)
    exp_int = oq.int_pe(pcodes, w, bits=4, w_bits=4, acc_bits=acc_bits)
    assert t.accommodated > 0

    m = Module()
    steps, isteps = [], []
    for k in range(K):
        s = OverqStep(cfg.bits, w_bits, acc_bits, cfg.cascade, cfg.precision)
        p = IntPeStep(cfg.bits, w_bits, acc_bits)
        m.submodules[f"pe{k}"] = s
        m.submodules[f"ipe{k}"] = p
        m.d.comb += [s.w.eq(int(w[k])), s.w_prev.eq(int(w[k - 1]) if k else 0), p.w.eq(int(w[k]))]
        if k:
            m.d.comb += [s.psum_in.eq(steps[-1].psum_out), p.psum_in.eq(isteps[-1].psum_out)]
        steps.append(s)
        isteps.append(p)
    got, got_int = [], []

    async def bench(ctx):
        for r in range(x.shape[0]):
            for k in range(K):
                ctx.set(steps[k].code, int(t.codes[r, k]))
                ctx.set(steps[k].meta, int(t.meta[r, k]))
                ctx.set(isteps[k].code, int(pcodes[r, k]))
            await ctx.delay(1e-9)
            got.append(ctx.get(steps[-1].psum_out))
            got_int.append(ctx.get(isteps[-1].psum_out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(np.array(got), exp)
    np.testing.assert_array_equal(np.array(got_int), exp_int)


def test_exhaustive_vectors_cover_every_combination():
    cfg = OverqConfig(4, 1, True)
    s = de_bruijn_pairs(16)
    assert len(s) == 257 and len(set(zip(s, s[1:]))) == 256
    vec = overq_vectors(cfg, 4, random_cycles=0)
    seen = set()
    for lane in range(vec["code"].shape[1]):
        c, m, w = vec["code"][:, lane], vec["meta"][:, lane], vec["w"][:, lane]
        seen |= {(int(c[i]), int(m[i]), int(w[i]), int(w[i - 1])) for i in range(1, len(w))}
    assert len(seen) == 16 * 4 * 16 * 16


@pytest.mark.parametrize("name", ["overq-pe", "int-pe"])
def test_catalog_manifest(name, tmp_path):
    unit = catalog.get_unit(name)
    comp, params = unit.build()
    v, j = manifest.write_unit(comp, name, params, tmp_path)
    import json
    man = json.loads(open(j).read())
    assert man["latency_cycles"] == 1
    ports = {p["name"]: p for p in man["ports"]}
    assert all(p["meaning"] for p in ports.values())
    assert ports["acc"]["width"] == 32 and ports["acc"]["signed"]
    assert f"module {name.replace('-', '_')}" in open(v).read()
    if name == "overq-pe":
        assert ports["meta"]["width"] == 2
        assert man["contract"]["shifts"] == {"own": 4, "range": 8, "shift": 4, "precision": 0}
    for step in (OverqStep(), IntPeStep()):
        assert set(step.port_docs) == {"__".join(map(str, p)) for p, _ in step.signature.members.flatten()}
