"""ctypes binding to libgram, the shared library shipped inside this package.

Everything that touches C lives here: loading the library, the argument and result types of every
function used, NumPy arrays as ``gram_array`` strided views, status codes as Python exceptions, and
the per-call context (threads, the progress callback that lets Ctrl-C cancel a long call).

The library is loaded from the absolute path of the file next to this module, so the package
always uses its own copy. ctypes releases the GIL for the duration of every foreign call.
"""
import ctypes
import numbers
import os
import signal
import sys
import threading

import numpy as np

# ---- loading -----------------------------------------------------------------------------------


def _library_path():
    here = os.path.dirname(os.path.abspath(__file__))
    names = {"darwin": ["libgram.dylib"], "win32": ["gram.dll", "libgram.dll"]}.get(sys.platform, ["libgram.so"])
    for name in names:
        path = os.path.join(here, name)
        if os.path.exists(path):
            return path
    raise ImportError(
        f"gram: the shared library ({' or '.join(names)}) is missing from {here}; "
        "install the package with 'python3 -m pip install .' from the repository root")


LIBRARY_PATH = _library_path()
try:
    lib = ctypes.CDLL(LIBRARY_PATH)
except OSError as e:  # pragma: no cover - a broken installation
    raise ImportError(f"gram: cannot load {LIBRARY_PATH}: {e}") from e

# ---- strings and integers for C ------------------------------------------------------------------

