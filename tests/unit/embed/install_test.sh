#!/usr/bin/env bash
# The installed embedding package (WEFT_SHARED builds; `make test` runs it as `test-install`):
#  1. `cmake --install` into two different prefixes, then move the first one elsewhere: the two
#     trees must be byte-identical (nothing records the prefix: weft.pc computes it from
#     ${pcfiledir}, the CMake package from its own place) and the moved one must still work;
#  2. libweft.so.0 exports only weft::api (no Boost, curl, SQLite, RE2, fmt or VM symbol);
#  3. every host program of examples/embed/ is built against the moved prefix twice — with only
#     `c++ -std=c++20 app.cpp $(pkg-config --cflags --libs weft)` and with CMake's
#     find_package(Weft CONFIG) + weft::weft — and each run's output is checked.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR [WORK_DIR]
# WORK_DIR (default BUILD_DIR/install-test) is a fixed path so that ccache, when installed, finds
# the examples' objects again on the next run.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=${3:-$build/install-test}
rm -rf "$work"
mkdir -p "$work"
cd "$work"
launcher=$(command -v ccache || true)
export CCACHE_BASEDIR=$work  # the prefixes' paths differ from run to run only under $work
examples=(hello host_functions control run_program)

fail() { echo "install test: $*" >&2; exit 1; }

# The exact output of each example (the same text as the embed.example_* tests expect).
expected() {
  case $1 in
    hello) printf '42\nhello, weft\nHELLO, ADA\nHELLO, BOB\nKeyError: '"'"'missing'"'"'\n' ;;
    host_functions) printf 'denied: no quota for eve\nuser1 user2 86.0 celsius 2.25\ncounter 7\n' ;;
    control) printf 'PermissionDenied\ntime limit\ninterrupted\n[script] still here 42\nsum 6\n' ;;
    run_program) printf 'hello, world\nstatus 0\nstatus 1: ZeroDivisionError: division by zero\ncleaned up\nstatus 130\n' ;;
  esac
}

run_and_check() {  # run_and_check BINARY EXAMPLE HOW
  local out
  out=$(timeout 120 "$1") || fail "$3 build of $2 exited with $?"
  [[ "$out"$'\n' == "$(expected "$2")"$'\n' ]] || fail "$3 build of $2 printed:
$out
expected:
$(expected "$2")"
}

# 1. two prefixes, one moved
cmake --install "$build" --prefix "$work/p1" >/dev/null
cmake --install "$build" --prefix "$work/p2" >/dev/null
mkdir -p "$work/elsewhere"
mv "$work/p1" "$work/elsewhere/moved"
prefix=$work/elsewhere/moved
diff -r "$prefix" "$work/p2" >/dev/null || fail "installs into two prefixes differ (a path is recorded):
$(diff -r "$prefix" "$work/p2" | head -20)"
lib=$(find "$prefix" -name libweft.so.0 | head -1)
[[ -n "$lib" ]] || fail "no libweft.so.0 under $prefix"
[[ -f "$prefix/include/weft/weft.hpp" ]] || fail "weft.hpp not installed"
! grep -rq -e "$work/p1" -e "$work/p2" "$prefix" || fail "an installed file names its install prefix"

# 2. exported symbols
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | c++filt)
privates=$(echo "$exported" | grep -i -E 'boost|curl|sqlite|re2::|fmt::|mi_|weft::rt::' || true)
[[ -z "$privates" ]] || fail "libweft.so exports private libraries' symbols:
$(echo "$privates" | head -20)"
leaked=$(echo "$exported" | grep -v -e '^weft::api::' -e '^typeinfo for weft::api::' \
         -e '^typeinfo name for weft::api::' -e '^vtable for weft::api::' -e '^WEFT_0$' || true)
[[ -z "$leaked" ]] || fail "libweft.so exports more than weft::api:
$(echo "$leaked" | head -20)"

# 3a. pkg-config, exactly as a host would (plus ccache when present)
export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name weft.pc | head -1)")
[[ "$(pkg-config --variable=prefix weft)" -ef "$prefix" ]] || fail "weft.pc's prefix is not where it lies"
flags=$(pkg-config --cflags --libs weft)
pids=()
for e in "${examples[@]}"; do
  # shellcheck disable=SC2086  # the flags are words
  $launcher c++ -std=c++20 -o "$work/${e}_pc" "$src/examples/embed/$e.cpp" $flags &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a pkg-config build failed"; done
for e in "${examples[@]}"; do run_and_check "$work/${e}_pc" "$e" pkg-config; done

# 3b. CMake package
mkdir -p "$work/cm"
{
  echo 'cmake_minimum_required(VERSION 3.22)'
  echo 'project(host CXX)'
  echo 'find_package(Weft CONFIG REQUIRED)'
  for e in "${examples[@]}"; do
    echo "add_executable(${e}_cm $src/examples/embed/$e.cpp)"
    echo "target_link_libraries(${e}_cm PRIVATE weft::weft)"
  done
} > "$work/cm/CMakeLists.txt"
cmake -S "$work/cm" -B "$work/cm/build" -DCMAKE_PREFIX_PATH="$prefix" \
      ${launcher:+-DCMAKE_CXX_COMPILER_LAUNCHER=$launcher} >/dev/null
cmake --build "$work/cm/build" -j 2 >/dev/null || fail "the CMake build failed"
for e in "${examples[@]}"; do run_and_check "$work/cm/build/${e}_cm" "$e" CMake; done

echo "install test: relocatable package OK (two prefixes identical, moved prefix used);" \
     "${#examples[@]} examples built with pkg-config and CMake and run; only weft::api exported"
