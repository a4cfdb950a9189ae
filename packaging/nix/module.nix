# NixOS module for nix-ssd-generator: put Nix's writable store layer, builds and fetcher caches
# on a btrfs SSD and keep the machine booting without it.
#
#   imports = [ ./packaging/nix/module.nix ];          # or the flake's nixosModules.default
#   services.nix-ssd.enable = true;
#
# Needs NixOS 23.11 or later (asserted): the module sets `nix.settings` (22.05), the package
# uses `lib.fileset` (23.11), `env` in mkDerivation and `hostPlatform.rust` (23.05) and
# `systemdMinimal`. Options that only some releases have (boot.initrd.systemd.services, 22.05;
# boot.initrd.postMountCommands, to be removed with the scripted stage 1; boot.bootspec, 23.05)
# are defined only where they exist (`options ? …`), so importing the module never breaks an
# evaluation, even with `enable = false`.
{
  config,
  lib,
  pkgs,
  options,
  extendModules,
  ...
}:
let
  inherit (lib)
    mkEnableOption
    mkIf
    mkMerge
    mkOption
    literalExpression
    types
    ;
  cfg = config.services.nix-ssd;
  cli = "${cfg.package}/bin/nix-ssd";

  # The generator's INI file (nix-ssd-generator.conf(5)); only the keys that differ from nothing
  # are written, in the order of the man page.
  configText = ''
    # Written by the NixOS module services.nix-ssd; see nix-ssd-generator.conf(5).
    [nix-ssd]
    mode = ${cfg.mode}
    device = ${cfg.device}
    mount-point = ${cfg.mountPoint}
    device-timeout = ${cfg.deviceTimeout}
    overlay-subvolume = ${cfg.subvolumes.overlay}
    build-subvolume = ${cfg.subvolumes.build}
    cache-subvolume = ${cfg.subvolumes.cache}
  ''
  + lib.optionalString (cfg.cacheUsers != [ ]) ''
    cache-users = ${lib.concatStringsSep " " cfg.cacheUsers}
  '';

  # Root's Nix commands open /nix/store directly (store `auto`); with the overlay up that is
  # the merged store with the eMMC database, and `nix-store --gc` there deletes paths that only
  # the overlay store knows. `nix-ssd activate` writes these two files only while the overlay
  # is up and removes them otherwise, so everything below applies only while the overlay is up.
  # - client.env (NIX_REMOTE=daemon): read by root's login shells (the profile snippet), by the
  #   generator's nix-gc / nix-optimise drop-ins (`EnvironmentFile=-`, overlay mode) and by
  #   nixos-upgrade (below).
  # - nix-client.conf (store = daemon): nix.conf `!include`s it (a missing file is ignored) for
  #   processes that read no profile (sudo, scripts); the daemon's own NIX_CONFIG names its store.
  clientEnvFile = "/run/nix-ssd/client.env";
  clientConfFile = "/run/nix-ssd/nix-client.conf";
  rootThroughDaemon = ''
    if [ "$(id -u)" = 0 ] && [ -e ${clientEnvFile} ] && [ -z "''${NIX_REMOTE-}" ]; then
      export NIX_REMOTE=daemon
    fi
  '';

  # Pinning: the closure of a system goes into the internal store (with an internal root)
  # before the boot menu names it, so the machine boots it without the SSD.
  #
  # switch-to-configuration (Perl and -ng) and nixos-install run
  # `<system.build.installBootLoader> TOPLEVEL` for `switch` and `boot`, and that command is what
  # writes the boot menu and its default, for every loader (extlinux, GRUB, systemd-boot, …).
  # The module wraps it: `nix-ssd install-bootloader` runs the loader's own command at once when
  # TOPLEVEL already boots without the SSD (or the overlay is not up); otherwise it returns at
  # once and a background job copies TOPLEVEL into the internal store and only then runs the
  # loader's command — the menu keeps naming the previous default, which boots, until then, and
  # a shutdown finishes the job first (nix-ssd(8), install-bootloader). The switch waits for the
  # SSD, not for the internal disk. The loader's own command comes from the same configuration
  # evaluated without this wrapper (extendModules), so nothing of the loader is copied here.
  # NIXOS_NO_CHECK does not skip it.
  pinInstallBootLoader =
    let
      loader =
        (extendModules {
          modules = [ { services.nix-ssd.pinBootGenerations = lib.mkOverride 10 false; } ];
        }).config.system.build.installBootLoader;
    in
    pkgs.writeShellScript "nix-ssd-install-bootloader" ''
      # Written by the NixOS module services.nix-ssd. $1 = the system about to become the boot
      # default: the loader's installer runs once it boots without the SSD (see nix-ssd(8)).
      exec ${cli} install-bootloader --loader ${lib.escapeShellArg "${loader}"} "$@"
    '';
  # Stage 1: while the overlay is up, `nix-ssd pin` only stages what the internal store lacks
  #    (the mounted lower layer must not change); stage 1 renames it into the store before the
  #    new boot default's closure is looked for there (its init may be among it).
  #    nix-ssd-pins.service (generated) registers it before nix-daemon starts.
  #    - systemd stage 1 (the default since NixOS 26.05): a unit of the initrd, after the file
  #      systems under /sysroot/nix/store are mounted (RequiresMountsFor), before
  #      initrd-find-nixos-closure.service (which resolves init= in /sysroot) and
  #      initrd-nixos-activation.service (which runs its prepare-root; in releases before the
  #      find-closure unit existed it did both, after initrd-fs.target).
  #    - the scripted stage 1 (deprecated, still there in some releases): postMountCommands,
  #      after the root file system is mounted, before stage 2 runs from the store.
  #    Both run the same function (stage1-pins.sh), which ignores a staging without manifest
  #    (unfinished), names with a `/` or a leading dot, and names the store has already.
  stage1Pins = builtins.readFile ./stage1-pins.sh;
  initrdPinsUnit = {
    description = "Move the paths nix-ssd pinned into the internal Nix store";
    documentation = [ "man:nix-ssd(8)" ];
    wantedBy = [ "initrd.target" ];
    before = [
      "initrd-find-nixos-closure.service"
      "initrd-nixos-activation.service"
      "initrd.target"
      "shutdown.target"
    ];
    conflicts = [ "shutdown.target" ];
    unitConfig = {
      DefaultDependencies = false;
      RequiresMountsFor = "/sysroot/nix/store";
      ConditionPathExists = "/sysroot/nix/.nix-ssd-pins/manifest";
    };
    # The renames happen in a writable bind of /sysroot/nix of the unit's own (a read-only
    # bind of /nix/store, where some setups make one, must not stop them; nothing leaks out).
    serviceConfig = {
      Type = "oneshot";
      PrivateMounts = true;
    };
    # mv, mkdir, stat: coreutils; mount: util-linux (both in the initrd's /bin by default; named here
    # so that a smaller initrd keeps them)
    path = [
      pkgs.coreutils
      pkgs.util-linux
    ];
    # A store that is a file system of its own is left alone: a rename cannot reach it (the
    # view would show the directory under it; mv would copy, not atomically).
    script = stage1Pins + ''
      view=/run/nix-ssd-pins-view
      mkdir -p "$view/nix"
      if mount --bind /sysroot/nix "$view/nix" && mount -o remount,bind,rw "$view/nix"; then
        root=$view
      else
        echo "nix-ssd: no writable view of /sysroot/nix; renaming in place"
        root=/sysroot
      fi
      if [ "$(stat -c %d:%i "$root/nix/store")" = "$(stat -c %d:%i /sysroot/nix/store)" ] &&
         [ "$(stat -c %d "$root/nix/store")" = "$(stat -c %d "$root/nix/.nix-ssd-pins")" ]; then
        nixSsdMovePins "$root"
      else
        echo "nix-ssd: /sysroot/nix/store is a file system of its own: the staged pins are not moved"
      fi
    '';
  };
  initrdSystemd = config.boot.initrd.systemd.enable or false;
  hasSystemdInitrd = options ? boot.initrd.systemd.services;
  hasScriptedInitrd = options ? boot.initrd.postMountCommands;
  # What `nix-ssd at-shutdown` reads from a boot default's bootspec (boot.json) before it
  # relies on a staged pin: that this system's stage 1 moves staged pins. A system built
  # without this module (disabled, mode build or off, pinBootGenerations = false) does not,
  # and a default only staged for it would not boot.
  bootspecExtension = {
    "org.nix-ssd-generator.v1" = {
      stage1MovesPins = true;
    };
  };
  hasBootspec = options ? boot.bootspec.extensions;

  # NixOS release this module and its package need (see the top of the file).
  minRelease = "23.11";
