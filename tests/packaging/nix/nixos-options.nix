# The NixOS options that packaging/nix/module.nix reads or defines, declared as NixOS declares
# them (a full nixpkgs cannot be brought here; the real nixpkgs `lib` evaluates them). Each
# comment names the NixOS/nixpkgs file that declares the option and its type there; the types
# are the real ones where `lib` has them, the submodules only with the sub-options used.
#
# `release` picks a NixOS generation:
#   "current": nixos-unstable as of 2026 (everything below): systemd stage 1 is the default
#              (boot.initrd.systemd.enable defaults to true since 26.05, release notes "Systemd
#              stage 1 by default"), the scripted stage 1 still there, deprecated
#   "no-scripted": "current" once the scripted stage 1 is removed (scheduled for 26.11): no
#              boot.initrd.postMountCommands
#   "24.05":   systemd stage 1 there but off by default (false before 26.05)
#   "24.05":   a minimal older NixOS: no system.preSwitchChecks (pre-switch-check.nix came in
#              24.11) and no GRUB / systemd-boot extraInstallCommands (a cut-down loader set, as
#              the issue measured with a real older NixOS: "The option
#              `boot.loader.systemd-boot.extraInstallCommands' ... does not exist")
#   "21.11":   older than the module supports: no nix.settings (nix.nix got it in 22.05) either
# The boot loader modules set system.build.installBootLoader the way the real ones do (a
# command line, switch-to-configuration appends the new system's path).
{ release ? "current" }:
{ lib, config, ... }:
let
  inherit (lib) mkOption mkIf types;
  current = release == "current" || release == "no-scripted";
  hasScripted = release != "no-scripted";
  has22_05 = release != "21.11";
  fake = name: "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" name)}-${name}";
  # nixos/lib/systemd-unit-options.nix: unitOption (values merge into lists)
  unitOption = types.oneOf [ types.bool types.int types.str types.path (types.listOf (types.oneOf [ types.bool types.int types.str types.path ])) ];
