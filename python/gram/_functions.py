"""Functions over the engine: kernel sums and Gram matrices for any kernel."""
from .kernels import _matrix, _sum

__all__ = ["kernel_sum", "pairwise_kernels"]

DEFAULT_KERNEL = "gaussian"


def kernel_sum(X, Y=None, weights=None, kernel=DEFAULT_KERNEL, log=False, dtype=None, threads=None):
    """Kernel sums: ``out[i] = sum_j k(Y[i], X[j]) * weights[j]``, exactly, without an N×M array.

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

    Returns
    -------
    out : ndarray of shape (M,) (1-D or no weights) or (M, V) (2-D weights)
        In the computation dtype.

    Raises
    ------
    ValueError
        Wrong shapes or dimensions, empty arrays, NaN or infinite values, an unknown kernel or
        an invalid parameter, ``log=True`` with negative weights or a kernel that can be negative.
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
    return _sum(kernel, X, Y, weights, log, dtype, threads)


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
