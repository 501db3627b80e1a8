"""Quantise two vectors to MXFP8 (E4M3 elements, one E8M0 scale per 32) and take their dot
product the way OCP MX hardware does.

Run: ``python examples/mx_dot.py``. Prints the FP64 dot product of the original values and of
the quantised (decoded) ones, the exact MX dot product (the exact sum rounded once to FP32,
:func:`lowbit.models.mx.mx_dot` with ``datapath="exact"``) and the H100-style shared-exponent
datapath (``datapath="h100_fp8"``: terms cut to a fixed grid below the largest exponent;
:mod:`lowbit.models.shared_exp`).
"""

import numpy as np

from lowbit.models import mx


def main(seed=0, k=32, blocks=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(k * blocks)
    y = rng.standard_normal(k * blocks) * 10.0
    xe, xs = mx.quantize(x, "mxfp8_e4m3", k)
    ye, ys = mx.quantize(y, "mxfp8_e4m3", k)
    xq = mx.dequantize(xe, xs, "mxfp8_e4m3", k)
    yq = mx.dequantize(ye, ys, "mxfp8_e4m3", k)
    print(f"fp64 of the inputs:    {float(x @ y)!r}")
    print(f"fp64 of the MX values: {float(xq @ yq)!r}")
    print(f"mx exact:              {float(mx.mx_dot(xe, xs, ye, ys, 'mxfp8_e4m3', k=k))!r}")
    print(f"mx h100_fp8:           "
          f"{float(mx.mx_dot(xe, xs, ye, ys, 'mxfp8_e4m3', k=k, datapath='h100_fp8'))!r}")


if __name__ == "__main__":
    main()