in
{
  options = {
    # nixos/modules/misc/assertions.nix: listOf unspecified (attrs with assertion, message)
    assertions = mkOption { type = types.listOf types.unspecified; default = [ ]; internal = true; };
    # nixos/modules/misc/assertions.nix: listOf str
    warnings = mkOption { type = types.listOf types.str; default = [ ]; internal = true; };
    # nixos/modules/misc/meta.nix: meta.maintainers, listOf maintainer (here: listOf raw)
    meta.maintainers = mkOption { type = types.listOf types.raw; default = [ ]; internal = true; };

    # nixos/modules/config/system-path.nix: listOf package
    environment.systemPackages = mkOption { type = types.listOf types.package; default = [ ]; };
    # nixos/modules/config/shells-environment.nix: lines
    environment.extraInit = mkOption { type = types.lines; default = ""; };
    # nixos/modules/system/etc/etc.nix: attrsOf (submodule { text: nullOr lines; source: path; … })
    environment.etc = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options.text = mkOption { type = types.nullOr types.lines; default = null; };
        options.mode = mkOption { type = types.str; default = "symlink"; };
      });
    };

    # nixos/modules/system/boot/systemd.nix: systemd.generators, attrsOf path
    systemd.generators = mkOption { type = types.attrsOf types.path; default = { }; };
    # nixos/modules/system/boot/systemd.nix: systemd.services, attrsOf (submodule serviceOptions
    # from nixos/lib/systemd-unit-options.nix); after/wants listOf unitNameType, environment
    # attrsOf (nullOr (oneOf [ str path package ])), serviceConfig attrsOf unitOption
    systemd.services = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options.after = mkOption { type = types.listOf types.str; default = [ ]; };
        options.wants = mkOption { type = types.listOf types.str; default = [ ]; };
        options.environment = mkOption { type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ])); default = { }; };
        options.serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
      });
    };

    # nixos/modules/config/nix.nix: nix.package, package
    nix.package = mkOption { type = types.package; default = { type = "derivation"; name = "nix-2.31.2"; version = "2.31.2"; outPath = fake "nix-2.31.2"; }; };
    # nixos/modules/config/nix.nix: nix.extraOptions, lines
    nix.extraOptions = mkOption { type = types.lines; default = ""; };
    # nixos/modules/services/system/nix-gc.nix (services/misc/nix-gc.nix before): bool
    nix.gc.automatic = mkOption { type = types.bool; default = false; };
    # nixos/modules/services/misc/nix-optimise.nix: bool
    nix.optimise.automatic = mkOption { type = types.bool; default = false; };

    # nixos/modules/tasks/auto-upgrade.nix: bool
    system.autoUpgrade.enable = mkOption { type = types.bool; default = false; };
    # nixos/modules/system/build.nix: system.build, submoduleWith freeform lazyAttrsOf (uniq unspecified)
    system.build = mkOption {
      default = { };
      type = types.submoduleWith {
        modules = [ {
          freeformType = types.lazyAttrsOf (types.uniq types.unspecified);
          # nixos/modules/system/activation/activation-script.nix (top-level.nix in older releases):
          # system.build.installBootLoader, unique { message = "Only one bootloader …" } (either str package)
          options.installBootLoader = mkOption {
            internal = true;
            default = "echo 'Warning: do not know how to make this configuration bootable; please enable a boot loader.' 1>&2; true";
            type = types.unique { message = "Only one bootloader can be enabled at a time."; } (types.either types.str types.package);
          };
        } ];
      };
    };

    # nixos/modules/system/boot/loader/generic-extlinux-compatible/default.nix: bool
    boot.loader.generic-extlinux-compatible.enable = mkOption { type = types.bool; default = false; };
    # nixos/modules/system/boot/loader/grub/grub.nix: bool (default true there; false here so one
    # loader at a time is chosen by the test)
    boot.loader.grub.enable = mkOption { type = types.bool; default = false; };
    # nixos/modules/system/boot/loader/systemd-boot/systemd-boot.nix: bool
    boot.loader.systemd-boot.enable = mkOption { type = types.bool; default = false; };
  };

  imports = lib.optional hasScripted {
    # nixos/modules/system/boot/stage-1.nix: boot.initrd.postMountCommands, lines (the scripted
    # stage 1; nixos/modules/system/boot/systemd/initrd.nix asserts it empty with systemd stage 1)
    options.boot.initrd.postMountCommands = mkOption { type = types.lines; default = ""; };
  } ++ lib.optional has22_05 {
    # nixos/modules/system/boot/systemd/initrd.nix: boot.initrd.systemd.enable, bool (default
    # true from 26.05 on: "current"; false before)
    options.boot.initrd.systemd.enable = mkOption { type = types.bool; default = current; };
    # nixos/modules/system/boot/systemd/initrd.nix: boot.initrd.systemd.services,
    # systemdUtils.types.initrdServices (serviceOptions of nixos/lib/systemd-unit-options.nix:
    # after/before/wantedBy/conflicts listOf unitNameType, unitConfig/serviceConfig attrsOf
    # unitOption, path listOf (oneOf [ package str ]), script lines), the sub-options used here
    options.boot.initrd.systemd.services = mkOption {
      default = { };
      type = types.attrsOf (types.submodule {
        options.description = mkOption { type = types.singleLineStr; default = ""; };
        options.documentation = mkOption { type = types.listOf types.str; default = [ ]; };
        options.wantedBy = mkOption { type = types.listOf types.str; default = [ ]; };
        options.requiredBy = mkOption { type = types.listOf types.str; default = [ ]; };
        options.before = mkOption { type = types.listOf types.str; default = [ ]; };
        options.after = mkOption { type = types.listOf types.str; default = [ ]; };
        options.conflicts = mkOption { type = types.listOf types.str; default = [ ]; };
        options.unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
        options.serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
        options.path = mkOption { type = types.listOf (types.oneOf [ types.package types.str ]); default = [ ]; };
        options.script = mkOption { type = types.lines; default = ""; };
      });
    };
    # nixos/modules/system/boot/systemd/initrd.nix: boot.initrd.systemd.storePaths,
    # utils.systemdUtils.types.initrdStorePath (a path string, or { source; target; … })
    options.boot.initrd.systemd.storePaths = mkOption { type = types.listOf (types.either types.singleLineStr types.attrs); default = [ ]; };
  } ++ lib.optional (release != "21.11") {
    # nixos/modules/system/activation/bootspec.nix (23.05): boot.bootspec.extensions,
    # attrsOf anything (written into the system's boot.json)
    options.boot.bootspec.extensions = mkOption { type = types.attrsOf types.anything; default = { }; };
  } ++ lib.optional has22_05 {
    # nixos/modules/config/nix.nix: nix.settings, submodule { freeformType = semanticConfType }
    # where semanticConfType = attrsOf (either confAtom (listOf confAtom)),
    # confAtom = nullOr (oneOf [ bool int float str path package ])
    options.nix.settings = mkOption {
      default = { };
      type =
        let confAtom = types.nullOr (types.oneOf [ types.bool types.int types.float types.str types.path types.package ]);
        in types.submodule { freeformType = types.attrsOf (types.either confAtom (types.listOf confAtom)); };
    };
  }
  ++ lib.optional current {
    # nixos/modules/system/activation/pre-switch-check.nix: attrsOf str
    options.system.preSwitchChecks = mkOption { type = types.attrsOf types.str; default = { }; };
    # nixos/modules/system/boot/loader/grub/grub.nix: lines
    options.boot.loader.grub.extraInstallCommands = mkOption { type = types.lines; default = ""; };
    # nixos/modules/system/boot/loader/systemd-boot/systemd-boot.nix: lines
    options.boot.loader.systemd-boot.extraInstallCommands = mkOption { type = types.lines; default = ""; };
  };

  config = lib.mkMerge [
    # generic-extlinux-compatible/default.nix: "${builder} ${builderArgs} -c"
    (mkIf config.boot.loader.generic-extlinux-compatible.enable {
      system.build.installBootLoader = "${fake "extlinux-conf-builder.sh"} -g 20 -t 5 -c";
    })
    # grub/grub.nix: a Perl installer with the GRUB config's path
    (mkIf config.boot.loader.grub.enable {
      system.build.installBootLoader = "${fake "install-grub.sh"} ${fake "grub-config.xml"}";
    })
    # systemd-boot/systemd-boot.nix: a builder script
    (mkIf config.boot.loader.systemd-boot.enable {
      system.build.installBootLoader = fake "systemd-boot";
    })
  ];
}
