#!/usr/bin/env python3
"""gram's feature maps against scikit-learn's, and the approximate kernel sum through features
against gram's exact sum; one run, the same inputs, alternating repetitions, medians.

1. transform: gram.RBFSampler vs sklearn.kernel_approximation.RBFSampler, gram.Nystroem vs
   Nystroem (rbf; fitted once each, only transform timed) and gram.PolynomialCountSketch vs
   PolynomialCountSketch (degree 2), in float64 and float32 (scikit-learn keeps float32 for
   RBFSampler; its Nystroem and count sketch compute in float64). Each row also prints a checksum
   of both outputs' Gram matrices on the first 200 rows (‖ΦΦᵀ‖_F: the two maps draw different
   frequencies, so only statistically equal figures are expected, never equal bits).
2. sum: out_i = Σ_j k(y_i, x_j) w_j at N = M (default 10⁶) on real-ish data: the 8 leading
   principal components of scikit-learn's digits, standardised, resampled with replacement to N
   points plus a small Gaussian jitter (a smoothed bootstrap), weights uniform on [0, 1), kernel
   rbf(lengthscale=4), about the median distance (--sum-lengthscale). Exact: gram.kernel_sum timed
   on a sample of m queries (default 20000) and scaled by M/m (its cost is linear in M). Through
   features: gram.RandomFeatures(method).kernel_sum on all M queries at R = 2^6 .. --sum-rmax, its
   relative error measured against the exact sum on the same m queries (the library's own estimate
   beside it). Prints the crossover R (where the feature sum costs as much as the exact one) and
   the speed-up at 1e-2 relative error.

    PYTHONPATH=/tmp/gram-dev-NAME python3 bench/bench_features.py [--part transform|sum|all]
        [--n 20000] [--d 64] [--r 2048] [--reps 5] [--sum-n 1000000] [--sum-m 20000]
        [--methods rff,orf] [--sum-lengthscale 4] [--sum-rmax 8192] [--threads T]
"""
import argparse
import math
import time

import numpy as np

import gram
from gram import _lib
from sklearn import kernel_approximation as ska
from sklearn.datasets import load_digits


def timed(fn, reps):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def alternate(fns, reps):
    """Median wall and process CPU times of each fn, called in turn rep by rep (so a load change
    hits all alike). CPU time (all threads of the process, page faults included) is the work
    done: on a machine shared with other jobs the wall time mostly measures the waiting."""
    times, cpus = [[] for _ in fns], [[] for _ in fns]
    outs = [None] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            c0 = time.process_time()
            t, outs[i] = timed(fn, 1)
            cpus[i].append(time.process_time() - c0)
            times[i].append(t)
    return [float(np.median(t)) for t in times], [float(np.median(c)) for c in cpus], outs


def fro_check(P):
    Q = np.asarray(P[:200], dtype=np.float64)
    return float(np.linalg.norm(Q @ Q.T))


def transform_part(a):
    rng = np.random.default_rng(0)
    X64 = rng.uniform(-0.5, 0.5, size=(a.n, a.d))
    gamma = 1.0 / (2 * 8.0 ** 2)  # gram's rbf(lengthscale=8), bench_features.c's default
    print(f"## transform: N = {a.n}, D = {a.d}, R = {a.r}, threads {a.threads or 'default'}, median of {a.reps} "
          "alternating runs")
    print(f"{'estimator':24s} {'dtype':7s} {'gram s':>9s} {'sklearn s':>10s} {'speed-up':>9s} {'gram cpu':>9s} "
          f"{'skl cpu':>9s} {'cpu ratio':>9s}  |PP'|_F on 200 rows (gram, sklearn)")
    have_nys = hasattr(_lib.lib, "gram_features_nystrom")
    rows = [("RBFSampler", lambda: gram.RBFSampler(gamma=gamma, n_components=a.r, random_state=0),
             lambda: ska.RBFSampler(gamma=gamma, n_components=a.r, random_state=0)),
            ("PolynomialCountSketch",
             lambda: gram.PolynomialCountSketch(gamma=1.0 / a.d, degree=2, coef0=1, n_components=a.r,
                                                random_state=0),
             lambda: ska.PolynomialCountSketch(gamma=1.0 / a.d, degree=2, coef0=1, n_components=a.r, random_state=0))]
    if have_nys:
        rows.insert(1, ("Nystroem", lambda: gram.Nystroem(kernel="rbf", gamma=gamma, n_components=min(a.r, a.n),
                                                          random_state=0),
                        lambda: ska.Nystroem(kernel="rbf", gamma=gamma, n_components=min(a.r, a.n), random_state=0)))
    for name, mk_g, mk_s in rows:
        for dt in (np.float64, np.float32):
            X = X64.astype(dt)
            g, s = mk_g().fit(X), mk_s().fit(X)
            (tg, ts), (cg, cs), (pg, ps) = alternate([lambda: g.transform(X), lambda: s.transform(X)], a.reps)
            print(f"{name:24s} {np.dtype(dt).name:7s} {tg:9.4f} {ts:10.4f} {ts / tg:8.1f}x {cg:9.4f} {cs:9.4f} "
                  f"{cs / cg:8.1f}x  ({fro_check(pg):.6g}, {fro_check(ps):.6g})", flush=True)
    if not have_nys:
        print("Nystroem                 (not timed: the loaded libgram has no gram_features_nystrom yet)")


