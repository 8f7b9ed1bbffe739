"""gram.KernelDensity against sklearn.neighbors.KernelDensity, computed here.

Run after `python3 -m pip install .`: these tests import the installed package `gram`.

Accuracy: log-densities within 1e-10 relative (float64). Where gram says the density is exactly
0 (-inf; compact kernels, no data point within h), the test checks that no data point is within
h, and that scikit-learn's value is -inf or one of its tiny artefacts (log of a rounding residue,
about -36). scikit-learn's cosine-kernel normaliser is NaN or wrong for even D and loses about
1e-8 relative by D = 13 (gram's agrees with quadrature to 1e-15, see test_cosine_normaliser), so
the cosine kernel is compared with scikit-learn at odd D <= 7 and with a NumPy reference elsewhere.
"""
import math
import pickle
import re
import warnings

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gammaln, logsumexp
from sklearn import datasets
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity as SkKDE
from sklearn.utils.estimator_checks import check_estimator

import gram

KERNELS = ["gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"]
COMPACT = {"tophat", "epanechnikov", "linear", "cosine"}
RTOL = 1e-10


def real(name):
    X = getattr(datasets, f"load_{name}")().data
    return np.ascontiguousarray(X, dtype=np.float64)


def assert_same_kind(ref, got):
    """gram raises the builtin exception classes scikit-learn/SciPy raise (their own subclasses
    of ValueError/TypeError, like InvalidParameterError, are matched by what they subclass)."""
    for cls in (ValueError, TypeError, NotImplementedError, MemoryError, AttributeError, IndexError):
        assert isinstance(got, cls) == isinstance(ref, cls), (
            f"{cls.__name__}: reference raised {type(ref).__name__}({ref}); gram raised {type(got).__name__}({got})")


def compare_with_sklearn(X, Y, kernel, bandwidth, sample_weight=None):
    ours = gram.KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=sample_weight)
    ref = SkKDE(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=sample_weight)
    assert ours.bandwidth_ == ref.bandwidth_
    got, want = ours.score_samples(Y), ref.score_samples(Y)
    zero = got == -np.inf
    if zero.any():
        assert kernel in COMPACT
        h = float(ours.bandwidth_)
        Xp = X if sample_weight is None else X[np.asarray(sample_weight) > 0]
        d2 = ((Y[zero, None, :] - Xp[None, :, :]) ** 2).sum(-1)
        assert np.all(d2.min(axis=1) >= h * h * (1 - 1e-12)), "gram says 0 but a point is within h"
        assert np.all(want[zero] < -30), "scikit-learn has a density where gram has none"
        assert np.all(want[zero] < got[~zero].min(initial=0) - 10)
    assert np.all(np.isfinite(got[~zero]))
    err = np.abs(got[~zero] - want[~zero]) / np.maximum(np.abs(want[~zero]), 1e-300)
    assert err.max(initial=0) <= RTOL, f"{kernel}: max relative error {err.max():.3g}"
    return got


def cosine_reference(X, Y, h, sample_weight=None):
    """log of the cosine-kernel density, brute force, with the normaliser by quadrature."""
    N, D = X.shape
    r = np.sqrt(((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)) / h
    with np.errstate(divide="ignore", invalid="ignore"):
        logk = np.where(r < 1, np.log(np.cos(np.pi * r / 2)), -np.inf)
    w = np.ones(N) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    with np.errstate(divide="ignore"):
        s = logsumexp(logk + np.log(w / w.sum())[None, :], axis=1)
    I, _ = quad(lambda t: t ** (D - 1) * math.cos(math.pi * t / 2), 0, 1, epsabs=0, epsrel=1e-13, limit=200)
    log_norm = math.log(2) + D / 2 * math.log(math.pi) - gammaln(D / 2) + math.log(I) + D * math.log(h)
    return s - log_norm


# ---- parity: random data ---------------------------------------------------------------------


# scikit-learn's cosine normaliser is NaN or wrong for even D: those go to test_cosine_reference.
@pytest.mark.parametrize("kernel,D", [(k, D) for k in KERNELS for D in (1, 2, 3, 5, 8)
                                      if not (k == "cosine" and D % 2 == 0)])
def test_random_data(kernel, D):
    rng = np.random.default_rng(100 + D)
    X = rng.normal(size=(400, D))
    Y = rng.normal(size=(150, D)) * 1.2
    compare_with_sklearn(X, Y, kernel, 0.3 * math.sqrt(D) + 0.2)


@pytest.mark.parametrize("kernel", KERNELS)
def test_weighted(kernel):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 3))
    Y = rng.normal(size=(100, 3))
    w = rng.random(300)
    w[::7] = 0.0
    compare_with_sklearn(X, Y, kernel, 0.9, sample_weight=w)


