# Shared helpers of the native bench (source it, as root). It only touches what it creates:
# $NB_SHM (loop backing files, inputs, the chroot's writable layer), the loop devices it
# attaches, their blkio throttle entries and bdi dirty limits, and its own cgroups.
set -uo pipefail
NB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NB_TOP=$(cd "$NB_DIR/../.." && pwd)
NB_SHM=${NB_SHM:-/dev/shm/nix-native-bench}   # tmpfs: no host-disk flush leaks into the models
IN=$NB_SHM/in
NB_CACHE=${NB_CACHE:-/var/cache/nix-native-bench}   # the inputs, built once (inputs.sh)
RES=${RES:-$NB_TOP/target/native-bench}
BLK=/sys/fs/cgroup/blkio
CG_NAME=${CG_NAME:-$(basename "$NB_SHM")}   # its own cgroups: another bench's (NB_SHM) are left alone
CG_MEM=/sys/fs/cgroup/memory/$CG_NAME
CG_CPU=/sys/fs/cgroup/cpuacct/$CG_NAME
LOOPS_FILE=$NB_SHM/.loops
mkdir -p "$NB_SHM" "$RES"

# ---- device models: bytes/s (MB = 10^6) and IOPS. eMMC 5.1 module vs USB3 SATA SSD, as
# measured/assumed by the iobench reference the project started from (outside this repository).
EMMC_RBPS=$((250 * 1000000)) EMMC_WBPS=$((100 * 1000000)) EMMC_RIOPS=3000 EMMC_WIOPS=1500
SSD_RBPS=$((400 * 1000000)) SSD_WBPS=$((350 * 1000000)) SSD_RIOPS=20000 SSD_WIOPS=15000

# ---- the board's memory (see README.md, "Memory model"): a 4 GB Rock 5C keeps ~2 GB for the
# page cache; the bench's workloads are about half that size (1 GiB import), so the Nix
# processes get 1 GiB including their page cache, and dirty data is limited per device to
# Linux's default dirty_ratio (20 %) of that memory (background writeback from 10 %).
MEM_LIMIT=${MEM_LIMIT:-$((1024 << 20))}
DIRTY_BYTES=${DIRTY_BYTES:-$((MEM_LIMIT / 5))}

log() { printf '[%(%T)T] %s\n' -1 "$*" >&2; }
now_ns() { date +%s%N; }
majmin() { printf '%d:%d' "0x$(stat -L -c %t "$1")" "0x$(stat -L -c %T "$1")"; }

# throttle DEV emmc|ssd|off: root-cgroup blkio limits (cgroup v1 root: writeback is throttled too)
throttle() {
    local d; d=$(majmin "$1")
    case $2 in
    emmc) set -- "$EMMC_RBPS" "$EMMC_WBPS" "$EMMC_RIOPS" "$EMMC_WIOPS" ;;
    ssd) set -- "$SSD_RBPS" "$SSD_WBPS" "$SSD_RIOPS" "$SSD_WIOPS" ;;
    off) set -- 0 0 0 0 ;;
    esac
    echo "$d $1" > $BLK/blkio.throttle.read_bps_device
    echo "$d $2" > $BLK/blkio.throttle.write_bps_device
    echo "$d $3" > $BLK/blkio.throttle.read_iops_device
    echo "$d $4" > $BLK/blkio.throttle.write_iops_device
}

