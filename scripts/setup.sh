#!/usr/bin/env bash
# Installs what rigforge and its tests need on a Debian 12 machine (as root):
# the sandbox tools from apt (gnupg/gpgv sign and check the tests' stand-in apt repos; podman
# and runc for the podman backend; docker.io for the docker backend's tests, never started
# as a service),
# and a virtualenv in .venv with rigforge and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for tool in mmdebstrap:mmdebstrap systemd-nspawn:systemd-container nft:nftables \
              ip:iproute2 ssh:openssh-client ssh-keygen:openssh-client \
              gpg:gnupg gpgv:gpgv dpkg-deb:dpkg podman:podman runc:runc dockerd:docker.io; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # docker.io must not start a system dockerd: its iptables rules (FORWARD policy DROP) would
    # cut the sandbox hosts off their mirror. The tests start a private one without iptables.
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
      guard=/usr/sbin/policy-rc.d
    fi
    plain=() bare=()
    for pkg in "${missing[@]}"; do
      # docker.io's recommends (cgroupfs-mount, needrestart) would touch this machine's services
      if [ "$pkg" = docker.io ]; then bare+=("$pkg"); else plain+=("$pkg"); fi
    done
    [ ${#plain[@]} -eq 0 ] || apt-get install -y -qq "${plain[@]}" >/dev/null
    [ ${#bare[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${bare[@]}" >/dev/null
    [ -z "$guard" ] || rm -f "$guard"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/rigforge --version