@pytest.mark.parametrize("bandwidth", ["scott", "silverman"])
@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_bandwidth_rules_as_sklearn(bandwidth, kernel):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(250, 2)) * [1.0, 10.0]  # the rules ignore the scale, as scikit-learn's
    w = rng.random(250)
    got = compare_with_sklearn(X, X[:50], kernel, bandwidth, sample_weight=w)
    assert got.shape == (50,)
    n, d = X.shape
    expect = n ** (-1 / (d + 4)) if bandwidth == "scott" else (n * (d + 2) / 4) ** (-1 / (d + 4))
    assert gram.KernelDensity(bandwidth=bandwidth).fit(X).bandwidth_ == pytest.approx(expect, rel=1e-15)


# ---- parity: real data sets shipped with scikit-learn -------------------------------------------


@pytest.mark.parametrize("name", ["iris", "diabetes", "wine", "digits"])
@pytest.mark.parametrize("kernel", [k for k in KERNELS if k != "cosine"])
@pytest.mark.parametrize("scale", [0.3, 1.0])
def test_real_data(name, kernel, scale):
    X = real(name)
    h = scale * float(X.std()) * X.shape[1] ** 0.25
    compare_with_sklearn(X, X[::4], kernel, h)


@pytest.mark.parametrize("name", ["iris", "diabetes", "wine", "digits"])
def test_real_data_cosine_reference(name):
    X = real(name)
    h = float(X.std()) * X.shape[1] ** 0.25
    got = gram.KernelDensity(kernel="cosine", bandwidth=h).fit(X).score_samples(X[::4])
    want = cosine_reference(X, X[::4], h)
    np.testing.assert_allclose(got, want, rtol=RTOL)


@pytest.mark.parametrize("D", [1, 2, 3, 4, 7, 13, 64])
def test_cosine_reference(D):
    rng = np.random.default_rng(D)
    X = rng.normal(size=(200, D))
    Y = rng.normal(size=(40, D))
    h = 1.5 * math.sqrt(D)
    w = rng.random(200)
    got = gram.KernelDensity(kernel="cosine", bandwidth=h).fit(X, sample_weight=w).score_samples(Y)
    np.testing.assert_allclose(got, cosine_reference(X, Y, h, w), rtol=RTOL)


def test_cosine_normaliser_integrates_to_one():
    """In 2-D (where scikit-learn's cosine normaliser is wrong) the density integrates to 1."""
    X = np.array([[0.0, 0.0], [0.3, -0.2]])
    kde = gram.KernelDensity(kernel="cosine", bandwidth=0.5).fit(X)
    g = np.linspace(-1.0, 1.5, 801)
    xx, yy = np.meshgrid(g, g)
    f = np.exp(kde.score_samples(np.column_stack([xx.ravel(), yy.ravel()])))
    total = f.sum() * (g[1] - g[0]) ** 2
    assert total == pytest.approx(1.0, abs=2e-4)


# ---- gram's own rules -------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["isj", "cv-ml", "cv-ls"])
def test_gram_bandwidth_rules(rule):
    rng = np.random.default_rng(11)
    X = np.concatenate([rng.normal(-2, 0.5, 300), rng.normal(1, 1.0, 500)])[:, None]
    kde = gram.KernelDensity(bandwidth=rule).fit(X)
    h = kde.bandwidth_
    assert isinstance(h, float) and 0.02 < h < 1.0
    # The chosen h gives the same densities as that h given directly (and as scikit-learn's).
    ref = SkKDE(bandwidth=h).fit(X).score_samples(X[:50])
    np.testing.assert_allclose(kde.score_samples(X[:50]), ref, rtol=RTOL)


def test_cv_ml_maximises_loo_likelihood():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 2))
    h = gram.KernelDensity(bandwidth="cv-ml").fit(X).bandwidth_

    def loo(hh):
        d2 = ((X[:, None] - X[None]) ** 2).sum(-1)
        K = np.exp(-d2 / (2 * hh * hh))
        np.fill_diagonal(K, 0.0)
        return np.sum(np.log(K.sum(1) / (len(X) - 1) / (2 * np.pi * hh * hh)))

    assert loo(h) >= max(loo(h * 0.9), loo(h * 1.1))


