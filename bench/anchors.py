#!/usr/bin/env python3
"""gram against its anchors: the same Gaussian kernel density estimates computed by libgram
(through ctypes), scipy.stats.gaussian_kde and sklearn.neighbors.KernelDensity.

    python3 bench/anchors.py [--quick] [--reps R] [--build DIR] [--anchor-budget SECONDS]

Every case draws standard normal data X (N×D) and queries Y (M×D) from a fixed seed and evaluates
the density (1/N) Σ_j φ_h(y_i - x_j), φ_h the isotropic normal density with standard deviation h
(gram: gaussian(lengthscale=h) sum, divided by N and by exp(gram_kernel_log_normalizer)).
Runs alternate gram and the anchors; times are medians over the repetitions. An anchor whose full
run would take more than 60 s runs on the first queries only, sized to about --anchor-budget
seconds, and its time is scaled to all M queries (the table says so). Results must agree:
relative error ≤ 1e-10 for float64 inputs (the anchors compute in float64), ≤ 1e-5 for float32
inputs against the anchors on the same float32 values in float64; otherwise the run fails.
The D = 64 case also reports gram's fraction of the measured float64 FMA peak (bench/fma_peak),
counting 2·D flops per pair. Anchors run on one thread (that is how they are written); gram runs on
all cores unless --threads says otherwise.

If build/libgram.so or build/bench/fma_peak is missing, the script builds them (Release).
No timing is asserted anywhere; --quick uses small sizes to check that everything works.
"""
import argparse
import ctypes
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.neighbors import KernelDensity

ROOT = Path(__file__).resolve().parent.parent
SEED = 20240601
FULL_ANCHOR_LIMIT_S = 60.0

# ---- libgram through ctypes ------------------------------------------------------------------

GRAM_FLOAT64, GRAM_FLOAT32 = 0, 1


class GramArray(ctypes.Structure):
    """struct gram_array: ctypes inserts the same padding after the 4-byte dtype as C does."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("rows", ctypes.c_int64),
        ("cols", ctypes.c_int64),
        ("row_stride", ctypes.c_int64),
        ("col_stride", ctypes.c_int64),
    ]


def gram_array(a):
    if a.ndim != 2 or a.dtype not in (np.float64, np.float32):
        raise TypeError("gram arrays are 2-D float64 or float32")
    isz = a.itemsize
    if a.strides[0] % isz or a.strides[1] % isz:
        raise ValueError("strides must be whole elements")
    return GramArray(a.ctypes.data, GRAM_FLOAT64 if a.dtype == np.float64 else GRAM_FLOAT32,
                     a.shape[0], a.shape[1], a.strides[0] // isz, a.strides[1] // isz)


class Gram:
    def __init__(self, path, threads):
        lib = ctypes.CDLL(str(path))
        vp, i64, st = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        pa = ctypes.POINTER(GramArray)
        for name, res, args in [
            ("gram_version", ctypes.c_char_p, []),
            ("gram_strerror", ctypes.c_char_p, [st]),
            ("gram_context_create", st, [ctypes.POINTER(vp)]),
            ("gram_context_destroy", None, [vp]),
            ("gram_context_message", ctypes.c_char_p, [vp]),
            ("gram_context_set_threads", st, [vp, ctypes.c_int]),
            ("gram_context_threads", ctypes.c_int, [vp]),
            ("gram_context_arch", ctypes.c_char_p, [vp]),
            ("gram_kernel_parse", st, [vp, ctypes.c_char_p, ctypes.POINTER(vp)]),
            ("gram_kernel_destroy", None, [vp]),
            ("gram_kernel_log_normalizer", st, [vp, vp, i64, ctypes.POINTER(ctypes.c_double)]),
            ("gram_kernel_sum", st, [vp, vp, pa, pa, pa, pa]),
        ]:
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        self.lib = lib
        self.ctx = vp()
        self._check(lib.gram_context_create(ctypes.byref(self.ctx)), "gram_context_create")
        self._check(lib.gram_context_set_threads(self.ctx, threads), "gram_context_set_threads")

    def _check(self, status, what):
        if status != 0:
            msg = self.lib.gram_context_message(self.ctx).decode() if self.ctx else ""
            raise RuntimeError(f"{what}: {self.lib.gram_strerror(status).decode()}: {msg}")

    def version(self):
        return self.lib.gram_version().decode()

    def arch(self):
        return self.lib.gram_context_arch(self.ctx).decode()

    def threads(self):
        return self.lib.gram_context_threads(self.ctx)

    def kernel(self, spec):
        k = ctypes.c_void_p()
        self._check(self.lib.gram_kernel_parse(self.ctx, spec.encode(), ctypes.byref(k)),
                    f"gram_kernel_parse({spec!r})")
        return k

    def log_normalizer(self, k, d):
        out = ctypes.c_double()
        self._check(self.lib.gram_kernel_log_normalizer(self.ctx, k, d, ctypes.byref(out)),
                    "gram_kernel_log_normalizer")
        return out.value

    def kernel_sum(self, k, Y, X, out):
        y, x, o = gram_array(Y), gram_array(X), gram_array(out)
        self._check(self.lib.gram_kernel_sum(self.ctx, k, ctypes.byref(y), ctypes.byref(x), None,
                                             ctypes.byref(o)), "gram_kernel_sum")


# ---- anchors -----------------------------------------------------------------------------------


class IsotropicKDE(stats.gaussian_kde):
    """scipy's gaussian_kde with kernel covariance h²·I instead of a multiple of the data
    covariance. gaussian_kde evaluates with the attributes set by _compute_covariance (covariance,
    cho_cov, log_det); check_isotropic_kde() verifies the result against the formula, so a change
    in scipy's internals cannot pass silently."""

    def __init__(self, dataset, h):
        self._h = float(h)
        super().__init__(dataset)

    def _compute_covariance(self):
        eye = np.eye(self.d)
        self.factor = self._h
        self.covariance = self._h ** 2 * eye
        self.cho_cov = self._h * eye
        self.log_det = 2.0 * np.log(np.diag(self.cho_cov * np.sqrt(2 * np.pi))).sum()


