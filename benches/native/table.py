#!/usr/bin/env python3
"""Tables of the native bench from RES/raw.tsv (one line per configuration x round x workload).
   python3 table.py RESDIR
Times are "total": the command plus a syncfs of every file system of the configuration, i.e.
until the data is on the (modelled) disk. A/X = eMMC time / configuration time (>1: faster than
the eMMC store). The last line is the summary the issue asks for."""
import collections
import os
import statistics as st
import sys

res = sys.argv[1] if len(sys.argv) > 1 else "target/native-bench"
F = ("cfg rep wl rc cmd total nuser nsys kthr busy iowait peak "
     "erio ermb ewio ewmb efl srio srmb swio swmb sfl").split()
rows = []
for line in open(os.path.join(res, "raw.tsv")):
    p = line.rstrip("\n").split("\t")
    if len(p) < len(F):
        continue
    r = dict(zip(F, p))
    for k in F[3:]:
        r[k] = float(r[k])
    r["chk"] = p[len(F)] if len(p) > len(F) else ""
    r["ncpu"] = r["nuser"] + r["nsys"]
    if r["kthr"] < 0:   # a kernel worker exited during the workload: its CPU is lost
        r["kthr"] = float("nan")
    rows.append(r)

# device models (MB/s, IOPS): eMMC 250/100 MB/s 3000/1500 IOPS, SSD 400/350 MB/s 20000/15000 IOPS
EMMC = {"seq read": 250e6, "seq write": 100e6, "read IOPS": 3000, "write IOPS": 1500}
SSD = {"seq read": 400e6, "seq write": 350e6, "read IOPS": 20000, "write IOPS": 15000}
RATIO = {k: SSD[k] / EMMC[k] for k in EMMC}
WL = ["import", "add", "build", "read", "gc"]
ORDER = ["emmc", "default", "d-none", "d-sbr", "d-foc", "c-none", "c-zstd1", "c-zstd3", "c-lzo",
         "cand", "plain", "plain-default"]
E = os.environ.get
cd, cc, cdu = E("COMP_DURABILITY", "foc"), E("CAND_COMPRESS", "none"), E("CAND_DURABILITY", "foc")
co = f", mount options +{E('CAND_OPTS')}" if E("CAND_OPTS") else ""
DUR = {"foc": "flushoncommit + fsync-metadata = false", "none": "no durability setting",
       "sbr": "sync-before-registering", "default": "activate's (no durability setting: an unclean stop is verified at the next activation)"}
COMP = {"none": "no compression", "default": "the generator's (no compression)"}
DESC = {
    "emmc": "reference: ext4 eMMC store, Nix defaults, through nix-daemon (builds in /tmp on the eMMC)",
    "default": "the project as it is: nix-ssd setup, the generator's mounts (noatime, no compression), activate (overlay, no durability setting)",
    "d-none": "default with no durability setting (= default since it sets none)",
    "d-sbr": "CANDIDATE: default with sync-before-registering",
    "d-foc": "CANDIDATE: default with btrfs flushoncommit + fsync-metadata = false",
    "c-none": f"CANDIDATE: no compression, {DUR.get(cd, cd)}",
    "c-zstd1": f"CANDIDATE: compress=zstd:1, {DUR.get(cd, cd)}",
    "c-zstd3": f"CANDIDATE: compress=zstd:3, {DUR.get(cd, cd)}",
    "c-lzo": f"CANDIDATE: compress=lzo, {DUR.get(cd, cd)}",
    "cand": f"CANDIDATE combination: overlay, {COMP.get(cc, 'compress=' + cc)}, {DUR.get(cdu, cdu)}{co}",
    "plain": f"yardstick: plain btrfs subvolume as the whole /nix, no overlay: {COMP.get(cc, 'compress=' + cc)}, {DUR.get(cdu, cdu)}{co}",
    "plain-default": "yardstick: plain btrfs /nix, no overlay, the default's mount options and durability",
}
CF = [c for c in ORDER if any(r["cfg"] == c for r in rows)] + sorted({r["cfg"] for r in rows} - set(ORDER))


