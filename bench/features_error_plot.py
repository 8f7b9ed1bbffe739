#!/usr/bin/env python3
"""Approximation error of gram's feature maps against the number of features R, on scikit-learn's
bundled digits (issue 13's plot).

For each method, R in powers of two and several seeds, the relative Frobenius error
‖Φ Φᵀ − K‖_F / ‖K‖_F of the Gram matrix of a fixed subset of the digits (the first N rows,
standardised: each pixel centred and divided by its standard deviation, constant pixels dropped),
K exact from gram.pairwise_kernels (the engine). The median over the seeds is plotted, with the
spread (the smallest and the largest) as a band, and printed as a table.

Kernels: the gaussian rbf(lengthscale=ℓ) with ℓ the median pairwise distance (so k spans (0, 1))
for RFF, ORF, SORF, positive (FAVOR+) and Nyström (uniform landmarks; every landmark rule the
library has, where R ≤ N); the polynomial kernel (γ x·y + 1)² with γ = 1/D for TensorSketch; the
arc-cosine kernel of degree 1 for the arc-cosine features. A method or kernel the loaded library
does not have is skipped with a note, so the script takes new ones as they land.

The SVG is written by the script itself (no plotting library), log-log axes.

    PYTHONPATH=/tmp/gram-dev-NAME python3 bench/features_error_plot.py [--n 600] [--seeds 5]
        [--rmax 4096] [-o docs/img/features_error.svg]
"""
import argparse
import math
import sys

import numpy as np

import gram
from sklearn.datasets import load_digits

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf"]


def data(n):
    X = load_digits().data.astype(np.float64)
    X = X[:, X.std(axis=0) > 0]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return np.ascontiguousarray(X[:n])


def gram_error(method, spec, X, K, R, seed, landmarks="uniform"):
    rf = gram.RandomFeatures(kernel=spec, method=method, n_components=R, landmarks=landmarks, random_state=seed)
    P = rf.fit(X).transform(X)
    return float(np.linalg.norm(P @ P.T - K) / np.linalg.norm(K))


def series(X, seeds, rmax):
    n, D = X.shape
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    ell = float(np.sqrt(np.median(d2[np.triu_indices(n, 1)])))
    rbf = f"rbf(lengthscale={ell!r})"
    poly = f"polynomial(degree=2, gamma={1.0 / D!r}, coef0=1)"
    cases = [("RFF", "rff", rbf, "uniform"), ("ORF", "orf", rbf, "uniform"), ("SORF", "sorf", rbf, "uniform"),
             ("positive (FAVOR+)", "positive", rbf, "uniform"),
             ("Nyström, uniform", "nystrom", rbf, "uniform"), ("Nyström, k-means++", "nystrom", rbf, "kmeans++"),
             ("Nyström, leverage", "nystrom", rbf, "leverage"),
             ("TensorSketch (poly, p = 2)", "tensorsketch", poly, "uniform"),
             ("arc-cosine (n = 1)", "arccos", "arccos(degree=1)", "uniform")]
    Rs = [2 ** p for p in range(4, int(math.log2(rmax)) + 1)]
    out = []
    for label, method, spec, lm in cases:
        try:
            K = gram.pairwise_kernels(X, kernel=spec)
            gram_error(method, spec, X, K, 16, 0, lm)
        except Exception as e:  # a method or kernel the library does not have yet
            print(f"# skipped {label}: {type(e).__name__}: {str(e).splitlines()[0][:120]}", file=sys.stderr)
            continue
        pts = []
        for R in Rs:
            if method == "nystrom" and R > n:
                continue
            errs = [gram_error(method, spec, X, K, R, s, lm) for s in range(seeds)]
            pts.append((R, float(np.median(errs)), min(errs), max(errs)))
        out.append((label, spec, pts))
        print(f"{label:28s} " + "  ".join(f"{R}:{m:.4f}" for R, m, _, _ in pts), flush=True)
    return out, ell


def svg(curves, title, path):
    W, H, L, Rm, T, B = 760, 500, 70, 230, 40, 55
    xs = [p[0] for _, _, pts in curves for p in pts]
    ys = [v for _, _, pts in curves for p in pts for v in p[1:] if v > 0]
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))

    def px(x):
        return L + (math.log10(x) - x0) / (x1 - x0) * (W - L - Rm)

    def py(y):
        return T + (y1 - math.log10(max(y, 10 ** y0))) / (y1 - y0) * (H - T - B)

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{(L + W - Rm) / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    for e in range(int(y0), int(y1) + 1):
        y = py(10 ** e)
        s.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - Rm}" y2="{y:.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
    for x in sorted(set(xs)):
        s.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" y2="{H - B}" stroke="#eee"/>')
        s.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x}</text>')
    s.append(f'<rect x="{L}" y="{T}" width="{W - L - Rm}" height="{H - T - B}" fill="none" stroke="black"/>')
    s.append(f'<text x="{(L + W - Rm) / 2}" y="{H - 15}" text-anchor="middle">number of features R</text>')
    s.append(f'<text transform="translate(18 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">'
             'relative Frobenius error of the Gram matrix</text>')
    for i, (label, _, pts) in enumerate(curves):
        c = COLORS[i % len(COLORS)]
        band = [(px(R), py(hi)) for R, _, _, hi in pts] + [(px(R), py(lo)) for R, _, lo, _ in reversed(pts)]
        s.append('<polygon points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in band) +
                 f'" fill="{c}" fill-opacity="0.12" stroke="none"/>')
        s.append('<polyline points="' + " ".join(f"{px(R):.1f},{py(m):.1f}" for R, m, _, _ in pts) +
                 f'" fill="none" stroke="{c}" stroke-width="2"/>')
        for R, m, _, _ in pts:
            s.append(f'<circle cx="{px(R):.1f}" cy="{py(m):.1f}" r="2.5" fill="{c}"/>')
        ly = T + 10 + 18 * i
        s.append(f'<line x1="{W - Rm + 12}" y1="{ly}" x2="{W - Rm + 32}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        s.append(f'<text x="{W - Rm + 38}" y="{ly + 4}">{label}</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600, help="rows of digits used (default 600)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rmax", type=int, default=4096)
    ap.add_argument("-o", "--output", default="docs/img/features_error.svg")
    a = ap.parse_args()
    X = data(a.n)
    print(f"# gram {gram.library_version()}: digits, first {X.shape[0]} rows, D = {X.shape[1]} (standardised); "
          f"median over {a.seeds} seeds of |PP' - K|_F / |K|_F", flush=True)
    curves, ell = series(X, a.seeds, a.rmax)
    svg(curves, f"Feature maps on digits (N = {X.shape[0]}, D = {X.shape[1]}; gaussian ℓ = {ell:.3g}): "
        f"median of {a.seeds} seeds", a.output)
    print(f"# wrote {a.output}")


if __name__ == "__main__":
    main()
