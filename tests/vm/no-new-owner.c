// SPDX-License-Identifier: GPL-2.0
/*
 * LD_PRELOAD shim for QEMU: VHOST_GET_BACKEND_FEATURES answers without
 * VHOST_BACKEND_F_NEW_OWNER and VHOST_BACKEND_F_IOTLB_REMAP, and
 * VHOST_NEW_OWNER does not exist (ENOTTY): what QEMU sees on a kernel
 * without the live-update series, on the test VM's patched kernel.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <linux/vhost.h>

int ioctl(int fd, unsigned long request, ...)
{
	static int (*real_ioctl)(int, unsigned long, ...);
	va_list ap;
	void *arg;
	int ret;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real_ioctl)
		real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	if (request == VHOST_NEW_OWNER) {
		errno = ENOTTY;
		return -1;
	}
	ret = real_ioctl(fd, request, arg);
	if (ret == 0 && request == VHOST_GET_BACKEND_FEATURES)
		*(uint64_t *)arg &= ~((1ULL << VHOST_BACKEND_F_NEW_OWNER) |
				      (1ULL << VHOST_BACKEND_F_IOTLB_REMAP));
	return ret;
}
