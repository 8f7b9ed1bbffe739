#!/usr/bin/env python3
"""The shape of Backurs et al.'s experiments (ICLR 2024, arXiv 2403.08917, §11) with gram's private
similarity sketches, in one run (issue 14's benchmark; docs/private.md shows its tables).

Data: scikit-learn's bundled digits (1797 rows, 64 pixels in 0..16). The pixel range is public
knowledge, so the map x = pixels/8 - 1 puts every row in the box |x_j| ≤ 1 and in the ball
|x|₂ ≤ 8 without looking at the data: those are the domains the sketches are given (box, radius 1
for the distances; ball, radius 8 for the kernels). A fixed permutation (seed 0) splits the rows
into a private part (the sketch's X) and a public part (the queries). The Gaussian bandwidth σ is
the median pairwise distance of the public part: choosing it from the private rows would leak
(docs/private.md). The issue's optional second data set, real text or image embeddings from a
package that ships its own vectors, is not here: the maintained packages that install from PyPI
download their vectors at run time (no network here), and the few that bundle them are small
unvetted single-author packages.

1. error: relative error |q̂(y) - q(y)| / q(y) of the private average against the exact average
   q(y) = (1/n) Σ_x f(x, y) (SciPy's cdist in float64), for ℓ1 distance and the Gaussian kernel
   exp(-|x - y|²/σ²), at ε ∈ --eps (δ = 0: pure ε-DP, discrete Laplace noise), gram's mechanism
   (mechanism='paper') beside the baseline (mechanism='baseline': Huang & Roth 2014 for ℓ1; random
   Fourier features in all d dimensions plus Laplace noise for the kernel). Medians over --seeds
   fits (each with its own public seed and fresh noise from the operating system) and all queries.
   The Gaussian also runs with a smaller Johnson–Lindenstrauss dimension (--jl-dims): at d = 64
   the default reduced_dim = min(d, 64) is the identity. ε = 1e9 is the non-private limit (the
   error left is discretisation or feature approximation). Tables and log-log SVGs. Then ℓ1 at fixed
   tree depths L (--l1-levels, ε = 1): the paper's tree against the flat histogram.
2. time: query time against d (--dims, synthetic rows in the unit ball, n = --time-n, M = --time-m
   queries, R = 1024 features) with the dimensionality reduction (reduced_dim = 64) and without it
   (reduced_dim = d), medians of --reps alternating repetitions; fit times; the exact sum through
   gram's engine (gram.kernel_sum) on the same queries for scale, and each sketch's relative error
   against it at ε = 1e9 (the approximation alone; a fast wrong answer cannot hide).
3. classify: DP classification by average similarity (the paper's application). A stratified
   train/test split (75/25, seed 0); gram.PrivateSimilarityClassifier (Gaussian kernel, one sketch
   per class; ε is the total for a replaced labelled row) at each ε, medians over --classify-seeds;
   the non-private average-similarity classifier (NumPy, exact averages); DP-SGD logistic regression
   (Opacus, if importable) at the same ε and δ = 1e-5 with Opacus's PRV accountant choosing the
   noise; its ε counts add/remove neighbours, gram's counts a replaced row (worth 2 add/remove
   steps), so the comparison favours DP-SGD by a factor up to 2 in ε. Hyperparameters of DP-SGD
   are fixed (not tuned per ε, and never on the test rows). Train and predict times. Then the same
   classifier on larger private sets (--scale multiples of the training rows, a smoothed bootstrap:
   a utility experiment only), since a class average's noise falls as 1/(ε·n_class).

    PYTHONPATH=/tmp/gram-dev-NAME python3 bench/private_bench.py [--part error|time|classify|all]
        [--eps 0.1,0.3,1,3,10] [--seeds 20] [--classify-seeds 10] [--l1-levels 4,6,8,10,12,14]
        [--dims 16,32,64,128,256,512,1024] [--reps 5] [--time-n 2000] [--time-m 2000] [--jl-dims 16]
        [--epochs 30] [--no-dpsgd] [--scale 10,100] [--scale-seeds 5] [--outdir docs/img] [--quick]

Opacus and PyTorch are benchmark-only anchors, never test dependencies; install them privately,
e.g. pip install --no-deps --target /tmp/opacus-site opacus opt_einsum (and torch likewise) and put
those folders on PYTHONPATH. Nothing is asserted about times.
"""
import argparse
import math
import os
import sys
import time
from xml.sax.saxutils import escape

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import gram

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
HUGE_EPS = 1e9  # the non-private limit: noise far below the approximation error


