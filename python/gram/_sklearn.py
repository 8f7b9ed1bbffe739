"""Translation of scikit-learn kernel objects into gram kernels.

Only called with scikit-learn's kernel objects, so scikit-learn is already imported; it is not a
dependency of gram. Classes are matched exactly (a user subclass may change ``__call__``, so it is
refused rather than silently computed as its parent).
"""
import numpy as np

from . import _kernel_classes as gk


def from_sklearn(k):
    """The gram kernel equal to the scikit-learn kernel ``k``, with the same parameters, bounds
    ("fixed" included), theta, hyperparameters and gradient.

    Supported: ``sklearn.gaussian_process.kernels`` RBF, Matern (any nu > 0), RationalQuadratic,
    ExpSineSquared, DotProduct, WhiteKernel, ConstantKernel, Sum, Product, Exponentiation,
    CompoundKernel and PairwiseKernel (metrics 'linear', 'rbf', 'laplacian', 'poly'/'polynomial',
    'sigmoid', 'cosine'). Anything else (a user's own Kernel subclass, PairwiseKernel with 'chi2',
    'additive_chi2' or a callable) raises ValueError naming it. A gram kernel inside a
    scikit-learn operator is kept as it is.
    """
    from sklearn.gaussian_process import kernels as sk

    if isinstance(k, gk.Kernel):
        return k
    t = type(k)
    if t is sk.RBF:
        return gk.RBF(length_scale=_ls(k.length_scale), length_scale_bounds=_b(k.length_scale_bounds))
    if t is sk.Matern:
        return gk.Matern(length_scale=_ls(k.length_scale), length_scale_bounds=_b(k.length_scale_bounds),
                         nu=k.nu)
    if t is sk.RationalQuadratic:
        return gk.RationalQuadratic(length_scale=_ls(k.length_scale), alpha=k.alpha,
                                    length_scale_bounds=_b(k.length_scale_bounds),
                                    alpha_bounds=_b(k.alpha_bounds))
    if t is sk.ExpSineSquared:
        return gk.ExpSineSquared(length_scale=_ls(k.length_scale), periodicity=k.periodicity,
                                 length_scale_bounds=_b(k.length_scale_bounds),
                                 periodicity_bounds=_b(k.periodicity_bounds))
    if t is sk.DotProduct:
        return gk.DotProduct(sigma_0=k.sigma_0, sigma_0_bounds=_b(k.sigma_0_bounds))
    if t is sk.WhiteKernel:
        return gk.WhiteKernel(noise_level=k.noise_level, noise_level_bounds=_b(k.noise_level_bounds))
    if t is sk.ConstantKernel:
        return gk.ConstantKernel(constant_value=k.constant_value,
                                 constant_value_bounds=_b(k.constant_value_bounds))
    if t is sk.Sum:
        return gk.Sum(from_sklearn(k.k1), from_sklearn(k.k2))
    if t is sk.Product:
        return gk.Product(from_sklearn(k.k1), from_sklearn(k.k2))
    if t is sk.Exponentiation:
        return gk.Exponentiation(from_sklearn(k.kernel), k.exponent)
    if t is sk.CompoundKernel:
        return gk.CompoundKernel([from_sklearn(x) for x in k.kernels])
    if t is sk.PairwiseKernel:
        kw = k.pairwise_kernels_kwargs
        return gk.PairwiseKernel(gamma=k.gamma, gamma_bounds=_b(k.gamma_bounds), metric=k.metric,
                                 pairwise_kernels_kwargs=None if kw is None else dict(kw))
    raise ValueError(
        f"gram cannot translate the scikit-learn kernel {k!r} ({t.__module__}.{t.__name__}): gram "
        "computes scikit-learn's own kernel classes (RBF, Matern, RationalQuadratic, "
        "ExpSineSquared, DotProduct, WhiteKernel, ConstantKernel, PairwiseKernel, Sum, Product, "
        "Exponentiation, CompoundKernel), not subclasses of them or of Kernel")


def _b(v):
    """Bounds as scikit-learn holds them ("fixed", a pair, or one pair per dimension)."""
    if isinstance(v, str):
        return v
    arr = np.asarray(v, dtype=np.float64)
    return tuple(float(x) for x in arr) if arr.shape == (2,) else arr.copy()


def _ls(v):
    if np.ndim(v) == 0:
        return float(v)
    return np.array(v, dtype=np.float64)
