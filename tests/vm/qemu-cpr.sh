#!/bin/bash
# QEMU 10.0 + qemu/patches keeps a vhost-vdpa NIC across cpr-transfer with
# a nested guest's traffic flowing (tests/vm/qemu_cpr.py). Prints TAP.
# From the kernel command line: lu_qemu_cases (comma-separated subset),
# lu_qemu_frames (frames per guest run).
args=()
[ -n "${lu_qemu_cases:-}" ] && args+=(--cases "$lu_qemu_cases")
[ -n "${lu_qemu_frames:-}" ] && export FRAMES=$lu_qemu_frames
exec python3 "$(dirname "$0")/qemu_cpr.py" "${args[@]}" "$@"
