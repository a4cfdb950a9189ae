#!/bin/bash
# One run of one configuration, inside `unshare --mount --propagation private` (run.sh calls it
# with fresh devices):  one.sh CFG REP E_FS E_TH [S_FS S_TH]
# Sets the machine up as it boots (eMMC root with /nix and /tmp; for SSD configurations the
# project's `nix-ssd setup`, the subvolume mounts the generator writes, `nix-ssd activate`, then
# nix-daemon with activate's NIX_CONFIG), throttles the devices, then times each workload through
# the daemon (clients: NIX_REMOTE=daemon): eval, import, hook (switch = import + hook), add, build,
# rebuild, bigbuild, read, gc (WORKLOADS picks some; the rest is kept in order). One TSV line per
# workload (and one for the activation) goes to $RES/raw.tsv; what was mounted and configured
# goes to $RES/runs.log.
. "$(dirname "$0")/lib.sh"
CFG=$1 REP=$2 E_FS=$3 E_TH=$4 S_FS=${5:-} S_TH=${6:-}
die() { echo "one.sh $CFG/$REP: $*" >&2; exit 1; }
# cfg_spec CFG -> "store compression durability"
#   store: emmc | overlay (the project's) | plain (btrfs subvolume as the whole /nix, no overlay)
#          | build (the project's mode build: the store on the eMMC, builds on the SSD)
#   compression: default (the generator's mount options) | none | zstd:1 | zstd:3 | lzo ...
#   durability: default (activate's setting) | none | sbr (sync-before-registering) |
#               foc (btrfs flushoncommit + fsync-metadata = false)
# Durability is varied on the default's compression (d-*), compression on COMP_DURABILITY (c-*,
# foc: the cheapest durability that may hold, so fsync costs do not drown compression costs;
# c-zstd3 with foc is d-foc); `plain` is the overlay-overhead yardstick for the candidate
# combination CAND_COMPRESS + CAND_DURABILITY (`cand`, = c-none by default).
CAND_COMPRESS=${CAND_COMPRESS:-none} CAND_DURABILITY=${CAND_DURABILITY:-foc} COMP_DURABILITY=${COMP_DURABILITY:-foc}
cfg_spec() {
    case $1 in
    emmc) echo "emmc - -" ;;
    default) echo "overlay default default" ;;
    d-none) echo "overlay default none" ;;
    d-sbr) echo "overlay default sbr" ;;
    d-foc) echo "overlay default foc" ;;
    c-none) echo "overlay none $COMP_DURABILITY" ;;
    c-zstd1) echo "overlay zstd:1 $COMP_DURABILITY" ;;
    c-zstd3) echo "overlay zstd:3 $COMP_DURABILITY" ;;
    c-lzo) echo "overlay lzo $COMP_DURABILITY" ;;
    cand) echo "overlay $CAND_COMPRESS $CAND_DURABILITY" ;;
    plain) echo "plain $CAND_COMPRESS $CAND_DURABILITY" ;;
    ssd-nix | plain-default) echo "plain default default" ;;
    build-only) echo "build default default" ;;
    *) return 1 ;;
    esac
}
# CFG = BASE[+LEVER...]: a configuration with levers the project does not set (one at a time):
#   opaquelinks    the upper layer's .links opaque: the lower store's hard-link pool out of the
#                  overlay store's view (its GC lstat's every entry; optimising links into it)
#   inline0        btrfs max_inline=0 (small files out of the metadata)
#   msingle        btrfs metadata single instead of mkfs's dup (converted after setup)
#   nocow          chattr +C on the state dir (Nix's database) and the build subvolume
#   xino           the overlay mounted again with xino=off,index=off added
#   tmpbuild       the build dir on a tmpfs (size TMPBUILD_SIZE, default 2G; in the memory cgroup)
BASE=${CFG%%+*} LEVERS=" $(tr '+' ' ' <<< "${CFG#"$BASE"}") "
lever() { [[ "$LEVERS" == *" $1 "* ]]; }
for l in $LEVERS; do
    case $l in opaquelinks | inline0 | msingle | nocow | xino | tmpbuild) ;; *) die "unknown lever $l" ;; esac
