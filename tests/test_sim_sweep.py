# amaranth: UnusedElaboratable=no
"""lowbit.sim.sweep and lowbit.sim.pareto: the sweep file, its expansion, the error measure,
running points on Dask (resume, a failing point, a timed-out point), the table, the fronts."""

import csv
import json
import math
import os

import numpy as np
import pytest

from lowbit.fpga import synth
from lowbit.hdl import catalog
from lowbit.hdl.manifest import to_verilog
from lowbit.models import formats
from lowbit.sim import pareto, sweep

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache of this module's own, so that what is computed and what is cached is known."""
    old = os.environ.get("LOWBIT_CACHE")
    path = tmp_path_factory.mktemp("cache")
    os.environ["LOWBIT_CACHE"] = str(path)
    yield path
    if old is None:
        del os.environ["LOWBIT_CACHE"]
    else:
        os.environ["LOWBIT_CACHE"] = old


@pytest.fixture(scope="module")
def client(cache):
    """An in-process Dask cluster (threads): the tasks still run each point in a child."""
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as c:
            yield c


def tiny(**over):
    d = {"name": "tiny", "measures": ["area", "flip_flops", "depth", "energy_gates", "error"],
         "workload": "dot64-gauss", "seed": 3,
         "design": [{"unit": "int-mac", "params": {"a_format": "int4", "b_format": "int4"},
                     "axes": {"acc_bits": [8, 12]}}]}
    d.update(over)
    return sweep.from_dict(d)


# -- the file --------------------------------------------------------------------------------

BAD = """\
name = "bad"
measures = ["area", "speed"]
seeds = 3

[[design]]
unit = "int-mac"
params = { a_format = "int4", acc = 8 }
[design.axes]
acc_bits = [8, "wide"]
pipeline_stages = { from = 2, to = 1 }

[[design]]
unit = "fp-mac"
constraints = ["accbits > 3"]
[[design.zip]]
a_format = ["e4m3", "e5m2"]
b_format = ["e4m3"]

[[design]]
unit = "nope"
"""


def test_every_bad_key_and_value_is_one_error_naming_its_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    with pytest.raises(sweep.SweepFileError) as e:
        sweep.load(path)
    assert e.value.errors == [
        f"{path}:2: measures: must be among area, flip_flops, depth, luts, fmax, energy_gates, "
        f"energy_toggles, error, cycles, sim_energy, not 'speed'",
        f"{path}:3: seeds: unknown key; a sweep takes name, description, targets, measures, "
        f"workload, seed, timeout, freq_mhz, topology, design",
        f"{path}:7: design[0].params.acc: unit 'int-mac' has no parameter 'acc'; it has "
        f"a_format, b_format, acc_bits, overflow, pipeline_stages",
        f"{path}:9: design[0].axes.acc_bits: --acc-bits must be an integer, not 'wide'",
        f"{path}:10: design[0].axes.pipeline_stages.to: must be >= from (2), not 1",
        f"{path}:14: design[1].constraints: unknown name 'accbits' in 'accbits > 3'; names: "
        f"a_format, acc_format, b_format, flush_subnormals, lfsr_width, mode, pipeline_stages, "
        f"random_source, rounding, saturate, seed, sr_bits, target, terms",
        f"{path}:15: design[1].zip[0]: zipped lists must have equal lengths, not a_format: 2, "
        f"b_format: 1",
        f"{path}:20: design[2].unit: must be one of int-mac, fp-mul, fp-mac, chunked-mac, "
        f"kahan-mac, shared-exp-adder, mx-dot, bfp-adder, overq-pe, int-pe, systolic, "
        f"sr-quantise, tensor-core-dot, int-dot, not 'nope'",
    ]
    assert str(e.value) == "\n".join(e.value.errors)
    assert isinstance(e.value, ValueError)


def test_a_toml_syntax_error_names_its_line(tmp_path):
    path = tmp_path / "syntax.toml"
    path.write_text('name = "x"\nmeasures = ["area"\n[[design]]\n')
    with pytest.raises(sweep.SweepFileError, match=rf"^{path}:3: TOML syntax error: Unclosed "
                                                   rf"array$"):
        sweep.load(path)


