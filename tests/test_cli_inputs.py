"""Bad and unusual input at the command line: one line on stderr and the documented exit status.

Issue 14, section 1 (and its siblings): every output path is checked before the work, options
that do not apply are refused, ``-`` is standard output wherever a report is written, a
missing optional extra names the extra, a closed pipe is not a traceback, and the exit status
tells a mismatch (1) from bad input (2), a tool failure (3) and a bug (4). The exact messages are
pinned: a message that stops naming the parameter and its allowed range fails here.
"""

import json
import os
import subprocess
import sys

import pytest

from lowbit.cli.main import main
from lowbit.sim import benches, cosim

RESNET = os.path.join(os.path.dirname(__file__), "..", "sim", "data", "scalesim", "Resnet18.csv")


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working folder with a file ``afile``, a folder ``adir``, a binary ``bin.csv``, a
    topology ``t.csv`` and a garbage ``bad.cfg``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    (tmp_path / "bin.csv").write_bytes(b"\x00\xff\xfe\x01")
    (tmp_path / "t.csv").write_text("layer,a\n1,2\n")
    (tmp_path / "bad.cfg").write_text("[general]\nrun_name=x\n")
    return tmp_path


UNITS = ("int8, e4m3-fp16, e4m3-fp32, e4m3-kulisch, e5m2-fp16, e5m2-fp32, e5m2-kulisch, mxfp8, "
         "mxint8, overq4, int4")

#: (argv, the whole stderr line). Each returns before any synthesis, simulation or build.
USAGE = [
    (["compare", "--units", ""],
     f"lowbit compare: error: --units needs a comma-separated list of unit keys ({UNITS}), not ''"),
    (["compare", "--units", "int8,,int4"],
     f"lowbit compare: error: --units needs a comma-separated list of unit keys ({UNITS}), not "
     f"'int8,,int4'"),
    (["compare", "--plot", "afile/x.png"],
     "lowbit compare: error: --plot 'afile/x.png': '{here}/afile' is a file, not a folder"),
    (["compare", "--plot", "x.jpg"], "lowbit compare: error: --plot must be a .png path, not 'x.jpg'"),
    (["compare", "--plot", "-"],
     "lowbit compare: error: --plot needs a file path ('-' for standard output is not possible "
     "here)"),
    (["compare", "--json", "adir"], "lowbit compare: error: --json 'adir' is a folder, not a file"),
    (["compare", "--jobs", "0"], "lowbit compare: error: --jobs must be an integer from 1 to 16, not 0"),
    (["synth", "int-mac", "--json", "adir"], "lowbit synth: error: --json 'adir' is a folder, not a file"),
    (["synth", "int-mac", "--json", "afile/x.json"],
     "lowbit synth: error: --json 'afile/x.json': '{here}/afile' is a file, not a folder"),
    (["synth", "int-mac", "--keep", "afile"], "lowbit synth: error: --keep 'afile' is a file, not a folder"),
    (["synth", "int-mac", "--energy", "toggles", "--target", "ice40"],
     "lowbit synth: error: --energy toggles needs --target generic (the gate-level netlist), not "
     "--target ice40"),
    (["simulate", "--gemm", "4", "4", "4", "--json", "adir"],
     "lowbit simulate: error: --json 'adir' is a folder, not a file"),
    (["simulate", "--gemm", "4", "4", "4", "--csv", "afile/x.csv"],
     "lowbit simulate: error: --csv 'afile/x.csv': '{here}/afile' is a file, not a folder"),
    (["simulate", "--gemm", "4", "4", "4", "--csv", "nosuch/x.csv"],
     "lowbit simulate: error: --csv 'nosuch/x.csv': folder '{here}/nosuch' does not exist"),
    (["simulate", "--gemm", "4", "4", "4", "--topology-kind", "gemm"],
     "lowbit simulate: error: --topology-kind applies to --topology files, not to --gemm"),
    (["simulate", "--topology", "adir"], "lowbit simulate: error: topology file 'adir' is a folder, not a file"),
    (["simulate", "--topology", "bin.csv"], "lowbit simulate: error: topology file 'bin.csv' is not a text file"),
    (["simulate", "--topology", "t.csv", "--config", "t.csv"],
     "lowbit simulate: error: t.csv:1: not a SCALE-Sim .cfg file (an INI file with "
     "[architecture_presets] and [run_presets]): File contains no section headers."),
    (["simulate", "--gemm", "4", "4", "4", "--config", "bad.cfg"],
     "lowbit simulate: error: bad.cfg: [architecture_presets] ArrayHeight is missing (is it a "
     "SCALE-Sim .cfg file?)"),
    (["simulate", "--topology", RESNET, "--topology-kind", "gemm"],
     f"lowbit simulate: error: {RESNET}:1: the header names conv columns ('Layer name, IFMAP "
     f"Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,'); a GEMM "
     f"topology has 'name, M, N, K,' (drop --topology-kind gemm, or give a GEMM file)"),
    (["fpga", "build", "--board", "icebreaker", "--build-dir", "afile"],
     "lowbit fpga: error: --build-dir 'afile' is a file, not a folder"),
    (["fpga", "build", "--board", "icebreaker", "--build-dir", "afile/sub"],
     "lowbit fpga: error: --build-dir 'afile/sub': '{here}/afile' is a file, not a folder"),
    (["fpga", "run", "--simulated", "--json", "adir"],
     "lowbit fpga: error: --json 'adir' is a folder, not a file"),
    (["generate", "systolic", "--pe", "int8", "--bits", "6", "-o", "adir"],
     "lowbit generate: error: unrecognized arguments: --bits 6"),
    (["generate", "shared-exp-adder", "--sum-bits", "3", "-o", "adir"],
     "lowbit generate: error: sum_bits must be 0 (the computed width, 33) or an integer from 26 "
     "(frac_bits + 2: +-1.0 on the grid) to 1024, not 3"),
    (["generate", "shared-exp-adder", "--frac-bits", "99", "-o", "adir"],
     "lowbit generate: error: frac_bits must be an integer from 0 to 64, not 99"),
    (["cosim", "int-mac", "--vectors", "0"], "lowbit cosim: error: --vectors must be an integer >= 1, not '0'"),
    (["simulate", "--gemm", "4", "4", "4", "--sram-kib", "0"],
     "lowbit simulate: error: unrecognized arguments: --sram-kib 0"),
    (["cache", "info", "bogus"], "lowbit cache: error: KIND must be one of synth, cosim, not 'bogus'"),
    (["cache", "clear", "--json", "x.json"],
     "lowbit cache: error: --json goes with `lowbit cache info`, not `clear`"),
]


