# Build and install. The generator runs at every boot before anything else: it is linked
# statically (no dynamic loader work: ~1.3x the exec floor instead of ~1.8x, measured by
# benches/generator.sh). It never uses NSS, so static glibc is safe for it; `nix-ssd` stays
# dynamic (it resolves users' home directories).
CARGO ?= cargo
CARGOFLAGS ?= --release --locked
TARGET_DIR ?= target/release

.PHONY: build test
build:
	$(CARGO) build $(CARGOFLAGS) --bin nix-ssd
	$(CARGO) rustc $(CARGOFLAGS) --bin nix-ssd-generator -- -C target-feature=+crt-static

test:
	tests/run.sh
