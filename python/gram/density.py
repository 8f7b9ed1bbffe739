"""Kernel density estimation: drop-ins for ``sklearn.neighbors.KernelDensity`` and
``scipy.stats.gaussian_kde`` over libgram's KDE (``gram_kde_*``), and the high-dimensional
diagnostics (:func:`kde_diagnostics`).

Both evaluate every data point for every query, exactly unless given a tolerance (rtol/atol, then
through ``gram_kde_eval_approx``), with log-densities computed in log space (finite where every
kernel value underflows), on all cores, without an N×M temporary.
"""
import ctypes
import math
import numbers
import weakref

import numpy as np

from . import _approx, _lib
from ._base import BaseEstimator, InvalidParameterError, not_fitted
from ._validation import (check_array, check_sample_weight, is_nonfinite, nonfinite_error, seed_from)

__all__ = ["KernelDensity", "gaussian_kde", "kde_diagnostics"]

# scikit-learn's kernel names → gram families
_SK_KERNELS = {
    "gaussian": "GAUSSIAN",
    "tophat": "TOPHAT",
    "epanechnikov": "EPANECHNIKOV",
    "exponential": "EXPONENTIAL",
    "linear": "TRIANGULAR",
    "cosine": "COSINE_WINDOW",
}
# bandwidth strings → gram rules (scikit-learn's 'scott'/'silverman' ignore the data's scale)
_RULES = {
    "scott": _lib.BW_SCOTT_UNSCALED,
    "silverman": _lib.BW_SILVERMAN_UNSCALED,
    "isj": _lib.BW_ISJ,
    "cv-ml": _lib.BW_CV_ML,
    "cv-ls": _lib.BW_CV_LS,
}
_EUCLIDEAN = ("euclidean", "l2", "minkowski")
# Metrics scikit-learn's trees accept (KDTree ∪ BallTree), for its error on unknown names.
_SK_METRICS = {
    "euclidean", "l2", "minkowski", "p", "manhattan", "cityblock", "l1", "chebyshev", "infinity",
    "seuclidean", "mahalanobis", "hamming", "canberra", "braycurtis", "jaccard", "dice",
    "rogerstanimoto", "russellrao", "sokalmichener", "sokalsneath", "haversine", "pyfunc",
}


class _KdeHandle:
    """Owns one C gram_kde."""

    __slots__ = ("ptr", "__weakref__")

    def __init__(self, ptr):
        self.ptr = ptr
        weakref.finalize(self, _lib.lib.gram_kde_destroy, ptr.value)


def _fit(family, geometry, rule, bandwidth, X, weights, what, transposed=False):
    """gram_kde_fit on the (n, d) array X (any strides) with optional 1-D weights."""
    opt = _lib.KdeOptions()
    _lib.lib.gram_kde_options_init(ctypes.byref(opt))
    opt.kernel = _lib.FAMILY[family]
    opt.geometry = geometry
    opt.rule = rule
    bw = None
    if bandwidth is not None:
        bw, p = _lib.as_doubles(np.atleast_1d(bandwidth))
        opt.n_bandwidth = bw.size
        opt.bandwidth = p
    Xa = _lib.view(X, "X")
    Wa = None
    if weights is not None:
        w = _lib.as_viewable(weights.reshape(-1, 1))
        Wa = ctypes.byref(_lib.view(w, "weights"))
    out = ctypes.c_void_p()
    # Fixed bandwidths and the rules of thumb are O(n d²); the CV and ISJ rules sum over pairs.
    work = X.size * X.shape[1] if rule in (_lib.BW_FIXED, _lib.BW_SCOTT, _lib.BW_SILVERMAN,
                                           _lib.BW_SCOTT_UNSCALED, _lib.BW_SILVERMAN_UNSCALED) else None
    try:
        with _lib.Call(work=work) as c:
            c.check(_lib.lib.gram_kde_fit(c.ctx, ctypes.byref(opt), ctypes.byref(Xa), Wa, ctypes.byref(out)))
    except ValueError as e:
        if is_nonfinite(e):
            raise nonfinite_error(e, what, transposed) from None
        raise
    del bw
    return _KdeHandle(out)


def _eval(handle, Y, log, what, transposed=False, rtol=0.0, atol=0.0):
    """log f or f at the (m, d) array Y (any strides): a float64 vector of length m; with rtol or
    atol > 0, within |f' - f| <= atol + rtol·f of the density (scikit-learn's convention)."""
    out = _lib.empty(Y.shape[0], what="the densities")
    Ya, Oa = _lib.view(Y, "Y"), _lib.view(out.reshape(-1, 1), "out")
    work = Y.size * int(_lib.lib.gram_kde_n(handle.ptr))
    opt = None
    if rtol > 0 or atol > 0:
        opt, _ = _approx.options(rtol, atol)
    try:
        with _lib.Call(work=work) as c:
            if opt is None:
                fn = _lib.lib.gram_kde_logpdf if log else _lib.lib.gram_kde_pdf
                c.check(fn(c.ctx, handle.ptr, ctypes.byref(Ya), ctypes.byref(Oa)))
            else:
                c.check(_lib.lib.gram_kde_eval_approx(c.ctx, handle.ptr, ctypes.byref(Ya), ctypes.byref(opt),
                                                      1 if log else 0, ctypes.byref(Oa), None))
    except ValueError as e:
        if is_nonfinite(e):
            raise nonfinite_error(e, what, transposed) from None
        raise
    return out


