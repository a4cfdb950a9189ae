#!/bin/bash
# Long-life series (issue 14) in the boot bed: one Debian 13 guest (systemd 257, Nix 2.26.3,
# NixOS-like read-only /nix/store) whose eMMC state persists across seventeen nspawn boots that
# alternate with and without the same SSD — a NixOS life cycle of rebuilds, rollback, reclaim
# and `nix-collect-garbage -d` in both states (guest/long-life: generations are nixos-system-ll-N
# derivations in the system profile, an extlinux menu, the module's installer sequence pin →
# menu → prune-pins, the default profile's tool standing for Nix itself):
#   l0  no SSD: generation 1 and nix-tool-1 on the eMMC, eMMC root M
#   l1  SSD:    generation 2 on the SSD (pin stages it), SSD root R
#   l2  no SSD: generation 2 moved in at boot and booted; M kept
#   l3  SSD:    generations 3 and 4, nix-tool-2 (pinned by hand), rollback to 3, reclaim
#   l4  no SSD: generation 3 is the default and runs, nix-tool-2 runs
#   l5  SSD:    nix-collect-garbage -d through the daemon, menu rewritten, prune-pins
#   l6  no SSD: nix-collect-garbage -d on the eMMC: the unpinned generations go
#   l7  SSD:    the SSD's database still listed them (the overlay store registers a lower path
#               there when asked about it, and takes the lower store as immutable): activate
#               drops them before nix-daemon starts; everything still rooted is there
# Then the boot default made without the module's hook (issue 18); the boot loader's choice is
# the menu's DEFAULT entry as read before the boot changes anything (ll-loader.service):
#   l8  SSD:    the module disabled while the overlay is up (a system built without it, no pin,
#               the menu rewritten): at shutdown it is staged, but its stage 1 would not move it
#               in, so the menu's default goes to the newest entry that boots (generation 3)
#   l9  no SSD: generation 3 boots; stage 1 moves generation 5 in, the menu's default is put back
#   l10 no SSD: generation 5 (without the module) boots: the way out
#   l11 SSD:    a default set by hand (nix-env --set, menu), no pin: staged at shutdown
#   l12 no SSD: it boots
#   l13 SSD:    the same, then the SSD is pulled before shutdown: the pin fails, the menu's
#               default goes to the newest entry that boots (generation 6)
#   l14 no SSD: generation 6 boots; status says which and why
#   l15 SSD:    (the SSD back) at shutdown generation 7 is staged and the menu's default put back
#   l16 no SSD: generation 7 boots
# After every boot: the boot default and Nix itself run, every valid path is present, verify is
# clean, no failed unit, and what each side roots is kept.
# Usage: sudo tests/boot/long-life.sh   (binaries: GENERATOR=…, NIX_SSD_CLI=…, NIX_SSD_DEB=…)
# Last line: "long-life: N passed, M failed".
set -uo pipefail
CHECK_SUITE=long-life; . "$(dirname "$0")/../lib/check.sh"; need_root
. "$(dirname "$0")/lib.sh"
bed_traps
t_series=$(now_ms)
bed_series_begin
LL=$(series_layer long-life client-conf)
# What the boot loader boots, read before anything of the boot can change it (the extlinux
# menu's DEFAULT entry: its label and init), for the step to run as the booted system.
mkdir -p "$LL/etc/systemd/system/sysinit.target.wants" "$LL/etc/systemd/system/nix-ssd.service.d"
cat > "$LL/usr/local/lib/harness/ll-loader" <<'SH'
#!/bin/sh
awk '$1=="DEFAULT"{d=$2} $1=="LABEL"{l=$2} $1=="APPEND" && l==d {for(i=2;i<=NF;i++) if ($i ~ /^init=/) {sub(/^init=/,"",$i); print d, $i; exit}}' \
    /boot/extlinux/extlinux.conf > /run/ll-loader-booted 2>/dev/null || :
