#!/bin/bash
# make check-qemu / make demo-qemu: boot the test VM once per vdpa_sim mode
# and run tests/vm/qemu_cpr.py inside (QEMU A -> B -> C by cpr-transfer with
# a nested guest's frames flowing, B killed before it takes ownership, a
# device without F_NEW_OWNER, Debian's QEMU 7.2 on the same guest).
#
# Usage: qemu/check-qemu.sh [--demo] [MODE...]   (default modes: pa-batch va-batch)
# Prints "N passed, N failed, N skipped" and exits non-zero on a failure.
set -uo pipefail
. "$(dirname "$0")/../testbed/lib.sh"

demo=0
[ "${1:-}" = --demo ] && { demo=1; shift; }
declare -A modes=(
	[pa-batch]="vdpa_sim.use_va=0 vdpa_sim.batch_mapping=1"
	[va-batch]="vdpa_sim.use_va=1 vdpa_sim.batch_mapping=1"
	[pa-map]="vdpa_sim.use_va=0 vdpa_sim.batch_mapping=0"
	[va-map]="vdpa_sim.use_va=1 vdpa_sim.batch_mapping=0"
)
order=(pa-batch va-batch)
[ $# -gt 0 ] && order=("$@")
[ -x "$BUILD/qemu-build/qemu-system-x86_64" ] || die "no patched QEMU: run 'make qemu'"
[ -f "$BUILD/nested/initramfs.cpio" ] || die "no nested guest: run 'make nested-guest'"

step "QEMU under test: $("$BUILD/qemu-build/qemu-system-x86_64" --version | head -1) (Debian $(cat "$BUILD/qemu-build/debian-version" 2>/dev/null))"
results=$BUILD/check-qemu
rm -rf "$results" && mkdir -p "$results"
logs=() extra_fail=0
for m in "${order[@]}"; do
	[ -n "${modes[$m]:-}" ] || die "unknown mode $m (one of ${!modes[*]})"
	if [ $demo = 1 ]; then
		job=$TOP/qemu/demo-job.sh
	else
		job=$TOP/testbed/vm-tests.sh
	fi
	step "VM run $m: ${modes[$m]}"
	start=$(date +%s)
	"$TOP/testbed/run-vm.sh" --name "qemu-$m" \
		--append "${modes[$m]} BUILD=$BUILD lu_selftests=none lu_top=$TOP lu_suites=$TOP/tests/vm/qemu-cpr.sh lu_filter= lu_qemu_cases=${QEMU_CASES:-} lu_qemu_frames=${QEMU_FRAMES:-}" \
		"$job"
	status=$?
	step "VM run $m: $(( $(date +%s) - start )) s"
	logs+=("$BUILD/vm/qemu-$m/output.log")
	[ $demo = 1 ] && cat "$BUILD/vm/qemu-$m/output.log"
	case $status in
	0) ;;
	124) echo "FAIL $m: the watchdog stopped the VM" >&2; extra_fail=$((extra_fail + 1)) ;;
	125) echo "FAIL $m: the kernel logged a report (above)" >&2; extra_fail=$((extra_fail + 1)) ;;
	*) echo "FAIL $m: the VM job ended with status $status" >&2; extra_fail=$((extra_fail + 1)) ;;
	esac
done
[ $demo = 1 ] && exit $(( extra_fail > 0 ))
step "summary"
read -r pass fail skip < <("$TOP/testbed/summarize.sh" "${logs[@]}")
fail=$((fail + extra_fail))
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
