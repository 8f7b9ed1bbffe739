"""Sampling with DEANN's split through gram.kernel_sum, on scikit-learn's digits (64 dimensions).

The digits (1797 images, pixels 0-16) are resampled with N(0, 1) noise per pixel into N = 8000
points, queried at themselves (M = N): with N ≥ 4096, M large enough for the index and the
method's own choice of near set (near_neighbours = 0 in C), sampling runs the split. On data this
small the split saves little (docs/approx.md: 87-100% of the pairs here); this test holds its
guarantee on real 64-dimensional data, not its speed. The exact engine is the reference. Each
query's bound fails with probability ≤ delta; the count of queries whose error exceeds their bound
(or the tolerance) is held to the binomial quantile whose upper tail at p = delta is ≤ 1e-4 (the
test's false-alarm rate for independent queries; the queries of one call share an index and a
sample, so the indicators are dependent and the quantile (about 20 misses at delta = 1e-3 and
M = 8000, against 8 expected) is a yardstick, not an exact level).
"""
import numpy as np
import pytest

import gram

sklearn = pytest.importorskip("sklearn.datasets")
scipy_stats = pytest.importorskip("scipy.stats")


def _digits_like(n, m, seed=0):
    d = sklearn.load_digits().data.astype(np.float64)
    rng = np.random.default_rng(seed)

    def draw(k):
        return np.clip(d[rng.integers(0, len(d), k)] + rng.normal(0.0, 1.0, (k, 64)), 0.0, 16.0)

    return draw(n), draw(m)


@pytest.mark.parametrize("bandwidth", [2.0, 3.0])
def test_digits_split_meets_tolerance(bandwidth):
    X, _ = _digits_like(8000, 1)
    Y = X
    kernel = f"gaussian({bandwidth})"
    exact = gram.kernel_sum(X, Y, kernel=kernel, threads=1)
    delta, rtol = 1e-3, 0.1
    out, info = gram.kernel_sum(X, Y, kernel=kernel, rtol=rtol, method="sampling", delta=delta,
                                random_state=3, return_info=True, threads=1)
    assert info["method"] == "sampling"
    err = info["error_bound"]
    diff = np.abs(out - exact)
    # a few ulps of the sum beyond the bound: the engine's rounding of both sums
    slack = 1e-10 * np.abs(exact)
    limit = scipy_stats.binom.ppf(1 - 1e-4, len(Y), delta)
    assert np.count_nonzero(diff > err + slack) <= limit
    assert np.count_nonzero(diff > rtol * np.abs(exact) + slack) <= limit
    assert np.all(err <= rtol * np.abs(exact) * (1 + 1e-9) + 1e-300) or \
        np.count_nonzero(err > rtol * np.abs(exact)) <= limit
    assert 0 < info["kernel_evaluations"] <= len(X) * len(Y)
    # some values must carry a non-zero bound: the test sees values that were not summed exactly
    assert np.count_nonzero(err > 0) > 0
