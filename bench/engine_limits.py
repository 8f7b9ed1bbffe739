#!/usr/bin/env python3
"""The engine at the machine's limit: gram's kernel sums, log-sums and Gram blocks against the
issue-5 targets, the peaks of this machine measured in the same run, and the anchors (SciPy,
scikit-learn, pykeops on the CPU) on the same inputs, in one table.

    python3 bench/engine_limits.py [--quick] [--big] [--build DIR] [--reps R] [--threads T]
                                   [--anchor-budget SECONDS] [--no-build] [--only TEXT]

What it does, in order:
1. installs its Python anchors with pip when missing (scipy, scikit-learn, pykeops) and checks that
   pykeops runs on the CPU (it compiles each formula with g++ -fopenmp at first use, into its cache
   folder; a failure is printed and the pykeops rows say so, the run goes on);
2. builds libgram, fma_peak and mem_bw in --build (incrementally, Release when it configures);
3. measures the peaks: FMA float64/float32 on all cores (build/bench/fma_peak) and the memory write
   bandwidth (build/bench/mem_bw, streaming and regular stores; the better of the two on all cores
   is the yardstick), and measures them again after each of gram's repetitions in the cases
   judged against them: this machine's speed drifts by ±20 % over minutes (a shared host), so
   the fractions use the median of the peaks measured alongside the case;
4. runs every case: gram (through ctypes on libgram.so) and the case's anchors on the same inputs
   from a fixed seed, alternating, --reps times after one warm-up; medians and spreads
   ((max - min) / median). An anchor whose full run would take more than a minute runs on the first
   k of the M queries, sized to about --anchor-budget seconds, and its time is scaled by M/k (the
   note says "anchor on k/M queries, scaled");
5. checks every result: gram against a NumPy float64 reference on a subset of rows (relative
   error ≤ 1e-10 for float64 inputs, ≤ 1e-5 for float32 inputs, the reference seeing the same
   float32 values), against the float64 anchors (SciPy, scikit-learn) with the same tolerances,
   and against pykeops (float32, which accumulates in float32) within 1e-3, a check that both
   compute the same thing. Any disagreement fails the run (exit status 1);
6. prints ONE table: case, gram median time, spread, anchor, anchor time, ratio (anchor/gram),
   gram pairs/s, the fraction of the relevant yardstick (FMA peak, write bandwidth, or the plain
   Gaussian sum of the same dtype), the target, whether it is met, the maximal relative error and
   notes.

No timing is asserted: the run fails only when results disagree. --quick runs small sizes (a smoke
test, a minute or two; its met? column is meaningless); --big adds N = M = 1e6, D = 3, float32
(gram once, anchors on sampled queries). gram runs on all cores (--threads); SciPy and
scikit-learn run on one thread (that is how they are written), pykeops and sklearn's rbf_kernel
(BLAS) on all cores.
"""
import argparse
import contextlib
import ctypes
import importlib.util
import io
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20240605
FULL_ANCHOR_LIMIT_S = 60.0
ISSUE_FMA_PEAK_F32 = 580.0  # GFLOP/s, both cores of the machine the issue's pairs/s targets assume
PIP_PACKAGES = [("numpy", "numpy"), ("scipy", "scipy"), ("sklearn", "scikit-learn"),
                ("pykeops", "pykeops")]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- Python anchors ----------------------------------------------------------------------------


def ensure_python_packages():
    """pip-install the anchors that are missing; returns {module: error} for those that failed."""
    failed = {}
    for mod, pkg in PIP_PACKAGES:
        if importlib.util.find_spec(mod) is not None:
            continue
        log(f"installing {pkg} with pip ...")
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", pkg],
                           capture_output=True, text=True)
        importlib.invalidate_caches()
        if r.returncode != 0 or importlib.util.find_spec(mod) is None:
            failed[mod] = (r.stderr.strip().splitlines() or ["pip failed"])[-1]
    for mod in ("numpy", "scipy", "sklearn"):
        if mod in failed:
            raise SystemExit(f"engine_limits.py: cannot install {mod}: {failed[mod]}")
    return failed


