#!/bin/bash
# A real systemd initrd in the boot bed (issue 18): the NixOS module's systemd-stage-1 unit
# (boot.initrd.systemd.services.nix-ssd-pins, evaluated by the real nixpkgs lib and rendered as
# NixOS renders it: tests/boot/initrd-units.nix) in a Debian 13 initrd built by dracut (systemd
# 257 as PID 1 of the initrd), with a stand-in for NixOS's initrd-find-nixos-closure.service (its
# ordering; init= resolved in /sysroot, the unit fails when it is not there) and NixOS's
# switch-root to that init. One qemu guest (TCG), its root disk kept across the series:
#   pin       SSD present, overlay mode, the bed's usual initramfs-tools initrd: a system
#             (nixos-system-initrd-test-1, whose init execs the bed's nixos-like-init) built on
#             the SSD through the daemon, made the boot default, `nix-ssd pin`ned: staged
#   boot      no SSD, the dracut initrd, init=<that system>/init (only in the staging until the
#             unit moves it): the initrd journal shows the move finishing before the closure is
#             looked for and before switch-root; the system's init ran; the stage 2
#             nix-ssd-pins.service registered the paths; the store verifies; no failed unit
#   negative  the same from the same disk, the same initrd built without the module's unit: the
#             find-closure stand-in fails (the closure is not in the store), no switch-root
# Usage: sudo tests/boot/initrd.sh   (binaries: GENERATOR=…, NIX_SSD_CLI=…, NIX_SSD_DEB=…;
#   NIXPKGS_LIB: the nixpkgs lib tarball, default ../shared/nixpkgs/nixpkgs-lib.tar.xz beside
#   the checkout, as tests/packaging/run.sh)
# Caches: $BED_CACHE/dracut-<hash>: dracut-core installed over the bed's prepared tree (an
# overlay layer). Last line: "initrd: N passed, M failed".
set -uo pipefail
CHECK_SUITE=initrd; . "$(dirname "$0")/../lib/check.sh"; need_root
. "$(dirname "$0")/lib.sh"
bed_traps
t_series=$(now_ms)
TOP=$(cd "$BED_DIR/../.." && pwd)
NIXPKGS_LIB=${NIXPKGS_LIB:-$TOP/../shared/nixpkgs/nixpkgs-lib.tar.xz}
[ -f "$NIXPKGS_LIB" ] || abort "the nixpkgs lib tarball is missing: $NIXPKGS_LIB (expected ../shared/nixpkgs/nixpkgs-lib.tar.xz beside the checkout; set NIXPKGS_LIB)"
bed_series_begin
IL=$(series_layer initrd client-conf)
W=$BED_WORK/initrd; rm -rf "$W"; mkdir -p "$W"
KVER=$(basename "$(ls -d "$ROOTFS"/lib/modules/*/ | head -1)")
declare -A BOOT_RC IBOOT_MS

# in_chroot LOWERDIRS BINDS CMD...: CMD chrooted in a throwaway overlay of LOWERDIRS (none of them
# changes), with /proc, /dev, /sys and BINDS ("host-dir:guest-dir ...") mounted, in a private
# mount namespace
in_chroot() {
    local lower=$1 binds=$2 t; shift 2
    t=$(mktemp -d "$BED_WORK/chroot.XXXXXX"); mkdir -p "$t/u" "$t/w" "$t/m"
    unshare --mount --propagation private bash -c '
        t=$1 lower=$2 binds=$3; shift 3
        mount -t overlay overlay -o "lowerdir=$lower,upperdir=$t/u,workdir=$t/w" "$t/m" || exit 99
        mount -t proc proc "$t/m/proc" && mount --rbind /dev "$t/m/dev" && mount --rbind /sys "$t/m/sys" || exit 99
        for b in $binds; do mkdir -p "$t/m/${b#*:}" && mount --bind "${b%%:*}" "$t/m/${b#*:}" || exit 99; done
        exec chroot "$t/m" env -i PATH=/usr/sbin:/usr/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"' _ "$t" "$lower" "$binds" "$@"
    local rc=$?; rm -rf "$t"; return $rc
}

