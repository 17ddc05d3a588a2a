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
 * resume).  The kernel side: docs/vhost-vdpa-live-update.rst.
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
 *	vdpalu_state_env(blob, var);
 *	envp = vdpalu_exec_env(environ, vars);	blob = vdpalu_blob_fd_from_env();
 *	execve(path, argv, envp);		vdpalu_restore(&dev, blob, NULL, 0,
 *							       &my_state, &len);
 *						... run: dev.regions[i].addr is
 *						where guest memory is now ...
 *
 * Every function returns 0 or a positive count on success and -1 with errno
 * set on failure; vdpalu_errmsg() then says what went wrong and why.  The
 * refusals (private anonymous memory, missing capability, bad blob) happen
 * before anything is changed.  The library never changes the process
 * environment (setenv() is unsafe in a threaded VMM): what must reach a
 * new image comes back as "NAME=value" strings for the caller's execve().
 *
 * The ABI: only the functions marked VDPALU_API are exported from
 * libvdpalu.so.VDPALU_VERSION_MAJOR; the structs below are part of it.
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

#define VDPALU_VERSION_MAJOR	0
#define VDPALU_VERSION_MINOR	2
#define VDPALU_VERSION_PATCH	0
#define VDPALU_VERSION_NUM(a, b, c)	(((a) << 16) | ((b) << 8) | (c))
#define VDPALU_VERSION	VDPALU_VERSION_NUM(VDPALU_VERSION_MAJOR,	\
					   VDPALU_VERSION_MINOR,	\
					   VDPALU_VERSION_PATCH)

#define VDPALU_API	__attribute__((visibility("default")))

#define VDPALU_MAX_VQS		8
#define VDPALU_MAX_REGIONS	16
/* Environment variable that carries the state blob's fd across exec. */
#define VDPALU_STATE_ENV	"VDPALU_STATE_FD"
/* Environment variable naming the fds of vdpalu_keep_old_mm()'s keeper. */
#define VDPALU_OLD_MM_ENV	"VDPALU_OLD_MM_FDS"
/* Room for one "NAME=value" string of the two variables above. */
#define VDPALU_ENV_MAX		64
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
VDPALU_API const char *vdpalu_errmsg(void);
VDPALU_API uint64_t vdpalu_now_ns(void);
VDPALU_API const char *vdpalu_step_name(enum vdpalu_step step);

/* Zero a device struct: no fd, no regions. */
VDPALU_API void vdpalu_init(struct vdpalu_dev *dev);

/*
 * Open @path, read features, ack the backend features in
 * VDPALU_BACKEND_WANTED that the device offers, minus @backend_mask_out
 * (lets a VMM decline, e.g., consent to ownership transfer), and become
 * its owner, in that order (QEMU's). Fails with E2BIG, before owning the
 * device, if it has more than VDPALU_MAX_VQS virtqueues.
 */
VDPALU_API int vdpalu_open(struct vdpalu_dev *dev, const char *path,
		uint64_t backend_mask_out);
/* Close the device and every fd and mapping the library holds. */
VDPALU_API void vdpalu_close(struct vdpalu_dev *dev);

/* ACKNOWLEDGE | DRIVER, SET_FEATURES (@wanted & offered), FEATURES_OK. */
VDPALU_API int vdpalu_negotiate(struct vdpalu_dev *dev, uint64_t wanted);
VDPALU_API int vdpalu_set_status(struct vdpalu_dev *dev, uint8_t status);
VDPALU_API int vdpalu_get_status(struct vdpalu_dev *dev, uint8_t *status);
VDPALU_API int vdpalu_get_config(struct vdpalu_dev *dev, unsigned int off, void *buf,
		      unsigned int len);
VDPALU_API bool vdpalu_has_backend(const struct vdpalu_dev *dev, unsigned int bit);

/* Create a memfd of @size, map it MAP_SHARED and IOTLB_UPDATE it at @iova. */
VDPALU_API int vdpalu_mem_alloc(struct vdpalu_dev *dev, uint64_t iova, uint64_t size,
		     struct vdpalu_region **out);
