#!/bin/bash
# Compile drivers/vdpa/mlx5/ of the patched tree, so that patches touching
# mlx5 are at least compile-tested. Needs no hardware and no full
# mlx5_core build: the test config plus the mlx5 vdpa options, then only the
# mlx5 vdpa objects.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

tree=${KTREE}
obj=${KOBJ_MLX5:-$BUILD/kbuild-mlx5}
"$TOP/testbed/kernel-source.sh"
frag=$BUILD/mlx5.config
cat > "$frag" <<'CFG'
CONFIG_NETDEVICES=y
CONFIG_ETHERNET=y
CONFIG_NET_VENDOR_MELLANOX=y
CONFIG_MLX5_CORE=y
CONFIG_MLX5_VDPA=y
CONFIG_MLX5_VDPA_NET=y
CFG
mkdir -p "$obj"
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
kmake() { make -s -C "$tree" O="$obj" CC="ccache gcc" HOSTCC="ccache gcc" "$@"; }
want=$(cat "$TOP"/kernel/config/*.config "$frag" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$obj/.config-fragments" 2>/dev/null)" != "$want" ]; then
	step "configuring the mlx5 compile check"
	kmake tinyconfig >/dev/null
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" \
		"$TOP"/kernel/config/*.config "$frag" >/dev/null
	kmake olddefconfig >/dev/null
	for o in $(grep -E '^CONFIG_' "$frag"); do
		grep -qx "$o" "$obj/.config" || die "mlx5 check: Kconfig dropped $o"
	done
	echo "$want" > "$obj/.config-fragments"
fi
step "compiling drivers/vdpa/mlx5/"
kmake -j"$JOBS" prepare >/dev/null
kmake -j"$JOBS" drivers/vdpa/mlx5/
n=$(find "$obj/drivers/vdpa/mlx5" -name '*.o' ! -name '*.mod.o' ! -name 'built-in.a' | wc -l)
[ "$n" -ge 4 ] || die "mlx5 check: expected the mlx5 vdpa objects, found $n"
step "mlx5 vdpa compiled ($n objects)"
