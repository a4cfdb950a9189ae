#!/bin/bash
# aarch64 (the Rock 5C's architecture) without rustup downloads: Debian's rustc with Debian's
# arm64 Rust std (libstd-rust-dev:arm64, both from trixie-backports) and Debian's aarch64 cross
# gcc, in the cached Debian 13 tool tree (lib.sh). Binaries run here under qemu-user (Debian
# 12's qemu-aarch64). Same Cargo.lock, same flags as `make build`, plus --target.
#   aarch64.sh build      cross-build; prints the directory holding nix-ssd and nix-ssd-generator
#   aarch64.sh fixtures   tests/fixtures.rs (built natively) with the aarch64 generator under qemu
#   aarch64.sh preview    `nix-ssd preview` of every fixture case: aarch64 (qemu) == x86-64
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
TRIPLE=aarch64-unknown-linux-gnu
XTARGET=$PKG_CACHE/target-aarch64
XBIN=$XTARGET/$TRIPLE/release
HTARGET=$PKG_CACHE/target-host
CARGO_HOME_HOST=${CARGO_HOME:-$HOME/.cargo}

build() {
    local T; T=$(tools_tree) || exit 2
    mkdir -p "$XTARGET" "$CARGO_HOME_HOST/registry"
    # crates: fetched on the host (crates.io), used offline inside the tree
    (cd "$TOP" && cargo fetch --locked >/dev/null 2>&1) || die "cargo fetch failed"
    IN_TREE_BINDS="$TOP:/src $CARGO_HOME_HOST/registry:/root/.cargo/registry $XTARGET:/target" in_tree "$T" sh -ec '
        cd /src
        export CARGO_TARGET_DIR=/target NIX_SSD_CLI=${NIX_SSD_CLI:-/usr/bin/nix-ssd}
        export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
        F="--release --locked --offline --target aarch64-unknown-linux-gnu"
        rustc --version; aarch64-linux-gnu-gcc --version | head -1
        cargo build $F --bin nix-ssd
        cargo rustc $F --bin nix-ssd-generator -- -C target-feature=+crt-static' >"$PKG_LOG/aarch64-build.log" 2>&1 \
        || { tail -30 "$PKG_LOG/aarch64-build.log" >&2; die "aarch64 build failed"; }
    echo "$XBIN"
}

# tests/fixtures.rs compiled for the host; the generator it runs (CARGO_BIN_EXE_nix-ssd-generator,
# a path fixed at compile time in a private target dir) is replaced by a wrapper that runs the
# aarch64 generator under qemu-aarch64. The wrapper counts its runs, so the test proves qemu ran.
fixtures() {
    [ -x "$XBIN/nix-ssd-generator" ] || die "build first: $0 build"
    command -v qemu-aarch64 >/dev/null || host_need qemu-user || die "qemu-user missing"
    local exe
    exe=$(cd "$TOP" && CARGO_TARGET_DIR=$HTARGET cargo test --release --locked --test fixtures --no-run \
            --message-format=json 2>>"$PKG_LOG/host-test-build.log" \
          | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="fixtures" and m.get("executable"): print(m["executable"])' | tail -1)
    [ -x "$exe" ] || { tail -20 "$PKG_LOG/host-test-build.log" >&2; die "building the fixture test failed"; }
    local gen=$HTARGET/release/nix-ssd-generator count=$PKG_CACHE/qemu-runs
    : > "$count"
    rm -f "$gen"
    printf '#!/bin/sh\necho run >> %s\nexec %s -0 "$0" %s "$@"\n' "$count" "$(command -v qemu-aarch64)" "$XBIN/nix-ssd-generator" > "$gen"
    chmod 755 "$gen"
    (cd "$TOP" && "$exe" --test-threads=1) || return 1
    local n; n=$(wc -l < "$count")
    echo "aarch64 generator runs under qemu-aarch64: $n"
    [ "$n" -ge 20 ]
}

# Every fixture case through `nix-ssd preview`: the aarch64 CLI (dynamic; its glibc from the
# tool tree's cross libc via QEMU_LD_PREFIX) must print exactly what the x86-64 one prints.
preview() {
    local T; T=$(tools_tree) || exit 2
    local host=$TOP/target/release/nix-ssd c n=0 bad=0 args
    [ -x "$host" ] || die "build the host binaries first (make build)"
    for c in "$TOP"/tests/cases/*/; do
        args=(preview --root "$c" --cmdline "$(cat "$c/cmdline" 2>/dev/null || true)")
        [ -f "$c/blkid.export" ] && args+=(--blkid-export "$c/blkid.export")
        if ! cmp -s <(env -i "$host" "${args[@]}" 2>&1) \
                    <(env -i QEMU_LD_PREFIX="$T/usr/aarch64-linux-gnu" qemu-aarch64 "$XBIN/nix-ssd" "${args[@]}" 2>&1); then
            echo "preview differs on aarch64: $c"; bad=$((bad + 1))
        fi
        n=$((n + 1))
    done
    echo "preview compared on $n fixture cases, $bad differ"
    [ $bad -eq 0 ] && [ $n -ge 20 ]
}

case ${1:-} in
    build) build ;;
    fixtures) fixtures ;;
    preview) preview ;;
    *) echo "usage: $0 build|fixtures|preview" >&2; exit 2 ;;
esac
