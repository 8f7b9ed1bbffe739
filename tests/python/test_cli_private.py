"""Tests of `gram private` (cli/private.c): fit, query and info.

References computed in the test: the exact sums (SciPy's cdist) that a sketch fitted with a huge
epsilon must approach within the family's approximation, the sum / n relation of --mean, and the
library's determinism (the same noise seed and public seed give the same sketch file, bit for bit;
queries are deterministic post-processing). Every error path is checked for its exit code, its
message, an empty standard output and no file left behind (see conftest.py for how the binary is
found).
"""
import re
import subprocess

import numpy as np
import pytest
from scipy.spatial.distance import cdist

SIMS = ["gaussian", "exponential", "cauchy", "l1", "l2", "lpp"]
KERNELS = {"gaussian", "exponential", "cauchy"}


def run(cli, *args, cwd=None, stdin=None):
    return subprocess.run([cli, *[str(a) for a in args]], capture_output=True, timeout=300, cwd=cwd, input=stdin)


def ok(cli, *args, **kw):
    p = run(cli, *args, **kw)
    assert p.returncode == 0, f"exit {p.returncode}; stderr:\n{p.stderr.decode(errors='replace')}"
    return p


def data(N=40, D=3, seed=0, scale=0.25):
    return np.random.default_rng(seed).uniform(-scale, scale, (N, D))


def fit_args(sim, epsilon=1.0, extra=()):
    a = ["--similarity", sim, "--epsilon", epsilon, "--radius", 1, "--seed", 5, "--insecure-noise-seed", 9]
    if sim in KERNELS:
        a += ["--bandwidth", 0.7]
    if sim == "lpp":
        a += ["--p", 1.5]
    return a + list(extra)


def exact(sim, X, Y):
    D = cdist(Y, X)
    return {"gaussian": np.exp(-D**2 / 0.49), "exponential": np.exp(-D / 0.7), "cauchy": 1 / (1 + D**2 / 0.49),
            "l1": cdist(Y, X, "cityblock"), "l2": D, "lpp": cdist(Y, X, "minkowski", p=1.5) ** 1.5}[sim].sum(1)


def info_of(cli, path):
    out = ok(cli, "private", "info", path).stdout.decode()
    return dict(line.split(": ", 1) for line in out.splitlines())


# Tolerances of the noiseless limit (epsilon = 1e9: the noise is below 1e-6 of a unit), from each
# family's approximation at these settings, N = 40 points in [-0.25, 0.25]^3 (|x| <= 0.44):
#   l1, lpp: cells of width h = 2R/2^L = 2/4096; moving each point to its cell's midpoint moves
#     |x_j - y_j| by at most h/2, so the sum by at most N·d·h/2 = 0.03 (lpp: times p·(2R)^(p-1) <= 2.2);
#   l2: the l1 embedding with k = 2048 projections has relative standard deviation
#     sqrt((pi/2 - 1)/k) = 1.7% per pair, and the sum at most that: 10% is over 5 sigma;
#   kernels: 4096 random features, the feature sum of one pair has standard deviation at most
#     sqrt(2/R) = 2.2% and the sum over N pairs at most N times that (fully correlated): 0.9 of a sum
#     near 30 (3%); cauchy adds its fit's approx_error·N, checked from the sketch's own info.
TOL = {"l1": (0, 0.03), "lpp": (0, 0.07), "l2": (0.10, 0), "gaussian": (0, 0.9), "exponential": (0, 0.9),
       "cauchy": (0, 0.9)}
EXTRA = {"l1": ["--levels", 12], "lpp": ["--levels", 12], "l2": ["--levels", 12, "--components", 2048],
         "gaussian": ["--components", 4096], "exponential": ["--components", 4096], "cauchy": ["--components", 4096]}


