#!/usr/bin/env bash
# The hxfr demo (README's main command).
#
#   1. installs missing Debian packages (scripts/deps.sh)
#   2. builds a release build in build/release
#   3. starts hxfrd on a private socket in a fresh temporary folder
#   4. starts hxfr-view (browser gateway) on http://127.0.0.1:8080 and
#      prints the URL to open: the page shows scanout 0 live
#   5. runs hxfr-send: the desktop test pattern, 1920x1080 at 60 fps for
#      10 s, 4 frames in flight, published into scanout 0 (so the browser
#      sees it, encoded once for every viewer); the H.264 that comes back
#      to the sender also goes to ./out.h264 (in the folder you run this
#      from)
#   6. prints the summary and how to play the file, and stops the viewer
#      and the daemon (SIGTERM, then waits), also on Ctrl-C or failure
#
# Options (or environment variables):
#   --size WxH       HXFR_DEMO_SIZE      frame size (1920x1080)
#   --fps N          HXFR_DEMO_FPS       frames per second (60)
#   --seconds S      HXFR_DEMO_SECONDS   duration (10); 0 = until Ctrl-C
#   --source SRC     HXFR_DEMO_SOURCE    hxfr-send source (pattern:desktop)
#   --window N       HXFR_DEMO_WINDOW    frames in flight (4)
#   --output FILE    HXFR_DEMO_OUTPUT    output file (out.h264)
#   --http HOST:PORT HXFR_DEMO_HTTP      where hxfr-view serves (127.0.0.1:8080)
#   --no-viewer                          no hxfr-view, no scanout: plain
#                                        pull-mode encoding into the file
#   --json                               also print the summary as JSON
# Example: scripts/demo.sh --size 1280x720 --seconds 5
#          scripts/demo.sh --seconds 0      # watch in the browser until Ctrl-C
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
size=${HXFR_DEMO_SIZE:-1920x1080}
fps=${HXFR_DEMO_FPS:-60}
seconds=${HXFR_DEMO_SECONDS:-10}
source=${HXFR_DEMO_SOURCE:-pattern:desktop}
window=${HXFR_DEMO_WINDOW:-4}
output=${HXFR_DEMO_OUTPUT:-out.h264}
http=${HXFR_DEMO_HTTP:-127.0.0.1:8080}
viewer=1
json=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --fps) fps=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --source) source=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --output) output=$2; shift 2 ;;
    --http) http=$2; shift 2 ;;
    --no-viewer) viewer=0; shift ;;
    --json) json=(--json); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ && $fps =~ ^[0-9]+$ ]] ||
  { echo "demo: --seconds and --fps take whole numbers" >&2; exit 2; }

. "$root/scripts/lib.sh"

release_build "$(nproc 2>/dev/null || echo 2)"
hxfrd=$build/src/daemon/hxfrd
send=$build/tools/hxfr-send
view=$build/src/view/hxfr-view
for b in "$hxfrd" "$send"; do
  [ -x "$b" ] || { echo "demo: $b was not built" >&2; exit 1; }
done

# A fresh private folder for the socket: never a shared, possibly stale path.
work=$(mktemp -d "${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/hxfr-demo.XXXXXX")
sock=$work/hxfr.sock
daemon_pid=""
view_pid=""
cleanup() {
  if [ -n "$view_pid" ] && kill -0 "$view_pid" 2>/dev/null; then
    kill -TERM "$view_pid" 2>/dev/null || true
    wait "$view_pid" 2>/dev/null || true
  fi
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting hxfrd on unix:$sock"
# The daemon runs in its own session, out of reach of the terminal's Ctrl-C:
# Ctrl-C stops hxfr-send (which then prints its summary), and the EXIT trap
# stops the daemon with SIGTERM. (setsid does not fork here: the subshell is
# no process group leader, so $! is the daemon's pid.)
( exec setsid "$hxfrd" --listen "unix:$sock" 2>"$work/hxfrd.log" ) &
daemon_pid=$!
for _ in $(seq 100); do
  [ -S "$sock" ] && break
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.05
done
if ! [ -S "$sock" ]; then
  echo "demo: hxfrd did not start:" >&2
  cat "$work/hxfrd.log" >&2
  exit 1
fi

scanout=()
if [ "$viewer" = 1 ] && ! [ -x "$view" ]; then
  echo "demo: hxfr-view was not built (libwebsockets missing?); running without the viewer" >&2
  viewer=0
fi
if [ "$viewer" = 1 ]; then
  step "starting hxfr-view on http://$http"
  # Its own session too: Ctrl-C reaches hxfr-send only; the EXIT trap
  # stops the viewer.
  ( exec setsid "$view" --connect "unix:$sock" --http "$http" --scanout 0 \
      >"$work/view.out" 2>"$work/view.log" ) &
  view_pid=$!
  url=""
  for _ in $(seq 100); do
    url=$(sed -n 's/^hxfr-view: serving \(http[^ ]*\).*/\1/p' "$work/view.out")
    [ -n "$url" ] && break
    kill -0 "$view_pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$url" ]; then
    echo "demo: hxfr-view did not start (is $http in use? try --http 127.0.0.1:0):" >&2
    cat "$work/view.log" >&2
    exit 1
  fi
  cat >&2 <<MSG

    Open ${url}scanout/0 in a browser (Chromium or another with WebCodecs)
    to watch scanout 0 live. The stream starts when hxfr-send publishes.

MSG
  scanout=(--scanout 0)
fi

# --seconds 0: no frame limit, until Ctrl-C.
frames=$((fps * seconds))
if [ "$seconds" -eq 0 ]; then
  frames=0
  duration_text="until Ctrl-C"
  # Ctrl-C is the normal end here: hxfr-send prints its summary and the
  # demo finishes as usual.
  trap 'true' INT
else
  duration_text="for $seconds s"
fi
step "hxfr-send: $source, $size at $fps fps $duration_text -> $output${scanout:+ and scanout 0}"
status=0
"$send" --connect "unix:$sock" --source "$source" --size "$size" --fps "$fps" \
  --frames "$frames" --window "$window" --output "$output" "${scanout[@]}" "${json[@]}" \
  || status=$?
if [ "$status" -eq 130 ] && [ "$seconds" -eq 0 ]; then
  status=0
fi
if [ "$status" -eq 130 ]; then
  echo "demo: interrupted; $output holds what was encoded so far" >&2
  exit 130
elif [ "$status" -ne 0 ]; then
  echo "demo: hxfr-send failed (exit $status); daemon log:" >&2
  tail -n 20 "$work/hxfrd.log" >&2
  exit "$status"
fi

cat >&2 <<MSG

Wrote $output (H.264 Annex B). Play it with:
    ffplay $output
or turn it into an MP4 with:
    ffmpeg -framerate $fps -i $output -c copy out.mp4
MSG
