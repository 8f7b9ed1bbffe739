#!/usr/bin/env bash
# Install gram from a configured build tree into a temporary prefix and build a consumer against
# it three ways: CMake find_package (shared and static targets), and pkg-config (shared, and a
# static link using Libs.private). Runs every consumer.
#
#   bash tests/install/run.sh [BUILD_DIR]     (default: build)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/gram-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cc="${CC:-cc}"

cmake --install "$build" --prefix "$prefix" >/dev/null

# CMake package
cmake -S "$root/tests/install" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer" -j2 >/dev/null
printf "%-34s" "find_package, gram::gram:"; "$work/consumer/consumer_shared"
printf "%-34s" "find_package, gram::gram_static:"; "$work/consumer/consumer_static"

# pkg-config (the .pc file finds the prefix relative to itself)
pcdir="$(dirname "$(find "$prefix" -name gram.pc -print -quit)")"
export PKG_CONFIG_PATH="$pcdir"
libdir="$(pkg-config --variable=libdir gram)"
# -lm: main.c itself calls exp()
# shellcheck disable=SC2046
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -o "$work/pc_shared" "$root/tests/install/main.c" \
      $(pkg-config --cflags gram) $(pkg-config --libs gram) -Wl,-rpath,"$libdir" -lm
printf "%-34s" "pkg-config, shared:"; "$work/pc_shared"
static_private="$(pkg-config --static --libs gram | sed 's/-lgram//')"
# shellcheck disable=SC2046,SC2086
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -o "$work/pc_static" "$root/tests/install/main.c" \
      $(pkg-config --cflags gram) "$libdir/libgram.a" $static_private
printf "%-34s" "pkg-config, static:"; "$work/pc_static"
case "$(ldd "$work/pc_static")" in *libgram.so*)
    echo "install test: pc_static is linked to libgram.so" >&2; exit 1 ;;
esac
echo "install test: find_package (shared, static) and pkg-config (shared, static) consumers ok"
