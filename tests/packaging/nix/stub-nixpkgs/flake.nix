# A stand-in `nixpkgs` flake input (lib + legacyPackages from ../stub-*.nix), so the project's
# flake can be evaluated by the real flake machinery with --override-input, without network.
{
  outputs = { self }:
    let lib = import ./stub-lib.nix; in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "aarch64-linux" "x86_64-linux" ]
        (system: import ./stub-pkgs.nix { inherit lib system; });
    };
}
