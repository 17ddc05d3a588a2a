// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vdpa-lu-vmm: drive vdpa_sim net or blk from userspace as the guest
 * driver would, and live-update while requests are in flight.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/virtio_ids.h>

#include "cli.h"
#include "vmm.h"

static void usage(void)
{
	puts("usage: vdpa-lu-vmm --dev /dev/vhost-vdpa-N [options]\n"
	     "       vdpa-lu-vmm --help | --version\n"
	     "       vdpa-lu-vmm --create net|blk|vduse:NAME [--mac MAC] | --destroy NAME\n"
	     "       vdpa-lu-vmm --incoming SOCKET\n"
	     "       vdpa-lu-vmm --caps /dev/vhost-vdpa-N (backend features offered)\n"
	     "  --update-after N   completions per image before an update (1000)\n"
	     "  --updates K        updates to do (0)\n"
	     "  --fork             update by fork: the child takes over\n"
	     "  --transfer SOCKET  update by handing over to 'vdpa-lu-vmm --incoming\n"
	     "                     SOCKET.<i>' for update i (SCM_RIGHTS); else exec\n"
	     "  --exec BINARY      image to exec for updates (default: this one)\n"
	     "  --flow auto|reset|resume  (auto: resume when the device offers it)\n"
	     "  --window W         requests in flight (32)\n"
	     "  --mem MB, --regions R   guest memory and memfd regions (8, 4);\n"
	     "                     PA vdpa_sim maps at most max_iotlb_entries (2048)\n"
	     "                     pieces: beyond 8 MiB boot with vdpa_sim.max_iotlb_entries=0\n"
	     "  --no-new-owner     do not consent to ownership transfer\n"
	     "  --memlock KB       RLIMIT_MEMLOCK (default: unlimited if allowed)\n"
	     "  --mac MAC          --create net: the device's MAC (02:00:00:00:00:10)\n"
	     "  --quiet\n"
	     "Exit status: 0 done, 1 failed, 2 command-line error.");
}

static int mem_layout(struct vmm *m)
{
	uint64_t rsz = (uint64_t)m->cfg.mem_mb << 20;
	unsigned int i;

	rsz /= m->cfg.regions;
	if (rsz < (2 << 20) || rsz & 0xfff) {
		vmm_err("regions of %llu bytes: need at least 2 MiB, page aligned",
			(unsigned long long)rsz);
		return -1;
	}
	for (i = 0; i < m->cfg.regions; i++)
		if (vdpalu_mem_alloc(&m->dev, IOVA_BASE + i * rsz, rsz, NULL)) {
			vmm_err("guest memory: %s", vdpalu_errmsg());
			return -1;
		}
	return 0;
}

uint64_t ring_iova(unsigned int i)
{
	return IOVA_BASE + G_RING_OFF + i * G_RING_STRIDE;
}

/* Point the driver's vq @i at its rings; @fresh: a new guest, zero them. */
void vmm_vq_attach(struct vmm *m, unsigned int i, bool fresh)
{
	dvq_attach(&m->vq[i], vdpalu_iova_to_va(&m->dev, ring_iova(i)), QSZ,
		   &m->g->vq[i].ring, fresh);
}

/*
 * Find the guest driver in guest memory: state and rings in region 0,
 * buffers in the last region so the device uses more than one.
 */
int find_guest_driver(struct vmm *m, bool fresh)
{
	const struct vdpalu_region *last = &m->dev.regions[m->dev.nr_regions - 1];

	m->g = vdpalu_iova_to_va(&m->dev, IOVA_BASE + G_STATE_OFF);
	m->buf_iova = m->dev.nr_regions > 1 ? last->iova : IOVA_BASE + 0x100000;
	m->buf = vdpalu_iova_to_va(&m->dev, m->buf_iova);
	if (!m->g || !m->buf) {
		vmm_err("guest memory layout missing");
		return -1;
	}
	if (fresh) {
		memset(m->g, 0, sizeof(*m->g));
		m->g->magic = GSTATE_MAGIC;
		m->g->device_id = m->dev.device_id;
		m->g->next_seq = 1;
	} else if (m->g->magic != GSTATE_MAGIC ||
		   m->g->device_id != m->dev.device_id) {
		vmm_err("guest memory does not hold this device's driver");
		return -1;
	}
	if (m->dev.device_id == VIRTIO_ID_NET)
		return net_setup(m, fresh);
	if (m->dev.device_id == VIRTIO_ID_BLOCK)
		return blk_setup(m, fresh);
	vmm_err("device id %u: only net and block", m->dev.device_id);
	return -1;
}

