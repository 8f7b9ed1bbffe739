"""Tests of `gram features` (cli/features.c): fit, transform and info.

The reference is the library itself reached through the Python package (a map made in this
process by gram_features_create / gram_features_nystrom from the same arguments, transformed by
gram_features_transform): the command's map file and its features must be the same bits. Every
error path is checked for its exit code, its message, an empty standard output and no file left
behind (see conftest.py for how the binary is found).
"""
import signal
import subprocess
import time

import numpy as np
import pytest

from gram import features as gf

METHODS = ["rff", "rff-phase", "orf", "sorf", "positive", "positive-orf", "hyperbolic", "hyperbolic-orf",
           "tensorsketch", "arccos", "nystrom"]
KERNEL = {"rff": "2.0*matern32(lengthscale=[1, 2, 0.5])", "rff-phase": "rbf(1.3)", "orf": "laplacian(0.9)",
          "sorf": "rbf(0.8)", "positive": "0.5*rbf(2.0)", "positive-orf": "rbf(lengthscale=[1, 2, 3])",
          "hyperbolic": "rbf(1.5)", "hyperbolic-orf": "rbf(1.5)",
          "tensorsketch": "polynomial(degree=3, gamma=0.5, coef0=1)", "arccos": "arccos(degree=1)",
          "nystrom": "0.5*matern52(1.2) + 0.1*polynomial(degree=2)"}
R_OF = {"rff-phase": 9, "positive": 7, "tensorsketch": 16, "nystrom": 12}


def run(cli, *args, cwd=None, stdin=None):
    return subprocess.run([cli, *[str(a) for a in args]], capture_output=True, timeout=120, cwd=cwd, input=stdin)


def ok(cli, *args, **kw):
    p = run(cli, *args, **kw)
    assert p.returncode == 0, f"exit {p.returncode}; stderr:\n{p.stderr.decode(errors='replace')}"
    return p


def data(N=40, D=3, seed=0):
    return 0.7 * np.random.default_rng(seed).standard_normal((N, D))


def reference_map(method, X, R, seed, landmarks="uniform"):
    k = gf._kernel(KERNEL[method])
    if method == "nystrom":
        return gf._Map.nystrom(k, np.ascontiguousarray(X), R, gf.LANDMARKS[landmarks], seed)
    return gf._Map.create(k, X.shape[1], gf.METHODS[method.replace("-", "_")], R, seed)


@pytest.mark.parametrize("method", METHODS)
def test_fit_transform_is_the_library_bit_for_bit(gram_cli, tmp_path, method):
    X = data()
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "x32.npy", X.astype(np.float32))
    R, seed = R_OF.get(method, 10), 2**64 - 5
    p = ok(gram_cli, "features", "fit", tmp_path / "x.npy", "--kernel", KERNEL[method], "--method", method,
           "--components", R, "--seed", seed, "-o", tmp_path / "m.map")
    assert f"{method} map, N=40 D=3 R={R} seed={seed}" in p.stderr.decode()
    ref = reference_map(method, X, R, seed)
    assert (tmp_path / "m.map").read_bytes() == ref.to_bytes(), "the map file is not the library's map"

    ok(gram_cli, "features", "transform", tmp_path / "m.map", tmp_path / "x.npy", "-o", tmp_path / "p.npy", "-q")
    got = np.load(tmp_path / "p.npy")
    want = ref.transform(X, np.float64)
    assert got.dtype == np.float64 and got.shape == (40, R)
    assert np.array_equal(got, want)

    # a float32 file gives float32 features (computed in float32), as the library on float32 data
    ok(gram_cli, "features", "transform", tmp_path / "m.map", tmp_path / "x32.npy", "-o", tmp_path / "p32.npy",
       "-q")
    got32 = np.load(tmp_path / "p32.npy")
    assert got32.dtype == np.float32
    assert np.array_equal(got32, ref.transform(X.astype(np.float32), np.float32))

    # CSV: the same numbers (%.17g), header phi0, phi1, ...
    out = ok(gram_cli, "features", "transform", tmp_path / "m.map", tmp_path / "x.npy", "-q").stdout.decode()
    lines = out.splitlines()
    assert lines[0] == ",".join(f"phi{j}" for j in range(R))
    assert np.array_equal(np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]]), want)


