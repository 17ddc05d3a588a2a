// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Pre-staged handover: vdpalu_restore() split into what a new process can
 * do while the old one still runs the guest (prepare: map guest memory and
 * fault it in) and what needs the device suspended (take over: NEW_OWNER,
 * REMAP, RESUME).  Mapping and faulting in grow with guest memory; doing
 * them first leaves a blackout of a handful of system calls.
 *
 * The description the new process prepares from is an ordinary state blob
 * of the resume flow, written while the device runs: in that flow no
 * device state is read after SUSPEND, so nothing in it goes stale as long
 * as the VMM leaves vrings, regions and features alone, which
 * vdpalu_stage_suspend() checks.
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

int vdpalu_dma_map(struct vdpalu_dev *dev, uint64_t iova, uint64_t size,
		   void *addr)
{
	int err;

	if (vdpalu_iotlb_batch(dev, VHOST_IOTLB_BATCH_BEGIN))
		return -1;
	if (vdpalu_iotlb(dev, VHOST_IOTLB_UPDATE, iova, size, (uintptr_t)addr,
			 VHOST_ACCESS_RW)) {
		err = errno;
		vdpalu_iotlb_batch(dev, VHOST_IOTLB_BATCH_END);
		errno = err;
		return -1;
	}
	return vdpalu_iotlb_batch(dev, VHOST_IOTLB_BATCH_END);
}

int vdpalu_stage_describe(struct vdpalu_dev *dev, const void *app,
			  size_t app_len, int *blob_fd)
{
	int fd, err;

	vdpalu_clear_error();
	if (dev->fd < 0)
		return vdpalu_fail(EBADF, "device is not open");
	/* A pre-staged handover is the resume flow. */
	if (vdpalu_check_handover(dev, VDPALU_FLOW_RESUME))
		return -1;
	fd = memfd_create("vdpalu-stage", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return vdpalu_fail(errno, "memfd_create: %s", strerror(errno));
	dev->flow = VDPALU_FLOW_RESUME;
	if (vdpalu_blob_write(dev, fd, app, app_len)) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	*blob_fd = fd;
	return 0;
}

/*
 * The device part of an encoded blob: what changes from one encoding to
 * the next (time stamps, checksum) and the VMM payload zeroed or cut off.
 */
static ssize_t device_part(uint8_t *buf, ssize_t len)
{
	struct vdpalu_blob_hdr h;

	if (len < (ssize_t)sizeof(h))
		return len < 0 ? len : vdpalu_fail(EBADMSG, "stage description too short");
	memcpy(&h, buf, sizeof(h));
	len -= h.app_len;
	h.crc = 0;
	h.len = 0;
	h.app_len = 0;
	h.save_ns = 0;
	memset(&h.tl, 0, sizeof(h.tl));
	memcpy(buf, &h, sizeof(h));
	return len;
}

int vdpalu_stage_suspend(struct vdpalu_dev *dev, int blob_fd)
{
	uint8_t *was = malloc(2 * (VDPALU_BLOB_MAX + 1)), *now;
	ssize_t a, b;
	uint64_t t;
	int ret = -1;

	vdpalu_clear_error();
	if (!was)
		return vdpalu_fail(ENOMEM, "out of memory");
	now = was + VDPALU_BLOB_MAX + 1;
	/* Encode the device as it is now, in memory, and compare. */
	dev->flow = VDPALU_FLOW_RESUME;
	a = device_part(was, vdpalu_blob_read(blob_fd, was, VDPALU_BLOB_MAX + 1));
	b = device_part(now, vdpalu_blob_encode(dev, NULL, 0, now,
						VDPALU_BLOB_MAX + 1));
	if (a < 0 || b < 0)
		goto out;
	if (a != b || memcmp(was, now, a)) {
		vdpalu_fail(ESTALE, "the device changed since it was described (vrings, regions or features): describe it again");
		goto out;
	}
	/* Nothing between here and SUSPEND's return but the ioctl. */
	memset(&dev->tl, 0, sizeof(dev->tl));
	dev->tl.start_ns = t = vdpalu_now_ns();
	if (vdpalu_ioctl(dev, VHOST_VDPA_SUSPEND, NULL, "VHOST_VDPA_SUSPEND"))
		goto out;
	vdpalu_step_time(dev, VDPALU_STEP_SUSPEND, t, 0);
	dev->tl.end_ns = vdpalu_now_ns();
	ret = 0;
out:
	free(was);
	return ret;
}

static int stage_grow(struct vdpalu_stage *st)
{
	unsigned int max = st->max_maps ? 2 * st->max_maps : VDPALU_MAX_REGIONS;
	struct vdpalu_stage_map *m;

	if (st->nr_maps < st->max_maps)
		return 0;
	m = realloc(st->maps, max * sizeof(*m));
	if (!m)
		return vdpalu_fail(ENOMEM, "out of memory");
	st->maps = m;
	st->max_maps = max;
	return 0;
}

/* Map @size of @fd at @offset, the whole of it faulted in if asked to. */
static void *map_guest(int fd, uint64_t offset, uint64_t size,
		       unsigned int flags)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0) {
		vdpalu_fail(errno, "guest memory fd %d: %s", fd, strerror(errno));
		return NULL;
	}
	if ((uint64_t)st.st_size < offset + size || offset + size < offset) {
		vdpalu_fail(EINVAL, "guest memory fd %d has %lld bytes, the mapping needs %#" PRIx64 "+%#" PRIx64,
			    fd, (long long)st.st_size, offset, size);
		return NULL;
	}
	/*
	 * MAP_POPULATE faults every page in at once.  A shared writable
	 * shmem page is mapped writable even by a read fault (no dirty
	 * tracking), so the guest's first stores will not fault either.
	 */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | (flags & VDPALU_STAGE_POPULATE ? MAP_POPULATE : 0),
		 fd, offset);
	if (p == MAP_FAILED) {
		vdpalu_fail(errno, "mmap guest memory: %s", strerror(errno));
		return NULL;
	}
	return p;
}

