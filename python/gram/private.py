"""Differentially private similarity sums (docs/private.md): :class:`PrivateKernelSum`,
:class:`PrivateSimilarityClassifier` and :class:`PrivacyAccountant`.

A fitted estimator holds one released sketch (``gram_private_fit``): noised values and public
parameters only, never a row of X. Queries, pickles, ``save`` and ``sketch_bytes_`` read that
sketch alone, so nothing about X beyond what the release made public leaves the fit. The noise is
drawn in C from a cryptographically secure generator seeded by the operating system; Python only
translates.

scikit-learn is not imported by this module: the classifier has ``score`` of its own, and uses
scikit-learn's target checks (imported at its first fit) where it is installed.
"""
import ctypes
import math
import os
import warnings
import weakref

import numpy as np

from . import _lib
from ._base import BaseEstimator, not_fitted
from ._validation import (_integral, _is_sparse, _real, call_x, check_array, check_feature_names,
                          check_random_state_param, feature_names, seed_from)

__all__ = ["PrivateKernelSum", "PrivateSimilarityClassifier", "PrivacyAccountant"]

# gram_private_similarity, gram_private_mechanism, gram_private_domain, gram_private_neighbours
SIMILARITIES = {"gaussian": 0, "exponential": 1, "cauchy": 2, "l1": 3, "l2": 4, "lpp": 5}
MECHANISMS = {"paper": 0, "baseline": 1}
DOMAINS = {"ball": 0, "box": 1}
NEIGHBOURS = {"replace": 0, "add_remove": 1}
DISTANCES = ("l1", "l2", "lpp")
_NAMES = {table_id: {v: k for k, v in table.items()}
          for table_id, table in (("similarity", SIMILARITIES), ("mechanism", MECHANISMS),
                                  ("domain", DOMAINS), ("neighbours", NEIGHBOURS))}


class _ClassifierMixin:
    """``score`` as scikit-learn's ClassifierMixin has it (mean accuracy), without importing
    scikit-learn (about a second) for the estimators that do not need it."""

    _estimator_type = "classifier"

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against y (weighted by sample_weight)."""
        hit = (self.predict(X) == np.asarray(y).ravel()).astype(np.float64)
        return float(np.average(hit, weights=sample_weight))


def _check_targets(y):
    """y as a 1-D array of class labels, with scikit-learn's checks and messages where it is
    installed (imported here, on the classifier's first fit), else the essential ones."""
    try:
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import column_or_1d
    except ImportError:  # pragma: no cover - exercised only without scikit-learn
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the "
                          "shape of y to (n_samples, ), for example using ravel().")
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")
        if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or np.any(y != np.round(y))):
            raise ValueError("Unknown label type: continuous. Maybe you are trying to fit a classifier, "
                             "which expects discrete classes on a regression target with continuous values.")
        return y
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    return y


# ---- the C sketch -----------------------------------------------------------------------------


