// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vdpalu_keep_old_mm(): the address space of the image before exec must
 * outlive the exec, held by a keeper that holds nothing else, and go away
 * when the new image releases it.
 *
 * One process chain: the first image maps "guest memory", keeps its
 * address space and execs itself with --after-exec, which continues the
 * TAP numbering.  The library hands the keeper's fds on as a string for
 * the new image's environment and never touches the environment itself.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vdpalu.h"
#include "tap.h"

#define GUEST_MIB	64

/* The value of "@key:" in a /proc file of such lines, or "" if none. */
static const char *proc_field(const char *path, const char *key)
{
	static char val[128];
	size_t klen = strlen(key);
	char line[256];
	FILE *f;

	val[0] = '\0';
	f = fopen(path, "r");
	if (!f)
		return val;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			sscanf(line + klen + 1, " %127[^\n]", val);
			break;
		}
	}
	fclose(f);
	return val;
}

/* A field of /proc/@pid/status ("VmRSS", "Name", ...), or "" if none. */
static const char *status_field(pid_t pid, const char *key)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	return proc_field(path, key);
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool gone_or_zombie(pid_t pid)
{
	const char *state = status_field(pid, "State");

	return !state[0] || state[0] == 'Z';
}

/* The pid behind a pidfd, from its fdinfo; -1 if none. */
static pid_t pidfd_pid(int pidfd)
{
	char path[64];
	const char *pid;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	pid = proc_field(path, "Pid");
	return pid[0] ? atoi(pid) : -1;
}

static void *guest_memory(void)
{
	size_t size = (size_t)GUEST_MIB << 20;
	int fd = memfd_create("guest", 0);
	void *p;

	if (fd < 0 || ftruncate(fd, size))
		return NULL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0x5a, size);
	return p;
}

static void after_exec(void)
{
	const char *env = getenv(VDPALU_OLD_MM_ENV);
	char var[VDPALU_ENV_MAX];
	int wfd = -1, pidfd = -1;
	pid_t keeper;
	long rss_kb;

	ok(env && sscanf(env, "%d,%d", &wfd, &pidfd) == 2,
	   "%s crossed exec: %s", VDPALU_OLD_MM_ENV, env ? env : "(unset)");
	keeper = pidfd >= 0 ? pidfd_pid(pidfd) : -1;
	ok(keeper > 0, "its pidfd names the keeper (pid %d)", keeper);
	rss_kb = atol(status_field(keeper, "VmRSS"));
	ok(rss_kb >= GUEST_MIB * 1024,
	   "the old address space outlived exec: keeper VmRSS %ld kB, guest memory %d MiB",
	   rss_kb, GUEST_MIB);
	ok(!strcmp(status_field(keeper, "Name"), "vdpalu-old-mm"),
	   "the keeper is named vdpalu-old-mm");
	ok(atoi(status_field(keeper, "PPid")) != getpid(),
	   "the keeper is not a child of the VMM");
	ok(count_fds(keeper) == 1,
	   "the keeper holds only its pipe (%d fds): no device, memfd or blob",
	   count_fds(keeper));

	ok(vdpalu_release_old_mm(env, true) == 0, "release %s", vdpalu_errmsg());
	ok(gone_or_zombie(keeper), "the keeper has exited once release returns");
	ok(getenv(VDPALU_OLD_MM_ENV) == env,
	   "release leaves the environment alone");
	ok(fcntl(wfd, F_GETFD) < 0 && fcntl(pidfd, F_GETFD) < 0,
	   "release closed both fds");
	/* Were the numbers reused, a second release must not close them. */
	ok(dup2(0, wfd) == wfd && vdpalu_release_old_mm(env, true) == 0 &&
	   fcntl(wfd, F_GETFD) >= 0, "a second release does nothing");
	close(wfd);
	ok(vdpalu_keep_old_mm(var, sizeof(var)) == 0,
	   "once released, this image can keep its own: %s", vdpalu_errmsg());
	ok(vdpalu_release_old_mm(strchr(var, '=') + 1, false) == 0,
	   "and release it");
}

