// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Races around VHOST_NEW_OWNER, on a suspended vdpa_sim block device:
 *   two-children:  two forked children and the parent call NEW_OWNER at
 *                  once; one child wins, the other gets EPERM (the consent
 *                  is used up), the parent never succeeds;
 *   iotlb-writer:  a child takes over while the parent maps and unmaps a
 *                  second range in a loop; the loop ends on EPERM only;
 *   close:         a child takes over while the parent closes its fd;
 *   exit:          ... while the parent is killed;
 *   remap-invalidate (VA devices): the new owner's REMAP of a mapping
 *                  races its own INVALIDATE of it from another thread; the
 *                  device must not be left with a stale mapping.
 * After each round: exactly one process passes the owner probe (an
 * IOTLB_INVALIDATE of a range nothing is mapped at), it runs the device
 * and reads back the data, VmPin is where the pages are (the owner, or
 * nobody), and every pin is released once the fds are closed.
 *
 * usage: lu-race /dev/vhost-vdpa-N [ROUNDS [SEED]]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vhost.h>

#include "stress-common.h"

#define PROBE_IOVA	0x700000000000ULL	/* nothing is ever mapped here */
#define SCRATCH_IOVA	0x80000000ULL
#define SCRATCH_SIZE	(256u << 10)

static const char *dev_path;
static uint64_t seed;

/* Owner probe: only the owner may write the IOTLB. */
static int probe(int fd)
{
	return iotlb_msg(fd, VHOST_IOTLB_INVALIDATE, PROBE_IOVA, 4096, 0, 0);
}

/* What a child tells the parent: its NEW_OWNER, probe, run and VmPin. */
struct verdict {
	int new_owner;		/* 0 or -errno */
	int probe;
	int io;			/* running the device and reading its data */
	long vmpin;
};

static int pipe_read(int fd, void *buf, size_t len)
{
	return read(fd, buf, len) == (ssize_t)len ? 0 : -1;
}

/*
 * As the new owner: make the mappings current (VA: REMAP to the same
 * addresses, which this forked child shares with the parent), resume,
 * check the data.
 */
static int run_as_owner(struct vdpalu_dev *d, uint64_t gen)
{
	int ret;

	if (booted_va() &&
	    (ret = iotlb_msg(d->fd, VHOST_IOTLB_REMAP, G_IOVA, G_SIZE,
			     (uintptr_t)vdpalu_iova_to_va(d, G_IOVA), 0)))
		return ret;
	if (ioctl(d->fd, VHOST_VDPA_RESUME))
		return -errno;
	return guest_check_all(d, gen);
}

/*
 * A racing child's last words: run the device if it won, then tell the
 * parent what it saw, VmPin included (read after the run, where the pages
 * are accounted by then).
 */
static void child_report(struct verdict *v, struct vdpalu_dev *d,
			 uint64_t gen, int res_fd)
{
	v->io = v->new_owner ? 0 : run_as_owner(d, gen);
	v->vmpin = vdpalu_vmpin_kb();
	if (write(res_fd, v, sizeof(*v)) != sizeof(*v))
		_exit(1);
}

static int setup(struct vdpalu_dev *d, uint64_t gen)
{
	if (guest_open(d, dev_path) || guest_write_all(d, gen) ||
	    ioctl(d->fd, VHOST_VDPA_SUSPEND))
		return -1;
	return 0;
}

static int rounds_done, failed_rounds;

static void round_result(const char *what, unsigned int r, bool ok,
			 const char *detail)
{
	rounds_done++;
	if (!ok) {
		failed_rounds++;
		check(0, "race %s round %u: %s", what, r, detail);
	}
}

/* A round that ran: its verdict, and no pin left once its fds are closed. */
static void round_end(const char *what, unsigned int r, bool ok,
		      const char *detail, long base)
{
	long left = pins_settle(base, 5000);
	char msg[320];

	snprintf(msg, sizeof(msg), "%s; %ld pins left", detail, left - base);
	round_result(what, r, ok && left == base, left == base ? detail : msg);
}

