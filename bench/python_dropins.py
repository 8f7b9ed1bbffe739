#!/usr/bin/env python3
"""The Python drop-ins against their anchors, in one run, on the same inputs:

    gram.gaussian_kde(...).logpdf      vs scipy.stats.gaussian_kde(...).logpdf
    gram.KernelDensity(...).score_samples vs sklearn.neighbors.KernelDensity(...).score_samples

    python3 bench/python_dropins.py [--n 100000] [--m 100000] [--d 3] [--reps 3] [--anchor-budget 20]

Needs the installed package (python3 -m pip install .), SciPy and scikit-learn. Data and queries
are standard normal from a fixed seed. gram runs on all cores, the anchors on one (that is how they
are written). An anchor whose full run would take more than 60 s runs on the first queries only
(sized to about --anchor-budget seconds) and its time is scaled to all M queries; the table says
so. Agreement is the maximal relative difference of the log-densities on the queries both
computed. Where that exceeds 1e-10, both are compared on the worst queries with an exact NumPy
reference (log-sum-exp over all points), to say which one is off; the run fails only if gram is.
Times are medians over --reps runs (anchors: one run). No timing is asserted anywhere.
"""
import argparse
import os
import statistics
import time

import numpy as np
from scipy import linalg, stats
from scipy.special import logsumexp
from sklearn.neighbors import KernelDensity as SkKDE

import gram

FULL_ANCHOR_LIMIT_S = 60.0


def timed(f, reps):
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def anchor(f_on, M, budget):
    """Times f_on(k) on the first k queries: all of them if that is expected to take <= 60 s."""
    k = min(M, 200)
    t, _ = timed(lambda: f_on(k), 1)
    per_query = max(t / k, 1e-9)
    if per_query * M <= FULL_ANCHOR_LIMIT_S:
        k = M
    else:
        k = max(k, min(M, int(budget / per_query)))
    t, out = timed(lambda: f_on(k), 1)
    return t * M / k, out, k


def exact_gaussian_kde(kde, Yq):
    """log f at the rows of Yq for a scipy.stats.gaussian_kde, brute force in NumPy."""
    Z = linalg.solve_triangular(kde.cho_cov, kde.dataset, lower=True).T
    Zq = linalg.solve_triangular(kde.cho_cov, Yq.T, lower=True).T
    d2 = ((Zq[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
    return logsumexp(-d2 / 2 + np.log(kde.weights)[None, :], axis=1) - kde.log_det / 2


def exact_isotropic(X, Yq, h):
    d2 = ((Yq[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    D = X.shape[1]
    return logsumexp(-d2 / (2 * h * h), axis=1) - np.log(len(X)) - D / 2 * np.log(2 * np.pi * h * h)


def agreement(got, want, exact_on):
    """Max relative difference to the anchor; where above 1e-10, both against the exact value on
    the 20 worst queries."""
    rel = np.abs(got - want) / np.abs(want)
    worst = np.argsort(rel)[-20:]
    if rel.max() <= 1e-10:
        return rel.max(), None, None
    exact = exact_on(worst)
    return (rel.max(), np.max(np.abs(got[worst] - exact) / np.abs(exact)),
            np.max(np.abs(want[worst] - exact) / np.abs(exact)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--m", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--anchor-budget", type=float, default=20.0)
    a = ap.parse_args()
    rng = np.random.default_rng(20240601)
    X = rng.normal(size=(a.n, a.d))
    Y = rng.normal(size=(a.m, a.d))
    print(f"N = {a.n}, M = {a.m}, D = {a.d}; gram {gram.__version__} on {os.cpu_count()} cores "
          f"(load average {os.getloadavg()[0]:.2f}); anchors single-threaded")
    rows = []

    # scipy.stats.gaussian_kde: dataset (d, n), points (d, m)
    g = gram.gaussian_kde(X.T)
    s = stats.gaussian_kde(X.T)
    t_gram, got = timed(lambda: g.logpdf(Y.T), a.reps)
    t_ref, want, k = anchor(lambda k: s.logpdf(Y[:k].T), a.m, a.anchor_budget)
    rows.append(("gaussian_kde.logpdf", t_gram, t_ref, k,
                 agreement(got[:k], want, lambda idx: exact_gaussian_kde(s, Y[idx]))))

    # sklearn.neighbors.KernelDensity (exact: atol = rtol = 0, its defaults)
    h = float(g.factor * X.std())
    kd = gram.KernelDensity(bandwidth=h).fit(X)
    sk = SkKDE(bandwidth=h).fit(X)
    t_gram, got = timed(lambda: kd.score_samples(Y), a.reps)
    t_ref, want, k = anchor(lambda k: sk.score_samples(Y[:k]), a.m, a.anchor_budget)
    rows.append(("KernelDensity.score_samples", t_gram, t_ref, k,
                 agreement(got[:k], want, lambda idx: exact_isotropic(X, Y[idx], h))))

    print(f"{'method':30s} {'gram s':>9s} {'anchor s':>10s} {'ratio':>8s} {'max rel diff':>13s}  anchor timed on")
    for name, tg, tr, k, (err, _, _) in rows:
        note = "all queries" if k == a.m else f"{k} queries, scaled"
        print(f"{name:30s} {tg:9.3f} {tr:10.2f} {tr / tg:7.1f}x {err:13.2e}  {note}")
    for name, _, _, _, (err, g_err, a_err) in rows:
        if g_err is not None:
            print(f"{name}: on the 20 queries that differ most, relative error to the exact value: "
                  f"gram {g_err:.2e}, anchor {a_err:.2e}")
    print(f"gram pairs/s: {a.n * a.m / rows[0][1] / 1e9:.2f} G (gaussian_kde), "
          f"{a.n * a.m / rows[1][1] / 1e9:.2f} G (KernelDensity)")
    bad = [r[0] for r in rows if not (r[4][0] <= 1e-10 or r[4][1] <= 1e-10)]
    if bad:
        raise SystemExit(f"gram's results are off by more than 1e-10: {bad}")


if __name__ == "__main__":
    main()