static int stage_map(struct vdpalu_stage *st, int fd, uint64_t offset,
		     uint64_t size, uint64_t iova, unsigned int flags,
		     void **addr)
{
	struct vdpalu_stage_map *m;
	void *p;

	if (!size)
		return vdpalu_fail(EINVAL, "guest memory mapping of 0 bytes");
	if (stage_grow(st))
		return -1;
	p = map_guest(fd, offset, size, flags);
	if (!p)
		return -1;
	m = &st->maps[st->nr_maps++];
	m->fd = fd;
	m->offset = offset;
	m->size = size;
	m->iova = iova;
	m->addr = p;
	if (addr)
		*addr = p;
	return 0;
}

static void stage_unmap(struct vdpalu_stage *st)
{
	unsigned int i;

	for (i = 0; i < st->nr_maps; i++)
		munmap(st->maps[i].addr, st->maps[i].size);
	for (i = 0; i < st->dev.nr_regions; i++)
		st->dev.regions[i].addr = NULL;
	st->nr_maps = 0;
}

static void stage_init(struct vdpalu_stage *st)
{
	memset(st, 0, sizeof(*st));
	vdpalu_init(&st->dev);
}

int vdpalu_stage_prepare(struct vdpalu_stage *st, int blob_fd,
			 const int *fds, unsigned int nr_fds, void *app,
			 size_t *app_len, unsigned int flags)
{
	uint64_t t = vdpalu_now_ns();
	struct vdpalu_dev *d;
	unsigned int i;

	vdpalu_clear_error();
	stage_init(st);
	d = &st->dev;
	if (vdpalu_blob_load(blob_fd, fds, nr_fds, d, app, app_len) < 0) {
		stage_init(st);
		return -1;
	}
	memset(&d->tl, 0, sizeof(d->tl));
	if (d->flow != VDPALU_FLOW_RESUME) {
		stage_init(st);
		return vdpalu_fail(EINVAL, "state blob of the reset flow: only the resume flow can be pre-staged");
	}
	/* A query: the old process still owns and runs the device. */
	if (vdpalu_ioctl(d, VHOST_GET_BACKEND_FEATURES, &d->backend_offered,
			 "VHOST_GET_BACKEND_FEATURES"))
		goto fail;
	if (!(d->backend_offered & (1ULL << VHOST_BACKEND_F_NEW_OWNER)) ||
	    !(d->backend_offered & (1ULL << VHOST_BACKEND_F_RESUME))) {
		vdpalu_fail(EOPNOTSUPP, "device lacks VHOST_BACKEND_F_%s: a pre-staged handover needs it",
			    d->backend_offered & (1ULL << VHOST_BACKEND_F_NEW_OWNER) ?
			    "RESUME" : "NEW_OWNER");
		goto fail;
	}
	for (i = 0; i < d->nr_regions; i++) {
		struct vdpalu_region *r = &d->regions[i];

		if (stage_map(st, r->fd, r->offset, r->size, r->iova, flags,
			      &r->addr))
			goto fail;
	}
	st->map_ns = vdpalu_now_ns() - t;
	return 0;
fail:
	{
		int err = errno;

		stage_unmap(st);
		free(st->maps);
		stage_init(st);
		errno = err;
	}
	return -1;
}

