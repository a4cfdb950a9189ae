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

# switch = import + the boot-loader hook of the same run: what `nixos-rebuild switch` waits for
# besides evaluation and activation (substituting the update, then the hook until on disk);
# its "command" time is the import until on disk + the hook until it returned
NUM = F[3:] + ["ncpu"]
for r in [r for r in rows if r["wl"] == "hook"]:
    i = next((x for x in rows if x["wl"] == "import" and x["cfg"] == r["cfg"] and x["rep"] == r["rep"]), None)
    if i is None:
        continue
    sw = {k: i[k] + r[k] for k in NUM}
    sw.update(cfg=r["cfg"], rep=r["rep"], wl="switch", rc=max(i["rc"], r["rc"]), peak=max(i["peak"], r["peak"]),
              cmd=i["total"] + r["cmd"], chk=r["chk"] if not i["chk"].startswith("ERR") else i["chk"])
    rows.append(sw)

# device models (MB/s, IOPS): eMMC 250/100 MB/s 3000/1500 IOPS, SSD 400/350 MB/s 20000/15000 IOPS
EMMC = {"seq read": 250e6, "seq write": 100e6, "read IOPS": 3000, "write IOPS": 1500}
SSD = {"seq read": 400e6, "seq write": 350e6, "read IOPS": 20000, "write IOPS": 15000}
RATIO = {k: SSD[k] / EMMC[k] for k in EMMC}
ALL_WL = ["eval", "import", "switch", "add", "build", "rebuild", "bigbuild", "read", "gc"]
WL = [w for w in ALL_WL if any(r["wl"] == w for r in rows)]
ORDER = ["emmc", "default", "ssd-nix", "build-only", "d-none", "d-sbr", "d-foc", "c-none", "c-zstd1", "c-zstd3",
         "c-lzo", "cand", "plain", "plain-default"]
E = os.environ.get
cd, cc, cdu = E("COMP_DURABILITY", "foc"), E("CAND_COMPRESS", "none"), E("CAND_DURABILITY", "foc")
co = f", mount options +{E('CAND_OPTS')}" if E("CAND_OPTS") else ""
DUR = {"foc": "flushoncommit + fsync-metadata = false", "none": "no durability setting",
       "sbr": "sync-before-registering", "default": "activate's (no durability setting: an unclean stop is verified at the next activation)"}
COMP = {"none": "no compression", "default": "the generator's (no compression)"}
DESC = {
    "emmc": "reference: ext4 eMMC store, Nix defaults, through nix-daemon (builds in /tmp on the eMMC)",
    "default": "the project as it is: nix-ssd setup, the generator's mounts, activate (overlay store, build dir on the SSD)",
    "ssd-nix": "what users do instead: all of /nix on a plain btrfs subvolume of the SSD, the default's options (no boot without the SSD)",
    "build-only": "the project's mode build: the store on the eMMC, builds on the SSD",
    "plain-default": "= ssd-nix",
    "d-none": "default with no durability setting (= default since it sets none)",
    "d-sbr": "CANDIDATE: default with sync-before-registering",
    "d-foc": "CANDIDATE: default with btrfs flushoncommit + fsync-metadata = false",
    "c-none": f"CANDIDATE: no compression, {DUR.get(cd, cd)}",
    "c-zstd1": f"CANDIDATE: compress=zstd:1, {DUR.get(cd, cd)}",
    "c-zstd3": f"CANDIDATE: compress=zstd:3, {DUR.get(cd, cd)}",
    "c-lzo": f"CANDIDATE: compress=lzo, {DUR.get(cd, cd)}",
    "cand": f"CANDIDATE combination: overlay, {COMP.get(cc, 'compress=' + cc)}, {DUR.get(cdu, cdu)}{co}",
    "plain": f"yardstick: plain btrfs subvolume as the whole /nix, no overlay: {COMP.get(cc, 'compress=' + cc)}, {DUR.get(cdu, cdu)}{co}",
}
CF = [c for c in ORDER if any(r["cfg"] == c for r in rows)] + sorted({r["cfg"] for r in rows} - set(ORDER))
REF = "ssd-nix" if "ssd-nix" in CF else ("plain-default" if "plain-default" in CF else None)
CHECK = {"build": lambda c: c == "files=8192", "rebuild": lambda c: c == "links=340",
         "bigbuild": lambda c: c == "bytes=67108864", "hook": lambda c: c == "pinned=1", "switch": lambda c: c == "pinned=1",
         "eval": lambda c: c.endswith(".drv") and "nixos-system" in c}


