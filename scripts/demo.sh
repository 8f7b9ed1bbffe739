#!/usr/bin/env bash
# Set up, build and run gram's main job: a kernel density estimate of the Old Faithful eruptions
# (data/faithful.csv, 272 × 2) with an automatic bandwidth. Prints a summary (N, D, bandwidth,
# time) and writes the density at every eruption to faithful_density.csv and the picture to
# faithful_kde.svg, in the current directory.
#
#   bash scripts/demo.sh [more gram kde options]   e.g. bash scripts/demo.sh --kernel epanechnikov
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="$(pwd)"
cd "$ROOT"
JOBS="${GRAM_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# shellcheck source=scripts/setup.sh
source "$ROOT/scripts/setup.sh"
{
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j "$JOBS" --target gram_cli
} >"${TMPDIR:-/tmp}/gram-demo-build.log" 2>&1 || {
    cat "${TMPDIR:-/tmp}/gram-demo-build.log" >&2
    echo "demo.sh: build failed" >&2
    exit 1
}
build/cli/gram kde data/faithful.csv --bandwidth scott "$@" \
    -o "$OUTDIR/faithful_density.csv" --plot "$OUTDIR/faithful_kde.svg"
echo "wrote $OUTDIR/faithful_density.csv (the density at each of the 272 eruptions)"
echo "wrote $OUTDIR/faithful_kde.svg (open it in a browser)"
