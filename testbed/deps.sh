#!/bin/bash
# Install the Debian packages the project needs, and only those missing.
# A second run installs nothing and prints one line.
# Usage: deps.sh [bench]   (bench: also what `make bench` needs)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

packages=(
	linux-source-6.12
	qemu-system-x86
	build-essential flex bison bc libelf-dev libssl-dev cpio rsync
	kmod python3 ccache git
	iproute2
	gnuplot-nox
)
# Only the benchmark's plots need matplotlib (`make bench` asks for it);
# make check does not.
[ "${1:-}" = bench ] && packages+=(python3-matplotlib)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} = 0 ]; then
	echo "deps: all ${#packages[@]} packages present" >&2
	exit 0
fi
[ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (run as root, or install them)"
mkdir -p "$BUILD"
step "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet.
apt-get update -q >"$BUILD/apt.log" 2>&1 || { cat "$BUILD/apt.log" >&2; die "apt-get update failed"; }
apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$BUILD/apt.log" 2>&1 ||
	{ tail -30 "$BUILD/apt.log" >&2; die "apt-get install failed (log: $BUILD/apt.log)"; }
step "installed ${#missing[@]} packages"
