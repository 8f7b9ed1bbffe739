#!/usr/bin/env python3
"""Run the anchors' own test files against gram's drop-ins, changing only their imports.

The files are read from the installed scikit-learn and SciPy (the versions pinned in
scripts/setup.sh), their imports are rewritten so that the classes under test are gram's, and
pytest runs the rewritten copies. Tests of features gram declares out of scope are deselected
by tests/peer/exclusions.txt, one line each with its reason.

    python3 tests/peer/run_peer.py                 # every suite; exit 0 when all pass
    python3 tests/peer/run_peer.py gpr kernels     # some suites
    python3 tests/peer/run_peer.py --no-exclusions # also run the excluded tests (to count them)
    python3 tests/peer/run_peer.py gpr -- -x -k noise   # extra pytest arguments after --

A rewrite whose original text is missing (a new scikit-learn/SciPy version changed its imports)
is an error, so a silent no-op rewrite cannot run the anchor's own classes instead of gram's.
"""
import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _pkg_file(pkg, rel):
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"run_peer: {pkg} is not installed")
    return os.path.join(spec.submodule_search_locations[0], rel)


# name -> (package, file inside it, [(original text, replacement)])
SUITES = {
    "kde": ("sklearn", "neighbors/tests/test_kde.py", [
        ("from sklearn.neighbors import KDTree, KernelDensity, NearestNeighbors",
         "from sklearn.neighbors import KDTree, NearestNeighbors\nfrom gram import KernelDensity"),
    ]),
    "gpr": ("sklearn", "gaussian_process/tests/test_gpr.py", [
        ("from sklearn.gaussian_process import GaussianProcessRegressor",
         "from gram import GaussianProcessRegressor"),
        ("from sklearn.gaussian_process.kernels import (\n    RBF,\n    DotProduct,\n"
         "    ExpSineSquared,\n    WhiteKernel,\n)",
         "from gram import (\n    RBF,\n    DotProduct,\n    ExpSineSquared,\n    WhiteKernel,\n)"),
        ("from sklearn.gaussian_process.kernels import (\n    ConstantKernel as C,\n)",
         "from gram import (\n    ConstantKernel as C,\n)"),
    ]),
    "kernels": ("sklearn", "gaussian_process/tests/test_kernels.py", [
        ("from sklearn.gaussian_process.kernels import (\n    RBF,\n    CompoundKernel,\n"
         "    ConstantKernel,\n    DotProduct,\n    Exponentiation,\n    ExpSineSquared,\n"
         "    KernelOperator,\n    Matern,\n    PairwiseKernel,\n    RationalQuadratic,\n"
         "    WhiteKernel,\n    _approx_fprime,\n)",
         "from gram import (\n    RBF,\n    CompoundKernel,\n    ConstantKernel,\n    DotProduct,\n"
         "    Exponentiation,\n    ExpSineSquared,\n    KernelOperator,\n    Matern,\n"
         "    PairwiseKernel,\n    RationalQuadratic,\n    WhiteKernel,\n)\n"
         "from sklearn.gaussian_process.kernels import _approx_fprime"),
    ]),
    "kernel_ridge": ("sklearn", "tests/test_kernel_ridge.py", [
        ("from sklearn.kernel_ridge import KernelRidge", "from gram import KernelRidge"),
    ]),
    "kernel_approximation": ("sklearn", "tests/test_kernel_approximation.py", [
        ("from sklearn.kernel_approximation import (\n    AdditiveChi2Sampler,\n    Nystroem,\n"
         "    PolynomialCountSketch,\n    RBFSampler,\n    SkewedChi2Sampler,\n)",
         "from sklearn.kernel_approximation import (\n    AdditiveChi2Sampler,\n    SkewedChi2Sampler,\n)\n"
         "from gram import Nystroem, PolynomialCountSketch, RBFSampler"),
    ]),
    "kdeoth": ("scipy", "stats/tests/test_kdeoth.py", [
        ("from scipy import stats, linalg, integrate",
         "from scipy import linalg, integrate\nimport types as _types\nimport scipy.stats as _stats\n"
         "import gram as _gram\nstats = _types.SimpleNamespace(**vars(_stats))\n"
         "stats.gaussian_kde = _gram.gaussian_kde"),
    ]),
}


