/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kselftest harness of the extracted kernel tree (kselftest_harness.h,
 * -I$(KTREE)/tools/testing/selftests), with what the unit tests need on
 * top of it: an errno assertion.
 */
#ifndef UNIT_H
#define UNIT_H

#include "kselftest_harness.h"

/*
 * @expr fails with -1 and errno @err.  errno is saved right after @expr,
 * before anything the harness logs can change it.  Like ASSERT_EQ(), an
 * optional statement after it (TH_LOG(...)) runs only on a mismatch.
 */
#define __ERRNO(_err, _expr, _expr_str, _assert) do {			\
	int __want = (_err), __got;					\
	long __ret;							\
									\
	errno = 0;							\
	__ret = (long)(_expr);						\
	__got = errno;							\
	if (__ret != -1 || __got != __want) {				\
		__TH_LOG("%s: got %ld errno %d (%s), want -1 errno %d (%s)", \
			 _expr_str, __ret, __got, strerror(__got),	\
			 __want, strerror(__want));			\
		_metadata->exit_code = KSFT_FAIL;			\
		_metadata->trigger = 1;					\
	}								\
} while (0); OPTIONAL_HANDLER(_assert)

#define ASSERT_ERRNO(err, expr)	__ERRNO(err, expr, #expr, 1)
#define EXPECT_ERRNO(err, expr)	__ERRNO(err, expr, #expr, 0)

#endif
