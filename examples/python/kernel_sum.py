#!/usr/bin/env python3
"""Kernel sums and Gram matrices with gram.kernel_sum, gram.pairwise_kernels and kernel objects.

    python3 examples/python/kernel_sum.py [--quick]

out[i] = Σ_j k(Y[i], X[j]) w[j] for data X (N points carrying weights w) and queries Y, exactly,
without forming the N×M kernel matrix. Kernels come from gram's classes (scikit-learn's names),
from spec strings, or from scikit-learn kernel objects.
"""
import sys
import time

import numpy as np

import gram


def main():
    quick = "--quick" in sys.argv[1:]
    N, M, D = (20_000, 2_000, 3) if quick else (200_000, 20_000, 3)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    Y = rng.normal(size=(M, D))
    w = rng.random(N)

    k = 2.0 * gram.Matern(length_scale=[0.5, 1.0, 2.0], nu=2.5) + gram.WhiteKernel(0.1)
    print(f"kernel {k!r}\n  spec: {k.spec}")
    t = time.perf_counter()
    s = k.sum(X, Y, w)
    dt = time.perf_counter() - t
    print(f"{N} x {M} kernel sum: {dt:.3f} s, {N * M / dt / 1e9:.2f} G pairs/s; out[:3] = {s[:3]}")

    # Several weight vectors at once (V = 4), and the same sum from a spec string.
    W = rng.random((N, 4))
    S = gram.kernel_sum(X, Y, W, kernel="2*matern52(lengthscale=[0.5,1,2])")
    print(f"2-D weights: out shape {S.shape}")

    # Log-space sums stay exact where every term underflows.
    far = Y[:3] + 50.0
    print(f"log-sum far from the data: {gram.kernel_sum(X, far, w, kernel=gram.RBF(0.2), log=True)}")

    # float32 in, float32 out: kernel values in float32, accumulation in float64.
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    t = time.perf_counter()
    s32 = gram.kernel_sum(X32, Y32, kernel="gaussian(0.7)")
    dt = time.perf_counter() - t
    s64 = gram.kernel_sum(X, Y, kernel="gaussian(0.7)")
    print(f"float32: {dt:.3f} s, max relative difference to float64 {np.max(np.abs(s32 - s64) / s64):.1e}")

    # A Fortran-ordered or transposed array is read in place: no copy.
    XF = np.asfortranarray(X)
    np.testing.assert_allclose(gram.kernel_sum(XF, Y[:10]), gram.kernel_sum(X, Y[:10]), rtol=1e-13)

    K = gram.pairwise_kernels(Y[:5], kernel=gram.RBF(1.0) + gram.WhiteKernel(0.5))
    print("Gram matrix of 5 points (RBF + white noise on the diagonal):")
    print(np.array2string(K, precision=3))

    try:
        from sklearn.gaussian_process.kernels import RBF, ExpSineSquared, WhiteKernel
    except ImportError:
        print("(scikit-learn is not installed: no comparison)")
        return
    sk = 1.5 * RBF(2.0) * ExpSineSquared(1.0, 3.0) + WhiteKernel(0.01)
    Xs = X[:2000]
    err = np.max(np.abs(gram.pairwise_kernels(Xs, kernel=sk) - sk(Xs)))
    print(f"scikit-learn kernel {sk} → gram {gram.kernels.as_kernel(sk).spec}\n  max |difference| {err:.1e}")


if __name__ == "__main__":
    main()
