#!/usr/bin/env bash
# The two commands of the README, for a fresh Debian 12 machine:
#   tools/dev.sh demo [ood demo options]   install what is missing, build, run `ood demo`
#   tools/dev.sh test                      install what is missing, build, run every test
# Also: tools/dev.sh build | bench.
#   tools/dev.sh sanitize [meson test args]  ASan+UBSan build in build-sanitize, every test
#   tools/dev.sh fuzz SECONDS              libFuzzer targets (clang) in build-fuzz, each run
#                                          SECONDS; exit 0 only if none crashed
# Environment: BUILD_DIR (default: build), OOD_SKIP_APT=1 to never call apt-get.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
build_dir="${BUILD_DIR:-build}"
# ccache caches compiles that use a precompiled header (the test programs',
# tests/pch/tests_pch.hpp) only with this sloppiness; without it they always compile.
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros}"

# Debian packages the build, the tests and the demo need.
packages=(
  build-essential meson ninja-build pkg-config ccache python3
  libtorch-dev libopenblas0-pthread
  libboost-dev libboost-program-options-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev zlib1g-dev
  libcurl4-openssl-dev libssl-dev
  libarchive-dev libturbojpeg0-dev libpng-dev libmatio-dev
  libgtest-dev
  dataset-fashion-mnist
)

# Only for `tools/dev.sh fuzz`: clang and its libFuzzer runtime.
fuzz_packages=(clang libfuzzer-14-dev)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "${OOD_SKIP_APT:-0}" = 1 ]; then
    echo "missing Debian packages: ${missing[*]} (OOD_SKIP_APT=1: not installing)" >&2
    return 1
  fi
  echo "installing: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

configure_and_build() {
  if [ ! -f "$build_dir/build.ninja" ]; then
    # Release (no -g): debug info doubles LibTorch compile times. Wraps are fallbacks
    # only and are never downloaded.
    meson setup "$build_dir" --buildtype=release --wrap-mode=nodownload
  fi
  ninja -C "$build_dir"
}

# `meson test` prints "Ok: N Fail: N"; CI reads a last line "N passed, N failed",
# counted per GoogleTest case from meson's JUnit log.
run_tests() {
  local status=0
  meson test -C "$build_dir" --print-errorlogs --num-processes 2 "$@" || status=$?
  python3 - "$build_dir/meson-logs" <<'PY' || status=1
import json, os, sys, xml.etree.ElementTree as ET
logs = sys.argv[1]
passed = failed = 0
try:
    root = ET.parse(os.path.join(logs, "testlog.junit.xml")).getroot()
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is None:
            passed += 1
    # A test program that crashed or timed out has no (or not all) per-case results:
    # it counts as at least one failure of its own.
    broken = 0
    with open(os.path.join(logs, "testlog.json")) as f:
        for line in f:
            result = json.loads(line).get("result")
            if result not in ("OK", "SKIP", "EXPECTEDFAIL"):
                broken += 1
    failed = max(failed, broken)
except Exception as e:
    print(f"cannot read the test logs: {e}")
    failed = max(failed, 1)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
  return $status
}

# The fuzz targets, built with clang outside Meson (meson_options.txt has no fuzzing
# switch, and the rest of the build stays gcc): the SDK and core sources the entry
# functions reach, instrumented with -fsanitize=fuzzer-no-link,address,undefined.
fuzz_targets=(pipeline torch_file idx archive image numpy pickle mat)

