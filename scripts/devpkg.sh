#!/usr/bin/env bash
# A development copy of the Python package over a build tree, without `pip install`:
#
#   bash scripts/devpkg.sh BUILD_DIR OUT_DIR     # then: PYTHONPATH=OUT_DIR python3 -c 'import gram'
#
# OUT_DIR/gram holds symbolic links to python/gram/*.py (so edits take effect at once), a copy of
# BUILD_DIR's libgram.so (run again after rebuilding) and a generated _version.py. Several
# developers can each have their own OUT_DIR over their own build while sharing one checkout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -eq 2 ] || { echo "usage: scripts/devpkg.sh BUILD_DIR OUT_DIR" >&2; exit 2; }
build="$(cd "$1" && pwd)"; out="$2"
lib="$build/libgram.so"
[ -e "$lib" ] || { echo "devpkg: $lib not found: build it first (cmake --build $1)" >&2; exit 1; }
mkdir -p "$out/gram"
out="$(cd "$out" && pwd)"
for f in "$ROOT"/python/gram/*.py; do
    [ "$(basename "$f")" = _version.py ] && continue
    ln -sfn "$f" "$out/gram/$(basename "$f")"
done
cp -f "$(readlink -f "$lib")" "$out/gram/libgram.so.tmp" && mv -f "$out/gram/libgram.so.tmp" "$out/gram/libgram.so"
v="$(sed -nE 's/^#define[[:space:]]+GRAM_VERSION_(MAJOR|MINOR|PATCH)[[:space:]]+([0-9]+).*/\2/p' "$ROOT/include/gram.h" | paste -sd.)"
printf '"""The package version (development copy made by scripts/devpkg.sh)."""\n__version__ = "%s"\n' "$v" >"$out/gram/_version.py"
echo "devpkg: PYTHONPATH=$out (library from $lib, version $v)"
