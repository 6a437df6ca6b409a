#!/bin/sh
# dgw mock's REST and control API (docs/mock.md), driven with curl, with
# `dgw run` and its log plugin as the bot whose events are checked:
# Discord's status codes and error bodies (404 JSON, 401, 400 50109 /
# 50035 / 50006), the X-RateLimit headers, the /api, /api/v9 and /api/v10
# prefixes; the built-in guild in READY and GUILD_CREATE with every field;
# a message injected and one the bot posts arriving as full
# MESSAGE_CREATEs, edits, reactions and deletes as their events; the
# interaction callback rules; custom events; close, cut, withheld ACKs and
# reset.  Prints TAP.  Needs curl (fails without it).
. "$(dirname "$0")/interop/interop.sh"
DGW_PLUGIN_PATH=$PWD/plugins/log/.libs
export DGW_PLUGIN_PATH
runpid=
trap 'kill $runpid 2>/dev/null; wait $runpid 2>/dev/null; tap_exit' EXIT

# req METHOD PATH [JSON [AUTH]]: a REST call; status in $code, body in
# $tmp/body, headers in $tmp/headers.  AUTH defaults to the right token.
req() {
  auth=${4-Bot $token}
  code=$(curl -sS -m 10 -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' \
    -X "$1" ${auth:+-H "Authorization: $auth"} \
    -H 'Content-Type: application/json' ${3:+-d "$3"} "$http$2")
}
body_is() { [ "$(cat "$tmp/body")" = "$1" ]; }
body_has() { grep -qF -- "$1" "$tmp/body"; }
logged() { grep -qF -- "$1" "$events"; }
# run_bot NAME: dgw run against the mock ($ws), its log plugin writing
# to $events, config $tmp/NAME.json, stderr $tmp/NAME.err; sets runpid.
run_bot() {
  cat > "$tmp/$1.json" <<JSON
{"token_env": "MOCK_TEST_TOKEN", "intents": 34305, "gateway_url": "$ws",
 "plugins": [{"name": "log", "config": {"path": "$events"}}],
 "log_level": "info"}
JSON
  MOCK_TEST_TOKEN=$token $limit "$dgw" run "$tmp/$1.json" 2> "$tmp/$1.err" &
  runpid=$!
}

start_mock --heartbeat-interval $((500 * scale))
events=$tmp/events.jsonl
: > "$events"
run_bot run

# ----------------------------------------------------- REST status codes
req GET /api/v10/nope
[ "$code" = 404 ] && body_is '{"message":"404: Not Found","code":0}'
ok $? "an unknown route: 404 {\"message\": \"404: Not Found\", \"code\": 0} (got $code)"
req GET /api/v10/users/@me "" ""
[ "$code" = 401 ] && body_is '{"message":"401: Unauthorized","code":0}'
ok $? "no Authorization: 401 with Discord's body (got $code)"
req GET /api/v10/users/@me "" "Bot wrong-token"
[ "$code" = 401 ]
ok $? "a wrong token: 401 (got $code)"
req GET /api/v10/users/@me
[ "$code" = 200 ] && body_has '"id":"1000000000000000001"' &&
  body_has '"avatar":null' && body_has '"bot":true'
ok $? "GET /users/@me: the bot user (got $code)"
grep -qi '^X-RateLimit-Remaining: ' "$tmp/headers" &&
  grep -qi '^X-RateLimit-Bucket: ' "$tmp/headers" &&
  grep -qi '^X-RateLimit-Reset-After: ' "$tmp/headers"
ok $? "REST answers carry X-RateLimit-* headers"
req GET /api/oauth2/applications/@me
a=$code
req GET /api/v9/oauth2/applications/@me
[ "$a" = 200 ] && [ "$code" = 200 ] && body_has '"verify_key"' &&
  body_has '"owner":{'
ok $? "GET /oauth2/applications/@me under /api and /api/v9 (got $a, $code)"
req GET /api/v10/gateway "" ""
[ "$code" = 200 ] && body_is "{\"url\":\"$ws\"}"
ok $? "GET /gateway needs no token and gives the mock's URL (got $code)"
req GET /api/v10/gateway/bot
[ "$code" = 200 ] && body_has '"session_start_limit":{'
ok $? "GET /gateway/bot (got $code)"

ch=/api/v10/channels/1200000000000000011
req POST $ch/messages '{"content":'
[ "$code" = 400 ] && body_has '"code":50109'
ok $? "bad JSON: 400 code 50109 (got $code)"
req POST $ch/messages '{"content": 5}'
[ "$code" = 400 ] && body_has '"code":50035' && body_has '"content":{"_errors":[{"code":"BASE_TYPE_STRING"'
ok $? "a mistyped field: 400 Invalid Form Body 50035 naming the field (got $code)"
req POST $ch/messages '{"content": ""}'
[ "$code" = 400 ] && body_has '"code":50006'
ok $? "an empty message: 400 code 50006 (got $code)"

# ------------------------------------- the bot's session and the guild
wait_for 30 logged '"t":"GUILD_CREATE"'
ok $? "dgw run gets READY and the built-in guild's GUILD_CREATE"
grep '"t":"READY"' "$events" | grep -qF '"guilds":[{"id":"1200000000000000001","unavailable":true}]' &&
  grep '"t":"READY"' "$events" | grep -qF '"avatar":null'
ok $? "READY lists the guild unavailable, its user has avatar"
grep '"t":"GUILD_CREATE"' "$events" | grep -qF '"position":1,"permission_overwrites":[' &&
  grep '"t":"GUILD_CREATE"' "$events" | grep -qF '"presences":[{' &&
  grep '"t":"GUILD_CREATE"' "$events" | grep -qF '"roles":[{'
ok $? "GUILD_CREATE has channels with position and overwrites, roles, presences"

# --------------------------------------------------------- messages
ctl POST messages '{"content": "from alice"}'
wait_for 10 logged '"content":"from alice"'
ok $? "an injected message reaches the bot as MESSAGE_CREATE"
line=$(grep -F '"content":"from alice"' "$events")
for f in '"author":{"id":"1300000000000000001"' '"avatar":null' \
  '"discriminator":"0"' '"global_name":"alice"' '"member":{' \
  '"attachments":[]' '"embeds":[]' '"mentions":[]' '"mention_roles":[]' \
  '"mention_everyone":false' '"pinned":false' '"tts":false' '"type":0' \
  '"edited_timestamp":null' '"flags":0' '"guild_id":"1200000000000000001"'; do
  case $line in *"$f"*) ;; *) echo "# missing $f"; line= ;; esac