/*
 * Map existing guest memory: @addr must be a MAP_SHARED mapping of @fd at
 * @offset over all of @size; private or anonymous memory is refused with
 * EINVAL (a new image could not see it).
 */
VDPALU_API int vdpalu_mem_add(struct vdpalu_dev *dev, int fd, uint64_t offset,
		   void *addr, uint64_t size, uint64_t iova);
VDPALU_API void *vdpalu_iova_to_va(const struct vdpalu_dev *dev, uint64_t iova);

/*
 * Set up split virtqueue @idx of @num entries whose rings are at the given
 * IOVAs, with new kick/call eventfds, and enable it.
 */
VDPALU_API int vdpalu_vq_setup(struct vdpalu_dev *dev, unsigned int idx, uint16_t num,
		    uint64_t desc, uint64_t avail, uint64_t used);
VDPALU_API int vdpalu_kick(const struct vdpalu_dev *dev, unsigned int idx);
/* DRIVER_OK. */
VDPALU_API int vdpalu_start(struct vdpalu_dev *dev);

/*
 * Suspend the device and write its state plus @app_len bytes of VMM state
 * into a sealed memfd; return its fd in @blob_fd, without FD_CLOEXEC, like
 * the device, memfds and eventfds.  @flow AUTO picks RESUME when acked.
 */
VDPALU_API int vdpalu_save(struct vdpalu_dev *dev, enum vdpalu_flow flow,
		const void *app, size_t app_len, int *blob_fd);
/* Undo a save that is not followed by an update (resume or restart). */
VDPALU_API int vdpalu_cancel(struct vdpalu_dev *dev);

/*
 * The fds a blob refers to, in the order a receiver must pass them back to
 * vdpalu_restore() (for SCM_RIGHTS transfer). Returns how many.
 */
VDPALU_API int vdpalu_blob_fds(int blob_fd, int *fds, unsigned int max);

/*
 * Take the device over from the state in @blob_fd.  @fds/@nr_fds: the
 * received fds in vdpalu_blob_fds() order, or NULL when the fd numbers
 * are unchanged (exec, fork).  @app (VDPALU_APP_MAX bytes) receives the
 * VMM state, its length in @app_len.
 */
VDPALU_API int vdpalu_restore(struct vdpalu_dev *dev, int blob_fd, const int *fds,
		   unsigned int nr_fds, void *app, size_t *app_len);
/*
 * "VDPALU_STATE_FD=<fd>" into @var (VDPALU_ENV_MAX bytes), for the new
 * image's environment: vdpalu_blob_fd_from_env() there reads it.
 */
VDPALU_API int vdpalu_state_env(int blob_fd, char *var, size_t len);
/* The blob fd named by VDPALU_STATE_ENV, or -1 (errno ENOENT/EBADF). */
VDPALU_API int vdpalu_blob_fd_from_env(void);

/*
 * An environment for execve() of the new image: the strings of @base
 * (usually environ) less any VDPALU_STATE_ENV and VDPALU_OLD_MM_ENV left
 * from an earlier update, then the NULL-terminated @vars ("NAME=value",
 * from vdpalu_state_env() and vdpalu_keep_old_mm()).  The array is
 * malloc()ed and points into @base and @vars: free() only the array.
 * NULL with errno ENOMEM.
 */
VDPALU_API char **vdpalu_exec_env(char *const *base, char *const *vars);

/*
 * Take exec's teardown of the old address space out of the blackout.
 * Call before an exec update, best before vdpalu_save() since it takes a
 * few system calls: a keeper task shares the address space, so exec lets
 * go of it instead of unmapping all of guest memory first, which is the
 * part of an exec update that grows with guest memory.  Writes
 * "VDPALU_OLD_MM_FDS=..." into @var (VDPALU_ENV_MAX bytes), which must
 * reach the new image's environment, like vdpalu_state_env()'s.  EBUSY if
 * a keeper this image started or inherited is not released yet.
 *
 * The new image calls vdpalu_release_old_mm(getenv(VDPALU_OLD_MM_ENV))
 * once the device runs (or the old image, if its exec failed, with the
 * value part of @var): the keeper exits and the old address space is torn
 * down then.  @wait: return only when that is done.  @fds NULL, or a value
 * released already or not this process's, does nothing; if the new image
 * dies first, the keeper exits by itself.
 */