def test_dtype_option_and_csv_input(gram_cli, tmp_path):
    X = data(N=25, D=4, seed=3)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",", fmt="%.17g")
    ok(gram_cli, "features", "fit", tmp_path / "x.csv", "--kernel", "rbf(1)", "--method", "orf", "--components",
       16, "-o", tmp_path / "m.map", "-q")
    ref = gf._Map.create(gf._kernel("rbf(1)"), 4, gf.METHODS["orf"], 16, 0)
    ok(gram_cli, "features", "transform", tmp_path / "m.map", tmp_path / "x.csv", "--dtype", "float32", "-o",
       tmp_path / "p.npy", "-q")
    got = np.load(tmp_path / "p.npy")
    assert got.dtype == np.float32
    assert np.array_equal(got, ref.transform(X.astype(np.float32), np.float32))
    np.save(tmp_path / "x32.npy", X.astype(np.float32))
    ok(gram_cli, "features", "transform", tmp_path / "m.map", tmp_path / "x32.npy", "--dtype", "float64", "-o",
       tmp_path / "q.npy", "-q")
    q = np.load(tmp_path / "q.npy")
    assert q.dtype == np.float64
    assert np.array_equal(q, ref.transform(X.astype(np.float32).astype(np.float64), np.float64))
    # float32 features through CSV are the float32 values exactly
    out = ok(gram_cli, "features", "transform", tmp_path / "m.map", tmp_path / "x32.npy", "-q").stdout.decode()
    vals = np.array([[float(v) for v in ln.split(",")] for ln in out.splitlines()[1:]])
    assert np.array_equal(vals, ref.transform(X.astype(np.float32), np.float32).astype(np.float64))


@pytest.mark.parametrize("how", ["uniform", "kmeans++", "leverage"])
def test_nystrom_landmarks_and_info(gram_cli, tmp_path, how):
    X = data(N=60, D=2, seed=5)
    np.save(tmp_path / "x.npy", X)
    ok(gram_cli, "features", "fit", tmp_path / "x.npy", "--kernel", KERNEL["nystrom"], "--method", "nystrom",
       "--landmarks", how, "--components", 12, "--seed", 9, "-o", tmp_path / "m.map", "-q")
    ref = reference_map("nystrom", X, 12, 9, how)
    assert (tmp_path / "m.map").read_bytes() == ref.to_bytes()
    info = ok(gram_cli, "features", "info", tmp_path / "m.map").stdout.decode()
    spec = gf._kernel(KERNEL["nystrom"])._handle().canonical()
    assert info.startswith(f"method: nystrom\nkernel: {spec}\n")
    assert "\nD: 2\nR: 12\nseed: 9\n" in info and info.endswith(f"landmarks: {how}\n")


def test_info_of_a_random_map(gram_cli, tmp_path):
    np.save(tmp_path / "x.npy", data())
    ok(gram_cli, "features", "fit", tmp_path / "x.npy", "--kernel", "rbf(0.5)", "--method", "rff_phase",
       "--components", 5, "--seed", 12, "-o", tmp_path / "m.map", "-q")
    info = ok(gram_cli, "features", "info", tmp_path / "m.map").stdout.decode()
    assert info == "method: rff-phase\nkernel: gaussian(lengthscale=0.5)\nD: 3\nR: 5\nseed: 12\n"


def test_standard_input(gram_cli, tmp_path):
    X = data()
    np.save(tmp_path / "x.npy", X)
    ok(gram_cli, "features", "fit", "-", "--kernel", "rbf(1)", "--method", "sorf", "--components", 8, "-o",
       tmp_path / "m.map", "-q", stdin=(tmp_path / "x.npy").read_bytes())
    ok(gram_cli, "features", "transform", "-", tmp_path / "x.npy", "-o", tmp_path / "p.npy", "-q",
       stdin=(tmp_path / "m.map").read_bytes())
    ref = gf._Map.create(gf._kernel("rbf(1)"), 3, gf.METHODS["sorf"], 8, 0)
    assert np.array_equal(np.load(tmp_path / "p.npy"), ref.transform(X, np.float64))


