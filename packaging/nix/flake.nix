# nix-ssd-generator as a flake (MIT, see LICENSE; packages carry meta.license). It lives in
# packaging/nix; refer to it with `?dir=`. The project has no public URL yet, so a flake input
# names a clone of it on the machine:
#   inputs.nix-ssd.url = "git+file:///home/alice/nix-ssd-generator?dir=packaging/nix";
#   nix build 'git+file:///home/alice/nix-ssd-generator?dir=packaging/nix'
# Once it is published, its forge URL takes the same `?dir=packaging/nix`.
{
  description = "Nix's writable store layer, builds and caches on a btrfs SSD, for NixOS";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "aarch64-linux"
        "x86_64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        nix-ssd-generator = pkgs.callPackage ./package.nix { };
        default = nix-ssd-generator;
      });

      overlays.default = final: prev: {
        nix-ssd-generator = final.callPackage ./package.nix { };
      };

      # The module's package default is `pkgs.callPackage ./package.nix { }`, the same
      # derivation as packages.<system>.default.
      nixosModules.default = ./module.nix;
      nixosModules.nix-ssd = self.nixosModules.default;
    };
}
