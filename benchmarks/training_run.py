"""Issue 17 section 2: a small network trained through lowbit's bit-exact datapaths, with the
weight update in FP16 / BF16 by RNE, stochastic rounding or Kahan compensation, against FP32.

    python benchmarks/training_run.py [--seeds 0,1,2] [--epochs 6] [--lr 0.3] [--jobs N]
                                       [--variants ...] [--out DIR]

Data: scikit-learn's bundled digits (1797 8x8 images, 10 classes; ``load_digits`` reads a file
shipped inside scikit-learn, nothing is downloaded; scikit-learn is in the ``test`` extra),
pixels / 16, one stratified split (1437 train / 360 test, ``random_state=0``).

Network: ``64 -> 32 (ReLU) -> 10``, no biases, softmax cross-entropy, plain SGD (``--lr``,
default 0.3), mini-batches of ``--batch`` (128), He-normal initialisation; the seed sets the
initial weights, the batch order and the stochastic-rounding bits.  Every matrix product of
the lowbit variants -- forward ``X W1``, ``H W2``; backward ``dZ2 W2^T``, ``H^T dZ2``,
``X^T dZ1`` -- is a :class:`accum_datapaths.Datapath` (``--acc``, default FP32 RNE, i.e.
:func:`lowbit.models.mac.mac_stream`: each output accumulates its K exact FP8 products in
order), with operands quantised per tensor before it:

* ``fp8``: activations and weights E4M3, gradients E5M2 (Micikevicius et al. 2022), RNE,
  saturating, no loss scaling.
* ``s2fp8``: every operand tensor through :func:`lowbit.models.s2fp8.s2fp8_quantize` (E5M2 with
  per-tensor shift and squeeze, Cambier et al. 2020), then expanded back
  (:func:`s2fp8_dequantize`) and rounded to FP16, the operand format of the MAC (the product of
  two S2FP8 values is not a product of their E5M2 codes, so the MAC sees the decoded values).

The weights are stored in ``--wfmt`` (FP16 or BF16) and updated ``w <- w + u`` with the update
``u = -lr * g`` formed in FP32 (RNE from the float64 of the FP32 gradient), then:

* ``rne``: :func:`lowbit.models.mac.round_sum` (one RNE rounding of the exact sum);
* ``sr``: the same with ``rounding="stochastic"``, ``--sr-bits`` (16) random bits per weight and
  step;
* ``kahan``: :func:`lowbit.models.training.kahan_step` with a compensation register per weight
  in the weight format (Kahan summation of the updates).

``fp32`` is the reference: float32 NumPy throughout, no quantisation.  Printed: test accuracy
per variant, seed and epoch, the mean training loss per epoch; writes ``training_run.png``
(loss and accuracy curves, one line per variant and seed) and ``training_run.csv``.
"""

import argparse
import csv
import multiprocessing
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import accum_datapaths as adp  # noqa: E402  (sibling module of the benchmark scripts)

from lowbit.models import formats, mac, s2fp8, training  # noqa: E402

E4M3 = formats.get("e4m3")
E5M2 = formats.get("e5m2")
FP16 = formats.get("fp16")
FP32 = formats.get("fp32")

#: variant name -> (operand quantiser, weight format, update rule)
VARIANTS = {
    "fp32": (None, "fp32", None),
    "fp8 fp16-rne": ("fp8", "fp16", "rne"),
    "fp8 fp16-sr": ("fp8", "fp16", "sr"),
    "fp8 fp16-kahan": ("fp8", "fp16", "kahan"),
    "fp8 bf16-rne": ("fp8", "bf16", "rne"),
    "fp8 bf16-sr": ("fp8", "bf16", "sr"),
    "fp8 bf16-kahan": ("fp8", "bf16", "kahan"),
    "s2fp8 bf16-sr": ("s2fp8", "bf16", "sr"),
}


def load_data():
    # scikit-learn (test extra) is imported here only: the bundled digits data
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return train_test_split(X, y, test_size=360, random_state=0, stratify=y)


class Gemm:
    """Quantise two float tensors and multiply them through the accumulator datapath."""

    def __init__(self, quant, datapath, rng):
        self.quant, self.dp, self.rng = quant, datapath, rng

    def operand(self, x, role):
        """``(codes, format)`` of tensor ``x``; ``role`` is ``"act"``/``"wt"`` or ``"grad"``."""
        if self.quant == "fp8":
            fmt = E5M2 if role == "grad" else E4M3
            return fmt.encode(x, saturate=True), fmt
        t = s2fp8.s2fp8_quantize(x)
        return FP16.encode(s2fp8.s2fp8_dequantize(t), saturate=True), FP16

    def __call__(self, a, a_role, b, b_role):
        ac, af = self.operand(a, a_role)
        bc, bf = self.operand(b, b_role)
        M, K = ac.shape
        N = bc.shape[1]
        a3 = np.broadcast_to(ac.T[:, :, None], (K, M, N))
        b3 = np.broadcast_to(bc[:, None, :], (K, M, N))
        out = self.dp.run(a3, b3, af, bf, rng=self.rng)[-1]
        return self.dp.acc_format.decode(out)