class _Sketch:
    """Owns one ``gram_private_sketch``; destroyed with the holder."""

    __slots__ = ("ptr", "__weakref__")

    def __init__(self, ptr):
        self.ptr = ptr
        weakref.finalize(self, _lib.lib.gram_private_sketch_destroy, ptr.value)

    @classmethod
    def fit(cls, X, similarity, epsilon, delta, opt):
        _lib.need("gram_private_fit")
        Xa = _lib.view(X, "X")
        out = ctypes.c_void_p()
        call_x(_lib.lib.gram_private_fit, ctypes.byref(Xa), similarity, epsilon, delta, ctypes.byref(opt),
               ctypes.byref(out), work=X.size)
        return cls(out)

    @classmethod
    def from_bytes(cls, data):
        _lib.need("gram_private_from_bytes")
        data = bytes(data)
        out = ctypes.c_void_p()
        with _lib.Call(work=0) as c:
            c.check(_lib.lib.gram_private_from_bytes(c.ctx, data, len(data), ctypes.byref(out)))
        return cls(out)

    @classmethod
    def load(cls, path):
        _lib.need("gram_private_load")
        out = ctypes.c_void_p()
        with _lib.Call(work=0) as c:
            c.check(_lib.lib.gram_private_load(c.ctx, _path(path), ctypes.byref(out)))
        return cls(out)

    def save(self, path):
        with _lib.Call(work=0) as c:
            c.check(_lib.lib.gram_private_save(c.ctx, self.ptr, _path(path)))

    def to_bytes(self):
        return _lib.take_bytes(_lib.lib.gram_private_to_bytes, self.ptr)

    def info(self):
        """The sketch's public description as a dict (gram_private_info)."""
        i = _lib.PrivateInfo()
        status = _lib.lib.gram_private_sketch_info(self.ptr, ctypes.byref(i))
        if status:
            raise _lib.error(status, "gram_private_sketch_info failed")
        text = (lambda s: s.decode("utf-8", "replace") if s else "")
        return {
            "similarity": _NAMES["similarity"].get(i.similarity, i.similarity),
            "mechanism": _NAMES["mechanism"].get(i.mechanism, i.mechanism),
            "domain": _NAMES["domain"].get(i.domain, i.domain),
            "neighbours": _NAMES["neighbours"].get(i.neighbours, i.neighbours),
            "radius": i.radius, "bandwidth": i.bandwidth, "p": i.p,
            "epsilon": i.epsilon, "delta": i.delta,
            "dim": int(i.dim), "n": i.n,
            "n_components": int(i.n_components), "reduced_dim": int(i.reduced_dim),
            "levels": int(i.levels), "n_terms": int(i.n_terms), "seed": int(i.seed),
            "noise": text(i.noise), "noise_scale": i.noise_scale, "approx_error": i.approx_error,
            "sensitivity": text(i.sensitivity), "test_noise": bool(i.test_noise),
        }

    def n_clipped(self):
        n = int(_lib.lib.gram_private_sketch_n_clipped(self.ptr))
        return None if n < 0 else n

    def query(self, Y, mean):
        out = _lib.empty((Y.shape[0], 1), np.float64, "the query's result")
        Ya, Oa = _lib.view(Y, "Y"), _lib.view(out, "out")
        fn = _lib.lib.gram_private_query_mean if mean else _lib.lib.gram_private_query
        call_x(fn, self.ptr, ctypes.byref(Ya), ctypes.byref(Oa), work=Y.size)
        return out.ravel()


def _path(path):
    """A file path as bytes for C (str, bytes or os.PathLike; no NUL)."""
    p = os.fsencode(os.fspath(path))
    if b"\0" in p:
        raise ValueError(f"path contains a NUL byte: {p!r}")
    return p


# ---- parameters ---------------------------------------------------------------------------------


