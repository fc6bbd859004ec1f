#!/usr/bin/env bash
# The hxfr benchmark (issue 9): every contender side by side in one run.
#
#   1. installs missing Debian packages (scripts/deps.sh)
#   2. builds a release build in build/release
#   3. runs bench/run.py: floor (in-process libyuv + libx264), hxfrd inline
#      over UNIX (window 1 and 4) and TCP, hxfrd shared memory, ffmpeg CLI,
#      GStreamer x264enc and GStreamer vsockenc through hxfrd, on the test
#      pattern at 1080p and 4K (plus static and busy variants), then a
#      scaling run of 1-8 clients at 720p30
#   4. writes bench/results/latest.json, latest.md and latest.png
#
# About 6-10 minutes on a 2-core machine. Extra arguments go to run.py
# (--only 1080p-desktop, --no-scaling, --smoke, --out DIR); see
# bench/README.md for what every figure means.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"

release_build 2

step "benchmark (bench/run.py)"
exec python3 "$root/bench/run.py" --build "$build" "$@"
