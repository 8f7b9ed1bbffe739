"""Functions over the engine: kernel sums and Gram matrices for any kernel."""
import ctypes

import numpy as np

from . import _approx, _lib
from ._validation import check_array
from .kernels import _call_sum, _matrix, _sum, _sum_operands

__all__ = ["kernel_sum", "pairwise_kernels"]

DEFAULT_KERNEL = "gaussian"


def kernel_sum(X, Y=None, weights=None, kernel=DEFAULT_KERNEL, log=False, dtype=None, threads=None, *,
               rtol=0, atol=0, method="auto", delta=1e-3, random_state=None, return_info=False):
    """Kernel sums: ``out[i] = sum_j k(Y[i], X[j]) * weights[j]``, exactly or to a tolerance,
    without an N×M array.

    X holds the N data points that carry the weights, Y the M query points.

    Parameters
    ----------
    X : array-like of shape (N, n_features)
        Data points. float64/float32 arrays in any memory order (C, Fortran, transposed or sliced
        views) are read in place, without copies.
    Y : array-like of shape (M, n_features), default=None
        Query points; None means Y = X (a symmetric call: a white-noise term counts where i == j).
    weights : array-like of shape (N,) or (N, V), default=None
        Weights of the data points (V weight vectors at once); None means all 1.
    kernel : gram Kernel, spec string or scikit-learn kernel, default="gaussian"
        The default is ``gaussian(lengthscale=1)``: ``exp(-|x - y|² / 2)``, scikit-learn's
        ``RBF(1.0)``. Spec strings use gram's parameterisation (see ``include/gram.h``);
        scikit-learn kernel objects (RBF, Matern, Sum, Product, ...) are translated exactly.
    log : bool, default=False
        Return the logarithm of the sum, computed in log space: finite wherever the sum is
        positive even if every term underflows. Needs a non-negative kernel and weights.
    dtype : {None, numpy.float64, numpy.float32}, default=None
        Computation precision. None: float32 when X and Y are both float32, else float64.
        float32 computes kernel values in float32 and accumulates in float64.
    threads : int, default=None
        OpenMP threads for this call; None or 0 uses OpenMP's default (all cores, or
        OMP_NUM_THREADS). Results are bit-identical for every thread count. A Python or NumPy
        integer: a float or bool is refused (ValueError and TypeError), as is a count beyond a C
        int (ctypes would wrap it).
    rtol, atol : float, default=0
        A tolerance: every value meets ``|out - exact| <= atol + rtol * |exact|`` (scikit-learn's
        KernelDensity convention; with probability >= 1 - delta per value for sampling). 0 and 0:
        exact. See docs/approx.md.
    method : {'auto', 'exact', 'tree', 'sampling', 'grid', 'fgt', 'features'}, default='auto'
        'auto' picks the cheapest method whose bound meets the tolerance; the others force one:
        'tree' (kd-trees with deterministic node bounds; monotone radial kernels), 'sampling'
        (empirical-Bernstein bounds, the nearest points summed exactly), 'grid' (gaussian, D <= 6:
        binning, grid convolution, interpolation), 'fgt' (the improved fast Gauss transform) and
        'features' (random Fourier features with an empirical-Bernstein bound). A method that
        cannot bound the kernel is refused with a ValueError naming why and which methods can
        (docs/approx.md).
    delta : float, default=1e-3
        Sampling's failure probability per value, in (0, 1).
    random_state : int, RandomState, Generator or None, default=None
        Sampling's seed.
    return_info : bool, default=False
        Also return a dict: ``method`` (the one that ran), ``delta`` (0: deterministic bounds),
        ``kernel_evaluations`` (pairs evaluated), ``rtol``, ``atol`` and ``error_bound`` (the bound
        each value carries, float64, out's shape; with ``log=True`` still a bound on the sum; rows
        whose approximate sum is within 2**52 of the smallest normal number are summed exactly
        in log space, so their logs are finite and exact).

    Returns
    -------
    out : ndarray of shape (M,) (1-D or no weights) or (M, V) (2-D weights)
        In the computation dtype.
    info : dict
        Only with ``return_info=True``.

    Raises
    ------
    ValueError
        Wrong shapes or dimensions, empty arrays, NaN or infinite values, an unknown kernel or
        an invalid parameter, ``log=True`` with negative weights or a kernel that can be negative,
        rtol/atol negative or NaN, delta outside (0, 1), an unknown method or one that cannot meet
        the tolerance for this kernel (the message names which can).
    KeyboardInterrupt
        Ctrl-C (SIGINT) during the call cancels it within a fraction of a second.

    Examples
    --------
    >>> import numpy as np, gram
    >>> X = np.random.default_rng(0).normal(size=(1000, 3))
    >>> s = gram.kernel_sum(X, X[:5], kernel="matern32(lengthscale=0.5)")
    >>> s.shape
    (5,)
    """
    opt, approximate = _approx.options(rtol, atol, method, delta, random_state)
    if not approximate:
        out = _sum(kernel, X, Y, weights, log, dtype, threads)
        if not return_info:
            return out
        X2 = np.shape(X)
        M = X2[0] if Y is None else np.shape(Y)[0]
        info = _lib.ApproxInfo(_approx.METHODS.index("exact"), 0.0, int(M) * int(X2[0]))
        return out, _approx.info_dict(info, opt, np.zeros(out.shape, dtype=np.float64))
    # gram_kernel_logsum_approx sums exactly in log space the rows whose sums underflow
    out, info, err = _sum_approx(kernel, X, Y, weights, dtype, threads, opt, log)
    if return_info:
        return out, _approx.info_dict(info, opt, err)
    return out


