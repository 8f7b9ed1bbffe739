"""gram's feature-map transformers (gram.RBFSampler, Nystroem, PolynomialCountSketch,
RandomFeatures) against scikit-learn's, computed here.

Statistical equivalence: for 30 seeds each, the relative Frobenius error ‖K − ZZᵀ‖/‖K‖ of gram's
map and of scikit-learn's on scikit-learn's bundled data (digits, breast cancer); the two samples
of 30 errors are compared by the two-sample Kolmogorov–Smirnov test at a false-alarm rate of
ALPHA = 1e-3 per comparison (the seeds are fixed, so the outcome is reproducible; under the null
hypothesis a different set of seeds would fail one comparison in a thousand). Power: the same test
on gram with a deliberately wrong parameter (γ doubled) must reject at the same level.

Exact checks: transforms rebuilt from the documented attributes (cos(X W + b)·√(2/R); the count
sketch from indexHash_/bitHash_) within 1e-12; Nystroem with scikit-learn's landmarks gives its
Gram matrix within 1e-10; pickles transform bit for bit.
"""
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats
from sklearn import kernel_approximation as ka
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics.pairwise import laplacian_kernel, pairwise_kernels, polynomial_kernel, rbf_kernel
from sklearn.utils.estimator_checks import check_estimator

import gram

ALPHA = 1e-3
SEEDS = range(30)


def _digits():
    return load_digits().data[:300] / 16.0


def _cancer():
    X = load_breast_cancer().data[:300]
    return (X - X.mean(0)) / X.std(0)


def _rel_err(Z, K):
    return np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K)


def _errors(make, X, K):
    return np.array([_rel_err(make(s).fit_transform(X), K) for s in SEEDS])


def _ks(a, b):
    return stats.ks_2samp(a, b).pvalue


def close(got, want, tol, what=""):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(np.abs(want).max(initial=0.0), 1e-300)
    err = np.abs(got - want).max(initial=0.0) / scale
    assert err <= tol, f"{what}: max relative error {err:.3g} > {tol:g}"


# ---- statistical equivalence with scikit-learn ---------------------------------------------------


@pytest.mark.parametrize("data", [_digits, _cancer], ids=["digits", "breast_cancer"])
def test_rbf_sampler_error_distribution_as_sklearn(data):
    X = data()
    g = 1.0 / (X.shape[1] * X.var())
    K = rbf_kernel(X, gamma=g)
    ours = _errors(lambda s: gram.RBFSampler(gamma=g, n_components=128, random_state=s), X, K)
    theirs = _errors(lambda s: ka.RBFSampler(gamma=g, n_components=128, random_state=s), X, K)
    assert _ks(ours, theirs) > ALPHA, (ours.mean(), theirs.mean())
    wrong = _errors(lambda s: gram.RBFSampler(gamma=2 * g, n_components=128, random_state=s), X, K)
    assert _ks(wrong, theirs) < ALPHA, (wrong.mean(), theirs.mean())  # the test has power


@pytest.mark.parametrize("data", [_digits, _cancer], ids=["digits", "breast_cancer"])
def test_count_sketch_error_distribution_as_sklearn(data):
    X = data()
    g = 1.0 / (X.shape[1] * X.var())
    K = polynomial_kernel(X, gamma=g, degree=2, coef0=1)
    # 256: gram's TensorSketch map (a power of two)
    mk = lambda gam: (lambda s: gram.PolynomialCountSketch(gamma=gam, degree=2, coef0=1, n_components=256,
                                                           random_state=s))
    ours = _errors(mk(g), X, K)
    theirs = _errors(lambda s: ka.PolynomialCountSketch(gamma=g, degree=2, coef0=1, n_components=256,
                                                        random_state=s), X, K)
    assert _ks(ours, theirs) > ALPHA, (ours.mean(), theirs.mean())
    wrong = _errors(mk(2 * g), X, K)
    assert _ks(wrong, theirs) < ALPHA, (wrong.mean(), theirs.mean())


