"""Encode values into OCP FP8 (E4M3 and E5M2) under each rounding, and decode them back.

Run: ``python examples/fp8_formats.py``. Prints one line per (format, value, rounding):
``e4m3 300 nearest_even -> 0x7A -> 288``. E4M3 has no Inf: 500 is NaN unless saturated to 448
(OCP 8-bit Floating Point Specification v1.0, section 5.2).
"""

import numpy as np

from lowbit.models import formats

VALUES = [0.1, -3.3, 300.0, 500.0, 1e-3]


def main():
    for name in ("e4m3", "e5m2"):
        fmt = formats.get(name)
        x = np.array(VALUES)
        for rounding in ("nearest_even", "toward_zero"):
            for saturate in (False, True):
                codes = fmt.encode(x, rounding=rounding, saturate=saturate)
                back = fmt.decode(codes)
                for v, c, d in zip(VALUES, codes, back):
                    tag = rounding + ("+sat" if saturate else "")
                    print(f"{name} {v:g} {tag} -> 0x{int(c):02X} -> {d:g}")


if __name__ == "__main__":
    main()
