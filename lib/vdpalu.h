/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvdpalu: the userspace half of vhost-vdpa live update.
 *
 * A VMM opens a vhost-vdpa device, puts guest memory in memfd MAP_SHARED
 * regions, sets up split virtqueues and runs.  To update itself it calls
 * vdpalu_save() (suspend, collect state into a sealed memfd blob, clear
 * FD_CLOEXEC on exactly what must survive), hands the blob fd to the new
 * image (exec, fork or SCM_RIGHTS) and the new image calls vdpalu_restore()
 * (map the memfds anywhere, VHOST_NEW_OWNER, remap, rebuild vrings or
 * resume).  See CONTRACT.md for the kernel side.
 *
 * In short (error handling left out):
 *
 *	old image				new image (exec'd, forked, or
 *						 given the fds over SCM_RIGHTS)
 *	vdpalu_open(&dev, "/dev/vhost-vdpa-0", 0);
 *	vdpalu_negotiate(&dev, features);
 *	vdpalu_mem_alloc(&dev, iova, size, &r);
 *	vdpalu_vq_setup(&dev, 0, 256, desc, avail, used);
 *	vdpalu_start(&dev);
 *	... run ...
 *	vdpalu_save(&dev, VDPALU_FLOW_AUTO,
 *		    &my_state, sizeof(my_state), &blob);
 *	setenv(VDPALU_STATE_ENV, "<blob>");	blob = vdpalu_blob_fd_from_env();
 *	execv(...);				vdpalu_restore(&dev, blob, NULL, 0,
 *							       &my_state, &len);
 *						... run: dev.regions[i].addr is
 *						where guest memory is now ...
 *
 * Every function returns 0 or a positive count on success and -1 with errno
 * set on failure; vdpalu_errmsg() then says what went wrong and why.  The
 * refusals (private anonymous memory, missing capability, bad blob) happen
 * before anything is changed.
 */
#ifndef VDPALU_H
#define VDPALU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdpalu-compat.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VDPALU_MAX_VQS		8
#define VDPALU_MAX_REGIONS	16
/* Environment variable that carries the state blob's fd across exec. */
#define VDPALU_STATE_ENV	"VDPALU_STATE_FD"
/* Environment variable naming the fds of vdpalu_keep_old_mm()'s helper. */
#define VDPALU_OLD_MM_ENV	"VDPALU_OLD_MM_FDS"
/* The largest VMM-private payload a state blob carries. */
#define VDPALU_APP_MAX		4096

enum vdpalu_flow {
	VDPALU_FLOW_AUTO,	/* resume when the device offers RESUME */
	VDPALU_FLOW_RESET,
	VDPALU_FLOW_RESUME,
};

/* Steps of an update, in the order they happen. */
enum vdpalu_step {
	VDPALU_STEP_SUSPEND,
	VDPALU_STEP_VRING_SAVE,		/* GET_VRING_BASE (reset flow) */
	VDPALU_STEP_RESET,		/* SET_STATUS(0) (reset flow) */
	VDPALU_STEP_BLOB_SAVE,
	VDPALU_STEP_BLOB_LOAD,
	VDPALU_STEP_MAP,		/* mmap of the memfds */
	VDPALU_STEP_NEW_OWNER,
	VDPALU_STEP_FEATURES,		/* status + features (reset flow) */
	VDPALU_STEP_VRINGS,		/* vring rebuild (reset flow) */
	VDPALU_STEP_REMAP,
	VDPALU_STEP_START,		/* DRIVER_OK or RESUME */
	VDPALU_STEP_MAX,
};

struct vdpalu_timeline {
	uint64_t ns[VDPALU_STEP_MAX];	/* duration; 0 = step not run */
	uint32_t count[VDPALU_STEP_MAX];	/* e.g. mappings remapped */
	/*
	 * CLOCK_MONOTONIC (system-wide, so it spans exec and processes):
	 * after a save, its start and end; after a restore, the old image's
	 * SUSPEND and the device running again, i.e. the device's downtime.
	 */
	uint64_t start_ns;
	uint64_t end_ns;
};

