"""Tests of the `gram` command (cli/) against SciPy and scikit-learn, computed here.

Every test runs the built binary (see conftest.py: $GRAM_CLI or build/cli/gram). Accuracy is
relative error with the reference's magnitude floored at 1, so log-densities near 0 are held to
the same bound in absolute terms.
"""
import csv
import io
import pathlib
import re
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gammaln
from scipy.stats import gaussian_kde
from sklearn.neighbors import KernelDensity


REPO = pathlib.Path(__file__).resolve().parents[2]
SVG_NS = "{http://www.w3.org/2000/svg}"
SK_KERNELS = ["gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"]
FAITHFUL = REPO / "data" / "faithful.csv"


# ---- helpers ---------------------------------------------------------------------------------


def run(cli, *args, stdin=None, cwd=None):
    return subprocess.run([cli, *[str(a) for a in args]], input=stdin, capture_output=True,
                          timeout=600, cwd=cwd)


def ok(cli, *args, **kw):
    p = run(cli, *args, **kw)
    assert p.returncode == 0, f"exit {p.returncode}; stderr:\n{p.stderr.decode(errors='replace')}"
    return p


def assert_close(got, want, tol, what=""):
    got = np.asarray(got, dtype=float).ravel()
    want = np.asarray(want, dtype=float).ravel()
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    fin = np.isfinite(want)
    assert np.array_equal(np.isfinite(got), fin), f"{what}: non-finite values differ"
    assert np.array_equal(got[~fin], want[~fin]), f"{what}: infinities differ"
    if fin.any():
        err = np.abs(got[fin] - want[fin]) / np.maximum(np.abs(want[fin]), 1.0)
        i = int(np.argmax(err))
        assert err[i] <= tol, (f"{what}: relative error {err[i]:.3g} > {tol:g} at {i}: "
                               f"{got[fin][i]!r} vs {want[fin][i]!r}")


def read_csv_out(text):
    """(header, values) of a CSV the command wrote."""
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    return header, np.array([[float(v) for v in r] for r in body], dtype=float)


def make_data(D, N=None, seed=0):
    rng = np.random.default_rng(seed * 1000 + D)
    N = N or (300 if D <= 5 else 200)
    X = rng.standard_normal((N, D)) * rng.uniform(0.5, 2.0, D) + rng.uniform(-3.0, 3.0, D)
    w = rng.uniform(0.1, 2.0, N)
    return X, w


def pairwise_quantile(X, q):
    d = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    return float(np.quantile(d[np.triu_indices(len(X), 1)], q))


def save(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, np.asarray(array, dtype=float))
    return path


def faithful():
    return np.loadtxt(FAITHFUL, delimiter=",", skiprows=1)


# ---- help, version, dispatch -------------------------------------------------------------------


def header_version():
    text = (REPO / "include" / "gram.h").read_text()
    parts = [re.search(rf"#define GRAM_VERSION_{k} (\d+)", text).group(1)
             for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"], ["kde", "--help"],
                                  ["sample", "--help"], ["kde", "-h"], ["help", "kde"]])
def test_help_goes_to_stdout(gram_cli, args):
    p = ok(gram_cli, *args)
    out = p.stdout.decode()
    assert out.startswith("Usage: gram"), out[:200]
    assert p.stderr == b""
    if args[0] == "kde" or args[-1] == "kde":
        for opt in ["--query", "--grid", "--loo", "--kernel", "--bandwidth", "--bandwidth-matrix",
                    "--weights", "--bounds", "--log", "--precision", "--threads", "--plot", "-o"]:
            assert opt in out


@pytest.mark.parametrize("args", [["--version"], ["kde", "--version"], ["sample", "--version"]])
def test_version(gram_cli, args):
    p = ok(gram_cli, *args)
    assert p.stdout.decode() == f"gram {header_version()}\n"
    assert p.stderr == b""


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["--frobnicate"]])
def test_bad_command_is_usage_error(gram_cli, args):
    p = run(gram_cli, *args)
    assert p.returncode == 2
    assert p.stdout == b""
    assert p.stderr


# ---- parity with scikit-learn and SciPy ------------------------------------------------------------


def cosine_reference(X, h, w):
    """log-density of the cosine-window KDE computed directly.

    scikit-learn's cosine normaliser is wrong for D >= 2 (its KernelDensity(kernel="cosine")
    integrates to 0.363 in 2-D, and to NaN for D = 20), so for D >= 2 the reference is the sum
    itself with the exact normaliser h^D · |S^{D-1}| · ∫_0^1 cos(πr/2) r^{D-1} dr.
    """
    D = X.shape[1]
    r = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)) / h
    k = np.where(r < 1, np.cos(np.pi * np.minimum(r, 1) / 2), 0.0)
    radial = quad(lambda t: np.cos(np.pi * t / 2) * t ** (D - 1), 0, 1, epsabs=0, epsrel=1e-13, limit=200)[0]
    log_norm = D * np.log(h) + np.log(2) + (D / 2) * np.log(np.pi) - gammaln(D / 2) + np.log(radial)
    return np.log(k @ w / w.sum()) - log_norm


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("D", [1, 2, 5, 20, 50])
@pytest.mark.parametrize("kernel", SK_KERNELS)
def test_matches_sklearn(gram_cli, tmp_path, kernel, D, weighted):
    X, w = make_data(D)
    # Compact kernels: about a third of the pairs inside the support, in every dimension.
    h = pairwise_quantile(X, 0.3 if kernel in ("tophat", "epanechnikov", "linear", "cosine") else 0.1)
    args = ["kde", save(tmp_path, "X.npy", X), "--kernel", kernel, "--bandwidth", repr(h), "--log",
            "-o", tmp_path / "out.npy"]
    if weighted:
        args += ["--weights", save(tmp_path, "w.npy", w)]
    ok(gram_cli, *args)
    got = np.load(tmp_path / "out.npy")
    assert got.shape in [(len(X),), (len(X), 1)]
    if kernel == "cosine" and D >= 2:
        want = cosine_reference(X, h, w if weighted else np.ones(len(X)))
    else:
        ref = KernelDensity(bandwidth=h, kernel=kernel).fit(X, sample_weight=w if weighted else None)
        want = ref.score_samples(X)
    assert_close(got, want, 1e-10, f"{kernel} D={D}")