def sum_data(n, seed=0):
    X = load_digits().data.astype(np.float64)
    X = X - X.mean(axis=0)
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    Z = X @ Vt[:8].T
    Z /= Z.std(axis=0)
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(Z[rng.integers(0, len(Z), n)] + 0.1 * rng.standard_normal((n, 8)))


def sum_part(a):
    N = M = a.sum_n
    X, Y = sum_data(N, 1), sum_data(M, 2)
    w = np.random.default_rng(3).uniform(size=N)
    spec = f"rbf(lengthscale={a.sum_lengthscale!r})"
    m = min(a.sum_m, M)
    Ys = Y[:m]
    print(f"## sum: N = M = {N}, D = 8 (digits' principal components, smoothed bootstrap), {spec}, "
          f"threads {a.threads or 'default'}")
    t_ex, exact = timed(lambda: gram.kernel_sum(X, Ys, weights=w, kernel=spec, threads=a.threads), 1)
    t_exact = t_ex * M / m
    print(f"exact (gram.kernel_sum): {t_ex:.3f} s for {m} queries -> {t_exact:.2f} s for {M} "
          f"({N * m / t_ex / 1e9:.2f} Gpairs/s)")
    print(f"{'method':8s} {'R':>6s} {'time s':>9s} {'rel err':>10s} {'estimate':>10s} {'speed-up':>9s}")
    for method in a.methods.split(","):
        rows = []
        for p in range(6, int(math.log2(a.sum_rmax)) + 1):
            R = 2 ** p
            rf = gram.RandomFeatures(kernel=spec, method=method, n_components=R, random_state=0,
                                     n_jobs=a.threads).fit(X[:10])
            t, (out, est) = timed(lambda: rf.kernel_sum(X, Y, weights=w, return_error=True), 1)
            err = float(np.linalg.norm(out[:m] - exact) / np.linalg.norm(exact))
            rows.append((R, t, err))
            print(f"{method:8s} {R:6d} {t:9.3f} {err:10.3g} {float(est[0]):10.3g} {t_exact / t:8.1f}x", flush=True)
        cross = [R for R, t, _ in rows if t >= t_exact]
        ok = [(R, t) for R, t, e in rows if e <= 1e-2]
        print(f"{method}: crossover R (feature sum as slow as the exact one): "
              f"{'beyond ' + str(rows[-1][0]) if not cross else cross[0]}; "
              + (f"1e-2 relative error first at R = {ok[0][0]}: {t_exact / ok[0][1]:.1f}x faster than exact"
                 if ok else f"1e-2 relative error not reached by R = {rows[-1][0]}"), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["transform", "sum", "all"], default="all")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--r", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sum-n", type=int, default=1000000)
    ap.add_argument("--sum-m", type=int, default=20000)
    ap.add_argument("--methods", default="rff,orf")
    ap.add_argument("--sum-lengthscale", type=float, default=4.0)
    ap.add_argument("--sum-rmax", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    import sklearn
    print(f"# gram {gram.library_version()}, scikit-learn {sklearn.__version__}, numpy {np.__version__}", flush=True)
    if a.part in ("transform", "all"):
        transform_part(a)
    if a.part in ("sum", "all"):
        sum_part(a)


if __name__ == "__main__":
    main()
