"""SCALE-Sim topology (.csv) and configuration (.cfg) files: reading, writing, conv-to-GEMM mapping.

The formats are those of SCALE-Sim v3 (scalesim-project/scale-sim-v3; PyPI ``scalesim`` 3.0.0), so
that the files SCALE-Sim users already have work unchanged. Facts about the formats and conventions,
read from ``scalesim/topology_utils.py`` and ``scalesim/scale_config.py`` of the 3.0.0 wheel:

* A topology file has one header line, then one layer per line. Every row is split on ``,`` and the
  **last field is dropped** (``row.split(',')[:-1]``), so rows must end with a trailing comma; a row
  without one silently loses its last value. :func:`read_topology` follows the same rule but raises
  instead of dropping a value silently when the row has no trailing comma.
* Convolution rows: ``name, ifmap H, ifmap W, filter H, filter W, channels, num filters, stride,``
  (one stride, used for both directions), optionally followed by an ``N:M`` sparsity ratio. A layer
  whose name contains ``DP`` is depthwise: SCALE-Sim expands it into one single-channel layer per
  channel, named ``<name>Channel_<i>``.
* GEMM rows (SCALE-Sim's ``-i gemm`` / ``input_type_gemm=True``): ``name, M, N, K,`` where the GEMM
  is (M x K) @ (K x N); SCALE-Sim turns the row into the conv layer ifmap M x K, filter 1 x K,
  1 channel, N filters, stride 1.
* A conv layer is the GEMM with M = ofmap H x ofmap W (ofmap pixels of one filter), K = filter H x
  filter W x channels (window size), N = num filters, where ``ofmap = ceil((ifmap - filter +
  stride) / stride)`` (``topology_utils.topo_calc_hyperparams``). There is no padding, except
  that when the stride does not divide ``ifmap - filter`` the ceiling adds one more output row
  (column) whose window runs past the bottom (right) edge; the positions outside the ifmap get
  address -1 (``operand_matrix.calc_ifmap_elem_addr``): they occupy an array slot and an SRAM
  read slot but fetch nothing from DRAM. :attr:`Layer.ifmap_words` counts the distinct ifmap
  words the layer references, which is what SCALE-Sim's DRAM ifmap count comes to.
* ``.cfg`` is an INI file (option names case-insensitive): ``[general] run_name``;
  ``[architecture_presets] ArrayHeight, ArrayWidth, IfmapSramSzkB, FilterSramSzkB, OfmapSramSzkB,
  Dataflow (os|ws|is), Bandwidth`` (comma-separated list, first used); ``[run_presets]
  InterfaceBandwidth`` ``CALC`` (bandwidth sized so that there are no stalls) or ``USER``.
"""

import configparser
import dataclasses
import importlib.resources
import math
import os

__all__ = ["Layer", "read_topology", "write_topology", "read_scalesim_cfg", "write_scalesim_cfg",
           "conv_layer", "gemm_layer", "scalesim_file", "SCALESIM_FILES", "SCALESIM_SMALL_LAYERS"]

#: SCALE-Sim's input files shipped with lowbit (``lowbit/sim/data/scalesim``, with their
#: README and licence): ``Resnet18.csv``, ``scale.cfg`` and the two layout files.
SCALESIM_FILES = ("Resnet18.csv", "scale.cfg", "layout_resnet18.csv", "layout_gemm.csv")


