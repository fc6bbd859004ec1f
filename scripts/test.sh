#!/usr/bin/env bash
# The whole hxfr test suite, as CI runs it (.ci/run calls exactly this).
#
#   1. installs missing Debian packages (scripts/deps.sh)
#   2. builds with warnings as errors and runs every meson test
#      (unit, integration against the real daemon, VM and browser tests)
#   3. rebuilds with ASan+UBSan (leak detection on) and runs the suite again
#   4. builds the libFuzzer targets with clang and runs each one for a
#      bounded time (HXFR_FUZZ_SECONDS, default 30) from its seed corpus
#
# Prints one closing line "N passed, N failed" and exits non-zero on any
# failure. HXFR_TEST_QUICK=1 skips steps 3 and 4 (for local iteration).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
failures=()

# Adds the results of one meson test run (from its JSON log) to the totals.
count_meson() {
  local log=$1 label=$2 p f
  if [ ! -f "$log" ]; then
    failed=$((failed + 1)); failures+=("$label: no test log"); return
  fi
  read -r p f < <(python3 - "$log" <<'PY'
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL", "SKIP"):
        p += 1
    else:
        f += 1
print(p, f)
PY
)
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] || failures+=("$label: $f test(s) failed")
}

setup() {
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
  else
    mkdir -p "$(dirname "$dir")"
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
  fi || { cat "$dir.setup.log"; return 1; }
}

run_suite() {
  local dir=$1 label=$2; shift 2
  if ! ninja -C "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
    tail -n 60 "$dir.build.log"
    failed=$((failed + 1)); failures+=("$label: build failed"); return
  fi
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "$@"
  count_meson "$dir/meson-logs/testlog.json" "$label"
}

echo "== [1/3] build (werror) and test"
if setup build/ci -Dwerror=true; then
  run_suite build/ci "suite"
else
  failed=$((failed + 1)); failures+=("suite: meson setup failed")
fi

if [ "${HXFR_TEST_QUICK:-0}" != "1" ]; then
  echo "== [2/3] ASan+UBSan build and test"
  if setup build/asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
      -Dbuildtype=debug -Dvm_tests=disabled; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      run_suite build/asan "asan" --no-suite slow --timeout-multiplier 4
  else
    failed=$((failed + 1)); failures+=("asan: meson setup failed")
  fi

  echo "== [3/3] fuzz"
  secs=${HXFR_FUZZ_SECONDS:-30}
  if CC=clang-14 setup build/fuzz -Dfuzz=true -Db_lundef=false -Dbuildtype=debugoptimized \
      -Davcodec=disabled -Dgstreamer=disabled -Dwebsockets=disabled -Dvm_tests=disabled \
      && ninja -C build/fuzz -j "$jobs" >build/fuzz.build.log 2>&1; then
    for bin in build/fuzz/fuzz/fuzz_*; do
      # meson puts a private directory (fuzz_NAME.p) beside each target.
      [ -f "$bin" ] && [ -x "$bin" ] || continue
      name=$(basename "$bin")
      work=$(mktemp -d)
      [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
      if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "$work" >"build/$name.log" 2>&1; then
        echo "fuzz $name: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "build/$name.log" | grep -o '[0-9]*$') runs in ${secs}s)"
        passed=$((passed + 1))
      else
        tail -n 40 "build/$name.log"
        failed=$((failed + 1)); failures+=("fuzz $name: crashed (see build/$name.log)")
      fi
      rm -rf "$work"
    done
  else
    [ -f build/fuzz.build.log ] && tail -n 40 build/fuzz.build.log
    failed=$((failed + 1)); failures+=("fuzz: build failed")
  fi
fi

echo
for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
