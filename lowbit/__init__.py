"""lowbit: bit-exact models, Amaranth generators, co-simulation and cost reports for
low-precision neural-network datapaths (INT8, FP8, MX, tensor cores, OverQ).

The layers, each a subpackage, import one way: :mod:`lowbit.models` <- :mod:`lowbit.hdl` <-
:mod:`lowbit.fpga` <- :mod:`lowbit.sim` <- :mod:`lowbit.cli`. This module imports none of them.
"""

import importlib.metadata

__all__ = ["__version__"]

try:
    __version__ = importlib.metadata.version("lowbit")
except importlib.metadata.PackageNotFoundError:      # a source tree that is not installed
    __version__ = "0+unknown"
