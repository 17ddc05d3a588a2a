// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vdpalu_keep_old_mm(): the address space of the image before exec must
 * outlive the exec, held by a keeper that holds nothing else, and go away
 * when the new image releases it.
 *
 * Each exec test runs an update in a child: it maps "guest memory", keeps
 * its address space and execs itself with --after-exec; the new image
 * sends back on a pipe what it found of the keeper and what releasing it
 * did, and the test asserts on its part of that report (an exec'd image
 * is no longer the harness's test).  The library hands the keeper's
 * fds on as a string for the new image's environment and never touches
 * the environment itself.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vdpalu.h"
#include "unit.h"

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

/* vdpalu_state_env(), vdpalu_exec_env(): what the new image is given. */
TEST(state_env_names_the_blob_fd)
{
	char state[VDPALU_ENV_MAX];

	ASSERT_EQ(0, vdpalu_state_env(12, state, sizeof(state)))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_STREQ(VDPALU_STATE_ENV "=12", state);
}

TEST(state_env_refuses_a_buffer_too_small)
{
	char state[VDPALU_ENV_MAX];

	EXPECT_ERRNO(EINVAL, vdpalu_state_env(12, state, 8))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST(exec_env_is_the_callers_less_stale_variables_plus_the_new_ones)
{
	char *base[] = { "PATH=/bin", VDPALU_STATE_ENV "=7", "HOME=/",
			 VDPALU_OLD_MM_ENV "=3,4", VDPALU_STATE_ENV "X=1", NULL };
	char state[VDPALU_ENV_MAX], *vars[] = { state, NULL };
	char **env;

	ASSERT_EQ(0, vdpalu_state_env(12, state, sizeof(state)));
	env = vdpalu_exec_env(base, vars);
	ASSERT_NE(NULL, env) TH_LOG("%s", vdpalu_errmsg());
	EXPECT_STREQ("PATH=/bin", env[0]);
	EXPECT_STREQ("HOME=/", env[1]);
	EXPECT_STREQ(VDPALU_STATE_ENV "X=1", env[2]);
	EXPECT_EQ((char *)state, env[3]);
	EXPECT_NULL(env[4]);
	free(env);
}

TEST(keep_refuses_a_buffer_smaller_than_env_max)
{
	char small[8];

	EXPECT_ERRNO(EINVAL, vdpalu_keep_old_mm(small, sizeof(small)))
		TH_LOG("%s", vdpalu_errmsg());
}

/* As if an earlier update left a keeper this image has not released. */
FIXTURE(inherited) {
};

FIXTURE_SETUP(inherited)
{
	setenv(VDPALU_OLD_MM_ENV, "99,-1", 1);
}

FIXTURE_TEARDOWN(inherited)
{
}

TEST_F(inherited, keep_refuses_while_the_inherited_one_is_not_released)
{
	char var[VDPALU_ENV_MAX];

	EXPECT_ERRNO(EBUSY, vdpalu_keep_old_mm(var, sizeof(var)))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(inherited, release_refuses_a_variable_that_names_no_pipe)
{
	EXPECT_ERRNO(EBADF, vdpalu_release_old_mm(getenv(VDPALU_OLD_MM_ENV),
						  false))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(inherited, release_does_nothing_for_fds_not_this_process_keeper)
{
	EXPECT_EQ(0, vdpalu_release_old_mm("5,6", false))
		TH_LOG("%s", vdpalu_errmsg());
}

/*
 * An exec that fails: the same image releases its own keeper.  The
 * inherited variable is left set (and released) to show that keep does
 * not touch it.
 */
FIXTURE(no_exec) {
	char **environ_before, *first_before;
	char var[VDPALU_ENV_MAX];
	int wfd, pidfd;
};

FIXTURE_SETUP(no_exec)
{
	setenv(VDPALU_OLD_MM_ENV, "99,-1", 1);
	ASSERT_ERRNO(EBADF, vdpalu_release_old_mm(getenv(VDPALU_OLD_MM_ENV),
						  false));
	self->environ_before = environ;
	self->first_before = environ[0];
	ASSERT_EQ(0, vdpalu_keep_old_mm(self->var, sizeof(self->var)))
		TH_LOG("keep starts the keeper: %s", vdpalu_errmsg());
	ASSERT_EQ(2, sscanf(self->var, VDPALU_OLD_MM_ENV "=%d,%d", &self->wfd,
			    &self->pidfd))
		TH_LOG("keep names a pipe and a pidfd: %s", self->var);
}

FIXTURE_TEARDOWN(no_exec)
{
}

TEST_F(no_exec, keep_names_a_pipe_and_a_pidfd_that_cross_exec)
{
	ASSERT_LE(0, self->wfd) TH_LOG("%s", self->var);
	ASSERT_LE(0, self->pidfd) TH_LOG("%s", self->var);
	EXPECT_FALSE(fcntl(self->wfd, F_GETFD) & FD_CLOEXEC);
	EXPECT_FALSE(fcntl(self->pidfd, F_GETFD) & FD_CLOEXEC);
}

TEST_F(no_exec, keep_leaves_the_environment_alone)
{
	EXPECT_EQ(self->environ_before, environ);
	EXPECT_EQ(self->first_before, environ[0]);
	EXPECT_STREQ("99,-1", getenv(VDPALU_OLD_MM_ENV));
}

TEST_F(no_exec, second_keep_before_release_is_refused)
{
	char var[VDPALU_ENV_MAX];

	EXPECT_ERRNO(EBUSY, vdpalu_keep_old_mm(var, sizeof(var)))
		TH_LOG("%s", vdpalu_errmsg());
}

TEST_F(no_exec, release_waits_for_the_keeper_anyway)
{
	pid_t keeper = pidfd_pid(self->pidfd);

	ASSERT_LT(0, keeper);
	ASSERT_EQ(0, vdpalu_release_old_mm(strchr(self->var, '=') + 1, false))
		TH_LOG("%s", vdpalu_errmsg());
	EXPECT_TRUE(gone_or_zombie(keeper))
		TH_LOG("keeper %d: %s", keeper, status_field(keeper, "State"));
}

/* What the new image found, and what releasing the keeper did there. */
struct report {
	char failed[256];	/* why the update never reached the new image */
	bool has_env;
	char env[VDPALU_ENV_MAX];
	int parsed, wfd, pidfd;
	pid_t self, keeper, keeper_ppid;
	long keeper_rss_kb;
	char keeper_name[32];
	int keeper_fds;
	int release;
	char release_msg[256];
	bool gone_after_release, env_kept, fds_closed, second_release_noop;
	int keep_own, release_own;
	char keep_own_msg[256];
};

static void send_report(int fd, const struct report *r)
{
	ssize_t n = write(fd, r, sizeof(*r));

	_exit(n == (ssize_t)sizeof(*r) ? 0 : 1);
}

/* The new image: look at the keeper, release it, keep and release its own. */
static void after_exec(int fd)
{
	const char *env = getenv(VDPALU_OLD_MM_ENV);
	char var[VDPALU_ENV_MAX];
	struct report r = { .self = getpid(), .wfd = -1, .pidfd = -1,
			    .keeper = -1 };

	r.has_env = env;
	snprintf(r.env, sizeof(r.env), "%s", env ? env : "(unset)");
	if (env)
		r.parsed = sscanf(env, "%d,%d", &r.wfd, &r.pidfd);
	if (r.pidfd >= 0)
		r.keeper = pidfd_pid(r.pidfd);
	if (r.keeper > 0) {
		r.keeper_rss_kb = atol(status_field(r.keeper, "VmRSS"));
		snprintf(r.keeper_name, sizeof(r.keeper_name), "%s",
			 status_field(r.keeper, "Name"));
		r.keeper_ppid = atoi(status_field(r.keeper, "PPid"));
		r.keeper_fds = count_fds(r.keeper);
	}

	r.release = vdpalu_release_old_mm(env, true);
	snprintf(r.release_msg, sizeof(r.release_msg), "%s", vdpalu_errmsg());
	r.gone_after_release = r.keeper > 0 && gone_or_zombie(r.keeper);
	r.env_kept = getenv(VDPALU_OLD_MM_ENV) == env;
	r.fds_closed = fcntl(r.wfd, F_GETFD) < 0 && fcntl(r.pidfd, F_GETFD) < 0;
	/* Were the numbers reused, a second release must not close them. */
	r.second_release_noop = r.wfd >= 0 && dup2(0, r.wfd) == r.wfd &&
				vdpalu_release_old_mm(env, true) == 0 &&
				fcntl(r.wfd, F_GETFD) >= 0;
	if (r.wfd >= 0)
		close(r.wfd);

	r.keep_own = vdpalu_keep_old_mm(var, sizeof(var));
	snprintf(r.keep_own_msg, sizeof(r.keep_own_msg), "%s",
		 vdpalu_errmsg());
	r.release_own = r.keep_own ? -1 :
			vdpalu_release_old_mm(strchr(var, '=') + 1, false);
	send_report(fd, &r);
}

/* The old image: guest memory, keep its address space, exec. */
static void update_by_exec(int fd)
{
	char var[VDPALU_ENV_MAX], arg[16], *vars[] = { var, NULL }, **envp;
	struct report r = { 0 };

	if (!guest_memory()) {
		snprintf(r.failed, sizeof(r.failed), "guest memory: %s",
			 strerror(errno));
		send_report(fd, &r);
	}
	if (vdpalu_keep_old_mm(var, sizeof(var))) {
		snprintf(r.failed, sizeof(r.failed),
			 "keep with %d MiB of guest memory: %s", GUEST_MIB,
			 vdpalu_errmsg());
		send_report(fd, &r);
	}
	envp = vdpalu_exec_env(environ, vars);
	snprintf(arg, sizeof(arg), "%d", fd);
	execle("/proc/self/exe", "test-old-mm", "--after-exec", arg,
	       (char *)NULL, envp);
	snprintf(r.failed, sizeof(r.failed), "exec: %s", strerror(errno));
	send_report(fd, &r);
}

FIXTURE(after_exec) {
	struct report r;
};

FIXTURE_SETUP(after_exec)
{
	int p[2], status = 0;
	ssize_t n;
	pid_t pid;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The write end crosses exec, for the new image's report. */
		fcntl(p[1], F_SETFD, 0);
		update_by_exec(p[1]);
	}
	close(p[1]);
	n = read(p[0], &self->r, sizeof(self->r));
	waitpid(pid, &status, 0);
	ASSERT_EQ((ssize_t)sizeof(self->r), n)
		TH_LOG("no report from the update (wait status 0x%x)", status);
	ASSERT_STREQ("", self->r.failed);
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("the new image: wait status 0x%x", status);
}

FIXTURE_TEARDOWN(after_exec)
{
}

TEST_F(after_exec, variable_crosses_exec_and_its_pidfd_names_the_keeper)
{
	ASSERT_TRUE(self->r.has_env) TH_LOG("%s unset", VDPALU_OLD_MM_ENV);
	ASSERT_EQ(2, self->r.parsed) TH_LOG("%s", self->r.env);
	EXPECT_LT(0, self->r.keeper)
		TH_LOG("%s: pidfd %d", self->r.env, self->r.pidfd);
}

TEST_F(after_exec, old_address_space_outlives_exec)
{
	EXPECT_LE(GUEST_MIB * 1024, self->r.keeper_rss_kb)
		TH_LOG("keeper VmRSS %ld kB, guest memory %d MiB",
		       self->r.keeper_rss_kb, GUEST_MIB);
}

TEST_F(after_exec, keeper_is_named_vdpalu_old_mm)
{
	EXPECT_STREQ("vdpalu-old-mm", self->r.keeper_name);
}

TEST_F(after_exec, keeper_is_not_a_child_of_the_vmm)
{
	EXPECT_NE(self->r.self, self->r.keeper_ppid);
}

TEST_F(after_exec, keeper_holds_only_its_pipe)
{
	/* no device, memfd or blob */
	EXPECT_EQ(1, self->r.keeper_fds);
}

TEST_F(after_exec, release_ends_the_keeper_and_closes_both_fds)
{
	ASSERT_EQ(0, self->r.release) TH_LOG("%s", self->r.release_msg);
	EXPECT_TRUE(self->r.gone_after_release)
		TH_LOG("the keeper runs on once release returned");
	EXPECT_TRUE(self->r.fds_closed);
}

TEST_F(after_exec, release_leaves_the_environment_alone)
{
	EXPECT_TRUE(self->r.env_kept);
}

TEST_F(after_exec, second_release_does_nothing)
{
	EXPECT_TRUE(self->r.second_release_noop);
}

TEST_F(after_exec, once_released_the_image_can_keep_and_release_its_own)
{
	ASSERT_EQ(0, self->r.keep_own) TH_LOG("%s", self->r.keep_own_msg);
	EXPECT_EQ(0, self->r.release_own);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--after-exec"))
		after_exec(atoi(argv[2]));
	return test_harness_run(argc, argv);
}
