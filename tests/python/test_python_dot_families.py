"""gram's softmax and arc-cosine families through the Python package, against NumPy/SciPy
computed in the test: softmax exp((x/ℓ)·(y/ℓ)) and its log-sum where every value overflows
(scipy.special.logsumexp of the dot products), the arc-cosine kernel of degrees 0, 1, 2 (Cho & Saul
2009, its closed form), their lengthscale gradients against central differences of the values,
and the scikit-learn Kernel protocol's view of them (not stationary).
"""
import numpy as np
import pytest
from conftest import matrix_grad as _matrix_grad

import gram

scipy_special = pytest.importorskip("scipy.special")


def arccos_ref(Y, X, n, ell=1.0):
    Ys, Xs = Y / ell, X / ell
    ny, nx = np.linalg.norm(Ys, axis=1)[:, None], np.linalg.norm(Xs, axis=1)[None, :]
    c = np.clip(Ys @ Xs.T / (ny * nx), -1, 1)
    th = np.arccos(c)
    J = [np.pi - th, np.sin(th) + (np.pi - th) * c, 3 * np.sin(th) * c + (np.pi - th) * (1 + 2 * c * c)][n]
    return (ny * nx) ** n * J / np.pi




def test_softmax_values():
    rng = np.random.default_rng(11)
    X, Y = rng.normal(size=(50, 5)), rng.normal(size=(8, 5))
    for ell in (1.0, 0.7, 5 ** 0.25):
        got = gram.pairwise_kernels(Y, X, kernel=f"softmax({ell!r})")
        np.testing.assert_allclose(got, np.exp(Y @ X.T / ell ** 2), rtol=1e-13)
    ls = np.array([0.5, 1.0, 2.0, 0.8, 1.3])
    got = gram.pairwise_kernels(Y, X, kernel=f"softmax(lengthscale={ls.tolist()!r})")
    np.testing.assert_allclose(got, np.exp((Y / ls) @ (X / ls).T), rtol=1e-13)


def test_softmax_logsum_where_values_overflow():
    """Dot products of 1e3..1e5: every exp(s) overflows, the log-sum is logsumexp(s) exactly."""
    rng = np.random.default_rng(12)
    X, Y = rng.uniform(10, 300, size=(30, 2)), rng.uniform(10, 300, size=(4, 2))
    W = rng.uniform(0.1, 2, size=(30, 2))
    got = gram.kernel_sum(X, Y, kernel="softmax", weights=W, log=True)
    s = Y @ X.T
    want = np.stack([scipy_special.logsumexp(s + np.log(W[:, v])[None, :], axis=1) for v in range(2)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert np.all(np.isinf(gram.kernel_sum(X, Y, kernel="softmax")))  # exp(s) > DBL_MAX is +inf


@pytest.mark.parametrize("n", [0, 1, 2])
def test_arccos_values(n):
    rng = np.random.default_rng(13 + n)
    X, Y = rng.normal(size=(40, 4)), rng.normal(size=(9, 4))
    got = gram.pairwise_kernels(Y, X, kernel=f"arccos(1.3, degree={n})")
    # atol: the closed forms cancel near θ = π (J_2 ~ 4(π - θ)⁵/15), in this reference, not in gram
    np.testing.assert_allclose(got, arccos_ref(Y, X, n, 1.3), rtol=1e-12, atol=1e-13)
    # a zero vector: 1/2 for n = 0, 0 otherwise (gram.h)
    z = gram.pairwise_kernels(np.zeros((1, 4)), X, kernel=f"arccos(degree={n})")
    np.testing.assert_array_equal(z, 0.5 if n == 0 else 0.0)


@pytest.mark.parametrize("spec", ["softmax(lengthscale=[0.8, 1.5, 1.1])", "arccos(lengthscale=[0.8, 1.5, 1.1], degree=0)",
                                  "arccos(lengthscale=[0.8, 1.5, 1.1], degree=1)", "arccos(1.4, degree=2)"])
def test_gradients_against_differences(spec):
    """∂K/∂log ℓ_d against central differences of the values (step 1e-5 in log ℓ: error ~1e-10)."""
    rng = np.random.default_rng(14)
    X = rng.normal(size=(10, 3)) * 0.7
    K, G = _matrix_grad(spec, X)
    k = gram.Kernel(spec)
    theta = k.theta
    for p in range(len(theta)):
        h = 1e-5
        tp, tm = theta.copy(), theta.copy()
        tp[p] += h
        tm[p] -= h
        Kp, Km = k.clone_with_theta(tp)(X), k.clone_with_theta(tm)(X)
        fd = (Kp - Km) / (2 * h)
        if "degree=0" in spec:
            # on the diagonal θ = 0 whatever ℓ (∂K = 0), but the engine's cos θ is 1 only to an ulp,
            # which moves θ by ~1e-8 (gram.h): divided by 2h that is noise, not a derivative
            np.fill_diagonal(fd, 0.0)
        np.testing.assert_allclose(G[..., p], fd, rtol=1e-6, atol=1e-9)


def test_protocol():
    for spec in ("softmax", "arccos(degree=2)", "rbf(1) * softmax(2)"):
        assert not gram.Kernel(spec).is_stationary()
    assert gram.Kernel("arccos(degree=2)").theta.shape == (1,)  # degree is not a hyperparameter
    with pytest.raises(ValueError, match="degree must be 0, 1 or 2"):
        gram.pairwise_kernels(np.ones((2, 2)), kernel="arccos(degree=3)")