def test_cosine_1d_reference_agrees_with_sklearn():
    """The direct cosine reference above is scikit-learn's where scikit-learn is right (D = 1)."""
    X, w = make_data(1)
    ref = KernelDensity(bandwidth=0.8, kernel="cosine").fit(X, sample_weight=w)
    assert_close(cosine_reference(X, 0.8, w), ref.score_samples(X), 1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("bw", ["scott", "silverman", "0.6"])
@pytest.mark.parametrize("D", [1, 2, 4])
def test_covariance_matches_scipy(gram_cli, tmp_path, D, bw, weighted):
    rng = np.random.default_rng(7 + D)
    N = 250
    A = rng.standard_normal((D, D)) + 2 * np.eye(D)
    X = rng.standard_normal((N, D)) @ A.T + rng.uniform(-5, 5, D)
    w = rng.uniform(0.2, 3.0, N)
    Y = X[::5] + rng.standard_normal((len(X[::5]), D)) * 0.3
    args = ["kde", save(tmp_path, "X.npy", X), "--bandwidth-matrix", "covariance", "--bandwidth", bw,
            "--log"]
    if weighted:
        args += ["--weights", save(tmp_path, "w.npy", w)]
    ok(gram_cli, *args, "-o", tmp_path / "at_data.npy")
    ok(gram_cli, *args, "--query", save(tmp_path, "Y.npy", Y), "-o", tmp_path / "at_query.npy")
    ref = gaussian_kde(X.T, bw_method=float(bw) if bw[0].isdigit() else bw,
                       weights=w if weighted else None)
    assert_close(np.load(tmp_path / "at_data.npy"), ref.logpdf(X.T), 1e-10, "at the data")
    assert_close(np.load(tmp_path / "at_query.npy"), ref.logpdf(Y.T), 1e-10, "at the queries")


def test_faithful_csv_matches_scipy(gram_cli):
    X = faithful()
    p = ok(gram_cli, "kde", FAITHFUL, "--bandwidth-matrix", "covariance")
    header, got = read_csv_out(p.stdout.decode())
    assert header == ["density"]
    assert_close(got, gaussian_kde(X.T).pdf(X.T), 1e-10)
    summary = p.stderr.decode()
    assert summary.startswith("gram kde: N=272 D=2 kernel=gaussian bandwidth=scott factor=")
    assert "(covariance)" in summary and "272 points" in summary


def test_faithful_isotropic_scott(gram_cli):
    """Isotropic scott: h_d = σ_d · n^(-1/(D+4)), i.e. the diagonal of scipy's bandwidth matrix."""
    X = faithful()
    p = ok(gram_cli, "kde", FAITHFUL, "--log")
    header, got = read_csv_out(p.stdout.decode())
    assert header == ["log_density"]
    h = X.std(axis=0, ddof=1) * len(X) ** (-1 / 6)
    z = (X[:, None, :] - X[None, :, :]) / h
    dens = np.exp(-0.5 * (z ** 2).sum(-1)).mean(1) / np.prod(h) / (2 * np.pi)
    assert_close(got, np.log(dens), 1e-10)
    assert re.search(r"h=\[0\.44\d*, 5\.34\d*\] \(isotropic\)", p.stderr.decode()), p.stderr


def test_per_dimension_bandwidth(gram_cli, tmp_path):
    X, _ = make_data(2, N=80)
    h = np.array([0.4, 1.3])
    ok(gram_cli, "kde", save(tmp_path, "X.npy", X), "--bandwidth", "0.4,1.3", "-o", tmp_path / "o.npy")
    z = (X[:, None, :] - X[None, :, :]) / h
    dens = np.exp(-0.5 * (z ** 2).sum(-1)).mean(1) / np.prod(h) / (2 * np.pi)
    assert_close(np.load(tmp_path / "o.npy"), dens, 1e-10)


@pytest.mark.parametrize("fmt", ["npy", "csv"])
def test_query(gram_cli, tmp_path, fmt):
    X, _ = make_data(3, N=150)
    Y = np.random.default_rng(3).standard_normal((40, 3)) * 2
    if fmt == "npy":
        qpath = save(tmp_path, "Y.npy", Y)
    else:
        qpath = tmp_path / "Y.csv"
        qpath.write_text("a,b,c\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in Y))
    ok(gram_cli, "kde", save(tmp_path, "X.npy", X), "--query", qpath, "--kernel", "epanechnikov",
       "--bandwidth", "2.5", "-o", tmp_path / "o.csv")
    header, got = read_csv_out((tmp_path / "o.csv").read_text())
    assert header == ["density"]
    ref = KernelDensity(bandwidth=2.5, kernel="epanechnikov").fit(X)
    assert_close(got, np.exp(ref.score_samples(Y)), 1e-10)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "exponential"])
