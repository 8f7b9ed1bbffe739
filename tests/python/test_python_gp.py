"""gram.GaussianProcessRegressor against sklearn.gaussian_process.GaussianProcessRegressor,
computed here.

Run after `python3 -m pip install .`: these tests import the installed package `gram`.

theta order: gram's kernel classes (and scikit-learn kernels translated by gram) list theta in
scikit-learn's order, so those are compared entry by entry; a gram spec kernel lists them in
gram's C order (lengthscale before alpha), mapped here by name.

Accuracy: log marginal likelihoods, gradients, predicted means, standard deviations and
covariances within 1e-9 of scikit-learn's, relative to the largest magnitude compared (the
problems are conditioned so that both libraries are that accurate: noise >= 1e-3 on the diagonal).
"""
import pickle
import warnings

import numpy as np
import pytest
import scipy.optimize
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.gaussian_process import GaussianProcessRegressor as SkGP
from sklearn.gaussian_process import kernels as sk
from sklearn.utils.estimator_checks import check_estimator

import gram

RTOL = 1e-9


def close(got, want, rtol=RTOL, what=""):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(np.abs(want).max(initial=0.0), 1e-300)
    err = np.abs(got - want).max(initial=0.0) / scale
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


def data(n=25, d=2, targets=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    y = np.sin(2 * X[:, 0]) + 0.5 * np.cos(X[:, -1]) + 0.05 * rng.normal(size=n)
    if targets is not None:
        y = np.column_stack([y * (t + 1) + t for t in range(targets)])
    return X, y


# scikit-learn kernels; K + alpha I is conditioned so that both libraries are accurate to ~1e-11
# (alpha = 1e-3, and 0.1 for the low-rank dot product: ALPHA)
KERNELS = {
    "rbf": sk.RBF(0.7),
    "rbf_ard": sk.RBF([0.6, 1.7]),
    "matern05": sk.Matern(0.9, nu=0.5),
    "matern15": sk.Matern(0.8, nu=1.5),
    "matern25": sk.Matern([0.5, 1.3], nu=2.5),
    "rq": sk.RationalQuadratic(length_scale=0.9, alpha=0.6),
    "periodic": sk.ExpSineSquared(length_scale=1.1, periodicity=2.5),
    "dot": sk.DotProduct(sigma_0=0.8),
    "const_rbf": sk.ConstantKernel(2.5) * sk.RBF(0.9),
    "rbf_const": sk.RBF(0.9) * sk.ConstantKernel(0.4),
    "sum_white": sk.ConstantKernel(1.5) * sk.Matern(0.7, nu=2.5) + sk.WhiteKernel(0.05),
    "product": sk.RBF(1.3) * sk.ExpSineSquared(0.9, 3.0),
    "sum": sk.RationalQuadratic(0.5, 1.5) + sk.DotProduct(0.3) * sk.ConstantKernel(0.2),
    "const_bounded": sk.ConstantKernel(0.8, (1e-2, 1e2)) * sk.RBF(0.6, (1e-1, 1e1)),
    "fixed": sk.ConstantKernel(1.2, "fixed") * sk.RBF([0.7, 1.1], "fixed") + sk.WhiteKernel(0.02),
    "partly_fixed": sk.RationalQuadratic(0.8, 0.9, alpha_bounds="fixed") + sk.WhiteKernel(0.1, "fixed"),
    "const_sum": sk.RBF(0.8) + sk.ConstantKernel(0.3),
}
ALPHA = {"dot": 0.1}
# exp(-2 sin²(pi r / p) / l²) of the Euclidean distance r is positive definite in 1-D only
DIMS = {"periodic": 1, "product": 1}


@pytest.mark.parametrize("targets", [None, 2])
@pytest.mark.parametrize("normalize_y", [False, True])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_log_marginal_likelihood_and_gradient(name, normalize_y, targets):
    X, y = data(d=DIMS.get(name, 2), targets=targets)
    kernel, alpha = KERNELS[name], ALPHA.get(name, 1e-3)
    ours = gram.GaussianProcessRegressor(kernel, alpha=alpha, optimizer=None, normalize_y=normalize_y).fit(X, y)
    ref = SkGP(kernel, alpha=alpha, optimizer=None, normalize_y=normalize_y).fit(X, y)
    # theta, bounds and hyperparameters are scikit-learn's, in its order
    np.testing.assert_allclose(ours.kernel_.theta, ref.kernel_.theta, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(ours.kernel_.bounds, ref.kernel_.bounds, rtol=1e-15)
    assert ([h.name for h in ours.kernel_.hyperparameters] == [h.name for h in ref.kernel_.hyperparameters])
    assert [h.fixed for h in ours.kernel_.hyperparameters] == [h.fixed for h in ref.kernel_.hyperparameters]
    assert ours.kernel_.n_dims == ref.kernel_.n_dims
    close(ours.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_, what="lml")
    close(ours.log_marginal_likelihood(), ref.log_marginal_likelihood(), what="lml()")
    rng = np.random.default_rng(1)
    for step in (0.0, 0.3):
        theta = ref.kernel_.theta + step * rng.uniform(-1, 1, size=ref.kernel_.n_dims)
        lml, grad = ours.log_marginal_likelihood(theta, eval_gradient=True)
        lml_ref, grad_ref = ref.log_marginal_likelihood(theta, eval_gradient=True)
        close(lml, lml_ref, what=f"lml at {theta}")
        close(grad, grad_ref, what=f"gradient at {theta}")
        close(ours.log_marginal_likelihood(theta), lml_ref, what="lml without gradient")
        assert grad.shape == (ref.kernel_.n_dims,)


def test_attributes_match_sklearn():
    for targets in (None, 1, 3):
        X, y = data(targets=targets)
        kernel = sk.ConstantKernel(1.3) * sk.RBF(0.8) + sk.WhiteKernel(0.01)
        ours = gram.GaussianProcessRegressor(kernel, optimizer=None, normalize_y=True).fit(X, y)
        ref = SkGP(kernel, optimizer=None, normalize_y=True).fit(X, y)
        for attr in ("X_train_", "y_train_", "alpha_", "L_", "_y_train_mean", "_y_train_std"):
            got, want = getattr(ours, attr), getattr(ref, attr)
            assert np.shape(got) == np.shape(want), attr
            close(got, want, what=attr)
        assert ours.n_features_in_ == 2
    for targets in (None, 2):  # without normalize_y: zeros and ones of scikit-learn's shapes
        X, y = data(targets=targets)
        ours = gram.GaussianProcessRegressor(optimizer=None).fit(X, y)
        ref = SkGP(optimizer=None).fit(X, y)
        for attr in ("_y_train_mean", "_y_train_std"):
            np.testing.assert_array_equal(getattr(ours, attr), getattr(ref, attr))


def test_alpha_per_sample_and_copy_X_train():
    X, y = data()
    alpha = np.linspace(1e-3, 1e-1, len(y))
    kernel = sk.Matern(0.9, nu=1.5)
    ours = gram.GaussianProcessRegressor(kernel, alpha=alpha, optimizer=None).fit(X, y)
    ref = SkGP(kernel, alpha=alpha, optimizer=None).fit(X, y)
    close(ours.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_)
    close(ours.predict(X[:5]), ref.predict(X[:5]))
    ours = gram.GaussianProcessRegressor(kernel, alpha=np.array([0.01]), optimizer=None).fit(X, y)
    ref = SkGP(kernel, alpha=0.01, optimizer=None).fit(X, y)
    close(ours.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_)
    ours = gram.GaussianProcessRegressor(kernel, optimizer=None, copy_X_train=False).fit(X, y)
    assert ours.X_train_ is X
    ours = gram.GaussianProcessRegressor(kernel, optimizer=None).fit(X, y)
    assert ours.X_train_ is not X and np.array_equal(ours.X_train_, X)


@pytest.mark.parametrize("targets", [None, 1, 2])
@pytest.mark.parametrize("normalize_y", [False, True])
def test_predict_matches_sklearn(targets, normalize_y):
    X, y = data(targets=targets)
    Xq = np.random.default_rng(5).uniform(-2.5, 2.5, size=(9, 2))
    for kernel in (sk.ConstantKernel(2.0) * sk.RBF([0.6, 1.4]) + sk.WhiteKernel(0.01),
                   sk.RationalQuadratic(0.7, 0.8) * sk.ConstantKernel(1.7)):
        ours = gram.GaussianProcessRegressor(kernel, alpha=1e-3, optimizer=None, normalize_y=normalize_y).fit(X, y)
        ref = SkGP(kernel, alpha=1e-3, optimizer=None, normalize_y=normalize_y).fit(X, y)
        close(ours.predict(Xq), ref.predict(Xq), what="mean")
        m, s = ours.predict(Xq, return_std=True)
        mr, sr = ref.predict(Xq, return_std=True)
        close(m, mr, what="mean with std")
        close(s, sr, what="std")
        m, c = ours.predict(Xq, return_cov=True)
        mr, cr = ref.predict(Xq, return_cov=True)
        close(m, mr, what="mean with cov")
        close(c, cr, what="cov")
        T = 1 if targets in (None, 1) else targets
        assert m.shape == ((9,) if T == 1 else (9, T))
        assert s.shape == m.shape
        assert c.shape == ((9, 9) if T == 1 else (9, 9, T))
        # at the training points, with the white noise of a symmetric call left out as sklearn
        close(ours.predict(X, return_std=True)[1], ref.predict(X, return_std=True)[1], what="std at X")


def test_predict_prior_matches_sklearn():
    X = np.random.default_rng(2).normal(size=(6, 2))
    for kernel, n_targets in ((None, None), (None, 3), (sk.Matern(0.5, nu=2.5) + sk.WhiteKernel(0.3), None),
                              (gram.RBF(2.0) * 3.0, 2), ("matern32(lengthscale=0.7)", None)):
        ours = gram.GaussianProcessRegressor(kernel, n_targets=n_targets)
        ref_kernel = kernel
        if isinstance(kernel, gram.Kernel):
            ref_kernel = sk.RBF(2.0) * sk.ConstantKernel(3.0)
        elif isinstance(kernel, str):
            ref_kernel = sk.Matern(0.7, nu=1.5)
        ref = SkGP(ref_kernel, n_targets=n_targets)
        np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
        m, s = ours.predict(X, return_std=True)
        mr, sr = ref.predict(X, return_std=True)
        np.testing.assert_array_equal(m, mr)
        close(s, sr, rtol=1e-14)
        m, c = ours.predict(X, return_cov=True)
        mr, cr = ref.predict(X, return_cov=True)
        assert c.shape == cr.shape
        close(c, cr, rtol=1e-14)
        np.testing.assert_allclose(ours.sample_y(X, 4, random_state=3), ref.sample_y(X, 4, random_state=3),
                                   rtol=1e-7, atol=1e-7)
    one = gram.GaussianProcessRegressor().predict(X[:1])
    assert one.shape == SkGP().predict(X[:1]).shape == ()


def test_default_kernel_is_learned_like_sklearn():
    X, y = data()
    ours = gram.GaussianProcessRegressor().fit(X, y)
    ref = SkGP().fit(X, y)
    assert type(ours.kernel_) is gram.Product and ours.kernel_.n_dims == 2
    assert ours.log_marginal_likelihood_value_ >= ref.log_marginal_likelihood_value_ - 1e-7 * abs(
        ref.log_marginal_likelihood_value_)


LEARN = [  # (kernel, targets, normalize_y, dimensions)
    (sk.ConstantKernel(1.0) * sk.RBF(1.0) + sk.WhiteKernel(0.1), None, False, 2),
    (sk.ConstantKernel(1.0) * sk.RBF([1.0, 1.0]) + sk.WhiteKernel(0.1), None, True, 2),
    (sk.Matern(1.0, nu=1.5) + sk.WhiteKernel(0.1), 2, False, 2),
    (sk.ConstantKernel(1.0) * sk.RationalQuadratic(1.0, 1.0) + sk.WhiteKernel(0.05), None, True, 2),
    (sk.ExpSineSquared(1.0, 3.0, periodicity_bounds=(1.0, 10.0)) + sk.WhiteKernel(0.1), None, False, 1),
    (sk.DotProduct(1.0) + sk.WhiteKernel(1.0), 2, True, 2),
    (sk.ConstantKernel(1.0, "fixed") * sk.Matern(1.0, (1e-2, 1e2), nu=2.5) + sk.WhiteKernel(0.1, "fixed"),
     None, False, 2),
]


@pytest.mark.parametrize("case", range(len(LEARN)))
def test_learned_theta_reaches_sklearn_likelihood(case):
    kernel, targets, normalize_y, d = LEARN[case]
    X, y = data(n=40, d=d, targets=targets, seed=case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarnings at bounds, from both
        ours = gram.GaussianProcessRegressor(kernel, normalize_y=normalize_y).fit(X, y)
        ref = SkGP(kernel, normalize_y=normalize_y).fit(X, y)
    lml, lml_ref = ours.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_
    assert lml >= lml_ref - 1e-7 * abs(lml_ref), (ours.kernel_, ref.kernel_, lml, lml_ref)
    # scikit-learn agrees on the likelihood of gram's optimum, and fixed values stay
    close(ref.log_marginal_likelihood(ours.kernel_.theta), lml, rtol=1e-9)
    close(ours.log_marginal_likelihood(ours.kernel_.theta), lml, rtol=1e-12)
    fixed = [h.name for h in kernel.hyperparameters if h.fixed]
    for name in fixed:
        assert ours.kernel_.get_params()[name] == kernel.get_params()[name]
    assert np.all(ours.kernel_.theta >= ours.kernel_.bounds[:, 0] - 1e-12)
    assert np.all(ours.kernel_.theta <= ours.kernel_.bounds[:, 1] + 1e-12)
    # predictions of the learned model are scikit-learn's with gram's hyperparameters
    ref_at = SkGP(ref.kernel_.clone_with_theta(ours.kernel_.theta), optimizer=None,
                  normalize_y=normalize_y).fit(X, y)
    m, s = ours.predict(X[:7], return_std=True)
    mr, sr = ref_at.predict(X[:7], return_std=True)
    close(m, mr, rtol=1e-8)
    close(s, sr, rtol=1e-8)


def test_restarts_and_random_state():
    X, y = data(n=30)
    kernel = sk.ConstantKernel(1.0) * sk.RBF(1.0, (1e-2, 1e2)) + sk.WhiteKernel(1.0, (1e-4, 10.0))
    base = gram.GaussianProcessRegressor(kernel).fit(X, y)
    a = gram.GaussianProcessRegressor(kernel, n_restarts_optimizer=3, random_state=7).fit(X, y)
    b = gram.GaussianProcessRegressor(kernel, n_restarts_optimizer=3, random_state=7).fit(X, y)
    c = gram.GaussianProcessRegressor(kernel, n_restarts_optimizer=3,
                                      random_state=np.random.RandomState(7)).fit(X, y)
    assert a.log_marginal_likelihood_value_ >= base.log_marginal_likelihood_value_ - 1e-9
    np.testing.assert_array_equal(a.kernel_.theta, b.kernel_.theta)
    np.testing.assert_array_equal(a.kernel_.theta, c.kernel_.theta)


def test_callable_optimizer_like_sklearn():
    X, y = data(n=30)
    calls = []

    def optimizer(obj_func, initial_theta, bounds):
        calls.append(np.array(initial_theta))
        f0 = obj_func(initial_theta, eval_gradient=False)
        f1, g1 = obj_func(initial_theta)
        assert np.isscalar(f0) or np.ndim(f0) == 0
        assert f0 == f1 and g1.shape == initial_theta.shape
        res = scipy.optimize.minimize(obj_func, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds)
        return res.x, res.fun

    kernel = sk.ConstantKernel(1.0) * sk.RBF([1.0, 1.0]) + sk.WhiteKernel(0.1)
    ours = gram.GaussianProcessRegressor(kernel, optimizer=optimizer, n_restarts_optimizer=2,
                                         random_state=3).fit(X, y)
    ref = SkGP(kernel, optimizer=optimizer, n_restarts_optimizer=2, random_state=3).fit(X, y)
    # the same starts (the restarts come from the same RandomState) and the same optimum
    assert len(calls) == 6
    for a, b in zip(calls[:3], calls[3:]):
        np.testing.assert_allclose(a, b, rtol=1e-15)
    close(ours.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_, rtol=1e-8)
    np.testing.assert_allclose(ours.kernel_.theta, ref.kernel_.theta, rtol=1e-4, atol=1e-4)
    close(ours.predict(X[:5]), ref.predict(X[:5]), rtol=1e-6)


def test_optimizer_none_keeps_kernel():
    X, y = data()
    kernel = gram.ConstantKernel(2.0) * gram.Matern(0.5, nu=2.5)
    gp = gram.GaussianProcessRegressor(kernel, optimizer=None).fit(X, y)
    np.testing.assert_array_equal(gp.kernel_.theta, kernel.theta)
    assert gp.kernel_ is not kernel
    assert gp.kernel_.get_params()["k2__length_scale"] == 0.5
    # fitting never changes the user's kernel
    gram.GaussianProcessRegressor(kernel).fit(X, y)
    np.testing.assert_array_equal(kernel.theta, np.log([2.0, 0.5]))


def test_spec_kernel_theta_in_gram_order():
    """A spec kernel's theta follows gram's order: for the rational quadratic, lengthscale then
    alpha, the reverse of scikit-learn's; map by names to compare."""
    X, y = data()
    spec = "rational_quadratic(lengthscale=0.9, alpha=0.6) + white(noise=0.05, noise_bounds=fixed)"
    ours = gram.GaussianProcessRegressor(spec, alpha=1e-3, optimizer=None).fit(X, y)
    skk = sk.RationalQuadratic(length_scale=0.9, alpha=0.6) + sk.WhiteKernel(0.05, "fixed")
    ref = SkGP(skk, alpha=1e-3, optimizer=None).fit(X, y)
    assert ours.kernel_.hyperparameter_names == ["leaf1.lengthscale", "leaf1.alpha"]
    sk_names = [h.name for h in ref.kernel_.hyperparameters if not h.fixed]
    assert sk_names == ["k1__alpha", "k1__length_scale"]
    to_sklearn = np.array([1, 0])  # gram index of each scikit-learn entry
    np.testing.assert_allclose(ours.kernel_.theta[to_sklearn], ref.kernel_.theta, rtol=1e-15)
    theta_sk = ref.kernel_.theta + np.array([0.2, -0.3])
    theta_gram = np.empty(2)
    theta_gram[to_sklearn] = theta_sk
    lml, grad = ours.log_marginal_likelihood(theta_gram, eval_gradient=True)
    lml_ref, grad_ref = ref.log_marginal_likelihood(theta_sk, eval_gradient=True)
    close(lml, lml_ref)
    close(grad[to_sklearn], grad_ref)
    # learning a spec kernel gives a spec kernel with the learned values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # alpha runs to its bound
        learned = gram.GaussianProcessRegressor(spec).fit(X, y)
    assert isinstance(learned.kernel_, gram.Kernel) and "white(noise=0.05" in learned.kernel_.canonical_spec


def test_kernel_protocol_like_sklearn():
    for name, k in KERNELS.items():
        g = gram.kernels.as_kernel(k)
        np.testing.assert_allclose(g.theta, k.theta, rtol=1e-15, err_msg=name)
        np.testing.assert_allclose(g.bounds, k.bounds, rtol=1e-15, err_msg=name)
        assert g.n_dims == k.n_dims
        for a, b in zip(g.hyperparameters, k.hyperparameters):
            assert (a.name, a.n_elements, a.fixed) == (b.name, b.n_elements, b.fixed), name
            if not a.fixed:
                np.testing.assert_allclose(a.bounds, b.bounds, rtol=1e-15)
        theta = k.theta + 0.25
        X = data()[0][:6]
        close(g.clone_with_theta(theta)(X), k.clone_with_theta(theta)(X), rtol=1e-13, what=name)
    g = gram.RationalQuadratic(1.5, 0.3, alpha_bounds=(0.1, 10.0))
    assert g.spec == "rational_quadratic(lengthscale=1.5, alpha=0.3, alpha_bounds=[0.1, 10.0])"
    g.theta = np.log([2.0, 0.5])
    assert g.alpha == pytest.approx(2.0) and g.length_scale == pytest.approx(0.5)
    assert gram.RBF(2.0, "fixed").n_dims == 0 and gram.RBF(2.0, "fixed").theta.shape == (0,)
    assert gram.RBF(2.0, "fixed").bounds.shape == sk.RBF(2.0, "fixed").bounds.shape


def test_sample_y_moments_and_reproducibility():
    X, y = data(targets=2)
    gp = gram.GaussianProcessRegressor(sk.ConstantKernel(1.0) * sk.RBF(0.8), alpha=1e-2, optimizer=None,
                                       normalize_y=True).fit(X, y)
    Xq = np.array([[0.1, 0.2], [1.5, -1.0], [0.15, 0.25], [3.0, 3.0]])
    S = 20000
    samples = gp.sample_y(Xq, S, random_state=11)
    assert samples.shape == (4, 2, S)
    mean, cov = gp.predict(Xq, return_cov=True)
    for t in range(2):
        s = samples[:, t, :]
        sd = np.sqrt(np.diag(cov[:, :, t]))
        assert np.all(np.abs(s.mean(axis=1) - mean[:, t]) <= 5 * sd / np.sqrt(S) + 1e-12)
        emp = np.cov(s)
        scale = np.outer(sd, sd)
        assert np.all(np.abs(emp - cov[:, :, t]) <= 6 * scale * np.sqrt(2.0 / S) + 1e-12)
    np.testing.assert_array_equal(gp.sample_y(Xq, 5, random_state=11), gp.sample_y(Xq, 5, random_state=11))
    np.testing.assert_array_equal(gp.sample_y(Xq, 5), gp.sample_y(Xq, 5))  # default random_state=0
    assert not np.array_equal(gp.sample_y(Xq, 5, random_state=1), gp.sample_y(Xq, 5, random_state=2))
    rs = np.random.RandomState(4)
    assert not np.array_equal(gp.sample_y(Xq, 5, random_state=rs), gp.sample_y(Xq, 5, random_state=rs))
    # the two targets are independent draws
    assert abs(np.corrcoef(samples[3, 0], samples[3, 1])[0, 1]) < 0.05
    one = gram.GaussianProcessRegressor(optimizer=None).fit(*data())
    assert one.sample_y(Xq, 3).shape == (4, 3) and one.sample_y(Xq, 0).shape == (4, 0)


def test_pickle_bit_for_bit():
    X, y = data(targets=2)
    gp = gram.GaussianProcessRegressor(sk.ConstantKernel(1.0) * sk.Matern([1.0, 1.0], nu=2.5)
                                       + sk.WhiteKernel(0.1), normalize_y=True).fit(X, y)
    again = pickle.loads(pickle.dumps(gp))
    Xq = np.random.default_rng(3).normal(size=(8, 2))
    np.testing.assert_array_equal(gp.predict(Xq), again.predict(Xq))
    for kw in ({"return_std": True}, {"return_cov": True}):
        for a, b in zip(gp.predict(Xq, **kw), again.predict(Xq, **kw)):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(gp.sample_y(Xq, 3, random_state=1), again.sample_y(Xq, 3, random_state=1))
    theta = gp.kernel_.theta + 0.1
    assert gp.log_marginal_likelihood(theta, True)[0] == again.log_marginal_likelihood(theta, True)[0]
    np.testing.assert_array_equal(gp.log_marginal_likelihood(theta, True)[1],
                                  again.log_marginal_likelihood(theta, True)[1])
    for attr in ("X_train_", "y_train_", "alpha_", "L_"):
        np.testing.assert_array_equal(getattr(gp, attr), getattr(again, attr))
    assert again.log_marginal_likelihood_value_ == gp.log_marginal_likelihood_value_
    np.testing.assert_array_equal(again.kernel_.theta, gp.kernel_.theta)
    unfitted = pickle.loads(pickle.dumps(gram.GaussianProcessRegressor(gram.RBF(2.0))))
    assert unfitted.kernel.length_scale == 2.0
    assert clone(gp).get_params()["kernel"] == gp.kernel


def test_check_estimator():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not inherit from `sklearn.base.BaseEstimator`")
        results = check_estimator(gram.GaussianProcessRegressor(), on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed, failed
    assert len([r for r in results if r["status"] == "passed"]) >= 40


def test_convergence_warning_at_bounds():
    X, y = data()
    kernel = sk.ConstantKernel(1.0, (1e-2, 1.5)) * sk.RBF(1.0) + sk.WhiteKernel(0.1)
    with pytest.warns(Warning, match="close to the specified upper bound 1.5"):
        gram.GaussianProcessRegressor(kernel, normalize_y=False).fit(X, 10 * y)


def test_bad_input():
    X, y = data()
    gp = gram.GaussianProcessRegressor(optimizer=None)
    for bad, match in ((np.nan, "NaN"), (np.inf, "infinity")):
        yb = y.copy()
        yb[4] = bad
        with pytest.raises(ValueError, match=match) as e:
            gp.fit(X, yb)
        assert "row 4" in str(e.value)
        Xb = X.copy()
        Xb[3, 1] = bad
        with pytest.raises(ValueError, match=match) as e:
            gp.fit(Xb, y)
        assert "row 3, column 1" in str(e.value)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        gp.fit(X, y[:-1])
    with pytest.raises(ValueError, match="requires y to be passed"):
        gp.fit(X, None)
    with pytest.raises(ValueError, match="Expected 2D array"):
        gp.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="0 sample"):
        gp.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="alpha"):
        gram.GaussianProcessRegressor(alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match=r"alpha must be a scalar or an array with same number of entries as y"):
        gram.GaussianProcessRegressor(alpha=np.ones(3)).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        gram.GaussianProcessRegressor(alpha=-np.ones(len(y))).fit(X, y)
    with pytest.raises(ValueError, match="n_targets"):
        gram.GaussianProcessRegressor(n_targets=2).fit(X, y)
    with pytest.raises(ValueError, match="optimizer"):
        gram.GaussianProcessRegressor(optimizer="bfgs").fit(X, y)
    with pytest.raises(ValueError, match="n_restarts_optimizer"):
        gram.GaussianProcessRegressor(n_restarts_optimizer=-1).fit(X, y)
    for bad in (2**32, 2.0):  # a C int: no silent wrap to 0 restarts, no truncation
        with pytest.raises(ValueError, match="'n_restarts_optimizer' parameter"):
            gram.GaussianProcessRegressor(n_restarts_optimizer=bad).fit(X, y)
    with pytest.raises(ValueError, match="kernel"):
        gram.GaussianProcessRegressor(kernel=3.0).fit(X, y)
    with pytest.raises(ValueError):
        gram.GaussianProcessRegressor(gram.RBF([1.0, 1.0, 1.0]), optimizer=None).fit(X, y)
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        gram.GaussianProcessRegressor(gram.RBF(1.0), alpha=0.0, optimizer=None).fit(np.vstack([X, X]),
                                                                                    np.r_[y, y])
    fitted = gram.GaussianProcessRegressor(optimizer=None).fit(X, y)
    with pytest.raises(RuntimeError, match="At most one of return_std or return_cov"):
        fitted.predict(X, return_std=True, return_cov=True)
    with pytest.raises(ValueError, match="Gradient can only be evaluated for theta!=None"):
        fitted.log_marginal_likelihood(eval_gradient=True)
    with pytest.raises(ValueError, match="theta must have 2 values"):
        fitted.log_marginal_likelihood(np.zeros(3))
    with pytest.raises(ValueError, match="X has 3 features, but GaussianProcessRegressor is expecting 2"):
        fitted.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Input X contains NaN \(X: row 0, column 1 is NaN\)"):
        fitted.predict(np.array([[0.0, np.nan]]))
    with pytest.raises(NotFittedError):
        gram.GaussianProcessRegressor().log_marginal_likelihood()
    # a theta where K is not positive definite: -inf and a zero gradient, as scikit-learn
    dup = gram.GaussianProcessRegressor(gram.RBF(1.0), alpha=0.0, optimizer=None).fit(X[:3], y[:3])
    lml, grad = dup.log_marginal_likelihood(np.array([20.0]), eval_gradient=True)
    assert lml == -np.inf and np.all(grad == 0)


# ---- the anchor's contract in the corners (issue 12) ----------------------------------------------


def test_log_marginal_likelihood_is_float64():
    """A Python float changes NumPy 2's promotion in users' code: lml - np.float32(eps) is float32
    and the comparison of scikit-learn's test_random_starts fails."""
    X, y = data()
    for optimizer in ("fmin_l_bfgs_b", None):
        gp = gram.GaussianProcessRegressor(sk.RBF(1.0), optimizer=optimizer).fit(X, y)
        ref = SkGP(sk.RBF(1.0), optimizer=optimizer).fit(X, y)
        theta = gp.kernel_.theta
        for got, want in ((gp.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_),
                          (gp.log_marginal_likelihood(), ref.log_marginal_likelihood()),
                          (gp.log_marginal_likelihood(theta), ref.log_marginal_likelihood(theta)),
                          (gp.log_marginal_likelihood(theta, eval_gradient=True)[0],
                           ref.log_marginal_likelihood(theta, eval_gradient=True)[0])):
            assert type(got) is type(want) is np.float64
        eps = np.finfo(np.float32).eps
        assert (gp.log_marginal_likelihood(theta) - eps).dtype == np.float64
        assert gp.log_marginal_likelihood(theta) > gp.log_marginal_likelihood(theta) - eps
        assert gp.log_marginal_likelihood(theta, eval_gradient=True)[1].dtype == np.float64
    # -inf where K cannot be factored is a float64 too
    dup = gram.GaussianProcessRegressor(gram.RBF(1.0), alpha=0.0, optimizer=None).fit(X[:3], y[:3])
    assert type(dup.log_marginal_likelihood(np.array([20.0]))) is np.float64
    # and at a theta whose exp is no double (it was a ValueError, ending a user's optimizer)
    for theta in ([1000.0], [-1000.0]):
        lml, grad = dup.log_marginal_likelihood(np.array(theta), eval_gradient=True)
        assert lml == -np.inf and type(lml) is np.float64 and np.all(grad == 0)


def test_lml_without_cloning_kernel_sets_theta():
    X, y = data()
    for kernel in (sk.RBF(1.0), sk.ConstantKernel(1.0, (1e-2, 1e2)) * sk.RBF(1.0) + sk.WhiteKernel(1e-2)):
        gp = gram.GaussianProcessRegressor(kernel).fit(X, y)
        ref = SkGP(kernel).fit(X, y)
        fitted = gp.kernel_.theta.copy()
        theta = np.full(fitted.shape, 0.5)
        close(gp.log_marginal_likelihood(theta), ref.log_marginal_likelihood(theta), what="cloned")
        np.testing.assert_array_equal(gp.kernel_.theta, fitted)  # clone_kernel=True: untouched
        got = gp.log_marginal_likelihood(theta, clone_kernel=False)
        want = ref.log_marginal_likelihood(theta, clone_kernel=False)
        close(got, want, what="not cloned")
        np.testing.assert_allclose(gp.kernel_.theta, theta, rtol=1e-15)
        np.testing.assert_allclose(gp.kernel_.theta, ref.kernel_.theta, rtol=1e-15)
        # the likelihood at the kernel's (new) theta is the same whichever way it is asked
        close(gp.log_marginal_likelihood(gp.kernel_.theta), want, what="after")


def test_singular_kernel_matrix_raises_sklearns_linalgerror():
    """scikit-learn raises LinAlgError with its own message first whether or not the optimizer
    runs (gram used to say "L-BFGS-B: the objective ... is not finite at the start")."""
    X, y = np.arange(12.0).reshape(6, -1), np.ones(6)
    for optimizer in ("fmin_l_bfgs_b", None):
        with pytest.raises(np.linalg.LinAlgError) as ref:
            SkGP(sk.DotProduct(), alpha=0.0, optimizer=optimizer).fit(X, y)
        for kernel in (sk.DotProduct(), gram.DotProduct()):
            gp = gram.GaussianProcessRegressor(kernel, alpha=0.0, optimizer=optimizer)
            with pytest.raises(np.linalg.LinAlgError) as e:
                gp.fit(X, y)
            assert e.value.args[0] == ref.value.args[0]
            assert "pivot" in e.value.args[1]  # gram's detail, where scikit-learn has LAPACK's
            assert not hasattr(gp, "X_train_")


def test_infinite_bounds_as_sklearn():
    X, y = data(n=12)
    kernel = sk.WhiteKernel(0.5, noise_level_bounds=(0, np.inf)) + sk.RBF(1.0, length_scale_bounds=(1e-5, np.inf))
    gp = gram.GaussianProcessRegressor(kernel).fit(X, y)
    ref = SkGP(kernel).fit(X, y)
    assert np.isneginf(gp.kernel_.bounds[0, 0]) and np.isposinf(gp.kernel_.bounds[1, 1])
    close(gp.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_, rtol=1e-7)
    np.testing.assert_allclose(gp.kernel_.theta, ref.kernel_.theta, rtol=1e-3)
    for k in (kernel, gram.WhiteKernel(0.5, noise_level_bounds=(1e-3, np.inf))):
        with pytest.raises(ValueError, match=r"^Multiple optimizer restarts \(n_restarts_optimizer>0\) "
                                             r"requires that all bounds are finite\.$"):
            gram.GaussianProcessRegressor(k, n_restarts_optimizer=2).fit(X, y)
    # a user optimizer with restarts: the same message
    with pytest.raises(ValueError, match="requires that all bounds are finite"):
        gram.GaussianProcessRegressor(kernel, n_restarts_optimizer=1,
                                      optimizer=lambda f, t, bounds: (t, f(t, False))).fit(X, y)


def test_start_outside_bounds_is_projected_as_sklearn():
    """Values outside their bounds are scikit-learn's (bounds only constrain learning): the
    search starts from the projection, as SciPy's L-BFGS-B does (problems with one optimum, so
    that the two implementations must agree)."""
    X, y = data()
    for kernel, inside in ((sk.RBF(1.0, (2.0, 3.0)), sk.RBF(2.0, (2.0, 3.0))),
                           (sk.ConstantKernel(50.0, (1e-2, 10.0)) * sk.RBF(0.01, (0.1, 10.0))
                            + sk.WhiteKernel(1e-7, (1e-3, 1.0)),
                            sk.ConstantKernel(10.0, (1e-2, 10.0)) * sk.RBF(0.1, (0.1, 10.0))
                            + sk.WhiteKernel(1e-3, (1e-3, 1.0)))):
        gp = gram.GaussianProcessRegressor(kernel).fit(X, y)
        ref = SkGP(kernel).fit(X, y)
        close(gp.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_, rtol=1e-7)
        np.testing.assert_allclose(gp.kernel_.theta, ref.kernel_.theta, rtol=1e-3, atol=1e-5)
        same = gram.GaussianProcessRegressor(inside).fit(X, y)
        np.testing.assert_array_equal(gp.kernel_.theta, same.kernel_.theta)


def test_lbfgs_not_converged_warns_as_sklearn():
    """scikit-learn's ConvergenceWarning for a search that stops without converging (status 2,
    "ABNORMAL": no acceptable step), here on its own test_anisotropic_kernel's data, where both
    libraries end so."""
    from sklearn.exceptions import ConvergenceWarning
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (50, 2))
    y = X[:, 0] + 0.1 * X[:, 1]
    pattern = (r"^lbfgs failed to converge after \d+ iteration\(s\) \(status=2\):\nABNORMAL: \n\n"
               r"You might also want to scale the data as shown in:\n"
               r"    https://scikit-learn.org/stable/modules/preprocessing.html$")
    with pytest.warns(ConvergenceWarning, match=pattern):
        SkGP(sk.RBF([1.0, 1.0])).fit(X, y)
    with pytest.warns(ConvergenceWarning, match=pattern):
        gp = gram.GaussianProcessRegressor(sk.RBF([1.0, 1.0])).fit(X, y)
    assert np.exp(gp.kernel_.theta[1]) > 5 * np.exp(gp.kernel_.theta[0])
    # a search that converges says nothing
    X, y = data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gram.GaussianProcessRegressor(sk.ConstantKernel(1.0) * sk.RBF(1.0) + sk.WhiteKernel(0.1)).fit(X, y)


class _UserRBF(sk.RBF):
    """A user's own kernel: a subclass gram must not translate (its __call__ could be anything)."""


class _Tokens(sk.GenericKernelMixin, sk.StationaryKernelMixin, sk.Kernel):
    """A kernel on strings: similarity 1 per equal character pair, s otherwise (scikit-learn's
    MiniSeqKernel, written out here)."""

    def __init__(self, s=0.5, s_bounds=(1e-5, 1)):
        self.s = s
        self.s_bounds = s_bounds

    @property
    def hyperparameter_s(self):
        return sk.Hyperparameter("s", "numeric", self.s_bounds)

    def __call__(self, X, Y=None, eval_gradient=False):
        Y = X if Y is None else Y
        K = np.array([[sum(1.0 if a == b else self.s for a in x for b in z) for z in Y] for x in X])
        if eval_gradient:
            G = np.array([[[sum(0.0 if a == b else self.s for a in x for b in z)] for z in Y] for x in X])
            return K, G
        return K

    def diag(self, X):
        return np.array([self(np.array([x]))[0, 0] for x in X])


def test_kernel_gram_cannot_evaluate_runs_like_sklearn():
    """A user's scikit-learn kernel: its own __call__ gives K and the gradient, gram's C the
    algebra (gram_gp_solve / gram_gp_posterior), SciPy's L-BFGS-B the search, as scikit-learn."""
    X, y = data(targets=2)
    for normalize_y in (False, True):
        kernel = sk.ConstantKernel(1.0) * _UserRBF([1.0, 1.0]) + sk.WhiteKernel(0.1)
        gp = gram.GaussianProcessRegressor(kernel, normalize_y=normalize_y, n_restarts_optimizer=1,
                                           random_state=0).fit(X, y)
        ref = SkGP(kernel, normalize_y=normalize_y, n_restarts_optimizer=1, random_state=0).fit(X, y)
        assert type(gp.kernel_.k1.k2) is _UserRBF
        np.testing.assert_allclose(gp.kernel_.theta, ref.kernel_.theta, rtol=1e-6, atol=1e-8)
        close(gp.log_marginal_likelihood_value_, ref.log_marginal_likelihood_value_, rtol=1e-9)
        assert type(gp.log_marginal_likelihood_value_) is np.float64
        for attr in ("L_", "alpha_", "y_train_", "_y_train_mean", "_y_train_std"):
            close(getattr(gp, attr), getattr(ref, attr), rtol=1e-6, what=attr)
        Xq = data(n=7, seed=3)[0]
        for kw in ({}, {"return_std": True}, {"return_cov": True}):
            for a, b in zip(np.atleast_1d(gp.predict(Xq, **kw)) if not kw else gp.predict(Xq, **kw),
                            np.atleast_1d(ref.predict(Xq, **kw)) if not kw else ref.predict(Xq, **kw)):
                assert a.shape == b.shape
                close(a, b, rtol=1e-6, what=str(kw))
        theta = ref.kernel_.theta + 0.2
        lml, grad = gp.log_marginal_likelihood(theta, eval_gradient=True)
        lml_ref, grad_ref = ref.log_marginal_likelihood(theta, eval_gradient=True)
        close(lml, lml_ref, what="lml")
        close(grad, grad_ref, rtol=1e-8, what="gradient")
        np.testing.assert_allclose(gp.sample_y(Xq, 3, random_state=1), ref.sample_y(Xq, 3, random_state=1),
                                   rtol=1e-5, atol=1e-8)
        back = pickle.loads(pickle.dumps(gp))
        np.testing.assert_array_equal(back.predict(Xq), gp.predict(Xq))
    # normalize_y is scale-free there too, up to the float64 limit (y² would overflow at 1e154)
    small = gram.GaussianProcessRegressor(_UserRBF(1.0), optimizer=None, normalize_y=True).fit(X, y[:, 0])
    huge = gram.GaussianProcessRegressor(_UserRBF(1.0), optimizer=None, normalize_y=True).fit(X, y[:, 0] * 1e300)
    for a, b in zip(huge.predict(X[:4], return_std=True), small.predict(X[:4], return_std=True)):
        close(a, b * 1e300, rtol=1e-9, what="scaled targets")
    # structured input: strings, interpolated exactly (scikit-learn's test_gpr_interpolation_structured)
    Xs, ys = ["A", "B", "C"], np.array([1.0, 2.0, 3.0])
    gp = gram.GaussianProcessRegressor(_Tokens(s_bounds="fixed")).fit(Xs, ys)
    mean, cov = gp.predict(Xs, return_cov=True)
    np.testing.assert_allclose(mean, ys, atol=1e-7)
    np.testing.assert_allclose(np.diag(cov), 0.0, atol=1e-7)
    assert not hasattr(gp, "n_features_in_")
    learned = gram.GaussianProcessRegressor(_Tokens(0.3), alpha=1e-2).fit(["AB", "B", "CA", "C"], [1.0, 2, 1, 2])
    ref = SkGP(_Tokens(0.3), alpha=1e-2).fit(["AB", "B", "CA", "C"], [1.0, 2, 1, 2])
    close(learned.kernel_.theta, ref.kernel_.theta, rtol=1e-6)
    # a singular matrix: scikit-learn's error, with gram's detail
    with pytest.raises(np.linalg.LinAlgError, match="is not returning a positive definite matrix"):
        gram.GaussianProcessRegressor(_UserRBF(1.0), alpha=0.0, optimizer=None).fit(np.vstack([X, X]),
                                                                                   np.r_[y, y])


def test_overflowing_kernel_is_an_error_not_a_nan_model():
    """A linear kernel at |x| ~ 1e160 overflows: gram used to return a model with a NaN (-inf)
    likelihood and coefficients; now an error that says so (KRR refused it by accident)."""
    X = np.array([[1.0], [2.0], [3.0], [4.0]]) * 1e160
    y = np.array([1.0, 2.0, 0.5, 3.0])
    for optimizer in (None, "fmin_l_bfgs_b"):
        gp = gram.GaussianProcessRegressor(gram.DotProduct(1.0), optimizer=optimizer)
        with pytest.raises(ValueError, match="overflows") as e:
            gp.fit(X, y)
        assert "row" in str(e.value) and not hasattr(gp, "alpha_")
    # queries whose kernel values overflow against the training points
    gp = gram.GaussianProcessRegressor(gram.DotProduct(1.0) + gram.WhiteKernel(0.1), optimizer=None).fit(X / 1e160, y)
    for kw in ({}, {"return_std": True}, {"return_cov": True}):
        with pytest.raises(ValueError, match="not finite"):
            gp.predict(np.array([[0.5], [1e308]]), **kw)
    with pytest.raises(ValueError, match="not finite"):
        gp.sample_y(np.array([[1e308]]))
    assert np.isfinite(gp.predict(np.array([[0.5]]), return_std=True)).all()
