#!/bin/bash
# `nix-ssd lvm-plan --execute` for real with lvm2 + dm-cache. The host kernel of these machines
# has no device-mapper (no /dev/mapper/control, nothing in /proc/misc, no modules to load), while
# the Debian 13 guest kernel ships dm-mod, dm-cache and dm-cache-smq; so this boots the boot
# bed's Debian 13 guest under qemu with three extra virtio disks: an HDD-like PV (2 GiB), an
# SSD-like PV (1.5 GiB) and a small payload disk (this checkout's nix-ssd + tests/lvm/guest.sh).
# The guest builds the starting layout (a data LV on the HDD cached writethrough by a pool on
# the SSD, as on a machine before the plan, with a file of known checksum), runs the plan dry
# and with --execute, and reports; this script asserts. What `nix-ssd lvm-plan` does, step by
# step, is in src/ops/lvm/plan.rs.
#
# Run as root. Caches: /var/cache/nix-ssd-lvm (the bed's prepared rootfs + lvm2 and
# thin-provisioning-tools, and its ext4 root image); scratch: /var/tmp/nix-ssd-lvm.
# Env: NIX_SSD_CLI=path (else cargo build --release --bin nix-ssd), LVM_GUEST=script (another
# guest script, e.g. to capture fixtures), KEEP=1 (keep scratch).
# Last line: "lvm: N passed, M failed"; exit status non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../.." && pwd)
CHECK_SUITE=lvm; . "$repo/tests/lib/check.sh"; need_root   # check, abort, summary, log, die, now_ms
# the bed's helpers (mirror_uri, host_packages, rootfs_prepared): read only
BED_WORK=${BED_WORK:-/var/tmp/nix-ssd-bed}
# shellcheck source=../boot/lib.sh
. "$repo/tests/boot/lib.sh"
LVM_CACHE=${LVM_CACHE:-/var/cache/nix-ssd-lvm}
LVM_WORK=${LVM_WORK:-/var/tmp/nix-ssd-lvm}
LVM_PKGS="lvm2 thin-provisioning-tools e2fsprogs"
cleanup() {
    [ -n "${QEMU_PID:-}" ] && kill "$QEMU_PID" 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$LVM_WORK/run"
}
trap cleanup EXIT
mkdir -p "$LVM_CACHE" "$LVM_WORK"

# ---------------------------------------------------------------- derived guest (cached)
# guest_init: PID 1 of the test guest (no systemd: udevd + the payload's script, then power off).
guest_init() {
    cat <<'EOF'
#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C HOME=/root
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
mkdir -p /run/lock /run/lvm /run/udev
t() { echo "$1: $(cut -d' ' -f1 /proc/uptime)" >> /run/lvm-init.times; }
t t-init-s
/lib/systemd/systemd-udevd --daemon; udevadm trigger --action=add --subsystem-match=block; udevadm settle -t 60; echo "udev-settle-rc: $?" >> /run/lvm-init.times
t t-udev-s
stty -F /dev/ttyS1 raw -echo 115200 2>/dev/null
mkdir -p /payload; mount -o ro /dev/disk/by-id/virtio-payload /payload
{ echo LVM-BEGIN; bash /payload/guest.sh; echo "guest-exit: $?"; echo LVM-END; } > /dev/ttyS1 2>&1
sync; echo o > /proc/sysrq-trigger; sleep 30
EOF
}