class _PrivateBase(BaseEstimator):
    """Parameter checks and the options struct shared by the estimators."""

    def _check_choice(self, name, table):
        v = getattr(self, name)
        if not (isinstance(v, str) and v in table):
            raise self._bad(name, f"a str among {sorted(table)}")

    def _check_optional_int(self, name, lo):
        v = getattr(self, name)
        if v is not None and not (_integral(v) and v >= lo):
            raise self._bad(name, f"an int in the range [{lo}, inf) or None")

    def _validate_params(self):
        self._check_choice("kernel", SIMILARITIES)
        self._check_choice("mechanism", MECHANISMS)
        self._check_choice("domain", DOMAINS)
        e, d = self.epsilon, self.delta
        if not (_real(e) and 0 < e < math.inf):
            raise self._bad("epsilon", "a float in the range (0.0, inf): the privacy loss ε of the release")
        if not (_real(d) and 0 <= d < 1):
            raise self._bad("delta", "a float in the range [0.0, 1.0)")
        if self.domain_radius is None:
            raise ValueError(
                f"{type(self).__name__}: domain_radius is required: differential privacy needs a bound "
                "on how far one row can move the released sums, and it must not be learned from the "
                "private data itself; pass the radius R of the public domain (|x|_2 <= R for "
                "domain='ball', |x_j| <= R for domain='box'). Rows outside it are clipped onto it.")
        if not (_real(self.domain_radius) and 0 < self.domain_radius < math.inf):
            raise self._bad("domain_radius", "a float in the range (0.0, inf)")
        if not (_real(self.bandwidth) and 0 < self.bandwidth < math.inf):
            raise self._bad("bandwidth", "a float in the range (0.0, inf)")
        if not (_real(self.p) and 0 < self.p <= 2):
            raise self._bad("p", "a float in the range (0.0, 2.0]")
        self._check_optional_int("n_components", 1)
        self._check_optional_int("reduced_dim", 1)
        self._check_optional_int("levels", 1)
        self._check_optional_int("n_terms", 1)
        check_random_state_param(self, "an instance of 'numpy.random.mtrand.RandomState', "
                                       "a numpy.random.Generator")
        ns = self.noise_seed
        if ns is not None and not (_integral(ns) and 0 <= int(ns) <= 2**64 - 1):
            raise self._bad("noise_seed", "an int in the range [0, 2**64 - 1] or None (tests only)")

    def _options(self, neighbours, seed, noise_seed):
        o = _lib.PrivateOptions()
        _lib.lib.gram_private_options_init(ctypes.byref(o))
        o.mechanism = MECHANISMS[self.mechanism]
        o.domain = DOMAINS[self.domain]
        o.radius = float(self.domain_radius)
        o.bandwidth = float(self.bandwidth)
        o.p = float(self.p)
        o.neighbours = NEIGHBOURS[neighbours]
        o.n_components = 0 if self.n_components is None else int(self.n_components)
        o.reduced_dim = 0 if self.reduced_dim is None else int(self.reduced_dim)
        o.levels = 0 if self.levels is None else int(self.levels)
        o.n_terms = 0 if self.n_terms is None else int(self.n_terms)
        o.seed, o.has_seed = seed, 1
        if noise_seed is not None:
            o.noise_seed, o.has_noise_seed = noise_seed, 1
        return o

    def _check_X(self, X, reset, name="X"):
        if _is_sparse(X):
            raise TypeError(f"Sparse data was passed for {name}, but dense data is required. "
                            "Use '.toarray()' to convert to a dense numpy array.")
        names = feature_names(X)
        X = check_array(X, name=name, estimator=type(self).__name__)
        check_feature_names(self, X, names, reset)
        return X

    def _warn_clipped(self, n_clipped, n):
        if n_clipped:
            shape = "ball |x|_2" if self.domain == "ball" else "box |x_j|"
            warnings.warn(
                f"{type(self).__name__}: {n_clipped} of {n} rows of X lay outside the domain "
                f"({shape} <= {self.domain_radius}) and were clipped onto it before the release",
                UserWarning, stacklevel=3)


# ---- PrivateKernelSum ---------------------------------------------------------------------------