def test_measures_and_targets_that_do_not_go_together():
    with pytest.raises(sweep.SweepFileError) as e:
        sweep.from_dict({"measures": ["fmax", "error"], "targets": ["generic"],
                         "design": [{"unit": "overq-pe"}]})
    assert e.value.errors == [
        "<dict>: measures: measure 'fmax' needs an FPGA target (ice40, ecp5) in targets",
        "<dict>: design[0].unit: measure 'error' is defined for units int-mac, fp-mac, mx-dot, "
        "not 'overq-pe'",
    ]


def test_key_lines_follow_tables_arrays_of_tables_and_dotted_keys():
    text = ('a = 1\nb = [\n  1,\n  2,\n]\nc.d = "x"\n[[design]]\nunit = "u"\n[design.axes]\n'
            'k = { from = 1, to = 2 }\n[[design]]\n[[design.zip]]\nx = [1]\n[[design.zip]]\n'
            'y = [2]\n')
    assert sweep.key_lines(text) == {
        ("a",): 1, ("b",): 2, ("c",): 6, ("c", "d"): 6, ("design", 0): 7,
        ("design", 0, "unit"): 8, ("design", 0, "axes"): 9, ("design", 0, "axes", "k"): 10,
        ("design", 1): 11, ("design", 1, "zip", 0): 12, ("design", 1, "zip", 0, "x"): 13,
        ("design", 1, "zip", 1): 14, ("design", 1, "zip", 1, "y"): 15}


def test_ranges_step_and_times():
    spec = sweep.from_dict({"measures": ["area"], "design": [
        {"unit": "mx-dot", "axes": {"k": {"from": 2, "to": 40, "times": 2},
                                    "pipeline_stages": {"from": 0, "to": 1}}},
        {"unit": "int-mac", "axes": {"acc_bits": {"from": 8, "to": 20, "step": 5}}}]})
    assert spec.designs[0].axes == (("k", (2, 4, 8, 16, 32)), ("pipeline_stages", (0, 1)))
    assert spec.designs[1].axes == (("acc_bits", (8, 13, 18)),)


# -- expansion ----------------------------------------------------------------------------

def test_expansion_product_zip_targets_constraints_and_refusals():
    spec = sweep.from_dict({
        "measures": ["flip_flops"], "targets": ["generic", "ice40"],
        "design": [{"unit": "int-mac", "params": {"overflow": "saturate"},
                    "axes": {"acc_bits": [1, 16], "pipeline_stages": [0, 3]},
                    "zip": [{"a_format": ["int8", "uint4"], "b_format": ["int8", "uint4"]}],
                    "constraints": ["pipeline_stages == 0 or target == 'generic'"]}]})
    points = sweep.expand(spec)
    got = [(p.values["acc_bits"], p.values["pipeline_stages"], p.values["a_format"], p.target,
            p.skip) for p in points]
    # the constraints first (they may rule out what the generator would refuse), then the
    # generator's own checks
    refused = "refused by the generator: acc_bits must be an integer from 2 to 64, not 1"
    ruled_out = "constraint \"pipeline_stages == 0 or target == 'generic'\" is false"
    assert got == [
        (1, 0, "int8", "generic", refused), (1, 0, "int8", "ice40", refused),
        (1, 0, "uint4", "generic", refused), (1, 0, "uint4", "ice40", refused),
        (1, 3, "int8", "generic", refused), (1, 3, "int8", "ice40", ruled_out),
        (1, 3, "uint4", "generic", refused), (1, 3, "uint4", "ice40", ruled_out),
        (16, 0, "int8", "generic", ""), (16, 0, "int8", "ice40", ""),
        (16, 0, "uint4", "generic", ""), (16, 0, "uint4", "ice40", ""),
        (16, 3, "int8", "generic", ""), (16, 3, "int8", "ice40", ruled_out),
        (16, 3, "uint4", "generic", ""), (16, 3, "uint4", "ice40", ruled_out)]
    assert points[8].params == {"a_format": "int8", "b_format": "int8", "acc_bits": 16,
                                "overflow": "saturate", "pipeline_stages": 0}
    assert points[8].label == "int-mac a=int8 b=int8 acc-bits=16 pipeline=0 [generic]"
    assert len({p.id for p in points}) == len(points)
    # the identity depends on the parameters, the target and the settings, nothing else
    again = sweep.expand(spec)
    assert [p.id for p in again] == [p.id for p in points]
    other = sweep.expand(sweep.from_dict({**{"measures": ["flip_flops", "area"],
                                             "targets": ["generic"]},
                                          "design": [{"unit": "int-mac",
                                                      "params": {"acc_bits": 16}}]}))
    assert other[0].id not in {p.id for p in points}


