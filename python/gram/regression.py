"""Regression: drop-ins for scikit-learn's ``GaussianProcessRegressor`` and ``KernelRidge`` over
libgram's dense solvers (``gram_gp_*``, ``gram_krr_*``).

The fitted models live in C (the kernel matrix, its Cholesky factor, the dual coefficients, the
learned hyperparameters); the fitted attributes scikit-learn documents are NumPy copies of that
state. Predictions are the engine's kernel sums. Pickles carry the C model's own byte format
(``gram_gp_to_bytes``), so an unpickled model predicts bit for bit as the original.
"""
import ctypes
import math
import sys
import warnings
import weakref

import numpy as np

from . import _lib
from ._base import BaseEstimator, not_fitted
from ._validation import (_integral, _real, check_array, check_feature_names, check_random_state,
                          check_sample_weight, feature_names, is_nonfinite, nonfinite_error, seed_from)
from .kernels import RBF, ConstantKernel, Kernel, as_kernel

__all__ = ["GaussianProcessRegressor", "KernelRidge"]


class ConvergenceWarning(UserWarning):
    """A learned hyperparameter ended at its bound (scikit-learn's ConvergenceWarning when
    scikit-learn is loaded)."""


def _convergence_warning():
    if "sklearn" in sys.modules:
        try:
            from sklearn.exceptions import ConvergenceWarning as SkConvergence
            return SkConvergence
        except ImportError:  # pragma: no cover
            pass
    return ConvergenceWarning