class Keops:
    """pykeops on the CPU back end, float32: out[i, :] = Σ_j f(|y_i - x_j|²/h²) · W[j, :]."""

    def __init__(self, pip_error):
        self.ok, self.status, self.version = False, "", ""
        if pip_error:
            self.status = f"not installed: {pip_error}"
            return
        try:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):  # the "CUDA libraries not found" warning
                import pykeops
                from pykeops.numpy import LazyTensor
            pykeops.set_verbose(False)
            self.pykeops, self.LazyTensor = pykeops, LazyTensor
            self.version = pykeops.__version__
            import numpy as np
            rng = np.random.default_rng(1)
            x = rng.standard_normal((200, 3)).astype(np.float32)
            y = rng.standard_normal((50, 3)).astype(np.float32)
            t0 = time.perf_counter()
            got = self.gauss_sum(y, x, None, 0.5)[:, 0]
            dt = time.perf_counter() - t0
            x64, y64 = x.astype(np.float64), y.astype(np.float64)
            want = np.exp(-((y64[:, None, :] - x64[None]) ** 2).sum(-1) / 0.5).sum(1)
            err = float(np.max(np.abs(got - want) / want))
            if not err <= 1e-4:
                raise RuntimeError(f"wrong result on the CPU back end (rel err {err:.1e})")
            from keopscore import config
            self.ok = True
            self.status = (f"pykeops {self.version} CPU back end works ({config.cxx_compiler} "
                           f"{'-fopenmp' if '-fopenmp' in config.cpp_flags else 'no OpenMP'}; "
                           f"first call {dt:.1f} s, compiling unless cached; cache "
                           f"{pykeops.get_build_folder()})")
        except Exception as e:  # noqa: BLE001 - any failure is reported, the run goes on
            self.status = f"pykeops {self.version} CPU back end FAILED: {type(e).__name__}: {e}"
            self.status = " ".join(self.status.split())[:400]

    def gauss_sum(self, y, x, w, h):
        LT = self.LazyTensor
        d2 = ((LT(y[:, None, :]) - LT(x[None, :, :])) ** 2).sum(-1)
        k = (-d2 * y.dtype.type(1.0 / (2.0 * h * h))).exp()
        if w is None:
            return k.sum(axis=1, backend="CPU")
        return (k * LT(w[None, :, :])).sum(axis=1, backend="CPU")


# ---- build and peaks ---------------------------------------------------------------------------


def build(build_dir, skip):
    lib = build_dir / "libgram.so"
    exes = {t: build_dir / "bench" / t for t in ("fma_peak", "mem_bw")}
    if not skip:
        if not (build_dir / "CMakeCache.txt").exists():
            log(f"configuring {build_dir} (Release) ...")
            subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir),
                            "-DCMAKE_BUILD_TYPE=Release"], check=True, stdout=subprocess.DEVNULL)
        log(f"building gram, fma_peak, mem_bw in {build_dir} (incremental) ...")
        subprocess.run(["cmake", "--build", str(build_dir), "-j", str(os.cpu_count() or 2),
                        "--target", "gram", "fma_peak", "mem_bw"], check=True,
                       stdout=subprocess.DEVNULL)
    for p in [lib, *exes.values()]:
        if not p.exists():
            raise SystemExit(f"engine_limits.py: {p} is missing (build it, or drop --no-build)")
    cache = (build_dir / "CMakeCache.txt").read_text(errors="replace")
    m = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", cache, re.M)
    build_type = m[1] if m else "?"
    return lib, exes, build_type


def mem_bw(exe, mib, reps=5):
    """{kind: (isa, one core GB/s, all threads GB/s, threads)} from bench/mem_bw."""
    out = subprocess.run([str(exe), str(mib), str(reps)], check=True, capture_output=True,
                         text=True).stdout
    bw = {}
    for line in out.splitlines():
        m = re.match(r"^(write_nt|write)\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)", line)
        if m:
            bw[m[1]] = (m[2], float(m[3]), float(m[4]), int(m[5]))
    return bw


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---- cases -------------------------------------------------------------------------------------

