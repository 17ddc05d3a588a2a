#!/bin/bash
# Host side of `make check`: boot the test kernel once per vdpa_sim mode
# (use_va and batch_mapping are boot-time parameters), run the kernel
# selftests and the userspace suite in each, and print one summary line.
#
# Usage: check.sh [MODE...]   MODE is pa-batch, va-batch, pa-map, va-map
# Environment: LU_FILTER=substring to run only matching test programs;
#              LU_HOST_TESTS="cmd" a host command printing TAP (run first);
#              LU_TESTBED_SELFTEST=0 skips the test bed's check of its alarms.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

declare -A modes=(
	[pa-batch]="vdpa_sim.use_va=0 vdpa_sim.batch_mapping=1"
	[va-batch]="vdpa_sim.use_va=1 vdpa_sim.batch_mapping=1"
	[pa-map]="vdpa_sim.use_va=0 vdpa_sim.batch_mapping=0"
	[va-map]="vdpa_sim.use_va=1 vdpa_sim.batch_mapping=0"
)
order=(pa-batch va-batch pa-map va-map)
[ $# -gt 0 ] && order=("$@")

results=$BUILD/check
rm -rf "$results" && mkdir -p "$results"
logs=() extra_fail=0

# Host-side stages, framed like the VM runs so one summary counts them all.
host_stage() {
	local name=$1 cmd=$2
	step "$name: $cmd"
	{
		echo "lu-test: running $name"
		bash -c "$cmd"
		echo "lu-test: $name exit=$?"
	} 2>&1 | tee "$results/$name.log"
	logs+=("$results/$name.log")
}
[ -n "${LU_HOST_TESTS:-}" ] && host_stage host-tests "$LU_HOST_TESTS"
[ "${LU_TESTBED_SELFTEST:-1}" = 1 ] && host_stage testbed-selftest "$TOP/testbed/selftest.sh"

suites=()
for s in "$TOP"/tests/vm/smoke.sh "$TOP"/tests/vm/run.sh "$TOP"/tests/vm/stress.sh; do
	[ -f "$s" ] && suites+=("$s")
done
suites_arg=$(IFS=:; echo "${suites[*]:-}")
# The stress suite's knobs reach the guest's environment as kernel
# command-line words, only when set.
stress_env=""
for v in STRESS_OPS STRESS_SEED STRESS_RACE_ROUNDS STRESS_KILL_METHODS; do
	[ -n "${!v:-}" ] && stress_env="$stress_env $v=${!v}"
done

for m in "${order[@]}"; do
	[ -n "${modes[$m]:-}" ] || die "unknown mode $m (one of ${!modes[*]})"
	step "VM run $m: ${modes[$m]}"
	"$TOP/testbed/run-vm.sh" --name "check-$m" \
		--append "${modes[$m]} BUILD=$BUILD lu_selftests=$BUILD/selftests/vhost_vdpa lu_top=$TOP lu_suites=$suites_arg lu_filter=${LU_FILTER:-}$stress_env" \
		"$TOP/testbed/vm-tests.sh"
	status=$?
	logs+=("$BUILD/vm/check-$m/output.log")
	case $status in
	0) ;;
	124) echo "FAIL $m: the watchdog stopped the VM" >&2; extra_fail=$((extra_fail + 1)) ;;
	125) echo "FAIL $m: the kernel logged a report (above)" >&2; extra_fail=$((extra_fail + 1)) ;;
	*) echo "FAIL $m: the VM job ended with status $status" >&2; extra_fail=$((extra_fail + 1)) ;;
	esac
done

step "summary"
read -r pass fail skip < <("$TOP/testbed/summarize.sh" "${logs[@]}")
fail=$((fail + extra_fail))
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