done
[ -n "$line" ]
ok $? "its MESSAGE_CREATE has every field discord.py and discord.js read"

req POST $ch/messages '{"content": "bot says hi"}'
[ "$code" = 200 ] && body_has '"content":"bot says hi"'
ok $? "POST /channels/{id}/messages creates and returns the message (got $code)"
mid=$(sed -n 's/^{"id":"\([0-9]*\)".*/\1/p' "$tmp/body")
wait_for 10 logged '"content":"bot says hi"'
ok $? "  ... and dispatches it as MESSAGE_CREATE"
req PATCH $ch/messages/$mid '{"content": "bot edited"}'
[ "$code" = 200 ] && ! body_has '"edited_timestamp":null'
ok $? "PATCH a message: 200 with edited_timestamp (got $code)"
wait_for 10 eval "grep '\"t\":\"MESSAGE_UPDATE\"' '$events' | grep -qF '\"content\":\"bot edited\"'"
ok $? "  ... and MESSAGE_UPDATE"
req PUT "$ch/messages/$mid/reactions/%F0%9F%91%8D/@me"
[ "$code" = 204 ]
ok $? "PUT a reaction: 204 (got $code)"
wait_for 10 eval "grep '\"t\":\"MESSAGE_REACTION_ADD\"' '$events' | grep -qF '\"name\":\"👍\"'"
ok $? "  ... and MESSAGE_REACTION_ADD with the decoded emoji"
req DELETE "$ch/messages/$mid/reactions/%F0%9F%91%8D/@me"
[ "$code" = 204 ] && wait_for 10 logged '"t":"MESSAGE_REACTION_REMOVE"'
ok $? "DELETE a reaction: 204 and MESSAGE_REACTION_REMOVE (got $code)"
req POST $ch/typing
[ "$code" = 204 ]
ok $? "POST /channels/{id}/typing: 204 (got $code)"
req DELETE $ch/messages/$mid
[ "$code" = 204 ] && wait_for 10 logged "\"t\":\"MESSAGE_DELETE\",\"d\":{\"id\":\"$mid\""
ok $? "DELETE a message: 204 and MESSAGE_DELETE (got $code)"
req PATCH $ch/messages/$mid '{"content": "again"}'
[ "$code" = 404 ] && body_has '"code":10008'
ok $? "a deleted message is unknown: 404 code 10008 (got $code)"