SH
chmod 755 "$LL/usr/local/lib/harness/ll-loader"
install -m755 "$BED_DIR/guest/ll-menu" "$LL/usr/local/lib/harness/ll-menu"   # the boot loader's installer
printf '[Unit]\nDescription=long-life: the entry the boot loader boots\nDefaultDependencies=no\nAfter=local-fs.target\nBefore=nix-ssd-pins.service sysinit.target\n[Service]\nType=oneshot\nExecStart=/usr/local/lib/harness/ll-loader\n' \
    > "$LL/etc/systemd/system/ll-loader.service"
ln -s ../ll-loader.service "$LL/etc/systemd/system/sysinit.target.wants/"
# at-shutdown's lines on the console too (the guest's journal does not outlive the boot)
printf '[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n' > "$LL/etc/systemd/system/nix-ssd.service.d/50-bed.conf"

W=$BED_WORK/long-life; rm -rf "$W"; mkdir -p "$W/upper" "$W/work" "$W/merged" "$W/out" "$W/devdisk/by-label"
SSD=$W/ssd.img; truncate -s 1G "$SSD"
bed_setup "$SSD" 2>"$W/setup.log" || { cat "$W/setup.log"; die "nix-ssd setup failed"; }

boot() { # boot NAME SSD(yes|no): one boot of the series; the guest's eMMC state persists in $W/upper
    series_boot long-life ll "$W" "$LL" "$SSD" "$1" "$2"
    BOOTS+=("$1:$2")
}
BOOTS=()
# every boot: the machine is fine, the default and Nix itself run, the store is whole
always() { # always STEP SSD DEFAULT-GEN TOOL
    local S=ll-$1
    ok $S "report printed (the boot reached multi-user.target)" reported $S
    if [ "$2" = yes ]; then ok $S "overlay on /nix/store" has $S store-top '^ssd-overlay$'
    else ok $S "no overlay without the SSD" hasnt $S store-top '^ssd-overlay$'; fi
    [ "$3" = - ] || ok $S "the boot default is generation $3 and runs" has $S "default generation" "runs: generation-$3\$"
    ok $S "Nix itself (the default profile's $4) runs" has $S "nix itself (default profile) runs" "^$4\$"
    ok $S "every path the database calls valid is present" has $S all-present '^[1-9][0-9]* valid, 0 missing$'
    ok $S "verify --check-contents clean" has $S verify '^rc=0 0 problems'
    ok $S "eMMC root M kept" has $S "root M" 'valid=yes exists=yes'
    ok $S "no failed units" has $S failed-units '^ *$'
}
gen() { ok "ll-$1" "generation $2: $4" has "ll-$1" "gen$2" "$3"; }
has_n() { grep -qE -- "$2" <<<"$1"; }   # has_n VALUE ERE

boot l0 no
always l0 no 1 nix-tool-1
gen l0 1 'valid=yes exists=yes lower=yes pinned=yes in-profile=1' "in the eMMC store, pinned, in the profile"
ok ll-l0 "status without the SSD: degraded (exit 1)" has ll-l0 status '^rc=1 health: +degraded'

boot l1 yes
always l1 yes 2 nix-tool-1
gen l1 2 'valid=yes exists=yes lower=no pinned=yes in-profile=1' "on the SSD, pinned (staged), in the profile"
ok ll-l1 "generation 2 staged, not written into the mounted lower store" has ll-l1 "gen2 staged, not in the mounted lower" '^yes no$'
ok ll-l1 "SSD root R valid" has ll-l1 "root R" 'valid=yes exists=yes'
ok ll-l1 "status healthy: a staged boot default counts as pinned (exit 0)" has ll-l1 status '^rc=0 health: +healthy'

