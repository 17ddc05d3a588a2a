#!/bin/bash
# Smoke test of the test bed, run inside the VM: both simulators come up,
# bind to vhost_vdpa, and offer what the live-update flows build on.
# TAP output.
set -u
top=${lu_top:-$(cd "$(dirname "$0")/../.." && pwd)}
info=${BUILD:-$top/build}/testbed/vdpa-info
. "$top/testbed/tap.sh"

for kind in net blk; do
	dev=$("$top/testbed/vdpa-dev.sh" add $kind "smoke-$kind")
	tap_check "$kind: vdpa_sim device bound to vhost_vdpa ($dev)" test -c "$dev"
	out=$("$info" "$dev")
	echo "$out" | tap_diag
	case $kind in net) id=1 ;; blk) id=2 ;; esac
	tap_check "$kind: virtio device id is $id" grep -q "virtio device id $id " <<< "$out"
	backend=$(grep "backend features" <<< "$out")
	tap_check "$kind: offers SUSPEND, RESUME and IOTLB_PERSIST" \
		bash -c 'for f in SUSPEND RESUME IOTLB_PERSIST IOTLB_MSG_V2 IOTLB_BATCH; do
			grep -qw "$f" <<< "$1" || exit 1; done' _ "$backend"
	"$top/testbed/vdpa-dev.sh" del "smoke-$kind"
	tap_check "$kind: device removed" test ! -e "$dev"
done
tap_done
