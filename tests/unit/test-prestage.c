// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The pre-staged handover against a device simulated at the system call
 * boundary (linked with -Wl,--wrap=ioctl,--wrap=write): what a user of it
 * relies on.
 *
 * - Prepare maps guest memory from the received memfds, shared, faulted
 *   in, and does not touch the device (the old process still runs it).
 * - Take over is NEW_OWNER, one REMAP per staged mapping at the new
 *   address, in one batch unless told otherwise, and RESUME: nothing else
 *   is in the blackout; the consent to the next transfer comes after.
 * - A failed NEW_OWNER changes nothing and can be retried; a device that
 *   changed since it was described is not suspended.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

#define SZ	(4 << 20)
#define MAX_EV	2048

/* One system call on the simulated device. */
struct ev {
	unsigned long req;	/* ioctl number, or 0 for an IOTLB write */
	struct vhost_iotlb_msg m;
	uint64_t arg;
};

static struct {
	int fd;			/* the device, as the test opened it */
	int dup_fd;		/* ... and as the new process received it */
	uint64_t offered;
	int new_owner_err;
	struct ev ev[MAX_EV];
	int n;
} sim;

int __real_ioctl(int fd, unsigned long req, ...);
ssize_t __real_write(int fd, const void *buf, size_t len);

static bool is_dev(int fd)
{
	return fd == sim.fd || fd == sim.dup_fd;
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!is_dev(fd))
		return __real_ioctl(fd, req, arg);
	if (sim.n < MAX_EV) {
		sim.ev[sim.n].req = req;
		if (req == VHOST_SET_BACKEND_FEATURES)
			sim.ev[sim.n].arg = *(uint64_t *)arg;
		sim.n++;
	}
	switch (req) {
	case VHOST_GET_BACKEND_FEATURES:
		*(uint64_t *)arg = sim.offered;
		return 0;
	case VHOST_GET_FEATURES:
		*(uint64_t *)arg = 1ULL << 32;
		return 0;
	case VHOST_VDPA_GET_DEVICE_ID:
		*(uint32_t *)arg = 2;
		return 0;
	case VHOST_NEW_OWNER:
		if (sim.new_owner_err) {
			errno = sim.new_owner_err;
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

ssize_t __wrap_write(int fd, const void *buf, size_t len)
{
	const struct vhost_msg_v2 *m = buf;

	if (!is_dev(fd))
		return __real_write(fd, buf, len);
	if (len != sizeof(*m) || m->type != VHOST_IOTLB_MSG_V2) {
		errno = EINVAL;
		return -1;
	}
	if (sim.n < MAX_EV)
		sim.ev[sim.n++] = (struct ev){ .m = m->iotlb };
	return len;
}

/* How many events of the log are ioctl @req (IOTLB writes: 0) of @type. */
static int count(unsigned long req, uint8_t type)
{
	int i, c = 0;

	for (i = 0; i < sim.n; i++)
		if (sim.ev[i].req == req && (req || sim.ev[i].m.type == type))
			c++;
	return c;
}

/* Kilobytes of the mapping at @addr resident in this process's page tables. */
static long rss_kb(const void *addr)
{
	char line[256];
	uint64_t start, end;
	bool in = false;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "re");

	while (f && fgets(line, sizeof(line), f)) {
		/* A VMA's first line; field lines ("Rss:") do not parse so. */
		if (sscanf(line, "%" SCNx64 "-%" SCNx64, &start, &end) == 2)
			in = (uintptr_t)addr >= start && (uintptr_t)addr < end;
		else if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
			break;
	}
	if (f)
		fclose(f);
	return kb;
}

/* Is @addr a shared mapping of the file @fd is? */
static bool maps_shared(const void *addr, int fd)
{
	char line[512], perms[5];
	uint64_t start, end, off, ino;
	unsigned int maj, min;
	struct stat st;
	bool ret = false;
	FILE *f = fopen("/proc/self/maps", "re");

	fstat(fd, &st);
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64,
			   &start, &end, perms, &off, &maj, &min, &ino) != 7)
			continue;
		if ((uintptr_t)addr >= start && (uintptr_t)addr < end)
			ret = perms[3] == 's' && ino == st.st_ino;
	}
	if (f)
		fclose(f);
	return ret;
}

/* The old process: a running device with one vq and one region. */
static void old_device(struct vdpalu_dev *d, int *mfd, void **mem)
{
	vdpalu_init(d);
	d->fd = sim.fd;
	d->nvqs = 1;
	d->backend_offered = d->backend_features = VDPALU_BACKEND_WANTED;
	d->status = 0xf;
	*mfd = memfd_create("guest", MFD_CLOEXEC);
	if (*mfd < 0 || ftruncate(*mfd, 16 * SZ))
		exit(1);
	*mem = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, *mfd, 0);
	if (*mem == MAP_FAILED ||
	    vdpalu_mem_add(d, *mfd, 0, *mem, SZ, 0) ||
	    vdpalu_vq_setup(d, 0, 16, 0, 0x1000, 0x2000))
		exit(1);
}

