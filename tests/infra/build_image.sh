#!/bin/bash
# Build a cacheable Debian bookworm + systemd rootfs tarball for the nspawn infra tests.
# The container has no network (--private-network), so every Debian package the playbook relies on
# is baked in here: python3-venv for the app venv, acl for become, curl/procps/iproute2 for checks,
# nftables for the origin firewall.
# The cache key is the sha256 of this file (tests/infra/conftest.py), so any edit rebuilds the image.
set -euo pipefail
OUT=${1:?usage: build_image.sh OUT.tar.zst}
# Use the apt mirror this machine is configured with (first URIs: line of the deb822 sources).
MIRROR=${MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)}
mmdebstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,python3-venv,sudo,openssh-server,iproute2,procps,curl,acl,ca-certificates,nftables \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='echo testhost > "$1/etc/hostname"; echo "127.0.1.1 testhost" >> "$1/etc/hosts"' \
  --customize-hook='chroot "$1" useradd -m -s /bin/bash -G sudo deploy' \
  --customize-hook='echo "deploy ALL=(ALL) NOPASSWD:ALL" > "$1/etc/sudoers.d/deploy"; chmod 0440 "$1/etc/sudoers.d/deploy"' \
  --customize-hook='rm -f "$1/etc/machine-id"; : > "$1/etc/machine-id"' \
  bookworm "$OUT" "$MIRROR"
