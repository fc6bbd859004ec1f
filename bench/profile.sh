#!/usr/bin/env bash
# Where hxfrd's CPU goes for one inline (or --shm) run: perf samples the
# daemon while hxfr-bench sends the desktop pattern, then prints the time
# per library and the top kernel symbols. bench/README.md quotes it.
#
#   bench/profile.sh [BUILD_DIR] [WxH] [WINDOW] [--shm]
#   bench/profile.sh build/release 1920x1080 4
#
# Needs perf (Debian package linux-perf, in scripts/deps.sh).
set -euo pipefail

build=${1:-build/release}
size=${2:-1920x1080}
window=${3:-4}
shm=${4:-}
command -v perf >/dev/null || { echo "profile: perf not installed (linux-perf)" >&2; exit 1; }

dir=$(mktemp -d /dev/shm/hxfr-profile.XXXXXX)
daemon=""
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

"$build/bench/hxfr-bench" prepare --variant desktop --size "$size" --frames 120 \
  --out "$dir/raw" >/dev/null
"$build/src/daemon/hxfrd" --listen "unix:$dir/hxfr.sock" --threads 2 \
  --ready-fd 3 3>"$dir/ready" 2>"$dir/hxfrd.log" &
daemon=$!
for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.05; done
perf record -q -o "$dir/perf.data" -p "$daemon" 2>/dev/null &
perf_pid=$!
sleep 0.3
"$build/bench/hxfr-bench" client --connect "unix:$dir/hxfr.sock" --raw "$dir/raw" \
  --size "$size" --frames 120 --window "$window" $shm |
  python3 -c 'import json, sys; j = json.load(sys.stdin); print("%.1f fps, client CPU %.2f ms/frame" % (j["fps"], j["client_cpu_ms_per_frame"]))'
kill -INT "$perf_pid"
wait "$perf_pid" || true
echo "== hxfrd samples per library"
perf report -i "$dir/perf.data" --no-children --sort dso -g none 2>/dev/null | grep '%' | head -8
echo "== top kernel symbols in hxfrd"
perf report -i "$dir/perf.data" --no-children --sort symbol -g none \
  --dsos '[kernel.kallsyms]' 2>/dev/null | grep '%' | head -6
