"""gram.kernel_sum(..., method='grid') (src/approx/grid.c; docs/approx.md, "Grid") against exact
sums computed here: NumPy's own pairwise sum and scikit-learn's KernelDensity (its exact tree,
rtol=0) on real data bundled with scikit-learn (the iris measurements) and R's faithful (data/)."""
import os

import numpy as np
import pytest

import gram

sklearn_neighbors = pytest.importorskip("sklearn.neighbors")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data")


def naive_sum(X, Y, w, h):
    d2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    return np.exp(-0.5 * d2 / h**2) @ w


@pytest.mark.parametrize("rtol", [1e-3, 1e-6, 1e-8])
def test_faithful_against_numpy(rtol):
    X = np.loadtxt(os.path.join(DATA, "faithful.csv"), delimiter=",", skiprows=1)
    X = (X - X.mean(0)) / X.std(0)
    w = np.full(len(X), 1.0 / len(X))
    h = 0.25
    out, info = gram.kernel_sum(X, X, w, kernel=f"gaussian({h})", rtol=rtol, method="grid", return_info=True)
    exact = naive_sum(X, X, w, h)
    assert info["method"] == "grid"
    assert np.all(np.abs(out - exact) <= rtol * np.abs(exact) * (1 + 1e-9) + 1e-15 * exact.max())


@pytest.mark.parametrize("rtol", [1e-4, 1e-6])
def test_iris_against_sklearn_kde(rtol):
    X = sklearn_datasets.load_iris().data[:, :3]
    h = 0.4
    kde = sklearn_neighbors.KernelDensity(kernel="gaussian", bandwidth=h).fit(X)
    dens = np.exp(kde.score_samples(X))  # exact: rtol = atol = 0
    # scikit-learn's density is the mean kernel sum over the normaliser (2πh²)^(D/2)
    norm = (2 * np.pi * h * h) ** (X.shape[1] / 2)
    out = gram.kernel_sum(X, X, np.full(len(X), 1.0 / len(X)), kernel=f"gaussian({h})", rtol=rtol, method="grid")
    assert np.all(np.abs(out / norm - dens) <= (rtol + 1e-12) * dens)


def test_grid_refuses_other_kernels():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="only a single gaussian"):
        gram.kernel_sum(X, X, kernel="laplacian(1)", rtol=1e-3, method="grid")