# -- the error measure ---------------------------------------------------------------------

def test_error_of_an_int8_mac_against_an_independent_computation():
    component, _ = catalog.get_unit("int-mac").build(acc_bits=32)
    err, acc_err = sweep.workload_error("int-mac", component, "dot64-gauss", 5)
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((64, 64)), rng.standard_normal((64, 64))
    sx, sy = np.abs(x).max() / 127, np.abs(y).max() / 127
    qx = np.clip(np.round(x / sx), -128, 127)         # np.round: half to even
    qy = np.clip(np.round(y / sy), -128, 127)
    d = (qx * qy).sum(axis=1) * sx * sy               # exact: integers below 2**53
    ref = (x * y).sum(axis=1)
    assert err == pytest.approx(math.sqrt(((d - ref) ** 2).sum() / (ref ** 2).sum()), rel=1e-12)
    assert acc_err == 0.0
    # a 12-bit accumulator wraps: the error of the accumulator alone is no longer zero
    narrow, _ = catalog.get_unit("int-mac").build(acc_bits=12)
    wrapped = ((qx * qy).sum(axis=1) + 2048) % 4096 - 2048
    got = sweep.workload_error("int-mac", narrow, "dot64-gauss", 5)[1]
    want = math.sqrt((((wrapped - (qx * qy).sum(axis=1)) * sx * sy) ** 2).sum()
                     / ((d ** 2).sum()))
    assert got == pytest.approx(want, rel=1e-12)


def test_error_of_an_fp8_mac_with_fp16_accumulation_against_float16_sums():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    component, _ = catalog.get_unit("fp-mac").build(a_format="e4m3", b_format="e4m3",
                                                    acc_format="fp16")
    err, acc_err = sweep.workload_error("fp-mac", component, "dot64-gauss", 1)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((64, 64)), rng.standard_normal((64, 64))
    qx = x.astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    qy = y.astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    acc = np.zeros(64, np.float16)
    for t in range(64):         # fused: exact product and sum (in float64), one rounding (RNE)
        acc = (acc.astype(np.float64) + qx[:, t] * qy[:, t]).astype(np.float16)
    ref = (x * y).sum(axis=1)
    exact = (qx * qy).sum(axis=1)
    d = acc.astype(np.float64)
    # (equal up to the order of the float64 sums of the norms)
    assert err == pytest.approx(math.sqrt(((d - ref) ** 2).sum() / (ref ** 2).sum()), rel=1e-12)
    assert acc_err == pytest.approx(math.sqrt(((d - exact) ** 2).sum() / (exact ** 2).sum()),
                                    rel=1e-12)
    assert 0 < acc_err < err


def test_error_is_reproducible_from_the_seed():
    component, _ = catalog.get_unit("mx-dot").build(k=8)
    a = sweep.workload_error("mx-dot", component, "dot64-gauss", 2)
    assert a == sweep.workload_error("mx-dot", component, "dot64-gauss", 2)
    assert a != sweep.workload_error("mx-dot", component, "dot64-gauss", 3)
    with pytest.raises(ValueError, match=r"^the error measure is defined for units int-mac, "
                                         r"fp-mac, mx-dot, not 'overq-pe'$"):
        sweep.workload_error("overq-pe", component, "dot64-gauss", 2)


# -- running ----------------------------------------------------------------------------------

