"""Kernels: scikit-learn's names and parameterisation, evaluated by libgram.

Every kernel maps to a gram spec string (``RBF(2.0).spec == "gaussian(lengthscale=2.0)"``) and
holds a C ``gram_kernel`` handle, created from that spec on first use and destroyed with the
object. Kernels compose with ``+`` and ``*`` (and scalars) as in
``sklearn.gaussian_process.kernels``; any spec is available through ``Kernel("...")``.

Hyperparameters follow scikit-learn's kernel protocol: ``theta`` is the log of the free ones
(bounds "fixed" left out), ``bounds``, ``hyperparameters``, ``n_dims``, ``clone_with_theta``. The
classes below list them in scikit-learn's order (alphabetical within a kernel, k1 before k2), so a
translated scikit-learn kernel has scikit-learn's theta; a spec ``Kernel`` lists them in gram's
C order (see ``hyperparameter_names``). Bounds parameters (``length_scale_bounds``, ...) are
written into the spec as ``<key>_bounds=[lo, hi]`` or ``<key>_bounds=fixed``.

>>> import numpy as np, gram
>>> k = 2.0 * gram.Matern(length_scale=[1.0, 2.0], nu=2.5) + gram.WhiteKernel(0.1)
>>> k.spec
'2.0*(matern52(lengthscale=[1.0, 2.0])) + white(noise=0.1)'
>>> X = np.random.default_rng(0).normal(size=(5, 2))
>>> k(X).shape, k.diag(X).shape, k.sum(X).shape
((5, 5), (5,), (5,))
"""
import collections
import copy
import ctypes
import inspect
import math
import numbers
import re
import sys
import threading
import weakref

import numpy as np

from . import _lib
from ._validation import check_array

__all__ = [
    "Kernel", "RBF", "Matern", "RationalQuadratic", "ExpSineSquared", "DotProduct", "WhiteKernel",
    "ConstantKernel", "Sum", "Product", "Hyperparameter", "as_kernel",
]

DEFAULT_BOUNDS = (1e-5, 1e5)  # scikit-learn's, and gram's when a spec gives none


class Hyperparameter(collections.namedtuple(
        "Hyperparameter", ("name", "value_type", "bounds", "n_elements", "fixed"))):
    """A kernel hyperparameter, as ``sklearn.gaussian_process.kernels.Hyperparameter``.

    ``bounds`` is "fixed" or an array of shape (n_elements, 2) of values (not logs).
    """

    __slots__ = ()

    def __new__(cls, name, value_type, bounds, n_elements=1, fixed=None):
        if not isinstance(bounds, str) or bounds != "fixed":
            bounds = np.atleast_2d(np.asarray(bounds, dtype=np.float64))
            if n_elements > 1 and bounds.shape[0] == 1:
                bounds = np.repeat(bounds, n_elements, 0)
        if fixed is None:
            fixed = isinstance(bounds, str) and bounds == "fixed"
        return super().__new__(cls, name, value_type, bounds, n_elements, fixed)

    def __eq__(self, other):
        return (self.name == other.name and self.value_type == other.value_type
                and np.all(self.bounds == other.bounds) and self.n_elements == other.n_elements
                and self.fixed == other.fixed)

    __hash__ = None

_handle_lock = threading.Lock()


def _num(v, what):
    """A finite number as spec text (repr of the float, round-trip exact)."""
    if isinstance(v, bool) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{what} must be a real number, got {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{what} must be finite, got {f!r}")
    return repr(f)


def _lengthscale(v, what="length_scale"):
    arr = np.asarray(v, dtype=np.float64) if not np.isscalar(v) else None
    if arr is None or arr.ndim == 0:
        return _num(float(v) if arr is None else float(arr), what)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what} must be a number or a non-empty 1-D array, got shape {arr.shape}")
    return "[" + ", ".join(_num(x, what) for x in arr) + "]"


def _is_default_bounds(b):
    return not isinstance(b, str) and np.shape(b) == (2,) and tuple(map(float, b)) == DEFAULT_BOUNDS


