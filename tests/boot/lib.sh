# shellcheck shell=bash
# Shared helpers of the nix-ssd boot bed (run.sh, bench.sh). Source it; needs root.
# Outputs: caches under $BED_CACHE (debootstrapped rootfs keyed by a hash of the package list),
# scratch under $BED_WORK (images, logs). Nothing is written next to these scripts.
BED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BED_CACHE=${BED_CACHE:-/var/cache/nix-ssd-bed}
BED_WORK=${BED_WORK:-/var/tmp/nix-ssd-bed}
BED_LOG=${BED_LOG:-$BED_WORK/logs}
mkdir -p "$BED_CACHE" "$BED_WORK" "$BED_LOG"

# Guest = Debian 13. libdbi-perl: nix-bin -> libdbd-sqlite3-perl -> virtual perl-dbdabi-94,
# which debootstrap cannot resolve by itself.
GUEST_SUITE=trixie
GUEST_PKGS=systemd,systemd-sysv,udev,dbus,btrfs-progs,kmod,nix-bin,nix-setup-systemd,libdbi-perl,linux-image-amd64,initramfs-tools

# log, die, now_ms and the pass/fail counters with ok's building blocks: tests/lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
# mirror_uri: the Debian archive URI the HOST's apt uses, read at run time (no host name is
# written in any file of the bed). deb822 *.sources first, then one-line sources.list.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/debian-mirror.sh"

