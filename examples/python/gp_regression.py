#!/usr/bin/env python3
"""Gaussian-process regression and kernel ridge regression with gram, on a noisy curve.

    python3 examples/python/gp_regression.py [--quick]

gram.GaussianProcessRegressor and gram.KernelRidge are scikit-learn's estimators with the dense
algebra, the likelihood gradient and the hyperparameter search (L-BFGS-B) in C. When
scikit-learn is installed the same fits are run with it and compared.
"""
import sys
import time

import numpy as np

import gram


def curve(x):
    return np.sin(3 * x) + 0.3 * x


def main():
    quick = "--quick" in sys.argv[1:]
    n = 200 if quick else 800
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(n, 1))
    y = curve(X[:, 0]) + 0.2 * rng.normal(size=n)
    Xq = np.linspace(-4, 4, 9)[:, None]

    # A GP whose amplitude, length scale and noise level are learned (bounds as scikit-learn's).
    kernel = gram.ConstantKernel(1.0) * gram.RBF(1.0, length_scale_bounds=(1e-2, 1e2)) \
        + gram.WhiteKernel(0.1, noise_level_bounds=(1e-4, 1.0))
    t = time.perf_counter()
    gp = gram.GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2,
                                       random_state=0).fit(X, y)
    dt = time.perf_counter() - t
    print(f"GP on {n} points, learned in {dt:.3f} s:\n  kernel_ = {gp.kernel_}")
    print(f"  theta = {np.round(gp.kernel_.theta, 4)} (scikit-learn's order), "
          f"log marginal likelihood {gp.log_marginal_likelihood_value_:.4f}")
    mean, std = gp.predict(Xq, return_std=True)
    print("      x   truth    mean     std")
    for x, m, s in zip(Xq[:, 0], mean, std):
        print(f"  {x:5.1f} {curve(x):7.3f} {m:7.3f} {s:7.3f}")
    draws = gp.sample_y(Xq, n_samples=1000, random_state=1)
    print(f"  1000 posterior draws: largest |mean - predicted| / std = "
          f"{np.max(np.abs(draws.mean(1) - mean) / std):.3f}")

    # Kernel ridge with scikit-learn's 'rbf' parameterisation.
    krr = gram.KernelRidge(alpha=0.1, kernel="rbf", gamma=2.0).fit(X, y)
    print(f"KernelRidge(rbf): prediction at x = 0: {krr.predict([[0.0]])[0]:.4f} (truth {curve(0.0):.4f})")

    try:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process import kernels as sk
        from sklearn.kernel_ridge import KernelRidge
    except ImportError:
        print("scikit-learn is not installed: no comparison")
        return
    sk_kernel = sk.ConstantKernel(1.0) * sk.RBF(1.0, (1e-2, 1e2)) + sk.WhiteKernel(0.1, (1e-4, 1.0))
    t = time.perf_counter()
    ref = GaussianProcessRegressor(sk_kernel, normalize_y=True, n_restarts_optimizer=2, random_state=0).fit(X, y)
    dt_ref = time.perf_counter() - t
    print(f"scikit-learn: {dt_ref:.3f} s, kernel_ = {ref.kernel_}, "
          f"log marginal likelihood {ref.log_marginal_likelihood_value_:.4f}")
    # The same likelihood function: scikit-learn's value at gram's optimum.
    print(f"  scikit-learn's likelihood at gram's theta: {ref.log_marginal_likelihood(gp.kernel_.theta):.4f}")
    m_ref = KernelRidge(alpha=0.1, kernel="rbf", gamma=2.0).fit(X, y).predict(Xq)
    print(f"  KernelRidge: max |gram - scikit-learn| = {np.max(np.abs(krr.predict(Xq) - m_ref)):.1e}")


if __name__ == "__main__":
    main()
