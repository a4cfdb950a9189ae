#!/bin/bash
# Guest script (LVM_GUEST=tests/lvm/capture.sh tests/lvm/run.sh): builds the starting
# layout (a data LV on the HDD PV cached writethrough by a pool on the SSD PV), walks what
# `nix-ssd lvm-plan` does by hand
# with the data LV mounted (online), records what lvm2 accepts, and dumps `pvs`/`lvs` exactly
# as `nix-ssd lvm-plan` reads them at every stage, between "FIXTURE-BEGIN name" / "FIXTURE-END"
# lines. tests/lvm/fixtures/ was cut from this output:
#   LVM_GUEST=tests/lvm/capture.sh tests/lvm/run.sh; R=/var/tmp/nix-ssd-lvm/lvm.report
#   cp $R tests/lvm/fixtures/capture-lvm2-VERSION.log
#   awk '/^FIXTURE-BEGIN/{f="tests/lvm/fixtures/"$2".txt"; print "# captured by ..." > f; next}
#        /^FIXTURE-END/{close(f); f=""; next} f!=""{print >> f}' $R
export LC_ALL=C
HDD=/dev/disk/by-id/virtio-hdd SSD=/dev/disk/by-id/virtio-ssd
HDD=$(readlink -f $HDD) SSD=$(readlink -f $SSD)
echo "lvm-version: $(lvm version | sed -n 's/^ *LVM version: *//p')"
echo "kernel: $(uname -r)"
modprobe dm-mod; modprobe dm-cache; modprobe dm-cache-smq; modprobe btrfs
PVS=(pvs --nameprefixes --noheadings --units b --nosuffix -o pv_name,vg_name,pv_size,pv_free,pv_pe_count,pv_pe_alloc_count,vg_extent_size)
LVS=(lvs -a --segments --nameprefixes --noheadings --units b --nosuffix -o vg_name,lv_name,lv_attr,segtype,lv_size,pool_lv,cache_mode,lv_active,seg_pe_ranges,seg_size_pe,devices,data_lv,metadata_lv,origin)
dump() { echo "FIXTURE-BEGIN $1"; echo "# pvs"; "${PVS[@]}"; echo "# lvs"; "${LVS[@]}" vg0; echo "FIXTURE-END"; }
t() { echo "+ $*"; "$@"; echo "rc: $?"; }
t pvcreate -y "$HDD" "$SSD"
t vgcreate vg0 "$HDD" "$SSD"
t lvcreate -y -n data -L 1G vg0 "$HDD"
t mkfs.ext4 -q /dev/vg0/data
mkdir -p /mnt/data; t mount /dev/vg0/data /mnt/data
head -c 50M /dev/urandom > /mnt/data/file; sync
t lvcreate -y --type cache-pool -L 1G -n cpool vg0 "$SSD"
dump start-pool-unattached
t lvconvert -y --type cache --cachepool vg0/cpool --cachemode writethrough vg0/data
dump start-writethrough
echo "## online uncache (mounted, writethrough)"
t lvconvert -y --uncache vg0/data
dump uncached
echo "## online attach writeback (mounted)"
t lvcreate -y --type cache-pool -L 256M --poolmetadatasize 16M -n cpool vg0 "$SSD"
dump pool-created
t lvconvert -y --type cache --cachepool vg0/cpool --cachemode writeback vg0/data
dump cached-writeback
for i in 1 2 3; do dd if=/dev/urandom of=/mnt/data/file2 bs=1M count=30 conv=notrunc,fsync status=none; done
lvs -o name,cache_dirty_blocks,cache_mode,cache_used_blocks vg0/data
echo "## online uncache of writeback with dirty blocks (mounted)"
t lvconvert -y --uncache vg0/data
t lvcreate -y --type cache-pool -L 256M --poolmetadatasize 16M -n cpool vg0 "$SSD"
echo "## attach while inactive"
t umount /mnt/data
t lvchange -an vg0/data
t lvconvert -y --type cache --cachepool vg0/cpool --cachemode writeback vg0/data
t lvchange -ay vg0/data
t mount /dev/vg0/data /mnt/data
echo "## lvchange --cachemode online"
t lvchange -y --cachemode writethrough vg0/data
t lvchange -y --cachemode writeback vg0/data
t lvcreate -y -L 1G -n nix vg0 "$SSD"
dump done
echo "## too big"
t lvcreate -y -L 1G -n nix2 vg0 "$SSD"
echo "## pmspare after uncache and pool removal"
t lvconvert -y --uncache vg0/data
"${LVS[@]}" vg0
echo "## json"
lvs -a --reportformat json --units b --nosuffix -o vg_name,lv_name,segtype,devices vg0
