"""Tests of `gram gp` and `gram krr` (cli/regress.c) against scikit-learn, computed here.

Every test runs the built binary (see conftest.py: $GRAM_CLI or build/cli/gram). Accuracy is
relative error with the reference's magnitude floored at 1, as in test_cli.py.
"""
import csv
import io
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.kernel_ridge import KernelRidge

SVG_NS = "{http://www.w3.org/2000/svg}"


# ---- helpers ---------------------------------------------------------------------------------


def run(cli, *args, cwd=None, stdin=None):
    return subprocess.run([cli, *[str(a) for a in args]], capture_output=True, timeout=120, cwd=cwd,
                          input=stdin)


def ok(cli, *args, **kw):
    p = run(cli, *args, **kw)
    assert p.returncode == 0, f"exit {p.returncode}; stderr:\n{p.stderr.decode(errors='replace')}"
    return p


def assert_close(got, want, tol, what=""):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = np.abs(got - want) / np.maximum(np.abs(want), 1.0)
    i = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    assert not err.size or err[i] <= tol, (f"{what}: relative error {err[i]:.3g} > {tol:g} at {i}: "
                                           f"{got[i]!r} vs {want[i]!r}")


def read_csv(path_or_text):
    text = path_or_text if isinstance(path_or_text, str) else path_or_text.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], np.array([[float(v) for v in r] for r in rows[1:]], dtype=float)


def write_csv(path, names, *columns):
    cols = np.column_stack(columns)
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        for row in cols:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    return path


def data_1d(N=25, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 8, N))
    y = np.sin(x) + 0.5 * np.cos(2.3 * x) + 0.1 * rng.standard_normal(N) + 3.0
    return x[:, None], y


def data_3d(N=40, T=1, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (N, 3))
    Y = np.column_stack([np.sin(X[:, 0]) * X[:, 1] + 0.3 * X[:, 2] ** 2 + 0.05 * k
                         + 0.05 * rng.standard_normal(N) for k in range(T)])
    return X, Y


def lml_of(stderr):
    m = re.search(r"log_marginal_likelihood=(\S+)", stderr.decode())
    assert m, stderr.decode()
    return float(m.group(1))


def check_svg(path):
    raw = path.read_bytes()
    root = ET.fromstring(raw)
    assert root.tag == SVG_NS + "svg"
    for tag in ("script", "image", "foreignObject", "style"):
        assert root.find(f".//{SVG_NS}{tag}") is None
    texts = ["".join(t.itertext()) for t in root.iter(SVG_NS + "text")]
    return root, texts


# ---- gp against scikit-learn -------------------------------------------------------------------


@pytest.mark.parametrize("normalize_y", [False, True])
def test_gp_1d_matches_sklearn(gram_cli, tmp_path, normalize_y):
    X, y = data_1d()
    data = write_csv(tmp_path / "d.csv", ["x", "y"], X[:, 0], y)
    Xq = np.linspace(-1, 9, 31)[:, None]
    np.save(tmp_path / "q.npy", Xq)
    flags = ["--normalize-y"] if normalize_y else []
    p = ok(gram_cli, "gp", "fit", data, "--target", "y", "--kernel",
           "1.7*rbf(lengthscale=0.8) + white(0.05)", *flags, "-o", tmp_path / "m.gp")
    ok(gram_cli, "gp", "predict", tmp_path / "m.gp", tmp_path / "q.npy", "--std", "-o",
       tmp_path / "o.csv")
    header, out = read_csv(tmp_path / "o.csv")
    assert header == ["mean", "std"]

    k = ConstantKernel(1.7) * RBF(0.8) + WhiteKernel(0.05)
    gpr = GaussianProcessRegressor(k, optimizer=None, alpha=1e-10, normalize_y=normalize_y).fit(X, y)
    mean, std = gpr.predict(Xq, return_std=True)
    assert_close(out[:, 0], mean, 1e-9, "mean")
    assert_close(out[:, 1], std, 1e-9, "std")
    assert_close(lml_of(p.stderr), gpr.log_marginal_likelihood_value_, 1e-9, "lml")
    assert re.search(r"N=25 D=1 T=1 .*iterations=0 in ", p.stderr.decode())
    assert "kernel: " in p.stderr.decode()


