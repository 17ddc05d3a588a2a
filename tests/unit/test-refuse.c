// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The library's refusals that need no device: guest memory a new image
 * could not see, a device lacking a capability, a bad blob.  Each must
 * fail with its errno and a message before touching anything; the device
 * fd here is /dev/null or -1, so reaching an ioctl or IOTLB write would
 * show up as ENOTTY/EBADF instead.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

#define SZ (1 << 20)

static bool cloexec(int fd)
{
	return fcntl(fd, F_GETFD) & FD_CLOEXEC;
}

/* Guest memory in each of the forms a caller might hand over. */
struct guest {
	int mfd, other;		/* 2 MiB, 1 MiB */
	void *anon;		/* private anonymous */
	void *priv;		/* MAP_PRIVATE of mfd at 0 */
	void *shared;		/* MAP_SHARED of mfd at SZ */
};

static void map_guest(struct __test_metadata *_metadata, struct guest *g)
{
	g->mfd = memfd_create("guest", MFD_CLOEXEC);
	g->other = memfd_create("other", MFD_CLOEXEC);
	ASSERT_LE(0, g->mfd) TH_LOG("memfd_create: %s", strerror(errno));
	ASSERT_LE(0, g->other) TH_LOG("memfd_create: %s", strerror(errno));
	ASSERT_EQ(0, ftruncate(g->mfd, 2 * SZ));
	ASSERT_EQ(0, ftruncate(g->other, SZ));
	g->anon = mmap(NULL, SZ, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g->priv = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		       g->mfd, 0);
	g->shared = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED,
			 g->mfd, SZ);
	ASSERT_NE(MAP_FAILED, g->anon);
	ASSERT_NE(MAP_FAILED, g->priv);
	ASSERT_NE(MAP_FAILED, g->shared);
}

static void dev_with_region(struct vdpalu_dev *d, void *addr, int fd)
{
	vdpalu_init(d);
	d->fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	d->backend_offered = d->backend_features = VDPALU_BACKEND_WANTED;
	d->status = 0xf;
	d->nr_regions = 1;
	d->regions[0].fd = fd;
	d->regions[0].addr = addr;
	d->regions[0].size = SZ;
	d->regions[0].perm = VHOST_ACCESS_RW;
}

/* Guest memory, and a device with no fd: vdpalu_mem_add()'s checks. */
FIXTURE(mem) {
	struct guest g;
	struct vdpalu_dev d;
};

FIXTURE_SETUP(mem)
{
	vdpalu_init(&self->d);
	map_guest(_metadata, &self->g);
}

/* Each test is a process of its own: its exit unmaps and closes. */
FIXTURE_TEARDOWN(mem)
{
}

TEST_F(mem, private_anonymous_memory_is_refused)
{
	ASSERT_ERRNO(EINVAL, vdpalu_mem_add(&self->d, -1, 0, self->g.anon,
					    SZ, 0))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_NE(NULL, strstr(vdpalu_errmsg(), "private anonymous"))
		TH_LOG("message: %s", vdpalu_errmsg());
}

