# Evaluates packaging/nix/{module,package,flake}.nix with the real Nix evaluator and the stub
# lib (stub-lib.nix). Returns { failures = [ names of failed checks ]; conf = { CASE = text of
# /etc/systemd/nix-ssd-generator.conf the module writes }; }.
# nix-instantiate --eval --strict --json tests/packaging/nix/eval.nix --arg src /path/to/checkout
{ src }:
let
  lib = import ./stub-lib.nix;
  inherit (builtins) all attrNames concatMap isAttrs isString isFunction filter elem mapAttrs
    hasAttr stringLength substring pathExists;
  nixDir = src + "/packaging/nix";
  cargo = builtins.fromTOML (builtins.readFile (src + "/Cargo.toml"));

  # ---- pkgs: callPackage really calls package.nix, with a buildRustPackage that returns its
  # arguments plus an outPath.
  stubPkgs = system: import ./stub-pkgs.nix { inherit lib system; };
  pkgs = stubPkgs "aarch64-linux";

  # ---- module: options resolved from their defaults plus the case's settings; config
  # flattened (mkIf / mkMerge interpreted, attrsets merged, lists concatenated).
  resolve = decls: set: mapAttrs (n: d:
    if d._type or null == "option" then (if hasAttr n set then set.${n} else d.default)
    else resolve d (set.${n} or { })) decls;
  norm = v:
    if isAttrs v && v._type or null == "if" then (if v.condition then norm v.content else { })
    else if isAttrs v && v._type or null == "merge" then builtins.foldl' merge { } (map norm v.contents)
    else if isAttrs v && !(v ? outPath) && !(v ? _type) then mapAttrs (_: norm) v
    else v;
  merge = a: b: a // mapAttrs (n: bv:
    if !(hasAttr n a) then bv
    else if isAttrs a.${n} && isAttrs bv then merge a.${n} bv
    else if builtins.isList a.${n} && builtins.isList bv then a.${n} ++ bv
    else throw "conflicting definitions of ${n}") b;
  evalModule = { settings ? { }, preSwitchChecks ? true, other ? { } }:
    let
      m = import (nixDir + "/module.nix") { inherit config lib pkgs options; };
      cfg = resolve m.options.services.nix-ssd settings;
      config = {
        services.nix-ssd = cfg;
        nix = { package.version = "2.26.3"; gc.automatic = true; optimise.automatic = false; };
        system.autoUpgrade.enable = false;
      } // other;
      options = if preSwitchChecks then { system.preSwitchChecks = { }; } else { system = { }; };
    in { inherit m cfg; out = norm m.config; };

  # ---- option declarations: every leaf has a type, a description a NixOS user can read, a
  # default its type accepts, and an example its type accepts.
  leaves = prefix: decls: concatMap (n:
    let d = decls.${n}; p = "${prefix}.${n}"; in
    if d._type or null == "option" then [ { name = p; opt = d; } ] else leaves p d) (attrNames decls);
  base = evalModule { };
  opts = leaves "services.nix-ssd" base.m.options.services.nix-ssd;
  optChecks = concatMap (o: [
    { name = "${o.name}: has a type"; ok = (o.opt.type._type or null) == "option-type"; }
    { name = "${o.name}: has a description"; ok = isString (o.opt.description or null) && stringLength o.opt.description > 20; }
    { name = "${o.name}: default passes its type"; ok = o.opt.type.check (getPath o.name base.cfg); }
  ] ++ lib.optionals (o.opt ? example) [
    { name = "${o.name}: example passes its type"; ok = o.opt.type.check o.opt.example; }
  ]) opts;
  getPath = name: cfg: builtins.foldl' (a: k: a.${k}) cfg (lib.filter isString (builtins.split "\\." (substring (stringLength "services.nix-ssd.") 999 name)));
  optType = name: (builtins.head (filter (o: o.name == "services.nix-ssd.${name}") opts)).opt.type;
  rejects = name: v: { name = "services.nix-ssd.${name} rejects ${builtins.toJSON v}"; ok = !((optType name).check v); };
  accepts = name: v: { name = "services.nix-ssd.${name} accepts ${builtins.toJSON v}"; ok = (optType name).check v; };
  typeChecks = [
    (accepts "device" "UUID=0a3c") (accepts "device" "/dev/nvme0n1p1") (accepts "device" "PARTLABEL=a b")
    (rejects "device" "NIX_SSD") (rejects "device" "LABEL=") (rejects "device" "/etc/passwd")
    (accepts "mountPoint" "/srv/nix-ssd") (rejects "mountPoint" "relative") (rejects "mountPoint" "/mnt/a b")
    (rejects "mountPoint" "/mnt/a,b") (rejects "mountPoint" "/mnt/a:b") (rejects "mountPoint" "/mnt/a\\b")
    (accepts "mode" "build") (accepts "mode" "off") (rejects "mode" "on")
    (accepts "cacheUsers" [ "alice" "root" "_svc" "ad@corp" ]) (rejects "cacheUsers" [ "1abc" ]) (rejects "cacheUsers" [ "a b" ])
    (accepts "subvolumes.overlay" "@overlay") (rejects "subvolumes.overlay" "a/b") (rejects "subvolumes.overlay" "")
  ];

  # ---- config produced by the module
  ovl = evalModule { settings = { enable = true; cacheUsers = [ "alice" "root" ]; }; };
  bld = evalModule { settings = { enable = true; mode = "build"; device = "UUID=0a3c"; deviceTimeout = "1min 30s"; }; };
  off = evalModule { settings = { enable = true; mode = "off"; }; };
  old = evalModule { settings = { enable = true; }; preSwitchChecks = false; };
  disabled = evalModule { };
  badMount = evalModule { settings = { enable = true; mountPoint = "/nix/ssd"; }; };
  oldNix = evalModule { settings = { enable = true; }; other = { nix = { package.version = "2.18.1"; gc.automatic = false; }; }; };
  pkg = ovl.cfg.package;
  gen = "${pkg}/lib/systemd/system-generators/nix-ssd-generator";
  allOk = as: all (a: a.assertion) as;
  has = needle: hay:
    let ln = stringLength needle; lh = stringLength hay;
        go = i: i + ln <= lh && (substring i ln hay == needle || go (i + 1));
    in go 0;
  confText = e: e.out.environment.etc."systemd/nix-ssd-generator.conf".text;
  configChecks = [
    { name = "disabled: the module defines nothing"; ok = disabled.out == { }; }
    { name = "overlay: generator installed with systemd.generators"; ok = ovl.out.systemd.generators.nix-ssd-generator == gen; }
    { name = "overlay: package in systemPackages"; ok = ovl.out.environment.systemPackages == [ pkg ]; }
    { name = "overlay: experimental features"; ok = ovl.out.nix.settings.extra-experimental-features == [ "local-overlay-store" "read-only-local-store" ]; }
    { name = "overlay: assertions hold"; ok = allOk ovl.out.assertions; }
    { name = "overlay: root profile snippet uses NIX_REMOTE=daemon when the env file exists"; ok = has "/run/nix-ssd/nix-daemon.env" ovl.out.environment.extraInit && has "export NIX_REMOTE=daemon" ovl.out.environment.extraInit; }
    { name = "overlay: nix.conf includes the client file"; ok = ovl.out.nix.extraOptions == "!include /run/nix-ssd/nix-client.conf"; }
    { name = "overlay: nix-gc routed through the daemon"; ok = ovl.out.systemd.services.nix-gc.environment.NIX_REMOTE == "daemon"; }
    { name = "overlay: no unit stubs for disabled services"; ok = attrNames ovl.out.systemd.services == [ "nix-gc" ]; }
    { name = "overlay: pin in system.preSwitchChecks for switch|boot"; ok = has "switch|boot) ${pkg}/bin/nix-ssd pin \"$1\"" ovl.out.system.preSwitchChecks.nix-ssd-pin; }
    { name = "overlay: no loader hooks when preSwitchChecks exists"; ok = !(ovl.out ? boot); }
    { name = "old NixOS: pin in the GRUB and systemd-boot install hooks"; ok = has "bin/nix-ssd pin" old.out.boot.loader.grub.extraInstallCommands && has "bin/nix-ssd pin" old.out.boot.loader.systemd-boot.extraInstallCommands && !(old.out ? system); }
    { name = "build: no experimental features, no pinning, no root routing"; ok = !(bld.out ? nix) && !(bld.out ? system) && !(bld.out.environment ? extraInit); }
    { name = "build: generator still installed"; ok = bld.out.systemd.generators.nix-ssd-generator == gen; }
    { name = "off: config file says mode = off, nothing else added"; ok = has "mode = off" (confText off) && !(off.out ? nix) && !(off.out ? system); }
    { name = "mountPoint below /nix fails an assertion"; ok = !(allOk badMount.out.assertions); }
    { name = "Nix 2.18 with overlay mode fails an assertion"; ok = !(allOk oldNix.out.assertions); }
    { name = "package: NIX_SSD_CLI is $out/bin/nix-ssd"; ok = pkg.env.NIX_SSD_CLI == "${builtins.placeholder "out"}/bin/nix-ssd"; }
    { name = "package: version from Cargo.toml"; ok = pkg.version == cargo.package.version; }
    { name = "package: Cargo.lock exists"; ok = pathExists pkg.cargoLock.lockFile; }
    { name = "package: installs every man page of packaging/man"; ok = all (f: has f pkg.postInstall) (attrNames (builtins.readDir (src + "/packaging/man"))); }
    { name = "package: generator moved to lib/systemd/system-generators"; ok = has "mv $out/bin/nix-ssd-generator $out/lib/systemd/system-generators/" pkg.postInstall; }
    { name = "package: static generator relinked after checks for aarch64"; ok = has "--target aarch64-unknown-linux-gnu" pkg.preInstall && has "crt-static" pkg.preInstall && builtins.elem pkgs.glibc.static pkg.buildInputs && has "install -m755 target/aarch64-unknown-linux-gnu/release/nix-ssd-generator" pkg.postInstall; }
  ];

  # ---- flake: outputs evaluated against a stub nixpkgs input
  flake = import (nixDir + "/flake.nix");
  flakeOut = flake.outputs { self = flakeOut; nixpkgs = { inherit lib; legacyPackages = lib.genAttrs [ "aarch64-linux" "x86_64-linux" ] stubPkgs; }; };
  flakeChecks = [
    { name = "flake: nixpkgs input"; ok = isString flake.inputs.nixpkgs.url; }
    { name = "flake: packages.aarch64-linux.default"; ok = flakeOut.packages.aarch64-linux.default.pname == "nix-ssd-generator"; }
    { name = "flake: packages.x86_64-linux.default"; ok = has "--target x86_64-unknown-linux-gnu" flakeOut.packages.x86_64-linux.default.preInstall; }
    { name = "flake: nixosModules.default is module.nix"; ok = toString flakeOut.nixosModules.default == toString (nixDir + "/module.nix"); }
    { name = "flake: overlay adds nix-ssd-generator"; ok = ((flakeOut.overlays.default (stubPkgs "x86_64-linux") { }).nix-ssd-generator.pname) == "nix-ssd-generator"; }
  ];
  checks = optChecks ++ typeChecks ++ configChecks ++ flakeChecks;
in
{
  failures = map (c: c.name) (filter (c: !c.ok) checks);
  passed = builtins.length (filter (c: c.ok) checks);
  options = map (o: o.name) opts;
  conf = { overlay = confText ovl; build = confText bld; off = confText off; };
}
