#!/bin/bash
# PID 1 of the test VM. The host root is mounted read-only over 9p; this
# script gives the guest the writable places it needs, runs the job named on
# the kernel command line (lu_job=, reaches us as an environment variable)
# with its output on the second serial port, and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-linux}

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# The guest's writable places are tmpfs mounts over directories of the
# read-only host root. A checkout (or build directory, or job) that lives
# under one of them would vanish under the tmpfs, so each path named in
# lu_keep (colon-separated, from run-vm.sh) is bind-mounted aside first
# and moved back on top of the tmpfs at the same path.
covered=(/tmp /run /root /var/tmp /var/run /var/lib/dhcp)
kept=() holders=()
IFS=: read -ra keep_paths <<< "${lu_keep:-}"
for p in "${keep_paths[@]}"; do
	[ -d "$p" ] || continue
	for k in "${kept[@]}"; do
		case $p/ in "$k"/*) continue 2 ;; esac	# inside one kept already
	done
	for d in "${covered[@]}"; do
		case $p/ in "$d"/*)
			h=/dev/.lu-keep/${#kept[@]}
			mkdir -p "$h"
			if mount --bind "$p" "$h"; then
				kept+=("$p") holders+=("$h")
			fi
			break ;;
		esac
	done
done
for d in "${covered[@]}"; do
	mount -t tmpfs tmpfs "$d" 2>/dev/null
done
for i in "${!kept[@]}"; do
	mkdir -p "${kept[$i]}"
	mount --move "${holders[$i]}" "${kept[$i]}" ||
		echo "lu-vm: could not bring ${kept[$i]} back over its tmpfs" > /dev/console
done
rmdir /dev/.lu-keep/* /dev/.lu-keep 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t tmpfs tmpfs /dev/shm
# devtmpfs has no /dev/fd or /dev/std*, which udev makes on a normal
# system; without them a write to /dev/stdout (kselftest's runner writes
# every test's output there) creates a file and the output is lost.
ln -sfn /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname vdpa-lu-vm
# Results come back through a writable 9p export of a host directory.
mkdir -p /run/out
mount -t 9p -o trans=virtio,version=9p2000.L out /run/out 2>/dev/null

out=/dev/ttyS1
[ -c "$out" ] || out=/dev/console
if [ -n "$lu_job" ]; then
	cd "${lu_cwd:-/}" || true
	echo "lu-vm: running $lu_job" > "$out"
	if [ "${lu_interactive:-0}" = 1 ]; then
		setsid -c bash -l <> /dev/ttyS0 >&0 2>&1
		status=$?
	else
		bash "$lu_job" > "$out" 2>&1 < /dev/null
		status=$?
	fi
	echo "lu-vm: exit status $status" > "$out"
	echo "$status" > /run/out/status 2>/dev/null
fi
sync
echo o > /proc/sysrq-trigger
sleep 5
echo b > /proc/sysrq-trigger
