# Thin wrappers; everything real lives in cargo and scripts/.
PREFIX ?= $(HOME)/.local
ARGS ?=

.PHONY: build test bench-create install deps

deps:
	./scripts/install-deps

build:
	cargo build --release --bins

test: deps
	cargo test --workspace

bench-create:
	./scripts/bench-create $(ARGS)

install: build
	install -Dm755 target/release/banger $(PREFIX)/bin/banger
	install -Dm755 target/release/bangerd $(PREFIX)/bin/bangerd