@pytest.mark.parametrize("argv, line", USAGE, ids=[" ".join(a)[:60] for a, _ in USAGE])
def test_bad_input_is_one_line_status_2(here, capsys, argv, line):
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.err == line.format(here=here) + "\n"
    assert os.listdir(here / "adir") == []          # nothing written on the way


PE_FORMS = ("int8, uint8, int4, int8xint4 [_acc<N>] [_wrap|_saturate]; "
            "<fp>[x<fp>]_<fp32|fp16|bf16>[acc][_fused|_two_roundings][_ftz][_sat] (e4m3_fp32, "
            "fp8_fp32acc); <fp>[x<fp>]_kulisch[<width>][_<acc>][_t<terms>][_ftz][_sat]; "
            "overq<b>[_w<n>][_acc<N>][_c<cascade>][_noprec][_operands]")


@pytest.mark.parametrize("argv, flag", [
    (["simulate", "--gemm", "4", "4", "4", "--pe", "fp9"], "--pe"),   # without --cost too
    (["fpga", "build", "--board", "icebreaker", "--pe", "fp9"], "pe"),
    (["generate", "systolic", "--pe", "fp9", "-o", "adir"], "pe"),
])
def test_one_pe_vocabulary_refuses_unknown_names(here, capsys, argv, flag):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"error: {flag} must be one of the forms {PE_FORMS}, not 'fp9'\n")
    assert err.count("\n") == 1


