#!/usr/bin/env bash
# Runs the netem tests of network_test on a kernel that has sch_netem: Debian's
# linux-image-cloud-amd64 under qemu (TCG; KVM is not used), from a tiny initramfs holding
# busybox, the test binary and its shared libraries, iproute2's ip and tc (the witnesses)
# and the veth and sch_netem modules. The guest prints its results on the serial console;
# this script parses them and passes or fails. Prints "SKIPPED: <reason>" (ctest skips)
# when qemu, busybox, cpio or the kernel package cannot be had.
#
#   tests/vm/run_netem_vm.sh BUILD/tests/injector/network_test BUILD/vm-cache ['[netem]']
#
# Packages: scripts/install-deps.sh --vm. The kernel .debs are downloaded with
# `apt-get download` into the cache directory once (about 27 MB) and reused.
set -uo pipefail

test_binary=${1:?usage: run_netem_vm.sh TEST_BINARY CACHE_DIR [CATCH_FILTER]}
cache=${2:?usage: run_netem_vm.sh TEST_BINARY CACHE_DIR [CATCH_FILTER]}
filter=${3:-[netem]}

skip() { echo "SKIPPED: $*"; exit 0; }
fail() { echo "FAILED: $*"; exit 1; }

# Every tool this script runs, checked up front so a missing one is a SKIPPED with its
# name, not a failure half-way (xz/zstd only matter when the kernel's modules are
# compressed; checked here anyway, they are in the --vm group).
for tool in qemu-system-x86_64 cpio busybox gzip xz zstd strip dpkg-deb apt-get ldd timeout find awk; do
  command -v "$tool" >/dev/null || skip "$tool not installed (scripts/install-deps.sh --vm)"
done
busybox=$(command -v busybox)
case "$(ldd "$busybox" 2>&1)" in *"not a dynamic"*) ;; *)
  skip "busybox is not static (install busybox-static)" ;; esac
[ -x "$test_binary" ] || fail "test binary $test_binary not built"
ip_bin=$(command -v ip) || skip "iproute2 ip not installed"
tc_bin=$(command -v tc) || skip "iproute2 tc not installed"

# --- the kernel: Debian's cloud image, which builds sch_netem as a module -------------
mkdir -p "$cache"
kdir="$cache/kernel"
if [ ! -f "$kdir/ready" ]; then
  rm -rf "$kdir" && mkdir -p "$kdir/debs"
  (cd "$kdir/debs" && apt-get download linux-image-cloud-amd64 >/dev/null 2>&1) ||
    skip "cannot download linux-image-cloud-amd64 (apt-get download failed; offline?)"
  meta=$(ls "$kdir"/debs/linux-image-cloud-amd64_*.deb)
  dep=$(dpkg-deb -f "$meta" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -1)
  [ -n "$dep" ] || skip "cannot tell which kernel linux-image-cloud-amd64 depends on"
  (cd "$kdir/debs" && apt-get download "$dep" >/dev/null 2>&1) || skip "cannot download $dep"
  dpkg-deb -x "$kdir"/debs/"$dep"_*.deb "$kdir/root" || fail "cannot extract $dep"
  touch "$kdir/ready"
