#!/bin/bash
# The boot-default fallback (issue 18) against the REAL boot loaders: for each loader the NixOS
# module supports, a menu of the shape NixOS's builder writes (extlinux-conf-builder.sh,
# install-grub.pl, systemd-boot-builder.py) with a default entry and generations 3, 2, 1 whose
# kernel command lines differ (init=/nix/store/<hash>-nixos-system-x-N/init nixssdentry=N). Each
# loader boots it in qemu (TCG) twice, and the kernel's first "Command line:" on the serial
# console tells which entry it booted:
#   as written          the loader's own default: the newest (the default entry / generation 3)
#   after the edit      `nix-ssd boot-menu --root R --default <generation 1>`: generation 1
# Loaders: U-Boot's extlinux (Debian's u-boot-qemu, qemu-x86 build: its distro boot finds
# /boot/extlinux/extlinux.conf and boots DEFAULT after TIMEOUT; the board's loader, the Rock 5C's
# U-Boot, uses the same extlinux parser), systemd-boot (Debian's systemd-bootx64.efi under
# OVMF, loader.conf's default) and GRUB 2 (Debian's x86_64-efi, a grub-mkstandalone image under
# OVMF whose small embedded config runs the NixOS-format grub.cfg from the ESP: `set default=` as
# a title path into the "NixOS - All configurations" submenu).
# The kernel is the boot bed's Debian kernel (an EFI stub), cached under $BED_CACHE/loaders;
# no root file system: only the kernel's start is watched, then qemu is stopped.
# Images are built from directory trees (mkfs.ext4 -d, mtools) and a partition table made by
# sfdisk on the image file: no loop device, no mount.
# Usage: sudo tests/boot/loaders.sh   (NIX_SSD_CLI=… else cargo build --release)
# Env: LOADERS="extlinux systemd-boot grub" (which), BOOT_TIMEOUT=180 (s per boot), ACCEL, CPU.
# Last line: "loaders: N passed, M failed". Consoles: $BED_WORK/loaders/*.console.
set -uo pipefail
CHECK_SUITE=loaders; . "$(dirname "$0")/../lib/check.sh"; need_root
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
t_suite=$SECONDS
LOADERS=${LOADERS:-extlinux systemd-boot grub}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-180}
W=$BED_WORK/loaders; C=$BED_CACHE/loaders
rm -rf "$W"; mkdir -p "$W" "$C"
QPIDS=()
cleanup() { local p; for p in "${QPIDS[@]}"; do kill "$p" 2>/dev/null; done; return 0; }
trap cleanup EXIT