def test_gp_3d_ard_matches_sklearn(gram_cli, tmp_path):
    X, Y = data_3d()
    np.save(tmp_path / "d.npy", np.column_stack([X, Y]))
    Xq = np.random.default_rng(5).uniform(-2.5, 2.5, (20, 3))
    write_csv(tmp_path / "q.csv", ["a", "b", "c"], Xq)
    ok(gram_cli, "gp", "fit", tmp_path / "d.npy", "--target", "3", "--alpha", "1e-6", "--kernel",
       "rbf(lengthscale=[0.7, 1.3, 2.1]) + white(0.02)", "-o", tmp_path / "m.gp", "-q")
    p = ok(gram_cli, "gp", "predict", tmp_path / "m.gp", tmp_path / "q.csv", "--std")
    header, out = read_csv(p.stdout.decode())

    k = RBF([0.7, 1.3, 2.1]) + WhiteKernel(0.02)
    gpr = GaussianProcessRegressor(k, optimizer=None, alpha=1e-6).fit(X, Y[:, 0])
    mean, std = gpr.predict(Xq, return_std=True)
    assert_close(out[:, 0], mean, 1e-9, "mean")
    assert_close(out[:, 1], std, 1e-9, "std")


def test_gp_per_point_alpha_file(gram_cli, tmp_path):
    X, y = data_1d(N=20, seed=4)
    data = write_csv(tmp_path / "d.csv", ["x", "y"], X[:, 0], y)
    alpha = np.random.default_rng(6).uniform(0.01, 0.2, len(y))
    np.save(tmp_path / "a.npy", alpha)
    ok(gram_cli, "gp", "fit", data, "--target", "y", "--kernel", "rbf(lengthscale=0.6)", "--alpha",
       tmp_path / "a.npy", "-o", tmp_path / "m.gp", "-q")
    np.save(tmp_path / "x.npy", X + 0.05)
    p = ok(gram_cli, "gp", "predict", tmp_path / "m.gp", tmp_path / "x.npy", "--std", "-q")
    gpr = GaussianProcessRegressor(RBF(0.6), optimizer=None, alpha=alpha).fit(X, y)
    mean, std = gpr.predict(X + 0.05, return_std=True)
    out = read_csv(p.stdout.decode())[1]
    assert_close(out[:, 0], mean, 1e-9, "mean")
    assert_close(out[:, 1], std, 1e-9, "std")


def test_gp_multi_target_from_file(gram_cli, tmp_path):
    X, Y = data_3d(T=2)
    np.save(tmp_path / "X.npy", X)
    write_csv(tmp_path / "Y.csv", ["u", "v"], Y)
    ok(gram_cli, "gp", "fit", tmp_path / "X.npy", "--target", tmp_path / "Y.csv", "--kernel",
       "2*rbf(lengthscale=1.1) + white(0.01)", "--normalize-y", "-o", tmp_path / "m.gp", "-q")
    p = ok(gram_cli, "gp", "predict", tmp_path / "m.gp", tmp_path / "X.npy", "--std", "-q")
    header, out = read_csv(p.stdout.decode())
    assert header == ["mean0", "mean1", "std0", "std1"]
    k = ConstantKernel(2.0) * RBF(1.1) + WhiteKernel(0.01)
    gpr = GaussianProcessRegressor(k, optimizer=None, normalize_y=True).fit(X, Y)
    mean, std = gpr.predict(X, return_std=True)
    assert_close(out[:, :2], mean, 1e-9, "mean")
    assert_close(out[:, 2:], std, 1e-9, "std")


def test_gp_optimize_reaches_sklearn_likelihood(gram_cli, tmp_path):
    X, y = data_1d(N=30, seed=3)
    data = write_csv(tmp_path / "d.csv", ["x", "y"], X[:, 0], y)
    p = ok(gram_cli, "gp", "fit", data, "--target", "y", "--kernel",
           "1.0*rbf(lengthscale=1.0) + white(0.1)", "--optimize", "-o", tmp_path / "m.gp")
    gpr = GaussianProcessRegressor(ConstantKernel(1.0) * RBF(1.0) + WhiteKernel(0.1),
                                   n_restarts_optimizer=0, random_state=0).fit(X, y)
    lml = lml_of(p.stderr)
    assert lml >= gpr.log_marginal_likelihood_value_ - 1e-6, (lml, gpr.log_marginal_likelihood_value_)
    m = re.search(r"iterations=(\d+) \(1 start, (\d+) evaluations\)", p.stderr.decode())
    assert m and int(m.group(1)) > 0, p.stderr.decode()
    # the learned kernel went into the model: predictions match sklearn's with its kernel
    np.save(tmp_path / "x.npy", X)
    ok(gram_cli, "gp", "predict", tmp_path / "m.gp", tmp_path / "x.npy", "-o", tmp_path / "o.npy", "-q")
    gram_mean = np.load(tmp_path / "o.npy")[:, 0]
    assert np.max(np.abs(gram_mean - gpr.predict(X))) < 1e-3 * np.ptp(y)

    # restarts: never worse than the single start
    p2 = ok(gram_cli, "gp", "fit", data, "--target", "y", "--kernel",
            "1.0*rbf(lengthscale=1.0) + white(0.1)", "--optimize", "--restarts", "2", "--seed", "4",
            "-o", tmp_path / "m2.gp")
    assert lml_of(p2.stderr) >= lml - 1e-6
    assert "(3 starts," in p2.stderr.decode()
    assert "warning" not in p.stderr.decode() + p2.stderr.decode()  # these converged


