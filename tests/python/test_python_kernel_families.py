"""The kernel families and operations added for scikit-learn parity, against the anchors computed
in the test: the Matérn kernel of any ν (scipy.special.kv / gammaln), the sigmoid kernel
(sklearn.metrics.pairwise.sigmoid_kernel), powers of kernels (scikit-learn's Exponentiation), and
the Gram block's gradient tensor in scikit-learn's layout (gram_kernel_matrix_grad, through ctypes).
"""
import numpy as np
import pytest
from conftest import matrix_grad as _matrix_grad

import gram

scipy_special = pytest.importorskip("scipy.special")
sk_kernels = pytest.importorskip("sklearn.gaussian_process.kernels")
sk_pairwise = pytest.importorskip("sklearn.metrics.pairwise")


def matern_ref(nu, r):
    """2^(1-ν)/Γ(ν) z^ν K_ν(z), z = √(2ν) r, in logs (kve = K e^z) so no factor overflows."""
    r = np.asarray(r, dtype=np.float64)
    z = np.sqrt(2.0 * nu) * r
    with np.errstate(divide="ignore"):
        lk = ((1.0 - nu) * np.log(2.0) - scipy_special.gammaln(nu) + nu * np.log(z)
              + np.log(scipy_special.kve(nu, z)) - z)
    return np.where(r == 0, 1.0, np.exp(lk)), np.where(r == 0, 0.0, lk)


def matern_dlogl_ref(nu, r):
    """∂k/∂log ℓ = z² (z/2)^(ν-1) K_(ν-1)(z) / Γ(ν)."""
    z = np.sqrt(2.0 * nu) * np.asarray(r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # z = 0 on the diagonal
        lg = (2 * np.log(z) + (nu - 1) * np.log(z / 2) + np.log(scipy_special.kve(nu - 1, z)) - z
              - scipy_special.gammaln(nu))
    return np.where(z == 0, 0.0, np.exp(lg))


def _distances(X, Y):
    return np.sqrt(np.maximum(((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1), 0))


@pytest.mark.parametrize("nu", [0.05, 0.3, 0.5 + 1e-10, 0.7, 1.5 + 1e-10, 2.0, 2.5 + 1e-10, 3.3, 17.3, 100.0])
def test_matern_values_against_scipy(nu):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(60, 3)), rng.normal(size=(7, 3))
    K = gram.pairwise_kernels(Y, X, kernel=f"matern(nu={nu!r}, lengthscale=0.8)")
    want, _ = matern_ref(nu, _distances(X, Y) / 0.8)
    np.testing.assert_allclose(K, want, rtol=2e-13, atol=0)
    # the diagonal of a symmetric call is exactly 1
    np.testing.assert_array_equal(np.diag(gram.pairwise_kernels(X, kernel=f"matern(nu={nu!r})")), 1.0)


@pytest.mark.parametrize("nu", [0.3, 1.7, 7.5, 40.2])
def test_matern_log_sum_where_values_underflow(nu):
    X = np.array([[1500.0], [2000.0], [1e5]])
    y = np.zeros((1, 1))
    got = gram.kernel_sum(X, y, kernel=f"matern(nu={nu!r})", log=True)
    _, lk = matern_ref(nu, X[:, 0])
    m = lk.max()
    np.testing.assert_allclose(got, m + np.log(np.exp(lk - m).sum()), rtol=1e-13)
    assert np.all(gram.kernel_sum(X, y, kernel=f"matern(nu={nu!r})") == 0)  # every value underflows


@pytest.mark.parametrize("nu", [0.4, 1.2, 3.3, 12.0])
def test_matern_gradient_against_scipy(nu):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(25, 2))
    spec = f"matern(nu={nu!r}, lengthscale=[0.7, 1.6])"
    K, G = _matrix_grad(spec, X)
    Z = (X[:, None, :] - X[None, :, :]) / np.array([0.7, 1.6])
    t = (Z ** 2).sum(-1)
    g = matern_dlogl_ref(nu, np.sqrt(t))
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(t[..., None] > 0, g[..., None] * Z ** 2 / t[..., None], 0.0)
    np.testing.assert_allclose(G, want, rtol=1e-12, atol=1e-15)


