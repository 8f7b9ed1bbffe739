"""The ctypes binding and the package: the library inside the package, the version check,
zero-copy views, the GIL released, Ctrl-C cancelling a long call, threads, scikit-learn absent,
and the example scripts.

Run after `python3 -m pip install .`: these tests import the installed package `gram`.
"""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest

import gram
from gram import _lib

from conftest import REPO


def run_python(code, env=None, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


# ---- the package ----------------------------------------------------------------------------------


def test_installed_package_not_source_tree():
    pkg = pathlib.Path(gram.__file__).resolve().parent
    assert pkg != (REPO / "python" / "gram").resolve(), "tests must run against the installed package"
    assert pathlib.Path(_lib.LIBRARY_PATH).resolve().parent == pkg


def test_loads_its_own_library():
    maps = pathlib.Path("/proc/self/maps")
    if maps.exists():
        loaded = {line.split()[-1] for line in maps.read_text().splitlines() if "libgram" in line}
        assert loaded == {str(pathlib.Path(_lib.LIBRARY_PATH).resolve())} or loaded == {_lib.LIBRARY_PATH}


def test_version_single_source():
    header = (REPO / "include" / "gram.h").read_text()
    parts = [re.search(rf"#define GRAM_VERSION_{p}\s+(\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    assert gram.__version__ == ".".join(parts) == gram.library_version() == _lib.version()


def test_version_mismatch_is_import_error(tmp_path):
    pkg = pathlib.Path(gram.__file__).resolve().parent
    copy = tmp_path / "gram"
    shutil.copytree(pkg, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "_version.py").write_text('__version__ = "99.0.0"\n')
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    p = run_python("import gram", env=env, cwd=str(tmp_path))
    assert p.returncode != 0
    assert "ImportError" in p.stderr and "99.0.0" in p.stderr and gram.__version__ in p.stderr


def test_gram_array_layout():
    # struct gram_array on x86-64/aarch64: 8 + 4 (+4 padding) + 4 * 8
    assert _lib.ctypes.sizeof(_lib.GramArray) == 48
    assert _lib.GramArray.rows.offset == 16
    assert _lib.KdeOptions.n_bandwidth.offset == 16 and _lib.ctypes.sizeof(_lib.KdeOptions) == 56


# ---- zero copy ------------------------------------------------------------------------------------


def _address(a):
    return a.__array_interface__["data"][0]


def test_views_pass_without_copies():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 8))
    cases = {
        "C": base,
        "F": np.asfortranarray(base),
        "transposed": np.ascontiguousarray(base.T).T,
        "sliced": base[10:200:3, 1:7:2],
        "reversed": base[::-1],
        "float32 F": np.asfortranarray(base.astype(np.float32)),
    }
    for name, X in cases.items():
        _lib.trace = []
        try:
            gram.kernel_sum(X, X[:5])
        finally:
            recorded, _lib.trace = _lib.trace, None
        x = [r for r in recorded if r[0] == "X"][0]
        isz = X.itemsize
        assert x[1] == _address(X), f"{name}: X was copied"
        assert x[3:] == (X.shape[0], X.shape[1], X.strides[0] // isz, X.strides[1] // isz), name


def test_odd_strides_and_dtypes_are_copied_once():
    raw = np.zeros(8 * 50 + 1, dtype=np.uint8)[1:].view(np.float64).reshape(10, 5)  # misaligned
    raw[:] = np.arange(50).reshape(10, 5) / 10
    for X in [raw, raw.astype(">f8"), np.arange(50, dtype=np.int64).reshape(10, 5) / 10]:
        np.testing.assert_allclose(gram.kernel_sum(X), gram.kernel_sum(np.ascontiguousarray(X, dtype=float)))
    rec = np.zeros(10, dtype=[("a", "f8"), ("b", "i1")])["a"].reshape(10, 1)  # stride 9 bytes
    np.testing.assert_allclose(gram.kernel_sum(rec), np.full(10, 10.0))


def test_large_fortran_float32_not_copied():
    """A 96 MB Fortran-ordered float32 array: passed by pointer; Python allocates ~nothing."""
    N, D = 3_000_000, 8
    X = np.asfortranarray(np.random.default_rng(0).random((N, D), dtype=np.float32))
    Y = np.asfortranarray(X[:4])
    w = np.ones(N, dtype=np.float32)
    _lib.trace = []
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = gram.kernel_sum(X, Y, w, kernel="gaussian(lengthscale=0.5)")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        recorded, _lib.trace = _lib.trace, None
    assert peak < X.nbytes / 100, f"peak Python allocation {peak} bytes during the call"
    x = [r for r in recorded if r[0] == "X"][0]
    assert x[1] == _address(X) and x[2] == _lib.FLOAT32 and x[5:] == (1, N)
    assert out.dtype == np.float32 and np.all(out > 1.0)


def test_kde_inputs_not_copied():
    X = np.asfortranarray(np.random.default_rng(0).normal(size=(500, 3)))
    _lib.trace = []
    try:
        kde = gram.KernelDensity().fit(X)
        kde.score_samples(X.T.copy().T)
        g = gram.gaussian_kde(np.ascontiguousarray(X.T))
        pts = np.ascontiguousarray(X.T)
        g.logpdf(pts)
    finally:
        recorded, _lib.trace = _lib.trace, None
    addresses = {r[1] for r in recorded}
    assert _address(X) in addresses and _address(pts) in addresses


# ---- the GIL, threads, Ctrl-C -----------------------------------------------------------------------


def _long_job_size(target_s):
    """Queries for a gaussian sum over 200k points that takes about target_s on this machine."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200_000, 3))
    probe = rng.normal(size=(400, 3))
    t = time.perf_counter()
    gram.kernel_sum(X, probe)
    per_query = max((time.perf_counter() - t) / 400, 1e-7)
    M = int(target_s / per_query)
    return X, rng.normal(size=(M, 3)), M * per_query


def test_gil_released_during_calls():
    X, Y, expect = _long_job_size(1.0)
    done = threading.Event()

    def work():
        gram.kernel_sum(X, Y)
        done.set()

    t = threading.Thread(target=work)
    ticks = 0
    t.start()
    start = time.perf_counter()
    while not done.is_set() and time.perf_counter() - start < 30:
        ticks += 1
    t.join()
    assert ticks > 10_000, f"the main thread ran only {ticks} iterations during the call"


def test_threads_share_a_kernel():
    k = gram.Matern(0.7, nu=2.5)
    rng = np.random.default_rng(3)
    jobs = [(rng.normal(size=(2000, 4)), rng.normal(size=(300, 4)), rng.random(2000)) for _ in range(8)]
    want = [k.sum(X, Y, w) for X, Y, w in jobs]
    got = [None] * len(jobs)

    def run(i):
        X, Y, w = jobs[i]
        for _ in range(3):
            got[i] = k.sum(X, Y, w, threads=1)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for the test, restored after. Python installs it at start-up
    only where SIGINT is not ignored: a suite run as a background job (`cmd &` in a
    non-interactive shell, nohup) starts with SIGINT ignored, and Ctrl-C would then never reach
    a call."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def test_keyboard_interrupt_cancels_a_long_call(python_sigint):
    X, Y, expect = _long_job_size(6.0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        gram.kernel_sum(X, Y)
    elapsed = time.perf_counter() - start
    timer.join()
    assert elapsed < 0.3 + max(1.0, 0.15 * expect), f"took {elapsed:.2f} s of about {expect:.2f} s"
    assert elapsed < 0.5 * expect
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    np.testing.assert_allclose(gram.kernel_sum(X[:100], Y[:10]), gram.RBF(1.0)(Y[:10], X[:100]).sum(1), rtol=1e-12)


def test_keyboard_interrupt_in_kde(python_sigint):
    X, Y, expect = _long_job_size(6.0)
    kde = gram.KernelDensity(bandwidth=0.5).fit(X)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        kde.score_samples(Y)
    timer.join()
    assert time.perf_counter() - start < 0.5 * expect + 0.3
    assert kde.score_samples(Y[:3]).shape == (3,)


def test_custom_sigint_handler_left_alone():
    calls = []
    old = signal.signal(signal.SIGINT, lambda s, f: calls.append(s))
    try:
        X = np.random.default_rng(0).normal(size=(100, 2))
        gram.kernel_sum(X)
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert calls
    finally:
        signal.signal(signal.SIGINT, old)


# ---- errors ---------------------------------------------------------------------------------------


def test_status_mapping():
    assert isinstance(_lib.error(_lib.ENOMEM, "x"), MemoryError)
    assert isinstance(_lib.error(_lib.ENOTPD, "x"), np.linalg.LinAlgError)
    for s in (_lib.EINVAL, _lib.ESHAPE, _lib.ENONFINITE, _lib.EDOMAIN, _lib.EPARSE, _lib.EOVERFLOW):
        e = _lib.error(s, "msg")
        assert type(e) is ValueError and str(e) == "msg"
    assert str(_lib.error(_lib.EINVAL, "")) == _lib.strerror(_lib.EINVAL)


def test_threads_argument_validated():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError):
        gram.kernel_sum(X, threads=-3)


# ---- strings and integers crossing into C -------------------------------------------------------


@pytest.mark.parametrize("threads", [2**32 + 1, 2**31, -(2**32) + 2, 2.5, 2.0, True, np.bool_(True), "2",
                                     np.float64(1)])
def test_threads_neither_wrapped_nor_truncated(threads):
    """ctypes passes 2**32 + 1 to a C int as 1 and int(2.5) is 2: both ran with the wrong count."""
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="threads must be"):
        gram.kernel_sum(X, threads=threads)


def test_threads_numpy_integers_accepted():
    X = np.random.default_rng(0).normal(size=(10, 2))
    want = gram.kernel_sum(X, threads=1)
    for t in (np.int8(1), np.uint64(2), np.int64(0)):
        np.testing.assert_array_equal(gram.kernel_sum(X, threads=t), want)


def test_kernel_spec_with_nul_refused():
    """A C string ends at its first NUL: "gaussian\\0 + linear" was parsed as "gaussian"."""
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="NUL"):
        gram.kernel_sum(X, kernel="gaussian\0 + linear")
    with pytest.raises(ValueError, match="NUL"):
        gram.pairwise_kernels(X, kernel="linear\0")


def test_c_str():
    assert _lib.c_str("matérn", "spec") == "matérn".encode()
    with pytest.raises(ValueError, match=r"spec contains a NUL character at position 3"):
        _lib.c_str("abc\0def", "spec")
    with pytest.raises(ValueError, match="cannot be encoded"):
        _lib.c_str("a\udc80", "spec")
    with pytest.raises(TypeError, match="spec must be a str, got bytes"):
        _lib.c_str(b"gaussian", "spec")


def test_c_int():
    assert _lib.c_int(np.uint64(2**64 - 1), "seed", "uint64") == 2**64 - 1
    assert _lib.c_int(-(2**63), "n", "int64") == -(2**63)
    assert _lib.c_int(np.int16(-5), "n") == -5 and type(_lib.c_int(np.int16(-5), "n")) is int
    for bad, exc in [(2**63, ValueError), (-1, ValueError), (1.0, TypeError), (True, TypeError),
                     (None, TypeError), (np.array([1]), TypeError), (1 + 0j, TypeError)]:
        with pytest.raises(exc, match="n must be"):
            _lib.c_int(bad, "n", "int64", lo=0)
    assert _lib.c_int(True, "flag", allow_bool=True) == 1
    with pytest.raises(ValueError, match=r"n must be in \[0, 10\], got 11"):
        _lib.c_int(11, "n", lo=0, hi=10)


def test_every_foreign_call_checks_its_integers_and_strings():
    """The net under every call: a C int argument out of range, a float where ctypes would raise
    its own ArgumentError, or bytes with a NUL, are ValueErrors naming the function."""
    ctx = _lib.ctypes.c_void_p()
    assert _lib.lib.gram_context_create(_lib.ctypes.byref(ctx)) == 0
    try:
        with pytest.raises(ValueError, match=r"gram_context_set_threads: argument 2 must be in"):
            _lib.lib.gram_context_set_threads(ctx, 2**32 + 1)
        with pytest.raises(TypeError, match=r"gram_context_set_threads: argument 2 must be an int"):
            _lib.lib.gram_context_set_threads(ctx, 1.5)
        with pytest.raises(ValueError, match=r"gram_context_set_arch: argument 2 \(a C string\) contains a NUL"):
            _lib.lib.gram_context_set_arch(ctx, b"ref\0avx512")
        assert _lib.lib.gram_context_set_threads(ctx, 3) == 0 and _lib.lib.gram_context_threads(ctx) == 3
        assert _lib.lib.gram_context_set_arch(ctx, b"ref") == 0
    finally:
        _lib.lib.gram_context_destroy(ctx)
    # functions of pointers and doubles only are the foreign functions themselves (no overhead)
    assert not hasattr(_lib.lib.gram_kernel_sum, "foreign")


def test_option_structs_refuse_wrapped_integers():
    """Struct fields wrap too: GpOptions.n_restarts = 2**32 was stored as 0."""
    o = _lib.GpOptions()
    with pytest.raises(ValueError, match=r"GpOptions.n_restarts must be in"):
        o.n_restarts = 2**32
    with pytest.raises(ValueError, match=r"GpOptions.seed must be in"):
        o.seed = -1
    with pytest.raises(TypeError, match=r"KdeOptions.n_bandwidth must be an int"):
        _lib.KdeOptions().n_bandwidth = 2.0
    o.n_restarts, o.seed = 7, 2**64 - 1
    assert (o.n_restarts, o.seed) == (7, 2**64 - 1)


# ---- inputs larger than memory --------------------------------------------------------------------


def _meminfo_available():
    """MemAvailable + SwapFree, read here independently of gram."""
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
    return fields["MemAvailable"] + fields.get("SwapFree", 0)


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="Linux's /proc/meminfo")
def test_memory_available_is_the_systems():
    got, want = _lib.memory_available(), _meminfo_available()
    assert 0 < got <= want * 1.25 + 2**30  # lower under a cgroup limit; the machine moves meanwhile


def test_memory_rule_on_fake_trees(tmp_path):
    """The rule of src/base/memory.c (tests/c/test_memory.c holds the same cases): MemAvailable +
    SwapFree, lowered to the least room under the cgroup limits of the group and its ancestors."""
    root = str(tmp_path)

    def put(rel, text):
        path = tmp_path / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    kB = 1024
    assert _lib.memory_available(root) is None
    put("/proc/meminfo", "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n")
    assert _lib.memory_available(root) is None  # no MemAvailable (kernels before 3.14)
    put("/proc/meminfo", "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n"
                         "MemAvailable:    8000000 kB\nSwapTotal:       4000000 kB\nSwapFree:        3000000 kB\n")
    assert _lib.memory_available(root) == 11000000 * kB
    put("/proc/self/cgroup", "0::/a/b\n")
    put("/sys/fs/cgroup/a/b/memory.max", "max\n")
    put("/sys/fs/cgroup/a/b/memory.current", "100000000\n")
    put("/sys/fs/cgroup/a/memory.max", "2000000000\n")
    put("/sys/fs/cgroup/a/memory.current", "1500000000\n")
    put("/sys/fs/cgroup/a/memory.stat", "anon 1100000000\nfile 400000000\nfile_mapped 5\n")
    assert _lib.memory_available(root) == 900000000
    put("/sys/fs/cgroup/a/b/memory.max", "300000000\n")
    assert _lib.memory_available(root) == 200000000
    put("/sys/fs/cgroup/a/b/memory.max", "90000000000\n")
    put("/sys/fs/cgroup/a/memory.max", "max\n")
    assert _lib.memory_available(root) == 11000000 * kB
    put("/sys/fs/cgroup/a/b/memory.max", "50000000\n")
    assert _lib.memory_available(root) == 0
    put("/proc/self/cgroup", "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/\n")
    put("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n")
    put("/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "5\n")
    assert _lib.memory_available(root) == 11000000 * kB
    put("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "1000000000\n")
    put("/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "700000000\n")
    put("/sys/fs/cgroup/memory/docker/abc/memory.stat", "cache 1\ntotal_cache 200000000\n")
    assert _lib.memory_available(root) == 500000000
    put("/proc/self/cgroup", "4:memory:/\n")
    put("/sys/fs/cgroup/memory/memory.limit_in_bytes", "800000000\n")
    put("/sys/fs/cgroup/memory/memory.usage_in_bytes", "100000000\n")
    assert _lib.memory_available(root) == 700000000


def test_memory_check_refuses_only_large_blocks(monkeypatch):
    monkeypatch.setattr(_lib, "memory_available", lambda: 2**30)
    _lib.check_memory(2**30, "exactly what there is")
    _lib.check_memory(2**30 - 1, "under the threshold")
    with pytest.raises(MemoryError, match=r"the thing needs 1.07 GB but the system can provide 1.07 GB now"):
        _lib.check_memory(2**30 + 1, "the thing")
    monkeypatch.setattr(_lib, "memory_available", lambda: None)
    _lib.check_memory(2**60, "unknown availability")


def test_broadcast_far_larger_than_memory_fails_at_once():
    """A (10¹², 3) zero-stride view is 24 TB: the fit said so only after scanning 3·10¹² values for
    NaN (tens of minutes); a smaller one that fits in address space went to the OOM killer. Both
    must be a MemoryError before anything is copied or scanned. In a child process with a time
    limit, so the old behaviour fails the test instead of hanging the suite."""
    p = run_python("""
        import numpy as np, gram
        for make in (lambda v: gram.KernelDensity().fit(v),
                     lambda v: gram.KernelDensity().fit(np.zeros((5, 3))).score_samples(v),
                     lambda v: gram.gaussian_kde(v.T),
                     lambda v: gram.kernel_sum(v, np.zeros((2, 3))),
                     lambda v: gram.kernel_sum(v, np.zeros((2, 3)), log=True)):
            try:
                make(np.broadcast_to(np.arange(3.0), (10**12, 3)))
            except MemoryError as e:
                print("MemoryError", e)
            else:
                print("no error")
    """, timeout=120)
    lines = p.stdout.strip().splitlines()
    assert p.returncode == 0 and len(lines) == 5, p.stdout + p.stderr
    assert all(line.startswith("MemoryError") and "GB" in line for line in lines), p.stdout


def test_broadcast_larger_than_available_memory(monkeypatch):
    """Needs more than the system can provide (here: a pretend 1 GiB): MemoryError before NumPy or
    libgram touch it, for each estimator; no test may really allocate gigabytes."""
    monkeypatch.setattr(_lib, "memory_available", lambda: 2**30)
    big = np.broadcast_to(np.arange(3.0), (2**25, 3))  # 0.8 GB as float64; copies exceed 1 GiB
    with pytest.raises(MemoryError, match=r"KernelDensity.fit on X of shape \(33554432, 3\)"):
        gram.KernelDensity().fit(big)
    with pytest.raises(MemoryError, match=r"gaussian_kde of a 3×33554432 dataset"):
        gram.gaussian_kde(big.T)
    with pytest.raises(MemoryError, match=r"X as float64"):
        gram.KernelDensity().fit(np.broadcast_to(np.arange(3), (2**26, 3)))  # int64: a float64 copy
    small = gram.KernelDensity().fit(np.zeros((4, 3)))
    with pytest.raises(MemoryError, match=r"the densities 134217729 needs 1.07 GB"):
        small.score_samples(np.broadcast_to(np.arange(3.0), (2**27 + 1, 3)))


# ---- without scikit-learn -------------------------------------------------------------------------


def test_works_without_sklearn():
    p = run_python("""
        import sys
        sys.modules["sklearn"] = None          # `import sklearn` now fails
        import pickle
        import numpy as np
        import gram
        X = np.random.default_rng(0).normal(size=(50, 2))
        kde = gram.KernelDensity(bandwidth=0.5, kernel="tophat")
        assert repr(kde) == "KernelDensity(bandwidth=0.5, kernel='tophat')", repr(kde)
        assert kde.get_params()["bandwidth"] == 0.5
        kde.set_params(bandwidth=0.7)
        try:
            kde.score_samples(X)
        except gram._base.NotFittedError:
            pass
        else:
            raise AssertionError("no NotFittedError")
        s = kde.fit(X).score_samples(X)
        again = pickle.loads(pickle.dumps(kde))
        assert np.array_equal(again.score_samples(X), s)
        assert gram.gaussian_kde(X.T).logpdf(X.T).shape == (50,)
        assert gram.kernel_sum(X, kernel=gram.RBF(1.0) + 1).shape == (50,)
        assert "sklearn" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_import_is_light():
    p = run_python("""
        import sys, gram
        heavy = sorted({m.split(".")[0] for m in sys.modules} & {"scipy", "sklearn", "pandas"})
        print(",".join(heavy))
    """)
    assert p.returncode == 0 and p.stdout.strip() == "", p.stdout + p.stderr


# ---- examples ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["kernel_density.py", "gaussian_kde.py", "kernel_sum.py"])
def test_examples_run(script, tmp_path):
    path = REPO / "examples" / "python" / script
    p = subprocess.run([sys.executable, str(path), "--quick"], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=600)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip()
