# TAP for the shell suites (the test bed's, tests/vm's, tests/unit's).
# Sourced, not run.
#   tap_ok STATUS NAME       "ok N - NAME" if STATUS is 0, else "not ok"
#   tap_check NAME CMD...    run CMD, tap_ok its status
#   tap_diag                 stdin as "# " lines
#   tap_done                 the plan and "P passed, F failed"; status 1 on a failure
# shellcheck shell=bash
tap_n=0 tap_failed=0

tap_ok() {
	tap_n=$((tap_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $tap_n - $2"
	else
		echo "not ok $tap_n - $2"
		tap_failed=$((tap_failed + 1))
	fi
}

tap_check() {
	local name=$1
	shift
	"$@"
	tap_ok $? "$name"
}

tap_diag() { sed 's/^/# /'; }

tap_done() {
	echo "1..$tap_n"
	echo "$((tap_n - tap_failed)) passed, $tap_failed failed"
	[ $tap_failed = 0 ]
}
