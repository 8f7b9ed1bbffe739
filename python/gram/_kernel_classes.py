"""The kernel classes that ``gram.kernels`` exports (see its docstring).

Imported on the first use of a kernel class. Where scikit-learn is importable each class is a
subclass of scikit-learn's class of the same name (every one of its ``Kernel``), so its functions
and ``isinstance`` checks accept gram's kernels; gram's own methods come first in every MRO, so
the behaviour is the same with or without scikit-learn.

Two sources of truth are kept apart. The Python attributes (``length_scale``, ``gamma``, ...) are
the kernel, as in scikit-learn: ``theta``, ``bounds`` and ``hyperparameters`` are computed from
them exactly as scikit-learn computes them. The C kernel is built from a spec written from those
attributes and does the computing. ``_cmap`` ties the two: for each C log-hyperparameter (gram's
order) the Python hyperparameter and element it is, as ``c = a * theta + b`` (a = 1, b = 0 except
where gram's parameter is another function of scikit-learn's, e.g. ``PairwiseKernel``'s gamma),
or None where gram has one that scikit-learn has not (held fixed in the spec).
"""
import collections
import copy
import inspect
import math
import numbers
import re

import numpy as np

from .kernels import (DEFAULT_BOUNDS, _check_xy, _diag, _handle_of, _matrix, _matrix_grad, _sum,
                      as_kernel)

try:
    from sklearn.gaussian_process import kernels as _sk
except ImportError:
    _sk = None


def _sk_bases(name):
    """scikit-learn's class ``name`` as a base, when scikit-learn is there."""
    return (getattr(_sk, name),) if _sk is not None else ()


def is_sklearn_kernel(obj):
    """Whether ``obj`` is a scikit-learn kernel object (gram's own are checked first)."""
    if _sk is not None and isinstance(obj, _sk.Kernel):
        return True
    return (type(obj).__module__ or "").startswith("sklearn.")


# ---- hyperparameters --------------------------------------------------------------------------


class _Hyperparameter(collections.namedtuple(
        "Hyperparameter", ("name", "value_type", "bounds", "n_elements", "fixed"))):
    """A kernel hyperparameter: ``sklearn.gaussian_process.kernels.Hyperparameter`` (which is
    used instead wherever scikit-learn is installed).

    ``bounds`` is "fixed" or an array of shape (n_elements, 2) of values (not logs).
    """

    __slots__ = ()

    def __new__(cls, name, value_type, bounds, n_elements=1, fixed=None):
        if not isinstance(bounds, str) or bounds != "fixed":
            bounds = np.atleast_2d(bounds)
            if n_elements > 1:
                if bounds.shape[0] == 1:
                    bounds = np.repeat(bounds, n_elements, 0)
                elif bounds.shape[0] != n_elements:
                    raise ValueError("Bounds on %s should have either 1 or %d dimensions. Given are %d"
                                     % (name, n_elements, bounds.shape[0]))
        if fixed is None:
            fixed = isinstance(bounds, str) and bounds == "fixed"
        return super().__new__(cls, name, value_type, bounds, n_elements, fixed)

    def __eq__(self, other):
        return (self.name == other.name and self.value_type == other.value_type
                and np.all(self.bounds == other.bounds) and self.n_elements == other.n_elements
                and self.fixed == other.fixed)

    __hash__ = None


Hyperparameter = _sk.Hyperparameter if _sk is not None else _Hyperparameter


# ---- spec text --------------------------------------------------------------------------------


def _num(v, what):
    """A finite number as spec text (repr of the float, round-trip exact)."""
    if isinstance(v, bool) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
        if isinstance(v, np.ndarray) and v.ndim == 0:
            return _num(v[()], what)
        raise TypeError(f"{what} must be a real number, got {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{what} must be finite, got {f!r}")
    return repr(f)


def _bound_num(v, what, lower):
    """One side of a pair of bounds as spec text. scikit-learn accepts any pair, (-inf, inf)
    included (its log-bounds are then NaN or inf); gram's spec writes an open side as 0 (lower:
    any value <= 0, -inf too) or inf (upper), which its optimizer treats as no bound."""
    f = float(v)
    if lower and f <= 0:
        return "0"
    if not lower and f == math.inf:
        return "inf"
    if not math.isfinite(f):
        raise ValueError(f"{what} must hold numbers, an upper bound inf or a lower bound <= 0 "
                         f"(open sides), got {v!r}")
    return repr(f)


def _length_scale(v, what="length_scale"):
    """scikit-learn's length scale (``np.squeeze``d): a float, or an array for more than one."""
    try:
        arr = np.squeeze(np.asarray(v, dtype=np.float64))
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number or a 1-D array of numbers, got {v!r}") from None
    if arr.ndim > 1:
        raise ValueError("length_scale cannot be of dimension greater than 1")
    return arr


def _length_scale_text(v, what="length_scale"):
    arr = _length_scale(v, what)
    if arr.ndim == 0:
        return _num(arr[()], what)
    if arr.size == 0:
        raise ValueError(f"{what} must not be empty")
    return "[" + ", ".join(_num(x, what) for x in arr) + "]"


def _bounds_text(key, b, what, n=1):
    """The spec text ", <key>_bounds=..." for scikit-learn-style bounds ``b``: "fixed", a pair
    (lower, upper), or one pair per element of an ``n``-element parameter. The default pair is
    left out (gram's default is the same)."""
    if isinstance(b, str):
        if b == "fixed":
            return f", {key}_bounds=fixed"
        raise ValueError(f"{what} must be \"fixed\" or a pair (lower, upper), got {b!r}")
    try:
        arr = np.atleast_2d(np.asarray(b, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be \"fixed\" or a pair (lower, upper), got {b!r}") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] not in (1, n):
        want = "a pair (lower, upper)" + (f" or {n} pairs, one per length scale" if n > 1 else "")
        raise ValueError(f"{what} must be \"fixed\" or {want}, got {b!r}")
    if np.all(arr == arr[0]):
        if tuple(arr[0]) == DEFAULT_BOUNDS:
            return ""
        return (f", {key}_bounds=[{_bound_num(arr[0, 0], what, True)}, "
                f"{_bound_num(arr[0, 1], what, False)}]")
    pairs = ", ".join(f"[{_bound_num(lo, what, True)}, {_bound_num(hi, what, False)}]" for lo, hi in arr)
    return f", {key}_bounds=[{pairs}]"


def _is_fixed(b):
    return isinstance(b, str) and b == "fixed"


def _is_default_bounds(b):
    return not isinstance(b, str) and np.shape(b) == (2,) and tuple(map(float, b)) == DEFAULT_BOUNDS


def _num_samples(x):
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(x)
    except TypeError:
        raise TypeError(f"Expected sequence or array-like, got {type(x)}") from None


def _clone(obj):
    """``sklearn.base.clone`` (safe=False) without scikit-learn: a new object from the parameters."""
    t = type(obj)
    if t in (list, tuple, set, frozenset):
        return t(_clone(o) for o in obj)
    if hasattr(obj, "get_params") and not isinstance(obj, type):
        return t(**{k: _clone(v) for k, v in obj.get_params(deep=False).items()})
    return copy.deepcopy(obj)


