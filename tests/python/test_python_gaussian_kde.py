"""gram.gaussian_kde against scipy.stats.gaussian_kde, computed here.

Run after `python3 -m pip install .`: these tests import the installed package `gram`.
Densities and log-densities agree within 1e-10 relative (float64).
"""
import pickle

import numpy as np
import pytest
from scipy import stats
from sklearn import datasets

import gram

RTOL = 1e-10


def both(dataset, **kw):
    return gram.gaussian_kde(dataset, **kw), stats.gaussian_kde(dataset, **kw)


def assert_parity(ours, ref, points):
    np.testing.assert_allclose(ours.logpdf(points), ref.logpdf(points), rtol=RTOL)
    np.testing.assert_allclose(ours.evaluate(points), ref.evaluate(points), rtol=RTOL, atol=0)
    np.testing.assert_allclose(ours(points), ref(points), rtol=RTOL)
    np.testing.assert_allclose(ours.pdf(points), ref.pdf(points), rtol=RTOL)


def assert_attributes(ours, ref):
    assert (ours.d, ours.n) == (ref.d, ref.n)
    assert ours.factor == pytest.approx(ref.factor, rel=1e-15)
    assert ours.neff == pytest.approx(ref.neff, rel=1e-14)
    np.testing.assert_allclose(ours.weights, ref.weights, rtol=1e-15)
    np.testing.assert_allclose(ours.covariance, ref.covariance, rtol=1e-12)
    np.testing.assert_allclose(ours.inv_cov, ref.inv_cov, rtol=1e-9)
    np.testing.assert_allclose(ours.cho_cov, ref.cho_cov, rtol=1e-12, atol=1e-300)
    assert ours.log_det == pytest.approx(ref.log_det, rel=1e-12)
    assert ours.covariance_factor() == pytest.approx(ref.covariance_factor(), rel=1e-15)
    np.testing.assert_array_equal(ours.dataset, ref.dataset)


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 16])
@pytest.mark.parametrize("weighted", [False, True])
def test_random_data(d, weighted):
    rng = np.random.default_rng(d)
    A = 0.3 * rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)  # well conditioned
    data = A @ rng.normal(size=(d, 600))
    w = rng.random(600) if weighted else None
    ours, ref = both(data, weights=w)
    assert_attributes(ours, ref)
    pts = A @ rng.normal(size=(d, 200)) * 1.5
    assert_parity(ours, ref, pts)


@pytest.mark.parametrize("bw", ["scott", "silverman", 0.3, 2, np.float64(0.05),
                                lambda k: k.n ** (-1.0 / (k.d + 4)) / 2])
def test_bw_method(bw):
    rng = np.random.default_rng(4)
    data = rng.normal(size=(3, 400))
    w = rng.random(400)
    ours, ref = both(data, bw_method=bw, weights=w)
    assert_attributes(ours, ref)
    assert_parity(ours, ref, rng.normal(size=(3, 100)))


def test_set_bandwidth_and_subclass():
    rng = np.random.default_rng(9)
    data = rng.normal(size=(2, 300))
    ours, ref = both(data)
    for bw in ["silverman", 0.2, lambda k: 0.5 * k.scotts_factor(), None, "scott"]:
        ours.set_bandwidth(bw)
        ref.set_bandwidth(bw)
        assert_attributes(ours, ref)
        assert_parity(ours, ref, data[:, :50])

    class Narrow(gram.gaussian_kde):
        def covariance_factor(self):
            return 0.1

    np.testing.assert_allclose(Narrow(data).logpdf(data), stats.gaussian_kde(data, 0.1).logpdf(data), rtol=RTOL)


@pytest.mark.parametrize("name,dims", [("iris", None), ("wine", None), ("diabetes", None), ("digits", 30)])
@pytest.mark.parametrize("bw", ["scott", "silverman", 0.5])
def test_real_data(name, dims, bw):
    X = getattr(datasets, f"load_{name}")().data.astype(np.float64)
    if dims is not None:  # digits: its 64 pixels are singular; keep the 30 leading principal axes
        Xc = X - X.mean(0)
        _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
        X = Xc @ Vt[:dims].T
    ours, ref = both(X.T, bw_method=bw)
    assert_attributes(ours, ref)
    assert_parity(ours, ref, X[::5].T)
    w = np.arange(1, X.shape[0] + 1, dtype=float)
    ours, ref = both(X.T, bw_method=bw, weights=w)
    assert_parity(ours, ref, X[::5].T)


