// SPDX-License-Identifier: LGPL-2.1-or-later
/* Opening a vhost-vdpa device, features, status, IOTLB and virtqueues. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/virtio_config.h>

#include "internal.h"

int vdpalu_ioctl(struct vdpalu_dev *dev, unsigned long req, void *arg,
		 const char *what)
{
	if (ioctl(dev->fd, req, arg) < 0)
		return vdpalu_fail(errno, "%s: %s", what, strerror(errno));
	return 0;
}

void vdpalu_init(struct vdpalu_dev *dev)
{
	unsigned int i;

	memset(dev, 0, sizeof(*dev));
	dev->fd = -1;
	for (i = 0; i < VDPALU_MAX_VQS; i++)
		dev->vqs[i].kick_fd = dev->vqs[i].call_fd = -1;
	for (i = 0; i < VDPALU_MAX_REGIONS; i++)
		dev->regions[i].fd = -1;
}

bool vdpalu_has_backend(const struct vdpalu_dev *dev, unsigned int bit)
{
	return dev->backend_features & (1ULL << bit);
}

/* Features and backend features: what a fresh owner and a new image read. */
static int vdpalu_read_caps(struct vdpalu_dev *dev)
{
	if (vdpalu_ioctl(dev, VHOST_VDPA_GET_DEVICE_ID, &dev->device_id,
			 "VHOST_VDPA_GET_DEVICE_ID") ||
	    vdpalu_ioctl(dev, VHOST_VDPA_GET_VQS_COUNT, &dev->nvqs,
			 "VHOST_VDPA_GET_VQS_COUNT") ||
	    vdpalu_ioctl(dev, VHOST_GET_FEATURES, &dev->device_features,
			 "VHOST_GET_FEATURES") ||
	    vdpalu_ioctl(dev, VHOST_GET_BACKEND_FEATURES, &dev->backend_offered,
			 "VHOST_GET_BACKEND_FEATURES"))
		return -1;
	return 0;
}

int vdpalu_open(struct vdpalu_dev *dev, const char *path,
		uint64_t backend_mask_out)
{
	uint64_t ack;
	int err;

	vdpalu_init(dev);
	/* O_CLOEXEC: only vdpalu_save() decides what crosses an exec. */
	dev->fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev->fd < 0)
		return vdpalu_fail(errno, "open %s: %s", path, strerror(errno));
	if (vdpalu_read_caps(dev))
		goto fail;
	if (dev->nvqs > VDPALU_MAX_VQS) {
		vdpalu_fail(E2BIG, "%s has %u virtqueues, at most %d supported",
			    path, dev->nvqs, VDPALU_MAX_VQS);
		goto fail;
	}
	/*
	 * QEMU's order: backend features first, then VHOST_SET_OWNER. The
	 * ack of VHOST_BACKEND_F_NEW_OWNER is this process's consent, which
	 * the kernel counts because this process becomes the owner.
	 */
	ack = dev->backend_offered & VDPALU_BACKEND_WANTED & ~backend_mask_out;
	if (vdpalu_ioctl(dev, VHOST_SET_BACKEND_FEATURES, &ack,
			 "VHOST_SET_BACKEND_FEATURES") ||
	    vdpalu_ioctl(dev, VHOST_SET_OWNER, NULL, "VHOST_SET_OWNER"))
		goto fail;
	dev->backend_features = ack;
	return 0;
fail:
	err = errno;
	close(dev->fd);
	dev->fd = -1;
	errno = err;
	return -1;
}

void vdpalu_close(struct vdpalu_dev *dev)
{
	unsigned int i;

	for (i = 0; i < VDPALU_MAX_VQS; i++) {
		if (dev->vqs[i].kick_fd >= 0)
			close(dev->vqs[i].kick_fd);
		if (dev->vqs[i].call_fd >= 0)
			close(dev->vqs[i].call_fd);
	}
	/* Closing the device unmaps (and unpins) before the memory goes. */
	if (dev->fd >= 0)
		close(dev->fd);
	for (i = 0; i < dev->nr_regions; i++) {
		struct vdpalu_region *r = &dev->regions[i];

		if (r->owned && r->addr)
			munmap(r->addr, r->size);
		if (r->owned && r->fd >= 0)
			close(r->fd);
	}
	vdpalu_init(dev);
}

