"""gram kernels against sklearn.gaussian_process.kernels, computed here; kernel sums and Gram
matrices (gram.kernel_sum, gram.pairwise_kernels, Kernel.sum/__call__/diag).

Run after `python3 -m pip install .`: these tests import the installed package `gram`.
"""
import pickle

import numpy as np
import pytest
import sklearn.gaussian_process.kernels as sk
from scipy.special import logsumexp
from sklearn.metrics.pairwise import pairwise_kernels as sk_pairwise

import gram

TOL = 1e-12


def data(n=60, m=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d))


def close(a, b, tol=TOL):
    """Relative error <= tol, with the scale floored at max(1, max |b|) for values near 0;
    infinities must match exactly."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    fin = np.isfinite(b)
    np.testing.assert_array_equal(a[~fin], b[~fin])
    scale = max(1.0, float(np.abs(b[fin]).max(initial=0)))
    np.testing.assert_allclose(a[fin], b[fin], rtol=tol, atol=tol * scale)


PAIRS = [
    (gram.RBF(0.7), sk.RBF(0.7)),
    (gram.RBF([0.5, 1.0, 2.0]), sk.RBF([0.5, 1.0, 2.0])),
    (gram.Matern(0.8, nu=0.5), sk.Matern(0.8, nu=0.5)),
    (gram.Matern(0.8, nu=1.5), sk.Matern(0.8, nu=1.5)),
    (gram.Matern([0.5, 1.5, 1.0], nu=2.5), sk.Matern([0.5, 1.5, 1.0], nu=2.5)),
    (gram.Matern(1.3, nu=np.inf), sk.Matern(1.3, nu=np.inf)),
    (gram.RationalQuadratic(0.9, alpha=0.5), sk.RationalQuadratic(0.9, alpha=0.5)),
    (gram.ExpSineSquared(1.2, periodicity=2.5), sk.ExpSineSquared(1.2, periodicity=2.5)),
    (gram.DotProduct(0.5), sk.DotProduct(0.5)),
    (gram.DotProduct(0.0), sk.DotProduct(0.0)),
    (gram.WhiteKernel(0.3), sk.WhiteKernel(0.3)),
    (gram.ConstantKernel(2.5), sk.ConstantKernel(2.5)),
    (gram.RBF(1.0) + gram.WhiteKernel(0.1), sk.RBF(1.0) + sk.WhiteKernel(0.1)),
    (2.0 * gram.Matern(0.5, nu=2.5), 2.0 * sk.Matern(0.5, nu=2.5)),
    (gram.RBF(0.5) * gram.ExpSineSquared(1.0, 3.0) + 0.5, sk.RBF(0.5) * sk.ExpSineSquared(1.0, 3.0) + 0.5),
    (gram.DotProduct(1.0) * gram.DotProduct(0.5) + gram.RationalQuadratic(2.0, 3.0),
     sk.DotProduct(1.0) * sk.DotProduct(0.5) + sk.RationalQuadratic(2.0, 3.0)),
    (-1.5 * gram.RBF(1.0) + 3, -1.5 * sk.RBF(1.0) + 3),
    (gram.ConstantKernel(0.7) * gram.RBF(2.0) * gram.ConstantKernel(3.0),
     sk.ConstantKernel(0.7) * sk.RBF(2.0) * sk.ConstantKernel(3.0)),
]


@pytest.mark.parametrize("ours,ref", PAIRS, ids=[repr(p[1]) for p in PAIRS])
def test_kernel_vs_sklearn(ours, ref):
    X, Y = data()
    close(ours(X), ref(X))
    close(ours(X, Y), ref(X, Y))
    close(ours(X, X), ref(X, X))  # an explicit Y: no white noise, as scikit-learn
    close(ours.diag(X), ref.diag(X))
    # The same kernel, given as the scikit-learn object or as its spec string.
    translated = gram.kernels.as_kernel(ref)
    close(translated(X, Y), ref(X, Y))
    close(gram.Kernel(ours.spec)(X, Y), ref(X, Y))
    close(gram.pairwise_kernels(X, Y, kernel=ref), ref(X, Y))


@pytest.mark.parametrize("ours,ref", PAIRS[:6], ids=[repr(p[1]) for p in PAIRS[:6]])
def test_kernel_real_data(ours, ref):
    from sklearn.datasets import load_iris
    X = load_iris().data[:, :3]
    close(ours(X), ref(X))


def test_pairwise_kernel_translation():
    X, Y = data()
    for metric, kw in [("rbf", {}), ("laplacian", {}), ("linear", {}), ("cosine", {}),
                       ("poly", {"degree": 2, "coef0": 0.5})]:
        k = sk.PairwiseKernel(gamma=0.3, metric=metric, pairwise_kernels_kwargs=kw or None)
        want = sk_pairwise(X, Y, metric=metric, **({} if metric in ("linear", "cosine") else {"gamma": 0.3}), **kw)
        close(gram.pairwise_kernels(X, Y, kernel=k), want)


def test_unsupported_sklearn_kernels():
    X, _ = data()
    with pytest.raises(ValueError, match="chi2"):
        gram.kernel_sum(X, kernel=sk.PairwiseKernel(metric="chi2"))
    with pytest.raises(ValueError, match="callable"):
        gram.kernel_sum(X, kernel=sk.PairwiseKernel(metric=lambda a, b: a @ b))
    with pytest.raises(ValueError, match="nu must be > 0"):
        gram.kernel_sum(X, kernel=sk.Matern(nu=-1.0))

    class MyRBF(sk.RBF):  # may change __call__: never computed as its parent
        pass

    with pytest.raises(ValueError, match="cannot translate"):
        gram.kernels.as_kernel(MyRBF())
    with pytest.raises(ValueError, match="cannot translate"):
        gram.kernel_sum(X, kernel=sk.RBF() + MyRBF())
    with pytest.raises(TypeError):
        gram.kernel_sum(X, kernel=3.0)


def test_specs():
    assert gram.RBF(2.0).spec == "gaussian(lengthscale=2.0)"
    assert gram.RBF([1, 2]).spec == "gaussian(lengthscale=[1.0, 2.0])"
    assert gram.Matern(0.1, nu=0.5).spec == "matern12(lengthscale=0.1)"
    assert (3 * gram.RBF()).spec == "3.0*(gaussian(lengthscale=1.0))"
    assert (gram.RBF() + 2).spec == "gaussian(lengthscale=1.0) + constant(value=2.0)"
    assert gram.DotProduct(0.25).spec == "linear(sigma0=0.25, lengthscale_bounds=fixed)"
    assert gram.WhiteKernel(0.5).spec == "white(noise=0.5)"
    assert gram.ExpSineSquared(1.0, 2.0).spec == "periodic(lengthscale=1.0, period=2.0)"
    # repr(float) keeps every bit
    v = 0.1 + 0.2
    assert float(gram.RBF(v).spec[len("gaussian(lengthscale="):-1]) == v
    k = gram.Kernel("2*matern52(lengthscale=[1,2]) + white(0.1)")
    assert k.canonical_spec.startswith("matern52(lengthscale=[1, 2])")
    assert k.hyperparameter_names == ["leaf1.lengthscale[0]", "leaf1.lengthscale[1]", "scale1", "leaf2.noise"]
    np.testing.assert_allclose(k.theta, np.log([1, 2, 2, 0.1]))
    assert k.n_dims == 4
    X, _ = data(d=2)
    ref = 2 * sk.Matern([1, 2], nu=2.5) + sk.WhiteKernel(0.1)
    close(k(X), ref(X))
    close(k.clone_with_theta(np.log([1, 2, 2, 0.1]))(X), ref(X))


def test_spec_errors():
    X, _ = data()
    for spec, match in [("foo(1)", "unknown kernel 'foo'"), ("gaussian(", "position"),
                        ("gaussian(lengthscale=-1)", "lengthscale"), ("rbf(lengthscale=[1,2])", "column|dimension|D")]:
        with pytest.raises(ValueError, match=match):
            gram.kernel_sum(X, kernel=spec)
    with pytest.raises(ValueError, match="lengthscale"):
        gram.RBF(-1.0)(X)
    with pytest.raises(ValueError, match="finite"):
        gram.RBF(np.nan)(X)
    with pytest.raises(TypeError):
        gram.Kernel(3)


def test_set_params_rebuilds():
    X, Y = data()
    k = gram.RBF(1.0) + gram.WhiteKernel(0.5)
    before = k(X, Y)
    k.set_params(k1__length_scale=0.3)
    close(k(X, Y), sk.RBF(0.3)(X, Y))
    assert not np.allclose(before, k(X, Y))
    assert k.get_params()["k1__length_scale"] == 0.3
    again = pickle.loads(pickle.dumps(k))
    close(again(X, Y), k(X, Y))
    assert again == k and again != gram.RBF(0.3)


@pytest.mark.parametrize("kernel", [gram.RBF(0.8), gram.Matern([0.5, 1.0, 2.0], nu=1.5),
                                    gram.RBF(1.0) + gram.WhiteKernel(0.2), gram.DotProduct(1.0),
                                    "cosine", "polynomial(degree=2, gamma=0.5, coef0=1)", "neg_l1(2)",
                                    "laplacian_l1(lengthscale=[1,2,3])"])
def test_sum_is_matrix_vector_product(kernel):
    k = gram.kernels.as_kernel(kernel)
    X, Y = data(n=300, m=70)
    rng = np.random.default_rng(1)
    w = rng.normal(size=300)
    W = rng.normal(size=(300, 4))
    close(k.sum(X, Y, w), k(Y, X) @ w, 1e-11)
    close(k.sum(X, Y, W), k(Y, X) @ W, 1e-11)
    close(k.sum(X, Y), k(Y, X).sum(1), 1e-11)
    close(k.sum(X, weights=w), k(X) @ w, 1e-11)  # Y = None: the symmetric call (white noise counts)
    close(gram.kernel_sum(X, Y, w, kernel=k), k(Y, X) @ w, 1e-11)
    assert k.sum(X, Y, w).shape == (70,) and k.sum(X, Y, W).shape == (70, 4)


@pytest.mark.parametrize("kernel", [gram.RBF(0.3), gram.Matern(0.5, nu=2.5), "epanechnikov(lengthscale=1.5)"])
def test_log_sum(kernel):
    k = gram.kernels.as_kernel(kernel)
    X, Y = data(n=200, m=50, d=4)
    w = np.random.default_rng(2).random(200)
    K = k(Y, X)
    with np.errstate(divide="ignore"):
        want = logsumexp(np.log(K) + np.log(w), axis=1)
    close(k.sum(X, Y, w, log=True), want, 1e-11)
    # Far away, every term underflows; the log-sum is still exact.
    far = Y + 60.0
    got = gram.RBF(0.3).sum(X, far, w, log=True)
    d2 = ((far[:, None, :] - X[None]) ** 2).sum(-1)
    close(got, logsumexp(-d2 / (2 * 0.09) + np.log(w), axis=1), 1e-12)
    assert np.all(np.isfinite(got))


def test_log_sum_domain():
    X, Y = data()
    with pytest.raises(ValueError):
        gram.DotProduct().sum(X, Y, log=True)
    with pytest.raises(ValueError, match="negative|>= 0|≥ 0"):
        gram.RBF().sum(X, Y, -np.ones(len(X)), log=True)


def test_float32():
    X, Y = data(n=500, m=100, d=5)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    k = gram.RBF(1.5)
    s32 = k.sum(X32, Y32)
    assert s32.dtype == np.float32
    close(s32, k.sum(X32.astype(np.float64), Y32.astype(np.float64)), 1e-6)
    assert k.sum(X32, Y).dtype == np.float64  # mixed: float64
    assert k.sum(X32, Y32, dtype=np.float64).dtype == np.float64
    assert k.sum(X, Y, dtype="float32").dtype == np.float32
    assert gram.pairwise_kernels(X32, Y32).dtype == np.float32
    with pytest.raises(ValueError):
        k.sum(X, Y, dtype=np.float16)


def test_threads_bit_identical():
    X, Y = data(n=3000, m=500, d=3)
    w = np.random.default_rng(0).random(3000)
    ref = gram.kernel_sum(X, Y, w, kernel="matern32(0.5)", threads=1)
    for t in (2, 3, 0, None):
        np.testing.assert_array_equal(gram.kernel_sum(X, Y, w, kernel="matern32(0.5)", threads=t), ref)


def test_default_kernel_is_rbf1():
    X, Y = data()
    close(gram.kernel_sum(X, Y), sk.RBF(1.0)(Y, X).sum(1))
    close(gram.pairwise_kernels(X, Y), sk.RBF(1.0)(X, Y))
    close(gram.pairwise_kernels(X), sk.RBF(1.0)(X))


# ---- bad input ------------------------------------------------------------------------------------


def test_bad_input_like_sklearn_pairwise():
    X, Y = data()
    nan = X.copy()
    nan[3, 1] = np.nan
    cases = [
        (X[:, 0], Y), (X.reshape(3, 20, 3), Y), (X, Y[:, :2]), (nan, Y), (X, nan),
        (np.empty((0, 3)), Y), (X, np.empty((0, 3))), (np.empty((4, 0)), np.empty((4, 0))),
        (X + 1j, Y), (np.array([["a"]]), np.array([["b"]])),
    ]
    for A, B in cases:
        with pytest.raises(Exception) as ref:
            sk_pairwise(A, B, metric="rbf")
        with pytest.raises(Exception) as got:
            gram.pairwise_kernels(A, B)
        assert type(got.value) is type(ref.value) or isinstance(got.value, type(ref.value)), (ref.value, got.value)
        with pytest.raises(type(got.value)):
            gram.kernel_sum(B, A)


def test_nan_message_names_array_and_position():
    X, Y = data()
    Y2 = Y.copy()
    Y2[5, 2] = np.inf
    with pytest.raises(ValueError, match=r"Y: row 5, column 2 is \+Inf"):
        gram.pairwise_kernels(X, Y2)
    with pytest.raises(ValueError, match=r"Y: row 5, column 2 is \+Inf"):
        gram.kernel_sum(X, Y2)
    X2 = X.copy()
    X2[7, 0] = np.nan
    with pytest.raises(ValueError, match=r"X: row 7, column 0 is NaN"):
        gram.pairwise_kernels(X2, Y)
    with pytest.raises(ValueError, match=r"X: row 7, column 0 is NaN"):
        gram.kernel_sum(X2, Y)
    with pytest.raises(ValueError, match="weights"):
        gram.kernel_sum(X, Y, np.full(len(X), np.nan))


def test_bad_weights():
    X, Y = data()
    for w in [np.ones(len(X) + 1), np.ones((len(X), 2, 2)), np.ones((3, 1)), "abc"]:
        with pytest.raises(ValueError):
            gram.kernel_sum(X, Y, w)
    with pytest.raises(TypeError):
        gram.kernel_sum(X, Y, [{"a": 1}] * len(X))


def test_lists_and_integers_accepted():
    X, Y = data()
    Xi = np.round(X * 3).astype(np.int32)
    close(gram.kernel_sum(X.tolist(), Y.tolist(), list(range(len(X)))), gram.kernel_sum(X, Y, np.arange(len(X))))
    close(gram.kernel_sum(Xi, Y), gram.kernel_sum(Xi.astype(float), Y))
    close(gram.pairwise_kernels(Xi), sk.RBF(1.0)(Xi.astype(float)))
    close(gram.RBF().diag(X.tolist()), np.ones(len(X)))
    close(gram.kernel_sum(X.astype(np.float16), Y), gram.kernel_sum(X.astype(np.float16).astype(float), Y))