done
spec=$(cfg_spec "$BASE") || die "unknown configuration"
read -r STORE COMP DUR <<< "$spec"
root_mount || die "root mounts"
E=$R/mnt/emmc; mkdir -p "$E" "$R/mnt/nix-ssd"
mount "$E_FS" "$E" && mount --bind "$E/nix" "$R/nix" && mount --bind "$E/tmp" "$R/tmp" && mount --bind "$E/boot" "$R/boot" ||
    die "mount eMMC"
rm -f "$NB_SHM/mounts.used" "$NB_SHM/activate.log"
MNTS=("$E")   # the file systems a workload's final syncfs covers
install -m 755 "$NIX_SSD_CLI" "$R/usr/bin/nix-ssd" && ln -sf nix-ssd "$R/usr/bin/nix-ssd-remount-hook"
# No systemd runs in the chroot: what `nix-ssd install-bootloader` asks of systemd-run (a
# transient unit for the background copy, idle I/O class, nice 19) is done here as systemd would
# do it, the command detached; measure waits for it before its final sync (the hook's "returned"
# is when the hook came back, its "on disk" when the copy, the menu and the sync are done).
cat > "$R/usr/local/bin/systemd-run" <<'SH'
#!/bin/sh
while [ $# -gt 0 ]; do case $1 in --*) shift ;; *) break ;; esac; done
setsid ionice -c3 nice -n19 "$@" > /run/bench-bg.log 2>&1 < /dev/null &
echo $! > /run/bench-bg.pid
SH
chmod 755 "$R/usr/local/bin/systemd-run"
HZ=$(getconf CLK_TCK)
# the devices as the board has them (throttles, dirty limits) from the activation on
model_on() {
    throttle "$E_TH" emmc; dirty_limit "/sys/class/bdi/$(majmin "$E_FS")"
    [ -n "$S_TH" ] || return 0
    throttle "$S_TH" ssd; dirty_limit "/sys/fs/btrfs/$(blkid -s UUID -o value "$S_FS")/bdi"
}
model_off() { throttle "$E_TH" off; [ -z "$S_TH" ] || throttle "$S_TH" off; }

# measure NAME CMD...: one timed step with cold caches, until on disk; a TSV line to raw.tsv
measure() {
    local name=$1; shift
    sync -f "${MNTS[@]}"; echo 3 > /proc/sys/vm/drop_caches
    cenv nix --version > /dev/null 2>&1   # Nix's binaries (nix-store, nix-daemon: links to nix) from the host disk, not modelled
    echo 0 > "$CG_MEM/memory.max_usage_in_bytes" 2>/dev/null
    local e0 s0 c0 k0 g0 t0 t1 t2 e1 s1 c1 k1 g1 rc
    e0=$(dstat "$E_TH"); s0=$(dstat "$S_TH"); c0=$(cpu_jiffies); k0=$(kthread_jiffies); g0=$(cg_cpu)
    local pp=   # PERF=1: a system-wide profile of the step (cpu-clock samples), $RES/perf/
    if [ "${PERF:-0}" = 1 ]; then
        mkdir -p "$RES/perf"
        perf record -q ${PERF_ARGS:--F 999 -a -g} -o "$RES/perf/$CFG-$REP-$name.data" > /dev/null 2>&1 & pp=$!
        sleep 0.5
    fi
    rm -f "$R/run/bench-bg.pid" "$R/run/bench-bg.log"
    t0=$(now_ns)
    "$@" > "$NB_SHM/wl.out" 2> "$NB_SHM/wl.err"; rc=$?
    t1=$(now_ns)
    # a background job the command left (install-bootloader's copy): until it is done
    if [ -s "$R/run/bench-bg.pid" ]; then
        local bg; bg=$(cat "$R/run/bench-bg.pid"); while kill -0 "$bg" 2>/dev/null; do sleep 0.02; done
    fi
    sync -f "${MNTS[@]}"; t2=$(now_ns)
    [ -z "$pp" ] || { kill -INT "$pp"; wait "$pp"; }
    e1=$(dstat "$E_TH"); s1=$(dstat "$S_TH"); c1=$(cpu_jiffies); k1=$(kthread_jiffies); g1=$(cg_cpu)
    local peak; peak=$(( $(cat "$CG_MEM/memory.max_usage_in_bytes") >> 20 ))
    local chk out; out=$(tail -1 "$NB_SHM/wl.out")
    case $name in
    eval) chk="drv=$(basename "$out" | cut -c34-)" ;;
    import) chk="paths=$(grep -c . "$NB_SHM/wl.out")" ;;
    hook) chk="pinned=$(cat "$NB_SHM/wl.out" "$R/run/bench-bg.log" 2>/dev/null | grep -c "^rooted in")" ;;
    add) chk="path=$(cut -c12-20 <<< "$out")" ;;
    build) chk="files=$(find "$R$out" -type f 2>/dev/null | wc -l)" ;;
    rebuild) chk="links=$(find "$R$out/" -maxdepth 1 -type l 2>/dev/null | wc -l)" ;;
    bigbuild) chk="bytes=$(stat -c %s "$R$out/lib/libbig.a" 2>/dev/null)" ;;
    read) chk=$out ;;
    gc) chk="deleted=$(cat "$NB_SHM/wl.out" "$NB_SHM/wl.err" | grep -oE '^[0-9]+ store paths deleted' | cut -d' ' -f1)" ;;
    activate) chk="ok" ;;
    esac
    [ $rc = 0 ] || chk="ERR rc=$rc $(tail -2 "$NB_SHM/wl.err" | tr '\n\t' '  ' | cut -c1-200)"
    # cfg rep wl rc cmd_ms total_ms nix_user_ms nix_sys_ms kthread_ms busy_ms iowait_ms mem_peak_mib
    # emmc: rd_ios rd_MB wr_ios wr_MB flushes  ssd: rd_ios rd_MB wr_ios wr_MB flushes  check
    awk -v cfg="$CFG" -v rep="$REP" -v wl="$name" -v rc=$rc -v t="$t0 $t1 $t2" -v c="$c0 $c1" -v k="$k0 $k1" \
        -v g="$g0 $g1" -v e="$e0 $e1" -v s="$s0 $s1" -v hz="$HZ" -v peak="$peak" -v chk="$chk" 'BEGIN{
        split(t,T," "); split(c,C," "); split(k,K," "); split(g,G," "); split(e,E," "); split(s,S," ");
        ms = 1000 / hz
        printf "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d", cfg, rep, wl, rc, (T[2]-T[1])/1e6, (T[3]-T[1])/1e6,
          (G[3]-G[1])*ms, (G[4]-G[2])*ms, (K[2]-K[1])*ms, (C[3]-C[1])*ms, (C[4]-C[2])*ms, peak
        printf "\t%d\t%.1f\t%d\t%.1f\t%d", E[6]-E[1], (E[7]-E[2])*512/1e6, E[8]-E[3], (E[9]-E[4])*512/1e6, E[10]-E[5]
        printf "\t%d\t%.1f\t%d\t%.1f\t%d\t%s\n", S[6]-S[1], (S[7]-S[2])*512/1e6, S[8]-S[3], (S[9]-S[4])*512/1e6, S[10]-S[5], chk }' \
        | tee -a "$RES/raw.tsv"
    [ $rc = 0 ] || FAILED=1
}
FAILED=0
NIX_CONFIG=
if [ "$STORE" != emmc ]; then
    cenv nix-ssd setup "$S_FS" > "$NB_SHM/setup.log" 2>&1 || die "nix-ssd setup: $(tail -3 "$NB_SHM/setup.log")"
    if lever msingle; then
        top=$NB_SHM/top; mkdir -p "$top"; mount -o subvolid=5 "$S_FS" "$top" || die "mount top"
        btrfs -q balance start -f -mconvert=single "$top" > /dev/null || die "metadata single"
        btrfs filesystem df "$top" | grep Metadata | sed 's/^/   /' >> "$NB_SHM/setup.log"; umount "$top"
    fi
    cenv blkid -o export "$S_FS" > "$R/run/blkid.export"
    mode_arg=""; [ "$STORE" = build ] && mode_arg="nix-ssd=build"
    cenv nix-ssd preview --cmdline "$mode_arg" --blkid-export /run/blkid.export > "$NB_SHM/preview.txt" || die "nix-ssd preview"
    # the generator's mount units: Where= and Options= of each; nix-ssd.service's ExecStart=
    awk '/^==> .*\.mount <==/{m=1} /^==> /&&!/\.mount <==/{m=0} m&&/^Where=/{w=substr($0,7)} m&&/^Options=/{print w, substr($0,9)}' \
        "$NB_SHM/preview.txt" > "$NB_SHM/mounts.txt"
    exec_start=$(awk '/^==> nix-ssd.service <==/{s=1} s&&/^ExecStart=/{print substr($0,11); exit}' "$NB_SHM/preview.txt")
    [ -s "$NB_SHM/mounts.txt" ] && [ -n "$exec_start" ] || die "no mount units / ExecStart in nix-ssd preview"
    while read -r where opts; do
        case $COMP in
        default) ;;
        none) opts=$(echo "$opts" | sed -E 's/(^|,)compress(-force)?=[^,]*//') ;;
        *) opts=$(echo "$opts" | sed -E "s/(^|,)compress(-force)?=[^,]*//"),compress=$COMP ;;
        esac
        # durability is what the configuration says, whatever the generator's options hold
        [ "$DUR" != default ] && opts=$(echo "$opts" | sed -E 's/(^|,)flushoncommit//')
        [ "$DUR" = foc ] && opts+=,flushoncommit
        case $CFG in cand | plain) [ -n "${CAND_OPTS:-}" ] && opts+=,$CAND_OPTS ;; esac
        lever inline0 && opts+=,max_inline=0
        opts=${opts#,}
        mkdir -p "$R$where"
        mount -t btrfs -o "$opts" "$S_FS" "$R$where" || die "mount -o $opts $S_FS $where"
        echo "$where $opts" >> "$NB_SHM/mounts.used"
        [ ${#MNTS[@]} = 1 ] && MNTS+=("$R$where")   # one mount of the SSD: syncfs covers the file system
    done < "$NB_SHM/mounts.txt"
    bdir=$(sed -n 's/.*--build-dir[ =]\([^ ]*\).*/\1/p' <<< "$exec_start")
    if lever nocow; then
        ovd=$(sed -n 's/.*--overlay-dir[ =]\([^ ]*\).*/\1/p' <<< "$exec_start")
        for d in ${ovd:+"$R$ovd/state"} ${bdir:+"$R$bdir"}; do chattr +C "$d" || die "chattr +C $d"; done
    fi
    if lever opaquelinks; then
        ovd=$(sed -n 's/.*--overlay-dir[ =]\([^ ]*\).*/\1/p' <<< "$exec_start")
        mkdir -p "$R$ovd/upper/.links" && setfattr -n trusted.overlay.opaque -v y "$R$ovd/upper/.links" || die "opaque .links"
    fi
    # the activation as at boot: cold caches, the devices modelled, its CPU counted
    model_on
    # shellcheck disable=SC2086
    measure activate cg_exec chroot "$R" /usr/bin/env -i $CPATH HOME=/root LC_ALL=C ${exec_start}
    cp "$NB_SHM/wl.out" "$NB_SHM/activate.log"; cat "$NB_SHM/wl.err" >> "$NB_SHM/activate.log"
    grep -q $'\tERR' <(tail -1 "$RES/raw.tsv") && die "activate: $(cat "$NB_SHM/activate.log")"
    envf=$(echo "$exec_start" | sed -E 's/.*--env-file[ =]([^ ]+).*/\1/')
    [ -f "$R$envf" ] || die "activate wrote no $envf: $(cat "$NB_SHM/activate.log")"
    NIX_CONFIG=$(bash -c 'set -a; . "$1"; printf %s "$NIX_CONFIG"' _ "$R$envf")
    if [ "$STORE" = build ]; then
        grep -q '^build-dir = ' <<< "$NIX_CONFIG" || die "activate set no build-dir: $(cat "$NB_SHM/activate.log")"
    else
        grep -q '^store = local-overlay://' <<< "$NIX_CONFIG" || die "activate did not stack the overlay: $(cat "$NB_SHM/activate.log")"
        ov=$(sed -n 's/.*--overlay-dir[ =]\([^ ]*\).*/\1/p' <<< "$exec_start")
    fi
    if lever tmpbuild; then   # after activate (which refuses a build dir that is not the SSD's)
        [ -n "$bdir" ] && mount -t tmpfs -o "size=${TMPBUILD_SIZE:-2G},mode=755,nosuid,nodev" nix-build-tmp "$R$bdir" || die "tmpfs build dir"
    fi
    if lever xino; then
        # in the chroot, with the paths as activate gave them (Nix's local-overlay store checks
        # the overlay's lowerdir= and upperdir= against its own settings)
        o=$(findmnt -n -o OPTIONS "$R/nix/store" | tr ',' '\n' | grep -E '^(lowerdir|upperdir|workdir|redirect_dir|metacopy)=' | paste -sd,)
        umount "$R/nix/store" && cenv mount -t overlay overlay -o "$o,xino=off,index=off,nosuid,nodev" /nix/store &&
            cenv mount -o remount,bind,ro,nosuid,nodev /nix/store || die "overlay with xino=off,index=off"
    fi
    case $DUR in
    default) ;;
    none | sbr | foc)
        NIX_CONFIG=$(grep -vE '^(fsync-store-paths|sync-before-registering|fsync-metadata) *=' <<< "$NIX_CONFIG")
        [ "$DUR" = sbr ] && NIX_CONFIG+=$'\nsync-before-registering = true'
        [ "$DUR" = foc ] && NIX_CONFIG+=$'\nfsync-metadata = false' ;;
    *) die "unknown durability $DUR" ;;
    esac
    if [ "$STORE" = plain ]; then
        # the yardstick: undo activate's overlay, put the whole /nix on a btrfs subvolume with
        # the overlay subvolume's mount options, keep everything else activate decided (the
        # copy is set-up, not timed: the devices unthrottled meanwhile)
        model_off
        umount "$R/nix/var/nix/db" && umount "$R/nix/store" && umount "$R/nix/.lower-store" || die "undo overlay"
        NIX_CONFIG=$(grep -vE '^(store *=|extra-experimental-features *= *local-overlay)' <<< "$NIX_CONFIG")
        top=$NB_SHM/top; mkdir -p "$top"; mount -o subvolid=5 "$S_FS" "$top" || die "mount top"
        btrfs -q subvolume create "$top/@plain-nix" > /dev/null || die "@plain-nix"
        lever nocow && { mkdir -p "$top/@plain-nix/var/nix/db" && chattr +C "$top/@plain-nix/var/nix/db" || die "chattr +C db"; }
        cp -a "$E/nix/." "$top/@plain-nix/" || die "@plain-nix"
        umount "$top"
        popts=$(awk -v w="$ov" '$1==w{print $2}' "$NB_SHM/mounts.used" | sed -E 's/(^|,)subvol=[^,]*/\1subvol=@plain-nix/')
        mount -t btrfs -o "$popts" "$S_FS" "$R/nix" || die "mount -o $popts @plain-nix"
        MNTS=("$E" "$R/nix")
        echo "/nix $popts" >> "$NB_SHM/mounts.used"
        model_on
    fi
