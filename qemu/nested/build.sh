#!/bin/bash
# Build the nested guest: a small kernel from the patched tree (its own
# config, qemu/nested/guest.config, in build/kbuild-nested) and an
# uncompressed newc initramfs whose /init is frames-init, linked static.
# Output: build/nested/{bzImage,initramfs.cpio}.
set -euo pipefail
. "$(dirname "$0")/../../testbed/lib.sh"

out=$BUILD/nested
mkdir -p "$out"
KTARGETS=bzImage nice -n 10 "$TOP/testbed/build-kernel.sh" "$KTREE" "$BUILD/kbuild-nested" \
	"$TOP/qemu/nested/guest.config"
cp "$BUILD/kbuild-nested/arch/x86/boot/bzImage" "$out/bzImage"

root=$out/root
rm -rf "$root" && mkdir -p "$root"
gcc -static -O2 -Wall -Wextra -Werror -o "$root/init" "$TOP/qemu/nested/frames-init.c"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) > "$out/initramfs.cpio.tmp"
mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
step "nested guest: ${out#"$TOP"/}/bzImage, ${out#"$TOP"/}/initramfs.cpio"
