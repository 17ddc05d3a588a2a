// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vdpa-lu-blackout: how long a vhost-vdpa block device is out of service
 * while its VMM replaces itself, by three methods, against one guest memory
 * size:
 *
 *   baseline       what exists without the series: close the device fd,
 *                  reopen, set owner, map (re-pin) all guest memory, set up
 *                  the vring, DRIVER_OK;
 *   update-reset   live update, reset flow: SUSPEND, GET_VRING_BASE, reset,
 *                  exec, NEW_OWNER, vring rebuild, [REMAP], DRIVER_OK;
 *   update-resume  live update, resume flow: SUSPEND, exec, NEW_OWNER,
 *                  [REMAP], RESUME;
 *   prestaged      live update handed to a process started beforehand, as
 *                  QEMU's cpr-transfer does: it receives the device fd,
 *                  eventfds and memfds over a UNIX socket (SCM_RIGHTS),
 *                  maps and faults in guest memory while the old process
 *                  still runs, and says it is ready; then SUSPEND in the
 *                  old process, a "go" over the socket, NEW_OWNER,
 *                  [REMAP of each mapping], RESUME in the new one.
 *
 * Blackout runs from the moment the old image stops the device (close or
 * SUSPEND) to the completion of the first block request submitted after the
 * restart: that is when the guest sees service again.
 *
 * Each image has touched all of guest memory before it updates, as a
 * running guest has.  Exec updates keep the old address space in
 * libvdpalu's keeper (vdpalu_keep_old_mm(), started before SUSPEND) so that
 * exec does not unmap guest memory inside the blackout; the new image
 * releases it after the first request and waits for the teardown, which
 * the next run must not share the machine with.  --no-keep-old-mm measures
 * a plain exec instead.
 *
 * One process chain does every run of one size: guest memory is set up once
 * and the methods alternate (baseline, reset, resume, prestaged, baseline,
 * ...), so a noisy machine disturbs them alike and their ratio holds. Each
 * run appends one CSV row to --csv. The iteration state crosses exec (and
 * the spawn of a pre-staged process) in argv; the device state crosses it
 * in libvdpalu's state blob.  A pre-staged handover changes the chain's
 * pid: the old process waits for its successor and exits with its status,
 * so the chain still ends where it began.
 *
 * Besides the blackout, a pre-staged run times "the floor": as many
 * VHOST_GET_FEATURES ioctls on the same fd as the system calls the device
 * steps made (SUSPEND, NEW_OWNER, each IOTLB message, RESUME), right after
 * the first request.  --regions N splits guest memory into N mappings of
 * one memfd, one IOTLB_UPDATE each, for the cost of a REMAP; with
 * --only-prestaged the chain runs pre-staged handovers only, --no-batch
 * sends the REMAPs without an IOTLB batch around them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/virtio_ids.h>

#include "vdpalu.h"
#include "cli.h"
#include "virtq.h"

/* Guest memory from IOVA 0: the vring (virtq.h), one request, the driver. */
#define QSZ		16
#define HDR_OFF		VQ_RINGS_SIZE
#define DATA_OFF	0x3200
#define STATUS_OFF	0x3400
#define DRV_OFF		0x3800
#define IO_TIMEOUT_NS	(30ULL * 1000000000ULL)

#define MAX_MAPS	512
#define MAX_XFER_FDS	32

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

enum method { BASELINE, UPDATE_RESET, UPDATE_RESUME, PRESTAGED, NR_METHODS };

static const char *const method_name[NR_METHODS] = {
	[BASELINE] = "baseline",
	[UPDATE_RESET] = "update-reset",
	[UPDATE_RESUME] = "update-resume",
	[PRESTAGED] = "prestaged",
};

extern char **environ;

/* Guest memory as this process maps it, beyond what libvdpalu unmaps. */
struct guest_map {
	void *addr;
	uint64_t size;
};

static struct guest_map touch_maps[MAX_MAPS];	/* all of guest memory */
static unsigned int nr_touch_maps;
static struct guest_map own_maps[MAX_MAPS];	/* to unmap at the end */
static unsigned int nr_own_maps;

/* Messages of a pre-staged handover, old to new and back. */
enum xfer_type { XFER_DESC = 1, XFER_READY, XFER_GO, XFER_DONE, XFER_RELEASED };

struct xfer_msg {
	uint32_t type;
	uint32_t nr_fds;	/* XFER_DESC: blob, then vdpalu_blob_fds() */
	uint64_t t0;		/* XFER_GO: SUSPEND started */
	uint64_t suspend_ns;
	uint64_t t_send;	/* XFER_GO: sent */
	uint64_t prepare_ns;	/* XFER_READY */
};

