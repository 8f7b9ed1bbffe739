"""Kernels: scikit-learn's classes and parameterisation, evaluated by libgram.

Every kernel maps to a gram spec string (``RBF(2.0).spec == "gaussian(lengthscale=2.0)"``) and
holds a C ``gram_kernel`` handle, created from that spec on first use and destroyed with the
object. Kernels compose with ``+``, ``*``, ``**`` and numbers as in
``sklearn.gaussian_process.kernels``; any spec is available through ``Kernel("...")``.

Where scikit-learn is installed, gram's kernel classes are subclasses of its classes (``RBF`` of
``sklearn.gaussian_process.kernels.RBF``, ``Sum`` of its ``Sum`` and ``KernelOperator``, every
one of its ``Kernel``), so scikit-learn's functions and ``isinstance`` checks accept them; without
scikit-learn they provide the same protocol on their own. The protocol is scikit-learn's:
``theta`` (the log of the free hyperparameters), ``bounds``, ``hyperparameters`` and the
``hyperparameter_<name>`` attributes, ``n_dims``, ``clone_with_theta``, ``get_params`` /
``set_params``, ``is_stationary()``, ``requires_vector_input``, ``diag`` and
``k(X, Y=None, eval_gradient=False)``, whose gradient comes from libgram's analytic derivatives.

The classes are built on first use (PEP 562), so ``import gram`` does not import scikit-learn
(about a second); the first ``gram.RBF`` (or any kernel class) does, where it is installed.

>>> import numpy as np, gram
>>> k = 2.0 * gram.Matern(length_scale=[1.0, 2.0], nu=2.5) + gram.WhiteKernel(0.1)
>>> k.spec
'2.0*(matern52(lengthscale=[1.0, 2.0])) + white(noise=0.1)'
>>> X = np.random.default_rng(0).normal(size=(5, 2))
>>> K, dK = k(X, eval_gradient=True)
>>> K.shape, dK.shape, k.diag(X).shape, k.sum(X).shape
((5, 5), (5, 5, 4), (5,), (5,))
"""
import ctypes
import re
import threading
import weakref

import numpy as np

from . import _lib
from ._validation import check_array

# The public kernel classes, defined in _kernel_classes (which imports scikit-learn when it can).
_CLASSES = (
    "Kernel", "RBF", "Matern", "RationalQuadratic", "ExpSineSquared", "DotProduct", "WhiteKernel",
    "ConstantKernel", "PairwiseKernel", "KernelOperator", "Sum", "Product", "Exponentiation",
    "CompoundKernel", "Hyperparameter",
)

__all__ = list(_CLASSES) + ["as_kernel"]

DEFAULT_BOUNDS = (1e-5, 1e5)  # scikit-learn's, and gram's when a spec gives none


def _classes():
    from . import _kernel_classes
    return _kernel_classes


def __getattr__(name):
    if name in _CLASSES:
        return getattr(_classes(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_CLASSES))


def as_kernel(kernel):
    """A gram kernel from a gram kernel, a spec string, or a scikit-learn kernel object.

    Raises TypeError for other objects and ValueError for scikit-learn kernels gram cannot
    translate (a user's own subclass of scikit-learn's ``Kernel``, ``PairwiseKernel`` with a
    metric gram does not compute, ...).
    """
    kc = _classes()
    if isinstance(kernel, kc.Kernel):
        return kernel
    if isinstance(kernel, str):
        return kc.Kernel(kernel)
    if kc.is_sklearn_kernel(kernel):
        from ._sklearn import from_sklearn
        return from_sklearn(kernel)
    raise TypeError(
        f"kernel must be a gram Kernel, a spec string or a scikit-learn kernel, got {type(kernel).__name__}")


# ---- the C kernel ----------------------------------------------------------------------------

_handle_lock = threading.Lock()