# ------------------------------------------------- commands, interactions
req PUT /api/v10/applications/1000000000000000001/commands '[{"name":"ping","description":"p"}]'
[ "$code" = 200 ] && body_has '"name":"ping"'
req GET /api/v10/applications/1000000000000000001/commands
[ "$code" = 200 ] && body_has '"name":"ping"' && body_has '"application_id":"1000000000000000001"'
ok $? "PUT then GET /applications/{id}/commands keeps them (got $code)"
req PUT /api/v10/applications/1000000000000000001/commands '[{"name":"x"}]'
[ "$code" = 400 ] && body_has '"0.description"'
ok $? "a chat command without description: 400 naming 0.description (got $code)"
req POST /api/v10/interactions/1/nope/callback '{"type":4,"data":{"content":"x"}}' ""
[ "$code" = 404 ] && body_has '"code":10062'
ok $? "a callback for an interaction the mock did not send: 404 10062 (got $code)"
ctl POST interactions '{"name": "ping"}'
iid=$(sed -n 's/^{"id":"\([0-9]*\)".*/\1/p' "$tmp/ctl.out")
itok=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$tmp/ctl.out")
wait_for 10 logged '"t":"INTERACTION_CREATE"'
ok $? "an injected slash command reaches the bot as INTERACTION_CREATE"
req POST "/api/v10/interactions/$iid/$itok/callback" '{"type":4,"data":{"content":"pong"}}' ""
[ "$code" = 204 ] && wait_for 10 logged '"content":"pong"'
ok $? "its callback: 204, the answer dispatched as MESSAGE_CREATE (got $code)"
req POST "/api/v10/interactions/$iid/$itok/callback" '{"type":4,"data":{"content":"pong"}}' ""
[ "$code" = 400 ] && body_has '"code":40060'
ok $? "a second callback: 400 40060 (got $code)"

req PATCH "/api/v10/webhooks/1000000000000000001/$itok/messages/@original" '{"content":"pong 2"}' ""
[ "$code" = 200 ] && body_has '"content":"pong 2"' && wait_for 10 eval "grep '\"t\":\"MESSAGE_UPDATE\"' '$events' | grep -qF '\"content\":\"pong 2\"'"
ok $? "PATCH /webhooks/{app}/{token}/messages/@original edits the answer: 200 and MESSAGE_UPDATE (got $code)"
req POST "/api/v10/webhooks/1000000000000000001/$itok" '{"content":"and more"}' ""
[ "$code" = 200 ] && wait_for 10 logged '"content":"and more"'
ok $? "POST /webhooks/{app}/{token}: a follow-up, dispatched (got $code)"
req POST "/api/v10/webhooks/1000000000000000001/not-a-token" '{"content":"x"}' ""
[ "$code" = 404 ] && body_has '"code":10015'
ok $? "a webhook token the mock did not give: 404 10015 (got $code)"

# ------------------------------------------------------- control API
ctl POST events '{"t": "CUSTOM_THING", "d": {"x": 1}, "guild_id": "1200000000000000001"}'
grep -q '"sessions":[1-9]' "$tmp/ctl.out" && wait_for 10 logged '"t":"CUSTOM_THING"'
ok $? "POST /_mock/events dispatches any event to the guild's shard"
ctl GET sent
grep -q '"op":2' "$tmp/ctl.out" && grep -q '"path":"/api/v10/channels/1200000000000000011/typing"' "$tmp/ctl.out"
ok $? "GET /_mock/sent lists gateway payloads and REST calls"
resumed() { [ "$(grep -c '"t":"RESUMED"' "$events")" -ge "$1" ]; }
ctl POST close '{"code": 4000}'
grep -q '"connections":1' "$tmp/ctl.out" && wait_for 15 resumed 1
ok $? "POST /_mock/close with 4000: the bot resumes"
ctl POST cut '{}'
wait_for 15 resumed 2
ok $? "POST /_mock/cut: the bot resumes after the network cut"
ctl POST acks '{"on": false}'
wait_for 20 resumed 3
ok $? "POST /_mock/acks off: the bot sees a zombie connection and resumes"
ctl POST acks '{"on": true}'
ctl POST reset
ctl GET sent
[ "$(cat "$tmp/ctl.out")" = '{"gateway":[],"rest":[]}' ]
ok $? "POST /_mock/reset empties the record"
ctl GET nope
grep -q '404' "$tmp/ctl.out"
ok $? "an unknown control path: 404"

