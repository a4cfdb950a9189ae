#!/bin/bash
# Workload inputs and the golden eMMC image. Built once into $NB_CACHE (default
# /var/cache/nix-native-bench, on the host disk: kept across runs and reboots) and reused while
# its stamp matches (same bed tree, same scripts, same module); each run copies them to
# $NB_SHM (tmpfs: drop_caches never evicts them, reading them costs no modelled I/O).
#   in/tree          add: usr/share/doc + usr/bin + usr/share/zoneinfo of the bed tree
#   in/build.nix     build: 16 MiB (half text/binaries from the tree, half random) split into
#                    8192 files of 2 KiB in the build dir, copied to $out (8192 more files)
#   in/rebuild.nix   rebuild: 341 small derivations in one nix-build, shaped like a NixOS
#                    system's own (40 wrappers, 240 units naming them, 60 etc files, one
#                    derivation linking them all)
#   in/bigbuild.nix  bigbuild: a build whose build dir outgrows the memory model (an unpacked
#                    source of 14 copies of the add tree, objects as large, a 64 MiB $out)
#   in/nixpkgs       eval: the nixpkgs-2009 tree (../shared/nixpkgs, or $NIXPKGS_2009)
#   in/closure.nar   import: `nix-store --export` of a closure of >= 200 paths and >= 1 GiB:
#                    directories of the bed's Debian 13 tree (then of the host's /usr), each
#                    added as one store path, plus a system toplevel `nixos-system-bench-26.11`
#                    (kernel and initrd links, references to them all): the system update
#   in/closure.paths read: those paths (verify-path hashes every file); gc deletes them all
#   in/hook.sh       switch: the NixOS module's boot-loader hook as the module evaluates it
#                    (tests/packaging/nix/eval.nix `scripts.installBootLoader`: nix-ssd pin, the
#                    loader, nix-ssd prune-pins), nix-ssd and the loader replaced by the bed's
#   in/loader        the loader there: a stand-in for the extlinux builder (copies the kernel
#                    and initrd to /boot/nixos, writes /boot/extlinux/extlinux.conf)
#   emmc-golden.img  the eMMC root file system: ext4 (mke2fs defaults, inode tables and journal
#                    initialised at mkfs), holding /nix as a board's: the bed's store plus an
#                    installed system (>= 1 GiB, >= 30 000 files, two generations in
#                    /nix/var/nix/profiles), optimised (/nix/store/.links); /tmp (the eMMC
#                    store's build dir) and /boot
. "$(dirname "$0")/lib.sh"
set -e
CLOSURE_MIB=${CLOSURE_MIB:-1100} CLOSURE_PATHS=${CLOSURE_PATHS:-220}
SYSTEM_MIB=${SYSTEM_MIB:-1100} SYSTEM_PATHS=${SYSTEM_PATHS:-600} SYSTEM_FILES=${SYSTEM_FILES:-35000}
NIXPKGS_2009=${NIXPKGS_2009:-$NB_TOP/../shared/nixpkgs/nixpkgs-2009.tar.xz}
NIXPKGS_LIB=${NIXPKGS_LIB:-$NB_TOP/../shared/nixpkgs/nixpkgs-lib.tar.xz}
for f in "$NIXPKGS_2009" "$NIXPKGS_LIB"; do
    [ -f "$f" ] || { log "inputs: $f is missing (../shared/nixpkgs beside the checkout; set NIXPKGS_2009 / NIXPKGS_LIB)"; exit 1; }
done
mod_hash=$(cat "$NB_TOP/packaging/nix/module.nix" "$NB_TOP/tests/packaging/nix/"*.nix | sha256sum | cut -c1-16)
stamp="$(basename "$PREPARED") $CLOSURE_MIB $CLOSURE_PATHS $SYSTEM_MIB $SYSTEM_PATHS $SYSTEM_FILES $mod_hash $(sha256sum < "$0" | cut -c1-16)"
C=$NB_CACHE
if [ -f "$C/in/.stamp" ] && [ "$(cat "$C/in/.stamp")" = "$stamp" ] && [ -f "$C/emmc-golden.img" ]; then
    log "inputs: reusing $C"
