"""gram.PrivateKernelSum, gram.PrivateSimilarityClassifier and gram.PrivacyAccountant.

References are computed here: exact sums with SciPy's cdist, the non-private average-similarity
classifier in NumPy, composition totals by hand from gram.h's rules. The noise is drawn from test
seeds (``noise_seed``), so every test is deterministic; statistical tests state the probability
that a correct library fails them for a seed chosen at random (their false-alarm rate).
"""
import math
import pickle
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator

import gram

KERNELS = ("gaussian", "exponential", "cauchy")
DISTANCES = ("l1", "l2", "lpp")


def exact(kind, X, Y, bandwidth=1.0, p=1.0):
    """Σ_x f(x, y) for each row y of Y (float64, SciPy)."""
    if kind == "gaussian":
        K = np.exp(-cdist(Y, X, "sqeuclidean") / bandwidth**2)
    elif kind == "exponential":
        K = np.exp(-cdist(Y, X, "euclidean") / bandwidth)
    elif kind == "cauchy":
        K = 1.0 / (1.0 + cdist(Y, X, "sqeuclidean") / bandwidth**2)
    elif kind == "l1":
        K = cdist(Y, X, "cityblock")
    elif kind == "l2":
        K = cdist(Y, X, "euclidean")
    else:
        K = (np.abs(Y[:, None, :] - X[None, :, :]) ** p).sum(axis=2)
    return K.sum(axis=1)