int vdpalu_set_status(struct vdpalu_dev *dev, uint8_t status)
{
	if (vdpalu_ioctl(dev, VHOST_VDPA_SET_STATUS, &status,
			 "VHOST_VDPA_SET_STATUS"))
		return -1;
	dev->status = status;
	return 0;
}

int vdpalu_get_status(struct vdpalu_dev *dev, uint8_t *status)
{
	return vdpalu_ioctl(dev, VHOST_VDPA_GET_STATUS, status,
			    "VHOST_VDPA_GET_STATUS");
}

int vdpalu_get_config(struct vdpalu_dev *dev, unsigned int off, void *buf,
		      unsigned int len)
{
	struct vhost_vdpa_config *c;
	int ret;

	c = malloc(sizeof(*c) + len);
	if (!c)
		return vdpalu_fail(ENOMEM, "out of memory");
	c->off = off;
	c->len = len;
	ret = vdpalu_ioctl(dev, VHOST_VDPA_GET_CONFIG, c,
			   "VHOST_VDPA_GET_CONFIG");
	if (!ret)
		memcpy(buf, c->buf, len);
	free(c);
	return ret;
}

/*
 * The driver half of virtio feature negotiation for exactly @features:
 * for a fresh device and for the reset flow's reprogramming alike.
 */
int vdpalu_set_features(struct vdpalu_dev *dev, uint64_t features)
{
	uint8_t status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	if (vdpalu_set_status(dev, status) ||
	    vdpalu_ioctl(dev, VHOST_SET_FEATURES, &features,
			 "VHOST_SET_FEATURES"))
		return -1;
	dev->features = features;
	status |= VIRTIO_CONFIG_S_FEATURES_OK;
	/* A device that cannot take them clears FEATURES_OK again. */
	if (vdpalu_set_status(dev, status) || vdpalu_get_status(dev, &status))
		return -1;
	if (!(status & VIRTIO_CONFIG_S_FEATURES_OK))
		return vdpalu_fail(EIO, "device refused features %#llx",
				   (unsigned long long)features);
	return 0;
}

int vdpalu_negotiate(struct vdpalu_dev *dev, uint64_t wanted)
{
	/* vhost-vdpa devices only work through the IOTLB. */
	wanted |= (1ULL << VIRTIO_F_VERSION_1) |
		  (1ULL << VIRTIO_F_ACCESS_PLATFORM);
	return vdpalu_set_features(dev, dev->device_features & wanted);
}

/* One IOTLB message: v2 (with ASID 0) when acked, else v1. */
int vdpalu_iotlb(struct vdpalu_dev *dev, uint8_t type, uint64_t iova,
		 uint64_t size, uint64_t uaddr, uint8_t perm)
{
	struct vhost_iotlb_msg m = {
		.iova = iova, .size = size, .uaddr = uaddr,
		.perm = perm, .type = type,
	};
	struct vhost_msg_v2 v2 = { .type = VHOST_IOTLB_MSG_V2, .iotlb = m };
	struct vhost_msg v1 = { .type = VHOST_IOTLB_MSG, .iotlb = m };
	bool use_v2 = vdpalu_has_backend(dev, VHOST_BACKEND_F_IOTLB_MSG_V2);
	const void *buf = use_v2 ? (const void *)&v2 : (const void *)&v1;
	size_t len = use_v2 ? sizeof(v2) : sizeof(v1);

	if (write(dev->fd, buf, len) != (ssize_t)len)
		return vdpalu_fail(errno, "IOTLB message %u at iova %#llx+%#llx: %s",
				   type, (unsigned long long)iova,
				   (unsigned long long)size, strerror(errno));
	return 0;
}