def _at_least_2d(X):
    """scikit-learn's kernels take ``np.atleast_2d(X)``; gram validates the result as usual."""
    if isinstance(X, np.ndarray) and X.ndim >= 2:
        return X
    if hasattr(X, "tocsr") or (type(X).__module__ or "").startswith("scipy.sparse"):
        return X  # refused by check_array with scikit-learn's message
    a = np.asarray(X)
    return np.atleast_2d(a) if a.ndim < 2 else a


# ---- the base class: a kernel given by a spec ---------------------------------------------------


class Kernel(*_sk_bases("Kernel")):
    """A kernel given by a gram spec string; the base of every gram kernel.

    Parameters
    ----------
    spec : str
        A kernel spec in gram's grammar (see ``include/gram.h``), for example
        ``"2*matern52(lengthscale=[1,2]) + white(0.1)"``. Families use gram's parameterisation:
        ``gaussian(lengthscale=l)`` is exp(-|x-y|² / (2 l²)), scikit-learn's ``RBF(l)``.

    Notes
    -----
    All kernels share these methods: ``k(X, Y=None, eval_gradient=False)`` (the Gram matrix, and
    its gradient in ``theta``), ``k.diag(X)`` and ``k.sum(X, Y=None, weights=None, log=False)``
    (the engine's reduction, never an N×M array). The C kernel is immutable; changing a parameter
    on the Python object (``set_params``, ``theta``) rebuilds it on the next call. Kernels may be
    shared between threads.

    A spec kernel's hyperparameters are the C kernel's, in gram's order and with gram's names
    (``hyperparameter_names``: "leaf1.lengthscale", "scale1", ...), one per value.
    """

    def __init__(self, spec):
        if isinstance(spec, Kernel):
            spec = spec.spec
        if not isinstance(spec, str):
            raise TypeError(f"spec must be a str, got {type(spec).__name__}")
        self.spec_string = spec

    # ---- the spec and the C handle ------------------------------------------------------------

    def _make_spec(self):
        return self.spec_string

    @property
    def spec(self):
        """The gram spec string of this kernel."""
        return self._make_spec()

    def _handle(self):
        return _handle_of(self, self._make_spec())

    @property
    def canonical_spec(self):
        """The library's canonical text for this kernel (numbers printed with %.17g)."""
        return self._handle().canonical()

    def is_nonnegative(self):
        """Whether every value of the kernel is >= 0 (so ``sum(..., log=True)`` is defined)."""
        from . import _lib
        return bool(_lib.lib.gram_kernel_is_nonnegative(self._handle().ptr))

    # ---- scikit-learn's protocol, for a spec kernel: the C kernel's hyperparameters -------------

    def get_params(self, deep=True):
        """The constructor parameter ``spec``."""
        return {"spec": self.spec_string}

    def set_params(self, **params):
        """Sets ``spec``; the C kernel is rebuilt on the next call."""
        for key, value in params.items():
            if key != "spec":
                raise ValueError(
                    "Invalid parameter %s for kernel %s. Check the list of available parameters "
                    "with `kernel.get_params().keys()`." % (key, self.__class__.__name__))
            Kernel.__init__(self, value)
        return self

    @property
    def hyperparameters(self):
        """Every hyperparameter of the C kernel (fixed ones included), one per value."""
        h = self._handle()
        b, fixed = np.exp(h.bounds()), h.fixed()
        return [Hyperparameter(name, "numeric", "fixed" if fixed[i] else b[i], 1)
                for i, name in enumerate(h.names())]

    @property
    def theta(self):
        """The log of the free (non-fixed) hyperparameters."""
        h = self._handle()
        return h.theta()[~h.fixed()]

    @theta.setter
    def theta(self, theta):
        h = self._handle()
        free = ~h.fixed()
        th = np.asarray(theta, dtype=np.float64).reshape(-1)
        if th.size != int(free.sum()):
            raise ValueError("theta has not the correct number of entries. Should be %d; given are %d"
                             % (int(free.sum()), th.size))
        full = h.theta()
        full[free] = th
        self._assign(full)

    @property
    def bounds(self):
        """Log-bounds of the entries of theta, shape (n_dims, 2)."""
        h = self._handle()
        b = h.bounds()[~h.fixed()]
        return b if b.size else np.array([])

    @property
    def n_dims(self):
        """The number of free hyperparameters: ``len(theta)``."""
        return self.theta.shape[0]

    @property
    def hyperparameter_names(self):
        """The names of the entries of ``theta``: gram's for a spec kernel ("leaf1.lengthscale",
        "scale1", ...), scikit-learn's for the other classes ("k1__length_scale[0]", ...)."""
        out = []
        for hp in self.hyperparameters:
            if not hp.fixed:
                out += [hp.name] if hp.n_elements == 1 else [f"{hp.name}[{e}]" for e in range(hp.n_elements)]
        return out

    def clone_with_theta(self, theta):
        """A copy of this kernel with log-hyperparameters ``theta`` (the free ones)."""
        cloned = _clone(self)
        cloned.theta = theta
        return cloned

    @property
    def requires_vector_input(self):
        """Whether the kernel is defined on feature vectors (False: it uses only the number of
        samples, as scikit-learn's ``WhiteKernel`` and ``ConstantKernel``)."""
        return True

    def is_stationary(self):
        """Whether k(x, y) depends on x - y only (no dot-product family in the kernel)."""
        return re.search(r"\b(linear|polynomial|poly|cosine|sigmoid|softmax|arccos)\(", self.canonical_spec) is None

    def __eq__(self, b):
        if type(self) is not type(b):
            return False
        return self.spec == b.spec

    __hash__ = None  # mutable and compared by value, as scikit-learn's kernels

    def __repr__(self):
        return f"Kernel({self.spec_string!r})"

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_h", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    # ---- C hyperparameters <-> theta ------------------------------------------------------------

    def _cmap(self):
        """For each C hyperparameter: (Python name, element, a, b) with c = a * theta + b, or None."""
        return [(name, 0, 1.0, 0.0) for name in self._handle().names()]

    def _theta_index(self):
        """{(hyperparameter name, element): index in theta}."""
        out, i = {}, 0
        for hp in self.hyperparameters:
            if hp.fixed:
                continue
            for e in range(hp.n_elements):
                out[(hp.name, e)] = i
                i += 1
        return out

    def _links(self):
        """(C index, theta index, a, b) for every C hyperparameter that is an entry of theta."""
        tidx = self._theta_index()
        return [(c, tidx[m[:2]], m[2], m[3]) for c, m in enumerate(self._cmap())
                if m is not None and m[:2] in tidx]

    def _theta_to_c(self, theta, base=None):
        """The C kernel's full log-hyperparameter vector for ``theta``, the others from ``base``
        (default: this kernel's own)."""
        th = np.asarray(theta, dtype=np.float64).reshape(-1)
        n = len(self._theta_index())
        if th.size != n:
            raise ValueError(f"theta must have {n} values (n_dims), got shape {np.shape(theta)}")
        full = self._handle().theta() if base is None else np.array(base, dtype=np.float64, copy=True)
        for c, j, a, b in self._links():
            full[c] = th[j] if (a == 1.0 and b == 0.0) else a * th[j] + b
        return full

    def _grad_to_theta(self, grad):
        """A gradient in the C log-hyperparameters (last axis, gram's order) as one in theta
        (chain rule through ``_cmap``; entries of theta that gram has no parameter for get 0)."""
        grad = np.asarray(grad)
        out = np.zeros(grad.shape[:-1] + (len(self._theta_index()),))
        for c, j, a, _ in self._links():
            out[..., j] += grad[..., c] if a == 1.0 else a * grad[..., c]
        return out

    def _free(self):
        """The C index of each entry of theta, where theta's entries are C ones (a = 1, b = 0)."""
        tidx = self._theta_index()
        free = np.full(len(tidx), -1, dtype=np.intp)
        for c, j, a, b in self._links():
            if a != 1.0 or b != 0.0:
                raise ValueError(f"{self!r}: theta is not a subset of the C hyperparameters; "
                                 "use _theta_to_c/_grad_to_theta")
            free[j] = c
        if (free < 0).any():
            raise ValueError(f"{self!r}: an entry of theta has no C hyperparameter (a zero "
                             "sigma_0, noise_level or constant_value); use _theta_to_c/_grad_to_theta")
        return free

    def _c_theta(self):
        return self._handle().theta()

    def _assign(self, c_theta):
        """Sets this kernel's parameters to the C log-hyperparameters ``c_theta`` (all of them)."""
        from . import _lib
        c_theta = np.asarray(c_theta, dtype=np.float64)
        h = self._handle()
        if np.array_equal(c_theta, h.theta()):
            return
        new = _lib.new_handle(_lib.lib.gram_kernel_set_hyper, h.ptr, _lib.as_doubles(c_theta)[1])
        try:
            n = _lib.lib.gram_kernel_spec(new, None, 0)
            buf = _lib.ctypes.create_string_buffer(n + 1)
            _lib.lib.gram_kernel_spec(new, buf, n + 1)
        finally:
            _lib.lib.gram_kernel_destroy(new)
        self.spec_string = buf.value.decode()

    # ---- evaluation ---------------------------------------------------------------------------

    def _check_input(self, X):
        """scikit-learn's own checks of a kernel call (a length scale per feature, ...)."""

    def _cross_gradient(self):
        """Whether ``k(X, Y, eval_gradient=True)`` is defined (scikit-learn: only for
        PairwiseKernel, which differentiates numerically whatever Y is)."""
        return False

    def _inputs(self, X, Y):
        if not self.requires_vector_input:
            # the kernel reads only the number of samples: any sequence, as scikit-learn's
            return (np.zeros((_num_samples(X), 1)),
                    None if Y is None else np.zeros((_num_samples(Y), 1)))
        return _check_xy(_at_least_2d(X), None if Y is None else _at_least_2d(Y))

    def __call__(self, X, Y=None, eval_gradient=False):
        """The Gram matrix ``K[i, j] = k(X[i], Y[j])`` and, optionally, its gradient.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        Y : array-like of shape (n_samples_Y, n_features), default=None
            If None, ``k(X, X)`` is computed as a symmetric call: a :class:`WhiteKernel` adds its
            noise on the diagonal (as scikit-learn's).
        eval_gradient : bool, default=False
            Also return the gradient with respect to ``theta`` (the log of the free
            hyperparameters), from libgram's analytic derivatives. Only with Y=None (except for
            :class:`PairwiseKernel`, as in scikit-learn).

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
            float32 when the inputs are float32 and eval_gradient is False, else float64.
        K_gradient : ndarray of shape (n_samples_X, n_samples_X, n_dims), if eval_gradient
        """
        X, Y = self._inputs(X, Y)
        self._check_input(X)
        if eval_gradient:
            if Y is not None and not self._cross_gradient():
                raise ValueError("Gradient can only be evaluated when Y is None.")
            K, G = _matrix_grad(self, X, Y)
            return K, self._grad_to_theta(G)
        return _matrix(self, X, Y, checked=True)

    def diag(self, X):
        """The diagonal ``k(X[i], X[i])`` (white noise included), shape (n_samples,)."""
        X, _ = self._inputs(X, None)
        return _diag(self, X)

    def sum(self, X, Y=None, weights=None, log=False, *, dtype=None, threads=None):
        """Kernel sums over the data X for each query in Y.

        ``out[i] = sum_j k(Y[i], X[j]) * weights[j]`` (or ``out[i, v]`` for 2-D weights). X holds
        the N data points that carry the weights, Y the M queries. Memory is O((N + M) D + M V):
        no N×M array is formed.

        Parameters
        ----------
        X : array-like of shape (N, n_features)
            Data points.
        Y : array-like of shape (M, n_features), default=None
            Query points; None means Y = X (a symmetric call: white noise counts where i == j).
        weights : array-like of shape (N,) or (N, V), default=None
            Weights of the data points; None means all 1.
        log : bool, default=False
            Return ``log(sum_j exp(log k(Y[i], X[j]) + log weights[j]))`` computed in log space:
            finite wherever the sum is positive, even when every term underflows. Needs a
            non-negative kernel and non-negative weights.
        dtype : {None, float64, float32}, default=None
            Computation precision; None means float32 when both X and Y are float32, else float64.
        threads : int, default=None
            Threads for this call; None or 0 means OpenMP's default.

        Returns
        -------
        out : ndarray of shape (M,) for 1-D or no weights, (M, V) for 2-D weights
        """
        return _sum(self, X, Y, weights, log, dtype, threads)

    # ---- algebra ------------------------------------------------------------------------------

    def __add__(self, b):
        return Sum(self, _operand(b))

    def __radd__(self, b):
        return Sum(_operand(b), self)

    def __mul__(self, b):
        return Product(self, _operand(b))

    def __rmul__(self, b):
        return Product(_operand(b), self)

    def __pow__(self, b):
        return Exponentiation(self, b)


