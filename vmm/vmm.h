/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vdpa-lu-vmm: a reference mini-VMM for vhost-vdpa live update.
 *
 * It plays the guest driver itself: the virtqueues and the driver's own
 * bookkeeping (free slots, sequence numbers, what was seen) live in guest
 * memory, exactly as a guest kernel's would, so they survive an update
 * without being saved.  Only the VMM's configuration and counters of its
 * own travel in the state blob's app payload.
 */
#ifndef VMM_H
#define VMM_H

#include <stdbool.h>
#include <stdint.h>

#include "vdpalu.h"
#include "virtq.h"

#ifndef VMM_IMAGE_VERSION
#define VMM_IMAGE_VERSION 1
#endif

#define QSZ		256		/* entries per virtqueue */
#define NET_RXQ		0
#define NET_TXQ		1
#define BLK_SLOTS	64		/* 3 descriptors per request */
#define BLK_NBLK	256		/* 4 KiB blocks exercised: 1 MiB */
#define BUF_SZ		2048		/* net buffer */
#define SEEN_BITS	(1u << 21)	/* net frames tracked */
#define MAX_UPDATES	64

/* Guest physical (IOVA) layout; region i is at IOVA_BASE + i * size. */
#define IOVA_BASE	0x40000000ULL
#define G_STATE_OFF	0x0		/* struct gstate */
#define G_RING_OFF	0x80000		/* vq i: its rings (virtq.h) */
#define G_RING_STRIDE	VQ_RINGS_SIZE

/* Driver-side state of one virtqueue, in guest memory. */
struct gvq {
	struct dvq_idx ring;
	uint16_t next_slot;
	uint16_t pad;
	uint64_t slot_seq[QSZ];		/* request in flight per head; 0 free */
	uint32_t slot_blk[QSZ];		/* blk: block of the request */
	uint32_t slot_exp[QSZ];		/* blk read: seq the block must hold */
};

#define GSTATE_MAGIC	0x47534c56	/* "VLSG" */

/* The guest driver's state: in guest memory, survives every update. */
struct gstate {
	uint32_t magic;
	uint32_t device_id;
	uint64_t next_seq;		/* request ids start at 1 */
	uint64_t sent;
	uint64_t completed;		/* unique, verified completions */
	uint64_t duplicated;
	uint64_t bad;			/* failed verification */
	uint64_t tx_done;		/* net: TX completions */
	uint64_t blk_writes;
	struct gvq vq[2];
	uint32_t blk_exp[BLK_NBLK];	/* seq of the last write per block */
	uint8_t seen[SEEN_BITS / 8];	/* net: frame seqs received */
};

enum upd_mode { UPD_NONE, UPD_EXEC, UPD_FORK, UPD_TRANSFER };

/* VMM configuration and history: the state blob's app payload. */
struct vmm_cfg {
	uint32_t magic;
	uint32_t image_version;		/* of the image that wrote it */
	char dev_path[64];
	char exec_bin[256];		/* image for exec updates */
	char transfer[100];		/* socket base path */
	uint32_t mode;
	uint32_t flow;
	uint32_t updates;		/* wanted */
	uint32_t done;			/* so far */
	uint64_t update_after;		/* completions per image */
	uint32_t window;
	uint32_t mem_mb;
	uint32_t regions;
	uint32_t quiet;
	int64_t vmpin_kb;		/* after setup, before any update */
	uint64_t blackout_us[MAX_UPDATES];
	uint64_t first_us[MAX_UPDATES];	/* restart to first completion */
};

struct vmm {
	struct vdpalu_dev dev;
	struct vmm_cfg cfg;
	struct gstate *g;
	struct dvq vq[2];
	unsigned int nvq;
	void *buf;			/* buffer area */
	uint64_t buf_iova;
	uint64_t image_base;		/* g->completed when this image began */
	uint64_t restore_ns;		/* vdpalu_restore() called */
	uint64_t restart_ns;		/* device restarted in this image */
	bool restored;
	uint32_t prev_version;		/* of the image we took over from */
	bool update_failed;		/* refused or failed: ran on here */
};

/* main.c: where the rings of vq @i are */
uint64_t ring_iova(unsigned int i);
void vmm_vq_attach(struct vmm *m, unsigned int i, bool fresh);

/* net.c, blk.c: the two guest drivers */
int net_setup(struct vmm *m, bool fresh);
int net_submit(struct vmm *m, unsigned int budget);
int net_reap(struct vmm *m);
int blk_setup(struct vmm *m, bool fresh);
int blk_submit(struct vmm *m, unsigned int budget);
int blk_reap(struct vmm *m);

/* devices.c */
int dev_create(const char *type, const char *name, const char *mac,
	       char *path, size_t len);
int dev_destroy(const char *name);

/* handover.c */
int handover(struct vmm *m);
int take_over(struct vmm *m, int blob, const int *fds, unsigned int nr);
int take_over_incoming(struct vmm *m, const char *path);

/* timeline.c */
void print_timeline(struct vmm *m, uint64_t first_ns);

/* xfer.c: the transfer method's socket, blob fd first */
#define MAX_XFER_FDS	64
int xfer_send(const char *base, unsigned int i, const int *fds, unsigned int n);
int xfer_receive(const char *path, int *fds, unsigned int *nr);

/* main.c */
int find_guest_driver(struct vmm *m, bool fresh);

#define vmm_log(m, ...) do {						\
	if (!(m)->cfg.quiet) {						\
		printf("vdpa-lu-vmm[%d] v%d: ", getpid(), VMM_IMAGE_VERSION); \
		printf(__VA_ARGS__);					\
		printf("\n");						\
		fflush(stdout);						\
	}								\
} while (0)
/* On stderr; stdout first, so that a log of both keeps the order. */
#define vmm_err(...) do {						\
	fflush(stdout);							\
	fprintf(stderr, "vdpa-lu-vmm[%d] v%d: error: ", getpid(),	\
		VMM_IMAGE_VERSION);					\
	fprintf(stderr, __VA_ARGS__);					\
	fprintf(stderr, "\n");						\
} while (0)

#endif /* VMM_H */