class PrivateKernelSum(_PrivateBase):
    """A differentially private sketch of Σ_{x∈X} f(x, y) for any later queries y (Backurs, Lin,
    Mahabadi, Silwal & Tarnawski, ICLR 2024; docs/private.md).

    ``fit(X)`` releases the sketch once, under ε-DP (``delta=0``, discrete Laplace noise) or
    (ε, δ)-DP (``delta > 0``, discrete Gaussian noise); ``query(Y)`` answers from the sketch alone,
    at no further privacy cost, as often as you like. The unit of privacy is one row of X.

    Parameters
    ----------
    kernel : {'gaussian', 'exponential', 'cauchy', 'l1', 'l2', 'lpp'}, default='gaussian'
        f(x, y): exp(-|x-y|²/σ²), exp(-|x-y|/σ), 1/(1+|x-y|²/σ²) (σ = ``bandwidth``), or the
        distances |x-y|_1, |x-y|_2 and |x-y|_p^p.
    epsilon : float, default=1.0
        The privacy loss ε > 0 of the release.
    delta : float, default=0.0
        δ in [0, 1); 0 gives pure ε-DP.
    bandwidth : float, default=1.0
        σ of the kernels (ignored by the distances).
    domain_radius : float, required
        The public bound on the data: |x|_2 <= R (``domain='ball'``) or |x_j| <= R (``'box'``).
        It must come from outside the data (a fact of the measurement, not X.max()). Rows outside
        are clipped onto the domain, counted in ``n_clipped_`` and warned about.
    n_components : int, default=None
        Kernels: random features (even; None: 1024); 'l2': ℓ1 projections (None: 64).
    random_state : int, RandomState instance, Generator or None, default=None
        Seeds only the public randomness (projections, frequencies), never the noise.
    domain : {'ball', 'box'}, default='ball'
    mechanism : {'paper', 'baseline'}, default='paper'
        'baseline': the prior work the paper compares with (random features in all d dimensions
        with Laplace noise for the kernels; Huang & Roth 2014 for 'l1').
    neighbours : {'replace', 'add_remove'}, default='replace'
        Neighbouring data sets differ by one row replaced ('replace': n is public and released
        exactly) or added/removed (n is released with discrete Laplace noise, using 10% of ε).
    reduced_dim : int, default=None
        Kernels, paper mechanism: the Johnson–Lindenstrauss dimension (None: min(d, 64)).
    levels : int, default=None
        Distances: the depth L of each coordinate's tree (None: chosen from n and ε).
    p : float, default=1.0
        The exponent of 'lpp', 0 < p <= 2.
    n_terms : int, default=None
        'cauchy': exponentials in its sum-of-exponentials approximation (None: 8).
    noise_seed : int, default=None
        FOR TESTS ONLY. Draws the noise from this seed instead of the operating system: the
        release is then NOT private (anyone who knows the seed can remove the noise), and the
        sketch says so (``privacy_['test_noise']`` is True).

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    n_samples_ : float
        The released n (exact under 'replace'; noisy under 'add_remove').
    epsilon_, delta_ : float
        What the release cost.
    privacy_ : dict
        The sketch's public description: similarity, mechanism, domain, neighbours, radius,
        bandwidth, p, epsilon, delta, dim, n, n_components, reduced_dim, levels, n_terms, seed,
        noise ('discrete_laplace' or 'discrete_gaussian'), noise_scale (in the released values'
        units), approx_error, sensitivity (its value and derivation, in words), test_noise.
    n_clipped_ : int or None
        Rows of X clipped onto the domain (not private, never saved: None after ``load``).
    sketch_bytes_ : bytes
        The sketch file's contents (``save`` writes the same).

    Never refit on the same people without counting it: each fit is a new release whose ε adds
    up (:class:`PrivacyAccountant`).
    """

    def __init__(self, kernel="gaussian", epsilon=1.0, delta=0.0, bandwidth=1.0, domain_radius=None,
                 n_components=None, random_state=None, *, domain="ball", mechanism="paper",
                 neighbours="replace", reduced_dim=None, levels=None, p=1.0, n_terms=None, noise_seed=None):
        self.kernel = kernel
        self.epsilon = epsilon
        self.delta = delta
        self.bandwidth = bandwidth
        self.domain_radius = domain_radius
        self.n_components = n_components
        self.random_state = random_state
        self.domain = domain
        self.mechanism = mechanism
        self.neighbours = neighbours
        self.reduced_dim = reduced_dim
        self.levels = levels
        self.p = p
        self.n_terms = n_terms
        self.noise_seed = noise_seed

    def _validate_params(self):
        super()._validate_params()
        self._check_choice("neighbours", NEIGHBOURS)

    def fit(self, X, y=None):
        """Release the sketch of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The private data (float64 or float32; finite).
        y : ignored

        Returns
        -------
        self : object
        """
        self._validate_params()
        X = self._check_X(X, reset=True)
        opt = self._options(self.neighbours, seed_from(self.random_state), self.noise_seed)
        sketch = _Sketch.fit(X, SIMILARITIES[self.kernel], float(self.epsilon), float(self.delta), opt)
        self._set_sketch(sketch)
        self.n_clipped_ = sketch.n_clipped()
        self._warn_clipped(self.n_clipped_, X.shape[0])
        return self

    def _set_sketch(self, sketch):
        self._sketch = sketch
        info = sketch.info()
        self.privacy_ = info
        self.n_samples_ = info["n"]
        self.epsilon_ = info["epsilon"]
        self.delta_ = info["delta"]

    def _check_fitted(self):
        if getattr(self, "_sketch", None) is None:
            raise not_fitted(self)

    def query(self, Y, average=False):
        """The private estimate of Σ_{x∈X} f(x, y) for each row y of Y (post-processing: no
        privacy cost).

        Parameters
        ----------
        Y : array-like of shape (n_queries, n_features)
        average : bool, default=False
            Divide by the released n (``n_samples_``; at least 1) instead.

        Returns
        -------
        sums : ndarray of shape (n_queries,), float64
        """
        self._check_fitted()
        Y = self._check_X(Y, reset=False, name="X")
        return self._sketch.query(Y, bool(average))

    @property
    def sketch_bytes_(self):
        self._check_fitted()
        return self._sketch.to_bytes()

    def save(self, path):
        """Write the sketch file (versioned, checksummed; released values and public parameters
        only) to ``path``, through a temporary file renamed into place."""
        self._check_fitted()
        self._sketch.save(path)

    @classmethod
    def load(cls, path):
        """A fitted PrivateKernelSum from a sketch file (``save``, or ``gram private fit``)."""
        return cls._from_sketch(_Sketch.load(path))

    @classmethod
    def from_bytes(cls, data):
        """A fitted PrivateKernelSum from a sketch file's contents (``sketch_bytes_``)."""
        return cls._from_sketch(_Sketch.from_bytes(data))

    @classmethod
    def _from_sketch(cls, sketch):
        i = sketch.info()
        opt = lambda v: None if v == 0 else v  # noqa: E731 - the C defaults read back as chosen values
        # parameters a similarity ignores read back as the library holds them (bandwidth 0 for
        # the distances, p 2 for l2): the estimator's defaults instead, so that a clone refits
        kind = i["similarity"]
        est = cls(kernel=kind, epsilon=i["epsilon"], delta=i["delta"],
                  bandwidth=i["bandwidth"] if kind not in DISTANCES else 1.0,
                  domain_radius=i["radius"], n_components=opt(i["n_components"]), random_state=None,
                  domain=i["domain"], mechanism=i["mechanism"], neighbours=i["neighbours"],
                  reduced_dim=opt(i["reduced_dim"]), levels=opt(i["levels"]),
                  p=i["p"] if kind == "lpp" else 1.0, n_terms=opt(i["n_terms"]))
        est.n_features_in_ = i["dim"]
        est._set_sketch(sketch)
        est.n_clipped_ = None
        return est

    def __getstate__(self):
        state = dict(self.__dict__)
        sketch = state.pop("_sketch", None)
        if sketch is not None:
            state["_sketch_bytes"] = sketch.to_bytes()
        return state

    def __setstate__(self, state):
        data = state.pop("_sketch_bytes", None)
        self.__dict__.update(state)
        self._sketch = None if data is None else _Sketch.from_bytes(data)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.noise_seed is None
        return tags


