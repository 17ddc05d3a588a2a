# shellcheck shell=bash
# How long lu-random may take, sourced by stress.sh in the VM and by the
# Makefile's check-stress, whose VM watchdog must outlast it.
#
# 30 minutes for each 10000 operations: make check's pa-batch boot took 12
# of them on the test kernel, and a KASAN kernel is several times slower.
stress_random_limit() {
	# shellcheck disable=SC2017 # rounded up to whole 10000s on purpose
	echo $(( ($1 + 9999) / 10000 * 1800 ))
}
