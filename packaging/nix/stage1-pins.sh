# nix-ssd, stage 1 (the NixOS initrd, after the root file system is mounted, before stage 2
# runs from the store): renames the paths `nix-ssd pin` staged into the store, so that a boot
# default pinned while the overlay was up boots without the SSD. nix-ssd-pins.service
# registers them in the database later, before nix-daemon starts. The manifest is written only
# once the staged copies are complete and on disk; a name already in the store is left as it is.
# POSIX sh (the initrd's busybox); $1 = the mounted root.
nixSsdMovePins() {
    nixSsdPins="$1/nix/.nix-ssd-pins"
    [ -f "$nixSsdPins/manifest" ] || return 0
    while read -r n; do
        case "$n" in "" | .* | */*) continue ;; esac
        if [ -e "$1/nix/store/$n" ] || [ -L "$1/nix/store/$n" ]; then continue; fi
        if [ -e "$nixSsdPins/root/nix/store/$n" ] || [ -L "$nixSsdPins/root/nix/store/$n" ]; then
            mv "$nixSsdPins/root/nix/store/$n" "$1/nix/store/$n" || echo "nix-ssd: could not move the staged $n into the store"
        fi
    done < "$nixSsdPins/manifest"
}
