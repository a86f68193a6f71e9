#!/usr/bin/env bash
# Builds the nodevmm reference guest from Debian packages:
#   bzImage-<arch>, vmlinux-<arch>, System.map-<arch>, config-<arch>  (linux-source-6.1)
#   initramfs-<arch>.cpio   (uncompressed)                            (busybox-static + guest/initramfs/*)
#   rootfs.ext4                                                       (busybox-static + marker files)
# for arch in x86_64 and i386, into $cache/<hash of inputs>/.
#
# Usage: guest/build.sh [--arch x86_64|i386|all] [--jobs N] [--force] [--print-dir] [--prune]
#   --print-dir  print the artifact directory for the current inputs and exit
#                (whether or not it has been built; nothing is installed)
#   --force      rebuild even if the artifacts exist (and start kernel builds
#                from a clean object tree)
#   --prune      delete artifact directories made from other inputs, and exit
# Environment: NODEVMM_GUEST_CACHE overrides the cache root
#              (default ${XDG_CACHE_HOME:-$HOME/.cache}/nodevmm/guest).
#
# Artifacts are written to a staging directory and renamed into place one by
# one, so an artifact that exists is complete.
set -eEuo pipefail
trap 'echo "guest/build.sh: error: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT=${NODEVMM_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodevmm/guest}
KERNEL_PACKAGE=linux-source-6.1
BUSYBOX_PACKAGE=busybox-static
APT_PACKAGES=(
	"$KERNEL_PACKAGE" "$BUSYBOX_PACKAGE" build-essential bc bison flex libelf-dev libssl-dev
	cpio kmod lz4 xz-utils gzip e2fsprogs
)
ROOTFS_SIZE=64M

# Inputs whose contents decide the artifact directory (paths relative to guest/).
HASHED_FILES=(
	build.sh
	kernel/common.config kernel/x86_64.config kernel/i386.config kernel/required.list
	initramfs/init initramfs/udhcpc.script
)

arch_opt=all
jobs=$(nproc)
force=0
print_dir=0
prune=0

die() {
	echo "guest/build.sh: error: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case "$1" in
	--arch) arch_opt=${2:?--arch needs a value}; shift 2 ;;
	--arch=*) arch_opt=${1#*=}; shift ;;
	--jobs | -j) jobs=${2:?--jobs needs a value}; shift 2 ;;
	--jobs=*) jobs=${1#*=}; shift ;;
	--force) force=1; shift ;;
	--print-dir) print_dir=1; shift ;;
	--prune) prune=1; shift ;;
	-h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (try --help)" ;;
	esac
done
case "$arch_opt" in
x86_64) ARCHES=(x86_64) ;;
i386) ARCHES=(i386) ;;
all) ARCHES=(x86_64 i386) ;;
*) die "--arch must be x86_64, i386 or all, not '$arch_opt'" ;;
esac
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer, not '$jobs'"

# Version of an installed package, or "none".
installed_version() {
	local status version
	status=$(dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null || true)
	if [ "$status" = installed ]; then
		version=$(dpkg-query -W -f "\${$2}" "$1")
		echo "${version:-none}"
	else
		echo none
	fi
}

# The hash covers our own input files and the Debian versions of the two
# packages whose contents end up in the guest. busybox is keyed by its source
# version so the i386 binary (which may carry a different binNMU suffix)
# matches.
compute_inputs() {
	local f
	echo "$KERNEL_PACKAGE $(installed_version "$KERNEL_PACKAGE" Version)"
	echo "$BUSYBOX_PACKAGE-source $(installed_version "$BUSYBOX_PACKAGE" 'source:Version')"
	for f in "${HASHED_FILES[@]}"; do
		[ -f "$GUEST_DIR/$f" ] || die "missing input file guest/$f"
		echo "$f $(sha256sum <"$GUEST_DIR/$f" | cut -c1-64)"
	done
}

artifact_dir() {
	echo "$CACHE_ROOT/$(compute_inputs | sha256sum | cut -c1-16)"
}

