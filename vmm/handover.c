// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handing the device to a new image, three ways, and taking it over:
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
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm.h"

#define MAX_XFER_FDS	64
#define XFER_MAGIC	0x4c555846	/* "FXUL" */

static uint64_t t_restore;	/* vdpalu_restore() called */

static const char *const mode_name[] = {
	[UPD_NONE] = "none", [UPD_EXEC] = "exec",
	[UPD_FORK] = "fork", [UPD_TRANSFER] = "transfer",
};

static const char *dev_mode(void)
{
	char c = '?';
	FILE *f = fopen("/sys/module/vdpa_sim/parameters/use_va", "re");

	if (f) {
		c = fgetc(f);
		fclose(f);
	}
	return c == 'Y' || c == '1' ? "VA" : c == 'N' || c == '0' ? "PA" : "?";
}

static uint64_t save_end_ns(const struct vdpalu_timeline *tl)
{
	uint64_t t = tl->start_ns;
	int s;

	for (s = VDPALU_STEP_SUSPEND; s <= VDPALU_STEP_BLOB_SAVE; s++)
		t += tl->ns[s];
	return t;
}

/* " | NAME N.Nus (COUNT)" at *p, within *left bytes; count < 0: none */
static void append_us(char **p, size_t *left, const char *name, uint64_t ns,
		      int count)
{
	int n;

	if (count >= 0)
		n = snprintf(*p, *left, " | %s %.1fus (%d)", name, ns / 1e3, count);
	else
		n = snprintf(*p, *left, " | %s %.1fus", name, ns / 1e3);
	if (n > 0 && (size_t)n < *left) {
		*p += n;
		*left -= n;
	}
}

/* One line per update, from the old image's suspend to our first I/O. */
void print_timeline(struct vmm *m, uint64_t first_ns)
{
	const struct vdpalu_timeline *tl = &m->dev.tl;
	uint64_t save_end = save_end_ns(tl);
	unsigned int i = m->cfg.done - 1;
	char line[1024], *p = line;
	size_t left = sizeof(line);
	int s;

	for (s = VDPALU_STEP_SUSPEND; s < VDPALU_STEP_MAX; s++) {
		if (s == VDPALU_STEP_BLOB_LOAD)
			append_us(&p, &left, mode_name[m->cfg.mode],
				  t_restore > save_end ? t_restore - save_end : 0, -1);
		if (!tl->ns[s] && s != VDPALU_STEP_NEW_OWNER)
			continue;
		append_us(&p, &left, vdpalu_step_name(s), tl->ns[s],
			  s == VDPALU_STEP_MAP || s == VDPALU_STEP_REMAP ||
			  s == VDPALU_STEP_VRINGS ? (int)tl->count[s] : -1);
	}
	append_us(&p, &left, "first-completion", first_ns - m->restart_ns, -1);
	if (i < MAX_UPDATES) {
		m->cfg.blackout_us[i] = (first_ns - tl->start_ns) / 1000;
		m->cfg.first_us[i] = (first_ns - m->restart_ns) / 1000;
	}
	vmm_log(m, "update %u/%u %s v%u->v%d %s-flow %s%s || blackout %.3f ms, device stopped %.3f ms",
		m->cfg.done, m->cfg.updates, mode_name[m->cfg.mode],
		m->prev_version, VMM_IMAGE_VERSION,
		m->dev.flow == VDPALU_FLOW_RESUME ? "resume" : "reset",
		dev_mode(), line, (first_ns - tl->start_ns) / 1e6,
		(tl->end_ns - tl->start_ns) / 1e6);
}

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

static int sock_path(struct sockaddr_un *sa, const char *base, unsigned int i)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	return snprintf(sa->sun_path, sizeof(sa->sun_path), "%s.%u", base, i) >=
	       (int)sizeof(sa->sun_path) ? -1 : 0;
}

static int do_transfer(struct vmm *m, int blob)
{
	union {
		char buf[CMSG_SPACE(MAX_XFER_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	int fds[MAX_XFER_FDS], n, s, tries;
	uint32_t hdr[2] = { XFER_MAGIC, 0 };
	struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(hdr) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf,
	};
	struct sockaddr_un sa;
	struct cmsghdr *c;
	struct ucred cred;
	socklen_t cl = sizeof(cred);

	fds[0] = blob;
	n = vdpalu_blob_fds(blob, fds + 1, MAX_XFER_FDS - 1);
	if (n < 0 || sock_path(&sa, m->cfg.transfer, m->cfg.done))
		return -1;
	hdr[1] = n + 1;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* The new process may still be starting: wait for its socket. */
	for (tries = 0; connect(s, (void *)&sa, sizeof(sa)); tries++) {
		if (tries == 600) {
			vmm_err("connect %s: %s", sa.sun_path, strerror(errno));
			close(s);
			return -1;
		}
		usleep(100000);
	}
	msg.msg_controllen = CMSG_SPACE((n + 1) * sizeof(int));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((n + 1) * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (n + 1) * sizeof(int));
	if (sendmsg(s, &msg, 0) != sizeof(hdr)) {
		vmm_err("sendmsg: %s", strerror(errno));
		close(s);
		return -1;
	}
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

static int receive(const char *path, int *fds, unsigned int *nr)
{
	union {
		char buf[CMSG_SPACE(MAX_XFER_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	uint32_t hdr[2];
	struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(hdr) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct cmsghdr *c;
	int l, s;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (void *)&sa, sizeof(sa)) || listen(l, 1)) {
		vmm_err("listen on %s: %s", path, strerror(errno));
		return -1;
	}
	printf("vdpa-lu-vmm[%d] v%d: waiting for a handover on %s\n", getpid(),
	       VMM_IMAGE_VERSION, path);
	fflush(stdout);
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	unlink(path);
	if (s < 0)
		return -1;
	if (recvmsg(s, &msg, MSG_CMSG_CLOEXEC) != sizeof(hdr) ||
	    hdr[0] != XFER_MAGIC || !(c = CMSG_FIRSTHDR(&msg)) ||
	    c->cmsg_type != SCM_RIGHTS ||
	    (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) != hdr[1]) {
		vmm_err("bad handover message");
		close(s);
		return -1;
	}
	*nr = hdr[1];
	memcpy(fds, CMSG_DATA(c), *nr * sizeof(int));
	return s;
}

/*
 * Become the device's owner from the blob in @blob (its fds renumbered
 * by @fds when received over a socket), then pick up the guest driver.
 */
int take_over(struct vmm *m, int blob, const int *fds, unsigned int nr)
{
	size_t len = 0;
	long pin;

	t_restore = vdpalu_now_ns();
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

	s = receive(path, fds, &nr);
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
