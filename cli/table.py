"""Plain-text tables for the CLI reports (aligned columns; safe to pipe and grep)."""

__all__ = ["render", "print_table"]


def render(rows, title=None, align=None):
    """Render ``rows`` (header first; every cell converted with ``str``) as aligned text.

    ``align`` is a string of ``l``/``r`` per column (default: numbers right, text left).
    """
    rows = [[str(c) for c in r] for r in rows]
    ncol = max(len(r) for r in rows)
    rows = [r + [""] * (ncol - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(ncol)]
    if align is None:
        def numeric(s):
            s = s.replace(",", "").replace("%", "").replace("x", "").strip()
            try:
                float(s)
                return True
            except ValueError:
                return s in ("-", "")
        align = "".join("r" if all(numeric(r[i]) for r in rows[1:]) and len(rows) > 1 else "l"
                        for i in range(ncol))
    out = []
    if title:
        out.append(title)
    for k, r in enumerate(rows):
        cells = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(r, widths, align)]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def print_table(rows, title=None, align=None, file=None):
    print(render(rows, title, align), file=file)
    print(file=file)
