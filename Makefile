# Build and install. The generator runs at every boot before anything else: it is linked
# statically (no dynamic loader work: ~1.3x the exec floor instead of ~1.8x, measured by
# benches/generator.sh). It never uses NSS, so static glibc is safe for it; `nix-ssd` stays
# dynamic (it resolves users' home directories).
CARGO ?= cargo
CARGOFLAGS ?= --release --locked
TARGET_DIR ?= target/release

# Installation (GNU conventions; DESTDIR for staging). The generated nix-ssd.service runs
# $(BINDIR)/nix-ssd: the binaries are built for that path (NIX_SSD_CLI, compiled in; the
# default /usr/bin/nix-ssd needs nothing). `make install` checks it and refuses a mismatch.
PREFIX ?= /usr
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/nix-ssd-generator
# Shell completions (generated from the command line by clap_complete: packaging/completions,
# kept current by tests/cli.rs). zsh: upstream's site-functions; the .deb uses Debian's
# vendor-completions.
BASH_COMPLETION_DIR ?= $(DATADIR)/bash-completion/completions
ZSH_COMPLETION_DIR ?= $(DATADIR)/zsh/site-functions
FISH_COMPLETION_DIR ?= $(DATADIR)/fish/vendor_completions.d
SYSTEMD_GENERATOR_DIR ?= $(shell pkg-config --variable=systemdsystemgeneratordir systemd 2>/dev/null || echo $(PREFIX)/lib/systemd/system-generators)
ifeq ($(strip $(SYSTEMD_GENERATOR_DIR)),)
SYSTEMD_GENERATOR_DIR = $(PREFIX)/lib/systemd/system-generators
endif
NIX_SSD_CLI ?= $(BINDIR)/nix-ssd
ifneq ($(NIX_SSD_CLI),/usr/bin/nix-ssd)
export NIX_SSD_CLI
endif
INSTALL ?= install
MANPAGES = packaging/man/nix-ssd-generator.8 packaging/man/nix-ssd.8 packaging/man/nix-ssd-generator.conf.5

# aarch64 (the Rock 5C): cross-built in a cached Debian 13 tree with Debian's rustc, arm64 Rust
# std and aarch64 cross gcc (tests/packaging/aarch64.sh); output in $(AARCH64_DIR).
PKG_CACHE ?= /var/cache/nix-ssd-pkg
AARCH64_DIR ?= $(PKG_CACHE)/target-aarch64/aarch64-unknown-linux-gnu/release

.PHONY: build test install uninstall check-cli-path deb build-aarch64 deb-aarch64 test-packaging
build:
	$(CARGO) build $(CARGOFLAGS) --bin nix-ssd
	$(CARGO) rustc $(CARGOFLAGS) --bin nix-ssd-generator -- -C target-feature=+crt-static

test:
	tests/run.sh

# The generator must name the nix-ssd that is being installed.
check-cli-path:
	@test -x $(TARGET_DIR)/nix-ssd -a -x $(TARGET_DIR)/nix-ssd-generator || \
	  { echo "make install: build first (make build)" >&2; exit 1; }
	@grep -qaF '$(NIX_SSD_CLI)' $(TARGET_DIR)/nix-ssd-generator || \
	  { echo "make install: $(TARGET_DIR)/nix-ssd-generator was not built for $(NIX_SSD_CLI);" \
	         "run: make build PREFIX=$(PREFIX)" >&2; exit 1; }

install: check-cli-path
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMD_GENERATOR_DIR) \
	  $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(BASH_COMPLETION_DIR) $(DESTDIR)$(ZSH_COMPLETION_DIR) $(DESTDIR)$(FISH_COMPLETION_DIR)
	$(INSTALL) -m 755 $(TARGET_DIR)/nix-ssd $(DESTDIR)$(BINDIR)/nix-ssd
	# Nix's local-overlay store calls its remount-hook with the store dir as the only argument
	ln -sf nix-ssd $(DESTDIR)$(BINDIR)/nix-ssd-remount-hook
	$(INSTALL) -m 755 $(TARGET_DIR)/nix-ssd-generator $(DESTDIR)$(SYSTEMD_GENERATOR_DIR)/nix-ssd-generator
	$(INSTALL) -m 644 packaging/man/nix-ssd-generator.8 packaging/man/nix-ssd.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 644 packaging/man/nix-ssd-generator.conf.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 644 packaging/nix-ssd-generator.conf.example README.md LICENSE $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 644 packaging/completions/nix-ssd.bash $(DESTDIR)$(BASH_COMPLETION_DIR)/nix-ssd
	$(INSTALL) -m 644 packaging/completions/_nix-ssd $(DESTDIR)$(ZSH_COMPLETION_DIR)/_nix-ssd
	$(INSTALL) -m 644 packaging/completions/nix-ssd.fish $(DESTDIR)$(FISH_COMPLETION_DIR)/nix-ssd.fish

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/nix-ssd $(DESTDIR)$(BINDIR)/nix-ssd-remount-hook \
	  $(DESTDIR)$(SYSTEMD_GENERATOR_DIR)/nix-ssd-generator \
	  $(DESTDIR)$(MANDIR)/man8/nix-ssd-generator.8 $(DESTDIR)$(MANDIR)/man8/nix-ssd.8 \
	  $(DESTDIR)$(MANDIR)/man5/nix-ssd-generator.conf.5 \
	  $(DESTDIR)$(DOCDIR)/nix-ssd-generator.conf.example $(DESTDIR)$(DOCDIR)/README.md \
	  $(DESTDIR)$(DOCDIR)/LICENSE $(DESTDIR)$(BASH_COMPLETION_DIR)/nix-ssd \
	  $(DESTDIR)$(ZSH_COMPLETION_DIR)/_nix-ssd $(DESTDIR)$(FISH_COMPLETION_DIR)/nix-ssd.fish
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null

# Debian package from `make install` (dpkg-deb); prints the .deb's path on its last line
# (`make -s deb` prints only that). Always built for /usr/bin/nix-ssd, whatever the environment
# says (the boot bed uses NIX_SSD_CLI for another purpose).
deb:
	env -u NIX_SSD_CLI $(MAKE) build PREFIX=/usr
	packaging/debian/build-deb.sh $(TARGET_DIR)

build-aarch64:
	tests/packaging/aarch64.sh build

deb-aarch64: build-aarch64
	packaging/debian/build-deb.sh $(AARCH64_DIR) arm64

test-packaging:
	tests/packaging/run.sh
