# A stand-in for nixpkgs' `lib`, just big enough to evaluate packaging/nix/*.nix with the real
# Nix evaluator when nixpkgs is not available (no network here). What it models, and nothing
# more: option declarations (mkOption returns its arguments), option types as a name, a
# description and a `check` predicate built from Nix builtins (so `strMatching` runs the real
# builtins.match on the module's regular expressions), mkIf / mkMerge as tagged values that
# eval.nix interprets, and the handful of list/string helpers the files call. It does NOT model
# the NixOS module system: no priorities, no type-driven merging, no option-existence checks.
let
  inherit (builtins) concatStringsSep isString isBool isList isAttrs match elem all;
  lib = rec {
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = name: mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = "Whether to enable ${name}.";
    };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkDefault = x: x;
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    optionalString = c: s: if c then s else "";
    optionals = c: l: if c then l else [ ];
    optionalAttrs = c: a: if c then a else { };
    inherit concatStringsSep;
    inherit (builtins) filter listToAttrs;
    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    versionAtLeast = a: b: builtins.compareVersions a b >= 0;
    getVersion = x: x.version;
    genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    importTOML = p: builtins.fromTOML (builtins.readFile p);
    fileset = {
      unions = l: l;
      # The real one copies the files to the store; this one only checks that they exist.
      toSource = { root, fileset }:
        assert all builtins.pathExists fileset;
        { _type = "source"; inherit root fileset; outPath = "/nix/store/00000000000000000000000000000000-source"; };
    };
    platforms.linux = [ "aarch64-linux" "x86_64-linux" ];
    types = rec {
      mkType = name: description: check: { _type = "option-type"; inherit name description check; };
      bool = mkType "bool" "boolean" isBool;
      str = mkType "str" "string" isString;
      package = mkType "package" "package" (x: isAttrs x && x ? outPath);
      enum = vs: mkType "enum" "one of ${concatStringsSep ", " (map (v: ''"${v}"'') vs)}" (x: elem x vs);
      strMatching = re: mkType "strMatching" "string matching the pattern ${re}"
        (x: isString x && match re x != null);
      listOf = t: mkType "listOf" "list of ${t.description}" (x: isList x && all t.check x);
    };
  };
in
lib
