/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Minimal TAP for host-side unit tests: ok()/is_errno(), summary line. */
#ifndef TAP_H
#define TAP_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...) do {						\
	int _c = !!(cond);						\
	tap_n++;							\
	if (!_c)							\
		tap_failed++;						\
	printf("%sok %d - ", _c ? "" : "not ", tap_n);			\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	if (!_c)							\
		printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
} while (0)

/* @expr must fail with -1 and errno @err. */
#define is_errno(err, expr, ...) do {					\
	errno = 0;							\
	long _r = (long)(expr);						\
	int _e = errno;							\
	ok(_r == -1 && _e == (err), __VA_ARGS__);			\
	if (!(_r == -1 && _e == (err)))					\
		printf("#   got %ld errno %d (%s), want errno %d (%s)\n", \
		       _r, _e, strerror(_e), err, strerror(err));	\
} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	printf("%d passed, %d failed\n", tap_n - tap_failed, tap_failed);
	return tap_failed ? 1 : 0;
}

#endif
