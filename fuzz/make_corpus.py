#!/usr/bin/env python3
"""Writes the seed corpus for the fuzz targets: fuzz/corpus/{npy,csv,spec,model,map,cli,sketch}.

The .npy seeds are written by numpy itself: every dtype gram reads, in both byte orders, C and
Fortran order, format versions 1.0, 2.0 and 3.0, 1-D and 2-D; then hand-made malformed files
(pickles, structured dtypes, lying or overflowing shapes, bad versions, broken headers). The CSV
seeds cover headers, comments, quoting, CRLF, every delimiter and the error cases.

The kernel spec seeds are every spec written in the repository (string literals that name a kernel
family in the C and Python tests, the docs, the README, the header, the CLI and the examples,
collected afresh on each run) plus a hand list of the grammar's corners. The CLI seeds are command
lines for every command and option (arguments separated by newlines). The model seeds are real
model files written by `gram gp fit` and `gram krr fit` on small data sets (several kernels, one and
two targets, normalize_y, per-point noise, learned hyperparameters), when a built gram command is
given, and hand-made containers (every entry type, other kinds, damaged headers) in any case. The
map seeds are feature map files written by `gram features fit` (every method, several kernels),
when a built gram command is given, and hand-made "features" containers in any case. The sketch
seeds are private sketch files written by `gram private fit` (every similarity, both mechanisms
where they exist, both noises and both neighbour relations; the noise from a test seed), when a
built gram command is given, and hand-made "private" containers in any case.

Files found by libFuzzer (named by their SHA-1) live beside the seeds and are kept; rerunning this
script only rewrites the seed_* files.
Usage: python3 fuzz/make_corpus.py [--gram build/cli/gram]
"""
import argparse
import glob
import io
import os
import re
import struct
import subprocess
import tempfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NPY = os.path.join(HERE, "corpus", "npy")
CSV = os.path.join(HERE, "corpus", "csv")
SPEC = os.path.join(HERE, "corpus", "spec")
MODEL = os.path.join(HERE, "corpus", "model")
MAP = os.path.join(HERE, "corpus", "map")
CLI = os.path.join(HERE, "corpus", "cli")
SKETCH = os.path.join(HERE, "corpus", "sketch")


def save(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "seed_" + name), "wb") as f:
        f.write(data)


def npy_bytes(arr, version=(1, 0)):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=True)
    return buf.getvalue()


def raw_npy(header, data=b"", major=1, pad=True):
    """A .npy file from a literal header text (possibly malformed) and data bytes."""
    h = header.encode("latin-1")
    lensize = 2 if major == 1 else 4
    if pad:
        total = 8 + lensize + len(h) + 1
        h += b" " * (-total % 64) + b"\n"
    length = struct.pack("<H" if lensize == 2 else "<I", len(h))
    return b"\x93NUMPY" + bytes([major, 0]) + length + h + data


