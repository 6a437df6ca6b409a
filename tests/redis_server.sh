# shellcheck shell=sh disable=SC2034
# Sourced by shell tests that need a private redis-server: the shell twin
# of tests/redis_server.[ch].  A fresh mktemp -d directory, a unix socket
# in it, no TCP, no persistence; every wait has a deadline (scaled by
# DGW_TEST_TIME_SCALE); a missing redis-server is a failure, not a skip.
#
#   . "$srcdir/tests/redis_server.sh"
#   redis_start [EXTRA ARGS...] || exit 1   # sets REDIS_DIR REDIS_SOCK
#                                           # REDIS_URL REDIS_PID
#   redis_kill        # kill -9 (a crash)
#   redis_restart     # same socket and arguments, empty data
#   redis_pause / redis_resume              # SIGSTOP / SIGCONT
#   redis_cleanup     # kill and remove the directory
#
# The caller must call redis_cleanup from its EXIT trap (a script has one
# trap per signal): trap 'redis_cleanup; my_cleanup' EXIT
redis_scale=${DGW_TEST_TIME_SCALE:-1}
REDIS_DIR=
REDIS_SOCK=
REDIS_URL=
REDIS_PID=
REDIS_EXTRA=

# redis_ping: 0 when the server answers PING on the socket.
redis_ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -s "$REDIS_SOCK" ping 2>/dev/null)" = PONG ]
  else
    [ -S "$REDIS_SOCK" ]
  fi
}

redis_launch() {
  rm -f "$REDIS_SOCK"
  # shellcheck disable=SC2086
  redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$REDIS_DIR" \
    --logfile "$REDIS_DIR/redis.log" --daemonize no $REDIS_EXTRA &
  REDIS_PID=$!
  tries=$((100 * redis_scale))
  while [ "$tries" -gt 0 ]; do
    if ! kill -0 "$REDIS_PID" 2>/dev/null; then
      echo "# redis-server exited at start; its log:"
      sed 's/^/#   /' "$REDIS_DIR/redis.log" 2>/dev/null
      REDIS_PID=
      return 1
    fi
    redis_ping && return 0
    sleep 0.1
    tries=$((tries - 1))
  done
  echo "# redis-server did not answer PING within $((10 * redis_scale)) s"
  redis_kill
  return 1
}

redis_start() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "# redis-server not found: the Redis tests need it: apt-get install redis-server"
    return 1
  fi
  REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dgw-redis.XXXXXX") || return 1
  REDIS_SOCK=$REDIS_DIR/redis.sock
  REDIS_URL=unix://$REDIS_SOCK
  REDIS_EXTRA="$*"
  redis_launch
}

redis_kill() {
  [ -n "$REDIS_PID" ] || return 0
  kill -KILL "$REDIS_PID" 2>/dev/null # no CONT: a stopped one dies stopped
  wait "$REDIS_PID" 2>/dev/null
  REDIS_PID=
}

redis_restart() {
  redis_kill
  redis_launch
}

redis_pause() { [ -n "$REDIS_PID" ] && kill -STOP "$REDIS_PID"; }
redis_resume() { [ -n "$REDIS_PID" ] && kill -CONT "$REDIS_PID"; }

redis_cleanup() {
  redis_kill
  case "$REDIS_DIR" in
  */dgw-redis.*) rm -rf "$REDIS_DIR" ;;
  esac
  REDIS_DIR=
}