def _bounds(key, b, what):
    """The spec text ", <key>_bounds=[lo, hi]" (or "=fixed") for scikit-learn-style bounds ``b``:
    "fixed", or a pair (lo, hi) of values; an ARD kernel's (n_features, 2) array must repeat one
    pair (gram has one pair for all the lengthscales of a kernel). The default (1e-5, 1e5) is left
    out, so gram widens it to include the value (scikit-learn keeps it and starts outside)."""
    if isinstance(b, str):
        if b == "fixed":
            return f", {key}_bounds=fixed"
        raise ValueError(f"{what} must be \"fixed\" or a pair (lower, upper), got {b!r}")
    try:
        arr = np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be \"fixed\" or a pair (lower, upper), got {b!r}") from None
    if arr.ndim == 2 and arr.shape[1] == 2 and arr.shape[0] >= 1:
        if not np.all(arr == arr[0]):
            raise ValueError(
                f"{what}: gram takes one pair of bounds for all the length scales of a kernel, "
                f"got different bounds per dimension {arr.tolist()}")
        arr = arr[0]
    if arr.shape != (2,):
        raise ValueError(f"{what} must be \"fixed\" or a pair (lower, upper), got {b!r}")
    if tuple(arr) == DEFAULT_BOUNDS:
        return ""
    # an open upper bound (np.inf, as scikit-learn allows) is written "inf"
    hi = "inf" if arr[1] == np.inf else _num(arr[1], what)
    return f", {key}_bounds=[{_num(arr[0], what)}, {hi}]"


class _Handle:
    """Owns one C gram_kernel; destroyed when the holder is collected."""

    __slots__ = ("spec", "ptr", "__weakref__")

    def __init__(self, spec):
        self.spec = spec
        self.ptr = ctypes.c_void_p()
        with _lib.Call(work=0) as c:
            status = _lib.lib.gram_kernel_parse(c.ctx, spec.encode(), ctypes.byref(self.ptr))
            if status:
                raise _lib.error(status, f"{c.message()} (kernel spec {spec!r})")
        weakref.finalize(self, _lib.lib.gram_kernel_destroy, self.ptr.value)


def _retitle(e, msg):
    new = type(e)(msg)
    if hasattr(e, "gram_status"):
        new.gram_status = e.gram_status
    return new


def _rename_xy(e):
    """The engine names the query set Y and the data X; for K(X, Y) calls they are swapped."""
    return _retitle(e, re.sub(r"^(X|Y)\b", lambda m: "Y" if m.group(1) == "X" else "X", str(e)))


def _compute_dtype(dtype, *arrays):
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in (np.float64, np.float32):
            raise ValueError(f"dtype must be float64 or float32, got {dtype}")
        return dtype.type
    return np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64


