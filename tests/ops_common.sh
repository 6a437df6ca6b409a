# Shared by tests/test_metrics.sh and tests/test_ops.sh: TAP helpers,
# bounded waits, and a `dgw mock` started in the background.  Sourced;
# expects $tmp (a fresh directory) and sets up the cleanup of what it
# starts.  Every wait has a deadline; every process runs under timeout(1).
dgw=${DGW:-$PWD/tools/dgw}
scale=${DGW_TEST_TIME_SCALE:-1}
wrap=${DGW_TEST_WRAPPER:-}
DGW_PLUGIN_PATH=$PWD/plugins/metrics/.libs:$PWD/plugins/log/.libs
export DGW_PLUGIN_PATH
testplugins=$PWD/tests/plugins/.libs
limit="timeout --foreground -k 5 $((60 * scale))"
quick="timeout --foreground -k 5 $((30 * scale))"
mockpid=
runpid=
extrapid=
cleanup() {
  for p in $runpid $mockpid $extrapid; do
    kill -ALRM "$p" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

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
show() { sed 's/^/# /' "$@"; }
# need TOOL: a missing tool fails the test with a clear message.
need() {
  if ! command -v "$1" > /dev/null 2>&1; then
    echo "Bail out! $1 is needed by this test and is not installed ($2)"
    exit 1
  fi
}
wait_for() { # wait_for SECONDS COMMAND...: 1 when the deadline passed
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
fresh() { mktemp "$tmp/$1.XXXXXX"; }
gone() { ! kill -0 "$1" 2>/dev/null; }
reap() { # reap PID SECONDS: sets rc (ends the process past the deadline)
  if ! wait_for "$2" gone "$1"; then
    echo "# pid $1 still running after $2 s: ending it"
    kill -ALRM "$1" 2>/dev/null
    wait_for 10 gone "$1" || kill -KILL "$1" 2>/dev/null
  fi
  wait "$1" 2>/dev/null
  rc=$?
}
listening() {
  at=$(grep -n '^dgw mock listening on ' "$1" | head -n 1 | cut -d: -f1)
  [ -n "$at" ] && [ "$(wc -l < "$1")" -ge "$at" ]
}
start_mock() { # start_mock ARGS...: sets mockpid and url
  mockout=$(fresh mock.out) && mockerr=$(fresh mock.err) || return 1
  url=
  $limit "$dgw" mock --heartbeat-interval 300 "$@" > "$mockout" 2> "$mockerr" &
  mockpid=$!
  if ! wait_for 10 listening "$mockout"; then
    show "$mockerr"
    return 1
  fi
  url=$(sed -n 's/^dgw mock listening on //p' "$mockout" | head -n 1)
  [ -n "$url" ]
}
stop_mock() {
  [ -n "$mockpid" ] || return 0
  kill -TERM "$mockpid" 2>/dev/null
  reap "$mockpid" 10
  mockpid=
}
# free_port: a TCP port nothing listens on right now (bound, then closed).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
