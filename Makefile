PREFIX ?= /usr/local
CARGO ?= cargo

.PHONY: build release hot-order test test-runc-suite test-vm test-host test-host-runc-suite test-host-critest test-critest integration install demo bench conformance soak fuzz clean

build:
	$(CARGO) build -p rt -p rt-shim -p rt-image

# Into target/dist; rt linked static with its hot code first (scripts/release.sh).
release:
	bash scripts/release.sh

# Regenerates src/bin/rt/hot.order after a toolchain or Cargo.lock change (root).
hot-order:
	bash scripts/hot-order.sh

test:
	bash scripts/test.sh

# runc 1.3.5's own integration suite (../shared/runc-suite, about 5 min,
# root) against this checkout's rt, checked against
# tests/runc-suite/expected-failures.txt and the list of the host's kind
# (-hybrid or -cgroup2): a failure not listed there fails the target. RUNC_SUITE_RUNC=1 also runs runc 1.3.5 for the side-by-side
# figure. Says so and skips where ../shared/runc-suite is missing.
test-runc-suite:
	@if [ -x ../shared/runc-suite/run.sh ]; then $(CARGO) build -q --workspace --bins; fi
	bash scripts/runc-suite.sh

# The cgroup tests on a full cgroup v2 host: Debian's kernel under qemu.
test-vm:
	bash scripts/deps.sh --vm
	bash integration/vm/run.sh

# rt where its users run it: Debian 12 under qemu with systemd as pid 1,
# pure cgroup v2, AppArmor, and Docker, containerd and Podman at their
# defaults (the systemd cgroup driver). PASS/FAIL per check, then
# "N passed, N failed". HOST_RELEASE=1 tests release builds.
test-host:
	bash scripts/deps.sh --host
	bash integration/host/run.sh

# runc 1.3.5's suite in test-host's VM against runc 1.3.5 and rt in the
# same run: the files with cgroup tests and checkpoint.bats (test-host runs cgroups.bats on
# rt alone), or HOST_RUNC_SUITE="all" or other files. Long under qemu's
# software emulation: about 45 min for these seven.
test-host-runc-suite:
	bash scripts/deps.sh --host
	HOST_ONLY=runc_suite HOST_RUNC_SUITE_RUNC=1 \
		HOST_RUNC_SUITE="$${HOST_RUNC_SUITE:-cgroups.bats update.bats delete.bats kill.bats cpu_affinity.bats scheduler.bats checkpoint.bats}" \
		HOST_TIMEOUT=$${HOST_TIMEOUT:-10800} bash integration/host/run.sh

# All of critest for the runc, rt and rt-v2 handlers of a containerd 2.3.4
# in test-host's VM (beside Debian's 1.6), with the containerd23 checks;
# test-host runs critest's core (nine specs per handler) and the same
# checks. Long under qemu's software emulation (about an hour).
test-host-critest:
	bash scripts/deps.sh --host
	HOST_ONLY=containerd23 HOST_CRITEST=1 HOST_TIMEOUT=$${HOST_TIMEOUT:-14400} \
		bash integration/host/run.sh

# Kubernetes' CRI validation suite (critest, cri-tools 1.36) against
# containerd 2.3.4 with the runc, rt and rt-v2 handlers side by side
# (../shared/containerd-2.3; says so and skips where it is missing; about
# 8 min, root). Fails on a spec that passes with runc and not with rt or
# rt-v2. Settings: integration/critest/run.sh's header.
test-critest:
	bash scripts/deps.sh --critest
	$(CARGO) build -p rt -p rt-shim
	bash integration/critest/run.sh

# rt under real managers and from a real registry (as root): containerd
# (ctr and the Kubernetes CRI), Docker, Podman, docker-registry. Each test
# starts its own daemons on scratch paths and stops them by pid.
integration:
	bash scripts/deps.sh --test
	$(CARGO) build -p rt -p rt-shim -p rt-image
	$(CARGO) test -p rt-integration

demo:
	bash scripts/demo.sh

install: release
	install -D -m 0755 target/dist/rt $(DESTDIR)$(PREFIX)/bin/rt
	install -D -m 0755 target/dist/rt-shim $(DESTDIR)$(PREFIX)/bin/rt-shim
	install -D -m 0755 target/dist/containerd-shim-rt-v2 $(DESTDIR)$(PREFIX)/bin/containerd-shim-rt-v2
	install -D -m 0755 target/dist/rt-image $(DESTDIR)$(PREFIX)/bin/rt-image

# rt against runc and crun (as root): bench/results.md and bench/results.png.
# The release build of rt and its shims (release.sh runtime), which it measures.
bench:
	bash scripts/release.sh runtime
	bash scripts/deps.sh --bench
	python3 bench/bench.py

# The OCI runtime spec's MUST clauses against rt, or any runc-style runtime
# with RUNTIME=runc (or a path). Needs root. Prints "N passed, N failed, N skipped".
conformance:
	$(CARGO) build -q -p rt --bin rt
	$(CARGO) run -q -p spec-conformance --bin rt-conformance

# Churn: 4 workers create, start, exec, kill and delete containers for
# SOAK_SECS (default 600; SOAK_QUICK=1: 60), then check that nothing leaked.
soak:
	$(CARGO) build -q -p rt -p rt-shim
	$(CARGO) run -q -p rt-integration --bin soak

# Each cargo-fuzz target for FUZZ_SECS (default 60) from fuzz/seeds.
fuzz:
	bash scripts/fuzz.sh

clean:
	$(CARGO) clean
