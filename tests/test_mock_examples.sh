#!/bin/sh
# The examples against `dgw mock` (issue 16): examples/bot (the README's
# bot: without a token, with a refused one, and reaching READY, the
# built-in guild and an injected message through GET /gateway/bot),
# examples/graceful-bot (SIGINT stops it cleanly, the sessions are saved,
# the next start resumes them with the events sent meanwhile), and the
# hello plugin (docs/examples/hello-plugin.c) in dgw run.  Prints TAP.
. "$(dirname "$0")/interop/interop.sh"
bot=$PWD/examples/bot
gbot=$PWD/examples/graceful-bot
runwrap=${DGW_TEST_WRAPPER:-}
# --foreground: a signal sent to timeout reaches the bot once (without, it
# also signals its process group, and a second SIGINT ends the bot while it
# saves).
flimit="timeout --foreground -k 5 $((90 * scale))"
pids=
trap 'for p in $pids; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; tap_exit' EXIT
says() { grep -Eq "$2" "$1" 2> /dev/null; }

start_mock
api=$http/api/v10

# ---------------------------------------------------------- examples/bot
$limit $runwrap "$bot" > "$tmp/b0.out" 2> "$tmp/b0.err"
rc=$?
[ $rc -eq 2 ] && grep -q 'set DISCORD_TOKEN' "$tmp/b0.err"
ok $? "bot without DISCORD_TOKEN: one clear message, exit 2 (got $rc)"

DISCORD_TOKEN=wrong DGW_API_URL=$api $limit $runwrap "$bot" \
  > "$tmp/b1.out" 2> "$tmp/b1.err"
rc=$?
[ $rc -eq 1 ] && grep -q 'bot: cannot run: .*401' "$tmp/b1.err"
ok $? "bot with a refused token: on_client_fatal says so (401), exit 1 (got $rc)"
[ $failed -eq 0 ] || show "$tmp/b1.err"

: > "$tmp/b2.out"
DISCORD_TOKEN=$token DGW_API_URL=$api $limit $runwrap "$bot" \
  > "$tmp/b2.out" 2> "$tmp/b2.err" &
pids="$pids $!"
b2=$!
wait_for 20 says "$tmp/b2.out" '^shard 0 s=2 GUILD_CREATE \{"id":"1200000000000000001"'
ok $? "bot (auto shards through GET /gateway/bot): READY, then the guild"
ctl POST messages '{"content": "hello example"}'
# The example asks for GUILDS | GUILD_MESSAGES, not MESSAGE_CONTENT: the
# mock, as Discord, hands it the guild message with its content emptied.
id=$(sed -n 's/^{"id":"\([0-9]*\)".*/\1/p' "$tmp/ctl.out")
wait_for 10 says "$tmp/b2.out" "MESSAGE_CREATE \\{\"id\":\"$id\".*\"content\":\"\""
ok $? "bot: an injected message reaches on_event (id ${id:-none}, content emptied without MESSAGE_CONTENT)"
grep -q 'bot: info: ' "$tmp/b2.err"
ok $? "bot: the log callback gets the library's lines"
kill "$b2" 2> /dev/null
wait "$b2" 2> /dev/null

# ---------------------------------------------------- examples/graceful-bot
sessions=$tmp/sessions.json
# start_gbot NAME: graceful-bot on the mock with $sessions, its output in
# $tmp/NAME.out and NAME.err; sets gpid.
start_gbot() {
  : > "$tmp/$1.out"
  DISCORD_TOKEN=$token $flimit $runwrap "$gbot" "$sessions" "$ws" \
    > "$tmp/$1.out" 2> "$tmp/$1.err" &
  gpid=$!
  pids="$pids $gpid"
}
# stop_gbot SIGNAL: signals it, waits (30 s) for it to end; sets rc.
stop_gbot() {
  kill -"$1" "$gpid"
  wait_for 30 gone "$gpid"
  wait "$gpid"
  rc=$?
}
start_gbot g1
wait_for 20 says "$tmp/g1.out" '^ready: shard 0'
ok $? "graceful-bot: READY on the mock"
stop_gbot INT
[ $rc -eq 0 ] && grep -q 'sessions saved to' "$tmp/g1.out" && [ -s "$sessions" ]
ok $? "graceful-bot: SIGINT stops it cleanly, sessions saved (exit 0, got $rc)"
[ $failed -eq 0 ] || show "$tmp/g1.out" "$tmp/g1.err"
# The world goes on while it is away: the next start must get this.
ctl POST messages '{"content": "while you were away"}'
start_gbot g2
wait_for 20 says "$tmp/g2.out" '^resumed: shard 0'
ok $? "graceful-bot: the restart resumes the saved session"
says "$tmp/g2.out" 'MESSAGE_CREATE' && ! says "$tmp/g2.out" '^ready:'
ok $? "graceful-bot: the message sent meanwhile is replayed, no new IDENTIFY"
stop_gbot TERM
[ $rc -eq 0 ]
ok $? "graceful-bot: SIGTERM stops it cleanly too (exit 0, got $rc)"

# ------------------------------------------------------ the hello plugin
cat > "$tmp/hello.json" <<JSON
{"token_env": "MOCK_TEST_TOKEN", "intents": 33281, "gateway_url": "$ws",
 "plugins": [{"name": "hello", "config": {"every_ms": 200}}],
 "log_level": "info"}
JSON
: > "$tmp/h.err"
DGW_PLUGIN_PATH=$PWD/examples/.libs MOCK_TEST_TOKEN=$token \
  $limit $runwrap "$dgw" run "$tmp/hello.json" > "$tmp/h.out" 2> "$tmp/h.err" &
h=$!
pids="$pids $h"
wait_for 20 says "$tmp/h.err" 'hello, shard 0'
ok $? "hello plugin: loaded by dgw run, greets the shard"
ctl POST messages '{"content": "hi plugin"}'
wait_for 10 says "$tmp/h.err" 'MESSAGE_CREATE #[0-9]+ on shard 0'
ok $? "hello plugin: sees the injected MESSAGE_CREATE"
wait_for 10 says "$tmp/h.err" 'messages so far'
ok $? "hello plugin: its timer reports"
kill -TERM "$h"
wait "$h"
rc=$?
[ $rc -eq 0 ] && grep -q 'goodbye\|unloaded\|fini' "$tmp/h.err"
ok $? "hello plugin: dgw run stops (exit 0, got $rc) and the plugin says goodbye"
[ $failed -eq 0 ] || show "$tmp/h.err"

stop_mock
tap_end
