# A stand-in for nixpkgs' package set (a full nixpkgs cannot be brought here), with the real
# nixpkgs `lib`: callPackage really calls the package function with these arguments;
# buildRustPackage returns its arguments plus name, outPath and type = "derivation" (so
# lib.types.package accepts it and the test can read what package.nix passes); writeShellScript
# returns its name and text. Store paths are fake ("/nix/store/<32 chars>-name").
{ lib, system }:
let
  fake = name: "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" "${system}/${name}")}-${name}";
  self = {
    inherit lib;
    stdenv.hostPlatform = {
      inherit system;
      isGnu = true;
      rust.rustcTargetSpec = if system == "aarch64-linux" then "aarch64-unknown-linux-gnu" else "x86_64-unknown-linux-gnu";
    };
    rustPlatform.buildRustPackage = a: a // {
      type = "derivation";
      name = "${a.pname}-${a.version}";
      outPath = fake "${a.pname}-${a.version}";
    };
    installShellFiles = { type = "derivation"; outPath = fake "install-shell-files"; };
    glibc.static = { type = "derivation"; outPath = fake "glibc-static"; };
    systemdMinimal = { type = "derivation"; outPath = fake "systemd-minimal"; };
    coreutils = { type = "derivation"; name = "coreutils"; outPath = fake "coreutils"; };
    util-linux = { type = "derivation"; name = "util-linux"; outPath = fake "util-linux"; };
    writeShellScript = name: text: { type = "derivation"; inherit name text; outPath = fake name; };
    callPackage = f: over:
      let fn = if builtins.isFunction f then f else import f;
      in fn (builtins.intersectAttrs (builtins.functionArgs fn) self // over);
  };
in
self