def test_the_pe_kinds_of_the_python_api_are_not_cli_names(here, capsys):
    # SystolicArray("fp", a_format=...) is the API; the CLI's --pe takes PE names only
    assert main(["generate", "systolic", "--pe", "fp", "-o", "adir"]) == 2
    assert "not 'fp'" in capsys.readouterr().err
    assert main(["generate", "systolic", "--pe", "e4m3_fp32", "-o", "adir"]) == 0
    man = json.loads((here / "adir" / "systolic.json").read_text())
    assert man["parameters"]["pe"] == "e4m3_fp32"


def test_no_arguments_is_usage_status_2(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.endswith("lowbit: error: missing command (lowbit --help lists "
                                            "them)\n")


def test_simulate_json_dash_is_stdout_and_writes_no_file(here, capsys):
    assert main(["simulate", "--gemm", "8", "8", "8", "--json", "-"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["total"]["macs"] == 512
    assert not (here / "-").exists()
    assert main(["simulate", "--gemm", "8", "8", "8", "--csv", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("name,M,K,N,macs") and lines[1].startswith("gemm,8,8,8,512,")
    assert len(lines) == 2 and not (here / "-").exists()


def test_simulate_says_which_setting_wins(here, capsys):
    cfg = os.path.join(os.path.dirname(RESNET), "scale.cfg")
    assert main(["simulate", "--gemm", "4", "4", "4", "--rows", "8", "--config", cfg]) == 0
    out = capsys.readouterr()
    assert out.err == "note: --rows 8 overrides the config's ArrayHeight 32\n"
    assert out.out.startswith("8x32 WS array")


def test_negative_values_need_no_equals_sign(capsys):
    assert main(["formats", "e5m2", "--value", "-inf", "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out, parse_constant=pytest.fail)   # strict JSON
    assert d["value"] == "-inf" and d["encodings"][0]["rounding"] == "nearest_even"
    assert d["encodings"][0]["code"] == 0xFC and d["encodings"][0]["decoded"] == "-inf"


def test_missing_extra_names_it(here, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cocotb", None)          # find_spec -> None: not installed
    assert main(["cosim", "int-mac"]) == 2
    assert capsys.readouterr().err == ("lowbit cosim: error: co-simulation needs the optional "
                                       "package 'cocotb': pip install 'lowbit[cosim]'\n")
    monkeypatch.setitem(sys.modules, "amaranth_boards", None)
    assert main(["fpga", "build", "--board", "icebreaker"]) == 2
    err = capsys.readouterr().err
    assert err.endswith("needs the optional package 'amaranth_boards': pip install "
                        "'lowbit[fpga]'\n") and err.count("\n") == 1


def test_closed_pipe_is_status_141_and_no_traceback():
    # the reader goes away before lowbit writes (`lowbit formats | head -0`): the table fits in
    # a pipe buffer, so closing after the first line would race with the whole write
    proc = subprocess.Popen([sys.executable, "-m", "lowbit", "formats"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert err == b""


def _report(mismatches):
    return cosim.CosimReport("int-mac", {}, "verilator", 1, 64, mismatches)


@pytest.mark.parametrize("outcome, status, line", [
    (lambda: _report(0), 0, None),
    (lambda: _report(3), 1, None),
    (lambda: (_ for _ in ()).throw(cosim.CosimError("verilator build failed; logs in /x")), 3,
     "lowbit cosim: error: int-mac: verilator build failed; logs in /x\n"),
    (lambda: (_ for _ in ()).throw(KeyError("oops")), 4, None),
])
def test_cosim_exit_status_tells_mismatch_from_failure(monkeypatch, capsys, outcome, status, line):
    """0 match, 1 mismatch, 3 the simulator failed to build or run, 4 a bug of lowbit."""
    monkeypatch.setitem(benches.BENCHES, "int-mac", lambda *a: outcome())
    monkeypatch.delenv("LOWBIT_TRACEBACK", raising=False)
    assert main(["cosim", "int-mac", "--seed", "1"]) == status
    out = capsys.readouterr()
    if line is not None:
        assert out.err == line
    if status == 4:
        assert out.err.count("\n") == 1 and "internal error" in out.err and "KeyError" in out.err
    if status in (0, 1):
        assert out.out.rstrip().endswith("result: PASS" if status == 0 else "result: FAIL")


def test_cosim_json_dash_is_the_report(monkeypatch, capsys):
    monkeypatch.setitem(benches.BENCHES, "int-mac", lambda *a: _report(0))
    assert main(["cosim", "int-mac", "--seed", "1", "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["unit"] == "int-mac" and d["mismatches"] == 0 and d["ok"] is True
    assert d["command"].startswith("lowbit cosim int-mac ") and d["waveforms"] == []


@pytest.mark.parametrize("overfull, status, line", [
    (True, 1, "lowbit fpga build: icebreaker: the design does not fit the device: ICESTORM_LC "
              "11126/5280 (211%) (logs in {d}) (fewer --rows/--cols fit)\n"),
    (False, 3, "lowbit fpga: error: icebreaker build failed (logs in {d}): ERROR: nextpnr "
               "crashed\n"),
])
def test_fpga_build_that_does_not_fit_is_a_failed_check(here, capsys, monkeypatch, overfull,
                                                        status, line):
    """Not fitting the device is the answer to the question asked (status 1, like missed
    timing, one line naming the resource); a tool that breaks is status 3, one line."""
    from lowbit.fpga import boards
    d = here / "fb"

    def fake_build(board, rows, cols, pe, *, build_dir, on_start=None, **kw):
        res = boards.BuildResult(
            board="icebreaker", params={"rows": rows, "cols": cols, "pe": pe, "a_format": "e4m3",
                                        "b_format": "e4m3", "acc_format": "fp32", "depth": 16},
            bitstream=None, luts=1, flip_flops=1, carry=0, bram=0, dsp=0,
            utilisation={"ICESTORM_LC": [11126, 5280]} if overfull else {}, fmax_mhz=None,
            clock_mhz=12.0, seconds=1.0, build_dir=str(build_dir))
        if overfull:
            err = boards.BuildError(f"icebreaker: the design does not fit the device: "
                                    f"ICESTORM_LC 11126/5280 (211%) (logs in {build_dir})")
            err.overfull = ["ICESTORM_LC 11126/5280 (211%)"]
        else:
            err = boards.BuildError(f"icebreaker build failed (logs in {build_dir}):\n"
                                    f"ERROR: nextpnr crashed\nmore")
        err.result = res
        raise err

    monkeypatch.setattr(boards, "build", fake_build)
    assert main(["fpga", "build", "--board", "icebreaker", "--build-dir", str(d)]) == status
    assert capsys.readouterr().err == line.format(d=d)


def test_ctrl_c_during_generate_is_one_line_and_leaves_no_folder(tmp_path):
    """Ctrl-C while a large array is elaborated: status 130, one line (no UnusedElaboratable
    warnings from the half-built PEs), and no empty output folder."""
    import signal
    import time
    out = tmp_path / "big"
    proc = subprocess.Popen([sys.executable, "-m", "lowbit", "generate", "systolic", "--rows",
                             "64", "--cols", "64", "--pe", "e4m3_kulisch", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    assert proc.poll() is None, "the generation finished before the interrupt; use a larger one"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err == "lowbit generate: interrupted\n"
    assert not out.exists()


def test_ctrl_c_inside_a_finaliser_is_not_lost():
    """A SIGINT that lands in a ``__del__`` (Amaranth's ``MustUse.__del__`` runs for every
    half-built elaboratable) would be printed as "Exception ignored" and dropped by Python; the
    CLI's handler delivers it again once the finaliser has returned."""
    import os
    import signal
    import time

    from lowbit.cli.main import _interrupts

    class Finalised:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            t = time.monotonic()
            while time.monotonic() - t < 0.05:      # the signal is handled in here
                pass

    before = signal.getsignal(signal.SIGINT)
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with _interrupts():
            obj = Finalised()
            del obj
            t = time.monotonic()
            while time.monotonic() - t < 2.0:
                reached.append(None)
            reached.clear()
    assert reached, "the interrupt was lost inside the finaliser"
    assert signal.getsignal(signal.SIGINT) is before       # the handler is put back
