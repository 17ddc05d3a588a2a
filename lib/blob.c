// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The state blob: what a new image needs to take a device over, in a
 * compact, versioned, checksummed byte string.
 *
 * Layout: header, vq entries, region entries, fd table (int32), app bytes.
 * Fixed-width little-endian fields and no pointers, so an image built from
 * another version of the library can at least tell that it cannot read it.
 * A reader accepts its own version only: a guess at a foreign layout could
 * point the device at the wrong memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MAX_FDS	(1 + 2 * VDPALU_MAX_VQS + VDPALU_MAX_REGIONS)

uint32_t vdpalu_crc32(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = ~0U;
	int k;

	/* Bitwise CRC-32 (IEEE): blobs are a few hundred bytes. */
	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320U & -(crc & 1));
	}
	return ~crc;
}

/* Index of @fd in @tab, appended if new (one memfd may back two regions). */
static uint8_t fdtab_add(int32_t *tab, uint8_t *n, int fd)
{
	uint8_t i;

	for (i = 0; i < *n; i++)
		if (tab[i] == fd)
			return i;
	tab[*n] = fd;
	return (*n)++;
}

ssize_t vdpalu_blob_encode(const struct vdpalu_dev *dev, const void *app,
			   size_t app_len, void *buf, size_t buf_len)
{
	struct vdpalu_blob_hdr h = {
		.magic = VDPALU_BLOB_MAGIC,
		.version = VDPALU_BLOB_VERSION,
		.hdr_len = sizeof(h),
		.save_ns = vdpalu_now_ns(),
		.device_id = dev->device_id,
		.nvqs = dev->nvqs,
		.features = dev->features,
		.backend_features = dev->backend_features,
		.status = dev->status,
		.flow = dev->flow,
		.nr_regions = dev->nr_regions,
		.app_len = app_len,
		.tl = dev->tl,
	};
	struct vdpalu_blob_vq vqs[VDPALU_MAX_VQS];
	struct vdpalu_blob_region regs[VDPALU_MAX_REGIONS];
	int32_t fdtab[MAX_FDS];
	unsigned int i;
	uint8_t *p = buf;
	size_t len;

	if (app_len > VDPALU_APP_MAX)
		return vdpalu_fail(EMSGSIZE, "VMM state of %zu bytes: the blob carries %d",
				   app_len, VDPALU_APP_MAX);
	if (dev->nr_regions > VDPALU_MAX_REGIONS)
		return vdpalu_fail(EINVAL, "%u regions", dev->nr_regions);
	h.dev_fd = fdtab_add(fdtab, &h.nr_fds, dev->fd);
	for (i = 0; i < VDPALU_MAX_VQS && i < dev->nvqs; i++) {
		const struct vdpalu_vq *vq = &dev->vqs[i];
		struct vdpalu_blob_vq *b = &vqs[h.nr_vqs];

		if (!vq->configured)
			continue;
		memset(b, 0, sizeof(*b));
		b->idx = i;
		b->num = vq->num;
		b->base = vq->base;
		b->enabled = vq->enabled;
		b->desc = vq->desc;
		b->avail = vq->avail;
		b->used = vq->used;
		b->kick_fd = fdtab_add(fdtab, &h.nr_fds, vq->kick_fd);
		b->call_fd = fdtab_add(fdtab, &h.nr_fds, vq->call_fd);
		h.nr_vqs++;
	}
	for (i = 0; i < dev->nr_regions; i++) {
		const struct vdpalu_region *r = &dev->regions[i];

		memset(&regs[i], 0, sizeof(regs[i]));
		regs[i].fd = fdtab_add(fdtab, &h.nr_fds, r->fd);
		regs[i].perm = r->perm;
		regs[i].offset = r->offset;
		regs[i].size = r->size;
		regs[i].iova = r->iova;
		regs[i].old_addr = (uintptr_t)r->addr;
	}
	len = sizeof(h) + h.nr_vqs * sizeof(vqs[0]) +
	      h.nr_regions * sizeof(regs[0]) + h.nr_fds * sizeof(int32_t) +
	      app_len;
	if (len > buf_len)
		return vdpalu_fail(EMSGSIZE, "state blob of %zu bytes", len);
	h.len = len;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	memcpy(p, vqs, h.nr_vqs * sizeof(vqs[0]));
	p += h.nr_vqs * sizeof(vqs[0]);
	memcpy(p, regs, h.nr_regions * sizeof(regs[0]));
	p += h.nr_regions * sizeof(regs[0]);
	memcpy(p, fdtab, h.nr_fds * sizeof(int32_t));
	p += h.nr_fds * sizeof(int32_t);
	if (app_len)
		memcpy(p, app, app_len);
	h.crc = vdpalu_crc32(buf, len);
	memcpy(buf, &h, sizeof(h));
	return len;
}

