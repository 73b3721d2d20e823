#!/usr/bin/env bash
# Third-party plugins against the installed SDK, as a new plugin author meets them
# (issue 10). Installs this build into a staging directory (DESTDIR; ood-sdk.pc and
# ood-testkit.pc are relocatable), then, with only that install on PATH and
# PKG_CONFIG_PATH:
#   1. runs README's "Write your own plugin" commands (write-your-own-plugin.sh) as
#      they are: install, `ood new-plugin`, meson setup, meson test, `ood run`;
#   2. builds the same detector with the g++ line of docs/writing-plugins.md, and with
#      CMake's pkg_check_modules when cmake is installed;
#   3. installs the detector into the SDK's pluginsdir and uses it without
#      --plugin-path;
#   4. generates, builds, tests and runs the scaffold of every other kind.
# Usage: test_sdk_install.sh BUILD_DIR SOURCE_DIR (meson test passes both). Slow: each
# compile includes LibTorch's headers. KEEP_WORK=1 keeps the scratch directory.
set -euo pipefail

build=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
started=$SECONDS

step() { echo "== [$((SECONDS - started))s] $*"; }
fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# The install layout this build was configured with.
options=$(meson introspect "$build" --buildoptions)
option() { python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == sys.argv[1]))' "$1" <<<"$options"; }
prefix=$(option prefix)
under_prefix() { case "$1" in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
bindir=$(under_prefix "$(option bindir)")
libdir=$(under_prefix "$(option libdir)")
if [ "$(option pkgconfig.relocatable)" != "True" ]; then
  # Build directories set up before meson.build made the .pc files relocatable write
  # prefix=/usr/local into them, which a staged install cannot use.
  echo "SKIP: $build has pkgconfig.relocatable=false (set up before it became the default);" \
       "run: meson configure $build -Dpkgconfig.relocatable=true" >&2
  exit 77
fi

# A sanitizer build (tools/dev.sh sanitize) installs libraries that need the sanitizer
# runtimes loaded first. The third-party projects below are built as their authors would
# build them, without sanitizer flags, so their programs (the scaffolds' tests) get the
# runtimes preloaded; the sanitized ood and libraries still check everything they run.
sanitize=$(option b_sanitize)
if [ "$sanitize" != "none" ]; then
  preload=""
  case "$sanitize" in *address*) preload="$(${CXX:-c++} -print-file-name=libasan.so)" ;; esac
  case "$sanitize" in *undefined*) preload="$preload $(${CXX:-c++} -print-file-name=libubsan.so)" ;; esac
  export LD_PRELOAD="${preload# }"
  step "sanitizer build ($sanitize): LD_PRELOAD=$LD_PRELOAD"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ood-sdk-install.XXXXXX")
if [ "${KEEP_WORK:-0}" = 1 ]; then echo "scratch directory: $work"; else trap 'rm -rf "$work"' EXIT; fi
stage="$work/stage"
cd "$work"
ln -s "$build" build  # the README's commands name the ood build `build`

# Only the staged install: its ood first on PATH, its .pc files for pkg-config, a
# scanner cache of its own, no plugin path from the environment.
export DESTDIR="$stage"
export PATH="$stage$bindir:$PATH"
export PKG_CONFIG_PATH="$stage$libdir/pkgconfig"
export OOD_HOME="$work/ood-home"
unset OOD_PLUGIN_PATH

step "README: Write your own plugin (tests/sdk/write-your-own-plugin.sh)"
sh "$source_dir/tests/sdk/write-your-own-plugin.sh"
unset DESTDIR  # from here on the .pc files' paths already point into the staging directory

[ "$(command -v ood)" = "$stage$bindir/ood" ] || fail "ood on PATH is $(command -v ood), not the staged one"
grep -q '"my-detector"' my-detector/results/metrics.json || fail "my-detector has no results in metrics.json"
pluginsdir=$(pkg-config --variable=pluginsdir ood-sdk)
[ "$(cd "$pluginsdir" && pwd)" = "$(cd "$stage$libdir/ood/plugins" && pwd)" ] ||
  fail "pluginsdir is $pluginsdir, ood looks in $stage$libdir/ood/plugins"
[ -f "$pluginsdir/ood-energy-based.so" ] || fail "no built-in plugins in $pluginsdir"
for f in ood/plugin.hpp ood/testkit.hpp; do
  [ -f "$stage$(under_prefix "$(option includedir)")/$f" ] || fail "$f was not installed"
