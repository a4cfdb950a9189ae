#!/bin/bash
# Packaging tests (run as root on Debian 12; installs what it needs). Last line:
#   packaging: N passed, M failed
# - man pages: groff/man lint clean; every config key of src/generator/config.rs documented; the example
#   config is read by the real nix-ssd without a warning
# - make install DESTDIR=… lays out exactly the expected files; make uninstall removes them;
#   a PREFIX the binaries were not built for is refused; the pkg-config fallback
# - the .deb (dpkg-deb from make install): contents, control, then dpkg -i / run the installed
#   generator / systemd-analyze verify its units / dpkg -r in a throwaway overlay of a Debian 13 tree
# - Nix: every .nix file through the real `nix-instantiate --parse` (Nix 2.26 of Debian 13); the
#   module, package and flake evaluated by the real evaluator with the real nixpkgs `lib`
#   (lib.evalModules; ../shared/nixpkgs/nixpkgs-lib.tar.xz beside the checkout, or $NIXPKGS_LIB)
#   against the NixOS options the module touches (tests/packaging/nix): every mode, aarch64-linux
#   and x86_64-linux, extlinux / GRUB / systemd-boot, a minimal older NixOS; the module's pinning
#   hooks run with a recording nix-ssd; the package's check phase as Nix runs it (NIX_SSD_CLI set, in an
#   emulation of the build sandbox: non-root, stdenv's PATH, no /usr/bin)
# - aarch64: cross build with Debian's toolchain, tests/fixtures.rs against the aarch64 generator
#   under qemu-aarch64, `nix-ssd preview` aarch64 == x86-64 on every fixture case, arm64 .deb
# Skip groups: PKG_SKIP="aarch64 deb-install" tests/packaging/run.sh
set -uo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$TOP"
CHECK_SUITE=packaging; need_root   # root: chroot, mounts
PATH=$PATH:$HOME/.cargo/bin
scratch=$(mktemp -d /tmp/nix-ssd-pkg.XXXXXX); trap 'rm -rf "$scratch"' EXIT
skipped() { [[ " ${PKG_SKIP:-} " == *" $1 "* ]]; }
# one test: check_log NAME COMMAND... (tests/lib/check.sh), output in $PKG_LOG/t-NAME.log,
# shown on failure (PKG_VERBOSE=1: on success too)
CHECK_LOG_DIR=$PKG_LOG; CHECK_VERBOSE=${PKG_VERBOSE:-}

# ------------------------------------------------------------------ setup
check_log host-packages host_need pkg-config qemu-user groff-base man-db binutils python3 make busybox
check_log make-build make build
HOSTBIN=$TOP/target/release

