// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A SIGKILL at every step of a live update, on a vdpa_sim block device.
 *
 * For exec, fork and SCM_RIGHTS transfer, in the reset and the resume
 * flow, the old image dies after each step of vdpalu_save() (and, fork and
 * transfer, once the fds are handed over), and the new image dies after
 * each step of vdpalu_restore() (libvdpalu's step hook names the points).
 * Afterwards:
 *   - who must survive does: the new image owns and runs the device when
 *     the old one died after handing over; the old one resumes when the new
 *     one died before VHOST_NEW_OWNER, and is locked out (EPERM, no VmPin)
 *     when it died after;
 *   - every process ends within its bound (no hang);
 *   - no pin is left once every fd is closed;
 *   - the device opens again and reads back the data written before.
 *
 * usage: lu-kill /dev/vhost-vdpa-N [METHOD...]   (exec fork transfer)
 * Prints "ok - ..." / "not ok - ..." lines and a "# kill points:" total.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vhost.h>

#include "stress-common.h"

#define MAX_FDS 32

enum method { M_EXEC, M_FORK, M_TRANSFER };
static const char *const method_name[] = { "exec", "fork", "transfer" };

static const char *dev_path;
static char kill_point[32];	/* this process dies when it passes it */
static int rep_fd = -1;		/* report pipe to the orchestrator */

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	/* One write below PIPE_BUF: lines of several processes don't mix. */
	if (write(rep_fd, line, n) != n)
		_exit(99);
}

static void kill_hook(const char *point, void *arg)
{
	(void)arg;
	if (strcmp(point, kill_point))
		return;
	report("K %s", point);
	raise(SIGKILL);
}

/* The new image: take over, check the data, own and run the device. */
static void new_image(int blob, const int *fds, unsigned int nr,
		      uint64_t gen, int ack_fd, bool exec)
{
	struct vdpalu_dev d;
	char app[VDPALU_APP_MAX];
	size_t len;
	long pin;
	int io;

	vdpalu_set_step_hook(kill_hook, NULL);
	if (vdpalu_restore(&d, blob, fds, nr, app, &len)) {
		report("S new restore-failed %s", vdpalu_errmsg());
		_exit(1);
	}
	io = guest_check_all(&d, gen);
	pin = vdpalu_vmpin_kb();
	report("S new %s io=%d vmpin=%ld", !io && pin == guest_pin_kb() ?
	       "ok" : "bad", io, pin);
	if (ack_fd >= 0 && write(ack_fd, "K", 1) != 1)
		_exit(1);
	if (exec)
		vdpalu_release_old_mm(getenv(VDPALU_OLD_MM_ENV), true);
	vdpalu_close(&d);
	_exit(0);
}

/* Fork and transfer: the old image once the fds are handed over. */
static void old_after_handover(struct vdpalu_dev *d, int ack_fd, uint64_t gen)
{
	struct pollfd p = { .fd = ack_fd, .events = POLLIN };
	char c = 0;
	int io;

	kill_hook("handed", NULL);
	if (poll(&p, 1, 20000) == 1 && read(ack_fd, &c, 1) == 1 && c == 'K') {
		report("O handed vmpin=%ld", vdpalu_vmpin_kb());
		_exit(0);
	}
	/* The new image died: resume here, as a VMM would. */
	if (vdpalu_cancel(d)) {
		int err = errno;

		report("L errno=%d vmpin=%ld", err, vdpalu_vmpin_kb());
		vdpalu_close(d);
		_exit(0);
	}
	io = guest_check_all(d, gen);
	report("S old %s io=%d vmpin=%ld", !io && vdpalu_vmpin_kb() ==
	       guest_pin_kb() ? "ok" : "bad", io, vdpalu_vmpin_kb());
	vdpalu_close(d);
	_exit(0);
}

