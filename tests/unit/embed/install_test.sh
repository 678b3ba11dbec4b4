#!/usr/bin/env bash
# The installed embedding package (WEFT_SHARED builds): `cmake --install` into a prefix, move
# the prefix elsewhere (it must be relocatable), then build examples/embed/hello.cpp against it
# twice — with only `c++ -std=c++20 hello.cpp $(pkg-config --cflags --libs weft)` and with
# CMake's find_package(Weft CONFIG) — and run both. Also: libweft.so exports only weft::api.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/first" >/dev/null
mv "$work/first" "$work/moved"
prefix=$work/moved
lib=$(find "$prefix" -name libweft.so.0 | head -1)
[[ -n "$lib" ]] || { echo "no libweft.so.0 under $prefix"; exit 1; }
leaked=$(nm -D --defined-only "$lib" | awk '{print $3}' | c++filt | grep -v '^weft::api::' \
         | grep -v -e '^typeinfo for weft::api::' -e '^typeinfo name for weft::api::' \
                   -e '^vtable for weft::api::' -e '^WEFT_0$' || true)
if [[ -n "$leaked" ]]; then
  echo "libweft.so exports more than weft::api:"; echo "$leaked" | head -20; exit 1
fi
pcdir=$(dirname "$(find "$prefix" -name weft.pc | head -1)")
export PKG_CONFIG_PATH=$pcdir
c++ -std=c++20 -o "$work/hello_pc" "$src/examples/embed/hello.cpp" $(pkg-config --cflags --libs weft)
"$work/hello_pc" > "$work/out_pc.txt"
grep -qx '42' "$work/out_pc.txt"
mkdir -p "$work/cm"
cat > "$work/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.22)
project(host CXX)
find_package(Weft CONFIG REQUIRED)
add_executable(hello_cm $src/examples/embed/hello.cpp)
target_link_libraries(hello_cm PRIVATE weft::weft)
CM
cmake -S "$work/cm" -B "$work/cm/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_RPATH="$(dirname "$lib")" >/dev/null
cmake --build "$work/cm/build" >/dev/null
"$work/cm/build/hello_cm" > "$work/out_cm.txt"
grep -qx 'HELLO, ADA' "$work/out_cm.txt"
echo "install test: relocatable package OK (pkg-config and CMake), only weft::api exported"
