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
[ -x "$bin/nix-ssd" ] && [ -x "$bin/nix-ssd-generator" ] || { echo "verify: build first (cargo build --release)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "verify: needs root (mount namespace)" >&2; exit 2; }

if [ "${NIX_SSD_VERIFY_INNER:-}" != 1 ]; then
    exec unshare --mount --propagation private env NIX_SSD_VERIFY_INNER=1 "$0" "$@"
fi
scratch=$(mktemp -d); trap 'umount -l /usr/bin 2>/dev/null; umount -l "$scratch" 2>/dev/null; rmdir "$scratch"' EXIT
mount -t tmpfs tmpfs "$scratch"
mkdir "$scratch/upper" "$scratch/work" "$scratch/gen" "$scratch/out"
install -m755 "$bin/nix-ssd" "$scratch/upper/nix-ssd"
mount -t overlay overlay -o "lowerdir=/usr/bin,upperdir=$scratch/upper,workdir=$scratch/work" /usr/bin
stubs=$top/tests/stubs
pass=0; fail=0; skipped=0
check() { # NAME UNIT-DIR UNIT-FILES...
    local name=$1 dir=$2; shift 2
    local err rc=0
    err=$(cd "$dir" && SYSTEMD_UNIT_PATH="$dir:$stubs:" systemd-analyze verify --man=no "$@" \
          "$stubs"/*.service "$stubs/nix-daemon.socket" 2>&1 >/dev/null) || rc=$?
    if [ $rc -ne 0 ] || [ -n "$err" ]; then
        echo "FAIL verify $name (exit $rc):"; printf '%s\n' "$err" | sed 's/^/    /'; fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
}
for case in "$top"/tests/cases/*/; do
    name=$(basename "$case"); exp=$case/expected
    mapfile -t units < <(cd "$exp" 2>/dev/null && find . -maxdepth 1 -type f \( -name '*.mount' -o -name '*.service' \) -printf '%f\n' | sort)
    if [ ${#units[@]} -eq 0 ]; then skipped=$((skipped + 1)); continue; fi
    check "$name" "$exp" "${units[@]/#/$exp/}"
done
# systemd runs the real generator (from its own directory) and loads what it wrote.
install -m755 "$bin/nix-ssd-generator" "$scratch/gen/"
for cmd in "" "nix-ssd=build" "nix-ssd.device=UUID=0b7c3a5e nix-ssd.device-timeout=0"; do
    err=$(SYSTEMD_PROC_CMDLINE="$cmd" SYSTEMD_GENERATOR_PATH="$scratch/gen" SYSTEMD_UNIT_PATH="$stubs:" \
          systemd-analyze verify --man=no --generators=yes nix-ssd.service nix-daemon.service nix-daemon.socket nix-gc.service nix-optimise.service 2>&1 >/dev/null) && rc=0 || rc=$?
    if [ $rc -ne 0 ] || [ -n "$err" ]; then
        echo "FAIL verify --generators=yes [$cmd] (exit $rc):"; printf '%s\n' "$err" | sed 's/^/    /'; fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
done
echo "verify: $pass fixture outputs and generator runs stderr-clean; $skipped cases write no units"
echo "verify: $pass passed, $fail failed"
[ $fail -eq 0 ]