F32_TOL, F64_TOL, KEOPS_TOL = 1e-5, 1e-10, 1e-3


def sizes(quick, big):
    """The cases. Each: name, op (sum | logsum | matrix), family, N, M, D, dtype, h, V, reference
    rows, anchors [(name, target ratio or None)], targets [(kind, ...)]; see row_for_target."""
    q = quick
    n3 = 4000 if q else 100000
    nhi = 2000 if q else 20000
    n784 = 1000 if q else 20000
    nv = 4000 if q else 30000
    nmat = 3000 if q else 20000
    C = []

    def case(name, op, fam, n, m, d, dt, h, v=1, anchors=(), targets=(), ref_rows=64, reps=None):
        C.append(dict(name=name, op=op, family=fam, n=n, m=m, d=d, dtype=dt, h=h, v=v,
                      anchors=list(anchors), targets=list(targets), ref_rows=ref_rows,
                      reps=reps))

    e = lambda x: f"{x:.0e}".replace("e+0", "e")  # noqa: E731
    case(f"gauss sum D=3 f32 N=M={e(n3)}", "sum", "gaussian", n3, n3, 3, "f32", 0.5,
         anchors=[("pykeops", 10.0)], targets=[("pairs", 12e9)])
    case(f"gauss sum D=3 f64 N=M={e(n3)}", "sum", "gaussian", n3, n3, 3, "f64", 0.5,
         anchors=[("scipy", 25.0), ("sklearn", 100.0)], targets=[("pairs", 4e9)])
    case(f"gauss sum D=64 f32 N=M={e(nhi)}", "sum", "gaussian", nhi, nhi, 64, "f32", 4.0,
         anchors=[("pykeops", 10.0)], targets=[("fma", 0.70, "float32", "2·D", 2 * 64)])
    case(f"gauss sum D=784 f32 N=M={e(n784)}", "sum", "gaussian", n784, n784, 784, "f32", 14.0,
         anchors=[("pykeops", 10.0)], targets=[("fma", 0.70, "float32", "2·D", 2 * 784)],
         ref_rows=16)
    case(f"gauss sum V=16 D=3 f64 N=M={e(nv)}", "sum", "gaussian", nv, nv, 3, "f64", 0.5, v=16,
         targets=[("fma", 0.60, "float64", "2·V", 2 * 16)])
    case(f"gauss sum V=16 D=3 f32 N=M={e(nv)}", "sum", "gaussian", nv, nv, 3, "f32", 0.5, v=16,
         anchors=[("pykeops", 10.0)],
         targets=[("fma", 0.60, "float64", "2·V, f64 weights", 2 * 16)])
    case(f"gauss logsum D=3 f32 N=M={e(n3)}", "logsum", "gaussian", n3, n3, 3, "f32", 0.5,
         targets=[("rel", 0.60, C[0]["name"], "f32 sum")])
    case(f"gauss logsum D=3 f64 N=M={e(n3)}", "logsum", "gaussian", n3, n3, 3, "f64", 0.5,
         targets=[("rel", 0.60, C[1]["name"], "f64 sum")])
    case(f"gauss K(X,X) D=3 f64 N={e(nmat)}", "matrix", "gaussian", nmat, nmat, 3, "f64", 1.0,
         anchors=[("rbf_kernel", None)], targets=[("mem", 0.70)], ref_rows=16)
    case(f"laplacian sum D=3 f32 N=M={e(n3)}", "sum", "laplacian", n3, n3, 3, "f32", 0.5,
         targets=[("rel", 0.60, C[0]["name"], "gauss f32")])
    case(f"matern52 sum D=3 f32 N=M={e(n3)}", "sum", "matern52", n3, n3, 3, "f32", 0.5,
         targets=[("rel", 0.60, C[0]["name"], "gauss f32")])
    if big:
        nb = 20000 if q else 1000000
        case(f"gauss sum D=3 f32 N=M={e(nb)} (--big)", "sum", "gaussian", nb, nb, 3, "f32", 0.5,
             anchors=[("pykeops", None), ("scipy", None)], targets=[("pairs", 12e9)],
             ref_rows=16, reps=1)
    return C