fi
vmlinuz=$(ls "$kdir"/root/boot/vmlinuz-* 2>/dev/null | head -1)
[ -n "$vmlinuz" ] || fail "no vmlinuz in the kernel package"
kver=${vmlinuz##*/vmlinuz-}
moddir="$kdir/root/lib/modules/$kver"
find_module() { find "$moddir" -name "$1.ko*" | head -1; }

# --- the initramfs -----------------------------------------------------------------
work=$(mktemp -d /tmp/chaosdrill-vm-XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/sbin,proc,sys,dev,run,tmp,modules,etc}
cp "$busybox" "$root/bin/busybox"
# Debug info stripped: the initramfs unpacks into a tmpfs of half the guest's RAM, and
# with debug info the test binary and the CLI are over 180 MB ("Initramfs unpacking
# failed: write error").
strip --strip-debug -o "$root/network_test" "$test_binary" || fail "cannot copy $test_binary"
cp "$ip_bin" "$root/usr/sbin/ip"
cp "$tc_bin" "$root/usr/sbin/tc"
# The CLI, for the crash-safety case (inject, SIGKILL, revert); the test finds it at the
# build tree path compiled into it, so it goes to the same path in the guest.
build_dir=$(cd "$(dirname "$test_binary")/../.." && pwd)
bins=("$test_binary" "$ip_bin" "$tc_bin")
if [ -x "$build_dir/chaosdrill" ]; then
  mkdir -p "$root$build_dir"
  strip --strip-debug -o "$root$build_dir/chaosdrill" "$build_dir/chaosdrill" ||
    fail "cannot copy $build_dir/chaosdrill"
  bins+=("$build_dir/chaosdrill")
fi
for bin in "${bins[@]}"; do
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
modules=()
for m in veth sch_netem; do
  path=$(find_module "$m")
  [ -n "$path" ] || fail "kernel $kver has no $m module"
  case "$path" in
    *.xz) xz -dc "$path" >"$root/modules/$m.ko" ;;
    *.zst) zstd -dc "$path" >"$root/modules/$m.ko" ;;
    *) cp "$path" "$root/modules/$m.ko" ;;
  esac
  modules+=("$m")
done
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
echo 'nogroup:x:65534:' >"$root/etc/group"
cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
# No tmpfs over /tmp: the initramfs is writable already, and a build directory under /tmp
# (a checkout in /tmp/...) holds the chaosdrill binary the crash-safety case runs.
mkdir -p /tmp
echo "CHAOSDRILL_VM_BOOTED uptime_s=\$(cut -d' ' -f1 /proc/uptime) kernel=\$(uname -r)"
for m in ${modules[*]}; do insmod /modules/\$m.ko || echo "CHAOSDRILL_VM_INSMOD_FAILED \$m"; done
cd /tmp
/network_test '$filter' >/tmp/out 2>&1
rc=\$?
cat /tmp/out
echo "CHAOSDRILL_VM_RESULT rc=\$rc"
echo "CHAOSDRILL_VM_DONE uptime_s=\$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz"
echo "vm: initramfs $(du -sm "$root" | cut -f1) MB unpacked, $(du -m "$work/initrd.gz" | cut -f1) MB compressed"

# --- boot ----------------------------------------------------------------------------
log="$cache/console.log"
start=$(date +%s.%N)
timeout 600 qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 -nographic -no-reboot \
  -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init" </dev/null >"$log" 2>&1
qemu_rc=$?
end=$(date +%s.%N)
tr -d '\r' <"$log" | grep -E 'CHAOSDRILL_|NETEM_RESULT|CRASH_SAFETY_RESULT|SKIPPED|FAILED|passed|failed' | sed -e 's/^/vm: /' -e 's/SKIPPED:/skipped:/'
printf 'vm: wall time %.1f s (qemu exit %d); full console log: %s\n' \
  "$(awk "BEGIN{print $end - $start}")" "$qemu_rc" "$log"
tr -d '\r' <"$log" | grep -q 'CHAOSDRILL_VM_BOOTED' || fail "the VM did not boot (see $log)"
grep -q 'CHAOSDRILL_VM_INSMOD_FAILED' "$log" && fail "insmod failed in the VM (see $log)"
tr -d '\r' <"$log" | grep -q 'CHAOSDRILL_VM_RESULT rc=0' || fail "netem tests failed in the VM (see $log)"
tr -d '\r' <"$log" | grep -q 'SKIPPED' && fail "netem tests skipped inside the VM (sch_netem not usable?)"
tr -d '\r' <"$log" | grep -q 'NETEM_RESULT' || fail "no NETEM_RESULT line from the VM"
if [ -x "$build_dir/chaosdrill" ]; then
  tr -d '\r' <"$log" | grep -q 'CRASH_SAFETY_RESULT kind=network.netem .*baseline_restored=1' ||
    fail "no passing CRASH_SAFETY_RESULT line for network.netem from the VM"
fi
echo "vm: netem tests passed on $kver"