class Kernel:
    """A kernel given by a gram spec string.

    Parameters
    ----------
    spec : str
        A kernel spec in gram's grammar (see ``include/gram.h``), for example
        ``"2*matern52(lengthscale=[1,2]) + white(0.1)"``. Families use gram's parameterisation:
        ``gaussian(lengthscale=l)`` is exp(-|x-y|² / (2 l²)), scikit-learn's ``RBF(l)``.

    Notes
    -----
    All kernels share these methods: ``k(X, Y=None)`` (the Gram matrix), ``k.diag(X)`` and
    ``k.sum(X, Y=None, weights=None, log=False)`` (the engine's reduction, never an N×M array).
    Kernels are immutable in C; changing a parameter on the Python object (``set_params``)
    rebuilds the C kernel on the next call. They may be shared between threads.
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
        spec = self._make_spec()
        h = self.__dict__.get("_h")
        if h is None or h.spec != spec:
            with _handle_lock:
                h = self.__dict__.get("_h")
                if h is None or h.spec != spec:
                    h = _Handle(spec)
                    self.__dict__["_h"] = h
        return h

    @property
    def canonical_spec(self):
        """The library's canonical text for this kernel (numbers printed with %.17g)."""
        h = self._handle()
        n = _lib.lib.gram_kernel_spec(h.ptr, None, 0)
        buf = ctypes.create_string_buffer(n + 1)
        _lib.lib.gram_kernel_spec(h.ptr, buf, n + 1)
        return buf.value.decode()

    # ---- hyperparameters (scikit-learn's protocol) ---------------------------------------------
    #
    # The C kernel lists every positive parameter (fixed ones included) in gram's order. A Python
    # kernel maps its own hyperparameters, in scikit-learn's order, onto those C indices
    # (_items); theta is the log of the free ones (fixed ones left out), as in scikit-learn.

    def _c_n(self):
        """The number of hyperparameters of the C kernel (fixed ones included)."""
        return int(_lib.lib.gram_kernel_n_hyper(self._handle().ptr))

    def _c_theta(self):
        h = self._handle()
        out = np.empty(_lib.lib.gram_kernel_n_hyper(h.ptr))
        _lib.lib.gram_kernel_get_hyper(h.ptr, out.ctypes.data_as(_lib._dp))
        return out

    def _c_bounds(self):
        """(n, 2) log-bounds of every C hyperparameter."""
        h = self._handle()
        n = int(_lib.lib.gram_kernel_n_hyper(h.ptr))
        if not n:
            return np.empty((0, 2))
        lo, hi = np.empty(n), np.empty(n)
        _lib.lib.gram_kernel_get_bounds(h.ptr, lo.ctypes.data_as(_lib._dp), hi.ctypes.data_as(_lib._dp))
        return np.column_stack([lo, hi])

    def _c_fixed(self):
        h = self._handle()
        n = int(_lib.lib.gram_kernel_n_hyper(h.ptr))
        return np.array([bool(_lib.lib.gram_kernel_hyper_fixed(h.ptr, i)) for i in range(n)], dtype=bool)

    def _items(self):
        """This kernel's hyperparameters in its documented order: (name, C indices, bounds)
        triples, bounds "fixed" or (lo, hi) values. A spec kernel lists the C ones, one each."""
        h = self._handle()
        n = int(_lib.lib.gram_kernel_n_hyper(h.ptr))
        b, fixed = np.exp(self._c_bounds()), self._c_fixed()
        return [(_lib.lib.gram_kernel_hyper_name(h.ptr, i).decode(), [i],
                 "fixed" if fixed[i] else (float(b[i, 0]), float(b[i, 1]))) for i in range(n)]

    def _assign(self, c_theta):
        """Sets this kernel's parameters to the C log-hyperparameters ``c_theta`` (all of them)."""
        if np.array_equal(np.asarray(c_theta, dtype=np.float64), self._c_theta()):
            return
        new = _lib.new_handle(_lib.lib.gram_kernel_set_hyper, self._handle().ptr,
                              _lib.as_doubles(c_theta)[1])
        try:
            n = _lib.lib.gram_kernel_spec(new, None, 0)
            buf = ctypes.create_string_buffer(n + 1)
            _lib.lib.gram_kernel_spec(new, buf, n + 1)
        finally:
            _lib.lib.gram_kernel_destroy(new)
        self.spec_string = buf.value.decode()

    def _free(self):
        """C indices of the entries of theta, in order."""
        fixed = self._c_fixed()
        return np.array([i for _, idx, _ in self._items() for i in idx if not fixed[i]], dtype=np.intp)

    @property
    def hyperparameters(self):
        """Every hyperparameter (fixed ones included) as :class:`Hyperparameter` tuples."""
        fixed = self._c_fixed()
        out = []
        for name, idx, b in self._items():
            if fixed[idx].all():
                b = "fixed"
            out.append(Hyperparameter(name, "numeric", b, len(idx)))
        return out

    @property
    def n_dims(self):
        """The number of free hyperparameters: ``len(theta)``."""
        return len(self._free())

    @property
    def theta(self):
        """The log of the free (non-fixed) hyperparameters.

        Order: gram's kernel classes (RBF, Matern, ..., Sum, Product) follow scikit-learn
        (alphabetical within a kernel, k1 before k2), so a translated scikit-learn kernel has the
        same theta; a spec :class:`Kernel` follows gram's (see ``hyperparameter_names``).
        """
        return self._c_theta()[self._free()]

    @theta.setter
    def theta(self, theta):
        free = self._free()
        th = np.asarray(theta, dtype=np.float64).reshape(-1)
        if th.shape != free.shape:
            raise ValueError(f"theta must have {free.size} values, got shape {np.shape(theta)}")
        full = self._c_theta()
        full[free] = th
        self._assign(full)

    @property
    def bounds(self):
        """Log-bounds of the entries of theta, shape (n_dims, 2)."""
        free = self._free()
        return self._c_bounds()[free] if free.size else np.empty((0, 2))

    @property
    def hyperparameter_names(self):
        """gram's names of the entries of ``theta`` ("leaf1.lengthscale", "scale1", ...)."""
        h = self._handle()
        return [_lib.lib.gram_kernel_hyper_name(h.ptr, int(i)).decode() for i in self._free()]

    def clone_with_theta(self, theta):
        """A copy of this kernel with log-hyperparameters ``theta`` (the free ones)."""
        new = copy.deepcopy(self)
        new.theta = theta
        return new

    @property
    def requires_vector_input(self):
        return True

    def is_nonnegative(self):
        """Whether every value of the kernel is >= 0 (so ``sum(..., log=True)`` is defined)."""
        return bool(_lib.lib.gram_kernel_is_nonnegative(self._handle().ptr))

    # ---- evaluation ---------------------------------------------------------------------------

    def __call__(self, X, Y=None, eval_gradient=False):
        """The Gram matrix ``K[i, j] = k(X[i], Y[j])``.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        Y : array-like of shape (n_samples_Y, n_features), default=None
            If None, ``k(X, X)`` is computed as a symmetric call: a :class:`WhiteKernel` adds its
            noise on the diagonal (as scikit-learn's).
        eval_gradient : bool, default=False
            Not supported (gram's analytic gradients are available per pair in C only).

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
            float32 when the inputs are float32, else float64.
        """
        if eval_gradient:
            raise ValueError("eval_gradient=True is not supported by gram kernels")
        return _matrix(self, X, Y)

    def diag(self, X):
        """The diagonal ``k(X[i], X[i])`` (white noise included), shape (n_samples,)."""
        X = check_array(X, name="X")
        dt = _compute_dtype(None, X)
        Xv = _lib.as_viewable(X, dt)
        out = np.empty(Xv.shape[0], dtype=dt)
        h = self._handle()
        Xa, Oa = _lib.view(Xv, "X"), _lib.view(out.reshape(-1, 1), "out")
        with _lib.Call(work=Xv.size) as c:
            c.check(_lib.lib.gram_kernel_diag(c.ctx, h.ptr, ctypes.byref(Xa), ctypes.byref(Oa)))
        return out

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

    def __add__(self, other):
        return Sum(self, _operand(other))

    def __radd__(self, other):
        return Sum(_operand(other), self)

    def __mul__(self, other):
        return Product(self, _operand(other))

    def __rmul__(self, other):
        return Product(_operand(other), self)

    def __pow__(self, other):
        raise ValueError("gram kernels do not support exponentiation (k ** p)")

    # ---- parameters (the scikit-learn kernel protocol) ----------------------------------------

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep=True):
        """The constructor parameters (and those of sub-kernels with ``deep``, as ``k1__x``)."""
        params = {}
        names = ["spec"] if type(self) is Kernel else self._param_names()
        for name in names:
            value = self.spec_string if name == "spec" else getattr(self, name)
            params[name] = value
            if deep and isinstance(value, Kernel):
                for k, v in value.get_params(deep=True).items():
                    params[f"{name}__{k}"] = v
        return params

    def set_params(self, **params):
        """Sets parameters; the C kernel is rebuilt on the next call."""
        valid = self.get_params(deep=True)
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for kernel {self!r}")
            if sub:
                getattr(self, name).set_params(**{sub: value})
            elif name == "spec":
                self.spec_string = value
            else:
                setattr(self, name, value)
        return self

    def __eq__(self, other):
        if not isinstance(other, Kernel):
            return NotImplemented
        return type(self) is type(other) and self.spec == other.spec

    __hash__ = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_h", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        if type(self) is Kernel:
            return f"Kernel({self.spec_string!r})"
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self.get_params(deep=False).items()
                         if not (k.endswith("_bounds") and _is_default_bounds(v)))
        return f"{type(self).__name__}({args})"


