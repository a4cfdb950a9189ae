#!/bin/bash
# Store safety across real reboots (issue 4): one Debian 13 guest (systemd 257, Nix 2.26.3,
# NixOS-like read-only /nix/store) whose eMMC state persists across a series of nspawn boots,
# with the same SSD image attached or not:
#   e0  no SSD:   add an eMMC path E
#   s1  SSD:      add/build on the SSD (B references E), verify; root GC direct (must fail,
#                 delete nothing) and through the daemon (rooted SSD paths kept, also I and Q,
#                 rooted only on the eMMC: a gcroots link and a profile generation); pin P
#                 (staged: the mounted lower layer and the eMMC database stay byte-identical)
#   s2  no SSD:   staged pins moved in and registered at boot (nix-ssd-pins.service); SSD paths
#                 invalid, pinned P valid and runs, verify clean; an eMMC GC keeps E
#                 (rooted by sync-roots at s1's shutdown); add/build work
#   s3  SSD:      SSD paths valid again, verify clean
#   s4  SSD only after nix-daemon started: no overlay this boot, daemon consistent, status says so
# Usage: sudo tests/boot/store-safety.sh   (binaries: GENERATOR=…, NIX_SSD_CLI=…, else built)
# Last line: "store-safety: N passed, M failed".
set -uo pipefail
CHECK_SUITE=store-safety; . "$(dirname "$0")/../lib/check.sh"; need_root
. "$(dirname "$0")/lib.sh"
bed_traps
t_series=$(now_ms)
bed_series_begin
SL=$(series_layer store-safety client-conf)   # its step script instead of the matrix's report

W=$BED_WORK/store-safety; rm -rf "$W"; mkdir -p "$W/upper" "$W/work" "$W/merged" "$W/out" "$W/devdisk/by-label"
SSD=$W/ssd.img; truncate -s 1G "$SSD"
bed_setup "$SSD" 2>"$W/setup.log" || { cat "$W/setup.log"; die "nix-ssd setup failed"; }

# step NAME SSD(yes|no|late): one boot of the series; the guest's eMMC state persists in $W/upper
step() {
    series_boot store-safety ss "$W" "$SL" "$SSD" "$1" "$2"
    STEP_MS+=("$1 ${BOOT_MS}")
}
STEP_MS=()
n() { echo "ss-$1"; }   # report name for the assertion helpers
step e0 no
E=$(rv ss-e0 E | awk '{print $1}')
ok ss-e0 "eMMC path E added and valid" has ss-e0 E 'valid=yes'

step s1 yes
S=ss-s1
ok $S "overlay on /nix/store" has $S store-top '^ssd-overlay$'
for x in A B C P; do ok $S "path $x valid, in the SSD upper, not in eMMC" has $S "path $x" 'valid=yes upper=yes lower=no'; done
for x in I Q; do ok $S "path $x valid, in the SSD upper" has $S "path $x" 'valid=yes upper=yes lower=no'; done
ok $S "the daemon's GC roots include those only the eMMC holds (gcroots link I, profile Q)" has $S "daemon's roots include I and Q" '^I=yes Q=yes$'
ok $S "B (built on the SSD) references the eMMC path E" has $S "B references E" '^yes$'
ok $S "verify --check-contents clean" has $S verify-1 '^rc=0 0 problems'
ok $S "client.env: NIX_REMOTE=daemon while the overlay is up" has $S client-env 'NIX_REMOTE=daemon'
ok $S "root's direct GC (eMMC database) is refused" hasnt $S gc-direct '^rc=0 '
for x in A B C P; do ok $S "root's direct GC deleted nothing: $x" has $S "after-gc-direct $x" 'exists=yes valid=yes'; done
ok $S "root's GC with no environment (nix.conf !include nix-client.conf) ran" has $S gc-plain '^rc=0 '
for x in A B P I Q; do ok $S "that GC kept rooted SSD path $x" has $S "after-gc-plain $x" 'exists=yes valid=yes'; done
ok $S "that GC freed the unrooted SSD path C (it went through the daemon)" has $S "after-gc-plain C" 'exists=no valid=no'
ok $S "root's GC with client.env (NIX_REMOTE=daemon) ran" has $S gc-daemon '^rc=0 '
for x in A B P I Q; do ok $S "GC through the daemon kept rooted SSD path $x" has $S "after-gc-daemon $x" 'exists=yes valid=yes'; done
ok $S "GC through the daemon kept the eMMC path E" has $S "after-gc-daemon E" 'exists=yes valid=yes'
ok $S "status flags a boot default only on the SSD (exit 1)" has $S status-before-pin '^rc=1 1 boot-default'
ok $S "nix-ssd pin succeeded" has $S pin '^rc=0 '
ok $S "pin left the mounted lower layer and the eMMC database as they were" has $S "lower store and database unchanged by pin" '^yes$'
ok $S "pinned P is staged (not in the mounted lower layer), visible, rooted in the eMMC" has $S "P after pin" 'lower=no staged=yes visible=yes eMMC-root=yes'
ok $S "status healthy after pin (exit 0, no boot-default warning)" has $S status-after-pin '^rc=0 0 boot-default'
ok $S "what the daemon builds is signed with this machine's key" has $S "P signed by this machine" '^yes$'
ok $S "pin refuses a path without a trusted signature (not built here)" has $S pin-unsigned '^rc=[1-9][0-9]* lacks a signature by a trusted key'
ok $S "... and neither the lower store nor the staging gets it" has $S "U after pin" '^lower=no staged=no$'
ok $S "verify --check-contents clean after GC and pin" has $S verify-2 '^rc=0 0 problems'
ok $S "no failed units" has $S failed-units '^ *$'

