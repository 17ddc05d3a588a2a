/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Split virtqueues, driver side, shared by the reference VMM and the
 * benchmark: both play the guest driver of a vdpa_sim device.
 *
 * The rings of a queue take one page each, descriptors first.  The
 * driver's own indices live in guest memory next to them, as a guest
 * kernel's would, so that a process that takes the device over finds the
 * queue where the previous one left it without any of it being saved.
 */
#ifndef VIRTQ_H
#define VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#define VQ_DESC_OFF	0x0000
#define VQ_AVAIL_OFF	0x1000
#define VQ_USED_OFF	0x2000
#define VQ_RINGS_SIZE	0x3000

/* The driver's indices of one queue: in guest memory. */
struct dvq_idx {
	uint16_t avail_idx;		/* next avail->idx to publish */
	uint16_t used_seen;		/* used->idx consumed so far */
};

struct dvq {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	struct dvq_idx *idx;
	unsigned int num;
};

void dvq_attach(struct dvq *q, void *rings, unsigned int num,
		struct dvq_idx *idx, bool fresh);
void dvq_publish(struct dvq *q, uint16_t head);
bool dvq_next_used(struct dvq *q, uint32_t *id, uint32_t *len);

/* A virtio-blk request: header, data and status buffers in guest memory. */
struct blk_req {
	struct virtio_blk_outhdr *hdr;
	uint64_t hdr_iova;
	uint64_t data_iova;
	uint32_t len;			/* of the data */
	uint8_t *status;
	uint64_t status_iova;
	bool write;
	uint64_t sector;
};

#define BLK_STATUS_UNSET	0xff	/* no device writes it */

void blk_req_prepare(struct dvq *q, uint16_t head, const struct blk_req *r);

#endif /* VIRTQ_H */
