#!/bin/bash
# What the shadowing check (src/overlay.rs, quarantine_shadows) adds to a boot: nspawn boots of
# the boot bed's Debian 13 guest (systemd as PID 1, the NixOS-like init, the real generator and
# nix-ssd, real Nix 2.26) with an enrolled SSD whose upper layer is empty, and with one of
# 50 000 upper-layer entries (store-path-like directories no lower path shadows), in alternating
# rounds with the page cache dropped before each boot. Prints, per boot: nix-ssd.service active,
# multi-user.target and nix-daemon active (ms after systemd started) and the check's own time
# from activate's journal line; then the medians and their differences. Figures only, no
# pass/fail on time.
#   sudo benches/shadow-boot.sh          ROUNDS=3 ENTRIES=50000 by default
# Caches as the boot bed (/var/cache/nix-ssd-bed); scratch in /var/tmp/nix-ssd-bed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/boot/lib.sh"; need_root
bed_traps
ROUNDS=${ROUNDS:-3} ENTRIES=${ENTRIES:-50000}
host_packages; resolve_binaries
ROOTFS=$(rootfs_prepared) || exit 2
stage_payload "$GENERATOR" "$NIX_SSD_CLI"
IMG=$BED_WORK/img; mkdir -p "$IMG"
make_ssd_image "$IMG/shadow-empty.img" good
make_ssd_image "$IMG/shadow-full.img" good
unshare --mount --propagation private bash -euc '
    d=$(mktemp -d); mount -o loop,subvol=@overlay "$1" "$d"
    python3 -c "import os,sys; [os.mkdir(os.path.join(sys.argv[1], \"%032d-p%d\" % (i, i))) for i in range(int(sys.argv[2]))]" "$d/upper" "$2"
    umount "$d"; rmdir "$d"' _ "$IMG/shadow-full.img" "$ENTRIES" || die "filling the upper layer failed"

declare -A T=()
for r in $(seq 1 "$ROUNDS"); do
    for kind in empty full; do
        n=shadow-$kind-$r
        sync; echo 3 > /proc/sys/vm/drop_caches
        boot_nspawn "$n" nixos "$IMG/shadow-$kind.img" yes
        check=$(grep -o 'checked [0-9]* upper-layer entries against the lower store in [0-9]* ms' "$BED_LOG/$n.journal" | tail -1)
        ms=$(grep -o 'in [0-9]* ms' <<<"$check" | grep -o '[0-9]*')
        line=$(printf '%-16s nix-ssd.service %6s  multi-user %6s  nix-daemon %6s  check %6s ms  (%s)' "$n" \
            "$(rv "$n" t-nix-ssd-ms)" "$(rv "$n" t-multi-user-ms)" "$(rv "$n" t-daemon-start-ms)" "${ms:-?}" "${check:-no check line}")
        echo "$line"
        T[$kind-ssd]+=" $(rv "$n" t-nix-ssd-ms)"; T[$kind-mu]+=" $(rv "$n" t-multi-user-ms)"; T[$kind-chk]+=" ${ms:-0}"
    done
done
med() { tr ' ' '\n' <<<"$1" | grep -E '^[0-9]+$' | sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "?")}'; }
echo "medians over $ROUNDS rounds (ms after systemd started; $ENTRIES upper entries vs none):"
for k in ssd mu chk; do
    e=$(med "${T[empty-$k]}") f=$(med "${T[full-$k]}")
    case $k in ssd) w="nix-ssd.service active" ;; mu) w="multi-user.target    " ;; chk) w="the check itself     " ;; esac
    printf '  %s  empty %6s  full %6s  delta %6s\n' "$w" "$e" "$f" "$(( f - e ))"
done