boot l2 no
always l2 no 2 nix-tool-1
ok ll-l2 "nix-ssd-pins.service moved generation 2 in at boot" has ll-l2 "pins applied" '^moved 1 staged path'
gen l2 2 'valid=yes exists=yes lower=yes pinned=yes' "now in the eMMC store"
gen l2 1 'valid=yes exists=yes lower=yes pinned=yes' "still there"
ok ll-l2 "the SSD root R is not valid without the SSD" has ll-l2 "root R" 'valid=no exists=no'

boot l3 yes
always l3 yes 3 nix-tool-2
for n in 1 2 3 4; do gen l3 $n 'valid=yes exists=yes .* pinned=yes in-profile=1' "kept: pinned and in the profile"; done
ok ll-l3 "prune after the rollback dropped nothing (every generation is in the profile)" has ll-l3 "prune after rollback" 'none of a system'
ok ll-l3 "the new Nix pinned by hand" has ll-l3 "pin default" '^rc=0$'
ok ll-l3 "reclaim (GC through the daemon) ran" has ll-l3 reclaim '^rc=0 '
ok ll-l3 "SSD root R kept by reclaim" has ll-l3 "root R" 'valid=yes exists=yes'
ok ll-l3 "status healthy (exit 0)" has ll-l3 status '^rc=0 health: +healthy'

boot l4 no
always l4 no 3 nix-tool-2
for n in 3 4; do gen l4 $n 'valid=yes exists=yes lower=yes pinned=yes' "moved in at boot, valid without the SSD"; done

boot l5 yes
always l5 yes 3 nix-tool-2
ok ll-l5 "nix-collect-garbage -d through the daemon ran" has ll-l5 "gc -d (SSD)" '^rc=0'
ok ll-l5 "prune-pins dropped the pins of generations 1, 2 and 4" has ll-l5 "prune after gc" '^dropped 3 of [0-9]+ pin'
ok ll-l5 "the pins left: generation 3 and the new Nix" has ll-l5 pins '^nix-tool-2 nixos-system-ll-3 $'
gen l5 3 'valid=yes exists=yes lower=yes pinned=yes in-profile=1' "the default, kept"
for n in 1 2 4; do gen l5 $n 'pinned=no in-profile=0' "neither pinned nor in a profile"; done
ok ll-l5 "SSD root R kept" has ll-l5 "root R" 'valid=yes exists=yes'

boot l6 no
always l6 no 3 nix-tool-2
ok ll-l6 "nix-collect-garbage -d on the eMMC ran" has ll-l6 "gc -d (eMMC)" '^rc=0'
for n in 1 2 4; do gen l6 $n 'valid=no exists=no' "freed from the eMMC store"; done
gen l6 3 'valid=yes exists=yes lower=yes pinned=yes' "kept"

boot l7 yes
always l7 yes 3 nix-tool-2
ok ll-l7 "activate dropped what the SSD's database still listed without files (generations 1, 2, 4, nix-tool-1), before nix-daemon" has ll-l7 activate '^dropped 4 path'
for n in 1 2 4; do gen l7 $n 'valid=no exists=no' "valid nowhere: neither store lists it without its files"; done
gen l7 3 'valid=yes exists=yes' "kept"
ok ll-l7 "SSD root R kept across everything" has ll-l7 "root R" 'valid=yes exists=yes'
ok ll-l7 "status healthy (exit 0)" has ll-l7 status '^rc=0 health: +healthy'

# ---- the boot default kept bootable however it was made (issue 18): the module disabled while
# the overlay is up, a default set by hand, the same with the SSD pulled before shutdown
menu_of() { awk '$1=="DEFAULT"{print $2}' "$W/upper/boot/extlinux/extlinux.conf"; }
shutdown_said() { grep -c -F -- "$2" "$BED_LOG/ll-$1.console"; }

boot l8 yes
always l8 yes 5 nix-tool-2
gen l8 5 'valid=yes exists=yes lower=no pinned=no' "made without the module's hook: on the SSD only, not pinned"
ok ll-l8 "status: the boot default has paths only on the SSD (degraded)" has ll-l8 status '^rc=1 health: +degraded'
ok ll-l8 "at shutdown: generation 5 staged" has_n "$(shutdown_said l8 'staged ')" '^[1-9]'
ok ll-l8 "at shutdown: its stage 1 cannot move it, the menu's default moved to the newest entry that boots" \
    has_n "$(shutdown_said l8 'the default is now nixos-3 ')" '^1$'
