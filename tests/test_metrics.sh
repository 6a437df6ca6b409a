#!/bin/sh
# The metrics plugin under `dgw run` against `dgw mock` (issue 14): the
# top-level "metrics" key loads it; /metrics is fetched with curl and
# validated with `promtool check metrics`; the names, the shard label and
# the histograms are there; a busy port refuses the plugin naming the
# address (exit 3); /healthz answers 200 while the shard is READY and 503
# with the faulty shard named once the mock is gone for longer than
# resume_budget_s.  A missing curl or promtool fails the test.  Prints TAP.
. "${srcdir:-.}/tests/ops_common.sh"
tap_tmpdir metrics
need curl "apt-get install curl"
need promtool "apt-get install prometheus"

cat > "$tmp/script.jsonl" <<'EOS'
{"t": "MESSAGE_CREATE", "d": {"id": "1", "content": "one"}}
{"t": "MESSAGE_CREATE", "d": {"id": "2", "content": "two"}}
{"t": "A_NAME_NOBODY_KNOWS", "d": {}}
EOS
start_mock --script "$tmp/script.jsonl"
ok $? "dgw mock starts"
port=$(free_port)
events=$(fresh events.jsonl)
# The messages have no guild_id: DMs, which the mock (as Discord) sends
# only with DIRECT_MESSAGES (4096).
cat > "$tmp/bot.json" <<EOC
{"intents": 4097, "gateway_url": "$url", "log_level": "info",
 "plugins": [{"name": "log", "config": {"path": "$events"}}],
 "metrics": {"listen": "127.0.0.1:$port", "resume_budget_s": 1}}
EOC
runerr=$(fresh run.err)
DISCORD_TOKEN=t $limit $wrap "$dgw" run "$tmp/bot.json" 2> "$runerr" &
runpid=$!
has4() { [ "$(wc -l < "$events")" -ge 4 ]; }
wait_for 20 has4
ok $? "dgw run with \"metrics\" gets READY and the events"
m=$(fresh metrics)
hz=$(fresh healthz)
curl -sf -m 5 "http://127.0.0.1:$port/metrics" > "$m"
ok $? "curl fetches /metrics"
promtool check metrics < "$m" > "$tmp/promtool.out" 2>&1
ok $? "promtool check metrics accepts it"
show "$tmp/promtool.out"
grep -q '^dgw_dispatches_total{shard="0",event="MESSAGE_CREATE"} 2$' "$m" &&
  grep -q '^dgw_dispatches_total{shard="0",event="other"} 1$' "$m" &&
  grep -q '^dgw_dispatches_total{shard="0",event="READY"} 1$' "$m"
ok $? "dispatches by event name, an unknown name counted as other"
grep -q '^dgw_heartbeat_latency_seconds_bucket{shard="0",le="+Inf"} ' "$m" &&
  grep -q '^dgw_heartbeat_latency_seconds_count{shard="0"} ' "$m" &&
  grep -q '^dgw_handler_seconds_bucket{event="MESSAGE_CREATE",le="+Inf"} 2$' "$m" &&
  grep -q '^dgw_handler_seconds_count{event="MESSAGE_CREATE"} 2$' "$m"
ok $? "histograms of heartbeat latency (per shard) and handler time (per event)"
grep -q '^dgw_shard_up{shard="0"} 1$' "$m" &&
  grep -q '^dgw_wire_bytes_received_total{shard="0"} [1-9]' "$m" &&
  grep -q '^dgw_inflated_bytes_received_total{shard="0"} [1-9]' "$m" &&
  grep -q '^dgw_identifies_total{shard="0"} 1$' "$m" &&
  grep -q '^dgw_send_queue_depth{shard="0"} 0$' "$m" &&
  grep -q '^dgw_session_starts_left ' "$m" &&
  grep -q '^dgw_seconds_since_last_event{shard="0"} ' "$m"
ok $? "state, bytes, identifies, queue depth, starts left, time since the last event"
[ -z "$(grep -v '^#' "$m" | grep -v '^dgw_')" ]
ok $? "every sample is named dgw_*"
grep -v '^#' "$m" | sed 's/^/# /' | head -n 5

code=$(curl -s -m 5 -o "$hz" -w '%{http_code}' "http://127.0.0.1:$port/healthz")
[ "$code" = 200 ] && grep -q '"status":"ok"' "$hz"
ok $? "/healthz answers 200 while the shard is READY (got $code)"

# Another bot on the same port: refused, naming the address.
busyerr=$(fresh busy.err)
DISCORD_TOKEN=t $quick "$dgw" run "$tmp/bot.json" 2> "$busyerr"
rc=$?
[ $rc -eq 3 ] && grep -q "cannot listen on 127.0.0.1:$port" "$busyerr"
ok $? "a busy port refuses the metrics plugin, naming the address (exit 3, got $rc)"
show "$busyerr"

# The gateway goes away: the shard is away from READY past its budget.
stop_mock
unhealthy() {
  code=$(curl -s -m 5 -o "$hz" -w '%{http_code}' "http://127.0.0.1:$port/healthz")
  [ "$code" = 503 ]
}
wait_for 15 unhealthy
ok $? "/healthz answers 503 once the shard is gone longer than resume_budget_s"
grep -q '"status":"unhealthy"' "$hz" && grep -q '"shard":0' "$hz"
ok $? "  ... with a JSON body naming the faulty shard"
show "$hz"
curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope" | grep -q 404
ok $? "another path is 404"

kill -TERM "$runpid"
reap "$runpid" 20
runpid=
[ $rc -eq 0 ]
ok $? "SIGTERM stops dgw run (exit 0, got $rc)"
show "$runerr" | tail -n 5

tap_end