# ---- loop devices (every one we attach is listed in $LOOPS_FILE; loop_cleanup detaches them)
loop_cleanup() {
    [ -f "$LOOPS_FILE" ] || return 0
    local l
    for l in $(tac "$LOOPS_FILE"); do   # a stacked loop before the loop it sits on
        throttle "$l" off 2>/dev/null
        local b=/sys/class/bdi/$(majmin "$l" 2>/dev/null)   # dirty_limit's settings, back to defaults
        [ -w "$b/strict_limit" ] && { echo 0 > "$b/strict_limit"; echo 100 > "$b/max_ratio"; }
        losetup -d "$l" 2>/dev/null
    done
    rm -f "$LOOPS_FILE"
}
# mkdev FILE: a modelled device. DEV_TH: loop on FILE, carries the throttle. DEV_FS: direct-I/O
# loop on DEV_TH, carries the file system. blk-throttle counts bios before merging; stacked,
# DEV_TH sees one bio per merged request of DEV_FS, as a real device sees requests (a single
# loop charges every 4 KiB writeback bio one IOP: 6 MB/s on the eMMC model, see the reference).
mkdev() {
    DEV_TH=$(losetup -f --show "$1") || return 1
    echo "$DEV_TH" >> "$LOOPS_FILE"
    DEV_FS=$(losetup -f --show --direct-io=on "$DEV_TH") || return 1
    echo "$DEV_FS" >> "$LOOPS_FILE"
    local q
    for q in /sys/block/${DEV_FS#/dev/}/queue /sys/block/${DEV_TH#/dev/}/queue; do echo 0 > "$q/rotational"; done
    # No discard: the stacked loop turns a discard into a zero-write of its whole range, which
    # blk-throttle charges (and diskstats counts) as written bytes — 1.2 GB "written" after a GC
    # of 1.1 GiB with btrfs's default discard=async. A device without discard makes btrfs drop
    # that default, so no configuration discards in the model (see README, Caveats).
    echo 0 > "/sys/block/${DEV_FS#/dev/}/queue/discard_max_bytes"
    echo mq-deadline > "/sys/block/${DEV_FS#/dev/}/queue/scheduler"
}
# dirty_limit BDI_DIR: the board's dirty limit on one device (strict: not a share of the host's)
dirty_limit() {
    [ -w "$1/max_bytes" ] || { log "no $1/max_bytes: dirty data not limited"; return 0; }
    echo 1 > "$1/strict_limit" && echo "$DIRTY_BYTES" > "$1/max_bytes"
}

# ---- cgroups around the Nix processes: memory (the board's RAM) and cpuacct (their CPU time)
cg_make() {
    cg_remove
    mkdir -p "$CG_MEM" "$CG_CPU" || return 1
    echo "$MEM_LIMIT" > "$CG_MEM/memory.limit_in_bytes"
}
cg_kill() {   # only the processes we put there (daemon, workload commands, their children)
    local p n=0
    while [ -n "$(cat "$CG_CPU/tasks" "$CG_MEM/tasks" 2>/dev/null)" ] && [ $n -lt 50 ]; do
        for p in $(cat "$CG_CPU/tasks" "$CG_MEM/tasks" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        sleep 0.1; n=$((n + 1))
    done
}
cg_remove() {
    local d
    for d in "$CG_MEM" "$CG_CPU"; do
        [ -d "$d" ] || continue
        cg_kill
        rmdir "$d" 2>/dev/null || log "cannot remove $d"
    done
}
# cg_exec CMD...: run CMD inside the bench cgroups
cg_exec() { bash -c 'echo $$ > "$0/tasks" && echo $$ > "$1/tasks" && shift && exec "$@"' "$CG_MEM" "$CG_CPU" "$@"; }

# ---- statistics
# cpu_jiffies: "busy iowait" of the whole machine (all CPUs), /proc/stat
cpu_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8, $6}' /proc/stat; }
# kthread_jiffies: CPU of all kernel threads (loop workers, btrfs/zstd workers, writeback ...)
kthread_jiffies() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$4==2 || $1==2 {s+=$14+$15} END{print s+0}'; }
# cg_cpu: "user system" ticks of the bench cgroup (cpuacct.stat, USER_HZ)
cg_cpu() { awk '{v[$1]=$2} END{print v["user"]+0, v["system"]+0}' "$CG_CPU/cpuacct.stat"; }
# dstat DEV: "rd_ios rd_sectors wr_ios wr_sectors flushes" of one device
dstat() {
    [ -n "$1" ] || { echo 0 0 0 0 0; return; }
    awk -v n="$(basename "$1")" '$3==n {print $4, $6, $8, $10, $19+0; f=1} END{if(!f) print 0,0,0,0,0}' /proc/diskstats
}

# ---- the machine: a private copy-on-write view of the boot bed's prepared Debian 13 tree
# (Nix 2.26.3 from Debian's nix-bin); writes go to $NB_SHM/rootup, the cache is never changed.
PREPARED=${PREPARED:-$(ls -d "${BED_CACHE:-/var/cache/nix-ssd-bed}"/prepared-* 2>/dev/null | grep -v partial | head -1)}
R=$NB_SHM/root
CPATH=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# root_mount: call only inside `unshare --mount --propagation private`
root_mount() {
    rm -rf "$NB_SHM/rootup"; mkdir -p "$NB_SHM/rootup/u" "$NB_SHM/rootup/w" "$R"
    mount -t overlay overlay -o "lowerdir=$PREPARED,upperdir=$NB_SHM/rootup/u,workdir=$NB_SHM/rootup/w" "$R" &&
        mount -t proc proc "$R/proc" && mount --rbind /dev "$R/dev" && mount --rbind /sys "$R/sys" &&
        mount -t tmpfs -o mode=755 tmpfs "$R/run" && mkdir -p "$R/in" && mount --bind "$IN" "$R/in" &&
        mount -o remount,bind,ro "$R/in"
}
cenv() { chroot "$R" /usr/bin/env -i $CPATH HOME=/root LC_ALL=C TMPDIR=/tmp "$@"; }

# verify_models: the throttles give the models (O_DIRECT on the file-system loop, 1 MiB
# sequential and 4 KiB at queue depth 1) and the dirty limit holds a buffered writer back
verify_models() {
    local img=$NB_SHM/verify.img m=$NB_SHM/verify.mnt model t0 t1 t2
    truncate -s 2G "$img"; mkdev "$img" || return 1
    rate() { echo "$1 $2 $3" | awk '{printf "%.1f %s", $1 / (($3 - $2) / 1e9) / $4, $5}'; }
    local w r
    for model in emmc ssd; do
        throttle "$DEV_TH" $model
        # 4 KiB: one second's worth of the model's IOPS (fewer fit in blk-throttle's burst)
        [ $model = emmc ] && { w=$EMMC_WIOPS r=$EMMC_RIOPS; } || { w=$SSD_WIOPS r=$SSD_RIOPS; }
        t0=$(now_ns); dd if=/dev/zero of="$DEV_FS" bs=1M count=300 oflag=direct status=none; t1=$(now_ns)
        printf '   %-4s O_DIRECT 1 MiB write %s' $model "$(rate $((300 << 20)) $t0 "$t1 1e6 MB/s")"
        t0=$(now_ns); dd if="$DEV_FS" of=/dev/null bs=1M count=300 iflag=direct status=none; t1=$(now_ns)
        printf ', read %s' "$(rate $((300 << 20)) $t0 "$t1 1e6 MB/s")"
        t0=$(now_ns); dd if=/dev/zero of="$DEV_FS" bs=4k count=$w oflag=direct status=none; t1=$(now_ns)
        printf '; 4 KiB queue depth 1: write %s' "$(rate $w $t0 "$t1 1 IOPS")"
        t0=$(now_ns); dd if="$DEV_FS" of=/dev/null bs=4k count=$r skip=100000 iflag=direct status=none; t1=$(now_ns)
        printf ', read %s\n' "$(rate $r $t0 "$t1 1 IOPS")"
    done
    throttle "$DEV_TH" emmc
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$DEV_FS" && mkdir -p "$m" && mount "$DEV_FS" "$m" &&
        dirty_limit "/sys/class/bdi/$(majmin "$DEV_FS")"
    t0=$(now_ns); dd if=/dev/zero of="$m/f" bs=1M count=500 status=none; t1=$(now_ns); sync -f "$m"; t2=$(now_ns)
    echo "   emmc ext4 buffered 500 MiB write: the writer $(( (t1 - t0) / 1000000 )) ms (held back by the dirty limit), until on disk $(( (t2 - t0) / 1000000 )) ms ($(rate $((500 << 20)) $t0 "$t2 1e6 MB/s"))"
    umount "$m"; loop_cleanup; rm -rf "$img" "$m"
}