# ---- errors: exit codes, messages, nothing written -----------------------------------------------

X3 = b"a,b,c\n0.1,0.2,0.3\n1,2,3\n-1,0.5,2\n0.3,0.3,0.1\n"
NAN3 = b"a,b,c\n0.1,0.2,0.3\n1,nan,3\n"
X2 = b"0.1,0.2\n1,2\n"
FIT = ["features", "fit", "d.csv", "--kernel", "rbf(1)", "-o", "m.map"]

ERROR_CASES = [
    # usage (2): found before any input is read
    ("missing-data", {}, ["features", "fit", "--kernel", "rbf(1)", "--method", "rff", "--components", "4", "-o", "m"],
     2, [r"missing DATA"]),
    ("missing-kernel", {"d.csv": X3}, ["features", "fit", "d.csv", "--method", "rff", "--components", "4", "-o",
                                       "m.map"], 2, [r"missing --kernel"]),
    ("missing-method", {"d.csv": X3}, FIT + ["--components", "4"], 2, [r"missing --method"]),
    ("missing-components", {"d.csv": X3}, FIT + ["--method", "rff"], 2, [r"missing --components"]),
    ("missing-output", {"d.csv": X3}, ["features", "fit", "d.csv", "--kernel", "rbf(1)", "--method", "rff",
                                       "--components", "4"], 2, [r"missing -o MAP"]),
    ("bad-method", {"d.csv": X3}, FIT + ["--method", "fourier", "--components", "4"], 2,
     [r"--method: expected rff, rff-phase, .* got 'fourier'"]),
    ("bad-components", {"d.csv": X3}, FIT + ["--method", "rff", "--components", "4x"], 2, [r"--components"]),
    ("bad-seed", {"d.csv": X3}, FIT + ["--method", "rff", "--components", "4", "--seed", "-1"], 2, [r"--seed"]),
    ("bad-kernel", {"d.csv": X3}, ["features", "fit", "d.csv", "--kernel", "rbf((", "--method", "rff",
                                   "--components", "4", "-o", "m.map"], 2, [r"--kernel: "]),
    ("landmarks-without-nystrom", {"d.csv": X3}, FIT + ["--method", "rff", "--components", "4", "--landmarks",
                                                        "uniform"], 2, [r"--landmarks applies to --method nystrom"]),
    ("bad-landmarks", {"d.csv": X3}, FIT + ["--method", "nystrom", "--components", "2", "--landmarks", "random"], 2,
     [r"--landmarks: expected uniform, kmeans\+\+ or leverage"]),
    ("bad-threads", {"d.csv": X3}, FIT + ["--method", "rff", "--components", "4", "--threads", "-3"], 2,
     [r"--threads"]),
    ("no-subcommand", {}, ["features"], 2, [r"Usage: gram features fit"]),
    ("unknown-subcommand", {}, ["features", "apply"], 2,
     [r"^gram features: unknown command 'apply' \(expected fit, transform or info\)"]),
    ("transform-missing-data", {"m.map": "MAP"}, ["features", "transform", "m.map"], 2, [r"missing DATA"]),
    ("transform-missing-map", {}, ["features", "transform"], 2, [r"missing MAP"]),
    ("transform-bad-suffix", {"m.map": "MAP", "d.csv": X3}, ["features", "transform", "m.map", "d.csv", "-o",
                                                             "p.txt"], 2, [r"unknown suffix"]),
    ("transform-bad-dtype", {"m.map": "MAP", "d.csv": X3}, ["features", "transform", "m.map", "d.csv", "--dtype",
                                                            "float16"], 2, [r"--dtype: expected float32 or float64"]),
    ("transform-stdin-twice", {}, ["features", "transform", "-", "-"], 2, [r"standard input"]),
    ("transform-extra", {"m.map": "MAP", "d.csv": X3}, ["features", "transform", "m.map", "d.csv", "e.csv"], 2,
     [r"unexpected argument 'e.csv'"]),
    ("info-extra", {"m.map": "MAP"}, ["features", "info", "m.map", "x"], 2, [r"unexpected argument 'x'"]),
    # data and runtime (1): the library's messages
    ("zero-components", {"d.csv": X3}, FIT + ["--method", "rff", "--components", "0"], 1,
     [r"^gram: n_components R must be >= 1, got 0"]),
    ("odd-components", {"d.csv": X3}, FIT + ["--method", "orf", "--components", "5"], 1, [r"must be even, got 5"]),
    ("absurd-components", {"d.csv": X3}, FIT + ["--method", "rff", "--components", "4000000000000"], 1,
     [r"more frequencies than gram can index or hold"]),
    ("tensorsketch-not-pow2", {"d.csv": X3}, ["features", "fit", "d.csv", "--kernel", "polynomial(degree=2)",
                                              "--method", "tensorsketch", "--components", "12", "-o", "m.map"], 1,
     [r"power of two, got 12"]),
    ("kernel-not-covered", {"d.csv": X3}, ["features", "fit", "d.csv", "--kernel", "polynomial(degree=2)", "--method",
                                           "rff", "--components", "8", "-o", "m.map"], 1,
     [r"RFF features do not cover the polynomial kernel.*; methods that do: TENSORSKETCH"]),
    ("sorf-laplacian", {"d.csv": X3}, ["features", "fit", "d.csv", "--kernel", "laplacian(1)", "--method", "sorf",
                                       "--components", "8", "-o", "m.map"], 1,
     [r"SORF features do not cover the laplacian kernel.*; methods that do: RFF, RFF_PHASE, ORF"]),
    ("a-sum-of-kernels", {"d.csv": X3}, ["features", "fit", "d.csv", "--kernel", "rbf(1) + white(0.1)", "--method",
                                         "rff", "--components", "8", "-o", "m.map"], 1, [r"a sum of kernels"]),
    ("nystrom-too-many", {"d.csv": X3}, FIT + ["--method", "nystrom", "--components", "5"], 1,
     [r"^gram: d.csv: n_components R = 5 is more than the 4 rows"]),
    ("ard-mismatch", {"d.csv": X3}, ["features", "fit", "d.csv", "--kernel", "rbf(lengthscale=[1, 2])", "--method",
                                     "rff", "--components", "8", "-o", "m.map"], 1,
     [r"ARD lengthscales give D = 2, but d.csv has 3 columns"]),
    ("nan-data", {"d.csv": NAN3}, FIT + ["--method", "rff", "--components", "4"], 1,
     [r"^gram: d.csv: row 2, column 2 \(b\) is NaN"]),
    ("missing-data-file", {}, FIT + ["--method", "rff", "--components", "4"], 1, [r"^gram: d.csv: "]),
    ("transform-damaged-map", {"m.map": "MAP_FLIPPED", "d.csv": X3}, ["features", "transform", "m.map", "d.csv",
                                                                      "-o", "p.npy"], 1,
     [r"^gram: m.map: .*checksum"]),
    ("transform-truncated-map", {"m.map": "MAP_TRUNCATED", "d.csv": X3}, ["features", "transform", "m.map",
                                                                          "d.csv", "-o", "p.npy"], 1,
     [r"^gram: m.map: "]),
    ("transform-model-not-map", {"m.map": "KRR_MODEL", "d.csv": X3}, ["features", "transform", "m.map", "d.csv",
                                                                      "-o", "p.npy"], 1, [r"krr", r"features"]),
    ("transform-not-a-file", {"m.map": b"hello\n", "d.csv": X3}, ["features", "transform", "m.map", "d.csv", "-o",
                                                                  "p.npy"], 1, [r"^gram: m.map: "]),
    ("transform-dim-mismatch", {"m.map": "MAP", "d.csv": X2}, ["features", "transform", "m.map", "d.csv", "-o",
                                                               "p.npy"], 1,
     [r"^gram: d.csv: the points have 2 columns, but the map m.map was made for D = 3"]),
    ("transform-nan", {"m.map": "MAP", "d.csv": NAN3}, ["features", "transform", "m.map", "d.csv", "-o", "p.npy"],
     1, [r"is NaN"]),
    ("transform-missing-map-file", {"d.csv": X3}, ["features", "transform", "nope.map", "d.csv", "-o", "p.npy"], 1,
     [r"^gram: nope.map: "]),
    ("info-damaged", {"m.map": "MAP_FLIPPED"}, ["features", "info", "m.map"], 1, [r"checksum"]),
]


