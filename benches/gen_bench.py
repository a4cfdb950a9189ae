#!/usr/bin/env python3
"""Interleaved spawn benchmark used by benches/generator.sh.

Each sample: fresh NORMAL/EARLY/LATE dirs (untimed), then
t0 = perf_counter_ns(); posix_spawn(cmd); wait4(pid) -> rusage; t1.
Wall = t1 - t0. The order of the three commands is shuffled every round.

Peak RSS is measured in separate, untimed interleaved runs: the child is
started under ptrace (PTRACE_TRACEME + PTRACE_O_TRACEEXIT) and VmHWM is read
from /proc/PID/status at the exit stop, i.e. the high-water mark of the
exec'd program's own address space. (wait4's ru_maxrss, and therefore GNU
time's %M, also counts the pre-exec image of the spawning process: for a
Python parent every command would show the parent's ~15 MB.)
"""
import ctypes
import argparse
import os
import random
import shutil
import statistics
import sys
import time


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


PTRACE_TRACEME, PTRACE_CONT, PTRACE_SETOPTIONS = 0, 7, 0x4200
PTRACE_O_TRACEEXIT, PTRACE_EVENT_EXIT = 0x40, 6
_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long


def peak_rss_kib(exe, argv, env, devnull):
    """VmHWM (KiB) of exe's own image at exit, and its exit code."""
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            _libc.ptrace(PTRACE_TRACEME, 0, None, None)
            os.execve(exe, argv, env)
        finally:
            os._exit(127)
    hwm = None
    while True:
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            return hwm, os.waitstatus_to_exitcode(status)
        sig = os.WSTOPSIG(status)
        if status >> 16 == PTRACE_EVENT_EXIT:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = int(line.split()[1])
            _libc.ptrace(PTRACE_CONT, pid, None, None)
        elif sig == 5 and hwm is None:  # SIGTRAP after execve
            _libc.ptrace(PTRACE_SETOPTIONS, pid, None, ctypes.c_void_p(PTRACE_O_TRACEEXIT))
            _libc.ptrace(PTRACE_CONT, pid, None, None)
        else:  # pass other signals through
            _libc.ptrace(PTRACE_CONT, pid, None, ctypes.c_void_p(sig))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--cmdline", default="ro quiet")
    ap.add_argument("--ours", required=True)
    ap.add_argument("--ours-root", required=True)
    ap.add_argument("--fstab-gen", required=True)
    ap.add_argument("--fstab", required=True)
    ap.add_argument("--floor", default="/bin/true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rss-rounds", type=int, default=20)
    a = ap.parse_args()

    base = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "SYSTEMD_PROC_CMDLINE": a.cmdline,
        "SYSTEMD_LOG_LEVEL": "err",
        "SYSTEMD_LOG_TARGET": "console",
        "SYSTEMD_IN_INITRD": "0",
        "LANG": "C",
    }
    cmds = {
        "ours": (a.ours, dict(base, NIX_SSD_GENERATOR_ROOT=a.ours_root)),
        "fstab": (a.fstab_gen, dict(base, SYSTEMD_FSTAB=a.fstab)),
        "floor": (a.floor, dict(base)),
    }
    os.makedirs(a.workdir, exist_ok=True)
    devnull = os.open("/dev/null", os.O_RDWR)
    fa = [
        (os.POSIX_SPAWN_DUP2, devnull, 0),
        (os.POSIX_SPAWN_DUP2, devnull, 1),
        (os.POSIX_SPAWN_DUP2, devnull, 2),
    ]
    wall = {k: [] for k in cmds}
    rss = {k: [] for k in cmds}
    bad = {k: 0 for k in cmds}
    rnd = random.Random(a.seed)
    seq = 0
    names = list(cmds)
    for r in range(a.warmup + a.rounds):
        rnd.shuffle(names)
        for name in names:
            exe, env = cmds[name]
            seq += 1
            d = os.path.join(a.workdir, str(seq))
            dirs = [os.path.join(d, x) for x in ("normal", "early", "late")]
            for x in dirs:
                os.makedirs(x)
            argv = [exe] + dirs
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(exe, argv, env, file_actions=fa)
            _, status = os.waitpid(pid, 0)
            t1 = time.perf_counter_ns()
            shutil.rmtree(d)
            if os.waitstatus_to_exitcode(status) != 0:
                bad[name] += 1
            if r >= a.warmup:
                wall[name].append((t1 - t0) / 1e6)

    for r in range(a.rss_rounds):
        rnd.shuffle(names)
        for name in names:
            exe, env = cmds[name]
            seq += 1
            d = os.path.join(a.workdir, str(seq))
            dirs = [os.path.join(d, x) for x in ("normal", "early", "late")]
            for x in dirs:
                os.makedirs(x)
            hwm, code = peak_rss_kib(exe, [exe] + dirs, env, devnull)
            shutil.rmtree(d)
            if code != 0:
                bad[name] += 1
            if hwm is not None:
                rss[name].append(hwm)

    print(f"wall: rounds={a.rounds} (+{a.warmup} warm-up, discarded), interleaved, order shuffled per round; "
          f"peak RSS: VmHWM at exit over {a.rss_rounds} separate interleaved rounds")
    print(f"{'command':<8} {'median ms':>10} {'p90 ms':>8} {'min ms':>8} {'mean ms':>8} "
          f"{'VmHWM KiB (median/max)':>25} {'nonzero exits':>14}")
    res = {}
    for name in ("ours", "fstab", "floor"):
        w = wall[name]
        m, p90 = statistics.median(w), pct(w, 90)
        res[name] = (m, p90)
        print(f"{name:<8} {m:>10.3f} {p90:>8.3f} {min(w):>8.3f} {statistics.fmean(w):>8.3f} "
              f"{int(statistics.median(rss[name])):>16}/{max(rss[name]):<8} {bad[name]:>14}")
    print("  ours  =", cmds["ours"][0])
    print("  fstab =", cmds["fstab"][0])
    print("  floor =", cmds["floor"][0])
    (om, op), (fm, fp), (lm, lp) = res["ours"], res["fstab"], res["floor"]
    print(f"ratio ours/fstab: median {om / fm:.2f}x  p90 {op / fp:.2f}x   (target <= 0.50x: "
          f"{'met' if om / fm <= 0.5 else 'NOT met'} on median)")
    print(f"ratio ours/floor: median {om / lm:.2f}x  p90 {op / lp:.2f}x   (target <= 1.30x: "
          f"{'met' if om / lm <= 1.3 else 'NOT met'} on median)")
    print(f"ratio fstab/floor: median {fm / lm:.2f}x")
    print(f"excess over floor (median): ours {om - lm:+.3f} ms, fstab {fm - lm:+.3f} ms")
    if any(bad.values()):
        print("WARNING: non-zero exits:", bad, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
