# shellcheck shell=sh disable=SC2034
# Sourced by tests/test_cli.sh and tests/ops_common.sh after tests/tap.sh:
# one `dgw mock` in the background under $limit (timeout(1)), its output in
# fresh files under $tmp, every wait with a deadline.  $dgw and $limit are
# the test's; mock_heartbeat_ms (default 300) its heartbeat interval.
mockpid=
# listening FILE: FILE holds the mock's whole "listening on" line (the
# newline included, so the URL is complete).
listening() {
  at=$(grep -n '^dgw mock listening on ' "$1" | head -n 1 | cut -d: -f1)
  [ -n "$at" ] && [ "$(wc -l < "$1")" -ge "$at" ]
}
start_mock() { # start_mock ARGS...: sets mockpid and url
  mockout=$(fresh mock.out) && mockerr=$(fresh mock.err) || return 1
  url=
  $limit "$dgw" mock --heartbeat-interval "${mock_heartbeat_ms:-300}" "$@" \
    > "$mockout" 2> "$mockerr" &
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
