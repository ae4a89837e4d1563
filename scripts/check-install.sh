#!/usr/bin/env bash
# Installs the build in $1 into a temporary root and checks it as an outside project would:
#   1. no internal header (a detail/ folder) is installed, every installed header compiles on
#      its own with the library's warnings as errors, and all of them together in one TU,
#      against the installed tree alone;
#   2. the README's 20-line example builds with pkg-config and runs;
#   3. the same example builds with CMake, find_package(cholla) + cholla::cholla, and runs;
#   4. the shared library carries the versioned soname libcholla.so.<major>.
set -euo pipefail
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" >/dev/null
option() {
  meson introspect "$build" --buildoptions |
    python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]==sys.argv[1]][0])' "$1"
}
prefix=$(option prefix)
version=$(meson introspect "$build" --projectinfo | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
pcdir=$(dirname "$(find "$root" -name cholla.pc | head -n 1)")
libdir=$(dirname "$pcdir")
incdir=$(dirname "$(find "$root" -name cholla.hpp | head -n 1)")

# 1. Internal headers live in detail/ folders, which meson must not install: a public header
#    that included one would not compile here, and one installed by mistake would be API.
leaked=$(cd "$incdir" && find . \( -name detail -o -path '*/detail/*' \))
[ -z "$leaked" ] || { echo "internal headers installed:"; echo "$leaked"; exit 1; }
# Each installed header alone (it includes what it uses), as a user's first include would be.
# A header that says "do not include it directly" (tensor_impl.hpp: the tail of tensor.hpp) is
# compiled through the header that includes it, and in the all-in-one TU below.
mkdir -p "$root/alone"
(cd "$incdir" && find . -name '*.hpp' | sort | sed 's|^\./||') > "$root/headers.txt"
[ -s "$root/headers.txt" ] || { echo "no headers installed under $incdir"; exit 1; }
alone=0
while read -r header; do
  grep -q 'do not include it directly' "$incdir/$header" && continue
  echo "#include <$header>" > "$root/alone/$(echo "$header" | tr / _).cpp"
  alone=$((alone + 1))
done < "$root/headers.txt"
find "$root/alone" -name '*.cpp' -print0 | sort -z |
  xargs -0 -P "$(nproc)" -I{} g++ -std=c++20 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$incdir" {} ||
  { echo "an installed header does not compile on its own (the failing TU is named above)"; exit 1; }
# All of them in one translation unit (no two public headers clash).
sed 's|.*|#include <&>|' "$root/headers.txt" > "$root/headers.cpp"
g++ -std=c++20 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$incdir" "$root/headers.cpp" ||
  { echo "an installed header needs a header that is not installed"; exit 1; }

# 2. pkg-config, with the README's example verbatim.
sed -n '/^```cpp$/,/^```$/p' README.md | sed '1d;$d' | sed -n '1,/^}$/p' > "$root/prog.cpp"
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --define-variable=prefix="$root$prefix" --cflags --libs cholla)
# shellcheck disable=SC2086
g++ -std=c++20 "$root/prog.cpp" $flags -Wl,-rpath,"$libdir" -o "$root/prog"
OPENBLAS_NUM_THREADS=1 "$root/prog"

# 3. CMake: a consumer project that knows nothing but the install prefix.
mkdir -p "$root/consumer"
cp "$root/prog.cpp" "$root/consumer/"
cat > "$root/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(cholla_consumer CXX)
find_package(cholla ${version%%.*} REQUIRED)
add_executable(app prog.cpp)
target_link_libraries(app PRIVATE cholla::cholla)
CMAKE
cmake -S "$root/consumer" -B "$root/consumer/build" -DCMAKE_PREFIX_PATH="$root$prefix" >/dev/null
cmake --build "$root/consumer/build" >/dev/null
OPENBLAS_NUM_THREADS=1 "$root/consumer/build/app"

# 4. soname.
soname=$(readelf -d "$libdir/libcholla.so.$version" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libcholla.so.${version%%.*}" ] || { echo "soname is '$soname'"; exit 1; }
echo "install check: $(wc -l < "$root/headers.txt") headers ($alone compiled alone, no detail/), pkg-config and CMake consumers, soname $soname"
