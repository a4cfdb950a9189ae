#!/bin/bash
# Workload inputs under $NB_SHM/in (tmpfs: drop_caches never evicts them, reading them costs no
# modelled I/O) and the golden eMMC image. Reused while $IN/.stamp matches (same bed tree, same
# script), so repeated runs skip the ~1 min of preparation.
#   in/tree          add: usr/share/doc + usr/bin + usr/share/zoneinfo of the bed tree
#   in/build.nix     build: 16 MiB (half text/binaries from the tree, half random) split into
#                    8192 files of 2 KiB in the build dir, copied to $out (8192 more files)
#   in/closure.nar   import: `nix-store --export` of a closure of >= 200 paths and >= 1 GiB:
#                    directories of the bed's Debian 13 tree (then of the host's /usr if the bed
#                    tree is too small), each added as one store path, plus a bundle derivation
#                    referencing them all
#   in/closure.paths read: those paths (verify-path hashes every file); gc deletes them all
#   emmc-golden.img  the eMMC root file system: ext4 (mke2fs defaults, inode tables and journal
#                    initialised at mkfs), holding /nix of the bed tree (its one path + Nix DB)
#                    and /tmp (where the eMMC store's builds run: Nix's default build dir)
. "$(dirname "$0")/lib.sh"
set -e
CLOSURE_MIB=${CLOSURE_MIB:-1100} CLOSURE_PATHS=${CLOSURE_PATHS:-220}
stamp="$PREPARED $CLOSURE_MIB $CLOSURE_PATHS $(sha256sum < "$0" | cut -c1-16)"
if [ -f "$IN/.stamp" ] && [ "$(cat "$IN/.stamp")" = "$stamp" ] && [ -f "$NB_SHM/emmc-golden.img" ]; then
    log "inputs: reusing $IN"; cat "$RES/inputs.txt" 2>/dev/null || cp "$IN/inputs.txt" "$RES/inputs.txt"; exit 0
fi
rm -rf "$IN" "$NB_SHM/emmc-golden.img"; mkdir -p "$IN/tree"
for d in usr/share/doc usr/bin usr/share/zoneinfo; do cp -a "$PREPARED/$d" "$IN/tree/$(basename $d)"; done
echo "add tree: $(find "$IN/tree" -type f | wc -l) files, $(find "$IN/tree" | wc -l) entries, $(du -sm --apparent-size "$IN/tree" | cut -f1) MiB" | tee "$IN/inputs.txt"

cat > "$IN/build.nix" <<'NIX'
derivation {
  name = "many-files"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" ''
    set -e
    /usr/bin/tar -C /in/tree -cf - . | /usr/bin/head -c 8388608 > r
    /usr/bin/head -c 8388608 /dev/urandom >> r
    /bin/mkdir -p work $out; cd work; /usr/bin/split -b 2048 -a 4 ../r s; cd ..
    /bin/cp -r work/. $out/; /bin/rm -rf work r
  '' ];
}
NIX
echo "build: 16 MiB in 8192 files of 2 KiB in the build dir (half tree data, half random), copied to \$out" | tee -a "$IN/inputs.txt"

# closure sources: directories, split while bigger than 48 MiB (those under 64 KiB left out),
# until enough data and paths; each line: the directory, its store path name
python3 - "$PREPARED" "$CLOSURE_MIB" "$CLOSURE_PATHS" > "$IN/closure.src" <<'PY'
import os, sys
bed, want_mib, want_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
skip = {"usr/share/doc", "usr/bin", "usr/share/zoneinfo"}   # the add tree
def size(p):
    s = 0
    for dp, dn, fn in os.walk(p):
        for f in fn:
            try: s += os.lstat(os.path.join(dp, f)).st_size
            except OSError: pass
    return s
def pieces(root, rel):
    p = os.path.join(root, rel)
    if rel in skip or not os.path.isdir(p) or os.path.islink(p): return
    s = size(p)
    if s == 0: return
    subs = sorted(e for e in os.listdir(p) if os.path.isdir(os.path.join(p, e)) and not os.path.islink(os.path.join(p, e)))
    if s > 48 << 20 and subs:
        for e in subs: yield from pieces(root, os.path.join(rel, e))
    else:
        yield (p, s)
out, tot = [], 0
for root, tops in ((bed, ["usr", "boot"]), ("/", ["usr/lib", "usr/share"])):
    for t in tops:
        for p, s in pieces(root, t):
            if tot >= want_mib << 20 and len(out) >= want_n: break
            if s < 64 << 10: continue
            out.append(p); tot += s
import re
for p in out: print(p + "\t" + re.sub(r"[^A-Za-z0-9+._?=-]", "_", os.path.basename(p)).lstrip("."))
print(f"closure sources: {len(out)} directories, {tot >> 20} MiB", file=sys.stderr)
PY
# a scratch store on tmpfs, in a private mount namespace; sources bound read-only at /src/N
unshare --mount --propagation private bash -c '
  . "$0"; set -e
  root_mount
  mount -t tmpfs tmpfs "$R/nix"; cp -a "$PREPARED/nix/." "$R/nix/"
  mkdir -p "$R/src"; mount -t tmpfs tmpfs "$R/src"
  i=0; while IFS=$'"'"'\t'"'"' read -r d name; do i=$((i+1)); mkdir -p "$R/src/$i/$name"; mount --bind -o ro "$d" "$R/src/$i/$name"; echo "/src/$i/$name"; done < "$IN/closure.src" > "$NB_SHM/srcpaths"
  xargs -a "$NB_SHM/srcpaths" -d "\n" chroot "$R" /usr/bin/env -i $CPATH HOME=/root LC_ALL=C nix-store --add > "$NB_SHM/added"
  expr="let p = map builtins.storePath [ $(sed "s/.*/\"&\"/" "$NB_SHM/added" | tr "\n" " ") ]; in derivation { name = \"bundle\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo \${toString p} > \$out\" ]; }"
  b=$(cenv nix-build --no-out-link -E "$expr" 2>/dev/null)
  cenv nix-store -qR "$b" > "$IN/closure.paths"
  cenv sh -c "nix-store --export \$(cat /in/closure.paths)" > "$IN/closure.nar"
  echo "import closure: $(wc -l < "$IN/closure.paths") paths, $(sed "s|^|$R|" "$IN/closure.paths" | xargs find | wc -l) entries, $(find $(sed "s|^|$R|" "$IN/closure.paths") -type f | wc -l) files, NAR $(( $(stat -c %s "$IN/closure.nar") >> 20 )) MiB"
' "$NB_DIR/lib.sh" 2>&1 | tee -a "$IN/inputs.txt"
[ -s "$IN/closure.nar" ] || { log "inputs: no closure"; exit 1; }
rm -rf "$NB_SHM/srcpaths" "$NB_SHM/added" "$NB_SHM/rootup"

st=$NB_SHM/emmcstage; rm -rf "$st"; mkdir -p "$st/tmp"; chmod 1777 "$st/tmp"; cp -a "$PREPARED/nix" "$st/nix"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 -L emmc -d "$st" "$NB_SHM/emmc-golden.img" 8G
rm -rf "$st"
echo "eMMC image: 8 GiB ext4, $(du -m "$NB_SHM/emmc-golden.img" | cut -f1) MiB allocated" | tee -a "$IN/inputs.txt"
echo "$stamp" > "$IN/.stamp"; cp "$IN/inputs.txt" "$RES/inputs.txt"