static int check_fd(int fd, const char *what)
{
	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return vdpalu_fail(EBADF, "%s: fd %d is not open in this process",
				   what, fd);
	return 0;
}

/* Where each part of a blob starts, from a header decode_header() passed. */
struct blob_parts {
	const struct vdpalu_blob_vq *vqs;
	const struct vdpalu_blob_region *regions;
	const uint8_t *fdtab;	/* int32 each, unaligned */
	const uint8_t *app;
};

static void blob_parts(const void *buf, const struct vdpalu_blob_hdr *h,
		       struct blob_parts *b)
{
	b->vqs = (const void *)((const uint8_t *)buf + sizeof(*h));
	b->regions = (const void *)(b->vqs + h->nr_vqs);
	b->fdtab = (const void *)(b->regions + h->nr_regions);
	b->app = b->fdtab + h->nr_fds * sizeof(int32_t);
}

/* @buf must checksum to @crc as it was written: with its crc field zero. */
static int check_crc(const void *buf, size_t len, uint32_t crc)
{
	uint8_t *tmp = malloc(len);
	uint32_t got;

	if (!tmp)
		return vdpalu_fail(ENOMEM, "out of memory");
	memcpy(tmp, buf, len);
	memset(tmp + offsetof(struct vdpalu_blob_hdr, crc), 0, sizeof(crc));
	got = vdpalu_crc32(tmp, len);
	free(tmp);
	if (got != crc)
		return vdpalu_fail(EBADMSG, "state blob: checksum %#x, expected %#x: corrupted",
				   got, crc);
	return 0;
}

/* Counts the rest of the blob is read by: in range, and filling @len. */
static int check_counts(const struct vdpalu_blob_hdr *h, size_t len)
{
	size_t want;

	if (h->nr_vqs > VDPALU_MAX_VQS || h->nr_regions > VDPALU_MAX_REGIONS ||
	    h->nr_fds > MAX_FDS || h->nr_fds == 0 || h->app_len > VDPALU_APP_MAX ||
	    h->dev_fd >= h->nr_fds || h->flow > VDPALU_FLOW_RESUME)
		return vdpalu_fail(EBADMSG, "state blob: counts out of range");
	want = sizeof(*h) + h->nr_vqs * sizeof(struct vdpalu_blob_vq) +
	       h->nr_regions * sizeof(struct vdpalu_blob_region) +
	       h->nr_fds * sizeof(int32_t) + h->app_len;
	if (want != len)
		return vdpalu_fail(EBADMSG, "state blob: %zu bytes, contents need %zu",
				   len, want);
	return 0;
}

/* The header of @buf into @h, if @buf is a whole blob of our version. */
static int decode_header(const void *buf, size_t len,
			 struct vdpalu_blob_hdr *h)
{
	if (len < sizeof(*h))
		return vdpalu_fail(EBADMSG, "state blob: %zu bytes, shorter than its header",
				   len);
	memcpy(h, buf, sizeof(*h));
	if (h->magic != VDPALU_BLOB_MAGIC)
		return vdpalu_fail(EBADMSG, "state blob: bad magic %#x", h->magic);
	/* Version before checksum: a newer writer deserves a clear answer. */
	if (h->version != VDPALU_BLOB_VERSION || h->hdr_len != sizeof(*h))
		return vdpalu_fail(EPROTO, "state blob version %u (header %u bytes); this library reads version %u only",
				   h->version, h->hdr_len, VDPALU_BLOB_VERSION);
	if (h->len != len)
		return vdpalu_fail(EBADMSG, "state blob: %zu bytes, header says %u",
				   len, h->len);
	if (check_crc(buf, len, h->crc))
		return -1;
	return check_counts(h, len);
}