static int send_fds(int s, const int *fds, unsigned int n)
{
	union {
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	uint32_t nr = n;
	struct iovec iov = { .iov_base = &nr, .iov_len = sizeof(nr) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
		.msg_controllen = CMSG_SPACE(n * sizeof(int)),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	return sendmsg(s, &msg, 0) == sizeof(nr) ? 0 : -1;
}

static int recv_fds(int s, int *fds)
{
	union {
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	uint32_t nr;
	struct iovec iov = { .iov_base = &nr, .iov_len = sizeof(nr) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;

	if (recvmsg(s, &msg, MSG_CMSG_CLOEXEC) != sizeof(nr) ||
	    !(c = CMSG_FIRSTHDR(&msg)) || c->cmsg_type != SCM_RIGHTS ||
	    nr > MAX_FDS || c->cmsg_len != CMSG_LEN(nr * sizeof(int)))
		return -1;
	memcpy(fds, CMSG_DATA(c), nr * sizeof(int));
	return nr;
}

/* The receiving process: a connection, or the old image's death. */
static void incoming(int listen_fd, int old_pidfd, uint64_t gen,
		     const char *point)
{
	struct pollfd p[2] = { { .fd = listen_fd, .events = POLLIN },
			       { .fd = old_pidfd, .events = POLLIN } };
	int fds[MAX_FDS], s, n;

	for (;;) {
		if (poll(p, 2, 30000) <= 0) {
			report("I timeout");
			_exit(1);
		}
		if (p[0].revents)
			break;
		if (p[1].revents) {	/* died before it sent anything */
			report("I none");
			_exit(0);
		}
	}
	s = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	n = s < 0 ? -1 : recv_fds(s, fds);
	if (n < 2) {
		report("I recv-failed");
		_exit(1);
	}
	snprintf(kill_point, sizeof(kill_point), "%s", point);
	new_image(fds[0], fds + 1, n - 1, gen, s, false);
}

static void old_image(enum method m, enum vdpalu_flow flow, uint64_t gen,
		      const char *point_old, const char *point_new,
		      const char *sock)
{
	char old_mm[VDPALU_ENV_MAX] = "";
	struct vdpalu_dev d;
	int blob, io;

	if (guest_open(&d, dev_path)) {
		report("E open %s", vdpalu_errmsg());
		_exit(1);
	}
	io = guest_write_all(&d, gen);
	if (!io)
		io = guest_check_all(&d, gen);
	if (io) {
		report("E io=%d before the update", io);
		_exit(1);
	}
	snprintf(kill_point, sizeof(kill_point), "%s", point_old);
	vdpalu_set_step_hook(kill_hook, NULL);
	if (m == M_EXEC && vdpalu_keep_old_mm(old_mm, sizeof(old_mm)))
		report("E keep-old-mm %s", vdpalu_errmsg());
	if (vdpalu_save(&d, flow, NULL, 0, &blob)) {
		report("E save %s", vdpalu_errmsg());
		_exit(1);
	}
	if (m == M_EXEC) {
		char self[512], b[16], r[16], g[24];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		if (n < 0)
			_exit(1);
		self[n] = '\0';
		snprintf(b, sizeof(b), "%d", blob);
		snprintf(r, sizeof(r), "%d", rep_fd);
		snprintf(g, sizeof(g), "%llu", (unsigned long long)gen);
		const char *argv[] = { self, "--new-image", b, r, g, point_new,
				       NULL };
		char *vars[] = { old_mm[0] ? old_mm : NULL, NULL };
		char **envp = vdpalu_exec_env(environ, vars);

		/* The old address space's keeper must reach the new image */
		if (envp)
			execve(self, (char *const *)argv, envp);
		report("E exec %s", strerror(errno));
		_exit(1);
	}
	if (m == M_FORK) {
		int ack[2];
		pid_t pid;

		if (pipe2(ack, O_CLOEXEC))
			_exit(1);
		pid = fork();
		if (pid == 0) {
			close(ack[0]);
			snprintf(kill_point, sizeof(kill_point), "%s", point_new);
			new_image(blob, NULL, 0, gen, ack[1], false);
		}
		close(ack[1]);
		close(blob);
		old_after_handover(&d, ack[0], gen);
	} else {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fds[MAX_FDS], n, s;

		fds[0] = blob;
		n = vdpalu_blob_fds(blob, fds + 1, MAX_FDS - 1);
		memcpy(sa.sun_path + 1, sock, strlen(sock));
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (n < 0 || connect(s, (void *)&sa, sizeof(sa.sun_family) + 1 +
				     strlen(sock)) || send_fds(s, fds, n + 1)) {
			report("E transfer %s", strerror(errno));
			_exit(1);
		}
		close(blob);
		old_after_handover(&d, s, gen);
	}
}

struct outcome {
	char killed[32];	/* K: where someone died */
	char survivor[40];	/* S: "new ok", "old ok", ... */
	long surv_vmpin;
	bool locked_out, locked_eperm, handed;
	long locked_vmpin;
	char error[160];	/* E / I failures */
};

static void parse(struct outcome *o, char *line)
{
	char a[16], b[16];
	int err;

	if (sscanf(line, "K %31s", o->killed) == 1)
		return;
	if (sscanf(line, "S %15s %15s", a, b) == 2) {
		snprintf(o->survivor, sizeof(o->survivor), "%s %s", a, b);
		if (!strcmp(b, "bad") || !strcmp(b, "restore-failed"))
			snprintf(o->error, sizeof(o->error), "%s", line);
		return;
	}
	if (sscanf(line, "L errno=%d vmpin=%ld", &err, &o->locked_vmpin) == 2) {
		o->locked_out = true;
		o->locked_eperm = err == EPERM;
		return;
	}
	if (!strncmp(line, "O handed", 8)) {
		o->handed = true;
		return;
	}
	if (!strcmp(line, "I none"))
		return;
	snprintf(o->error, sizeof(o->error), "%s", line);
}

static bool is_save_point(const char *p)
{
	return !strcmp(p, "suspend") || !strcmp(p, "vring-save") ||
	       !strcmp(p, "reset") || !strcmp(p, "blob-save");
}

static bool before_new_owner(const char *p)
{
	return !strcmp(p, "blob-load") || !strcmp(p, "map");
}

static int kill_points, cases;

/*
 * A forked new image outlives the old image it came from and, orphaned,
 * comes to us (we are the subreaper).  Its files are released before it
 * can be reaped, so the device is free once every child is.  Whatever is
 * left after @ms is killed with its process group (the case's).
 */
static bool reap_case(pid_t pgrp, int ms)
{
	for (;;) {
		pid_t r = waitpid(-1, NULL, WNOHANG);

		if (r < 0 && errno == ECHILD)
			return true;
		if (r > 0)
			continue;
		if (ms <= 0)
			break;
		usleep(5000);
		ms -= 5;
	}
	kill(-pgrp, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	return false;
}

static void run_case(enum method m, enum vdpalu_flow flow, bool victim_new,
		     const char *point)
{
	static uint64_t gen;
	const char *flow_name = flow == VDPALU_FLOW_RESET ? "reset" : "resume";
	char sock[64], buf[4096], expect[64];
	struct outcome o = { 0 };
	int rep[2], lfd = -1, st, pidfd = -1, io = 0;
	pid_t old, in = -1;
	long base = pins_outstanding(), after, reopened = -1;
	size_t used = 0;
	bool hung = false, ok;
	struct vdpalu_dev d;

	uint64_t t0 = vdpalu_now_ns();

	gen++;
	cases++;
	snprintf(sock, sizeof(sock), "lu-kill-%d-%llu", getpid(),
		 (unsigned long long)gen);
	if (pipe(rep))
		exit(2);
	if (m == M_TRANSFER) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		memcpy(sa.sun_path + 1, sock, strlen(sock));
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (bind(lfd, (void *)&sa, sizeof(sa.sun_family) + 1 + strlen(sock)) ||
		    listen(lfd, 1))
			exit(2);
	}
	fflush(NULL);
	old = fork();
	if (old == 0) {
		setpgid(0, 0);
		close(rep[0]);
		rep_fd = rep[1];
		if (lfd >= 0)
			close(lfd);
		old_image(m, flow, gen, victim_new ? "" : point,
			  victim_new ? point : "", sock);
		_exit(1);
	}
	setpgid(old, old);	/* whichever of us comes first */
	if (m == M_TRANSFER) {
		pidfd = syscall(SYS_pidfd_open, old, 0);
		in = fork();
		if (in == 0) {
			close(rep[0]);
			rep_fd = rep[1];
			incoming(lfd, pidfd, gen, victim_new ? point : "");
		}
		close(lfd);
		close(pidfd);
	}
	close(rep[1]);

	/* Every report, until the last process holding the pipe is gone. */
	for (;;) {
		struct pollfd p = { .fd = rep[0], .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 60000) != 1) {
			hung = true;
			break;
		}
		n = read(rep[0], buf + used, sizeof(buf) - 1 - used);
		if (n <= 0)
			break;
		used += n;
	}
	buf[used] = '\0';
	close(rep[0]);
	for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
		parse(&o, l);
	hung |= wait_bounded(old, &st, 10000) < 0;
	if (in > 0)
		hung |= wait_bounded(in, &st, 10000) < 0;
	hung |= !reap_case(old, 10000);

	/* Who must be left standing. */
	if (!victim_new && is_save_point(point))
		snprintf(expect, sizeof(expect), "nobody");
	else if (!victim_new)
		snprintf(expect, sizeof(expect), "new ok");
	else if (m == M_EXEC)
		snprintf(expect, sizeof(expect), "nobody");
	else if (before_new_owner(point))
		snprintf(expect, sizeof(expect), "old ok");
	else
		snprintf(expect, sizeof(expect), "old locked out");

	after = pins_settle(base, 5000);
	if (guest_open(&d, dev_path) == 0) {
		io = guest_check_all(&d, gen);
		vdpalu_close(&d);
		reopened = pins_settle(base, 5000);
	} else {
		io = -errno;
	}
	ok = !hung && !o.error[0] && !strcmp(o.killed, point) &&
	     after == base && reopened == base && !io;
	if (!strcmp(expect, "nobody"))
		ok &= !o.survivor[0] && !o.locked_out;
	else if (!strcmp(expect, "old locked out"))
		ok &= !o.survivor[0] && o.locked_out && o.locked_eperm &&
		      o.locked_vmpin == 0;
	else
		ok &= !strcmp(o.survivor, expect) && !o.locked_out;
	kill_points++;
	check(ok, "kill %s %s-flow %s image at %s: %s%s%s; pins %s (%ld left, %ld after reopen), device reopened with its data (io %d), %llu ms%s%s",
	      method_name[m], flow_name, victim_new ? "new" : "old", point,
	      expect, o.locked_out ? (o.locked_eperm ? " (EPERM)" : " (not EPERM)") : "",
	      o.killed[0] ? "" : ", NOT KILLED", after == base && reopened == base ?
	      "balanced" : "LEAKED", after - base, reopened - base, io,
	      (unsigned long long)(vdpalu_now_ns() - t0) / 1000000, hung ? ", HUNG" : "", o.error[0] ? ", error: " : "");
	if (o.error[0])
		note("  %s", o.error);
	if (after != base || reopened != base || io)
		note_pin_holders();
}

int main(int argc, char **argv)
{
	static const char *const save_reset[] = { "suspend", "vring-save", "reset", "blob-save" };
	static const char *const save_resume[] = { "suspend", "blob-save" };
	static const char *const rest_reset[] = { "blob-load", "map", "new-owner",
		"backend-features", "features", "vrings", "remap-open", "remap", "start" };
	static const char *const rest_resume[] = { "blob-load", "map", "new-owner",
		"backend-features", "remap-open", "remap", "start" };
	bool methods[3] = { true, true, true };
	enum vdpalu_flow flows[2] = { VDPALU_FLOW_RESET, VDPALU_FLOW_RESUME };
	unsigned int f, i, k;
	int mi;

	if (argc == 6 && !strcmp(argv[1], "--new-image")) {
		/* The exec'd image: blob fd, report fd, data generation, point. */
		rep_fd = atoi(argv[3]);
		snprintf(kill_point, sizeof(kill_point), "%s", argv[5]);
		new_image(atoi(argv[2]), NULL, 0, strtoull(argv[4], NULL, 0), -1,
			  true);
	}
	if (argc < 2) {
		fprintf(stderr, "usage: lu-kill /dev/vhost-vdpa-N [exec|fork|transfer...]\n");
		return 2;
	}
	dev_path = argv[1];
	if (argc > 2) {
		memset(methods, 0, sizeof(methods));
		for (i = 2; i < (unsigned int)argc; i++)
			for (mi = 0; mi < 3; mi++)
				if (!strcmp(argv[i], method_name[mi]))
					methods[mi] = true;
	}
	signal(SIGPIPE, SIG_IGN);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1)) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 2;
	}
	note("vdpa_sim %s, %s; guest %u kB, VmPin %ld kB per owner",
	     booted_va() ? "VA" : "PA", booted_batch() ? "set_map" : "dma_map",
	     G_SIZE / 1024, guest_pin_kb());
	for (mi = 0; mi < 3; mi++) {
		if (!methods[mi])
			continue;
		for (f = 0; f < 2; f++) {
			bool reset = flows[f] == VDPALU_FLOW_RESET;
			const char *const *sp = reset ? save_reset : save_resume;
			const char *const *rp = reset ? rest_reset : rest_resume;
			unsigned int ns = reset ? 4 : 2, nr = reset ? 9 : 7;

			for (i = 0; i < ns; i++)
				run_case(mi, flows[f], false, sp[i]);
			if (mi != M_EXEC)
				run_case(mi, flows[f], false, "handed");
			for (k = 0; k < nr; k++) {
				/* REMAP happens only where the device needs it. */
				if (!booted_va() && strstr(rp[k], "remap"))
					continue;
				run_case(mi, flows[f], true, rp[k]);
			}
		}
	}
	note("kill points: %d, failed: %d", kill_points, failures);
	return failures ? 1 : 0;
}
