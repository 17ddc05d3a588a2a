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
#define HDR_SZ		64	/* header, status byte at STATUS_OFF */
#define STATUS_OFF	32

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
	m->nvq = 1;
	vmm_vq_attach(m, 0, fresh);
	return 0;
}

int blk_submit(struct vmm *m, unsigned int budget)
{
	struct dvq *q = &m->vq[0];
	struct gstate *g = m->g;
	struct gvq *gq = &g->vq[0];
	unsigned int n = 0, s, i;

	while (n < budget && g->sent - g->completed < m->cfg.window) {
		s = gq->next_slot;
		if (gq->slot_seq[3 * s])
			break;
		gq->next_slot = (s + 1) % BLK_SLOTS;

		uint64_t seq = g->next_seq++;
		uint64_t *data = data_va(m, s);
		uint32_t blk;
		bool write = (seq & 1) || g->blk_writes == 0;

		if (write) {
			blk = g->blk_writes++ % BLK_NBLK;
			for (i = 0; i < BLK_DATA / 8; i++)
				data[i] = pattern(blk, seq, i);
			g->blk_exp[blk] = seq;
			gq->slot_exp[3 * s] = seq;
		} else {
			uint64_t written = g->blk_writes < BLK_NBLK ?
					   g->blk_writes : BLK_NBLK;

			blk = (seq * 2654435761u) % written;
			memset(data, 0, BLK_DATA);
			gq->slot_exp[3 * s] = g->blk_exp[blk];
		}
		blk_req_prepare(q, 3 * s, &(struct blk_req){
			.hdr = (void *)hdr_va(m, s),
			.hdr_iova = m->buf_iova + s * HDR_SZ,
			.data_iova = m->buf_iova + BLK_SLOTS * HDR_SZ + s * BLK_DATA,
			.len = BLK_DATA,
			.status = hdr_va(m, s) + STATUS_OFF,
			.status_iova = m->buf_iova + s * HDR_SZ + STATUS_OFF,
			.write = write,
			.sector = (uint64_t)blk * (BLK_DATA / 512),
		});
		gq->slot_blk[3 * s] = blk;
		gq->slot_seq[3 * s] = seq;
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
	struct gvq *gq = &g->vq[0];
	uint32_t id, len;
	unsigned int i;
	int n = 0;

	while (dvq_next_used(q, &id, &len)) {
		unsigned int s = id / 3;
		struct virtio_blk_outhdr *h;
		uint64_t *data;

		if (id % 3 || s >= BLK_SLOTS || !gq->slot_seq[id]) {
			g->duplicated++;
			continue;
		}
		h = (void *)hdr_va(m, s);
		data = data_va(m, s);
		/* Completed once, verified or not: a bad one counts in bad. */
		g->completed++;
		if (hdr_va(m, s)[STATUS_OFF] != VIRTIO_BLK_S_OK) {
			g->bad++;
		} else if (h->type == VIRTIO_BLK_T_IN) {
			for (i = 0; i < BLK_DATA / 8; i++)
				if (data[i] != pattern(gq->slot_blk[id],
						       gq->slot_exp[id], i))
					break;
			if (i < BLK_DATA / 8)
				g->bad++;
		}
		gq->slot_seq[id] = 0;
		n++;
	}
	return n;
}