kill "$runpid" 2> /dev/null
wait "$runpid" 2> /dev/null
runpid=
stop_mock

# ------------------------- two shards: a guild's events go to its shard
# Guild 1200000000000000001 is on shard (id >> 22) % 2 = 1.
start_mock --shards 2
events=$tmp/events2.jsonl
: > "$events"
cat > "$tmp/bot2.json" <<JSON
{"token_env": "MOCK_TEST_TOKEN", "intents": 34305, "shards": "auto",
 "api_url": "$http/api/v10",
 "plugins": [{"name": "log", "config": {"path": "$events"}}],
 "log_level": "info"}
JSON
MOCK_TEST_TOKEN=$token $limit "$dgw" run "$tmp/bot2.json" 2> "$tmp/run2.err" &
runpid=$!
wait_for 30 logged '"t":"GUILD_CREATE"'
two_ready() { [ "$(grep -c '"t":"READY"' "$events")" -ge 2 ]; }
wait_for 30 two_ready
grep -q '^{"shard":1,"seq":2,"t":"GUILD_CREATE"' "$events" &&
  ! grep -q '^{"shard":0,[^}]*"t":"GUILD_CREATE"' "$events"
ok $? "two shards: only shard 1 (the guild's) lists it and gets its GUILD_CREATE"
ctl POST messages '{"content": "to the right shard"}'
wait_for 10 logged '"content":"to the right shard"'
grep -F '"content":"to the right shard"' "$events" | grep -q '^{"shard":1,' &&
  [ "$(grep -cF '"content":"to the right shard"' "$events")" -eq 1 ]
ok $? "two shards: an injected message reaches the guild's shard only, once"
kill "$runpid" 2> /dev/null
wait "$runpid" 2> /dev/null
runpid=
stop_mock
# ------------------ a thin script completed with Discord's fields, or not
cat > "$tmp/thin.jsonl" <<'JSONL'
{"t": "GUILD_CREATE", "d": {"id": "900000000000000001", "name": "thin", "channels": [{"id": "900000000000000002", "name": "c"}]}}
{"t": "MESSAGE_CREATE", "d": {"id": "900000000000000003", "channel_id": "900000000000000002", "guild_id": "900000000000000001", "content": "thin", "author": {"id": "900000000000000004", "username": "t"}}}
JSONL
for mode in complete raw; do
  if [ $mode = raw ]; then start_mock --script "$tmp/thin.jsonl" --raw-script
  else start_mock --script "$tmp/thin.jsonl"; fi
  events=$tmp/events-$mode.jsonl
  : > "$events"
  run_bot run3
  wait_for 20 logged '"content":"thin"'
  ok $? "--script ($mode): the scripted events arrive"
  msg=$(grep -F '"content":"thin"' "$events")
  guild=$(grep -F '"t":"GUILD_CREATE"' "$events")
  if [ $mode = complete ]; then
    case $msg in *'"attachments":[]'*'"avatar":null'*|*'"avatar":null'*'"attachments":[]'*) r=0 ;; *) r=1 ;; esac
    case $guild in *'"position":0'*'"permission_overwrites":[]'*) ;; *) r=1 ;; esac
    case $msg$guild in *'"content":"thin"'*'"name":"thin"'*) ;; *) r=1 ;; esac
    ok $r "--script: a thin MESSAGE_CREATE and GUILD_CREATE get Discord's fields, their own kept"
  else
    case $msg$guild in *attachments*|*position*) r=1 ;; *) r=0 ;; esac
    ok $r "--raw-script: the scripted events are sent as they are"
  fi
  kill "$runpid" 2> /dev/null
  wait "$runpid" 2> /dev/null
  runpid=
  stop_mock
done

echo "1..$n"
if [ $failed -ne 0 ]; then
  show "$tmp/run.err" "$tmp/mock.err"
fi
exit $failed