done

step "the g++ line of docs/writing-plugins.md"
mkdir gxx
# shellcheck disable=SC2046  # pkg-config's flags are meant to be split
g++ -shared -fPIC my-detector/my_detector.cpp $(pkg-config --cflags --libs ood-sdk) \
  $(pkg-config --variable=plugin_ldflags ood-sdk) -o gxx/ood-my-detector.so
described=$(ood --plugin-path gxx describe my-detector)
grep -q "softmax temperature" <<<"$described" || fail "ood cannot use the g++-built plugin: $described"

# An out-of-tree plugin exports only its entry point, like the built-in ones; the
# test kit only its API.
only_entry_point() {
  local exported
  exported=$(nm -D --defined-only "$1" | awk '{print $3}' | sort -u | tr '\n' ' ')
  [ "$exported" = "ood_plugin " ] || fail "$1 exports more than ood_plugin: $exported"
}
only_entry_point gxx/ood-my-detector.so
only_entry_point my-detector/build/ood-my-detector.so
foreign=$(nm -DC --defined-only "$stage$libdir/libood-testkit.so" | grep -v 'ood::testkit' || true)
[ -z "$foreign" ] || fail "libood-testkit exports symbols outside ood::testkit: $(head -5 <<<"$foreign")"

if command -v cmake >/dev/null; then
  step "CMake: pkg_check_modules(OOD REQUIRED IMPORTED_TARGET ood-sdk)"
  mkdir cmake-src
  cp my-detector/my_detector.cpp cmake-src/
  cat >cmake-src/CMakeLists.txt <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(my_detector CXX)
find_package(PkgConfig REQUIRED)
pkg_check_modules(OOD REQUIRED IMPORTED_TARGET ood-sdk)
pkg_get_variable(OOD_PLUGINS_DIR ood-sdk pluginsdir)
pkg_get_variable(OOD_PLUGIN_LDFLAGS ood-sdk plugin_ldflags)
add_library(my-detector MODULE my_detector.cpp)
set_target_properties(my-detector PROPERTIES PREFIX "" OUTPUT_NAME ood-my-detector CXX_STANDARD 20)
target_link_libraries(my-detector PRIVATE PkgConfig::OOD)
target_link_options(my-detector PRIVATE ${OOD_PLUGIN_LDFLAGS})
install(TARGETS my-detector DESTINATION ${OOD_PLUGINS_DIR})
CMAKE
  cmake -S cmake-src -B cmake-build -DCMAKE_BUILD_TYPE=Release >cmake.log || { cat cmake.log; fail "cmake configure"; }
  cmake --build cmake-build >>cmake.log || { cat cmake.log; fail "cmake build"; }
  described=$(ood --plugin-path cmake-build/ood-my-detector.so describe my-detector)
  grep -q "softmax temperature" <<<"$described" || fail "ood cannot use the CMake-built plugin: $described"
  only_entry_point cmake-build/ood-my-detector.so
else
  echo "cmake is not installed: the CMake check is skipped"
fi

step "meson install of the plugin: ood finds it without --plugin-path"
listed=$(ood plugins --kind detector)
grep -q "my-detector" <<<"$listed" && fail "my-detector is listed before it is installed"
meson install -C my-detector/build >/dev/null
[ -f "$pluginsdir/ood-my-detector.so" ] || fail "meson install did not put ood-my-detector.so into $pluginsdir"
listed=$(ood plugins --kind detector)
grep -q "my-detector" <<<"$listed" || fail "ood does not list the installed my-detector: $listed"
ood run my-detector/pipeline.json --out installed-results -q >/dev/null
grep -q '"my-detector"' installed-results/metrics.json || fail "the installed my-detector has no results"

for kind in loss dataset augmentation model; do
  step "scaffold of a $kind: generate, build, test, run"
  ood new-plugin "my-$kind" --kind "$kind" >/dev/null
  meson setup "my-$kind/build" "my-$kind" >/dev/null
  meson test -C "my-$kind/build" || { cat "my-$kind/build/meson-logs/testlog.txt"; fail "the $kind scaffold's test"; }
  ood run --plugin-path "my-$kind/build" "my-$kind/pipeline.json" --out "my-$kind/results" -q >/dev/null
  [ -n "$(ls -A "my-$kind/results" 2>/dev/null)" ] || fail "ood run of the $kind scaffold wrote no results"
  only_entry_point "my-$kind/build/ood-my-$kind.so"
done

step "done"