def test_singular_data_raises_like_scipy():
    X = datasets.load_digits().data.T  # constant pixels: a singular covariance
    with pytest.raises(np.linalg.LinAlgError) as ref:
        stats.gaussian_kde(X)
    with pytest.raises(np.linalg.LinAlgError) as got:
        gram.gaussian_kde(X)
    assert str(got.value) == str(ref.value)


def test_logpdf_exact_in_log_space():
    """Far from the data every kernel value underflows; the log-density stays finite and right."""
    data = np.random.default_rng(0).normal(size=(2, 100))
    ours, ref = both(data, bw_method=0.05)
    far = np.array([[40.0, -60.0], [30.0, 10.0]])
    np.testing.assert_allclose(ours.logpdf(far), ref.logpdf(far), rtol=RTOL)
    assert np.all(np.isfinite(ours.logpdf(far))) and np.all(ours.pdf(far) == 0)


def test_one_dimensional_and_point_shapes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    ours, ref = both(x)
    for pts in [0.3, [0.3], [0.1, 0.2, 0.3], np.array([[0.1, 0.2]]), np.linspace(-3, 3, 7)]:
        np.testing.assert_allclose(ours(pts), ref(pts), rtol=RTOL)
        assert ours(pts).shape == ref(pts).shape
    data = rng.normal(size=(3, 200))
    ours, ref = both(data)
    for pts in [[0.1, 0.2, 0.3], np.array([[0.1], [0.2], [0.3]]), np.array([[0.1, 0.2, 0.3]])]:
        np.testing.assert_allclose(ours.logpdf(pts), ref.logpdf(pts), rtol=RTOL)
        assert ours.logpdf(pts).shape == ref.logpdf(pts).shape == (1,)
    # float32 and integer points and data, transposed and sliced views
    for pts in [data[:, :50].astype(np.float32), np.round(data * 3).astype(int), data[:, ::3], data.T.copy().T]:
        np.testing.assert_allclose(ours.logpdf(pts), ref.logpdf(pts), rtol=RTOL)
    di = np.round(data * 4).astype(np.int64)
    np.testing.assert_allclose(gram.gaussian_kde(di).logpdf(data), stats.gaussian_kde(di).logpdf(data), rtol=RTOL)


def test_integrals():
    rng = np.random.default_rng(2)
    x = rng.normal(size=200)
    ours, ref = both(x, weights=rng.random(200))
    for lo, hi in [(-1, 1), (-np.inf, 0.3), (2, np.inf), (0.5, 0.5)]:
        assert ours.integrate_box_1d(lo, hi) == pytest.approx(ref.integrate_box_1d(lo, hi), rel=1e-12, abs=1e-300)
    data = rng.normal(size=(3, 150))
    o3, r3 = both(data)
    mean, cov = [0.1, -0.2, 0.3], np.diag([0.5, 1.0, 2.0])
    assert o3.integrate_gaussian(mean, cov) == pytest.approx(r3.integrate_gaussian(mean, cov), rel=1e-12)
    o2, r2 = both(rng.normal(size=(3, 90)) + 0.5)
    assert o3.integrate_kde(o2) == pytest.approx(r3.integrate_kde(r2), rel=1e-12)
    assert o2.integrate_kde(o3) == pytest.approx(r2.integrate_kde(r3), rel=1e-12)
    lo, hi = np.array([-1.0, -1.0, -1.0]), np.array([1.0, 0.5, 2.0])
    assert o3.integrate_box(lo, hi, rng=np.random.default_rng(0)) == pytest.approx(
        r3.integrate_box(lo, hi, rng=np.random.default_rng(0)), rel=1e-6)
    with pytest.raises(ValueError, match="only handles 1D"):
        o3.integrate_box_1d(0, 1)
    with pytest.raises(ValueError):
        o3.integrate_gaussian([0, 0], cov)
    with pytest.raises(ValueError):
        o3.integrate_kde(ours)


