// SPDX-License-Identifier: LGPL-2.1-or-later
/* Errors, time and small fd helpers of libvdpalu. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Per thread, so two threads updating two devices don't mix messages. */
static __thread char errmsg[256];

int vdpalu_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	errno = err;
	return -1;
}

void vdpalu_clear_error(void)
{
	errmsg[0] = '\0';
}

const char *vdpalu_errmsg(void)
{
	return errmsg;
}

uint64_t vdpalu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static const char *const step_names[VDPALU_STEP_MAX] = {
	[VDPALU_STEP_SUSPEND]		= "suspend",
	[VDPALU_STEP_VRING_SAVE]	= "vring-save",
	[VDPALU_STEP_RESET]		= "reset",
	[VDPALU_STEP_BLOB_SAVE]		= "blob-save",
	[VDPALU_STEP_BLOB_LOAD]		= "blob-load",
	[VDPALU_STEP_MAP]		= "map",
	[VDPALU_STEP_NEW_OWNER]		= "new-owner",
	[VDPALU_STEP_FEATURES]		= "features",
	[VDPALU_STEP_VRINGS]		= "vrings",
	[VDPALU_STEP_REMAP]		= "remap",
	[VDPALU_STEP_START]		= "start",
};

const char *vdpalu_step_name(enum vdpalu_step step)
{
	return step < VDPALU_STEP_MAX ? step_names[step] : "?";
}

int vdpalu_set_cloexec(int fd, bool on)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0)
		return -1;
	flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, flags);
}

long vdpalu_vmpin_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f;

	f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* "NAME=..." of one of the variables an update hands on. */
static bool is_update_var(const char *s)
{
	static const char *const names[] = { VDPALU_STATE_ENV, VDPALU_OLD_MM_ENV };
	size_t i, n;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		n = strlen(names[i]);
		if (!strncmp(s, names[i], n) && s[n] == '=')
			return true;
	}
	return false;
}

char **vdpalu_exec_env(char *const *base, char *const *vars)
{
	size_t nb = 0, nv = 0, i, k = 0;
	char **env;

	while (base && base[nb])
		nb++;
	while (vars && vars[nv])
		nv++;
	env = calloc(nb + nv + 1, sizeof(*env));
	if (!env) {
		vdpalu_fail(ENOMEM, "no memory for an environment of %zu strings", nb + nv);
		return NULL;
	}
	for (i = 0; i < nb; i++)
		if (!is_update_var(base[i]))
			env[k++] = base[i];
	for (i = 0; i < nv; i++)
		env[k++] = vars[i];
	return env;
}
