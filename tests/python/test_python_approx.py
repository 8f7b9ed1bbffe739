"""rtol/atol through the Python API (gram.kernel_sum, gram.KernelDensity, gram.gaussian_kde) and the
high-dimensional KDE diagnostics (kde_diagnostics, KernelDensity.diagnose).

The tolerance is checked per query against the exact engine (gram's exact path, itself tested
against long-double loops in the C suite) and against scikit-learn's KernelDensity with the same
rtol/atol (both within their tolerance of the exact density, so within the union of both of each
other). The participation ratio is checked against a NumPy formula here, the regime against the
thresholds' defining equation solved here with SciPy."""
import math

import numpy as np
import pytest
from scipy.optimize import brentq

import gram
from gram.density import kde_diagnostics

sklearn_kd = pytest.importorskip("sklearn.neighbors").KernelDensity


def _data(n, d, seed):
    return np.random.default_rng(seed).normal(size=(n, d))


def _within(approx, exact, rtol, atol, slack=1e-12):
    """The indices where |approx - exact| > atol + rtol·|exact| (with a rounding slack)."""
    bound = atol + rtol * np.abs(exact) + slack * np.abs(exact)
    return np.flatnonzero(np.abs(approx - exact) > bound)


# ---- kernel_sum --------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["gaussian(0.5)", "laplacian(0.8)", "matern32(0.6)", "cauchy(0.4)"])
@pytest.mark.parametrize("method", ["auto", "tree"])
@pytest.mark.parametrize("rtol,atol", [(1e-3, 0.0), (1e-6, 0.0), (0.0, 1e-2), (1e-2, 1e-3)])
def test_kernel_sum_deterministic_tolerance_per_query(kernel, method, rtol, atol):
    X, Y = _data(4000, 3, 1), _data(600, 3, 2)
    w = np.random.default_rng(3).uniform(0.0, 2.0, size=4000)
    exact = gram.kernel_sum(X, Y, w, kernel=kernel)
    out, info = gram.kernel_sum(X, Y, w, kernel=kernel, rtol=rtol, atol=atol, method=method, return_info=True)
    assert out.shape == exact.shape and out.dtype == exact.dtype
    bad = _within(out, exact, rtol, atol)
    assert bad.size == 0, f"{bad.size} queries outside the tolerance, first {bad[:5]}"
    # AUTO prefers deterministic bounds here (a randomized method would need to be 2x cheaper, and
    # none is predicted so on 4000 x 600 pairs)
    assert info["delta"] == 0.0 and info["method"] in ("exact", "tree", "grid", "fgt")
    if method == "tree":
        assert info["method"] == "tree"
    # each value's bound covers its error, and meets the tolerance
    err = info["error_bound"]
    assert err.shape == out.shape and err.dtype == np.float64
    assert np.all(np.abs(out - exact) <= err * (1 + 1e-9) + 1e-12 * np.abs(exact))
    assert 0 < info["kernel_evaluations"] <= 4000 * 600


def test_kernel_sum_sampling_tolerance_binomial():
    # Sampling meets the tolerance per query with probability >= 1 - delta. With delta = 1e-3 over
    # 400 queries the expected number of misses is <= 0.4; allowing 4 gives a false-alarm rate of
    # P(Binomial(400, 1e-3) >= 5) = 7.6e-4 if the misses were independent (one fixed seed here;
    # the C suite tests the rate over many seeds).
    X, Y = _data(20000, 16, 4), _data(400, 16, 5)
    kernel = "gaussian(4.0)"
    exact = gram.kernel_sum(X, Y, kernel=kernel)
    out, info = gram.kernel_sum(X, Y, kernel=kernel, rtol=0.1, method="sampling", delta=1e-3, random_state=7,
                                return_info=True)
    assert info["method"] == "sampling" and info["delta"] == 1e-3
    misses = _within(out, exact, 0.1, 0.0).size
    assert misses <= 4, misses
    # the same seed gives the same sums; random_state as a Generator is accepted
    again = gram.kernel_sum(X, Y, kernel=kernel, rtol=0.1, method="sampling", delta=1e-3, random_state=7)
    np.testing.assert_array_equal(out, again)
    gram.kernel_sum(X, Y[:5], kernel=kernel, rtol=0.1, method="sampling", random_state=np.random.default_rng(1))


