#!/usr/bin/env bash
# Installs everything tortie's tests, benchmarks and lab need on a fresh Debian
# machine: the real routing daemons and datastore the tests talk to, the kernel
# tools the dataplane drives, and the npm workspaces. Idempotent; needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc + libc6-dev build the small socket-option addon of the BGP speaker (TTL, GTSM).
# nftables: the service dataplane (kube-proxy replacement) programs nft tables; conntrack:
# it deletes stale UDP conntrack entries as kube-proxy does.
# The testbed's VM runner boots Debian's kernel under QEMU for kernel features this
# machine's kernel lacks (ipip, sctp, wireguard): qemu-system-x86, linux-image-amd64
# (its modules are read over 9p), busybox-static (the initramfs), kmod (modprobe
# resolves module dependencies), xz-utils (unpacks the kernel to boot it without
# firmware), python3 (the SCTP socket probe). iperf3: bench/throughput.js.
# umoci packs `npm run image`'s rootfs into an OCI layout (no engine, no registry);
# runc runs that image in the tests and the lab's --containers mode; util-linux gives
# the image its nsenter. chromium (with chromium-driver): the browser playwright-core drives
# in the lab web page's test (e2e/lab-ui.test.ts); Playwright never downloads one.
apt_packages=(bird2 frr gobgpd etcd-server iptables ipset nftables conntrack iproute2 iputils-ping procps tcpdump gcc libc6-dev
  qemu-system-x86 linux-image-amd64 busybox-static kmod xz-utils python3 iperf3 umoci runc util-linux chromium chromium-driver)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci only when node_modules does not hold what package-lock.json locks (by content)
if [ ! -d node_modules ] || ! node scripts/deps-current.js; then
  npm ci --no-audit --no-fund
fi
