"""Optional compiled kernels for the float fast paths of :mod:`lowbit.models.shared_exp`.

The fast GEMM path (``shared_exp._gemm_fast``) spends most of its time on four passes over
a tensor of ``n x rows x cols`` products: form them, scale them to the adder's grid, cut
them and sum them.  :func:`grid_sum` does the four in one loop, compiled by numba
(``pip install lowbit[fast]``).  It computes exactly what the NumPy passes compute (every
value is an exact product, an exact power-of-two scaling and an exact integer sum), so the
result does not depend on which runs; the tests compare both engines with the
step-by-step integer model.

Without numba, or with the environment variable ``LOWBIT_JIT=0``, :func:`enabled` is
False and the NumPy passes run.
"""

import importlib.util
import os

import numpy as np

__all__ = ["available", "enabled", "set_enabled", "grid_sum", "CUTS"]

#: The cuts :func:`grid_sum` implements (``shared_exp`` cut names), by kernel code.
CUTS = {"toward_zero": 0, "floor": 1, "nearest_even": 2}

# numba is imported on the first kernel call, not with lowbit.models (its import alone
# takes about 0.15 s, more than half of lowbit.models' own)
_HAVE_NUMBA = importlib.util.find_spec("numba") is not None
_enabled = _HAVE_NUMBA and os.environ.get("LOWBIT_JIT", "1") != "0"
_grid_sum = None                   # the compiled kernel, once grid_sum has been called


def available():
    """Whether numba is installed (the kernels can be compiled)."""
    return _HAVE_NUMBA


def enabled():
    """Whether the fast paths use the compiled kernels."""
    return _enabled


def set_enabled(flag):
    """Switch the compiled kernels on or off (for tests and benchmarks); returns the old
    setting.  ``True`` without numba raises ``RuntimeError``."""
    global _enabled
    if not isinstance(flag, bool):
        raise TypeError(f"flag must be a bool, not {type(flag).__name__}")
    if flag and not _HAVE_NUMBA:
        raise RuntimeError("the compiled kernels need numba: pip install lowbit[fast]")
    old, _enabled = _enabled, flag
    return old


def _grid_sum_py(va, vb, inv, cut, out):
    """``out[r, c] = sum_k cut(va[k, r] * vb[k, c] * inv[r, c])``, summed in the dtype of
    ``va`` / ``vb`` / ``inv`` / ``out`` (all alike: float32 or float64).

    The caller guarantees exactness: every product and scaled product is representable
    (at most 16 significant bits, a power-of-two scale inside the dtype's normal range) and
    every partial sum is an integer small enough for the dtype, so the summation order
    does not matter and the result equals the NumPy passes bit for bit.
    ``cut``: 0 toward zero (trunc), 1 floor, 2 nearest even (:data:`CUTS`).
    """
    n, rows = va.shape
    cols = vb.shape[1]
    for r in range(rows):
        acc = out[r]
        acc[:] = 0
        iv = inv[r]
        for k in range(n):
            a = va[k, r]
            b = vb[k]
            if cut == 0:
                for c in range(cols):
                    acc[c] += np.trunc(a * b[c] * iv[c])
            elif cut == 1:
                for c in range(cols):
                    acc[c] += np.floor(a * b[c] * iv[c])
            else:
                for c in range(cols):
                    acc[c] += np.rint(a * b[c] * iv[c])
    return out


def _kernel():
    global _grid_sum
    if _grid_sum is None:
        import numba    # the [fast] extra, imported on first use (see the module top)
        # cache=True: compiled once per machine (next to this file, or numba's user cache
        # folder when the package folder is read-only), not once per process
        _grid_sum = numba.njit(cache=True, boundscheck=False, nogil=True)(_grid_sum_py)
    return _grid_sum


def grid_sum(va, vb, inv, cut):
    """The cut products of one adder step summed per output (see :func:`_grid_sum_py`):
    ``va`` (n, rows), ``vb`` (n, cols), ``inv`` (rows, cols), one float dtype; ``cut``
    a name in :data:`CUTS`.  Returns a new (rows, cols) array of that dtype.  Needs numba
    (:func:`available`)."""
    out = np.empty(inv.shape, inv.dtype)
    return _kernel()(np.ascontiguousarray(va), np.ascontiguousarray(vb),
                     np.ascontiguousarray(inv), CUTS[cut], out)