struct vdpalu_region {
	int fd;			/* memfd */
	uint64_t offset;	/* of the region in the memfd */
	uint64_t size;
	uint64_t iova;
	void *addr;		/* where this process maps it */
	uint8_t perm;		/* VHOST_ACCESS_* */
	bool owned;		/* created (and unmapped) by the library */
};

struct vdpalu_vq {
	bool configured;
	bool enabled;
	uint16_t num;
	uint16_t base;		/* last_avail_idx saved by the reset flow */
	uint64_t desc, avail, used;	/* IOVAs */
	int kick_fd, call_fd;	/* eventfds */
};

struct vdpalu_dev {
	int fd;
	uint32_t device_id;
	uint32_t nvqs;
	uint64_t device_features;	/* offered by the device */
	uint64_t features;		/* negotiated */
	uint64_t backend_offered;
	uint64_t backend_features;	/* acked */
	uint8_t status;			/* last status written */
	enum vdpalu_flow flow;		/* of the last save or restore */
	unsigned int nr_regions;
	struct vdpalu_region regions[VDPALU_MAX_REGIONS];
	struct vdpalu_vq vqs[VDPALU_MAX_VQS];
	struct vdpalu_timeline tl;	/* of the last save or restore */
};

/* Backend features the library acks when offered. */
#define VDPALU_BACKEND_WANTED						\
	((1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) |			\
	 (1ULL << VHOST_BACKEND_F_IOTLB_BATCH) |			\
	 (1ULL << VHOST_BACKEND_F_IOTLB_PERSIST) |			\
	 (1ULL << VHOST_BACKEND_F_SUSPEND) |				\
	 (1ULL << VHOST_BACKEND_F_RESUME) |				\
	 (1ULL << VHOST_BACKEND_F_NEW_OWNER) |				\
	 (1ULL << VHOST_BACKEND_F_IOTLB_REMAP))

/* Last error message of this thread; "" if none. */
const char *vdpalu_errmsg(void);
uint64_t vdpalu_now_ns(void);
const char *vdpalu_step_name(enum vdpalu_step step);

/* Zero a device struct: no fd, no regions. */
void vdpalu_init(struct vdpalu_dev *dev);

/*
 * Open @path, read features, ack the backend features in
 * VDPALU_BACKEND_WANTED that the device offers, minus @backend_mask_out
 * (lets a VMM decline, e.g., consent to ownership transfer), and become
 * its owner, in that order (QEMU's). Fails with E2BIG, before owning the
 * device, if it has more than VDPALU_MAX_VQS virtqueues.
 */
int vdpalu_open(struct vdpalu_dev *dev, const char *path,
		uint64_t backend_mask_out);
/* Close the device and every fd and mapping the library holds. */
void vdpalu_close(struct vdpalu_dev *dev);

/* ACKNOWLEDGE | DRIVER, SET_FEATURES (@wanted & offered), FEATURES_OK. */
int vdpalu_negotiate(struct vdpalu_dev *dev, uint64_t wanted);
int vdpalu_set_status(struct vdpalu_dev *dev, uint8_t status);
int vdpalu_get_status(struct vdpalu_dev *dev, uint8_t *status);
int vdpalu_get_config(struct vdpalu_dev *dev, unsigned int off, void *buf,
		      unsigned int len);
bool vdpalu_has_backend(const struct vdpalu_dev *dev, unsigned int bit);

/* Create a memfd of @size, map it MAP_SHARED and IOTLB_UPDATE it at @iova. */
int vdpalu_mem_alloc(struct vdpalu_dev *dev, uint64_t iova, uint64_t size,
		     struct vdpalu_region **out);
/*
 * Map existing guest memory: @addr must be a MAP_SHARED mapping of @fd at
 * @offset over all of @size; private or anonymous memory is refused with
 * EINVAL (a new image could not see it).
 */
