// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Random multi-process sequences on a vdpa_sim block device, seeded.
 *
 * Actors, each a worker that runs the commands this program sends it over
 * a socket, so that every ioctl and IOTLB message comes from the process
 * (and the mm) it is meant to:
 *   the owner, with a second thread;
 *   up to three other holders of its fd: forked children, or children
 *   that exec'd a new image (this program, --worker);
 * and, now and then, a live update of the owner (vdpalu_save/restore, by
 * fork or exec, reset or resume flow) with its data checked, a kill of a
 * child, of the owner, or of the owner in the middle of an update.
 *
 * Every result is predicted from a model of the device (which scratch
 * slots are mapped, whether the owner changed): valid messages must
 * succeed, messages that cannot be valid (size 0, overflows, a range
 * already mapped, unmapped or read-only memory, a bad type, messages from
 * a non-owner) must fail and change nothing.  After every round:
 *   - pins: FOLL_PIN pages outstanding == what the model has mapped;
 *   - VmPin of the owner == its mappings, of every other process 0;
 *   - no hung process: every command answers within 10 s;
 *   - the device serves block I/O and reads back its data;
 * and after a kill everything is released and the device opens again
 * with its data.  The same seed replays the same sequence.
 *
 * usage: lu-random /dev/vhost-vdpa-N [--seed S] [--ops N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vhost.h>

#include "stress-common.h"

#define NSLOT		8		/* scratch slots the model tracks */
#define NBURST		4		/* slots of the concurrent bursts */
#define SLOT_SIZE	(64u << 10)
#define SCRATCH_SIZE	((NSLOT + NBURST) * SLOT_SIZE)
#define SLOT_IOVA(i)	(0x80000000ULL + (uint64_t)(i) * SLOT_SIZE)
#define JUNK_IOVA	0x90000000ULL	/* where invalid messages aim */
#define HOLE_ADDR	((void *)0x10000000000ULL)	/* 1 TiB: far below mmap's area */
#define MAX_CHILD	3
#define ROUND		100
/*
 * An answer later than SLOW_MS is counted and reported with the figures;
 * only one that has not come in HUNG_MS is a hung process. A KASAN kernel
 * on a shared TCG host took more than 10 s for one burst of 64 IOTLB
 * messages on a batch_mapping device (a set_map of the whole table each),
 * the worker busy in the kernel, not blocked.
 */
#define SLOW_MS		10000
#define HUNG_MS		120000

enum op {
	OP_MSG,			/* one IOTLB message */
	OP_QUERY,		/* a read-only ioctl: must succeed */
	OP_BAD_IOCTL,		/* an ioctl that must fail */
	OP_NEW_OWNER,
	OP_VMPIN,
	OP_IO_WRITE,		/* owner: write every data block */
	OP_IO_CHECK,		/* owner: read them back */
	OP_BURST,		/* owner: both threads map and unmap at once */
	OP_FORK_CHILD,		/* owner: fork a holder of the fd */
	OP_EXEC_CHILD,		/* owner: fork one that execs a new image */
	OP_UPDATE,		/* owner: live update */
};

/* Where a message's uaddr points, in the process that sends it. */
enum ua { UA_RW, UA_RO, UA_OTHER, UA_HOLE, UA_RAW };

struct cmd {
	int32_t op;
	int32_t thread;		/* run on the owner's second thread */
	uint8_t type, perm, ua, method;	/* method: 0 fork, 1 exec */
	uint32_t arg;
	uint64_t iova, size, off;
	char kill_at[24];	/* OP_UPDATE: die at this point */
};

struct reply {
	int32_t ret;
	int32_t pid;
	int64_t vmpin;
};

/* ---- the workers ---- */

static const char *dev_path;
static struct vdpalu_dev wdev;	/* the owner's device */
static int wfd = -1;		/* the device fd this worker holds */
static uint8_t *rw_base, *ro_base, *other_base, *hole;
static char kill_point[24];
static int thread_cmd[2], thread_rep[2];

static void scratch_map(void)
{
	int fd = memfd_create("lu-random-scratch", MFD_CLOEXEC);
	int other = memfd_create("lu-random-other", MFD_CLOEXEC);

	if (fd < 0 || other < 0 || ftruncate(fd, SCRATCH_SIZE) ||
	    ftruncate(other, SLOT_SIZE))
		_exit(3);
	rw_base = mmap(NULL, SCRATCH_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, 0);
	ro_base = mmap(NULL, SCRATCH_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	other_base = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			  other, 0);
	/*
	 * A hole of one slot, nothing mapped in it.  Not where mmap(NULL)
	 * puts things: a 64 KiB gap among the other mappings is where the
	 * next small mapping (a vring, a thread's stack) would land, and an
	 * IOTLB_UPDATE of it would then rightly succeed.
	 */
	hole = mmap(HOLE_ADDR, 2 * SLOT_SIZE, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (rw_base == MAP_FAILED || ro_base == MAP_FAILED ||
	    other_base == MAP_FAILED || hole == MAP_FAILED)
		_exit(3);
	munmap(hole, SLOT_SIZE);
	close(fd);
	close(other);
}

static uint64_t uaddr(const struct cmd *c)
{
	switch (c->ua) {
	case UA_RW:
		return (uintptr_t)rw_base + c->off;
	case UA_RO:
		return (uintptr_t)ro_base + c->off;
	case UA_OTHER:
		return (uintptr_t)other_base + c->off;
	case UA_HOLE:
		if (msync(hole, SLOT_SIZE, MS_ASYNC) == 0 || errno != ENOMEM) {
			fprintf(stderr, "lu-random: something was mapped in the hole at %p: a fault of the test\n",
				(void *)hole);
			_exit(3);
		}
		return (uintptr_t)hole + c->off;
	default:
		return c->off;
	}
}

static int query(int fd, unsigned int which)
{
	uint64_t u64;
	uint32_t u32;
	uint8_t u8;
	struct {
		struct vhost_vdpa_config c;
		uint8_t buf[8];
	} cfg;
	int r;

	memset(&cfg, 0, sizeof(cfg));
	cfg.c.len = 8;
	switch (which % 5) {
	case 0: r = ioctl(fd, VHOST_GET_FEATURES, &u64); break;
	case 1: r = ioctl(fd, VHOST_VDPA_GET_STATUS, &u8); break;
	case 2: r = ioctl(fd, VHOST_GET_BACKEND_FEATURES, &u64); break;
	case 3: r = ioctl(fd, VHOST_VDPA_GET_VQS_COUNT, &u32); break;
	default: r = ioctl(fd, VHOST_VDPA_GET_CONFIG, &cfg); break;
	}
	return r ? -errno : 0;
}

static int bad_ioctl(int fd, unsigned int which)
{
	struct vhost_vring_state s = { .index = 77, .num = 64 };
	struct vhost_vdpa_config c = { .off = 0xfffffff0, .len = 64 };
	uint64_t f = ~0ULL;
	int r;

	switch (which % 4) {
	case 0: r = ioctl(fd, _IO(VHOST_VIRTIO, 0xee)); break;
	case 1: r = ioctl(fd, VHOST_SET_VRING_NUM, &s); break;
	case 2: r = ioctl(fd, VHOST_VDPA_GET_CONFIG, &c); break;
	/* Backend features nobody offers. */
	default: r = ioctl(fd, VHOST_SET_BACKEND_FEATURES, &f); break;
	}
	return r ? -errno : 0;
}

/* Map and unmap @n times each of the burst slots of this thread. */
static int burst(unsigned int first, unsigned int n)
{
	unsigned int i, s;
	int bad = 0;

	for (i = 0; i < n; i++)
		for (s = first; s < NBURST; s += 2) {
			bad += !!iotlb_msg(wfd, VHOST_IOTLB_UPDATE, SLOT_IOVA(NSLOT + s),
					   SLOT_SIZE, (uintptr_t)rw_base +
					   (NSLOT + s) * SLOT_SIZE, VHOST_ACCESS_RW);
			bad += !!iotlb_msg(wfd, VHOST_IOTLB_INVALIDATE,
					   SLOT_IOVA(NSLOT + s), SLOT_SIZE, 0, 0);
		}
	return -bad;
}

/* What any worker can run, on either thread. */
static void run_common(const struct cmd *c, struct reply *r)
{
	switch (c->op) {
	case OP_MSG:
		r->ret = iotlb_msg(wfd, c->type, c->iova, c->size, uaddr(c),
				   c->perm);
		break;
	case OP_QUERY:
		r->ret = query(wfd, c->arg);
		break;
	case OP_BAD_IOCTL:
		r->ret = bad_ioctl(wfd, c->arg);
		break;
	case OP_NEW_OWNER:
		r->ret = ioctl(wfd, VHOST_NEW_OWNER) ? -errno : 0;
		break;
	case OP_VMPIN:
		r->ret = 0;
		break;
	case OP_IO_WRITE:
		r->ret = guest_write_all(&wdev, c->arg);
		break;
	case OP_IO_CHECK:
		r->ret = guest_check_all(&wdev, c->arg);
		break;
	case OP_BURST:
		r->ret = burst(1, c->arg);
		break;
	default:
		r->ret = -ENOSYS;
	}
	r->vmpin = vdpalu_vmpin_kb();
	r->pid = getpid();
}

static void *second_thread(void *arg)
{
	struct cmd c;
	struct reply r;

	(void)arg;
	while (read(thread_cmd[0], &c, sizeof(c)) == sizeof(c)) {
		run_common(&c, &r);
		if (write(thread_rep[1], &r, sizeof(r)) != sizeof(r))
			break;
	}
	return NULL;
}

static void start_thread(void)
{
	pthread_t t;

	if (pipe2(thread_cmd, O_CLOEXEC) || pipe2(thread_rep, O_CLOEXEC) ||
	    pthread_create(&t, NULL, second_thread, NULL))
		_exit(3);
}

static int send_reply(int chan, const struct reply *r, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)r, .iov_len = sizeof(*r) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *h;

		m.msg_control = u.buf;
		m.msg_controllen = sizeof(u.buf);
		h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
	}
	return sendmsg(chan, &m, MSG_NOSIGNAL) == sizeof(*r) ? 0 : -1;
}