def test_matern_is_sklearn_matern():
    """scikit-learn's general-ν Matern (its own formula with scipy's kv) on its test data."""
    rng = np.random.RandomState(0)
    X = rng.normal(0, 1, (5, 2))
    for nu in (0.7, 1.5 + 1e-10, 3.1):
        want = sk_kernels.Matern(length_scale=[0.5, 2.0], nu=nu)(X)
        got = gram.pairwise_kernels(X, kernel=f"matern(nu={nu!r}, lengthscale=[0.5, 2.0])")
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_sigmoid_against_sklearn():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(40, 4)), rng.normal(size=(9, 4))
    for gamma, coef0 in [(0.25, 1.0), (0.7, -0.5), (1.3, 0.0)]:
        got = gram.pairwise_kernels(Y, X, kernel=f"sigmoid(gamma={gamma!r}, coef0={coef0!r})")
        np.testing.assert_allclose(got, sk_pairwise.sigmoid_kernel(Y, X, gamma=gamma, coef0=coef0),
                                   rtol=1e-14, atol=1e-15)


def test_sigmoid_gradient():
    """d/dlog gamma, d/dlog coef0 and d/dlog lengthscale of tanh(γ (x/ℓ)·(y/ℓ) + c0)."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(12, 3))
    g, c, ell = 0.6, 0.4, 1.3
    K, G = _matrix_grad(f"sigmoid(lengthscale={ell!r}, gamma={g!r}, coef0={c!r})", X)
    s = X @ X.T / ell ** 2
    d = 1 / np.cosh(g * s + c) ** 2
    np.testing.assert_allclose(K, np.tanh(g * s + c), rtol=1e-14)
    np.testing.assert_allclose(G[..., 0], d * g * -2 * s, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(G[..., 1], d * g * s, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(G[..., 2], d * c, rtol=1e-12, atol=1e-15)


def test_power_is_sklearn_exponentiation():
    """DotProduct(sigma_0=2) ** 2 and RationalQuadratic ** 1.7: values and gradients as scikit-learn's."""
    rng = np.random.RandomState(0)
    X = rng.normal(0, 1, (6, 2))
    for spec, ref in [("linear(sigma0=2)^2", sk_kernels.DotProduct(sigma_0=2.0) ** 2),
                      ("rq(lengthscale=0.9, alpha=1.4)^1.7",
                       sk_kernels.RationalQuadratic(length_scale=0.9, alpha=1.4) ** 1.7)]:
        K, G = _matrix_grad(spec, X)
        Kr, Gr = ref(X, eval_gradient=True)
        np.testing.assert_allclose(K, Kr, rtol=1e-14)
        if spec.startswith("linear"):  # gram's linear has a lengthscale first; scikit-learn's none
            G = G[..., 1:]
        else:  # scikit-learn lists alpha before length_scale
            G = G[..., ::-1]
        np.testing.assert_allclose(G, Gr, rtol=1e-12, atol=1e-14)


def test_power_refusals():
    with pytest.raises(ValueError, match="not an integer"):
        gram.pairwise_kernels(np.ones((2, 1)), kernel="linear^0.5")
    with pytest.raises(ValueError, match="must be > 0"):
        gram.pairwise_kernels(np.ones((2, 1)), kernel="rbf^0")


def test_matrix_grad_layout_is_sklearns():
    """The (M, N, P) tensor in gram_kernel_get_hyper's order, scikit-learn's for a sum with white
    noise (its hyperparameters in the same order here)."""
    rng = np.random.RandomState(5)
    X = rng.normal(size=(8, 2))
    K, G = _matrix_grad("rbf(lengthscale=[0.5, 2]) + white(0.3)", X)
    Kr, Gr = (sk_kernels.RBF([0.5, 2.0]) + sk_kernels.WhiteKernel(0.3))(X, eval_gradient=True)
    np.testing.assert_allclose(K, Kr, rtol=1e-15)
    np.testing.assert_allclose(G, Gr, rtol=1e-13, atol=1e-16)
    assert G.shape == Gr.shape and G.dtype == np.float64


