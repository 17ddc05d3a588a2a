// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vdpa-lu-vduse-blk: a VDUSE virtio-blk device backed by RAM, so that
 * vdpa-lu-vmm can drive a VDUSE device through vhost-vdpa as it drives
 * vdpa_sim.  It stays up while VMMs come and go: VDUSE maps guest memory
 * by file + offset (VDUSE_IOTLB_GET_FD), which a new VMM image keeps.
 *
 * usage: vdpa-lu-vduse-blk NAME   (then: vdpa-lu-vmm --create vduse:NAME)
 * Runs until killed; destroys the device on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/vduse.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "cli.h"

#define QMAX		256
#define DISK_SECTORS	(32 << 11)	/* 32 MiB */
#define MAX_MAPS	64

struct map {
	uint64_t start, last;	/* IOVA */
	uint8_t *va;
	size_t len;
};

static struct {
	int fd;			/* /dev/vduse/NAME */
	int kick;
	bool running;
	bool suspended;		/* VDUSE_SUSPEND answered, no RESUME yet */
	uint32_t num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint64_t desc_iova, avail_iova, used_iova;
	uint16_t last_avail;
	struct map maps[MAX_MAPS];
	unsigned int nr_maps;
	uint8_t *disk;
	uint64_t served;
} d = { .fd = -1, .kick = -1 };

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* IOVA -> our address, mapping the backing file the first time. */
static void *iova_va(uint64_t iova, size_t len)
{
	struct vduse_iotlb_entry e = { .start = iova, .last = iova + len - 1 };
	unsigned int i;
	void *va;
	int fd;

	for (i = 0; i < d.nr_maps; i++)
		if (iova >= d.maps[i].start && iova + len - 1 <= d.maps[i].last)
			return d.maps[i].va + (iova - d.maps[i].start);
	if (d.nr_maps == MAX_MAPS)
		return NULL;
	fd = ioctl(d.fd, VDUSE_IOTLB_GET_FD, &e);
	if (fd < 0)
		return NULL;
	va = mmap(NULL, e.last - e.start + 1, PROT_READ | PROT_WRITE,
		  MAP_SHARED, fd, e.offset);
	close(fd);
	if (va == MAP_FAILED)
		return NULL;
	if (iova + len - 1 > e.last) {
		munmap(va, e.last - e.start + 1);
		return NULL;
	}
	d.maps[d.nr_maps++] = (struct map){ e.start, e.last, va,
					    e.last - e.start + 1 };
	return (uint8_t *)va + (iova - e.start);
}

static void unmap_range(uint64_t start, uint64_t last)
{
	unsigned int i = 0;

	while (i < d.nr_maps) {
		struct map *m = &d.maps[i];

		if (m->start <= last && start <= m->last) {
			munmap(m->va, m->len);
			*m = d.maps[--d.nr_maps];
			continue;
		}
		i++;
	}
	d.desc = NULL;		/* ring pointers may have gone with it */
}

static bool rings(void)
{
	if (!d.desc) {
		d.desc = iova_va(d.desc_iova, d.num * sizeof(*d.desc));
		d.avail = iova_va(d.avail_iova, 4 + 2 * d.num);
		d.used = iova_va(d.used_iova, 4 + 8 * d.num);
	}
	return d.desc && d.avail && d.used;
}

/* Serve one request chain: header, data..., status. */
static uint32_t serve(uint16_t head)
{
	struct virtio_blk_outhdr *h = NULL;
	uint8_t *status = NULL;
	uint64_t sector = 0;
	uint32_t type = 0, written = 0;
	bool ioerr = false;
	uint16_t i = head;
	int n;

	for (n = 0; n < QMAX; n++) {
		struct vring_desc *desc = &d.desc[i % d.num];
		uint8_t *p = iova_va(desc->addr, desc->len);
		bool last = !(desc->flags & VRING_DESC_F_NEXT);

		if (!p)
			return 0;
		if (!h) {
			h = (void *)p;
			type = h->type;
			sector = h->sector;
		} else if (last) {
			status = p;
		} else if (sector * 512 + desc->len > (uint64_t)DISK_SECTORS * 512) {
			ioerr = true;
		} else {
			if (type == VIRTIO_BLK_T_OUT) {
				memcpy(d.disk + sector * 512, p, desc->len);
			} else if (type == VIRTIO_BLK_T_IN) {
				memcpy(p, d.disk + sector * 512, desc->len);
				written += desc->len;
			}
			sector += desc->len / 512;
		}
		if (last)
			break;
		i = desc->next;
	}
	if (status) {
		if (ioerr)
			*status = VIRTIO_BLK_S_IOERR;
		else if (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_OUT ||
			 type == VIRTIO_BLK_T_FLUSH)
			*status = VIRTIO_BLK_S_OK;
		else
			*status = VIRTIO_BLK_S_UNSUPP;
		written++;
	}
	return written;
}