else
log "inputs: building into $C (a few minutes)"
B=$NB_SHM/build; rm -rf "$B" "$IN" "$NB_SHM/emmc-golden.img"; mkdir -p "$B" "$IN/tree"
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

# rebuild: what a NixOS rebuild builds locally after a configuration change (the system's
# wrappers, units and etc files, and the derivation that gathers them), each a tiny builder
cat > "$IN/rebuild.nix" <<'NIX'
let
  mk = name: script: derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
  n = toString;
  wrappers = builtins.genList (i: mk "wrapper-${n i}" ''
    /bin/mkdir -p $out/bin
    printf '#!/bin/sh\nexec /usr/bin/env PROG=${n i} /bin/true "$@"\n' > $out/bin/prog-${n i}
    /bin/chmod 555 $out/bin/prog-${n i}
  '') 40;
  units = builtins.genList (i: let w = i - (i / 40) * 40; in mk "unit-${n i}.service" ''
    /bin/mkdir -p $out
    printf '[Unit]\nDescription=unit ${n i} of the bench\n[Service]\nExecStart=${builtins.elemAt wrappers w}/bin/prog-${n w}\n' > $out/unit-${n i}.service
  '') 240;
  etc = builtins.genList (i: mk "etc-file-${n i}" ''
    i=0; while [ $i -lt 64 ]; do echo "key$i = value ${n i} $i"; i=$((i + 1)); done > $out
  '') 60;
  all = wrappers ++ units ++ etc;
in mk "system-units" ''
  /bin/mkdir -p $out
  for p in ${toString all}; do /bin/ln -s $p $out/; done
''
NIX
echo "rebuild: 341 derivations in one nix-build (40 wrappers, 240 units, 60 etc files, one linking them)" | tee -a "$IN/inputs.txt"

# bigbuild: unpack a source, compile it, link: 840 MiB of source (14 copies of the add tree,
# 21 000 files) and 840 MiB of objects in the build dir, which Nix deletes afterwards
cat > "$IN/bigbuild.nix" <<'NIX'
derivation {
  name = "big-build"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" ''
    set -e
    i=0; while [ $i -lt 14 ]; do /bin/cp -r /in/tree src$i; i=$((i + 1)); done
    i=0; while [ $i -lt 14 ]; do /usr/bin/find src$i -type f -exec /bin/cat {} + > obj$i.o; i=$((i + 1)); done
    /bin/mkdir -p $out/lib; /bin/cat obj*.o | /usr/bin/head -c 67108864 > $out/lib/libbig.a
  '' ];
}
NIX
echo "bigbuild: 14 copies of the add tree unpacked and 'compiled' in the build dir (~1.7 GiB written, more than the 1 GiB memory model), a 64 MiB \$out" | tee -a "$IN/inputs.txt"

tar xJf "$NIXPKGS_2009" -C "$IN"
[ -f "$IN/nixpkgs/nixos/default.nix" ] || { log "inputs: $NIXPKGS_2009 holds no nixpkgs/nixos"; exit 1; }
echo "eval: nixpkgs-2009 ($(find "$IN/nixpkgs" -type f | wc -l) files, $(du -sm --apparent-size "$IN/nixpkgs" | cut -f1) MiB), NixOS toplevel instantiated" | tee -a "$IN/inputs.txt"
cat > "$IN/eval.nix" <<'NIX'
{ nixpkgs }:
(import (nixpkgs + "/nixos") {
  configuration = { boot.loader.grub.device = "nodev"; fileSystems."/".device = "/dev/sda1"; };
}).system
NIX
mkdir -p "$B/nixpkgs-lib"; tar xJf "$NIXPKGS_LIB" -C "$B/nixpkgs-lib" --strip-components=1