@pytest.mark.parametrize("data", [_digits, _cancer], ids=["digits", "breast_cancer"])
def test_nystroem_error_distribution_as_sklearn(data):
    X = data()
    g = 1.0 / (X.shape[1] * X.var())
    K = rbf_kernel(X, gamma=g)
    ours = _errors(lambda s: gram.Nystroem(gamma=g, n_components=40, random_state=s), X, K)
    theirs = _errors(lambda s: ka.Nystroem(gamma=g, n_components=40, random_state=s), X, K)
    assert _ks(ours, theirs) > ALPHA, (ours.mean(), theirs.mean())
    wrong = _errors(lambda s: gram.Nystroem(gamma=2 * g, n_components=40, random_state=s), X, K)
    assert _ks(wrong, theirs) < ALPHA, (wrong.mean(), theirs.mean())


# ---- RBFSampler ----------------------------------------------------------------------------------


def test_rbf_sampler_transform_from_attributes():
    X = np.random.default_rng(0).normal(size=(60, 7))
    r = gram.RBFSampler(gamma=0.3, n_components=101, random_state=0).fit(X)
    assert r.random_weights_.shape == (7, 101) and r.random_offset_.shape == (101,)
    ref = np.sqrt(2.0 / 101) * np.cos(X @ r.random_weights_ + r.random_offset_)
    close(r.transform(X), ref, 1e-12, "transform")
    # the frequencies' law: N(0, 2 gamma) per entry (4e4 draws: 5 standard errors of the variance)
    W = gram.RBFSampler(gamma=0.3, n_components=4000, random_state=1).fit(X[:, :10]).random_weights_
    assert abs(W.var() / 0.6 - 1) < 5 * np.sqrt(2 / W.size)
    b = gram.RBFSampler(n_components=4000, random_state=1).fit(X).random_offset_
    assert b.min() >= 0 and b.max() < 2 * np.pi and abs(b.mean() - np.pi) < 5 * np.pi / np.sqrt(3 * b.size)


def test_rbf_sampler_dtypes():
    X = np.random.default_rng(1).normal(size=(20, 3))
    r32 = gram.RBFSampler(random_state=3).fit(X.astype(np.float32))
    r64 = gram.RBFSampler(random_state=3).fit(X)
    assert r32.random_weights_.dtype == np.float32 and r32.random_offset_.dtype == np.float32
    np.testing.assert_allclose(r32.random_weights_, r64.random_weights_, rtol=1e-6)
    Z32 = r32.transform(X.astype(np.float32))
    assert Z32.dtype == np.float32
    close(Z32, r64.transform(X), 1e-5, "float32")
    assert r32.transform(X).dtype == np.float64  # float64 data through float32 weights: as scikit-learn


def test_rbf_sampler_gamma_scale_and_zero():
    r = gram.RBFSampler(gamma="scale").fit([[0.0], [1.0]])
    assert r._gamma == pytest.approx(4)
    X = np.random.default_rng(2).normal(size=(5, 3))
    z = gram.RBFSampler(gamma=0.0, n_components=8, random_state=0).fit(X)
    assert not z.random_weights_.any()
    Z = z.transform(X)
    close(Z, np.tile(np.sqrt(2 / 8) * np.cos(z.random_offset_), (5, 1)), 1e-15, "gamma=0")


def test_rbf_sampler_sparse_and_names():
    X = np.random.default_rng(3).random((10, 4))
    r = gram.RBFSampler(n_components=6, random_state=0).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(r.transform(sp.csr_matrix(X)), r.transform(X))
    assert list(r.get_feature_names_out()) == [f"rbfsampler{i}" for i in range(6)]


# ---- PolynomialCountSketch -------------------------------------------------------------------------


def _sketch_from_attributes(est, X):
    Xg = np.sqrt(est.gamma) * X
    if est.coef0 != 0:
        Xg = np.hstack([Xg, np.full((len(X), 1), np.sqrt(est.coef0))])
    p, R = est.indexHash_.shape[0], est.n_components
    out = np.ones((len(X), R), dtype=complex)
    for d in range(p):
        cs = np.zeros((len(X), R))
        for j in range(Xg.shape[1]):
            cs[:, est.indexHash_[d, j]] += est.bitHash_[d, j] * Xg[:, j]
        out *= np.fft.fft(cs, axis=1)
    return np.real(np.fft.ifft(out, axis=1))


