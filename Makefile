PREFIX ?= /usr/local
CARGO ?= cargo

.PHONY: build release test install demo bench conformance clean

build:
	$(CARGO) build -p rt -p rt-shim -p rt-image

release:
	$(CARGO) build --release -p rt -p rt-shim -p rt-image

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

install: release
	install -D -m 0755 target/release/rt $(DESTDIR)$(PREFIX)/bin/rt
	install -D -m 0755 target/release/rt-shim $(DESTDIR)$(PREFIX)/bin/rt-shim
	install -D -m 0755 target/release/rt-image $(DESTDIR)$(PREFIX)/bin/rt-image

# rt against runc and crun (as root): bench/results.md and bench/results.png.
bench: release
	bash scripts/deps.sh --bench
	python3 bench/bench.py

# The OCI runtime spec's MUST clauses against rt, or any runc-style runtime
# with RUNTIME=runc (or a path). Needs root. Prints "N passed, N failed, N skipped".
conformance:
	$(CARGO) build -q -p rt --bin rt
	$(CARGO) run -q -p spec-conformance --bin rt-conformance

clean:
	$(CARGO) clean