static void kill_hook(const char *point, void *arg)
{
	(void)arg;
	if (!strcmp(point, kill_point))
		raise(SIGKILL);
}

static void worker_loop(int chan, bool owner) __attribute__((noreturn));

/* Fork a holder of the fd, or one that execs a new image, with a channel. */
static int spawn_child(int chan, bool do_exec, int *child_chan)
{
	int sp[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The owner's channel must end when the owner does. */
		close(chan);
		close(sp[0]);
		if (do_exec) {
			char self[512], a[16], b[16];
			ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
			int fd = dup(wfd), ch = dup(sp[1]);	/* without CLOEXEC */

			if (n < 0 || fd < 0 || ch < 0)
				_exit(3);
			self[n] = '\0';
			snprintf(a, sizeof(a), "%d", ch);
			snprintf(b, sizeof(b), "%d", fd);
			execl(self, self, "--worker", a, b, (char *)NULL);
			_exit(3);
		}
		worker_loop(sp[1], false);
	}
	close(sp[1]);
	*child_chan = sp[0];
	return pid;
}

/*
 * The live update of the owner.  Fork: the child restores and serves a
 * new channel, the old image hands that channel over and exits.  Exec:
 * this process becomes the new image and keeps the channel.
 */
static void update(int chan, const struct cmd *c, struct reply *r)
{
	enum vdpalu_flow flow = c->arg ? VDPALU_FLOW_RESUME : VDPALU_FLOW_RESET;
	int blob, sp[2], ack[2];
	char k = 0;
	pid_t pid;

	snprintf(kill_point, sizeof(kill_point), "%s", c->kill_at);
	if (vdpalu_save(&wdev, flow, NULL, 0, &blob)) {
		r->ret = -errno;
		return;
	}
	if (c->method == 1) {
		char self[512], a[16], b[16];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		int ch = dup(chan);

		if (n < 0 || ch < 0)
			_exit(3);
		self[n] = '\0';
		snprintf(a, sizeof(a), "%d", ch);
		snprintf(b, sizeof(b), "%d", blob);
		execl(self, self, "--worker-restore", a, b, kill_point,
		      (char *)NULL);
		_exit(3);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) ||
	    pipe2(ack, O_CLOEXEC))
		_exit(3);
	pid = fork();
	if (pid == 0) {
		close(sp[0]);
		close(ack[0]);
		close(chan);
		snprintf(kill_point, sizeof(kill_point), "%s", c->kill_at);
		if (vdpalu_restore(&wdev, blob, NULL, 0, NULL, NULL)) {
			k = 'F';
			if (write(ack[1], &k, 1) != 1)
				_exit(3);
			_exit(0);
		}
		close(blob);
		kill_point[0] = '\0';
		wfd = wdev.fd;
		start_thread();
		k = 'K';
		if (write(ack[1], &k, 1) != 1)
			_exit(3);
		close(ack[1]);
		worker_loop(sp[1], true);
	}
	kill_point[0] = '\0';
	close(sp[1]);
	close(ack[1]);
	close(blob);
	{
		struct pollfd p = { .fd = ack[0], .events = POLLIN };

		if (poll(&p, 1, HUNG_MS) != 1 || read(ack[0], &k, 1) != 1)
			k = 0;
	}
	close(ack[0]);
	if (k == 'K') {
		/* Handed over: this image holds no pins now. */
		r->ret = 0;
		r->pid = pid;
		r->vmpin = vdpalu_vmpin_kb();
		send_reply(chan, r, sp[0]);
		_exit(0);
	}
	close(sp[0]);
	/* The child refused or died: run on here if it is still ours. */
	r->ret = vdpalu_cancel(&wdev) ? -errno : -ECANCELED;
}

