#!/bin/bash
# The whole test suite (README's test command; .ci/run calls it). Run as root on Debian 12:
# installs what the tests need, builds, and runs unit + fixture tests, systemd-analyze
# verification, kernel tests (real btrfs + overlayfs), fuzz smoke, the boot bed (systemd-nspawn
# and qemu boots of a Debian 13 guest: matrix, store safety, a systemd initrd built by dracut,
# symlink safety, fault matrix), the real boot loaders (U-Boot, systemd-boot, GRUB: which entry
# boots after boot-menu --default) and
# the benchmarks (figures only, never a pass/fail on time).
# Steps can be skipped for quick local runs: SKIP="boot bench" tests/run.sh
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
CHECK_SUITE=suites; . tests/lib/check.sh   # each step is one check; the closing line counts them
need_root   # mounts, loop devices, boots
export DEBIAN_FRONTEND=noninteractive
# FRESH=1: what a new machine sees. Every cache and scratch directory outside the checkout
# (guest trees, tool tree, LVM guest, cargo's registry and installed cargo tools, the native
# bench's inputs) starts empty, in a directory of its own under /var/tmp that is removed
# afterwards unless KEEP_FRESH=1. Run it in a clean clone (no target/) before resolving
# anything that touches installs or caches: a warm machine once hid a missing package here.
if [ "${FRESH:-0}" = 1 ]; then
    fresh=$(mktemp -d /var/tmp/nix-ssd-fresh.XXXXXX)
    export BED_CACHE=$fresh/bed-cache BED_WORK=$fresh/bed-work PKG_CACHE=$fresh/pkg-cache \
        LVM_CACHE=$fresh/lvm-cache LVM_WORK=$fresh/lvm-work CARGO_HOME=$fresh/cargo-home \
        NB_CACHE=$fresh/native-bench-cache
    export PATH=$CARGO_HOME/bin:$PATH
    echo "FRESH=1: empty caches under $fresh"
    [ "${KEEP_FRESH:-0}" = 1 ] || trap 'rm -rf "$fresh"' EXIT
fi
skip() { [[ " ${SKIP:-} " == *" $1 "* ]]; }
results=()   # "ok|FAIL|skipped NAME (N s)" of each step, told in the summary
step() { # NAME COMMAND...
    local name=$1; shift
    if skip "$name"; then results+=("skipped $name"); return; fi
    local t0=$SECONDS
    echo "::: $name: $*"
    if "$@"; then results+=("ok $name ($((SECONDS - t0)) s)")
    else results+=("FAIL $name ($((SECONDS - t0)) s)"); fi
}
deps() {
    local need=()
    for p in systemd btrfs-progs util-linux make; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
    [ ${#need[@]} -eq 0 ] || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; }
}
step deps deps
step lint bash -c 'cargo fmt --check && cargo clippy --locked --all-targets -- -D warnings'
step cargo-test cargo test --locked
step docs cargo test --locked --test docs   # man pages and README against the code (also in cargo-test; its own line here)
step build make build   # after cargo test, which rebuilds the generator dynamically
step verify tests/verify.sh "$top/target/release"
step packaging tests/packaging/run.sh
step kernel tests/kernel/run.sh
step trust env NIX_SSD_CLI="$top/target/release/nix-ssd" tests/kernel/trust.sh
step fuzz-smoke env SMOKE_SECONDS="${SMOKE_SECONDS:-10}" fuzz/smoke.sh
deb() { NIX_SSD_DEB=$(make -s deb | tail -1) && [ -f "$NIX_SSD_DEB" ] && echo "package: $NIX_SSD_DEB"; }
step deb deb
# The boot bed installs the Debian package into its guest (so packaging is tested by real boots).
bins=(GENERATOR="$top/target/release/nix-ssd-generator" NIX_SSD_CLI="$top/target/release/nix-ssd" NIX_SSD_DEB="${NIX_SSD_DEB:-}")
step boot env "${bins[@]}" tests/boot/run.sh
# which entry U-Boot's extlinux, systemd-boot and GRUB boot before and after `nix-ssd boot-menu --default` (qemu, ~1-2 min)
step loaders env NIX_SSD_CLI="$top/target/release/nix-ssd" tests/boot/loaders.sh
step store-safety env "${bins[@]}" tests/boot/store-safety.sh
step initrd env "${bins[@]}" tests/boot/initrd.sh   # the module's stage-1 unit in a real systemd initrd (dracut): a staged default boots without the SSD
step long-life env "${bins[@]}" tests/boot/long-life.sh   # rebuilds, rollback, reclaim, GC -d with and without the SSD
step symlink-safety env "${bins[@]}" tests/boot/symlink-safety.sh
step faults env "${bins[@]}" tests/boot/faults.sh
step sync-roots env NIX_SSD_CLI="$top/target/release/nix-ssd" tests/kernel/sync-roots.sh   # 100 000 upper paths, real Nix (the bed's tree)
step lvm env "${bins[@]}" tests/lvm/run.sh
step bench benches/generator.sh
# The native I/O bench, quick form (eMMC, the default, all of /nix on the SSD; 1 round, 7 of
# the 9 workloads; 3-5 min once its inputs are cached in /var/cache/nix-native-bench, ~1 min
# more to build them; figures only): the full form is `benches/native/run.sh` (4 configurations
# x 3 rounds, ~20 min on a quiet host), see its README.
step native-bench env NIX_SSD_CLI="$top/target/release/nix-ssd" ROUNDS=1 CONFIGS="emmc default ssd-nix" \
    WORKLOADS="eval import hook add build rebuild gc" benches/native/run.sh
echo; echo "=== summary"
for r in "${results[@]}"; do
    case $r in ok\ *) pass "${r#ok }" ;; FAIL\ *) fail "${r#FAIL }" ;; *) info "${r#skipped }: skipped" ;; esac
done
summary