def _operand(other):
    if isinstance(other, (numbers.Real, np.floating, np.integer)) and not isinstance(other, bool):
        return ConstantKernel(other)
    return other if isinstance(other, Kernel) or is_sklearn_kernel(other) else as_kernel(other)


# ---- kernels with scikit-learn's parameters -------------------------------------------------------


class _Typed(Kernel):
    """scikit-learn's protocol from the constructor parameters (its ``Kernel`` base class)."""

    def __init__(self):  # pragma: no cover - every class defines its own
        raise NotImplementedError

    @classmethod
    def _param_names(cls):
        names = cls.__dict__.get("_param_names_cache")
        if names is None:
            names = []
            for p in inspect.signature(cls.__init__).parameters.values():
                if p.kind == p.VAR_POSITIONAL:
                    raise RuntimeError(
                        "scikit-learn kernels should always specify their parameters in the "
                        "signature of their __init__ (no varargs). %s doesn't follow this "
                        "convention." % (cls,))
                if p.kind != p.VAR_KEYWORD and p.name != "self":
                    names.append(p.name)
            cls._param_names_cache = names
        return names

    @classmethod
    def _hyper_attrs(cls):
        names = cls.__dict__.get("_hyper_attrs_cache")
        if names is None:
            names = sorted(a for a in dir(cls)
                           if a.startswith("hyperparameter_") and a != "hyperparameter_names")
            cls._hyper_attrs_cache = names
        return names

    def get_params(self, deep=True):
        """Parameter names mapped to their values (scikit-learn's ``Kernel.get_params``)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Sets parameters, ``<component>__<parameter>`` for nested kernels; the C kernel is
        rebuilt on the next call."""
        if not params:
            return self
        valid = self.get_params(deep=True)
        for key, value in params.items():
            split = key.split("__", 1)
            if len(split) > 1:
                name, sub = split
                if name not in valid:
                    raise ValueError(
                        "Invalid parameter %s for kernel %s. Check the list of available "
                        "parameters with `kernel.get_params().keys()`." % (name, self))
                valid[name].set_params(**{sub: value})
            else:
                if key not in valid:
                    raise ValueError(
                        "Invalid parameter %s for kernel %s. Check the list of available "
                        "parameters with `kernel.get_params().keys()`." % (key, self.__class__.__name__))
                setattr(self, key, value)
        return self

    @property
    def hyperparameters(self):
        """Every hyperparameter (fixed ones included), in scikit-learn's order."""
        return [getattr(self, a) for a in self._hyper_attrs()]

    @property
    def theta(self):
        """The log of the free (non-fixed) hyperparameters, flattened, in scikit-learn's order
        (alphabetical within a kernel, k1 before k2)."""
        theta = []
        params = self.get_params()
        for hp in self.hyperparameters:
            if not hp.fixed:
                theta.append(params[hp.name])
        if theta:
            return np.log(np.hstack(theta))
        return np.array([])

    @theta.setter
    def theta(self, theta):
        params = self.get_params()
        i = 0
        for hp in self.hyperparameters:
            if hp.fixed:
                continue
            if hp.n_elements > 1:
                params[hp.name] = np.exp(theta[i:i + hp.n_elements])
                i += hp.n_elements
            else:
                params[hp.name] = np.exp(theta[i])
                i += 1
        if i != len(theta):
            raise ValueError("theta has not the correct number of entries. Should be %d; given are %d"
                             % (i, len(theta)))
        self.set_params(**params)

    @property
    def bounds(self):
        """The log of the bounds of the entries of theta, shape (n_dims, 2)."""
        bounds = [hp.bounds for hp in self.hyperparameters if not hp.fixed]
        if bounds:
            return np.log(np.vstack(bounds))
        return np.array([])

    def __eq__(self, b):
        if type(self) is not type(b):
            return False
        params_a, params_b = self.get_params(), b.get_params()
        for key in set(list(params_a) + list(params_b)):
            if np.any(params_a.get(key, None) != params_b.get(key, None)):
                return False
        return True

    __hash__ = None

    def __repr__(self):
        return "{0}({1})".format(self.__class__.__name__, ", ".join(map("{0:.3g}".format, self.theta)))