def test_kernel_sum_weight_columns_and_log():
    X, Y = _data(3000, 2, 6), _data(300, 2, 7)
    W = np.random.default_rng(8).uniform(0.0, 1.0, size=(3000, 3))
    exact = gram.kernel_sum(X, Y, W, kernel="gaussian(0.3)")
    out, info = gram.kernel_sum(X, Y, W, kernel="gaussian(0.3)", rtol=1e-4, method="tree", return_info=True)
    assert out.shape == (300, 3) and info["error_bound"].shape == (300, 3)
    assert _within(out, exact, 1e-4, 0.0).size == 0
    lexact = gram.kernel_sum(X, Y, kernel="gaussian(0.3)", log=True)
    lout = gram.kernel_sum(X, Y, kernel="gaussian(0.3)", log=True, rtol=1e-4, method="tree")
    # a relative error r on the sum is at most -log(1 - r) on its log
    assert np.all(np.abs(lout - lexact) <= -math.log1p(-1e-4) + 1e-12)


def test_kernel_sum_log_where_the_sum_underflows():
    # queries so far out that every term underflows: the approximate sum is 0, and those rows are
    # summed exactly in log space (before, their log was -inf)
    X = _data(2000, 2, 27)
    Y = np.array([[60.0, 0.0], [0.0, 1.0], [-90.0, 3.0]])
    W = np.random.default_rng(28).uniform(0.5, 1.5, size=(2000, 2))
    for method in ("auto", "tree"):
        got = gram.kernel_sum(X, Y, W, log=True, rtol=1e-3, method=method)
        want = gram.kernel_sum(X, Y, W, log=True)
        assert np.all(np.isfinite(got))
        np.testing.assert_array_equal(got[[0, 2]], want[[0, 2]])
        assert np.all(np.abs(got[1] - want[1]) <= -math.log1p(-1e-3))


def test_kernel_sum_exact_info_and_compatibility():
    X, Y = _data(500, 3, 9), _data(50, 3, 10)
    plain = gram.kernel_sum(X, Y)
    out, info = gram.kernel_sum(X, Y, return_info=True)
    np.testing.assert_array_equal(out, plain)
    assert info == {**info, "method": "exact", "delta": 0.0, "kernel_evaluations": 500 * 50, "rtol": 0.0,
                    "atol": 0.0}
    np.testing.assert_array_equal(info["error_bound"], np.zeros(50))
    # positional arguments keep their meaning
    np.testing.assert_array_equal(gram.kernel_sum(X, Y, None, "gaussian", False), plain)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"rtol": -1e-3}, ValueError, "rtol must be a finite number >= 0"),
    ({"atol": float("nan")}, ValueError, "atol must be a finite number >= 0"),
    ({"rtol": float("inf")}, ValueError, "rtol must be a finite number >= 0"),
    ({"rtol": "0.1"}, TypeError, "rtol must be a real number"),
    ({"rtol": True}, TypeError, "rtol must be a real number"),
    ({"delta": 0.0}, ValueError, r"delta must be in \(0, 1\)"),
    ({"delta": 1.0}, ValueError, r"delta must be in \(0, 1\)"),
    ({"delta": float("nan")}, ValueError, r"delta must be in \(0, 1\)"),
    ({"method": "kd_tree"}, ValueError, "method must be one of 'auto', 'exact', 'tree', 'sampling', 'grid', "
                                        "'fgt', 'features', got 'kd_tree'"),
])
def test_kernel_sum_bad_options(kwargs, exc, match):
    X = _data(50, 2, 11)
    with pytest.raises(exc, match=match):
        gram.kernel_sum(X, X[:5], **kwargs)


@pytest.mark.parametrize("method,kernel", [("grid", "laplacian"), ("fgt", "laplacian"), ("features", "linear")])
def test_kernel_sum_forced_method_refused_for_kernel(method, kernel):
    # grid and fgt bound only gaussian kernels, features only shift-invariant ones
    X = _data(200, 2, 12)
    with pytest.raises(ValueError, match=f"method {method} cannot meet a tolerance for this kernel") as e:
        gram.kernel_sum(X, X[:5], kernel=kernel, rtol=1e-3, method=method)
    assert "methods that can: exact" in str(e.value)


def test_kernel_sum_method_that_cannot_meet_the_tolerance():
    # the tree's bounds need a monotone radial kernel: the library names why and which methods can
    X = _data(200, 2, 12)
    with pytest.raises(ValueError, match="tree") as e:
        gram.kernel_sum(X, X[:5], kernel="linear", rtol=1e-3, method="tree")
    assert "exact" in str(e.value) or "sampling" in str(e.value)