# host_packages: install what the bed needs on the host (idempotent, quiet when done).
# qemu-system-x86 must match qemu-utils: when qemu-utils comes from bookworm-backports, the
# four qemu-system packages are taken from there through a private SourceParts dir (never
# "-t bookworm-backports" for everything: that pulls in a newer systemd).
host_packages() {
    local need=() p
    for p in debootstrap systemd-container btrfs-progs e2fsprogs util-linux qemu-utils; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
    done
    command -v bc >/dev/null || need+=(bc)
    export DEBIAN_FRONTEND=noninteractive
    if [ ${#need[@]} -gt 0 ]; then
        log "apt-get install ${need[*]}"
        apt-get update -qq >/dev/null || true
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
    fi
    command -v qemu-system-x86_64 >/dev/null && return 0
    local uv; uv=$(dpkg-query -W -f='${Version}' qemu-utils)
    if [[ $uv == *bpo12* ]]; then
        local d=$BED_WORK/apt-bpo; rm -rf "$d"; mkdir -p "$d"
        cp /etc/apt/sources.list.d/*.sources "$d/" 2>/dev/null || true
        printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$(mirror_uri)" > "$d/bed-backports.sources"
        local o=(-o "Dir::Etc::SourceParts=$d")
        log "qemu-utils is $uv (backports): qemu-system-x86 $uv from bookworm-backports"
        apt-get "${o[@]}" update -qq >/dev/null || die "apt-get update (backports) failed"
        apt-get "${o[@]}" install -y -qq --no-install-recommends \
            "qemu-system-x86=$uv" "qemu-system-common=$uv" "qemu-system-data=$uv" seabios/bookworm-backports >/dev/null \
            || die "installing qemu-system-x86 $uv failed"
        apt-get update -qq >/dev/null || true      # back to the host's own lists
    else
        apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null || die "apt-get install qemu-system-x86 failed"
    fi
}

# ---------------------------------------------------------------- guest rootfs (cached)
# Level 1: the raw debootstrap tree, $BED_CACHE/rootfs-<hash of suite+package list>; never
# modified afterwards. Level 2: a prepared copy (apt cache dropped, eMMC Nix DB, nix.conf,
# masks, slim initramfs), $BED_CACHE/prepared-<hash>-<hash of prepare_rootfs>. Per-run files
# (this checkout's binaries, the harness) are never put in the cache: they go into overlay
# layers (see stage_payload).
debootstrap_key() { printf 'v1 %s %s minbase\n' "$GUEST_SUITE" "$GUEST_PKGS" | sha256sum | cut -c1-16; }

rootfs_base() {   # prints the path of the cached debootstrap tree, building it if needed
    local key dir; key=$(debootstrap_key); dir=$BED_CACHE/rootfs-$key
    mkdir -p "$BED_CACHE"
    # one builder at a time (concurrent runs share the cache); the lock goes with this shell
    # (rootfs_prepared holds it already when it calls us)
    [ -n "${BED_CACHE_LOCKED:-}" ] || { exec {BED_LOCK_FD}> "$BED_CACHE/.lock"; flock "$BED_LOCK_FD"; }
    if [ ! -x "$dir/lib/systemd/systemd" ]; then
        # a debootstrap that was killed leaves /proc (and more) mounted in the partial tree
        grep -F " $dir.partial/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
        local m t0; m=$(mirror_uri) || die "no Debian mirror in the host's apt sources"; t0=$(now_ms)
        log "debootstrap $GUEST_SUITE -> $dir (mirror from host apt sources; ~70 s)"
        rm -rf "$dir.partial"
        debootstrap --variant=minbase --include="$GUEST_PKGS" "$GUEST_SUITE" "$dir.partial" "$m" \
            > "$BED_LOG/debootstrap.log" 2>&1 || { tail -30 "$BED_LOG/debootstrap.log" >&2; die "debootstrap failed"; }
        chroot "$dir.partial" apt-get clean
        mv "$dir.partial" "$dir"
        log "debootstrap done in $(( ($(now_ms) - t0) / 1000 )) s"
    fi
    [ -n "${BED_CACHE_LOCKED:-}" ] || flock -u "$BED_LOCK_FD"
    echo "$dir"
}

# prepare_rootfs DIR: everything of the guest that does not depend on this checkout.
prepare_rootfs() {
    local R=$1
    # base Nix config: no sandbox (nspawn, TCG), no substituters (no network), builds as root
    printf 'sandbox = false\nsubstituters =\nbuild-users-group =\nexperimental-features = nix-command\n' > "$R/etc/nix/nix.conf"
    echo harness > "$R/etc/hostname"; : > "$R/etc/machine-id"
    sed -i 's/^root:[^:]*:/root::/' "$R/etc/shadow"        # passwordless root (debugging)
    # agetty vhangup()s the console (the report vanishes); the rest only costs TCG time
    local u
    for u in console-getty.service serial-getty@.service getty@.service getty-static.service \
             e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
             fstrim.timer systemd-tmpfiles-clean.timer \
             ldconfig.service systemd-update-done.service systemd-journal-catalog-update.service \
             systemd-hwdb-update.service systemd-logind.service; do
        ln -sfn /dev/null "$R/etc/systemd/system/$u"
    done
    # (the masks above: the ConditionNeedsUpdate= services run on every boot of a pristine
    # image and cost seconds under TCG; logind is irrelevant here and takes 4-5 s under TCG)
    mkdir -p "$R/etc/systemd/journald.conf.d"    # runtime journal only: no flush to /var
    printf '[Journal]\nStorage=volatile\n' > "$R/etc/systemd/journald.conf.d/50-bed.conf"
    mkdir -p "$R/nix/store" "$R/mnt/nix-ssd"
    # eMMC Nix DB + one path: the local-overlay store needs an existing lower DB
    # ("database does not exist, and cannot be created in read-only mode")
    if [ ! -e "$R/nix/var/nix/db/db.sqlite" ]; then
        unshare --mount --propagation private bash -c "mount -t proc proc '$R/proc' && echo emmc-base > '$R/tmp/emmc-base' &&
          chroot '$R' nix-store --add /tmp/emmc-base > '$R/etc/harness-emmc-base-path' && rm '$R/tmp/emmc-base'" \
          || die "eMMC Nix DB init failed"
    fi
    # slim initramfs for qemu: only what mounts / from virtio
    sed -i 's/^MODULES=.*/MODULES=list/' "$R/etc/initramfs-tools/initramfs.conf"
    printf 'virtio_pci\nvirtio_blk\next4\n' > "$R/etc/initramfs-tools/modules"
    chroot "$R" update-initramfs -u -k all > "$BED_LOG/update-initramfs.log" 2>&1 || die "update-initramfs failed"
}

rootfs_prepared() {   # prints the path of the prepared rootfs, building it if needed
    local base key pk dir lfd
    mkdir -p "$BED_CACHE"; exec {lfd}> "$BED_CACHE/.lock"; flock "$lfd"   # builder lock, as in rootfs_base
    base=$(BED_CACHE_LOCKED=1 rootfs_base) || exit 2; key=$(debootstrap_key)
    pk=$(declare -f prepare_rootfs | sha256sum | cut -c1-8)
    dir=$BED_CACHE/prepared-$key-$pk
    if [ ! -e "$dir/.bed-prepared" ]; then
        local t0; t0=$(now_ms); log "preparing rootfs -> $dir"
        rm -rf "$BED_CACHE"/prepared-"$key"-*      # older preparations of this base
        cp -a "$base" "$dir.partial"
        prepare_rootfs "$dir.partial"; touch "$dir.partial/.bed-prepared"
        mv "$dir.partial" "$dir"
        log "rootfs prepared in $(( ($(now_ms) - t0) / 1000 )) s"
    fi
    flock -u "$lfd"; exec {lfd}>&-
    echo "$dir"
}

# ---------------------------------------------------------------- binaries under test
# GENERATOR / NIX_SSD_CLI from the environment, else "cargo build --release" of the checkout
# that holds this directory and its target/release/{nix-ssd-generator,nix-ssd}.
resolve_binaries() {
    local repo t0; repo=$(cd "$BED_DIR/../.." && pwd)
    if [ -z "${GENERATOR:-}" ] || [ -z "${NIX_SSD_CLI:-}" ]; then
        PATH=$PATH:$HOME/.cargo/bin
        command -v cargo >/dev/null || die "cargo not found and GENERATOR/NIX_SSD_CLI not set"
        log "cargo build --release in $repo"; t0=$(now_ms)
        (cd "$repo" && cargo build --release) > "$BED_LOG/cargo-build.log" 2>&1 \
            || { tail -30 "$BED_LOG/cargo-build.log" >&2; die "cargo build --release failed"; }
        log "cargo build: $(( $(now_ms) - t0 )) ms"
        GENERATOR=${GENERATOR:-$repo/target/release/nix-ssd-generator}
        NIX_SSD_CLI=${NIX_SSD_CLI:-$repo/target/release/nix-ssd}
    fi
    [ -x "$GENERATOR" ] || die "generator $GENERATOR is not an executable"
    [ -x "$NIX_SSD_CLI" ] || die "CLI $NIX_SSD_CLI is not an executable"
    log "generator: $GENERATOR ($(sha256sum < "$GENERATOR" | cut -c1-12)), CLI: $NIX_SSD_CLI ($(sha256sum < "$NIX_SSD_CLI" | cut -c1-12))"
}

# ---------------------------------------------------------------- per-run layers
# $BED_WORK/layers/common: the harness (report service, first-answer probe, NixOS-like init,
# a generator that records what generators are given). $BED_WORK/layers/gen: this checkout's
# nix-ssd-generator + nix-ssd. Guests see  gen:common:rootfs  (or common:rootfs = baseline).
# install_deb_layer DEB LAYER: `dpkg -i DEB` on the prepared rootfs, with LAYER as the overlay's
# upper directory, so the layer holds exactly what the package installed (files, dpkg database).
install_deb_layer() {
    local deb=$1 layer=$2 w=$BED_WORK/deb-install
    rm -rf "$w"; mkdir -p "$w/work" "$w/merged"
    unshare --mount --propagation private bash -c '
        mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3/work" "$3/merged" || exit 1
        cp "$4" "$3/merged/tmp/pkg.deb" && chroot "$3/merged" dpkg -i /tmp/pkg.deb && rm -f "$3/merged/tmp/pkg.deb"' \
        _ "$ROOTFS" "$layer" "$w" "$deb" > "$BED_LOG/dpkg-install.log" 2>&1 \
        || { cat "$BED_LOG/dpkg-install.log" >&2; die "dpkg -i $deb in the guest failed"; }
    rm -rf "$w"
    [ -x "$layer/usr/lib/systemd/system-generators/nix-ssd-generator" ] || die "the package installed no generator"
    log "installed $(basename "$deb") into the guest layer (dpkg -i)"
}
stage_payload() {   # stage_payload GENERATOR_BIN CLI_BIN
    local L=$BED_WORK/layers G=$BED_DIR/guest
    # One run at a time per $BED_WORK (layers, images, logs are shared): the lock is held by
    # this shell until it exits. Runs that want to overlap use another BED_WORK.
    exec {BED_RUN_LOCK_FD}> "$BED_WORK/.run.lock"
    flock -n "$BED_RUN_LOCK_FD" || { log "waiting for another bed run using $BED_WORK"; flock "$BED_RUN_LOCK_FD"; }
    rm -rf "$L/common" "$L/gen"; mkdir -p "$L/common" "$L/gen"
    local C=$L/common
    install -D -m755 "$G/harness-report"       "$C/usr/local/lib/harness/report"
    install -D -m755 "$G/harness-first-answer" "$C/usr/local/lib/harness/first-answer"
    install -D -m755 "$G/harness-workload"     "$C/usr/local/lib/harness/workload"
    install -D -m755 "$G/nixos-like-init"      "$C/usr/sbin/nixos-like-init"
    install -D -m755 "$G/harness-env-probe"    "$C/etc/systemd/system-generators/00-harness-env-probe"
    install -D -m644 "$G/harness-report.service" "$C/etc/systemd/system/harness-report.service"
    install -D -m644 "$G/harness-first-answer.service" "$C/etc/systemd/system/harness-first-answer.service"
    mkdir -p "$C/etc/systemd/system/multi-user.target.wants"
    ln -s ../harness-report.service ../harness-first-answer.service "$C/etc/systemd/system/multi-user.target.wants/"
    # the guests' enrolled SSDs (bed_enroll adds each image this run makes, but `foreign` ones)
    install -d -m700 "$C/var/lib/nix-ssd"
    install -m600 /dev/null "$C/var/lib/nix-ssd/enrolled"
    if [ -n "${NIX_SSD_DEB:-}" ]; then
        # the Debian package, installed with dpkg into the guest (the layer catches what it writes)
        install_deb_layer "$NIX_SSD_DEB" "$L/gen"
    else
        install -D -m755 "$1" "$L/gen/etc/systemd/system-generators/nix-ssd-generator"
        install -D -m755 "$2" "$L/gen/usr/bin/nix-ssd"
        ln -s nix-ssd "$L/gen/usr/bin/nix-ssd-remount-hook"
    fi
    chmod 755 "$L"/*/etc "$L"/*/usr 2>/dev/null || true
}
# bed_series_begin: what every series script does first (host packages, binaries, rootfs,
# the common and gen layers); sets ROOTFS.
bed_series_begin() {
    host_packages
    resolve_binaries
    ROOTFS=$(rootfs_prepared) || exit 2
    stage_payload "$GENERATOR" "$NIX_SSD_CLI"
}
# series_layer NAME [client-conf]: prints the path of a fresh layer $BED_WORK/layers/NAME that
# runs guest/NAME as NAME.service after multi-user.target instead of the matrix's report
# service. client-conf: nix.conf !includes /run/nix-ssd/nix-client.conf, as the NixOS module
# makes it (clients read it while the overlay is up).
series_layer() {
    local name=$1 L=$BED_WORK/layers/$1
    rm -rf "$L"; mkdir -p "$L/etc/systemd/system/multi-user.target.wants"
    install -D -m755 "$BED_DIR/guest/$name" "$L/usr/local/lib/harness/$name"
    ln -s /dev/null "$L/etc/systemd/system/harness-report.service"
    printf '[Unit]\nDescription=%s step\nAfter=multi-user.target nix-daemon.socket\n[Service]\nType=exec\nExecStart=/usr/local/lib/harness/%s\n' \
        "$name" "$name" > "$L/etc/systemd/system/$name.service"
    ln -s "../$name.service" "$L/etc/systemd/system/multi-user.target.wants/"
    if [ "${2:-}" = client-conf ]; then
        mkdir -p "$L/etc/nix"; { cat "$ROOTFS/etc/nix/nix.conf"; echo '!include /run/nix-ssd/nix-client.conf'; } > "$L/etc/nix/nix.conf"
    fi
    echo "$L"
}
# series_boot SERIES PREFIX W LAYER SSD-IMG NAME SSD(yes|no|late): one nspawn boot of a reboot
# series whose guest state persists in $W/upper, with the SSD image on a loop device (late: the
# device is there, its by-label link is not; the loop device is named in out/loopdev). The
# report goes to $BED_LOG/PREFIX-NAME.report; BOOT_MS is the boot's wall time.
series_boot() {
    local series=$1 prefix=$2 w=$3 layer=$4 img=$5 name=$6 ssd=$7 loop="" extra=() t0 rc
    rm -rf "$w/out"/* "$w/devdisk/by-label"/*; echo "$name" > "$w/out/step"
    if [ "$ssd" != no ]; then
        loop=$(losetup --find --show "$img") || die "losetup failed"; BED_LOOPS+=("$loop")
        [ "$ssd" = yes ] && ln -s "$loop" "$w/devdisk/by-label/NIX_SSD"
        echo "$loop" > "$w/out/loopdev"
        extra=(--bind="$loop" --bind="$w/devdisk:/dev/disk")
    fi
    t0=$(now_ms)
    nspawn_layers "$layer:$(lowerdirs yes)" "$w" "${extra[@]}" /usr/sbin/nixos-like-init \
        > "$BED_LOG/$prefix-$name.console" 2>&1 < /dev/null
    rc=$?
    BOOT_MS=$(( $(now_ms) - t0 ))
    if [ -n "$loop" ]; then losetup -d "$loop"; BED_LOOPS=("${BED_LOOPS[@]/$loop}"); fi
    sed -n '/^HARNESS-BEGIN/,/^HARNESS-END/p' "$w/out/report" 2>/dev/null > "$BED_LOG/$prefix-$name.report"
    log "$series $name (ssd=$ssd): rc=$rc wall ${BOOT_MS} ms"
}
lowerdirs() { [ "$1" = yes ] && echo "$BED_WORK/layers/gen:$BED_WORK/layers/common:$ROOTFS" || echo "$BED_WORK/layers/common:$ROOTFS"; }

# ---------------------------------------------------------------- SSD images
# bed_enroll IMG...: the images' btrfs UUIDs into the guests' /var/lib/nix-ssd/enrolled (in the
# common layer, so call it after stage_payload and before a qemu root image is built): only an
# enrolled SSD is stacked, as on a machine where `nix-ssd setup` made it.
bed_enroll() {
    local f=$BED_WORK/layers/common/var/lib/nix-ssd/enrolled i u
    [ -f "$f" ] || die "bed_enroll before stage_payload"
    for i in "$@"; do u=$(blkid -p -s UUID -o value "$i") && [ -n "$u" ] || die "no btrfs UUID on $i"; echo "$u" >> "$f"; done
}
# bed_setup [OPTIONS] IMG: `nix-ssd setup` of an SSD image for the guests: its enrolment goes to
# them (bed_enroll), never to the host's /var/lib (a private tmpfs there while it runs).
bed_setup() {
    unshare --mount --propagation private bash -c 'mount -t tmpfs bed-varlib /var/lib && exec "$@"' _ \
        "$NIX_SSD_CLI" setup "$@" && bed_enroll "${@: -1}"
}

# make_ssd_image IMG KIND: sparse 1 GiB file, enrolled unless KIND is foreign (an attacker's
# stick: the good layout, not enrolled). KIND: good (btrfs NIX_SSD with @overlay holding
# plain dirs upper/ work/ state/, @build, @cache) | ext4 (ext4 labelled NIX_SSD) |
# btrfs-bare (btrfs NIX_SSD, no subvolumes) | btrfs-nodirs (subvolumes, no upper/work/state)
make_ssd_image() {
    local img=$1 kind=$2
    rm -f "$img"; truncate -s 1G "$img"
    case $kind in
    ext4) mkfs.ext4 -q -F -L NIX_SSD "$img" ;;
    good|foreign|btrfs-bare|btrfs-nodirs)
        mkfs.btrfs -q -f -L NIX_SSD "$img" >/dev/null 2>&1 || die "mkfs.btrfs failed"
        [ "$kind" = foreign ] || bed_enroll "$img"
        [ "$kind" = btrfs-bare ] && return 0
        unshare --mount --propagation private bash -euc '
            d=$(mktemp -d); mount -o loop,subvolid=5 "$1" "$d"
            for s in @overlay @build @cache; do btrfs -q subvolume create "$d/$s" >/dev/null; done
            [ "$2" != btrfs-nodirs ] && mkdir -p "$d/@overlay/upper" "$d/@overlay/work" "$d/@overlay/state"
            umount "$d"; rmdir "$d"' _ "$img" "$kind" || die "SSD image layout failed" ;;
    *) die "unknown SSD kind $kind" ;;
    esac
}

# ---------------------------------------------------------------- reports
# split_console LOG OUTBASE: HARNESS block -> OUTBASE.report, JOURNAL block -> OUTBASE.journal
split_output() {
    tr -d '\r' < "$1" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' > "$1.clean"
    sed -n '/^HARNESS-BEGIN/,/^HARNESS-END/p' "$1.clean" > "$2.report"
    sed -n '/^JOURNAL-BEGIN/,/^JOURNAL-END/p' "$1.clean" > "$2.journal"
    rm -f "$1.clean"
}

# ---------------------------------------------------------------- nspawn boots
# Loop devices made by the bed are listed here and detached by bed_cleanup (trap).
BED_LOOPS=()
bed_cleanup() {
    local l; for l in "${BED_LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done; BED_LOOPS=()
}
# bed_traps: what every series script sets first: the loops are detached on exit and on a signal
bed_traps() { trap bed_cleanup EXIT; trap 'bed_cleanup; exit 130' INT TERM; }

# boot_nspawn NAME INIT(boot|nixos) SSD(none|IMG) GEN(yes|no) [CMDLINE words...]
# The generator reads /proc/cmdline, which in a container is the HOST's: the command line is
# given to PID 1 as arguments and as SYSTEMD_PROC_CMDLINE (--setenv; checked via the probe
# generator). No udev in nspawn: /dev/disk/by-label/NIX_SSD is a link in a dir bound at
# /dev/disk, pointing to a bound loop device.
# nspawn_layers LOWERDIRS DIR NSPAWN-ARGS...: boots systemd-nspawn on an overlay of LOWERDIRS
# with DIR/upper as the guest's writable layer (kept by the caller for persistent series) and
# DIR/out bound at /harness-out, in a private mount namespace; output on stdout.
nspawn_layers() {
    local lower=$1 d=$2; shift 2
    unshare --mount --propagation private bash -c '
        mount -t overlay overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work" "$2/merged" || exit 99
        shift 2; export SHELL=/bin/bash; exec timeout 240 script -qec "$(printf "%q " "$@")" /dev/null' _ "$lower" "$d" \
        systemd-nspawn -q -D "$d/merged" --register=no --keep-unit --console=read-only \
            --bind="$d/out:/harness-out" "$@"
}
boot_nspawn() {
    local name=$1 init=$2 ssd=$3 gen=$4; shift 4
    local d=$BED_WORK/nspawn/$name loop="" extra=() t0
    rm -rf "$d"; mkdir -p "$d/upper" "$d/work" "$d/merged" "$d/out" "$d/devdisk/by-label"
    if [ "$ssd" != none ]; then
        loop=$(losetup --find --show "$ssd") || die "losetup failed"; BED_LOOPS+=("$loop")
        ln -s "$loop" "$d/devdisk/by-label/NIX_SSD"
        extra=(--bind="$loop" --bind="$d/devdisk:/dev/disk")
    fi
    local cmd=(-b "$@"); [ "$init" = nixos ] && cmd=(/usr/sbin/nixos-like-init "$@")
    t0=$(now_ms)
    nspawn_layers "$(lowerdirs "$gen")" "$d" --setenv=SYSTEMD_PROC_CMDLINE="$*" "${extra[@]}" "${cmd[@]}" \
        > "$BED_LOG/$name.console" 2>&1 < /dev/null
    local rc=$?
    BOOT_MS=$(( $(now_ms) - t0 ))
    if [ -n "$loop" ]; then losetup -d "$loop"; BED_LOOPS=("${BED_LOOPS[@]/$loop}"); fi
    cp "$d/out/report" "$BED_LOG/$name.out" 2>/dev/null || : > "$BED_LOG/$name.out"
    split_output "$BED_LOG/$name.out" "$BED_LOG/$name"
    rm -rf "$d"
    log "nspawn $name (init=$init ssd=$(basename "$ssd") gen=$gen cmdline='$*'): rc=$rc wall ${BOOT_MS} ms"
}

# ---------------------------------------------------------------- qemu boots (TCG)
# KVM on these machines (kvm_pvm) does not boot stock kernels: TCG. ACCEL=kvm CPU=host elsewhere.
QEMU_ACCEL=${ACCEL:-tcg}; QEMU_CPU=${CPU:-max,-svm}
# Drive models (qemu throttling). Unset = unthrottled.
EMMC_THROTTLE=${EMMC_THROTTLE:-throttling.bps-total=52428800,throttling.iops-total=1500}     # 50 MiB/s, 1500 IOPS
SSD_THROTTLE=${SSD_THROTTLE:-throttling.bps-total=524288000,throttling.iops-total=50000}     # 500 MiB/s, 50k IOPS

# Kernel command line of the qemu boots: NixOS-like init; no CPU-bug mitigations (TCG);
# /tmp on the root disk (tmp.mount masked) so that builds outside the SSD hit the eMMC model.
QEMU_CMDLINE="init=/usr/sbin/nixos-like-init mitigations=off systemd.mask=tmp.mount"
BENCH_CMDLINE=$QEMU_CMDLINE
BENCH_WL=harness.workload=1
# Boots WITH the disk get a long device timeout: under TCG the by-label link showed up
# 7.6-8.3 s after systemd started on an idle host, 24-41 s with a parallel cargo build.
QEMU_DT=nix-ssd.device-timeout=${QEMU_DEVICE_TIMEOUT:-90s}

# qemu_root_image GEN(yes|no): ext4 image of lowerdirs(GEN), built once per run (mkfs.ext4 -d)
qemu_root_image() {
    local img=$BED_WORK/qemu/root-gen$1.img
    if [ ! -e "$img" ]; then
        mkdir -p "$BED_WORK/qemu"; local t0; t0=$(now_ms)
        truncate -s 3G "$img.partial"
        unshare --mount --propagation private bash -euc '
            m=$(mktemp -d); mount -t overlay overlay -o "lowerdir=$1" "$m"
            mkfs.ext4 -q -F -L root -d "$m" "$2"' _ "$(lowerdirs "$1")" "$img.partial" || die "root image build failed"
        mv "$img.partial" "$img"
        log "qemu root image gen=$1: $(( $(now_ms) - t0 )) ms"
    fi
    cp -u "$ROOTFS"/boot/vmlinuz-* "$BED_WORK/qemu/vmlinuz"; cp -u "$ROOTFS"/boot/initrd.img-* "$BED_WORK/qemu/initrd.img"
    echo "$img"
}

# boot_qemu NAME SSD(none|IMG) GEN(yes|no) THROTTLE(yes|no) [kernel command line words...]
# Root = virtio disk 1 (qcow2 overlay over the run's root image: every boot starts pristine),
# SSD = virtio disk 2. Console on ttyS0 -> NAME.console, harness report on ttyS1 -> NAME.out.
boot_qemu() {
    local name=$1 ssd=$2 gen=$3 thr=$4; shift 4
    local base d=$BED_WORK/qemu/$name t0 e=",$EMMC_THROTTLE" s=",$SSD_THROTTLE"
    base=$(qemu_root_image "$gen") || exit 2
    [ "$thr" = yes ] || { e=""; s=""; }
    local disk2=() rc try
    # qemu itself (not the guest) sometimes aborts under TCG on this host, seconds into a boot
    # (measured: "iotlb_to_section: Assertion `section_index < d->map.sections_nb' failed",
    # rc 134): that boot is made again, once, from the same images (the guest's writes went to
    # the qcow2 overlays, which are made afresh). Anything the guest does is asserted as before.
    for try in 1 2; do
        rm -rf "$d"; mkdir -p "$d"
        qemu-img create -q -f qcow2 -b "$base" -F raw "$d/root.qcow2" || die "qemu-img failed"
        if [ "$ssd" != none ]; then
            qemu-img create -q -f qcow2 -b "$ssd" -F raw "$d/ssd.qcow2"
            disk2=(-drive "file=$d/ssd.qcow2,if=virtio,format=qcow2,cache=unsafe$s")
        fi
        t0=$(now_ms)
        timeout 420 qemu-system-x86_64 -accel "$QEMU_ACCEL" -cpu "$QEMU_CPU" -smp 2 -m 1536 \
            -nodefaults -no-user-config -display none -no-reboot \
            -serial stdio -serial "file:$BED_LOG/$name.out" \
            -kernel "$BED_WORK/qemu/vmlinuz" -initrd "$BED_WORK/qemu/initrd.img" \
            -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet $*" \
            -drive "file=$d/root.qcow2,if=virtio,format=qcow2,cache=unsafe$e" "${disk2[@]}" \
            > "$BED_LOG/$name.console" 2>&1 < /dev/null
        rc=$?
        [ "$try" = 1 ] && [ "$rc" = 134 ] && grep -q '^qemu-system-x86_64: .*Assertion .* failed' "$BED_LOG/$name.console" || break
        log "qemu $name: qemu itself aborted ($(grep -m1 '^qemu-system-x86_64: ' "$BED_LOG/$name.console")): booting it again"
        cp "$BED_LOG/$name.console" "$BED_LOG/$name.qemu-abort.console"
    done
    BOOT_MS=$(( $(now_ms) - t0 ))
    split_output "$BED_LOG/$name.out" "$BED_LOG/$name"
    rm -rf "$d"
    log "qemu $name (ssd=$(basename "$ssd") gen=$gen throttle=$thr cmdline='$*'): rc=$rc wall ${BOOT_MS} ms"
}

# ---------------------------------------------------------------- assertions
# rv NAME KEY: value(s) of "KEY: value" lines of NAME's report (first match)
# (KEY is literal: unit names contain backslashes)
rva() { K="$2: " awk 'index($0,ENVIRON["K"])==1 {print substr($0,length(ENVIRON["K"])+1)}' "$BED_LOG/$1.report" 2>/dev/null; }
rv() { rva "$@" | head -1; }
BOOT_FAILED=()   # boots with a failed assertion (each once)
# ok NAME DESCRIPTION COMMAND...: one assertion about boot NAME (tests/lib/check.sh's check,
# with the boot's name in a column of its own)
ok() {
    local name=$1 desc=$2 failed=$CHECK_FAIL; shift 2
    check "$(printf '%-18s %s' "$name" "$desc")" "$@"
    [ "$CHECK_FAIL" = "$failed" ] || [[ " ${BOOT_FAILED[*]} " == *" $name "* ]] || BOOT_FAILED+=("$name")
}
# helpers for ok
has()   { rva "$1" "$2" | grep -qE -- "$3"; }      # has NAME KEY ERE
hasnt() { ! rva "$1" "$2" | grep -qE -- "$3"; }
le()    { local v; v=$(rv "$1" "$2"); [[ $v =~ ^[0-9]+$ ]] && [ "$v" -le "$3" ]; }  # le NAME KEY MAX
reported() { [ -s "$BED_LOG/$1.report" ] && grep -q '^HARNESS-END' "$BED_LOG/$1.report"; }
# explain NAME: what to look at when a boot failed an assertion
explain() {
    local name=$1 f=$BED_LOG/$1
    echo "---- $name: report ($f.report)"
    grep -vE '^(journal |HARNESS-)' "$f.report" 2>/dev/null | sed 's/^/    /'
    echo "---- $name: journal of nix-ssd units and failed units"
    grep -E '^journal ' "$f.report" 2>/dev/null | sed 's/^/    /'
    if [ ! -s "$f.report" ]; then echo "    (no report) console tail:"; tail -40 "$f.console" | sed 's/^/    /'; fi
    echo "---- full guest journal: $f.journal; console: $f.console"
}
