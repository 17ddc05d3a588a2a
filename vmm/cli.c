// SPDX-License-Identifier: GPL-2.0-or-later
/* Strict command-line values for the project's programs (see cli.h). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdpalu.h"
#include "cli.h"

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", program_invocation_short_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_getopt(int argc, char **argv, const struct option *options)
{
	int c;

	/* getopt's own messages would name the program by its path */
	opterr = 0;
	c = getopt_long(argc, argv, "", options, NULL);
	if (c != '?')
		return c;
	if (optopt && strchr(argv[optind - 1], '='))
		cli_error("option '%.*s' takes no value",
			  (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
	else if (optopt)
		cli_error("option '%s' needs a value", argv[optind - 1]);
	else
		cli_error("unknown option '%s'", argv[optind - 1]);
	return '?';
}

int cli_u64(const char *opt, const char *val, uint64_t min, uint64_t max,
	    uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* strtoull() takes "-1" as ULLONG_MAX and skips leading blanks. */
	if (!isdigit((unsigned char)val[0])) {
		cli_error("%s '%s': not a number", opt, val);
		return -1;
	}
	errno = 0;
	v = strtoull(val, &end, 10);
	if (*end) {
		cli_error("%s '%s': not a number", opt, val);
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		cli_error("%s '%s': out of range %" PRIu64 "..%" PRIu64,
			  opt, val, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_uint(const char *opt, const char *val, unsigned int min,
	     unsigned int max, unsigned int *out)
{
	uint64_t v;

	if (cli_u64(opt, val, min, max, &v))
		return -1;
	*out = v;
	return 0;
}

int cli_choice(const char *opt, const char *val, const char *const *choices)
{
	char list[128] = "";
	int i;

	for (i = 0; choices[i]; i++) {
		if (!strcmp(val, choices[i]))
			return i;
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%s%s", i ? ", " : "", choices[i]);
	}
	cli_error("%s '%s': not one of %s", opt, val, list);
	return -1;
}

int cli_mac(const char *opt, const char *val)
{
	unsigned int i;

	for (i = 0; i < 17; i++)
		if (i % 3 == 2 ? val[i] != ':' : !isxdigit((unsigned char)val[i]))
			break;
	if (i == 17 && !val[i])
		return 0;
	cli_error("%s '%s': not a MAC address (xx:xx:xx:xx:xx:xx)", opt, val);
	return -1;
}

int cli_no_operands(int argc, char **argv, int optind)
{
	if (optind >= argc)
		return 0;
	cli_error("unexpected argument '%s'", argv[optind]);
	return -1;
}

void cli_version(void)
{
	printf("%s %d.%d.%d (libvdpalu %d.%d.%d)\n", program_invocation_short_name,
	       VDPALU_VERSION_MAJOR, VDPALU_VERSION_MINOR, VDPALU_VERSION_PATCH,
	       VDPALU_VERSION_MAJOR, VDPALU_VERSION_MINOR, VDPALU_VERSION_PATCH);
}