class _Handle:
    """Owns one C gram_kernel; destroyed when the holder is collected."""

    __slots__ = ("spec", "ptr", "__weakref__")

    def __init__(self, spec):
        text = _lib.c_str(spec, "kernel spec")  # a NUL would end the spec early in C
        self.spec = spec
        self.ptr = ctypes.c_void_p()
        with _lib.Call(work=0) as c:
            status = _lib.lib.gram_kernel_parse(c.ctx, text, ctypes.byref(self.ptr))
            if status:
                raise _lib.error(status, f"{c.message()} (kernel spec {spec!r})")
        weakref.finalize(self, _lib.lib.gram_kernel_destroy, self.ptr.value)

    def n_hyper(self):
        return int(_lib.lib.gram_kernel_n_hyper(self.ptr))

    def theta(self):
        out = np.empty(self.n_hyper())
        _lib.lib.gram_kernel_get_hyper(self.ptr, out.ctypes.data_as(_lib._dp))
        return out

    def names(self):
        return [_lib.lib.gram_kernel_hyper_name(self.ptr, i).decode() for i in range(self.n_hyper())]

    def bounds(self):
        """(n, 2) log-bounds of every C hyperparameter."""
        n = self.n_hyper()
        lo, hi = np.empty(n), np.empty(n)
        if n:
            _lib.lib.gram_kernel_get_bounds(self.ptr, lo.ctypes.data_as(_lib._dp), hi.ctypes.data_as(_lib._dp))
        return np.column_stack([lo, hi])

    def fixed(self):
        return np.array([bool(_lib.lib.gram_kernel_hyper_fixed(self.ptr, i)) for i in range(self.n_hyper())],
                        dtype=bool)

    def canonical(self):
        n = _lib.lib.gram_kernel_spec(self.ptr, None, 0)
        buf = ctypes.create_string_buffer(n + 1)
        _lib.lib.gram_kernel_spec(self.ptr, buf, n + 1)
        return buf.value.decode()


def _handle_for(kernel):
    """The C kernel of any kernel argument; a spec string needs no kernel class (so a kernel sum
    over a string does not import scikit-learn)."""
    if isinstance(kernel, str):
        return _Handle(kernel)
    return as_kernel(kernel)._handle()


def _handle_of(obj, spec):
    """The cached handle of ``obj`` for ``spec`` (rebuilt when the spec changed)."""
    h = obj.__dict__.get("_h")
    if h is None or h.spec != spec:
        with _handle_lock:
            h = obj.__dict__.get("_h")
            if h is None or h.spec != spec:
                h = _Handle(spec)
                obj.__dict__["_h"] = h
    return h


# ---- the calls -------------------------------------------------------------------------------


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


def _check_xy(X, Y):
    X = check_array(X, name="X")
    if Y is not None:
        Y = check_array(Y, name="Y")
        _dims_agree(X, Y)
    return X, Y


def _matrix(kernel, X, Y, dtype=None, threads=None, checked=False):
    """K(X, Y) by gram_kernel_matrix (Y None: the symmetric call)."""
    h = _handle_for(kernel)
    if not checked:
        X, Y = _check_xy(X, Y)
    dt = _compute_dtype(dtype, X) if Y is None else _compute_dtype(dtype, X, Y)
    Xv = _lib.as_viewable(X, dt, "X")
    if Y is None:
        out = _lib.empty((Xv.shape[0], Xv.shape[0]), dt, "the Gram matrix")
        Xa, Oa = _lib.view(Xv, "X"), _lib.view(out, "out")
        with _lib.Call(threads, work=out.size * max(1, Xv.shape[1])) as c:
            c.check(_lib.lib.gram_kernel_matrix(c.ctx, h.ptr, None, ctypes.byref(Xa), ctypes.byref(Oa)))
        return out
    Yv = _not_symmetric(Xv, _lib.as_viewable(Y, dt, "Y"), h)
    out = _lib.empty((Xv.shape[0], Yv.shape[0]), dt, "the Gram matrix")
    # gram: out[i, j] = k(query_i, data_j); the rows of K(X, Y) are X, the queries.
    Qa, Da, Oa = _lib.view(Xv, "X"), _lib.view(Yv, "Y"), _lib.view(out, "out")
    try:
        with _lib.Call(threads, work=out.size * max(1, Xv.shape[1])) as c:
            c.check(_lib.lib.gram_kernel_matrix(c.ctx, h.ptr, ctypes.byref(Qa), ctypes.byref(Da),
                                                ctypes.byref(Oa)))
    except ValueError as e:
        raise _rename_xy(e) from None
    return out