# SciPy's L-BFGS-B messages for gram_gp_start_status (gram.h), as scikit-learn quotes them.
_START_MESSAGES = {1: (1, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"), 2: (2, "ABNORMAL: "),
                   3: (1, "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT")}


def _warn_not_converged(status, nit, message):
    """scikit-learn's warning for an L-BFGS-B run that did not converge (utils.optimize's
    _check_optimize_result), word for word."""
    warnings.warn(
        f"lbfgs failed to converge after {nit} iteration(s) (status={status}):\n{message}\n"
        "\nYou might also want to scale the data as shown in:\n"
        "    https://scikit-learn.org/stable/modules/preprocessing.html", _convergence_warning(), stacklevel=4)


# ---- C handles and copies ---------------------------------------------------------------------


class _Handle:
    """Owns one C model (gram_gp or gram_krr); destroyed with the holder."""

    __slots__ = ("ptr", "kind", "__weakref__")

    def __init__(self, ptr, kind):
        self.ptr = ptr
        self.kind = kind
        weakref.finalize(self, getattr(_lib.lib, f"gram_{kind}_destroy"), ptr.value)

    def get(self, what, shape):
        """A copy of the model's array ``what`` (gram_<kind>_get_<what>) of the given shape."""
        out = _lib.empty(shape)
        a = _lib.view(out, what)
        status = getattr(_lib.lib, f"gram_{self.kind}_get_{what}")(self.ptr, ctypes.byref(a))
        if status:
            raise _lib.error(status, f"gram_{self.kind}_get_{what} failed")
        return out

    def to_bytes(self):
        return _lib.take_bytes(getattr(_lib.lib, f"gram_{self.kind}_to_bytes"), self.ptr)

    @classmethod
    def from_bytes(cls, data, kind):
        _lib.need(f"gram_{kind}_from_bytes")
        out = ctypes.c_void_p()
        with _lib.Call(work=0) as c:
            c.check(getattr(_lib.lib, f"gram_{kind}_from_bytes")(c.ctx, data, len(data), ctypes.byref(out)))
        return cls(out, kind)


def _kernel_theta(kptr):
    """Every log-hyperparameter of a C kernel (gram's order)."""
    out = np.empty(_lib.lib.gram_kernel_n_hyper(kptr))
    _lib.lib.gram_kernel_get_hyper(kptr, out.ctypes.data_as(_lib._dp))
    return out


def _call(fn, *args, work=None, names=None):
    """Calls ``fn(ctx, *args)``; a NaN/inf error is reworded as scikit-learn says it, with the
    library's position. The library names targets "y"; the engine names queries "Y" (the user's
    X), ``names`` renames others (a precomputed "K" is the user's X)."""
    try:
        with _lib.Call(work=work) as c:
            c.check(fn(c.ctx, *args))
    except ValueError as e:
        if is_nonfinite(e):
            name = str(e).split(":", 1)[0].strip()
            name = {"Y": "X", **(names or {})}.get(name, name)
            raise nonfinite_error(e, name) from None
        raise


# ---- shared validation ------------------------------------------------------------------------


def _check_y(y, estimator, n):
    if y is None:
        raise ValueError(f"{estimator} requires y to be passed, but the target y is None.")
    y = check_array(y, name="y", estimator=estimator, ensure_2d=False, min_samples=0, keep_float32=False)
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError(f"y must be 1-D (n_samples,) or 2-D (n_samples, n_targets), got {y.ndim}-D")
    if y.shape[0] != n:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: [{n}, {y.shape[0]}]")
    if y.ndim == 2 and y.shape[1] == 0:
        raise ValueError("y has 0 targets (shape {}); at least 1 is required".format(y.shape))
    return _lib.as_viewable(y, np.float64)


def _check_finite(A, name):
    """The library's NaN/inf message for a NumPy-only path (precomputed or NumPy kernels)."""
    bad = ~np.isfinite(A)
    if bad.any():
        i = np.argwhere(bad)[0]
        where = ", ".join(f"{w} {k}" for w, k in zip(("row", "column"), i))
        what = "NaN" if np.isnan(A[tuple(i)]) else "infinite"
        if what == "NaN":
            raise ValueError(f"Input {name} contains NaN ({name}: {where} is NaN).")
        raise ValueError(f"Input {name} contains infinity or a value too large for dtype('float64') "
                         f"({name}: {where} is infinite).")


def _r2_score(y, y_pred, sample_weight=None):
    if "sklearn" in sys.modules:
        from sklearn.metrics import r2_score
        return r2_score(y, y_pred, sample_weight=sample_weight)
    y = np.asarray(y, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y.shape)
    if y.shape[0] < 2:
        warnings.warn("R^2 score is not well-defined with less than two samples.")
        return float("nan")
    y2, p2 = y.reshape(len(y), -1), y_pred.reshape(len(y), -1)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    num = (w[:, None] * (y2 - p2) ** 2).sum(0)
    den = (w[:, None] * (y2 - np.average(y2, axis=0, weights=w)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(den != 0, 1 - num / np.where(den != 0, den, 1), np.where(num == 0, 1.0, 0.0))
    return float(score.mean())


class _Regressor(BaseEstimator):
    """What scikit-learn's RegressorMixin and MultiOutputMixin give: ``score`` (R²) and tags."""

    _estimator_type = "regressor"

    def score(self, X, y, sample_weight=None):
        """The coefficient of determination R² of ``predict(X)`` against ``y``."""
        return _r2_score(y, self.predict(X), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags
        return Tags(estimator_type="regressor",
                    target_tags=TargetTags(required=True, multi_output=True, single_output=True),
                    transformer_tags=None, classifier_tags=None,
                    regressor_tags=RegressorTags(poor_score=False),
                    input_tags=InputTags(pairwise=self._pairwise()))

    def _pairwise(self):
        return False

    def _check_X(self, X, reset):
        names = feature_names(X)
        X = check_array(X, name="X", estimator=type(self).__name__, keep_float32=False)
        check_feature_names(self, X, names, reset)
        return _lib.as_viewable(X, np.float64)


# ---- Gaussian-process regression --------------------------------------------------------------


def _default_kernel(fixed):
    if fixed:
        return ConstantKernel(1.0, constant_value_bounds="fixed") * RBF(1.0, length_scale_bounds="fixed")
    return ConstantKernel(1.0) * RBF(1.0)


def _is_sklearn_kernel(kernel):
    from ._kernel_classes import is_sklearn_kernel
    return not isinstance(kernel, (str, Kernel)) and is_sklearn_kernel(kernel)


def _gram_kernel(kernel):
    """A private gram kernel for ``kernel`` (a gram kernel is copied, so fit never changes it);
    None for a scikit-learn kernel gram cannot evaluate (a user's own Kernel subclass, ...)."""
    try:
        k = as_kernel(kernel)
    except ValueError:
        if _is_sklearn_kernel(kernel):
            return None
        raise
    if k is kernel:
        import copy
        k = copy.deepcopy(k)
    return k


class GaussianProcessRegressor(_Regressor):
    """Gaussian process regression: ``sklearn.gaussian_process.GaussianProcessRegressor`` by gram.

    The same parameters, attributes, methods and shapes as scikit-learn's estimator (Rasmussen &
    Williams, Algorithm 2.1); the kernel matrix, its Cholesky factor, the log marginal likelihood
    and its gradient (accumulated tile by tile from the kernels' analytic derivatives, one N×N
    buffer whatever the number of hyperparameters) and the hyperparameter search (L-BFGS-B) run
    in C, predictions in the engine.

    Parameters
    ----------
    kernel : gram kernel, spec string or scikit-learn kernel, default=None
        None means ``ConstantKernel(1.0) * RBF(1.0)`` with default bounds (learned); an unfitted
        model predicts from the prior ``ConstantKernel(1.0, "fixed") * RBF(1.0, "fixed")``, as
        scikit-learn. scikit-learn kernels are translated with their bounds. A kernel gram cannot
        evaluate (your own ``Kernel`` subclass, also on non-vector input such as strings) is
        fitted as scikit-learn fits it: its own ``__call__`` gives K and the gradient, gram's C
        the algebra, SciPy's L-BFGS-B the search.
    alpha : float or ndarray of shape (n_samples,), default=1e-10
        Added to the diagonal of the kernel matrix (noise variance).
    optimizer : 'fmin_l_bfgs_b', callable or None, default='fmin_l_bfgs_b'
        'fmin_l_bfgs_b' is gram's own L-BFGS-B in C over the free hyperparameters within their
        bounds. A callable is called as scikit-learn does,
        ``theta_opt, func_min = optimizer(obj_func, initial_theta, bounds=bounds)`` with
        ``obj_func(theta, eval_gradient=True)`` returning ``(-lml, -gradient)``. None keeps the
        kernel's hyperparameters.
    n_restarts_optimizer : int, default=0
        Further starts drawn log-uniformly within the bounds (from ``random_state``).
    normalize_y : bool, default=False
        Centre the targets and scale them to unit variance before fitting.
    copy_X_train : bool, default=True
        Store a copy of X in ``X_train_`` (else a reference to the validated float64 array).
    n_targets : int, default=None
        The number of targets, for predictions from the prior (unfitted model).
    random_state : int, RandomState or None, default=None
        Seeds the restarts.

    Attributes
    ----------
    X_train_ : ndarray of shape (n_samples, n_features)
        The training inputs (float64).
    y_train_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        The training targets (normalised with normalize_y).
    kernel_ : gram kernel
        The kernel with the learned hyperparameters (a gram kernel of the same structure:
        ``kernel_.theta``, ``bounds`` and ``hyperparameters`` in scikit-learn's order).
    L_ : ndarray of shape (n_samples, n_samples)
        Lower Cholesky factor of ``k(X_train_) + diag(alpha)``.
    alpha_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        The dual coefficients ``K⁻¹ y_train_``.
    log_marginal_likelihood_value_ : numpy.float64
        The log marginal likelihood of ``kernel_.theta``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        When X has string column names.

    Examples
    --------
    >>> import numpy as np, gram
    >>> X = np.linspace(0, 5, 20)[:, None]
    >>> y = np.sin(X[:, 0])
    >>> gp = gram.GaussianProcessRegressor(gram.ConstantKernel(1.0) * gram.RBF(1.0)).fit(X, y)
    >>> gp.kernel_
    ConstantKernel(constant_value=8.07) * RBF(length_scale=2.91)
    >>> gp.kernel_.theta.round(4)  # log of (constant_value, length_scale)
    array([2.0876, 1.0697])
    """

    def __init__(self, kernel=None, *, alpha=1e-10, optimizer="fmin_l_bfgs_b", n_restarts_optimizer=0,
                 normalize_y=False, copy_X_train=True, n_targets=None, random_state=None):
        self.kernel = kernel
        self.alpha = alpha
        self.optimizer = optimizer
        self.n_restarts_optimizer = n_restarts_optimizer
        self.normalize_y = normalize_y
        self.copy_X_train = copy_X_train
        self.n_targets = n_targets
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags

    def _validate_params(self):
        k = self.kernel
        if not (k is None or isinstance(k, (Kernel, str)) or _is_sklearn_kernel(k)):
            raise self._bad("kernel", "None, a gram kernel, a gram spec string or a scikit-learn kernel")
        a = self.alpha
        if _real(a):
            if not a >= 0:
                raise self._bad("alpha", "a float in the range [0.0, inf) or an instance of 'numpy.ndarray'")
        elif not isinstance(a, np.ndarray):
            raise self._bad("alpha", "a float in the range [0.0, inf) or an instance of 'numpy.ndarray'")
        opt = self.optimizer
        if not (opt is None or callable(opt) or (isinstance(opt, str) and opt == "fmin_l_bfgs_b")):
            raise self._bad("optimizer", "a str among {'fmin_l_bfgs_b'}, a callable or None")
        r = self.n_restarts_optimizer
        if not _integral(r) or r < 0:
            raise self._bad("n_restarts_optimizer", "an int in the range [0, inf)")
        if r > 2**31 - 1:  # gram_gp_options.n_restarts is a C int
            raise self._bad("n_restarts_optimizer", "an int in the range [0, 2147483647] (gram's limit)")
        for name in ("normalize_y", "copy_X_train"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise self._bad(name, "an instance of 'bool' or an instance of 'numpy.bool'")
        t = self.n_targets
        if t is not None and (not _integral(t) or t < 1):
            raise self._bad("n_targets", "an int in the range [1, inf) or None")
        rs = self.random_state
        if not (rs is None or _integral(rs) or isinstance(rs, (np.random.RandomState, np.random.Generator))):
            raise self._bad("random_state", "an int in the range [0, 4294967295], an instance of "
                                            "'numpy.random.mtrand.RandomState' or None")

    # ---- fit ---------------------------------------------------------------------------------

    def fit(self, X, y):
        """Fit the Gaussian process regression model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or list of object
            Feature vectors; any sequence for a scikit-learn kernel of your own whose
            ``requires_vector_input`` is False (see the class notes).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self : object
        """
        self._validate_params()
        _lib.need("gram_gp_fit")
        kernel = _default_kernel(False) if self.kernel is None else _gram_kernel(self.kernel)
        if kernel is None:  # a scikit-learn kernel gram cannot evaluate: its own code gives K
            return self._fit_matrix(X, y)
        Xv = self._check_X(X, reset=True)
        n = Xv.shape[0]
        y, Y2, T = self._targets(y, n)
        alpha = self._noise(n)
        optimizer = self.optimizer
        learn = optimizer is not None and kernel.n_dims > 0
        restarts = int(self.n_restarts_optimizer) if learn else 0
        if restarts > 0:
            _check_restart_bounds(kernel.bounds)
        builtin = learn and isinstance(optimizer, str)
        seed = seed_from(self.random_state) if builtin and restarts else 0
        gp = self._c_fit(kernel, Xv, Y2, alpha, optimize=builtin, restarts=restarts, seed=seed)
        kptr = _lib.lib.gram_gp_kernel(gp.ptr)
        lml = np.float64(_lib.lib.gram_gp_log_marginal_likelihood_value(gp.ptr))
        if learn and not builtin:
            theta, lml = self._callable_search(gp, kernel, restarts)
            kernel._assign(kernel._theta_to_c(theta, base=_kernel_theta(kptr)))
            gp = self._c_fit(kernel, Xv, Y2, alpha, optimize=False, restarts=0, seed=0)
        else:
            kernel._assign(_kernel_theta(kptr))
        if builtin:
            _warn_starts(gp)
        if learn:
            _check_bounds(kernel)

        means = np.empty(T)
        scales = np.empty(T)
        for t in range(T):
            m, sc = ctypes.c_double(), ctypes.c_double()
            _lib.lib.gram_gp_target_scaling(gp.ptr, t, ctypes.byref(m), ctypes.byref(sc))
            means[t], scales[t] = m.value, sc.value

        # Private state first, then the public fitted attributes (an error above leaves none).
        self._gp = gp
        self._mx = None
        self._n_targets_fit = T
        self.kernel_ = kernel
        self.X_train_ = np.array(Xv, copy=True) if self.copy_X_train else Xv
        y_train = gp.get("y", (n, T))
        self.y_train_ = y_train if y.ndim == 2 else y_train.ravel()
        alpha_ = gp.get("alpha", (n, T))
        self.alpha_ = alpha_ if y.ndim == 2 else alpha_.ravel()
        self.__dict__.pop("_L_cache", None)  # L_ is fetched from the C model when first read
        self._set_scaling(y, means, scales)
        self.log_marginal_likelihood_value_ = lml
        return self

    def _targets(self, y, n):
        y = _check_y(y, type(self).__name__, n)
        T = y.shape[1] if y.ndim == 2 else 1
        if self.n_targets is not None and T != self.n_targets:
            raise ValueError(
                "The number of targets seen in `y` is different from the parameter "
                f"`n_targets`. Got {T} != {self.n_targets}.")
        return y, y.reshape(n, -1), T

    def _noise(self, n):
        alpha = np.atleast_1d(np.asarray(self.alpha, dtype=np.float64))
        if alpha.ndim != 1:
            raise ValueError(f"alpha must be a scalar or a 1-D array, got shape {alpha.shape}")
        if alpha.shape[0] not in (1, n):
            raise ValueError(
                "alpha must be a scalar or an array with same number of "
                f"entries as y. ({alpha.shape[0]} != {n})")
        return alpha

    def _set_scaling(self, y, means, scales):
        if self.normalize_y:
            self._y_train_mean = means if y.ndim == 2 else means[0]
            self._y_train_std = scales if y.ndim == 2 else scales[0]
        else:
            T = means.shape[0]
            self._y_train_mean = np.zeros(T if y.ndim == 2 else 1)
            self._y_train_std = np.ones(T if y.ndim == 2 else 1)

    def _c_fit(self, kernel, X, Y, alpha, optimize, restarts, seed):
        opt = _lib.GpOptions()
        _lib.lib.gram_gp_options_init(ctypes.byref(opt))
        al, p = _lib.as_doubles(alpha)
        opt.n_alpha = al.size
        opt.alpha = p
        opt.normalize_y = int(bool(self.normalize_y))
        opt.optimize = int(bool(optimize))
        opt.n_restarts = int(restarts)
        opt.seed = seed
        Xa, Ya = _lib.view(X, "X"), _lib.view(Y, "y")
        out = ctypes.c_void_p()
        try:
            _call(_lib.lib.gram_gp_fit, kernel._handle().ptr, ctypes.byref(opt), ctypes.byref(Xa),
                  ctypes.byref(Ya), ctypes.byref(out))
        except np.linalg.LinAlgError as e:
            # the state scikit-learn raises from: kernel_ at the optimiser's answer (the projected
            # start where the likelihood is defined nowhere)
            if optimize:
                kernel._assign(kernel._theta_to_c(np.clip(kernel.theta, *_bounds_t(kernel))))
            raise _not_pd(kernel, e) from None
        return _Handle(out, "gp")

    def _callable_search(self, gp, kernel, restarts):
        """scikit-learn's search with a user optimizer, over the model ``gp`` fitted at the start."""
        base = _kernel_theta(_lib.lib.gram_gp_kernel(gp.ptr))

        def obj_func(theta, eval_gradient=True):
            if eval_gradient:
                lml, grad = _lml(gp, kernel, base, theta, True)
                return -lml, -grad
            return -_lml(gp, kernel, base, theta, False)

        return _search(self, obj_func, kernel.theta, kernel.bounds, restarts)

    # ---- kernels gram cannot evaluate --------------------------------------------------------

    def _fit_matrix(self, X, y):
        """scikit-learn's fit for a kernel gram cannot evaluate (a user's own ``Kernel``
        subclass): the kernel's ``__call__`` gives K and its gradient, gram's C does the algebra
        (gram_gp_solve), the hyperparameter search is scikit-learn's (SciPy's L-BFGS-B)."""
        from sklearn.base import clone
        _lib.need("gram_gp_solve", "gram_gp_posterior")
        kernel = clone(self.kernel)
        Xv = self._check_X_any(X, kernel, reset=True)
        n = _num_samples(Xv)
        y, Y2, T = self._targets(y, n)
        means, scales = np.zeros(T), np.ones(T)
        if self.normalize_y:
            Y2, means, scales = _normalize(Y2)
        Y2 = np.ascontiguousarray(Y2, dtype=np.float64)
        alpha = self._noise(n)

        def lml_at(theta, eval_gradient):
            return _lml_matrix(kernel.clone_with_theta(theta), Xv, Y2, alpha, eval_gradient)

        if self.optimizer is not None and kernel.n_dims > 0:
            def obj_func(theta, eval_gradient=True):
                if eval_gradient:
                    lml, grad = lml_at(theta, True)
                    return -lml, -grad
                return -lml_at(theta, False)

            theta, lml = _search(self, obj_func, kernel.theta, kernel.bounds, int(self.n_restarts_optimizer))
            kernel.theta = theta
            kernel._check_bounds_params()
        else:
            lml = lml_at(kernel.theta, False)
        L, coef = _solve_matrix(kernel, Xv, Y2, alpha)
        self._gp = None
        self._mx = kernel
        self._n_targets_fit = T
        self.kernel_ = kernel
        self.X_train_ = np.copy(Xv) if self.copy_X_train else Xv
        self.y_train_ = Y2 if y.ndim == 2 else Y2.ravel()
        self.alpha_ = coef if y.ndim == 2 else coef.ravel()
        self.__dict__["_L_cache"] = L
        self._set_scaling(y, means, scales)
        self.log_marginal_likelihood_value_ = np.float64(lml)
        return self

    def _check_X_any(self, X, kernel, reset):
        """X for a kernel gram does not evaluate: numeric 2-D where it needs vectors, else any
        sequence as scikit-learn's validate_data(dtype=None, ensure_2d=False) takes it."""
        if kernel.requires_vector_input or isinstance(kernel, Kernel):
            return self._check_X(X, reset)
        from sklearn.utils import check_array as sk_check_array
        names = feature_names(X)
        X = sk_check_array(X, dtype=None, ensure_2d=False)
        if reset:
            for a in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(a, None)
            if X.ndim == 2:
                self.n_features_in_ = X.shape[1]
                if names is not None:
                    self.feature_names_in_ = names
        elif X.ndim == 2 and hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input.")
        return X

    def _predict_matrix(self, X, return_std, return_cov):
        kernel = self._mx
        Xq = self._check_X_any(X, kernel, reset=False)
        L, coef = self.L_, self.alpha_.reshape(self.alpha_.shape[0], -1)
        Ks = np.asarray(kernel(Xq, self.X_train_), dtype=np.float64)
        m, T = Ks.shape[0], coef.shape[1]
        mean = _lib.empty((m, T))
        var = _lib.empty((m, 1)) if return_std else None
        cov = _lib.empty((m, m)) if return_cov else None
        kss = None
        if return_std:
            kss = np.asarray(kernel.diag(Xq), dtype=np.float64).reshape(m, 1)
        elif return_cov:
            kss = np.asarray(kernel(Xq), dtype=np.float64)
        va = {k: (ctypes.byref(_lib.view(_lib.as_viewable(a, np.float64), k)) if a is not None else None)
              for k, a in (("L", L), ("coef", coef), ("Ks", Ks), ("kss", kss), ("mean", mean), ("std", var),
                           ("cov", cov))}
        _call(_lib.lib.gram_gp_posterior, va["L"], va["coef"], va["Ks"], va["kss"], va["mean"], va["std"],
              va["cov"])
        ystd = np.atleast_1d(self._y_train_std)
        mean = mean * ystd + np.atleast_1d(self._y_train_mean)
        if T == 1:
            mean = mean[:, 0]
        if return_std:
            sd = var * ystd
            return mean, (sd[:, 0] if sd.shape[1] == 1 else sd)
        if return_cov:
            c = cov[:, :, None] * ystd ** 2
            return mean, (c[:, :, 0] if c.shape[2] == 1 else c)
        return mean

    # ---- the fitted model --------------------------------------------------------------------

    def _fitted(self):
        return ((getattr(self, "_gp", None) is not None or getattr(self, "_mx", None) is not None)
                and hasattr(self, "X_train_"))

    def log_marginal_likelihood(self, theta=None, eval_gradient=False, clone_kernel=True):
        """The log marginal likelihood of ``theta`` for the training data.

        Parameters
        ----------
        theta : array-like of shape (n_kernel_params,), default=None
            Log of the free hyperparameters, in the order of ``kernel_.theta``; None returns
            ``log_marginal_likelihood_value_``.
        eval_gradient : bool, default=False
            Also return the gradient with respect to theta (theta must not be None).
        clone_kernel : bool, default=True
            False sets ``kernel_.theta`` to ``theta``, as scikit-learn does (the fitted model that
            predictions use is not changed: they stay those of the fit).

        Returns
        -------
        log_likelihood : numpy.float64
        log_likelihood_gradient : ndarray of shape (n_kernel_params,), if eval_gradient
            Where the likelihood is not defined at theta (a kernel matrix that is not positive
            definite, or a kernel that overflows): -inf and a zero gradient, as scikit-learn.
        """
        if not self._fitted():
            raise not_fitted(self)
        if theta is None:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated for theta!=None")
            return self.log_marginal_likelihood_value_
        if not clone_kernel:
            self.kernel_.theta = theta
        if self._gp is None:
            kernel = self.kernel_ if not clone_kernel else self.kernel_.clone_with_theta(theta)
            Y2 = np.ascontiguousarray(self.y_train_.reshape(self.y_train_.shape[0], -1), dtype=np.float64)
            return _lml_matrix(kernel, self.X_train_, Y2, self._noise(Y2.shape[0]), eval_gradient)
        base = _kernel_theta(_lib.lib.gram_gp_kernel(self._gp.ptr))
        return _lml(self._gp, self.kernel_, base, theta, eval_gradient)

    def predict(self, X, return_std=False, return_cov=False):
        """Predict with the Gaussian process (from the prior when not fitted).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or list of object
        return_std : bool, default=False
            Also return the standard deviation of the predictive distribution.
        return_cov : bool, default=False
            Also return the covariance of the joint predictive distribution.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
        y_std : ndarray of shape (n_samples,) or (n_samples, n_targets), if return_std
        y_cov : ndarray of shape (n_samples, n_samples) or (n_samples, n_samples, n_targets),
            if return_cov
        """
        if return_std and return_cov:
            raise RuntimeError("At most one of return_std or return_cov can be requested.")
        if not self._fitted():
            return self._predict_prior(X, return_std, return_cov)
        if self._gp is None:
            return self._predict_matrix(X, return_std, return_cov)
        Xq = self._check_X(X, reset=False)
        m, T = Xq.shape[0], self._n_targets_fit
        mean = _lib.empty((m, T))
        std = _lib.empty((m, T)) if return_std else None
        cov = _lib.empty((m, m, T)) if return_cov else None
        Xa, Ma = _lib.view(Xq, "X"), _lib.view(mean, "mean")
        Sa = ctypes.byref(_lib.view(std, "std")) if return_std else None
        work = m * (self.X_train_.shape[0] + (m if return_cov else 0)) * max(1, Xq.shape[1])
        for t in range(T if return_cov else 1):
            Ca = ctypes.byref(_lib.view(cov[:, :, t], "cov")) if return_cov else None
            _call(_lib.lib.gram_gp_predict, self._gp.ptr, ctypes.byref(Xa), ctypes.byref(Ma), Sa, t, Ca,
                  work=work)
        if T == 1:
            mean = mean[:, 0]
            std = None if std is None else std[:, 0]
            cov = None if cov is None else cov[:, :, 0]
        if return_std:
            return mean, std
        if return_cov:
            return mean, cov
        return mean

    def _prior_kernel(self):
        if self.kernel is None:
            return _default_kernel(True)
        try:
            return as_kernel(self.kernel)
        except ValueError:
            return self.kernel  # a scikit-learn kernel gram cannot evaluate computes itself

    def _predict_prior(self, X, return_std, return_cov):
        kernel = self._prior_kernel()
        X = self._check_X_any(X, kernel, reset=False)
        n_targets = self.n_targets if self.n_targets is not None else 1
        y_mean = np.zeros(shape=(_num_samples(X), n_targets)).squeeze()
        if return_cov:
            y_cov = kernel(X)
            if n_targets > 1:
                y_cov = np.repeat(np.expand_dims(y_cov, -1), repeats=n_targets, axis=-1)
            return y_mean, y_cov
        if return_std:
            y_var = kernel.diag(X)
            if n_targets > 1:
                y_var = np.repeat(np.expand_dims(y_var, -1), repeats=n_targets, axis=-1)
            return y_mean, np.sqrt(y_var)
        return y_mean

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draw samples from the Gaussian process (posterior, or prior when not fitted) at X.

        Posterior samples come from gram's counter-based generator (``gram_gp_sample``) seeded
        from ``random_state``: the same int gives the same samples on every platform and thread
        count. Prior samples, and posterior samples of a kernel gram does not evaluate, use
        NumPy's ``multivariate_normal`` as scikit-learn does (and equal scikit-learn's for the
        same seed).

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        n_samples : int, default=1
        random_state : int, RandomState or None, default=0

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples) or (n_samples_X, n_targets, n_samples)
        """
        if not _integral(n_samples) or n_samples < 0:
            raise ValueError(f"n_samples must be an int >= 0, got {n_samples!r}")
        if not self._fitted() or self._gp is None:
            rng = check_random_state(random_state)
            y_mean, y_cov = self.predict(X, return_cov=True)
            if y_mean.ndim == 1:
                return rng.multivariate_normal(y_mean, y_cov, n_samples).T
            return np.hstack([rng.multivariate_normal(y_mean[:, t], y_cov[..., t], n_samples).T[:, np.newaxis]
                              for t in range(y_mean.shape[1])])
        Xq = self._check_X(X, reset=False)
        rng = check_random_state(random_state)
        m, T = Xq.shape[0], self._n_targets_fit
        out = _lib.empty((m, T, int(n_samples)))
        Xa = _lib.view(Xq, "X")
        for t in range(T):
            seed = seed_from(rng)
            Oa = _lib.view(out[:, t, :], "out")
            _call(_lib.lib.gram_gp_sample, self._gp.ptr, ctypes.byref(Xa), t, ctypes.c_uint64(seed),
                  ctypes.byref(Oa))
        return out[:, 0, :] if T == 1 else out

    @property
    def L_(self):
        """Lower Cholesky factor of K(X_train_, X_train_) + alpha·I, (n_samples, n_samples).

        Copied out of the C model when first read rather than at fit: at large N it is as big as
        everything else together (3.2 GB at N = 2e4)."""
        L = self.__dict__.get("_L_cache")
        if L is not None:
            return L
        gp = self.__dict__.get("_gp")
        if gp is None or "X_train_" not in self.__dict__:
            raise AttributeError("'GaussianProcessRegressor' object has no attribute 'L_' (call fit first)")
        n = self.X_train_.shape[0]
        L = gp.get("cholesky", (n, n))
        self.__dict__["_L_cache"] = L
        return L

    # ---- pickling ----------------------------------------------------------------------------

    def __getstate__(self):
        state = dict(self.__dict__)
        if state.get("_gp") is not None:
            state.pop("_L_cache", None)  # the model bytes hold L
        gp = state.pop("_gp", None)
        if gp is not None:
            state["_gp_bytes"] = gp.to_bytes()
        return state

    def __setstate__(self, state):
        data = state.pop("_gp_bytes", None)
        self.__dict__.update(state)
        self.__dict__.setdefault("_gp", None)
        self.__dict__.setdefault("_mx", None)
        if data is not None:
            self._gp = _Handle.from_bytes(data, "gp")


def _normalize(Y):
    """gram_gp_fit's normalize_y (gram.h) for the path that has no C model: each column's mean and
    standard deviation (ddof 0; 1 for a constant column, scikit-learn's rule) on Y/2^e with
    2^e >= max|Y|, an exact scaling, so targets near the float64 limit do not overflow."""
    e = np.frexp(np.max(np.abs(Y), axis=0))[1]
    Z = np.ldexp(Y, -e)
    mz, vz = Z.mean(axis=0), Z.std(axis=0)
    constant = vz < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mz), 1.0)
    vz = np.where(constant, np.ldexp(1.0, -e), vz)
    return (Z - mz) / vz, np.ldexp(mz, e), np.ldexp(vz, e)


def _num_samples(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _bounds_t(kernel):
    b = np.asarray(kernel.bounds, dtype=np.float64).reshape(-1, 2)
    lo, hi = b[:, 0], b[:, 1]
    return np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi)


def _check_restart_bounds(bounds):
    if not np.isfinite(bounds).all():
        raise ValueError("Multiple optimizer restarts (n_restarts_optimizer>0) requires that all bounds "
                         "are finite.")


def _not_pd(kernel, e):
    """scikit-learn's LinAlgError for a kernel matrix that cannot be factored: its message first,
    then gram's (which names the pivot), as scikit-learn puts LAPACK's after its own."""
    err = np.linalg.LinAlgError(
        f"The kernel, {kernel}, is not returning a positive definite matrix. Try gradually increasing the "
        "'alpha' parameter of your GaussianProcessRegressor estimator.", str(e))
    return err


def _warn_starts(gp):
    """scikit-learn's ConvergenceWarning for each start of gram's L-BFGS-B that did not converge."""
    if not hasattr(_lib.lib, "gram_gp_n_starts"):  # pragma: no cover - an older libgram
        return
    st, it = ctypes.c_int(), ctypes.c_int64()
    for r in range(_lib.lib.gram_gp_n_starts(gp.ptr)):
        _lib.lib.gram_gp_start(gp.ptr, r, ctypes.byref(st), ctypes.byref(it))
        if st.value in _START_MESSAGES:
            status, message = _START_MESSAGES[st.value]
            _warn_not_converged(status, it.value, message)


def _search(est, obj_func, theta0, bounds, restarts):
    """scikit-learn's hyperparameter search: the optimizer from theta0, then ``restarts`` starts
    drawn uniformly in the (log) bounds from ``random_state``; the best (theta, lml)."""
    def run(start):
        if callable(est.optimizer):
            theta, f = est.optimizer(obj_func, start, bounds=bounds)
            return np.asarray(theta, dtype=np.float64), f
        import scipy.optimize
        res = scipy.optimize.minimize(obj_func, start, method="L-BFGS-B", jac=True, bounds=bounds)
        if res.status != 0:
            _warn_not_converged(res.status, res.nit, res.message)
        return res.x, res.fun

    optima = [run(theta0)]
    if restarts > 0:
        _check_restart_bounds(bounds)
        rng = check_random_state(est.random_state)
        for _ in range(restarts):
            optima.append(run(rng.uniform(bounds[:, 0], bounds[:, 1])))
    values = [f for _, f in optima]
    best = int(np.argmin(values))
    return optima[best][0], -np.float64(np.min(values))


def _lml(gp, kernel, base, theta, eval_gradient):
    """gram_gp_log_marginal_likelihood at ``theta`` (kernel's scikit-learn theta), the C
    hyperparameters theta does not cover from ``base``; the gradient in theta."""
    full = kernel._theta_to_c(theta, base=base)
    lml = ctypes.c_double()
    grad = np.empty(full.size) if eval_gradient else None
    _call(_lib.lib.gram_gp_log_marginal_likelihood, gp.ptr, full.ctypes.data_as(_lib._dp), ctypes.byref(lml),
          grad.ctypes.data_as(_lib._dp) if eval_gradient else None)
    if eval_gradient:
        return np.float64(lml.value), kernel._grad_to_theta(grad)
    return np.float64(lml.value)


def _solve_matrix(kernel, X, Y, alpha):
    """The fitted state (L, coef) of a kernel gram does not evaluate, by gram_gp_solve on
    kernel(X); scikit-learn's LinAlgError where K + diag(alpha) cannot be factored."""
    K = _lib.as_viewable(np.asarray(kernel(X), dtype=np.float64), np.float64)
    n, T = Y.shape
    L, coef = _lib.empty((n, n)), _lib.empty((n, T))
    Ka, Ya = _lib.view(K, "K"), _lib.view(Y, "y")
    al, ap = _lib.as_doubles(alpha)
    try:
        _call(_lib.lib.gram_gp_solve, ctypes.byref(Ka), al.size, ap, ctypes.byref(Ya), None, None, None,
              ctypes.byref(_lib.view(L, "L")), ctypes.byref(_lib.view(coef, "coef")))
    except np.linalg.LinAlgError as e:
        raise _not_pd(kernel, e) from None
    return L, coef


def _lml_matrix(kernel, X, Y, alpha, eval_gradient):
    """The log marginal likelihood (and gradient in kernel.theta) of a kernel gram does not
    evaluate: K and ∂K from the kernel, the algebra by gram_gp_solve; -inf and a zero gradient
    where it is not defined, as scikit-learn."""
    if eval_gradient:
        K, dK = kernel(X, eval_gradient=True)
        dK = np.asarray(dK, dtype=np.float64)
        P = dK.shape[2] if dK.ndim == 3 else 0
        dK = _lib.as_viewable(dK.reshape(-1, P), np.float64)
    else:
        K, dK, P = kernel(X), None, 0
    K = _lib.as_viewable(np.asarray(K, dtype=np.float64), np.float64)
    Ka, Ya = _lib.view(K, "K"), _lib.view(Y, "y")
    al, ap = _lib.as_doubles(alpha)
    lml = ctypes.c_double()
    grad = np.empty(P)
    try:
        _call(_lib.lib.gram_gp_solve, ctypes.byref(Ka), al.size, ap, ctypes.byref(Ya),
              ctypes.byref(_lib.view(dK, "dK")) if eval_gradient else None, ctypes.byref(lml),
              grad.ctypes.data_as(_lib._dp) if eval_gradient else None, None, None)
        value = np.float64(lml.value)
    except ValueError as e:  # LinAlgError is one
        if not isinstance(e, np.linalg.LinAlgError) and getattr(e, "gram_status", None) != _lib.EDOMAIN:
            raise
        value, grad = np.float64(-np.inf), np.zeros(P)
    return (value, grad) if eval_gradient else value


def _check_bounds(kernel):
    """scikit-learn's warning when a learned hyperparameter sits at its bound (the kernel's own
    _check_bounds_params where gram's kernels are scikit-learn's)."""
    if hasattr(kernel, "_check_bounds_params"):
        kernel._check_bounds_params()
        return
    theta, bounds = kernel.theta, kernel.bounds
    close = np.isclose(bounds, np.atleast_2d(theta).T)
    i = 0
    for hyp in kernel.hyperparameters:
        if hyp.fixed:
            continue
        for dim in range(hyp.n_elements):
            if close[i, 0]:
                warnings.warn(
                    f"The optimal value found for dimension {dim} of parameter {hyp.name} is close to "
                    f"the specified lower bound {hyp.bounds[dim][0]}. Decreasing the bound and "
                    "calling fit again may find a better value.", _convergence_warning())
            elif close[i, 1]:
                warnings.warn(
                    f"The optimal value found for dimension {dim} of parameter {hyp.name} is close to "
                    f"the specified upper bound {hyp.bounds[dim][1]}. Increasing the bound and "
                    "calling fit again may find a better value.", _convergence_warning())
            i += 1


# ---- kernel ridge regression ------------------------------------------------------------------

# scikit-learn's pairwise kernel names (metrics.pairwise.PAIRWISE_KERNEL_FUNCTIONS)
_PAIRWISE = ("additive_chi2", "chi2", "linear", "poly", "polynomial", "rbf", "laplacian", "sigmoid", "cosine")


def _dot(X, Y):
    return X @ Y.T


def _chi2_parts(X, Y):
    """scikit-learn's additive chi² kernel, -Σ (x - y)² / (x + y) over the terms with x + y ≠ 0."""
    if (X < 0).any():
        raise ValueError("X contains negative values.")
    if Y is not X and (Y < 0).any():
        raise ValueError("Y contains negative values.")
    out = _lib.empty((X.shape[0], Y.shape[0]))
    step = max(1, (1 << 22) // max(1, Y.size))  # rows per block: a few MB of temporaries
    for i in range(0, X.shape[0], step):
        a = X[i:i + step, None, :]
        nom = a + Y[None, :, :]
        diff = a - Y[None, :, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(nom != 0, diff * diff / np.where(nom != 0, nom, 1), 0.0)
        out[i:i + step] = -terms.sum(axis=2)
    return out


def _numpy_kernel(name, X, Y, gamma, degree, coef0):
    """The kernels gram computes in NumPy, as sklearn.metrics.pairwise does."""
    if name == "sigmoid":
        K = _dot(X, Y) * gamma + coef0
        return np.tanh(K)
    if name in ("poly", "polynomial"):
        K = _dot(X, Y) * gamma + coef0
        return K ** degree
    if name == "rbf":
        d2 = np.maximum((X * X).sum(1)[:, None] - 2 * _dot(X, Y) + (Y * Y).sum(1)[None, :], 0)
        return np.exp(-gamma * d2)
    if name == "laplacian":
        return np.exp(-gamma * np.abs(X[:, None, :] - Y[None, :, :]).sum(2))
    if name == "additive_chi2":
        return _chi2_parts(X, Y)
    if name == "chi2":
        return np.exp(gamma * _chi2_parts(X, Y))
    raise AssertionError(name)  # pragma: no cover


def _callable_kernel(fn, X, Y, params):
    """sklearn.metrics.pairwise's callable kernels: fn(x, y) per pair (the upper triangle and the
    diagonal when Y is X, then mirrored)."""
    if Y is None:
        n = X.shape[0]
        K = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                K[i, j] = fn(X[i], X[j], **params)
        K = K + K.T
        for i in range(n):
            K[i, i] = fn(X[i], X[i], **params)
        return K
    K = _lib.empty((X.shape[0], Y.shape[0]))
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            K[i, j] = fn(X[i], Y[j], **params)
    return K


def _check_kernel_values(A, what):
    """The C layer's refusal of a kernel that overflows for finite inputs, for the kernels computed
    here in NumPy (sigmoid, chi2, poly outside gram's family, callables)."""
    bad = ~np.isfinite(A)
    if bad.any():
        i = np.argwhere(bad)[0]
        where = ", ".join(f"{w} {k}" for w, k in zip(("row", "column"), i))
        raise ValueError(f"{what} is not finite at {where} ({A[tuple(i)]}): the kernel overflows for "
                         "these inputs; scale X (or the kernel's parameters)")


def _dense(X):
    """scikit-learn's KernelRidge takes sparse X (CSR/CSC; other formats converted): gram
    densifies it, N×D float64 (8·N·D bytes), beside the N×N kernel matrix a fit needs anyway."""
    from ._validation import _is_sparse
    return X.toarray() if _is_sparse(X) else X


class KernelRidge(_Regressor):
    """Kernel ridge regression: ``sklearn.kernel_ridge.KernelRidge`` computed by gram.

    Dual coefficients ``(K + alpha diag(1/sample_weight)) c = y`` by Cholesky in C; predictions
    are the engine's kernel sums ``Σ_j k(x, x_j) c_j``, never an n×m matrix.

    Parameters
    ----------
    alpha : float or array-like of shape (n_targets,), default=1
        Regularisation strength (>= 0); one value per target allowed.
    kernel : str, callable, gram kernel or scikit-learn kernel, default='linear'
        scikit-learn's names with its parameterisation: 'linear', 'rbf' (exp(-gamma |x-y|²),
        gram's gaussian), 'laplacian' (exp(-gamma |x-y|₁), gram's laplacian_l1), 'poly' /
        'polynomial' ((gamma <x,y> + coef0)^degree), 'cosine' are computed by gram; 'sigmoid',
        'chi2', 'additive_chi2', callables (``k(x, y, **kernel_params)`` per pair), and 'poly'
        with a non-integer degree or a negative coef0 are computed in NumPy and solved by gram;
        'precomputed' takes kernel matrices as X. Any other string is a gram kernel spec.
    gamma : float, default=None
        For 'rbf', 'laplacian', 'poly', 'sigmoid' and 'chi2'; None means 1 / n_features
        ('chi2': 1.0, its own default).
    degree : float, default=3
    coef0 : float, default=1
    kernel_params : dict, default=None
        Keyword arguments of a callable kernel.

    Attributes
    ----------
    dual_coef_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
    X_fit_ : ndarray of shape (n_samples, n_features)
        The training data (the kernel matrix for 'precomputed').
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Examples
    --------
    >>> import numpy as np, gram
    >>> X = np.linspace(0, 5, 20)[:, None]
    >>> krr = gram.KernelRidge(alpha=0.1, kernel="rbf", gamma=0.5).fit(X, np.sin(X[:, 0]))
    >>> krr.predict([[2.5]]).round(6)
    array([0.586153])
    """

    def __init__(self, alpha=1, *, kernel="linear", gamma=None, degree=3, coef0=1, kernel_params=None):
        self.alpha = alpha
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.kernel_params = kernel_params

    def _pairwise(self):
        return isinstance(self.kernel, str) and self.kernel == "precomputed"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # as scikit-learn's: sparse X is taken (densified here)
        return tags

    def _validate_params(self):
        a = self.alpha
        if _real(a):
            if not a >= 0:
                raise self._bad("alpha", "a float in the range [0.0, inf) or an array-like")
        elif isinstance(a, (str, bytes, dict, bool, np.bool_)) or a is None or not hasattr(a, "__len__"):
            raise self._bad("alpha", "a float in the range [0.0, inf) or an array-like")
        k = self.kernel
        if not (isinstance(k, str) or callable(k) or isinstance(k, Kernel)
                or (type(k).__module__ or "").startswith("sklearn.")):
            raise self._bad("kernel", "a str among " + str(set(_PAIRWISE) | {"precomputed"})
                            + " or a gram spec, a callable, or a kernel object")
        g = self.gamma
        if g is not None and (not _real(g) or not g >= 0):
            raise self._bad("gamma", "a float in the range [0.0, inf) or None")
        if not _real(self.degree) or not self.degree >= 0:
            raise self._bad("degree", "a float in the range [0.0, inf)")
        if not _real(self.coef0) or not math.isfinite(float(self.coef0)):
            raise self._bad("coef0", "a float in the range (-inf, inf)")
        if self.kernel_params is not None and not isinstance(self.kernel_params, dict):
            raise self._bad("kernel_params", "an instance of 'dict' or None")

    def _plan(self, n_features):
        """How to compute the kernel: ('gram', Kernel) — the C model; ('engine', Kernel) —
        a kernel object with white noise, solved on K(X, X) without it as scikit-learn does;
        ('numpy', name or callable); ('precomputed', None)."""
        k = self.kernel
        if isinstance(k, str):
            if k == "precomputed":
                return "precomputed", None
            if k not in _PAIRWISE:
                return "gram", Kernel(k)
            gamma = (1.0 if k == "chi2" else 1.0 / n_features) if self.gamma is None else float(self.gamma)
            degree, coef0 = self.degree, float(self.coef0)
            if k == "linear":
                return "gram", Kernel("linear")
            if k == "cosine":
                return "gram", Kernel("cosine")
            if k == "rbf" and gamma > 0:
                return "gram", Kernel(f"gaussian(lengthscale={float(1.0 / math.sqrt(2.0 * gamma))!r})")
            if k == "laplacian" and gamma > 0:
                return "gram", Kernel(f"laplacian_l1(lengthscale={float(1.0 / gamma)!r})")
            if k == "sigmoid" and gamma > 0:
                return "gram", Kernel(f"sigmoid(gamma={gamma!r}, coef0={coef0!r})")
            if (k in ("poly", "polynomial") and gamma > 0 and coef0 >= 0 and float(degree) == int(degree)
                    and int(degree) >= 1):
                return "gram", Kernel(f"polynomial(degree={int(degree)}, gamma={gamma!r}, coef0={coef0!r})")
            return "numpy", (k, gamma, degree, coef0)
        if isinstance(k, Kernel) or (type(k).__module__ or "").startswith("sklearn."):
            gk = as_kernel(k)
            return ("engine" if "white(" in gk.spec else "gram"), gk
        return "numpy", k

    def _kernel_matrix(self, plan, X, Y):
        """K(X, Y) (Y None: the symmetric training matrix) for the NumPy and engine plans."""
        mode, what = plan
        if mode == "engine":
            # K(X, X) as a non-symmetric call: scikit-learn passes Y=X, so white noise is 0.
            return what(X, np.array(X if Y is None else Y, copy=True))
        if callable(what):
            return _callable_kernel(what, X, Y, self.kernel_params or {})
        name, gamma, degree, coef0 = what
        return _numpy_kernel(name, X, X if Y is None else Y, gamma, degree, coef0)

    def _training_matrix(self, plan, Xv):
        if plan[0] == "precomputed":
            if Xv.shape[0] != Xv.shape[1]:
                raise ValueError(
                    "Precomputed metric requires shape (n_queries, n_indexed). Got "
                    f"({Xv.shape[0]}, {Xv.shape[1]}) for {Xv.shape[0]} indexed.")
            return Xv
        _check_finite(Xv, "X")
        K = _lib.as_viewable(np.asarray(self._kernel_matrix(plan, Xv, None), dtype=np.float64), np.float64)
        _check_kernel_values(K, "the kernel matrix K(X, X)")
        return K

    def fit(self, X, y, sample_weight=None):
        """Fit the kernel ridge regression model.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Training data; the kernel matrix (n_samples, n_samples) for kernel='precomputed'.
            A SciPy sparse matrix is densified (8·n_samples·n_features bytes).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : float or array-like of shape (n_samples,), default=None
            Non-negative weights of the samples.

        Returns
        -------
        self : object
        """
        self._validate_params()
        _lib.need("gram_krr_fit", "gram_krr_solve")
        Xv = self._check_X(_dense(X), reset=True)
        n = Xv.shape[0]
        y = _check_y(y, type(self).__name__, n)
        Y2 = y.reshape(n, -1)
        T = Y2.shape[1]
        sw = check_sample_weight(sample_weight, n)
        alpha = np.atleast_1d(np.asarray(self.alpha, dtype=np.float64)).reshape(-1)
        if alpha.size > 1 and np.all(alpha == alpha[0]):
            alpha = alpha[:1]  # one penalty shared by every target, as scikit-learn
        lam, lam_p = _lib.as_doubles(alpha)
        plan = self._plan(Xv.shape[1])
        Ya = _lib.view(Y2, "y")
        Wa = ctypes.byref(_lib.view(sw.reshape(-1, 1), "sample_weight")) if sw is not None else None
        krr = None
        try:
            if plan[0] == "gram":
                Xa = _lib.view(Xv, "X")
                out = ctypes.c_void_p()
                _call(_lib.lib.gram_krr_fit, plan[1]._handle().ptr, ctypes.byref(Xa), ctypes.byref(Ya), Wa,
                      lam.size, lam_p, ctypes.byref(out))
                krr = _Handle(out, "krr")
                dual = krr.get("dual_coef", (n, T))
            else:
                K = self._training_matrix(plan, Xv)
                dual = np.empty((n, T))
                Ka, Da = _lib.view(K, "K"), _lib.view(dual, "dual_coef")
                _call(_lib.lib.gram_krr_solve, ctypes.byref(Ka), ctypes.byref(Ya), Wa, lam.size, lam_p,
                      ctypes.byref(Da), names={"K": "X"} if plan[0] == "precomputed" else None)
        except np.linalg.LinAlgError:
            if lam.size != 1:
                raise
            # scikit-learn's fallback for one penalty (an indefinite kernel such as additive_chi2)
            warnings.warn("Singular matrix in solving dual problem. Using least-squares solution instead.")
            K = plan[1](Xv) if plan[0] == "gram" else self._training_matrix(plan, Xv)
            s = np.ones(n) if sw is None else np.sqrt(sw)
            A = K * np.outer(s, s)
            A.flat[::n + 1] += lam[0]
            dual = np.linalg.lstsq(A, Y2 * s[:, None], rcond=None)[0] * s[:, None]
            if plan[0] == "gram":
                plan = ("engine", plan[1])
        self._krr = krr
        self._plan_fit = plan
        self.dual_coef_ = dual if y.ndim == 2 else dual.ravel()
        self.X_fit_ = Xv
        return self

    def predict(self, X):
        """Predict with the kernel ridge model.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Samples; for kernel='precomputed' the kernel matrix (n_samples, n_samples_fitted).
            A SciPy sparse matrix is densified.

        Returns
        -------
        C : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        if not hasattr(self, "dual_coef_") or not hasattr(self, "_plan_fit"):
            raise not_fitted(self)
        Xq = self._check_X(_dense(X), reset=False)
        mode, what = self._plan_fit
        dual = self.dual_coef_
        if mode == "gram":
            T = 1 if dual.ndim == 1 else dual.shape[1]
            out = _lib.empty((Xq.shape[0], T))
            Xa, Oa = _lib.view(Xq, "X"), _lib.view(out, "out")
            _call(_lib.lib.gram_krr_predict, self._krr.ptr, ctypes.byref(Xa), ctypes.byref(Oa),
                  work=out.size * self.X_fit_.size)
            return out.ravel() if dual.ndim == 1 else out
        if mode == "engine":
            out = what.sum(self.X_fit_, Xq, weights=dual)
        elif mode == "precomputed":
            out = np.dot(Xq, dual)
        else:
            _check_finite(Xq, "X")
            out = np.dot(self._kernel_matrix(self._plan_fit, Xq, self.X_fit_), dual)
        _check_kernel_values(out, "the prediction")
        return out

    def __getstate__(self):
        state = dict(self.__dict__)
        krr = state.pop("_krr", None)
        if krr is not None:
            state["_krr_bytes"] = krr.to_bytes()
        return state

    def __setstate__(self, state):
        data = state.pop("_krr_bytes", None)
        self.__dict__.update(state)
        if data is not None:
            self._krr = _Handle.from_bytes(data, "krr")
