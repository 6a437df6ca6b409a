#!/bin/sh
# The dgw program, as scripts use it: exit statuses, one clear message per
# config mistake, check-plugin, and run / record / mock --replay end to end
# against `dgw mock` over loopback (a graceful stop that saves the
# sessions, a restart that resumes them, a refused token).  Prints TAP.
#
# Runs from the top build directory (make check).  DGW_TEST_WRAPPER (e.g.
# valgrind) wraps the dgw processes that run a client.
dgw=${DGW:-$PWD/tools/dgw}
scale=${DGW_TEST_TIME_SCALE:-1}
wrap=${DGW_TEST_WRAPPER:-}
DGW_PLUGIN_PATH=$PWD/plugins/log/.libs:$PWD/plugins/stats/.libs
export DGW_PLUGIN_PATH
testplugins=$PWD/tests/plugins/.libs
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dgw-cli.XXXXXX") || exit 1
mockpid=
runpid=
cleanup() {
  [ -n "$runpid" ] && kill -9 "$runpid" 2>/dev/null
  [ -n "$mockpid" ] && kill -9 "$mockpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

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

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s.
wait_for() {
  limit=$(($1 * 10 * scale))
  shift
  i=0
  while [ $i -lt $limit ]; do
    if "$@"; then return 0; fi
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}

# expect_config_error NAME CONFIG_TEXT EXPECTED_MESSAGE [ENV...]
# dgw run must exit 3 with one error line containing the message.
expect_config_error() {
  name=$1 text=$2 msg=$3
  shift 3
  printf '%s\n' "$text" > "$tmp/bad.json"
  chmod 644 "$tmp/bad.json"
  env "$@" "$dgw" run "$tmp/bad.json" > "$tmp/out" 2> "$tmp/err"
  rc=$?
  lines=$(grep -c 'dgw: error:' "$tmp/err")
  if [ $rc -eq 3 ] && [ "$lines" -ge 1 ] && [ "$lines" -le "${maxlines:-1}" ] &&
    grep -qF -- "$msg" "$tmp/err"; then
    ok 0 "config error: $name (exit 3, one message)"
  else
    ok 1 "config error: $name (exit 3, one message; got $rc, $lines lines)"
    show "$tmp/err"
  fi
}

# ------------------------------------------------------------ usage
"$dgw" --help > "$tmp/out" 2>&1
ok $? "dgw --help exits 0"
grep -q 'check-plugin' "$tmp/out"
ok $? "dgw --help lists the commands"
"$dgw" frobnicate > /dev/null 2>&1
[ $? -eq 2 ]
ok $? "an unknown command exits 2"
"$dgw" > /dev/null 2>&1
[ $? -eq 2 ]
ok $? "no command exits 2"
for c in run record demo mock check-plugin; do
  "$dgw" $c --help > "$tmp/out" 2>&1 && grep -q "usage: dgw $c" "$tmp/out"
  ok $? "dgw $c --help"
done
"$dgw" run > /dev/null 2>&1
[ $? -eq 2 ]
ok $? "dgw run without a config exits 2"
"$dgw" mock --port 99999 > /dev/null 2>&1
[ $? -eq 2 ]
ok $? "dgw mock --port 99999 exits 2"

# ----------------------------------------------------- config errors
good='"intents": ["GUILDS"], "gateway_url": "ws://127.0.0.1:9"'
"$dgw" run "$tmp/none.json" > /dev/null 2> "$tmp/err"
rc=$?
[ $rc -eq 3 ] && grep -q 'none.json: cannot open' "$tmp/err"
ok $? "config error: missing file (exit 3)"
expect_config_error "not JSON" '{"intents": [' "not valid JSON at line 2" \
  DISCORD_TOKEN=t
expect_config_error "not an object" '[1, 2]' "must be a JSON object" \
  DISCORD_TOKEN=t
expect_config_error "token variable unset" "{$good}" \
  "environment variable DISCORD_TOKEN is not set" -u DISCORD_TOKEN
expect_config_error "named token variable unset" \
  "{$good, \"token_env\": \"MY_BOT_TOKEN\"}" \
  "environment variable MY_BOT_TOKEN is not set" -u MY_BOT_TOKEN
expect_config_error "bad intent name" \
  '{"intents": ["GUILDS", "GUILD"], "gateway_url": "ws://127.0.0.1:9"}' \
  'intents: unknown intent "GUILD"' DISCORD_TOKEN=t
expect_config_error "undefined intent bits" \
  '{"intents": 131072, "gateway_url": "ws://127.0.0.1:9"}' \
  "4013" DISCORD_TOKEN=t
expect_config_error "intents missing" '{"gateway_url": "ws://127.0.0.1:9"}' \
  "intents: required" DISCORD_TOKEN=t
expect_config_error "unknown key" "{$good, \"shard\": 2}" \
  'unknown key "shard"' DISCORD_TOKEN=t
expect_config_error "shards past total" \
  "{$good, \"shards\": {\"first\": 3, \"count\": 2, \"total\": 4}}" \
  "goes past total" DISCORD_TOKEN=t
expect_config_error "bad log level" "{$good, \"log_level\": \"loud\"}" \
  "log_level: must be" DISCORD_TOKEN=t
expect_config_error "token in a readable file" \
  "{$good, \"token\": \"abc\"}" "token: a token in a file others can read"
expect_config_error "bad gateway URL" \
  '{"intents": 1, "gateway_url": "http://127.0.0.1:9"}' \
  "gateway_url: not a ws:// or wss:// URL" DISCORD_TOKEN=t
expect_config_error "unknown plugin" \
  "{$good, \"plugins\": [\"no-such-plugin\"]}" \
  "plugin refused: no-such-plugin" DISCORD_TOKEN=t
expect_config_error "plugin built for another ABI" \
  "{$good, \"plugins\": [{\"path\": \"$testplugins/badabi.so\"}]}" \
  "other plugin ABI" DISCORD_TOKEN=t
# The plugin's own reason, then the refusal: two lines, both needed.
maxlines=2 expect_config_error "plugin config refused by its init" \
  "{$good, \"plugins\": [{\"name\": \"stats\", \"config\": {\"interval_ms\": 1}}]}" \
  "interval_ms" DISCORD_TOKEN=t
grep -q 'init failed' "$tmp/err"
ok $? "  ... and the refusal says init failed"

# ------------------------------------------------------ check-plugin
"$dgw" check-plugin log > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q '^plugin: *log 1\.' "$tmp/out" &&
  grep -q '^abi: *1 ' "$tmp/out" && grep -q '^init: *ok' "$tmp/out"
ok $? "check-plugin log: loads, reports name, version, ABI"
show "$tmp/out"
"$dgw" check-plugin --config '{"events":["MESSAGE_CREATE","TYPING_START"]}' \
  log > "$tmp/out" 2>&1 && grep -q '^events: *MESSAGE_CREATE TYPING_START' "$tmp/out"
ok $? "check-plugin reports the events the plugin subscribed to"
"$dgw" check-plugin "$testplugins/badabi.so" > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q '^refused: .*other plugin ABI' "$tmp/out"
ok $? "check-plugin on a plugin of another ABI: exit 1, says why"
"$dgw" check-plugin "$testplugins/nosym.so" > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'lacks the symbol dgw_plugin_describe' "$tmp/out"
ok $? "check-plugin on a shared object without the symbol: exit 1"
"$dgw" check-plugin "$tmp/missing.so" > "$tmp/out" 2>&1
[ $? -eq 1 ]
ok $? "check-plugin on a missing file: exit 1"
"$dgw" check-plugin --config '{"interval_ms":"x"}' stats > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'init failed' "$tmp/out"
ok $? "check-plugin with a config the plugin refuses: exit 1"

# ------------------------------------------- run against dgw mock
cat > "$tmp/script.jsonl" <<'EOF'
{"t": "GUILD_CREATE", "d": {"id": "81384788765712384", "name": "cli"}}
{"t": "MESSAGE_CREATE", "d": {"id": "1", "content": "one"}}
{"t": "TYPING_START", "d": {"user_id": "2"}}
{"t": "MESSAGE_CREATE", "d": {"id": "3", "content": "three"}}
EOF
start_mock() { # start_mock ARGS...: sets mockpid and url
  "$dgw" mock --heartbeat-interval 500 "$@" > "$tmp/mock.out" 2> "$tmp/mock.err" &
  mockpid=$!
  wait_for 10 grep -q 'listening on' "$tmp/mock.out" || return 1
  url=$(sed -n 's/^dgw mock listening on //p' "$tmp/mock.out")
}
stop_mock() {
  kill "$mockpid" 2>/dev/null
  wait "$mockpid" 2>/dev/null
  mockpid=
}
lines_of() { [ -f "$1" ] && wc -l < "$1" || echo 0; }
has_lines() { [ "$(lines_of "$1")" -ge "$2" ]; }
# stop_run [SIGNAL]: signals the running dgw (default TERM) and sets rc to
# its exit status.  end_run: waits (20 s, scaled) for it to exit by itself.
stop_run() {
  kill -"${1:-TERM}" "$runpid"
  wait "$runpid"
  rc=$?
  runpid=
}
end_run() {
  wait_for 20 sh -c "! kill -0 $runpid 2>/dev/null"
  wait "$runpid"
  rc=$?
  runpid=
}

# Events 300 ms apart: the bot is stopped partway, and the events the
# gateway sends meanwhile must come through the RESUME of the restart,
# none lost, none twice.
start_mock --script "$tmp/script.jsonl" --dispatch-interval 300
ok $? "dgw mock starts and says where it listens"
cat > "$tmp/bot.json" <<EOF
{
  "token_env": "CLI_TEST_TOKEN",
  "intents": "GUILDS,GUILD_MESSAGES",
  "gateway_url": "$url",
  "session_file": "sessions.json",
  "plugins": [{"name": "log", "config": {"path": "$tmp/events.jsonl"}}],
  "log_level": "info"
}
EOF
CLI_TEST_TOKEN=cli-token $wrap "$dgw" run "$tmp/bot.json" 2> "$tmp/run1.err" &
runpid=$!
wait_for 20 has_lines "$tmp/events.jsonl" 2 # READY and the first event
ok $? "dgw run: the events reach the log plugin"
grep -q 'shard 0: connecting' "$tmp/run1.err" &&
  grep -q 'shard 0: ready (session' "$tmp/run1.err"
ok $? "dgw run logs each lifecycle change"
stop_run TERM
[ $rc -eq 0 ]
ok $? "SIGTERM stops dgw run gracefully (exit 0, got $rc)"
grep -q 'sessions saved to' "$tmp/run1.err" && [ -s "$tmp/sessions.json" ]
ok $? "the graceful stop saves the session next to the config"
show "$tmp/run1.err"
sleep 1 # the gateway goes on meanwhile

CLI_TEST_TOKEN=cli-token $wrap "$dgw" run "$tmp/bot.json" 2> "$tmp/run2.err" &
runpid=$!
wait_for 20 grep -q 'shard 0: resumed (session' "$tmp/run2.err"
ok $? "the restart resumes the saved session instead of identifying"
wait_for 20 grep -q '"three"' "$tmp/events.jsonl"
stop_run INT
[ $rc -eq 0 ]
ok $? "SIGINT stops dgw run gracefully (exit 0, got $rc)"
seqs=$(sed -n 's/^{"shard":0,"seq":\([0-9]*\),.*/\1/p' "$tmp/events.jsonl" | tr '\n' ' ')
names=$(sed -n 's/^{"shard":0,"seq":[0-9]*,"t":"\([A-Z_]*\)".*/\1/p' "$tmp/events.jsonl" | tr '\n' ' ')
[ "$seqs" = "1 2 3 4 5 6 " ] &&
  [ "$(grep -c '"t":"READY"' "$tmp/events.jsonl")" -eq 1 ] &&
  [ "$(grep -c '"t":"RESUMED"' "$tmp/events.jsonl")" -eq 1 ] &&
  [ "$(grep -c '"t":"MESSAGE_CREATE"' "$tmp/events.jsonl")" -eq 2 ]
ok $? "across the restart every event once, in order (seqs: $seqs; $names)"
show "$tmp/run2.err"
stop_mock

# ------------------------------------------ a token Discord refuses
start_mock --token right-token
cat > "$tmp/wrong.json" <<EOF
{"intents": 1, "gateway_url": "$url", "log_level": "warn"}
EOF
DISCORD_TOKEN=wrong-token $wrap "$dgw" run "$tmp/wrong.json" 2> "$tmp/err" &
runpid=$!
end_run
[ $rc -eq 4 ] && grep -q 'peer closed with code 4004' "$tmp/err"
ok $? "a refused token (4004) ends dgw run with exit 4 (got $rc)"
show "$tmp/err"
stop_mock

# ------------------------- "auto" shards: GET /gateway/bot from the mock
start_mock --shards 3 --max-concurrency 3 --token right-token
port=${url##*:}
cat > "$tmp/auto.json" <<EOF
{"intents": 1, "shards": "auto", "api_url": "http://127.0.0.1:$port/api/v10",
 "log_level": "info"}
EOF
DISCORD_TOKEN=right-token $wrap "$dgw" run "$tmp/auto.json" 2> "$tmp/auto.err" &
runpid=$!
ready3() { [ "$(grep -c 'ready (session' "$tmp/auto.err")" -ge 3 ]; }
wait_for 20 ready3
ok $? "auto shards: the 3 shards GET /gateway/bot recommends all get READY"
grep -q 'shard 2: ready (session' "$tmp/auto.err"
ok $? "auto shards: shard ids 0..2"
stop_run TERM
[ $rc -eq 0 ]
ok $? "auto shards: SIGTERM stops all three (exit 0, got $rc)"
show "$tmp/auto.err"
DISCORD_TOKEN=wrong-token $wrap "$dgw" run "$tmp/auto.json" 2> "$tmp/err" &
runpid=$!
end_run
[ $rc -eq 4 ] && grep -q '401' "$tmp/err"
ok $? "auto shards: a token the API refuses (401) ends dgw run with exit 4 (got $rc)"
show "$tmp/err"
stop_mock

# ------------------------- a graceful stop that cannot save: not exit 0
start_mock
mkdir "$tmp/state"
cat > "$tmp/save.json" <<EOF
{"intents": 1, "gateway_url": "$url", "session_file": "state/s.json"}
EOF
DISCORD_TOKEN=t $wrap "$dgw" run "$tmp/save.json" 2> "$tmp/err" &
runpid=$!
wait_for 20 grep -q 'shard 0: ready (session' "$tmp/err"
rmdir "$tmp/state" # the directory goes away while the bot runs
stop_run TERM
[ $rc -eq 1 ] && grep -q 'cannot save the sessions' "$tmp/err"
ok $? "a session file that cannot be written: exit 1, said why (got $rc)"
show "$tmp/err"
stop_mock

# ------------------------------------- record, then replay the record
start_mock --script "$tmp/script.jsonl"
cat > "$tmp/rec.json" <<EOF
{"intents": "ALL", "gateway_url": "$url", "log_level": "warn"}
EOF
DISCORD_TOKEN=t $wrap "$dgw" record "$tmp/rec.json" "$tmp/rec1.jsonl" 2> "$tmp/err" &
runpid=$!
wait_for 20 has_lines "$tmp/rec1.jsonl" 5
ok $? "dgw record writes what the bot receives"
stop_run
stop_mock
start_mock --replay "$tmp/rec1.jsonl"
sed -i "s|\"gateway_url\": \"[^\"]*\"|\"gateway_url\": \"$url\"|" "$tmp/rec.json"
DISCORD_TOKEN=t $wrap "$dgw" record --events MESSAGE_CREATE,TYPING_START,GUILD_CREATE \
  "$tmp/rec.json" "$tmp/rec2.jsonl" 2> "$tmp/err" &
runpid=$!
wait_for 20 has_lines "$tmp/rec2.jsonl" 4
stop_run
stop_mock
strip() { grep -v '"t":"READY"' "$1" | sed 's/^{"shard":[0-9]*,"seq":[0-9]*,//'; }
strip "$tmp/rec1.jsonl" > "$tmp/a"
strip "$tmp/rec2.jsonl" > "$tmp/b"
[ "$(wc -l < "$tmp/a")" -eq 4 ] && cmp -s "$tmp/a" "$tmp/b"
ok $? "dgw mock --replay serves a recording again, event for event"
show "$tmp/b"

echo "1..$n"
exit 0