# ------------------------------------------------------------------ man pages
man_lint() {
    local p out
    for p in packaging/man/*.[58]; do
        out=$(groff -man -ww -z -Tutf8 "$p" 2>&1) || return 1
        [ -z "$out" ] || { echo "$p: $out"; return 1; }
        out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -l "$p" 2>&1 >/dev/null)
        [ -z "$out" ] || { echo "$p: $out"; return 1; }
        out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$p" 2>/dev/null); grep -q '^NAME' <<<"$out" || { echo "$p: no NAME"; return 1; }
        echo "$p: clean"
    done
}
man_keys() { # every key config.rs knows is documented in conf(5) and present in the example
    local keys k bad=0 page
    page=$(man -l packaging/man/nix-ssd-generator.conf.5 2>/dev/null)
    keys=$(sed -n '/^const KNOWN: &str =/,/;/p' src/generator/config.rs | grep -o '"[^"]*"' | tr -d '",')
    [ -n "$keys" ] || { echo "cannot read KNOWN from src/generator/config.rs"; return 1; }
    for k in $keys; do
        grep -q -- "$k=" <<<"$page" || { echo "conf(5) lacks $k"; bad=1; }
        grep -Eq "^#?$k = " packaging/nix-ssd-generator.conf.example || { echo "example lacks $k"; bad=1; }
    done
    echo "keys: $keys"; return $bad
}
example_clean() { # the example, as /etc/systemd/nix-ssd-generator.conf, gives no warning
    local r=$scratch/example; mkdir -p "$r/etc/systemd"
    cp packaging/nix-ssd-generator.conf.example "$r/etc/systemd/nix-ssd-generator.conf"
    sed -i 's/^#cache-users/cache-users/' "$r/etc/systemd/nix-ssd-generator.conf"
    local out; out=$("$HOSTBIN/nix-ssd" preview --root "$r" --cmdline '') || return 1
    printf '%s\n' "$out" | head -3
    ! grep -q '^# warning' <<<"$out" && grep -q '^# overlay mode (from /etc/systemd/nix-ssd-generator.conf)' <<<"$out" \
        && grep -q 'mnt-nix\\x2dssd-cache.mount' <<<"$out"
}
check_log man-lint man_lint
check_log man-config-keys man_keys
check_log man-example-config example_clean

# ------------------------------------------------------------------ make install / uninstall
gendir=$(pkg-config --variable=systemdsystemgeneratordir systemd)
expected_files() {
    printf '%s\n' "/usr/bin/nix-ssd" /usr/bin/nix-ssd-remount-hook "$gendir/nix-ssd-generator" \
        /usr/share/doc/nix-ssd-generator/README.md /usr/share/doc/nix-ssd-generator/nix-ssd-generator.conf.example \
        /usr/share/doc/nix-ssd-generator/LICENSE \
        /usr/share/bash-completion/completions/nix-ssd /usr/share/zsh/site-functions/_nix-ssd \
        /usr/share/fish/vendor_completions.d/nix-ssd.fish \
        /usr/share/man/man5/nix-ssd-generator.conf.5 /usr/share/man/man8/nix-ssd-generator.8 /usr/share/man/man8/nix-ssd.8 | sort
}
make_install() {
    local d=$scratch/destdir
    rm -rf "$d"; make -s install DESTDIR="$d" || return 1
    diff -u <(expected_files) <(cd "$d" && find . -type f -o -type l | sed 's/^\.//' | sort) || return 1
    [ "$(stat -c %a "$d/usr/bin/nix-ssd")" = 755 ] && [ "$(stat -c %a "$d$gendir/nix-ssd-generator")" = 755 ] || return 1
    [ "$(stat -c %a "$d/usr/share/man/man8/nix-ssd.8")" = 644 ] || return 1
    grep -Eq 'static(-pie)? linked' <<<"$(file "$d$gendir/nix-ssd-generator")" || { echo "generator not static"; return 1; }
    local usage; usage=$("$d$gendir/nix-ssd-generator" 2>&1); grep -q usage: <<<"$usage" || return 1
    "$d/usr/bin/nix-ssd" --version
    echo "generator dir from pkg-config: $gendir"
}
make_uninstall() {
    local d=$scratch/destdir
    make -s uninstall DESTDIR="$d" || return 1
    local left; left=$(find "$d" -type f -o -type l)
    [ -z "$left" ] || { echo "left behind: $left"; return 1; }
}
prefix_mismatch() { # binaries built for /usr/bin/nix-ssd must not be installed under /usr/local
    local out
    if out=$(make -s install DESTDIR="$scratch/local" PREFIX=/usr/local 2>&1); then echo "installed anyway"; return 1; fi
    echo "$out"; grep -q 'not built for /usr/local/bin/nix-ssd' <<<"$out" && [ ! -e "$scratch/local/usr/local/bin/nix-ssd" ]
}
no_pkg_config_systemd() { # without systemd.pc: $(PREFIX)/lib/systemd/system-generators
    local out; out=$(PKG_CONFIG_LIBDIR=/nonexistent make -s -n install DESTDIR=/x) || return 1
    grep ' /x/usr/lib/systemd/system-generators/nix-ssd-generator$' <<<"$out"
}
check_log make-install-destdir make_install
check_log make-uninstall make_uninstall
check_log make-install-refuses-other-prefix prefix_mismatch
check_log make-install-pkg-config-fallback no_pkg_config_systemd

# ------------------------------------------------------------------ Debian package
DEB=
deb_build() {
    DEB=$(DEB_OUT=$PKG_CACHE/deb packaging/debian/build-deb.sh "$HOSTBIN" | tail -1)
    [ -f "$DEB" ] || return 1
    echo "$DEB"; dpkg-deb -I "$DEB" control
    [ "$(dpkg-deb -f "$DEB" Architecture)" = amd64 ] || return 1
    dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/share/doc/nix-ssd-generator/copyright | grep -qx 'License: MIT' \
        || { echo "copyright does not say License: MIT"; return 1; }
    grep -q 'libc6 (>= 2\.' <<<"$(dpkg-deb -f "$DEB" Depends)" || return 1
    diff -u <(printf '%s\n' /usr/bin/nix-ssd /usr/bin/nix-ssd-remount-hook /usr/lib/systemd/system-generators/nix-ssd-generator \
                 /usr/share/doc/nix-ssd-generator/README.md.gz /usr/share/doc/nix-ssd-generator/copyright \
                 /usr/share/doc/nix-ssd-generator/nix-ssd-generator.conf.example \
                 /usr/share/bash-completion/completions/nix-ssd /usr/share/zsh/vendor-completions/_nix-ssd \
                 /usr/share/fish/vendor_completions.d/nix-ssd.fish \
                 /usr/share/man/man5/nix-ssd-generator.conf.5.gz /usr/share/man/man8/nix-ssd-generator.8.gz \
                 /usr/share/man/man8/nix-ssd.8.gz | sort) \
            <(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {print substr($6,2)}' | sort)
}
# dpkg -i in a throwaway overlay of the Debian 13 tool tree; the installed generator writes units
# that point at /usr/bin/nix-ssd and pass systemd-analyze verify next to Debian's nix-daemon units;
# dpkg -r removes everything.
deb_install() {
    [ -f "$DEB" ] || return 1
    local T; T=$(tools_tree) || return 1
    local w=$scratch/ovl; mkdir -p "$w/u" "$w/w" "$w/m" "$w/deb"; cp "$DEB" "$w/deb/"
    unshare --mount --propagation private bash -c '
        set -e; source "$1"; T=$2; w=$3
        mount -t overlay overlay -o "lowerdir=$T,upperdir=$w/u,workdir=$w/w" "$w/m"
        IN_TREE_BINDS="$w/deb:/deb" in_tree "$w/m" sh -ec "
            dpkg -i /deb/*.deb
            dpkg -s nix-ssd-generator | grep -E \"^(Status|Version|Architecture)\"
            mkdir -p /tmp/g/n /tmp/g/e /tmp/g/l
            SYSTEMD_LOG_TARGET=console SYSTEMD_PROC_CMDLINE= /usr/lib/systemd/system-generators/nix-ssd-generator /tmp/g/n /tmp/g/e /tmp/g/l
            ls /tmp/g/n
            grep -x \"ExecStart=/usr/bin/nix-ssd activate .*\" /tmp/g/n/nix-ssd.service
            cd /tmp/g/n
            err=\$(SYSTEMD_UNIT_PATH=/tmp/g/n: systemd-analyze verify --man=no nix-ssd.service mnt-nix*.mount nix-daemon.service 2>&1 >/dev/null) \\
                || { echo \"verify failed: \$err\"; exit 1; }
            [ -z \"\$err\" ] || { echo \"verify: \$err\"; exit 1; }
            echo \"systemd-analyze verify: clean\"
            nix-ssd --version
            dpkg -r nix-ssd-generator
            [ ! -e /usr/bin/nix-ssd ] && [ ! -e /usr/lib/systemd/system-generators/nix-ssd-generator ]
            echo removed"' _ "$PKG_DIR/lib.sh" "$T" "$w"
}
check_log deb-build deb_build
skipped deb-install || check_log deb-install-trixie deb_install

# ------------------------------------------------------------------ Nix
T=$(tools_tree) || fail "tool tree"
# The real nixpkgs lib/ (a full nixpkgs cannot be brought here): CI puts a copy of shared/ beside
# the checkout. Missing is a failure, never a skip.
NIXPKGS_LIB=${NIXPKGS_LIB:-$TOP/../shared/nixpkgs/nixpkgs-lib.tar.xz}
NIXPKGS=$scratch/nixpkgs
nixpkgs_lib() {
    [ -f "$NIXPKGS_LIB" ] || { echo "the nixpkgs lib tarball is missing: $NIXPKGS_LIB (expected ../shared/nixpkgs/nixpkgs-lib.tar.xz beside the checkout; set NIXPKGS_LIB)"; return 1; }
    mkdir -p "$NIXPKGS" && tar xJf "$NIXPKGS_LIB" -C "$NIXPKGS" --strip-components=1 || return 1
    [ -f "$NIXPKGS/lib/default.nix" ] || { echo "$NIXPKGS_LIB holds no lib/default.nix"; return 1; }
    echo "nixpkgs lib $(cat "$NIXPKGS/lib/.version") from $NIXPKGS_LIB"
}
nixfiles=$(find packaging tests/packaging -name '*.nix' | sort)
nix_parse() {
    local f n=0
    IN_TREE_BINDS="$TOP:/src" in_tree "$T" nix-instantiate --version
    for f in $nixfiles; do
        IN_TREE_BINDS="$TOP:/src" in_tree "$T" nix-instantiate --parse "/src/$f" >/dev/null || { echo "parse error: $f"; return 1; }
        echo "parsed: $f"; n=$((n + 1))
    done
    [ $n -ge 5 ]
}
nix_eval() { # SRC-DIR: eval.nix's checks against that tree; writes $scratch/eval.json
    IN_TREE_BINDS="$1:/src $TOP/tests/packaging/nix:/evaltest $NIXPKGS:/nixpkgs" in_tree "$T" \
        nix-instantiate --eval --strict --json /evaltest/eval.nix --arg src /src --arg nixpkgs /nixpkgs > "$scratch/eval.json"
}
nix_eval_module() {
    nix_eval "$TOP" || return 1
    cp "$scratch/eval.json" "$scratch/eval-good.json"
    python3 - "$scratch/eval.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("checks passed:", j["passed"]); print("options:", ", ".join(j["options"]))
for f in j["failures"]: print("FAILED:", f)
sys.exit(1 if j["failures"] or j["passed"] < 200 else 0)
PY
}
nix_conf_clean() { # the config files the module writes are read by the real nix-ssd without a warning
    local mode out r
    for mode in overlay build off; do
        r=$scratch/conf-$mode; mkdir -p "$r/etc/systemd"
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["conf"][sys.argv[2]], end="")' \
            "$scratch/eval.json" "$mode" > "$r/etc/systemd/nix-ssd-generator.conf" || return 1
        out=$("$HOSTBIN/nix-ssd" preview --root "$r" --cmdline '') || return 1
        printf '%s: %s\n' "$mode" "$(grep -v '^$' <<<"$out" | head -1)"
        grep -q '^# warning' <<<"$out" && { echo "$out"; return 1; }
        case $mode in
            off) grep -q '^# disabled by /etc/systemd/nix-ssd-generator.conf' <<<"$out" || return 1 ;;
            *) grep -q "^# $mode mode (from /etc/systemd/nix-ssd-generator.conf)" <<<"$out" || return 1 ;;
        esac
    done
}
nix_eval_catches_breakage() { # a module with a broken option type must make eval.nix fail
    local m=$scratch/mutant
    mkdir -p "$m/packaging"
    cp -a Cargo.toml Cargo.lock LICENSE README.md src unit-templates tests "$m/"
    cp -a packaging/nix packaging/man packaging/completions packaging/nix-ssd-generator.conf.example "$m/packaging/"
    sed -i 's/"off"$/"of"/' "$m/packaging/nix/module.nix"
    grep -q '"of"' "$m/packaging/nix/module.nix" || { echo "mutation not applied"; return 1; }
    nix_eval "$m" || return 1
    python3 -c 'import json,sys; f=json.load(open(sys.argv[1]))["failures"]; print(f); sys.exit(0 if f else 1)' "$scratch/eval.json"
}
# The flake through the real flake machinery: a copy of the sources as a path: flake with
# ?dir=packaging/nix, its nixpkgs input overridden by a flake of the real lib and
# the stub packages (tests/packaging/nix/stub-nixpkgs; no network).
nix_flake() {
    local s=$scratch/flakesrc n=$scratch/stubnixpkgs out
    mkdir -p "$s/packaging" "$n"
    cp -a Cargo.toml Cargo.lock LICENSE README.md src unit-templates tests "$s/"
    cp -a packaging/nix packaging/man packaging/completions packaging/nix-ssd-generator.conf.example "$s/packaging/"
    cp tests/packaging/nix/stub-nixpkgs/flake.nix tests/packaging/nix/stub-pkgs.nix "$n/"; cp -a "$NIXPKGS/lib" "$n/"
    out=$(IN_TREE_BINDS="$s:/flakesrc $n:/stubnixpkgs" in_overlay "$T" sh -ec '
        nx() { nix --extra-experimental-features "nix-command flakes" eval --no-write-lock-file \
                 --override-input nixpkgs path:/stubnixpkgs --raw --apply toString "path:/flakesrc?dir=packaging/nix#$1"; echo; }
        nx packages.aarch64-linux.default.pname
        nx packages.x86_64-linux.default.name
        nx packages.aarch64-linux.default.env.NIX_SSD_CLI
        nx nixosModules.default
        nx nixosModules.nix-ssd') || { echo "$out"; return 1; }
    echo "$out"
    local want; want=$(printf '%s\n' nix-ssd-generator "nix-ssd-generator-$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)")
    [ "$(head -2 <<<"$out")" = "$want" ] || return 1
    sed -n 3p <<<"$out" | grep -Eq '^/[0-9a-z]{52}/bin/nix-ssd$' || return 1      # placeholder "out"
    [ "$(sed -n 4,5p <<<"$out" | grep -c '^/nix/store/[0-9a-z]\{32\}-source/packaging/nix/module.nix$')" = 2 ]
}
# The module's pinning hooks, run as NixOS runs them (bash -euo pipefail, like
# writeShellApplication) with a recording nix-ssd and boot loader installer in place of the
# store paths: pre-switch pins for every action but test / dry-activate (also for none or an
# unknown one); the wrapped installer pins first and stops before the loader when pinning fails.
nix_pin_hooks() { # the module's boot-loader hook, run with a recording nix-ssd
    local d=$scratch/hooks sys=/nix/store/00000000000000000000000000000000-nixos-system-rock5c-26.11 log rc
    rm -rf "$d"; mkdir -p "$d"
    # a stand-in nix-ssd: records its arguments, runs the loader command it is given (as the
    # real one does once the system boots without the SSD), exits 1 when INSTALL_FAILS is set
    cat > "$d/nix-ssd" <<SH
#!/bin/bash
printf 'nix-ssd'; printf ' [%s]' "\$@"; echo
[ -z "\${INSTALL_FAILS-}" ] || exit 1
[ "\$1 \$2" = "install-bootloader --loader" ] && exec /bin/sh -c "\$3 \\"\\\$@\\"" x "\${@:4}"
SH
    printf '#!/bin/sh\necho "loader $*"\n' > "$d/loader"
    chmod +x "$d/nix-ssd" "$d/loader"
    python3 - "$scratch/eval-good.json" "$d" <<'PY' || return 1
import json, sys
s = json.load(open(sys.argv[1]))["scripts"]; d = sys.argv[2]
loader = s["loader"].split()
assert s["installBootLoader"] and loader[0].startswith("/nix/store/")
fix = lambda t: t.replace(s["cli"], d + "/nix-ssd").replace(loader[0], d + "/loader")
open(d + "/install.sh", "w").write(fix(s["installBootLoader"]))
PY
    log=$(bash -euo pipefail "$d/install.sh" "$sys") || return 1
    printf 'installer:\n%s\n' "$log"
    [ "$log" = "$(printf 'nix-ssd [install-bootloader] [--loader] [%s -g 20 -t 5 -c] [%s]\nloader -g 20 -t 5 -c %s' "$d/loader" "$sys" "$sys")" ] \
        || { echo "not: nix-ssd install-bootloader --loader 'LOADER' SYSTEM, then the loader with SYSTEM"; return 1; }
    INSTALL_FAILS=1 bash -euo pipefail "$d/install.sh" "$sys" >/dev/null; rc=$?
    echo "installer when nix-ssd install-bootloader fails: exit $rc"
    [ $rc != 0 ]
}
# The package's check phase as buildRustPackage runs it in the Nix build sandbox:
# NIX_SSD_CLI from the package's env with $out a /nix/store path, `cargo test --release --locked
# --offline -- CHECK-FLAGS` (cargoCheckHook's --frozen; --no-fail-fast to see every failure),
# its own target dir. The sandbox, as far as the tests can tell: a non-root user (uid 1000 in a
# user namespace, no capabilities), a clean environment with HOME=/homeless-shelter, on PATH only
# stdenv's tools (coreutils, findutils, diffutils, sed, grep, gawk, tar, gzip, bzip2, xz, make,
# bash, patch, file, binutils, cc), the package's nativeCheckInputs (systemd-escape) and the Rust
# toolchain, and nothing in /bin:/usr/bin but sh (where a child with a cleared environment looks).
nix_cli() { # the package's NIX_SSD_CLI with $out replaced by a store path
    python3 - "$scratch/eval-good.json" <<'PY'
import json, sys, hashlib
p = json.load(open(sys.argv[1]))["package"]
alphabet = "0123456789abcdfghijklmnpqrsvwxyz"   # Nix's base-32 digits
h = "".join(alphabet[b % 32] for b in hashlib.sha256(p["name"].encode()).digest()[:32])
print(p["NIX_SSD_CLI"].replace(p["outPlaceholder"], "/nix/store/%s-%s" % (h, p["name"])))
PY
}
in_build_sandbox() { # CLI CHECK-FLAGS...: the check phase in the emulated sandbox
    local cli=$1; shift
    local sb=$scratch/sandbox n p cargo_bin
    rm -rf "$sb"; mkdir -p "$sb/real" "$sb/path"
    for p in coreutils findutils diffutils sed grep gawk tar gzip bzip2 xz-utils make bash patch file binutils; do
        dpkg -L "$p" 2>/dev/null | grep -E '^/(usr/)?bin/[^/]+$'
    done | xargs -n1 basename | sort -u | while read -r n; do
        [ -e "/usr/bin/$n" ] && ln -s "$sb/real/$n" "$sb/path/$n"
    done
    # cc by its real name (gcc finds its own libexec directory, the LTO plugin, from argv[0])
    n=$(basename "$(readlink -f "$(command -v cc)")")
    printf '#!%s\nexec -a /usr/bin/%s %s "$@"\n' "$sb/real/bash" "$n" "$sb/real/$n" > "$sb/path/cc"
    chmod +x "$sb/path/cc"
    ln -s "$sb/real/systemd-escape" "$sb/path/systemd-escape"
    ln -s "$sb/real/bash" "$sb/path/sh"
    cargo_bin=$(dirname "$(command -v cargo)")
    unshare --mount --propagation private bash -c '
        set -e; sb=$1; top=$2; cli=$3; cargo_bin=$4; shift 4
        mount --bind /usr/bin "$sb/real"
        mount -t tmpfs -o mode=755 sandbox-usr-bin /usr/bin
        "$sb/real/ln" -s "$sb/real/bash" /usr/bin/sh
        exec "$sb/real/unshare" --map-user=1000 --map-group=100 "$sb/real/env" -i \
            PATH="$cargo_bin:$sb/path" HOME=/homeless-shelter CARGO_HOME="$CARGO_HOME" RUSTUP_HOME="$RUSTUP_HOME" \
            NIX_SSD_CLI="$cli" CARGO_TARGET_DIR="$top/target/nix-check" \
            sh -c "cd \"\$0\" && echo \"check phase as \$(id -un 2>/dev/null || id -u) (uid \$(id -u))\" &&
                   cargo test --release --locked --offline --no-fail-fast -- \"\$@\"" "$top" "$@"
    ' _ "$sb" "$TOP" "$cli" "$cargo_bin" "$@"
}
nix_check_phase() {
    local cli out flags
    cli=$(nix_cli) || return 1
    [[ $cli =~ ^/nix/store/[0-9a-z]{32}-nix-ssd-generator-[0-9.]+/bin/nix-ssd$ ]] || { echo "NIX_SSD_CLI from the package: '$cli'"; return 1; }
    mapfile -t flags < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["package"]["checkFlags"]))' "$scratch/eval-good.json" | grep -v "^$")
    echo "NIX_SSD_CLI=$cli checkFlags: ${flags[*]}"
    out=$(CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup} in_build_sandbox "$cli" "${flags[@]}" 2>&1) \
        || { echo "$out" | tail -60; return 1; }
    grep -E '^(check phase as|test result|     Running)' <<<"$out"
    grep -aqF "$cli" "$TOP/target/nix-check/release/nix-ssd-generator" || { echo "the generator does not hold $cli"; return 1; }
    echo "the generator holds $cli"
    awk '/^test result:/ {p += $4; f += $6} END {print p " passed, " f " failed"; exit (f > 0 || p < 40)}' <<<"$out"
}
# Without the package's checkFlags the sandbox fails exactly where package.nix says, and nowhere
# else: the skip hides nothing but hostile_inputs' unshare row.
nix_check_phase_needs_its_skip() {
    local cli out
    cli=$(nix_cli) || return 1
    if out=$(CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup} in_build_sandbox "$cli" 2>&1); then
        echo "passes without checkFlags: drop the skip from package.nix"; return 1
    fi
    grep -E '^(test result|error: test failed)|hostile inputs failed|cannot run' <<<"$out"
    [ "$(grep -c '^test result: FAILED' <<<"$out")" = 1 ] && grep -q '^1 of [0-9]* hostile inputs failed' <<<"$out" \
        && grep -q '^/proc/cmdline missing: cannot run: No such file or directory' <<<"$out"
}
# The module's stage 1 step (packaging/nix/stage1-pins.sh) on a staged tree, with busybox sh (the
# scripted initrd's shell; host-packages installs it) and bash (the systemd initrd's).
nix_stage1_pins() {
    local sh
    for sh in "busybox sh" bash; do stage1_pins_with "$sh" || return 1; done
}
stage1_pins_with() { # SHELL
    local t=$scratch/stage1 h=0123456789abcdfghijklmnpqrsvwxyz sh=$1 out
    rm -rf "$t"; mkdir -p "$t/nix/store/$h-kept" "$t/nix/.nix-ssd-pins/root/nix/store/$h-system/bin" \
        "$t/nix/.nix-ssd-pins/root/nix/store/$h-kept" "$t/etc"
    echo init > "$t/nix/.nix-ssd-pins/root/nix/store/$h-system/bin/init"
    echo staged > "$t/nix/.nix-ssd-pins/root/nix/store/$h-kept/f"
    echo eMMC > "$t/nix/store/$h-kept/f"
    ln -s "$h-system" "$t/nix/.nix-ssd-pins/root/nix/store/$h-link"
    printf '%s\n' "$h-system" "$h-kept" "$h-link" "$h-absent" "../../../etc/evil" ".links" "" > "$t/nix/.nix-ssd-pins/manifest"
    out=$($sh -c '. "$1"; nixSsdMovePins "$2"' _ packaging/nix/stage1-pins.sh "$t") || return 1
    echo "with $sh: $out"; (cd "$t/nix/store" && ls -l | sed 's/^/  /')
    [ "$out" = "nix-ssd: moved 2 staged path(s) into the store (1 were there already)" ] && echo "it says what it did" \
        && [ "$(cat "$t/nix/store/$h-system/bin/init")" = init ] && [ ! -e "$t/nix/.nix-ssd-pins/root/nix/store/$h-system" ] \
        && echo "a staged path is renamed into the store" \
        && [ "$(cat "$t/nix/store/$h-kept/f")" = eMMC ] && echo "a path already in the store is left as it is" \
        && [ "$(readlink "$t/nix/store/$h-link")" = "$h-system" ] && echo "a staged symlink is moved as a symlink" \
        && [ ! -e "$t/nix/store/$h-absent" ] && [ -z "$(ls -A "$t/etc")" ] && echo "nothing else is made, nothing outside the store" \
        && [ "$(ls "$t/nix/store" | wc -l)" = 3 ] || return 1
    rm "$t/nix/.nix-ssd-pins/manifest"; mkdir -p "$t/nix/.nix-ssd-pins/root/nix/store/$h-unfinished"
    out=$($sh -c '. "$1"; nixSsdMovePins "$2"' _ packaging/nix/stage1-pins.sh "$t") || return 1
    [ -z "$out" ] && [ ! -e "$t/nix/store/$h-unfinished" ] && echo "a staging without manifest (unfinished) is ignored"
}
check_log nix-stage1-pins nix_stage1_pins
check_log nixpkgs-lib nixpkgs_lib
check_log nix-parse nix_parse
check_log nix-flake-outputs nix_flake
check_log nix-eval-module-package-flake nix_eval_module
check_log nix-module-config-file-clean nix_conf_clean
check_log nix-eval-catches-a-broken-module nix_eval_catches_breakage
check_log nix-pin-hooks nix_pin_hooks
check_log nix-package-check-phase nix_check_phase
check_log nix-package-check-phase-needs-its-skip nix_check_phase_needs_its_skip

# ------------------------------------------------------------------ aarch64
if ! skipped aarch64; then
    xbin=/nonexistent
    aarch64_build() {
        xbin=$(tests/packaging/aarch64.sh build | tail -1) || return 1
        file "$xbin/nix-ssd" "$xbin/nix-ssd-generator"
        grep -q 'ARM aarch64.*statically linked' <<<"$(file "$xbin/nix-ssd-generator")" &&
            grep -q 'ARM aarch64.*dynamically linked' <<<"$(file "$xbin/nix-ssd")" &&
            grep -qaF /usr/bin/nix-ssd "$xbin/nix-ssd-generator"
    }
    deb_arm64() {
        local d; d=$(DEB_OUT=$PKG_CACHE/deb packaging/debian/build-deb.sh "$xbin" | tail -1) || return 1
        echo "$d"; dpkg-deb -f "$d" Architecture Depends
        local c; c=$(dpkg-deb -c "$d") || return 1
        dpkg-deb -f "$d" Architecture | grep -x arm64 && grep 'usr/lib/systemd/system-generators/nix-ssd-generator' <<<"$c"
    }
    check_log aarch64-cross-build aarch64_build
    check_log aarch64-fixtures-under-qemu tests/packaging/aarch64.sh fixtures
    check_log aarch64-preview-equals-x86-64 tests/packaging/aarch64.sh preview
    check_log aarch64-deb deb_arm64
fi

summary
