#!/usr/bin/env bash
# Device trust on the real kernel, tried as an attacker with a USB port would: btrfs sticks
# labelled NIX_SSD on loop devices, a stand-in lower store (tmpfs on /nix), the real
# `nix-ssd setup`, `activate` and `status`, everything in private mount namespaces.
#
#   sudo tests/kernel/trust.sh        (NIX_SSD_CLI=/path/to/nix-ssd to test another binary)
#
# Scenarios (each in its own nested mount and PID namespace: no nix-daemon of the host counts):
#   foreign    a stick made by hand (no `nix-ssd setup`): upper owned by uid 1000 mode 0777,
#              a file over a lower store path, a `nix-daemon` of its own -> nothing stacked or
#              run, its mounts detached, status exit 2 naming the device, its UUID, `enroll`
#   shadow     an enrolled SSD whose upper layer replaces a lower file and whites out a lower
#              path -> both moved to quarantine/, the lower store's files are what is seen
#   elevate    an enrolled SSD with a setuid-root program and a 0666 block device node ->
#              nosuid,nodev: the program runs without root, the node cannot be opened
#   owner      an enrolled SSD whose upper is uid 1000 mode 0777 -> refused, nothing stacked
#   symlink    an enrolled SSD whose upper is a symlink -> refused, nothing stacked
#   cache      a cache subvolume writable by others -> no user's cache is bound from it
#   readonly   with the overlay up, root cannot write or delete in /nix/store
#   cost       the shadowing check on an upper layer of 50 000 entries (ms, printed)
#   bind       an SSD enrolled by its UUID alone (the NixOS option) -> stacked and bound at its
#              first activation: the same root-only token on the SSD and on the internal disk
#   clone      a stick that copies the enrolled SSD's UUID (`mkfs.btrfs -U`, readable by every
#              user in /dev/disk/by-uuid) with a proper layout, root's own -> refused without
#              the token and with a guessed one, status exit 2 saying so; `nix-ssd enroll` of
#              it (the owner's choice) binds it, and then it is stacked
# Enrolment lives on a tmpfs over /var/lib in the namespace: the host's is never touched.
# Loop devices are detached on exit. Last line: `trust: N passed, M failed`.
set -uo pipefail
SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
# shellcheck source=../lib/check.sh
. "${CHECK_SH:-$REPO/tests/lib/check.sh}"
CHECK_SUITE=trust
EVIL=0123456789abcdfghijklmnpqrsvwxyz-evil   # a store-path name only the SSD has

# ------------------------------------------------------------ in the namespace ---
fake_nix() { # the lower store: two paths, a database, /run for the env file
    mount -t tmpfs -o mode=0755 trust-nix /nix && mount --make-shared /nix || return 1
    mkdir -p /nix/store/aaaa-hello/bin /nix/store/bbbb-dir/sub /nix/var/nix/db
    echo genuine-lower-content > /nix/store/aaaa-hello/bin/hello
    echo lower3 > /nix/store/bbbb-dir/sub/f
    mkdir -p /nix/store/hhhh-nix/bin   # the machine's own nix-daemon, found through PATH
    # 2.21: older than build-dir (2.22), so the env file tells which daemon activate asked
    printf '#!/bin/sh\necho "nix-daemon (Nix) 2.21.1"\n' > /nix/store/hhhh-nix/bin/nix-daemon
    chmod 0755 /nix/store/hhhh-nix/bin/nix-daemon
    : > /nix/var/nix/db/db.sqlite
    mount -t tmpfs -o mode=0755 trust-run /run
}

mount_ssd() { # LOOP: the subvolumes with the generator's options (our SSD made afresh first)
    local o=noatime,nosuid,nodev
    if [ "$1" = "$OURS" ]; then "$NSSD" setup --force "$OURS" > "$W/setup.log" 2>&1 || return 1; fi
    mkdir -p "$W/mnt/overlay" "$W/mnt/build"
    mount -t btrfs -o "subvol=@overlay,$o" "$1" "$W/mnt/overlay" &&
        mount -t btrfs -o "subvol=@build,$o" "$1" "$W/mnt/build"
}

