// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The transfer method's socket protocol, as QEMU's cpr-transfer uses a
 * UNIX socket: the old image connects to SOCKET.N (N: updates done so
 * far), sends one message, XFER_MAGIC and a count, with the blob fd and
 * every fd the blob names as SCM_RIGHTS; the new image answers one byte,
 * 'K', once it owns the device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm.h"

#define XFER_MAGIC	0x4c555846	/* "FXUL" */

static int sock_path(struct sockaddr_un *sa, const char *base, unsigned int i)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	return snprintf(sa->sun_path, sizeof(sa->sun_path), "%s.%u", base, i) >=
	       (int)sizeof(sa->sun_path) ? -1 : 0;
}

/*
 * Send the blob fd @fds[0] and the @n - 1 fds it names to the process
 * listening at @base.@i; the connected socket, for its acknowledgement.
 */
int xfer_send(const char *base, unsigned int i, const int *fds, unsigned int n)
{
	union {
		char buf[CMSG_SPACE(MAX_XFER_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	uint32_t hdr[2] = { XFER_MAGIC, n };
	struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(hdr) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = CMSG_SPACE(n * sizeof(int)),
	};
	struct sockaddr_un sa;
	struct cmsghdr *c;
	int s, tries;

	if (sock_path(&sa, base, i)) {
		vmm_err("socket path %s.%u is too long", base, i);
		return -1;
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	/* The new process may still be starting: wait for its socket. */
	for (tries = 0; connect(s, (void *)&sa, sizeof(sa)); tries++) {
		if (tries == 600) {
			vmm_err("connect %s: %s", sa.sun_path, strerror(errno));
			close(s);
			return -1;
		}
		usleep(100000);
	}
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	if (sendmsg(s, &msg, 0) != sizeof(hdr)) {
		vmm_err("sendmsg: %s", strerror(errno));
		close(s);
		return -1;
	}
	return s;
}

/*
 * Listen at @path for one handover: the fds into @fds (*@nr of them, the
 * blob first); the connected socket, to acknowledge on.
 */
int xfer_receive(const char *path, int *fds, unsigned int *nr)
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