int vdpalu_mem_add(struct vdpalu_dev *dev, int fd, uint64_t offset,
		   void *addr, uint64_t size, uint64_t iova);
void *vdpalu_iova_to_va(const struct vdpalu_dev *dev, uint64_t iova);

/*
 * Set up split virtqueue @idx of @num entries whose rings are at the given
 * IOVAs, with new kick/call eventfds, and enable it.
 */
int vdpalu_vq_setup(struct vdpalu_dev *dev, unsigned int idx, uint16_t num,
		    uint64_t desc, uint64_t avail, uint64_t used);
int vdpalu_kick(const struct vdpalu_dev *dev, unsigned int idx);
/* DRIVER_OK. */
int vdpalu_start(struct vdpalu_dev *dev);

/*
 * Suspend the device and write its state plus @app_len bytes of VMM state
 * into a sealed memfd; return its fd in @blob_fd, without FD_CLOEXEC, like
 * the device, memfds and eventfds.  @flow AUTO picks RESUME when acked.
 */
int vdpalu_save(struct vdpalu_dev *dev, enum vdpalu_flow flow,
		const void *app, size_t app_len, int *blob_fd);
/* Undo a save that is not followed by an update (resume or restart). */
int vdpalu_cancel(struct vdpalu_dev *dev);

/*
 * The fds a blob refers to, in the order a receiver must pass them back to
 * vdpalu_restore() (for SCM_RIGHTS transfer). Returns how many.
 */
int vdpalu_blob_fds(int blob_fd, int *fds, unsigned int max);

/*
 * Take the device over from the state in @blob_fd.  @fds/@nr_fds: the
 * received fds in vdpalu_blob_fds() order, or NULL when the fd numbers
 * are unchanged (exec, fork).  @app (VDPALU_APP_MAX bytes) receives the
 * VMM state, its length in @app_len.
 */
int vdpalu_restore(struct vdpalu_dev *dev, int blob_fd, const int *fds,
		   unsigned int nr_fds, void *app, size_t *app_len);
/* The blob fd named by VDPALU_STATE_ENV, or -1 (errno ENOENT/EBADF). */
int vdpalu_blob_fd_from_env(void);

/*
 * Take exec's teardown of the old address space out of the blackout.
 * Call before an exec update, best before vdpalu_save() since it takes a
 * few system calls: a helper task shares the address space, so exec lets
 * go of it instead of unmapping all of guest memory first, which is the
 * part of an exec update that grows with guest memory.  Like
 * VDPALU_STATE_ENV, VDPALU_OLD_MM_ENV must reach the new image's
 * environment.
 *
 * The new image calls vdpalu_release_old_mm() once the device runs (or the
 * old image, if its exec failed): the helper exits and the old address
 * space is torn down then.  @wait: return only when that is done.  Without
 * the variable in the environment it does nothing; if the new image dies
 * first, the helper exits by itself.
 */
int vdpalu_keep_old_mm(void);
int vdpalu_release_old_mm(bool wait);

/*
 * Fault drills: @fn is called with the name of each point of an update
 * as it is passed, in this process, until it is set again (NULL: none).
 * The points are the vdpalu_step_name()s of vdpalu_save() and
 * vdpalu_restore() as each step ends, plus "backend-features" (restore:
 * acked again after NEW_OWNER) and "remap-open" (restore: REMAP batch
 * begun, first region remapped, BATCH_END not sent).  A test kills the
 * process there (tests/vm/lu-stress.c); a VMM has no use for it.
 */
typedef void (*vdpalu_step_hook_fn)(const char *point, void *arg);
void vdpalu_set_step_hook(vdpalu_step_hook_fn fn, void *arg);

/* Pinned memory of the calling process (VmPin of /proc/self/status). */
long vdpalu_vmpin_kb(void);

#ifdef __cplusplus
}
#endif
#endif /* VDPALU_H */
