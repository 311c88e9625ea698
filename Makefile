PREFIX ?= /usr/local
CARGO ?= cargo

.PHONY: build release test install demo bench conformance clean

build:
	$(CARGO) build

release:
	$(CARGO) build --release

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

install: release
	install -D -m 0755 target/release/rt $(DESTDIR)$(PREFIX)/bin/rt

bench:
	@echo "make bench: bench/ is not written yet (issue: bench/ against runc and crun)" >&2; exit 1

conformance:
	@echo "make conformance: spec-conformance/ is not written yet (issue: spec-conformance/)" >&2; exit 1

clean:
	$(CARGO) clean
