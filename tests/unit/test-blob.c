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
#include "unit.h"

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

/*
 * @buf with header @h into @copy, checksummed again: a blob whose only
 * fault is the header field a test changed.
 */
static void reseal(uint8_t *copy, const uint8_t *buf, size_t len,
		   struct vdpalu_blob_hdr h)
{
	memcpy(copy, buf, len);
	h.crc = 0;
	memcpy(copy, &h, sizeof(h));
	h.crc = vdpalu_crc32(copy, len);
	memcpy(copy, &h, sizeof(h));
}

/* @buf in a memfd, as the blob crosses exec. */
static int blob_memfd(struct __test_metadata *_metadata, const uint8_t *buf,
		      ssize_t len)
{
	int fd = memfd_create("t", MFD_CLOEXEC);

	ASSERT_LE(0, fd) TH_LOG("memfd_create: %s", strerror(errno));
	ASSERT_EQ(len, pwrite(fd, buf, len, 0)) TH_LOG("blob in a memfd");
	return fd;
}

TEST(crc32_check_value)
{
	ASSERT_EQ(0xcbf43926, vdpalu_crc32("123456789", 9));
}

/* A device with two configured vqs and three regions, encoded. */
FIXTURE(blob) {
	struct vdpalu_dev d, out;
	struct vdpalu_blob_hdr h;
	uint8_t buf[VDPALU_BLOB_MAX], copy[VDPALU_BLOB_MAX];
	ssize_t len;
};

FIXTURE_SETUP(blob)
{
	fake_dev(&self->d);
	self->len = vdpalu_blob_encode(&self->d, app, sizeof(app), self->buf,
				       sizeof(self->buf));
	ASSERT_LT(0, self->len) TH_LOG("encode: %s", vdpalu_errmsg());
	memcpy(&self->h, self->buf, sizeof(self->h));
}

/* Each test is a process of its own: its exit closes the fds. */
FIXTURE_TEARDOWN(blob)
{
}

TEST_F(blob, encode_is_compact)
{
	EXPECT_GT(1024, self->len) TH_LOG("%zd bytes", self->len);
}

TEST_F(blob, round_trip_keeps_device_vqs_and_regions)
{
	ASSERT_EQ(0, vdpalu_blob_decode(self->buf, self->len, NULL, 0,
					&self->out, NULL, NULL))
		TH_LOG("decode what was encoded: %s", vdpalu_errmsg());
	EXPECT_TRUE(same_state(&self->d, &self->out));
}

TEST_F(blob, round_trip_keeps_the_vmm_payload)
{
	uint8_t app2[VDPALU_APP_MAX];
	size_t app_len = 0;

	ASSERT_EQ(0, vdpalu_blob_decode(self->buf, self->len, NULL, 0,
					&self->out, app2, &app_len))
		TH_LOG("decode what was encoded: %s", vdpalu_errmsg());
	ASSERT_EQ(sizeof(app), app_len);
	EXPECT_EQ(0, memcmp(app, app2, sizeof(app)));
}

TEST_F(blob, one_memfd_for_two_regions_stays_one_fd)
{
	ASSERT_EQ(0, vdpalu_blob_decode(self->buf, self->len, NULL, 0,
					&self->out, NULL, NULL))
		TH_LOG("decode what was encoded: %s", vdpalu_errmsg());
	EXPECT_EQ(self->out.regions[0].fd, self->out.regions[1].fd);
}

TEST_F(blob, fd_table_is_device_kicks_calls_and_memfds)
{
	/* device, 2x kick/call, 2 memfds */
	EXPECT_EQ(7, self->h.nr_fds);
}