def _fmt(v):
    if isinstance(v, np.ndarray):
        return "[" + ", ".join(f"{x:.3g}" for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.3g}"
    return repr(v)


def _operand(other):
    if isinstance(other, (numbers.Real, np.floating, np.integer)) and not isinstance(other, bool):
        return ConstantKernel(float(other))
    return as_kernel(other)


def as_kernel(kernel):
    """A gram Kernel from a Kernel, a spec string, or a scikit-learn kernel object.

    Raises TypeError for other objects and ValueError for scikit-learn kernels gram cannot
    compute exactly (Exponentiation, ...).
    """
    if isinstance(kernel, Kernel):
        return kernel
    if isinstance(kernel, str):
        return Kernel(kernel)
    mod = type(kernel).__module__ or ""
    skk = sys.modules.get("sklearn.gaussian_process.kernels")
    if mod.startswith("sklearn.") or (skk is not None and isinstance(kernel, skk.Kernel)):
        from ._sklearn import from_sklearn
        return from_sklearn(kernel)
    raise TypeError(
        f"kernel must be a gram Kernel, a spec string or a scikit-learn kernel, got {type(kernel).__name__}")


# ---- the families ----------------------------------------------------------------------------


class _Leaf(Kernel):
    """One gram family; _HYPERS lists (attribute, gram parameter key, bounds attribute) in
    scikit-learn's order (alphabetical by attribute)."""

    _HYPERS = ()

    def _items(self):
        h = self._handle()
        names = [_lib.lib.gram_kernel_hyper_name(h.ptr, i).decode()
                 for i in range(_lib.lib.gram_kernel_n_hyper(h.ptr))]
        out = []
        for attr, key, battr in self._HYPERS:
            idx = [i for i, nm in enumerate(names) if nm == f"leaf1.{key}" or nm.startswith(f"leaf1.{key}[")]
            if idx:  # a zero sigma_0 or noise_level is no hyperparameter in gram
                out.append((attr, idx, getattr(self, battr)))
        return out

    def _assign(self, c_theta):
        c_theta = np.asarray(c_theta, dtype=np.float64)
        current = self._c_theta()
        for attr, idx, _ in self._items():
            if np.array_equal(c_theta[idx], current[idx]):
                continue  # unchanged (fixed, or not learned): keep the value exactly as given
            v = np.exp(c_theta[idx])
            setattr(self, attr, v if len(idx) > 1 else v[0])


