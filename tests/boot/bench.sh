#!/bin/bash
# Boot-time and Nix I/O bench of nix-ssd-generator (qemu/TCG, NixOS-like init, same run):
#  - per scenario: multi-user.target and nix-daemon's first answer (ms after systemd started),
#    and their difference to the baseline (same guest without the generator);
#  - Nix I/O workload (nix-store --add of a 1540-file / 56 MiB tree; a build writing 4096 small
#    files in its build dir and its output) on the SSD layer vs the plain eMMC store, with qemu
#    drive throttling modelling the two devices (figures printed below).
#   sudo tests/boot/bench.sh        boots its own 5 qemu guests, then prints the table
#   BENCH_FROM="B O U A Z" bench.sh only prints the table from existing reports named B (baseline),
#                                   O (overlay), U (build mode), A (absent), Z (timeout 0): run.sh
#                                   does this with its own qemu boots (they carry the workload).
# Environment: GENERATOR / NIX_SSD_CLI as for run.sh; EMMC_THROTTLE / SSD_THROTTLE (qemu
# -drive throttling.* options, see lib.sh); BENCH_BOOTS (subset of: baseline overlay build absent timeout0).
set -uo pipefail
. "$(dirname "$0")/../lib/check.sh"; need_root   # figures; its checks only fail (exit 1)
. "$(dirname "$0")/lib.sh"
trap bed_cleanup EXIT
T0=$(now_ms)
BOOTS=${BENCH_BOOTS:-baseline overlay build absent timeout0}
declare -A NAME=()
if [ -n "${BENCH_FROM:-}" ]; then
    read -r NAME[baseline] NAME[overlay] NAME[build] NAME[absent] NAME[timeout0] <<< "$BENCH_FROM"
else
    host_packages; resolve_binaries
    ROOTFS=$(rootfs_prepared) || exit 2
    stage_payload "$GENERATOR" "$NIX_SSD_CLI"
    rm -f "$BED_WORK"/qemu/root-gen*.img
    IMG=$BED_WORK/img; mkdir -p "$IMG"
    make_ssd_image "$IMG/bench-master.img" good
    for b in $BOOTS; do
        n=bench-$b; NAME[$b]=$n; ssdimg=none
        case $b in baseline|overlay|build) cp --sparse=always "$IMG/bench-master.img" "$IMG/$n.img"; ssdimg=$IMG/$n.img ;; esac
        case $b in
        baseline) boot_qemu $n "$ssdimg" no yes $BENCH_CMDLINE $BENCH_WL ;;
        overlay)  boot_qemu $n "$ssdimg" yes yes $BENCH_CMDLINE $BENCH_WL $QEMU_DT ;;
        build)    boot_qemu $n "$ssdimg" yes yes $BENCH_CMDLINE $BENCH_WL nix-ssd=build $QEMU_DT ;;
        absent)   boot_qemu $n none yes yes $BENCH_CMDLINE ;;
        timeout0) boot_qemu $n none yes yes $BENCH_CMDLINE nix-ssd.device-timeout=0 ;;
        *) die "unknown bench boot $b" ;;
        esac
        rm -f "$IMG/$n.img"
    done
    rm -f "$IMG/bench-master.img"
fi
for b in baseline overlay build absent timeout0; do NAME[$b]=${NAME[$b]-not-booted}; done
for b in $BOOTS; do reported "${NAME[$b]}" || fail "bench: ${NAME[$b]} has no report ($BED_LOG/${NAME[$b]}.console)"; done
declare -A DESC=(
  [baseline]="no generator, SSD attached, unused (eMMC store; /tmp build dir on eMMC)"
  [overlay]="overlay mode: store upper layer + build dir on the SSD"
  [build]="nix-ssd=build: eMMC store, build dir on the SSD"
  [absent]="SSD absent, default device timeout (10 s)"
  [timeout0]="SSD absent, nix-ssd.device-timeout=0")

