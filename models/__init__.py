"""lowbit's golden model: bit-exact NumPy definitions of number formats and arithmetic.

This package knows nothing of :mod:`lowbit.hdl` or :mod:`lowbit.sim`.
"""

from . import formats
from .shared_exp import gemm  # public API: lowbit.models.gemm(a, b, a_fmt, b_fmt, datapath)

__all__ = ["formats", "gemm"]