def test_gp_unconverged_start_warns(gram_cli, tmp_path):
    """A start stopped by --max-iter is reported, as scikit-learn's ConvergenceWarning, even with
    -q; scikit-learn's L-BFGS-B stops at the same limit with SciPy's status 1."""
    X, y = data_1d(N=30, seed=3)
    data = write_csv(tmp_path / "d.csv", ["x", "y"], X[:, 0], y)
    for quiet in ([], ["-q"]):
        p = ok(gram_cli, "gp", "fit", data, "--target", "y", "--kernel",
               "1.0*rbf(lengthscale=1.0) + white(0.1)", "--optimize", "--max-iter", "2",
               "--restarts", "1", *quiet, "-o", tmp_path / "m.gp")
        err = p.stderr.decode()
        for start in (0, 1):
            assert re.search(rf"warning: optimizer start {start} \(.*\) did not converge after 2 "
                             r"iterations: stopped at --max-iter", err), err
        assert ("log_marginal_likelihood=" in err) == (not quiet), err


# ---- --target ------------------------------------------------------------------------------------


def test_target_by_name_index_and_file(gram_cli, tmp_path):
    X, Y = data_3d(N=30)
    # the target in the middle of DATA: the inputs are the other columns, in order
    write_csv(tmp_path / "d.csv", ["a", "y", "b", "c"], X[:, 0], Y[:, 0], X[:, 1], X[:, 2])
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", Y[:, 0])  # 1-D: N x 1
    spec = "rbf(lengthscale=[1, 2, 3]) + white(0.1)"
    runs = {"name": [tmp_path / "d.csv", "--target", "y"],
            "index": [tmp_path / "d.csv", "--target", "1"],
            "file": [tmp_path / "X.npy", "--target", tmp_path / "y.npy"]}
    outs = {}
    for key, args in runs.items():
        for cmd in ("gp", "krr"):
            ok(gram_cli, cmd, "fit", *args, "--kernel", spec, "-o", tmp_path / f"{key}.{cmd}", "-q")
            p = ok(gram_cli, cmd, "predict", tmp_path / f"{key}.{cmd}", tmp_path / "X.npy", "-q")
            outs[key, cmd] = read_csv(p.stdout.decode())[1]
    for cmd in ("gp", "krr"):
        assert np.array_equal(outs["name", cmd], outs["index", cmd])
        assert np.array_equal(outs["name", cmd], outs["file", cmd])


def test_target_several_columns(gram_cli, tmp_path):
    X, Y = data_3d(N=30, T=2)
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "u", "v"], X, Y)
    ok(gram_cli, "krr", "fit", tmp_path / "d.csv", "--target", "u,v", "--kernel", "rbf(1)",
       "--alpha", "0.5,2", "-o", tmp_path / "m.krr", "-q")
    np.save(tmp_path / "X.npy", X)
    p = ok(gram_cli, "krr", "predict", tmp_path / "m.krr", tmp_path / "X.npy", "-q")
    header, out = read_csv(p.stdout.decode())
    assert header == ["prediction0", "prediction1"]
    want = np.column_stack([KernelRidge(alpha=a, kernel="rbf", gamma=0.5).fit(X, Y[:, t]).predict(X)
                            for t, a in enumerate([0.5, 2.0])])
    assert_close(out, want, 1e-10, "krr two targets")


def test_stdin(gram_cli, tmp_path):
    X, y = data_1d(N=12)
    text = "x,y\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(X[:, 0], y))
    ok(gram_cli, "krr", "fit", "-", "--target", "y", "--kernel", "rbf(1)", "-o", tmp_path / "m.krr",
       "-q", stdin=text.encode())
    query = "".join(f"{float(a)!r}\n" for a in X[:, 0]).encode()
    p = ok(gram_cli, "krr", "predict", tmp_path / "m.krr", "-", "-q", stdin=query)
    want = KernelRidge(kernel="rbf", gamma=0.5).fit(X, y).predict(X)
    assert_close(read_csv(p.stdout.decode())[1][:, 0], want, 1e-10, "krr from stdin")


# ---- krr against scikit-learn --------------------------------------------------------------------


KRR_CASES = [
    # id, gram spec, sklearn KernelRidge arguments
    ("rbf", "rbf(lengthscale=0.9)", dict(kernel="rbf", gamma=1 / (2 * 0.9 ** 2))),
    ("laplacian", "laplacian_l1(lengthscale=2.5)", dict(kernel="laplacian", gamma=1 / 2.5)),
    ("polynomial", "polynomial(degree=2, gamma=0.3, coef0=1.5)",
     dict(kernel="polynomial", degree=2, gamma=0.3, coef0=1.5)),
]


