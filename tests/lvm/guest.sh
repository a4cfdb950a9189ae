#!/bin/bash
# Guest side of tests/lvm/run.sh (runs as PID 1's child, no systemd; udevd is up). Builds the
# starting layout (a data LV on the HDD PV cached writethrough by a pool on the SSD PV, as on a
# machine before the plan), runs `nix-ssd lvm-plan`
# dry, refused, with --execute, then a second time from the same kind of state with an injected
# failure of step 2 and a resume. Prints "key: value" facts; the host asserts.
export LC_ALL=C
N=/payload/nix-ssd
SSD_LINK=/dev/disk/by-id/virtio-ssd
HDD=$(readlink -f /dev/disk/by-id/virtio-hdd) SSD=$(readlink -f $SSD_LINK)
T0=$(cut -d' ' -f1 /proc/uptime); cat /run/lvm-init.times; echo "t-start-s: $T0"
echo "lvm-version: $(lvm version | sed -n 's/^ *LVM version: *//p')"
modprobe -a dm-mod dm-cache dm-cache-smq btrfs
dmsetup targets | grep -q '^cache ' && echo "dm-cache: yes"
q() { "$@" > /tmp/q.log 2>&1 || { echo "start-failed: $*"; sed 's/^/  /' /tmp/q.log; }; }
lvsum() { lvs -a --noheadings -o lv_name,segtype,lv_size,pool_lv,cache_mode,devices vg0 | sort; }
mode() { lvs --noheadings -o cache_mode vg0/data | tr -d ' '; }

# The starting layout: data LV on the HDD PV, cached writethrough by a 1 GiB pool on the SSD PV
q pvcreate -y "$HDD" "$SSD"
q vgcreate vg0 "$HDD" "$SSD"
q lvcreate -y -n data -L 1G vg0 "$HDD"
q mkfs.ext4 -q /dev/vg0/data
mkdir -p /mnt/data /mnt/nix
q mount /dev/vg0/data /mnt/data
q lvcreate -y --type cache-pool -L 1G -n cpool vg0 "$SSD"
q lvconvert -y --type cache --cachepool vg0/cpool --cachemode writethrough vg0/data
head -c 8M /dev/urandom > /mnt/data/file; sync
SUM=$(sha256sum < /mnt/data/file)
echo "before-cache-mode: $(mode)"

ARGS=(--vg vg0 --pv "$SSD_LINK" --cache-size 256M --meta-size 16M --nix-size 1G)
before=$(lvsum)
$N lvm-plan "${ARGS[@]}" > /tmp/out 2>&1; echo "dry-rc: $?"; sed 's/^/dry: /' /tmp/out
[ "$before" = "$(lvsum)" ] && echo "dry-unchanged: yes"
$N lvm-plan --vg vg0 --pv "$SSD" --cache-size 256M --meta-size 16M --nix-size 2G > /tmp/out 2>&1
echo "big-rc: $?"; sed 's/^/big: /' /tmp/out
[ "$before" = "$(lvsum)" ] && echo "big-unchanged: yes"

# the plan for real, the data LV mounted (online)
dd if=/dev/urandom of=/mnt/data/other bs=1M count=8 conv=fsync status=none
$N lvm-plan "${ARGS[@]}" --execute > /tmp/out 2>&1; echo "exec-rc: $?"; sed 's/^/exec: /' /tmp/out
after_plan() {   # after_plan PREFIX: facts after a plan ran
    umount /mnt/data; echo 3 > /proc/sys/vm/drop_caches; mount /dev/vg0/data /mnt/data
    [ "$(sha256sum < /mnt/data/file)" = "$SUM" ] && echo "$1checksum-after: same"
    [ -n "${DSUM:-}" ] && [ "$(sha256sum < /mnt/data/dirty)" = "$DSUM" ] && echo "$1dirty-checksum-after: same"
    echo "$1after-cache-mode: $(mode)"
    lvs -a --noheadings -o lv_name,devices vg0 | grep '_cdata\]' | grep -q "$SSD(" && echo "$1after-pool-on-ssd: yes"
    lvs --noheadings -o devices vg0/nix | grep -q "$SSD(" && echo "$1nix-on-ssd: yes"
    echo "$1nix-fs: $(blkid -p -o value -s TYPE /dev/vg0/nix) $(blkid -p -o value -s LABEL /dev/vg0/nix)"
    mount -o subvolid=5 /dev/vg0/nix /mnt/nix
    echo "$1nix-subvols: $(btrfs subvolume list -o /mnt/nix | awk '{print $NF}' | sort | tr '\n' ' ' | sed 's/ $//')"
    echo "$1nix-overlay-dirs: $(ls /mnt/nix/@overlay | sort | tr '\n' ' ' | sed 's/ $//')"
    umount /mnt/nix
}
after_plan ""
lvsum | sed 's/^/lvs-after: /'
$N lvm-plan "${ARGS[@]}" --execute > /tmp/out 2>&1; echo "again-rc: $?"; sed 's/^/again: /' /tmp/out

# dirty blocks in the writeback cache for the next uncache to flush
for i in 1 2; do dd if=/dev/urandom of=/mnt/data/dirty bs=1M count=16 conv=notrunc,fsync status=none; done
DSUM=$(sha256sum < /mnt/data/dirty)
echo "dirty-blocks: $(lvs --noheadings -o cache_dirty_blocks vg0/data | tr -d ' ')"

# a failure half-way: drop the Nix LV, make step 2 (the new cache pool) fail once through a
# shim lvcreate; then resume from the uncached state with --lv
q lvremove -y vg0/nix
mkdir -p /tmp/shim
cat > /tmp/shim/lvcreate <<'EOF'
#!/bin/bash
if [[ " $* " == *" cache-pool "* ]] && [ ! -e /tmp/shim/failed ]; then
    touch /tmp/shim/failed; echo "shim: injected failure" >&2; exit 5
fi
exec /usr/sbin/lvcreate "$@"
EOF
chmod 755 /tmp/shim/lvcreate
PATH=/tmp/shim:$PATH $N lvm-plan "${ARGS[@]}" --execute > /tmp/out 2>&1; echo "fail-rc: $?"; sed 's/^/fail: /' /tmp/out
echo "fail-segtype: $(lvs --noheadings -o segtype vg0/data | tr -d ' ')"
$N lvm-plan "${ARGS[@]}" > /tmp/out 2>&1; echo "nolv-rc: $?"; sed 's/^/nolv: /' /tmp/out
$N lvm-plan "${ARGS[@]}" --lv data --execute > /tmp/out 2>&1; echo "resume-rc: $?"; sed 's/^/resume: /' /tmp/out
after_plan resume-
echo "t-test-s: $(awk -v t0="$T0" '{printf "%.1f", $1 - t0}' /proc/uptime)"
