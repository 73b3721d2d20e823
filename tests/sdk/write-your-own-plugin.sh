#!/bin/sh
# README.md, "Write your own plugin": from an ood build to a third-party detector used
# in a pipeline, in five commands. CI runs this very file (tests/sdk/test_sdk_install.sh)
# in a scratch directory where `build` points to the ood build, with DESTDIR set so
# that step 1 installs into a staging directory, and that staging's bin/ and pkgconfig/
# first on PATH and PKG_CONFIG_PATH.
set -eu

meson install -C build
ood new-plugin my-detector --kind detector
meson setup my-detector/build my-detector
meson test -C my-detector/build
ood run --plugin-path my-detector/build my-detector/pipeline.json --out my-detector/results
