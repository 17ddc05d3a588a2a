#!/bin/bash
# Fetch Debian trixie's QEMU 10.0.x source, verify it, apply qemu/patches
# and build a small x86_64-softmmu QEMU (TCG, vhost-vdpa, virtio-net) with
# ccache into build/qemu-build/qemu-system-x86_64.
#
# Nothing here changes the machine's apt sources: trixie's deb-src and
# bookworm-backports (meson >= 1.5 and pycotap, which Debian 12 lacks) are
# read through a private apt configuration under build/qemu-apt, and the two
# backports are unpacked with dpkg -x into build/qemu-tools, not installed.
#
# build/qemu-tree is a git repository like the kernel's: its root commit,
# tagged debian-base, is the unpacked Debian source (Debian's own patches
# applied by dpkg-source); the series goes on top with git am. A patch that
# does not apply stops the run naming it and the QEMU version.
#
# Usage: qemu/fetch-build.sh [--no-build]
set -euo pipefail
. "$(dirname "$0")/../testbed/lib.sh"

QTREE=${QTREE:-$BUILD/qemu-tree}
QOBJ=${QOBJ:-$BUILD/qemu-build}
APTDIR=$BUILD/qemu-apt
TOOLS=$BUILD/qemu-tools
SRCDIR=$BUILD/qemu-src
QPATCHES=$TOP/qemu/patches
build=1
[ "${1:-}" = --no-build ] && build=0

# --- build dependencies from Debian 12 itself --------------------------------
packages=(libglib2.0-dev libfdt-dev libpixman-1-dev pkg-config python3-venv
	ninja-build dpkg-dev gpgv ccache seabios qemu-system-data)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (run as root, or install them)"
	step "installing QEMU build dependencies: ${missing[*]}"
	mkdir -p "$BUILD"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >"$BUILD/apt.log" 2>&1 || { cat "$BUILD/apt.log" >&2; die "apt-get update failed"; }
	apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$BUILD/apt.log" 2>&1 ||
		{ tail -30 "$BUILD/apt.log" >&2; die "apt-get install failed (log: $BUILD/apt.log)"; }
fi

# --- private apt configuration -------------------------------------------------
aptopts() {
	echo -o Dir::Etc::SourceList="$APTDIR/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$APTDIR/lists" \
		-o Dir::Cache="$APTDIR/cache"
}
papt() {
	apt-get -q -o Dir::Etc::SourceList="$APTDIR/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$APTDIR/lists" \
		-o Dir::Cache="$APTDIR/cache" \
		-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
		-o Debug::NoLocking=1 "$@"
}
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
# The archive keys (debian-archive-keyring) make apt verify each Release
# file's signature; the Sources and Packages indices it lists carry the
# checksums of every file fetched below.
cat > "$APTDIR/sources.list" <<'EOF'
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
EOF
if [ ! -f "$APTDIR/updated" ] || [ -n "$(find "$APTDIR/updated" -mmin +1440)" ]; then
	step "reading trixie's deb-src and bookworm-backports (private apt config in ${APTDIR#"$TOP"/})"
	papt update >"$APTDIR/update.log" 2>&1 || { cat "$APTDIR/update.log" >&2; die "private apt-get update failed"; }
	touch "$APTDIR/updated"
fi

