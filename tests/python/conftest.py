"""Shared fixtures for the Python tests.

gram_cli: the path of the built `gram` command: $GRAM_CLI, else build/cli/gram in the repository.
A missing binary fails the tests that need it (with how to build it); it never skips them.
"""
import os
import pathlib

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
