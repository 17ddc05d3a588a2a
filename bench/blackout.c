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
 *                  [REMAP], RESUME.
 *
 * Blackout runs from the moment the old image stops the device (close or
 * SUSPEND) to the completion of the first block request submitted after the
 * restart: that is when the guest sees service again.
 *
 * Each image has touched all of guest memory before it updates, as a
 * running guest has.  Exec updates keep the old address space in
 * libvdpalu's helper (vdpalu_keep_old_mm(), started before SUSPEND) so that
 * exec does not unmap guest memory inside the blackout; the new image
 * releases it after the first request and waits for the teardown, which
 * the next run must not share the machine with.  --no-keep-old-mm measures
 * a plain exec instead.
 *
 * One process chain does every run of one size: guest memory is set up once
 * and the methods alternate (baseline, reset, resume, baseline, ...), so a
 * noisy machine disturbs all three alike and their ratio holds. Each run
 * appends one CSV row to --csv. The iteration state crosses exec in argv;
 * the device state crosses it in libvdpalu's state blob.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "vdpalu.h"
#include "cli.h"

#define QSZ		16
#define DESC_OFF	0x0000
#define AVAIL_OFF	0x1000
#define USED_OFF	0x2000
#define HDR_OFF		0x3000
#define DATA_OFF	0x3200
#define STATUS_OFF	0x3400
#define DRV_OFF		0x3800
#define IO_TIMEOUT_NS	(30ULL * 1000000000ULL)

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

enum method { BASELINE, UPDATE_RESET, UPDATE_RESUME, NR_METHODS };

static const char *const method_name[NR_METHODS] = {
	[BASELINE] = "baseline",
	[UPDATE_RESET] = "update-reset",
	[UPDATE_RESUME] = "update-resume",
};

/* The guest driver's own indices live in guest memory, like a guest's. */
struct drv_state {
	uint16_t avail_idx;
	uint16_t used_seen;
	uint32_t requests;
};

struct chain {
	const char *dev_path;
	const char *csv;
	const char *label;	/* device mode, e.g. "pa" or "va" */
	uint64_t mem_mib;
	unsigned int runs;
	unsigned int iter;
	bool keep_old_mm;
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
	struct vring_desc *desc = gva(dev, DESC_OFF);
	struct vring_avail *avail = gva(dev, AVAIL_OFF);
	volatile struct vring_used *used = gva(dev, USED_OFF);
	struct virtio_blk_outhdr *hdr = gva(dev, HDR_OFF);
	volatile uint8_t *status = gva(dev, STATUS_OFF);
	struct drv_state *drv = gva(dev, DRV_OFF);
	uint64_t deadline;

	hdr->type = VIRTIO_BLK_T_OUT;
	hdr->ioprio = 0;
	hdr->sector = drv->requests % 64;
	memset(gva(dev, DATA_OFF), drv->requests & 0xff, 512);
	*status = 0xff;
	desc[0] = (struct vring_desc){ HDR_OFF, sizeof(*hdr), VRING_DESC_F_NEXT, 1 };
	desc[1] = (struct vring_desc){ DATA_OFF, 512, VRING_DESC_F_NEXT, 2 };
	desc[2] = (struct vring_desc){ STATUS_OFF, 1, VRING_DESC_F_WRITE, 0 };
	avail->ring[drv->avail_idx % QSZ] = 0;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	avail->idx = ++drv->avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vdpalu_kick(dev, 0))
		die("kick");
	deadline = vdpalu_now_ns() + IO_TIMEOUT_NS;
	while (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) == drv->used_seen) {
		if (vdpalu_now_ns() > deadline) {
			errno = ETIMEDOUT;
			die("first request after restart");
		}
	}
	drv->used_seen++;
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
static void touch_guest_memory(struct vdpalu_dev *dev)
{
	long page = sysconf(_SC_PAGESIZE);

	/*
	 * Rewrite one byte per page with its own value: a write fault maps
	 * the page writable, as a guest's store would.  (The test kernel has
	 * no madvise(MADV_POPULATE_WRITE): tinyconfig leaves it out.)
	 */
	for (unsigned int i = 0; i < dev->nr_regions; i++) {
		volatile uint8_t *p = dev->regions[i].addr;

		for (uint64_t off = 0; off < dev->regions[i].size; off += page)
			p[off] = p[off];
	}
}

