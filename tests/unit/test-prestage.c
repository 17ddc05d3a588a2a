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
#include "unit.h"

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

/* Both sides of a handover, as far as the fixture took it. */
struct handover {
	struct vdpalu_dev old;	/* the old process's device */
	int mfd;		/* guest memory */
	void *mem;		/* ... as the old process maps it */
	int blob, describe_calls;
	int fds[64], n;		/* as the new process received them */
	struct vdpalu_stage st;
	char app[VDPALU_APP_MAX];
	size_t app_len;
	void *extra[3];		/* staged with vdpalu_stage_add() */
};

/*
 * The old process: a running device with one vq and one region, three
 * more ranges it maps itself, and its description; then the new process
 * receives the description's fds.
 */
static void setup_described(struct __test_metadata *_metadata,
			    struct handover *h)
{
	struct vdpalu_dev *d = &h->old;
	int i;

	sim.fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	sim.dup_fd = -1;
	sim.offered = VDPALU_BACKEND_WANTED;
	vdpalu_init(d);
	d->fd = sim.fd;
	d->nvqs = 1;
	d->backend_offered = d->backend_features = VDPALU_BACKEND_WANTED;
	d->status = 0xf;
	h->mfd = memfd_create("guest", MFD_CLOEXEC);
	ASSERT_LE(0, h->mfd) TH_LOG("memfd_create: %s", strerror(errno));
	ASSERT_EQ(0, ftruncate(h->mfd, 16 * SZ));
	h->mem = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, h->mfd, 0);
	ASSERT_NE(MAP_FAILED, h->mem);
	ASSERT_EQ(0, vdpalu_mem_add(d, h->mfd, 0, h->mem, SZ, 0))
		TH_LOG("%s", vdpalu_errmsg());
	ASSERT_EQ(0, vdpalu_vq_setup(d, 0, 16, 0, 0x1000, 0x2000))
		TH_LOG("%s", vdpalu_errmsg());
	for (i = 0; i < 3; i++) {
		void *p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED,
			       h->mfd, (i + 1) * (off_t)SZ);

		ASSERT_NE(MAP_FAILED, p);
		ASSERT_EQ(0, vdpalu_dma_map(d, (i + 1) * (uint64_t)SZ, SZ, p))
			TH_LOG("old process: IOTLB_UPDATE of a mapping it tracks itself (%d): %s",
			       i, vdpalu_errmsg());
	}

	reset_log();
	ASSERT_EQ(0, vdpalu_stage_describe(d, "vmm", 4, &h->blob))
		TH_LOG("describe the running device: %s", vdpalu_errmsg());
	h->describe_calls = sim.n;
	h->n = receive(h->blob, h->fds);
}

/* Described, received and prepared with VDPALU_STAGE_POPULATE. */
static void setup_prepared(struct __test_metadata *_metadata,
			   struct handover *h)
{
	setup_described(_metadata, h);
	reset_log();
	ASSERT_EQ(0, vdpalu_stage_prepare(&h->st, h->blob, h->fds, h->n,
					  h->app, &h->app_len,
					  VDPALU_STAGE_POPULATE))
		TH_LOG("prepare: %s", vdpalu_errmsg());
}

FIXTURE(described) {
	struct handover h;
};

FIXTURE_SETUP(described)
{
	setup_described(_metadata, &self->h);
}

/* Each test is a process of its own: its exit unmaps and closes. */
FIXTURE_TEARDOWN(described)
{
}

TEST_F(described, describing_does_not_touch_the_device)
{
	EXPECT_EQ(0, self->h.describe_calls);
}

TEST_F(described, description_names_device_kick_call_and_memfd)
{
	EXPECT_EQ(4, self->h.n);
}

FIXTURE(prepared) {
	struct handover h;
};

FIXTURE_SETUP(prepared)
{
	setup_prepared(_metadata, &self->h);
}

FIXTURE_TEARDOWN(prepared)
{
}

TEST_F(prepared, prepare_only_queries_the_device)
{
	ASSERT_EQ(1, sim.n);
	EXPECT_EQ(VHOST_GET_BACKEND_FEATURES, sim.ev[0].req);
}

