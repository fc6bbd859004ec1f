#!/usr/bin/env bash
# Builds hxfr with its optional parts off (scripts/test.sh runs it):
#
#   DIR/core  every feature option of meson_options.txt disabled: what is
#             left (protocol, transports, shared memory, client, hxfr-send,
#             the viewer's message code) must build with -Dwerror;
#             scripts/test.sh then runs its tests
#   DIR/host  every feature disabled but avcodec: the host side without
#             x264, GStreamer, libwebsockets, ...; it must build, and hxfrd
#             must say that libx264 is not in this build and default to
#             libopenh264
#
# The feature options are read from meson_options.txt, so one added later
# is turned off here without an edit. Usage: build-options-off.sh DIR
# (default build/off). Exits 1 on any failure; prints what it built and
# how long it took.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/off}
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)

features=$(python3 - <<'PY'
import re
text = open("meson_options.txt").read()
print(" ".join(re.findall(r"option\(\s*'([^']+)'\s*,\s*type\s*:\s*'feature'", text)))
PY
)
if [ -z "$features" ]; then
  echo "options-off: no feature option found in meson_options.txt"
  exit 1
fi

# build NAME ENABLED: every feature disabled except ENABLED (may be empty).
build() {
  local name=$1 keep=$2 args=(-Dwerror=true) f
  for f in $features; do
    if [ "$f" = "$keep" ]; then args+=("-D$f=enabled"); else args+=("-D$f=disabled"); fi
  done
  local b=$dir/$name
  mkdir -p "$dir"
  if [ -f "$b/build.ninja" ]; then
    meson setup --reconfigure "$b" "${args[@]}" >"$b.setup.log" 2>&1
  else
    meson setup "$b" "${args[@]}" >"$b.setup.log" 2>&1
  fi || { tail -n 30 "$b.setup.log"; echo "options-off: $name: meson setup ${args[*]} failed"; return 1; }
  if ! ninja -C "$b" -j "$jobs" >"$b.build.log" 2>&1; then
    tail -n 40 "$b.build.log"
    echo "options-off: $name: build with ${args[*]} failed"
    return 1
  fi
  echo "options-off: $name: built with ${args[*]}"
}

# The host build without x264 must say so, and not offer libx264.
check_no_x264() {
  local hxfrd=$dir/host/src/daemon/hxfrd out err
  out=$("$hxfrd" --list-encoders 2>"$dir/host.list.err")
  err=$(cat "$dir/host.list.err")
  if ! grep -q 'libx264 is not in this build' <<<"$err" || grep -q 'libx264' <<<"$out"; then
    echo "options-off: hxfrd built without x264 still lists libx264 or does not say it is left out:"
    printf '%s\n%s\n' "$out" "$err" | grep -v 'ffmpeg:' | head -n 10
    return 1
  fi
  if ! "$hxfrd" --help | grep -q -- '--encoder NAME .*(default libopenh264)'; then
    echo "options-off: hxfrd built without x264 does not default to libopenh264"
    return 1
  fi
  echo "options-off: host: hxfrd --list-encoders says libx264 is not in this build"
}

status=0
build core "" || status=1
if build host avcodec; then
  check_no_x264 || status=1
else
  status=1
fi
echo "options-off: $(($(date +%s) - start)) s"
exit $status
