#!/bin/sh
# `dgw run` processes as a cluster on a private redis-server, against one
# `dgw mock` serving 16 shards: config errors naming the key, `dgw cluster
# status` (exit 1 without Redis), 3 processes splitting the shards with one
# IDENTIFY each and the IDENTIFYs of one bucket a window apart across them
# (the mock's record of IDENTIFYs with their times), kill -9 of one (its shards RESUMEd by the others within
# lease + 5 s, no IDENTIFY), SIGTERM of one (handover: RESUMEs, no
# IDENTIFY), one with another shard total (refused: exit 3).  Prints TAP.
# Runs from the top build directory.
#
# Bounded: every process runs under timeout(1) and is ended on exit (trap),
# every wait polls with a deadline, Redis runs on a unix socket in a fresh
# directory with no persistence.  A missing redis-server fails the test.
dgw=${DGW:-$PWD/tools/dgw}
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/redis_server.sh"
tap_tmpdir cluster
limit="timeout --foreground -k 5 $((120 * scale))"
quick="timeout --foreground -k 5 $((30 * scale))"
lease=${DGW_CLUSTER_LEASE_MS:-2000} # a measurement may set 15000 (the default)
pids=
# Every pid in $pids is a timeout(1) running a dgw; redis-server is
# tests/redis_server.sh's.
cleanup() {
  kill_trees $pids
  redis_cleanup
  wait 2>/dev/null
}

need redis-server "apt-get install redis-server"
need curl "apt-get install curl"

# ------------------------------------------------------ config errors
expect3() { # expect3 NAME JSON MESSAGE
  printf '%s\n' "$2" > "$tmp/bad.json"
  $quick env DISCORD_TOKEN=x "$dgw" run "$tmp/bad.json" > /dev/null 2> "$tmp/err"
  rc=$?
  [ $rc -eq 3 ] && grep -qF -- "$3" "$tmp/err"
  ok $? "config error: $1 (exit 3 naming the key; got $rc)"
  [ $rc -eq 3 ] || show "$tmp/err"
}
base='"intents": 0, "gateway_url": "ws://127.0.0.1:1"'
expect3 "unknown cluster key" "{$base, \"cluster\": {\"redis\": \"unix:///x\", \"name\": \"b\", \"leas_ms\": 1}}" 'cluster: unknown key "leas_ms"'
expect3 "malformed Redis URL" "{$base, \"cluster\": {\"redis\": \"http://x\", \"name\": \"b\"}}" 'cluster.redis:'
expect3 "bad cluster name" "{$base, \"cluster\": {\"redis\": \"unix:///x\", \"name\": \"a b\"}}" 'cluster.name:'
expect3 "lease out of range" "{$base, \"cluster\": {\"redis\": \"unix:///x\", \"name\": \"b\", \"lease_ms\": 5}}" 'cluster.lease_ms:'
printf '{%s, "cluster": {"redis": "unix://%s/none.sock", "name": "b"}}\n' "$base" "$tmp" > "$tmp/none.json"
$quick "$dgw" cluster status "$tmp/none.json" > /dev/null 2> "$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q 'cannot reach Redis' "$tmp/err"
ok $? "cluster status without Redis: exit 1 with the cause (got $rc)"

# ------------------------------------------------------ the cluster
redis_start
ok $? "redis-server answers on its socket"
sock=$REDIS_SOCK

i=0
: > "$tmp/script.jsonl"
while [ $i -lt 2000 ]; do
  echo '{"t": "MESSAGE_CREATE", "d": {"n": 1}}' >> "$tmp/script.jsonl"
  i=$((i + 1))
done
$limit "$dgw" mock --verbose --heartbeat-interval 1000 --dispatch-interval 20 \
  --script "$tmp/script.jsonl" --shards 16 --max-concurrency 4 \
  > "$tmp/mock.out" 2> "$tmp/mock.err" &
mockpid=$!
pids="$mockpid"
listening() { grep -q '^dgw mock listening on ' "$tmp/mock.out"; }
wait_for 10 listening
url=$(sed -n 's/^dgw mock listening on //p' "$tmp/mock.out" | head -n 1)
api=$(echo "$url" | sed 's|^ws://|http://|')/api/v10
# GET /gateway/bot of the mock: its URL and max_concurrency 4.
cat > "$tmp/bot.json" << EOF
{"intents": 0, "api_url": "$api", "shards": {"first": 0, "count": 16, "total": 16},
 "cluster": {"redis": "unix://$sock", "name": "clitest", "lease_ms": $lease}}
EOF
start_member() { # start_member N: sets pid_N
  DISCORD_TOKEN=t0ken $limit "$dgw" run "$tmp/bot.json" > /dev/null 2> "$tmp/m$1.err" &
  eval "pid_$1=$!"
  pids="$pids $!"
}
identifies() { grep -c 'received op 2 ' "$tmp/mock.err"; }
resumes() { grep -c 'received op 6 ' "$tmp/mock.err"; }
status() { $quick "$dgw" cluster status "$tmp/bot.json" > "$tmp/status" 2> /dev/null; }
# held_by_members N: every shard held, by exactly N distinct members.
held_by() {
  status || return 1
  [ "$(grep -c '^  member ' "$tmp/status")" -eq "$1" ] || return 1
  [ "$(awk '$1 ~ /^[0-9]+$/ && $2 != "-" {c++} END {print c+0}' "$tmp/status")" -eq 16 ] || return 1
  [ "$(awk '$1 ~ /^[0-9]+$/ && $2 != "-" {print $2}' "$tmp/status" | sort -u | wc -l)" -eq "$1" ]
}
all_identified() { [ "$(identifies)" -ge 16 ]; }