def test_marginal():
    data = np.random.default_rng(3).normal(size=(4, 300))
    w = np.random.default_rng(4).random(300)
    ours, ref = both(data, weights=w)
    mo, mr = ours.marginal([0, 2]), ref.marginal([0, 2])
    assert isinstance(mo, gram.gaussian_kde)
    assert_parity(mo, mr, data[[0, 2], :40])
    with pytest.raises(ValueError):
        ours.marginal([0, 0])
    with pytest.raises(ValueError):
        ours.marginal([5])


def test_resample():
    rng = np.random.default_rng(5)
    data = rng.normal(size=(2, 500)) * [[1.0], [4.0]] + [[3.0], [-2.0]]
    kde = gram.gaussian_kde(data, weights=rng.random(500))
    S = kde.resample(40000, seed=1)
    assert S.shape == (2, 40000) and S.flags.c_contiguous
    np.testing.assert_array_equal(S, kde.resample(40000, seed=1))
    np.testing.assert_allclose(S.mean(1), (data * kde.weights).sum(1), atol=0.06)
    # Covariance of the estimate: the weighted data covariance plus the kernel's.
    want = np.cov(data, aweights=kde.weights, bias=True) + kde.covariance
    np.testing.assert_allclose(np.cov(S), want, rtol=0.05, atol=0.05)
    assert kde.resample().shape == (2, int(kde.neff))
    assert kde.resample(3, seed=np.random.default_rng(0)).shape == (2, 3)
    assert kde.resample(3, seed=np.random.RandomState(0)).shape == (2, 3)
    one = gram.gaussian_kde(rng.normal(size=100))
    assert one.resample(5, seed=0).shape == (1, 5)


def test_pickle():
    data = np.random.default_rng(6).normal(size=(2, 100))
    kde = gram.gaussian_kde(data, bw_method="silverman")
    again = pickle.loads(pickle.dumps(kde))
    np.testing.assert_array_equal(again.logpdf(data), kde.logpdf(data))


# ---- bad input: the same exception types as SciPy ------------------------------------------------


def _cases():
    rng = np.random.default_rng(0)
    good = rng.normal(size=(2, 50))
    nan = good.copy()
    nan[1, 7] = np.nan
    return {
        "one element": (dict(dataset=[1.0]), None),
        "more dims than points": (dict(dataset=rng.normal(size=(5, 3))), None),
        "weights 2-D": (dict(dataset=good, weights=np.ones((50, 2))), None),
        "weights wrong length": (dict(dataset=good, weights=np.ones(49)), None),
        "bad bw_method": (dict(dataset=good, bw_method="foo"), None),
        "bw_method list": (dict(dataset=good, bw_method=[1, 2]), None),
        "points wrong dimension": (dict(dataset=good), np.zeros((3, 4))),
        "points NaN": (dict(dataset=good), nan),
        "dataset NaN": (dict(dataset=nan), None),
    }


@pytest.mark.parametrize("what", list(_cases()))
def test_bad_input_like_scipy(what):
    kw, points = _cases()[what]

    def run(cls):
        k = cls(**kw)
        if points is not None:
            k.logpdf(points)
            k.evaluate(points)
        return k

    try:
        run(stats.gaussian_kde)
        ref = None
    except Exception as e:  # noqa: BLE001
        ref = e
    if ref is None:
        # SciPy accepts it (NaN points give NaN): gram refuses non-finite input with ValueError.
        assert "NaN" in what
        with pytest.raises(ValueError, match="NaN"):
            run(gram.gaussian_kde)
        return
    with pytest.raises(Exception) as got:
        run(gram.gaussian_kde)
    for cls in (ValueError, TypeError, np.linalg.LinAlgError):
        assert isinstance(got.value, cls) == isinstance(ref, cls), (ref, got.value)


def test_nan_message_names_the_point():
    data = np.random.default_rng(0).normal(size=(2, 50))
    data[1, 7] = np.nan
    with pytest.raises(ValueError, match=r"point 7, dimension 1"):
        gram.gaussian_kde(data)