num() { local v; v=$(rv "$1" "$2" | awk '{print $1}'); [[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo "-"; }
delta() { [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] && printf '%+d' $(( $1 - $2 )) || echo "-"; }
mbs() { [[ $1 =~ ^[0-9.]+$ ]] && echo "scale=1; 64 / $1" | bc || echo "-"; }
ratio() { [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ && $2 -gt 0 ]] && echo "scale=2; $1 / $2" | bc | sed 's/^\./0./' || echo "-"; }
B=${NAME[baseline]}; BM=$(num $B t-multi-user-ms); BF=$(num $B t-first-answer-ms); BW=$(num $B t-answer-wait-ms)
echo
echo "== nix-ssd bench ($(date -u +%FT%TZ), qemu $QEMU_ACCEL, host $(nproc) cores; ms after systemd started; same run)"
echo "   drive models: eMMC (root disk) ${EMMC_THROTTLE:-unthrottled}; SSD (2nd disk) ${SSD_THROTTLE:-unthrottled}"
echo "   first-answer = nix-daemon's first answer; answer-wait = from the probe's start (after sockets.target) to that answer;"
echo "   daemon-wait = from the probe's start to nix-daemon.service active (what a device wait delays)"
printf '%-9s %10s %7s %12s %7s %11s %7s %11s %7s %8s %9s  %s\n' scenario multi-user Δbase first-answer Δbase answer-wait Δbase daemon-wait device wl-add wl-build what
for b in $BOOTS; do
    n=${NAME[$b]}; m=$(num $n t-multi-user-ms); f=$(num $n t-first-answer-ms); w=$(num $n t-answer-wait-ms)
    printf '%-9s %10s %7s %12s %7s %11s %7s %11s %7s %8s %9s  %s\n' "$b" "$m" "$(delta "$m" "$BM")" "$f" "$(delta "$f" "$BF")" \
        "$w" "$(delta "$w" "$BW")" "$(num $n t-daemon-wait-ms)" "$(num $n t-device-ms)" "$(num $n wl-add-ms)" "$(num $n wl-build-ms)" "${DESC[$b]}"
done
for b in $BOOTS; do    # workload sanity: the workload's rc and where it ran
    n=${NAME[$b]}; rv $n wl-add-ms | grep -q . || continue
    echo "   $b: tree $(rv $n wl-tree); add rc=$(rv $n wl-add-ms | sed -n 's/.*rc=\([0-9]*\).*/\1/p'); build rc=$(rv $n wl-build-ms | sed -n 's/.*rc=\([0-9]*\).*/\1/p') files=$(rv $n wl-build-ms | sed -n 's/.*files=\([0-9]*\).*/\1/p'); store $(rv $n store-top | awk '{print $1}'); NIX_BUILD_TOP $(rv $n build-out | sed -n 's/^build-top=//p' | sed 's|/nix-build-.*||')"
    dd_() { rv $n "$1" | awk '{print $1}'; }
    er=$(dd_ wl-dd-read-emmc-s); sr=$(dd_ wl-dd-read-ssd-s); ew=$(dd_ wl-dd-emmc-s); sw=$(dd_ wl-dd-ssd-s)
    echo "      64 MiB O_DIRECT: raw read eMMC-model disk $(mbs "$er") MiB/s, SSD-model disk $(mbs "$sr") MiB/s; file write ext4/eMMC $(mbs "$ew") MiB/s, btrfs/SSD $(mbs "$sw") MiB/s"
done
EA=$(num ${NAME[baseline]} wl-add-ms); SA=$(num ${NAME[overlay]} wl-add-ms)
EB=$(num ${NAME[baseline]} wl-build-ms); SB=$(num ${NAME[overlay]} wl-build-ms); BB=$(num ${NAME[build]} wl-build-ms)
echo "I/O ratio eMMC/SSD (time on eMMC store / time on SSD layer; >1 = SSD faster):"
echo "   nix-store --add tree:  $(ratio "$EA" "$SA")  ($EA ms vs $SA ms)"
echo "   build, many files:     $(ratio "$EB" "$SB")  ($EB ms vs $SB ms; build mode, eMMC store + SSD build dir: $BB ms, ratio $(ratio "$EB" "$BB"))"
[ -z "${BENCH_FROM:-}" ] && echo "bench wall: $(( ($(now_ms) - T0) / 1000 )) s"
echo "reports: $(for b in $BOOTS; do printf '%s ' "$BED_LOG/${NAME[$b]}.report"; done)"
for b in baseline overlay build; do for k in wl-add-ms wl-build-ms; do
    n=${NAME[$b]}; [[ " $BOOTS " == *" $b "* ]] || continue
    rv $n $k | grep -qE '^[0-9]+ rc=0 /nix/store/' || fail "bench: $b $k failed: $(rv $n $k)"
done; done
[ "$CHECK_FAIL" -eq 0 ]
