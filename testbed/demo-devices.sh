#!/bin/bash
# Demo job without the reference VMM: create a vdpa_sim net and block
# device, bind them to vhost_vdpa and print what they offer.
set -euo pipefail
echo "kernel $(uname -r); vdpa_sim use_va=$(cat /sys/module/vdpa_sim/parameters/use_va)"
for kind in net blk; do
	dev=$("$lu_top/testbed/vdpa-dev.sh" add $kind "demo-$kind")
	"$BUILD/testbed/vdpa-info" "$dev"
done