class RBF(_Leaf):
    """Radial basis function: ``exp(-|x - y|² / (2 length_scale²))`` (gram: ``gaussian``).

    Parameters
    ----------
    length_scale : float or array-like of shape (n_features,), default=1.0
        One value (isotropic) or one per feature (anisotropic, ARD).
    length_scale_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)
        The range of ``length_scale`` for learning (GaussianProcessRegressor); "fixed" keeps it.
        One pair applies to every ARD length scale.
    """

    _HYPERS = (("length_scale", "lengthscale", "length_scale_bounds"),)

    def __init__(self, length_scale=1.0, length_scale_bounds=DEFAULT_BOUNDS):
        self.length_scale = length_scale
        self.length_scale_bounds = length_scale_bounds

    def _make_spec(self):
        return (f"gaussian(lengthscale={_lengthscale(self.length_scale)}"
                f"{_bounds('lengthscale', self.length_scale_bounds, 'length_scale_bounds')})")


_MATERN = {0.5: "matern12", 1.5: "matern32", 2.5: "matern52"}


class Matern(_Leaf):
    """Matérn kernel with smoothness ``nu`` in {0.5, 1.5, 2.5} (or inf, the RBF).

    Parameters
    ----------
    length_scale : float or array-like of shape (n_features,), default=1.0
    length_scale_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)
    nu : {0.5, 1.5, 2.5, inf}, default=1.5
        gram computes the three half-integer Matérn kernels in closed form (matern12, matern32,
        matern52) and nu=inf as the RBF; other values raise ValueError.
    """

    _HYPERS = (("length_scale", "lengthscale", "length_scale_bounds"),)

    def __init__(self, length_scale=1.0, length_scale_bounds=DEFAULT_BOUNDS, nu=1.5):
        self.length_scale = length_scale
        self.length_scale_bounds = length_scale_bounds
        self.nu = nu
        self._family()

    def _family(self):
        nu = self.nu
        if isinstance(nu, (numbers.Real, np.floating, np.integer)) and not isinstance(nu, bool):
            if float(nu) in _MATERN:
                return _MATERN[float(nu)]
            if float(nu) == math.inf:
                return "gaussian"
        raise ValueError(f"Matern: nu must be 0.5, 1.5, 2.5 or inf (closed forms), got {nu!r}")

    def _make_spec(self):
        return (f"{self._family()}(lengthscale={_lengthscale(self.length_scale)}"
                f"{_bounds('lengthscale', self.length_scale_bounds, 'length_scale_bounds')})")


