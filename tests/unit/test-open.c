// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vdpalu_open() against a device simulated at the ioctl() boundary (the
 * test links with -Wl,--wrap=ioctl): the order of the calls it makes and
 * what it refuses.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/vhost.h>

#include "unit.h"
#include "vdpalu.h"

#define MAX_CALLS 32

static struct {
	unsigned long calls[MAX_CALLS];
	int ncalls;
	uint32_t nvqs;
	uint64_t backend_offered;
	uint64_t backend_acked;
} sim;

int __real_ioctl(int fd, unsigned long req, ...);

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	(void)fd;
	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (sim.ncalls < MAX_CALLS)
		sim.calls[sim.ncalls++] = req;
	switch (req) {
	case VHOST_VDPA_GET_DEVICE_ID:
		*(uint32_t *)arg = 2;	/* block */
		return 0;
	case VHOST_VDPA_GET_VQS_COUNT:
		*(uint32_t *)arg = sim.nvqs;
		return 0;
	case VHOST_GET_FEATURES:
		*(uint64_t *)arg = 1ULL << 32;	/* VIRTIO_F_VERSION_1 */
		return 0;
	case VHOST_GET_BACKEND_FEATURES:
		*(uint64_t *)arg = sim.backend_offered;
		return 0;
	case VHOST_SET_BACKEND_FEATURES:
		sim.backend_acked = *(uint64_t *)arg;
		return 0;
	case VHOST_SET_OWNER:
		return 0;
	default:
		errno = ENOTTY;
		return -1;
	}
}

/* Index of the first call of @req, or -1 */
static int first_call(unsigned long req)
{
	int i;

	for (i = 0; i < sim.ncalls; i++)
		if (sim.calls[i] == req)
			return i;
	return -1;
}

static void reset_sim(uint32_t nvqs)
{
	memset(&sim, 0, sizeof(sim));
	sim.nvqs = nvqs;
	sim.backend_offered = ~0ULL;
}

/* /dev/null stands for the device: every ioctl is simulated */
FIXTURE(two_queues) {
	struct vdpalu_dev dev;
};

FIXTURE_SETUP(two_queues)
{
	reset_sim(2);
	ASSERT_EQ(0, vdpalu_open(&self->dev, "/dev/null", 0))
		TH_LOG("open a 2-queue device: %s", vdpalu_errmsg());
}

FIXTURE_TEARDOWN(two_queues)
{
	vdpalu_close(&self->dev);
}

TEST_F(two_queues, backend_features_are_acked_before_set_owner)
{
	int ack = first_call(VHOST_SET_BACKEND_FEATURES);
	int own = first_call(VHOST_SET_OWNER);

	/* QEMU's order */
	ASSERT_LE(0, ack);
	ASSERT_LE(0, own);
	EXPECT_LT(ack, own);
}

TEST_F(two_queues, acks_what_the_library_wants_new_owner_among_it)
{
	EXPECT_EQ(VDPALU_BACKEND_WANTED, sim.backend_acked);
}

TEST_F(two_queues, device_records_what_was_acked)
{
	EXPECT_EQ(sim.backend_acked, self->dev.backend_features);
}

TEST(new_owner_masked_out_is_not_acked)
{
	struct vdpalu_dev dev;

	/* no consent to a transfer */
	reset_sim(2);
	ASSERT_EQ(0, vdpalu_open(&dev, "/dev/null",
				 1ULL << VHOST_BACKEND_F_NEW_OWNER))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_EQ(0ULL,
		  sim.backend_acked & (1ULL << VHOST_BACKEND_F_NEW_OWNER));
	vdpalu_close(&dev);
}

/* A device with more virtqueues than the library holds. */
FIXTURE(too_many_queues) {
	struct vdpalu_dev dev;
};

FIXTURE_SETUP(too_many_queues)
{
	reset_sim(VDPALU_MAX_VQS + 1);
}

FIXTURE_TEARDOWN(too_many_queues)
{
}

TEST_F(too_many_queues, open_is_refused_saying_why)
{
	ASSERT_ERRNO(E2BIG, vdpalu_open(&self->dev, "/dev/null", 0))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_NE(NULL, strstr(vdpalu_errmsg(), "virtqueues"))
		TH_LOG("message: %s", vdpalu_errmsg());
}

TEST_F(too_many_queues, refused_before_owning_acking_or_keeping_an_fd)
{
	ASSERT_ERRNO(E2BIG, vdpalu_open(&self->dev, "/dev/null", 0))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_GT(0, first_call(VHOST_SET_OWNER));
	EXPECT_GT(0, first_call(VHOST_SET_BACKEND_FEATURES));
	EXPECT_GT(0, self->dev.fd) TH_LOG("an fd left open");
}

TEST_HARNESS_MAIN
