# A stand-in `nixpkgs` flake input: the real nixpkgs `lib` (run.sh puts the unpacked lib/ of
# ../shared/nixpkgs/nixpkgs-lib.tar.xz beside this file) and legacyPackages from
# ../stub-pkgs.nix, so the project's flake is evaluated by the real flake machinery with
# --override-input, without network.
{
  outputs = { self }:
    let lib = import ./lib; in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "aarch64-linux" "x86_64-linux" ]
        (system: import ./stub-pkgs.nix { inherit lib system; });
    };
}