def family_values(fam, t):
    """k as a function of t = |y - x|²/h² (NumPy float64)."""
    import numpy as np
    if fam == "gaussian":
        return np.exp(-0.5 * t)
    r = np.sqrt(t)
    if fam == "laplacian":
        return np.exp(-r)
    if fam == "matern52":
        s = math.sqrt(5.0) * r
        return (1.0 + s + 5.0 * t / 3.0) * np.exp(-s)
    raise ValueError(fam)


def reference(c, Y64, X64, W64, idx):
    """NumPy float64 results of the case for the query rows idx (sum/logsum: len(idx)×V; matrix:
    len(idx)×N)."""
    import numpy as np
    h2 = c["h"] ** 2
    out = []
    for i in idx:
        diff = X64 - Y64[i]
        t = np.einsum("ij,ij->i", diff, diff) / h2
        if c["op"] == "logsum":
            a = -0.5 * t
            mx = a.max()
            out.append([mx + math.log(np.exp(a - mx).sum())])
        else:
            f = family_values(c["family"], t)
            if c["op"] == "matrix":
                out.append(f)
            else:
                out.append(f @ W64 if W64 is not None else [f.sum()])
    return np.asarray(out, dtype=np.float64)


def rel_err(got, want, logspace=False):
    import numpy as np
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if logspace:  # relative error of the sums from their logarithms
        return float(np.max(np.abs(np.expm1(got - want))))
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(want == 0, np.where(got == 0, 0.0, np.inf), np.abs(got - want) / np.abs(want))
    return float(np.max(e))


def median(xs):
    import numpy as np
    return float(np.median(np.asarray(xs)))


def spread(xs):
    m = median(xs)
    return (max(xs) - min(xs)) / m if m > 0 else 0.0