TEST_F(prepared, prepare_takes_the_received_device_and_the_vmm_state)
{
	EXPECT_EQ(sim.dup_fd, self->h.st.dev.fd);
	EXPECT_EQ(4U, self->h.app_len);
	EXPECT_STREQ("vmm", self->h.app);
}

TEST_F(prepared, prepare_maps_guest_memory_shared_at_a_new_address)
{
	struct vdpalu_stage *st = &self->h.st;

	ASSERT_EQ(1U, st->nr_maps);
	EXPECT_EQ(st->maps[0].addr, st->dev.regions[0].addr);
	EXPECT_NE(self->h.mem, st->dev.regions[0].addr);
	EXPECT_TRUE(maps_shared(st->maps[0].addr, self->h.fds[3]))
		TH_LOG("not MAP_SHARED from the received memfd");
}

TEST_F(prepared, populate_faults_guest_memory_in)
{
	EXPECT_EQ(SZ / 1024, rss_kb(self->h.st.maps[0].addr))
		TH_LOG("kB resident of %d", SZ / 1024);
}

TEST_F(prepared, device_changed_since_described_is_not_suspended)
{
	/* The guest driver changed a vring since. */
	reset_log();
	self->h.old.vqs[0].num = 32;
	EXPECT_ERRNO(ESTALE, vdpalu_stage_suspend(&self->h.old, self->h.blob))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_EQ(0, count(VHOST_VDPA_SUSPEND, 0));
}

TEST_F(prepared, unchanged_device_is_suspended_with_one_call)
{
	reset_log();
	ASSERT_EQ(0, vdpalu_stage_suspend(&self->h.old, self->h.blob))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_EQ(1, count(VHOST_VDPA_SUSPEND, 0));
	EXPECT_EQ(1, sim.n);
}

TEST_F(prepared, blackout_starts_at_suspend)
{
	ASSERT_EQ(0, vdpalu_stage_suspend(&self->h.old, self->h.blob))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_NE(0U, self->h.old.tl.start_ns);
	EXPECT_NE(0U, self->h.old.tl.ns[VDPALU_STEP_SUSPEND]);
}

/*
 * Prepared, the mappings the old process made itself staged, and the old
 * process suspended: what the new process takes over.
 */
FIXTURE(staged) {
	struct handover h;
	struct vdpalu_dev d;	/* the new process's device */
};

FIXTURE_SETUP(staged)
{
	struct handover *h = &self->h;
	int i;

	setup_prepared(_metadata, h);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, vdpalu_stage_add(&h->st, h->fds[3],
					      (i + 1) * (uint64_t)SZ, SZ,
					      (i + 1) * (uint64_t)SZ, 0,
					      &h->extra[i]))
			TH_LOG("stage a mapping the old process made itself (%d): %s",
			       i, vdpalu_errmsg());
	ASSERT_EQ(0, vdpalu_stage_suspend(&h->old, h->blob))
		TH_LOG("suspend: %s", vdpalu_errmsg());
	reset_log();
}

FIXTURE_TEARDOWN(staged)
{
}

TEST_F(staged, stage_add_without_populate_faults_nothing_in)
{
	EXPECT_EQ(0, rss_kb(self->h.extra[0]));
}

