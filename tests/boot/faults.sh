#!/bin/bash
# Fault matrix (issue 7) in the boot bed: one Debian 13 guest (systemd 257, Nix 2.26.3) per
# series, whose eMMC state and SSD image persist across the series' boots.
# nspawn series (host kernel, loop device; 1-2 s a boot):
#   n1  SSD present: add + pin; the SSD fills up during builds (build dir, then output: Nix
#       leaves the failed output in the store and the SSD is full); shut down full
#   n2  still full at boot: nix-ssd activate released the space reserve before nix-daemon
#       opened its database; `nix-ssd reclaim` frees the space
#   (host) the SSD's metadata is overwritten: corrupt, its label still readable
#   n3  corrupt SSD: its mount fails, Nix works on eMMC; `nix-ssd setup --force` re-makes it
#   n4  the re-made SSD
# qemu series (TCG: real kernel, udev, PCI hotplug through the monitor):
#   q1  SSD present: add R1, sync, add R2, then the SSD is pulled (device_del)
#   q2  no SSD at boot; it appears late (device_add) while nix-daemon runs
#   q3  SSD back: what was valid before the removal
#   q4  SSD: a 9-path closure imported, the SSD pulled as soon as the import returns
#   q5  SSD back: each imported path valid and whole, or not valid; a 2000-file build, pulled
#   q6  SSD back: the built path valid and whole, or not valid
#   (q4-q6 FAULT_ROUNDS times: FAULT_ROUNDS=5 for the full series)
#   q7  SSD: a switch returns before its background copy into the internal store; power lost then
#   q8  no SSD: the previous default boots; status says what waits
#   q9  SSD: a clean shutdown finishes the copy and writes the menu
#   q10 no SSD: the new default boots
# Every step: the machine is up, Nix works, `nix-store --verify --check-contents` is clean and
# every path the database calls valid is present (`nix path-info --all`).
# Usage: sudo [FAULT_ROUNDS=5] tests/boot/faults.sh   (binaries: GENERATOR=…, NIX_SSD_CLI=…, NIX_SSD_DEB=…)
# Last line: "faults: N passed, M failed".
set -uo pipefail
CHECK_SUITE=faults; . "$(dirname "$0")/../lib/check.sh"; need_root
. "$(dirname "$0")/lib.sh"
bed_traps
t_series=$(now_ms)
bed_series_begin
FL=$(series_layer faults client-conf)
# the boot loader's installer (extlinux, as NixOS writes it) for the switches of q7-q10, and
# nix-ssd.service's lines (at-shutdown's) on the console too
install -m755 "$BED_DIR/guest/ll-menu" "$FL/usr/local/lib/harness/ll-menu"
mkdir -p "$FL/etc/systemd/system/nix-ssd.service.d"
printf '[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n' > "$FL/etc/systemd/system/nix-ssd.service.d/50-bed.conf"

W=$BED_WORK/faults; rm -rf "$W"; mkdir -p "$W"
STEP_MS=(); declare -A STEP_RC; rounds=()
# FAULT_SERIES: which series run (default all): nspawn (full, corrupt), qemu (pulled, late),
# power (power lost after a switch); for working on one of them
series() { [[ " ${FAULT_SERIES:-nspawn qemu power} " == *" $1 "* ]]; }
want_qemu() { series qemu || series power; }

