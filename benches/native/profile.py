#!/usr/bin/env python3
"""Where the CPU of each step went, from the perf profiles of a PERF=1 run (RES/perf/CFG-REP-STEP.data:
system-wide cpu-clock samples with call chains).
   python3 profile.py RESDIR [CFG...]
Only the samples of the bench's own work count: Nix's processes and the builders' tools, the
kernel threads that work for them (writeback, loop workers, btrfs workers); other work on a
shared host (compilers, VMs) and idle are left out. Each step's samples are put into buckets
by the first matching frame of their call chain, leaf first, so a btrfs function called by
overlayfs counts as overlayfs ("under overlayfs"), not as btrfs; then the top kernel functions
and the user-space libraries. Milliseconds = samples x the sampling period (perf's -F 999: ~1 ms)."""
import collections
import glob
import os
import re
import subprocess
import sys

res = sys.argv[1] if len(sys.argv) > 1 else "target/native-bench"
only = set(sys.argv[2:])
OURS = re.compile(r"^(nix.*|sh|bash|dash|env|cp|cat|find|head|split|tar|mkdir|ln|chmod|rm|mv|sync|timeout|"
                  r"readlink|basename|dirname|printf|true|kworker.*|loop\d+|btrfs.*|jbd2.*|kswapd.*|"
                  r"ext4.*|writeback|kcompactd.*|\S*-native-bench|perf.*)$")
SKIP_PERF = re.compile(r"^perf")
# buckets: overlayfs's own work is what the outermost ovl_ function of the call chain does
# (a lookup in both layers, a create through the work dir, a setattr that copies up, an xattr
# call), counted whole, including what it asks of btrfs or ext4 for it; data reads and writes that
# overlayfs passes through (ovl_read_iter, ovl_write_iter, ...) count as the file system's that
# serves them, as they would without the overlay. Everything else goes to the innermost file
# system (the leaf's), then to the block layer, memory, exec.
PASS = ("ovl_write_iter", "ovl_read_iter", "ovl_splice_read", "ovl_splice_write", "ovl_fsync", "ovl_flush",
        "ovl_mmap", "ovl_fadvise", "ovl_fallocate", "ovl_copyfile", "ovl_remap_file_range", "ovl_llseek")
FS = [("btrfs", ("btrfs_", "__btrfs")), ("ext4/jbd2", ("ext4_", "__ext4", "jbd2"))]
OTHER = [
    ("loop devices / block layer", ("loop_", "lo_", "blk_", "submit_bio", "__submit_bio", "dio_", "iomap_dio")),
    ("page cache / memory (memcg, reclaim, faults)", ("shrink_", "mem_cgroup", "try_charge", "filemap_", "do_anonymous",
                                                      "handle_mm_fault", "exc_page_fault", "clear_page", "copy_page",
                                                      "folio_", "__folio", "drop_caches")),
    ("exec / fork / exit", ("__x64_sys_execve", "do_execve", "kernel_clone", "copy_process", "do_exit", "bprm_",
                            "load_elf", "mmput")),
    ("path walk / dcache (VFS)", ("link_path_walk", "path_lookupat", "walk_component", "d_alloc", "__d_lookup", "lookup_")),
]


def bucket(chain):
    """chain: kernel frames from the root (syscall entry) to the leaf."""
    ovl = next((f for f in chain if f.startswith("ovl_")), None)
    if ovl and ovl not in PASS:
        op = re.sub(r"^ovl_(do_)?", "", ovl)
        return "overlayfs: " + ("xattr" if "xattr" in op else op)
    for name, pre in FS:   # innermost file system
        if any(f.startswith(pre) for f in chain):
            inner = max((i for i, f in enumerate(chain) for n, p in FS if f.startswith(p)), default=-1)
            leaf_fs = next(n for n, p in FS if chain[inner].startswith(p))
            return leaf_fs + (" (data through the overlay)" if ovl else "")
    for name, pre in OTHER:
        if any(f.startswith(pre) for f in chain):
            return name
    return "other kernel"


def read(path):
    """(comm, dso, sym, [kernel chain from the root]) per sample."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,ip,sym,dso", "--no-inline"],
                         capture_output=True, text=True).stdout
    samples, cur = [], None
    for line in out.split("\n"):
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = None
            continue
        if cur is None and not line.startswith(("\t", " ")):
            cur = [line.strip(), []]
            continue
        if cur is not None:
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                sym, _, dso = parts[1].rpartition(" (")
                cur[1].append((sym.split("+")[0], dso.rstrip(")")))
    if cur:
        samples.append(cur)
    return samples


def analyse(path):
    buckets, ksym, udso, n_all = collections.Counter(), collections.Counter(), collections.Counter(), 0
    comms = collections.Counter()
    for comm, frames in read(path):
        n_all += 1
        if not OURS.match(comm) or SKIP_PERF.match(comm) or not frames:
            continue
        leaf, dso = frames[0]
        if leaf in ("pv_native_safe_halt", "default_idle", "cpu_idle_poll") or comm.startswith("swapper"):
            continue
        comms[re.sub(r"[/:]\S*$", "", comm)] += 1
        if "kernel" in dso:
            chain = [f for f, d in reversed(frames) if "kernel" in d]   # from the root to the leaf
            buckets[bucket(chain)] += 1
            ksym[leaf] += 1
        else:
            buckets["user space: " + os.path.basename(dso)] += 1
            udso[os.path.basename(dso)] += 1
    return buckets, ksym, comms, n_all


files = sorted(glob.glob(os.path.join(res, "perf", "*.data")))
by = collections.defaultdict(list)
for f in files:
    cfg, rep, step = re.match(r"(.+)-(\d+)-([a-z]+)\.data$", os.path.basename(f)).groups()
    if only and cfg not in only:
        continue
    by[step].append((cfg, rep, f))
for step in ["activate", "eval", "import", "hook", "add", "build", "rebuild", "bigbuild", "read", "gc"]:
    if step not in by:
        continue
    print(f"== {step}")
    for cfg, rep, f in sorted(by[step]):
        b, k, c, n = analyse(f)
        tot = sum(b.values())
        print(f"  {cfg} round {rep}: {tot} ms of the bench's CPU (of {n} samples); by process: "
              + ", ".join(f"{x} {v}" for x, v in c.most_common(6)))
        ovl = sum(v for name, v in b.items() if name.startswith("overlayfs"))
        print(f"     {ovl:6d} ms {ovl / max(tot, 1):5.1%}  overlayfs's own work, all of it")
        for name, v in b.most_common(12):
            print(f"     {v:6d} ms {v / max(tot, 1):5.1%}  {name}")
        print("     top kernel functions: " + ", ".join(f"{s} {v}" for s, v in k.most_common(10)))
