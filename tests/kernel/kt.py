#!/usr/bin/env python3
"""Helpers for tests/kernel/run.sh: unit-file parsing, systemd-style ExecStart
splitting, /proc/self/mountinfo queries and errno-exact file operations.

Subcommands (all print to stdout, exit non-zero on error):
  unit FILE SECTION KEY        last value of KEY in [SECTION] (empty + rc 1 if absent)
  execstart FILE               argv of the last ExecStart= in [Service], one per line,
                               prefix chars (-@:+!) stripped; rc 2 on unsupported specifiers
  mi-top MOUNTPOINT            topmost mount on MOUNTPOINT:
                               fstype US mount_opts US super_opts US optional US root US source (US = \x1f)
  mi-list                      "mountpoint fstype source root" for every mount (for before/after diffs)
  mi-count FSTYPE              number of mounts of FSTYPE
  mi-under FSTYPE PREFIX       mountpoints of FSTYPE at or below PREFIX
  op append|rm|rename|rmtree PATH [DST]
                               do the operation; print "ok" or "errno NAME: msg"
"""
import errno
import os
import shutil
import sys


def unescape_mi(s):
    # mountinfo escapes space, tab, newline, backslash as \ooo
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mountinfo():
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            a = line.split()
            sep = a.index("-")
            res.append(
                dict(
                    id=a[0],
                    parent=a[1],
                    root=unescape_mi(a[3]),
                    mp=unescape_mi(a[4]),
                    opts=a[5],
                    optional=" ".join(a[6:sep]),
                    fstype=a[sep + 1],
                    source=unescape_mi(a[sep + 2]),
                    superopts=a[sep + 3] if len(a) > sep + 3 else "",
                )
            )
    return res


def parse_unit(path):
    sections = {}
    cur = None
    with open(path) as f:
        lines = f.read().split("\n")
    buf = ""
    for raw in lines:
        line = buf + raw
        buf = ""
        if line.endswith("\\"):
            buf = line[:-1] + " "
            continue
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("[") and s.endswith("]"):
            cur = s[1:-1]
            sections.setdefault(cur, [])
            continue
        if "=" in s and cur is not None:
            k, v = s.split("=", 1)
            sections[cur].append((k.strip(), v.strip()))
    return sections


def unit_get(path, section, key):
    vals = [v for k, v in parse_unit(path).get(section, []) if k == key]
    return vals[-1] if vals else None


ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
       "v": "\v", "\\": "\\", '"': '"', "'": "'", "s": " "}


def systemd_split(s):
    """Approximation of systemd's extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)."""
    words, cur, have, i, q = [], [], False, 0, None
    while i < len(s):
        c = s[i]
        if q is None and c in " \t\n":
            if have:
                words.append("".join(cur))
                cur, have = [], False
            i += 1
            continue
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n in ESC:
                cur.append(ESC[n]); i += 2; have = True; continue
            if n == "x" and i + 3 < len(s):
                cur.append(chr(int(s[i + 2:i + 4], 16))); i += 4; have = True; continue
            cur.append(n); i += 2; have = True; continue
        if q is None and c in "\"'":
            q = c; have = True; i += 1; continue
        if q is not None and c == q:
            q = None; i += 1; continue
        cur.append(c); have = True; i += 1
    if q is not None:
        raise SystemExit("unterminated quote in ExecStart=")
    if have:
        words.append("".join(cur))
    return words


def main():
    cmd = sys.argv[1]
    if cmd == "unit":
        v = unit_get(sys.argv[2], sys.argv[3], sys.argv[4])
        if v is None:
            return 1
        print(v)
    elif cmd == "execstart":
        v = unit_get(sys.argv[2], "Service", "ExecStart")
        if v is None:
            print("no ExecStart= in [Service]", file=sys.stderr)
            return 1
        argv = systemd_split(v)
        while argv and argv[0] and argv[0][0] in "-@:+!":
            argv[0] = argv[0][1:]
        out = []
        for a in argv:
            # systemd expands specifiers: %% -> %, anything else we cannot emulate
            b, j = [], 0
            while j < len(a):
                if a[j] == "%":
                    if a[j + 1:j + 2] == "%":
                        b.append("%"); j += 2; continue
                    print("unsupported specifier in ExecStart arg %r" % a, file=sys.stderr)
                    return 2
                b.append(a[j]); j += 1
            out.append("".join(b))
        print("\n".join(out))
    elif cmd == "mi-top":
        mp = sys.argv[2]
        top = [m for m in mountinfo() if m["mp"] == mp]
        if not top:
            return 1
        m = top[-1]
        print("\x1f".join([m["fstype"], m["opts"], m["superopts"], m["optional"], m["root"], m["source"]]))
    elif cmd == "mi-list":
        for m in mountinfo():
            print(m["mp"], m["fstype"], m["source"], m["root"])
    elif cmd == "mi-count":
        print(sum(1 for m in mountinfo() if m["fstype"] == sys.argv[2]))
    elif cmd == "mi-under":
        p = sys.argv[3].rstrip("/")
        for m in mountinfo():
            if m["fstype"] == sys.argv[2] and (m["mp"] == p or m["mp"].startswith(p + "/")):
                print(m["mp"])
    elif cmd == "op":
        op, path = sys.argv[2], sys.argv[3]
        try:
            if op == "append":
                with open(path, "a") as f:
                    f.write("appended\n")
            elif op == "rm":
                os.unlink(path)
            elif op == "rename":
                os.rename(path, sys.argv[4])
            elif op == "rmtree":
                shutil.rmtree(path)
            elif op == "write":
                with open(path, "w") as f:
                    f.write("new\n")
            else:
                return 2
            print("ok")
        except OSError as e:
            print("errno %s: %s" % (errno.errorcode.get(e.errno, e.errno), e.strerror))
    else:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