/* vdpalu_exec_env(): the old image's environment less stale update variables. */
static void exec_env(void)
{
	char *base[] = { "PATH=/bin", VDPALU_STATE_ENV "=7", "HOME=/",
			 VDPALU_OLD_MM_ENV "=3,4", VDPALU_STATE_ENV "X=1", NULL };
	char state[VDPALU_ENV_MAX], *vars[] = { state, NULL };
	char **env;

	ok(vdpalu_state_env(12, state, sizeof(state)) == 0 &&
	   !strcmp(state, VDPALU_STATE_ENV "=12"), "state variable: %s", state);
	is_errno(EINVAL, vdpalu_state_env(12, state, 8),
		 "state variable refuses a buffer too small");
	env = vdpalu_exec_env(base, vars);
	ok(env && !strcmp(env[0], "PATH=/bin") && !strcmp(env[1], "HOME=/") &&
	   !strcmp(env[2], VDPALU_STATE_ENV "X=1") && env[3] == state && !env[4],
	   "exec environment: the caller's, less the stale variables, plus the new ones");
	free(env);
}

int main(int argc, char **argv)
{
	char n[16], failed[16], var[VDPALU_ENV_MAX], small[8];
	char *vars[] = { var, NULL }, **envp;
	char **environ_before = environ, *first_before = environ[0];
	int wfd = -1, pidfd = -1;
	pid_t keeper;

	if (argc == 4 && !strcmp(argv[1], "--after-exec")) {
		tap_n = atoi(argv[2]);
		tap_failed = atoi(argv[3]);
		after_exec();
		return tap_done();
	}

	exec_env();
	is_errno(EINVAL, vdpalu_keep_old_mm(small, sizeof(small)),
		 "keep refuses a buffer smaller than VDPALU_ENV_MAX");

	/* As if an earlier update left a keeper this image has not released. */
	setenv(VDPALU_OLD_MM_ENV, "99,-1", 1);
	environ_before = environ;
	first_before = environ[0];
	is_errno(EBUSY, vdpalu_keep_old_mm(var, sizeof(var)),
		 "keep refuses while an inherited one is not released");
	is_errno(EBADF, vdpalu_release_old_mm(getenv(VDPALU_OLD_MM_ENV), false),
		 "release refuses a variable that names no pipe");
	ok(vdpalu_release_old_mm("5,6", false) == 0,
	   "release does nothing for fds that are not this process's keeper");

	/* An exec that fails: the same image releases its own keeper. */
	ok(vdpalu_keep_old_mm(var, sizeof(var)) == 0, "keep starts the keeper %s",
	   vdpalu_errmsg());
	ok(sscanf(var, VDPALU_OLD_MM_ENV "=%d,%d", &wfd, &pidfd) == 2 &&
	   wfd >= 0 && pidfd >= 0, "keep names a pipe and a pidfd: %s", var);
	ok(environ == environ_before && environ[0] == first_before &&
	   !strcmp(getenv(VDPALU_OLD_MM_ENV), "99,-1"),
	   "keep leaves the environment alone");
	ok(!(fcntl(wfd, F_GETFD) & FD_CLOEXEC) &&
	   !(fcntl(pidfd, F_GETFD) & FD_CLOEXEC), "both cross exec");
	is_errno(EBUSY, vdpalu_keep_old_mm(var, sizeof(var)),
		 "a second keep before release is refused");
	keeper = pidfd_pid(pidfd);
	ok(vdpalu_release_old_mm(strchr(var, '=') + 1, false) == 0 &&
	   gone_or_zombie(keeper),
	   "without an exec, release waits for the keeper anyway");
	unsetenv(VDPALU_OLD_MM_ENV);

	if (!guest_memory()) {
		ok(0, "guest memory: %s", strerror(errno));
		return tap_done();
	}
	ok(vdpalu_keep_old_mm(var, sizeof(var)) == 0,
	   "keep with %d MiB of guest memory: %s", GUEST_MIB, vdpalu_errmsg());
	envp = vdpalu_exec_env(environ, vars);
	snprintf(n, sizeof(n), "%d", tap_n);
	snprintf(failed, sizeof(failed), "%d", tap_failed);
	fflush(stdout);
	execle("/proc/self/exe", argv[0], "--after-exec", n, failed,
	       (char *)NULL, envp);
	ok(0, "exec: %s", strerror(errno));
	return tap_done();
}