def npy_seeds():
    base = np.array([[1.5, -2.0], [0.1, 1e-300], [-0.0, 3.0]])
    ints = np.array([[1, -2], [3, -4], [127, -128]])
    uints = np.array([[0, 1], [2, 200], [255, 7]])
    for bo in "<>":
        save(NPY, f"f8_{'le' if bo == '<' else 'be'}.npy", npy_bytes(base.astype(bo + "f8")))
        save(NPY, f"f4_{'le' if bo == '<' else 'be'}.npy", npy_bytes(base.astype(bo + "f4")))
        for size in (2, 4, 8):
            tag = "le" if bo == "<" else "be"
            save(NPY, f"i{size}_{tag}.npy", npy_bytes(ints.astype(f"{bo}i{size}")))
            save(NPY, f"u{size}_{tag}.npy", npy_bytes(uints.astype(f"{bo}u{size}")))
    save(NPY, "i1.npy", npy_bytes(ints.astype("i1")))
    save(NPY, "u1.npy", npy_bytes(uints.astype("u1")))
    save(NPY, "f8_fortran.npy", npy_bytes(np.asfortranarray(base)))
    save(NPY, "f4_be_fortran.npy", npy_bytes(np.asfortranarray(base.astype(">f4"))))
    save(NPY, "i2_fortran.npy", npy_bytes(np.asfortranarray(ints.astype("<i2"))))
    save(NPY, "f8_v2.npy", npy_bytes(base, (2, 0)))
    save(NPY, "f8_v3.npy", npy_bytes(base, (3, 0)))
    save(NPY, "i4_be_fortran_v2.npy", npy_bytes(np.asfortranarray(ints.astype(">i4")), (2, 0)))
    save(NPY, "u8_v3.npy", npy_bytes(uints.astype("<u8"), (3, 0)))
    save(NPY, "f8_1d.npy", npy_bytes(np.array([1.0, 2.0, 3.0])))
    save(NPY, "i8_be_1d.npy", npy_bytes(np.array([5, -6], dtype=">i8")))
    save(NPY, "f8_1x1.npy", npy_bytes(np.array([[42.0]])))
    halfs = np.array([[1.5, -2.0], [65504.0, 6e-8], [-0.0, np.inf]])
    save(NPY, "f2_le.npy", npy_bytes(halfs.astype("<f2")))
    save(NPY, "f2_be.npy", npy_bytes(halfs.astype(">f2")))
    save(NPY, "f2_fortran.npy", npy_bytes(np.asfortranarray(halfs.astype("<f2"))))
    save(NPY, "b1.npy", npy_bytes(np.array([[True, False], [False, True], [True, True]], dtype="|b1")))
    save(NPY, "b1_bad_value.npy",
         raw_npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2, 2), }", b"\x00\x01\x02\x01"))
    if np.dtype(np.longdouble).itemsize == 16:
        save(NPY, "f16_le.npy", npy_bytes(np.array([[1.5, -2.0], [1e-4000, 3.25]], dtype=np.longdouble)))
        save(NPY, "f16_fortran.npy",
             npy_bytes(np.asfortranarray(np.array([[1.5, -2.0], [0.1, 1e300]], dtype=np.longdouble))))
    save(NPY, "f16_lying.npy",
         raw_npy("{'descr': '<f16', 'fortran_order': False, 'shape': (1, 2), }", b"\xff" * 32))
    save(NPY, "c16.npy", npy_bytes(np.array([[1 + 2j, 3 - 1j]], dtype="<c16")))

    # Refused by design.
    save(NPY, "bad_object.npy", npy_bytes(np.array([1, "a", None], dtype=object)))
    save(NPY, "bad_structured.npy", npy_bytes(np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")])))
    save(NPY, "bad_0d.npy", npy_bytes(np.array(3.0)))
    save(NPY, "bad_3d.npy", npy_bytes(np.zeros((2, 2, 2))))
    save(NPY, "bad_complex.npy", npy_bytes(np.zeros(2, dtype=complex)))
    save(NPY, "bad_empty.npy", npy_bytes(np.zeros((0, 3))))
    # Hand-made malformations.
    good = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }"
    data = base.astype("<f8").tobytes()
    save(NPY, "bad_truncated.npy", raw_npy(good, data[:-5]))
    save(NPY, "bad_extra.npy", raw_npy(good, data + b"\0" * 8))
    save(NPY, "bad_lying_shape.npy",
         raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }", data))
    save(NPY, "bad_overflow_shape.npy",
         raw_npy("{'descr': '<i2', 'fortran_order': True, 'shape': (4294967296, 4294967296), }", data))
    save(NPY, "bad_version.npy", raw_npy(good, data)[:6] + b"\x04\x00" + raw_npy(good, data)[8:])
    save(NPY, "bad_header_length.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{}")
    save(NPY, "bad_missing_key.npy", raw_npy("{'descr': '<f8', 'shape': (3, 2)}", data))
    save(NPY, "bad_not_tuple.npy", raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (6)}", data))
    save(NPY, "bad_unterminated.npy", raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2", data))
    save(NPY, "odd_header.npy",
         raw_npy("{ \"shape\" : ( 3L , 2L , ) ,'fortran_order':True,u'descr':'>f8' }", base.astype(">f8").T.tobytes(),
                 major=2, pad=False))


def csv_seeds():
    seeds = {
        "plain.csv": "1,2\n3,4\n",
        "header.csv": "x,y,z\n1.5,-2,3e10\n0.1,1e-300,-0\n",
        "comments.csv": "# data\nx;y\n\n1;2\n  # note\n3;4\n",
        "crlf.csv": "a,b\r\n1,2\r\n3,4\r\n",
        "lone_cr.csv": "1,2\r3,4\r",
        "tab.tsv": "a\tb\n1\t2\n3\t4\n",
        "blanks.txt": "  1   2\t3\n4 5 6\n",
        "quoted.csv": "\"a,b\",\"c\"\"d\",\"multi\nline\"\n\"1\",2,3\n",
        "single_column.csv": "sepal length\n5.1\n4.9\n",
        "nan_inf.csv": "nan,inf\n-inf,NaN\n1e999,-1e-999\n",
        "bom.csv": "\ufeffa,b\n1,2\n",
        "no_newline.csv": "1,2\n3,4",
        "bad_ragged.csv": "# c\na,b\n1,2\n\n3,4,5\n",
        "bad_text.csv": "x,y\n1,abc\n",
        "bad_empty_field.csv": "1,2,3\n4,,6\n",
        "bad_trailing_delim.csv": "1,2,\n3,4,\n",
        "bad_unterminated.csv": "a,\"b\n1,2\n",
        "bad_after_quote.csv": "\"a\"x,b\n1,2\n",
        "bad_header_only.csv": "x,y\n",
        "bad_empty.csv": "",
        "bad_comments_only.csv": "# nothing\n\n",
        "bad_comma_decimal.csv": "1,5;2,25\n3,0;4,5\n",
        "long_number.csv": "0." + "0" * 120 + "1,2\n3,4\n",
    }
    for name, text in seeds.items():
        save(CSV, name, text.encode("utf-8"))


# ---- kernel specs ---------------------------------------------------------------------------------

FAMILIES = ("gaussian", "rbf", "laplacian", "matern12", "matern32", "matern52", "matern", "rational_quadratic",
            "rq", "cauchy", "periodic", "exp_sine_squared", "tophat", "epanechnikov", "exponential", "triangular",
            "cosine_window", "neg_l2", "laplacian_l1", "neg_l1", "linear", "polynomial", "poly", "cosine",
            "constant", "white", "sigmoid")

SPEC_CORNERS = [
    "rbf", "2*rbf", "rbf + 0*linear", "rbf + 0*linear(sigma0=1)", "rbf + 1e-320*linear", "-0*linear + rbf",
    "rbf + constant(1e-320)", "(rbf + white(0.1))^0.5", "2*linear^2", "linear^2^0.5", "linear^3", "linear^0.5",
    "poly(degree=3)^2", "2^3*rbf", "rbf^1e308", "1e308*1e308*rbf", "1e308*rbf*10", "matern(nu=0.7)",
    "matern(nu=0.5)", "matern(nu=1.5)", "matern(nu=2.5)", "matern(nu=1e4)", "matern(nu=1e-300)",
    "matern(lengthscale=[1,2], nu=3.7)", "sigmoid", "sigmoid(gamma=0.5, coef0=-1)", "sigmoid(coef0=0)",
    "sigmoid^2", "rbf(lengthscale=67, lengthscale_bounds=[1, 1000])",
    "softmax", "softmax(lengthscale=[0.5, 2])", "arccos(degree=0)",
    "arccos(lengthscale=[1, 2], degree=2)", "softmax(2)^0.5 * arccos",
    "rbf(lengthscale=[1, 2], lengthscale_bounds=[[1e-3, 10], [1e-2, 100]])",
    "rbf(lengthscale=[1, 2], lengthscale_bounds=[[1e-3, 10]])", "rbf(lengthscale_bounds=fixed)",
    "periodic(lengthscale=1.3, period=1, period_bounds=fixed)", "rq(alpha=2, alpha_bounds=[0, inf])",
    "constant(value=2, value_bounds=[1e-5, 1e5])*rbf", "white(noise=0.1, noise_bounds=[0, 1])",
    "linear(sigma0=1, sigma0_bounds=[1e-3, inf])", "poly(degree=2, degree_bounds=fixed)",
    "matern(nu=1, nu_bounds=fixed)", "rbf(lengthscale=1e-308)", "rbf(lengthscale=1e308)", "rbf(4.9e-324)",
    "rbf(-0)", "rbf(nan)", "rbf(inf)", "rbf(1e309)", "linear(sigma0=1e200)", "poly(degree=1000000)",
    "poly(degree=2.5)", "((((rbf))))", "(" * 201 + "rbf" + ")" * 201, "rbf(lengthscale=[" + ",".join(["1"] * 70) + "])",
    "rbf(lengthscale=[1,2]) + matern52(lengthscale=[1,2,3])", "rbf(1, lengthscale=2)", "rbf(lengthscale=1, 2)",
    "rbf(,)", "rbf()", "rbf(lengthscale=)", "RBF", "Rbf(1)", " rbf ( 1 ) ", "rbf\t+\nwhite", "rbf +", "+ rbf",
    "rbf**2", "rbf^", "rbf^-1", "rbf^0", "(rbf + linear)^1.5", "0", "1", "1+1", "2*3", "-1*rbf", "rbf - linear",
    "1e", "1e+", ".5*rbf", "5.*rbf", "0x10*rbf", "1" + "0" * 1200 + "*rbf", "0." + "0" * 400 + "1*rbf",
    "rbf(lengthscale=[])", "rbf(lengthscale=[1,])", "rbf(lengthscale=[[1]])", "rbf\x00 + linear",
    "white(0.1) * white(0.2)", "cosine(lengthscale=[1, 2]) + neg_l1 + neg_l2", "laplacian_l1^2",
    "tophat + epanechnikov + triangular + cosine_window + exponential", "cauchy(2)^3",
    "exp_sine_squared(lengthscale=2, period=3)", "periodic(lengthscale=[1, 2])",
    "polynomial(degree=3, gamma=2, coef0=0) + polynomial(2, degree=2)", "constant(0)", "constant(-1)",
    "white(-1)", "unknown(1)", "rbf(alpha=1)", "rbf(lengthscale=1, lengthscale=2)",
    "rbf(lengthscale_bounds=[2, 1])", "rbf(lengthscale_bounds=[-1, 1])", "rbf(lengthscale_bounds=[0, 0])",
    "rbf(lengthscale_bounds=[1e-5, nan])", "rbf(lengthscale_bounds=[1, 2, 3])",
]


def spec_seeds():
    """Every string literal in the repository that looks like a kernel spec, and SPEC_CORNERS."""
    pattern = re.compile(r"(?:\"((?:[^\"\\\n]|\\.)*)\"|'((?:[^'\\\n]|\\.)*)')")
    family = re.compile(r"(?<![A-Za-z_])(?:" + "|".join(FAMILIES) + r")(?![A-Za-z_0-9])")
    start = re.compile(r"^\s*(?:[0-9.(]|(?:" + "|".join(FAMILIES) + r")\b)")
    files = []
    for pat in ("tests/c/*.c", "tests/python/*.py", "docs/*.md", "README.md", "include/gram.h", "cli/*.c",
                "examples/*", "examples/python/*", "python/gram/*.py", "bench/*.c", "data/README.md"):
        files += sorted(glob.glob(os.path.join(ROOT, pat)))
    found = set()
    for path in files:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for m in pattern.finditer(text):
            lit = m.group(1) if m.group(1) is not None else m.group(2)
            if not lit or len(lit) > 400 or "%" in lit or not family.search(lit) or not start.match(lit):
                continue
            if any(c in lit for c in "{}<>;:!?$`|&"):
                continue
            found.add(lit.encode("utf-8").decode("unicode_escape", errors="ignore"))
    for i, spec in enumerate(sorted(found)):
        save(SPEC, f"repo_{i:03d}", spec.encode("latin-1", errors="ignore"))
    for i, spec in enumerate(SPEC_CORNERS):
        save(SPEC, f"corner_{i:03d}", spec.encode("latin-1"))
    return len(found)


# ---- the gram command's option values ------------------------------------------------------------

CLI_LINES = [
    "kde data.csv", "kde data.csv --bandwidth scott -o out.csv --plot p.svg", "kde - --bandwidth silverman",
    "kde data.npy --bandwidth isj --kernel epanechnikov --query q.csv -o out.npy",
    "kde data.csv --bandwidth cv-ml --loo --log", "kde data.csv --bandwidth cv-ls --kernel epanechnikov",
    "kde data.csv --bandwidth cv-ls --bounds 0:1", "kde data.csv --bandwidth isj --kernel cauchy",
    "kde data.csv --bandwidth 0.5,1.5 --bandwidth-matrix covariance",
    "kde data.csv --bandwidth-matrix covariance --bounds :,0:", "kde data.csv --grid 100 --precision f32",
    "kde data.csv --grid 1", "kde data.csv --grid 100000001", "kde data.csv --query q.csv --grid 10",
    "kde data.csv --loo --query q.csv", "kde data.csv --weights w.csv --bounds 0:1,-inf:inf,:2 --threads 4",
    "kde data.csv --weights - -", "kde - --query -", "kde data.csv -o - --plot -", "kde data.csv -o out.txt",
    "kde data.csv --plot p.png", "kde data.csv --plot p", "kde data.csv -oout.csv -q", "kde data.csv -qx",
    "kde data.csv --kernel=linear --bandwidth=1e-300", "kde data.csv --bandwidth -1", "kde data.csv --bandwidth nan",
    "kde data.csv --bandwidth 1,,2", "kde data.csv --bounds 1:0", "kde data.csv --bounds inf:", "kde data.csv --bounds x",
    "kde data.csv --threads 4097", "kde data.csv --threads -1", "kde data.csv --threads 0x10", "kde data.csv --precision f16",
    "kde data.csv --kernel cosine --kernel tophat --kernel exponential --kernel triangular --kernel cosine_window",
    "kde data.csv --kernel laplacian --kernel matern12 --kernel matern32 --kernel matern52 --kernel gaussian",
    "kde --help", "kde -h", "kde --version", "kde data.csv extra.csv", "kde", "kde --loo=1 data.csv",
    "kde data.csv --", "kde -- -data.csv", "kde data.csv --unknown", "kde data.csv -x", "kde data.csv --bandwidth",
    "sample data.csv -n 10", "sample data.csv -n 10 --seed 18446744073709551615 -o s.npy",
    "sample data.csv --count 1 --seed 18446744073709551616", "sample data.csv -n 0", "sample data.csv",
    "sample - --weights - -n 3", "sample data.csv -n 5 --kernel cauchy --bandwidth isj", "sample --help",
    "gp fit data.csv --target y --kernel rbf -o m.gram",
    "gp fit data.csv --target 0,1 --kernel 'rbf(lengthscale=1) + white(0.1)' -o m.gram --normalize-y",
    "gp fit data.csv --target y --kernel rbf -o m.gram --optimize --restarts 3 --seed 7 --max-iter 50",
    "gp fit data.csv --target y --kernel rbf -o m.gram --restarts 3", "gp fit data.csv --target y --kernel rbf -o m.gram --seed 1",
    "gp fit data.csv --target y --kernel rbf -o m.gram --jitter-tries 101", "gp fit data.csv --target y --kernel rbf -o m.gram --jitter-tries 5",
    "gp fit data.csv --target y --kernel rbf -o m.gram --alpha 1e-3 --plot fit.svg --threads 2 -q",
    "gp fit data.csv --target y --kernel rbf -o m.gram --alpha alpha.csv", "gp fit data.csv --target y --kernel rbf -o m.gram --alpha -1",
    "gp fit data.csv --target - --kernel rbf -o m.gram", "gp fit - --target y --kernel rbf -o m.gram --alpha -",
    "gp fit data.csv --target y --kernel 'rbf +' -o m.gram", "gp fit data.csv --target y --kernel 'matern(nu=0.7)^2' -o m.gram",
    "gp fit data.csv --target y --kernel rbf", "gp fit data.csv --kernel rbf -o m", "gp fit data.csv --target y -o m",
    "gp fit data.csv --target y --kernel rbf -o m.gram --max-iter 0", "gp fit data.csv --target y --kernel rbf -o m.gram --restarts 100001",
    "gp predict m.gram q.csv", "gp predict m.gram q.csv --std -o out.npy --plot p.svg", "gp predict m.gram - -o -",
    "gp predict m.gram q.csv r.csv", "gp predict m.gram", "gp predict - -", "gp predict m.gram q.csv -o x.svg",
    "gp sample m.gram q.csv --count 3 --seed 1 --target 0 -o s.csv", "gp sample m.gram q.csv -n 1 --target 9223372036854775807",
    "gp sample m.gram q.csv", "gp sample m.gram q.csv -n 3 --target -1", "gp sample m.gram q.csv -n 3 --target x",
    "gp", "gp --help", "gp help", "gp --version", "gp -x", "gp frobnicate", "gp fit --help", "gp predict -h", "gp sample --version",
    "krr fit data.csv --target y --kernel 'rbf(0.5)' -o m.gram --alpha 0.1,0.2 --weights w.csv",
    "krr fit data.csv --target y --kernel rbf -o m.gram --alpha x", "krr fit data.csv --target y --kernel rbf -o m.gram --normalize-y",
    "krr predict m.gram q.csv -o p.csv", "krr predict m.gram q.csv --std", "krr", "krr --help", "krr predict",
    "krr fit", "krr sample m q", "help", "help kde", "help sample", "help gp", "help krr", "help foo", "--help", "-h",
    "--version", "-x", "frobnicate", "", "kde\x00data.csv\x00--bandwidth\x000.5",
    "features fit data.csv --kernel 'rbf(1)' --method rff --components 64 --seed 3 -o m.map",
    "features fit data.csv --kernel 'polynomial(degree=3)' --method tensorsketch --components 128 -o m.map",
    "features fit - --kernel rbf --method nystrom --landmarks kmeans++ --components 10 -o m.map -q --threads 2",
    "features fit data.csv --kernel rbf --method positive_orf --components 0 -o m.map",
    "features fit data.csv --kernel rbf --method fourier --components 4 -o m.map",
    "features fit data.csv --kernel rbf --method rff --landmarks uniform --components 4 -o m.map",
    "features fit data.csv --kernel 'rbf((' --method rff --components 4 -o m.map",
    "features fit data.csv --kernel rbf --method rff --components 4x -o m.map",
    "features fit data.csv --kernel rbf --method rff --components 4",
    "features fit data.csv --kernel rbf --method nystrom --landmarks random --components 4 -o m",
    "features transform m.map data.csv -o phi.npy --dtype float32", "features transform m.map - -o -",
    "features transform m.map data.csv -o phi.txt", "features transform m.map data.csv --dtype half",
    "features transform - -", "features transform m.map", "features info m.map", "features info m.map x",
    "features", "features --help", "features frobnicate", "features -q", "help features", "features fit --help",
    "private fit data.csv --similarity gaussian --bandwidth 0.5 --epsilon 1 --radius 2 -o s.sk",
    "private fit data.csv --similarity l1 --epsilon 0.5 --delta 1e-6 --radius 1 --domain box --levels 6 -o s.sk",
    "private fit - --similarity lpp --p 1.5 --epsilon 1 --radius 1 --neighbours add-remove --seed 3 -o s.sk -q",
    "private fit data.csv --similarity cauchy --bandwidth 1 --epsilon 1 --radius 1 --mechanism baseline -o s.sk",
    "private fit data.csv --similarity l2 --components 16 --epsilon 1 --radius 1 --insecure-noise-seed 7 -o s",
    "private fit data.csv --similarity gaussian --epsilon 1 --radius 1 -o s.sk",
    "private fit data.csv --similarity l1 --radius 1 -o s.sk", "private fit data.csv --similarity l1 --epsilon 1",
    "private fit data.csv --similarity l1 --epsilon 0 --radius 1 -o s", "private fit data.csv --similarity l1 "
    "--epsilon 1 --radius 1 --delta 1 -o s", "private fit data.csv --similarity l1 --epsilon 1 --radius 1 --p 2 -o s",
    "private query s.sk q.csv --mean -o out.npy", "private query s.sk - -o -", "private query - -",
    "private query s.sk q.csv -o out.txt", "private info s.sk", "private info s.sk x", "private", "private --help",
    "private release", "help private", "private fit --help",
]


def cli_seeds():
    """Arguments separated by newlines, as the shell would split the line; a line holding NULs is
    split at them instead and written with NUL separators."""
    for i, line in enumerate(CLI_LINES):
        if "\0" in line:
            save(CLI, f"{i:03d}", line.encode())
            continue
        args = [p[1:-1] if p.startswith("'") else p for p in re.findall(r"'[^']*'|\S+", line)]
        save(CLI, f"{i:03d}", b"\n".join(a.encode() for a in args))


# ---- model files ---------------------------------------------------------------------------------

def container(kind, entries, version=1, writer=b"0.1.0", header_size=64, extra_header=b""):
    """A model file from (name, type, value) entries, as src/io/model_file.h lays it out."""
    body = b""
    for name, typ, value in entries:
        nb = name.encode()
        body += struct.pack("<I", len(nb)) + nb + struct.pack("<I", typ)
        if typ == 1:
            body += struct.pack("<q", value)
        elif typ == 2:
            vb = value.encode()
            body += struct.pack("<Q", len(vb)) + vb
        else:
            arr = np.asarray(value, dtype="<f8")
            arr = arr.reshape(arr.shape[0] if arr.ndim else 1, -1) if arr.ndim < 2 else arr
            body += struct.pack("<QQ", arr.shape[0], arr.shape[1]) + arr.tobytes()
    head = b"GRAMMODL" + struct.pack("<II", version, header_size) + kind.ljust(16, b"\0")[:16]
    head += writer.ljust(16, b"\0")[:16] + struct.pack("<QQ", len(entries), len(body)) + extra_header
    data = head + body
    return data + struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)


def hand_models():
    one = [("a", 1, -5), ("s", 2, "text é"), ("m", 3, [[1.0, -2.0], [np.nan, np.inf]])]
    save(MODEL, "container_all_types", container(b"other", one))
    save(MODEL, "container_empty_matrix", container(b"x", [("e", 3, np.zeros((0, 3)))]))
    save(MODEL, "container_no_entries", container(b"gp", []))
    save(MODEL, "container_long_header", container(b"krr", one, header_size=72, extra_header=b"\1" * 8))
    save(MODEL, "container_newer_version", container(b"gp", one, version=2))
    save(MODEL, "container_version_0", container(b"gp", one, version=0))
    save(MODEL, "container_duplicate", container(b"gp", [("a", 1, 1), ("a", 1, 2)]))
    save(MODEL, "container_bad_type", container(b"gp", [("a", 9, 1)])[:-4] + b"\0\0\0\0")
    good = container(b"gp", one)
    save(MODEL, "container_truncated", good[:-9])
    save(MODEL, "container_bad_crc", good[:-1] + bytes([good[-1] ^ 1]))
    save(MODEL, "container_zeros", b"\0" * 100)
    save(MODEL, "container_magic_only", b"GRAMMODL")


def fitted_models(gram):
    rng = np.random.default_rng(12)
    with tempfile.TemporaryDirectory() as tmp:
        def write(name, arr, header):
            path = os.path.join(tmp, name)
            np.savetxt(path, arr, delimiter=",", header=header, comments="", fmt="%.17g")
            return path

        x1 = np.sort(rng.uniform(0, 5, 7))
        d1 = write("d1.csv", np.column_stack([x1, np.sin(x1)]), "x,y")
        d1t = write("d1t.csv", np.column_stack([x1, np.sin(x1), np.cos(x1) * 3 + 10]), "x,y,z")
        x2 = rng.normal(size=(6, 2))
        d2 = write("d2.csv", np.column_stack([x2, x2[:, 0] - x2[:, 1] ** 2]), "a,b,y")
        alpha = write("alpha.csv", rng.uniform(0.01, 0.1, 7)[:, None], "alpha")
        w = write("w.csv", rng.uniform(0.5, 2.0, 6)[:, None], "w")
        runs = [
            ("gp_rbf", ["gp", "fit", d1, "--target", "y", "--kernel", "rbf(lengthscale=1.3)"]),
            ("gp_rbf_white_norm", ["gp", "fit", d1t, "--target", "y,z", "--kernel", "2*rbf(0.7) + white(0.01)",
                                   "--normalize-y"]),
            ("gp_matern_ard", ["gp", "fit", d2, "--target", "y", "--kernel", "matern52(lengthscale=[1, 2])",
                               "--alpha", "1e-2"]),
            ("gp_matern_nu", ["gp", "fit", d1, "--target", "y", "--kernel", "matern(nu=0.7, lengthscale=2)"]),
            ("gp_alpha_file", ["gp", "fit", d1t, "--target", "z", "--kernel", "rq(alpha=2)*constant(3)",
                               "--alpha", alpha]),
            ("gp_periodic_sum", ["gp", "fit", d1, "--target", "y", "--kernel",
                                 "rbf(lengthscale=10) * periodic(lengthscale=1, period=3) + white(0.1)"]),
            ("gp_linear_pow", ["gp", "fit", d2, "--target", "y", "--kernel", "(linear(sigma0=1))^2 + white(0.5)"]),
            ("gp_optimized", ["gp", "fit", d1, "--target", "y", "--kernel",
                              "rbf(lengthscale=1, lengthscale_bounds=[1e-2, 1e2]) + white(0.1, noise_bounds=fixed)",
                              "--optimize", "--max-iter", "20"]),
            ("gp_jitter", ["gp", "fit", d1, "--target", "y", "--kernel", "rbf(lengthscale=1e3)", "--alpha", "0",
                           "--jitter-tries", "12"]),
            ("krr_rbf", ["krr", "fit", d1, "--target", "y", "--kernel", "rbf(0.5)", "--alpha", "0.1"]),
            ("krr_two_targets", ["krr", "fit", d1t, "--target", "y,z", "--kernel", "laplacian(2)",
                                 "--alpha", "0.1,1"]),
            ("krr_weights", ["krr", "fit", d2, "--target", "y", "--kernel", "poly(degree=2) + sigmoid(gamma=0.1)",
                             "--weights", w]),
            ("krr_cosine", ["krr", "fit", d2, "--target", "y", "--kernel", "cosine(lengthscale=[1, 2]) + 0.5*laplacian_l1(2)"]),
        ]
        made = 0
        for name, args in runs:
            out = os.path.join(tmp, name + ".gram")
            r = subprocess.run([gram] + args + ["-o", out, "-q"], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"make_corpus: {name}: gram exited {r.returncode}: {r.stderr.strip()}")
                continue
            with open(out, "rb") as f:
                save(MODEL, name, f.read())
            made += 1
        return made


# ---- feature map files ---------------------------------------------------------------------------

def hand_maps():
    base = [("kernel", 2, "gaussian(lengthscale=1)"), ("method", 2, "rff"), ("D", 1, 2), ("R", 1, 4),
            ("seed", 1, 7)]
    omega = [("omega", 3, [[0.5, -1.0], [2.0, 0.25]])]
    save(MAP, "hand_rff", container(b"features", base + omega))
    save(MAP, "hand_rff_nan", container(b"features", base + [("omega", 3, [[np.nan, 1.0], [2.0, 0.25]])]))
    save(MAP, "hand_rff_huge_D", container(b"features", base[:2] + [("D", 1, 2**40), ("R", 1, 4), ("seed", 1, 7)]
                                           + omega))
    save(MAP, "hand_rff_missing_omega", container(b"features", base))
    save(MAP, "hand_sorf", container(b"features", [("kernel", 2, "rbf(2)"), ("method", 2, "sorf"), ("D", 1, 3),
                                                   ("R", 1, 4), ("seed", 1, -1),
                                                   ("signs", 3, [[1, -1, 1, 1, -1, -1, 1, 1, 1, -1, 1, -1]])]))
    save(MAP, "hand_tensorsketch", container(b"features", [
        ("kernel", 2, "polynomial(degree=2, coef0=1)"), ("method", 2, "tensorsketch"), ("D", 1, 1), ("R", 1, 4),
        ("seed", 1, 0), ("hash", 3, [[0, 3], [1, 2]]), ("signs", 3, [[1, -1], [-1, 1]]),
        ("twiddle", 3, [[1.0, 0.0], [np.cos(np.pi / 2), -np.sin(np.pi / 2)]])]))
    save(MAP, "hand_nystrom", container(b"features", [
        ("kernel", 2, "rbf(1)"), ("method", 2, "nystrom"), ("D", 1, 1), ("R", 1, 2), ("seed", 1, 0),
        ("landmarks_how", 2, "uniform"), ("landmark_idx", 3, [[0], [3]]), ("landmarks", 3, [[0.0], [1.0]]),
        ("proj", 3, [[1.2, -0.4], [-0.4, 1.2]]), ("eig_tol", 3, [[1e-14]]), ("rank", 1, 2)]))
    save(MAP, "hand_other_kind", container(b"krr", base + omega))


def fitted_maps(gram):
    rng = np.random.default_rng(13)
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "d.csv")
        np.savetxt(d, rng.normal(size=(9, 3)), delimiter=",", fmt="%.17g")
        runs = [("rff", "rbf(1.3)", 8), ("rff-phase", "2*matern32(lengthscale=[1, 2, 3])", 5),
                ("rff", "laplacian_l1(0.8)", 4), ("orf", "rational_quadratic(alpha=0.5)", 6),
                ("orf", "matern(nu=0.7, lengthscale=2)", 4), ("sorf", "rbf(0.9)", 10),
                ("positive", "0.5*rbf(2)", 3), ("positive-orf", "rbf(lengthscale=[1, 2, 3])", 5),
                ("hyperbolic", "rbf(1.5)", 4), ("hyperbolic-orf", "rbf(0.6)", 6),
                ("tensorsketch", "polynomial(degree=3, gamma=0.5, coef0=1)", 8),
                ("tensorsketch", "linear(sigma0=0.7)", 2), ("arccos", "arccos(degree=1)", 4),
                ("arccos", "arccos(degree=2)", 3), ("positive", "softmax(2)", 4),
                ("nystrom", "rbf(1)", 3), ("nystrom", "matern52(1) + 0.1*polynomial(degree=2)", 4)]
        made = 0
        for i, (method, kernel, R) in enumerate(runs):
            out = os.path.join(tmp, f"{i}.map")
            extra = ["--landmarks", ["uniform", "kmeans++", "leverage"][i % 3]] if method == "nystrom" else []
            r = subprocess.run([gram, "features", "fit", d, "--kernel", kernel, "--method", method, "--components",
                                str(R), "--seed", str(i)] + extra + ["-o", out, "-q"], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"make_corpus: map {method} {kernel}: gram exited {r.returncode}: {r.stderr.strip()}")
                continue
            with open(out, "rb") as f:
                save(MAP, f"{method}_{i}", f.read())
            made += 1
        return made