@pytest.mark.parametrize("case", KRR_CASES, ids=[c[0] for c in KRR_CASES])
@pytest.mark.parametrize("weighted", [False, True])
def test_krr_matches_sklearn(gram_cli, tmp_path, case, weighted):
    _, spec, sk = case
    X, Y = data_3d(N=35, T=2, seed=7)
    np.save(tmp_path / "d.npy", np.column_stack([X, Y]))
    w = np.random.default_rng(8).uniform(0.2, 3.0, len(X))
    np.save(tmp_path / "w.npy", w)
    Xq = np.random.default_rng(9).uniform(-2, 2, (17, 3))
    np.save(tmp_path / "q.npy", Xq)
    extra = ["--weights", tmp_path / "w.npy"] if weighted else []
    p = ok(gram_cli, "krr", "fit", tmp_path / "d.npy", "--target", "3,4", "--kernel", spec,
           "--alpha", "0.7", *extra, "-o", tmp_path / "m.krr")
    assert re.search(r"N=35 D=3 T=2 alpha=0\.7 in ", p.stderr.decode())
    ok(gram_cli, "krr", "predict", tmp_path / "m.krr", tmp_path / "q.npy", "-o", tmp_path / "o.npy", "-q")
    model = KernelRidge(alpha=0.7, **sk).fit(X, Y, sample_weight=w if weighted else None)
    assert_close(np.load(tmp_path / "o.npy"), model.predict(Xq), 1e-10, "krr")


def test_krr_default_alpha_is_one(gram_cli, tmp_path):
    X, y = data_1d(N=20)
    data = write_csv(tmp_path / "d.csv", ["x", "y"], X[:, 0], y)
    ok(gram_cli, "krr", "fit", data, "--target", "y", "--kernel", "rbf(0.5)", "-o", tmp_path / "m.krr", "-q")
    np.save(tmp_path / "x.npy", X)
    p = ok(gram_cli, "krr", "predict", tmp_path / "m.krr", tmp_path / "x.npy", "-q")
    header, out = read_csv(p.stdout.decode())
    assert header == ["prediction"]
    want = KernelRidge(kernel="rbf", gamma=2.0).fit(X, y).predict(X)
    assert_close(out[:, 0], want, 1e-10, "krr alpha=1")


# ---- sample --------------------------------------------------------------------------------------


def test_gp_sample_shape_and_seeds(gram_cli, tmp_path):
    X, Y = data_3d(N=25, T=2)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    ok(gram_cli, "gp", "fit", tmp_path / "X.npy", "--target", tmp_path / "Y.npy", "--kernel",
       "rbf(1.0) + white(0.05)", "-o", tmp_path / "m.gp", "-q")
    Xq = X[:7] + 0.1
    np.save(tmp_path / "q.npy", Xq)

    def sample(*args):
        p = ok(gram_cli, "gp", "sample", tmp_path / "m.gp", tmp_path / "q.npy", *args)
        return read_csv(p.stdout.decode()), p.stderr.decode()

    (header, a), err = sample("--count", "5", "--seed", "11")
    assert header == [f"sample{k}" for k in range(5)]
    assert a.shape == (7, 5)
    assert "5 paths of target 0 (seed 11)" in err
    (_, b), _ = sample("-n", "5", "--seed", "11", "-q")
    assert np.array_equal(a, b)
    (_, c), _ = sample("--count", "5", "--seed", "12", "-q")
    assert not np.allclose(a, c)
    (_, d), _ = sample("--count", "5", "--seed", "11", "--target", "1", "-q")
    assert d.shape == (7, 5) and not np.allclose(a, d)

    # many paths: their mean and spread are the posterior's
    (_, many), _ = sample("--count", "4000", "--seed", "3", "--target", "1", "-q")
    gpr = GaussianProcessRegressor(RBF(1.0) + WhiteKernel(0.05), optimizer=None).fit(X, Y)
    mean, std = gpr.predict(Xq, return_std=True)
    assert np.all(np.abs(many.mean(1) - mean[:, 1]) < 5 * std[:, 1] / np.sqrt(4000))
    assert np.all(np.abs(many.std(1) / std[:, 1] - 1) < 0.1)


# ---- plots ---------------------------------------------------------------------------------------