@pytest.mark.parametrize("R", [64, 100])
@pytest.mark.parametrize("coef0", [0.0, 1.5])
def test_count_sketch_from_attributes(R, coef0):
    X = np.random.default_rng(4).normal(size=(30, 5))
    est = gram.PolynomialCountSketch(gamma=0.7, degree=3, coef0=coef0, n_components=R, random_state=0).fit(X)
    assert est.indexHash_.shape == est.bitHash_.shape == (3, 5 + (coef0 != 0))
    assert est.indexHash_.min() >= 0 and est.indexHash_.max() < R and set(np.unique(est.bitHash_)) <= {-1, 1}
    Z = est.transform(X)
    assert Z.dtype == np.float64 and Z.shape == (30, R)
    close(Z, _sketch_from_attributes(est, X), 1e-12, "sketch")


def test_count_sketch_non_power_of_two_is_sklearns():
    # sizes gram's FFT does not take use scikit-learn's construction with its random stream
    X = np.random.default_rng(5).normal(size=(20, 4))
    ours = gram.PolynomialCountSketch(coef0=2, n_components=100, random_state=7).fit(X)
    theirs = ka.PolynomialCountSketch(coef0=2, n_components=100, random_state=7).fit(X)
    np.testing.assert_array_equal(ours.indexHash_, theirs.indexHash_)
    np.testing.assert_array_equal(ours.bitHash_, theirs.bitHash_)
    close(ours.transform(X), theirs.transform(X), 1e-12, "transform")


def test_count_sketch_negative_coef0():
    with pytest.raises(ValueError, match="coef0 must be >= 0"):
        gram.PolynomialCountSketch(coef0=-1).fit([[1.0, 2.0]])


# ---- Nystroem ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel,params", [("rbf", {"gamma": 0.2}), ("laplacian", {"gamma": 0.1}),
                                           ("polynomial", {"degree": 2, "coef0": 1.0, "gamma": 0.1}),
                                           ("linear", {}), ("cosine", {}), ("chi2", {}),
                                           ("poly", {"degree": 2.5})])
def test_nystroem_same_landmarks_as_sklearn(kernel, params):
    rng = np.random.default_rng(6)
    X = rng.random((80, 30))  # 30 > 25 landmarks: K(L, L) of the linear kernel is not singular
    ours = gram.Nystroem(kernel=kernel, n_components=25, random_state=11, **params).fit(X)
    theirs = ka.Nystroem(kernel=kernel, n_components=25, random_state=11, **params).fit(X)
    np.testing.assert_array_equal(ours.component_indices_, theirs.component_indices_)
    np.testing.assert_array_equal(ours.components_, X[ours.component_indices_])
    Y = rng.random((30, 30))
    Zo, Zt = ours.transform(Y), theirs.transform(Y)
    # normalization_ may differ by a rotation (eigen- vs singular vectors): compare Gram matrices
    close(Zo @ Zo.T, Zt @ Zt.T, 1e-10, f"{kernel} Gram matrix")
    Kyl = pairwise_kernels(Y, ours.components_, metric=kernel, filter_params=True, **params)
    close(Zo, Kyl @ ours.normalization_.T, 1e-10, "transform from the attributes")


def test_nystroem_full_rank_is_exact_and_warns():
    X = np.random.default_rng(7).random((12, 3))
    with pytest.warns(UserWarning, match="n_components > n_samples"):
        ny = gram.Nystroem(gamma=0.5, n_components=20, random_state=0).fit(X)
    assert ny.components_.shape == (12, 3) and ny.normalization_.shape == (12, 12)
    Z = ny.transform(X)
    close(Z @ Z.T, rbf_kernel(X, gamma=0.5), 1e-10, "R = N")
    Z = gram.Nystroem(kernel="laplacian", gamma=0.3, n_components=12).fit_transform(X)
    close(Z @ Z.T, laplacian_kernel(X, gamma=0.3), 1e-10, "laplacian R = N")


