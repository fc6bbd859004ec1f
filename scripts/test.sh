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
# Counts every TAP subtest (scripts/testcount.py): a skipped test is counted
# as skipped, never as passed. Prints each failure and skip, then one closing
# line "N passed, N failed, N skipped", and exits non-zero on any failure.
# The GStreamer, browser and VM tests can run on this machine, so they may
# not skip here or be missing from the build: that is a failure, unless
# HXFR_TEST_ALLOW_SKIP=1 (a developer's machine without QEMU, Chromium or
# GStreamer: those tests are then reported as skipped; CI never sets it).
# Before step 2, scripts/check-format.sh checks that every tracked .c/.h is
# clang-formatted; after step 3, scripts/build-options-off.sh builds with
# every optional part off (and once with only avcodec on) and the tests of
# that core build run (about 1 to 2 minutes on 2 cores).
# HXFR_TEST_QUICK=1 skips steps 3 and 4 and the options-off builds (for
# local iteration).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
allow_skip=${HXFR_TEST_ALLOW_SKIP:-0}
if ! bash scripts/deps.sh; then
  if [ "$allow_skip" != "1" ]; then
    echo "0 passed, 1 failed, 0 skipped"; exit 1
  fi
  echo "deps: some packages are missing; HXFR_TEST_ALLOW_SKIP=1: their tests skip or are not built"
fi

jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
skipped=0
failures=()
skips=()

# Tests that can run on this machine may not skip in CI (LABEL=meson test
# name glob); scripts/testcount.py enforces it.
no_skip=(--no-skip GStreamer=gst --no-skip browser='view-browser*' --no-skip VM='vm-*'
         --no-skip fanout='fanout-*')

# Adds the results of one meson test run (its JSON log) to the totals.
# Extra arguments go to scripts/testcount.py (--present: the no-skip groups
# must be in this build).
count_meson() {
  local dir=$1 label=$2 log=$1/meson-logs/testlog.json line p f s; shift 2
  if [ ! -f "$log" ] || ! meson introspect "$dir" --tests >"$dir.tests.json"; then
    failed=$((failed + 1)); failures+=("$label: no test log"); return
  fi
  local args=("${no_skip[@]}" "$@")
  [ "$allow_skip" = "1" ] && args+=(--allow-skip)
  while IFS= read -r line; do
    case $line in
      "failed: "*) failures+=("$label: ${line#failed: }") ;;
      "skipped: "*) skips+=("$label: ${line#skipped: }") ;;
      *) read -r p f s <<<"$line" ;;
    esac
  done < <(python3 scripts/testcount.py "$log" "$dir.tests.json" "${args[@]}" \
           || echo "failed: scripts/testcount.py failed")
  if [ -z "${p:-}" ]; then
    failed=$((failed + 1)); failures+=("$label: could not count the test log"); return
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
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

# run_suite DIR LABEL [--present] [meson test options]
run_suite() {
  local dir=$1 label=$2 present=; shift 2
  if [ "${1:-}" = "--present" ]; then present=--present; shift; fi
  if ! ninja -C "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
    tail -n 60 "$dir.build.log"
    failed=$((failed + 1)); failures+=("$label: build failed"); return
  fi
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "$@"
  count_meson "$dir" "$label" $present
}

echo "== format (scripts/check-format.sh)"
if bash scripts/check-format.sh; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); failures+=("format: files differ from .clang-format (above)")
fi

echo "== [1/3] build (werror) and test"
if setup build/ci -Dwerror=true; then
  run_suite build/ci "suite" --present
else
  failed=$((failed + 1)); failures+=("suite: meson setup failed")
fi

if [ "${HXFR_TEST_QUICK:-0}" != "1" ]; then
  echo "== [2/3] ASan+UBSan build and test"
  if setup build/asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
      -Dbuildtype=debug -Dvm_tests=disabled; then
    # The sanitizers make everything several times slower: meson's timeout
    # per test binary and the harness's alarm per test (tests/harness.h)
    # grow by the same factor.
    asan_slowdown=4
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    HXFR_TEST_TIMEOUT_SCALE=$asan_slowdown \
      run_suite build/asan "asan" --no-suite slow --timeout-multiplier "$asan_slowdown"
  else
    failed=$((failed + 1)); failures+=("asan: meson setup failed")
  fi

  echo "== optional parts off (scripts/build-options-off.sh): builds, then the core's tests"
  if bash scripts/build-options-off.sh build/off; then
    passed=$((passed + 1))
    run_suite build/off/core "options-off"
  else
    failed=$((failed + 1)); failures+=("options-off: a build with optional parts off failed (above)")
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
for f in "${skips[@]+"${skips[@]}"}"; do echo "SKIPPED: $f"; done
for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