static void process(void)
{
	uint16_t avail, n = 0;
	uint32_t q = 0;

	if (!d.running || d.suspended || !rings())
		return;
	avail = __atomic_load_n(&d.avail->idx, __ATOMIC_ACQUIRE);
	while (d.last_avail != avail) {
		uint16_t head = d.avail->ring[d.last_avail % d.num];
		uint16_t u = d.used->idx;

		d.used->ring[u % d.num].id = head;
		d.used->ring[u % d.num].len = serve(head);
		__atomic_store_n(&d.used->idx, u + 1, __ATOMIC_RELEASE);
		d.last_avail++;
		d.served++;
		n++;
	}
	if (n)
		ioctl(d.fd, VDUSE_VQ_INJECT_IRQ, &q);
}

static void start(void)
{
	struct vduse_vq_info info = { .index = 0 };
	struct vduse_vq_eventfd kick = { .index = 0 };

	if (ioctl(d.fd, VDUSE_VQ_GET_INFO, &info) || !info.ready)
		return;
	d.num = info.num;
	d.desc_iova = info.desc_addr;
	d.avail_iova = info.driver_addr;
	d.used_iova = info.device_addr;
	/* Where the driver (or a reset-flow restore) says to start. */
	d.last_avail = info.split.avail_index;
	d.desc = NULL;
	if (d.kick < 0)
		d.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	kick.fd = d.kick;
	ioctl(d.fd, VDUSE_VQ_SETUP_KICKFD, &kick);
	d.running = true;
}

static void handle_request(void)
{
	struct vduse_dev_request req;
	struct vduse_dev_response resp;

	if (read(d.fd, &req, sizeof(req)) != sizeof(req))
		return;
	memset(&resp, 0, sizeof(resp));
	resp.request_id = req.request_id;
	resp.result = VDUSE_REQ_RESULT_OK;
	switch (req.type) {
	case VDUSE_GET_VQ_STATE:
		resp.vq_state.index = req.vq_state.index;
		resp.vq_state.split.avail_index = d.last_avail;
		break;
	case VDUSE_SET_STATUS:
		if (!req.s.status)
			d.suspended = false;
		if (req.s.status & VIRTIO_CONFIG_S_DRIVER_OK) {
			if (!d.running)
				start();
		} else {
			d.running = false;
		}
		break;
	case VDUSE_UPDATE_IOTLB:
		unmap_range(req.iova.start, req.iova.last);
		break;
#ifdef VDUSE_F_SUSPEND
	case VDUSE_SUSPEND:
		/* Finish what the driver made available, then keep off. */
		process();
		d.suspended = true;
		break;
	case VDUSE_RESUME:
		d.suspended = false;
		break;
#endif
	default:
		resp.result = VDUSE_REQ_RESULT_FAILED;
	}
	if (write(d.fd, &resp, sizeof(resp)) != sizeof(resp))
		perror("vduse response");
	process();
}

/*
 * Suspend and resume let the VMM update itself with the device running;
 * a kernel that lacks VDUSE features runs the device without them.
 */
static int set_vduse_features(int ctl)
{
#ifdef VDUSE_F_SUSPEND
	uint64_t want = (1ULL << VDUSE_F_SUSPEND) | (1ULL << VDUSE_F_RESUME);
	uint64_t offered;

	if (ioctl(ctl, VDUSE_GET_FEATURES, &offered))
		return errno == EINVAL ? 0 : -1;
	if ((offered & want) != want)
		return 0;
	return ioctl(ctl, VDUSE_SET_FEATURES, &want);
#else
	return 0;
#endif
}

