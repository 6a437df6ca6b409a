#!/bin/sh
# `dgw run` for operators (issue 14), against `dgw mock` and a closed port:
#  - a refused port at log_level warn: a warn line with the URL and the
#    cause, "still offline" reminders, give_up_after_s ends with exit 1;
#  - "log_format": "json": every stderr line parses as one JSON object
#    with ts, level, msg (and shard, url where the line names them);
#  - a plugin calling host->stop ends dgw run with exit 0;
#  - "token_file" read from $CREDENTIALS_DIRECTORY, and sd_notify: a unix
#    datagram socket as NOTIFY_SOCKET receives READY=1, STATUS=,
#    WATCHDOG=1 and STOPPING=1, READY before STOPPING;
#  - `dgw help run` shows the run help.
# Prints TAP.
. "${srcdir:-.}/tests/ops_common.sh"
tap_tmpdir ops
py=/usr/bin/python3
[ -x "$py" ] || bail "$py is needed (apt-get install python3)"

# ------------------------------------------------------------- help
$quick "$dgw" help run > "$tmp/help" 2>&1
[ $? -eq 0 ] && grep -q '^usage: dgw run CONFIG.json' "$tmp/help" &&
  grep -q 'give_up_after_s' "$tmp/help"
ok $? "dgw help run shows the run help"

# ---------------------------------------- mistakes in the new keys
# expect_config_error NAME CONFIG_TEXT MESSAGE [ENV...]: exit 3, the message.
expect_config_error() {
  name=$1 text=$2 msg=$3
  shift 3
  printf '%s\n' "$text" > "$tmp/bad.json"
  chmod 600 "$tmp/bad.json"
  $quick env "$@" "$dgw" run "$tmp/bad.json" > /dev/null 2> "$tmp/err"
  rc=$?
  [ $rc -eq 3 ] && grep -qF -- "$msg" "$tmp/err"
  ok $? "config error: $name (exit 3, got $rc)"
  [ $rc -eq 3 ] || show "$tmp/err"
}
expect_config_error "log_format" '{"intents":1,"log_format":"xml"}' \
  'log_format: must be "text" or "json"' DISCORD_TOKEN=t
expect_config_error "metrics without listen" '{"intents":1,"metrics":{}}' \
  'metrics: must be {"listen"' DISCORD_TOKEN=t
expect_config_error "metrics unknown key" \
  '{"intents":1,"metrics":{"listen":"127.0.0.1:1","port":2}}' \
  'metrics: unknown key "port"' DISCORD_TOKEN=t
expect_config_error "metrics resume_budget_s not a number" \
  '{"intents":1,"metrics":{"listen":"127.0.0.1:1","resume_budget_s":"x"}}' \
  '"resume_budget_s" must be a number' DISCORD_TOKEN=t
expect_config_error "give_up_after_s negative" \
  '{"intents":1,"give_up_after_s":-1}' 'give_up_after_s: must be a whole' \
  DISCORD_TOKEN=t
printf 'tok\n' > "$tmp/open.token" && chmod 644 "$tmp/open.token"
expect_config_error "token_file readable by others" \
  "{\"intents\":1,\"token_file\":\"$tmp/open.token\"}" \
  'can be read by others'
expect_config_error "token_file with token_env" \
  '{"intents":1,"token_file":"x","token_env":"T"}' \
  'give one of "token", "token_env" and "token_file"'
expect_config_error "token_file missing" \
  '{"intents":1,"token_file":"nope"}' 'token_file: cannot read'

# ------------------------------ a refused port: say why, then give up
port=$(free_port)
cat > "$tmp/refused.json" <<EOC
{"intents": 1, "gateway_url": "ws://127.0.0.1:$port", "log_level": "warn",
 "log_format": "json", "give_up_after_s": 3, "offline_reminder_s": 1}
