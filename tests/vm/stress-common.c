// SPDX-License-Identifier: GPL-2.0-or-later
/* The guest, counters and waits shared by the stress programs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vhost.h>
#include <linux/virtio_blk.h>

#include "sim-param.h"
#include "stress-common.h"
#include "virtq.h"

int failures;

bool booted_va(void)
{
	return vdpa_sim_param("use_va") == 1;
}

bool booted_batch(void)
{
	return vdpa_sim_param("batch_mapping") == 1;
}

long guest_pin_kb(void)
{
	return booted_va() ? 0 : G_SIZE / 1024;
}

static long vmstat(const char *key)
{
	char k[64];
	long v, ret = -1;
	FILE *f = fopen("/proc/vmstat", "re");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", k, &v) == 2)
		if (!strcmp(k, key))
			ret = v;
	fclose(f);
	return ret;
}

long pins_outstanding(void)
{
	/*
	 * Each CPU batches its counter updates and folds them in its own
	 * time; stat_refresh folds them all now, so that a count read right
	 * after an unpin sees it.
	 */
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			note("stat_refresh: %s", strerror(errno));
		close(fd);
	}
	return vmstat("nr_foll_pin_acquired") - vmstat("nr_foll_pin_released");
}

long pins_settle(long want, int ms)
{
	long now = pins_outstanding();

	/* Releases of a dead process's file can still be on their way. */
	for (; now != want && ms > 0; ms -= 10) {
		usleep(10000);
		now = pins_outstanding();
	}
	return now;
}

long vmpin_kb_of(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int vhost_fds_of(const char *pid)
{
	struct dirent *e;
	char path[sizeof("/proc//fd/") + 2 * sizeof(e->d_name)], link[64];
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/%s/fd/%s", pid, e->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = '\0';
		n += !strncmp(link, "/dev/vhost-vdpa-", 16);
	}
	closedir(dir);
	return n;
}

void note_pin_holders(void)
{
	struct dirent *e;
	DIR *proc = opendir("/proc");
	int seen = 0;

	while (proc && (e = readdir(proc))) {
		char comm[64] = "?", path[300];
		long kb;
		int fds;
		FILE *f;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		kb = vmpin_kb_of(atoi(e->d_name));
		fds = vhost_fds_of(e->d_name);
		if (kb <= 0 && !fds)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "re");
		if (f) {
			if (fscanf(f, "%63s", comm) != 1)
				comm[0] = '\0';
			fclose(f);
		}
		note("  pid %s (%s): VmPin %ld kB, %d vhost-vdpa fds",
		     e->d_name, comm, kb, fds);
		seen++;
	}
	if (proc)
		closedir(proc);
	if (!seen)
		note("  no process has VmPin or a vhost-vdpa fd");
}

int guest_open(struct vdpalu_dev *d, const char *path)
{
	uint8_t *g;

	if (vdpalu_open(d, path, 0) || vdpalu_negotiate(d, 0) ||
	    vdpalu_mem_alloc(d, G_IOVA, G_SIZE, NULL))
		return -1;
	g = vdpalu_iova_to_va(d, G_IOVA);
	memset(g, 0, 0x30000);
	/* The driver's indices (struct dvq_idx) at the start of guest memory. */
	if (vdpalu_vq_setup(d, 0, G_QN, G_RING + VQ_DESC_OFF,
			    G_RING + VQ_AVAIL_OFF, G_RING + VQ_USED_OFF))
		return -1;
	return vdpalu_start(d);
}

int guest_open_wait(struct vdpalu_dev *d, const char *path, int ms)
{
	int ret;

	/* Only the open itself can be busy; then nothing is held. */
	while ((ret = guest_open(d, path)) && errno == EBUSY && d->fd < 0 &&
	       ms > 0) {
		usleep(10000);
		ms -= 10;
	}
	return ret;
}

static uint64_t pattern(unsigned int blk, uint64_t gen, unsigned int i)
{
	return ((uint64_t)blk << 56) ^ (gen << 20) ^ (i * 0x9e3779b97f4a7c15ULL);
}

int guest_io(struct vdpalu_dev *d, bool write, unsigned int blk, uint64_t gen)
{
	struct dvq_idx *x = vdpalu_iova_to_va(d, G_IOVA);
	uint8_t *status = vdpalu_iova_to_va(d, G_HDR + 32);
	uint64_t *data = vdpalu_iova_to_va(d, G_DATA);
	uint32_t id, len;
	unsigned int i;
	struct dvq q;
	int ms;

	if (!x)
		return -EINVAL;
	dvq_attach(&q, vdpalu_iova_to_va(d, G_RING), G_QN, x, false);
	for (i = 0; i < 512; i++)
		data[i] = write ? pattern(blk, gen, i) : 0;
	blk_req_prepare(&q, 0, &(struct blk_req){
		.hdr = vdpalu_iova_to_va(d, G_HDR), .hdr_iova = G_HDR,
		.data_iova = G_DATA, .len = 4096,
		.status = status, .status_iova = G_HDR + 32,
		.write = write, .sector = (uint64_t)blk * 8,
	});
	dvq_publish(&q, 0);
	vdpalu_kick(d, 0);
	for (ms = 0; !dvq_next_used(&q, &id, &len); ms++) {
		if (ms == 2000)
			return -ETIMEDOUT;
		usleep(1000);
	}
	if (*status != VIRTIO_BLK_S_OK)
		return -EIO;
	if (!write)
		for (i = 0; i < 512; i++)
			if (data[i] != pattern(blk, gen, i))
				return -EBADMSG;
	return 0;
}

static int guest_io_all(struct vdpalu_dev *d, bool write, uint64_t gen)
{
	unsigned int b;
	int ret;

	for (b = 0; b < G_NBLK; b++)
		if ((ret = guest_io(d, write, b, gen)))
			return ret;
	return 0;
}

int guest_write_all(struct vdpalu_dev *d, uint64_t gen)
{
	return guest_io_all(d, true, gen);
}

int guest_check_all(struct vdpalu_dev *d, uint64_t gen)
{
	return guest_io_all(d, false, gen);
}

int wait_bounded(pid_t pid, int *status, int ms)
{
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (ms <= 0)
			break;
		usleep(5000);
		ms -= 5;
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -1;
}

int iotlb_msg(int fd, uint8_t type, uint64_t iova, uint64_t size,
	      uint64_t uaddr, uint8_t perm)
{
	struct vhost_msg_v2 m = {
		.type = VHOST_IOTLB_MSG_V2,
		.iotlb = { .iova = iova, .size = size, .uaddr = uaddr,
			   .perm = perm, .type = type },
	};

	return write(fd, &m, sizeof(m)) == sizeof(m) ? 0 : -errno;
}

/* splitmix64: a seed replays the same sequence everywhere. */
uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