def _matrix_grad(kernel, X, Y, threads=None):
    """(K, G): K(X, Y) and its gradient in every C log-hyperparameter, shape (n_X, n_Y, P), by
    one gram_kernel_matrix_grad call; float64 whatever the inputs. X, Y already checked."""
    _lib.need("gram_kernel_matrix_grad")
    h = kernel._handle()
    Xv = _lib.as_viewable(X, np.float64, "X")
    Yv = None if Y is None else _not_symmetric(Xv, _lib.as_viewable(Y, np.float64, "Y"), h)
    n, m, p = Xv.shape[0], (Xv if Yv is None else Yv).shape[0], h.n_hyper()
    out = _lib.empty((n, m), np.float64, "the Gram matrix")
    grad = _lib.empty((n, m, p), np.float64, "the kernel gradient")
    Xa, Oa = ctypes.byref(_lib.view(Xv, "X")), ctypes.byref(_lib.view(out, "out"))
    # gram: out[i, j] = k(query_i, data_j); the rows of K(X, Y) are X, the queries.
    queries, data = (None, Xa) if Yv is None else (Xa, ctypes.byref(_lib.view(Yv, "Y")))
    try:
        with _lib.Call(threads, work=out.size * max(1, Xv.shape[1], p)) as c:
            c.check(_lib.lib.gram_kernel_matrix_grad(c.ctx, h.ptr, queries, data, Oa,
                                                     grad.ctypes.data_as(_lib._dp)))
    except ValueError as e:
        raise (e if Yv is None else _rename_xy(e)) from None
    return out, grad


def _diag(kernel, X, threads=None):
    dt = _compute_dtype(None, X)
    Xv = _lib.as_viewable(X, dt, "X")
    out = _lib.empty(Xv.shape[0], dt, "the kernel diagonal")
    h = kernel._handle()
    Xa, Oa = _lib.view(Xv, "X"), _lib.view(out.reshape(-1, 1), "out")
    with _lib.Call(threads, work=Xv.size) as c:
        c.check(_lib.lib.gram_kernel_diag(c.ctx, h.ptr, ctypes.byref(Xa), ctypes.byref(Oa)))
    return out


def _sum_operands(kernel, X, Y, weights, dtype):
    """The checked operands of a kernel sum (_sum, and _functions._sum_approx): (handle, Xv, Yv, W2,
    out, vector). Yv and W2 are returned with the views so that the arrays the views point into
    live as long as the call."""
    h = _handle_for(kernel)
    X, Y = _check_xy(X, Y)
    dt = _compute_dtype(dtype, X) if Y is None else _compute_dtype(dtype, X, Y)
    Xv = _lib.as_viewable(X, dt, "X")
    Yv = Xv if Y is None else _lib.as_viewable(Y, dt, "Y")
    N, M = Xv.shape[0], Yv.shape[0]
    W = None
    if weights is not None:
        W = check_array(weights, name="weights", ensure_2d=False, min_samples=0)
        if W.ndim not in (1, 2):
            raise ValueError(f"weights must be 1-D (N,) or 2-D (N, V), got {W.ndim}-D")
        if W.shape[0] != N:
            raise ValueError(f"weights has {W.shape[0]} rows but X has {N} data points")
    vector = W is None or W.ndim == 1
    out = _lib.empty((M,) if vector else (M, W.shape[1]), dt, "the kernel sums")
    W2 = None
    if W is not None:
        W2 = W.reshape(-1, 1) if W.ndim == 1 else W
        W2 = _lib.as_viewable(W2, name="weights")
    if Y is not None:
        Yv = _not_symmetric(Xv, Yv, h)
    return h, Xv, (None if Y is None else Yv), W2, out, vector


def _call_sum(threads, work, fn, *args):
    """``fn(ctx, *args)`` with the engine's name for the weights (W) reworded as the caller's."""
    try:
        with _lib.Call(threads, work=work) as c:
            c.check(fn(c.ctx, *args))
    except ValueError as e:
        if str(e).startswith("W"):  # the engine calls the weights W
            raise _retitle(e, re.sub(r"^W\b", "weights", str(e))) from None
        raise


def _sum(kernel, X, Y, weights, log, dtype, threads):
    h, Xv, Yv, W2, out, vector = _sum_operands(kernel, X, Y, weights, dtype)
    M = out.shape[0]
    Wa = None if W2 is None else ctypes.byref(_lib.view(W2, "weights"))
    Xa = _lib.view(Xv, "X")
    Ya = Xa if Yv is None else _lib.view(Yv, "Y")
    Oa = _lib.view(out.reshape(M, -1) if vector else out, "out")
    fn = _lib.lib.gram_kernel_logsum if log else _lib.lib.gram_kernel_sum
    _call_sum(threads, Xv.shape[0] * M * max(1, Xv.shape[1]), fn, h.ptr, ctypes.byref(Ya), ctypes.byref(Xa), Wa,
              ctypes.byref(Oa))
    return out
