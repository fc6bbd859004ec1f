#!/usr/bin/env bash
# Boots the hxfr test guest (the one the VM tests use) with its console on
# this terminal, for debugging. The guest has the same devices as the tests:
# virtio-serial ports org.hxfr.0 and org.hxfr.out (a host file), user-mode
# networking (the host is 10.0.2.2) and a 4 MiB ivshmem region. When hxfrd
# is built, a fresh host hxfrd serves all three paths (org.hxfr.0's socket,
# a TCP port it prints, the ivshmem file as region vm0); --serial PATH
# connects org.hxfr.0 elsewhere instead. The guest binaries are in
# /hxfr/bin; see docs/vm.md for the commands.
#
#   scripts/vm-shell.sh [-B BUILDDIR] [--serial PATH] [--out FILE] [--shm FILE] [-- QEMU ARGS]
#
# BUILDDIR defaults to build/dev; it is built first. Leave the guest with
# `poweroff -f` (or Ctrl-A x).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/dev"
if [ "${1:-}" = "-B" ]; then
  build=$(realpath "$2")
  shift 2
fi
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" >/dev/null
fi
ninja -C "$build" -j2 >/dev/null

export HXFR_VM_CACHE="$build/tests/vm/guest"
export HXFR_VM_PROBE="$build/tests/vm/hxfr-vm-probe"
[ -x "$build/src/daemon/hxfrd" ] && export HXFRD="$build/src/daemon/hxfrd"
[ -x "$build/tools/hxfr-send" ] && export HXFR_SEND="$build/tools/hxfr-send"
exec python3 "$root/tests/vm/vm.py" shell "$@"
