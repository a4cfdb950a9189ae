# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_nix_ssd_global_optspecs
    string join \n h/help V/version
end

function __fish_nix_ssd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_nix_ssd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_nix_ssd_using_subcommand
    set -l cmd (__fish_nix_ssd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -s V -l version -d 'Print version'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "preview" -d 'Print the units nix-ssd-generator would write for this machine, with their file names'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "status" -d 'Show what was decided, what is mounted and what nix-daemon uses (exit 0 healthy, 1 degraded: working without the SSD, 2 broken)'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "setup" -d 'Prepare a device as the Nix SSD: btrfs, label, subvolumes and directories (destroys its contents)'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "enroll" -d 'Record a btrfs prepared elsewhere (or adopted) as this machine\'s SSD: only enrolled SSDs are stacked (`setup` enrols what it makes)'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "pin" -d 'Make closures work without the SSD: root them in the internal store and, while the overlay is up, stage what it lacks, which the next boot moves in before stacking (run for every new boot default)'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "prune-pins" -d 'Drop the pins of NixOS systems that no profile generation, boot menu entry, running or booted system names any more (pins made by hand stay)'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "install-bootloader" -d 'The NixOS module\'s boot loader hook: run the loader\'s installer for SYSTEM once it boots without the SSD — now if it does, else after copying it into the internal store in the background (a shutdown finishes it first)'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "boot-menu" -d 'Show the boot menu (extlinux, GRUB or systemd-boot), its default (*) and which entries boot without the SSD; --default makes an entry the default'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "sync-roots" -d 'Root in the internal store every path of it the SSD layer depends on (run when nix-ssd.service stops)'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "reclaim" -d 'Free space on a full SSD: release the space reserve, `nix-store --gc` through nix-daemon, make the reserve again'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "lvm-plan" -d 'Move an LVM cache to writeback and make room for Nix on its SSD (uncache, new writeback cache pool on the SSD PV, re-attach, new LV for Nix, nix-ssd setup), checked against the live pvs/lvs; prints the commands, runs them only with --execute'
complete -c nix-ssd -n "__fish_nix_ssd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand preview" -l cmdline -d 'Use this kernel command line instead of /proc/cmdline' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand preview" -l root -d 'Read config files and device data below this directory instead of /' -r -F
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand preview" -l blkid-export -d 'Also read device data from this saved `blkid -o export` output' -r -F
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand preview" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand status" -l json -d 'Print the report as JSON (schema documented in nix-ssd(8); field "schema" is its version)'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand status" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand setup" -l label -d 'File system label (default: the configured LABEL=, else NIX_SSD)' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand setup" -l force -d 'Overwrite an existing file system or partition table'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand setup" -l adopt -d 'Convert a btrfs with separate @upper/@work subvolumes (@upper/@work/@build/@cache), keeping @upper\'s files'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand setup" -l dry-run -d 'Print every step, change nothing'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand setup" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand enroll" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand pin" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand prune-pins" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand install-bootloader" -l loader -d 'The boot loader\'s installer (a shell command line; SYSTEM and ARGS are appended)' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand install-bootloader" -l finish -d 'Finish what a switch left to the background job (the job itself, and at-shutdown)'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand install-bootloader" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand boot-menu" -l root -d 'Read (and edit) the menu below this directory instead of /' -r -F
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand boot-menu" -l default -d 'Make this entry the default (an extlinux label, a GRUB title path, a systemd-boot entry file)' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand boot-menu" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand sync-roots" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand reclaim" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand lvm-plan" -l vg -d 'Volume group holding the cached LV, its HDD PV and the SSD PV' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand lvm-plan" -l pv -d 'The SSD physical volume: the new cache pool and the Nix LV are allocated on it only' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand lvm-plan" -l cache-size -d 'Data size of the new cache pool (binary units: 512M, 1.5G, 200G, 1T; plain number = bytes)' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand lvm-plan" -l meta-size -d 'Metadata size of the new cache pool (lvmcache(7): about 1/1000 of the cache size, at least 8M)' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand lvm-plan" -l nix-size -d 'Size of the new LV that gets the Nix btrfs (`nix-ssd setup`)' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand lvm-plan" -l lv -d 'The LV to keep cached [default: the only cached LV of the VG; needed when it is no longer cached]' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand lvm-plan" -l pool -d 'Name of the new cache pool [default: the current pool\'s name, else "cpool"]' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand lvm-plan" -l nix-name -d 'Name of the new LV for Nix' -r
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand lvm-plan" -l execute -d 'Run the steps (without it the plan is only printed); stops at the first failure and says what to do next'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand lvm-plan" -s h -l help -d 'Print help'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "preview" -d 'Print the units nix-ssd-generator would write for this machine, with their file names'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "status" -d 'Show what was decided, what is mounted and what nix-daemon uses (exit 0 healthy, 1 degraded: working without the SSD, 2 broken)'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "setup" -d 'Prepare a device as the Nix SSD: btrfs, label, subvolumes and directories (destroys its contents)'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "enroll" -d 'Record a btrfs prepared elsewhere (or adopted) as this machine\'s SSD: only enrolled SSDs are stacked (`setup` enrols what it makes)'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "pin" -d 'Make closures work without the SSD: root them in the internal store and, while the overlay is up, stage what it lacks, which the next boot moves in before stacking (run for every new boot default)'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "prune-pins" -d 'Drop the pins of NixOS systems that no profile generation, boot menu entry, running or booted system names any more (pins made by hand stay)'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "install-bootloader" -d 'The NixOS module\'s boot loader hook: run the loader\'s installer for SYSTEM once it boots without the SSD — now if it does, else after copying it into the internal store in the background (a shutdown finishes it first)'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "boot-menu" -d 'Show the boot menu (extlinux, GRUB or systemd-boot), its default (*) and which entries boot without the SSD; --default makes an entry the default'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "sync-roots" -d 'Root in the internal store every path of it the SSD layer depends on (run when nix-ssd.service stops)'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "reclaim" -d 'Free space on a full SSD: release the space reserve, `nix-store --gc` through nix-daemon, make the reserve again'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "lvm-plan" -d 'Move an LVM cache to writeback and make room for Nix on its SSD (uncache, new writeback cache pool on the SSD PV, re-attach, new LV for Nix, nix-ssd setup), checked against the live pvs/lvs; prints the commands, runs them only with --execute'
complete -c nix-ssd -n "__fish_nix_ssd_using_subcommand help; and not __fish_seen_subcommand_from preview status setup enroll pin prune-pins install-bootloader boot-menu sync-roots reclaim lvm-plan help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