activate() { # [MORE ARGS] -> ACT_RC, ACT_OUT
    ACT_OUT=$(PATH=/nix/store/hhhh-nix/bin:$PATH timeout 60 "$NSSD" activate --mode overlay --overlay-dir "$W/mnt/overlay" \
        --build-dir "$W/mnt/build" --env-file /run/nix-ssd/nix-daemon.env "$@" 2>&1)
    ACT_RC=$?
    sed 's/^/    | /' <<<"$ACT_OUT"
}

store_fs() { findmnt -n -o FSTYPE --target /nix/store | tail -1; }

not_stacked() { # NAME
    check_eq "$1: activate exits 0 (the machine goes on)" "$ACT_RC" 0
    check_eq "$1: nothing stacked on /nix/store" "$(store_fs)" tmpfs
    check_eq "$1: the lower file is what is seen" "$(cat /nix/store/aaaa-hello/bin/hello)" genuine-lower-content
    if grep -qs local-overlay /run/nix-ssd/nix-daemon.env; then fail "$1: the env file names the overlay store"
    else pass "$1: the daemon keeps the lower store (no overlay store in its env file)"; fi
}

scenario_foreign() {
    fake_nix && mount_ssd "$FOREIGN" || { fail "foreign: setup"; return; }
    activate
    not_stacked foreign
    check_has "foreign: activate says it is not enrolled" "$ACT_OUT" "is not enrolled on this machine"
    check_has "foreign: ... and how to enrol it" "$ACT_OUT" "nix-ssd enroll $FOREIGN"
    check "foreign: its mounts are detached" bash -c "! mountpoint -q '$W/mnt/overlay' && ! mountpoint -q '$W/mnt/build'"
    check "foreign: its nix-daemon did not run" test ! -e "$W/stick-daemon-ran"
    local st rc uuid
    uuid=$(blkid -p -s UUID -o value "$FOREIGN")
    st=$("$NSSD" status 2>&1); rc=$?
    sed 's/^/    | /' <<<"$st"
    check_eq "foreign: status exits 2 (broken)" "$rc" 2
    check_has "foreign: status names the device and its UUID" "$st" "$FOREIGN (btrfs, UUID $uuid) is not enrolled"
    check_has "foreign: status gives the enrol command" "$st" "nix-ssd enroll $FOREIGN"
}

scenario_shadow() {
    fake_nix && mount_ssd "$OURS" || { fail "shadow: setup"; return; }
    local u=$W/mnt/overlay/upper
    mkdir -p "$u/aaaa-hello/bin" "$u/eeee-upper-only"
    echo ATTACKER-CONTENT > "$u/aaaa-hello/bin/hello"
    echo upper-path > "$u/eeee-upper-only/f"
    mknod "$u/bbbb-dir" c 0 0   # a whiteout: deletes the lower path from view
    mkdir -p "$u/hhhh-nix/bin" "$u/$EVIL/bin"   # programs root would run after stacking
    printf '#!/bin/sh\ntouch %s\necho "nix-daemon (Nix) 2.26.3"\n' "$W/upper-daemon-ran" > "$u/hhhh-nix/bin/nix-daemon"
    printf '#!/bin/sh\ntouch %s\n' "$W/upper-tool-ran" > "$u/$EVIL/bin/nix-store"
    chmod 0755 "$u/hhhh-nix/bin/nix-daemon" "$u/$EVIL/bin/nix-store"
    activate
    check_eq "shadow: activate exits 0" "$ACT_RC" 0
    check_eq "shadow: the overlay is stacked" "$(store_fs)" overlay
    check_eq "shadow: the lower file wins over the upper one" "$(cat /nix/store/aaaa-hello/bin/hello)" genuine-lower-content
    check "shadow: the whited-out lower path is back" test -f /nix/store/bbbb-dir/sub/f
    check_eq "shadow: an upper-only path is seen" "$(cat /nix/store/eeee-upper-only/f)" upper-path
    check_has "shadow: activate says what it moved" "$ACT_OUT" "moved 3 that would shadow it"
    check "shadow: both are in quarantine/" bash -c "ls '$W/mnt/overlay/quarantine/'*/aaaa-hello/bin/hello && test -c \"\$(ls -d '$W/mnt/overlay/quarantine/'*/bbbb-dir)\""
    check "shadow: the SSD's nix-daemon did not run" test ! -e "$W/upper-daemon-ran"
    check_has "shadow: the machine's nix-daemon (2.21) told the version, not the SSD's (2.26): TMPDIR, not build-dir" \
        "$(cat /run/nix-ssd/nix-daemon.env)" "TMPDIR=$W/mnt/build"
    local out rc
    out=$(PATH=/nix/store/$EVIL/bin:$PATH "$NSSD" sync-roots 2>&1); rc=$?
    check "shadow: sync-roots refuses a nix-store only the SSD has" test "$rc" -ne 0
    check_has "shadow: ... and says why" "$out" "is only on the SSD (upper layer): not running it as root"
    check "shadow: the SSD's nix-store did not run" test ! -e "$W/upper-tool-ran"
    scenario_readonly
}