def test_run_table_schema_values_and_resume(tmp_path, client, cache):
    spec = tiny()
    res = sweep.run(spec, tmp_path, client=client)
    assert res.counts == {"points": 2, "computed": 2, "resumed": 0, "cached": 0, "skipped": 0,
                          "ok": 2, "failed": 0, "timeout": 0}
    with open(res.csv_path) as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == sweep.columns(spec) == [
        "point", "design", "unit", "target", "status", "reason", "label", "a_format",
        "b_format", "acc_bits", "overflow", "pipeline_stages", *sweep.FIGURES,
        *sweep.PROVENANCE]
    # the figures are those of synthesising the same unit directly
    for row, acc_bits in zip(table, (8, 12)):
        component, _ = catalog.get_unit("int-mac").build(a_format="int4", b_format="int4",
                                                         acc_bits=acc_bits)
        err = sweep.workload_error("int-mac", component, "dot64-gauss", 3)
        g = synth.synth(to_verilog(component, "lowbit_int_mac"), "lowbit_int_mac", "generic")
        assert (row["status"], row["unit"], row["acc_bits"], row["target"]) == \
            ("ok", "int-mac", str(acc_bits), "generic")
        assert float(row["area_ge"]) == g.area_ge and int(row["flip_flops"]) == g.flip_flops
        assert int(row["logic_depth"]) == g.logic_depth and row["synth_key"] == g.key
        assert float(row["error_rms_rel"]) == err[0]
        assert row["tools"] == ";".join(f"{k}={v}" for k, v in sorted(g.tools.items()))
        assert row["luts"] == row["fmax_mhz"] == ""           # not measured: empty cells
    jl = [json.loads(l) for l in open(res.jsonl_path)]
    assert [r["point"] for r in jl] == [r["point"] for r in table]
    # a re-run resumes: nothing is computed again
    again = sweep.run(spec, tmp_path, client=client)
    assert (again.counts["computed"], again.counts["resumed"]) == (0, 2)
    assert again.rows == res.rows
    # without the table (--fresh), the client's point cache has them
    fresh = sweep.run(spec, tmp_path, client=client, resume=False)
    assert (fresh.counts["computed"], fresh.counts["cached"]) == (0, 2)


def test_resume_after_a_kill_keeps_the_finished_rows(tmp_path, client, cache):
    spec = tiny()
    first = sweep.run(spec, tmp_path, client=client)
    # a run killed while writing its third line: the journal holds one full row and a torn one
    lines = open(first.jsonl_path).read().splitlines()
    with open(first.jsonl_path, "w") as f:
        f.write(lines[1] + "\n" + lines[0][:40])
    assert [r["point"] for r in sweep.read_jsonl(first.jsonl_path)] == [first.rows[1]["point"]]
    res = sweep.run(spec, tmp_path, client=client, use_cache=False)
    assert (res.counts["resumed"], res.counts["computed"]) == (1, 1)
    assert [r["point"] for r in res.rows] == [r["point"] for r in first.rows]


def test_a_timed_out_point_is_recorded_and_the_sweep_goes_on(tmp_path, client, cache):
    spec = tiny(design=[{"unit": "int-mac", "params": {"a_format": "int4", "b_format": "int4"},
                         "axes": {"acc_bits": [8, 10]}}], measures=["error"])
    res = sweep.run(spec, tmp_path, client=client, timeout=0.2, use_cache=False)
    assert [r["status"] for r in res.rows] == ["timeout", "timeout"]
    assert res.rows[0]["reason"] == "did not finish within 0.2 s (killed)"
    assert res.counts["timeout"] == 2
    # the re-run tries them again (and they finish: error only, no synthesis)
    again = sweep.run(spec, tmp_path, client=client, use_cache=False)
    assert [r["status"] for r in again.rows] == ["ok", "ok"]
    assert again.counts["computed"] == 2


def test_a_failing_point_is_a_row_with_its_error():
    task = {"unit": "no-such-unit", "values": {}, "target": "generic", "measures": ["area"],
            "workload": "dot64-gauss", "seed": 0}
    row = sweep.run_task(task, 60)
    assert row["status"] == "failed"
    assert row["reason"] == (f"ValueError: unknown unit 'no-such-unit'; known units: "
                             f"{', '.join(catalog.units())}")


def test_workers_must_match_the_client(client, monkeypatch):
    mine = sweep.environment()
    assert client.run(sweep.environment) == {a: mine for a in client.nthreads()}
    with pytest.raises(ValueError, match=r"^workers must be an integer from 1 to 256, not 0$"):
        sweep.run(tiny(), "unused", workers=0)


# -- Pareto --------------------------------------------------------------------------------

