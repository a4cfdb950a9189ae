# nix-ssd, stage 1 (the NixOS initrd, after the file systems under /nix/store are mounted, before
# the boot default's closure is looked for there): renames the paths `nix-ssd pin` staged into
# the store, so that a boot default pinned while the overlay was up boots without the SSD.
# nix-ssd-pins.service registers them in the database later, before nix-daemon starts. The
# manifest is written only once the staged copies are complete and on disk (a staging without
# one is ignored); a name already in the store is left as it is; names with a `/` or a leading
# dot are skipped. Both stage 1s run it: the scripted one (busybox sh, postMountCommands) and a
# unit of the systemd one (bash). POSIX sh; $1 = the root holding nix/ (nothing outside
# $1/nix is touched).
nixSsdMovePins() {
    nixSsdPins="$1/nix/.nix-ssd-pins"
    [ -f "$nixSsdPins/manifest" ] || return 0
    nixSsdMoved=0
    nixSsdThere=0
    while read -r n; do
        case "$n" in "" | .* | */*) continue ;; esac
        if [ -e "$1/nix/store/$n" ] || [ -L "$1/nix/store/$n" ]; then
            nixSsdThere=$((nixSsdThere + 1))
            continue
        fi
        if [ -e "$nixSsdPins/root/nix/store/$n" ] || [ -L "$nixSsdPins/root/nix/store/$n" ]; then
            if mv "$nixSsdPins/root/nix/store/$n" "$1/nix/store/$n"; then
                nixSsdMoved=$((nixSsdMoved + 1))
            else
                echo "nix-ssd: could not move the staged $n into the store"
            fi
        fi
    done < "$nixSsdPins/manifest"
    echo "nix-ssd: moved $nixSsdMoved staged path(s) into the store ($nixSsdThere were there already)"
}
