"""Input validation with scikit-learn's exception types and messages, without scikit-learn.

Arrays that gram can read as they are (float64 or float32, any strides that are whole elements)
are returned untouched: no copy on the fast path. Everything else (lists, integers, float16,
object arrays, other byte orders) is converted once, to float64, with NumPy's own errors.
"""
import numbers
import re
import warnings

import numpy as np

from . import _lib


def _context(estimator):
    return f" by {estimator}" if estimator else ""


def _is_sparse(X):
    mod = type(X).__module__ or ""
    return mod.startswith("scipy.sparse") or (hasattr(X, "tocsr") and hasattr(X, "nnz"))


def check_array(X, name="X", estimator=None, ensure_2d=True, min_samples=1, min_features=1,
                keep_float32=True):
    """Validate an array-like the way ``sklearn.utils.check_array`` does.

    Returns an ndarray that is float64, or float32 when ``keep_float32`` and the input is already
    float32. ``name`` is the argument's name in messages; ``estimator`` the class name
    ("... is required by KernelDensity").
    """
    if _is_sparse(X):
        raise TypeError(
            f"Sparse data was passed for {name}, but dense data is required. "
            "Use '.toarray()' to convert to a dense numpy array.")
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)  # lists, pandas, objects with __array__; NumPy's errors
    kind = X.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported\n{X}\n")
    if kind in "USV":
        raise ValueError(
            "dtype='numeric' is not compatible with arrays of bytes/strings."
            "Convert your data to numeric values explicitly instead.")
    if kind == "O":
        X = X.astype(np.float64)  # "float() argument must be a string or a real number" etc.
        if X.dtype.kind == "c":
            raise ValueError(f"Complex data not supported\n{X}\n")
    elif kind not in "biuf":
        raise TypeError(f"{name}: unsupported dtype {X.dtype}; expected numbers")
    if ensure_2d:
        if X.ndim == 0:
            raise ValueError(
                "Expected 2D array, got scalar array instead:\narray={}.\n"
                "Reshape your data either using array.reshape(-1, 1) if "
                "your data has a single feature or array.reshape(1, -1) "
                "if it contains a single sample.".format(X))
        if X.ndim == 1:
            raise ValueError(
                f"Expected 2D array, got 1D array instead:\narray={X}.\n"
                "Reshape your data either using array.reshape(-1, 1) if "
                "your data has a single feature or array.reshape(1, -1) "
                "if it contains a single sample.")
    if X.ndim >= 3:
        raise ValueError(f"Found array with dim {X.ndim}, while dim <= 2 is required{_context(estimator)}.")
    if min_samples > 0:
        n = X.shape[0] if X.ndim else 1
        if n < min_samples:
            raise ValueError(
                "Found array with %d sample(s) (shape=%s) while a minimum of %d is required%s."
                % (n, X.shape, min_samples, _context(estimator)))
    if min_features > 0 and X.ndim == 2 and X.shape[1] < min_features:
        raise ValueError(
            "Found array with %d feature(s) (shape=%s) while a minimum of %d is required%s."
            % (X.shape[1], X.shape, min_features, _context(estimator)))
    if X.dtype == np.float64 or (keep_float32 and X.dtype == np.float32):
        return _lib.as_viewable(X, X.dtype, name)
    _lib.check_memory(8 * X.size, f"{name} as float64")
    return np.array(X, dtype=np.float64, order="C")