class Weights:
    """A weight matrix in ``wfmt`` codes with its update rule (see the module docstring)."""

    def __init__(self, w, wfmt, rule, sr_bits, rng):
        self.fmt, self.rule, self.sr_bits, self.rng = formats.get(wfmt), rule, sr_bits, rng
        self.code = self.fmt.encode(w).astype(np.int64)
        self.comp = np.zeros_like(self.code)          # Kahan compensation, +0

    @property
    def value(self):
        return self.fmt.decode(self.code)

    def update(self, grad, lr):
        u = FP32.decode(FP32.encode(-lr * grad))      # the update, formed in FP32
        if self.rule == "rne":
            self.code = mac.round_sum(self.value, u, self.fmt).astype(np.int64)
        elif self.rule == "sr":
            r = self.rng.integers(0, 1 << self.sr_bits, size=u.shape, dtype=np.int64)
            self.code = mac.round_sum(self.value, u, self.fmt, rounding="stochastic",
                                      random_bits=r, sr_bits=self.sr_bits).astype(np.int64)
        else:
            self.code, self.comp = training.kahan_step(self.code, self.comp, u, self.fmt)


def softmax_xent(z, y):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y] + 1e-30).mean()
    d = p.copy()
    d[np.arange(len(y)), y] -= 1.0
    return loss, d / len(y)


def run(variant, seed, data, epochs, batch, lr, sr_bits, acc_name, hidden=32):
    """Train one variant; returns ``[(epoch, mean train loss, test accuracy)]``."""
    Xtr, Xte, ytr, yte = data
    quant, wfmt, rule = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, np.sqrt(2 / 64), (64, hidden))
    w2 = rng.normal(0, np.sqrt(2 / hidden), (hidden, 10))
    order_rng = np.random.default_rng(seed + 1000)
    if quant is None:
        w1, w2 = w1.astype(np.float32), w2.astype(np.float32)

        def forward(x):
            h = np.maximum(x.astype(np.float32) @ w1, 0)
            return h, h @ w2
    else:
        dp = next(d for d in adp.study_datapaths() if d.name == acc_name)
        gemm = Gemm(quant, dp, np.random.default_rng(seed + 2000))
        W1 = Weights(w1, wfmt, rule, sr_bits, np.random.default_rng(seed + 3000))
        W2 = Weights(w2, wfmt, rule, sr_bits, np.random.default_rng(seed + 4000))

        def forward(x):
            h = np.maximum(gemm(x, "act", W1.value, "wt"), 0)
            return h, gemm(h, "act", W2.value, "wt")
    curve = []
    for ep in range(1, epochs + 1):
        perm = order_rng.permutation(len(ytr))
        losses = []
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            x, y = Xtr[idx], ytr[idx]
            h, z = forward(x)
            loss, dz = softmax_xent(z.astype(np.float64), y)
            losses.append(loss)
            if quant is None:
                dz = dz.astype(np.float32)
                dh = (dz @ w2.T) * (h > 0)
                w2 -= np.float32(lr) * (h.T @ dz)
                w1 -= np.float32(lr) * (x.astype(np.float32).T @ dh)
            else:
                dh = gemm(dz, "grad", W2.value.T, "wt") * (h > 0)
                g2 = gemm(h.T, "act", dz, "grad")
                g1 = gemm(x.T, "act", dh, "grad")
                W2.update(g2, lr)
                W1.update(g1, lr)
        _, zt = forward(Xte)
        acc = float((np.argmax(zt, axis=1) == yte).mean())
        curve.append((ep, float(np.mean(losses)), acc))
    return curve


def plot(results, path):
    # matplotlib is a dependency but only this figure needs it
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    names = list(dict.fromkeys(v for v, _ in results))
    cmap = plt.get_cmap("tab10")
    for (variant, seed), curve in results.items():
        c = cmap(names.index(variant) % 10)
        ep = [e for e, _, _ in curve]
        lab = variant if seed == min(s for v, s in results if v == variant) else None
        ax1.plot(ep, [loss for _, loss, _ in curve], color=c, lw=1, label=lab)
        ax2.plot(ep, [a for _, _, a in curve], color=c, lw=1, label=lab)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("mean training loss")
    ax1.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("test accuracy")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    fig.suptitle("digits MLP 64-32-10, FP8 GEMMs through lowbit datapaths (one line per seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.3)
    ap.add_argument("--sr-bits", type=int, default=16)
    ap.add_argument("--acc", default="fp32 RNE", help="GEMM accumulator datapath name")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default=".")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",")]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        print(f"error: unknown variant {bad[0]!r}; known: {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    if args.acc not in [d.name for d in adp.study_datapaths()]:
        print(f"error: unknown --acc {args.acc!r}", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    data = load_data()
    jobs = [(v, s, data, args.epochs, args.batch, args.lr, args.sr_bits, args.acc)
            for v in variants for s in seeds]
    t0 = time.time()
    if args.jobs > 1:
        with multiprocessing.Pool(args.jobs) as pool:
            curves = pool.starmap(run, jobs)
    else:
        curves = [run(*j) for j in jobs]
    results = {(j[0], j[1]): c for j, c in zip(jobs, curves)}
    print(f"{len(jobs)} runs in {time.time() - t0:.0f} s")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "training_run.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["variant", "seed", "epoch", "train_loss", "test_acc"])
        for (v, s), curve in results.items():
            for ep, loss, acc in curve:
                w.writerow([v, s, ep, f"{loss:.6f}", f"{acc:.4f}"])
    print("final test accuracy per seed (mean):")
    for v in variants:
        accs = [results[(v, s)][-1][2] for s in seeds]
        print(f"  {v:16s} " + "  ".join(f"{a:.4f}" for a in accs) + f"   mean {np.mean(accs):.4f}")
    plot(results, os.path.join(args.out, "training_run.png"))
    print(f"wrote {os.path.join(args.out, 'training_run.png')} and .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
