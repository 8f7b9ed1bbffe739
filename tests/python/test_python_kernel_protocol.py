"""gram's kernels are scikit-learn kernels: the protocol of sklearn.gaussian_process.kernels
(theta, bounds, hyperparameters, get/set_params, clone, eval_gradient, ...) checked against
scikit-learn's own kernels built with the same parameters, computed here; scikit-learn's functions
that take a kernel; the same protocol without scikit-learn (a subprocess where it cannot be
imported).

Run after `python3 -m pip install .`: these tests import the installed package `gram`.
"""
import json
import math
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sklearn
import sklearn.gaussian_process.kernels as sk
from sklearn.base import clone
from sklearn.metrics.pairwise import pairwise_kernels

import gram

RTOL = 1e-12


def data(n=9, m=7, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d))


def close(a, b, rtol=RTOL):
    """Relative error <= rtol, the scale floored at max(1, max |b|) for values near 0."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(np.abs(b).max(initial=0)))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


# (gram kernel, scikit-learn's kernel with the same parameters); built lazily so that a failure
# of one class does not break collection of the others.
def _pairs():
    g, s = gram, sk
    per_dim = [[1e-3, 10.0], [1e-2, 100.0], [0.1, 1e3]]
    return {
        "rbf": (g.RBF(0.7), s.RBF(0.7)),
        "rbf_ard": (g.RBF([0.5, 1.0, 2.0]), s.RBF([0.5, 1.0, 2.0])),
        "rbf_one_element": (g.RBF([2.0]), s.RBF([2.0])),
        "rbf_fixed": (g.RBF(0.33, "fixed"), s.RBF(0.33, "fixed")),
        "rbf_per_dim_bounds": (g.RBF([0.5, 1.0, 2.0], per_dim), s.RBF([0.5, 1.0, 2.0], per_dim)),
        "rbf_outside_bounds": (g.RBF(50.0, (1.0, 10.0)), s.RBF(50.0, (1.0, 10.0))),
        "rbf_open_bounds": (g.RBF(2.0, (0.0, np.inf)), s.RBF(2.0, (0.0, np.inf))),
        "matern12": (g.Matern(0.8, nu=0.5), s.Matern(0.8, nu=0.5)),
        "matern32_ard": (g.Matern([0.5, 1.5, 1.0], nu=1.5), s.Matern([0.5, 1.5, 1.0], nu=1.5)),
        "matern52": (g.Matern(1.3, nu=2.5), s.Matern(1.3, nu=2.5)),
        "matern_inf": (g.Matern(1.3, nu=np.inf), s.Matern(1.3, nu=np.inf)),
        "rq": (g.RationalQuadratic(0.9, alpha=0.5), s.RationalQuadratic(0.9, alpha=0.5)),
        "rq_alpha_fixed": (g.RationalQuadratic(0.9, 0.5, alpha_bounds="fixed"),
                           s.RationalQuadratic(0.9, 0.5, alpha_bounds="fixed")),
        "ess": (g.ExpSineSquared(1.2, periodicity=2.5), s.ExpSineSquared(1.2, periodicity=2.5)),
        "dot": (g.DotProduct(0.5), s.DotProduct(0.5)),
        "dot_zero": (g.DotProduct(0.0), s.DotProduct(0.0)),
        "white": (g.WhiteKernel(0.3), s.WhiteKernel(0.3)),
        "constant": (g.ConstantKernel(2.5), s.ConstantKernel(2.5)),
        "constant_bounded": (g.ConstantKernel(2.5, (0.1, 10.0)), s.ConstantKernel(2.5, (0.1, 10.0))),
        "sum_white": (g.RBF(1.0) + g.WhiteKernel(0.1), s.RBF(1.0) + s.WhiteKernel(0.1)),
        "scaled": (2.0 * g.Matern(0.5, nu=2.5), 2.0 * s.Matern(0.5, nu=2.5)),
        "product_sum": (g.RBF(0.5) * g.ExpSineSquared(1.0, 3.0) + 0.5,
                        s.RBF(0.5) * s.ExpSineSquared(1.0, 3.0) + 0.5),
        "products": (g.ConstantKernel(0.7) * g.RBF(2.0) * g.ConstantKernel(3.0, (1e-2, 1e2)),
                     s.ConstantKernel(0.7) * s.RBF(2.0) * s.ConstantKernel(3.0, (1e-2, 1e2))),
        "dot_product_rq": (g.DotProduct(1.0) * g.DotProduct(0.5) + g.RationalQuadratic(2.0, 3.0),
                           s.DotProduct(1.0) * s.DotProduct(0.5) + s.RationalQuadratic(2.0, 3.0)),
        "pow_dot": (g.DotProduct(2.0) ** 2, s.DotProduct(2.0) ** 2),
        "pow_rbf": (g.Exponentiation(g.RBF([1.0, 2.0, 0.5]) + g.WhiteKernel(0.2), 0.5),
                    s.Exponentiation(s.RBF([1.0, 2.0, 0.5]) + s.WhiteKernel(0.2), 0.5)),
        "pow_scaled": (1.5 * g.RationalQuadratic(1.0, 2.0) ** 3.0, 1.5 * s.RationalQuadratic(1.0, 2.0) ** 3.0),
    }


PAIRS = _pairs()
# scikit-learn's PairwiseKernel differentiates numerically: its gradient is checked against the
# closed form below instead.
PAIRWISE = {
    "linear": {}, "rbf": {}, "laplacian": {}, "cosine": {},
    "poly": {"degree": 2, "coef0": 0.5}, "polynomial": {}, "sigmoid": {"coef0": 0.3},
}


def test_classes_are_sklearn_classes():
    for name in ("RBF", "Matern", "RationalQuadratic", "ExpSineSquared", "DotProduct", "WhiteKernel",
                 "ConstantKernel", "PairwiseKernel", "KernelOperator", "Sum", "Product",
                 "Exponentiation", "CompoundKernel"):
        assert issubclass(getattr(gram, name), getattr(sk, name)), name
        assert issubclass(getattr(gram, name), sk.Kernel) and issubclass(getattr(gram, name), gram.Kernel)
    assert issubclass(gram.Kernel, sk.Kernel) and isinstance(gram.Kernel("gaussian"), sk.Kernel)
    assert isinstance(gram.RBF() + gram.RBF(), sk.KernelOperator)
    assert gram.Hyperparameter is sk.Hyperparameter
    assert type(gram.RBF().hyperparameter_length_scale) is sk.Hyperparameter
    # the classes are those of gram.kernels (pickles name that module)
    assert gram.RBF.__module__ == "gram.kernels" and gram.kernels.RBF is gram.RBF


@pytest.mark.parametrize("name", list(PAIRS))
def test_protocol_like_sklearn(name):
    g, s = PAIRS[name]
    g, s = clone(g), clone(s)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(g.theta, s.theta)
        np.testing.assert_array_equal(g.bounds, s.bounds)
    assert g.bounds.shape == s.bounds.shape and g.n_dims == s.n_dims
    assert len(g.hyperparameters) == len(s.hyperparameters)
    for a, b in zip(g.hyperparameters, s.hyperparameters):
        assert type(a) is type(b) and a == b, (a, b)
    ga, sa = [a for a in dir(g) if a.startswith("hyperparameter_") and a != "hyperparameter_names"], \
        [a for a in dir(s) if a.startswith("hyperparameter_")]
    assert ga == sa
    gp, sp = g.get_params(), s.get_params()
    assert sorted(gp) == sorted(sp)
    for key in gp:
        if not isinstance(sp[key], sk.Kernel):
            np.testing.assert_array_equal(gp[key], sp[key], err_msg=key)
    assert repr(g) == repr(s)
    assert g.is_stationary() == s.is_stationary()
    assert g.requires_vector_input == s.requires_vector_input
    assert getattr(g, "anisotropic", None) == getattr(s, "anisotropic", None)
    # clone and clone_with_theta give equal kernels; theta moves the parameters as scikit-learn's
    assert clone(g) == g and clone(g) is not g and g != s
    if g.n_dims:
        theta = np.where(np.isfinite(s.theta), s.theta, 0.0) + 0.3
        g2, s2 = g.clone_with_theta(theta), s.clone_with_theta(theta)
        assert g2.get_params().keys() == s2.get_params().keys()
        X, _ = data()
        close(g2(X), s2(X))
        np.testing.assert_array_equal(g2.theta, s2.theta)
        with pytest.raises(ValueError, match="theta has not the correct number of entries"):
            g.theta = np.zeros(g.n_dims + 1)


@pytest.mark.parametrize("name", list(PAIRS))
def test_values_and_gradient_like_sklearn(name):
    g, s = PAIRS[name]
    X, Y = data()
    close(g(X), s(X))
    close(g(X, Y), s(X, Y))
    close(g(Y, X), s(Y, X))
    close(g.diag(X), s.diag(X))
    K, G = g(X, eval_gradient=True)
    Ks, Gs = s(X, eval_gradient=True)
    assert K.dtype == np.float64 and G.dtype == np.float64 and G.shape == Gs.shape
    close(K, Ks)
    close(G, Gs)
    with pytest.raises(ValueError, match="Gradient can only be evaluated when Y is None."):
        g(X, Y, eval_gradient=True)


def test_fixed_hyperparameters_leave_theta_and_gradient():
    # scikit-learn's rule (its test_kernel_theta): fixing one hyperparameter removes exactly its
    # entry of theta and its slice of the gradient
    X, _ = data()
    full = gram.RationalQuadratic(0.9, 0.5) * gram.ExpSineSquared(1.2, 2.5)
    K, G = full(X, eval_gradient=True)
    for i, key in enumerate(["k1__alpha_bounds", "k1__length_scale_bounds", "k2__length_scale_bounds",
                             "k2__periodicity_bounds"]):
        k = clone(full).set_params(**{key: "fixed"})
        K2, G2 = k(X, eval_gradient=True)
        np.testing.assert_array_equal(K2, K)
        np.testing.assert_array_equal(np.delete(G, i, axis=2), G2)
        np.testing.assert_array_equal(np.delete(full.theta, i), k.theta)


def _pairwise_reference(metric, gamma, kw, X, Y):
    """K and dK/dlog(gamma) in long double, from the closed forms."""
    Xl, Yl = X.astype(np.longdouble), Y.astype(np.longdouble)
    dot = Xl @ Yl.T
    if metric == "linear":
        return dot, 0 * dot
    if metric == "cosine":
        nx, ny = np.sqrt((Xl * Xl).sum(1)), np.sqrt((Yl * Yl).sum(1))
        return dot / np.outer(nx, ny), 0 * dot
    if metric == "rbf":
        d2 = ((Xl[:, None, :] - Yl[None]) ** 2).sum(-1)
        K = np.exp(-gamma * d2)
        return K, -gamma * d2 * K
    if metric == "laplacian":
        d1 = np.abs(Xl[:, None, :] - Yl[None]).sum(-1)
        K = np.exp(-gamma * d1)
        return K, -gamma * d1 * K
    c0 = np.longdouble(kw.get("coef0", 1))
    if metric in ("poly", "polynomial"):
        p = kw.get("degree", 3)
        return (gamma * dot + c0) ** p, p * gamma * dot * (gamma * dot + c0) ** (p - 1)
    t = np.tanh(gamma * dot + c0)  # sigmoid
    return t, gamma * dot * (1 - t * t)


@pytest.mark.parametrize("metric", list(PAIRWISE))
def test_pairwise_kernel(metric):
    kw = PAIRWISE[metric]
    X, Y = data()
    gamma = 0.3
    g = gram.PairwiseKernel(gamma=gamma, metric=metric, pairwise_kernels_kwargs=kw or None)
    s = sk.PairwiseKernel(gamma=gamma, metric=metric, pairwise_kernels_kwargs=kw or None)
    close(g(X), s(X))
    close(g(X, Y), s(X, Y))
    close(g.diag(X), s.diag(X))
    np.testing.assert_array_equal(g.theta, s.theta)
    np.testing.assert_array_equal(g.bounds, s.bounds)
    assert g.hyperparameters == s.hyperparameters and repr(g) == repr(s)
    assert g.is_stationary() == s.is_stationary()
    # the gradient in log(gamma), analytic (scikit-learn's is a finite difference); with Y too,
    # as scikit-learn's PairwiseKernel allows
    for A, B in [(X, None), (X, Y)]:
        K, G = g(A, B, eval_gradient=True)
        Kref, Gref = _pairwise_reference(metric, np.longdouble(gamma), kw, A, A if B is None else B)
        close(K, Kref.astype(float))
        close(G[..., 0], Gref.astype(float))
        Ks, Gs = s(A, B, eval_gradient=True)
        assert G.shape == Gs.shape
        close(G, Gs, rtol=1e-4)
    # bounds map to gram's parameterisation and back: learning in C gives gamma again
    b = gram.PairwiseKernel(gamma=2.0, gamma_bounds=(0.5, 8.0), metric=metric, pairwise_kernels_kwargs=kw or None)
    np.testing.assert_allclose(b._theta_to_c(np.log([4.0]))[[c for c, *_ in b._links()]],
                               [np.log(1 / np.sqrt(8.0)) if metric == "rbf" else
                                -np.log(4.0) if metric == "laplacian" else np.log(4.0)] if b._links() else [])


def test_c_theta_round_trip():
    # what the regressors use: theta -> the C kernel's full vector (_theta_to_c) -> parameters
    # again (_assign, after a search in C), and a C gradient -> one in theta (_grad_to_theta)
    X, _ = data()
    kernels = [g for g, _ in PAIRS.values()] + [
        gram.PairwiseKernel(0.7, metric="rbf") + gram.PairwiseKernel(1.5, (0.1, 10.0), metric="laplacian"),
        gram.Sum(sk.RBF(0.5), gram.Kernel("periodic(lengthscale=1, period=2)"))]
    for k in kernels:
        k = clone(k)
        theta = np.where(np.isfinite(k.theta), k.theta, 0.0) + 0.25
        c = k._theta_to_c(theta)
        back = clone(k)
        back._assign(c)
        finite = np.isfinite(k.theta)
        np.testing.assert_allclose(back.theta[finite], theta[finite], rtol=0, atol=1e-14)
        np.testing.assert_array_equal(back.theta[~finite], k.theta[~finite])  # no C parameter: kept
        close(back(X), k.clone_with_theta(np.where(finite, theta, k.theta))(X))
        K, G = k(X, eval_gradient=True)
        from gram.kernels import _matrix_grad
        _, Gc = _matrix_grad(k, X, None)
        np.testing.assert_array_equal(k._grad_to_theta(Gc), G)


def _matern_reference(nu, ls, X):
    """The general Matérn kernel and its gradient in log(length_scale) (one per feature), from
    the closed forms with SciPy's Bessel function: with z = sqrt(2 nu) r, k = c z^nu K_nu(z),
    c = 2^(1-nu)/Gamma(nu), and dk/dlog(l_d) = c z^(nu+1) K_(nu-1)(z) (dx_d/l_d)^2 / r^2."""
    from scipy.special import gamma, kv
    diff = (X[:, None, :] - X[None]) / ls
    r2 = (diff ** 2).sum(-1)
    z = np.sqrt(2 * nu * r2)
    c = 2 ** (1 - nu) / gamma(nu)
    with np.errstate(invalid="ignore", divide="ignore"):
        K = np.where(z > 0, c * z ** nu * kv(nu, z), 1.0)
        dz = np.where(z > 0, c * z ** (nu + 1) * kv(nu - 1, z) / r2, 0.0)
    return K, dz[..., None] * diff ** 2


@pytest.mark.parametrize("nu", [0.7, 1.5 + 1e-9, 3.3])
@pytest.mark.parametrize("ls", [0.8, [0.5, 2.0, 1.2]])
def test_general_matern(nu, ls):
    X, Y = data()
    g, s = gram.Matern(ls, nu=nu), sk.Matern(ls, nu=nu)
    close(g(X), s(X))
    close(g(X, Y), s(X, Y))
    np.testing.assert_array_equal(g.theta, s.theta)
    assert g.hyperparameters == s.hyperparameters and repr(g) == repr(s)
    K, G = g(X, eval_gradient=True)
    Kref, Gref = _matern_reference(nu, np.asarray(ls), X)
    close(K, Kref)
    close(G, Gref if np.ndim(ls) else Gref.sum(-1, keepdims=True))
    close(G, s(X, eval_gradient=True)[1], rtol=1e-4)  # scikit-learn's finite difference


def test_matern_closed_forms_and_general_family_agree():
    X, _ = data()
    for nu, fam in [(0.5, "matern12"), (1.5, "matern32"), (2.5, "matern52"), (np.inf, "gaussian")]:
        assert gram.Matern(0.9, nu=nu).spec.startswith(fam + "(")
        if np.isfinite(nu):
            close(gram.Matern(0.9, nu=nu + 1e-12)(X), gram.Matern(0.9, nu=nu)(X), rtol=1e-9)
    with pytest.raises(ValueError, match="nu must be > 0"):
        gram.Matern(nu=0.0)(X)


def test_pairwise_kernel_refusals():
    X, _ = data()
    for metric in ("chi2", "additive_chi2"):
        with pytest.raises(ValueError, match=metric):
            gram.PairwiseKernel(metric=metric)(X)
    with pytest.raises(ValueError, match="callable"):
        gram.PairwiseKernel(metric=lambda a, b: a @ b)(X)
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        gram.PairwiseKernel(metric="nope")(X)
    with pytest.raises(ValueError, match="integer degree"):
        gram.PairwiseKernel(metric="poly", pairwise_kernels_kwargs={"degree": 2.5})(X)
    with pytest.raises(TypeError, match="multiple values for keyword argument 'gamma'"):
        gram.PairwiseKernel(metric="rbf", pairwise_kernels_kwargs={"gamma": 2})(X)
    # keys a metric does not take are ignored, as scikit-learn's filter_params=True
    close(gram.PairwiseKernel(metric="rbf", pairwise_kernels_kwargs={"degree": 7})(X),
          sk.PairwiseKernel(metric="rbf", pairwise_kernels_kwargs={"degree": 7})(X))


def test_compound_kernel():
    X, Y = data()
    parts = [gram.WhiteKernel(3.0), gram.RBF(2.0)]
    g = gram.CompoundKernel(parts)
    s = sk.CompoundKernel([sk.WhiteKernel(3.0), sk.RBF(2.0)])
    close(g(X), s(X))
    close(g(X, Y), s(X, Y))
    close(g.diag(X), s.diag(X))
    K, G = g(X, eval_gradient=True)
    Ks, Gs = s(X, eval_gradient=True)
    close(K, Ks)
    close(G, Gs)
    np.testing.assert_array_equal(g.theta, s.theta)
    np.testing.assert_array_equal(g.bounds, s.bounds)
    assert g.hyperparameters == s.hyperparameters == []
    assert repr(g) == repr(s) and g.get_params().keys() == s.get_params().keys()
    assert not gram.CompoundKernel([gram.WhiteKernel()]).requires_vector_input and g.requires_vector_input
    assert g.is_stationary() and clone(g) == g
    g.theta = np.log([5.0, 0.5])
    assert g.kernels[0].noise_level == pytest.approx(5.0) and g.kernels[1].length_scale == pytest.approx(0.5)
    with pytest.raises(ValueError, match="CompoundKernel"):
        g.sum(X)


def test_exponentiation():
    X, _ = data()
    k = gram.RBF(1.5) ** 2
    assert type(k) is gram.Exponentiation and k.kernel == gram.RBF(1.5) and k.exponent == 2
    close(k(X), gram.RBF(1.5 / np.sqrt(2.0))(X))
    assert k.requires_vector_input and (gram.WhiteKernel() ** 2).requires_vector_input is False
    assert k.hyperparameters[0].name == "kernel__length_scale"
    k.theta = np.log([3.0])
    assert k.kernel.length_scale == pytest.approx(3.0)
    with pytest.raises(ValueError, match="exponent|> 0"):
        (gram.RBF() ** -1.0)(X)


def test_isotropic_only_kernels_refuse_like_sklearn():
    X, _ = data(d=2)
    msg = "RationalQuadratic kernel only supports isotropic version, please use a single scalar for length_scale"
    with pytest.raises(AttributeError, match=msg):
        sk.RationalQuadratic(length_scale=[1.0, 1.0])(X)
    with pytest.raises(AttributeError, match=msg):
        gram.RationalQuadratic(length_scale=[1.0, 1.0])(X)
    with pytest.raises(AttributeError, match="ExpSineSquared kernel only supports isotropic"):
        gram.ExpSineSquared(length_scale=[1.0, 1.0])(X)
    # a length scale per feature must match the features (scikit-learn's message)
    with pytest.raises(ValueError, match=r"Anisotropic kernel must have the same number of dimensions as data \(3!=2\)"):
        gram.RBF([1.0, 2.0, 3.0])(X)


def test_generic_kernels_take_any_sequence():
    # WhiteKernel and ConstantKernel read only the number of samples (requires_vector_input False)
    seqs = ["ab", "cde", "f"]
    for g, s in [(gram.WhiteKernel(0.5), sk.WhiteKernel(0.5)), (gram.ConstantKernel(2.0), sk.ConstantKernel(2.0)),
                 (gram.ConstantKernel(2.0) + gram.WhiteKernel(0.5), sk.ConstantKernel(2.0) + sk.WhiteKernel(0.5))]:
        close(g(seqs), s(seqs))
        close(g(seqs, seqs[:2]), s(seqs, seqs[:2]))
        close(g.diag(seqs), s.diag(seqs))
        K, G = g(seqs, eval_gradient=True)
        close(G, s(seqs, eval_gradient=True)[1])
    # scikit-learn's dtypes: that of the value
    assert gram.ConstantKernel(3)(seqs).dtype == sk.ConstantKernel(3)(seqs).dtype
    assert gram.WhiteKernel(2).diag(seqs).dtype == sk.WhiteKernel(2).diag(seqs).dtype


def test_set_params_and_theta_rebuild_the_c_kernel():
    X, _ = data()
    k = gram.RBF(1.0) + gram.WhiteKernel(0.5)
    k.set_params(k1__length_scale=0.3)
    close(k(X), (sk.RBF(0.3) + sk.WhiteKernel(0.5))(X))
    k.theta = np.log([2.0, 0.1])
    assert k.k1.length_scale == pytest.approx(2.0) and k.k2.noise_level == pytest.approx(0.1)
    close(k(X), (sk.RBF(2.0) + sk.WhiteKernel(0.1))(X))
    with pytest.raises(ValueError, match="Invalid parameter nope for kernel"):
        k.set_params(nope=1)
    # a scikit-learn kernel inside a gram operator is read as it is
    mixed = gram.Sum(sk.RBF(0.5), gram.WhiteKernel(0.2))
    close(mixed(X), (sk.RBF(0.5) + sk.WhiteKernel(0.2))(X))
    np.testing.assert_array_equal(mixed.theta, np.log([0.5, 0.2]))


def test_pickle_and_deepcopy():
    import copy
    X, _ = data()
    for name, (g, _) in PAIRS.items():
        for h in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g)):
            assert type(h) is type(g) and h == g, name
            np.testing.assert_array_equal(h(X), g(X))
    k = gram.PairwiseKernel(gamma=0.5, metric="rbf")
    assert pickle.loads(pickle.dumps(k)) == k


def test_sklearn_functions_take_gram_kernels():
    X, Y = data()
    for g, s in PAIRS.values():
        close(pairwise_kernels(X, metric=g), s(X, X))  # k(X, X): no white noise, as scikit-learn's
        close(pairwise_kernels(X, Y, metric=g), s(X, Y))
    # scikit-learn's own regressor with a gram kernel: fit uses the gradient, predict the values
    from sklearn.gaussian_process import GaussianProcessRegressor
    y = np.sin(X).sum(1)
    ours = GaussianProcessRegressor(gram.ConstantKernel(1.0) * gram.RBF(1.0) + gram.WhiteKernel(1e-2),
                                    random_state=0).fit(X, y)
    ref = GaussianProcessRegressor(sk.ConstantKernel(1.0) * sk.RBF(1.0) + sk.WhiteKernel(1e-2),
                                   random_state=0).fit(X, y)
    np.testing.assert_allclose(ours.kernel_.theta, ref.kernel_.theta, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.predict(Y), ref.predict(Y), rtol=1e-6, atol=1e-8)


def test_check_estimator_with_a_gram_kernel():
    from sklearn.utils.estimator_checks import check_estimator
    check_estimator(gram.GaussianProcessRegressor(kernel=gram.ConstantKernel(1.0) * gram.RBF(1.0)))


def test_kernels_are_unhashable_like_sklearns():
    # scikit-learn's kernels define __eq__ and are mutable, so they are unhashable; gram keeps that
    with pytest.raises(TypeError):
        hash(sk.RBF())
    for g, _ in PAIRS.values():
        with pytest.raises(TypeError):
            hash(g)


def test_embedded_nul_in_a_spec_is_refused():
    X, _ = data()
    with pytest.raises(ValueError, match="NUL"):
        gram.Kernel("gaussian(1)\0 + white(5)")(X)


def test_spec_kernel_protocol():
    X, _ = data(d=2)
    k = gram.Kernel("2*matern52(lengthscale=[1,2]) + white(0.1, noise_bounds=fixed)")
    assert k.hyperparameter_names == ["leaf1.lengthscale[0]", "leaf1.lengthscale[1]", "scale1"]
    np.testing.assert_allclose(k.theta, np.log([1, 2, 2]))
    assert [h.fixed for h in k.hyperparameters] == [False, False, False, True]
    K, G = k(X, eval_gradient=True)
    ref = 2 * sk.Matern([1, 2], nu=2.5) + sk.WhiteKernel(0.1, "fixed")
    Ks, Gs = ref(X, eval_gradient=True)
    close(K, Ks)
    close(G, Gs[..., [1, 2, 0]])  # gram's order: leaf lengthscales, then the scale
    assert clone(k) == k and k.get_params() == {"spec": k.spec}
    assert not gram.Kernel("linear").is_stationary() and gram.Kernel("rbf + white").is_stationary()


# ---- without scikit-learn -----------------------------------------------------------------------

_NO_SKLEARN = textwrap.dedent("""
    import json, pickle, sys
    sys.modules["sklearn"] = None          # "import sklearn" raises ImportError
    import numpy as np
    import gram
    X = np.random.default_rng(0).normal(size=(6, 2))
    k = gram.ConstantKernel(2.0) * gram.RBF([1.0, 0.5], length_scale_bounds="fixed") + gram.WhiteKernel(0.1)
    K, G = k(X, eval_gradient=True)
    hp = k.hyperparameters
    k2 = pickle.loads(pickle.dumps(k.clone_with_theta(k.theta + 0.5)))
    out = {
        "bases": [c.__module__ for c in type(k).__mro__],
        "hp_type": type(hp[0]).__module__ + "." + type(hp[0]).__name__,
        "hp": [[h.name, h.n_elements, bool(h.fixed)] for h in hp],
        "theta": k.theta.tolist(), "bounds": k.bounds.tolist(), "K": K.tolist(), "G": G.tolist(),
        "theta2": k2.theta.tolist(), "K2": k2(X).tolist(), "repr": repr(k),
        "params": sorted(k.get_params()), "stationary": bool(k.is_stationary()),
        "pow": (gram.RBF(1.0) ** 2)(X).tolist(),
        "pw": gram.PairwiseKernel(gamma=0.5, metric="rbf")(X, eval_gradient=True)[1].tolist(),
        "sklearn_loaded": any(m.startswith("sklearn") for m, v in sys.modules.items() if v is not None),
    }
    print(json.dumps(out))