EOC
err=$(fresh refused.err)
DISCORD_TOKEN=t $quick $wrap "$dgw" run "$tmp/refused.json" 2> "$err"
rc=$?
[ $rc -eq 1 ]
ok $? "give_up_after_s: offline that long ends dgw run with exit 1 (got $rc)"
cat > "$tmp/check.py" <<'EOP'
import json, sys
port = sys.argv[2]
lines = open(sys.argv[1]).read().splitlines()
objs = []
for l in lines:
    o = json.loads(l)  # every line one JSON object
    assert isinstance(o, dict), l
    for k in ("ts", "level", "msg"):
        assert k in o, (k, l)
    objs.append(o)
warn = [o for o in objs if o["level"] == "warn" and o["msg"].startswith("shard 0: cannot reach")]
assert warn, "no warn line saying why"
w = warn[0]
assert w.get("shard") == 0, w
assert w.get("url") == "ws://127.0.0.1:" + port, w
assert "Connection refused" in w["msg"], w
assert len(warn) == 1, "the first failure is said once, not at every retry"
rem = [o for o in objs if "still offline after" in o["msg"]]
assert rem and rem[0]["level"] == "warn" and "ws://127.0.0.1:" + port in rem[0]["msg"], rem
assert any("giving up" in o["msg"] and o["level"] == "error" for o in objs)
print("ok")
EOP
$py "$tmp/check.py" "$err" "$port" > "$tmp/check.out" 2>&1
ok $? "json log lines parse; one warn line names the URL and the cause; reminders while offline; the give-up line"
show "$tmp/check.out" "$err"

# Off by default: without give_up_after_s it keeps trying.
cat > "$tmp/keep.json" <<EOC
{"intents": 1, "gateway_url": "ws://127.0.0.1:$port", "log_level": "warn"}
EOC
err=$(fresh keep.err)
DISCORD_TOKEN=t $limit $wrap "$dgw" run "$tmp/keep.json" 2> "$err" &
runpid=$!
sleep $((4 * scale))
gone "$runpid"
[ $? -ne 0 ]
ok $? "without give_up_after_s dgw run keeps trying"
grep -q "dgw: warn: shard 0: cannot reach ws://127.0.0.1:$port: .*Connection refused" "$err"
ok $? "  ... and its text log (the default) has the warn line with URL and cause"
show "$err"
kill -TERM "$runpid"
reap "$runpid" 20
runpid=

# -------------------------------------------- a plugin stops the client
cat > "$tmp/script.jsonl" <<'EOS'
{"t": "MESSAGE_CREATE", "d": {"id": "1", "content": "one"}}
EOS
start_mock --script "$tmp/script.jsonl" --token right-token
ok $? "dgw mock starts"
# The message has no guild_id: a DM, which the mock (as Discord) sends
# only with DIRECT_MESSAGES (4096).
cat > "$tmp/stop.json" <<EOC
{"intents": 4097, "gateway_url": "$url", "log_level": "info",
 "plugins": [{"path": "$testplugins/rec_all.so",
              "config": {"stop_on": "MESSAGE_CREATE"}}]}
EOC
err=$(fresh stop.err)
DISCORD_TOKEN=right-token $quick $wrap "$dgw" run "$tmp/stop.json" 2> "$err"
rc=$?
[ $rc -eq 0 ] && grep -q 'stopped (by a plugin)' "$err"
ok $? "a plugin's host->stop ends dgw run with exit 0 (got $rc)"
show "$err" | tail -n 4

# A refused token in JSON logs: the close code is a field of its own.
cat > "$tmp/wrong.json" <<EOC
{"intents": 1, "gateway_url": "$url", "log_level": "warn", "log_format": "json"}
EOC
err=$(fresh wrong.err)
DISCORD_TOKEN=wrong-token $quick $wrap "$dgw" run "$tmp/wrong.json" 2> "$err"
rc=$?
cat > "$tmp/code.py" <<'EOP'
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert any(o.get("close_code") == 4004 and o.get("shard") == 0 for o in objs), objs
EOP
[ $rc -eq 4 ] && $py "$tmp/code.py" "$err" > "$tmp/code.out" 2>&1
ok $? "json logs: a refused token's line carries close_code 4004 and shard 0 (exit 4, got $rc)"
show "$tmp/code.out" "$err"

