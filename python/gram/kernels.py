"""Kernels: scikit-learn's names and parameterisation, evaluated by libgram.

Every kernel maps to a gram spec string (``RBF(2.0).spec == "gaussian(lengthscale=2.0)"``) and
holds a C ``gram_kernel`` handle, created from that spec on first use and destroyed with the
object. Kernels compose with ``+`` and ``*`` (and scalars) as in
``sklearn.gaussian_process.kernels``; any spec is available through ``Kernel("...")``.

>>> import numpy as np, gram
>>> k = 2.0 * gram.Matern(length_scale=[1.0, 2.0], nu=2.5) + gram.WhiteKernel(0.1)
>>> k.spec
'2.0*(matern52(lengthscale=[1.0, 2.0])) + white(noise=0.1)'
>>> X = np.random.default_rng(0).normal(size=(5, 2))
>>> k(X).shape, k.diag(X).shape, k.sum(X).shape
((5, 5), (5,), (5,))
"""
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
    "ConstantKernel", "Sum", "Product", "as_kernel",
]

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

    @property
    def n_dims(self):
        """The number of hyperparameters (gram_kernel_n_hyper)."""
        return int(_lib.lib.gram_kernel_n_hyper(self._handle().ptr))

    @property
    def theta(self):
        """The log-transformed positive hyperparameters, in gram's order (see gram.h)."""
        h = self._handle()
        out = np.empty(_lib.lib.gram_kernel_n_hyper(h.ptr))
        _lib.lib.gram_kernel_get_hyper(h.ptr, out.ctypes.data_as(_lib._dp))
        return out

    @property
    def hyperparameter_names(self):
        """Names of the entries of ``theta`` ("leaf1.lengthscale", "scale1", ...)."""
        h = self._handle()
        n = _lib.lib.gram_kernel_n_hyper(h.ptr)
        return [_lib.lib.gram_kernel_hyper_name(h.ptr, i).decode() for i in range(n)]

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

    def clone_with_theta(self, theta):
        """A Kernel (from its canonical spec) with log-hyperparameters ``theta``."""
        h = self._handle()
        th, p = _lib.as_doubles(theta)
        if th.shape != (self.n_dims,):
            raise ValueError(f"theta must have {self.n_dims} values, got shape {th.shape}")
        new = _lib.new_handle(_lib.lib.gram_kernel_set_hyper, h.ptr, p)
        try:
            n = _lib.lib.gram_kernel_spec(new, None, 0)
            buf = ctypes.create_string_buffer(n + 1)
            _lib.lib.gram_kernel_spec(new, buf, n + 1)
        finally:
            _lib.lib.gram_kernel_destroy(new)
        return Kernel(buf.value.decode())

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
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self.get_params(deep=False).items())
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


class RBF(Kernel):
    """Radial basis function: ``exp(-|x - y|² / (2 length_scale²))`` (gram: ``gaussian``).

    Parameters
    ----------
    length_scale : float or array-like of shape (n_features,), default=1.0
        One value (isotropic) or one per feature (anisotropic, ARD).
    """

    def __init__(self, length_scale=1.0):
        self.length_scale = length_scale

    def _make_spec(self):
        return f"gaussian(lengthscale={_lengthscale(self.length_scale)})"


_MATERN = {0.5: "matern12", 1.5: "matern32", 2.5: "matern52"}


class Matern(Kernel):
    """Matérn kernel with smoothness ``nu`` in {0.5, 1.5, 2.5} (or inf, the RBF).

    Parameters
    ----------
    length_scale : float or array-like of shape (n_features,), default=1.0
    nu : {0.5, 1.5, 2.5, inf}, default=1.5
        gram computes the three half-integer Matérn kernels in closed form (matern12, matern32,
        matern52) and nu=inf as the RBF; other values raise ValueError.
    """

    def __init__(self, length_scale=1.0, nu=1.5):
        self.length_scale = length_scale
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
        return f"{self._family()}(lengthscale={_lengthscale(self.length_scale)})"


class RationalQuadratic(Kernel):
    """Rational quadratic: ``(1 + |x - y|² / (2 alpha length_scale²))^(-alpha)``.

    Parameters
    ----------
    length_scale : float, default=1.0
    alpha : float, default=1.0
    """

    def __init__(self, length_scale=1.0, alpha=1.0):
        self.length_scale = length_scale
        self.alpha = alpha

    def _make_spec(self):
        return (f"rational_quadratic(lengthscale={_lengthscale(self.length_scale)}, "
                f"alpha={_num(self.alpha, 'alpha')})")


class ExpSineSquared(Kernel):
    """Periodic kernel: ``exp(-2 sin²(pi |x - y| / periodicity) / length_scale²)``.

    Parameters
    ----------
    length_scale : float, default=1.0
    periodicity : float, default=1.0
    """

    def __init__(self, length_scale=1.0, periodicity=1.0):
        self.length_scale = length_scale
        self.periodicity = periodicity

    def _make_spec(self):
        return (f"periodic(lengthscale={_num(self.length_scale, 'length_scale')}, "
                f"period={_num(self.periodicity, 'periodicity')})")


class DotProduct(Kernel):
    """Dot product: ``sigma_0² + x · y`` (gram: ``linear``).

    Parameters
    ----------
    sigma_0 : float, default=1.0
    """

    def __init__(self, sigma_0=1.0):
        self.sigma_0 = sigma_0

    def _make_spec(self):
        return f"linear(sigma0={_num(self.sigma_0, 'sigma_0')})"


class WhiteKernel(Kernel):
    """White noise: ``noise_level`` where x is y in a symmetric call (``k(X)``), else 0.

    Parameters
    ----------
    noise_level : float, default=1.0
    """

    def __init__(self, noise_level=1.0):
        self.noise_level = noise_level

    def _make_spec(self):
        return f"white(noise={_num(self.noise_level, 'noise_level')})"


class ConstantKernel(Kernel):
    """Constant: ``constant_value`` for every pair. As a factor of a product it is a scale.

    Parameters
    ----------
    constant_value : float, default=1.0
    """

    def __init__(self, constant_value=1.0):
        self.constant_value = constant_value

    def _make_spec(self):
        c = _num(self.constant_value, "constant_value")
        return f"constant(value={c})" if float(c) > 0 else f"{c}*constant(value=1.0)"


class Sum(Kernel):
    """``k1 + k2``."""

    def __init__(self, k1, k2):
        self.k1 = k1
        self.k2 = k2

    def _make_spec(self):
        return f"{as_kernel(self.k1).spec} + {as_kernel(self.k2).spec}"

    def __repr__(self):
        return f"{self.k1!r} + {self.k2!r}"


class Product(Kernel):
    """``k1 * k2``; a :class:`ConstantKernel` factor becomes a scale of the other factor."""

    def __init__(self, k1, k2):
        self.k1 = k1
        self.k2 = k2

    def _make_spec(self):
        a, b = as_kernel(self.k1), as_kernel(self.k2)
        if type(a) is ConstantKernel:
            return f"{_num(a.constant_value, 'constant_value')}*({b.spec})"
        if type(b) is ConstantKernel:
            return f"{_num(b.constant_value, 'constant_value')}*({a.spec})"
        return f"({a.spec}) * ({b.spec})"

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
