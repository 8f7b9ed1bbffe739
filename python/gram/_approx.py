"""The tolerance front end's Python side: validating rtol/atol/method/delta into a
``gram_approx_options`` and reading ``gram_approx_info`` back (gram.h, "Approximate kernel sums
with a tolerance"; docs/approx.md)."""
import ctypes
import math
import numbers

import numpy as np

from . import _lib
from ._validation import seed_from

METHODS = _lib.APPROX_METHODS


def _real(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def check_tol(value, name):
    v = _real(value, name)
    if not (v >= 0) or math.isinf(v):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_method(method):
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError("method must be one of " + ", ".join(repr(m) for m in METHODS) + f", got {method!r}")
    return method


def check_delta(delta):
    d = _real(delta, "delta")
    if not (0 < d < 1):
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    return d


def options(rtol=0, atol=0, method="auto", delta=1e-3, random_state=None):
    """(ApproxOptions, approximate): validated options and whether they ask for anything but the
    exact sum (a tolerance, or the tree or sampling method named)."""
    rtol, atol = check_tol(rtol, "rtol"), check_tol(atol, "atol")
    method, delta = check_method(method), check_delta(delta)
    opt = _lib.ApproxOptions()
    _lib.lib.gram_approx_options_init(ctypes.byref(opt))
    opt.rtol, opt.atol, opt.delta = rtol, atol, delta
    opt.method = METHODS.index(method)
    approximate = rtol > 0 or atol > 0 or method not in ("auto", "exact")
    # the seed only matters to the randomized methods; drawing it anyway would consume the caller's
    # generator
    opt.seed = seed_from(random_state) if approximate and method in ("auto", "sampling", "features") else 0
    return opt, approximate


def info_dict(info, opt, err=None):
    """The ``info`` a caller sees: which method ran, its failure probability (0: the bounds are
    deterministic), the kernel evaluations, the tolerance asked for, and the per-value bounds."""
    d = {
        "method": METHODS[info.method] if 0 <= info.method < len(METHODS) else str(info.method),
        "delta": float(info.delta),
        "kernel_evaluations": int(info.kernel_evaluations),
        "rtol": float(opt.rtol),
        "atol": float(opt.atol),
    }
    if err is not None:
        d["error_bound"] = err
    return d
