/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The vhost uapi that libvdpalu needs, with fallbacks for the values added
 * by the vhost-vdpa live update series.
 *
 * The series' headers ship in lib/uapi (installed under
 * include/vdpalu/linux, ahead of the distro's through the .pc); for a VMM
 * that builds against its own copied linux-headers instead, the four new
 * values are repeated here.  They must match include/uapi/linux/vhost.h
 * and vhost_types.h of the series exactly.
 */
#ifndef VDPALU_COMPAT_H
#define VDPALU_COMPAT_H

#include <linux/vhost.h>
#include <linux/vhost_types.h>

#ifndef VHOST_NEW_OWNER
#define VHOST_NEW_OWNER			_IO(VHOST_VIRTIO, 0x86)
#endif
#ifndef VHOST_BACKEND_F_NEW_OWNER
#define VHOST_BACKEND_F_NEW_OWNER	0x9
#endif
#ifndef VHOST_BACKEND_F_IOTLB_REMAP
#define VHOST_BACKEND_F_IOTLB_REMAP	0xA
#endif
#ifndef VHOST_IOTLB_REMAP
#define VHOST_IOTLB_REMAP		7
#endif

#endif /* VDPALU_COMPAT_H */