def test_negative_weights_refused():
    data = np.random.default_rng(0).normal(size=(2, 50))
    w = np.ones(50)
    w[3] = -0.5
    with pytest.raises(ValueError, match="negative"):
        gram.gaussian_kde(data, weights=w)


# ---- degenerate weights ------------------------------------------------------------------------
# SciPy divides by the sum first, so these become NaN weights and fail later with "array must not
# contain infs or NaNs" (a ValueError from its Cholesky); gram raises the same type, naming the
# weights (it said "the bandwidth factor must be > 0 and finite, got nan").


def _data():
    return np.random.default_rng(0).normal(size=(2, 20))


@pytest.mark.parametrize("what,weights,match", [
    ("all zero", np.zeros(20), r"`weights` are all zero"),
    ("NaN", np.r_[np.nan, np.ones(19)], r"`weights` must be finite: element 0 is nan"),
    ("inf", np.r_[np.ones(5), np.inf, np.ones(14)], r"`weights` must be finite: element 5 is inf"),
    ("negative", np.r_[np.ones(3), -1.0, np.ones(16)], r"aweights cannot be negative: `weights` element 3"),
    ("one positive", np.r_[1.0, np.zeros(19)], r"only one data point has a positive weight"),
])
def test_degenerate_weights(what, weights, match):
    with np.errstate(all="ignore"):
        with pytest.raises(ValueError):
            stats.gaussian_kde(_data(), weights=weights)
        with pytest.raises(ValueError, match=match):
            gram.gaussian_kde(_data(), weights=weights)
        with pytest.raises(ValueError, match=match):
            gram.gaussian_kde(_data()[0], weights=weights)  # 1-D too


def test_weights_whose_sum_overflows():
    """Each weight is finite but the sum is not: SciPy divides by inf and fails with
    ZeroDivisionError; the weights are well defined, so gram normalises them (by the largest
    first) and gives the density of the equal weights."""
    data = _data()
    ours = gram.gaussian_kde(data, weights=np.full(20, 1e308))
    ref = stats.gaussian_kde(data, weights=np.ones(20))
    np.testing.assert_allclose(ours.weights, ref.weights, rtol=1e-15)
    assert_parity(ours, ref, data[:, :5] + 0.1)
    w = np.r_[np.full(10, 1.7e308), np.full(10, 0.85e308)]
    ours = gram.gaussian_kde(data, weights=w)
    ref = stats.gaussian_kde(data, weights=np.r_[np.full(10, 2.0), np.ones(10)])
    assert_attributes(ours, ref)


def test_tiny_weights():
    data = _data()
    ours, ref = both(data, weights=np.full(20, 1e-320))
    assert_attributes(ours, ref)
    assert_parity(ours, ref, data[:, :5] + 0.1)


# ---- dtypes: any real input, SciPy's output dtype ---------------------------------------------


_DTYPES = [np.float16, np.float32, np.float64, np.longdouble, np.int8, np.int32, np.int64, np.uint16]


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("bw", [None, "silverman", 0.7, np.float32(0.7), np.longdouble(0.7)])
def test_input_dtypes_and_output_dtype(dtype, bw):
    """Every real dtype is accepted (long double included: computed in float64, as SciPy's
    covariance Cholesky is), and the result has SciPy's dtype, np.common_type(covariance,
    points): float64, or long double when the data, the points or the factor are."""
    rng = np.random.default_rng(5)
    data = (rng.normal(size=(2, 30)) * 4).astype(dtype)
    w = rng.random(30) + 0.1
    ours, ref = both(data, bw_method=bw, weights=w)
    assert ours.covariance.dtype == ref.covariance.dtype
    assert ours.cho_cov.dtype == ref.cho_cov.dtype
    for pdtype in (dtype, np.float32, np.longdouble, np.int64):
        pts = (rng.normal(size=(2, 7)) * 4).astype(pdtype)
        for method in ("evaluate", "logpdf", "pdf", "__call__"):
            got, want = getattr(ours, method)(pts), getattr(ref, method)(pts)
            assert got.dtype == want.dtype, (method, dtype, pdtype, got.dtype, want.dtype)
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-12)