# ---------------------------------------------------------------- nspawn series
NW=$W/nspawn; mkdir -p "$NW/upper" "$NW/work" "$NW/merged" "$NW/out" "$NW/devdisk/by-label"
NSSD=$W/nspawn-ssd.img; truncate -s 320M "$NSSD"   # small: filling it takes seconds
bed_setup "$NSSD" >"$W/setup.log" 2>&1 || { cat "$W/setup.log"; die "nix-ssd setup failed"; }
nstep() {  # nstep NAME: one nspawn boot with the SSD image on a loop device
    local name=$1 loop t0 rc
    rm -rf "$NW/out"/* "$NW/devdisk/by-label"/*; echo "$name" > "$NW/out/step"
    loop=$(losetup --find --show "$NSSD") || die "losetup failed"; BED_LOOPS+=("$loop")
    ln -s "$loop" "$NW/devdisk/by-label/NIX_SSD"
    t0=$(now_ms)
    nspawn_layers "$FL:$(lowerdirs yes)" "$NW" --bind="$loop" --bind="$NW/devdisk:/dev/disk" /usr/sbin/nixos-like-init \
        > "$BED_LOG/f-$name.console" 2>&1 < /dev/null
    rc=$?; BOOT_MS=$(( $(now_ms) - t0 )); STEP_RC[$name]=$rc
    losetup -d "$loop"; BED_LOOPS=("${BED_LOOPS[@]/$loop}")
    sed -n '/^HARNESS-BEGIN/,/^HARNESS-END/p' "$NW/out/report" 2>/dev/null > "$BED_LOG/f-$name.report"
    log "faults $name (nspawn): rc=$rc wall ${BOOT_MS} ms"
    STEP_MS+=("$name ${BOOT_MS}")
}

# ---------------------------------------------------------------- qemu series
# Root disk: an ext4 image of the guest, written in place across the series (not a snapshot).
# PCI slots fixed (root 0x4, SSD 0x5): the root disk is vda whatever is attached.
QROOT=$W/root.img; QSSD=$W/qemu-ssd.img
qemu_prepare() {
    # the SSD first: its enrolment goes into the root image
    truncate -s 320M "$QSSD"
    bed_setup "$QSSD" >"$W/setup.log" 2>&1 || { cat "$W/setup.log"; die "nix-ssd setup failed"; }
    truncate -s 3G "$QROOT"
    unshare --mount --propagation private bash -euc '
        m=$(mktemp -d); mount -t overlay overlay -o "lowerdir=$1" "$m"
        mkfs.ext4 -q -F -L root -d "$m" "$2"; umount "$m"' _ "$FL:$(lowerdirs yes)" "$QROOT" || die "root image build failed"
    cp "$ROOTFS"/boot/vmlinuz-* "$W/vmlinuz"; cp "$ROOTFS"/boot/initrd.img-* "$W/initrd.img"
}
# host_action ACTION DIR: what a guest's "HOST-ACTION: ACTION" line asks for, via the monitor
host_action() {
    case $1 in
    device_del) echo "device_del ssd" ;;
    device_add) printf 'drive_add 0 if=none,id=ssdd,file=%s,format=raw,cache=unsafe\ndevice_add virtio-blk-pci,drive=ssdd,id=ssd,addr=0x5\n' "$QSSD" ;;
    quit) echo "quit" ;;   # the power lost: what the guest wrote to its disks stays, its caches go
    *) log "unknown host action '$1'"; return ;;
    esac > "$2/mon.in"
    log "host action: $1"; ACTIONS+=("$1")
}
qstep() {  # qstep NAME SSD(yes|no): one qemu boot; the step's name is on the command line
    local name=$1 ssd=$2 d=$W/q t0 rc qpid mpid done_=0 acts
    rm -rf "$d"; mkdir -p "$d"; mkfifo "$d/mon.in" "$d/mon.out"
    local out=$BED_LOG/f-$name.out; : > "$out"; ACTIONS=()
    local disk=() dt=""
    if [ "$ssd" = yes ]; then
        disk=(-drive "file=$QSSD,if=none,id=ssdd,format=raw,cache=unsafe" -device virtio-blk-pci,drive=ssdd,id=ssd,addr=0x5)
        dt=$QEMU_DT
    fi
    t0=$(now_ms)
    timeout 900 qemu-system-x86_64 -accel "$QEMU_ACCEL" -cpu "$QEMU_CPU" -smp 2 -m 1536 \
        -nodefaults -no-user-config -display none -no-reboot \
        -serial stdio -serial "file:$out" -chardev "pipe,id=mon0,path=$d/mon" -mon chardev=mon0,mode=readline \
        -kernel "$W/vmlinuz" -initrd "$W/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet $QEMU_CMDLINE $dt harness.step=$name" \
        -drive "file=$QROOT,if=none,id=rootd,format=raw,cache=unsafe" -device virtio-blk-pci,drive=rootd,addr=0x4 "${disk[@]}" \
        > "$BED_LOG/f-$name.console" 2>&1 < /dev/null &
    qpid=$!
    cat "$d/mon.out" > "$BED_LOG/f-$name.monitor" 2>/dev/null & mpid=$!
    while kill -0 "$qpid" 2>/dev/null; do
        mapfile -t acts < <(tr -d '\r' < "$out" | sed -n 's/^HOST-ACTION: \([a-z_]*\).*/\1/p')
        while [ "$done_" -lt "${#acts[@]}" ]; do host_action "${acts[$done_]}" "$d"; done_=$((done_ + 1)); done
        sleep 0.5
    done
    wait "$qpid"; rc=$?
    kill "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null
    BOOT_MS=$(( $(now_ms) - t0 )); STEP_RC[$name]=$rc
    tr -d '\r' < "$out" | sed -n '/^HARNESS-BEGIN/,/^HARNESS-END/p' > "$BED_LOG/f-$name.report"
    rm -rf "$d"
    log "faults $name (qemu, ssd=$ssd, actions: ${ACTIONS[*]:-none}): rc=$rc wall ${BOOT_MS} ms"
    STEP_MS+=("$name ${BOOT_MS}")
}

