#!/usr/bin/env bash
# Formatting check, run by scripts/test.sh: every tracked .c and .h file
# must be exactly what clang-format 14 (Debian 12's; .clang-format holds
# the style) makes of it. Prints each file that differs and exits 1 if any
# does; `clang-format -i FILE` fixes one. One clang-format process over the
# whole tree: a few seconds.
set -uo pipefail
cd "$(dirname "$0")/.."

fmt=clang-format-14
command -v "$fmt" >/dev/null || fmt=clang-format
if ! command -v "$fmt" >/dev/null; then
  echo "format: clang-format-14 is not installed (scripts/deps.sh installs it)"
  exit 1
fi
if ! files=$(git ls-files -- '*.c' '*.h' 2>/dev/null); then
  echo "format: not a git checkout: cannot tell the tracked files"
  exit 1
fi
if [ -z "$files" ]; then
  echo "format: no .c or .h file is tracked"
  exit 1
fi
# --dry-run -Werror reports "FILE:LINE:COL: error: code should be
# clang-formatted" for every difference; a file that cannot be read or
# parsed is an error too.
out=$(printf '%s\n' "$files" | tr '\n' '\0' | xargs -0 "$fmt" --dry-run -Werror 2>&1)
status=$?
bad=$(printf '%s\n' "$out" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*/\1/p' | sort -u)
count=$(printf '%s\n' "$files" | wc -l)
if [ "$status" -ne 0 ] || [ -n "$bad" ]; then
  if [ -n "$bad" ]; then
    printf 'format: not clang-formatted: %s\n' $bad
  else
    printf '%s\n' "$out" | tail -n 20
  fi
  echo "format: $(printf '%s\n' $bad | grep -c .) of $count files differ (clang-format -i FILE)"
  exit 1
fi
echo "format: all $count tracked .c/.h files are clang-formatted"
