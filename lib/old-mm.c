// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Keep the old image's address space out of an exec update's blackout.
 *
 * execve() tears down the caller's address space before the new image
 * runs: it unmaps all of guest memory, frees the page tables and drops a
 * reference on every page.  That is the one step of an exec update whose
 * cost grows with guest memory, and it sits between SUSPEND and the restart.
 *
 * A keeper task that shares the address space (CLONE_VM) makes exec's
 * reference to it not the last one, so exec just lets go.  The keeper
 * waits on a pipe whose write end crosses exec; the new image closes it
 * once the device runs, the keeper exits and the teardown happens then,
 * with the guest already running.  If the new image dies, the pipe closes
 * all the same and nothing is left behind.
 *
 * The keeper is a grandchild: its parent exits at once, so it is reaped by
 * init (or a subreaper) and the VMM never sees an unexpected child.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#define KEEPER_STACK	(64 * 1024)

/* Set while this image started a keeper and has not exec'd. */
static void *keeper_stacks;
/* The fds ("w,pidfd") of that keeper, until released; "" if none. */
static char own_fds[24];
/* The keeper named by VDPALU_OLD_MM_ENV at start is released (or bad). */
static bool inherited_done;

/* The environment's value names the keeper this image inherited. */
static bool is_inherited(const char *fds)
{
	const char *env = getenv(VDPALU_OLD_MM_ENV);

	return !inherited_done && env && (!fds || !strcmp(env, fds));
}

struct keeper_args {
	int read_fd;
	void *stack;		/* for the keeper; the first half is its parent's */
	pid_t keeper;		/* written by the keeper's parent: same memory */
};

/*
 * Runs in the old address space after the old image is gone: no libc
 * state may be relied on, only system calls.  All signals are blocked
 * (inherited), so no handler of the VMM ever runs here.
 */
static int keeper_fn(void *unused __attribute__((unused)))
{
	char c;

	/*
	 * EOF when the last write end closes.  errno is the old image's
	 * (shared TLS); no signal is deliverable, so nothing here fails.
	 */
	while (read(0, &c, 1) > 0)
		;
	return 0;
}

/*
 * Set the keeper up in its parent, which it copies: by the time
 * vdpalu_keep_old_mm() has reaped the parent, the keeper holds nothing
 * but the read end (no device, memfd or write end) and has its name.
 */
static int keeper_parent_fn(void *arg)
{
	struct keeper_args *a = arg;

	if (a->read_fd != 0)
		dup2(a->read_fd, 0);
	syscall(SYS_close_range, 1, ~0U, 0);
	prctl(PR_SET_NAME, "vdpalu-old-mm");
	/* SIGCHLD: it goes to whoever adopts the keeper, which reaps it. */
	a->keeper = clone(keeper_fn, (char *)a->stack + KEEPER_STACK,
			  CLONE_VM | SIGCHLD, NULL);
	return a->keeper < 0;
}

int vdpalu_keep_old_mm(char *var, size_t len)
{
	struct keeper_args a = { .keeper = -1 };
	sigset_t all, saved;
	void *stacks;
	int p[2], pidfd, status, err;
	pid_t pid;

	vdpalu_clear_error();
	if (!var || len < VDPALU_ENV_MAX)
		return vdpalu_fail(EINVAL, "room for %d bytes needed for %s",
				   VDPALU_ENV_MAX, VDPALU_OLD_MM_ENV);
	if (own_fds[0] || is_inherited(NULL))
		return vdpalu_fail(EBUSY, "an old address space is kept already (%s=%s): release it first",
				   VDPALU_OLD_MM_ENV,
				   own_fds[0] ? own_fds : getenv(VDPALU_OLD_MM_ENV));
	if (pipe2(p, O_CLOEXEC))
		return vdpalu_fail(errno, "pipe2: %s", strerror(errno));
	/*
	 * Both stacks live in the shared address space: the keeper's until
	 * it exits, i.e. for as long as that address space exists at all.
	 */
	stacks = mmap(NULL, 2 * KEEPER_STACK, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stacks == MAP_FAILED) {
		err = errno;
		goto fail_pipe;
	}
	a.read_fd = p[0];
	a.stack = (char *)stacks + KEEPER_STACK;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	/*
	 * No exit signal: a SIGCHLD handler of the VMM reaping with
	 * waitpid(-1) neither runs for this child nor can reap it.
	 */
	pid = clone(keeper_parent_fn, (char *)stacks + KEEPER_STACK,
		    CLONE_VM, &a);
	err = errno;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0)
		goto fail_stacks;
	while (waitpid(pid, &status, __WCLONE) < 0 && errno == EINTR)
		;
	if (a.keeper < 0) {
		err = EAGAIN;
		goto fail_stacks;
	}
	close(p[0]);

	/* Optional: lets the new image wait for the teardown to finish. */
	pidfd = syscall(SYS_pidfd_open, a.keeper, 0);
	if (vdpalu_set_cloexec(p[1], false) ||
	    (pidfd >= 0 && vdpalu_set_cloexec(pidfd, false))) {
		err = errno;
		close(p[1]);
		if (pidfd >= 0)
			close(pidfd);
		return vdpalu_fail(err, "fcntl(F_SETFD): %s", strerror(err));
	}
	snprintf(own_fds, sizeof(own_fds), "%d,%d", p[1], pidfd);
	snprintf(var, len, "%s=%s", VDPALU_OLD_MM_ENV, own_fds);
	keeper_stacks = stacks;
	return 0;

fail_stacks:
	munmap(stacks, 2 * KEEPER_STACK);
fail_pipe:
	close(p[0]);
	close(p[1]);
	return vdpalu_fail(err, "start the keeper of the old address space: %s",
			   strerror(err));
}

int vdpalu_release_old_mm(const char *fds, bool wait)
{
	int wfd = -1, pidfd = -1;
	struct pollfd pfd;
	bool own;

	vdpalu_clear_error();
	if (!fds)
		return 0;
	/*
	 * Only a keeper this image started or was started with, once: fd
	 * numbers named by anything else may belong to someone else now.
	 */
	own = own_fds[0] && !strcmp(fds, own_fds);
	if (!own && !is_inherited(fds))
		return 0;
	if (own)
		own_fds[0] = '\0';
	else
		inherited_done = true;
	if (sscanf(fds, "%d,%d", &wfd, &pidfd) != 2 || wfd < 0 ||
	    fcntl(wfd, F_GETFD) < 0)
		return vdpalu_fail(EBADF, "%s=%s names no open pipe",
				   VDPALU_OLD_MM_ENV, fds);
	close(wfd);
	if (pidfd < 0 || fcntl(pidfd, F_GETFD) < 0)
		return 0;
	/* No exec happened: the keeper runs on stacks of this very image. */
	if (own)
		wait = true;
	if (wait) {
		/* A pidfd polls readable once its process has exited. */
		pfd.fd = pidfd;
		pfd.events = POLLIN;
		while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
			;
	}
	close(pidfd);
	if (keeper_stacks) {
		munmap(keeper_stacks, 2 * KEEPER_STACK);
		keeper_stacks = NULL;
	}
	return 0;
}