ok ll-l8 "after shutdown: DEFAULT nixos-3 in extlinux.conf" has_n "$(menu_of)" '^nixos-3$'

boot l9 no
always l9 no 5 nix-tool-2
ok ll-l9 "the loader booted nixos-3 (generation 3) and it runs without the SSD" has ll-l9 "loader booted" '^nixos-3 runs: generation-3$'
ok ll-l9 "generation 5 moved in at boot" has ll-l9 "pins applied" '^moved [1-9]'
gen l9 5 'valid=yes exists=yes lower=yes' "now in the internal store"
ok ll-l9 "the menu's default put back at boot (generation 5 boots now)" has ll-l9 "menu put back at boot" '^the default is nixos-default again$'
ok ll-l9 "the note is gone" has ll-l9 "fallback note" '^no$'

boot l10 no
always l10 no 5 nix-tool-2
ok ll-l10 "the loader booted generation 5 (built without the module) without the SSD" has ll-l10 "loader booted" '^nixos-default runs: generation-5$'

boot l11 yes
always l11 yes 6 nix-tool-2
gen l11 6 'valid=yes exists=yes lower=no pinned=no' "set by hand: on the SSD only, not pinned"
ok ll-l11 "at shutdown: generation 6 staged (its stage 1 moves it: no fallback)" has_n "$(shutdown_said l11 'staged ')" '^[1-9]'
ok ll-l11 "after shutdown: the menu's default unchanged" has_n "$(menu_of)" '^nixos-default$'

boot l12 no
always l12 no 6 nix-tool-2
ok ll-l12 "the loader booted generation 6 (set by hand) without the SSD" has ll-l12 "loader booted" '^nixos-default runs: generation-6$'
gen l12 6 'valid=yes exists=yes lower=yes pinned=yes' "moved in at boot, pinned at shutdown"

cp --sparse=always "$SSD" "$W/ssd-before-pull.img"
( # the SSD pulled when the guest asks: every further I/O fails (size 0), as on a yanked USB
  # disk, and the page cache is dropped, so that what the shutdown needs of the SSD is not
  # still in memory (it was, the first time: the pin at shutdown then worked from the cache)
  for _ in $(seq 600); do
      [ -e "$W/out/pull-request" ] && [ -s "$W/out/loopdev" ] && {
          cp --sparse=always "$SSD" "$W/ssd-at-pull.img"; truncate -s 0 "$SSD"; losetup -c "$(cat "$W/out/loopdev")"
          echo 3 > /proc/sys/vm/drop_caches
          : > "$W/out/pulled"; exit 0; }
      sleep 0.5
  done ) &
puller=$!
boot l13 yes
wait "$puller"
ok ll-l13 "report printed" reported ll-l13
ok ll-l13 "the SSD was pulled before the shutdown" has ll-l13 pulled '^yes$'
ok ll-l13 "at shutdown: the pin of generation 7 failed" has_n "$(shutdown_said l13 'could not pin the boot default')" '^1$'
ok ll-l13 "at shutdown: the menu's default moved to the newest entry that boots (generation 6)" \
    has_n "$(shutdown_said l13 'the default is now nixos-5 ')" '^1$'
mv "$W/ssd-at-pull.img" "$SSD"

boot l14 no
always l14 no - nix-tool-2
ok ll-l14 "the loader booted generation 6, the newest that boots without the SSD" has ll-l14 "loader booted" '^nixos-5 runs: generation-6$'
ok ll-l14 "status: degraded, says which entry and why" has ll-l14 status '^rc=1 health: +degraded'
ok ll-l14 "status names the entry, the system not booted and why" has ll-l14 "status says of the boot menu" \
    "^the boot menu's default is nixos-5 \(/nix/store/[a-z0-9]+-nixos-system-ll-6\), not nixos-default \(/nix/store/[a-z0-9]+-nixos-system-ll-7\).*could not be pinned"