def test_leave_one_out(gram_cli, tmp_path, kernel, weighted):
    X, w = make_data(2, N=120, seed=4)
    h = 1.2
    args = ["kde", save(tmp_path, "X.npy", X), "--loo", "--kernel", kernel, "--bandwidth", h]
    if weighted:
        args += ["--weights", save(tmp_path, "w.npy", w)]
    ok(gram_cli, *args, "--log", "-o", tmp_path / "log.npy")
    ok(gram_cli, *args, "-o", tmp_path / "lin.npy")
    got = np.load(tmp_path / "log.npy").ravel()
    assert got.shape == (len(X),)
    for i in [0, 7, 53, 119]:
        keep = np.arange(len(X)) != i
        ref = KernelDensity(bandwidth=h, kernel=kernel).fit(
            X[keep], sample_weight=w[keep] if weighted else None)
        assert_close(got[i], ref.score_samples(X[i:i + 1]), 1e-10, f"point {i}")
    assert_close(np.load(tmp_path / "lin.npy"), np.exp(got), 1e-12)


def test_grid_1d(gram_cli, tmp_path):
    X = np.random.default_rng(5).standard_normal((50, 1))
    ok(gram_cli, "kde", save(tmp_path, "X.npy", X), "--grid", 9, "--bandwidth", 0.5,
       "-o", tmp_path / "g.npy")
    G = np.load(tmp_path / "g.npy")
    assert G.shape == (9, 2)
    x = np.linspace(X.min() - 1.5, X.max() + 1.5, 9)
    np.testing.assert_allclose(G[:, 0], x, rtol=0, atol=1e-12)
    ref = KernelDensity(bandwidth=0.5).fit(X)
    assert_close(G[:, 1], np.exp(ref.score_samples(x[:, None])), 1e-10)


def test_grid_2d_x_fastest(gram_cli, tmp_path):
    X, _ = make_data(2, N=60, seed=6)
    h = np.array([0.4, 0.9])
    ok(gram_cli, "kde", save(tmp_path, "X.npy", X), "--grid", 6, "--bandwidth", "0.4,0.9", "--log",
       "-o", tmp_path / "g.npy")
    G = np.load(tmp_path / "g.npy")
    assert G.shape == (36, 3)
    gx = np.linspace(X[:, 0].min() - 3 * h[0], X[:, 0].max() + 3 * h[0], 6)
    gy = np.linspace(X[:, 1].min() - 3 * h[1], X[:, 1].max() + 3 * h[1], 6)
    np.testing.assert_allclose(G[:, 0], np.tile(gx, 6), rtol=0, atol=1e-12)
    np.testing.assert_allclose(G[:, 1], np.repeat(gy, 6), rtol=0, atol=1e-12)
    z = (G[:, None, :2] - X[None, :, :]) / h
    dens = np.exp(-0.5 * (z ** 2).sum(-1)).mean(1) / np.prod(h) / (2 * np.pi)
    assert_close(G[:, 2], np.log(dens), 1e-10)


def test_grid_csv_header_uses_column_names(gram_cli, tmp_path):
    p = ok(gram_cli, "kde", FAITHFUL, "--grid", 4)
    header, G = read_csv_out(p.stdout.decode())
    assert header == ["eruptions", "waiting", "density"]
    assert G.shape == (16, 3)
    assert "4×4 grid (16 points)" in p.stderr.decode()


def test_grid_clipped_to_bounds(gram_cli, tmp_path):
    X = np.random.default_rng(8).uniform(0.1, 1.0, (40, 1))
    ok(gram_cli, "kde", save(tmp_path, "X.npy", X), "--grid", 11, "--bandwidth", 0.3,
       "--bounds", "0:", "-o", tmp_path / "g.npy")
    G = np.load(tmp_path / "g.npy")
    assert G[0, 0] == 0.0
    np.testing.assert_allclose(G[-1, 0], X.max() + 0.9, rtol=0, atol=1e-12)
    assert np.all(G[:, 1] >= 0)


def test_grid_with_bounds_per_dimension(gram_cli, tmp_path):
    X = np.random.default_rng(9).uniform(0.2, 0.8, (40, 2))
    ok(gram_cli, "kde", save(tmp_path, "X.npy", X), "--grid", 5, "--bandwidth", 0.1,
       "--bounds", "0:1,:", "-o", tmp_path / "g.npy")
    G = np.load(tmp_path / "g.npy")
    assert G[:, 0].min() == 0.0 and G[:, 0].max() == 1.0
    np.testing.assert_allclose(G[:, 1].min(), X[:, 1].min() - 0.3, atol=1e-12)


# ---- inputs -----------------------------------------------------------------------------------


def test_csv_header_and_quoted_fields(gram_cli, tmp_path):
    X, _ = make_data(2, N=30, seed=10)
    lines = ['"speed, km/h","weight"']
    for i, (a, b) in enumerate(X.tolist()):
        lines.append(f'"{a!r}",{b!r}' if i % 3 == 0 else f"{a!r},{b!r}")
    path = tmp_path / "q.csv"
    path.write_text("\n".join(lines) + "\n")
    ok(gram_cli, "kde", path, "--bandwidth", 0.7, "--log", "-o", tmp_path / "a.npy")
    ok(gram_cli, "kde", save(tmp_path, "X.npy", X), "--bandwidth", 0.7, "--log",
       "-o", tmp_path / "b.npy")
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    p = ok(gram_cli, "sample", path, "-n", 5)
    header, S = read_csv_out(p.stdout.decode())
    assert header == ["speed, km/h", "weight"] and S.shape == (5, 2)


def test_stdin(gram_cli, tmp_path):
    a = ok(gram_cli, "kde", FAITHFUL, "--bandwidth", 0.3).stdout
    b = ok(gram_cli, "kde", "-", "--bandwidth", 0.3, stdin=FAITHFUL.read_bytes()).stdout
    assert a == b
    X = faithful()
    npy = save(tmp_path, "f.npy", X).read_bytes()
    c = ok(gram_cli, "kde", "-", "--bandwidth", 0.3, stdin=npy).stdout
    _, va = read_csv_out(a.decode())
    _, vc = read_csv_out(c.decode())
    assert np.array_equal(va, vc)