static void worker_loop(int chan, bool owner)
{
	struct cmd c;
	struct reply r;

	signal(SIGCHLD, SIG_IGN);	/* killed children reap themselves */
	vdpalu_set_step_hook(kill_hook, NULL);
	while (recv(chan, &c, sizeof(c), 0) == sizeof(c)) {
		int fd = -1;

		memset(&r, 0, sizeof(r));
		r.pid = getpid();
		if (owner && c.thread && c.op != OP_BURST) {
			if (write(thread_cmd[1], &c, sizeof(c)) != sizeof(c) ||
			    read(thread_rep[0], &r, sizeof(r)) != sizeof(r))
				_exit(3);
		} else if (owner && c.op == OP_BURST) {
			struct reply tr;

			if (write(thread_cmd[1], &c, sizeof(c)) != sizeof(c))
				_exit(3);
			r.ret = burst(0, c.arg);
			if (read(thread_rep[0], &tr, sizeof(tr)) != sizeof(tr))
				_exit(3);
			r.ret += tr.ret;
			r.vmpin = vdpalu_vmpin_kb();
		} else if (owner && (c.op == OP_FORK_CHILD || c.op == OP_EXEC_CHILD)) {
			r.ret = spawn_child(chan, c.op == OP_EXEC_CHILD, &fd);
			r.pid = r.ret;
		} else if (owner && c.op == OP_UPDATE) {
			update(chan, &c, &r);
			r.vmpin = vdpalu_vmpin_kb();
		} else {
			run_common(&c, &r);
		}
		if (send_reply(chan, &r, fd))
			_exit(0);
		if (fd >= 0)
			close(fd);
	}
	_exit(0);
}