def check_isotropic_kde(kde, X, Y, h):
    n, d = X.shape
    got = kde(Y.T)
    sq = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    want = np.exp(-0.5 * sq / h ** 2).sum(1) / n / (2 * np.pi * h * h) ** (d / 2)
    err = np.max(np.abs(got - want) / want)
    if not err <= 1e-12:
        raise SystemExit(f"anchors.py: scipy gaussian_kde override is wrong (rel err {err:.2e}); "
                         "scipy's internals changed, fix IsotropicKDE")


def median(xs):
    return float(np.median(np.asarray(xs)))


def spread(xs):
    m = median(xs)
    return (max(xs) - min(xs)) / m if m > 0 else 0.0


# ---- build -------------------------------------------------------------------------------------


def ensure_built(build):
    lib, peak = build / "libgram.so", build / "bench" / "fma_peak"
    if lib.exists() and peak.exists():
        return lib, peak
    print(f"building gram in {build} (Release) ...", file=sys.stderr, flush=True)
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2),
                    "--target", "gram", "fma_peak"], check=True, stdout=subprocess.DEVNULL)
    return lib, peak


def fma_peak(exe):
    """{dtype: (isa, one core GFLOP/s, all threads GFLOP/s, threads)} from bench/fma_peak."""
    out = subprocess.run([str(exe), "0.2"], check=True, capture_output=True, text=True).stdout
    peaks = {}
    for line in out.splitlines():
        m = re.match(r"^(float64|float32)\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)", line)
        if m:
            peaks[m[1]] = (m[2], float(m[3]), float(m[4]), int(m[5]))
    return peaks


# ---- one case ----------------------------------------------------------------------------------