boot l15 yes
always l15 yes 7 nix-tool-2
ok ll-l15 "at shutdown (the SSD back): generation 7 staged and the menu's default put back" \
    has_n "$(shutdown_said l15 'the default is nixos-default again')" '^1$'

boot l16 no
always l16 no 7 nix-tool-2
ok ll-l16 "the loader booted generation 7 without the SSD" has ll-l16 "loader booted" '^nixos-default runs: generation-7$'
ok ll-l16 "status no longer speaks of a moved default" has ll-l16 "status says of the boot menu" '^$'

# ---- the SSD always attached (issue 21): ten switches, each replacing a system's 20 MiB, through
# the module's hook (the switch returns before the copy into the internal store; the step waits
# for it), nix-collect-garbage -d and the menu rewrite every other boot: the internal store
# returns to a bound instead of growing
mb() { rva "ll-$1" "internal store MiB"; }
boot l17 yes; always l17 yes 9 nix-tool-2; base=$(mb l17)
for s in l18 l19 l20 l21 l22; do boot $s yes; done
for s in 17 18 19 20 21; do
    for n in $(( (s - 17) * 2 + 8 )) $(( (s - 17) * 2 + 9 )); do
        ok ll-l$s "switch to generation $n returned before its copy into the internal store" has ll-l$s "switch $n returned after" 'background: yes$'
    done
done
always l18 yes 11 nix-tool-2; always l19 yes 13 nix-tool-2; always l20 yes 15 nix-tool-2; always l21 yes 17 nix-tool-2
always l22 yes 17 nix-tool-2
for s in l19 l21 l22; do
    ok ll-$s "activation collected the internal store (pins dropped by the last gc -d and menu rewrite)" has ll-$s "internal collected" '^collected the internal store \([1-9][0-9]* dropped pin'
done
for s in l17 l19 l21 l22; do
    ok ll-$s "root L (made on the SSD, naming an internal-store path) kept through the collections" has ll-$s "root L" 'valid=yes exists=yes'
done
for s in l18 l19 l20 l21 l22; do
    ok ll-$s "activation deleted the upper copies of the paths pinned into the internal store" has ll-$s "upper copies deleted" '^deleted [1-9][0-9]* upper copies'
    ok ll-$s "nothing quarantined (pinned copies are deleted, not kept)" has ll-$s "quarantine MiB" '^(0)?$'
    ok ll-$s "the menu's default boots without the SSD" has ll-$s "menu default boots without the SSD" '^1$'
done
echo "internal store and staging MiB per step (the SSD attached, 20 MiB a generation): l17 $base l18 $(mb l18) l19 $(mb l19) l20 $(mb l20) l21 $(mb l21) l22 $(mb l22)"
ok ll-l22 "the internal store (with what is staged) is bounded after ten switches: at most two generations, 45 MiB (it began at $base MiB)" \
    le ll-l22 "internal store MiB" 45
boot l23 no
always l23 no 17 nix-tool-2
ok ll-l23 "the loader booted generation 17 without the SSD" has ll-l23 "loader booted" '^nixos-default runs: generation-17$'

echo "long-life boots: ${BOOTS[*]}; series wall $(( $(now_ms) - t_series )) ms"
for s in l0 l1 l2 l3 l4 l5 l6 l7 l8 l9 l10 l11 l12 l13 l14 l15 l16 l17 l18 l19 l20 l21 l22 l23; do
    if [[ " ${BOOT_FAILED[*]} " == *" ll-$s "* ]]; then
        echo "--- report of ll-$s"; cat "$BED_LOG/ll-$s.report"; tail -30 "$BED_LOG/ll-$s.console"
    fi
done
summary