lvm_rootfs() {   # prints the cached derived rootfs, building it if needed
    local prep key dir lfd
    prep=$(rootfs_prepared) || exit 2
    key=$( { echo "$prep $LVM_PKGS"; declare -f lvm_rootfs guest_init; } | sha256sum | cut -c1-12)
    dir=$LVM_CACHE/rootfs-$key
    exec {lfd}> "$LVM_CACHE/.lock"; flock "$lfd"
    if [ ! -e "$dir/.lvm-ready" ]; then
        local t0; t0=$(now_ms); log "building $dir: $(basename "$prep") + $LVM_PKGS"
        rm -rf "$LVM_CACHE"/rootfs-* "$LVM_CACHE"/root-*.img
        rm -rf "$dir.partial"; cp -a "$prep" "$dir.partial"
        # private apt config: the mirror is read from the host's apt sources now, written only
        # into a temporary dir that is removed again
        local a=$dir.partial/tmp/lvm-apt m; mkdir -p "$a/parts"
        m=$(mirror_uri) || die "no Debian mirror in the host's apt sources"
        printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$m" > "$a/parts/trixie.sources"
        printf '#!/bin/sh\nexit 101\n' > "$dir.partial/usr/sbin/policy-rc.d"; chmod 755 "$dir.partial/usr/sbin/policy-rc.d"
        unshare --mount --propagation private bash -c '
            mount -t proc proc "$1/proc" && mount --bind /dev "$1/dev" || exit 1
            o=(-o Dir::Etc::SourceParts=/tmp/lvm-apt/parts -o Dir::Etc::SourceList=/dev/null)
            chroot "$1" apt-get "${o[@]}" update -qq &&
            DEBIAN_FRONTEND=noninteractive chroot "$1" apt-get "${o[@]}" install -y -qq --no-install-recommends $2 &&
            chroot "$1" apt-get "${o[@]}" clean && rm -rf "$1"/var/lib/apt/lists/*' _ "$dir.partial" "$LVM_PKGS" \
            > "$LVM_WORK/apt.log" 2>&1 || { tail -20 "$LVM_WORK/apt.log" >&2; die "apt-get install $LVM_PKGS in the guest tree failed"; }
        rm -rf "$a" "$dir.partial/usr/sbin/policy-rc.d"
        guest_init > "$dir.partial/usr/local/sbin/lvm-test-init"; chmod 755 "$dir.partial/usr/local/sbin/lvm-test-init"
        touch "$dir.partial/.lvm-ready"; mv "$dir.partial" "$dir"
        log "derived rootfs built in $(( ($(now_ms) - t0) / 1000 )) s"
    fi
    if [ ! -e "$LVM_CACHE/root-$key.img" ]; then
        local t0; t0=$(now_ms)
        truncate -s 2G "$LVM_CACHE/root-$key.img.partial"
        mkfs.ext4 -q -F -L root -d "$dir" "$LVM_CACHE/root-$key.img.partial" || die "root image failed"
        mv "$LVM_CACHE/root-$key.img.partial" "$LVM_CACHE/root-$key.img"
        log "root image built in $(( ($(now_ms) - t0) / 1000 )) s"
    fi
    flock -u "$lfd"; exec {lfd}>&-
    echo "$dir"
}

# ---------------------------------------------------------------- one boot
# boot_guest NAME SCRIPT: root (qcow2 over the cached image), hdd, ssd, payload; report -> NAME.report
boot_guest() {
    local name=$1 script=$2 R=$LVM_WORK/run key
    key=$(basename "$ROOTFS"); key=${key#rootfs-}
    rm -rf "$R"; mkdir -p "$R/payload"
    install -m755 "$NIX_SSD_CLI" "$R/payload/nix-ssd"
    install -m755 "$script" "$R/payload/guest.sh"
    truncate -s 64M "$R/payload.img"; mkfs.ext4 -q -F -d "$R/payload" "$R/payload.img" || abort "payload image failed"
    qemu-img create -q -f qcow2 -b "$LVM_CACHE/root-$key.img" -F raw "$R/root.qcow2" || abort "qemu-img failed"
    truncate -s 2G "$R/hdd.img"; truncate -s 1536M "$R/ssd.img"
    # disks in this order: vda root, vdb hdd, vdc ssd, vdd payload; serials -> /dev/disk/by-id/virtio-*
    local disks=() d f
    for d in root:qcow2 hdd:raw ssd:raw payload:raw; do
        f=${d%%:*}; [ "$f" = root ] && f=root.qcow2 || f=$f.img
        disks+=(-drive "file=$R/$f,if=none,id=${d%%:*},format=${d#*:},cache=unsafe$([ "${d%%:*}" = payload ] && echo ,readonly=on)"
                -device "virtio-blk-pci,drive=${d%%:*},serial=${d%%:*}")
    done
    local t0; t0=$(now_ms)
    timeout 480 qemu-system-x86_64 -accel "$QEMU_ACCEL" -cpu "$QEMU_CPU" -smp 2 -m 1536 \
        -nodefaults -no-user-config -display none -no-reboot \
        -serial "file:$LVM_WORK/$name.console" -serial "file:$LVM_WORK/$name.out" \
        -kernel "$KERNEL" -initrd "$INITRD" \
        -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet init=/usr/local/sbin/lvm-test-init" \
        "${disks[@]}" \
        < /dev/null &
    QEMU_PID=$!; wait "$QEMU_PID"; local rc=$?; QEMU_PID=
    BOOT_MS=$(( $(now_ms) - t0 ))
    tr -d '\r' < "$LVM_WORK/$name.out" | sed -n '/^LVM-BEGIN/,/^LVM-END/p' > "$LVM_WORK/$name.report"
    log "qemu $name: rc=$rc wall ${BOOT_MS} ms; report $LVM_WORK/$name.report, console $LVM_WORK/$name.console"
}

# fact KEY: the value of the first "KEY: value" line of the report (is KEY VALUE: it is VALUE)
fact() { K="$1: " awk 'index($0,ENVIRON["K"])==1 {print substr($0,length(ENVIRON["K"])+1); exit}' "$REPORT"; }
is() { [ "$(fact "$1")" = "$2" ]; }
export -f fact is; export REPORT

# ---------------------------------------------------------------- main
T0=$(now_ms)
host_packages
command -v mkfs.ext4 >/dev/null || abort "mkfs.ext4 missing"
ROOTFS=$(lvm_rootfs) || abort "guest rootfs"
KERNEL=$(ls "$ROOTFS"/boot/vmlinuz-* | tail -1); INITRD=$(ls "$ROOTFS"/boot/initrd.img-* | tail -1)
[ -f "$KERNEL" ] && [ -f "$INITRD" ] || abort "no kernel/initrd in $ROOTFS/boot"
if [ -z "${NIX_SSD_CLI:-}" ]; then
    PATH=$PATH:$HOME/.cargo/bin
    log "cargo build --release --bin nix-ssd"
    (cd "$repo" && cargo build --release --bin nix-ssd) > "$LVM_WORK/cargo-build.log" 2>&1 \
        || { tail -30 "$LVM_WORK/cargo-build.log" >&2; abort "cargo build failed"; }
    NIX_SSD_CLI=$repo/target/release/nix-ssd
fi
[ -x "$NIX_SSD_CLI" ] || abort "$NIX_SSD_CLI is not an executable"

boot_guest lvm "${LVM_GUEST:-$here/guest.sh}"
REPORT=$LVM_WORK/lvm.report
if [ -n "${LVM_GUEST:-}" ]; then cat "$REPORT"; summary; exit 0; fi

echo "lvm-plan in a qemu guest: qemu ${BOOT_MS} ms (until init: $(fact t-init-s) s, udev settled: $(fact t-udev-s) s, test started: $(fact t-start-s) s, test: $(fact t-test-s) s); lvm2 $(fact lvm-version)"
check "guest ran to the end" grep -q '^guest-exit: 0' "$REPORT"
check "guest has device-mapper with dm-cache" is dm-cache yes
check "starting layout built without errors" bash -c "! grep -q '^start-failed' '$REPORT'"
check "starting layout: data LV cached writethrough before the plan" is before-cache-mode writethrough
check "dry run exits 0" is dry-rc 0
check "dry run changes nothing (lvs identical)" is dry-unchanged yes
check "dry run prints the 5 steps in order" bash -c "grep -E '^dry: (lvconvert|lvcreate|nix-ssd)' '$REPORT' | cut -d' ' -f2-4 | tr '\n' '|' | grep -qx 'lvconvert -y --uncache|lvcreate -y --type|lvconvert -y --type|lvcreate -y -L|nix-ssd setup /dev/vg0/nix|'"
check "dry run names the current pool and mode" grep -q '^dry: # vg0/data is cached by \[cpool_cpool\] in writethrough' "$REPORT"
check "too big a plan is refused (exit 1) before running anything" is big-rc 1
check "  ... saying how many extents are free" grep -q '^big: .*not enough free space on /dev/vdc: the plan needs 584 extents.*383 are free after uncaching' "$REPORT"
check "  ... and changes nothing" is big-unchanged yes
check "--execute exits 0" is exec-rc 0
check "--execute shows each step on stderr first" grep -q '^exec: nix-ssd lvm-plan: \[5/5\] nix-ssd setup /dev/vg0/nix' "$REPORT"
check "--execute verifies the result" grep -q '^exec: nix-ssd lvm-plan: done: vg0/data cached by \[cpool_cpool\] in writeback' "$REPORT"
check "cached LV keeps its file (checksum, after remount)" is checksum-after same
check "cached LV is in writeback mode" is after-cache-mode writeback
check "its cache pool is on the SSD PV" is after-pool-on-ssd yes
check "new LV vg0/nix is on the SSD PV" is nix-on-ssd yes
check "vg0/nix is btrfs labelled NIX_SSD" is nix-fs "btrfs NIX_SSD"
check "vg0/nix has @build @cache @overlay" is nix-subvols "@build @cache @overlay"
check "@overlay holds state upper work" is nix-overlay-dirs "state upper work"
check "a second run refuses: vg0/nix exists" bash -c "is again-rc 1 && grep -q '^again: .*vg0/nix exists already' '$REPORT'"
check "injected failure of step 2: exit 1" is fail-rc 1
check "  ... stops there (step 2/5, nothing after it ran)" bash -c "grep -q '^fail: nix-ssd lvm-plan: step 2/5 failed' '$REPORT' && ! grep -q '^fail: nix-ssd lvm-plan: \[3/5\]' '$REPORT'"
check "  ... says the LV is not cached any more" grep -q '^fail: state: vg0/data is NOT cached' "$REPORT"
check "  ... and how to go on (the remaining commands, the re-plan with --lv)" bash -c "grep -q '^fail:   lvcreate -y --type cache-pool' '$REPORT' && grep -q '^fail: .*nix-ssd lvm-plan --vg vg0 --pv /dev/vdc --lv data' '$REPORT'"
check "  ... and the LV is indeed uncached (linear)" is fail-segtype linear
check "without --lv an uncached VG is refused" bash -c "is nolv-rc 1 && grep -q '^nolv: .*has no cached LV; name the LV to cache with --lv' '$REPORT'"
check "resume with --lv exits 0" is resume-rc 0
check "  ... plans 4 steps (no uncache)" bash -c "! grep -q '^resume: .*\[./5\]' '$REPORT' && grep -q '^resume: nix-ssd lvm-plan: \[4/4\] nix-ssd setup' '$REPORT'"
check "  ... file intact" is resume-checksum-after same
check "  ... file written in writeback mode ($(fact dirty-blocks) dirty blocks just after) intact after uncache + re-attach" is resume-dirty-checksum-after same
check "  ... writeback" is resume-after-cache-mode writeback
check "  ... vg0/nix btrfs NIX_SSD with the layout" bash -c "is resume-nix-fs 'btrfs NIX_SSD' && is resume-nix-subvols '@build @cache @overlay' && is resume-nix-overlay-dirs 'state upper work'"
echo "  (total $(( ($(now_ms) - T0) / 1000 )) s)"
if [ "$CHECK_FAIL" -gt 0 ]; then
    echo "---- report ($REPORT):"; sed 's/^/    /' "$REPORT"
    echo "---- console tail ($LVM_WORK/lvm.console):"; tail -30 "$LVM_WORK/lvm.console" | sed 's/^/    /'
fi
summary