def scalesim_file(name):
    """Path of one of :data:`SCALESIM_FILES` (as a :class:`pathlib.Path` in the installed
    package).

    Raises
    ------
    ValueError
        ``name`` is not one of them.
    """
    if name not in SCALESIM_FILES:
        raise ValueError(f"name must be one of {', '.join(SCALESIM_FILES)}, not {name!r}")
    return importlib.resources.files("lowbit.sim").joinpath("data", "scalesim", name)


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer of a workload, kept in SCALE-Sim's conv form plus its GEMM view.

    Parameters
    ----------
    name : str
    ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters, stride_h, stride_w : int
        Convolution shape (no padding). A GEMM (M, K, N) is ifmap M x K, filter 1 x K, 1 channel,
        N filters, stride 1, exactly as SCALE-Sim represents it.
    kind : str
        ``"conv"`` or ``"gemm"`` (how the layer was given; the timing does not depend on it).

    Attributes
    ----------
    M, K, N : int
        The GEMM: ``ofmap[M, N] = ifmap[M, K] @ filter[K, N]``. M = ofmap pixels of one filter,
        K = window size filter_h * filter_w * channels, N = num_filters.
    macs : int
        M * K * N.
    """
    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride_h: int = 1
    stride_w: int = 1
    kind: str = "conv"

    def __post_init__(self):
        for field in ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters",
                      "stride_h", "stride_w"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"Layer {self.name!r}: {field} must be an int, not {v!r}")
            if v < 1:
                raise ValueError(f"Layer {self.name!r}: {field} must be >= 1, not {v!r}")
        if self.filter_h > self.ifmap_h:
            raise ValueError(f"Layer {self.name!r}: filter_h must be <= ifmap_h ({self.ifmap_h}), "
                             f"not {self.filter_h!r}")
        if self.filter_w > self.ifmap_w:
            raise ValueError(f"Layer {self.name!r}: filter_w must be <= ifmap_w ({self.ifmap_w}), "
                             f"not {self.filter_w!r}")
        if self.kind not in ("conv", "gemm"):
            raise ValueError(f"Layer kind must be 'conv' or 'gemm', not {self.kind!r}")

    @property
    def ofmap_h(self):
        return math.ceil((self.ifmap_h - self.filter_h + self.stride_h) / self.stride_h)

    @property
    def ofmap_w(self):
        return math.ceil((self.ifmap_w - self.filter_w + self.stride_w) / self.stride_w)

    @property
    def M(self):
        return self.ofmap_h * self.ofmap_w

    @property
    def K(self):
        return self.filter_h * self.filter_w * self.channels

    @property
    def N(self):
        return self.num_filters

    @property
    def ifmap_words(self):
        """Distinct ifmap words the im2col matrix references (window positions inside the ifmap).

        Rows: ``(oh - 1) * fh + min(fh, H - (oh - 1) * s)`` when windows do not overlap
        (``s > fh``), else ``min(H, (oh - 1) * s + fh)``; columns likewise; times channels.
        For a GEMM layer this is ``M * K``.
        """
        def span(n_in, f, s, n_out):
            if s > f:
                return (n_out - 1) * f + min(f, n_in - (n_out - 1) * s)
            return min(n_in, (n_out - 1) * s + f)
        return (span(self.ifmap_h, self.filter_h, self.stride_h, self.ofmap_h)
                * span(self.ifmap_w, self.filter_w, self.stride_w, self.ofmap_w) * self.channels)

    @property
    def macs(self):
        return self.M * self.K * self.N

    @property
    def gemm(self):
        """``(M, K, N)``."""
        return self.M, self.K, self.N


def gemm_layer(name, M, K, N):
    """The :class:`Layer` SCALE-Sim builds from a GEMM row ``name, M, N, K,``."""
    for pname, v in (("M", M), ("K", K), ("N", N)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{pname} must be an integer >= 1, not {v!r}")
    return Layer(name, M, K, 1, K, 1, N, 1, 1, kind="gemm")


def conv_layer(name, ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters, stride=1):
    """A convolution layer (no padding, square stride), as in a SCALE-Sim conv topology row."""
    return Layer(name, ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters, stride, stride)


#: Seven small layers (GEMMs and convolutions of every shape class: strided, 1x1, FC) on which
#: lowbit's simulator is compared with SCALE-Sim 3.0.0 (``benchmarks/scalesim_compare.py``); the
#: SCALE-Sim figures measured on them are pinned in ``tests/test_sim_systolic.py``.
SCALESIM_SMALL_LAYERS = (
    gemm_layer("gemm_40x50x30", 40, 50, 30),
    gemm_layer("gemm_17x23x9", 17, 23, 9),
    gemm_layer("attn_64x32x64", 64, 32, 64),
    conv_layer("conv1_like", 32, 32, 7, 7, 3, 16, 2),
    conv_layer("conv2_like", 14, 14, 3, 3, 16, 16, 1),
    conv_layer("short_like", 14, 14, 1, 1, 16, 32, 2),
    conv_layer("fc_like", 1, 1, 1, 1, 64, 100, 1),
)


def _int_field(value, what, path, lineno):
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"{path}:{lineno}: {what} must be an integer, not {value.strip()!r}") from None


def _check_sparsity(value, path, lineno):
    ratio = value.strip()
    if ratio and ratio.replace(" ", "") not in ("1:1",):
        raise ValueError(f"{path}:{lineno}: sparsity ratio must be 1:1 (structured sparsity is not "
                         f"modelled), not {ratio!r}")


def _read_text(path, what):
    """The text of ``path`` (a SCALE-Sim ``what`` file), or a ValueError naming it."""
    if os.path.isdir(path):
        raise ValueError(f"{what} file {path!r} is a folder, not a file")
    if not os.path.exists(path):
        raise ValueError(f"{what} file {path!r} does not exist")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"{what} file {path!r} cannot be read: {e.strerror}") from None
    if b"\0" in data:
        raise ValueError(f"{what} file {path!r} is not a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} file {path!r} is not UTF-8 text (byte {e.start})") from None


def read_topology(path, kind=None):
    """Read a SCALE-Sim topology CSV.

    Parameters
    ----------
    path : str or os.PathLike
    kind : {"conv", "gemm", None}
        Row format. ``None`` guesses from the header: a header whose second field is ``M`` (any
        case) is a GEMM file, anything else a conv file (SCALE-Sim itself is told by ``-i gemm``).

    Returns
    -------
    list of Layer

    Raises
    ------
    ValueError
        A row without the trailing comma SCALE-Sim needs, too few fields, a non-integer or
        out-of-range field, or a sparsity ratio other than 1:1; the message names file and line.
    """
    path = os.fspath(path)
    if kind not in (None, "conv", "gemm"):
        raise ValueError(f"kind must be 'conv', 'gemm' or None, not {kind!r}")
    lines = _read_text(path, "topology").splitlines()
    if not lines:
        raise ValueError(f"{path}: topology file is empty")
    head = [h.strip().lower() for h in lines[0].split(",")]
    looks_gemm = len(head) > 1 and head[1] == "m"
    if kind is None:
        kind = "gemm" if looks_gemm else "conv"
    elif kind == "gemm" and not looks_gemm and len([h for h in head if h]) >= 8:
        raise ValueError(f"{path}:1: the header names conv columns ({lines[0].strip()!r}); a GEMM "
                         f"topology has 'name, M, N, K,' (drop --topology-kind gemm, or give a "
                         f"GEMM file)")
    elif kind == "conv" and looks_gemm:
        raise ValueError(f"{path}:1: the header names GEMM columns ({lines[0].strip()!r}); a conv "
                         f"topology has 'name, ifmap H, ifmap W, filter H, filter W, channels, "
                         f"num filters, stride,'")
    layers = []
    for lineno, raw in enumerate(lines[1:], start=2):
        row = raw.strip()
        if not row:
            continue
        if not row.endswith(","):
            raise ValueError(f"{path}:{lineno}: row must end with a trailing comma (SCALE-Sim drops "
                             f"the last field of every row), got {row!r}")
        elems = row.split(",")[:-1]
        name = elems[0].strip()
        if kind == "gemm":
            if len(elems) < 4:
                raise ValueError(f"{path}:{lineno}: a GEMM row needs 'name, M, N, K,', got {row!r}")
            M, N, K = (_int_field(elems[i], w, path, lineno) for i, w in ((1, "M"), (2, "N"), (3, "K")))
            if len(elems) > 4:
                _check_sparsity(elems[4], path, lineno)
            for w, v in (("M", M), ("N", N), ("K", K)):
                if v < 1:
                    raise ValueError(f"{path}:{lineno}: {w} must be >= 1, not {v}")
            layers.append(gemm_layer(name, M, K, N))
        else:
            if len(elems) < 8:
                raise ValueError(f"{path}:{lineno}: a conv row needs 'name, ifmap H, ifmap W, filter H, "
                                 f"filter W, channels, num filters, stride,', got {row!r}")
            what = ("ifmap H", "ifmap W", "filter H", "filter W", "channels", "num filters", "stride")
            vals = [_int_field(elems[i + 1], w, path, lineno) for i, w in enumerate(what)]
            if len(elems) > 8:
                _check_sparsity(elems[8], path, lineno)
            for w, v in zip(what, vals):
                if v < 1:
                    raise ValueError(f"{path}:{lineno}: {w} must be >= 1, not {v}")
            ih, iw, fh, fw, ch, nf, st = vals
            try:
                if "DP" in name:  # depthwise: one single-channel layer per channel (SCALE-Sim)
                    layers.extend(Layer(f"{name}Channel_{c}", ih, iw, fh, fw, 1, nf, st, st)
                                  for c in range(ch))
                else:
                    layers.append(Layer(name, ih, iw, fh, fw, ch, nf, st, st))
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: {e}") from None
    return layers


def write_topology(path, layers, kind=None):
    """Write layers as a SCALE-Sim topology CSV (every row with its trailing comma).

    ``kind="gemm"`` writes ``name, M, N, K,`` rows (every layer must then be a GEMM-shaped layer or
    is written by its GEMM view); ``"conv"`` writes conv rows (needs square strides). ``None``:
    ``"gemm"`` when every layer has ``kind == "gemm"``, else ``"conv"``.
    """
    if kind is None:
        kind = "gemm" if all(l.kind == "gemm" for l in layers) else "conv"
    if kind not in ("conv", "gemm"):
        raise ValueError(f"kind must be 'conv', 'gemm' or None, not {kind!r}")
    with open(path, "w") as f:
        if kind == "gemm":
            f.write("Layer, M, N, K,\n")
            for l in layers:
                f.write(f"{l.name}, {l.M}, {l.N}, {l.K},\n")
        else:
            f.write("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                    "Num Filter, Strides,\n")
            for l in layers:
                if l.stride_h != l.stride_w:
                    raise ValueError(f"Layer {l.name!r}: a conv topology row has one stride; "
                                     f"stride_h ({l.stride_h}) must equal stride_w ({l.stride_w})")
                f.write(f"{l.name},{l.ifmap_h},{l.ifmap_w},{l.filter_h},{l.filter_w},{l.channels},"
                        f"{l.num_filters},{l.stride_h},\n")


def read_scalesim_cfg(path):
    """Read a SCALE-Sim ``.cfg`` file into keyword arguments for :class:`lowbit.sim.systolic.ArrayConfig`.

    Returns
    -------
    dict
        ``rows, cols, dataflow, ifmap_sram_kib, filter_sram_kib, ofmap_sram_kib, dram_bw`` and
        ``run_name``. ``dram_bw`` is ``"CALC"`` when ``InterfaceBandwidth`` is CALC, else the first
        value of ``Bandwidth`` (words per cycle). SCALE-Sim's word is one byte (``word_size = 1`` is
        hard-coded in ``single_layer_sim.py``), so ``word_bytes`` is 1.

    Raises
    ------
    ValueError
        Missing section/option or a bad value; the message names the option.
    """
    path = os.fspath(path)
    text = _read_text(path, "config")
    cp = configparser.ConfigParser()
    try:
        cp.read_string(text, source=path)
    except configparser.Error as e:
        where = f":{e.lineno}" if getattr(e, "lineno", None) else ""
        first = str(e).splitlines()[0]
        raise ValueError(f"{path}{where}: not a SCALE-Sim .cfg file (an INI file with "
                         f"[architecture_presets] and [run_presets]): {first}") from None

    def get(section, option):
        try:
            return cp.get(section, option).strip()
        except (configparser.NoSectionError, configparser.NoOptionError):
            raise ValueError(f"{path}: [{section}] {option} is missing (is it a SCALE-Sim .cfg "
                             f"file?)") from None

    def get_int(section, option):
        v = get(section, option)
        try:
            return int(v)
        except ValueError:
            raise ValueError(f"{os.fspath(path)}: [{section}] {option} must be an integer, not {v!r}") from None

    out = {
        "run_name": cp.get("general", "run_name", fallback="").strip(),
        "rows": get_int("architecture_presets", "ArrayHeight"),
        "cols": get_int("architecture_presets", "ArrayWidth"),
        "ifmap_sram_kib": get_int("architecture_presets", "IfmapSramSzkB"),
        "filter_sram_kib": get_int("architecture_presets", "FilterSramSzkB"),
        "ofmap_sram_kib": get_int("architecture_presets", "OfmapSramSzkB"),
        "dataflow": get("architecture_presets", "Dataflow").lower(),
        "word_bytes": 1,
    }
    mode = get("run_presets", "InterfaceBandwidth").upper()
    if mode == "CALC":
        out["dram_bw"] = "CALC"
    elif mode == "USER":
        bw = get("architecture_presets", "Bandwidth").split(",")[0].strip()
        try:
            out["dram_bw"] = float(bw)
        except ValueError:
            raise ValueError(f"{os.fspath(path)}: [architecture_presets] Bandwidth must be a number, "
                             f"not {bw!r}") from None
    else:
        raise ValueError(f"{os.fspath(path)}: [run_presets] InterfaceBandwidth must be CALC or USER, "
                         f"not {mode!r}")
    if cp.has_section("sparsity") and cp.get("sparsity", "SparsitySupport", fallback="false").strip().lower() == "true":
        raise ValueError(f"{os.fspath(path)}: [sparsity] SparsitySupport must be false (sparsity is not modelled)")
    return out


def write_scalesim_cfg(path, cfg, run_name="lowbit"):
    """Write an :class:`~lowbit.sim.systolic.ArrayConfig` as a SCALE-Sim 3.0.0 ``.cfg`` file.

    All sections SCALE-Sim 3.0.0 reads are written (it fails on a missing ``[layout]`` or
    ``[sparsity]`` option). ``dram_bw="CALC"`` becomes ``InterfaceBandwidth: CALC``; a number
    becomes ``USER`` with that ``Bandwidth`` (rounded to an integer, as SCALE-Sim parses ints).
    """
    calc = cfg.dram_bw == "CALC"
    bw = 10 if calc else max(1, int(round(cfg.dram_bw)))
    text = f"""[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight:    {cfg.rows}
ArrayWidth:     {cfg.cols}
IfmapSramSzkB:   {int(cfg.ifmap_sram_kib)}
FilterSramSzkB:  {int(cfg.filter_sram_kib)}
OfmapSramSzkB:   {int(cfg.ofmap_sram_kib)}
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : {bw}
Dataflow : {cfg.dataflow}
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {bw}
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {bw}
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: {"CALC" if calc else "USER"}
UseRamulatorTrace: False
"""
    with open(path, "w") as f:
        f.write(text)