# --- meson and pycotap from bookworm-backports, unpacked privately ------------
if [ ! -x "$TOOLS/root/usr/bin/meson" ]; then
	step "unpacking meson and python3-pycotap from bookworm-backports into ${TOOLS#"$TOP"/}"
	rm -rf "$TOOLS" && mkdir -p "$TOOLS/debs"
	(cd "$TOOLS/debs" && papt download meson/bookworm-backports python3-pycotap/bookworm-backports) \
		>"$TOOLS/download.log" 2>&1 || { cat "$TOOLS/download.log" >&2; die "downloading meson/pycotap failed"; }
	for d in "$TOOLS"/debs/*.deb; do
		dpkg-deb -x "$d" "$TOOLS/root"
	done
fi
export PATH=$TOOLS/root/usr/bin:$PATH
export PYTHONPATH=$TOOLS/root/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}

# --- the source: trixie's qemu 10.0.x
# The Release file's signature (apt, archive keyring) covers the Sources
# index, which carries the dsc's checksum; apt-get source checks every file
# it fetches against it, and dpkg-source checks the tarballs against the
# dsc.  The dsc's own OpenPGP signature is checked too when
# debian-keyring is installed (without it dpkg-source says it cannot). ------------------------------------------
# shellcheck disable=SC2046
version=$(apt-cache $(aptopts) showsrc --only-source qemu 2>/dev/null |
	awk '/^Version:/ { print $2 }' | sort -V | tail -1)
[ -n "$version" ] || die "trixie has no qemu source in the private apt lists"
case $version in 1:10.0.*) ;; *) die "trixie's qemu is $version, not 10.0.x: the series targets 10.0" ;; esac
upver=${version#*:}
upver=${upver%%+*}
if [ ! -f "$SRCDIR/$version/stamp" ]; then
	step "fetching qemu $version source (dsc, orig, debian)"
	rm -rf "$SRCDIR" && mkdir -p "$SRCDIR/$version"
	# apt checks each file against the checksums of the signed Sources index.
	(cd "$SRCDIR/$version" && papt source --download-only "qemu=$version") \
		>"$SRCDIR/fetch.log" 2>&1 || { tail -20 "$SRCDIR/fetch.log" >&2; die "apt-get source qemu failed"; }
	touch "$SRCDIR/$version/stamp"
fi

if [ ! -d "$QTREE/.git" ] || [ "$(cat "$QTREE.version" 2>/dev/null)" != "$version" ]; then
	dsc=$(ls "$SRCDIR/$version"/qemu_*.dsc)
	step "unpacking $(basename "$dsc") (dpkg-source checks its checksums)"
	tmp=$QTREE.tmp
	rm -rf "$tmp"
	# --require-strong-checksums: the dsc must carry SHA-256 sums of the
	# tarballs, and dpkg-source refuses any that does not match.
	dpkg-source --require-strong-checksums -x "$dsc" "$tmp" >"$SRCDIR/unpack.log" 2>&1 ||
		{ cat "$SRCDIR/unpack.log" >&2; die "dpkg-source rejected $(basename "$dsc")"; }
	grep -i -E 'signature|checksum' "$SRCDIR/unpack.log" >&2 || true
	step "recording the Debian source as git tag debian-base"
	git -C "$tmp" init -q
	git -C "$tmp" config user.name "vdpa live update test bed"
	git -C "$tmp" config user.email "testbed@localhost"
	git -C "$tmp" config gc.auto 0
	rm -rf "$tmp/.pc"
	git -C "$tmp" add -f -A .
	git -C "$tmp" commit -q -m "Debian trixie qemu $version"
	git -C "$tmp" tag debian-base
	git -C "$tmp" checkout -q -b series
	rm -rf "$QTREE" "$QTREE.series-applied"
	mv "$tmp" "$QTREE"
	echo "$version" > "$QTREE.version"
fi

# --- the series ----------------------------------------------------------------
mapfile -t patches < <(series_patches "$QPATCHES")
want=$( (echo "$version"; cat "$QPATCHES/series" "${patches[@]}" /dev/null 2>/dev/null) | sha256sum | cut -d' ' -f1)
applied_head() { sed -n 2p "$QTREE.series-applied" 2>/dev/null; }
if [ "$(head -1 "$QTREE.series-applied" 2>/dev/null)" != "$want" ]; then
	# The tree is also where the series is edited: never throw away commits
	# or changes that qemu/patches does not have yet.
	head=$(git -C "$QTREE" rev-parse HEAD)
	base=$(git -C "$QTREE" rev-parse debian-base)
	if [ "$head" != "$base" ] && [ "$head" != "$(applied_head)" ]; then
		die "${QTREE#"$TOP"/} has commits that qemu/patches lacks: export them with 'make qemu-series' (or reset the tree to debian-base)"
	fi
	[ -z "$(git -C "$QTREE" status --porcelain --untracked-files=no)" ] ||
		die "${QTREE#"$TOP"/} has uncommitted changes"
	rm -f "$QTREE.series-applied"
	step "applying qemu/patches/series (${#patches[@]} patches) to QEMU $version"
	git -C "$QTREE" am --abort >/dev/null 2>&1 || true
	git -C "$QTREE" checkout -q -B series debian-base
	am_series "$QTREE" "QEMU $upver (Debian $version)" "${patches[@]}"
	printf '%s\n%s\n' "$want" "$(git -C "$QTREE" rev-parse HEAD)" > "$QTREE.series-applied"
fi
[ $build = 1 ] || exit 0

# --- configure and build ---------------------------------------------------------
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$TOP}
# QEMU builds with -g, and for such a compile ccache hashes the working
# directory too, so a clone at another path missed on every object. The
# debug info of an object from the cache then names the directory of the
# clone that compiled it first.
export CCACHE_NOHASHDIR=1
cc="ccache cc"
command -v ccache >/dev/null || cc=cc
flags=(--target-list=x86_64-softmmu --without-default-features
	--enable-tcg --enable-vhost-vdpa --enable-vhost-net --enable-vhost-kernel
	--enable-fdt=system --disable-install-blobs --disable-docs
	--disable-werror)
confhash=$(echo "${flags[*]} $cc" | sha256sum | cut -d' ' -f1)
if [ ! -f "$QOBJ/build.ninja" ] || [ "$(cat "$QOBJ/.confhash" 2>/dev/null)" != "$confhash" ]; then
	step "configuring QEMU $upver: ${flags[*]}"
	rm -rf "$QOBJ" && mkdir -p "$QOBJ"
	(cd "$QOBJ" && "$QTREE/configure" --cc="$cc" --host-cc="$cc" "${flags[@]}") \
		>"$QOBJ.configure.log" 2>&1 || { tail -30 "$QOBJ.configure.log" >&2; die "QEMU configure failed (log: $QOBJ.configure.log)"; }
	echo "$confhash" > "$QOBJ/.confhash"
fi
step "building qemu-system-x86_64 ($upver + ${#patches[@]} patches, ccache)"
nice -n 10 ninja -C "$QOBJ" -j "$JOBS" qemu-system-x86_64 >"$QOBJ.build.log" 2>&1 ||
	{ grep -E -B2 -A8 'error|FAILED' "$QOBJ.build.log" | tail -40 >&2; die "QEMU build failed (log: $QOBJ.build.log)"; }
echo "$version" > "$QOBJ/debian-version"
echo "$version ${#patches[@]} patches" >&2