def test_pareto_front_of_a_hand_checked_example():
    #            area  error
    pts = [(1.0, 9.0),    # A: least area                             -> front
           (2.0, 5.0),    # B                                          -> front
           (3.0, 5.0),    # C: dominated by B (same error, more area)
           (2.0, 5.0),    # D: equal to B: neither dominates           -> front
           (4.0, 1.0),    # E: least error                             -> front
           (5.0, 2.0),    # F: dominated by E
           (3.0, 4.0)]    # G                                          -> front
    assert pareto.dominated(pts, ("min", "min")).tolist() == \
        [False, False, True, False, False, True, False]
    # Fmax (maximised) against LUTs (minimised)
    assert pareto.dominated([(10, 100.0), (20, 150.0), (20, 120.0), (30, 140.0)],
                            ("min", "max")).tolist() == [False, False, True, True]
    rows = [{"status": "ok", "point": k, "label": k, "unit": "u", "area_ge_per_mac": a,
             "error_rms_rel": e} for k, (a, e) in zip("ABCDEFG", pts)]
    rows.append({"status": "failed", "point": "H", "unit": "u", "area_ge_per_mac": 0.1,
                 "error_rms_rel": 0.1})
    cand, on = pareto.front_indices(rows, pareto.FRONTS[0])
    assert cand == [0, 1, 2, 3, 4, 5, 6]
    assert [rows[i]["point"] for i in on] == ["A", "B", "D", "G", "E"]
    assert pareto.front_rows(rows, pareto.FRONTS[0], on) == [
        ["point", "area_ge_per_mac", "error_rms_rel"],
        ["A", "1", "9"], ["B", "2", "5"], ["D", "2", "5"], ["G", "3", "4"], ["E", "4", "1"]]
    with pytest.raises(ValueError, match=r"^each sense must be 'min' or 'max', not 'up'$"):
        pareto.dominated(pts, ("min", "up"))


def test_report_views_and_plot(tmp_path):
    rows = [{"status": "ok", "point": str(i), "label": str(i), "unit": u,
             "area_ge_per_mac": a, "error_rms_rel": e, "energy_gates_pj_per_mac": a / 1000,
             "logic_depth": d}
            for i, (u, a, e, d) in enumerate([("int-mac", 800, 0.02, 30), ("fp-mac", 1500, 0.04, 60),
                                              ("mx-dot", 1300, 0.008, 80), ("fp-mac", 2500, 0.03, 70)])]
    views = pareto.fronts(rows)
    assert [(f.title, [rows[i]["point"] for i in on]) for f, _, on in views] == [
        ("area vs error", ["0", "2"]), ("energy (a) vs error", ["0", "2"]),
        ("logic depth vs area (no FPGA rows: unit-delay stand-in for Fmax)", ["0"])]
    path = pareto.plot(rows, tmp_path / "p.png")
    import matplotlib.image
    assert matplotlib.image.imread(path).shape[:2] == (682, 2475)   # 3 panels, 110 dpi


def test_systolic_points_measure_the_simulator_on_a_topology(tmp_path, cache):
    from lowbit.sim.cost_model import SynthCostModel
    from lowbit.sim.systolic import ArrayConfig, simulate_topology
    from lowbit.sim.topology import gemm_layer, read_topology, write_topology
    topo = tmp_path / "two.csv"
    write_topology(topo, [gemm_layer("a", 16, 32, 8), gemm_layer("b", 9, 5, 30)])
    spec = sweep.from_dict({"measures": ["cycles", "sim_energy"], "topology": str(topo),
                            "design": [{"unit": "systolic",
                                        "params": {"rows": 4, "cols": 4, "pe": "int8"},
                                        "axes": {"dataflow": ["ws", "os"]}}]})
    for p in sweep.expand(spec):
        fig = sweep.measure(sweep._task(p, spec, True))
        cfg = ArrayConfig(rows=4, cols=4, dataflow=p.params["dataflow"], pe="int8")
        model = SynthCostModel()
        res = simulate_topology(read_topology(topo), cfg, model)
        assert fig["sim_cycles"] == res.total.total_cycles
        assert fig["sim_utilisation"] == res.total.utilisation
        assert fig["sim_energy_uj"] == res.total.energy_pj / 1e6
        assert fig["sim_area_mm2"] == model.area_um2(cfg) / 1e6
        assert fig["macs_per_clock"] == 16
    with pytest.raises(sweep.SweepFileError, match=r"^<dict>: design\[0\]\.unit: measures cycles "
                                                   r"and sim_energy are defined for unit "
                                                   r"'systolic', not 'int-mac'$"):
        sweep.from_dict({"measures": ["cycles"], "topology": "Resnet18.csv",
                         "design": [{"unit": "int-mac"}]})
