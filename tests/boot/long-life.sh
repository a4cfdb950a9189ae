#!/bin/bash
# Long-life series (issue 14) in the boot bed: one Debian 13 guest (systemd 257, Nix 2.26.3,
# NixOS-like read-only /nix/store) whose eMMC state persists across eight nspawn boots that
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
    ok $S "the boot default is generation $3 and runs" has $S "default generation" "runs: generation-$3\$"
    ok $S "Nix itself (the default profile's $4) runs" has $S "nix itself (default profile) runs" "^$4\$"
    ok $S "every path the database calls valid is present" has $S all-present '^[1-9][0-9]* valid, 0 missing$'
    ok $S "verify --check-contents clean" has $S verify '^rc=0 0 problems'
    ok $S "eMMC root M kept" has $S "root M" 'valid=yes exists=yes'
    ok $S "no failed units" has $S failed-units '^ *$'
}
gen() { ok "ll-$1" "generation $2: $4" has "ll-$1" "gen$2" "$3"; }

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

echo "long-life boots: ${BOOTS[*]}; series wall $(( $(now_ms) - t_series )) ms"
for s in l0 l1 l2 l3 l4 l5 l6 l7; do
    if [[ " ${BOOT_FAILED[*]} " == *" ll-$s "* ]]; then
        echo "--- report of ll-$s"; cat "$BED_LOG/ll-$s.report"; tail -30 "$BED_LOG/ll-$s.console"
    fi
done
summary