/* Two children and the parent call NEW_OWNER together. */
static void race_two_children(unsigned int r, uint64_t gen)
{
	struct verdict v[2];
	struct vdpalu_dev d;
	int go[2], res[2][2], st, i, mine, winners = 0, losers_eperm = 0;
	long base = pins_outstanding();
	pid_t pid[2];
	char c, detail[256];
	bool ok;

	if (setup(&d, gen) || pipe(go)) {
		round_result("two-children", r, false, vdpalu_errmsg());
		return;
	}
	for (i = 0; i < 2; i++) {
		if (pipe(res[i]))
			exit(2);
		pid[i] = fork();
		if (pid[i] == 0) {
			struct verdict me = { 0 };

			close(go[1]);
			if (read(go[0], &c, 1) != 1)
				_exit(1);
			me.new_owner = ioctl(d.fd, VHOST_NEW_OWNER) ? -errno : 0;
			/* Both have tried before either probes. */
			usleep(20000);
			me.probe = probe(d.fd);
			child_report(&me, &d, gen, res[i][1]);
			/* The loser's fd must not outlive the check. */
			pause();
			_exit(0);
		}
		close(res[i][1]);
	}
	close(go[0]);
	/* One write wakes both children; the parent runs in as well. */
	if (write(go[1], "gg", 2) != 2)
		exit(2);
	mine = ioctl(d.fd, VHOST_NEW_OWNER) ? -errno : 0;
	for (i = 0; i < 2; i++)
		if (pipe_read(res[i][0], &v[i], sizeof(v[i])))
			v[i].new_owner = v[i].probe = -999;
	for (i = 0; i < 2; i++) {
		winners += !v[i].new_owner && !v[i].probe && !v[i].io &&
			   v[i].vmpin == guest_pin_kb();
		losers_eperm += v[i].new_owner == -EPERM &&
				v[i].probe == -EPERM && v[i].vmpin == 0;
	}
	ok = winners == 1 && losers_eperm == 1 && mine && probe(d.fd) == -EPERM &&
	     vdpalu_vmpin_kb() == 0;
	snprintf(detail, sizeof(detail),
		 "children NEW_OWNER %d/%d probe %d/%d io %d/%d VmPin %ld/%ld; parent NEW_OWNER %d probe %d VmPin %ld",
		 v[0].new_owner, v[1].new_owner, v[0].probe, v[1].probe,
		 v[0].io, v[1].io, v[0].vmpin, v[1].vmpin, mine, probe(d.fd),
		 vdpalu_vmpin_kb());
	for (i = 0; i < 2; i++) {
		kill(pid[i], SIGKILL);
		wait_bounded(pid[i], &st, 5000);
		close(res[i][0]);
	}
	close(go[1]);
	vdpalu_close(&d);
	round_end("two-children", r, ok, detail, base);
}

struct writer {
	int fd;
	void *va;
	int ret;
	unsigned long rounds;
};

static void *iotlb_writer(void *arg)
{
	struct writer *w = arg;

	for (;;) {
		w->ret = iotlb_msg(w->fd, VHOST_IOTLB_UPDATE, SCRATCH_IOVA,
				   SCRATCH_SIZE, (uintptr_t)w->va,
				   VHOST_ACCESS_RW);
		if (w->ret)
			break;
		w->ret = iotlb_msg(w->fd, VHOST_IOTLB_INVALIDATE, SCRATCH_IOVA,
				   SCRATCH_SIZE, 0, 0);
		if (w->ret)
			break;
		w->rounds++;
	}
	return NULL;
}

enum parent_act { P_IOTLB, P_CLOSE, P_EXIT };
static const char *const act_name[] = { "iotlb-writer", "close", "exit" };

/* What the parent (the owner until the child takes over) reports. */
struct parent_verdict {
	long vmpin;
	int writer;		/* the IOTLB writer's last result */
	unsigned long rounds;
};

/*
 * A child takes over while the parent writes the IOTLB, closes its fd or
 * dies.  Both are processes of their own (the test holds no fd), each
 * reports what it saw; the parent that dies reports nothing.
 */
