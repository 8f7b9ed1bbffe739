"""gram.KernelRidge against sklearn.kernel_ridge.KernelRidge, computed here.

Run after `python3 -m pip install .`: these tests import the installed package `gram`.

Accuracy: dual coefficients and predictions within 1e-10 of scikit-learn's, relative to the
largest magnitude compared, for every kernel name scikit-learn has, with and without sample
weights, one or several targets, and one penalty per target.
"""
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.gaussian_process import kernels as sk
from sklearn.kernel_ridge import KernelRidge as SkKRR
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import check_estimator

import gram

RTOL = 1e-10
NAMES = ["linear", "rbf", "poly", "polynomial", "laplacian", "cosine", "sigmoid", "chi2", "additive_chi2"]


def close(got, want, rtol=RTOL, what=""):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(np.abs(want).max(initial=0.0), 1e-300)
    err = np.abs(got - want).max(initial=0.0) / scale
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


def data(n=40, d=3, targets=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, d))  # non-negative: the chi² kernels need it
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    if targets is not None:
        y = np.column_stack([y * (t + 1) - t for t in range(targets)])
    return X, y


def compare(params, X, y, Xq, sample_weight=None, rtol=RTOL):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the least-squares fallback warns in both
        ours = gram.KernelRidge(**params).fit(X, y, sample_weight=sample_weight)
        ref = SkKRR(**params).fit(X, y, sample_weight=sample_weight)
    close(ours.dual_coef_, ref.dual_coef_, rtol, what=f"{params} dual_coef_")
    close(ours.predict(Xq), ref.predict(Xq), rtol, what=f"{params} predict")
    np.testing.assert_array_equal(ours.X_fit_, ref.X_fit_)
    return ours


