#!/usr/bin/env bash
# Installs the build in $1 into a temporary root and builds the README's 20-line example
# against it with pkg-config, as an outside program would; then runs it.
set -euo pipefail
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
pcdir=$(dirname "$(find "$root" -name cholla.pc | head -n 1)")
# The README's example, verbatim.
sed -n '/^```cpp$/,/^```$/p' README.md | sed '1d;$d' | sed -n '1,/^}$/p' > "$root/prog.cpp"
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --define-variable=prefix="$root$prefix" --cflags --libs cholla)
# shellcheck disable=SC2086
g++ -std=c++20 "$root/prog.cpp" $flags -Wl,-rpath,"$(dirname "$pcdir")" -o "$root/prog"
OPENBLAS_NUM_THREADS=1 "$root/prog"
