#!/usr/bin/env bash
# Installs the Debian 12 packages hxfr needs to build, test, demo and
# benchmark. Idempotent: when everything is present it prints nothing and
# touches nothing. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential pkg-config meson ninja-build python3 git
  clang-14 libclang-rt-14-dev clang-format-14
  libavcodec-dev libavutil-dev libavformat-dev libswscale-dev libyuv-dev libx264-dev ffmpeg
  libwebsockets-dev
  libgstrtspserver-1.0-dev janus
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  busybox-static cpio  # qemu-system-x86: from bookworm-backports, below
  libdrm-dev
  chromium
  gnuplot-nox
  linux-perf
)

# From Debian's bookworm-backports suite: QEMU 10 (bookworm's QEMU 7.2
# refuses vhost-user-gpu without KVM, and the machines here boot guests
# under TCG only), with its display modules (qemu-system-gui: the D-Bus
# display the GPU VM test and hxfr-gpu's hot-plug use). Installed when the
# installed version is older than this.
backports_packages=(qemu-system-x86 qemu-system-gui)
backports_min_version="1:10.0"

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
old_backports=()
for p in "${backports_packages[@]}"; do
  version=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$p" 2>/dev/null || true)
  if [ "${version%% *}" != "installed" ] ||
      ! dpkg --compare-versions "${version#* }" ge "$backports_min_version"; then
    old_backports+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && [ ${#old_backports[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null ||
    { echo "deps: need root or sudo to install: ${missing[*]} ${old_backports[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}

# Prints "URI SIGNED-BY" of the first apt source that serves the bookworm
# suite itself (deb822 *.sources stanzas first, then one-line sources.list
# entries; SIGNED-BY is "-" when the entry names no keyring), so that
# backports come from the mirror this machine already uses.
bookworm_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ / bookworm / && uris != "") {
          split(uris, u, " "); print u[1], (signed == "" ? "-" : signed); found = 1; exit
        }
        types = suites = uris = signed = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
        if (key == "types") types = $0
        else if (key == "suites") suites = $0
        else if (key == "uris") uris = $0
        else if (key == "signed-by") signed = $0
      }
      END { if (!found) flush() }' "$f" | head -n 1 | grep . && return 0
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '
      $1 != "deb" { next }
      {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == "bookworm") { print $i, "-"; exit }
      }' "$f" | head -n 1 | grep . && return 0
  done
  return 1
}

# Adds bookworm-backports (main) from that mirror unless some apt source
# already names the suite. Its packages keep apt's default priority for
# backports (100): only what is asked for with -t comes from there.
add_backports() {
  local mirror signed
  if grep -rqs --include='*.list' --include='*.sources' --include='sources.list' \
      -E '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d; then
    return 0
  fi
  read -r mirror signed < <(bookworm_mirror) ||
    { echo "deps: no apt source names Debian bookworm; cannot add bookworm-backports" >&2; return 1; }
  [ "$signed" = "-" ] && signed=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deps: adding bookworm-backports from $mirror" >&2
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "$mirror" "$signed" | $sudo tee /etc/apt/sources.list.d/hxfr-bookworm-backports.sources >/dev/null
}

[ ${#old_backports[@]} -eq 0 ] || add_backports
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
if [ ${#missing[@]} -ne 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi
if [ ${#old_backports[@]} -ne 0 ]; then
  echo "deps: installing ${old_backports[*]} from bookworm-backports" >&2
  apt_install -t bookworm-backports "${old_backports[@]}"
fi