def test_stdin_twice_is_usage_error(gram_cli, tmp_path):
    p = run(gram_cli, "kde", "-", "--query", "-", stdin=b"1\n2\n")
    assert p.returncode == 2


def test_one_column_npy_and_1d_npy(gram_cli, tmp_path):
    x = np.random.default_rng(11).standard_normal(64)
    a = ok(gram_cli, "kde", save(tmp_path, "a.npy", x), "-o", "-").stdout
    b = ok(gram_cli, "kde", save(tmp_path, "b.npy", x[:, None]), "-o", "-").stdout
    assert a == b


def test_float32_npy_input(gram_cli, tmp_path):
    X = np.random.default_rng(12).standard_normal((50, 2)).astype(np.float32)
    np.save(tmp_path / "x32.npy", X)
    ok(gram_cli, "kde", tmp_path / "x32.npy", "--bandwidth", 0.5, "--log", "-o", tmp_path / "o.npy")
    ref = KernelDensity(bandwidth=0.5).fit(X.astype(float))
    assert_close(np.load(tmp_path / "o.npy"), ref.score_samples(X.astype(float)), 1e-10)


def test_precision_f32(gram_cli, tmp_path):
    X, _ = make_data(3, N=400, seed=13)
    xp = save(tmp_path, "X.npy", X)
    ok(gram_cli, "kde", xp, "--precision", "f64", "-o", tmp_path / "d.npy")
    p = ok(gram_cli, "kde", xp, "--precision", "f32", "-o", tmp_path / "s.npy")
    d, s = np.load(tmp_path / "d.npy"), np.load(tmp_path / "s.npy")
    assert np.max(np.abs(s - d) / d) <= 1e-5
    assert "f32" in p.stderr.decode()
    ok(gram_cli, "kde", FAITHFUL, "--precision", "f32", "-o", tmp_path / "f.npy")
    ok(gram_cli, "kde", FAITHFUL, "-o", tmp_path / "g.npy")
    f, g = np.load(tmp_path / "f.npy"), np.load(tmp_path / "g.npy")
    assert np.max(np.abs(f - g) / g) <= 1e-5


def test_threads_do_not_change_results(gram_cli, tmp_path):
    X, _ = make_data(5, N=3000, seed=14)
    xp = save(tmp_path, "X.npy", X)
    outs = [ok(gram_cli, "kde", xp, "--threads", t, "--log", "-o", "-").stdout for t in (1, 3, 0)]
    assert outs[0] == outs[1] == outs[2]


# ---- GNU conventions ------------------------------------------------------------------------------


def test_option_spellings_agree(gram_cli, tmp_path):
    X, _ = make_data(2, N=50, seed=15)
    xp = save(tmp_path, "X.npy", X)
    ok(gram_cli, "kde", xp, "--kernel", "epanechnikov", "--bandwidth", "1.5", "-o", tmp_path / "a.npy")
    ok(gram_cli, "kde", "--kernel=epanechnikov", "--bandwidth=1.5", f"--output={tmp_path / 'b.npy'}", xp)
    ok(gram_cli, "kde", "--bandwidth", "1.5", xp, "--kernel", "epanechnikov", f"-o{tmp_path / 'c.npy'}")
    a = np.load(tmp_path / "a.npy")
    assert np.array_equal(a, np.load(tmp_path / "b.npy"))
    assert np.array_equal(a, np.load(tmp_path / "c.npy"))


def test_double_dash_ends_options(gram_cli, tmp_path):
    X, _ = make_data(1, N=20, seed=16)
    save(tmp_path, "-dash.npy", X)
    p = ok(gram_cli, "kde", "--bandwidth", 1, "--", "-dash.npy", cwd=tmp_path)
    header, v = read_csv_out(p.stdout.decode())
    assert v.shape == (20, 1)


@pytest.mark.parametrize("alias,family", [("linear", "triangular"), ("cosine", "cosine_window")])
def test_kernel_aliases(gram_cli, tmp_path, alias, family):
    X, _ = make_data(2, N=60, seed=17)
    xp = save(tmp_path, "X.npy", X)
    a = ok(gram_cli, "kde", xp, "--kernel", alias, "--bandwidth", 3, "-o", "-", "-q").stdout
    b = ok(gram_cli, "kde", xp, "--kernel", family, "--bandwidth", 3, "-o", "-", "-q").stdout
    assert a == b


@pytest.mark.parametrize("kernel", ["laplacian", "matern12", "matern32", "matern52", "triangular",
                                    "cosine_window"])
def test_gram_kernels_integrate_to_one(gram_cli, tmp_path, kernel):
    x = np.random.default_rng(18).standard_normal(40)
    y = np.linspace(-15, 15, 60001)
    ok(gram_cli, "kde", save(tmp_path, "x.npy", x), "--kernel", kernel, "--bandwidth", 0.4,
       "--query", save(tmp_path, "y.npy", y), "-o", tmp_path / "f.npy")
    f = np.load(tmp_path / "f.npy").ravel()
    mass = np.sum((f[1:] + f[:-1]) / 2 * np.diff(y))
    assert abs(mass - 1) < 1e-6, mass


def test_cauchy_1d(gram_cli, tmp_path):
    x = np.random.default_rng(19).standard_normal(30)
    ok(gram_cli, "kde", save(tmp_path, "x.npy", x), "--kernel", "cauchy", "--bandwidth", 0.5,
       "-o", tmp_path / "o.npy")
    u = (x[:, None] - x[None, :]) / 0.5
    ref = (1 / (np.pi * 0.5 * (1 + u ** 2))).mean(1)
    assert_close(np.load(tmp_path / "o.npy"), ref, 1e-10)


