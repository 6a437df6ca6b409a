#!/bin/sh
# The dgw program, as scripts use it: exit statuses, one clear message per
# config mistake, check-plugin, and run / record / mock --replay end to end
# against `dgw mock` over loopback (a graceful stop that saves the
# sessions, a restart that resumes them, a refused token).  Prints TAP.
#
# Runs from the top build directory (make check).  DGW_TEST_WRAPPER (e.g.
# valgrind) wraps the dgw processes that run a client.
#
# Bounded (docs/reliability.md): every process started runs under
# timeout(1), every wait polls with a deadline and then kills what it
# waited for, and every file a process writes has a fresh mktemp name, so
# no check can read a file an earlier process wrote or is still writing.
# timeout runs with --foreground so that a signal sent to it reaches dgw
# once (without, it also signals its process group: dgw would get every
# SIGTERM twice); SIGALRM to timeout makes it end dgw as at its deadline,
# TERM and then KILL 5 s later.
dgw=${DGW:-$PWD/tools/dgw}
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/bg_mock.sh"
mock_heartbeat_ms=500
wrap=${DGW_TEST_WRAPPER:-}
DGW_PLUGIN_PATH=$PWD/plugins/log/.libs:$PWD/plugins/stats/.libs
export DGW_PLUGIN_PATH
testplugins=$PWD/tests/plugins/.libs
tap_tmpdir cli
# The hard limit of any process this script starts in the background: it
# cannot outlive a hung or killed test by more than this.
limit="timeout --foreground -k 5 $((120 * scale))"
# ... and of one that should end at once (help, a config error).
quick="timeout --foreground -k 5 $((30 * scale))"
runpid=
run2pid=
# timeout ends its dgw: TERM, then KILL
cleanup() { end_timeouts $runpid $run2pid $mockpid; }

# expect_config_error NAME CONFIG_TEXT EXPECTED_MESSAGE [ENV...]
# dgw run must exit 3 with one error line containing the message.
expect_config_error() {
  name=$1 text=$2 msg=$3
  shift 3
  printf '%s\n' "$text" > "$tmp/bad.json"
  chmod 644 "$tmp/bad.json"
  $quick env "$@" "$dgw" run "$tmp/bad.json" > "$tmp/out" 2> "$tmp/err"
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
$quick "$dgw" --help > "$tmp/out" 2>&1
ok $? "dgw --help exits 0"
grep -q 'check-plugin' "$tmp/out"
ok $? "dgw --help lists the commands"
$quick "$dgw" frobnicate > /dev/null 2>&1
[ $? -eq 2 ]
ok $? "an unknown command exits 2"
$quick "$dgw" > /dev/null 2>&1
[ $? -eq 2 ]
ok $? "no command exits 2"
for c in run record demo mock check-plugin; do
  $quick "$dgw" $c --help > "$tmp/out" 2>&1 && grep -q "usage: dgw $c" "$tmp/out"
  ok $? "dgw $c --help"
done
$quick "$dgw" run > /dev/null 2>&1
[ $? -eq 2 ]
ok $? "dgw run without a config exits 2"
$quick "$dgw" mock --port 99999 > /dev/null 2>&1
[ $? -eq 2 ]
ok $? "dgw mock --port 99999 exits 2"
$quick "$dgw" mock --privileged GUILDS > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] && grep -q 'privileged takes GUILD_MEMBERS' "$tmp/err"
ok $? "dgw mock --privileged GUILDS (not a privileged intent) exits 2"
$quick "$dgw" mock --help | grep -q -- '--privileged LIST'
ok $? "dgw mock --help lists --privileged"

# ----------------------------------------------------- config errors
good='"intents": ["GUILDS"], "gateway_url": "ws://127.0.0.1:9"'
$quick "$dgw" run "$tmp/none.json" > /dev/null 2> "$tmp/err"
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
$quick "$dgw" check-plugin log > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q '^plugin: *log 1\.' "$tmp/out" &&
  grep -q '^abi: *1 ' "$tmp/out" && grep -q '^init: *ok' "$tmp/out"
