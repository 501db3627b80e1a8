"""Measured benefit of OverQ: a small MLP on scikit-learn's bundled digits data, 4-bit weights and
activations, run through lowbit's golden model (bit-exact with the OverQ PE / plain PE hardware).

Nothing is downloaded: ``sklearn.datasets.load_digits`` ships with scikit-learn (1797 8x8
images, 10 classes).  The network is ``64 -> 64 -> 32 -> 10`` (ReLU), trained here in float.

Quantised inference (per layer): activations (the layer input, along the reduction axis) get
one per-tensor scale calibrated on the training set; weights get one scale per output channel;
every matrix product is an exact integer accumulation (:func:`lowbit.models.overq.int_matmul`
for plain codes, :func:`lowbit.models.overq.overq_matmul` for OverQ codes, i.e. the dot product
of the OverQ PE), then dequantised; the bias is added in float.  Rows:

* ``float``: no quantisation.
* ``baseline``: range-preserving scales (no clipping) for activations and weights.
* ``clipped``: MSE-optimal clipping scales (grid search) for activations and weights.
* ``overq ...``: activations OverQ-encoded at their own MSE-optimal scale, weights as ``clipped``.
* ``... @clipped scale``: OverQ at the plain MSE clipping scale (fewer outliers to place).
* ``clipped int5/int6``: plain activations with 1/2 more bits, i.e. the same storage per value
  as OverQ's codes plus its metadata, for an iso-storage comparison.

Printed per row: test accuracy, SQNR of each layer's input activations against the float
network's activations on the test set (the quantisation error of that tensor alone), SQNR of
the logits against the float logits (all errors propagated), and for OverQ the fraction of
outliers accommodated and of values refined.

Run: ``python benchmarks/overq_digits.py [--seed N] [--bits 4]``
"""

import argparse
import time

import numpy as np

from lowbit.models import overq as oq
from lowbit.models.overq import OverqConfig


def train(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    clf = MLPClassifier(hidden_layer_sizes=(64, 32), activation="relu", max_iter=600,
                        alpha=1e-4, random_state=seed)
    clf.fit(Xtr, ytr)
    layers = [(W.astype(np.float64), b.astype(np.float64))
              for W, b in zip(clf.coefs_, clf.intercepts_)]
    return layers, Xtr, Xte, ytr, yte


def float_acts(layers, x):
    """Inputs of every layer and the logits of the float network."""
    acts = []
    for i, (W, b) in enumerate(layers):
        acts.append(x)
        x = x @ W + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0)
    return acts, x


def quantise_weights(W, bits, method):
    s = oq.calibrate(W, bits, method, channel_axis=1)          # one scale per output channel
    return oq.plain_encode(W, bits, s), s