static void usage(void)
{
	puts("usage: vdpa-lu-vduse-blk NAME   (then: vdpa-lu-vmm --create vduse:NAME)\n"
	     "       vdpa-lu-vduse-blk --help | --version\n"
	     "A VDUSE virtio-blk device NAME on a 32 MiB RAM disk; runs until\n"
	     "SIGTERM or SIGINT, then destroys the device.\n"
	     "Exit status: 0 stopped, 1 failed, 2 command-line error.");
}

/* The device name, or NULL after --help/--version (*status 0) or an error. */
static const char *parse_args(int argc, char **argv, int *status)
{
	static const struct option options[] = {
		{ "help",	no_argument,	NULL, 'h' },
		{ "version",	no_argument,	NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*status = 0;
	while ((c = cli_getopt(argc, argv, options)) != -1) {
		switch (c) {
		case 'h':
			usage();
			return NULL;
		case 'V':
			cli_version();
			return NULL;
		default:
			goto bad;
		}
	}
	if (optind == argc) {
		cli_error("no device NAME given");
		goto bad;
	}
	if (cli_no_operands(argc, argv, optind + 1))
		goto bad;
	if (!argv[optind][0] || strlen(argv[optind]) >= VDUSE_NAME_MAX ||
	    strchr(argv[optind], '/')) {
		cli_error("NAME '%s': 1 to %d characters, no '/'", argv[optind],
			  VDUSE_NAME_MAX - 1);
		goto bad;
	}
	return argv[optind];
bad:
	fprintf(stderr, "Try 'vdpa-lu-vduse-blk --help'.\n");
	*status = CLI_USAGE;
	return NULL;
}

int main(int argc, char **argv)
{
	size_t csz = sizeof(struct virtio_blk_config);
	struct vduse_dev_config *c = calloc(1, sizeof(*c) + csz);
	struct virtio_blk_config *bc = (void *)c->config;
	struct vduse_vq_config vq = { .index = 0, .max_size = QMAX };
	const char *name;
	uint64_t v;
	char path[300];
	int ctl, status;

	name = parse_args(argc, argv, &status);
	if (!name)
		return status;
	d.disk = calloc(DISK_SECTORS, 512);
	ctl = open("/dev/vduse/control", O_RDWR | O_CLOEXEC);
	if (ctl < 0 || set_vduse_features(ctl)) {
		perror("/dev/vduse/control");
		return 1;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->device_id = VIRTIO_ID_BLOCK;
	c->features = (1ULL << VIRTIO_F_VERSION_1) |
		      (1ULL << VIRTIO_F_ACCESS_PLATFORM) |
		      (1ULL << VIRTIO_BLK_F_FLUSH);
	c->vq_num = 1;
	c->vq_align = 4096;
	c->config_size = csz;
	bc->capacity = DISK_SECTORS;
	bc->num_queues = 1;
	if (ioctl(ctl, VDUSE_CREATE_DEV, c)) {
		perror("VDUSE_CREATE_DEV");
		return 1;
	}
	snprintf(path, sizeof(path), "/dev/vduse/%s", name);
	d.fd = open(path, O_RDWR | O_CLOEXEC);
	if (d.fd < 0 || ioctl(d.fd, VDUSE_VQ_SETUP, &vq)) {
		perror(path);
		ioctl(ctl, VDUSE_DESTROY_DEV, c->name);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("vdpa-lu-vduse-blk[%d]: %s ready (32 MiB RAM disk)\n", getpid(), path);
	fflush(stdout);
	while (!stop) {
		struct pollfd p[2] = {
			{ .fd = d.fd, .events = POLLIN },
			{ .fd = d.kick, .events = POLLIN },
		};

		if (poll(p, d.kick >= 0 ? 2 : 1, 100) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN)
			handle_request();
		if (d.kick >= 0 && p[1].revents & POLLIN)
			(void)!read(d.kick, &v, sizeof(v));
		process();
	}
	printf("vdpa-lu-vduse-blk[%d]: served %llu requests\n", getpid(),
	       (unsigned long long)d.served);
	close(d.fd);
	if (ioctl(ctl, VDUSE_DESTROY_DEV, c->name))
		perror("VDUSE_DESTROY_DEV");
	return 0;
}