@pytest.mark.parametrize("sim", SIMS)
def test_noiseless_limit_round_trip_and_mean(gram_cli, tmp_path, sim):
    X, Y = data(), data(7, seed=1)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    p = ok(gram_cli, "private", "fit", tmp_path / "x.npy", *fit_args(sim, 1e9, EXTRA[sim]), "-o", tmp_path / "s.sk")
    err = p.stderr.decode()
    assert "warning: --insecure-noise-seed" in err and "NOT private" in err
    assert re.search(rf"{sim} \(paper\), N=40 D=3 epsilon=1e\+09 delta=0, discrete_laplace noise", err), err
    assert "0 rows clipped" in err and "were outside the domain" not in err

    q = ok(gram_cli, "private", "query", tmp_path / "s.sk", tmp_path / "y.npy", "-o", tmp_path / "q.npy")
    assert "NOT private" in q.stderr.decode()
    got = np.load(tmp_path / "q.npy")
    assert got.dtype == np.float64 and got.shape == (7, 1)
    want = exact(sim, X, Y)
    rel, ab = TOL[sim]
    if sim == "cauchy":
        ab += 40 * float(info_of(gram_cli, tmp_path / "s.sk")["approx_error"])
    assert np.all(np.abs(got[:, 0] - want) <= rel * want + ab), (got[:, 0], want)

    # --mean: the sum divided by the released n (exact under replace-one), bit for bit; CSV output
    out = ok(gram_cli, "private", "query", tmp_path / "s.sk", tmp_path / "y.npy", "--mean", "-q").stdout.decode()
    lines = out.splitlines()
    assert lines[0] == "mean"
    assert np.array_equal(np.array([float(v) for v in lines[1:]]), got[:, 0] / 40)
    out = ok(gram_cli, "private", "query", tmp_path / "s.sk", tmp_path / "y.npy", "-q").stdout.decode()
    assert out.splitlines()[0] == "sum"
    assert np.array_equal(np.array([float(v) for v in out.splitlines()[1:]]), got[:, 0])


@pytest.mark.parametrize("sim", SIMS)
def test_same_seeds_same_file_and_info(gram_cli, tmp_path, sim):
    X = data()
    np.save(tmp_path / "x.npy", X)
    args = fit_args(sim, 0.5, ["--delta", "1e-6"] if sim in ("exponential", "l2") else [])
    ok(gram_cli, "private", "fit", tmp_path / "x.npy", *args, "-o", tmp_path / "a.sk", "-q")
    ok(gram_cli, "private", "fit", tmp_path / "x.npy", *args, "-o", tmp_path / "b.sk", "-q")
    assert (tmp_path / "a.sk").read_bytes() == (tmp_path / "b.sk").read_bytes()
    # without the test seed the noise comes from the system: another sketch each time
    clean = [a for a in args if a not in ("--insecure-noise-seed", 9)]
    p = ok(gram_cli, "private", "fit", tmp_path / "x.npy", *clean, "-o", tmp_path / "c.sk")
    assert "insecure" not in p.stderr.decode()
    ok(gram_cli, "private", "fit", tmp_path / "x.npy", *clean, "-o", tmp_path / "d.sk", "-q")
    assert (tmp_path / "c.sk").read_bytes() != (tmp_path / "d.sk").read_bytes()

    a, c = info_of(gram_cli, tmp_path / "a.sk"), info_of(gram_cli, tmp_path / "c.sk")
    assert a["similarity"] == sim and a["mechanism"] == "paper" and a["domain"] == "ball"
    assert float(a["epsilon"]) == 0.5 and a["neighbours"] == "replace" and a["d"] == "3" and a["n"] == "40"
    assert a["noise"] == ("discrete_gaussian" if sim in ("exponential", "l2") else "discrete_laplace")
    assert float(a["delta"]) == (1e-6 if sim in ("exponential", "l2") else 0)
    assert float(a["noise_scale"]) > 0 and a["sensitivity"] and a["seed"] == "5"
    assert a["test_noise"].startswith("yes") and c["test_noise"] == "no"
    assert float(a["radius"]) == 1
    if sim in KERNELS:
        assert float(a["bandwidth"]) == 0.7 and a["components"] == "1024" and a["reduced_dim"] == "3"
    else:
        assert int(a["levels"]) >= 1
    if sim == "lpp":
        assert float(a["p"]) == 1.5