class RationalQuadratic(_Leaf):
    """Rational quadratic: ``(1 + |x - y|² / (2 alpha length_scale²))^(-alpha)``.

    Parameters
    ----------
    length_scale : float, default=1.0
    alpha : float, default=1.0
    length_scale_bounds, alpha_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)

    ``theta`` is [log alpha, log length_scale] (scikit-learn's order; gram's C order is the
    reverse).
    """

    _HYPERS = (("alpha", "alpha", "alpha_bounds"),
               ("length_scale", "lengthscale", "length_scale_bounds"))

    def __init__(self, length_scale=1.0, alpha=1.0, length_scale_bounds=DEFAULT_BOUNDS,
                 alpha_bounds=DEFAULT_BOUNDS):
        self.length_scale = length_scale
        self.alpha = alpha
        self.length_scale_bounds = length_scale_bounds
        self.alpha_bounds = alpha_bounds

    def _make_spec(self):
        return (f"rational_quadratic(lengthscale={_lengthscale(self.length_scale)}"
                f"{_bounds('lengthscale', self.length_scale_bounds, 'length_scale_bounds')}, "
                f"alpha={_num(self.alpha, 'alpha')}{_bounds('alpha', self.alpha_bounds, 'alpha_bounds')})")


class ExpSineSquared(_Leaf):
    """Periodic kernel: ``exp(-2 sin²(pi |x - y| / periodicity) / length_scale²)``.

    Parameters
    ----------
    length_scale : float, default=1.0
    periodicity : float, default=1.0
    length_scale_bounds, periodicity_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)
    """

    _HYPERS = (("length_scale", "lengthscale", "length_scale_bounds"),
               ("periodicity", "period", "periodicity_bounds"))

    def __init__(self, length_scale=1.0, periodicity=1.0, length_scale_bounds=DEFAULT_BOUNDS,
                 periodicity_bounds=DEFAULT_BOUNDS):
        self.length_scale = length_scale
        self.periodicity = periodicity
        self.length_scale_bounds = length_scale_bounds
        self.periodicity_bounds = periodicity_bounds

    def _make_spec(self):
        return (f"periodic(lengthscale={_num(self.length_scale, 'length_scale')}"
                f"{_bounds('lengthscale', self.length_scale_bounds, 'length_scale_bounds')}, "
                f"period={_num(self.periodicity, 'periodicity')}"
                f"{_bounds('period', self.periodicity_bounds, 'periodicity_bounds')})")


class DotProduct(_Leaf):
    """Dot product: ``sigma_0² + x · y`` (gram: ``linear``).

    Parameters
    ----------
    sigma_0 : float, default=1.0
    sigma_0_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)
        sigma_0 = 0 is no hyperparameter in gram (scikit-learn's theta would hold log 0).
    """

    _HYPERS = (("sigma_0", "sigma0", "sigma_0_bounds"),)

    def __init__(self, sigma_0=1.0, sigma_0_bounds=DEFAULT_BOUNDS):
        self.sigma_0 = sigma_0
        self.sigma_0_bounds = sigma_0_bounds

    def _make_spec(self):
        v = _num(self.sigma_0, "sigma_0")
        b = _bounds("sigma0", self.sigma_0_bounds, "sigma_0_bounds") if float(v) > 0 else ""
        # gram's linear kernel also scales x by a lengthscale; DotProduct has none to learn
        return f"linear(sigma0={v}{b}, lengthscale_bounds=fixed)"


class WhiteKernel(_Leaf):
    """White noise: ``noise_level`` where x is y in a symmetric call (``k(X)``), else 0.

    Parameters
    ----------
    noise_level : float, default=1.0
    noise_level_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)
    """

    _HYPERS = (("noise_level", "noise", "noise_level_bounds"),)

    def __init__(self, noise_level=1.0, noise_level_bounds=DEFAULT_BOUNDS):
        self.noise_level = noise_level
        self.noise_level_bounds = noise_level_bounds

    def _make_spec(self):
        v = _num(self.noise_level, "noise_level")
        b = _bounds("noise", self.noise_level_bounds, "noise_level_bounds") if float(v) > 0 else ""
        return f"white(noise={v}{b})"