if [ "$print_dir" = 1 ]; then
	artifact_dir
	exit 0
fi

# Removes artifact directories of other inputs (16-hex-digit names) from the cache.
if [ "$prune" = 1 ]; then
	keep=$(basename "$(artifact_dir)")
	for d in "$CACHE_ROOT"/*; do
		name=$(basename "$d")
		if [[ -d "$d" && "$name" =~ ^[0-9a-f]{16}$ && "$name" != "$keep" ]]; then
			echo "removing $d"
			rm -rf "$d"
		fi
	done
	exit 0
fi

# ---------------------------------------------------------------- progress
START=$SECONDS
stage_no=0
stage_total=0
stage() {
	stage_no=$((stage_no + 1))
	printf '[%d/%d] %s ... (%s elapsed)\n' "$stage_no" "$stage_total" "$*" "$(elapsed)"
}
elapsed() {
	local s=$((SECONDS - START))
	printf '%dm%02ds' $((s / 60)) $((s % 60))
}
note() { echo "      $*"; }

# ---------------------------------------------------------------- cleanup
STAGING=
CHILD=
cleanup() {
	local rc=$?
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		kill -- "-$CHILD" 2>/dev/null || true
		wait "$CHILD" 2>/dev/null || true
	fi
	[ -n "$STAGING" ] && rm -rf "$STAGING"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SUDO=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || die "not root and sudo is missing: cannot install apt packages"
	SUDO=sudo
fi

# Runs apt-get, retrying while another process holds the dpkg lock.
apt_get() {
	local try
	for try in 1 2 3; do
		if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 -q "$@"; then
			return 0
		fi
		[ "$try" -lt 3 ] || return 1
		note "apt-get $1 failed; retrying in 10 s"
		sleep 10
	done
}

missing_packages() {
	local p
	for p in "${APT_PACKAGES[@]}"; do
		[ "$(installed_version "$p" Version)" != none ] || echo "$p"
	done
}

ensure_packages() {
	local missing
	missing=$(missing_packages | tr '\n' ' ')
	if [ -z "${missing// /}" ]; then
		note "all build packages are installed"
		return
	fi
	note "installing: $missing"
	# A stale mirror index elsewhere must not stop us; a real problem fails the install below.
	apt_get update >/dev/null || note "apt-get update reported errors; trying the install anyway"
	# shellcheck disable=SC2086
	apt_get install -y --no-install-recommends $missing >/dev/null
	missing=$(missing_packages | tr '\n' ' ')
	[ -z "${missing// /}" ] || die "apt-get could not install: $missing"
}

# Only one build at a time per cache root (tests and the CLI may race).
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
	echo "guest/build.sh: another build holds $CACHE_ROOT/.lock; waiting for it"
	flock 9
fi

# ---------------------------------------------------------------- plan
KVER=
OUT=
need_kernel() { [ "$force" = 1 ] || [ ! -f "$OUT/bzImage-$1" ] || [ ! -f "$OUT/vmlinux-$1" ] || [ ! -f "$OUT/config-$1" ]; }
need_initramfs() { [ "$force" = 1 ] || [ ! -f "$OUT/initramfs-$1.cpio" ]; }
need_rootfs() { [ "$force" = 1 ] || [ ! -f "$OUT/rootfs.ext4" ]; }

# Decides what to build for $OUT and how many stages that takes.
plan() {
	local a
	todo_kernel=()
	todo_initramfs=()
	for a in "${ARCHES[@]}"; do
		if need_kernel "$a"; then todo_kernel+=("$a"); fi
		if need_initramfs "$a"; then todo_initramfs+=("$a"); fi
	done
	todo_rootfs=0
	if need_rootfs; then todo_rootfs=1; fi
	needs_i386_busybox=0
	for a in "${todo_initramfs[@]}"; do
		if [ "$a" = i386 ]; then needs_i386_busybox=1; fi
	done
	stage_total=$((1 + (${#todo_kernel[@]} > 0 ? 1 : 0) + 2 * ${#todo_kernel[@]} + ${#todo_initramfs[@]} + todo_rootfs + needs_i386_busybox))
}

# Package installation can change the versions (and so the hash): plan once to
# number the stages, and again once the packages are in.
OUT=$(artifact_dir)
plan
stage "checking apt packages (${APT_PACKAGES[*]})"
ensure_packages
OUT=$(artifact_dir)
KVER=$(installed_version "$KERNEL_PACKAGE" Version)
BBVER=$(installed_version "$BUSYBOX_PACKAGE" Version)
BBSRCVER=$(installed_version "$BUSYBOX_PACKAGE" 'source:Version')
note "artifact directory: $OUT"
plan
if [ ${#todo_kernel[@]} = 0 ] && [ ${#todo_initramfs[@]} = 0 ] && [ "$todo_rootfs" = 0 ]; then
	echo "guest/build.sh: up to date: $OUT"
	echo "$OUT"
	exit 0
fi

mkdir -p "$OUT" "$CACHE_ROOT/logs"
STAGING=$(mktemp -d "$CACHE_ROOT/.staging.XXXXXX")
compute_inputs >"$STAGING/inputs.txt"

# Renames a finished file from the staging directory into the artifact directory.
publish() {
	mv -f "$STAGING/$1" "$OUT/$1"
}

# ---------------------------------------------------------------- kernel source
SRC="$CACHE_ROOT/src/${KERNEL_PACKAGE}_$KVER"
extract_kernel_source() {
	local tarball tmp
	tarball=$(dpkg -L "$KERNEL_PACKAGE" | grep -E '/linux-source-[0-9.]+\.tar\.(xz|bz2|gz)$' | head -n1)
	[ -n "$tarball" ] && [ -f "$tarball" ] || die "no kernel source tarball in package $KERNEL_PACKAGE"
	if [ -f "$SRC/.nodevmm-extracted" ]; then
		note "using extracted source in $SRC"
		return
	fi
	note "extracting $tarball"
	mkdir -p "$CACHE_ROOT/src"
	rm -rf "$SRC"
	tmp=$(mktemp -d "$CACHE_ROOT/src/.extract.XXXXXX")
	tar -xf "$tarball" -C "$tmp"
	mv "$tmp"/linux-source-* "$SRC"
	rmdir "$tmp"
	touch "$SRC/.nodevmm-extracted"
}

# Lines of guest/kernel/required.list that apply to an architecture.
required_options() {
	local arch=$1 line name only
	while IFS= read -r line; do
		line=${line%%#*}
		line=${line//[[:space:]]/}
		[ -n "$line" ] || continue
		name=${line%@*}
		if [[ "$line" == *@* ]]; then
			only=${line#*@}
			[ "$only" = "$arch" ] || continue
		fi
		echo "$name"
	done <"$GUEST_DIR/kernel/required.list"
}

# Fails listing every required option that olddefconfig dropped or changed.
verify_config() {
	local arch=$1 config=$2 name bad=()
	while IFS= read -r name; do
		if [[ "$name" == !* ]]; then
			if grep -q "^CONFIG_${name#!}=" "$config"; then bad+=("CONFIG_${name#!} must not be set"); fi
		else
			if ! grep -q "^CONFIG_${name}=y\$" "$config"; then bad+=("CONFIG_${name} is not =y"); fi
		fi
	done < <(required_options "$arch")
	if [ ${#bad[@]} -gt 0 ]; then
		echo "guest/build.sh: the $arch kernel configuration lost required options" >&2
		echo "(a dependency that tinyconfig leaves off usually drops them silently; see $config):" >&2
		printf '  %s\n' "${bad[@]}" >&2
		exit 1
	fi
}

# Runs a command with output to a log, printing a heartbeat every 30 s.
run_logged() {
	local log=$1 what=$2 last=$SECONDS rc=0
	shift 2
	# Own process group (setsid) so an interrupted build stops the compilers too.
	setsid "$@" >>"$log" 2>&1 &
	CHILD=$!
	while kill -0 "$CHILD" 2>/dev/null; do
		sleep 2
		if [ $((SECONDS - last)) -ge 30 ]; then
			last=$SECONDS
			note "... $what: $(grep -cE '^  (CC|AS|LD|AR)' "$log" || true) build steps so far ($(elapsed) elapsed)"
		fi
	done
	wait "$CHILD" || rc=$?
	CHILD=
	if [ "$rc" != 0 ]; then
		echo "guest/build.sh: $what failed (exit $rc); last lines of $log:" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
}

configure_kernel() {
	local arch=$1 obj=$2 log=$3
	mkdir -p "$obj"
	(cd "$SRC" && make -s O="$obj" ARCH="$arch" tinyconfig) >>"$log" 2>&1 ||
		{ tail -n 20 "$log" >&2; die "make tinyconfig failed for $arch"; }
	cat "$GUEST_DIR/kernel/common.config" "$GUEST_DIR/kernel/$arch.config" >>"$obj/.config"
	(cd "$SRC" && make -s O="$obj" ARCH="$arch" olddefconfig) >>"$log" 2>&1 ||
		{ tail -n 20 "$log" >&2; die "make olddefconfig failed for $arch"; }
	verify_config "$arch" "$obj/.config"
}

build_kernel() {
	local arch=$1 obj="$CACHE_ROOT/obj/$KVER/$1" log
	log="$CACHE_ROOT/logs/kernel-$arch.log"
	: >"$log"
	if [ "$force" = 1 ]; then rm -rf "$obj"; fi
	stage "configuring $arch kernel (tinyconfig + guest/kernel/common.config + $arch.config)"
	configure_kernel "$arch" "$obj" "$log"
	note "all $(required_options "$arch" | wc -l) required options checked"
	stage "compiling $arch kernel (make -j$jobs bzImage, log: $log)"
	local t0=$SECONDS
	run_logged "$log" "$arch kernel build" \
		make -C "$SRC" O="$obj" ARCH="$arch" -j"$jobs" KBUILD_BUILD_USER=nodevmm KBUILD_BUILD_HOST=nodevmm bzImage
	note "$arch kernel compiled in $((SECONDS - t0)) s"
	cp "$obj/arch/x86/boot/bzImage" "$STAGING/bzImage-$arch"
	cp "$obj/vmlinux" "$STAGING/vmlinux-$arch"
	cp "$obj/System.map" "$STAGING/System.map-$arch"
	cp "$obj/.config" "$STAGING/config-$arch"
	# bzImage last: its presence marks a complete kernel.
	publish "vmlinux-$arch"
	publish "System.map-$arch"
	publish "config-$arch"
	publish "bzImage-$arch"
	note "bzImage-$arch: $(stat -c %s "$OUT/bzImage-$arch") bytes, vmlinux-$arch: $(stat -c %s "$OUT/vmlinux-$arch") bytes"
}

# ---------------------------------------------------------------- busybox
# Path of the busybox binary for an architecture (the i386 one is unpacked
# from the downloaded .deb, never installed).
BUSYBOX_BIN_x86_64=
BUSYBOX_BIN_i386=
find_busybox_in() {
	local root=$1 p
	for p in bin/busybox usr/bin/busybox; do
		if [ -f "$root/$p" ]; then echo "$root/$p"; return; fi
	done
	die "no busybox binary under $root"
}

locate_busybox_x86_64() {
	local p
	p=$(dpkg -L "$BUSYBOX_PACKAGE" | grep -E '/busybox$' | head -n1)
	[ -n "$p" ] && [ -f "$p" ] || die "package $BUSYBOX_PACKAGE has no busybox binary"
	file_is_elf "$p" 2 || die "$p is not an x86_64 ELF executable"
	BUSYBOX_BIN_x86_64=$p
}

# file_is_elf PATH CLASS (1 = ELF32, 2 = ELF64): checks the ELF magic and class.
file_is_elf() {
	local head
	head=$(od -An -tx1 -N5 "$1" | tr -d ' \n')
	[ "$head" = "7f454c460$2" ]
}

fetch_busybox_i386() {
	local dir="$CACHE_ROOT/busybox-i386/$BBSRCVER" deb srcver
	if [ -f "$dir/.nodevmm-extracted" ]; then
		BUSYBOX_BIN_i386=$(find_busybox_in "$dir/root")
		note "using cached $BUSYBOX_PACKAGE:i386 in $dir"
		return
	fi
	if ! dpkg --print-foreign-architectures | grep -qx i386; then
		note "enabling the i386 architecture in dpkg (for apt-get download only)"
		$SUDO dpkg --add-architecture i386
		apt_get update >/dev/null || note "apt-get update reported errors; trying the download anyway"
	fi
	rm -rf "$dir"
	mkdir -p "$dir/download"
	if ! (cd "$dir/download" && apt-get download -q "$BUSYBOX_PACKAGE:i386" >/dev/null 2>&1); then
		apt_get update >/dev/null || note "apt-get update reported errors; trying the download anyway"
		(cd "$dir/download" && apt-get download -q "$BUSYBOX_PACKAGE:i386" >/dev/null) ||
			die "apt-get download $BUSYBOX_PACKAGE:i386 failed"
	fi
	deb=$(ls "$dir"/download/*.deb)
	srcver=$(dpkg-deb -f "$deb" Source | sed -n 's/.*(\(.*\)).*/\1/p')
	[ -n "$srcver" ] || srcver=$(dpkg-deb -f "$deb" Version)
	[ "$srcver" = "$BBSRCVER" ] ||
		die "$BUSYBOX_PACKAGE:i386 is built from source $srcver but the installed amd64 one from $BBSRCVER; run apt-get update && apt-get install $BUSYBOX_PACKAGE"
	dpkg-deb -x "$deb" "$dir/root"
	BUSYBOX_BIN_i386=$(find_busybox_in "$dir/root")
	file_is_elf "$BUSYBOX_BIN_i386" 1 || die "$BUSYBOX_BIN_i386 is not an i386 ELF executable"
	touch "$dir/.nodevmm-extracted"
	note "unpacked $(basename "$deb")"
}