else
    model_on
fi
# nix-daemon in the chroot, in the bench cgroups, with the configuration activate gave it
denv=(); [ -n "$NIX_CONFIG" ] && denv=(NIX_CONFIG="$NIX_CONFIG")
cg_exec chroot "$R" /usr/bin/env -i $CPATH HOME=/root LC_ALL=C "${denv[@]}" nix-daemon > "$RES/daemon-$CFG-$REP.log" 2>&1 &
DPID=$!
trap 'kill $DPID 2>/dev/null' EXIT
for _ in $(seq 100); do [ -S "$R/nix/var/nix/daemon-socket/socket" ] && break; sleep 0.1; done
client() { cg_exec timeout "${WL_TIMEOUT:-1800}" chroot "$R" /usr/bin/env -i $CPATH HOME=/root LC_ALL=C TMPDIR=/tmp NIX_REMOTE=daemon "$@"; }
base=$(cat "$R/etc/harness-emmc-base-path")
client nix-store -q --hash "$base" > /dev/null 2> "$NB_SHM/init.err" || die "store through the daemon: $(cat "$NB_SHM/init.err")"

# the workloads, in this order (WORKLOADS: a subset)
WORKLOADS=${WORKLOADS:-eval import hook add build rebuild bigbuild read gc}
on() { [[ " $WORKLOADS " == *" $1 "* ]]; }
top=$(cat "$IN/closure.toplevel")
if on eval; then
    # set-up: the nixpkgs tree into the store while the configuration is up (as a channel update)
    nixpkgs=$(client nix-store --add /in/nixpkgs) || die "add nixpkgs"
    measure eval client nix-instantiate /in/eval.nix --arg nixpkgs "$nixpkgs"
