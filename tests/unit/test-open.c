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

#include "tap.h"
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

int main(void)
{
	struct vdpalu_dev dev;
	int ack, own;

	/* /dev/null stands for the device: every ioctl is simulated */
	reset_sim(2);
	ok(vdpalu_open(&dev, "/dev/null", 0) == 0, "open a 2-queue device");
	ack = first_call(VHOST_SET_BACKEND_FEATURES);
	own = first_call(VHOST_SET_OWNER);
	ok(ack >= 0 && own >= 0 && ack < own,
	   "backend features acked before VHOST_SET_OWNER (QEMU's order)");
	ok(sim.backend_acked == VDPALU_BACKEND_WANTED,
	   "acked what the library wants, F_NEW_OWNER among it");
	ok(dev.backend_features == sim.backend_acked,
	   "the device records what was acked");
	vdpalu_close(&dev);

	reset_sim(2);
	ok(vdpalu_open(&dev, "/dev/null",
		       1ULL << VHOST_BACKEND_F_NEW_OWNER) == 0,
	   "open without consent to a transfer");
	ok(!(sim.backend_acked & (1ULL << VHOST_BACKEND_F_NEW_OWNER)),
	   "F_NEW_OWNER masked out is not acked");
	vdpalu_close(&dev);

	reset_sim(VDPALU_MAX_VQS + 1);
	is_errno(E2BIG, vdpalu_open(&dev, "/dev/null", 0),
		 "a device with more virtqueues than the library holds");
	ok(first_call(VHOST_SET_OWNER) < 0 &&
	   first_call(VHOST_SET_BACKEND_FEATURES) < 0,
	   "refused before owning the device or acking anything");
	ok(strstr(vdpalu_errmsg(), "virtqueues") != NULL,
	   "the message says why: %s", vdpalu_errmsg());
	ok(dev.fd < 0, "no fd left open");

	return tap_done();
}