VDPALU_API int vdpalu_keep_old_mm(char *var, size_t len);
VDPALU_API int vdpalu_release_old_mm(const char *fds, bool wait);

/*
 * Fault drills: @fn is called with the name of each point of an update
 * as it is passed, in this process, until it is set again (NULL: none).
 * The points are the vdpalu_step_name()s of vdpalu_save() and
 * vdpalu_restore() as each step ends, plus "backend-features" (restore:
 * acked again after NEW_OWNER) and "remap-open" (restore and
 * vdpalu_take_over(): REMAP batch begun, first region remapped, BATCH_END
 * not sent).  A test kills the process there (tests/vm/lu-kill.c), the
 * benchmark takes the time there; a VMM has no use for it.
 */
typedef void (*vdpalu_step_hook_fn)(const char *point, void *arg);
VDPALU_API void vdpalu_set_step_hook(vdpalu_step_hook_fn fn, void *arg);

/* Pinned memory of the calling process (VmPin of /proc/self/status). */
VDPALU_API long vdpalu_vmpin_kb(void);

/*
 * Pre-staged handover (what QEMU's cpr-transfer does): the new process is
 * started while the old one still runs the guest, receives the device fd,
 * eventfds and memfds over a UNIX socket (SCM_RIGHTS), maps guest memory
 * and faults it in; only then does the old process suspend.  What is left
 * in the device blackout is SUSPEND, passing a few bytes, NEW_OWNER, one
 * REMAP per mapping (VA devices, one IOTLB batch when the device acks
 * IOTLB_BATCH) and RESUME: nothing that grows with guest memory.
 *
 *	old process				new process
 *	vdpalu_stage_describe(&dev, app,
 *			      len, &blob);
 *	send blob + vdpalu_blob_fds() ---->	vdpalu_stage_prepare(&st, blob,
 *						    fds, n, app, &len,
 *						    VDPALU_STAGE_POPULATE);
 *	(guest runs on)		     <----	"ready"
 *	vdpalu_stage_suspend(&dev, blob);
 *	"go"			     ---->	vdpalu_take_over(&dev, &st, 0);
 *						... guest runs here ...
 *						vdpalu_take_over_finish(&dev);
 *						vdpalu_stage_free(&st);
 *
 * Only the resume flow can be pre-staged (the reset flow reads vring state
 * after SUSPEND): the device must offer SUSPEND, RESUME and NEW_OWNER.
 * The description is of a running device, so the old process must not
 * change it (vrings, regions, features) between vdpalu_stage_describe()
 * and vdpalu_stage_suspend(); the latter checks and refuses with ESTALE.
 */

/* A guest memory mapping a pre-staged new process has ready for REMAP. */
struct vdpalu_stage_map {
	int fd;			/* memfd, as received */
	uint64_t offset;	/* in the memfd */
	uint64_t size;
	uint64_t iova;
	void *addr;		/* where this process maps it */
};

struct vdpalu_stage {
	struct vdpalu_dev dev;	/* as described: fd, vqs, regions mapped */
	unsigned int nr_maps;	/* the regions of dev, then vdpalu_stage_add() */
	unsigned int max_maps;
	struct vdpalu_stage_map *maps;
	uint64_t map_ns;	/* spent mapping and faulting in */
	bool taken;		/* vdpalu_take_over() succeeded */
};

/* vdpalu_stage_prepare(), vdpalu_stage_add(): fault all of it in now. */
#define VDPALU_STAGE_POPULATE		(1U << 0)
/* vdpalu_take_over(): one IOTLB message per REMAP, no batch around them. */
#define VDPALU_TAKE_OVER_NO_BATCH	(1U << 0)