/*
 * The blob's fd table into @fdtab, each entry replaced by @fds[i] when
 * the fds came in SCM_RIGHTS, and every one open here.
 */
static int resolve_fds(const struct vdpalu_blob_hdr *h, const uint8_t *tab,
		       const int *fds, unsigned int nr_fds, int32_t *fdtab)
{
	unsigned int i;

	if (fds && nr_fds != h->nr_fds)
		return vdpalu_fail(EINVAL, "state blob names %u fds, %u given",
				   h->nr_fds, nr_fds);
	memcpy(fdtab, tab, h->nr_fds * sizeof(int32_t));
	for (i = 0; i < h->nr_fds; i++) {
		if (fds)
			fdtab[i] = fds[i];
		if (check_fd(fdtab[i], "state blob"))
			return -1;
	}
	return 0;
}

static void decode_device(const struct vdpalu_blob_hdr *h,
			  const int32_t *fdtab, struct vdpalu_dev *dev)
{
	vdpalu_init(dev);
	dev->fd = fdtab[h->dev_fd];
	dev->device_id = h->device_id;
	dev->nvqs = h->nvqs;
	dev->features = h->features;
	dev->backend_features = h->backend_features;
	dev->status = h->status;
	dev->flow = h->flow;
	dev->tl = h->tl;
}

static int decode_vqs(const struct vdpalu_blob_hdr *h,
		      const struct vdpalu_blob_vq *bvq, const int32_t *fdtab,
		      struct vdpalu_dev *dev)
{
	unsigned int i;

	for (i = 0; i < h->nr_vqs; i++) {
		struct vdpalu_blob_vq b;
		struct vdpalu_vq *vq;

		memcpy(&b, &bvq[i], sizeof(b));
		if (b.idx >= VDPALU_MAX_VQS || b.idx >= h->nvqs ||
		    b.kick_fd >= h->nr_fds || b.call_fd >= h->nr_fds ||
		    !b.num || (b.num & (b.num - 1)))
			return vdpalu_fail(EBADMSG, "state blob: bad vq entry %u", i);
		vq = &dev->vqs[b.idx];
		vq->configured = true;
		vq->enabled = b.enabled;
		vq->num = b.num;
		vq->base = b.base;
		vq->desc = b.desc;
		vq->avail = b.avail;
		vq->used = b.used;
		vq->kick_fd = fdtab[b.kick_fd];
		vq->call_fd = fdtab[b.call_fd];
	}
	return 0;
}

static int decode_regions(const struct vdpalu_blob_hdr *h,
			  const struct vdpalu_blob_region *breg,
			  const int32_t *fdtab, struct vdpalu_dev *dev)
{
	unsigned int i;

	for (i = 0; i < h->nr_regions; i++) {
		struct vdpalu_blob_region b;
		struct vdpalu_region *r = &dev->regions[i];

		memcpy(&b, &breg[i], sizeof(b));
		if (b.fd >= h->nr_fds || !b.size || b.iova + b.size < b.iova)
			return vdpalu_fail(EBADMSG, "state blob: bad region entry %u", i);
		r->fd = fdtab[b.fd];
		r->perm = b.perm;
		r->offset = b.offset;
		r->size = b.size;
		r->iova = b.iova;
		r->owned = true;
	}
	dev->nr_regions = h->nr_regions;
	return 0;
}

