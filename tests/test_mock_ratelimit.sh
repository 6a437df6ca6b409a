#!/bin/sh
# dgw mock's REST 429s (docs/mock.md, "Rate limits"), driven with curl and
# `dgw run` as the bot whose events are checked: a 429 injected through
# POST /_mock/ratelimit (Discord's body, Retry-After, X-RateLimit-Scope,
# the bucket's headers or X-RateLimit-Global; the request not performed:
# no MESSAGE_CREATE), route-scoped ones leaving other routes alone, the
# count running out back to 200, the counters in /_mock/state; with
# --rate-limits, the per-channel message bucket counted down 4..0 and a
# sixth POST answered 429 with the real retry_after; without it, never;
# with discord.py, channel.send retrying an injected 429 by itself.
# Prints TAP.  Needs curl.
. "$(dirname "$0")/interop/interop.sh"
DGW_PLUGIN_PATH=$PWD/plugins/log/.libs
export DGW_PLUGIN_PATH
runpid=
trap 'kill $runpid 2>/dev/null; wait $runpid 2>/dev/null; tap_exit' EXIT

# req METHOD PATH [JSON]: a REST call with the bot's token; status in
# $code, body in $tmp/body, headers in $tmp/headers.
req() {
  code=$(curl -sS -m 10 -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' \
    -X "$1" -H "Authorization: Bot $token" \
    -H 'Content-Type: application/json' ${3:+-d "$3"} "$http$2")
}
body_has() { grep -qF -- "$1" "$tmp/body"; }
# header NAME: the value of response header NAME (case-insensitive).
header() {
  sed -n "s/^$1: *//Ip" "$tmp/headers" | tr -d '\r' | head -n 1
}
logged() { grep -qF -- "$1" "$events"; }
ch=/api/v10/channels/1200000000000000011

start_mock --heartbeat-interval $((500 * scale))
events=$tmp/events.jsonl
: > "$events"
cat > "$tmp/run.json" <<JSON
{"token_env": "MOCK_TEST_TOKEN", "intents": 34305, "gateway_url": "$ws",
 "plugins": [{"name": "log", "config": {"path": "$events"}}],
 "log_level": "info"}
JSON
MOCK_TEST_TOKEN=$token $limit "$dgw" run "$tmp/run.json" 2> "$tmp/run.err" &
runpid=$!
wait_for 20 logged '"t":"GUILD_CREATE"'
ok $? "the bot is ready (GUILD_CREATE of the built-in guild)"

# ------------------------------------------------------ an injected 429
ctl POST ratelimit '{"count": 1, "retry_after": 1.5}'
grep -qF '"injected_left":1' "$tmp/ctl.out"
ok $? "POST /_mock/ratelimit: one 429 to come ($(cat "$tmp/ctl.out"))"
req POST $ch/messages '{"content": "rl-blocked"}'
[ "$code" = 429 ] && body_has '"message":"You are being rate limited."' &&
  body_has '"retry_after":1.5' && body_has '"global":false'
ok $? "an injected 429: Discord's body (got $code $(cat "$tmp/body"))"
[ "$(header Retry-After)" = 2 ] && [ "$(header X-RateLimit-Scope)" = user ] &&
  [ "$(header X-RateLimit-Remaining)" = 0 ] &&
  [ "$(header X-RateLimit-Reset-After)" = 1.500 ] &&
  [ -n "$(header X-RateLimit-Bucket)" ] && [ -z "$(header X-RateLimit-Global)" ]
ok $? "a route 429: Retry-After 2 (1.5 rounded up), scope user, Remaining 0, Reset-After 1.500"
req POST $ch/messages '{"content": "rl-after"}'
[ "$code" = 200 ] && [ "$(header X-RateLimit-Remaining)" = 49 ]
ok $? "the count ran out: the next POST is 200 with the generous headers (got $code)"
wait_for 15 logged '"content":"rl-after"'
ok $? "the POST after the 429 arrives as MESSAGE_CREATE"
! logged '"content":"rl-blocked"'
ok $? "the 429'd POST was not performed: no MESSAGE_CREATE before the later one"
ctl GET sent
grep -qF '"body":{"content":"rl-blocked"},"status":429' "$tmp/ctl.out"
ok $? "/_mock/sent records the 429'd request with status 429"

# ------------------------------------------------------ global, counted
ctl POST ratelimit '{"count": 2, "retry_after": 0.25, "global": true}'
req GET /api/v10/users/@me
a=$code
[ "$a" = 429 ] && body_has '"global":true' && body_has '"code":0' &&
  body_has '"retry_after":0.25' && [ "$(header Retry-After)" = 1 ] &&
  [ "$(header X-RateLimit-Global)" = true ] &&
  [ "$(header X-RateLimit-Scope)" = global ] &&
  [ -z "$(header X-RateLimit-Remaining)" ]
ok $? "a global 429: global true, code 0, X-RateLimit-Global, scope global, no bucket headers (got $a)"
req GET /api/v10/guilds/1200000000000000001
b=$code
req GET /api/v10/users/@me
[ "$b" = 429 ] && [ "$code" = 200 ]
ok $? "a global one hits any route; two of them, then 200 (got $b, $code)"
ctl GET state
grep -qF '"ratelimit":{"injected_left":0,"injected_served":3,"enforced":false' "$tmp/ctl.out" &&
  grep -qF '"rest_rate_limited":3' "$tmp/ctl.out"
ok $? "/_mock/state: injected 429s left and served, rest_rate_limited"

# ------------------------------------------------------ route-scoped
ctl POST ratelimit '{"count": 1, "route": "/channels/", "scope": "shared"}'
req GET /api/v10/users/@me
a=$code
req POST $ch/messages '{"content": "rl-route"}'
[ "$a" = 200 ] && [ "$code" = 429 ] &&
  [ "$(header X-RateLimit-Scope)" = shared ] &&
  [ "$(header Retry-After)" = 1 ]
ok $? "route /channels/: another route is served, a channel one gets 429, scope shared (got $a, $code)"
ctl POST ratelimit '{"count": -1}'
a=$(cat "$tmp/ctl.out")
ctl POST ratelimit '{"count": 1, "global": "yes"}'
case $a$(cat "$tmp/ctl.out") in *'"code":0'*'"code":0'*) r=0 ;; *) r=1 ;; esac
ok $r "POST /_mock/ratelimit refuses a negative count and a non-boolean global"

