"""Explicit feature maps: drop-ins for scikit-learn's ``RBFSampler``, ``Nystroem`` and
``PolynomialCountSketch``, and :class:`RandomFeatures` for every method libgram builds
(``gram_features_*``, docs/features.md).

A fitted transformer holds one immutable C map (its frequencies, phases, hashes or landmarks);
``transform`` is ``gram_features_transform`` (a BLAS projection and gram's vector cos/sin/exp, on
all cores, bit-identical for any thread count). The attributes scikit-learn documents
(``random_weights_``, ``indexHash_``, ``components_``, ...) are NumPy copies of the map's state,
so the map they describe is the one that runs. Pickles carry the map's own bytes
(``gram_features_to_bytes``) where the library has them, else what re-creates it bit for bit
(its kernel, method, sizes and seed).

Where scikit-learn is installed the classes use its ``TransformerMixin`` and
``ClassNamePrefixFeaturesOutMixin`` (``fit_transform``, ``set_output``, ``get_feature_names_out``
as scikit-learn's); without it, equivalents of their own.
"""
import ctypes
import math
import os
import warnings
import weakref

import numpy as np

from . import _lib
from ._base import BaseEstimator, not_fitted
from ._validation import (_integral, _is_sparse, _real, check_array, check_feature_names, check_random_state,
                          call_x, check_random_state_param, feature_names, is_nonfinite, nonfinite_error,
                          seed_from)

__all__ = ["RBFSampler", "Nystroem", "PolynomialCountSketch", "RandomFeatures"]

# gram_features_method (gram.h), by the names RandomFeatures takes
METHODS = {"rff": 0, "rff_phase": 1, "orf": 2, "sorf": 3, "positive": 4, "positive_orf": 5,
           "hyperbolic": 6, "hyperbolic_orf": 7, "tensorsketch": 8, "arccos": 9, "nystrom": 10}
# gram_landmarks
LANDMARKS = {"uniform": 0, "kmeans++": 1, "leverage": 2}
_NYSTROM = METHODS["nystrom"]

try:  # scikit-learn's mixins where it is there: set_output and its feature-name rules for free
    from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    class TransformerMixin:
        def fit_transform(self, X, y=None, **fit_params):
            return self.fit(X, y, **fit_params).transform(X)

    class ClassNamePrefixFeaturesOutMixin:
        def get_feature_names_out(self, input_features=None):
            if not hasattr(self, "_n_features_out"):
                raise not_fitted(self)
            prefix = type(self).__name__.lower()
            return np.asarray([f"{prefix}{i}" for i in range(self._n_features_out)], dtype=object)


# ---- the C map ------------------------------------------------------------------------------