fi
on import && measure import client sh -c 'nix-store --import < /in/closure.nar'
if on hook; then
    # set-up: the update signed as a substituter's paths are (here with the machine's key, which
    # `nix-ssd pin` trusts), before the boot-loader hook makes it the boot default
    if [ "$STORE" = overlay ]; then
        client nix store sign --extra-experimental-features nix-command -k /var/lib/nix-ssd/signing-key.sec -r "$top" ||
            die "sign the update"
    fi
    # what switch-to-configuration runs for `switch` and `boot`: root's environment as the
    # module gives it (NIX_REMOTE=daemon while the overlay is up)
    measure hook client bash -euo pipefail /in/hook.sh "$top"
    cat "$NB_SHM/wl.out" "$NB_SHM/wl.err" "$R/run/bench-bg.log" > "$NB_SHM/hook.log" 2>/dev/null
fi
on add && measure add client nix-store --add /in/tree
on build && measure build client nix-build --no-out-link /in/build.nix
on rebuild && measure rebuild client nix-build --no-out-link --max-jobs auto /in/rebuild.nix
on bigbuild && measure bigbuild client nix-build --no-out-link /in/bigbuild.nix
on read && measure read client sh -c 'nix-store --verify-path $(cat /in/closure.paths) && echo verified'
if on gc; then
    # set-up: the update is no boot default any more (its pin dropped): garbage, with everything
    # else the workloads made; the installed system stays (its profiles)
    rm -rf "$R/nix/var/nix/gcroots/nix-ssd-pins"
    measure gc client nix-store --gc
fi
{
    echo "== $CFG rep $REP $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg): store $STORE, compression $COMP, durability $DUR"
    findmnt -rn -o TARGET,FSTYPE,OPTIONS | grep -E "^$R/(nix|mnt|tmp|boot)" | sed "s|$R||; s/^/   mount: /"
    [ -f "$NB_SHM/activate.log" ] && sed 's/^/   activate: /' "$NB_SHM/activate.log"
    [ -n "$NIX_CONFIG" ] && sed 's/^/   NIX_CONFIG: /' <<< "$NIX_CONFIG"
    on hook && sed 's/^/   hook: /' "$NB_SHM/hook.log" 2>/dev/null
    df -m "${MNTS[@]}" | tail -n +2 | sed "s|$R||; s/^/   df: /"
    echo "   /nix/store/.links as the daemon sees it: $(ls -f "$R/nix/store/.links" 2>/dev/null | wc -l) entries"
} >> "$RES/runs.log"
rm -f "$NB_SHM/mounts.used" "$NB_SHM/activate.log"
model_off
kill $DPID 2>/dev/null; wait $DPID 2>/dev/null
exit $FAILED
