#!/usr/bin/env bash
# sync-roots at scale, with real Nix: N (default 100 000) upper-layer paths registered in a real
# local-overlay store (Nix 2.26.3 of the boot bed's Debian 13 tree, in a chroot on a
# copy-on-write view of it); then `nix-ssd sync-roots` as nix-ssd.service runs it at shutdown.
# Checks it succeeds (one argument list of every upper path failed with E2BIG past ~26 000) and
# prints how long it took. Everything in private mount and PID namespaces; the loop device is detached.
#
#   sudo tests/kernel/sync-roots.sh      (N=..., NIX_SSD_CLI=..., BED_CACHE=... as for the bed)
set -uo pipefail
SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
# shellcheck source=../lib/check.sh
. "$REPO/tests/lib/check.sh"
CHECK_SUITE=sync-roots

ns_main() {
    local R=$W/root
    mkdir -p "$W/u" "$W/w" "$R"
    mount -t overlay overlay -o "lowerdir=$PREPARED,upperdir=$W/u,workdir=$W/w" "$R" &&
        mount -t proc proc "$R/proc" && mount --rbind /dev "$R/dev" && mount --rbind /sys "$R/sys" &&
        mount -t tmpfs -o mode=755 tmpfs "$R/run" || { fail "the chroot"; return; }
    install -m755 "$NSSD" "$R/usr/bin/nix-ssd"
    c() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C "$@"; }
    c nix-ssd setup "$LOOP" > "$W/setup.log" 2>&1 || { cat "$W/setup.log"; fail "nix-ssd setup"; return; }
    mkdir -p "$R/mnt/nix-ssd/overlay" "$R/mnt/nix-ssd/build"
    mount -t btrfs -o subvol=@overlay,noatime,nosuid,nodev "$LOOP" "$R/mnt/nix-ssd/overlay" &&
        mount -t btrfs -o subvol=@build,noatime,nosuid,nodev "$LOOP" "$R/mnt/nix-ssd/build" || { fail "mounts"; return; }
    c nix-ssd activate --mode overlay --overlay-dir /mnt/nix-ssd/overlay --build-dir /mnt/nix-ssd/build \
        --env-file /run/nix-ssd/nix-daemon.env > "$W/activate.log" 2>&1
    grep -q local-overlay "$R/run/nix-ssd/nix-daemon.env" || { cat "$W/activate.log"; fail "activate stacked no overlay"; return; }
    # N store paths in the upper layer and their registration (path, no deriver, no references:
    # a reference to a lower path needs that path in the overlay store's own database first,
    # which a build through the daemon arranges; that rooting is proven by the store-safety
    # series) for `nix-store --register-validity`
    python3 - "$R/mnt/nix-ssd/overlay/upper" "$N" "$W/reg" <<'PY' || { fail "making $N upper paths"; return; }
import hashlib, os, sys
upper, n, reg = sys.argv[1], int(sys.argv[2]), sys.argv[3]
b32 = "0123456789abcdfghijklmnpqrsvwxyz"
with open(reg, "w") as out:
    for i in range(n):
        h = hashlib.sha256(b"nix-ssd-sync-roots-%d" % i).digest()
        name = "".join(b32[b % 32] for b in h[:32]) + "-p%d" % i
        with open(os.path.join(upper, name), "w") as f:
            f.write("upper path %d\n" % i)
        out.write("/nix/store/%s\n\n0\n" % name)
PY
    local conf t0 t1 out rc
    conf=$(awk '/^NIX_CONFIG="/{f=1; sub(/^NIX_CONFIG="/,"")} f{sub(/"$/,""); print} /"$/{f=0}' "$R/run/nix-ssd/nix-daemon.env")
    t0=$(now_ms)
    c NIX_CONFIG="$conf" nix-store --register-validity < "$W/reg" >> "$W/register.log" 2>&1 || { tail -5 "$W/register.log"; fail "registering $N paths in the overlay store"; return; }
    t1=$(now_ms)
    info "registered $N upper paths in the local-overlay store in $((t1 - t0)) ms"
    check_eq "the overlay store holds the $N upper paths" \
        "$(c NIX_CONFIG="$conf" nix-store --dump-db 2>/dev/null | grep -c -- '-p[0-9]*$')" "$N"
    t0=$(now_ms)
    out=$(c nix-ssd sync-roots 2>&1); rc=$?
    t1=$(now_ms)
    echo "    | $out" | cut -c1-300
    check_eq "sync-roots over $N upper paths exits 0" "$rc" 0
    check_has "... and queried them all (their closures hold no lower path)" "$out" "0 internal-store path(s) that SSD paths depend on are rooted"
    info "sync-roots over $N upper paths: $((t1 - t0)) ms"
    # what activate does before nix-daemon after a boot without the SSD or an unclean stop:
    # list the SSD's valid paths with their registration times (then one lstat each)
    t0=$(now_ms)
    out=$(c NIX_CONFIG="$conf" nix --extra-experimental-features nix-command path-info --json --all 2>/dev/null | grep -o '"registrationTime"' | wc -l)
    t1=$(now_ms)
    check_eq "the SSD's database lists the $N paths" "$out" "$N"
    info "listing the SSD's $N valid paths (activate's check for paths without files): $((t1 - t0)) ms"
    echo "sync-roots: $N upper paths, $((t1 - t0)) ms"
}

outer_main() {
    need_root
    NSSD=${NIX_SSD_CLI:-$REPO/target/release/nix-ssd}
    N=${N:-100000}
    PREPARED=$(ls -d "${BED_CACHE:-/var/cache/nix-ssd-bed}"/prepared-* 2>/dev/null | grep -v partial | head -1)
    [ -x "$NSSD" ] || abort "no $NSSD: cargo build --release first"
    [ -n "$PREPARED" ] || abort "no prepared boot-bed tree under ${BED_CACHE:-/var/cache/nix-ssd-bed} (tests/boot builds it)"
    W=$(mktemp -d /var/tmp/nix-ssd-sync-roots.XXXXXX)
    export W NSSD N PREPARED CHECK_RESULTS=$W/results
    : > "$CHECK_RESULTS"
    truncate -s 4G "$W/ssd.img"
    LOOP=$(losetup --find --show "$W/ssd.img") || abort "losetup"
    export LOOP
    trap 'losetup -d "$LOOP" 2>/dev/null; grep -q " $W" /proc/self/mountinfo || rm -rf "$W"' EXIT
    unshare --mount --propagation private --pid --fork --mount-proc bash "$SELF" --ns || fail "the namespace stage exited $?"
    summary
}

case "${1:-}" in
--ns) ns_main ;;
*) outer_main ;;
esac
