#!/bin/bash
# Guest side of `make check`: run the kernel selftests and the userspace
# end-to-end suites, each framed by "lu-test:" lines that
# testbed/summarize.sh reads on the host. Environment (from the kernel
# command line): lu_selftests = kselftest install directory, with
# run_kselftest.sh ("none": this run has only suites),
# lu_suites = extra TAP-printing scripts (colon-separated), lu_filter =
# optional substring of program names to run.
: "${lu_selftests:?}"

ran=0
run() {
	local name=$1; shift
	ran=$((ran + 1))
	echo "lu-test: running $name"
	"$@"
	echo "lu-test: $name exit=$?"
}

. "$lu_top/testbed/tap.sh"
. "$lu_top/testbed/guest.sh"
echo "lu-test: kernel $(uname -r), vdpa_sim $(vdpa_sim_mode)"
# The selftests run through kselftest's runner, as kernel developers run
# them (with the timeout of their settings file); lu_filter picks tests of
# its list. A runner that is missing fails, as a crash would.
if [ "$lu_selftests" = none ]; then
	:
elif [ -x "$lu_selftests/run_kselftest.sh" ] && [ -s "$lu_selftests/kselftest-list.txt" ]; then
	picked=()
	while read -r t; do
		[ -z "$lu_filter" ] || [[ ${t#*:} == *"$lu_filter"* ]] && picked+=(-t "$t")
	done < "$lu_selftests/kselftest-list.txt"
	[ ${#picked[@]} = 0 ] || run selftests "$lu_selftests/run_kselftest.sh" "${picked[@]}"
else
	echo "Bail out! no kselftest runner and test list in $lu_selftests"
fi
IFS=: read -ra suites <<< "${lu_suites:-}"
for s in "${suites[@]}"; do
	[ -n "$s" ] || continue
	[ -n "$lu_filter" ] && [[ $s != *"$lu_filter"* ]] && continue
	if [ -f "$s" ]; then
		run "${s#"$lu_top"/}" bash "$s"
	else
		echo "Bail out! suite $s is missing"
	fi
done
# A filter that matches nothing would leave only the pin check to pass.
[ $ran -gt 0 ] || echo "Bail out! lu_filter='$lu_filter' matches no selftest and no suite"
# A leak of pinned pages shows here even when every test passed.
echo "lu-test: running pin-balance"
pins_balanced
tap_ok $? "pin-balance: nr_foll_pin_acquired $pin_acquired, nr_foll_pin_released $pin_released after all tests"
tap_done
echo "lu-test: pin-balance exit=$?"
