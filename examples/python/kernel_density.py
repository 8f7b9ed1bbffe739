#!/usr/bin/env python3
"""Kernel density estimation of the Old Faithful eruptions with gram.KernelDensity.

    python3 examples/python/kernel_density.py [--quick]

gram.KernelDensity is scikit-learn's KernelDensity, computed exactly by libgram. The script
standardises data/faithful.csv (eruption time and waiting time, 272 × 2), chooses the bandwidth by
leave-one-out likelihood (bandwidth='cv-ml', a gram rule), prints the densest eruptions, the
held-out log-likelihood of each kernel, and draws samples from the estimate. When scikit-learn is
installed it checks the densities against sklearn.neighbors.KernelDensity.
"""
import pathlib
import sys
import time

import numpy as np

import gram

DATA = pathlib.Path(__file__).resolve().parents[2] / "data" / "faithful.csv"


def main():
    quick = "--quick" in sys.argv[1:]
    raw = np.loadtxt(DATA, delimiter=",", skiprows=1)  # columns: eruptions (min), waiting (min)
    mean, sd = raw.mean(0), raw.std(0)
    X = (raw - mean) / sd
    print(f"Old Faithful: {X.shape[0]} eruptions × {X.shape[1]} (eruption time, waiting time), standardised")

    kde = gram.KernelDensity(bandwidth="cv-ml").fit(X)
    h = kde.bandwidth_
    print(f"bandwidth chosen by leave-one-out likelihood: h = {h:.4f} (standardised units)")
    logd = kde.score_samples(X)
    # Density in the original units: divide by the standard deviations (the Jacobian).
    logd_orig = logd - np.log(sd).sum()
    print("densest eruptions (eruption min, waiting min, density per min²):")
    for i in np.argsort(-logd_orig)[:5]:
        print(f"  {raw[i, 0]:6.3f} {raw[i, 1]:6.1f}   {np.exp(logd_orig[i]):.5f}")

    # Held-out log-likelihood per kernel: fit on even rows, score odd rows.
    train, test = X[::2], X[1::2]
    print("held-out log-likelihood (fit on half, score the other half), h = cv-ml on the half:")
    for kernel in ["gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"]:
        k = gram.KernelDensity(kernel=kernel, bandwidth="cv-ml").fit(train)
        print(f"  {kernel:13s} h = {k.bandwidth_:.3f}   {k.score(test):9.2f}")

    S = kde.sample(5 if quick else 10000, random_state=0) * sd + mean
    print(f"{len(S)} samples drawn; mean eruption {S[:, 0].mean():.2f} min, mean wait {S[:, 1].mean():.1f} min "
          f"(data: {raw[:, 0].mean():.2f}, {raw[:, 1].mean():.1f})")

    try:
        from sklearn.neighbors import KernelDensity
    except ImportError:
        print("(scikit-learn is not installed: no comparison)")
        return
    t = time.perf_counter()
    ref = KernelDensity(bandwidth=h).fit(X).score_samples(X)
    t_ref = time.perf_counter() - t
    t = time.perf_counter()
    ours = gram.KernelDensity(bandwidth=h).fit(X).score_samples(X)
    t_ours = time.perf_counter() - t
    err = np.max(np.abs(ours - ref) / np.abs(ref))
    print(f"scikit-learn agrees: max relative difference {err:.2e} (gram {t_ours * 1e3:.2f} ms, "
          f"scikit-learn {t_ref * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
