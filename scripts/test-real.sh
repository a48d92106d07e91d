#!/usr/bin/env bash
# The real-component phases of `npm test`, side by side: the host project (jest, two
# workers) and the VM project (one QEMU guest with one vCPU at a time). On a 2-core
# machine the VM phase is CPU-bound on one core and the host phase mostly waits on
# daemons and the kernel, so running them together takes about the longer of the two
# instead of their sum. QEMU runs niced, so the timing-sensitive netns tests keep the
# CPU when they need it. The VM lines are prefixed with [vm]. Fails if either fails.
set -uo pipefail
cd "$(dirname "$0")/.."
( nice -n 10 npm run --silent test:vm 2>&1 | sed -u 's/^/[vm] /' ) &
vm=$!
npm run --silent test:host
host=$?
wait "$vm"
vmrc=$?
echo "test:host exit $host, test:vm exit $vmrc"
[ "$host" -eq 0 ] && [ "$vmrc" -eq 0 ]