class _Map:
    """Owns one ``gram_features`` map; destroyed with the holder."""

    __slots__ = ("ptr", "__weakref__")

    def __init__(self, ptr):
        self.ptr = ptr
        weakref.finalize(self, _lib.lib.gram_features_destroy, ptr.value)

    @classmethod
    def create(cls, kernel, D, method, R, seed):
        _lib.need("gram_features_create")
        return cls(_lib.new_handle(_lib.lib.gram_features_create, kernel._handle().ptr, D, method, R, seed))

    @classmethod
    def nystrom(cls, kernel, X, R, landmarks, seed, threads=None):
        _lib.need("gram_features_nystrom")
        Xa = _lib.view(X, "X")
        out = ctypes.c_void_p()
        call_x(_lib.lib.gram_features_nystrom, kernel._handle().ptr, ctypes.byref(Xa), R, landmarks, seed,
               ctypes.byref(out), threads=threads, work=X.shape[0] * R * (X.shape[1] + R))
        return cls(out)

    @property
    def n_components(self):
        return int(_lib.lib.gram_features_n_components(self.ptr))

    @property
    def dim(self):
        return int(_lib.lib.gram_features_dim(self.ptr))

    def transform(self, X, dtype, threads=None):
        out = _lib.empty((X.shape[0], self.n_components), dtype)
        if out.size == 0:
            return out
        Xa, Oa = _lib.view(X, "X"), _lib.view(out, "out")
        call_x(_lib.lib.gram_features_transform, self.ptr, ctypes.byref(Xa), ctypes.byref(Oa),
               threads=threads, work=out.size * max(X.shape[1], 1))
        return out

    def frequencies(self):
        """(omega (F×D), phase (F,) or None) as the map holds them (float64)."""
        F = int(_lib.lib.gram_features_n_frequencies(self.ptr))
        omega = np.empty((F, self.dim))
        phase = np.empty(F) if int(_lib.lib.gram_features_method_of(self.ptr)) == METHODS["rff_phase"] else None
        Oa = _lib.view(omega, "omega")
        status = _lib.lib.gram_features_frequencies(
            self.ptr, ctypes.byref(Oa), None if phase is None else phase.ctypes.data_as(_lib._dp))
        if status:
            raise _lib.error(status, "gram_features_frequencies failed")
        return omega, phase

    def sketch(self):
        """(hash, sign): degree × (D + 1) int32 and int8 arrays, column D the constant coordinate."""
        p = int(_lib.lib.gram_features_sketch_degree(self.ptr))
        h = np.empty((p, self.dim + 1), dtype=np.int32)
        s = np.empty((p, self.dim + 1), dtype=np.int8)
        status = _lib.lib.gram_features_sketch(self.ptr, h.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                                               s.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)))
        if status:
            raise _lib.error(status, "gram_features_sketch failed")
        return h, s

    def nystrom_parts(self):
        """(indices (R,) int64, components (R×D), normalization (R×R))."""
        R, D = self.n_components, self.dim
        idx = np.empty(R, dtype=np.int64)
        comp, norm = np.empty((R, D)), np.empty((R, R))
        Ca, Na = _lib.view(comp, "components"), _lib.view(norm, "normalization")
        status = _lib.lib.gram_features_nystrom_parts(
            self.ptr, idx.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), ctypes.byref(Ca), ctypes.byref(Na))
        if status:
            raise _lib.error(status, "gram_features_nystrom_parts failed")
        return idx, comp, norm

    def to_bytes(self):
        return _lib.take_bytes(_lib.lib.gram_features_to_bytes, self.ptr)

    @classmethod
    def from_bytes(cls, data):
        _lib.need("gram_features_from_bytes")
        out = ctypes.c_void_p()
        with _lib.Call(work=0) as c:
            c.check(_lib.lib.gram_features_from_bytes(c.ctx, data, len(data), ctypes.byref(out)))
        return cls(out)


def _threads(n_jobs):
    """joblib's n_jobs as gram's thread count (None: OpenMP's default; -1: every core)."""
    if n_jobs is None:
        return None
    n_jobs = int(n_jobs)
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return n_jobs


def _kernel(spec_or_kernel):
    from .kernels import as_kernel
    return as_kernel(spec_or_kernel)


# ---- shared estimator machinery -------------------------------------------------------------------


def _dense(X):
    """A SciPy sparse matrix as a dense array (the C maps read dense rows)."""
    if _is_sparse(X):
        _lib.check_memory(8 * X.shape[0] * X.shape[1], f"a dense copy of X {X.shape}")
        return X.toarray()
    return X


def _map_bytes_available():
    return hasattr(_lib.lib, "gram_features_to_bytes")