@pytest.fixture(scope="module")
def files(gram_cli, tmp_path_factory):
    d = tmp_path_factory.mktemp("maps")
    (d / "d.csv").write_bytes(X3)
    ok(gram_cli, "features", "fit", d / "d.csv", "--kernel", "rbf(1)", "--method", "rff", "--components", 8,
       "-o", d / "m.map", "-q")
    ok(gram_cli, "krr", "fit", d / "d.csv", "--target", "c", "--kernel", "rbf(1)", "-o", d / "m.krr", "-q")
    m = (d / "m.map").read_bytes()
    flipped = bytearray(m)
    flipped[len(m) // 2] ^= 0x10
    return {"MAP": m, "MAP_FLIPPED": bytes(flipped), "MAP_TRUNCATED": m[:-9], "KRR_MODEL": (d / "m.krr").read_bytes()}


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors(cli_error_case, files, case):
    cli_error_case(case, files)


def test_a_failed_transform_leaves_the_old_output(gram_cli, tmp_path, files):
    (tmp_path / "m.map").write_bytes(files["MAP"])
    (tmp_path / "d.csv").write_bytes(X2)
    (tmp_path / "p.npy").write_bytes(b"old")
    p = run(gram_cli, "features", "transform", tmp_path / "m.map", tmp_path / "d.csv", "-o", tmp_path / "p.npy")
    assert p.returncode == 1
    assert (tmp_path / "p.npy").read_bytes() == b"old"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["d.csv", "m.map", "p.npy"]


# ---- interruption --------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["fit", "transform"])
def test_sigint_while_reading_exits_130_and_writes_nothing(gram_cli, tmp_path, files, sub):
    """Ctrl-C while DATA is still coming (standard input held open, nothing sent): 130, no output."""
    (tmp_path / "m.map").write_bytes(files["MAP"])
    args = (["fit", "-", "--kernel", "rbf(1)", "--method", "rff", "--components", "8", "-o", str(tmp_path / "o.map")]
            if sub == "fit" else ["transform", str(tmp_path / "m.map"), "-", "-o", str(tmp_path / "o.npy")])
    proc = subprocess.Popen([gram_cli, "features", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            # SIGINT at its default whatever this process inherited (gram keeps an
                            # ignored SIGINT ignored, and the suite may run as a background job)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    proc.stdin.write(b"0.1,0.2,0.3\n")
    proc.stdin.flush()
    time.sleep(0.5)
    assert proc.poll() is None
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "gram: interrupted" in err.decode()
    assert time.time() - t0 < 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.map"]


def test_sigint_while_transforming_exits_130_and_writes_nothing(gram_cli, tmp_path):
    """Ctrl-C during the transform itself (progress is polled per block of rows)."""
    rng = np.random.default_rng(1)
    N = 20000
    for _ in range(4):
        np.save(tmp_path / "x.npy", rng.standard_normal((N, 64)).astype(np.float32))
        ok(gram_cli, "features", "fit", tmp_path / "x.npy", "--kernel", "polynomial(degree=3, gamma=0.01)", "--method", "tensorsketch",
           "--components", 1024, "-o", tmp_path / "m.map", "-q")
        proc = subprocess.Popen([gram_cli, "features", "transform", str(tmp_path / "m.map"), str(tmp_path / "x.npy"),
                                 "--threads", "1", "-o", str(tmp_path / "p.npy")], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(0.7)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 130, err.decode()
            assert "gram: interrupted" in err.decode()
            assert sorted(p.name for p in tmp_path.iterdir()) == ["m.map", "x.npy"]
            return
        proc.communicate()
        (tmp_path / "p.npy").unlink()
        N *= 2
    pytest.fail("every transform finished before it could be interrupted")
