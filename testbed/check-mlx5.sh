#!/bin/bash
# Compile drivers/vdpa/mlx5/ of the patched tree, so that patches touching
# mlx5 are at least compile-tested. Needs no hardware and no full
# mlx5_core build: the test config plus the mlx5 vdpa options, then only the
# mlx5 vdpa objects.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

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
KTARGETS=drivers/vdpa/mlx5/ "$TOP/testbed/build-kernel.sh" "$KTREE" "$obj" \
	"$TOP"/kernel/config/*.config "$frag"
n=$(find "$obj/drivers/vdpa/mlx5" -name '*.o' ! -name '*.mod.o' | wc -l)
[ "$n" -ge 4 ] || die "mlx5 check: expected the mlx5 vdpa objects, found $n"
step "mlx5 vdpa compiled ($n objects)"
