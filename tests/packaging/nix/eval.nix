# Evaluates packaging/nix/{module,package,flake}.nix with the real Nix evaluator and the real
# nixpkgs `lib` (lib.evalModules: option types, mkIf / mkMerge / priorities, the check that
# every defined option exists), against the NixOS options the module touches as NixOS declares
# them (nixos-options.nix) and a stand-in package set (stub-pkgs.nix).
#   nix-instantiate --eval --strict --json tests/packaging/nix/eval.nix \
#     --arg src /path/to/checkout --arg nixpkgs /dir/holding/nixpkgs/lib
# Returns { failures = [ names of failed checks ]; passed = N; options = [ … ]; conf = { MODE =
# text of /etc/systemd/nix-ssd-generator.conf }; scripts = { … }; package = { … }; }; run.sh runs
# the scripts (pinning hooks) and the package's check phase from what is returned here.
{ src, nixpkgs }:
let
  lib = import (nixpkgs + "/lib");
  inherit (builtins) all attrNames concatMap isString filter elem hasAttr stringLength substring pathExists tryEval deepSeq;
  nixDir = src + "/packaging/nix";
  cargo = builtins.fromTOML (builtins.readFile (src + "/Cargo.toml"));
  systems = [ "aarch64-linux" "x86_64-linux" ];
  stubPkgs = system: import ./stub-pkgs.nix { inherit lib system; };
  loaderOption = { extlinux = "generic-extlinux-compatible"; grub = "grub"; systemd-boot = "systemd-boot"; };
  loaders = attrNames loaderOption;

  # The NixOS release as lib reports it: the real lib says 26.11; older sets get an older one.
  libOf = release: if release == "current" || release == "no-scripted" then lib else lib.extend (final: prev: { trivial = prev.trivial // { inherit release; }; });

  # One NixOS evaluation: the options of `release`, one boot loader, the module, settings.
  # stage1: "default" (the release's own default: systemd on current NixOS), "systemd" or
  # "scripted" (boot.initrd.systemd.enable set true or false).
  evalNixOS = { system ? "aarch64-linux", release ? "current", loader ? "extlinux", stage1 ? "default", settings ? { }, extra ? { } }:
    (libOf release).evalModules {
      modules = [
        (import ./nixos-options.nix { inherit release; })
        (nixDir + "/module.nix")
        {
          _module.args.pkgs = stubPkgs system;
          boot.loader.${loaderOption.${loader}}.enable = true;
          services.nix-ssd = settings;
        }
        (lib.optionalAttrs (stage1 != "default") { boot.initrd.systemd.enable = stage1 == "systemd"; })
        extra
      ];
    };
  # What the checks look at, forced; `ok = false` when evaluation throws (unknown option, type
  # error, infinite recursion is not caught but fails the whole run).
  view = e:
    let
      c = e.config;
      v = {
        inherit (c) assertions;
        systemPackages = map (p: p.name) c.environment.systemPackages;
        generators = c.systemd.generators;
        etc = lib.mapAttrs (_: f: f.text) c.environment.etc;
        extraInit = c.environment.extraInit;
        nixSettings = c.nix.settings or null;
        nixExtraOptions = c.nix.extraOptions;
        services = c.systemd.services;
        installBootLoader = let i = c.system.build.installBootLoader; in if isString i then { cmd = i; } else { inherit (i) name text; };
        preSwitchChecks = c.system.preSwitchChecks or null;
        postMountCommands = c.boot.initrd.postMountCommands or "";
        initrdSystemd = c.boot.initrd.systemd.enable or false;
        initrdServices = c.boot.initrd.systemd.services or { };
        initrdStorePaths = c.boot.initrd.systemd.storePaths or [ ];
        bootspec = c.boot.bootspec.extensions or { };
        cfg = c.services.nix-ssd;
      };
      r = tryEval (deepSeq (removeAttrs v [ "cfg" ]) v);
      # A failed evaluation: every field empty, so the checks fail instead of aborting the run.
      none = { assertions = [ ]; systemPackages = null; generators = null; etc = { }; extraInit = null; nixSettings = null;
        nixExtraOptions = null; services = { }; installBootLoader = { }; preSwitchChecks = null; postMountCommands = null;
        initrdSystemd = null; initrdServices = null; initrdStorePaths = null; bootspec = null; cfg = { }; };
    in { ok = r.success; } // (if r.success then r.value else none);

  has = needle: hay: isString hay && lib.hasInfix needle hay;
  allOk = as: all (a: a.assertion) as;
  failed = as: map (a: a.message) (filter (a: !a.assertion) as);
  check = name: ok: { inherit name; ok = (tryEval (deepSeq ok ok)).value or false == true; };

  confFor = { mode, device ? "LABEL=NIX_SSD", timeout ? "10s", users ? "" }: ''
    # Written by the NixOS module services.nix-ssd; see nix-ssd-generator.conf(5).
    [nix-ssd]
    mode = ${mode}
    device = ${device}
    mount-point = /mnt/nix-ssd
    device-timeout = ${timeout}
    overlay-subvolume = @overlay
    build-subvolume = @build
    cache-subvolume = @cache
  '' + lib.optionalString (users != "") "cache-users = ${users}\n";

  # ---- every mode, for both architectures and every boot loader, current NixOS
  modes = {
    overlay = { enable = true; cacheUsers = [ "alice" "root" ]; };
    build = { enable = true; mode = "build"; device = "UUID=0a3c"; deviceTimeout = "1min 30s"; };
    off = { enable = true; mode = "off"; };
    disabled = { };
  };
  # nix-gc, nix-optimise and nixos-upgrade enabled: the module must not give them NIX_REMOTE.
  jobs = { nix.gc.automatic = true; nix.optimise.automatic = true; system.autoUpgrade.enable = true; };
  matrix = release: concatMap (system: concatMap (loader:
    let
      ev = lib.mapAttrs (_: settings: view (evalNixOS { inherit system release loader settings; extra = jobs; })) modes;
      pkg = (stubPkgs system).callPackage (nixDir + "/package.nix") { };
      cli = "${pkg}/bin/nix-ssd";
      loaderCmd = ev.disabled.installBootLoader.cmd or "?";
      p = "${release} ${system} ${loader}";
      o = ev.overlay;
      noPin = e: e.installBootLoader == { cmd = loaderCmd; } && (e.preSwitchChecks == null || e.preSwitchChecks == { });
    in [
      (check "${p}: every mode evaluates" (all (m: ev.${m}.ok) (attrNames modes)))
      (check "${p}: enable = false defines nothing" (ev.disabled.systemPackages == [ ] && ev.disabled.generators == { } && ev.disabled.etc == { } && ev.disabled.extraInit == "" && ev.disabled.services == { } && noPin ev.disabled && ev.disabled.assertions == [ ]))
      (check "${p}: the loader's own installer without the module" (has "/nix/store/" loaderCmd))
      (check "${p}: overlay: generator installed" (o.generators == { nix-ssd-generator = "${pkg}/lib/systemd/system-generators/nix-ssd-generator"; }))
      (check "${p}: overlay: package in systemPackages" (o.systemPackages == [ pkg.name ]))
      (check "${p}: overlay: config file text" (o.etc == { "systemd/nix-ssd-generator.conf" = confFor { mode = "overlay"; users = "alice root"; }; }))
      (check "${p}: overlay: assertions hold" (allOk o.assertions))
      (check "${p}: overlay: experimental features in nix.settings" ((o.nixSettings.extra-experimental-features or null) == [ "local-overlay-store" "read-only-local-store" ]))
      (check "${p}: overlay: root's shells use the daemon only while client.env exists" (has "[ -e /run/nix-ssd/client.env ]" o.extraInit && has "export NIX_REMOTE=daemon" o.extraInit))
      (check "${p}: overlay: nix.conf includes the client file" (has "!include /run/nix-ssd/nix-client.conf" o.nixExtraOptions))
      (check "${p}: overlay: no static NIX_REMOTE on any service" (all (s: !(o.services.${s}.environment or { } ? NIX_REMOTE)) (attrNames o.services)))
      (check "${p}: overlay: nix-gc / nix-optimise left to the generator's drop-ins" (attrNames o.services == [ "nixos-upgrade" ]))
      (check "${p}: overlay: nixos-upgrade reads client.env" ((o.services.nixos-upgrade.serviceConfig.EnvironmentFile or null) == [ "-/run/nix-ssd/client.env" ] && elem "nix-ssd.service" (o.services.nixos-upgrade.after or [ ])))
      (check "${p}: overlay: ${loader} installer wrapped: nix-ssd install-bootloader runs the loader's own command" ((o.installBootLoader.name or null) == "nix-ssd-install-bootloader" && has "\nexec ${cli} install-bootloader --loader ${lib.escapeShellArg loaderCmd} \"$@\"\n" (o.installBootLoader.text or null)))
      (check "${p}: overlay: nothing in preSwitchChecks (the switch does not wait for the internal disk)" (o.preSwitchChecks == null || o.preSwitchChecks == { }))
      (check "${p}: the release's default stage 1 is systemd's" o.initrdSystemd)
      (check "${p}: enrolledUuids: /etc/nix-ssd/enrolled, lowercase, copied mode 0600" (
        let e = (evalNixOS { inherit system release loader; settings = modes.overlay // { enrolledUuids = [ "4F1C0021-ABCD-EF01-2345-6789AABBCCDD" ]; }; }).config.environment.etc."nix-ssd/enrolled";
        in e.text == "# services.nix-ssd.enrolledUuids\n4f1c0021-abcd-ef01-2345-6789aabbccdd\n" && e.mode == "0600"))
      (check "${p}: enrolledUuids: none, no file" (!(o.etc ? "nix-ssd/enrolled")))
      (check "${p}: build: config file text" (ev.build.etc == { "systemd/nix-ssd-generator.conf" = confFor { mode = "build"; device = "UUID=0a3c"; timeout = "1min 30s"; }; }))
      (check "${p}: build: generator installed, no features, no pinning, no root routing" (ev.build.generators == o.generators && ev.build.nixSettings == { } && noPin ev.build && ev.build.extraInit == "" && ev.build.services == { }))
      (check "${p}: off: config file says mode = off, nothing else" (has "mode = off\n" (ev.off.etc."systemd/nix-ssd-generator.conf" or null) && ev.off.nixSettings == { } && noPin ev.off && ev.off.extraInit == ""))
    ]) loaders) systems;
  current = matrix "current";

  # ---- stage 1, both kinds, both architectures, every loader: the staged pins are moved into the
  # store before the boot default's closure is looked for there
  stage1Checks = release: concatMap (system: concatMap (loader: concatMap (stage1:
    let
      ev = lib.mapAttrs (_: settings: view (evalNixOS { inherit system release loader stage1 settings; })) modes;
      o = ev.overlay;
      p = "${release} ${system} ${loader} ${stage1} stage 1";
      u = o.initrdServices.nix-ssd-pins or { };
      pk = stubPkgs system;
      none = m: ev.${m}.postMountCommands == "" && !(ev.${m}.initrdServices or { } ? nix-ssd-pins) && !(ev.${m}.bootspec or { } ? "org.nix-ssd-generator.v1");
    in [
      (check "${p}: every mode evaluates, every assertion holds" (all (m: ev.${m}.ok && allOk ev.${m}.assertions) (attrNames modes)))
      (check "${p}: overlay: the bootspec says this system's stage 1 moves staged pins" (o.bootspec."org.nix-ssd-generator.v1" or null == { stage1MovesPins = true; }))
      (check "${p}: build, off, disabled: no stage 1 step, no bootspec entry" (all none [ "build" "off" "disabled" ]))
    ] ++ (if stage1 == "scripted" then [
      (check "${p}: overlay: postMountCommands moves the staged pins under $targetRoot" (has "nixSsdMovePins() {" o.postMountCommands && has "\nnixSsdMovePins \"$targetRoot\"\n" o.postMountCommands))
      (check "${p}: overlay: no initrd unit" (!(o.initrdServices ? nix-ssd-pins)))
    ] else [
      (check "${p}: overlay: no postMountCommands (systemd stage 1 asserts it empty)" (o.postMountCommands == ""))
      (check "${p}: overlay: unit nix-ssd-pins wanted by initrd.target" (u.wantedBy or [ ] == [ "initrd.target" ]))
      (check "${p}: overlay: after the file systems under /sysroot/nix/store are mounted" ((u.unitConfig.RequiresMountsFor or null) == "/sysroot/nix/store" && (u.unitConfig.DefaultDependencies or null) == false))
      (check "${p}: overlay: before the closure is looked for and activated" (all (x: elem x (u.before or [ ])) [ "initrd-find-nixos-closure.service" "initrd-nixos-activation.service" "initrd.target" "shutdown.target" ] && elem "shutdown.target" (u.conflicts or [ ])))
      (check "${p}: overlay: only when a finished staging exists" ((u.unitConfig.ConditionPathExists or null) == "/sysroot/nix/.nix-ssd-pins/manifest"))
      (check "${p}: overlay: oneshot, in a mount namespace of its own" ((u.serviceConfig or { }) == { Type = "oneshot"; PrivateMounts = true; }))
      (check "${p}: overlay: the same function as the scripted stage 1, on a writable view of /sysroot/nix" (has "nixSsdMovePins() {" (u.script or null) && has "mount --bind /sysroot/nix \"$view/nix\"" u.script && has "nixSsdMovePins \"$root\"" u.script && has "stat -c %d:%i" u.script))
      (check "${p}: overlay: its tools are in the initrd (storePaths) and on its PATH" (map toString (u.path or [ ]) == [ "${pk.coreutils}" "${pk.util-linux}" ] && o.initrdStorePaths == [ "${pk.coreutils}/bin/mv" "${pk.coreutils}/bin/mkdir" "${pk.coreutils}/bin/stat" "${pk.util-linux}/bin/mount" ]))
      (check "${p}: overlay, pinBootGenerations = false: no unit, no bootspec entry" (let e = view (evalNixOS { inherit system release loader stage1; settings = modes.overlay // { pinBootGenerations = false; }; }); in e.ok && !(e.initrdServices ? nix-ssd-pins) && !(e.bootspec ? "org.nix-ssd-generator.v1")))
    ])) [ "systemd" "scripted" ]) loaders) systems;

  # ---- one evaluation kept for the scripts, the options and the package
  base = evalNixOS { settings = modes.overlay; extra = jobs; };
  baseView = view base;
  pkgOf = system: (stubPkgs system).callPackage (nixDir + "/package.nix") { };
  pkg = pkgOf "aarch64-linux";

  # ---- a minimal older NixOS (24.05: no preSwitchChecks, no GRUB / systemd-boot
  # extraInstallCommands) and one older than supported (21.11: no nix.settings either)
  older = concatMap (system: concatMap (loader:
    let
      ev = lib.mapAttrs (_: settings: view (evalNixOS { inherit system loader settings; release = "24.05"; })) modes;
      p = "24.05 ${system} ${loader}";
    in [
      (check "${p}: every mode evaluates, enable = false too" (all (m: ev.${m}.ok) (attrNames modes)))
      (check "${p}: overlay: assertions hold" (allOk ev.overlay.assertions))
      (check "${p}: overlay: the installer wrapped there too" ((ev.overlay.installBootLoader.name or null) == "nix-ssd-install-bootloader" && ev.overlay.preSwitchChecks == null))
      (check "${p}: the scripted stage 1 by default there, and it moves the staged pins" (!ev.overlay.initrdSystemd && has "\nnixSsdMovePins \"$targetRoot\"\n" ev.overlay.postMountCommands))
    ]) loaders) systems;
  canary = evalNixOS {
    release = "24.05";
    extra = { config = lib.mkIf false { boot.loader.systemd-boot.extraInstallCommands = "x"; }; };
  };
  ancient = lib.mapAttrs (_: settings: view (evalNixOS { release = "21.11"; inherit settings; })) modes;
  olderChecks = older ++ [
    (check "24.05: a definition of a missing option under a false mkIf breaks evaluation (what the module must not do)" (!(view canary).ok))
    (check "21.11: enable = false evaluates" ancient.disabled.ok)
    (check "21.11: every mode evaluates to a failed assertion naming the oldest NixOS" (all (m: ancient.${m}.ok && failed ancient.${m}.assertions == [ "services.nix-ssd needs NixOS 23.11 or later (this is 21.11)." ]) [ "overlay" "build" "off" ]))
  ];

  # ---- assertions
  assertionChecks = [
    (check "mountPoint below /nix fails an assertion" (!(allOk (view (evalNixOS { settings = { enable = true; mountPoint = "/nix/ssd"; }; })).assertions)))
    (check "Nix 2.18 with overlay mode fails an assertion that says how to fix it" (failed (view (evalNixOS { settings.enable = true; extra.nix.package = { type = "derivation"; name = "nix-2.18.1"; version = "2.18.1"; outPath = "/nix/store/00000000000000000000000000000000-nix-2.18.1"; }; })).assertions == [ "services.nix-ssd.mode = \"overlay\" needs Nix 2.22 or later (local-overlay store, build-dir); this system has Nix 2.18.1. Set nix.package = pkgs.nixVersions.latest; or services.nix-ssd.mode = \"build\" (builds and caches on the SSD, the store stays on the internal disk)." ]))
    (check "option texts say internal disk, not eMMC (the first user's disk, not every machine's)" (all (o: !(has "eMMC" o.description)) opts))
    (check "enable = true alone, on current NixOS (systemd stage 1): no assertion in the way" (let e = view (evalNixOS { settings.enable = true; }); in e.ok && e.initrdSystemd && allOk e.assertions && e.initrdServices ? nix-ssd-pins))
    (check "enable = true alone, once the scripted stage 1 is removed (no postMountCommands): evaluates, the unit is there" (let e = view (evalNixOS { release = "no-scripted"; settings.enable = true; }); in e.ok && allOk e.assertions && e.initrdServices ? nix-ssd-pins))
    (check "an explicit pinBootGenerations = false leaves the installer alone" ((view (evalNixOS { settings = { enable = true; pinBootGenerations = false; }; })).installBootLoader ? cmd))
  ];

  # ---- option declarations: type, description, default and example accepted by the type
  opts = lib.collect lib.isOption base.options.services.nix-ssd;
  optName = o: lib.showOption o.loc;
  optChecks = concatMap (o: [
    (check "${optName o}: has a description" (isString (o.description or null) && stringLength o.description > 20))
    (check "${optName o}: default passes its type" (o.type.check o.value))
  ] ++ lib.optionals (o ? example && !(o.example ? _type)) [
    (check "${optName o}: example passes its type" (o.type.check o.example))
  ]) opts;
  # Through the module system (listOf checks its elements only when merging).
  valueOf = name: v: let e = evalNixOS { settings = lib.setAttrByPath (lib.splitString "." name) v; }; in
    tryEval (deepSeq (lib.getAttrFromPath (lib.splitString "." name) e.config.services.nix-ssd) true);
  rejects = name: v: check "services.nix-ssd.${name} rejects ${builtins.toJSON v}" (!(valueOf name v).success);
  accepts = name: v: check "services.nix-ssd.${name} accepts ${builtins.toJSON v}" (valueOf name v).success;
  typeChecks = [
    (accepts "device" "UUID=0a3c") (accepts "device" "/dev/nvme0n1p1") (accepts "device" "PARTLABEL=a b")
    (rejects "device" "NIX_SSD") (rejects "device" "LABEL=") (rejects "device" "/etc/passwd")
    (accepts "mountPoint" "/srv/nix-ssd") (rejects "mountPoint" "relative") (rejects "mountPoint" "/mnt/a b")
    (rejects "mountPoint" "/mnt/a,b") (rejects "mountPoint" "/mnt/a:b") (rejects "mountPoint" "/mnt/a\\b")
    (rejects "mountPoint" "/mnt/100%") (rejects "mountPoint" "/mnt/a&b") (rejects "mountPoint" "/mnt/a?b")
    (rejects "mountPoint" "/mnt/a#b") (rejects "mountPoint" "/mnt/a=b") (accepts "mountPoint" "/mnt/a-b_c.d@e+f")
    (accepts "mode" "build") (accepts "mode" "off") (rejects "mode" "on")
    (accepts "cacheUsers" [ "alice" "root" "_svc" "ad@corp" ]) (rejects "cacheUsers" [ "1abc" ]) (rejects "cacheUsers" [ "a b" ])
    (accepts "subvolumes.overlay" "@overlay") (rejects "subvolumes.overlay" "a/b") (rejects "subvolumes.overlay" "")
  ];

  # ---- the package, for both architectures
  packageChecks = concatMap (system:
    let
      p = pkgOf system;
      t = (stubPkgs system).stdenv.hostPlatform.rust.rustcTargetSpec;
      inSrc = rel: type: p.src.filter (toString (src + "/${rel}")) type;
    in [
      (check "package ${system}: NIX_SSD_CLI is $out/bin/nix-ssd" (p.env.NIX_SSD_CLI == "${builtins.placeholder "out"}/bin/nix-ssd"))
      (check "package ${system}: the check phase runs (doCheck not off)" (p.doCheck or true))
      (check "package ${system}: the check phase skips only hostile_inputs (fixtures run with NIX_SSD_CLI)" (p.checkFlags or [ ] == [ "--skip=hostile_inputs" ]))
      (check "package ${system}: NIX_SSD_CLI only in env (not a top-level attribute too)" (!(p ? NIX_SSD_CLI)))
      (check "package ${system}: systemd-escape for tests/escape.rs" (elem (stubPkgs system).systemdMinimal p.nativeCheckInputs))
      (check "package ${system}: version from Cargo.toml" (p.version == cargo.package.version))
      (check "package ${system}: Cargo.lock exists" (pathExists p.cargoLock.lockFile))
      (check "package ${system}: source holds src/, tests/, unit-templates/, man pages" (all (f: inSrc f "regular") [ "Cargo.toml" "Cargo.lock" "src/lib.rs" "tests/fixtures.rs" "unit-templates/nix-ssd.service.in" "packaging/man/nix-ssd.8" "packaging/completions/_nix-ssd" "README.md" "ARCHITECTURE.md" ]))
      (check "package ${system}: source leaves out packaging/nix (module changes do not rebuild it)" (!(inSrc "packaging/nix" "directory")))
      (check "package ${system}: installs every man page of packaging/man" (all (f: has f p.postInstall) (attrNames (builtins.readDir (src + "/packaging/man")))))
      (check "package ${system}: installs the shell completions of packaging/completions (bash, zsh, fish)" (has "installShellCompletion --cmd nix-ssd --bash packaging/completions/nix-ssd.bash" p.postInstall && all (f: has "packaging/completions/${f}" p.postInstall && inSrc "packaging/completions/${f}" "regular") (attrNames (builtins.readDir (src + "/packaging/completions")))))
      (check "package ${system}: meta.license is MIT, as LICENSE and Cargo.toml say" (p.meta.license == lib.licenses.mit && cargo.package.license == "MIT" && has "MIT License" (builtins.readFile (src + "/LICENSE"))))
      (check "package ${system}: generator moved to lib/systemd/system-generators" (has "mv $out/bin/nix-ssd-generator $out/lib/systemd/system-generators/" p.postInstall))
      (check "package ${system}: static generator relinked after the checks for ${t}" (has "--target ${t}" p.preInstall && has "crt-static" p.preInstall && elem (stubPkgs system).glibc.static p.buildInputs && has "install -m755 target/${t}/release/nix-ssd-generator" p.postInstall))
    ]) systems;

  # ---- flake: outputs evaluated against a nixpkgs input of the real lib and stub packages
  flake = import (nixDir + "/flake.nix");
  readme = builtins.readFile (src + "/README.md");
  flakeOut = flake.outputs { self = flakeOut; nixpkgs = { inherit lib; legacyPackages = lib.genAttrs systems stubPkgs; }; };
  flakeChecks = [
    (check "flake: nixpkgs input" (isString flake.inputs.nixpkgs.url))
    (check "README's quick start: its one option, as written there, evaluates with every assertion holding and installs the generator" (has "{ services.nix-ssd.enable = true; }" readme && (let v = view (evalNixOS { settings = { enable = true; }; }); in v.ok && allOk v.assertions && v.generators != { })))
    (check "README's quick start: the flake input names the flake's directory and the module output" (has "?dir=packaging/nix\";" readme && has "nix-ssd.nixosModules.default" readme && flakeOut.nixosModules ? default))
    (check "README lists every option of the module as `services.nix-ssd.…` (man configuration.nix does not show a flake's)" (all (o: has "`${optName o}`" readme) opts))
    (check "flake: no placeholder URL (github:OWNER) in the flake or README" (!(has "OWNER" (builtins.readFile (nixDir + "/flake.nix"))) && !(has "OWNER" (builtins.readFile (src + "/README.md")))))
    (check "flake: packages.aarch64-linux.default" (flakeOut.packages.aarch64-linux.default.pname == "nix-ssd-generator"))
    (check "flake: packages.x86_64-linux.default" (has "--target x86_64-unknown-linux-gnu" flakeOut.packages.x86_64-linux.default.preInstall))
    (check "flake: nixosModules.default is module.nix" (toString flakeOut.nixosModules.default == toString (nixDir + "/module.nix")))
    (check "flake: overlay adds nix-ssd-generator" ((flakeOut.overlays.default (stubPkgs "x86_64-linux") { }).nix-ssd-generator.pname == "nix-ssd-generator"))
  ];

  checks = current ++ stage1Checks "current" ++ stage1Checks "24.05" ++ olderChecks ++ assertionChecks ++ optChecks ++ typeChecks ++ packageChecks ++ flakeChecks;
  confOf = m: (view (evalNixOS { settings = modes.${m}; })).etc."systemd/nix-ssd-generator.conf" or "";
in
{
  failures = map (c: c.name) (filter (c: !c.ok) checks);
  passed = builtins.length (filter (c: c.ok) checks);
  options = map optName opts;
  conf = lib.genAttrs [ "overlay" "build" "off" ] confOf;
  # For run.sh to run (the module's shell fragments, with the fake CLI path to replace).
  scripts = {
    cli = "${pkg}/bin/nix-ssd";
    installBootLoader = baseView.installBootLoader.text or "";
    loader = (view (evalNixOS { })).installBootLoader.cmd or "";
    # the systemd stage 1 unit, for the boot bed's dracut initrd (tests/boot/initrd-units.nix
    # renders it from here) and run.sh: every option the mirror declares for an initrd service
    initrdUnit = let u = baseView.initrdServices.nix-ssd-pins; in {
      inherit (u) description documentation wantedBy requiredBy before after conflicts unitConfig serviceConfig script;
      path = map toString u.path;
    };
    stage1Postmount = (view (evalNixOS { stage1 = "scripted"; settings = modes.overlay; })).postMountCommands;
  };
  package = {
    inherit (pkg) name;
    outPlaceholder = builtins.placeholder "out";
    NIX_SSD_CLI = pkg.env.NIX_SSD_CLI;
    checkFlags = pkg.checkFlags or [ ];
  };
}