def check_sample_weight(sample_weight, n_samples):
    """``sklearn.utils.validation._check_sample_weight`` with ensure_non_negative=True."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number) and not isinstance(sample_weight, bool):
        sw = np.full(n_samples, sample_weight, dtype=np.float64)
    else:
        if not isinstance(sample_weight, np.ndarray) and not _is_sparse(sample_weight):
            sample_weight = np.asarray(sample_weight, dtype=np.float64)  # as scikit-learn: dtype given
        sw = check_array(sample_weight, name="sample_weight", ensure_2d=False, min_samples=0,
                         keep_float32=False)
        if sw.ndim != 1:
            raise ValueError(
                f"Sample weights must be 1D array or scalar, got {sw.ndim}D array. Expected either "
                f"a scalar value or a 1D array of length {n_samples}.")
        if sw.shape != (n_samples,):
            raise ValueError(f"sample_weight.shape == {sw.shape}, expected {(n_samples,)}!")
    bad = ~np.isfinite(sw)
    if bad.any():  # scikit-learn's message, and where
        i = int(np.argmax(bad))
        what = "NaN" if np.isnan(sw[i]) else "infinity or a value too large for dtype('float64')"
        raise ValueError(f"Input sample_weight contains {what} (sample_weight: element {i} is {sw[i]}).")
    if np.all(sw == 0):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    if np.any(sw < 0):
        raise ValueError("Negative values in data passed to `sample_weight`.")
    return sw


def _real(v):
    """A real number parameter: bools are not (scikit-learn's Interval(Real) refuses them)."""
    return isinstance(v, (numbers.Real, np.floating, np.integer)) and not isinstance(v, (bool, np.bool_))


def _integral(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_random_state(seed):
    """None, an int, a RandomState or a Generator → an object with ``randint``/``integers``."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
        return np.random.RandomState(seed)
    if isinstance(seed, (np.random.RandomState, np.random.Generator)):
        return seed
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")


def check_random_state_param(est, instances="an instance of 'numpy.random.mtrand.RandomState'"):
    """``est.random_state`` checked as a seed of ``seed_from``: None, a RandomState or Generator, or
    an int within numpy's legacy seed range (what scikit-learn's estimators accept), else ``est._bad``
    naming the ``instances`` the estimator documents."""
    rs = est.random_state
    if not (rs is None or _integral(rs) or isinstance(rs, (np.random.RandomState, np.random.Generator))):
        raise est._bad("random_state", f"an int, {instances} or None")
    if _integral(rs) and not 0 <= int(rs) <= 2**32 - 1:
        raise est._bad("random_state", f"an int in the range [0, 4294967295], {instances} or None")


def seed_from(random_state):
    """A 64-bit seed for gram's counter-based generator, drawn from ``random_state``."""
    rng = check_random_state(random_state)
    if isinstance(rng, np.random.Generator):
        hi, lo = rng.integers(0, 2**32, size=2, dtype=np.uint64)
    else:
        hi, lo = rng.randint(0, 2**32, size=2, dtype=np.uint64)
    return (int(hi) << 32) | int(lo)


_NONFINITE = re.compile(r"^(\w+): (.*)$", re.S)


def nonfinite_error(e, name, columns_are_points=False):
    """A library ENONFINITE ValueError reworded as scikit-learn says it, keeping gram's position.

    ``columns_are_points``: the user's array is (d, n), SciPy's layout, so gram's "row i, column j"
    of the transposed view is data point i, dimension j.
    """
    msg = str(e)
    m = _NONFINITE.match(msg)
    where = m.group(2) if m else msg
    if columns_are_points:
        where = re.sub(r"row (\d+), column (\d+)", r"point \1, dimension \2", where)
    if "NaN" in msg:
        return ValueError(f"Input {name} contains NaN ({name}: {where}).")
    return ValueError(f"Input {name} contains infinity or a value too large for dtype('float64') ({name}: {where}).")


def is_nonfinite(e):
    return getattr(e, "gram_status", None) == _lib.ENONFINITE


def call_x(fn, *args, threads=None, work=None):
    """``fn(ctx, *args)`` for a call whose one input array is the user's X: a NaN/inf error
    reworded as scikit-learn says it, with gram's position."""
    try:
        with _lib.Call(threads, work=work) as c:
            c.check(fn(c.ctx, *args))
    except ValueError as e:
        if is_nonfinite(e):
            raise nonfinite_error(e, "X") from None
        raise


def feature_names(X):
    """X's column names when X is a DataFrame with string column names (scikit-learn's rule), else None."""
    if hasattr(X, "columns"):
        cols = list(X.columns)
        if cols and all(isinstance(c, str) for c in cols):
            return np.asarray(cols, dtype=object)
    return None


def check_feature_names(est, X, names, reset):
    """scikit-learn's bookkeeping of n_features_in_ and feature_names_in_: set at fit (reset), and
    later the same names (or a warning where one side has none) and the same number of columns."""
    if reset:
        est.n_features_in_ = X.shape[1]
        if names is not None:
            est.feature_names_in_ = names
        elif hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
        return
    name = type(est).__name__
    fitted = getattr(est, "feature_names_in_", None)
    if fitted is not None and names is not None and list(names) != list(fitted):
        raise ValueError("The feature names should match those that were passed during fit.")
    if fitted is not None and names is None:
        warnings.warn(f"X does not have valid feature names, but {name} was fitted with feature names")
    if fitted is None and names is not None and hasattr(est, "n_features_in_"):
        warnings.warn(f"X has feature names, but {name} was fitted without feature names")
    if hasattr(est, "n_features_in_") and X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting "
                         f"{est.n_features_in_} features as input.")