def ok(r):
    if r["rc"] != 0 or r["chk"].startswith("ERR"):
        return False
    if r["wl"] == "build" and r["chk"] != "files=8192":
        return False
    return True


bad = [r for r in rows if not ok(r)]
g = collections.defaultdict(list)
for r in rows:
    if ok(r):
        g[(r["cfg"], r["wl"])].append(r)


def vals(c, w, k):
    return [r[k] for r in g.get((c, w), []) if r[k] == r[k]]


def med(c, w, k):
    v = vals(c, w, k)
    return st.median(v) if v else None


def fmt_cell(c, w):
    v = vals(c, w, "total")
    if not v:
        return "—"
    return f"{st.median(v):.0f} [{min(v):.0f}–{max(v):.0f}]"


def ax(c, w):
    a, x = med("emmc", w, "total"), med(c, w, "total")
    return a / x if a and x else None


def f2(x):
    return "—" if x is None else f"{x:.2f}"


print("== native bench: Nix on the eMMC store vs the project's SSD layer (host kernel, native CPU)")
print("   device models (root-cgroup v1 blkio throttles on stacked loop devices backed by /dev/shm):")
print("     eMMC 250 MB/s read, 100 MB/s write, 3000 read IOPS, 1500 write IOPS")
print("     SSD  400 MB/s read, 350 MB/s write, 20000 read IOPS, 15000 write IOPS")
print("   device ratio SSD/eMMC (the limit): " + ", ".join(f"{k} {v:.2f}x" for k, v in RATIO.items()))
try:
    print("   inputs: " + "; ".join(l.strip() for l in open(os.path.join(res, "inputs.txt"))))
except OSError:
    pass
print("   configurations:")
for c in CF:
    print(f"     {c:<10} {DESC.get(c, c)}")
n_rounds = len({r["rep"] for r in rows})
print(f"   rounds: {n_rounds}; runs with a failed workload: {len(bad)} (left out below)")
for r in bad:
    print(f"     FAILED {r['cfg']} round {r['rep']} {r['wl']}: {r['chk']}")

print("\n-- time until on disk, ms: median [min–max]; A/X = eMMC / configuration (>1: faster than eMMC)")
print("| configuration | " + " | ".join(f"{w} | A/X" for w in WL) + " |")
print("|---|" + "---|---|" * len(WL))
for c in CF:
    print(f"| {c} | " + " | ".join(f"{fmt_cell(c, w)} | {f2(ax(c, w))}" for w in WL) + " |")

print("\n-- the command alone (what the prompt waits for), ms median; A/X of that")
print("| configuration | " + " | ".join(f"{w} | A/X" for w in WL) + " |")
print("|---|" + "---|---|" * len(WL))
for c in CF:
    cells = []
    for w in WL:
        a, x = med("emmc", w, "cmd"), med(c, w, "cmd")
        cells.append(f"{x:.0f} | {f2(a / x if a and x else None)}" if x else "— | —")
    print(f"| {c} | " + " | ".join(cells) + " |")

print("\n-- CPU and I/O wait per workload (medians, ms): wall = total | Nix CPU = daemon + client + builder")
print("   (cpuacct of the bench cgroup, user+sys) | wait = wall - Nix CPU: Nix not on a CPU (I/O, fsync, sync,")
print("   kernel workers; this kernel accounts no iowait) | sync = the final syncfs alone | kernel threads")
print("   (btrfs/zstd workers, writeback, the loop devices' own workers) | peak memory of the cgroup (limit")
print("   1 GiB incl. page cache) | device I/O: MB read, MB written (write requests), flushes")
for w in WL:
    print(f" {w}:")
    for c in CF:
        if not g.get((c, w)):
            continue
        m = lambda k: (lambda v: float("nan") if v is None else v)(med(c, w, k))
        dev = f"eMMC r {m('ermb'):.0f} w {m('ewmb'):.0f} MB ({m('ewio'):.0f}) fl {m('efl'):.0f}"
        if c != "emmc":
            dev += f" | SSD r {m('srmb'):.0f} w {m('swmb'):.0f} MB ({m('swio'):.0f}) fl {m('sfl'):.0f}"
        print(f"   {c:<10} wall {m('total'):6.0f}  nix cpu {m('ncpu'):6.0f} (user {m('nuser'):5.0f} sys {m('nsys'):5.0f})"
              f"  wait {m('total') - m('ncpu'):6.0f}  sync {m('total') - m('cmd'):5.0f}  kthreads {m('kthr'):5.0f}"
              f"  mem {m('peak'):4.0f} MiB  {dev}")

