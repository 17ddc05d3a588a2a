/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared by the stress programs (lu-kill, lu-random, lu-race): a guest of
 * one vdpa_sim block device driven one request at a time, the pin
 * counters, TAP-ish output and bounded waits.
 */
#ifndef STRESS_COMMON_H
#define STRESS_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vdpalu.h"

/*
 * Guest memory: one 2 MiB memfd region.  Its first page holds the
 * driver's ring indexes, so they travel with the memory across updates.
 */
#define G_IOVA		0x40000000ULL
#define G_SIZE		(2u << 20)
#define G_RING		(G_IOVA + 0x10000)	/* the vring (virtq.h) */
#define G_HDR		(G_IOVA + 0x20000)	/* request header + status */
#define G_DATA		(G_IOVA + 0x21000)	/* one 4 KiB block */
#define G_QN		16
#define G_NBLK		8			/* blocks carrying the data */

extern int failures;

#define check(cond, ...) do {						\
	int _c = !!(cond);						\
	failures += !_c;						\
	printf("%sok - ", _c ? "" : "not ");				\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	fflush(stdout);							\
} while (0)

#define note(...) do { printf("# " __VA_ARGS__); printf("\n"); fflush(stdout); } while (0)

bool booted_va(void);
bool booted_batch(void);
/* kB of VmPin a guest of G_SIZE costs its owner in this mode. */
long guest_pin_kb(void);
/* FOLL_PIN pages acquired and not released, system-wide. */
long pins_outstanding(void);
/* Wait up to @ms for pins_outstanding() == @want; return the last value. */
long pins_settle(long want, int ms);
long vmpin_kb_of(pid_t pid);
/*
 * Note every process with VmPin or an open vhost-vdpa fd: what a test
 * names when pins don't come back.
 */
void note_pin_holders(void);

/* Open @path, negotiate, map guest memory, set up vq 0, DRIVER_OK. */
int guest_open(struct vdpalu_dev *d, const char *path);
/*
 * guest_open(), retried for up to @ms while the device is busy: a killed
 * holder's file is released when its exit is through, not at the kill.
 */
int guest_open_wait(struct vdpalu_dev *d, const char *path, int ms);
/*
 * One request on vq 0: write block @blk with the pattern of @gen, or read
 * it and compare.  0, -ETIMEDOUT (2 s, no completion), -EIO (status) or
 * -EBADMSG (data differ).
 */
int guest_io(struct vdpalu_dev *d, bool write, unsigned int blk, uint64_t gen);
/* Write, or read and check, all G_NBLK blocks. */
int guest_write_all(struct vdpalu_dev *d, uint64_t gen);
int guest_check_all(struct vdpalu_dev *d, uint64_t gen);

/* waitpid() for at most @ms; SIGKILL and reap on timeout (returns -1). */
int wait_bounded(pid_t pid, int *status, int ms);
/* IOTLB message v2 straight to @fd: 0 or -errno. */
int iotlb_msg(int fd, uint8_t type, uint64_t iova, uint64_t size,
	      uint64_t uaddr, uint8_t perm);
uint64_t rnd_next(uint64_t *s);

#endif /* STRESS_COMMON_H */