static int fresh_start(struct vmm *m, uint64_t backend_mask_out)
{
	unsigned int i;

	if (vdpalu_open(&m->dev, m->cfg.dev_path, backend_mask_out) ||
	    vdpalu_negotiate(&m->dev, 0)) {
		vmm_err("%s: %s", m->cfg.dev_path, vdpalu_errmsg());
		return -1;
	}
	if (mem_layout(m) || find_guest_driver(m, true))
		return -1;
	for (i = 0; i < m->nvq; i++)
		if (vdpalu_vq_setup(&m->dev, i, QSZ, ring_iova(i) + VQ_DESC_OFF,
				    ring_iova(i) + VQ_AVAIL_OFF,
				    ring_iova(i) + VQ_USED_OFF)) {
			vmm_err("vq %u: %s", i, vdpalu_errmsg());
			return -1;
		}
	if (vdpalu_start(&m->dev)) {
		vmm_err("DRIVER_OK: %s", vdpalu_errmsg());
		return -1;
	}
	m->cfg.vmpin_kb = vdpalu_vmpin_kb();
	vmm_log(m, "%s: %s device, features %#llx, backend %#llx of %#llx, %u MiB in %u memfd regions, VmPin %lld kB",
		m->cfg.dev_path, m->dev.device_id == VIRTIO_ID_NET ? "net" : "blk",
		(unsigned long long)m->dev.features,
		(unsigned long long)m->dev.backend_features,
		(unsigned long long)m->dev.backend_offered, m->cfg.mem_mb,
		m->cfg.regions, (long long)m->cfg.vmpin_kb);
	return 0;
}

static int submit(struct vmm *m, unsigned int budget)
{
	return m->dev.device_id == VIRTIO_ID_NET ? net_submit(m, budget) :
						   blk_submit(m, budget);
}

static int reap(struct vmm *m)
{
	return m->dev.device_id == VIRTIO_ID_NET ? net_reap(m) : blk_reap(m);
}