def test_stdout_csv_and_quiet(gram_cli):
    p = ok(gram_cli, "kde", FAITHFUL, "--quiet")
    assert p.stderr == b""
    header, v = read_csv_out(p.stdout.decode())
    assert header == ["density"] and v.shape == (272, 1)
    p = ok(gram_cli, "kde", FAITHFUL, "--log", "-o", "-")
    assert p.stdout.decode().splitlines()[0].strip('"') == "log_density"
    assert re.match(r"gram kde: N=272 D=2 kernel=gaussian bandwidth=scott h=\[.*\] \(isotropic\) "
                    r"272 points in [0-9.]+ m?s\n$", p.stderr.decode()), p.stderr


@pytest.mark.parametrize("rule", ["silverman", "isj", "cv-ml", "cv-ls"])
def test_bandwidth_rules_run(gram_cli, tmp_path, rule):
    # Synthetic data: faithful's rounded values have ties, where least-squares CV degenerates.
    x = np.random.default_rng(25).standard_normal((300, 1)) * 2 + 1
    p = ok(gram_cli, "kde", save(tmp_path, "x.npy", x), "--bandwidth", rule, "-o", tmp_path / "o.npy")
    m = re.search(rf"bandwidth={rule} h=([0-9.e+-]+) ", p.stderr.decode())
    assert m, p.stderr
    assert 0.1 < float(m.group(1)) < 2.0
    v = np.load(tmp_path / "o.npy")
    assert np.all(np.isfinite(v)) and np.all(v > 0)


@pytest.mark.parametrize("rule", ["isj", "cv-ml"])
def test_bandwidth_rules_on_faithful(gram_cli, tmp_path, rule):
    x = faithful()[:, :1]
    ok(gram_cli, "kde", save(tmp_path, "x.npy", x), "--bandwidth", rule, "-o", tmp_path / "o.npy")
    assert np.all(np.load(tmp_path / "o.npy") > 0)


# ---- sample -----------------------------------------------------------------------------------------


def test_sample_reproducible_and_seeded(gram_cli):
    a = ok(gram_cli, "sample", FAITHFUL, "-n", 300, "--seed", 7).stdout
    b = ok(gram_cli, "sample", FAITHFUL, "-n", 300, "--seed=7").stdout
    c = ok(gram_cli, "sample", FAITHFUL, "-n", 300, "--seed", 8).stdout
    d = ok(gram_cli, "sample", FAITHFUL, "-n", 300).stdout
    e = ok(gram_cli, "sample", FAITHFUL, "-n", 300, "--seed", 0).stdout
    assert a == b and a != c and d == e
    header, S = read_csv_out(a.decode())
    assert header == ["eruptions", "waiting"] and S.shape == (300, 2)


def test_sample_moments(gram_cli, tmp_path):
    X = faithful()
    n = 40000
    ok(gram_cli, "sample", FAITHFUL, "-n", n, "--seed", 1, "-o", tmp_path / "s.npy")
    S = np.load(tmp_path / "s.npy")
    assert S.shape == (n, 2)
    h = X.std(axis=0, ddof=1) * len(X) ** (-1 / 6)
    sd = np.sqrt(X.var(axis=0) + h ** 2)
    assert np.all(np.abs(S.mean(0) - X.mean(0)) < 5 * sd / np.sqrt(n))
    np.testing.assert_allclose(S.std(0), sd, rtol=0.03)


def test_sample_covariance_geometry(gram_cli, tmp_path):
    X = faithful()
    ok(gram_cli, "sample", FAITHFUL, "-n", 40000, "--bandwidth-matrix", "covariance",
       "-o", tmp_path / "s.npy")
    S = np.load(tmp_path / "s.npy")
    kde = gaussian_kde(X.T)
    # Mixture covariance: the data's (1/N) covariance plus the kernel's.
    want = np.cov(X.T, bias=True) + kde.covariance
    np.testing.assert_allclose(np.cov(S.T), want, rtol=0.06)


def test_sample_weighted_mean(gram_cli, tmp_path):
    X = faithful()
    w = (X[:, 0] > 3).astype(float) * 9 + 1  # the long eruptions weigh 10×
    ok(gram_cli, "sample", FAITHFUL, "-n", 30000, "--weights", save(tmp_path, "w.npy", w),
       "--seed", 3, "-o", tmp_path / "s.npy")
    S = np.load(tmp_path / "s.npy")
    mean = (w[:, None] * X).sum(0) / w.sum()
    np.testing.assert_allclose(S.mean(0), mean, rtol=0.01)


@pytest.mark.parametrize("kernel", ["tophat", "epanechnikov", "exponential", "linear", "cosine",
                                    "laplacian", "matern32", "matern52"])
def test_sample_kernels(gram_cli, tmp_path, kernel):
    x = faithful()[:, :1]
    ok(gram_cli, "sample", save(tmp_path, "x.npy", x), "-n", 20000, "--kernel", kernel,
       "-o", tmp_path / "s.npy")
    S = np.load(tmp_path / "s.npy")
    assert S.shape == (20000, 1)
    assert abs(S.mean() - x.mean()) < 0.05


def test_sample_respects_bounds(gram_cli, tmp_path):
    x = np.random.default_rng(20).exponential(1.0, (500, 1))
    ok(gram_cli, "sample", save(tmp_path, "x.npy", x), "-n", 5000, "--bounds", "0:",
       "-o", tmp_path / "s.npy")
    assert np.load(tmp_path / "s.npy").min() >= 0


# ---- errors: exit codes, messages, no output file ----------------------------------------------------


def _npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, np.asarray(a, dtype=float))
    return buf.getvalue()


def _lying_npy():
    raw = _npy_bytes(np.arange(20.0).reshape(10, 2))
    return raw.replace(b"(10, 2)", b"(99, 2)")