class ConstantKernel(_Leaf):
    """Constant: ``constant_value`` for every pair. As a factor of a product it is a scale.

    Parameters
    ----------
    constant_value : float, default=1.0
    constant_value_bounds : pair of floats >= 0 or "fixed", default=(1e-5, 1e5)
    """

    _HYPERS = (("constant_value", "value", "constant_value_bounds"),)

    def __init__(self, constant_value=1.0, constant_value_bounds=DEFAULT_BOUNDS):
        self.constant_value = constant_value
        self.constant_value_bounds = constant_value_bounds

    def _positive(self):
        return float(_num(self.constant_value, "constant_value")) > 0

    def _is_scale(self):
        """A product factor that gram computes as a scale ``c*(k)`` (default bounds only)."""
        return _is_default_bounds(self.constant_value_bounds)

    def _make_spec(self):
        c = _num(self.constant_value, "constant_value")
        if float(c) > 0:
            return f"constant(value={c}{_bounds('value', self.constant_value_bounds, 'constant_value_bounds')})"
        return f"{c}*constant(value=1.0, value_bounds=fixed)"

    def _items(self):
        return super()._items() if self._positive() else []


class _Composite(Kernel):
    def _slots(self):
        """(prefix, child kernel, the C indices of the child's C hyperparameters in this kernel)."""
        raise NotImplementedError

    def _items(self):
        out = []
        for prefix, child, idx in self._slots():
            for name, cidx, b in child._items():
                out.append((f"{prefix}__{name}", [idx[i] for i in cidx], b))
        return out

    def _assign(self, c_theta):
        c_theta = np.asarray(c_theta, dtype=np.float64)
        for attr in ("k1", "k2"):  # keep the children that get the new values
            if not isinstance(getattr(self, attr), Kernel):
                setattr(self, attr, as_kernel(getattr(self, attr)))
        for prefix, child, idx in self._slots():
            if len(idx) and len(idx) == child._c_n():
                child._assign(c_theta[np.asarray(idx, dtype=np.intp)])


class Sum(_Composite):
    """``k1 + k2``."""

    def __init__(self, k1, k2):
        self.k1 = k1
        self.k2 = k2

    def _make_spec(self):
        return f"{as_kernel(self.k1).spec} + {as_kernel(self.k2).spec}"

    def _slots(self):
        a, b = as_kernel(self.k1), as_kernel(self.k2)
        n1, n2 = a._c_n(), b._c_n()
        return [("k1", a, list(range(n1))), ("k2", b, list(range(n1, n1 + n2)))]

    def __repr__(self):
        return f"{self.k1!r} + {self.k2!r}"


def _scale_factor(k):
    return type(k) is ConstantKernel and k._is_scale()


class Product(_Composite):
    """``k1 * k2``; a :class:`ConstantKernel` factor with default bounds becomes a scale of the
    other factor (``c*(k)``), one with explicit bounds a ``constant`` leaf of the product."""

    def __init__(self, k1, k2):
        self.k1 = k1
        self.k2 = k2

    def _make_spec(self):
        a, b = as_kernel(self.k1), as_kernel(self.k2)
        if _scale_factor(a):
            return f"{_num(a.constant_value, 'constant_value')}*({b.spec})"
        if _scale_factor(b):
            return f"{_num(b.constant_value, 'constant_value')}*({a.spec})"
        return f"({a.spec}) * ({b.spec})"

    def _slots(self):
        # A scale's hyperparameter comes right after those of the expression it multiplies (and
        # there is none for c <= 0).
        a, b = as_kernel(self.k1), as_kernel(self.k2)
        if _scale_factor(a):
            nb = b._c_n()
            return [("k1", a, [nb] if a._positive() else []), ("k2", b, list(range(nb)))]
        if _scale_factor(b):
            na = a._c_n()
            return [("k1", a, list(range(na))), ("k2", b, [na] if b._positive() else [])]
        n1, n2 = a._c_n(), b._c_n()
        return [("k1", a, list(range(n1))), ("k2", b, list(range(n1, n1 + n2)))]

    def __repr__(self):
        return f"{self.k1!r} * {self.k2!r}"


# ---- the calls -------------------------------------------------------------------------------


def _dims_agree(X, Y):
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"Incompatible dimension for X and Y matrices: X.shape[1] == {X.shape[1]} "
            f"while Y.shape[1] == {Y.shape[1]}")


