#!/bin/bash
# Inside the VM: create a vdpa_sim device and bind it to vhost_vdpa, for
# scripts. One implementation does it, vdpa-lu-vmm's --create (vmm/devices.c):
# VIRTIO_VDPA is built in and would claim new devices first, so automatic
# probing goes off and the device is bound through driver_override.
#
# Usage: vdpa-dev.sh add net|blk NAME [mac MAC]   prints /dev/vhost-vdpa-N
#        vdpa-dev.sh del NAME
# Environment: BUILD (the build directory, default the checkout's build/).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd -P)
vmm=${BUILD:-$top/build}/user/vmm/vdpa-lu-vmm
[ -x "$vmm" ] || { echo "vdpa-dev: $vmm missing: build userspace first" >&2; exit 1; }

case ${1:-}:$# in
add:3|add:5)
	case $2:${4:-} in
	net:|blk:) exec "$vmm" --create "$2:$3" ;;
	net:mac) exec "$vmm" --create "$2:$3" --mac "$5" ;;
	*) echo "usage: vdpa-dev.sh add net|blk NAME [mac MAC] (mac: net only)" >&2; exit 2 ;;
	esac ;;
del:2) exec "$vmm" --destroy "$2" ;;
*)
	echo "usage: vdpa-dev.sh add net|blk NAME [mac MAC] | del NAME" >&2
	exit 2 ;;
esac