# Applet paths (e.g. "sbin/poweroff") of a busybox binary. The i386 binary is
# run when the host can; otherwise the x86_64 binary of the same source
# version (same Debian configuration) lists them.
busybox_applets() {
	local bin=$1
	"$bin" --list-full 2>/dev/null || "$BUSYBOX_BIN_x86_64" --list-full
}

# ---------------------------------------------------------------- initramfs
GEN_INIT_CPIO=
build_gen_init_cpio() {
	local tool="$CACHE_ROOT/tools/gen_init_cpio-$KVER"
	if [ ! -x "$tool" ]; then
		mkdir -p "$CACHE_ROOT/tools"
		cc -O2 -o "$tool.tmp" "$SRC/usr/gen_init_cpio.c" || die "cannot compile $SRC/usr/gen_init_cpio.c"
		mv "$tool.tmp" "$tool"
	fi
	GEN_INIT_CPIO=$tool
}

build_initramfs() {
	local arch=$1 bin applet d
	local list="$STAGING/initramfs-$arch.list" etc="$STAGING/etc-$arch"
	stage "building initramfs-$arch.cpio (busybox $BBVER + guest/initramfs/init, udhcpc.script)"
	local var=BUSYBOX_BIN_$arch
	bin=${!var}
	mkdir -p "$etc"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$etc/passwd"
	printf 'root:x:0:\n' >"$etc/group"
	printf 'nodevmm\n' >"$etc/hostname"
	{
		echo "# nodevmm reference guest initramfs ($arch)"
		for d in /bin /sbin /usr /usr/bin /usr/sbin /usr/share /usr/share/udhcpc /dev /proc /sys /tmp /mnt /etc /root /run; do
			echo "dir $d 0755 0 0"
		done
		echo "nod /dev/console 0600 0 0 c 5 1"
		echo "nod /dev/null 0666 0 0 c 1 3"
		echo "file /init $GUEST_DIR/initramfs/init 0755 0 0"
		echo "file /usr/share/udhcpc/default.script $GUEST_DIR/initramfs/udhcpc.script 0755 0 0"
		echo "file /bin/busybox $bin 0755 0 0"
		echo "file /etc/passwd $etc/passwd 0644 0 0"
		echo "file /etc/group $etc/group 0644 0 0"
		echo "file /etc/hostname $etc/hostname 0644 0 0"
		busybox_applets "$bin" | while IFS= read -r applet; do
			[ "$applet" = bin/busybox ] && continue
			echo "slink /$applet /bin/busybox 0777 0 0"
		done
	} >"$list"
	# Uncompressed: unpacking gzip was 44% of the instructions the kernel ran
	# before /init, and on the interpreter every one of them counts; the
	# larger file is only a copy for the VMM. (CONFIG_RD_GZIP stays on for
	# users' own compressed initramfs.)
	"$GEN_INIT_CPIO" -t 0 "$list" >"$STAGING/initramfs-$arch.cpio"
	publish "initramfs-$arch.cpio"
	note "initramfs-$arch.cpio: $(stat -c %s "$OUT/initramfs-$arch.cpio") bytes, $(grep -c '^slink' "$list") applet links"
}

