#!/bin/bash
# Check the test bed's own alarms, so a green `make check` means something:
# a kernel WARNING fails a run, a kernel crash fails a run, and a hung job
# is stopped by the watchdog, which names the test that hung, and a guest
# that never reaches its job is stopped at the boot timeout, and QEMU does
# not outlive a run-vm.sh that is terminated or killed. TAP output.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

jobs=$BUILD/testbed/selftest
mkdir -p "$jobs"
. "$TOP/testbed/tap.sh"

# printk through /dev/kmsg lands in the kernel log exactly like a WARN_ON()
# splat's first line, which is what the detector keys on.
echo 'echo "WARNING: CPU: 0 PID: 1 at testbed/selftest.sh:0 fake_warning" > /dev/kmsg' > "$jobs/warn.sh"
"$TOP/testbed/run-vm.sh" --name selftest-warn "$jobs/warn.sh" >/dev/null 2>&1
tap_ok $(( $? != 120 )) "a kernel WARNING during a passing job fails the run (status 120)"

echo 'echo c > /proc/sysrq-trigger' > "$jobs/crash.sh"
"$TOP/testbed/run-vm.sh" --name selftest-crash "$jobs/crash.sh" >/dev/null 2>"$jobs/crash.err"
s=$?
grep -q "Kernel panic" "$jobs/crash.err"
tap_ok $(( s == 0 || $? != 0 )) "a kernel crash fails the run and its report is shown (status $s)"

printf 'echo "#  RUN           hang.forever ..."\nsleep 600\n' > "$jobs/hang.sh"
"$TOP/testbed/run-vm.sh" --name selftest-hang --timeout 25 "$jobs/hang.sh" >/dev/null 2>"$jobs/hang.err"
s=$?
grep -q "last test started: #  RUN           hang.forever" "$jobs/hang.err"
tap_ok $(( s != 124 || $? != 0 )) "the watchdog stops a hung VM and names the test (status $s)"
# init=/bin/cat: PID 1 blocks reading a console nobody types on, so the
# job never starts, as with a kernel that hangs during boot.
echo 'echo never' > "$jobs/boot.sh"
"$TOP/testbed/run-vm.sh" --name selftest-boot --boot-timeout 20 --append init=/bin/cat \
	"$jobs/boot.sh" >/dev/null 2>"$jobs/boot.err"
s=$?
grep -q "did not reach its job within 20s" "$jobs/boot.err" && grep -q "Run /bin/cat as init" "$jobs/boot.err"
tap_ok $(( s != 121 || $? != 0 )) "a guest that does not reach its job is stopped at the boot timeout, console tail shown (status $s)"

# QEMU's command line names the results directory: "path=<dir>,".
vm_qemu() { pgrep -f -- "path=$BUILD/vm/$1,security_model" || true; }
printf 'sleep 600\n' > "$jobs/sleep.sh"
for sig in TERM KILL; do
	rm -rf "$BUILD/vm/selftest-$sig"	# no "running" from a run before
	"$TOP/testbed/run-vm.sh" --name "selftest-$sig" "$jobs/sleep.sh" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 120); do
		grep -qs '^lu-vm: running' "$BUILD/vm/selftest-$sig/output.log" && break
		sleep 1
	done
	before=$(vm_qemu "selftest-$sig")
	kill -"$sig" $pid
	wait $pid 2>/dev/null
	sleep 3
	left=$(vm_qemu "selftest-$sig")
	[ -n "$before" ] && [ -z "$left" ]
	tap_ok $? "QEMU stops with run-vm.sh on SIG$sig (QEMU pid ${before:-not found}, left: ${left:-none})"
	[ -z "$left" ] || kill -KILL $left
done
tap_done
