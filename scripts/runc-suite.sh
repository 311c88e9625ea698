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
#   RUNC_SUITE_HOST    hybrid or cgroup2: which host's list of expected
#                      failures to add to tests/runc-suite/expected-failures.txt
#                      (default: cgroup2 where /sys/fs/cgroup is cgroup2fs)
#   --images           only build the suite's two test images (what
#                      make test-host copies into its VM, which has no
#                      network to build them)
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
work=${RUNC_SUITE_WORK:-/var/tmp/runc-suite}
export RUNC_SUITE_WORK=$work
images=$work/images
arch=$(dpkg --print-architecture)

# run.sh builds its busybox image in a `mktemp -d`, so the image's root
# directory is 0700 and a non-root process in it cannot reach /bin: the
# tests of --user, a non-root tty owner and HOME then fail for every
# runtime (runc 1.3.5 too). The busybox images the suite is written for
# (Docker Hub's) have a 0755 root: the cached image is repacked with that
# one mode changed.
busybox_root_0755() {
	local img=$images/busybox-$arch.tar.xz t
	[ -s "$img" ] || return 0
	tar -tvJf "$img" | sed -n 1p | grep -q '^drwx------ .* \./$' || return 0
	t=$(mktemp -d) || return 1
	tar -C "$t" -xJpf "$img" && chmod 0755 "$t" &&
		tar -C "$t" --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -cJf "$img.new" . &&
		mv "$img.new" "$img"
	local rc=$?
	rm -rf "$t"
	[ $rc = 0 ] && echo "test-runc-suite: the busybox image's root is now 0755, as the suite's upstream image has it"
	return $rc
}

# run.sh builds both images before it runs anything; one quick file with
# the suite's own runc is the cheapest way to have it do so.
ensure_images() {
	mkdir -p "$(dirname "$work")"
	if [ ! -s "$images/busybox-$arch.tar.xz" ] || [ ! -s "$images/debian-$arch.tar.xz" ]; then
		"$suite/run.sh" "$suite/runc" tests/integration/version.bats >"$work.images.out" 2>&1 ||
			{ tail -5 "$work.images.out" >&2; echo "test-runc-suite: could not build the suite's images" >&2; return 1; }
	fi
	busybox_root_0755
}
if [ "${1:-}" = --images ]; then
	ensure_images || exit 1
	echo "$images"
	exit 0
fi
rt=$(readlink -f "${RT_BIN:-target/debug/rt}")
[ -x "$rt" ] || { echo "test-runc-suite: $rt not built (cargo build --workspace --bins)" >&2; exit 1; }
[ -x "$(dirname "$rt")/rt-shim" ] || { echo "test-runc-suite: no rt-shim beside $rt" >&2; exit 1; }
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then host=cgroup2; else host=hybrid; fi
host=${RUNC_SUITE_HOST:-$host}
lists=("$repo/tests/runc-suite/expected-failures.txt" "$repo/tests/runc-suite/expected-failures-$host.txt")
for l in "${lists[@]}"; do
	[ -f "$l" ] || { echo "test-runc-suite: no list of expected failures at $l" >&2; exit 1; }
done
expected="tests/runc-suite/expected-failures.txt and expected-failures-$host.txt"

# The test names of a TAP log's lines (the log is a pty's: CR LF), one a
# line: "not ok" ones with `failed_names`, every one with `ran_names`.
tap_names() {
  tr -d '\r' <"$2" | grep -E "^$1 [0-9]+ " | sed -E 's/^(not )?ok [0-9]+ //; s/ # (timeout|skip).*$//; s/[[:space:]]+$//' | sort -u
}
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

ensure_images || exit 1
run rt "$rt" "$@"
if [ "${RUNC_SUITE_RUNC:-0}" = 1 ]; then
  run runc "$suite/runc" "$@"
fi

listed=$(cat "${lists[@]}" | sed -E '/^[[:space:]]*(#|$)/d; s/[[:space:]]*\|.*$//' | sort -u)
failed=$(failed_names "$work/bats-rt.log")
ran=$(ran_names "$work/bats-rt.log")
regressions=$(comm -23 <(echo "$failed") <(echo "$listed") | sed '/^$/d')
# Listed tests that ran and passed (with a subset of the files, the others did not run).
fixed=$(comm -12 <(echo "$listed") <(echo "$ran") | comm -23 - <(echo "$failed") | sed '/^$/d')
if [ "${RUNC_SUITE_RUNC:-0}" = 1 ]; then
  # Side by side: what one runtime passes and the other fails, in this run.
  runc_failed=$(failed_names "$work/bats-runc.log")
  runc_ran=$(ran_names "$work/bats-runc.log")
  echo "test-runc-suite: side by side: rt $(comm -23 <(echo "$ran") <(echo "$failed") | sed '/^$/d' | wc -l) passed," \
    "$(echo "$failed" | sed '/^$/d' | wc -l) failed; runc 1.3.5 $(comm -23 <(echo "$runc_ran") <(echo "$runc_failed") | sed '/^$/d' | wc -l) passed," \
    "$(echo "$runc_failed" | sed '/^$/d' | wc -l) failed"
  only_runc=$(comm -23 <(echo "$failed") <(echo "$runc_failed") | sed '/^$/d')
  only_rt=$(comm -13 <(echo "$failed") <(echo "$runc_failed") | comm -12 - <(echo "$ran") | sed '/^$/d')
  [ -z "$only_runc" ] || { echo "test-runc-suite: runc 1.3.5 passes, rt fails:"; echo "$only_runc" | sed 's/^/  /'; }
  [ -z "$only_rt" ] || { echo "test-runc-suite: rt passes, runc 1.3.5 fails:"; echo "$only_rt" | sed 's/^/  /'; }
fi
if [ -n "$fixed" ]; then
  echo "test-runc-suite: listed in $expected but passed (trim the list):"
  echo "$fixed" | sed 's/^/  /'
fi
if [ -n "$regressions" ]; then
  echo "test-runc-suite: FAILED: not in $expected (regressions):"
  echo "$regressions" | sed 's/^/  /'
  echo "test-runc-suite: the reasons are in $work/bats-rt.log"
  exit 1
fi
echo "test-runc-suite: ok, every failure is a listed one"