/* The guest driver's own indices live in guest memory, like a guest's. */
struct drv_state {
	struct dvq_idx ring;
	uint32_t requests;
};

struct chain {
	const char *dev_path;
	const char *csv;
	const char *label;	/* device mode, e.g. "pa" or "va" */
	uint64_t mem_mib;
	unsigned int runs;
	unsigned int iter;
	unsigned int regions;	/* guest memory mappings */
	bool keep_old_mm;
	bool only_prestaged;
	bool no_batch;
	int incoming;		/* socket of a pre-staged new process */
	/* Set by the image that started an update, read by the next one. */
	uint64_t t_exec;
	uint64_t blob_save_ns;	/* the one save step the blob cannot hold */
};

struct run {
	uint64_t t0;
	uint64_t exec_ns;
	uint64_t accounted_ns;	/* sum of the steps */
	char steps[512];
	size_t len;
};

static void die(const char *what)
{
	fprintf(stderr, "vdpa-lu-blackout: %s: %s\n", what,
		vdpalu_errmsg()[0] ? vdpalu_errmsg() : strerror(errno));
	exit(1);
}

static void *gva(struct vdpalu_dev *dev, uint64_t off)
{
	void *p = vdpalu_iova_to_va(dev, off);

	if (!p)
		die("guest memory layout");
	return p;
}

/* A figure of the run that is not part of the blackout: "x-" names. */
static void info_add(struct run *r, const char *name, double value)
{
	if (r->len < sizeof(r->steps))
		r->len += snprintf(r->steps + r->len, sizeof(r->steps) - r->len,
				   "%sx-%s=%.1f", r->len ? ";" : "", name, value);
}

static void step_add(struct run *r, const char *name, uint64_t ns)
{
	r->accounted_ns += ns;
	if (r->len < sizeof(r->steps))
		r->len += snprintf(r->steps + r->len, sizeof(r->steps) - r->len,
				   "%s%s=%.1f", r->len ? ";" : "", name, ns / 1e3);
}

/* Steps [@from, @to) of a libvdpalu timeline. */
static void steps_from_timeline(struct run *r, const uint64_t *ns,
				enum vdpalu_step from, enum vdpalu_step to)
{
	for (int s = from; s < (int)to; s++)
		if (ns[s])
			step_add(r, vdpalu_step_name(s), ns[s]);
}

/* Submit one 512-byte write and wait for its completion. */
static void first_io(struct vdpalu_dev *dev)
{
	struct drv_state *drv = gva(dev, DRV_OFF);
	volatile uint8_t *status = gva(dev, STATUS_OFF);
	uint64_t deadline;
	uint32_t id, len;
	struct dvq q;

	dvq_attach(&q, gva(dev, 0), QSZ, &drv->ring, false);
	memset(gva(dev, DATA_OFF), drv->requests & 0xff, 512);
	blk_req_prepare(&q, 0, &(struct blk_req){
		.hdr = gva(dev, HDR_OFF), .hdr_iova = HDR_OFF,
		.data_iova = DATA_OFF, .len = 512,
		.status = gva(dev, STATUS_OFF), .status_iova = STATUS_OFF,
		.write = true, .sector = drv->requests % 64,
	});
	dvq_publish(&q, 0);
	/* The index before the kick: the device may look right away. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vdpalu_kick(dev, 0))
		die("kick");
	deadline = vdpalu_now_ns() + IO_TIMEOUT_NS;
	while (!dvq_next_used(&q, &id, &len)) {
		if (vdpalu_now_ns() > deadline) {
			errno = ETIMEDOUT;
			die("first request after restart");
		}
		/*
		 * The simulator's worker may have been woken on this CPU:
		 * let it run now rather than at the next tick.
		 */
		sched_yield();
	}
	drv->requests++;
	if (*status != VIRTIO_BLK_S_OK) {
		errno = EIO;
		die("block write status");
	}
}

/*
 * A running guest has touched its memory, so the VMM's page tables map all
 * of it; exec has to tear that down.  Before every update, outside the
 * measured window, make each image look like that.
 */
static void touch_guest_memory(void)
{
	long page = sysconf(_SC_PAGESIZE);

	/*
	 * Rewrite one byte per page with its own value: a write fault maps
	 * the page writable, as a guest's store would.  (The test kernel has
	 * no madvise(MADV_POPULATE_WRITE): tinyconfig leaves it out.)
	 */
	for (unsigned int i = 0; i < nr_touch_maps; i++) {
		volatile uint8_t *p = touch_maps[i].addr;

		for (uint64_t off = 0; off < touch_maps[i].size; off += page)
			p[off] = p[off];
	}
}

