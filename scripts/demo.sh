#!/usr/bin/env bash
# Set up, build and run gram's main job: a kernel density estimate of the Old Faithful data
# (data/faithful.csv, 272 eruptions) at every data point with one exact kernel sum.
#
#   bash scripts/demo.sh [KERNEL_SPEC]      e.g. bash scripts/demo.sh 'epanechnikov(lengthscale=[0.8,10])'
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${GRAM_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# shellcheck source=scripts/setup.sh
source "$ROOT/scripts/setup.sh"
{
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j "$JOBS" --target kernel_sum_demo
} >"${TMPDIR:-/tmp}/gram-demo-build.log" 2>&1 || {
    cat "${TMPDIR:-/tmp}/gram-demo-build.log" >&2
    echo "demo.sh: build failed" >&2
    exit 1
}
exec build/examples/kernel_sum_demo data/faithful.csv "$@"