# ---------------------------------------------------------------- host tools
loader_packages() {
    local need=() p
    for p in u-boot-qemu ovmf systemd-boot-efi grub-efi-amd64-bin mtools dosfstools fdisk e2fsprogs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    log "apt-get install ${need[*]}"
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
host_packages   # qemu-system-x86 as the boot bed installs it (lib.sh)
loader_packages || abort "apt-get install of the loaders' packages failed"
UBOOT=/usr/lib/u-boot/qemu-x86/u-boot.rom
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
SDBOOT=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
for f in "$UBOOT" "$OVMF_CODE" "$OVMF_VARS" "$SDBOOT"; do [ -f "$f" ] || abort "missing $f"; done

# The kernel: the boot bed's Debian 13 kernel when its tree is there, else the host release's
# linux-image package (apt-get download). Kept as $C/vmlinuz.
kernel() {
    [ -s "$C/vmlinuz" ] && return 0
    local k
    for k in "$BED_CACHE"/prepared-*/boot/vmlinuz-* "$BED_CACHE"/rootfs-*/boot/vmlinuz-*; do
        [[ -f $k && $k != *.partial/* ]] || continue
        cp "$k" "$C/vmlinuz.tmp" && mv "$C/vmlinuz.tmp" "$C/vmlinuz" && { log "kernel: $k"; return 0; }
    done
    local pkg d; d=$(mktemp -d "$W/kdeb.XXXXXX")
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    [ -n "$pkg" ] || return 1
    log "kernel: apt-get download $pkg"
    (cd "$d" && apt-get download -qq "$pkg" >/dev/null 2>&1) || return 1
    dpkg-deb --fsys-tarfile "$d"/*.deb | tar -x -C "$d" --wildcards './boot/vmlinuz-*' || return 1
    cp "$d"/boot/vmlinuz-* "$C/vmlinuz.tmp" && mv "$C/vmlinuz.tmp" "$C/vmlinuz"; rm -rf "$d"
}
kernel || abort "no kernel: neither the boot bed's tree nor the linux-image package"

CLI=${NIX_SSD_CLI:-}
if [ -z "$CLI" ]; then
    (cd "$top" && cargo build --release --locked -q) || abort "cargo build --release failed"
    CLI=$top/target/release/nix-ssd
fi
[ -x "$CLI" ] || abort "no nix-ssd at $CLI"

# ---------------------------------------------------------------- the menus, as NixOS writes them
# Store names: hash (32 chars of Nix's base32) + name. Generation N's system, kernel, initrd.
sys_of() { echo "${1}c1ik4qc3wrlyd2yn3ykqh0n1qm5zq1p-nixos-system-x-$1"; }
KHASH=8a7xw1ymmc0n4lg5h8wcdvdsrfn0b6v2-linux-6.12.117 IHASH=9b8dkz5cw6a2wvlbhfm52b5y9l8xzqk0-initrd-linux-6.12.117
# The kernel-params file of every generation; nixssdentry= says which entry it is.
params() { echo "console=ttyS0,115200 earlyprintk=ttyS0,115200 panic=-1 nixssdentry=$1"; }
ESP_UUID=1234-ABCD
# An empty initramfs (newc trailer only): the loaders need an initrd file to load.
initrd() {
    local name='TRAILER!!!'
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0\0\0\0' \
        0 0 0 0 1 0 0 0 0 0 0 $((${#name} + 1)) 0 "$name"
}

# extlinux-conf-builder.sh: /boot/extlinux/extlinux.conf, kernels copied to /boot/nixos as
# <hash>-<name>-<file> and named relative to the conf; TIMEOUT in 1/10 s (boot.loader.timeout 1).
menu_extlinux() { # ROOT
    local b=$1/boot n
    mkdir -p "$b/extlinux" "$b/nixos"
    cp "$C/vmlinuz" "$b/nixos/$KHASH-bzImage"; initrd > "$b/nixos/$IHASH-initrd"
    entry() { # TAG(default|N) SYSTEM-GENERATION
        echo
        echo "LABEL nixos-$1"
        if [ "$1" = default ]; then echo "  MENU LABEL NixOS - Default"
        else echo "  MENU LABEL NixOS - Configuration $1 (2026-12-0$1 10:0$1 - 26.05.2026120$1.abcdef$1)"; fi
        echo "  LINUX ../nixos/$KHASH-bzImage"
        echo "  INITRD ../nixos/$IHASH-initrd"
        echo "  APPEND init=/nix/store/$(sys_of "$2")/init $(params "$1")"
    }
    {
        printf '# Generated file, all changes will be lost on nixos-rebuild!\n\n'
        printf '# Change this to e.g. nixos-42 to temporarily boot to an older configuration.\n'
        printf 'DEFAULT nixos-default\n\n'
        printf 'MENU TITLE ------------------------------------------------------------\n'
        printf 'TIMEOUT 10\n'
        entry default 3
        for n in 3 2 1; do entry "$n" "$n"; done
    } > "$b/extlinux/extlinux.conf"
}

# install-grub.pl (GRUB 2, /boot the ESP, so copyKernels): /boot/grub/grub.cfg; kernels in
# /boot/kernels as <hash>-<name>-<file>, found by `search --set=drive1 --fs-uuid`; the default
# entry, then the submenu of generations, newest first; entryOptions/subEntryOptions as
# current NixOS sets them.
menu_grub() { # ROOT
    local b=$1/boot n
    mkdir -p "$b/grub" "$b/kernels"
    cp "$C/vmlinuz" "$b/kernels/$KHASH-bzImage"; initrd > "$b/kernels/$IHASH-initrd"
    entry() { # TITLE TAG SYSTEM-GENERATION OPTIONS
        local s; s=$(sys_of "$3")
        echo "menuentry \"$1\" $4 {"
        echo "search --set=drive1 --fs-uuid $ESP_UUID"
        echo "  linux (\$drive1)//kernels/$KHASH-bzImage systemConfig=/nix/store/$s init=/nix/store/$s/init $(params "$2")"
        echo "  initrd (\$drive1)//kernels/$IHASH-initrd"
        echo "}"
        echo
    }
    {
        echo "# Automatically generated.  DO NOT EDIT THIS FILE!"
        cat <<EOF

        search --set=drive1 --fs-uuid $ESP_UUID
        if [ -s \$prefix/grubenv ]; then
          load_env
        fi

        # ‘grub-reboot’ sets a one-time saved entry, which we process here and
        # then delete.
        if [ "\${next_entry}" ]; then
          # FIXME: KDM expects the next line to be present.
          set default="\${saved_entry}"
          set default="\${next_entry}"
          set next_entry=
          save_env next_entry
          set timeout=1
        else
          set default=0
          set timeout=1
        fi

        # Setup the graphics stack for bios and efi systems
        if [ "\${grub_platform}" = "efi" ]; then
          insmod efi_gop
          insmod efi_uga
        else
          insmod vbe
        fi
        insmod font
        if loadfont (\$drive1)//grub/fonts/unicode.pf2; then
          insmod gfxterm
          terminal_output gfxterm
        fi

EOF
        entry "NixOS - Default" default 3 "--class nixos --unrestricted"
        echo 'submenu "NixOS - All configurations" --class submenu {'
        for n in 3 2 1; do
            entry "NixOS - Configuration $n (2026-12-0$n - 26.05.2026120$n.abcdef$n)" "$n" "$n" "--class nixos"
        done
        echo "}"
    } > "$b/grub/grub.cfg"
}

# systemd-boot-builder.py (/boot the ESP): loader/loader.conf and
# loader/entries/nixos-generation-N.conf; kernels in EFI/nixos as <hash>-<name>-<file>.efi;
# `bootctl install` puts systemd-boot at EFI/systemd and EFI/BOOT.
menu_sdboot() { # ROOT
    local b=$1/boot n
    mkdir -p "$b/loader/entries" "$b/EFI/nixos" "$b/EFI/systemd" "$b/EFI/BOOT"
    cp "$SDBOOT" "$b/EFI/systemd/systemd-bootx64.efi"; cp "$SDBOOT" "$b/EFI/BOOT/BOOTX64.EFI"
    cp "$C/vmlinuz" "$b/EFI/nixos/$KHASH-bzImage.efi"; initrd > "$b/EFI/nixos/$IHASH-initrd.efi"
    printf 'timeout 1\ndefault nixos-generation-3.conf\neditor 0\nconsole-mode keep\n' > "$b/loader/loader.conf"
    for n in 3 2 1; do
        {
            echo "title NixOS"
            echo "sort-key nixos"
            echo "version Generation $n NixOS Xantusia 26.05.2026120$n.abcdef$n (Linux 6.12.117), built on 2026-12-0$n"
            echo "linux /EFI/nixos/$KHASH-bzImage.efi"
            echo "initrd /EFI/nixos/$IHASH-initrd.efi"
            echo "options init=/nix/store/$(sys_of "$n")/init $(params "$n")"
            echo "machine-id 5d2a4b3c1e0f47a8b9c6d7e8f9a0b1c2"
        } > "$b/loader/entries/nixos-generation-$n.conf"
    done
}

# ---------------------------------------------------------------- images and boots
# disk IMAGE LABEL(dos|gpt) TYPE FSIMAGE: a one-partition disk holding FSIMAGE from 1 MiB on.
disk() {
    local mb; mb=$(( ($(stat -c %s "$4") + 1048575) / 1048576 + 2 ))
    rm -f "$1"; truncate -s "${mb}M" "$1"
    printf 'label: %s\nstart=2048, size=%s, type=%s, bootable\n' "$2" $(( $(stat -c %s "$4") / 512 )) "$3" \
        | sed "$([ "$2" = gpt ] && echo 's/, bootable//')" | sfdisk -q "$1" || return 1
    dd if="$4" of="$1" bs=1M seek=1 conv=notrunc status=none
}
# The root file system of an sd-image (ext4, /boot/extlinux inside), on a DOS partition.
image_extlinux() { # ROOT IMAGE
    rm -f "$2.fs"; truncate -s 48M "$2.fs"
    mkfs.ext4 -q -F -L NIXOS_SD -d "$1" "$2.fs" && disk "$2" dos 83 "$2.fs"; local rc=$?; rm -f "$2.fs"; return $rc
}
# The ESP (FAT, mounted at /boot), on a GPT partition of type EFI System.
image_esp() { # ROOT IMAGE
    rm -f "$2.fs"
    mkfs.vfat -C -i "${ESP_UUID/-/}" -n ESP "$2.fs" $((48 * 1024)) >/dev/null \
        && mcopy -s -i "$2.fs" "$1"/boot/* ::/ && disk "$2" gpt U "$2.fs"; local rc=$?; rm -f "$2.fs"; return $rc
}
# GRUB as NixOS installs it on the ESP runs with its prefix there and reads grub.cfg from it;
# here: a standalone image (all modules in its memdisk) whose embedded config finds the ESP
# and runs its grub.cfg, as BOOTX64.EFI (the removable path, as efiInstallAsRemovable).
grub_efi() { # ROOT
    mkdir -p "$1/boot/EFI/BOOT"
    printf 'insmod part_gpt\ninsmod fat\nsearch --no-floppy --set=root --file /grub/grub.cfg\nconfigfile ($root)/grub/grub.cfg\n' > "$W/grub-embed.cfg"
    grub-mkstandalone -O x86_64-efi -o "$1/boot/EFI/BOOT/BOOTX64.EFI" --locales= --fonts= --themes= \
        "boot/grub/grub.cfg=$W/grub-embed.cfg" >/dev/null
}

# boot NAME FIRMWARE(uboot|ovmf) IMAGE: boots it until the kernel's "Command line:" line is
# complete (or the loader gave up, or BOOT_TIMEOUT), then stops qemu. Sets CMDLINE (that line,
# "" if none) and BOOT_S; the console is $W/NAME.console.
boot() {
    local name=$1 fw=$2 img=$3 con=$W/$1.console t0=$SECONDS pid rc fwargs
    case $fw in
        uboot) fwargs=(-M pc -bios "$UBOOT") ;;
        ovmf) cp "$OVMF_VARS" "$W/$name.vars"
              fwargs=(-M q35 -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
                      -drive "if=pflash,format=raw,unit=1,file=$W/$name.vars") ;;
    esac
    : > "$con"
    qemu-system-x86_64 -accel "${ACCEL:-tcg}" ${CPU:+-cpu "$CPU"} -m 512 -smp 1 "${fwargs[@]}" \
        -drive "file=$img,format=raw,if=virtio" -nic none -display none -no-reboot \
        -serial "file:$con" -monitor none > "$W/$name.qemu.log" 2>&1 &
    pid=$!; QPIDS+=("$pid")
    CMDLINE=""
    while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - t0)) -lt "$BOOT_TIMEOUT" ]; do
        # the line is complete once another line follows it
        CMDLINE=$(tr -d '\r' < "$con" | awk '/Command line:/ {l=$0; next} l != "" {print l; exit}')
        [ -n "$CMDLINE" ] && break
        # the loader gave up: U-Boot's prompt after every boot target failed, GRUB's shell
        if tr -d '\r' < "$con" | grep -aqE '^=> *$|grub> *$'; then sleep 1; break; fi
        sleep 0.5
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rc=$?; QPIDS=()
    BOOT_S=$((SECONDS - t0))
    CMDLINE=${CMDLINE#*Command line: }
    log "$name: ${BOOT_S} s, rc $rc, command line: ${CMDLINE:-(none)}"
    return 0
}

# loader_says LOADER CONSOLE: the entry the loader itself says it chose: U-Boot's
# "Enter choice: N:<TAB><MENU LABEL>" (the default when the TIMEOUT ran out), the entry
# systemd-boot's menu highlights (black on white), GRUB's "Booting `<title>'".
loader_says() {
    local t; t=$(tr -d '\r' < "$2")
    case $1 in
        extlinux) sed -n 's/^Enter choice: [0-9]*:\t//p' <<< "$t" | head -1 ;;
        systemd-boot) grep -ao $'\e\\[30m\e\\[47m[^\e]*' <<< "$t" | tail -1 | sed $'s/^\e\\[30m\e\\[47m *//; s/ *$//' ;;
        grub) grep -ao "Booting \`[^']*'" <<< "$t" | tail -1 | sed "s/^Booting \`//; s/'\$//" ;;
    esac
}

# booted NAME WANT-TAG WANT-GENERATION LOADER WANT-SAYS: the checks on the line boot() saw
booted() {
    local want_sys says; want_sys=/nix/store/$(sys_of "$3")/init
    says=$(loader_says "$4" "$W/$1.console")
    check_has "$1: $4 says it chose '$says'" "$says" "$5"
    if [ -z "$CMDLINE" ]; then
        fail "$1: the kernel started ($BOOT_S s; console $W/$1.console)"
        { tr -d '\r' < "$W/$1.console" | grep -av '^\s*$' | tail -n 15; cat "$W/$1.qemu.log"; } | cut -c1-200 | sed 's/^/     /'
        return 0
    fi
    pass "$1: the kernel started (${BOOT_S} s)"
    local tag; tag=$(grep -o 'nixssdentry=[^ ]*' <<< "$CMDLINE")
    check_eq "$1: booted entry" "${tag#nixssdentry=}" "$2"
    check_has "$1: its init= is generation $3's system" "$CMDLINE" "init=$want_sys "
    info "$1: Command line: $CMDLINE"
}

# default_of LINES: the entry id that `nix-ssd boot-menu`'s lines mark with '*'
default_of() { sed -n 's/^\* \(.*\)  [0-9a-z]\{32\}-.*$/\1/p' <<< "$1"; }

# one LOADER MAKE-MENU MAKE-IMAGE FIRMWARE NEWEST-ID NEWEST-TAG NEWEST-SAYS OLDER-ID OLDER-SAYS
one() {
    local l=$1 mk=$2 img=$3 fw=$4 newest=$5 newest_tag=$6 newest_says=$7 older=$8 older_says=$9
    local R=$W/$1/root out menu before after rc
    local t0=$SECONDS
    echo "--- $l"
    mkdir -p "$R"; "$mk" "$R"
    menu=$(ls "$R"/boot/extlinux/extlinux.conf "$R"/boot/grub/grub.cfg "$R"/boot/loader/loader.conf 2>/dev/null | head -1)
    out=$("$CLI" boot-menu --root "$R" 2>&1); rc=$?
    check_eq "$l: nix-ssd boot-menu reads the menu (rc)" "$rc" 0
    check_eq "$l: nix-ssd boot-menu: the builder's default is the newest" "$(default_of "$out")" "$newest"
    [ "$l" != grub ] || grub_efi "$R" || fail "$l: grub-mkstandalone"
    "$img" "$R" "$W/$l.img" || { fail "$l: image"; return 0; }
    boot "$l-as-written" "$fw" "$W/$l.img"
    booted "$l-as-written" "$newest_tag" 3 "$l" "$newest_says"

    before=$(cat "$menu")
    out=$("$CLI" boot-menu --root "$R" --default "$older" 2>&1); rc=$?
    check_eq "$l: nix-ssd boot-menu --default '$older' (rc)" "$rc" 0
    check_eq "$l: boot-menu marks it the default" "$(default_of "$out")" "$older"
    after=$(cat "$menu")
    info "$l: the edit: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ' ')"
    check_eq "$l: the edit changed one line of ${menu#"$R"}" "$(diff <(echo "$before") <(echo "$after") | grep -c '^[<>]')" 2
    "$img" "$R" "$W/$l.img" || { fail "$l: image"; return 0; }
    boot "$l-edited" "$fw" "$W/$l.img"
    booted "$l-edited" 1 1 "$l" "$older_says"
    rm -f "$W/$l.img"
    info "$l: $((SECONDS - t0)) s"
}

for l in $LOADERS; do
    case $l in
        extlinux) one extlinux menu_extlinux image_extlinux uboot nixos-default default "NixOS - Default" \
                      nixos-1 "NixOS - Configuration 1 (" ;;
        systemd-boot) one systemd-boot menu_sdboot image_esp ovmf nixos-generation-3.conf 3 "NixOS (Generation 3 " \
                          nixos-generation-1.conf "NixOS (Generation 1 " ;;
        grub) one grub menu_grub image_esp ovmf "NixOS - Default" default "NixOS - Default" \
                  "NixOS - All configurations>NixOS - Configuration 1 (2026-12-01 - 26.05.20261201.abcdef1)" \
                  "NixOS - Configuration 1 (" ;;
        *) fail "unknown loader '$l'" ;;
    esac
done
info "wall time $((SECONDS - t_suite)) s"
summary
