#!/bin/bash
# Host side of `make check`: boot the test kernel once per vdpa_sim mode
# (use_va and batch_mapping are boot-time parameters), run the kernel
# selftests and the userspace suite in each, and print one summary line.
#
# Usage: check.sh [MODE...]   MODE is pa-batch, va-batch, pa-map, va-map
# (VM_MODES in lib.sh)
# Environment: LU_FILTER=substring to run only matching test programs;
#              LU_HOST_TESTS="cmd" a host command printing TAP (run first);
#              LU_TESTBED_SELFTEST=0 skips the test bed's check of its alarms;
#              LU_UAPI_CHECK=0 skips the check that lib/uapi is current;
#              LU_QEMU="MODE=CASES ..." the boots that also run QEMU's
#              cpr-transfer suite (tests/vm/qemu-cpr.sh) and its cases;
#              LU_QEMU_FRAMES the frames each nested guest sends (6000).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

order=("${VM_MODE_ORDER[@]}")
[ $# -gt 0 ] && order=("$@")
# Before anything runs: a typo must not cost the boots that precede it.
"$TOP/testbed/preflight.sh" --modes "${order[@]}" || exit 1

declare -A qemu_cases=()
for w in ${LU_QEMU:-}; do
	[[ $w == ?*=?* ]] || die "LU_QEMU word '$w': want MODE=CASE,CASE"
	# A misspelt mode would run no QEMU case and pass.
	[ -n "${VM_MODES[${w%%=*}]:-}" ] || die "LU_QEMU word '$w': no mode ${w%%=*} (one of ${!VM_MODES[*]})"
	qemu_cases[${w%%=*}]=${w#*=}
done
if [ ${#qemu_cases[@]} -gt 0 ]; then
	[ -x "$BUILD/qemu-build/qemu-system-x86_64" ] || die "LU_QEMU without a patched QEMU: run 'make qemu'"
	[ -f "$BUILD/nested/initramfs.cpio" ] || die "LU_QEMU without a nested guest: run 'make nested-guest'"
	[ -z "${LU_QEMU_FRAMES:-}" ] || [[ $LU_QEMU_FRAMES =~ ^[1-9][0-9]*$ ]] ||
		die "LU_QEMU_FRAMES '$LU_QEMU_FRAMES': not a number of frames"
	# A misspelt case fails here, not in the VM after the boots before it.
	for m in "${!qemu_cases[@]}"; do
		FRAMES=${LU_QEMU_FRAMES:-6000} python3 "$TOP/tests/vm/qemu_cpr.py" --check \
			--cases "${qemu_cases[$m]}" || die "LU_QEMU word '$m=${qemu_cases[$m]}'"
		[[ " ${order[*]} " == *" $m "* ]] ||
			step "note: QEMU cases of $m not run: MODES does not boot $m"
	done
fi

results=$BUILD/check
rm -rf "$results" && mkdir -p "$results"
logs=() extra_fail=0

# SIGTERM or Ctrl-C stops what runs before this script goes: a host stage
# in its own process group with whatever it started (the test bed's
# self-test boots VMs), or run-vm.sh, which stops its QEMU.  Both run in
# the background so that the trap runs at once, not when they end.
child='' child_group=''
stop_child() {
	trap - TERM INT
	if [ -n "$child" ]; then
		kill -TERM -- "$child_group$child" 2>/dev/null
		wait "$child"
	fi
	exit "$1"
}
trap 'stop_child 143' TERM
trap 'stop_child 130' INT
# Wait for the background job PID (GROUP "-": its process group too), which
# the trap stops; its exit status.
wait_child() {
	local status
	child=$1 child_group=${2:-}
	wait "$child"
	status=$?
	child='' child_group=''
	return $status
}

# Host-side stages, framed like the VM runs so one summary counts them all.
host_stage() {
	local name=$1 cmd=$2 log=$results/$1.log status out tee_pid
	step "$name: $cmd"
	echo "lu-test: running $name" | tee "$log"
	exec {out}> >(tee -a "$log")
	tee_pid=$!
	setsid bash -c "$cmd" >&$out 2>&1 &
	wait_child $! -
	status=$?
	# All of the stage's output is in the log before its exit line.
	exec {out}>&-
	wait $tee_pid
	echo "lu-test: $name exit=$status" | tee -a "$log"
	logs+=("$log")
}
[ -n "${LU_HOST_TESTS:-}" ] && host_stage host-tests "$LU_HOST_TESTS"
[ "${LU_UAPI_CHECK:-1}" = 1 ] && host_stage uapi-headers "$TOP/testbed/uapi-headers.sh --check"
[ "${LU_TESTBED_SELFTEST:-1}" = 1 ] && host_stage testbed-selftest "$TOP/testbed/selftest.sh"

suites=("$TOP"/tests/vm/smoke.sh "$TOP"/tests/vm/run.sh "$TOP"/tests/vm/stress.sh)
for s in "${suites[@]}"; do
	[ -f "$s" ] || die "$s is missing: a suite that is not there does not pass"
done
suites_arg=$(IFS=:; echo "${suites[*]}")
# The stress suite's knobs reach the guest's environment as kernel
# command-line words, only when set.
stress_env=""
for v in STRESS_OPS STRESS_SEED STRESS_RACE_ROUNDS STRESS_KILL_METHODS; do
	[ -n "${!v:-}" ] && stress_env="$stress_env $v=${!v}"
done

for m in "${order[@]}"; do
	step "VM run $m: ${VM_MODES[$m]}"
	start=$SECONDS
	mode_suites=$suites_arg qemu_env=""
	if [ -n "${qemu_cases[$m]:-}" ]; then
		mode_suites=$suites_arg:$TOP/tests/vm/qemu-cpr.sh
		qemu_env=" lu_qemu_cases=${qemu_cases[$m]} lu_qemu_frames=${LU_QEMU_FRAMES:-}"
	fi
	# pdeathsig: if this script is killed, run-vm.sh is told and stops QEMU.
	setpriv --pdeathsig TERM "$TOP/testbed/run-vm.sh" --name "check-$m" \
		--append "${VM_MODES[$m]} BUILD=$BUILD lu_selftests=$BUILD/kselftest lu_top=$TOP lu_suites=$mode_suites lu_filter=${LU_FILTER:-}$stress_env$qemu_env" \
		"$TOP/testbed/vm-tests.sh" &
	wait_child $!
	status=$?
	step "VM run $m: $((SECONDS - start)) s"
	logs+=("$BUILD/vm/check-$m/output.log")
	[ $status = 0 ] || { echo "FAIL $m: $(vm_failure $status)" >&2; extra_fail=$((extra_fail + 1)); }
done

step "summary"
read -r pass fail skip < <("$TOP/testbed/summarize.sh" "${logs[@]}")
fail=$((fail + extra_fail))
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
