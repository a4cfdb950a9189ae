#!/bin/bash
# What Nix's GC does after deleting (removeUnusedLinks: lstat every /nix/store/.links entry),
# with cold caches, on the native bench's board store (the golden eMMC image of inputs.sh, its
# 44 116-entry pool, read-only): on the lower ext4 itself, through an overlay with an empty
# btrfs upper mounted as the project does, and the same with the upper `.links` opaque (what
# activate does). No throttling: CPU and unthrottled time only. Root; 3 rounds each.
#   sudo benches/native/links.sh
set -e
W=/dev/shm/nix-native-bench-links; rm -rf $W; mkdir -p $W/g $W/s
cp --sparse=always ${NB_CACHE:-/var/cache/nix-native-bench}/emmc-golden.img $W/g.img
truncate -s 4G $W/s.img; mkfs.btrfs -q $W/s.img > /dev/null
unshare --mount --propagation private bash -c '
W=$0; set -e
mount -o loop,ro $W/g.img $W/g; mount -o loop,noatime $W/s.img $W/s
for mode in plain-ext4 overlay overlay-opaque; do
  for r in 1 2 3; do
    rm -rf $W/s/upper $W/s/work; mkdir -p $W/s/upper $W/s/work $W/m
    [ $mode = overlay-opaque ] && { mkdir $W/s/upper/.links; setfattr -n trusted.overlay.opaque -v y $W/s/upper/.links; }
    if [ $mode = plain-ext4 ]; then d=$W/g/nix/store; else
      mount -t overlay overlay -o lowerdir=$W/g/nix/store,upperdir=$W/s/upper,workdir=$W/s/work,redirect_dir=nofollow,metacopy=off $W/m; d=$W/m; fi
    sync; echo 3 > /proc/sys/vm/drop_caches
    s=$(date +%s%N); c0=$(awk "{print \$14+\$15}" /proc/self/stat)
    n=$(cd $d/.links && ls -f | python3 -c "
import os,sys,time
t=time.process_time(); n=0
for l in sys.stdin:
    l=l.rstrip(chr(10))
    if l in (\".\",\"..\"): continue
    os.lstat(l); n+=1
r=os.times(); print(n, round((r.user+r.system)*1000))")
    e=$(( ($(date +%s%N) - s) / 1000000 ))
    echo "$mode round $r: ${n% *} entries lstat-ed, wall $e ms, CPU of the walker ${n#* } ms"
    [ $mode = plain-ext4 ] || umount $W/m
  done
done
umount $W/s $W/g' $W
rm -rf $W