def test_plots(gram_cli, tmp_path):
    X, y = data_1d(N=20)
    data = write_csv(tmp_path / "d.csv", ["time", "level"], X[:, 0], y)
    np.save(tmp_path / "q.npy", np.linspace(-1, 9, 60))
    spec = "rbf(lengthscale=1) + white(0.05)"

    ok(gram_cli, "gp", "fit", data, "--target", "level", "--kernel", spec, "-o", tmp_path / "m.gp",
       "--plot", tmp_path / "fit.svg", "-q")
    root, texts = check_svg(tmp_path / "fit.svg")
    assert "Gaussian process of d.csv" in texts and "time" in texts and "level" in texts
    assert "training data" in texts and "posterior mean" in texts
    assert len(root.findall(f".//{SVG_NS}circle")) == 20 + 1  # the points and the legend's

    p = ok(gram_cli, "gp", "predict", tmp_path / "m.gp", tmp_path / "q.npy", "--plot",
           tmp_path / "p.svg", "-q")
    assert p.stdout == b"", "with --plot and no -o nothing goes to stdout"
    root, texts = check_svg(tmp_path / "p.svg")
    assert "Posterior of m.gp" in texts
    assert len(root.findall(f".//{SVG_NS}circle")) == 21

    ok(gram_cli, "gp", "sample", tmp_path / "m.gp", tmp_path / "q.npy", "-n", "4", "--plot",
       tmp_path / "s.svg", "-o", tmp_path / "s.csv", "-q")
    root, texts = check_svg(tmp_path / "s.svg")
    assert "posterior samples" in texts
    assert read_csv(tmp_path / "s.csv")[1].shape == (60, 4)

    ok(gram_cli, "krr", "fit", data, "--target", "level", "--kernel", "rbf(1)", "--alpha", "0.1",
       "-o", tmp_path / "m.krr", "--plot", tmp_path / "kf.svg", "-q")
    root, texts = check_svg(tmp_path / "kf.svg")
    assert "Kernel ridge regression of d.csv" in texts and "prediction" in texts
    ok(gram_cli, "krr", "predict", tmp_path / "m.krr", tmp_path / "q.npy", "--plot", tmp_path / "kp.svg", "-q")
    root, raw_texts = check_svg(tmp_path / "kp.svg")
    assert "training inputs" in raw_texts
    assert (tmp_path / "kp.svg").read_bytes().count(b"v-12") == 20  # the rug of the inputs


def test_plot_write_failure_leaves_no_model(gram_cli, tmp_path):
    X, y = data_1d(N=10)
    data = write_csv(tmp_path / "d.csv", ["x", "y"], X[:, 0], y)
    before = set(tmp_path.iterdir())
    p = run(gram_cli, "gp", "fit", data, "--target", "y", "--kernel", "rbf(1)", "-o", tmp_path / "m.gp",
            "--plot", tmp_path / "no" / "p.svg")
    assert p.returncode == 1
    assert set(tmp_path.iterdir()) == before


# ---- help, dispatch ------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["gp", "--help"], ["gp", "fit", "--help"], ["gp", "predict", "-h"],
                                  ["gp", "sample", "--help"], ["krr", "--help"], ["krr", "fit", "--help"],
                                  ["krr", "predict", "--help"], ["help", "gp"], ["help", "krr"]])
def test_help(gram_cli, args):
    p = ok(gram_cli, *args)
    out = p.stdout.decode()
    cmd = [a for a in args if a not in ("help", "--help", "-h")]
    assert out.startswith("Usage: gram " + " ".join(cmd)), out[:200]
    assert p.stderr == b""
    if args[:2] == ["gp", "fit"]:
        for opt in ["--target", "--kernel", "--alpha", "--normalize-y", "--optimize", "--restarts",
                    "--seed", "--max-iter", "--jitter-tries", "--threads", "--plot", "-o", "-q"]:
            assert opt in out


def test_main_help_lists_commands(gram_cli):
    out = ok(gram_cli, "--help").stdout.decode()
    assert re.search(r"^  gp ", out, re.M) and re.search(r"^  krr ", out, re.M)


# ---- errors --------------------------------------------------------------------------------------


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, np.asarray(a, dtype=float))
    return buf.getvalue()


def _csv(names, *cols):
    rows = np.column_stack(cols)
    return (",".join(names) + "\n" + "".join(",".join(repr(float(v)) for v in r) + "\n"
                                             for r in rows)).encode()


_X, _Y = data_3d(N=20)
D3 = _csv(["a", "b", "c", "y"], _X, _Y)
D1 = _csv(["x", "y"], _X[:, 0], _Y[:, 0])
_Y_NAN = _Y[:, 0].copy()
_Y_NAN[2] = np.nan
NAN_Y = _csv(["x", "y"], _X[:, 0], _Y_NAN)
DUP = b"x,y\n1,1\n1,2\n2,3\n"
Q3 = _npy(_X[:5])
Q2 = _npy(_X[:5, :2])