def ball(n, d, radius, seed):
    """n points uniform in direction, radius uniform in [0, radius]: inside the ball."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, d))
    return Z / np.linalg.norm(Z, axis=1, keepdims=True) * rng.uniform(0, radius, size=(n, 1))


def fit(kind, X, **kw):
    kw.setdefault("domain_radius", 1.0)
    kw.setdefault("random_state", 0)
    kw.setdefault("noise_seed", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no row may be clipped unless a test says so
        return gram.PrivateKernelSum(kind, **kw).fit(X)


# ---- utility: the sums against SciPy's --------------------------------------------------------------


@pytest.mark.parametrize("kind, delta, mechanism", [("gaussian", 0.0, "paper"), ("exponential", 0.0, "paper"),
                                                    ("gaussian", 1e-6, "paper"), ("gaussian", 0.0, "baseline"),
                                                    ("cauchy", 0.0, "paper")])
def test_kernel_noise_has_the_calibrated_spread(kind, delta, mechanism):
    # With the public randomness fixed (random_state), a query is the random-feature estimate
    # plus phi(y).Z, Z the released noise with scale b = privacy_['noise_scale']. |phi(y)|_2 = 1
    # for cos/sin pairs, so over independent noise draws the query's standard deviation is
    # sqrt(2) b for Laplace noise and b (= sigma) for Gaussian noise. For cauchy a query weighs
    # its J terms' maps by +-A = +-sum|a_j| (kernels.c), so the sd is A sqrt(J) times that, with
    # 1 - approx_error <= A <= 4 (the fit's own rule): only that window is checked.
    # 200 fits with 200 noise seeds: s²/sd² of a near-Gaussian sum is chi-square with 199 degrees
    # of freedom over 199 (sd 0.1), so [0.75, 1.3] for s/sd is over 4 sds on each side (false
    # alarm < 1e-4 per query, 3 queries). The mean must be within 5 standard errors of the
    # noise-free estimate at epsilon 1e9 (false alarm < 1e-6 per query).
    X = ball(200, 3, 1.0, 0)
    Y = ball(3, 3, 1.0, 1)
    kw = dict(n_components=256, delta=delta, mechanism=mechanism, reduced_dim=2 if mechanism == "paper" else None)
    clean = fit(kind, X, epsilon=1e9, **kw).query(Y)
    runs = [fit(kind, X, epsilon=1.0, noise_seed=s, **kw) for s in range(200)]
    Q = np.array([r.query(Y) for r in runs])
    info = runs[0].privacy_
    b = info["noise_scale"]
    assert info["noise"] == ("discrete_gaussian" if delta else "discrete_laplace")
    sd = b if delta else math.sqrt(2.0) * b
    s = Q.std(axis=0, ddof=1)
    if kind == "cauchy":
        lo, hi = sd * (1 - info["approx_error"]), sd * 4 * math.sqrt(info["n_terms"])
    else:
        lo = hi = sd
    assert np.all((0.75 * lo < s) & (s < 1.3 * hi)), (s, lo, hi)
    assert np.all(np.abs(Q.mean(axis=0) - clean) < 5 * 1.3 * hi / math.sqrt(200)), (Q.mean(axis=0), clean, hi)


@pytest.mark.parametrize("kind", KERNELS + ("l1",))
def test_noise_scale_is_inversely_proportional_to_epsilon(kind):
    # Laplace: b = sensitivity / epsilon (the statistic's grid is the same at both epsilons here,
    # so the ratio is exact up to the grid's rounding of the rational scale: 1e-6).
    X = ball(100, 3, 1.0, 26)
    b1 = fit(kind, X, epsilon=1.0, levels=6).privacy_["noise_scale"]
    b4 = fit(kind, X, epsilon=4.0, levels=6).privacy_["noise_scale"]
    assert b1 / b4 == pytest.approx(4.0, rel=1e-6)


@pytest.mark.parametrize("kind", KERNELS)
def test_kernel_sums_within_the_noise_and_approximation_bound(kind):
    # error = random-feature error + phi(y).Z. The first has sd <= n sqrt(2/R) per query (each of
    # the R/2 frequencies contributes a term bounded by n in absolute value about its mean); for
    # cauchy each term's sum is weighed by |a_j| (sum <= 4) and n·approx_error is the fit's own
    # error. The second has sd sqrt(2) b, times 4 sqrt(J) for cauchy (previous test). Chebyshev at
    # 10 sds: a false alarm rate below 1% per query over random seeds.
    n, R = 300, 1024
    X = ball(n, 4, 1.0, 2)
    Y = ball(5, 4, 1.0, 3)
    ref = exact(kind, X, Y)
    for eps in (1.0, 1e9):
        est = fit(kind, X, epsilon=eps, n_components=R)
        info = est.privacy_
        a, amp = (4.0, 4.0 * math.sqrt(info["n_terms"])) if kind == "cauchy" else (1.0, 1.0)
        bound = (10 * (a * n * math.sqrt(2.0 / R) + amp * math.sqrt(2.0) * info["noise_scale"])
                 + n * info["approx_error"])
        err = np.abs(est.query(Y) - ref)
        assert np.all(err < bound), (eps, err, bound)
    # epsilon 1e9: only the approximation is left (measured: under 2.5% of the sums)
    assert np.all(err / ref < 0.05), err / ref


def test_dimensionality_reduction_keeps_the_sums():
    # d = 100 projected to k = 32 (the paper's mechanism) against the baseline in all 100
    # dimensions, at epsilon 1e9. A JL projection changes each |x - y|² by a factor 1 +- O(sqrt(2/k))
    # (0.25 at k = 32); measured relative errors of the sums were under 0.14 at k = 16 and under
    # 0.09 at k = 32: the bound 0.3 leaves that margin twice over.
    X = ball(300, 100, 1.0, 30)
    Y = ball(5, 100, 1.0, 31)
    ref = exact("gaussian", X, Y)
    jl = fit("gaussian", X, epsilon=1e9, reduced_dim=32, n_components=2048)
    base = fit("gaussian", X, epsilon=1e9, mechanism="baseline", n_components=2048)
    assert jl.privacy_["reduced_dim"] == 32 and base.privacy_["mechanism"] == "baseline"
    assert np.all(np.abs(jl.query(Y) - ref) / ref < 0.3)
    assert np.all(np.abs(base.query(Y) - ref) / ref < 0.1)
    assert not np.array_equal(jl.query(Y), base.query(Y))


def test_kernel_average_divides_by_the_released_n():
    X = ball(120, 3, 1.0, 4)
    Y = ball(4, 3, 1.0, 5)
    est = fit("gaussian", X)
    assert est.n_samples_ == 120.0  # replace-one neighbours: n is public
    np.testing.assert_allclose(est.query(Y, average=True), est.query(Y) / 120.0, rtol=1e-15)
    est = fit("gaussian", X, neighbours="add_remove")
    assert est.privacy_["neighbours"] == "add_remove"
    np.testing.assert_allclose(est.query(Y, average=True), est.query(Y) / max(est.n_samples_, 1.0),
                               rtol=1e-15)


def test_add_remove_releases_n_with_ten_percent_of_epsilon():
    # n is a count (sensitivity 1) released with discrete Laplace noise at 10% of epsilon = 1: scale
    # 10, sd sqrt(2)·10 (to 0.1% for a discrete Laplace this wide). Over 200 noise seeds s²/sd² has
    # sd sqrt((2 + 3)/199) = 0.16 (the Laplace's excess kurtosis is 3), so the window [0.65, 1.35]
    # for s/sd is over 3.6 of those sds on each side (false alarm < 1e-3); the mean must be within
    # 5 standard errors of n, and every released n is an integer.
    X = ball(120, 2, 1.0, 27)
    ns = np.array([fit("l1", X, neighbours="add_remove", levels=3, noise_seed=s).n_samples_ for s in range(200)])
    assert np.all(ns == np.round(ns))
    sd = math.sqrt(2.0) * 10.0
    assert 0.65 * sd < ns.std(ddof=1) < 1.35 * sd, ns.std(ddof=1)
    assert abs(ns.mean() - 120) < 5 * sd / math.sqrt(200), ns.mean()


@pytest.mark.parametrize("kind", DISTANCES)
def test_distance_sums_converge_to_exact_as_epsilon_grows(kind):
    # epsilon 1e9: the noise is negligible, and what is left is the discretisation of each
    # coordinate's [-R, R] into 2^L cells of width h = 2R/2^L, every point moved to its cell's
    # midpoint (by h/2): each |x_j - y_j|^p moves by at most h/2 (p = 1) or p (2R)^(p-1) h/2
    # (1 < p <= 2). For l2, the ℓ2 → ℓ1 embedding with k projections z_i = g_i·x, z_i in
    # [-|g_i|_1 R, |g_i|_1 R] (the box), adds a relative error of sd sqrt(pi/2 - 1)/sqrt(k) per pair
    # (the sum's is at most that): Chebyshev at 10 sds (false alarm <= 1% per query), and its
    # cells of width 2|g_i|_1 R/2^L move each pair by sqrt(pi/2) mean_i |g_i|_1 R/2^L, about
    # d R/2^L (twice that allowed for the draw of g).
    n, d, R = 200, 3, 1.0
    X = ball(n, d, R, 6)
    Y = ball(5, d, R, 7)
    p = 1.5 if kind == "lpp" else 1.0
    L = 8 if kind == "l2" else 12
    k = 1024 if kind == "l2" else None
    est = fit(kind, X, epsilon=1e9, levels=L, p=p, domain="box", n_components=k)
    ref = exact(kind, X, Y, p=p)
    h = 2 * R / 2**L
    if kind == "l2":
        assert est.privacy_["n_components"] == k
        bound = ref * 10 * math.sqrt(math.pi / 2 - 1) / math.sqrt(k) + n * 2 * d * R / 2**L
    else:
        bound = n * d * p * (2 * R) ** (p - 1) * h / 2
    err = np.abs(est.query(Y) - ref)
    assert np.all(err <= bound), (err, bound)


def test_l1_sums_within_the_tree_noise_bound():
    # A query is Σ_c ĉ_c |m_c - y_j| per coordinate; by summation by parts (n is exact under
    # replace-one) its error is at most TV(g)·max_e |CDF error at edge e| = 2R·max per coordinate,
    # and a CDF value's error has at most the variance of L + 1 released nodes, 2(L + 1) b² with
    # b = noise_scale. A union bound with Chebyshev over the d·2^L edges: the max exceeds
    # t = 10 sqrt(d 2^L 2(L + 1)) b with probability <= 1% (the false alarm rate). The
    # discretisation adds n·d·h/2 = n·d·R/2^L.
    n, d, R, L = 500, 2, 1.0, 8
    X = ball(n, d, R, 8)
    Y = ball(5, d, R, 9)
    est = fit("l1", X, epsilon=1.0, levels=L, domain="box")
    b = est.privacy_["noise_scale"]
    t = 10 * math.sqrt(d * 2**L * 2 * (L + 1)) * b
    bound = d * 2 * R * t + n * d * R / 2**L
    ref = exact("l1", X, Y)
    err = np.abs(est.query(Y) - ref)
    assert np.all(err < bound), (err, bound)
    # and the error grows as epsilon shrinks: the median over 20 seeds of the mean error at
    # epsilon 0.05 exceeds that at 1 (the noise's scale grows 20-fold; the cells are the same)
    big = [np.abs(fit("l1", X, epsilon=0.05, levels=L, domain="box", noise_seed=s).query(Y) - ref).mean()
           for s in range(20)]
    small = [np.abs(fit("l1", X, epsilon=1.0, levels=L, domain="box", noise_seed=s).query(Y) - ref).mean()
             for s in range(20)]
    assert np.median(big) > 5 * np.median(small), (np.median(big), np.median(small))


def _audit_epsilon(a, b, alpha):
    """A lower confidence bound (level 1 - alpha) on the epsilon of a mechanism whose outputs on
    two neighbouring data sets are the samples a and b: for each threshold test (output >= c, or
    < c, either way round) log(P_a lower / P_b upper) with Clopper–Pearson bounds, Bonferroni
    over the tests; the largest."""
    from scipy.stats import beta
    lo_all = min(a.min(), b.min())
    hi_all = max(a.max(), b.max())
    cuts = np.arange(lo_all, hi_all + 1)
    tests = 4 * len(cuts)
    best = 0.0
    for c in cuts:
        for s, t in ((a >= c, b >= c), (b >= c, a >= c), (a < c, b < c), (b < c, a < c)):
            k1, k0, n1, n0 = int(s.sum()), int(t.sum()), len(s), len(t)
            if k1 == 0:
                continue
            lo = beta.ppf(alpha / tests / 2, k1, n1 - k1 + 1)
            hi = beta.ppf(1 - alpha / tests / 2, k0 + 1, n0 - k0) if k0 < n0 else 1.0
            best = max(best, math.log(lo / hi))
    return best


def test_audit_of_the_released_n_stays_within_its_share_of_epsilon():
    # An empirical privacy audit through the public API: under add/remove neighbours the released n
    # spends 10% of epsilon (gram.h). 3000 releases of X and of X without its last row (epsilon 10,
    # so the share is 1.0); the lower confidence bound (level 1 - 1e-3, the false alarm rate) on
    # the epsilon that distinguishes them must not exceed 1.0. It is also required to exceed 0.5
    # (measured: 0.83), so that the audit can see the leak it looks for: a release of n with twice
    # its share would give about 1.7.
    X = ball(30, 2, 1.0, 40)
    N = 3000
    a = np.array([fit("l1", X, epsilon=10.0, neighbours="add_remove", levels=1, noise_seed=s).n_samples_
                  for s in range(N)])
    b = np.array([fit("l1", X[:-1], epsilon=10.0, neighbours="add_remove", levels=1, noise_seed=N + s).n_samples_
                  for s in range(N)])
    eps_lb = _audit_epsilon(a, b, 1e-3)
    assert 0.5 < eps_lb <= 0.1 * 10.0, eps_lb


def test_clipping_is_counted_and_warned():
    X = ball(50, 3, 1.0, 10)
    X[:7] *= 50.0  # rows whose radius was above 0.02 now lie outside the unit ball
    outside = int((np.linalg.norm(X, axis=1) > 1.0).sum())
    with pytest.warns(UserWarning, match=rf"{outside} of 50 rows of X lay outside the domain"):
        est = gram.PrivateKernelSum(domain_radius=1.0, noise_seed=0, random_state=0).fit(X)
    assert est.n_clipped_ == outside
    # the sketch is the one of the rows scaled onto the sphere (NumPy's scaling may leave a norm an
    # ulp above 1, which the library clips again: the sums agree to rounding)
    Xc = X / np.maximum(1.0, np.linalg.norm(X, axis=1, keepdims=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = gram.PrivateKernelSum(domain_radius=1.0, noise_seed=0, random_state=0).fit(Xc)
    Y = ball(3, 3, 1.0, 11)
    np.testing.assert_allclose(est.query(Y), ref.query(Y), rtol=0, atol=1e-9)
    no_clip = gram.PrivateKernelSum(domain_radius=1.0, noise_seed=0, random_state=0).fit(X * 0.01)
    assert no_clip.n_clipped_ == 0


def test_float32_input_gives_float64_sums_of_the_same_data():
    X = ball(80, 3, 1.0, 12)
    Y = ball(4, 3, 1.0, 13)
    a = fit("gaussian", X.astype(np.float32).astype(np.float64))
    b = fit("gaussian", X.astype(np.float32))
    qa, qb = a.query(Y.astype(np.float32)), b.query(Y.astype(np.float32).astype(np.float64))
    assert qa.dtype == qb.dtype == np.float64
    np.testing.assert_array_equal(qa, qb)


# ---- persistence, pickling, the estimator contract ----------------------------------------------------


@pytest.mark.parametrize("kind", KERNELS + DISTANCES)
def test_save_load_pickle_and_bytes_round_trip(kind, tmp_path):
    X = ball(60, 3, 1.0, 14)
    Y = ball(5, 3, 1.0, 15)
    est = fit(kind, X)
    q = est.query(Y)
    path = tmp_path / "s.sketch"
    est.save(path)
    assert path.read_bytes() == est.sketch_bytes_
    for other in (gram.PrivateKernelSum.load(path), gram.PrivateKernelSum.load(str(path)),
                  gram.PrivateKernelSum.from_bytes(est.sketch_bytes_), pickle.loads(pickle.dumps(est))):
        np.testing.assert_array_equal(other.query(Y), q)
        np.testing.assert_array_equal(other.query(Y, average=True), est.query(Y, average=True))
        assert other.n_features_in_ == 3 and other.n_samples_ == est.n_samples_
        assert other.privacy_ == est.privacy_
    loaded = gram.PrivateKernelSum.load(path)
    assert loaded.n_clipped_ is None  # the clip count is not released, so not saved
    assert loaded.kernel == kind and loaded.epsilon == est.epsilon and loaded.domain_radius == 1.0
    # its parameters make the same kind of sketch again (a clone refits)
    again = clone(loaded).set_params(noise_seed=1, random_state=0).fit(X)
    assert again.privacy_ == est.privacy_
    np.testing.assert_array_equal(again.query(Y), q)
    # the pickle holds the released sketch, not X: no row's bytes appear in it
    blob = pickle.dumps(est)
    for row in X:
        assert row.tobytes() not in blob
        assert row[0].tobytes() not in blob


def test_privacy_metadata_says_what_the_release_is():
    X = ball(40, 2, 1.0, 16)
    est = fit("gaussian", X, epsilon=0.5)
    info = est.privacy_
    assert (est.epsilon_, est.delta_) == (0.5, 0.0)
    assert info["noise"] == "discrete_laplace" and info["test_noise"] is True
    assert info["radius"] == 1.0 and info["domain"] == "ball" and info["dim"] == 2
    assert info["noise_scale"] > 0 and info["sensitivity"]
    est = fit("gaussian", X, epsilon=0.5, delta=1e-6)
    assert est.privacy_["noise"] == "discrete_gaussian" and est.delta_ == 1e-6
    # without a test seed the noise comes from the operating system: two fits differ, and the
    # sketch says it is private
    a = gram.PrivateKernelSum(domain_radius=1.0, random_state=0).fit(X)
    b = gram.PrivateKernelSum(domain_radius=1.0, random_state=0).fit(X)
    assert a.privacy_["test_noise"] is False
    assert not np.array_equal(a.query(X[:3]), b.query(X[:3]))
    assert a.privacy_["seed"] == b.privacy_["seed"]  # the public randomness is random_state's


def test_random_state_seeds_only_the_public_randomness():
    X = ball(40, 2, 1.0, 17)
    # the sketch's public seed is 64 bits drawn from random_state as two 32-bit words (high first):
    # an int and RandomState(int) give the same (scikit-learn's rule), a Generator its own draw
    def seed(rs):
        return gram.PrivateKernelSum(domain_radius=1.0, random_state=rs, noise_seed=0).fit(X).privacy_["seed"]

    hi, lo = np.random.RandomState(7).randint(0, 2**32, size=2, dtype=np.uint64)
    assert seed(7) == seed(np.random.RandomState(7)) == (int(hi) << 32) | int(lo)
    hi, lo = np.random.default_rng(7).integers(0, 2**32, size=2, dtype=np.uint64)
    assert seed(np.random.default_rng(7)) == (int(hi) << 32) | int(lo)
    # the noise does not depend on it: the same noise seed with another public seed gives other
    # projections, but a test seed fixes the noise draws whatever random_state is (the l1 trees
    # use no public randomness, so their sketches are identical)
    a = gram.PrivateKernelSum("l1", domain_radius=1.0, random_state=1, noise_seed=3, levels=4).fit(X)
    b = gram.PrivateKernelSum("l1", domain_radius=1.0, random_state=2, noise_seed=3, levels=4).fit(X)
    np.testing.assert_array_equal(a.query(X[:4]), b.query(X[:4]))


def test_clone_and_get_params():
    est = gram.PrivateKernelSum("l1", epsilon=2.0, domain_radius=3.0, levels=5, noise_seed=4)
    params = est.get_params()
    assert params["kernel"] == "l1" and params["levels"] == 5 and params["noise_seed"] == 4
    assert set(params) == {"kernel", "epsilon", "delta", "bandwidth", "domain_radius", "n_components",
                           "random_state", "domain", "mechanism", "neighbours", "reduced_dim", "levels",
                           "p", "n_terms", "noise_seed"}
    c = clone(est)
    assert c.get_params() == params and not hasattr(c, "privacy_")
    clf = gram.PrivateSimilarityClassifier(kernel="l2", domain_radius=2.0)
    assert clone(clf).get_params() == clf.get_params()


# ---- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("params, match", [
    ({"domain_radius": None}, "domain_radius is required"),
    ({"epsilon": 0.0}, r"'epsilon' parameter .* must be a float in the range \(0.0, inf\)"),
    ({"epsilon": -1.0}, "'epsilon' parameter"),
    ({"epsilon": math.inf}, "'epsilon' parameter"),
    ({"epsilon": math.nan}, "'epsilon' parameter"),
    ({"delta": 1.0}, r"'delta' parameter .* \[0.0, 1.0\)"),
    ({"delta": -1e-9}, "'delta' parameter"),
    ({"domain_radius": 0.0}, "'domain_radius' parameter"),
    ({"domain_radius": -2.0}, "'domain_radius' parameter"),
    ({"domain_radius": math.inf}, "'domain_radius' parameter"),
    ({"bandwidth": 0.0}, "'bandwidth' parameter"),
    ({"kernel": "rbf"}, "'kernel' parameter .* among"),
    ({"domain": "sphere"}, "'domain' parameter"),
    ({"mechanism": "fast"}, "'mechanism' parameter"),
    ({"neighbours": "swap"}, "'neighbours' parameter"),
    ({"p": 2.5}, r"'p' parameter .* \(0.0, 2.0\]"),
    ({"n_components": 0}, "'n_components' parameter"),
    ({"n_components": 2.5}, "'n_components' parameter"),
    ({"levels": True}, "'levels' parameter"),
    ({"random_state": "x"}, "'random_state' parameter"),
    ({"noise_seed": -1}, "'noise_seed' parameter"),
])
def test_bad_parameters_are_refused_before_anything_is_released(params, match):
    kw = {"domain_radius": 1.0, **params}
    X = ball(10, 2, 1.0, 18)
    with pytest.raises(ValueError, match=match):
        gram.PrivateKernelSum(**kw).fit(X)
    if "neighbours" not in params:  # the classifier has none (its class sketches are add/remove)
        with pytest.raises(ValueError, match=match):
            gram.PrivateSimilarityClassifier(**kw).fit(X, np.arange(10) % 2)


def test_library_checks_are_clear_errors():
    X = ball(10, 2, 1.0, 19)
    with pytest.raises(ValueError, match="n_components"):  # paired cos/sin features: R even
        gram.PrivateKernelSum(domain_radius=1.0, n_components=7, noise_seed=0).fit(X)


@pytest.mark.parametrize("bad, what", [(math.nan, "NaN"), (math.inf, "infinity"), (-math.inf, "infinity")])
def test_nonfinite_data_and_queries(bad, what):
    X = ball(10, 2, 1.0, 20)
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match=rf"Input X contains {what}.*row 3, column 1"):
        gram.PrivateKernelSum(domain_radius=1.0, noise_seed=0).fit(Xb)
    with pytest.raises(ValueError, match=rf"Input X contains {what}"):
        gram.PrivateSimilarityClassifier(domain_radius=1.0, noise_seed=0).fit(Xb, np.arange(10) % 2)
    est = fit("gaussian", X)
    with pytest.raises(ValueError, match=rf"Input X contains {what}.*row 3, column 1"):
        est.query(Xb)


def test_shapes_empty_data_wrong_dimension_and_unfitted():
    est = gram.PrivateKernelSum(domain_radius=1.0, noise_seed=0)
    with pytest.raises(NotFittedError):
        est.query(np.zeros((2, 2)))
    with pytest.raises(NotFittedError):
        est.sketch_bytes_
    with pytest.raises(NotFittedError):
        est.save("/nonexistent/never-written")
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        est.fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.fit(np.zeros(4))
    est.fit(ball(10, 2, 1.0, 21))
    with pytest.raises(ValueError, match="X has 3 features, but PrivateKernelSum is expecting 2 features"):
        est.query(np.zeros((4, 3)))
    with pytest.raises(TypeError, match="Sparse data"):
        import scipy.sparse
        est.query(scipy.sparse.csr_matrix(np.zeros((2, 2))))
    clf = gram.PrivateSimilarityClassifier(domain_radius=1.0, noise_seed=0)
    with pytest.raises(NotFittedError):
        clf.predict(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="number of classes has to be greater than one"):
        clf.fit(ball(10, 2, 1.0, 22), np.zeros(10))
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(ball(10, 2, 1.0, 22), np.linspace(0, 1, 10))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(ball(10, 2, 1.0, 22), np.arange(9) % 2)


def test_damaged_sketch_files_are_refused(tmp_path):
    est = fit("l1", ball(30, 2, 1.0, 23))
    data = bytearray(est.sketch_bytes_)
    data[len(data) // 2] ^= 0x40
    with pytest.raises(ValueError):
        gram.PrivateKernelSum.from_bytes(bytes(data))
    with pytest.raises(ValueError):
        gram.PrivateKernelSum.from_bytes(b"")
    path = tmp_path / "bad.sketch"
    path.write_bytes(bytes(data[:40]))
    with pytest.raises(ValueError):
        gram.PrivateKernelSum.load(path)
    with pytest.raises(OSError):
        gram.PrivateKernelSum.load(tmp_path / "missing.sketch")


# ---- the classifier --------------------------------------------------------------------------------


def _digits(radius):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixels in [0, 1]
    X = X / np.linalg.norm(X, axis=1).max() * radius  # into the ball of that radius
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    return X[idx[:1200]], y[idx[:1200]], X[idx[1200:]], y[idx[1200:]]


def _nonprivate_accuracy(Xtr, ytr, Xte, yte, bandwidth):
    K = np.exp(-cdist(Xte, Xtr, "sqeuclidean") / bandwidth**2)
    classes = np.unique(ytr)
    S = np.stack([K[:, ytr == c].mean(axis=1) for c in classes], axis=1)
    return float(np.mean(classes[np.argmax(S, axis=1)] == yte))


def test_classifier_on_digits_matches_the_nonprivate_classifier_at_large_epsilon():
    # epsilon 1e9: what is left is the random-feature error (R = 2048, sd <= sqrt(2/R) = 0.03 on
    # averages of similarities in [0, 1]); the accuracy may move by the few test points whose two
    # best classes are that close: 3 points in 100 is the stated tolerance.
    Xtr, ytr, Xte, yte = _digits(1.0)
    bw = 0.5
    ref = _nonprivate_accuracy(Xtr, ytr, Xte, yte, bw)
    clf = gram.PrivateSimilarityClassifier(epsilon=1e9, bandwidth=bw, domain_radius=1.0, n_components=2048,
                                           random_state=0, noise_seed=0).fit(Xtr, ytr)
    acc = clf.score(Xte, yte)
    assert ref > 0.85
    assert abs(acc - ref) <= 0.03, (acc, ref)
    assert clf.privacy_spent_ == (1e9, 0.0)
    assert np.array_equal(clf.classes_, np.arange(10))
    assert clf.decision_function(Xte).shape == (len(yte), 10)
    np.testing.assert_array_equal(clf.predict(Xte), clf.classes_[np.argmax(clf.decision_function(Xte), axis=1)])


def test_classifier_accuracy_does_not_fall_as_epsilon_grows():
    # Medians over 5 noise seeds at each epsilon: the noise's scale falls as 1/epsilon, so the
    # median accuracy may not fall by more than the tolerance 0.03 from one epsilon to the next
    # (fluctuations of the median of 5 runs on 597 test points are about 0.01 where the noise does
    # not dominate), and it must rise from the smallest to the largest epsilon.
    Xtr, ytr, Xte, yte = _digits(1.0)
    grid = [0.1, 1.0, 10.0, 100.0]
    med = []
    for eps in grid:
        accs = [gram.PrivateSimilarityClassifier(epsilon=eps, bandwidth=0.5, domain_radius=1.0, n_components=512,
                                                 random_state=0, noise_seed=s).fit(Xtr, ytr).score(Xte, yte)
                for s in range(5)]
        med.append(float(np.median(accs)))
    assert all(b >= a - 0.03 for a, b in zip(med, med[1:])), med
    assert med[-1] > med[0] + 0.1, med


def test_classifier_distances_prefer_the_nearest_class():
    # Two well separated clusters in the box: the negative average l1 distance decides.
    rng = np.random.default_rng(1)
    A = rng.uniform(-1, -0.5, size=(100, 2))
    B = rng.uniform(0.5, 1, size=(100, 2))
    X = np.vstack([A, B])
    y = np.array(["a"] * 100 + ["b"] * 100)
    # levels given: the depth chosen for epsilon 1e9 would be the cap, 2^24 cells per coordinate
    clf = gram.PrivateSimilarityClassifier(kernel="l1", epsilon=1e9, domain="box", domain_radius=1.0,
                                           levels=10, noise_seed=0).fit(X, y)
    assert clf.score(X, y) == 1.0
    S = clf.average_similarity(X[:3])
    ref = np.stack([cdist(X[:3], A, "cityblock").mean(axis=1), cdist(X[:3], B, "cityblock").mean(axis=1)], axis=1)
    np.testing.assert_allclose(S, ref, rtol=1e-2)
    np.testing.assert_allclose(clf.decision_function(X[:3]), -(S[:, 1] - S[:, 0]))


# ---- accounting ---------------------------------------------------------------------------------------


def test_classifier_spends_its_budget_once():
    X = ball(90, 2, 1.0, 24)
    y = np.arange(90) % 3
    clf = gram.PrivateSimilarityClassifier(epsilon=1.0, delta=1e-6, domain_radius=1.0, noise_seed=0).fit(X, y)
    # each class at epsilon/2 with add/remove neighbours; a partition costs its two most
    # expensive parts: 0.5 + 0.5
    assert clf.privacy_spent_ == pytest.approx((1.0, 1e-6), rel=1e-12)
    for e in clf.estimators_:
        assert e.privacy_["neighbours"] == "add_remove"
        assert (e.epsilon_, e.delta_) == (0.5, 5e-7)
    assert clf.class_count_.shape == (3,)


def test_accountant_totals():
    X = ball(60, 2, 1.0, 25)
    y = np.arange(60) % 4
    whole = fit("gaussian", X, epsilon=0.3)
    whole_ar = fit("l1", X, epsilon=0.2, delta=1e-7, neighbours="add_remove")
    clf = gram.PrivateSimilarityClassifier(epsilon=2.0, domain_radius=1.0, noise_seed=1).fit(X, y)
    acc = gram.PrivacyAccountant()
    assert (acc.epsilon, acc.delta, acc.n_releases) == (0.0, 0.0, 0)
    acc.add(whole)
    assert acc.epsilon == pytest.approx(0.3) and acc.n_releases == 1
    acc.add(whole_ar)  # a whole-data add/remove release under replace-one neighbours: twice its cost
    assert acc.epsilon == pytest.approx(0.3 + 0.4) and acc.delta == pytest.approx(2e-7)
    acc.add(clf)  # 4 parts at 1.0 each: the two largest
    assert acc.epsilon == pytest.approx(0.7 + 2.0) and acc.n_releases == 6
    # parts given by hand: a partition of 3 parts at 0.1, 0.5 and 0.25 costs 0.75
    parts = [fit("gaussian", X[y == k], epsilon=e, neighbours="add_remove", noise_seed=k)
             for k, e in enumerate((0.1, 0.5, 0.25))]
    acc2 = gram.PrivacyAccountant()
    for k, est in enumerate(parts):
        acc2.add(est, partition=7, part=k)
    assert acc2.epsilon == pytest.approx(0.75)
    acc2.add(parts[0].sketch_bytes_, partition=7, part=0)  # part 0 again: 0.2, still below 0.25
    assert acc2.epsilon == pytest.approx(0.75)
    acc2.add(parts[2], partition=8, part=0)  # another partition adds its own
    assert acc2.epsilon == pytest.approx(1.0) and acc2.n_releases == 5
    assert acc2.test_noise
    # replace-one sketches cannot be parts; part without partition is refused
    with pytest.raises(ValueError):
        acc2.add(whole, partition=1, part=0)
    with pytest.raises(ValueError, match="partition and part go together"):
        acc2.add(parts[0], part=0)
    with pytest.raises(TypeError):
        acc2.add(np.zeros(3))
    acc3 = pickle.loads(pickle.dumps(acc2))
    assert (acc3.epsilon, acc3.delta, acc3.n_releases) == (acc2.epsilon, acc2.delta, 5)


# ---- scikit-learn's estimator checks -------------------------------------------------------------------

# The checks run with a test noise seed and a random_state: with noise from the operating system two
# fits on the same data release different sketches by design, which check_fit_idempotent and the
# pickling checks would flag. The classifier runs at epsilon 100: check_classifiers_train asks for
# 83% training accuracy on three blobs of 100 points (standardised, in the box of radius 5), a
# utility demand that this n meets from about epsilon 10 (measured: 0.88-0.92 over 5 noise seeds
# at 10, 0.33-0.78 at 1), not part of the contract. check_estimator sets n_components = 1 in a few
# checks; the kernels' cos/sin pairs need an even count, so those checks fail for the kernels with
# the library's message, and run in full with 'l1', which takes no n_components.
_ODD_R = {name: "cos/sin pairs need an even n_components; the check sets it to 1 (they run with kernel='l1')"
          for name in ("check_dont_overwrite_parameters", "check_methods_sample_order_invariance",
                       "check_methods_subset_invariance", "check_fit2d_1feature", "check_fit2d_predict1d")}


@pytest.mark.parametrize("kind", ["gaussian", "l1"])
def test_check_estimator_classifier(kind):
    est = gram.PrivateSimilarityClassifier(kernel=kind, epsilon=100.0, domain_radius=5.0, domain="box",
                                           random_state=0, noise_seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(est, expected_failed_checks=_ODD_R if kind == "gaussian" else None)


@pytest.mark.parametrize("kind", ["gaussian", "l1"])
def test_check_estimator_kernel_sum(kind):
    # check_fit2d_1sample too: one row is a valid data set, but n_components = 1 is refused first
    expected = dict(_ODD_R, check_fit2d_1sample=_ODD_R["check_fit2d_1feature"]) if kind == "gaussian" else None
    est = gram.PrivateKernelSum(kernel=kind, domain_radius=5.0, domain="box", random_state=0, noise_seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(est, expected_failed_checks=expected)