def test_add_remove_releases_n(gram_cli, tmp_path):
    np.save(tmp_path / "x.npy", data())
    np.save(tmp_path / "y.npy", data(3, seed=2))
    ok(gram_cli, "private", "fit", tmp_path / "x.npy", *fit_args("l1", 2.0, ["--neighbours", "add-remove"]), "-o",
       tmp_path / "s.sk", "-q")
    i = info_of(gram_cli, tmp_path / "s.sk")
    assert i["neighbours"] == "add-remove" and "n released separately" in i["sensitivity"]
    n = float(i["n"])
    ok(gram_cli, "private", "query", tmp_path / "s.sk", tmp_path / "y.npy", "-o", tmp_path / "s.npy", "-q")
    ok(gram_cli, "private", "query", tmp_path / "s.sk", tmp_path / "y.npy", "--mean", "-o", tmp_path / "m.npy", "-q")
    assert np.array_equal(np.load(tmp_path / "m.npy"), np.load(tmp_path / "s.npy") / max(n, 1))


def test_clipped_rows_are_reported(gram_cli, tmp_path):
    X = data()
    X[3] = [5, 0, 0]
    X[17] = [0, -1, 1]  # norm sqrt(2) > 1
    np.save(tmp_path / "x.npy", X)
    p = ok(gram_cli, "private", "fit", tmp_path / "x.npy", *fit_args("l1"), "-o", tmp_path / "s.sk", "-q")
    err = p.stderr.decode()
    assert "warning: 2 of 40 rows were outside the domain (ball of radius 1) and were clipped onto it" in err
    p = ok(gram_cli, "private", "fit", tmp_path / "x.npy", *fit_args("l1", extra=["--domain", "box"]), "-o",
           tmp_path / "s.sk", "-q")
    assert "warning: 1 of 40 rows were outside the domain (box of radius 1)" in p.stderr.decode()


def test_baseline_and_standard_input(gram_cli, tmp_path):
    np.save(tmp_path / "x.npy", data())
    np.save(tmp_path / "y.npy", data(4, seed=3))
    for sim in ("gaussian", "l1"):
        ok(gram_cli, "private", "fit", "-", *fit_args(sim, extra=["--mechanism", "baseline"]), "-o",
           tmp_path / "s.sk", "-q", stdin=(tmp_path / "x.npy").read_bytes())
        assert info_of(gram_cli, tmp_path / "s.sk")["mechanism"] == "baseline"
        a = ok(gram_cli, "private", "query", "-", tmp_path / "y.npy", "-q",
               stdin=(tmp_path / "s.sk").read_bytes()).stdout
        b = ok(gram_cli, "private", "query", tmp_path / "s.sk", "-", "-q", stdin=(tmp_path / "y.npy").read_bytes()).stdout
        assert a == b and len(a.splitlines()) == 5


# ---- errors: exit codes, messages, nothing written -----------------------------------------------

X3 = b"a,b,c\n0.1,0.2,0.3\n0.1,0.2,-0.3\n-0.1,0.05,0.2\n0.3,0.3,0.1\n"
NAN3 = b"a,b,c\n0.1,0.2,0.3\n0.1,nan,0.3\n"
X2 = b"0.1,0.2\n0.1,0.2\n"
EMPTY = b"a,b,c\n"
FIT = ["private", "fit", "d.csv", "-o", "s.sk"]
L1 = ["--similarity", "l1", "--epsilon", "1", "--radius", "1"]

