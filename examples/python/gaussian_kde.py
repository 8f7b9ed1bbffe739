#!/usr/bin/env python3
"""gram.gaussian_kde: scipy.stats.gaussian_kde computed by libgram.

    python3 examples/python/gaussian_kde.py [--quick]

Fits a weighted 3-D Gaussian KDE, evaluates it at many points on all cores, shows that logpdf
stays exact far from the data (where every kernel value underflows and pdf is 0), resamples it,
and, when SciPy is installed, compares values and times with scipy.stats.gaussian_kde.
"""
import sys
import time

import numpy as np

import gram


def main():
    quick = "--quick" in sys.argv[1:]
    n = 2_000 if quick else 50_000
    rng = np.random.default_rng(0)
    # A mixture of two correlated Gaussians in 3-D, in SciPy's layout: (d, n).
    A = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.2, -0.3, 0.5]])
    data = np.concatenate([A @ rng.normal(size=(3, n // 2)),
                           A @ rng.normal(size=(3, n - n // 2)) + [[3.0], [1.0], [-2.0]]], axis=1)
    weights = rng.random(n)

    kde = gram.gaussian_kde(data, bw_method="silverman", weights=weights)
    print(f"d = {kde.d}, n = {kde.n}, neff = {kde.neff:.1f}, factor = {kde.factor:.4f}")
    points = data[:, : n // 2] + 0.1
    t = time.perf_counter()
    logp = kde.logpdf(points)
    t_gram = time.perf_counter() - t
    print(f"logpdf at {points.shape[1]} points: {t_gram:.3f} s; mean log-density {logp.mean():.4f}")

    far = np.array([[40.0], [-30.0], [25.0]])
    print(f"far from the data: pdf = {kde.pdf(far)[0]:.3g}, logpdf = {kde.logpdf(far)[0]:.4f} (exact)")
    print(f"P(x0 in [-1, 1]) for the first marginal: {kde.marginal(0).integrate_box_1d(-1, 1):.4f}")

    S = kde.resample(5 if quick else 100_000, seed=1)
    print(f"resample: shape {S.shape}, mean {np.round(S.mean(1), 3)}")

    try:
        from scipy import stats
    except ImportError:
        print("(SciPy is not installed: no comparison)")
        return
    ref_kde = stats.gaussian_kde(data, bw_method="silverman", weights=weights)
    sub = points[:, : min(points.shape[1], 2_000)]
    t = time.perf_counter()
    ref = ref_kde.logpdf(sub)
    t_ref = (time.perf_counter() - t) * points.shape[1] / sub.shape[1]
    err = np.max(np.abs(kde.logpdf(sub) - ref) / np.abs(ref))
    print(f"SciPy agrees: max relative difference {err:.2e}; SciPy would take about {t_ref:.2f} s "
          f"for all points (timed on {sub.shape[1]}), {t_ref / t_gram:.1f}x gram's time")
    print(f"SciPy's logpdf far away: {ref_kde.logpdf(far)[0]:.4f}")


if __name__ == "__main__":
    main()
