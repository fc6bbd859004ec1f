#!/bin/sh
# Compiles every public header in include/hxfr/ on its own, so each one
# includes what it uses. The list is read at run time: headers added later
# are covered without touching this script.
#   check-headers.sh SOURCE_ROOT [COMPILER...]
set -u
root=$1
shift
[ "$#" -gt 0 ] || set -- cc
n=0
failed=0
for h in "$root"/include/hxfr/*.h; do
  [ -f "$h" ] || continue
  n=$((n + 1))
  name=$(basename "$h")
  if printf '#include <hxfr/%s>\n' "$name" |
      "$@" -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I "$root/include" -x c -; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    failed=$((failed + 1))
  fi
  # A second include of the same header must be harmless (include guard).
  n=$((n + 1))
  if printf '#include <hxfr/%s>\n#include <hxfr/%s>\n' "$name" "$name" |
      "$@" -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I "$root/include" -x c -; then
    echo "ok $n - $name twice"
  else
    echo "not ok $n - $name twice"
    failed=$((failed + 1))
  fi
done
echo "1..$n"
[ "$n" -gt 0 ] && [ "$failed" -eq 0 ]