/*
 * Old process: IOTLB_UPDATE of one mapping the VMM keeps track of itself
 * (a VMM with more than VDPALU_MAX_REGIONS regions, e.g. QEMU's memory
 * listener), in a batch of its own when IOTLB_BATCH is acked.  @addr must
 * be a MAP_SHARED mapping of a memfd.  vdpalu_save() and vdpalu_restore()
 * do not know it; a pre-staged new process adds it with vdpalu_stage_add().
 */
VDPALU_API int vdpalu_dma_map(struct vdpalu_dev *dev, uint64_t iova, uint64_t size,
		   void *addr);

/*
 * Old process, device running: write a description of the device (resume
 * flow) and @app_len bytes of VMM state into a sealed memfd, without
 * suspending.  Its fd in @blob_fd (FD_CLOEXEC set: it is for SCM_RIGHTS);
 * vdpalu_blob_fds() names the fds to send with it.  Refuses, changing
 * nothing, what vdpalu_save() refuses and a device without RESUME.
 */
VDPALU_API int vdpalu_stage_describe(struct vdpalu_dev *dev, const void *app,
			  size_t app_len, int *blob_fd);
/*
 * Old process, once the new one is ready: check that the device is still
 * as @blob_fd describes it (ESTALE if not, still running), then SUSPEND.
 * The blackout starts here: dev->tl.start_ns.  After this, vdpalu_cancel()
 * resumes the device if the new process gives up.
 */
VDPALU_API int vdpalu_stage_suspend(struct vdpalu_dev *dev, int blob_fd);

/*
 * New process: read the description in @blob_fd (@fds/@nr_fds: the
 * received fds in vdpalu_blob_fds() order, or NULL if the numbers are
 * unchanged), map every region of guest memory MAP_SHARED anywhere and,
 * with VDPALU_STAGE_POPULATE, fault it in.  Queries the device, changes
 * nothing on it.  @app receives the VMM state (VDPALU_APP_MAX bytes).
 * On failure nothing stays mapped.
 */
VDPALU_API int vdpalu_stage_prepare(struct vdpalu_stage *st, int blob_fd,
			 const int *fds, unsigned int nr_fds, void *app,
			 size_t *app_len, unsigned int flags);
/*
 * New process: map (and with VDPALU_STAGE_POPULATE fault in) a mapping the
 * old process made with vdpalu_dma_map(): @fd is the received memfd.
 * Returns its address through @addr if not NULL.
 */
VDPALU_API int vdpalu_stage_add(struct vdpalu_stage *st, int fd, uint64_t offset,
		     uint64_t size, uint64_t iova, unsigned int flags,
		     void **addr);
/*
 * New process, after the old one suspended: VHOST_NEW_OWNER; when the
 * device offers IOTLB_REMAP, REMAP of every staged mapping, in one batch
 * if acked (unless VDPALU_TAKE_OVER_NO_BATCH); RESUME.  Nothing else: the
 * device runs again when it returns and @dev is it (dev->tl: new-owner,
 * remap with its count, start).  If NEW_OWNER fails nothing has changed
 * and the stage can be retried or freed; a later failure hands the device
 * to @dev anyway (errno and message say what failed).
 */
VDPALU_API int vdpalu_take_over(struct vdpalu_dev *dev, struct vdpalu_stage *st,
		     unsigned int flags);
/*
 * New process, with the guest running: what need not be in the blackout.
 * Ack the backend features again (the consent to the next transfer, which
 * NEW_OWNER used up), set FD_CLOEXEC on the device's fds, read device id
 * and features.
 */
VDPALU_API int vdpalu_take_over_finish(struct vdpalu_dev *dev);
/*
 * Free the stage.  Before a successful take-over it unmaps what it mapped
 * (the fds stay the caller's); after it, the mappings stay: they are the
 * guest memory the device now uses.
 */
VDPALU_API void vdpalu_stage_free(struct vdpalu_stage *st);

#ifdef __cplusplus
}
#endif
#endif /* VDPALU_H */