ok $? "check-plugin log: loads, reports name, version, ABI"
show "$tmp/out"
$quick "$dgw" check-plugin --config '{"events":["MESSAGE_CREATE","TYPING_START"]}' \
  log > "$tmp/out" 2>&1 && grep -q '^events: *MESSAGE_CREATE TYPING_START' "$tmp/out"
ok $? "check-plugin reports the events the plugin subscribed to"
$quick "$dgw" check-plugin "$testplugins/badabi.so" > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q '^refused: .*other plugin ABI' "$tmp/out"
ok $? "check-plugin on a plugin of another ABI: exit 1, says why"
$quick "$dgw" check-plugin "$testplugins/nosym.so" > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'lacks the symbol dgw_plugin_describe' "$tmp/out"
ok $? "check-plugin on a shared object without the symbol: exit 1"
$quick "$dgw" check-plugin "$tmp/missing.so" > "$tmp/out" 2>&1
[ $? -eq 1 ]
ok $? "check-plugin on a missing file: exit 1"
$quick "$dgw" check-plugin --config '{"interval_ms":"x"}' stats > "$tmp/out" 2>&1
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
lines_of() { [ -f "$1" ] && wc -l < "$1" || echo 0; }
has_lines() { [ "$(lines_of "$1")" -ge "$2" ]; }
# stop_run [SIGNAL]: signals the running dgw (default TERM) and sets rc to
# its exit status (killing it if it has not exited 20 s later, scaled).
# end_run: waits as long for it to exit by itself.
stop_run() {
  kill -"${1:-TERM}" "$runpid" 2>/dev/null
  reap "$runpid" 20
  runpid=
}
end_run() {
  reap "$runpid" 20
  runpid=
}
# run_refused CONFIG PATTERN DESCRIPTION: dgw run with a token the mock
# refuses must exit 4 by itself, PATTERN (grep) in its stderr.
run_refused() {
  err=$(fresh err)
  DISCORD_TOKEN=wrong-token $limit $wrap "$dgw" run "$1" 2> "$err" &
  runpid=$!
  end_run
  [ $rc -eq 4 ] && grep -q "$2" "$err"
  ok $? "$3 (got $rc)"
  show "$err"
}

# Events 300 ms apart: the bot is stopped partway, and the events the
# gateway sends meanwhile must come through the RESUME of the restart,
# none lost, none twice.
start_mock --script "$tmp/script.jsonl" --dispatch-interval 300
ok $? "dgw mock starts and says where it listens"
events=$(fresh events.jsonl)
# The script's messages and typing have no guild_id: DMs, which the mock
# (as Discord) sends only with the DIRECT_* intents.
cat > "$tmp/bot.json" <<EOF
{
  "token_env": "CLI_TEST_TOKEN",
  "intents": "GUILDS,GUILD_MESSAGES,DIRECT_MESSAGES,DIRECT_MESSAGE_TYPING",
  "gateway_url": "$url",
  "session_file": "sessions.json",
  "plugins": [{"name": "log", "config": {"path": "$events"}}],
  "log_level": "info"
}
EOF
run1err=$(fresh run1.err)
CLI_TEST_TOKEN=cli-token $limit $wrap "$dgw" run "$tmp/bot.json" 2> "$run1err" &
runpid=$!
wait_for 20 has_lines "$events" 2 # READY and the first event
ok $? "dgw run: the events reach the log plugin"
grep -q 'shard 0: connecting' "$run1err" &&
  grep -q 'shard 0: ready (session' "$run1err"
ok $? "dgw run logs each lifecycle change"

# A second bot on the same session file would resume the same session and
# kick the first one off, again and again: it must refuse to start.
lockerr=$(fresh lock.err)
CLI_TEST_TOKEN=cli-token $limit $wrap "$dgw" run "$tmp/bot.json" 2> "$lockerr" &
run2pid=$!
reap "$run2pid" 20
run2pid=
[ $rc -eq 3 ] && [ "$(grep -c 'dgw: error:' "$lockerr")" -eq 1 ] &&
  grep -q 'sessions.json is in use by another dgw' "$lockerr" &&
  ! grep -q 'connecting' "$lockerr"