/* The fds of @blob as a receiver of SCM_RIGHTS would have them: dups. */
static int receive(int blob, int *fds)
{
	int n = vdpalu_blob_fds(blob, fds, 64);

	for (int i = 0; i < n; i++) {
		int dup_fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 100);

		if (fds[i] == sim.fd)
			sim.dup_fd = dup_fd;
		fds[i] = dup_fd;
	}
	return n;
}

static void reset_log(void)
{
	sim.n = 0;
	sim.new_owner_err = 0;
}

int main(void)
{
	struct vdpalu_dev old, d, before;
	struct vdpalu_stage st;
	char app[VDPALU_APP_MAX];
	size_t app_len = 0;
	int mfd, blob, fds[64], n, i, ev;
	void *mem, *extra[3];
	bool in_order;

	sim.fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	sim.dup_fd = -1;
	sim.offered = VDPALU_BACKEND_WANTED;
	old_device(&old, &mfd, &mem);
	/* The old process maps three more ranges of its own. */
	for (i = 0; i < 3; i++) {
		void *p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED,
			       mfd, (i + 1) * (off_t)SZ);

		ok(p != MAP_FAILED &&
		   vdpalu_dma_map(&old, (i + 1) * (uint64_t)SZ, SZ, p) == 0,
		   "old process: IOTLB_UPDATE of a mapping it tracks itself (%d)", i);
	}

	reset_log();
	ok(vdpalu_stage_describe(&old, "vmm", 4, &blob) == 0,
	   "describe the running device %s", vdpalu_errmsg());
	ok(sim.n == 0, "describing does not touch the device (%d calls)", sim.n);

	/* New process. */
	n = receive(blob, fds);
	ok(n == 4, "the description names device, kick, call, memfd (%d fds)", n);
	reset_log();
	ok(vdpalu_stage_prepare(&st, blob, fds, n, app, &app_len,
				VDPALU_STAGE_POPULATE) == 0,
	   "prepare %s", vdpalu_errmsg());
	ok(sim.n == 1 && sim.ev[0].req == VHOST_GET_BACKEND_FEATURES,
	   "prepare only queries the device (%d calls)", sim.n);
	ok(st.dev.fd == sim.dup_fd, "the device is the received fd");
	ok(app_len == 4 && !strcmp(app, "vmm"), "VMM state received");
	ok(st.nr_maps == 1 && st.dev.regions[0].addr == st.maps[0].addr &&
	   st.dev.regions[0].addr != mem,
	   "region mapped at a new address");
	ok(maps_shared(st.maps[0].addr, fds[3]),
	   "mapped MAP_SHARED from the received memfd");
	ok(rss_kb(st.maps[0].addr) == SZ / 1024,
	   "faulted in: %ld of %d kB resident", rss_kb(st.maps[0].addr), SZ / 1024);
	for (i = 0; i < 3; i++)
		ok(vdpalu_stage_add(&st, fds[3], (i + 1) * (uint64_t)SZ, SZ,
				    (i + 1) * (uint64_t)SZ, 0, &extra[i]) == 0,
		   "stage a mapping the old process made itself (%d)", i);
	ok(rss_kb(extra[0]) == 0,
	   "without VDPALU_STAGE_POPULATE nothing is faulted in (%ld kB)",
	   rss_kb(extra[0]));
	is_errno(EEXIST, vdpalu_stage_add(&st, fds[3], 0, SZ, SZ / 2, 0, NULL),
		 "a mapping over a staged one is refused");

	/* Old process: the guest driver changed a vring since. */
	reset_log();
	before = old;
	old.vqs[0].num = 32;
	is_errno(ESTALE, vdpalu_stage_suspend(&old, blob),
		 "a device that changed since it was described: %s",
		 vdpalu_errmsg());
	ok(count(VHOST_VDPA_SUSPEND, 0) == 0, "... is not suspended");
	old = before;
	ok(vdpalu_stage_suspend(&old, blob) == 0 &&
	   count(VHOST_VDPA_SUSPEND, 0) == 1 && sim.n == 1,
	   "unchanged: suspended, with one call %s", vdpalu_errmsg());
	ok(old.tl.start_ns && old.tl.ns[VDPALU_STEP_SUSPEND],
	   "the blackout starts at SUSPEND");

	/* New process: NEW_OWNER refused first. */
	reset_log();
	sim.new_owner_err = EPERM;
	is_errno(EPERM, vdpalu_take_over(&d, &st, 0),
		 "NEW_OWNER refused: %s", vdpalu_errmsg());
	ok(sim.n == 1 && !st.taken,
	   "nothing after the refused NEW_OWNER, the stage is intact");

	reset_log();
	ok(vdpalu_take_over(&d, &st, 0) == 0, "take over %s", vdpalu_errmsg());
	ok(sim.n == 8, "NEW_OWNER, BATCH_BEGIN, 4 REMAPs, BATCH_END, RESUME: %d calls",
	   sim.n);
	in_order = sim.n == 8 && sim.ev[0].req == VHOST_NEW_OWNER &&
		   sim.ev[1].m.type == VHOST_IOTLB_BATCH_BEGIN &&
		   sim.ev[6].m.type == VHOST_IOTLB_BATCH_END &&
		   sim.ev[7].req == VHOST_VDPA_RESUME;
	for (i = 0; in_order && i < 4; i++) {
		struct vhost_iotlb_msg *m = &sim.ev[2 + i].m;

		in_order = m->type == VHOST_IOTLB_REMAP && !m->perm &&
			   m->iova == st.maps[i].iova && m->size == SZ &&
			   m->uaddr == (uintptr_t)st.maps[i].addr;
	}
	ok(in_order, "in that order, each REMAP at its staged address");
	ok(d.fd == sim.dup_fd && d.tl.count[VDPALU_STEP_REMAP] == 4 &&
	   d.tl.ns[VDPALU_STEP_NEW_OWNER] && d.tl.ns[VDPALU_STEP_START],
	   "the device is ours, with the steps timed");
	ok(vdpalu_iova_to_va(&d, 0x1000) == (char *)st.maps[0].addr + 0x1000,
	   "guest memory is found at its new address");
	ok(count(VHOST_SET_BACKEND_FEATURES, 0) == 0,
	   "no consent ack in the blackout");
	reset_log();
	ok(vdpalu_take_over_finish(&d) == 0 &&
	   count(VHOST_SET_BACKEND_FEATURES, 0) == 1 &&
	   (sim.ev[0].arg & (1ULL << VHOST_BACKEND_F_NEW_OWNER)),
	   "finish: consent to the next transfer acked again");
	ok(fcntl(d.fd, F_GETFD) & FD_CLOEXEC, "finish: FD_CLOEXEC on the device");
	vdpalu_stage_free(&st);
	ok(rss_kb(extra[1]) == 0 && maps_shared(extra[1], fds[3]),
	   "after a take-over, freeing the stage leaves guest memory mapped");

	/* Unbatched, and many mappings: one REMAP each. */
	ok(vdpalu_stage_prepare(&st, blob, fds, n, NULL, NULL, 0) == 0,
	   "prepare again");
	for (i = 1; i < 512; i++)
		if (vdpalu_stage_add(&st, fds[3], SZ + i * 4096ULL, 4096,
				     SZ + i * 4096ULL, 0, NULL))
			break;
	ok(i == 512 && st.nr_maps == 512, "512 staged mappings %s",
	   vdpalu_errmsg());
	reset_log();
	ok(vdpalu_take_over(&d, &st, VDPALU_TAKE_OVER_NO_BATCH) == 0 &&
	   count(0, VHOST_IOTLB_REMAP) == 512 &&
	   count(0, VHOST_IOTLB_BATCH_BEGIN) == 0 && sim.n == 514,
	   "VDPALU_TAKE_OVER_NO_BATCH: 512 REMAPs, no batch (%d calls)", sim.n);
	for (i = 0; i < (int)st.nr_maps; i++)
		munmap(st.maps[i].addr, st.maps[i].size);
	vdpalu_stage_free(&st);

	/* PA device: nothing to remap. */
	sim.offered = VDPALU_BACKEND_WANTED & ~(1ULL << VHOST_BACKEND_F_IOTLB_REMAP);
	ok(vdpalu_stage_prepare(&st, blob, fds, n, NULL, NULL, 0) == 0,
	   "prepare for a PA device");
	reset_log();
	ok(vdpalu_take_over(&d, &st, 0) == 0 && sim.n == 2 &&
	   sim.ev[0].req == VHOST_NEW_OWNER && sim.ev[1].req == VHOST_VDPA_RESUME,
	   "PA take over: NEW_OWNER, RESUME (%d calls)", sim.n);
	munmap(st.maps[0].addr, st.maps[0].size);
	vdpalu_stage_free(&st);

	/* Refusals: nothing stays mapped. */
	sim.offered = VDPALU_BACKEND_WANTED & ~(1ULL << VHOST_BACKEND_F_RESUME);
	is_errno(EOPNOTSUPP, vdpalu_stage_prepare(&st, blob, fds, n, NULL, NULL, 0),
		 "device without RESUME: %s", vdpalu_errmsg());
	ok(st.nr_maps == 0 && !st.maps && st.dev.fd < 0, "nothing staged");
	sim.offered = VDPALU_BACKEND_WANTED;
	old.backend_features &= ~(1ULL << VHOST_BACKEND_F_RESUME);
	is_errno(EOPNOTSUPP, vdpalu_stage_describe(&old, NULL, 0, &ev),
		 "describing a device without RESUME acked: %s", vdpalu_errmsg());
	old.backend_features |= 1ULL << VHOST_BACKEND_F_RESUME;
	ok(vdpalu_save(&old, VDPALU_FLOW_RESET, NULL, 0, &ev) == 0,
	   "a reset-flow blob");
	is_errno(EINVAL, vdpalu_stage_prepare(&st, ev, NULL, 0, NULL, NULL, 0),
		 "... cannot be pre-staged: %s", vdpalu_errmsg());
	return tap_done();
}
