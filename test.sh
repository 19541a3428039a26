#!/usr/bin/env bash
# The test command (README: "Running the tests"). On a fresh Debian machine
# with only a Rust toolchain it first installs every package the tests call
# when it is missing, then runs every test of the workspace:
#
#   ./test.sh                 install what is missing, then cargo test --workspace
#   ./test.sh --deps          only install what is missing
#   ./test.sh -p faxsend      arguments go to cargo test (instead of --workspace)
#
# Debian packages come from apt-get (as root, or through sudo). Python
# packages (Pillow, reportlab: the tests make real documents with them;
# aiosmtpd, the tests' mail server) go into a virtual environment under
# target/, so the system's Python is left
# alone; the tests find it through FAXMESH_PYTHON.
set -euo pipefail
cd "$(dirname "$0")"

apt_install() {
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "test.sh: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

need=()
# tool:package pairs, one per tool the tests (or .ci/run) start.
for pair in \
  tiffinfo:libtiff-tools tiffcp:libtiff-tools tiff2pdf:libtiff-tools \
  pdftoppm:poppler-utils ps2pdf:ghostscript gs:ghostscript \
  redis-server:redis-server redis-cli:redis-tools \
  systemd-analyze:systemd python3:python3 openssl:openssl \
  ip:iproute2 tc:iproute2 nft:nftables fallocate:util-linux mount:mount; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# ps2pdf needs fonts for the standard PostScript fonts.
[ -d /usr/share/fonts/type1/urw-base35 ] || [ -d /usr/share/fonts/opentype/urw-base35 ] ||
  need+=(fonts-urw-base35)
if [ ${#need[@]} -gt 0 ]; then
  # shellcheck disable=SC2207
  need=($(printf '%s\n' "${need[@]}" | sort -u))
  apt_install "${need[@]}"
fi

venv=target/test-python
if ! "$venv/bin/python" -c 'import PIL, reportlab, aiosmtpd' >/dev/null 2>&1; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  echo "test.sh: installing Pillow, reportlab and aiosmtpd into $venv"
  # cargo tags its target directory (CACHEDIR.TAG) only when it makes the
  # directory itself, and the test harness finds the target directory by
  # that tag: when the venv comes first, write the tag as cargo would.
  mkdir -p target
  [ -e target/CACHEDIR.TAG ] || printf '%s\n' \
    'Signature: 8a477f597d28d172789f06886806bc55' \
    '# This file is a cache directory tag created by cargo.' \
    '# For information about cache directory tags see https://bford.info/cachedir/' \
    > target/CACHEDIR.TAG
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    'pillow>=10' 'reportlab>=4' 'aiosmtpd>=1.4'
fi
export FAXMESH_PYTHON="$PWD/$venv/bin/python"

if [ "${1:-}" = "--deps" ]; then
  exit 0
fi
if [ $# -eq 0 ]; then
  set -- --workspace
fi
exec cargo test --locked "$@"
