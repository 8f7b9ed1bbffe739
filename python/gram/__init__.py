"""gram: fast exact kernel sums, kernel density estimates and Gram matrices.

A NumPy front end (ctypes) to libgram, the C library shipped inside this package:

- :class:`KernelDensity` — ``sklearn.neighbors.KernelDensity``, exact, on all cores;
- :class:`gaussian_kde` — ``scipy.stats.gaussian_kde``, with exact log-densities;
- :class:`GaussianProcessRegressor` and :class:`KernelRidge` — scikit-learn's regressors, with
  the dense algebra, the likelihood gradient and the hyperparameter search in C;
- :func:`kernel_sum` and :func:`pairwise_kernels` — kernel sums and Gram matrices for any kernel;
- kernels with scikit-learn's names and protocol (:class:`RBF`, :class:`Matern`, ...,
  :class:`PairwiseKernel`, composable with ``+``, ``*`` and ``**``), subclasses of scikit-learn's
  own kernel classes where it is installed, or any gram spec string through :class:`Kernel`;
  scikit-learn kernel objects are accepted wherever a kernel is.

Float64 and float32 arrays are passed to C without copies whatever their memory order; the GIL
is released during computations; Ctrl-C cancels a long call.
"""
from ._version import __version__
from . import _lib

if _lib.version() != __version__:
    raise ImportError(
        f"gram {__version__} loaded libgram {_lib.version()} from {_lib.LIBRARY_PATH}: the package "
        "and its library must be the same version; reinstall with 'python3 -m pip install .'")

from .density import KernelDensity, gaussian_kde, kde_diagnostics  # noqa: E402
from ._functions import kernel_sum, pairwise_kernels  # noqa: E402

__all__ = [
    "__version__", "KernelDensity", "gaussian_kde", "kde_diagnostics", "GaussianProcessRegressor", "KernelRidge",
    "kernel_sum", "pairwise_kernels", "Kernel",
    "RBF", "Matern", "RationalQuadratic", "ExpSineSquared", "DotProduct", "WhiteKernel",
    "ConstantKernel", "PairwiseKernel", "KernelOperator", "Sum", "Product", "Exponentiation",
    "CompoundKernel", "Hyperparameter", "library_version",
    "RBFSampler", "Nystroem", "PolynomialCountSketch", "RandomFeatures", "SNNKLayer", "kernel_attention",
    "PrivateKernelSum", "PrivateSimilarityClassifier", "PrivacyAccountant",
]

# The kernel classes are built on first use (gram.kernels), so that ``import gram`` does not import
# scikit-learn, whose classes they subclass; the regressors, which use them, load with them.
_LAZY = dict.fromkeys(("Kernel", "RBF", "Matern", "RationalQuadratic", "ExpSineSquared", "DotProduct",
                       "WhiteKernel", "ConstantKernel", "PairwiseKernel", "KernelOperator", "Sum",
                       "Product", "Exponentiation", "CompoundKernel", "Hyperparameter"), "kernels")
_LAZY.update(GaussianProcessRegressor="regression", KernelRidge="regression")
# The transformers use scikit-learn's TransformerMixin where it is installed: loaded on first use too.
_LAZY.update(dict.fromkeys(("RBFSampler", "Nystroem", "PolynomialCountSketch", "RandomFeatures"), "features"))
_LAZY.update(SNNKLayer="attention", kernel_attention="attention")
# Private similarities (the classifier uses scikit-learn's ClassifierMixin where it is installed).
_LAZY.update(dict.fromkeys(("PrivateKernelSum", "PrivateSimilarityClassifier", "PrivacyAccountant"), "private"))


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    if name == "regression":
        import importlib
        return importlib.import_module(f"{__name__}.regression")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def library_version():
    """The version of the loaded libgram ("MAJOR.MINOR.PATCH")."""
    return _lib.version()
