"""gram: fast exact kernel sums, kernel density estimates and Gram matrices.

A NumPy front end (ctypes) to libgram, the C library shipped inside this package:

- :class:`KernelDensity` — ``sklearn.neighbors.KernelDensity``, exact, on all cores;
- :class:`gaussian_kde` — ``scipy.stats.gaussian_kde``, with exact log-densities;
- :class:`GaussianProcessRegressor` and :class:`KernelRidge` — scikit-learn's regressors, with
  the dense algebra, the likelihood gradient and the hyperparameter search in C;
- :func:`kernel_sum` and :func:`pairwise_kernels` — kernel sums and Gram matrices for any kernel;
- kernels with scikit-learn's names (:class:`RBF`, :class:`Matern`, ...) composable with ``+``
  and ``*``, or any gram spec string through :class:`Kernel`; scikit-learn kernel objects are
  accepted wherever a kernel is.

Float64 and float32 arrays are passed to C without copies whatever their memory order; the GIL
is released during computations; Ctrl-C cancels a long call.
"""
from ._version import __version__
from . import _lib

if _lib.version() != __version__:
    raise ImportError(
        f"gram {__version__} loaded libgram {_lib.version()} from {_lib.LIBRARY_PATH}: the package "
        "and its library must be the same version; reinstall with 'python3 -m pip install .'")

from .kernels import (ConstantKernel, DotProduct, ExpSineSquared, Kernel, Matern, Product,  # noqa: E402
                      RationalQuadratic, RBF, Sum, WhiteKernel)
from .density import KernelDensity, gaussian_kde  # noqa: E402
from ._functions import kernel_sum, pairwise_kernels  # noqa: E402
from .regression import GaussianProcessRegressor, KernelRidge  # noqa: E402

__all__ = [
    "__version__", "KernelDensity", "gaussian_kde", "GaussianProcessRegressor", "KernelRidge",
    "kernel_sum", "pairwise_kernels", "Kernel",
    "RBF", "Matern", "RationalQuadratic", "ExpSineSquared", "DotProduct", "WhiteKernel",
    "ConstantKernel", "Sum", "Product", "library_version",
]


def library_version():
    """The version of the loaded libgram ("MAJOR.MINOR.PATCH")."""
    return _lib.version()