class _Leaf(_Typed):
    """One gram family. ``_KEYS`` maps gram's parameter names to (attribute, a, b)."""

    _KEYS = {}

    def _keys(self):
        return self._KEYS

    def _cmap(self):
        keys = self._keys()
        out = []
        for name in self._handle().names():
            m = re.fullmatch(r"leaf\d+\.(\w+)(?:\[(\d+)\])?", name)
            k = keys.get(m.group(1)) if m else None
            out.append(None if k is None else (k[0], int(m.group(2) or 0), k[1], k[2]))
        return out

    def _assign(self, c_theta):
        c_theta = np.asarray(c_theta, dtype=np.float64)
        current = self._handle().theta()
        updates = {}
        for c, m in enumerate(self._cmap()):
            # unchanged (fixed, or not learned): keep the value exactly as given
            if m is None or c_theta[c] == current[c]:
                continue
            name, e, a, b = m
            updates.setdefault(name, []).append((e, np.exp((c_theta[c] - b) / a)))
        for name, values in updates.items():
            v = getattr(self, name)
            if np.ndim(v) == 0:
                setattr(self, name, values[0][1])
            else:
                arr = np.array(v, dtype=np.float64).reshape(-1)
                for e, x in values:
                    arr[e] = x
                setattr(self, name, arr)


def _value_dtype(v):
    """scikit-learn's ConstantKernel and WhiteKernel.diag return the dtype of their value."""
    dt = np.asarray(v).dtype
    return dt if dt.kind in "iuf" else np.dtype(np.float64)


class RBF(_Leaf, *_sk_bases("RBF")):
    """Radial basis function: ``exp(-|x - y|² / (2 length_scale²))`` (gram: ``gaussian``).

    Parameters
    ----------
    length_scale : float or array-like of shape (n_features,), default=1.0
        One value (isotropic) or one per feature (anisotropic, ARD).
    length_scale_bounds : pair of floats >= 0, "fixed", or one pair per feature, default=(1e-5, 1e5)
        The range of ``length_scale`` for learning (GaussianProcessRegressor); "fixed" keeps it.
        The value may lie outside (the bounds only constrain learning).
    """

    _KEYS = {"lengthscale": ("length_scale", 1.0, 0.0)}

    def __init__(self, length_scale=1.0, length_scale_bounds=DEFAULT_BOUNDS):
        self.length_scale = length_scale
        self.length_scale_bounds = length_scale_bounds

    @property
    def anisotropic(self):
        return np.iterable(self.length_scale) and len(self.length_scale) > 1

    @property
    def hyperparameter_length_scale(self):
        if self.anisotropic:
            return Hyperparameter("length_scale", "numeric", self.length_scale_bounds, len(self.length_scale))
        return Hyperparameter("length_scale", "numeric", self.length_scale_bounds)

    def is_stationary(self):
        return True

    def _family(self):
        return "gaussian"

    def _make_spec(self):
        n = _length_scale(self.length_scale).size
        return (f"{self._family()}(lengthscale={_length_scale_text(self.length_scale)}"
                f"{_bounds_text('lengthscale', self.length_scale_bounds, 'length_scale_bounds', n)})")

    def _check_input(self, X):
        ls = _length_scale(self.length_scale)
        if ls.ndim == 1 and X.shape[1] != ls.shape[0]:
            raise ValueError("Anisotropic kernel must have the same number of dimensions as data (%d!=%d)"
                             % (ls.shape[0], X.shape[1]))

    def __repr__(self):
        if self.anisotropic:
            return "{0}(length_scale=[{1}])".format(
                self.__class__.__name__, ", ".join(map("{0:.3g}".format, self.length_scale)))
        return "{0}(length_scale={1:.3g})".format(self.__class__.__name__, np.ravel(self.length_scale)[0])


_MATERN = {0.5: "matern12", 1.5: "matern32", 2.5: "matern52", math.inf: "gaussian"}


