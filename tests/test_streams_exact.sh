#!/bin/sh
# Exactly-once into the stream with the cluster on (issue 13): 2 `dgw run`
# processes as one cluster on a private redis-server, 8 shards of one
# `dgw mock` streaming 50,000 MESSAGE_CREATEs, each process loading the
# redis-streams plugin.  Read back with XRANGE: every (shard, s) exactly
# once, in seq order per shard, none missing.  Then again on a fresh mock
# and cluster with a kill -9 of one process mid-stream: the survivor takes
# its shards over, RESUMEs them no later than the stream's position, and
# the stream still holds every (shard, s) once.  Prints TAP.  Runs from the
# top build directory.
#
# Under valgrind (DGW_TEST_TIME_SCALE > 1) the count is 5,000 events (625
# per shard) so that the run stays within minutes; plain, 50,000 (6,250
# per shard).  Bounded: every process runs under timeout(1) and is killed
# on exit (trap), every wait polls with a deadline.
dgw=${DGW:-$PWD/tools/dgw}
srcdir=${srcdir:-.}
plugin=${STREAMS_PLUGIN:-$PWD/plugins/redis-streams/.libs/redis-streams.so}
. "$srcdir/tests/tap.sh"
wrap=${DGW_TEST_WRAPPER:-}
per_shard=6250
[ "$scale" -gt 1 ] && per_shard=625
shards=8
total=$((per_shard * shards))
lease=$((2000 * scale))
tap_tmpdir exact
limit="timeout --foreground -k 5 $((240 * scale))"
. "$srcdir/tests/redis_server.sh"
pids=
cleanup() {
  kill_trees $pids
  redis_cleanup
  wait 2> /dev/null
}

need redis-server "apt-get install redis-server"
need redis-cli "apt-get install redis-server"
redis_start || bail "redis-server did not start"
rcli() { redis-cli -s "$REDIS_SOCK" "$@"; }

i=0
: > "$tmp/script.jsonl"
while [ $i -lt $per_shard ]; do
  echo '{"t": "MESSAGE_CREATE", "d": {"n": 1}}'
  i=$((i + 1))
done > "$tmp/script.jsonl"

