// SPDX-License-Identifier: GPL-2.0
/*
 * LD_PRELOAD shim for QEMU: a device that offers less than vdpa_sim does,
 * on the test VM's patched kernel.  LU_SHIM_HIDE names what is hidden:
 *
 *   new-owner  VHOST_GET_BACKEND_FEATURES answers without
 *              VHOST_BACKEND_F_NEW_OWNER and VHOST_BACKEND_F_IOTLB_REMAP,
 *              and VHOST_NEW_OWNER does not exist (ENOTTY): a kernel
 *              without the live-update series
 *   resume     VHOST_BACKEND_F_RESUME is not offered and VHOST_VDPA_RESUME
 *              fails with EOPNOTSUPP, as for a parent without a resume op:
 *              a device that can be suspended but only restarted by a reset
 *              (the reset flow)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/vhost.h>

int ioctl(int fd, unsigned long request, ...)
{
	static int (*real_ioctl)(int, unsigned long, ...);
	static bool no_new_owner, no_resume;
	va_list ap;
	void *arg;
	int ret;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real_ioctl) {
		const char *hide = getenv("LU_SHIM_HIDE");

		no_new_owner = hide && !strcmp(hide, "new-owner");
		no_resume = hide && !strcmp(hide, "resume");
		if (hide && !no_new_owner && !no_resume) {
			/* A misspelt value would test the full device */
			fprintf(stderr, "backend-shim: LU_SHIM_HIDE=%s: not new-owner or resume\n",
				hide);
			abort();
		}
		real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	}
	if (no_new_owner && request == VHOST_NEW_OWNER) {
		errno = ENOTTY;
		return -1;
	}
	if (no_resume && request == VHOST_VDPA_RESUME) {
		errno = EOPNOTSUPP;
		return -1;
	}
	ret = real_ioctl(fd, request, arg);
	if (ret == 0 && request == VHOST_GET_BACKEND_FEATURES) {
		if (no_new_owner)
			*(uint64_t *)arg &= ~((1ULL << VHOST_BACKEND_F_NEW_OWNER) |
					      (1ULL << VHOST_BACKEND_F_IOTLB_REMAP));
		if (no_resume)
			*(uint64_t *)arg &= ~(1ULL << VHOST_BACKEND_F_RESUME);
	}
	return ret;
}
