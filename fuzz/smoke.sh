#!/bin/bash
# Fuzz smoke run: builds the cargo-fuzz targets (nightly toolchain; --sanitizer none, the
# code under test has no unsafe) and runs each for SMOKE_SECONDS (default 20) from the
# committed corpus, printing executions and rate; fails only on a crash (or a build failure).
# Then the sample check: up to 200 pipeline inputs (committed corpus + what the smoke run
# found) that produce units are rendered and run through `systemd-analyze verify --man=no`,
# which must print nothing on stderr (root: private mount namespace with the built nix-ssd at
# /usr/bin/nix-ssd, as tests/verify.sh does; skipped with a message when not root).
# Usage: fuzz/smoke.sh   (SMOKE_SECONDS=20, SAMPLES=200, SAMPLE_EXTRA=DIR: more pipeline inputs)
# Last line: "fuzz smoke: 4 targets ok, sample M units verified".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); top=$(dirname "$here")
. "$top/tests/lib/check.sh"   # pass, fail, summary
secs=${SMOKE_SECONDS:-20}
export PATH=$HOME/.cargo/bin:$PATH
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
tc=${FUZZ_TOOLCHAIN:-nightly}
if ! rustup run "$tc" rustc --version >/dev/null 2>&1; then
    # no nightly on this machine: stable accepts cargo-fuzz's -Z flags with RUSTC_BOOTSTRAP=1
    echo "fuzz smoke: no $tc toolchain; using stable with RUSTC_BOOTSTRAP=1" >&2
    tc=stable; export RUSTC_BOOTSTRAP=1
fi
cd "$here"
cargo +"$tc" fuzz build -O --sanitizer none >/dev/null 2>build.log || { cat build.log; exit 1; }
bin=$here/target/x86_64-unknown-linux-gnu/release
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
for t in cmdline config blkid pipeline; do
    mkdir -p "$scratch/$t"; cp "$here/corpus/$t"/* "$scratch/$t/" 2>/dev/null || true
    rc=0
    "$bin/$t" "$scratch/$t" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$scratch/crash-$t-" >"$scratch/$t.log" 2>&1 || rc=$?
    runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$scratch/$t.log")
    rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$scratch/$t.log")
    if [ $rc -ne 0 ]; then
        fail "fuzz $t (exit $rc) after ${runs:-?} runs:"; grep -E -A12 'panicked|ERROR' "$scratch/$t.log" | head -40
        for c in "$scratch"/crash-"$t"-*; do [ -e "$c" ] && { cp "$c" "$here/"; echo "    input kept: fuzz/$(basename "$c")"; }; done
    else
        pass "fuzz $t: ${runs:-0} runs in ${secs}s (${rate:-0}/s), no crash"
    fi
done
[ "$CHECK_FAIL" -eq 0 ] || { echo "fuzz smoke: $CHECK_FAIL targets crashed"; exit 1; }

# Sample check: rendered units from pipeline inputs through systemd-analyze verify.
if [ "$(id -u)" != 0 ]; then echo "fuzz smoke: sample verify skipped (needs root)"; echo "fuzz smoke: 4 targets ok, sample 0 units verified"; exit 0; fi
(cd "$here/samples" && cargo build --release -q) || exit 1
(cd "$top" && cargo build --release -q --bin nix-ssd) || exit 1
mkdir -p "$scratch/samples"
n=$(SAMPLES=${SAMPLES:-200} "$here/samples/target/release/nix-ssd-render-samples" "$scratch/samples" \
    "$here/corpus/pipeline"/* "$scratch/pipeline"/* ${SAMPLE_EXTRA:+"$SAMPLE_EXTRA"/*})
NIX_SSD_CLI_BIN=$top/target/release/nix-ssd unshare --mount --propagation private bash -s "$scratch/samples" "$top/tests/stubs" "$top/tests/lib/check.sh" <<'INNER'
set -uo pipefail
samples=$1 stubs=$2; . "$3"; CHECK_SUITE="sample verify" CHECK_QUIET_PASS=1   # only failures printed
t=$(mktemp -d); mount -t tmpfs tmpfs "$t"; mkdir "$t/u" "$t/w"
install -m755 "$NIX_SSD_CLI_BIN" "$t/u/nix-ssd"
mount -t overlay overlay -o "lowerdir=/usr/bin,upperdir=$t/u,workdir=$t/w" /usr/bin
for d in "$samples"/*/; do
    mapfile -t units < <(cd "$d" && find . -maxdepth 1 -type f \( -name '*.mount' -o -name '*.service' \) -printf '%f\n' | sort)
    err=$(cd "$d" && SYSTEMD_UNIT_PATH="$d:$stubs:" systemd-analyze verify --man=no "${units[@]/#/$d}" \
          "$stubs"/*.service "$stubs/nix-daemon.socket" 2>&1 >/dev/null) && rc=0 || rc=$?
    if [ $rc -ne 0 ] || [ -n "$err" ]; then
        fail "systemd-analyze verify on sample $(basename "$d") (input $(cat "$d/.input")):"
        printf '%s\n' "$err" | sed 's/^/    /' | head -20
    else
        pass "sample $(basename "$d")"
    fi
done
umount -l /usr/bin; umount -l "$t"; rmdir "$t"
summary
INNER
echo "fuzz smoke: 4 targets ok, sample $n units verified"