/* ---- the orchestrator ---- */

struct actor {
	int chan;
	pid_t pid;
	bool exec;
};

static struct actor owner = { -1, 0, false }, child[MAX_CHILD];
static unsigned int nchild;
static bool slot_mapped[NSLOT], owner_changed;
static uint64_t gen, rnd;
static bool may_die;		/* the owner may end during this call */
static unsigned long ops, updates, kills, restarts, rounds, accepted_invalid;
static unsigned long slow_answers, slowest_ms;
static long pin_base;
static unsigned long long seed;

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static int recv_reply(int chan, struct reply *r, int *fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = r, .iov_len = sizeof(*r) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct pollfd p = { .fd = chan, .events = POLLIN };
	struct timespec t0, t1;
	struct cmsghdr *h;
	unsigned long ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (poll(&p, 1, HUNG_MS) != 1)
		return -ETIMEDOUT;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	slow_answers += ms > SLOW_MS;
	if (ms > slowest_ms)
		slowest_ms = ms;
	if (recvmsg(chan, &m, MSG_CMSG_CLOEXEC) != sizeof(*r))
		return -EPIPE;
	h = CMSG_FIRSTHDR(&m);
	if (fd)
		*fd = h && h->cmsg_type == SCM_RIGHTS ?
		      *(int *)CMSG_DATA(h) : -1;
	return 0;
}

/* A hang: where every process of the test is, for the report. */
static void dump_tasks(void)
{
	char path[64], line[256];
	int pid;

	for (pid = 1; pid < 65536; pid++) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f) && getpgid(pid) == getpgid(0))
			printf("# task %s", line);
		fclose(f);
		if (getpgid(pid) != getpgid(0))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/wchan", pid);
		if ((f = fopen(path, "re"))) {
			if (fgets(line, sizeof(line), f))
				printf("#   wchan %s\n", line);
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/%d/stack", pid);
		if ((f = fopen(path, "re"))) {
			while (fgets(line, sizeof(line), f))
				printf("#   %s", line);
			fclose(f);
		}
	}
	fflush(stdout);
}

