#!/bin/bash
# Builds the Debian package from `make install` (plain dpkg-deb, no debhelper) and prints the
# .deb's absolute path as its LAST line of standard output (everything else goes to stderr).
# Usage: packaging/debian/build-deb.sh [BINARY-DIR [DEBIAN-ARCH]]
#   BINARY-DIR: holds nix-ssd and nix-ssd-generator, built for /usr/bin/nix-ssd (`make build`);
#               default target/release
#   DEBIAN-ARCH: default: from the binaries (amd64, arm64)
# Output directory: $DEB_OUT, default target/deb.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bindir=$(cd "${1:-$top/target/release}" && pwd)
out=${DEB_OUT:-$top/target/deb}
for b in nix-ssd nix-ssd-generator; do
    [ -x "$bindir/$b" ] || { echo "build-deb: $bindir/$b missing (make build)" >&2; exit 1; }
done
if [ -n "${2:-}" ]; then arch=$2; else
    case $(readelf -h "$bindir/nix-ssd" | sed -n 's/^ *Machine: *//p') in
        *X86-64*) arch=amd64 ;; *AArch64*) arch=arm64 ;;
        *) echo "build-deb: unknown machine of $bindir/nix-ssd" >&2; exit 1 ;;
    esac
fi
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$top/Cargo.toml" | head -1)
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
root=$stage/root
make -s -C "$top" install DESTDIR="$root" PREFIX=/usr NIX_SSD_CLI=/usr/bin/nix-ssd TARGET_DIR="$bindir" \
    SYSTEMD_GENERATOR_DIR=/usr/lib/systemd/system-generators ZSH_COMPLETION_DIR=/usr/share/zsh/vendor-completions >&2
gzip -9n "$root"/usr/share/man/man*/*
doc=$root/usr/share/doc/nix-ssd-generator
gzip -9n "$doc/README.md"
# Debian's machine-readable copyright file, holding the license text of LICENSE (MIT): Debian
# keeps it there rather than as a file of its own.
{
    cat <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: nix-ssd-generator
Comment: Built from the nix-ssd-generator source tree by packaging/debian/build-deb.sh.

Files: *
Copyright: nix-ssd-generator contributors
License: MIT
COPYRIGHT
    sed -n '5,$p' "$top/LICENSE" | sed -e 's/^$/./' -e 's/^/ /'
} > "$doc/copyright"
rm "$doc/LICENSE"

# Depends: the newest glibc symbol version nix-ssd needs (the generator is static), libgcc_s.
glibc=$(readelf -V "$bindir/nix-ssd" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
depends="libc6 (>= $glibc)"
readelf -d "$bindir/nix-ssd" | grep -q 'NEEDED.*libgcc_s' && depends+=", libgcc-s1"
mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" -e "s/@SIZE@/$size/" \
    "$top/packaging/debian/control.in" > "$root/DEBIAN/control"
install -m 755 "$top/packaging/debian/postinst" "$top/packaging/debian/postrm" "$root/DEBIAN/"
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
mkdir -p "$out"
deb=$out/nix-ssd-generator_${version}_${arch}.deb
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$top/Cargo.toml")} \
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