# The C integer types of gram.h's arguments and struct fields, and their ranges. (On LP64 ctypes
# aliases c_int64 to c_long and c_uint64 and c_size_t to c_ulong: one entry each.)
_C_INTS = {
    "int": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint64": (0, (1 << 64) - 1),
    "size_t": (0, (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1),
}
_INT_CTYPE_NAMES = {ctypes.c_size_t: "size_t", ctypes.c_uint64: "uint64", ctypes.c_int64: "int64",
                    ctypes.c_int: "int"}


class ArgumentTypeError(ValueError, TypeError):
    """An argument of the wrong type for C (a float or a bool where an int is wanted, a spec that
    is not a str). Both a ValueError (gram's promise for bad arguments) and a TypeError (what
    NumPy and scikit-learn raise for such values), so either ``except`` catches it."""


def c_str(value, name):
    """A str as NUL-free UTF-8 bytes for a ``const char *`` argument.

    C reads a string up to its first NUL, so ``"gaussian\\0 + linear"`` would silently become
    ``"gaussian"``: refused with ValueError, as is a str that cannot be encoded (lone surrogates).
    """
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a str, got {type(value).__name__}")
    i = value.find("\0")
    if i >= 0:
        raise ValueError(f"{name} contains a NUL character at position {i}: {value!r}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{name} cannot be encoded as UTF-8 ({e.reason} at position {e.start}): "
                         f"{value!r}") from None


def c_int(value, name, ctype="int", lo=None, hi=None, allow_bool=False):
    """A Python or NumPy integer as a Python int within ``[lo, hi]`` and the range of the C type.

    ctypes converts an int outside its C type modulo 2**bits and ``int()`` truncates floats, so
    4294967297 threads would become 1 and 2.5 would become 2: here floats (even 2.0), strings,
    other objects and (unless ``allow_bool``) bools are refused with ArgumentTypeError, as NumPy
    and scikit-learn refuse them, and values out of range give ValueError. ``ctype`` is "int",
    "int64", "uint64" or "size_t".
    """
    if ((not allow_bool and isinstance(value, (bool, np.bool_)))
            or not isinstance(value, (numbers.Integral, np.integer, np.bool_))):
        raise ArgumentTypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    v = int(value)
    tlo, thi = _C_INTS[ctype]
    lo = tlo if lo is None else max(lo, tlo)
    hi = thi if hi is None else min(hi, thi)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {v}")
    return v


def _guarded(name, fn):
    """``fn`` (a foreign function with argtypes), or a wrapper that checks what ctypes lets through
    silently: integers outside their C type (wrapped modulo 2**bits), and bytes with a NUL for a
    ``const char *`` (truncated there). The callers' own converters give the friendlier messages;
    this is the net under every call, including ones added later. Functions that take only
    pointers and doubles are left unwrapped (the engine calls cost nothing extra)."""
    checks = []
    for i, t in enumerate(fn.argtypes or ()):
        if t is ctypes.c_char_p:
            checks.append((i, None))
        elif t in _INT_CTYPE_NAMES:
            checks.append((i, _INT_CTYPE_NAMES[t]))
    if not checks:
        return fn

    def call(*args):
        for i, ctype in checks:
            if i >= len(args):
                break
            v = args[i]
            if ctype is None:
                if isinstance(v, (bytes, bytearray)) and 0 in v:
                    raise ValueError(f"{name}: argument {i + 1} (a C string) contains a NUL byte at "
                                     f"position {v.index(0)}: {bytes(v)!r}")
            elif not isinstance(v, ctypes._SimpleCData):
                c_int(v, f"{name}: argument {i + 1}", ctype, allow_bool=True)
        return fn(*args)

    call.__name__ = call.__qualname__ = name
    call.foreign = fn
    return call


# ---- types ---------------------------------------------------------------------------------------

# gram_status
OK, EINVAL, ESHAPE, ENONFINITE, ENOMEM, EOVERFLOW, EPARSE, EDOMAIN = 0, 1, 2, 3, 4, 5, 6, 7
EUNSUPPORTED, ECANCELLED, EIO, EFORMAT, ENOTPD, EINTERNAL = 8, 9, 10, 11, 12, 13

FLOAT64, FLOAT32 = 0, 1  # gram_dtype

# gram_family (the order of the enum in gram.h)
FAMILIES = [
    "GAUSSIAN", "LAPLACIAN", "MATERN12", "MATERN32", "MATERN52", "RATIONAL_QUADRATIC", "CAUCHY",
    "PERIODIC", "TOPHAT", "EPANECHNIKOV", "EXPONENTIAL", "TRIANGULAR", "COSINE_WINDOW", "NEG_L2",
    "LAPLACIAN_L1", "NEG_L1", "LINEAR", "POLYNOMIAL", "COSINE", "CONSTANT", "WHITE", "MATERN", "SIGMOID",
    "SOFTMAX", "ARCCOS",
]
FAMILY = {name: i for i, name in enumerate(FAMILIES)}

KDE_ISOTROPIC, KDE_COVARIANCE = 0, 1  # gram_kde_geometry
# gram_bandwidth_rule
BW_FIXED, BW_SCOTT, BW_SILVERMAN, BW_SCOTT_UNSCALED, BW_SILVERMAN_UNSCALED = 0, 1, 2, 3, 4
BW_ISJ, BW_CV_ML, BW_CV_LS = 5, 6, 7


class GramArray(ctypes.Structure):
    """``struct gram_array``: data, dtype, rows, cols and strides counted in elements."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int),
        ("rows", ctypes.c_int64),
        ("cols", ctypes.c_int64),
        ("row_stride", ctypes.c_int64),
        ("col_stride", ctypes.c_int64),
    ]


_dp = ctypes.POINTER(ctypes.c_double)


class _CheckedStructure(ctypes.Structure):
    """A C struct whose integer fields refuse values that ctypes would silently wrap or truncate
    (``opt.n_restarts = 2**32`` would be 0), with the field named in the error."""

    def __setattr__(self, name, value):
        ctype = self._int_fields().get(name)
        if ctype is not None and not isinstance(value, ctypes._SimpleCData):
            value = c_int(value, f"{type(self).__name__}.{name}", ctype, allow_bool=True)
        super().__setattr__(name, value)

    @classmethod
    def _int_fields(cls):
        fields = cls.__dict__.get("_int_fields_cache")
        if fields is None:
            fields = {n: _INT_CTYPE_NAMES[t] for n, t in cls._fields_ if t in _INT_CTYPE_NAMES}
            cls._int_fields_cache = fields
        return fields


class KdeOptions(_CheckedStructure):
    """``struct gram_kde_options`` (enums are C ints)."""

    _fields_ = [
        ("kernel", ctypes.c_int),
        ("geometry", ctypes.c_int),
        ("rule", ctypes.c_int),
        ("n_bandwidth", ctypes.c_int64),
        ("bandwidth", _dp),
        ("lower", _dp),
        ("upper", _dp),
        ("precision", ctypes.c_int),
    ]


class GpOptions(_CheckedStructure):
    """``struct gram_gp_options``."""

    _fields_ = [
        ("n_alpha", ctypes.c_int64),
        ("alpha", _dp),
        ("normalize_y", ctypes.c_int),
        ("optimize", ctypes.c_int),
        ("n_restarts", ctypes.c_int),
        ("seed", ctypes.c_uint64),
        ("max_iter", ctypes.c_int),
        ("jitter_tries", ctypes.c_int),
    ]


PROGRESS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)

_vp, _i64, _st, _int, _d = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_int, ctypes.c_double
_pa, _pvp = ctypes.POINTER(GramArray), ctypes.POINTER(ctypes.c_void_p)

_SIGNATURES = [
    ("gram_strerror", ctypes.c_char_p, [_int]),
    ("gram_version", ctypes.c_char_p, []),
    ("gram_version_number", _int, []),
    ("gram_context_create", _st, [_pvp]),
    ("gram_context_destroy", None, [_vp]),
    ("gram_context_message", ctypes.c_char_p, [_vp]),
    ("gram_context_set_threads", _st, [_vp, _int]),
    ("gram_context_threads", _int, [_vp]),
    ("gram_context_set_progress", _st, [_vp, PROGRESS, _vp]),
    ("gram_context_set_arch", _st, [_vp, ctypes.c_char_p]),
    ("gram_context_arch", ctypes.c_char_p, [_vp]),
    ("gram_kernel_parse", _st, [_vp, ctypes.c_char_p, _pvp]),
    ("gram_kernel_create", _st, [_vp, _int, _i64, _dp, _int, _dp, _pvp]),
    ("gram_kernel_add", _st, [_vp, _vp, _vp, _pvp]),
    ("gram_kernel_mul", _st, [_vp, _vp, _vp, _pvp]),
    ("gram_kernel_scale", _st, [_vp, _d, _vp, _pvp]),
    ("gram_kernel_copy", _st, [_vp, _vp, _pvp]),
    ("gram_kernel_destroy", None, [_vp]),
    ("gram_kernel_spec", ctypes.c_size_t, [_vp, ctypes.c_char_p, ctypes.c_size_t]),
    ("gram_kernel_dim", _i64, [_vp]),
    ("gram_kernel_is_nonnegative", _int, [_vp]),
    ("gram_kernel_n_hyper", _i64, [_vp]),
    ("gram_kernel_get_hyper", _st, [_vp, _dp]),
    ("gram_kernel_hyper_name", ctypes.c_char_p, [_vp, _i64]),
    ("gram_kernel_set_hyper", _st, [_vp, _vp, _dp, _pvp]),
    ("gram_kernel_eval", _st, [_vp, _vp, _i64, _dp, _dp, _int, _dp, _dp]),
    ("gram_kernel_log_normalizer", _st, [_vp, _vp, _i64, _dp]),
    ("gram_kernel_sum", _st, [_vp, _vp, _pa, _pa, _pa, _pa]),
    ("gram_kernel_logsum", _st, [_vp, _vp, _pa, _pa, _pa, _pa]),
    ("gram_kernel_matrix", _st, [_vp, _vp, _pa, _pa, _pa]),
    ("gram_kernel_diag", _st, [_vp, _vp, _pa, _pa]),
    ("gram_kde_options_init", None, [ctypes.POINTER(KdeOptions)]),
    ("gram_kde_fit", _st, [_vp, ctypes.POINTER(KdeOptions), _pa, _pa, _pvp]),
    ("gram_kde_destroy", None, [_vp]),
    ("gram_kde_n", _i64, [_vp]),
    ("gram_kde_dim", _i64, [_vp]),
    ("gram_kde_neff", _d, [_vp]),
    ("gram_kde_factor", _d, [_vp]),
    ("gram_kde_bandwidth_matrix", _st, [_vp, _dp]),
    ("gram_kde_bandwidth", _st, [_vp, _dp]),
    ("gram_kde_logpdf", _st, [_vp, _vp, _pa, _pa]),
    ("gram_kde_pdf", _st, [_vp, _vp, _pa, _pa]),
    ("gram_kde_logpdf_loo", _st, [_vp, _vp, _pa]),
    ("gram_kde_sample", _st, [_vp, _vp, ctypes.c_uint64, _pa]),
]

_size_p = ctypes.POINTER(ctypes.c_size_t)

# Regression (gram.h, "Regression"): GPs, kernel ridge, persistence and learning bounds.
_REGRESSION = [
    ("gram_kernel_get_bounds", _st, [_vp, _dp, _dp]),
    ("gram_kernel_matrix_grad", _st, [_vp, _vp, _pa, _pa, _pa, _dp]),
    ("gram_kernel_pow", _st, [_vp, _vp, _d, _pvp]),
    ("gram_kernel_hyper_fixed", _int, [_vp, _i64]),
    ("gram_gp_options_init", None, [ctypes.POINTER(GpOptions)]),
    ("gram_gp_fit", _st, [_vp, _vp, ctypes.POINTER(GpOptions), _pa, _pa, _pvp]),
    ("gram_gp_destroy", None, [_vp]),
    ("gram_gp_n", _i64, [_vp]),
    ("gram_gp_dim", _i64, [_vp]),
    ("gram_gp_n_targets", _i64, [_vp]),
    ("gram_gp_kernel", _vp, [_vp]),
    ("gram_gp_log_marginal_likelihood_value", _d, [_vp]),
    ("gram_gp_jitter", _d, [_vp]),
    ("gram_gp_n_iterations", _i64, [_vp]),
    ("gram_gp_n_evaluations", _i64, [_vp]),
    ("gram_gp_target_scaling", _st, [_vp, _i64, _dp, _dp]),
    ("gram_gp_get_x", _st, [_vp, _pa]),
    ("gram_gp_get_y", _st, [_vp, _pa]),
    ("gram_gp_get_alpha", _st, [_vp, _pa]),
    ("gram_gp_get_cholesky", _st, [_vp, _pa]),
    ("gram_gp_log_marginal_likelihood", _st, [_vp, _vp, _dp, _dp, _dp]),
    ("gram_gp_predict", _st, [_vp, _vp, _pa, _pa, _pa, _i64, _pa]),
    ("gram_gp_sample", _st, [_vp, _vp, _pa, _i64, ctypes.c_uint64, _pa]),
    ("gram_gp_to_bytes", _st, [_vp, _vp, _pvp, _size_p]),
    ("gram_gp_from_bytes", _st, [_vp, _vp, ctypes.c_size_t, _pvp]),
    ("gram_krr_fit", _st, [_vp, _vp, _pa, _pa, _pa, _i64, _dp, _pvp]),
    ("gram_krr_destroy", None, [_vp]),
    ("gram_krr_n", _i64, [_vp]),
    ("gram_krr_dim", _i64, [_vp]),
    ("gram_krr_n_targets", _i64, [_vp]),
    ("gram_krr_kernel", _vp, [_vp]),
    ("gram_krr_get_x", _st, [_vp, _pa]),
    ("gram_krr_get_dual_coef", _st, [_vp, _pa]),
    ("gram_krr_predict", _st, [_vp, _vp, _pa, _pa]),
    ("gram_krr_to_bytes", _st, [_vp, _vp, _pvp, _size_p]),
    ("gram_krr_from_bytes", _st, [_vp, _vp, ctypes.c_size_t, _pvp]),
    ("gram_krr_solve", _st, [_vp, _pa, _pa, _pa, _i64, _dp, _pa]),
    ("gram_gp_n_starts", _i64, [_vp]),
    ("gram_gp_start", _st, [_vp, _i64, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(_i64)]),
    ("gram_gp_solve", _st, [_vp, _pa, _i64, _dp, _pa, _pa, _dp, _dp, _pa, _pa]),
    ("gram_gp_posterior", _st, [_vp, _pa, _pa, _pa, _pa, _pa, _pa, _pa]),
    ("gram_free", None, [_vp]),
]

for _name, _res, _args in _SIGNATURES:
    _f = getattr(lib, _name)
    _f.restype, _f.argtypes = _res, _args
    setattr(lib, _name, _guarded(_name, _f))
del _name, _res, _args, _f

# A library built before the regression API lacks these; they are checked where used (need()).
for _name, _res, _args in _REGRESSION:
    _f = getattr(lib, _name, None)
    if _f is not None:
        _f.restype, _f.argtypes = _res, _args
        setattr(lib, _name, _guarded(_name, _f))
del _name, _res, _args, _f


# Feature maps, attention and SNNK layers (gram.h, "Feature maps" and below); optional like the
# regression API, since a library may predate them. Enums are C ints.
class AttentionOptions(_CheckedStructure):
    """``struct gram_attention_options``."""

    _fields_ = [
        ("kernel", ctypes.c_void_p),
        ("method", ctypes.c_int),
        ("causal", ctypes.c_int),
        ("n_features", ctypes.c_int64),
        ("seed", ctypes.c_uint64),
        ("rpe", _dp),
    ]


_FEATURES = [
    ("gram_features_create", _st, [_vp, _vp, _i64, _int, _i64, ctypes.c_uint64, _pvp]),
    ("gram_features_destroy", None, [_vp]),
    ("gram_features_n_components", _i64, [_vp]),
    ("gram_features_dim", _i64, [_vp]),
    ("gram_features_method_of", _int, [_vp]),
    ("gram_features_seed", ctypes.c_uint64, [_vp]),
    ("gram_features_kernel", _vp, [_vp]),
    ("gram_features_transform", _st, [_vp, _vp, _pa, _pa]),
    ("gram_features_frequencies", _st, [_vp, _pa, _dp]),
    ("gram_features_n_frequencies", _i64, [_vp]),
    ("gram_features_sketch_degree", _int, [_vp]),
    ("gram_features_sketch", _st, [_vp, ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int8)]),
    ("gram_features_nystrom", _st, [_vp, _vp, _pa, _i64, _int, ctypes.c_uint64, _pvp]),
    ("gram_features_nystrom_parts", _st, [_vp, ctypes.POINTER(ctypes.c_int64), _pa, _pa]),
    ("gram_features_landmarks_of", _int, [_vp]),
    ("gram_features_to_bytes", _st, [_vp, _vp, _pvp, _size_p]),
    ("gram_features_from_bytes", _st, [_vp, _vp, ctypes.c_size_t, _pvp]),
    ("gram_features_sum", _st, [_vp, _vp, _pa, _pa, _pa, _pa, _dp]),
    ("gram_attention_options_init", None, [ctypes.POINTER(AttentionOptions)]),
    ("gram_attention", _st, [_vp, ctypes.POINTER(AttentionOptions), _pa, _pa, _pa, _pa]),
    ("gram_snnk_create", _st, [_vp, _int, _pa, _dp, _i64, ctypes.c_uint64, _pvp]),
    ("gram_snnk_destroy", None, [_vp]),
    ("gram_snnk_n_inputs", _i64, [_vp]),
    ("gram_snnk_n_outputs", _i64, [_vp]),
    ("gram_snnk_n_components", _i64, [_vp]),
    ("gram_snnk_apply", _st, [_vp, _vp, _pa, _pa]),
    ("gram_snnk_input_features", _st, [_vp, _vp, _pa, _pa]),
    ("gram_snnk_weight_features", _st, [_vp, _vp, _pa]),
    ("gram_snnk_activation", _int, [_vp]),
    ("gram_snnk_seed", ctypes.c_uint64, [_vp]),
]

for _name, _res, _args in _FEATURES:
    _f = getattr(lib, _name, None)
    if _f is not None:
        _f.restype, _f.argtypes = _res, _args
        setattr(lib, _name, _guarded(_name, _f))
del _name, _res, _args, _f


# Private similarities (gram.h, "Private similarities"): released sketches and the privacy
# accountant; optional like the feature maps. Enums are C ints.
class PrivateOptions(_CheckedStructure):
    """``struct gram_private_options``."""

    _fields_ = [
        ("mechanism", ctypes.c_int),
        ("domain", ctypes.c_int),
        ("radius", ctypes.c_double),
        ("bandwidth", ctypes.c_double),
        ("p", ctypes.c_double),
        ("neighbours", ctypes.c_int),
        ("n_components", ctypes.c_int64),
        ("reduced_dim", ctypes.c_int64),
        ("levels", ctypes.c_int32),
        ("n_terms", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
        ("has_seed", ctypes.c_int),
        ("noise_seed", ctypes.c_uint64),
        ("has_noise_seed", ctypes.c_int),
    ]


class PrivateInfo(ctypes.Structure):
    """``struct gram_private_info`` (its strings belong to the sketch)."""

    _fields_ = [
        ("similarity", ctypes.c_int),
        ("mechanism", ctypes.c_int),
        ("domain", ctypes.c_int),
        ("neighbours", ctypes.c_int),
        ("radius", ctypes.c_double),
        ("bandwidth", ctypes.c_double),
        ("p", ctypes.c_double),
        ("epsilon", ctypes.c_double),
        ("delta", ctypes.c_double),
        ("dim", ctypes.c_int64),
        ("n", ctypes.c_double),
        ("n_components", ctypes.c_int64),
        ("reduced_dim", ctypes.c_int64),
        ("levels", ctypes.c_int32),
        ("n_terms", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
        ("noise", ctypes.c_char_p),
        ("noise_scale", ctypes.c_double),
        ("approx_error", ctypes.c_double),
        ("sensitivity", ctypes.c_char_p),
        ("test_noise", ctypes.c_int),
    ]


_PRIVATE = [
    ("gram_private_options_init", None, [ctypes.POINTER(PrivateOptions)]),
    ("gram_private_fit", _st, [_vp, _pa, _int, _d, _d, ctypes.POINTER(PrivateOptions), _pvp]),
    ("gram_private_sketch_destroy", None, [_vp]),
    ("gram_private_query", _st, [_vp, _vp, _pa, _pa]),
    ("gram_private_query_mean", _st, [_vp, _vp, _pa, _pa]),
    ("gram_private_sketch_info", _st, [_vp, ctypes.POINTER(PrivateInfo)]),
    ("gram_private_sketch_n_clipped", _i64, [_vp]),
    ("gram_private_save", _st, [_vp, _vp, ctypes.c_char_p]),
    ("gram_private_load", _st, [_vp, ctypes.c_char_p, _pvp]),
    ("gram_private_to_bytes", _st, [_vp, _vp, _pvp, _size_p]),
    ("gram_private_from_bytes", _st, [_vp, _vp, ctypes.c_size_t, _pvp]),
    ("gram_privacy_accountant_create", _st, [_vp, _pvp]),
    ("gram_privacy_accountant_destroy", None, [_vp]),
    ("gram_privacy_accountant_add", _st, [_vp, _vp, _vp, _i64, _i64]),
    ("gram_privacy_accountant_total", _st, [_vp, _dp, _dp]),
    ("gram_privacy_accountant_count", _i64, [_vp]),
    ("gram_privacy_accountant_count_test_noise", _i64, [_vp]),
]

for _name, _res, _args in _PRIVATE:
    _f = getattr(lib, _name, None)
    if _f is not None:
        _f.restype, _f.argtypes = _res, _args
        setattr(lib, _name, _guarded(_name, _f))
del _name, _res, _args, _f


# Approximate kernel sums with a tolerance and the KDE diagnostics (gram.h, "Approximate kernel sums
# with a tolerance"); optional like the feature maps. Enums are C ints.
class ApproxOptions(_CheckedStructure):
    """``struct gram_approx_options``."""

    _fields_ = [
        ("rtol", ctypes.c_double),
        ("atol", ctypes.c_double),
        ("method", ctypes.c_int),
        ("delta", ctypes.c_double),
        ("seed", ctypes.c_uint64),
        ("leaf_size", ctypes.c_int64),
        ("near_neighbours", ctypes.c_int64),
        ("components", ctypes.c_int64),
        ("order", ctypes.c_int),
    ]


class ApproxInfo(ctypes.Structure):
    """``struct gram_approx_info``."""

    _fields_ = [
        ("method", ctypes.c_int),
        ("delta", ctypes.c_double),
        ("kernel_evaluations", ctypes.c_int64),
    ]


# gram_approx_method and gram_kde_regime, in the enums' order
APPROX_METHODS = ("auto", "exact", "tree", "sampling", "grid", "fgt", "features")
KDE_REGIMES = ("clt", "heavy", "extreme")

_APPROX = [
    ("gram_approx_options_init", None, [ctypes.POINTER(ApproxOptions)]),
    ("gram_kernel_sum_approx", _st, [_vp, _vp, _pa, _pa, _pa, ctypes.POINTER(ApproxOptions), _pa, _pa,
                                     ctypes.POINTER(ApproxInfo)]),
    ("gram_kernel_logsum_approx", _st, [_vp, _vp, _pa, _pa, _pa, ctypes.POINTER(ApproxOptions), _pa, _pa,
                                        ctypes.POINTER(ApproxInfo)]),
    ("gram_kernel_sum_participation", _st, [_vp, _vp, _pa, _pa, _dp, _pa]),
    ("gram_kde_regime_of", _st, [_d, _d, _d, _dp, _dp, ctypes.POINTER(_int)]),
    ("gram_kde_eval_approx", _st, [_vp, _vp, _pa, ctypes.POINTER(ApproxOptions), _int, _pa,
                                   ctypes.POINTER(ApproxInfo)]),
]

for _name, _res, _args in _APPROX:
    _f = getattr(lib, _name, None)
    if _f is not None:
        _f.restype, _f.argtypes = _res, _args
        setattr(lib, _name, _guarded(_name, _f))
del _name, _res, _args, _f


def need(*names):
    """Raises NotImplementedError unless the loaded libgram exports every function in ``names``."""
    missing = [n for n in names if not hasattr(lib, n)]
    if missing:
        raise NotImplementedError(
            f"the loaded libgram ({LIBRARY_PATH}) lacks {', '.join(missing)}; rebuild and reinstall gram")


def version():
    """The version of the loaded library, "MAJOR.MINOR.PATCH"."""
    return lib.gram_version().decode()


def strerror(status):
    return lib.gram_strerror(status).decode()


# ---- arrays --------------------------------------------------------------------------------------

# A debugging hook for tests: when set to a list, every array handed to C is recorded there as
# (name, data address, dtype, rows, cols, row_stride, col_stride).
trace = None


def view(a, name="array"):
    """A GramArray viewing the 2-D float64/float32 ndarray ``a`` without copying.

    The caller guarantees ``a`` is 2-D, float64 or float32 in native byte order, aligned, with
    strides that are whole elements (see :func:`viewable`); it must keep ``a`` alive during the call.
    """
    isz = a.itemsize
    g = GramArray(a.ctypes.data if a.size else None, FLOAT64 if a.dtype == np.float64 else FLOAT32,
                  a.shape[0], a.shape[1], a.strides[0] // isz, a.strides[1] // isz)
    if trace is not None:
        trace.append((name, g.data or 0, g.dtype, g.rows, g.cols, g.row_stride, g.col_stride))
    return g


def viewable(a):
    """Whether a 2-D ndarray can be passed to C as it is (no copy)."""
    if a.dtype != np.float64 and a.dtype != np.float32:
        return False  # also catches non-native byte order: '>f8' != float64 on little endian
    if not a.flags.aligned:
        return False
    isz = a.itemsize
    return all(s % isz == 0 for s in a.strides)


def as_viewable(a, dtype=None, name="array"):
    """``a`` itself when it can be viewed (and has ``dtype``, if given); else one copy in C order
    (MemoryError first when the copy exceeds what the system can provide, see check_memory)."""
    if (dtype is None or a.dtype == dtype) and viewable(a):
        return a
    dt = np.dtype(dtype if dtype is not None else np.float64)
    check_memory(a.size * dt.itemsize, f"a {dt.name} copy of {name} {a.shape}")
    return np.array(a, dtype=dt, order="C")


def empty(shape, dtype=np.float64, what="the result"):
    """``np.empty(shape, dtype)`` for an output, with check_memory first: NumPy would get the
    memory from Linux's overcommit and the OOM killer end the interpreter as the call fills it."""
    dt = np.dtype(dtype)
    n = dt.itemsize
    for k in (shape if isinstance(shape, tuple) else (shape,)):
        n *= int(k)
    check_memory(n, f"{what} {shape}")
    return np.empty(shape, dtype=dt)


# ---- memory ----------------------------------------------------------------------------------------

BIG_ALLOC = 1 << 30  # gram.h's GRAM_BIG_ALLOC: smaller requests are not checked


def _read(root, path):
    try:
        with open(root + path, "rb") as f:
            return f.read(8192).decode("ascii", "replace")
    except OSError:
        return None


def _field(text, name, scale=1):
    """``Name: value`` (/proc/meminfo, times ``scale``) or ``name value`` (memory.stat)."""
    for line in (text or "").splitlines():
        key, _, rest = line.partition(":") if line.startswith(name + ":") else line.partition(" ")
        if key == name:
            try:
                return int(rest.split()[0]) * scale
            except (ValueError, IndexError):
                return None
    return None


def _cgroup_dir_room(root, d, v2):
    text = _read(root, d + ("/memory.max" if v2 else "/memory.limit_in_bytes"))
    if text is None or text.startswith("max"):
        return None
    try:
        limit = int(text.split()[0])
        usage = int((_read(root, d + ("/memory.current" if v2 else "/memory.usage_in_bytes")) or "").split()[0])
    except (ValueError, IndexError):
        return None
    if limit <= 0 or limit >= 1 << 60:  # v1 says "no limit" with a huge number
        return None
    cache = _field(_read(root, d + "/memory.stat"), "file" if v2 else "total_cache") or 0
    if 0 < cache < usage:
        usage -= cache
    return max(limit - usage, 0)


def _cgroup_room(root):
    text = _read(root, "/proc/self/cgroup")
    group, v2 = None, False
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if "memory" in parts[1].split(","):
            group, v2 = parts[2], False  # the v1 memory controller wins on a hybrid machine
        elif parts[0] == "0" and parts[1] == "" and group is None:
            group, v2 = parts[2], True
    if group is None:
        return None
    base = "/sys/fs/cgroup" if v2 else "/sys/fs/cgroup/memory"
    group = group.rstrip("/")
    best = None
    while True:
        room = _cgroup_dir_room(root, base + group, v2)
        if room is not None and (best is None or room < best):
            best = room
        if "/" not in group:
            return best
        group = group[:group.rindex("/")]


def memory_available(root=""):
    """Bytes the system can provide now, by libgram's rule (src/base/memory.c): /proc/meminfo's
    MemAvailable + SwapFree, lowered to the least room left under the memory limits of the
    process's cgroup and its ancestors (limit less the usage that is not page cache); None when
    unknown (no /proc, or a kernel without MemAvailable). ``root``: read /proc and /sys under
    that directory instead (the tests' fake trees)."""
    info = _read(root, "/proc/meminfo")
    avail = _field(info, "MemAvailable", 1024)
    if avail is None:
        return None
    avail += _field(info, "SwapFree", 1024) or 0
    room = _cgroup_room(root)
    return avail if room is None else min(avail, room)


def check_memory(nbytes, what):
    """MemoryError, before anything is allocated or scanned, when ``what`` needs ``nbytes`` (at
    least BIG_ALLOC) and the system cannot provide them: with Linux's overcommit, NumPy would get
    the memory and the OOM killer end the interpreter when it is filled."""
    if nbytes < BIG_ALLOC:
        return
    avail = memory_available()
    if avail is not None and nbytes > avail:
        raise MemoryError(f"{what} needs {nbytes / 1e9:.3g} GB but the system can provide "
                          f"{avail / 1e9:.3g} GB now")


# ---- errors --------------------------------------------------------------------------------------


class Cancelled(Exception):
    """A call cancelled by its progress callback for a reason other than Ctrl-C."""


def error(status, message):
    """The Python exception for a gram_status and the context's message."""
    text = message or strerror(status)
    if status == ENOMEM:
        return MemoryError(text)
    if status == ENOTPD:
        return np.linalg.LinAlgError(text)
    if status == EIO:
        return OSError(text)
    if status == ECANCELLED:
        return Cancelled(text)
    if status == EINTERNAL:
        return RuntimeError(f"{text} (an internal error in libgram; please report it)")
    # EINVAL, ESHAPE, ENONFINITE, EOVERFLOW, EPARSE, EDOMAIN, EUNSUPPORTED, EFORMAT
    e = ValueError(text)
    e.gram_status = status
    return e


# ---- calls ---------------------------------------------------------------------------------------

_interrupt = threading.Event()


def _on_sigint(signum, frame):
    _interrupt.set()


@PROGRESS
def _progress(user, done, total):
    # Runs on the calling (main) thread between blocks of work: CPython runs pending signal
    # handlers here, so a Ctrl-C during the call reaches _on_sigint and the call stops.
    return 1 if _interrupt.is_set() else 0


class Call:
    """One gram_context for one call (contexts are not thread-safe; this is one per call).

    ::

        with Call(threads) as c:
            c.check(lib.gram_kernel_sum(c.ctx, ...))

    In the main thread, while Python's default SIGINT handler is installed, a temporary handler
    records Ctrl-C and the progress callback cancels the running call; KeyboardInterrupt is
    raised when it returns. Elsewhere (other threads, a custom SIGINT handler) nothing changes.
    ``work`` (kernel evaluations, roughly) below SMALL_WORK skips that machinery: such a call
    ends within a millisecond anyway, and the handler swap would be most of its cost.
    """

    __slots__ = ("ctx", "threads", "work", "_old_handler")

    SMALL_WORK = 1 << 21

    def __init__(self, threads=None, work=None):
        self.threads = threads
        self.work = work
        self.ctx = ctypes.c_void_p()
        self._old_handler = None

    def __enter__(self):
        status = lib.gram_context_create(ctypes.byref(self.ctx))
        if status:
            raise error(status, "cannot create a gram context")
        try:
            if self.threads is not None:
                self.check(lib.gram_context_set_threads(self.ctx, c_int(self.threads, "threads", lo=0)))
            if ((self.work is None or self.work >= self.SMALL_WORK)
                    and threading.current_thread() is threading.main_thread()
                    and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
                _interrupt.clear()
                self._old_handler = signal.signal(signal.SIGINT, _on_sigint)
                self.check(lib.gram_context_set_progress(self.ctx, _progress, None))
        except BaseException:
            self._close()
            raise
        return self

    def _close(self):
        if self._old_handler is not None:
            signal.signal(signal.SIGINT, self._old_handler)
            self._old_handler = None
        if self.ctx:
            lib.gram_context_destroy(self.ctx)
            self.ctx = ctypes.c_void_p()

    def __exit__(self, exc_type, exc, tb):
        installed = self._old_handler is not None
        self._close()
        if installed and _interrupt.is_set():
            _interrupt.clear()
            raise KeyboardInterrupt
        return False

    def message(self):
        m = lib.gram_context_message(self.ctx)
        return m.decode("utf-8", "replace") if m else ""

    def check(self, status):
        if status:
            if status == ECANCELLED and _interrupt.is_set():
                _interrupt.clear()
                self._close()
                raise KeyboardInterrupt
            raise error(status, self.message())


def new_handle(fn, *args, threads=None):
    """Calls a gram constructor ``fn(ctx, *args, &out)`` and returns the handle (a c_void_p)."""
    out = ctypes.c_void_p()
    with Call(threads, work=0) as c:
        c.check(fn(c.ctx, *args, ctypes.byref(out)))
    return out


def take_bytes(fn, ptr):
    """``fn(ctx, ptr, &buf, &size)``'s buffer (a gram_*_to_bytes) as bytes; the C buffer is freed."""
    buf, size = ctypes.c_void_p(), ctypes.c_size_t()
    with Call(work=0) as c:
        c.check(fn(c.ctx, ptr, ctypes.byref(buf), ctypes.byref(size)))
    try:
        return ctypes.string_at(buf, size.value)
    finally:
        lib.gram_free(buf)


def as_doubles(values):
    """A contiguous float64 array and a ``double*`` to it (keep the array alive)."""
    arr = np.ascontiguousarray(values, dtype=np.float64)
    return arr, arr.ctypes.data_as(_dp)