def test_nystroem_not_better_than_best_rank_r():
    X = _digits()[:200]
    K = rbf_kernel(X, gamma=0.02)
    w = np.linalg.eigvalsh(K)[::-1]
    for R in (10, 40):
        best = np.sqrt((w[R:] ** 2).sum())
        Z = gram.Nystroem(gamma=0.02, n_components=R, random_state=0).fit_transform(X)
        E = K - Z @ Z.T
        assert np.linalg.norm(E) >= best * (1 - 1e-9)
        assert np.linalg.eigvalsh(E).min() > -1e-9 * w[0]  # K - ZZ^T is PSD (a Schur complement)


@pytest.mark.parametrize("landmarks", ["uniform", "kmeans++", "leverage"])
def test_nystroem_landmark_methods(landmarks):
    X = _digits()[:200]
    K = rbf_kernel(X, gamma=0.02)
    ny = gram.Nystroem(gamma=0.02, n_components=30, landmarks=landmarks, random_state=0).fit(X)
    idx = ny.component_indices_
    assert idx.shape == (30,) and len(set(idx.tolist())) == 30 and idx.min() >= 0 and idx.max() < 200
    np.testing.assert_array_equal(ny.components_, X[idx])
    Z = ny.transform(X)
    # the Nyström approximation through the chosen landmarks: K(X, L) K(L, L)^-1 K(L, X)
    KxL = K[:, idx]
    close(Z @ Z.T, KxL @ np.linalg.solve(K[np.ix_(idx, idx)], KxL.T), 1e-8, landmarks)
    again = gram.Nystroem(gamma=0.02, n_components=30, landmarks=landmarks, random_state=0).fit(X)
    np.testing.assert_array_equal(again.component_indices_, idx)  # seeded


def test_nystroem_callable_and_precomputed():
    X = np.random.default_rng(8).random((10, 4))

    def hist(x, y):
        return np.minimum(x, y).sum()

    ours = gram.Nystroem(kernel=hist, n_components=10).fit(X)
    Z = ours.transform(X)
    K = np.array([[hist(a, b) for b in X] for a in X])
    close(Z @ Z.T, K, 1e-10, "callable")
    with pytest.raises(ValueError, match="Don't pass gamma, coef0 or degree to Nystroem"):
        gram.Nystroem(kernel=hist, gamma=1).fit(X)
    K = polynomial_kernel(X, degree=2, coef0=0.1)
    Z = gram.Nystroem(kernel="precomputed", n_components=10).fit_transform(K)
    close(Z @ Z.T, K, 1e-10, "precomputed")


# ---- RandomFeatures --------------------------------------------------------------------------------

_METHOD_KERNELS = [
    ("rff", "rbf(lengthscale=2)"), ("rff_phase", "rbf(lengthscale=2)"), ("orf", "matern52(lengthscale=3)"),
    ("sorf", "rbf(lengthscale=2)"), ("positive", "rbf(lengthscale=2)"), ("positive_orf", "rbf(lengthscale=2)"),
    ("hyperbolic", "rbf(lengthscale=2)"), ("hyperbolic_orf", "rbf(lengthscale=2)"),
    ("rff", "laplacian(lengthscale=3)"), ("rff", "2*cauchy(lengthscale=2)"),
    ("tensorsketch", "polynomial(degree=2, gamma=0.5, coef0=1)"),
    ("positive", "softmax(lengthscale=2)"), ("hyperbolic_orf", "softmax(lengthscale=2)"),
    ("arccos", "arccos(degree=0)"), ("arccos", "arccos(degree=1)"), ("arccos", "arccos(degree=2)"),
]