def run_case(gram, case, args, seed):
    name, n, m, d, dtype, h, anchor_names = case
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((m, d))
    if dtype == "f32":
        Xg, Yg = X.astype(np.float32), Y.astype(np.float32)
        X, Y = Xg.astype(np.float64), Yg.astype(np.float64)  # anchors see the same values
        tol = 1e-5
    else:
        Xg, Yg = X, Y
        tol = 1e-10

    k = gram.kernel(f"gaussian(lengthscale={h!r})")
    try:
        log_norm = gram.log_normalizer(k, d)
        out = np.empty((m, 1))

        def run_gram():
            t0 = time.perf_counter()
            gram.kernel_sum(k, Yg, Xg, out)
            return time.perf_counter() - t0

        anchors = []
        for a in anchor_names:
            if a == "scipy":
                kde = IsotropicKDE(X.T, h)
                check_isotropic_kde(IsotropicKDE(X[:500].T, h), X[:500], Y[:3], h)
                anchors.append(("scipy gaussian_kde", lambda q, kde=kde: np.log(kde(q.T))))
            else:
                kd = KernelDensity(kernel="gaussian", bandwidth=h, rtol=0.0, atol=0.0).fit(X)
                anchors.append(("sklearn KernelDensity", lambda q, kd=kd: kd.score_samples(q)))

        # Pilot runs size the anchors' query subsets (and warm everything up).
        run_gram()
        m0 = min(m, 64 if args.quick else 256)
        plans = []
        for label, fn in anchors:
            t0 = time.perf_counter()
            fn(Y[:m0])
            est = (time.perf_counter() - t0) * m / m0
            if est <= FULL_ANCHOR_LIMIT_S:
                msub = m
            else:
                msub = int(min(m, max(m0, m * args.anchor_budget / est)))
            plans.append((label, fn, msub, est))

        tg, ta = [], [[] for _ in plans]
        logs = [None] * len(plans)
        for _ in range(args.reps):
            tg.append(run_gram())
            for i, (label, fn, msub, _) in enumerate(plans):
                t0 = time.perf_counter()
                logs[i] = fn(Y[:msub])
                ta[i].append((time.perf_counter() - t0) * m / msub)
    finally:
        gram.lib.gram_kernel_destroy(k)

    density = out[:, 0] / n / math.exp(log_norm)
    checksum = float(density.sum())
    rows, failures = [], []
    for (label, fn, msub, est), times, la in zip(plans, ta, logs):
        # relative error |gram/anchor - 1|, from the log-densities (sklearn gives logs)
        err = float(np.max(np.abs(np.expm1(np.log(density[:msub]) - la))))
        ok = err <= tol
        if not ok:
            failures.append(f"{name} vs {label}: max relative error {err:.2e} > {tol:.0e}")
        note = "" if msub == m else f"anchor on {msub}/{m} queries, time scaled"
        rows.append(dict(case=name, anchor=label, gram=median(tg), gram_spread=spread(tg),
                         anchor_t=median(times), ratio=median(times) / median(tg),
                         pairs=n * m / median(tg), err=err, ok=ok, note=note))
    return rows, failures, checksum, median(tg), n, m, d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="gram threads (0 = all cores)")
    ap.add_argument("--build", type=Path, default=ROOT / "build", help="build directory")
    ap.add_argument("--anchor-budget", type=float, default=None,
                    help="seconds per anchor run when it must be subsampled (default 10; quick 1)")
    args = ap.parse_args()
    if args.anchor_budget is None:
        args.anchor_budget = 1.0 if args.quick else 10.0
    if args.reps < 1:
        ap.error("--reps must be >= 1")

    lib, peak_exe = ensure_built(args.build.resolve())
    gram = Gram(lib, args.threads)
    peaks = fma_peak(peak_exe)

    both = ["scipy", "sklearn"]
    if args.quick:
        cases = [("N=M=4e3 D=3 f64", 4000, 4000, 3, "f64", 0.5, both),
                 ("N=M=4e3 D=3 f32", 4000, 4000, 3, "f32", 0.5, ["scipy"]),
                 ("N=M=2e3 D=64 f64", 2000, 2000, 64, "f64", 4.0, both)]
    else:
        cases = [("N=M=1e5 D=3 f64", 100000, 100000, 3, "f64", 0.5, both),
                 ("N=M=1e5 D=3 f32", 100000, 100000, 3, "f32", 0.5, ["scipy"]),
                 ("N=M=2e4 D=64 f64", 20000, 20000, 64, "f64", 4.0, both)]

    import scipy
    import sklearn
    print(f"gram {gram.version()} (arch {gram.arch()}, threads {gram.threads() or os.cpu_count()})"
          f", numpy {np.__version__}, scipy {scipy.__version__}, scikit-learn {sklearn.__version__}"
          f"; anchors single-threaded; {args.reps} reps, medians"
          + ("; QUICK sizes" if args.quick else ""), flush=True)

    all_rows, failures, extra = [], [], []
    for i, case in enumerate(cases):
        print(f"  running {case[0]} ...", file=sys.stderr, flush=True)
        rows, fails, checksum, tg, n, m, d = run_case(gram, case, args, SEED + i)
        all_rows += rows
        failures += fails
        extra.append(f"checksum {case[0]}: Σ density = {checksum:.17g}")
        if d == 64 and "float64" in peaks:
            isa, one, allc, thr = peaks["float64"]
            gflops = 2.0 * d * n * m / tg * 1e-9
            extra.append(f"{case[0]}: gram {gflops:.1f} GFLOP/s (2·D flops/pair) = "
                         f"{100 * gflops / allc:.1f}% of the float64 FMA peak "
                         f"{allc:.1f} GFLOP/s ({isa}, {thr} threads)")

    hdr = ("case", "anchor", "gram s", "spread", "anchor s", "anchor/gram", "gram pairs/s",
           "max rel err", "note")
    table = [hdr] + [(r["case"], r["anchor"], f"{r['gram']:.4f}", f"{100 * r['gram_spread']:.0f}%",
                      f"{r['anchor_t']:.3f}", f"{r['ratio']:.1f}x", f"{r['pairs']:.3e}",
                      f"{r['err']:.1e}" + ("" if r["ok"] else " FAIL"), r["note"])
                     for r in all_rows]
    widths = [max(len(row[c]) for row in table) for c in range(len(hdr))]
    print()
    for j, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for dt in ("float64", "float32"):
        if dt in peaks:
            isa, one, allc, thr = peaks[dt]
            print(f"FMA peak {dt} ({isa}): {one:.1f} GFLOP/s one core, {allc:.1f} GFLOP/s on "
                  f"{thr} threads")
    for line in extra:
        print(line)
    if failures:
        print("\nanchors.py: RESULTS DISAGREE:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("all results agree with the anchors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
