#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what building, testing, the lab and packaging need on Debian 12; skips what is
# already there. Packaging: rpm (rpmbuild), rpmlint, binutils (readelf, objdump), systemd
# (systemd-analyze); the units under a real systemd: debootstrap, systemd-container (nspawn).
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config clang-format
    libboost-dev libssl-dev libspdlog-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev
    catch2
    python3 python3-botocore openssl iproute2 nftables dnsmasq-base procps
    rpm rpmlint binutils systemd
    debootstrap systemd-container
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root to install them" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