/* Send @c to @a and wait for the answer; -ETIMEDOUT is a hung process. */
static int call(struct actor *a, const struct cmd *c, struct reply *r,
		int *fd)
{
	int ret;

	ops++;
	memset(r, 0, sizeof(*r));
	if (send(a->chan, c, sizeof(*c), MSG_NOSIGNAL) != sizeof(*c))
		ret = -EPIPE;
	else
		ret = recv_reply(a->chan, r, fd);
	if (ret == -ETIMEDOUT) {
		dump_tasks();
		fatal("op %d of pid %d: no answer in %d ms (hung)", c->op,
		      a->pid, HUNG_MS);
	}
	if (ret && !may_die) {
		int st = 0;

		wait_bounded(a->pid, &st, 2000);
		fatal("op %d: pid %d is gone (%s %d)", c->op, a->pid,
		      WIFSIGNALED(st) ? "signal" : "exit status",
		      WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
	return ret;
}

static void reap(void)
{
	int st;

	while (waitpid(-1, &st, WNOHANG) > 0)
		;
}

static void drop_child(unsigned int i)
{
	kill(child[i].pid, SIGKILL);
	close(child[i].chan);
	child[i] = child[--nchild];
}

static long expected_pages(void)
{
	unsigned int i, n = 0;

	if (booted_va())
		return 0;
	for (i = 0; i < NSLOT; i++)
		n += slot_mapped[i];
	return G_SIZE / 4096 + n * (SLOT_SIZE / 4096);
}

static long owner_kb(void)
{
	return expected_pages() * 4;
}

/* Everything goes; then the device must open again with its data. */
static void start_owner(bool check_data);

static void kill_all(const char *why)
{
	long left;

	kills++;
	while (nchild)
		drop_child(nchild - 1);
	if (owner.chan >= 0) {
		kill(owner.pid, SIGKILL);
		close(owner.chan);
		owner.chan = -1;
	}
	left = pins_settle(pin_base, 5000);
	reap();
	if (left != pin_base)
		fatal("%s: %ld pins left after every process was killed", why,
		      left - pin_base);
	start_owner(true);
}

static void start_owner(bool check_data)
{
	struct cmd c = { .op = OP_IO_CHECK };
	struct reply r;
	int sp[2];
	pid_t pid;

	memset(slot_mapped, 0, sizeof(slot_mapped));
	owner_changed = false;
	restarts++;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp))
		fatal("socketpair: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(sp[0]);
		scratch_map();
		if (guest_open_wait(&wdev, dev_path, 5000)) {
			fprintf(stderr, "open: %s\n", vdpalu_errmsg());
			_exit(3);
		}
		wfd = wdev.fd;
		start_thread();
		worker_loop(sp[1], true);
	}
	close(sp[1]);
	owner = (struct actor){ sp[0], pid, false };
	c.arg = gen;
	if (check_data) {
		if (call(&owner, &c, &r, NULL) || r.ret)
			fatal("device opened again: data check %d", r.ret);
	} else {
		c.op = OP_IO_WRITE;
		c.arg = ++gen;
		if (call(&owner, &c, &r, NULL) || r.ret)
			fatal("first write: %d", r.ret);
	}
}

static uint32_t pick(uint32_t n)
{
	return rnd_next(&rnd) % n;
}

static void fatal(const char *fmt, ...)
{
	va_list ap;

	printf("not ok - random: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (after %lu ops)\n# replay: lu-random %s --seed %llu --ops %lu\n",
	       ops, dev_path, seed, ops + ROUND);
	fflush(stdout);
	kill(0, SIGKILL);
	exit(1);
}

static void expect(bool ok, const char *what, int got)
{
	if (!ok)
		fatal("%s: got %d", what, got);
}

/* Invalidate what the model has mapped: the update remaps only guest memory. */
static void unmap_slots(void)
{
	struct cmd c = { .op = OP_MSG, .type = VHOST_IOTLB_INVALIDATE,
			 .size = SLOT_SIZE };
	struct reply r;
	unsigned int i;

	for (i = 0; i < NSLOT; i++) {
		if (!slot_mapped[i])
			continue;
		c.iova = SLOT_IOVA(i);
		call(&owner, &c, &r, NULL);
		expect(r.ret == 0, "owner INVALIDATE of a mapped slot", r.ret);
		slot_mapped[i] = false;
	}
}