# ---- private sketch files ------------------------------------------------------------------------

def hand_sketches():
    base = [("private_format", 1, 1), ("similarity", 2, "l1"), ("mechanism", 2, "paper"), ("domain", 2, "ball"),
            ("neighbours", 2, "replace"), ("noise", 2, "discrete_laplace"), ("radius", 3, [[1.0]]),
            ("bandwidth", 3, [[0.0]]), ("p", 3, [[1.0]]), ("epsilon", 3, [[1.0]]), ("delta", 3, [[0.0]]),
            ("eps_main", 3, [[1.0]]), ("delta_main", 3, [[0.0]]), ("n_released", 3, [[5.0]]),
            ("approx_error", 3, [[0.0]]), ("dim", 1, 1), ("n_components", 1, 0), ("reduced_dim", 1, 0),
            ("levels", 1, 2), ("n_terms", 1, 0), ("seed", 1, 7), ("test_noise", 1, 1), ("rec_epsilon", 3, [[1.0]]),
            ("rec_delta", 3, [[0.0]]), ("rec_sens_l2", 3, [[2.0]]), ("rec_scale", 3, [[4.0]]), ("rec_shift", 1, 0),
            ("rec_sens_l1", 1, 4), ("rec_num", 1, 4), ("rec_den", 1, 1), ("sensitivity", 2, "hand-made")]
    values = [("values", 3, [[2.0], [3.0], [1.0], [1.0], [2.0], [1.0]]), ("params", 3, np.zeros((0, 1)))]
    save(SKETCH, "hand_l1", container(b"private", base + values))
    save(SKETCH, "hand_l1_values_short", container(b"private", base + [("values", 3, [[2.0]]), values[1]]))
    save(SKETCH, "hand_l1_huge_levels", container(b"private", [e if e[0] != "levels" else ("levels", 1, 30)
                                                               for e in base] + values))
    save(SKETCH, "hand_newer_layout", container(b"private", [("private_format", 1, 2)] + base[1:] + values))
    save(SKETCH, "hand_other_kind", container(b"features", base + values))
    gauss = [e for e in base if e[0] not in ("similarity", "bandwidth", "n_components", "reduced_dim", "levels")]
    gauss += [("similarity", 2, "gaussian"), ("bandwidth", 3, [[0.5]]), ("n_components", 1, 4),
              ("reduced_dim", 1, 1), ("levels", 1, 0)]
    save(SKETCH, "hand_gaussian", container(b"private", gauss + [("values", 3, [[1.0], [0.5], [-0.5], [2.0]]),
                                                                 values[1]]))
    save(SKETCH, "hand_gaussian_huge_dim", container(b"private", [e if e[0] != "dim" else ("dim", 1, 2**40)
                                                                  for e in gauss] + values))


