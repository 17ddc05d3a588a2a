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
#include <linux/virtio_config.h>

#include "internal.h"

static vdpalu_step_hook_fn step_hook;
static void *step_hook_arg;

void vdpalu_set_step_hook(vdpalu_step_hook_fn fn, void *arg)
{
	step_hook = fn;
	step_hook_arg = arg;
}

static void passed(const char *point)
{
	if (step_hook)
		step_hook(point, step_hook_arg);
}

static void step_end(struct vdpalu_dev *dev, enum vdpalu_step s, uint64_t t,
		     uint32_t count)
{
	dev->tl.ns[s] = vdpalu_now_ns() - t;
	dev->tl.count[s] = count;
	passed(vdpalu_step_name(s));
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
static int set_fds_cloexec(struct vdpalu_dev *dev, bool cloexec)
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
	    set_fds_cloexec(dev, false) || vdpalu_set_cloexec(fd, false))
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

/* Program the device again from @dev (reset flow); return the status to set. */
static int restart_reset_flow(struct vdpalu_dev *dev)
{
	uint8_t status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	uint8_t run_status = dev->status;
	uint64_t features = dev->features;
	unsigned int i, n = 0;
	uint64_t t;

	t = vdpalu_now_ns();
	if (vdpalu_set_status(dev, status) ||
	    vdpalu_ioctl(dev, VHOST_SET_FEATURES, &features,
			 "VHOST_SET_FEATURES") ||
	    vdpalu_set_status(dev, status | VIRTIO_CONFIG_S_FEATURES_OK))
		return -1;
	step_end(dev, VDPALU_STEP_FEATURES, t, 0);
	t = vdpalu_now_ns();
	for (i = 0; i < VDPALU_MAX_VQS; i++) {
		if (!dev->vqs[i].configured)
			continue;
		if (vdpalu_vq_program(dev, i))
			return -1;
		n++;
	}
	step_end(dev, VDPALU_STEP_VRINGS, t, n);
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
			passed("remap-open");
	}
	if (vdpalu_iotlb_batch(dev, VHOST_IOTLB_BATCH_END))
		return -1;
	step_end(dev, VDPALU_STEP_REMAP, t, i);
	return 0;
}

int vdpalu_cancel(struct vdpalu_dev *dev)
{
	int status;

	set_fds_cloexec(dev, true);
	if (dev->flow == VDPALU_FLOW_RESUME)
		return vdpalu_ioctl(dev, VHOST_VDPA_RESUME, NULL,
				    "VHOST_VDPA_RESUME");
	status = restart_reset_flow(dev);
	if (status < 0)
		return -1;
	return vdpalu_set_status(dev, status);
}

static void unmap_regions(struct vdpalu_dev *dev)
{
	unsigned int i;

	for (i = 0; i < dev->nr_regions; i++) {
		if (dev->regions[i].addr)
			munmap(dev->regions[i].addr, dev->regions[i].size);
		dev->regions[i].addr = NULL;
	}
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

int vdpalu_restore(struct vdpalu_dev *dev, int blob_fd, const int *fds,
		   unsigned int nr_fds, void *app, size_t *app_len)
{
	uint8_t *buf = malloc(VDPALU_BLOB_MAX + 1);
	struct vdpalu_dev nd;
	struct vdpalu_timeline save_tl;
	unsigned int i;
	uint64_t t, start = vdpalu_now_ns(), ack;
	ssize_t len;
	int status;

	vdpalu_clear_error();
	if (!buf)
		return vdpalu_fail(ENOMEM, "out of memory");
	t = start;
	len = vdpalu_blob_read(blob_fd, buf, VDPALU_BLOB_MAX + 1);
	if (len < 0 || vdpalu_blob_decode(buf, len, fds, nr_fds, &nd, app,
					  app_len)) {
		free(buf);
		return -1;
	}
	free(buf);
	save_tl = nd.tl;
	memset(&nd.tl, 0, sizeof(nd.tl));
	nd.tl.start_ns = start;
	step_end(&nd, VDPALU_STEP_BLOB_LOAD, t, len);
	if (restore_check(&nd))
		return -1;

	/* Any address will do: the device is told where with REMAP. */
	t = vdpalu_now_ns();
	for (i = 0; i < nd.nr_regions; i++) {
		struct vdpalu_region *r = &nd.regions[i];

		r->addr = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			       r->fd, r->offset);
		if (r->addr == MAP_FAILED) {
			int err = errno;

			r->addr = NULL;
			unmap_regions(&nd);
			return vdpalu_fail(err, "mmap guest memory region %u: %s",
					   i, strerror(err));
		}
	}
	step_end(&nd, VDPALU_STEP_MAP, t, nd.nr_regions);

	t = vdpalu_now_ns();
	if (ioctl(nd.fd, VHOST_NEW_OWNER) < 0) {
		int err = errno;

		unmap_regions(&nd);
		return vdpalu_fail(err, "VHOST_NEW_OWNER: %s%s", strerror(err),
				   err == EPERM ? " (the old owner did not ack VHOST_BACKEND_F_NEW_OWNER)" :
				   err == ENOMEM ? " (RLIMIT_MEMLOCK too small for the pinned guest memory)" :
				   err == EBUSY ? " (device still running: not suspended)" : "");
	}
	step_end(&nd, VDPALU_STEP_NEW_OWNER, t, 0);
	/*
	 * From here on the device is ours: on failure hand it to the caller
	 * (dev) anyway, so it can be closed or retried.
	 */
	ack = nd.backend_offered & (nd.backend_features |
				    (1ULL << VHOST_BACKEND_F_IOTLB_REMAP));
	if (vdpalu_ioctl(&nd, VHOST_SET_BACKEND_FEATURES, &ack,
			 "VHOST_SET_BACKEND_FEATURES"))
		goto fail;
	nd.backend_features = ack;
	passed("backend-features");

	if (nd.flow == VDPALU_FLOW_RESET) {
		status = restart_reset_flow(&nd);
		if (status < 0)
			goto fail;
	} else {
		status = nd.status;
	}
	if (vdpalu_has_backend(&nd, VHOST_BACKEND_F_IOTLB_REMAP) &&
	    remap_all(&nd))
		goto fail;
	t = vdpalu_now_ns();
	if (nd.flow == VDPALU_FLOW_RESET) {
		if (vdpalu_set_status(&nd, status))
			goto fail;
	} else if (vdpalu_ioctl(&nd, VHOST_VDPA_RESUME, NULL,
				"VHOST_VDPA_RESUME")) {
		goto fail;
	}
	step_end(&nd, VDPALU_STEP_START, t, 0);
	nd.tl.end_ns = vdpalu_now_ns();
	/* Merge: the save steps of the old image, the restore steps here. */
	for (i = VDPALU_STEP_SUSPEND; i <= VDPALU_STEP_BLOB_SAVE; i++) {
		nd.tl.ns[i] = save_tl.ns[i];
		nd.tl.count[i] = save_tl.count[i];
	}
	set_fds_cloexec(&nd, true);
	vdpalu_ioctl(&nd, VHOST_VDPA_GET_DEVICE_ID, &nd.device_id,
		     "VHOST_VDPA_GET_DEVICE_ID");
	vdpalu_ioctl(&nd, VHOST_GET_FEATURES, &nd.device_features,
		     "VHOST_GET_FEATURES");
	*dev = nd;
	dev->tl.start_ns = save_tl.start_ns;	/* the blackout began there */
	return 0;
fail:
	{
		int err = errno;

		*dev = nd;
		errno = err;
	}
	return -1;
}
