// SPDX-License-Identifier: GPL-2.0-or-later
/* Split virtqueues, driver side: see virtq.h. */
#include <string.h>

#include "virtq.h"

/*
 * Point @q at the rings at @rings.  @fresh: a new guest, zero them and
 * the indices; otherwise they are the live rings of the previous image
 * and must not be touched.
 */
void dvq_attach(struct dvq *q, void *rings, unsigned int num,
		struct dvq_idx *idx, bool fresh)
{
	uint8_t *base = rings;

	q->desc = (struct vring_desc *)(base + VQ_DESC_OFF);
	q->avail = (struct vring_avail *)(base + VQ_AVAIL_OFF);
	q->used = (struct vring_used *)(base + VQ_USED_OFF);
	q->idx = idx;
	q->num = num;
	if (fresh) {
		memset(base, 0, VQ_RINGS_SIZE);
		memset(idx, 0, sizeof(*idx));
	}
}

/* Make descriptor chain @head available to the device. */
void dvq_publish(struct dvq *q, uint16_t head)
{
	q->avail->ring[q->idx->avail_idx % q->num] = head;
	q->idx->avail_idx++;
	/* The entry before the index: the device reads them in that order. */
	__atomic_store_n(&q->avail->idx, q->idx->avail_idx, __ATOMIC_RELEASE);
}

/* The next completion, if the device has made one. */
bool dvq_next_used(struct dvq *q, uint32_t *id, uint32_t *len)
{
	uint16_t idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	struct vring_used_elem *e;

	if (idx == q->idx->used_seen)
		return false;
	e = &q->used->ring[q->idx->used_seen % q->num];
	*id = e->id;
	*len = e->len;
	q->idx->used_seen++;
	return true;
}

/*
 * Write request @r into descriptors @head to @head + 2.  The status byte
 * starts as a value no device writes, so a completion that never wrote it
 * fails the VIRTIO_BLK_S_OK check.
 */
void blk_req_prepare(struct dvq *q, uint16_t head, const struct blk_req *r)
{
	struct vring_desc *d = &q->desc[head];

	r->hdr->type = r->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	r->hdr->ioprio = 0;
	r->hdr->sector = r->sector;
	*r->status = BLK_STATUS_UNSET;
	d[0] = (struct vring_desc){
		.addr = r->hdr_iova, .len = sizeof(*r->hdr),
		.flags = VRING_DESC_F_NEXT, .next = head + 1,
	};
	d[1] = (struct vring_desc){
		.addr = r->data_iova, .len = r->len,
		.flags = VRING_DESC_F_NEXT | (r->write ? 0 : VRING_DESC_F_WRITE),
		.next = head + 2,
	};
	d[2] = (struct vring_desc){
		.addr = r->status_iova, .len = 1, .flags = VRING_DESC_F_WRITE,
	};
}