def kernel_params(name):
    # scikit-learn fails on chi2 with gamma=None (it passes None on to chi2_kernel)
    return {"gamma": 0.8} if name == "chi2" else {}


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("targets", [None, 1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_kernels_match_sklearn(name, targets, weighted):
    X, y = data(targets=targets)
    Xq = data(n=11, seed=1)[0]
    sw = np.random.default_rng(2).uniform(0.2, 3.0, size=len(y)) if weighted else None
    alpha = 0.7
    ours = compare({"alpha": alpha, "kernel": name, **kernel_params(name)}, X, y, Xq, sw)
    assert ours.dual_coef_.shape == (y.shape if targets else (len(y),))
    if targets == 3 and name != "additive_chi2":  # one penalty per target (indefinite: LinAlgError)
        compare({"alpha": [0.3, 1.0, 2.5], "kernel": name, **kernel_params(name)}, X, y, Xq, sw)
        compare({"alpha": np.array([0.5, 0.5, 0.5]), "kernel": name, **kernel_params(name)}, X, y, Xq, sw)


@pytest.mark.parametrize("name", ["rbf", "laplacian", "poly", "sigmoid", "chi2"])
def test_gamma_degree_coef0(name):
    X, y = data()
    Xq = data(n=7, seed=3)[0]
    for params in ({"gamma": 0.3}, {"gamma": 2.0, "degree": 2, "coef0": 0.5}, {"degree": 4, "coef0": 0.0}):
        if name == "chi2" and "gamma" not in params:
            continue
        compare({"alpha": 0.4, "kernel": name, **params}, X, y, Xq)


def test_numpy_fallbacks_match_sklearn():
    """Parameters outside gram's families are computed in NumPy and solved by gram."""
    X, y = data()
    Xq = data(n=7, seed=3)[0]
    for params in ({"kernel": "poly", "degree": 2.5}, {"kernel": "poly", "coef0": -0.5, "degree": 2},
                   {"kernel": "poly", "degree": 0}, {"kernel": "rbf", "gamma": 0.0},
                   {"kernel": "laplacian", "gamma": 0.0}, {"kernel": "sigmoid", "coef0": -1.0, "gamma": 0.5}):
        compare({"alpha": 0.5, **params}, X, y, Xq)


def test_singular_fallback_like_sklearn():
    X, y = data()
    Xq = data(n=7, seed=3)[0]
    for params in ({"kernel": "additive_chi2", "alpha": 0.5}, {"kernel": "linear", "alpha": 0.0}):
        with pytest.warns(UserWarning, match="Singular matrix in solving dual problem"):
            gram.KernelRidge(**params).fit(X, y)
        compare(params, X, y, Xq)
    # one penalty per target: no fallback, as scikit-learn
    with pytest.raises(np.linalg.LinAlgError):
        gram.KernelRidge(kernel="additive_chi2", alpha=[0.5, 0.6]).fit(X, np.c_[y, y])


def test_sample_weight_forms():
    X, y = data(targets=2)
    Xq = data(n=7, seed=3)[0]
    sw = np.random.default_rng(1).integers(0, 4, size=len(y)).astype(float)  # zeros included
    compare({"alpha": 0.8, "kernel": "rbf"}, X, y, Xq, sw)
    compare({"alpha": 0.8, "kernel": "sigmoid"}, X, y, Xq, sw)
    compare({"alpha": 0.8, "kernel": "rbf"}, X, y, Xq, 2.5)
    compare({"alpha": 0.8, "kernel": "rbf"}, X, y, Xq, list(sw))
    # integer weights are repetitions
    rep = np.repeat(np.arange(len(y)), sw.astype(int))
    a = gram.KernelRidge(alpha=0.8, kernel="rbf").fit(X, y, sample_weight=sw)
    b = gram.KernelRidge(alpha=0.8, kernel="rbf").fit(X[rep], y[rep])
    close(a.predict(Xq), b.predict(Xq), 1e-9)


def test_callable_and_precomputed():
    X, y = data(targets=2)
    Xq = data(n=7, seed=3)[0]

    def k(a, b, p=2.0):
        return (a @ b + 1.0) ** p

    compare({"alpha": 0.5, "kernel": k, "kernel_params": {"p": 3.0}}, X, y, Xq)
    compare({"alpha": 0.5, "kernel": k}, X, y, Xq, np.linspace(0.5, 2, len(y)))
    K = np.exp(-((X[:, None] - X[None]) ** 2).sum(-1))
    Kq = np.exp(-((Xq[:, None] - X[None]) ** 2).sum(-1))
    ours = compare({"alpha": 0.5, "kernel": "precomputed"}, K, y, Kq)
    assert ours.n_features_in_ == len(y)
    with pytest.raises(ValueError, match="Precomputed metric requires shape"):
        gram.KernelRidge(kernel="precomputed").fit(K[:, :-1], y)
    with pytest.raises(ValueError, match="features"):
        ours.predict(Kq[:, :-1])


def test_kernel_objects():
    """gram kernels, gram spec strings and scikit-learn GP kernels, against scikit-learn with the
    scikit-learn kernel (its pairwise_kernels calls kernel(X, X): no white noise)."""
    X, y = data(targets=2)
    Xq = data(n=7, seed=3)[0]
    for skk, ours_k in ((sk.RBF(0.6), gram.RBF(0.6)),
                        (sk.ConstantKernel(2.0) * sk.Matern([0.5, 1.0, 2.0], nu=2.5), None),
                        (sk.RationalQuadratic(0.8, 1.5) + sk.DotProduct(0.5), None),
                        (sk.Matern(0.4, nu=1.5), "matern32(lengthscale=0.4)"),
                        (sk.RBF(0.9) + sk.WhiteKernel(0.3), None)):
        ref = SkKRR(alpha=0.6, kernel=skk).fit(X, y)
        for k in (skk, ours_k if ours_k is not None else gram.kernels.as_kernel(skk)):
            ours = gram.KernelRidge(alpha=0.6, kernel=k).fit(X, y)
            close(ours.dual_coef_, ref.dual_coef_, what=repr(skk))
            close(ours.predict(Xq), ref.predict(Xq), what=repr(skk))


def test_gamma_default_is_one_over_features():
    X, y = data(d=5)
    for name in ("rbf", "laplacian", "poly", "sigmoid"):
        a = gram.KernelRidge(kernel=name).fit(X, y)
        b = gram.KernelRidge(kernel=name, gamma=0.2).fit(X, y)
        np.testing.assert_array_equal(a.dual_coef_, b.dual_coef_)


def test_pickle_bit_for_bit():
    X, y = data(targets=2)
    Xq = data(n=9, seed=4)[0]
    for params in ({"kernel": "rbf", "gamma": 0.7}, {"kernel": "sigmoid"}, {"kernel": gram.Matern(0.5, nu=0.5)},
                   {"kernel": sk.RBF(0.9) + sk.WhiteKernel(0.3)}, {"kernel": "additive_chi2"}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = gram.KernelRidge(alpha=[0.5, 1.5], **params).fit(X, y) if params["kernel"] != "additive_chi2" \
                else gram.KernelRidge(alpha=0.5, **params).fit(X, y)
        again = pickle.loads(pickle.dumps(ours))
        np.testing.assert_array_equal(again.predict(Xq), ours.predict(Xq))
        np.testing.assert_array_equal(again.dual_coef_, ours.dual_coef_)
        np.testing.assert_array_equal(again.X_fit_, ours.X_fit_)
    assert clone(ours).get_params() == ours.get_params()


def test_check_estimator():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not inherit from `sklearn.base.BaseEstimator`")
        results = check_estimator(gram.KernelRidge(), on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed, failed
    assert len([r for r in results if r["status"] == "passed"]) >= 40


def test_gridsearch_and_score():
    X, y = data(n=60)
    grid = {"alpha": [0.01, 0.1, 1.0], "gamma": [0.5, 2.0]}
    ours = GridSearchCV(gram.KernelRidge(kernel="rbf"), grid, cv=3).fit(X, y)
    ref = GridSearchCV(SkKRR(kernel="rbf"), grid, cv=3).fit(X, y)
    assert ours.best_params_ == ref.best_params_
    close(ours.best_estimator_.score(X, y), ref.best_estimator_.score(X, y), 1e-10)


def test_bad_input():
    X, y = data()
    krr = gram.KernelRidge(kernel="rbf")
    for bad, match in ((np.nan, "NaN"), (np.inf, "infinity")):
        yb = y.copy()
        yb[5] = bad
        with pytest.raises(ValueError, match=match) as e:
            krr.fit(X, yb)
        assert "row 5" in str(e.value)
        Xb = X.copy()
        Xb[2, 1] = bad
        for kernel in ("rbf", "sigmoid"):
            with pytest.raises(ValueError, match=match) as e:
                gram.KernelRidge(kernel=kernel).fit(Xb, y)
            assert "row 2, column 1" in str(e.value)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        krr.fit(X, y[:-1])
    with pytest.raises(ValueError, match="requires y to be passed"):
        krr.fit(X, None)
    with pytest.raises(ValueError, match="alpha"):
        gram.KernelRidge(alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        gram.KernelRidge(alpha=[-1.0, 1.0]).fit(X, np.c_[y, y])
    with pytest.raises(ValueError, match="alpha"):
        gram.KernelRidge(alpha=[0.1, 0.2, 0.3]).fit(X, np.c_[y, y])
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        krr.fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="sample_weight.shape"):
        krr.fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="gamma"):
        gram.KernelRidge(kernel="rbf", gamma=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="negative values"):
        gram.KernelRidge(kernel="chi2", gamma=1.0).fit(X - 0.5, y)
    with pytest.raises(ValueError, match="unknown kernel"):
        gram.KernelRidge(kernel="no_such_kernel").fit(X, y)
    with pytest.raises(ValueError, match="kernel"):
        gram.KernelRidge(kernel=3).fit(X, y)
    with pytest.raises(ValueError, match="Expected 2D array"):
        krr.fit(X[:, 0], y)
    with pytest.raises(NotFittedError):
        gram.KernelRidge().predict(X)
    fitted = gram.KernelRidge(kernel="rbf").fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but KernelRidge is expecting 3 features"):
        fitted.predict(X[:, :2])
    with pytest.raises(ValueError, match=r"Input X contains NaN \(X: row 0, column 1 is NaN\)"):
        fitted.predict(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"Input X contains NaN \(X: row 1, column 0"):
        gram.KernelRidge(kernel="precomputed").fit(np.where(np.eye(len(y), k=-1) > 0, np.nan, np.eye(len(y))), y)
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        gram.KernelRidge(kernel="precomputed", alpha=[0.1, 0.2]).fit(-np.eye(len(y)), np.c_[y, y])


def test_sparse_input_is_densified_as_sklearn_takes_it():
    """scikit-learn's KernelRidge takes CSR and CSC input (its test_kernel_ridge_sparse): gram
    densifies it and gives the dense answer bit for bit."""
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, y = data()
    Xq = data(n=9, seed=2)[0]
    dense = gram.KernelRidge(kernel="rbf", alpha=0.1).fit(X, y)
    for make in (scipy_sparse.csr_matrix, scipy_sparse.csc_array, scipy_sparse.coo_matrix):
        ours = gram.KernelRidge(kernel="rbf", alpha=0.1).fit(make(X), y)
        ref = SkKRR(kernel="rbf", alpha=0.1).fit(make(X), y)
        np.testing.assert_array_equal(ours.dual_coef_, dense.dual_coef_)
        np.testing.assert_array_equal(ours.predict(make(Xq)), dense.predict(Xq))
        close(ours.predict(make(Xq)), ref.predict(make(Xq)), what=make.__name__)
    K = gram.RBF(1.0)(X)
    pre = gram.KernelRidge(kernel="precomputed", alpha=0.1).fit(scipy_sparse.csr_matrix(K), y)
    close(pre.dual_coef_, SkKRR(kernel="precomputed", alpha=0.1).fit(K, y).dual_coef_)
    assert gram.KernelRidge().__sklearn_tags__().input_tags.sparse


def test_overflowing_kernel_is_an_error():
    """x·y overflows for |x| ~ 1e160: an error naming it, not scikit-learn's least-squares fallback
    (which LAPACK answered with a print and "SVD did not converge")."""
    X = np.array([[1.0], [2.0], [3.0], [4.0]]) * 1e160
    y = np.array([1.0, 2.0, 0.5, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kernel in ("linear", "poly", gram.DotProduct(1.0)):
            with pytest.raises(ValueError, match="overflows"):
                gram.KernelRidge(kernel=kernel).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own overflow warning
        with pytest.raises(ValueError, match="overflows"):  # a kernel computed in NumPy
            gram.KernelRidge(kernel="poly", degree=2.5).fit(X, y)
    krr = gram.KernelRidge(kernel="linear").fit(X / 1e160, y)
    with pytest.raises(ValueError, match="not finite"):
        krr.predict(np.array([[0.5], [1e308]]))
    assert np.isfinite(krr.predict(np.array([[0.5]]))).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        krr = gram.KernelRidge(kernel="poly", degree=2.5).fit(X / 1e160, y)
        with pytest.raises(ValueError, match="not finite"):
            krr.predict(np.array([[1e200]]))
    # targets too large for the system: coefficients that overflow are an error, not inf
    with pytest.raises(ValueError, match="scale y or increase alpha"):
        gram.KernelRidge(kernel="linear", alpha=1e-12).fit(X / 1e160, y * 1e300)
