// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The two live update sequences (docs/vhost-vdpa-live-update.rst), both halves.
 *
 * Reset flow:  old: SUSPEND; GET_VRING_BASE each vq; SET_STATUS(0)
 *              new: NEW_OWNER; features; rebuild vrings; REMAP; DRIVER_OK
 * Resume flow: old: SUSPEND
 *              new: NEW_OWNER; REMAP; RESUME
 *
 * Everything that can refuse is checked before the first step that
 * changes the device, so a refusal leaves it running (save) or untouched
 * (restore).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static vdpalu_step_hook_fn step_hook;
static void *step_hook_arg;

void vdpalu_set_step_hook(vdpalu_step_hook_fn fn, void *arg)
{
	step_hook = fn;
	step_hook_arg = arg;
}

void vdpalu_passed(const char *point)
{
	if (step_hook)
		step_hook(point, step_hook_arg);
}

void vdpalu_step_time(struct vdpalu_dev *dev, enum vdpalu_step s, uint64_t t,
		      uint32_t count)
{
	dev->tl.ns[s] = vdpalu_now_ns() - t;
	dev->tl.count[s] = count;
}

static void step_end(struct vdpalu_dev *dev, enum vdpalu_step s, uint64_t t,
		     uint32_t count)
{
	vdpalu_step_time(dev, s, t, count);
	vdpalu_passed(vdpalu_step_name(s));
}

static const char *need_msg(unsigned int bit)
{
	switch (bit) {
	case VHOST_BACKEND_F_SUSPEND:
		return "VHOST_BACKEND_F_SUSPEND: it cannot be quiesced for an update";
	case VHOST_BACKEND_F_NEW_OWNER:
		return "VHOST_BACKEND_F_NEW_OWNER: a new image could not take it over";
	case VHOST_BACKEND_F_IOTLB_PERSIST:
		return "VHOST_BACKEND_F_IOTLB_PERSIST: the reset flow would drop its mappings";
	case VHOST_BACKEND_F_RESUME:
		return "VHOST_BACKEND_F_RESUME: the resume flow needs it";
	default:
		return "a backend feature";
	}
}

static int require(const struct vdpalu_dev *dev, unsigned int bit)
{
	if (vdpalu_has_backend(dev, bit))
		return 0;
	return vdpalu_fail(EOPNOTSUPP, "device %s %s",
			   dev->backend_offered & (1ULL << bit) ?
			   "offers but this VMM did not ack" : "lacks",
			   need_msg(bit));
}

/*
 * What a handover in @flow needs, checked before anything changes: the
 * backend features acked, and guest memory the next image can map too.
 */
int vdpalu_check_handover(const struct vdpalu_dev *dev, enum vdpalu_flow flow)
{
	unsigned int i;

	if (require(dev, VHOST_BACKEND_F_SUSPEND) ||
	    require(dev, VHOST_BACKEND_F_NEW_OWNER) ||
	    require(dev, flow == VDPALU_FLOW_RESUME ? VHOST_BACKEND_F_RESUME :
			 VHOST_BACKEND_F_IOTLB_PERSIST))
		return -1;
	for (i = 0; i < dev->nr_regions; i++) {
		const struct vdpalu_region *r = &dev->regions[i];

		if (vdpalu_check_shared(r->fd, r->offset, r->addr, r->size))
			return -1;
	}
	return 0;
}

static enum vdpalu_flow pick_flow(const struct vdpalu_dev *dev,
				  enum vdpalu_flow flow)
{
	if (flow != VDPALU_FLOW_AUTO)
		return flow;
	return vdpalu_has_backend(dev, VHOST_BACKEND_F_RESUME) ?
	       VDPALU_FLOW_RESUME : VDPALU_FLOW_RESET;
}

/* FD_CLOEXEC on (after restore) or off (for exec) for every fd we own. */
int vdpalu_set_fds_cloexec(struct vdpalu_dev *dev, bool cloexec)
{
	unsigned int i;
	int ret = 0;

	ret |= vdpalu_set_cloexec(dev->fd, cloexec);
	for (i = 0; i < VDPALU_MAX_VQS; i++) {
		if (!dev->vqs[i].configured)
			continue;
		ret |= vdpalu_set_cloexec(dev->vqs[i].kick_fd, cloexec);
		ret |= vdpalu_set_cloexec(dev->vqs[i].call_fd, cloexec);
	}
	for (i = 0; i < dev->nr_regions; i++)
		ret |= vdpalu_set_cloexec(dev->regions[i].fd, cloexec);
	return ret ? vdpalu_fail(errno, "fcntl(F_SETFD): %s",
				 strerror(errno)) : 0;
}