TEST_F(staged, mapping_over_a_staged_one_is_refused)
{
	EXPECT_ERRNO(EEXIST, vdpalu_stage_add(&self->h.st, self->h.fds[3], 0,
					      SZ, SZ / 2, 0, NULL))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(staged, refused_new_owner_changes_nothing)
{
	sim.new_owner_err = EPERM;
	EXPECT_ERRNO(EPERM, vdpalu_take_over(&self->d, &self->h.st, 0))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_EQ(1, sim.n) TH_LOG("calls after the refused NEW_OWNER");
	EXPECT_FALSE(self->h.st.taken);
}

TEST_F(staged, refused_new_owner_can_be_retried)
{
	sim.new_owner_err = EPERM;
	ASSERT_ERRNO(EPERM, vdpalu_take_over(&self->d, &self->h.st, 0));
	reset_log();
	EXPECT_EQ(0, vdpalu_take_over(&self->d, &self->h.st, 0))
		TH_LOG("take over: %s", vdpalu_errmsg());
}

TEST_F(staged, take_over_is_new_owner_one_batch_of_remaps_and_resume)
{
	struct vdpalu_stage *st = &self->h.st;
	int i;

	ASSERT_EQ(0, vdpalu_take_over(&self->d, st, 0))
		TH_LOG("take over: %s", vdpalu_errmsg());
	/* NEW_OWNER, BATCH_BEGIN, 4 REMAPs, BATCH_END, RESUME */
	ASSERT_EQ(8, sim.n);
	EXPECT_EQ(VHOST_NEW_OWNER, sim.ev[0].req);
	EXPECT_EQ(VHOST_IOTLB_BATCH_BEGIN, sim.ev[1].m.type);
	EXPECT_EQ(VHOST_IOTLB_BATCH_END, sim.ev[6].m.type);
	EXPECT_EQ(VHOST_VDPA_RESUME, sim.ev[7].req);
	for (i = 0; i < 4; i++) {
		struct vhost_iotlb_msg *m = &sim.ev[2 + i].m;

		/* each REMAP at its staged address */
		EXPECT_EQ(VHOST_IOTLB_REMAP, m->type) TH_LOG("REMAP %d", i);
		EXPECT_EQ(0, m->perm) TH_LOG("REMAP %d", i);
		EXPECT_EQ(st->maps[i].iova, m->iova) TH_LOG("REMAP %d", i);
		EXPECT_EQ((uint64_t)SZ, m->size) TH_LOG("REMAP %d", i);
		EXPECT_EQ((uintptr_t)st->maps[i].addr, m->uaddr)
			TH_LOG("REMAP %d", i);
	}
}

TEST_F(staged, take_over_makes_the_device_ours_with_the_steps_timed)
{
	ASSERT_EQ(0, vdpalu_take_over(&self->d, &self->h.st, 0))
		TH_LOG("take over: %s", vdpalu_errmsg());
	EXPECT_EQ(sim.dup_fd, self->d.fd);
	EXPECT_EQ(4U, self->d.tl.count[VDPALU_STEP_REMAP]);
	EXPECT_NE(0U, self->d.tl.ns[VDPALU_STEP_NEW_OWNER]);
	EXPECT_NE(0U, self->d.tl.ns[VDPALU_STEP_START]);
}

TEST_F(staged, guest_memory_is_found_at_its_new_address)
{
	ASSERT_EQ(0, vdpalu_take_over(&self->d, &self->h.st, 0))
		TH_LOG("take over: %s", vdpalu_errmsg());
	EXPECT_EQ((char *)self->h.st.maps[0].addr + 0x1000,
		  vdpalu_iova_to_va(&self->d, 0x1000));
}

TEST_F(staged, no_consent_ack_in_the_blackout)
{
	ASSERT_EQ(0, vdpalu_take_over(&self->d, &self->h.st, 0))
		TH_LOG("take over: %s", vdpalu_errmsg());
	EXPECT_EQ(0, count(VHOST_SET_BACKEND_FEATURES, 0));
}

TEST_F(staged, finish_acks_consent_to_the_next_transfer_again)
{
	ASSERT_EQ(0, vdpalu_take_over(&self->d, &self->h.st, 0))
		TH_LOG("take over: %s", vdpalu_errmsg());
	reset_log();
	ASSERT_EQ(0, vdpalu_take_over_finish(&self->d))
		TH_LOG("finish: %s", vdpalu_errmsg());
	ASSERT_EQ(1, count(VHOST_SET_BACKEND_FEATURES, 0));
	EXPECT_NE(0ULL, sim.ev[0].arg & (1ULL << VHOST_BACKEND_F_NEW_OWNER));
}

TEST_F(staged, finish_sets_cloexec_on_the_device)
{
	ASSERT_EQ(0, vdpalu_take_over(&self->d, &self->h.st, 0))
		TH_LOG("take over: %s", vdpalu_errmsg());
	ASSERT_EQ(0, vdpalu_take_over_finish(&self->d))
		TH_LOG("finish: %s", vdpalu_errmsg());
	EXPECT_TRUE(fcntl(self->d.fd, F_GETFD) & FD_CLOEXEC);
}

TEST_F(staged, freeing_the_stage_after_take_over_leaves_guest_memory_mapped)
{
	ASSERT_EQ(0, vdpalu_take_over(&self->d, &self->h.st, 0))
		TH_LOG("take over: %s", vdpalu_errmsg());
	vdpalu_stage_free(&self->h.st);
	EXPECT_EQ(0, rss_kb(self->h.extra[1]));
	EXPECT_TRUE(maps_shared(self->h.extra[1], self->h.fds[3]));
}

/* Unbatched, and many mappings: one REMAP each. */
TEST_F(described, no_batch_take_over_is_one_remap_per_mapping)
{
	struct handover *h = &self->h;
	struct vdpalu_dev d;
	int i;

	ASSERT_EQ(0, vdpalu_stage_prepare(&h->st, h->blob, h->fds, h->n, NULL,
					  NULL, 0))
		TH_LOG("prepare: %s", vdpalu_errmsg());
	for (i = 1; i < 512; i++)
		if (vdpalu_stage_add(&h->st, h->fds[3], SZ + i * 4096ULL, 4096,
				     SZ + i * 4096ULL, 0, NULL))
			break;
	ASSERT_EQ(512, i) TH_LOG("%s", vdpalu_errmsg());
	ASSERT_EQ(512U, h->st.nr_maps);
	reset_log();
	ASSERT_EQ(0, vdpalu_take_over(&d, &h->st, VDPALU_TAKE_OVER_NO_BATCH))
		TH_LOG("take over: %s", vdpalu_errmsg());
	EXPECT_EQ(512, count(0, VHOST_IOTLB_REMAP));
	EXPECT_EQ(0, count(0, VHOST_IOTLB_BATCH_BEGIN));
	EXPECT_EQ(514, sim.n);
}

/* PA device: nothing to remap. */
TEST_F(described, pa_take_over_is_new_owner_and_resume)
{
	struct handover *h = &self->h;
	struct vdpalu_dev d;

	sim.offered = VDPALU_BACKEND_WANTED &
		      ~(1ULL << VHOST_BACKEND_F_IOTLB_REMAP);
	ASSERT_EQ(0, vdpalu_stage_prepare(&h->st, h->blob, h->fds, h->n, NULL,
					  NULL, 0))
		TH_LOG("prepare for a PA device: %s", vdpalu_errmsg());
	reset_log();
	ASSERT_EQ(0, vdpalu_take_over(&d, &h->st, 0))
		TH_LOG("take over: %s", vdpalu_errmsg());
	ASSERT_EQ(2, sim.n);
	EXPECT_EQ(VHOST_NEW_OWNER, sim.ev[0].req);
	EXPECT_EQ(VHOST_VDPA_RESUME, sim.ev[1].req);
}

/* Refusals: nothing stays mapped. */
TEST_F(described, device_without_resume_is_refused_and_nothing_staged)
{
	struct vdpalu_stage *st = &self->h.st;

	sim.offered = VDPALU_BACKEND_WANTED & ~(1ULL << VHOST_BACKEND_F_RESUME);
	memset(st, 0xa5, sizeof(*st));
	EXPECT_ERRNO(EOPNOTSUPP, vdpalu_stage_prepare(st, self->h.blob,
						      self->h.fds, self->h.n,
						      NULL, NULL, 0))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_EQ(0U, st->nr_maps);
	EXPECT_NULL(st->maps);
	EXPECT_GT(0, st->dev.fd);
}

TEST_F(described, describing_a_device_without_resume_acked_is_refused)
{
	int blob;

	self->h.old.backend_features &= ~(1ULL << VHOST_BACKEND_F_RESUME);
	EXPECT_ERRNO(EOPNOTSUPP, vdpalu_stage_describe(&self->h.old, NULL, 0,
						       &blob))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(described, reset_flow_blob_cannot_be_prestaged)
{
	struct vdpalu_stage *st = &self->h.st;
	int blob;

	ASSERT_EQ(0, vdpalu_save(&self->h.old, VDPALU_FLOW_RESET, NULL, 0,
				 &blob))
		TH_LOG("a reset-flow blob: %s", vdpalu_errmsg());
	EXPECT_ERRNO(EINVAL, vdpalu_stage_prepare(st, blob, NULL, 0, NULL,
						  NULL, 0))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_HARNESS_MAIN