static void race_parent(enum parent_act act, unsigned int r, uint64_t gen)
{
	unsigned int delay_child = rnd_next(&seed) % 3000;
	unsigned int delay_parent = rnd_next(&seed) % 3000;
	struct parent_verdict pv = { .vmpin = -999, .writer = -999 };
	struct verdict v = { .new_owner = -999 };
	long base = pins_outstanding();
	int res[2], pres[2], st;
	char detail[256];
	pid_t owner;
	bool ok;

	if (pipe(res) || pipe(pres))
		exit(2);
	fflush(NULL);
	owner = fork();
	if (owner == 0) {
		struct writer w = { 0 };
		struct vdpalu_dev d;
		int go[2], memfd;
		pthread_t t;
		pid_t pid;
		char c;

		close(res[0]);
		close(pres[0]);
		memfd = memfd_create("scratch", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, SCRATCH_SIZE))
			_exit(2);
		w.va = mmap(NULL, SCRATCH_SIZE, PROT_READ | PROT_WRITE,
			    MAP_SHARED, memfd, 0);
		if (setup(&d, gen) || pipe(go))
			_exit(2);
		w.fd = d.fd;
		pid = fork();
		if (pid == 0) {
			close(pres[1]);
			close(go[1]);
			if (read(go[0], &c, 1) != 1)
				_exit(1);
			usleep(delay_child);
			v.new_owner = ioctl(d.fd, VHOST_NEW_OWNER) ? -errno : 0;
			v.probe = probe(d.fd);
			/* What the writer left mapped goes; the guest stays. */
			if (!v.new_owner)
				iotlb_msg(d.fd, VHOST_IOTLB_INVALIDATE,
					  SCRATCH_IOVA, SCRATCH_SIZE, 0, 0);
			child_report(&v, &d, gen, res[1]);
			vdpalu_close(&d);
			_exit(0);
		}
		close(res[1]);
		close(go[0]);
		if (act == P_IOTLB && pthread_create(&t, NULL, iotlb_writer, &w))
			_exit(2);
		if (write(go[1], "g", 1) != 1)
			_exit(2);
		close(go[1]);
		if (act == P_CLOSE) {
			usleep(delay_parent);
			close(d.fd);
			d.fd = -1;
		} else if (act == P_EXIT) {
			usleep(delay_parent);
			raise(SIGKILL);
		} else {
			pthread_join(t, NULL);
		}
		/* Once the child is done: where the pages are accounted. */
		wait_bounded(pid, &st, 10000);
		pv.vmpin = vdpalu_vmpin_kb();
		pv.writer = w.ret;
		pv.rounds = w.rounds;
		if (write(pres[1], &pv, sizeof(pv)) != sizeof(pv))
			_exit(1);
		vdpalu_close(&d);
		_exit(0);
	}
	close(res[1]);
	close(pres[1]);
	if (pipe_read(res[0], &v, sizeof(v)))
		v.new_owner = -999;
	if (act != P_EXIT && pipe_read(pres[0], &pv, sizeof(pv)))
		pv.vmpin = -999;
	ok = wait_bounded(owner, &st, 20000) == 0;
	/* A killed owner's child is reparented, not ours: its fd closes as it exits. */
	close(res[0]);
	close(pres[0]);
	snprintf(detail, sizeof(detail),
		 "child NEW_OWNER %d probe %d io %d VmPin %ld; parent VmPin %ld, writer %d after %lu rounds%s",
		 v.new_owner, v.probe, v.io, v.vmpin, pv.vmpin, pv.writer,
		 pv.rounds, ok ? "" : ", owner HUNG");
	ok &= !v.new_owner && !v.probe && !v.io && v.vmpin == guest_pin_kb();
	if (act != P_EXIT)
		ok &= pv.vmpin == 0;
	if (act == P_IOTLB)
		ok &= pv.writer == -EPERM;
	round_end(act_name[act], r, ok, detail, base);
}

struct racer {
	int fd;
	uint8_t type;
	uint64_t uaddr;
	pthread_barrier_t *b;
	int ret;
};

static void *racer_fn(void *arg)
{
	struct racer *x = arg;

	pthread_barrier_wait(x->b);
	x->ret = iotlb_msg(x->fd, x->type, SCRATCH_IOVA, SCRATCH_SIZE, x->uaddr,
			   x->type == VHOST_IOTLB_REMAP ? 0 : VHOST_ACCESS_RW);
	return NULL;
}