# which device limit bounds each workload: the eMMC runs' demand on each limit
print("\n-- what bounds each workload on the eMMC (its median I/O against each limit of the model):")
print("   demand = bytes / bandwidth or requests / IOPS; the largest is the bounding limit and its")
print("   SSD/eMMC ratio the best an SSD configuration can do; I/O-bound = demand >= 50 % of the eMMC wall time")
bound = {}
for w in WL:
    if not g.get(("emmc", w)):
        continue
    m = lambda k: med("emmc", w, k)
    d = {"seq read": m("ermb") * 1e6 / EMMC["seq read"], "read IOPS": m("erio") / EMMC["read IOPS"],
         "seq write": m("ewmb") * 1e6 / EMMC["seq write"], "write IOPS": m("ewio") / EMMC["write IOPS"]}
    lim = max(d, key=d.get)
    wall = m("total") / 1000
    iob = d[lim] >= 0.5 * wall
    bound[w] = (lim, RATIO[lim], iob)
    dd = ", ".join(f"{k} {v:.2f} s" for k, v in d.items())
    print(f"   {w:<7} wall {wall:6.2f} s; demand {dd} -> {lim} ({RATIO[lim]:.2f}x), "
          f"{'I/O-bound' if iob else 'not I/O-bound'} ({d[lim] / wall:.0%} of the wall time)")

print("\n-- each configuration against the limit (A/X / bounding device ratio, I/O-bound workloads):")
for c in CF:
    if c == "emmc":
        continue
    parts = [f"{w} {ax(c, w) / bound[w][1]:.2f}" for w in WL if w in bound and bound[w][2] and ax(c, w)]
    worst = [ax(c, w) for w in WL if ax(c, w)]
    print(f"   {c:<10} worst A/X {min(worst):.2f}; " + ", ".join(parts) if worst else f"   {c}: no data")

SPEC = {"default": ("overlay", "default", "default"), "d-none": ("overlay", "default", "none"),
        "d-sbr": ("overlay", "default", "sbr"), "d-foc": ("overlay", "default", "foc"),
        "c-none": ("overlay", "none", cd), "c-zstd1": ("overlay", "zstd:1", cd),
        "c-zstd3": ("overlay", "zstd:3", cd), "c-lzo": ("overlay", "lzo", cd),
        "cand": ("overlay", cc, cdu), "plain": ("plain", cc, cdu), "plain-default": ("plain", "default", "default")}


def rel(c, base):
    return ", ".join(f"{w} {med(c, w, 'total') / med(base, w, 'total') - 1:+.0%}" for w in WL
                     if med(c, w, "total") and med(base, w, "total"))


print("\n-- overlay overhead: overlay configuration / plain btrfs /nix with the same options - 1")
for p, q in (("plain", None), ("plain-default", "default")):
    if p not in CF:
        continue
    q = q or next((c for c in CF if SPEC.get(c) == ("overlay",) + SPEC[p][1:]), None)
    if q:
        print(f"   {q} vs {p}: {rel(q, p)}")
print("-- durability cost: configuration / the same without a durability setting (d-none) - 1")
for c in ("default", "d-sbr", "d-foc"):
    if c in CF and "d-none" in CF:
        print(f"   {c:<8} {rel(c, 'd-none')}")

wa = [ax("default", w) for w in WL if ax("default", w)]
sh = [ax("default", w) / bound[w][1] for w in WL if w in bound and bound[w][2] and ax("default", w)]
print(f"\nnative-bench: worst A/X {min(wa):.2f}, I/O-bound {min(sh):.2f} of the device ratio"
      if wa and sh else "\nnative-bench: worst A/X n/a, I/O-bound n/a of the device ratio")