# ------------------------------------------------------ never enforced
i=0
codes=
while [ $i -lt 6 ]; do
  req POST $ch/messages "{\"content\": \"free $i\"}"
  codes="$codes $code"
  i=$((i + 1))
done
[ "$codes" = " 200 200 200 200 200 200" ]
ok $? "without --rate-limits, 6 quick POSTs to a channel are all 200 ($codes)"

# ------------------------------------------------------ discord.py
python=${DGW_INTEROP_PYTHON:-/usr/bin/python3}
if [ -x "$python" ] && "$python" -c 'import discord' 2> /dev/null; then
  ctl POST ratelimit '{"count": 1, "retry_after": 0.3, "route": "/api/v10/channels/"}'
  MOCK_URL=$http MOCK_TOKEN=$token $limit "$python" \
    "$here/discordpy_ratelimit.py" > "$tmp/py.out" 2> "$tmp/py.err"
  r=$?
  ctl GET sent
  [ $r -eq 0 ] && grep -qF '"sent": "after 429"' "$tmp/py.out" &&
    [ "$(grep -o '"content":"after 429"[^}]*},"status":[0-9]*' "$tmp/ctl.out" |
      sed 's/.*://' | tr '\n' ' ')" = '429 200 ' ]
  ok $? "discord.py: channel.send gets a 429, waits retry_after, and succeeds (exit $r)"
  [ $r -eq 0 ] || show "$tmp/py.out" "$tmp/py.err"
else
  ok 1 "discord.py is not importable by $python: apt-get install python3-discord"
fi

kill "$runpid" 2> /dev/null
wait "$runpid" 2> /dev/null
runpid=
stop_mock

# ------------------------------------------------------ --rate-limits
start_mock --rate-limits
i=0
codes=
left=
while [ $i -lt 6 ]; do
  req POST $ch/messages "{\"content\": \"limited $i\"}"
  codes="$codes $code"
  [ "$code" = 200 ] && left="$left $(header X-RateLimit-Remaining)"
  i=$((i + 1))
done
[ "$codes" = " 200 200 200 200 200 429" ]
ok $? "--rate-limits: 6 quick POSTs to one channel: 5 x 200, then 429 ($codes)"
[ "$left" = " 4 3 2 1 0" ] && [ "$(header X-RateLimit-Limit)" = 5 ]
ok $? "--rate-limits: X-RateLimit-Remaining counts down ($left), Limit 5"
ra=$(sed -n 's/.*"retry_after":\([0-9.]*\).*/\1/p' "$tmp/body")
awk -v r="$ra" 'BEGIN { exit !(r > 0 && r <= 5) }' && body_has '"global":false' &&
  [ "$(header X-RateLimit-Scope)" = user ] &&
  [ "$(header X-RateLimit-Remaining)" = 0 ] &&
  awk -v s="$(header Retry-After)" 'BEGIN { exit !(s >= 1 && s <= 5) }'
ok $? "--rate-limits: the 429's retry_after is the real wait, in 0..5 s ($ra)"
req POST /api/v10/channels/1200000000000000012/messages '{"content": "other"}'
[ "$code" = 200 ] && [ "$(header X-RateLimit-Remaining)" = 4 ]
ok $? "--rate-limits: another channel has its own bucket (got $code)"
ctl GET state
grep -qF '"enforced":true,"enforced_served":1' "$tmp/ctl.out"
ok $? "/_mock/state: enforced, one 429 served"
stop_mock

echo "1..$n"
if [ $failed -ne 0 ]; then
  show "$tmp/run.err" "$tmp/mock.err"
fi
exit $failed