/* VA: REMAP of a stale mapping races its INVALIDATE, in the new owner. */
static void race_remap_invalidate(unsigned int r, uint64_t gen)
{
	struct vdpalu_dev d;
	struct verdict v = { .new_owner = -999 };
	int res[2], st, memfd;
	long base = pins_outstanding();
	void *va;
	pid_t pid;
	char detail[256];
	bool ok;

	memfd = memfd_create("scratch", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, SCRATCH_SIZE))
		exit(2);
	va = mmap(NULL, SCRATCH_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		  memfd, 0);
	if (guest_open(&d, dev_path) || guest_write_all(&d, gen) ||
	    iotlb_msg(d.fd, VHOST_IOTLB_UPDATE, SCRATCH_IOVA, SCRATCH_SIZE,
		      (uintptr_t)va, VHOST_ACCESS_RW) ||
	    ioctl(d.fd, VHOST_VDPA_SUSPEND) || pipe(res)) {
		round_result("remap-invalidate", r, false, vdpalu_errmsg());
		return;
	}
	pid = fork();
	if (pid == 0) {
		pthread_barrier_t b;
		struct racer a = { d.fd, VHOST_IOTLB_REMAP, (uintptr_t)va, &b, 0 };
		struct racer i = { d.fd, VHOST_IOTLB_INVALIDATE, 0, &b, 0 };
		pthread_t ta, ti;

		close(res[0]);
		pthread_barrier_init(&b, NULL, 2);
		v.new_owner = ioctl(d.fd, VHOST_NEW_OWNER) ? -errno : 0;
		pthread_create(&ta, NULL, racer_fn, &a);
		pthread_create(&ti, NULL, racer_fn, &i);
		pthread_join(ta, NULL);
		pthread_join(ti, NULL);
		/* Remap then invalidate, or invalidate then nothing to remap. */
		v.probe = i.ret ? i.ret : a.ret == -ENOENT ? 0 : a.ret;
		/* Nothing stale may be left: the device must run. */
		child_report(&v, &d, gen, res[1]);
		vdpalu_close(&d);
		_exit(0);
	}
	close(res[1]);
	if (pipe_read(res[0], &v, sizeof(v)))
		v.new_owner = -999;
	wait_bounded(pid, &st, 10000);
	close(res[0]);
	vdpalu_close(&d);
	munmap(va, SCRATCH_SIZE);
	close(memfd);
	ok = !v.new_owner && !v.probe && !v.io && v.vmpin == 0;
	snprintf(detail, sizeof(detail),
		 "NEW_OWNER %d, remap/invalidate %d, run %d, VmPin %ld",
		 v.new_owner, v.probe, v.io, v.vmpin);
	round_end("remap-invalidate", r, ok, detail, base);
}

int main(int argc, char **argv)
{
	unsigned int rounds = 10, r;
	uint64_t gen = 0;
	int before;

	if (argc < 2) {
		fprintf(stderr, "usage: lu-race /dev/vhost-vdpa-N [ROUNDS [SEED]]\n");
		return 2;
	}
	dev_path = argv[1];
	if (argc > 2)
		rounds = atoi(argv[2]);
	seed = argc > 3 ? strtoull(argv[3], NULL, 0) : (uint64_t)time(NULL);
	signal(SIGPIPE, SIG_IGN);
	note("lu-race: %u rounds per race, seed %llu (replay: lu-race DEV %u %llu)",
	     rounds, (unsigned long long)seed, rounds, (unsigned long long)seed);

	before = failed_rounds;
	for (r = 0; r < rounds; r++)
		race_two_children(r, ++gen);
	check(failed_rounds == before, "race two-children: %u rounds, one winner each, the other EPERM, pins balanced",
	      rounds);
	for (int a = P_IOTLB; a <= P_EXIT; a++) {
		before = failed_rounds;
		for (r = 0; r < rounds; r++)
			race_parent(a, r, ++gen);
		check(failed_rounds == before, "race NEW_OWNER vs parent %s: %u rounds, the child owns and runs the device, parent VmPin 0, pins balanced",
		      act_name[a], rounds);
	}
	if (booted_va()) {
		before = failed_rounds;
		for (r = 0; r < rounds; r++)
			race_remap_invalidate(r, ++gen);
		check(failed_rounds == before, "race REMAP vs INVALIDATE: %u rounds, nothing stale left, device runs, pins balanced",
		      rounds);
	} else {
		note("REMAP vs INVALIDATE: PA device, no REMAP (see the VA modes)");
	}
	note("races: %d rounds, %d failed, seed %llu", rounds_done, failed_rounds,
	     (unsigned long long)seed);
	return failures ? 1 : 0;
}
