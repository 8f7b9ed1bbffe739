"""Kernel attention (``gram_attention``) and scalable neural network kernel layers (``gram_snnk_*``).

:func:`kernel_attention` is ``out_i = Σ_j k(q_i, k_j) v_j / Σ_j k(q_i, k_j)``: exact through the
engine (the values' sum and its normaliser in one pass, in log space, so that no row overflows or
underflows), or in linear time through positive random features (FAVOR+, Choromanski et al.
2021), causal or not, with Toeplitz relative positional biases. :class:`SNNKLayer` replaces a
layer ``f(X Wᵀ + b)`` by ``Φ(X) Ψᵀ`` (Sehanobish et al., ICLR 2024), its parameter features Ψ made
once. Both are thin translations: every number is computed in libgram.
"""
import ctypes
import weakref

import numpy as np

from . import _lib
from ._validation import check_array, is_nonfinite, nonfinite_error, seed_from

__all__ = ["kernel_attention", "SNNKLayer"]

_METHODS = {"exact": 0, "favor+": 1}
# gram_activation (gram.h): the activations the SNNK paper builds features for
ACTIVATIONS = {"sin": 1, "cos": 2, "exp": 3, "relu": 5}


def _call(fn, *args, names, threads=None, work=None):
    """``fn(ctx, *args)``; gram's NaN/inf errors as NumPy users read them, with the library's
    position and the user's argument name (``names`` maps the library's names to the user's)."""
    try:
        with _lib.Call(threads, work=work) as c:
            c.check(fn(c.ctx, *args))
    except ValueError as e:
        if is_nonfinite(e):
            name = str(e).split(":", 1)[0].strip()
            raise nonfinite_error(e, names.get(name, name)) from None
        raise