TEST_F(mem, map_private_memfd_is_refused)
{
	EXPECT_ERRNO(EINVAL, vdpalu_mem_add(&self->d, self->g.mfd, 0,
					    self->g.priv, SZ, 0))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(mem, shared_memory_of_another_fd_is_refused)
{
	EXPECT_ERRNO(EINVAL, vdpalu_mem_add(&self->d, self->g.other, 0,
					    self->g.shared, SZ, 0))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(mem, right_fd_at_the_wrong_offset_is_refused)
{
	EXPECT_ERRNO(EINVAL, vdpalu_mem_add(&self->d, self->g.mfd, 0,
					    self->g.shared, SZ, 0))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(mem, shared_memory_without_its_fd_is_refused)
{
	EXPECT_ERRNO(EINVAL, vdpalu_mem_add(&self->d, -1, 0, self->g.shared,
					    SZ, 0))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(mem, range_past_the_mapping_is_refused)
{
	int ret, e;

	errno = 0;
	ret = vdpalu_mem_add(&self->d, self->g.mfd, SZ, self->g.shared,
			     2 * SZ, 0);
	e = errno;
	EXPECT_TRUE(ret == -1 && (e == EFAULT || e == EINVAL))
		TH_LOG("got %d errno %d (%s), want -1 errno EFAULT or EINVAL: %s",
		       ret, e, strerror(e), vdpalu_errmsg());
}

TEST_F(mem, refusals_record_no_region)
{
	struct vdpalu_dev *d = &self->d;
	struct guest *g = &self->g;

	vdpalu_mem_add(d, -1, 0, g->anon, SZ, 0);
	vdpalu_mem_add(d, g->mfd, 0, g->priv, SZ, 0);
	vdpalu_mem_add(d, g->other, 0, g->shared, SZ, 0);
	vdpalu_mem_add(d, g->mfd, 0, g->shared, SZ, 0);
	vdpalu_mem_add(d, -1, 0, g->shared, SZ, 0);
	vdpalu_mem_add(d, g->mfd, SZ, g->shared, 2 * SZ, 0);
	EXPECT_EQ(0U, d->nr_regions);
}

/* The right memory passes the check and reaches the (absent) device. */
TEST_F(mem, map_shared_memfd_at_its_offset_passes_the_check)
{
	EXPECT_ERRNO(EBADF, vdpalu_mem_add(&self->d, self->g.mfd, SZ,
					   self->g.shared, SZ, 0))
		TH_LOG("%s", vdpalu_errmsg());
}

/*
 * Save: capabilities first, memory second, nothing touched.  The device
 * is /dev/null, whose every ioctl fails with ENOTTY.
 */
FIXTURE(save) {
	struct guest g;
	struct vdpalu_dev d;
	int blob;
};

FIXTURE_SETUP(save)
{
	map_guest(_metadata, &self->g);
	dev_with_region(&self->d, self->g.shared, self->g.mfd);
	self->d.regions[0].offset = SZ;
	self->blob = -1;
}

FIXTURE_TEARDOWN(save)
{
}

/* What each refused save must leave as it was. */
static void nothing_created(struct __test_metadata *_metadata,
			    FIXTURE_DATA(save) *self)
{
	EXPECT_EQ(-1, self->blob) TH_LOG("a refused save created a blob");
	EXPECT_TRUE(cloexec(self->d.fd)) TH_LOG("device lost FD_CLOEXEC");
	EXPECT_TRUE(cloexec(self->g.mfd)) TH_LOG("memfd lost FD_CLOEXEC");
}

TEST_F(save, device_without_suspend_is_refused)
{
	self->d.backend_features &= ~(1ULL << VHOST_BACKEND_F_SUSPEND);
	EXPECT_ERRNO(EOPNOTSUPP, vdpalu_save(&self->d, VDPALU_FLOW_AUTO, NULL,
					     0, &self->blob))
		TH_LOG("%s", vdpalu_errmsg());
	nothing_created(_metadata, self);
}

TEST_F(save, new_owner_offered_but_not_acked_is_refused)
{
	self->d.backend_features &= ~(1ULL << VHOST_BACKEND_F_NEW_OWNER);
	EXPECT_ERRNO(EOPNOTSUPP, vdpalu_save(&self->d, VDPALU_FLOW_AUTO, NULL,
					     0, &self->blob))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_NE(NULL, strstr(vdpalu_errmsg(), "did not ack"))
		TH_LOG("message: %s", vdpalu_errmsg());
	nothing_created(_metadata, self);
}

TEST_F(save, new_owner_not_offered_is_refused)
{
	self->d.backend_offered &= ~(1ULL << VHOST_BACKEND_F_NEW_OWNER);
	self->d.backend_features &= ~(1ULL << VHOST_BACKEND_F_NEW_OWNER);
	EXPECT_ERRNO(EOPNOTSUPP, vdpalu_save(&self->d, VDPALU_FLOW_AUTO, NULL,
					     0, &self->blob))
		TH_LOG("%s", vdpalu_errmsg());
	nothing_created(_metadata, self);
}

TEST_F(save, reset_flow_without_iotlb_persist_is_refused)
{
	self->d.backend_features &= ~(1ULL << VHOST_BACKEND_F_IOTLB_PERSIST);
	EXPECT_ERRNO(EOPNOTSUPP, vdpalu_save(&self->d, VDPALU_FLOW_RESET, NULL,
					     0, &self->blob))
		TH_LOG("%s", vdpalu_errmsg());
	nothing_created(_metadata, self);
}

TEST_F(save, resume_flow_without_resume_is_refused)
{
	self->d.backend_features &= ~(1ULL << VHOST_BACKEND_F_RESUME);
	EXPECT_ERRNO(EOPNOTSUPP, vdpalu_save(&self->d, VDPALU_FLOW_RESUME,
					     NULL, 0, &self->blob))
		TH_LOG("%s", vdpalu_errmsg());
	nothing_created(_metadata, self);
}

TEST_F(save, private_anonymous_region_is_refused)
{
	self->d.regions[0].addr = self->g.anon;
	EXPECT_ERRNO(EINVAL, vdpalu_save(&self->d, VDPALU_FLOW_AUTO, NULL, 0,
					 &self->blob))
		TH_LOG("%s", vdpalu_errmsg());
	nothing_created(_metadata, self);
}

TEST_F(save, vmm_state_too_large_for_the_blob_is_refused)
{
	EXPECT_ERRNO(EMSGSIZE, vdpalu_save(&self->d, VDPALU_FLOW_AUTO, NULL,
					   VDPALU_APP_MAX + 1, &self->blob))
		TH_LOG("%s", vdpalu_errmsg());
	nothing_created(_metadata, self);
}

/* Capabilities and memory fine: the first device call is reached. */
TEST_F(save, valid_save_reaches_suspend_and_keeps_cloexec_when_it_fails)
{
	EXPECT_ERRNO(ENOTTY, vdpalu_save(&self->d, VDPALU_FLOW_AUTO, NULL, 0,
					 &self->blob))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_TRUE(cloexec(self->d.fd)) TH_LOG("device lost FD_CLOEXEC");
	EXPECT_TRUE(cloexec(self->g.mfd)) TH_LOG("memfd lost FD_CLOEXEC");
}

/* Restore: a bad blob changes nothing, not even the caller's dev. */
FIXTURE(restore) {
	struct vdpalu_dev r, before;
	int bfd;
};

FIXTURE_SETUP(restore)
{
	uint8_t junk[64] = "not a state blob";

	self->bfd = memfd_create("blob", MFD_CLOEXEC);
	ASSERT_LE(0, self->bfd) TH_LOG("memfd_create: %s", strerror(errno));
	ASSERT_EQ((ssize_t)sizeof(junk),
		  pwrite(self->bfd, junk, sizeof(junk), 0));
	memset(&self->r, 0x5a, sizeof(self->r));
	self->before = self->r;
}

FIXTURE_TEARDOWN(restore)
{
}

TEST_F(restore, junk_is_refused_leaving_the_callers_dev_untouched)
{
	EXPECT_ERRNO(EBADMSG, vdpalu_restore(&self->r, self->bfd, NULL, 0,
					     NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_EQ(0, memcmp(&self->r, &self->before, sizeof(self->r)));
}

TEST_F(restore, empty_blob_is_refused_leaving_the_callers_dev_untouched)
{
	ASSERT_EQ(0, ftruncate(self->bfd, 0));
	EXPECT_ERRNO(EBADMSG, vdpalu_restore(&self->r, self->bfd, NULL, 0,
					     NULL, NULL))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_EQ(0, memcmp(&self->r, &self->before, sizeof(self->r)));
}

TEST_F(restore, closed_fd_is_refused)
{
	EXPECT_ERRNO(EBADF, vdpalu_restore(&self->r, 12345, NULL, 0, NULL,
					   NULL))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_HARNESS_MAIN
