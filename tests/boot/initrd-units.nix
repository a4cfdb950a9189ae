# What tests/boot/initrd.sh installs into the boot bed's dracut-built systemd initrd (Debian 13),
# as a line archive for the host to unpack ("=== FILE PATH MODE" then the file's lines, each
# prefixed with "|"; "=== LINK PATH TARGET"). Evaluated with the real nixpkgs lib:
#   nix eval --raw --file initrd-units.nix --arg src CHECKOUT --arg nixpkgs DIR-WITH-lib [--arg withPins false] archive
#
# * nix-ssd-pins.service: the NixOS module's own unit (boot.initrd.systemd.services.nix-ssd-pins),
#   taken from tests/packaging/nix/eval.nix (scripts.initrdUnit: the module evaluated by the real
#   nixpkgs lib against the option mirror), through JSON as exported there, and written the way
#   NixOS writes an initrd service (nixos/lib/systemd-lib.nix: serviceToUnit, commonUnitText,
#   attrsToSection, makeJobScript; nixos/modules/system/boot/systemd/initrd.nix: units in
#   /etc/systemd/system, wantedBy/requiredBy as .wants/.requires links):
#   - [Unit]: unitConfig plus Description/Documentation/Before/After/Conflicts, keys sorted,
#     booleans as true/false, a list value one line per item
#   - [Service]: Environment="PATH=…" from `path` (bin dirs, then sbin dirs), then
#     serviceConfig with ExecStart= the job script and scriptArgs ("")
#   - [Install]: WantedBy=
#   - the job script: `script` after "set -e" under bash (makeJobScript without strict shell
#     checks, NixOS's default), at …/unit-script-nix-ssd-pins-start/bin/nix-ssd-pins-start
#   The only translation: `path` names Nix packages (the stand-in package set's fake store
#   paths); in Debian's initrd their tools are the real ones under /usr, so PATH names
#   /usr/bin and /usr/sbin. A package this file does not know stops the evaluation.
# * initrd-find-nixos-closure.service: a stand-in for NixOS's unit of that name
#   (nixos/modules/system/boot/systemd/initrd.nix), same ordering (DefaultDependencies=no,
#   RequiresMountsFor=/sysroot/nix/store, Before=initrd.target shutdown.target,
#   Conflicts=shutdown.target, RequiredBy=initrd.target, oneshot, RemainAfterExit) and the same
#   work: init= from /proc/cmdline resolved inside /sysroot, /nixos-closure, NEW_INIT in
#   /etc/switch-root.conf. NixOS resolves with chroot-realpath (no code of /sysroot runs);
#   Debian has none, so the sysroot's realpath runs in a chroot. An init= that is not in
#   /sysroot fails the unit, and with it initrd.target (NixOS fails there too: the
#   resolution's error under set -e), and it says so in the journal.
# * initrd-switch-root.service drop-in: NixOS's (switch-root to NEW_INIT).
# * harness-initrd-emergency.service: the bed's, not NixOS's: when the initrd gives up
#   (emergency.target), its journal goes to the host (2nd serial port) and the machine powers
#   off, so a failing initrd ends the boot with its evidence instead of a shell.
# withPins = false leaves nix-ssd-pins.service out (the series' negative control).
{ src, nixpkgs, withPins ? true }:
let
  lib = import (nixpkgs + "/lib");
  inherit (builtins) attrNames concatMap elem head isList match toJSON;
  inherit (lib) concatStrings concatStringsSep init optionalAttrs splitString unique;

  eval = import (src + "/tests/packaging/nix/eval.nix") { inherit src nixpkgs; };
  # exactly what the JSON export holds (paths as strings)
  pinsUnit = builtins.fromJSON (toJSON eval.scripts.initrdUnit);

  unitDir = "etc/systemd/system";
  scriptDir = "usr/lib/nix-ssd-initrd-test";

  # A Nix package of the initrd unit's `path` -> its prefix in Debian's initrd.
  debianPrefix = p:
    let m = match "/nix/store/[0-9a-z]{32}-(.+)" p; n = if m == null then p else head m; in
    if elem n [ "coreutils" "util-linux" ] then "/usr"
    else throw "initrd-units.nix: the module's initrd unit needs ${n} in its path; say where Debian's initrd has it";

  # systemd's value syntax as NixOS writes it
  value = x: if x == true then "true" else if x == false then "false" else toString x;
  section = attrs: concatStrings (concatMap (k: let v = attrs.${k}; in map (x: "${k}=${value x}\n") (if isList v then v else [ v ])) (attrNames attrs));
  nonEmpty = k: l: optionalAttrs (l != [ ]) { ${k} = toString l; };

  # One NixOS initrd service -> { files; links; unit text }.
  service = name: d:
    let
      get = k: d.${k} or [ ];
      generated = optionalAttrs ((d.description or "") != "") { Description = d.description; }
        // nonEmpty "Documentation" (get "documentation") // nonEmpty "Before" (get "before")
        // nonEmpty "After" (get "after") // nonEmpty "Conflicts" (get "conflicts");
      clash = lib.intersectLists (attrNames generated) (attrNames (d.unitConfig or { }));
      unitConfig = if clash == [ ] then (d.unitConfig or { }) // generated
        else throw "initrd-units.nix: ${name}: unitConfig and the options both set ${toString clash}";
      scriptName = "${name}-start";
      scriptPath = "/${scriptDir}/unit-script-${scriptName}/bin/${scriptName}";
      hasScript = (d.script or "") != "";
      prefixes = unique (map debianPrefix (get "path"));
      pathEnv = concatStringsSep ":" (unique (map (p: "${p}/bin") prefixes ++ map (p: "${p}/sbin") prefixes));
      serviceConfig = (d.serviceConfig or { }) // optionalAttrs hasScript { ExecStart = "${scriptPath} "; };
      text = "[Unit]\n${section unitConfig}\n"
        + "[Service]\n"
        + lib.optionalString (get "path" != [ ]) "Environment=${toJSON "PATH=${pathEnv}"}\n"
        + section serviceConfig
        + lib.optionalString (get "wantedBy" != [ ]) "\n[Install]\nWantedBy=${concatStringsSep " " (get "wantedBy")}\n";
    in {
      inherit text;
      files = { "${unitDir}/${name}.service" = { mode = "0644"; inherit text; }; }
        // optionalAttrs hasScript { ${lib.removePrefix "/" scriptPath} = { mode = "0755"; text = "#!/bin/bash\nset -e\n\n${d.script}\n"; }; };
      links = lib.listToAttrs (map (t: { name = "${unitDir}/${t}.wants/${name}.service"; value = "../${name}.service"; }) (get "wantedBy")
        ++ map (t: { name = "${unitDir}/${t}.requires/${name}.service"; value = "../${name}.service"; }) (get "requiredBy"));
    };
  # A drop-in for an upstream unit (NixOS: overrides.conf of the unit it extends).
  dropIn = name: d: {
    files."${unitDir}/${name}.service.d/overrides.conf" = { mode = "0644"; text = "[Unit]\n${section (d.unitConfig or { })}\n[Service]\n${section (d.serviceConfig or { })}"; };
    links = { };
  };

  findClosure = service "initrd-find-nixos-closure" {
    description = "Find NixOS closure";
    unitConfig = {
      RequiresMountsFor = "/sysroot/nix/store";
      DefaultDependencies = false;
    };
    before = [ "initrd.target" "shutdown.target" ];
    conflicts = [ "shutdown.target" ];
    requiredBy = [ "initrd.target" ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
    };
    script = ''
      set -uo pipefail
      export PATH=/usr/bin:/usr/sbin
      # the closure to boot: the init= of the kernel command line
      closure=
      for o in $(< /proc/cmdline); do
          case $o in
              init=*)
                  IFS="=" read -r -a initParam <<< "$o"
                  closure="''${initParam[1]}"
                  ;;
          esac
      done
      if [ -z "''${closure:-}" ]; then
        echo 'No init= parameter on the kernel command line' >&2
        exit 1
      fi
      # its symlinks resolved inside /sysroot; an init that is not there is the boot's end
      if ! resolved=$(chroot /sysroot realpath -e -- "$closure"); then
        echo "initrd-find-nixos-closure (bed stand-in): init=$closure is not in /sysroot: the closure to boot is missing" >&2
        exit 1
      fi
      echo "initrd-find-nixos-closure (bed stand-in): init=$closure found in /sysroot ($resolved)"
      closure="$(dirname "$resolved")"
      ln --symbolic "$closure" /nixos-closure
      if ! [ -x "/sysroot$(readlink "/sysroot$closure/prepare-root" || echo "$closure/prepare-root")" ]; then
        echo "NEW_INIT=''${initParam[1]}" > /etc/switch-root.conf
        echo "$closure does not look like a NixOS installation - not activating"
        exit 0
      fi
      echo 'NEW_INIT=' > /etc/switch-root.conf
    '';
  };
  switchRoot = dropIn "initrd-switch-root" {
    serviceConfig = {
      EnvironmentFile = "-/etc/switch-root.conf";
      ExecStart = [ "" "systemctl --no-block switch-root /sysroot \"\${NEW_INIT}\"" ];
    };
  };
  emergency = service "harness-initrd-emergency" {
    description = "bed harness: the initrd's journal to the host, then power off";
    unitConfig.DefaultDependencies = false;
    wantedBy = [ "emergency.target" ];
    before = [ "emergency.service" "dracut-emergency.service" ];
    serviceConfig.Type = "oneshot";
    script = ''
      {
        echo HARNESS-BEGIN
        echo "step: initrd-emergency"
        echo "failed-units: $(systemctl --failed --no-legend --plain | while read -r u _; do printf '%s ' "$u"; done)" || true
        echo HARNESS-END
        echo JOURNAL-BEGIN
        journalctl -b -q -o short-monotonic --no-hostname || true
        echo JOURNAL-END
      } > /dev/ttyS1 2>&1
      systemctl --force --force poweroff
    '';
  };
  pins = service "nix-ssd-pins" pinsUnit;

  parts = [ findClosure switchRoot emergency ] ++ lib.optional withPins pins;
  files = lib.foldl' (a: p: a // p.files) { } parts;
  links = lib.foldl' (a: p: a // p.links) { } parts;
  fileLines = t: if lib.hasSuffix "\n" t then init (splitString "\n" t) else throw "initrd-units.nix: a file without its last newline";
in
{
  # the module's unit as written into the initrd (initrd.sh prints it)
  pinsUnitText = pins.text;
  pinsScript = pins.files."${scriptDir}/unit-script-nix-ssd-pins-start/bin/nix-ssd-pins-start".text;
  archive = concatStrings (map (p: "=== FILE ${p} ${files.${p}.mode}\n" + concatStrings (map (l: "|${l}\n") (fileLines files.${p}.text))) (attrNames files))
    + concatStrings (map (p: "=== LINK ${p} ${links.${p}}\n") (attrNames links));
}