class Scheme:
    """How the activations and weights of every layer are quantised."""

    def __init__(self, name, a_bits, a_method, w_method, config=None):
        self.name, self.a_bits, self.a_method, self.w_method = name, a_bits, a_method, w_method
        self.config = config

    def calibrate(self, layers, train_acts, w_bits):
        self.w = [quantise_weights(W, w_bits, self.w_method) for W, _ in layers]
        self.a_scale = [oq.calibrate(a, self.a_bits, self.a_method, self.config, axis=1)
                        for a in train_acts]

    def quantise_act(self, i, a):
        """(integer values or OverQ tensor, dequantised float values)."""
        s = self.a_scale[i]
        if self.config is None:
            codes = oq.plain_encode(a, self.a_bits, s)
            return codes, oq.plain_decode(codes, self.a_bits, s)
        t = oq.encode(a, self.config, s, axis=1)
        return t, t.decode()

    def run(self, layers, x, w_bits, stats=None):
        for i, (W, b) in enumerate(layers):
            q, _ = self.quantise_act(i, x)
            wc, ws = self.w[i]
            wv = oq.formats.int_format(w_bits).decode(wc)
            if self.config is None:
                acc = oq.int_matmul(q, wv, bits=self.a_bits, w_bits=w_bits, acc_bits=None)
                unit = self.a_scale[i]
            else:
                acc = oq.overq_matmul(q.codes, q.meta, wv, self.config, w_bits=w_bits, acc_bits=None)
                unit = self.a_scale[i] / 2 ** self.config.frac_bits
                if stats is not None:
                    stats.append((q.outliers, q.accommodated, q.refined, q.codes.size))
            # the PE accumulator is 32 bits: check nothing would have wrapped
            assert np.abs(acc).max() < 2 ** 31
            x = acc * unit * ws + b
            if i < len(layers) - 1:
                x = np.maximum(x, 0)
        return x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bits", type=int, default=4, help="activation and weight bits (default 4)")
    args = ap.parse_args(argv)
    b = args.bits
    t0 = time.perf_counter()
    layers, Xtr, Xte, ytr, yte = train(args.seed)
    train_acts, _ = float_acts(layers, Xtr)
    test_acts, logits = float_acts(layers, Xte)
    float_acc = float(np.mean(logits.argmax(1) == yte))

    schemes = [
        Scheme(f"baseline int{b} (no clipping)", b, "max", "max"),
        Scheme(f"clipped int{b} (MSE clip)", b, "mse", "mse"),
        Scheme(f"overq b={b} cascade=0", b, "overq", "mse", OverqConfig(b, 0, False)),
        Scheme(f"overq b={b} cascade=1", b, "overq", "mse", OverqConfig(b, 1, False)),
        Scheme(f"overq b={b} cascade=2", b, "overq", "mse", OverqConfig(b, 2, False)),
        Scheme(f"overq b={b} cascade=4", b, "overq", "mse", OverqConfig(b, 4, False)),
        Scheme(f"overq b={b} cascade=0 +prec", b, "overq", "mse", OverqConfig(b, 0, True)),
        Scheme(f"overq b={b} cascade=2 +prec", b, "overq", "mse", OverqConfig(b, 2, True)),
        Scheme(f"overq b={b} cascade=4 +prec", b, "overq", "mse", OverqConfig(b, 4, True)),
        Scheme(f"overq b={b} cascade=4 +prec @clipped scale", b, "mse", "mse",
               OverqConfig(b, 4, True)),
        Scheme(f"clipped int{b + 1} acts (iso-storage 1 meta bit)", b + 1, "mse", "mse"),
        Scheme(f"clipped int{b + 2} acts (iso-storage 2 meta bits)", b + 2, "mse", "mse"),
    ]
    print(f"digits MLP 64-64-32-10, train {len(ytr)} / test {len(yte)} images, seed {args.seed}; "
          f"weights int{b} per output channel, activations per tensor")
    print(f"float accuracy {100 * float_acc:.2f} %\n")
    head = (f"{'scheme':<46} {'meta':>4} {'acc %':>6} "
            + " ".join(f"{'SQNR a' + str(i):>8}" for i in range(len(layers)))
            + f" {'SQNR out':>8} {'outl.':>6} {'accom.':>6} {'refined':>7}")
    print(head)
    print("-" * len(head))
    for sc in schemes:
        sc.calibrate(layers, train_acts, b)
        stats = []
        out = sc.run(layers, Xte, b, stats)
        acc = float(np.mean(out.argmax(1) == yte))
        sq = [oq.sqnr_db(a, sc.quantise_act(i, a)[1]) for i, a in enumerate(test_acts)]
        meta = sc.config.meta_bits if sc.config else 0
        if stats:
            n_out = sum(s[0] for s in stats)
            n_acc = sum(s[1] for s in stats)
            n_ref = sum(s[2] for s in stats)
            n_all = sum(s[3] for s in stats)
            extra = (f" {n_out:>6d} {100 * n_acc / max(n_out, 1):>5.1f}% "
                     f"{100 * n_ref / n_all:>6.1f}%")
        else:
            extra = f" {'':>6} {'':>6} {'':>7}"
        print(f"{sc.name:<46} {meta:>4d} {100 * acc:>6.2f} "
              + " ".join(f"{v:>8.2f}" for v in sq)
              + f" {oq.sqnr_db(logits, out):>8.2f}" + extra)
    print("\nSQNR a<i>: dB, layer-i input activations on the test set quantised alone vs float; "
          "SQNR out: logits of the quantised network vs float;\nouti./accom.: outliers of the "
          "propagated activations (all layers) and the fraction given a range overwrite; "
          "refined: values given a precision overwrite;\nmeta: OverQ metadata bits per activation "
          "value (storage = bits + meta).  "
          f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
