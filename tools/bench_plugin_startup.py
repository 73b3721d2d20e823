#!/usr/bin/env python3
"""Start-up time of `ood validate` with in-process plugin loading (what ood did before
isolated scanning; OOD_PLUGIN_SCAN=off) and with the scanner and its cache, for the
build tree's plugins and with 100 generated plugins added: copies of
ood-temperature-scaling.so whose plugin name (and file name) is rewritten to
gen-plugin-NNN-xxxx. Their component keeps the name temperature-scaling (the compiler
builds that string from immediates), so they conflict with the built-in one, which the
pipeline does not use: start-up still scans (or loads) all 100 files.

usage: tools/bench_plugin_startup.py BUILD_DIR [RUNS]     (figures: docs/benchmarks.md)
"""
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

build = pathlib.Path(sys.argv[1]).resolve()
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
ood = build / "host" / "ood"
source = next(build.glob("plugins/detectors/temperature-scaling/ood-temperature-scaling.so"))

with tempfile.TemporaryDirectory() as tmp:
    work = pathlib.Path(tmp)
    pipeline = work / "p.json"
    pipeline.write_text(subprocess.run([str(ood), "demo", "--print-pipeline"], check=True,
                                       capture_output=True, text=True).stdout)
    gen = work / "gen"
    gen.mkdir()
    data = source.read_bytes()
    for i in range(100):
        # As long as b"temperature-scaling": the ELF layout stays.
        name = b"gen-plugin-%03d-xxxx" % i
        (gen / ("ood-" + name.decode() + ".so")).write_bytes(data.replace(b"temperature-scaling", name))

    def run(extra_args, env_extra, home):
        env = dict(os.environ, OOD_PLUGIN_PATH="", OMP_NUM_THREADS="1", OOD_HOME=str(home), **env_extra)
        start = time.perf_counter()
        r = subprocess.run([str(ood), *extra_args, "validate", str(pipeline)], env=env,
                           capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if r.returncode != 0:
            sys.exit(f"ood validate failed:\n{r.stdout}{r.stderr}")
        return elapsed

    rows = []
    for label, args in (("build tree's plugins", []), ("+ 100 generated plugins", ["--plugin-path", str(gen)])):
        home = work / ("home-" + str(len(rows)))
        before = [run(args, {"OOD_PLUGIN_SCAN": "off"}, home) for _ in range(runs)]
        cold = []
        for _ in range(max(1, runs // 2)):
            shutil.rmtree(home, ignore_errors=True)
            cold.append(run(args, {}, home))
        warm = [run(args, {}, home) for _ in range(runs)]
        rows.append((label, statistics.median(before), statistics.median(cold), statistics.median(warm)))

    print(f"median of {runs} runs, seconds (cold cache: median of {max(1, runs // 2)})")
    print("| plugins | before: all loaded in-process | after: first run (scan, cold cache) | after: cached |")
    print("|---|---:|---:|---:|")
    for label, before, cold, warm in rows:
        print(f"| {label} | {before:.3f} | {cold:.3f} | {warm:.3f} |")
