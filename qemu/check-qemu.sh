#!/bin/bash
# make check-qemu / make demo-qemu: boot the test VM once per vdpa_sim mode
# and run tests/vm/qemu_cpr.py inside (QEMU A -> B -> C by cpr-transfer with
# a nested guest's frames flowing, B killed before it takes ownership, a
# device without F_NEW_OWNER, a live migration to a second device, Debian's
# QEMU 7.2 on the same guest).
#
# Usage: qemu/check-qemu.sh [--demo] [MODE...]   (default modes: pa-batch va-batch)
# Environment: QEMU_CASES (qemu_cpr.py --cases; all by default),
#              QEMU_FRAMES (frames each nested guest sends, 6000).
# Prints "N passed, N failed, N skipped" and exits non-zero on a failure.
set -uo pipefail
. "$(dirname "$0")/../testbed/lib.sh"

demo=0
[ "${1:-}" = --demo ] && { demo=1; shift; }
order=(pa-batch va-batch)
[ $# -gt 0 ] && order=("$@")
for m in "${order[@]}"; do
	[ -n "${VM_MODES[$m]:-}" ] || die "unknown mode $m (one of ${!VM_MODES[*]})"
done
[ -x "$BUILD/qemu-build/qemu-system-x86_64" ] || die "no patched QEMU: run 'make qemu'"
[ -f "$BUILD/nested/initramfs.cpio" ] || die "no nested guest: run 'make nested-guest'"
[ -z "${QEMU_FRAMES:-}" ] || [[ $QEMU_FRAMES =~ ^[1-9][0-9]*$ ]] ||
	die "QEMU_FRAMES '$QEMU_FRAMES': not a number of frames"
if [ -n "${QEMU_CASES:-}" ]; then
	FRAMES=${QEMU_FRAMES:-6000} python3 "$TOP/tests/vm/qemu_cpr.py" --check --cases "$QEMU_CASES" ||
		die "QEMU_CASES '$QEMU_CASES'"
fi

step "QEMU under test: $("$BUILD/qemu-build/qemu-system-x86_64" --version | head -1) (Debian $(cat "$BUILD/qemu-build/debian-version" 2>/dev/null))"
results=$BUILD/check-qemu
rm -rf "$results" && mkdir -p "$results"
logs=() extra_fail=0
for m in "${order[@]}"; do
	if [ $demo = 1 ]; then
		job=$TOP/qemu/demo-job.sh
	else
		job=$TOP/testbed/vm-tests.sh
	fi
	step "VM run $m: ${VM_MODES[$m]}"
	start=$(date +%s)
	# pdeathsig: if this script is killed, run-vm.sh is told and stops QEMU.
	setpriv --pdeathsig TERM "$TOP/testbed/run-vm.sh" --name "qemu-$m" \
		--append "${VM_MODES[$m]} BUILD=$BUILD lu_selftests=none lu_top=$TOP lu_suites=$TOP/tests/vm/qemu-cpr.sh lu_filter= lu_qemu_cases=${QEMU_CASES:-} lu_qemu_frames=${QEMU_FRAMES:-}" \
		"$job"
	status=$?
	step "VM run $m: $(( $(date +%s) - start )) s"
	logs+=("$BUILD/vm/qemu-$m/output.log")
	[ $demo = 1 ] && cat "$BUILD/vm/qemu-$m/output.log"
	[ $status = 0 ] || { echo "FAIL $m: $(vm_failure $status)" >&2; extra_fail=$((extra_fail + 1)); }
done
[ $demo = 1 ] && exit $(( extra_fail > 0 ))
step "summary"
read -r pass fail skip < <("$TOP/testbed/summarize.sh" "${logs[@]}")
fail=$((fail + extra_fail))
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
