"""lowbit's golden model: bit-exact NumPy definitions of number formats and arithmetic.

This package knows nothing of :mod:`lowbit.hdl` or :mod:`lowbit.sim`.
"""

from . import formats

__all__ = ["formats"]