/* An exec'd image has guest memory where libvdpalu mapped its regions. */
static void maps_from_regions(const struct vdpalu_dev *dev)
{
	nr_touch_maps = 0;
	for (unsigned int i = 0; i < dev->nr_regions; i++)
		touch_maps[nr_touch_maps++] = (struct guest_map){
			dev->regions[i].addr, dev->regions[i].size };
}

/*
 * The first image: one memfd, @c->regions mappings of it, the first (with
 * the vring) a libvdpalu region, the others the VMM's own IOTLB_UPDATEs.
 */
static void guest_memory_setup(struct chain *c, struct vdpalu_dev *dev)
{
	uint64_t size = c->mem_mib << 20, chunk = size / c->regions;
	uint8_t *mem;
	int fd;

	fd = memfd_create("bench-guest", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, size))
		die("guest memory");
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		die("mmap guest memory");
	if (vdpalu_mem_add(dev, fd, 0, mem, chunk, 0))
		die("guest memory region");
	for (unsigned int i = 1; i < c->regions; i++)
		if (vdpalu_dma_map(dev, i * chunk, chunk, mem + i * chunk))
			die("guest memory mapping");
	touch_maps[0] = own_maps[0] = (struct guest_map){ mem, size };
	nr_touch_maps = nr_own_maps = 1;
}

/* Unmap what libvdpalu does not: the old process is done with it. */
static void guest_memory_release(struct vdpalu_dev *dev)
{
	vdpalu_close(dev);
	for (unsigned int i = 0; i < nr_own_maps; i++)
		munmap(own_maps[i].addr, own_maps[i].size);
	nr_own_maps = nr_touch_maps = 0;
}

/* Fresh vring and driver state: the device starts from index 0. */
static void vring_setup(struct vdpalu_dev *dev)
{
	memset(gva(dev, 0), 0, DRV_OFF + sizeof(struct drv_state));
	if (vdpalu_vq_setup(dev, 0, QSZ, VQ_DESC_OFF, VQ_AVAIL_OFF, VQ_USED_OFF))
		die("vring setup");
}

static void csv_row(const struct chain *c, enum method m, struct run *r,
		    uint64_t t_end)
{
	FILE *f = fopen(c->csv, "a");

	if (!f)
		die(c->csv);
	/* What no step covers: library and libc work between the steps. */
	step_add(r, "other", t_end - r->t0 - r->accounted_ns);
	fprintf(f, "%s,%" PRIu64 ",%s,%u,%.1f,%.1f,%s\n", c->label, c->mem_mib,
		method_name[m], c->iter, (t_end - r->t0) / 1e3, r->exec_ns / 1e3,
		r->steps);
	fclose(f);
	printf("  %-3s %6" PRIu64 " MiB  %-13s run %u: %10.1f us\n", c->label,
	       c->mem_mib, method_name[m], c->iter, (t_end - r->t0) / 1e3);
	fflush(stdout);
}

static void baseline(struct chain *c, struct vdpalu_dev *dev)
{
	struct vdpalu_region mem = dev->regions[0];
	static const char *const step[] = {
		"close", "open", "map", "vrings", "start", "first_io",
	};
	uint64_t t[ARRAY_SIZE(step) + 1];
	struct run r = { 0 };

	/* Only timestamps in the window; the steps are written after it. */
	t[0] = vdpalu_now_ns();
	/* Closing the fd resets the device and unpins all of guest memory. */
	close(dev->fd);
	t[1] = vdpalu_now_ns();
	vdpalu_init(dev);
	if (vdpalu_open(dev, c->dev_path, 0) || vdpalu_negotiate(dev, 0))
		die("reopen");
	t[2] = vdpalu_now_ns();
	if (vdpalu_mem_add(dev, mem.fd, mem.offset, mem.addr, mem.size, mem.iova))
		die("re-map guest memory");
	t[3] = vdpalu_now_ns();
	vring_setup(dev);
	t[4] = vdpalu_now_ns();
	if (vdpalu_start(dev))
		die("DRIVER_OK");
	t[5] = vdpalu_now_ns();
	first_io(dev);
	t[6] = vdpalu_now_ns();

	r.t0 = t[0];
	for (size_t i = 0; i < ARRAY_SIZE(step); i++)
		step_add(&r, step[i], t[i + 1] - t[i]);
	csv_row(c, BASELINE, &r, t[ARRAY_SIZE(step)]);
}