build_fuzzers() {
  local out="build-fuzz"
  mkdir -p "$out"
  local sources=(
    sdk/src/error.cpp sdk/src/kind.cpp sdk/src/params.cpp sdk/src/tensor_dict.cpp sdk/src/interfaces.cpp sdk/src/checks.cpp
    sdk/src/io/idx.cpp sdk/src/io/legacy_format.cpp sdk/src/io/pickle_reader.cpp
    sdk/src/io/pickle_writer.cpp sdk/src/io/torch_file.cpp sdk/src/io/zip_format.cpp
    core/src/pipeline.cpp core/src/validation.cpp core/src/registry.cpp core/src/suggest.cpp
    core/src/transform_presets.cpp sdk/src/download/weights.cpp sdk/src/download/download.cpp sdk/src/log.cpp
    sdk/src/io/archive.cpp sdk/src/io/image.cpp sdk/src/io/numpy.cpp sdk/src/io/python_pickle.cpp sdk/src/io/mat.cpp
    tests/fuzz/fuzz_entries.cpp
  )
  local cxx="clang++"
  command -v ccache >/dev/null && cxx="ccache clang++"
  # A generated ninja file: parallel, incremental (depfiles), no Meson option needed.
  {
    echo "root = $here"
    echo "cxx = $cxx"
    echo "flags = -std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined" \
         "-D_GLIBCXX_USE_CXX11_ABI=1 -DBOOST_DLL_USE_STD_FS '-DOOD_VERSION=\"fuzz\"'" \
         "-DSPDLOG_SHARED_LIB -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL" \
         "-I\$root/sdk/include -I\$root/core/include -I\$root/tests/fuzz" \
         "-isystem /usr/include/torch/csrc/api/include" \
         "-include ATen/core/ivalue.h"  # clang 14 + libstdc++ 12: ATen/Tensor.h alone leaves IValue incomplete
    echo "libs = -ltorch -ltorch_cpu -lc10 -lspdlog -lfmt -lz -lcurl -lcrypto -larchive -lturbojpeg -lpng16 -lmatio -lpthread"
    echo "rule cxx"
    echo "  command = \$cxx \$flags -MD -MF \$out.d -c \$in -o \$out"
    echo "  depfile = \$out.d"
    echo "  deps = gcc"
    echo "  description = CXX \$in"
    echo "rule link"
    echo "  command = \$cxx \$flags -fsanitize=fuzzer \$in -o \$out \$libs"
    echo "  description = LINK \$out"
    local objects="" src obj t
    for src in "${sources[@]}"; do
      obj="obj/$(echo "$src" | tr / _).o"
      objects+=" $obj"
      echo "build $obj: cxx \$root/$src"
    done
    for t in "${fuzz_targets[@]}"; do
      echo "build obj/fuzz_$t.o: cxx \$root/tests/fuzz/fuzz_$t.cpp"
      echo "build fuzz_$t: link obj/fuzz_$t.o$objects"
    done
  } > "$out/build.ninja"
  nice -n 10 ninja -C "$out" -j "${FUZZ_JOBS:-2}"
}

# Runs each target for $1 seconds on a scratch copy of its corpus (the repository's
# corpus only takes files a person adds). A crash is copied to tests/fuzz/crashes/.
run_fuzzers() {
  local seconds="$1" failed=0 t rc
  for t in "${fuzz_targets[@]}"; do
    local work="build-fuzz/corpus-$t" artifacts="build-fuzz/artifacts-$t"
    rm -rf "$artifacts"
    mkdir -p "$work" "$artifacts"
    cp -n tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
    echo "== fuzz $t for ${seconds}s" >&2
    rc=0
    ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
      "build-fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 -max_len=262144 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" > "build-fuzz/fuzz-$t.log" 2>&1 || rc=$?
    tail -n 12 "build-fuzz/fuzz-$t.log" >&2
    if [ "$rc" != 0 ] || compgen -G "$artifacts/*" >/dev/null; then
      failed=1
      mkdir -p tests/fuzz/crashes/"$t"
      cp "$artifacts"/* tests/fuzz/crashes/"$t"/ 2>/dev/null || true
      echo "fuzz $t: FAILED (exit $rc); inputs saved in tests/fuzz/crashes/$t/ replay in the unit tests" >&2
    fi
  done
  if [ "$failed" = 0 ]; then
    echo "fuzz: no crash (${#fuzz_targets[@]} targets x ${seconds}s)"
  else
    echo "fuzz: crashed"
  fi
  return "$failed"
}

command="${1:-}"
shift || true
case "$command" in
  demo)
    install_missing
    configure_and_build
    exec "$build_dir/host/ood" demo "$@"
    ;;
  test)
    install_missing
    configure_and_build
    run_tests "$@"
    ;;
  build)
    install_missing
    configure_and_build
    ;;
  sanitize)
    install_missing
    build_dir="build-sanitize"
    if [ ! -f "$build_dir/build.ninja" ]; then
      # gcc's ASan+UBSan. b_lundef=false: sanitized shared libraries leave the runtime's
      # symbols to the executable.
      meson setup "$build_dir" --buildtype=release --wrap-mode=nodownload \
        -Db_sanitize=address,undefined -Db_lundef=false
    fi
    nice -n 10 ninja -C "$build_dir"
    # LibTorch keeps allocations until exit (leak reports are noise); any ASan or UBSan
    # report aborts the test program, which then fails.
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
    export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
    run_tests --timeout-multiplier 4 "$@"
    ;;
  fuzz)
    seconds="${1:-}"
    if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
      echo "usage: tools/dev.sh fuzz SECONDS" >&2
      exit 2
    fi
    packages+=("${fuzz_packages[@]}")
    install_missing
    build_fuzzers
    run_fuzzers "$seconds"
    ;;
  bench)
    install_missing
    configure_and_build
    meson test -C "$build_dir" --benchmark --verbose "$@"
    ;;
  *)
    echo "usage: tools/dev.sh demo|test|build|bench|sanitize [args] | fuzz SECONDS" >&2
    exit 2
    ;;
esac