""")


def test_protocol_without_sklearn():
    r = subprocess.run([sys.executable, "-c", _NO_SKLEARN], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert not out["sklearn_loaded"]
    assert all(not m.startswith("sklearn") for m in out["bases"])
    assert out["hp_type"] == "gram.kernels.Hyperparameter"
    X = np.random.default_rng(0).normal(size=(6, 2))
    s = sk.ConstantKernel(2.0) * sk.RBF([1.0, 0.5], length_scale_bounds="fixed") + sk.WhiteKernel(0.1)
    assert out["hp"] == [[h.name, h.n_elements, bool(h.fixed)] for h in s.hyperparameters]
    np.testing.assert_array_equal(out["theta"], s.theta)
    np.testing.assert_array_equal(out["bounds"], s.bounds)
    Ks, Gs = s(X, eval_gradient=True)
    close(np.array(out["K"]), Ks)
    close(np.array(out["G"]), Gs)
    s2 = s.clone_with_theta(s.theta + 0.5)
    np.testing.assert_array_equal(out["theta2"], s2.theta)
    close(np.array(out["K2"]), s2(X))
    assert out["repr"] == repr(s) and out["params"] == sorted(s.get_params()) and out["stationary"]
    close(np.array(out["pow"]), (sk.RBF(1.0) ** 2)(X))
    d2 = ((X[:, None] - X[None]) ** 2).sum(-1)
    close(np.array(out["pw"])[..., 0], -0.5 * d2 * np.exp(-0.5 * d2))


def test_open_bounds_as_scikit_learn():
    """(-inf, inf) bounds, which scikit-learn accepts (log-bounds NaN and inf), are open sides in
    gram's spec (lower 0, upper inf): accepted, same bounds as scikit-learn's, and learnable."""
    import warnings
    skk = pytest.importorskip("sklearn.gaussian_process.kernels")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(-inf) in both
        k = gram.WhiteKernel(0.1, noise_level_bounds=(-np.inf, np.inf))
        ref = skk.WhiteKernel(0.1, noise_level_bounds=(-np.inf, np.inf))
        np.testing.assert_array_equal(k.bounds, ref.bounds)
        assert "noise_bounds=[0, inf]" in k.spec
        X = np.linspace(0, 1, 15)[:, None]
        np.testing.assert_allclose(k(X), ref(X), rtol=0, atol=0)
        y = np.sin(6 * X[:, 0])
        gp = gram.GaussianProcessRegressor(gram.RBF(0.3) + k).fit(X, y)
        assert np.isfinite(gp.log_marginal_likelihood_value_)
