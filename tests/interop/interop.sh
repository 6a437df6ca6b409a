# Shared by the interop tests (sourced): a `dgw mock` with the built-in
# guild on a free port, a bot of another library run against it under
# timeout(1), bounded waits on the JSON lines the bot prints, and the
# control API driven with curl.  Prints TAP.  Every wait has a deadline;
# every process started is killed on every exit path.
dgw=${DGW:-$PWD/tools/dgw}
. "$(dirname "$0")/tap.sh"
# The tests that source this live in tests/; the bots in tests/interop/.
here=$(cd "$(dirname "$0")" && pwd)/interop
tap_tmpdir interop
# --foreground: a SIGTERM we send to timeout(1) reaches the program once,
# not again through the process group (a repeat could land in the middle
# of its teardown, e.g. LeakSanitizer's exit check, which then hung).
limit="timeout --foreground -k 5 $((90 * scale))"
wrap=${DGW_TEST_WRAPPER:-} # e.g. valgrind, around the mock
token=interop-token
mockpid=
botpid=
cleanup() {
  for p in $botpid $mockpid; do
    kill "$p" 2>/dev/null
  done
  for p in $botpid $mockpid; do
    wait "$p" 2>/dev/null
  done
}

need curl "apt-get install curl"

start_mock() { # start_mock [DGW MOCK OPTIONS]: sets mockpid, ws, http
  : > "$tmp/mock.out" # before the background shell opens it: no race
  $limit $wrap "$dgw" mock --token "$token" "$@" > "$tmp/mock.out" \
    2> "$tmp/mock.err" &
  mockpid=$!
  wait_for 20 grep -q '^dgw mock listening on ws://' "$tmp/mock.out" || {
    show "$tmp/mock.err"
    bail "dgw mock did not start"
  }
  ws=$(sed -n 's/^dgw mock listening on //p' "$tmp/mock.out" | head -n 1)
  http=http${ws#ws}
}

# stop_mock: SIGTERM, then the mock must end with status 0 (a clean stop;
# under DGW_TEST_WRAPPER=valgrind, no memory error or leak).
stop_mock() {
  kill -TERM "$mockpid" 2> /dev/null
  wait_for 30 gone "$mockpid"
  wait "$mockpid"
  rc=$?
  mockpid=
  [ $rc -eq 0 ]
  ok $? "dgw mock stops cleanly on SIGTERM (exit 0, got $rc)"
}

# bot_says PATTERN: the bot printed a line matching the grep -E PATTERN.
bot_says() { grep -Eq "$1" "$tmp/bot.out" 2> /dev/null; }

# ctl METHOD PATH [JSON]: the control API; the answer in $tmp/ctl.out.
ctl() {
  if [ -n "${3:-}" ]; then
    curl -sS -m 10 -X "$1" -H 'Content-Type: application/json' -d "$3" \
      "$http/_mock/$2" > "$tmp/ctl.out"
  else
    curl -sS -m 10 -X "$1" "$http/_mock/$2" > "$tmp/ctl.out"
  fi
}

# The four checks of issue 16, the same for every library; $1 its name as
# the bot replies ("discord.py", "discord.js").
interop_checks() {
  lib=$1
  wait_for 30 bot_says '"event": ?"ready".*"guilds": ?\["1200000000000000001"\]'
  ok $? "$lib: ready fires with the mock's guild (READY, then GUILD_CREATE)"
  bot_says '"channels": ?\["general", ?"bot-commands"\]'
  ok $? "$lib: the guild's channels built from GUILD_CREATE"
  wait_for 10 bot_says '"event": ?"synced".*"ping"'
  ok $? "$lib: its command list went through PUT /applications/{id}/commands"

  ctl POST messages '{"content": "hello bot"}'
  ok $? "control API: a user's message injected"
  wait_for 15 bot_says '"event": ?"message", ?"content": ?"hello bot".*"mine": ?false.*"guild": ?"1200000000000000001"'
  ok $? "$lib: the injected message reaches its message handler"
  wait_for 15 bot_says '"event": ?"sent".*"hello human"'
  ok $? "$lib: its reply through channel.send is created (POST /channels/{id}/messages)"
  wait_for 15 bot_says '"content": ?"hello human".*"mine": ?true'
  ok $? "$lib: its reply comes back to it as MESSAGE_CREATE"

  ctl POST interactions '{"name": "ping"}'
  ok $? "control API: a slash command injected"
  wait_for 15 bot_says '"event": ?"interaction", ?"name": ?"ping"'
  ok $? "$lib: the slash command reaches its handler"
  wait_for 15 bot_says "\"content\": ?\"pong from $lib\".*\"mine\": ?true"
  ok $? "$lib: it answered through the interaction callback (the answer comes back as MESSAGE_CREATE)"

  ctl POST interactions '{"name": "slow"}'
  wait_for 15 bot_says '"event": ?"slow_done"'
  ok $? "$lib: a deferred answer, edited and followed up, goes through"
  wait_for 15 bot_says "\"content\": ?\"follow-up from $lib\".*\"mine\": ?true"
  ok $? "$lib: its follow-up (POST /webhooks/{app}/{token}) comes back as MESSAGE_CREATE"

  ctl GET sent
  grep -Eq '"method":"PATCH","path":"/api/v10/webhooks/1000000000000000001/[^/]*/messages/(@|%40)original","query":"[^"]*","body":\{"content":"edited from '"$lib"'"' "$tmp/ctl.out"
  ok $? "control API: /_mock/sent shows its edit of the original answer"
  grep -q '"path":"/api/v10/channels/1200000000000000011/messages","query":"","body":{"content":"hello human"' "$tmp/ctl.out" &&
    grep -Eq '/callback","query":"[^"]*","body":\{"type":4,"data":\{[^}]*"content":"pong from '"$lib"'"[^}]*\}\},"status":204' "$tmp/ctl.out"
  ok $? "control API: /_mock/sent lists its REST calls (the reply, the callback: 204)"
  grep -q '"op":2' "$tmp/ctl.out"
  ok $? "control API: /_mock/sent lists its gateway payloads (IDENTIFY)"
}

# interop_run LIB COMMAND...: the whole interop test of library LIB: a
# mock, the bot COMMAND... run against it under $limit (MOCK_URL and
# MOCK_TOKEN in its environment, its output in $tmp/bot.out and
# bot.err), interop_checks, the mock's clean stop; exits with the result.
interop_run() {
  lib=$1
  shift
  echo "1..16"
  start_mock
  MOCK_URL=$http MOCK_TOKEN=$token $limit "$@" > "$tmp/bot.out" \
    2> "$tmp/bot.err" &
  botpid=$!
  interop_checks "$lib"
  kill "$botpid" 2> /dev/null
  wait "$botpid" 2> /dev/null
  botpid=
  stop_mock
  if [ $failed -ne 0 ]; then
    show "$tmp/bot.out" "$tmp/bot.err" "$tmp/mock.err"
  fi
  exit $failed
}