# --------------------------------- token_file + systemd's notify socket
mkdir "$tmp/creds" && printf 'right-token\n' > "$tmp/creds/token" &&
  chmod 600 "$tmp/creds/token"
cat > "$tmp/unit.json" <<EOC
{"intents": 1, "gateway_url": "$url", "log_level": "info",
 "token_file": "token"}
EOC
sock="$tmp/notify.sock"
notes=$(fresh notify.txt)
cat > "$tmp/recv.py" <<'EOP'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "w")
deadline = time.time() + float(sys.argv[3])
while time.time() < deadline:
    s.settimeout(max(0.05, deadline - time.time()))
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        break
    out.write(msg.replace("\n", "|") + "\n")
    out.flush()
    if "STOPPING=1" in msg:
        break
EOP
$limit $py "$tmp/recv.py" "$sock" "$notes" $((30 * scale)) &
extrapid=$!
wait_for 10 test -S "$sock"
ok $? "the notify receiver listens"
err=$(fresh unit.err)
env -u DISCORD_TOKEN CREDENTIALS_DIRECTORY="$tmp/creds" NOTIFY_SOCKET="$sock" \
  WATCHDOG_USEC=400000 $limit $wrap "$dgw" run "$tmp/unit.json" 2> "$err" &
runpid=$!
wait_for 20 grep -q 'READY=1' "$notes"
ok $? "token_file read from \$CREDENTIALS_DIRECTORY: the bot gets READY, and systemd hears READY=1"
wait_for 5 grep -q 'WATCHDOG=1' "$notes"
ok $? "WATCHDOG=1 from the loop when WATCHDOG_USEC is set"
kill -TERM "$runpid"
reap "$runpid" 20
runpid=
[ $rc -eq 0 ]
ok $? "dgw run under the notify socket stops on SIGTERM (exit 0, got $rc)"
reap "$extrapid" 10
extrapid=
r=$(grep -n '^READY=1' "$notes" | head -n 1 | cut -d: -f1)
s=$(grep -n '^STOPPING=1' "$notes" | head -n 1 | cut -d: -f1)
[ -n "$r" ] && [ -n "$s" ] && [ "$r" -lt "$s" ] &&
  grep -q '^STATUS=1/1 shards ready' "$notes" &&
  [ "$(grep -c '^STOPPING=1' "$notes")" -eq 1 ]
ok $? "the messages in order: READY=1 ... STATUS=1/1 shards ready ... STOPPING=1 (once)"
show "$notes" | grep -v WATCHDOG
stop_mock

# ------------------------------------------- the unit and the man pages
need systemd-analyze "apt-get install systemd"
need groff "apt-get install groff-base"
top=${srcdir:-.}
sed "s#^ExecStart=/usr/bin/dgw#ExecStart=$dgw#" \
  "$top/contrib/systemd/dgw@.service" > "$tmp/dgw@test.service"
grep -q '^Type=notify$' "$tmp/dgw@test.service" &&
  grep -q '^LoadCredential=token:' "$tmp/dgw@test.service" &&
  grep -q '^StateDirectory=dgw/%i$' "$tmp/dgw@test.service" &&
  systemd-analyze verify --man=no "$tmp/dgw@test.service" > "$tmp/verify" 2>&1 &&
  [ ! -s "$tmp/verify" ]
ok $? "contrib/systemd/dgw@.service: Type=notify, LoadCredential, StateDirectory; systemd-analyze verify is silent"
show "$tmp/verify"
for page in "$top/doc/dgw.1" "$top/doc/dgw-config.5"; do
  groff -man -Tutf8 -ww -z "$page" > "$tmp/groff" 2>&1 && [ ! -s "$tmp/groff" ]
  ok $? "$(basename "$page") renders without a groff warning"
  show "$tmp/groff"
done

tap_end