# ---- PrivateSimilarityClassifier ------------------------------------------------------------------


def _class_noise_seed(seed, k):
    """Independent-looking test noise seeds for the class sketches (splitmix64 of seed + k)."""
    z = (seed + (k + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


class PrivateSimilarityClassifier(_ClassifierMixin, _PrivateBase):
    """Classification by private average similarity (the application of Backurs et al., ICLR
    2024): one private sketch per class; a query goes to the class whose released average
    similarity to it is largest (for the distances, whose average distance is smallest).

    The whole fit is (ε, δ)-DP for one labelled row replaced by any other (its point and its
    label): each class's sketch is released with add/remove neighbours at ε/2, δ/2, because a
    replaced row can leave one class and join another; the class sizes are released with noise
    inside those sketches. ``privacy_spent_`` is the composition computed by gram's accountant.
    The set of labels (``classes_``) is taken as public: it is read from y, not privatised.

    Parameters are :class:`PrivateKernelSum`'s (``epsilon`` and ``delta`` are the whole fit's
    budget), without ``neighbours``. ``noise_seed`` is for tests only (each class's sketch then
    draws its noise from a seed derived from it; the fit is NOT private).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    estimators_ : list of PrivateKernelSum
        The released sketch of each class, in the order of ``classes_``.
    class_count_ : ndarray of shape (n_classes,)
        The released (noisy) size of each class.
    privacy_spent_ : tuple (epsilon, delta)
        The fit's total cost by gram's accountant (equal to ``(epsilon, delta)``).
    n_clipped_ : int
        Rows of X clipped onto the domain (not private).
    """

    def __init__(self, kernel="gaussian", epsilon=1.0, delta=0.0, bandwidth=1.0, domain_radius=None,
                 n_components=None, random_state=None, *, domain="ball", mechanism="paper",
                 reduced_dim=None, levels=None, p=1.0, n_terms=None, noise_seed=None):
        self.kernel = kernel
        self.epsilon = epsilon
        self.delta = delta
        self.bandwidth = bandwidth
        self.domain_radius = domain_radius
        self.n_components = n_components
        self.random_state = random_state
        self.domain = domain
        self.mechanism = mechanism
        self.reduced_dim = reduced_dim
        self.levels = levels
        self.p = p
        self.n_terms = n_terms
        self.noise_seed = noise_seed

    def fit(self, X, y):
        """Release one sketch per class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : object
        """
        self._validate_params()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        X = self._check_X(X, reset=True)
        y = _check_targets(y)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                             f"[{X.shape[0]}, {y.shape[0]}]")
        classes, yi = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError(f"The number of classes has to be greater than one; got {classes.shape[0]} class")
        seed = seed_from(self.random_state)  # one public seed: every class shares its projections
        eps, delta = float(self.epsilon) / 2, float(self.delta) / 2
        sketches, estimators, clipped = [], [], 0
        for k in range(classes.shape[0]):
            Xk = np.ascontiguousarray(X[yi == k])
            ns = None if self.noise_seed is None else _class_noise_seed(int(self.noise_seed), k)
            opt = self._options("add_remove", seed, ns)
            sketch = _Sketch.fit(Xk, SIMILARITIES[self.kernel], eps, delta, opt)
            sketches.append(sketch)
            clipped += sketch.n_clipped() or 0
        for sketch in sketches:
            est = PrivateKernelSum._from_sketch(sketch)
            est.n_clipped_ = sketch.n_clipped()
            estimators.append(est)
        acc = PrivacyAccountant()
        acc.add(sketches, partition=0)
        self.classes_ = classes
        self.estimators_ = estimators
        self.class_count_ = np.array([e.n_samples_ for e in estimators], dtype=np.float64)
        self.privacy_spent_ = (acc.epsilon, acc.delta)
        self.n_clipped_ = clipped
        self._warn_clipped(clipped, X.shape[0])
        return self

    def _check_fitted(self):
        if not hasattr(self, "estimators_"):
            raise not_fitted(self)

    def average_similarity(self, X):
        """The released average of f(x, ·) over each class, for each row of X: similarities for
        the kernels, distances for 'l1', 'l2' and 'lpp'.

        Returns
        -------
        S : ndarray of shape (n_samples, n_classes), float64
        """
        self._check_fitted()
        X = self._check_X(X, reset=False)
        S = _lib.empty((X.shape[0], len(self.estimators_)), np.float64, "the similarities")
        for k, est in enumerate(self.estimators_):
            S[:, k] = est._sketch.query(X, True)
        return S

    def _scores(self, X):
        S = self.average_similarity(X)
        return -S if self.kernel in DISTANCES else S

    def decision_function(self, X):
        """The private average similarity to each class (the negative average distance for the
        distances), scikit-learn's way: shape (n_samples, n_classes), or for two classes
        (n_samples,), the score of ``classes_[1]`` less that of ``classes_[0]``."""
        s = self._scores(X)
        return s[:, 1] - s[:, 0] if s.shape[1] == 2 else s

    def predict(self, X):
        """The class with the largest private average similarity to each row of X."""
        self._check_fitted()
        return self.classes_[np.argmax(self._scores(X), axis=1)]

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    transformer_tags=None, regressor_tags=None,
                    classifier_tags=ClassifierTags(),
                    input_tags=InputTags(allow_nan=False), non_deterministic=self.noise_seed is None)


