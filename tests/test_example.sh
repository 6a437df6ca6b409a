#!/bin/sh
# examples/libevent-app against `dgw mock` over wss: it reaches READY, stops
# the client from an HTTP request to its own server, and its loop then ends
# by itself (exit 0) with no leak under `make check-valgrind`.  Prints TAP.
dgw=${DGW:-$PWD/tools/dgw}
app=${APP:-$PWD/examples/libevent-app}
certs=${DGW_TEST_CERTS:-$PWD/tests/certs}
scale=${DGW_TEST_TIME_SCALE:-1}
out=$(mktemp)
mocklog=$(mktemp)
echo "1..3"

"$dgw" mock --tls-cert "$certs/localhost.pem" --tls-key "$certs/localhost.key" \
  --heartbeat-interval 30000 >"$mocklog" 2>&1 &
mock=$!
url=
i=0
while [ $i -lt 100 ]; do
  url=$(sed -n 's/^dgw mock listening on \(wss:[^ ]*\).*/\1/p' "$mocklog")
  [ -n "$url" ] && break
  sleep 0.1
  i=$((i + 1))
done
if [ -z "$url" ]; then
  echo "not ok 1 - the mock listens (gave up after 10 s)"
  echo "not ok 2 - # SKIP no mock"
  echo "not ok 3 - # SKIP no mock"
  sed 's/^/# /' "$mocklog"
  kill "$mock" 2>/dev/null
  rm -f "$out" "$mocklog"
  exit 0
fi
echo "ok 1 - the mock listens on $url"

# The deadline is the test's (timeout), never an event on the app's loop.
limit=$((30 * ${scale%%.*}))
timeout "$limit" ${DGW_TEST_WRAPPER:-} "$app" "$url" "$certs/ca.pem" \
  --self-stop >"$out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
  echo "ok 2 - libevent-app exits 0 (READY, stopped over HTTP, loop ended)"
else
  echo "not ok 2 - libevent-app exits 0 (got $rc; 124: its loop never ended)"
fi
if grep -q "the loop ended by itself (ready 1, stopped 1, closed 1)" "$out" &&
  grep -q "GET /stop answered 200" "$out"; then
  echo "ok 3 - GET /stop answered and the loop ended by itself"
else
  echo "not ok 3 - GET /stop answered and the loop ended by itself"
fi
sed 's/^/# /' "$out"
kill "$mock" 2>/dev/null
wait "$mock" 2>/dev/null
rm -f "$out" "$mocklog"