/* Fresh vring and driver state: the device starts from index 0. */
static void vring_setup(struct vdpalu_dev *dev)
{
	memset(gva(dev, 0), 0, DRV_OFF + sizeof(struct drv_state));
	if (vdpalu_vq_setup(dev, 0, QSZ, DESC_OFF, AVAIL_OFF, USED_OFF))
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

/*
 * Everything but the save and the exec itself is done before SUSPEND: the
 * work of the benchmark must not show up in the blackout it measures.
 */
static void exec_next(struct chain *c, struct vdpalu_dev *dev, enum method m)
{
	char mem[32], runs[16], iter[16], method[4], texec[32];
	char blob_save[32], state[VDPALU_ENV_MAX], old_mm[VDPALU_ENV_MAX] = "";
	char *vars[3] = { state, NULL, NULL };
	int blob;

	snprintf(mem, sizeof(mem), "%" PRIu64, c->mem_mib);
	snprintf(runs, sizeof(runs), "%u", c->runs);
	snprintf(iter, sizeof(iter), "%u", c->iter);
	snprintf(method, sizeof(method), "%d", m);
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
	snprintf(blob_save, sizeof(blob_save), "%" PRIu64,
		 dev->tl.ns[VDPALU_STEP_BLOB_SAVE]);
	if (vdpalu_state_env(blob, state, sizeof(state)))
		die("state variable");
	/* The new image's environment, set just before exec: one thread. */
	extern char **environ;

	environ = vdpalu_exec_env(environ, vars);
	if (!environ)
		die("environment");
	/* Last: the exec clock starts here. */
	snprintf(texec, sizeof(texec), "%" PRIu64, vdpalu_now_ns());
	execl("/proc/self/exe", "vdpa-lu-blackout", "--dev", c->dev_path,
	      "--csv", c->csv, "--label", c->label, "--mem", mem,
	      "--runs", runs, "--iter", iter, "--continue", method,
	      "--blob-save-ns", blob_save, "--t-exec", texec,
	      c->keep_old_mm ? NULL : "--no-keep-old-mm",
	      (char *)NULL);
	die("exec");
}

static void usage(void)
{
	puts("usage: vdpa-lu-blackout --dev /dev/vhost-vdpa-N --mem MIB --runs N\n"
	     "                        --csv FILE [--label pa|va] [--no-keep-old-mm]\n"
	     "       vdpa-lu-blackout --help | --version\n"
	     "Exit status: 0 measured, 1 failed, 2 command-line error.");
}

static void usage_error(void)
{
	fprintf(stderr, "Try 'vdpa-lu-blackout --help'.\n");
	exit(CLI_USAGE);
}

int main(int argc, char **argv)
{
	uint64_t t_main = vdpalu_now_ns();
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct chain c = { .label = "?", .runs = 5, .keep_old_mm = true };
	struct vdpalu_dev dev;
	int cont = -1, opt;
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
		{ 0 }
	};
	unsigned int u;
	int err = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': c.dev_path = optarg; break;
		case 'c': c.csv = optarg; break;
		case 'l': c.label = optarg; break;
		case 'm': err = cli_u64("--mem", optarg, 1, 1 << 20, &c.mem_mib); break;
		case 'r': err = cli_uint("--runs", optarg, 1, 1000, &c.runs); break;
		case 'i': err = cli_uint("--iter", optarg, 0, UINT32_MAX, &c.iter); break;
		case 'C':
			err = cli_uint("--continue", optarg, UPDATE_RESET, UPDATE_RESUME, &u);
			cont = u;
			break;
		case 'E': err = cli_u64("--t-exec", optarg, 0, UINT64_MAX, &c.t_exec); break;
		case 'B': err = cli_u64("--blob-save-ns", optarg, 0, UINT64_MAX, &c.blob_save_ns); break;
		case 'N': c.keep_old_mm = false; break;
		case 'h': usage(); return 0;
		case 'V': cli_version(); return 0;
		default: usage_error();
		}
		if (err)
			usage_error();
	}
	if (cli_no_operands(argc, argv, optind))
		usage_error();
	if (!c.dev_path || !c.csv || !c.mem_mib) {
		cli_error("--dev, --csv and --mem are needed");
		usage_error();
	}
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
		if (vdpalu_mem_alloc(&dev, 0, c.mem_mib << 20, NULL))
			die("guest memory");
		vring_setup(&dev);
		if (vdpalu_start(&dev))
			die("DRIVER_OK");
		first_io(&dev);
		cont = UPDATE_RESUME;	/* as if a resume run just ended */
		c.iter = -1;
	} else {
		/* An update brought us here: finish and measure it. */
		struct run r = { .exec_ns = t_main - c.t_exec };
		static char app[VDPALU_APP_MAX];
		size_t app_len = 0;
		uint64_t t_restore, t_io, t_end;
		int blob = vdpalu_blob_fd_from_env();

		t_restore = vdpalu_now_ns();
		if (blob < 0 ||
		    vdpalu_restore(&dev, blob, NULL, 0, app, &app_len))
			die("restore");
		t_io = vdpalu_now_ns();
		first_io(&dev);
		t_end = vdpalu_now_ns();

		/* The restored timeline has the old image's steps too. */
		r.t0 = dev.tl.start_ns;
		dev.tl.ns[VDPALU_STEP_BLOB_SAVE] = c.blob_save_ns;
		steps_from_timeline(&r, dev.tl.ns, VDPALU_STEP_SUSPEND,
				    VDPALU_STEP_BLOB_LOAD);
		step_add(&r, "exec", r.exec_ns);
		step_add(&r, "startup", t_restore - t_main);
		steps_from_timeline(&r, dev.tl.ns, VDPALU_STEP_BLOB_LOAD,
				    VDPALU_STEP_MAX);
		step_add(&r, "first_io", t_end - t_io);
		csv_row(&c, cont, &r, t_end);
		if (vdpalu_release_old_mm(getenv(VDPALU_OLD_MM_ENV), true))
			die("release the old address space");
	}

	switch (cont) {
	case UPDATE_RESUME:
		if (++c.iter == c.runs)
			break;
		touch_guest_memory(&dev);
		baseline(&c, &dev);
		exec_next(&c, &dev, UPDATE_RESET);
		break;
	case UPDATE_RESET:
		touch_guest_memory(&dev);
		exec_next(&c, &dev, UPDATE_RESUME);
		break;
	default:
		break;
	}
	vdpalu_close(&dev);
	return 0;
}