class Matern(RBF, *_sk_bases("Matern")):
    """Matérn kernel with smoothness ``nu`` > 0.

    Parameters
    ----------
    length_scale : float or array-like of shape (n_features,), default=1.0
    length_scale_bounds : pair of floats >= 0, "fixed", or one pair per feature, default=(1e-5, 1e5)
    nu : float > 0, default=1.5
        0.5, 1.5 and 2.5 are computed in closed form (gram's matern12, matern32, matern52) and
        inf is the RBF; any other value by gram's general Matérn family (modified Bessel
        function of the second kind). nu is not a hyperparameter.
    """

    def __init__(self, length_scale=1.0, length_scale_bounds=DEFAULT_BOUNDS, nu=1.5):
        super().__init__(length_scale, length_scale_bounds)
        self.nu = nu

    def _family(self):
        nu = self.nu
        if isinstance(nu, bool) or not isinstance(nu, (numbers.Real, np.floating, np.integer)):
            raise TypeError(f"Matern: nu must be a number, got {nu!r}")
        nu = float(nu)
        if nu in _MATERN:
            return _MATERN[nu]
        if not nu > 0:
            raise ValueError(f"Matern: nu must be > 0, got {self.nu!r}")
        return None  # the general family

    def _make_spec(self):
        fam = self._family()
        n = _length_scale(self.length_scale).size
        bounds = _bounds_text("lengthscale", self.length_scale_bounds, "length_scale_bounds", n)
        ls = _length_scale_text(self.length_scale)
        if fam is None:  # the general family: nu as a fixed parameter
            return f"matern(nu={float(self.nu)!r}, lengthscale={ls}{bounds})"
        return f"{fam}(lengthscale={ls}{bounds})"

    def __repr__(self):
        if self.anisotropic:
            return "{0}(length_scale=[{1}], nu={2:.3g})".format(
                self.__class__.__name__, ", ".join(map("{0:.3g}".format, self.length_scale)), self.nu)
        return "{0}(length_scale={1:.3g}, nu={2:.3g})".format(
            self.__class__.__name__, np.ravel(self.length_scale)[0], self.nu)


def _isotropic_only(kernel):
    if len(np.atleast_1d(kernel.length_scale)) > 1:
        raise AttributeError(f"{type(kernel).__name__} kernel only supports isotropic version, "
                             "please use a single scalar for length_scale")


class RationalQuadratic(_Leaf, *_sk_bases("RationalQuadratic")):
    """Rational quadratic: ``(1 + |x - y|² / (2 alpha length_scale²))^(-alpha)``.

    Parameters
    ----------
    length_scale : float > 0, default=1.0
        Isotropic only: an array of more than one value raises AttributeError when the kernel
        is used, as in scikit-learn.
    alpha : float > 0, default=1.0
    length_scale_bounds, alpha_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)

    ``theta`` is [log alpha, log length_scale] (scikit-learn's order; gram's C order is the
    reverse).
    """

    _KEYS = {"lengthscale": ("length_scale", 1.0, 0.0), "alpha": ("alpha", 1.0, 0.0)}

    def __init__(self, length_scale=1.0, alpha=1.0, length_scale_bounds=DEFAULT_BOUNDS,
                 alpha_bounds=DEFAULT_BOUNDS):
        self.length_scale = length_scale
        self.alpha = alpha
        self.length_scale_bounds = length_scale_bounds
        self.alpha_bounds = alpha_bounds

    @property
    def hyperparameter_length_scale(self):
        return Hyperparameter("length_scale", "numeric", self.length_scale_bounds)

    @property
    def hyperparameter_alpha(self):
        return Hyperparameter("alpha", "numeric", self.alpha_bounds)

    def is_stationary(self):
        return True

    def _make_spec(self):
        _isotropic_only(self)
        return (f"rational_quadratic(lengthscale={_length_scale_text(self.length_scale)}"
                f"{_bounds_text('lengthscale', self.length_scale_bounds, 'length_scale_bounds')}, "
                f"alpha={_num(self.alpha, 'alpha')}{_bounds_text('alpha', self.alpha_bounds, 'alpha_bounds')})")

    def _check_input(self, X):
        _isotropic_only(self)

    def __repr__(self):
        return "{0}(alpha={1:.3g}, length_scale={2:.3g})".format(
            self.__class__.__name__, self.alpha, self.length_scale)


class ExpSineSquared(_Leaf, *_sk_bases("ExpSineSquared")):
    """Periodic kernel: ``exp(-2 sin²(pi |x - y| / periodicity) / length_scale²)``.

    Parameters
    ----------
    length_scale : float > 0, default=1.0
        Isotropic only (an array of more than one value raises AttributeError when used).
    periodicity : float > 0, default=1.0
    length_scale_bounds, periodicity_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)
    """

    _KEYS = {"lengthscale": ("length_scale", 1.0, 0.0), "period": ("periodicity", 1.0, 0.0)}

    def __init__(self, length_scale=1.0, periodicity=1.0, length_scale_bounds=DEFAULT_BOUNDS,
                 periodicity_bounds=DEFAULT_BOUNDS):
        self.length_scale = length_scale
        self.periodicity = periodicity
        self.length_scale_bounds = length_scale_bounds
        self.periodicity_bounds = periodicity_bounds

    @property
    def hyperparameter_length_scale(self):
        return Hyperparameter("length_scale", "numeric", self.length_scale_bounds)

    @property
    def hyperparameter_periodicity(self):
        return Hyperparameter("periodicity", "numeric", self.periodicity_bounds)

    def is_stationary(self):
        return True

    def _make_spec(self):
        _isotropic_only(self)
        return (f"periodic(lengthscale={_length_scale_text(self.length_scale)}"
                f"{_bounds_text('lengthscale', self.length_scale_bounds, 'length_scale_bounds')}, "
                f"period={_num(self.periodicity, 'periodicity')}"
                f"{_bounds_text('period', self.periodicity_bounds, 'periodicity_bounds')})")

    def _check_input(self, X):
        _isotropic_only(self)

    def __repr__(self):
        return "{0}(length_scale={1:.3g}, periodicity={2:.3g})".format(
            self.__class__.__name__, self.length_scale, self.periodicity)


class DotProduct(_Leaf, *_sk_bases("DotProduct")):
    """Dot product: ``sigma_0² + x · y`` (gram: ``linear``).

    Parameters
    ----------
    sigma_0 : float >= 0, default=1.0
    sigma_0_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)
        With sigma_0 = 0, theta holds log 0 = -inf and the gradient there is 0, as in
        scikit-learn (gram's C kernel has no parameter to learn).
    """

    _KEYS = {"sigma0": ("sigma_0", 1.0, 0.0)}

    def __init__(self, sigma_0=1.0, sigma_0_bounds=DEFAULT_BOUNDS):
        self.sigma_0 = sigma_0
        self.sigma_0_bounds = sigma_0_bounds

    @property
    def hyperparameter_sigma_0(self):
        return Hyperparameter("sigma_0", "numeric", self.sigma_0_bounds)

    def is_stationary(self):
        return False

    def _make_spec(self):
        v = _num(self.sigma_0, "sigma_0")
        b = _bounds_text("sigma0", self.sigma_0_bounds, "sigma_0_bounds") if float(v) > 0 else ""
        # gram's linear kernel also scales x by a lengthscale; DotProduct has none to learn
        return f"linear(sigma0={v}{b}, lengthscale_bounds=fixed)"

    def __repr__(self):
        return "{0}(sigma_0={1:.3g})".format(self.__class__.__name__, self.sigma_0)


