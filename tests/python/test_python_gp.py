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
    assert gram.RBF(2.0, "fixed").bounds.shape == (0, 2)


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
    with pytest.raises(ValueError, match="kernel"):
        gram.GaussianProcessRegressor(kernel=3.0).fit(X, y)
    # bounds that exclude the value: gram's message
    for kernel in (gram.RBF(1.0, length_scale_bounds=(2.0, 3.0)), sk.RBF(1.0, (2.0, 3.0)),
                   "gaussian(lengthscale=1, lengthscale_bounds=[2, 3])"):
        with pytest.raises(ValueError, match="bounds"):
            gram.GaussianProcessRegressor(kernel).fit(X, y)
    with pytest.raises(ValueError, match="one pair of bounds"):
        gram.GaussianProcessRegressor(sk.RBF([1.0, 1.0], [[1e-2, 1e2], [1e-1, 1e1]])).fit(X, y)
    with pytest.raises(ValueError, match="Exponentiation"):
        gram.GaussianProcessRegressor(sk.RBF() ** 2).fit(X, y)
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
