"""Translation of scikit-learn kernel objects into gram kernels.

Only called with objects whose class lives in ``sklearn``, so scikit-learn is already imported;
it is not a dependency of gram. Classes are matched exactly (a user subclass may change
``__call__``, so it is refused rather than silently computed as its parent).
"""
import numpy as np

from . import kernels as gk


def from_sklearn(k):
    """The gram kernel equal to the scikit-learn kernel ``k``.

    Supported: ``sklearn.gaussian_process.kernels`` RBF, Matern (nu in {0.5, 1.5, 2.5, inf}),
    RationalQuadratic, ExpSineSquared, DotProduct, WhiteKernel, ConstantKernel, Sum, Product
    (with their bounds, "fixed" included, so theta, bounds and hyperparameters are
    scikit-learn's), and PairwiseKernel with metric 'rbf', 'laplacian', 'linear', 'cosine' or
    'poly'/'polynomial' (a gram spec kernel: its hyperparameters are gram's lengthscale etc., not
    gamma). Anything else (Exponentiation, CompoundKernel, other metrics) raises ValueError.
    """
    from sklearn.gaussian_process import kernels as sk

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
    if t is sk.PairwiseKernel:
        return _pairwise(k)
    if t is sk.Exponentiation:
        raise ValueError(
            f"the scikit-learn kernel {k!r} is an Exponentiation, which gram does not support; "
            "write the power out as a product or use a gram spec string")
    raise ValueError(f"gram cannot translate the scikit-learn kernel {k!r} ({t.__module__}.{t.__name__})")


def _b(v):
    """Bounds as scikit-learn holds them ("fixed", a pair, or one pair per dimension)."""
    if isinstance(v, str):
        return v
    arr = np.asarray(v, dtype=np.float64)
    return tuple(float(x) for x in arr) if arr.shape == (2,) else arr.copy()


def _ls(v):
    arr = np.asarray(v, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr.copy()


def _pairwise(k):
    metric = k.metric
    kw = dict(k.pairwise_kernels_kwargs or {})
    gamma = float(k.gamma)
    if metric == "rbf":  # exp(-gamma |x-y|²) = gaussian with lengthscale 1/sqrt(2 gamma)
        return gk.Kernel(f"gaussian(lengthscale={float(1.0 / np.sqrt(2.0 * gamma))!r})")
    if metric == "laplacian":  # exp(-gamma |x-y|_1)
        return gk.Kernel(f"laplacian_l1(lengthscale={float(1.0 / gamma)!r})")
    if metric == "linear":
        return gk.Kernel("linear(sigma0=0.0)")
    if metric == "cosine":
        return gk.Kernel("cosine")
    if metric in ("poly", "polynomial"):  # (gamma x·y + coef0)^degree
        degree = kw.get("degree", 3)
        coef0 = float(kw.get("coef0", 1))
        if int(degree) != degree:
            raise ValueError(f"gram's polynomial kernel needs an integer degree, got {degree!r}")
        return gk.Kernel(f"polynomial(degree={int(degree)}, gamma={gamma!r}, coef0={coef0!r})")
    raise ValueError(f"gram cannot translate PairwiseKernel(metric={metric!r})")
