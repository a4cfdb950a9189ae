#!/bin/bash
# Every fixture's generated units pass `systemd-analyze verify --man=no` with EMPTY stderr
# (it exits 0 on warnings), next to stubs of Debian's nix-daemon units so the drop-ins load.
# Then once more with systemd running the real generator itself (--generators=yes).
# Runs as root: a private mount namespace puts the built `nix-ssd` at /usr/bin/nix-ssd (an
# overlay on /usr/bin that vanishes with the namespace), since verify checks ExecStart= paths.
# Usage: tests/verify.sh [TARGET_DIR]   (default: target/release)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/target/release}
CHECK_SUITE=verify; . "$top/tests/lib/check.sh"
[ -x "$bin/nix-ssd" ] && [ -x "$bin/nix-ssd-generator" ] || abort "verify: build first (cargo build --release)"
need_root   # a mount namespace

if [ "${NIX_SSD_VERIFY_INNER:-}" != 1 ]; then
    exec unshare --mount --propagation private env NIX_SSD_VERIFY_INNER=1 "$0" "$@"
fi
scratch=$(mktemp -d); trap 'umount -l /usr/bin 2>/dev/null; umount -l "$scratch" 2>/dev/null; rmdir "$scratch"' EXIT
mount -t tmpfs tmpfs "$scratch"
mkdir "$scratch/upper" "$scratch/work" "$scratch/gen" "$scratch/out" "$scratch/logs"
install -m755 "$bin/nix-ssd" "$scratch/upper/nix-ssd"
mount -t overlay overlay -o "lowerdir=/usr/bin,upperdir=$scratch/upper,workdir=$scratch/work" /usr/bin
stubs=$top/tests/stubs
skipped=0
# One check a case (tests/lib/check.sh): only the failures are printed, with what verify said.
CHECK_QUIET_PASS=1 CHECK_LOG_DIR=$scratch/logs CHECK_TAIL=1000
stderr_clean() { # COMMAND...: it exits 0 and prints nothing on stderr (its stdout is dropped)
    local err rc=0
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    [ $rc -eq 0 ] && [ -z "$err" ] && return 0
    echo "exit $rc:"; printf '%s\n' "$err"; return 1
}
verify_units() { # UNIT-DIR UNIT-FILES...: verify them next to the stubs of Debian's nix-daemon units
    local dir=$1; shift
    cd "$dir" && SYSTEMD_UNIT_PATH="$dir:$stubs:" stderr_clean systemd-analyze verify --man=no "$@" \
        "$stubs"/*.service "$stubs/nix-daemon.socket"
}
for case in "$top"/tests/cases/*/; do
    name=$(basename "$case"); exp=$case/expected
    mapfile -t units < <(cd "$exp" 2>/dev/null && find . -maxdepth 1 -type f \( -name '*.mount' -o -name '*.service' \) -printf '%f\n' | sort)
    if [ ${#units[@]} -eq 0 ]; then skipped=$((skipped + 1)); continue; fi
    check_log "verify $name" verify_units "$exp" "${units[@]/#/$exp/}"
done
# systemd runs the real generator (from its own directory) and loads what it wrote.
install -m755 "$bin/nix-ssd-generator" "$scratch/gen/"
verify_generated() { # KERNEL-CMDLINE
    # BLKID_FILE: not this host's blkid cache, which holds whatever images tests probed
    BLKID_FILE=/dev/null SYSTEMD_PROC_CMDLINE="$1" SYSTEMD_GENERATOR_PATH="$scratch/gen" SYSTEMD_UNIT_PATH="$stubs:" stderr_clean \
        systemd-analyze verify --man=no --generators=yes nix-ssd.service nix-daemon.service nix-daemon.socket nix-gc.service nix-optimise.service
}
for cmd in "" "nix-ssd=build" "nix-ssd.device=UUID=0b7c3a5e nix-ssd.device-timeout=0"; do
    check_log "verify --generators=yes [$cmd]" verify_generated "$cmd"
done
echo "verify: $CHECK_PASS fixture outputs and generator runs stderr-clean; $skipped cases write no units"
summary
