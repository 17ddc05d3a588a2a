// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Guest block driver over vdpa_sim_blk.  Requests alternate writes of a
 * pattern unique to (block, request) with reads of a block written before,
 * checked against the last write queued for that block: the device serves
 * one queue in order, so that write is what it holds.  Every request is a
 * slot of three descriptors (header, data, status) whose in-flight id sits
 * in guest memory; a completion for a free slot is a duplicate.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_blk.h>

#include "vmm.h"

#define BLK_DATA	4096
#define HDR_SZ		64	/* header + status byte */

static uint8_t *hdr_va(struct vmm *m, unsigned int s)
{
	return (uint8_t *)m->buf + s * HDR_SZ;
}

static uint64_t *data_va(struct vmm *m, unsigned int s)
{
	return (uint64_t *)((uint8_t *)m->buf + BLK_SLOTS * HDR_SZ +
			    s * BLK_DATA);
}

static uint64_t pattern(uint32_t blk, uint64_t seq, unsigned int i)
{
	return ((uint64_t)blk << 48) ^ (seq << 16) ^ (i * 0x9e3779b97f4a7c15ULL);
}

int blk_setup(struct vmm *m, bool fresh)
{
	struct dvq *q = &m->vq[0];
	unsigned int s;

	m->nvq = 1;
	dvq_init(m, 0, fresh);
	if (!fresh)
		return 0;
	for (s = 0; s < BLK_SLOTS; s++) {
		struct vring_desc *d = &q->desc[3 * s];

		d[0].addr = m->buf_iova + s * HDR_SZ;
		d[0].len = sizeof(struct virtio_blk_outhdr);
		d[0].flags = VRING_DESC_F_NEXT;
		d[0].next = 3 * s + 1;
		d[1].addr = m->buf_iova + BLK_SLOTS * HDR_SZ + s * BLK_DATA;
		d[1].len = BLK_DATA;
		d[1].flags = VRING_DESC_F_NEXT;
		d[1].next = 3 * s + 2;
		d[2].addr = m->buf_iova + s * HDR_SZ + 32;
		d[2].len = 1;
		d[2].flags = VRING_DESC_F_WRITE;
	}
	return 0;
}

int blk_submit(struct vmm *m, unsigned int budget)
{
	struct dvq *q = &m->vq[0];
	struct gstate *g = m->g;
	unsigned int n = 0, s, i;

	while (n < budget && g->sent - g->completed < m->cfg.window) {
		s = q->g->next_slot;
		if (q->g->slot_seq[3 * s])
			break;
		q->g->next_slot = (s + 1) % BLK_SLOTS;

		uint64_t seq = g->next_seq++;
		struct virtio_blk_outhdr *h = (void *)hdr_va(m, s);
		uint64_t *data = data_va(m, s);
		uint32_t blk;
		bool write = (seq & 1) || g->blk_writes == 0;

		if (write) {
			blk = g->blk_writes++ % BLK_NBLK;
			for (i = 0; i < BLK_DATA / 8; i++)
				data[i] = pattern(blk, seq, i);
			g->blk_exp[blk] = seq;
			q->g->slot_exp[3 * s] = seq;
		} else {
			uint64_t written = g->blk_writes < BLK_NBLK ?
					   g->blk_writes : BLK_NBLK;

			blk = (seq * 2654435761u) % written;
			memset(data, 0, BLK_DATA);
			q->g->slot_exp[3 * s] = g->blk_exp[blk];
		}
		h->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
		h->ioprio = 0;
		h->sector = (uint64_t)blk * (BLK_DATA / 512);
		hdr_va(m, s)[32] = 0xff;	/* the device must overwrite it */
		q->desc[3 * s + 1].flags = VRING_DESC_F_NEXT |
					   (write ? 0 : VRING_DESC_F_WRITE);
		q->g->slot_blk[3 * s] = blk;
		q->g->slot_seq[3 * s] = seq;
		dvq_publish(q, 3 * s);
		g->sent++;
		n++;
	}
	if (n)
		vdpalu_kick(&m->dev, 0);
	return n;
}

int blk_reap(struct vmm *m)
{
	struct dvq *q = &m->vq[0];
	struct gstate *g = m->g;
	uint32_t id, len;
	unsigned int i;
	int n = 0;

	while (dvq_next_used(q, &id, &len)) {
		unsigned int s = id / 3;
		struct virtio_blk_outhdr *h;
		uint64_t *data;

		if (id % 3 || s >= BLK_SLOTS || !q->g->slot_seq[id]) {
			g->duplicated++;
			continue;
		}
		h = (void *)hdr_va(m, s);
		data = data_va(m, s);
		/* Completed once, verified or not: a bad one counts in bad. */
		g->completed++;
		if (hdr_va(m, s)[32] != VIRTIO_BLK_S_OK) {
			g->bad++;
		} else if (h->type == VIRTIO_BLK_T_IN) {
			for (i = 0; i < BLK_DATA / 8; i++)
				if (data[i] != pattern(q->g->slot_blk[id],
						       q->g->slot_exp[id], i))
					break;
			if (i < BLK_DATA / 8)
				g->bad++;
		}
		q->g->slot_seq[id] = 0;
		n++;
	}
	return n;
}