def run_case(gram, keops, c, args, seed, yardstick=None):
    """Runs one case; returns a dict of measurements, the anchors' results and the failures.
    yardstick: {"fma" | "mem": function measuring it now}; the case's own kinds are measured after
    each of gram's repetitions, so its fraction of the machine's limit is a same-minute one."""
    import numpy as np
    from anchors import IsotropicKDE, check_isotropic_kde
    n, m, d, v, h = c["n"], c["m"], c["d"], c["v"], c["h"]
    rng = np.random.default_rng(seed)
    X64 = rng.standard_normal((n, d))
    Y64 = rng.standard_normal((m, d)) if c["op"] != "matrix" else X64
    W64 = rng.random((n, v)) if v > 1 else None
    f32 = c["dtype"] == "f32"
    if f32:
        Xg = X64.astype(np.float32)
        Yg = Xg if c["op"] == "matrix" else Y64.astype(np.float32)
        X64, Y64 = Xg.astype(np.float64), Yg.astype(np.float64)  # everyone sees the same values
        Wg = W64.astype(np.float32) if W64 is not None else None
        W64 = Wg.astype(np.float64) if Wg is not None else None
        tol = F32_TOL
    else:
        Xg, Yg, Wg, tol = X64, Y64, W64, F64_TOL
    out = np.empty((m, n) if c["op"] == "matrix" else (m, v))
    k = gram.kernel(f"{c['family']}(lengthscale={h!r})")
    failures, anchor_rows = [], []
    reps = c["reps"] or args.reps
    try:
        log_norm = gram.log_normalizer(k, d) if any(a in ("scipy", "sklearn")
                                                    for a, _ in c["anchors"]) else 0.0
        op = c["op"]

        def run_gram():
            t0 = time.perf_counter()
            if op == "sum":
                gram.sum(k, Yg, Xg, Wg, out)
            elif op == "logsum":
                gram.logsum(k, Yg, Xg, None, out)
            else:
                gram.matrix(k, None, Xg, out)
            return time.perf_counter() - t0

        def density(rows):  # gram's normalised density from its sum, rows 0..rows-1
            return out[:rows, 0] / n / math.exp(log_norm)

        # Anchors: (label, function of a query block, how to compare with gram, tolerance).
        anchors = []
        for a, target in c["anchors"]:
            if a == "scipy":
                check_isotropic_kde(IsotropicKDE(X64[:500].T, h), X64[:500], Y64[:3], h)
                kde = IsotropicKDE(X64.T, h)
                anchors.append(dict(label="scipy gaussian_kde", target=target, tol=tol,
                                    fn=lambda q, kde=kde: np.log(kde(q.T)), kind="logdensity"))
            elif a == "sklearn":
                from sklearn.neighbors import KernelDensity
                kd = KernelDensity(kernel="gaussian", bandwidth=h, rtol=0.0, atol=0.0).fit(X64)
                anchors.append(dict(label="sklearn KernelDensity", target=target, tol=tol,
                                    fn=lambda q, kd=kd: kd.score_samples(q), kind="logdensity"))
            elif a == "rbf_kernel":
                from sklearn.metrics.pairwise import rbf_kernel
                anchors.append(dict(label="sklearn rbf_kernel", target=target, tol=tol,
                                    fn=lambda q: rbf_kernel(q, X64, gamma=0.5 / h ** 2),
                                    kind="matrix", qsrc=X64))
            elif a == "pykeops":
                label = "pykeops CPU f32"
                if not keops.ok:
                    anchor_rows.append(dict(label=label, target=target, error=keops.status))
                    continue
                Yk = Yg if f32 else Yg.astype(np.float32)
                Xk = Xg if f32 else Xg.astype(np.float32)
                Wk = None if Wg is None else np.ascontiguousarray(Wg, dtype=np.float32)
                anchors.append(dict(label=label, target=target, tol=KEOPS_TOL, kind="sum",
                                    fn=lambda q, Xk=Xk, Wk=Wk: keops.gauss_sum(q, Xk, Wk, h),
                                    qsrc=Yk))

        # Warm-up: gram once (not for a single-rep case: --big), then each anchor on a few rows
        # (pykeops compiles here), then a timed pilot sizing its query subset.
        if reps > 1:
            run_gram()
        m0 = min(m, 64 if args.quick else 256)
        for a in anchors:
            q = a.get("qsrc", Y64)
            try:
                a["fn"](q[:8])
                t0 = time.perf_counter()
                a["fn"](q[:m0])
                est = (time.perf_counter() - t0) * m / m0
            except Exception as e:  # noqa: BLE001 - an anchor that cannot run is reported
                a["error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
                continue
            a["msub"] = m if est <= FULL_ANCHOR_LIMIT_S else \
                int(min(m, max(m0, m * args.anchor_budget / est)))
            a["times"], a["est"] = [], est

        tg, along = [], []
        kinds = {"fma" if t[0] == "pairs" else t[0] for t in c["targets"]} & set(yardstick or {})
        for _ in range(reps):
            tg.append(run_gram())
            if kinds:
                along.append({kd: yardstick[kd]() for kd in kinds})
            for a in anchors:
                if "error" in a:
                    continue
                q = a.get("qsrc", Y64)
                a["result"] = None  # the Gram block's anchor result is GBs
                try:
                    t0 = time.perf_counter()
                    a["result"] = a["fn"](q[:a["msub"]])
                    a["times"].append((time.perf_counter() - t0) * m / a["msub"])
                except Exception as e:  # noqa: BLE001 - reported in the table
                    a["error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    finally:
        gram.lib.gram_kernel_destroy(k)

    # gram against the NumPy float64 reference, on rows spread over all M (first, last, between)
    rows = min(m, c["ref_rows"])
    idx = np.unique(np.linspace(0, m - 1, rows).round().astype(np.int64))
    ref = reference(c, Y64, X64, W64, idx)
    err_ref = rel_err(out[idx], ref, logspace=c["op"] == "logsum")
    if not err_ref <= tol:
        failures.append(f"{c['name']}: gram vs NumPy float64 reference ({rows} rows): max "
                        f"relative error {err_ref:.2e} > {tol:.0e}")
    # gram against the anchors
    for a in anchors:
        if "error" in a:
            anchor_rows.append(dict(label=a["label"], target=a["target"], error=a["error"]))
            continue
        ms = a["msub"]
        if a["kind"] == "logdensity":
            err = rel_err(np.log(density(ms)), a["result"], logspace=True)
        else:  # raw sums (pykeops) or Gram-block rows (rbf_kernel)
            err = rel_err(out[:ms], a["result"])
        if not err <= a["tol"]:
            failures.append(f"{c['name']}: gram vs {a['label']}: max relative error {err:.2e} > "
                            f"{a['tol']:.0e}")
        note = "" if ms == m else f"anchor on {ms}/{m} queries, scaled"
        anchor_rows.append(dict(label=a["label"], target=a["target"], t=median(a["times"]),
                                spread=spread(a["times"]), err=err, note=note))
    return dict(case=c, t=median(tg), spread=spread(tg), reps=reps, err_ref=err_ref,
                ref_rows=len(idx), anchors=anchor_rows, along=along), failures


# ---- the table ---------------------------------------------------------------------------------


def fmt_t(s):
    return f"{s:.3g} s" if s >= 0.01 else f"{s * 1e3:.3g} ms"


def alongside_fma(r, dt):
    """The all-core FMA peaks of dtype dt measured alongside result r's repetitions."""
    return [a["fma"][dt][2] for a in r.get("along", []) if dt in a.get("fma", {})]


def build_rows(results, peaks, bw_best):
    by_name = {r["case"]["name"]: r for r in results}
    rows = []
    for r in results:
        c = r["case"]
        pairs = c["n"] * c["m"] / r["t"]
        gram_cols = dict(case=c["name"], gram=fmt_t(r["t"]),
                         spread=f"{100 * r['spread']:.0f}%" if r["reps"] > 1 else "—",
                         pairs=f"{pairs:.3g}".replace("e+0", "e").replace("e+", "e"))
        base_note = [] if r["reps"] > 1 else [f"{r['reps']} rep, no warm-up"]
        for tgt in c["targets"]:
            kind = tgt[0]
            frac, tstr, met = "—", "—", None
            if kind == "pairs":
                frac = f"{100 * pairs / tgt[1]:.0f}% of target"
                al = alongside_fma(r, "float32")
                if al or "float32" in peaks:
                    # The issue set these for 2 AVX-512 cores at ~290 GFLOP/s float32 each; the
                    # same fraction of this machine's measured peak (alongside the case where
                    # measured) is printed beside it.
                    s = (median(al) if al else peaks["float32"][2]) / ISSUE_FMA_PEAK_F32
                    frac += f" ({100 * pairs / (tgt[1] * s):.0f}% of it scaled by FMA peak)"
                tstr = f"≥ {tgt[1]:.3g} pairs/s"
                met = pairs >= tgt[1]
            elif kind == "fma":
                _, need, dt, what, fpp = tgt
                # the peak measured alongside this case's repetitions (median) where there is
                # one: this machine's speed drifts by ±20 % over minutes (a shared host)
                al = alongside_fma(r, dt)
                pk = median(al) if al else peaks.get(dt, (0, 0, 0))[2]
                if pk:
                    gf = pairs * fpp * 1e-9
                    f = gf / pk
                    frac = (f"{100 * f:.1f}% FMA {dt} ({gf:.0f} of {pk:.0f} GF/s"
                            f"{' alongside' if al else ''}, {what})")
                    met = f >= need
                tstr = f"≥ {100 * need:.0f}% FMA {dt} peak"
            elif kind == "mem":
                need = tgt[1]
                gbs = c["n"] * c["m"] * 8 / r["t"] * 1e-9
                al = [max(v[2] for v in a["mem"].values()) for a in r.get("along", [])
                      if a.get("mem")]
                bw = median(al) if al else bw_best
                if bw:
                    f = gbs / bw
                    frac = (f"{100 * f:.1f}% write bw ({gbs:.1f} of {bw:.1f} GB/s"
                            f"{' alongside' if al else ''})")
                    met = f >= need
                tstr = f"≥ {100 * need:.0f}% write bw"
            elif kind == "rel":
                _, need, base, what = tgt
                if base in by_name:
                    b = by_name[base]
                    bp = b["case"]["n"] * b["case"]["m"] / b["t"]
                    f = pairs / bp
                    frac = f"{100 * f:.0f}% of {what}"
                    met = f >= need
                tstr = f"≥ {100 * need:.0f}% of {what}"
            rows.append(dict(gram_cols, anchor="—", anchor_t="", ratio="", frac=frac, target=tstr,
                             met="—" if met is None else ("yes" if met else "NO"),
                             err=f"{r['err_ref']:.1e} (NumPy f64, {r['ref_rows']} rows)",
                             note="; ".join(base_note)))
        for a in r["anchors"]:
            tstr = f"≥ {a['target']:g}×" if a["target"] else "—"
            if "error" in a:
                rows.append(dict(gram_cols, anchor=a["label"], anchor_t="unavailable", ratio="",
                                 frac="", target=tstr, met="n/a", err="",
                                 note=a["error"]))
                continue
            ratio = a["t"] / r["t"]
            met = "—" if not a["target"] else ("yes" if ratio >= a["target"] else "NO")
            note = "; ".join(x for x in [a["note"], f"anchor spread {100 * a['spread']:.0f}%"
                                         if r["reps"] > 1 else ""] if x)
            rows.append(dict(gram_cols, anchor=a["label"], anchor_t=fmt_t(a["t"]),
                             ratio=f"{ratio:.1f}×", frac="", target=tstr, met=met,
                             err=f"{a['err']:.1e}", note=note))
    return rows


def print_table(rows):
    cols = [("case", "case"), ("gram", "gram (median)"), ("spread", "spread"),
            ("anchor", "anchor"), ("anchor_t", "anchor time"), ("ratio", "ratio"),
            ("pairs", "gram pairs/s"), ("frac", "fraction of yardstick"), ("target", "target"),
            ("met", "met?"), ("err", "max rel err"), ("note", "note")]
    table = [[h for _, h in cols]] + [[str(r[k]) for k, _ in cols] for r in rows]
    w = [max(len(t[i]) for t in table) for i in range(len(cols))]
    for j, t in enumerate(table):
        print("| " + " | ".join(s.ljust(w[i]) for i, s in enumerate(t)) + " |")
        if j == 0:
            print("|" + "|".join("-" * (x + 2) for x in w) + "|")


# ---- main --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument("--big", action="store_true", help="add N = M = 1e6, D = 3, float32")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="gram threads (0 = all cores)")
    ap.add_argument("--build", type=Path, default=ROOT / "build", help="build directory")
    ap.add_argument("--no-build", action="store_true", help="use the build directory as it is")
    ap.add_argument("--only", default=None, metavar="TEXT",
                    help="run only the cases whose name contains TEXT (relative targets need "
                         "their baseline case too)")
    ap.add_argument("--anchor-budget", type=float, default=None,
                    help="seconds per subsampled anchor run (default 10; --quick 1)")
    args = ap.parse_args()
    if args.anchor_budget is None:
        args.anchor_budget = 1.0 if args.quick else 10.0
    if args.reps < 1:
        ap.error("--reps must be >= 1")

    pip_failed = ensure_python_packages()
    sys.path.insert(0, str(ROOT / "bench"))
    import numpy as np
    import scipy
    import sklearn
    import anchors as A

    class Gram(A.Gram):
        """anchors.Gram plus weights, gram_kernel_logsum and gram_kernel_matrix."""

        def __init__(self, path, threads):
            super().__init__(path, threads)
            pa = ctypes.POINTER(A.GramArray)
            vp = ctypes.c_void_p
            for name, argt in [("gram_kernel_logsum", [vp, vp, pa, pa, pa, pa]),
                               ("gram_kernel_matrix", [vp, vp, pa, pa, pa])]:
                f = getattr(self.lib, name)
                f.restype, f.argtypes = ctypes.c_int, argt
            self.lib.gram_kernel_sum.argtypes = [vp, vp, pa, pa, pa, pa]

        def sum(self, k, Y, X, W, out):
            y, x, w, o = A.gram_array(Y), A.gram_array(X), None, A.gram_array(out)
            if W is not None:
                w = A.gram_array(W)
            self._check(self.lib.gram_kernel_sum(self.ctx, k, ctypes.byref(y), ctypes.byref(x),
                                                 None if w is None else ctypes.byref(w),
                                                 ctypes.byref(o)), "gram_kernel_sum")

        def logsum(self, k, Y, X, W, out):
            y, x, o = A.gram_array(Y), A.gram_array(X), A.gram_array(out)
            w = None if W is None else A.gram_array(W)
            self._check(self.lib.gram_kernel_logsum(self.ctx, k, ctypes.byref(y),
                                                    ctypes.byref(x),
                                                    None if w is None else ctypes.byref(w),
                                                    ctypes.byref(o)), "gram_kernel_logsum")

        def matrix(self, k, Y, X, out):
            x, o = A.gram_array(X), A.gram_array(out)
            y = None if Y is None else A.gram_array(Y)
            self._check(self.lib.gram_kernel_matrix(self.ctx, k,
                                                    None if y is None else ctypes.byref(y),
                                                    ctypes.byref(x), ctypes.byref(o)),
                        "gram_kernel_matrix")

    keops = Keops(pip_failed.get("pykeops"))
    log(keops.status)

    lib, exes, build_type = build(args.build.resolve(), args.no_build)
    gram = Gram(lib, args.threads)
    log("measuring the peaks (fma_peak, mem_bw) ...")
    peaks = A.fma_peak(exes["fma_peak"])
    bw = mem_bw(exes["mem_bw"], 256 if args.quick else 2048)
    bw_best = max((v[2] for v in bw.values()), default=0.0)

    cases = sizes(args.quick, args.big)
    if args.only:
        cases = [c for c in cases if args.only in c["name"]]
        if not cases:
            ap.error(f"--only {args.only!r} matches no case")
    results, failures = [], []
    yardstick = {"fma": lambda: A.fma_peak(exes["fma_peak"]),
                 "mem": lambda: mem_bw(exes["mem_bw"], 256 if args.quick else 1024, reps=3)}
    for i, c in enumerate(cases):
        log(f"  running {c['name']} ...")
        r, f = run_case(gram, keops, c, args, SEED + i, yardstick)
        results.append(r)
        failures += f

    threads = gram.threads() or os.cpu_count()
    print(f"gram {gram.version()} ({build_type} build {args.build}), arch {gram.arch()}, "
          f"{threads} threads; {cpu_model()}, {os.cpu_count()} logical CPUs")
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, scikit-learn "
          f"{sklearn.__version__} (single-threaded); {keops.status}")
    for dt in ("float32", "float64"):
        if dt in peaks:
            isa, one, allc, thr = peaks[dt]
            print(f"FMA peak {dt} ({isa}): {allc:.1f} GFLOP/s on {thr} threads "
                  f"({one:.1f} one core)")
    for kind, what in (("write_nt", "streaming stores"), ("write", "regular stores")):
        if kind in bw:
            isa, one, allc, thr = bw[kind]
            print(f"memory write bandwidth, {what} ({isa}): {allc:.1f} GB/s on {thr} threads "
                  f"({one:.1f} one core)")
    print(f"{args.reps} reps after a warm-up, medians; spread = (max - min)/median; ratio = anchor"
          f" time / gram time; float32 cases: float32 inputs, float64 accumulation and output"
          + ("; QUICK sizes: targets are for the full sizes" if args.quick else ""))
    print()
    rows = build_rows(results, peaks, bw_best)
    print_table(rows)
    print()
    judged = [r for r in rows if r["met"] in ("yes", "NO")]
    print(f"targets met: {sum(r['met'] == 'yes' for r in judged)}/{len(judged)}"
          + (" (quick sizes: not meaningful)" if args.quick else ""))
    if failures:
        print("\nengine_limits.py: RESULTS DISAGREE:\n  " + "\n  ".join(failures), flush=True)
        return 1
    print("all results agree (gram vs the NumPy float64 reference and the anchors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