class WhiteKernel(_Leaf, *_sk_bases("WhiteKernel")):
    """White noise: ``noise_level`` where x is y in a symmetric call (``k(X)``), else 0.

    Parameters
    ----------
    noise_level : float >= 0, default=1.0
    noise_level_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)

    It reads only the number of samples of X (``requires_vector_input`` is False), as
    scikit-learn's.
    """

    _KEYS = {"noise": ("noise_level", 1.0, 0.0)}

    def __init__(self, noise_level=1.0, noise_level_bounds=DEFAULT_BOUNDS):
        self.noise_level = noise_level
        self.noise_level_bounds = noise_level_bounds

    @property
    def hyperparameter_noise_level(self):
        return Hyperparameter("noise_level", "numeric", self.noise_level_bounds)

    @property
    def requires_vector_input(self):
        return False

    def is_stationary(self):
        return True

    def _make_spec(self):
        v = _num(self.noise_level, "noise_level")
        b = _bounds_text("noise", self.noise_level_bounds, "noise_level_bounds") if float(v) > 0 else ""
        return f"white(noise={v}{b})"

    def diag(self, X):
        return super().diag(X).astype(_value_dtype(self.noise_level), copy=False)

    def __repr__(self):
        return "{0}(noise_level={1:.3g})".format(self.__class__.__name__, self.noise_level)


class ConstantKernel(_Leaf, *_sk_bases("ConstantKernel")):
    """Constant: ``constant_value`` for every pair. As a factor of a product it is a scale.

    Parameters
    ----------
    constant_value : float, default=1.0
    constant_value_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)

    It reads only the number of samples of X (``requires_vector_input`` is False), as
    scikit-learn's.
    """

    _KEYS = {"value": ("constant_value", 1.0, 0.0)}

    def __init__(self, constant_value=1.0, constant_value_bounds=DEFAULT_BOUNDS):
        self.constant_value = constant_value
        self.constant_value_bounds = constant_value_bounds

    @property
    def hyperparameter_constant_value(self):
        return Hyperparameter("constant_value", "numeric", self.constant_value_bounds)

    @property
    def requires_vector_input(self):
        return False

    def is_stationary(self):
        return True

    def _positive(self):
        return float(_num(self.constant_value, "constant_value")) > 0

    def _is_scale(self):
        """A product factor that gram computes as a scale ``c*(k)`` (default bounds only)."""
        return _is_default_bounds(self.constant_value_bounds)

    def _make_spec(self):
        c = _num(self.constant_value, "constant_value")
        if float(c) > 0:
            return f"constant(value={c}{_bounds_text('value', self.constant_value_bounds, 'constant_value_bounds')})"
        return f"{c}*constant(value=1.0, value_bounds=fixed)"

    def _cmap(self):
        return super()._cmap() if self._positive() else [None] * self._handle().n_hyper()

    def __call__(self, X, Y=None, eval_gradient=False):
        out = super().__call__(X, Y, eval_gradient)
        dt = _value_dtype(self.constant_value)
        if eval_gradient:
            return out[0].astype(dt, copy=False), out[1].astype(dt, copy=False)
        return out.astype(dt, copy=False)

    def diag(self, X):
        return super().diag(X).astype(_value_dtype(self.constant_value), copy=False)

    def __repr__(self):
        return "{0:.3g}**2".format(np.sqrt(self.constant_value))


# scikit-learn's pairwise kernel metrics: the parameters each takes (sklearn.metrics.pairwise.KERNEL_PARAMS)
_PAIRWISE_PARAMS = {
    "additive_chi2": (), "chi2": ("gamma",), "cosine": (), "linear": (),
    "poly": ("gamma", "degree", "coef0"), "polynomial": ("gamma", "degree", "coef0"),
    "rbf": ("gamma",), "laplacian": ("gamma",), "sigmoid": ("gamma", "coef0"),
}
_LOG_HALF = math.log(0.5)


