# shellcheck shell=bash
# Helpers of tests/packaging/run.sh (source it; needs root). Expensive things are cached under
# $PKG_CACHE: a Debian 13 tool tree (Nix 2.26 for nix-instantiate; Debian's rustc + the arm64
# Rust std + Debian's aarch64 cross gcc for the aarch64 build). No host name is written anywhere:
# the Debian mirror is read from the host's apt sources at run time.
PKG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$PKG_DIR/../.." && pwd)
PKG_CACHE=${PKG_CACHE:-/var/cache/nix-ssd-pkg}
PKG_LOG=${PKG_LOG:-$PKG_CACHE/logs}
BED_CACHE=${BED_CACHE:-/var/cache/nix-ssd-bed}
mkdir -p "$PKG_CACHE" "$PKG_LOG"
export DEBIAN_FRONTEND=noninteractive
# Debian 13 packages of the tool tree. nix-bin needs libdbi-perl spelled out (see the boot bed).
# The .deb test needs systemd (the package depends on it) and Debian's nix-daemon units
# (nix-setup-systemd, whose libpam-systemd needs dbus named: debootstrap does not resolve the
# virtual dbus-system-bus). A copy of the boot bed's tree has all of them, a debootstrap of our
# own had none: that hid the miss on warm machines.
# The Rust toolchain comes from trixie-backports (rustc 1.96 when written; trixie's own 1.85 is
# older than the crates' and the code's rust-version): rustc, cargo and the arm64 std.
TOOLS_BASE_PKGS=systemd,dbus,nix-bin,nix-setup-systemd,libdbi-perl
TOOLS_PKGS="rustc cargo libstd-rust-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
TOOLS_RELEASE=trixie-backports

# log, die and the pass/fail dialect of the suites: tests/lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
# The host's Debian mirror (same rule as tests/boot/lib.sh: deb822 first, then sources.list).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/debian-mirror.sh"

host_need() { # PACKAGE... : apt-get install those not installed yet
    local need=() p
    for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p"); done
    [ ${#need[@]} -eq 0 ] && return 0
    log "apt-get install ${need[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${need[@]}" >"$PKG_LOG/apt-host.log" 2>&1 \
        || { tail -20 "$PKG_LOG/apt-host.log" >&2; return 1; }
}

# in_tree DIR CMD...: run CMD chrooted in DIR with /proc, /dev, /sys and the host's DNS, in a
# private mount namespace (nothing stays mounted afterwards). Extra binds: IN_TREE_BINDS="src:dst ...".
in_tree() {
    local R=$1; shift
    unshare --mount --propagation private bash -c '
        R=$1; shift
        mount -t proc proc "$R/proc" && mount --rbind /dev "$R/dev" && mount --rbind /sys "$R/sys" || exit 99
        [ -f /etc/resolv.conf ] && { touch "$R/etc/resolv.conf"; mount --bind /etc/resolv.conf "$R/etc/resolv.conf"; }
        for b in ${IN_TREE_BINDS:-}; do mkdir -p "$R/${b#*:}"; mount --bind "${b%%:*}" "$R/${b#*:}" || exit 99; done
        exec chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"' _ "$R" "$@"
}

tools_key() { printf 'v3 trixie %s %s %s\n' "$TOOLS_BASE_PKGS" "$TOOLS_PKGS" "$TOOLS_RELEASE" | sha256sum | cut -c1-12; }

# tools_tree: prints the Debian 13 tool tree, building it once (a copy of the boot bed's raw
# debootstrap tree when that exists, else its own debootstrap), then Debian's Rust + arm64 std +
# aarch64 cross gcc. ~2 min the first time; cached as $PKG_CACHE/trixie-tools-<key>.
tools_tree() {
    local dir=$PKG_CACHE/trixie-tools-$(tools_key)
    if [ -e "$dir/.pkg-ready" ]; then echo "$dir"; return 0; fi
    local m base t0=$SECONDS; m=$(mirror_uri) || die "no Debian mirror in the host's apt sources"
    rm -rf "$dir.partial"
    base=$(ls -d "$BED_CACHE"/rootfs-*/ 2>/dev/null | while read -r d; do [ -x "$d/usr/bin/nix-instantiate" ] && echo "${d%/}" && break; done)
    if [ -n "$base" ]; then
        log "tool tree: copying the boot bed's Debian 13 tree $base"
        cp -a "$base" "$dir.partial" || die "copy failed"
    else
        host_need debootstrap || die "cannot install debootstrap"
        log "tool tree: debootstrap trixie (mirror from the host's apt sources)"
        debootstrap --variant=minbase --include="$TOOLS_BASE_PKGS" trixie "$dir.partial" "$m" \
            >"$PKG_LOG/debootstrap.log" 2>&1 || { tail -20 "$PKG_LOG/debootstrap.log" >&2; die "debootstrap failed"; }
    fi
    printf 'deb %s trixie main\ndeb %s trixie-backports main\n' "$m" "$m" > "$dir.partial/etc/apt/sources.list"
    rm -f "$dir.partial"/etc/apt/sources.list.d/*
    log "tool tree: apt-get install $TOOLS_PKGS"
    # shellcheck disable=SC2086
    in_tree "$dir.partial" sh -c "dpkg --add-architecture arm64 && apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t $TOOLS_RELEASE $TOOLS_PKGS && apt-get clean" \
        >"$PKG_LOG/tools-apt.log" 2>&1 || { tail -30 "$PKG_LOG/tools-apt.log" >&2; die "tool tree apt-get failed"; }
    touch "$dir.partial/.pkg-ready"; mv "$dir.partial" "$dir"
    log "tool tree ready in $((SECONDS - t0)) s"
    echo "$dir"
}

# in_overlay LOWER CMD...: like in_tree, on a throwaway overlay of LOWER (LOWER is not changed).
in_overlay() {
    local lower=$1; shift
    local w; w=$(mktemp -d /tmp/nix-ssd-pkg-ovl.XXXXXX); mkdir "$w/u" "$w/w" "$w/m"
    unshare --mount --propagation private bash -c '
        source "$1"; lower=$2; w=$3; shift 3
        mount -t overlay overlay -o "lowerdir=$lower,upperdir=$w/u,workdir=$w/w" "$w/m" || exit 99
        in_tree "$w/m" "$@"' _ "$PKG_DIR/lib.sh" "$lower" "$w" "$@"
    local rc=$?
    rm -rf "$w"; return $rc
}
