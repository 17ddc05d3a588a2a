// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handing the device to a new image, three ways, and taking it over
 * (the timeline of an update: timeline.c; the transfer's socket: xfer.c):
 *   exec:     the state blob fd crosses execve() (VDPALU_STATE_FD and
 *             --restore-fd); the pid stays, the mm is new.
 *   fork:     the child takes over, the parent exits.
 *   transfer: a separately started process (--incoming SOCKET) gets the
 *             blob and every fd it names over a UNIX socket, SCM_RIGHTS,
 *             like QEMU's cpr-transfer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm.h"

/* After the new owner said so: the old image must hold no pins. */
static int old_image_done(struct vmm *m, pid_t to)
{
	long pin = vdpalu_vmpin_kb();

	vmm_log(m, "handed over to pid %d; VmPin here now %ld kB", to, pin);
	if (pin != 0) {
		vmm_err("pinned pages still accounted to the old image");
		return 1;
	}
	return 0;
}

static int wait_ack(int fd, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c = 0;

	if (poll(&p, 1, 120000) != 1 || read(fd, &c, 1) != 1 || c != 'K') {
		vmm_err("no takeover acknowledgement from the %s", what);
		return -1;
	}
	return 0;
}

/* The value part of "NAME=value", or NULL for "". */
static const char *old_mm_fds(const char *var)
{
	const char *eq = strchr(var, '=');

	return eq ? eq + 1 : NULL;
}

/* @old_mm: vdpalu_keep_old_mm()'s variable, or "" without a keeper. */
static int do_exec(struct vmm *m, int blob, char *old_mm)
{
	char fdstr[16], self[512], state[VDPALU_ENV_MAX];
	char *argv[4], *vars[3] = { state, old_mm[0] ? old_mm : NULL, NULL };
	const char *bin = m->cfg.exec_bin;
	char **envp;
	ssize_t n;

	snprintf(fdstr, sizeof(fdstr), "%d", blob);
	if (!bin[0]) {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			return -1;
		self[n] = '\0';
		bin = self;
	}
	if (vdpalu_state_env(blob, state, sizeof(state)))
		return -1;
	envp = vdpalu_exec_env(environ, vars);
	if (!envp)
		return -1;
	argv[0] = (char *)bin;
	argv[1] = "--restore-fd";
	argv[2] = fdstr;
	argv[3] = NULL;
	fflush(NULL);
	execve(bin, argv, envp);
	vmm_err("exec %s: %s", bin, strerror(errno));
	free(envp);
	return -1;
}

static int do_fork(struct vmm *m, int blob)
{
	int ack[2];
	pid_t pid;

	if (pipe2(ack, O_CLOEXEC))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct vdpalu_dev old = m->dev;
		unsigned int i;
		char k = 'K';

		close(ack[0]);
		if (take_over(m, blob, NULL, 0))
			_exit(1);
		/* Our copies of the parent's mappings: the device no longer uses them. */
		for (i = 0; i < old.nr_regions; i++)
			munmap(old.regions[i].addr, old.regions[i].size);
		if (write(ack[1], &k, 1) != 1)
			_exit(1);
		close(ack[1]);
		return 0;
	}
	close(ack[1]);
	/* No takeover: the child refused before changing anything. */
	if (wait_ack(ack[0], "child")) {
		close(ack[0]);
		return -1;
	}
	exit(old_image_done(m, pid));
}

static int do_transfer(struct vmm *m, int blob)
{
	int fds[MAX_XFER_FDS], n, s;
	struct ucred cred;
	socklen_t cl = sizeof(cred);

	fds[0] = blob;
	n = vdpalu_blob_fds(blob, fds + 1, MAX_XFER_FDS - 1);
	if (n < 0)
		return -1;
	s = xfer_send(m->cfg.transfer, m->cfg.done, fds, n + 1);
	if (s < 0)
		return -1;
	if (wait_ack(s, "incoming process")) {
		close(s);
		return -1;
	}
	getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
	exit(old_image_done(m, cred.pid));
}

/*
 * Suspend, save and hand over.  Returns only in a forked child that took
 * over (0) or on failure (-1), after which the device runs on here: a new
 * image that refused (bad blob, RLIMIT_MEMLOCK, ...) changed nothing, so
 * the old one resumes, as QEMU's cpr-transfer source does.
 */
int handover(struct vmm *m)
{
	char old_mm[VDPALU_ENV_MAX] = "";
	int blob, ret = -1;

	/*
	 * Before SUSPEND, so it costs no blackout.  Not worth failing the
	 * update for: exec then unmaps all of guest memory itself.
	 */
	if (m->cfg.mode == UPD_EXEC &&
	    vdpalu_keep_old_mm(old_mm, sizeof(old_mm))) {
		vmm_err("exec will tear guest memory down: %s", vdpalu_errmsg());
		old_mm[0] = '\0';
	}
	m->cfg.done++;
	if (vdpalu_save(&m->dev, m->cfg.flow, &m->cfg, sizeof(m->cfg), &blob)) {
		vmm_err("save: %s", vdpalu_errmsg());
		m->cfg.done--;
		vdpalu_release_old_mm(old_mm_fds(old_mm), false);
		return -1;
	}
	switch (m->cfg.mode) {
	case UPD_EXEC:
		ret = do_exec(m, blob, old_mm);
		break;
	case UPD_FORK:
		ret = do_fork(m, blob);
		break;
	case UPD_TRANSFER:
		ret = do_transfer(m, blob);
		break;
	}
	if (ret) {
		vdpalu_release_old_mm(old_mm_fds(old_mm), false);
		vmm_err("handover failed; resuming here");
		if (vdpalu_cancel(&m->dev))
			vmm_err("cancel: %s", vdpalu_errmsg());
		m->cfg.done--;
	}
	close(blob);
	return ret;
}

/*
 * Become the device's owner from the blob in @blob (its fds renumbered
 * by @fds when received over a socket), then pick up the guest driver.
 */
int take_over(struct vmm *m, int blob, const int *fds, unsigned int nr)
{
	size_t len = 0;
	long pin;

	m->restore_ns = vdpalu_now_ns();
	if (vdpalu_restore(&m->dev, blob, fds, nr, &m->cfg, &len)) {
		vmm_err("restore: %s", vdpalu_errmsg());
		return -1;
	}
	if (len != sizeof(m->cfg)) {
		vmm_err("VMM state of %zu bytes, this image knows %zu", len,
			sizeof(m->cfg));
		return -1;
	}
	m->restart_ns = vdpalu_now_ns();
	m->restored = true;
	m->prev_version = m->cfg.image_version;
	m->cfg.image_version = VMM_IMAGE_VERSION;
	if (find_guest_driver(m, false))
		return -1;
	m->image_base = m->g->completed;
	pin = vdpalu_vmpin_kb();
	if (pin != m->cfg.vmpin_kb) {
		vmm_err("VmPin %ld kB after takeover, %lld kB before the first update",
			pin, (long long)m->cfg.vmpin_kb);
		return -1;
	}
	return 0;
}

/* --incoming: wait for a transfer, take over, acknowledge. */
int take_over_incoming(struct vmm *m, const char *path)
{
	int fds[MAX_XFER_FDS], s;
	unsigned int nr;
	char k = 'K';

	s = xfer_receive(path, fds, &nr);
	if (s < 0)
		return -1;
	if (take_over(m, fds[0], fds + 1, nr - 1)) {
		close(s);
		return -1;
	}
	close(fds[0]);		/* the blob; the library owns the rest */
	if (write(s, &k, 1) != 1)
		vmm_err("acknowledge: %s", strerror(errno));
	close(s);
	return 0;
}
