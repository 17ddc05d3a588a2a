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
#include "tap.h"

#define SZ (1 << 20)

static bool cloexec(int fd)
{
	return fcntl(fd, F_GETFD) & FD_CLOEXEC;
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

int main(void)
{
	struct vdpalu_dev d, before;
	void *anon, *priv, *shared;
	int mfd, other, blob = -1;

	vdpalu_init(&d);
	mfd = memfd_create("guest", MFD_CLOEXEC);
	other = memfd_create("other", MFD_CLOEXEC);
	ftruncate(mfd, 2 * SZ);
	ftruncate(other, SZ);
	anon = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	priv = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
	shared = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, SZ);

	/* Guest memory. */
	is_errno(EINVAL, vdpalu_mem_add(&d, -1, 0, anon, SZ, 0),
		 "private anonymous memory: %s", vdpalu_errmsg());
	ok(strstr(vdpalu_errmsg(), "private anonymous") != NULL,
	   "message says private anonymous");
	is_errno(EINVAL, vdpalu_mem_add(&d, mfd, 0, priv, SZ, 0),
		 "MAP_PRIVATE memfd: %s", vdpalu_errmsg());
	is_errno(EINVAL, vdpalu_mem_add(&d, other, 0, shared, SZ, 0),
		 "shared memory of another fd");
	is_errno(EINVAL, vdpalu_mem_add(&d, mfd, 0, shared, SZ, 0),
		 "right fd, wrong offset");
	is_errno(EINVAL, vdpalu_mem_add(&d, -1, 0, shared, SZ, 0),
		 "shared memory without its fd");
	errno = 0;
	ok(vdpalu_mem_add(&d, mfd, SZ, shared, 2 * SZ, 0) == -1 &&
	   (errno == EFAULT || errno == EINVAL),
	   "range runs past the mapping: %s", vdpalu_errmsg());
	ok(d.nr_regions == 0, "no region recorded by a refusal");
	/* The right memory passes the check and reaches the (absent) device. */
	is_errno(EBADF, vdpalu_mem_add(&d, mfd, SZ, shared, SZ, 0),
		 "MAP_SHARED memfd at its offset passes the check");

	/* Save: capabilities first, memory second, nothing touched. */
	dev_with_region(&d, shared, mfd);
	d.regions[0].offset = SZ;
	before = d;
	d.backend_features &= ~(1ULL << VHOST_BACKEND_F_SUSPEND);
	is_errno(EOPNOTSUPP, vdpalu_save(&d, VDPALU_FLOW_AUTO, NULL, 0, &blob),
		 "no SUSPEND: %s", vdpalu_errmsg());
	d = before;
	d.backend_features &= ~(1ULL << VHOST_BACKEND_F_NEW_OWNER);
	is_errno(EOPNOTSUPP, vdpalu_save(&d, VDPALU_FLOW_AUTO, NULL, 0, &blob),
		 "NEW_OWNER offered, not acked: %s", vdpalu_errmsg());
	ok(strstr(vdpalu_errmsg(), "did not ack") != NULL, "message says not acked");
	d = before;
	d.backend_offered &= ~(1ULL << VHOST_BACKEND_F_NEW_OWNER);
	d.backend_features &= ~(1ULL << VHOST_BACKEND_F_NEW_OWNER);
	is_errno(EOPNOTSUPP, vdpalu_save(&d, VDPALU_FLOW_AUTO, NULL, 0, &blob),
		 "NEW_OWNER not offered: %s", vdpalu_errmsg());
	d = before;
	d.backend_features &= ~(1ULL << VHOST_BACKEND_F_IOTLB_PERSIST);
	is_errno(EOPNOTSUPP, vdpalu_save(&d, VDPALU_FLOW_RESET, NULL, 0, &blob),
		 "reset flow without IOTLB_PERSIST: %s", vdpalu_errmsg());
	d = before;
	d.backend_features &= ~(1ULL << VHOST_BACKEND_F_RESUME);
	is_errno(EOPNOTSUPP, vdpalu_save(&d, VDPALU_FLOW_RESUME, NULL, 0, &blob),
		 "resume flow without RESUME: %s", vdpalu_errmsg());
	d = before;
	d.regions[0].addr = anon;
	is_errno(EINVAL, vdpalu_save(&d, VDPALU_FLOW_AUTO, NULL, 0, &blob),
		 "private anonymous region at save: %s", vdpalu_errmsg());
	d = before;
	is_errno(EMSGSIZE, vdpalu_save(&d, VDPALU_FLOW_AUTO, NULL,
				       VDPALU_APP_MAX + 1, &blob),
		 "VMM state too large for the blob");
	ok(blob == -1 && cloexec(d.fd) && cloexec(mfd),
	   "refused saves created no blob and kept FD_CLOEXEC");
	/* Capabilities and memory fine: the first device call is reached. */
	is_errno(ENOTTY, vdpalu_save(&d, VDPALU_FLOW_AUTO, NULL, 0, &blob),
		 "valid save reaches VHOST_VDPA_SUSPEND");
	ok(cloexec(d.fd) && cloexec(mfd), "a failed suspend keeps FD_CLOEXEC");

	/* Restore: a bad blob changes nothing, not even the caller's dev. */
	{
		int bfd = memfd_create("blob", MFD_CLOEXEC);
		struct vdpalu_dev r;
		uint8_t junk[64] = "not a state blob";

		pwrite(bfd, junk, sizeof(junk), 0);
		memset(&r, 0x5a, sizeof(r));
		before = r;
		is_errno(EBADMSG, vdpalu_restore(&r, bfd, NULL, 0, NULL, NULL),
			 "restore from junk: %s", vdpalu_errmsg());
		ok(!memcmp(&r, &before, sizeof(r)), "caller's dev untouched");
		ftruncate(bfd, 0);
		is_errno(EBADMSG, vdpalu_restore(&r, bfd, NULL, 0, NULL, NULL),
			 "restore from an empty blob");
		is_errno(EBADF, vdpalu_restore(&r, 12345, NULL, 0, NULL, NULL),
			 "restore from a closed fd");
	}
	return tap_done();
}
