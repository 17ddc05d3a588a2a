#!/bin/bash
# Boot the test kernel in QEMU with the host root read-only over 9p and run
# one job script inside.
#
# Usage: run-vm.sh [--name N] [--append WORDS] [--timeout S] [--boot-timeout S] [--mem SIZE]
#                  [--smp N] [--interactive] JOB
#   JOB      bash script run by the guest's init, as root, output to the host
#   --name   results directory build/vm/N (console.log, output.log, status)
#   --append extra kernel command-line words (vdpa_sim.use_va=1, FOO=bar ...)
#   --timeout  seconds the job may run before the watchdog stops the VM,
#              counted from the job's start (VM_TIMEOUT, 1800)
#   --boot-timeout seconds for the guest to reach its job (VM_BOOT_TIMEOUT, 300)
# Environment: KVM=1 to use /dev/kvm instead of TCG; KOBJ for the kernel.
#
# Exit status, chosen so that `git bisect run` reads it right (0 good,
# 1-127 except 125 bad, 125 skip, 128 and above abort the bisection):
#   0        the job passed and the kernel logged no report
#   1-119    the job failed with this status (a status above 119 is 119)
#   120      the job passed but the kernel logged a report (WARNING, BUG, ...)
#   121      the guest did not reach its job within the boot timeout
#   122      the VM ended before the job did (panic, crash): no status
#   124      the watchdog stopped the VM
#   125      this commit can't be tested: no kernel built, no QEMU, QEMU
#            failed to start
#   128      a wrong command (bad option, unusable path): fix it, not the kernel
#   130, 143 interrupted by SIGINT, SIGTERM; the VM was stopped
# A SIGTERM, Ctrl-C or exit of this script stops QEMU; QEMU also gets
# SIGKILL if this script is killed outright (setpriv --pdeathsig).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage_error() { printf 'run-vm.sh: %s\n' "$*" >&2; exit 128; }
cannot_test() { printf 'run-vm.sh: %s\n' "$*" >&2; exit 125; }
seconds() {	# OPTION VALUE: a whole number of seconds, or a usage error
	[[ $2 =~ ^[1-9][0-9]*$ ]] || usage_error "$1 '$2': not a number of seconds"
	echo "$2"
}

name=run append="" timeout=${VM_TIMEOUT:-1800} boot_timeout=${VM_BOOT_TIMEOUT:-300} mem=${VM_MEM:-2G} smp=2 interactive=0
while [ $# -gt 0 ]; do
	case $1 in
	--interactive) interactive=1; shift; continue ;;
	--) shift; break ;;
	--*) [ $# -ge 2 ] || usage_error "$1 needs a value" ;;
	*) break ;;
	esac
	case $1 in
	--name) name=$2 ;;
	--append) append="$append $2" ;;
	--timeout) timeout=$(seconds "$1" "$2") ;;
	--boot-timeout) boot_timeout=$(seconds "$1" "$2") ;;
	--mem) mem=$2 ;;
	--smp) smp=$2 ;;
	*) usage_error "unknown option $1" ;;
	esac
	shift 2
