#!/bin/sh
# The README's main job, as a test: `dgw demo` must run to completion with
# the log and stats plugins, see a forced reconnect and a resume, and
# report every sequence number exactly once.  Prints TAP like the C tests.
dgw=${DGW:-$PWD/tools/dgw}
DGW_PLUGIN_PATH=$PWD/plugins/log/.libs:$PWD/plugins/stats/.libs
export DGW_PLUGIN_PATH
scale=${DGW_TEST_TIME_SCALE:-1}
# Bounded: the demo ends by itself in a few seconds; a hung one is killed
# (TERM, then KILL 5 s later) and fails with 124 instead of hanging make.
out=$(timeout -k 5 $((120 * scale)) ${DGW_TEST_WRAPPER:-} "$dgw" demo 2>&1)
rc=$?
echo "1..5"
if [ $rc -eq 0 ]; then echo "ok 1 - demo exits 0"; else echo "not ok 1 - demo exits 0 (got $rc)"; fi
case "$out" in
*"RESUMED"*"nothing lost"*) echo "ok 2 - demo resumes after the forced reconnect" ;;
*) echo "not ok 2 - demo resumes after the forced reconnect" ;;
esac
case "$out" in
*"complete, each exactly once"*) echo "ok 3 - demo sees every sequence number once" ;;
*) echo "not ok 3 - demo sees every sequence number once" ;;
esac
case "$out" in
*"log plugin wrote"*"(the same sequence)"*) echo "ok 4 - the log plugin saw the same sequence" ;;
*) echo "not ok 4 - the log plugin saw the same sequence" ;;
esac
case "$out" in
*"plugin stats: events"*"latency: shard 0"*) echo "ok 5 - the stats plugin reports events and latency" ;;
*) echo "not ok 5 - the stats plugin reports events and latency" ;;
esac
echo "$out" | sed 's/^/# /'