def _not_symmetric(Xv, Yv, h):
    """An explicit Y is never the symmetric call, even when it is the same array as X: as in
    scikit-learn, ``k(X, X)`` has no white noise and only ``k(X)`` (Y=None) has. The engine takes
    identical views for a symmetric call, so such a Y is copied (only if the kernel has white)."""
    if (Yv.__array_interface__["data"][0] == Xv.__array_interface__["data"][0]
            and Yv.shape == Xv.shape and Yv.strides == Xv.strides and "white" in h.spec):
        return Yv.copy()
    return Yv


def _matrix(kernel, X, Y, dtype=None, threads=None):
    kernel = as_kernel(kernel)
    X = check_array(X, name="X")
    if Y is not None:
        Y = check_array(Y, name="Y")
        _dims_agree(X, Y)
    dt = _compute_dtype(dtype, X) if Y is None else _compute_dtype(dtype, X, Y)
    Xv = _lib.as_viewable(X, dt)
    h = kernel._handle()
    if Y is None:
        out = np.empty((Xv.shape[0], Xv.shape[0]), dtype=dt)
        Xa, Oa = _lib.view(Xv, "X"), _lib.view(out, "out")
        with _lib.Call(threads, work=out.size * max(1, Xv.shape[1])) as c:
            c.check(_lib.lib.gram_kernel_matrix(c.ctx, h.ptr, None, ctypes.byref(Xa), ctypes.byref(Oa)))
        return out
    Yv = _lib.as_viewable(Y, dt)
    Yv = _not_symmetric(Xv, Yv, h)
    out = np.empty((Xv.shape[0], Yv.shape[0]), dtype=dt)
    # gram: out[i, j] = k(query_i, data_j); the rows of K(X, Y) are X, the queries.
    Qa, Da, Oa = _lib.view(Xv, "X"), _lib.view(Yv, "Y"), _lib.view(out, "out")
    try:
        with _lib.Call(threads, work=out.size * max(1, Xv.shape[1])) as c:
            c.check(_lib.lib.gram_kernel_matrix(c.ctx, h.ptr, ctypes.byref(Qa), ctypes.byref(Da),
                                                ctypes.byref(Oa)))
    except ValueError as e:
        raise _rename_xy(e) from None
    return out


def _sum(kernel, X, Y, weights, log, dtype, threads):
    kernel = as_kernel(kernel)
    X = check_array(X, name="X")
    if Y is not None:
        Y = check_array(Y, name="Y")
        _dims_agree(X, Y)
    dt = _compute_dtype(dtype, X) if Y is None else _compute_dtype(dtype, X, Y)
    Xv = _lib.as_viewable(X, dt)
    Yv = Xv if Y is None else _lib.as_viewable(Y, dt)
    N, M = Xv.shape[0], Yv.shape[0]
    W = None
    if weights is not None:
        W = check_array(weights, name="weights", ensure_2d=False, min_samples=0)
        if W.ndim not in (1, 2):
            raise ValueError(f"weights must be 1-D (N,) or 2-D (N, V), got {W.ndim}-D")
        if W.shape[0] != N:
            raise ValueError(f"weights has {W.shape[0]} rows but X has {N} data points")
    vector = W is None or W.ndim == 1
    out = np.empty((M,) if vector else (M, W.shape[1]), dtype=dt)
    Wa = None
    if W is not None:
        W2 = W.reshape(-1, 1) if W.ndim == 1 else W
        W2 = _lib.as_viewable(W2)
        Wa = ctypes.byref(_lib.view(W2, "weights"))
    h = kernel._handle()
    if Y is not None:
        Yv = _not_symmetric(Xv, Yv, h)
    Xa = _lib.view(Xv, "X")
    Ya = Xa if Y is None else _lib.view(Yv, "Y")
    Oa = _lib.view(out.reshape(M, -1) if vector else out, "out")
    fn = _lib.lib.gram_kernel_logsum if log else _lib.lib.gram_kernel_sum
    try:
        with _lib.Call(threads, work=N * M * max(1, Xv.shape[1])) as c:
            c.check(fn(c.ctx, h.ptr, ctypes.byref(Ya), ctypes.byref(Xa), Wa, ctypes.byref(Oa)))
    except ValueError as e:
        if str(e).startswith("W"):  # the engine calls the weights W
            raise _retitle(e, re.sub(r"^W\b", "weights", str(e))) from None
        raise
    return out
