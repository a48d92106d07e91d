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

# npm ci only when node_modules does not hold what package-lock.json locks (by content).
# It runs while apt works: no locked package builds native code at install (the addons
# are built by `npm run build`, after this), so it needs nothing apt installs, and on a
# fresh machine the two downloads overlap.
npm_pid=""
npm_log=""
if [ ! -d node_modules ] || ! node scripts/deps-current.js; then
  npm_log="$(mktemp)"
  npm ci --no-audit --no-fund > "$npm_log" 2>&1 &
  npm_pid=$!
fi

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # INITRD=No: the kernel's postinst skips building a boot initramfs for it (tens of
  # seconds); the VM runner builds its own. force-unsafe-io: dpkg does not fsync each
  # unpacked file (a throwaway CI machine loses nothing by it).
  $SUDO env DEBIAN_FRONTEND=noninteractive INITRD=No \
    apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-unsafe-io "${missing[@]}"
fi

if [ -n "$npm_pid" ]; then
  if ! wait "$npm_pid"; then
    cat "$npm_log" >&2
    echo "install-deps: npm ci failed (its output above)" >&2
    rm -f "$npm_log"
    exit 1
  fi
  tail -n 3 "$npm_log"
  rm -f "$npm_log"
fi