TEST_F(blob, decode_with_received_fds_substitutes_them_in_table_order)
{
	int fds[64], i;

	/* SCM_RIGHTS: the receiver has other numbers for the same files. */
	for (i = 0; i < self->h.nr_fds; i++)
		fds[i] = dup(self->d.fd);
	ASSERT_EQ(0, vdpalu_blob_decode(self->buf, self->len, fds,
					self->h.nr_fds, &self->out, NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_EQ(fds[0], self->out.fd);
	EXPECT_EQ(fds[1], self->out.vqs[0].kick_fd);
	EXPECT_EQ(fds[4], self->out.vqs[1].call_fd);
	EXPECT_EQ(fds[6], self->out.regions[2].fd);
}

TEST_F(blob, fewer_received_fds_than_the_blob_names_are_refused)
{
	int fds[64], i;

	for (i = 0; i < self->h.nr_fds; i++)
		fds[i] = dup(self->d.fd);
	EXPECT_ERRNO(EINVAL, vdpalu_blob_decode(self->buf, self->len, fds,
						self->h.nr_fds - 1, &self->out,
						NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(blob, every_single_byte_corruption_is_refused_leaving_output_untouched)
{
	struct vdpalu_dev sentinel;
	int i, ret, e, bad = 0;
	bool changed;

	for (i = 0; i < self->len; i++) {
		memcpy(self->copy, self->buf, self->len);
		self->copy[i] ^= 0x5a;
		memset(&self->out, 0xa5, sizeof(self->out));
		sentinel = self->out;
		errno = 0;
		ret = vdpalu_blob_decode(self->copy, self->len, NULL, 0,
					 &self->out, NULL, NULL);
		e = errno;
		changed = memcmp(&self->out, &sentinel, sizeof(self->out));
		/* The first few show the pattern, the count how far it goes. */
		if ((ret != -1 || (e != EBADMSG && e != EPROTO) || changed) &&
		    ++bad <= 8)
			TH_LOG("byte %d: got %d errno %d (%s), output %s", i,
			       ret, e, strerror(e),
			       changed ? "changed" : "untouched");
	}
	EXPECT_EQ(0, bad)
		TH_LOG("%d of %zd corrupted bytes not refused (EBADMSG/EPROTO, output untouched)",
		       bad, self->len);
}

TEST_F(blob, corrupted_payload_is_refused_naming_the_checksum)
{
	memcpy(self->copy, self->buf, self->len);
	self->copy[self->len - 1] ^= 1;
	ASSERT_ERRNO(EBADMSG, vdpalu_blob_decode(self->copy, self->len, NULL,
						 0, &self->out, NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_NE(NULL, strstr(vdpalu_errmsg(), "checksum"))
		TH_LOG("message: %s", vdpalu_errmsg());
}

TEST_F(blob, truncated_blob_is_refused)
{
	EXPECT_ERRNO(EBADMSG, vdpalu_blob_decode(self->buf, self->len - 1,
						 NULL, 0, &self->out, NULL,
						 NULL))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(blob, blob_shorter_than_its_header_is_refused)
{
	EXPECT_ERRNO(EBADMSG, vdpalu_blob_decode(self->buf, 10, NULL, 0,
						 &self->out, NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
}

/* Version skew, with a valid checksum: refused as such. */
TEST_F(blob, newer_version_is_refused_as_such)
{
	struct vdpalu_blob_hdr h = self->h;

	h.version = VDPALU_BLOB_VERSION + 1;
	reseal(self->copy, self->buf, self->len, h);
	EXPECT_ERRNO(EPROTO, vdpalu_blob_decode(self->copy, self->len, NULL, 0,
						&self->out, NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(blob, older_version_is_refused_as_such)
{
	struct vdpalu_blob_hdr h = self->h;

	h.version = 0;
	reseal(self->copy, self->buf, self->len, h);
	EXPECT_ERRNO(EPROTO, vdpalu_blob_decode(self->copy, self->len, NULL, 0,
						&self->out, NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(blob, same_version_other_header_size_is_refused)
{
	struct vdpalu_blob_hdr h = self->h;

	h.hdr_len += 8;
	reseal(self->copy, self->buf, self->len, h);
	EXPECT_ERRNO(EPROTO, vdpalu_blob_decode(self->copy, self->len, NULL, 0,
						&self->out, NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(blob, counts_out_of_range_with_a_valid_checksum_are_refused)
{
	struct vdpalu_blob_hdr h = self->h;

	h.nr_vqs = VDPALU_MAX_VQS + 1;
	reseal(self->copy, self->buf, self->len, h);
	EXPECT_ERRNO(EBADMSG, vdpalu_blob_decode(self->copy, self->len, NULL,
						 0, &self->out, NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(blob, fd_the_blob_names_but_this_process_lacks_is_refused)
{
	close(self->d.vqs[1].call_fd);
	EXPECT_ERRNO(EBADF, vdpalu_blob_decode(self->buf, self->len, NULL, 0,
					       &self->out, NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(blob, vmm_payload_larger_than_the_blob_carries_is_refused)
{
	EXPECT_ERRNO(EMSGSIZE, vdpalu_blob_encode(&self->d, app,
						  VDPALU_APP_MAX + 1,
						  self->buf, sizeof(self->buf)))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(blob, blob_fds_lists_the_fds_device_first)
{
	int fd = blob_memfd(_metadata, self->buf, self->len);
	int fds[64], n;

	n = vdpalu_blob_fds(fd, fds, 64);
	ASSERT_EQ(7, n) TH_LOG("%s", vdpalu_errmsg());
	EXPECT_EQ(self->d.fd, fds[0]);
	EXPECT_EQ(self->d.vqs[0].kick_fd, fds[1]);
}

TEST_F(blob, blob_fds_refuses_a_list_too_small)
{
	int fd = blob_memfd(_metadata, self->buf, self->len);
	int fds[64];

	EXPECT_ERRNO(ENOSPC, vdpalu_blob_fds(fd, fds, 3))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST(state_fd_env_unset_is_refused)
{
	unsetenv(VDPALU_STATE_ENV);
	EXPECT_ERRNO(ENOENT, vdpalu_blob_fd_from_env())
		TH_LOG("no %s: %s", VDPALU_STATE_ENV, vdpalu_errmsg());
}

TEST(state_fd_env_garbage_is_refused)
{
	setenv(VDPALU_STATE_ENV, "12x", 1);
	EXPECT_ERRNO(EBADF, vdpalu_blob_fd_from_env())
		TH_LOG("garbage in %s: %s", VDPALU_STATE_ENV, vdpalu_errmsg());
}

TEST(state_fd_env_naming_a_closed_fd_is_refused)
{
	setenv(VDPALU_STATE_ENV, "999", 1);
	EXPECT_ERRNO(EBADF, vdpalu_blob_fd_from_env())
		TH_LOG("closed fd in %s: %s", VDPALU_STATE_ENV,
		       vdpalu_errmsg());
}

TEST_F(blob, state_fd_env_gives_the_blob_fd)
{
	int fd = blob_memfd(_metadata, self->buf, self->len);
	char s[32];

	snprintf(s, sizeof(s), "%d", fd);
	setenv(VDPALU_STATE_ENV, s, 1);
	EXPECT_EQ(fd, vdpalu_blob_fd_from_env())
		TH_LOG("fd from %s: %s", VDPALU_STATE_ENV, vdpalu_errmsg());
}

TEST_HARNESS_MAIN