def ok(r):
    if r["rc"] != 0 or r["chk"].startswith("ERR"):
        return False
    return CHECK.get(r["wl"], lambda c: True)(r["chk"])


bad = [r for r in rows if not ok(r) and r["wl"] != "switch"]
g = collections.defaultdict(list)
for r in rows:
    if ok(r):
        g[(r["cfg"], r["wl"])].append(r)


def vals(c, w, k):
    return [r[k] for r in g.get((c, w), []) if r[k] == r[k]]


def med(c, w, k):
    v = vals(c, w, k)
    return st.median(v) if v else None


def fmt_cell(c, w, k="total"):
    v = vals(c, w, k)
    if not v:
        return "—"
    return f"{st.median(v):.0f} [{min(v):.0f}–{max(v):.0f}]"


def ax(c, w, k="total"):
    a, x = med("emmc", w, k), med(c, w, k)
    return a / x if a and x else None


def f2(x):
    return "—" if x is None else f"{x:.2f}"


print("== native bench: Nix on the eMMC store vs the project's SSD layer (host kernel, native CPU)")
print("   device models (root-cgroup v1 blkio throttles on stacked loop devices backed by /dev/shm):")
print("     eMMC 250 MB/s read, 100 MB/s write, 3000 read IOPS, 1500 write IOPS")
print("     SSD  400 MB/s read, 350 MB/s write, 20000 read IOPS, 15000 write IOPS")
print("   device ratio SSD/eMMC: " + ", ".join(f"{k} {v:.2f}x" for k, v in RATIO.items()))
try:
    print("   inputs:\n" + "".join("     " + l for l in open(os.path.join(res, "inputs.txt"))), end="")
except OSError:
    pass
print("   configurations:")
for c in CF:
    print(f"     {c:<10} {DESC.get(c, c)}")
n_rounds = len({r["rep"] for r in rows})
print(f"   rounds: {n_rounds}; failed steps: {len(bad)} (left out below)")
for r in bad:
    print(f"     FAILED {r['cfg']} round {r['rep']} {r['wl']}: {r['chk']}")
loads = sorted({l.split(" load ")[1].split(":")[0] for l in open(os.path.join(res, "runs.log")) if " load " in l}) \
    if os.path.exists(os.path.join(res, "runs.log")) else []
if loads:
    print(f"   load averages at the end of each run: {loads[0]} … {loads[-1]}")


def table(k, title):
    print(f"\n-- {title}")
    print("| configuration | " + " | ".join(WL) + " |")
    print("|---|" + "---|" * len(WL))
    for c in CF:
        print(f"| {c} | " + " | ".join(fmt_cell(c, w, k) for w in WL) + " |")
    print("| A/X (eMMC / configuration) | " + " | ".join(" " for w in WL) + " |")
    for c in CF:
        if c != "emmc":
            print(f"| {c} | " + " | ".join(f2(ax(c, w, k)) for w in WL) + " |")


table("total", "time until on disk, ms: median [min–max] of the rounds; A/X > 1: faster than the eMMC store")
table("cmd", "the command alone (until it returned: what the prompt waits for), ms; switch: the import until on disk + the hook until it returned")

print("\n-- CPU and I/O per workload (medians, ms): wall = until on disk | Nix CPU = daemon + client + builders")
print("   (cpuacct of the bench cgroup, user+sys) | wait = wall - Nix CPU (I/O, sync, kernel workers; this kernel")
print("   accounts no iowait) | sync = the final syncfs alone | kernel threads (btrfs workers, writeback, loop")
print("   workers) | peak memory of the cgroup (limit 1 GiB incl. page cache) | device I/O: MB read, MB written")
print("   (write requests), flushes")
for w in WL + ["hook", "activate"]:
    if not any(g.get((c, w)) for c in CF):
        continue
    print(f" {w}:")
    for c in CF:
        if not g.get((c, w)):
            continue
        m = lambda k: (lambda v: float("nan") if v is None else v)(med(c, w, k))
        dev = f"eMMC r {m('ermb'):.0f} ({m('erio'):.0f}) w {m('ewmb'):.0f} MB ({m('ewio'):.0f}) fl {m('efl'):.0f}"
        if c != "emmc":
            dev += f" | SSD r {m('srmb'):.0f} ({m('srio'):.0f}) w {m('swmb'):.0f} MB ({m('swio'):.0f}) fl {m('sfl'):.0f}"
        print(f"   {c:<10} wall {m('total'):6.0f}  nix cpu {m('ncpu'):6.0f} (user {m('nuser'):5.0f} sys {m('nsys'):5.0f})"
              f"  wait {m('total') - m('ncpu'):6.0f}  sync {m('total') - m('cmd'):5.0f}  kthreads {m('kthr'):5.0f}"
              f"  mem {m('peak'):4.0f} MiB  {dev}")

