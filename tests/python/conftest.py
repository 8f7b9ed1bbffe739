"""Shared fixtures for the Python tests.

gram_cli: the path of the built `gram` command: $GRAM_CLI, else build/cli/gram in the repository.
A missing binary fails the tests that need it (with how to build it); it never skips them.
cli_error_case: the checks of one row of a CLI test file's ERROR_CASES.
"""
import os
import pathlib
import re
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _cli_path():
    env = os.environ.get("GRAM_CLI")
    return pathlib.Path(env) if env else REPO / "build" / "cli" / "gram"


@pytest.fixture(scope="session")
def gram_cli():
    path = _cli_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"the gram command was not found at {path}: build it with "
            f"'cmake -S . -B build && cmake --build build --target gram_cli', "
            f"or point GRAM_CLI at a built binary",
            pytrace=False,
        )
    return str(path)


@pytest.fixture(scope="session")
def data_dir():
    return REPO / "data"


@pytest.fixture
def cli_error_case(gram_cli, tmp_path):
    """Runs one row of a CLI test file's ERROR_CASES, (id, inputs, args, code, patterns): writes the
    inputs into tmp_path (bytes, or the name of an entry of contents), runs `gram ARGS` there, and
    checks the exit code, an empty standard output, each pattern against standard error, that no
    file was written or removed, and that a data error (1) starts "gram: ". Returns standard error."""

    def check(case, contents):
        _, inputs, args, code, patterns = case
        for name, content in inputs.items():
            (tmp_path / name).write_bytes(contents[content] if isinstance(content, str) else content)
        before = set(p.name for p in tmp_path.iterdir())
        p = subprocess.run([gram_cli, *[str(a) for a in args]], capture_output=True, timeout=300, cwd=tmp_path)
        err = p.stderr.decode(errors="replace")
        assert p.returncode == code, f"exit {p.returncode} (want {code}); stderr:\n{err}"
        assert p.stdout == b""
        for pat in patterns:
            assert re.search(pat, err, re.M), f"stderr does not match {pat!r}:\n{err}"
        after = set(p.name for p in tmp_path.iterdir())
        assert after == before, f"a file was written or removed: {sorted(after ^ before)}"
        if code == 1:
            assert err.startswith("gram: ")
        return err

    return check


def matrix_grad(spec, X):
    """gram_kernel_matrix_grad through ctypes: K (N, N) and its gradient (N, N, P) for a spec."""
    import ctypes

    import numpy as np

    from gram import _lib

    _lib.need("gram_kernel_matrix_grad")
    ctx = ctypes.c_void_p()
    assert _lib.lib.gram_context_create(ctypes.byref(ctx)) == 0
    k = ctypes.c_void_p()
    try:
        st = _lib.lib.gram_kernel_parse(ctx, spec.encode(), ctypes.byref(k))
        assert st == 0, _lib.lib.gram_context_message(ctx)
        P = _lib.lib.gram_kernel_n_hyper(k)
        X = np.ascontiguousarray(X, dtype=np.float64)
        n = X.shape[0]
        K, G = np.empty((n, n)), np.empty((n, n, P))
        st = _lib.lib.gram_kernel_matrix_grad(ctx, k, None, ctypes.byref(_lib.view(X)), ctypes.byref(_lib.view(K)),
                                              G.ctypes.data_as(_lib._dp))
        assert st == 0, _lib.lib.gram_context_message(ctx)
        return K, G
    finally:
        _lib.lib.gram_kernel_destroy(k)
        _lib.lib.gram_context_destroy(ctx)