# ---------------------------------------------------------------- rootfs
build_rootfs() {
	local root="$STAGING/rootfs" applet
	stage "building rootfs.ext4 ($ROOTFS_SIZE ext4 with busybox and marker files)"
	mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/data"
	cp "$BUSYBOX_BIN_x86_64" "$root/bin/busybox"
	"$BUSYBOX_BIN_x86_64" --list-full | while IFS= read -r applet; do
		[ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
	done
	printf 'nodevmm rootfs marker v1\n' >"$root/nodevmm-rootfs-marker"
	# 1 MiB of distinct numbered lines plus its checksum, so a guest can check
	# virtio-blk reads end to end with `sha256sum -c`.
	seq -w 0 199999 >"$root/data/pattern-1MiB.txt"
	truncate -s 1048576 "$root/data/pattern-1MiB.txt"
	(cd "$root/data" && sha256sum pattern-1MiB.txt >pattern-1MiB.txt.sha256)
	local report
	report=$(mke2fs -q -F -t ext4 -L nodevmm-root -U 6e6f6465-766d-6d00-0000-726f6f746673 \
		-E root_owner=0:0 -d "$root" "$STAGING/rootfs.ext4" "$ROOTFS_SIZE" 2>&1) ||
		die "mke2fs failed to build rootfs.ext4: $report"
	report=$(e2fsck -fn "$STAGING/rootfs.ext4" 2>&1) || die "e2fsck reports errors in the new rootfs.ext4: $report"
	publish rootfs.ext4
	note "rootfs.ext4: $(stat -c %s "$OUT/rootfs.ext4") bytes"
}

# ---------------------------------------------------------------- run
if [ ${#todo_kernel[@]} -gt 0 ] || [ ${#todo_initramfs[@]} -gt 0 ]; then
	if [ ${#todo_kernel[@]} -gt 0 ]; then stage "preparing kernel source ($KERNEL_PACKAGE $KVER)"; fi
	extract_kernel_source
fi
for a in "${todo_kernel[@]}"; do build_kernel "$a"; done

locate_busybox_x86_64
if [ "$needs_i386_busybox" = 1 ]; then
	stage "fetching $BUSYBOX_PACKAGE:i386 (apt-get download, not installed)"
	fetch_busybox_i386
fi
if [ ${#todo_initramfs[@]} -gt 0 ]; then build_gen_init_cpio; fi
for a in "${todo_initramfs[@]}"; do build_initramfs "$a"; done
if [ "$todo_rootfs" = 1 ]; then build_rootfs; fi

cp "$STAGING/inputs.txt" "$OUT/inputs.txt.tmp" && mv -f "$OUT/inputs.txt.tmp" "$OUT/inputs.txt"
echo "guest/build.sh: done in $(elapsed): $OUT"
echo "$OUT"