GP = "rbf(1) + white(0.1)"
FIT_GP = ["gp", "fit", "d.csv", "--target", "y", "--kernel", GP, "-o", "out.model"]
FIT_KRR = ["krr", "fit", "d.csv", "--target", "y", "--kernel", "rbf(1)", "-o", "out.model"]

# id, {file: contents}, args, exit code, regexes that stderr must match
ERROR_CASES = [
    # data and runtime errors
    ("nan-target", {"d.csv": NAN_Y}, FIT_GP, 1, [r"^gram: d\.csv: row 3, column 2 \(y\) is NaN"]),
    ("inf-target-file", {"x.npy": _npy(_X), "t.csv": b"1\n" * 19 + b"inf\n"},
     ["gp", "fit", "x.npy", "--target", "t.csv", "--kernel", GP, "-o", "out.model"], 1,
     [r"t\.csv", r"row 20", r"Inf"]),
    ("no-data", {"d.csv": b"x,y\n"}, FIT_GP, 1, [r"^gram: .*d\.csv"]),
    ("rows-mismatch", {"x.npy": _npy(_X), "t.npy": _npy(_Y[:-1])},
     ["krr", "fit", "x.npy", "--target", "t.npy", "--kernel", "rbf(1)", "-o", "out.model"], 1,
     [r"t\.npy: expected 20 rows", r"19"]),
    ("unknown-target", {"d.csv": D3}, ["gp", "fit", "d.csv", "--target", "z", "--kernel", GP,
                                        "-o", "out.model"], 1,
     [r"--target: 'z' is neither a column of d\.csv .* nor a file"]),
    ("target-index-out-of-range", {"d.csv": D3}, ["gp", "fit", "d.csv", "--target", "4", "--kernel",
                                                   GP, "-o", "out.model"], 1, [r"'4'", r"0\.\.3"]),
    ("target-is-every-column", {"y.csv": b"y\n1\n2\n"},
     ["gp", "fit", "y.csv", "--target", "y", "--kernel", GP, "-o", "out.model"], 1, [r"no columns left"]),
    ("ard-dimension", {"d.csv": D3}, ["gp", "fit", "d.csv", "--target", "y", "--kernel",
                                       "rbf(lengthscale=[1, 2])", "-o", "out.model"], 1,
     [r"D = 2", r"3 columns"]),
    ("gp-not-positive-definite", {"d.csv": DUP}, FIT_GP[:6] + ["rbf(1)", "--alpha", "0", "-o", "out.model"],
     1, [r"not numerically positive definite", r"pivot", r"--jitter-tries"]),
    ("krr-singular", {"d.csv": DUP}, FIT_KRR + ["--alpha", "0"], 1,
     [r"not numerically positive definite", r"pivot", r"--alpha"]),
    ("zero-weight", {"d.csv": D3, "w.npy": _npy(np.r_[np.ones(19), 0.0])}, FIT_KRR + ["--weights", "w.npy"],
     1, [r"w\.npy: value 20 is 0", r"> 0"]),
    ("weights-count", {"d.csv": D3, "w.npy": _npy(np.ones(7))}, FIT_KRR + ["--weights", "w.npy"], 1,
     [r"w\.npy: expected 20 sample weights"]),
    ("alpha-file-count", {"d.csv": D3, "a.npy": _npy(np.ones(3))}, FIT_GP + ["--alpha", "a.npy"], 1,
     [r"a\.npy: expected 20 alpha values"]),
    ("unwritable-model", {"d.csv": D3}, FIT_GP[:-1] + ["no/such/dir/m.gp"], 1, [r"no/such/dir"]),
    ("corrupted-model", {"m.gp": "GP_MODEL_FLIPPED", "q.npy": Q3}, ["gp", "predict", "m.gp", "q.npy"], 1,
     [r"^gram: m\.gp: .*checksum"]),
    ("newer-model", {"m.gp": "GP_MODEL_NEWER", "q.npy": Q3}, ["gp", "predict", "m.gp", "q.npy"], 1,
     [r"m\.gp: .*version 2 is newer", r"upgrade"]),
    ("krr-model-to-gp", {"m.krr": "KRR_MODEL", "q.npy": Q3}, ["gp", "predict", "m.krr", "q.npy"], 1,
     [r"m\.krr: a kernel ridge \(krr\) model", r"gram krr predict"]),
    ("gp-model-to-krr", {"m.gp": "GP_MODEL", "q.npy": Q3}, ["krr", "predict", "m.gp", "q.npy"], 1,
     [r"m\.gp: a Gaussian process \(gp\) model", r"gram gp predict"]),
    ("krr-model-to-gp-sample", {"m.krr": "KRR_MODEL", "q.npy": Q3},
     ["gp", "sample", "m.krr", "q.npy", "-n", "2"], 1, [r"gram krr predict"]),
    ("not-a-model", {"q.npy": Q3}, ["gp", "predict", "q.npy", "q.npy"], 1, [r"^gram: q\.npy: "]),
    ("missing-model", {"q.npy": Q3}, ["gp", "predict", "nope.gp", "q.npy"], 1, [r"^gram: nope\.gp: "]),
    ("query-dimension", {"m.gp": "GP_MODEL", "q.npy": Q2}, ["gp", "predict", "m.gp", "q.npy", "--std"], 1,
     [r"q\.npy: the query points have 2 columns, the model's inputs 3"]),
    ("sample-target-range", {"m.gp": "GP_MODEL", "q.npy": Q3},
     ["gp", "sample", "m.gp", "q.npy", "-n", "2", "--target", "1"], 1, [r"--target: the model has 1 target"]),
    # usage errors
    # a spec the parser refuses needs no data: a usage error, found before DATA is read (which
    # does not even exist here)
    ("bounds-reversed", {},
     ["gp", "fit", "nope.csv", "--target", "y", "--kernel", "rbf(lengthscale=5, lengthscale_bounds=[10, 1])",
      "-o", "out.model"], 2, [r"^gram gp fit: --kernel: .*lengthscale_bounds: lower bound 10 is above upper bound 1"]),
    ("bad-spec", {}, ["krr", "fit", "nope.csv", "--target", "y", "--kernel", "rbf(", "-o",
                      "out.model"], 2, [r"^gram krr fit: --kernel: .*position \d+"]),
    ("spec-trailing-plus", {}, ["gp", "fit", "nope.csv", "--target", "y", "--kernel", "rbf(1) + ", "-o",
                                     "out.model"], 2, [r"^gram gp fit: --kernel: "]),
    ("predict-unknown-suffix", {}, ["gp", "predict", "nope.gp", "nope.npy", "-o", "out.txt"], 2,
     [r"^gram gp predict: -o: 'out\.txt' has an unknown suffix: gram writes \.npy .* or \.csv"]),
    ("plot-not-svg", {}, ["krr", "predict", "nope.krr", "nope.npy", "--plot", "p.png"], 2,
     [r"^gram krr predict: --plot: 'p\.png': gram draws SVG only"]),
    ("fit-plot-not-svg", {}, FIT_GP[:-1] + ["m.gp", "--plot", "p.pdf"], 2, [r"--plot: 'p\.pdf'"]),
    ("unknown-option", {"d.csv": D3}, FIT_GP + ["--frobnicate"], 2,
     [r"^gram gp fit: unrecognized option '--frobnicate'", r"Try 'gram gp fit --help'"]),
    ("gp-has-no-weights", {"d.csv": D3}, FIT_GP + ["--weights", "d.csv"], 2, [r"unrecognized option '--weights'"]),
    ("krr-predict-has-no-std", {"q.npy": Q3}, ["krr", "predict", "m", "q.npy", "--std"], 2, [r"'--std'"]),
    ("missing-data", {}, ["gp", "fit", "--target", "y", "--kernel", GP, "-o", "m"], 2, [r"missing DATA"]),
    ("missing-target", {"d.csv": D3}, ["krr", "fit", "d.csv", "--kernel", GP, "-o", "m"], 2,
     [r"missing --target"]),
    ("missing-kernel", {"d.csv": D3}, ["gp", "fit", "d.csv", "--target", "y", "-o", "m"], 2,
     [r"missing --kernel"]),
    ("missing-output", {"d.csv": D3}, ["gp", "fit", "d.csv", "--target", "y", "--kernel", GP], 2,
     [r"missing -o MODEL"]),
    ("missing-model-arg", {}, ["gp", "predict"], 2, [r"^gram gp predict: missing MODEL"]),
    ("missing-query", {}, ["krr", "predict", "m.krr"], 2, [r"^gram krr predict: missing QUERY"]),
    ("extra-argument", {}, ["gp", "predict", "a", "b", "c"], 2, [r"unexpected argument 'c'"]),
    ("bad-alpha", {"d.csv": D3}, FIT_GP + ["--alpha", "abc"], 2, [r"--alpha: expected a number >= 0"]),
    ("negative-alpha", {"d.csv": D3}, FIT_KRR + ["--alpha=-1"], 2, [r"--alpha"]),
    ("alpha-count", {"d.csv": D3}, FIT_KRR + ["--alpha", "1,2,3"], 2, [r"--alpha: expected one value or one per target \(T = 1\), got 3"]),
    ("bad-restarts", {"d.csv": D3}, FIT_GP + ["--optimize", "--restarts", "-1"], 2, [r"--restarts"]),
    ("restarts-without-optimize", {"d.csv": D3}, FIT_GP + ["--restarts", "3"], 2,
     [r"--restarts only applies with --optimize"]),
    ("bad-max-iter", {"d.csv": D3}, FIT_GP + ["--optimize", "--max-iter", "0"], 2, [r"--max-iter"]),
    ("bad-jitter", {"d.csv": D3}, FIT_GP + ["--jitter-tries", "x"], 2, [r"--jitter-tries"]),
    ("bad-threads", {"d.csv": D3}, FIT_GP + ["--threads", "-2"], 2, [r"--threads"]),
    ("missing-count", {"q.npy": Q3}, ["gp", "sample", "m", "q.npy"], 2, [r"missing --count"]),
    ("zero-count", {"q.npy": Q3}, ["gp", "sample", "m", "q.npy", "--count", "0"], 2, [r"--count"]),
    ("bad-seed", {"q.npy": Q3}, ["gp", "sample", "m", "q.npy", "-n", "2", "--seed", "-1"], 2, [r"--seed"]),
    ("bad-sample-target", {"q.npy": Q3}, ["gp", "sample", "m", "q.npy", "-n", "2", "--target", "y"], 2,
     [r"--target: expected a 0-based target index"]),
    ("plot-3d", {"d.csv": D3}, FIT_GP + ["--plot", "p.svg"], 2, [r"--plot needs 1-D inputs"]),
    ("plot-3d-predict", {"m.gp": "GP_MODEL", "q.npy": Q3}, ["gp", "predict", "m.gp", "q.npy", "--plot", "p.svg"],
     2, [r"--plot needs 1-D inputs, but the model has D = 3"]),
    ("stdin-twice", {}, ["krr", "predict", "-", "-"], 2, [r"standard input"]),
    ("no-subcommand", {}, ["gp"], 2, [r"Usage: gram gp fit"]),
    ("unknown-subcommand", {}, ["krr", "frobnicate"], 2,
     [r"^gram krr: unknown command 'frobnicate' \(expected fit or predict\)"]),
]


