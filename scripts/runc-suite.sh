#!/usr/bin/env bash
# runc's own integration suite (runc v1.3.5's bats tests with its helper
# programs, runc 1.3.5 and a run.sh; $RUNC_SUITE_DIR, by default
# ../shared/runc-suite beside the repository on the project's CI machines) against this checkout's rt, checked against the list of tests rt
# is expected to fail here (tests/runc-suite/expected-failures.txt, one
# "test name | reason" a line). A failure not listed is a regression: the
# script fails. A listed test that passes is named, so the list gets
# trimmed, but does not fail it.
#   RT_BIN=path        the rt to test (default target/debug/rt; rt-shim must be beside it)
#   RUNC_SUITE_RUNC=1  also run the suite's runc 1.3.5 and print both figures
#   RUNC_SUITE_WORK    run.sh's work dir (default /var/tmp/runc-suite)
#   args               bats files (tests/integration/NAME.bats) instead of the whole suite
#   RUNC_SUITE_DIR     the suite's folder (default ../shared/runc-suite)
# Where the suite is missing (a user's clone) it says so and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
suite=${RUNC_SUITE_DIR:-$(cd .. && pwd)/shared/runc-suite}
if [ ! -x "$suite/run.sh" ]; then
  echo "test-runc-suite: $suite not found (runc's suite is not part of rt's repository); skipped"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "test-runc-suite: run as root (the suite makes containers)" >&2; exit 1; }
rt=$(readlink -f "${RT_BIN:-target/debug/rt}")
[ -x "$rt" ] || { echo "test-runc-suite: $rt not built (cargo build --workspace --bins)" >&2; exit 1; }
[ -x "$(dirname "$rt")/rt-shim" ] || { echo "test-runc-suite: no rt-shim beside $rt" >&2; exit 1; }
expected=$repo/tests/runc-suite/expected-failures.txt
work=${RUNC_SUITE_WORK:-/var/tmp/runc-suite}
export RUNC_SUITE_WORK=$work

# The test names of a TAP log's lines (the log is a pty's: CR LF), one a
# line: "not ok" ones with `failed_names`, every one with `ran_names`.
tap_names() { tr -d '\r' <"$2" | sed -nE "s/^$1 [0-9]+ (.*)\$/\\1/p" | sed -E 's/ # (timeout|skip).*$//; s/[[:space:]]+$//' | sort -u; }
failed_names() { tap_names 'not ok' "$1"; }
ran_names() { tap_names '(not )?ok' "$1"; }

# Processes a finished suite left behind, which keep bats waiting on its
# output pipe forever (update.bats "update devices [minimal transition
# rules]" leaves its recvtty running whenever the container fails to
# start): those with this run's test environment, once every test has
# reported. Ended by pid, and named.
end_leftovers() {
  local pid envf envs
  for envf in /proc/[0-9]*/environ; do
    pid=${envf#/proc/}; pid=${pid%/environ}
    envs=$(cat "$envf" 2>/dev/null | tr '\0' '\n')
    grep -qF "BATS_TEST_FILENAME=$work/suite/tests/integration/" <<<"$envs" || continue
    echo "test-runc-suite: left running after the last test, ended: $pid $(cat "/proc/$pid/cmdline" 2>/dev/null | tr '\0' ' ' | cut -c1-120)" \
      "($(sed -n 's/^BATS_TEST_NAME=//p' <<<"$envs"))"
    kill "$pid" 2>/dev/null
  done
}

# run NAME RUNTIME: the suite against RUNTIME; its log is kept as $work/bats-NAME.log.
run() {
  local name=$1 runtime=$2 t0=$SECONDS
  echo "test-runc-suite: $name ($runtime)"
  rm -f "$work/bats.log"
  "$suite/run.sh" "$runtime" "${@:3}" >"$work.$name.out" 2>&1 &
  local runner=$! done_at=
  while kill -0 "$runner" 2>/dev/null; do
    sleep 2
    local plan count
    [ -f "$work/bats.log" ] || continue
    plan=$(tr -d '\r' <"$work/bats.log" 2>/dev/null | sed -nE 's/^1\.\.([0-9]+)$/\1/p' | head -1)
    count=$(grep -cE '^(not )?ok ' "$work/bats.log" 2>/dev/null || true)
    if [ -n "$plan" ] && [ "${count:-0}" -ge "$plan" ]; then
      done_at=${done_at:-$SECONDS}
      if [ $((SECONDS - done_at)) -ge 20 ]; then
        end_leftovers
        done_at=$SECONDS
      fi
    fi
  done
  wait "$runner"
  if ! grep -qE '^runc-suite: [0-9]+ passed' "$work.$name.out"; then
    cat "$work.$name.out" >&2
    echo "test-runc-suite: run.sh did not finish with $name" >&2
    exit 1
  fi
  cp "$work/bats.log" "$work/bats-$name.log"
  echo "test-runc-suite: $name: $(tail -1 "$work.$name.out" | sed 's/^runc-suite: //') ($((SECONDS - t0))s; log $work/bats-$name.log)"
}

mkdir -p "$(dirname "$work")"
run rt "$rt" "$@"
if [ "${RUNC_SUITE_RUNC:-0}" = 1 ]; then
  run runc "$suite/runc" "$@"
fi

listed=$(sed -E '/^[[:space:]]*(#|$)/d; s/[[:space:]]*\|.*$//' "$expected" | sort -u)
failed=$(failed_names "$work/bats-rt.log")
ran=$(ran_names "$work/bats-rt.log")
regressions=$(comm -23 <(echo "$failed") <(echo "$listed") | sed '/^$/d')
# Listed tests that ran and passed (with a subset of the files, the others did not run).
fixed=$(comm -12 <(echo "$listed") <(echo "$ran") | comm -23 - <(echo "$failed") | sed '/^$/d')
if [ -n "$fixed" ]; then
  echo "test-runc-suite: listed in tests/runc-suite/expected-failures.txt but passed (trim the list):"
  echo "$fixed" | sed 's/^/  /'
fi
if [ -n "$regressions" ]; then
  echo "test-runc-suite: FAILED: not in tests/runc-suite/expected-failures.txt (regressions):"
  echo "$regressions" | sed 's/^/  /'
  echo "test-runc-suite: the reasons are in $work/bats-rt.log"
  exit 1
fi
echo "test-runc-suite: ok, every failure is a listed one"
