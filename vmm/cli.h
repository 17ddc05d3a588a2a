/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Command-line parsing shared by vdpa-lu-vmm, vdpa-lu-vduse-blk and
 * vdpa-lu-blackout: a value is taken whole or refused, and a refusal names
 * the option and the value on stderr.  The parsers only record what they
 * read; the programs act once parsing is over.
 */
#ifndef VDPA_LU_CLI_H
#define VDPA_LU_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Exit status of a command-line error, as getopt's users have it. */
#define CLI_USAGE	2

/* "PROG: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * getopt_long() without short options, whose errors (returned as '?')
 * cli_error() prints: an unknown option, a missing or an unwanted value.
 */
struct option;
int cli_getopt(int argc, char **argv, const struct option *options);

/*
 * @val as a decimal number in [@min, @max] into @out: no sign, no "0x",
 * a leading 0 is not octal, no trailing characters, no overflow.  On error
 * print which option and value and why, and return -1.
 */
int cli_u64(const char *opt, const char *val, uint64_t min, uint64_t max,
	    uint64_t *out);
int cli_uint(const char *opt, const char *val, unsigned int min,
	     unsigned int max, unsigned int *out);
/* Index of @val in the NULL-terminated @choices, or -1 after an error. */
int cli_choice(const char *opt, const char *val, const char *const *choices);
/* A MAC address, six hex pairs separated by colons; 0 or -1 (said). */
int cli_mac(const char *opt, const char *val);
/* Refuse operands after the options (argv[optind] on); -1 if any. */
int cli_no_operands(int argc, char **argv, int optind);
/* "PROG VERSION (libvdpalu X.Y.Z)" on stdout. */
void cli_version(void);

#endif /* VDPA_LU_CLI_H */