int vdpalu_blob_write(const struct vdpalu_dev *dev, int fd, const void *app,
		      size_t app_len)
{
	uint8_t *buf = malloc(VDPALU_BLOB_MAX);
	ssize_t len;
	int ret = -1;

	if (!buf)
		return vdpalu_fail(ENOMEM, "out of memory");
	len = vdpalu_blob_encode(dev, app, app_len, buf, VDPALU_BLOB_MAX);
	if (len < 0)
		goto out;
	if (pwrite(fd, buf, len, 0) != len) {
		vdpalu_fail(errno, "write state blob: %s", strerror(errno));
		goto out;
	}
	/* The new image reads a blob nobody can change under it. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
				   F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		vdpalu_fail(errno, "seal state blob: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

int vdpalu_save(struct vdpalu_dev *dev, enum vdpalu_flow flow,
		const void *app, size_t app_len, int *blob_fd)
{
	uint8_t run_status = dev->status;
	unsigned int i;
	uint64_t t;
	int fd, err;

	vdpalu_clear_error();
	if (dev->fd < 0)
		return vdpalu_fail(EBADF, "device is not open");
	if (app_len > VDPALU_APP_MAX)
		return vdpalu_fail(EMSGSIZE, "VMM state of %zu bytes: the blob carries %d",
				   app_len, VDPALU_APP_MAX);
	flow = pick_flow(dev, flow);
	if (vdpalu_check_handover(dev, flow))
		return -1;
	/* Allocate before suspending: no failure after that point but I/O. */
	fd = memfd_create("vdpalu-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return vdpalu_fail(errno, "memfd_create: %s", strerror(errno));

	memset(&dev->tl, 0, sizeof(dev->tl));
	dev->tl.start_ns = vdpalu_now_ns();
	dev->flow = flow;
	t = vdpalu_now_ns();
	if (vdpalu_ioctl(dev, VHOST_VDPA_SUSPEND, NULL, "VHOST_VDPA_SUSPEND"))
		goto fail_close;
	step_end(dev, VDPALU_STEP_SUSPEND, t, 0);

	if (flow == VDPALU_FLOW_RESET) {
		t = vdpalu_now_ns();
		for (i = 0; i < VDPALU_MAX_VQS; i++) {
			struct vhost_vring_state s = { .index = i };

			if (!dev->vqs[i].configured)
				continue;
			if (vdpalu_ioctl(dev, VHOST_GET_VRING_BASE, &s,
					 "VHOST_GET_VRING_BASE"))
				goto fail_resume;
			dev->vqs[i].base = s.num;
		}
		step_end(dev, VDPALU_STEP_VRING_SAVE, t, i);
		t = vdpalu_now_ns();
		if (vdpalu_set_status(dev, 0))
			goto fail_resume;
		step_end(dev, VDPALU_STEP_RESET, t, 0);
	}

	t = vdpalu_now_ns();
	dev->status = run_status;	/* what the new image restores */
	if (vdpalu_blob_write(dev, fd, app, app_len) ||
	    vdpalu_set_fds_cloexec(dev, false) || vdpalu_set_cloexec(fd, false))
		goto fail_undo;
	step_end(dev, VDPALU_STEP_BLOB_SAVE, t, 0);
	dev->tl.end_ns = vdpalu_now_ns();
	*blob_fd = fd;
	return 0;

fail_undo:
	err = errno;
	vdpalu_cancel(dev);
	errno = err;
	goto fail_close;
fail_resume:
	err = errno;
	ioctl(dev->fd, VHOST_VDPA_RESUME);
	errno = err;
fail_close:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

static int rebuild_vrings(struct vdpalu_dev *dev)
{
	unsigned int i, n = 0;
	uint64_t t = vdpalu_now_ns();

	for (i = 0; i < VDPALU_MAX_VQS; i++) {
		if (!dev->vqs[i].configured)
			continue;
		if (vdpalu_vq_program(dev, i))
			return -1;
		n++;
	}
	step_end(dev, VDPALU_STEP_VRINGS, t, n);
	return 0;
}

/* Program the device again from @dev (reset flow); return the status to set. */
static int restart_reset_flow(struct vdpalu_dev *dev)
{
	uint8_t run_status = dev->status;
	uint64_t t = vdpalu_now_ns();

	if (vdpalu_set_features(dev, dev->features))
		return -1;
	step_end(dev, VDPALU_STEP_FEATURES, t, 0);
	if (rebuild_vrings(dev))
		return -1;
	return run_status;
}

static int remap_all(struct vdpalu_dev *dev)
{
	unsigned int i;
	uint64_t t;

	t = vdpalu_now_ns();
	if (vdpalu_iotlb_batch(dev, VHOST_IOTLB_BATCH_BEGIN))
		return -1;
	for (i = 0; i < dev->nr_regions; i++) {
		struct vdpalu_region *r = &dev->regions[i];

		if (vdpalu_iotlb(dev, VHOST_IOTLB_REMAP, r->iova, r->size,
				 (uintptr_t)r->addr, 0))
			return -1;
		if (i == 0)
			vdpalu_passed("remap-open");
	}
	if (vdpalu_iotlb_batch(dev, VHOST_IOTLB_BATCH_END))
		return -1;
	step_end(dev, VDPALU_STEP_REMAP, t, i);
	return 0;
}

int vdpalu_cancel(struct vdpalu_dev *dev)
{
	int status;

	vdpalu_set_fds_cloexec(dev, true);
	if (dev->flow == VDPALU_FLOW_RESUME)
		return vdpalu_ioctl(dev, VHOST_VDPA_RESUME, NULL,
				    "VHOST_VDPA_RESUME");
	status = restart_reset_flow(dev);
	if (status < 0)
		return -1;
	return vdpalu_set_status(dev, status);
}

/* Undoes map_regions(); on failure paths, so errno is kept. */
static void unmap_regions(struct vdpalu_dev *dev)
{
	unsigned int i;
	int err = errno;

	for (i = 0; i < dev->nr_regions; i++) {
		if (dev->regions[i].addr)
			munmap(dev->regions[i].addr, dev->regions[i].size);
		dev->regions[i].addr = NULL;
	}
	errno = err;
}

/*
 * Decode the blob into @nd with a fresh timeline for the restore, and
 * keep the old image's in @save_tl.
 */
static int load_blob(struct vdpalu_dev *nd, struct vdpalu_timeline *save_tl,
		     int blob_fd, const int *fds, unsigned int nr_fds,
		     void *app, size_t *app_len)
{
	uint64_t start = vdpalu_now_ns();
	ssize_t len;

	len = vdpalu_blob_load(blob_fd, fds, nr_fds, nd, app, app_len);
	if (len < 0)
		return -1;
	*save_tl = nd->tl;
	memset(&nd->tl, 0, sizeof(nd->tl));
	nd->tl.start_ns = start;
	step_end(nd, VDPALU_STEP_BLOB_LOAD, start, len);
	return 0;
}

/* Checks on the live device that must pass before anything changes. */
static int restore_check(struct vdpalu_dev *dev)
{
	unsigned int i;
	struct stat st;

	if (vdpalu_ioctl(dev, VHOST_GET_BACKEND_FEATURES, &dev->backend_offered,
			 "VHOST_GET_BACKEND_FEATURES"))
		return -1;
	/* Only what the device still offers can be acked again. */
	if (!(dev->backend_offered & (1ULL << VHOST_BACKEND_F_NEW_OWNER)))
		return vdpalu_fail(EOPNOTSUPP, "device lacks %s",
				   need_msg(VHOST_BACKEND_F_NEW_OWNER));
	if (dev->flow == VDPALU_FLOW_RESUME &&
	    !(dev->backend_offered & (1ULL << VHOST_BACKEND_F_RESUME)))
		return vdpalu_fail(EOPNOTSUPP, "device lacks %s",
				   need_msg(VHOST_BACKEND_F_RESUME));
	for (i = 0; i < dev->nr_regions; i++) {
		struct vdpalu_region *r = &dev->regions[i];

		if (fstat(r->fd, &st) < 0 ||
		    (uint64_t)st.st_size < r->offset + r->size)
			return vdpalu_fail(EINVAL, "guest memory fd %d is smaller than region %u",
					   r->fd, i);
	}
	return 0;
}

/* Any address will do: the device is told where with REMAP. */
static int map_regions(struct vdpalu_dev *dev)
{
	uint64_t t = vdpalu_now_ns();
	unsigned int i;

	for (i = 0; i < dev->nr_regions; i++) {
		struct vdpalu_region *r = &dev->regions[i];

		r->addr = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			       r->fd, r->offset);
		if (r->addr == MAP_FAILED) {
			int err = errno;

			r->addr = NULL;
			unmap_regions(dev);
			return vdpalu_fail(err, "mmap guest memory region %u: %s",
					   i, strerror(err));
		}
	}
	step_end(dev, VDPALU_STEP_MAP, t, dev->nr_regions);
	return 0;
}

int vdpalu_new_owner(struct vdpalu_dev *dev)
{
	int err;

	if (ioctl(dev->fd, VHOST_NEW_OWNER) >= 0)
		return 0;
	err = errno;
	return vdpalu_fail(err, "VHOST_NEW_OWNER: %s%s", strerror(err),
			   err == EPERM ? " (the old owner did not ack VHOST_BACKEND_F_NEW_OWNER)" :
			   err == ENOMEM ? " (RLIMIT_MEMLOCK too small for the pinned guest memory)" :
			   err == EBUSY ? " (device still running: not suspended)" : "");
}

/* A refusal leaves nothing of this restore behind: no mappings either. */
static int take_ownership(struct vdpalu_dev *nd)
{
	uint64_t t = vdpalu_now_ns();

	if (vdpalu_new_owner(nd)) {
		unmap_regions(nd);
		return -1;
	}
	step_end(nd, VDPALU_STEP_NEW_OWNER, t, 0);
	return 0;
}

int vdpalu_ack_backend(struct vdpalu_dev *dev, uint64_t want)
{
	uint64_t ack = dev->backend_offered & want;

	if (vdpalu_ioctl(dev, VHOST_SET_BACKEND_FEATURES, &ack,
			 "VHOST_SET_BACKEND_FEATURES"))
		return -1;
	dev->backend_features = ack;
	return 0;
}

/*
 * NEW_OWNER cleared the old image's acks: ours again, with REMAP where
 * the device has it, since this restore is about to use it.
 */
static int ack_backend_features(struct vdpalu_dev *nd)
{
	if (vdpalu_ack_backend(nd, nd->backend_features |
				   (1ULL << VHOST_BACKEND_F_IOTLB_REMAP)))
		return -1;
	vdpalu_passed("backend-features");
	return 0;
}

/* DRIVER_OK (reset flow) or RESUME: the end of the device's blackout. */
static int start_device(struct vdpalu_dev *dev, uint8_t status)
{
	uint64_t t = vdpalu_now_ns();

	if (dev->flow == VDPALU_FLOW_RESET) {
		if (vdpalu_set_status(dev, status))
			return -1;
	} else if (vdpalu_ioctl(dev, VHOST_VDPA_RESUME, NULL,
				"VHOST_VDPA_RESUME")) {
		return -1;
	}
	step_end(dev, VDPALU_STEP_START, t, 0);
	dev->tl.end_ns = vdpalu_now_ns();
	return 0;
}

/* Reprogram (reset flow), point the device at our mappings, run it. */
static int restart_device(struct vdpalu_dev *dev)
{
	int status = dev->status;

	if (dev->flow == VDPALU_FLOW_RESET) {
		status = restart_reset_flow(dev);
		if (status < 0)
			return -1;
	}
	if (vdpalu_has_backend(dev, VHOST_BACKEND_F_IOTLB_REMAP) &&
	    remap_all(dev))
		return -1;
	return start_device(dev, status);
}

/* The save steps of the old image, the restore steps here. */
static void merge_timelines(struct vdpalu_timeline *tl,
			    const struct vdpalu_timeline *save_tl)
{
	unsigned int i;

	for (i = VDPALU_STEP_SUSPEND; i <= VDPALU_STEP_BLOB_SAVE; i++) {
		tl->ns[i] = save_tl->ns[i];
		tl->count[i] = save_tl->count[i];
	}
	tl->start_ns = save_tl->start_ns;	/* the blackout began there */
}

/* What vdpalu_open() would have read; the device runs whatever fails here. */
static void reread_device(struct vdpalu_dev *dev)
{
	vdpalu_ioctl(dev, VHOST_VDPA_GET_DEVICE_ID, &dev->device_id,
		     "VHOST_VDPA_GET_DEVICE_ID");
	vdpalu_ioctl(dev, VHOST_GET_FEATURES, &dev->device_features,
		     "VHOST_GET_FEATURES");
}

int vdpalu_restore(struct vdpalu_dev *dev, int blob_fd, const int *fds,
		   unsigned int nr_fds, void *app, size_t *app_len)
{
	struct vdpalu_timeline save_tl;
	struct vdpalu_dev nd;

	vdpalu_clear_error();
	if (load_blob(&nd, &save_tl, blob_fd, fds, nr_fds, app, app_len) ||
	    restore_check(&nd) || map_regions(&nd) || take_ownership(&nd))
		return -1;
	/*
	 * From here on the device is ours: on failure hand it to the caller
	 * (dev) anyway, so it can be closed or retried.
	 */
	if (ack_backend_features(&nd) || restart_device(&nd)) {
		int err = errno;

		*dev = nd;
		errno = err;
		return -1;
	}
	merge_timelines(&nd.tl, &save_tl);
	vdpalu_set_fds_cloexec(&nd, true);
	reread_device(&nd);
	*dev = nd;
	return 0;
}