/* Decoded into a local copy first, so that a refusal leaves @out as it was. */
int vdpalu_blob_decode(const void *buf, size_t len, const int *fds,
		       unsigned int nr_fds, struct vdpalu_dev *out,
		       void *app, size_t *app_len)
{
	struct vdpalu_blob_hdr h = { 0 };	/* gcc cannot see vdpalu_fail() is -1 */
	struct blob_parts b;
	int32_t fdtab[MAX_FDS];
	struct vdpalu_dev dev;

	if (decode_header(buf, len, &h))
		return -1;
	blob_parts(buf, &h, &b);
	if (resolve_fds(&h, b.fdtab, fds, nr_fds, fdtab))
		return -1;
	decode_device(&h, fdtab, &dev);
	if (decode_vqs(&h, b.vqs, fdtab, &dev) ||
	    decode_regions(&h, b.regions, fdtab, &dev))
		return -1;
	if (app && app_len) {
		memcpy(app, b.app, h.app_len);
		*app_len = h.app_len;
	}
	*out = dev;
	return 0;
}

ssize_t vdpalu_blob_load(int fd, const int *fds, unsigned int nr_fds,
			 struct vdpalu_dev *dev, void *app, size_t *app_len)
{
	uint8_t *buf = malloc(VDPALU_BLOB_MAX + 1);
	ssize_t len;

	if (!buf)
		return vdpalu_fail(ENOMEM, "out of memory");
	len = vdpalu_blob_read(fd, buf, VDPALU_BLOB_MAX + 1);
	if (len >= 0 &&
	    vdpalu_blob_decode(buf, len, fds, nr_fds, dev, app, app_len))
		len = -1;
	free(buf);
	return len;
}

ssize_t vdpalu_blob_read(int fd, void *buf, size_t buf_len)
{
	size_t got = 0;
	ssize_t n;

	while (got < buf_len) {
		n = pread(fd, (uint8_t *)buf + got, buf_len - got, got);
		if (n < 0)
			return vdpalu_fail(errno, "read state blob: %s",
					   strerror(errno));
		if (n == 0)
			break;
		got += n;
	}
	if (got == buf_len)
		return vdpalu_fail(EMSGSIZE, "state blob larger than %zu bytes",
				   buf_len);
	return got;
}

int vdpalu_blob_fds(int blob_fd, int *fds, unsigned int max)
{
	uint8_t *buf = malloc(VDPALU_BLOB_MAX + 1);
	struct vdpalu_blob_hdr h;
	struct blob_parts b;
	ssize_t len;
	unsigned int i;
	int32_t v;

	if (!buf)
		return vdpalu_fail(ENOMEM, "out of memory");
	len = vdpalu_blob_read(blob_fd, buf, VDPALU_BLOB_MAX + 1);
	/* Full validation, with the fds as numbered in this process. */
	{
		struct vdpalu_dev tmp;

		if (len < 0 ||
		    vdpalu_blob_decode(buf, len, NULL, 0, &tmp, NULL, NULL)) {
			free(buf);
			return -1;
		}
	}
	memcpy(&h, buf, sizeof(h));
	if (h.nr_fds > max) {
		free(buf);
		return vdpalu_fail(ENOSPC, "state blob names %u fds", h.nr_fds);
	}
	blob_parts(buf, &h, &b);
	for (i = 0; i < h.nr_fds; i++) {
		memcpy(&v, b.fdtab + i * sizeof(v), sizeof(v));
		fds[i] = v;
	}
	free(buf);
	return h.nr_fds;
}

int vdpalu_state_env(int blob_fd, char *var, size_t len)
{
	vdpalu_clear_error();
	if (blob_fd < 0 || !var ||
	    (size_t)snprintf(var, len, "%s=%d", VDPALU_STATE_ENV, blob_fd) >= len)
		return vdpalu_fail(EINVAL, "%s: no fd or no room", VDPALU_STATE_ENV);
	return 0;
}

int vdpalu_blob_fd_from_env(void)
{
	const char *s = getenv(VDPALU_STATE_ENV);
	char *end;
	long fd;

	if (!s)
		return vdpalu_fail(ENOENT, "%s is not set", VDPALU_STATE_ENV);
	errno = 0;
	fd = strtol(s, &end, 10);
	if (errno || *end || end == s || fd < 0 || fd > 0x7fffffff)
		return vdpalu_fail(EBADF, "%s=%s is not an fd number",
				   VDPALU_STATE_ENV, s);
	if (check_fd(fd, VDPALU_STATE_ENV))
		return -1;
	return fd;
}
