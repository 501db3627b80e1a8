"""lowbit's golden model: bit-exact NumPy definitions of number formats and arithmetic.

``formats`` (number formats), ``mx`` (OCP MX block formats), ``nvfp4`` (NVIDIA's NVFP4),
``shared_exp`` (shared-exponent adders, :func:`gemm`), ``tensor_core`` (NVIDIA/AMD matrix
instructions, bit for bit).  This package knows nothing of :mod:`lowbit.hdl` or
:mod:`lowbit.sim`.
"""

from . import formats, jit, mx, nvfp4, shared_exp, tensor_core
# public API: lowbit.models.gemm(a, b, a_fmt, b_fmt, datapath, *, scale_a, scale_b, out_format)
from .shared_exp import gemm

__all__ = ["formats", "jit", "mx", "nvfp4", "shared_exp", "tensor_core", "gemm"]