static void wait_call(struct vmm *m, int ms)
{
	struct pollfd p[2];
	unsigned int i;
	uint64_t v;

	for (i = 0; i < m->nvq; i++) {
		p[i].fd = m->dev.vqs[i].call_fd;
		p[i].events = POLLIN;
	}
	if (poll(p, m->nvq, ms) > 0)
		for (i = 0; i < m->nvq; i++)
			if (p[i].revents & POLLIN)
				(void)!read(p[i].fd, &v, sizeof(v));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int report(struct vmm *m, bool stalled)
{
	struct gstate *g = m->g;
	uint64_t lost = g->sent - g->completed, b[MAX_UPDATES];
	unsigned int n = m->cfg.done < MAX_UPDATES ? m->cfg.done : MAX_UPDATES;
	long pin = vdpalu_vmpin_kb();
	bool pass;

	memcpy(b, m->cfg.blackout_us, sizeof(b));
	qsort(b, n, sizeof(b[0]), cmp_u64);
	pass = !lost && !g->duplicated && !g->bad && !stalled &&
	       !m->update_failed &&
	       m->cfg.done == m->cfg.updates && pin == m->cfg.vmpin_kb;
	printf("vdpa-lu-vmm[%d] v%d: totals: %s sent=%llu completed=%llu lost=%llu duplicated=%llu bad=%llu updates=%u/%u VmPin before=%lld kB after=%ld kB",
	       getpid(), VMM_IMAGE_VERSION,
	       g->device_id == VIRTIO_ID_NET ? "net" : "blk",
	       (unsigned long long)g->sent, (unsigned long long)g->completed,
	       (unsigned long long)lost, (unsigned long long)g->duplicated,
	       (unsigned long long)g->bad, m->cfg.done, m->cfg.updates,
	       (long long)m->cfg.vmpin_kb, pin);
	if (n)
		printf(" blackout min/median/max=%.3f/%.3f/%.3f ms",
		       b[0] / 1e3, b[n / 2] / 1e3, b[n - 1] / 1e3);
	printf("\nvdpa-lu-vmm[%d] v%d: verdict: %s\n", getpid(),
	       VMM_IMAGE_VERSION, pass ? "PASS" : "FAIL");
	fflush(stdout);
	return pass ? 0 : 1;
}

/*
 * Keep the guest's requests flowing and update this VMM every
 * --update-after completions; the exit status once every update is done.
 */
static int drive_guest(struct vmm *m)
{
	uint64_t target = (m->cfg.updates + 1) * m->cfg.update_after;
	uint64_t last = vdpalu_now_ns(), first = 0, now;
	unsigned int i;

	/* Kicks sent while the device was stopped may be gone: kick again. */
	for (i = 0; i < m->nvq; i++)
		vdpalu_kick(&m->dev, i);
	for (;;) {
		int n = reap(m);

		now = vdpalu_now_ns();
		if (n > 0)
			last = now;
		if (m->restored && !first && m->g->completed > m->image_base) {
			first = now;
			print_timeline(m, first);
		}
		if (m->g->completed - m->image_base >= m->cfg.update_after &&
		    m->cfg.done < m->cfg.updates) {
			/* Update with requests in flight: they must survive. */
			submit(m, m->cfg.window);
			if (handover(m) == 0) {
				/* A forked child: carry on as the new image. */
				first = 0;
				last = vdpalu_now_ns();
				for (i = 0; i < m->nvq; i++)
					vdpalu_kick(&m->dev, i);
				continue;
			}
			/* Nothing changed: run on and drain, but fail. */
			m->update_failed = true;
			m->cfg.updates = m->cfg.done;
		}
		/* Only the last image stops at the target, and drains. */
		if (m->cfg.done < m->cfg.updates)
			submit(m, m->cfg.window);
		else if (m->g->sent < target)
			submit(m, target - m->g->sent < m->cfg.window ?
				  target - m->g->sent : m->cfg.window);
		else if (m->g->completed == m->g->sent)
			break;
		if (now - last > 20000000000ULL) {
			vmm_err("no completion for 20 s: %llu of %llu requests outstanding",
				(unsigned long long)(m->g->sent - m->g->completed),
				(unsigned long long)m->g->sent);
			return report(m, true);
		}
		wait_call(m, 100);
	}
	return report(m, false);
}

/* --fork: stay as the parent of every image so the caller sees the end. */
static int fork_reaper(void)
{
	int status, ret = 0;
	pid_t pid;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	fflush(NULL);
	pid = fork();
	if (pid <= 0)
		return pid;
	while ((pid = wait(&status)) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			ret = 1;
	exit(ret);
}

/*
 * One-shot commands: create, destroy, caps.  @arg: TYPE:NAME, checked;
 * @mac: NULL or checked.
 */
static int cmd_create(char *arg, const char *mac)
{
	char path[64], *name = strchr(arg, ':');

	*name++ = '\0';
	if (dev_create(arg, name, mac, path, sizeof(path)))
		return 1;
	puts(path);
	return 0;
}

/* The backend features a device offers, for scripts. */
static int cmd_caps(const char *path)
{
	struct vdpalu_dev dev;

	if (vdpalu_open(&dev, path, ~0ULL)) {
		vmm_err("%s: %s", path, vdpalu_errmsg());
		return 1;
	}
	printf("%#llx\n", (unsigned long long)dev.backend_offered);
	vdpalu_close(&dev);
	return 0;
}

enum command { CMD_RUN, CMD_CREATE, CMD_DESTROY, CMD_CAPS };

struct args {
	enum command cmd;
	char *cmd_arg;
	const char *cmd_opt;	/* the option that named it */
	const char *incoming;
	uint64_t mask_out;	/* backend features not to ack */
	bool memlock_set;	/* --memlock given: failing to set it is an error */
	struct rlimit memlock;
	int blob;		/* --restore-fd */
	const char *mac;	/* --create net's MAC, or NULL */
};

static const struct option options[] = {
	{ "dev",		required_argument,	NULL, 'd' },
	{ "create",		required_argument,	NULL, 'c' },
	{ "destroy",		required_argument,	NULL, 'D' },
	{ "caps",		required_argument,	NULL, 'C' },
	{ "incoming",		required_argument,	NULL, 'i' },
	{ "update-after",	required_argument,	NULL, 'n' },
	{ "updates",		required_argument,	NULL, 'k' },
	{ "fork",		no_argument,		NULL, 'f' },
	{ "transfer",		required_argument,	NULL, 't' },
	{ "exec",		required_argument,	NULL, 'e' },
	{ "flow",		required_argument,	NULL, 'F' },
	{ "window",		required_argument,	NULL, 'w' },
	{ "mem",		required_argument,	NULL, 'm' },
	{ "regions",		required_argument,	NULL, 'r' },
	{ "no-new-owner",	no_argument,		NULL, 'N' },
	{ "memlock",		required_argument,	NULL, 'l' },
	{ "restore-fd",		required_argument,	NULL, 'R' },
	{ "mac",		required_argument,	NULL, 'M' },
	{ "quiet",		no_argument,		NULL, 'q' },
	{ "help",		no_argument,		NULL, 'h' },
	{ "version",		no_argument,		NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int set_command(struct args *a, enum command cmd, const char *opt,
		       char *arg)
{
	static const char *const create_types[] = { "net", "blk", "vduse", NULL };
	char *colon = strchr(arg, ':');

	if (a->cmd != CMD_RUN) {
		cli_error("%s and %s: one command at a time", a->cmd_opt, opt);
		return -1;
	}
	if (cmd == CMD_CREATE) {
		if (!colon || !colon[1]) {
			cli_error("%s '%s': not TYPE:NAME", opt, arg);
			return -1;
		}
		*colon = '\0';
		if (cli_choice(opt, arg, create_types) < 0)
			return -1;
		*colon = ':';
	}
	a->cmd = cmd;
	a->cmd_arg = arg;
	a->cmd_opt = opt;
	return 0;
}

/* One option into @cfg or @a; -1 after printing what is wrong with it. */
static int set_option(struct vmm_cfg *cfg, struct args *a, int c)
{
	static const char *const flows[] = { "auto", "reset", "resume", NULL };
	static const enum vdpalu_flow flow_of[] = {
		VDPALU_FLOW_AUTO, VDPALU_FLOW_RESET, VDPALU_FLOW_RESUME,
	};
	uint64_t v;
	int i, err = 0;

	switch (c) {
	case 'd':
		snprintf(cfg->dev_path, sizeof(cfg->dev_path), "%s", optarg);
		break;
	case 'c':
		return set_command(a, CMD_CREATE, "--create", optarg);
	case 'D':
		return set_command(a, CMD_DESTROY, "--destroy", optarg);
	case 'C':
		return set_command(a, CMD_CAPS, "--caps", optarg);
	case 'i':
		a->incoming = optarg;
		break;
	case 'n':
		err = cli_u64("--update-after", optarg, 1, UINT64_MAX, &v);
		cfg->update_after = v;
		break;
	case 'k':
		return cli_uint("--updates", optarg, 0, MAX_UPDATES, &cfg->updates);
	case 'f':
		cfg->mode = UPD_FORK;
		break;
	case 't':
		cfg->mode = UPD_TRANSFER;
		snprintf(cfg->transfer, sizeof(cfg->transfer), "%s", optarg);
		break;
	case 'e':
		snprintf(cfg->exec_bin, sizeof(cfg->exec_bin), "%s", optarg);
		break;
	case 'F':
		i = cli_choice("--flow", optarg, flows);
		if (i < 0)
			return -1;
		cfg->flow = flow_of[i];
		break;
	case 'w':
		return cli_uint("--window", optarg, 1, BLK_SLOTS, &cfg->window);
	case 'm':
		return cli_uint("--mem", optarg, 1, 1 << 20, &cfg->mem_mb);
	case 'r':
		return cli_uint("--regions", optarg, 1, VDPALU_MAX_REGIONS,
				&cfg->regions);
	case 'N':
		a->mask_out |= 1ULL << VHOST_BACKEND_F_NEW_OWNER;
		break;
	case 'l':
		err = cli_u64("--memlock", optarg, 0, UINT64_MAX >> 10, &v);
		a->memlock.rlim_cur = a->memlock.rlim_max = v << 10;
		a->memlock_set = true;
		break;
	case 'R':
		err = cli_u64("--restore-fd", optarg, 0, INT32_MAX, &v);
		a->blob = v;
		break;
	case 'M':
		err = cli_mac("--mac", optarg);
		a->mac = optarg;
		break;
	case 'q':
		cfg->quiet = 1;
		break;
	default:	/* cli_getopt() said what is wrong */
		return -1;
	}
	return err;
}

/* What no single option can tell: -1 after printing what is wrong. */
static int check_args(const struct vmm_cfg *cfg, const struct args *a,
		      int argc, char **argv)
{
	if (cli_no_operands(argc, argv, optind))
		return -1;
	if (a->mac && (a->cmd != CMD_CREATE || strncmp(a->cmd_arg, "net:", 4))) {
		cli_error("--mac: only with --create net:NAME");
		return -1;
	}
	if (a->cmd == CMD_RUN && !a->incoming && a->blob < 0 &&
	    !getenv(VDPALU_STATE_ENV) && !cfg->dev_path[0]) {
		cli_error("nothing to do: give --dev, --incoming or a command");
		return -1;
	}
	return 0;
}

/*
 * Record the options in @cfg and @a; act on none of them.  Returns -1 to
 * go on, else the exit status (--help, --version, a command-line error).
 */
static int parse_args(struct vmm_cfg *cfg, struct args *a, int argc,
		      char **argv)
{
	int c;

	while ((c = cli_getopt(argc, argv, options)) != -1) {
		if (c == 'h') {
			usage();
			return 0;
		}
		if (c == 'V') {
			cli_version();
			return 0;
		}
		if (set_option(cfg, a, c))
			goto usage_error;
	}
	if (check_args(cfg, a, argc, argv))
		goto usage_error;
	return -1;

usage_error:
	fprintf(stderr, "Try 'vdpa-lu-vmm --help'.\n");
	return CLI_USAGE;
}

int main(int argc, char **argv)
{
	static struct vmm vm;
	struct vmm *m = &vm;
	struct args a = {
		.memlock = { RLIM_INFINITY, RLIM_INFINITY },
		.blob = -1,
	};
	int ret;

	m->cfg.magic = GSTATE_MAGIC;
	m->cfg.image_version = VMM_IMAGE_VERSION;
	m->cfg.mode = UPD_EXEC;
	m->cfg.update_after = 1000;
	m->cfg.window = 32;
	m->cfg.mem_mb = 8;
	m->cfg.regions = 4;
	vdpalu_init(&m->dev);
	ret = parse_args(&m->cfg, &a, argc, argv);
	if (ret >= 0)
		return ret;
	switch (a.cmd) {
	case CMD_CREATE:
		return cmd_create(a.cmd_arg, a.mac);
	case CMD_DESTROY:
		return dev_destroy(a.cmd_arg) ? 1 : 0;
	case CMD_CAPS:
		return cmd_caps(a.cmd_arg);
	case CMD_RUN:
		break;
	}
	/*
	 * PA devices charge pinned guest memory to RLIMIT_MEMLOCK: raise it
	 * where allowed; only a limit asked for must be had.
	 */
	if (setrlimit(RLIMIT_MEMLOCK, &a.memlock) && a.memlock_set) {
		vmm_err("--memlock: setrlimit(RLIMIT_MEMLOCK): %s", strerror(errno));
		return 1;
	}

	if (a.incoming) {
		if (take_over_incoming(m, a.incoming))
			return 1;
	} else if (a.blob >= 0 || getenv(VDPALU_STATE_ENV)) {
		/* An exec'd image: the blob fd is in argv and the environment. */
		if (a.blob < 0)
			a.blob = vdpalu_blob_fd_from_env();
		if (a.blob < 0 || take_over(m, a.blob, NULL, 0)) {
			vmm_err("exec'd image could not take over: %s",
				vdpalu_errmsg());
			return 1;
		}
		close(a.blob);
		/* The device runs: the old image's address space may go now. */
		if (vdpalu_release_old_mm(getenv(VDPALU_OLD_MM_ENV), false))
			vmm_err("%s", vdpalu_errmsg());
	} else {
		if (m->cfg.mode == UPD_FORK && m->cfg.updates && fork_reaper() < 0)
			return 1;
		if (fresh_start(m, a.mask_out))
			return 1;
	}
	ret = drive_guest(m);
	vdpalu_close(&m->dev);
	return ret;
}