start_member 1
start_member 2
start_member 3
wait_for 30 held_by 3
ok $? "3 processes: every shard held, by 3 members"
wait_for 30 all_identified
sleep 2
[ "$(identifies)" -eq 16 ]
ok $? "16 IDENTIFYs in all, one per shard (got $(identifies))"
split=$(awk '$1 ~ /^[0-9]+$/ && $2 != "-" {print $2}' "$tmp/status" | sort | uniq -c | awk '{print $1}' | sort -n | tr '\n' ' ')
[ "$split" = "5 5 6 " ]
ok $? "split 5/5/6 (got $split)"
[ "$(resumes)" -eq 0 ]
ok $? "no RESUME yet (got $(resumes))"

# The shared identify queue across the 3 processes: IDENTIFYs of one bucket
# (shard % max_concurrency 4) at least a window (5 s) apart, by the mock's
# clock.  GET /_mock/sent lists every IDENTIFY in arrival order with its
# shard and arrival time (ms).  Slack: 500 ms (scaled, at most 2.5 s): the
# grant's window runs in Redis's clock and each IDENTIFY then travels, so
# one delayed in its process (a loaded machine: 98 ms was seen) brings the
# next closer by as much.  With a queue per process the three would
# IDENTIFY one bucket within milliseconds of each other.
http=$(echo "$url" | sed 's|^ws://|http://|')
$quick curl -s "$http/_mock/sent" > "$tmp/sent.json"
grep -o '"shard":[0-9]*,"op":2,"at_ms":[0-9]*' "$tmp/sent.json" |
  sed 's/"shard":\([0-9]*\),"op":2,"at_ms":\([0-9]*\)/\1 \2/' > "$tmp/ids"
[ "$(wc -l < "$tmp/ids")" -eq 16 ]
ok $? "the mock recorded 16 IDENTIFYs with shard and time (got $(wc -l < "$tmp/ids"))"
slack=$((500 * scale)); [ "$slack" -le 2500 ] || slack=2500
gaps=$(awk -v slack=$slack '{ b = $1 % 4
  if (b in last) { g = $2 - last[b]; if (min == "" || g < min) min = g
    if (g < 5000 - slack) c++ }
  last[b] = $2 } END { print c + 0, min + 0 }' "$tmp/ids")
echo "# IDENTIFYs of one bucket: closest two $(echo "$gaps" | cut -d' ' -f2) ms apart"
[ "$(echo "$gaps" | cut -d' ' -f1)" -eq 0 ]
ok $? "IDENTIFYs of one bucket at least a window apart across processes ($(echo "$gaps" | cut -d' ' -f1) too soon)"

# kill -9: the others resume its shards within lease + 5 s.
before_id=$(identifies)
before_rs=$(resumes)
# The dgw under timeout(1): SIGKILL cannot be passed on, so it goes to dgw.
child=$(pgrep -P "$pid_1" | head -n 1)
kill -KILL "${child:-$pid_1}"
t0=$(date +%s%N)
wait_for $((lease / 1000 + 5)) held_by 2
ok $? "kill -9: every shard held by the 2 others within lease + 5 s"
t1=$(date +%s%N)
echo "# kill -9 to every shard re-held: $(((t1 - t0) / 1000000)) ms (lease $lease ms)"
sleep 1
[ "$(identifies)" -eq "$before_id" ]
ok $? "kill -9: no IDENTIFY (got $(($(identifies) - before_id)) more)"
[ "$(resumes)" -ge $((before_rs + 5)) ]
ok $? "kill -9: its shards RESUMEd (got $(($(resumes) - before_rs)) RESUMEs)"

# SIGTERM: a handover; no IDENTIFY.
before_rs=$(resumes)
kill -TERM "$pid_2"
wait_for 15 held_by 1
ok $? "SIGTERM: every shard held by the last member"
i=0
while [ $i -lt 100 ] && kill -0 "$pid_2" 2> /dev/null; do sleep 0.1; i=$((i + 1)); done
wait "$pid_2"
rc=$?
ok $rc "SIGTERM: the member exits 0 after the handover (got $rc)"
grep -q 'handed over' "$tmp/m2.err"
ok $? "SIGTERM: the member logged its handovers"
sleep 1
[ "$(identifies)" -eq "$before_id" ]
ok $? "SIGTERM: no IDENTIFY (got $(($(identifies) - before_id)) more)"
[ "$(resumes)" -ge $((before_rs + 5)) ]
ok $? "SIGTERM: its shards RESUMEd (got $(($(resumes) - before_rs)))"

# Another shard total while a member runs: refused, exit 3 (a config
# error), both sides named; the running member keeps every shard.
status
grep -q '^  config: shards 0-15 of 16, lease_ms '"$lease"' (set by ' "$tmp/status"
ok $? "cluster status shows the agreed config line"
sed 's/"count": 16, "total": 16/"count": 32, "total": 32/' "$tmp/bot.json" > "$tmp/bot32.json"
before_id=$(identifies)
DISCORD_TOKEN=t0ken $quick "$dgw" run "$tmp/bot32.json" > /dev/null 2> "$tmp/m32.err"
rc=$?
[ $rc -eq 3 ] && grep -q 'this member has shards 0-31 of 32.*the cluster has shards 0-15 of 16.*refusing to run shards' "$tmp/m32.err"
ok $? "another shard total: exit 3, both sides named (got $rc)"
[ $rc -eq 3 ] || show "$tmp/m32.err"
held_by 1
ok $? "another shard total: the running member still holds every shard"
[ "$(identifies)" -eq "$before_id" ]
ok $? "another shard total: no IDENTIFY (got $(($(identifies) - before_id)) more)"

tap_end
