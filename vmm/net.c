// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Guest network driver over vdpa_sim_net, which loops every TX frame back
 * to RX.  Each frame carries a sequence number and a checksum of its
 * payload; RX marks the number seen, so a lost frame stays unseen and a
 * duplicated one is seen twice.  All RX buffers stay posted and TX is
 * windowed below their count: the simulator drops a frame when RX is full.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_net.h>

#include "vmm.h"

#define ETH_HLEN	14
struct frame {
	struct virtio_net_hdr_v1 vnet;
	uint8_t dst[6], src[6];
	uint16_t ethertype;
	uint64_t seq;
	uint32_t len;		/* of data[] */
	uint32_t crc;
	uint8_t data[];
} __attribute__((packed));

#define FRAME_MAX	(BUF_SZ - sizeof(struct frame))

static uint8_t *rxbuf(struct vmm *m, unsigned int i)
{
	return (uint8_t *)m->buf + i * BUF_SZ;
}

static uint8_t *txbuf(struct vmm *m, unsigned int i)
{
	return (uint8_t *)m->buf + (QSZ + i) * BUF_SZ;
}

static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

int net_setup(struct vmm *m, bool fresh)
{
	struct dvq *rx = &m->vq[NET_RXQ], *tx = &m->vq[NET_TXQ];
	unsigned int i;

	m->nvq = 2;
	vmm_vq_attach(m, NET_RXQ, fresh);
	vmm_vq_attach(m, NET_TXQ, fresh);
	if (!fresh)
		return 0;
	for (i = 0; i < QSZ; i++) {
		rx->desc[i].addr = m->buf_iova + i * BUF_SZ;
		rx->desc[i].len = BUF_SZ;
		rx->desc[i].flags = VRING_DESC_F_WRITE;
		dvq_publish(rx, i);
		tx->desc[i].addr = m->buf_iova + (QSZ + i) * BUF_SZ;
		tx->desc[i].flags = 0;
	}
	return 0;
}

/* Send up to @budget frames; returns how many. */
int net_submit(struct vmm *m, unsigned int budget)
{
	struct dvq *tx = &m->vq[NET_TXQ];
	struct gstate *g = m->g;
	struct gvq *txg = &g->vq[NET_TXQ];
	unsigned int n = 0, i, slot;

	while (n < budget && g->sent - g->completed < m->cfg.window &&
	       g->next_seq < SEEN_BITS) {
		slot = txg->next_slot;
		if (txg->slot_seq[slot])
			break;		/* TX completion still pending */
		txg->next_slot = (slot + 1) % QSZ;
		struct frame *f = (struct frame *)txbuf(m, slot);
		uint64_t seq = g->next_seq++;

		memset(&f->vnet, 0, sizeof(f->vnet));
		memset(f->dst, 0xff, 6);	/* broadcast: passes the sim's filter */
		memcpy(f->src, "\x02\x00\x00\x00\x00\x01", 6);
		f->ethertype = 0xb588;		/* 0x88b5, local experimental */
		f->seq = seq;
		f->len = 46 + (seq * 131) % (FRAME_MAX - 46);
		for (i = 0; i < f->len; i++)
			f->data[i] = (uint8_t)(seq * 7 + i);
		f->crc = fnv1a(f->data, f->len);
		tx->desc[slot].len = sizeof(*f) + f->len;
		txg->slot_seq[slot] = seq;
		dvq_publish(tx, slot);
		g->sent++;
		n++;
	}
	if (n)
		vdpalu_kick(&m->dev, NET_TXQ);
	return n;
}

static void rx_frame(struct vmm *m, const uint8_t *p, uint32_t len)
{
	const struct frame *f = (const void *)p;
	struct gstate *g = m->g;

	if (len < sizeof(*f) || f->len > FRAME_MAX ||
	    len != sizeof(*f) + f->len || f->seq == 0 ||
	    f->seq >= g->next_seq || fnv1a(f->data, f->len) != f->crc) {
		g->bad++;
		return;
	}
	if (g->seen[f->seq / 8] & (1u << (f->seq % 8))) {
		g->duplicated++;
		return;
	}
	g->seen[f->seq / 8] |= 1u << (f->seq % 8);
	g->completed++;
}

/* Reap TX completions and RX frames, repost RX; returns frames received. */
int net_reap(struct vmm *m)
{
	struct dvq *rx = &m->vq[NET_RXQ], *tx = &m->vq[NET_TXQ];
	struct gvq *txg = &m->g->vq[NET_TXQ];
	uint32_t id, len;
	int n = 0;

	while (dvq_next_used(tx, &id, &len)) {
		if (id >= QSZ || !txg->slot_seq[id]) {
			m->g->duplicated++;	/* completed twice */
			continue;
		}
		txg->slot_seq[id] = 0;
		m->g->tx_done++;
	}
	while (dvq_next_used(rx, &id, &len)) {
		if (id >= QSZ) {
			m->g->bad++;
			continue;
		}
		rx_frame(m, rxbuf(m, id), len);
		dvq_publish(rx, id);
		n++;
	}
	if (n)
		vdpalu_kick(&m->dev, NET_RXQ);
	return n;
}