/* The command line of the next image: the chain's state. */
struct next_argv {
	char mem[32], runs[16], iter[16], method[4], regions[16];
	char texec[32], blob_save[32];
	const char *argv[32];
	int argc;
};

static void next_argv(struct next_argv *a, const struct chain *c,
		      enum method m)
{
	snprintf(a->mem, sizeof(a->mem), "%" PRIu64, c->mem_mib);
	snprintf(a->runs, sizeof(a->runs), "%u", c->runs);
	snprintf(a->iter, sizeof(a->iter), "%u", c->iter);
	snprintf(a->method, sizeof(a->method), "%d", m);
	snprintf(a->regions, sizeof(a->regions), "%u", c->regions);
	a->argc = 0;
#define ARG(s) (a->argv[a->argc++] = (s))
	ARG("vdpa-lu-blackout");
	ARG("--dev"); ARG(c->dev_path);
	ARG("--csv"); ARG(c->csv);
	ARG("--label"); ARG(c->label);
	ARG("--mem"); ARG(a->mem);
	ARG("--runs"); ARG(a->runs);
	ARG("--iter"); ARG(a->iter);
	ARG("--regions"); ARG(a->regions);
	ARG("--continue"); ARG(a->method);
	if (!c->keep_old_mm)
		ARG("--no-keep-old-mm");
	if (c->only_prestaged)
		ARG("--only-prestaged");
	if (c->no_batch)
		ARG("--no-batch");
#undef ARG
	a->argv[a->argc] = NULL;
}

