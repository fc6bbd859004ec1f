# Shared steps of scripts/bench.sh and scripts/demo.sh; sourced, not run.
# Expects $root (the source tree) to be set by the sourcing script.

step() { printf '\n== %s\n' "$*" >&2; }

# Installs missing Debian packages, then configures (or reconfigures) and
# builds the release build in $root/build/release with $1 jobs. Sets $build
# to that folder for the caller.
release_build() {
  local jobs=$1

  step "dependencies (scripts/deps.sh)"
  bash "$root/scripts/deps.sh"

  step "release build in build/release"
  build=$root/build/release
  if [ -f "$build/build.ninja" ]; then
    meson setup --reconfigure "$build" "$root" --buildtype=release >/dev/null
  else
    meson setup "$build" "$root" --buildtype=release >/dev/null
  fi
  ninja -C "$build" -j "$jobs" >/dev/null
}