# ---- KernelDensity and gaussian_kde ------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"])
@pytest.mark.parametrize("rtol,atol", [(1e-2, 0.0), (1e-4, 0.0), (0.0, 1e-3), (1e-3, 1e-4)])
def test_kernel_density_tolerance_against_exact_and_sklearn(kernel, rtol, atol):
    X, Y = _data(3000, 3, 13), _data(400, 3, 14) * 1.2
    kw = {"kernel": kernel, "bandwidth": 0.4}
    f_exact = np.exp(gram.KernelDensity(**kw).fit(X).score_samples(Y))
    kd = gram.KernelDensity(rtol=rtol, atol=atol, **kw).fit(X)
    f = np.exp(kd.score_samples(Y))
    bad = _within(f, f_exact, rtol, atol, slack=1e-10)
    assert bad.size == 0, f"{bad.size} densities outside the tolerance, first {bad[:5]}"
    # scikit-learn with the same rtol/atol: each within its tolerance of the exact density, so the
    # two within the union (the sum) of both tolerances of each other
    f_sk = np.exp(sklearn_kd(rtol=rtol, atol=atol, **kw).fit(X).score_samples(Y))
    # (plus 1e-13 of the largest density: scikit-learn's own exact compact kernels give up to
    # ~1e-15, not 0, where no point is in reach, from its log-space arithmetic)
    union = 2 * (atol + rtol * f_exact) + 1e-10 * f_exact + 1e-13 * f_exact.max()
    assert np.all(np.abs(f - f_sk) <= union)


def test_kernel_density_tolerance_keeps_the_contract():
    X = _data(500, 2, 15)
    kd = gram.KernelDensity(rtol=1e-3, atol=1e-6).fit(X)
    assert kd.get_params()["rtol"] == 1e-3 and kd.get_params()["atol"] == 1e-6
    from sklearn.base import clone
    assert clone(kd).get_params() == kd.get_params()
    s = kd.score_samples(X[:10])
    assert s.dtype == np.float64 and s.shape == (10,)
    assert kd.score(X[:10]) == pytest.approx(s.sum())
    for bad in (-1.0, float("nan"), "x"):
        with pytest.raises(ValueError, match="rtol"):
            gram.KernelDensity(rtol=bad).fit(X)


def test_kernel_density_far_tail_stays_finite():
    # every density below the underflow threshold is redone exactly in log space
    X = _data(1000, 2, 16)
    Y = np.array([[60.0, 0.0], [0.0, -80.0]])
    exact = gram.KernelDensity(bandwidth=0.5).fit(X).score_samples(Y)
    approx = gram.KernelDensity(bandwidth=0.5, rtol=1e-3).fit(X).score_samples(Y)
    assert np.all(np.isfinite(approx))
    np.testing.assert_allclose(approx, exact, rtol=1e-12)


@pytest.mark.parametrize("rtol,atol", [(1e-3, 0.0), (0.0, 1e-4)])
def test_gaussian_kde_evaluate_and_logpdf_tolerance(rtol, atol):
    data = _data(2000, 2, 17).T
    pts = _data(300, 2, 18).T
    k = gram.gaussian_kde(data)
    exact = k.evaluate(pts)
    f = k.evaluate(pts, rtol=rtol, atol=atol)
    assert _within(f, exact, rtol, atol, slack=1e-10).size == 0
    lf = k.logpdf(pts, rtol=rtol, atol=atol)
    assert _within(np.exp(lf), exact, rtol, atol, slack=1e-10).size == 0
    np.testing.assert_array_equal(k.evaluate(pts), k(pts))
    with pytest.raises(ValueError, match="rtol must be a finite number >= 0"):
        k.evaluate(pts, rtol=-1)
    with pytest.raises(ValueError, match="atol must be a finite number >= 0"):
        k.logpdf(pts, atol=float("nan"))


# ---- diagnostics -------------------------------------------------------------------------------


def _participation(X, Y, h, w=None):
    d2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    lk = -d2 / (2 * h * h)
    lk -= lk.max(axis=1, keepdims=True)  # the ratio does not change with a common factor
    kw = np.exp(lk) * (1.0 if w is None else w)
    return kw.sum(1) ** 2 / (kw ** 2).sum(1)


def _s(t):
    return 0.5 * (math.log1p(t) - t / (1 + t) ** 2)


def test_kde_diagnostics_against_numpy_and_the_thresholds():
    X, Y = _data(1500, 6, 19), _data(80, 6, 20)
    w = np.random.default_rng(21).uniform(0.1, 1.0, size=1500)
    d = kde_diagnostics(X, 0.7, Y=Y, sample_weight=w)
    np.testing.assert_allclose(d["participation"], _participation(X, Y, 0.7, w), rtol=1e-10)
    alpha = math.log(1500) / 6
    assert d["alpha"] == pytest.approx(alpha)
    t = brentq(lambda t: _s(t) - alpha, 1e-12, 1e12, xtol=1e-15)
    assert d["h_g"] == pytest.approx(1 / math.sqrt(t), rel=1e-9)
    assert d["h_clt"] == pytest.approx(math.sqrt(2 / t), rel=1e-9)
    h = math.sqrt(np.mean((0.7 / X.std(axis=0)) ** 2))
    assert d["h"] == pytest.approx(h)
    want = "clt" if h >= d["h_clt"] else "heavy" if h >= d["h_g"] else "extreme"
    assert d["regime"] == want
    assert set(d["quantiles"]) == {0.1, 0.5, 0.9}
    assert d["quantiles"][0.5] == pytest.approx(np.quantile(d["participation"], 0.5))