ERROR_CASES = [
    # usage (2): found before any input is read
    ("missing-epsilon-radius", {}, FIT + ["--similarity", "l1"], 2,
     [r"missing --epsilon E \(the privacy budget\) and --radius R \(the domain bound\)"]),
    ("missing-epsilon", {}, FIT + ["--similarity", "l1", "--radius", "1"], 2, [r"missing --epsilon E"]),
    ("missing-radius", {}, FIT + ["--similarity", "l1", "--epsilon", "1"], 2, [r"missing --radius R \(the domain bound"]),
    ("missing-similarity", {}, FIT + ["--epsilon", "1", "--radius", "1"], 2, [r"missing --similarity F"]),
    ("missing-output", {"d.csv": X3}, ["private", "fit", "d.csv"] + L1, 2, [r"missing -o SKETCH"]),
    ("missing-data", {}, ["private", "fit", "-o", "s.sk"] + L1, 2, [r"missing DATA"]),
    ("missing-bandwidth", {}, FIT + ["--similarity", "gaussian", "--epsilon", "1", "--radius", "1"], 2,
     [r"missing --bandwidth S \(the gaussian kernel's bandwidth"]),
    ("epsilon-zero", {}, FIT + ["--similarity", "l1", "--epsilon", "0", "--radius", "1"], 2,
     [r"--epsilon: epsilon must be > 0 and finite, got '0'"]),
    ("epsilon-negative", {}, FIT + ["--similarity", "l1", "--epsilon=-1", "--radius", "1"], 2,
     [r"epsilon must be > 0 and finite, got '-1'"]),
    ("epsilon-inf", {}, FIT + ["--similarity", "l1", "--epsilon", "inf", "--radius", "1"], 2, [r"got 'inf'"]),
    ("epsilon-text", {}, FIT + ["--similarity", "l1", "--epsilon", "one", "--radius", "1"], 2,
     [r"--epsilon: expected a number, got 'one'"]),
    ("delta-one", {}, FIT + L1 + ["--delta", "1"], 2, [r"--delta: delta must be in \[0, 1\), got '1'"]),
    ("delta-negative", {}, FIT + L1 + ["--delta=-0.1"], 2, [r"delta must be in \[0, 1\)"]),
    ("radius-zero", {}, FIT + ["--similarity", "l1", "--epsilon", "1", "--radius", "0"], 2,
     [r"--radius: the domain bound must be > 0 and finite, got '0'"]),
    ("radius-nan", {}, FIT + ["--similarity", "l1", "--epsilon", "1", "--radius", "nan"], 2, [r"got 'nan'"]),
    ("bandwidth-zero", {}, FIT + ["--similarity", "cauchy", "--epsilon", "1", "--radius", "1", "--bandwidth", "0"],
     2, [r"--bandwidth: the bandwidth must be > 0 and finite, got '0'"]),
    ("bandwidth-for-l1", {}, FIT + L1 + ["--bandwidth", "1"], 2, [r"--bandwidth applies to the kernels only"]),
    ("p-out-of-range", {}, FIT + ["--similarity", "lpp", "--epsilon", "1", "--radius", "1", "--p", "3"], 2,
     [r"--p: p must be in \(0, 2\], got '3'"]),
    ("p-for-l1", {}, FIT + L1 + ["--p", "1.5"], 2, [r"--p applies to --similarity lpp only"]),
    ("levels-for-kernel", {}, FIT + ["--similarity", "gaussian", "--bandwidth", "1", "--epsilon", "1", "--radius",
                                     "1", "--levels", "3"], 2, [r"--levels applies to l1, l2 and lpp only"]),
    ("reduced-dim-for-l1", {}, FIT + L1 + ["--reduced-dim", "2"], 2, [r"--reduced-dim applies to the kernels"]),
    ("components-for-l1", {}, FIT + L1 + ["--components", "8"], 2, [r"--components applies to the kernels and l2"]),
    ("baseline-cauchy", {}, FIT + ["--similarity", "cauchy", "--bandwidth", "1", "--epsilon", "1", "--radius", "1",
                                   "--mechanism", "baseline"], 2,
     [r"--mechanism baseline exists for gaussian, exponential and l1 only \(got cauchy\)"]),
    ("bad-similarity", {}, FIT + ["--similarity", "hamming", "--epsilon", "1", "--radius", "1"], 2,
     [r"--similarity: expected gaussian, exponential, cauchy, l1, l2 or lpp, got 'hamming'"]),
    ("bad-domain", {}, FIT + L1 + ["--domain", "sphere"], 2, [r"--domain: expected ball or box, got 'sphere'"]),
    ("bad-neighbours", {}, FIT + L1 + ["--neighbours", "swap"], 2, [r"expected replace or add-remove, got 'swap'"]),
    ("bad-mechanism", {}, FIT + L1 + ["--mechanism", "best"], 2, [r"expected paper or baseline, got 'best'"]),
    ("bad-seed", {}, FIT + L1 + ["--seed", "-1"], 2, [r"--seed: expected an integer"]),
    ("bad-noise-seed", {}, FIT + L1 + ["--insecure-noise-seed", "x"], 2, [r"--insecure-noise-seed: expected an integer"]),
    ("bad-levels", {}, FIT + L1 + ["--levels", "3.5"], 2, [r"--levels: expected an integer, got '3.5'"]),
    ("no-subcommand", {}, ["private"], 2, [r"Usage: gram private fit"]),
    ("unknown-subcommand", {}, ["private", "release"], 2,
     [r"^gram private: unknown command 'release' \(expected fit, query or info\)"]),
    ("query-missing-queries", {"s.sk": "SKETCH"}, ["private", "query", "s.sk"], 2, [r"missing QUERIES"]),
    ("query-missing-sketch", {}, ["private", "query"], 2, [r"missing SKETCH"]),
    ("query-bad-suffix", {"s.sk": "SKETCH", "d.csv": X3}, ["private", "query", "s.sk", "d.csv", "-o", "q.txt"], 2,
     [r"unknown suffix"]),
    ("query-stdin-twice", {}, ["private", "query", "-", "-"], 2, [r"standard input"]),
    ("query-mean-value", {"s.sk": "SKETCH", "d.csv": X3}, ["private", "query", "s.sk", "d.csv", "--mean=1"], 2,
     [r"option '--mean' doesn't take a value"]),
    ("info-extra", {"s.sk": "SKETCH"}, ["private", "info", "s.sk", "x"], 2, [r"unexpected argument 'x'"]),
    # data and runtime (1): the library's messages
    ("odd-components", {"d.csv": X3}, FIT + ["--similarity", "gaussian", "--bandwidth", "1", "--epsilon", "1",
                                             "--radius", "1", "--components", "15"], 1,
     [r"^gram: d.csv: gram_private_fit: n_components must be an even number.*got 15"]),
    ("absurd-components", {"d.csv": X3}, FIT + ["--similarity", "gaussian", "--bandwidth", "1", "--epsilon", "1",
                                                "--radius", "1", "--components", "4000000000000"], 1,
     [r"n_components must be an even number of random features in 2\.\.16777216"]),
    ("absurd-levels", {"d.csv": X3}, FIT + L1 + ["--levels", "40"], 1, [r"levels must be in 0\.\.30"]),
    ("empty-data", {"d.csv": EMPTY}, FIT + L1, 1, [r"^gram: d.csv: "]),
    ("nan-data", {"d.csv": NAN3}, FIT + L1, 1, [r"^gram: d.csv: row 2, column 2 \(b\) is NaN"]),
    ("missing-data-file", {}, FIT + L1, 1, [r"^gram: d.csv: "]),
    ("query-damaged", {"s.sk": "SKETCH_FLIPPED", "d.csv": X3}, ["private", "query", "s.sk", "d.csv", "-o", "q.npy"],
     1, [r"^gram: s.sk: .*checksum"]),
    ("query-truncated", {"s.sk": "SKETCH_TRUNCATED", "d.csv": X3}, ["private", "query", "s.sk", "d.csv", "-o",
                                                                     "q.npy"], 1, [r"^gram: s.sk: "]),
    ("query-newer-layout", {"s.sk": "SKETCH_NEWER", "d.csv": X3}, ["private", "query", "s.sk", "d.csv", "-o",
                                                                   "q.npy"], 1,
     [r"^gram: s.sk: format version 2 is newer than this gram supports \(1\); upgrade gram"]),
    ("query-a-feature-map", {"s.sk": "MAP", "d.csv": X3}, ["private", "query", "s.sk", "d.csv", "-o", "q.npy"], 1,
     [r"features", r"private"]),
    ("query-dim-mismatch", {"s.sk": "SKETCH", "d.csv": X2}, ["private", "query", "s.sk", "d.csv", "-o", "q.npy"], 1,
     [r"^gram: d.csv: the points have 2 columns, but the sketch s.sk was fitted on d = 3"]),
    ("query-nan", {"s.sk": "SKETCH", "d.csv": NAN3}, ["private", "query", "s.sk", "d.csv", "-o", "q.npy"], 1,
     [r"is NaN"]),
    ("info-damaged", {"s.sk": "SKETCH_FLIPPED"}, ["private", "info", "s.sk"], 1, [r"checksum"]),
]


