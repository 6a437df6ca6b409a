#!/bin/sh
# The README's main job, as a test: dgw-demo must run to completion, see a
# forced reconnect and a resume, and report every sequence number exactly
# once.  Prints TAP like the C tests.
demo=${DGW_DEMO:-./tools/dgw-demo}
out=$(${DGW_TEST_WRAPPER:-} "$demo" 2>&1)
rc=$?
echo "1..3"
if [ $rc -eq 0 ]; then echo "ok 1 - demo exits 0"; else echo "not ok 1 - demo exits 0 (got $rc)"; fi
case "$out" in
*"RESUMED"*"nothing lost"*) echo "ok 2 - demo resumes after the forced reconnect" ;;
*) echo "not ok 2 - demo resumes after the forced reconnect" ;;
esac
case "$out" in
*"complete, each exactly once"*) echo "ok 3 - demo sees every sequence number once" ;;
*) echo "not ok 3 - demo sees every sequence number once" ;;
esac
echo "$out" | sed 's/^/# /'