def test_kde_diagnostics_regimes_on_gaussian_data():
    # D = 10, N = 2000: h_G = 0.481, h_CLT = 0.680 (in units of the data's spread)
    X, Y = _data(2000, 10, 22), _data(100, 10, 23)
    wide, narrow = kde_diagnostics(X, 2.0, Y=Y), kde_diagnostics(X, 0.2, Y=Y)
    assert wide["regime"] == "clt" and narrow["regime"] == "extreme"
    assert kde_diagnostics(X, 0.58, Y=Y)["regime"] == "heavy"
    # few points carry the narrow bandwidth's densities, many the wide one's
    assert narrow["quantiles"][0.5] < 1.5 < 100 < wide["quantiles"][0.5]


def test_kernel_density_diagnose():
    X, Y = _data(800, 4, 24), _data(30, 4, 25)
    kd = gram.KernelDensity(bandwidth=0.6, kernel="epanechnikov").fit(X)
    d = kd.diagnose(Y)
    ref = kde_diagnostics(X, 0.6, kernel="epanechnikov", Y=Y)
    np.testing.assert_array_equal(d["participation"], ref["participation"])
    assert d["regime"] is None  # the thresholds are for the gaussian kernel
    # 0 exactly where no point is in the compact kernel's reach (the density is 0), else in [1, N]
    p, dens = d["participation"], np.exp(kd.score_samples(Y))
    assert np.array_equal(p == 0, dens == 0) and np.any(p == 0)
    assert np.all((p[p > 0] >= 1 - 1e-12) & (p[p > 0] <= 800))
    assert kd.diagnose()["participation"].shape == (800,)
    with pytest.raises(ValueError, match="features"):
        kd.diagnose(Y[:, :3])


@pytest.mark.parametrize("kwargs,match", [
    ({"bandwidth": -1.0}, "bandwidth must be a positive finite number"),
    ({"bandwidth": [1.0, 2.0]}, "bandwidth must be a positive finite number"),
    ({"bandwidth": 1.0, "kernel": "rbf"}, "kernel must be one of"),
    ({"bandwidth": 1.0, "sample_weight": -np.ones(50)}, "negative|weight"),
])
def test_kde_diagnostics_bad_input(kwargs, match):
    X = _data(50, 3, 26)
    with pytest.raises(ValueError, match=match):
        kde_diagnostics(X, **kwargs)


# ---- real data ---------------------------------------------------------------------------------

REPO_DATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "data"


def _standardized(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


@pytest.mark.parametrize("name,bandwidth,rtol", [
    ("faithful", 0.15, 1e-6),   # data/faithful.csv, shipped with gram (D = 2)
    ("wine", 0.8, 1e-3),        # scikit-learn's bundled wine data (D = 13)
    ("digits", 4.0, 1e-2),      # scikit-learn's bundled digits (D = 64)
])
def test_kernel_density_tolerance_on_real_data(name, bandwidth, rtol):
    if name == "faithful":
        X = _standardized(np.loadtxt(REPO_DATA / "faithful.csv", delimiter=",", skiprows=1))
    else:
        from sklearn import datasets
        X = _standardized(getattr(datasets, f"load_{name}")().data) if name == "wine" \
            else getattr(datasets, f"load_{name}")().data
    for kernel in ("gaussian", "epanechnikov"):
        kw = {"kernel": kernel, "bandwidth": bandwidth}
        f_exact = np.exp(gram.KernelDensity(**kw).fit(X).score_samples(X))
        f = np.exp(gram.KernelDensity(rtol=rtol, **kw).fit(X).score_samples(X))
        assert _within(f, f_exact, rtol, 0.0, slack=1e-10).size == 0
        f_sk = np.exp(sklearn_kd(rtol=rtol, **kw).fit(X).score_samples(X))
        assert np.all(np.abs(f - f_sk) <= 2 * rtol * f_exact + 1e-10 * f_exact + 1e-13 * f_exact.max())
    # the automatic choice on the raw sums too, with its info
    out, info = gram.kernel_sum(X, X[:200], kernel=f"gaussian({bandwidth})", rtol=rtol, return_info=True,
                                random_state=0)
    exact = gram.kernel_sum(X, X[:200], kernel=f"gaussian({bandwidth})")
    assert _within(out, exact, rtol, 0.0).size == 0 and info["method"] in ("exact", "tree", "sampling")