scenario_readonly() { # with the overlay up (after shadow)
    check_opt "readonly: /nix/store is mounted ro" "$(findmnt -n -o OPTIONS /nix/store | tail -1)" ro
    check "readonly: root cannot create a file in /nix/store" bash -c '! touch /nix/store/planted 2>/dev/null'
    check "readonly: root cannot delete a lower path" bash -c '! rm -rf /nix/store/aaaa-hello 2>/dev/null; test -f /nix/store/aaaa-hello/bin/hello'
    check "readonly: no whiteout was made in the upper layer" test ! -e "$W/mnt/overlay/upper/aaaa-hello"
    # the daemon's way (Nix's makeStoreWritable): a private namespace and a writable remount
    check "readonly: in its own namespace (as nix-daemon) the store is writable" unshare --mount --propagation private \
        bash -c 'mount -o remount,bind,rw /nix/store && touch /nix/store/ffff-daemon-made'
    check "readonly: what the daemon writes lands in the upper layer" test -e "$W/mnt/overlay/upper/ffff-daemon-made"
}

scenario_elevate() {
    fake_nix && mount_ssd "$OURS" || { fail "elevate: setup"; return; }
    local u=$W/mnt/overlay/upper maj min
    mkdir -p "$u/cccc-su/bin" "$u/dddd-dev"
    cp /usr/bin/id "$u/cccc-su/bin/id" && chown 0:0 "$u/cccc-su/bin/id" && chmod 4755 "$u/cccc-su/bin/id"
    read -r maj min < <(stat -c '%t %T' "$OURS")
    mknod -m 0666 "$u/dddd-dev/disk" b $((16#$maj)) $((16#$min))
    activate
    check_eq "elevate: the overlay is stacked" "$(store_fs)" overlay
    local o; o=$(findmnt -n -o OPTIONS /nix/store | tail -1)
    check_opt "elevate: the overlay is nosuid" "$o" nosuid
    check_opt "elevate: the overlay is nodev" "$o" nodev
    check_has "elevate: redirect_dir=nofollow" "$(findmnt -n -o OPTIONS /nix/store | tail -1)" "redirect_dir=nofollow"
    check_eq "elevate: a setuid-root program from the SSD gives nobody no root" \
        "$(setpriv --reuid=65534 --regid=65534 --clear-groups /nix/store/cccc-su/bin/id -u 2>&1)" 65534
    check_eq "elevate: ... nor through the subvolume mount" \
        "$(setpriv --reuid=65534 --regid=65534 --clear-groups "$u/cccc-su/bin/id" -u 2>&1)" 65534
    check "elevate: a 0666 block device node on the SSD cannot be opened" \
        bash -c "! setpriv --reuid=65534 --regid=65534 --clear-groups head -c1 /nix/store/dddd-dev/disk >/dev/null 2>&1"
    check "elevate: ... not even by root" bash -c "! head -c1 /nix/store/dddd-dev/disk >/dev/null 2>&1"
}

scenario_owner() {
    fake_nix && mount_ssd "$OURS" || { fail "owner: setup"; return; }
    chown 1000 "$W/mnt/overlay/upper" && chmod 0777 "$W/mnt/overlay/upper"
    activate
    not_stacked owner
    check_has "owner: activate says which path and what it found" "$ACT_OUT" "upper is owned by uid 1000 with mode 777"
}

scenario_symlink() {
    fake_nix && mount_ssd "$OURS" || { fail "symlink: setup"; return; }
    mv "$W/mnt/overlay/upper" "$W/mnt/overlay/upper.real" && ln -s upper.real "$W/mnt/overlay/upper"
    activate
    not_stacked symlink
    check_has "symlink: activate says upper is not a plain directory" "$ACT_OUT" "upper: it is not a directory (or a symlink)"
}

scenario_cache() {
    fake_nix && mount_ssd "$OURS" || { fail "cache: setup"; return; }
    mkdir -p "$W/mnt/cache" && mount -t btrfs -o subvol=@cache,nosuid,nodev "$OURS" "$W/mnt/cache" || { fail "cache: mount"; return; }
    chmod 0777 "$W/mnt/cache"
    activate --cache-dir "$W/mnt/cache" --cache-user root
    check_has "cache: a cache subvolume others can write is not bound" "$ACT_OUT" \
        "not binding the caches: $W/mnt/cache is owned by uid 0 with mode 777"
    check "cache: nothing bound on root's ~/.cache/nix" bash -c '! mountpoint -q /root/.cache/nix'
}

scenario_cost() {
    fake_nix && mount_ssd "$OURS" || { fail "cost: setup"; return; }
    local u=$W/mnt/overlay/upper
    python3 -c 'import os,sys; [os.mkdir(os.path.join(sys.argv[1], "%032d-p%d" % (i, i))) for i in range(50000)]' "$u"
    sync; echo 3 > /proc/sys/vm/drop_caches   # cold, as at boot
    activate
    local ms; ms=$(grep -o 'checked 50000 upper-layer entries against the lower store in [0-9]* ms' <<<"$ACT_OUT" | grep -o '[0-9]* ms')
    if [ -n "$ms" ]; then pass "cost: the shadowing check ran over 50000 upper entries"; info "cost: shadowing check on 50000 upper entries: $ms"
    else fail "cost: no timing of 50000 entries in the activate output"; fi
    check_eq "cost: the overlay is stacked" "$(store_fs)" overlay
}

scenario_bind() { # after cost: our SSD enrolled by its UUID alone (no token yet)
    fake_nix && mount_ssd "$OURS" || { fail "bind: setup"; return; }
    local uuid tok; uuid=$(blkid -p -s UUID -o value "$OURS")
    # the UUID stays listed; no token anywhere, as before tokens existed or with enrolledUuids
    rm -f /var/lib/nix-ssd/enrolment-tokens "$W/mnt/overlay/.nix-ssd-enrolment" "$W/mnt/build/.nix-ssd-enrolment"
    activate
    check_eq "bind: an SSD enrolled by its UUID alone is stacked" "$(store_fs)" overlay
    check_has "bind: ... and bound at its first activation" "$ACT_OUT" "bound UUID $uuid to this machine"
    check_eq "bind: its token on the overlay subvolume is root's, mode 600" "$(stat -c '%u %a' "$W/mnt/overlay/.nix-ssd-enrolment")" "0 600"
    check_eq "bind: ... and on the build subvolume" "$(stat -c '%u %a' "$W/mnt/build/.nix-ssd-enrolment")" "0 600"
    check_eq "bind: the tokens file is root's, mode 600" "$(stat -c '%u %a' /var/lib/nix-ssd/enrolment-tokens)" "0 600"
    check "bind: the token on the SSD is there, and nobody else can read it" \
        bash -c "test -s '$W/mnt/overlay/.nix-ssd-enrolment' && ! setpriv --reuid=65534 --regid=65534 --clear-groups cat '$W/mnt/overlay/.nix-ssd-enrolment' 2>/dev/null"
    tok=$(cat "$W/mnt/overlay/.nix-ssd-enrolment" 2>/dev/null)
    check "bind: the token is 64 hex digits" grep -Eqx '[0-9a-f]{64}' <<<"$tok"
    check_has "bind: the internal disk holds the same token" "$(cat /var/lib/nix-ssd/enrolment-tokens 2>/dev/null)" "$uuid ${tok:-no-token}"
    check_eq "bind: the build subvolume carries the same token" "$(cat "$W/mnt/build/.nix-ssd-enrolment" 2>/dev/null)" "${tok:-no-token}"
}

make_clone() { # DEV UUID: a stick with the enrolled SSD's UUID and setup's layout, root's own
    mkfs.btrfs -q -f -U "$2" -L NIX_SSD "$1" >/dev/null || return 1
    unshare --mount bash -ec '
        d=$(mktemp -d); mount "$1" "$d"
        for s in @overlay @build @cache; do btrfs -q subvolume create "$d/$s" >/dev/null; done
        mkdir -p -m 0755 "$d/@overlay/upper/eeee-evil/bin" "$d/@overlay/state"; mkdir -m 0700 "$d/@overlay/work"
        echo CLONE-CONTENT > "$d/@overlay/upper/eeee-evil/bin/x"
        umount "$d"; rmdir "$d"' _ "$1"
}

scenario_clone() { # after bind: a copy of our SSD's UUID, our SSD away
    fake_nix || { fail "clone: setup"; return; }
    local uuid st rc; uuid=$(blkid -p -s UUID -o value "$OURS")
    printf '[nix-ssd]\ndevice = %s\nmount-point = %s\n' "$CLONE" "$W/mnt" > "$W/etc-systemd/nix-ssd-generator.conf"
    # the genuine SSD is not attached (mkfs.btrfs -U refuses a UUID a device in sight carries)
    btrfs device scan --forget "$OURS" 2>/dev/null; losetup -d "$OURS"
    make_clone "$CLONE" "$uuid" || { fail "clone: making it"; return; }
    check_eq "clone: the stick carries the enrolled SSD's UUID" "$(blkid -p -s UUID -o value "$CLONE")" "$uuid"
    mount_ssd "$CLONE" || { fail "clone: mount"; return; }
    activate
    not_stacked clone
    check "clone: nothing of it is seen in /nix/store" test ! -e /nix/store/eeee-evil
    check_has "clone: activate says it carries no enrolment token" "$ACT_OUT" \
        "not using the SSD: $CLONE (btrfs UUID $uuid): $W/mnt/overlay carries no enrolment token"
    check_has "clone: ... and how to enrol it if it is ours" "$ACT_OUT" "run \`nix-ssd enroll $CLONE\`"
    check "clone: its mounts are detached" bash -c "! mountpoint -q '$W/mnt/overlay' && ! mountpoint -q '$W/mnt/build'"
    st=$("$NSSD" status 2>&1); rc=$?
    sed 's/^/    | /' <<<"$st"
    check_eq "clone: status exits 2 (broken)" "$rc" 2
    check_has "clone: status says why" "$st" "carries no enrolment token"
    # a guessed token, as root's own file of the right mode
    mount_ssd "$CLONE" || { fail "clone: mount again"; return; }
    local d; for d in overlay build; do
        head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/mnt/$d/.nix-ssd-enrolment"; chmod 600 "$W/mnt/$d/.nix-ssd-enrolment"
    done
    activate
    not_stacked clone-guessed
    check_has "clone-guessed: activate says the token is another" "$ACT_OUT" "carries another enrolment token than this machine recorded for UUID $uuid"
    # the owner's choice: enrol it explicitly
    local out; out=$("$NSSD" enroll "$CLONE" 2>&1)
    check_has "clone: nix-ssd enroll binds it" "$out" "enrolled $CLONE (btrfs UUID $uuid) in /var/lib/nix-ssd/enrolled and bound it to this machine"
    check_has "clone: a second enroll finds it bound" "$("$NSSD" enroll "$CLONE" 2>&1)" "is enrolled and bound already"
    mount_ssd "$CLONE" || { fail "clone: mount after enroll"; return; }
    activate
    check_eq "clone: once enrolled it is stacked" "$(store_fs)" overlay
    check_eq "clone: ... and its paths are seen" "$(cat /nix/store/eeee-evil/bin/x)" CLONE-CONTENT
}

ns_main() {
    mount -t tmpfs -o mode=0755 trust-varlib /var/lib || exit 1   # enrolment, this namespace only
    mkdir -p "$W/etc-systemd"
    printf '[nix-ssd]\ndevice = %s\nmount-point = %s\n' "$FOREIGN" "$W/mnt" > "$W/etc-systemd/nix-ssd-generator.conf"
    mount --bind "$W/etc-systemd" /etc/systemd || exit 1          # status reads the config here
    "$NSSD" setup "$OURS" > "$W/setup.log" 2>&1 || { cat "$W/setup.log"; fail "nix-ssd setup of the enrolled SSD"; exit 1; }
    check_has "setup enrols what it makes" "$(cat /var/lib/nix-ssd/enrolled)" "$(blkid -p -s UUID -o value "$OURS")"
    check_eq "the enrolment file is root's, mode 600" "$(stat -c '%u %a' /var/lib/nix-ssd/enrolled)" "0 600"
    truncate -s 16M "$W/plain.img"   # a device that holds no file system
    check_has "enroll refuses a non-btrfs device" "$("$NSSD" enroll "$W/plain.img" 2>&1)" "holds no file system, not btrfs"
    check_has "enroll refuses what is no device" "$("$NSSD" enroll /dev/null 2>&1)" "/dev/null is not a block device or image file"
    check_has "enroll tells a missing device from a non-btrfs one" "$("$NSSD" enroll /dev/nonexistent-nix-ssd 2>&1)" "no such device or file"
    local s
    for s in foreign shadow elevate owner symlink cache cost bind clone; do
        echo "  -- $s"
        unshare --mount --propagation private --pid --fork --mount-proc bash "$SELF" --scenario "$s"
    done
}

make_foreign() { # IMG: what an attacker makes by hand, labelled NIX_SSD
    mkfs.btrfs -q -f -L NIX_SSD "$1" >/dev/null || return 1
    unshare --mount bash -ec '
        d=$(mktemp -d); mount "$1" "$d"
        for s in @overlay @build @cache; do btrfs -q subvolume create "$d/$s" >/dev/null; done
        mkdir -p "$d/@overlay/upper/aaaa-hello/bin" "$d/@overlay/work" "$d/@overlay/state" "$d/@overlay/upper/gggg-nix/bin"
        chown 1000 "$d/@overlay/upper"; chmod 0777 "$d/@overlay/upper"
        echo ATTACKER-CONTENT > "$d/@overlay/upper/aaaa-hello/bin/hello"
        printf "#!/bin/sh\ntouch %s\necho nix-daemon \\(Nix\\) 2.26.3\n" "$2/stick-daemon-ran" > "$d/@overlay/upper/gggg-nix/bin/nix-daemon"
        chmod 0755 "$d/@overlay/upper/gggg-nix/bin/nix-daemon"
        umount "$d"; rmdir "$d"' _ "$1" "$W"
}

outer_main() {
    need_root
    NSSD=${NIX_SSD_CLI:-$REPO/target/release/nix-ssd}
    [ -x "$NSSD" ] || abort "no $NSSD: cargo build --release first"
    command -v mkfs.btrfs >/dev/null || abort "mkfs.btrfs missing (btrfs-progs)"
    W=$(mktemp -d /var/tmp/nix-ssd-trust.XXXXXX)
    export W NSSD CHECK_RESULTS=$W/results
    : > "$CHECK_RESULTS"
    MADE_NIX=0
    cleanup() {
        local f; for f in "$W"/*.img; do   # by backing file: the clone scenario detaches ours itself
            losetup -n -O NAME -j "$f" | xargs -r -n1 losetup -d
        done
        if ((MADE_NIX)); then rmdir /nix 2>/dev/null; fi
        if ! grep -q " $W" /proc/self/mountinfo; then rm -rf "$W"; fi
    }
    trap cleanup EXIT
    truncate -s 512M "$W/ours.img" "$W/foreign.img" "$W/clone.img"
    make_foreign "$W/foreign.img" || abort "making the foreign stick"
    OURS=$(losetup --find --show "$W/ours.img") || abort "losetup"
    FOREIGN=$(losetup --find --show "$W/foreign.img") || abort "losetup"
    CLONE=$(losetup --find --show "$W/clone.img") || abort "losetup"
    export OURS FOREIGN CLONE
    if [ ! -e /nix ]; then mkdir /nix && MADE_NIX=1; fi
    unshare --mount --propagation private bash "$SELF" --ns || fail "the namespace stage exited $?"
    summary
}

case "${1:-}" in
--ns) ns_main ;;
--scenario) "scenario_$2" ;;
*) outer_main ;;
esac