/* A valid map or unmap of a slot by the owner, from either thread. */
static void owner_slot_op(bool thread)
{
	unsigned int s = pick(NSLOT);
	struct cmd c = { .op = OP_MSG, .thread = thread, .iova = SLOT_IOVA(s),
			 .size = SLOT_SIZE, .off = (uint64_t)s * SLOT_SIZE };
	struct reply r;

	switch (pick(5)) {
	case 0:
	case 1:		/* map: fails (EFAULT) exactly when mapped already */
		c.type = VHOST_IOTLB_UPDATE;
		c.perm = VHOST_ACCESS_RW;
		call(&owner, &c, &r, NULL);
		expect(slot_mapped[s] ? r.ret == -EFAULT : r.ret == 0,
		       slot_mapped[s] ? "UPDATE over a mapped slot" :
		       "UPDATE of a free slot", r.ret);
		slot_mapped[s] = true;
		break;
	case 2:		/* read-only view, read-only mapping: valid */
		c.type = VHOST_IOTLB_UPDATE;
		c.perm = VHOST_ACCESS_RO;
		c.ua = UA_RO;
		call(&owner, &c, &r, NULL);
		expect(slot_mapped[s] ? r.ret == -EFAULT : r.ret == 0,
		       "read-only UPDATE of a read-only view", r.ret);
		slot_mapped[s] = true;
		break;
	case 3:		/* another memfd */
		c.type = VHOST_IOTLB_UPDATE;
		c.perm = VHOST_ACCESS_RW;
		c.ua = UA_OTHER;
		c.off = 0;
		call(&owner, &c, &r, NULL);
		expect(slot_mapped[s] ? r.ret == -EFAULT : r.ret == 0,
		       "UPDATE of another memfd", r.ret);
		slot_mapped[s] = true;
		break;
	default:
		c.type = VHOST_IOTLB_INVALIDATE;
		call(&owner, &c, &r, NULL);
		expect(r.ret == 0, "INVALIDATE of a slot", r.ret);
		slot_mapped[s] = false;
	}
}

/* A message that cannot be valid, from the owner: it fails, nothing changes. */
static void owner_invalid_op(void)
{
	struct cmd c = { .op = OP_MSG, .thread = pick(2), .type = VHOST_IOTLB_UPDATE,
			 .perm = VHOST_ACCESS_RW, .iova = JUNK_IOVA,
			 .size = SLOT_SIZE };
	unsigned int s = pick(NSLOT), kind = pick(8);
	bool must_fail = true;
	struct reply r;

	switch (kind) {
	case 0: c.size = 0; break;
	case 1: c.iova = ~0ULL - 0x1000; break;		/* iova + size wraps */
	case 2: c.ua = UA_RAW; c.off = ~0ULL - 0x1000; break;	/* uaddr wraps */
	case 3: c.ua = UA_HOLE; must_fail = !booted_va(); break;
	case 4: c.ua = UA_RO; must_fail = !booted_va(); break;	/* RW of a read-only view */
	case 5: c.type = 0x77; break;			/* no such type */
	case 6:		/* over guest memory, or over a mapped slot */
		if (slot_mapped[s]) {
			c.iova = SLOT_IOVA(s);
		} else {
			c.iova = G_IOVA + 0x1000;
			c.size = 0x1000;
		}
		break;
	default:	/* an unaligned piece across guest memory's end */
		c.iova = G_IOVA + G_SIZE - 0x800;
		c.size = 0x1000;
		break;
	}
	call(&owner, &c, &r, NULL);
	if (r.ret == 0) {
		expect(!must_fail, "invalid IOTLB_UPDATE accepted", kind);
		/* VA: the kernel takes it; the model gives it back. */
		accepted_invalid++;
		c.type = VHOST_IOTLB_INVALIDATE;
		call(&owner, &c, &r, NULL);
		expect(r.ret == 0, "INVALIDATE of an accepted message", r.ret);
	}
}

/* A holder that is not the owner: writes fail, queries work. */
static void child_op(void)
{
	struct actor *a = &child[pick(nchild)];
	unsigned int s = pick(NSLOT);
	struct cmd c = { .op = OP_MSG, .iova = SLOT_IOVA(s), .size = SLOT_SIZE,
			 .off = (uint64_t)s * SLOT_SIZE, .perm = VHOST_ACCESS_RW };
	/* EPERM says "not the owner" only once a transfer happened. */
	int eperm = owner_changed ? -EPERM : -EFAULT;
	struct reply r;

	switch (pick(7)) {
	case 0:
		c.type = VHOST_IOTLB_UPDATE;
		break;
	case 1:
		c.type = VHOST_IOTLB_INVALIDATE;
		break;
	case 2:
		c.type = pick(2) ? VHOST_IOTLB_BATCH_BEGIN : VHOST_IOTLB_BATCH_END;
		c.iova = c.size = 0;
		break;
	case 3:
		c.op = OP_QUERY;
		c.arg = pick(5);
		call(a, &c, &r, NULL);
		expect(r.ret == 0, "query by a holder", r.ret);
		return;
	case 4:
		c.op = OP_BAD_IOCTL;
		c.arg = pick(4);
		call(a, &c, &r, NULL);
		expect(r.ret != 0, "bad ioctl by a holder succeeded", c.arg);
		return;
	case 5:		/* the device runs: no takeover */
		c.op = OP_NEW_OWNER;
		call(a, &c, &r, NULL);
		expect(r.ret == -EBUSY, "NEW_OWNER of a running device", r.ret);
		return;
	default:
		c.type = VHOST_IOTLB_UPDATE;
		c.iova = JUNK_IOVA;
		c.ua = UA_HOLE;
		break;
	}
	call(a, &c, &r, NULL);
	expect(r.ret == eperm, "IOTLB message from a holder that is not the owner",
	       r.ret);
}