ok $? "a second dgw run on the same session file refuses to start (exit 3, got $rc)"
show "$lockerr"
gone "$runpid"
[ $? -ne 0 ]
ok $? "  ... and the first one keeps running"

stop_run TERM
[ $rc -eq 0 ]
ok $? "SIGTERM stops dgw run gracefully (exit 0, got $rc)"
grep -q 'sessions saved to' "$run1err" && [ -s "$tmp/sessions.json" ]
ok $? "the graceful stop saves the session next to the config"
show "$run1err"
sleep 1 # the gateway goes on meanwhile
[ ! -e "$tmp/sessions.json.lock" ]
ok $? "the stopped bot removed its session lock"
# A lock file left by a bot killed with SIGKILL: nobody holds it, so it
# must not keep the next start from resuming.
: > "$tmp/sessions.json.lock"

run2err=$(fresh run2.err)
CLI_TEST_TOKEN=cli-token $limit $wrap "$dgw" run "$tmp/bot.json" 2> "$run2err" &
runpid=$!
wait_for 20 grep -q 'shard 0: resumed (session' "$run2err"
ok $? "the restart resumes the saved session instead of identifying (a stale lock file does not block it)"
wait_for 20 grep -q '"three"' "$events"
stop_run INT
[ $rc -eq 0 ]
ok $? "SIGINT stops dgw run gracefully (exit 0, got $rc)"
seqs=$(sed -n 's/^{"shard":0,"seq":\([0-9]*\),.*/\1/p' "$events" | tr '\n' ' ')
names=$(sed -n 's/^{"shard":0,"seq":[0-9]*,"t":"\([A-Z_]*\)".*/\1/p' "$events" | tr '\n' ' ')
[ "$seqs" = "1 2 3 4 5 6 " ] &&
  [ "$(grep -c '"t":"READY"' "$events")" -eq 1 ] &&
  [ "$(grep -c '"t":"RESUMED"' "$events")" -eq 1 ] &&
  [ "$(grep -c '"t":"MESSAGE_CREATE"' "$events")" -eq 2 ]
ok $? "across the restart every event once, in order (seqs: $seqs; $names)"
show "$run2err"
stop_mock

# ------------------------------------------ a token Discord refuses
start_mock --token right-token
cat > "$tmp/wrong.json" <<EOF
{"intents": 1, "gateway_url": "$url", "log_level": "warn"}
EOF
run_refused "$tmp/wrong.json" 'peer closed with code 4004' \
  "a refused token (4004) ends dgw run with exit 4"
stop_mock

# --------------------- a privileged intent the app has not enabled: 4014
# Input: the mock's app enables GUILD_MEMBERS only; the bot asks for
# MESSAGE_CONTENT.  Result: close 4014, dgw run exits 4.
start_mock --privileged GUILD_MEMBERS
cat > "$tmp/priv.json" <<EOF
{"intents": "GUILDS,MESSAGE_CONTENT", "gateway_url": "$url", "log_level": "warn"}
EOF
err=$(fresh err)
DISCORD_TOKEN=t $limit $wrap "$dgw" run "$tmp/priv.json" 2> "$err" &
runpid=$!
end_run
[ $rc -eq 4 ] && grep -q 'code 4014' "$err"
ok $? "a privileged intent the mock's app has not enabled: 4014, dgw run exits 4 (got $rc)"
show "$err"
stop_mock

