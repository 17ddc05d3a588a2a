// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libvdpalu refusals against a real vhost-vdpa device, and that each one
 * leaves the device as it was.  Prints "ok - ..." / "not ok - ..." lines
 * for tests/vm/run.sh to number.
 *
 * usage: lu-refuse /dev/vhost-vdpa-N
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim-param.h"
#include "vdpalu.h"

/* libvdpalu-internal, for forging a version-skewed blob. */
uint32_t vdpalu_crc32(const void *buf, size_t len);

#define IOVA	0x40000000ULL
#define SZ	(2 << 20)

static int failed;

#define check(cond, ...) do {						\
	int _c = !!(cond);						\
	failed |= !_c;							\
	printf("%sok - ", _c ? "" : "not ");				\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	fflush(stdout);							\
} while (0)

static int setup(struct vdpalu_dev *d, const char *path, uint64_t mask_out)
{
	unsigned int i;

	if (vdpalu_open(d, path, mask_out) || vdpalu_negotiate(d, 0) ||
	    vdpalu_mem_alloc(d, IOVA, SZ, NULL))
		return -1;
	for (i = 0; i < d->nvqs && i < 2; i++)
		if (vdpalu_vq_setup(d, i, 256, IOVA + 0x80000 + i * 0x3000,
				    IOVA + 0x81000 + i * 0x3000,
				    IOVA + 0x82000 + i * 0x3000))
			return -1;
	return vdpalu_start(d);
}

/* A copy of @blob with byte @off xor-ed by @x, in a new memfd. */
static int tampered(int blob, off_t off, uint8_t x, uint16_t version)
{
	uint8_t buf[8192];
	ssize_t n = pread(blob, buf, sizeof(buf), 0);
	int fd = memfd_create("bad-blob", MFD_CLOEXEC);

	if (n <= 0 || fd < 0)
		return -1;
	if (version) {
		/* Version skew: right checksum, other version (offset 4). */
		uint32_t crc = 0;

		memcpy(buf + 4, &version, 2);
		memcpy(buf + 12, &crc, 4);
		crc = vdpalu_crc32(buf, n);
		memcpy(buf + 12, &crc, 4);
	} else {
		buf[off] ^= x;
	}
	if (pwrite(fd, buf, n, 0) != n)
		return -1;
	return fd;
}