/*
 * BATCH_BEGIN or BATCH_END when the device acked IOTLB_BATCH, else nothing.
 * Without a batch, a parent that takes its whole table at once (set_map:
 * mlx5, vdpa_sim batch_mapping=1) is handed the table again for every
 * physically contiguous chunk of a PA mapping: quadratic in guest memory.
 */
int vdpalu_iotlb_batch(struct vdpalu_dev *dev, uint8_t type)
{
	if (!vdpalu_has_backend(dev, VHOST_BACKEND_F_IOTLB_BATCH))
		return 0;
	return vdpalu_iotlb(dev, type, 0, 0, 0, 0);
}

/* Program vq @idx from dev->vqs[idx]: the setup and reset-flow rebuild. */
int vdpalu_vq_program(struct vdpalu_dev *dev, unsigned int idx)
{
	struct vdpalu_vq *vq = &dev->vqs[idx];
	struct vhost_vring_state num = { .index = idx, .num = vq->num };
	struct vhost_vring_state base = { .index = idx, .num = vq->base };
	struct vhost_vring_state enable = { .index = idx, .num = vq->enabled };
	struct vhost_vring_addr addr = {
		.index = idx,
		.desc_user_addr = vq->desc,
		.avail_user_addr = vq->avail,
		.used_user_addr = vq->used,
	};
	struct vhost_vring_file kick = { .index = idx, .fd = vq->kick_fd };
	struct vhost_vring_file call = { .index = idx, .fd = vq->call_fd };

	if (vdpalu_ioctl(dev, VHOST_SET_VRING_NUM, &num, "VHOST_SET_VRING_NUM") ||
	    vdpalu_ioctl(dev, VHOST_SET_VRING_ADDR, &addr,
			 "VHOST_SET_VRING_ADDR") ||
	    vdpalu_ioctl(dev, VHOST_SET_VRING_BASE, &base,
			 "VHOST_SET_VRING_BASE") ||
	    vdpalu_ioctl(dev, VHOST_SET_VRING_KICK, &kick,
			 "VHOST_SET_VRING_KICK") ||
	    vdpalu_ioctl(dev, VHOST_SET_VRING_CALL, &call,
			 "VHOST_SET_VRING_CALL") ||
	    vdpalu_ioctl(dev, VHOST_VDPA_SET_VRING_ENABLE, &enable,
			 "VHOST_VDPA_SET_VRING_ENABLE"))
		return -1;
	return 0;
}

int vdpalu_vq_setup(struct vdpalu_dev *dev, unsigned int idx, uint16_t num,
		    uint64_t desc, uint64_t avail, uint64_t used)
{
	struct vdpalu_vq *vq;
	int err;

	if (idx >= dev->nvqs || idx >= VDPALU_MAX_VQS)
		return vdpalu_fail(EINVAL, "vq %u: the device has %u", idx,
				   dev->nvqs);
	if (!num || (num & (num - 1)))
		return vdpalu_fail(EINVAL, "vq %u: size %u is not a power of 2",
				   idx, num);
	vq = &dev->vqs[idx];
	vq->num = num;
	vq->base = 0;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->enabled = true;
	if (vq->kick_fd < 0)
		vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->call_fd < 0)
		vq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->kick_fd < 0 || vq->call_fd < 0)
		return vdpalu_fail(errno, "eventfd: %s", strerror(errno));
	if (vdpalu_vq_program(dev, idx)) {
		err = errno;
		vq->enabled = false;
		errno = err;
		return -1;
	}
	vq->configured = true;
	return 0;
}

int vdpalu_kick(const struct vdpalu_dev *dev, unsigned int idx)
{
	uint64_t one = 1;

	if (write(dev->vqs[idx].kick_fd, &one, sizeof(one)) != sizeof(one))
		return vdpalu_fail(errno, "kick vq %u: %s", idx, strerror(errno));
	return 0;
}

int vdpalu_start(struct vdpalu_dev *dev)
{
	return vdpalu_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
}
