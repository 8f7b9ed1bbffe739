#!/usr/bin/env python3
"""Gaussian-process benchmark: gram against scikit-learn on the same data, in one run.

    python3 bench/gp_bench.py                 # all cases (about 5 minutes on 2 cores); installs
                                              # scikit-learn and gram (pip install .) first
    python3 bench/gp_bench.py --cases lml     # one case; --n, --reps, --big-n to change sizes

Cases (issue 6):
  lml   one log-marginal-likelihood-with-gradient evaluation, D=8, ARD RBF x constant + white
        (10 hyperparameters), N=5000: time and peak memory of gram and of scikit-learn's
        GaussianProcessRegressor.log_marginal_likelihood(theta, eval_gradient=True);
  big   the same evaluation at N=2e4 with gram alone (scikit-learn's N x N x P gradient tensor
        alone would need 2e4^2 * 10 * 8 bytes = 32 GB, more than this machine has);
  co2   a full fit (L-BFGS-B from the same starting point) of the Mauna Loa CO2 kernel of
        Rasmussen & Williams (2006) section 5.4.3 on data/co2_monthly.csv.

Each measurement runs in a fresh Python process so its peak resident memory (VmHWM) is its own.
Outputs are compared (a fast wrong answer fails the run): log marginal likelihoods and gradients
within 1e-9 relative; for the fit, gram's learned likelihood must be at least scikit-learn's.
Both libraries use both cores (OpenBLAS threads for scikit-learn's NumPy/SciPy, OpenMP +
OpenBLAS for gram). Times are medians over --reps runs with the spread (min-max).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = textwrap.dedent(
    r'''
    import json, sys, time, os
    import numpy as np

    def hwm():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def data(n, d=8, seed=1):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, d))
        y = np.sin(X @ np.linspace(0.3, 1.0, d)) + 0.1 * rng.normal(size=n)
        return X, y

    def sk_kernel_lml(d=8):
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel as C, WhiteKernel
        return C(1.5) * RBF(np.linspace(0.8, 2.0, d)) + WhiteKernel(0.1)

    def co2():
        path = os.path.join(sys.argv[3], "data", "co2_monthly.csv")
        a = np.loadtxt(path, delimiter=",", skiprows=1)
        return a[:, :1], a[:, 1]

    def sk_kernel_co2():
        # The starting point of scikit-learn's Mauna Loa example (R&W 2006, section 5.4.3):
        # long-term trend, seasonal component (period fixed at 1 year), medium-term
        # irregularities, noise.
        from sklearn.gaussian_process.kernels import (RBF, ExpSineSquared, RationalQuadratic,
                                                      WhiteKernel, ConstantKernel as C)
        k1 = C(50.0**2) * RBF(length_scale=50.0)
        k2 = C(2.0**2) * RBF(length_scale=100.0) * ExpSineSquared(
            length_scale=1.0, periodicity=1.0, periodicity_bounds="fixed")
        k3 = C(0.5**2) * RationalQuadratic(length_scale=1.0, alpha=1.0)
        k4 = C(0.1**2) * RBF(length_scale=0.1) + WhiteKernel(
            noise_level=0.1**2, noise_level_bounds=(1e-5, np.inf))
        return k1 + k2 + k3 + k4

    case, lib, root = sys.argv[1], sys.argv[2], sys.argv[3]
    n = int(sys.argv[4])
    out = {}
    if lib == "gram":
        import gram
        GPR = gram.GaussianProcessRegressor
    else:
        from sklearn.gaussian_process import GaussianProcessRegressor as GPR
    if case in ("lml", "big"):
        X, y = data(n)
        m = GPR(kernel=sk_kernel_lml(), optimizer=None).fit(X, y)  # (not timed)
        theta = m.kernel_.theta
        t = time.perf_counter()
        lml, grad = m.log_marginal_likelihood(theta, eval_gradient=True)
        out["time"] = time.perf_counter() - t
        out["lml"] = float(lml)
        out["grad"] = [float(g) for g in grad]
        out["names"] = [h.name for h in m.kernel_.hyperparameters] if hasattr(m.kernel_, "hyperparameters") else []
    else:
        X, y = co2()
        kernel = sk_kernel_co2()  # (imports scikit-learn's kernels: not part of the fit's time)
        t = time.perf_counter()
        m = GPR(kernel=kernel, alpha=0.0, normalize_y=True).fit(X, y)
        out["time"] = time.perf_counter() - t
        out["lml"] = float(m.log_marginal_likelihood_value_)
        out["kernel"] = str(m.kernel_)
        out["theta"] = [float(v) for v in m.kernel_.theta]
    out["peak"] = hwm()
    print("RESULT " + json.dumps(out))
    '''
)


def run(case, lib, n, env):
    p = subprocess.run([sys.executable, "-c", WORKER, case, lib, ROOT, str(n)], capture_output=True,
                       text=True, env=env)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"{lib} {case} failed:\n{p.stdout}\n{p.stderr}")


def med(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt_t(xs):
    m, lo, hi = med(xs)
    return f"{m:.2f} ({lo:.2f}-{hi:.2f})" if len(xs) > 1 else f"{m:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="lml,big,co2")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--big-n", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=3, help="repetitions of gram (scikit-learn: --sk-reps)")
    ap.add_argument("--sk-reps", type=int, default=1)
    ap.add_argument("--no-install", action="store_true", help="do not pip-install scikit-learn")
    args = ap.parse_args()
    if not args.no_install:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "scikit-learn", "scipy", "numpy"],
                       check=False)
        # gram itself, from this checkout (the worker imports the installed package)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", ROOT], check=True)
    env = dict(os.environ)
    cases = args.cases.split(",")
    rows = []
    failed = False
    print(f"# gp_bench: {os.cpu_count()} CPUs; times in seconds (median (min-max)), peak = VmHWM of the process")

    if "lml" in cases:
        g = [run("lml", "gram", args.n, env) for _ in range(args.reps)]
        s = [run("lml", "sklearn", args.n, env) for _ in range(args.sk_reps)]
        gl, sl = g[0], s[0]
        rel = abs(gl["lml"] - sl["lml"]) / abs(sl["lml"])
        # gram's theta follows scikit-learn's order for translated kernels (checked by the names)
        gerr = max(abs(a - b) / max(abs(b), 1e-300) for a, b in zip(gl["grad"], sl["grad"]))
        ok = rel <= 1e-9 and gerr <= 1e-9 and len(gl["grad"]) == len(sl["grad"])
        failed |= not ok
        tg, ts = med([r["time"] for r in g])[0], med([r["time"] for r in s])[0]
        pg, ps = max(r["peak"] for r in g), max(r["peak"] for r in s)
        rows.append(("LML+grad N=%d D=8 (10 hyper)" % args.n, fmt_t([r["time"] for r in g]),
                     fmt_t([r["time"] for r in s]), f"{ts / tg:.1f}x", f"{pg / 1e9:.2f} / {ps / 1e9:.2f} GB",
                     f"{pg / ps:.2f}", f"lml {rel:.1e}, grad {gerr:.1e}" + ("" if ok else " DISAGREE")))
    if "big" in cases:
        g = [run("big", "gram", args.big_n, env) for _ in range(max(1, min(args.reps, 2)))]
        pg = max(r["peak"] for r in g)
        rows.append(("LML+grad N=%d D=8" % args.big_n, fmt_t([r["time"] for r in g]),
                     "not run (needs >32 GB)", "-", f"{pg / 1e9:.2f} GB", "-",
                     "peak <= 8 GB" if pg <= 8e9 else "peak > 8 GB"))
    if "co2" in cases:
        g = [run("co2", "gram", 0, env) for _ in range(args.reps)]
        s = [run("co2", "sklearn", 0, env) for _ in range(args.sk_reps)]
        best_g = max(r["lml"] for r in g)
        ok = all(r["lml"] >= s[0]["lml"] - 1e-6 * abs(s[0]["lml"]) for r in g)
        failed |= not ok
        tg, ts = med([r["time"] for r in g])[0], med([r["time"] for r in s])[0]
        rows.append(("CO2 fit N=468 (R&W 5.4.3)", fmt_t([r["time"] for r in g]), fmt_t([r["time"] for r in s]),
                     f"{ts / tg:.1f}x", f"{max(r['peak'] for r in g) / 1e9:.2f} / {max(r['peak'] for r in s) / 1e9:.2f} GB",
                     "-", f"lml gram {best_g:.4f} vs sklearn {s[0]['lml']:.4f}" + ("" if ok else " WORSE")))
        print("# gram CO2 kernel:   ", g[0]["kernel"])
        print("# sklearn CO2 kernel:", s[0]["kernel"])

    hdr = ("case", "gram s", "sklearn s", "speed-up", "peak gram / sklearn", "mem ratio", "agreement")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if failed:
        print("gp_bench: FAILED (outputs disagree)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
