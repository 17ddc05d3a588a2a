#!/bin/bash
# Inside the VM: create a vdpa_sim device and bind it to vhost_vdpa, for
# scripts. One implementation does it, vdpa-lu-vmm's --create (vmm/devices.c):
# VIRTIO_VDPA is built in and would claim new devices first, so automatic
# probing goes off and the device is bound through driver_override.
#
# Usage: vdpa-dev.sh add net|blk NAME [ATTR VALUE...]   prints /dev/vhost-vdpa-N
#        (ATTR VALUE: passed to `vdpa dev add`, e.g. mac 52:54:00:12:34:56)
#        vdpa-dev.sh del NAME
# Environment: BUILD (the build directory, default the checkout's build/).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd -P)
vmm=${BUILD:-$top/build}/user/vmm/vdpa-lu-vmm
[ -x "$vmm" ] || { echo "vdpa-dev: $vmm missing: build userspace first" >&2; exit 1; }

case ${1:-}:$# in
add:3)
	case $2 in
	net|blk) exec "$vmm" --create "$2:$3" ;;
	*) echo "vdpa-dev: unknown kind '$2' (net or blk)" >&2; exit 2 ;;
	esac ;;
add:*)
	# Device attributes (a MAC for QEMU's NIC): vdpa-lu-vmm --create takes
	# none, so the vdpa tool creates the device and vdpa-lu-vmm binds it.
	[ $# -ge 5 ] || { echo "usage: vdpa-dev.sh add net|blk NAME [ATTR VALUE...]" >&2; exit 2; }
	case $2 in
	net) mgmt=vdpasim_net ;;
	blk) mgmt=vdpasim_blk ;;
	*) echo "vdpa-dev: unknown kind '$2' (net or blk)" >&2; exit 2 ;;
	esac
	echo 0 > /sys/bus/vdpa/drivers_autoprobe
	vdpa dev add mgmtdev "$mgmt" name "$3" "${@:4}"
	echo vhost_vdpa > "/sys/bus/vdpa/devices/$3/driver_override"
	echo "$3" > /sys/bus/vdpa/drivers_probe
	for d in "/sys/bus/vdpa/devices/$3"/vhost-vdpa-*; do
		[ -e "$d" ] && { echo "/dev/$(basename "$d")"; exit 0; }
	done
	echo "vdpa-dev: $3 did not bind to vhost_vdpa" >&2
	exit 1 ;;
del:2) exec "$vmm" --destroy "$2" ;;
*)
	echo "usage: vdpa-dev.sh add net|blk NAME | del NAME" >&2
	exit 2 ;;
esac