/* In a child (another mm, like a new image): restore must fail with @err. */
static int child_restore(int blob, int err, bool low_memlock)
{
	pid_t pid;
	int status;

	fflush(NULL);	/* or the child prints our buffered lines again */
	pid = fork();
	if (pid == 0) {
		struct vdpalu_dev nd;

		if (low_memlock) {
			struct rlimit rl = { 1 << 20, RLIM_INFINITY };

			setrlimit(RLIMIT_MEMLOCK, &rl);
		}
		errno = 0;
		if (vdpalu_restore(&nd, blob, NULL, 0, NULL, NULL) == 0)
			_exit(err ? 1 : 0);
		printf("#   restore: %s\n", vdpalu_errmsg());
		fflush(stdout);
		_exit(errno == err ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/*
 * In a forked child (same addresses, new mm): NEW_OWNER, RESUME must fail
 * with EBUSY while mappings are stale, and work after REMAP of each.
 */
static int child_stale(struct vdpalu_dev *d)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct vhost_msg_v2 m = { .type = VHOST_IOTLB_MSG_V2 };
		unsigned int i;

		if (ioctl(d->fd, VHOST_NEW_OWNER))
			_exit(1);
		if (ioctl(d->fd, VHOST_VDPA_RESUME) != -1 || errno != EBUSY) {
			printf("#   RESUME with stale mappings: %s\n",
			       strerror(errno));
			_exit(1);
		}
		for (i = 0; i < d->nr_regions; i++) {
			m.iotlb.type = VHOST_IOTLB_REMAP;
			m.iotlb.iova = d->regions[i].iova;
			m.iotlb.size = d->regions[i].size;
			m.iotlb.uaddr = (uintptr_t)d->regions[i].addr;
			if (write(d->fd, &m, sizeof(m)) != sizeof(m))
				_exit(1);
		}
		_exit(ioctl(d->fd, VHOST_VDPA_RESUME) ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/*
 * Still the owner?  IOTLB writes are owner-checked; invalidating an unused
 * range changes nothing, so asking does not add a mapping the blob lacks.
 */
static int iotlb_probe(struct vdpalu_dev *d)
{
	struct vhost_msg_v2 m = { .type = VHOST_IOTLB_MSG_V2 };

	m.iotlb.type = VHOST_IOTLB_INVALIDATE;
	m.iotlb.iova = IOVA + 0x30000000;
	m.iotlb.size = 4096;
	return write(d->fd, &m, sizeof(m)) == sizeof(m) ? 0 : -1;
}

static bool still_owner(struct vdpalu_dev *d)
{
	return iotlb_probe(d) == 0;
}

static bool is_pa(void)
{
	return vdpa_sim_param("use_va") == 0;
}

int main(int argc, char **argv)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	struct vdpalu_dev d;
	void *anon;
	int blob, bad, ret;

	if (argc != 2) {
		fprintf(stderr, "usage: lu-refuse /dev/vhost-vdpa-N\n");
		return 2;
	}
	setrlimit(RLIMIT_MEMLOCK, &rl);

	/* 1. Private anonymous guest memory, on a real device. */
	if (vdpalu_open(&d, argv[1], 0) || vdpalu_negotiate(&d, 0)) {
		printf("not ok - open %s: %s\n", argv[1], vdpalu_errmsg());
		return 1;
	}
	anon = mmap(NULL, SZ, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	errno = 0;
	ret = vdpalu_mem_add(&d, -1, 0, anon, SZ, IOVA);
	check(ret == -1 && errno == EINVAL,
	      "private anonymous guest memory refused: %s", vdpalu_errmsg());
	check(d.nr_regions == 0 && vdpalu_mem_alloc(&d, IOVA, SZ, NULL) == 0,
	      "nothing was mapped: the same IOVA range maps afterwards");
	vdpalu_close(&d);

	/* 2. A VMM that did not consent to ownership transfer. */
	if (setup(&d, argv[1], 1ULL << VHOST_BACKEND_F_NEW_OWNER)) {
		printf("not ok - setup: %s\n", vdpalu_errmsg());
		return 1;
	}
	errno = 0;
	ret = vdpalu_save(&d, VDPALU_FLOW_AUTO, NULL, 0, &blob);
	check(ret == -1 && errno == EOPNOTSUPP,
	      "save without NEW_OWNER acked refused: %s", vdpalu_errmsg());
	{
		uint8_t st = 0;

		vdpalu_get_status(&d, &st);
		check(st & 0x4 && (fcntl(d.fd, F_GETFD) & FD_CLOEXEC),
		      "device still DRIVER_OK, fds still close-on-exec");
	}
	vdpalu_close(&d);

	/* 3. Bad blobs: the device stays with its owner. */
	if (setup(&d, argv[1], 0)) {
		printf("not ok - setup: %s\n", vdpalu_errmsg());
		return 1;
	}
	check(vdpalu_has_backend(&d, VHOST_BACKEND_F_NEW_OWNER),
	      "device offers and we ack VHOST_BACKEND_F_NEW_OWNER");
	if (vdpalu_save(&d, VDPALU_FLOW_AUTO, NULL, 0, &blob)) {
		printf("not ok - save: %s\n", vdpalu_errmsg());
		return 1;
	}
	bad = tampered(blob, 40, 0x10, 0);
	check(child_restore(bad, EBADMSG, false) == 0,
	      "restore from a corrupted blob refused with EBADMSG");
	close(bad);
	bad = tampered(blob, 0, 0, 2);
	check(child_restore(bad, EPROTO, false) == 0,
	      "restore from a blob of another version refused with EPROTO");
	close(bad);
	check(still_owner(&d),
	      "after the refusals the old owner still owns the device");

	/* 4. PA: the new owner's RLIMIT_MEMLOCK must hold the pinned pages. */
	if (is_pa()) {
		check(child_restore(blob, ENOMEM, true) == 0,
		      "PA: restore with RLIMIT_MEMLOCK below the pinned memory refused with ENOMEM");
		check(still_owner(&d),
		      "PA: after ENOMEM the old owner still owns the device");
	} else {
		printf("ok - VA: RLIMIT_MEMLOCK refusal # SKIP VA devices pin nothing\n");
	}

	/* 5. And a good restore in another process does take over. */
	check(child_restore(blob, 0, false) == 0, "restore from the good blob succeeds");
	errno = 0;
	ret = iotlb_probe(&d);
	check(ret == -1 && errno == EPERM,
	      "the previous owner's IOTLB writes now fail with EPERM (%s)",
	      strerror(errno));
	close(blob);
	vdpalu_close(&d);

	/* 6. VA: a new owner that skips REMAP cannot run the device. */
	if (!is_pa()) {
		if (setup(&d, argv[1], 0) ||
		    vdpalu_save(&d, VDPALU_FLOW_RESUME, NULL, 0, &blob)) {
			printf("not ok - setup: %s\n", vdpalu_errmsg());
			return 1;
		}
		check(child_stale(&d) == 0,
		      "VA: after NEW_OWNER, RESUME fails with EBUSY until every mapping is remapped");
		close(blob);
		vdpalu_close(&d);
	}
	return failed;
}
