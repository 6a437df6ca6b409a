# Shared by tests/test_metrics.sh and tests/test_ops.sh (sourced): the
# TAP helpers and bounded waits of tests/tap.sh, a `dgw mock` started in
# the background (tests/bg_mock.sh), $tmp and the cleanup of what it
# starts.  Every wait has a deadline; every process runs under timeout(1).
dgw=${DGW:-$PWD/tools/dgw}
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/bg_mock.sh"
wrap=${DGW_TEST_WRAPPER:-}
DGW_PLUGIN_PATH=$PWD/plugins/metrics/.libs:$PWD/plugins/log/.libs
export DGW_PLUGIN_PATH
testplugins=$PWD/tests/plugins/.libs
limit="timeout --foreground -k 5 $((60 * scale))"
quick="timeout --foreground -k 5 $((30 * scale))"
runpid=
extrapid=
cleanup() { end_timeouts $runpid $mockpid $extrapid; }

# free_port: a TCP port nothing listens on right now (bound, then closed).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