def _as_float(a, name):
    """float64 or float32 as given (no copy when C can read it), anything else as float64."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    dt = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
    return _lib.as_viewable(a, dt, name) if a.ndim == 2 else np.asarray(a, dtype=dt)


def kernel_attention(Q, K, V, kernel="softmax", method="exact", causal=False, n_features=None,
                     random_state=None, rpe=None, threads=None):
    """Kernel attention ``out_i = Σ_j k(q_i, k_j) v_j / Σ_j k(q_i, k_j)``.

    Parameters
    ----------
    Q : array-like of shape (..., L, d)
        Queries; leading dimensions (batch, heads) are looped over, each slice one call.
    K : array-like of shape (..., S, d)
        Keys (the same leading dimensions as Q).
    V : array-like of shape (..., S, dv)
        Values.
    kernel : 'softmax', str or gram kernel, default='softmax'
        'softmax' is exp(q·k/√d), softmax attention; any other value is a gram kernel spec or
        kernel object (for 'favor+': the softmax or the gaussian kernel, optionally scaled).
    method : {'exact', 'favor+'}, default='exact'
        'exact': every pair through the engine, O(L·S·d), log-space safe; 'favor+': positive
        orthogonal random features, O((L + S)·R·d).
    causal : bool, default=False
        Only keys j <= i (needs L == S).
    n_features : int, default=None
        R for 'favor+' (None: the library's default).
    random_state : int, RandomState instance or None, default=None
        The seed of the random features ('favor+').
    rpe : array-like of shape (L + S - 1,), default=None
        Relative positional biases b: the weights are k(q_i, k_j)·exp(b[j - i + L - 1]) (a Toeplitz
        mask; by FFT for 'favor+').
    threads : int, default=None
        OpenMP threads (None or 0: OpenMP's default).

    Returns
    -------
    out : ndarray of shape (..., L, dv)
        float32 where Q, K and V are all float32, else float64.
    """
    _lib.need("gram_attention", "gram_attention_options_init")
    if not (isinstance(method, str) and method in _METHODS):
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
    if not isinstance(causal, (bool, np.bool_)) and causal not in (0, 1):
        raise ValueError(f"causal must be a bool, got {causal!r}")
    Q, K, V = (_as_float(a, n) for a, n in ((Q, "Q"), (K, "K"), (V, "V")))
    for a, n in ((Q, "Q"), (K, "K"), (V, "V")):
        if a.ndim < 2:
            raise ValueError(f"{n} must have at least 2 dimensions (..., rows, columns), got shape {a.shape}")
    lead = Q.shape[:-2]
    if K.shape[:-2] != lead or V.shape[:-2] != lead:
        raise ValueError(f"Q, K and V must have the same leading (batch) dimensions, got shapes {Q.shape}, "
                         f"{K.shape} and {V.shape}")
    dtype = np.float32 if Q.dtype == K.dtype == V.dtype == np.float32 else np.float64
    if dtype == np.float64:
        Q, K, V = (a.astype(np.float64, copy=False) for a in (Q, K, V))
    opt = _lib.AttentionOptions()
    _lib.lib.gram_attention_options_init(ctypes.byref(opt))
    opt.method = _METHODS[method]
    opt.causal = int(bool(causal))
    if n_features is not None:
        opt.n_features = _lib.c_int(n_features, "n_features", "int64", lo=1)
    if method == "favor+":
        opt.seed = seed_from(random_state)
    kobj = None
    if not (isinstance(kernel, str) and kernel == "softmax"):
        from .kernels import as_kernel
        kobj = as_kernel(kernel)
        opt.kernel = kobj._handle().ptr
    rpe_arr = None
    if rpe is not None:
        rpe_arr = np.ascontiguousarray(rpe, dtype=np.float64)
        L, S = Q.shape[-2], K.shape[-2]
        if rpe_arr.shape != (L + S - 1,):
            raise ValueError(f"rpe must have L + S - 1 = {L + S - 1} values (L = {L} queries, S = {S} keys), "
                             f"got shape {rpe_arr.shape}")
        opt.rpe = rpe_arr.ctypes.data_as(_lib._dp)
    out = _lib.empty(lead + (Q.shape[-2], V.shape[-1]), dtype)
    names = {"Q": "Q", "K": "K", "V": "V"}
    for idx in np.ndindex(*lead):
        q, k, v, o = Q[idx], K[idx], V[idx], out[idx]
        q, k, v = (_lib.as_viewable(a, dtype, n) for a, n in ((q, "Q"), (k, "K"), (v, "V")))
        Qa, Ka, Va, Oa = _lib.view(q, "Q"), _lib.view(k, "K"), _lib.view(v, "V"), _lib.view(o, "out")
        _call(_lib.lib.gram_attention, ctypes.byref(opt), ctypes.byref(Qa), ctypes.byref(Ka), ctypes.byref(Va),
              ctypes.byref(Oa), names=names, threads=threads,
              work=q.shape[0] * k.shape[0] * max(q.shape[1], 1))
    del kobj, rpe_arr  # kept alive through the calls
    return out


class SNNKLayer:
    """A feed-forward layer ``f(X Wᵀ + b)`` as the dot product of random features of the input and
    of the parameters (Sehanobish, Choromanski et al., "Scalable Neural Network Kernels", ICLR
    2024, arXiv 2310.13225).

    Parameters
    ----------
    activation : {'sin', 'cos', 'exp', 'relu'}
        The activations the paper builds features for: 'sin', 'cos' and 'exp' by its universal
        random features (unbiased estimates of f(w·x + b)); 'relu' is the paper's ReLU-SNNK, whose
        expectation is the degree-1 arc-cosine kernel of [x, 1] and [w, b] over 2 (the layer of an
        infinitely wide ReLU network), not ReLU(w·x + b) itself (gram.h).
    W : array-like of shape (n_outputs, n_inputs)
    b : array-like of shape (n_outputs,), default=None
    n_components : int, default=256
        R random features per output (even for 'sin' and 'cos').
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    n_inputs, n_outputs, n_components : int
    seed : int
        The library seed drawn from ``random_state`` (the layer is a function of it).

    ``layer(X)`` and ``layer.apply(X)`` give f(X Wᵀ + b) ≈ input_features(X) @ weight_features().T,
    in X's dtype (float64 or float32). Pickles re-create the layer bit for bit.
    """

    def __init__(self, activation, W, b=None, n_components=256, random_state=None):
        _lib.need("gram_snnk_create")
        if not (isinstance(activation, str) and activation in ACTIVATIONS):
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} (the activations the SNNK "
                             f"paper builds random features for), got {activation!r}")
        W = check_array(W, name="W", estimator="SNNKLayer")
        if b is not None:
            b = np.ascontiguousarray(b, dtype=np.float64)
            if b.shape != (W.shape[0],):
                raise ValueError(f"b must have one value per row of W ({W.shape[0]}), got shape {b.shape}")
        self.activation = activation
        self.W = W
        self.b = b
        self.n_components = _lib.c_int(n_components, "n_components", "int64", lo=1)
        self.seed = seed_from(random_state)
        self._make()

    def _make(self):
        Wa = _lib.view(self.W, "W")
        bp = None if self.b is None else self.b.ctypes.data_as(_lib._dp)
        out = ctypes.c_void_p()
        _call(_lib.lib.gram_snnk_create, ACTIVATIONS[self.activation], ctypes.byref(Wa), bp, self.n_components,
              self.seed, ctypes.byref(out), names={"W": "W", "b": "b"}, work=0)
        self._ptr = out
        weakref.finalize(self, _lib.lib.gram_snnk_destroy, out.value)

    @property
    def n_inputs(self):
        return int(_lib.lib.gram_snnk_n_inputs(self._ptr))

    @property
    def n_outputs(self):
        return int(_lib.lib.gram_snnk_n_outputs(self._ptr))

    def _check_X(self, X):
        X = check_array(X, name="X", estimator="SNNKLayer")
        if X.shape[1] != self.n_inputs:
            raise ValueError(f"X has {X.shape[1]} features, but SNNKLayer is expecting {self.n_inputs} "
                             "features as input.")
        return X

    def _run(self, fn, X, cols):
        X = self._check_X(X)
        out = _lib.empty((X.shape[0], cols), X.dtype)
        if out.size:
            Xa, Oa = _lib.view(X, "X"), _lib.view(out, "out")
            _call(fn, self._ptr, ctypes.byref(Xa), ctypes.byref(Oa), names={},
                  work=X.shape[0] * self.n_components * (X.shape[1] + cols))
        return out

    def apply(self, X):
        """f(X Wᵀ + b) ≈ Φ(X) Ψᵀ, shape (n_samples, n_outputs)."""
        return self._run(_lib.lib.gram_snnk_apply, X, self.n_outputs)

    __call__ = apply

    def input_features(self, X):
        """Φ(X), shape (n_samples, n_components)."""
        return self._run(_lib.lib.gram_snnk_input_features, X, self.n_components)

    def weight_features(self, dtype=np.float64):
        """Ψ, shape (n_outputs, n_components)."""
        out = _lib.empty((self.n_outputs, self.n_components), dtype)
        Oa = _lib.view(out, "out")
        _call(_lib.lib.gram_snnk_weight_features, self._ptr, ctypes.byref(Oa), names={}, work=0)
        return out

    def __getstate__(self):
        return {"activation": self.activation, "W": self.W, "b": self.b, "n_components": self.n_components,
                "seed": self.seed}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._make()

    def __repr__(self):
        return (f"SNNKLayer(activation={self.activation!r}, n_inputs={self.W.shape[1]}, "
                f"n_outputs={self.W.shape[0]}, n_components={self.n_components})")
