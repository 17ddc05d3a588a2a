#!/bin/bash
# Boot the test kernel in QEMU with the host root read-only over 9p and run
# one job script inside.
#
# Usage: run-vm.sh [--name N] [--append WORDS] [--timeout S] [--boot-timeout S] [--mem SIZE]
#                  [--smp N] [--interactive] JOB
#   JOB      bash script run by the guest's init, as root, output to the host
#   --name   results directory build/vm/N (console.log, output.log, status)
#   --append extra kernel command-line words (vdpa_sim.use_va=1, FOO=bar ...)
#   --timeout  seconds before the watchdog stops the VM (VM_TIMEOUT, 1800)
#   --boot-timeout seconds for the guest to reach its job (VM_BOOT_TIMEOUT, 300)
# Environment: KVM=1 to use /dev/kvm instead of TCG; KOBJ for the kernel.
#
# Exit status: the job's; 124 if the watchdog stopped the VM; 125 if the
# kernel logged a report (WARNING, BUG, lockdep, ...) while the job passed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

name=run append="" timeout=${VM_TIMEOUT:-1800} boot_timeout=${VM_BOOT_TIMEOUT:-300} mem=${VM_MEM:-2G} smp=2 interactive=0
while [ $# -gt 0 ]; do
	case $1 in
	--name) name=$2; shift 2 ;;
	--append) append="$append $2"; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--boot-timeout) boot_timeout=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--interactive) interactive=1; shift ;;
	--) shift; break ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# = 1 ] || die "usage: run-vm.sh [options] JOB"
job=$(realpath "$1")
# The guest covers /tmp, /root, /var/tmp and /run with tmpfs mounts; it
# brings these back on top (testbed/vm-init.sh), wherever they live.
keep=$TOP:$(realpath -m "$BUILD"):$(dirname "$job")
"$TOP/testbed/preflight.sh" --paths "$TOP" "$BUILD" "$(dirname "$job")"
kernel=$KOBJ/arch/x86/boot/bzImage
[ -f "$kernel" ] || die "no kernel at $kernel: run 'make kernel'"

dir=$BUILD/vm/$name
rm -rf "$dir" && mkdir -p "$dir"
# la57=off: KASAN and 5-level paging report a wild access in an interrupt
# taken during early boot under TCG (seen in about half the boots).
accel=(-accel tcg,thread=multi -cpu max,la57=off)
if [ "${KVM:-0}" = 1 ]; then
	accel=(-accel kvm -cpu host,-arch-capabilities)
fi
cmdline="console=ttyS0 root=root rootfstype=9p rootflags=trans=virtio,version=9p2000.L,cache=loose ro init=$TOP/testbed/vm-init.sh panic=-1 tsc=reliable lu_job=$job lu_cwd=$TOP lu_keep=$keep lu_interactive=$interactive$append"
# x86's COMMAND_LINE_SIZE: the kernel cuts a longer one short, silently.
[ ${#cmdline} -lt 2048 ] || die "kernel command line of ${#cmdline} bytes, over the 2048 the kernel takes"
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

"${qemu[@]}" -serial file:"$dir/console.log" -serial file:"$dir/output.log" &
qpid=$!
: > "$dir/output.log"
tail -n +1 -f --pid=$qpid "$dir/output.log" 2>/dev/null &
tpid=$!
deadline=$(( $(date +%s) + timeout ))
boot_deadline=$(( $(date +%s) + boot_timeout )) booted=0
while kill -0 $qpid 2>/dev/null; do
	# A kernel that hangs or loops before init runs the job says nothing
	# on output.log: stop it after the boot timeout, not the watchdog's.
	if [ $booted = 0 ]; then
		if grep -q '^lu-vm: running' "$dir/output.log"; then
			booted=1
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
		hung=$(grep -aE '^# +RUN |^lu-test: running' "$dir/output.log" | tail -1 || true)
		echo "watchdog: last test started: ${hung:-none}" >&2
		echo "watchdog: last kernel messages:" >&2
		tail -20 "$dir/console.log" >&2
		"$TOP/testbed/kernel-reports.sh" "$dir/console.log" || true
		exit 124
	fi
	sleep 1
done
wait $qpid || true
wait $tpid 2>/dev/null || true

status=$(cat "$dir/status" 2>/dev/null || echo 126)
if ! "$TOP/testbed/kernel-reports.sh" "$dir/console.log"; then
	[ "$status" = 0 ] && status=125
fi
if [ "$status" = 126 ]; then
	echo "VM '$name' ended without running its job; console:" >&2
	tail -30 "$dir/console.log" >&2
fi
exit "$status"
