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
#include "tap.h"

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

static void device_on_pipe(struct vdpalu_dev *d, int p[2], uint64_t backend)
{
	vdpalu_init(d);
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		exit(1);
	d->fd = p[1];
	d->backend_offered = d->backend_features = backend;
}

int main(void)
{
	const uint64_t v2 = 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2;
	const uint64_t batch = 1ULL << VHOST_BACKEND_F_IOTLB_BATCH;
	struct vhost_iotlb_msg m;
	struct vdpalu_dev d;
	int p[2], mfd;
	void *mem = shared_memory(&mfd);

	if (!mem) {
		ok(0, "guest memory: %s", strerror(errno));
		return tap_done();
	}

	device_on_pipe(&d, p, v2 | batch);
	ok(vdpalu_mem_add(&d, mfd, 0, mem, SZ, IOVA) == 0,
	   "map guest memory %s", vdpalu_errmsg());
	m = next_msg(p[0]);
	ok(m.type == VHOST_IOTLB_BATCH_BEGIN, "batch acked: BATCH_BEGIN first (type %u)",
	   m.type);
	m = next_msg(p[0]);
	ok(m.type == VHOST_IOTLB_UPDATE && m.iova == IOVA && m.size == SZ &&
	   m.uaddr == (uintptr_t)mem && m.perm == VHOST_ACCESS_RW,
	   "then one UPDATE of the whole region, read-write");
	m = next_msg(p[0]);
	ok(m.type == VHOST_IOTLB_BATCH_END, "then BATCH_END (type %u)", m.type);
	ok(pipe_empty(p[0]), "and nothing else");
	close(p[0]);
	close(p[1]);

	device_on_pipe(&d, p, v2);
	ok(vdpalu_mem_add(&d, mfd, 0, mem, SZ, IOVA) == 0,
	   "map guest memory without IOTLB_BATCH %s", vdpalu_errmsg());
	m = next_msg(p[0]);
	ok(m.type == VHOST_IOTLB_UPDATE && m.iova == IOVA && m.size == SZ,
	   "batch not acked: a lone UPDATE (type %u)", m.type);
	ok(pipe_empty(p[0]), "and nothing else");
	close(p[0]);
	close(p[1]);
	return tap_done();
}