EXCLUSION_PLUGIN = """# written by gram's tests/peer/run_peer.py: the declared exclusions, by exact test id
import pytest

EXCLUDED = set({ids!r})


def pytest_collection_modifyitems(session, config, items):
    keep, drop = [], []
    for item in items:
        (drop if item.nodeid in EXCLUDED else keep).append(item)
    seen = {{item.nodeid for item in items}}
    # only complete runs can judge staleness (-k or a node id narrows what is collected)
    if not config.getoption("keyword") and not config.args[0].count("::"):
        stale = sorted(EXCLUDED - seen)
        if stale:
            raise pytest.UsageError("tests/peer/exclusions.txt names tests that do not exist: "
                                    + ", ".join(stale))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
"""


def rewrite(name):
    pkg, rel, subs = SUITES[name]
    path = _pkg_file(pkg, rel)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for old, new in subs:
        if text.count(old) != 1:
            raise SystemExit(f"run_peer: {path}: expected the import text once, found it "
                             f"{text.count(old)} times:\n{old}")
        text = text.replace(old, new)
    header = f"# {path}, imports rewritten by gram's tests/peer/run_peer.py\n"
    return header + text


def exclusions(selected):
    """{suite: [(test id, reason)]} from exclusions.txt ('suite::test_id  # reason')."""
    out = {}
    with open(os.path.join(HERE, "exclusions.txt"), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^(\w+)::(\S+)\s+#\s*(\S.*)$", line)
            if not m:
                raise SystemExit(f"run_peer: exclusions.txt:{n}: want 'suite::test  # reason'")
            if m.group(1) not in SUITES:
                raise SystemExit(f"run_peer: exclusions.txt:{n}: unknown suite {m.group(1)!r}")
            out.setdefault(m.group(1), []).append((m.group(2), m.group(3)))
    return {k: v for k, v in out.items() if k in selected}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("suites", nargs="*",
                    help=f"suites to run (default all): {', '.join(SUITES)}")
    ap.add_argument("--no-exclusions", action="store_true", help="run the excluded tests too")
    ap.add_argument("--keep", metavar="DIR", help="write the rewritten files to DIR and keep them")
    args = ap.parse_args(argv)
    selected = args.suites or list(SUITES)
    for s in selected:
        if s not in SUITES:
            ap.error(f"unknown suite {s!r} (choose from {', '.join(SUITES)})")
    excl = {} if args.no_exclusions else exclusions(selected)
    workdir = args.keep or tempfile.mkdtemp(prefix="gram-peer-")
    os.makedirs(workdir, exist_ok=True)
    files, excluded = [], {}
    for s in selected:
        base = f"test_peer_{s}.py"
        with open(os.path.join(workdir, base), "w", encoding="utf-8") as f:
            f.write(rewrite(s))
        files.append(base)
        for test_id, _ in excl.get(s, []):
            excluded[f"{base}::{test_id}"] = s
    # The exclusions, by exact test id (pytest's --deselect matches by prefix), as a plugin that also
    # fails the run when an exclusion names no collected test (a stale line hides nothing).
    with open(os.path.join(workdir, "_gram_peer_exclusions.py"), "w", encoding="utf-8") as f:
        f.write(EXCLUSION_PLUGIN.format(ids=sorted(excluded)))
    # rootdir/conftest isolation: the copies run from workdir, with no conftest of ours; the
    # anchors' own conftest plugins give their markers, fixtures and skips (e.g. SciPy's xslow)
    plugins = ["_gram_peer_exclusions", *sorted({f"{SUITES[s][0]}.conftest" for s in selected})]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", workdir,
           *[a for p in plugins for a in ("-p", p)],
           "-W", "ignore::pytest.PytestUnknownMarkWarning", *files, *extra]
    print(f"run_peer: suites {', '.join(selected)}; {len(excluded)} declared exclusions; "
          f"files in {workdir}{'' if args.keep else ' (removed at exit)'}", flush=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (workdir, env.get("PYTHONPATH")) if p)
    env.setdefault("SCIPY_XSLOW", "1")  # SciPy's very slow tests too: gram is fast enough
    try:
        return subprocess.call(cmd, cwd=workdir, env=env)
    finally:
        if not args.keep:  # the rewritten copies are throwaway unless asked for
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