def fitted_sketches(gram):
    rng = np.random.default_rng(14)
    runs = [("gaussian", []), ("gaussian", ["--mechanism", "baseline"]), ("exponential", ["--delta", "1e-6"]),
            ("exponential", ["--mechanism", "baseline", "--neighbours", "add-remove"]),
            ("cauchy", ["--components", "8"]), ("l1", ["--levels", "3"]),
            ("l1", ["--mechanism", "baseline", "--levels", "3", "--domain", "box"]),
            ("l2", ["--components", "4", "--levels", "3", "--delta", "1e-5"]),
            ("lpp", ["--p", "0.5", "--levels", "3", "--neighbours", "add-remove"])]
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "d.csv")
        np.savetxt(d, rng.uniform(-0.5, 0.5, size=(9, 2)), delimiter=",", fmt="%.17g")
        made = 0
        for i, (sim, extra) in enumerate(runs):
            out = os.path.join(tmp, f"{i}.sk")
            kern = ["--bandwidth", "0.8"] + ([] if "--components" in extra else ["--components", "6"]) \
                if sim in ("gaussian", "exponential", "cauchy") else []
            r = subprocess.run([gram, "private", "fit", d, "--similarity", sim, "--epsilon", "1", "--radius", "1",
                                "--seed", str(i), "--insecure-noise-seed", str(100 + i)] + kern + extra
                               + ["-o", out, "-q"], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"make_corpus: sketch {sim} {extra}: gram exited {r.returncode}: {r.stderr.strip()}")
                continue
            with open(out, "rb") as f:
                save(SKETCH, f"{sim}_{i}", f.read())
            made += 1
        return made


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gram", help="a built gram command, to write the fitted model seeds")
    args = ap.parse_args()
    npy_seeds()
    csv_seeds()
    n_specs = spec_seeds()
    cli_seeds()
    hand_models()
    hand_maps()
    hand_sketches()
    if args.gram:
        print(f"make_corpus: {n_specs} specs from the repository, {fitted_models(args.gram)} fitted models, "
              f"{fitted_maps(args.gram)} feature maps, {fitted_sketches(args.gram)} private sketches")
    else:
        print(f"make_corpus: {n_specs} specs from the repository; no --gram, so no fitted models")