@pytest.fixture(scope="module")
def models(gram_cli, tmp_path_factory):
    """A gp and a krr model fitted to the 3-D data, and variants of the gp file."""
    d = tmp_path_factory.mktemp("models")
    (d / "d.csv").write_bytes(D3)
    ok(gram_cli, "gp", "fit", d / "d.csv", "--target", "y", "--kernel", GP, "-o", d / "m.gp", "-q")
    ok(gram_cli, "krr", "fit", d / "d.csv", "--target", "y", "--kernel", "rbf(1)", "-o", d / "m.krr", "-q")
    gp = (d / "m.gp").read_bytes()
    flipped = bytearray(gp)
    flipped[len(gp) // 2] ^= 0x10
    newer = bytearray(gp)
    newer[8:12] = (2).to_bytes(4, "little")
    return {"GP_MODEL": gp, "KRR_MODEL": (d / "m.krr").read_bytes(), "GP_MODEL_FLIPPED": bytes(flipped),
            "GP_MODEL_NEWER": bytes(newer)}


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors(cli_error_case, models, case):
    err = cli_error_case(case, models)
    _, _, args, code, _ = case
    if code == 2 and args[-1] != "gp":
        assert err.startswith("gram ")


def test_jitter_tries_rescue_a_singular_matrix(gram_cli, tmp_path):
    (tmp_path / "d.csv").write_bytes(DUP)
    p = ok(gram_cli, "gp", "fit", tmp_path / "d.csv", "--target", "y", "--kernel", "rbf(1)", "--alpha", "0",
           "--jitter-tries", "5", "-o", tmp_path / "m.gp")
    assert re.search(r"jitter \S+ added to the diagonal", p.stderr.decode())


# ---- interruption --------------------------------------------------------------------------------


def test_sigint_exits_130_and_writes_nothing(gram_cli, tmp_path):
    rng = np.random.default_rng(30)
    n = 800
    for _ in range(4):
        X = rng.uniform(0, 10, (n, 2))
        np.save(tmp_path / "d.npy", np.column_stack([X, np.sin(X[:, 0]) + 0.1 * rng.standard_normal(n)]))
        proc = subprocess.Popen([gram_cli, "gp", "fit", str(tmp_path / "d.npy"), "--target", "2", "--kernel",
                                 "rbf(lengthscale=[1, 1]) + white(0.1)", "--optimize", "--restarts", "50",
                                 "-o", str(tmp_path / "m.gp")], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                # SIGINT at its default whatever this process inherited (gram keeps an
                                # ignored SIGINT ignored, and the suite may run as a background job)
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(0.5)
        if proc.poll() is None:
            t0 = time.time()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 130, err.decode()
            assert "gram: interrupted" in err.decode()
            assert time.time() - t0 < 20
            assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npy"]
            return
        proc.communicate()
        (tmp_path / "m.gp").unlink()
        n *= 2
    pytest.fail("every fit finished before it could be interrupted")
