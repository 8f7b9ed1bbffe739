#!/usr/bin/env python3
"""Kernel attention: gram's exact softmax attention and FAVOR+ against NumPy and PyTorch on the CPU.

One run, the same inputs for every contender (Q, K, V ~ N(0, 1), sequence length L, head dimension
d = dv): median wall times of --repeat runs, the ratio to gram's exact attention, and each result's
largest difference from the float64 NumPy reference (a checksum: a fast wrong answer shows).

    PYTHONPATH=/tmp/torch-site python3 bench/bench_attention.py --lib build/libgram.so

gram is called through ctypes on the library given (no Python package needed). PyTorch is optional
(torch.nn.functional.scaled_dot_product_attention, CPU); it is a benchmark anchor only, never a
test dependency: install it privately (pip install --no-deps --target /tmp/torch-site torch).
"""
import argparse
import ctypes as C
import math
import os
import statistics
import time

import numpy as np


class Array(C.Structure):
    _fields_ = [("data", C.c_void_p), ("dtype", C.c_int), ("rows", C.c_int64), ("cols", C.c_int64),
                ("row_stride", C.c_int64), ("col_stride", C.c_int64)]


class Options(C.Structure):
    _fields_ = [("kernel", C.c_void_p), ("method", C.c_int), ("causal", C.c_int), ("n_features", C.c_int64),
                ("seed", C.c_uint64), ("rpe", C.c_void_p)]


def view(a):
    assert a.flags.c_contiguous
    return Array(a.ctypes.data, 0 if a.dtype == np.float64 else 1, a.shape[0], a.shape[1], a.shape[1], 1)


class Gram:
    def __init__(self, path, threads):
        self.lib = C.CDLL(path)
        self.lib.gram_context_message.restype = C.c_char_p
        self.ctx = C.c_void_p()
        assert self.lib.gram_context_create(C.byref(self.ctx)) == 0
        self.lib.gram_context_set_threads(self.ctx, threads)

    def attention(self, Q, K, V, method=0, causal=False, R=0, seed=0):
        out = np.empty((Q.shape[0], V.shape[1]), dtype=Q.dtype)
        o = Options(None, method, int(causal), R, seed, None)
        q, k, v, w = view(Q), view(K), view(V), view(out)
        s = self.lib.gram_attention(self.ctx, C.byref(o), C.byref(q), C.byref(k), C.byref(v), C.byref(w))
        if s:
            raise RuntimeError(self.lib.gram_context_message(self.ctx).decode())
        return out


def numpy_attention(Q, K, V, causal=False):
    S = (Q @ K.T) / np.asarray(math.sqrt(Q.shape[1]), dtype=Q.dtype)
    if causal:
        S[np.triu_indices(S.shape[0], 1)] = -np.inf
    S -= S.max(axis=1, keepdims=True)
    P = np.exp(S)
    return (P @ V) / P.sum(axis=1, keepdims=True)


def timed(fn, repeat):
    out = fn()  # warm-up (and the result)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts), max(ts), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default="build/libgram.so")
    ap.add_argument("--L", type=int, default=4096)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--features", type=int, nargs="*", default=[0, 64, 256, 1024],
                    help="FAVOR+ feature counts (0: gram's default d·log d)")
    ap.add_argument("--qk-scale", type=float, default=1.0,
                    help="Q and K ~ N(0, s²): FAVOR+'s variance grows as exp(|q' + k'|²), so s < 1 shows its useful range")
    ap.add_argument("--favor-only", action="store_true", help="gram exact and FAVOR+ only (no anchors, float64)")
    a = ap.parse_args()
    L, d = a.L, a.d
    rng = np.random.default_rng(12345)
    Q64, K64, V64 = (rng.standard_normal((L, d)) for _ in range(3))
    Q64 *= a.qk_scale
    K64 *= a.qk_scale
    g = Gram(a.lib, a.threads)
    try:
        import torch
        torch.set_num_threads(a.threads)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        tver = torch.__version__
    except ImportError:
        torch = None
    print(f"L = S = {L}, d = dv = {d}, Q, K ~ N(0, {a.qk_scale}²), threads = {a.threads}, repeat = {a.repeat} "
          "(median [min, max] seconds; errors against the float64 NumPy reference: max |diff|, RMS diff / RMS ref)")
    print(f"numpy {np.__version__}" + (f", torch {tver}" if torch else ", torch not installed"))
    rows = []
    for causal in (False, True):
        ref = numpy_attention(Q64, K64, V64, causal)
        for dt in (np.float64,) if a.favor_only else (np.float64, np.float32):
            Q, K, V = (x.astype(dt) for x in (Q64, K64, V64))
            tag = f"{'causal ' if causal else ''}{np.dtype(dt).name}"
            base = timed(lambda: g.attention(Q, K, V, causal=causal), a.repeat)
            rows.append((f"gram exact {tag}", base, base[0]))
            if a.favor_only:
                pass
            else:
                rows.append((f"numpy {tag}", timed(lambda: numpy_attention(Q, K, V, causal), a.repeat), base[0]))
            if torch and not a.favor_only:
                tq, tk, tv = (torch.from_numpy(x).unsqueeze(0) for x in (Q, K, V))
                with torch.no_grad():
                    r = timed(lambda: sdpa(tq, tk, tv, is_causal=causal)[0].numpy(), a.repeat)
                rows.append((f"torch sdpa {tag}", r, base[0]))
            if dt is np.float64:
                for R in a.features:
                    r = timed(lambda: g.attention(Q, K, V, method=1, causal=causal, R=R, seed=1), a.repeat)
                    Rn = R or math.ceil(d * math.log(d))
                    rows.append((f"gram FAVOR+ R={Rn} {tag}", r, base[0]))
        for name, (med, lo, hi, out), b in rows:
            diff = np.asarray(out, dtype=np.float64) - ref
            err, rel = float(np.max(np.abs(diff))), float(np.sqrt(np.mean(diff**2) / np.mean(ref**2)))
            print(f"{name:34s} {med:8.4f} s [{lo:.4f}, {hi:.4f}]  x{med / b:6.3f} of gram exact  "
                  f"err {err:.2e} (RMS {rel:.2e})")
        rows.clear()


if __name__ == "__main__":
    main()