int vdpalu_stage_add(struct vdpalu_stage *st, int fd, uint64_t offset,
		     uint64_t size, uint64_t iova, unsigned int flags,
		     void **addr)
{
	uint64_t t = vdpalu_now_ns();
	unsigned int i;

	vdpalu_clear_error();
	if (st->taken)
		return vdpalu_fail(EBUSY, "the device is taken over already");
	for (i = 0; i < st->nr_maps; i++) {
		const struct vdpalu_stage_map *m = &st->maps[i];

		if (iova < m->iova + m->size && m->iova < iova + size)
			return vdpalu_fail(EEXIST, "iova %#" PRIx64 "+%#" PRIx64
					   " overlaps a staged mapping", iova, size);
	}
	if (stage_map(st, fd, offset, size, iova, flags, addr))
		return -1;
	st->map_ns += vdpalu_now_ns() - t;
	return 0;
}

static int remap_staged(struct vdpalu_dev *d, const struct vdpalu_stage *st,
			bool batch)
{
	unsigned int i;

	if (batch && vdpalu_iotlb_batch(d, VHOST_IOTLB_BATCH_BEGIN))
		return -1;
	for (i = 0; i < st->nr_maps; i++) {
		const struct vdpalu_stage_map *m = &st->maps[i];

		if (vdpalu_iotlb(d, VHOST_IOTLB_REMAP, m->iova, m->size,
				 (uintptr_t)m->addr, 0))
			return -1;
		if (i == 0)
			vdpalu_passed("remap-open");
	}
	if (batch && vdpalu_iotlb_batch(d, VHOST_IOTLB_BATCH_END))
		return -1;
	return 0;
}

int vdpalu_take_over(struct vdpalu_dev *dev, struct vdpalu_stage *st,
		     unsigned int flags)
{
	struct vdpalu_dev *d = &st->dev;
	uint64_t t, start;
	int err;

	vdpalu_clear_error();
	if (d->fd < 0 || st->taken)
		return vdpalu_fail(EINVAL, "no prepared stage to take over from");
	memset(&d->tl, 0, sizeof(d->tl));
	d->tl.start_ns = start = t = vdpalu_now_ns();
	if (vdpalu_new_owner(d))
		return -1;
	vdpalu_step_time(d, VDPALU_STEP_NEW_OWNER, t, 0);
	/* The device is ours from here on, whatever fails next. */
	st->taken = true;
	if (d->backend_offered & (1ULL << VHOST_BACKEND_F_IOTLB_REMAP)) {
		t = vdpalu_now_ns();
		if (remap_staged(d, st, !(flags & VDPALU_TAKE_OVER_NO_BATCH)))
			goto fail;
		vdpalu_step_time(d, VDPALU_STEP_REMAP, t, st->nr_maps);
	}
	t = vdpalu_now_ns();
	if (vdpalu_ioctl(d, VHOST_VDPA_RESUME, NULL, "VHOST_VDPA_RESUME"))
		goto fail;
	vdpalu_step_time(d, VDPALU_STEP_START, t, 0);
	d->tl.end_ns = vdpalu_now_ns();
	d->tl.start_ns = start;
	*dev = *d;
	return 0;
fail:
	err = errno;
	*dev = *d;
	errno = err;
	return -1;
}

int vdpalu_take_over_finish(struct vdpalu_dev *dev)
{
	vdpalu_clear_error();
	/* NEW_OWNER cleared our predecessor's consent; give ours. */
	if (vdpalu_ack_backend(dev, dev->backend_features) ||
	    vdpalu_set_fds_cloexec(dev, true))
		return -1;
	if (vdpalu_ioctl(dev, VHOST_VDPA_GET_DEVICE_ID, &dev->device_id,
			 "VHOST_VDPA_GET_DEVICE_ID") ||
	    vdpalu_ioctl(dev, VHOST_GET_FEATURES, &dev->device_features,
			 "VHOST_GET_FEATURES"))
		return -1;
	return 0;
}

void vdpalu_stage_free(struct vdpalu_stage *st)
{
	if (!st->taken)
		stage_unmap(st);
	free(st->maps);
	stage_init(st);
}
