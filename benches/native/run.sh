#!/bin/bash
# The native bench: Nix on the eMMC store vs the project's SSD layer, at native CPU speed on the
# host kernel, the board's devices modelled by blkio-throttled loop devices and its memory by a
# memory cgroup. Figures only: it fails only when a workload itself fails. See README.md.
#   benches/native/run.sh                       full form: 3 rounds of emmc, default, ssd-nix, build-only
#   ROUNDS=1 CONFIGS="emmc default ssd-nix" benches/native/run.sh     quick form (the test command's)
# Env: ROUNDS (3), CONFIGS (see one.sh cfg_spec; also the candidates d-* c-* cand plain),
# WORKLOADS (one.sh: a subset, in its order), PERF=1 (a perf profile of every step in $RES/perf), CAND_COMPRESS / CAND_DURABILITY (`cand` and
# the `plain` yardstick; none / foc), COMP_DURABILITY (durability of the c-* configurations), RES (results dir, default target/native-bench; emptied), KEEP_INPUTS=1 (keep
# the inputs in /dev/shm for the next run), NIX_SSD_CLI (default: cargo build --release --locked).
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-3}
CONFIGS=(${CONFIGS:-emmc default ssd-nix build-only})
[ "$(id -u)" = 0 ] || { echo "native bench: run as root (loop devices, cgroups, mounts)" >&2; exit 2; }
[ -n "$PREPARED" ] && [ -x "$PREPARED/usr/bin/nix-daemon" ] ||
    { echo "native bench: no prepared boot-bed tree (${BED_CACHE:-/var/cache/nix-ssd-bed}/prepared-*; tests/boot builds it)" >&2; exit 2; }
[ -d /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/cpuacct ] && [ -f $BLK/blkio.throttle.write_bps_device ] ||
    { echo "native bench: needs cgroup v1 memory, cpuacct and blkio hierarchies" >&2; exit 2; }
if [ -z "${NIX_SSD_CLI:-}" ]; then
    (cd "$NB_TOP" && cargo build --release --locked -q) || { echo "native bench: cargo build failed" >&2; exit 2; }
    NIX_SSD_CLI=$NB_TOP/target/release/nix-ssd
fi
export NIX_SSD_CLI RES WORKLOADS PERF CAND_COMPRESS=${CAND_COMPRESS:-none} CAND_DURABILITY=${CAND_DURABILITY:-foc} \
    COMP_DURABILITY=${COMP_DURABILITY:-foc} CAND_OPTS=${CAND_OPTS:-}
mkdir -p "$RES"; rm -rf "$RES"/{raw.tsv,runs.log,table.txt,inputs.txt,daemon-*.log,perf}

# One bench at a time on a machine: a second would share the CPU, the loop devices' workers and
# the page cache with the first and spoil both (waits for the other to finish).
exec 9> /run/lock/nix-native-bench.lock
flock -n 9 || { log "native bench: another native bench runs; waiting for it"; flock 9; }
CHILD=
cleanup() {
    [ -n "$CHILD" ] && { kill "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null; }
    cg_remove
    loop_cleanup
    rm -rf "$NB_SHM/emmc.img" "$NB_SHM/ssd.img" "$NB_SHM/rootup" "$NB_SHM/top"
    [ "${KEEP_INPUTS:-0}" = 1 ] || rm -rf "$NB_SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

run_one() {   # run_one CFG REP
    local devs=() rc
    cp --sparse=always "$NB_SHM/emmc-golden.img" "$NB_SHM/emmc.img" && mkdev "$NB_SHM/emmc.img" || return 1
    devs+=("$DEV_FS" "$DEV_TH")
    if [ "$1" != emmc ]; then
        truncate -s 16G "$NB_SHM/ssd.img" && mkdev "$NB_SHM/ssd.img" || return 1
        devs+=("$DEV_FS" "$DEV_TH")
    fi
    # in the background so that a signal reaches run.sh's traps at once (bash defers them while
    # a foreground child runs); unshare execs bash, so CHILD is one.sh itself
    unshare --mount --propagation private bash "$NB_DIR/one.sh" "$1" "$2" "${devs[@]}" > /dev/null &
    CHILD=$!; wait $CHILD; rc=$?; CHILD=
    cg_kill
    # the daemon's last children were reparented to PID 1; activate refuses to run while a
    # nix-daemon child of PID 1 exists, so wait until the init reaped ours
    local n=0; while pgrep -x -P 1 nix-daemon > /dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    loop_cleanup
    rm -rf "$NB_SHM/emmc.img" "$NB_SHM/ssd.img" "$NB_SHM/rootup"
    return $rc
}

t0=$SECONDS
log "native bench: ${ROUNDS} round(s) of ${CONFIGS[*]}; results in $RES"
cg_make || { echo "native bench: cannot make cgroups" >&2; exit 2; }
[ "${VERIFY:-1}" = 1 ] && { echo "device model check:"; verify_models; } | tee "$RES/verify.txt" >&2
"$NB_DIR/inputs.sh" >&2 & CHILD=$!
wait $CHILD || { echo "native bench: preparing inputs failed" >&2; exit 1; }; CHILD=
: > "$RES/raw.tsv"; : > "$RES/runs.log"
n=${#CONFIGS[@]} failed=0
for rep in $(seq 1 "$ROUNDS"); do   # every round runs every configuration, the order rotated
    for i in $(seq 0 $((n - 1))); do
        c=${CONFIGS[$(((i + rep - 1) % n))]}
        log "round $rep/$ROUNDS: $c (load average $(cut -d' ' -f1-3 /proc/loadavg))"
        run_one "$c" "$rep" || { log "run $c/$rep failed"; failed=1; }
    done
done
log "runs done in $((SECONDS - t0)) s"
python3 "$NB_DIR/table.py" "$RES" | tee "$RES/table.txt"
exit $failed