listening() { grep -qs '^dgw mock listening on ' "$mock_out"; }
# start_mock NAME INTERVAL_MS: a mock and a config for cluster NAME; sets url.
start_mock() { # EVENTS is the plugin's "events"
  $limit "$dgw" mock --dispatch-interval "$2" --history $((per_shard + 10)) \
    --script "$tmp/script.jsonl" --shards $shards --max-concurrency $shards \
    --heartbeat-interval $((5000 * scale)) --raw-script \
    > "$tmp/mock-$1.out" 2> "$tmp/mock-$1.err" &
  pids="$pids $!"
  mock_out=$tmp/mock-$1.out
  wait_for 10 listening || return 1
  url=$(sed -n 's/^dgw mock listening on //p' "$tmp/mock-$1.out" | head -n 1)
  api=$(echo "$url" | sed 's|^ws://|http://|')/api/v10
  # DIRECT_MESSAGES: the messages have no guild_id (DMs), which the mock,
  # as Discord, sends only with it.
  cat > "$tmp/$1.json" << EOF
{"intents": 4096, "api_url": "$api", "log_level": "info",
 "shards": {"first": 0, "count": $shards, "total": $shards},
 "cluster": {"redis": "$REDIS_URL", "name": "$1", "lease_ms": $lease},
 "plugins": [{"path": "$plugin",
              "config": {"redis": "$REDIS_URL", "events": [$events]}}]}
EOF
}
start_member() { # start_member CLUSTER N: sets pid_N
  DISCORD_TOKEN=t0ken $limit $wrap "$dgw" run "$tmp/$1.json" \
    > /dev/null 2> "$tmp/$1-m$2.err" &
  eval "pid_$2=$!"
  pids="$pids $!"
}
xlen() { rcli XLEN "dgw:{$1}:events" 2> /dev/null; }
all_stored() { [ "$(xlen "$1")" -ge "$2" ]; }
# check CLUSTER FIRST: every (shard, s) once, in order per shard, none
# missing: per shard the s run from FIRST (1: READY is stored; 2: it is
# not) up without a gap (a RESUMED has an s too) and the MESSAGE_CREATEs
# are all there.  Prints: entries, repeats, gaps, shards wrong.
check() {
  rcli --raw XRANGE "dgw:{$1}:events" - + > "$tmp/$1.xrange"
  awk -v shards=$shards -v per=$per_shard -v first="$2" '
    $0 == "t" || $0 == "s" || $0 == "shard" { want = $0; next }
    want == "t" { t = $0; want = ""; next }
    want == "s" { s = $0; want = ""; next }
    want == "shard" { sh = $0; want = ""
      entries++
      if (!(sh in last)) { if (s != first) gap++; last[sh] = s - 1 }
      if (s <= last[sh]) dup++
      else if (s > last[sh] + 1) { gap++
        print "# shard " sh ": s " last[sh] " then " s > "/dev/stderr" }
      if (s > last[sh]) last[sh] = s
      if (t == "MESSAGE_CREATE") mc[sh]++
      next }
    END {
      for (k = 0; k < shards; k++) if (mc[k] != per) wrong++
      printf "%d %d %d %d\n", entries, dup + 0, gap + 0, wrong + 0
    }' "$tmp/$1.xrange"
}
# stop CLUSTER PID...: SIGTERM (the plugin's counters are logged at exit);
# their exit codes go to $rcs (99: valgrind found an error).
stop() {
  rcs=
  c=$1
  shift
  for p in "$@"; do kill -TERM "$p" 2> /dev/null; done
  for p in "$@"; do
    j=0
    while [ $j -lt $((100 * scale)) ] && kill -0 "$p" 2> /dev/null; do
      sleep 0.1
      j=$((j + 1))
    done
    wait "$p" 2> /dev/null
    rcs="$rcs $?"
  done
}
counter() { # counter FILE WHAT: the number before WHAT in the exit line
  sed -n "s/.* \([0-9][0-9]*\) $2.*/\1/p" "$1" | tail -n 1
}

# ------------------------------------------------ 2 processes, no crash
events='"MESSAGE_CREATE"' # READY not stored: only its position
start_mock plain 0 || {
  echo "not ok 1 - the mock did not start"
  exit 1
}
start_member plain 1
start_member plain 2
t0=$(date +%s%N)
wait_for $((60 + 20 * scale)) all_stored plain $total
ok $? "2 processes, 8 shards: $total entries stored (got $(xlen plain))"
t1=$(date +%s%N)
echo "# $(xlen plain) entries in $(((t1 - t0) / 1000000)) ms from the start"
sleep 1
set -- $(check plain 2)
[ "$1" -eq "$total" ] && [ "$2" -eq 0 ] && [ "$3" -eq 0 ] && [ "$4" -eq 0 ]
ok $? "every (shard, s) once, in order, none missing ($1 entries, $2 repeated, $3 gaps, $4 shards wrong)"
stop plain "$pid_1" "$pid_2"
[ "$rcs" = " 0 0" ]
ok $? "SIGTERM: both processes exit 0 (got$rcs)"
grep -h 'exactly-once' "$tmp"/plain-m*.err | sed 's/^/# /'
# Every entry went through the script: the host reported the lease of
# each event's shard (host->cluster_lease), none was fenced or skipped.
[ "$(grep -h 'exactly-once: 0 skipped as already stored, 0 fenced, 0 stored with the lease key missing, 0 stored without a lease at hand' "$tmp"/plain-m*.err | wc -l)" -eq 2 ]
ok $? "both processes: every entry through the fenced script, none skipped or fenced"
[ "$(grep -h 'handed over\|lease acquired' "$tmp"/plain-m*.err | grep -c 'lease acquired')" -ge $shards ]
ok $? "the shards were split between the 2 processes by leases"

