#!/usr/bin/env bash
# The two commands of the README, for a fresh Debian 12 machine:
#   tools/dev.sh demo [ood demo options]   install what is missing, build, run `ood demo`
#   tools/dev.sh test                      install what is missing, build, run every test
# Also: tools/dev.sh build | bench.
# Environment: BUILD_DIR (default: build), OOD_SKIP_APT=1 to never call apt-get.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
build_dir="${BUILD_DIR:-build}"

# Debian packages the build, the tests and the demo need.
packages=(
  build-essential meson ninja-build pkg-config ccache python3
  libtorch-dev libopenblas0-pthread
  libboost-dev libboost-program-options-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev zlib1g-dev
  libgtest-dev
  dataset-fashion-mnist
)

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
  bench)
    install_missing
    configure_and_build
    meson test -C "$build_dir" --benchmark --verbose "$@"
    ;;
  *)
    echo "usage: tools/dev.sh demo|test|build|bench [args]" >&2
    exit 2
    ;;
esac
