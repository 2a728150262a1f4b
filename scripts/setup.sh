#!/usr/bin/env bash
# Installs what docfs needs on Debian/Ubuntu: the FUSE 3 packages (pyfuse3 compiles against
# libfuse3), rsync and attr (used by the mount tests), and a virtual environment in .venv with
# docfs and the extras named in $1 (e.g. "test"). Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-emulators}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
# apt_install LABEL APT-OPTIONS… -- PACKAGES…: install those of PACKAGES that are missing. A
# freshly booted machine often has another apt (unattended-upgrades) holding the lock: wait for
# it rather than fail at once
apt_install() {
  local label="$1" options=() missing=() p
  shift
  while [ "$1" != "--" ]; do options+=("$1"); shift; done
  shift
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  echo "setup: installing ${missing[*]}$label"
  local lock=(-o DPkg::Lock::Timeout=300)
  $sudo apt-get "${lock[@]}" update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get "${lock[@]}" install -y -qq \
      ${options[@]+"${options[@]}"} "${missing[@]}" >/dev/null
}
# openssl makes test certificates; systemd brings systemd-analyze for the unit checks
apt_install "" -- fuse3 libfuse3-dev pkg-config rsync attr python3-venv openssl systemd
# the file-manager visit test (tests/fuse/test_file_manager.py) runs the desktop's real
# thumbnailers, and the JPEG decoder is checked against libjpeg: for the test extras only, and
# without the GUI packages they recommend
if [[ "$extras" == *test* || "$extras" == *bench* ]]; then
  apt_install " (test tools)" --no-install-recommends -- \
    libgdk-pixbuf2.0-bin evince libgsf-bin libjpeg-turbo-progs libglib2.0-bin ||
    echo "setup: WARNING: could not install the thumbnailers: the thumbnailer tests will skip"
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -m pip install -q -e ".[${extras}]"; then
  echo "setup: installing docfs failed; pyfuse3 is built against libfuse3: it needs the" \
    "packages libfuse3-dev and pkg-config (apt-get install libfuse3-dev pkg-config)" >&2
  exit 1
fi
# make `docfs` a command of this user's shell (what the README's "Using it" commands type):
# ~/.local/bin is where pip --user and pipx put commands and where the user unit looks;
# root's shell does not search it, so root gets /usr/local/bin as well
link_into() {
  local dir="$1" target
  target="$(pwd)/.venv/bin/docfs"
  mkdir -p "$dir"
  # never replace a docfs that is not one of our virtual environments' (e.g. a pipx install)
  if [ -e "$dir/docfs" ] && [ ! -L "$dir/docfs" ]; then
    return 0
  fi
  ln -sfn "$target" "$dir/docfs"
}
link_into "$HOME/.local/bin"
[ "$(id -u)" -ne 0 ] || link_into /usr/local/bin
if ! command -v docfs >/dev/null 2>&1; then
  echo "setup: docfs is in $HOME/.local/bin; add it to your PATH:" \
    'echo '"'"'export PATH="$HOME/.local/bin:$PATH"'"'"' >> ~/.bashrc' >&2
fi