# the loader's stand-in: what the extlinux builder does with a new default (copy kernel and
# initrd, write the menu of the generations), without extlinux itself
cat > "$IN/loader" <<'SH'
#!/bin/sh
# bench loader: -g N -t N -c TOPLEVEL, as the module's extlinux installer is called
set -e
while [ $# -gt 1 ]; do shift; done
sys=$1
mkdir -p /boot/nixos /boot/extlinux
for f in kernel initrd; do
    t=$(readlink -f "$sys/$f"); b=/boot/nixos/$(basename "$(dirname "$t")")-$f
    [ -e "$b" ] || { cp "$t" "$b.tmp"; mv "$b.tmp" "$b"; }
done
{
    echo "DEFAULT nixos-default"; echo "MENU TITLE ------------------------------------------------------------"
    echo "LABEL nixos-default"; echo "  LINUX ../nixos/kernel"; echo "  APPEND init=$sys/init"
    for g in /nix/var/nix/profiles/system-*-link; do
        [ -e "$g" ] || continue
        echo "LABEL $(basename "$g")"; echo "  APPEND init=$(readlink -f "$g")/init"
    done
} > /boot/extlinux/extlinux.conf.tmp
mv /boot/extlinux/extlinux.conf.tmp /boot/extlinux/extlinux.conf
SH
chmod 755 "$IN/loader"

# closure sources: directories, split while bigger than 48 MiB, until enough data and paths;
# first the update's (import: pieces >= 64 KiB), then the installed system's (pieces >= 4 KiB,
# as a system has many small paths); each line: kind, the directory, its store path name
python3 - "$PREPARED" "$CLOSURE_MIB" "$CLOSURE_PATHS" "$SYSTEM_MIB" "$SYSTEM_PATHS" "$SYSTEM_FILES" > "$B/sources" <<'PY'
import os, re, sys
bed = sys.argv[1]
want = {"import": (int(sys.argv[2]) << 20, int(sys.argv[3]), 0), "system": (int(sys.argv[4]) << 20, int(sys.argv[5]), int(sys.argv[6]))}
skip = {"usr/share/doc", "usr/bin", "usr/share/zoneinfo"}   # the add tree
def size(p):
    s = n = 0
    for dp, dn, fn in os.walk(p):
        for f in fn:
            try: s += os.lstat(os.path.join(dp, f)).st_size; n += 1
            except OSError: pass
    return s, n
def pieces(root, rel):
    p = os.path.join(root, rel)
    if rel in skip or not os.path.isdir(p) or os.path.islink(p): return
    s, n = size(p)
    if s == 0: return
    subs = sorted(e for e in os.listdir(p) if os.path.isdir(os.path.join(p, e)) and not os.path.islink(os.path.join(p, e)))
    if s > (48 << 20 if kind == "import" else 8 << 20) and subs:   # a system's paths are smaller
        for e in subs: yield from pieces(root, os.path.join(rel, e))
    else:
        yield (p, s, n)
kind = "import"
got = {"import": [0, 0, 0], "system": [0, 0, 0]}
done = lambda k: all(g >= w for g, w in zip(got[k], want[k]))
for root, tops in ((bed, ["usr", "boot"]), ("/", ["usr/lib", "usr/share", "usr/include", "usr/libexec", "usr/src"])):
    for t in tops:
        for p, s, n in pieces(root, t):
            if kind == "import" and done("import"): kind = "system"
            if kind == "system" and done("system"): break
            if s < (64 << 10 if kind == "import" else 4 << 10): continue
            got[kind][0] += s; got[kind][1] += 1; got[kind][2] += n
            print(kind + "\t" + p + "\t" + re.sub(r"[^A-Za-z0-9+._?=-]", "_", os.path.basename(p)).lstrip("."))
for k in got:
    print(f"{k} sources: {got[k][1]} directories, {got[k][0] >> 20} MiB, {got[k][2]} files" + ("" if done(k) else " (SHORT of the target)"), file=sys.stderr)
    if not done(k): sys.exit(1)
PY
# A scratch store on tmpfs in a private mount namespace (sources bound read-only at /src/N):
# the installed system first (two generations, profiles, optimised) -> the golden eMMC /nix;
# then the update on top of it -> closure.nar; then the hook from the evaluated module.
unshare --mount --propagation private bash -c '
  . "$0"; set -e; B=$1
  root_mount
  mount -t tmpfs tmpfs "$R/nix"; cp -a "$PREPARED/nix/." "$R/nix/"
  mkdir -p "$R/src"; mount -t tmpfs tmpfs "$R/src"
  i=0; while IFS=$'"'"'\t'"'"' read -r kind d name; do
    i=$((i+1)); mkdir -p "$R/src/$i/$name"; mount --bind -o ro "$d" "$R/src/$i/$name"; echo "/src/$i/$name" >> "$B/src-$kind"
  done < "$B/sources"
  add() { xargs -a "$1" -d "\n" chroot "$R" /usr/bin/env -i $CPATH HOME=/root LC_ALL=C nix-store --add; }
  # toplevel NAME PATHS-FILE: a system toplevel referencing the paths, with kernel and initrd
  # links to the two largest files among them
  toplevel() {
    local big
    mapfile -t big < <(sed "s|^|$R|" "$2" | xargs -d "\n" sh -c "find \"\$@\" -type f -printf \"%s %p\\n\"" _ | sort -n | tail -2 | cut -d" " -f2- | sed "s|^$R||")
    expr="let p = map builtins.storePath [ $(sed "s/.*/\"&\"/" "$2" | tr "\n" " ") ]; k = builtins.storePath \"${big[0]}\"; i = builtins.storePath \"${big[1]}\"; in derivation { name = \"$1\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"/bin/mkdir \$out; echo \${toString p} > \$out/paths; /bin/ln -s \${k} \$out/kernel; /bin/ln -s \${i} \$out/initrd; echo > \$out/init\" ]; }"
    cenv nix-build --no-out-link -E "$expr" 2>/dev/null
  }
  # files and MiB of the paths listed in a file
  census() { sed "s|^|$R|" "$1" | xargs -d "\n" sh -c "find \"\$@\" -type f -printf \"%s\\n\"" _ | awk "{n++; s+=\$1} END{printf \"%d files, %d MiB\", n, s / 1048576}"; }
  add "$B/src-system" > "$B/system.paths"
  n=$(wc -l < "$B/system.paths")
  head -n $((n - n / 10)) "$B/system.paths" > "$B/gen1.paths"; tail -n $((n - n / 20)) "$B/system.paths" > "$B/gen2.paths"
  g1=$(toplevel nixos-system-bench-26.05.1 "$B/gen1.paths"); g2=$(toplevel nixos-system-bench-26.05.2 "$B/gen2.paths")
  cenv sh -c "ln -sfn $g1 /nix/var/nix/profiles/system-1-link && ln -sfn $g2 /nix/var/nix/profiles/system-2-link && ln -sfn system-2-link /nix/var/nix/profiles/system"
  cenv nix-store --optimise 2> "$B/optimise.log"
  echo "installed system: $(wc -l < "$B/system.paths") paths + 2 generations, $(census "$B/system.paths"); store: $(cenv nix-store -q --requisites /nix/var/nix/profiles/system-1-link /nix/var/nix/profiles/system-2-link | wc -l) valid live paths, $(ls "$R/nix/store/.links" | wc -l) entries in .links ($(tail -1 "$B/optimise.log"))"
  st=$B/emmcstage; mkdir -p "$st/tmp" "$st/boot"; chmod 1777 "$st/tmp"; cp -a "$R/nix" "$st/nix"
  # the update: new paths only (a real one substitutes what changed)
  add "$B/src-import" > "$B/import.paths"
  u=$(toplevel nixos-system-bench-26.11 "$B/import.paths")
  cenv nix-store -qR "$u" > "$IN/closure.paths"
  cenv sh -c "nix-store --export \$(cat /in/closure.paths)" > "$IN/closure.nar"
  echo "import closure (the update): $(wc -l < "$IN/closure.paths") paths, $(census "$IN/closure.paths"), NAR $(( $(stat -c %s "$IN/closure.nar") >> 20 )) MiB; toplevel $u"
  echo "$u" > "$IN/closure.toplevel"
  # the boot-loader hook as the module evaluates it
  mkdir -p "$R/evsrc" "$R/evlib"; mount --bind -o ro "$NB_TOP" "$R/evsrc"; mount --bind -o ro "$B/nixpkgs-lib" "$R/evlib"
  cenv nix-instantiate --eval --strict --json -A scripts /evsrc/tests/packaging/nix/eval.nix --arg src /evsrc --arg nixpkgs /evlib > "$B/scripts.json"
