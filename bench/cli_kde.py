#!/usr/bin/env python3
"""`gram kde` (the command, end to end: read .npy, fit, evaluate, write .npy) against
scipy.stats.gaussian_kde and sklearn.neighbors.KernelDensity on the same data and bandwidth, in
one run:

    python3 bench/cli_kde.py [--n 100000] [--d 3] [--reps 3] [--gram build/cli/gram]

Two cases, each with the anchor's own semantics: `--bandwidth-matrix covariance --bandwidth scott`
against gaussian_kde's default (Scott factor × data covariance), and `--bandwidth 0.5` (isotropic)
against KernelDensity(bandwidth=0.5, rtol=0).
Data and queries are the data themselves (N = M), standard normal from a fixed seed. gram runs on
all cores, the anchors on one. An anchor whose full run would take over 60 s runs on the first
queries only and its time is scaled; the table says so. Agreement: the largest relative
difference of the log-densities on the queries both computed. No timing is asserted anywhere.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy import stats
from sklearn.neighbors import KernelDensity

H = 0.5


def timed(f):
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def scipy_logpdf(X, Q):
    return stats.gaussian_kde(X.T).logpdf(Q.T)


def sklearn_logpdf(X, Q):
    return KernelDensity(bandwidth=H, kernel="gaussian", rtol=0, atol=0).fit(X).score_samples(Q)


def anchor(f, X, M):
    k = min(M, 300)
    t, _ = timed(lambda: f(X, X[:k]))
    if t / k * M <= 60:
        k = M
    else:
        k = min(M, max(k, int(20 / (t / k))))
    t, out = timed(lambda: f(X, X[:k]))
    return t * M / k, out, k


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--d", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--gram", default=os.path.join(os.path.dirname(__file__), "..", "build", "cli", "gram"))
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((a.n, a.d))
    cases = (("scipy gaussian_kde", scipy_logpdf, ["--bandwidth-matrix", "covariance", "--bandwidth", "scott"]),
             ("sklearn KernelDensity", sklearn_logpdf, ["--bandwidth", str(H)]))
    print(f"N=M={a.n} D={a.d} gaussian; gram: the whole `gram kde` command on all cores, median of {a.reps}; "
          "anchors: one thread")
    print(f"{'anchor':22s} {'gram s':>8s} {'spread':>17s} {'anchor s':>9s} {'ratio':>7s} {'pairs/s':>10s} "
          f"{'max rel diff':>12s}  note")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        xp, op = os.path.join(tmp, "x.npy"), os.path.join(tmp, "out.npy")
        np.save(xp, X)
        for name, f, opts in cases:
            cmd = [a.gram, "kde", xp, *opts, "--log", "-o", op, "--quiet"]
            times = []
            for _ in range(a.reps):
                t, r = timed(lambda: subprocess.run(cmd, capture_output=True, text=True))
                if r.returncode:
                    sys.exit(f"gram kde failed: {r.stderr}")
                times.append(t)
            g = np.load(op).ravel()
            tg = statistics.median(times)
            t, out, k = anchor(f, X, a.n)
            diff = float(np.max(np.abs(g[:k] - out) / np.abs(out)))
            worst = max(worst, diff)
            note = f"anchor on {k}/{a.n} queries, time scaled" if k < a.n else ""
            print(f"{name:22s} {tg:8.3f} {min(times):7.3f}..{max(times):7.3f} {t:9.2f} {t / tg:6.1f}x "
                  f"{a.n * a.n / tg:10.3e} {diff:12.2e}  {note}")
    if worst > 1e-10:
        sys.exit("gram and an anchor disagree beyond 1e-10")


if __name__ == "__main__":
    main()
