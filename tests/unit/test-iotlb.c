// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The IOTLB messages libvdpalu writes for guest memory.  The "device" is a
 * pipe, so the test reads back exactly what the kernel would be sent.
 *
 * What matters to a user: with IOTLB_BATCH acked, mapping a region is one
 * batch, so a set_map parent gets the table once and not once per
 * physically contiguous chunk of a PA mapping (quadratic in guest memory).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

#define SZ	(1 << 20)
#define IOVA	0x100000000ULL

/* Read the next v2 message from @fd; type 0xff when there is none. */
static struct vhost_iotlb_msg next_msg(int fd)
{
	struct vhost_msg_v2 m = { 0 };

	if (read(fd, &m, sizeof(m)) != sizeof(m) ||
	    m.type != VHOST_IOTLB_MSG_V2)
		m.iotlb.type = 0xff;
	return m.iotlb;
}

static bool pipe_empty(int fd)
{
	char c;

	return read(fd, &c, 1) < 0 && errno == EAGAIN;
}

static void *shared_memory(int *fd)
{
	void *p;

	*fd = memfd_create("guest", MFD_CLOEXEC);
	if (*fd < 0 || ftruncate(*fd, SZ))
		return NULL;
	p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

static const uint64_t v2 = 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2;
static const uint64_t batch = 1ULL << VHOST_BACKEND_F_IOTLB_BATCH;

/* Guest memory, and a device whose fd is the write end of a pipe. */
FIXTURE(iotlb) {
	struct vdpalu_dev d;
	int p[2], mfd;
	void *mem;
};

FIXTURE_SETUP(iotlb)
{
	self->mem = shared_memory(&self->mfd);
	ASSERT_NE(NULL, self->mem) TH_LOG("guest memory: %s", strerror(errno));
	vdpalu_init(&self->d);
	ASSERT_EQ(0, pipe2(self->p, O_CLOEXEC | O_NONBLOCK));
	self->d.fd = self->p[1];
}

/* Each test is a process of its own: its exit closes the pipe. */
FIXTURE_TEARDOWN(iotlb)
{
}

TEST_F(iotlb, batch_acked_maps_a_region_in_one_batch_of_one_update)
{
	struct vhost_iotlb_msg m;

	self->d.backend_offered = self->d.backend_features = v2 | batch;
	ASSERT_EQ(0, vdpalu_mem_add(&self->d, self->mfd, 0, self->mem, SZ,
				    IOVA))
		TH_LOG("map guest memory: %s", vdpalu_errmsg());
	m = next_msg(self->p[0]);
	EXPECT_EQ(VHOST_IOTLB_BATCH_BEGIN, m.type) TH_LOG("BATCH_BEGIN first");
	m = next_msg(self->p[0]);
	EXPECT_EQ(VHOST_IOTLB_UPDATE, m.type)
		TH_LOG("then one UPDATE of the whole region, read-write");
	EXPECT_EQ(IOVA, m.iova);
	EXPECT_EQ((uint64_t)SZ, m.size);
	EXPECT_EQ((uintptr_t)self->mem, m.uaddr);
	EXPECT_EQ(VHOST_ACCESS_RW, m.perm);
	m = next_msg(self->p[0]);
	EXPECT_EQ(VHOST_IOTLB_BATCH_END, m.type) TH_LOG("then BATCH_END");
	EXPECT_TRUE(pipe_empty(self->p[0])) TH_LOG("and nothing else");
}

TEST_F(iotlb, batch_not_acked_maps_a_region_in_a_lone_update)
{
	struct vhost_iotlb_msg m;

	self->d.backend_offered = self->d.backend_features = v2;
	ASSERT_EQ(0, vdpalu_mem_add(&self->d, self->mfd, 0, self->mem, SZ,
				    IOVA))
		TH_LOG("map guest memory without IOTLB_BATCH: %s",
		       vdpalu_errmsg());
	m = next_msg(self->p[0]);
	EXPECT_EQ(VHOST_IOTLB_UPDATE, m.type);
	EXPECT_EQ(IOVA, m.iova);
	EXPECT_EQ((uint64_t)SZ, m.size);
	EXPECT_TRUE(pipe_empty(self->p[0])) TH_LOG("and nothing else");
}

TEST_HARNESS_MAIN