static void check_invariants(void)
{
	struct cmd c = { .op = OP_VMPIN };
	struct reply r;
	unsigned int i;
	long pins;

	rounds++;
	call(&owner, &c, &r, NULL);
	expect(r.vmpin == owner_kb(), "owner VmPin (kB)", (int)r.vmpin);
	for (i = 0; i < nchild; i++) {
		call(&child[i], &c, &r, NULL);
		expect(r.vmpin == 0, "VmPin of a holder", (int)r.vmpin);
	}
	pins = pins_settle(pin_base + expected_pages(), 2000);
	if (pins != pin_base + expected_pages())
		fatal("pins outstanding %ld, the model has %ld mapped",
		      pins - pin_base, expected_pages());
	c.op = OP_IO_CHECK;
	c.arg = gen;
	call(&owner, &c, &r, NULL);
	expect(r.ret == 0, "data check", r.ret);
	if (!pick(4)) {
		c.op = OP_IO_WRITE;
		c.arg = ++gen;
		call(&owner, &c, &r, NULL);
		expect(r.ret == 0, "data write", r.ret);
	}
}

static const char *const kill_points[] = {
	"suspend", "vring-save", "reset", "blob-save", "blob-load", "map",
	"new-owner", "backend-features", "features", "vrings", "remap-open",
	"remap", "start",
};

static void live_update(bool with_kill)
{
	struct cmd c = { .op = OP_UPDATE, .method = pick(2), .arg = pick(2) };
	struct reply r;
	int fd = -1, ret;

	unmap_slots();
	if (with_kill)
		snprintf(c.kill_at, sizeof(c.kill_at), "%s",
			 kill_points[pick(sizeof(kill_points) / sizeof(*kill_points))]);
	may_die = with_kill;
	ret = call(&owner, &c, &r, &fd);
	may_die = false;
	if (ret || (with_kill && r.ret && r.ret != -ECANCELED)) {
		/*
		 * The owner died at the point (or its new image did and the
		 * device went to it): everything is killed and the device
		 * must come back with its data.
		 */
		if (fd >= 0)
			close(fd);
		kill_all("kill during an update");
		return;
	}
	if (r.ret == -ECANCELED && with_kill) {
		return;		/* the new image died early; the old one resumed */
	}
	expect(r.ret == 0, "live update", r.ret);
	updates++;
	owner_changed = true;
	if (c.method == 0) {
		expect(r.vmpin == 0, "VmPin of the old image after a fork update",
		       (int)r.vmpin);
		if (fd < 0)
			fatal("fork update: no channel to the new image");
		close(owner.chan);
		owner.chan = fd;
		owner.pid = r.pid;
	}
	/* The guest carries on with its data. */
	c = (struct cmd){ .op = OP_IO_CHECK, .arg = gen };
	call(&owner, &c, &r, NULL);
	expect(r.ret == 0, "data after the update", r.ret);
}