@pytest.fixture(scope="module")
def files(gram_cli, tmp_path_factory):
    d = tmp_path_factory.mktemp("sketches")
    (d / "d.csv").write_bytes(X3)
    ok(gram_cli, "private", "fit", d / "d.csv", *fit_args("l1"), "-o", d / "s.sk", "-q")
    ok(gram_cli, "features", "fit", d / "d.csv", "--kernel", "rbf(1)", "--method", "rff", "--components", 8,
       "-o", d / "m.map", "-q")
    s = (d / "s.sk").read_bytes()
    flipped = bytearray(s)
    flipped[len(s) // 2] ^= 0x10
    newer = bytearray(s)
    newer[8] = 2  # the container's format version (u32 at offset 8)
    return {"SKETCH": s, "SKETCH_FLIPPED": bytes(flipped), "SKETCH_TRUNCATED": s[:-9], "SKETCH_NEWER": bytes(newer),
            "MAP": (d / "m.map").read_bytes()}


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors(cli_error_case, files, case):
    cli_error_case(case, files)


def test_a_failed_run_leaves_the_old_output(gram_cli, tmp_path, files):
    (tmp_path / "s.sk").write_bytes(files["SKETCH"])
    (tmp_path / "d.csv").write_bytes(X2)
    (tmp_path / "q.npy").write_bytes(b"old")
    p = run(gram_cli, "private", "query", tmp_path / "s.sk", tmp_path / "d.csv", "-o", tmp_path / "q.npy")
    assert p.returncode == 1
    assert (tmp_path / "q.npy").read_bytes() == b"old"
    (tmp_path / "e.csv").write_bytes(EMPTY)
    p = run(gram_cli, "private", "fit", tmp_path / "e.csv", *fit_args("l1"), "-o", tmp_path / "s.sk")
    assert p.returncode == 1
    assert (tmp_path / "s.sk").read_bytes() == files["SKETCH"]
    assert sorted(q.name for q in tmp_path.iterdir()) == ["d.csv", "e.csv", "q.npy", "s.sk"]


def test_help(gram_cli):
    for sub in ("fit", "query", "info"):
        p = ok(gram_cli, "private", sub, "--help")
        assert p.stdout.decode().startswith(f"Usage: gram private {sub}")
    assert "private" in ok(gram_cli, "--help").stdout.decode()
    assert ok(gram_cli, "help", "private").stdout.decode().startswith("Usage: gram private fit")