in
{
  options.services.nix-ssd = {
    enable = mkEnableOption ''
      nix-ssd-generator: at boot, a systemd generator mounts the subvolumes of a btrfs SSD and
      (in overlay mode) stacks Nix's writable store layer on it, points nix-daemon's build
      directory and the listed users' fetcher caches at it, and leaves everything on the
      internal disk when the SSD is absent. Then prepare the SSD once with
      `sudo nix-ssd setup /dev/DEVICE` and reboot; `nix-ssd status` says how it went. See
      nix-ssd(8) and nix-ssd-generator(8)
    '';

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./packaging/nix/package.nix { }";
      description = ''
        The nix-ssd-generator package: provides the generator
        (`lib/systemd/system-generators/nix-ssd-generator`) and the `nix-ssd` command.
      '';
    };

    mode = mkOption {
      type = types.enum [
        "overlay"
        "build"
        "off"
      ];
      default = "overlay";
      example = "build";
      description = ''
        What goes on the SSD.

        - `overlay`: the store's writable upper layer (Nix's `local-overlay://` store, an
          experimental Nix feature that this module enables), the build directory and the
          caches. The internal store stays underneath, read-only while the overlay is up.
        - `build`: only nix-daemon's build directory and the caches.
        - `off`: the generator writes nothing.

        The kernel command line overrides this for one boot: `nix-ssd=0` (rescue),
        `nix-ssd=build`, `nix-ssd=overlay`.
      '';
    };

    device = mkOption {
      type = types.strMatching "(LABEL|UUID|PARTUUID|PARTLABEL)=.+|/dev/.+";
      default = "LABEL=NIX_SSD";
      example = "UUID=0a3c5e1f-8d2b-4f6e-9c7a-1b2d3e4f5a6b";
      description = ''
        The SSD's btrfs file system: `LABEL=`, `UUID=`, `PARTUUID=`, `PARTLABEL=` or a `/dev/…`
        path. Prepare a disk with `nix-ssd setup`; a device that holds another file system is
        never mounted.
      '';
    };

    mountPoint = mkOption {
      type = types.strMatching "/[^,:\\\\ \t\"'&?#%=]*";
      default = "/mnt/nix-ssd";
      description = ''
        Where the SSD's subvolumes are mounted (`overlay/`, `build/`, `cache/` below it).
        Must not be `/`, `/nix` or below `/nix`, and must not contain `,` `:` `\` quotes or
        white space (it goes into overlayfs options) nor `&` `?` `#` `%` `=` (they go into the
        Nix store URL; the generator refuses such a mount point).
      '';
    };

    deviceTimeout = mkOption {
      type = types.str;
      default = "10s";
      example = "30s";
      description = ''
        How long boot waits for the SSD before going on without it, as a systemd time span
        (`10s`, `1min 30s`); `0` does not wait at all, `infinity` waits forever. Slow USB
        enclosures may need more than the default.
      '';
    };

    cacheUsers = mkOption {
      type = types.listOf (types.strMatching "[A-Za-z_][A-Za-z0-9_.@-]{0,31}");
      default = [ ];
      example = [
        "alice"
        "root"
      ];
      description = ''
        Users whose `~/.cache/nix` (fetcher and evaluation caches) is moved to the SSD's cache
        subvolume while it is mounted.
      '';
    };

    subvolumes = {
      overlay = mkOption {
        type = types.strMatching "[A-Za-z0-9@._+-]{1,255}";
        default = "@overlay";
        description = "btrfs subvolume holding the store's upper layer (`upper/`, `work/`, `state/`).";
      };
      build = mkOption {
        type = types.strMatching "[A-Za-z0-9@._+-]{1,255}";
        default = "@build";
        description = "btrfs subvolume used as nix-daemon's `build-dir`.";
      };
      cache = mkOption {
        type = types.strMatching "[A-Za-z0-9@._+-]{1,255}";
        default = "@cache";
        description = "btrfs subvolume holding the users' caches (used only with {option}`services.nix-ssd.cacheUsers`).";
      };
    };

    enrolledUuids = mkOption {
      type = types.listOf (types.strMatching "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
      default = [ ];
      example = [ "4f1c0021-abcd-ef01-2345-6789aabbccdd" ];
      description = ''
        btrfs UUIDs of this machine's SSDs (`blkid -s UUID -o value DEVICE`), written to
        /etc/nix-ssd/enrolled (root only). Only an enrolled SSD is ever stacked on /nix/store;
        `nix-ssd setup` and `nix-ssd enroll` also enrol, in /var/lib/nix-ssd/enrolled. A UUID
        is no secret, so the first activation also binds the SSD to this machine with a
        root-only token (/var/lib/nix-ssd/enrolment-tokens, and on the SSD): a stick that
        copies the UUID is refused after that.
      '';
    };

    pinBootGenerations = mkOption {
      type = types.bool;
      default = cfg.mode == "overlay";
      defaultText = literalExpression ''config.services.nix-ssd.mode == "overlay"'';
      description = ''
        Copy each new system generation's closure into the internal store, with an internal GC
        root, before the boot menu names it (`nixos-rebuild switch` / `boot`, `nixos-install`):
        the boot loader's installer ({option}`system.build.installBootLoader`, for every loader:
        extlinux, GRUB, systemd-boot, …) is wrapped by `nix-ssd install-bootloader`, which runs
        it at once when the new system boots without the SSD already, and otherwise after a
        background copy (idle I/O) that a shutdown finishes first; until then the menu keeps
        the previous default. A failed copy leaves the menu as it was, so the machine never
        defaults to a generation it cannot boot without the SSD. While the overlay is up the
        copy stages what the internal store lacks; stage 1 moves it into the store at the next
        boot (a unit of the systemd initrd, or `boot.initrd.postMountCommands` in the scripted
        one), with or without the SSD.
      '';
    };

    rootThroughDaemon = mkOption {
      type = types.bool;
      default = cfg.mode == "overlay";
      defaultText = literalExpression ''config.services.nix-ssd.mode == "overlay"'';
      description = ''
        While the overlay is up, make root's Nix commands use the daemon (`NIX_REMOTE=daemon`,
        from /run/nix-ssd/client.env, which `nix-ssd activate` writes only then): in root's
        login shells, in processes that read nix.conf (`store = daemon` from an `!include`d
        file) and in nixos-upgrade when it is enabled (nix-gc and nix-optimise get it from the
        generator's drop-ins). Without the overlay root uses the internal store as usual. Root
        opening the merged store directly would use the internal database and could
        garbage-collect paths that live on the SSD.
      '';
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = lib.versionAtLeast lib.trivial.release minRelease;
          message = "services.nix-ssd needs NixOS ${minRelease} or later (this is ${lib.trivial.release}).";
        }
        {
          assertion = !(lib.hasPrefix "/nix/" "${cfg.mountPoint}/") && cfg.mountPoint != "/";
          message = "services.nix-ssd.mountPoint must not be /, /nix or below /nix.";
        }
        {
          assertion = cfg.mode != "overlay" || lib.versionAtLeast (lib.getVersion config.nix.package) "2.22";
          message = "services.nix-ssd.mode = \"overlay\" needs Nix 2.22 or later (local-overlay store, build-dir); this system has Nix ${lib.getVersion config.nix.package}. Set nix.package = pkgs.nixVersions.latest; or services.nix-ssd.mode = \"build\" (builds and caches on the SSD, the store stays on the internal disk).";
        }
      ];

      environment.systemPackages = [ cfg.package ];
      systemd.generators.nix-ssd-generator = "${cfg.package}/lib/systemd/system-generators/nix-ssd-generator";
      environment.etc."systemd/nix-ssd-generator.conf".text = configText;
    }

    # Copied, not a store symlink, and root's only: `nix-ssd activate` trusts no other file.
    (mkIf (cfg.enrolledUuids != [ ]) {
      environment.etc."nix-ssd/enrolled" = {
        text = "# services.nix-ssd.enrolledUuids\n" + lib.concatMapStrings (u: "${lib.toLower u}\n") cfg.enrolledUuids;
        mode = "0600";
      };
    })

    # nix-ssd activate points the daemon at local-overlay://; clients and `nix-ssd pin` need the
    # same features to talk about it. (nix.settings: NixOS 22.05; without it the release
    # assertion above says what is missing instead of an unknown option.)
    (lib.optionalAttrs (options ? nix.settings) {
      nix.settings = mkIf (cfg.mode == "overlay") {
        extra-experimental-features = [
          "local-overlay-store"
          "read-only-local-store"
        ];
      };
    })

    (mkIf (cfg.mode != "off" && cfg.rootThroughDaemon) {
      environment.extraInit = rootThroughDaemon;
      nix.extraOptions = "!include ${clientConfFile}";
      # Only a unit that exists: defining it otherwise would create a stub nixos-upgrade.service.
      systemd.services = lib.optionalAttrs (config.system.autoUpgrade.enable or false) {
        nixos-upgrade = {
          after = [ "nix-ssd.service" ];
          serviceConfig.EnvironmentFile = [ "-${clientEnvFile}" ];
        };
      };
    })

    (mkIf (cfg.mode != "off" && cfg.pinBootGenerations) {
      system.build.installBootLoader = lib.mkForce pinInstallBootLoader;
    })
    (mkIf (cfg.mode == "overlay" && cfg.pinBootGenerations) (mkMerge [
      # Each only where the release declares it (the scripted stage 1 is to be removed).
      (lib.optionalAttrs hasScriptedInitrd (mkIf (!initrdSystemd) {
        boot.initrd.postMountCommands = stage1Pins + ''
          nixSsdMovePins "$targetRoot"
        '';
      }))
      (lib.optionalAttrs hasSystemdInitrd (mkIf initrdSystemd {
        boot.initrd.systemd.services.nix-ssd-pins = initrdPinsUnit;
        boot.initrd.systemd.storePaths = [
          "${pkgs.coreutils}/bin/mv"
          "${pkgs.coreutils}/bin/mkdir"
          "${pkgs.coreutils}/bin/stat"
          "${pkgs.util-linux}/bin/mount"
        ];
      }))
      (lib.optionalAttrs hasBootspec { boot.bootspec.extensions = bootspecExtension; })
    ]))
  ]);

  meta.maintainers = [ ];
}