# ---- PrivacyAccountant ----------------------------------------------------------------------------


class PrivacyAccountant:
    """The total privacy cost of several releases about the same people (gram's C accountant;
    basic composition: ε and δ add).

    ``add(release)`` counts a release on the whole data set. ``add(release, partition=k,
    part=j)`` counts a release on part j of one disjoint partition k of the rows (for example one
    sketch per class); such releases must use add/remove neighbours, and a partition costs the
    sum of its two most expensive parts (a replaced row can leave one part and join another).
    A fitted :class:`PrivateSimilarityClassifier` is added as one new partition of its classes.
    """

    def __init__(self):
        _lib.need("gram_privacy_accountant_create")
        self._ptr = _lib.new_handle(_lib.lib.gram_privacy_accountant_create)
        weakref.finalize(self, _lib.lib.gram_privacy_accountant_destroy, self._ptr.value)
        self._entries = []  # (sketch, partition, part): the sketches stay alive, pickles replay them
        self._partitions = set()

    def add(self, release, partition=None, part=None):
        """Count ``release``: a fitted PrivateKernelSum or PrivateSimilarityClassifier, a sketch
        file's bytes, or a path to a sketch file (or a list of them, as the parts 0, 1, ... of one
        partition). Returns self."""
        if isinstance(release, PrivateSimilarityClassifier) or isinstance(release, (list, tuple)):
            sketches = ([e._sketch for e in _fitted(release).estimators_]
                        if isinstance(release, PrivateSimilarityClassifier) else [_as_sketch(r) for r in release])
            if part is not None:
                raise ValueError("part must be None when adding a classifier or a list: its parts are "
                                 "numbered 0, 1, ... in order")
            if partition is None:
                partition = max(self._partitions, default=-1) + 1
            partition = _lib.c_int(partition, "partition", "int64", lo=0)
            for j, s in enumerate(sketches):
                self._add(s, partition, j)
            return self
        sketch = _as_sketch(release)
        if (partition is None) != (part is None):
            raise ValueError("partition and part go together: both None (a release on the whole data "
                             f"set) or both ints >= 0; got partition={partition!r}, part={part!r}")
        if partition is None:
            self._add(sketch, -1, -1)
        else:
            self._add(sketch, _lib.c_int(partition, "partition", "int64", lo=0),
                      _lib.c_int(part, "part", "int64", lo=0))
        return self

    def _add(self, sketch, partition, part):
        with _lib.Call(work=0) as c:
            c.check(_lib.lib.gram_privacy_accountant_add(c.ctx, self._ptr, sketch.ptr, partition, part))
        self._entries.append((sketch, partition, part))
        if partition >= 0:
            self._partitions.add(partition)

    def _total(self):
        e, d = ctypes.c_double(), ctypes.c_double()
        status = _lib.lib.gram_privacy_accountant_total(self._ptr, ctypes.byref(e), ctypes.byref(d))
        if status:
            raise _lib.error(status, "gram_privacy_accountant_total failed")
        return e.value, d.value

    @property
    def epsilon(self):
        """The total ε of everything added."""
        return self._total()[0]

    @property
    def delta(self):
        """The total δ of everything added."""
        return self._total()[1]

    @property
    def n_releases(self):
        """The number of sketches added."""
        return int(_lib.lib.gram_privacy_accountant_count(self._ptr))

    @property
    def test_noise(self):
        """Whether any release added drew its noise from a test seed (and so is not private)."""
        if hasattr(_lib.lib, "gram_privacy_accountant_count_test_noise"):
            return int(_lib.lib.gram_privacy_accountant_count_test_noise(self._ptr)) > 0
        return any(s.info()["test_noise"] for s, _, _ in self._entries)

    def __repr__(self):
        return f"PrivacyAccountant(n_releases={self.n_releases}, epsilon={self.epsilon!r}, delta={self.delta!r})"

    def __getstate__(self):
        return {"entries": [(s.to_bytes(), p, j) for s, p, j in self._entries]}

    def __setstate__(self, state):
        self.__init__()
        for data, p, j in state["entries"]:
            self._add(_Sketch.from_bytes(data), p, j)


def _fitted(est):
    est._check_fitted()
    return est


def _as_sketch(release):
    if isinstance(release, PrivateKernelSum):
        return _fitted(release)._sketch
    if isinstance(release, _Sketch):
        return release
    if isinstance(release, (bytes, bytearray, memoryview)):
        return _Sketch.from_bytes(release)
    if isinstance(release, (str, os.PathLike)):
        return _Sketch.load(release)
    raise TypeError(f"PrivacyAccountant.add: expected a fitted PrivateKernelSum or "
                    f"PrivateSimilarityClassifier, a sketch file's bytes or its path; got "
                    f"{type(release).__name__}")