class PairwiseKernel(_Leaf, *_sk_bases("PairwiseKernel")):
    """scikit-learn's wrapper of the kernels of ``sklearn.metrics.pairwise``, computed by gram.

    Parameters
    ----------
    gamma : float > 0, default=1.0
        The hyperparameter: ``rbf`` exp(-gamma |x-y|²), ``laplacian`` exp(-gamma |x-y|_1),
        ``poly`` (gamma x·y + coef0)^degree, ``sigmoid`` tanh(gamma x·y + coef0); ``linear``
        and ``cosine`` do not use it (its gradient is 0).
    gamma_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)
    metric : {"linear", "rbf", "laplacian", "poly", "polynomial", "sigmoid", "cosine"}, default="linear"
        scikit-learn's "chi2" and "additive_chi2", other names and callables are not computed by
        gram: ValueError when the kernel is used.
    pairwise_kernels_kwargs : dict, default=None
        Fixed parameters of the metric (``degree`` (an integer >= 1, default 3) and ``coef0``
        (>= 0 for poly, default 1) for poly, ``coef0`` (default 1) for sigmoid); keys the metric
        does not take are ignored, as scikit-learn's ``filter_params=True`` does.

    gram computes rbf and laplacian in its length-scale parameterisation (l = (2 gamma)^(-1/2),
    l = 1/gamma) and maps the values, bounds and gradient; the gradient is analytic (scikit-learn
    differentiates numerically).
    """

    def __init__(self, gamma=1.0, gamma_bounds=DEFAULT_BOUNDS, metric="linear", pairwise_kernels_kwargs=None):
        self.gamma = gamma
        self.gamma_bounds = gamma_bounds
        self.metric = metric
        self.pairwise_kernels_kwargs = pairwise_kernels_kwargs

    @property
    def hyperparameter_gamma(self):
        return Hyperparameter("gamma", "numeric", self.gamma_bounds)

    def is_stationary(self):
        return self.metric in ["rbf"]

    def _cross_gradient(self):
        return True

    def _metric(self):
        m = self.metric
        if not isinstance(m, str):
            raise ValueError(f"PairwiseKernel: gram computes the metrics 'linear', 'rbf', 'laplacian', "
                             f"'poly', 'polynomial', 'sigmoid' and 'cosine', not a callable ({m!r})")
        if m in ("chi2", "additive_chi2"):
            raise ValueError(f"PairwiseKernel: gram does not compute the {m!r} metric (scikit-learn's "
                             "chi-squared kernels); use scikit-learn's PairwiseKernel for it")
        if m not in _PAIRWISE_PARAMS:
            raise ValueError(f"PairwiseKernel: unknown metric {m!r}; gram computes 'linear', 'rbf', "
                             "'laplacian', 'poly', 'polynomial', 'sigmoid' and 'cosine'")
        return m

    def _kwargs(self):
        kw = dict(self.pairwise_kernels_kwargs or {})
        if "gamma" in kw:
            raise TypeError("pairwise_kernels() got multiple values for keyword argument 'gamma'")
        taken = _PAIRWISE_PARAMS[self._metric()]
        return {k: v for k, v in kw.items() if k in taken}

    def _gamma(self):
        g = float(_num(self.gamma, "gamma"))
        if not g > 0:
            raise ValueError(f"PairwiseKernel: gamma must be > 0, got {self.gamma!r}")
        return g

    def _gamma_bounds(self):
        """gamma's bounds as (lo, hi) floats, or None for "fixed"."""
        b = self.gamma_bounds
        if _is_fixed(b):
            return None
        arr = np.asarray(b, dtype=np.float64).reshape(-1)
        if arr.shape != (2,):
            raise ValueError(f"gamma_bounds must be \"fixed\" or a pair (lower, upper), got {b!r}")
        return float(arr[0]), float(arr[1])

    def _make_spec(self):
        m = self._metric()
        kw = self._kwargs()
        if m == "linear":
            return "linear(sigma0=0.0, lengthscale_bounds=fixed)"
        if m == "cosine":
            return "cosine(lengthscale_bounds=fixed)"
        g, gb = self._gamma(), self._gamma_bounds()
        with np.errstate(divide="ignore"):
            if m == "rbf":  # exp(-gamma r²) = exp(-r² / (2 l²)), l = (2 gamma)^(-1/2), decreasing in gamma
                ls = lambda x: float(np.float64(2.0 * x) ** -0.5)  # noqa: E731
                return self._ls_spec("gaussian", ls(g), None if gb is None else (ls(gb[1]), ls(gb[0])))
            if m == "laplacian":  # exp(-gamma |x-y|_1), l = 1/gamma
                inv = lambda x: float(np.float64(1.0) / np.float64(x))  # noqa: E731
                return self._ls_spec("laplacian_l1", inv(g), None if gb is None else (inv(gb[1]), inv(gb[0])))
        gamma = f"gamma={g!r}" + (", gamma_bounds=fixed" if gb is None else _bounds_text("gamma", gb, "gamma_bounds"))
        coef0 = float(_num(kw.get("coef0", 1), "coef0"))
        c0 = f"coef0={coef0!r}" + (", coef0_bounds=fixed" if coef0 > 0 else "")
        if m in ("poly", "polynomial"):
            degree = kw.get("degree", 3)
            if isinstance(degree, bool) or not isinstance(degree, (numbers.Real, np.floating, np.integer)) \
                    or float(degree) != int(degree) or int(degree) < 1:
                raise ValueError(f"PairwiseKernel: gram's polynomial kernel needs an integer degree >= 1, "
                                 f"got {degree!r}")
            return f"polynomial(degree={int(degree)}, {gamma}, {c0}, lengthscale_bounds=fixed)"
        return f"sigmoid({gamma}, {c0}, lengthscale_bounds=fixed)"  # m == "sigmoid"

    @staticmethod
    def _ls_spec(family, ls, bounds):
        b = ", lengthscale_bounds=fixed" if bounds is None else _bounds_text("lengthscale", bounds, "gamma_bounds")
        return f"{family}(lengthscale={ls!r}{b})"

    def _keys(self):
        m = self._metric()
        if m == "rbf":  # log l = -(log gamma)/2 + log(1/2)/2
            return {"lengthscale": ("gamma", -0.5, 0.5 * _LOG_HALF)}
        if m == "laplacian":  # log l = -log gamma
            return {"lengthscale": ("gamma", -1.0, 0.0)}
        if m in ("poly", "polynomial", "sigmoid"):
            return {"gamma": ("gamma", 1.0, 0.0)}
        return {}

    def __repr__(self):
        return "{0}(gamma={1}, metric={2})".format(self.__class__.__name__, self.gamma, self.metric)


# ---- operators ------------------------------------------------------------------------------------


def _prefixed(prefix, hps):
    return [Hyperparameter(f"{prefix}__{hp.name}", hp.value_type, hp.bounds, hp.n_elements) for hp in hps]


class _Composite(_Typed):
    """A kernel of other kernels: the C hyperparameters of its parts, at their C positions."""

    def _parts(self):
        """[(attribute, gram kernel of the part, C indices of its hyperparameters in this kernel)]."""
        raise NotImplementedError

    def _cmap(self):
        out = [None] * self._handle().n_hyper()
        for attr, part, idx in self._parts():
            pmap = part._cmap()
            if len(pmap) != len(idx):
                raise RuntimeError(f"gram: {attr} of {self!r} has {len(pmap)} C hyperparameters, "
                                   f"expected {len(idx)} (a bug in gram)")
            for c, m in zip(idx, pmap):
                out[c] = None if m is None else (f"{attr}__{m[0]}",) + tuple(m[1:])
        return out

    def _assign(self, c_theta):
        c_theta = np.asarray(c_theta, dtype=np.float64)
        for attr, part, idx in self._parts():
            if getattr(self, attr) is not part:  # a translated scikit-learn kernel: keep the new values
                setattr(self, attr, part)
            if len(idx):
                part._assign(c_theta[np.asarray(idx, dtype=np.intp)])


class KernelOperator(_Composite, *_sk_bases("KernelOperator")):
    """The base of :class:`Sum` and :class:`Product` (scikit-learn's ``KernelOperator``)."""

    def __init__(self, k1, k2):
        self.k1 = k1
        self.k2 = k2

    def get_params(self, deep=True):
        params = dict(k1=self.k1, k2=self.k2)
        if deep:
            params.update(("k1__" + k, v) for k, v in self.k1.get_params().items())
            params.update(("k2__" + k, v) for k, v in self.k2.get_params().items())
        return params

    @property
    def hyperparameters(self):
        return _prefixed("k1", self.k1.hyperparameters) + _prefixed("k2", self.k2.hyperparameters)

    @property
    def theta(self):
        return np.append(self.k1.theta, self.k2.theta)

    @theta.setter
    def theta(self, theta):
        k1_dims = self.k1.n_dims
        self.k1.theta = theta[:k1_dims]
        self.k2.theta = theta[k1_dims:]

    @property
    def bounds(self):
        if self.k1.bounds.size == 0:
            return self.k2.bounds
        if self.k2.bounds.size == 0:
            return self.k1.bounds
        return np.vstack((self.k1.bounds, self.k2.bounds))

    def __eq__(self, b):
        if type(self) is not type(b):
            return False
        return (self.k1 == b.k1 and self.k2 == b.k2) or (self.k1 == b.k2 and self.k2 == b.k1)

    __hash__ = None

    def is_stationary(self):
        return self.k1.is_stationary() and self.k2.is_stationary()

    @property
    def requires_vector_input(self):
        return self.k1.requires_vector_input or self.k2.requires_vector_input

    def _check_input(self, X):
        for k in (self.k1, self.k2):
            if as_kernel(k).requires_vector_input:
                as_kernel(k)._check_input(X)

    def _cross_gradient(self):
        return as_kernel(self.k1)._cross_gradient() and as_kernel(self.k2)._cross_gradient()

    def _concatenated(self):
        a, b = as_kernel(self.k1), as_kernel(self.k2)
        n1, n2 = a._handle().n_hyper(), b._handle().n_hyper()
        return [("k1", a, list(range(n1))), ("k2", b, list(range(n1, n1 + n2)))]