# ---------------------------------------------------------------- assertion helpers
either() { local a=(); while [ "$1" != -- ]; do a+=("$1"); shift; done; shift; "${a[@]}" || "$@"; }
step_rc_zero() { [ "${STEP_RC[$1]:-x}" = 0 ]; }
only_ours_failed() { ! rv "$1" failed-units | tr ' ' '\n' | grep -v '^$' | grep -qvE 'nix-ssd|nix\\x2dssd'; }
not_timeout() { local v; v=$(rv "$1" "$2"); [[ $v =~ ^rc=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" != 124 ]; }
same_pid() { local a b; a=$(rv "$1" daemon-pid-before); b=$(rv "$1" daemon-pid-after); [ -n "$a" ] && [ "$a" != 0 ] && [ "$a" = "$b" ]; }
num_ge() { local v; v=$(rv "$1" "$2" | awk '{print $1}'); [[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge "$3" ]; }   # num_ge NAME KEY MIN
num_le() { local v; v=$(rv "$1" "$2" | awk '{print $1}'); [[ $v =~ ^[0-9]+$ ]] && [ "$v" -le "$3" ]; }
free_back() { local a b; a=$(rv "$1" free-before-mib); b=$(rv "$1" "$2"); [[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] && [ $((a - b)) -le 16 ]; }
acted() { [[ " ${ACTIONS[*]} " == *" $1 "* ]]; }   # acted ACTION: the host did it in the last qstep
menu_is() { [ -n "$(rv "$1" "$2")" ] && [ "$(rv "$1" menu-default | awk '{print $2}')" = "$(rv "$1" "$2")" ]; }   # menu_is NAME KEY
booted() {
    ok "$1" "booted, step report printed" reported "$1"
    ok "$1" "nix-daemon answers" has "$1" daemon '^ok$'
}
clean_store() {  # clean_store NAME KEY: verify --check-contents clean and nothing valid missing
    ok "$1" "nix-store --verify --check-contents clean ($2)" has "$1" "$2" '^rc=0 0 problems'
    ok "$1" "every valid path is present (nix path-info --all)" has "$1" valid-present '^[1-9][0-9]* checked 0 missing$'
}

if series nspawn; then
# ================================================================ nspawn: full, corrupt
log "=== faults: nspawn series (SSD full, SSD corrupt)"
nstep n1
S=f-n1
booted $S
ok $S "overlay on /nix/store" has $S store-top '^ssd-overlay$'
ok $S "activate made the 64 MiB space reserve" has $S reserve '^67108864$'
ok $S "add A on the SSD" has $S "add A" '^rc=0 /nix/store/'
ok $S "build B on the SSD, pinned to eMMC" has $S "pin B" '^rc=0'
ok $S "a build that fills the build dir fails with ENOSPC, no output" has $S full-builddir '^rc=[1-9][0-9]* out=none [1-9]'
ok $S "its build dir is gone afterwards" has $S build-dir-left '^0$'
ok $S "the space is back after it" free_back $S free-after-builddir-mib
ok $S "a build whose output fills the SSD fails with ENOSPC, no output" has $S full-output '^rc=[1-9][0-9]* out=none [1-9]'
ok $S "the failed output is left in the store (Nix: until GC): SSD full" num_le $S free-after-output-mib 0
ok $S "Nix calls on the full SSD fail, never hang" not_timeout $S add-while-full
ok $S "status: broken (exit 2), says the SSD is full and what to run" has $S status '^rc=2 '
ok $S "status names nix-ssd reclaim" has $S status-text 'SSD is full .*nix-ssd reclaim'
ok $S "the guest shut down by itself" step_rc_zero n1

nstep n2
S=f-n2
booted $S
ok $S "activate released the reserve before nix-daemon (journal)" has $S activate-said 'SSD is full .*released the 64 MiB space reserve'
ok $S "overlay on /nix/store" has $S store-top '^ssd-overlay$'
ok $S "Nix works on the full SSD: add C" has $S "add C" '^rc=0 /nix/store/'
for x in A B C; do ok $S "path $x valid and present" has $S "path $x" '^valid=yes exists=yes content=[^ ]'; done
clean_store $S verify-1
ok $S "nix-ssd reclaim succeeded" has $S reclaim '^rc=0 '
ok $S "reclaim freed the failed output (>= 150 MiB free)" num_ge $S free-after-reclaim-mib 150
ok $S "no partial output left" has $S partial-output-left '^0$'
ok $S "reclaim made the reserve again" has $S reserve-after-reclaim '^67108864$'
ok $S "build E after reclaim" has $S "build E" '^rc=0 /nix/store/'
for x in A B C E; do ok $S "path $x valid after reclaim (rooted)" has $S "path $x" '^valid=yes exists=yes'; done
ok $S "verify clean after reclaim" has $S verify-2 '^rc=0 0 problems'
ok $S "status: healthy (exit 0) after reclaim" bash -c "grep -A999 'reclaim:' '$BED_LOG/$S.report' | grep -q '^status: rc=0 '"
ok $S "no failed units" has $S failed-units '^ *$'

# the SSD's metadata overwritten (superblock and label kept: blkid still finds it)
dd if=/dev/urandom of="$NSSD" bs=1M seek=1 count=319 conv=notrunc status=none
ok host "the corrupted SSD image still carries the label NIX_SSD" bash -c "blkid -p -o value -s LABEL '$NSSD' | grep -qx NIX_SSD"

nstep n3
S=f-n3
booted $S
ok $S "no overlay on a corrupt SSD" hasnt $S store-top '^ssd-overlay$'
ok $S "its mount failed" has $S mount-unit 'failed'
ok $S "pinned B valid and readable" has $S "path B" '^valid=yes exists=yes content=[^ ]'
ok $S "SSD path A not valid" has $S "path A" '^valid=no'
clean_store $S verify-1
ok $S "add I on eMMC" has $S "add I" '^rc=0 /nix/store/'
ok $S "build J on eMMC" has $S "build J" '^rc=0 /nix/store/'
ok $S "status: broken (exit 2)" has $S status '^rc=2 '
ok $S "the failed unit is our mount" has $S failed-units 'mnt-nix'
ok $S "no failed unit other than ours" only_ours_failed $S
ok $S "nix-ssd setup --force re-made the SSD" has $S setup-force '^rc=0'

nstep n4
S=f-n4
booted $S
ok $S "overlay on the re-made SSD" has $S store-top '^ssd-overlay$'
for x in B I J; do ok $S "path $x (eMMC) valid and present" has $S "path $x" '^valid=yes exists=yes'; done
clean_store $S verify-1
for x in K L; do ok $S "$x added/built on the SSD, valid" has $S "path $x" '^valid=yes exists=yes'; done
ok $S "status: healthy (exit 0)" has $S status '^rc=0 '
ok $S "no failed units" has $S failed-units '^ *$'
fi

# ================================================================ qemu: removal, late
want_qemu && qemu_prepare
if series qemu; then
log "=== faults: qemu series (SSD pulled while running, SSD late)"
qstep q1 yes
S=f-q1
booted $S
ok $S "overlay on /nix/store" has $S store-top '^ssd-overlay$'
for x in R1 R2; do ok $S "$x added on the SSD" has $S "add $x" '^rc=0 /nix/store/'; done
ok $S "the guest saw the SSD go (device_del)" has $S device_del-seen-ms '^[0-9]+$'
ok $S "machine up after the removal (eMMC writable)" has $S emmc-after-removal '^ok$'
ok $S "Nix calls after the removal fail or work, never hang" not_timeout $S add-after-removal
ok $S "status after the removal: broken (exit 2)" has $S status '^rc=2 '
ok $S "status says the SSD was removed while running" has $S status-text 'removed while running'
ok $S "the guest shut down by itself (qemu exit 0)" step_rc_zero q1
ok $S "no failed unit other than ours" only_ours_failed $S

qstep q2 no
S=f-q2
booted $S
ok $S "no overlay without the SSD" hasnt $S store-top '^ssd-overlay$'
for x in R1 R2; do ok $S "SSD path $x not valid without the SSD" has $S "path $x" '^valid=no'; done
clean_store $S verify-1
ok $S "add F on eMMC" has $S "add F" '^rc=0 /nix/store/'
ok $S "the guest saw the late SSD (device_add, udev link)" has $S device_add-seen-ms '^[0-9]+$'
ok $S "no overlay under the running daemon" hasnt $S store-top-after-add '^ssd-overlay$'
ok $S "nix-daemon not restarted" same_pid $S
ok $S "daemon answers after the late SSD" has $S daemon-after-add '^ok$'
ok $S "add G after the late SSD" has $S "add G" '^rc=0 /nix/store/'
ok $S "verify clean after the late SSD" has $S verify-2 '^rc=0 0 problems'
ok $S "status: broken (exit 2) until the next boot" has $S status '^rc=2 '
ok $S "no failed units" has $S failed-units '^ *$'

qstep q3 yes
S=f-q3
booted $S
ok $S "overlay on /nix/store again" has $S store-top '^ssd-overlay$'
ok $S "R1 (synced before the removal) valid and present" has $S "path R1" '^valid=yes exists=yes content=R1-'
ok $S "R2 (not synced): valid with its content, or not valid" either has $S 'path R2' '^valid=yes exists=yes content=R2-' -- has $S 'path R2' '^valid=no'
for x in F G; do ok $S "eMMC path $x still valid" has $S "path $x" '^valid=yes exists=yes'; done
clean_store $S verify-1
ok $S "add H on the SSD" has $S "add H" '^rc=0 /nix/store/'
ok $S "status: healthy (exit 0)" has $S status '^rc=0 '
ok $S "no failed units" has $S failed-units '^ *$'

# ---- pulled right after an import, right after a build (FAULT_ROUNDS times; 5 for the full
# series, 1 in the test command): no path may stay valid without its whole files
# after_pull NAME CLOSURE N: the boot after a pull found it, and the closure's N paths are each
# valid with their whole files or not valid; the store is clean
after_pull() {
    booted "$1"
    ok "$1" "activation found the unclean stop and verified what it registered" has "$1" activation-check 'not stopped cleanly: verified the [0-9]+ path'
    ok "$1" "$4" has "$1" "closure $2" "^$3 paths, .* 0 valid but not whole\$"
    clean_store "$1" verify-1
}
for r in $(seq 1 "${FAULT_ROUNDS:-1}"); do
    sfx=$([ "$r" = 1 ] || echo ".$r"); rounds+=("q4$sfx" "q5$sfx" "q6$sfx")
    qstep "q4$sfx" yes
    S=f-q4$sfx
    booted $S
    ok $S "overlay on /nix/store" has $S store-top '^ssd-overlay$'
    ok $S "a 9-path closure exported and deleted again" has $S "imp prepared" '^9 paths, [0-9]+ MiB exported, deleted again: [1-9]'
    ok $S "import returned 0" has $S import '^rc=0 9 paths'
    ok $S "the guest saw the SSD go right after (device_del)" has $S device_del-seen-ms '^[0-9]+$'
    ok $S "the guest shut down by itself (qemu exit 0)" step_rc_zero "q4$sfx"

    qstep "q5$sfx" yes
    S=f-q5$sfx
    after_pull $S imp 9 "every imported path valid with its whole files, or not valid"
    ok $S "status: healthy (exit 0) before the next pull" has $S status '^rc=0 '
    ok $S "no failed units before the next pull" has $S failed-before-pull '^ *$'
    ok $S "a build of 2000 files returned 0" has $S build '^rc=0 /nix/store/'
    ok $S "the guest saw the SSD go right after (device_del)" has $S device_del-seen-ms '^[0-9]+$'
    ok $S "the guest shut down by itself (qemu exit 0)" step_rc_zero "q5$sfx"

    qstep "q6$sfx" yes
    S=f-q6$sfx
    after_pull $S many 1 "the built path valid with its whole files, or not valid"
    ok $S "status: healthy (exit 0)" has $S status '^rc=0 '
    ok $S "no failed units" has $S failed-units '^ *$'
    grep -h "^closure" "$BED_LOG/f-q5$sfx.report" "$BED_LOG/f-q6$sfx.report" | sed "s/^/  round $r: /"
done

fi
if series power; then
# ---- power lost right after a switch returned, before its background copy finished (issue 21)
log "=== faults: power lost after a switch (background copy into the internal store)"
qstep q7 yes
S=f-q7
ok $S "overlay on /nix/store" has $S store-top '^ssd-overlay$'
ok $S "the previous default was installed (its copy done): the menu's default boots without the SSD" has $S menu-default 'boots$'
ok $S "the switch returned (exit 0)" has $S install-rc '^0$'
ok $S "... before its copy into the internal store finished" has $S pending-when-the-power-went '^yes$'
ok $S "the power was lost then (qemu quit)" acted quit
qstep q8 no
S=f-q8
booted $S
ok $S "no SSD: the menu's default is the previous system" menu_is $S old-system
ok $S "... and it boots without the SSD (its init runs)" has $S menu-default-runs '^system-old$'
ok $S "the switch waits (pending), status says so" has $S status-text '^pending: +/nix/store/[a-z0-9]+-nixos-system-faults-new, made the boot default by a switch while its closure was on the SSD, waits for the SSD'
clean_store $S verify-1
qstep q9 yes
S=f-q9
booted $S
ok $S "the SSD back: still pending before the shutdown" has $S pending '^yes$'
ok $S "the clean shutdown finished the copy and ran the loader's installer" \
    bash -c "grep -a 'nix-ssd\[' '$BED_LOG/f-q9.console' | grep -q \"the boot loader's installer ran for /nix/store/[a-z0-9]*-nixos-system-faults-new\""
qstep q10 no
S=f-q10
booted $S
ok $S "no SSD: the new system is the menu's default" menu_is $S new-system
ok $S "... and it boots without the SSD (moved in at boot, its init runs)" has $S menu-default-runs '^system-new$'
ok $S "nothing pending" has $S pending '^no$'
clean_store $S verify-1

fi
echo "faults boots (ms): ${STEP_MS[*]}; series wall $(( $(now_ms) - t_series )) ms"
for s in n1 n2 n3 n4 q1 q2 q3 "${rounds[@]}" q7 q8 q9 q10; do
    if [[ " ${BOOT_FAILED[*]} " == *" f-$s "* ]]; then
        echo "--- report of f-$s"; cat "$BED_LOG/f-$s.report"; echo "--- console tail"; tail -20 "$BED_LOG/f-$s.console"
    fi
done
summary