def test_per_dimension_bandwidth():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2)) * [1.0, 5.0]
    h = np.array([0.4, 2.0])
    got = gram.KernelDensity(bandwidth=h).fit(X).score_samples(X[:20])
    ref = SkKDE(bandwidth=1.0).fit(X / h).score_samples(X[:20] / h) - np.log(h).sum()
    np.testing.assert_allclose(got, ref, rtol=RTOL)


# ---- the rest of the estimator --------------------------------------------------------------------


def test_score_is_sum_of_score_samples():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    kde = gram.KernelDensity(bandwidth=0.5).fit(X)
    assert kde.score(X[:10]) == pytest.approx(kde.score_samples(X[:10]).sum(), rel=1e-15)
    assert kde.score(X[:10]) == pytest.approx(SkKDE(bandwidth=0.5).fit(X).score(X[:10]), rel=RTOL)


@pytest.mark.parametrize("kernel", KERNELS)
def test_sample(kernel):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 2)) * [1.0, 3.0] + [5.0, -1.0]
    kde = gram.KernelDensity(kernel=kernel, bandwidth=0.3).fit(X)
    S = kde.sample(20000, random_state=0)
    assert S.shape == (20000, 2) and S.dtype == np.float64
    np.testing.assert_array_equal(S, kde.sample(20000, random_state=0))
    assert not np.array_equal(S, kde.sample(20000, random_state=1))
    # The sample mean is the data mean; the variance adds the kernel's.
    np.testing.assert_allclose(S.mean(0), X.mean(0), atol=0.1)
    assert np.all(S.var(0) > X.var(0) * 0.95)
    assert kde.sample(random_state=np.random.RandomState(3)).shape == (1, 2)
    assert kde.sample(3, random_state=np.random.default_rng(3)).shape == (3, 2)
    assert kde.sample(0).shape == (0, 2)


def test_sample_tophat_support():
    X = np.zeros((1, 3))
    S = gram.KernelDensity(kernel="tophat", bandwidth=0.5).fit(X).sample(5000, random_state=0)
    r = np.linalg.norm(S, axis=1)
    assert r.max() < 0.5
    assert np.mean(r < 0.5 * 0.5 ** (1 / 3)) == pytest.approx(0.5, abs=0.03)  # uniform in the ball


def test_sample_weights_respected():
    X = np.array([[0.0], [100.0]])
    S = gram.KernelDensity(bandwidth=1.0).fit(X, sample_weight=[0.0, 1.0]).sample(1000, random_state=0)
    assert np.all(S > 90)