class _Transformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Validation, tags and pickling shared by the transformers."""

    _preserves_float32 = True  # float32 in -> float32 out (scikit-learn's preserves_dtype)

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags
        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(
                        preserves_dtype=["float64", "float32"] if self._preserves_float32 else ["float64"]),
                    regressor_tags=None, classifier_tags=None,
                    input_tags=InputTags(sparse=True, pairwise=self._pairwise()))

    def _pairwise(self):
        return False

    def _check_n_components(self):
        if not _integral(self.n_components) or self.n_components < 1:
            raise self._bad("n_components", "an int in the range [1, inf)")

    def _check_X(self, X, reset, keep_float32=True):
        names = feature_names(X)
        X = check_array(_dense(X), name="X", estimator=type(self).__name__, keep_float32=keep_float32)
        if reset:
            # fit reads X's values only in C, later (or, for most maps, never): checked here, as
            # scikit-learn's validate_data does, so that a NaN is refused at fit
            _check_finite(X)
        check_feature_names(self, X, names, reset)
        return X

    def _check_fitted(self):
        if not hasattr(self, "_n_features_out"):
            raise not_fitted(self)

    def __getstate__(self):
        state = dict(self.__dict__)
        m = state.pop("_map", None)
        if m is not None and _map_bytes_available():
            state["_map_bytes"] = m.to_bytes()
        elif m is not None and state.get("_map_args") is None:
            raise TypeError(f"{type(self).__name__}: pickling a map made from the data (Nyström) needs "
                            "gram_features_to_bytes, which the loaded libgram lacks")
        return state

    def __setstate__(self, state):
        data = state.pop("_map_bytes", None)
        self.__dict__.update(state)
        self._map = None
        if data is not None:
            self._map = _Map.from_bytes(data)
        elif getattr(self, "_map_args", None) is not None:
            self._map = self._remake(self._map_args)

    def _remake(self, args):
        """The map again from what made it (deterministic: same arguments, same bits)."""
        spec, D, method, R, seed = args
        return _Map.create(_kernel(spec), D, method, R, seed)


# ---- RBFSampler ---------------------------------------------------------------------------------


class RBFSampler(_Transformer):
    """Random Fourier features of the RBF kernel: ``sklearn.kernel_approximation.RBFSampler``.

    ``transform(X) = sqrt(2 / n_components) * cos(X @ random_weights_ + random_offset_)``, computed
    by gram's RFF_PHASE map of ``rbf(lengthscale=1/sqrt(2 gamma))`` (Rahimi & Recht 2007): the
    frequencies are gram's (Philox streams of a seed drawn from ``random_state``), so the numbers
    differ from scikit-learn's for the same ``random_state`` while their law is the same.

    Parameters
    ----------
    gamma : 'scale' or float, default=1.0
        The kernel is exp(-gamma |x - y|²); 'scale' uses 1 / (n_features * X.var()) (1 where the
        variance is 0).
    n_components : int, default=100
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    random_weights_ : ndarray of shape (n_features, n_components), X's dtype
    random_offset_ : ndarray of shape (n_components,), X's dtype
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Sparse X is accepted and densified (8·n_samples·n_features bytes).
    """

    def __init__(self, *, gamma=1.0, n_components=100, random_state=None):
        self.gamma = gamma
        self.n_components = n_components
        self.random_state = random_state

    def _validate_params(self):
        g = self.gamma
        if not ((isinstance(g, str) and g == "scale") or (_real(g) and g >= 0)):
            raise self._bad("gamma", "a str among {'scale'} or a float in the range [0.0, inf)")
        self._check_n_components()
        check_random_state_param(self)

    def fit(self, X, y=None):
        """Draw the frequencies and phases for X's number of features.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : object
        """
        self._validate_params()
        X = self._check_X(X, reset=True)
        D, R = X.shape[1], int(self.n_components)
        if self.gamma == "scale":
            var = X.var()
            self._gamma = 1.0 / (D * var) if var != 0 else 1.0
        else:
            self._gamma = self.gamma
        seed = seed_from(self.random_state)
        gamma = float(self._gamma)
        # gamma = 0 (a constant kernel) has no lengthscale: the phases of a unit-lengthscale map
        # with zero frequencies (every feature a constant sqrt(2/R) cos(b)).
        ell = 1.0 / math.sqrt(2.0 * gamma) if gamma > 0 else 1.0
        if not math.isfinite(ell) or ell == 0:
            raise ValueError(f"RBFSampler: gamma={gamma!r} gives the lengthscale 1/sqrt(2 gamma) = {ell!r}, "
                             "which is not a positive finite number")
        args = (f"rbf(lengthscale={ell!r})", D, METHODS["rff_phase"], R, seed)
        self._map = self._remake(args)
        self._map_args = args
        omega, phase = self._map.frequencies()
        if gamma == 0:
            omega[:] = 0.0
            self._map, self._map_args = None, None
            self._constant = True
        else:
            self._constant = False
        self.random_weights_ = np.ascontiguousarray(omega.T, dtype=X.dtype)
        self.random_offset_ = phase.astype(X.dtype)
        self._n_features_out = R
        return self

    def transform(self, X):
        """Apply the approximate feature map to X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            float32 where X and the fitted attributes are float32, else float64.
        """
        self._check_fitted()
        X = self._check_X(X, reset=False)
        dtype = np.result_type(X.dtype, self.random_weights_.dtype)
        X = _lib.as_viewable(X, dtype, "X")
        if self._constant:
            if not np.isfinite(X).all():
                _raise_nonfinite(X)
            row = np.cos(self.random_offset_.astype(dtype)) * dtype.type(math.sqrt(2.0 / self.n_components))
            return np.tile(row, (X.shape[0], 1))
        return self._map.transform(X, dtype)


def _check_finite(X):
    if X.size and not np.isfinite(X).all():
        _raise_nonfinite(X)


def _raise_nonfinite(X):
    i = np.argwhere(~np.isfinite(X))[0]
    what = "NaN" if np.isnan(X[tuple(i)]) else "infinity or a value too large for dtype('float64')"
    raise ValueError(f"Input X contains {what} (X: row {i[0]}, column {i[1]}).")


# ---- PolynomialCountSketch --------------------------------------------------------------------------


def _is_pow2(n):
    return n >= 1 and n & (n - 1) == 0


class PolynomialCountSketch(_Transformer):
    """TensorSketch features of the polynomial kernel (gamma <x, y> + coef0)^degree:
    ``sklearn.kernel_approximation.PolynomialCountSketch``.

    Computed by gram's TENSORSKETCH map (Pham & Pagh 2013) where n_components is a power of two
    (its FFT's sizes); other sizes use scikit-learn's construction in NumPy (hashes drawn from
    ``random_state`` as scikit-learn draws them, FFTs by NumPy). ``indexHash_`` and ``bitHash_``
    have scikit-learn's layout (degree × n_features, plus a last column for the constant
    coordinate sqrt(coef0) where coef0 != 0). The output is float64, as scikit-learn's.

    Parameters
    ----------
    gamma : float, default=1.0
    degree : int, default=2
    coef0 : float, default=0
        Must be >= 0 (scikit-learn takes its square root: a negative coef0 would give NaN features).
    n_components : int, default=100
    random_state : int, RandomState instance or None, default=None

    Sparse X is accepted and densified.
    """

    _preserves_float32 = False

    def __init__(self, *, gamma=1.0, degree=2, coef0=0, n_components=100, random_state=None):
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.n_components = n_components
        self.random_state = random_state

    def _validate_params(self):
        if not _real(self.gamma) or not self.gamma >= 0 or not math.isfinite(self.gamma):
            raise self._bad("gamma", "a float in the range [0.0, inf)")
        if not _integral(self.degree) or self.degree < 1:
            raise self._bad("degree", "an int in the range [1, inf)")
        if not _real(self.coef0) or not math.isfinite(self.coef0):
            raise self._bad("coef0", "a float in the range (-inf, inf)")
        if self.coef0 < 0:
            raise ValueError(f"PolynomialCountSketch: coef0 must be >= 0 (the sketch appends the "
                             f"coordinate sqrt(coef0)), got {self.coef0!r}")
        self._check_n_components()
        check_random_state_param(self)

    def fit(self, X, y=None):
        """Draw the hashes and signs for X's number of features.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : object
        """
        self._validate_params()
        X = self._check_X(X, reset=True)
        D, R, p = X.shape[1], int(self.n_components), int(self.degree)
        c0 = float(self.coef0)
        cols = D + 1 if c0 != 0 else D
        if _is_pow2(R) and float(self.gamma) > 0:
            seed = seed_from(self.random_state)
            args = (f"polynomial(degree={p}, gamma={float(self.gamma)!r}, coef0={c0!r})", D,
                    METHODS["tensorsketch"], R, seed)
            self._map, self._map_args = self._remake(args), args
            h, s = self._map.sketch()
            self.indexHash_ = h[:, :cols].astype(np.int64)
            self.bitHash_ = s[:, :cols].astype(np.int64)
        else:
            rng = check_random_state(self.random_state)
            self._map, self._map_args = None, None
            self.indexHash_ = rng.randint(0, high=R, size=(p, cols))
            self.bitHash_ = rng.choice(a=[-1, 1], size=(p, cols))
        self._n_features_out = R
        return self

    def transform(self, X):
        """The sketch of X's tensor powers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components), float64
        """
        self._check_fitted()
        X = self._check_X(X, reset=False, keep_float32=False)
        if self._map is not None:
            return self._map.transform(X, np.float64)
        if not np.isfinite(X).all():
            _raise_nonfinite(X)
        Xg = np.sqrt(float(self.gamma)) * X
        if self.coef0 != 0:
            Xg = np.hstack([Xg, np.full((Xg.shape[0], 1), np.sqrt(float(self.coef0)))])
        R = int(self.n_components)
        sketches = np.zeros((Xg.shape[0], self.indexHash_.shape[0], R))
        for d in range(self.indexHash_.shape[0]):
            for j in range(Xg.shape[1]):
                sketches[:, d, self.indexHash_[d, j]] += self.bitHash_[d, j] * Xg[:, j]
        prod = np.prod(np.fft.fft(sketches, axis=2), axis=1)
        return np.real(np.fft.ifft(prod))


# ---- RandomFeatures -------------------------------------------------------------------------------


class RandomFeatures(_Transformer):
    """Any of gram's feature maps for any kernel it covers (docs/features.md).

    Parameters
    ----------
    kernel : str or gram kernel, default='rbf'
        A gram kernel spec ('rbf(lengthscale=2)', '3*matern32(lengthscale=[1, 2])',
        'polynomial(degree=3, gamma=0.5, coef0=1)', ...) or a kernel object (gram's or
        scikit-learn's). In gram's parameterisation: 'rbf' is exp(-|x - y|² / 2).
    method : str, default='rff'
        'rff' (cos/sin pairs), 'rff_phase' (cos(ωx + b)), 'orf', 'sorf', 'positive',
        'positive_orf', 'hyperbolic', 'hyperbolic_orf' (FAVOR+ and its hyperbolic variant),
        'arccos', 'tensorsketch', or 'nystrom' (landmarks from the fitted X).
    n_components : int, default=100
        The number of output features R (even for the paired methods, a power of two for
        'tensorsketch', at most n_samples for 'nystrom').
    landmarks : {'uniform', 'kmeans++', 'leverage'}, default='uniform'
        How 'nystrom' chooses its landmarks; ignored by the other methods.
    random_state : int, RandomState instance or None, default=None
    n_jobs : int, default=None
        Threads (None: OpenMP's default; -1: every core).

    Attributes
    ----------
    kernel_ : str
        The map's kernel in gram's canonical spec.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    """

    def __init__(self, kernel="rbf", *, method="rff", n_components=100, landmarks="uniform",
                 random_state=None, n_jobs=None):
        self.kernel = kernel
        self.method = method
        self.n_components = n_components
        self.landmarks = landmarks
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _validate_params(self):
        if not (isinstance(self.method, str) and self.method in METHODS):
            raise self._bad("method", f"a str among {sorted(METHODS)}")
        if not (isinstance(self.landmarks, str) and self.landmarks in LANDMARKS):
            raise self._bad("landmarks", f"a str among {sorted(LANDMARKS)}")
        self._check_n_components()
        check_random_state_param(self)
        if self.n_jobs is not None and not _integral(self.n_jobs):
            raise self._bad("n_jobs", "an int or None")

    def fit(self, X, y=None):
        """Make the map for X's number of features (and, for 'nystrom', its landmarks from X).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : object
        """
        self._validate_params()
        X = self._check_X(X, reset=True)
        k = _kernel(self.kernel)
        seed = seed_from(self.random_state)
        R = int(self.n_components)
        if METHODS[self.method] == _NYSTROM:
            if R > X.shape[0]:
                raise ValueError(f"RandomFeatures: n_components={R} landmarks for 'nystrom' but X has "
                                 f"{X.shape[0]} samples; pass n_components <= n_samples")
            self._map = _Map.nystrom(k, X, R, LANDMARKS[self.landmarks], seed, threads=_threads(self.n_jobs))
            self._map_args = None
        else:
            args = (k.spec, X.shape[1], METHODS[self.method], R, seed)
            self._map, self._map_args = _Map.create(k, *args[1:]), args
        self.kernel_ = k.canonical_spec
        self._n_features_out = R
        return self

    def transform(self, X):
        """φ(X), in X's dtype (float64 or float32).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
        """
        self._check_fitted()
        X = self._check_X(X, reset=False)
        return self._map.transform(X, X.dtype, threads=_threads(self.n_jobs))

    def kernel_sum(self, X, Y=None, weights=None, return_error=False):
        """The kernel sum through the features: ``out[i] ≈ Σ_j k(Y[i], X[j]) weights[j]`` as
        ``φ(Y[i])·(Φ(X)ᵀ weights)`` in O((N + M)·R) work (``gram_features_sum``), the argument
        order of :func:`gram.kernel_sum`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The points that carry the weights.
        Y : array-like of shape (n_queries, n_features), default=None
            The queries (None: X).
        weights : array-like of shape (n_samples,) or (n_samples, n_columns), default=None
            None: all ones.
        return_error : bool, default=False
            Also return the library's estimate of the relative error of each column (an exact
            check through the engine on a sample of the queries, docs/features.md).

        Returns
        -------
        out : ndarray of shape (n_queries,) or (n_queries, n_columns), float64
        err : ndarray of shape (n_columns,), only with ``return_error``
        """
        self._check_fitted()
        _lib.need("gram_features_sum")
        X = self._check_X(X, reset=False)
        Y = X if Y is None else self._check_X(Y, reset=False)
        if X.dtype != Y.dtype:
            X, Y = (_lib.as_viewable(a, np.float64, n) for a, n in ((X, "X"), (Y, "Y")))
        W = None
        if weights is not None:
            W = np.asarray(weights)
            if W.ndim not in (1, 2) or W.shape[0] != X.shape[0]:
                raise ValueError(f"weights must have shape ({X.shape[0]},) or ({X.shape[0]}, n_columns), "
                                 f"got {W.shape}")
            W = _lib.as_viewable(W.reshape(X.shape[0], -1), np.float64, "weights")
        V = 1 if W is None else W.shape[1]
        out = _lib.empty((Y.shape[0], V), np.float64)
        err = np.empty(V)
        Xa, Ya, Oa = _lib.view(X, "X"), _lib.view(Y, "Y"), _lib.view(out, "out")
        Wa = None if W is None else ctypes.byref(_lib.view(W, "weights"))
        try:
            with _lib.Call(_threads(self.n_jobs), work=(X.shape[0] + Y.shape[0]) * self.n_components) as c:
                c.check(_lib.lib.gram_features_sum(c.ctx, self._map.ptr, ctypes.byref(Ya), ctypes.byref(Xa), Wa,
                                                   ctypes.byref(Oa), err.ctypes.data_as(_lib._dp)))
        except ValueError as e:
            if is_nonfinite(e):
                name = str(e).split(":", 1)[0].strip()
                raise nonfinite_error(e, {"W": "weights"}.get(name, name)) from None
            raise
        if weights is None or np.ndim(weights) == 1:
            out = out[:, 0]
        return (out, err) if return_error else out


# ---- Nystroem -------------------------------------------------------------------------------------

# scikit-learn's kernel names and the parameters each takes (sklearn.metrics.pairwise.KERNEL_PARAMS)
_SK_KERNEL_PARAMS = {
    "additive_chi2": (), "chi2": ("gamma",), "cosine": (), "linear": (), "poly": ("gamma", "degree", "coef0"),
    "polynomial": ("gamma", "degree", "coef0"), "rbf": ("gamma",), "laplacian": ("gamma",),
    "sigmoid": ("gamma", "coef0"),
}


class Nystroem(_Transformer):
    """Nyström features from landmarks: ``sklearn.kernel_approximation.Nystroem``.

    ``transform(X) = K(X, components_) @ normalization_.T`` with ``normalization_`` K(L, L)^(-1/2).
    For the kernels gram computes ('rbf', 'laplacian', 'linear', 'cosine', 'sigmoid' with gamma >
    0, 'poly'/'polynomial' with an integer degree >= 1, coef0 >= 0 and gamma > 0, any gram spec
    or kernel object) the map is gram's (``gram_features_nystrom``: the kernel values by the
    engine, K(L, L)'s eigen-decomposition with small eigenvalues dropped, docs/features.md).
    The others ('chi2', 'additive_chi2', callables, 'precomputed', other polynomials) are computed
    as scikit-learn computes them (its ``pairwise_kernels`` and an SVD; they need scikit-learn).

    With ``landmarks='uniform'`` (the default) the landmarks are the rows scikit-learn picks for
    the same ``random_state`` (``component_indices_`` equal to scikit-learn's), in that order.

    Parameters
    ----------
    kernel : str, callable or gram kernel, default='rbf'
    gamma, coef0, degree : float, default=None
        scikit-learn's parameters of its named kernels (gamma None: 1/n_features; 'chi2': 1).
    kernel_params : dict, default=None
    n_components : int, default=100
        More than n_samples warns (scikit-learn's warning) and uses n_samples.
    random_state : int, RandomState instance or None, default=None
    n_jobs : int, default=None
        Threads (None: OpenMP's default; -1: every core).
    landmarks : {'uniform', 'kmeans++', 'leverage'}, default='uniform'
        gram's extension: kernel k-means++ seeding, or approximate ridge leverage scores (gram
        kernels only).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
    component_indices_ : ndarray of shape (n_components,)
    normalization_ : ndarray of shape (n_components, n_components)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    """

    def __init__(self, kernel="rbf", *, gamma=None, coef0=None, degree=None, kernel_params=None,
                 n_components=100, random_state=None, n_jobs=None, landmarks="uniform"):
        self.kernel = kernel
        self.gamma = gamma
        self.coef0 = coef0
        self.degree = degree
        self.kernel_params = kernel_params
        self.n_components = n_components
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.landmarks = landmarks

    def _pairwise(self):
        return isinstance(self.kernel, str) and self.kernel == "precomputed"

    def _validate_params(self):
        k = self.kernel
        from .kernels import Kernel
        if not (isinstance(k, str) or callable(k) or isinstance(k, Kernel)
                or (type(k).__module__ or "").startswith("sklearn.")):
            raise self._bad("kernel", "a str among " + str(sorted(set(_SK_KERNEL_PARAMS) | {"precomputed"}))
                            + ", a gram spec, a callable or a kernel object")
        for name in ("gamma", "coef0", "degree"):
            v = getattr(self, name)
            if v is not None and not _real(v):
                raise self._bad(name, "a float or None")
        if self.kernel_params is not None and not isinstance(self.kernel_params, dict):
            raise self._bad("kernel_params", "an instance of 'dict' or None")
        self._check_n_components()
        check_random_state_param(self)
        if self.n_jobs is not None and not _integral(self.n_jobs):
            raise self._bad("n_jobs", "an int or None")
        if not (isinstance(self.landmarks, str) and self.landmarks in LANDMARKS):
            raise self._bad("landmarks", f"a str among {sorted(LANDMARKS)}")

    def _sk_params(self):
        """scikit-learn's _get_kernel_params: the keyword arguments of its pairwise_kernels."""
        params = dict(self.kernel_params or {})
        k = self.kernel
        if isinstance(k, str) and k in _SK_KERNEL_PARAMS:
            for p in _SK_KERNEL_PARAMS[k]:
                if getattr(self, p) is not None:
                    params[p] = getattr(self, p)
        elif callable(k) or (isinstance(k, str) and k == "precomputed"):
            if self.gamma is not None or self.coef0 is not None or self.degree is not None:
                raise ValueError("Don't pass gamma, coef0 or degree to Nystroem if using a callable "
                                 "or precomputed kernel")
        return params

    def _gram_kernel(self, n_features):
        """The gram kernel for self.kernel, or None where scikit-learn's computation is used."""
        from .kernels import Kernel
        k = self.kernel
        if not isinstance(k, str):
            if isinstance(k, Kernel) or (type(k).__module__ or "").startswith("sklearn.gaussian_process"):
                return _kernel(k)
            return None  # a callable
        if k == "precomputed":
            return None
        if k not in _SK_KERNEL_PARAMS:
            return _kernel(k)  # a gram spec
        p = self._sk_params()
        if set(p) - {"gamma", "degree", "coef0"}:
            return None  # kernel_params scikit-learn passes on: its computation
        gamma = p.get("gamma", 1.0 / n_features)
        if k in ("linear", "cosine"):
            return _kernel(k)
        if not _real(gamma) or not gamma > 0:
            return None
        gamma = float(gamma)
        if k == "rbf":
            return _kernel(f"rbf(lengthscale={1.0 / math.sqrt(2.0 * gamma)!r})")
        if k == "laplacian":
            return _kernel(f"laplacian_l1(lengthscale={1.0 / gamma!r})")
        if k == "sigmoid":
            return _kernel(f"sigmoid(gamma={gamma!r}, coef0={float(p.get('coef0', 1.0))!r})")
        if k in ("poly", "polynomial"):
            degree, coef0 = p.get("degree", 3), float(p.get("coef0", 1.0))
            if _real(degree) and float(degree) == int(degree) and int(degree) >= 1 and coef0 >= 0:
                return _kernel(f"polynomial(degree={int(degree)}, gamma={gamma!r}, coef0={coef0!r})")
        return None

    def fit(self, X, y=None):
        """Choose the landmarks among X's rows and compute the normalization.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The kernel matrix K(X, X) for kernel='precomputed'. Sparse X is densified.
        y : ignored

        Returns
        -------
        self : object
        """
        self._validate_params()
        X = self._check_X(X, reset=True)
        n = X.shape[0]
        R = int(self.n_components)
        if R > n:
            R = n
            warnings.warn("n_components > n_samples. This is not possible.\nn_components was set to "
                          "n_samples, which results in inefficient evaluation of the full kernel.")
        gk = self._gram_kernel(X.shape[1])
        self._sk_params()  # its error for gamma/coef0/degree with a callable or precomputed kernel
        how = LANDMARKS[self.landmarks]
        if gk is None and how != LANDMARKS["uniform"]:
            raise ValueError(f"Nystroem: landmarks={self.landmarks!r} needs a kernel gram computes; "
                             f"{self.kernel!r} is computed by scikit-learn, which has uniform landmarks only")
        self._map = None
        if gk is not None and how == LANDMARKS["uniform"]:
            # scikit-learn's draw, so that the landmarks are its landmarks for the same random_state
            inds = check_random_state(self.random_state).permutation(n)[:R]
            if hasattr(_lib.lib, "gram_features_nystrom"):
                sub = np.ascontiguousarray(X[inds])
                self._map = _Map.nystrom(gk, sub, R, how, 0, threads=_threads(self.n_jobs))
                idx, comp, norm = self._map.nystrom_parts()
                self.component_indices_ = inds[idx]
            else:
                self._fit_numpy(X, inds, gk)
                return self
        elif gk is not None:
            self._map = _Map.nystrom(gk, _lib.as_viewable(X, np.float64, "X"), R, how, seed_from(self.random_state),
                                     threads=_threads(self.n_jobs))
            idx, comp, norm = self._map.nystrom_parts()
            self.component_indices_ = idx
        else:
            inds = check_random_state(self.random_state).permutation(n)[:R]
            self._fit_numpy(X, inds, None)
            return self
        self._map_args = None
        self.components_ = comp.astype(X.dtype) if X.dtype == np.float32 else comp
        self.normalization_ = norm.astype(X.dtype, copy=False)  # float32 for float32 X, as scikit-learn's
        self._n_features_out = R
        self._kernel_used = gk
        return self

    def _pairwise_numpy(self, A, B, gk):
        if gk is not None:
            from ._functions import pairwise_kernels
            return pairwise_kernels(A, B, kernel=gk, dtype=np.float64, threads=_threads(self.n_jobs))
        from sklearn.metrics.pairwise import pairwise_kernels as sk_pairwise
        return sk_pairwise(A, B, metric=self.kernel, filter_params=True, n_jobs=self.n_jobs, **self._sk_params())

    def _fit_numpy(self, X, inds, gk):
        """scikit-learn's construction: K(L, L) and its SVD, the singular values floored at 1e-12."""
        basis = X[inds]
        K = self._pairwise_numpy(basis, basis if gk is not None else None, gk)
        U, S, V = np.linalg.svd(K)
        S = np.maximum(S, 1e-12)
        self.normalization_ = np.dot(U / np.sqrt(S), V).astype(X.dtype, copy=False)
        self.components_ = basis
        self.component_indices_ = inds
        self._n_features_out = len(inds)
        self._map, self._map_args = None, None
        self._kernel_used = gk

    def transform(self, X):
        """Apply the feature map to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_transformed : ndarray of shape (n_samples, n_components)
        """
        self._check_fitted()
        X = self._check_X(X, reset=False)
        if self._map is not None:
            return self._map.transform(X, X.dtype, threads=_threads(self.n_jobs))
        if self._kernel_used is None and self._pairwise():
            from sklearn.metrics.pairwise import pairwise_kernels as sk_pairwise
            emb = sk_pairwise(X, self.components_, metric="precomputed")  # its shape checks
        else:
            if self._kernel_used is not None and not np.isfinite(X).all():
                _raise_nonfinite(X)
            emb = self._pairwise_numpy(X, self.components_, self._kernel_used)
        out = np.dot(emb, self.normalization_.T)
        return out.astype(X.dtype, copy=False) if X.dtype == np.float32 else out

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_kernel_used", None)
        state["_kernel_spec"] = None if self.__dict__.get("_kernel_used") is None else self._kernel_used.spec
        return state

    def __setstate__(self, state):
        spec = state.pop("_kernel_spec", None)
        super().__setstate__(state)
        self._kernel_used = None if spec is None else _kernel(spec)
