#!/bin/bash
# Inside the VM: create a vdpa_sim device and bind it to vhost_vdpa.
#
# Usage: vdpa-dev.sh add net|blk NAME [ATTR VALUE...]   prints /dev/vhost-vdpa-N
#        (ATTR VALUE: passed to `vdpa dev add`, e.g. mac 52:54:00:12:34:56)
#        vdpa-dev.sh del NAME
# VIRTIO_VDPA is built in and would claim new devices first, so automatic
# probing is switched off and the device is bound through driver_override.
set -euo pipefail

case ${1:-} in
add)
	kind=$2 name=$3
	case $kind in
	net) mgmt=vdpasim_net ;;
	blk) mgmt=vdpasim_blk ;;
	*) echo "vdpa-dev: unknown kind $kind" >&2; exit 2 ;;
	esac
	echo 0 > /sys/bus/vdpa/drivers_autoprobe
	vdpa dev add mgmtdev "$mgmt" name "$name" "${@:4}"
	echo vhost_vdpa > "/sys/bus/vdpa/devices/$name/driver_override"
	echo "$name" > /sys/bus/vdpa/drivers_probe
	for d in "/sys/bus/vdpa/devices/$name"/vhost-vdpa-*; do
		[ -e "$d" ] && { echo "/dev/$(basename "$d")"; exit 0; }
	done
	echo "vdpa-dev: $name did not bind to vhost_vdpa" >&2
	exit 1
	;;
del)
	vdpa dev del "$2"
	;;
*)
	echo "usage: vdpa-dev.sh add net|blk NAME | del NAME" >&2
	exit 2
	;;
esac
