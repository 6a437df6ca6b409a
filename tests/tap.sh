# shellcheck shell=sh disable=SC2034
# Sourced by the shell tests (directly, or through tests/ops_common.sh and
# tests/interop/interop.sh): TAP output, bounded waits, and a fresh
# directory removed on every exit path.
#
#   . "$(dirname "$0")/tap.sh"
#   tap_tmpdir NAME         # $tmp: a new mktemp -d directory; installs the
#                           # traps: on exit `cleanup` (the test's own, to
#                           # end what it started; none by default), then
#                           # $tmp is removed (kept with DGW_TEST_KEEP set)
#   ok STATUS DESCRIPTION   # one TAP line; a failure sets failed=1
#   tap_end                 # the plan "1..$n", exit $failed
#
# Every wait polls with a deadline scaled by DGW_TEST_TIME_SCALE.
scale=${DGW_TEST_TIME_SCALE:-1}

n=0
failed=0
ok() { # ok STATUS DESCRIPTION
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $n - $2"
  else
    echo "not ok $n - $2"
    failed=1
  fi
}
tap_end() {
  echo "1..$n"
  exit $failed
}
# show FILE...: the files as TAP comments.
show() { sed 's/^/# /' "$@"; }
# bail REASON: fails the whole test, loudly.
bail() {
  echo "Bail out! $1"
  exit 1
}
# need TOOL HOW: a missing tool fails the test with a clear message.
need() {
  command -v "$1" > /dev/null 2>&1 ||
    bail "$1 is needed by this test and is not installed ($2)"
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s for SECONDS
# (scaled); 1 when the deadline passed.
wait_for() {
  tries=$(($1 * 10 * scale))
  shift
  i=0
  while [ $i -lt $tries ]; do
    if "$@"; then return 0; fi
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}
# fresh NAME: a new, empty file for one process's output (never reused).
fresh() { mktemp "$tmp/$1.XXXXXX"; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# reap PID SECONDS: waits up to SECONDS (scaled) for PID (a timeout(1)
# with --foreground) to exit; past the deadline its program is ended (TERM,
# then KILL 5 s later) and rc is 124 or 137.  Sets rc to the exit status.
reap() {
  if ! wait_for "$2" gone "$1"; then
    echo "# pid $1 still running after $2 s (x$scale): ending it"
    kill -ALRM "$1" 2>/dev/null
    wait_for 10 gone "$1" || kill -KILL "$1" 2>/dev/null
  fi
  wait "$1" 2>/dev/null
  rc=$?
}
# end_timeouts PID...: SIGALRM to each timeout(1), which then ends its
# program as at its deadline: TERM, then KILL 5 s later.
end_timeouts() {
  for p in "$@"; do
    kill -ALRM "$p" 2>/dev/null
  done
}
# kill_trees PID...: kill -9 of each timeout(1)'s children first (a
# SIGKILLed timeout would leave its program running), then of it.
kill_trees() {
  for p in "$@"; do
    for c in $(pgrep -P "$p"); do kill -KILL "$c" 2>/dev/null; done
    kill -KILL "$p" 2>/dev/null
  done
}

cleanup() { :; }
tap_exit() {
  cleanup
  if [ -n "${DGW_TEST_KEEP:-}" ]; then echo "# kept $tmp"; else rm -rf "$tmp"; fi
}
tap_tmpdir() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/dgw-$1.XXXXXX") || exit 1
  trap tap_exit EXIT
  trap 'exit 1' INT TERM HUP
}