' "$NB_DIR/lib.sh" "$B" 2>&1 | tee -a "$IN/inputs.txt"
[ -s "$IN/closure.nar" ] && [ -s "$B/scripts.json" ] || { log "inputs: no closure or no hook"; exit 1; }
python3 - "$B/scripts.json" "$IN/hook.sh" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
loader = s["loader"].split()[0]
assert s["installBootLoader"] and s["cli"] in s["installBootLoader"] and loader in s["installBootLoader"], s
open(sys.argv[2], "w").write(s["installBootLoader"].replace(s["cli"], "/usr/bin/nix-ssd").replace(loader, "/in/loader"))
PY
echo "switch: the module's evaluated boot-loader hook: $(grep -v '^#' "$IN/hook.sh" | grep -c .) commands ($(grep -oE '^[^# ]+ [a-z-]+' "$IN/hook.sh" | tr '\n' ';'))" | tee -a "$IN/inputs.txt"

st=$B/emmcstage
# mkfs, then cp -a through a mount: mke2fs -d searches its list of hard links linearly for
# every linked file (minutes for the 45 000 of an optimised store)
truncate -s 12G "$NB_SHM/emmc-golden.img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 -L emmc "$NB_SHM/emmc-golden.img"
mkdir -p "$B/mnt"; mount -o loop "$NB_SHM/emmc-golden.img" "$B/mnt"
cp -a "$st/." "$B/mnt/" && [ "$(stat -c %h "$B/mnt/nix/store/.links/$(ls "$B/mnt/nix/store/.links" | head -1)")" -ge 2 ]; rc=$?
umount "$B/mnt"; [ $rc = 0 ] || { log "inputs: golden image"; exit 1; }
echo "eMMC image: 12 GiB ext4, $(du -m "$NB_SHM/emmc-golden.img" | cut -f1) MiB allocated" | tee -a "$IN/inputs.txt"
rm -rf "$NB_SHM/rootup" "$B"
echo "$stamp" > "$IN/.stamp"
rm -rf "$C"; mkdir -p "$C"
cp -a "$IN" "$C/in"; cp --sparse=always "$NB_SHM/emmc-golden.img" "$C/emmc-golden.img"
fi
# into tmpfs for the run (unless already there)
if ! { [ -f "$IN/.stamp" ] && [ "$(cat "$IN/.stamp")" = "$stamp" ] && [ -f "$NB_SHM/emmc-golden.img" ]; }; then
    rm -rf "$IN" "$NB_SHM/emmc-golden.img"
    cp -a "$C/in" "$IN" && cp --sparse=always "$C/emmc-golden.img" "$NB_SHM/emmc-golden.img"
fi
cp "$IN/inputs.txt" "$RES/inputs.txt"