def _sum_approx(kernel, X, Y, weights, dtype, threads, opt, log=False):
    """gram_kernel_sum_approx (gram_kernel_logsum_approx when log) with _sum's argument handling:
    (out, ApproxInfo, error bounds)."""
    h, Xv, Yv, W2, out, _ = _sum_operands(kernel, X, Y, weights, dtype)
    M = out.shape[0]
    err = _lib.empty(out.shape, np.float64, "the error bounds")
    Wa = None if W2 is None else ctypes.byref(_lib.view(W2, "weights"))
    Xa = _lib.view(Xv, "X")
    Ya = Xa if Yv is None else _lib.view(Yv, "Y")
    Oa = _lib.view(out.reshape(M, -1), "out")
    Ea = _lib.view(err.reshape(M, -1), "err")
    info = _lib.ApproxInfo()
    fn = _lib.lib.gram_kernel_logsum_approx if log else _lib.lib.gram_kernel_sum_approx
    _call_sum(threads, Xv.shape[0] * M * max(1, Xv.shape[1]), fn, h.ptr,
              ctypes.byref(Ya), ctypes.byref(Xa), Wa, ctypes.byref(opt), ctypes.byref(Oa), ctypes.byref(Ea),
              ctypes.byref(info))
    return out, info, err


def pairwise_kernels(X, Y=None, kernel=DEFAULT_KERNEL, dtype=None, threads=None):
    """The Gram matrix ``K[i, j] = k(X[i], Y[j])``, as ``sklearn.metrics.pairwise_kernels``.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
    Y : array-like of shape (n_samples_Y, n_features), default=None
        None means Y = X (a symmetric call: a white-noise term is added on the diagonal).
    kernel : gram Kernel, spec string or scikit-learn kernel, default="gaussian"
        As in :func:`kernel_sum` (gram's parameterisation: the default is ``exp(-|x - y|² / 2)``,
        not scikit-learn's ``metric='linear'`` default nor its ``gamma`` for 'rbf').
    dtype : {None, numpy.float64, numpy.float32}, default=None
        As in :func:`kernel_sum`; the matrix has this dtype.
    threads : int, default=None
        As in :func:`kernel_sum`.

    Returns
    -------
    K : ndarray of shape (n_samples_X, n_samples_Y)
    """
    return _matrix(kernel, X, Y, dtype, threads)