X2 = make_data(2, N=40, seed=21)[0]
X3 = make_data(3, N=40, seed=22)[0]
NAN_X = X2.copy()
NAN_X[3, 1] = np.nan
CONST_COL = np.column_stack([X2[:, 0], np.full(len(X2), 2.5)])

# id, {file: contents}, kde args (files by name), exit code, regexes that stderr must match
ERROR_CASES = [
    ("empty-file", {"e.csv": b""}, ["e.csv"], 1, [r"^gram: .*e\.csv"]),
    ("header-only", {"h.csv": b'"a","b"\n'}, ["h.csv"], 1, [r"^gram: .*h\.csv"]),
    ("missing-file", {}, ["nope.csv"], 1, [r"^gram: .*nope\.csv"]),
    ("single-point-scott", {"one.csv": b"1.5,2.5\n"}, ["one.csv"], 1, [r"^gram: "]),
    ("zero-variance-covariance", {"c.npy": _npy_bytes(CONST_COL)},
     ["c.npy", "--bandwidth-matrix", "covariance"], 1, [r"^gram: "]),
    ("nan-npy", {"n.npy": _npy_bytes(NAN_X)}, ["n.npy"], 1, [r"row 4\b", r"column 2\b", "NaN"]),
    ("nan-csv", {"n.csv": b"1,2\n3,4\n5,nan\n6,7\n"}, ["n.csv"], 1,
     [r"(row|line) 3\b", r"column 2\b"]),
    ("inf-query", {"x.npy": _npy_bytes(X2), "q.csv": b"1,2\ninf,3\n"}, ["x.npy", "--query", "q.csv"], 1,
     [r"q\.csv", r"(row|line) 2\b"]),
    ("ragged-csv", {"r.csv": b"1,2\n3,4\n5\n6,7\n"}, ["r.csv"], 1, [r"r\.csv", r"line 3\b"]),
    ("non-numeric-csv", {"t.csv": b"1,2\n3,4\n5,abc\n"}, ["t.csv"], 1, [r"t\.csv", r"line 3\b"]),
    ("truncated-npy", {"t.npy": _npy_bytes(X2)[:-13]}, ["t.npy"], 1, [r"t\.npy"]),
    ("lying-npy-header", {"l.npy": _lying_npy()}, ["l.npy"], 1, [r"l\.npy"]),
    ("garbage-npy", {"g.npy": b"\x93NUMPY\x01\x00garbage"}, ["g.npy"], 1, [r"g\.npy"]),
    ("query-dimension", {"x.npy": _npy_bytes(X2), "q.npy": _npy_bytes(X3)},
     ["x.npy", "--query", "q.npy"], 1, [r"3 columns", r"2\b"]),
    ("negative-weights", {"x.npy": _npy_bytes(X2), "w.npy": _npy_bytes(np.r_[np.ones(39), -1.0])},
     ["x.npy", "--weights", "w.npy"], 1, [r"w\.npy", "negative"]),
    ("weights-count", {"x.npy": _npy_bytes(X2), "w.npy": _npy_bytes(np.ones(7))},
     ["x.npy", "--weights", "w.npy"], 1, [r"w\.npy", r"40"]),
    ("bounds-exclude-data", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bounds", "100:200"], 1, [r"^gram: "]),
    ("cauchy-2d", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--kernel", "cauchy"], 1, [r"^gram: "]),
    ("unwritable-output", {"x.npy": _npy_bytes(X2)}, ["x.npy", "-o", "no/such/dir/o.npy"], 1,
     [r"no/such/dir"]),
    # usage errors
    ("unknown-option", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--frobnicate"], 2,
     [r"^gram kde: unrecognized option '--frobnicate'", r"Try 'gram kde --help'"]),
    ("bad-bandwidth", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bandwidth", "abc"], 2,
     [r"^gram kde: --bandwidth: expected scott\|silverman\|isj\|cv-ml\|cv-ls or a positive number, "
      r"got 'abc'$"]),
    ("zero-bandwidth", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bandwidth", "0"], 2, [r"--bandwidth"]),
    ("negative-bandwidth", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bandwidth=-1"], 2, [r"--bandwidth"]),
    ("nan-bandwidth", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bandwidth", "nan"], 2, [r"--bandwidth"]),
    ("bandwidth-count", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bandwidth", "1,2,3"], 2, [r"--bandwidth"]),
    ("grid-with-query", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--grid", "10", "--query", "x.npy"], 2,
     [r"--query and --grid cannot be used together"]),
    ("grid-with-loo", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--loo", "--grid", "10"], 2, [r"--loo"]),
    ("query-with-loo", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--loo", "--query", "x.npy"], 2, [r"--loo"]),
    ("missing-data", {}, ["--bandwidth", "1"], 2, [r"missing DATA"]),
    ("two-data", {"x.npy": _npy_bytes(X2)}, ["x.npy", "x.npy"], 2, [r"unexpected argument"]),
    ("grid-3d", {"x.npy": _npy_bytes(X3)}, ["x.npy", "--grid", "10"], 2, [r"--grid", r"3 columns"]),
    ("plot-3d", {"x.npy": _npy_bytes(X3)}, ["x.npy", "--plot", "p.svg"], 2, [r"--plot", r"3 columns"]),
    ("grid-too-small", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--grid", "1"], 2, [r"--grid"]),
    ("grid-not-a-number", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--grid", "ten"], 2, [r"--grid"]),
    ("bounds-syntax", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bounds", "0-1"], 2, [r"--bounds"]),
    ("bounds-number", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bounds", "a:1"], 2, [r"--bounds"]),
    ("bounds-order", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bounds", "2:1"], 2, [r"--bounds"]),
    ("bounds-count", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bounds", "0:1,0:1,0:1"], 2, [r"--bounds"]),
    ("unknown-kernel", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--kernel", "gauss"], 2,
     [r"--kernel: expected one of gaussian, .*got 'gauss'"]),
    ("missing-value", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--kernel"], 2, [r"requires a value"]),
    ("flag-with-value", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--log=yes"], 2, [r"--log"]),
    ("bad-geometry", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--bandwidth-matrix", "full"], 2,
     [r"--bandwidth-matrix"]),
    ("bad-precision", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--precision", "f16"], 2, [r"--precision"]),
    ("bad-threads", {"x.npy": _npy_bytes(X2)}, ["x.npy", "--threads", "-2"], 2, [r"--threads"]),
    # conflicts that need no data are usage errors found before DATA is read (here it does not
    # even exist, which would be exit 1)
    ("cv-ls-epanechnikov", {}, ["nope.csv", "--bandwidth", "cv-ls", "--kernel", "epanechnikov"], 2,
     [r"^gram kde: --bandwidth cv-ls: .*gaussian kernel only \(got --kernel epanechnikov\)"]),
    ("isj-cauchy", {}, ["nope.csv", "--bandwidth", "isj", "--kernel", "cauchy"], 2, [r"isj.*cauchy"]),
    ("cv-ls-bounds", {}, ["nope.csv", "--bandwidth", "cv-ls", "--bounds", "0:"], 2, [r"cv-ls .*--bounds"]),
    ("covariance-bounds", {}, ["nope.csv", "--bandwidth-matrix", "covariance", "--bounds", "0:"], 2,
     [r"--bounds: reflection needs --bandwidth-matrix isotropic"]),
    ("covariance-two-factors", {}, ["nope.csv", "--bandwidth-matrix", "covariance", "--bandwidth", "1,2"], 2,
     [r"covariance takes one factor, got 2"]),
    ("output-unknown-suffix", {}, ["nope.csv", "-o", "out.txt"], 2,
     [r"^gram kde: -o: 'out\.txt' has an unknown suffix: gram writes \.npy \(NumPy\) or \.csv"]),
    ("output-npz", {}, ["nope.csv", "-o", "out.NPZ"], 2, [r"unknown suffix"]),
    ("output-trailing-dot", {}, ["nope.csv", "-o", "out."], 2, [r"unknown suffix"]),
    ("plot-png", {}, ["nope.csv", "--plot", "p.png"], 2, [r"^gram kde: --plot: 'p\.png': gram draws SVG only"]),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_kde_errors(cli_error_case, case):
    # the shared checks (conftest.cli_error_case): exit code, empty stdout, the patterns, no output
    # or temporary file left behind, a data error starting "gram: "; a usage error names the command
    name, files, args, code, patterns = case
    assert code in (1, 2)
    extra = [] if "-o" in args else ["-o", "out.npy"]
    err = cli_error_case((name, files, ["kde", *extra, *args], code, patterns), {})
    if code == 2:
        assert err.startswith("gram kde: ")

SAMPLE_ERRORS = [
    ("missing-count", ["f.csv"], 2, [r"-n"]),
    ("zero-count", ["f.csv", "-n", "0"], 2, [r"-n"]),
    ("bad-seed", ["f.csv", "-n", "5", "--seed", "-1"], 2, [r"--seed"]),
    ("missing-data", ["-n", "5"], 2, [r"missing DATA"]),
    ("query-is-not-a-sample-option", ["f.csv", "-n", "5", "--query", "f.csv"], 2, [r"--query"]),
    ("cauchy-2d", ["f.csv", "-n", "5", "--kernel", "cauchy"], 1, [r"^gram: "]),
    ("single-point", ["one.csv", "-n", "5"], 1, [r"^gram: "]),
    ("unknown-suffix", ["nope.csv", "-n", "5", "-o", "s.json"], 2, [r"-o: 's\.json' has an unknown suffix"]),
    ("cv-ls-tophat", ["nope.csv", "-n", "5", "--bandwidth", "cv-ls", "--kernel", "tophat"], 2, [r"cv-ls"]),
]


@pytest.mark.parametrize("case", SAMPLE_ERRORS, ids=[c[0] for c in SAMPLE_ERRORS])
def test_sample_errors(gram_cli, tmp_path, case):
    _, args, code, patterns = case
    (tmp_path / "f.csv").write_bytes(FAITHFUL.read_bytes())
    (tmp_path / "one.csv").write_bytes(b"1,2\n")
    before = set(p.name for p in tmp_path.iterdir())
    p = run(gram_cli, "sample", "-o", "out.csv", *args, cwd=tmp_path)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == code, f"exit {p.returncode} (want {code}); stderr:\n{err}"
    for pat in patterns:
        assert re.search(pat, err, re.M), f"stderr does not match {pat!r}:\n{err}"
    assert set(p.name for p in tmp_path.iterdir()) == before


# ---- plots -------------------------------------------------------------------------------------------


def check_svg(path):
    raw = path.read_bytes()
    assert len(raw) < 1_000_000, f"{path.name}: {len(raw)} bytes"
    root = ET.fromstring(raw)
    assert root.tag == SVG_NS + "svg"
    for tag in ("script", "image", "foreignObject", "style"):
        assert root.find(f".//{SVG_NS}{tag}") is None, f"unexpected <{tag}>"
    assert b"http://" not in raw.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")
    assert b"@import" not in raw and b"url(http" not in raw
    texts = ["".join(t.itertext()) for t in root.iter(SVG_NS + "text")]
    return root, raw, texts


def tick_values(texts):
    out = []
    for t in texts:
        try:
            out.append(float(t))
        except ValueError:
            pass
    return out


def is_nice(v):
    if v == 0:
        return True
    m = abs(v) / 10 ** np.floor(np.log10(abs(v)))
    return any(abs(m - k) < 1e-9 or abs(m - 10 * k) < 1e-9 for k in (1, 2, 2.5, 4, 5, 6, 8)) or \
        abs(m * 10 - round(m * 10)) < 1e-9


def test_plot_1d(gram_cli, tmp_path):
    x = faithful()[:, :1]
    path = tmp_path / "erupt.csv"
    path.write_text("eruptions\n" + "".join(f"{float(v)!r}\n" for v in x[:, 0]))
    p = ok(gram_cli, "kde", path, "--plot", tmp_path / "p.svg")
    assert p.stdout == b"", "with --plot and no -o nothing goes to stdout"
    root, raw, texts = check_svg(tmp_path / "p.svg")
    assert "KDE of erupt.csv \u2014 gaussian, scott" in texts
    assert "eruptions" in texts and "density" in texts
    ticks = tick_values(texts)
    assert len(ticks) >= 6 and all(is_nice(v) for v in ticks), ticks
    assert raw.count(b"v-12") == 272  # the rug


def test_plot_2d_with_output(gram_cli, tmp_path):
    p = ok(gram_cli, "kde", FAITHFUL, "--plot", tmp_path / "f.svg", "-o", tmp_path / "d.csv")
    assert p.stdout == b""
    header, v = read_csv_out((tmp_path / "d.csv").read_text())
    assert v.shape == (272, 1)
    root, raw, texts = check_svg(tmp_path / "f.svg")
    assert "KDE of faithful.csv \u2014 gaussian, scott" in texts
    assert "eruptions" in texts and "waiting" in texts
    assert len(root.findall(f".//{SVG_NS}circle")) == 272
    assert all(is_nice(v) for v in tick_values(texts))


def test_plot_2d_large_is_subsampled(gram_cli, tmp_path):
    X = np.random.default_rng(23).standard_normal((12000, 2)) * [1, 50]
    save(tmp_path, "big.npy", X)
    ok(gram_cli, "kde", tmp_path / "big.npy", "--plot", tmp_path / "b.svg", "-q", "--bandwidth-matrix",
       "covariance", "--kernel", "epanechnikov")
    root, raw, texts = check_svg(tmp_path / "b.svg")
    assert len(root.findall(f".//{SVG_NS}circle")) == 5000
    assert any(t.startswith("KDE of big.npy") and "epanechnikov" in t for t in texts)
    assert "x1" in texts and "x2" in texts


def test_plot_1d_large_rug_is_subsampled(gram_cli, tmp_path):
    x = np.random.default_rng(24).standard_normal(9000)
    ok(gram_cli, "kde", save(tmp_path, "x.npy", x), "--plot", tmp_path / "r.svg", "-q")
    root, raw, texts = check_svg(tmp_path / "r.svg")
    assert raw.count(b"v-12") == 2000


def test_plot_escapes_names(gram_cli, tmp_path):
    path = tmp_path / "a&b.csv"
    path.write_text('"x<1>","y & z"\n1,2\n2,3.5\n3,1\n4,4\n')
    ok(gram_cli, "kde", path, "--plot", tmp_path / "e.svg", "--bandwidth", 1)
    root, raw, texts = check_svg(tmp_path / "e.svg")
    assert "x<1>" in texts and "y & z" in texts


def test_plot_write_failure_leaves_nothing(gram_cli, tmp_path):
    before = set(tmp_path.iterdir())
    p = run(gram_cli, "kde", FAITHFUL, "-o", tmp_path / "d.npy", "--plot", tmp_path / "no" / "p.svg")
    assert p.returncode == 1
    assert set(tmp_path.iterdir()) == before


# ---- progress and interruption ----------------------------------------------------------------------


def _read_available(fd, timeout):
    import os
    import select
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:  # the other side closed (EIO on Linux)
        return None


def test_progress_on_a_terminal_and_sigint(gram_cli, tmp_path):
    """On a terminal a long job shows progress on stderr; SIGINT cancels it: exit 130, no file."""
    import os
    import pty
    import signal
    import time

    n = 50000
    for _ in range(6):
        xp = save(tmp_path, "X.npy", np.random.default_rng(26).standard_normal((n, 6)))
        out = tmp_path / "o.npy"
        master, slave = pty.openpty()
        # SIGINT at its default in the child whatever this process inherited: gram keeps an
        # ignored SIGINT ignored (a background job's), and the suite may run as one.
        proc = subprocess.Popen([gram_cli, "kde", str(xp), "-o", str(out)], stdout=subprocess.PIPE,
                                stderr=slave, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        os.close(slave)
        buf, deadline = b"", time.time() + 120
        while proc.poll() is None and b"%" not in buf and time.time() < deadline:
            chunk = _read_available(master, 0.1)
            if chunk is None:
                break
            buf += chunk
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(120)
            while (chunk := _read_available(master, 0.5)):
                buf += chunk
            os.close(master)
            text = buf.decode(errors="replace")
            assert proc.returncode == 130, text
            assert re.search(r"\r gram kde: +\d+% \(ETA [0-9.]+ s\)", text), text
            assert "gram: interrupted" in text
            assert proc.stdout.read() == b""
            assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy"]
            return
        proc.wait(120)
        os.close(master)
        n *= 2  # a fast machine finished before the progress line: try a longer job
    pytest.fail(f"every job finished before its progress line appeared (last N = {n // 2})")


def test_no_progress_when_stderr_is_not_a_terminal(gram_cli, tmp_path):
    X, _ = make_data(3, N=3000, seed=27)
    p = ok(gram_cli, "kde", save(tmp_path, "X.npy", X), "-o", tmp_path / "o.npy")
    assert "\r" not in p.stderr.decode() and "%" not in p.stderr.decode()