@pytest.mark.parametrize("method,spec", _METHOD_KERNELS)
def test_random_features_approximate_kernel(method, spec):
    X = np.random.default_rng(9).normal(size=(40, 4)) * 0.5
    K = gram.Kernel(spec)(X)
    f = gram.RandomFeatures(spec, method=method, n_components=4096, random_state=0).fit(X)
    Z = f.transform(X)
    assert Z.shape == (40, 4096) and Z.dtype == np.float64
    # one map of R = 4096: every estimator here has a standard deviation below ~0.05 of max K
    # for these inputs (docs/features.md's variance formulas); 0.15 is 3 of them
    assert np.abs(Z @ Z.T - K).max() < 0.15 * np.abs(K).max(), method
    assert f.transform(X.astype(np.float32)).dtype == np.float32


def test_random_features_unbiased_over_seeds():
    X = np.random.default_rng(10).normal(size=(6, 3))
    K = gram.Kernel("rbf(lengthscale=1.5)")(X)
    est = np.array([(lambda Z: Z @ Z.T)(gram.RandomFeatures("rbf(lengthscale=1.5)", method="rff", n_components=16,
                                                              random_state=s).fit_transform(X))
                    for s in range(400)])
    se = est.std(0) / np.sqrt(len(est)) + 1e-12
    assert np.abs((est.mean(0) - K) / se).max() < 5  # 5 standard errors over 36 entries


def test_random_features_errors():
    X = np.random.default_rng(11).normal(size=(5, 3))
    with pytest.raises(ValueError, match="linear"):
        gram.RandomFeatures("linear", method="rff", n_components=8).fit(X)
    with pytest.raises(ValueError, match="even"):
        gram.RandomFeatures("rbf", method="rff", n_components=7).fit(X)
    with pytest.raises(ValueError, match="method"):
        gram.RandomFeatures(method="fourier").fit(X)
    with pytest.raises(ValueError, match="n_components"):
        gram.RandomFeatures(n_components=0).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        gram.RandomFeatures().fit(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="more frequencies than gram can index or hold"):
        gram.RBFSampler(n_components=2**62).fit(X)
    f = gram.RandomFeatures(n_components=8).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but RandomFeatures is expecting 3"):
        f.transform(X[:, :2])
    with pytest.raises(ValueError, match=r"NaN \(X: row 1, column 2"):
        f.transform(np.array([[0.0, 1, 2], [3, 4, np.nan]]))
    with pytest.raises(ValueError, match="inf"):
        gram.RBFSampler().fit(X).transform(np.array([[0.0, np.inf, 2]]))


# ---- the estimator contract ------------------------------------------------------------------------

_ESTIMATORS = [gram.RBFSampler(), gram.PolynomialCountSketch(), gram.PolynomialCountSketch(n_components=64),
               gram.Nystroem(), gram.Nystroem(landmarks="leverage"), gram.Nystroem(landmarks="kmeans++"),
               gram.RandomFeatures(method="rff_phase"), gram.RandomFeatures(method="orf"),
               gram.RandomFeatures(kernel="arccos(degree=1)", method="arccos"),
               gram.RandomFeatures(kernel="polynomial(degree=2)", method="tensorsketch", n_components=64)]
# check_estimator sets n_components = 1 in a few checks: the paired methods (cos/sin) need an even R
_ODD_R = {name: "paired features need an even n_components; the check sets it to 1"
          for name in ("check_dont_overwrite_parameters", "check_methods_sample_order_invariance",
                       "check_methods_subset_invariance", "check_fit2d_1sample", "check_fit2d_1feature",
                       "check_fit2d_predict1d")}


@pytest.mark.parametrize("est", _ESTIMATORS, ids=lambda e: repr(e))
def test_check_estimator(est):
    expected = _ODD_R if isinstance(est, gram.RandomFeatures) and est.method == "orf" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(est, expected_failed_checks=expected)


@pytest.mark.parametrize("est", _ESTIMATORS + [gram.Nystroem(kernel="chi2", n_components=10),
                                               gram.RBFSampler(gamma=0.0),
                                               gram.Nystroem(n_components=10, landmarks="leverage"),
                                               gram.RandomFeatures(method="nystrom", n_components=10,
                                                                   landmarks="kmeans++")],
                         ids=lambda e: repr(e))
