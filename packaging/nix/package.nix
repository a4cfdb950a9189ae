# The Nix package: `nix-ssd` in bin/, the generator in lib/systemd/system-generators/ (linked
# statically, as `make build` does: it runs before anything else at every boot), man pages.
#
#   pkgs.callPackage ./packaging/nix/package.nix { }
#
# Needs nixpkgs 23.11 or later (lib.fileset; env and hostPlatform.rust from 23.05).
{
  lib,
  stdenv,
  rustPlatform,
  installShellFiles,
  glibc,
  systemdMinimal,
  staticGenerator ? stdenv.hostPlatform.isGnu,
}:
let
  src = lib.fileset.toSource {
    root = ../..;
    # everything the check phase reads: tests/layout.rs and tests/docs.rs read README.md and
    # ARCHITECTURE.md too
    fileset = lib.fileset.unions [
      ../../README.md
      ../../ARCHITECTURE.md
      ../../Cargo.toml
      ../../Cargo.lock
      ../../src
      ../../unit-templates
      ../../tests
      ../../packaging/man
      ../../packaging/completions
      ../../packaging/nix-ssd-generator.conf.example
    ];
  };
  cargoToml = lib.importTOML ../../Cargo.toml;
  rustTarget = stdenv.hostPlatform.rust.rustcTargetSpec;
in
rustPlatform.buildRustPackage {
  pname = "nix-ssd-generator";
  inherit (cargoToml.package) version;
  inherit src;
  cargoLock.lockFile = ../../Cargo.lock;

  # The generated nix-ssd.service runs `$NIX_SSD_CLI activate …`: point it at this package.
  # The check phase is built with it too; tests/fixtures.rs compares the generator's files in
  # the fixtures' /usr/bin/nix-ssd spelling after checking they name this path, so the fixture
  # tests run here (tests/packaging/run.sh: nix-package-check-phase runs the check phase so).
  env.NIX_SSD_CLI = "${placeholder "out"}/bin/nix-ssd";

  nativeBuildInputs = [ installShellFiles ];
  buildInputs = lib.optionals staticGenerator [ glibc.static ];

  # tests/escape.rs compares with systemd-escape; the fixture tests need nothing else. The
  # kernel and boot tests (tests/kernel, tests/boot) need root and are not run here.
  nativeCheckInputs = [ systemdMinimal ];
  # tests/hostile.rs' hostile_inputs hides /proc/cmdline with `unshare`, run with a cleared
  # environment: the child looks in /bin:/usr/bin only, and the build sandbox has no unshare
  # there (no /usr/bin at all), so one of its rows fails with "cannot run" (measured in the
  # sandbox emulation of tests/packaging/run.sh). Its rows run in the project's test command.
  checkFlags = [ "--skip=hostile_inputs" ];

  # After the check phase (cargo test rebuilds the generator dynamically), link the generator
  # statically. cargoInstallHook copies the binaries it saw after the build phase, so
  # postInstall puts this one in place.
  preInstall = lib.optionalString staticGenerator ''
    cargo rustc --offline --locked --profile release --target ${rustTarget} \
      --bin nix-ssd-generator -- -C target-feature=+crt-static
  '';

  postInstall = ''
    # Nix's local-overlay store calls its remount-hook with the store dir as the only argument
    ln -s nix-ssd $out/bin/nix-ssd-remount-hook
    install -d $out/lib/systemd/system-generators
    mv $out/bin/nix-ssd-generator $out/lib/systemd/system-generators/
  ''
  + lib.optionalString staticGenerator ''
    install -m755 target/${rustTarget}/release/nix-ssd-generator \
      $out/lib/systemd/system-generators/nix-ssd-generator
  ''
  + ''
    installManPage packaging/man/nix-ssd-generator.8 packaging/man/nix-ssd.8 \
      packaging/man/nix-ssd-generator.conf.5
    install -Dm644 packaging/nix-ssd-generator.conf.example \
      $out/share/doc/nix-ssd-generator/nix-ssd-generator.conf.example
    # generated from the command line by clap_complete (tests/cli.rs keeps them current)
    installShellCompletion --cmd nix-ssd --bash packaging/completions/nix-ssd.bash \
      --zsh packaging/completions/_nix-ssd --fish packaging/completions/nix-ssd.fish
  '';

  meta = {
    description = "systemd generator and CLI that put Nix's writable store layer, builds and caches on a btrfs SSD";
    license = lib.licenses.mit;
    # homepage: none yet (the project has no public URL); set it when it is published.
    platforms = lib.platforms.linux;
    mainProgram = "nix-ssd";
  };
}
