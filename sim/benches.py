"""The co-simulation bench of every catalogue unit (what ``lowbit cosim UNIT`` runs).

A bench takes the unit's catalogue parameters (raw values, as ``lowbit cosim`` and
``lowbit generate`` take them; missing ones take the catalogue defaults), draws its stimulus
from ``seed``, runs the golden twin ``ref_x`` and the hardware twin ``rtl_x`` and returns a
:class:`lowbit.sim.cosim.CosimReport`::

    report = benches.cosim("fp-mac", {"acc_format": "fp16"}, vectors=10_000, seed=1)
    assert report.ok

``vectors`` has one meaning for every unit: the number of operations the bench checks, an
operation being what one copy of the unit does with fresh operands in one clock cycle (one
multiply-accumulate step of a MAC, one product of the multiplier, one step of ``k`` terms of an
adder, one block of a dot unit, one cycle of a PE), and for the systolic array one
multiply-accumulate of the GEMM (``M*K*N``). The bench rounds it up to whole cycles of its
lanes, and reports what it checked (``CosimReport.vectors``).

=====================  ===============================================  =========================
unit                   bench                                            default vectors
=====================  ===============================================  =========================
``int-mac``            :func:`lowbit.sim.bench_mac.cosim_int_mac`       100,000 MAC steps
``fp-mul``             :func:`lowbit.sim.bench_mac.cosim_fp_mul`        every code pair
``fp-mac``             :func:`lowbit.sim.bench_mac.cosim_fp_mac`        100,000 MAC steps
``chunked-mac``        :func:`lowbit.sim.bench_accum.cosim_chunked_mac`  100,000 MAC steps
``kahan-mac``          :func:`lowbit.sim.bench_accum.cosim_kahan_mac`   100,000 MAC steps
``shared-exp-adder``   :func:`lowbit.sim.bench_shared_exp.cosim_shared_exp_adder`  10,000 steps
``mx-dot``             :func:`lowbit.sim.bench_shared_exp.cosim_mx_dot`  10,000 blocks
``bfp-adder``          :func:`lowbit.sim.bench_shared_exp.cosim_bfp_adder`  10,000 blocks
``overq-pe``           :func:`lowbit.sim.bench_overq.cosim_overq_pe`    16,384 cycles, plus every
                                                                        operand pair when the
                                                                        widths are 4 bits or less
``int-pe``             :func:`lowbit.sim.bench_overq.cosim_int_pe`      16,384 cycles
``systolic``           :func:`lowbit.sim.bench_systolic.cosim_systolic`  one GEMM of ~4 folds
``sr-quantise``        :func:`lowbit.sim.bench_sr_quantise.cosim_sr_quantise`  the directed cases
                                                                        plus 100,000 random
                                                                        inputs
``tensor-core-dot``    :func:`lowbit.sim.bench_tensor_core.cosim_tensor_core_dot`  2,048 dot
                                                                        products of the
                                                                        instruction's K (K/L
                                                                        steps each)
=====================  ===============================================  =========================
"""

from . import (bench_accum, bench_mac, bench_overq, bench_shared_exp, bench_sr_quantise,
               bench_systolic, bench_tensor_core)

__all__ = ["BENCHES", "cosim"]

#: ``{unit name: bench(params, vectors, seed, sim) -> CosimReport}``
BENCHES = {
    "int-mac": bench_mac.cosim_int_mac,
    "fp-mul": bench_mac.cosim_fp_mul,
    "fp-mac": bench_mac.cosim_fp_mac,
    "chunked-mac": bench_accum.cosim_chunked_mac,
    "kahan-mac": bench_accum.cosim_kahan_mac,
    "shared-exp-adder": bench_shared_exp.cosim_shared_exp_adder,
    "mx-dot": bench_shared_exp.cosim_mx_dot,
    "bfp-adder": bench_shared_exp.cosim_bfp_adder,
    "overq-pe": bench_overq.cosim_overq_pe,
    "int-pe": bench_overq.cosim_int_pe,
    "systolic": bench_systolic.cosim_systolic,
    "sr-quantise": bench_sr_quantise.cosim_sr_quantise,
    "tensor-core-dot": bench_tensor_core.cosim_tensor_core_dot,
}


def cosim(unit, params=None, vectors=None, seed=None, sim=None):
    """Run the bench of catalogue unit ``unit`` (see the module docstring).

    Raises
    ------
    ValueError
        No bench for ``unit``, or a parameter out of range.
    """
    if unit not in BENCHES:
        raise ValueError(f"unit must be one of {', '.join(BENCHES)}, not {unit!r}")
    return BENCHES[unit](params, vectors, seed, sim)