int main(int argc, char **argv)
{
	unsigned long want = 10000, next_round;
	struct reply r;
	int i;

	if (argc == 4 && !strcmp(argv[1], "--worker")) {
		wfd = atoi(argv[3]);
		scratch_map();
		worker_loop(atoi(argv[2]), false);
	}
	if (argc == 5 && !strcmp(argv[1], "--worker-restore")) {
		int chan = atoi(argv[2]);

		snprintf(kill_point, sizeof(kill_point), "%s", argv[4]);
		vdpalu_set_step_hook(kill_hook, NULL);
		scratch_map();
		memset(&r, 0, sizeof(r));
		r.ret = vdpalu_restore(&wdev, atoi(argv[3]), NULL, 0, NULL, NULL) ?
			-errno : 0;
		close(atoi(argv[3]));
		kill_point[0] = '\0';
		wfd = wdev.fd;
		r.pid = getpid();
		r.vmpin = vdpalu_vmpin_kb();
		fcntl(chan, F_SETFD, FD_CLOEXEC);
		if (r.ret) {
			send_reply(chan, &r, -1);
			_exit(0);
		}
		start_thread();
		send_reply(chan, &r, -1);
		worker_loop(chan, true);
	}
	if (argc < 2) {
		fprintf(stderr, "usage: lu-random /dev/vhost-vdpa-N [--seed S] [--ops N]\n");
		return 2;
	}
	dev_path = argv[1];
	seed = (unsigned long long)time(NULL) ^ getpid();
	for (i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--ops"))
			want = strtoul(argv[i + 1], NULL, 0);
	}
	rnd = seed;
	signal(SIGPIPE, SIG_IGN);
	/* Orphans of killed owners come back here to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setpgid(0, 0);
	note("lu-random: seed %llu, %lu operations (replay: lu-random %s --seed %llu --ops %lu)",
	     seed, want, dev_path, seed, want);
	pin_base = pins_outstanding();
	start_owner(false);

	next_round = ROUND;
	/*
	 * Per thousand: most operations are cheap messages and ioctls; live
	 * updates (1.5%, and 0.5% killed half-way), kills of the owner
	 * (0.5%) and holders coming and going (4%) are the expensive ones,
	 * each a fork or an exec, slow under TCG.
	 */
	while (ops < want) {
		unsigned int w = pick(1000);
		struct cmd c = { 0 };

		if (w < 320) {
			owner_slot_op(false);
		} else if (w < 450) {
			owner_slot_op(true);
		} else if (w < 590) {
			owner_invalid_op();
		} else if (w < 800) {
			if (nchild)
				child_op();
			else
				owner_slot_op(false);
		} else if (w < 855) {
			c.op = OP_QUERY;
			c.arg = pick(5);
			c.thread = pick(2);
			call(&owner, &c, &r, NULL);
			expect(r.ret == 0, "owner query", r.ret);
		} else if (w < 885) {
			c.op = OP_BURST;
			c.arg = 1 + pick(8);
			call(&owner, &c, &r, NULL);
			expect(r.ret == 0, "concurrent map/unmap of both threads", r.ret);
		} else if (w < 925) {
			if (nchild < MAX_CHILD) {
				int fd = -1;

				c.op = pick(3) ? OP_FORK_CHILD : OP_EXEC_CHILD;
				call(&owner, &c, &r, &fd);
				if (r.ret <= 0 || fd < 0)
					fatal("spawn a holder: %d", r.ret);
				child[nchild++] = (struct actor){ fd, r.ret,
					c.op == OP_EXEC_CHILD };
			} else {
				kills++;
				drop_child(pick(nchild));
			}
		} else if (w < 950) {
			c.op = OP_BAD_IOCTL;
			c.arg = pick(4);
			call(&owner, &c, &r, NULL);
			expect(r.ret != 0, "bad ioctl by the owner succeeded", c.arg);
		} else if (w < 975) {
			c.op = OP_NEW_OWNER;
			call(&owner, &c, &r, NULL);
			expect(r.ret == -EINVAL, "NEW_OWNER by the owner", r.ret);
		} else if (w < 990) {
			live_update(false);
		} else if (w < 995) {
			live_update(true);
		} else {
			kill_all("owner killed");
		}
		if (ops >= next_round) {
			check_invariants();
			next_round = ops + ROUND;
		}
		reap();
	}
	check_invariants();
	while (nchild)
		drop_child(nchild - 1);
	kill(owner.pid, SIGKILL);
	close(owner.chan);
	reap();
	{
		long left = pins_settle(pin_base, 5000);

		check(left == pin_base && !failures,
		      "random: %lu operations, %lu rounds, %lu live updates, %lu kills, %lu restarts, invariants held, pins balanced at the end (%ld left), seed %llu",
		      ops, rounds, updates, kills, restarts, left - pin_base, seed);
	}
	note("random figures: ops=%lu rounds=%lu updates=%lu kills=%lu restarts=%lu accepted-invalid(VA)=%lu slowest-answer-ms=%lu answers-over-%d-ms=%lu seed=%llu",
	     ops, rounds, updates, kills, restarts, accepted_invalid, slowest_ms, SLOW_MS,
	     slow_answers, seed);
	return failures ? 1 : 0;
}
