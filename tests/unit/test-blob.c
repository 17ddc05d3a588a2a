// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * State blob: round trip, fd substitution, corruption of every byte,
 * truncation, version skew, and passing the blob fd in the environment.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static uint8_t app[100];

static void fake_dev(struct vdpalu_dev *d)
{
	unsigned int i;

	vdpalu_init(d);
	d->fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	d->device_id = 1;
	d->nvqs = 3;
	d->features = 0x130000020ULL;
	d->backend_features = VDPALU_BACKEND_WANTED;
	d->status = 0xf;
	d->flow = VDPALU_FLOW_RESET;
	for (i = 0; i < 2; i++) {
		struct vdpalu_vq *vq = &d->vqs[i];

		vq->configured = vq->enabled = true;
		vq->num = 256;
		vq->base = 1000 + i;
		vq->desc = 0x80000 + i * 0x3000;
		vq->avail = vq->desc + 0x1000;
		vq->used = vq->desc + 0x2000;
		vq->kick_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		vq->call_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	d->nr_regions = 3;
	for (i = 0; i < 3; i++) {
		struct vdpalu_region *r = &d->regions[i];

		/* Two regions share one memfd, as a split RAM block would. */
		r->fd = i == 1 ? d->regions[0].fd : dup(d->fd);
		r->offset = i == 1 ? 0x400000 : 0;
		r->size = 0x400000;
		r->iova = i * 0x400000ULL;
		r->addr = (void *)(0x7f0000000000ULL + i * 0x400000ULL);
		r->perm = VHOST_ACCESS_RW;
	}
	for (i = 0; i < sizeof(app); i++)
		app[i] = i * 7;
}

static bool same_state(const struct vdpalu_dev *a, const struct vdpalu_dev *b)
{
	unsigned int i;

	if (a->fd != b->fd || a->device_id != b->device_id ||
	    a->nvqs != b->nvqs || a->features != b->features ||
	    a->backend_features != b->backend_features ||
	    a->status != b->status || a->flow != b->flow ||
	    a->nr_regions != b->nr_regions)
		return false;
	for (i = 0; i < VDPALU_MAX_VQS; i++) {
		const struct vdpalu_vq *x = &a->vqs[i], *y = &b->vqs[i];

		if (x->configured != y->configured)
			return false;
		if (x->configured &&
		    (x->num != y->num || x->base != y->base ||
		     x->enabled != y->enabled || x->desc != y->desc ||
		     x->avail != y->avail || x->used != y->used ||
		     x->kick_fd != y->kick_fd || x->call_fd != y->call_fd))
			return false;
	}
	for (i = 0; i < a->nr_regions; i++) {
		const struct vdpalu_region *x = &a->regions[i], *y = &b->regions[i];

		if (x->fd != y->fd || x->offset != y->offset ||
		    x->size != y->size || x->iova != y->iova || x->perm != y->perm)
			return false;
	}
	return true;
}

static void fix_crc(uint8_t *buf, size_t len)
{
	struct vdpalu_blob_hdr h;

	memcpy(&h, buf, sizeof(h));
	h.crc = 0;
	memcpy(buf, &h, sizeof(h));
	h.crc = vdpalu_crc32(buf, len);
	memcpy(buf, &h, sizeof(h));
}

int main(void)
{
	static uint8_t buf[VDPALU_BLOB_MAX], copy[VDPALU_BLOB_MAX];
	uint8_t app2[VDPALU_APP_MAX];
	struct vdpalu_dev d, out, sentinel;
	struct vdpalu_blob_hdr h;
	size_t app_len = 0;
	ssize_t len;
	int fds[64], n, i, bad, fd;
	char s[32];

	ok(vdpalu_crc32("123456789", 9) == 0xcbf43926, "crc32 check value");

	fake_dev(&d);
	len = vdpalu_blob_encode(&d, app, sizeof(app), buf, sizeof(buf));
	ok(len > 0 && len < 1024, "encode: %zd bytes (compact)", len);
	ok(vdpalu_blob_decode(buf, len, NULL, 0, &out, app2, &app_len) == 0,
	   "decode what was encoded: %s", vdpalu_errmsg());
	ok(same_state(&d, &out), "round trip keeps device, vqs, regions");
	ok(app_len == sizeof(app) && !memcmp(app, app2, sizeof(app)),
	   "round trip keeps the VMM payload");
	ok(out.regions[0].fd == out.regions[1].fd, "one memfd for two regions stays one fd");

	memcpy(&h, buf, sizeof(h));
	ok(h.nr_fds == 7, "fd table: device, 2x kick/call, 2 memfds = %u", h.nr_fds);

	/* SCM_RIGHTS: the receiver has other numbers for the same files. */
	for (i = 0; i < h.nr_fds; i++)
		fds[i] = dup(d.fd);
	ok(vdpalu_blob_decode(buf, len, fds, h.nr_fds, &out, NULL, NULL) == 0 &&
	   out.fd == fds[0] && out.vqs[0].kick_fd == fds[1] &&
	   out.vqs[1].call_fd == fds[4] && out.regions[2].fd == fds[6],
	   "decode with received fds substitutes them in table order");
	is_errno(EINVAL, vdpalu_blob_decode(buf, len, fds, h.nr_fds - 1, &out,
					    NULL, NULL),
		 "fewer received fds than the blob names");

	/* Every single-byte corruption is caught, and nothing is changed. */
	bad = 0;
	for (i = 0; i < len; i++) {
		memcpy(copy, buf, len);
		copy[i] ^= 0x5a;
		memset(&out, 0xa5, sizeof(out));
		sentinel = out;
		errno = 0;
		if (vdpalu_blob_decode(copy, len, NULL, 0, &out, NULL, NULL) != -1 ||
		    (errno != EBADMSG && errno != EPROTO) ||
		    memcmp(&out, &sentinel, sizeof(out)))
			bad++;
	}
	ok(bad == 0, "each of %zd corrupted bytes refused with EBADMSG/EPROTO, output untouched (%d missed)",
	   len, bad);
	memcpy(copy, buf, len);
	copy[len - 1] ^= 1;
	is_errno(EBADMSG, vdpalu_blob_decode(copy, len, NULL, 0, &out, NULL, NULL),
		 "corrupted payload: %s", vdpalu_errmsg());
	ok(strstr(vdpalu_errmsg(), "checksum") != NULL, "message names the checksum");
	is_errno(EBADMSG, vdpalu_blob_decode(buf, len - 1, NULL, 0, &out, NULL, NULL),
		 "truncated blob");
	is_errno(EBADMSG, vdpalu_blob_decode(buf, 10, NULL, 0, &out, NULL, NULL),
		 "blob shorter than its header");

	/* Version skew, with a valid checksum: refused as such. */
	memcpy(copy, buf, len);
	memcpy(&h, copy, sizeof(h));
	h.version = VDPALU_BLOB_VERSION + 1;
	memcpy(copy, &h, sizeof(h));
	fix_crc(copy, len);
	is_errno(EPROTO, vdpalu_blob_decode(copy, len, NULL, 0, &out, NULL, NULL),
		 "newer version: %s", vdpalu_errmsg());
	h.version = 0;
	memcpy(copy, &h, sizeof(h));
	fix_crc(copy, len);
	is_errno(EPROTO, vdpalu_blob_decode(copy, len, NULL, 0, &out, NULL, NULL),
		 "older version");
	memcpy(copy, buf, len);
	memcpy(&h, copy, sizeof(h));
	h.hdr_len += 8;
	memcpy(copy, &h, sizeof(h));
	fix_crc(copy, len);
	is_errno(EPROTO, vdpalu_blob_decode(copy, len, NULL, 0, &out, NULL, NULL),
		 "same version, other header size");
	memcpy(copy, buf, len);
	memcpy(&h, copy, sizeof(h));
	h.nr_vqs = VDPALU_MAX_VQS + 1;
	memcpy(copy, &h, sizeof(h));
	fix_crc(copy, len);
	is_errno(EBADMSG, vdpalu_blob_decode(copy, len, NULL, 0, &out, NULL, NULL),
		 "counts out of range with a valid checksum");

	/* An fd the blob names but this process lacks. */
	close(d.vqs[1].call_fd);
	is_errno(EBADF, vdpalu_blob_decode(buf, len, NULL, 0, &out, NULL, NULL),
		 "fd not open here: %s", vdpalu_errmsg());
	d.vqs[1].call_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	is_errno(EMSGSIZE, vdpalu_blob_encode(&d, app, VDPALU_APP_MAX + 1, buf,
					      sizeof(buf)),
		 "VMM payload larger than the blob carries");

	/* Through a memfd, as across exec. */
	len = vdpalu_blob_encode(&d, app, sizeof(app), buf, sizeof(buf));
	fd = memfd_create("t", MFD_CLOEXEC);
	ok(fd >= 0 && pwrite(fd, buf, len, 0) == len, "blob in a memfd");
	n = vdpalu_blob_fds(fd, fds, 64);
	ok(n == 7 && fds[0] == d.fd && fds[1] == d.vqs[0].kick_fd,
	   "vdpalu_blob_fds lists %d fds, device first", n);
	is_errno(ENOSPC, vdpalu_blob_fds(fd, fds, 3), "fd list too small");

	unsetenv(VDPALU_STATE_ENV);
	is_errno(ENOENT, vdpalu_blob_fd_from_env(), "no %s", VDPALU_STATE_ENV);
	setenv(VDPALU_STATE_ENV, "12x", 1);
	is_errno(EBADF, vdpalu_blob_fd_from_env(), "garbage in %s", VDPALU_STATE_ENV);
	setenv(VDPALU_STATE_ENV, "999", 1);
	is_errno(EBADF, vdpalu_blob_fd_from_env(), "closed fd in %s", VDPALU_STATE_ENV);
	snprintf(s, sizeof(s), "%d", fd);
	setenv(VDPALU_STATE_ENV, s, 1);
	ok(vdpalu_blob_fd_from_env() == fd, "fd from %s", VDPALU_STATE_ENV);

	return tap_done();
}