static void send_msg(int s, const struct xfer_msg *m, const int *fds,
		     unsigned int nr_fds)
{
	union {
		char buf[CMSG_SPACE(MAX_XFER_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (nr_fds) {
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(nr_fds * sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nr_fds * sizeof(int));
	}
	if (sendmsg(s, &msg, 0) != sizeof(*m))
		die("handover: sendmsg");
}

/* The next message, which must be of @type; its fds into @fds. */
static void recv_msg(int s, uint32_t type, struct xfer_msg *m, int *fds)
{
	union {
		char buf[CMSG_SPACE(MAX_XFER_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;

	if (recvmsg(s, &msg, MSG_CMSG_CLOEXEC) != sizeof(*m) || m->type != type) {
		errno = EPROTO;
		die("handover: unexpected message");
	}
	cm = CMSG_FIRSTHDR(&msg);
	if (m->nr_fds && (!fds || !cm || cm->cmsg_type != SCM_RIGHTS ||
			  cm->cmsg_len != CMSG_LEN(m->nr_fds * sizeof(int)))) {
		errno = EPROTO;
		die("handover: fds missing");
	}
	if (m->nr_fds)
		memcpy(fds, CMSG_DATA(cm), m->nr_fds * sizeof(int));
}

/*
 * Old process of a pre-staged handover.  The new process is started, given
 * the fds and the description and has mapped and faulted in all of guest
 * memory before SUSPEND; after it, one message and three ioctls (more on a
 * VA device: the REMAPs).  Does not return: once the new process has
 * served its first request, the old one lets go of guest memory and waits
 * to exit with the status of the chain's end.
 */
static void prestage_next(struct chain *c, struct vdpalu_dev *dev)
{
	struct xfer_msg m = { .type = XFER_DESC };
	int sv[2], fds[MAX_XFER_FDS], blob, n, status;
	struct next_argv a;
	char sock[16], **envp;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		die("socketpair");
	/* The new process inherits its end of the socket and nothing else. */
	if (fcntl(sv[1], F_SETFD, 0))
		die("fcntl");
	next_argv(&a, c, PRESTAGED);
	snprintf(sock, sizeof(sock), "%d", sv[1]);
	a.argv[a.argc++] = "--incoming";
	a.argv[a.argc++] = sock;
	a.argv[a.argc] = NULL;
	/*
	 * Not environ as it is: an image this chain exec'd still has the
	 * VDPALU_OLD_MM_FDS it released, and the new process would take that
	 * keeper for one of its own.
	 */
	envp = vdpalu_exec_env(environ, NULL);
	if (!envp)
		die("environment");
	if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL,
			(char *const *)a.argv, envp))
		die("spawn the new process");
	free(envp);
	close(sv[1]);

	if (vdpalu_stage_describe(dev, NULL, 0, &blob))
		die("describe the device");
	fds[0] = blob;
	n = vdpalu_blob_fds(blob, fds + 1, MAX_XFER_FDS - 1);
	if (n < 0)
		die("fds of the description");
	m.nr_fds = n + 1;
	send_msg(sv[0], &m, fds, m.nr_fds);
	/* Meanwhile the guest would run on here. */
	recv_msg(sv[0], XFER_READY, &m, NULL);

	if (vdpalu_stage_suspend(dev, blob))
		die("suspend for the handover");
	m = (struct xfer_msg){
		.type = XFER_GO, .t0 = dev->tl.start_ns,
		.suspend_ns = dev->tl.ns[VDPALU_STEP_SUSPEND],
	};
	m.t_send = vdpalu_now_ns();
	send_msg(sv[0], &m, NULL, 0);

	/* Outside the blackout: let go of guest memory, then of the chain. */
	recv_msg(sv[0], XFER_DONE, &m, NULL);
	close(blob);
	guest_memory_release(dev);
	m = (struct xfer_msg){ .type = XFER_RELEASED };
	send_msg(sv[0], &m, NULL, 0);
	close(sv[0]);
	if (waitpid(pid, &status, 0) != pid)
		die("wait for the new process");
	exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* The system calls of the device steps, each as VHOST_GET_FEATURES. */
static uint64_t syscall_floor(struct vdpalu_dev *dev, unsigned int n)
{
	uint64_t features, t = vdpalu_now_ns();

	for (unsigned int i = 0; i < n; i++)
		if (ioctl(dev->fd, VHOST_GET_FEATURES, &features) < 0)
			die("VHOST_GET_FEATURES");
	return vdpalu_now_ns() - t;
}

/*
 * Where a REMAP's time goes, one system call at a time, with the device
 * running (a set_map parent allows that): an empty batch, a REMAP inside
 * a batch (the checks) and its BATCH_END (the parent's set_map), and a
 * REMAP on its own.  Each remaps region 0 to where it is already.
 */
static void remap_profile(struct run *r, struct vdpalu_dev *dev)
{
	static const char *const name[] = {
		"p-begin", "p-remap-batched", "p-end", "p-remap-alone",
	};
	const struct vdpalu_region *g = &dev->regions[0];
	struct vhost_msg_v2 msg[] = {
		{ .type = VHOST_IOTLB_MSG_V2, .iotlb.type = VHOST_IOTLB_BATCH_BEGIN },
		{ .type = VHOST_IOTLB_MSG_V2, .iotlb = {
			.iova = g->iova, .size = g->size,
			.uaddr = (uintptr_t)g->addr, .type = VHOST_IOTLB_REMAP } },
		{ .type = VHOST_IOTLB_MSG_V2, .iotlb.type = VHOST_IOTLB_BATCH_END },
		{ .type = VHOST_IOTLB_MSG_V2, .iotlb = {
			.iova = g->iova, .size = g->size,
			.uaddr = (uintptr_t)g->addr, .type = VHOST_IOTLB_REMAP } },
	};
	uint64_t t[ARRAY_SIZE(msg) + 1];

	t[0] = vdpalu_now_ns();
	for (size_t i = 0; i < ARRAY_SIZE(msg); i++) {
		if (write(dev->fd, &msg[i], sizeof(msg[i])) != sizeof(msg[i]))
			return;	/* a dma_map parent refuses it while running */
		t[i + 1] = vdpalu_now_ns();
	}
	for (size_t i = 0; i < ARRAY_SIZE(msg); i++)
		info_add(r, name[i], (t[i + 1] - t[i]) / 1e3);
}

/* When the take-over passed "remap-open": its first REMAP is through. */
static void remap_open_hook(const char *point, void *arg)
{
	if (!strcmp(point, "remap-open"))
		*(uint64_t *)arg = vdpalu_now_ns();
}

/*
 * New process of a pre-staged handover, started by prestage_next(): map,
 * fault in, say ready; on "go" take over and serve the first request.
 */
static void prestaged_take_over(struct chain *c, struct vdpalu_dev *dev)
{
	static struct vdpalu_stage st;
	struct xfer_msg m;
	struct run r = { 0 };
	int fds[MAX_XFER_FDS];
	uint64_t chunk, t_wake, t_io, t_end, floor_ns, dev_ns, t_open = 0;
	unsigned int nr_msgs, i;
	int s = c->incoming;

	recv_msg(s, XFER_DESC, &m, fds);
	if (vdpalu_stage_prepare(&st, fds[0], fds + 1, m.nr_fds - 1, NULL, NULL,
				 VDPALU_STAGE_POPULATE))
		die("prepare");
	close(fds[0]);
	chunk = st.dev.regions[0].size;
	for (i = 1; i < c->regions; i++)
		if (vdpalu_stage_add(&st, st.dev.regions[0].fd, i * chunk, chunk,
				     i * chunk, VDPALU_STAGE_POPULATE, NULL))
			die("stage a mapping");
	m = (struct xfer_msg){ .type = XFER_READY, .prepare_ns = st.map_ns };
	send_msg(s, &m, NULL, 0);

	vdpalu_set_step_hook(remap_open_hook, &t_open);
	recv_msg(s, XFER_GO, &m, NULL);
	t_wake = vdpalu_now_ns();
	if (vdpalu_take_over(dev, &st, c->no_batch ? VDPALU_TAKE_OVER_NO_BATCH : 0))
		die("take over");
	t_io = vdpalu_now_ns();
	vdpalu_set_step_hook(NULL, NULL);
	first_io(dev);
	t_end = vdpalu_now_ns();

	/* SUSPEND, NEW_OWNER, RESUME and each IOTLB message. */
	nr_msgs = dev->tl.ns[VDPALU_STEP_REMAP] ?
		  st.nr_maps + (c->no_batch ? 0 : 2) : 0;
	floor_ns = syscall_floor(dev, 3 + nr_msgs);
	if (nr_msgs && !c->no_batch && c->regions == 1)
		remap_profile(&r, dev);
	if (vdpalu_take_over_finish(dev))
		die("finish the take-over");

	r.t0 = m.t0;
	step_add(&r, "suspend", m.suspend_ns);
	step_add(&r, "handoff", t_wake - (m.t0 + m.suspend_ns));
	steps_from_timeline(&r, dev->tl.ns, VDPALU_STEP_NEW_OWNER,
			    VDPALU_STEP_MAX);
	step_add(&r, "first_io", t_end - t_io);
	dev_ns = m.suspend_ns + dev->tl.ns[VDPALU_STEP_NEW_OWNER] +
		 dev->tl.ns[VDPALU_STEP_REMAP] + dev->tl.ns[VDPALU_STEP_START];
	info_add(&r, "device", dev_ns / 1e3);
	info_add(&r, "floor", floor_ns / 1e3);
	info_add(&r, "floor_n", 3 + nr_msgs);
	info_add(&r, "regions", st.nr_maps);
	info_add(&r, "prepare", st.map_ns / 1e3);
	info_add(&r, "send", (t_wake - m.t_send) / 1e3);
	/*
	 * The REMAP step split where the first mapping is remapped: with
	 * one mapping in a batch, BATCH_BEGIN + REMAP, then BATCH_END.
	 */
	if (t_open) {
		uint64_t remap_start = dev->tl.start_ns +
				       dev->tl.ns[VDPALU_STEP_NEW_OWNER];

		info_add(&r, "remap-first", (t_open - remap_start) / 1e3);
		info_add(&r, "remap-rest",
			 (dev->tl.ns[VDPALU_STEP_REMAP] - (t_open - remap_start)) / 1e3);
	}

	/* Guest memory as this process has it, for the next runs. */
	nr_touch_maps = nr_own_maps = 0;
	for (i = 0; i < st.nr_maps; i++) {
		touch_maps[nr_touch_maps++] = (struct guest_map){
			st.maps[i].addr, st.maps[i].size };
		if (i)	/* the first is libvdpalu's region 0 */
			own_maps[nr_own_maps++] = touch_maps[i];
	}
	vdpalu_stage_free(&st);
	/* The old process's teardown must not overlap the next run. */
	m = (struct xfer_msg){ .type = XFER_DONE };
	send_msg(s, &m, NULL, 0);
	recv_msg(s, XFER_RELEASED, &m, NULL);
	close(s);
	/*
	 * The floor again, first thing after a switch back from another
	 * process, as the take-over runs: under TCG a switch of address
	 * space empties the emulated TLB, and what follows pays to refill it.
	 */
	info_add(&r, "floor-after-switch", syscall_floor(dev, 3 + nr_msgs) / 1e3);
	csv_row(c, PRESTAGED, &r, t_end);
}

/*
 * Everything but the save and the exec itself is done before SUSPEND: the
 * work of the benchmark must not show up in the blackout it measures.
 */
static void exec_next(struct chain *c, struct vdpalu_dev *dev, enum method m)
{
	char state[VDPALU_ENV_MAX], old_mm[VDPALU_ENV_MAX] = "";
	char *vars[3] = { state, NULL, NULL };
	struct next_argv a;
	int blob;

	/* Before SUSPEND, as a VMM would: the guest still runs meanwhile. */
	if (c->keep_old_mm && vdpalu_keep_old_mm(old_mm, sizeof(old_mm)))
		die("keep the old address space");
	if (old_mm[0])
		vars[1] = old_mm;
	/*
	 * The blackout starts at SUSPEND, after the save's own checks; the
	 * new image finds that time and the save's steps in the blob.
	 */
	if (vdpalu_save(dev, m == UPDATE_RESET ? VDPALU_FLOW_RESET :
			VDPALU_FLOW_RESUME, NULL, 0, &blob))
		die("save");
	next_argv(&a, c, m);
	snprintf(a.blob_save, sizeof(a.blob_save), "%" PRIu64,
		 dev->tl.ns[VDPALU_STEP_BLOB_SAVE]);
	a.argv[a.argc++] = "--blob-save-ns";
	a.argv[a.argc++] = a.blob_save;
	if (vdpalu_state_env(blob, state, sizeof(state)))
		die("state variable");
	/* The new image's environment, set just before exec: one thread. */
	environ = vdpalu_exec_env(environ, vars);
	if (!environ)
		die("environment");
	/* Last: the exec clock starts here. */
	snprintf(a.texec, sizeof(a.texec), "%" PRIu64, vdpalu_now_ns());
	a.argv[a.argc++] = "--t-exec";
	a.argv[a.argc++] = a.texec;
	a.argv[a.argc] = NULL;
	execv("/proc/self/exe", (char *const *)a.argv);
	die("exec");
}

static void usage(void)
{
	puts("usage: vdpa-lu-blackout --dev /dev/vhost-vdpa-N --mem MIB --runs N\n"
	     "                        --csv FILE [--label TAG] [--no-keep-old-mm]\n"
	     "                        [--regions N --only-prestaged [--no-batch]]\n"
	     "       vdpa-lu-blackout --help | --version\n"
	     "TAG, the CSV's first column, names the device (pa, va, va-batch, ...)\n"
	     "Exit status: 0 measured, 1 failed, 2 command-line error.");
}

static void usage_error(void)
{
	fprintf(stderr, "Try 'vdpa-lu-blackout --help'.\n");
	exit(CLI_USAGE);
}

/* The options into @c; the method that brought this image here, or -1. */
static int parse_args(int argc, char **argv, struct chain *c)
{
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "csv", required_argument, NULL, 'c' },
		{ "label", required_argument, NULL, 'l' },
		{ "mem", required_argument, NULL, 'm' },
		{ "runs", required_argument, NULL, 'r' },
		{ "iter", required_argument, NULL, 'i' },
		{ "continue", required_argument, NULL, 'C' },
		{ "t-exec", required_argument, NULL, 'E' },
		{ "blob-save-ns", required_argument, NULL, 'B' },
		{ "no-keep-old-mm", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "regions", required_argument, NULL, 'R' },
		{ "only-prestaged", no_argument, NULL, 'P' },
		{ "no-batch", no_argument, NULL, 'b' },
		{ "incoming", required_argument, NULL, 'I' },
		{ 0 }
	};
	int cont = -1, opt, err = 0;
	unsigned int u;

	while ((opt = cli_getopt(argc, argv, opts)) != -1) {
		switch (opt) {
		case 'd': c->dev_path = optarg; break;
		case 'c': c->csv = optarg; break;
		case 'l':
			c->label = optarg;
			/* A column of the CSV */
			if (!*optarg || strpbrk(optarg, ",\n")) {
				cli_error("--label '%s': empty or not one CSV field", optarg);
				err = -1;
			}
			break;
		case 'm': err = cli_u64("--mem", optarg, 1, 1 << 20, &c->mem_mib); break;
		case 'r': err = cli_uint("--runs", optarg, 1, 1000, &c->runs); break;
		case 'i': err = cli_uint("--iter", optarg, 0, UINT32_MAX, &c->iter); break;
		case 'C':
			err = cli_uint("--continue", optarg, UPDATE_RESET, PRESTAGED, &u);
			cont = u;
			break;
		case 'E': err = cli_u64("--t-exec", optarg, 0, UINT64_MAX, &c->t_exec); break;
		case 'B': err = cli_u64("--blob-save-ns", optarg, 0, UINT64_MAX, &c->blob_save_ns); break;
		case 'N': c->keep_old_mm = false; break;
		case 'h': usage(); exit(0);
		case 'V': cli_version(); exit(0);
		case 'R': err = cli_uint("--regions", optarg, 1, MAX_MAPS, &c->regions); break;
		case 'P': c->only_prestaged = true; break;
		case 'b': c->no_batch = true; break;
		case 'I':
			err = cli_uint("--incoming", optarg, 0, INT_MAX, &u);
			c->incoming = u;
			break;
		default: usage_error();
		}
		if (err)
			usage_error();
	}
	if (cli_no_operands(argc, argv, optind))
		usage_error();
	if (!c->dev_path || !c->csv || !c->mem_mib) {
		cli_error("--dev, --csv and --mem are needed");
		usage_error();
	}
	if ((c->regions > 1 && !c->only_prestaged) ||
	    (c->mem_mib << 20) % c->regions) {
		cli_error("--regions needs --only-prestaged and must divide --mem");
		usage_error();
	}
	return cont;
}

/* An update by exec brought this image here: finish it and measure it. */
static void finish_update(struct chain *c, struct vdpalu_dev *dev, int cont,
			  uint64_t t_main)
{
	struct run r = { .exec_ns = t_main - c->t_exec };
	static char app[VDPALU_APP_MAX];
	size_t app_len = 0;
	uint64_t t_restore, t_io, t_end;
	int blob = vdpalu_blob_fd_from_env();

	t_restore = vdpalu_now_ns();
	if (blob < 0 ||
	    vdpalu_restore(dev, blob, NULL, 0, app, &app_len))
		die("restore");
	t_io = vdpalu_now_ns();
	first_io(dev);
	t_end = vdpalu_now_ns();

	/* The restored timeline has the old image's steps too. */
	r.t0 = dev->tl.start_ns;
	dev->tl.ns[VDPALU_STEP_BLOB_SAVE] = c->blob_save_ns;
	steps_from_timeline(&r, dev->tl.ns, VDPALU_STEP_SUSPEND,
			    VDPALU_STEP_BLOB_LOAD);
	step_add(&r, "exec", r.exec_ns);
	step_add(&r, "startup", t_restore - t_main);
	steps_from_timeline(&r, dev->tl.ns, VDPALU_STEP_BLOB_LOAD,
			    VDPALU_STEP_MAX);
	step_add(&r, "first_io", t_end - t_io);
	csv_row(c, cont, &r, t_end);
	if (vdpalu_release_old_mm(getenv(VDPALU_OLD_MM_ENV), true))
		die("release the old address space");
	maps_from_regions(dev);
}

/* After @done, the next method of the alternating run, if any is left. */
static void run_next(struct chain *c, struct vdpalu_dev *dev, int done)
{
	switch (done) {
	case PRESTAGED:
		if (++c->iter == c->runs)
			break;
		touch_guest_memory();
		if (c->only_prestaged)
			prestage_next(c, dev);
		baseline(c, dev);
		exec_next(c, dev, UPDATE_RESET);
		break;
	case UPDATE_RESET:
		touch_guest_memory();
		exec_next(c, dev, UPDATE_RESUME);
		break;
	case UPDATE_RESUME:
		touch_guest_memory();
		prestage_next(c, dev);
		break;
	default:
		break;
	}
}

int main(int argc, char **argv)
{
	uint64_t t_main = vdpalu_now_ns();
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct chain c = {
		.label = "?", .runs = 5, .keep_old_mm = true, .regions = 1,
		.incoming = -1,
	};
	struct vdpalu_dev dev;
	int cont;

	cont = parse_args(argc, argv, &c);
	/* PA devices charge every pinned page against RLIMIT_MEMLOCK. */
	if (setrlimit(RLIMIT_MEMLOCK, &unlimited))
		die("RLIMIT_MEMLOCK");
	vdpalu_init(&dev);

	if (cont < 0) {
		/* First image: set the device and guest memory up once. */
		if (vdpalu_open(&dev, c.dev_path, 0) || vdpalu_negotiate(&dev, 0))
			die(c.dev_path);
		if (dev.device_id != VIRTIO_ID_BLOCK) {
			errno = ENODEV;
			die("need a block device");
		}
		guest_memory_setup(&c, &dev);
		vring_setup(&dev);
		if (vdpalu_start(&dev))
			die("DRIVER_OK");
		first_io(&dev);
		cont = PRESTAGED;	/* as if the last method just ran */
		c.iter = -1;
	} else if (c.incoming >= 0) {
		/* Started by a pre-staged handover. */
		prestaged_take_over(&c, &dev);
	} else {
		finish_update(&c, &dev, cont, t_main);
	}
	run_next(&c, &dev, cont);
	guest_memory_release(&dev);
	return 0;
}
