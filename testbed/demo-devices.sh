#!/bin/bash
# Demo job without the reference VMM: create a vdpa_sim net and block
# device, bind them to vhost_vdpa and print what they offer.
set -euo pipefail
. "$lu_top/testbed/guest.sh"
echo "kernel $(uname -r); vdpa_sim $(vdpa_sim_mode)"
for kind in net blk; do
	dev=$("$lu_top/testbed/vdpa-dev.sh" add $kind "demo-$kind")
	"$BUILD/testbed/vdpa-info" "$dev"
done
