#!/usr/bin/env bash
# Generator start-up benchmark: nix-ssd-generator vs systemd-fstab-generator fed
# the equivalent fstab, vs the exec floor (/bin/true), interleaved in one run.
#
#   bash benches/generator.sh            # ROUNDS=200 WARMUP=10 by default
#   ROUNDS=500 bash benches/generator.sh
#
# Prints figures only; it never fails on timing (exit != 0 only if a generator
# cannot run at all or the binary cannot be built).
#
# Method (benches/gen_bench.py): each sample is posix_spawn() + wait4() of the
# command from a small Python harness; wall time = perf_counter_ns around that,
# peak RSS = the child's own ru_maxrss from wait4 (no /usr/bin/time in the path).
# All three commands get the same argv shape (NORMAL EARLY LATE, fresh empty dirs
# per sample, created and removed outside the timed region), the same
# environment (SYSTEMD_LOG_LEVEL=err, SYSTEMD_LOG_TARGET=console, stderr to
# /dev/null, SYSTEMD_PROC_CMDLINE fixed), and the round order is shuffled every
# round so no command always runs first/after the same one.
#
# Environment knobs: ROUNDS, WARMUP, NIX_SSD_GENERATOR (binary path), NO_BUILD=1,
# FSTAB_GENERATOR (default /lib/systemd/system-generators/systemd-fstab-generator).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OURS=${NIX_SSD_GENERATOR:-$REPO/target/release/nix-ssd-generator}
FSTAB_GEN=${FSTAB_GENERATOR:-/lib/systemd/system-generators/systemd-fstab-generator}
FLOOR=/bin/true
ROUNDS=${ROUNDS:-200}
WARMUP=${WARMUP:-10}

if ! command -v python3 >/dev/null; then
    apt-get install -y -qq python3 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3; }
fi
if [[ ! -x "$FSTAB_GEN" ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null 2>&1 || true
fi
if [[ ! -x "$OURS" && -z "${NO_BUILD:-}" ]]; then
    (cd "$REPO" && cargo build --release)
fi
[[ -x "$OURS" ]] || { echo "nix-ssd-generator not found at $OURS" >&2; exit 1; }
[[ -x "$FSTAB_GEN" ]] || { echo "systemd-fstab-generator not found at $FSTAB_GEN" >&2; exit 1; }

W=$(mktemp -d /var/tmp/nix-ssd-bench.XXXXXX)
# Output dirs live on tmpfs, like /run/systemd/generator*: on ext4 the per-sample
# rm -rf + mkdir churn makes inode allocation (recently_deleted scans) dominate.
if [[ -d /dev/shm && -w /dev/shm ]]; then RUNS=$(mktemp -d /dev/shm/nix-ssd-bench.XXXXXX); else RUNS=$W/runs; fi
trap 'rm -rf "$W" "$RUNS"' EXIT

# ---- fixed inputs
# Ours: a temp root holding a fixed config (defaults spelled out: overlay mode,
# device by label, /mnt/nix-ssd); no /run/blkid, /run/udev, /dev/disk in it.
mkdir -p "$W/root/etc/systemd"
cat >"$W/root/etc/systemd/nix-ssd-generator.conf" <<'EOF'
[nix-ssd]
mode = overlay
device = LABEL=NIX_SSD
mount-point = /mnt/nix-ssd
EOF
CMDLINE="ro quiet"

# One preflight run of ours: must succeed; its output defines the equivalent fstab.
mkdir -p "$W/pre/n" "$W/pre/e" "$W/pre/l"
if ! env SYSTEMD_PROC_CMDLINE="$CMDLINE" NIX_SSD_GENERATOR_ROOT="$W/root" SYSTEMD_LOG_TARGET=console \
    "$OURS" "$W/pre/n" "$W/pre/e" "$W/pre/l" 2>"$W/pre.log"; then
    echo "preflight: nix-ssd-generator failed:" >&2; cat "$W/pre.log" >&2; exit 1
fi
echo "== preflight output of nix-ssd-generator (fixed config: mode=overlay device=LABEL=NIX_SSD mount-point=/mnt/nix-ssd)"
(cd "$W/pre/n" && find . \( -type f -o -type l \) | sort | sed 's/^/   /')

# Device timeout our drop-in sets, reused for x-systemd.device-timeout= so both
# generators emit the same device drop-in.
TMO=$(grep -hs '^JobRunningTimeoutSec=' "$W"/pre/n/*.device.d/*.conf | head -1 | cut -d= -f2)
TMO=${TMO:-90s}

# Equivalent fstab: the two btrfs subvolume mounts we generate, same What/Where/
# Options, plus x-systemd.device-timeout (-> .device.d drop-in) and nofail
# (-> Wants= from local-fs.target instead of Requires=). passno 0: no fsck unit.
# Not reproducible with fstab: nix-ssd.service, its multi-user.target.wants link
# and the nix-daemon.{service,socket} drop-ins (ours writes strictly more files).
cat >"$W/fstab" <<EOF
LABEL=NIX_SSD /mnt/nix-ssd/overlay btrfs subvol=@overlay,noatime,nofail,x-systemd.device-timeout=$TMO 0 0
LABEL=NIX_SSD /mnt/nix-ssd/build   btrfs subvol=@build,noatime,nofail,x-systemd.device-timeout=$TMO 0 0
EOF
mkdir -p "$W/pref/n" "$W/pref/e" "$W/pref/l"
env SYSTEMD_PROC_CMDLINE="$CMDLINE" SYSTEMD_FSTAB="$W/fstab" SYSTEMD_IN_INITRD=0 SYSTEMD_LOG_TARGET=console \
    "$FSTAB_GEN" "$W/pref/n" "$W/pref/e" "$W/pref/l" 2>"$W/pref.log" ||
    { echo "preflight: systemd-fstab-generator failed:" >&2; cat "$W/pref.log" >&2; exit 1; }
echo "== equivalent fstab fed to $FSTAB_GEN (systemd $(dpkg-query -W -f="\${Version}" systemd 2>/dev/null || true)) via SYSTEMD_FSTAB:"
sed 's/^/   /' "$W/fstab"
echo "== its output:"
(cd "$W/pref/n" && find . \( -type f -o -type l \) | sort | sed 's/^/   /')
echo "== host: $(uname -r), $(nproc) CPUs, $(python3 --version), load $(cut -d' ' -f1-3 /proc/loadavg); output dirs on $(stat -f -c %T "$RUNS")"
echo

python3 "$HERE/gen_bench.py" --rounds "$ROUNDS" --warmup "$WARMUP" --workdir "$RUNS" \
    --cmdline "$CMDLINE" --ours "$OURS" --ours-root "$W/root" \
    --fstab-gen "$FSTAB_GEN" --fstab "$W/fstab" --floor "$FLOOR"
