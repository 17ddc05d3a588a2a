// SPDX-License-Identifier: GPL-2.0-or-later
/* Split virtqueues, driver side: rings and their shadow in guest memory. */
#include <string.h>
#include <unistd.h>

#include "vmm.h"

uint64_t ring_iova(unsigned int i)
{
	return IOVA_BASE + G_RING_OFF + i * G_RING_STRIDE;
}

/*
 * Point vq @i at its rings.  @fresh: a new guest, zero them; otherwise
 * they are the live rings of the previous image and must not be touched.
 */
void dvq_init(struct vmm *m, unsigned int i, bool fresh)
{
	struct dvq *q = &m->vq[i];
	uint8_t *base = vdpalu_iova_to_va(&m->dev, ring_iova(i));

	q->idx = i;
	q->desc = (struct vring_desc *)base;
	q->avail = (struct vring_avail *)(base + 0x1000);
	q->used = (struct vring_used *)(base + 0x2000);
	q->g = &m->g->vq[i];
	if (fresh) {
		memset(base, 0, G_RING_STRIDE);
		memset(q->g, 0, sizeof(*q->g));
	}
}

/* Make descriptor chain @head available to the device. */
void dvq_publish(struct dvq *q, uint16_t head)
{
	q->avail->ring[q->g->avail_idx % QSZ] = head;
	q->g->avail_idx++;
	/* The entry before the index: the device reads them in that order. */
	__atomic_store_n(&q->avail->idx, q->g->avail_idx, __ATOMIC_RELEASE);
}

bool dvq_next_used(struct dvq *q, uint32_t *id, uint32_t *len)
{
	uint16_t idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	struct vring_used_elem *e;

	if (idx == q->g->used_seen)
		return false;
	e = &q->used->ring[q->g->used_seen % QSZ];
	*id = e->id;
	*len = e->len;
	q->g->used_seen++;
	return true;
}