def digits():
    d = load_digits()
    X = d.data.astype(np.float64) / 8.0 - 1.0   # public map of the pixel range 0..16 onto [-1, 1]
    return np.ascontiguousarray(X), d.target.astype(np.int64)


def split_public(X, n_public, seed=0):
    perm = np.random.default_rng(seed).permutation(len(X))
    return np.ascontiguousarray(X[perm[n_public:]]), np.ascontiguousarray(X[perm[:n_public]])


def median_distance(Y):
    D = cdist(Y, Y)
    return float(np.median(D[np.triu_indices(len(Y), 1)]))


def exact_mean(kind, X, Y, sigma=None):
    if kind == "l1":
        return cdist(Y, X, "cityblock").mean(axis=1)
    return np.exp(-cdist(Y, X, "sqeuclidean") / sigma ** 2).mean(axis=1)


def fmt_row(cells, widths):
    return "| " + " | ".join(str(c).rjust(w) for c, w in zip(cells, widths)) + " |"


def table(header, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    out = [fmt_row(header, widths), "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"]
    out += [fmt_row(r, widths) for r in rows]
    print("\n".join(out), flush=True)


def g3(x):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


# ---- SVG (written here: no plotting library, as bench/features_error_plot.py) ----------------

def svg_plot(path, title, xlabel, ylabel, series, logx=True, logy=True, ylim=None):
    """series: [(label, [(x, y), ...], dashed)]; log axes by decade."""
    title, xlabel, ylabel = escape(title), escape(xlabel), escape(ylabel)
    W, H, L, Rm, T, B = 820, 480, 75, 290, 40, 55
    xs = [x for _, pts, _ in series for x, _ in pts]
    ys = [y for _, pts, _ in series for _, y in pts if (y > 0 or not logy) and np.isfinite(y)]
    tx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    ty = (lambda v: math.log10(v)) if logy else (lambda v: v)
    x0, x1 = tx(min(xs)), tx(max(xs))
    if x1 == x0:
        x1 = x0 + 1
    if ylim:
        y0, y1 = ylim
    elif logy:
        y0, y1 = math.floor(ty(min(ys))), math.ceil(ty(max(ys)))
        if y1 == y0:
            y1 = y0 + 1
    else:
        y0, y1 = min(ys), max(ys)
        pad = 0.05 * (y1 - y0 or 1)
        y0, y1 = y0 - pad, y1 + pad

    def px(x):
        return L + (tx(x) - x0) / (x1 - x0) * (W - L - Rm)

    def py(y):
        v = ty(y) if (y > 0 or not logy) else y0
        v = min(max(v, y0), y1)
        return T + (y1 - v) / (y1 - y0) * (H - T - B)

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{(L + W - Rm) / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    if logy:
        yt = [10.0 ** e for e in range(int(y0), int(y1) + 1)]
        ylab = [f"1e{e}" for e in range(int(y0), int(y1) + 1)]
    else:
        step = 10 ** math.floor(math.log10((y1 - y0) / 4 or 1))
        yt = list(np.arange(math.ceil(y0 / step) * step, y1 + 1e-12, step))
        if len(yt) > 10:
            yt = yt[::2]
        ylab = [f"{v:.3g}" for v in yt]
    for v, lab in zip(yt, ylab):
        s.append(f'<line x1="{L}" y1="{py(v):.1f}" x2="{W - Rm}" y2="{py(v):.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{L - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{lab}</text>')
    for x in sorted(set(xs)):
        s.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" y2="{H - B}" stroke="#eee"/>')
        s.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:g}</text>')
    s.append(f'<rect x="{L}" y="{T}" width="{W - L - Rm}" height="{H - T - B}" fill="none" stroke="black"/>')
    s.append(f'<text x="{(L + W - Rm) / 2}" y="{H - 15}" text-anchor="middle">{xlabel}</text>')
    s.append(f'<text transform="translate(18 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">{ylabel}</text>')
    for i, (label, pts, dashed) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        pts = [(x, y) for x, y in pts if np.isfinite(y)]
        s.append('<polyline points="' + " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts) +
                 f'" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for x, y in pts:
            s.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{c}"/>')
        ly = T + 10 + 18 * i
        s.append(f'<line x1="{W - Rm + 12}" y1="{ly}" x2="{W - Rm + 32}" y2="{ly}" stroke="{c}" '
                 f'stroke-width="2"{dash}/>')
        s.append(f'<text x="{W - Rm + 38}" y="{ly + 4}">{escape(label)}</text>')
    s.append("</svg>")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")
    print(f"wrote {path}", flush=True)


# ---- 1. error against ε ------------------------------------------------------------------------

def rel_errors(kind, X, Y, exact, eps, seed, **kw):
    sk = gram.PrivateKernelSum(kernel=kind, epsilon=eps, random_state=seed, **kw).fit(X)
    est = sk.query(Y, average=True)
    return np.abs(est - exact) / np.abs(exact), sk.privacy_


def error_part(a, X, Y, sigma):
    n, d = X.shape
    cases = {
        "l1": [("gram (paper, §4)", dict(mechanism="paper")),
               ("baseline (Huang & Roth)", dict(mechanism="baseline")),
               ("gram, δ = 1e-5", dict(mechanism="paper", delta=1e-5))],
        "gaussian": [("gram (paper, k = 64 = d)", dict(mechanism="paper")),
                     *[(f"gram (paper, JL k = {k})", dict(mechanism="paper", reduced_dim=k)) for k in a.jl_dims],
                     ("baseline (RFF + Laplace)", dict(mechanism="baseline")),
                     ("gram, δ = 1e-5", dict(mechanism="paper", delta=1e-5))],
    }
    common = {"l1": dict(domain="box", domain_radius=1.0),
              "gaussian": dict(domain="ball", domain_radius=8.0, bandwidth=sigma)}
    results = {}
    for kind in ("l1", "gaussian"):
        exact = exact_mean(kind, X, Y, sigma)
        what = ("ℓ1 distance: box |x_j| ≤ 1" if kind == "l1"
                else f"Gaussian exp(-|x-y|²/σ²), σ = {sigma:.4g}: ball |x| ≤ 8, R = 1024 features")
        print(f"\n### {what}; n = {n} private rows, d = {d}, {len(Y)} public queries, "
              f"median over {a.seeds} fits × queries of |q̂ - q|/q (δ = 0 where the column does not say)\n", flush=True)
        rows, curves, t_fit = [], {label: [] for label, _ in cases[kind]}, {}
        for eps in a.eps + [HUGE_EPS]:
            # ℓ1's automatic depth at ε = 1e9 is the cap (2^19 cells, tens of seconds a fit): the
            # limit row fixes L = 12 (cells of 2/4096), enough to show the discretisation floor.
            lim = dict(levels=12) if kind == "l1" and eps == HUGE_EPS else {}
            row = [("1e9 (limit, L = 12)" if kind == "l1" else "1e9 (limit)") if eps == HUGE_EPS else f"{eps:g}"]
            levels = []
            for label, kw in cases[kind]:
                errs, tf = [], []
                for seed in range(a.seeds):
                    t0 = time.perf_counter()
                    e, info = rel_errors(kind, X, Y, exact, eps, 1000 + seed, **common[kind], **kw, **lim)
                    errs.append(e)
                    lv = info["levels"]
                    tf.append(time.perf_counter() - t0)
                levels.append(str(lv))
                med = float(np.median(np.concatenate(errs)))
                t_fit.setdefault(label, []).extend(tf)
                row.append(g3(med))
                if eps != HUGE_EPS:
                    curves[label].append((eps, med))
            ib = 1 + next(i for i, (label, _) in enumerate(cases[kind]) if label.startswith("baseline"))
            row.append(g3(float(row[ib]) / float(row[1])) if "n/a" not in (row[1], row[ib]) and float(row[1]) > 0
                       else "n/a")
            if kind == "l1":
                row.append(" / ".join(levels))
            rows.append(row)
        header = ["ε"] + [label for label, _ in cases[kind]] + ["baseline / gram"] + \
            (["depth L chosen (per column)"] if kind == "l1" else [])
        table(header, rows)
        for label, _ in cases[kind]:
            pts = curves[label]
            if len(pts) >= 2:
                sl = np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)[0]
                print(f"- {label}: log-log slope of the error against ε {sl:+.2f}; fit + query of "
                      f"{len(Y)} points median {np.median(t_fit[label]):.3f} s", flush=True)
        title = ("Private ℓ1 distance" if kind == "l1" else "Private Gaussian kernel") + \
            f" average on digits (n = {n}, d = {d})"
        svg_plot(os.path.join(a.outdir, f"private_{kind}_error.svg"), title, "ε",
                 "median relative error of the average",
                 [(label, curves[label], label.startswith("baseline")) for label, _ in cases[kind]])
        results[kind] = rows
        if kind == "l1":
            l1_levels(a, X, Y, exact, common["l1"])
    return results


def l1_levels(a, X, Y, exact, common, eps=1.0):
    """The tree against the flat histogram at a fixed depth: a CDF value sums O(L) noisy tree nodes
    (each of scale 2dL/ε) but up to 2^L noisy cells (each 2d/ε), so the tree's noise grows as L^1.5
    and the histogram's as 2^(L/2): equal near L = 10, the tree ahead beyond."""
    print(f"\n### ℓ1 at fixed depth L (ε = {eps:g}, δ = 0): median relative error over {a.seeds} fits × queries\n",
          flush=True)
    rows = []
    for L in a.l1_levels:
        meds = []
        for mech in ("paper", "baseline"):
            errs = [rel_errors("l1", X, Y, exact, eps, 3000 + seed, mechanism=mech, levels=L, **common)[0]
                    for seed in range(a.seeds)]
            meds.append(float(np.median(np.concatenate(errs))))
        rows.append([L, 2 ** L, g3(meds[0]), g3(meds[1]), g3(meds[1] / meds[0])])
    table(["L", "cells", "gram (paper, tree)", "baseline (flat histogram)", "baseline / gram"], rows)


# ---- 2. query time against d ------------------------------------------------------------------

def alternate(fns, reps):
    """Median wall and process CPU times of each fn, called in turn rep by rep (a load change hits
    all alike; on a shared machine the CPU time, all threads, is the steadier measure of work)."""
    times, cpus = [[] for _ in fns], [[] for _ in fns]
    outs = [None] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            c0, t0 = time.process_time(), time.perf_counter()
            outs[i] = fn()
            times[i].append(time.perf_counter() - t0)
            cpus[i].append(time.process_time() - c0)
    return [float(np.median(t)) for t in times], [float(np.median(c)) for c in cpus], outs


def time_part(a):
    n, m, R = a.time_n, a.time_m, 1024
    sigma = 0.5
    print(f"\n### Gaussian kernel query time against d: n = {n}, M = {m} queries, R = {R} features, "
          f"σ = {sigma}, ball |x| ≤ 1; median of {a.reps} alternating runs. ε = 1e9, so the error columns "
          "show the approximation alone (features, and the projection's distortion); a query's cost does not "
          "depend on ε\n", flush=True)
    rows, with_jl, without_jl = [], [], []
    for d in a.dims:
        rng = np.random.default_rng(d)
        X = 0.5 * rng.standard_normal((n, d)) / math.sqrt(d)
        Y = 0.5 * rng.standard_normal((m, d)) / math.sqrt(d)
        kw = dict(kernel="gaussian", epsilon=HUGE_EPS, bandwidth=sigma, domain_radius=1.0, n_components=R, random_state=7)
        t0 = time.perf_counter()
        s_jl = gram.PrivateKernelSum(reduced_dim=64, **kw).fit(X)
        t1 = time.perf_counter()
        s_no = gram.PrivateKernelSum(reduced_dim=d, **kw).fit(X)
        t2 = time.perf_counter()
        spec = f"gaussian(lengthscale={sigma / math.sqrt(2)!r})"
        (tq_jl, tq_no, t_ex), (cq_jl, cq_no, c_ex), (o_jl, o_no, ex) = alternate(
            [lambda: s_jl.query(Y, average=True), lambda: s_no.query(Y, average=True),
             lambda: gram.kernel_sum(X, Y, kernel=spec) / n], a.reps)
        e_jl = float(np.median(np.abs(o_jl - ex) / ex))
        e_no = float(np.median(np.abs(o_no - ex) / ex))
        rows.append([d, f"{t1 - t0:.3f}", f"{t2 - t1:.3f}", f"{tq_jl * 1e3:.1f} / {cq_jl * 1e3:.1f}",
                     f"{tq_no * 1e3:.1f} / {cq_no * 1e3:.1f}", f"{cq_no / cq_jl:.2f}x",
                     f"{t_ex * 1e3:.1f} / {c_ex * 1e3:.1f}", g3(e_jl), g3(e_no)])
        with_jl.append((d, cq_jl * 1e3))
        without_jl.append((d, cq_no * 1e3))
    table(["d", "fit s (JL 64)", "fit s (no JL)", "query ms wall / cpu (JL 64)", "query ms wall / cpu (no JL)",
           "cpu no JL / JL", "exact sum ms wall / cpu (engine)", "rel err (JL 64)", "rel err (no JL)"], rows)
    svg_plot(os.path.join(a.outdir, "private_query_time.svg"),
             f"Private Gaussian sketch: time of {m} queries (n = {n}, R = {R})", "dimension d",
             "median CPU time of the queries (ms)",
             [("reduced_dim = 64 (JL)", with_jl, False), ("reduced_dim = d (no reduction)", without_jl, True)])


# ---- 3. DP classification ----------------------------------------------------------------------

def avg_similarity_predict(Xtr, ytr, Xte, sigma, classes):
    K = np.exp(-cdist(Xte, Xtr, "sqeuclidean") / sigma ** 2)
    scores = np.stack([K[:, ytr == c].mean(axis=1) for c in classes], axis=1)
    return classes[np.argmax(scores, axis=1)]


def load_opacus():
    try:
        import torch
        import opacus
        return torch, opacus
    except Exception as e:  # an optional anchor: the rest of the run goes on without it
        print(f"(DP-SGD skipped: Opacus/PyTorch not importable: {type(e).__name__}: {str(e)[:100]})", flush=True)
        return None, None


def dpsgd(torch, opacus, Xtr, ytr, Xte, yte, eps, delta, seed, epochs, batch=64, lr=1.0, clip=1.0):
    from opacus import PrivacyEngine
    torch.manual_seed(seed)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(Xtr).float(), torch.from_numpy(ytr))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True)
    model = torch.nn.Linear(Xtr.shape[1], int(ytr.max()) + 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    engine = PrivacyEngine(accountant="prv")
    t0 = time.perf_counter()
    model, opt, loader = engine.make_private_with_epsilon(
        module=model, optimizer=opt, data_loader=loader, target_epsilon=eps, target_delta=delta,
        epochs=epochs, max_grad_norm=clip)
    lossf = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        for xb, yb in loader:
            if len(xb) == 0:
                continue
            opt.zero_grad()
            lossf(model(xb), yb).backward()
            opt.step()
    t_train = time.perf_counter() - t0
    spent = engine.get_epsilon(delta)
    with torch.no_grad():
        pred = model(torch.from_numpy(Xte).float()).argmax(1).numpy()
    return float(np.mean(pred == yte)), t_train, spent


def classify_part(a, X, y):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    Xtr, Xte = np.ascontiguousarray(Xtr), np.ascontiguousarray(Xte)
    classes = np.unique(ytr)
    sigma = median_distance(Xte)   # from the public (test) rows, never the private training rows
    t0 = time.perf_counter()
    acc_np = float(np.mean(avg_similarity_predict(Xtr, ytr, Xte, sigma, classes) == yte))
    t_np = time.perf_counter() - t0
    from sklearn.linear_model import LogisticRegression
    t0 = time.perf_counter()
    acc_lr = float(LogisticRegression(max_iter=2000).fit(Xtr, ytr).score(Xte, yte))
    t_lr = time.perf_counter() - t0
    torch, opacus = (None, None) if a.no_dpsgd else load_opacus()
    if torch is not None:
        torch.set_num_threads(1)
    delta_sgd = 1e-5
    print(f"\n### DP classification on digits: {len(Xtr)} private training rows, {len(Xte)} test rows, "
          f"Gaussian σ = {sigma:.4g} (median distance of the test rows), ball |x| ≤ 8; medians over "
          f"{a.classify_seeds} seeds\n", flush=True)
    print(f"non-private average similarity (NumPy, exact): accuracy {acc_np:.4f} ({t_np:.3f} s); "
          f"non-private logistic regression (scikit-learn): {acc_lr:.4f} ({t_lr:.3f} s)"
          + (f"; DP-SGD: Opacus {opacus.__version__}, PyTorch {torch.__version__} (1 thread), batch 64, "
             f"lr 1, clip 1, {a.epochs} epochs, δ = {delta_sgd:g}, PRV accountant" if torch else ""), flush=True)
    rows, c_gram, c_gram_g, c_sgd = [], [], [], []
    for eps in a.eps + [HUGE_EPS]:
        accs, acc_g, tfit, tpred = [], [], [], []
        for seed in range(a.classify_seeds):
            clf = gram.PrivateSimilarityClassifier(kernel="gaussian", epsilon=eps, bandwidth=sigma,
                                                   domain_radius=8.0, random_state=2000 + seed)
            t0 = time.perf_counter()
            clf.fit(Xtr, ytr)
            t1 = time.perf_counter()
            accs.append(float(np.mean(clf.predict(Xte) == yte)))
            tpred.append(time.perf_counter() - t1)
            tfit.append(t1 - t0)
            clf_g = gram.PrivateSimilarityClassifier(kernel="gaussian", epsilon=eps, delta=delta_sgd, bandwidth=sigma,
                                                     domain_radius=8.0, random_state=2000 + seed)
            acc_g.append(float(clf_g.fit(Xtr, ytr).score(Xte, yte)))
        row = ["1e9 (limit)" if eps == HUGE_EPS else f"{eps:g}", f"{np.median(accs):.4f}",
               f"{min(accs):.3f}–{max(accs):.3f}", f"{np.median(acc_g):.4f}", f"{np.median(tfit):.3f}",
               f"{np.median(tpred):.3f}"]
        if eps != HUGE_EPS:
            c_gram.append((eps, float(np.median(accs))))
            c_gram_g.append((eps, float(np.median(acc_g))))
        if torch is not None and eps != HUGE_EPS:
            sacc, strain, sspent = [], [], []
            for seed in range(a.classify_seeds):
                acc, tt, sp = dpsgd(torch, opacus, Xtr, ytr, Xte, yte, eps, delta_sgd, seed, a.epochs)
                sacc.append(acc)
                strain.append(tt)
                sspent.append(sp)
            row += [f"{np.median(sacc):.4f}", f"{np.median(strain):.2f}", f"{max(sspent):.3g}"]
            c_sgd.append((eps, float(np.median(sacc))))
        elif torch is not None:
            row += ["–", "–", "–"]
        rows.append(row)
    header = ["ε", "gram accuracy (δ = 0)", "gram range", f"gram accuracy (δ = {delta_sgd:g})", "gram fit s",
              "gram predict s"]
    if torch is not None:
        header += ["DP-SGD accuracy", "DP-SGD train s", "DP-SGD ε spent"]
    table(header, rows)
    series = [("gram, δ = 0", c_gram, False), (f"gram, δ = {delta_sgd:g}", c_gram_g, False)]
    if c_sgd:
        series.append((f"DP-SGD (Opacus), δ = {delta_sgd:g}", c_sgd, False))
    lo = min(a.eps)
    series.append(("non-private avg. similarity", [(lo, acc_np), (max(a.eps), acc_np)], True))
    series.append(("non-private logistic", [(lo, acc_lr), (max(a.eps), acc_lr)], True))
    if a.scale:
        series += classify_scale(a, Xtr, ytr, Xte, yte, sigma)
    svg_plot(os.path.join(a.outdir, "private_classify.svg"),
             f"DP classification on digits ({len(Xtr)} train, {len(Xte)} test)", "ε", "test accuracy",
             series, logx=True, logy=False, ylim=(0.0, 1.0))


def classify_scale(a, Xtr, ytr, Xte, yte, sigma):
    """The classifier's accuracy as the private set grows: the noise of a class average falls as
    1/(ε n_class), so digits' 135 rows per class are far below what the method needs. Larger sets
    are drawn from the training rows by a smoothed bootstrap (each row repeated at random plus
    N(0, 0.05²) per pixel, clipped to the box): a utility experiment only, since repeated images are
    not independent people."""
    print(f"\n### The classifier against the size of the private set (smoothed bootstrap of the training rows; "
          f"median over {a.scale_seeds} seeds; δ = 0 / 1e-5)\n", flush=True)
    rng = np.random.default_rng(5)
    rows, series = [], []
    for mult in a.scale:
        idx = rng.integers(0, len(Xtr), mult * len(Xtr))
        Xb = np.clip(Xtr[idx] + 0.05 * rng.standard_normal((len(idx), Xtr.shape[1])), -1, 1)
        yb = ytr[idx]
        row, pts = [len(Xb)], []
        for eps in a.eps + [HUGE_EPS]:
            cell = []
            for delta in ((0.0, 1e-5) if eps != HUGE_EPS else (0.0,)):
                accs = [gram.PrivateSimilarityClassifier(kernel="gaussian", epsilon=eps, delta=delta, bandwidth=sigma,
                                                         domain_radius=8.0, random_state=4000 + seed)
                        .fit(Xb, yb).score(Xte, yte) for seed in range(a.scale_seeds)]
                cell.append(f"{np.median(accs):.3f}")
                if delta == 0 and eps != HUGE_EPS:
                    pts.append((eps, float(np.median(accs))))
            row.append(" / ".join(cell))
        rows.append(row)
        series.append((f"gram, δ = 0, n = {len(Xb)} (bootstrap)", pts, False))
    table(["n (private rows)"] + [f"ε = {e:g}" for e in a.eps] + ["ε = 1e9"], rows)
    return series


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["error", "time", "classify", "all"], default="all")
    ap.add_argument("--eps", default="0.1,0.3,1,3,10")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--classify-seeds", type=int, default=10)
    ap.add_argument("--queries", type=int, default=300, help="public digits rows used as queries")
    ap.add_argument("--jl-dims", default="16")
    ap.add_argument("--l1-levels", default="4,6,8,10,12,14")
    ap.add_argument("--dims", default="16,32,64,128,256,512,1024")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--time-n", type=int, default=2000)
    ap.add_argument("--time-m", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--scale", default="10,100", help="classify: bootstrap multiples of the training set")
    ap.add_argument("--scale-seeds", type=int, default=5)
    ap.add_argument("--no-dpsgd", action="store_true")
    ap.add_argument("--outdir", default="docs/img")
    ap.add_argument("--quick", action="store_true", help="2 seeds, 3 ε, 3 dimensions, 3 repetitions")
    a = ap.parse_args()
    a.eps = [float(e) for e in a.eps.split(",")]
    a.jl_dims = [int(k) for k in a.jl_dims.split(",") if k]
    a.l1_levels = [int(k) for k in a.l1_levels.split(",") if k]
    a.dims = [int(k) for k in a.dims.split(",")]
    a.scale = [int(k) for k in a.scale.split(",") if k]
    if a.quick:
        a.seeds, a.classify_seeds, a.reps, a.epochs = 2, 2, 3, 10
        a.eps = [0.1, 1.0, 10.0]
        a.dims = [16, 128, 1024]
        a.l1_levels = [4, 10, 14]
        a.scale, a.scale_seeds = [10], 2
    import scipy
    import sklearn
    print("# " + " ".join(["PYTHONPATH=" + os.environ.get("PYTHONPATH", ""), "python3"] + sys.argv))
    print(f"# gram {gram.library_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"scikit-learn {sklearn.__version__}; {os.cpu_count()} CPUs", flush=True)
    X, y = digits()
    if a.part in ("error", "all"):
        Xp, Yq = split_public(X, a.queries)
        error_part(a, Xp, Yq, median_distance(Yq))
    if a.part in ("time", "all"):
        time_part(a)
    if a.part in ("classify", "all"):
        classify_part(a, X, y)


if __name__ == "__main__":
    main()
