# Thin wrappers; everything real lives in cargo and scripts/.
PREFIX ?= $(HOME)/.local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
ARGS ?=

RUNTIME_MANIFEST ?= runtime-bundle.toml

.PHONY: build test test-fast bench bench-create bench-loop bench-suspend bench-warm install install-unit uninstall deps runtime-package runtime-bundle

deps:
	./scripts/install-deps

build:
	cargo build --release --workspace --bins

# Both tiers (see README.md, Development); as root.
test: deps
	cargo test --workspace --all-features

# The fast tier only: no root, no guests.
test-fast:
	cargo test --workspace

# dist/banger-runtime.tar.gz from the default image; prints its sha256.
runtime-package: build
	target/release/banger runtime package

# Installs a bundle from a manifest (url + sha256), verified first.
runtime-bundle: build
	target/release/banger runtime fetch --manifest $(RUNTIME_MANIFEST)

bench-create:
	./scripts/bench-create $(ARGS)

bench-loop:
	./scripts/bench-loop $(ARGS)

bench-suspend:
	./scripts/bench-suspend $(ARGS)

bench-warm:
	./scripts/bench-warm $(ARGS)

# Every VM-lifecycle figure of docs/performance.md in one command: creates,
# suspend and resume, warm creates and running clones (each a JSON object).
bench: bench-create bench-suspend bench-warm

# Binaries and shell completions. The daemon runs as you; the root helper
# (banger-helper, `sudo banger system install --owner $USER`) makes its
# bridge, TAP and NAT changes. A daemon run as root needs no helper.
install: build
	install -Dm755 target/release/banger $(DESTDIR)$(BINDIR)/banger
	install -Dm755 target/release/bangerd $(DESTDIR)$(BINDIR)/bangerd
	install -Dm755 target/release/banger-agent $(DESTDIR)$(BINDIR)/banger-agent
	install -Dm755 target/release/banger-helper $(DESTDIR)$(BINDIR)/banger-helper
	install -Dm755 target/release/banger-relay $(DESTDIR)$(BINDIR)/banger-relay
	install -d $(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(DATADIR)/zsh/site-functions $(DESTDIR)$(DATADIR)/fish/vendor_completions.d
	target/release/banger completions bash > $(DESTDIR)$(DATADIR)/bash-completion/completions/banger
	target/release/banger completions zsh > $(DESTDIR)$(DATADIR)/zsh/site-functions/_banger
	target/release/banger completions fish > $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/banger.fish
	# The runtime bundle, when this checkout has one (./runtime), goes to
	# $(PREFIX)/lib/banger, where installed binaries look for it.
	if [ -f runtime/bundle.json ]; then install -d $(DESTDIR)$(PREFIX)/lib/banger && cp -a runtime/. $(DESTDIR)$(PREFIX)/lib/banger/; fi

# bangerd as a *system* unit (it runs as root); as root, after install.
SYSTEMD_SYSTEM_DIR ?= /etc/systemd/system
install-unit:
	install -d $(DESTDIR)$(SYSTEMD_SYSTEM_DIR)
	sed 's|@BINDIR@|$(BINDIR)|' contrib/bangerd.service > $(DESTDIR)$(SYSTEMD_SYSTEM_DIR)/bangerd.service

uninstall:
	rm -f $(BINDIR)/banger $(BINDIR)/bangerd $(BINDIR)/banger-agent $(BINDIR)/banger-helper $(BINDIR)/banger-relay $(DATADIR)/bash-completion/completions/banger \
		$(DATADIR)/zsh/site-functions/_banger $(DATADIR)/fish/vendor_completions.d/banger.fish \
		$(SYSTEMD_SYSTEM_DIR)/bangerd.service
	rm -rf $(PREFIX)/lib/banger