# the attainable limit: the SSD cannot make Nix's own CPU faster, nor move the eMMC run's I/O
# faster than the SSD model allows
print("\n-- the attainable limit per workload, from the eMMC runs (medians): A = eMMC wall / max(Nix CPU of the")
print("   eMMC run, the eMMC run's I/O demand on the SSD model); demand = the largest of bytes / bandwidth and")
print("   requests / IOPS, read and write (the model throttles them apart); share = a configuration's A/X / A")
att = {}
for w in WL:
    if not g.get(("emmc", w)):
        continue
    m = lambda k: med("emmc", w, k)
    d = {"seq read": m("ermb") * 1e6 / SSD["seq read"], "read IOPS": m("erio") / SSD["read IOPS"],
         "seq write": m("ewmb") * 1e6 / SSD["seq write"], "write IOPS": m("ewio") / SSD["write IOPS"]}
    lim = max(d, key=d.get)
    cpu, io = m("ncpu") / 1000, d[lim]
    wall = m("total") / 1000
    att[w] = wall / max(cpu, io, 1e-9)
    de = {"seq read": m("ermb") * 1e6 / EMMC["seq read"], "read IOPS": m("erio") / EMMC["read IOPS"],
          "seq write": m("ewmb") * 1e6 / EMMC["seq write"], "write IOPS": m("ewio") / EMMC["write IOPS"]}
    le = max(de, key=de.get)
    print(f"   {w:<8} eMMC wall {wall:6.2f} s: Nix CPU {cpu:6.2f} s, I/O on the eMMC model {de[le]:6.2f} s ({le}),"
          f" on the SSD model {io:5.2f} s ({lim}) -> A = {att[w]:.2f} ({'CPU' if cpu >= io else 'I/O'}-bound on the SSD)")
print("| configuration | " + " | ".join(WL) + " |")
print("|---|" + "---|" * len(WL))
print("| attainable A | " + " | ".join(f2(att.get(w)) for w in WL) + " |")
for c in CF:
    if c != "emmc":
        print(f"| {c} share | " + " | ".join(f2(ax(c, w) / att[w] if ax(c, w) and w in att else None) for w in WL) + " |")

if REF:
    print(f"\n-- against {REF} (all of /nix on the SSD): configuration time / {REF} time - 1 (+: slower)")
    for c in CF:
        if c not in ("emmc", REF):
            print(f"   {c:<10} " + ", ".join(f"{w} {med(c, w, 'total') / med(REF, w, 'total') - 1:+.0%}" for w in WL
                                            if med(c, w, "total") and med(REF, w, "total")))
if any(g.get((c, "activate")) for c in CF):
    print("\n-- activation (nix-ssd activate at boot, cold caches, devices modelled): ms median [min–max], Nix CPU")
    for c in CF:
        if g.get((c, "activate")):
            print(f"   {c:<10} {fmt_cell(c, 'activate')}  cpu {med(c, 'activate', 'ncpu'):.0f}")

wa = [(ax("default", w), w) for w in WL if ax("default", w)]
sh = [(ax("default", w) / att[w], w) for w in WL if w in att and ax("default", w)]
if wa and sh:
    print(f"   (default: worst A/X is {min(wa)[1]}'s, worst share {min(sh)[1]}'s)")
    print(f"\nnative-bench: worst A/X {min(wa)[0]:.2f}, worst share {min(sh)[0]:.2f} of the attainable limit")
else:
    print("\nnative-bench: worst A/X n/a, worst share n/a of the attainable limit")
