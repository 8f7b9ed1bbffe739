#!/usr/bin/env bash
# Install what gram needs to build and test: a C toolchain, CMake, pkg-config, OpenBLAS/LAPACKE,
# Python 3 with NumPy, SciPy, scikit-learn and pytest. Idempotent and non-interactive: a second
# run installs nothing and takes about a second.
#
#   bash scripts/setup.sh        # standalone
#   source scripts/setup.sh      # from another script: also exports GRAM_PYTHON
#
# The Python interpreter (GRAM_PYTHON) is chosen once, here, and every script uses it:
#   1. $GRAM_PYTHON if already set;
#   2. else <repo>/.venv/bin/python if a previous run created that venv;
#   3. else python3 on PATH — unless it is an "externally managed" system Python (PEP 668, as on
#      stock Debian) that lacks a package, in which case a venv is made at <repo>/.venv with
#      --system-site-packages and the packages go there.
set -euo pipefail

GRAM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

_gram_note() { printf 'setup: %s\n' "$*" >&2; }

_gram_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else _gram_note "need root to run: $*"; return 1
    fi
}

# ---- Debian packages -----------------------------------------------------------------------------
_gram_apt_packages=(build-essential cmake ninja-build pkg-config libopenblas-dev liblapacke-dev
                    python3 python3-pip python3-venv)
_gram_missing=()
for _p in "${_gram_apt_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$_p" 2>/dev/null | grep -q 'install ok installed'; then
        _gram_missing+=("$_p")
    fi
done
if [ "${#_gram_missing[@]}" -gt 0 ]; then
    _gram_note "installing Debian packages: ${_gram_missing[*]}"
    for _try in 1 2 3; do
        if _gram_as_root apt-get update -q && \
           _gram_as_root apt-get install -y -q --no-install-recommends "${_gram_missing[@]}"; then
            break
        fi
        if [ "$_try" -eq 3 ]; then _gram_note "apt-get failed three times"; exit 1; fi
        _gram_note "apt-get failed; retrying in 10 s"; sleep 10
    done
fi

# ---- Python ----------------------------------------------------------------------------------
# Pinned: the anchors' own test files (tests/peer/run_peer.py) are read from these installed
# versions, and their imports are rewritten by exact text, so a new release is a deliberate update.
_gram_pip_packages=(numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pytest==9.2.0)
_gram_check_imports='
import numpy, scipy, sklearn, pytest
want = {"numpy": "2.4.6", "scipy": "1.17.1", "sklearn": "1.9.1", "pytest": "9.2.0"}
have = {"numpy": numpy.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__,
        "pytest": pytest.__version__}
assert have == want, have
'

if [ -z "${GRAM_PYTHON:-}" ]; then
    if [ -x "$GRAM_ROOT/.venv/bin/python" ]; then
        GRAM_PYTHON="$GRAM_ROOT/.venv/bin/python"
    else
        GRAM_PYTHON="$(command -v python3)"
    fi
fi

if ! "$GRAM_PYTHON" -c "$_gram_check_imports" >/dev/null 2>&1; then
    # PEP 668: a system Python outside a venv with an EXTERNALLY-MANAGED marker refuses pip.
    _gram_managed="$("$GRAM_PYTHON" - <<'PY'
import os, sys, sysconfig
in_venv = sys.prefix != sys.base_prefix
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
print(1 if (not in_venv and os.path.exists(marker)) else 0)
PY
)"
    if [ "$_gram_managed" = 1 ]; then
        _gram_note "$GRAM_PYTHON is externally managed (PEP 668); using a venv at .venv"
        "$GRAM_PYTHON" -m venv --system-site-packages "$GRAM_ROOT/.venv"
        GRAM_PYTHON="$GRAM_ROOT/.venv/bin/python"
    fi
    if ! "$GRAM_PYTHON" -m pip --version >/dev/null 2>&1; then
        "$GRAM_PYTHON" -m ensurepip --upgrade >/dev/null
    fi
    _gram_note "installing Python packages with $GRAM_PYTHON: ${_gram_pip_packages[*]}"
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore \
        "$GRAM_PYTHON" -m pip install -q --retries 5 "${_gram_pip_packages[@]}"
    "$GRAM_PYTHON" -c "$_gram_check_imports"
fi
# The interpreter itself, not a launcher (pyenv shims, PATH lookups), so every later use is the same.
GRAM_PYTHON="$("$GRAM_PYTHON" -c 'import sys; print(sys.executable)')"
export GRAM_PYTHON
_gram_note "ok (python: $GRAM_PYTHON)"