# ------------------------- "auto" shards: GET /gateway/bot from the mock
start_mock --shards 3 --max-concurrency 3 --token right-token
port=${url##*:}
cat > "$tmp/auto.json" <<EOF
{"intents": 1, "shards": "auto", "api_url": "http://127.0.0.1:$port/api/v10",
 "log_level": "info"}
EOF
autoerr=$(fresh auto.err)
DISCORD_TOKEN=right-token $limit $wrap "$dgw" run "$tmp/auto.json" 2> "$autoerr" &
runpid=$!
ready3() { [ "$(grep -c 'ready (session' "$autoerr")" -ge 3 ]; }
wait_for 20 ready3
ok $? "auto shards: the 3 shards GET /gateway/bot recommends all get READY"
grep -q 'shard 2: ready (session' "$autoerr"
ok $? "auto shards: shard ids 0..2"
stop_run TERM
[ $rc -eq 0 ]
ok $? "auto shards: SIGTERM stops all three (exit 0, got $rc)"
show "$autoerr"
run_refused "$tmp/auto.json" '401' \
  "auto shards: a token the API refuses (401) ends dgw run with exit 4"
stop_mock

# ------------------------- a graceful stop that cannot save: not exit 0
start_mock
mkdir "$tmp/state"
cat > "$tmp/save.json" <<EOF
{"intents": 1, "gateway_url": "$url", "session_file": "state/s.json"}
EOF
err=$(fresh err)
DISCORD_TOKEN=t $limit $wrap "$dgw" run "$tmp/save.json" 2> "$err" &
runpid=$!
wait_for 20 grep -q 'shard 0: ready (session' "$err"
rm -rf "$tmp/state" # the directory (and the lock in it) goes away
stop_run TERM
[ $rc -eq 1 ] && grep -q 'cannot save the sessions' "$err"
ok $? "a session file that cannot be written: exit 1, said why (got $rc)"
show "$err"
stop_mock

# ---------------- each state change logged once at debug (issue 15, 10)
# The library logs "shard N: A -> B" at debug; dgw's on_state logged it
# again, so every change came twice.  One run of one shard: each change
# once, each starting where the one before ended.
start_mock
cat > "$tmp/debug.json" <<EOF
{"intents": 1, "gateway_url": "$url", "log_level": "debug"}
EOF
err=$(fresh err)
DISCORD_TOKEN=t $limit $wrap "$dgw" run "$tmp/debug.json" 2> "$err" &
runpid=$!
wait_for 20 grep -q 'shard 0: ready (session' "$err"
stop_run TERM
changes=$(fresh changes)
sed -n 's/.*shard 0: \([a-z_]*\) -> \([a-z_]*\)$/\1 \2/p' "$err" > "$changes"
# chained FILE: 0 when every change starts where the one before ended.
chained() {
  awk 'NR > 1 && $1 != prev { bad = 1 } { prev = $2 } END { exit bad }' "$1"
}
[ $rc -eq 0 ] && [ "$(wc -l < "$changes")" -ge 3 ] &&
  [ -z "$(sort "$changes" | uniq -d)" ] && chained "$changes"
ok $? "log_level debug: each state change of shard 0 logged once ($(tr '\n' ',' < "$changes"))"
show "$changes"
stop_mock

# ------------------------------------- record, then replay the record
start_mock --script "$tmp/script.jsonl"
cat > "$tmp/rec.json" <<EOF
{"intents": "ALL", "gateway_url": "$url", "log_level": "warn"}
EOF
rec1=$(fresh rec1.jsonl)
err=$(fresh err)
DISCORD_TOKEN=t $limit $wrap "$dgw" record "$tmp/rec.json" "$rec1" 2> "$err" &
runpid=$!
wait_for 20 has_lines "$rec1" 5
ok $? "dgw record writes what the bot receives"
stop_run
stop_mock
start_mock --replay "$rec1"
sed -i "s|\"gateway_url\": \"[^\"]*\"|\"gateway_url\": \"$url\"|" "$tmp/rec.json"
rec2=$(fresh rec2.jsonl)
err=$(fresh err)
DISCORD_TOKEN=t $limit $wrap "$dgw" record --events MESSAGE_CREATE,TYPING_START,GUILD_CREATE \
  "$tmp/rec.json" "$rec2" 2> "$err" &
runpid=$!
wait_for 20 has_lines "$rec2" 4
stop_run
stop_mock
strip() { grep -v '"t":"READY"' "$1" | sed 's/^{"shard":[0-9]*,"seq":[0-9]*,//'; }
strip "$rec1" > "$tmp/a"
strip "$rec2" > "$tmp/b"
[ "$(wc -l < "$tmp/a")" -eq 4 ] && cmp -s "$tmp/a" "$tmp/b"
ok $? "dgw mock --replay serves a recording again, event for event"
show "$tmp/b"

echo "1..$n"
exit 0