step s2 no
S=ss-s2
ok $S "no overlay without the SSD" hasnt $S store-top '^ssd-overlay$'
for x in A B; do ok $S "SSD path $x not valid without the SSD" has $S "path $x" 'valid=no exists=no'; done
ok $S "nix-ssd-pins.service moved and registered the staged pins at boot" has $S "pins applied at boot" 'moved [1-9][0-9]* staged path.*registered'
ok $S "the staging is gone after that" has $S "staging gone after apply" '^yes$'
ok $S "pinned P valid and present without the SSD" has $S "path P" 'valid=yes exists=yes'
ok $S "pinned P runs (its content reads back)" has $S "P content" '^pinned-ok$'
ok $S "E rooted in eMMC for the SSD layer (sync-roots at shutdown)" has $S "E rooted for the SSD layer" '^yes$'
ok $S "verify --check-contents clean without the SSD" has $S verify-1 '^rc=0 0 problems'
ok $S "eMMC GC ran" has $S gc-emmc '^rc=0 '
ok $S "eMMC GC kept E, which the SSD layer needs" has $S "after-gc E" 'valid=yes exists=yes'
ok $S "eMMC GC kept pinned P" has $S "after-gc P" 'valid=yes exists=yes'
ok $S "adds work on eMMC" has $S "add F" 'valid=yes'
ok $S "builds work on eMMC" has $S "build G" 'valid=yes'
ok $S "verify clean after GC" has $S verify-2 '^rc=0 0 problems'
ok $S "status: degraded (exit 1)" has $S status '^rc=1 health: +degraded'
ok $S "no failed units" has $S failed-units '^ *$'

step s3 yes
S=ss-s3
ok $S "overlay on /nix/store again" has $S store-top '^ssd-overlay$'
for x in A B P E I Q; do ok $S "path $x valid and present again" has $S "path $x" 'valid=yes exists=yes'; done
ok $S "B's reference E is there" has $S "B content names E" '^yes$'
ok $S "verify --check-contents clean" has $S verify-1 '^rc=0 0 problems'
ok $S "status: healthy (exit 0)" has $S status '^rc=0 health: +healthy'
ok $S "status warns when the overlay workdir drifts to mode 777" has $S "drift warnings" '^1$'
ok $S "no failed units" has $S failed-units '^ *$'

step s4 late
S=ss-s4
ok $S "no overlay at boot (SSD absent)" hasnt $S store-top '^ssd-overlay$'
ok $S "SSD subvolume mounted later" has $S overlay-mounted '^yes$'
ok $S "activate refused under the running daemon" has $S "nix-ssd.service said" '^[1-9]'
ok $S "still no overlay on /nix/store" hasnt $S store-top-after '^ssd-overlay$'
ok $S "the daemon was not restarted" bash -c '[ "$(rv ss-s4 daemon-pid-before)" = "$(rv ss-s4 daemon-pid-after)" ]'
for x in A B; do ok $S "SSD path $x not valid this boot (consistent daemon)" has $S "path $x" 'valid=no'; done
ok $S "verify --check-contents clean" has $S verify-1 '^rc=0 0 problems'
ok $S "status: broken (exit 2) and says the SSD is used from the next boot" has $S status '^rc=2 health: +broken'
ok $S "status names the late SSD" has $S "status says late" '^[1-9]'

echo "store-safety boots (ms): ${STEP_MS[*]}; series wall $(( $(now_ms) - t_series )) ms"
for s in e0 s1 s2 s3 s4; do
    if [[ " ${BOOT_FAILED[*]} " == *" ss-$s "* ]]; then
        echo "--- report of ss-$s"; cat "$BED_LOG/ss-$s.report"; tail -30 "$BED_LOG/ss-$s.console"
    fi
done
summary