def test_check_estimator():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not inherit from `sklearn.base.BaseEstimator`")
        results = check_estimator(gram.KernelDensity(), on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed, failed
    assert len([r for r in results if r["status"] == "passed"]) >= 40


def test_clone_gridsearch_pickle():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    kde = gram.KernelDensity(bandwidth=0.5, kernel="epanechnikov")
    assert clone(kde).get_params() == kde.get_params()
    assert "epanechnikov" in repr(kde) and "bandwidth=0.5" in repr(kde)
    search = GridSearchCV(gram.KernelDensity(), {"bandwidth": [0.1, 0.3, 1.0, 3.0]}, cv=3).fit(X)
    ref = GridSearchCV(SkKDE(), {"bandwidth": [0.1, 0.3, 1.0, 3.0]}, cv=3).fit(X)
    assert search.best_params_ == ref.best_params_
    kde.fit(X)
    again = pickle.loads(pickle.dumps(kde))
    np.testing.assert_array_equal(again.score_samples(X[:10]), kde.score_samples(X[:10]))
    np.testing.assert_array_equal(again.sample(5, random_state=1), kde.sample(5, random_state=1))


def test_not_fitted():
    with pytest.raises(NotFittedError):
        gram.KernelDensity().score_samples([[0.0]])
    with pytest.raises(NotFittedError):
        gram.KernelDensity().sample()


def test_refit_and_feature_count():
    kde = gram.KernelDensity().fit(np.zeros((5, 3)) + np.arange(5)[:, None])
    with pytest.raises(ValueError, match="X has 2 features, but KernelDensity is expecting 3 features"):
        kde.score_samples(np.zeros((2, 2)))
    kde.fit(np.ones((4, 2)))
    assert kde.n_features_in_ == 2 and kde.score_samples(np.ones((1, 2))).shape == (1,)


# ---- parameters and bad input: the same exception types as scikit-learn --------------------------

BAD_PARAMS = [
    {"bandwidth": -1.0}, {"bandwidth": 0}, {"bandwidth": "foo"}, {"kernel": "foo"},
    {"algorithm": "brute"}, {"atol": -1}, {"rtol": -0.5}, {"leaf_size": 0},
    {"breadth_first": "yes"}, {"metric": "foo"}, {"metric_params": 3},
]


@pytest.mark.parametrize("params", BAD_PARAMS)
def test_bad_params_like_sklearn(params):
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(Exception) as ref:
        SkKDE(**params).fit(X)
    with pytest.raises(Exception) as got:
        gram.KernelDensity(**params).fit(X)
    assert_same_kind(ref.value, got.value)


@pytest.mark.parametrize("metric,params", [("manhattan", None), ("chebyshev", None),
                                           ("minkowski", {"p": 1}), ("mahalanobis", None)])
def test_non_euclidean_metric(metric, params):
    with pytest.raises(ValueError, match="only the Euclidean metric"):
        gram.KernelDensity(metric=metric, metric_params=params).fit(np.eye(3))


def test_euclidean_aliases():
    X = np.random.default_rng(0).normal(size=(30, 2))
    a = gram.KernelDensity(metric="euclidean").fit(X).score_samples(X)
    for metric, mp in [("l2", None), ("minkowski", None), ("minkowski", {"p": 2})]:
        np.testing.assert_array_equal(gram.KernelDensity(metric=metric, metric_params=mp).fit(X).score_samples(X), a)


def _bad_inputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    nan = X.copy()
    nan[4, 1] = np.nan
    inf = X.copy()
    inf[7, 2] = -np.inf
    obj = X.astype(object)
    obj[0, 0] = {"a": 1}
    return {
        "1-D": X[:, 0],
        "3-D": X.reshape(2, 10, 3),
        "scalar": np.float64(3.0),
        "empty rows": np.empty((0, 3)),
        "empty cols": np.empty((5, 0)),
        "NaN": nan,
        "inf": inf,
        "complex": X + 1j,
        "strings": np.array([["a", "b"], ["c", "d"]]),
        "object dict": obj,
        "sparse": __import__("scipy.sparse", fromlist=["csr_matrix"]).csr_matrix(X),
    }


@pytest.mark.parametrize("what", list(_bad_inputs()))
def test_bad_fit_input_like_sklearn(what):
    X = _bad_inputs()[what]
    with pytest.raises(Exception) as ref:
        SkKDE().fit(X)
    with pytest.raises(Exception) as got:
        gram.KernelDensity().fit(X)
    assert_same_kind(ref.value, got.value)
    if what in ("NaN", "inf"):
        assert "row" in str(got.value) and "column" in str(got.value)  # gram's position


@pytest.mark.parametrize("what", list(_bad_inputs()))
def test_bad_score_input_like_sklearn(what):
    X = _bad_inputs()[what]
    train = np.random.default_rng(1).normal(size=(10, 3))
    with pytest.raises(Exception) as ref:
        SkKDE().fit(train).score_samples(X)
    with pytest.raises(Exception) as got:
        gram.KernelDensity().fit(train).score_samples(X)
    assert_same_kind(ref.value, got.value)


@pytest.mark.parametrize("weights", [
    [1.0] * 19, np.ones((20, 2)), [-1.0] + [1.0] * 19, [0.0] * 20, [np.nan] + [1.0] * 19, [1j] * 20,
])
def test_bad_sample_weight_like_sklearn(weights):
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(Exception) as ref:
        SkKDE().fit(X, sample_weight=weights)
    with pytest.raises(Exception) as got:
        gram.KernelDensity().fit(X, sample_weight=weights)
    assert_same_kind(ref.value, got.value)


@pytest.mark.parametrize("bad,kind", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
def test_nonfinite_sample_weight_named(bad, kind):
    """A NaN weight was reported as "Input X contains NaN (X: row 0, column 0 ...)": the data, at
    the weight's position. scikit-learn's message names sample_weight; gram adds where."""
    X = np.random.default_rng(0).normal(size=(20, 3))
    w = np.ones(20)
    w[4] = bad
    with pytest.raises(ValueError, match=f"Input sample_weight contains {kind}") as ref:
        SkKDE().fit(X, sample_weight=w)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(ref.value).rstrip('.'))} \(sample_weight: element 4 is "):
        gram.KernelDensity().fit(X, sample_weight=w)


def test_accepted_inputs_like_sklearn():
    rng = np.random.default_rng(0)
    Xf = rng.normal(size=(40, 3))
    want = SkKDE(bandwidth=0.8).fit(Xf).score_samples(Xf)
    for X in [Xf.tolist(), np.asfortranarray(Xf), np.repeat(Xf, 2, axis=1)[:, ::2], Xf[::-1][::-1]]:
        np.testing.assert_allclose(gram.KernelDensity(bandwidth=0.8).fit(X).score_samples(X), want, rtol=RTOL)
    Xi = rng.integers(-3, 3, size=(40, 3))
    np.testing.assert_allclose(gram.KernelDensity().fit(Xi).score_samples(Xi),
                               SkKDE().fit(Xi).score_samples(Xi), rtol=RTOL)
    X32 = Xf.astype(np.float32)
    np.testing.assert_allclose(gram.KernelDensity().fit(X32).score_samples(X32),
                               SkKDE().fit(X32).score_samples(X32), rtol=RTOL)


# ---- scikit-learn's test_kde_sample_weights, its Euclidean metrics ----------------------------
# (the peer suite runs it with manhattan and chebyshev too, which gram does not support: it is
# excluded there, tests/peer/exclusions.txt, and its Euclidean part runs here)


@pytest.mark.parametrize("metric", ["euclidean", "minkowski"])
@pytest.mark.parametrize("d", [1, 2, 10])
def test_sample_weights_like_repetitions(d, metric):
    n = 400
    rng = np.random.RandomState(0)
    X = rng.rand(n, d)
    weights = 1 + (10 * X.sum(axis=1)).astype(np.int8)
    X_rep = np.repeat(X, weights, axis=0)
    T = rng.rand(20 // d, d)
    kde = gram.KernelDensity(metric=metric)
    const = kde.fit(X, sample_weight=np.full(n, 3.0)).score_samples(T)
    s_const = kde.sample(random_state=1234)
    plain = kde.fit(X).score_samples(T)
    s_plain = kde.sample(random_state=1234)
    np.testing.assert_allclose(const, plain, rtol=1e-13)
    np.testing.assert_allclose(s_const, s_plain, rtol=1e-13)
    weighted = kde.fit(X, sample_weight=weights).score_samples(T)
    s_weighted = kde.sample(random_state=1234)
    rep = kde.fit(X_rep).score_samples(T)
    s_rep = kde.sample(random_state=1234)
    np.testing.assert_allclose(weighted, rep, rtol=1e-13)
    np.testing.assert_allclose(s_weighted, s_rep, rtol=1e-13)
    assert np.max(np.abs(plain - weighted)) > 1e-3
    np.testing.assert_allclose(kde.fit(X, sample_weight=0.37 * weights).score_samples(T), weighted, rtol=1e-13)
    np.testing.assert_allclose(SkKDE(metric=metric).fit(X, sample_weight=weights).score_samples(T), weighted,
                               rtol=RTOL)


# ---- arguments that cross into C, and inputs far larger than memory -----------------------------


@pytest.mark.parametrize("n", [2.5, 3.0, True, "3", None, np.float64(2)])
def test_sample_count_must_be_an_integer(n):
    kde = gram.KernelDensity().fit(np.zeros((3, 2)))
    with pytest.raises(TypeError, match="n_samples must be an int"):
        kde.sample(n)
    with pytest.raises(ValueError, match="n_samples must be an int"):
        kde.sample(n)


def test_sample_count_in_range():
    kde = gram.KernelDensity().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"n_samples must be in \[0, "):
        kde.sample(-1)
    with pytest.raises(ValueError, match=r"n_samples must be in \[0, 9223372036854775807\], got 18446744073709551617"):
        kde.sample(2**64 + 1)
    assert kde.sample(np.uint8(2), random_state=0).shape == (2, 2)


def test_sample_larger_than_memory_is_memory_error():
    kde = gram.KernelDensity().fit(np.zeros((3, 2)))
    with pytest.raises(MemoryError, match=r"the samples \(1000000000000000, 2\) needs 1.6e\+07 GB"):
        kde.sample(10**15)