def test_pickle_transforms_bit_identically(est):
    X = np.abs(np.random.default_rng(12).normal(size=(30, 5)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = clone(est).set_params(random_state=3).fit(X)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(X), est.transform(X))
    assert clone(est).get_params() == est.get_params()


def test_bad_params():
    X = [[1.0, 2.0], [3.0, 4.0]]
    for est, match in [(gram.RBFSampler(gamma=-1), "gamma"), (gram.RBFSampler(gamma="auto"), "gamma"),
                       (gram.RBFSampler(n_components=1.5), "n_components"),
                       (gram.PolynomialCountSketch(degree=0), "degree"),
                       (gram.Nystroem(landmarks="random"), "landmarks"),
                       (gram.Nystroem(kernel_params=3), "kernel_params"),
                       (gram.RandomFeatures(random_state="x"), "random_state")]:
        with pytest.raises(ValueError, match=match):
            est.fit(X)


# ---- approximate sums through the features ----------------------------------------------------------


@pytest.mark.parametrize("method,R", [("rff", 2048), ("orf", 2048), ("positive", 2048), ("nystrom", 200)])
def test_kernel_sum_through_features(method, R):
    rng = np.random.default_rng(13)
    X, Y, w = rng.normal(size=(1500, 4)), rng.normal(size=(300, 4)), rng.random((1500, 2))
    f = gram.RandomFeatures("rbf(lengthscale=2)", method=method, n_components=R, random_state=0).fit(X)
    out, err = f.kernel_sum(X, Y, w, return_error=True)
    assert out.shape == (300, 2) and err.shape == (2,)
    # by definition φ(Y)·(Φ(X)ᵀ w)
    close(out, f.transform(Y) @ (f.transform(X).T @ w), 1e-12, "φ(Y)·(Φ(X)ᵀW)")
    exact = gram.kernel_sum(X, Y, w, kernel="rbf(lengthscale=2)")
    actual = np.linalg.norm(out - exact, axis=0) / np.linalg.norm(exact, axis=0)
    # the estimate is an exact check on 64 of the 300 queries: within a factor 3 of the truth
    assert np.all(err > actual / 3) and np.all(err < actual * 3), (err, actual)
    one = f.kernel_sum(X, Y, w[:, 0])
    assert one.shape == (300,)
    close(one, out[:, 0], 1e-12, "one column")


def test_kernel_sum_nystrom_full_rank_is_exact():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(60, 3))
    f = gram.RandomFeatures("matern32(lengthscale=1.5)", method="nystrom", n_components=60).fit(X)
    close(f.kernel_sum(X), gram.kernel_sum(X, kernel="matern32(lengthscale=1.5)"), 1e-9, "R = N")


def test_nystrom_landmarks_and_damaged_pickle():
    X = np.random.default_rng(15).normal(size=(5, 3))
    with pytest.raises(ValueError, match="n_components=10 landmarks for 'nystrom' but X has 5 samples"):
        gram.RandomFeatures(method="nystrom", n_components=10).fit(X)
    f = gram.RandomFeatures(method="nystrom", n_components=4, random_state=0).fit(X)
    state = f.__getstate__()
    data = bytearray(state["_map_bytes"])
    data[len(data) // 2] ^= 0x10
    state["_map_bytes"] = bytes(data)
    with pytest.raises(ValueError):
        gram.RandomFeatures().__setstate__(state)


def test_nystrom_pickle_needs_map_bytes(monkeypatch):
    # without gram_features_to_bytes a Nyström map cannot be re-created from parameters: refused,
    # where it once pickled into a transformer without its map
    X = np.random.default_rng(16).normal(size=(20, 3))
    f = gram.RandomFeatures(method="nystrom", n_components=5, random_state=0).fit(X)
    import gram.features as gf
    monkeypatch.setattr(gf, "_map_bytes_available", lambda: False)
    with pytest.raises(TypeError, match="gram_features_to_bytes"):
        pickle.dumps(f)
    # maps made from parameters still pickle, re-created bit for bit
    r = gram.RandomFeatures(method="orf", n_components=16, random_state=0).fit(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(r)).transform(X), r.transform(X))