# ------------------------------------------------ kill -9 mid-stream
# 1 ms between the dispatches of a shard: the stream fills over seconds.
events='"*"' # READY (s 1) and RESUMED stored too
start_mock crash 1 || {
  echo "not ok - the second mock did not start"
  exit 1
}
start_member crash 1
start_member crash 2
third() { [ "$(xlen crash)" -ge $((total / 3)) ]; }
wait_for $((60 + 20 * scale)) third
ok $? "a third of the events stored before the kill (got $(xlen crash))"
child=$(pgrep -P "$pid_1" | head -n 1)
kill -KILL "${child:-$pid_1}"
at_kill=$(xlen crash)
echo "# kill -9 of member 1 at $at_kill entries"
# READY, the MESSAGE_CREATEs, and a RESUMED for each shard taken over.
wait_for $((60 + 20 * scale)) all_stored crash $((total + shards + 4))
ok $? "after the kill -9: $total entries stored (got $(xlen crash))"
sleep 2
set -- $(check crash 1)
[ "$1" -ge "$total" ] && [ "$2" -eq 0 ] && [ "$3" -eq 0 ] && [ "$4" -eq 0 ]
ok $? "kill -9: every (shard, s) once, in order, none missing ($1 entries, $2 repeated, $3 gaps, $4 shards wrong)"
stop crash "$pid_2"
[ "$rcs" = " 0" ]
ok $? "SIGTERM: the survivor exits 0 (got$rcs)"
grep -h 'resuming at seq\|exactly-once: \|skipped: the stream\|lease acquired' "$tmp/crash-m2.err" | sed 's/^/# /'
resumed=$(grep -c 'resuming its stored session' "$tmp/crash-m2.err")
[ "$resumed" -ge 1 ]
ok $? "the survivor RESUMEd the dead member's shards ($resumed)"
skipped=$(counter "$tmp/crash-m2.err" 'skipped as already stored')
echo "# survivor: ${skipped:-?} replayed events skipped as already stored"
[ -n "$skipped" ]
ok $? "the survivor logged its exactly-once counters at exit"

# ------------------------------------------------ resume from the stream
# A cluster whose stored sessions are ahead of the stream's positions (the
# state a kill -9 leaves when the plugin lagged behind the deliveries):
# shard 0's position names its session at seq 40, shard 1's another
# session.  The member that takes them RESUMEs shard 0 at 40 (not at the
# 100 the session says) and shard 1 at 100 (nothing of its session is in
# the stream's position, which is not its own).  The mock knows neither
# session (op 9, IDENTIFY): only the RESUME's seq is looked at.
events='"MESSAGE_CREATE"'
start_mock seeded 0 || {
  echo "not ok - the third mock did not start"
  exit 1
}
rcli HSET 'dgw:{seeded}:session:0' sid s0 seq 100 url '' > /dev/null
rcli HSET 'dgw:{seeded}:stored:0' sid s0 seq 40 > /dev/null
rcli HSET 'dgw:{seeded}:session:1' sid s1 seq 100 url '' > /dev/null
rcli HSET 'dgw:{seeded}:stored:1' sid older seq 40 > /dev/null
start_member seeded 1
both() {
  grep -q 'resuming session s0 at ' "$tmp/seeded-m1.err" &&
    grep -q 'resuming session s1 at ' "$tmp/seeded-m1.err"
}
wait_for $((30 + 10 * scale)) both
grep -h 'resuming' "$tmp/seeded-m1.err" | sed 's/^/# /'
grep -q 'resuming session s0 at 40$' "$tmp/seeded-m1.err"
ok $? "a session ahead of the stream: RESUMEd at the stream's seq 40, not 100"
grep -q 'resuming session s1 at 100$' "$tmp/seeded-m1.err"
ok $? "a stream position of another session: RESUMEd at the session's seq 100"
stop seeded "$pid_1"

tap_end