# ---------------------------------------------------------------- dracut (cached)
# Debian 13's `dracut` package conflicts with initramfs-tools (and provides linux-initramfs-tool):
# it would replace the initrd generator the bed's other boots use. `dracut-core` holds dracut
# itself and conflicts with nothing; no kernel hook of it runs. It is installed once, with
# --no-install-recommends, into an overlay layer over the prepared tree:
# $BED_CACHE/dracut-<hash of that tree's name and this recipe>/layer.
dracut_layer() {
    local recipe key dir lfd m
    recipe=$(declare -f dracut_layer | sha256sum | cut -c1-8)
    key=$(printf 'v1 %s %s\n' "$(basename "$ROOTFS")" "$recipe" | sha256sum | cut -c1-16)
    dir=$BED_CACHE/dracut-$key
    exec {lfd}> "$BED_CACHE/.lock"; flock "$lfd"   # the bed's builder lock (lib.sh)
    if [ ! -e "$dir/.bed-ready" ]; then
        local t0; t0=$(now_ms); log "dracut-core into $dir (mirror from the host's apt sources)"
        find "$BED_CACHE" -maxdepth 1 -name 'dracut-*' -exec rm -rf {} +   # older ones
        m=$(mirror_uri) || die "no Debian mirror in the host's apt sources"
        mkdir -p "$dir.partial/layer" "$dir.partial/work" "$dir.partial/m"
        unshare --mount --propagation private bash -c '
            d=$1 R=$2 m=$3
            mount -t overlay overlay -o "lowerdir=$R,upperdir=$d/layer,workdir=$d/work" "$d/m" || exit 99
            mount -t proc proc "$d/m/proc" || exit 99
            [ -f /etc/resolv.conf ] && { touch "$d/m/etc/resolv.conf"; mount --bind /etc/resolv.conf "$d/m/etc/resolv.conf"; }
            printf "deb %s trixie main\n" "$m" > "$d/m/etc/apt/sources.list"
            chroot "$d/m" env -i PATH=/usr/sbin:/usr/bin HOME=/root DEBIAN_FRONTEND=noninteractive sh -ec "
                apt-get update -qq
                apt-get install -y -qq --no-install-recommends dracut-core
                apt-get clean; rm -rf /var/lib/apt/lists/*
                dpkg-query -W dracut-core initramfs-tools"' _ "$dir.partial" "$ROOTFS" "$m" > "$BED_LOG/dracut-apt.log" 2>&1 \
            || { tail -20 "$BED_LOG/dracut-apt.log" >&2; die "installing dracut-core failed"; }
        rm -rf "$dir.partial/work" "$dir.partial/m"
        touch "$dir.partial/.bed-ready"; mv "$dir.partial" "$dir"
        log "dracut-core installed in $(( ($(now_ms) - t0) / 1000 )) s: $(tail -2 "$BED_LOG/dracut-apt.log" | tr '\t\n' '  ')"
    fi
    flock -u "$lfd"; exec {lfd}>&-
    echo "$dir/layer"
}

# ---------------------------------------------------------------- the units, from the module
# units_archive yes|no: the files initrd-units.nix renders (with or without the module's unit),
# evaluated by the guest tree's Nix 2.26 against the real nixpkgs lib
NIXPKGS=$W/nixpkgs
units_eval() { # ATTR [nix args...]
    local attr=$1; shift
    in_chroot "$ROOTFS" "$TOP:/src $NIXPKGS:/nixpkgs" nix --extra-experimental-features nix-command eval --raw \
        --file /src/tests/boot/initrd-units.nix --arg src /src --arg nixpkgs /nixpkgs "$@" "$attr"
}
# unpack ARCHIVE DIR: the line archive of initrd-units.nix into DIR
unpack() {
    local l f="" a
    while IFS= read -r l; do
        case $l in
        "=== FILE "*) read -r -a a <<< "${l#=== FILE }"; f=$2/${a[0]}; mkdir -p "$(dirname "$f")"; : > "$f"; chmod "${a[1]}" "$f" ;;
        "=== LINK "*) read -r -a a <<< "${l#=== LINK }"; mkdir -p "$(dirname "$2/${a[0]}")"; ln -sfn "${a[1]}" "$2/${a[0]}"; f="" ;;
        "|"*) [ -n "$f" ] || return 1; printf '%s\n' "${l#|}" >> "$f" ;;
        *) return 1 ;;
        esac
    done < "$1"
}
# build_initrd OUT INCLUDE-DIR: dracut's systemd initrd for the guest's kernel, INCLUDE-DIR's tree
# added (--include); only the modules that find and mount a virtio ext4 root, and the tools the
# units run (the module's unit: mv, mkdir, mount; the stand-in: chroot, realpath, dirname, ln,
# readlink; the harness: journalctl, systemctl)
build_initrd() {
    local out=$1 inc=$2 o; o=$(dirname "$out")
    in_chroot "$DRACUT:$ROOTFS" "$inc:/bed-include $o:/bed-out" dracut --force --no-early-microcode \
        --no-hostonly --no-hostonly-cmdline --kver "$KVER" \
        --modules 'bash systemd systemd-initrd dracut-systemd kernel-modules rootfs-block udev-rules base fs-lib shutdown' \
        --drivers 'virtio_pci virtio_blk ext4' \
        --install 'bash mv mkdir mount chroot realpath dirname ln readlink journalctl systemctl' \
        --include /bed-include / "/bed-out/$(basename "$out")"
}
# the files of an initrd (its cpio, as the kernel unpacks it), for the checks on what went in
initrd_list() { in_chroot "$DRACUT:$ROOTFS" "$(dirname "$1"):/bed-out" lsinitrd "/bed-out/$(basename "$1")"; }

# ---------------------------------------------------------------- qemu
# iboot NAME INITRD BACKING FORMAT SSD(yes|no) [kernel command line words]: one qemu boot; the
# root disk is $W/NAME.qcow2 over BACKING (kept: the next boots start from it), the SSD a qcow2
# over the set-up image. Report on the 2nd serial port -> i-NAME.report / i-NAME.journal.
iboot() {
    local name=$1 initrd=$2 backing=$3 fmt=$4 ssd=$5; shift 5
    local disk=$W/$name.qcow2 out=$BED_LOG/i-$name.out ssdd=() t0 rc try
    for try in 1 2; do
        qemu-img create -q -f qcow2 -b "$backing" -F "$fmt" "$disk" || die "qemu-img failed"
        ssdd=()
        if [ "$ssd" = yes ]; then
            qemu-img create -q -f qcow2 -b "$SSD" -F raw "$W/$name-ssd.qcow2" || die "qemu-img failed"
            ssdd=(-drive "file=$W/$name-ssd.qcow2,if=none,id=ssdd,format=qcow2,cache=unsafe" -device virtio-blk-pci,drive=ssdd,id=ssd,addr=0x5)
        fi
        : > "$out"; t0=$(now_ms)
        timeout 600 qemu-system-x86_64 -accel "$QEMU_ACCEL" -cpu "$QEMU_CPU" -smp 2 -m 1536 \
            -nodefaults -no-user-config -display none -no-reboot \
            -serial stdio -serial "file:$out" \
            -kernel "$W/vmlinuz" -initrd "$initrd" \
            -append "root=/dev/vda rw console=ttyS0 panic=-1 $*" \
            -drive "file=$disk,if=none,id=rootd,format=qcow2,cache=unsafe" -device virtio-blk-pci,drive=rootd,addr=0x4 "${ssdd[@]}" \
            > "$BED_LOG/i-$name.console" 2>&1 < /dev/null
        rc=$?
        # qemu itself (not the guest) sometimes aborts under TCG on this host (lib.sh boot_qemu):
        # once more from the same images
        [ "$try" = 1 ] && [ "$rc" = 134 ] && grep -q '^qemu-system-x86_64: .*Assertion .* failed' "$BED_LOG/i-$name.console" || break
        log "qemu $name: qemu itself aborted: booting it again"; cp "$BED_LOG/i-$name.console" "$BED_LOG/i-$name.qemu-abort.console"
        rm -f "$disk" "$W/$name-ssd.qcow2"
    done
    IBOOT_MS[$name]=$(( $(now_ms) - t0 )); BOOT_RC[$name]=$rc
    split_output "$out" "$BED_LOG/i-$name"
    log "initrd $name (ssd=$ssd): rc=$rc wall ${IBOOT_MS[$name]} ms"
}

# ---------------------------------------------------------------- assertion helpers
rc_zero() { [ "${BOOT_RC[$1]:-x}" = 0 ]; }
# the init recorded what it was and what its closure's other path holds: as the system says
same_init() { local a b; a=$(rv "$1" init-ran); b=$(rv "$1" expected-init-ran); [ -n "$a" ] && [ "$a" = "$b" ]; }
J() { echo "$BED_LOG/i-$1.journal"; }   # NAME: the boot's journal; NAME.initrd: its part up to switch-root
# jline NAME ERE: the first journal line of NAME that matches ERE, with its line number ("N:line")
jline() { grep -nE -m1 -- "$2" "$(J "$1")"; }
jhas() { grep -qE -- "$2" "$(J "$1")"; }
jhasnt() { ! grep -qE -- "$2" "$(J "$1")"; }
ts() { sed -E 's/^[0-9]+:\[ *([0-9.]+)\].*/\1/' <<<"$1"; }            # the monotonic time of a jline
num() { sed -E 's/^([0-9]+):.*/\1/' <<<"$1"; }                         # its line number
# in_order NAME ERE...: each ERE's first line comes after the previous one's (line and time)
in_order() {
    local n=$1 prev="" cur; shift
    for e in "$@"; do
        cur=$(jline "$n" "$e") || return 1
        if [ -n "$prev" ]; then
            [ "$(num "$cur")" -gt "$(num "$prev")" ] || return 1
            awk -v a="$(ts "$prev")" -v b="$(ts "$cur")" 'BEGIN{exit !(b >= a)}' || return 1
        fi
        prev=$cur
    done
}

# ================================================================ the series
# the SSD (its enrolment goes into the common layer, so before the root image), the root image
SSD=$W/ssd.img; truncate -s 1G "$SSD"
bed_setup "$SSD" > "$W/setup.log" 2>&1 || { cat "$W/setup.log"; die "nix-ssd setup failed"; }
ROOT=$W/root.img; truncate -s 3G "$ROOT"
unshare --mount --propagation private bash -euc '
    m=$(mktemp -d); mount -t overlay overlay -o "lowerdir=$1" "$m"
    mkfs.ext4 -q -F -L root -d "$m" "$2"; umount "$m"' _ "$IL:$(lowerdirs yes)" "$ROOT" || die "root image build failed"
cp "$ROOTFS/boot/vmlinuz-$KVER" "$W/vmlinuz"; cp "$ROOTFS/boot/initrd.img-$KVER" "$W/initrd-tools.img"

# the units, evaluated and rendered; the two dracut initrds
t0=$(now_ms)
mkdir -p "$NIXPKGS" && tar xJf "$NIXPKGS_LIB" -C "$NIXPKGS" --strip-components=1 || die "unpacking $NIXPKGS_LIB failed"
for v in yes no; do
    units_eval archive --arg withPins "$([ $v = yes ] && echo true || echo false)" > "$W/units-$v.archive" 2> "$W/units-eval.log" \
        || { cat "$W/units-eval.log"; die "evaluating tests/boot/initrd-units.nix failed"; }
    rm -rf "$W/include-$v"; mkdir -p "$W/include-$v"; unpack "$W/units-$v.archive" "$W/include-$v" || die "unpacking the units failed"
done
T_EVAL=$(( $(now_ms) - t0 ))
ok host "the module's initrd unit, from the evaluated module, rendered" test -s "$W/include-yes/etc/systemd/system/nix-ssd-pins.service"
echo "  --- nix-ssd-pins.service as installed into the initrd (from the module, evaluated by nixpkgs lib $(cat "$NIXPKGS/lib/.version" 2>/dev/null))"
sed 's/^/  | /' "$W/include-yes/etc/systemd/system/nix-ssd-pins.service"
ok host "it orders itself before initrd-find-nixos-closure.service" grep -qE '^Before=.*initrd-find-nixos-closure\.service' "$W/include-yes/etc/systemd/system/nix-ssd-pins.service"
ok host "it waits for /sysroot/nix/store (RequiresMountsFor)" grep -qx 'RequiresMountsFor=/sysroot/nix/store' "$W/include-yes/etc/systemd/system/nix-ssd-pins.service"
ok host "the negative control's tree has no nix-ssd-pins unit" bash -c "! grep -rq nix-ssd-pins '$W/include-no' && [ -z \"\$(find '$W/include-no' -name 'nix-ssd-pins*')\" ]"

DRACUT=$(dracut_layer) || exit 2
t0=$(now_ms)
for v in yes no; do
    build_initrd "$W/initrd-dracut-$v.img" "$W/include-$v" > "$BED_LOG/dracut-$v.log" 2>&1 \
        || { tail -30 "$BED_LOG/dracut-$v.log"; die "dracut failed"; }
done
T_DRACUT=$(( $(now_ms) - t0 ))
initrd_list "$W/initrd-dracut-yes.img" > "$W/initrd-yes.list" 2>&1
initrd_list "$W/initrd-dracut-no.img" > "$W/initrd-no.list" 2>&1
for f in etc/systemd/system/nix-ssd-pins.service etc/systemd/system/initrd.target.wants/nix-ssd-pins.service \
         usr/lib/nix-ssd-initrd-test/unit-script-nix-ssd-pins-start/bin/nix-ssd-pins-start \
         etc/systemd/system/initrd.target.requires/initrd-find-nixos-closure.service usr/lib/systemd/systemd; do
    ok host "the dracut initrd holds $f" grep -qE " $f( ->|$)" "$W/initrd-yes.list"
done
ok host "the negative control's initrd holds no nix-ssd-pins unit" bash -c "! grep -q nix-ssd-pins '$W/initrd-no.list' && grep -q initrd-find-nixos-closure '$W/initrd-no.list'"
info "$(in_chroot "$DRACUT:$ROOTFS" "" dpkg-query -W -f '${Package} ${Version}' dracut-core): two initrds in $((T_DRACUT / 1000)) s, $(( $(stat -c %s "$W/initrd-dracut-yes.img") / 1048576 )) MiB each; the units evaluated and rendered in $T_EVAL ms"

# ---- pin: SSD present, overlay mode, the bed's usual initrd
iboot pin "$W/initrd-tools.img" "$ROOT" raw yes quiet $QEMU_CMDLINE $QEMU_DT harness.step=pin
S=i-pin
ok $S "booted, step report printed" reported $S
ok $S "overlay on /nix/store" has $S store-top '^ssd-overlay$'
ok $S "nix-daemon answers" has $S daemon '^ok$'
SYS=$(rv $S system)
ok $S "a system built through the daemon: $SYS" bash -c "[[ '$SYS' =~ ^/nix/store/[0-9a-z]{32}-nixos-system-initrd-test-1$ ]]"
ok $S "its closure: 2 paths" has $S closure '^2 paths$'
ok $S "each on the SSD (upper), not in the internal store" bash -c "[ \$(grep -c '^path .*: valid=yes upper=yes lower=no\$' '$BED_LOG/$S.report') = 2 ]"
ok $S "the boot default (/nix/var/nix/profiles/system) is that system" has $S profile "^rc=0 $SYS\$"
ok $S "status flags the boot default as only on the SSD before pin" has $S status-before-pin ' 1 boot-default warnings$'
ok $S "nix-ssd pin succeeded" has $S pin '^rc=0'
ok $S "both paths came out staged, not in the (mounted) lower store" has $S staged-closure '^2 of 2$'
ok $S "status: no boot-default warning after pin (exit 0)" has $S status-after-pin '^rc=0 0 boot-default'
ok $S "verify --check-contents clean" has $S verify '^rc=0 0 problems'
ok $S "no failed units" has $S failed-units '^ *$'
ok $S "the guest powered off by itself (qemu exit 0)" rc_zero pin
[ -n "$SYS" ] || SYS=/nix/store/00000000000000000000000000000000-nixos-system-initrd-test-1   # (the checks below fail)

DCMD=(init="$SYS/init" mitigations=off systemd.mask=tmp.mount rd.shell=0 rd.emergency=poweroff harness.step=boot)
# ---- boot: no SSD, the dracut systemd initrd with the module's unit
iboot boot "$W/initrd-dracut-yes.img" "$W/pin.qcow2" qcow2 no "${DCMD[@]}"
S=i-boot
# the initrd's part of the journal: up to "Switching root." (stage 2's journald later re-reads
# the kernel's ring buffer, so some initrd lines come again after it, with later times)
sed '/systemd\[1\]: Switching root\./q' "$(J boot)" > "$(J boot.initrd)"
ok $S "booted, step report printed (multi-user.target reached)" reported $S
ok $S "systemctl is-system-running: running" has $S state '^running$'
ok $S "no overlay without the SSD" hasnt $S store-top '^ssd-overlay$'
ok $S "the journal of the boot, the initrd's part included, came back" jhas boot 'Switching root\.'
ok $S "the initrd ran systemd from the dracut initrd (initrd.target reached)" jhas boot.initrd 'Reached target initrd\.target'
ok $S "initrd: the module's unit moved the 2 staged paths" jhas boot.initrd 'nix-ssd-pins-start\[[0-9]+\]: nix-ssd: moved 2 staged path\(s\) into the store \(0 were there already\)'
ok $S "initrd: it renamed them in its writable view of /sysroot/nix (no fallback, no failed move)" jhasnt boot.initrd 'nix-ssd: (no writable view|could not move)'
ok $S "initrd: nix-ssd-pins.service finished" jhas boot.initrd 'systemd\[1\]: Finished nix-ssd-pins\.service'
ok $S "initrd: the find-closure stand-in found the init in /sysroot" jhas boot.initrd "initrd-find-nixos-closure \(bed stand-in\): init=$SYS/init found in /sysroot"
ORDER=('systemd\[1\]: Mounted sysroot\.mount'
       'systemd\[1\]: Starting nix-ssd-pins\.service'
       'nix-ssd: moved [0-9]+ staged path'
       'systemd\[1\]: Finished nix-ssd-pins\.service'
       'systemd\[1\]: Starting initrd-find-nixos-closure\.service'
       'initrd-find-nixos-closure \(bed stand-in\): init=.* found in /sysroot'
       'systemd\[1\]: Finished initrd-find-nixos-closure\.service'
       'systemd\[1\]: Reached target initrd\.target'
       'systemd\[1\]: Switching root\.')
ok $S "order: sysroot mounted < pins moved < pins unit finished < find-closure started < found < switch-root" in_order boot.initrd "${ORDER[@]}"
ok $S "the system's init from /nix/store ran (its closure read)" same_init $S
ok $S "stage 2: nix-ssd-pins.service found them in the store and registered them" has $S 'stage2 apply-pins' 'moved 0 staged path\(s\) into /nix/store \(2 were there already\).*registered 2 path'
ok $S "stage 2: the staging is gone" has $S 'staging gone' '^yes$'
ok $S "nix-store --check-validity of the system: ok" has $S check-validity '^rc=0'
ok $S "the whole closure valid and present" has $S closure-whole '^2 of 2$'
ok $S "nix-store --verify clean" has $S verify-plain '^rc=0 0 problems'
ok $S "nix-store --verify --check-contents clean" has $S verify '^rc=0 0 problems'
ok $S "the boot default is still that system" has $S profile "^$SYS\$"
ok $S "Nix works (add through the daemon)" has $S add '^/nix/store/.* valid=yes$'
ok $S "no failed units" has $S failed-units '^ *$'
ok $S "the guest powered off by itself (qemu exit 0)" rc_zero boot

# ---- negative: the same disk, the same initrd without the module's unit
iboot negative "$W/initrd-dracut-no.img" "$W/pin.qcow2" qcow2 no "${DCMD[@]}"
S=i-negative
ok $S "the initrd gave up and sent its journal (emergency)" has $S step '^initrd-emergency$'
ok $S "no nix-ssd unit ran" jhasnt negative 'nix-ssd'
ok $S "the find-closure stand-in: the init is not in /sysroot" jhas negative "initrd-find-nixos-closure \(bed stand-in\): init=$SYS/init is not in /sysroot"
ok $S "initrd-find-nixos-closure.service failed" jhas negative 'Failed to start initrd-find-nixos-closure\.service'
ok $S "... and so did initrd.target (a dependency failed): emergency" jhas negative 'initrd\.target: Job initrd\.target/start failed with result .dependency.'
ok $S "no switch-root" jhasnt negative 'Switching root\.'
ok $S "the guest powered off by itself (qemu exit 0)" rc_zero negative

# ---- what the closing note quotes: the initrd part of the boot's journal, in journal order
# show NAME ERE...: the first line each ERE matches in NAME's journal, in the journal's order
show() { local n=$1 e; shift; for e in "$@"; do jline "$n" "$e"; done | sort -t: -k1,1n -u | sed 's/^[0-9]*:/  | /'; }
echo "  --- the systemd initrd's journal (boot i-boot, journalctl -b -o short-monotonic in stage 2), the lines that show the order"
show boot.initrd "${ORDER[@]}" 'systemd\[1\]: Starting initrd-switch-root\.service' 'systemd\[1\]: Starting initrd-cleanup\.service'
echo "  --- stage 2 of that boot"
show boot 'nix-ssd\[[0-9]+\]: moved [0-9]+ staged path' 'nix-ssd\[[0-9]+\]: registered' 'systemd\[1\]: Finished nix-ssd-pins\.service - Move closures' \
    'systemd\[1\]: Started nix-daemon\.service' 'systemd\[1\]: Reached target multi-user\.target'
echo "  --- the negative control's initrd journal"
show negative 'systemd\[1\]: Mounted sysroot\.mount' 'systemd\[1\]: Starting initrd-find-nixos-closure\.service' 'bed stand-in' \
    'Failed to start initrd-find-nixos-closure\.service' 'Dependency failed for initrd\.target' 'initrd\.target: Triggering OnFailure' \
    'Starting harness-initrd-emergency\.service'
info "boots (wall, ms): pin ${IBOOT_MS[pin]:-?}, boot ${IBOOT_MS[boot]:-?}, negative ${IBOOT_MS[negative]:-?}; in boot: switch-root at $(ts "$(jline boot.initrd 'Switching root\.')" 2>/dev/null) s, multi-user at $(ts "$(jline boot 'Reached target multi-user\.target')" 2>/dev/null) s (monotonic); series wall $(( ($(now_ms) - t_series) / 1000 )) s"
for s in pin boot negative; do
    if [[ " ${BOOT_FAILED[*]} " == *" i-$s "* ]]; then
        echo "--- report of i-$s ($BED_LOG/i-$s.report; journal $BED_LOG/i-$s.journal)"; cat "$BED_LOG/i-$s.report"
        echo "--- console tail"; tail -30 "$BED_LOG/i-$s.console"
    fi
done
summary
