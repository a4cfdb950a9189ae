#!/bin/bash
# Symlink safety of the per-user cache binds (issue: hardening), in one nspawn boot with a
# real btrfs SSD image (@cache) and `cache-users = alice bob carol` in build mode:
#   alice  ~/.cache     is a symlink to /etc/evil   -> nothing mounted there, journal says why
#   bob    ~/.cache/nix is a symlink to /etc        -> nothing mounted on /etc, journal says why
#   carol  plain home (control)                     -> ~/.cache/nix is the bind, owned by carol
# Usage: sudo tests/boot/symlink-safety.sh   (binaries: GENERATOR=…, NIX_SSD_CLI=…, else built)
# Last line: "symlink-safety: N passed, M failed".
set -uo pipefail
CHECK_SUITE=symlink-safety; . "$(dirname "$0")/../lib/check.sh"; need_root
. "$(dirname "$0")/lib.sh"
bed_traps
bed_series_begin
L=$(series_layer symlink-safety); mkdir -p "$L/home"
printf '[nix-ssd]\nmode = build\ncache-users = alice bob carol\n' > "$L/etc/systemd/nix-ssd-generator.conf"
cp -a "$ROOTFS/etc/passwd" "$ROOTFS/etc/group" "$ROOTFS/etc/shadow" "$L/etc/"
uid=2001
for u in alice bob carol; do
    echo "$u:x:$uid:$uid::/home/$u:/bin/sh" >> "$L/etc/passwd"; echo "$u:x:$uid:" >> "$L/etc/group"
    echo "$u:!:19000::::::" >> "$L/etc/shadow"
    install -d -m700 -o $uid -g $uid "$L/home/$u"; uid=$((uid + 1))
done
mkdir -p "$L/etc/evil"
ln -s /etc/evil "$L/home/alice/.cache"; chown -h 2001:2001 "$L/home/alice/.cache"
install -d -m700 -o 2002 -g 2002 "$L/home/bob/.cache"; ln -s /etc "$L/home/bob/.cache/nix"; chown -h 2002:2002 "$L/home/bob/.cache/nix"

W=$BED_WORK/symlink-safety; rm -rf "$W"; mkdir -p "$W/upper" "$W/work" "$W/merged" "$W/out" "$W/devdisk/by-label"
make_ssd_image "$W/ssd.img" good
loop=$(losetup --find --show "$W/ssd.img") || die "losetup failed"; BED_LOOPS+=("$loop")
ln -s "$loop" "$W/devdisk/by-label/NIX_SSD"
t0=$(now_ms)
nspawn_layers "$L:$(lowerdirs yes)" "$W" --bind="$loop" --bind="$W/devdisk:/dev/disk" -b \
    > "$BED_LOG/symlink-safety.console" 2>&1 < /dev/null
rc=$?
sed -n '/^HARNESS-BEGIN/,/^HARNESS-END/p' "$W/out/report" 2>/dev/null > "$BED_LOG/sl.report"
log "symlink-safety boot: rc=$rc wall $(( $(now_ms) - t0 )) ms"
# The host side of the SSD: nothing of alice's or bob's was created, carol's dir is hers.
N=sl
ok $N "booted and reported" reported $N
ok $N "nix-ssd.service ran and succeeded" has $N service '^active result=success'
ok $N "@cache mounted" has $N cache-mounted '^yes$'
ok $N "alice's ~/.cache still the symlink" has $N "alice .cache link" '^/etc/evil$'
ok $N "bob's ~/.cache/nix still the symlink" has $N "bob .cache/nix link" '^/etc$'
ok $N "nothing mounted on /etc/evil" has $N "etc-evil mountpoint" '^no$'
ok $N "nothing created in /etc/evil" has $N "etc-evil entries" '^0$'
ok $N "nothing mounted on /etc" has $N "etc mountpoint" '^no$'
ok $N "the only cache bind is carol's" has $N "cache binds" '^/home/carol/.cache/nix $'
jr() { grep -qF "journal $1" "$BED_LOG/sl.report"; }   # a line of nix-ssd.service's journal
ok $N "journal: alice skipped, says why" jr 'cache for alice: /home/alice/.cache is not a plain directory; skipped'
ok $N "journal: bob skipped, says why" jr 'cache for bob: /home/bob/.cache/nix is not a plain directory; skipped'
ok $N "journal: carol's bind" jr 'cache for carol: /mnt/nix-ssd/cache/carol on /home/carol/.cache/nix'
ok $N "control: carol's ~/.cache/nix is a mount point" has $N "carol mountpoint" '^yes$'
ok $N "control: it is the @cache/carol subvolume dir" has $N "carol source" '^/@cache/carol$'
ok $N "control: owned by carol" has $N "carol owner" '^carol '
ok $N "control: carol can write her cache" has $N "carol can write" '^yes$'
ok $N "SSD cache dir of carol owned by carol, mode 700" has $N "cache dir owners" '/mnt/nix-ssd/cache/carol carol 700'
[ "$CHECK_FAIL" -eq 0 ] || explain sl
summary
