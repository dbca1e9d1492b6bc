#!/usr/bin/env bash
# Installs what rigforge and its tests need on a Debian 12 machine (as root):
# the sandbox tools from apt (gnupg/gpgv sign and check the tests' stand-in apt repos),
# and a virtualenv in .venv with rigforge and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for tool in mmdebstrap:mmdebstrap systemd-nspawn:systemd-container nft:nftables \
              ip:iproute2 ssh:openssh-client ssh-keygen:openssh-client \
              gpg:gnupg gpgv:gpgv dpkg-deb:dpkg; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/rigforge --version
