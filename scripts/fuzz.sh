#!/bin/bash
# Runs each cargo-fuzz target (fuzz/libfuzzer, driving rt-fuzz's
# functions) for a bounded time (FUZZ_SECS, default 60) from the committed
# seeds in fuzz/seeds. A crash stops with the input saved under
# fuzz/libfuzzer/artifacts/<target>/; copy it to fuzz/regressions/<target>/,
# which `cargo test` replays (fuzz/tests/seeds.rs), and fix it.
# FUZZ_TARGETS picks some: FUZZ_TARGETS="signal config" make fuzz.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
# The options go before the target's: what follows "--" is libFuzzer's.
fuzz() {
	local cmd=$1
	shift
	cargo +nightly fuzz "$cmd" --fuzz-dir libfuzzer "$@"
}
secs=${FUZZ_SECS:-60}
if ! rustc +nightly --version >/dev/null 2>&1; then
	rustup toolchain install nightly --profile minimal ||
		{ echo "fuzz: needs a nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
	cargo +nightly install cargo-fuzz --locked
fi
targets=${FUZZ_TARGETS:-$(fuzz list)}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Every target in one build: cargo links them side by side, where a run
# per target would build them one after the other.
if [ -z "${FUZZ_TARGETS:-}" ]; then
	fuzz build >"$log" 2>&1 || { tail -20 "$log"; echo "fuzz: the targets did not build" >&2; exit 1; }
fi
for t in $targets; do
	mkdir -p "corpus/$t"
	echo "== fuzz $t for ${secs}s"
	# corpus/$t collects new inputs; seeds/$t is read only. The status is
	# taken from cargo itself: a pipe into grep would hide a crash.
	rc=0
	fuzz run "$t" "corpus/$t" "seeds/$t" -- \
		-max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1 || rc=$?
	grep -E '^(==|#[0-9]+ +DONE|stat::number_of_executed_units|SUMMARY|.*panicked|.*deadly signal|Test unit written|Base64:)' "$log" || true
	if [ "$rc" -ne 0 ]; then
		echo "fuzz $t: crash (exit $rc), see fuzz/libfuzzer/artifacts/$t/"
		exit 1
	fi
done
echo "fuzz: no crash in $(echo $targets | wc -w) targets, ${secs}s each"
