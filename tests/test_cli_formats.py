"""The ``lowbit`` command: the format table, value reports and one-line errors."""

import subprocess
import sys

import pytest

from lowbit.cli.main import main


def run_cli(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_format_table_lists_every_named_format(capsys):
    status, out, _ = run_cli(capsys, "formats")
    assert status == 0
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line.strip()}
    assert lines["e4m3"][1:7] == ["8", "float", "4", "3", "7", "448"]
    assert lines["e5m2"][6] == "57344"
    assert lines["e4m3fnuz"][6] == "240"
    assert lines["e2m1"][6] == "6"
    assert lines["int8"][1:5] == ["8", "signed", "int", "-"] and "127" in lines["int8"]
    for name in ["int4", "int8", "uint8", "int16", "int32", "e4m3", "e5m2", "e4m3fnuz", "e5m2fnuz",
                 "e2m3", "e3m2", "e2m1", "e8m0", "bf16", "fp16", "fp32"]:
        assert name in lines


def test_value_report_every_rounding(capsys):
    status, out, _ = run_cli(capsys, "formats", "e4m3", "--value", "300")
    assert status == 0
    rows = [l.split() for l in out.splitlines() if l.startswith(("nearest_even", "toward_zero"))]
    # 300 lies between 288 (0x79) and 320 (0x7A): nearest and toward zero both give 288
    assert [r[2] for r in rows] == ["0x79"] * 4
    assert out.count("stochastic") == 2
    status, out, _ = run_cli(capsys, "formats", "e4m3", "--value", "1000")
    rows = [l.split() for l in out.splitlines() if l.startswith("nearest_even")]
    assert [(r[1], r[2]) for r in rows] == [("False", "0x7F"), ("True", "0x7E")]


@pytest.mark.parametrize("name,value,sat_code,wrap_code", [
    # issue 14: saturating 1e30 gave INT_MIN / 0 / -2^55 (float64 clipping near 2^53..2^64)
    ("int64", "1e30", (1 << 63) - 1, int(1e30) % (1 << 64)),
    ("uint64", "1e30", (1 << 64) - 1, int(1e30) % (1 << 64)),
    ("int56", "4e16", (1 << 55) - 1, int(4e16) % (1 << 56)),
    ("int64", "-1e30", 1 << 63, (-int(1e30)) % (1 << 64)),
])
def test_value_report_wide_integers(capsys, name, value, sat_code, wrap_code):
    status, out, _ = run_cli(capsys, "formats", name, f"--value={value}")
    assert status == 0
    rows = [l.split() for l in out.splitlines() if l.startswith("nearest_even")]
    assert [(r[1], int(r[2], 16)) for r in rows] == [("False", wrap_code), ("True", sat_code)]


@pytest.mark.parametrize("argv,message", [
    (["formats", "e9m9"],
     "lowbit formats: error: exp_bits must be an integer from 1 to 8, not 9\n"),
    (["formats", "e4m3b1000000"],
     "lowbit formats: error: bias must be an integer from -1009 to 1072, not 1000000\n"),
    (["formats", "e4m3fnb-1009"],
     "lowbit formats: error: bias must be an integer from -1008 to 1072, not -1009\n"),
    (["formats", "--value", "3"], "lowbit formats: error: --value needs a format name, "
                                  "e.g. lowbit formats e4m3 --value 300\n"),
    (["formats", "nonsense"], None),
    (["formats", "e2m1", "--value", "nan"], "lowbit formats: error: --value NaN cannot be encoded: "
                                            "format e2m1 has no NaN\n"),
])
def test_errors_are_one_line_status_2(capsys, argv, message):
    status, out, err = run_cli(capsys, *argv)
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    if message:
        assert err == message


def test_console_script_help_and_bad_command():
    r = subprocess.run([sys.executable, "-m", "lowbit.cli.main", "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "formats" in r.stdout
    r = subprocess.run([sys.executable, "-m", "lowbit.cli.main", "bogus"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