def _sample(handle, out_view, seed):
    Oa = _lib.view(out_view, "out")
    with _lib.Call(work=out_view.size) as c:
        c.check(_lib.lib.gram_kde_sample(c.ctx, handle.ptr, ctypes.c_uint64(seed), ctypes.byref(Oa)))


# ---- scikit-learn's KernelDensity --------------------------------------------------------------


class KernelDensity(BaseEstimator):
    """Kernel density estimation, exact: ``sklearn.neighbors.KernelDensity`` computed by gram.

    The same parameters, attributes, methods and errors as scikit-learn's estimator; the
    densities agree with scikit-learn's exact (``atol=rtol=0``) results to about 1e-12 relative.
    ``atol`` and ``rtol`` mean what scikit-learn's mean: every density meets
    ``|f' - f| <= atol + rtol * f`` (gram's automatic method choice, docs/approx.md); 0 and 0 sum
    over every data point exactly on all cores. ``algorithm``, ``breadth_first`` and
    ``leaf_size`` are validated and otherwise ignored. :meth:`diagnose` reports the effective
    number of points behind each density and the high-dimensional regime.

    Parameters
    ----------
    bandwidth : float, array-like of shape (n_features,), or str, default=1.0
        The kernel's bandwidth h. A string selects a rule:

        - ``'scott'``: ``n ** (-1 / (d + 4))`` and ``'silverman'``:
          ``(n (d + 2) / 4) ** (-1 / (d + 4))``, with n = ``X.shape[0]``, as scikit-learn
          (these ignore the data's scale and the sample weights);
        - ``'isj'``: the Improved Sheather-Jones plug-in (1-D data, gaussian kernel);
        - ``'cv-ml'``: maximises the leave-one-out log-likelihood;
        - ``'cv-ls'``: least-squares cross-validation (gaussian kernel).

        An array gives one bandwidth per feature (gram's extension).
    algorithm : {'kd_tree', 'ball_tree', 'auto'}, default='auto'
        Accepted for compatibility; gram does not build a tree.
    kernel : {'gaussian', 'tophat', 'epanechnikov', 'exponential', 'linear', 'cosine'}, default='gaussian'
        The kernel (gram's gaussian, tophat, epanechnikov, exponential, triangular and
        cosine_window families).
    metric : str, default='euclidean'
        Only the Euclidean metric ('euclidean', 'l2', or 'minkowski' with p=2) is supported;
        other metrics raise ValueError.
    atol, rtol : float, default=0
        The tolerance on each density, as scikit-learn's: ``|f' - f| <= atol + rtol * f``.
    breadth_first : bool, default=True
        Accepted for compatibility.
    leaf_size : int, default=40
        Accepted (>= 1) for compatibility.
    metric_params : dict, default=None
        None, or ``{'p': 2}`` with metric='minkowski'.

    Attributes
    ----------
    bandwidth_ : float or ndarray
        The bandwidth used: the parameter itself, or the value a rule chose.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when X has string column names (pandas).

    Examples
    --------
    >>> import numpy as np, gram
    >>> X = np.random.RandomState(42).random_sample((100, 3))
    >>> kde = gram.KernelDensity(kernel='gaussian', bandwidth=0.5).fit(X)
    >>> kde.score_samples(X[:3])
    array([-1.52955942, -1.51462041, -1.60244657])
    """

    def __init__(self, *, bandwidth=1.0, algorithm="auto", kernel="gaussian", metric="euclidean",
                 atol=0, rtol=0, breadth_first=True, leaf_size=40, metric_params=None):
        self.algorithm = algorithm
        self.bandwidth = bandwidth
        self.kernel = kernel
        self.metric = metric
        self.atol = atol
        self.rtol = rtol
        self.breadth_first = breadth_first
        self.leaf_size = leaf_size
        self.metric_params = metric_params

    # ---- parameter validation (scikit-learn's constraints and messages) -------------------

    def _bad(self, name, expected):
        return InvalidParameterError(
            f"The {name!r} parameter of KernelDensity must be {expected}. "
            f"Got {getattr(self, name)!r} instead.")

    def _validate_params(self):
        bw = self.bandwidth
        bw_expect = ("a float in the range (0.0, inf), an array-like of positive floats or a str among "
                     "{'cv-ls', 'cv-ml', 'isj', 'scott', 'silverman'}")
        if isinstance(bw, str):
            if bw not in _RULES:
                raise self._bad("bandwidth", bw_expect)
        elif isinstance(bw, (numbers.Real, np.number)) and not isinstance(bw, (bool, np.bool_)):
            if not (bw > 0) or math.isnan(bw):
                raise self._bad("bandwidth", bw_expect)
        else:
            try:
                arr = np.asarray(bw, dtype=np.float64)
            except (TypeError, ValueError):
                raise self._bad("bandwidth", bw_expect) from None
            if arr.ndim != 1 or arr.size == 0 or not np.all(arr > 0):
                raise self._bad("bandwidth", bw_expect)
        if not isinstance(self.algorithm, str) or self.algorithm not in ("kd_tree", "ball_tree", "auto"):
            raise self._bad("algorithm", "a str among {'auto', 'ball_tree', 'kd_tree'}")
        if not isinstance(self.kernel, str) or self.kernel not in _SK_KERNELS:
            raise self._bad("kernel", "a str among {'cosine', 'epanechnikov', 'exponential', "
                                      "'gaussian', 'linear', 'tophat'}")
        for name in ("atol", "rtol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (numbers.Real, np.number)) or not (v >= 0):
                raise self._bad(name, "a float in the range [0.0, inf)")
        if not isinstance(self.breadth_first, (bool, np.bool_)):
            raise self._bad("breadth_first", "an instance of 'bool' or an instance of 'numpy.bool'")
        ls = self.leaf_size
        if isinstance(ls, bool) or not isinstance(ls, (numbers.Integral, np.integer)) or ls < 1:
            raise self._bad("leaf_size", "an int in the range [1, inf)")
        mp = self.metric_params
        if mp is not None and not isinstance(mp, dict):
            raise self._bad("metric_params", "None or an instance of 'dict'")
        metric = self.metric
        if not isinstance(metric, str) or metric not in _SK_METRICS:
            raise self._bad("metric", "a str among the metrics of scikit-learn's KDTree and BallTree")
        p = (mp or {}).get("p", 2)
        extra = set(mp or {}) - {"p"}
        if metric not in _EUCLIDEAN or (metric == "minkowski" and p != 2) or extra \
                or (metric != "minkowski" and mp and "p" in mp):
            raise ValueError(
                f"gram.KernelDensity supports only the Euclidean metric ('euclidean', 'l2', or "
                f"'minkowski' with p=2): gram's density kernels are radial in Euclidean distance; "
                f"got metric={metric!r}, metric_params={mp!r}")

    # ---- fit / score -------------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Fit the kernel density model on the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data points, one per row. float64 and float32 arrays are read in place, whatever
            their memory order (no copy); gram keeps its own copy of the data.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the data points.

        Returns
        -------
        self : object
        """
        self._validate_params()
        if hasattr(X, "columns"):
            cols = list(X.columns)
            names = np.asarray(cols, dtype=object) if cols and all(isinstance(c, str) for c in cols) else None
        else:
            names = None
        X = check_array(X, name="X", estimator="KernelDensity")
        n, d = X.shape
        # libgram's two float64 copies and the one kept here for pickling, before anything is
        # scanned or copied (a broadcast view can be far larger than memory)
        _lib.check_memory(n * d * (16 + X.itemsize), f"KernelDensity.fit on X of shape {X.shape}")
        sw = check_sample_weight(sample_weight, n)
        bw = self.bandwidth
        if isinstance(bw, str):
            rule, h = _RULES[bw], None
        else:
            rule, h = _lib.BW_FIXED, np.asarray(bw, dtype=np.float64)
            if h.ndim == 1 and h.size != d:
                raise ValueError(f"bandwidth has {h.size} values but X has {d} features")
        handle = _fit(_SK_KERNELS[self.kernel], _lib.KDE_ISOTROPIC, rule, h, X, sw, "X")
        # Private state first, then the public fitted attributes (an error above leaves none).
        self._kde = handle
        self._fit_X = np.array(X, copy=True)
        self._fit_w = None if sw is None else sw.copy()
        if rule == _lib.BW_FIXED:
            self.bandwidth_ = self.bandwidth
        else:
            self.bandwidth_ = float(_lib.lib.gram_kde_factor(handle.ptr))
        self.n_features_in_ = d
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def _check_fitted(self):
        if getattr(self, "_kde", None) is None or not hasattr(self, "bandwidth_"):
            raise not_fitted(self)

    def score_samples(self, X):
        """Log-density of the model at each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        density : ndarray of shape (n_samples,)
            Log-densities, normalised to integrate to 1 (-inf where the density is 0).
        """
        self._check_fitted()
        X = check_array(X, name="X", estimator="KernelDensity")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but KernelDensity is expecting "
                f"{self.n_features_in_} features as input.")
        return _eval(self._kde, X, True, "X", rtol=float(self.rtol), atol=float(self.atol))

    def diagnose(self, X=None):
        """The effective number of data points behind each density, and the regime.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            Where to look; None: the training data (each point's own term then counts, so the
            ratio is at least 1 from the point itself; pass held-out points for the paper's
            setting of a fresh query).

        Returns
        -------
        dict
            As :func:`kde_diagnostics`, for this model's kernel, bandwidth and sample weights.
        """
        self._check_fitted()
        if X is not None:
            X = check_array(X, name="X", estimator="KernelDensity")
            if X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but KernelDensity is expecting "
                    f"{self.n_features_in_} features as input.")
        return kde_diagnostics(self._fit_X, self.bandwidth_, kernel=self.kernel, Y=X,
                               sample_weight=self._fit_w)

    def score(self, X, y=None):
        """Total log-likelihood of the data in X (the sum of :meth:`score_samples`)."""
        return np.sum(self.score_samples(X))

    def sample(self, n_samples=1, random_state=None):
        """Draw random samples from the model.

        All six kernels are supported (scikit-learn samples only 'gaussian' and 'tophat').

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState, Generator or None, default=None
            Seeds gram's counter-based generator: the same int gives the same samples on every
            platform and thread count.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        self._check_fitted()
        n_samples = _lib.c_int(n_samples, "n_samples", "int64", lo=0)
        out = _lib.empty((n_samples, self.n_features_in_), what="the samples")
        seed = seed_from(random_state)
        if n_samples:
            _sample(self._kde, out, seed)
        return out

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_fit_X" in state:
            bw = self.bandwidth_
            self._kde = _fit(_SK_KERNELS[self.kernel], _lib.KDE_ISOTROPIC, _lib.BW_FIXED,
                             np.asarray(bw, dtype=np.float64), self._fit_X, self._fit_w, "X")


# ---- SciPy's gaussian_kde ---------------------------------------------------------------------


class gaussian_kde:
    """Gaussian kernel density estimate: ``scipy.stats.gaussian_kde`` computed by gram.

    Same constructor, attributes and methods as SciPy's class; densities agree to about 1e-12
    relative. ``logpdf`` is exact in log space, ``evaluate``/``pdf``/``logpdf`` run on all
    cores with no n×m temporary, and ``resample`` draws with gram's generator.

    Parameters
    ----------
    dataset : array_like
        Data points: a 1-D array (univariate), else shape (# of dims, # of data).
    bw_method : str, scalar or callable, optional
        'scott' (default), 'silverman', a scalar used directly as ``factor``, or a callable
        taking this object and returning the factor.
    weights : array_like, optional
        Weights of the data points (normalised to sum to 1).

    Attributes
    ----------
    dataset : ndarray
        The data, shape (d, n).
    d, n : int
        Number of dimensions and of data points.
    neff : float
        Effective number of points, ``1 / sum(weights**2)``.
    factor : float
        The bandwidth factor from :meth:`covariance_factor`.
    covariance : ndarray
        ``np.cov(dataset, aweights=weights) * factor**2``, the kernel covariance.
    weights : ndarray
        The normalised weights.
    inv_cov : ndarray
        The inverse of ``covariance``.
    """

    def __init__(self, dataset, bw_method=None, weights=None):
        self.dataset = np.atleast_2d(np.asarray(dataset))
        if not self.dataset.size > 1:
            raise ValueError("`dataset` input should have multiple elements.")
        if self.dataset.ndim > 2:
            raise ValueError(f"`dataset` must be 1-D or 2-D (# of dims, # of data), got {self.dataset.ndim}-D")
        self.d, self.n = self.dataset.shape
        # np.cov's two float64 copies (or a float64 copy and libgram's two), and the weights,
        # before anything is scanned or copied (a broadcast view can be far larger than memory)
        _lib.check_memory(8 * self.n * (3 * self.d + 2), f"gaussian_kde of a {self.d}×{self.n} dataset")
        if weights is not None:
            w = np.atleast_1d(weights).astype(float)
            if w.ndim != 1:
                raise ValueError("`weights` input should be one-dimensional.")
            if len(w) != self.n:
                raise ValueError("`weights` input should be of length n")
            self._weights = _normalised_weights(w)
            self._neff = 1 / np.dot(self._weights, self._weights)
        if self.d > self.n:
            msg = ("Number of dimensions is greater than number of samples. "
                   "This results in a singular data covariance matrix, which "
                   "cannot be treated using the algorithms implemented in "
                   "`gaussian_kde`. Note that `gaussian_kde` interprets each "
                   "*column* of `dataset` to be a point; consider transposing "
                   "the input to `dataset`.")
            raise ValueError(msg)
        try:
            self.set_bandwidth(bw_method=bw_method)
        except np.linalg.LinAlgError as e:
            msg = ("The data appears to lie in a lower-dimensional subspace "
                   "of the space in which it is expressed. This has resulted "
                   "in a singular data covariance matrix, which cannot be "
                   "treated using the algorithms implemented in "
                   "`gaussian_kde`. Consider performing principal component "
                   "analysis / dimensionality reduction and using "
                   "`gaussian_kde` with the transformed data.")
            raise np.linalg.LinAlgError(msg) from e

    # ---- bandwidth -------------------------------------------------------------------------------

    def scotts_factor(self):
        """Scott's factor, ``neff ** (-1 / (d + 4))``."""
        return np.power(self.neff, -1. / (self.d + 4))

    def silverman_factor(self):
        """Silverman's factor, ``(neff (d + 2) / 4) ** (-1 / (d + 4))``."""
        return np.power(self.neff * (self.d + 2.0) / 4.0, -1. / (self.d + 4))

    #: The bandwidth factor; `scotts_factor` unless set by `set_bandwidth` (or a subclass).
    covariance_factor = scotts_factor

    def set_bandwidth(self, bw_method=None):
        """Compute the bandwidth factor with the given method.

        Parameters
        ----------
        bw_method : str, scalar or callable, optional
            'scott', 'silverman', a scalar (the factor itself), or a callable taking this
            object and returning the factor. None keeps the current ``covariance_factor``.
        """
        if bw_method is None:
            pass
        elif isinstance(bw_method, str) and bw_method == "scott":
            self.covariance_factor = self.scotts_factor
        elif isinstance(bw_method, str) and bw_method == "silverman":
            self.covariance_factor = self.silverman_factor
        elif np.isscalar(bw_method) and not isinstance(bw_method, str):
            self._bw_method = "use constant"
            self.covariance_factor = lambda: bw_method
        elif callable(bw_method):
            self._bw_method = bw_method
            self.covariance_factor = lambda: self._bw_method(self)
        else:
            msg = "`bw_method` should be 'scott', 'silverman', a scalar or a callable."
            raise ValueError(msg)
        self._compute_covariance()

    def _compute_covariance(self):
        self.factor = self.covariance_factor()
        if not hasattr(self, "_data_cho_cov"):
            _check_finite_points(self.dataset, "dataset")
            self._data_covariance = np.atleast_2d(np.cov(self.dataset, rowvar=1, bias=False,
                                                         aweights=self.weights))
            # LAPACK has no long double: SciPy's cholesky computes (and returns) float64 too
            self._data_cho_cov = np.linalg.cholesky(np.asarray(self._data_covariance, dtype=np.float64))
        self.covariance = self._data_covariance * self.factor ** 2
        self.cho_cov = (self._data_cho_cov * self.factor).astype(np.float64)
        self.log_det = 2 * np.log(np.diag(self.cho_cov * np.sqrt(2 * np.pi))).sum()
        self._fit_gram()

    def _fit_gram(self):
        X = _as_points(self.dataset, "dataset")
        try:
            factor = float(self.factor)
        except (TypeError, ValueError):
            raise ValueError(f"the bandwidth factor must be a number, got {self.factor!r}") from None
        if not (factor > 0 and math.isfinite(factor)):
            raise ValueError(f"the bandwidth factor must be > 0 and finite, got {factor!r}")
        self._kde = _fit("GAUSSIAN", _lib.KDE_COVARIANCE, _lib.BW_FIXED, factor, X,
                         self._weights if hasattr(self, "_weights") else None, "dataset", True)
        self._kde_dataset = self.dataset

    @property
    def inv_cov(self):
        self.factor = self.covariance_factor()
        self._data_covariance = np.atleast_2d(np.cov(self.dataset, rowvar=1, bias=False,
                                                     aweights=self.weights))
        return np.linalg.inv(self._data_covariance) / self.factor ** 2

    @property
    def weights(self):
        try:
            return self._weights
        except AttributeError:
            self._weights = np.ones(self.n) / self.n
            return self._weights

    @property
    def neff(self):
        try:
            return self._neff
        except AttributeError:
            self._neff = 1 / np.dot(self.weights, self.weights)
            return self._neff

    # ---- evaluation -----------------------------------------------------------------------------

    def _points(self, points):
        points = np.atleast_2d(np.asarray(points))
        if points.ndim > 2:
            raise ValueError(f"points must be 1-D or 2-D (# of dims, # of points), got {points.ndim}-D")
        d, m = points.shape
        if d != self.d:
            if d == 1 and m == self.d:
                points = np.reshape(points, (self.d, 1))
            else:
                raise ValueError(f"points have dimension {d}, dataset has dimension {self.d}")
        if self.__dict__.get("_kde_dataset") is not self.dataset:
            self._fit_gram()  # `dataset` was replaced since the bandwidth was set
        return _as_points(points, "points"), self._output_dtype(points)

    def _output_dtype(self, points):
        """SciPy's result dtype, ``np.common_type(covariance, points)``: float64, or long double
        when the data, the points or the factor are (gram computes in float64 and casts)."""
        dt = np.result_type(np.asarray(self.covariance).dtype, np.float64)
        if points.dtype.kind == "f":
            dt = np.result_type(dt, points.dtype)
        return dt

    def evaluate(self, points, rtol=0, atol=0):
        """Evaluate the estimated pdf on a set of points.

        Parameters
        ----------
        points : (# of dimensions, # of points)-array
            Alternatively, a (# of dimensions,) vector can be passed in and treated as a single
            point.
        rtol, atol : float, default=0
            gram's extension: a tolerance on each value, ``|f' - f| <= atol + rtol * f``
            (0 and 0: exact; docs/approx.md).

        Returns
        -------
        values : (# of points,)-array
            The values at each point.

        Raises
        ------
        ValueError : if the dimensionality of the input points is different than
                     the dimensionality of the KDE.
        """
        rtol, atol = _approx.check_tol(rtol, "rtol"), _approx.check_tol(atol, "atol")
        P, dt = self._points(points)
        return _eval(self._kde, P, False, "points", True, rtol, atol).astype(dt, copy=False)

    __call__ = evaluate

    def pdf(self, x, rtol=0, atol=0):
        """Evaluate the estimated pdf on a provided set of points (alias of :meth:`evaluate`)."""
        return self.evaluate(x, rtol, atol)

    def logpdf(self, x, rtol=0, atol=0):
        """Evaluate the log of the estimated pdf on a provided set of points, exactly in log space
        (or with ``rtol``/``atol`` > 0 the log of a density within ``atol + rtol * f`` of f)."""
        rtol, atol = _approx.check_tol(rtol, "rtol"), _approx.check_tol(atol, "atol")
        P, dt = self._points(x)
        return _eval(self._kde, P, True, "points", True, rtol, atol).astype(dt, copy=False)

    def resample(self, size=None, seed=None):
        """Randomly sample a dataset from the estimated pdf.

        Parameters
        ----------
        size : int, optional
            The number of samples to draw; default ``int(self.neff)``.
        seed : {None, int, numpy.random.Generator, numpy.random.RandomState}, optional
            Seeds gram's generator (None: a seed drawn from NumPy's global RandomState).

        Returns
        -------
        resample : (self.d, size) ndarray
        """
        if size is None:
            size = int(self.neff)
        size = _lib.c_int(size, "size", "int64")
        if size < 0:
            raise ValueError("negative dimensions are not allowed")
        out = _lib.empty((self.d, size), what="the resample")
        seed = seed_from(seed)
        if self.__dict__.get("_kde_dataset") is not self.dataset:
            self._fit_gram()
        if size:
            _sample(self._kde, out.T, seed)  # gram writes (size, d) rows into the (d, size) array
        return out

    # ---- integrals (closed forms, no pair sums) ----------------------------------------------

    def integrate_gaussian(self, mean, cov):
        """Multiply the estimated density by a multivariate Gaussian and integrate over the space.

        Parameters
        ----------
        mean : array_like
            1-D, the mean of the Gaussian.
        cov : array_like
            2-D, the covariance matrix of the Gaussian.

        Returns
        -------
        result : scalar
        """
        mean = np.atleast_1d(np.squeeze(mean))
        cov = np.atleast_2d(cov)
        if mean.shape != (self.d,):
            raise ValueError(f"mean does not have dimension {self.d}")
        if cov.shape != (self.d, self.d):
            raise ValueError(f"covariance does not have dimension {self.d}")
        mean = mean[:, np.newaxis]
        sum_cov = self.covariance + cov
        L = np.linalg.cholesky(sum_cov)
        diff = self.dataset - mean
        z = np.linalg.solve(L, diff)
        sqrt_det = np.prod(np.diagonal(L))
        norm_const = np.power(2 * np.pi, sum_cov.shape[0] / 2.0) * sqrt_det
        energies = np.sum(z * z, axis=0) / 2.0
        return np.dot(np.exp(-energies), self.weights) / norm_const

    def integrate_box_1d(self, low, high):
        """The integral of a 1-D pdf between two bounds.

        Raises
        ------
        ValueError
            If the KDE is over more than one dimension.
        """
        if self.d != 1:
            raise ValueError("integrate_box_1d() only handles 1D pdfs")
        stdev = np.ravel(np.sqrt(self.covariance))[0]
        lo = np.ravel((low - self.dataset) / stdev)
        hi = np.ravel((high - self.dataset) / stdev)
        delta = _ndtr(hi) - _ndtr(lo)
        return np.dot(self.weights, delta)

    def integrate_box(self, low_bounds, high_bounds, maxpts=None, *, rng=None):
        """The integral of the pdf over a rectangular box (uses SciPy's multivariate normal CDF)."""
        try:
            from scipy.stats import multivariate_normal
        except ImportError as e:  # pragma: no cover
            raise ImportError("gaussian_kde.integrate_box needs SciPy") from e
        low, high = low_bounds - self.dataset.T, high_bounds - self.dataset.T
        values = multivariate_normal.cdf(high, lower_limit=low, cov=self.covariance, maxpts=maxpts, rng=rng)
        return np.dot(values, self.weights)

    def integrate_kde(self, other):
        """The integral of the product of this KDE with another (one gram kernel sum).

        Raises
        ------
        ValueError
            If the KDEs have different dimensionality.
        """
        if other.d != self.d:
            raise ValueError("KDEs are not the same dimensionality")
        small, large = (other, self) if other.n < self.n else (self, other)
        sum_cov = small.covariance + large.covariance
        L = np.linalg.cholesky(sum_cov)
        zs = np.linalg.solve(L, np.asarray(small.dataset, dtype=np.float64)).T
        zl = np.linalg.solve(L, np.asarray(large.dataset, dtype=np.float64)).T
        from .kernels import RBF
        sums = RBF(1.0).sum(np.ascontiguousarray(zl), np.ascontiguousarray(zs), large.weights)
        norm_const = np.power(2 * np.pi, sum_cov.shape[0] / 2.0) * np.prod(np.diagonal(L))
        return np.dot(sums, small.weights) / norm_const

    def marginal(self, dimensions):
        """A marginal KDE over the given dimensions (indices of the variables kept)."""
        dims = np.atleast_1d(dimensions)
        if not np.issubdtype(dims.dtype, np.integer):
            raise ValueError("Elements of `dimensions` must be integers - the indices "
                             "of the marginal variables being retained.")
        n = len(self.dataset)
        original_dims = dims.copy()
        dims[dims < 0] = n + dims[dims < 0]
        if len(np.unique(dims)) != len(dims):
            raise ValueError("All elements of `dimensions` must be unique.")
        i_invalid = (dims < 0) | (dims >= n)
        if np.any(i_invalid):
            raise ValueError(f"Dimensions {original_dims[i_invalid]} are invalid "
                             f"for a distribution in {n} dimensions.")
        return gaussian_kde(self.dataset[dims], bw_method=self.covariance_factor(), weights=self.weights)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_kde", None)
        state.pop("_kde_dataset", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._fit_gram()


def _normalised_weights(w):
    """``w / sum(w)`` for 1-D float64 weights, refusing what has no normalisation.

    SciPy divides first, so all-zero, NaN or infinite weights become NaN and surface later as
    "array must not contain infs or NaNs" (or, here, a NaN bandwidth factor): the same exception
    type, with the weights named. Negative weights keep np.cov's message ("aweights cannot be
    negative", which SciPy raises), and a sum that overflows is taken after scaling by the largest
    weight (SciPy then divides by inf and fails with ZeroDivisionError)."""
    bad = ~np.isfinite(w)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"`weights` must be finite: element {i} is {w[i]}")
    neg = w < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise ValueError(f"aweights cannot be negative: `weights` element {i} is {w[i]}")
    with np.errstate(over="ignore"):  # an infinite sum is handled below
        total = np.sum(w)
    if total == 0:
        raise ValueError("`weights` are all zero: at least one weight must be positive")
    if not math.isfinite(total):
        w = w / np.max(w)
        total = np.sum(w)
    return w / total


def _collapsed(a):
    """``a`` with every zero-stride axis (a broadcast view) cut to length 1: the same values,
    scanned once instead of once per repetition."""
    return a[tuple(slice(0, 1) if st == 0 else slice(None) for st in a.strides)] if a.ndim else a


def _check_finite_points(data, what):
    """ValueError naming the first non-finite value of a (d, n) array, as gram's messages do."""
    data = _collapsed(np.asarray(data))
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        dim, point = (int(v) for v in np.argwhere(~np.isfinite(data.T))[0][::-1])
        v = data[dim, point]
        kind = "NaN" if np.isnan(v) else "infinity"
        raise ValueError(f"Input {what} contains {kind} ({what}: point {point}, dimension {dim} is {v})")


def _as_points(points_dT, what):
    """The transpose (n, d) view of a (d, n) array, as float64/float32 without copying when possible."""
    P = points_dT.T
    kind = P.dtype.kind
    if kind == "c":
        raise TypeError(f"{what}: complex values are not supported")
    if kind == "O":
        P = P.astype(np.float64)
    elif kind not in "biuf":
        raise TypeError(f"{what}: unsupported dtype {P.dtype}")
    if P.dtype in (np.float64, np.float32):
        return _lib.as_viewable(P)
    _lib.check_memory(8 * P.size, f"{what} as float64")
    return P.astype(np.float64)


_SQRT1_2 = math.sqrt(0.5)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _ndtr(x):
    """The standard normal CDF, 0.5 erfc(-x / sqrt 2) (NumPy has no erf)."""
    return 0.5 * _erfc(-np.asarray(x, dtype=np.float64) * _SQRT1_2).astype(np.float64)


# ---- high-dimensional diagnostics ------------------------------------------------------------


def kde_diagnostics(X, bandwidth, kernel="gaussian", Y=None, sample_weight=None, quantiles=(0.1, 0.5, 0.9)):
    """How many data points carry a KDE's sums, and which regime its bandwidth is in.

    The participation ratio of query y is ``(sum_j k_j w_j)**2 / sum_j (k_j w_j)**2`` with
    ``k_j = k(y, x_j)``: 1 when one point dominates the density, N when all count equally. The
    regime is Biroli & Mézard's for Gaussian data and a gaussian kernel in D dimensions with
    alpha = ln N / D: 'clt' (h >= h_clt: the estimate concentrates), 'heavy' (h_g <= h < h_clt:
    heavy-tailed fluctuations), 'extreme' (h < h_g: a few points dominate). h is the bandwidth in
    units of the data's spread, the root-mean-square over features of h_d / std_d. See
    docs/approx.md, "Diagnostics".

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data.
    bandwidth : float or array-like of shape (n_features,)
        The KDE's bandwidth h (scikit-learn's, e.g. ``KernelDensity.bandwidth_``).
    kernel : str, default='gaussian'
        A scikit-learn KernelDensity kernel name; the regime is given only for 'gaussian'.
    Y : array-like of shape (n_queries, n_features), default=None
        The queries; None: X itself (each point's own term counts).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights.
    quantiles : sequence of float, default=(0.1, 0.5, 0.9)
        Quantiles of the ratio to report.

    Returns
    -------
    dict
        ``participation`` (ndarray (n_queries,)), ``quantiles`` ({q: value}), ``alpha``,
        ``h`` (the bandwidth in units of the data's spread), ``h_g``, ``h_clt`` and ``regime``
        ('clt', 'heavy', 'extreme', or None for another kernel or a constant feature).
    """
    X = check_array(X, name="X", estimator="kde_diagnostics")
    n, d = X.shape
    if not isinstance(kernel, str) or kernel not in _SK_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(_SK_KERNELS)}, got {kernel!r}")
    h = np.asarray(bandwidth, dtype=np.float64)
    if h.ndim > 1 or (h.ndim == 1 and h.size != d) or not np.all(h > 0) or not np.all(np.isfinite(h)):
        raise ValueError(f"bandwidth must be a positive finite number or {d} of them, got {bandwidth!r}")
    hs = np.broadcast_to(h, (d,)).copy()
    Yv = X if Y is None else check_array(Y, name="Y", estimator="kde_diagnostics")
    if Yv.shape[1] != d:
        raise ValueError(f"Y has {Yv.shape[1]} features but X has {d}")
    sw = check_sample_weight(sample_weight, n)
    w = None
    if sw is not None:
        w, wp = _lib.as_doubles(sw)
    k = _lib.new_handle(_lib.lib.gram_kernel_create, _lib.FAMILY[_SK_KERNELS[kernel]], d,
                        hs.ctypes.data_as(_lib._dp), 0, None)
    try:
        Xv = _lib.as_viewable(X, np.float64, "X")
        Yc = Xv if Y is None else _lib.as_viewable(Yv, np.float64, "Y")
        out = _lib.empty(Yc.shape[0], what="the participation ratios")
        Xa, Oa = _lib.view(Xv, "X"), _lib.view(out.reshape(-1, 1), "out")
        Ya = Xa if Y is None else _lib.view(Yc, "Y")
        with _lib.Call(work=Xv.size * Yc.shape[0]) as c:
            c.check(_lib.lib.gram_kernel_sum_participation(c.ctx, k, ctypes.byref(Ya), ctypes.byref(Xa),
                                                           wp if w is not None else None, ctypes.byref(Oa)))
    finally:
        _lib.lib.gram_kernel_destroy(k)
    std = X.std(axis=0)
    hr = float(np.sqrt(np.mean((hs / std) ** 2))) if np.all(std > 0) else float("inf")
    alpha = math.log(n) / d if n > 0 else float("nan")
    hc, hg, reg = ctypes.c_double(math.nan), ctypes.c_double(math.nan), ctypes.c_int(0)
    regime = None
    if kernel == "gaussian" and math.isfinite(hr) and n >= 2 and \
            _lib.lib.gram_kde_regime_of(float(n), float(d), hr, ctypes.byref(hc), ctypes.byref(hg),
                                        ctypes.byref(reg)) == 0:
        regime = _lib.KDE_REGIMES[reg.value]
    elif n >= 2:
        _lib.lib.gram_kde_regime_of(float(n), float(d), 1.0, ctypes.byref(hc), ctypes.byref(hg), None)
    qs = {float(q): float(np.quantile(out, q)) for q in quantiles} if out.size else {float(q): math.nan
                                                                                     for q in quantiles}
    return {"participation": out, "quantiles": qs, "alpha": alpha, "h": hr, "h_g": hg.value,
            "h_clt": hc.value, "regime": regime}
