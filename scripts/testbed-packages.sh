#!/usr/bin/env bash
# Installs the Debian packages the testbed's real nodes and images need, if any is missing:
# containerd and runc (the container runtime), the CNI plugins (pod networking), conntrack and iptables
# (kube-proxy), debootstrap (image root filesystems), a static C toolchain (the pause binary), Prometheus (each
# real site's, scraping CloudNativePG's instances), PostgreSQL (the writer's and checker's quick tests run it
# on loopback) and libfaketime (an operator with a skewed clock, for the nemesis). Services are not started: the testbed runs its own containerd and Prometheus per site.
#   scripts/testbed-packages.sh           install what is missing (needs root, as CI has)
#   scripts/testbed-packages.sh --check   exit 1 naming what is missing
set -euo pipefail

packages=(containerd runc containernetworking-plugins conntrack iptables iproute2 debootstrap gcc libc6-dev prometheus postgresql faketime)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "${1:-}" = "--check" ]; then echo "missing Debian packages: ${missing[*]}" >&2; exit 1; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "real nodes need root and these Debian packages: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "[testbed-packages] installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A package's maintainer scripts must not start a host-wide containerd.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
fi
trap '[ -z "$own_policy" ] || rm -f "$policy"' EXIT
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