class Sum(KernelOperator, *_sk_bases("Sum")):
    """``k1 + k2``."""

    def _make_spec(self):
        return f"{as_kernel(self.k1).spec} + {as_kernel(self.k2).spec}"

    def _parts(self):
        return self._concatenated()

    def __repr__(self):
        return "{0} + {1}".format(self.k1, self.k2)


def _scale_factor(k):
    return type(k) is ConstantKernel and k._is_scale()


class Product(KernelOperator, *_sk_bases("Product")):
    """``k1 * k2``; a :class:`ConstantKernel` factor with default bounds becomes a scale of the
    other factor (``c*(k)``), one with explicit bounds a ``constant`` leaf of the product."""

    def _make_spec(self):
        a, b = as_kernel(self.k1), as_kernel(self.k2)
        if _scale_factor(a):
            return f"{_num(a.constant_value, 'constant_value')}*({b.spec})"
        if _scale_factor(b):
            return f"{_num(b.constant_value, 'constant_value')}*({a.spec})"
        return f"({a.spec}) * ({b.spec})"

    def _parts(self):
        # A scale's hyperparameter comes right after those of the expression it multiplies (and
        # there is none for c <= 0).
        a, b = as_kernel(self.k1), as_kernel(self.k2)
        if _scale_factor(a):
            nb = b._handle().n_hyper()
            return [("k1", a, [nb] if a._positive() else []), ("k2", b, list(range(nb)))]
        if _scale_factor(b):
            na = a._handle().n_hyper()
            return [("k1", a, list(range(na))), ("k2", b, [na] if b._positive() else [])]
        return self._concatenated()

    def __repr__(self):
        return "{0} * {1}".format(self.k1, self.k2)


class Exponentiation(_Composite, *_sk_bases("Exponentiation")):
    """``kernel ** exponent``: every value of ``kernel`` to a fixed real power (not a
    hyperparameter); ``k ** p`` builds it.

    Parameters
    ----------
    kernel : kernel
    exponent : float
    """

    def __init__(self, kernel, exponent):
        self.kernel = kernel
        self.exponent = exponent

    def get_params(self, deep=True):
        params = dict(kernel=self.kernel, exponent=self.exponent)
        if deep:
            params.update(("kernel__" + k, v) for k, v in self.kernel.get_params().items())
        return params

    @property
    def hyperparameters(self):
        return _prefixed("kernel", self.kernel.hyperparameters)

    @property
    def theta(self):
        return self.kernel.theta

    @theta.setter
    def theta(self, theta):
        self.kernel.theta = theta

    @property
    def bounds(self):
        return self.kernel.bounds

    def __eq__(self, b):
        if type(self) is not type(b):
            return False
        return self.kernel == b.kernel and self.exponent == b.exponent

    __hash__ = None

    def is_stationary(self):
        return self.kernel.is_stationary()

    @property
    def requires_vector_input(self):
        return self.kernel.requires_vector_input

    def _check_input(self, X):
        k = as_kernel(self.kernel)
        if k.requires_vector_input:
            k._check_input(X)

    def _cross_gradient(self):
        return as_kernel(self.kernel)._cross_gradient()

    def _make_spec(self):
        return f"({as_kernel(self.kernel).spec})^{_num(self.exponent, 'exponent')}"

    def _parts(self):
        k = as_kernel(self.kernel)
        return [("kernel", k, list(range(k._handle().n_hyper())))]

    def __repr__(self):
        return "{0} ** {1}".format(self.kernel, self.exponent)


class CompoundKernel(_Typed, *_sk_bases("CompoundKernel")):
    """Several kernels side by side: ``k(X, Y)`` has shape (n_X, n_Y, n_kernels) (scikit-learn's
    ``CompoundKernel``, as ``GaussianProcessClassifier`` builds for one-vs-rest).

    Parameters
    ----------
    kernels : list of kernels

    ``theta`` and ``bounds`` concatenate the kernels'; as in scikit-learn, ``hyperparameters`` is
    empty and ``get_params`` has only ``kernels``. It has no single gram spec (``sum`` and the
    regressors refuse it).
    """

    def __init__(self, kernels):
        self.kernels = kernels

    def get_params(self, deep=True):
        return dict(kernels=self.kernels)

    @property
    def theta(self):
        return np.hstack([k.theta for k in self.kernels])

    @theta.setter
    def theta(self, theta):
        i = 0
        for k in self.kernels:
            n = k.n_dims
            k.theta = theta[i:i + n]
            i += n
        if i != len(theta):
            raise ValueError("theta has not the correct number of entries. Should be %d; given are %d"
                             % (i, len(theta)))

    @property
    def bounds(self):
        return np.vstack([k.bounds for k in self.kernels])

    def __eq__(self, b):
        if type(self) is not type(b) or len(self.kernels) != len(b.kernels):
            return False
        return np.all([self.kernels[i] == b.kernels[i] for i in range(len(self.kernels))])

    __hash__ = None

    def is_stationary(self):
        return np.all([k.is_stationary() for k in self.kernels])

    @property
    def requires_vector_input(self):
        return np.any([k.requires_vector_input for k in self.kernels])

    def _make_spec(self):
        raise ValueError("a CompoundKernel stacks several kernels and has no single gram spec; "
                         "use its kernels one at a time")

    def __call__(self, X, Y=None, eval_gradient=False):
        """The kernels' Gram matrices stacked: shape (n_X, n_Y, n_kernels); with eval_gradient
        also their gradients, shape (n_X, n_X, n_dims of each, n_kernels)."""
        parts = [as_kernel(k) for k in self.kernels]
        if eval_gradient:
            K, G = zip(*[k(X, Y, eval_gradient=True) for k in parts])
            return np.dstack(K), np.concatenate([g[..., np.newaxis] for g in G], 3)
        return np.dstack([k(X, Y) for k in parts])

    def diag(self, X):
        """The kernels' diagonals, shape (n_samples, n_kernels)."""
        return np.vstack([as_kernel(k).diag(X) for k in self.kernels]).T


# Pickles and reprs name the public module, which builds these classes on first use.
for _cls in (Kernel, RBF, Matern, RationalQuadratic, ExpSineSquared, DotProduct,
             WhiteKernel, ConstantKernel, PairwiseKernel, KernelOperator, Sum, Product, Exponentiation,
             CompoundKernel):
    _cls.__module__ = "gram.kernels"
if Hyperparameter is _Hyperparameter:
    _Hyperparameter.__module__ = "gram.kernels"
    _Hyperparameter.__name__ = _Hyperparameter.__qualname__ = "Hyperparameter"
del _cls