done
[ $# = 1 ] || usage_error "usage: run-vm.sh [options] JOB"
[ -f "$1" ] || usage_error "no job script $1"
job=$(realpath "$1")
# The guest covers /tmp, /root, /var/tmp and /run with tmpfs mounts; it
# brings these back on top (testbed/vm-init.sh), wherever they live.
keep=$TOP:$(realpath -m "$BUILD"):$(dirname "$job")
"$TOP/testbed/preflight.sh" --paths "$TOP" "$BUILD" "$(dirname "$job")" || exit 128
kernel=$KOBJ/arch/x86/boot/bzImage
[ -f "$kernel" ] || cannot_test "no kernel at $kernel: run 'make kernel'"
command -v qemu-system-x86_64 >/dev/null || cannot_test "no qemu-system-x86_64: run 'make deps'"

dir=$BUILD/vm/$name
{ rm -rf "$dir" && mkdir -p "$dir"; } || cannot_test "cannot make the results directory $dir"
# la57=off: KASAN and 5-level paging report a wild access in an interrupt
# taken during early boot under TCG (seen in about half the boots).
accel=(-accel tcg,thread=multi -cpu max,la57=off)
if [ "${KVM:-0}" = 1 ]; then
	accel=(-accel kvm -cpu host,-arch-capabilities)
fi
cmdline="console=ttyS0 root=root rootfstype=9p rootflags=trans=virtio,version=9p2000.L,cache=loose ro init=$TOP/testbed/vm-init.sh panic=-1 tsc=reliable lu_job=$job lu_cwd=$TOP lu_keep=$keep lu_interactive=$interactive$append"
# x86's COMMAND_LINE_SIZE: the kernel cuts a longer one short, silently.
[ ${#cmdline} -lt 2048 ] || usage_error "kernel command line of ${#cmdline} bytes, over the 2048 the kernel takes"
qemu=(qemu-system-x86_64 -machine q35 "${accel[@]}" -m "$mem" -smp "$smp"
	-no-reboot -display none -monitor none -nic none
	-kernel "$kernel"
	-append "$cmdline"
	-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap
	-device virtio-9p-pci,fsdev=root,mount_tag=root
	-fsdev local,id=out,path="$dir",security_model=none
	-device virtio-9p-pci,fsdev=out,mount_tag=out)

if [ $interactive = 1 ]; then
	exec "${qemu[@]}" -serial mon:stdio -serial file:"$dir/output.log"
fi

qpid='' tpid=''
# Under set -e: a kill of a process that is gone already must not turn
# the exit status into 1.
stop_vm() {
	if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; fi
	if [ -n "$tpid" ]; then kill "$tpid" 2>/dev/null || true; fi
}
trap stop_vm EXIT
trap 'echo "run-vm.sh: interrupted, stopping VM $name" >&2; exit 130' INT
trap 'echo "run-vm.sh: terminated, stopping VM $name" >&2; exit 143' TERM
: > "$dir/output.log"
setpriv --pdeathsig KILL "${qemu[@]}" -serial file:"$dir/console.log" -serial file:"$dir/output.log" &
qpid=$!
tail -n +1 -f --pid=$qpid "$dir/output.log" 2>/dev/null &
tpid=$!
# The watchdog's clock starts with the job, so that a slow boot on a loaded
# machine does not eat the job's time; until then the boot timeout rules.
boot_deadline=$(( $(date +%s) + boot_timeout )) booted=0
deadline=$(( boot_deadline + timeout ))
while kill -0 $qpid 2>/dev/null; do
	# A kernel that hangs or loops before init runs the job says nothing
	# on output.log: stop it after the boot timeout, not the watchdog's.
	if [ $booted = 0 ]; then
		if grep -q '^lu-vm: running' "$dir/output.log"; then
			booted=1 deadline=$(( $(date +%s) + timeout ))
		elif [ "$(date +%s)" -ge $boot_deadline ]; then
			kill $qpid 2>/dev/null || true
			wait $qpid 2>/dev/null || true
			wait $tpid 2>/dev/null || true
			echo "boot timeout: VM '$name' did not reach its job within ${boot_timeout}s, stopped it; console tail:" >&2
			tail -30 "$dir/console.log" >&2
			"$TOP/testbed/kernel-reports.sh" "$dir/console.log" || true
			exit 121
		fi
	fi
	if [ "$(date +%s)" -ge $deadline ]; then
		kill $qpid 2>/dev/null || true
		wait $qpid 2>/dev/null || true
		wait $tpid 2>/dev/null || true
		echo "watchdog: VM '$name' still running after ${timeout}s, stopped it" >&2
		hung=$(grep -aE '^(# )*# +RUN |^# selftests: |^lu-test: running' "$dir/output.log" | tail -1 || true)
		echo "watchdog: last test started: ${hung:-none}" >&2
		echo "watchdog: last kernel messages:" >&2
		tail -20 "$dir/console.log" >&2
		"$TOP/testbed/kernel-reports.sh" "$dir/console.log" || true
		exit 124
	fi
	sleep 1
done
qemu_status=0
wait $qpid || qemu_status=$?
wait $tpid 2>/dev/null || true
qpid='' tpid=''

if [ ! -f "$dir/status" ]; then
	if [ $qemu_status != 0 ] && [ ! -s "$dir/console.log" ]; then
		cannot_test "QEMU exited with status $qemu_status before the kernel printed anything"
	fi
	echo "VM '$name' ended before its job did; console:" >&2
	tail -30 "$dir/console.log" >&2
	"$TOP/testbed/kernel-reports.sh" "$dir/console.log" || true
	exit 122
fi
status=$(cat "$dir/status")
[[ $status =~ ^[0-9]+$ ]] || status=119
if [ "$status" -gt 119 ]; then
	echo "run-vm.sh: the job exited with status $status, reported as 119" >&2
	status=119
fi
if ! "$TOP/testbed/kernel-reports.sh" "$dir/console.log"; then
	[ "$status" = 0 ] && status=120
fi
exit "$status"
