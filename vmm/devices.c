// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Creating vdpa_sim devices and binding them to vhost_vdpa: the vdpa tool
 * (iproute2) adds the device, sysfs picks the driver.  VIRTIO_VDPA is built
 * in and would grab a new device first, so autoprobe goes off and the
 * device is probed with driver_override = vhost_vdpa.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm.h"

#define SYS_VDPA "/sys/bus/vdpa"

static int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		vmm_err("open %s: %s", path, strerror(errno));
		return -1;
	}
	n = write(fd, val, strlen(val));
	close(fd);
	if (n != (ssize_t)strlen(val)) {
		vmm_err("write '%s' to %s: %s", val, path, strerror(errno));
		return -1;
	}
	return 0;
}

static int run_command(char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		vmm_err("%s %s %s ... failed (status %#x)", argv[0], argv[1],
			argv[2], status);
		return -1;
	}
	return 0;
}

int dev_create(const char *type, const char *name, const char *mac,
	       char *path, size_t len)
{
	char p[256], drv[256];
	const char *mgmt;
	glob_t gl;
	ssize_t n;

	if (!strcmp(type, "net"))
		mgmt = "vdpasim_net";
	else if (!strcmp(type, "blk"))
		mgmt = "vdpasim_blk";
	else if (!strcmp(type, "vduse"))
		mgmt = "vduse";		/* created by vdpa-lu-vduse-blk first */
	else {
		vmm_err("unknown device type %s (net, blk or vduse)", type);
		return -1;
	}
	if (sysfs_write(SYS_VDPA "/drivers_autoprobe", "0"))
		return -1;
	snprintf(p, sizeof(p), SYS_VDPA "/devices/%s", name);
	if (access(p, F_OK)) {
		char *add_net[] = { "vdpa", "dev", "add", "mgmtdev", (char *)mgmt,
				    "name", (char *)name, "mac",
				    (char *)(mac ? mac : "02:00:00:00:00:10"),
				    NULL };
		char *add_blk[] = { "vdpa", "dev", "add", "mgmtdev", (char *)mgmt,
				    "name", (char *)name, NULL };

		if (run_command(!strcmp(type, "net") ? add_net : add_blk))
			return -1;
	}
	snprintf(p, sizeof(p), SYS_VDPA "/devices/%s/driver", name);
	n = readlink(p, drv, sizeof(drv) - 1);
	drv[n > 0 ? n : 0] = '\0';
	if (n > 0 && strcmp(basename(drv), "vhost_vdpa")) {
		snprintf(p, sizeof(p), SYS_VDPA "/devices/%s/driver/unbind", name);
		if (sysfs_write(p, name))
			return -1;
		n = 0;
	}
	if (n <= 0) {
		snprintf(p, sizeof(p), SYS_VDPA "/devices/%s/driver_override",
			 name);
		if (sysfs_write(p, "vhost_vdpa") ||
		    sysfs_write(SYS_VDPA "/drivers_probe", name))
			return -1;
	}
	snprintf(p, sizeof(p), SYS_VDPA "/devices/%s/vhost-vdpa-*", name);
	if (glob(p, 0, NULL, &gl) || gl.gl_pathc != 1) {
		vmm_err("%s: no vhost-vdpa device after binding", name);
		return -1;
	}
	snprintf(path, len, "/dev/%s", basename(gl.gl_pathv[0]));
	globfree(&gl);
	return 0;
}

int dev_destroy(const char *name)
{
	char *del[] = { "vdpa", "dev", "del", (char *)name, NULL };

	return run_command(del);
}
